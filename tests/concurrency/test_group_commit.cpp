// Group commit (docs/optimizations/group_commit.md):
//   - the pipeline forms groups only from requests already queued, in arrival order, at
//     most MaxGroup at a time, and a lone commit is a group of one made from its caller's
//     thread (a mock engine shows exactly which groups commit_group received);
//   - a waiter is woken only for its own group, leadership passes to the earliest queued
//     request, and under 32 threads every request is committed once, in its thread's
//     order, with never two groups at once, whether waiters spin or sleep;
//   - a group's records are written with one write call and a lone commit makes exactly
//     the baseline's file-system calls;
//   - an fsync failure fails every commit of its group, and every later write is refused;
//   - with 32 writer threads, a crash at any point of the run loses no acknowledged commit
//     and recovers a prefix of the commit order, under both the baseline and the
//     accelerated engine (this case also runs under ThreadSanitizer in CI).
#include "support/common.hpp"

#include <aerodb/policies/group_commit.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

using namespace aerodb;
using namespace aerodb_test;

namespace {

// Records the groups it is handed; a test can hold the first group inside its write
// (write_group, or commit_group for a policy that does not split groups) until others
// have queued behind it.
struct mock_engine {
  struct commit_request {
    int n = 0;
    bool committed = false;  // set by write_group
  };
  struct group_token {};
  std::mutex mu;
  std::vector<std::vector<int>> groups;
  std::atomic<bool> hold{false};
  std::atomic<bool> inside{false};
  std::atomic<int> concurrent{0};
  std::atomic<int> max_concurrent{0};

  group_token write_group(std::span<commit_request* const> group) {
    const int now = ++concurrent;
    int seen = max_concurrent.load();
    while (seen < now && !max_concurrent.compare_exchange_weak(seen, now)) {}
    {
      std::lock_guard lock(mu);
      std::vector<int> g;
      for (auto* r : group) {
        g.push_back(r->n);
        r->committed = true;
      }
      groups.push_back(std::move(g));
    }
    inside = true;
    while (hold) std::this_thread::yield();
    --concurrent;
    return {};
  }
  void finish_group(group_token&) {}
  void commit_group(std::span<commit_request* const> group) {
    auto token = write_group(group);
    finish_group(token);
  }
};

template <class Pipeline>
void wait_for_queue(const Pipeline& p, std::size_t n) {
  while (p.queued() < n) std::this_thread::yield();
}

// Holds group g inside its write (write_group) until `released` exceeds g, and records
// which thread made each call and the order in which groups finished and their callers
// returned.
struct gated_engine {
  struct commit_request {
    int n = 0;
  };
  struct event {
    bool group_end;  // true: group `index` is about to return; false: request `index` returned
    int index;
  };
  std::mutex mu;
  std::vector<std::vector<int>> groups;    // guarded by mu
  std::vector<std::thread::id> callers;    // guarded by mu; the thread of each call
  std::vector<event> events;               // guarded by mu
  std::atomic<int> entered{0};
  std::atomic<int> released{0};
  std::atomic<int> concurrent{0};
  std::atomic<int> max_concurrent{0};

