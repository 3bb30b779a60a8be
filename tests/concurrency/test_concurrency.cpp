// Concurrency: writers, batch writers, readers and GC at once (run under ThreadSanitizer in
// CI). Readers check the read-view contract while the writers run:
//   - every commit acknowledged before a view was opened is visible in it;
//   - nothing above its bound is visible, and an atomic batch is seen whole or not at all;
//   - each writer's inserts are seen as a prefix (CommitIds follow acknowledgment order);
//   - reading the same view again gives the same answer.
#include "support/common.hpp"

#include <aerodb/detail/share_work.hpp>

#include <atomic>
#include <numeric>
#include <stdexcept>
#include <thread>

using namespace aerodb;
using namespace aerodb_test;

TEST_CASE_TEMPLATE("readers and writers at once keep the read-view contract", Db, AERODB_ENGINES) {
  constexpr int writers = 4;
  constexpr int per_writer = 150;
  constexpr int batch_pairs = 100;
  auto fs = std::make_shared<testing::fault_injection_fs>();
  open_options opts;
  opts.fs = fs;
  auto db = open_or_fail<Db>("/db", opts);
  setup_users(*db);
  REQUIRE(db->register_schema(item_schema_v1));
  REQUIRE(db->create_collection("items", "item"));

  // acked[w] = how many of writer w's inserts have been acknowledged.
  std::array<std::atomic<int>, writers> acked{};
  std::atomic<int> pairs_acked{0};
  std::atomic<bool> done{false};
  std::atomic<int> violations{0};
  std::atomic<long> views_checked{0};

  std::vector<std::thread> threads;
  for (int w = 0; w < writers; ++w) {
    threads.emplace_back([&, w] {
      for (int i = 0; i < per_writer; ++i) {
        const std::string id = "w" + std::to_string(w) + "-" + std::to_string(1000 + i);
        auto r = db->insert("users", 1, R"({"_id":")" + id + R"(","name":"n","age":)" +
                                            std::to_string(i) + "}");
        if (!r) ++violations;
        acked[static_cast<std::size_t>(w)].store(i + 1, std::memory_order_release);
        if (i % 10 == 9) {
          auto u = db->update("users", id, 1, R"({"_id":")" + id + R"(","name":"updated"})");
          if (!u) ++violations;
        }
      }
    });
  }
  threads.emplace_back([&] {
    for (int i = 0; i < batch_pairs; ++i) {
      write_batch b;
      const std::string n = std::to_string(1000 + i);
      b.insert("users", 1, R"({"_id":"pair-)" + n + R"(","name":"p"})")
          .insert("items", 1, R"({"_id":"pair-)" + n + R"(","qty":1})");
      if (!db->commit(b)) ++violations;
      pairs_acked.store(i + 1, std::memory_order_release);
    }
  });

  auto reader = [&] {
    while (!done.load(std::memory_order_acquire)) {
      std::array<int, writers> floor{};
      for (int w = 0; w < writers; ++w)
        floor[static_cast<std::size_t>(w)] = acked[static_cast<std::size_t>(w)].load(std::memory_order_acquire);
      const int pairs_floor = pairs_acked.load(std::memory_order_acquire);
      auto view = db->read();

      std::array<int, writers> seen{};
      int pairs_in_users = 0, pairs_in_items = 0;
      bool prefix_ok = true;
      auto n = view.for_each("users", [&](const versioned_document& d) {
        if (d.committed_at > view.bound()) ++violations;
        const std::string_view id = d.doc.id();
        if (id.substr(0, 5) == "pair-") {
          ++pairs_in_users;
          return;
        }
        const auto w = static_cast<std::size_t>(id[1] - '0');
        const int i = std::stoi(std::string(id.substr(3))) - 1000;
        // for_each is in _id order, and the numbers have equal width: a prefix means
        // the i-th document seen is number i.
        if (i != seen[w]) prefix_ok = false;
        ++seen[w];
      });
      (void)view.for_each("items", [&](const versioned_document&) { ++pairs_in_items; });
      if (!n || !prefix_ok || pairs_in_users != pairs_in_items || pairs_in_users < pairs_floor)
        ++violations;
      for (std::size_t w = 0; w < writers; ++w)
        if (seen[w] < floor[w]) ++violations;
      // The same view, read again, answers the same.
      auto again = dump(view, {"users", "items"});
      auto third = dump(view, {"users", "items"});
      if (again != third || again["users"].size() != static_cast<std::size_t>(
                                                         std::accumulate(seen.begin(), seen.end(), 0) + pairs_in_users))
        ++violations;
      ++views_checked;
    }
  };
  // GC runs throughout: read views opened while it computes its floor must keep every
  // version they see (regression: a view could register after GC chose a floor above it).
  std::atomic<long> collections{0};
  std::thread collector([&] {
    while (!done.load(std::memory_order_acquire)) {
      auto g = db->gc();
      if (!g) ++violations;
      else if (g->record) ++collections;
    }
  });
  std::thread r1(reader), r2(reader);
  for (auto& t : threads) t.join();
  done.store(true, std::memory_order_release);
  r1.join();
  r2.join();
  collector.join();
  MESSAGE("read views checked: " << views_checked.load() << ", GC records: " << collections.load());

  CHECK(violations.load() == 0);
  CHECK(views_checked.load() > 0);
  const auto final_state = dump(*db);
  CHECK(final_state.at("users").size() == static_cast<std::size_t>(writers * per_writer + batch_pairs));
  CHECK(final_state.at("items").size() == static_cast<std::size_t>(batch_pairs));
  // Every write, every GC record: one CommitId each, none lost, none reused.
  CHECK(db->last_commit_id() ==
        4 + static_cast<commit_id>(writers * per_writer + writers * per_writer / 10 + batch_pairs +
                                   collections.load()));

  // Recovery sees exactly the same.
  db.reset();
  auto reopened = open_or_fail<Db>("/db", opts);
  CHECK(dump(*reopened) == final_state);
}

