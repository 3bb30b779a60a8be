// I/O error sweep: every mutating file-system operation of three phases is failed in
// turn, once with EIO and once with ENOSPC, over the fault-injecting file system.
//
//   writes       open a new directory, then schemas, collections, index creation, single
//                inserts/updates/deletes, atomic batches, a delete of a missing document;
//                small segments, so segment creation is swept too.
//   checkpoints  writes and checkpoints in turn (one repeated at the same boundary), on
//                top of a deterministic prefix; later checkpoints remove covered segments
//                and the files of older snapshots.
//   recovery     open of an existing directory holding a checkpoint and a log: with
//                nothing to tidy; with a torn record and the leftovers of an interrupted
//                checkpoint; with an empty segment left by a failed segment creation.
//
// A clean run of the phase gives the number of ops it performs; then, for every op k and
// errno, the phase is rerun from the same starting files (rebuilt deterministically) with
// fail_op(k, errno), and checked against docs/errors.md:
//   - the call that meets the fault fails (never a crash or an exception), with the
//     documented code: AERO_WAL_FSYNC_FAILED / AERO_WAL_APPEND_FAILED (FATAL, the
//     injected error in `cause`) for a commit, AERO_STORAGE_IO_ERROR (ERROR, with `op`,
//     `path`, `errno`, `errno_name`) for a checkpoint or an open;
//   - every call that succeeded before it took the CommitId the model expects;
//   - after a failed log write or fsync the instance refuses every write with
//     AERO_STORAGE_READ_ONLY without touching a file, and reads still show exactly the
//     acknowledged commits;
//   - after a failed checkpoint the instance stays writable and the next checkpoint works;
//   - a failed open leaves every file either untouched or as a successful open leaves it,
//     and a retry succeeds;
//   - after a simulated restart (keep_unsynced and drop_unsynced) the baseline and the
//     accelerated engine recover the same state, which is the model's state after exactly
//     the acknowledged commits (plus the in-flight one only when its record reached the
//     disk), load the checkpoint that the durable CHECKPOINT file names, and accept a
//     new write that survives another reopen.
// Each sweep prints how many faults it injected per op kind and errno, and the outcomes it
// saw per kind of op (docs/reliability.md quotes them). AERODB_SCALE shrinks the
// workloads; AERODB_LONG=1 makes them four times larger. Every op number is swept at
// every scale.
#include "support/workload.hpp"

#include <aerodb/format/snapshot_format.hpp>
#include <aerodb/format/wal_format.hpp>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

using namespace aerodb;
using namespace aerodb_test;
using aerodb::testing::crash_kind;
using aerodb::testing::fault_injection_fs;
using aerodb::testing::op_kind;
using aerodb::testing::op_record;

namespace {

const std::string data_dir = "/db";
constexpr int swept_errnos[] = {EIO, ENOSPC};
constexpr crash_kind restart_kinds[] = {crash_kind::keep_unsynced, crash_kind::drop_unsynced};
// Small segments, so that commits also create segments and checkpoints remove them.
constexpr std::uint64_t segment_bytes = 1024;

const char* probe_schema = R"({"id":"probe","version":1,"fields":{
  "_id":{"type":"string","required":true}}})";

bool long_run() {
  const char* s = std::getenv("AERODB_LONG");
  return s && *s && std::string(s) != "0";
}

int scaled(int full, int minimum) {
  const int n = static_cast<int>(full * test_scale() * (long_run() ? 4 : 1));
  return n < minimum ? minimum : n;
}

open_options options_for(const std::shared_ptr<fault_injection_fs>& fs) {
  open_options o;
  o.fs = fs;
  o.wal_segment_bytes = segment_bytes;
  return o;
}

// ---- the model -------------------------------------------------------------------------

struct step {
  enum kind_t { schema, collection, index, batch, noop_remove, checkpoint } kind;
  std::string a, b;  // schema JSON | collection name, schema id | collection, field path
  write_batch ops;
  commit_id id = 0;  // the CommitId this step takes; for a checkpoint, its boundary
};

using index_set = std::set<std::pair<std::string, std::string>>;

// A deterministic script of steps and, for every CommitId c, the state and the secondary
// indexes a read view at c must show.
class script {
 public:
  explicit script(std::uint32_t seed) : rng_(seed) {}

  std::vector<step> steps;
  std::vector<state_map> states{state_map{}};
  std::vector<index_set> indexes{index_set{}};
  std::vector<std::set<std::string>> schema_ids{std::set<std::string>{}};

  commit_id commits() const { return states.size() - 1; }

  void add_schema(std::string json, const std::string& id) {
    schemas_.insert(id);
    commit({step::schema, std::move(json), {}, {}, 0});
  }
  void add_collection(const std::string& name, const std::string& schema_id) {
    st_[name];
    commit({step::collection, name, schema_id, {}, 0});
  }
  void add_index(const std::string& collection, const std::string& field) {
    ix_.insert({collection, field});
    commit({step::index, collection, field, {}, 0});
  }
  void add_checkpoint() { steps.push_back({step::checkpoint, {}, {}, {}, commits()}); }

