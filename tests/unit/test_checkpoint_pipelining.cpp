// Checkpoint pipelining (docs/optimizations/checkpoint_pipelining.md): the CheckpointPolicy
// changes how long a checkpoint holds the state lock and how much of the snapshot it keeps
// in memory, never what it writes or in which order it makes it durable.
//   - pipelined checkpoints write the whole-image checkpoint's bytes, for both index
//     policies and for batch and chunk sizes down to one key and a few bytes, and write the
//     data file in appends bounded by the chunk size;
//   - writes and GC that run between two batches (the state lock released) change nothing
//     in the image, even when GC forgets keys the checkpoint still holds;
//   - a crash at every I/O operation of a pipelined checkpoint recovers the state of the
//     full log, with the pipelined policy and with the whole-image one (enable, write,
//     crash, disable, recover), and the other way round;
//   - checkpoints run while two writers delete and re-insert and a GC thread collects
//     (the TSan build runs this file), and the result reopens with either policy.
#include "support/common.hpp"

#include <atomic>
#include <functional>
#include <thread>

using namespace aerodb;
using namespace aerodb_test;
namespace fmt = aerodb::format;

namespace {

using tiny_batches = policies::basic_pipelined_checkpoint<1, 64>;
using small_batches = policies::basic_pipelined_checkpoint<3, 700>;

// A pipelined policy whose hook runs `between` after each batch (the lock released).
struct hook {
  static inline std::function<void()> between;
  static inline int calls = 0;
};
struct hooked_batches : policies::basic_pipelined_checkpoint<4, 256> {
  static void between_batches() {
    ++hook::calls;
    if (hook::between) hook::between();
  }
};

template <class C>
using ordered_with = aerodb_test::engine<policies::fsync_per_commit, policies::full_traversal, policies::ordered_index,
                                        policies::baseline_memory_layout, C>;
template <class C>
using accelerated_with = aerodb_test::engine<policies::group_commit, policies::view_cache, policies::accelerated_index,
                                            policies::compact_memory_layout, C>;

open_options with_fs(std::shared_ptr<testing::fault_injection_fs> fs) {
  open_options o;
  o.fs = std::move(fs);
  o.wal_segment_bytes = 2048;
  return o;
}

// Users (with an index), items, and `n` commits of inserts, updates and deletes: deleted
// keys leave tombstones that GC can reclaim later. Items come first in the image, so a GC
// during its first batches forgets item keys the walk has not reached yet.
template <class Db>
void workload(Db& db, int n) {
  setup_users(db);
  REQUIRE(db.register_schema(item_schema_v1));
  REQUIRE(db.create_collection("items", "item"));
  REQUIRE(db.create_index("users", "age"));
  for (int i = 0; i < n; ++i) {
    const std::string id = "u" + std::to_string(i);
    REQUIRE(db.insert("users", 1, R"({"_id":")" + id + R"(","name":"n","age":)" + std::to_string(i % 40) + "}"));
    if (i % 3 == 0) REQUIRE(db.update("users", id, 1, R"({"_id":")" + id + R"(","name":"changed","age":7})"));
    if (i % 5 == 0) REQUIRE(db.remove("users", id));
    if (i % 4 == 0) REQUIRE(db.insert("items", 1, R"({"_id":"i)" + std::to_string(i) + R"(","qty":3})"));
    if (i % 8 == 0) REQUIRE(db.remove("items", "i" + std::to_string(i)));
  }
}

// Every file but LOCK, by name.
std::map<std::string, std::vector<std::byte>> files_of(const testing::fault_injection_fs& fs) {
  std::map<std::string, std::vector<std::byte>> out;
  auto names = const_cast<testing::fault_injection_fs&>(fs).list_dir("/db");
  REQUIRE(names);
  for (const auto& n : *names)
    if (n != "LOCK") out[n] = fs.contents("/db/" + n);
  return out;
}

// The files a whole-image checkpoint leaves after `workload(n)` on the baseline engine.
std::map<std::string, std::vector<std::byte>> whole_image_files(int n) {
  auto fs = std::make_shared<testing::fault_injection_fs>();
  auto db = open_or_fail<database>("/db", with_fs(fs));
  workload(*db, n);
  REQUIRE(db->checkpoint());
  return files_of(*fs);
}

void check_same_files(const std::map<std::string, std::vector<std::byte>>& mine,
                      const std::map<std::string, std::vector<std::byte>>& base) {
  REQUIRE(mine.size() == base.size());
  std::size_t snapshots = 0;
  for (const auto& entry : base) {
    const std::string& name = entry.first;
    INFO("file " << name);
    REQUIRE(mine.count(name) == 1);
    CHECK(mine.at(name) == entry.second);
    snapshots += fmt::parse_snapshot_data_file_name(name).has_value();
  }
  CHECK(snapshots == 1);
}

}  // namespace

