// The file-system seam: one behavioural body run against both the POSIX file system (in a
// fresh directory under /tmp) and the fault-injecting one, so the in-memory model cannot
// drift from production; then the crash, tear and fault-injection model itself.
#include <aerodb/io/posix_fs.hpp>
#include <aerodb/testing/fault_injection_fs.hpp>
#include <doctest/doctest.h>

#include <array>
#include <bit>
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <sys/wait.h>
#include <unistd.h>

using namespace aerodb;
using aerodb::testing::crash_kind;
using aerodb::testing::crash_spec;
using aerodb::testing::fault_injection_fs;
using aerodb::testing::fault_kind;
using aerodb::testing::op_kind;

namespace {

std::vector<std::byte> bytes(std::string_view s) {
  std::vector<std::byte> out;
  for (char c : s) out.push_back(static_cast<std::byte>(c));
  return out;
}

std::string str(const std::vector<std::byte>& b) {
  std::string out;
  for (std::byte c : b) out += static_cast<char>(c);
  return out;
}

std::string read_file(io::file_system& fs, const std::string& path) {
  auto f = fs.open(path, io::open_mode::read);
  REQUIRE_MESSAGE(f, (f ? "" : f.error_value().to_string()));
  auto all = io::read_all(**f);
  REQUIRE(all);
  return str(*all);
}

// Creates `d` and syncs its parent, so that its own entry survives a crash, as the
// engine does with the directories it creates.
void make_durable_dir(io::file_system& fs, const std::string& d) {
  REQUIRE(fs.create_dir(d));
  REQUIRE(fs.sync_dir(io::parent_dir(d)));
}

void write_file(io::file_system& fs, const std::string& path, std::string_view text,
                bool sync = true) {
  auto f = fs.open(path, io::open_mode::create_or_truncate);
  REQUIRE(f);
  REQUIRE((*f)->append(bytes(text)));
  if (sync) REQUIRE((*f)->sync());
}

struct posix_env {
  io::posix_file_system fs;
  std::string root;
  posix_env() {
    char tmpl[] = "/tmp/aerodb-test-fs-XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    root = tmpl;
  }
  ~posix_env() {
    std::error_code ec;
    std::filesystem::remove_all(root, ec);
  }
  posix_env(const posix_env&) = delete;
  posix_env& operator=(const posix_env&) = delete;
};

struct fault_env {
  fault_injection_fs fs;
  std::string root = "/tmp/db";
  // "/tmp" and "/tmp/db" made durable, as the engine leaves the directories it creates.
  fault_env() {
    REQUIRE(fs.create_dir(root));
    REQUIRE(fs.sync_dir("/"));
    REQUIRE(fs.sync_dir("/tmp"));
  }
};

}  // namespace

// ---- shared behaviour --------------------------------------------------------------

TEST_CASE_TEMPLATE("append, read, size and truncate", Env, posix_env, fault_env) {
  Env env;
  io::file_system& fs = env.fs;
  const std::string p = io::join(env.root, "data");

  auto w = fs.open(p, io::open_mode::create_or_truncate);
  REQUIRE(w);
  REQUIRE((*w)->append(bytes("hello")));
  REQUIRE((*w)->append(bytes(" world")));
  REQUIRE((*w)->append({}));
  CHECK(*(*w)->size() == 11);
  REQUIRE((*w)->sync());
  CHECK(read_file(fs, p) == "hello world");

  auto r = fs.open(p, io::open_mode::read);
  REQUIRE(r);
  std::array<std::byte, 100> buf{};
  auto got = (*r)->read_at(6, buf);
  REQUIRE(got);
  CHECK(*got == 5);
  CHECK(str({buf.begin(), buf.begin() + 5}) == "world");
  CHECK(*(*r)->read_at(11, buf) == 0);
  CHECK(*(*r)->read_at(1000, buf) == 0);

  SUBCASE("truncate shrinks, zero-extends, and appends go to the new end") {
    REQUIRE((*w)->truncate(5));
    CHECK(*(*w)->size() == 5);
    CHECK(*(*r)->size() == 5);
    REQUIRE((*w)->truncate(7));
    CHECK(read_file(fs, p) == std::string("hello\0\0", 7));
    REQUIRE((*w)->append(bytes("!")));
    CHECK(read_file(fs, p) == std::string("hello\0\0!", 8));
  }
  SUBCASE("append mode keeps content and appends; create_or_truncate truncates") {
    w->reset();
    auto a = fs.open(p, io::open_mode::append);
    REQUIRE(a);
    REQUIRE((*a)->append(bytes("!")));
    CHECK(read_file(fs, p) == "hello world!");
    auto c = fs.open(p, io::open_mode::create_or_truncate);
    REQUIRE(c);
    CHECK(*(*c)->size() == 0);
    CHECK(read_file(fs, p).empty());
  }
  SUBCASE("append mode creates a missing file") {
    const std::string q = io::join(env.root, "fresh");
    auto a = fs.open(q, io::open_mode::append);
    REQUIRE(a);
    CHECK(*fs.exists(q));
    CHECK(read_file(fs, q).empty());
  }
  SUBCASE("write handles cannot read and read handles cannot write") {
    auto bad_read = (*w)->read_at(0, buf);
    REQUIRE(!bad_read);
    CHECK(bad_read.code() == errc::storage_io_error);
    CHECK(bad_read.error_value().detail("errno_name") == "EBADF");
    auto bad_write = (*r)->append(bytes("x"));
    REQUIRE(!bad_write);
    CHECK(bad_write.code() == errc::storage_io_error);
    CHECK(read_file(fs, p) == "hello world");
  }
}