TEST_CASE_TEMPLATE("read-modify-write with conditional updates loses no increment", Db, AERODB_ENGINES) {
  // N threads each add 1 to one shared counter M times: read it, then update it based on
  // the version read, retrying on a conflict. Every increment must land exactly once; a
  // plain update in the same loop would silently overwrite concurrent increments.
  const int threads_n = 8;
  const int per_thread = std::max(5, static_cast<int>(60 * test_scale()));
  auto fs = std::make_shared<testing::fault_injection_fs>();
  open_options opts;
  opts.fs = fs;
  auto db = open_or_fail<Db>("/db", opts);
  REQUIRE(db->register_schema(item_schema_v1));
  REQUIRE(db->create_collection("items", "item"));
  REQUIRE(db->insert("items", 1, R"({"_id":"counter","qty":0})"));
  std::atomic<int> conflicts{0}, failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < threads_n; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < per_thread; ++i) {
        for (;;) {
          auto got = db->read().get("items", "counter");
          if (!got || !*got) {
            ++failures;
            return;
          }
          const auto qty = (*got)->doc.view().root().to_json().as_object().at("qty").as_int64();
          const auto r = db->update_if("items", "counter", (*got)->committed_at, 1,
                                       R"({"_id":"counter","qty":)" + std::to_string(qty + 1) + "}");
          if (r) break;
          if (r.code() != errc::write_conflict) {
            ++failures;
            return;
          }
          ++conflicts;
        }
      }
    });
  for (auto& t : threads) t.join();
  REQUIRE(failures == 0);
  auto got = db->read().get("items", "counter");
  REQUIRE(got);
  REQUIRE(got->has_value());
  CHECK((*got)->doc.view().root().to_json().as_object().at("qty").as_int64() == threads_n * per_thread);
  MESSAGE("conditional increments: " << threads_n * per_thread << " applied, " << conflicts.load()
                                     << " conflicts retried");
}

