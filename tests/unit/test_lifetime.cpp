// Read-view lifetimes (engine/gc.hpp, AERODB_CHECK_LIFETIMES): a read view must not
// outlive the database that made it. Breaking the rule used to be silent undefined
// behaviour; with the check, destroying the database while views are open aborts with a
// message that names the open views and the rule.
//   - a database destroyed under open views aborts, and its message counts them and lists
//     their bounds (one view; three views, two of them at the same bound);
//   - views (and a cursor) destroyed before the database: a clean exit, nothing printed;
//   - a moved-from view holds no registration, so it may outlive the database.
// Each case runs in a forked child whose stderr goes to a pipe; the parent checks how the
// child ended and what it wrote. The whole test build defines AERODB_CHECK_LIFETIMES=1
// (tests/meson.build), so the check is on even where NDEBUG is defined.
#include "support/common.hpp"

#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <memory>
#include <string>
#include <utility>

using namespace aerodb;
using namespace aerodb_test;

namespace {

constexpr bool lifetime_checks_on = AERODB_CHECK_LIFETIMES != 0;

struct child_outcome {
  int status = 0;   // as waitpid reports it
  std::string err;  // everything the child wrote to stderr

  bool aborted() const { return WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT; }
  bool exited_cleanly() const { return WIFEXITED(status) && WEXITSTATUS(status) == 0; }
  std::string describe() const {
    std::string s;
    if (WIFEXITED(status)) s = "exited with " + std::to_string(WEXITSTATUS(status));
    else if (WIFSIGNALED(status)) s = "killed by signal " + std::to_string(WTERMSIG(status));
    else s = "status " + std::to_string(status);
    return s + "; stderr: [" + err + "]";
  }
};

// Runs body() in a forked child with its stderr on a pipe; the child exits with what
// body() returns (100 if it throws, as a failed REQUIRE does). Only the child opens a
// database, so the parent forks with no engine threads of its own.
template <class Body>
child_outcome run_in_child(Body body) {
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  std::fflush(nullptr);  // nothing buffered in the parent is written twice
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    // doctest's crash handlers would report the abort as a failure of the child's copy of
    // the test run; the parent is the one that judges it.
    for (const int sig : {SIGABRT, SIGSEGV, SIGILL, SIGFPE, SIGBUS, SIGTERM})
      std::signal(sig, SIG_DFL);
    ::close(fds[0]);
    ::dup2(fds[1], STDERR_FILENO);
    ::close(fds[1]);
    int code = 100;
    try {
      code = body();
    } catch (...) {
    }
    ::_exit(code);  // not exit(): no doctest report, no static destructors in the child
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

open_options in_memory() {
  open_options o;
  o.fs = std::make_shared<testing::fault_injection_fs>();
  return o;
}

std::string user(const std::string& id) { return R"({"_id":")" + id + R"(","name":"n"})"; }

// The bounds the child announces before it breaks the rule ("held: 5 6 6").
std::string held_bounds(const std::string& err) {
  const auto at = err.find("held:");
  if (at == std::string::npos) return "";
  const auto end = err.find('\n', at);
  return err.substr(at + 6, end - at - 6);
}

void announce(const std::string& bounds) { std::fprintf(stderr, "held: %s\n", bounds.c_str()); }

}  // namespace

TEST_CASE_TEMPLATE("a database destroyed under open read views aborts, naming them and the rule", Db,
                   AERODB_ENGINES) {
  if (!lifetime_checks_on) {
    MESSAGE("AERODB_CHECK_LIFETIMES is 0 in this build: the abort is not checked");
    return;
  }
  using view = typename Db::read_view;

  SUBCASE("one view") {
    const child_outcome r = run_in_child([]() -> int {
      auto db = open_or_fail<Db>("/db", in_memory());
      setup_users(*db);
      REQUIRE(db->insert("users", 1, user("a")));
      auto leaked = std::make_unique<view>(db->read());
      announce(std::to_string(leaked->bound()));
      db.reset();  // breaks the rule: the check aborts here
      (void)leaked.release();  // not reached with the check; never close on a freed registry
      return 0;
    });
    INFO(r.describe());
    CHECK(r.aborted());
    const std::string bound = held_bounds(r.err);
    REQUIRE(!bound.empty());
    CHECK(r.err.find("aerodb: a database was destroyed while 1 read view it made was still open "
                     "(bound: CommitId " + bound + ")") != std::string::npos);
    CHECK(r.err.find("must not outlive the database that made it") != std::string::npos);
  }

  SUBCASE("three views, two at one bound, and a cursor") {
    const child_outcome r = run_in_child([]() -> int {
      auto db = open_or_fail<Db>("/db", in_memory());
      setup_users(*db);
      REQUIRE(db->insert("users", 1, user("a")));
      auto older = std::make_unique<view>(db->read());
      REQUIRE(db->insert("users", 1, user("b")));
      auto newer = std::make_unique<view>(db->read());
      auto again = db->read_at(newer->bound());
      REQUIRE(again);
      auto same = std::make_unique<view>(std::move(*again));
      auto cursor = std::make_unique<basic_cursor<view>>(newer->cursor("users", 1));
      REQUIRE(cursor->next());
      announce(std::to_string(older->bound()) + ", " + std::to_string(newer->bound()) + ", " +
               std::to_string(same->bound()));
      db.reset();
      (void)older.release();
      (void)newer.release();
      (void)same.release();
      (void)cursor.release();
      return 0;
    });
    INFO(r.describe());
    CHECK(r.aborted());
    const std::string bounds = held_bounds(r.err);
    REQUIRE(!bounds.empty());
    CHECK(r.err.find("aerodb: a database was destroyed while 3 read views it made were still open "
                     "(bounds: CommitIds " + bounds + ")") != std::string::npos);
    CHECK(r.err.find("A read view, and any cursor over it, must not outlive the database that made it") !=
          std::string::npos);
  }
}

TEST_CASE_TEMPLATE("read views destroyed before their database: a clean exit, nothing printed", Db,
                   AERODB_ENGINES) {
  using view = typename Db::read_view;
  const child_outcome r = run_in_child([]() -> int {
    auto db = open_or_fail<Db>("/db", in_memory());
    setup_users(*db);
    REQUIRE(db->insert("users", 1, user("a")));
    {
      const view v = db->read();
      auto at = db->read_at(v.bound());
      REQUIRE(at);
      auto c = v.cursor("users");
      REQUIRE(c.next());
      REQUIRE(db->insert("users", 1, user("b")));
      REQUIRE(db->gc());  // with the views held, then without
    }
    REQUIRE(db->gc());
    db.reset();
    return 0;
  });
  INFO(r.describe());
  CHECK(r.exited_cleanly());
  CHECK(r.err.empty());
}

TEST_CASE_TEMPLATE("a moved-from read view does not count as open", Db, AERODB_ENGINES) {
  using view = typename Db::read_view;
  const child_outcome r = run_in_child([]() -> int {
    auto db = open_or_fail<Db>("/db", in_memory());
    setup_users(*db);
    REQUIRE(db->insert("users", 1, user("a")));
    auto constructed_from = std::make_unique<view>(db->read());
    auto assigned_from = std::make_unique<view>(std::move(*constructed_from));
    auto target = std::make_unique<view>(db->read());
    *target = std::move(*assigned_from);  // closes target's own registration
    target.reset();                       // the one registration left
    db.reset();                           // the moved-from views are still alive: allowed
    constructed_from.reset();
    assigned_from.reset();
    return 0;
  });
  INFO(r.describe());
  CHECK(r.exited_cleanly());
  CHECK(r.err.empty());
}