TEST_CASE_TEMPLATE("rename atomically replaces the target", Env, posix_env, fault_env) {
  Env env;
  io::file_system& fs = env.fs;
  const std::string from = io::join(env.root, "new.tmp");
  const std::string to = io::join(env.root, "current");
  write_file(fs, to, "old contents");
  write_file(fs, from, "new contents");
  auto old_reader = fs.open(to, io::open_mode::read);
  REQUIRE(old_reader);

  REQUIRE(fs.rename(from, to));
  REQUIRE(fs.sync_dir(env.root));
  CHECK(read_file(fs, to) == "new contents");
  CHECK_FALSE(*fs.exists(from));
  CHECK(*fs.list_dir(env.root) == std::vector<std::string>{"current"});
  // A handle opened before the rename still reads the file it opened, as on POSIX.
  auto old = io::read_all(**old_reader);
  REQUIRE(old);
  CHECK(str(*old) == "old contents");

  // Renaming onto a missing name simply moves the file.
  REQUIRE(fs.rename(to, from));
  CHECK(read_file(fs, from) == "new contents");
  CHECK_FALSE(*fs.exists(to));
}

TEST_CASE_TEMPLATE("list_dir lists regular files only, sorted bytewise", Env, posix_env,
                   fault_env) {
  Env env;
  io::file_system& fs = env.fs;
  for (const char* name : {"b", "a0", "\xff", "C", "a"})
    write_file(fs, io::join(env.root, name), "");
  REQUIRE(fs.create_dir(io::join(env.root, "subdir")));
  write_file(fs, io::join(env.root, "subdir/inner"), "x");
  auto names = fs.list_dir(env.root);
  REQUIRE(names);
  CHECK(*names == std::vector<std::string>{"C", "a", "a0", "b", "\xff"});
  CHECK(*fs.list_dir(env.root + "/subdir/") == std::vector<std::string>{"inner"});

  REQUIRE(fs.remove(io::join(env.root, "a0")));
  CHECK(*fs.list_dir(env.root) == std::vector<std::string>{"C", "a", "b", "\xff"});
}

TEST_CASE_TEMPLATE("directories: create_dir is mkdir -p; exists; sync_dir", Env, posix_env,
                   fault_env) {
  Env env;
  io::file_system& fs = env.fs;
  const std::string deep = io::join(env.root, "x/y/z");
  REQUIRE(fs.create_dir(deep));
  REQUIRE(fs.create_dir(deep));  // already there: fine
  REQUIRE(fs.create_dir(deep + "/"));
  CHECK(*fs.exists(io::join(env.root, "x/y")));
  CHECK(*fs.exists(deep));
  CHECK(*fs.list_dir(deep) == std::vector<std::string>{});
  REQUIRE(fs.sync_dir(deep));

  const std::string f = io::join(env.root, "plain");
  write_file(fs, f, "x");
  auto over_file = fs.create_dir(f);
  REQUIRE(!over_file);
  CHECK(over_file.code() == errc::storage_io_error);
  auto under_file = fs.create_dir(f + "/sub");
  REQUIRE(!under_file);
  CHECK(under_file.code() == errc::storage_io_error);
}

TEST_CASE_TEMPLATE("missing files: codes and details", Env, posix_env, fault_env) {
  Env env;
  io::file_system& fs = env.fs;
  const std::string missing = io::join(env.root, "missing");

  auto r = fs.open(missing, io::open_mode::read);
  REQUIRE(!r);
  CHECK(r.code() == errc::storage_not_found);
  CHECK(r.error_value().detail("op") == "open");
  CHECK(r.error_value().detail("path") == missing);
  CHECK(r.error_value().detail("errno") == std::to_string(ENOENT));
  CHECK(r.error_value().detail("errno_name") == "ENOENT");
  CHECK(r.error_value().message().find(missing) != std::string::npos);

  auto rm = fs.remove(missing);
  REQUIRE(!rm);
  CHECK(rm.code() == errc::storage_not_found);
  CHECK(rm.error_value().detail("errno_name") == "ENOENT");

  auto mv = fs.rename(missing, io::join(env.root, "elsewhere"));
  REQUIRE(!mv);
  CHECK(mv.code() == errc::storage_not_found);
  CHECK(mv.error_value().detail("to") == io::join(env.root, "elsewhere"));

  CHECK_FALSE(*fs.exists(missing));

  // Anything else that fails is an I/O error, even when errno is ENOENT.
  auto in_missing_dir = fs.open(io::join(env.root, "nodir/file"), io::open_mode::append);
  REQUIRE(!in_missing_dir);
  CHECK(in_missing_dir.code() == errc::storage_io_error);
  CHECK(in_missing_dir.error_value().detail("errno_name") == "ENOENT");
  auto ls = fs.list_dir(io::join(env.root, "nodir"));
  REQUIRE(!ls);
  CHECK(ls.code() == errc::storage_io_error);
  auto sd = fs.sync_dir(io::join(env.root, "nodir"));
  REQUIRE(!sd);
  CHECK(sd.code() == errc::storage_io_error);
  CHECK(sd.error_value().detail("path") == io::join(env.root, "nodir"));
}

