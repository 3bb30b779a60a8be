// Garbage collection: WAL-logged, deterministic, held back by read views and nothing
// else.
//   - the answers of every open read view are unchanged by GC;
//   - memory held by old versions is released once the floor passes them (measured with
//     the engine's own accounting of versions and document bytes);
//   - replaying the GC record after a restart frees the same versions;
//   - views below the floor are refused, not answered wrongly;
//   - a key deleted at or below the floor goes entirely (tombstone, key entry, index
//     entries), before and after a crash, and can come back;
//   - with gc_after_superseded_versions, memory stays bounded under updates and deletes.
#include "support/common.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <type_traits>
#include <vector>

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

TEST_CASE_TEMPLATE("a deleted key goes with its tombstone once GC passes it, and can come back", Db,
                   AERODB_ENGINES) {
  auto db = open_or_fail<Db>("/db", mem_fs(std::make_shared<testing::fault_injection_fs>()));
  setup_users(*db);
  churn(*db, 3, 2);
  REQUIRE(db->remove("users", "k0"));
  auto gc = db->gc();
  REQUIRE(gc);
  CHECK(gc->keys_reclaimed == 1);
  CHECK(gc->versions_freed == 2 * 2 + 3 + 1);  // two older ones of k1 and of k2; all of k0's
  CHECK(db->memory().versions == 2);            // the newest versions of k1 and k2
  CHECK(db->memory().keys == 2);
  CHECK_FALSE(db->read().get("users", "k0")->has_value());
  CHECK(db->insert("users", 1, R"({"_id":"k0","name":"back"})"));
  CHECK(db->memory().keys == 3);
}

namespace {

std::string user_json(int k, int round) {
  return R"({"_id":"k)" + std::to_string(k) + R"(","name":"n)" + std::to_string(round) + R"(","age":)" +
         std::to_string(k % 10) + "}";
}

// The encoded size of every document a view sees: what the accounting must come down to
// once the history is collected.
template <class View>
std::uint64_t visible_bytes(const View& view, const std::string& collection) {
  std::uint64_t n = 0;
  auto r = view.for_each(collection, [&](const versioned_document& d) { n += d.doc.bytes().size(); });
  REQUIRE(r);
  return n;
}

}  // namespace

TEST_CASE_TEMPLATE("GC reclaims deleted keys: the accounting, scans, queries and indexes forget them", Db,
                   AERODB_ENGINES) {
  auto db = open_or_fail<Db>("/db", mem_fs(std::make_shared<testing::fault_injection_fs>()));
  setup_users(*db);
  REQUIRE(db->create_index("users", "age"));
  constexpr int keys = 200, deleted = 150;
  for (int k = 0; k < keys; ++k) REQUIRE(db->insert("users", 1, user_json(k, 0)));
  for (int k = 0; k < keys; ++k) REQUIRE(db->update("users", "k" + std::to_string(k), 1, user_json(k, 1)));
  auto before = db->read();  // sees every key, in its second version
  const state_map seen = dump(before, {"users"});
  REQUIRE(seen.at("users").size() == keys);
  for (int k = 0; k < deleted; ++k) REQUIRE(db->remove("users", "k" + std::to_string(k)));
  CHECK(db->memory().keys == keys);
  CHECK(db->memory().versions == keys * 2 + deleted);

  // The view holds the floor below the deletions: only first versions go, no key does, and
  // the view's answers do not change.
  auto held = db->gc();
  REQUIRE(held);
  CHECK(held->floor == before.bound());
  CHECK(held->keys_reclaimed == 0);
  CHECK(held->versions_freed == keys);
  CHECK(db->memory().keys == keys);
  CHECK(dump(before, {"users"}) == seen);
  auto old_answer = before.query(R"({"collection":"users","schema_version":1,"filter":{"age":3},"limit":1000})");
  REQUIRE(old_answer);
  CHECK(old_answer->documents.size() == keys / 10);

  // Once the view is gone, the deleted keys go entirely.
  { auto gone = std::move(before); }
  auto gc = db->gc();
  REQUIRE(gc);
  CHECK(gc->keys_reclaimed == deleted);
  const auto mem = db->memory();
  const auto view = db->read();
  CHECK(mem.keys == keys - deleted);
  CHECK(mem.versions == keys - deleted);
  CHECK(mem.document_bytes == visible_bytes(view, "users"));

  // A walk of the _id index and of the age index reads the live keys' entries, no more.
  query::scan_request by_id;
  by_id.collection = "users";
  by_id.limit = 1000;
  auto ids = view.scan(by_id);
  REQUIRE(ids);
  CHECK(ids->documents.size() == keys - deleted);
  CHECK(ids->entries_read == keys - deleted);
  query::scan_request by_age = by_id;
  by_age.field = "age";
  auto ages = view.scan(by_age);
  REQUIRE(ages);
  CHECK(ages->documents.size() == keys - deleted);
  CHECK(ages->entries_read == keys - deleted);
  // The planner's bound comes from the index's entry count: the deleted keys left it too.
  auto q = view.query(R"({"collection":"users","schema_version":1,"filter":{"age":3},"limit":1000})");
  REQUIRE(q);
  CHECK(q->documents.size() == (keys - deleted) / 10);
  CHECK(q->plan.max_scan == (keys - deleted) / 10);
  CHECK(q->candidates == (keys - deleted) / 10);
  for (int k = 0; k < keys; ++k) {
    auto got = view.get("users", "k" + std::to_string(k));
    REQUIRE(got);
    CHECK(got->has_value() == (k >= deleted));
  }
  CHECK(db->read_at(gc->floor - 1).code() == errc::read_view_too_old);
}

