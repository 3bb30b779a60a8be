// The version store: the in-memory state of the engine. It holds the catalog
// (engine/catalog.hpp) and, inside each collection, the version chain of every document
// key (mvcc/version.hpp), and it decides what read views may see.
//
// Owns:
//   - the state lock, a reader/writer lock over the catalog, the chains and the index
//     entries: exclusive only while a commit links its versions (step W5,
//     docs/architecture.md), while derived state follows a durable commit (W8) and during
//     recovery; shared for every read. It is never held across I/O by the write path.
//   - the published CommitId (W9): read views are bounded at or below it, so versions
//     linked but not yet published are invisible;
//   - the history floor: views below it are refused, because GC (or the checkpoint a
//     recovery started from) no longer holds the versions they would need;
//   - the accounting of keys, versions and document bytes held;
//   - the memory of its versions, through the MemoryLayoutPolicy's version_memory
//     (policies/concepts.hpp): every version it links is made there and freed there, and
//     the store empties every chain that way before its catalog (and the keys) go.
//
// Thread safety: every member may be called from any thread; the REQUIRES lines say which
// lock a caller must hold. The published CommitId, the history floor and the accounting
// are atomics, readable without the lock.
//
// Invariants: a chain is newest first with strictly decreasing CommitIds; every key in a
// primary map has at least one version (GC forgets a key when it frees the last one); the
// published CommitId only grows; the history floor only grows.
#pragma once

#include <aerodb/detail/single_writer_counter.hpp>
#include <aerodb/engine/catalog.hpp>
#include <aerodb/error.hpp>
#include <aerodb/format/wal_format.hpp>
#include <aerodb/mvcc/version.hpp>
#include <aerodb/outcomes.hpp>
#include <aerodb/policies/baseline.hpp>

#include <atomic>
#include <condition_variable>
#include <iterator>
#include <memory>
#include <mutex>
#include <span>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

namespace aerodb::engine {

// What one read needs, under the state lock held shared for the reader's life: the
// catalog as a view at some bound sees it. The same type whatever the memory layout, so
// that the query executor and the scanner depend on the index policy alone.
template <class IndexPolicy>
class store_reader {
 public:
  using catalog_type = engine::catalog<IndexPolicy>;
  using collection_state = typename catalog_type::collection_state;

  template <class Store>
  explicit store_reader(const Store& store) : lock_(store.lock_shared()), catalog_(store.catalog()) {}

  const catalog_type& catalog() const noexcept { return catalog_; }

  // The collection as a view at `bound` sees it: created at or below the bound.
  result<const collection_state*> collection_at(std::string_view name, commit_id bound) const {
    const collection_state* c = catalog_.find_collection(name);
    if (!c || c->created_at > bound)
      return error(errc::collection_unknown, "no such collection in this read view",
                   {{"collection", std::string(name)}, {"bound", std::to_string(bound)}});
    return c;
  }

  // The schema version as a view at `bound` sees it, or null.
  const schema* schema_at(std::string_view id, std::uint32_t version, commit_id bound) const {
    const auto* s = catalog_.find_schema(id, version);
    return s && s->registered_at <= bound ? s->def.get() : nullptr;
  }

 private:
  std::shared_lock<std::shared_mutex> lock_;
  const catalog_type& catalog_;
};

template <class IndexPolicy, class MemoryLayout = policies::baseline_memory_layout>
class version_store {
 public:
  using catalog_type = engine::catalog<IndexPolicy>;
  using collection_state = typename catalog_type::collection_state;
  using index_state = typename catalog_type::index_state;
  using reader = store_reader<IndexPolicy>;

  version_store() = default;
  version_store(const version_store&) = delete;
  version_store& operator=(const version_store&) = delete;
  // The versions go back to the layout that made them, before the keys holding them.
  ~version_store() {
    for (auto& [name, c] : catalog_.collections())
      for (auto& [id, key] : c->keys) key->chain.clear_and_dispose(disposer());
  }

  reader read() const { return reader(*this); }
  std::shared_lock<std::shared_mutex> lock_shared() const { return std::shared_lock(mu_); }
  std::unique_lock<std::shared_mutex> lock_exclusive() { return std::unique_lock(mu_); }

