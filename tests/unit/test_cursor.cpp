// Cursors and query continuations (query/cursor.hpp, docs/queries.md "Cursors" and
// "Paging"):
//   - paging through a collection, and through index ranges, in random batch sizes under a
//     fixed read view while writers change the store equals the oracle scan of that view
//     (point reads of every possible _id), with no duplicate and no gap;
//   - paging a query with `after` equals the same query's single answer and the oracle;
//   - a batch holds the store's lock only for its call: a write between two batches
//     completes, and the cursor's view does not see it;
//   - bad requests are refused with the state unchanged, and a position resumes under a
//     newer view (keyset paging).
#include "support/common.hpp"

#include <algorithm>
#include <atomic>
#include <random>
#include <set>
#include <thread>

using namespace aerodb;
using namespace aerodb_test;

namespace {

const char* rec_schema = R"({"id":"rec","version":1,"fields":{
  "_id":{"type":"string","required":true},
  "n":{"type":"int"},
  "s":{"type":"string","required":true}}})";

constexpr int universe = 1500;

std::string id_of(int i) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "d%04d", i);
  return buf;
}

// A document whose indexed fields take few values, so ranges and equalities hold many
// documents and a document's update often moves it within an index. About one in eight
// has no `n`.
std::string doc_of(const std::string& id, std::mt19937& rng) {
  std::string j = R"({"_id":")" + id + R"(","s":"s)" + std::to_string(rng() % 9) + "\"";
  if (rng() % 8 != 0) j += R"(,"n":)" + std::to_string(static_cast<int>(rng() % 200) - 50);
  return j + "}";
}

template <class Db>
void setup(Db& db, std::mt19937& rng) {
  REQUIRE(db.register_schema(rec_schema));
  REQUIRE(db.create_collection("recs", "rec"));
  REQUIRE(db.create_index("recs", "n"));
  REQUIRE(db.create_index("recs", "s"));
  for (int batch = 0; batch < universe / 100; ++batch) {
    write_batch b;
    for (int i = batch * 100; i < batch * 100 + 100; ++i)
      if (i % 3 != 0) b.insert("recs", 1, doc_of(id_of(i), rng));
    REQUIRE(db.commit(b));
  }
}

// What the oracle knows of one document of the view.
struct seen {
  std::string id;
  std::optional<std::int64_t> n;
  std::string s;
  std::string bytes;
};

template <class View>
std::vector<seen> oracle(const View& view) {
  std::vector<seen> out;
  for (int i = 0; i < universe; ++i) {
    auto d = view.get("recs", id_of(i));
    REQUIRE(d);
    if (!d->has_value()) continue;
    const auto v = (*d)->doc.view();
    seen x;
    x.id = id_of(i);
    if (auto n = v.find("n")) x.n = n->as_int();
    x.s = std::string(v.find("s")->as_string());
    const auto b = (*d)->doc.bytes();
    x.bytes.assign(reinterpret_cast<const char*>(b.data()), b.size());
    out.push_back(std::move(x));
  }
  return out;
}

std::string bytes_of(const versioned_document& d) {
  const auto b = d.doc.bytes();
  return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}

bool in(const scalar& k, const std::optional<index::bound>& lo, const std::optional<index::bound>& hi) {
  if (lo && (k < lo->value || (k == lo->value && !lo->inclusive))) return false;
  if (hi && (k > hi->value || (k == hi->value && !hi->inclusive))) return false;
  return true;
}

std::int64_t random_batch(std::mt19937& rng) {
  const unsigned r = rng() % 10;
  if (r < 5) return 1 + static_cast<std::int64_t>(rng() % 7);
  if (r < 9) return 1 + static_cast<std::int64_t>(rng() % 60);
  return 1 + static_cast<std::int64_t>(rng() % 700);
}

// Pages through `r` under `view` with a random batch size per call; returns the documents
// in the order handed out, and checks each full batch hands out a position.
template <class View>
std::vector<versioned_document> page_all(const View& view, query::scan_request r, std::mt19937& rng) {
  std::vector<versioned_document> out;
  for (int calls = 0;; ++calls) {
    REQUIRE(calls < 10 * universe);
    r.limit = random_batch(rng);
    auto page = view.scan(r);
    REQUIRE_MESSAGE(page, page.error_value().to_string());
    CHECK(page->documents.size() <= static_cast<std::size_t>(r.limit));
    CHECK(page->next.has_value() == (page->documents.size() == static_cast<std::size_t>(r.limit)));
    for (auto& d : page->documents) out.push_back(std::move(d));
    if (!page->next) return out;
    r.after = page->next;
  }
}

