// The query executor (SPEC_DIGEST §7): plans a bounded query over one collection and runs
// it at a read view's boundary, over the version store's reader.
//
// Access paths: a primary-key lookup, or candidates from a secondary index (equality,
// range, or a whole-index scan for a sort). Every candidate is checked in full: the
// version the view sees (through the VisibilityCachePolicy), its schema version, every
// predicate; then the hits are sorted by the total order (value, then _id) and cut at the
// limit. An index that can stream its entries in (key, _id) order lets the executor stop
// at the limit with no sort (the planner hint of docs/optimizations/index_acceleration.md).
//
// Paging: a plan with `after` keeps only the hits strictly after that place in the result
// order, and a page that reaches its limit hands out `next`, the place of its last document
// (so the final page is the first one shorter than the limit, possibly empty). Both paths
// page identically: the ordered walk starts at the resume point with one search.
//
// Thread safety: an executor lives for one query, on one thread, while the reader it is
// given holds the state lock shared; `state` is the read view's own.
#pragma once

#include <aerodb/engine/read_path.hpp>
#include <aerodb/engine/version_store.hpp>
#include <aerodb/metrics.hpp>
#include <aerodb/outcomes.hpp>
#include <aerodb/query/match.hpp>
#include <aerodb/query/plan.hpp>
#include <aerodb/query/query.hpp>

#include <boost/unordered/unordered_flat_set.hpp>

#include <algorithm>
#include <optional>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace aerodb::query {

template <class VisibilityCachePolicy, class IndexPolicy>
class executor {
 public:
  using store_type = engine::version_store<IndexPolicy>;
  using reader = typename store_type::reader;
  using collection_state = typename store_type::collection_state;
  using index_state = typename store_type::index_state;
  using view_state = typename VisibilityCachePolicy::view_state;

  executor(const reader& r, commit_id bound, view_state& state, read_path_counters& counters)
      : reader_(r), bound_(bound), state_(state), counters_(counters) {}

 private:
  using path = engine::read_path<VisibilityCachePolicy>;

  // The shape of the callback for_range_until takes (for the requires-check in execute).
  struct ordered_visit_probe {
    bool operator()(const scalar&, const mvcc::key_entry&, commit_id) const { return true; }
  };

  const index_state* usable_index(const collection_state& c, std::string_view field) const {
    return c.index_at(field, bound_);
  }

 public:
  // The plan for `spec` over collection `c`, with its index and max_scan bound.
  result<plan> plan_for(const collection_state& c, const query_spec& spec) const {
    const schema* version_schema = reader_.schema_at(c.schema_id, spec.schema_version, bound_);
    catalog_view catalog{version_schema,
                                [&](std::string_view f) { return usable_index(c, f) != nullptr; }};
    AERO_TRY_ASSIGN(plan p, make_plan(spec, catalog));
    switch (p.kind) {
      case plan::access::primary_key:
        p.max_scan = 1;
        break;
      case plan::access::index_equality:
        p.max_scan = usable_index(c, p.index_field)->entries.count_range(bound{*p.equals, true},
                                                                         bound{*p.equals, true});
        break;
      case plan::access::index_range:
        p.max_scan = usable_index(c, p.index_field)->entries.count_range(p.lower, p.upper);
        break;
      case plan::access::index_scan:
        p.max_scan = usable_index(c, p.index_field)->entries.size();
        break;
    }
    return p;
  }

