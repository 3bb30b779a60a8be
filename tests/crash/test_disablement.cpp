// Disablement (SPEC_DIGEST §10; docs/optimizations/*.md, "disablement proof"): turning
// an optimization off means compiling with the baseline policy, and a directory written
// with the optimization on must open with it off, and the other way round:
//   - accelerated engine writes, the machine crashes (fault-injecting file system, every
//     crash point of the run, three power-loss variants), the baseline recovers;
//   - accelerated engine writes and closes, the baseline reopens;
//   - a log written alternately by both engines, with checkpoints by both, recovers the
//     same state with either, and its files are byte-identical to a baseline-only run.
#include "support/workload.hpp"

using namespace aerodb;
using namespace aerodb_test;

namespace {

open_options options_for(const std::shared_ptr<testing::fault_injection_fs>& fs) {
  open_options o;
  o.fs = fs;
  o.wal_segment_bytes = 2048;
  return o;
}

// Runs the whole workload until the file system dies; returns the steps completed.
template <class Db>
std::size_t run_until_failure(const mixed_workload& w, const std::shared_ptr<testing::fault_injection_fs>& fs) {
  auto db = Db::open("/db", options_for(fs));
  if (!db) return 0;
  std::vector<typename Db::read_view> held;
  std::size_t done = 0;
  for (const auto& s : w.steps) {
    bool ok = true;
    if (auto* x = std::get_if<wl_schema>(&s)) ok = (*db)->register_schema(x->json).has_value();
    else if (auto* c = std::get_if<wl_collection>(&s)) ok = (*db)->create_collection(c->name, c->schema_id).has_value();
    else if (auto* ix = std::get_if<wl_index>(&s)) ok = (*db)->create_index(ix->collection, ix->field).has_value();
    else if (auto* b = std::get_if<wl_batch>(&s)) ok = (*db)->commit(b->ops).has_value();
    else if (std::holds_alternative<wl_gc>(s)) ok = (*db)->gc().has_value();
    else if (std::holds_alternative<wl_checkpoint>(s)) ok = (*db)->checkpoint().has_value();
    else if (std::holds_alternative<wl_hold_view>(s)) held.push_back((*db)->read());
    else if (!held.empty()) held.erase(held.begin());
    if (!ok) break;
    ++done;
  }
  return done;
}

}  // namespace

TEST_CASE("accelerated writes, a crash, baseline recovery: at every crash point") {
  const mixed_workload w = make_mixed_workload(77, 120);
  // States after each completed step, from a clean baseline run: recovery must land on
  // one of them at or after the last acknowledged step.
  std::vector<state_map> states;
  {
    auto fs = std::make_shared<testing::fault_injection_fs>();
    auto db = open_or_fail<database>("/db", options_for(fs));
    std::vector<database::read_view> held;
    states.push_back(dump(*db));
    for (std::size_t i = 0; i < w.steps.size(); ++i) {
      run_steps(*db, w, i, i + 1, held);
      states.push_back(dump(*db));
    }
  }
  std::uint64_t total_ops = 0;
  {
    auto fs = std::make_shared<testing::fault_injection_fs>();
    REQUIRE(run_until_failure<accelerated_database>(w, fs) == w.steps.size());
    total_ops = fs->op_count();
  }
  std::uint64_t checked = 0;
  for (std::uint64_t k = 0; k <= total_ops; ++k) {
    for (auto kind : {testing::crash_kind::drop_unsynced, testing::crash_kind::keep_unsynced,
                      testing::crash_kind::tear_last_append}) {
      auto fs = std::make_shared<testing::fault_injection_fs>();
      fs->crash_after(k);
      const std::size_t done = run_until_failure<accelerated_database>(w, fs);
      fs->crash({kind, 5});
      INFO("crash after op " << k << ", kind " << static_cast<int>(kind) << ", steps done " << done);
      auto base = database::open("/db", options_for(fs));
      if (!base) FAIL("baseline recovery failed: " << base.error_value().to_string());
      const state_map got = dump(**base);
      // Acknowledged steps are all there; at most the step in flight is added.
      const bool at_done = got == states[done];
      const bool at_next = done + 1 < states.size() && got == states[done + 1];
      REQUIRE((at_done || at_next));
      base->reset();
      // The accelerated engine recovers the same files to the same state.
      auto accel = accelerated_database::open("/db", options_for(fs));
      REQUIRE(accel);
      REQUIRE(dump(**accel) == got);
      ++checked;
    }
  }
  std::printf("disablement sweep: %llu ops, %llu crash states recovered by the baseline\n",
              static_cast<unsigned long long>(total_ops), static_cast<unsigned long long>(checked));
  print_counts({{"campaign", "disablement"}, {"ops", total_ops}, {"crash_states", checked}});
  CHECK(checked >= 3 * total_ops);
}

