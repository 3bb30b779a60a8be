// Immutable document versions and the per-key chains that order them by CommitId.
//
// Invariants:
//   - A version never changes after it is linked into a chain.
//   - A chain is ordered newest first, strictly decreasing CommitIds.
//   - A version may be linked before its commit is durable; it is invisible until the
//     engine publishes its CommitId, because every read view's bound is at or below the
//     last published CommitId (SPEC_DIGEST §5).
//
// A version's bytes live behind one type, `payload`, so that they can later be backed by
// something else (a mapped file) without touching the formats or the engine.
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

struct version : boost::intrusive::slist_base_hook<> {
  version(commit_id c, std::uint32_t schema_ver, payload p)
      : commit(c), schema_version(schema_ver), data(std::move(p)) {}
  // A tombstone: the key was deleted by commit `c`.
  explicit version(commit_id c) : commit(c) {}

  bool tombstone() const noexcept { return schema_version == 0; }

  const commit_id commit;
  const std::uint32_t schema_version = 0;  // 0 marks a tombstone; schemas start at 1
  const payload data;
};

using version_chain =
    boost::intrusive::slist<version, boost::intrusive::constant_time_size<false>>;

// One document key and its versions.
struct key_entry {
  explicit key_entry(std::string key) : doc_id(std::move(key)) {}
  key_entry(const key_entry&) = delete;
  key_entry& operator=(const key_entry&) = delete;
  ~key_entry() { chain.clear_and_dispose([](version* v) { delete v; }); }

  // The newest version, committed or not (the commit pipeline checks writes against it).
  const version* newest() const noexcept { return chain.empty() ? nullptr : &chain.front(); }

  // REQUIRES: v->commit is greater than every CommitId already in the chain.
  void push(std::unique_ptr<version> v) { chain.push_front(*v.release()); }

  // Frees every version after the first `keep` ones (newest first). Used by GC and by
  // nothing else.
  std::size_t drop_older_than_position(std::size_t keep) {
    auto it = chain.before_begin();
    for (std::size_t i = 0; i < keep && std::next(it) != chain.end(); ++i) ++it;
    std::size_t n = 0;
    while (std::next(it) != chain.end()) {
      chain.erase_after_and_dispose(it, [](version* v) { delete v; });
      ++n;
    }
    return n;
  }

  const std::string doc_id;
  version_chain chain;
};

}  // namespace aerodb::mvcc
