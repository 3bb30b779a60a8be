// What a caller chooses when opening a database, and what recovery reports back.
//
// Thread safety: plain values.
#pragma once

#include <aerodb/commit_id.hpp>
#include <aerodb/document/limits.hpp>
#include <aerodb/error.hpp>
#include <aerodb/format/wal_format.hpp>
#include <aerodb/io/file_system.hpp>
#include <aerodb/wal/wal_reader.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace aerodb {


// The phases of an open, in the order they run (engine/recovery.hpp, steps R2-R6). Each
// counts its work in one unit (recovery_unit_name), known in full when the phase begins.
enum class recovery_phase : std::uint8_t {
  // R2: CHECKPOINT, the manifest, then every file the manifest lists, each checked against
  // its size and CRC32C. Bytes of the listed files (total 0 without a checkpoint).
  snapshot_read,
  // R2: the snapshot data file decoded and validated entry by entry into the catalog and
  // the version chains. Bytes of the data file.
  snapshot_load,
  // R3: the log after the checkpoint, every record's checksums verified and the record
  // applied. Bytes of the segments read (their file sizes, preallocated space included).
  log_replay,
  // R4-R5: a torn tail cut off, and the leftovers of an interrupted checkpoint removed
  // (stale snapshot files, segments the checkpoint covers). Files changed.
  cleanup,
  // R6: every secondary index built from the chains: the documents of the collections
  // that have indexes walked once, then each index's entries sorted and put in place.
  // Document steps (index_build_steps in engine/indexer.hpp says how they are counted).
  index_build,
};
inline constexpr std::size_t recovery_phase_count = 5;

inline constexpr const char* to_string(recovery_phase p) noexcept {
  switch (p) {
    case recovery_phase::snapshot_read: return "snapshot read";
    case recovery_phase::snapshot_load: return "snapshot load";
    case recovery_phase::log_replay: return "log replay";
    case recovery_phase::cleanup: return "cleanup";
    case recovery_phase::index_build: return "index build";
  }
  return "?";
}

// What recovery_progress::done and total count in a phase.
inline constexpr const char* recovery_unit_name(recovery_phase p) noexcept {
  switch (p) {
    case recovery_phase::snapshot_read:
    case recovery_phase::snapshot_load:
    case recovery_phase::log_replay: return "bytes";
    case recovery_phase::cleanup: return "files";
    case recovery_phase::index_build: return "document steps";
  }
  return "?";
}

enum class recovery_event : std::uint8_t { begin, advance, end };

// One call of open_options::on_recovery_progress. For each phase: one `begin` (done 0),
// then `advance` calls, then one `end` (done == total); `done` never decreases within a
// phase, and never exceeds `total`.
struct recovery_progress {
  recovery_phase phase = recovery_phase::snapshot_read;
  recovery_event event = recovery_event::begin;
  std::uint64_t done = 0;
  std::uint64_t total = 0;                // 0: the phase has nothing to do in this open
  std::uint64_t documents_loaded = 0;     // snapshot_load: documents linked so far
  std::uint64_t records_replayed = 0;     // log_replay: records applied so far
};

// A schema definition's JSON text may not be longer than this.
inline constexpr std::size_t max_schema_definition_bytes = 1u << 20;
// A field path (an index's, a query's) may not be longer than this.
inline constexpr std::size_t max_field_path_bytes = 1024;

// Which replication role an open asks for (docs/replication.md §6). A primary takes
// writes; a replica (opened through replication::basic_replica) takes only what its
// primary ships. The directory remembers its role (format/authority.hpp): a replica's
// directory is refused to a primary open, and becomes a primary only by promotion.
enum class open_role : std::uint8_t { primary, replica };

