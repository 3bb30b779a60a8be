// Quick start: open a data directory, register a schema, write documents and an atomic
// batch, read them under a read view, close, reopen (which recovers from the log) and
// print what was recovered.
//
//   quickstart [DATA_DIR]     (default: ./aerodb-data)
//
// Running it twice shows recovery at work: the second run finds the first run's
// documents, and its writes take the next CommitIds.
#include <aerodb/aerodb.hpp>

#include <cstdio>
#include <string>

namespace {

constexpr const char* default_dir = "aerodb-data";

constexpr const char* user_schema = R"({
  "id": "user", "version": 1,
  "fields": {
    "_id":   {"type": "string", "required": true},
    "name":  {"type": "string", "required": true},
    "age":   {"type": "int"},
    "email": {"type": "string"},
    "tags":  {"type": "array", "items": {"type": "string"}}
  }
})";

int fail(const aerodb::error& e) {
  std::fprintf(stderr, "error: %s\n", e.to_string().c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string dir = argc > 1 ? argv[1] : default_dir;
  std::printf("AeroDB quickstart, data directory: %s\n", dir.c_str());

  std::string run_tag;
  {
    auto opened = aerodb::database::open(dir);
    if (!opened) return fail(opened.error_value());
    auto& db = **opened;
    std::printf("opened: %s\n", db.recovery().to_string().c_str());

    // A schema version is registered once; a second run finds it already there.
    if (!db.find_schema("user", 1)) {
      auto id = db.register_schema(user_schema);
      if (!id) return fail(id.error_value());
      std::printf("registered schema user v1 at CommitId %llu\n",
                  static_cast<unsigned long long>(*id));
      auto c = db.create_collection("users", "user");
      if (!c) return fail(c.error_value());
      std::printf("created collection users at CommitId %llu\n",
                  static_cast<unsigned long long>(*c));
    }

    // Each run writes new _ids, so that runs never collide.
    run_tag = std::to_string(db.last_commit_id());
    const std::string ada = "ada-" + run_tag;
    auto w = db.insert("users", 1,
                       R"({"_id":")" + ada + R"(","name":"Ada","age":36,"tags":["math"]})");
    if (!w) return fail(w.error_value());
    std::printf("inserted %s at CommitId %llu\n", ada.c_str(), static_cast<unsigned long long>(*w));

    // A rejected write changes nothing: the age is not an int.
    auto bad = db.insert("users", 1, R"({"_id":"bad","name":"Bob","age":"old"})");
    if (!bad) std::printf("rejected as expected: %s\n", bad.error_value().to_string().c_str());

    // An atomic batch: all three operations get one CommitId, or none does.
    aerodb::write_batch batch;
    batch.insert("users", 1, R"({"_id":"grace-)" + run_tag + R"(","name":"Grace","age":45})")
        .insert("users", 1, R"({"_id":"alan-)" + run_tag + R"(","name":"Alan","age":41})")
        .update("users", ada, 1,
                R"({"_id":")" + ada + R"(","name":"Ada Lovelace","age":36,"tags":["math","poetry"]})");
    auto b = db.commit(batch);
    if (!b) return fail(b.error_value());
    std::printf("committed a batch of %zu operations at CommitId %llu\n", batch.size(),
                static_cast<unsigned long long>(b->commit));

    auto view = db.read();
    std::printf("read view at CommitId %llu:\n", static_cast<unsigned long long>(view.bound()));
    auto n = view.for_each("users", [](const aerodb::versioned_document& d) {
      std::printf("  %s (schema v%u, CommitId %llu)\n", d.doc.to_json_string().c_str(),
                  d.schema_version, static_cast<unsigned long long>(d.committed_at));
    });
    if (!n) return fail(n.error_value());
  }  // closing: the directory lock is released

  auto reopened = aerodb::database::open(dir);
  if (!reopened) return fail(reopened.error_value());
  auto& db = **reopened;
  std::printf("reopened: %s\n", db.recovery().to_string().c_str());
  auto view = db.read();
  auto doc = view.get("users", "ada-" + run_tag);
  if (!doc) return fail(doc.error_value());
  if (!*doc) {
    std::fprintf(stderr, "error: a committed document did not survive the reopen\n");
    return 1;
  }
  std::printf("recovered ada-%s: %s\n", run_tag.c_str(), (*doc)->doc.to_json_string().c_str());
  std::size_t count = 0;
  (void)view.for_each("users", [&](const aerodb::versioned_document&) { ++count; });
  std::printf("recovered %zu documents in users, last CommitId %llu\n", count,
              static_cast<unsigned long long>(db.last_commit_id()));
  return 0;
}