  // `n` data steps over the collections created so far: single writes, atomic batches
  // (across collections), and now and then a delete of a missing document.
  void add_data(int n) {
    for (int i = 0; i < n; ++i) {
      if (rng_() % 12 == 0) {
        steps.push_back({step::noop_remove, "users", "missing" + std::to_string(i), {}, 0});
        continue;
      }
      step s{step::batch, {}, {}, random_batch(rng_, st_, next_key_, [&] {
               return st_.count("items") && rng_() % 3 == 0 ? "items" : "users";
             }), 0};
      commit(std::move(s));
    }
  }

 private:
  void commit(step s) {
    s.id = commits() + 1;
    steps.push_back(std::move(s));
    states.push_back(st_);
    indexes.push_back(ix_);
    schema_ids.push_back(schemas_);
  }

  std::mt19937 rng_;
  state_map st_;
  index_set ix_;
  std::set<std::string> schemas_;
  int next_key_ = 0;
};

// Every users document has `age` and `address.city`, every items document `qty`; all are
// version 1. So a range query matching every value must return the whole collection.
const std::map<std::string, std::string>& match_all_operand() {
  static const std::map<std::string, std::string> m = {
      {"age", "-1000000"}, {"qty", "-1000000"}, {"address.city", R"("")"}};
  return m;
}

// Checks the state and the indexes a view shows against the model at CommitId c.
template <class Db>
void check_model(const Db& db, const script& s, commit_id c) {
  REQUIRE(c < s.states.size());
  const auto view = db.read();
  CHECK(dump(view, db.collection_names()) == s.states[c]);
  struct indexed_field {
    std::string collection, field;
  };
  for (const indexed_field& f : {indexed_field{"users", "age"}, indexed_field{"users", "address.city"},
                                 indexed_field{"items", "qty"}}) {
    const std::string& collection = f.collection;
    const std::string& field = f.field;
    if (!s.states[c].count(collection)) continue;
    const std::string q = R"({"collection":")" + collection + R"(","schema_version":1,"filter":{")" +
                          field + R"(":{"$gte":)" + match_all_operand().at(field) + R"(}},"limit":10000})";
    auto r = view.query(q);
    if (s.indexes[c].count({collection, field})) {
      REQUIRE_MESSAGE(r, "query on indexed " << field << ": " << r.error_value().to_string());
      CHECK(r->documents.size() == s.states[c].at(collection).size());
    } else {
      REQUIRE_FALSE(r);
      CHECK(r.code() == errc::query_unindexed_field);
    }
  }
}

// Whether every collection and schema `st` names was created by CommitId c.
bool valid_at(const script& s, const step& st, commit_id c) {
  const state_map& m = s.states.at(c);
  switch (st.kind) {
    case step::schema:
    case step::checkpoint: return true;
    case step::collection: return s.schema_ids.at(c).count(st.b) != 0;
    case step::index:
    case step::noop_remove: return m.count(st.a) != 0;
    case step::batch:
      for (const auto& op : st.ops.ops())
        if (!m.count(op.collection)) return false;
      return true;
  }
  return false;
}

// ---- running steps ---------------------------------------------------------------------

// One step, with every API's answer reduced to the CommitId it took (0 for none) or, for
// a checkpoint, its boundary.
template <class Db>
result<commit_id> run_step(Db& db, const step& s) {
  switch (s.kind) {
    case step::schema: return db.register_schema(s.a);
    case step::collection: return db.create_collection(s.a, s.b);
    case step::index: return db.create_index(s.a, s.b);
    case step::batch: {
      if (s.ops.size() == 1) {
        const auto& op = s.ops.ops().front();
        switch (op.kind) {
          case format::write_kind::insert: return db.insert(op.collection, op.schema_version, op.json);
          case format::write_kind::update:
            return db.update(op.collection, op.doc_id, op.schema_version, op.json);
          case format::write_kind::remove: {
            AERO_TRY_ASSIGN(delete_outcome d, db.remove(op.collection, op.doc_id));
            return d.deleted ? d.commit : commit_id{0};
          }
        }
      }
      AERO_TRY_ASSIGN(batch_outcome out, db.commit(s.ops));
      return out.commit;
    }
    case step::noop_remove: {
      AERO_TRY_ASSIGN(delete_outcome d, db.remove(s.a, s.b));
      if (d.deleted || d.commit != 0) return error(errc::internal_bug, "a missing document was deleted");
      return commit_id{0};
    }
    case step::checkpoint: {
      AERO_TRY_ASSIGN(checkpoint_outcome out, db.checkpoint());
      return out.commit;
    }
  }
  return error(errc::internal_bug, "unknown step");
}

std::string_view syscall_of(op_kind k) {
  switch (k) {
    case op_kind::open_append:
    case op_kind::open_create_or_truncate: return "open";
    case op_kind::append: return "write";
    case op_kind::sync: return "fdatasync";
    case op_kind::truncate: return "ftruncate";
    case op_kind::rename: return "rename";
    case op_kind::remove: return "unlink";
    case op_kind::sync_dir: return "fsync";
    case op_kind::create_dir: return "mkdir";
    case op_kind::lock: return "flock";
    case op_kind::open_write: return "open";
    case op_kind::write_at: return "pwrite";
  }
  return "?";
}

std::string errno_label(int err) { return err == EIO ? "EIO" : "ENOSPC"; }