TEST_CASE_TEMPLATE("a lock excludes a second lock in the same process until released", Env,
                   posix_env, fault_env) {
  Env env;
  io::file_system& fs = env.fs;
  const std::string lock_path = io::join(env.root, "LOCK");
  auto first = fs.lock(lock_path);
  REQUIRE(first);
  CHECK(*fs.exists(lock_path));

  auto second = fs.lock(lock_path);
  REQUIRE(!second);
  CHECK(second.code() == errc::storage_locked);
  CHECK(second.error_value().message().find("in use by another instance") != std::string::npos);
  CHECK(second.error_value().detail("op") == "flock");
  CHECK(second.error_value().detail("path") == lock_path);
  CHECK(second.error_value().detail("errno") == std::to_string(EWOULDBLOCK));

  auto other = fs.lock(io::join(env.root, "OTHER"));
  CHECK(other);

  first->reset();
  auto third = fs.lock(lock_path);
  CHECK(third);

  auto in_missing_dir = fs.lock(io::join(env.root, "nodir/LOCK"));
  REQUIRE(!in_missing_dir);
  CHECK(in_missing_dir.code() == errc::storage_io_error);
}

// ---- POSIX only --------------------------------------------------------------------

TEST_CASE("posix: a lock excludes another process") {
  posix_env env;
  const std::string lock_path = io::join(env.root, "LOCK");
  auto held = env.fs.lock(lock_path);
  REQUIRE(held);

  auto child_lock_code = [&]() -> int {
    const ::pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      // Exit codes: 0 = refused with AERO_STORAGE_LOCKED, 1 = granted, 2 = other error.
      auto r = io::posix_file_system{}.lock(lock_path);
      ::_exit(r ? 1 : (r.code() == errc::storage_locked ? 0 : 2));
    }
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    REQUIRE(WIFEXITED(status));
    return WEXITSTATUS(status);
  };

  CHECK(child_lock_code() == 0);
  held->reset();
  CHECK(child_lock_code() == 1);
}

TEST_CASE("posix: the shared instance is one object") {
  auto a = io::posix_file_system_instance();
  auto b = io::posix_file_system_instance();
  REQUIRE(a);
  CHECK(a.get() == b.get());
}

TEST_CASE("posix: errno names") {
  CHECK(io::errno_name(ENOSPC) == "ENOSPC");
  CHECK(io::errno_name(EIO) == "EIO");
  CHECK(io::errno_name(ENOENT) == "ENOENT");
  CHECK_FALSE(io::errno_name(99999).empty());
}

// ---- fault-injecting file system: the crash model ----------------------------------

TEST_CASE("fault fs: unsynced data is dropped at a crash, synced data kept") {
  fault_injection_fs fs;
  make_durable_dir(fs, "db");
  auto f = fs.open("db/wal", io::open_mode::create_or_truncate);
  REQUIRE(f);
  REQUIRE(fs.sync_dir("db"));
  REQUIRE((*f)->append(bytes("synced|")));
  REQUIRE((*f)->sync());
  REQUIRE((*f)->append(bytes("lost")));
  CHECK(str(fs.contents("db/wal")) == "synced|lost");
  CHECK(str(fs.durable_contents("db/wal")) == "synced|");

  fs.crash();
  CHECK(str(fs.contents("db/wal")) == "synced|");
  CHECK(fs.file_size("db/wal") == 7);
  CHECK(read_file(fs, "db/wal") == "synced|");
}

TEST_CASE("fault fs: a synced file whose directory entry was never synced vanishes") {
  fault_injection_fs fs;
  make_durable_dir(fs, "db");
  write_file(fs, "db/snapshot", "all synced");
  CHECK_FALSE(fs.durable_exists("db/snapshot"));
  fs.crash();
  CHECK_FALSE(*fs.exists("db/snapshot"));
  CHECK(fs.list_dir("db")->empty());
  CHECK(fs.open("db/snapshot", io::open_mode::read).code() == errc::storage_not_found);
  CHECK(*fs.exists("db"));  // its parent was synced after create_dir
}