TEST_CASE("accelerated writes and closes; the baseline reopens to the same state and answers") {
  const mixed_workload w = make_mixed_workload(91, 400);
  auto fs = std::make_shared<testing::fault_injection_fs>();
  state_map before;
  std::vector<std::string> answers;
  {
    auto db = open_or_fail<accelerated_database>("/db", options_for(fs));
    std::vector<accelerated_database::read_view> held;
    run_steps(*db, w, 0, w.steps.size(), held);
    before = dump(*db);
    answers = probe_answers(db->read());
  }
  REQUIRE(before == w.final_state);
  auto db = open_or_fail<database>("/db", options_for(fs));
  CHECK(dump(*db) == before);
  CHECK(probe_answers(db->read()) == answers);
  // And the baseline can go on writing to it.
  REQUIRE(db->insert("items", 1, R"({"_id":"after","qty":3})"));
}

TEST_CASE("a log written alternately by both engines recovers alike and matches a baseline-only log") {
  const mixed_workload w = make_mixed_workload(1234, 500);
  const std::size_t chunks = 6;
  const std::size_t per = (w.steps.size() + chunks - 1) / chunks;

  auto alternating = std::make_shared<testing::fault_injection_fs>();
  for (std::size_t c = 0; c < chunks; ++c) {
    const std::size_t from = c * per, to = std::min(w.steps.size(), from + per);
    if (c % 2 == 0) {
      auto db = open_or_fail<database>("/db", options_for(alternating));
      std::vector<database::read_view> held;
      run_steps(*db, w, from, to, held);
      if (c == 2) REQUIRE(db->checkpoint());
    } else {
      auto db = open_or_fail<accelerated_database>("/db", options_for(alternating));
      std::vector<accelerated_database::read_view> held;
      run_steps(*db, w, from, to, held);
      if (c == 3) REQUIRE(db->checkpoint());
    }
  }
  auto baseline_only = std::make_shared<testing::fault_injection_fs>();
  for (std::size_t c = 0; c < chunks; ++c) {
    const std::size_t from = c * per, to = std::min(w.steps.size(), from + per);
    auto db = open_or_fail<database>("/db", options_for(baseline_only));
    std::vector<database::read_view> held;
    run_steps(*db, w, from, to, held);
    if (c == 2 || c == 3) REQUIRE(db->checkpoint());
  }

  auto names = alternating->list_dir("/db");
  auto names_b = baseline_only->list_dir("/db");
  REQUIRE(names);
  REQUIRE(names_b);
  REQUIRE(*names == *names_b);
  for (const auto& n : *names) {
    if (n == "LOCK") continue;
    INFO("file " << n);
    CHECK(alternating->contents("/db/" + n) == baseline_only->contents("/db/" + n));
  }
  state_map by_baseline, by_accelerated;
  std::vector<std::string> answers_b, answers_a;
  {
    auto db = open_or_fail<database>("/db", options_for(alternating));
    by_baseline = dump(*db);
    answers_b = probe_answers(db->read());
  }
  {
    auto db = open_or_fail<accelerated_database>("/db", options_for(alternating));
    by_accelerated = dump(*db);
    answers_a = probe_answers(db->read());
  }
  CHECK(by_baseline == w.final_state);
  CHECK(by_accelerated == by_baseline);
  CHECK(answers_a == answers_b);
}