// What kind of file an op touched, for the tables.
std::string file_class(const op_record& rec) {
  const std::string& p = rec.path;
  const std::string name = p.substr(p.rfind('/') + 1);
  if (p == data_dir) return "directory";
  if (format::parse_segment_file_name(name)) {
    // A new segment's header and the zeros allocated after it go in one write of the
    // whole segment here (the preallocation step is clamped to the segment's size).
    if (rec.kind == op_kind::write_at && rec.bytes == segment_bytes) return "segment header";
    return "segment";
  }
  if (name == "LOCK") return "LOCK";
  if (name == format::checkpoint_temp_file_name) return "CHECKPOINT.tmp";
  if (name.size() > 4 && name.substr(name.size() - 4) == ".tmp") {
    const std::string base = name.substr(0, name.size() - 4);
    if (format::parse_snapshot_data_file_name(base)) return "snapshot data .tmp";
    if (format::parse_snapshot_manifest_file_name(base)) return "manifest .tmp";
    return ".tmp";
  }
  if (format::parse_snapshot_data_file_name(name)) return "snapshot data";
  if (format::parse_snapshot_manifest_file_name(name)) return "manifest";
  return name;
}

// The error of the injected op itself, as the file-system layer reports it.
void check_io_error(const error& e, const op_record& rec, int err) {
  INFO(e.to_string());
  CHECK(e.code() == errc::storage_io_error);
  CHECK(e.level() == severity::error);
  CHECK(e.detail("op") == syscall_of(rec.kind));
  CHECK(e.detail("path") == rec.path);
  CHECK(e.detail("errno") == std::to_string(err));
  CHECK(e.detail("errno_name") == errno_label(err));
  CHECK(e.detail("injected") == "fail");
}

// A commit's error: FATAL, with the file-system error in `cause`.
void check_wal_error(const error& e, errc expected, const op_record& rec, int err) {
  INFO(e.to_string());
  CHECK(e.code() == expected);
  CHECK(e.level() == severity::fatal);
  const std::string cause(e.detail("cause"));
  CHECK(cause.find("AERO_STORAGE_IO_ERROR") == 0);
  CHECK(cause.find("op=" + std::string(syscall_of(rec.kind)) + ",") != std::string::npos);
  CHECK(cause.find("path=" + rec.path + ",") != std::string::npos);
  CHECK(cause.find("errno=" + std::to_string(err) + ",") != std::string::npos);
  CHECK(cause.find("errno_name=" + errno_label(err) + ",") != std::string::npos);
  CHECK(cause.find("injected=fail") != std::string::npos);
}

// Every kind of write, each valid for the acknowledged state at `acked`, must be refused
// with AERO_STORAGE_READ_ONLY without a single file-system op; reads keep working.
template <class Db>
void check_refuses_writes(Db& db, fault_injection_fs& fs, const script& s, commit_id acked) {
  const auto ops = fs.op_count();
  CHECK_FALSE(db.accepts_writes());
  CHECK(db.last_commit_id() == acked);
  auto refused = [&](const auto& r, const std::string& what) {
    REQUIRE_FALSE_MESSAGE(r, what << " was accepted by an instance that must refuse writes");
    CHECK_MESSAGE(r.code() == errc::storage_read_only, what << ": " << r.error_value().to_string());
    CHECK(r.error_value().level() == severity::fatal);
  };
  refused(db.register_schema(probe_schema), "register_schema");
  refused(db.checkpoint(), "checkpoint");
  refused(db.gc(), "gc");
  const state_map& st = s.states[acked];
  if (s.schema_ids[acked].count("user")) refused(db.create_collection("probe_c", "user"), "create_collection");
  if (st.count("users")) {
    refused(db.create_index("users", "name"), "create_index");
    refused(db.insert("users", 1, R"({"_id":"refused","name":"r"})"), "insert");
    refused(db.remove("users", "missing"), "remove of a missing document");
    const auto& users = st.at("users");
    if (!users.empty()) {
      const auto& [id, doc] = *users.begin();
      refused(db.update("users", id, doc.first, doc.second), "update");
      refused(db.remove("users", id), "remove");
      write_batch b;
      b.remove("users", id).insert("users", 1, R"({"_id":"refused2","name":"r"})");
      refused(db.commit(b), "commit");
    }
  }
  CHECK(fs.op_count() == ops);
  check_model(db, s, acked);
}


// ---- restart -----------------------------------------------------------------------------

// The CommitId the CHECKPOINT file names (0: none), as a running process sees it or, with
// `durable`, as a power loss would leave it.
commit_id checkpoint_in_force(const fault_injection_fs& fs, bool durable) {
  const std::string path = data_dir + "/" + std::string(format::checkpoint_file_name);
  std::vector<std::byte> bytes;
  if (durable) {
    if (!fs.durable_exists(path)) return 0;
    bytes = fs.durable_contents(path);
  } else {
    try {
      bytes = fs.contents(path);
    } catch (const std::out_of_range&) {
      return 0;
    }
  }
  auto rec = format::decode_checkpoint(bytes);
  REQUIRE_MESSAGE(rec, rec.error_value().to_string());
  return rec->commit;
}

