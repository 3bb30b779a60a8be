// Reads the write-ahead log at recovery, applying the corruption and torn-tail rules.
//
// The crash model (docs/reliability.md §1, docs/format.md §9): a crash keeps every synced
// byte; of the bytes written since the last sync, any subset of their 512-byte sectors
// reached the disk, the others read as zeros (the file may have been extended without
// them, or kept the zeros that were there). A sector is written whole or not at all, and a
// crash never flips a bit. So it can cut the log short, leave zeros at its end, or leave
// holes of zero sectors inside the unsynced part of the last segment, but never a record
// that one flipped bit explains.
//
// Rules (SPEC_DIGEST §4; format version 3: preallocated segments, records framed by start
// and end markers around a complemented body, so that no part of a record a crash can
// zero holds a single set bit):
//   - Zeros from a record boundary to the end of the file are the end of that segment
//     (the space allocated ahead of the records); in the last segment, the end of the log.
//     Nothing is discarded and nothing is reported: no record header is all zeros.
//   - A record that is cut short (fewer bytes than a header, or a valid header whose
//     payload runs past the end of the file) is a *torn tail* when it is in the last
//     segment and nothing valid follows it: it was never acknowledged (acknowledgment
//     waits for fsync, and a later segment is only created after the previous one was
//     synced). The reader reports it; the caller discards it.
//   - A whole header that fails its checksum, or a whole record whose payload fails its
//     checksum, was damaged after it was written: AERO_WAL_CORRUPTION, even as the last
//     record of the log (it may have been acknowledged). Nothing is repaired. The
//     exceptions, in the last segment only, are torn tails together with everything after
//     them (all of it was written after the last completed sync), when no single flipped
//     bit makes the record verify:
//       * a hole: a zero sector in the failing part (a sector the crash left unwritten);
//       * a stray bit: a failing header with at most one set bit, which is zeros of the
//         preallocated space with one flipped bit, since a written header has seven.
//   - Other torn-looking damage followed by any valid record, or by any later segment, is
//     corruption.
//   - A record whose header checksum is valid but whose type is unknown, whose start
//     marker or reserved bytes are wrong, whose length is impossible or whose CommitId is
//     not the previous one plus one was written whole: it is corruption. So is a record
//     whose checksums verify but whose payload does not end with the end marker.
//   - The callback sees each record's body in its plain form (complemented back, in the
//     reader's own buffer).
//   - Segments must be numbered consecutively and each must start at the CommitId that
//     follows the previous segment's last record; older segments wholly covered by the
//     checkpoint, left by removals a crash persisted out of order, are skipped (and
//     listed in scan_result::covered for recovery to delete).
//   - The log must reach the checkpoint's CommitId: one that ends below it lost synced
//     records.
//
// Thread safety: a pure function of the files it reads; run it before serving.
#pragma once

#include <aerodb/commit_id.hpp>
#include <aerodb/error.hpp>
#include <aerodb/format/wal_format.hpp>
#include <aerodb/io/file_system.hpp>
#include <aerodb/wal/segments.hpp>

#include <algorithm>
#include <array>
#include <bit>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace aerodb::wal {


struct wal_record {
  format::record_type type;
  commit_id commit;
  std::span<const std::byte> payload;  // valid only during the callback
  const std::string* segment;
  std::uint64_t offset;
};

struct torn_tail {
  std::string segment;      // file name of the segment holding it
  std::uint64_t offset = 0; // where the discarded bytes start
  std::uint64_t bytes = 0;  // how many bytes are discarded
  bool whole_segment = false;  // the segment's own header was torn: the file goes away
  std::string reason;
};

struct segment_info {
  std::uint64_t seq = 0;
  std::string name;
  commit_id first_commit_id = 0;
  std::uint64_t valid_end = 0;  // bytes up to the end of the last valid record
};

struct scan_result {
  commit_id last_commit_id = 0;
  std::uint64_t records_replayed = 0;  // records delivered to the callback
  std::uint64_t records_skipped = 0;   // records at or below the checkpoint boundary
  std::uint64_t bytes_total = 0;
  std::vector<segment_info> segments;  // every segment that holds valid data, in order
  std::optional<torn_tail> torn;
  // Older segments wholly covered by the checkpoint, left over when a checkpoint's removals
  // did not all reach the disk: never read, and safe to remove.
  std::vector<std::string> covered;
};

