// The MemoryLayoutPolicy (docs/optimizations/memory_layout.md): the compact layout's arena
// and its accounting, memory given back and reused (issue 16, must-show 3a), the lifetime
// rule of zero-copy document_refs and its check (must-show 3b), and directories written
// with one layout, crashed, and recovered with the other (must-show 5 for this policy).
//
// Its own program, so that the resident size measured is this workload's. The resident
// size checks run on the real POSIX file system in a temporary directory (the in-memory
// test file system would put the log's bytes in the heap), and are left out under the
// sanitizers, whose allocators keep freed memory on purpose; everything else runs
// everywhere. The fork-based check of the lifetime rule follows tests/unit/test_lifetime.cpp.
#include "support/common.hpp"
#include "support/workload.hpp"

#include <aerodb/mvcc/slab_arena.hpp>

#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <set>
#include <span>
#include <string>
#include <vector>

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define AERODB_TEST_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || __has_feature(memory_sanitizer)
#define AERODB_TEST_SANITIZED 1
#endif
#endif
#ifndef AERODB_TEST_SANITIZED
#define AERODB_TEST_SANITIZED 0
#endif
#if defined(__SANITIZE_ADDRESS__)
#define AERODB_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define AERODB_TEST_ASAN 1
#endif
#endif
#ifndef AERODB_TEST_ASAN
#define AERODB_TEST_ASAN 0
#endif

using namespace aerodb;
using namespace aerodb_test;

namespace {

constexpr bool sanitized = AERODB_TEST_SANITIZED != 0;
constexpr bool address_sanitized = AERODB_TEST_ASAN != 0;
constexpr bool lifetime_checks_on = AERODB_CHECK_LIFETIMES != 0;

// The compact layout alone, every other policy the baseline's: what these tests change.
using compact_only = basic_database<policies::fsync_per_commit, policies::full_traversal, policies::ordered_index,
                                    policies::compact_memory_layout>;

// Resident bytes of this process: the second field of /proc/self/statm, in pages.
std::uint64_t resident_bytes() {
  std::FILE* f = std::fopen("/proc/self/statm", "r");
  REQUIRE(f != nullptr);
  unsigned long long size = 0, resident = 0;
  const int got = std::fscanf(f, "%llu %llu", &size, &resident);
  std::fclose(f);
  REQUIRE(got == 2);
  return resident * static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
}

struct temp_dir {
  std::string path;
  temp_dir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "aerodb-memory-layout-XXXXXX").string();
    if (!::mkdtemp(tmpl.data())) FAIL("mkdtemp failed: " << std::strerror(errno));
    path = tmpl;
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  ~temp_dir() {
    std::error_code ignored;
    std::filesystem::remove_all(path, ignored);
  }
};

open_options in_memory() {
  open_options o;
  o.fs = std::make_shared<testing::fault_injection_fs>();
  return o;
}

// A user whose encoding has the same size for every id of the same length and every
// round below 10^6: versions of one test land in one size class.
std::string user(const std::string& id, int round, std::size_t filler = 200) {
  char age[16];
  std::snprintf(age, sizeof age, "%06d", round);
  return R"({"_id":")" + id + R"(","name":")" + std::string(filler, 'x') + age + R"("})";
}

std::string key(int i) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "k%05d", i);
  return buf;
}

struct child_outcome {
  int status = 0;   // as waitpid reports it
  std::string err;  // everything the child wrote to stderr
};

// Runs body() in a forked child with its stderr on a pipe; the child exits with what
// body() returns (100 if it throws, as a failed REQUIRE does). Only the child opens a
// database, so the parent forks with no engine threads of its own.
template <class Body>
child_outcome run_in_child(Body body) {
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    for (const int sig : {SIGABRT, SIGSEGV, SIGILL, SIGFPE, SIGBUS, SIGTERM}) std::signal(sig, SIG_DFL);
    ::close(fds[0]);
    ::dup2(fds[1], STDERR_FILENO);
    ::close(fds[1]);
    int code = 100;
    try {
      code = body();
    } catch (...) {
    }
    ::_exit(code);
  }
  ::close(fds[1]);
  child_outcome out;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(fds[0], buf, sizeof buf);
    if (n > 0) out.err.append(buf, static_cast<std::size_t>(n));
    else if (n == 0 || errno != EINTR) break;
  }
  ::close(fds[0]);
  while (::waitpid(pid, &out.status, 0) < 0 && errno == EINTR) {
  }
  return out;
}

}  // namespace

