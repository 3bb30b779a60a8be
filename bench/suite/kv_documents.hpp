// Documents and secondary indexes over an ordered key-value store (LMDB, RocksDB,
// LevelDB), built the way an application would build them by hand:
//
//   <_id>                                   -> document JSON (16-byte key)
//   0x01 <bucket, 2 bytes big-endian> <_id> -> empty         (equality index)
//   0x02 <score, 8 bytes order-preserving> <_id> -> empty    (range index)
//
// Index entries are written in the same atomic commit as their document. `_id`s are
// printable ASCII, so they never collide with the 0x01/0x02 prefixes.
//
// Thread safety: kv_query is stateless; the view it is given decides.
#pragma once

#include "engine.hpp"

#include <algorithm>
#include <bit>
#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace bench::kv {

inline constexpr char bucket_prefix = '\x01';
inline constexpr char score_prefix = '\x02';

inline void put_be(std::string& out, std::uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) out += static_cast<char>((v >> (8 * i)) & 0xff);
}

// Doubles ordered as their big-endian bytes: flip the sign bit of positives, every bit
// of negatives.
inline std::uint64_t order_preserving(double d) {
  const auto u = std::bit_cast<std::uint64_t>(d);
  return (u >> 63) ? ~u : (u | (1ull << 63));
}

inline std::string bucket_key(std::int64_t bucket, std::string_view id) {
  std::string k(1, bucket_prefix);
  put_be(k, static_cast<std::uint64_t>(bucket), 2);
  k.append(id);
  return k;
}

inline std::string score_key(double score, std::string_view id) {
  std::string k(1, score_prefix);
  put_be(k, order_preserving(score), 8);
  k.append(id);
  return k;
}

// What a KV peer's read view offers: point reads and ordered scans over [lo, hi).
class kv_view {
 public:
  virtual ~kv_view() = default;
  virtual bool get(std::string_view key, std::uint64_t& sink) = 0;
  // Calls fn(key) for each key in [lo, hi) in order until fn returns false.
  virtual void scan(std::string_view lo, std::string_view hi,
                    const std::function<bool(std::string_view)>& fn) = 0;
};

// Answers a query with index scans, then one point read per result.
inline query_answer kv_query(kv_view& v, const query_request& q, std::uint64_t& sink) {
  query_answer a;
  std::vector<std::string> ids;
  const auto limit = static_cast<std::size_t>(q.limit);
  if (q.shape == query_shape::eq_by_id || q.shape == query_shape::eq_by_id_top) {
    const std::string lo = bucket_key(q.bucket, ""), hi = bucket_key(q.bucket + 1, "");
    v.scan(lo, hi, [&](std::string_view k) {
      ids.emplace_back(k.substr(3));
      return ids.size() < limit;
    });
  } else {
    const std::string lo = score_key(q.low, ""), hi = score_key(q.high, "");
    const bool by_score = q.shape == query_shape::range_by_score_top;
    v.scan(lo, hi, [&](std::string_view k) {
      ids.emplace_back(k.substr(9));
      return !by_score || ids.size() < limit;
    });
    if (!by_score) {
      std::sort(ids.begin(), ids.end());
      if (ids.size() > limit) ids.resize(limit);
    }
  }
  for (const auto& id : ids)
    if (v.get(id, sink)) fingerprint_add(a, id);
  return a;
}

// The keys and values one document writes: the document, and its index entries.
template <class Put>
void put_document(const document& d, bool indexed, Put&& put) {
  put(std::string_view(d.id), std::string_view(d.json));
  if (indexed) {
    put(std::string_view(bucket_key(d.bucket, d.id)), std::string_view());
    put(std::string_view(score_key(d.score, d.id)), std::string_view());
  }
}

}  // namespace bench::kv
