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

#include <set>
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

// The accelerated engine on one thread: its index rebuild, a large batch's preparation and
// its index inserts (the accelerated policies ask for a thread per core for each): the
// same files, so either opens what the other wrote.
struct one_thread_accelerated_index : policies::accelerated_index {
  static constexpr bool parallel_rebuild = false;
  static constexpr bool parallel_commit_inserts = false;
};
// Group commit with a write batch prepared on the committing thread alone.
struct one_thread_group_commit : policies::group_commit {
  static constexpr bool parallel_prepare = false;
};
using one_thread_database = basic_database<one_thread_group_commit, policies::view_cache, one_thread_accelerated_index,
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

namespace {

// Large write batches of users: inserts, and updates and removes of earlier documents
// (some already removed, so some removes are no-ops).
std::vector<write_batch> large_batches(std::uint32_t seed, int batches, int per_batch) {
  std::mt19937 rng(seed);
  std::vector<write_batch> out;
  std::set<int> removed;
  int next = 0;
  for (int b = 0; b < batches; ++b) {
    write_batch batch;
    std::set<int> touched;  // a batch may touch each document once
    for (int i = 0; i < per_batch; ++i) {
      const bool touch_old = next > 0 && rng() % 4 == 0;
      const int key = touch_old ? static_cast<int>(rng() % static_cast<unsigned>(next)) : next++;
      if (!touched.insert(key).second) continue;
      const std::string id = "u" + std::to_string(100000 + key);
      const std::string doc = R"({"_id":")" + id + R"(","name":"n)" + std::to_string(rng() % 50) + R"(","age":)" +
                              std::to_string(rng() % 100) + R"(,"address":{"city":"c)" + std::to_string(rng() % 9) +
                              R"("}})";
      if (!touch_old) {
        batch.insert("users", 1, doc);
      } else if (removed.count(key) || rng() % 3 == 0) {
        batch.remove("users", id);  // a second remove is a no-op
        removed.insert(key);
      } else {
        batch.update("users", id, 1, doc);
      }
    }
    out.push_back(std::move(batch));
  }
  return out;
}

template <class Db>
std::vector<std::string> commit_large_batches(const std::shared_ptr<testing::fault_injection_fs>& fs,
                                              const std::vector<write_batch>& batches) {
  open_options o;
  o.fs = fs;
  std::vector<std::string> outcomes;
  {
    auto db = open_or_fail<Db>("/db", o);
    setup_users(*db);
    REQUIRE(db->register_schema(item_schema_v1));  // index_answers asks of items too
    REQUIRE(db->create_collection("items", "item"));
    REQUIRE(db->create_index("items", "qty"));
    REQUIRE(db->create_index("users", "age"));
    REQUIRE(db->create_index("users", "address.city"));
    for (const auto& b : batches) {
      auto r = db->commit(b);
      REQUIRE(r);
      std::string applied;
      for (const bool a : r->applied) applied += a ? '1' : '0';
      outcomes.push_back(std::to_string(r->commit) + ":" + applied);
    }
    // A batch whose operations 300 and 450 are invalid fails as a whole, naming 300.
    write_batch bad;
    for (int i = 0; i < 600; ++i) {
      const std::string id = "x" + std::to_string(i);
      if (i == 300) bad.insert("users", 1, R"({"_id":")" + id + R"(","name":7})");        // schema
      else if (i == 450) bad.insert("users", 1, R"({"_id":")" + id + R"(","name":"a",)");  // syntax
      else bad.insert("users", 1, R"({"_id":")" + id + R"(","name":"a","age":1})");
    }
    auto r = db->commit(bad);
    REQUIRE_FALSE(r);
    outcomes.push_back(std::string(r.error_value().name()) + " op " + std::string(r.error_value().detail("batch_op")));
    const auto before = index_answers(db->read());
    outcomes.insert(outcomes.end(), before.begin(), before.end());
  }
  auto db = open_or_fail<Db>("/db", o);  // and what recovery makes of the same log
  const auto after = index_answers(db->read());
  outcomes.insert(outcomes.end(), after.begin(), after.end());
  return outcomes;
}

}  // namespace

// The accelerated policies prepare a large batch (parse, validate, encode) on a thread
// per core and put its index entries in on a thread per index. The one-thread engine and
// the baseline must see the same outcomes, the same first bad operation, the same
// indexes, and byte for byte the same log.
TEST_CASE("large write batches on several threads give what one thread gives") {
  if (std::thread::hardware_concurrency() < 2) WARN("one core: large batches run on one thread here too");
  const auto batches = large_batches(5150, 6, 900);
  auto fs_many = std::make_shared<testing::fault_injection_fs>();
  auto fs_one = std::make_shared<testing::fault_injection_fs>();
  auto fs_base = std::make_shared<testing::fault_injection_fs>();
  const auto many = commit_large_batches<accelerated_database>(fs_many, batches);
  const auto one = commit_large_batches<one_thread_database>(fs_one, batches);
  const auto base = commit_large_batches<database>(fs_base, batches);
  REQUIRE(many.size() > batches.size() + 1);
  CHECK(many[batches.size()] == "AERO_SCHEMA_VALIDATION_FAILED op 300");
  std::size_t answered = 0;
  for (std::size_t i = batches.size() + 1; i < base.size(); ++i) answered += base[i].empty() ? 0 : 1;
  CHECK(answered > 100);  // the queries reach the data
  CHECK(many == one);
  CHECK(many == base);
  auto names = fs_base->list_dir("/db");
  REQUIRE(names);
  std::size_t segments = 0;
  for (const auto& name : *names) {
    if (!format::parse_segment_file_name(name)) continue;
    ++segments;
    INFO(name);
    CHECK(fs_many->durable_contents("/db/" + name) == fs_base->durable_contents("/db/" + name));
    CHECK(fs_one->durable_contents("/db/" + name) == fs_base->durable_contents("/db/" + name));
  }
  CHECK(segments > 0);
}
