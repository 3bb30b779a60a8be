// Read path (docs/optimizations/read_path.md): the per-read-view visibility cache, the
// traversal that stops at the first visible version, and zero-copy materialization.
//   - a read view never sees a decision cached by another view, whatever the order of
//     reads, writes and views;
//   - a cached decision equals a fresh traversal, also after GC ran;
//   - zero-copy reads return the version's own bytes, which stay valid after GC frees it;
//   - the cache limit changes only how many decisions are kept, never an answer.
// These run for every combination, so the baseline answers are checked alongside.
#include "support/common.hpp"

using namespace aerodb;
using namespace aerodb_test;

namespace {

template <class View>
std::string name_of(const View& v, const std::string& id) {
  auto d = v.get("users", id);
  REQUIRE(d);
  if (!d->has_value()) return "<none>";
  return std::string((*d)->doc.view().find("name")->as_string());
}

std::string user(const std::string& id, const std::string& name) {
  return R"({"_id":")" + id + R"(","name":")" + name + R"("})";
}

}  // namespace

TEST_CASE_TEMPLATE("a read view never sees a decision cached by another read view", Db, AERODB_ENGINES) {
  open_options o;
  o.fs = std::make_shared<testing::fault_injection_fs>();
  auto db = open_or_fail<Db>("/db", o);
  setup_users(*db);
  REQUIRE(db->insert("users", 1, user("k", "v1")));
  auto a = db->read();
  CHECK(name_of(a, "k") == "v1");  // a caches "k -> v1"
  REQUIRE(db->update("users", "k", 1, user("k", "v2")));
  auto b = db->read();
  CHECK(name_of(b, "k") == "v2");  // b must not use a's decision
  CHECK(name_of(a, "k") == "v1");  // nor a b's
  REQUIRE(db->remove("users", "k"));
  auto c = db->read();
  CHECK(name_of(c, "k") == "<none>");
  CHECK(name_of(b, "k") == "v2");
  CHECK(name_of(a, "k") == "v1");
  // A view at an older boundary, opened after the others cached their decisions.
  auto old = db->read_at(a.bound());
  REQUIRE(old);
  CHECK(name_of(*old, "k") == "v1");
  // A moved view keeps its own boundary and decisions.
  auto moved = std::move(b);
  CHECK(name_of(moved, "k") == "v2");
  b = std::move(a);  // b now is the old view
  CHECK(name_of(b, "k") == "v1");
  CHECK(name_of(moved, "k") == "v2");
  // Re-inserting the key after the delete: a new view sees it, none of the old ones do.
  REQUIRE(db->insert("users", 1, user("k", "v3")));
  CHECK(name_of(db->read(), "k") == "v3");
  CHECK(name_of(c, "k") == "<none>");
}

TEST_CASE_TEMPLATE("cached decisions equal fresh traversals, before and after GC", Db, AERODB_ENGINES) {
  open_options o;
  o.fs = std::make_shared<testing::fault_injection_fs>();
  auto db = open_or_fail<Db>("/db", o);
  setup_users(*db);
  for (int i = 0; i < 50; ++i) REQUIRE(db->insert("users", 1, user("k" + std::to_string(i), "a")));
  auto held = db->read();
  std::vector<versioned_document> first;
  for (int i = 0; i < 50; ++i) first.push_back(**held.get("users", "k" + std::to_string(i)));
  for (int round = 0; round < 3; ++round)
    for (int i = 0; i < 50; i += 2)
      REQUIRE(db->update("users", "k" + std::to_string(i), 1, user("k" + std::to_string(i), "r" + std::to_string(round))));
  REQUIRE(db->gc());  // held keeps the floor: nothing it sees is freed
  for (int i = 0; i < 50; ++i) {
    auto again = held.get("users", "k" + std::to_string(i));
    REQUIRE(again);
    REQUIRE(again->has_value());
    CHECK((*again)->doc == first[static_cast<std::size_t>(i)].doc);
    CHECK((*again)->committed_at == first[static_cast<std::size_t>(i)].committed_at);
    // A fresh view of the same boundary traverses without any cache.
    auto fresh = db->read_at(held.bound());
    REQUIRE(fresh);
    CHECK((**fresh->get("users", "k" + std::to_string(i))).doc == (*again)->doc);
  }
  // Release the view and collect: documents already handed out stay intact (a zero-copy
  // read shares the bytes; a copying one owns them).
  const std::string before = first[0].doc.to_json_string();
  held = db->read();
  REQUIRE(db->gc());
  CHECK(db->memory().versions == 50);
  CHECK(first[0].doc.to_json_string() == before);
  CHECK(name_of(held, "k0") == "r2");
}

