// accelerated_field_index against the baseline ordered_field_index.
//
// The accelerated index promises the baseline's contract exactly (same entries, same
// order for ranges, same counts), so the main test is differential: a long random
// sequence of inserts and erases applied to both, with every query compared at regular
// checkpoints. The key pool deliberately mixes equal int/float pairs, values beyond 2^53,
// -0.0 and long strings, and the documents include two key_entry objects with the same
// _id, because the baseline identifies an entry by _id (not by address). The randomized
// tests also run with 8-entry blocks, so that a few thousand entries make the block
// splits, merges and removals happen constantly. The optional members the executor
// detects (for_range_prefiltered, for_equal_prefiltered, for_range_until) are checked
// against the baseline filtered by the same rule.
//
// AERODB_SCALE (a fraction in (0, 1]) scales the operation counts down for slow builds.
#include <aerodb/index/accelerated_field_index.hpp>
#include <aerodb/index/field_index.hpp>
#include <aerodb/index/huge_page_allocator.hpp>
#include <aerodb/policies/concepts.hpp>

#include <boost/unordered/unordered_flat_map.hpp>
#include <doctest/doctest.h>

#include "support/scale.hpp"

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

using namespace aerodb;
using index::accelerated_field_index;
using index::basic_accelerated_field_index;
using index::bound;
using index::ordered_field_index;
using index::prefilter;
using index::scalar_hash;
using aerodb::commit_id;

static_assert(policies::field_index_like<accelerated_field_index>);
static_assert(policies::field_index_like<basic_accelerated_field_index<8>>);

namespace {

using tiny_blocks_index = basic_accelerated_field_index<8>;

using aerodb_test::test_scale;

std::size_t scaled(std::size_t n) {
  return std::max<std::size_t>(1, static_cast<std::size_t>(static_cast<double>(n) * test_scale()));
}

using hit = std::pair<const mvcc::key_entry*, commit_id>;
using opt_bound = std::optional<bound>;

template <class Index>
std::vector<hit> range_of(const Index& ix, const opt_bound& lower, const opt_bound& upper) {
  std::vector<hit> out;
  ix.for_range(lower, upper, [&](const mvcc::key_entry& d, commit_id v) { out.emplace_back(&d, v); });
  return out;
}

template <class Index>
std::vector<hit> equal_sorted(const Index& ix, const scalar& key) {
  std::vector<hit> out;
  ix.for_equal(key, [&](const mvcc::key_entry& d, commit_id v) { out.emplace_back(&d, v); });
  std::sort(out.begin(), out.end());
  return out;
}

// A version's schema version, as a function of its document's _id and its CommitId so
// that the oracle can recompute it for any hit. Mostly 1, so that some (schema version,
// key) posting lists grow long.
std::uint32_t schema_of(std::string_view id, commit_id c) {
  const std::uint64_t h = std::hash<std::string_view>{}(id) ^ (c * 0x9e3779b97f4a7c15ULL);
  const std::uint64_t r = (h >> 17) % 10;
  return r < 6 ? 1 : r < 8 ? 2 : 3;
}

// Documents and their versions. Versions are owned by their key_entry's chain.
struct corpus {
  std::vector<std::unique_ptr<mvcc::key_entry>> docs;
  std::vector<const mvcc::version*> versions;  // every version of every document
  std::vector<const mvcc::key_entry*> owner;   // owner[i] holds versions[i]
  commit_id max_commit = 0;
};

// `doc_count` documents with `versions_per_doc` versions each. The last document reuses
// the _id (and so the CommitIds and schema versions) of document 3.
corpus make_corpus(int doc_count, int versions_per_doc) {
  corpus c;
  for (int d = 0; d < doc_count; ++d) {
    const int as = d == doc_count - 1 ? 3 : d;
    c.docs.push_back(std::make_unique<mvcc::key_entry>("doc-" + std::to_string(as)));
    mvcc::key_entry& doc = *c.docs.back();
    // CommitIds overlap across documents (the same CommitId in several chains).
    for (int j = 0; j < versions_per_doc; ++j) {
      const auto id = static_cast<commit_id>(1 + j * 3 + as % 3);
      doc.push(std::make_unique<mvcc::version>(id, schema_of(doc.doc_id, id), mvcc::payload{}));
      c.versions.push_back(&doc.chain.front());
      c.owner.push_back(&doc);
      c.max_commit = std::max(c.max_commit, id);
    }
  }
  return c;
}

std::vector<scalar> key_pool() {
  std::vector<scalar> k;
  k.emplace_back(false);
  k.emplace_back(true);
  for (int i = -3; i <= 5; ++i) k.emplace_back(i);
  constexpr std::int64_t two53 = std::int64_t{1} << 53, two60 = std::int64_t{1} << 60;
  k.emplace_back(two53);
  k.emplace_back(two53 + 1);
  k.emplace_back(two60);
  k.emplace_back(std::numeric_limits<std::int64_t>::min());
  k.emplace_back(std::numeric_limits<std::int64_t>::max());
  for (double d : {-1.0, 0.0, -0.0, 2.0, 3.0, 9007199254740992.0, 1152921504606846976.0, 2.5, -0.5,
                   1e300, -9223372036854775808.0, 9223372036854775808.0, 4.000000000000001})
    k.emplace_back(d);
  for (const char* s : {"", "a", "ab", "b", "zz", "abcdefgh", "abcdefgh\x01", "abcdefghi"}) k.emplace_back(s);
  k.emplace_back(std::string("a\0", 2));  // the same leading bytes as "a", zero-padded
  // Byte 7 differs only in its low bits, and the bytes after it disagree with that order.
  k.emplace_back("abcdefg\x01z");
  k.emplace_back("abcdefg\x02a");
  // The same first fifteen bytes.
  k.emplace_back("0123456789abcdeX");
  k.emplace_back("0123456789abcdeY");
  k.emplace_back(std::string(300, 'x'));
  k.emplace_back(std::string(300, 'x') + "y");
  return k;
}

// Range ends: the pool plus values between and outside its keys.
std::vector<scalar> bound_pool() {
  auto b = key_pool();
  b.emplace_back(2.25);
  b.emplace_back(-100);
  b.emplace_back("aa");
  b.emplace_back(1e-300);
  b.emplace_back(4.5);
  b.emplace_back(std::string(299, 'x'));
  b.emplace_back((std::int64_t{1} << 53) + 2);
  return b;
}

// The baseline and an accelerated index side by side, and the checks that they agree.
template <class Index>
struct pair_under_test {
  ordered_field_index base;
  Index fast;

