// Persistent snapshots and checkpoints:
//   - recovery from checkpoint + log tail equals recovery from the full log;
//   - a crash at every I/O operation of a checkpoint recovers the same state as the full
//     log, in every power-loss variant;
//   - a checkpoint record naming a missing or corrupt snapshot fails with a FATAL code;
//   - a checkpoint runs while readers and writers continue;
//   - a snapshot opens read-only and answers like the live database at its boundary.
#include "support/common.hpp"

#include <atomic>
#include <mutex>
#include <thread>

using namespace aerodb;
using namespace aerodb_test;
namespace fmt = aerodb::format;

namespace {

open_options with_fs(std::shared_ptr<testing::fault_injection_fs> fs, std::uint64_t segment = 2048) {
  open_options o;
  o.fs = std::move(fs);
  o.wal_segment_bytes = segment;
  return o;
}

// Schemas, collections, an index, and `n` commits of inserts, updates and deletes.
template <class Db>
void workload(Db& db, int first, int n) {
  if (first == 0) {
    setup_users(db);
    REQUIRE(db.register_schema(item_schema_v1));
    REQUIRE(db.create_collection("items", "item"));
    REQUIRE(db.create_index("users", "age"));
  }
  for (int i = first; i < first + n; ++i) {
    const std::string id = "u" + std::to_string(i);
    REQUIRE(db.insert("users", 1, R"({"_id":")" + id + R"(","name":"n","age":)" + std::to_string(i % 40) + "}"));
    if (i % 3 == 0) REQUIRE(db.update("users", id, 1, R"({"_id":")" + id + R"(","name":"changed","age":7})"));
    if (i % 5 == 0) REQUIRE(db.remove("users", id));
    if (i % 4 == 0) REQUIRE(db.insert("items", 1, R"({"_id":"i)" + std::to_string(i) + R"(","qty":3})"));
  }
}

std::size_t wal_segments(testing::fault_injection_fs& fs) {
  std::size_t n = 0;
  const auto names = fs.list_dir("/db");
  REQUIRE(names);
  for (const auto& name : *names)
    if (fmt::parse_segment_file_name(name)) ++n;
  return n;
}

}  // namespace

TEST_CASE_TEMPLATE("recovery from checkpoint + log tail equals recovery from the full log", Db, AERODB_ENGINES) {
  auto with_cp = std::make_shared<testing::fault_injection_fs>();
  auto full = std::make_shared<testing::fault_injection_fs>();
  {
    auto a = open_or_fail<Db>("/db", with_fs(with_cp));
    auto b = open_or_fail<Db>("/db", with_fs(full));
    workload(*a, 0, 60);
    workload(*b, 0, 60);
    const auto segments_before = wal_segments(*with_cp);
    auto cp = a->checkpoint();
    REQUIRE(cp);
    CHECK(cp->commit == a->last_commit_id());
    CHECK(cp->documents == dump(*a)["users"].size() + dump(*a)["items"].size());
    CHECK(cp->segments_removed > 0);
    CHECK(wal_segments(*with_cp) < segments_before);
    workload(*a, 60, 30);
    workload(*b, 60, 30);
  }
  auto a = open_or_fail<Db>("/db", with_fs(with_cp));
  auto b = open_or_fail<Db>("/db", with_fs(full));
  CHECK(a->recovery().checkpoint > 0);
  CHECK(b->recovery().checkpoint == 0);
  CHECK(a->recovery().records_replayed < b->recovery().records_replayed);
  CHECK(a->last_commit_id() == b->last_commit_id());
  CHECK(dump(*a) == dump(*b));
  // Indexes rebuilt from the snapshot answer exactly like those rebuilt from the log.
  const char* queries[] = {
      R"({"collection":"users","schema_version":1,"filter":{"age":7},"limit":10000})",
      R"({"collection":"users","schema_version":1,"filter":{"age":{"$gte":10,"$lt":30}},"sort":{"age":"desc"},"limit":25})",
      R"({"collection":"users","schema_version":1,"sort":{"age":"asc"},"limit":10000})",
      R"({"collection":"items","schema_version":1,"filter":{"_id":{"$gt":"i3"}},"limit":10000})",
  };
  auto va = a->read();
  auto vb = b->read();
  for (const char* q : queries) {
    INFO(q);
    auto ra = va.query(q);
    auto rb = vb.query(q);
    REQUIRE(ra);
    REQUIRE(rb);
    REQUIRE(ra->documents.size() == rb->documents.size());
    for (std::size_t i = 0; i < ra->documents.size(); ++i)
      CHECK(ra->documents[i].doc == rb->documents[i].doc);
  }
  // Once GC leaves only live versions on both sides, the indexes hold the same entries:
  // the same bounds and the same candidates.
  {
    auto drop_a = std::move(va);
    auto drop_b = std::move(vb);
  }
  REQUIRE(a->gc());
  REQUIRE(b->gc());
  auto ga = a->read();
  auto gb = b->read();
  for (const char* q : queries) {
    INFO(q);
    auto ra = ga.query(q);
    auto rb = gb.query(q);
    REQUIRE(ra);
    REQUIRE(rb);
    CHECK(ra->plan.max_scan == rb->plan.max_scan);
    CHECK(ra->candidates == rb->candidates);
    CHECK(ra->documents.size() == rb->documents.size());
  }
  // CommitIds continue after the checkpoint: never reset.
  CHECK(*a->insert("users", 1, R"({"_id":"z","name":"z"})") > b->recovery().last_commit_id);
  // Older history is gone after a checkpoint recovery, and said so.
  CHECK(a->read_at(a->recovery().checkpoint - 1).code() == errc::read_view_too_old);
}

