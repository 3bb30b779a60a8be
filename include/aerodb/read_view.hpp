// basic_read_view: a consistent view of a database at one CommitId boundary.
//
// Included by database.hpp after basic_database is defined; it reads the engine's state
// as its friend, under the engine's shared state lock.
//
// Thread safety: one thread at a time per view (a caching policy keeps per-view state);
// any number of views may be used by different threads at once.
#pragma once

#include <aerodb/outcomes.hpp>
#include <aerodb/query/match.hpp>
#include <aerodb/query/parse.hpp>
#include <aerodb/query/plan.hpp>

#include <boost/unordered/unordered_flat_set.hpp>

#include <algorithm>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <type_traits>
#include <string_view>
#include <utility>
#include <vector>

namespace aerodb {

// A consistent view of the database at one CommitId boundary (SPEC_DIGEST §5): it sees
// exactly the commits with CommitId <= bound(), for as long as it lives.
template <class Database>
class basic_read_view {
 public:
  basic_read_view(basic_read_view&& other) noexcept
      : db_(std::exchange(other.db_, nullptr)), bound_(other.bound_), state_(std::move(other.state_)) {}
  basic_read_view& operator=(basic_read_view&& other) noexcept {
    if (this != &other) {
      if (db_) db_->unregister_view(bound_);
      db_ = std::exchange(other.db_, nullptr);
      bound_ = other.bound_;
      state_ = std::move(other.state_);
    }
    return *this;
  }
  basic_read_view(const basic_read_view&) = delete;
  ~basic_read_view() {
    if (db_) db_->unregister_view(bound_);
  }

  commit_id bound() const noexcept { return bound_; }

  // The document `id` as of bound(), or nothing when absent or deleted.
  result<std::optional<versioned_document>> get(std::string_view collection,
                                                std::string_view id) const {
    read_path_counters counters;
    std::optional<versioned_document> out;
    {
      std::shared_lock lock(db_->state_mu_);
      AERO_TRY_ASSIGN(const auto* c, find_collection(collection));
      if (const auto* key = db_->find_key(*c, id)) out = materialize(*key, counters);
    }
    db_->metrics_.add(counters);
    return out;
  }

  // Runs a bounded query at this view's boundary (docs/queries.md). Every predicate and
  // the visibility of every candidate are checked against the version this view sees; an
  // index only proposes candidates.
  result<query_result> query(const query::query_spec& spec) const {
    read_path_counters counters;
    result<query_result> out = [&]() -> result<query_result> {
      std::shared_lock lock(db_->state_mu_);
      AERO_TRY_ASSIGN(const auto* c, find_collection(spec.collection));
      AERO_TRY_ASSIGN(query::plan p, plan_for(*c, spec));
      return execute(*c, std::move(p), counters);
    }();
    db_->metrics_.add(counters);
    return out;
  }
  result<query_result> query(std::string_view json) const {
    AERO_TRY_ASSIGN(query::query_spec spec, query::parse_query(json));
    return query(spec);
  }

  // The plan a query would run, with its index and max_scan bound, without running it.
  result<query::plan> explain(const query::query_spec& spec) const {
    std::shared_lock lock(db_->state_mu_);
    AERO_TRY_ASSIGN(const auto* c, find_collection(spec.collection));
    return plan_for(*c, spec);
  }
  result<query::plan> explain(std::string_view json) const {
    AERO_TRY_ASSIGN(query::query_spec spec, query::parse_query(json));
    return explain(spec);
  }

  // Calls fn(const versioned_document&) for every visible document, in _id order.
  template <class Fn>
  result<std::size_t> for_each(std::string_view collection, Fn&& fn) const {
    std::vector<versioned_document> docs;
    read_path_counters counters;
    {
      std::shared_lock lock(db_->state_mu_);
      AERO_TRY_ASSIGN(const auto* c, find_collection(collection));
      // Sorted by the primary map's keys while they are pinned by the lock: asking each
      // document for its _id would decode it on every comparison.
      std::vector<std::pair<std::string_view, versioned_document>> keyed;
      for (const auto& [id, key] : c->keys)
        if (auto d = materialize(*key, counters)) keyed.emplace_back(id, std::move(*d));
      std::sort(keyed.begin(), keyed.end(),
                [](const auto& a, const auto& b) { return a.first < b.first; });
      docs.reserve(keyed.size());
      for (auto& k : keyed) docs.push_back(std::move(k.second));
    }
    db_->metrics_.add(counters);
    for (const auto& d : docs) fn(d);
    return docs.size();
  }

 private:
  friend Database;
  basic_read_view(const Database& db, commit_id bound) : db_(&db), bound_(bound) {
    db.register_view(bound);
  }

  // REQUIRES: state_mu_ held shared.
  result<const typename Database::collection_state*> find_collection(std::string_view name) const {
    auto it = db_->collections_.find(name);
    if (it == db_->collections_.end() || it->second->created_at > bound_)
      return error(errc::collection_unknown, "no such collection in this read view",
                   {{"collection", std::string(name)}, {"bound", std::to_string(bound_)}});
    return it->second.get();
  }

