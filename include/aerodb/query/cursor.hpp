// Cursors: a collection in _id order, or a key range of a secondary index in (key, _id)
// order, read under one read view in bounded batches (docs/queries.md, "Cursors").
//
// A batch is one call: it takes the state lock shared, walks the index from where the
// previous batch stopped (one search, not a walk to it), hands out at most `limit`
// documents and the position to resume after, and lets the lock go. Nothing is held
// between batches but that position, so a cursor never materializes its collection and
// never holds writers back; the read view it runs under keeps every version it can see
// (GC respects open views), so paging under one view meets every document once, with no
// duplicate and no gap, whatever writers do meanwhile.
//
// Every entry the walk yields is checked, as the query executor checks candidates: the
// version the view sees, and that the entry's key is that version's value of the field (an
// index holds an entry per version, so a document whose field changed has stale entries
// elsewhere in the range). The walk's order is checked too: an index that yields entries
// out of order, outside the range, or at or before the resume point is damaged, and the
// batch fails with AERO_DATA_CORRUPTION rather than answer wrongly (indexes are derived
// state; reopening rebuilds them).
//
// Cost of a batch: one search, plus the entries walked, which are the documents handed
// out and the stale entries between them (entries_read counts both).
//
// Thread safety: a scanner lives for one batch, on one thread, while the reader it is
// given holds the state lock shared; `state` is the read view's own.
#pragma once

#include <aerodb/engine/read_path.hpp>
#include <aerodb/engine/version_store.hpp>
#include <aerodb/error.hpp>
#include <aerodb/index/field_index.hpp>
#include <aerodb/metrics.hpp>
#include <aerodb/outcomes.hpp>
#include <aerodb/query/match.hpp>
#include <aerodb/query/parse.hpp>
#include <aerodb/query/query.hpp>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace aerodb::query {

// One batch of a cursor.
struct scan_request {
  std::string collection;
  std::string field = "_id";                  // an indexed field; "_id" walks the whole collection
  std::optional<index::bound> lower, upper;   // a key range on `field` (either, both or neither)
  std::optional<index::resume_after> after;   // the previous batch's `next`; empty: from the start
  std::int64_t limit = 100;                   // documents per batch, 1..max_limit
};

// What a batch hands out.
struct scan_page {
  std::vector<versioned_document> documents;  // ascending by (value of `field`, _id)
  std::optional<index::resume_after> next;    // where the next batch starts; empty: the end
  std::uint64_t entries_read = 0;             // index entries walked, stale ones included
};

namespace detail {

// The checks a batch needs before it looks at the store.
inline result<void> check_scan_request(const scan_request& r) {
  const std::string max = std::to_string(max_limit);
  if (r.collection.empty()) return invalid_query("collection", "collection must be non-empty");
  if (r.field != "_id" && !valid_field_path(r.field))
    return invalid_query("field", "invalid field path '" + aerodb::detail::detail_text(r.field) + "'");
  if (r.limit <= 0)
    return error(errc::query_invalid, "a cursor's batch size must be positive, got " + std::to_string(r.limit),
                 {{"path", "limit"}, {"reason", "limit must be positive"}, {"limit", std::to_string(r.limit)}});
  if (r.limit > max_limit)
    return error(errc::query_unbounded,
                 "a cursor's batch size " + std::to_string(r.limit) + " exceeds the maximum " + max,
                 {{"limit", std::to_string(r.limit)}, {"max", max}});
  for (const auto* b : {&r.lower, &r.upper})
    if (*b && (*b)->value.type() == scalar::kind::floating && !std::isfinite((*b)->value.as_double()))
      return invalid_query(b == &r.lower ? "lower" : "upper", "number is not finite");
  if (r.after && r.after->doc_id.empty()) return invalid_query("after._id", "after._id must be a non-empty string");
  return ok();
}

// Whether `key` lies in [lower, upper] (each end inclusive or not).
inline bool in_range(const scalar& key, const std::optional<index::bound>& lower,
                     const std::optional<index::bound>& upper) {
  if (lower) {
    const auto c = key <=> lower->value;
    if (c < 0 || (c == 0 && !lower->inclusive)) return false;
  }
  if (upper) {
    const auto c = key <=> upper->value;
    if (c > 0 || (c == 0 && !upper->inclusive)) return false;
  }
  return true;
}

// (key, id) against a position: < 0 before it, 0 at it, > 0 after it.
inline int compare_position(const scalar& key, std::string_view id, const scalar& pkey, std::string_view pid) {
  if (const auto c = key <=> pkey; c != 0) return c < 0 ? -1 : 1;
  const int c = id.compare(pid);
  return c < 0 ? -1 : c > 0 ? 1 : 0;
}

}  // namespace detail

