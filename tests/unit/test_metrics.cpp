// Passive metrics (SPEC_DIGEST §11): the names the specs use, readable as a struct and as
// Prometheus text, and never read by the engine to decide anything.
//
// Passivity is shown two ways: a counter's type offers no way to read its value (checked
// at compile time below), and a scan of every engine header finds no call that reads the
// registry except the public metrics() accessor itself.
#include "support/common.hpp"

#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

using namespace aerodb;
using namespace aerodb_test;

namespace {

template <class C>
concept readable_counter = requires(const C& c) { c.load(); } || requires(const C& c) { c.value(); } ||
                           requires(const C& c) { c.get(); } ||
                           requires(const C& c) { static_cast<std::uint64_t>(c); } ||
                           requires(const C& c) { c.value_; } || requires(const C& c) { c == c; };

static_assert(!readable_counter<passive_counter>,
              "the engine must not be able to read a metric it counts");
static_assert(!std::is_copy_constructible_v<passive_counter>,
              "copying a counter would be a way to read it");

std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

TEST_CASE("no engine header reads a metric except the public accessor") {
  const char* root = std::getenv("AERODB_SOURCE_ROOT");
  REQUIRE_MESSAGE(root, "AERODB_SOURCE_ROOT must point at the source tree (meson test sets it)");
  std::size_t files = 0, accessor = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(std::filesystem::path(root) / "include" / "aerodb")) {
    if (!e.is_regular_file() || e.path().extension() != ".hpp") continue;
    ++files;
    std::istringstream lines(slurp(e.path()));
    std::string line;
    int n = 0;
    while (std::getline(lines, line)) {
      ++n;
      INFO(e.path().string() << ":" << n << ": " << line);
      if (line.find("metrics_.snapshot()") != std::string::npos) {
        // The only reads: the accessors that hand a copy to the caller (the database's,
        // and the replica's, which hands out its database's).
        CHECK(line.find("metrics_snapshot metrics() const") != std::string::npos);
        ++accessor;
      }
      CHECK(line.find(".metrics()") == std::string::npos);
      CHECK(line.find("->metrics()") == std::string::npos);
    }
  }
  CHECK(files > 30);
  CHECK(accessor == 2);
}

TEST_CASE_TEMPLATE("the counters describe the work done", Db, AERODB_ENGINES) {
  open_options o;
  o.fs = std::make_shared<testing::fault_injection_fs>();
  auto db = open_or_fail<Db>("/db", o);
  setup_users(*db);
  REQUIRE(db->create_index("users", "age"));
  for (int i = 0; i < 20; ++i)
    REQUIRE(db->insert("users", 1, R"({"_id":"u)" + std::to_string(i) + R"(","name":"n","age":)" + std::to_string(i) + "}"));
  auto view = db->read();
  REQUIRE(view.get("users", "u3"));
  auto q = view.query(R"({"collection":"users","schema_version":1,"filter":{"age":{"$gte":5,"$lt":10}},"limit":100})");
  REQUIRE(q);
  REQUIRE(q->documents.size() == 5);
  REQUIRE(db->checkpoint());
  const auto m = db->metrics();
  const std::uint64_t commits = 23;  // schema, collection, index, 20 inserts
  CHECK(m.group_commit_size_sum == commits);
  CHECK(m.group_commit_groups == commits);  // one thread: every group is a lone commit
  CHECK(m.group_commit_fsync_count == commits);
  CHECK(m.group_commit_waiters == 0);
  CHECK(m.group_commit_size_max == 1);
  CHECK(m.wal_records == commits);
  CHECK(m.wal_bytes == db->wal_stats().bytes_appended);
  CHECK(m.wal_write_calls == commits);
  CHECK(m.index_lookup_count == 1);
  CHECK(m.index_candidate_count >= 5);
  CHECK(m.index_filter_false_positives == m.index_candidate_count - 5);
  CHECK(m.read_path_cache_hits + m.read_path_cache_misses + m.read_path_version_chain_traversals > 0);
  CHECK(m.checkpoints == 1);
  CHECK(m.recovery_runs == 1);
  CHECK(m.index_rebuild_count == 1);  // age, built when created (_id grows with the data)
}

TEST_CASE("Prometheus text names every metric the specs name") {
  open_options o;
  o.fs = std::make_shared<testing::fault_injection_fs>();
  auto db = open_or_fail<accelerated_database>("/db", o);
  setup_users(*db);
  const std::string text = db->metrics().to_prometheus();
  for (const char* spec_name :
       {"read_path.version_chain_traversals", "read_path.cache_hits", "read_path.cache_misses",
        "read_path.materialization_copies", "index.lookup.count", "index.candidate.count",
        "index.filter.false_positives", "index.rebuild.duration", "group_commit.size",
        "group_commit.fsync_count", "group_commit.waiters"}) {
    std::string name = std::string("aerodb_") + spec_name;
    for (auto& ch : name)
      if (ch == '.') ch = '_';
    INFO(spec_name);
    CHECK(text.find("\n" + name) != std::string::npos);
  }
  // Every sample line is `name value`, preceded by its HELP and TYPE lines.
  std::istringstream lines(text);
  std::string line;
  const std::regex sample("^aerodb_[a-z_]+ [0-9]+$"), help("^# HELP aerodb_[a-z_]+ .+$"),
      type("^# TYPE aerodb_[a-z_]+ (counter|gauge)$");
  int samples = 0;
  while (std::getline(lines, line)) {
    INFO(line);
    CHECK((std::regex_match(line, sample) || std::regex_match(line, help) || std::regex_match(line, type)));
    samples += std::regex_match(line, sample);
  }
  CHECK(samples == 24);
  CHECK(text.find("aerodb_group_commit_size_sum 2\n") != std::string::npos);
}