TEST_CASE("fault fs: a directory whose parent was never synced vanishes with everything in it") {
  // The model of the real-syscall finding: a store directory made by mkdir, files synced
  // in it (their entries too), but the directory's own entry never synced in its parent.
  fault_injection_fs fs;
  REQUIRE(fs.create_dir("top/db"));
  write_file(fs, "top/db/wal", "acknowledged");
  REQUIRE(fs.sync_dir("top/db"));
  CHECK(fs.durable_exists("top/db/wal"));

  SUBCASE("no parent synced: the whole tree is gone") {
    fs.crash();
    CHECK_FALSE(*fs.exists("top"));
    CHECK_FALSE(*fs.exists("top/db"));
    CHECK(fs.open("top/db/wal", io::open_mode::read).code() == errc::storage_not_found);
  }
  SUBCASE("the parent synced but not the grandparent: still gone") {
    REQUIRE(fs.sync_dir("top"));
    fs.crash();
    CHECK_FALSE(*fs.exists("top/db"));
  }
  SUBCASE("every parent synced: the tree survives") {
    REQUIRE(fs.sync_dir("."));
    REQUIRE(fs.sync_dir("top"));
    fs.crash();
    CHECK(*fs.exists("top/db"));
    CHECK(read_file(fs, "top/db/wal") == "acknowledged");
  }
  SUBCASE("keep_unsynced keeps the directories") {
    fs.crash({crash_kind::keep_unsynced});
    CHECK(read_file(fs, "top/db/wal") == "acknowledged");
  }
}

TEST_CASE("fault fs: rename and remove are not durable until sync_dir") {
  fault_injection_fs fs;
  make_durable_dir(fs, "db");
  write_file(fs, "db/current", "v1");
  REQUIRE(fs.sync_dir("db"));
  write_file(fs, "db/current.tmp", "v2");

  SUBCASE("rename without sync_dir is undone") {
    REQUIRE(fs.rename("db/current.tmp", "db/current"));
    fs.crash();
    CHECK(read_file(fs, "db/current") == "v1");
    CHECK_FALSE(*fs.exists("db/current.tmp"));  // its own entry was never durable either
  }
  SUBCASE("rename then sync_dir survives") {
    REQUIRE(fs.rename("db/current.tmp", "db/current"));
    REQUIRE(fs.sync_dir("db"));
    fs.crash();
    CHECK(read_file(fs, "db/current") == "v2");
    CHECK(*fs.list_dir("db") == std::vector<std::string>{"current"});
  }
  SUBCASE("remove without sync_dir is undone") {
    REQUIRE(fs.remove("db/current"));
    CHECK_FALSE(*fs.exists("db/current"));
    fs.crash();
    CHECK(read_file(fs, "db/current") == "v1");
  }
  SUBCASE("sync_dir of another directory does not help") {
    REQUIRE(fs.create_dir("other"));
    REQUIRE(fs.rename("db/current.tmp", "db/current"));
    REQUIRE(fs.sync_dir("other"));
    fs.crash();
    CHECK(read_file(fs, "db/current") == "v1");
  }
}

TEST_CASE("fault fs: keep_unsynced keeps everything written") {
  fault_injection_fs fs;
  make_durable_dir(fs, "db");
  write_file(fs, "db/a", "never synced", false);
  write_file(fs, "db/b", "b");
  REQUIRE(fs.rename("db/b", "db/c"));
  fs.crash({crash_kind::keep_unsynced});
  CHECK(read_file(fs, "db/a") == "never synced");
  CHECK(read_file(fs, "db/c") == "b");
  CHECK(*fs.list_dir("db") == std::vector<std::string>{"a", "c"});
  CHECK(str(fs.durable_contents("db/a")) == "never synced");
  // And a later power loss cannot take it away any more.
  fs.crash();
  CHECK(read_file(fs, "db/a") == "never synced");
}

TEST_CASE("fault fs: tear_last_append keeps exactly k unsynced bytes, for every k") {
  const std::string durable = "HEADER";
  const std::string unsynced = "0123456789";
  auto setup = [&](fault_injection_fs& fs) {
    make_durable_dir(fs, "db");
    auto other = fs.open("db/other", io::open_mode::create_or_truncate);
    REQUIRE(other);
    auto f = fs.open("db/wal", io::open_mode::create_or_truncate);
    REQUIRE(f);
    REQUIRE(fs.sync_dir("db"));
    REQUIRE((*f)->append(bytes(durable)));
    REQUIRE((*f)->sync());
    REQUIRE((*other)->append(bytes("other unsynced")));
    REQUIRE((*f)->append(bytes(unsynced.substr(0, 4))));
    REQUIRE((*f)->append(bytes(unsynced.substr(4))));
  };
  std::uint64_t n = 0;
  {
    fault_injection_fs fs;
    setup(fs);
    n = fs.unsynced_bytes_of_last_append_file();
  }
  REQUIRE(n == unsynced.size());
  for (std::uint64_t k = 0; k <= n + 2; ++k) {
    CAPTURE(k);
    fault_injection_fs fs;
    setup(fs);
    fs.crash({crash_kind::tear_last_append, k});
    const std::size_t kept = static_cast<std::size_t>(std::min(k, n));
    CHECK(read_file(fs, "db/wal") == durable + unsynced.substr(0, kept));
    CHECK(read_file(fs, "db/other").empty());  // only the last-appended file is torn
    CHECK(fs.unsynced_bytes_of_last_append_file() == 0);
  }

  SUBCASE("a torn file whose entry is not durable still vanishes") {
    fault_injection_fs fs;
    make_durable_dir(fs, "db");
    write_file(fs, "db/new", "abc", false);
    CHECK(fs.unsynced_bytes_of_last_append_file() == 3);
    fs.crash({crash_kind::tear_last_append, 3});
    CHECK_FALSE(*fs.exists("db/new"));
  }
}