  // The shape of the callback for_range_until takes (for the requires-check above).
  struct ordered_visit_probe {
    bool operator()(const scalar&, const mvcc::key_entry&, commit_id) const { return true; }
  };

  using collection_state = typename Database::collection_state;
  using index_state = typename Database::index_state;

  // REQUIRES: state_mu_ held shared.
  const index_state* usable_index(const collection_state& c, std::string_view field) const {
    auto it = c.indexes.find(field);
    if (it == c.indexes.end() || it->second->created_at > bound_) return nullptr;
    return it->second.get();
  }

  // REQUIRES: state_mu_ held shared.
  result<query::plan> plan_for(const collection_state& c, const query::query_spec& spec) const {
    const schema* version_schema = nullptr;
    auto s = db_->schemas_.find(std::pair<std::string_view, std::uint32_t>(c.schema_id, spec.schema_version));
    if (s != db_->schemas_.end() && s->second.registered_at <= bound_) version_schema = s->second.def.get();
    query::catalog_view catalog{version_schema,
                                [&](std::string_view f) { return usable_index(c, f) != nullptr; }};
    AERO_TRY_ASSIGN(query::plan p, query::make_plan(spec, catalog));
    switch (p.kind) {
      case query::plan::access::primary_key:
        p.max_scan = 1;
        break;
      case query::plan::access::index_equality:
        p.max_scan = usable_index(c, p.index_field)->entries.count_range(query::bound{*p.equals, true},
                                                                         query::bound{*p.equals, true});
        break;
      case query::plan::access::index_range:
        p.max_scan = usable_index(c, p.index_field)->entries.count_range(p.lower, p.upper);
        break;
      case query::plan::access::index_scan:
        p.max_scan = usable_index(c, p.index_field)->entries.size();
        break;
    }
    return p;
  }

  // REQUIRES: state_mu_ held shared.
  result<query_result> execute(const collection_state& c, query::plan p,
                               read_path_counters& counters) const {
    using field_index = typename Database::index_policy::field_index;
    if constexpr (requires(const field_index& ix, const std::optional<index::bound>& b) {
                    ix.for_range_until(b, b, index::prefilter{}, ordered_visit_probe{});
                  }) {
      if (auto streamed = execute_in_index_order(c, p, counters, std::type_identity<field_index>{}))
        return std::move(*streamed);
    }
    std::vector<const mvcc::key_entry*> docs;
    if (p.kind == query::plan::access::primary_key) {
      if (p.equals->type() == scalar::kind::string)
        if (const auto* key = db_->find_key(c, p.equals->as_string())) docs.push_back(key);
    } else {
      collect_candidates(usable_index(c, p.index_field)->entries, p, counters, docs);
      // An index holds an entry per version: one document may be proposed several times.
      // (Candidate order does not matter: results are sorted by the total order below.)
      std::sort(docs.begin(), docs.end());
      docs.erase(std::unique(docs.begin(), docs.end()), docs.end());
    }
    query_result out;
    out.candidates = docs.size();
    // Each hit with its sort key, read from the document once (the versions, and so the
    // bytes the keys point into, are pinned by the shared state lock).
    std::vector<std::pair<query::sort_key, const mvcc::version*>> hits;
    for (const auto* key : docs) {
      const mvcc::version* v =
          Database::visibility_cache_policy::find_visible(state_, *key, bound_, counters);
      if (!v || v->tombstone() || v->schema_version != p.schema_version) continue;
      const document_view d(v->data.bytes());
      if (!query::matches_all(p.predicates, d)) continue;
      hits.emplace_back(query::sort_key(p.order, d), v);
    }
    if (p.kind != query::plan::access::primary_key)
      counters.index_false_positives += docs.size() - hits.size();
    // Only the first `limit` in the total order are needed.
    const auto keep = std::min(hits.size(), static_cast<std::size_t>(p.limit));
    const auto before = [&](const auto& a, const auto& b) {
      return query::compare_for_sort(p.order, a.first, b.first) < 0;
    };
    if (keep == hits.size())
      std::sort(hits.begin(), hits.end(), before);  // all kept: a plain sort is cheaper
    else
      std::partial_sort(hits.begin(), hits.begin() + static_cast<std::ptrdiff_t>(keep),
                        hits.end(), before);
    hits.erase(hits.begin() + static_cast<std::ptrdiff_t>(keep), hits.end());
    out.documents.reserve(hits.size());
    for (const auto& h : hits) out.documents.push_back(make_document(*h.second, counters));
    out.plan = std::move(p);
    return out;
  }

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
  std::optional<query_result> execute_in_index_order(const collection_state& c, const query::plan& p,
                                                     read_path_counters& counters,
                                                     std::type_identity<Index>) const {
    using access = query::plan::access;
    if (p.kind == access::primary_key || p.order.dir != query::direction::asc) return std::nullopt;
    const bool same_order = p.order.field == p.index_field ||
                            (p.kind == access::index_equality && p.order.field == "_id");
    if (!same_order) return std::nullopt;
    const Index& ix = usable_index(c, p.index_field)->entries;
    std::optional<index::bound> lower = p.lower, upper = p.upper;
    if (p.kind == access::index_equality) lower = upper = index::bound{*p.equals, true};
    if (p.kind == access::index_scan) lower = upper = std::nullopt;

    query_result out;
    std::vector<const mvcc::version*> hits;
    boost::unordered_flat_set<const mvcc::key_entry*> taken;
    bool in_order = true;
    bool full = false;
    const scalar* previous_key = nullptr;
    const mvcc::key_entry* previous_doc = nullptr;
    ++counters.index_lookups;
    ix.for_range_until(lower, upper, index::prefilter{p.schema_version, bound_},
                       [&](const scalar& key, const mvcc::key_entry& doc, commit_id) {
      // The walk must be in (key, _id) order: checked on every entry it yields, including
      // one past the last hit, so a walk that starts out of order is caught too.
      if (previous_key) {
        const auto c = key <=> *previous_key;
        if (c < 0 || (c == 0 && doc.id < previous_doc->id)) {
          in_order = false;
          return false;
        }
      }
      previous_key = &key;
      previous_doc = &doc;
      if (full) return false;
      ++counters.index_candidates;
      ++out.candidates;
      if (taken.contains(&doc)) return true;
      const mvcc::version* v = Database::visibility_cache_policy::find_visible(state_, doc, bound_, counters);
      if (!v || v->tombstone() || v->schema_version != p.schema_version) {
        ++counters.index_false_positives;
        return true;
      }
      const document_view d(v->data.bytes());
      const auto own = query::detail::scalar_at(d, p.index_field);
      if (!own || query::detail::compare_value(*own, key) != 0) {
        ++counters.index_false_positives;  // this entry is not the one of the visible version
        return true;
      }
      if (!query::matches_all(p.predicates, d)) {
        ++counters.index_false_positives;
        return true;
      }
      if (!hits.empty() &&
          query::compare_for_sort(p.order, document_view(hits.back()->data.bytes()), d) >= 0) {
        in_order = false;
        return false;
      }
      hits.push_back(v);
      taken.insert(&doc);
      full = hits.size() >= static_cast<std::size_t>(p.limit);
      return true;
    });
    if (!in_order) {
      // Never silent: counted, and the general path answers the query from scratch.
      ++counters.index_order_fallbacks;
      return std::nullopt;
    }
    out.documents.reserve(hits.size());
    for (const auto* v : hits) out.documents.push_back(make_document(*v, counters));
    out.plan = p;
    return out;
  }