  // Runs plan `p` over collection `c`. Every predicate and the visibility of every
  // candidate are checked against the version this view sees; an index only proposes.
  result<query_result> execute(const collection_state& c, plan p) const {
    using field_index = typename IndexPolicy::field_index;
    if constexpr (requires(const field_index& ix, const std::optional<index::bound>& b) {
                    ix.for_range_until(b, b, index::prefilter{}, ordered_visit_probe{});
                  }) {
      if (auto streamed = execute_in_index_order(c, p, std::type_identity<field_index>{}))
        return std::move(*streamed);
    }
    std::vector<const mvcc::key_entry*> docs;
    if (p.kind == plan::access::primary_key) {
      if (p.equals->type() == scalar::kind::string)
        if (const auto* key = c.find_key(p.equals->as_string())) docs.push_back(key);
    } else {
      collect_candidates(usable_index(c, p.index_field)->entries, p, docs);
      // An index holds an entry per version: one document may be proposed several times.
      // (Candidate order does not matter: results are sorted by the total order below.)
      std::sort(docs.begin(), docs.end());
      docs.erase(std::unique(docs.begin(), docs.end()), docs.end());
    }
    query_result out;
    out.candidates = docs.size();
    // Each hit with its sort key, read from the document once (the versions, and so the
    // bytes the keys point into, are pinned by the shared state lock).
    std::vector<std::pair<sort_key, const mvcc::version*>> hits;
    std::size_t on_earlier_pages = 0;
    for (const auto* key : docs) {
      const mvcc::version* v = path::visible(state_, *key, bound_, counters_);
      if (!v || v->tombstone() || v->schema_version != p.schema_version) continue;
      const document_view d(v->bytes());
      if (!matches_all(p.predicates, d)) continue;
      sort_key k(p.order, d);
      if (p.after && compare_for_sort(p.order, k, *p.after) <= 0) {
        ++on_earlier_pages;  // a result, but of a page before this one
        continue;
      }
      hits.emplace_back(k, v);
    }
    if (p.kind != plan::access::primary_key)
      counters_.index_false_positives += docs.size() - hits.size() - on_earlier_pages;
    // Only the first `limit` in the total order are needed.
    const auto keep = std::min(hits.size(), static_cast<std::size_t>(p.limit));
    const auto before = [&](const auto& a, const auto& b) {
      return compare_for_sort(p.order, a.first, b.first) < 0;
    };
    if (keep == hits.size())
      std::sort(hits.begin(), hits.end(), before);  // all kept: a plain sort is cheaper
    else
      std::partial_sort(hits.begin(), hits.begin() + static_cast<std::ptrdiff_t>(keep),
                        hits.end(), before);
    hits.erase(hits.begin() + static_cast<std::ptrdiff_t>(keep), hits.end());
    if (!hits.empty() && hits.size() == static_cast<std::size_t>(p.limit)) out.next = continuation_of(hits.back().first);
    out.documents.reserve(hits.size());
    for (const auto& h : hits) out.documents.push_back(path::make_document(*h.second, counters_));
    out.plan = std::move(p);
    return out;
  }

