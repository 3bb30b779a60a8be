// Writes framed records into the active WAL segment and makes them durable.
//
// Segments are preallocated (format version 2, docs/format.md §4.3): a new segment is
// created with its header followed by zeros, synced, and the directory synced, before any
// record goes into it; when the records to write would pass the allocated end, zeros are
// written up to the next multiple of the preallocation step and synced first. Records are
// then written over zeros that are already durable, so the fsync that acknowledges a
// commit flushes data only, never a change of the file's size, which on ext4 and XFS is
// what makes it cheaper (no journal commit for a size change). The reader takes zeros
// after the last valid record as the end of the log.
//
// A new segment is started when the active one would grow past the configured size. The
// rule is applied per record, whether records arrive one at a time or as a group: a group
// written with one call is split only where a record would not fit, so the segments hold
// exactly the bytes that writing the same records one by one would have produced
// (docs/optimizations/group_commit.md relies on this). A record in segment N+1 implies
// segment N is complete and durable, which is what lets the reader call damage before a
// later segment corruption.
//
// Any failed write or sync leaves the file in an unknown state; the writer then refuses
// everything (the engine turns that into its read-only state, SPEC_DIGEST §3), because
// a later valid record behind garbage would turn a torn tail into corruption.
//
// Thread safety: none; the engine's commit pipeline serializes every call. The one thing
// used outside its lock is the file active_file() hands out, whose sync() may run while
// the next records are written (io::file allows both at once).
#pragma once

#include <aerodb/commit_id.hpp>
#include <aerodb/error.hpp>
#include <aerodb/format/wal_format.hpp>
#include <aerodb/io/file_system.hpp>

#include <algorithm>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

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
  std::uint64_t bytes_preallocated = 0;   // zeros written ahead of records, headers included
  std::uint64_t preallocation_syncs = 0;  // fsyncs that made preallocated space durable
};

class wal_writer {
 public:
  wal_writer(io::file_system& fs, std::string dir, std::uint64_t segment_bytes,
             std::uint64_t preallocate_bytes = 1u << 20)
      : fs_(fs),
        dir_(std::move(dir)),
        segment_bytes_(segment_bytes),
        step_(std::max<std::uint64_t>(format::segment_header_size,
                                      std::min(preallocate_bytes, segment_bytes))) {}