// After a restart: the baseline, then the accelerated engine, recover exactly the model's
// state at `expected_last` and load the checkpoint the CHECKPOINT file names (one of
// `allowed`); the accelerated instance accepts a new commit, which the baseline finds at
// the next reopen.
void verify_restart(const std::shared_ptr<fault_injection_fs>& fs, const script& s,
                    commit_id expected_last, const std::set<commit_id>& allowed) {
  const commit_id cp = checkpoint_in_force(*fs, false);
  CHECK_MESSAGE(allowed.count(cp) == 1, "CHECKPOINT names " << cp);
  CHECK(cp <= expected_last);
  const auto opts = options_for(fs);
  {
    auto db = open_or_fail<aerodb::database>(data_dir, opts);
    CHECK(db->last_commit_id() == expected_last);
    CHECK(db->recovery().checkpoint == cp);
    CHECK(db->accepts_writes());
    check_model(*db, s, expected_last);
  }
  {
    auto db = open_or_fail<aerodb::accelerated_database>(data_dir, opts);
    CHECK(db->last_commit_id() == expected_last);
    CHECK(db->recovery().checkpoint == cp);
    check_model(*db, s, expected_last);
    auto probe = db->register_schema(probe_schema);
    REQUIRE_MESSAGE(probe, probe.error_value().to_string());
    CHECK(*probe == expected_last + 1);
  }
  auto db = open_or_fail<aerodb::database>(data_dir, opts);
  CHECK(db->last_commit_id() == expected_last + 1);
  CHECK(db->find_schema("probe", 1).has_value());
  CHECK(dump(*db) == s.states[expected_last]);
}

// ---- tallies -----------------------------------------------------------------------------

// Injections per op kind and errno, and what the caller saw per kind of op, for one phase.
struct tally {
  std::map<std::string, std::map<int, int>> injections;  // op kind -> errno -> count
  // "kind (file, call)" -> what the caller saw, and what came after
  std::map<std::string, std::set<std::string>> outcomes, afterwards;
  int runs = 0;

  void print(const std::string& phase, const std::string& engine, double seconds,
             std::uint64_t phase_ops) const {
    int total = 0, total_eio = 0, total_enospc = 0;
    std::printf("\n[io faults] phase %s, engine %s: %llu ops per clean run, %d runs, %.2f s\n",
                phase.c_str(), engine.c_str(), static_cast<unsigned long long>(phase_ops), runs,
                seconds);
    std::printf("  %-16s %6s %6s\n", "op kind", "EIO", "ENOSPC");
    for (const auto& [kind, per] : injections) {
      const int eio = per.count(EIO) ? per.at(EIO) : 0;
      const int enospc = per.count(ENOSPC) ? per.at(ENOSPC) : 0;
      total += eio + enospc;
      total_eio += eio;
      total_enospc += enospc;
      std::printf("  %-16s %6d %6d\n", kind.c_str(), eio, enospc);
    }
    std::printf("  %-16s %6d\n", "total", total);
    for (const auto& [where, seen] : outcomes) {
      std::printf("  %s\n", where.c_str());
      for (const auto& o : seen) std::printf("      %s\n", o.c_str());
      if (afterwards.count(where))
        for (const auto& o : afterwards.at(where)) std::printf("      then %s\n", o.c_str());
    }
    print_counts({{"campaign", "io-faults"},
                  {"phase", phase},
                  {"engine", engine},
                  {"ops_per_clean_run", phase_ops},
                  {"runs", runs},
                  {"injections", total},
                  {"eio", total_eio},
                  {"enospc", total_enospc},
                  {"seconds", seconds}});
    std::fflush(stdout);
  }
};

// ---- writes and checkpoints: a live instance meets the fault ----------------------------

struct fault {
  std::uint64_t op = 0;  // relative to the start of the phase, from 1
  int err = 0;
};

struct live_run {
  std::shared_ptr<fault_injection_fs> fs;
  std::uint64_t base = 0;  // op count when the phase starts
  std::uint64_t end = 0;   // op count when it ends
  commit_id acked = 0;     // newest acknowledged CommitId
  // The failed commit's record reached the file (its fsync failed): it survives a restart
  // that keeps unsynced data, and only then.
  bool in_flight_written = false;
  commit_id last_ok_checkpoint = 0;
  std::optional<commit_id> failed_checkpoint;  // newer than last_ok_checkpoint
  std::string where;                           // "kind (file, call)" of the failed op
  std::string seen;                            // what the caller saw
};

// The record of op `n` if it falls in (before, now].
std::optional<op_record> fault_in(const fault_injection_fs& fs, std::uint64_t n, std::uint64_t before) {
  if (n <= before || n > fs.op_count()) return std::nullopt;
  return fs.trace().at(n - 1);
}

std::string describe(const op_record& rec, const char* call) {
  return std::string(to_string(rec.kind)) + " (" + file_class(rec) + ", " + call + ")";
}