  void insert(const scalar& k, const mvcc::key_entry& d, const mvcc::version& v) {
    base.insert(k, d, v);
    fast.insert(k, d, v);
  }
  void erase(const scalar& k, const mvcc::key_entry& d, const mvcc::version& v) {
    base.erase(k, d, v);
    fast.erase(k, d, v);
  }

  // The hits a prefilter keeps, in their order.
  static std::vector<hit> kept(std::vector<hit> hits, const prefilter& f) {
    std::erase_if(hits, [&](const hit& h) {
      return !(h.second <= f.bound && schema_of(h.first->doc_id, h.second) == f.schema_version);
    });
    return hits;
  }
  static std::vector<hit> filtered(std::vector<hit> hits, const prefilter& f) {
    hits = kept(std::move(hits), f);
    std::sort(hits.begin(), hits.end());
    return hits;
  }

  void check_range(const opt_bound& lower, const opt_bound& upper, const prefilter& f) const {
    const auto expected = range_of(base, lower, upper);
    REQUIRE(range_of(fast, lower, upper) == expected);
    REQUIRE(fast.count_range(lower, upper) == expected.size());

    std::vector<hit> pre;
    fast.for_range_prefiltered(lower, upper, f, [&](const mvcc::key_entry& d, commit_id v) { pre.emplace_back(&d, v); });
    std::sort(pre.begin(), pre.end());
    REQUIRE(pre == filtered(expected, f));

    check_walk_until(lower, upper, f, expected);
  }