  // Continues writing into an existing segment (after recovery) whose valid records end at
  // `valid_end`; everything after that is zeros, already allocated.
  result<void> resume(std::uint64_t seq, const std::string& name, std::uint64_t valid_end) {
    AERO_TRY_ASSIGN(file_, fs_.open(io::join(dir_, name), io::open_mode::write));
    AERO_TRY_ASSIGN(allocated_, file_->size());
    seq_ = seq;
    size_ = valid_end;
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

  // A replica's append (docs/replication.md §2): the record goes where the primary put it,
  // not where this writer's own segment size would. With `segment` it starts that
  // segment, which must be the one after the active segment (or the first), starting at
  // `commit`; without, it goes into the active segment whatever its size. The caller
  // checked the record's bytes.
  result<void> append_replicated(std::span<const std::byte> framed, commit_id commit,
                                 const std::optional<std::pair<std::uint64_t, commit_id>>& segment) {
    if (failed_) return refused();
    if (segment) {
      if (unsynced_) {
        if (auto r = sync(); !r) return r;
      }
      seq_ = segment->first - 1;
      if (auto r = start_segment(commit); !r) return fail(std::move(r).error_value());
    } else if (!file_) {
      return error(errc::internal_bug, "a replicated record arrived before its segment");
    }
    if (auto r = write_chunk(framed); !r) return r;
    ++stats_.records_appended;
    return ok();
  }

  result<void> sync() {
    if (failed_) return refused();
    if (!file_) return ok();
    if (auto r = file_->sync(); !r) {
      failed_ = true;
      return fsync_error(std::move(r).error_value());
    }
    ++stats_.syncs;
    unsynced_ = false;
    return ok();
  }

  // The active segment, for a caller that syncs it without holding the writer (a
  // pipelined commit's fsync, outside the lock that serializes writes). Such a sync is
  // reported back with synced_outside(); its failure with refuse_further_writes().
  std::shared_ptr<io::file> active_file() const noexcept { return file_; }
  // A sync of `f`, started when stats().write_calls was `writes_before`, succeeded: if
  // nothing was written since and `f` is still the active segment, it holds nothing
  // unsynced (so a rotation need not sync it again).
  void synced_outside(const io::file* f, std::uint64_t writes_before) noexcept {
    ++stats_.syncs;
    if (f == file_.get() && stats_.write_calls == writes_before) unsynced_ = false;
  }

  static error fsync_error(const error& cause) {
    return error(errc::wal_fsync_failed,
                 "fsync of the write-ahead log failed; the commit is not acknowledged and "
                 "this instance accepts no more writes (reopen to recover)",
                 {{"cause", cause.to_string()}});
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
    if (auto r = allocate(size_ + bytes.size()); !r) return r;
    if (auto r = file_->write_at(size_, bytes); !r) return fail(std::move(r).error_value());
    unsynced_ = true;
    size_ += bytes.size();
    stats_.bytes_appended += bytes.size();
    ++stats_.write_calls;
    return ok();
  }

  // Where the allocated space of a segment whose records reach `end` ends: the next
  // multiple of the step, but not past the segment's size unless one record needs it.
  std::uint64_t allocation_end(std::uint64_t end) const {
    const std::uint64_t stepped = (end + step_ - 1) / step_ * step_;
    return std::max(end, std::min(stepped, segment_bytes_));
  }

  // Makes sure [0, end) of the active segment is allocated and durable: zeros written past
  // the allocated end and synced (with whatever records the file holds unsynced). A failed
  // write is a failed append, a failed sync a failed log fsync, as for records.
  result<void> allocate(std::uint64_t end) {
    if (end <= allocated_) return ok();
    const std::uint64_t target = allocation_end(end);
    for (std::uint64_t at = allocated_; at < target;) {
      const std::uint64_t n = std::min<std::uint64_t>(target - at, zeros().size());
      if (auto r = file_->write_at(at, std::span(zeros()).first(static_cast<std::size_t>(n))); !r)
        return fail(std::move(r).error_value());
      at += n;
    }
    const std::uint64_t syncs = stats_.syncs;
    AERO_TRY(sync());
    stats_.syncs = syncs;  // counted as a preallocation sync, not a commit's
    stats_.bytes_preallocated += target - allocated_;
    ++stats_.preallocation_syncs;
    allocated_ = target;
    return ok();
  }

  const std::vector<std::byte>& zeros() {
    if (zeros_.empty()) zeros_.assign(static_cast<std::size_t>(std::min<std::uint64_t>(step_, 1u << 20)), std::byte{0});
    return zeros_;
  }

  // Creates segment seq_+1 whose first record is `first_id`: header and zeros up to the
  // first allocation end in one write, synced, then the directory synced.
  result<void> start_segment(commit_id first_id) {
    const std::uint64_t seq = seq_ + 1;
    const std::string name = format::segment_file_name(seq);
    AERO_TRY_ASSIGN(auto f, fs_.open(io::join(dir_, name), io::open_mode::write));
    // A file by this name can only be a leftover that recovery chose not to read: start
    // it afresh rather than write over part of it.
    AERO_TRY_ASSIGN(const std::uint64_t old_size, f->size());
    if (old_size > 0) AERO_TRY(f->truncate(0));
    auto first = format::encode_segment_header({seq, first_id});
    const std::uint64_t end = allocation_end(format::segment_header_size);
    first.resize(static_cast<std::size_t>(end));  // zero-filled after the header
    AERO_TRY(f->write_at(0, first));
    AERO_TRY(f->sync());
    AERO_TRY(fs_.sync_dir(dir_));
    file_ = std::move(f);
    seq_ = seq;
    size_ = format::segment_header_size;
    allocated_ = end;
    ++stats_.segments_created;
    stats_.bytes_preallocated += end;
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
  std::uint64_t step_;  // preallocation step, within [header size, segment_bytes_]
  std::shared_ptr<io::file> file_;  // shared with a pipelined sync in flight
  std::uint64_t seq_ = 0;
  std::uint64_t size_ = 0;       // end of the last record written into file_
  std::uint64_t allocated_ = 0;  // file_'s durable size: zeros from size_ up to it
  std::vector<std::byte> zeros_;  // one step of zeros (at most 1 MiB), made on first use
  bool failed_ = false;
  bool unsynced_ = false;  // bytes written to file_ since its last sync
  writer_stats stats_;
};

}  // namespace aerodb::wal
