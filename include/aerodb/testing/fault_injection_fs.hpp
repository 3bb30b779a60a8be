// An in-memory file system that models exactly what the durability contract of
// aerodb/io/file_system.hpp promises, so that a test can crash a program at any point and
// check that what survives is what the program was entitled to expect. Public: use it to
// crash-test your own code on top of AeroDB as well.
//
// Model. Every file is an inode with two byte strings: `current` (what a running process
// sees) and `durable` (what is on the platter). file::sync() copies current -> durable for
// that inode. Names live in two namespaces, each a map dir -> (name -> inode): the
// `current` one, which open/rename/remove/lock change, and the `durable` one, which only
// sync_dir(dir) changes, by copying that directory's current entries over. crash() then
// decides what a rebooted process finds (see crash_kind). Simplifications, chosen because
// the engine never depends on the difference:
//   - directories made by create_dir() are durable at once and are never removed;
//   - rename() moves regular files only;
//   - paths are plain strings: only repeated and trailing '/' are normalised, "." and ".."
//     are not resolved; "", "." and "/" always exist as directories;
//   - handles opened in append or create_new mode are write-only and read_at fails with
//     EBADF, as with the POSIX implementation (O_WRONLY), so a test cannot pass here and
//     fail in production on that account.
//
// Faults. Every mutating call (open in append/create_new mode, append, sync, truncate,
// rename, remove, sync_dir, create_dir, lock) is numbered from 1, whether or not it
// succeeds, and recorded in trace(). Reads, size, list_dir, exists and open(read) are not
// numbered, so adding a read to the code under test does not shift a crash sweep.
// crash_after(n) makes every op numbered > n fail without effect (the process is "dead");
// fail_op(k, errno) makes op k alone fail without effect. Errors mirror the POSIX ones:
// the same codes and details (`op`, `path`, `errno`, `errno_name`), plus `injected`.
//
// Thread safety: every member may be called from any thread; one internal mutex, shared
// with the handles and locks this file system hands out, serialises all of them. Handles
// and locks keep that state alive, so they may outlive the fault_injection_fs.
//
// Invariants: op numbers are never reused (crash() does not reset them, so crash_after
// and fail_op take absolute numbers); a handle or lock from before a crash() never again
// affects the state; the test helpers (contents, flip_bit, ...) never count as ops.
#pragma once