// What read_wal has read: called once before the first segment (bytes_done 0, once the
// total is known), after every record delivered, and at the end of every segment (whose
// zero-filled preallocated tail then counts as read). bytes_done never decreases and
// never exceeds bytes_total; the caller decides how often to pass it on.
struct scan_progress {
  std::uint64_t bytes_done = 0;
  std::uint64_t bytes_total = 0;
  std::uint64_t records = 0;
};

using record_callback = std::function<result<void>(const wal_record&)>;
using progress_callback = std::function<void(const scan_progress&)>;

namespace detail {

// True when a whole record with valid checksums starts at any offset in [from, end).
inline bool valid_record_follows(std::span<const std::byte> data, std::size_t from,
                                 commit_id min_id) {
  using namespace format;
  for (std::size_t off = from; off + record_header_size <= data.size(); ++off) {
    const auto h = decode_record_header(data.data() + off);
    if (!h.header_crc_ok || !known_record_type(h.type) || !h.framing_ok || h.commit < min_id)
      continue;
    if (h.payload_length == 0 || h.payload_length > max_record_payload) continue;
    if (data.size() - off - record_header_size < h.payload_length) continue;
    const auto payload = data.subspan(off + record_header_size, h.payload_length);
    if (crc32c::value(payload) == h.payload_crc && payload.back() == record_end_marker)
      return true;
  }
  return false;
}

// True when every byte of `data` is zero: a file extension whose blocks never reached the
// disk. A single damaged bit cannot produce it from a written record or header, each of
// which holds non-zero bytes (a record's markers, type and CommitId are never zero).
inline bool all_zero(std::span<const std::byte> data) {
  for (std::byte b : data)
    if (b != std::byte{0}) return false;
  return true;
}

// How many bits of `data` are set. A record header has at least seven (its start marker has
// four; the type, CommitId and payload length are non-zero), so one with at most one is
// zeros of preallocated space, possibly with one flipped bit, never a record that was
// written.
inline std::size_t set_bits(std::span<const std::byte> data) {
  std::size_t n = 0;
  for (std::byte b : data) n += static_cast<std::size_t>(std::popcount(std::to_integer<unsigned>(b)));
  return n;
}

// The unit a disk writes whole (docs/reliability.md, assumptions): a crash can leave any
// sector of a write that was never synced unwritten, reading as zeros, but never half a
// sector. The file system's 4 KiB pages are whole multiples of it.
inline constexpr std::size_t sector_bytes = 512;

// True when some sector's part inside [lo, hi) that lies at or after `from` (where the
// bytes never synced begin) and before the end of the file is all zeros: a crash may have
// left that sector unwritten.
inline bool unwritten_sector_in(std::span<const std::byte> data, std::size_t from, std::size_t lo,
                                std::size_t hi) {
  hi = std::min(hi, data.size());
  for (std::size_t s = lo / sector_bytes * sector_bytes; s < hi; s += sector_bytes) {
    const std::size_t b = std::max(s, from);
    const std::size_t e = std::min(s + sector_bytes, data.size());
    if (b < e && all_zero(data.subspan(b, e - b))) return true;
  }
  return false;
}

// True when one flipped bit explains the failing record at `off`: flipping some single bit
// of its header (header_ok false) or payload (header_ok true, `h` its verified header) makes
// the whole record verify, header and payload. A crash only ever leaves bytes unwritten, so
// a record that one bit repairs was written whole and damaged afterwards. (A header alone
// is not enough: an unwritten sector that zeroed the last bytes of a header, which differ
// from what was written in one bit when they hold a CommitId's high bytes, also zeroed the
// payload after them, which no flip of the header repairs.) The payload search is linear in the
// payload: CRC32C is linear, so the difference a flip makes to the checksum depends only on
// the bit's distance from the end, and the observed difference is walked backwards through
// the CRC register one byte at a time until it matches a single-bit difference.
inline bool one_bit_repairs(std::span<const std::byte> data, std::size_t off, bool header_ok,
                            const format::record_header* h) {
  using namespace format;
  if (!header_ok) {
    std::array<std::byte, record_header_size> header{};
    std::copy_n(data.begin() + static_cast<std::ptrdiff_t>(off), record_header_size, header.begin());
    for (std::size_t i = 0; i < record_header_size; ++i)
      for (int bit = 0; bit < 8; ++bit) {
        header[i] ^= std::byte{static_cast<unsigned char>(1u << bit)};
        const record_header repaired = decode_record_header(header.data());
        header[i] ^= std::byte{static_cast<unsigned char>(1u << bit)};
        if (!repaired.header_crc_ok) continue;
        const std::size_t begin = off + record_header_size;
        return repaired.payload_length <= data.size() - begin &&
               crc32c::value(data.subspan(begin, repaired.payload_length)) == repaired.payload_crc;
      }
    return false;
  }
  const auto payload = data.subspan(off + record_header_size, h->payload_length);
  std::uint32_t diff = crc32c::value(payload) ^ h->payload_crc;
  constexpr std::uint32_t poly = crc32c::reflected_polynomial;
  // The register difference a flip of bit j in the payload's last byte makes.
  std::array<std::uint32_t, 8> last_byte{};
  for (int j = 0; j < 8; ++j) {
    std::uint32_t r = 1u << j;
    for (int k = 0; k < 8; ++k) r = (r >> 1) ^ ((r & 1u) ? poly : 0u);
    last_byte[static_cast<std::size_t>(j)] = r;
  }
  for (std::size_t back = 0; back < payload.size(); ++back) {
    for (auto v : last_byte)
      if (v == diff) return true;
    // Undo one byte of zero input: eight inverse register steps.
    for (int k = 0; k < 8; ++k) diff = (diff & 0x80000000u) ? (((diff ^ poly) << 1) | 1u) : (diff << 1);
  }
  return false;
}

// True when the failing record at `off` holds bytes that a crash may have left unwritten:
// some sector's part from the record's start on, inside the record's header (header_ok
// false) or payload, reads as zeros. Only the last segment's unsynced tail can hold them.
inline bool has_unwritten_sectors(std::span<const std::byte> data, std::size_t off, bool header_ok,
                                  const format::record_header* h) {
  using namespace format;
  const std::size_t lo = header_ok ? off + record_header_size : off;
  const std::size_t hi = header_ok ? lo + h->payload_length : off + record_header_size;
  return unwritten_sector_in(data, off, lo, hi);
}

inline error corruption(const std::string& segment, std::uint64_t offset, std::string why) {
  return error(errc::wal_corruption, "the write-ahead log is corrupt: " + why,
               {{"segment", segment}, {"offset", std::to_string(offset)}});
}

}  // namespace detail