struct open_options {
  // The file system every file operation goes through; null means POSIX.
  std::shared_ptr<io::file_system> fs;
  // Permission bits of the files and directories the store creates through POSIX (when
  // `fs` is null): owner-only by default, since a store holds people's documents. The
  // process umask can only remove bits from these. Each must give the owner read and
  // write (files) or read, write and search (directories); at most 0777.
  std::uint32_t file_mode = 0600;
  std::uint32_t dir_mode = 0700;
  // A segment is closed and a new one started once it would grow past this size.
  std::uint64_t wal_segment_bytes = 64u << 20;
  // Log space is allocated ahead of the records in steps of this many bytes: zeros are
  // written and synced once, and records are then written over them, so a commit's fsync
  // never has to record a change of the file's size (docs/format.md §9). Each step costs
  // one write of this size and one extra fsync; a larger step makes them rarer and longer.
  // Clamped to wal_segment_bytes.
  std::uint64_t wal_preallocate_bytes = 1u << 20;
  document_limits limits;
  // Most operations one atomic batch may hold.
  std::size_t max_batch_ops = 100'000;
  // Bounded log without the application's help (0, the default: only when called). Once
  // the log written since the last checkpoint reaches this many bytes, the thread whose
  // acknowledged write crossed it takes a checkpoint before that write returns. Counted in
  // bytes, never on a clock. After an open, the segments found count with their file
  // sizes, preallocated space included (recovery_report::wal_bytes), so a threshold below
  // wal_preallocate_bytes checkpoints at the first write after every open.
  std::uint64_t checkpoint_after_log_bytes = 0;
  // Bounded history without the application's help (0: only when called). Once this many
  // versions were superseded (by updates and deletes) since the last GC, the thread whose
  // acknowledged write crossed it runs gc() before that write returns. GC stays a logged
  // commit and frees only what no open read view can see.
  std::uint64_t gc_after_superseded_versions = 0;
  // primary (the default) or replica; see open_role.
  open_role role = open_role::primary;
  // Told what recovery is doing (empty, the default: nothing is reported, and nothing is
  // spent on it). Every open calls it for each recovery_phase in order; open_snapshot for
  // the phases it runs (snapshot read, snapshot load, index build). Within a phase it is
  // called at the phase's begin and end, and in between each time `done` crosses another
  // 1% of `total`: at most 102 calls per phase, at points that depend only on the files,
  // never on a clock. It runs on the opening thread, with the store's state lock held:
  // it must not call into this database (the instance is not returned yet anyway).
  // If it throws, the open stops there and fails with AERO_OPEN_CANCELLED (the exception
  // does not leave open()): a way to abandon a long open. What recovery had changed on
  // disk by then is what any open changes (a torn tail cut, leftovers removed), so the
  // next open starts over from the same state.
  std::function<void(const recovery_progress&)> on_recovery_progress;
};

// Every open_options value within its documented range; AERO_CONFIG_INVALID naming the
// first one that is not.
inline result<void> validate(const open_options& o) {
  struct range {
    const char* name;
    std::size_t value, lo, hi;
  };
  const range checks[] = {
      {"wal_segment_bytes", static_cast<std::size_t>(o.wal_segment_bytes), 512, std::size_t{1} << 32},
      {"wal_preallocate_bytes", static_cast<std::size_t>(o.wal_preallocate_bytes), 512, std::size_t{1} << 30},
      {"max_batch_ops", o.max_batch_ops, 1, 10'000'000},
      {"limits.max_document_bytes", o.limits.max_document_bytes, 64, hard_max_document_bytes},
      {"limits.max_depth", o.limits.max_depth, 1, hard_max_depth},
      {"limits.max_field_name_bytes", o.limits.max_field_name_bytes, 1, hard_max_field_name_bytes},
      {"limits.max_id_bytes", o.limits.max_id_bytes, 1, hard_max_id_bytes},
  };
  for (const auto& c : checks)
    if (c.value < c.lo || c.value > c.hi)
      return error(errc::config_invalid, std::string("open option out of range: ") + c.name,
                   {{"option", c.name}, {"value", std::to_string(c.value)},
                    {"min", std::to_string(c.lo)}, {"max", std::to_string(c.hi)}});
  struct mode_check {
    const char* name;
    std::uint32_t value, owner_needs;
    const char* why;
  };
  const mode_check modes[] = {
      {"file_mode", o.file_mode, 0600, "the owner must be able to read and write the store's files"},
      {"dir_mode", o.dir_mode, 0700, "the owner must be able to list, search and write the store's directories"},
  };
  for (const auto& m : modes) {
    auto octal = [](std::uint32_t v) {
      std::string s;
      do {
        s.insert(s.begin(), static_cast<char>('0' + (v & 7u)));
        v >>= 3;
      } while (v);
      return "0" + s;
    };
    if (m.value > 0777u || (m.value & m.owner_needs) != m.owner_needs)
      return error(errc::config_invalid,
                   std::string("open option ") + m.name + " is not a usable permission mode: " +
                       (m.value > 0777u ? "only the permission bits (at most 0777) may be set" : m.why),
                   {{"option", m.name}, {"value", octal(m.value)}, {"requires", octal(m.owner_needs)}});
  }
  return ok();
}