TEST_CASE_TEMPLATE("a key re-inserted after GC reclaimed it behaves like any other", Db, AERODB_ENGINES) {
  auto db = open_or_fail<Db>("/db", mem_fs(std::make_shared<testing::fault_injection_fs>()));
  setup_users(*db);
  REQUIRE(db->create_index("users", "age"));
  REQUIRE(db->insert("users", 1, user_json(7, 0)));
  REQUIRE(db->insert("users", 1, user_json(8, 0)));
  auto removed = db->remove("users", "k7");
  REQUIRE(removed);
  REQUIRE(db->gc());
  REQUIRE(db->memory().keys == 1);
  // Once the deletion is forgotten, a conditional write finds a document that never
  // existed (docs/errors.md, AERO_WRITE_CONFLICT): newest version 0.
  auto stale = db->remove_if("users", "k7", removed->commit);
  REQUIRE_FALSE(stale);
  CHECK(stale.code() == errc::write_conflict);
  CHECK(stale.error_value().detail("current") == "0");
  auto absent = db->remove_if("users", "k7", 0);
  REQUIRE(absent);
  CHECK_FALSE(absent->deleted);

  auto before = db->read();  // between the reclaim and the return: sees no k7
  auto back = db->insert("users", 1, R"({"_id":"k7","name":"back","age":3})");
  REQUIRE(back);
  CHECK(db->insert("users", 1, R"({"_id":"k7","name":"again","age":3})").code() == errc::document_exists);
  CHECK_FALSE(before.get("users", "k7")->has_value());
  auto got = db->read().get("users", "k7");
  REQUIRE(got);
  REQUIRE(got->has_value());
  CHECK((*got)->committed_at == *back);
  auto q = db->read().query(R"({"collection":"users","schema_version":1,"filter":{"age":3},"limit":10})");
  REQUIRE(q);
  REQUIRE(q->documents.size() == 1);
  CHECK(q->documents[0].doc.id() == "k7");
  auto updated = db->update_if("users", "k7", *back, 1, R"({"_id":"k7","name":"changed","age":4})");
  REQUIRE(updated);
  { auto gone = std::move(before); }

  // And it can go again, with its new chain.
  REQUIRE(db->remove("users", "k7"));
  auto gc = db->gc();
  REQUIRE(gc);
  CHECK(gc->keys_reclaimed == 1);
  CHECK(gc->versions_freed == 2 + 1);  // the re-insert, the update, the tombstone
  CHECK(db->memory().keys == 1);
  CHECK(db->memory().versions == 1);
  CHECK(db->read().query(R"({"collection":"users","schema_version":1,"filter":{"age":4},"limit":10})")
            ->documents.empty());
}

