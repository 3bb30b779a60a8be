// Index damage (INDEX_ACCELERATION §8.3, §14; docs/optimizations/index_acceleration.md):
// removing or corrupting an accelerated index changes no query result.
//   - "dropped": an index that has lost its structure and proposes every entry it holds,
//     for every lookup, ignoring ranges, keys and pre-filters;
//   - "corrupted": an accelerated index that also holds bogus entries — a wrong key for
//     a real document and version, and entries naming versions that do not exist — as
//     in-memory damage would leave them.
// Random queries (equality, ranges, sorts, limits; at the newest boundary and in read
// views held at older ones) must return exactly what the baseline returns.
#include "support/workload.hpp"

#include <aerodb/index/accelerated_field_index.hpp>

#include <random>
#include <tuple>

using namespace aerodb;
using namespace aerodb_test;

namespace {

class dropped_index {
 public:
  void insert(const scalar& k, const mvcc::key_entry& doc, const mvcc::version& v) { inner_.insert(k, doc, v); }
  void erase(const scalar& k, const mvcc::key_entry& doc, const mvcc::version& v) { inner_.erase(k, doc, v); }
  void clear() { inner_.clear(); }
  std::size_t size() const { return inner_.size(); }
  std::uint64_t count_range(const std::optional<index::bound>&, const std::optional<index::bound>&) const {
    return inner_.size();
  }
  template <class Fn>
  void for_range(const std::optional<index::bound>&, const std::optional<index::bound>&, Fn&& fn) const {
    inner_.for_range(std::nullopt, std::nullopt, fn);
  }
  template <class Fn>
  void for_equal(const scalar&, Fn&& fn) const {
    inner_.for_range(std::nullopt, std::nullopt, fn);
  }
  template <class Fn>
  void for_range_prefiltered(const std::optional<index::bound>&, const std::optional<index::bound>&,
                             const index::prefilter&, Fn&& fn) const {
    inner_.for_range(std::nullopt, std::nullopt, fn);
  }
  template <class Fn>
  void for_equal_prefiltered(const scalar&, const index::prefilter&, Fn&& fn) const {
    inner_.for_range(std::nullopt, std::nullopt, fn);
  }
  template <class Fn>
  void for_range_until(const std::optional<index::bound>&, const std::optional<index::bound>&,
                       const index::prefilter& f, Fn&& fn) const {
    // Every entry the query's own pre-filter admits, whatever the range.
    inner_.for_range_until(std::nullopt, std::nullopt, f, fn);
  }
  template <class Fn>
  void for_range_after(const std::optional<index::bound>&, const std::optional<index::bound>&,
                       const std::optional<index::resume_after>&, commit_id max_version, Fn&& fn) const {
    // Every entry, whatever the range and the resume point.
    inner_.for_range_after(std::nullopt, std::nullopt, std::nullopt, max_version, fn);
  }

 private:
  index::accelerated_field_index inner_;
};

// Adds bogus entries next to the real ones, deterministically per (document, version).
class corrupted_index : public index::accelerated_field_index {
 public:
  void insert(const scalar& k, const mvcc::key_entry& doc, const mvcc::version& v) {
    index::accelerated_field_index::insert(k, doc, v);
    if (auto bogus = bogus_key(doc, v)) index::accelerated_field_index::insert(*bogus, doc, v);
  }
  void erase(const scalar& k, const mvcc::key_entry& doc, const mvcc::version& v) {
    index::accelerated_field_index::erase(k, doc, v);
    if (auto bogus = bogus_key(doc, v)) index::accelerated_field_index::erase(*bogus, doc, v);
  }

