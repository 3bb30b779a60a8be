// Immutable document versions and the per-key chains that order them by CommitId.
//
// Invariants:
//   - A version never changes after it is linked into a chain.
//   - A chain is ordered newest first, strictly decreasing CommitIds.
//   - A version may be linked before its commit is durable; it is invisible until the
//     engine publishes its CommitId, because every read view's bound is at or below the
//     last published CommitId (SPEC_DIGEST §5).
//
// A version's bytes are reached through version::bytes(), whatever holds them, so that they
// can later be backed by something else (a mapped file) without touching the formats or
// the engine. Today two places hold them, chosen by the MemoryLayoutPolicy
// (policies/concepts.hpp):
//   - a shared buffer the version owns (`payload`: the baseline layout, three allocations
//     per version: the node, the buffer's control block with its vector, the bytes);
//   - the same allocation as the version, right after it (the compact layout: one block
//     from the version store's arena, mvcc/slab_arena.hpp; `inline_bytes` below).
//
// Thread safety: chains are linked and unlinked only under the store's exclusive lock
// and traversed under its shared lock.
#pragma once

#include <aerodb/commit_id.hpp>
#include <aerodb/format/wal_format.hpp>

#include <boost/intrusive/slist.hpp>

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace aerodb::mvcc {


class payload {
 public:
  using buffer = std::vector<std::byte>;
  payload() = default;
  explicit payload(std::shared_ptr<const buffer> b) : buf_(std::move(b)) {}

  std::span<const std::byte> bytes() const noexcept {
    return buf_ ? std::span<const std::byte>(*buf_) : std::span<const std::byte>();
  }
  // The shared buffer itself: a zero-copy reader keeps it alive instead of copying.
  const std::shared_ptr<const buffer>& shared() const noexcept { return buf_; }
  std::size_t size() const noexcept { return buf_ ? buf_->size() : 0; }

 private:
  std::shared_ptr<const buffer> buf_;
};

// The size of a document stored inline, right after its version (compact layout).
struct inline_bytes {
  std::uint32_t size = 0;
};

struct version : boost::intrusive::slist_base_hook<> {
  // A document whose bytes `p` holds.
  version(commit_id c, std::uint32_t schema_ver, payload p)
      : commit(c), schema_version(schema_ver), owner(std::move(p)) {}
  // A document whose `n.size` bytes follow this object in the same block of memory.
  // REQUIRES: the block holds sizeof(version) + n.size bytes, the caller copies the bytes
  // in before the version is linked, and frees the block only with the version.
  version(commit_id c, std::uint32_t schema_ver, inline_bytes n)
      : commit(c), schema_version(schema_ver), inline_size_(n.size) {}
  // A tombstone: the key was deleted by commit `c`.
  explicit version(commit_id c) : commit(c) {}

  bool tombstone() const noexcept { return schema_version == 0; }

  // The encoded document (empty for a tombstone).
  std::span<const std::byte> bytes() const noexcept {
    if (inline_size_ != not_inline) return {reinterpret_cast<const std::byte*>(this + 1), inline_size_};
    return owner.bytes();
  }
  std::size_t size() const noexcept { return inline_size_ != not_inline ? inline_size_ : owner.size(); }
  // Whether the bytes follow the version in its own block (the compact layout).
  bool bytes_inline() const noexcept { return inline_size_ != not_inline; }

  const commit_id commit;
  const std::uint32_t schema_version = 0;  // 0 marks a tombstone; schemas start at 1

 private:
  static constexpr std::uint32_t not_inline = 0xffffffffu;
  // Fits the padding after schema_version, so the baseline node keeps its 40 bytes.
  const std::uint32_t inline_size_ = not_inline;

 public:
  // The shared buffer of the baseline layout; empty for inline bytes and tombstones. A
  // zero-copy reader of the baseline keeps it alive instead of copying.
  const payload owner;
};

static_assert(sizeof(version) == 40, "the baseline node is 40 bytes: hook, CommitId, schema, size, buffer");

using version_chain =
    boost::intrusive::slist<version, boost::intrusive::constant_time_size<false>>;

// One document key and its versions.
struct key_entry {
  explicit key_entry(std::string key) : doc_id(std::move(key)) {}
  key_entry(const key_entry&) = delete;
  key_entry& operator=(const key_entry&) = delete;
  // Versions made by `new` (tests build chains by hand) go with the key. The version
  // store frees its own through its memory layout and empties every chain before its
  // keys go (engine/version_store.hpp).
  ~key_entry() { chain.clear_and_dispose([](version* v) { delete v; }); }

  // The newest version, committed or not (the commit pipeline checks writes against it).
  const version* newest() const noexcept { return chain.empty() ? nullptr : &chain.front(); }

  // REQUIRES: v->commit is greater than every CommitId already in the chain.
  void push(std::unique_ptr<version> v) { chain.push_front(*v.release()); }
  // The same, for a version whose memory `dispose` below will free.
  void push(version& v) noexcept { chain.push_front(v); }

  // Unlinks every version after the first `keep` ones (newest first) and hands each to
  // dispose(version*), which frees it. Used by GC and by nothing else.
  template <class Dispose>
  std::size_t drop_older_than_position(std::size_t keep, Dispose&& dispose) {
    auto it = chain.before_begin();
    for (std::size_t i = 0; i < keep && std::next(it) != chain.end(); ++i) ++it;
    std::size_t n = 0;
    while (std::next(it) != chain.end()) {
      chain.erase_after_and_dispose(it, dispose);
      ++n;
    }
    return n;
  }

  const std::string doc_id;
  version_chain chain;
};

}  // namespace aerodb::mvcc