  // for_range_until: exactly the kept entries in the baseline's order, each with its own
  // key, and a walk stopped by fn ends right there.
  void check_walk_until(const opt_bound& lower, const opt_bound& upper, const prefilter& f,
                        const std::vector<hit>& in_range) const {
    const auto expected = kept(in_range, f);
    std::vector<hit> walked;
    std::vector<scalar> keys;
    fast.for_range_until(lower, upper, f, [&](const scalar& k, const mvcc::key_entry& d, commit_id v) {
      walked.emplace_back(&d, v);
      keys.push_back(k);
      return true;
    });
    REQUIRE(walked == expected);
    bool keys_in_order_and_range = true;
    for (std::size_t i = 0; i < keys.size(); ++i) {
      if (i > 0 && keys[i] < keys[i - 1]) keys_in_order_and_range = false;
      if (lower && (lower->inclusive ? keys[i] < lower->value : keys[i] <= lower->value)) keys_in_order_and_range = false;
      if (upper && (upper->inclusive ? upper->value < keys[i] : upper->value <= keys[i])) keys_in_order_and_range = false;
    }
    REQUIRE(keys_in_order_and_range);
    // The reported key is the entry's own: the baseline holds the entry under it.
    for (std::size_t i : {std::size_t{0}, keys.size() / 2, keys.size() - 1}) {
      if (i >= keys.size()) continue;
      const auto under_key = equal_sorted(base, keys[i]);
      REQUIRE(std::binary_search(under_key.begin(), under_key.end(), walked[i]));
    }
    if (walked.empty()) return;
    const std::size_t stop_after = walked.size() / 2 + 1;
    std::vector<hit> prefix;
    fast.for_range_until(lower, upper, f, [&](const scalar&, const mvcc::key_entry& d, commit_id v) {
      prefix.emplace_back(&d, v);
      return prefix.size() < stop_after;
    });
    REQUIRE(prefix == std::vector<hit>(walked.begin(), walked.begin() + static_cast<std::ptrdiff_t>(stop_after)));
  }

  void check_equal(const scalar& key, const prefilter& f) const {
    const auto expected = equal_sorted(base, key);
    REQUIRE(equal_sorted(fast, key) == expected);
    std::vector<hit> pre;
    fast.for_equal_prefiltered(key, f, [&](const mvcc::key_entry& d, commit_id v) { pre.emplace_back(&d, v); });
    std::sort(pre.begin(), pre.end());
    REQUIRE(pre == filtered(expected, f));
  }

  void check_sizes() const {
    REQUIRE(fast.size() == base.size());
    REQUIRE(fast.count_range(std::nullopt, std::nullopt) == base.size());
  }
};

}  // namespace

TEST_CASE("accelerated index: scalar_hash agrees with scalar equality") {
  const scalar_hash h;
  constexpr std::int64_t two53 = std::int64_t{1} << 53, two60 = std::int64_t{1} << 60;
  CHECK(h(scalar(3)) == h(scalar(3.0)));
  CHECK(h(scalar(-7)) == h(scalar(-7.0)));
  CHECK(h(scalar(two60)) == h(scalar(1152921504606846976.0)));
  CHECK(h(scalar(0)) == h(scalar(0.0)));
  CHECK(h(scalar(0.0)) == h(scalar(-0.0)));
  CHECK(h(scalar(std::numeric_limits<std::int64_t>::min())) == h(scalar(-9223372036854775808.0)));
  CHECK(scalar(two53 + 1) != scalar(9007199254740992.0));  // the premise of the next test case
  CHECK(h(scalar(std::string(10000, 'q'))) == h(scalar(std::string(10000, 'q'))));
}

