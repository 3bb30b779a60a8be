// Recovery's phases as the application sees them: open_options::on_recovery_progress and
// the recovery report's phase times (options.hpp, engine/phase_progress.hpp). Every case
// runs for every engine in AERODB_ENGINES.
#include "support/common.hpp"

#include <algorithm>
#include <functional>
#include <stdexcept>
#include <vector>

using namespace aerodb;
using namespace aerodb_test;

namespace {

constexpr recovery_phase open_phases[] = {recovery_phase::snapshot_read, recovery_phase::snapshot_load,
                                          recovery_phase::log_replay, recovery_phase::cleanup,
                                          recovery_phase::index_build};

open_options on(std::shared_ptr<testing::fault_injection_fs> fs) {
  open_options o;
  o.fs = std::move(fs);
  o.wal_segment_bytes = 16 * 1024;  // several segments, so the log's progress spans files
  o.wal_preallocate_bytes = 4096;
  return o;
}

// A store of `docs` users (an index on age, some updates and deletes), optionally
// checkpointed after the first half, with a leftover temporary file for the cleanup phase.
template <class Db>
std::shared_ptr<testing::fault_injection_fs> make_store(int docs, bool checkpoint) {
  auto fs = std::make_shared<testing::fault_injection_fs>();
  auto db = open_or_fail<Db>("/db", on(fs));
  setup_users(*db);
  REQUIRE(db->create_index("users", "age"));
  const auto put = [&](int from, int to) {
    for (int i = from; i < to; i += 10) {
      write_batch b;
      for (int k = i; k < std::min(to, i + 10); ++k)
        b.insert("users", 1,
                 R"({"_id":"u)" + std::to_string(k) + R"(","name":"someone with a longer name","age":)" +
                     std::to_string(k % 90) + "}");
      REQUIRE(db->commit(b));
    }
    REQUIRE(db->update("users", "u" + std::to_string(from), 1, R"({"_id":"u)" + std::to_string(from) + R"(","name":"changed"})"));
    REQUIRE(db->remove("users", "u" + std::to_string(from + 1)));
  };
  put(0, docs / 2);
  if (checkpoint) REQUIRE(db->checkpoint());
  put(docs / 2, docs);
  db.reset();
  auto junk = fs->open("/db/leftover.tmp", io::open_mode::create_or_truncate);
  REQUIRE(junk);
  REQUIRE((*junk)->append(std::as_bytes(std::span("half a snapshot", 15))));
  REQUIRE((*junk)->sync());
  REQUIRE(fs->sync_dir("/db"));
  return fs;
}

// Every call, and the checks that hold for any open.
struct recorder {
  std::vector<recovery_progress> calls;

  std::function<void(const recovery_progress&)> callback() {
    return [this](const recovery_progress& p) { calls.push_back(p); };
  }

  std::vector<recovery_phase> phases() const {
    std::vector<recovery_phase> out;
    for (const auto& c : calls)
      if (out.empty() || out.back() != c.phase) out.push_back(c.phase);
    return out;
  }

  std::vector<recovery_progress> of(recovery_phase phase) const {
    std::vector<recovery_progress> out;
    for (const auto& c : calls)
      if (c.phase == phase) out.push_back(c);
    return out;
  }

  // begin (done 0), advances, end (done == total); done never decreases, never passes the
  // total, and each advance is in a later 1% step than the call before it.
  void check_phase(recovery_phase phase) const {
    const auto seen = of(phase);
    INFO("phase " << to_string(phase));
    REQUIRE(seen.size() >= 2);
    CHECK(seen.front().event == recovery_event::begin);
    CHECK(seen.front().done == 0);
    CHECK(seen.back().event == recovery_event::end);
    CHECK(seen.back().done == seen.back().total);
    CHECK(seen.size() <= 102);
    const std::uint64_t total = seen.front().total;
    const std::uint64_t step = std::max<std::uint64_t>(total / 100, 1);
    for (std::size_t i = 1; i < seen.size(); ++i) {
      CHECK(seen[i].total == total);
      CHECK(seen[i].done >= seen[i - 1].done);
      CHECK(seen[i].done <= total);
      if (i + 1 < seen.size()) {
        CHECK(seen[i].event == recovery_event::advance);
        CHECK(seen[i].done / step > seen[i - 1].done / step);
      }
    }
  }
};

// What a recovery decided, without its timings.
struct outcome {
  std::string image;
  commit_id last = 0;
  std::uint64_t records = 0, segments = 0, wal_bytes = 0, snapshot_documents = 0, checkpoint = 0;
  bool torn = false;
  memory_stats memory;
  std::vector<std::string> files;
  bool operator==(const outcome& o) const {
    return image == o.image && last == o.last && records == o.records && segments == o.segments &&
           wal_bytes == o.wal_bytes && snapshot_documents == o.snapshot_documents && checkpoint == o.checkpoint &&
           torn == o.torn && memory.versions == o.memory.versions && memory.keys == o.memory.keys &&
           memory.document_bytes == o.memory.document_bytes && files == o.files;
  }
};

template <class Db>
outcome outcome_of(const Db& db, testing::fault_injection_fs& fs) {
  const auto& r = db.recovery();
  outcome o{image_of(db), db.last_commit_id(), r.records_replayed, r.segments, r.wal_bytes,
            r.snapshot_documents, r.checkpoint, r.torn_tail.has_value(), db.memory(), {}};
  const auto names = fs.list_dir("/db");
  REQUIRE(names);
  for (const auto& name : *names) {
    const auto bytes = fs.contents("/db/" + name);
    o.files.push_back(name + ":" + std::to_string(bytes.size()) + ":" +
                      std::to_string(crc32c::value(std::span<const std::byte>(bytes))));
  }
  return o;
}

std::uint64_t file_size(testing::fault_injection_fs& fs, const std::string& name) {
  return fs.contents("/db/" + name).size();
}

}  // namespace