template <class VisibilityCachePolicy, class IndexPolicy>
class scanner {
 public:
  using store_type = engine::version_store<IndexPolicy>;
  using collection_state = typename store_type::collection_state;
  using view_state = typename VisibilityCachePolicy::view_state;

  scanner(commit_id bound, view_state& state, read_path_counters& counters)
      : bound_(bound), state_(state), counters_(counters) {}

  // One batch over collection `c`. REQUIRES: check_scan_request(r) passed.
  result<scan_page> run(const collection_state& c, const scan_request& r) const {
    const auto* ix = c.index_at(r.field, bound_);
    if (ix == nullptr)
      return error(errc::query_unindexed_field,
                   "a cursor walks an index, and field '" + r.field + "' has none at this read view",
                   {{"field", r.field}, {"collection", r.collection}});
    const bool by_id = r.field == "_id";
    const auto limit = static_cast<std::size_t>(r.limit);
    scan_page page;
    std::vector<std::pair<const scalar*, const mvcc::version*>> hits;
    const scalar* previous_key = nullptr;
    const mvcc::key_entry* previous_doc = nullptr;
    bool damaged = false;
    ++counters_.index_lookups;
    ix->entries.for_range_after(r.lower, r.upper, r.after, bound_,
                                [&](const scalar& key, const mvcc::key_entry& doc, commit_id) {
      ++page.entries_read;
      // The walk must stay in its range, after the resume point, in (key, _id) order; the
      // same (key, document) again is another version's entry.
      if (!detail::in_range(key, r.lower, r.upper) ||
          (r.after && detail::compare_position(key, doc.doc_id, r.after->key, r.after->doc_id) <= 0)) {
        damaged = true;
        return false;
      }
      if (previous_key) {
        const int c = detail::compare_position(key, doc.doc_id, *previous_key, previous_doc->doc_id);
        if (c < 0) {
          damaged = true;
          return false;
        }
        if (c == 0) return true;
      }
      previous_key = &key;
      previous_doc = &doc;
      if (hits.size() == limit) return false;  // one entry past the page, to check its order
      const mvcc::version* v = path::visible(state_, doc, bound_, counters_);
      if (!v || v->tombstone()) return true;
      const document_view d(v->bytes());
      // Only the entry of the value this view sees places the document.
      if (by_id) {
        if (key.type() != scalar::kind::string || key.as_string() != d.id()) return true;
      } else {
        const auto own = detail::scalar_at(d, r.field);
        if (!own || detail::compare_value(*own, key) != 0) return true;
      }
      hits.emplace_back(&key, v);
      return true;
    });
    counters_.index_candidates += page.entries_read;
    if (damaged)
      return error(errc::data_corruption,
                   "the index on '" + r.field + "' yielded an entry out of order or out of range; reopen "
                   "the store to rebuild it",
                   {{"collection", r.collection}, {"field", r.field}});
    if (hits.size() == limit && limit > 0) {
      const auto* last = hits.back().second;
      page.next = index::resume_after{*hits.back().first, std::string(document_view(last->bytes()).id())};
    }
    page.documents.reserve(hits.size());
    for (const auto& h : hits) page.documents.push_back(path::make_document(*h.second, counters_));
    return page;
  }

 private:
  using path = engine::read_path<VisibilityCachePolicy>;

  const commit_id bound_;
  view_state& state_;
  read_path_counters& counters_;
};

}  // namespace aerodb::query
