// basic_read_view: a consistent view of a database at one CommitId boundary.
//
// Owns: its bound, its registration in the engine's view registry (engine/gc.hpp: while
// it lives, GC keeps every version it can see), and its VisibilityCachePolicy state.
// Point reads go through the read path (engine/read_path.hpp); queries through the query
// executor (query/executor.hpp); cursors and for_each through the scanner
// (query/cursor.hpp), one bounded batch per call; all over the version store's reader,
// which holds the state lock shared for the length of one call (one batch), never longer.
//
// Thread safety: one thread at a time per view (a caching policy keeps per-view state);
// any number of views may be used by different threads at once. A view must not outlive
// the database that made it: its destructor unregisters it there. With
// AERODB_CHECK_LIFETIMES (engine/gc.hpp; on unless NDEBUG) a database destroyed while
// views are open aborts with a message instead. Documents it hands out (get, query, scan)
// own their bytes and may outlive both; a document_ref (get_ref) borrows them and must not
// outlive the view (document/document_ref.hpp, where the rule and its check are).
#pragma once

#include <aerodb/document/document_ref.hpp>
#include <aerodb/engine/gc.hpp>
#include <aerodb/engine/read_path.hpp>
#include <aerodb/engine/version_store.hpp>
#include <aerodb/metrics.hpp>
#include <aerodb/outcomes.hpp>
#include <aerodb/query/cursor.hpp>
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
template <class View>
class basic_cursor;

template <class Database>
class basic_read_view {
  using visibility_policy = typename Database::visibility_cache_policy;
  using store_type =
      engine::version_store<typename Database::index_policy, typename Database::memory_layout_policy>;
  using path = engine::read_path<visibility_policy>;
  using executor = query::executor<visibility_policy, typename Database::index_policy>;
  using scanner = query::scanner<visibility_policy, typename Database::index_policy>;

 public:
  basic_read_view(basic_read_view&& other) noexcept
      : store_(other.store_),
        views_(std::exchange(other.views_, nullptr)),
        metrics_(other.metrics_),
        bound_(other.bound_),
        state_(std::move(other.state_)),
        life_(std::move(other.life_)) {}
  basic_read_view& operator=(basic_read_view&& other) noexcept {
    if (this != &other) {
      if (views_) views_->close(bound_);
      store_ = other.store_;
      views_ = std::exchange(other.views_, nullptr);
      metrics_ = other.metrics_;
      bound_ = other.bound_;
      state_ = std::move(other.state_);
      life_ = std::move(other.life_);  // the refs this view lent die with it
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

  // The document `doc_id` as of bound(), borrowed: no copy, no allocation, no reference
  // count, under every memory layout. Valid only while this view is open (the rule and its
  // debug check: document/document_ref.hpp); to_document() makes an owning copy.
  result<std::optional<versioned_document_ref>> get_ref(std::string_view collection, std::string_view doc_id) const {
    read_path_counters counters;
    std::optional<versioned_document_ref> out;
    {
      const auto reader = store_->read();
      AERO_TRY_ASSIGN(const auto* c, reader.collection_at(collection, bound_));
      if (const auto* key = c->find_key(doc_id))
        if (const mvcc::version* v = path::visible(state_, *key, bound_, counters); v && !v->tombstone())
          out = versioned_document_ref{document_ref(v->bytes(), life_.lend()), v->schema_version, v->commit};
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

  // One bounded batch of a cursor (query/cursor.hpp): at most r.limit documents of
  // r.collection in the order of index r.field ("_id": the whole collection), from the
  // start or after r.after, with the position to resume after when the batch is full.
  // Holds the state lock shared for this call only.
  result<query::scan_page> scan(const query::scan_request& r) const {
    AERO_TRY(query::detail::check_scan_request(r));
    read_path_counters counters;
    result<query::scan_page> out = [&]() -> result<query::scan_page> {
      const auto reader = store_->read();
      AERO_TRY_ASSIGN(const auto* c, reader.collection_at(r.collection, bound_));
      return scanner(bound_, state_, counters).run(*c, r);
    }();
    metrics_->add(counters);
    return out;
  }

  // A cursor over a whole collection in _id order, or over a key range of an index; see
  // basic_cursor below. It must not outlive this view.
  basic_cursor<basic_read_view> cursor(std::string collection, std::int64_t batch = 100) const {
    query::scan_request r;
    r.collection = std::move(collection);
    r.limit = batch;
    return basic_cursor<basic_read_view>(*this, std::move(r));
  }
  basic_cursor<basic_read_view> cursor(query::scan_request r) const {
    return basic_cursor<basic_read_view>(*this, std::move(r));
  }

  // Calls fn(const versioned_document&) for every visible document, in _id order. Reads
  // the collection in batches of `batch` (one scan each) and calls fn outside the lock, so
  // fn may take its time, and memory stays one batch whatever the collection's size.
  template <class Fn>
  result<std::size_t> for_each(std::string_view collection, Fn&& fn, std::int64_t batch = 1000) const {
    query::scan_request r;
    r.collection = std::string(collection);
    r.limit = batch;
    std::size_t n = 0;
    for (;;) {
      AERO_TRY_ASSIGN(query::scan_page page, scan(r));
      for (const auto& d : page.documents) fn(d);
      n += page.documents.size();
      if (!page.next) return n;
      r.after = std::move(page.next);
    }
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
  mutable detail::view_life life_;  // what the refs it lent check (document_ref.hpp)
};

// Batches of a collection (in _id order) or of an index's key range (in (key, _id) order)
// under one read view: next() hands out the next batch, empty once the cursor is done.
// Each batch is one bounded scan that holds the store's lock for that call only; between
// batches the cursor holds just its position (position(), a resume point that a new cursor
// or scan_request::after takes up, under this view or another).
//
// Thread safety: like its read view, one thread at a time. It must not outlive the view.
template <class View>
class basic_cursor {
 public:
  basic_cursor(const View& view, query::scan_request r) : view_(&view), request_(std::move(r)) {}

  // The next batch (at most the request's limit documents); empty when there are no more.
  // An error (a bad request, an unknown collection or index) leaves the position as it was.
  result<std::vector<versioned_document>> next() {
    if (done_) return std::vector<versioned_document>{};
    AERO_TRY_ASSIGN(query::scan_page page, view_->scan(request_));
    entries_read_ += page.entries_read;
    if (page.next)
      request_.after = std::move(page.next);
    else
      done_ = true;
    return std::move(page.documents);
  }

  bool done() const noexcept { return done_; }
  // Where the next batch starts: empty before the first full batch.
  const std::optional<index::resume_after>& position() const noexcept { return request_.after; }
  // Index entries walked so far, stale ones included (the cursor's cost).
  std::uint64_t entries_read() const noexcept { return entries_read_; }

 private:
  const View* view_;
  query::scan_request request_;
  bool done_ = false;
  std::uint64_t entries_read_ = 0;
};

}  // namespace aerodb
