// Reads the durable records of a live store's log, from a CommitId onward, for shipping to
// a replica: the primary's side of WAL shipping (docs/replication.md §2).
//
// It reads the segment files the commit pipeline is appending to, and only records at or
// below a limit the caller takes from the store's published CommitId: a published record
// was written whole and synced (W7) before it was published (W9), and the writer never
// writes over it again, so those bytes are stable while the writer appends after them.
// Bytes after the limit may be mid-write; they are never interpreted, and nothing read
// past the last record shipped is kept from one call to the next.
//
// A checkpoint may remove the segments that hold what a replica needs: then read() fails
// with AERO_REPLICATION_SNAPSHOT_NEEDED (the replica must bootstrap from a snapshot).
//
// Every record is checked (header checksum, framing, CommitId sequence, payload checksum)
// before it is handed out, so damage on the primary's disk is never shipped as data.
//
// Thread safety: one log_source per reader; any number may read the same directory while
// its store runs.
#pragma once

#include <aerodb/commit_id.hpp>
#include <aerodb/error.hpp>
#include <aerodb/format/wal_format.hpp>
#include <aerodb/io/file_system.hpp>
#include <aerodb/replication/wire.hpp>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace aerodb::replication {

// One record as the primary's log holds it.
struct shipped_record {
  // Set for the first record of a segment file, and for the first record a read() hands
  // out, so that the receiver can lay its segments out exactly as the source's.
  std::optional<segment_start> segment;
  commit_id commit = 0;
  std::uint32_t payload_crc = 0;
  std::span<const std::byte> framed;  // header and payload; valid during the callback
};

class log_source {
 public:
  // Bytes read from a segment at a time.
  static constexpr std::size_t read_block = 1u << 20;

  log_source(io::file_system& fs, std::string dir) : fs_(fs), dir_(std::move(dir)) {}

  // Hands `fn` the records from `from` up to `limit`, in order, stopping after the record
  // that brings the bytes handed out to `max_bytes` or more (at least one record, when
  // from <= limit). Returns the CommitId after the last record handed out.
  // REQUIRES: every record up to `limit` is durable and published; from >= 1.
  result<commit_id> read(commit_id from, commit_id limit, std::size_t max_bytes,
                         const std::function<result<void>(const shipped_record&)>& fn) {
    buf_.clear();  // bytes past the last record shipped may have been read mid-write
    if (from > limit) return from;
    bool first = true;
    if (!file_ || from != next_) {
      AERO_TRY(locate(from));
    }
    std::size_t handed = 0;
    while (next_ <= limit && (handed == 0 || handed < max_bytes)) {
      AERO_TRY_ASSIGN(bool have, at_record());
      if (!have) {
        AERO_TRY(next_segment());
        continue;
      }
      AERO_TRY_ASSIGN(auto framed, read_record());
      shipped_record r;
      if (first || offset_ == format::segment_header_size) r.segment = segment_start{seq_, first_commit_};
      r.commit = next_;
      r.payload_crc = format::load_le<std::uint32_t>(framed.data() + 16);
      r.framed = framed;
      AERO_TRY(fn(r));
      first = false;
      offset_ += framed.size();
      handed += framed.size();
      ++next_;
    }
    return next_;
  }

  // The payload checksum of record `c` (a handshake's check that the replica's newest
  // record is the primary's). REQUIRES: `c` durable and published, c >= 1.
  result<std::uint32_t> payload_crc_of(commit_id c) {
    std::uint32_t crc = 0;
    AERO_TRY(read(c, c, 1, [&crc](const shipped_record& r) -> result<void> {
      crc = r.payload_crc;
      return ok();
    }));
    return crc;
  }

 private:
  error damaged(std::string why) const {
    return error(errc::wal_corruption, "the log being shipped is damaged: " + std::move(why),
                 {{"segment", format::segment_file_name(seq_)}, {"offset", std::to_string(offset_)},
                  {"commit_id", std::to_string(next_)}});
  }
  error snapshot_needed(commit_id from) const {
    return error(errc::replication_snapshot_needed,
                 "the primary's log no longer holds the records the replica needs (a checkpoint removed them); "
                 "the replica must bootstrap from a snapshot",
                 {{"from", std::to_string(from)}});
  }