#include <aerodb/error.hpp>
#include <aerodb/io/file_system.hpp>
#include <aerodb/io/posix_fs.hpp>  // errno_name / errno_text only

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace aerodb::testing {

enum class op_kind : std::uint8_t {
  open_append,
  open_create_new,
  append,
  sync,
  truncate,
  rename,
  remove,
  sync_dir,
  create_dir,
  lock,
};

constexpr std::string_view to_string(op_kind k) noexcept {
  switch (k) {
    case op_kind::open_append: return "open_append";
    case op_kind::open_create_new: return "open_create_new";
    case op_kind::append: return "append";
    case op_kind::sync: return "sync";
    case op_kind::truncate: return "truncate";
    case op_kind::rename: return "rename";
    case op_kind::remove: return "remove";
    case op_kind::sync_dir: return "sync_dir";
    case op_kind::create_dir: return "create_dir";
    case op_kind::lock: return "lock";
  }
  return "?";
}

// Which injected fault, if any, an op met.
enum class fault_kind : std::uint8_t { none, crash, fail };

struct op_record {
  std::uint64_t number = 0;  // 1-based; trace()[i].number == i + 1
  op_kind kind = op_kind::append;
  std::string path;         // normalised; the source for rename
  std::string target;       // rename destination; empty otherwise
  std::uint64_t bytes = 0;  // bytes appended (append) or new length (truncate); else 0
  fault_kind injected = fault_kind::none;
};

enum class crash_kind : std::uint8_t {
  // Power loss: every inode goes back to its synced bytes and every directory to its
  // synced entries. A file whose data was synced but whose directory entry never was
  // disappears, as it can on a real file system.
  drop_unsynced,
  // The process was killed but the kernel survived: everything written survives, names
  // included, as if everything had been synced.
  keep_unsynced,
  // Power loss in the middle of the last write: as drop_unsynced, except that the file
  // which received the most recent append keeps its durable bytes followed by the first
  // `keep_bytes` of its unsynced bytes (clamped to what exists). It still vanishes if its
  // directory entry was never made durable.
  tear_last_append,
  // Power loss with writeback still in progress on several files: as drop_unsynced for
  // names, but every file that has unsynced appended bytes independently keeps none, all,
  // or a prefix of them, chosen from `seed`. A file written in place (truncated, or not
  // an extension of its durable bytes) keeps either its durable or its current bytes.
  independent_loss,
};

struct crash_spec {
  crash_kind kind = crash_kind::drop_unsynced;
  std::uint64_t keep_bytes = 0;  // tear_last_append only
  std::uint64_t seed = 0;        // independent_loss only: same seed, same choices
};

namespace fault_detail {

struct inode {
  std::vector<std::byte> current;
  std::vector<std::byte> durable;
};
using inode_ptr = std::shared_ptr<inode>;
using directory = std::map<std::string, inode_ptr>;  // std::string orders bytewise
using name_space = std::map<std::string, directory>;

struct state {
  mutable std::mutex mu;
  std::set<std::string> dirs;
  name_space current_ns;
  name_space durable_ns;
  std::uint64_t ops = 0;
  std::vector<op_record> trace;
  std::optional<std::uint64_t> crash_after;
  std::map<std::uint64_t, int> fail_at;
  // Bumped by crash(): a handle remembers the epoch it was opened in and dies with it.
  std::uint64_t epoch = 0;
  // Held locks, by inode (flock locks the file, not the name) -> token of the holder.
  // Tokens are never reused, so a lock object released after crash() cannot drop a lock
  // taken after the reboot.
  std::map<const inode*, std::uint64_t> locks;
  std::uint64_t next_lock_token = 1;
  std::weak_ptr<inode> last_append;
};

inline std::string normalize(std::string_view p) {
  std::string out;
  out.reserve(p.size());
  for (char c : p) {
    if (c == '/' && !out.empty() && out.back() == '/') continue;
    out += c;
  }
  while (out.size() > 1 && out.back() == '/') out.pop_back();
  return out;
}

struct split_path {
  std::string dir;
  std::string name;
};

// REQUIRES: p is normalised.
inline split_path split(const std::string& p) {
  const auto pos = p.rfind('/');
  if (pos == std::string::npos) return {"", p};
  if (pos == 0) return {"/", p.substr(1)};
  return {p.substr(0, pos), p.substr(pos + 1)};
}

inline bool is_dir(const state& s, const std::string& p) {
  return p.empty() || p == "." || p == "/" || s.dirs.count(p) != 0;
}

inline inode_ptr find(const name_space& ns, const std::string& p) {
  const auto [dir, name] = split(p);
  const auto d = ns.find(dir);
  if (d == ns.end()) return nullptr;
  const auto f = d->second.find(name);
  return f == d->second.end() ? nullptr : f->second;
}

inline std::string quoted(const std::string& path) { return "\"" + path + "\""; }

// splitmix64: a fixed, portable sequence, so a crash_spec names the same crash everywhere.
inline std::uint64_t next_random(std::uint64_t& x) {
  std::uint64_t z = (x += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

inline error make_error(errc code, int err, std::string_view op, const std::string& path,
                        std::string what, std::string_view injected = {}) {
  std::string name = io::errno_name(err);
  what += ": ";
  what += io::errno_text(err);
  what += " (" + name + ").";
  std::vector<error_detail> details{{"op", std::string(op)},
                                    {"path", path},
                                    {"errno", std::to_string(err)},
                                    {"errno_name", std::move(name)}};
  if (!injected.empty()) details.push_back({"injected", std::string(injected)});
  return error(code, std::move(what), std::move(details));
}

inline error io_error(int err, std::string_view op, const std::string& path, std::string what) {
  return make_error(errc::storage_io_error, err, op, path, std::move(what));
}

// Numbers and records a mutating op, then applies any injected fault. REQUIRES: s.mu held.
// Returns the error to report when the op must fail without effect.
inline std::optional<error> begin_op(state& s, op_kind kind, std::string_view syscall,
                                     const std::string& path, std::string target = {},
                                     std::uint64_t bytes = 0) {
  const std::uint64_t n = ++s.ops;
  op_record rec{n, kind, path, std::move(target), bytes, fault_kind::none};
  std::optional<error> e;
  if (s.crash_after && n > *s.crash_after) {
    rec.injected = fault_kind::crash;
    e = make_error(errc::storage_io_error, EIO, syscall, path,
                   "Simulated crash: op " + std::to_string(n) + " (" +
                       std::string(to_string(kind)) + " of " + quoted(path) +
                       ") came after crash_after(" + std::to_string(*s.crash_after) +
                       ") and had no effect",
                   "crash");
  } else if (const auto f = s.fail_at.find(n); f != s.fail_at.end()) {
    rec.injected = fault_kind::fail;
    e = make_error(errc::storage_io_error, f->second, syscall, path,
                   "Injected failure of op " + std::to_string(n) + " (" +
                       std::string(to_string(kind)) + " of " + quoted(path) + ")",
                   "fail");
    s.fail_at.erase(f);
  }
  s.trace.push_back(std::move(rec));
  return e;
}

class fault_file final : public io::file {
 public:
  fault_file(std::shared_ptr<state> st, inode_ptr node, std::string path, io::open_mode mode,
             std::uint64_t epoch)
      : st_(std::move(st)),
        node_(std::move(node)),
        path_(std::move(path)),
        mode_(mode),
        epoch_(epoch) {}

  result<void> append(std::span<const std::byte> data) override {
    std::lock_guard g(st_->mu);
    if (auto e = stale("write")) return std::move(*e);
    if (auto e = begin_op(*st_, op_kind::append, "write", path_, {}, data.size()))
      return std::move(*e);
    if (mode_ == io::open_mode::read)
      return io_error(EBADF, "write", path_,
                      "Could not append to " + quoted(path_) + " through a read-only handle");
    node_->current.insert(node_->current.end(), data.begin(), data.end());
    st_->last_append = node_;
    return ok();
  }

  result<void> sync() override {
    std::lock_guard g(st_->mu);
    if (auto e = stale("fdatasync")) return std::move(*e);
    if (auto e = begin_op(*st_, op_kind::sync, "fdatasync", path_)) return std::move(*e);
    node_->durable = node_->current;
    return ok();
  }

  result<std::size_t> read_at(std::uint64_t offset, std::span<std::byte> out) override {
    std::lock_guard g(st_->mu);
    if (auto e = stale("pread")) return std::move(*e);
    if (mode_ != io::open_mode::read)
      return io_error(EBADF, "pread", path_,
                      "Could not read " + quoted(path_) + " through a write-only handle");
    const auto& bytes = node_->current;
    if (offset >= bytes.size()) return std::size_t{0};
    const std::size_t n = std::min(out.size(), bytes.size() - static_cast<std::size_t>(offset));
    std::copy_n(bytes.begin() + static_cast<std::ptrdiff_t>(offset), n, out.begin());
    return n;
  }

  result<std::uint64_t> size() override {
    std::lock_guard g(st_->mu);
    if (auto e = stale("fstat")) return std::move(*e);
    return static_cast<std::uint64_t>(node_->current.size());
  }

  result<void> truncate(std::uint64_t length) override {
    std::lock_guard g(st_->mu);
    if (auto e = stale("ftruncate")) return std::move(*e);
    if (auto e = begin_op(*st_, op_kind::truncate, "ftruncate", path_, {}, length))
      return std::move(*e);
    if (mode_ == io::open_mode::read)
      return io_error(EINVAL, "ftruncate", path_,
                      "Could not truncate " + quoted(path_) + " through a read-only handle");
    node_->current.resize(static_cast<std::size_t>(length));  // zero-extends
    return ok();
  }

 private:
  // REQUIRES: st_->mu held.
  std::optional<error> stale(std::string_view op) const {
    if (epoch_ == st_->epoch) return std::nullopt;
    return make_error(errc::storage_io_error, EBADF, op, path_,
                      "The handle of " + quoted(path_) +
                          " was opened before a simulated crash and is no longer valid",
                      "stale_handle");
  }

  std::shared_ptr<state> st_;
  inode_ptr node_;
  std::string path_;
  io::open_mode mode_;
  std::uint64_t epoch_;
};

class fault_lock final : public io::file_lock {
 public:
  fault_lock(std::shared_ptr<state> st, inode_ptr node, std::uint64_t token)
      : st_(std::move(st)), node_(std::move(node)), token_(token) {}
  fault_lock(const fault_lock&) = delete;
  fault_lock& operator=(const fault_lock&) = delete;
  ~fault_lock() override {
    std::lock_guard g(st_->mu);
    const auto it = st_->locks.find(node_.get());
    if (it != st_->locks.end() && it->second == token_) st_->locks.erase(it);
  }

 private:
  std::shared_ptr<state> st_;
  inode_ptr node_;  // keeps the inode, and so the address used as the lock key, alive
  std::uint64_t token_;
};

}  // namespace fault_detail

class fault_injection_fs final : public io::file_system {
 public:
  fault_injection_fs() : st_(std::make_shared<fault_detail::state>()) {}
  fault_injection_fs(const fault_injection_fs&) = delete;
  fault_injection_fs& operator=(const fault_injection_fs&) = delete;

  // ---- io::file_system -------------------------------------------------------------

  result<std::unique_ptr<io::file>> open(const std::string& path, io::open_mode mode) override {
    using namespace fault_detail;
    const std::string p = normalize(path);
    std::lock_guard g(st_->mu);
    auto& s = *st_;
    if (mode == io::open_mode::read) {
      if (is_dir(s, p))
        return io_error(EISDIR, "open", p, "Could not open " + quoted(p) + " for reading");
      inode_ptr node = find(s.current_ns, p);
      if (!node)
        return make_error(errc::storage_not_found, ENOENT, "open", p,
                          "Could not open " + quoted(p) + " for reading");
      return handle(std::move(node), p, mode);
    }
    const bool create_new = mode == io::open_mode::create_new;
    const char* purpose = create_new ? "writing" : "appending";
    if (auto e =
            begin_op(s, create_new ? op_kind::open_create_new : op_kind::open_append, "open", p))
      return std::move(*e);
    auto node =
        create_file(p, "open", std::string("Could not open ") + quoted(p) + " for " + purpose);
    if (!node) return std::move(node).error_value();
    if (create_new) (*node)->current.clear();
    return handle(std::move(*node), p, mode);
  }

  result<void> rename(const std::string& from, const std::string& to) override {
    using namespace fault_detail;
    const std::string f = normalize(from);
    const std::string t = normalize(to);
    std::lock_guard g(st_->mu);
    auto& s = *st_;
    const std::string what = "Could not rename " + quoted(f) + " to " + quoted(t);
    if (auto e = begin_op(s, op_kind::rename, "rename", f, t)) return std::move(*e);
    if (is_dir(s, f))
      return io_error(ENOTSUP, "rename", f,
                      what +
                          " because the fault-injection file system "
                          "renames regular files only")
          .with("to", t);
    inode_ptr node = find(s.current_ns, f);
    const auto [tdir, tname] = split(t);
    if (!node || !is_dir(s, tdir))
      return make_error(errc::storage_not_found, ENOENT, "rename", f, what).with("to", t);
    if (is_dir(s, t)) return io_error(EISDIR, "rename", f, what).with("to", t);
    if (f == t) return ok();
    const auto [fdir, fname] = split(f);
    s.current_ns[fdir].erase(fname);
    s.current_ns[tdir][tname] = std::move(node);
    return ok();
  }

  result<void> remove(const std::string& path) override {
    using namespace fault_detail;
    const std::string p = normalize(path);
    std::lock_guard g(st_->mu);
    auto& s = *st_;
    if (auto e = begin_op(s, op_kind::remove, "unlink", p)) return std::move(*e);
    if (is_dir(s, p)) return io_error(EISDIR, "unlink", p, "Could not remove " + quoted(p));
    if (!find(s.current_ns, p))
      return make_error(errc::storage_not_found, ENOENT, "unlink", p,
                        "Could not remove " + quoted(p));
    const auto [dir, name] = split(p);
    s.current_ns[dir].erase(name);
    return ok();
  }

  result<void> sync_dir(const std::string& dir) override {
    using namespace fault_detail;
    const std::string d = normalize(dir);
    std::lock_guard g(st_->mu);
    auto& s = *st_;
    if (auto e = begin_op(s, op_kind::sync_dir, "fsync", d)) return std::move(*e);
    if (!is_dir(s, d))
      return io_error(find(s.current_ns, d) ? ENOTDIR : ENOENT, "open", d,
                      "Could not open directory " + quoted(d) + " to make its entries durable");
    const auto cur = s.current_ns.find(d);
    if (cur == s.current_ns.end())
      s.durable_ns.erase(d);
    else
      s.durable_ns[d] = cur->second;
    return ok();
  }

  result<void> create_dir(const std::string& path) override {
    using namespace fault_detail;
    const std::string p = normalize(path);
    std::lock_guard g(st_->mu);
    auto& s = *st_;
    if (auto e = begin_op(s, op_kind::create_dir, "mkdir", p)) return std::move(*e);
    if (p.empty())
      return io_error(ENOENT, "mkdir", p, "Could not create a directory with an empty path");
    // Check every prefix before creating any, so a failure has no effect.
    std::vector<std::string> prefixes;
    for (std::size_t pos = p.find('/', 1); pos != std::string::npos; pos = p.find('/', pos + 1))
      prefixes.push_back(p.substr(0, pos));
    prefixes.push_back(p);
    for (std::size_t i = 0; i < prefixes.size(); ++i) {
      if (find(s.current_ns, prefixes[i]))
        return io_error(i + 1 == prefixes.size() ? EEXIST : ENOTDIR, "mkdir", prefixes[i],
                        "Could not create directory " + quoted(p) + " because " +
                            quoted(prefixes[i]) + " exists and is not a directory");
    }
    s.dirs.insert(prefixes.begin(), prefixes.end());
    return ok();
  }

  result<std::vector<std::string>> list_dir(const std::string& dir) override {
    using namespace fault_detail;
    const std::string d = normalize(dir);
    std::lock_guard g(st_->mu);
    auto& s = *st_;
    if (!is_dir(s, d))
      return io_error(find(s.current_ns, d) ? ENOTDIR : ENOENT, "opendir", d,
                      "Could not list directory " + quoted(d));
    std::vector<std::string> names;
    if (const auto it = s.current_ns.find(d); it != s.current_ns.end())
      for (const auto& entry : it->second) names.push_back(entry.first);
    return names;  // already sorted: std::map<std::string> orders bytewise
  }

  result<bool> exists(const std::string& path) override {
    using namespace fault_detail;
    const std::string p = normalize(path);
    if (p.empty()) return false;
    std::lock_guard g(st_->mu);
    return is_dir(*st_, p) || find(st_->current_ns, p) != nullptr;
  }

  result<std::unique_ptr<io::file_lock>> lock(const std::string& path) override {
    using namespace fault_detail;
    const std::string p = normalize(path);
    std::lock_guard g(st_->mu);
    auto& s = *st_;
    if (auto e = begin_op(s, op_kind::lock, "flock", p)) return std::move(*e);
    auto node = create_file(p, "open", "Could not open lock file " + quoted(p));
    if (!node) return std::move(node).error_value();
    if (s.locks.count(node->get()) != 0)
      return make_error(errc::storage_locked, EWOULDBLOCK, "flock", p,
                        "The directory guarded by lock file " + quoted(p) +
                            " is in use by another instance; close that instance first");
    const std::uint64_t token = s.next_lock_token++;
    s.locks.emplace(node->get(), token);
    return std::unique_ptr<io::file_lock>(
        std::make_unique<fault_lock>(st_, std::move(*node), token));
  }

  // ---- fault injection -------------------------------------------------------------

  // Number of mutating ops so far (the number of the most recent one).
  std::uint64_t op_count() const {
    std::lock_guard g(st_->mu);
    return st_->ops;
  }

  // Every mutating op so far, in order; trace()[k - 1] is op k.
  std::vector<op_record> trace() const {
    std::lock_guard g(st_->mu);
    return st_->trace;
  }

  // Ops numbered > n fail with AERO_STORAGE_IO_ERROR (injected=crash) and have no effect,
  // until crash(). Pass op_count() + k to let k more ops through.
  void crash_after(std::uint64_t n) {
    std::lock_guard g(st_->mu);
    st_->crash_after = n;
  }

  // Op number k fails once with errno `err` (AERO_STORAGE_IO_ERROR, injected=fail) and has
  // no effect; later ops run normally. Several points may be pending at once.
  void fail_op(std::uint64_t k, int err) {
    std::lock_guard g(st_->mu);
    st_->fail_at[k] = err;
  }

  // Simulates the end of the process (and, unless keep_unsynced, of the machine) and a
  // reboot: decides what survives per spec.kind, clears crash_after and fail_op, releases
  // every lock and invalidates every handle opened so far. Op numbering continues.
  void crash(crash_spec spec = {}) {
    using namespace fault_detail;
    std::lock_guard g(st_->mu);
    auto& s = *st_;
    s.crash_after.reset();
    s.fail_at.clear();
    s.locks.clear();
    ++s.epoch;
    const inode_ptr torn = s.last_append.lock();
    s.last_append.reset();
    if (spec.kind == crash_kind::keep_unsynced) {
      s.durable_ns = s.current_ns;
      for (inode* n : inodes(s.current_ns)) n->durable = n->current;
      return;
    }
    s.current_ns = s.durable_ns;
    std::uint64_t rng = spec.seed;
    for (inode* n : inodes_in_name_order(s.durable_ns)) {
      const bool grew = n->current.size() > n->durable.size() &&
                        std::equal(n->durable.begin(), n->durable.end(), n->current.begin());
      const std::size_t from = n->durable.size();
      if (spec.kind == crash_kind::tear_last_append && n == torn.get() && grew) {
        const std::size_t keep = static_cast<std::size_t>(
            std::min<std::uint64_t>(spec.keep_bytes, n->current.size() - from));
        n->durable.insert(n->durable.end(), n->current.begin() + static_cast<std::ptrdiff_t>(from),
                          n->current.begin() + static_cast<std::ptrdiff_t>(from + keep));
      } else if (spec.kind == crash_kind::independent_loss && n->current != n->durable) {
        const std::uint64_t choice = fault_detail::next_random(rng);
        if (!grew) {
          if (choice % 2) n->durable = n->current;
        } else if (choice % 3 == 1) {
          n->durable = n->current;
        } else if (choice % 3 == 2) {
          const std::size_t keep = static_cast<std::size_t>(
              fault_detail::next_random(rng) % (n->current.size() - from + 1));
          n->durable.insert(n->durable.end(), n->current.begin() + static_cast<std::ptrdiff_t>(from),
                            n->current.begin() + static_cast<std::ptrdiff_t>(from + keep));
        }
      }
      n->current = n->durable;
    }
  }

  // A separate disk holding what this one holds now, current and durable bytes and names
  // alike, with no handles, locks, pending faults or trace; op numbering continues from
  // here. Lets a test crash one moment of a run in several ways without rerunning it.
  std::shared_ptr<fault_injection_fs> copy_disk() const {
    using namespace fault_detail;
    std::lock_guard g(st_->mu);
    auto out = std::make_shared<fault_injection_fs>();
    auto& d = *out->st_;
    d.dirs = st_->dirs;
    d.ops = st_->ops;
    std::map<const inode*, inode_ptr> copies;
    auto copy_ns = [&](const name_space& from) {
      name_space to;
      for (const auto& [dir, entries] : from)
        for (const auto& [name, node] : entries) {
          auto& c = copies[node.get()];
          if (!c) c = std::make_shared<inode>(*node);
          to[dir][name] = c;
        }
      return to;
    };
    d.current_ns = copy_ns(st_->current_ns);
    d.durable_ns = copy_ns(st_->durable_ns);
    if (auto last = st_->last_append.lock()) {
      const auto c = copies.find(last.get());
      if (c != copies.end()) d.last_append = c->second;
    }
    return out;
  }

  // Unsynced bytes of the file that received the most recent append (0 if none): the
  // range of useful crash_spec::keep_bytes values for tear_last_append is 0..this.
  std::uint64_t unsynced_bytes_of_last_append_file() const {
    std::lock_guard g(st_->mu);
    const auto n = st_->last_append.lock();
    if (!n || n->current.size() <= n->durable.size()) return 0;
    return n->current.size() - n->durable.size();
  }

  // ---- inspection and damage (test helpers: never counted; throw on misuse) --------

  // Flips one bit of a file, in both what the process sees and what is durable (where
  // the durable bytes are long enough), as media corruption would.
  // Throws std::out_of_range when the file is missing or bit_index is past its end.
  void flip_bit(const std::string& path, std::uint64_t bit_index) {
    std::lock_guard g(st_->mu);
    fault_detail::inode& n = existing(path);
    if (bit_index / 8 >= n.current.size())
      throw std::out_of_range("flip_bit: bit " + std::to_string(bit_index) +
                              " is past the end of " + path + " (" +
                              std::to_string(n.current.size()) + " bytes)");
    const auto byte = static_cast<std::size_t>(bit_index / 8);
    const std::byte mask = std::byte{1} << static_cast<unsigned>(bit_index % 8);
    n.current[byte] ^= mask;
    if (byte < n.durable.size()) n.durable[byte] ^= mask;
  }

  // What a process sees in the file now. Throws std::out_of_range when missing.
  std::vector<std::byte> contents(const std::string& path) const {
    std::lock_guard g(st_->mu);
    return existing(path).current;
  }

  // What a drop_unsynced crash would leave under this name. Throws std::out_of_range
  // when the name is not durable (see durable_exists).
  std::vector<std::byte> durable_contents(const std::string& path) const {
    std::lock_guard g(st_->mu);
    auto n = fault_detail::find(st_->durable_ns, fault_detail::normalize(path));
    if (!n) throw std::out_of_range("durable_contents: no durable entry for " + path);
    return n->durable;
  }

  // Whether the name would survive a drop_unsynced crash.
  bool durable_exists(const std::string& path) const {
    std::lock_guard g(st_->mu);
    return fault_detail::find(st_->durable_ns, fault_detail::normalize(path)) != nullptr;
  }

  // Size a process sees now. Throws std::out_of_range when missing.
  std::uint64_t file_size(const std::string& path) const {
    std::lock_guard g(st_->mu);
    return existing(path).current.size();
  }

 private:
  // REQUIRES: st_->mu held.
  fault_detail::inode& existing(const std::string& path) const {
    auto n = fault_detail::find(st_->current_ns, fault_detail::normalize(path));
    if (!n) throw std::out_of_range("fault_injection_fs: no file " + path);
    return *n;  // owned by the namespace, which outlives the caller's use under the lock
  }

  // Distinct inodes of a namespace in the order of their first name, so that choices made
  // per file (independent_loss) do not depend on where the allocator put the inodes.
  static std::vector<fault_detail::inode*> inodes_in_name_order(const fault_detail::name_space& ns) {
    std::set<fault_detail::inode*> seen;
    std::vector<fault_detail::inode*> out;
    for (const auto& dir : ns)
      for (const auto& entry : dir.second)
        if (seen.insert(entry.second.get()).second) out.push_back(entry.second.get());
    return out;
  }

  // Distinct inodes of a namespace: one inode may sit under two names after a rename
  // across directories whose both sides were not synced together.
  static std::vector<fault_detail::inode*> inodes(const fault_detail::name_space& ns) {
    std::set<fault_detail::inode*> seen;
    for (const auto& dir : ns)
      for (const auto& entry : dir.second) seen.insert(entry.second.get());
    return {seen.begin(), seen.end()};
  }

  // The inode at `p`, created empty in the current namespace if missing, as
  // open(O_CREAT) does. REQUIRES: st_->mu held.
  result<fault_detail::inode_ptr> create_file(const std::string& p, std::string_view op,
                                              const std::string& what) {
    using namespace fault_detail;
    auto& s = *st_;
    if (is_dir(s, p)) return io_error(EISDIR, op, p, what);
    if (inode_ptr node = find(s.current_ns, p)) return node;
    const auto [dir, name] = split(p);
    if (!is_dir(s, dir)) return io_error(find(s.current_ns, dir) ? ENOTDIR : ENOENT, op, p, what);
    auto node = std::make_shared<inode>();
    s.current_ns[dir][name] = node;
    return node;
  }

  // REQUIRES: st_->mu held.
  std::unique_ptr<io::file> handle(fault_detail::inode_ptr node, const std::string& p,
                                   io::open_mode mode) {
    return std::make_unique<fault_detail::fault_file>(st_, std::move(node), p, mode, st_->epoch);
  }

  std::shared_ptr<fault_detail::state> st_;
};

}  // namespace aerodb::testing