TEST_CASE_TEMPLATE("a pipelined checkpoint writes the whole-image checkpoint's bytes", Db,
                   ordered_with<tiny_batches>, accelerated_with<small_batches>, accelerated_database) {
  const auto base = whole_image_files(150);
  auto fs = std::make_shared<testing::fault_injection_fs>();
  {
    auto db = open_or_fail<Db>("/db", with_fs(fs));
    workload(*db, 150);
    const std::uint64_t before = fs->op_count();
    auto cp = db->checkpoint();
    REQUIRE(cp);
    CHECK(cp->documents > 100);

    // How the data file was written: one append for the whole image, or appends of at most
    // a chunk plus one batch (these documents encode to < 200 bytes) or the catalog.
    const std::string tmp = "/db/" + fmt::snapshot_data_file_name(cp->commit) + ".tmp";
    std::size_t appends = 0;
    std::uint64_t largest = 0, total = 0;
    for (const auto& op : fs->trace()) {
      if (op.number <= before || op.kind != testing::op_kind::append || op.path != tmp) continue;
      ++appends;
      largest = std::max(largest, op.bytes);
      total += op.bytes;
    }
    CHECK(total == cp->snapshot_bytes);
    constexpr std::size_t chunk = Db::checkpoint_policy::chunk_bytes;
    if constexpr (chunk == 0) {
      CHECK(appends == 1);
    } else {
      constexpr std::size_t bound = chunk + Db::checkpoint_policy::keys_per_batch * 200 + 2048;
      CHECK(largest < bound);
      CHECK(appends >= cp->snapshot_bytes / bound);
      if (chunk < 1024) CHECK(appends > 10);
    }
  }
  check_same_files(files_of(*fs), base);
  // Either policy opens the other's checkpoint to the same state.
  state_map a, b;
  { a = dump(*open_or_fail<Db>("/db", with_fs(fs))); }
  { b = dump(*open_or_fail<database>("/db", with_fs(fs))); }
  CHECK(a == b);
  CHECK(a["users"].size() > 100);
}

TEST_CASE_TEMPLATE("writes and GC between two batches leave the image as it was at the boundary", Db,
                   ordered_with<hooked_batches>, accelerated_with<hooked_batches>) {
  const auto base = whole_image_files(150);
  auto fs = std::make_shared<testing::fault_injection_fs>();
  state_map after;
  {
    auto db = open_or_fail<Db>("/db", with_fs(fs));
    workload(*db, 150);
    std::uint64_t reclaimed = 0;
    int round = 0;
    hook::calls = 0;
    hook::between = [&] {
      // The state lock is free here: these writes would deadlock under a whole-image hold.
      const int r = round++;
      if (r > 20) return;
      for (int i = r; i < 150; i += 21) {
        const std::string id = "u" + std::to_string(i);
        if (i % 5 == 0) {
          // Deleted before the boundary: written again, then deleted again below.
          REQUIRE(db->insert("users", 1, R"({"_id":")" + id + R"(","name":"back","age":1})"));
        } else if (i % 2 == 0) {
          REQUIRE(db->remove("users", id));
        } else {
          REQUIRE(db->update("users", id, 1, R"({"_id":")" + id + R"(","name":"late","age":2})"));
        }
      }
      REQUIRE(db->insert("users", 1, R"({"_id":"u)" + std::to_string(r) + R"(x","name":"new","age":3})"));
      REQUIRE(db->insert("items", 1, R"({"_id":"i)" + std::to_string(r) + R"(x","qty":9})"));
      // GC may collect everything below the checkpoint's own view, which holds it at the
      // boundary: the keys deleted before it lose their tombstones and leave their maps.
      auto g = db->gc();
      REQUIRE(g);
      reclaimed += g->keys_reclaimed;
    };
    auto cp = db->checkpoint();
    hook::between = nullptr;
    REQUIRE(cp);
    CHECK(hook::calls > 20);
    CHECK(reclaimed > 0);  // GC forgot keys while the checkpoint held pointers to them
    after = dump(*db);
  }
  // The snapshot is the whole-image one; the writes made meanwhile are in the log after it.
  auto mine = files_of(*fs);
  std::erase_if(mine, [](const auto& f) { return fmt::parse_segment_file_name(f.first).has_value(); });
  auto theirs = base;
  std::erase_if(theirs, [](const auto& f) { return fmt::parse_segment_file_name(f.first).has_value(); });
  check_same_files(mine, theirs);
  auto db = open_or_fail<database>("/db", with_fs(fs));
  CHECK(dump(*db) == after);
}