TEST_CASE_TEMPLATE("the phases of an open from the log arrive in order, each begun and ended", Db, AERODB_ENGINES) {
  auto fs = make_store<Db>(400, false);
  recorder rec;
  auto o = on(fs);
  o.on_recovery_progress = rec.callback();
  auto db = open_or_fail<Db>("/db", o);

  CHECK(rec.phases() == std::vector<recovery_phase>(std::begin(open_phases), std::end(open_phases)));
  for (auto p : open_phases) rec.check_phase(p);
  const auto& r = db->recovery();
  // Nothing to read or load without a checkpoint: begin and end, total 0.
  CHECK(rec.of(recovery_phase::snapshot_read).size() == 2);
  CHECK(rec.of(recovery_phase::snapshot_load).back().total == 0);
  // The log: its bytes on disk, every record replayed.
  const auto log = rec.of(recovery_phase::log_replay);
  CHECK(log.back().total == r.wal_bytes);
  CHECK(log.back().records_replayed == r.records_replayed);
  CHECK(r.segments > 1);
  CHECK(log.size() > 10);  // 1% steps of a log of several segments
  for (std::size_t i = 1; i < log.size(); ++i) CHECK(log[i].records_replayed >= log[i - 1].records_replayed);
  // The leftover temporary file.
  CHECK(rec.of(recovery_phase::cleanup).back().total == 1);
  CHECK_FALSE(*fs->exists("/db/leftover.tmp"));
  // One step per key for the walk, and one per key for each index (_id and age).
  CHECK(rec.of(recovery_phase::index_build).back().total == db->memory().keys * 3);
}

TEST_CASE_TEMPLATE("an open from a checkpoint reports the snapshot's bytes and documents", Db, AERODB_ENGINES) {
  auto fs = make_store<Db>(400, true);
  recorder rec;
  auto o = on(fs);
  o.on_recovery_progress = rec.callback();
  auto db = open_or_fail<Db>("/db", o);
  const auto& r = db->recovery();
  REQUIRE(r.checkpoint > 0);

  CHECK(rec.phases() == std::vector<recovery_phase>(std::begin(open_phases), std::end(open_phases)));
  for (auto p : open_phases) rec.check_phase(p);
  // The manifest lists the data file alone.
  const std::string data = format::snapshot_data_file_name(r.checkpoint);
  CHECK(rec.of(recovery_phase::snapshot_read).back().total == file_size(*fs, data));
  CHECK(rec.of(recovery_phase::snapshot_load).back().total == file_size(*fs, data));
  CHECK(rec.of(recovery_phase::snapshot_load).back().documents_loaded == r.snapshot_documents);
  CHECK(r.snapshot_documents == 199);  // 200 inserted, one removed, before the checkpoint
  // The file is read in 1 MiB steps: one advance for a small snapshot. Its entries are
  // decoded one by one: an advance per 1%.
  CHECK(rec.of(recovery_phase::snapshot_read).size() == 3);
  CHECK(rec.of(recovery_phase::snapshot_load).size() > 10);
}

TEST_CASE_TEMPLATE("the report's phase times are filled and add up to at most the whole open", Db, AERODB_ENGINES) {
  for (const bool checkpoint : {false, true}) {
    INFO("checkpoint " << checkpoint);
    auto fs = make_store<Db>(300, checkpoint);
    auto db = open_or_fail<Db>("/db", on(fs));
    const auto& r = db->recovery();
    std::chrono::nanoseconds sum{0};
    for (auto p : open_phases) {
      CHECK(r.phase_duration(p).count() >= 0);
      sum += r.phase_duration(p);
    }
    CHECK(r.log_replay.count() > 0);
    CHECK(r.index_build.count() > 0);
    CHECK(r.cleanup.count() > 0);
    if (checkpoint) {
      CHECK(r.snapshot_read.count() > 0);
      CHECK(r.snapshot_load.count() > 0);
    }
    CHECK(sum <= r.duration);
    CHECK(r.to_string().find("snapshot read ") != std::string::npos);
  }
}