TEST_CASE("fault fs: independent_loss keeps a prefix of each file's unsynced bytes, chosen per file") {
  // Three files with durable heads and unsynced tails; over many seeds every file must
  // end up with its durable head plus a prefix of its tail, and the choices must differ
  // between files (some seed keeps more of one than of another) and repeat per seed.
  const std::vector<std::string> names = {"db/a", "db/b", "db/c"};
  auto setup = [&](fault_injection_fs& fs) {
    make_durable_dir(fs, "db");
    for (const auto& n : names) {
      auto f = fs.open(n, io::open_mode::create_or_truncate);
      REQUIRE(f);
      REQUIRE((*f)->append(bytes("head-" + n)));
      REQUIRE((*f)->sync());
      REQUIRE((*f)->append(bytes("-tail-of-" + n + "-0123456789")));
    }
    REQUIRE(fs.sync_dir("db"));
  };
  std::set<std::vector<std::size_t>> outcomes;
  bool files_differ = false;
  for (std::uint64_t seed = 0; seed < 64; ++seed) {
    CAPTURE(seed);
    std::vector<std::size_t> kept;
    for (int round = 0; round < 2; ++round) {
      fault_injection_fs fs;
      setup(fs);
      fs.crash({crash_kind::independent_loss, 0, seed});
      std::vector<std::size_t> k;
      for (const auto& n : names) {
        const std::string head = "head-" + n, tail = "-tail-of-" + n + "-0123456789";
        const std::string got = read_file(fs, n);
        REQUIRE(got.size() >= head.size());
        REQUIRE(got.size() <= head.size() + tail.size());
        CHECK(got == (head + tail).substr(0, got.size()));
        k.push_back(got.size() - head.size());
      }
      if (round == 0) kept = k;
      else CHECK(k == kept);  // the same seed makes the same choices
    }
    outcomes.insert(kept);
    files_differ |= kept[0] != kept[1] || kept[1] != kept[2];
  }
  CHECK(outcomes.size() > 20);
  CHECK(files_differ);
}

TEST_CASE("fault fs: writeback_reorder keeps any subset of unsynced pages, and of unsynced names") {
  // A durable head, then an unsynced tail over five 8-byte pages: after a crash each page
  // of the tail holds its bytes or zeros, whatever its neighbours hold (holes included),
  // the size is the durable or the current one, and each unsynced name is old or new on
  // its own. The same seed makes the same choices.
  const std::string head = "HEAD";                                  // durable, 4 bytes
  const std::string tail = "aaaabbbbbbbbccccccccddddddddeeeeeeee";  // pages [4,8), [8,16), ...
  auto setup = [&](fault_injection_fs& fs) {
    make_durable_dir(fs, "db");
    auto f = fs.open("db/wal", io::open_mode::create_or_truncate);
    REQUIRE(f);
    REQUIRE(fs.sync_dir("db"));
    REQUIRE((*f)->append(bytes(head)));
    REQUIRE((*f)->sync());
    REQUIRE((*f)->append(bytes(tail)));
    write_file(fs, "db/old", "old", true);
    REQUIRE(fs.sync_dir("db"));
    REQUIRE(fs.remove("db/old"));       // unsynced removal
    write_file(fs, "db/new", "new", true);  // unsynced creation
    REQUIRE(fs.create_dir("db/sub"));   // unsynced directory
    write_file(fs, "db/sub/x", "x", true);
    REQUIRE(fs.sync_dir("db/sub"));
  };
  std::set<std::string> pages_seen;
  std::set<std::size_t> sizes;
  std::set<std::vector<bool>> names_seen;
  bool hole = false;
  for (std::uint64_t seed = 1; seed <= 200; ++seed) {
    std::string got[2];
    for (int round = 0; round < 2; ++round) {
      fault_injection_fs fs;
      setup(fs);
      fs.crash({crash_kind::writeback_reorder, 0, seed, 8});
      got[round] = read_file(fs, "db/wal");
      const std::vector<bool> names = {*fs.exists("db/old"), *fs.exists("db/new"), *fs.exists("db/sub")};
      if (round == 0) names_seen.insert(names);
      if (*fs.exists("db/sub")) CHECK(read_file(fs, "db/sub/x") == "x");
    }
    CHECK(got[0] == got[1]);
    const std::string& g = got[0];
    CAPTURE(seed);
    REQUIRE((g.size() == head.size() || g.size() == head.size() + tail.size()));
    sizes.insert(g.size());
    CHECK(g.substr(0, head.size()) == head);
    if (g.size() == head.size()) continue;
    std::string mask;
    for (std::size_t p = 0; p < tail.size(); p += 8) {
      const std::size_t from = p == 0 ? 0 : p - 4;  // page boundaries are file offsets
      const std::size_t len = p == 0 ? 4 : 8;
      if (p != 0 && from + len > tail.size()) break;
      const std::string part = g.substr(head.size() + from, len);
      const bool kept = part == tail.substr(from, len);
      CHECK((kept || part == std::string(len, '\0')));
      mask += kept ? '1' : '0';
    }
    pages_seen.insert(mask);
    hole |= mask.find("01") != std::string::npos;
  }
  CHECK(sizes.size() == 2);
  CHECK(pages_seen.size() > 16);
  CHECK(hole);  // a later page on disk while an earlier one is not
  CHECK(names_seen.size() == 8);  // every combination of the three unsynced names
}

