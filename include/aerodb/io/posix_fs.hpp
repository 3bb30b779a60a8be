// The production file system: the file_system seam implemented with POSIX system calls.
//
// Every call maps to one documented system call (or a short retry loop around one), so
// that what the engine asks for is exactly what the kernel is asked for:
//   append = write loop (always O_APPEND), sync = fdatasync, read_at = pread loop,
//   size = fstat, truncate = ftruncate, rename = rename, remove = unlink,
//   sync_dir = open(O_DIRECTORY) + fsync, lock = flock(LOCK_EX | LOCK_NB),
//   create_dir = mkdir of each missing prefix, each followed by sync_dir of its parent.
// Errors never throw: they come back as AERO_STORAGE_* with the details `op` (the system
// call), `path`, `errno` (the number) and `errno_name` (e.g. "ENOSPC"). ENOENT from
// open(read), remove and rename is AERO_STORAGE_NOT_FOUND because callers routinely
// branch on it; every other failure is AERO_STORAGE_IO_ERROR (or AERO_STORAGE_LOCKED).
//
// Files and directories it creates get the modes it was constructed with, owner-only by
// default (0600 and 0700): a store holds people's documents. The process umask can only
// take permissions away from them, never add any.
//
// Thread safety: posix_file_system holds nothing but those two modes, so one instance may
// serve any number of threads. A posix_file, like any `file`, must not be used by two
// threads at once.
//
// Invariants: a posix_file owns exactly one open descriptor, closed by its destructor;
// a posix_file_lock owns the descriptor carrying the flock, so destroying it unlocks.
#pragma once

#include <aerodb/error.hpp>
#include <aerodb/io/file_system.hpp>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

namespace aerodb::io {

namespace posix_detail {

// glibc exposes either the XSI strerror_r (returns int) or the GNU one (returns char*)
// depending on feature macros; overloading on the return type accepts both.
inline std::string strerror_result(int rc, const char* buf) {
  return rc == 0 ? std::string(buf) : std::string("unknown error");
}
inline std::string strerror_result(const char* text, const char*) { return std::string(text); }

}  // namespace posix_detail

// Human-readable text for an errno value; thread-safe, unlike std::strerror.
inline std::string errno_text(int err) {
  char buf[256] = {};
  return posix_detail::strerror_result(::strerror_r(err, buf, sizeof buf), buf);
}

// The symbolic name of an errno value ("ENOSPC"); strerror text for values not listed.
// A table rather than a switch because some names share a number on some platforms
// (EAGAIN/EWOULDBLOCK, ENOTSUP/EOPNOTSUPP), which would make duplicate case labels.
inline std::string errno_name(int err) {
  struct entry {
    int value;
    const char* name;
  };
  static constexpr entry names[] = {
      {EPERM, "EPERM"},
      {ENOENT, "ENOENT"},
      {EINTR, "EINTR"},
      {EIO, "EIO"},
      {ENXIO, "ENXIO"},
      {E2BIG, "E2BIG"},
      {EBADF, "EBADF"},
      {EAGAIN, "EAGAIN"},
      {EWOULDBLOCK, "EWOULDBLOCK"},
      {ENOMEM, "ENOMEM"},
      {EACCES, "EACCES"},
      {EFAULT, "EFAULT"},
      {EBUSY, "EBUSY"},
      {EEXIST, "EEXIST"},
      {EXDEV, "EXDEV"},
      {ENODEV, "ENODEV"},
      {ENOTDIR, "ENOTDIR"},
      {EISDIR, "EISDIR"},
      {EINVAL, "EINVAL"},
      {ENFILE, "ENFILE"},
      {EMFILE, "EMFILE"},
      {ETXTBSY, "ETXTBSY"},
      {EFBIG, "EFBIG"},
      {ENOSPC, "ENOSPC"},
      {ESPIPE, "ESPIPE"},
      {EROFS, "EROFS"},
      {EMLINK, "EMLINK"},
      {EPIPE, "EPIPE"},
      {ERANGE, "ERANGE"},
      {EDEADLK, "EDEADLK"},
      {ENAMETOOLONG, "ENAMETOOLONG"},
      {ENOLCK, "ENOLCK"},
      {ENOSYS, "ENOSYS"},
      {ENOTEMPTY, "ENOTEMPTY"},
      {ELOOP, "ELOOP"},
      {EOVERFLOW, "EOVERFLOW"},
      {ENOTSUP, "ENOTSUP"},
      {EDQUOT, "EDQUOT"},
      {ESTALE, "ESTALE"},
      {ECANCELED, "ECANCELED"},
  };
  for (const auto& e : names)
    if (e.value == err) return e.name;
  return errno_text(err);
}

namespace posix_detail {

// An AERO_STORAGE_* error describing a failed system call. `what` is the start of the
// sentence ("Could not open \"x\" for reading"); the errno text completes it.
inline error posix_error(errc code, int err, std::string_view op, const std::string& path,
                         std::string what) {
  std::string name = errno_name(err);
  std::string text = errno_text(err);
  what += ": ";
  what += text;
  if (name != text) {
    what += " (";
    what += name;
    what += ")";
  }
  what += ".";
  return error(code, std::move(what),
               {{"op", std::string(op)},
                {"path", path},
                {"errno", std::to_string(err)},
                {"errno_name", std::move(name)}});
}

inline error posix_io_error(int err, std::string_view op, const std::string& path,
                            std::string what) {
  return posix_error(errc::storage_io_error, err, op, path, std::move(what));
}

inline std::string quoted(const std::string& path) { return "\"" + path + "\""; }

}  // namespace posix_detail

// A descriptor-backed file. Opened in append, create_or_truncate or write mode it is write-only, so
// read_at fails with EBADF; open the file again in read mode to read it.
class posix_file final : public file {
 public:
  posix_file(int fd, std::string path, open_mode mode) : fd_(fd), path_(std::move(path)), mode_(mode) {}
  posix_file(const posix_file&) = delete;
  posix_file& operator=(const posix_file&) = delete;
  ~posix_file() override {
    // close() errors carry no durability information once fdatasync has been called,
    // and a destructor has no one to report them to.
    if (fd_ >= 0) ::close(fd_);
  }