  struct group_token {
    int index = 0;
  };
  void commit_group(std::span<commit_request* const> group) {
    auto token = write_group(group);
    finish_group(token);
  }
  // The group's end is recorded when its finish returns: its callers may return only then.
  void finish_group(group_token& token) {
    std::lock_guard lock(mu);
    events.push_back({true, token.index});
  }
  group_token write_group(std::span<commit_request* const> group) {
    const int now = ++concurrent;
    int seen = max_concurrent.load();
    while (seen < now && !max_concurrent.compare_exchange_weak(seen, now)) {}
    int index = 0;
    {
      std::lock_guard lock(mu);
      index = static_cast<int>(groups.size());
      std::vector<int> g;
      for (auto* r : group) g.push_back(r->n);
      groups.push_back(std::move(g));
      callers.push_back(std::this_thread::get_id());
    }
    ++entered;
    while (released.load() <= index) std::this_thread::yield();
    --concurrent;
    return {index};
  }
  void returned(int n) {
    std::lock_guard lock(mu);
    events.push_back({false, n});
  }
  // How many callers of requests numbered `from` or above have returned.
  int returned_from(int from) {
    std::lock_guard lock(mu);
    int out = 0;
    for (const auto& ev : events)
      if (!ev.group_end && ev.index >= from) ++out;
    return out;
  }
};

// Lets a thread that was woken by mistake run far enough to be counted.
void settle() { std::this_thread::sleep_for(std::chrono::milliseconds(30)); }

// threads_n threads submit per_thread requests each, numbered t * per_thread + i, to a
// pipeline of Policy over the mock engine, and check what the engine saw.
template <class Policy>
void check_stress(int threads_n, int per_thread) {
  mock_engine e;
  typename Policy::template pipeline<mock_engine> p(e);
  std::atomic<int> returned_uncommitted{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < threads_n; ++t)
    threads.emplace_back([&p, &returned_uncommitted, t, per_thread] {
      for (int i = 0; i < per_thread; ++i) {
        mock_engine::commit_request r{t * per_thread + i};
        p.submit(r);
        if (!r.committed) ++returned_uncommitted;
      }
    });
  for (auto& t : threads) t.join();
  CHECK(returned_uncommitted == 0);
  CHECK(e.max_concurrent == 1);
  CHECK(p.queued() == 0);
  std::vector<int> times(static_cast<std::size_t>(threads_n * per_thread), 0);
  std::vector<int> next_of_thread(static_cast<std::size_t>(threads_n), 0);
  std::size_t too_large = 0, out_of_order = 0;
  for (const auto& g : e.groups) {
    if (g.empty() || g.size() > Policy::max_group) ++too_large;
    for (int n : g) {
      ++times[static_cast<std::size_t>(n)];
      auto& next = next_of_thread[static_cast<std::size_t>(n / per_thread)];
      if (n % per_thread != next) ++out_of_order;
      next = n % per_thread + 1;
    }
  }
  CHECK(too_large == 0);
  CHECK(out_of_order == 0);
  CHECK(std::count(times.begin(), times.end(), 1) == threads_n * per_thread);
  MESSAGE(threads_n << " threads x " << per_thread << " submits, max_group " << Policy::max_group
                    << ", spin " << Policy::spin_count << ": " << e.groups.size() << " groups, "
                    << p.wakeups() << " wake-ups from sleep");
}

int scaled(int n) { return std::max(1, static_cast<int>(n * test_scale())); }

}  // namespace

TEST_CASE("a lone commit is a group of one") {
  mock_engine e;
  policies::group_commit::pipeline<mock_engine> p(e);
  mock_engine::commit_request r{7};
  p.submit(r);
  p.submit(r);
  REQUIRE(e.groups == std::vector<std::vector<int>>{{7}, {7}});
}

TEST_CASE("groups form from the requests queued while a group is written, in arrival order") {
  mock_engine e;
  policies::group_commit::pipeline<mock_engine> p(e);
  std::vector<mock_engine::commit_request> reqs(6);
  for (int i = 0; i < 6; ++i) reqs[static_cast<std::size_t>(i)].n = i;
  e.hold = true;
  std::vector<std::thread> threads;
  threads.emplace_back([&] { p.submit(reqs[0]); });
  while (!e.inside) std::this_thread::yield();  // request 0 is being written alone
  for (std::size_t i = 1; i < 6; ++i) {
    threads.emplace_back([&, i] { p.submit(reqs[i]); });
    wait_for_queue(p, i);  // queued one after another: the arrival order is known
  }
  e.hold = false;
  for (auto& t : threads) t.join();
  REQUIRE(e.groups == std::vector<std::vector<int>>{{0}, {1, 2, 3, 4, 5}});
  CHECK(e.max_concurrent == 1);
}