struct recovery_report {
  std::uint64_t records_replayed = 0;
  std::uint64_t segments = 0;
  std::uint64_t wal_bytes = 0;
  commit_id last_commit_id = 0;
  std::optional<wal::torn_tail> torn_tail;  // what was discarded, and where
  commit_id checkpoint = 0;                 // the snapshot loaded first (0: none)
  std::uint64_t snapshot_documents = 0;
  std::chrono::nanoseconds duration{0};
  // Where `duration` went, one field per recovery_phase: reading and verifying the
  // checkpoint's files (R2), decoding its snapshot (R2), reading and applying the log after
  // it (R3), cutting a torn tail and removing leftovers (R4, R5), and building every
  // secondary index (R6). The phases run one after another, so they add up to at most
  // `duration`; the rest is the directory, its lock, AUTHORITY, a replica's snapshot
  // bootstrap finished (R1, R1b) and publishing (R6).
  std::chrono::nanoseconds snapshot_read{0};
  std::chrono::nanoseconds snapshot_load{0};
  std::chrono::nanoseconds log_replay{0};
  std::chrono::nanoseconds cleanup{0};
  std::chrono::nanoseconds index_build{0};

  std::chrono::nanoseconds phase_duration(recovery_phase p) const noexcept {
    switch (p) {
      case recovery_phase::snapshot_read: return snapshot_read;
      case recovery_phase::snapshot_load: return snapshot_load;
      case recovery_phase::log_replay: return log_replay;
      case recovery_phase::cleanup: return cleanup;
      case recovery_phase::index_build: return index_build;
    }
    return {};
  }

  std::string to_string() const {
    const auto micros = [](std::chrono::nanoseconds d) {
      return std::to_string(std::chrono::duration_cast<std::chrono::microseconds>(d).count()) + " us";
    };
    std::string s;
    if (checkpoint)
      s += "loaded checkpoint " + std::to_string(checkpoint) + " (" +
           std::to_string(snapshot_documents) + " documents), then ";
    s += "replayed " + std::to_string(records_replayed) + " records from " +
                    std::to_string(segments) + " segment(s) (" + std::to_string(wal_bytes) +
                    " bytes), last CommitId " + std::to_string(last_commit_id) + ", in " +
                    std::to_string(std::chrono::duration_cast<std::chrono::microseconds>(duration).count()) +
                    " us (snapshot read " + micros(snapshot_read) + ", snapshot load " + micros(snapshot_load) +
                    ", log " + micros(log_replay) + ", cleanup " + micros(cleanup) + ", indexes " +
                    micros(index_build) + "); ";
    if (torn_tail)
      s += "discarded a torn tail of " + std::to_string(torn_tail->bytes) + " bytes at " +
           torn_tail->segment + " offset " + std::to_string(torn_tail->offset) + " (" +
           torn_tail->reason + ")";
    else
      s += "no torn tail";
    return s;
  }
};

}  // namespace aerodb