// Regression guard for the visibility cache (policies/view_cache.hpp): a view caches its
// decision per key entry. Had it cached the tombstone it saw, GC freeing the tombstone and
// the key entry would leave the cache pointing at freed memory, and keys created later at
// the same addresses would hit those stale decisions.
TEST_CASE_TEMPLATE("a view that read deleted keys before GC reclaimed them never sees their return", Db,
                   AERODB_ENGINES) {
  auto db = open_or_fail<Db>("/db", mem_fs(std::make_shared<testing::fault_injection_fs>()));
  setup_users(*db);
  REQUIRE(db->create_index("users", "age"));
  constexpr int keys = 300;
  for (int k = 0; k < keys; ++k) REQUIRE(db->insert("users", 1, user_json(k, 0)));
  for (int k = 0; k < keys; ++k) REQUIRE(db->remove("users", "k" + std::to_string(k)));
  auto view = db->read();  // after every deletion: GC may reclaim them all while it is open
  for (int k = 0; k < keys; ++k) REQUIRE_FALSE(view.get("users", "k" + std::to_string(k))->has_value());
  auto gc = db->gc();
  REQUIRE(gc);
  CHECK(gc->floor == view.bound());
  CHECK(gc->keys_reclaimed == keys);
  CHECK(db->memory().keys == 0);
  // The same keys again, in the memory just freed.
  for (int k = 0; k < keys; ++k) REQUIRE(db->insert("users", 1, user_json(k, 1)));
  int seen = 0;
  for (int k = 0; k < keys; ++k) {
    auto got = view.get("users", "k" + std::to_string(k));
    REQUIRE(got);
    seen += got->has_value();
  }
  CHECK(seen == 0);
  auto q = view.query(R"({"collection":"users","schema_version":1,"filter":{"age":{"$gte":0}},"limit":1000})");
  REQUIRE(q);
  CHECK(q->documents.empty());
  CHECK(dump(view, {"users"}).at("users").empty());
  CHECK(dump(db->read(), {"users"}).at("users").size() == keys);
}

namespace {

struct replay_image {
  state_map state;
  memory_stats memory;
  commit_id last = 0;
  commit_id floor = 0;
};

template <class Db>
replay_image image(const Db& db) {
  return {dump(db), db.memory(), db.last_commit_id(), db.oldest_readable()};
}

void check_same(const replay_image& got, const replay_image& want) {
  CHECK(got.state == want.state);
  CHECK(got.memory.keys == want.memory.keys);
  CHECK(got.memory.versions == want.memory.versions);
  CHECK(got.memory.document_bytes == want.memory.document_bytes);
  CHECK(got.last == want.last);
  CHECK(got.floor == want.floor);
}

}  // namespace

TEST_CASE_TEMPLATE("after a crash, a GC that reclaimed keys replays to the same state and accounting", Db,
                   AERODB_ENGINES) {
  auto fs = std::make_shared<testing::fault_injection_fs>();
  replay_image live;
  {
    auto db = open_or_fail<Db>("/db", mem_fs(fs));
    setup_users(*db);
    REQUIRE(db->create_index("users", "age"));
    for (int k = 0; k < 60; ++k) REQUIRE(db->insert("users", 1, user_json(k, 0)));
    for (int k = 0; k < 60; k += 2) REQUIRE(db->update("users", "k" + std::to_string(k), 1, user_json(k, 1)));
    auto held = db->read();
    for (int k = 0; k < 40; ++k) REQUIRE(db->remove("users", "k" + std::to_string(k)));
    auto partial = db->gc();  // held below the deletions
    REQUIRE(partial);
    CHECK(partial->keys_reclaimed == 0);
    for (int k = 40; k < 50; ++k) REQUIRE(db->remove("users", "k" + std::to_string(k)));
    { auto gone = std::move(held); }
    auto full = db->gc();
    REQUIRE(full);
    CHECK(full->keys_reclaimed == 50);
    // After the GC: keys come back, others go without a GC behind them (their tombstones
    // stay), and a view holds some history.
    for (int k = 0; k < 5; ++k) REQUIRE(db->insert("users", 1, user_json(k, 2)));
    for (int k = 50; k < 55; ++k) REQUIRE(db->remove("users", "k" + std::to_string(k)));
    auto later = db->read();
    REQUIRE(db->update("users", "k1", 1, user_json(1, 3)));
    live = image(*db);
    CHECK(live.memory.keys == 15);  // 10 never deleted, 5 deleted after the GC, 5 back
  }
  fs->crash();  // power loss: only what was synced survives, which is every acknowledged commit
  // Every engine recovers the same files to the same state and accounting.
  engine_list<AERODB_ENGINES>::each([&]<class Other>() {
    auto copy = fs->copy_disk();
    auto db = open_or_fail<Other>("/db", mem_fs(copy));
    check_same(image(*db), live);
  });
}

