// The handles that fault_injection_fs (testing/fault_injection_fs.hpp) hands out:
// fault_file, an io::file over one inode of the simulated disk (testing/fault_model.hpp),
// and fault_lock, the io::file_lock that holds one inode's entry in state::locks.
//
// Thread safety: every call takes the disk's mutex, shared with the file system that
// opened the handle, so a handle may be used from any thread; it keeps the state alive,
// so it may outlive that file system.
//
// Invariants: a fault_file is bound to the epoch it was opened in, and after a crash()
// every call on it fails with EBADF (injected=stale_handle) without effect; a fault_lock
// releases only the entry carrying its own token, so one dropped after a crash() cannot
// release a lock taken since.
#pragma once

#include <aerodb/error.hpp>
#include <aerodb/io/file_system.hpp>
#include <aerodb/testing/fault_model.hpp>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>

namespace aerodb::testing::fault_detail {

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
                      "Could not append to " + quote_path(path_) + " through a read-only handle");
    if (mode_ == io::open_mode::write)
      return io_error(EBADF, "write", path_,
                      "Could not append to " + quote_path(path_) +
                          ": it was opened for positional writes (write_at)");
    node_->current.insert(node_->current.end(), data.begin(), data.end());
    st_->last_append = node_;
    return ok();
  }

  result<void> write_at(std::uint64_t offset, std::span<const std::byte> data) override {
    std::lock_guard g(st_->mu);
    if (auto e = stale("pwrite")) return std::move(*e);
    if (auto e = begin_op(*st_, op_kind::write_at, "pwrite", path_, {}, data.size()))
      return std::move(*e);
    if (mode_ != io::open_mode::write)
      return io_error(EBADF, "pwrite", path_,
                      "Could not write to " + quote_path(path_) + " at an offset: it was not opened in write mode");
    const auto at = static_cast<std::size_t>(offset);
    if (node_->current.size() < at + data.size()) node_->current.resize(at + data.size());  // zero-fills a gap
    std::copy(data.begin(), data.end(), node_->current.begin() + static_cast<std::ptrdiff_t>(at));
    st_->last_append = node_;
    return ok();
  }

  result<void> sync() override {
    std::lock_guard g(st_->mu);
    if (auto e = stale("fdatasync")) return std::move(*e);
    if (auto e = begin_op(*st_, op_kind::sync, "fdatasync", path_)) return std::move(*e);
    node_->durable = node_->current;
    node_->rewritten = false;
    return ok();
  }

  result<std::size_t> read_at(std::uint64_t offset, std::span<std::byte> out) override {
    std::lock_guard g(st_->mu);
    if (auto e = stale("pread")) return std::move(*e);
    if (mode_ != io::open_mode::read)
      return io_error(EBADF, "pread", path_,
                      "Could not read " + quote_path(path_) + " through a write-only handle");
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
                      "Could not truncate " + quote_path(path_) + " through a read-only handle");
    node_->current.resize(static_cast<std::size_t>(length));  // zero-extends
    node_->rewritten = true;
    return ok();
  }

 private:
  // REQUIRES: st_->mu held.
  std::optional<error> stale(std::string_view op) const {
    if (epoch_ == st_->epoch) return std::nullopt;
    return make_error(errc::storage_io_error, EBADF, op, path_,
                      "The handle of " + quote_path(path_) +
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

}  // namespace aerodb::testing::fault_detail
