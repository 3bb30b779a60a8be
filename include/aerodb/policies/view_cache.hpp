// VisibilityCachePolicy `view_cache`: the read-path optimizations of
// docs/optimizations/read_path.md.
//
//   - Per read view, a cache of the visibility decision per document (key entry -> the
//     version the view sees, or none). It lives in the view's state and dies with it; no
//     two views ever share one, so no decision can leak between boundaries.
//   - A chain walk stops at the first version with CommitId <= bound: chains are newest
//     first with strictly decreasing CommitIds (mvcc/version.hpp), so every later version
//     is older and superseded by the one found.
//   - zero_copy: a read hands out the version's own immutable buffer (shared ownership,
//     so the bytes stay valid even after GC frees the version) instead of a copy.
//
// Why a cached decision stays true for the view's whole life: a version linked after the
// view opened has a CommitId above every published one, hence above the view's bound, so
// it can never be the answer; and GC keeps, for every key, the newest version at or below
// the oldest open view's bound when it is a document, so a document a live view sees is
// never freed.
//
// Tombstones are the exception, and are cached as "nothing visible" (nullptr), which means
// the same to every reader (not found). GC frees a tombstone at or below the floor, and a
// key with nothing else leaves the map and its key_entry is freed (engine/gc.hpp), while a
// view that saw the tombstone is still open. A stored tombstone pointer would then dangle,
// and the freed key_entry's address may come back as a new key, created by a commit above
// every open view's bound: for that key, nullptr is again this view's right answer, so a
// stale decision can only ever say what is true.
//
// The cache holds at most MaxEntries decisions: past that, decisions are computed and
// not stored. The limit is a constant, not a heuristic, and only affects speed.
//
// Thread safety: a view_state belongs to one read view, used by one thread at a time.
#pragma once

#include <aerodb/commit_id.hpp>
#include <aerodb/metrics.hpp>
#include <aerodb/mvcc/version.hpp>

#include <boost/unordered/unordered_flat_map.hpp>

#include <cstddef>

namespace aerodb::policies {

template <std::size_t MaxEntries = (std::size_t{1} << 20)>
struct basic_view_cache {
  struct view_state {
    boost::unordered_flat_map<const mvcc::key_entry*, const mvcc::version*> decisions;
  };
  static constexpr bool zero_copy = true;
  static constexpr std::size_t max_entries = MaxEntries;

  static const mvcc::version* find_visible(view_state& state, const mvcc::key_entry& key,
                                           commit_id bound, read_path_counters& counters) {
    if (auto it = state.decisions.find(&key); it != state.decisions.end()) {
      ++counters.cache_hits;
      return it->second;
    }
    ++counters.cache_misses;
    ++counters.version_chain_traversals;
    const mvcc::version* found = nullptr;
    for (const auto& v : key.chain) {
      ++counters.versions_visited;
      if (v.commit <= bound) {
        found = &v;
        break;
      }
    }
    if (state.decisions.size() < MaxEntries)
      state.decisions.emplace(&key, found && found->tombstone() ? nullptr : found);
    return found;
  }
};

using view_cache = basic_view_cache<>;

}  // namespace aerodb::policies