TEST_CASE("fault fs: copy_disk is a separate disk with the same current and durable state") {
  fault_injection_fs fs;
  make_durable_dir(fs, "db");
  write_file(fs, "db/synced", "durable", true);
  REQUIRE(fs.sync_dir("db"));
  write_file(fs, "db/loose", "not synced", false);
  auto copy = fs.copy_disk();
  CHECK(copy->op_count() == fs.op_count());
  CHECK(read_file(*copy, "db/loose") == "not synced");
  write_file(fs, "db/later", "only in the original", true);
  CHECK_FALSE(*copy->exists("db/later"));
  copy->crash({crash_kind::drop_unsynced});
  CHECK(read_file(*copy, "db/synced") == "durable");
  CHECK_FALSE(*copy->exists("db/loose"));
  CHECK(read_file(fs, "db/loose") == "not synced");  // the original did not crash
}

TEST_CASE("fault fs: crash_after(n) makes op n+1 and later fail without effect") {
  fault_injection_fs fs;
  REQUIRE(fs.create_dir("db"));  // op counts below assume this one op
  auto f = fs.open("db/wal", io::open_mode::append);
  REQUIRE(f);
  REQUIRE((*f)->append(bytes("kept")));
  const std::uint64_t n = fs.op_count();
  CHECK(n == 3);
  fs.crash_after(n);

  auto a = (*f)->append(bytes("gone"));
  REQUIRE(!a);
  CHECK(a.code() == errc::storage_io_error);
  CHECK(a.error_value().detail("injected") == "crash");
  CHECK(a.error_value().detail("path") == "db/wal");
  CHECK(fs.contents("db/wal") == bytes("kept"));

  CHECK(!fs.rename("db/wal", "db/wal2"));
  CHECK(!fs.open("db/new", io::open_mode::create_or_truncate));
  CHECK(!fs.create_dir("db2"));
  CHECK(!fs.lock("db/LOCK"));
  CHECK(!(*f)->sync());
  CHECK(fs.op_count() == n + 6);
  // Nothing happened, and non-mutating calls still work.
  CHECK(*fs.list_dir("db") == std::vector<std::string>{"wal"});
  CHECK_FALSE(*fs.exists("db2"));
  CHECK(read_file(fs, "db/wal") == "kept");
  const auto trace = fs.trace();
  REQUIRE(trace.size() == n + 6);
  CHECK(trace[n - 1].injected == fault_kind::none);
  for (std::size_t i = n; i < trace.size(); ++i) CHECK(trace[i].injected == fault_kind::crash);

  fs.crash();  // reboot: faults are cleared
  CHECK(fs.create_dir("db2"));
  // ("db" itself is gone: its entry was never synced in its parent.)
  CHECK(fs.open("db2/new", io::open_mode::create_or_truncate));
}

TEST_CASE("fault fs: fail_op(k, ENOSPC) fails op k once, with details, and no effect") {
  fault_injection_fs fs;
  make_durable_dir(fs, "db");
  auto f = fs.open("db/wal", io::open_mode::append);
  REQUIRE(f);
  const std::uint64_t k = fs.op_count() + 1;
  fs.fail_op(k, ENOSPC);
  fs.fail_op(k + 3, EIO);

  auto a = (*f)->append(bytes("full"));
  REQUIRE(!a);
  CHECK(a.code() == errc::storage_io_error);
  const error& e = a.error_value();
  CHECK(e.detail("errno") == std::to_string(ENOSPC));
  CHECK(e.detail("errno_name") == "ENOSPC");
  CHECK(e.detail("op") == "write");
  CHECK(e.detail("path") == "db/wal");
  CHECK(e.detail("injected") == "fail");
  CHECK(fs.file_size("db/wal") == 0);

  REQUIRE((*f)->append(bytes("fits")));  // op k + 1
  REQUIRE((*f)->sync());                 // op k + 2
  auto s = (*f)->sync();                 // op k + 3
  REQUIRE(!s);
  CHECK(s.error_value().detail("errno_name") == "EIO");
  CHECK(s.error_value().detail("op") == "fdatasync");
  CHECK((*f)->sync());  // op k + 4
  CHECK(fs.contents("db/wal") == bytes("fits"));
  CHECK(fs.trace()[k - 1].injected == fault_kind::fail);
  CHECK(fs.trace()[k].injected == fault_kind::none);
}