TEST_CASE("accelerated index: equality lookups treat numerically equal keys as one key") {
  corpus c = make_corpus(3, 4);
  accelerated_field_index ix;
  const auto& a = *c.docs[0];
  const auto& b = *c.docs[1];
  const mvcc::version& a1 = *c.versions[0];
  const mvcc::version& a2 = *c.versions[1];
  const mvcc::version& b1 = *c.versions[4];

  SUBCASE("3 and 3.0") {
    ix.insert(scalar(3), a, a1);
    CHECK(equal_sorted(ix, scalar(3.0)) == std::vector<hit>{{&a, a1.commit}});
    ix.insert(scalar(3.0), a, a1);  // the same entry: (3.0, _id, CommitId) == (3, _id, CommitId)
    CHECK(ix.size() == 1);
    ix.insert(scalar(3.0), a, a2);
    ix.insert(scalar(3), b, b1);
    CHECK(equal_sorted(ix, scalar(3)).size() == 3);
    CHECK(equal_sorted(ix, scalar(3.0)) == equal_sorted(ix, scalar(3)));
    std::vector<hit> pre;
    ix.for_equal_prefiltered(scalar(3.0), prefilter{a2.schema_version, a2.commit},
                             [&](const mvcc::key_entry& d, commit_id v) { pre.emplace_back(&d, v); });
    CHECK(std::count(pre.begin(), pre.end(), hit{&a, a2.commit}) == 1);
    ix.erase(scalar(3.0), a, a1);
    ix.erase(scalar(3), a, a2);
    CHECK(equal_sorted(ix, scalar(3.0)) == std::vector<hit>{{&b, b1.commit}});
    ix.erase(scalar(3), a, a2);  // absent: a no-op
    CHECK(ix.size() == 1);
  }

  SUBCASE("int 2^53 + 1 and double 2^53 are different keys") {
    constexpr std::int64_t two53 = std::int64_t{1} << 53;
    ix.insert(scalar(two53 + 1), a, a1);
    CHECK(equal_sorted(ix, scalar(9007199254740992.0)).empty());
    ix.insert(scalar(9007199254740992.0), b, b1);
    CHECK(equal_sorted(ix, scalar(two53)) == std::vector<hit>{{&b, b1.commit}});
    CHECK(equal_sorted(ix, scalar(two53 + 1)) == std::vector<hit>{{&a, a1.commit}});
    CHECK(range_of(ix, std::nullopt, std::nullopt) == std::vector<hit>{{&b, b1.commit}, {&a, a1.commit}});
    CHECK(ix.count_range(bound{scalar(9007199254740992.0), false}, std::nullopt) == 1);
  }

  SUBCASE("-0.0 and 0.0") {
    ix.insert(scalar(-0.0), a, a1);
    CHECK(equal_sorted(ix, scalar(0.0)).size() == 1);
    CHECK(equal_sorted(ix, scalar(0)).size() == 1);
    ix.insert(scalar(0), a, a1);
    CHECK(ix.size() == 1);
    ix.erase(scalar(0.0), a, a1);
    CHECK(ix.size() == 0);
    CHECK(equal_sorted(ix, scalar(-0.0)).empty());
  }

  SUBCASE("large strings, and types that never mix") {
    const std::string big(100000, 's');
    ix.insert(scalar(big), a, a1);
    ix.insert(scalar(big + "t"), b, b1);
    ix.insert(scalar(true), a, a2);
    CHECK(equal_sorted(ix, scalar(std::string(big))) == std::vector<hit>{{&a, a1.commit}});
    CHECK(equal_sorted(ix, scalar(big + "t")) == std::vector<hit>{{&b, b1.commit}});
    CHECK(equal_sorted(ix, scalar(1)).empty());  // true is not 1
    CHECK(equal_sorted(ix, scalar(true)) == std::vector<hit>{{&a, a2.commit}});
    CHECK(range_of(ix, bound{scalar(big), false}, std::nullopt) == std::vector<hit>{{&b, b1.commit}});
  }

  SUBCASE("clear empties both structures") {
    ix.insert(scalar(1), a, a1);
    ix.insert(scalar("x"), b, b1);
    ix.clear();
    CHECK(ix.size() == 0);
    CHECK(equal_sorted(ix, scalar(1)).empty());
    CHECK(range_of(ix, std::nullopt, std::nullopt).empty());
    CHECK(ix.count_range(std::nullopt, std::nullopt) == 0);
    ix.insert(scalar(1), a, a1);
    CHECK(equal_sorted(ix, scalar(1.0)).size() == 1);
  }

  SUBCASE("copies are independent; a moved-from index is empty and usable") {
    for (int i = 0; i < 50; ++i) ix.insert(scalar(i % 7), *c.owner[static_cast<std::size_t>(i) % c.versions.size()],
                                           *c.versions[static_cast<std::size_t>(i) % c.versions.size()]);
    accelerated_field_index copy(ix);
    CHECK(range_of(copy, std::nullopt, std::nullopt) == range_of(ix, std::nullopt, std::nullopt));
    ix.clear();  // the copy owns its keys
    CHECK(equal_sorted(copy, scalar(3)).size() == copy.count_range(bound{scalar(3), true}, bound{scalar(3), true}));
    accelerated_field_index moved(std::move(copy));
    CHECK(copy.size() == 0);  // a moved-from index is empty and usable
    CHECK(range_of(copy, std::nullopt, std::nullopt).empty());
    copy.insert(scalar(1), a, a1);
    CHECK(copy.size() == 1);
    CHECK(moved.size() == moved.count_range(std::nullopt, std::nullopt));
  }
}

