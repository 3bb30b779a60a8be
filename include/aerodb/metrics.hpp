// Passive metrics (SPEC_DIGEST §11): counters the engine adds to and never reads.
//
// The rule that metrics never influence control flow is enforced by the types: the
// engine holds `passive_counter`s, which offer `add` and `raise_to` and no way to read
// the value back. Only `metrics_registry::snapshot()`, the counters' one friend, reads
// them, to hand the caller a plain `metrics_snapshot`, and the engine calls snapshot()
// only from its public `metrics()`. tests/test_metrics.cpp checks both halves: that a
// counter offers no way to read it, and that no engine header calls snapshot() or
// metrics() anywhere else.
//
// Names follow the specs; in Prometheus text the dots become underscores and every name
// gets the `aerodb_` prefix (read_path.cache_hits -> aerodb_read_path_cache_hits_total).
//
// Thread safety: counters are relaxed atomics, so a snapshot taken while work goes on is
// a set of values each of which was true at some moment, not one consistent instant.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>

namespace aerodb {

class metrics_registry;

class passive_counter {
 public:
  void add(std::uint64_t n = 1) noexcept {
    if (n) value_.fetch_add(n, std::memory_order_relaxed);
  }
  // Keeps the largest value ever offered (for maxima such as the largest commit group).
  void raise_to(std::uint64_t n) noexcept {
    std::uint64_t seen = value_.load(std::memory_order_relaxed);
    while (seen < n && !value_.compare_exchange_weak(seen, n, std::memory_order_relaxed)) {}
  }

 private:
  friend class metrics_registry;
  std::atomic<std::uint64_t> value_{0};
};

// Work a read view did during one call, counted locally and added to the registry when
// the call ends (one atomic add per counter per call, not per document).
struct read_path_counters {
  std::uint64_t version_chain_traversals = 0;  // chains walked (a cache hit walks none)
  std::uint64_t versions_visited = 0;          // versions looked at while walking
  std::uint64_t cache_hits = 0;
  std::uint64_t cache_misses = 0;
  std::uint64_t materialization_copies = 0;    // documents copied out (not shared)
  std::uint64_t index_lookups = 0;
  std::uint64_t index_candidates = 0;          // candidate entries an index proposed
  std::uint64_t index_false_positives = 0;     // proposed, then rejected by the checks
  std::uint64_t index_order_fallbacks = 0;     // index-order walks abandoned (order broken)
};

// A plain copy of every counter, for callers.
struct metrics_snapshot {
  std::uint64_t read_path_version_chain_traversals = 0;
  std::uint64_t read_path_versions_visited = 0;
  std::uint64_t read_path_cache_hits = 0;
  std::uint64_t read_path_cache_misses = 0;
  std::uint64_t read_path_materialization_copies = 0;
  std::uint64_t index_lookup_count = 0;
  std::uint64_t index_candidate_count = 0;
  std::uint64_t index_filter_false_positives = 0;
  std::uint64_t index_order_fallbacks = 0;
  std::uint64_t index_rebuild_count = 0;
  std::chrono::nanoseconds index_rebuild_duration{0};
  std::uint64_t group_commit_groups = 0;    // groups published (one fsync may cover several)
  std::uint64_t group_commit_size_sum = 0;  // commits written in those groups
  std::uint64_t group_commit_size_max = 0;
  std::uint64_t group_commit_fsync_count = 0;
  std::uint64_t group_commit_waiters = 0;   // commits made durable by another commit's fsync
  std::uint64_t wal_bytes = 0;
  std::uint64_t wal_records = 0;
  std::uint64_t wal_write_calls = 0;
  std::uint64_t checkpoints = 0;
  std::chrono::nanoseconds checkpoint_duration{0};
  std::uint64_t recovery_runs = 0;
  std::chrono::nanoseconds recovery_duration{0};
  std::uint64_t recovery_torn_tail_bytes = 0;