  result<void> append(std::span<const std::byte> data) override {
    if (mode_ == open_mode::write)
      return posix_detail::posix_io_error(EBADF, "write", path_,
                                          "Could not append to " + posix_detail::quoted(path_) +
                                              ": it was opened for positional writes (write_at)");
    const std::byte* p = data.data();
    std::size_t left = data.size();
    while (left > 0) {
      // Linux transfers at most 0x7ffff000 bytes per write; larger spans take more calls.
      const ::ssize_t n = ::write(fd_, p, left);
      if (n < 0) {
        if (errno == EINTR) continue;
        return posix_detail::posix_io_error(errno, "write", path_,
                                            "Could not append " + std::to_string(data.size()) +
                                                " bytes to " + posix_detail::quoted(path_));
      }
      if (n == 0) {
        // A zero-byte write of a non-empty buffer would make this loop spin forever.
        return posix_detail::posix_io_error(EIO, "write", path_,
                                            "Could not append to " + posix_detail::quoted(path_) +
                                                " because the kernel accepted no bytes");
      }
      p += n;
      left -= static_cast<std::size_t>(n);
    }
    return ok();
  }

  result<void> write_at(std::uint64_t offset, std::span<const std::byte> data) override {
    if (mode_ != open_mode::write)
      return posix_detail::posix_io_error(EBADF, "pwrite", path_,
                                          "Could not write to " + posix_detail::quoted(path_) +
                                              " at an offset: it was opened for appending");
    std::size_t done = 0;
    while (done < data.size()) {
      const std::uint64_t at = offset + done;
      if (at > static_cast<std::uint64_t>(std::numeric_limits<::off_t>::max()) - data.size())
        return posix_detail::posix_io_error(EFBIG, "pwrite", path_,
                                            "Could not write " + posix_detail::quoted(path_) +
                                                " at offset " + std::to_string(at));
      const ::ssize_t n = ::pwrite(fd_, data.data() + done, data.size() - done, static_cast<::off_t>(at));
      if (n < 0) {
        if (errno == EINTR) continue;
        return posix_detail::posix_io_error(errno, "pwrite", path_,
                                            "Could not write " + std::to_string(data.size()) +
                                                " bytes at offset " + std::to_string(offset) +
                                                " of " + posix_detail::quoted(path_));
      }
      if (n == 0)
        return posix_detail::posix_io_error(EIO, "pwrite", path_,
                                            "Could not write to " + posix_detail::quoted(path_) +
                                                " because the kernel accepted no bytes");
      done += static_cast<std::size_t>(n);
    }
    return ok();
  }

