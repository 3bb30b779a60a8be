// The one seam through which every file and directory operation of the engine passes.
//
// Files are append-only (plus truncate), which is all the engine's formats need: the WAL
// appends, snapshots and checkpoint records are written whole into fresh files and then
// renamed into place. Keeping the model this small is what lets the fault-injecting file
// system (aerodb/testing/fault_injection_fs.hpp) describe exactly what a crash can leave.
//
// Durability contract (what callers may rely on, and what the fault-injecting file system
// enforces):
//   - appended bytes are durable only after file::sync() returns success;
//   - a created, renamed or removed directory entry (a file's or a directory's) is
//     durable only after file_system::sync_dir() of its parent directory returns success;
//   - rename() atomically replaces the target.
// Errors carry AERO_STORAGE_* codes with the errno and the path in their details.
//
// Thread safety: a file_system may be used from many threads at once. A single `file`
// object must not be used by two threads at the same time.
#pragma once

#include <aerodb/error.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace aerodb::io {

enum class open_mode : std::uint8_t {
  read,        // existing file, reads only; AERO_STORAGE_NOT_FOUND when missing
  append,      // existing file, or a new empty one; appends go to the end
  create_or_truncate,  // a new empty file, or an existing one truncated to zero
  // An existing file, or a new empty one, written at explicit offsets (write_at) and never
  // truncated by opening: for files written over space that was allocated before, like the
  // log's preallocated segments. append() is refused on such a handle.
  write,
};

// Thread safety: sync() may run on one thread while write_at() or append() runs on
// another (the log's pipelined commits sync one group while writing the next); other
// calls on one file are made by one thread at a time.
class file {
 public:
  virtual ~file() = default;
  // Appends all of `data` at the end of the file (one write call when possible). Only on
  // handles opened in append or create_or_truncate mode.
  virtual result<void> append(std::span<const std::byte> data) = 0;
  // Writes all of `data` at `offset`, over existing bytes or past the end (the gap, if
  // any, reads as zeros). Only on handles opened in write mode. Durable after sync();
  // until then a crash may keep any subset of the 512-byte sectors it touched.
  virtual result<void> write_at(std::uint64_t offset, std::span<const std::byte> data) = 0;
  // Makes every byte appended so far durable (fdatasync).
  virtual result<void> sync() = 0;
  // Reads up to out.size() bytes at `offset`; returns how many were read (short at EOF).
  virtual result<std::size_t> read_at(std::uint64_t offset, std::span<std::byte> out) = 0;
  virtual result<std::uint64_t> size() = 0;
  // Shrinks (or zero-extends) the file to `length` bytes. Durable after sync().
  virtual result<void> truncate(std::uint64_t length) = 0;
};

// Held while a process owns a directory; releasing it (destruction) unlocks.
class file_lock {
 public:
  virtual ~file_lock() = default;
};

class file_system {
 public:
  virtual ~file_system() = default;
  virtual result<std::unique_ptr<file>> open(const std::string& path, open_mode mode) = 0;
  // Atomically replaces `to` with `from`. Durable after sync_dir() of the parent.
  virtual result<void> rename(const std::string& from, const std::string& to) = 0;
  // Removes a file. Durable after sync_dir() of the parent.
  virtual result<void> remove(const std::string& path) = 0;
  // Makes the directory's entries (creations, renames, removals) durable.
  virtual result<void> sync_dir(const std::string& dir) = 0;
  // Creates a directory (and its parents); success when it already exists. Like a file,
  // a new directory is durable only after sync_dir() of its parent (the POSIX
  // implementation also syncs the parent of each directory it creates).
  virtual result<void> create_dir(const std::string& path) = 0;
  // Names of the regular files directly inside `dir`, sorted bytewise.
  virtual result<std::vector<std::string>> list_dir(const std::string& dir) = 0;
  virtual result<bool> exists(const std::string& path) = 0;
  // Takes an exclusive lock on `path` (created if missing) that also excludes other
  // processes. AERO_STORAGE_LOCKED when someone else holds it.
  virtual result<std::unique_ptr<file_lock>> lock(const std::string& path) = 0;
};

// "dir/name" without doubling the separator.
inline std::string join(const std::string& dir, const std::string& name) {
  if (dir.empty()) return name;
  if (dir.back() == '/') return dir + name;
  return dir + "/" + name;
}

// Whether `path` names the root or the current directory, which have no parent entry.
inline bool is_root_dir(const std::string& path) {
  return path.empty() || path == "." || path == "/" || path == "./";
}

// The directory holding `path`: "." for a bare name, "/" for a name at the root.
inline std::string parent_dir(std::string path) {
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  const auto pos = path.rfind('/');
  if (pos == std::string::npos) return ".";
  if (pos == 0) return "/";
  return path.substr(0, pos);
}

// Reads a whole file into memory.
inline result<std::vector<std::byte>> read_all(file& f) {
  AERO_TRY_ASSIGN(std::uint64_t n, f.size());
  std::vector<std::byte> out(static_cast<std::size_t>(n));
  std::size_t done = 0;
  while (done < out.size()) {
    AERO_TRY_ASSIGN(std::size_t got, f.read_at(done, std::span(out).subspan(done)));
    if (got == 0) break;
    done += got;
  }
  out.resize(done);
  return out;
}

}  // namespace aerodb::io