  // Positions the reader at record `from`: the newest segment starting at or below it,
  // then record by record.
  result<void> locate(commit_id from) {
    file_.reset();
    AERO_TRY_ASSIGN(auto names, fs_.list_dir(dir_));
    std::vector<std::uint64_t> seqs;
    for (const auto& n : names)
      if (auto s = format::parse_segment_file_name(n)) seqs.push_back(*s);
    std::sort(seqs.begin(), seqs.end());
    for (auto it = seqs.rbegin(); it != seqs.rend(); ++it) {
      auto opened = open_segment(*it);
      if (!opened) {
        if (opened.code() == errc::storage_not_found) continue;  // removed meanwhile
        // The newest segment may be in creation, its header not written yet: it holds
        // nothing published. (Were it damaged, the walk from the segment before would
        // reach it through next_segment(), which reports the damage.)
        if (it == seqs.rbegin()) continue;
        return std::move(opened).error_value();
      }
      if (first_commit_ > from) continue;
      next_ = first_commit_;
      while (next_ < from) {
        AERO_TRY_ASSIGN(bool have, at_record());
        if (!have) return snapshot_needed(from);  // `from` is past this segment: a gap
        AERO_TRY_ASSIGN(auto framed, read_record());
        offset_ += framed.size();
        ++next_;
      }
      return ok();
    }
    file_.reset();
    return snapshot_needed(from);
  }

  result<void> open_segment(std::uint64_t seq) {
    AERO_TRY_ASSIGN(auto f, fs_.open(io::join(dir_, format::segment_file_name(seq)), io::open_mode::read));
    std::array<std::byte, format::segment_header_size> h{};
    AERO_TRY_ASSIGN(std::size_t got, f->read_at(0, h));
    const auto decoded = format::decode_segment_header(std::span(h).first(got));
    seq_ = seq;
    offset_ = format::segment_header_size;
    if (decoded.status != format::header_status::valid || decoded.header.segment_seq != seq)
      return damaged("the segment header does not verify");
    file_ = std::move(f);
    first_commit_ = decoded.header.first_commit_id;
    buf_.clear();
    return ok();
  }

  // The segment after the current one, which must start at next_.
  result<void> next_segment() {
    const std::uint64_t seq = seq_ + 1;
    if (auto r = open_segment(seq); !r) {
      if (r.code() == errc::storage_not_found) {
        seq_ = seq;
        return damaged("a published record is missing: the segment that should hold it does not exist");
      }
      return r;
    }
    if (first_commit_ != next_) return damaged("the segment does not start where the previous one ended");
    return ok();
  }

  // Makes [at, at + n) of the current segment readable in buf_; false if the file ends first.
  result<bool> fill(std::uint64_t at, std::size_t n) {
    if (at >= buf_at_ && at + n <= buf_at_ + buf_.size()) return true;
    buf_.resize(std::max(n, read_block));
    AERO_TRY_ASSIGN(std::size_t got, file_->read_at(at, buf_));
    buf_.resize(got);
    buf_at_ = at;
    return got >= n;
  }
  std::span<const std::byte> bytes(std::uint64_t at, std::size_t n) const {
    return std::span<const std::byte>(buf_).subspan(static_cast<std::size_t>(at - buf_at_), n);
  }

  // Whether a record starts at offset_ (false: zeros or the end of the file, so the
  // segment ends here).
  result<bool> at_record() {
    AERO_TRY_ASSIGN(bool whole, fill(offset_, format::record_header_size));
    if (!whole) return false;
    const auto h = bytes(offset_, format::record_header_size);
    return std::any_of(h.begin(), h.end(), [](std::byte b) { return b != std::byte{0}; });
  }

  // The record at offset_, checked. REQUIRES: at_record().
  result<std::span<const std::byte>> read_record() {
    const auto h = format::decode_record_header(bytes(offset_, format::record_header_size).data());
    if (!h.header_crc_ok || !h.framing_ok || !format::known_record_type(h.type) || h.payload_length == 0 ||
        h.payload_length > format::max_record_payload)
      return damaged("a record header does not verify");
    if (h.commit != next_) return damaged("a record's CommitId does not follow the previous one");
    const std::size_t size = format::record_header_size + h.payload_length;
    AERO_TRY_ASSIGN(bool whole, fill(offset_, size));
    if (!whole) return damaged("a published record is cut short");
    const auto framed = bytes(offset_, size);
    const auto payload = framed.subspan(format::record_header_size);
    if (crc32c::value(payload) != h.payload_crc || payload.back() != format::record_end_marker)
      return damaged("a record's payload does not verify");
    return framed;
  }

  io::file_system& fs_;
  std::string dir_;
  std::unique_ptr<io::file> file_;
  std::uint64_t seq_ = 0;
  commit_id first_commit_ = 0;
  std::uint64_t offset_ = 0;  // where the record `next_` starts in segment seq_
  commit_id next_ = 0;
  std::vector<std::byte> buf_;
  std::uint64_t buf_at_ = 0;
};

}  // namespace aerodb::replication