TEST_CASE_TEMPLATE("accelerated index: random operations agree with ordered_field_index", Index,
                   accelerated_field_index, tiny_blocks_index) {
  const std::uint64_t seed = 0xae20db;
  CAPTURE(seed);
  std::mt19937_64 rng(seed);
  corpus c = make_corpus(12, 8);
  const auto keys = key_pool();
  const auto ends = bound_pool();
  pair_under_test<Index> t;

  std::uniform_int_distribution<std::size_t> key_pick(0, keys.size() - 1);
  std::uniform_int_distribution<std::size_t> hot_pick(0, 3);  // a few keys get long posting lists
  std::uniform_int_distribution<std::size_t> version_pick(0, c.versions.size() - 1);
  std::uniform_int_distribution<std::size_t> end_pick(0, ends.size() - 1);
  std::uniform_int_distribution<int> percent(0, 99);
  std::uniform_int_distribution<commit_id> commit_pick(0, c.max_commit + 1);
  std::uniform_int_distribution<std::uint32_t> schema_pick(1, 4);  // 4: present in no entry

  const auto random_end = [&]() -> opt_bound {
    if (percent(rng) < 15) return std::nullopt;
    return bound{ends[end_pick(rng)], percent(rng) < 50};
  };
  const auto random_filter = [&] { return prefilter{schema_pick(rng), commit_pick(rng)}; };

  // Insert-heavy, erase-heavy, draining and filling phases, so the index grows, shrinks
  // to (nearly) nothing and regrows: blocks split, merge and disappear.
  const int insert_percent[] = {70, 35, 4, 92, 50};
  // Tiny blocks need fewer operations to go through thousands of splits and merges.
  const std::size_t operations = scaled(Index::block_capacity >= 64 ? 200000 : 30000);
  const std::size_t phase_length = 6000;
  for (std::size_t op = 1; op <= operations; ++op) {
    const int p_insert = insert_percent[(op / phase_length) % std::size(insert_percent)];
    const scalar& key = percent(rng) < 30 ? keys[hot_pick(rng)] : keys[key_pick(rng)];
    const std::size_t vi = version_pick(rng);
    if (percent(rng) < p_insert) {
      t.insert(key, *c.owner[vi], *c.versions[vi]);
    } else {
      t.erase(key, *c.owner[vi], *c.versions[vi]);
    }

    if (op % 1000 != 0 && op != operations) continue;
    CAPTURE(op);
    t.check_sizes();
    for (int r = 0; r < 5; ++r) t.check_range(random_end(), random_end(), random_filter());
    // Degenerate ranges: a point, an exclusive point, reversed ends, everything.
    const scalar& k = ends[end_pick(rng)];
    t.check_range(bound{k, true}, bound{k, true}, random_filter());
    t.check_range(bound{k, false}, bound{k, false}, random_filter());
    t.check_range(bound{k, true}, bound{k, false}, random_filter());
    t.check_range(bound{scalar("zz"), true}, bound{scalar(-3), true}, random_filter());
    if (op % 3000 == 0) t.check_range(std::nullopt, std::nullopt, random_filter());
    for (std::size_t h = 0; h < 4; ++h) t.check_equal(keys[h], random_filter());
    for (int e = 0; e < 8; ++e) t.check_equal(ends[end_pick(rng)], random_filter());
  }
}

