// Garbage collection: WAL-logged, deterministic, held back by read views and nothing
// else.
//   - the answers of every open read view are unchanged by GC;
//   - memory held by old versions is released once the floor passes them (measured with
//     the engine's own accounting of versions and document bytes);
//   - replaying the GC record after a restart frees the same versions;
//   - views below the floor are refused, not answered wrongly.
#include "support/common.hpp"

using namespace aerodb;
using namespace aerodb_test;

namespace {

open_options mem_fs(std::shared_ptr<testing::fault_injection_fs> fs) {
  open_options o;
  o.fs = std::move(fs);
  return o;
}

template <class Db>
void churn(Db& db, int keys, int rounds) {
  for (int k = 0; k < keys; ++k)
    REQUIRE(db.insert("users", 1, R"({"_id":"k)" + std::to_string(k) + R"(","name":"v0","age":0})"));
  for (int r = 1; r <= rounds; ++r)
    for (int k = 0; k < keys; ++k)
      REQUIRE(db.update("users", "k" + std::to_string(k), 1,
                        R"({"_id":"k)" + std::to_string(k) + R"(","name":"v)" + std::to_string(r) +
                            R"(","age":)" + std::to_string(r) + "}"));
}

}  // namespace

TEST_CASE_TEMPLATE("GC never changes what an open read view sees", Db, AERODB_ENGINES) {
  auto db = open_or_fail<Db>("/db", mem_fs(std::make_shared<testing::fault_injection_fs>()));
  setup_users(*db);
  REQUIRE(db->create_index("users", "age"));
  std::vector<typename Db::read_view> views;
  std::vector<state_map> seen;
  churn(*db, 10, 0);
  for (int r = 0; r < 5; ++r) {
    for (int k = 0; k < 10; ++k)
      if (r == 0 || k != r - 1 || r % 2 == 1)
        (void)db->update("users", "k" + std::to_string(k), 1,
                         R"({"_id":"k)" + std::to_string(k) + R"(","name":"r)" + std::to_string(r) +
                             R"(","age":)" + std::to_string(r) + "}");
    views.push_back(db->read());
    seen.push_back(dump(views.back(), {"users"}));
    if (r % 2) REQUIRE(db->remove("users", "k" + std::to_string(r)));
  }
  auto gc = db->gc();
  REQUIRE(gc);
  CHECK(gc->record > 0);
  CHECK(gc->floor == views.front().bound());
  for (std::size_t i = 0; i < views.size(); ++i) CHECK(dump(views[i], {"users"}) == seen[i]);
  // Release views one by one, collecting each time: the remaining ones never change.
  while (!views.empty()) {
    views.erase(views.begin());
    seen.erase(seen.begin());
    REQUIRE(db->gc());
    for (std::size_t i = 0; i < views.size(); ++i) CHECK(dump(views[i], {"users"}) == seen[i]);
  }
}

TEST_CASE_TEMPLATE("memory of old versions is released once the floor passes them", Db, AERODB_ENGINES) {
  auto fs = std::make_shared<testing::fault_injection_fs>();
  auto db = open_or_fail<Db>("/db", mem_fs(fs));
  setup_users(*db);
  REQUIRE(db->create_index("users", "age"));
  churn(*db, 20, 1);
  auto held = db->read();  // sees round 1 of every key
  for (int r = 2; r <= 10; ++r)
    for (int k = 0; k < 20; ++k)
      REQUIRE(db->update("users", "k" + std::to_string(k), 1,
                         R"({"_id":"k)" + std::to_string(k) + R"(","name":"v)" + std::to_string(r) +
                             R"(","age":)" + std::to_string(r) + "}"));
  const auto full = db->memory();
  CHECK(full.versions == 20 * 11);

  // The held view keeps its versions (and everything newer); older ones go.
  auto first = db->gc();
  REQUIRE(first);
  const auto while_held = db->memory();
  CHECK(first->versions_freed == 20);  // round 0 of each key: below the view
  CHECK(while_held.versions == 20 * 10);
  CHECK(while_held.document_bytes < full.document_bytes);
  CHECK(full.document_bytes - while_held.document_bytes == first->bytes_freed);

  // Once the view is gone, only the newest version of each key remains.
  { auto gone = std::move(held); }
  auto second = db->gc();
  REQUIRE(second);
  const auto after = db->memory();
  CHECK(after.versions == 20);
  CHECK(second->versions_freed == 20 * 9);
  CHECK(after.document_bytes * 9 < full.document_bytes);

  // Nothing to collect: nothing is logged.
  const auto ops = fs->op_count();
  auto third = db->gc();
  REQUIRE(third);
  CHECK(third->record == 0);
  CHECK(fs->op_count() == ops);

  // History below the floor is refused.
  CHECK(db->read_at(second->floor - 1).code() == errc::read_view_too_old);
  CHECK(db->read_at(second->floor));
}

TEST_CASE_TEMPLATE("a GC record replays to the same memory and state", Db, AERODB_ENGINES) {
  auto fs = std::make_shared<testing::fault_injection_fs>();
  state_map state;
  memory_stats mem;
  commit_id floor = 0;
  {
    auto db = open_or_fail<Db>("/db", mem_fs(fs));
    setup_users(*db);
    churn(*db, 15, 4);
    auto gc = db->gc();
    REQUIRE(gc);
    floor = gc->floor;
    REQUIRE(db->update("users", "k1", 1, R"({"_id":"k1","name":"after gc"})"));
    state = dump(*db);
    mem = db->memory();
  }
  auto db = open_or_fail<Db>("/db", mem_fs(fs));
  CHECK(dump(*db) == state);
  CHECK(db->memory().versions == mem.versions);
  CHECK(db->memory().document_bytes == mem.document_bytes);
  CHECK(db->oldest_readable() == floor);
}

TEST_CASE_TEMPLATE("a deleted key keeps its tombstone as its newest version", Db, AERODB_ENGINES) {
  auto db = open_or_fail<Db>("/db", mem_fs(std::make_shared<testing::fault_injection_fs>()));
  setup_users(*db);
  churn(*db, 3, 2);
  REQUIRE(db->remove("users", "k0"));
  REQUIRE(db->gc());
  CHECK(db->memory().versions == 3);  // k1, k2 newest versions + k0's tombstone
  CHECK_FALSE(db->read().get("users", "k0")->has_value());
  CHECK(db->insert("users", 1, R"({"_id":"k0","name":"back"})"));
}