TEST_CASE_TEMPLATE("a checkpoint after GC reclaimed keys holds none of them; snapshot plus log equals the live state",
                   Db, AERODB_ENGINES) {
  auto fs = std::make_shared<testing::fault_injection_fs>();
  replay_image live;
  {
    auto db = open_or_fail<Db>("/db", mem_fs(fs));
    setup_users(*db);
    REQUIRE(db->create_index("users", "age"));
    for (int k = 0; k < 80; ++k) REQUIRE(db->insert("users", 1, user_json(k, 0)));
    for (int k = 0; k < 50; ++k) REQUIRE(db->remove("users", "k" + std::to_string(k)));
    auto gc = db->gc();
    REQUIRE(gc);
    CHECK(gc->keys_reclaimed == 50);
    auto cp = db->checkpoint();
    REQUIRE(cp);
    CHECK(cp->documents == 30);
    // The log after the snapshot: deletions, a return, and a GC that reclaims again.
    for (int k = 50; k < 60; ++k) REQUIRE(db->remove("users", "k" + std::to_string(k)));
    REQUIRE(db->insert("users", 1, user_json(3, 1)));
    auto again = db->gc();
    REQUIRE(again);
    CHECK(again->keys_reclaimed == 10);
    REQUIRE(db->update("users", "k70", 1, user_json(70, 1)));
    REQUIRE(db->gc());
    live = image(*db);
    CHECK(live.memory.keys == 21);
    CHECK(live.memory.versions == 21);
  }
  fs->crash();
  auto db = open_or_fail<Db>("/db", mem_fs(fs));
  CHECK(db->recovery().checkpoint > 0);
  CHECK(db->recovery().snapshot_documents == 30);
  check_same(image(*db), live);
}

// Under group commit a GC record may share its group with later commits, whose versions
// are linked before the GC collects: a key deleted below the floor and written again in
// the same group keeps its key entry live, while replay forgets it and re-creates it. The
// state and the accounting must come out the same either way.
TEST_CASE_TEMPLATE("concurrent deletes, re-inserts and GC replay to the live accounting", Db, AERODB_ENGINES) {
  auto fs = std::make_shared<testing::fault_injection_fs>();
  replay_image live;
  {
    auto db = open_or_fail<Db>("/db", mem_fs(fs));
    setup_users(*db);
    REQUIRE(db->create_index("users", "age"));
    constexpr int writers = 3, keys_each = 8;
    const int rounds = std::max(10, static_cast<int>(60 * test_scale()));
    std::atomic<int> failures{0};
    std::atomic<bool> done{false};
    std::vector<std::thread> threads;
    for (int w = 0; w < writers; ++w)
      threads.emplace_back([&db, &failures, w, rounds] {
        for (int r = 0; r < rounds; ++r)
          for (int i = 0; i < keys_each; ++i) {
            const int k = w * 100 + i;
            const bool ok = r % 2 == 0 ? static_cast<bool>(db->insert("users", 1, user_json(k, r)))
                                       : static_cast<bool>(db->remove("users", "k" + std::to_string(k)));
            if (!ok) ++failures;
          }
      });
    std::thread collector([&db, &failures, &done] {
      while (!done.load()) {
        if (!db->gc()) ++failures;
        auto view = db->read();  // sometimes holds the next GC's floor back
        std::this_thread::yield();
      }
    });
    for (auto& t : threads) t.join();
    done = true;
    collector.join();
    CHECK(failures.load() == 0);
    live = image(*db);
  }
  fs->crash();
  auto db = open_or_fail<Db>("/db", mem_fs(fs));
  check_same(image(*db), live);
}