// Runs steps [0, first) without faults, then the phase (opening the directory first when
// `opens`), with `f` injected. Checks every answer on the way; the instance is closed
// when this returns.
template <class Db>
live_run run_live(const script& s, std::size_t first, bool opens, std::optional<fault> f) {
  live_run run;
  run.fs = std::make_shared<fault_injection_fs>();
  auto& fs = *run.fs;
  const auto opts = options_for(run.fs);
  std::unique_ptr<Db> db;
  auto note_ok = [&](const step& st, commit_id got) {
    CHECK(got == st.id);
    if (st.kind == step::checkpoint) {
      run.last_ok_checkpoint = got;
      run.failed_checkpoint.reset();
    } else if (st.id != 0) {
      run.acked = got;
    }
  };
  if (!opens) {
    db = open_or_fail<Db>(data_dir, opts);
    for (std::size_t i = 0; i < first; ++i) {
      auto r = run_step(*db, s.steps[i]);
      REQUIRE_MESSAGE(r, "prefix step " << i << ": " << r.error_value().to_string());
      note_ok(s.steps[i], *r);
    }
  }
  run.base = fs.op_count();
  const std::uint64_t target = f ? run.base + f->op : 0;
  if (f) fs.fail_op(target, f->err);

  if (opens) {
    auto r = Db::open(data_dir, opts);
    if (const auto hit = fault_in(fs, target, run.base)) {
      REQUIRE_FALSE_MESSAGE(r, "open met the injected fault but succeeded");
      check_io_error(r.error_value(), *hit, f->err);
      run.where = describe(*hit, "open");
      run.seen = "open fails: AERO_STORAGE_IO_ERROR (ERROR); a retry open succeeds";
      r = Db::open(data_dir, opts);
    }
    REQUIRE_MESSAGE(r, r.error_value().to_string());
    db = std::move(*r);
  }

  bool refused = false;
  for (std::size_t i = first; i < s.steps.size(); ++i) {
    const step& st = s.steps[i];
    INFO("step " << i << " (kind " << static_cast<int>(st.kind) << ")");
    const auto before = fs.op_count();
    auto r = run_step(*db, st);
    if (refused) {
      // A request that is valid against the acknowledged state is refused as a write; one
      // naming a collection or schema whose creation was never acknowledged may be
      // rejected by validation first, which runs before the commit pipeline.
      REQUIRE_FALSE(r);
      if (valid_at(s, st, run.acked))
        CHECK_MESSAGE(r.code() == errc::storage_read_only, r.error_value().to_string());
      else
        CHECK_MESSAGE((r.code() == errc::storage_read_only || r.error_value().level() == severity::reject),
                      r.error_value().to_string());
      CHECK(fs.op_count() == before);
      continue;
    }
    const auto hit = fault_in(fs, target, before);
    if (!hit) {
      REQUIRE_MESSAGE(r, r.error_value().to_string());
      note_ok(st, *r);
      continue;
    }
    REQUIRE_FALSE_MESSAGE(r, "the call met the injected fault but succeeded");
    if (st.kind == step::checkpoint) {
      check_io_error(r.error_value(), *hit, f->err);
      CHECK(db->accepts_writes());
      check_model(*db, s, run.acked);
      run.failed_checkpoint = st.id;
      // What a restart right now would load, for the failure matrix.
      const commit_id prev = run.last_ok_checkpoint;
      auto which = [&](commit_id c) {
        return c == prev ? std::string(st.id == prev ? "same boundary" : "previous") : "new";
      };
      run.where = describe(*hit, "checkpoint");
      if (hit->kind == op_kind::sync_dir) {
        const op_record prev = fs.trace().at(target - 2);
        const std::string after = prev.kind == op_kind::rename
                                      ? "after renaming " + file_class(op_record{0, op_kind::rename, prev.target, {}, 0, {}})
                                      : "after " + std::string(to_string(prev.kind)) + " of " + file_class(prev);
        run.where = "sync_dir (directory " + after + ", checkpoint)";
      }
      run.seen = "AERO_STORAGE_IO_ERROR (ERROR); instance writable; checkpoint in force: " +
                 which(checkpoint_in_force(fs, false)) + " (process restart), " +
                 which(checkpoint_in_force(fs, true)) + " (power loss)";
      continue;
    }
    // A commit: its own segment's creation (open, header write, fsync, directory fsync),
    // its record's write, or its record's fsync. The fsync of a new segment's header
    // follows the open and the header write of that segment.
    const auto trace = fs.trace();
    const bool creating_segment = hit->kind == op_kind::sync && target >= before + 3 &&
                                  trace.at(target - 3).kind == op_kind::open_write &&
                                  trace.at(target - 3).path == hit->path &&
                                  trace.at(target - 2).kind == op_kind::write_at;
    const errc expected = hit->kind == op_kind::sync && !creating_segment ? errc::wal_fsync_failed
                                                                          : errc::wal_append_failed;
    check_wal_error(r.error_value(), expected, *hit, f->err);
    run.in_flight_written = expected == errc::wal_fsync_failed;
    const bool header_write = hit->kind == op_kind::write_at && target >= before + 2 &&
                              trace.at(target - 2).kind == op_kind::open_write;
    std::string role = "record";
    if (hit->kind == op_kind::open_write) role = "new segment";
    if (header_write || creating_segment) role = "new segment's header";
    if (hit->kind == op_kind::sync_dir) role = "directory, new segment's name";
    run.where = std::string(to_string(hit->kind)) + " (" + role + ", commit)";
    run.seen = std::string(aerodb::to_string(expected)) + " (FATAL); instance read-only, reads work";
    check_refuses_writes(*db, fs, s, run.acked);
    refused = true;
  }
  run.end = fs.op_count();
  if (f) {
    REQUIRE_MESSAGE(target <= run.end, "the phase never reached op " << f->op);
    CHECK(fs.trace().at(target - 1).injected == aerodb::testing::fault_kind::fail);
  }
  return run;
}