// get() hands out documents that own their bytes. A zero-copy policy shares the version's
// buffer where the memory layout keeps one (the baseline layout); the compact layout keeps
// the bytes in the version's arena block, so get() copies there, and its zero-copy read is
// get_ref (tests/unit/test_memory_layout.cpp).
TEST_CASE("zero-copy reads share the version's bytes where the layout keeps a shared buffer; otherwise get copies") {
  auto check = [](auto tag, bool shares) {
    using Db = typename decltype(tag)::type;
    open_options o;
    o.fs = std::make_shared<testing::fault_injection_fs>();
    auto db = open_or_fail<Db>("/db", o);
    setup_users(*db);
    REQUIRE(db->insert("users", 1, user("k", "v")));
    auto view = db->read();
    const auto before = db->metrics();
    auto x = **view.get("users", "k");
    auto y = **view.get("users", "k");
    const auto after = db->metrics();
    CHECK(x.doc == y.doc);
    CHECK((x.doc.buffer().get() == y.doc.buffer().get()) == shares);
    CHECK(after.read_path_materialization_copies - before.read_path_materialization_copies ==
          (shares ? 0u : 2u));
  };
  check(std::type_identity<database>{}, false);
  check(std::type_identity<accelerated_database>{}, false);           // compact layout
  check(std::type_identity<engine_per_commit_cache_ordered>{}, true);  // view_cache, baseline layout
  check(std::type_identity<engine_per_commit_cache_accel>{}, false);   // compact layout
}

TEST_CASE("the cache answers repeated reads; the baseline walks the chain every time") {
  auto run = [](auto tag) {
    using Db = typename decltype(tag)::type;
    open_options o;
    o.fs = std::make_shared<testing::fault_injection_fs>();
    auto db = open_or_fail<Db>("/db", o);
    setup_users(*db);
    REQUIRE(db->insert("users", 1, user("k", "v0")));
    for (int i = 1; i < 5; ++i) REQUIRE(db->update("users", "k", 1, user("k", "v" + std::to_string(i))));
    auto view = db->read();
    const auto before = db->metrics();
    for (int i = 0; i < 10; ++i) CHECK(name_of(view, "k") == "v4");
    const auto after = db->metrics();
    return std::tuple(after.read_path_version_chain_traversals - before.read_path_version_chain_traversals,
                      after.read_path_cache_hits - before.read_path_cache_hits,
                      after.read_path_versions_visited - before.read_path_versions_visited);
  };
  const auto [bt, bh, bv] = run(std::type_identity<database>{});
  CHECK(bt == 10);
  CHECK(bh == 0);
  CHECK(bv == 50);  // the whole 5-version chain, every time
  const auto [at, ah, av] = run(std::type_identity<accelerated_database>{});
  CHECK(at == 1);
  CHECK(ah == 9);
  CHECK(av == 1);  // stops at the first (newest) version
}

TEST_CASE("a full cache keeps answering correctly; only the first decisions are kept") {
  using small_cache = basic_database<policies::fsync_per_commit, policies::basic_view_cache<4>,
                                     policies::ordered_index>;
  open_options o;
  o.fs = std::make_shared<testing::fault_injection_fs>();
  auto db = open_or_fail<small_cache>("/db", o);
  setup_users(*db);
  for (int i = 0; i < 10; ++i) REQUIRE(db->insert("users", 1, user("k" + std::to_string(i), "n" + std::to_string(i))));
  auto view = db->read();
  const auto before = db->metrics();
  for (int pass = 0; pass < 2; ++pass)
    for (int i = 0; i < 10; ++i) CHECK(name_of(view, "k" + std::to_string(i)) == "n" + std::to_string(i));
  const auto after = db->metrics();
  CHECK(after.read_path_cache_hits - before.read_path_cache_hits == 4);
  CHECK(after.read_path_cache_misses - before.read_path_cache_misses == 16);
}