 private:
  static std::optional<scalar> bogus_key(const mvcc::key_entry& doc, const mvcc::version& v) {
    const auto h = std::hash<std::string>{}(doc.doc_id) ^ (v.commit * 0x9e3779b97f4a7c15ULL);
    if (h % 3 != 0) return std::nullopt;
    if (h % 2) return scalar(static_cast<std::int64_t>((h >> 8) % 100));  // a plausible wrong value
    return scalar("c" + std::to_string((h >> 8) % 7));
  }
};

// Walks its entries in reverse: the executor's order check must notice and fall back.
class reversed_order_index : public index::accelerated_field_index {
 public:
  template <class Fn>
  void for_range_until(const std::optional<index::bound>& lower, const std::optional<index::bound>& upper,
                       const index::prefilter& f, Fn&& fn) const {
    std::vector<std::tuple<scalar, const mvcc::key_entry*, commit_id>> all;
    index::accelerated_field_index::for_range_until(lower, upper, f, [&](const scalar& k, const mvcc::key_entry& d, commit_id v) {
      all.emplace_back(k, &d, v);
      return true;
    });
    for (auto it = all.rbegin(); it != all.rend(); ++it)
      if (!fn(std::get<0>(*it), *std::get<1>(*it), std::get<2>(*it))) return;
  }
};

struct reversed_policy {
  template <class V>
  using primary_map = policies::accelerated_index::primary_map<V>;
  using field_index = reversed_order_index;
};

struct dropped_policy {
  template <class V>
  using primary_map = policies::accelerated_index::primary_map<V>;
  using field_index = dropped_index;
};
struct corrupted_policy {
  template <class V>
  using primary_map = policies::accelerated_index::primary_map<V>;
  using field_index = corrupted_index;
};

using dropped_db = basic_database<policies::group_commit, policies::view_cache, dropped_policy>;
using corrupted_db = basic_database<policies::group_commit, policies::view_cache, corrupted_policy>;
using reversed_db = basic_database<policies::fsync_per_commit, policies::view_cache, reversed_policy>;

std::vector<std::string> random_queries(int n) {
  std::mt19937 rng(5);
  std::vector<std::string> out;
  const char* ops[] = {"$eq", "$gt", "$gte", "$lt", "$lte"};
  for (int i = 0; i < n; ++i) {
    const bool items = rng() % 3 == 0;
    std::string filter;
    std::string sort;
    if (items) {
      filter = R"({"qty":{")" + std::string(ops[rng() % 5]) + R"(":)" + std::to_string(rng() % 50) + "}}";
      if (rng() % 2) sort = rng() % 2 ? R"({"qty":"asc"})" : R"({"_id":"asc"})";
      if (rng() % 4 == 0) sort = R"({"qty":"desc"})";
    } else {
      const unsigned shape = rng() % 4;
      if (shape == 0) filter = R"({"age":)" + std::to_string(rng() % 100) + "}";
      else if (shape == 1) filter = R"({"age":{"$gte":)" + std::to_string(rng() % 100) + R"(,"$lt":)" + std::to_string(rng() % 100) + "}}";
      else if (shape == 2) filter = R"({"address.city":"c)" + std::to_string(rng() % 7) + R"(","age":{")" + ops[rng() % 5] + R"(":)" + std::to_string(rng() % 100) + "}}";
      else filter = "{}";
      const unsigned s = rng() % 5;
      sort = s == 0 ? R"({"age":"asc"})" : s == 1 ? R"({"age":"desc"})" : s == 2 ? R"({"_id":"asc"})" : s == 3 ? R"({"address.city":"asc"})" : "";
    }
    std::string q = std::string(R"({"collection":")") + (items ? "items" : "users") + R"(","schema_version":1,"filter":)" + filter;
    if (!sort.empty()) q += R"(,"sort":)" + sort;
    q += R"(,"limit":)" + std::to_string(1 + rng() % (rng() % 4 == 0 ? 500 : 20)) + "}";
    out.push_back(std::move(q));
  }
  return out;
}

template <class View>
std::string answer(const View& v, const std::string& q) {
  auto r = v.query(q);
  if (!r) return "error " + std::string(r.error_value().name());
  std::string s;
  for (const auto& d : r->documents) s += std::string(d.doc.id()) + "@" + std::to_string(d.committed_at) + ",";
  return s;
}

template <class Db>
std::vector<std::string> answers_of(const mixed_workload& w, const std::vector<std::string>& queries) {
  open_options o;
  o.fs = std::make_shared<testing::fault_injection_fs>();
  auto db = open_or_fail<Db>("/db", o);
  std::vector<typename Db::read_view> held;
  run_steps(*db, w, 0, w.steps.size() / 2, held);
  auto old_view = db->read();
  run_steps(*db, w, w.steps.size() / 2, w.steps.size(), held);
  auto now = db->read();
  std::vector<std::string> out;
  for (const auto& q : queries) {
    out.push_back(answer(now, q));
    out.push_back(answer(old_view, q));
  }
  return out;
}

}  // namespace

TEST_CASE("a dropped or corrupted accelerated index changes no query result") {
  const mixed_workload w = make_mixed_workload(2024, 1500);
  const auto queries = random_queries(static_cast<int>(2000 * test_scale()) + 50);
  const auto expected = answers_of<database>(w, queries);
  std::size_t nonempty = 0;
  for (const auto& a : expected) nonempty += !a.empty() && a.rfind("error", 0) != 0;
  REQUIRE(nonempty > expected.size() / 3);
  const auto accelerated = answers_of<accelerated_database>(w, queries);
  const auto dropped = answers_of<dropped_db>(w, queries);
  const auto corrupted = answers_of<corrupted_db>(w, queries);
  const auto reversed = answers_of<reversed_db>(w, queries);
  for (std::size_t i = 0; i < expected.size(); ++i) {
    INFO("query " << queries[i / 2] << (i % 2 ? " (older view)" : ""));
    REQUIRE(accelerated[i] == expected[i]);
    REQUIRE(dropped[i] == expected[i]);
    REQUIRE(corrupted[i] == expected[i]);
    REQUIRE(reversed[i] == expected[i]);
  }
}

TEST_CASE("the index-order hint stops early; the baseline examines every candidate") {
  const mixed_workload w = make_mixed_workload(2024, 600);
  auto candidates = [&](auto tag) {
    using Db = typename decltype(tag)::type;
    open_options o;
    o.fs = std::make_shared<testing::fault_injection_fs>();
    auto db = open_or_fail<Db>("/db", o);
    std::vector<typename Db::read_view> held;
    run_steps(*db, w, 0, w.steps.size(), held);
    auto r = db->read().query(R"({"collection":"users","schema_version":1,"filter":{"age":{"$gte":10}},"sort":{"age":"asc"},"limit":5})");
    REQUIRE(r);
    REQUIRE(r->documents.size() == 5);
    return r->candidates;
  };
  const auto baseline = candidates(std::type_identity<database>{});
  const auto accelerated = candidates(std::type_identity<accelerated_database>{});
  CHECK(baseline > 100);
  CHECK(accelerated < 20);
}

TEST_CASE("an index that breaks its order makes the executor fall back, visibly") {
  const mixed_workload w = make_mixed_workload(2024, 300);
  open_options o;
  o.fs = std::make_shared<testing::fault_injection_fs>();
  auto db = open_or_fail<reversed_db>("/db", o);
  std::vector<reversed_db::read_view> held;
  run_steps(*db, w, 0, w.steps.size(), held);
  const auto before = db->metrics().index_order_fallbacks;
  auto r = db->read().query(R"({"collection":"users","schema_version":1,"filter":{"age":{"$gte":10}},"sort":{"age":"asc"},"limit":50})");
  REQUIRE(r);
  CHECK(r->documents.size() == 50);
  CHECK(db->metrics().index_order_fallbacks == before + 1);
}