// ---- the arena --------------------------------------------------------------------------

TEST_CASE("the slab arena: exact accounting, freed blocks reused first, wholly free slabs unmapped") {
  mvcc::slab_arena arena;
  constexpr std::size_t n = 300;  // class 304
  const std::size_t block = mvcc::slab_arena::block_size(n);
  CHECK(block == 304);
  // Enough blocks for twenty slabs.
  const std::size_t per_slab = (mvcc::slab_arena::slab_bytes - 64) / block;
  const std::size_t count = per_slab * 20;
  std::vector<void*> blocks;
  for (std::size_t i = 0; i < count; ++i) blocks.push_back(arena.allocate(n));
  CHECK(arena.bytes_in_use() == count * block);
  const std::uint64_t reserved = arena.bytes_reserved();
  CHECK(reserved % mvcc::slab_arena::slab_bytes == 0);
  CHECK(reserved >= count * block);
  CHECK(reserved <= (count / per_slab + 1) * mvcc::slab_arena::slab_bytes);
  CHECK(std::set<void*>(blocks.begin(), blocks.end()).size() == count);

  // A freed block is the next one handed out, and nothing new is reserved.
  void* freed = blocks[7];
  arena.deallocate(freed, n);
  CHECK(arena.bytes_in_use() == (count - 1) * block);
  void* again = arena.allocate(n);
  CHECK(again == freed);
  CHECK(arena.bytes_reserved() == reserved);

  // Everything freed: in use falls to zero and all but the spare slabs go back.
  for (void* p : blocks) arena.deallocate(p, n);
  CHECK(arena.bytes_in_use() == 0);
  CHECK(arena.bytes_reserved() == mvcc::slab_arena::spare_slabs * mvcc::slab_arena::slab_bytes);

  // The spares serve the next class that needs a slab, before any new mapping.
  void* other = arena.allocate(2000);
  CHECK(arena.bytes_reserved() == mvcc::slab_arena::spare_slabs * mvcc::slab_arena::slab_bytes);
  CHECK(arena.bytes_in_use() == mvcc::slab_arena::block_size(2000));
  arena.deallocate(other, 2000);

  // Large blocks are counted exactly, in use and reserved alike.
  void* large = arena.allocate(100'000);
  CHECK(arena.bytes_in_use() == 100'000);
  CHECK(arena.bytes_reserved() == mvcc::slab_arena::spare_slabs * mvcc::slab_arena::slab_bytes + 100'000);
  arena.deallocate(large, 100'000);
  CHECK(arena.bytes_in_use() == 0);
}

TEST_CASE("a compact version is one block: its header, then its document bytes") {
  auto db = open_or_fail<compact_only>("/db", in_memory());
  setup_users(*db);
  REQUIRE(db->insert("users", 1, user("a", 1)));
  const memory_stats m = db->memory();
  REQUIRE(m.versions == 1);
  CHECK(m.arena_bytes_in_use == mvcc::slab_arena::block_size(sizeof(mvcc::version) + m.document_bytes));
  CHECK(m.arena_bytes_reserved == mvcc::slab_arena::slab_bytes);
  // The bytes a ref borrows start right after the version's header, in the arena.
  const auto view = db->read();
  const auto ref = view.get_ref("users", "a");
  REQUIRE(ref);
  REQUIRE(ref->has_value());
  const auto bytes = (*ref)->doc.bytes();
  CHECK(bytes.size() == m.document_bytes);
  CHECK(reinterpret_cast<std::uintptr_t>(bytes.data()) % 8 == 0);  // 40-byte header, 16-aligned block
  // The baseline layout counts no arena.
  auto base = open_or_fail<database>("/base", in_memory());
  setup_users(*base);
  REQUIRE(base->insert("users", 1, user("a", 1)));
  CHECK(base->memory().arena_bytes_in_use == 0);
  CHECK(base->memory().arena_bytes_reserved == 0);
}

// ---- must-show 3a: memory given back and reused -----------------------------------------

TEST_CASE("compact layout: GC of a large history lowers the arena's accounting and the resident size, "
          "without malloc_trim") {
  // 500 documents of about 2 KiB, each written 100 times: 50,000 versions, ~100 MiB of
  // blocks, of which GC frees all but the newest version of each.
  constexpr int keys = 500, versions_each = 100;
  constexpr std::size_t filler = 2000;
  temp_dir dir;
  auto db = open_or_fail<compact_only>(dir.path + "/db", open_options{});
  setup_users(*db);
  for (int round = 0; round < versions_each; ++round) {
    write_batch batch;
    for (int k = 0; k < keys; ++k) {
      if (round == 0)
        batch.insert("users", 1, user(key(k), round, filler));
      else
        batch.update("users", key(k), 1, user(key(k), round, filler));
    }
    REQUIRE(db->commit(batch));
  }
  const memory_stats full = db->memory();
  REQUIRE(full.versions == std::uint64_t{keys} * versions_each);
  const std::size_t one_block = mvcc::slab_arena::block_size(sizeof(mvcc::version) + full.document_bytes / full.versions);
  CHECK(full.arena_bytes_in_use == full.versions * one_block);
  CHECK(full.arena_bytes_reserved >= full.arena_bytes_in_use);
  const std::uint64_t resident_full = resident_bytes();

  auto gc = db->gc();
  REQUIRE(gc);
  REQUIRE(gc->versions_freed == std::uint64_t{keys} * (versions_each - 1));
  const memory_stats after = db->memory();
  const std::uint64_t resident_after = resident_bytes();

  // The accounting: exactly the blocks of the versions left are in use, and the slabs
  // that held only freed versions are gone.
  CHECK(after.arena_bytes_in_use == std::uint64_t{keys} * one_block);
  CHECK(full.arena_bytes_in_use - after.arena_bytes_in_use == gc->versions_freed * one_block);
  CHECK(after.arena_bytes_reserved < full.arena_bytes_reserved / 50);
  MESSAGE("arena reserved before GC: " << full.arena_bytes_reserved << ", after: " << after.arena_bytes_reserved
                                       << "; resident before: " << resident_full << ", after: " << resident_after);
  // The process: the unmapped slabs leave the resident set at once (no malloc_trim: the
  // arena does not live in malloc's heap). Half of what the arena returned leaves room
  // for what malloc keeps of the index entries and nodes GC freed meanwhile.
  if constexpr (!sanitized) {
    REQUIRE(resident_full > resident_after);
    CHECK(resident_full - resident_after >= (full.arena_bytes_reserved - after.arena_bytes_reserved) / 2);
  }
  // What is left still reads.
  const auto view = db->read();
  const auto doc = view.get_ref("users", key(7));
  REQUIRE(doc);
  REQUIRE(doc->has_value());
  CHECK((*doc)->doc.to_json_string() == user(key(7), versions_each - 1, filler));
}

TEST_CASE("compact layout: blocks GC frees are taken by the next writes before any new memory") {
  // Every key written once, then every even key again: GC frees the first version of each
  // even key, leaving a hole in every slab of the first round and no slab wholly free.
  constexpr int keys = 2000;
  auto db = open_or_fail<compact_only>("/db", in_memory());
  setup_users(*db);
  write_batch first;
  for (int k = 0; k < keys; ++k) first.insert("users", 1, user(key(k), 0));
  REQUIRE(db->commit(first));
  write_batch evens;
  for (int k = 0; k < keys; k += 2) evens.update("users", key(k), 1, user(key(k), 1));
  REQUIRE(db->commit(evens));
  const memory_stats before_gc = db->memory();
  REQUIRE(db->gc());
  const memory_stats after_gc = db->memory();
  const std::size_t one_block = mvcc::slab_arena::block_size(sizeof(mvcc::version) + after_gc.document_bytes / after_gc.versions);
  CHECK(before_gc.arena_bytes_in_use - after_gc.arena_bytes_in_use == std::uint64_t{keys / 2} * one_block);
  CHECK(after_gc.arena_bytes_reserved == before_gc.arena_bytes_reserved);  // holes, no free slab

  // As many new versions as GC freed: they fill the holes, and nothing new is reserved.
  write_batch odds;
  for (int k = 1; k < keys; k += 2) odds.update("users", key(k), 1, user(key(k), 2));
  REQUIRE(db->commit(odds));
  const memory_stats refilled = db->memory();
  CHECK(refilled.arena_bytes_in_use == before_gc.arena_bytes_in_use);
  CHECK(refilled.arena_bytes_reserved == before_gc.arena_bytes_reserved);

}

TEST_CASE("compact layout: the block GC freed last is the next one a version of its size takes") {
  auto db = open_or_fail<compact_only>("/db", in_memory());
  setup_users(*db);
  REQUIRE(db->insert("users", 1, user("a", 1)));
  std::uintptr_t first_a = 0;
  {
    const auto view = db->read();
    const auto ref = view.get_ref("users", "a");
    REQUIRE(ref);
    REQUIRE(ref->has_value());
    first_a = reinterpret_cast<std::uintptr_t>((*ref)->doc.bytes().data());
  }
  REQUIRE(db->update("users", "a", 1, user("a", 2)));
  const std::uint64_t reserved = db->memory().arena_bytes_reserved;
  REQUIRE(db->gc());  // frees a's first version, and nothing else
  REQUIRE(db->insert("users", 1, user("b", 3)));
  const auto view = db->read();
  const auto b = view.get_ref("users", "b");
  REQUIRE(b);
  REQUIRE(b->has_value());
  CHECK(reinterpret_cast<std::uintptr_t>((*b)->doc.bytes().data()) == first_a);
  CHECK(db->memory().arena_bytes_reserved == reserved);
}

// ---- must-show 3b: a zero-copy document used after its view is gone --------------------

TEST_CASE_TEMPLATE("a document_ref reads the version's bytes in place while its view is open", Db, AERODB_ENGINES) {
  auto db = open_or_fail<Db>("/db", in_memory());
  setup_users(*db);
  REQUIRE(db->insert("users", 1, user("a", 1)));
  const auto view = db->read();
  const auto before = db->metrics();
  const auto x = view.get_ref("users", "a");
  const auto y = view.get_ref("users", "a");
  const auto after = db->metrics();
  REQUIRE(x);
  REQUIRE(x->has_value());
  REQUIRE(y);
  REQUIRE(y->has_value());
  // The same bytes, in place: no copy counted, whatever the layout.
  CHECK((*x)->doc.bytes().data() == (*y)->doc.bytes().data());
  CHECK(after.read_path_materialization_copies == before.read_path_materialization_copies);
  const auto owned = view.get("users", "a");
  REQUIRE(owned);
  REQUIRE(owned->has_value());
  CHECK((*x)->doc == (**owned).doc);
  CHECK((*x)->committed_at == (**owned).committed_at);
  CHECK((*x)->schema_version == (**owned).schema_version);
  CHECK((*x)->doc.id() == "a");
  // Absent and deleted keys borrow nothing.
  REQUIRE(db->remove("users", "a"));
  const auto later = db->read();
  const auto gone = later.get_ref("users", "a");
  REQUIRE(gone);
  CHECK(!gone->has_value());
  const auto none = later.get_ref("users", "nobody");
  REQUIRE(none);
  CHECK(!none->has_value());
  CHECK(!later.get_ref("nowhere", "a"));
}

TEST_CASE_TEMPLATE("an owning copy taken from a document_ref outlives its view and GC", Db, AERODB_ENGINES) {
  auto db = open_or_fail<Db>("/db", in_memory());
  setup_users(*db);
  REQUIRE(db->insert("users", 1, user("a", 1)));
  document kept;
  {
    const auto view = db->read();
    const auto ref = view.get_ref("users", "a");
    REQUIRE(ref);
    REQUIRE(ref->has_value());
    kept = (*ref)->doc.to_document();
  }
  REQUIRE(db->update("users", "a", 1, user("a", 2)));
  REQUIRE(db->gc());
  REQUIRE(db->insert("users", 1, user("b", 3)));  // may take the freed block
  CHECK(kept.to_json_string() == R"({"_id":"a","name":")" + std::string(200, 'x') + R"(000001"})");
}

TEST_CASE_TEMPLATE("a document_ref used after its view is closed and GC ran aborts with the rule", Db,
                   AERODB_ENGINES) {
  if (!lifetime_checks_on) {
    MESSAGE("AERODB_CHECK_LIFETIMES is 0 in this build: the abort is not checked");
    return;
  }
  const child_outcome out = run_in_child([] {
    auto db = open_or_fail<Db>("/db", in_memory());
    setup_users(*db);
    REQUIRE(db->insert("users", 1, user("a", 1)));
    std::optional<versioned_document_ref> kept;
    {
      const auto view = db->read();
      auto ref = view.get_ref("users", "a");
      REQUIRE(ref);
      REQUIRE(ref->has_value());
      kept = **ref;
      std::fprintf(stderr, "inside: %s\n", kept->doc.id() == "a" ? "ok" : "wrong");
    }
    REQUIRE(db->update("users", "a", 1, user("a", 2)));
    REQUIRE(db->gc());  // frees the version the ref points into
    REQUIRE(db->insert("users", 1, user("b", 3)));
    std::fprintf(stderr, "after: %zu\n", kept->doc.to_json_string().size());  // the broken rule
    return 0;
  });
  INFO("child stderr: " << out.err);
  CHECK(out.err.find("inside: ok") != std::string::npos);
  REQUIRE(WIFSIGNALED(out.status));
  CHECK(WTERMSIG(out.status) == SIGABRT);
  CHECK(out.err.find("a document_ref was used after the read view that handed it out was closed") !=
        std::string::npos);
  CHECK(out.err.find("after:") == std::string::npos);
}

// The second net, for a build without the check (or a pointer taken out of a ref, which
// the check cannot follow): the arena poisons a block when GC frees it, so the first read
// through a span kept past the view is reported by AddressSanitizer. Only an ASan build
// can show it; elsewhere the read is undefined behaviour, so nothing runs.
TEST_CASE("under AddressSanitizer, bytes of a version GC freed are poisoned: a span kept past its view is reported") {
  if constexpr (!address_sanitized) {
    MESSAGE("not an AddressSanitizer build: the poisoning is checked by the asan build");
    return;
  }
  const child_outcome out = run_in_child([] {
    auto db = open_or_fail<compact_only>("/db", in_memory());
    setup_users(*db);
    REQUIRE(db->insert("users", 1, user("a", 1)));
    std::span<const std::byte> kept;
    {
      const auto view = db->read();
      const auto ref = view.get_ref("users", "a");
      REQUIRE(ref);
      REQUIRE(ref->has_value());
      kept = (*ref)->doc.bytes();  // a plain span: no token travels with it
    }
    REQUIRE(db->update("users", "a", 1, user("a", 2)));
    REQUIRE(db->gc());  // frees (and poisons) the block `kept` points into; no write reuses it
    std::fprintf(stderr, "read: %d\n", static_cast<int>(kept[kept.size() - 1]));
    return 0;
  });
  INFO("child stderr: " << out.err);
  CHECK(!(WIFEXITED(out.status) && WEXITSTATUS(out.status) == 0));
  CHECK(out.err.find("AddressSanitizer: use-after-poison") != std::string::npos);
  CHECK(out.err.find("read:") == std::string::npos);
}

TEST_CASE("a document_ref of a view that was moved stays valid; assigning over the view ends it") {
  if (!lifetime_checks_on) {
    MESSAGE("AERODB_CHECK_LIFETIMES is 0 in this build: the abort is not checked");
    return;
  }
  const child_outcome out = run_in_child([] {
    auto db = open_or_fail<accelerated_database>("/db", in_memory());
    setup_users(*db);
    REQUIRE(db->insert("users", 1, user("a", 1)));
    auto view = db->read();
    const auto ref = view.get_ref("users", "a");
    REQUIRE(ref);
    REQUIRE(ref->has_value());
    auto moved = std::move(view);  // the same view, under another name
    std::fprintf(stderr, "moved: %s\n", std::string((*ref)->doc.id()).c_str());
    moved = db->read();  // the view that lent the ref is closed
    std::fprintf(stderr, "after: %s\n", std::string((*ref)->doc.id()).c_str());
    return 0;
  });
  INFO("child stderr: " << out.err);
  CHECK(out.err.find("moved: a") != std::string::npos);
  REQUIRE(WIFSIGNALED(out.status));
  CHECK(WTERMSIG(out.status) == SIGABRT);
  CHECK(out.err.find("after:") == std::string::npos);
}

// ---- must-show 5: enable, write, crash, disable, recover --------------------------------

namespace {

open_options crash_options(const std::shared_ptr<testing::fault_injection_fs>& fs) {
  open_options o;
  o.fs = fs;
  o.wal_segment_bytes = 2048;
  return o;
}

// Runs the whole workload until the file system dies; returns the steps completed.
template <class Db>
std::size_t run_until_failure(const mixed_workload& w, const std::shared_ptr<testing::fault_injection_fs>& fs) {
  auto db = Db::open("/db", crash_options(fs));
  if (!db) return 0;
  std::vector<typename Db::read_view> held;
  std::size_t done = 0;
  for (const auto& s : w.steps) {
    if (run_step(**db, s, held)) break;
    ++done;
  }
  return done;
}

// Writer writes the workload, crashing after every op in turn (three crash kinds);
// Reader recovers, and must land on the state after the last acknowledged step or the
// one in flight; then Writer reopens the same files to the same state.
template <class Writer, class Reader>
void crash_sweep(std::uint32_t seed) {
  const mixed_workload w = make_mixed_workload(seed, 60);
  std::vector<state_map> states;
  {
    auto fs = std::make_shared<testing::fault_injection_fs>();
    auto db = open_or_fail<database>("/db", crash_options(fs));
    std::vector<database::read_view> held;
    states.push_back(dump(*db));
    for (std::size_t i = 0; i < w.steps.size(); ++i) {
      run_steps(*db, w, i, i + 1, held);
      states.push_back(dump(*db));
    }
  }
  std::uint64_t total_ops = 0;
  {
    auto fs = std::make_shared<testing::fault_injection_fs>();
    REQUIRE(run_until_failure<Writer>(w, fs) == w.steps.size());
    total_ops = fs->op_count();
  }
  std::uint64_t checked = 0;
  for (std::uint64_t k = 0; k <= total_ops; ++k) {
    for (auto kind : {testing::crash_kind::drop_unsynced, testing::crash_kind::keep_unsynced,
                      testing::crash_kind::tear_last_append}) {
      auto fs = std::make_shared<testing::fault_injection_fs>();
      fs->crash_after(k);
      const std::size_t done = run_until_failure<Writer>(w, fs);
      fs->crash({kind, 5});
      INFO("crash after op " << k << ", kind " << static_cast<int>(kind) << ", steps done " << done);
      auto other = Reader::open("/db", crash_options(fs));
      if (!other) FAIL("recovery with the other layout failed: " << other.error_value().to_string());
      const state_map got = dump(**other);
      const bool at_done = got == states[done];
      const bool at_next = done + 1 < states.size() && got == states[done + 1];
      REQUIRE((at_done || at_next));
      other->reset();
      auto same = Writer::open("/db", crash_options(fs));
      REQUIRE(same);
      REQUIRE(dump(**same) == got);
      ++checked;
    }
  }
  CHECK(checked == 3 * (total_ops + 1));
}

}  // namespace

TEST_CASE("compact writes, a crash, baseline-layout recovery, at every crash point; and the other way round") {
  SUBCASE("compact writes, baseline recovers") { crash_sweep<compact_only, database>(501); }
  SUBCASE("baseline writes, compact recovers") { crash_sweep<database, compact_only>(502); }
}

TEST_CASE("compact writes and closes; the baseline layout reopens to the same state, answers and memory counts") {
  const mixed_workload w = make_mixed_workload(503, 300);
  auto fs = std::make_shared<testing::fault_injection_fs>();
  state_map before;
  std::vector<std::string> answers;
  memory_stats mem;
  {
    auto db = open_or_fail<compact_only>("/db", crash_options(fs));
    std::vector<compact_only::read_view> held;
    run_steps(*db, w, 0, w.steps.size(), held);
    held.clear();
    before = dump(*db);
    answers = probe_answers(db->read());
  }
  REQUIRE(before == w.final_state);
  {
    auto db = open_or_fail<database>("/db", crash_options(fs));
    CHECK(dump(*db) == before);
    CHECK(probe_answers(db->read()) == answers);
    mem = db->memory();
    REQUIRE(db->insert("items", 1, R"({"_id":"after","qty":3})"));
  }
  auto db = open_or_fail<compact_only>("/db", crash_options(fs));
  CHECK(db->memory().versions == mem.versions + 1);
  CHECK(db->memory().document_bytes > mem.document_bytes);
  CHECK(db->memory().arena_bytes_in_use > 0);
}
