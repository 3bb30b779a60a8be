// Appends framed records to the active WAL segment and makes them durable.
//
// A new segment is started when the active one would grow past the configured size. The
// rule is applied per record, whether records arrive one at a time or as a group: a group
// written with one call is split only where a record would not fit, so the segments hold
// exactly the bytes that appending the same records one by one would have produced
// (docs/optimizations/group_commit.md relies on this). The
// new file gets its header, is synced, and the directory is synced, before any record
// goes into it: so a record in segment N+1 implies segment N is complete and durable,
// which is what lets the reader call damage before a later segment corruption.
//
// Any failed write or sync leaves the file in an unknown state; the writer then refuses
// everything (the engine turns that into its read-only state, SPEC_DIGEST §3), because
// a later valid record behind garbage would turn a torn tail into corruption.
//
// Thread safety: none; the engine's commit pipeline serializes every call.
#pragma once

#include <aerodb/commit_id.hpp>
#include <aerodb/error.hpp>
#include <aerodb/format/wal_format.hpp>
#include <aerodb/io/file_system.hpp>

#include <memory>
#include <string>

namespace aerodb::wal {

// Where one framed record sits inside a group's buffer.
struct framed_record {
  std::size_t offset = 0;
  std::size_t size = 0;
  commit_id commit = 0;
};

struct writer_stats {
  std::uint64_t bytes_appended = 0;
  std::uint64_t records_appended = 0;
  std::uint64_t write_calls = 0;
  std::uint64_t syncs = 0;
  std::uint64_t segments_created = 0;
};

class wal_writer {
 public:
  wal_writer(io::file_system& fs, std::string dir, std::uint64_t segment_bytes)
      : fs_(fs), dir_(std::move(dir)), segment_bytes_(segment_bytes) {}

  // Continues appending to an existing segment (after recovery) of `size` valid bytes.
  result<void> resume(std::uint64_t seq, const std::string& name, std::uint64_t size) {
    AERO_TRY_ASSIGN(file_, fs_.open(io::join(dir_, name), io::open_mode::append));
    seq_ = seq;
    size_ = size;
    return ok();
  }
  // The next segment created will carry this sequence number (used when no segment
  // survives, e.g. after a checkpoint removed them all).
  void set_next_seq(std::uint64_t seq) { seq_ = seq - 1; }

  // Appends one framed record with CommitId `commit`, starting a new segment first when
  // the record would not fit in the active one.
  result<void> append(std::span<const std::byte> framed, commit_id commit) {
    const framed_record one{0, framed.size(), commit};
    return append_group(framed, std::span(&one, 1));
  }

  // Appends the records laid out in `framed` (in CommitId order) with one write call per
  // segment they land in: one call, unless the group crosses a segment boundary, where it
  // is split exactly where appending record by record would start the new segment.
  result<void> append_group(std::span<const std::byte> framed, std::span<const framed_record> records) {
    if (failed_) return refused();
    std::size_t chunk_begin = 0;     // start, in `framed`, of bytes not yet written
    std::uint64_t projected = size_;  // the segment's size once the pending bytes are written
    for (const auto& rec : records) {
      if (!file_ || (projected > format::segment_header_size && projected + rec.size > segment_bytes_)) {
        if (auto r = write_chunk(framed.subspan(chunk_begin, rec.offset - chunk_begin)); !r) return r;
        chunk_begin = rec.offset;
        // A record in segment N+1 must imply that segment N is complete and durable (the
        // reader relies on it). One-by-one commits always synced N already; a group may
        // just have written part of itself there, so sync it before starting N+1.
        if (unsynced_) {
          if (auto r = sync(); !r) return r;
        }
        if (auto r = start_segment(rec.commit); !r) return fail(std::move(r).error_value());
        projected = size_;
      }
      projected += rec.size;
    }
    if (auto r = write_chunk(framed.subspan(chunk_begin)); !r) return r;
    stats_.records_appended += records.size();
    return ok();
  }

  result<void> sync() {
    if (failed_) return refused();
    if (!file_) return ok();
    if (auto r = file_->sync(); !r) {
      failed_ = true;
      auto e = std::move(r).error_value();
      return error(errc::wal_fsync_failed,
                   "fsync of the write-ahead log failed; the commit is not acknowledged and "
                   "this instance accepts no more writes (reopen to recover)",
                   {{"cause", e.to_string()}});
    }
    ++stats_.syncs;
    unsynced_ = false;
    return ok();
  }

  bool failed() const noexcept { return failed_; }
  // Puts the writer in its failed state (the engine calls this when a commit cannot
  // finish, e.g. out of memory), so every later append and sync is refused.
  void refuse_further_writes() noexcept { failed_ = true; }
  const writer_stats& stats() const noexcept { return stats_; }
  std::uint64_t current_seq() const noexcept { return seq_; }

 private:
  result<void> write_chunk(std::span<const std::byte> bytes) {
    if (bytes.empty()) return ok();
    if (auto r = file_->append(bytes); !r) return fail(std::move(r).error_value());
    unsynced_ = true;
    size_ += bytes.size();
    stats_.bytes_appended += bytes.size();
    ++stats_.write_calls;
    return ok();
  }

  result<void> start_segment(commit_id first_id) {
    const std::uint64_t seq = seq_ + 1;
    const std::string name = format::segment_file_name(seq);
    AERO_TRY_ASSIGN(auto f, fs_.open(io::join(dir_, name), io::open_mode::create_or_truncate));
    const auto header = format::encode_segment_header({seq, first_id});
    AERO_TRY(f->append(header));
    AERO_TRY(f->sync());
    AERO_TRY(fs_.sync_dir(dir_));
    file_ = std::move(f);
    seq_ = seq;
    size_ = header.size();
    ++stats_.segments_created;
    return ok();
  }

  result<void> fail(error cause) {
    failed_ = true;
    return error(errc::wal_append_failed,
                 "appending to the write-ahead log failed; the commit is not acknowledged "
                 "and this instance accepts no more writes (reopen to recover)",
                 {{"cause", cause.to_string()}});
  }
  static result<void> refused() {
    return error(errc::storage_read_only,
                 "this instance refuses writes after a failed write-ahead log append or "
                 "fsync; reopen the directory to recover");
  }

  io::file_system& fs_;
  std::string dir_;
  std::uint64_t segment_bytes_;
  std::unique_ptr<io::file> file_;
  std::uint64_t seq_ = 0;
  std::uint64_t size_ = 0;
  bool failed_ = false;
  bool unsynced_ = false;  // bytes written to file_ since its last sync
  writer_stats stats_;
};

}  // namespace aerodb::wal