// The accelerated engine prepares a large batch on a thread per core and fills its
// indexes on a thread per index (engine/commit_request.hpp, engine/indexer.hpp). Under
// TSan, with small writers and readers going on, every large batch stays all or nothing
// in every view, its index entries with it, and a batch with a bad operation changes
// nothing.
TEST_CASE_TEMPLATE("large batches stay atomic while small writers and readers go on", Db, AERODB_ENGINES) {
  constexpr int batches = 6;
  constexpr int per_batch = 600;
  auto fs = std::make_shared<testing::fault_injection_fs>();
  open_options opts;
  opts.fs = fs;
  auto db = open_or_fail<Db>("/db", opts);
  setup_users(*db);
  REQUIRE(db->create_index("users", "address.city"));
  REQUIRE(db->create_index("users", "age"));

  std::atomic<bool> done{false};
  std::atomic<int> violations{0};
  std::atomic<long> views_checked{0};
  std::vector<std::thread> threads;
  threads.emplace_back([&] {
    for (int b = 0; b < batches; ++b) {
      write_batch big;
      for (int i = 0; i < per_batch; ++i)
        big.insert("users", 1, R"({"_id":"big-)" + std::to_string(b * per_batch + i) + R"(","name":"b","age":)" +
                                   std::to_string(i % 90) + R"(,"address":{"city":"big"}})");
      if (!db->commit(big)) ++violations;
      if (b == batches / 2) {  // a bad operation in the middle: nothing of it lands
        write_batch bad;
        for (int i = 0; i < per_batch; ++i)
          bad.insert("users", 1, R"({"_id":"bad-)" + std::to_string(i) + R"(","name":)" +
                                     (i == per_batch / 2 ? std::string("7") : std::string(R"("x")")) +
                                     R"(,"address":{"city":"big"}})");
        if (db->commit(bad)) ++violations;
      }
    }
    done = true;
  });
  threads.emplace_back([&] {
    for (int i = 0; !done; ++i)
      if (!db->insert("users", 1, R"({"_id":"small-)" + std::to_string(i) + R"(","name":"s","address":{"city":"small"}})"))
        ++violations;
  });
  for (int r = 0; r < 2; ++r)
    threads.emplace_back([&] {
      std::size_t last = 0;
      while (!done) {
        auto view = db->read();
        auto by_city = view.query(R"({"collection":"users","schema_version":1,"filter":{"address.city":"big"},"limit":10000})");
        auto by_age = view.query(R"({"collection":"users","schema_version":1,"filter":{"age":{"$gte":0}},"limit":10000})");
        if (!by_city || !by_age) {
          ++violations;
          return;
        }
        const std::size_t n = by_city->documents.size();
        // Whole batches only, never fewer than an earlier view saw, and the age index
        // holds exactly the same documents (only the large batches have an age).
        if (n % per_batch != 0 || n < last || by_age->documents.size() != n) ++violations;
        last = n;
        ++views_checked;
      }
    });
  for (auto& t : threads) t.join();
  CHECK(violations == 0);
  auto all = db->read().query(R"({"collection":"users","schema_version":1,"filter":{"address.city":"big"},"limit":10000})");
  REQUIRE(all);
  CHECK(all->documents.size() == static_cast<std::size_t>(batches * per_batch));
  MESSAGE("views checked while large batches landed: " << views_checked.load());
}

// The helper behind both: every item runs exactly once whatever the helper count (helpers
// that start late find nothing left), its effects are visible to the caller afterwards,
// and an item's exception comes back to the caller once every other item is done.
TEST_CASE("share_items: every item once, its effects visible, an exception rethrown") {
  for (const std::size_t helpers : {std::size_t{0}, std::size_t{1}, std::size_t{3}}) {
    INFO("helpers " << helpers);
    std::vector<std::size_t> out(2000, 0);
    std::vector<std::atomic<int>> times(out.size());
    detail::share_items(helpers, out.size(), [&](std::size_t i) {
      out[i] = i * 3 + 1;  // plain writes: the caller must see them after share_items
      times[i].fetch_add(1, std::memory_order_relaxed);
    });
    std::size_t wrong = 0;
    for (std::size_t i = 0; i < out.size(); ++i) wrong += (out[i] != i * 3 + 1 || times[i].load() != 1) ? 1 : 0;
    CHECK(wrong == 0);
  }
  std::atomic<int> done{0};
  CHECK_THROWS_WITH_AS(detail::share_items(2, 300,
                                           [&](std::size_t i) {
                                             if (i == 37) throw std::runtime_error("item 37");
                                             done.fetch_add(1);
                                           }),
                       "item 37", std::runtime_error);
  CHECK(done.load() == 299);
}
