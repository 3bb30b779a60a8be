// Appends framed records to the active WAL segment and makes them durable.
//
// A new segment is started when the active one would grow past the configured size. The
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

#include <aerodb/error.hpp>
#include <aerodb/format/wal_format.hpp>
#include <aerodb/io/file_system.hpp>

#include <memory>
#include <string>

namespace aerodb::wal {

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

  // Appends `framed` (one or more whole records, the first with CommitId `first_id`)
  // with a single write call, starting a new segment first when needed.
  result<void> append(std::span<const std::byte> framed, format::commit_id first_id,
                      std::uint64_t record_count) {
    if (failed_) return refused();
    if (!file_ || (size_ > format::segment_header_size && size_ + framed.size() > segment_bytes_)) {
      if (auto r = start_segment(first_id); !r) return fail(std::move(r).error_value());
    }
    if (auto r = file_->append(framed); !r) return fail(std::move(r).error_value());
    size_ += framed.size();
    stats_.bytes_appended += framed.size();
    stats_.records_appended += record_count;
    ++stats_.write_calls;
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
    return ok();
  }

  bool failed() const noexcept { return failed_; }
  const writer_stats& stats() const noexcept { return stats_; }
  std::uint64_t current_seq() const noexcept { return seq_; }

 private:
  result<void> start_segment(format::commit_id first_id) {
    const std::uint64_t seq = seq_ + 1;
    const std::string name = format::segment_file_name(seq);
    AERO_TRY_ASSIGN(auto f, fs_.open(io::join(dir_, name), io::open_mode::create_new));
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
  writer_stats stats_;
};

}  // namespace aerodb::wal