  // Prometheus text exposition format (version 0.0.4).
  std::string to_prometheus() const {
    std::string out;
    auto emit = [&](const char* name, const char* type, const char* help, std::uint64_t v) {
      out += "# HELP aerodb_";
      out += name;
      out += ' ';
      out += help;
      out += "\n# TYPE aerodb_";
      out += name;
      out += ' ';
      out += type;
      out += "\naerodb_";
      out += name;
      out += ' ';
      out += std::to_string(v);
      out += '\n';
    };
    auto nanos = [](std::chrono::nanoseconds d) { return d.count(); };
    emit("read_path_version_chain_traversals_total", "counter", "Version chains walked by read views.", read_path_version_chain_traversals);
    emit("read_path_versions_visited_total", "counter", "Versions examined while walking chains.", read_path_versions_visited);
    emit("read_path_cache_hits_total", "counter", "Visibility decisions answered by a read view's cache.", read_path_cache_hits);
    emit("read_path_cache_misses_total", "counter", "Visibility decisions a read view's cache did not hold.", read_path_cache_misses);
    emit("read_path_materialization_copies_total", "counter", "Documents copied out of their version.", read_path_materialization_copies);
    emit("index_lookup_count_total", "counter", "Index lookups made by queries.", index_lookup_count);
    emit("index_candidate_count_total", "counter", "Candidate entries proposed by indexes.", index_candidate_count);
    emit("index_filter_false_positives_total", "counter", "Candidates rejected by visibility or predicate checks.", index_filter_false_positives);
    emit("index_order_fallbacks_total", "counter", "Index-order query walks abandoned for the general path because the index broke its order.", index_order_fallbacks);
    emit("index_rebuild_count_total", "counter", "Index builds (at recovery and index creation).", index_rebuild_count);
    emit("index_rebuild_duration_nanoseconds_total", "counter", "Time spent building indexes.", static_cast<std::uint64_t>(nanos(index_rebuild_duration)));
    emit("group_commit_groups_total", "counter", "Commit groups published; one fsync may cover several.", group_commit_groups);
    emit("group_commit_size_sum", "counter", "Commits written in commit groups.", group_commit_size_sum);
    emit("group_commit_size_max", "gauge", "Largest commit group so far.", group_commit_size_max);
    emit("group_commit_fsync_count_total", "counter", "fsyncs of the write-ahead log made for commits.", group_commit_fsync_count);
    emit("group_commit_waiters_total", "counter", "Commits made durable by another commit's fsync.", group_commit_waiters);
    emit("wal_bytes_total", "counter", "Bytes appended to the write-ahead log.", wal_bytes);
    emit("wal_records_total", "counter", "Records appended to the write-ahead log.", wal_records);
    emit("wal_write_calls_total", "counter", "Write calls made to the write-ahead log.", wal_write_calls);
    emit("checkpoints_total", "counter", "Checkpoints completed.", checkpoints);
    emit("checkpoint_duration_nanoseconds_total", "counter", "Time spent in completed checkpoints.", static_cast<std::uint64_t>(nanos(checkpoint_duration)));
    emit("recovery_runs_total", "counter", "Recoveries run by this instance.", recovery_runs);
    emit("recovery_duration_nanoseconds_total", "counter", "Time spent recovering.", static_cast<std::uint64_t>(nanos(recovery_duration)));
    emit("recovery_torn_tail_bytes_total", "counter", "Bytes of torn log tail discarded at recovery.", recovery_torn_tail_bytes);
    return out;
  }
};

// The engine's counters. Only snapshot() reads them.
class metrics_registry {
 public:
  passive_counter read_path_version_chain_traversals, read_path_versions_visited,
      read_path_cache_hits, read_path_cache_misses, read_path_materialization_copies;
  passive_counter index_lookup_count, index_candidate_count, index_filter_false_positives,
      index_order_fallbacks, index_rebuild_count, index_rebuild_duration_ns;
  passive_counter group_commit_groups, group_commit_size_sum, group_commit_size_max,
      group_commit_fsync_count, group_commit_waiters;
  passive_counter wal_bytes, wal_records, wal_write_calls;
  passive_counter checkpoints, checkpoint_duration_ns;
  passive_counter recovery_runs, recovery_duration_ns, recovery_torn_tail_bytes;

  void add(const read_path_counters& c) noexcept {
    read_path_version_chain_traversals.add(c.version_chain_traversals);
    read_path_versions_visited.add(c.versions_visited);
    read_path_cache_hits.add(c.cache_hits);
    read_path_cache_misses.add(c.cache_misses);
    read_path_materialization_copies.add(c.materialization_copies);
    index_lookup_count.add(c.index_lookups);
    index_candidate_count.add(c.index_candidates);
    index_filter_false_positives.add(c.index_false_positives);
    index_order_fallbacks.add(c.index_order_fallbacks);
  }

  metrics_snapshot snapshot() const noexcept {
    auto r = [](const passive_counter& c) { return c.value_.load(std::memory_order_relaxed); };
    auto ns = [&](const passive_counter& c) { return std::chrono::nanoseconds(static_cast<std::int64_t>(r(c))); };
    metrics_snapshot s;
    s.read_path_version_chain_traversals = r(read_path_version_chain_traversals);
    s.read_path_versions_visited = r(read_path_versions_visited);
    s.read_path_cache_hits = r(read_path_cache_hits);
    s.read_path_cache_misses = r(read_path_cache_misses);
    s.read_path_materialization_copies = r(read_path_materialization_copies);
    s.index_lookup_count = r(index_lookup_count);
    s.index_candidate_count = r(index_candidate_count);
    s.index_filter_false_positives = r(index_filter_false_positives);
    s.index_order_fallbacks = r(index_order_fallbacks);
    s.index_rebuild_count = r(index_rebuild_count);
    s.index_rebuild_duration = ns(index_rebuild_duration_ns);
    s.group_commit_groups = r(group_commit_groups);
    s.group_commit_size_sum = r(group_commit_size_sum);
    s.group_commit_size_max = r(group_commit_size_max);
    s.group_commit_fsync_count = r(group_commit_fsync_count);
    s.group_commit_waiters = r(group_commit_waiters);
    s.wal_bytes = r(wal_bytes);
    s.wal_records = r(wal_records);
    s.wal_write_calls = r(wal_write_calls);
    s.checkpoints = r(checkpoints);
    s.checkpoint_duration = ns(checkpoint_duration_ns);
    s.recovery_runs = r(recovery_runs);
    s.recovery_duration = ns(recovery_duration_ns);
    s.recovery_torn_tail_bytes = r(recovery_torn_tail_bytes);
    return s;
  }
};

}  // namespace aerodb