TEST_CASE("a group holds at most MaxGroup commits; the rest form the next groups") {
  mock_engine e;
  policies::basic_group_commit<4>::pipeline<mock_engine> p(e);
  std::vector<mock_engine::commit_request> reqs(11);
  for (int i = 0; i < 11; ++i) reqs[static_cast<std::size_t>(i)].n = i;
  e.hold = true;
  std::vector<std::thread> threads;
  threads.emplace_back([&] { p.submit(reqs[0]); });
  while (!e.inside) std::this_thread::yield();
  for (std::size_t i = 1; i < 11; ++i) {
    threads.emplace_back([&, i] { p.submit(reqs[i]); });
    wait_for_queue(p, i);
  }
  e.hold = false;
  for (auto& t : threads) t.join();
  REQUIRE(e.groups == std::vector<std::vector<int>>{{0}, {1, 2, 3, 4}, {5, 6, 7, 8}, {9, 10}});
  CHECK(e.max_concurrent == 1);
}

TEST_CASE("a lone commit calls commit_group once, from its own thread, with a group of one") {
  gated_engine e;
  e.released = 1 << 30;
  policies::group_commit::pipeline<gated_engine> p(e);
  gated_engine::commit_request r{7};
  p.submit(r);
  REQUIRE(e.groups == std::vector<std::vector<int>>{{7}});
  CHECK(e.callers.at(0) == std::this_thread::get_id());
  CHECK(p.queued() == 0);
  CHECK(p.wakeups() == 0);
  // After a contended stretch (a held group, three requests queued behind it, leadership
  // handed on), a commit alone is again a group of one made by its caller.
  e.released = 1;  // the next group, index 1, is held
  std::vector<gated_engine::commit_request> reqs(4);
  for (int i = 0; i < 4; ++i) reqs[static_cast<std::size_t>(i)].n = i;
  std::vector<std::thread> threads;
  threads.emplace_back([&] { p.submit(reqs[0]); });
  while (e.entered < 2) std::this_thread::yield();
  for (std::size_t i = 1; i < 4; ++i) {
    threads.emplace_back([&, i] { p.submit(reqs[i]); });
    wait_for_queue(p, i);
  }
  e.released = 1 << 30;
  for (auto& t : threads) t.join();
  p.submit(r);
  REQUIRE(e.groups == std::vector<std::vector<int>>{{7}, {0}, {1, 2, 3}, {7}});
  CHECK(e.callers.at(3) == std::this_thread::get_id());
  CHECK(p.queued() == 0);
}

TEST_CASE("a waiter is woken only for its own group, and the next leader is the earliest queued request") {
  gated_engine e;
  // MaxGroup 2 leaves requests queued behind the next group; SpinCount 0 makes every
  // waiter sleep, so each wake-up is counted.
  policies::basic_group_commit<2, 0>::pipeline<gated_engine> p(e);
  std::vector<gated_engine::commit_request> reqs(6);
  std::vector<std::thread::id> owner(6);
  for (int i = 0; i < 6; ++i) reqs[static_cast<std::size_t>(i)].n = i;
  std::vector<std::thread> threads;
  auto start = [&](std::size_t i) {
    threads.emplace_back([&, i] {
      owner[i] = std::this_thread::get_id();
      p.submit(reqs[i]);
      e.returned(static_cast<int>(i));
    });
  };
  start(0);
  while (e.entered < 1) std::this_thread::yield();  // request 0 is written alone
  for (std::size_t i = 1; i < 6; ++i) {
    start(i);
    wait_for_queue(p, i);  // queued one after another: the arrival order is known
  }
  settle();  // every waiter goes to sleep
  CHECK(p.wakeups() == 0);

  // Group 0 ends: request 1 is told to lead and takes {1, 2}; nobody else wakes.
  e.released = 1;
  while (e.entered < 2) std::this_thread::yield();
  settle();
  CHECK(p.wakeups() <= 1);
  CHECK(e.returned_from(1) == 0);

  // Group 1 ends: request 2 (its member) is done and request 3 leads {3, 4}.
  e.released = 2;
  while (e.entered < 3) std::this_thread::yield();
  settle();
  CHECK(p.wakeups() <= 3);
  CHECK(e.returned_from(3) == 0);

  // Group 2 ends: request 4 is done and request 5 leads {5}.
  e.released = 3;
  while (e.entered < 4) std::this_thread::yield();
  settle();
  CHECK(p.wakeups() <= 5);
  CHECK(e.returned_from(5) == 0);
  e.released = 4;
  for (auto& t : threads) t.join();

  REQUIRE(e.groups == std::vector<std::vector<int>>{{0}, {1, 2}, {3, 4}, {5}});
  // Each group was committed by the thread of its first (earliest queued) request.
  for (std::size_t g = 0; g < e.groups.size(); ++g)
    CHECK(e.callers[g] == owner[static_cast<std::size_t>(e.groups[g].front())]);
  // Every caller returned after its own group's commit_group, never before.
  std::vector<int> group_of(6);
  for (std::size_t g = 0; g < e.groups.size(); ++g)
    for (int n : e.groups[g]) group_of[static_cast<std::size_t>(n)] = static_cast<int>(g);
  std::set<int> ended;
  for (const auto& ev : e.events) {
    if (ev.group_end) ended.insert(ev.index);
    else CHECK(ended.count(group_of[static_cast<std::size_t>(ev.index)]) == 1);
  }
  CHECK(ended.size() == 4);
  CHECK(p.wakeups() <= 5);  // one signal per sleeping waiter: its lead or its done
  CHECK(e.max_concurrent == 1);
}

