// Query property test: random collections (10,000+ documents of mixed types, with
// updates and deletes, and read views held at several CommitIds) and 10,000+ random
// valid queries. Every answer must equal a naive scan-filter-sort-limit oracle over the
// model's state at the view's boundary.
//
// The same test runs with the indexes "absent": an IndexPolicy whose index ignores the
// requested range and proposes every entry it holds. Results must not change, because
// an index may only narrow candidates (SPEC_DIGEST §8).
#include "support/common.hpp"

#include <random>
#include <type_traits>

using namespace aerodb;
using namespace aerodb_test;

namespace {

// Proposes every entry for every lookup: the executor must still answer exactly.
class propose_everything_index {
 public:
  void insert(const scalar& k, const mvcc::key_entry& doc, const mvcc::version& v) { inner_.insert(k, doc, v); }
  void erase(const scalar& k, const mvcc::key_entry& doc, const mvcc::version& v) { inner_.erase(k, doc, v); }
  template <class Fn>
  void for_range(const std::optional<index::bound>&, const std::optional<index::bound>&, Fn&& fn) const {
    inner_.for_range(std::nullopt, std::nullopt, fn);
  }
  template <class Fn>
  void for_equal(const scalar&, Fn&& fn) const {
    inner_.for_range(std::nullopt, std::nullopt, fn);
  }
  std::uint64_t count_range(const std::optional<index::bound>&, const std::optional<index::bound>&) const {
    return inner_.size();
  }
  // A cursor's walk has an exact contract (order, range, resume point), so it is the real one.
  template <class Fn>
  void for_range_after(const std::optional<index::bound>& lower, const std::optional<index::bound>& upper,
                       const std::optional<index::resume_after>& after, commit_id max_version, Fn&& fn) const {
    inner_.for_range_after(lower, upper, after, max_version, fn);
  }
  std::size_t size() const { return inner_.size(); }
  void clear() { inner_.clear(); }

 private:
  index::ordered_field_index inner_;
};

struct no_index_policy {
  template <class V>
  using primary_map = std::map<std::string, V, std::less<>>;
  using field_index = propose_everything_index;
};

using indexes_absent =
    basic_database<policies::fsync_per_commit, policies::full_traversal, no_index_policy>;

const char* fields[] = {"a", "b", "c", "d", "e.f"};
constexpr int field_count = 5;

const char* schema_v1 = R"({"id":"t","version":1,"fields":{
  "_id":{"type":"string","required":true},
  "a":{"type":"int"},"b":{"type":"float"},"c":{"type":"string"},"d":{"type":"bool"},
  "e":{"type":"object","fields":{"f":{"type":"int"}}}}})";
const char* schema_v2 = R"({"id":"t","version":2,"fields":{
  "_id":{"type":"string","required":true},
  "a":{"type":"int","required":true},"b":{"type":"float"},"c":{"type":"string"},"d":{"type":"bool"},
  "e":{"type":"object","fields":{"f":{"type":"int"}}},"g":{"type":"string"}}})";

// The model's view of one document.
struct model_doc {
  std::uint32_t version = 1;
  std::array<std::optional<scalar>, field_count> values;
  std::string json;
};
using model_state = std::map<std::string, model_doc>;

struct generator {
  std::mt19937_64 rng{7};
  std::uint64_t pick(std::uint64_t n) { return rng() % n; }

  std::optional<scalar> value_for(int field) {
    if (pick(6) == 0) return std::nullopt;  // field absent
    switch (field) {
      case 0: return scalar(static_cast<std::int64_t>(pick(200)) - 100);
      case 1:  // floats, some integral (compare equal to ints), some fractional
        return pick(3) == 0 ? scalar(static_cast<double>(static_cast<std::int64_t>(pick(200)) - 100))
                            : scalar(static_cast<double>(static_cast<std::int64_t>(pick(2000)) - 1000) / 8.0);
      case 2: return scalar("s" + std::to_string(pick(300)));
      case 3: return scalar(pick(2) == 1);
      default: return scalar(static_cast<std::int64_t>(pick(50)));
    }
  }

  model_doc document(const std::string& id) {
    model_doc d;
    d.version = pick(4) == 0 ? 2 : 1;
    boost::json::object o;
    o["_id"] = id;
    for (int f = 0; f < field_count; ++f) {
      d.values[static_cast<std::size_t>(f)] = value_for(f);
      if (d.version == 2 && f == 0 && !d.values[0]) d.values[0] = scalar(static_cast<std::int64_t>(1));
      const auto& v = d.values[static_cast<std::size_t>(f)];
      if (!v) continue;
      if (f == 4)
        o["e"] = boost::json::object{{"f", v->to_json()}};
      else
        o[fields[f]] = v->to_json();
    }
    if (d.version == 2 && pick(2)) o["g"] = "extra";
    d.json = boost::json::serialize(o);
    return d;
  }
};

