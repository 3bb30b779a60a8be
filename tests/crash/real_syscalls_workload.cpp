// The workload of the real-system-call crash test (tests/crash/test_real_syscalls.cpp),
// run by that test under strace:
//
//   real_syscalls_workload STORE_DIR baseline|accelerated WAL_SEGMENT_BYTES
//
// Opens a NEW store in STORE_DIR (which must not exist yet, so that the engine's own
// mkdir is in the trace) with the real POSIX file system, and runs the deterministic
// workload of tests/support/real_syscalls_workload.hpp. Around every call that logs a
// commit it writes, each with one write(2) on stdout (so each is one call in the trace):
//   "BEGIN <step>\n"        before the call,
//   "ACK <CommitId>\n"      after it returned success.
// Any failure ends the program with exit status 2 and the error on stderr.
// The engines come compiled from engines_lib, whose files see doctest (for the type names
// of TEST_CASE_TEMPLATE); this program has no tests, but links doctest's implementation
// (without its main) so that those references resolve.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <aerodb/accelerated.hpp>
#include <aerodb/aerodb.hpp>

#include "support/engines.hpp"
#include "support/real_syscalls_workload.hpp"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <sys/stat.h>
#include <unistd.h>

namespace {

namespace rs = aerodb_test::real_syscalls;

// One write(2) per marker: the trace shows it as one call between the engine's calls.
void marker(const std::string& text) {
  const char* p = text.data();
  std::size_t left = text.size();
  while (left > 0) {
    const ::ssize_t n = ::write(1, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) std::_Exit(3);
    p += n;
    left -= static_cast<std::size_t>(n);
  }
}

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "real_syscalls_workload: %s\n", what.c_str());
  std::exit(2);
}

template <class Db>
int run(const std::string& dir, std::uint64_t segment_bytes) {
  const rs::workload w = rs::make_workload();
  aerodb::open_options opts;
  opts.wal_segment_bytes = segment_bytes;
  auto opened = Db::open(dir, opts);
  if (!opened) die("open failed: " + opened.error_value().to_string());
  Db& db = **opened;
  for (std::size_t i = 0; i < w.steps.size(); ++i) {
    const rs::step& s = w.steps[i];
    if (s.kind == rs::step_kind::checkpoint) {
      auto r = db.checkpoint();
      if (!r) die("checkpoint at step " + std::to_string(i) + " failed: " + r.error_value().to_string());
      continue;
    }
    marker("BEGIN " + std::to_string(i) + "\n");
    aerodb::commit_id got = 0;
    switch (s.kind) {
      case rs::step_kind::register_schema: {
        auto r = db.register_schema(rs::item_schema);
        if (!r) die("register_schema failed: " + r.error_value().to_string());
        got = *r;
        break;
      }
      case rs::step_kind::create_collection: {
        auto r = db.create_collection(rs::collection, rs::schema_id);
        if (!r) die("create_collection failed: " + r.error_value().to_string());
        got = *r;
        break;
      }
      case rs::step_kind::create_index: {
        auto r = db.create_index(rs::collection, rs::index_field);
        if (!r) die("create_index failed: " + r.error_value().to_string());
        got = *r;
        break;
      }
      case rs::step_kind::gc: {
        auto r = db.gc();
        if (!r) die("gc failed: " + r.error_value().to_string());
        got = r->record;
        if (got == 0) die("gc had nothing to collect, so it logged no record");
        break;
      }
      case rs::step_kind::write: {
        if (s.ops.size() == 1) {
          const rs::doc_op& op = s.ops[0];
          if (op.kind == rs::op_kind::insert) {
            auto r = db.insert(rs::collection, 1, op.json);
            if (!r) die("insert failed: " + r.error_value().to_string());
            got = *r;
          } else if (op.kind == rs::op_kind::update) {
            auto r = db.update(rs::collection, op.id, 1, op.json);
            if (!r) die("update failed: " + r.error_value().to_string());
            got = *r;
          } else {
            auto r = db.remove(rs::collection, op.id);
            if (!r) die("remove failed: " + r.error_value().to_string());
            got = r->commit;
          }
        } else {
          aerodb::write_batch b;
          for (const auto& op : s.ops) {
            if (op.kind == rs::op_kind::insert) b.insert(rs::collection, 1, op.json);
            else if (op.kind == rs::op_kind::update) b.update(rs::collection, op.id, 1, op.json);
            else b.remove(rs::collection, op.id);
          }
          auto r = db.commit(b);
          if (!r) die("batch commit failed: " + r.error_value().to_string());
          got = r->commit;
        }
        break;
      }
      case rs::step_kind::checkpoint:
        break;
    }
    marker("ACK " + std::to_string(got) + "\n");
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: %s STORE_DIR baseline|accelerated WAL_SEGMENT_BYTES\n", argv[0]);
    return 2;
  }
  const std::string dir = argv[1];
  const std::string engine = argv[2];
  const std::uint64_t segment_bytes = std::strtoull(argv[3], nullptr, 10);
  struct ::stat st {};
  if (::stat(dir.c_str(), &st) == 0) die("the store directory must not exist yet: " + dir);
  if (engine == "baseline") return run<aerodb::database>(dir, segment_bytes);
  if (engine == "accelerated") return run<aerodb::accelerated_database>(dir, segment_bytes);
  die("unknown engine '" + engine + "' (baseline or accelerated)");
}
