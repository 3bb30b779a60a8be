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
//   - a directory made by create_dir() is, like a file, durable only once sync_dir() of
//     its parent ran after it (a crash loses it, and everything in it, otherwise);
//     directories are never removed;
//   - rename() moves regular files only;
//   - paths are plain strings: only repeated and trailing '/' are normalised, "." and ".."
//     are not resolved; "", "." and "/" always exist as directories;
//   - handles opened in append, create_or_truncate or write mode are write-only and read_at fails with
//     EBADF, as with the POSIX implementation (O_WRONLY), so a test cannot pass here and
//     fail in production on that account.
//
// Faults. Every mutating call (open in append/create_or_truncate/write mode, append, write_at, sync, truncate,
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
//
// Layout: testing/fault_model.hpp holds the disk (its state, op numbering and faults, and
// what crash() keeps); testing/fault_file.hpp the handles; this header the io::file_system
// interface and the test controls.
#pragma once

#include <aerodb/error.hpp>
#include <aerodb/io/file_system.hpp>
#include <aerodb/testing/fault_file.hpp>
#include <aerodb/testing/fault_model.hpp>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace aerodb::testing {

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
        return io_error(EISDIR, "open", p, "Could not open " + quote_path(p) + " for reading");
      inode_ptr node = find(s.current_ns, p);
      if (!node)
        return make_error(errc::storage_not_found, ENOENT, "open", p,
                          "Could not open " + quote_path(p) + " for reading");
      return handle(std::move(node), p, mode);
    }
    const bool truncating = mode == io::open_mode::create_or_truncate;
    const bool in_place = mode == io::open_mode::write;
    const char* purpose = truncating ? "writing" : in_place ? "writing in place" : "appending";
    const op_kind kind = truncating ? op_kind::open_create_or_truncate
                         : in_place ? op_kind::open_write
                                    : op_kind::open_append;
    if (auto e = begin_op(s, kind, "open", p)) return std::move(*e);
    auto node =
        create_file(p, "open", std::string("Could not open ") + quote_path(p) + " for " + purpose);
    if (!node) return std::move(node).error_value();
    if (truncating && !(*node)->current.empty()) {
      (*node)->current.clear();
      (*node)->rewritten = true;
    }
    return handle(std::move(*node), p, mode);
  }

  result<void> rename(const std::string& from, const std::string& to) override {
    using namespace fault_detail;
    const std::string f = normalize(from);
    const std::string t = normalize(to);
    std::lock_guard g(st_->mu);
    auto& s = *st_;
    const std::string what = "Could not rename " + quote_path(f) + " to " + quote_path(t);
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
    if (is_dir(s, p)) return io_error(EISDIR, "unlink", p, "Could not remove " + quote_path(p));
    if (!find(s.current_ns, p))
      return make_error(errc::storage_not_found, ENOENT, "unlink", p,
                        "Could not remove " + quote_path(p));
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
                      "Could not open directory " + quote_path(d) + " to make its entries durable");
    const std::string key = dir_key(d);
    const auto cur = s.current_ns.find(key);
    if (cur == s.current_ns.end())
      s.durable_ns.erase(key);
    else
      s.durable_ns[key] = cur->second;
    // The directory's subdirectories are entries of it like its files.
    for (const auto& sub : s.dirs)
      if (dir_key(split(sub).dir) == key) s.durable_dirs.insert(sub);
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
                        "Could not create directory " + quote_path(p) + " because " +
                            quote_path(prefixes[i]) + " exists and is not a directory");
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
                      "Could not list directory " + quote_path(d));
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
    auto node = create_file(p, "open", "Could not open lock file " + quote_path(p));
    if (!node) return std::move(node).error_value();
    if (s.locks.count(node->get()) != 0)
      return make_error(errc::storage_locked, EWOULDBLOCK, "flock", p,
                        "The directory guarded by lock file " + quote_path(p) +
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
    std::lock_guard g(st_->mu);
    fault_detail::apply_crash(*st_, spec);
  }

  // A separate disk holding what this one holds now, current and durable bytes and names
  // alike, with no handles, locks, pending faults or trace; op numbering continues from
  // here. Lets a test crash one moment of a run in several ways without rerunning it.
  std::shared_ptr<fault_injection_fs> copy_disk() const {
    std::lock_guard g(st_->mu);
    auto out = std::make_shared<fault_injection_fs>();
    fault_detail::copy_disk_state(*st_, *out->st_);
    return out;
  }

  // Unsynced bytes of the file that received the most recent append or write_at (0 if none): the
  // range of useful crash_spec::keep_bytes values for tear_last_append is 0..this.
  std::uint64_t unsynced_bytes_of_last_append_file() const {
    std::lock_guard g(st_->mu);
    const auto n = st_->last_append.lock();
    if (!n) return 0;
    const auto from = fault_detail::unsynced_from(*n);
    if (!from) return n->current.size() > n->durable.size() ? n->current.size() - n->durable.size() : 0;
    // Written at offsets only: from the first to the last byte that differs from the
    // synced bytes (a byte past the synced size always does).
    return fault_detail::unsynced_end(*n, *from) - *from;
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