int field_number(const std::string& name) {
  for (int f = 0; f < field_count; ++f)
    if (name == fields[f]) return f;
  return -1;  // "_id"
}

bool oracle_match(query::op o, int field, const scalar& value, const model_doc& d) {
  const auto& v = d.values[static_cast<std::size_t>(field)];
  if (!v) return false;
  const auto c = *v <=> value;
  switch (o) {
    case query::op::eq: return c == 0;
    case query::op::gt: return c > 0;
    case query::op::gte: return c >= 0;
    case query::op::lt: return c < 0;
    case query::op::lte: return c <= 0;
  }
  return false;
}

std::vector<std::string> oracle(const model_state& st, const query::query_spec& q) {
  struct hit {
    const std::string* id;
    std::optional<scalar> id_key;      // set when sorting by _id
    const std::optional<scalar>* key;  // the sort field's value otherwise
  };
  const int sort_field = q.sort ? field_number(q.sort->field) : -1;
  const bool desc = q.sort && q.sort->dir == query::direction::desc;
  std::vector<int> filter_fields;
  for (const auto& p : q.filter) filter_fields.push_back(field_number(p.field));
  std::vector<hit> hits;
  for (const auto& [id, d] : st) {
    if (d.version != q.schema_version) continue;
    bool ok = true;
    for (std::size_t i = 0; ok && i < q.filter.size(); ++i)
      ok = oracle_match(q.filter[i].o, filter_fields[i], q.filter[i].value, d);
    if (!ok) continue;
    if (sort_field < 0)
      hits.push_back({&id, scalar(id), nullptr});
    else
      hits.push_back({&id, std::nullopt, &d.values[static_cast<std::size_t>(sort_field)]});
  }
  auto less = [&](const hit& x, const hit& y) {
    const std::optional<scalar>& kx = x.key ? *x.key : x.id_key;
    const std::optional<scalar>& ky = y.key ? *y.key : y.id_key;
    // Missing values first in ascending order; desc reverses values, never the _id tie-break.
    std::strong_ordering c = std::strong_ordering::equal;
    if (!kx && ky) c = std::strong_ordering::less;
    else if (kx && !ky) c = std::strong_ordering::greater;
    else if (kx && ky) c = *kx <=> *ky;
    if (desc) c = 0 <=> c;
    if (c != 0) return c < 0;
    return *x.id < *y.id;
  };
  const auto keep = std::min(hits.size(), static_cast<std::size_t>(*q.limit));
  std::partial_sort(hits.begin(), hits.begin() + static_cast<std::ptrdiff_t>(keep), hits.end(), less);
  std::vector<std::string> out;
  for (std::size_t i = 0; i < keep; ++i) out.push_back(*hits[i].id);
  return out;
}

query::query_spec random_query(generator& g) {
  query::query_spec q;
  q.collection = "t";
  q.schema_version = g.pick(4) == 0 ? 2 : 1;
  const int n = static_cast<int>(g.pick(3)) + (g.pick(8) == 0 ? 0 : 1);
  for (int i = 0; i < n; ++i) {
    const int f = static_cast<int>(g.pick(field_count));
    std::optional<scalar> v;
    while (!v) v = g.value_for(f);
    // Int and float fields take any number; mix them to exercise cross-type comparison.
    if (f == 0 && g.pick(3) == 0) v = scalar(static_cast<double>(g.pick(200)) / 2.0 - 50);
    const auto o = static_cast<query::op>(g.pick(5));
    // The same operator twice on one field is refused as invalid: keep queries valid.
    if (std::any_of(q.filter.begin(), q.filter.end(),
                    [&](const query::predicate& p) { return p.field == fields[f] && p.o == o; }))
      continue;
    q.filter.push_back({fields[f], o, *v});
  }
  if (g.pick(3) != 0) {
    const int f = static_cast<int>(g.pick(field_count + 1));
    q.sort = query::sort_spec{f == field_count ? "_id" : fields[f],
                              g.pick(2) ? query::direction::asc : query::direction::desc};
  }
  q.limit = 1 + static_cast<std::int64_t>(g.pick(g.pick(4) == 0 ? 2000 : 60));
  return q;
}

// Every engine of a size runs the same seeded workload and the same queries, so the
// oracle's answer to query i is the same for all of them: it is computed once per size
// and query number, and checked against the
// query text, so a drift in the generator would fail loudly rather than compare wrongly.
const std::vector<std::string>& cached_oracle(int documents, int i, const model_state& st,
                                              const query::query_spec& q) {
  static std::map<std::pair<int, int>, std::pair<std::string, std::vector<std::string>>> answers;
  const std::string text = query::to_json(q);
  auto it = answers.find({documents, i});
  if (it == answers.end()) it = answers.emplace(std::pair(documents, i), std::pair(text, oracle(st, q))).first;
  REQUIRE(it->second.first == text);
  return it->second.second;
}

}  // namespace