  // REQUIRES for the catalog's look-ups and changes: see engine/catalog.hpp.
  catalog_type& catalog() noexcept { return catalog_; }
  const catalog_type& catalog() const noexcept { return catalog_; }

  // Links a new version of `doc_id` made by `commit`: a document, or a tombstone for a
  // remove. Invisible until `commit` is published.
  // REQUIRES: the state lock held exclusively (or recovery, before the store is shared);
  // `commit` above every CommitId in the key's chain.
  // `Doc` is the document's bytes, as the write prepared them (a shared buffer, which the
  // baseline layout keeps without a copy) or as recovery read them (a span); ignored for a
  // remove.
  template <class Doc>
  void link(collection_state& c, const std::string& doc_id, commit_id commit, format::write_kind kind,
            std::uint32_t schema_version, Doc&& doc) {
    auto it = c.keys.find(std::string_view(doc_id));
    if (it == c.keys.end()) {
      // The map's key is made from the entry's own _id, which stays put with the entry:
      // a policy's key type may keep a view of it (policies/concepts.hpp).
      auto entry = std::make_unique<mvcc::key_entry>(doc_id);
      using map_key = typename std::remove_cvref_t<decltype(c.keys)>::key_type;
      it = c.keys.try_emplace(map_key(entry->doc_id), std::move(entry)).first;
      detail::single_writer_add(keys_, 1);
    }
    mvcc::version* v = nullptr;
    if (kind == format::write_kind::remove) {
      v = memory_.make_tombstone(commit);
    } else {
      v = memory_.make(commit, schema_version, std::forward<Doc>(doc));
      detail::single_writer_add(payload_bytes_, v->size());
    }
    it->second->push(*v);
    detail::single_writer_add(versions_, 1);
  }

  // Frees the versions of `key` after its first `keep` (newest first); the caller
  // releases their document bytes. REQUIRES: the state lock held exclusively (or recovery).
  void drop_older(mvcc::key_entry& key, std::size_t keep) {
    detail::single_writer_sub(versions_, key.drop_older_than_position(keep, disposer()));
  }
  void release_bytes(std::uint64_t bytes) { detail::single_writer_sub(payload_bytes_, bytes); }

  // Removes key `at` of `c`, whose chain GC emptied, from the primary map and frees its
  // entry; returns the position after it. A later write of the same _id starts a new chain.
  // REQUIRES: the state lock held exclusively (or recovery); the key's chain empty, so no
  // index entry points at it.
  template <class KeyIterator>
  KeyIterator forget_key(collection_state& c, KeyIterator at) {
    detail::single_writer_sub(keys_, 1);
    // A key walk may still hold this entry: it leaves the map now (the state is the same as
    // without walks), and its memory waits for the last walk to end.
    if (key_walks_.load(std::memory_order_relaxed) != 0) {
      std::lock_guard lock(forgotten_mu_);
      // Again under the walks' mutex: the last walk may have ended since the first look.
      if (key_walks_.load(std::memory_order_relaxed) != 0) forgotten_.push_back(std::move(at->second));
    }
    // Erasing leaves the other positions valid in both maps the built-in policies use;
    // boost::unordered_flat_map's erase returns nothing, so the next one is taken first.
    const KeyIterator next = std::next(at);
    c.keys.erase(at);
    return next;
  }

  // A key walk: pointers to key entries kept across releases of the state lock, as a
  // pipelined checkpoint keeps them (engine/checkpointer.hpp). While one lasts, an entry
  // that GC forgets leaves its primary map as always, but is freed only when the last walk
  // ends, so a walker's pointer never dangles; the walker finds its chain empty (GC forgets
  // only keys whose chain it emptied) and skips it.
  class key_walk {
   public:
    // REQUIRES: the state lock held (shared is enough) while the walk starts, and every
    // pointer the walker keeps taken from the maps after that.
    explicit key_walk(const version_store& store) : store_(&store) {
      store.key_walks_.fetch_add(1, std::memory_order_relaxed);
    }
    key_walk(const key_walk&) = delete;
    key_walk& operator=(const key_walk&) = delete;
    ~key_walk() {
      std::vector<std::unique_ptr<mvcc::key_entry>> freed;
      {
        std::lock_guard lock(store_->forgotten_mu_);
        // Under forgotten_mu_, so that a forget_key that saw this walk has pushed its entry.
        if (store_->key_walks_.fetch_sub(1, std::memory_order_relaxed) == 1) freed.swap(store_->forgotten_);
      }
    }