// The sweep of one live phase for engine Db.
template <class Db>
void sweep_live(const std::string& phase, const script& s, std::size_t first, bool opens) {
  const auto started = std::chrono::steady_clock::now();
  tally t;
  const live_run clean = run_live<Db>(s, first, opens, std::nullopt);
  REQUIRE(clean.acked == s.commits());
  const std::vector<op_record> clean_trace = clean.fs->trace();
  const std::uint64_t n = clean.end - clean.base;
  REQUIRE(n > 0);
  {
    INFO("clean run");
    std::set<commit_id> allowed{clean.last_ok_checkpoint};
    verify_restart(clean.fs, s, s.commits(), allowed);
  }
  for (std::uint64_t k = 1; k <= n; ++k) {
    const op_record& expected_op = clean_trace.at(clean.base + k - 1);
    for (const int err : swept_errnos) {
      t.injections[std::string(to_string(expected_op.kind))][err]++;
      for (const crash_kind restart : restart_kinds) {
        const bool keep = restart == crash_kind::keep_unsynced;
        INFO(phase << ": op " << k << " of " << n << " (" << to_string(expected_op.kind) << " "
                   << expected_op.path << "), " << errno_label(err) << ", restart "
                   << (keep ? "keep_unsynced" : "drop_unsynced"));
        live_run run = run_live<Db>(s, first, opens, fault{k, err});
        ++t.runs;
        const op_record met = run.fs->trace().at(run.base + k - 1);
        CHECK(met.kind == expected_op.kind);  // reruns are deterministic
        CHECK(met.path == expected_op.path);
        const commit_id expected_last = run.acked + (run.in_flight_written && keep ? 1 : 0);
        std::set<commit_id> allowed{run.last_ok_checkpoint};
        if (run.failed_checkpoint) allowed.insert(*run.failed_checkpoint);
        run.fs->crash({restart, 0});
        verify_restart(run.fs, s, expected_last, allowed);
        std::string restart_seen = keep ? "process restart: " : "power loss: ";
        if (run.in_flight_written)
          restart_seen += expected_last > run.acked ? "the failed commit is recovered" : "the failed commit is gone";
        else
          restart_seen += "every acknowledged commit, nothing more";
        t.outcomes[run.where].insert(run.seen);
        t.afterwards[run.where].insert(restart_seen);
      }
    }
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  t.print(phase, doctest::toString<Db>().c_str(), seconds, n);
}


// ---- recovery: open meets the fault -------------------------------------------------------

using file_map = std::map<std::string, std::optional<std::vector<std::byte>>>;

file_map files_of(fault_injection_fs& fs) {
  file_map out;
  auto names = fs.list_dir(data_dir);
  REQUIRE(names);
  for (const auto& n : *names) out[n] = fs.contents(data_dir + "/" + n);
  return out;
}

std::optional<std::vector<std::byte>> file_in(const file_map& m, const std::string& name) {
  const auto it = m.find(name);
  return it == m.end() ? std::nullopt : it->second;
}

// What the recovery phase finds besides a checkpoint and the log after it.
enum class leftovers {
  none,
  // The leftovers of an interrupted checkpoint (a new snapshot's files and CHECKPOINT.tmp,
  // its rename having failed), and a record cut by power loss in its middle (a torn tail).
  torn_record_and_checkpoint,
  // An empty segment: writing a new segment's header failed, then the process restarted.
  empty_segment,
};

// The starting directory of the recovery phase, after a restart: the files of `s` run on
// engine Db, with the interrupted checkpoint (if any) before step `split`, and a commit
// outside the model cut at the end.
template <class Db>
std::shared_ptr<fault_injection_fs> build_recovery_dir(const script& s, std::size_t split, leftovers what) {
  auto fs = std::make_shared<fault_injection_fs>();
  {
    auto db = open_or_fail<Db>(data_dir, options_for(fs));
    for (std::size_t i = 0; i < s.steps.size(); ++i) {
      if (what == leftovers::torn_record_and_checkpoint && i == split) {
        // A checkpoint's ops: data .tmp open, write, fsync, rename; the same for the
        // manifest; directory fsync; then CHECKPOINT.tmp open, write, fsync, rename (13th).
        fs->fail_op(fs->op_count() + 13, EIO);
        auto cp = db->checkpoint();
        REQUIRE_FALSE(cp);
        REQUIRE(cp.error_value().detail("path") ==
                data_dir + "/" + std::string(format::checkpoint_temp_file_name));
      }
      auto r = run_step(*db, s.steps[i]);
      REQUIRE_MESSAGE(r, "step " << i << ": " << r.error_value().to_string());
      REQUIRE(*r == s.steps[i].id);
    }
    if (what == leftovers::torn_record_and_checkpoint) {
      // A record over two 512-byte sectors, larger than a segment, so it starts one: open,
      // header and zeros, fsync, directory fsync, zeros up to the record's end, fsync, the
      // record's write (7th op); its fsync never happens.
      fs->crash_after(fs->op_count() + 7);
      auto torn = db->insert("users", 1, R"({"_id":"torn","name":")" + std::string(1200, 't') + "\"}");
      REQUIRE(torn.code() == errc::wal_fsync_failed);
      REQUIRE(fs->trace().at(fs->op_count() - 2).kind == op_kind::write_at);
    }
    if (what == leftovers::empty_segment) {
      // A record larger than a segment always starts a new one: open, header write (fails).
      fs->fail_op(fs->op_count() + 2, ENOSPC);
      auto big = db->insert("users", 1, R"({"_id":"big","name":")" + std::string(2 * segment_bytes, 'x') + "\"}");
      REQUIRE(big.code() == errc::wal_append_failed);
      REQUIRE(fs->trace().back().kind == op_kind::write_at);
    }
  }
  if (what == leftovers::torn_record_and_checkpoint) {
    const auto unsynced = fs->unsynced_bytes_of_last_append_file();
    REQUIRE(unsynced > 1024);
    // Its first sector reached the disk, the rest did not: a hole, torn (format.md §9.1 row 10a).
    fs->crash({crash_kind::tear_last_append, 600});
  } else {
    fs->crash({crash_kind::keep_unsynced, 0});
  }
  return fs;
}

