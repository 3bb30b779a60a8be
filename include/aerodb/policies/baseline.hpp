// The baseline policy of each kind: the reference behaviour of PERFORMANCE_BASELINE.
//
//   fsync_per_commit   one commit at a time: write its record, fsync, acknowledge.
//   full_traversal     no cache; every read walks the whole version chain and copies the
//                      document it returns.
//   ordered_index      the primary-key index is an ordered map; secondary indexes are
//                      ordered sets of (key, _id, version).
//   baseline_memory_layout
//                      a version is a heap node whose document is a shared buffer of its
//                      own (three allocations per version); a zero-copy read shares it.
//
// Every optimized policy is proven equivalent to these (docs/optimizations/).
#pragma once

#include <aerodb/commit_id.hpp>
#include <aerodb/index/field_index.hpp>
#include <aerodb/metrics.hpp>
#include <aerodb/mvcc/version.hpp>

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>

namespace aerodb::policies {

struct fsync_per_commit {
  template <class Engine>
  class pipeline {
   public:
    explicit pipeline(Engine& engine) : engine_(engine) {}
    void submit(typename Engine::commit_request& request) {
      std::lock_guard<std::mutex> lock(mutex_);
      typename Engine::commit_request* one[] = {&request};
      engine_.commit_group(std::span<typename Engine::commit_request* const>(one));
    }

   private:
    Engine& engine_;
    std::mutex mutex_;
  };
};

struct full_traversal {
  struct view_state {};
  static constexpr bool zero_copy = false;

  // Visits every version, as the baseline does, and keeps the newest one at or below
  // the bound. (Chains are newest first, so the first match is already the answer; the
  // accelerated policy relies on exactly that.)
  static const mvcc::version* find_visible(view_state&, const mvcc::key_entry& key,
                                           commit_id bound, read_path_counters& counters) {
    ++counters.version_chain_traversals;
    const mvcc::version* best = nullptr;
    for (const auto& v : key.chain) {
      ++counters.versions_visited;
      if (v.commit <= bound && (best == nullptr || v.commit > best->commit)) best = &v;
    }
    return best;
  }
};

struct ordered_index {
  template <class V>
  using primary_map = std::map<std::string, V, std::less<>>;
  using field_index = index::ordered_field_index;
};

struct baseline_memory_layout {
  // Makes and frees the versions of one version store. Holds nothing: each version is
  // its own heap node, its bytes a shared buffer (the one the write prepared, when there
  // is one, so a commit copies nothing).
  class version_memory {
   public:
    mvcc::version* make(commit_id c, std::uint32_t schema_version, std::shared_ptr<const mvcc::payload::buffer> doc) {
      return new mvcc::version(c, schema_version, mvcc::payload(std::move(doc)));
    }
    mvcc::version* make(commit_id c, std::uint32_t schema_version, std::span<const std::byte> doc) {
      return make(c, schema_version, std::make_shared<const mvcc::payload::buffer>(doc.begin(), doc.end()));
    }
    mvcc::version* make_tombstone(commit_id c) { return new mvcc::version(c); }
    void free(mvcc::version* v) noexcept { delete v; }
    // No arena: the heap's own bookkeeping is not counted.
    std::uint64_t bytes_in_use() const noexcept { return 0; }
    std::uint64_t bytes_reserved() const noexcept { return 0; }
  };
};

}  // namespace aerodb::policies