TEST_CASE("a queue longer than MaxGroup still completes every request, in arrival order") {
  // Deterministic: with waiters asleep, 7 requests under MaxGroup 2.
  {
    mock_engine e;
    policies::basic_group_commit<2, 0>::pipeline<mock_engine> p(e);
    std::vector<mock_engine::commit_request> reqs(7);
    for (int i = 0; i < 7; ++i) reqs[static_cast<std::size_t>(i)].n = i;
    e.hold = true;
    std::vector<std::thread> threads;
    threads.emplace_back([&] { p.submit(reqs[0]); });
    while (!e.inside) std::this_thread::yield();
    for (std::size_t i = 1; i < 7; ++i) {
      threads.emplace_back([&, i] { p.submit(reqs[i]); });
      wait_for_queue(p, i);
    }
    e.hold = false;
    for (auto& t : threads) t.join();
    REQUIRE(e.groups == std::vector<std::vector<int>>{{0}, {1, 2}, {3, 4}, {5, 6}});
    CHECK(e.max_concurrent == 1);
  }
  // Concurrent: far more writers than MaxGroup, with spinning and with sleeping waiters.
  check_stress<policies::basic_group_commit<3>>(16, scaled(500));
  check_stress<policies::basic_group_commit<3, 0>>(16, scaled(500));
  check_stress<policies::basic_group_commit<1, 0>>(8, scaled(300));
}

TEST_CASE("32 threads x 2000 submits: each request committed once, one group at a time, in each thread's order") {
  check_stress<policies::group_commit>(32, scaled(2000));
  check_stress<policies::basic_group_commit<128, 0>>(32, scaled(2000));
}

TEST_CASE("a lone commit makes exactly the baseline's file-system calls") {
  auto trace_of = [](auto tag) {
    using Db = typename decltype(tag)::type;
    auto fs = std::make_shared<testing::fault_injection_fs>();
    open_options o;
    o.fs = fs;
    o.wal_segment_bytes = 1024;
    auto db = open_or_fail<Db>("/db", o);
    setup_users(*db);
    for (int i = 0; i < 40; ++i)
      REQUIRE(db->insert("users", 1, R"({"_id":"u)" + std::to_string(i) + R"(","name":"n"})"));
    std::vector<std::string> out;
    for (const auto& op : fs->trace())
      out.push_back(std::string(testing::to_string(op.kind)) + " " + op.path + " " +
                    std::to_string(op.bytes));
    return out;
  };
  const auto baseline = trace_of(std::type_identity<database>{});
  const auto grouped = trace_of(std::type_identity<engine_group_traversal_ordered>{});
  REQUIRE(baseline.size() > 100);  // several segments were started
  const auto diff = std::mismatch(baseline.begin(), baseline.end(), grouped.begin(), grouped.end());
  INFO("first difference at op " << (diff.first - baseline.begin()) << ": baseline "
       << (diff.first == baseline.end() ? "(end)" : *diff.first) << ", group commit "
       << (diff.second == grouped.end() ? "(end)" : *diff.second));
  REQUIRE(grouped == baseline);
}

