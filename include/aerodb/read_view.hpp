// basic_read_view: a consistent view of a database at one CommitId boundary.
//
// Owns: its bound, its registration in the engine's view registry (engine/gc.hpp: while
// it lives, GC keeps every version it can see), and its VisibilityCachePolicy state.
// Point reads and scans go through the read path (engine/read_path.hpp); queries through
// the query executor (query/executor.hpp); both over the version store's reader, which
// holds the state lock shared for the length of one call.
//
// Thread safety: one thread at a time per view (a caching policy keeps per-view state);
// any number of views may be used by different threads at once. A view must not outlive
// the database that made it.
#pragma once

#include <aerodb/engine/gc.hpp>
#include <aerodb/engine/read_path.hpp>
#include <aerodb/engine/version_store.hpp>
#include <aerodb/metrics.hpp>
#include <aerodb/outcomes.hpp>
#include <aerodb/query/executor.hpp>
#include <aerodb/query/parse.hpp>
#include <aerodb/query/plan.hpp>

#include <algorithm>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

namespace aerodb {

// A consistent view of the database at one CommitId boundary (SPEC_DIGEST §5): it sees
// exactly the commits with CommitId <= bound(), for as long as it lives.
template <class Database>
class basic_read_view {
  using visibility_policy = typename Database::visibility_cache_policy;
  using store_type = engine::version_store<typename Database::index_policy>;
  using path = engine::read_path<visibility_policy>;
  using executor = query::executor<visibility_policy, typename Database::index_policy>;

 public:
  basic_read_view(basic_read_view&& other) noexcept
      : store_(other.store_),
        views_(std::exchange(other.views_, nullptr)),
        metrics_(other.metrics_),
        bound_(other.bound_),
        state_(std::move(other.state_)) {}
  basic_read_view& operator=(basic_read_view&& other) noexcept {
    if (this != &other) {
      if (views_) views_->close(bound_);
      store_ = other.store_;
      views_ = std::exchange(other.views_, nullptr);
      metrics_ = other.metrics_;
      bound_ = other.bound_;
      state_ = std::move(other.state_);
    }
    return *this;
  }
  basic_read_view(const basic_read_view&) = delete;
  ~basic_read_view() {
    if (views_) views_->close(bound_);
  }

  commit_id bound() const noexcept { return bound_; }

  // The document `doc_id` as of bound(), or nothing when absent or deleted.
  result<std::optional<versioned_document>> get(std::string_view collection, std::string_view doc_id) const {
    read_path_counters counters;
    std::optional<versioned_document> out;
    {
      const auto reader = store_->read();
      AERO_TRY_ASSIGN(const auto* c, reader.collection_at(collection, bound_));
      if (const auto* key = c->find_key(doc_id)) out = path::materialize(state_, *key, bound_, counters);
    }
    metrics_->add(counters);
    return out;
  }

  // Runs a bounded query at this view's boundary (docs/queries.md). Every predicate and
  // the visibility of every candidate are checked against the version this view sees; an
  // index only proposes candidates.
  result<query_result> query(const query::query_spec& spec) const {
    read_path_counters counters;
    result<query_result> out = [&]() -> result<query_result> {
      const auto reader = store_->read();
      AERO_TRY_ASSIGN(const auto* c, reader.collection_at(spec.collection, bound_));
      const executor run(reader, bound_, state_, counters);
      AERO_TRY_ASSIGN(query::plan p, run.plan_for(*c, spec));
      return run.execute(*c, std::move(p));
    }();
    metrics_->add(counters);
    return out;
  }
  result<query_result> query(std::string_view json) const {
    AERO_TRY_ASSIGN(query::query_spec spec, query::parse_query(json));
    return query(spec);
  }

  // The plan a query would run, with its index and max_scan bound, without running it.
  result<query::plan> explain(const query::query_spec& spec) const {
    read_path_counters unused;
    const auto reader = store_->read();
    AERO_TRY_ASSIGN(const auto* c, reader.collection_at(spec.collection, bound_));
    return executor(reader, bound_, state_, unused).plan_for(*c, spec);
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
      const auto reader = store_->read();
      AERO_TRY_ASSIGN(const auto* c, reader.collection_at(collection, bound_));
      // Sorted by the primary map's keys while they are pinned by the lock: asking each
      // document for its _id would decode it on every comparison.
      std::vector<std::pair<std::string_view, versioned_document>> keyed;
      for (const auto& [doc_id, key] : c->keys)
        if (auto d = path::materialize(state_, *key, bound_, counters)) keyed.emplace_back(doc_id, std::move(*d));
      std::sort(keyed.begin(), keyed.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
      docs.reserve(keyed.size());
      for (auto& k : keyed) docs.push_back(std::move(k.second));
    }
    metrics_->add(counters);
    for (const auto& d : docs) fn(d);
    return docs.size();
  }

 private:
  friend Database;
  // REQUIRES: `bound` already registered in `views` (the database opens views through
  // the registry, which checks the bound under its lock).
  basic_read_view(const store_type& store, engine::view_registry& views, metrics_registry& metrics,
                  commit_id bound)
      : store_(&store), views_(&views), metrics_(&metrics), bound_(bound) {}

  const store_type* store_;
  engine::view_registry* views_;  // null once moved from
  metrics_registry* metrics_;
  commit_id bound_;
  mutable typename visibility_policy::view_state state_;
};

}  // namespace aerodb