TEST_CASE("a crash at every I/O operation of a checkpoint recovers the full-log state") {
  open_options base = with_fs(nullptr);
  // Clean run: how many operations the workload and the checkpoint take.
  auto clean = std::make_shared<testing::fault_injection_fs>();
  state_map expected;
  commit_id last = 0;
  std::uint64_t before_checkpoint = 0, after_checkpoint = 0;
  {
    auto db = open_or_fail<database>("/db", with_fs(clean));
    workload(*db, 0, 40);
    expected = dump(*db);
    last = db->last_commit_id();
    before_checkpoint = clean->op_count();
    REQUIRE(db->checkpoint());
    after_checkpoint = clean->op_count();
  }
  REQUIRE(after_checkpoint > before_checkpoint + 8);

  std::uint64_t states = 0;
  for (std::uint64_t k = before_checkpoint; k <= after_checkpoint; ++k) {
    for (auto kind : {testing::crash_kind::drop_unsynced, testing::crash_kind::keep_unsynced,
                      testing::crash_kind::tear_last_append}) {
      auto fs = std::make_shared<testing::fault_injection_fs>();
      {
        auto db = open_or_fail<database>("/db", with_fs(fs));
        workload(*db, 0, 40);
        fs->crash_after(k);
        (void)db->checkpoint();  // fails somewhere, or completes
      }
      const std::uint64_t unsynced = fs->unsynced_bytes_of_last_append_file();
      fs->crash({kind, unsynced / 2});
      INFO("crash after op " << k << ", variant " << static_cast<int>(kind));
      auto db = database::open("/db", with_fs(fs));
      if (!db) FAIL("recovery failed: " << db.error_value().to_string());
      CHECK((*db)->last_commit_id() == last);
      CHECK(dump(**db) == expected);
      // And it goes on: a write, a checkpoint, a reopen.
      REQUIRE((*db)->insert("items", 1, R"({"_id":"after","qty":1})"));
      REQUIRE((*db)->checkpoint());
      db->reset();
      auto again = database::open("/db", with_fs(fs));
      REQUIRE(again);
      CHECK((*again)->last_commit_id() == last + 1);
      ++states;
    }
  }
  std::printf("checkpoint crash sweep: %llu operations, %llu crash states checked\n",
              static_cast<unsigned long long>(after_checkpoint - before_checkpoint),
              static_cast<unsigned long long>(states));
  print_counts({{"campaign", "checkpoint-crash"},
                {"operations", after_checkpoint - before_checkpoint},
                {"crash_states", states}});
  CHECK(states >= 30);
}

TEST_CASE("a checkpoint record naming a missing or corrupt snapshot is FATAL") {
  auto make = [] {
    auto fs = std::make_shared<testing::fault_injection_fs>();
    auto db = open_or_fail<database>("/db", with_fs(fs));
    workload(*db, 0, 10);
    auto cp = db->checkpoint();
    REQUIRE(cp);
    return std::pair{fs, cp->commit};
  };
  SUBCASE("missing data file") {
    auto [fs, c] = make();
    REQUIRE(fs->remove("/db/" + fmt::snapshot_data_file_name(c)));
    auto r = database::open("/db", with_fs(fs));
    REQUIRE_FALSE(r);
    CHECK(r.code() == errc::checkpoint_snapshot_missing);
    CHECK(r.error_value().level() == severity::fatal);
  }
  SUBCASE("missing manifest") {
    auto [fs, c] = make();
    REQUIRE(fs->remove("/db/" + fmt::snapshot_manifest_file_name(c)));
    auto r = database::open("/db", with_fs(fs));
    REQUIRE_FALSE(r);
    CHECK(r.code() == errc::checkpoint_snapshot_missing);
  }
  SUBCASE("a flipped bit in the data file") {
    auto [fs, c] = make();
    fs->flip_bit("/db/" + fmt::snapshot_data_file_name(c), 200);
    auto r = database::open("/db", with_fs(fs));
    REQUIRE_FALSE(r);
    CHECK(r.code() == errc::snapshot_corruption);
    CHECK(r.error_value().level() == severity::fatal);
  }
  SUBCASE("a flipped bit in the manifest") {
    auto [fs, c] = make();
    fs->flip_bit("/db/" + fmt::snapshot_manifest_file_name(c), 70);
    auto r = database::open("/db", with_fs(fs));
    REQUIRE_FALSE(r);
    CHECK(r.code() == errc::snapshot_corruption);
  }
  SUBCASE("a flipped bit in the checkpoint record") {
    auto [fs, c] = make();
    fs->flip_bit("/db/CHECKPOINT", 100);
    auto r = database::open("/db", with_fs(fs));
    REQUIRE_FALSE(r);
    CHECK(r.code() == errc::checkpoint_corruption);
    CHECK(r.error_value().level() == severity::fatal);
  }
}