  result<void> sync() override {
    while (::fdatasync(fd_) != 0) {
      if (errno == EINTR) continue;
      return posix_detail::posix_io_error(
          errno, "fdatasync", path_,
          "Could not make the data of " + posix_detail::quoted(path_) +
              " durable; bytes written since the last successful sync "
              "may be lost");
    }
    return ok();
  }

  result<std::size_t> read_at(std::uint64_t offset, std::span<std::byte> out) override {
    std::size_t done = 0;
    while (done < out.size()) {
      const std::uint64_t at = offset + done;
      if (at > static_cast<std::uint64_t>(std::numeric_limits<::off_t>::max()))
        return posix_detail::posix_io_error(
            EOVERFLOW, "pread", path_,
            "Could not read " + posix_detail::quoted(path_) + " at offset " + std::to_string(at));
      const ::ssize_t n =
          ::pread(fd_, out.data() + done, out.size() - done, static_cast<::off_t>(at));
      if (n < 0) {
        if (errno == EINTR) continue;
        return posix_detail::posix_io_error(errno, "pread", path_,
                                            "Could not read " + std::to_string(out.size()) +
                                                " bytes at offset " + std::to_string(offset) +
                                                " of " + posix_detail::quoted(path_));
      }
      if (n == 0) break;  // end of file
      done += static_cast<std::size_t>(n);
    }
    return done;
  }

  result<std::uint64_t> size() override {
    struct ::stat st {};
    if (::fstat(fd_, &st) != 0)
      return posix_detail::posix_io_error(
          errno, "fstat", path_, "Could not get the size of " + posix_detail::quoted(path_));
    return static_cast<std::uint64_t>(st.st_size);
  }

  result<void> truncate(std::uint64_t length) override {
    if (length > static_cast<std::uint64_t>(std::numeric_limits<::off_t>::max()))
      return posix_detail::posix_io_error(EFBIG, "ftruncate", path_,
                                          "Could not set the length of " +
                                              posix_detail::quoted(path_) + " to " +
                                              std::to_string(length) + " bytes");
    while (::ftruncate(fd_, static_cast<::off_t>(length)) != 0) {
      if (errno == EINTR) continue;
      return posix_detail::posix_io_error(errno, "ftruncate", path_,
                                          "Could not set the length of " +
                                              posix_detail::quoted(path_) + " to " +
                                              std::to_string(length) + " bytes");
    }
    return ok();
  }

  const std::string& path() const noexcept { return path_; }

 private:
  int fd_;
  std::string path_;
  open_mode mode_;
};

// Holds the descriptor that carries the flock; closing it is what releases the lock.
class posix_file_lock final : public file_lock {
 public:
  posix_file_lock(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  posix_file_lock(const posix_file_lock&) = delete;
  posix_file_lock& operator=(const posix_file_lock&) = delete;
  ~posix_file_lock() override {
    if (fd_ >= 0) ::close(fd_);
  }
  const std::string& path() const noexcept { return path_; }

 private:
  int fd_;
  std::string path_;
};

class posix_file_system final : public file_system {
 public:
  static constexpr unsigned default_file_mode = 0600;
  static constexpr unsigned default_dir_mode = 0700;

  // `file_mode` and `dir_mode`: the permission bits (at most 0777) of the files and
  // directories this instance creates.
  explicit posix_file_system(unsigned file_mode = default_file_mode, unsigned dir_mode = default_dir_mode)
      : file_mode_(static_cast<::mode_t>(file_mode & 0777u)), dir_mode_(static_cast<::mode_t>(dir_mode & 0777u)) {}

