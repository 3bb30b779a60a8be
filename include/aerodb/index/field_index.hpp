// The baseline secondary index: an ordered set of (key, _id, version) entries.
//
// An index holds one entry for every live version whose indexed field is a scalar — not
// only the newest — so that a read view at any retained boundary can use it. It is only
// ever a source of candidates: the executor checks each candidate's visibility and every
// predicate against the version its read view sees (SPEC_DIGEST §8), so an extra entry
// can change speed, never a result. A missing entry would hide a document: the engine
// indexes every version it links, before that version's CommitId is published.
//
// Entries are ordered by key in the scalar total order, then _id, then CommitId, so a
// walk over a key range meets candidates in result order.
//
// Thread safety: none; the engine mutates it under its exclusive state lock and reads it
// under the shared one.
#pragma once

#include <aerodb/commit_id.hpp>
#include <aerodb/index/scalar.hpp>
#include <aerodb/mvcc/version.hpp>

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>

namespace aerodb::index {


// `doc` points at the key's version chain (a key entry lives as long as it has a version,
// and GC removes a version's entries before the version), so a candidate needs no lookup
// by _id and an entry holds no copy of it.
struct entry {
  scalar key;
  const mvcc::key_entry* doc = nullptr;
  commit_id version = 0;
  std::string_view doc_id() const noexcept { return doc->doc_id; }
};

// One end of a key range.
struct bound {
  scalar value;
  bool inclusive = true;
  friend bool operator==(const bound&, const bound&) = default;
};

// Where a walk resumes: strictly after every entry of document `doc_id` under `key` (all of
// its versions), so a batch that ended on a document never yields it again. A cursor's
// page hands one out as its `next` (query/cursor.hpp).
struct resume_after {
  scalar key;
  std::string doc_id;
  friend bool operator==(const resume_after&, const resume_after&) = default;
};

// What a query already knows about the versions it can use: an index that offers
// `for_range_prefiltered` / `for_equal_prefiltered` may skip entries whose version is
// newer than `bound` or belongs to another schema version. Skipping them is safe (such a
// version can never be in that query's answer), never required, and the executor checks
// every candidate in full either way.
struct prefilter {
  std::uint32_t schema_version = 0;
  commit_id bound = 0;
};

class ordered_field_index {
 public:
  void insert(const scalar& key, const mvcc::key_entry& doc, const mvcc::version& v) {
    entries_.insert(entry{key, &doc, v.commit});
  }
  // The same entry without reading the version (a rebuild has its CommitId at hand).
  void insert(const scalar& key, const mvcc::key_entry& doc, commit_id version, std::uint32_t /*schema_version*/) {
    entries_.insert(entries_.end(), entry{key, &doc, version});
  }
  void erase(const scalar& key, const mvcc::key_entry& doc, const mvcc::version& v) {
    entries_.erase(entry{key, &doc, v.commit});
  }
  std::size_t size() const noexcept { return entries_.size(); }
  void clear() noexcept { entries_.clear(); }

  // Calls fn(const mvcc::key_entry& doc, commit_id version) for the entries whose key
  // lies in the range, ascending.
  template <class Fn>
  void for_range(const std::optional<bound>& lower, const std::optional<bound>& upper, Fn&& fn) const {
    auto [first, last] = locate(lower, upper);
    for (auto it = first; it != last; ++it) fn(*it->doc, it->version);
  }
  template <class Fn>
  void for_equal(const scalar& key, Fn&& fn) const {
    for_range(bound{key, true}, bound{key, true}, fn);
  }
  std::uint64_t count_range(const std::optional<bound>& lower, const std::optional<bound>& upper) const {
    auto [first, last] = locate(lower, upper);
    return static_cast<std::uint64_t>(std::distance(first, last));
  }

  // The cursor's walk (query/cursor.hpp): calls fn(const scalar& key, const mvcc::key_entry&
  // doc, commit_id version), which returns false to stop, for the entries in the range that
  // come after `after` (when given) and whose version is at most `max_version`, ascending
  // by (key, _id, CommitId). A resume point costs one search, not a walk to it.
  template <class Fn>
  void for_range_after(const std::optional<bound>& lower, const std::optional<bound>& upper,
                       const std::optional<resume_after>& after, commit_id max_version, Fn&& fn) const {
    auto [first, last] = locate(lower, upper);
    if (after) {
      const auto from = entries_.upper_bound(after_probe{after->key, after->doc_id});
      if (first == entries_.end() || from == entries_.end()) return;
      if (entry_less{}(*first, *from)) first = from;
      if (last != entries_.end() && !entry_less{}(*first, *last)) return;  // nothing left in range
    }
    for (auto it = first; it != last; ++it)
      if (it->version <= max_version && !fn(static_cast<const scalar&>(it->key), *it->doc, it->version)) return;
  }

 private:
  // A resume point as the set searches for it: after every version of (key, _id).
  struct after_probe {
    const scalar& key;
    std::string_view doc_id;
  };

  struct entry_less {
    using is_transparent = void;
    bool operator()(const entry& a, const entry& b) const {
      if (auto c = a.key <=> b.key; c != 0) return c < 0;
      if (auto c = a.doc_id().compare(b.doc_id()); c != 0) return c < 0;
      return a.version < b.version;
    }
    // Comparisons with a bare key: an entry is "less" than key k when its key is.
    bool operator()(const entry& a, const scalar& k) const { return a.key < k; }
    bool operator()(const scalar& k, const entry& b) const { return k < b.key; }
    // Every version of (key, _id) sorts before the resume point of (key, _id).
    bool operator()(const entry& a, const after_probe& p) const {
      if (auto c = a.key <=> p.key; c != 0) return c < 0;
      return a.doc_id() <= p.doc_id;
    }
    bool operator()(const after_probe& p, const entry& b) const {
      if (auto c = p.key <=> b.key; c != 0) return c < 0;
      return p.doc_id < b.doc_id();
    }
  };
  using set_type = std::set<entry, entry_less>;

  std::pair<set_type::const_iterator, set_type::const_iterator> locate(
      const std::optional<bound>& lower, const std::optional<bound>& upper) const {
    auto first = !lower ? entries_.begin()
                        : lower->inclusive ? entries_.lower_bound(lower->value)
                                           : entries_.upper_bound(lower->value);
    auto last = !upper ? entries_.end()
                       : upper->inclusive ? entries_.upper_bound(upper->value)
                                          : entries_.lower_bound(upper->value);
    // An empty range may put last before first (e.g. lower 7, upper 3).
    if (first != entries_.end() && last != entries_.end() && entry_less{}(*last, *first)) last = first;
    if (first == entries_.end()) last = first;
    return {first, last};
  }

  set_type entries_;
};

}  // namespace aerodb::index
