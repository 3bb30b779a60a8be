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


struct recovery_progress {
  std::uint64_t bytes_done = 0;
  std::uint64_t bytes_total = 0;
  std::uint64_t records_replayed = 0;
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
  // Called during recovery after every segment and every 4096 records.
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
  // Where `duration` went: reading and decoding the checkpoint's snapshot (R2), reading and
  // applying the log after it (R3), and building every secondary index (R6). The rest is
  // the directory, the lock and the tidying (R1, R4, R5).
  std::chrono::nanoseconds snapshot_load{0};
  std::chrono::nanoseconds log_replay{0};
  std::chrono::nanoseconds index_build{0};

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
                    " us (snapshot " + micros(snapshot_load) + ", log " + micros(log_replay) + ", indexes " +
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