  result<std::unique_ptr<file>> open(const std::string& path, open_mode mode) override {
    int flags = O_CLOEXEC;
    const char* purpose = "";
    switch (mode) {
      case open_mode::read:
        flags |= O_RDONLY;
        purpose = "reading";
        break;
      case open_mode::append:
        flags |= O_WRONLY | O_CREAT | O_APPEND;
        purpose = "appending";
        break;
      case open_mode::create_or_truncate:
        // O_APPEND here too: without it a write after truncate() lands at the old file
        // offset, leaving a hole, instead of at the end as file::append promises.
        flags |= O_WRONLY | O_CREAT | O_TRUNC | O_APPEND;
        purpose = "writing";
        break;
      case open_mode::write:
        // No O_APPEND: with it, Linux ignores pwrite's offset and appends.
        flags |= O_WRONLY | O_CREAT;
        purpose = "writing in place";
        break;
    }
    int fd = -1;
    do {
      fd = ::open(path.c_str(), flags, file_mode_);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) {
      const int err = errno;
      const errc code = (err == ENOENT && mode == open_mode::read) ? errc::storage_not_found
                                                                   : errc::storage_io_error;
      return posix_detail::posix_error(
          code, err, "open", path,
          std::string("Could not open ") + posix_detail::quoted(path) + " for " + purpose);
    }
    return std::unique_ptr<file>(std::make_unique<posix_file>(fd, path, mode));
  }

  result<void> rename(const std::string& from, const std::string& to) override {
    if (::rename(from.c_str(), to.c_str()) != 0) {
      const int err = errno;
      const errc code = err == ENOENT ? errc::storage_not_found : errc::storage_io_error;
      return posix_detail::posix_error(code, err, "rename", from,
                                       "Could not rename " + posix_detail::quoted(from) + " to " +
                                           posix_detail::quoted(to))
          .with("to", to);
    }
    return ok();
  }

  result<void> remove(const std::string& path) override {
    if (::unlink(path.c_str()) != 0) {
      const int err = errno;
      const errc code = err == ENOENT ? errc::storage_not_found : errc::storage_io_error;
      return posix_detail::posix_error(code, err, "unlink", path,
                                       "Could not remove " + posix_detail::quoted(path));
    }
    return ok();
  }

  result<void> sync_dir(const std::string& dir) override {
    int fd = -1;
    do {
      fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0)
      return posix_detail::posix_io_error(
          errno, "open", dir,
          "Could not open directory " + posix_detail::quoted(dir) + " to make its entries durable");
    int rc = 0;
    do {
      rc = ::fsync(fd);
    } while (rc != 0 && errno == EINTR);
    const int err = errno;
    ::close(fd);
    if (rc != 0)
      return posix_detail::posix_io_error(
          err, "fsync", dir,
          "Could not make the entries of directory " + posix_detail::quoted(dir) +
              " durable; recent creations, renames and removals in it "
              "may be lost");
    return ok();
  }

  result<void> create_dir(const std::string& path) override {
    if (path.empty())
      return posix_detail::posix_io_error(ENOENT, "mkdir", path,
                                          "Could not create a directory with an empty path");
    // Create each prefix in turn so that missing parents come first, as `mkdir -p` does.
    std::vector<std::string> parts;
    for (std::size_t i = 0; i < path.size();) {
      const std::size_t j = std::min(path.find('/', i), path.size());
      if (j > i) parts.push_back(path.substr(i, j - i));
      i = j + 1;
    }
    std::string prefix = path.front() == '/' ? "/" : "";
    for (std::size_t i = 0; i < parts.size(); ++i) {
      if (!prefix.empty() && prefix.back() != '/') prefix += '/';
      prefix += parts[i];
      const bool last = i + 1 == parts.size();
      if (::mkdir(prefix.c_str(), dir_mode_) == 0) {
        // A new directory is an entry of its parent, durable only once the parent is
        // synced: without this a power loss can take the directory, and every file made
        // durable inside it, away.
        AERO_TRY(sync_dir(parent_dir(prefix)));
        continue;
      }
      const int err = errno;
      if (err != EEXIST)
        return posix_detail::posix_io_error(
            err, "mkdir", prefix, "Could not create directory " + posix_detail::quoted(prefix));
      struct ::stat st {};
      if (::stat(prefix.c_str(), &st) != 0)
        return posix_detail::posix_io_error(errno, "stat", prefix,
                                            "Could not inspect " + posix_detail::quoted(prefix));
      if (!S_ISDIR(st.st_mode))
        return posix_detail::posix_io_error(
            last ? EEXIST : ENOTDIR, "mkdir", prefix,
            "Could not create directory " + posix_detail::quoted(path) + " because " +
                posix_detail::quoted(prefix) + " exists and is not a directory");
    }
    return ok();
  }