template <class View>
void check_cursors(const View& view, std::mt19937& rng) {
  const auto truth = oracle(view);
  {
    INFO("collection in _id order at CommitId " << view.bound());
    query::scan_request r;
    r.collection = "recs";
    const auto got = page_all(view, r, rng);
    REQUIRE(got.size() == truth.size());
    for (std::size_t i = 0; i < got.size(); ++i) {
      CHECK(got[i].doc.id() == truth[i].id);
      CHECK(bytes_of(got[i]) == truth[i].bytes);
    }
  }
  for (int round = 0; round < 4; ++round) {
    query::scan_request r;
    r.collection = "recs";
    r.field = round % 2 ? "n" : "s";
    const auto key_of = [&](const seen& x) -> std::optional<scalar> {
      if (r.field == "s") return scalar(x.s);
      return x.n ? std::optional<scalar>(scalar(*x.n)) : std::nullopt;
    };
    const auto random_key = [&]() {
      return r.field == "s" ? scalar("s" + std::to_string(rng() % 10))
                            : scalar(static_cast<std::int64_t>(rng() % 220) - 60);
    };
    if (rng() % 4) r.lower = index::bound{random_key(), rng() % 2 == 0};
    if (rng() % 4) r.upper = index::bound{random_key(), rng() % 2 == 0};
    std::vector<std::pair<scalar, std::string>> expected;
    for (const auto& x : truth)
      if (auto k = key_of(x); k && in(*k, r.lower, r.upper)) expected.emplace_back(*k, x.id);
    std::sort(expected.begin(), expected.end());
    INFO("index " << r.field << " at CommitId " << view.bound() << ", " << expected.size() << " expected");
    const auto got = page_all(view, r, rng);
    REQUIRE(got.size() == expected.size());
    for (std::size_t i = 0; i < got.size(); ++i) CHECK(got[i].doc.id() == expected[i].second);
  }
  // Queries paged with `after` (the streamed path on indexes that have it, and the general
  // path), against the oracle's filter-and-sort.
  for (int round = 0; round < 4; ++round) {
    const int shape = static_cast<int>(rng() % 4);
    const std::int64_t lo = static_cast<std::int64_t>(rng() % 150) - 50;
    const std::string s_value = "s" + std::to_string(rng() % 9);
    auto builder = query_builder("recs").version(1);
    std::vector<seen> want;
    for (const auto& x : truth) {
      if (shape == 0 && x.n && *x.n >= lo) want.push_back(x);
      if (shape == 1 && x.n && *x.n >= lo) want.push_back(x);
      if (shape == 2 && x.s == s_value) want.push_back(x);
      if (shape == 3) want.push_back(x);
    }
    if (shape == 0) {
      builder.where("n", query::op::gte, lo).sort_by("n");
      std::stable_sort(want.begin(), want.end(), [](const seen& a, const seen& b) { return *a.n < *b.n; });
    } else if (shape == 1) {
      builder.where("n", query::op::gte, lo).sort_by("n", query::direction::desc);
      std::stable_sort(want.begin(), want.end(), [](const seen& a, const seen& b) { return *a.n > *b.n; });
    } else if (shape == 2) {
      builder.where("s", query::op::eq, s_value);
    } else {
      builder.sort_by("s");
      std::stable_sort(want.begin(), want.end(), [](const seen& a, const seen& b) { return a.s < b.s; });
    }
    INFO("query shape " << shape << " at CommitId " << view.bound() << ", " << want.size() << " expected");
    std::vector<std::string> got;
    std::optional<query::continuation> after;
    for (int calls = 0;; ++calls) {
      REQUIRE(calls <= universe);
      auto spec = builder.spec();
      spec.limit = random_batch(rng);
      spec.after = after;
      auto page = view.query(spec);
      REQUIRE_MESSAGE(page, page.error_value().to_string());
      CHECK(page->next.has_value() == (page->documents.size() == static_cast<std::size_t>(*spec.limit)));
      for (const auto& d : page->documents) got.emplace_back(d.doc.id());
      if (!page->next) break;
      after = page->next;
    }
    REQUIRE(got.size() == want.size());
    for (std::size_t i = 0; i < got.size(); ++i) CHECK(got[i] == want[i].id);
    // The single answer agrees with the pages.
    auto whole = builder.spec();
    whole.limit = query::max_limit;
    auto all = view.query(whole);
    REQUIRE(all);
    REQUIRE(all->documents.size() == got.size());
    for (std::size_t i = 0; i < got.size(); ++i) CHECK(all->documents[i].doc.id() == got[i]);
  }
}

}  // namespace