TEST_CASE_TEMPLATE("recovery decides the same with and without a progress callback", Db, AERODB_ENGINES) {
  for (const bool checkpoint : {false, true}) {
    INFO("checkpoint " << checkpoint);
    auto fs = make_store<Db>(300, checkpoint);
    auto quiet_fs = fs->copy_disk(), told_fs = fs->copy_disk();
    auto quiet = open_or_fail<Db>("/db", on(quiet_fs));
    recorder rec;
    auto o = on(told_fs);
    o.on_recovery_progress = rec.callback();
    auto told = open_or_fail<Db>("/db", o);
    CHECK_FALSE(rec.calls.empty());
    CHECK(outcome_of(*quiet, *quiet_fs) == outcome_of(*told, *told_fs));
    // And both go on the same way.
    REQUIRE(quiet->insert("users", 1, R"({"_id":"after","name":"n"})"));
    REQUIRE(told->insert("users", 1, R"({"_id":"after","name":"n"})"));
    CHECK(image_of(*quiet) == image_of(*told));
  }
}

TEST_CASE_TEMPLATE("a callback that throws abandons the open with AERO_OPEN_CANCELLED", Db, AERODB_ENGINES) {
  for (const bool checkpoint : {false, true}) {
    auto fs = make_store<Db>(300, checkpoint);
    auto reference_disk = fs->copy_disk();
    const auto expected = outcome_of(*open_or_fail<Db>("/db", on(reference_disk)), *reference_disk);
    for (auto phase : open_phases)
      for (auto event : {recovery_event::begin, recovery_event::advance, recovery_event::end}) {
        // Without a checkpoint the snapshot phases have nothing to do: no advance.
        if (event == recovery_event::advance && !checkpoint && phase <= recovery_phase::snapshot_load) continue;
        INFO("checkpoint " << checkpoint << ", phase " << to_string(phase) << ", event " << static_cast<int>(event));
        auto disk = fs->copy_disk();
        auto o = on(disk);
        int calls = 0;
        o.on_recovery_progress = [&](const recovery_progress& p) {
          ++calls;
          if (p.phase == phase && p.event == event) throw std::runtime_error("stop here");
        };
        auto r = Db::open("/db", o);
        REQUIRE_FALSE(r);
        CHECK(r.code() == errc::open_cancelled);
        CHECK(r.error_value().detail("phase") == to_string(phase));
        CHECK(r.error_value().detail("what") == "stop here");
        // The lock is free again, and the next open finds what the first would have.
        auto again = open_or_fail<Db>("/db", on(disk));
        CHECK(outcome_of(*again, *disk) == expected);
      }
  }
}

TEST_CASE_TEMPLATE("an exception not derived from std::exception cancels the open too", Db, AERODB_ENGINES) {
  auto fs = make_store<Db>(50, false);
  auto o = on(fs);
  o.on_recovery_progress = [](const recovery_progress& p) {
    if (p.phase == recovery_phase::index_build) throw 42;
  };
  auto r = Db::open("/db", o);
  REQUIRE_FALSE(r);
  CHECK(r.code() == errc::open_cancelled);
  CHECK(r.error_value().detail("what") == "an exception not derived from std::exception");
  CHECK(open_or_fail<Db>("/db", on(fs))->last_commit_id() > 0);
}

TEST_CASE_TEMPLATE("open_snapshot reports the three phases it runs", Db, AERODB_ENGINES) {
  auto fs = make_store<Db>(300, true);
  commit_id c = 0;
  {
    auto db = open_or_fail<Db>("/db", on(fs));
    c = db->recovery().checkpoint;
  }
  recorder rec;
  auto o = on(fs);
  o.on_recovery_progress = rec.callback();
  auto snap = Db::open_snapshot("/db", c, o);
  REQUIRE(snap);
  CHECK(rec.phases() == std::vector<recovery_phase>{recovery_phase::snapshot_read, recovery_phase::snapshot_load,
                                                    recovery_phase::index_build});
  for (auto p : {recovery_phase::snapshot_read, recovery_phase::snapshot_load, recovery_phase::index_build})
    rec.check_phase(p);
  const auto& r = (*snap)->recovery();
  CHECK(r.snapshot_read.count() > 0);
  CHECK(r.snapshot_load.count() > 0);
  CHECK(r.index_build.count() > 0);
  CHECK(r.snapshot_read + r.snapshot_load + r.index_build <= r.duration);

  o.on_recovery_progress = [](const recovery_progress&) { throw std::runtime_error("no"); };
  CHECK(Db::open_snapshot("/db", c, o).code() == errc::open_cancelled);
}