  result<std::vector<std::string>> list_dir(const std::string& dir) override {
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr)
      return posix_detail::posix_io_error(errno, "opendir", dir,
                                          "Could not list directory " + posix_detail::quoted(dir));
    std::vector<std::string> names;
    for (;;) {
      errno = 0;
      const ::dirent* e = ::readdir(d);
      if (e == nullptr) {
        const int err = errno;
        if (err != 0) {
          ::closedir(d);
          return posix_detail::posix_io_error(
              err, "readdir", dir, "Could not list directory " + posix_detail::quoted(dir));
        }
        break;
      }
      const std::string_view name(e->d_name);
      if (name == "." || name == "..") continue;
      bool regular = e->d_type == DT_REG;
      if (e->d_type == DT_UNKNOWN || e->d_type == DT_LNK) {
        // Some file systems do not fill d_type; a symlink counts by what it points to.
        struct ::stat st {};
        regular = ::fstatat(::dirfd(d), e->d_name, &st, 0) == 0 && S_ISREG(st.st_mode);
      }
      if (regular) names.emplace_back(name);
    }
    ::closedir(d);
    std::sort(names.begin(), names.end());  // std::string compares bytes as unsigned char
    return names;
  }

  result<bool> exists(const std::string& path) override {
    struct ::stat st {};
    if (::stat(path.c_str(), &st) == 0) return true;
    const int err = errno;
    if (err == ENOENT || err == ENOTDIR) return false;
    return posix_detail::posix_io_error(
        err, "stat", path, "Could not check whether " + posix_detail::quoted(path) + " exists");
  }

  result<std::unique_ptr<file_lock>> lock(const std::string& path) override {
    int fd = -1;
    do {
      fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, file_mode_);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0)
      return posix_detail::posix_io_error(errno, "open", path,
                                          "Could not open lock file " + posix_detail::quoted(path));
    // flock, not fcntl: fcntl locks belong to the process, so a second lock taken by the
    // same process would silently succeed (and closing any descriptor of the file would
    // drop the first). flock locks belong to the open file description, so a second
    // open+flock conflicts both across processes and within this one.
    int rc = 0;
    do {
      rc = ::flock(fd, LOCK_EX | LOCK_NB);
    } while (rc != 0 && errno == EINTR);
    if (rc != 0) {
      const int err = errno;
      ::close(fd);
      if (err == EWOULDBLOCK)
        return posix_detail::posix_error(errc::storage_locked, err, "flock", path,
                                         "The directory guarded by lock file " +
                                             posix_detail::quoted(path) +
                                             " is in use by another instance (in this or another "
                                             "process); close that instance first");
      return posix_detail::posix_io_error(err, "flock", path,
                                          "Could not lock " + posix_detail::quoted(path));
    }
    return std::unique_ptr<file_lock>(std::make_unique<posix_file_lock>(fd, path));
  }

 private:
  ::mode_t file_mode_;
  ::mode_t dir_mode_;
};

// A shared instance with the default (owner-only) modes; it holds no other state, so
// sharing it is free.
inline std::shared_ptr<file_system> posix_file_system_instance() {
  static const std::shared_ptr<file_system> instance = std::make_shared<posix_file_system>();
  return instance;
}

}  // namespace aerodb::io