TEST_CASE("an fsync failure fails every commit of its group and the instance refuses writes") {
  for (int attempt = 0; attempt < 5; ++attempt) {
    auto fs = std::make_shared<testing::fault_injection_fs>();
    open_options o;
    o.fs = fs;
    std::set<std::string> acked;
    std::mutex mu;
    std::atomic<int> fsync_failures{0}, refused{0}, others{0};
    {
      auto db = open_or_fail<accelerated_database>("/db", o);
      setup_users(*db);
      // Ops cannot be numbered in advance under concurrency: fail every op from a point
      // on, so the first group to meet it fails (at its write or its fsync) and every
      // later one must be refused without touching the file system.
      const std::uint64_t k = fs->op_count() + 60 + static_cast<std::uint64_t>(attempt);
      for (std::uint64_t op = k; op < k + 4000; ++op) fs->fail_op(op, EIO);
      const std::uint64_t ops_before = fs->op_count();
      std::vector<std::thread> threads;
      for (int t = 0; t < 8; ++t)
        threads.emplace_back([&, t] {
          for (int i = 0; i < 40; ++i) {
            const std::string id = "t" + std::to_string(t) + "-" + std::to_string(i);
            auto r = db->insert("users", 1, R"({"_id":")" + id + R"(","name":"n"})");
            if (r) {
              std::lock_guard lock(mu);
              acked.insert(id);
            } else if (r.code() == errc::wal_fsync_failed || r.code() == errc::wal_append_failed) {
              ++fsync_failures;
            } else if (r.code() == errc::storage_read_only) {
              ++refused;
            } else {
              ++others;
            }
          }
        });
      for (auto& t : threads) t.join();
      CHECK_FALSE(db->accepts_writes());
      CHECK(others == 0);
      // The failing group failed whole (at least its one commit), and everything after
      // it was refused rather than retried.
      CHECK(fsync_failures >= 1);
      CHECK(fsync_failures + refused + static_cast<int>(acked.size()) == 8 * 40);
      // Only the failing group touched the file system after the point: one write (or
      // two across a segment boundary) and at most one fsync, never a retry.
      CHECK(fs->op_count() - ops_before <= 60 + static_cast<std::uint64_t>(attempt) + 4);
      const auto m = db->metrics();
      CHECK(m.group_commit_size_sum == acked.size() + 2);  // + the schema and the collection
    }
    fs->crash({testing::crash_kind::drop_unsynced, 0});
    auto db = open_or_fail<database>("/db", o);
    const auto st = dump(*db);
    for (const auto& id : acked) REQUIRE(st.at("users").count(id) == 1);
  }
}

namespace {

struct concurrent_run {
  std::set<std::string> acked;             // documents whose insert returned success
  std::map<std::string, commit_id> ids;    // and the CommitId each was acknowledged with
  std::uint64_t groups = 0, commits = 0;   // from the metrics, for the report
};

// 32 threads insert distinct documents, one commit each, until the file system "dies".
template <class Db>
concurrent_run run_writers(const std::shared_ptr<testing::fault_injection_fs>& fs,
                           const open_options& base, std::uint64_t crash_after_ops,
                           int threads_n, int per_thread) {
  concurrent_run out;
  auto opts = base;
  opts.fs = fs;
  auto db = open_or_fail<Db>("/db", opts);
  setup_users(*db);
  fs->crash_after(fs->op_count() + crash_after_ops);
  std::mutex mu;
  std::vector<std::thread> threads;
  for (int t = 0; t < threads_n; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < per_thread; ++i) {
        const std::string id = "t" + std::to_string(t) + "-" + std::to_string(i);
        auto r = db->insert("users", 1, R"({"_id":")" + id + R"(","name":"w"})");
        if (!r) return;  // the "process" died: this thread stops
        std::lock_guard lock(mu);
        out.acked.insert(id);
        out.ids[id] = *r;
      }
    });
  for (auto& t : threads) t.join();
  const auto m = db->metrics();
  out.groups = m.group_commit_groups;
  out.commits = m.group_commit_size_sum;
  return out;
}

