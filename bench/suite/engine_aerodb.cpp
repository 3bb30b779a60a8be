// AeroDB's instantiations behind the suite's engine interface: `aerodb::database`
// (baseline), `aerodb::accelerated_database`, and group commit alone (`group_commit`:
// the baseline with only its fsync policy swapped, for the commit workloads). Documents live in one collection, "docs",
// under a strict schema; the secondary indexes are `create_index` on bucket and score.
#include "engine.hpp"
#include "suite_util.hpp"

#include <aerodb/aerodb.hpp>

#include <atomic>

namespace bench {
namespace {

constexpr const char* doc_schema = R"({"id":"doc","version":1,"fields":{
  "_id":{"type":"string","required":true},
  "bucket":{"type":"int","required":true},
  "score":{"type":"float","required":true},
  "body":{"type":"string","required":true}}})";

template <class T>
T need(aerodb::result<T> r, const char* what) {
  if (!r) throw failure(std::string("aerodb ") + what + ": " + r.error_value().to_string());
  return std::move(r).value();
}

template <class Db>
class aerodb_view final : public reader {
 public:
  explicit aerodb_view(const Db& db) : db_(db), view_(db.read()) {}

  // A point read looks at the bytes and lets them go before the view moves on: the
  // borrowed read (get_ref: no copy, no reference count, under every memory layout).
  bool get(std::string_view id, std::uint64_t& sink) override {
    auto r = view_.get_ref("docs", id);
    if (!r) throw failure("aerodb get: " + r.error_value().to_string());
    if (!*r) return false;
    const auto bytes = (*r)->doc.bytes();
    sink += bytes.size() + (bytes.size() ? static_cast<std::uint64_t>(bytes[bytes.size() - 1]) : 0u);
    return true;
  }

  query_answer query(const query_request& q, std::uint64_t& sink) override {
    using aerodb::query::op;
    aerodb::query_builder b("docs");
    b.version(1);
    switch (q.shape) {
      case query_shape::eq_by_id:
      case query_shape::eq_by_id_top:
        b.where("bucket", op::eq, q.bucket).sort_by("_id");
        break;
      case query_shape::range_by_id:
        b.where("score", op::gte, q.low).where("score", op::lt, q.high);
        break;
      case query_shape::range_by_score_top:
        b.where("score", op::gte, q.low).where("score", op::lt, q.high).sort_by("score");
        break;
    }
    b.limit(q.limit);
    auto r = view_.query(std::move(b).spec());
    if (!r) throw failure("aerodb query: " + r.error_value().to_string());
    query_answer a;
    for (const auto& d : r->documents) {
      const auto bytes = d.doc.bytes();
      sink += bytes.size();
      fingerprint_add(a, d.doc.id());
    }
    return a;
  }

  void refresh() override { view_ = db_.read(); }

 private:
  const Db& db_;
  typename Db::read_view view_;
};

template <class Db>
class aerodb_engine final : public engine {
 public:
  explicit aerodb_engine(std::string name) : name_(std::move(name)) {}
  std::string name() const override { return name_; }

  void open(const std::string& dir, bool create, bool indexed) override {
    db_ = need(Db::open(dir), "open");
    if (create) {
      need(db_->register_schema(doc_schema), "register_schema");
      need(db_->create_collection("docs", "doc"), "create_collection");
      if (indexed) {
        need(db_->create_index("docs", "bucket"), "create_index bucket");
        need(db_->create_index("docs", "score"), "create_index score");
      }
    }
  }
  void insert(const document& d) override { need(db_->insert("docs", 1, d.json), "insert"); }
  void update(const document& d) override { need(db_->update("docs", d.id, 1, d.json), "update"); }
  void insert_batch(const std::vector<document>& docs, std::size_t begin, std::size_t end) override {
    aerodb::write_batch b;
    for (std::size_t i = begin; i < end; ++i) b.insert("docs", 1, docs[i].json);
    need(db_->commit(b), "commit");
  }
  std::unique_ptr<reader> read() override { return std::make_unique<aerodb_view<Db>>(*db_); }
  bool checkpoint() override {
    need(db_->checkpoint(), "checkpoint");
    return true;
  }
  std::int64_t syncs() const override {
    return static_cast<std::int64_t>(db_->metrics().group_commit_fsync_count);
  }
  std::string counters_json() const override {
    const auto seconds = [](std::chrono::nanoseconds d) { return std::to_string(static_cast<double>(d.count()) / 1e9); };
    const auto m = db_->metrics();
    const auto mem = db_->memory();
    return "{\"group_commit_groups\":" + std::to_string(m.group_commit_groups) +
           ",\"group_commit_size_sum\":" + std::to_string(m.group_commit_size_sum) +
           ",\"group_commit_fsync_count\":" + std::to_string(m.group_commit_fsync_count) +
           ",\"read_path_versions_visited\":" + std::to_string(m.read_path_versions_visited) +
           ",\"read_path_version_chain_traversals\":" + std::to_string(m.read_path_version_chain_traversals) +
           ",\"versions\":" + std::to_string(mem.versions) + ",\"document_bytes\":" + std::to_string(mem.document_bytes) +
           ",\"arena_bytes_in_use\":" + std::to_string(mem.arena_bytes_in_use) +
           ",\"arena_bytes_reserved\":" + std::to_string(mem.arena_bytes_reserved) +
           ",\"wal_bytes\":" + std::to_string(m.wal_bytes) +
           ",\"index_order_fallbacks\":" + std::to_string(m.index_order_fallbacks) +
           ",\"index_candidate_count\":" + std::to_string(m.index_candidate_count) +
           ",\"index_rebuild_count\":" + std::to_string(m.index_rebuild_count) +
           ",\"index_rebuild_seconds\":" + std::to_string(static_cast<double>(m.index_rebuild_duration.count()) / 1e9) +
           ",\"recovery_seconds\":" + seconds(db_->recovery().duration) +
           ",\"recovery_snapshot_read_seconds\":" + seconds(db_->recovery().snapshot_read) +
           ",\"recovery_snapshot_seconds\":" + seconds(db_->recovery().snapshot_load) +
           ",\"recovery_log_seconds\":" + seconds(db_->recovery().log_replay) +
           ",\"recovery_cleanup_seconds\":" + seconds(db_->recovery().cleanup) +
           ",\"recovery_index_seconds\":" + seconds(db_->recovery().index_build) + "}";
  }
  void close() override { db_.reset(); }

 private:
  std::string name_;
  std::unique_ptr<Db> db_;
};

}  // namespace

std::unique_ptr<engine> make_aerodb_baseline() { return std::make_unique<aerodb_engine<aerodb::database>>("baseline"); }
std::unique_ptr<engine> make_aerodb_group_commit() {
  using group_commit_database = aerodb::basic_database<aerodb::policies::group_commit, aerodb::policies::full_traversal,
                                                       aerodb::policies::ordered_index>;
  return std::make_unique<aerodb_engine<group_commit_database>>("group_commit");
}
std::unique_ptr<engine> make_aerodb_accelerated() {
  return std::make_unique<aerodb_engine<aerodb::accelerated_database>>("accelerated");
}

}  // namespace bench
