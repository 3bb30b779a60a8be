// Garbage collection and the registry of open read views (SPEC_DIGEST §5).
//
// view_registry owns the set of open read views' bounds and the floor a GC in flight has
// reserved. A view is opened (its bound read and registered) under the registry's lock,
// the same lock a GC takes to compute its floor, so a view is either seen by that GC or
// bounded above its floor.
//
// collector<IndexPolicy, MemoryLayout> runs one GC at a time: it picks the floor (the oldest open view,
// or the published CommitId), reserves it, and, once the GC record is durable (step W8,
// docs/architecture.md) or replayed, frees for every key the versions older than the one a
// view at the floor sees. When that one is a tombstone it goes too: to every view at or
// above the floor it says "not found", which is what a key with no version there says. A
// key left with no version at all (deleted at or below the floor, nothing written since)
// leaves its collection's primary map, so deleted keys do not hold memory forever. The
// newest version of a key that still has a document always stays.
//
// Deterministic: the GC record replayed at the same point of the log frees exactly the
// same versions and keys. What goes depends only on versions at or below the floor, all
// committed before the record; a version linked above it (a later commit of the same
// group) keeps its key alive, where replay forgets the key and that commit makes it anew:
// the same chains either way. Runs only when called: never on a timer.
//
// Thread safety: every member may be called from any thread. Lock order: the registry's
// lock, then the version store's state lock (taken by anything_to_collect). Nothing takes
// the registry's lock while holding the state lock.
//
// Lifetimes: a read view must not outlive the database that made it. The registry is the
// one place that knows which views are still open when the database goes, so with
// AERODB_CHECK_LIFETIMES (detail/check_lifetimes.hpp) its destructor checks the rule.
#pragma once

#include <aerodb/detail/check_lifetimes.hpp>
#include <aerodb/engine/indexer.hpp>
#include <aerodb/engine/version_store.hpp>
#include <aerodb/error.hpp>
#include <aerodb/outcomes.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <iterator>
#include <mutex>
#include <optional>
#include <set>

namespace aerodb::engine {

namespace detail {

// Kept out of the destructor (never inlined, cold), so the check costs the destructor one
// comparison. Writes piece by piece to stderr, which is unbuffered, instead of building a
// string: the program may be in any state.
[[noreturn, gnu::cold, gnu::noinline]] inline void abort_on_open_views(const std::multiset<commit_id>& open) {
  const std::size_t n = open.size();
  const bool one = n == 1;
  std::fprintf(stderr,
               "aerodb: a database was destroyed while %zu read view%s it made %s still open "
               "(bound%s: CommitId%s ",
               n, one ? "" : "s", one ? "was" : "were", one ? "" : "s", one ? "" : "s");
  constexpr std::size_t shown = 16;
  std::size_t i = 0;
  for (const commit_id bound : open) {
    if (i == shown) {
      std::fprintf(stderr, ", and %zu more", n - shown);
      break;
    }
    std::fprintf(stderr, "%s%llu", i == 0 ? "" : ", ", static_cast<unsigned long long>(bound));
    ++i;
  }
  std::fprintf(stderr,
               "). A read view, and any cursor over it, must not outlive the database that made it: "
               "destroy them first. Aborting (AERODB_CHECK_LIFETIMES, include/aerodb/engine/gc.hpp).\n");
  std::abort();
}

}  // namespace detail

class view_registry {
 public:
  view_registry() = default;
  view_registry(const view_registry&) = delete;
  view_registry& operator=(const view_registry&) = delete;
#if AERODB_CHECK_LIFETIMES
  // A view that outlives its database closes itself later on this freed registry: silent
  // undefined behaviour (in practice an endless loop in the freed multiset, or corrupted
  // memory), far from its cause. Here, the moment the cause happens, the open views are
  // still listed, so the count is free. No lock: while the database is being destroyed
  // nothing may call it, and a view opened concurrently would break the rule anyway.
  ~view_registry() {
    if (!active_.empty()) detail::abort_on_open_views(active_);
  }
#endif

  // Registers a view at the newest published CommitId and returns its bound.
  template <class Store>
  commit_id open_latest(const Store& store) {
    std::lock_guard lock(mu_);
    const commit_id bound = store.published();
    active_.insert(bound);
    return bound;
  }