namespace {

// Forwards to another file system; once armed, the next file sync waits until released.
// Lets a test hold one commit inside its fsync while later commits are written behind it.
class sync_gate_fs final : public io::file_system {
 public:
  explicit sync_gate_fs(std::shared_ptr<io::file_system> inner) : inner_(std::move(inner)) {}

  void arm() {
    std::lock_guard lock(mu_);
    armed_ = true;
  }
  bool holding() const {
    std::lock_guard lock(mu_);
    return holding_;
  }
  void release() {
    std::lock_guard lock(mu_);
    released_ = true;
    cv_.notify_all();
  }

  result<std::unique_ptr<io::file>> open(const std::string& path, io::open_mode mode) override {
    AERO_TRY_ASSIGN(auto f, inner_->open(path, mode));
    return std::unique_ptr<io::file>(std::make_unique<gated_file>(*this, std::move(f)));
  }
  result<void> rename(const std::string& from, const std::string& to) override { return inner_->rename(from, to); }
  result<void> remove(const std::string& path) override { return inner_->remove(path); }
  result<void> sync_dir(const std::string& dir) override { return inner_->sync_dir(dir); }
  result<void> create_dir(const std::string& path) override { return inner_->create_dir(path); }
  result<std::vector<std::string>> list_dir(const std::string& dir) override { return inner_->list_dir(dir); }
  result<bool> exists(const std::string& path) override { return inner_->exists(path); }
  result<std::unique_ptr<io::file_lock>> lock(const std::string& path) override { return inner_->lock(path); }

 private:
  class gated_file final : public io::file {
   public:
    gated_file(sync_gate_fs& owner, std::unique_ptr<io::file> inner) : owner_(owner), inner_(std::move(inner)) {}
    result<void> append(std::span<const std::byte> data) override { return inner_->append(data); }
    result<void> write_at(std::uint64_t offset, std::span<const std::byte> data) override {
      return inner_->write_at(offset, data);
    }
    result<void> sync() override {
      owner_.wait_if_armed();
      return inner_->sync();
    }
    result<std::size_t> read_at(std::uint64_t offset, std::span<std::byte> out) override {
      return inner_->read_at(offset, out);
    }
    result<std::uint64_t> size() override { return inner_->size(); }
    result<void> truncate(std::uint64_t length) override { return inner_->truncate(length); }

   private:
    sync_gate_fs& owner_;
    std::unique_ptr<io::file> inner_;
  };

  void wait_if_armed() {
    std::unique_lock lock(mu_);
    if (!armed_) return;
    armed_ = false;
    holding_ = true;
    cv_.wait(lock, [this] { return released_; });
    holding_ = false;
  }