TEST_CASE("fault fs: flip_bit flips exactly one bit, everywhere") {
  fault_injection_fs fs;
  make_durable_dir(fs, "db");
  write_file(fs, "db/f", "some bytes");
  REQUIRE(fs.sync_dir("db"));
  const auto before = fs.contents("db/f");
  fs.flip_bit("db/f", 19);  // byte 2, bit 3
  const auto after = fs.contents("db/f");
  REQUIRE(after.size() == before.size());
  int differing_bits = 0;
  for (std::size_t i = 0; i < before.size(); ++i)
    differing_bits += std::popcount(std::to_integer<unsigned>(before[i] ^ after[i]));
  CHECK(differing_bits == 1);
  CHECK((before[2] ^ after[2]) == std::byte{0x08});
  CHECK(fs.durable_contents("db/f") == after);
  fs.crash();
  CHECK(fs.contents("db/f") == after);
  CHECK_THROWS_AS(fs.flip_bit("db/f", 8 * before.size()), std::out_of_range);
  CHECK_THROWS_AS(fs.flip_bit("db/none", 0), std::out_of_range);
  CHECK_THROWS_AS((void)fs.contents("db/none"), std::out_of_range);
}

TEST_CASE("fault fs: handles and locks from before a crash are dead") {
  fault_injection_fs fs;
  make_durable_dir(fs, "db");
  auto w = fs.open("db/f", io::open_mode::create_or_truncate);
  REQUIRE(w);
  REQUIRE(fs.sync_dir("db"));
  auto r = fs.open("db/f", io::open_mode::read);
  REQUIRE(r);
  auto held = fs.lock("db/LOCK");
  REQUIRE(held);
  fs.crash();

  const std::uint64_t ops = fs.op_count();
  auto a = (*w)->append(bytes("x"));
  REQUIRE(!a);
  CHECK(a.code() == errc::storage_io_error);
  CHECK(a.error_value().detail("injected") == "stale_handle");
  CHECK(!(*w)->sync());
  CHECK(!(*w)->truncate(0));
  std::array<std::byte, 4> buf{};
  CHECK(!(*r)->read_at(0, buf));
  CHECK(!(*r)->size());
  CHECK(fs.op_count() == ops);  // a dead process's calls are not ops
  CHECK(fs.file_size("db/f") == 0);

  // The reboot released the lock; releasing the stale object must not free the new one.
  auto relock = fs.lock("db/LOCK");
  REQUIRE(relock);
  held->reset();
  CHECK(fs.lock("db/LOCK").code() == errc::storage_locked);
}

TEST_CASE("fault fs: trace records every mutating op and only those") {
  fault_injection_fs fs;
  REQUIRE(fs.create_dir("db//"));
  auto f = fs.open("db/a", io::open_mode::create_or_truncate);
  REQUIRE(f);
  REQUIRE((*f)->append(bytes("12345")));
  REQUIRE((*f)->sync());
  REQUIRE((*f)->truncate(2));
  // None of these count.
  (void)fs.open("db/a", io::open_mode::read);
  (void)fs.open("db/missing", io::open_mode::read);
  (void)fs.exists("db/a");
  (void)fs.list_dir("db");
  (void)(*f)->size();
  (void)fs.contents("db/a");
  REQUIRE(fs.rename("db/a", "db/b"));
  REQUIRE(fs.sync_dir("db"));
  auto l = fs.lock("db/LOCK");
  REQUIRE(l);
  auto g = fs.open("db/b", io::open_mode::append);
  REQUIRE(g);
  REQUIRE(fs.remove("db/b"));
  CHECK(!fs.remove("db/b"));  // failed calls count too

  const std::vector<op_kind> expected{
      op_kind::create_dir,  op_kind::open_create_or_truncate, op_kind::append,   op_kind::sync,
      op_kind::truncate,    op_kind::rename,          op_kind::sync_dir, op_kind::lock,
      op_kind::open_append, op_kind::remove,          op_kind::remove};
  const auto trace = fs.trace();
  REQUIRE(trace.size() == expected.size());
  CHECK(fs.op_count() == expected.size());
  for (std::size_t i = 0; i < trace.size(); ++i) {
    CAPTURE(i);
    CHECK(trace[i].number == i + 1);
    CHECK(trace[i].kind == expected[i]);
  }
  CHECK(trace[0].path == "db");
  CHECK(trace[2].path == "db/a");
  CHECK(trace[2].bytes == 5);
  CHECK(trace[4].bytes == 2);
  CHECK(trace[5].path == "db/a");
  CHECK(trace[5].target == "db/b");
  CHECK(testing::to_string(trace[6].kind) == "sync_dir");
}