TEST_CASE_TEMPLATE("a new directory reports every phase with nothing to do", Db, AERODB_ENGINES) {
  recorder rec;
  auto o = on(std::make_shared<testing::fault_injection_fs>());
  o.on_recovery_progress = rec.callback();
  auto db = open_or_fail<Db>("/db", o);
  CHECK(rec.phases() == std::vector<recovery_phase>(std::begin(open_phases), std::end(open_phases)));
  for (auto p : open_phases) {
    rec.check_phase(p);
    CHECK(rec.of(p).size() == 2);
    CHECK(rec.of(p).back().total == 0);
  }
}

namespace {

// Every index's order as the cursor walks it, at every boundary from 1 to the last commit:
// "field value id@CommitId" lines, in the index's (key, _id) order.
template <class Db>
std::string index_orders(const Db& db) {
  std::string out;
  for (commit_id bound = 1; bound <= db.last_commit_id(); ++bound) {
    auto view = db.read_at(bound);
    REQUIRE(view);
    for (const char* field : {"_id", "name", "age"}) {
      query::scan_request r;
      r.collection = "users";
      r.field = field;
      r.limit = 7;  // several batches, so the resume points are exercised too
      out += std::to_string(bound) + " " + field + ":";
      for (;;) {
        auto page = view->scan(r);
        if (!page && page.code() == errc::collection_unknown) break;  // before the collection
        if (!page && page.code() == errc::query_unindexed_field) break;  // before the index
        REQUIRE(page);
        for (const auto& d : page->documents) out += " " + std::string(d.doc.id()) + "@" + std::to_string(d.committed_at);
        if (!page->next) break;
        r.after = page->next;
      }
      out += "\n";
    }
  }
  return out;
}

}  // namespace

// The index build walks keys in _id order, found from the _ids' first 16 bytes held inline,
// and sorts each run on ranks in that order (engine/indexer.hpp). The order only spares
// the index work; these are the cases where getting it wrong is easiest (ids that tie on
// 16 bytes, are shorter than that, hold bytes above 0x7F, keys with several versions and
// keys written again after a remove), and the rebuilt indexes must answer every boundary
// exactly as the ones the writes built.
TEST_CASE_TEMPLATE("indexes rebuilt at open hold the order the writes built, for ids that tie on 16 bytes",
                   Db, AERODB_ENGINES) {
  auto fs = std::make_shared<testing::fault_injection_fs>();
  std::string before;
  {
    auto db = open_or_fail<Db>("/db", on(fs));
    setup_users(*db);
    REQUIRE(db->create_index("users", "name"));
    REQUIRE(db->create_index("users", "age"));
    std::vector<std::string> ids = {"a", "ab", "b", "Z", "z", "\u00e9", "prefix-shared-16", "prefix-shared-16a",
                                    "prefix-shared-16zz", "prefix-shared-16\u00e9", "prefix-shared-1",
                                    "prefix-shared-17", "prefix-shared-16\u00e9a", "0123456789abcdef",
                                    "0123456789abcdeg", "0123456789abcdef0"};
    for (int i = 0; i < 60; ++i) ids.push_back("k" + std::to_string(i * 7919 % 1000));
    const auto doc = [](const std::string& id, int n) {
      return R"({"_id":")" + id + R"(","name":")" + std::string(1, static_cast<char>('x' + n % 3)) +
             R"(","age":)" + std::to_string(n % 4) + "}";
    };
    for (std::size_t i = 0; i < ids.size(); ++i) REQUIRE(db->insert("users", 1, doc(ids[i], static_cast<int>(i))));
    // Several versions of some keys (no GC runs, so every one stays), and keys removed
    // and written again.
    for (std::size_t i = 0; i < ids.size(); i += 3) REQUIRE(db->update("users", ids[i], 1, doc(ids[i], static_cast<int>(i) + 1)));
    for (std::size_t i = 0; i < ids.size(); i += 4) REQUIRE(db->update("users", ids[i], 1, doc(ids[i], static_cast<int>(i) + 2)));
    for (std::size_t i = 1; i < ids.size(); i += 5) REQUIRE(db->remove("users", ids[i]));
    for (std::size_t i = 1; i < ids.size(); i += 10) REQUIRE(db->insert("users", 1, doc(ids[i], static_cast<int>(i))));
    before = index_orders(*db);
    CHECK(before.find("prefix-shared-16zz@") != std::string::npos);
  }
  auto db = open_or_fail<Db>("/db", on(fs));
  CHECK(index_orders(*db) == before);
}