TEST_CASE_TEMPLATE("a checkpoint runs while readers and writers continue", Db, AERODB_ENGINES) {
  auto fs = std::make_shared<testing::fault_injection_fs>();
  auto db = open_or_fail<Db>("/db", with_fs(fs));
  workload(*db, 0, 20);
  std::atomic<bool> stop{false};
  std::atomic<int> failures{0};
  std::atomic<int> checkpoints{0};
  // The writer goes on until three checkpoints have completed, so they always overlap.
  std::thread writer([&] {
    for (int i = 0; i < 200 || checkpoints.load() < 3; ++i)
      if (!db->insert("items", 1, R"({"_id":"w)" + std::to_string(100000 + i) + R"(","qty":1})")) ++failures;
    stop = true;
  });
  std::thread reader([&] {
    while (!stop) {
      auto view = db->read();
      auto a = dump(view, {"users", "items"});
      if (a != dump(view, {"users", "items"})) ++failures;
    }
  });
  while (checkpoints.load() < 3) {
    if (!db->checkpoint()) ++failures;
    ++checkpoints;
  }
  writer.join();
  reader.join();
  CHECK(failures == 0);
  CHECK(checkpoints == 3);
  const auto expected = dump(*db);
  db.reset();
  auto again = open_or_fail<Db>("/db", with_fs(fs));
  CHECK(dump(*again) == expected);
}

TEST_CASE_TEMPLATE("a snapshot opens read-only and answers like the database at its boundary", Db, AERODB_ENGINES) {
  auto fs = std::make_shared<testing::fault_injection_fs>();
  auto db = open_or_fail<Db>("/db", with_fs(fs));
  workload(*db, 0, 30);
  auto cp = db->checkpoint();
  REQUIRE(cp);
  auto at_boundary = db->read();
  const auto expected = dump(at_boundary, {"users", "items"});
  workload(*db, 30, 10);  // the live database moves on

  auto snap = Db::open_snapshot("/db", cp->commit, with_fs(fs));
  REQUIRE(snap);
  CHECK((*snap)->is_snapshot());
  CHECK((*snap)->last_commit_id() == cp->commit);
  CHECK(dump(**snap) == expected);
  CHECK((*snap)->insert("items", 1, R"({"_id":"no","qty":1})").code() == errc::storage_read_only);
  CHECK((*snap)->checkpoint().code() == errc::storage_read_only);
  CHECK(Db::open_snapshot("/db", cp->commit + 1000, with_fs(fs)).code() == errc::snapshot_not_found);
}

TEST_CASE_TEMPLATE("regression: a checkpoint whose segment removals persisted out of order still opens, "
                   "not 'segment 2 is missing before this one'", Db, AERODB_ENGINES) {
  // Found by the real-syscall crash test: a checkpoint removes the segments it covers and
  // syncs the directory once; a power loss before that sync may keep segment 1 and lose
  // segment 2. Everything in both is in the snapshot, so the store must open, with every
  // commit, and tidy segment 1 away.
  auto fs = std::make_shared<testing::fault_injection_fs>();
  std::string before;
  commit_id last = 0;
  std::string first_segment;
  {
    auto db = open_or_fail<Db>("/db", with_fs(fs, 512));
    workload(*db, 0, 60);
    auto names = fs->list_dir("/db");
    REQUIRE(names);
    for (const auto& n : *names)
      if (fmt::parse_segment_file_name(n) && first_segment.empty()) first_segment = n;
    const auto seg1_bytes = fs->contents("/db/" + first_segment);
    const std::size_t segments_before = wal_segments(*fs);
    REQUIRE(db->checkpoint());
    REQUIRE(wal_segments(*fs) + 2 <= segments_before);  // it covered at least two
    REQUIRE_FALSE(*fs->exists("/db/" + first_segment));
    // The crash's leftover: segment 1 back, the later covered ones gone.
    auto f = fs->open("/db/" + first_segment, io::open_mode::create_or_truncate);
    REQUIRE(f);
    REQUIRE((*f)->append(seg1_bytes));
    REQUIRE((*f)->sync());
    REQUIRE(fs->sync_dir("/db"));
    before = image_of(*db);
    last = db->last_commit_id();
  }
  auto db = Db::open("/db", with_fs(fs, 512));
  if (!db) FAIL("open failed: " << db.error_value().to_string());
  CHECK((*db)->last_commit_id() == last);
  CHECK(image_of(**db) == before);
  CHECK_FALSE(*fs->exists("/db/" + first_segment));
  CHECK_FALSE(fs->durable_exists("/db/" + first_segment));
}