TEST_CASE_TEMPLATE("random queries equal a scan-filter-sort-limit oracle", Db, AERODB_ENGINES, indexes_absent) {
  const bool long_run = std::getenv("AERODB_LONG") != nullptr;
  // The two ends of the matrix (and the index-free run) get the full size; the six mixed
  // combinations, whose policies the ends already exercise one by one, half the documents
  // and a quarter of the queries (CI time).
  constexpr bool matrix_end = std::is_same_v<Db, engine_per_commit_traversal_ordered> ||
                              std::is_same_v<Db, engine_group_cache_accel> ||
                              std::is_same_v<Db, indexes_absent>;
  const int documents = (long_run ? 50'000 : 10'000) / (matrix_end ? 1 : 2);
  const int queries = (long_run ? 50'000 : static_cast<int>(10'000 * test_scale())) /
                      (matrix_end ? 1 : 4);
  open_options opts;
  opts.fs = std::make_shared<testing::fault_injection_fs>();
  auto db = open_or_fail<Db>("/db", opts);
  REQUIRE(db->register_schema(schema_v1));
  REQUIRE(db->register_schema(schema_v2));
  REQUIRE(db->create_collection("t", "t"));
  for (const char* f : fields) REQUIRE(db->create_index("t", f));

  generator g;
  model_state model;
  std::vector<std::pair<typename Db::read_view, model_state>> views;
  int next_id = 0;
  int writes = 0;
  while (next_id < documents) {
    write_batch b;
    std::set<std::string> touched;
    for (int i = 0; i < 50; ++i) {
      const auto roll = g.pick(10);
      if (roll < 6 || model.empty()) {
        const std::string id = "d" + std::to_string(100000 + next_id++);
        auto d = g.document(id);
        b.insert("t", d.version, d.json);
        model[id] = d;
        touched.insert(id);
      } else {
        auto it = model.begin();
        std::advance(it, static_cast<long>(g.pick(model.size())));
        if (touched.count(it->first)) continue;
        touched.insert(it->first);
        if (roll < 9) {
          auto d = g.document(it->first);
          b.update("t", it->first, d.version, d.json);
          it->second = d;
        } else {
          b.remove("t", it->first);
          model.erase(it);
        }
      }
    }
    auto r = db->commit(b);
    if (!r) FAIL(r.error_value().to_string());
    ++writes;
    if (writes % 40 == 0) views.emplace_back(db->read(), model);
  }
  views.emplace_back(db->read(), model);
  REQUIRE(views.size() >= 4);

  std::uint64_t compared = 0, nonempty = 0, by_access[4] = {0, 0, 0, 0};
  for (int i = 0; i < queries; ++i) {
    const auto q = random_query(g);
    auto& [view, state] = views[static_cast<std::size_t>(i) % views.size()];
    auto got = view.query(q);
    if (!got) FAIL(got.error_value().to_string() << " for " << query::to_json(q));
    std::vector<std::string> ids;
    for (const auto& d : got->documents) ids.emplace_back(d.doc.id());
    const auto& expected = cached_oracle(documents, i, state, q);
    if (ids != expected) {
      FAIL("query " << query::to_json(q) << " at bound " << view.bound() << " returned "
                    << ids.size() << " documents, the oracle " << expected.size());
    }
    // Documents come back exactly as written: the bytes the written text encodes to (the
    // text itself is Boost's, whose numbers the store does not print the same way).
    for (const auto& d : got->documents) {
      const auto written = document_from_json(state.at(std::string(d.doc.id())).json);
      if (!written || !(*written == d.doc)) FAIL("document bytes differ");
    }
    ++compared;
    nonempty += !ids.empty();
    ++by_access[static_cast<int>(got->plan.kind)];
  }
  std::printf("query property: %d documents, %zu read views, %llu queries compared "
              "(%llu non-empty; access paths pk/eq/range/scan = %llu/%llu/%llu/%llu)\n",
              next_id, views.size(), static_cast<unsigned long long>(compared),
              static_cast<unsigned long long>(nonempty), static_cast<unsigned long long>(by_access[0]),
              static_cast<unsigned long long>(by_access[1]), static_cast<unsigned long long>(by_access[2]),
              static_cast<unsigned long long>(by_access[3]));
  CHECK(compared >= static_cast<std::uint64_t>(queries));
  CHECK(nonempty > compared / 4);
  CHECK(by_access[1] > 0);
  CHECK(by_access[2] > 0);
  CHECK(by_access[3] > 0);
}
