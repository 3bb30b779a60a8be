// IndexPolicy `accelerated_index`: docs/optimizations/index_acceleration.md.
//
//   primary_map   boost::unordered_flat_map keyed by _id (open addressing, one probe
//                 sequence, no node per key) instead of a red-black tree. Nothing relies
//                 on its order: scans and snapshot images sort by _id themselves.
//   field_index   index::accelerated_field_index: a hash map for equality, a blocked
//                 sorted array for ranges, and the composite (schema version, key)
//                 postings behind the conservative pre-filter the executor uses.
//
// Both are derived, in-memory only, rebuilt deterministically at recovery, and never
// decide a result: the executor checks visibility and every predicate of every
// candidate, exactly as with the baseline.
#pragma once

#include <aerodb/index/accelerated_field_index.hpp>

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

struct accelerated_index {
  template <class V>
  using primary_map =
      boost::unordered_flat_map<std::string, V, transparent_string_hash, std::equal_to<>>;
  using field_index = index::accelerated_field_index;
};

}  // namespace aerodb::policies
