// The deterministic workload of the real-system-call crash test (tests/crash/
// test_real_syscalls.cpp), shared by the program that runs it under strace
// (tests/crash/real_syscalls_workload.cpp) and by the test, which computes from the same
// description what the store must hold after every CommitId.
//
// About 90 commits on a new store: a schema, a collection, an index on `qty`, then single
// inserts, updates and deletes and a few atomic batches, with two checkpoints and a GC in
// between. Document sizes vary (a pad string of 0 to ~300 bytes) so that records cross
// 512-byte sectors and, with small WAL segments, fill segments unevenly.
//
// Only the standard library: the workload program includes it next to the engine, the
// test next to doctest. It draws from std::mt19937_64 directly (its sequence is fixed by
// the standard), not through <random>'s distributions, which differ between standard
// libraries, so the workload is the same everywhere.
#pragma once

#include <cstdint>
#include <random>
#include <cstdio>
#include <iterator>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace aerodb_test::real_syscalls {

inline const char* item_schema = R"({"id":"item","version":1,"fields":{
  "_id":{"type":"string","required":true},
  "qty":{"type":"int","required":true},
  "tag":{"type":"string"},
  "pad":{"type":"string"}}})";
inline const char* collection = "items";
inline const char* schema_id = "item";
inline const char* index_field = "qty";

enum class step_kind : std::uint8_t {
  register_schema,
  create_collection,
  create_index,
  write,  // one or more document operations under one CommitId (insert/update/remove call
          // for one operation, a write_batch for several)
  gc,
  checkpoint,
};

enum class op_kind : std::uint8_t { insert, update, remove };

struct doc_op {
  op_kind kind;
  std::string id;
  std::string json;  // insert and update
};

struct step {
  step_kind kind;
  std::vector<doc_op> ops;  // write only
  // The CommitId this step is acknowledged with (0 for a checkpoint, which logs nothing).
  std::uint64_t commit = 0;
};

// _id -> JSON text of the document, in the one collection.
using contents = std::map<std::string, std::string>;

struct workload {
  std::vector<step> steps;
  // What the store holds after each CommitId (0 included: the empty new store). The
  // collection exists from `collection_created_at` on.
  std::map<std::uint64_t, contents> after;
  std::uint64_t collection_created_at = 0;
  std::uint64_t index_created_at = 0;  // the index on `index_field`
  std::uint64_t last_commit = 0;
};

inline bool logs_commit(step_kind k) { return k != step_kind::checkpoint; }

namespace detail {

// Uniform enough below n for a workload; exact sequence fixed by the standard.
struct generator {
  std::mt19937_64 engine;
  std::uint64_t below(std::uint64_t n) { return engine() % n; }
};

inline std::string document(const std::string& id, std::uint64_t qty, std::uint64_t version,
                            std::size_t pad) {
  std::string p;
  for (std::size_t i = 0; i < pad; ++i) p += static_cast<char>('a' + (i * 7 + version) % 26);
  return R"({"_id":")" + id + R"(","qty":)" + std::to_string(qty) + R"(,"tag":"v)" +
         std::to_string(version) + R"(","pad":")" + p + R"("})";
}

}  // namespace detail

// The workload: `data_commits` document commits after the three catalog commits, with
// checkpoints after a third and two thirds of them and a GC before the second checkpoint.
inline workload make_workload(std::uint64_t seed = 20260807, int data_commits = 86) {
  workload w;
  detail::generator rng{std::mt19937_64{seed}};
  w.steps.push_back({step_kind::register_schema, {}, 0});
  w.steps.push_back({step_kind::create_collection, {}, 0});
  w.steps.push_back({step_kind::create_index, {}, 0});

  contents live;  // the generator's view, to pick ids to update and delete
  int next_key = 0;
  std::uint64_t version = 0;
  auto fresh_op = [&](op_kind k, const std::vector<std::string>& taken) -> doc_op {
    auto pick_existing = [&]() -> std::string {
      for (int tries = 0; tries < 64; ++tries) {
        auto it = live.begin();
        std::advance(it, static_cast<std::ptrdiff_t>(rng.below(live.size())));
        bool used = false;
        for (const auto& t : taken) used |= t == it->first;
        if (!used) return it->first;
      }
      return {};
    };
    ++version;
    const std::size_t pad = static_cast<std::size_t>(rng.below(4) == 0 ? 150 + rng.below(160) : rng.below(90));
    if (k != op_kind::insert && live.size() > taken.size() + 1) {
      std::string id = pick_existing();
      if (!id.empty()) {
        if (k == op_kind::remove) return {k, id, {}};
        return {k, id, detail::document(id, rng.below(5), version, pad)};
      }
    }
    char buf[16];
    std::snprintf(buf, sizeof buf, "k%03d", next_key++);
    return {op_kind::insert, buf, detail::document(buf, rng.below(5), version, pad)};
  };

  for (int i = 0; i < data_commits; ++i) {
    if (i == data_commits / 3) w.steps.push_back({step_kind::checkpoint, {}, 0});
    if (i == 2 * data_commits / 3) {
      w.steps.push_back({step_kind::gc, {}, 0});
      w.steps.push_back({step_kind::checkpoint, {}, 0});
    }
    step s{step_kind::write, {}, 0};
    const std::uint64_t r = rng.below(100);
    const std::size_t nops = (i % 9 == 4) ? 2 + static_cast<std::size_t>(rng.below(2)) : 1;
    std::vector<std::string> taken;
    for (std::size_t j = 0; j < nops; ++j) {
      const op_kind k = i < 6 ? op_kind::insert
                        : r < 45 ? op_kind::insert
                        : r < 80 ? op_kind::update
                                 : op_kind::remove;
      const op_kind kj = j == 0 ? k : static_cast<op_kind>(rng.below(3));
      doc_op op = fresh_op(kj, taken);
      taken.push_back(op.id);
      if (op.kind == op_kind::remove) live.erase(op.id);
      else live[op.id] = op.json;
      s.ops.push_back(std::move(op));
    }
    w.steps.push_back(std::move(s));
  }

  // CommitIds and the contents after each.
  std::uint64_t c = 0;
  contents state;
  w.after[0] = state;
  for (auto& s : w.steps) {
    if (!logs_commit(s.kind)) continue;
    s.commit = ++c;
    if (s.kind == step_kind::create_collection) w.collection_created_at = c;
    if (s.kind == step_kind::create_index) w.index_created_at = c;
    for (const auto& op : s.ops) {
      if (op.kind == op_kind::remove) state.erase(op.id);
      else state[op.id] = op.json;
    }
    w.after[c] = state;
  }
  w.last_commit = c;
  return w;
}

}  // namespace aerodb_test::real_syscalls
