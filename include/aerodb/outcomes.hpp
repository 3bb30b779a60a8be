// What the engine's calls return: documents as a read view sees them, and the outcome of
// each kind of write, query, checkpoint and garbage collection.
//
// Thread safety: plain values.
#pragma once

#include <aerodb/commit_id.hpp>
#include <aerodb/document/document.hpp>
#include <aerodb/format/wal_format.hpp>
#include <aerodb/query/plan.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <vector>

namespace aerodb {


// A document as a read view sees it.
struct versioned_document {
  document doc;
  std::uint32_t schema_version = 0;
  commit_id committed_at = 0;
};

struct query_result {
  std::vector<versioned_document> documents;  // in the query's order, at most `limit`
  query::plan plan;                           // what ran, with its max_scan bound
  // How many candidates the executor examined: distinct documents on the general path,
  // index entries on the ordered path an accelerated index allows (which may stop early).
  std::uint64_t candidates = 0;
  // Where the next page starts (query_spec::after), when results beyond this page exist;
  // empty when this page holds the last of them.
  std::optional<query::continuation> next = std::nullopt;
};

struct delete_outcome {
  bool deleted = false;
  commit_id commit = 0;  // 0 when nothing was deleted (and nothing was written)
};

struct gc_outcome {
  commit_id record = 0;          // CommitId of the GC record; 0 when there was nothing to do
  commit_id floor = 0;           // versions superseded at or below this were freed
  std::uint64_t versions_freed = 0;  // tombstones included
  std::uint64_t bytes_freed = 0;  // document bytes
  // Document keys removed with their last version: deleted at or below the floor, with
  // nothing written to them since (engine/gc.hpp).
  std::uint64_t keys_reclaimed = 0;
};

struct checkpoint_outcome {
  commit_id commit = 0;              // the snapshot's boundary C
  std::uint64_t snapshot_bytes = 0;  // size of the data file
  std::uint64_t documents = 0;
  std::uint64_t segments_removed = 0;
  std::chrono::nanoseconds duration{0};
};

// What backup() wrote: a checkpoint-consistent copy of the store at `commit`.
struct backup_outcome {
  commit_id commit = 0;              // every commit acknowledged before the call, at least
  std::uint64_t documents = 0;
  std::uint64_t bytes = 0;           // the snapshot data file
  std::chrono::nanoseconds duration{0};
};

// The engine's accounting of what it holds in memory. Deterministic: replaying a log gives
// the numbers the instance that wrote it had at its end. (An open from a checkpoint starts
// from the snapshot, which holds one version per live document and no history.)
struct memory_stats {
  std::uint64_t versions = 0;        // documents and tombstones, in every chain
  std::uint64_t document_bytes = 0;  // the encoded documents of those versions
  std::uint64_t keys = 0;            // document keys (one chain and primary-map entry each)
  // The memory layout's arena (policies/compact_layout.hpp): bytes of the blocks its
  // versions occupy, and bytes it holds from the system (slabs mapped, large blocks).
  // Exact, and both 0 under a layout without an arena (the baseline's heap nodes). In use
  // follows the versions held, as the counts above do; reserved also depends on which
  // blocks were freed before (partly used slabs), so a replay may reserve less.
  std::uint64_t arena_bytes_in_use = 0;
  std::uint64_t arena_bytes_reserved = 0;
};

struct batch_outcome {
  commit_id commit = 0;        // 0 when every operation was a no-op delete
  std::vector<bool> applied;   // per operation; false only for deletes of missing documents
};

}  // namespace aerodb