TEST_CASE_TEMPLATE("a crash at every I/O operation of a pipelined checkpoint recovers the full-log state "
                   "with either checkpoint policy", Db,
                   ordered_with<tiny_batches>, ordered_with<policies::whole_image_checkpoint>) {
  // The other policy of the pair recovers each crash state too.
  using other = std::conditional_t<Db::checkpoint_policy::keys_per_batch == 0, ordered_with<tiny_batches>,
                                   ordered_with<policies::whole_image_checkpoint>>;
  std::uint64_t before_checkpoint = 0, after_checkpoint = 0;
  state_map expected;
  commit_id last = 0;
  {
    auto clean = std::make_shared<testing::fault_injection_fs>();
    auto db = open_or_fail<Db>("/db", with_fs(clean));
    workload(*db, 40);
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
        auto db = open_or_fail<Db>("/db", with_fs(fs));
        workload(*db, 40);
        fs->crash_after(k);
        (void)db->checkpoint();  // fails somewhere, or completes
      }
      const std::uint64_t unsynced = fs->unsynced_bytes_of_last_append_file();
      fs->crash({kind, unsynced / 2});
      INFO("crash after op " << k << ", variant " << static_cast<int>(kind));
      auto copy = fs->copy_disk();
      {
        auto db = open_or_fail<other>("/db", with_fs(copy));
        CHECK(db->last_commit_id() == last);
        CHECK(dump(*db) == expected);
      }
      auto db = open_or_fail<Db>("/db", with_fs(fs));
      CHECK(db->last_commit_id() == last);
      CHECK(dump(*db) == expected);
      // No leftover of the interrupted checkpoint survives the next one.
      REQUIRE(db->insert("items", 1, R"({"_id":"after","qty":1})"));
      REQUIRE(db->checkpoint());
      const auto names = fs->list_dir("/db");
      REQUIRE(names);
      for (const auto& n : *names) CHECK(n.find(".tmp") == std::string::npos);
      ++states;
    }
  }
  MESSAGE("pipelined checkpoint crash sweep: " << after_checkpoint - before_checkpoint << " operations, "
                                               << states << " crash states");
  CHECK(states >= 30);
}

TEST_CASE_TEMPLATE("pipelined checkpoints with writers and GC on other threads", Db, accelerated_with<tiny_batches>,
                   ordered_with<small_batches>) {
  auto fs = std::make_shared<testing::fault_injection_fs>();
  auto db = open_or_fail<Db>("/db", with_fs(fs));
  workload(*db, 60);
  std::atomic<int> checkpoints{0};
  std::atomic<int> failures{0};
  std::atomic<std::uint64_t> reclaimed{0};
  std::atomic<bool> stop{false};
  // Deletes and re-inserts, so that tombstones keep appearing for GC to forget while the
  // checkpoints walk; each thread owns its keys.
  auto writer = [&](int first) {
    for (int round = 0; round < 40 || !stop.load(); ++round) {
      for (int i = first; i < 60; i += 2) {
        const std::string id = "u" + std::to_string(i);
        const bool present = (round + i) % 2 == 0;
        auto expected_or_ok = [](const auto& r) {
          return r || r.code() == errc::document_not_found || r.code() == errc::document_exists;
        };
        const bool fine = present ? expected_or_ok(db->remove("users", id))
                                  : expected_or_ok(db->insert("users", 1, R"({"_id":")" + id + R"(","name":"w","age":5})"));
        if (!fine) ++failures;
      }
    }
  };
  std::thread a(writer, 0), b(writer, 1);
  std::thread collector([&] {
    while (!stop.load()) {
      auto g = db->gc();
      if (!g) ++failures;
      else reclaimed += g->keys_reclaimed;
    }
  });
  // At least four checkpoints, and on until GC has forgotten some key (how soon depends on
  // the scheduler; the deterministic case is the hooked test above).
  while (checkpoints.load() < 4 || (reclaimed.load() == 0 && checkpoints.load() < 2000)) {
    if (!db->checkpoint()) ++failures;
    ++checkpoints;
  }
  stop = true;
  a.join();
  b.join();
  collector.join();
  CHECK(failures == 0);
  CHECK(reclaimed > 0);
  const auto expected = dump(*db);
  db.reset();
  CHECK(dump(*open_or_fail<database>("/db", with_fs(fs))) == expected);
  CHECK(dump(*open_or_fail<Db>("/db", with_fs(fs))) == expected);
}