// Recovers with Db and checks: every acknowledged commit is there with its CommitId, the
// data commits present are exactly CommitIds 3..L (a prefix: each commit is one insert),
// and a second recovery agrees.
template <class Db>
void check_after_crash(const std::shared_ptr<testing::fault_injection_fs>& fs, const open_options& base,
                       const concurrent_run& run, const std::string& where) {
  INFO(where);
  auto opts = base;
  opts.fs = fs;
  state_map first;
  {
    auto db = Db::open("/db", opts);
    if (!db) FAIL("recovery failed: " << db.error_value().to_string());
    const commit_id last = (*db)->last_commit_id();
    std::set<commit_id> present;
    auto view = (*db)->read();
    for (const auto& [id, cid] : run.ids) {
      auto d = view.get("users", id);
      REQUIRE(d);
      if (!d->has_value()) FAIL("acknowledged commit " << cid << " (" << id << ") is missing");
      REQUIRE((*d)->committed_at == cid);
    }
    if (last >= 2) {
      auto n = view.for_each("users", [&](const versioned_document& d) { present.insert(d.committed_at); });
      REQUIRE(n);
      REQUIRE(present.size() == last - 2);
      if (!present.empty()) {
        REQUIRE(*present.begin() == 3);
        REQUIRE(*present.rbegin() == last);
      }
    }
    first = dump(**db);
  }
  auto again = Db::open("/db", opts);
  REQUIRE(again);
  REQUIRE(dump(**again) == first);
}

}  // namespace

TEST_CASE("32 writer threads: a crash anywhere loses no acknowledged commit") {
  const bool long_run = std::getenv("AERODB_LONG") != nullptr;
  const int threads_n = 32;
  const int per_thread = long_run ? 20 : 6;
  open_options base;
  base.wal_segment_bytes = 2048;  // rotation happens inside groups too
  // One clean run tells roughly how many ops a full run makes.
  std::uint64_t total_ops = 0;
  {
    auto fs = std::make_shared<testing::fault_injection_fs>();
    const auto before = fs->op_count();
    auto r = run_writers<accelerated_database>(fs, base, 1'000'000, threads_n, per_thread);
    REQUIRE(r.acked.size() == static_cast<std::size_t>(threads_n * per_thread));
    total_ops = fs->op_count() - before;
  }
  const std::uint64_t step = long_run ? 1 : std::max<std::uint64_t>(1, total_ops / 40);
  std::uint64_t states = 0, max_group_seen = 0, grouped_runs = 0;
  for (std::uint64_t k = 0; k <= total_ops; k += step) {
    for (auto kind : {testing::crash_kind::drop_unsynced, testing::crash_kind::keep_unsynced,
                      testing::crash_kind::tear_last_append}) {
      auto fs = std::make_shared<testing::fault_injection_fs>();
      auto r = run_writers<accelerated_database>(fs, base, k, threads_n, per_thread);
      if (r.groups && r.commits > r.groups) ++grouped_runs;
      max_group_seen = std::max<std::uint64_t>(max_group_seen, r.groups ? r.commits / r.groups : 0);
      fs->crash({kind, 7});
      const std::string where = "crash after " + std::to_string(k) + " ops, kind " +
                                std::to_string(static_cast<int>(kind));
      check_after_crash<database>(fs, base, r, where + ", recovered by the baseline");
      check_after_crash<accelerated_database>(fs, base, r, where + ", recovered by the accelerated engine");
      ++states;
    }
  }
  std::printf("group commit crash sweep: %d threads, %llu ops per run, %llu crash states, "
              "%llu runs formed groups of more than one commit\n",
              threads_n, static_cast<unsigned long long>(total_ops),
              static_cast<unsigned long long>(states), static_cast<unsigned long long>(grouped_runs));
  print_counts({{"campaign", "group-commit-crash"},
                {"threads", threads_n},
                {"ops_per_run", total_ops},
                {"crash_states", states},
                {"grouped_runs", grouped_runs}});
  CHECK(states >= 40);
  // 32 threads on a shared pipeline must have formed real groups at least sometimes;
  // otherwise this sweep did not test group commit at all.
  CHECK(grouped_runs > 0);
}