// Reads every segment in `dir` in order and calls `on_record` for each record whose
// CommitId is above `checkpoint_id` (records at or below it are covered by the
// checkpoint's snapshot). Stops at the first error the callback returns.
inline result<scan_result> read_wal(io::file_system& fs, const std::string& dir,
                                    commit_id checkpoint_id, const record_callback& on_record,
                                    const progress_callback& on_progress = {}) {
  using namespace format;
  scan_result out;
  out.last_commit_id = checkpoint_id;

  AERO_TRY_ASSIGN(auto names, fs.list_dir(dir));
  struct seg {
    std::uint64_t seq;
    std::string name;
  };
  std::vector<seg> segs;
  for (auto& n : names)
    if (auto seq = parse_segment_file_name(n)) segs.push_back({*seq, n});
  // list_dir sorts bytewise and names are fixed width, so segs is in sequence order.

  // A checkpoint at C removes the segments it covers, oldest first, and syncs the
  // directory once after all of them; a crash before that sync may keep any subset of
  // those names. Leading segments that hold only CommitIds at or below C are never read
  // and go into `covered` for recovery to remove, so a gap their removals left is no
  // corruption.
  if (checkpoint_id > 0) {
    std::vector<std::string> names;
    for (const auto& s : segs) names.push_back(s.name);
    AERO_TRY_ASSIGN(const std::size_t n, count_covered_segments(fs, dir, names, checkpoint_id));
    out.covered.assign(names.begin(), names.begin() + static_cast<std::ptrdiff_t>(n));
    segs.erase(segs.begin(), segs.begin() + static_cast<std::ptrdiff_t>(n));
  }

  std::uint64_t total = 0;
  std::vector<std::uint64_t> sizes;
  for (auto& s : segs) {
    AERO_TRY_ASSIGN(auto f, fs.open(io::join(dir, s.name), io::open_mode::read));
    AERO_TRY_ASSIGN(std::uint64_t sz, f->size());
    sizes.push_back(sz);
    total += sz;
  }
  out.bytes_total = total;
  if (on_progress) on_progress({0, total, 0});

  std::optional<commit_id> expected;  // CommitId the next record must carry
  std::uint64_t done_bytes = 0;
  for (std::size_t si = 0; si < segs.size(); ++si) {
    const auto& s = segs[si];
    const bool last = si + 1 == segs.size();
    if (si > 0 && s.seq != segs[si - 1].seq + 1)
      return detail::corruption(s.name, 0,
                                "segment " + std::to_string(segs[si - 1].seq + 1) +
                                    " is missing before this one");
    AERO_TRY_ASSIGN(auto f, fs.open(io::join(dir, s.name), io::open_mode::read));
    AERO_TRY_ASSIGN(auto data, io::read_all(*f));
    const std::span<const std::byte> bytes(data);
    // Each verified body is complemented back in place before it is delivered; the damage
    // checks only ever look at bytes after the record being read.
    const std::span<std::byte> writable(data);

    const auto decoded = decode_segment_header(bytes);
    if (decoded.status == header_status::unsupported) {
      if (decoded.format_version != wal_format_version)
        return error(errc::wal_corruption,
                     "the write-ahead log segment has format version " +
                         std::to_string(decoded.format_version) + "; this build reads version " +
                         std::to_string(wal_format_version) +
                         (decoded.format_version < wal_format_version
                              ? " (versions 1 and 2, written before records were framed by "
                                "markers, are not read: open the directory with the release that "
                                "wrote it and export its collections)"
                              : " (written by a newer release)"),
                     {{"segment", s.name},
                      {"offset", "8"},
                      {"format_version", std::to_string(decoded.format_version)},
                      {"supported_version", std::to_string(wal_format_version)}});
      return detail::corruption(s.name, 0,
                                "the segment header is checksummed but has flags or reserved "
                                "bytes this reader does not know");
    }
    if (decoded.status == header_status::damaged) {
      // A segment is created, given its header and synced before any record goes into
      // it, so only the last file can hold a torn creation: a header cut short, or
      // zeros. A whole header with a bad checksum was damaged after it was written.
      const bool torn_creation =
          bytes.size() < segment_header_size || detail::all_zero(bytes);
      if (!last || !torn_creation || detail::valid_record_follows(bytes, 0, expected.value_or(0)))
        return detail::corruption(s.name, 0, "the segment header is damaged");
      out.torn = torn_tail{s.name, 0, bytes.size(), true,
                           bytes.size() < segment_header_size ? "incomplete segment header"
                                                              : "zero-filled segment header"};
      break;
    }
    const segment_header* header = &decoded.header;
    if (header->segment_seq != s.seq)
      return detail::corruption(s.name, 8, "the segment header names sequence " +
                                               std::to_string(header->segment_seq));
    if (expected && header->first_commit_id != *expected)
      return detail::corruption(s.name, 24,
                                "the segment starts at CommitId " +
                                    std::to_string(header->first_commit_id) + ", expected " +
                                    std::to_string(*expected));
    if (!expected) {
      if (checkpoint_id == 0 && header->first_commit_id != 1)
        return detail::corruption(s.name, 24, "the log does not start at CommitId 1");
      if (header->first_commit_id > checkpoint_id + 1)
        return detail::corruption(s.name, 24,
                                  "the log after the checkpoint starts at CommitId " +
                                      std::to_string(header->first_commit_id) +
                                      ", leaving a gap after " + std::to_string(checkpoint_id));
      expected = header->first_commit_id;
    }
    segment_info info{s.seq, s.name, header->first_commit_id, segment_header_size};

    std::size_t off = segment_header_size;
    std::optional<std::string> damage;
    bool hole = false;  // the damage is unwritten sectors inside the tail, not its end
    while (off < bytes.size()) {
      // Zeros from here to the end of the file: the preallocated space after the last
      // record, the end of this segment (no record header is all zeros).
      if (detail::all_zero(bytes.subspan(off))) break;
      const std::size_t remaining = bytes.size() - off;
      if (remaining < record_header_size) {
        damage = "incomplete record header";
        break;
      }
      const auto h = decode_record_header(bytes.data() + off);
      if (!h.header_crc_ok) {
        if (last &&
            (detail::has_unwritten_sectors(bytes, off, false, &h) ||
             detail::set_bits(bytes.subspan(off, record_header_size)) <= 1) &&
            !detail::one_bit_repairs(bytes, off, false, &h)) {
          damage = detail::has_unwritten_sectors(bytes, off, false, &h)
                       ? "unwritten sectors in a record header"
                       : "a stray bit in the zeros after the last record";
          hole = true;
          break;
        }
        return detail::corruption(s.name, off, "record header checksum mismatch");
      }
      if (!known_record_type(h.type))
        return detail::corruption(s.name, off,
                                  "a checksummed record has unknown type " +
                                      std::to_string(h.type));
      if (!h.framing_ok)
        return detail::corruption(s.name, off,
                                  "a checksummed record has a wrong start marker or non-zero "
                                  "reserved header bytes");
      if (h.payload_length == 0 || h.payload_length > max_record_payload)
        return detail::corruption(s.name, off,
                                  "a checksummed record has impossible length " +
                                      std::to_string(h.payload_length));
      if (h.commit != *expected)
        return detail::corruption(s.name, off,
                                  "CommitId " + std::to_string(h.commit) + " where " +
                                      std::to_string(*expected) + " was expected");
      if (remaining - record_header_size < h.payload_length) {
        damage = "incomplete record payload";
        break;
      }
      const auto payload = bytes.subspan(off + record_header_size, h.payload_length);
      if (crc32c::value(payload) != h.payload_crc) {
        if (last && detail::has_unwritten_sectors(bytes, off, true, &h) &&
            !detail::one_bit_repairs(bytes, off, true, &h)) {
          damage = "unwritten sectors in a record payload";
          hole = true;
          break;
        }
        return detail::corruption(s.name, off, "record payload checksum mismatch");
      }
      if (payload.back() != record_end_marker)
        return detail::corruption(s.name, off,
                                  "a checksummed record does not end with the end marker");
      if (h.commit > checkpoint_id) {
        const auto body = writable.subspan(off + record_header_size, h.payload_length - 1);
        complement(body);
        AERO_TRY(on_record(wal_record{static_cast<record_type>(h.type), h.commit, body,
                                      &s.name, off}));
        ++out.records_replayed;
        if (on_progress)
          on_progress({done_bytes + off + record_header_size + h.payload_length, total, out.records_replayed});
      } else {
        ++out.records_skipped;
      }
      out.last_commit_id = std::max(out.last_commit_id, h.commit);
      *expected = h.commit + 1;
      off += record_header_size + h.payload_length;
      info.valid_end = off;
    }
    out.segments.push_back(info);
    if (damage) {
      if (!last) return detail::corruption(s.name, off, *damage + " before a later segment");
      // Sectors left unwritten inside the unsynced tail may be followed by later sectors
      // of it that did reach the disk: records after the hole were never synced either.
      if (!hole && detail::valid_record_follows(bytes, off + 1, *expected))
        return detail::corruption(s.name, off, *damage + " followed by a valid record");
      out.torn = torn_tail{s.name, off, bytes.size() - off, false, *damage};
    }
    done_bytes += sizes[si];
    if (on_progress) on_progress({done_bytes, total, out.records_replayed});
  }
  // A checkpoint at C is recorded only after the log through C was synced, so a log that
  // ends below C lost synced records. Accepting it would give the next commit C + 1 right
  // after the damage, and the open after that would fail: report it now.
  if (expected && *expected <= checkpoint_id && !segs.empty())
    return detail::corruption(out.segments.empty() ? segs.back().name : out.segments.back().name,
                              out.segments.empty() ? 0 : out.segments.back().valid_end,
                              "the log ends at CommitId " + std::to_string(*expected - 1) +
                                  ", before the checkpoint's " + std::to_string(checkpoint_id));
  return out;
}

}  // namespace aerodb::wal
