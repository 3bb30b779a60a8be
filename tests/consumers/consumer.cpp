// The smallest program a user of the installed library writes: open a store, write one
// document, read it back and print it. Built four ways by scripts/consumers.sh (CMake
// find_package, pkg-config, a Meson subproject, plain -I and -lboost_json).
#include <aerodb/aerodb.hpp>

#include <cstdio>
#include <string>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s DATA_DIRECTORY\n", argv[0]);
    return 2;
  }
  auto db = aerodb::database::open(argv[1]);
  if (!db) {
    std::fprintf(stderr, "%s\n", db.error_value().to_string().c_str());
    return 1;
  }
  auto& store = **db;
  const auto fail = [](const aerodb::error& e) {
    std::fprintf(stderr, "%s\n", e.to_string().c_str());
    return 1;
  };
  if (auto r = store.register_schema(R"({"id":"note","version":1,"fields":{
        "_id":{"type":"string","required":true},"text":{"type":"string","required":true}}})");
      !r)
    return fail(r.error_value());
  if (auto r = store.create_collection("notes", "note"); !r) return fail(r.error_value());
  if (auto r = store.insert("notes", 1, R"({"_id":"n1","text":"hello from a consumer"})"); !r)
    return fail(r.error_value());
  auto got = store.read().get("notes", "n1");
  if (!got) return fail(got.error_value());
  if (!*got) {
    std::fprintf(stderr, "the document written was not found\n");
    return 1;
  }
  std::printf("consumer ok: %s\n", (*got)->doc.to_json_string().c_str());
  return 0;
}