TEST_CASE_TEMPLATE("paging a collection, index ranges and queries under a fixed view while writers run equals "
                   "the oracle scan of that view, with no duplicate and no gap",
                   Db, AERODB_ENGINES) {
  open_options o;
  o.fs = std::make_shared<testing::fault_injection_fs>();
  auto db = open_or_fail<Db>("/db", o);
  std::mt19937 rng(42);
  setup(*db, rng);
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> writes{0};
  std::vector<std::thread> writers;
  // Stops and joins the writers however the test ends (a failed REQUIRE throws).
  struct joiner {
    std::atomic<bool>& stop;
    std::vector<std::thread>& threads;
    ~joiner() {
      stop = true;
      for (auto& t : threads)
        if (t.joinable()) t.join();
    }
  } join_writers{stop, writers};
  for (int w = 0; w < 2; ++w) {
    writers.emplace_back([&db, &stop, &writes, w] {
      std::mt19937 r(static_cast<unsigned>(100 + w));
      while (!stop.load()) {
        const std::string id = id_of(static_cast<int>(r() % universe));
        const unsigned what = r() % 10;
        if (what < 2) (void)db->remove("recs", id);
        else if (what < 4) (void)db->insert("recs", 1, doc_of(id, r));
        else if (what < 9) (void)db->update("recs", id, 1, doc_of(id, r));
        else (void)db->gc();  // frees only what no open view can see
        writes.fetch_add(1);
      }
    });
  }
  const int rounds = std::max(3, static_cast<int>(12 * test_scale()));
  for (int round = 0; round < rounds; ++round) {
    const auto view = db->read();
    check_cursors(view, rng);
  }
  stop = true;
  for (auto& t : writers) t.join();
  INFO(writes.load() << " writes ran meanwhile");
  CHECK(writes.load() > 0);
  // And once more with the store quiet, over everything the writers left.
  check_cursors(db->read(), rng);
}

TEST_CASE_TEMPLATE("a cursor holds the lock only for a batch: a write between batches completes and the "
                   "cursor's view does not see it",
                   Db, AERODB_ENGINES) {
  open_options o;
  o.fs = std::make_shared<testing::fault_injection_fs>();
  auto db = open_or_fail<Db>("/db", o);
  std::mt19937 rng(7);
  setup(*db, rng);
  const auto view = db->read();
  auto cursor = view.cursor("recs", 10);
  auto first = cursor.next();
  REQUIRE(first);
  REQUIRE(first->size() == 10);
  REQUIRE(cursor.position());
  CHECK(cursor.position()->doc_id == std::string(first->back().doc.id()));
  // d0000 is absent (i % 3 == 0 were never inserted) and sorts before the position; d9999
  // after it. Both writes would wait forever if the cursor held the lock.
  REQUIRE(db->insert("recs", 1, R"({"_id":"d0000","s":"new"})"));
  REQUIRE(db->insert("recs", 1, R"({"_id":"d9999","s":"new"})"));
  std::size_t total = first->size();
  std::set<std::string> ids;
  for (const auto& d : *first) ids.insert(std::string(d.doc.id()));
  while (!cursor.done()) {
    auto batch = cursor.next();
    REQUIRE(batch);
    for (const auto& d : *batch) CHECK(ids.insert(std::string(d.doc.id())).second);
    total += batch->size();
  }
  CHECK(total == static_cast<std::size_t>(universe - universe / 3));
  CHECK(ids.count("d9999") == 0);
  auto after_done = cursor.next();
  REQUIRE(after_done);
  CHECK(after_done->empty());

  // The position resumes under a newer view, which sees the new documents after it.
  query::scan_request r;
  r.collection = "recs";
  r.after = index::resume_after{scalar(std::string("d1000")), "d1000"};
  r.limit = query::max_limit;
  auto rest = db->read().scan(r);
  REQUIRE(rest);
  REQUIRE(!rest->documents.empty());
  CHECK(rest->documents.front().doc.id() > std::string_view("d1000"));
  CHECK(rest->documents.back().doc.id() == std::string_view("d9999"));
  CHECK(!rest->next);
}