enum class after_failed_open { retry, process_restart, power_loss };

template <class Db>
void sweep_recovery(const std::string& phase, const script& s, std::size_t split, leftovers what,
                    commit_id checkpoint) {
  const auto started = std::chrono::steady_clock::now();
  tally t;
  // The clean recovery: how many ops it takes, and what it leaves.
  const auto ref_fs = build_recovery_dir<Db>(s, split, what);
  const std::uint64_t base = ref_fs->op_count();
  const file_map before = files_of(*ref_fs);
  std::uint64_t n = 0;
  {
    auto db = open_or_fail<Db>(data_dir, options_for(ref_fs));
    CHECK(db->last_commit_id() == s.commits());
    CHECK(db->recovery().checkpoint == checkpoint);
    const auto& torn = db->recovery().torn_tail;
    CHECK(torn.has_value() == (what != leftovers::none));
    if (torn) CHECK(torn->whole_segment == (what == leftovers::empty_segment));
    check_model(*db, s, s.commits());
    n = ref_fs->op_count() - base;
  }
  REQUIRE(n > 0);
  const file_map tidied = files_of(*ref_fs);
  if (what != leftovers::none) CHECK(tidied != before);  // the sweep must cover tidying
  const std::vector<op_record> clean_trace = ref_fs->trace();

  for (std::uint64_t k = 1; k <= n; ++k) {
    const op_record& expected_op = clean_trace.at(base + k - 1);
    for (const int err : swept_errnos) {
      t.injections[std::string(to_string(expected_op.kind))][err]++;
      for (const auto then : {after_failed_open::retry, after_failed_open::process_restart,
                              after_failed_open::power_loss}) {
        INFO(phase << ": op " << k << " of " << n << " (" << to_string(expected_op.kind) << " "
                   << expected_op.path << "), " << errno_label(err) << ", then "
                   << static_cast<int>(then));
        const auto fs = build_recovery_dir<Db>(s, split, what);
        REQUIRE(fs->op_count() == base);
        fs->fail_op(base + k, err);
        auto r = Db::open(data_dir, options_for(fs));
        ++t.runs;
        const op_record met = fs->trace().at(base + k - 1);
        CHECK(met.kind == expected_op.kind);
        CHECK(met.path == expected_op.path);
        CHECK(met.injected == aerodb::testing::fault_kind::fail);
        REQUIRE_FALSE_MESSAGE(r, "open met the injected fault but succeeded");
        check_io_error(r.error_value(), met, err);
        // No damage: each file is as it was, or as a successful open leaves it.
        const file_map after = files_of(*fs);
        std::set<std::string> names;
        for (const auto* m : {&before, &after, &tidied})
          for (const auto& [name, bytes] : *m) names.insert(name);
        bool untouched = true;
        for (const auto& name : names) {
          INFO("file " << name);
          const auto now = file_in(after, name);
          CHECK((now == file_in(before, name) || now == file_in(tidied, name)));
          if (now != file_in(before, name)) untouched = false;
        }
        const std::string where = describe(met, "open");
        t.outcomes[where].insert(std::string("open fails: AERO_STORAGE_IO_ERROR (ERROR); files ") +
                                 (untouched ? "untouched" : "partly tidied, nothing else changed"));
        switch (then) {
          case after_failed_open::retry: {
            {
              auto db = open_or_fail<Db>(data_dir, options_for(fs));
              CHECK(db->last_commit_id() == s.commits());
              CHECK(db->recovery().checkpoint == checkpoint);
              check_model(*db, s, s.commits());
            }
            CHECK(files_of(*fs) == tidied);
            t.afterwards[where].insert("a retry open recovers every commit");
            verify_restart(fs, s, s.commits(), {checkpoint});
            break;
          }
          case after_failed_open::process_restart:
          case after_failed_open::power_loss:
            fs->crash({then == after_failed_open::power_loss ? crash_kind::drop_unsynced
                                                               : crash_kind::keep_unsynced, 0});
            verify_restart(fs, s, s.commits(), {checkpoint});
            t.afterwards[where].insert(then == after_failed_open::power_loss
                                           ? "power loss: every commit recovered"
                                           : "process restart: every commit recovered");
            break;
        }
      }
    }
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  t.print(phase, doctest::toString<Db>().c_str(), seconds, n);
}

// ---- the scripts --------------------------------------------------------------------------

script write_phase_script() {
  const int n = scaled(32, 6);
  script s(1001);
  s.add_schema(user_schema_v1, "user");
  s.add_collection("users", "user");
  s.add_data(3);
  s.add_index("users", "age");
  s.add_schema(item_schema_v1, "item");
  s.add_collection("items", "item");
  s.add_data(n / 2);
  s.add_index("items", "qty");
  s.add_index("users", "address.city");
  s.add_schema(user_schema_v2, "user");
  s.add_data(n - n / 2);
  return s;
}

// The checkpoint phase starts after the returned prefix length.
std::pair<script, std::size_t> checkpoint_phase_script() {
  const int m = scaled(6, 2);
  script s(2002);
  s.add_schema(user_schema_v1, "user");
  s.add_collection("users", "user");
  s.add_schema(item_schema_v1, "item");
  s.add_collection("items", "item");
  s.add_index("users", "age");
  s.add_data(scaled(8, 4));
  const std::size_t first = s.steps.size();
  s.add_data(m);
  s.add_checkpoint();
  s.add_data(m);
  s.add_checkpoint();
  s.add_checkpoint();  // again at the same boundary
  s.add_data(m);
  s.add_index("items", "qty");
  s.add_checkpoint();
  s.add_data(2);
  return {std::move(s), first};
}

// A directory with a checkpoint and a log after it; returns the split point for the
// interrupted checkpoint and the boundary of the checkpoint in force.
std::tuple<script, std::size_t, commit_id> recovery_phase_script() {
  const int m = scaled(10, 3);
  script s(3003);
  s.add_schema(user_schema_v1, "user");
  s.add_collection("users", "user");
  s.add_schema(item_schema_v1, "item");
  s.add_collection("items", "item");
  s.add_index("users", "age");
  s.add_data(m);
  s.add_checkpoint();
  s.add_data(m);
  s.add_index("items", "qty");
  s.add_checkpoint();
  const commit_id cp = s.commits();
  s.add_data(m);
  const std::size_t split = s.steps.size();
  s.add_data(m);
  return {std::move(s), split, cp};
}

}  // namespace