  // Proposes candidates from an index. An index that can pre-filter is told what the
  // query already knows (its schema version and this view's bound) and may skip entries
  // that cannot be in the answer; everything it proposes is still checked in full.
  template <class Index>
  void collect_candidates(const Index& ix, const query::plan& p, read_path_counters& counters,
                          std::vector<const mvcc::key_entry*>& docs) const {
    auto collect = [&](const mvcc::key_entry& doc, commit_id) { docs.push_back(&doc); };
    ++counters.index_lookups;
    const index::prefilter known{p.schema_version, bound_};
    constexpr bool can_prefilter = requires(const Index& i, const index::prefilter& f) {
      i.for_range_prefiltered(std::optional<index::bound>(), std::optional<index::bound>(), f, collect);
      i.for_equal_prefiltered(scalar(), f, collect);
    };
    if constexpr (can_prefilter) {
      if (p.kind == query::plan::access::index_equality)
        ix.for_equal_prefiltered(*p.equals, known, collect);
      else if (p.kind == query::plan::access::index_range)
        ix.for_range_prefiltered(p.lower, p.upper, known, collect);
      else
        ix.for_range_prefiltered(std::nullopt, std::nullopt, known, collect);
    } else {
      if (p.kind == query::plan::access::index_equality)
        ix.for_equal(*p.equals, collect);
      else if (p.kind == query::plan::access::index_range)
        ix.for_range(p.lower, p.upper, collect);
      else
        ix.for_range(std::nullopt, std::nullopt, collect);
    }
    counters.index_candidates += docs.size();
  }

  versioned_document make_document(const mvcc::version& v, read_path_counters& counters) const {
    std::shared_ptr<const mvcc::payload::buffer> bytes;
    if constexpr (Database::visibility_cache_policy::zero_copy) {
      bytes = v.data.shared();
    } else {
      bytes = std::make_shared<const mvcc::payload::buffer>(v.data.bytes().begin(), v.data.bytes().end());
      ++counters.materialization_copies;
    }
    return versioned_document{document(std::move(bytes)), v.schema_version, v.id};
  }

  std::optional<versioned_document> materialize(const mvcc::key_entry& key,
                                                read_path_counters& counters) const {
    const mvcc::version* v =
        Database::visibility_cache_policy::find_visible(state_, key, bound_, counters);
    if (!v || v->tombstone()) return std::nullopt;
    return make_document(*v, counters);
  }

  const Database* db_;
  commit_id bound_;
  mutable typename Database::visibility_cache_policy::view_state state_;
};

}  // namespace aerodb
