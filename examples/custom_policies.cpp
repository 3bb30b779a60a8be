// Custom policies: build an engine from a mixed combination of built-in policies plus one
// written right here, and see that it reads the same directory as the stock engines.
//
//   custom_policies [DATA_DIR]     (default: ./custom-policies-data)
//
// The engine below uses
//   - policies::group_commit          concurrent commits share an fsync (built in)
//   - stop_at_first_visible           a VisibilityCachePolicy written in this file
//   - policies::ordered_index         the baseline index (built in)
//
// A policy is any type that meets its concept in aerodb/policies/concepts.hpp. If one is
// missing a member, the compiler says which (try deleting `zero_copy` below).
#include <aerodb/aerodb.hpp>

#include "example_dir.hpp"

#include <atomic>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

namespace {

// A read-path policy with no cache: it walks a key's chain (newest first) and stops at
// the first version the read view may see, and reads hand out copies of the bytes.
// Per-view state is where a policy keeps anything it learns during one read view; this
// one only counts lookups, to show that the state exists per view.
struct stop_at_first_visible {
  struct view_state {
    std::uint64_t lookups = 0;
  };
  static constexpr bool zero_copy = false;

  static const aerodb::mvcc::version* find_visible(view_state& state, const aerodb::mvcc::key_entry& key,
                                                   aerodb::commit_id bound,
                                                   aerodb::read_path_counters& counters) {
    ++state.lookups;
    ++counters.version_chain_traversals;
    for (const auto& v : key.chain) {
      ++counters.versions_visited;
      if (v.commit <= bound) return &v;  // chains are ordered newest first
    }
    return nullptr;
  }
};

using my_database = aerodb::basic_database<aerodb::policies::group_commit, stop_at_first_visible,
                                           aerodb::policies::ordered_index>;

constexpr const char* schema = R"({"id":"event","version":1,"fields":{
  "_id":{"type":"string","required":true},
  "writer":{"type":"int","required":true},
  "seq":{"type":"int","required":true}}})";

}  // namespace

int main(int argc, char** argv) {
  const std::string dir = argc > 1 ? argv[1] : "custom-policies-data";
  if (!prepare_example_dir(dir)) return 1;
  constexpr int writers = 8, per_writer = 50;
  {
    auto db = my_database::open(dir);
    if (!db) return fail(db.error_value());
    if (auto r = (*db)->register_schema(schema); !r) return fail(r.error_value());
    if (auto r = (*db)->create_collection("events", "event"); !r) return fail(r.error_value());
    if (auto r = (*db)->create_index("events", "writer"); !r) return fail(r.error_value());
    if (auto r = (*db)->create_index("events", "seq"); !r) return fail(r.error_value());

    // Several threads commit at once: group commit lets them share fsyncs.
    std::atomic<int> failures{0};
    std::vector<std::thread> threads;
    for (int w = 0; w < writers; ++w)
      threads.emplace_back([&, w] {
        for (int i = 0; i < per_writer; ++i) {
          const std::string json = R"({"_id":"w)" + std::to_string(w) + "-" + std::to_string(i) +
                                   R"(","writer":)" + std::to_string(w) + R"(,"seq":)" + std::to_string(i) + "}";
          if (!(*db)->insert("events", 1, json)) ++failures;
        }
      });
    for (auto& t : threads) t.join();
    if (failures) {
      std::fprintf(stderr, "%d commits failed\n", failures.load());
      return 1;
    }
    const auto m = (*db)->metrics();
    std::printf("%llu commits in %llu groups (largest %llu), %llu fsyncs\n",
                static_cast<unsigned long long>(m.group_commit_size_sum),
                static_cast<unsigned long long>(m.group_commit_groups),
                static_cast<unsigned long long>(m.group_commit_size_max),
                static_cast<unsigned long long>(m.group_commit_fsync_count));

    auto view = (*db)->read();
    auto q = view.query(R"({"collection":"events","schema_version":1,"filter":{"writer":3},"sort":{"seq":"desc"},"limit":3})");
    if (!q) return fail(q.error_value());
    std::printf("writer 3, newest three:");
    for (const auto& d : q->documents) std::printf(" %s", std::string(d.doc.id()).c_str());
    std::printf("\n");
    if (q->documents.size() != 3 || q->documents[0].doc.id() != "w3-49") {
      std::fprintf(stderr, "unexpected query answer\n");
      return 1;
    }
  }
  // The same directory, opened by the stock engines: one format for every combination.
  auto baseline = aerodb::database::open(dir);
  if (!baseline) return fail(baseline.error_value());
  std::size_t seen = 0;
  if (auto n = (*baseline)->read().for_each("events", [&](const aerodb::versioned_document&) { ++seen; }); !n)
    return fail(n.error_value());
  std::printf("the baseline engine recovered %zu events\n", seen);
  baseline->reset();
  auto accelerated = aerodb::accelerated_database::open(dir);
  if (!accelerated) return fail(accelerated.error_value());
  const auto last = (*accelerated)->last_commit_id();
  std::printf("the accelerated engine recovered up to CommitId %llu\n", static_cast<unsigned long long>(last));
  if (seen != writers * per_writer || last != 4 + writers * per_writer) {
    std::fprintf(stderr, "recovered state differs from what was written\n");
    return 1;
  }
  return 0;
}