TEST_CASE("pipelined groups: the next group is written while the previous one finishes, and its callers wait for their own finish") {
  // The finish of group 0 (where the engine fsyncs) waits, up to a bound, until group 1
  // has been written: that happens only if leadership passes on between a group's write
  // and its finish. Group 1's caller returns only after group 1's finish.
  struct overlap_engine {
    struct commit_request {
      int n = 0;
    };
    struct group_token {
      int index = 0;
    };
    std::mutex mu;
    std::vector<std::string> log;  // guarded by mu
    std::atomic<int> written{0};
    std::atomic<bool> overlapped{false};
    std::atomic<int> finished{0};
    group_token write_group(std::span<commit_request* const> group) {
      const int index = written.load();
      {
        std::lock_guard lock(mu);
        log.push_back("write " + std::to_string(index) + " of " + std::to_string(group.front()->n));
      }
      ++written;
      return {index};
    }
    void finish_group(group_token& t) {
      if (t.index == 0) {
        const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        while (written.load() < 2 && std::chrono::steady_clock::now() < until) std::this_thread::yield();
        overlapped = written.load() >= 2;
      }
      // Finishes in written order, as the engine's commit pipeline does.
      while (finished.load() != t.index) std::this_thread::yield();
      {
        std::lock_guard lock(mu);
        log.push_back("finish " + std::to_string(t.index));
      }
      ++finished;
    }
    void commit_group(std::span<commit_request* const> group) {
      auto t = write_group(group);
      finish_group(t);
    }
  };
  overlap_engine e;
  policies::group_commit::pipeline<overlap_engine> p(e);
  overlap_engine::commit_request a{10}, b{11};
  std::atomic<bool> b_returned{false};
  std::thread first([&] { p.submit(a); });
  while (e.written.load() < 1) std::this_thread::yield();
  std::thread second([&] {
    p.submit(b);
    b_returned = true;
  });
  first.join();
  second.join();
  CHECK(e.overlapped);
  CHECK(b_returned);
  REQUIRE(e.log.size() == 4);
  CHECK(e.log[0] == "write 0 of 10");
  CHECK(e.log[1] == "write 1 of 11");
  CHECK(e.log[2] == "finish 0");
  CHECK(e.log[3] == "finish 1");
}

namespace {

// A file system that passes every call to an inner one, except that it can hold the next
// file sync until the test releases it, and counts the file syncs it passed on.
class sync_gate_fs final : public io::file_system {
 public:
  explicit sync_gate_fs(std::shared_ptr<io::file_system> inner) : inner_(std::move(inner)) {}

  std::atomic<bool> hold_next{false};  // the next file sync waits for release()
  std::atomic<bool> holding{false};    // a sync is being held now
  std::atomic<bool> released{false};
  std::atomic<std::uint64_t> syncs{0};

  void release() { released = true; }