 private:
  // The planner hint of an index that walks its entries in (key, _id) order and can stop
  // early (for_range_until): when the requested order is that walk's order, results come
  // out already sorted, so the executor keeps the first `limit` hits and stops, with no
  // sort. Every hit is still checked in full (visibility, schema version, every
  // predicate), and the walk's order is verified as it goes: every entry must follow the
  // previous one in (key, _id) order (one entry past the last hit is read to check that
  // too), and every hit must sort strictly after the previous hit; otherwise the whole
  // query falls back to the general path, and the fallback is counted. An entry counts
  // for a document only when its key equals the value of the version this view sees
  // (re-read from the document), so a stale or damaged entry can neither place a
  // document wrongly nor hide it behind another entry. What cannot be checked without
  // reading everything is the index's completeness and where its walk starts: like every
  // access path, this one relies on the index holding every entry in its range.
  // Returns nothing when the hint does not apply.
  template <class Index>
  std::optional<query_result> execute_in_index_order(const collection_state& c, const plan& p,
                                                     std::type_identity<Index>) const {
    using access = plan::access;
    if (p.kind == access::primary_key || p.order.dir != direction::asc) return std::nullopt;
    const bool same_order = p.order.field == p.index_field ||
                            (p.kind == access::index_equality && p.order.field == "_id");
    if (!same_order) return std::nullopt;
    const Index& ix = usable_index(c, p.index_field)->entries;
    std::optional<index::bound> lower = p.lower, upper = p.upper;
    if (p.kind == access::index_equality) lower = upper = index::bound{*p.equals, true};
    if (p.kind == access::index_scan) lower = upper = std::nullopt;
    // A later page starts its walk at the previous page's last document, found with one
    // search. The walk's key is the sort value there, or the equality's key when the walk
    // is sorted by _id; a continuation without a value (a document lacking the sort field,
    // which has no entry here and sorts first) needs no seek.
    std::optional<index::resume_after> start;
    if (p.after && (p.order.field != p.index_field || p.after->value))
      start = index::resume_after{p.order.field == p.index_field ? *p.after->value : *p.equals, p.after->doc_id};
    constexpr bool can_resume = requires(const Index& i, const std::optional<index::bound>& b,
                                         const index::resume_after& r) {
      i.for_range_until(b, b, r, index::prefilter{}, ordered_visit_probe{});
    };
    if (start && !can_resume) return std::nullopt;

    query_result out;
    std::vector<const mvcc::version*> hits;
    boost::unordered_flat_set<const mvcc::key_entry*> taken;
    bool in_order = true;
    bool full = false;
    const scalar* previous_key = nullptr;
    const mvcc::key_entry* previous_doc = nullptr;
    ++counters_.index_lookups;
    const auto visit = [&](const scalar& key, const mvcc::key_entry& doc, commit_id) {
      // The walk must be in (key, _id) order: checked on every entry it yields, including
      // one past the last hit, so a walk that starts out of order is caught too.
      if (previous_key) {
        const auto c = key <=> *previous_key;
        if (c < 0 || (c == 0 && doc.doc_id < previous_doc->doc_id)) {
          in_order = false;
          return false;
        }
      }
      previous_key = &key;
      previous_doc = &doc;
      if (full) return false;
      ++counters_.index_candidates;
      ++out.candidates;
      if (taken.contains(&doc)) return true;
      const mvcc::version* v = path::visible(state_, doc, bound_, counters_);
      if (!v || v->tombstone() || v->schema_version != p.schema_version) {
        ++counters_.index_false_positives;
        return true;
      }
      const document_view d(v->bytes());
      const auto own = detail::scalar_at(d, p.index_field);
      if (!own || detail::compare_value(*own, key) != 0) {
        ++counters_.index_false_positives;  // this entry is not the one of the visible version
        return true;
      }
      if (!matches_all(p.predicates, d)) {
        ++counters_.index_false_positives;
        return true;
      }
      if (!hits.empty() &&
          compare_for_sort(p.order, document_view(hits.back()->bytes()), d) >= 0) {
        in_order = false;
        return false;
      }
      // A walk that started before the resume point is out of order for this page.
      if (hits.empty() && p.after && compare_for_sort(p.order, sort_key(p.order, d), *p.after) <= 0) {
        in_order = false;
        return false;
      }
      hits.push_back(v);
      taken.insert(&doc);
      full = hits.size() >= static_cast<std::size_t>(p.limit);
      return true;
    };
    const index::prefilter known{p.schema_version, bound_};
    if constexpr (can_resume) {
      if (start)
        ix.for_range_until(lower, upper, *start, known, visit);
      else
        ix.for_range_until(lower, upper, known, visit);
    } else {
      ix.for_range_until(lower, upper, known, visit);
    }
    if (!in_order) {
      // Never silent: counted, and the general path answers the query from scratch.
      ++counters_.index_order_fallbacks;
      return std::nullopt;
    }
    if (!hits.empty() && hits.size() == static_cast<std::size_t>(p.limit))
      out.next = continuation_of(sort_key(p.order, document_view(hits.back()->bytes())));
    out.documents.reserve(hits.size());
    for (const auto* v : hits) out.documents.push_back(path::make_document(*v, counters_));
    out.plan = p;
    return out;
  }

  // Proposes candidates from an index. An index that can pre-filter is told what the
  // query already knows (its schema version and this view's bound) and may skip entries
  // that cannot be in the answer; everything it proposes is still checked in full.
  template <class Index>
  void collect_candidates(const Index& ix, const plan& p,
                          std::vector<const mvcc::key_entry*>& docs) const {
    auto collect = [&](const mvcc::key_entry& doc, commit_id) { docs.push_back(&doc); };
    ++counters_.index_lookups;
    const index::prefilter known{p.schema_version, bound_};
    constexpr bool can_prefilter = requires(const Index& i, const index::prefilter& f) {
      i.for_range_prefiltered(std::optional<index::bound>(), std::optional<index::bound>(), f, collect);
      i.for_equal_prefiltered(scalar(), f, collect);
    };
    if constexpr (can_prefilter) {
      if (p.kind == plan::access::index_equality)
        ix.for_equal_prefiltered(*p.equals, known, collect);
      else if (p.kind == plan::access::index_range)
        ix.for_range_prefiltered(p.lower, p.upper, known, collect);
      else
        ix.for_range_prefiltered(std::nullopt, std::nullopt, known, collect);
    } else {
      if (p.kind == plan::access::index_equality)
        ix.for_equal(*p.equals, collect);
      else if (p.kind == plan::access::index_range)
        ix.for_range(p.lower, p.upper, collect);
      else
        ix.for_range(std::nullopt, std::nullopt, collect);
    }
    counters_.index_candidates += docs.size();
  }

  const reader& reader_;
  const commit_id bound_;
  view_state& state_;
  read_path_counters& counters_;
};

}  // namespace aerodb::query