TEST_CASE_TEMPLATE("a backup taken while two writers run opens and holds every commit acknowledged before the call", Db, AERODB_ENGINES) {
  auto fs = std::make_shared<testing::fault_injection_fs>();
  auto db = open_or_fail<Db>("/db", with_fs(fs));
  workload(*db, 0, 10);
  std::mutex mu;
  std::vector<std::pair<std::string, commit_id>> acknowledged;  // _id, CommitId
  std::atomic<bool> stop{false};
  std::atomic<int> written{0};
  std::vector<std::thread> writers;
  for (int t = 0; t < 2; ++t)
    writers.emplace_back([&, t] {
      for (int i = 0; !stop.load(); ++i) {
        const std::string id = "w" + std::to_string(t) + "-" + std::to_string(i);
        auto c = db->insert("items", 1, R"({"_id":")" + id + R"(","qty":)" + std::to_string(i % 50) + "}");
        if (!c) FAIL_CHECK(c.error_value().to_string());
        std::lock_guard lock(mu);
        acknowledged.emplace_back(id, *c);
        written.fetch_add(1);
      }
    });
  while (written.load() < 100) std::this_thread::yield();
  std::vector<std::pair<std::string, commit_id>> before;
  {
    std::lock_guard lock(mu);
    before = acknowledged;
  }
  auto b = db->backup("/backup");
  const int during = written.load();
  while (written.load() < during + 50) std::this_thread::yield();  // writers went on
  stop = true;
  for (auto& w : writers) w.join();
  REQUIRE(b);
  commit_id newest_before = 0;
  for (const auto& a : before) newest_before = std::max(newest_before, a.second);
  CHECK(b->commit >= newest_before);
  CHECK(b->documents > 0);

  // The live store as of the backup's CommitId, to compare with.
  state_map expected;
  {
    auto at = db->read_at(b->commit);
    REQUIRE(at);
    expected = dump(*at, {"users", "items"});
  }  // the view goes before the store it reads
  db.reset();

  auto copy = open_or_fail<Db>("/backup", with_fs(fs));
  CHECK(copy->last_commit_id() == b->commit);
  CHECK(dump(*copy) == expected);
  {
    const auto view = copy->read();
    for (const auto& a : before) {
      CAPTURE(a.first);
      auto d = view.get("items", a.first);
      REQUIRE(d);
      CHECK(d->has_value());
    }
  }
  // The copy is a store of its own: it takes writes, and they survive a reopen.
  auto next = copy->insert("items", 1, R"({"_id":"after-backup","qty":1})");
  REQUIRE(next);
  CHECK(*next == b->commit + 1);
  copy.reset();
  auto again = open_or_fail<Db>("/backup", with_fs(fs));
  CHECK(again->last_commit_id() == b->commit + 1);
}

TEST_CASE_TEMPLATE("a backup refuses an existing destination and leaves nothing behind when it fails", Db, AERODB_ENGINES) {
  auto fs = std::make_shared<testing::fault_injection_fs>();
  auto db = open_or_fail<Db>("/db", with_fs(fs));
  workload(*db, 0, 10);
  REQUIRE(fs->create_dir("/taken"));
  const auto ops = fs->op_count();
  auto taken = db->backup("/taken");
  CHECK(taken.code() == errc::storage_exists);
  CHECK(taken.error_value().detail("directory") == "/taken");
  CHECK(fs->op_count() == ops);
  CHECK(db->backup("").code() == errc::config_invalid);

  // An I/O error at each step of the backup: the error is returned, the live store goes
  // on, and the destination holds no CHECKPOINT (nothing that opens as a store).
  for (std::uint64_t k = 0;; ++k) {
    CAPTURE(k);
    const std::string dest = "/b" + std::to_string(k);
    fs->fail_op(fs->op_count() + k, EIO);
    auto r = db->backup(dest);
    if (r) break;  // k ran past the backup's last operation
    CHECK(r.code() == errc::storage_io_error);
    CHECK_FALSE(fs->durable_exists(dest + "/CHECKPOINT"));
    CHECK(db->insert("items", 1, R"({"_id":"still-)" + std::to_string(k) + R"(","qty":1})"));
    REQUIRE(k < 100);
  }
}
