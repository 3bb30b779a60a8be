// Equivalence (docs/optimizations/*.md, "equivalence argument"): the same deterministic
// single-threaded workload run on the baseline and on every other built-in policy
// combination produces
//   - byte-identical files: every WAL segment, snapshot data file, manifest and
//     CHECKPOINT record, and no other file;
//   - identical query answers (documents, bytes and CommitIds), at the newest boundary and
//     in read views held at older ones;
//   - identical recovered state and answers after reopening.
// The workload mixes schemas, collections, indexes, batches, deletes, GC with views held,
// and checkpoints, with 2 KiB segments so rotations happen throughout.
#include "support/workload.hpp"

#include <thread>

using namespace aerodb;
using namespace aerodb_test;

namespace {

struct fingerprint {
  std::map<std::string, std::vector<std::byte>> files;
  std::vector<std::string> answers;
  std::vector<std::string> old_view_answers;
  state_map state;
  std::vector<std::string> recovered_answers;
  state_map recovered_state;
  commit_id last = 0;
  memory_stats memory;
  std::uint64_t segments_created = 0;
};

template <class Db>
fingerprint run_workload(const mixed_workload& w) {
  auto fs = std::make_shared<testing::fault_injection_fs>();
  open_options o;
  o.fs = fs;
  o.wal_segment_bytes = 2048;
  fingerprint f;
  {
    auto db = open_or_fail<Db>("/db", o);
    std::vector<typename Db::read_view> held;
    const std::size_t half = w.steps.size() / 2;
    run_steps(*db, w, 0, half, held);
    auto old_view = db->read();
    run_steps(*db, w, half, w.steps.size(), held);
    f.answers = probe_answers(db->read());
    f.old_view_answers = probe_answers(old_view);
    f.state = dump(*db);
    f.last = db->last_commit_id();
    f.memory = db->memory();
    f.segments_created = db->wal_stats().segments_created;
  }
  auto names = fs->list_dir("/db");
  REQUIRE(names);
  for (const auto& n : *names)
    if (n != "LOCK") f.files[n] = fs->contents("/db/" + n);
  auto db = open_or_fail<Db>("/db", o);
  f.recovered_answers = probe_answers(db->read());
  f.recovered_state = dump(*db);
  return f;
}

}  // namespace

TEST_CASE_TEMPLATE("every policy combination writes the baseline's bytes and gives its answers", Db,
                   AERODB_ENGINES_COMPLETE) {
  const mixed_workload w = make_mixed_workload(4242, 600);
  const fingerprint base = run_workload<database>(w);
  const fingerprint mine = run_workload<Db>(w);

  // The workload exercised what it claims to.
  std::size_t segments = 0, snapshots = 0;
  for (const auto& [name, bytes] : base.files) {
    segments += format::parse_segment_file_name(name).has_value();
    snapshots += format::parse_snapshot_data_file_name(name).has_value();
  }
  REQUIRE(segments >= 1);                 // checkpoints removed the ones they cover
  REQUIRE(base.segments_created >= 20);  // rotation happened throughout
  CHECK(mine.segments_created == base.segments_created);
  REQUIRE(snapshots == 1);
  REQUIRE(base.files.count(std::string(format::checkpoint_file_name)) == 1);
  REQUIRE(base.state == w.final_state);

  REQUIRE(mine.files.size() == base.files.size());
  for (const auto& entry : base.files) {
    const std::string& name = entry.first;  // (Clang 14 cannot capture a structured binding in INFO)
    INFO("file " << name);
    REQUIRE(mine.files.count(name) == 1);
    CHECK(mine.files.at(name) == entry.second);
  }
  CHECK(mine.last == base.last);
  CHECK(mine.answers == base.answers);
  CHECK(mine.old_view_answers == base.old_view_answers);
  CHECK(mine.state == base.state);
  CHECK(mine.recovered_state == base.recovered_state);
  CHECK(mine.recovered_answers == base.recovered_answers);
  CHECK(mine.memory.versions == base.memory.versions);
  CHECK(mine.memory.document_bytes == base.memory.document_bytes);
  CHECK(base.recovered_state == base.state);
}

namespace {

// The accelerated engine with its index rebuild on one thread (policies/accelerated_index.hpp
// asks for one per core): the same files, so either opens what the other wrote.
struct one_thread_accelerated_index : policies::accelerated_index {
  static constexpr bool parallel_rebuild = false;
};
using one_thread_database = basic_database<policies::group_commit, policies::view_cache, one_thread_accelerated_index,
                                           policies::compact_memory_layout, policies::pipelined_checkpoint>;

// Whole-index walks and every equality the workload's fields take: what each index holds,
// in its order.
template <class View>
std::vector<std::string> index_answers(const View& view) {
  std::vector<std::string> queries = {
      R"({"collection":"users","schema_version":1,"sort":{"age":"asc"},"limit":10000})",
      R"({"collection":"users","schema_version":1,"sort":{"age":"desc"},"limit":10000})",
      R"({"collection":"users","schema_version":1,"filter":{"address.city":{"$gte":""}},"sort":{"address.city":"asc"},"limit":10000})",
      R"({"collection":"items","schema_version":1,"sort":{"qty":"asc"},"limit":10000})",
  };
  for (int age = 0; age <= 100; ++age)
    queries.push_back(R"({"collection":"users","schema_version":1,"filter":{"age":)" + std::to_string(age) +
                      R"(},"limit":10000})");
  for (int city = 0; city < 10; ++city)
    queries.push_back(R"({"collection":"users","schema_version":1,"filter":{"address.city":"c)" +
                      std::to_string(city) + R"("},"limit":10000})");
  return answers_to(view, queries);
}

}  // namespace

// The accelerated policy splits a rebuild over threads (engine/indexer.hpp: the walk in
// parts of consecutive keys, each index filled by one thread). Opening the same files on
// one thread must give the same indexes, which the baseline's answers confirm.
TEST_CASE("an index rebuild on several threads gives what one thread gives") {
  if (std::thread::hardware_concurrency() < 2) WARN("one core: the rebuild runs on one thread here too");
  const mixed_workload w = make_mixed_workload(777, static_cast<int>(4000 * test_scale()));
  auto fs = std::make_shared<testing::fault_injection_fs>();
  open_options o;
  o.fs = fs;
  {
    auto db = open_or_fail<accelerated_database>("/db", o);
    std::vector<accelerated_database::read_view> held;
    run_steps(*db, w, 0, w.steps.size(), held);
  }
  std::vector<std::string> many, one, base;
  {
    auto db = open_or_fail<accelerated_database>("/db", o);
    many = index_answers(db->read());
  }
  {
    auto db = open_or_fail<one_thread_database>("/db", o);
    one = index_answers(db->read());
  }
  {
    auto db = open_or_fail<database>("/db", o);
    base = index_answers(db->read());
  }
  std::size_t answered = 0;
  for (const auto& a : base) answered += a.empty() ? 0 : 1;
  REQUIRE(answered > 60);  // the queries reach the data
  CHECK(many == one);
  CHECK(many == base);
}