TEST_CASE("fault fs: paths are normalised for repeated and trailing slashes") {
  fault_injection_fs fs;
  REQUIRE(fs.create_dir("/a//b/"));
  write_file(fs, "/a/b//f", "x");
  CHECK(*fs.exists("/a/b/f"));
  CHECK(*fs.exists("/a/b/"));
  CHECK(*fs.list_dir("/a//b") == std::vector<std::string>{"f"});
  CHECK(fs.contents("/a/b/f") == bytes("x"));
}

TEST_CASE("fault fs: many threads may use it at once") {
  fault_injection_fs fs;
  REQUIRE(fs.create_dir("db"));  // op counts below assume this one op
  constexpr int threads = 4;
  constexpr int appends = 200;
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&fs, t] {
      auto f = fs.open("db/f" + std::to_string(t), io::open_mode::create_or_truncate);
      if (!f) return;
      for (int i = 0; i < appends; ++i) (void)(*f)->append(bytes("ab"));
      (void)(*f)->sync();
      (void)fs.list_dir("db");
    });
  }
  for (auto& w : workers) w.join();
  for (int t = 0; t < threads; ++t) CHECK(fs.file_size("db/f" + std::to_string(t)) == 2 * appends);
  CHECK(fs.op_count() == 1 + threads * (appends + 2));
}

TEST_CASE("fault fs: writeback_reorder over a file written in place keeps old or new bytes per page") {
  // What the log's preallocated segments meet: a durable file of zeros, then writes over
  // it that were never synced. After a power loss each touched page holds its new bytes
  // or its old ones (here zeros), on its own; the size never changes; the durable part
  // before the first write is kept. Also: tear_last_append keeps whole sectors of such a
  // write; a truncate since the last sync is all or nothing.
  auto setup = [](fault_injection_fs& fs) {
    make_durable_dir(fs, "db");
    auto f = fs.open("db/seg", io::open_mode::write);
    REQUIRE(f);
    REQUIRE(fs.sync_dir("db"));
    REQUIRE((*f)->write_at(0, bytes(std::string(40, '\0'))));
    REQUIRE((*f)->write_at(0, bytes("HEAD")));
    REQUIRE((*f)->sync());
    REQUIRE((*f)->write_at(8, bytes("bbbbbbbbccccccccdddddddd")));  // pages [8,16), [16,24), [24,32)
    CHECK_FALSE((*f)->append(bytes("x")));  // positional writes only on such a handle
  };
  std::set<std::string> seen;
  for (std::uint64_t seed = 1; seed <= 100; ++seed) {
    fault_injection_fs fs;
    setup(fs);
    fs.crash({crash_kind::writeback_reorder, 0, seed, 8});
    const std::string g = read_file(fs, "db/seg");
    CAPTURE(seed);
    REQUIRE(g.size() == 40);
    CHECK(g.substr(0, 8) == std::string("HEAD") + std::string(4, '\0'));
    std::string mask;
    for (std::size_t p = 8; p < 32; p += 8) {
      const std::string page = g.substr(p, 8);
      const bool is_new = page == std::string(8, "bcd"[(p - 8) / 8]);
      CHECK((is_new || page == std::string(8, '\0')));
      mask += is_new ? '1' : '0';
    }
    CHECK(g.substr(32) == std::string(8, '\0'));
    seen.insert(mask);
  }
  CHECK(seen.size() == 8);  // every combination of the three pages, holes included
  for (std::uint64_t keep : {10, 23, 24, 100}) {
    // Inside the synced size a tear keeps whole sectors: of this 24-byte write inside one
    // sector, all of it or nothing.
    fault_injection_fs fs;
    setup(fs);
    CHECK(fs.unsynced_bytes_of_last_append_file() == 24);
    fs.crash({crash_kind::tear_last_append, keep});
    const std::string g = read_file(fs, "db/seg");
    CAPTURE(keep);
    if (keep < 24)
      CHECK(g == std::string("HEAD") + std::string(36, '\0'));
    else
      CHECK(g == std::string("HEAD") + std::string(4, '\0') + "bbbbbbbbccccccccdddddddd" + std::string(8, '\0'));
  }
  for (std::uint64_t seed = 1; seed <= 20; ++seed) {
    fault_injection_fs fs;
    setup(fs);
    auto f = fs.open("db/seg", io::open_mode::append);
    REQUIRE(f);
    REQUIRE((*f)->sync());
    REQUIRE((*f)->truncate(4));
    fs.crash({crash_kind::writeback_reorder, 0, seed, 8});
    const std::string g = read_file(fs, "db/seg");
    CHECK((g == "HEAD" || g.size() == 40));
  }
}
