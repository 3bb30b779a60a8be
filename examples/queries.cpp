// Queries: secondary indexes, the C++ query builder, the JSON form, explain, and what a
// rejected query looks like. Checks its own answers against a plain loop and exits 1 if
// they differ, so the test suite can run it.
//
//   queries [DATA_DIR]     (default: ./aerodb-queries-data, cleared at start)
#include <aerodb/aerodb.hpp>

#include "example_dir.hpp"

#include <cstdio>
#include <string>

namespace {

constexpr const char* schema = R"({"id":"person","version":1,"fields":{
  "_id":{"type":"string","required":true},
  "name":{"type":"string","required":true},
  "age":{"type":"int","required":true},
  "address":{"type":"object","fields":{"city":{"type":"string","required":true}}}}})";

const char* cities[] = {"Lisbon", "Oslo", "Quito", "Tunis"};

}  // namespace

int main(int argc, char** argv) {
  const std::string dir = argc > 1 ? argv[1] : "aerodb-queries-data";
  if (!prepare_example_dir(dir)) return 1;
  auto opened = aerodb::database::open(dir);
  if (!opened) return fail(opened.error_value());
  auto& db = **opened;

  for (auto r : {db.register_schema(schema), db.create_collection("people", "person"),
                 db.create_index("people", "age"), db.create_index("people", "address.city")})
    if (!r) return fail(r.error_value());

  // 1,000 people in one atomic batch.
  aerodb::write_batch batch;
  int expected_oslo_adults = 0;
  for (int i = 0; i < 1000; ++i) {
    const int age = (i * 37) % 90;
    const char* city = cities[i % 4];
    if (age >= 18 && std::string(city) == "Oslo") ++expected_oslo_adults;
    batch.insert("people", 1,
                 R"({"_id":"p)" + std::to_string(1000 + i) + R"(","name":"person )" + std::to_string(i) +
                     R"(","age":)" + std::to_string(age) + R"(,"address":{"city":")" + city + R"("}})");
  }
  if (auto r = db.commit(batch); !r) return fail(r.error_value());
  std::printf("inserted 1000 people, last CommitId %llu\n",
              static_cast<unsigned long long>(db.last_commit_id()));

  auto view = db.read();

  // The builder: adults in Oslo, oldest first.
  using aerodb::query::op;
  auto q = aerodb::query_builder("people")
               .version(1)
               .where("address.city", op::eq, "Oslo")
               .where("age", op::gte, 18)
               .sort_by("age", aerodb::query::direction::desc)
               .limit(5);
  auto plan = view.explain(q.spec());
  if (!plan) return fail(plan.error_value());
  std::printf("explain: %s\n", aerodb::query::explain_text(*plan).c_str());
  auto top = view.query(q.spec());
  if (!top) return fail(top.error_value());
  for (const auto& d : top->documents) std::printf("  %s\n", d.doc.to_json_string().c_str());

  // The same filter in JSON, with the largest limit, to count them.
  auto all = view.query(R"({"collection":"people","schema_version":1,
      "filter":{"address.city":"Oslo","age":{"$gte":18}},"limit":10000})");
  if (!all) return fail(all.error_value());
  std::printf("adults in Oslo: %zu (a plain loop says %d), %llu candidates examined\n",
              all->documents.size(), expected_oslo_adults,
              static_cast<unsigned long long>(all->candidates));
  if (static_cast<int>(all->documents.size()) != expected_oslo_adults) return 1;

  // A range on one index.
  auto range = view.query(R"({"collection":"people","schema_version":1,
      "filter":{"age":{"$gt":30,"$lte":32}},"sort":{"age":"asc"},"limit":3})");
  if (!range) return fail(range.error_value());
  std::printf("explain: %s\n", aerodb::query::explain_text(range->plan).c_str());
  std::printf("explain as JSON: %s\n",
              boost::json::serialize(aerodb::query::explain_json(range->plan)).c_str());

  // Queries are bounded and every filtered field must be indexed: no implicit full scan.
  auto rejected = view.query(R"({"collection":"people","schema_version":1,
      "filter":{"name":"person 7"},"limit":10})");
  if (rejected) return 1;
  std::printf("rejected as expected: %s\n", rejected.error_value().to_string().c_str());
  auto unbounded = view.query(R"({"collection":"people","schema_version":1,"filter":{"age":3}})");
  if (unbounded) return 1;
  std::printf("rejected as expected: %s\n", unbounded.error_value().to_string().c_str());
  return 0;
}
