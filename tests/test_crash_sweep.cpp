// Crash sweep: a workload of more than 200 commits (single writes and atomic batches)
// runs over the fault-injecting file system and is crashed at every mutating I/O
// operation, in several power-loss variants. After each crash the directory is
// recovered and checked:
//   - recovery succeeds (a crash never produces corruption);
//   - every acknowledged commit is present: the recovered last CommitId L is at least
//     the number of acknowledged commits, and at most one more (the one in flight);
//   - the visible state equals the model's state after exactly commits 1..L, so it is a
//     prefix of the commit order and no batch is half applied;
//   - a second recovery of the same files gives the same state (idempotence);
//   - the recovered instance accepts a new commit, and that survives another reopen.
// AERODB_LONG=1 sweeps every tear offset instead of a few.
#include "support.hpp"

#include <cstdio>
#include <cstdlib>
#include <random>

using namespace aerodb;
using namespace aerodb_test;

namespace {

struct step {
  enum kind_t { schema, collection, batch } kind;
  std::string text;        // schema JSON
  std::string name, arg;   // collection name and schema id
  write_batch ops;
};

struct workload {
  std::vector<step> steps;        // steps[i] is commit i + 1
  std::vector<state_map> states;  // states[c] = visible state after commit c
};

// Deterministic: the same seed gives the same commits, whatever happens when running them.
workload make_workload(std::uint32_t seed, int data_commits) {
  workload w;
  state_map st;
  w.states.push_back(st);
  auto add = [&](step s) {
    w.steps.push_back(std::move(s));
    w.states.push_back(st);
  };
  st = {};
  add({step::schema, user_schema_v1, {}, {}, {}});
  st["users"];
  add({step::collection, {}, "users", "user", {}});
  add({step::schema, item_schema_v1, {}, {}, {}});
  st["items"];
  add({step::collection, {}, "items", "item", {}});

  std::mt19937 rng(seed);
  int next_key = 0;
  auto pick_existing = [&](const std::string& c) -> std::string {
    auto& m = st[c];
    if (m.empty()) return {};
    auto it = m.begin();
    std::advance(it, static_cast<long>(rng() % m.size()));
    return it->first;
  };
  auto user_json = [&](const std::string& id) {
    return R"({"_id":")" + id + R"(","name":"user )" + std::to_string(rng() % 1000) +
           R"(","age":)" + std::to_string(rng() % 100) + "}";
  };
  auto item_json = [&](const std::string& id) {
    return R"({"_id":")" + id + R"(","qty":)" + std::to_string(rng() % 50) + "}";
  };

  for (int i = 0; i < data_commits; ++i) {
    step s{step::batch, {}, {}, {}, {}};
    const bool is_batch = rng() % 4 == 0;
    const int n_ops = is_batch ? 2 + static_cast<int>(rng() % 4) : 1;
    std::set<std::pair<std::string, std::string>> touched;
    for (int k = 0; k < n_ops; ++k) {
      const std::string c = rng() % 3 == 0 ? "items" : "users";
      const unsigned what = rng() % 10;
      const std::string existing = pick_existing(c);
      if (what < 5 || existing.empty() || touched.count({c, existing})) {
        const std::string id = "k" + std::to_string(next_key++);
        const std::string json = c == "users" ? user_json(id) : item_json(id);
        s.ops.insert(c, 1, json);
        st[c][id] = {1, json};
        touched.insert({c, id});
      } else if (what < 8) {
        const std::string json = c == "users" ? user_json(existing) : item_json(existing);
        s.ops.update(c, existing, 1, json);
        st[c][existing] = {1, json};
        touched.insert({c, existing});
      } else {
        s.ops.remove(c, existing);
        st[c].erase(existing);
        touched.insert({c, existing});
      }
    }
    add(std::move(s));
  }
  return w;
}

// Runs the workload until the first failure; returns how many commits were acknowledged.
template <class Db>
std::size_t run(const workload& w, const std::shared_ptr<testing::fault_injection_fs>& fs,
                const open_options& base) {
  auto opts = base;
  opts.fs = fs;
  auto db = Db::open("/db", opts);
  if (!db) return 0;
  std::size_t acked = 0;
  for (const auto& s : w.steps) {
    bool ok = false;
    switch (s.kind) {
      case step::schema: ok = (*db)->register_schema(s.text).has_value(); break;
      case step::collection: ok = (*db)->create_collection(s.name, s.arg).has_value(); break;
      case step::batch: ok = (*db)->commit(s.ops).has_value(); break;
    }
    if (!ok) break;
    ++acked;
  }
  return acked;
}

struct sweep_counts {
  std::uint64_t states = 0;
  std::uint64_t torn_tails = 0;
  std::uint64_t in_flight_survived = 0;
};