TEST_CASE_TEMPLATE("accelerated index: many blocks — ascending, descending and random orders", Index,
                   accelerated_field_index, tiny_blocks_index) {
  std::mt19937_64 rng(11);
  corpus c = make_corpus(4, 3);
  pair_under_test<Index> t;
  const auto n = static_cast<std::int64_t>(scaled(Index::block_capacity >= 64 ? 5000 : 1500));
  std::uniform_int_distribution<std::int64_t> key_pick(-n, 2 * n);
  std::uniform_int_distribution<std::size_t> version_pick(0, c.versions.size() - 1);

  const auto check_some = [&] {
    t.check_sizes();
    for (int r = 0; r < 12; ++r) {
      const std::int64_t x = key_pick(rng), y = x + key_pick(rng) % 300;
      const prefilter f{static_cast<std::uint32_t>(1 + r % 3), static_cast<commit_id>(r % 12)};
      t.check_range(bound{scalar(x), r % 2 == 0}, bound{scalar(static_cast<double>(y) + 0.5), r % 3 == 0}, f);
      t.check_equal(scalar(static_cast<double>(x)), f);
    }
  };

  // Every insert, so that erasing them all must empty the index (inserting a present
  // entry is a no-op, erasing an absent one too).
  std::vector<std::tuple<scalar, const mvcc::key_entry*, const mvcc::version*>> inserted;
  const auto insert = [&](scalar k, std::size_t vi) {
    t.insert(k, *c.owner[vi], *c.versions[vi]);
    inserted.emplace_back(std::move(k), c.owner[vi], c.versions[vi]);
  };

  // Ascending keys take the append path (fresh blocks at the end).
  for (std::int64_t i = 0; i < n; ++i) insert(scalar(i), static_cast<std::size_t>(i) % c.versions.size());
  check_some();
  // Descending keys always land at the front of the first block.
  for (std::int64_t i = -1; i >= -n / 2; --i) insert(scalar(static_cast<double>(i)), version_pick(rng));
  check_some();
  // Random keys, some equal to earlier ones.
  for (std::int64_t i = 0; i < n; ++i) insert(scalar(key_pick(rng)), version_pick(rng));
  check_some();

  // Drain the lowest third in key order (blocks empty one after another, so some are
  // removed rather than merged), then the rest in random order; half the time through
  // the other numeric type (3 for 3.0).
  std::stable_sort(inserted.begin(), inserted.end(),
                   [](const auto& x, const auto& y) { return std::get<0>(x) < std::get<0>(y); });
  const auto third = inserted.begin() + static_cast<std::ptrdiff_t>(inserted.size() / 3);
  std::shuffle(third, inserted.end(), rng);
  std::size_t erased = 0;
  for (const auto& [k, d, v] : inserted) {
    if (erased % 2 == 0 && k.type() == scalar::kind::integer) {
      t.erase(scalar(static_cast<double>(k.as_int())), *d, *v);
    } else {
      t.erase(k, *d, *v);
    }
    if (++erased % 3000 == 0) check_some();
  }
  CHECK(t.fast.size() == 0);
  check_some();
  // An emptied index takes inserts again.
  t.insert(scalar(5), *c.owner[0], *c.versions[0]);
  check_some();
}