  std::shared_ptr<io::file_system> inner_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool armed_ = false;     // guarded by mu_
  bool holding_ = false;   // guarded by mu_
  bool released_ = false;  // guarded by mu_
};

// Waits, polling, until `done` holds; fails the test after ten seconds instead of hanging.
template <class Done>
void wait_until(Done&& done, const char* what) {
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!done()) {
    if (std::chrono::steady_clock::now() > give_up) FAIL("timed out waiting until " << what);
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

}  // namespace

// The case the determinism argument in engine/gc.hpp is about, made to happen: while one
// commit waits in its fsync, a GC record and then an insert of a key the GC reclaims are
// written behind it, so the insert's version is linked before the GC collects. Live, the
// key keeps its entry (it has the new version); replay forgets it at the GC record and the
// insert creates it again. Pipelined groups need group commit: fsync_per_commit runs one
// commit at a time.
TEST_CASE_TEMPLATE("a key written again behind the GC record that reclaims it replays to the live state", Db,
                   AERODB_ENGINES) {
  if constexpr (std::is_same_v<typename Db::fsync_policy, policies::fsync_per_commit>) {
    MESSAGE("fsync_per_commit never links a commit while an earlier one is in its fsync");
  } else {
    auto mem = std::make_shared<testing::fault_injection_fs>();
    auto gate = std::make_shared<sync_gate_fs>(mem);
    replay_image live;
    {
      open_options o;
      o.fs = gate;
      auto db = open_or_fail<Db>("/db", o);
      setup_users(*db);
      REQUIRE(db->insert("users", 1, user_json(1, 0)));
      REQUIRE(db->insert("users", 1, user_json(2, 0)));
      REQUIRE(db->remove("users", "k1"));
      const auto records = [&db] { return db->wal_stats().records_appended; };
      const std::uint64_t before = records();

      gate->arm();
      std::thread held([&db] { CHECK(db->insert("users", 1, user_json(3, 0))); });
      wait_until([&] { return gate->holding(); }, "the first commit waits in its fsync");
      result<gc_outcome> gc = gc_outcome{};
      std::thread collector([&db, &gc] { gc = db->gc(); });
      wait_until([&] { return records() == before + 2; }, "the GC record is written");
      std::thread returning([&db] { CHECK(db->insert("users", 1, user_json(1, 1))); });
      wait_until([&] { return records() == before + 3; }, "the insert of k1 is written");
      gate->release();
      held.join();
      collector.join();
      returning.join();
      REQUIRE(gc);
      CHECK(gc->record == before + 2);  // right after the held insert
      CHECK(gc->keys_reclaimed == 0);   // k1 already had its new version when GC collected
      CHECK(gc->versions_freed == 2);   // k1's first version and its tombstone
      live = image(*db);
      CHECK(live.memory.keys == 3);
      CHECK(live.memory.versions == 3);
    }
    mem->crash();
    auto db = open_or_fail<Db>("/db", mem_fs(mem));
    check_same(image(*db), live);
  }
}

TEST_CASE_TEMPLATE("with gc_after_superseded_versions, an update- and delete-heavy load stays bounded", Db,
                   AERODB_ENGINES) {
  open_options o = mem_fs(std::make_shared<testing::fault_injection_fs>());
  o.gc_after_superseded_versions = 100;
  auto db = open_or_fail<Db>("/db", o);
  setup_users(*db);
  REQUIRE(db->create_index("users", "age"));
  constexpr int per_round = 200;
  const int rounds = std::max(10, static_cast<int>(40 * test_scale()));
  memory_stats most;
  auto note = [&] {
    const auto m = db->memory();
    most.keys = std::max(most.keys, m.keys);
    most.versions = std::max(most.versions, m.versions);
    most.document_bytes = std::max(most.document_bytes, m.document_bytes);
  };
  std::uint64_t bytes_of_one_round = 0;
  for (int r = 0; r < rounds; ++r) {
    // Keys never seen before each round: without reclamation every round would leave
    // per_round tombstones and key entries behind for good.
    auto id = [r](int i) { return "r" + std::to_string(r) + "-" + std::to_string(i); };
    auto json = [&](int i, int v) {
      return R"({"_id":")" + id(i) + R"(","name":"version )" + std::to_string(v) + R"(","age":)" +
             std::to_string(i % 50) + "}";
    };
    for (int i = 0; i < per_round; ++i) REQUIRE(db->insert("users", 1, json(i, 0)));
    note();
    if (r == 0) bytes_of_one_round = db->memory().document_bytes;
    for (int v = 1; v <= 2; ++v)
      for (int i = 0; i < per_round; ++i) {
        REQUIRE(db->update("users", id(i), 1, json(i, v)));
        note();
      }
    for (int i = 0; i < per_round; ++i) {
      REQUIRE(db->remove("users", id(i)));
      note();
    }
  }
  CHECK_FALSE(db->maintenance_error().has_value());
  // A GC every 100 superseded versions: a round's keys, plus at most 100 versions behind.
  CHECK(most.keys <= per_round + 100);
  CHECK(most.versions <= per_round + 100);
  CHECK(most.document_bytes <= 2 * bytes_of_one_round);
  // What the last automatic GC left: at most 100 of the last round's tombstones.
  CHECK(db->memory().keys <= 100);
  CHECK(db->memory().document_bytes == 0);
  REQUIRE(db->gc());
  CHECK(db->memory().keys == 0);
  CHECK(db->memory().versions == 0);
  CHECK(db->read().query(R"({"collection":"users","schema_version":1,"filter":{"age":{"$gte":0}},"limit":10})")
            ->documents.empty());
}