template <class Db>
void check_recovery(const workload& w, testing::fault_injection_fs& fs_ref,
                    const std::shared_ptr<testing::fault_injection_fs>& fs, const open_options& base,
                    std::size_t acked, sweep_counts& counts, const std::string& where) {
  (void)fs_ref;
  auto opts = base;
  opts.fs = fs;
  INFO(where);
  commit_id last = 0;
  state_map recovered;
  {
    auto db = Db::open("/db", opts);
    if (!db) FAIL("recovery failed: " << db.error_value().to_string());
    last = (*db)->last_commit_id();
    REQUIRE(last >= acked);
    REQUIRE(last <= std::min<std::size_t>(acked + 1, w.steps.size()));
    recovered = dump(**db);
    REQUIRE(recovered == w.states[last]);
    if ((*db)->recovery().torn_tail) ++counts.torn_tails;
    if (last > acked) ++counts.in_flight_survived;
  }
  {
    auto db = Db::open("/db", opts);
    if (!db) FAIL("second recovery failed: " << db.error_value().to_string());
    REQUIRE((*db)->last_commit_id() == last);
    REQUIRE(dump(**db) == recovered);
    REQUIRE_FALSE((*db)->recovery().torn_tail.has_value());
    if (last >= 4) {
      auto r = (*db)->insert("items", 1, R"({"_id":"after-crash","qty":1})");
      if (!r) FAIL("write after recovery failed: " << r.error_value().to_string());
    }
  }
  if (last >= 4) {
    auto db = Db::open("/db", opts);
    if (!db) FAIL("reopen after a post-recovery write failed: " << db.error_value().to_string());
    REQUIRE((*db)->last_commit_id() == last + 1);
  }
  ++counts.states;
}

}  // namespace

TEST_CASE_TEMPLATE("crash at every I/O operation of a 200+ commit workload", Db, AERODB_ENGINES) {
  const bool long_run = std::getenv("AERODB_LONG") != nullptr;
  const workload w = make_workload(20261120, 204);
  REQUIRE(w.steps.size() >= 200);
  std::size_t batches = 0;
  for (const auto& s : w.steps) batches += s.kind == step::batch && s.ops.size() > 1;
  CHECK(batches > 20);

  open_options base;
  base.wal_segment_bytes = 4096;  // many segments: rotation is part of the sweep

  // A clean run tells how many mutating operations the workload makes.
  auto clean = std::make_shared<testing::fault_injection_fs>();
  REQUIRE(run<Db>(w, clean, base) == w.steps.size());
  const std::uint64_t total_ops = clean->op_count();
  {
    auto opts = base;
    opts.fs = clean;
    auto db = Db::open("/db", opts);
    REQUIRE(db);
    REQUIRE(dump(**db) == w.states.back());
  }

  sweep_counts counts;
  for (std::uint64_t k = 0; k <= total_ops; ++k) {
    auto sweep_one = [&](testing::crash_spec spec, const std::string& label) {
      auto fs = std::make_shared<testing::fault_injection_fs>();
      fs->crash_after(k);
      const std::size_t acked = run<Db>(w, fs, base);
      const std::uint64_t unsynced = fs->unsynced_bytes_of_last_append_file();
      fs->crash(spec);
      check_recovery<Db>(w, *fs, fs, base, acked, counts,
                     "crash after op " + std::to_string(k) + ", " + label);
      return unsynced;
    };
    sweep_one({testing::crash_kind::drop_unsynced, 0}, "unsynced data dropped");
    sweep_one({testing::crash_kind::keep_unsynced, 0}, "unsynced data kept");
    // Tears: measure how much was unsynced, then keep several prefixes of it.
    auto probe = std::make_shared<testing::fault_injection_fs>();
    probe->crash_after(k);
    (void)run<Db>(w, probe, base);
    const std::uint64_t unsynced = probe->unsynced_bytes_of_last_append_file();
    std::set<std::uint64_t> offsets;
    if (long_run) {
      for (std::uint64_t b = 1; b < unsynced; ++b) offsets.insert(b);
    } else if (unsynced > 1) {
      offsets = {1, unsynced / 2, unsynced - 1};
    }
    for (std::uint64_t b : offsets)
      sweep_one({testing::crash_kind::tear_last_append, b}, "torn after " + std::to_string(b) + " bytes");
  }
  std::printf("crash sweep: %llu mutating operations, %llu crash states checked, "
              "%llu with a torn tail discarded, %llu where the in-flight commit survived\n",
              static_cast<unsigned long long>(total_ops),
              static_cast<unsigned long long>(counts.states),
              static_cast<unsigned long long>(counts.torn_tails),
              static_cast<unsigned long long>(counts.in_flight_survived));
  CHECK(counts.states >= 1000);
  CHECK(counts.torn_tails > 0);
  CHECK(counts.in_flight_survived > 0);
}