  result<std::unique_ptr<io::file>> open(const std::string& path, io::open_mode mode) override {
    auto f = inner_->open(path, mode);
    if (!f) return std::move(f).error_value();
    return std::unique_ptr<io::file>(std::make_unique<gated_file>(*this, std::move(*f)));
  }
  result<void> rename(const std::string& a, const std::string& b) override { return inner_->rename(a, b); }
  result<void> remove(const std::string& p) override { return inner_->remove(p); }
  result<void> sync_dir(const std::string& d) override { return inner_->sync_dir(d); }
  result<void> create_dir(const std::string& p) override { return inner_->create_dir(p); }
  result<std::vector<std::string>> list_dir(const std::string& d) override { return inner_->list_dir(d); }
  result<bool> exists(const std::string& p) override { return inner_->exists(p); }
  result<std::unique_ptr<io::file_lock>> lock(const std::string& p) override { return inner_->lock(p); }

 private:
  class gated_file final : public io::file {
   public:
    gated_file(sync_gate_fs& fs, std::unique_ptr<io::file> inner) : fs_(fs), inner_(std::move(inner)) {}
    result<void> append(std::span<const std::byte> d) override { return inner_->append(d); }
    result<void> write_at(std::uint64_t o, std::span<const std::byte> d) override { return inner_->write_at(o, d); }
    result<void> sync() override {
      if (fs_.hold_next.exchange(false)) {
        fs_.holding = true;
        while (!fs_.released) std::this_thread::yield();
        fs_.holding = false;
      }
      ++fs_.syncs;
      return inner_->sync();
    }
    result<std::size_t> read_at(std::uint64_t o, std::span<std::byte> out) override { return inner_->read_at(o, out); }
    result<std::uint64_t> size() override { return inner_->size(); }
    result<void> truncate(std::uint64_t n) override { return inner_->truncate(n); }

   private:
    sync_gate_fs& fs_;
    std::unique_ptr<io::file> inner_;
  };
  std::shared_ptr<io::file_system> inner_;
};

}  // namespace

TEST_CASE("groups written while an fsync runs share the next fsync") {
  // One commit's fsync is held; meanwhile six more commits arrive one after another, each
  // written as a group of its own (the next starts only once the previous was written).
  // Each waits for an fsync that covers its write: once the held one returns, a single
  // fsync covers all six, so the seven commits cost two fsyncs, not seven.
  auto inner = std::make_shared<testing::fault_injection_fs>();
  auto gate = std::make_shared<sync_gate_fs>(inner);
  open_options o;
  o.fs = gate;
  std::set<std::string> acked;
  {
    auto db = open_or_fail<accelerated_database>("/db", o);
    setup_users(*db);
    const auto before = db->metrics();
    const std::uint64_t syncs_before = gate->syncs.load();
    gate->hold_next = true;
    std::vector<std::thread> threads;
    std::mutex mu;
    auto insert = [&](int i) {
      const std::string id = "d" + std::to_string(i);
      auto r = db->insert("users", 1, R"({"_id":")" + id + R"(","name":"n"})");
      REQUIRE(r);
      std::lock_guard lock(mu);
      acked.insert(id);
    };
    threads.emplace_back(insert, 0);
    while (!gate->holding) std::this_thread::yield();
    for (int i = 1; i <= 6; ++i) {
      threads.emplace_back(insert, i);
      // Written (W6) before the next arrives: each is a group of its own.
      while (db->metrics().wal_records < before.wal_records + 1 + static_cast<std::uint64_t>(i))
        std::this_thread::yield();
    }
    {
      std::lock_guard lock(mu);
      CHECK(acked.empty());  // nobody is acknowledged before the held fsync returns
    }
    gate->release();
    for (auto& t : threads) t.join();
    const auto after = db->metrics();
    CHECK(after.wal_records - before.wal_records == 7);
    CHECK(after.group_commit_groups - before.group_commit_groups == 7);
    CHECK(gate->syncs.load() - syncs_before == 2);
    CHECK(after.group_commit_fsync_count - before.group_commit_fsync_count == 2);
  }
  CHECK(acked.size() == 7);
  inner->crash({testing::crash_kind::drop_unsynced, 0});
  open_options plain;
  plain.fs = inner;
  auto db = open_or_fail<database>("/db", plain);
  const auto st = dump(*db);
  for (const auto& id : acked) CHECK(st.at("users").count(id) == 1);
}