TEST_CASE_TEMPLATE("bad cursor requests are refused with clear codes and change nothing", Db, AERODB_ENGINES) {
  open_options o;
  o.fs = std::make_shared<testing::fault_injection_fs>();
  auto db = open_or_fail<Db>("/db", o);
  std::mt19937 rng(9);
  setup(*db, rng);
  const auto before = image_of(*db);
  const auto view = db->read();
  const auto code_of = [&](query::scan_request r) {
    auto page = view.scan(r);
    REQUIRE(!page);
    return page.code();
  };
  query::scan_request r;
  r.collection = "recs";
  r.limit = 0;
  CHECK(code_of(r) == errc::query_invalid);
  r.limit = query::max_limit + 1;
  CHECK(code_of(r) == errc::query_unbounded);
  r.limit = 5;
  r.collection = "nope";
  CHECK(code_of(r) == errc::collection_unknown);
  r.collection = "recs";
  r.field = "nothing_indexed";
  CHECK(code_of(r) == errc::query_unindexed_field);
  r.field = "bad..path";
  CHECK(code_of(r) == errc::query_invalid);
  r.field = "n";
  r.lower = index::bound{scalar(std::numeric_limits<double>::infinity()), true};
  CHECK(code_of(r) == errc::query_invalid);
  r.lower.reset();
  r.after = index::resume_after{scalar(std::int64_t{1}), ""};
  CHECK(code_of(r) == errc::query_invalid);
  // A cursor whose batch fails keeps its position and can be asked again.
  auto bad = view.cursor("nope", 5);
  CHECK(!bad.next());
  CHECK(!bad.done());
  CHECK(image_of(*db) == before);
}

TEST_CASE("a query's continuation has a JSON form that round-trips and is checked like the rest of the query") {
  auto spec = query::parse_query(
      R"({"collection":"recs","schema_version":1,"sort":{"n":"desc"},"limit":5,"after":{"_id":"d0042","value":17}})");
  REQUIRE(spec);
  REQUIRE(spec->after);
  CHECK(spec->after->doc_id == "d0042");
  CHECK(spec->after->value == scalar(std::int64_t{17}));
  CHECK(query::parse_query(query::to_json(*spec)).value() == *spec);
  auto missing = query::parse_query(R"({"collection":"recs","limit":5,"after":{"_id":"x"}})");
  REQUIRE(missing);
  CHECK(!missing->after->value);
  CHECK(query::parse_query(query::to_json(*missing)).value() == *missing);
  const auto refused_at = [](const char* text) {
    auto r = query::parse_query(text);
    REQUIRE(!r);
    CHECK(r.code() == errc::query_invalid);
    return std::string(r.error_value().detail("path"));
  };
  CHECK(refused_at(R"({"collection":"recs","limit":5,"after":3})") == "after");
  CHECK(refused_at(R"({"collection":"recs","limit":5,"after":{}})") == "after._id");
  CHECK(refused_at(R"({"collection":"recs","limit":5,"after":{"_id":""}})") == "after._id");
  CHECK(refused_at(R"({"collection":"recs","limit":5,"after":{"_id":"x","value":[1]}})") == "after.value");
  CHECK(refused_at(R"({"collection":"recs","limit":5,"after":{"_id":"x","other":1}})") == "after.other");
}

TEST_CASE_TEMPLATE("the last page of a query is the first shorter than its limit, and explain shows the "
                   "continuation",
                   Db, AERODB_ENGINES) {
  open_options o;
  o.fs = std::make_shared<testing::fault_injection_fs>();
  auto db = open_or_fail<Db>("/db", o);
  REQUIRE(db->register_schema(rec_schema));
  REQUIRE(db->create_collection("recs", "rec"));
  for (int i = 0; i < 6; ++i) REQUIRE(db->insert("recs", 1, R"({"_id":")" + id_of(i) + R"(","s":"x"})"));
  const auto view = db->read();
  auto spec = query_builder("recs").version(1).limit(3).spec();
  auto p1 = view.query(spec);
  REQUIRE(p1);
  REQUIRE(p1->documents.size() == 3);
  REQUIRE(p1->next);
  CHECK(p1->next->doc_id == "d0002");
  spec.after = p1->next;
  auto p2 = view.query(spec);
  REQUIRE(p2);
  CHECK(p2->documents.size() == 3);
  CHECK(p2->documents.front().doc.id() == std::string_view("d0003"));
  REQUIRE(p2->next);  // a full page: the caller cannot know yet that nothing follows
  spec.after = p2->next;
  auto p3 = view.query(spec);
  REQUIRE(p3);
  CHECK(p3->documents.empty());
  CHECK(!p3->next);
  auto plan = view.explain(spec);
  REQUIRE(plan);
  const auto j = query::explain_json(*plan);
  REQUIRE(j.contains("after"));
  CHECK(j.at("after").at("_id").as_string() == "d0005");
  CHECK(query::explain_text(*plan).find("after _id \"d0005\"") != std::string::npos);
}
