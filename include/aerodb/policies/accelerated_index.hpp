// IndexPolicy `accelerated_index`: docs/optimizations/index_acceleration.md.
//
//   primary_map   boost::unordered_flat_map keyed by _id (open addressing, one probe
//                 sequence, no node per key) instead of a red-black tree. Nothing relies
//                 on its order: scans and snapshot images sort by _id themselves. Its key
//                 is a borrowed_id: a view of the _id its key_entry owns, with the hash,
//                 so the _id is stored once and growing the table rehashes without
//                 reading a single _id (perf of a 1M-document open, docs/benchmarks.md).
//   field_index   index::accelerated_field_index: a hash map for equality, a blocked
//                 sorted array for ranges, and the composite (schema version, key)
//                 postings behind the conservative pre-filter the executor uses.
//   parallel_rebuild  a collection's indexes are filled at recovery on a thread each.
//   sorted_commit_inserts  a write batch's index entries go in in index order.
//   parallel_commit_inserts  a large write batch's entries go into its indexes on a
//                 thread each.
//
// Both are derived, in-memory only, rebuilt deterministically at recovery, and never
// decide a result: the executor checks visibility and every predicate of every
// candidate, exactly as with the baseline.
#pragma once

#include <aerodb/index/accelerated_field_index.hpp>
#include <aerodb/index/huge_page_allocator.hpp>

#include <boost/unordered/unordered_flat_map.hpp>

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

namespace aerodb::policies {

// Hashes std::string and std::string_view alike, so lookups by string_view copy nothing.
struct transparent_string_hash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};

// The key of the accelerated primary map: a view of an _id owned elsewhere, and its hash.
// The version store makes it from the _id of the key_entry that the same map entry owns
// (engine/version_store.hpp), which lives at a fixed address for as long as the entry, so
// the view never dangles; a temporary string cannot be borrowed (the constructor from an
// rvalue is deleted). The hash is computed once, when the key is made.
class borrowed_id {
 public:
  explicit borrowed_id(const std::string& owned) noexcept : id_(owned), hash_(transparent_string_hash{}(id_)) {}
  explicit borrowed_id(std::string&&) = delete;

  std::string_view view() const noexcept { return id_; }
  std::size_t hash() const noexcept { return hash_; }

 private:
  std::string_view id_;
  std::size_t hash_;
};

// Hashes a borrowed_id by its stored hash and a string_view like transparent_string_hash,
// so that the two agree and a lookup by string_view finds a borrowed key.
struct borrowed_id_hash {
  using is_transparent = void;
  std::size_t operator()(const borrowed_id& k) const noexcept { return k.hash(); }
  std::size_t operator()(std::string_view s) const noexcept { return transparent_string_hash{}(s); }
};
struct borrowed_id_equal {
  using is_transparent = void;
  bool operator()(const borrowed_id& a, const borrowed_id& b) const noexcept {
    return a.hash() == b.hash() && a.view() == b.view();
  }
  bool operator()(const borrowed_id& a, std::string_view b) const noexcept { return a.view() == b; }
  bool operator()(std::string_view a, const borrowed_id& b) const noexcept { return a == b.view(); }
};

struct accelerated_index {
  template <class V>
  using primary_map = boost::unordered_flat_map<borrowed_id, V, borrowed_id_hash, borrowed_id_equal,
                                                index::huge_page_allocator<std::pair<const borrowed_id, V>>>;
  using field_index = index::accelerated_field_index;
  // Recovery fills a collection's indexes on one thread each, up to the cores available
  // (engine/indexer.hpp): every index is still built by one thread from the same sorted
  // run, so the indexes are the same whatever the thread count.
  static constexpr bool parallel_rebuild = true;
  // A write batch's index entries are inserted in index order (engine/indexer.hpp), so
  // consecutive inserts land next to each other in the blocked slots.
  static constexpr bool sorted_commit_inserts = true;
  // A large write batch's entries go into its indexes on a thread each, up to the cores
  // available (engine/indexer.hpp): each index is still filled by one thread, in index
  // order, so the indexes are the same whatever the thread count.
  static constexpr bool parallel_commit_inserts = true;
};

}  // namespace aerodb::policies