// The rebuild's bulk fill (engine/indexer.hpp): entries given in index order between
// begin_bulk_fill and end_bulk_fill make the same index as inserting them one by one;
// and the index then takes erases and inserts like any other (long posting lists get
// their position map at their first removal).
TEST_CASE_TEMPLATE("accelerated index: a bulk fill in index order builds the index inserts build", Index,
                   accelerated_field_index, tiny_blocks_index) {
  std::mt19937_64 rng(29);
  corpus c = make_corpus(40, 6);
  auto keys = key_pool();
  for (std::int64_t i = 0; i < 300; ++i) keys.emplace_back(i * 7);  // many single-posting keys
  // Every (key, version) pair, some keys many times (long lists), in index order: key,
  // then _id, then CommitId.
  std::vector<std::tuple<scalar, const mvcc::key_entry*, const mvcc::version*>> entries;
  std::uniform_int_distribution<std::size_t> key_pick(0, keys.size() - 1);
  for (std::size_t vi = 0; vi < c.versions.size(); ++vi) {
    entries.emplace_back(keys[vi % 3], c.owner[vi], c.versions[vi]);  // three hot keys
    entries.emplace_back(keys[key_pick(rng)], c.owner[vi], c.versions[vi]);
  }
  const auto before = [](const auto& x, const auto& y) {
    if (const auto cmp = std::get<0>(x) <=> std::get<0>(y); cmp != 0) return cmp < 0;
    if (std::get<1>(x)->doc_id != std::get<1>(y)->doc_id) return std::get<1>(x)->doc_id < std::get<1>(y)->doc_id;
    return std::get<2>(x)->commit < std::get<2>(y)->commit;
  };
  std::sort(entries.begin(), entries.end(), before);

  const auto check_all = [&](pair_under_test<Index>& t) {
    t.check_sizes();
    t.check_range(std::nullopt, std::nullopt, prefilter{1, c.max_commit});
    for (const auto& k : keys) t.check_equal(k, prefilter{static_cast<std::uint32_t>(1 + key_pick(rng) % 3), c.max_commit});
    for (int r = 0; r < 20; ++r) {
      const scalar& a = keys[key_pick(rng)];
      t.check_range(bound{a, true}, std::nullopt, prefilter{2, c.max_commit / 2});
    }
  };

  SUBCASE("in order") {
    pair_under_test<Index> t;
    t.fast.begin_bulk_fill(entries.size());
    for (const auto& [k, d, v] : entries) t.insert(k, *d, *v);
    t.fast.end_bulk_fill();
    check_all(t);
    // Erase half of every list, the hot ones included, then insert some back.
    std::vector<std::size_t> order(entries.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::shuffle(order.begin(), order.end(), rng);
    for (std::size_t i = 0; i < order.size() / 2; ++i) {
      const auto& [k, d, v] = entries[order[i]];
      t.erase(k, *d, *v);
    }
    check_all(t);
    for (std::size_t i = 0; i < order.size() / 4; ++i) {
      const auto& [k, d, v] = entries[order[i]];
      t.insert(k, *d, *v);
    }
    check_all(t);
  }
  SUBCASE("a key out of order ends the bulk fill early, with the same result") {
    pair_under_test<Index> t;
    t.fast.begin_bulk_fill(entries.size());
    const std::size_t half = entries.size() / 2;
    for (std::size_t i = half; i < entries.size(); ++i) t.insert(std::get<0>(entries[i]), *std::get<1>(entries[i]), *std::get<2>(entries[i]));
    for (std::size_t i = 0; i < half; ++i) t.insert(std::get<0>(entries[i]), *std::get<1>(entries[i]), *std::get<2>(entries[i]));
    t.fast.end_bulk_fill();
    check_all(t);
  }
  SUBCASE("a bulk fill asked of an index that holds entries is an ordinary fill") {
    pair_under_test<Index> t;
    const std::size_t half = entries.size() / 2;
    for (std::size_t i = 0; i < half; ++i) t.insert(std::get<0>(entries[i]), *std::get<1>(entries[i]), *std::get<2>(entries[i]));
    t.fast.begin_bulk_fill(entries.size());
    // Every entry again (the first half is present, a no-op), then the rest.
    for (const auto& [k, d, v] : entries) t.insert(k, *d, *v);
    t.fast.end_bulk_fill();
    check_all(t);
  }
  SUBCASE("numerically equal keys of both kinds share one list") {
    pair_under_test<Index> t;
    t.fast.begin_bulk_fill(2);
    t.insert(scalar(3), *c.owner[0], *c.versions[0]);
    t.insert(scalar(3.0), *c.owner[6], *c.versions[6]);
    t.insert(scalar(3), *c.owner[12], *c.versions[12]);
    t.fast.end_bulk_fill();
    check_all(t);
    CHECK(equal_sorted(t.fast, scalar(3.0)).size() == 3);
  }
}

// W8 inserts a write batch's entries in index order with a hint (the place after the
// previous insert). A hint is only a guess: stale hints (after erases, splits, or from
// another run of keys entirely), hints past a block's end and duplicates must all leave
// the index the baseline builds with plain inserts.
TEST_CASE_TEMPLATE("accelerated index: hinted inserts build the index plain inserts build", Index,
                   accelerated_field_index, tiny_blocks_index) {
  std::mt19937_64 rng(41);
  corpus c = make_corpus(60, 5);
  auto keys = key_pool();
  std::uniform_int_distribution<std::size_t> key_pick(0, keys.size() - 1);
  using entry = std::tuple<scalar, const mvcc::key_entry*, const mvcc::version*>;
  const auto before = [](const entry& x, const entry& y) {
    if (const auto cmp = std::get<0>(x) <=> std::get<0>(y); cmp != 0) return cmp < 0;
    if (std::get<1>(x)->doc_id != std::get<1>(y)->doc_id) return std::get<1>(x)->doc_id < std::get<1>(y)->doc_id;
    return std::get<2>(x)->commit < std::get<2>(y)->commit;
  };
  // Batches of entries, each sorted (as W8 sorts them), on a few hot keys and many cold.
  std::vector<std::vector<entry>> batches(12);
  for (std::size_t vi = 0; vi < c.versions.size(); ++vi) {
    auto& b = batches[vi % batches.size()];
    b.emplace_back(keys[vi % 4], c.owner[vi], c.versions[vi]);
    b.emplace_back(keys[key_pick(rng)], c.owner[vi], c.versions[vi]);
  }
  for (auto& b : batches) std::sort(b.begin(), b.end(), before);

  pair_under_test<Index> t;
  const auto check_all = [&] {
    t.check_sizes();
    t.check_range(std::nullopt, std::nullopt, prefilter{1, c.max_commit});
    for (const auto& k : keys) t.check_equal(k, prefilter{static_cast<std::uint32_t>(1 + key_pick(rng) % 3), c.max_commit});
  };
  typename Index::insert_hint kept_across_batches{};
  std::size_t n = 0;
  for (auto& b : batches) {
    typename Index::insert_hint hint{};
    // Every third batch reuses the hint the batch before it left (stale by then).
    if (n % 3 == 2) hint = kept_across_batches;
    for (const auto& [k, d, v] : b) {
      t.base.insert(k, *d, *v);
      t.fast.insert(k, *d, *v, hint);
    }
    // The first entry again: present, a no-op with or without the hint.
    t.base.insert(std::get<0>(b.front()), *std::get<1>(b.front()), *std::get<2>(b.front()));
    t.fast.insert(std::get<0>(b.front()), *std::get<1>(b.front()), *std::get<2>(b.front()), hint);
    kept_across_batches = hint;
    // Erase a random third of this batch, which moves entries under every hint.
    for (const auto& [k, d, v] : b)
      if (rng() % 3 == 0) t.erase(k, *d, *v);
    check_all();
    ++n;
  }
  // A hint naming a block that does not exist, or an offset past the end, is ignored.
  typename Index::insert_hint wild{};
  wild.block = 1u << 20;
  wild.offset = 3;
  const auto& [k0, d0, v0] = batches[0][0];
  t.base.insert(k0, *d0, *v0);
  t.fast.insert(k0, *d0, *v0, wild);
  wild.block = 0;
  wild.offset = 1u << 20;
  const auto& [k1, d1, v1] = batches[1][1];
  t.base.insert(k1, *d1, *v1);
  t.fast.insert(k1, *d1, *v1, wild);
  check_all();
}

// The allocator of the large hash tables: big requests are mapped 2 MiB-aligned (so the
// kernel can back them with huge pages), small ones come from the heap, and a table that
// grows across the boundary keeps every element.
TEST_CASE("huge_page_allocator: large blocks are 2 MiB-aligned and usable, small ones come from the heap") {
  using index::huge_page_allocator;
  huge_page_allocator<std::uint64_t> a;
  const std::size_t big = (std::size_t{3} << 20) / sizeof(std::uint64_t);  // 3 MiB
  std::uint64_t* p = a.allocate(big);
  CHECK(reinterpret_cast<std::uintptr_t>(p) % huge_page_allocator<std::uint64_t>::huge_page == 0);
  for (std::size_t i = 0; i < big; ++i) p[i] = i * 3;
  bool intact = true;
  for (std::size_t i = 0; i < big; ++i) intact = intact && p[i] == i * 3;
  CHECK(intact);
  a.deallocate(p, big);

  std::uint64_t* small = a.allocate(16);
  small[15] = 7;
  CHECK(small[15] == 7);
  a.deallocate(small, 16);
  CHECK_THROWS_AS(a.allocate(std::numeric_limits<std::size_t>::max() / 4), std::bad_array_new_length);
  CHECK(a == huge_page_allocator<char>{});

  boost::unordered_flat_map<std::uint64_t, std::uint64_t, boost::hash<std::uint64_t>, std::equal_to<>,
                            huge_page_allocator<std::pair<const std::uint64_t, std::uint64_t>>>
      m;
  const std::uint64_t n = 300000;  // well past 2 MiB of slots
  for (std::uint64_t i = 0; i < n; ++i) m.emplace(i, ~i);
  std::uint64_t found = 0;
  for (std::uint64_t i = 0; i < n; ++i) found += m.count(i) == 1 && m.at(i) == ~i ? 1 : 0;
  CHECK(found == n);
}