TEST_CASE_TEMPLATE("io faults: every op of a write workload fails with EIO and ENOSPC", Db, AERODB_ENGINES) {
  sweep_live<Db>("writes", write_phase_script(), 0, true);
}

TEST_CASE_TEMPLATE("io faults: every op of checkpoints and the writes around them fails", Db, AERODB_ENGINES) {
  const auto [s, first] = checkpoint_phase_script();
  sweep_live<Db>("checkpoints", s, first, false);
}

TEST_CASE_TEMPLATE("io faults: every op of recovery fails; the files stay intact", Db, AERODB_ENGINES) {
  const auto [s, split, cp] = recovery_phase_script();
  SUBCASE("nothing to tidy") { sweep_recovery<Db>("recovery (clean)", s, split, leftovers::none, cp); }
  SUBCASE("a torn record and an interrupted checkpoint to tidy") {
    sweep_recovery<Db>("recovery (torn record, stale snapshot)", s, split,
                       leftovers::torn_record_and_checkpoint, cp);
  }
  SUBCASE("an empty segment to remove") {
    sweep_recovery<Db>("recovery (empty segment)", s, split, leftovers::empty_segment, cp);
  }
}

// Regression: gc() on an instance whose log fsync had failed answered success when it
// found nothing to collect, instead of AERO_STORAGE_READ_ONLY (docs/errors.md 2.7); and
// when it found something, it reserved its floor before being refused, so read_at() below
// that floor failed with AERO_READ_VIEW_TOO_OLD although nothing had been freed.
TEST_CASE_TEMPLATE("gc after a failed fsync is refused with AERO_STORAGE_READ_ONLY and frees nothing", Db,
                   AERODB_ENGINES) {
  auto fs = std::make_shared<fault_injection_fs>();
  auto db = open_or_fail<Db>(data_dir, options_for(fs));
  setup_users(*db);
  REQUIRE(db->insert("users", 1, R"({"_id":"a","name":"first"})"));
  bool something_to_collect = false;
  SUBCASE("nothing to collect") {}
  SUBCASE("an older version to collect") {
    REQUIRE(db->update("users", "a", 1, R"({"_id":"a","name":"second"})"));
    something_to_collect = true;
  }
  const commit_id acked = db->last_commit_id();
  // The next insert's ops are its record's write, then its fsync.
  fs->fail_op(fs->op_count() + 2, EIO);
  auto lost = db->insert("users", 1, R"({"_id":"b","name":"lost"})");
  REQUIRE_FALSE(lost);
  REQUIRE(lost.code() == errc::wal_fsync_failed);
  const auto ops = fs->op_count();
  auto g = db->gc();
  REQUIRE_FALSE_MESSAGE(g, "gc succeeded after a failed fsync (something to collect: "
                               << something_to_collect << ")");
  CHECK(g.code() == errc::storage_read_only);
  CHECK(fs->op_count() == ops);
  // Nothing was freed, so every boundary the instance could read before stays readable.
  for (commit_id bound = 1; bound <= acked; ++bound) {
    auto view = db->read_at(bound);
    CHECK_MESSAGE(view, "read_at(" << bound << "): " << view.error_value().to_string());
  }
  CHECK(db->read().get("users", "a")->has_value());
}