  // Registers a view at `bound`: refused beyond the newest commit, and below what GC has
  // freed or reserved.
  template <class Store>
  result<commit_id> open_at(const Store& store, commit_id bound) {
    std::lock_guard lock(mu_);
    const commit_id newest = store.published();
    if (bound > newest)
      return error(errc::config_invalid, "a read view cannot be bounded beyond the newest commit",
                   {{"bound", std::to_string(bound)}, {"newest", std::to_string(newest)}});
    const commit_id floor = store.history_floor();
    if (bound < std::max(floor, reserved_floor_))
      return error(errc::read_view_too_old, "versions below this boundary have been garbage collected",
                   {{"bound", std::to_string(bound)}, {"oldest", std::to_string(floor)}});
    active_.insert(bound);
    return bound;
  }

  // How many views are open.
  std::size_t open_count() const {
    std::lock_guard lock(mu_);
    return active_.size();
  }

  void close(commit_id bound) {
    std::lock_guard lock(mu_);
    active_.erase(active_.find(bound));
  }

  // The floor a GC may collect up to: the oldest open view's bound, or the published
  // CommitId. `reserved` when there is something to collect below it: then no view below
  // it opens from now on, even before the GC record is durable (if it never is, those
  // boundaries stay refused: the safe side).
  struct floor_choice {
    commit_id floor = 0;
    bool reserved = false;
  };
  template <class Store, class AnythingToCollect>
  floor_choice reserve_floor(const Store& store, AnythingToCollect&& anything_to_collect) {
    std::lock_guard lock(mu_);
    commit_id floor = store.published();
    if (!active_.empty()) floor = std::min(floor, *active_.begin());
    if (floor <= store.history_floor() || !anything_to_collect(floor)) return {floor, false};
    reserved_floor_ = std::max(reserved_floor_, floor);
    return {floor, true};
  }

  // A replica applying its primary's GC record at `wanted`: the floor its own open views
  // allow (the oldest one's bound, if lower), reserved as reserve_floor does, so the GC
  // changes no open view's answers (docs/replication.md §5).
  commit_id clamp_floor(commit_id wanted) {
    std::lock_guard lock(mu_);
    const commit_id floor = active_.empty() ? wanted : std::min(wanted, *active_.begin());
    reserved_floor_ = std::max(reserved_floor_, floor);
    return floor;
  }

 private:
  mutable std::mutex mu_;
  std::multiset<commit_id> active_;  // guarded by mu_
  commit_id reserved_floor_ = 0;     // guarded by mu_
};

template <class IndexPolicy, class MemoryLayout = policies::baseline_memory_layout>
class collector {
 public:
  using store_type = version_store<IndexPolicy, MemoryLayout>;

  // Held for the whole of one gc(): one at a time.
  std::unique_lock<std::mutex> serialize() { return std::unique_lock(mu_); }

  // True when some key holds a version that collect(floor) would free.
  // Takes the state lock shared.
  static bool anything_to_collect(const store_type& store, commit_id floor) {
    auto lock = store.lock_shared();
    for (const auto& [name, c] : store.catalog().collections())
      for (const auto& [id, key] : c->keys)
        if (first_to_free(*key, floor) != key->chain.end()) return true;
    return false;
  }

  // Frees every version that no read view at or above `floor` can see or needs to, with
  // its index entries, forgets the keys left with no version, and raises the history floor
  // to `floor`.
  // REQUIRES: the state lock held exclusively (or recovery).
  static gc_outcome collect(store_type& store, commit_id floor) {
    gc_outcome out;
    for (auto& [name, c] : store.catalog().collections()) {
      for (auto at = c->keys.begin(); at != c->keys.end();) {
        mvcc::key_entry& key = *at->second;
        const auto first = first_to_free(key, floor);
        if (first == key.chain.end()) {
          ++at;
          continue;
        }
        for (auto old = first; old != key.chain.end(); ++old) {
          indexer<IndexPolicy>::unindex(*c, key, *old);
          ++out.versions_freed;
          out.bytes_freed += old->size();
        }
        store.drop_older(key, static_cast<std::size_t>(std::distance(key.chain.begin(), first)));
        if (key.chain.empty()) {
          at = store.forget_key(*c, at);
          ++out.keys_reclaimed;
        } else {
          ++at;
        }
      }
    }
    store.release_bytes(out.bytes_freed);
    store.raise_history_floor(floor);
    return out;
  }

 private:
  // The newest version of `key` that collect(floor) frees, with every older one; the
  // chain's end when it frees none. Past the version a view at the floor sees; from it,
  // when that version is a tombstone. (Key: mvcc::key_entry, const or not.)
  template <class Key>
  static auto first_to_free(Key& key, commit_id floor) {
    auto it = key.chain.begin();
    while (it != key.chain.end() && it->commit > floor) ++it;
    if (it == key.chain.end() || it->tombstone()) return it;
    return std::next(it);
  }

  std::mutex mu_;
};

}  // namespace aerodb::engine