   private:
    const version_store* store_;
  };

  // The newest CommitId read views may see (W9).
  commit_id published() const noexcept { return published_.load(std::memory_order_acquire); }
  void publish(commit_id c) noexcept {
    // Sequentially consistent, with the waiter's count and re-check below: the store
    // must be ordered before the load of the count (a release store is not, and a waiter
    // that registered meanwhile would miss this publish). On x86 one locked instruction.
    published_.store(c, std::memory_order_seq_cst);
    // One load when nobody waits (every commit pays it): only a replication feed does.
    if (publish_waiters_.load(std::memory_order_seq_cst) != 0) {
      { std::lock_guard lock(publish_mu_); }
      publish_cv_.notify_all();
    }
  }
  // Blocks until the published CommitId passes `c` or `stop()` holds (checked whenever
  // wake_publish_waiters() is called); returns the published CommitId. For the replication
  // feed, which ships records as they are published, with no polling.
  template <class Stop>
  commit_id wait_published_beyond(commit_id c, Stop&& stop) const {
    publish_waiters_.fetch_add(1, std::memory_order_seq_cst);
    {
      std::unique_lock lock(publish_mu_);
      publish_cv_.wait(lock, [&] { return published_.load(std::memory_order_seq_cst) > c || stop(); });
    }
    publish_waiters_.fetch_sub(1, std::memory_order_seq_cst);
    return published();
  }
  void wake_publish_waiters() const {
    { std::lock_guard lock(publish_mu_); }
    publish_cv_.notify_all();
  }

  commit_id history_floor() const noexcept { return history_floor_.load(std::memory_order_acquire); }
  // Recovery and snapshot opens set the floor to the boundary they start from.
  void set_history_floor(commit_id c) noexcept { history_floor_.store(c, std::memory_order_release); }
  void raise_history_floor(commit_id floor) noexcept {
    commit_id prev = history_floor_.load(std::memory_order_relaxed);
    while (prev < floor && !history_floor_.compare_exchange_weak(prev, floor)) {}
  }

  memory_stats memory() const noexcept {
    memory_stats m;
    m.versions = versions_.load(std::memory_order_relaxed);
    m.document_bytes = payload_bytes_.load(std::memory_order_relaxed);
    m.keys = keys_.load(std::memory_order_relaxed);
    m.arena_bytes_in_use = memory_.bytes_in_use();
    m.arena_bytes_reserved = memory_.bytes_reserved();
    return m;
  }

 private:
  auto disposer() noexcept {
    return [this](mvcc::version* v) noexcept { memory_.free(v); };
  }

  mutable std::shared_mutex mu_;
  // Declared before the catalog, so it is destroyed after it (the destructor has already
  // given every version back by then).
  typename MemoryLayout::version_memory memory_;  // guarded by mu_ (make, free)
  catalog_type catalog_;  // guarded by mu_
  // Key walks in progress, and the entries GC forgot meanwhile (see key_walk). The count
  // changes under mu_ held (shared) or forgotten_mu_; forget_key reads it under mu_ held
  // exclusively, so a walk that started before it is seen.
  mutable std::atomic<int> key_walks_{0};
  mutable std::mutex forgotten_mu_;
  mutable std::vector<std::unique_ptr<mvcc::key_entry>> forgotten_;  // guarded by forgotten_mu_
  std::atomic<commit_id> published_{0};
  // Threads blocked in wait_published_beyond.
  mutable std::atomic<int> publish_waiters_{0};
  mutable std::mutex publish_mu_;
  mutable std::condition_variable publish_cv_;
  std::atomic<commit_id> history_floor_{0};
  // The memory counters: changed only under mu_ held exclusively, read from any thread by
  // memory(); so they are single-writer counters (detail/single_writer_counter.hpp).
  std::atomic<std::uint64_t> versions_{0};
  std::atomic<std::uint64_t> payload_bytes_{0};
  std::atomic<std::uint64_t> keys_{0};
};

}  // namespace aerodb::engine
