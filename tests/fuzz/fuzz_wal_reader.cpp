// Fuzz target: the WAL reader (wal::read_wal) over segment files built from the input, in
// an in-memory testing::fault_injection_fs.
//
// Input: byte 0 picks the mode (bit 0) and the checkpoint boundary read_wal is given
// (bits 1-7, so 0..127); the rest is
//   files mode (bit 0 clear): segment files separated by fuzz_common's file_separator,
//     named with consecutive sequence numbers (from the first file's header sequence when
//     it decodes, else 1). Real segments written by the engine are the seeds.
//   program mode (bit 0 set): a little program run against the engine's own WAL writer,
//     so that records carry valid checksums however the fuzzer mutates it:
//       byte  segment size = 40 + 16 * byte (small: the writer rotates often)
//       byte  the log starts this many CommitIds before checkpoint + 1 (clamped at 1)
//       then ops, each a byte `o`, by o % 6:
//         0, 1  append a record of type (o / 6) % 8 (0, 6, 7 are unknown types) with the
//               next CommitId; payload: a length byte, then that many bytes
//         2     the same with a skewed CommitId: next + (int8 from the next byte)
//         3     flip a bit of the newest segment file (u16 bit index, modulo its size)
//         4     cut that many bytes (next byte) off the newest segment file
//         5     append raw bytes (a length byte, then the bytes) to the newest segment
// The builder knows no byte layout: records are framed by format::append_plain_record and
// written by wal::wal_writer, so the target follows any change to the record format.
//
// Properties, on every input:
//   - no exception, no sanitizer report; an error is AERO_WAL_CORRUPTION with numeric
//     `offset` and a `segment` detail (the in-memory file system never fails);
//   - on success, every delivered (plain) body re-frames (append_plain_record: markers,
//     complement, checksums)
//     to exactly the bytes at its segment and offset, so its checksum verifies; its type
//     is known; CommitIds are consecutive and above the checkpoint; the counts and
//     last_commit_id agree with what was delivered;
//   - segments: the reported ones are the segment files in order (minus a torn whole
//     segment); every one but the last holds only zeros after its last record (format
//     version 2: preallocated space), as does the last unless its tail is torn; damage is only ever a torn
//     tail that reaches the end of the last file, starting at the last valid record's end;
//   - recovery is idempotent: discarding the torn tail the way basic_database::recover
//     does and reading again gives the same records and no torn tail;
//   - a record appended after that recovery (as the next commit would be) is read back
//     after all of the others.
#include "fuzz_common.hpp"

#include <aerodb/format/wal_format.hpp>
#include <aerodb/io/crc32c.hpp>
#include <aerodb/testing/fault_injection_fs.hpp>
#include <aerodb/wal/wal_reader.hpp>
#include <aerodb/wal/wal_writer.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace {

using aerodb::errc;
using aerodb::format::commit_id;
using aerodb::format::record_type;
using aerodb_fuzz::require;
namespace format = aerodb::format;
namespace wal = aerodb::wal;

const std::string dir = "db";

struct delivered {
  record_type type;
  commit_id id;
  std::string segment;
  std::uint64_t offset;
  std::vector<std::byte> payload;
  bool operator==(const delivered& o) const {
    return type == o.type && id == o.id && payload == o.payload;
  }
};

std::vector<std::byte> frame(record_type type, commit_id id, std::span<const std::byte> payload) {
  std::vector<std::byte> out;
  format::append_plain_record(out, type, id, payload);
  return out;
}

std::vector<std::string> segment_files(aerodb::testing::fault_injection_fs& fs) {
  std::vector<std::string> out;
  auto names = fs.list_dir(dir);
  require(names.has_value(), "list_dir of the fuzz directory failed");
  for (auto& n : *names)
    if (format::parse_segment_file_name(n)) out.push_back(n);
  return out;
}

struct read_outcome {
  aerodb::result<wal::scan_result> scan;
  std::vector<delivered> records;
};

read_outcome read(aerodb::testing::fault_injection_fs& fs, commit_id checkpoint) {
  std::vector<delivered> records;
  std::uint64_t last_done = 0;
  auto scan = wal::read_wal(
      fs, dir, checkpoint,
      [&](const wal::wal_record& r) -> aerodb::result<void> {
        require(r.segment != nullptr, "record without a segment name");
        records.push_back({r.type, r.commit, *r.segment, r.offset,
                           std::vector<std::byte>(r.payload.begin(), r.payload.end())});
        return aerodb::ok();
      },
      [&](const wal::scan_progress& p) {
        require(p.bytes_done <= p.bytes_total, "progress past the total");
        require(p.bytes_done >= last_done, "progress went backwards");
        last_done = p.bytes_done;
      });
  return {std::move(scan), std::move(records)};
}

// Checks a successful scan against the files; returns the last CommitId the log itself
// holds when it is known (some record was delivered, or nothing is below the checkpoint).
void check_scan(aerodb::testing::fault_injection_fs& fs, commit_id checkpoint,
                const wal::scan_result& scan, const std::vector<delivered>& records) {
  const auto files = segment_files(fs);
  require(scan.records_replayed == records.size(), "records_replayed disagrees with deliveries");
  std::map<std::string, std::vector<std::byte>> contents_of;
  for (std::size_t i = 0; i < records.size(); ++i) {
    const auto& r = records[i];
    require(format::known_record_type(static_cast<std::uint8_t>(r.type)), "unknown type delivered");
    require(r.id > checkpoint, "record at or below the checkpoint delivered");
    if (i > 0) require(r.id == records[i - 1].id + 1, "CommitIds not consecutive");
    auto cached = contents_of.find(r.segment);
    if (cached == contents_of.end())
      cached = contents_of.emplace(r.segment, fs.contents(aerodb::io::join(dir, r.segment))).first;
    const auto& contents = cached->second;
    const auto framed = frame(r.type, r.id, r.payload);
    require(r.offset <= contents.size() && contents.size() - r.offset >= framed.size(),
            "record extends past its segment", r.segment);
    require(aerodb_fuzz::same_bytes(framed, std::span(contents).subspan(r.offset, framed.size())),
            "delivered record does not re-frame to its bytes (checksum would not verify)",
            r.segment + " @" + std::to_string(r.offset));
  }
  if (!records.empty())
    require(scan.last_commit_id == records.back().id, "last_commit_id is not the last record");
  else
    require(scan.last_commit_id >= checkpoint, "last_commit_id below the checkpoint");

  // Segments the checkpoint covers, skipped unread: only with a checkpoint, and only the
  // oldest files.
  const std::size_t covered = scan.covered.size();
  require(covered == 0 || checkpoint > 0, "covered segments without a checkpoint");
  require(covered <= files.size(), "more covered segments than files");
  for (std::size_t i = 0; i < covered; ++i)
    require(scan.covered[i] == files[i], "covered segments are not the oldest", scan.covered[i]);
  const std::size_t expected_segments =
      files.size() - covered - (scan.torn && scan.torn->whole_segment ? 1 : 0);
  require(scan.segments.size() == expected_segments, "segment count",
          std::to_string(scan.segments.size()) + " of " + std::to_string(files.size()));
  for (std::size_t i = 0; i < scan.segments.size(); ++i) {
    const auto& s = scan.segments[i];
    require(s.name == files[covered + i], "segments out of order", s.name);
    require(format::parse_segment_file_name(s.name) == s.seq, "segment seq vs name", s.name);
    const std::uint64_t size = fs.file_size(aerodb::io::join(dir, s.name));
    require(s.valid_end >= format::segment_header_size && s.valid_end <= size,
            "valid_end outside the segment", s.name);
    const bool last = i + 1 == scan.segments.size();
    if (!last || !scan.torn) {
      // Format version 2: the space after a segment's last record is preallocated zeros.
      const auto bytes = fs.contents(aerodb::io::join(dir, s.name));
      require(std::all_of(bytes.begin() + static_cast<std::ptrdiff_t>(s.valid_end), bytes.end(),
                          [](std::byte b) { return b == std::byte{0}; }),
              "bytes after a segment's last record are not zeros, but no tail is torn", s.name);
    }
  }
  if (scan.torn) {
    const auto& t = *scan.torn;
    require(!files.empty() && t.segment == files.back(), "torn tail not in the last segment",
            t.segment);
    const std::uint64_t size = fs.file_size(aerodb::io::join(dir, t.segment));
    require(t.offset <= size && t.bytes == size - t.offset, "torn tail does not reach the end",
            t.segment);
    require(!t.reason.empty(), "torn tail without a reason");
    if (t.whole_segment) {
      require(t.offset == 0, "whole torn segment not from offset 0");
    } else {
      require(!scan.segments.empty() && scan.segments.back().name == t.segment &&
                  scan.segments.back().valid_end == t.offset,
              "torn tail does not start at the last valid record's end");
      require(t.bytes > 0, "empty torn tail");
    }
  }
}

// Recovery and the next commit, as basic_database::recover and the commit path do them.
void check_recovery(aerodb::testing::fault_injection_fs& fs, commit_id checkpoint,
                    const wal::scan_result& scan, const std::vector<delivered>& records) {
  for (const auto& name : scan.covered)
    require(fs.remove(aerodb::io::join(dir, name)).has_value(), "remove covered segment", name);
  if (scan.torn) {
    const std::string path = aerodb::io::join(dir, scan.torn->segment);
    if (scan.torn->whole_segment) {
      require(fs.remove(path).has_value(), "remove torn segment");
    } else {
      auto f = fs.open(path, aerodb::io::open_mode::append);
      require(f.has_value() && (*f)->truncate(scan.torn->offset).has_value(), "truncate torn tail");
    }
  }
  auto again = read(fs, checkpoint);
  require(again.scan.has_value(), "reading the log again after recovery failed",
          again.scan ? "" : again.scan.error_value().to_string());
  require(!again.scan->torn, "a torn tail remains after discarding it");
  require(again.scan->covered.empty(), "covered segments remain after removing them");
  require(again.records == records, "re-reading gave other records");
  require(again.scan->last_commit_id == scan.last_commit_id, "re-reading gave another last id");
  check_scan(fs, checkpoint, *again.scan, again.records);

  // The next commit must read back too. This found the reader accepting a log that ends
  // below the checkpoint (seed log_ends_below_checkpoint; tests/unit/test_wal.cpp "a log that
  // ends below the checkpoint is corruption at the open that finds it").
  wal::wal_writer writer(fs, dir, std::numeric_limits<std::uint32_t>::max(), 4096);
  if (!again.scan->segments.empty()) {
    const auto& s = again.scan->segments.back();
    require(writer.resume(s.seq, s.name, s.valid_end).has_value(), "writer resume");
  } else if (scan.torn && scan.torn->whole_segment) {
    if (auto seq = format::parse_segment_file_name(scan.torn->segment)) writer.set_next_seq(*seq);
  }
  const commit_id next = scan.last_commit_id + 1;
  const std::vector<std::byte> payload = format::encode_gc(scan.last_commit_id);
  require(writer.append(frame(record_type::gc, next, payload), next).has_value(), "append");
  require(writer.sync().has_value(), "sync");
  auto after = read(fs, checkpoint);
  require(after.scan.has_value(), "the log is unreadable after recovery and one more commit",
          after.scan ? "" : after.scan.error_value().to_string());
  require(!after.scan->torn, "torn tail after a clean append");
  require(after.records.size() == records.size() + 1 &&
              std::equal(records.begin(), records.end(), after.records.begin()) &&
              after.records.back().id == next,
          "the appended commit is not read back after the others");
}

class input_reader {
 public:
  input_reader(const std::uint8_t* data, std::size_t size) : p_(data), end_(data + size) {}
  bool empty() const { return p_ == end_; }
  std::uint8_t byte() { return p_ == end_ ? 0 : *p_++; }
  std::span<const std::byte> bytes(std::size_t n) {
    n = std::min<std::size_t>(n, static_cast<std::size_t>(end_ - p_));
    const auto out = aerodb_fuzz::bytes_of(p_, n);
    p_ += n;
    return out;
  }

 private:
  const std::uint8_t* p_;
  const std::uint8_t* end_;
};

void write_file(aerodb::testing::fault_injection_fs& fs, const std::string& name,
                std::span<const std::byte> bytes) {
  auto f = fs.open(aerodb::io::join(dir, name), aerodb::io::open_mode::create_or_truncate);
  require(f.has_value() && (*f)->append(bytes).has_value() && (*f)->sync().has_value(),
          "writing a segment file failed");
}

void build_files(aerodb::testing::fault_injection_fs& fs, std::span<const std::byte> rest) {
  const auto files = aerodb_fuzz::split_files(rest);
  std::uint64_t seq = 1;
  const auto first = format::decode_segment_header(files.front());
  if (first.status == format::header_status::valid && first.header.segment_seq >= 1 &&
      first.header.segment_seq < (std::uint64_t{1} << 62))
    seq = first.header.segment_seq;
  for (const auto& f : files) write_file(fs, format::segment_file_name(seq++), f);
}

void build_program(aerodb::testing::fault_injection_fs& fs, commit_id checkpoint,
                   input_reader& in) {
  const std::uint64_t segment_bytes = 40 + 16 * std::uint64_t{in.byte()};
  commit_id next = checkpoint + 1 - std::min<commit_id>(checkpoint, in.byte());
  wal::wal_writer writer(fs, dir, segment_bytes);
  // The writer only ever creates the next segment, so its current one is the newest.
  const auto newest = [&]() -> std::optional<std::string> {
    if (writer.current_seq() == 0) return std::nullopt;
    return aerodb::io::join(dir, format::segment_file_name(writer.current_seq()));
  };
  while (!in.empty()) {
    const std::uint8_t o = in.byte();
    switch (o % 6) {
      case 0:
      case 1:
      case 2: {
        commit_id id = next;
        if (o % 6 == 2) id += static_cast<commit_id>(static_cast<std::int64_t>(static_cast<std::int8_t>(in.byte())));
        const auto type = static_cast<record_type>((o / 6) % 8);
        const auto payload = in.bytes(in.byte());
        // A failed writer (an earlier damage op made it refuse) just stops adding records.
        (void)writer.append(frame(type, id, payload), id);
        (void)writer.sync();
        next = id + 1;
        break;
      }
      case 3: {
        const std::uint64_t bit = in.byte() | (std::uint64_t{in.byte()} << 8);
        if (auto path = newest()) {
          const std::uint64_t size = fs.file_size(*path);
          if (size > 0) fs.flip_bit(*path, bit % (size * 8));
        }
        break;
      }
      case 4: {
        const std::uint64_t cut = in.byte();
        if (auto path = newest()) {
          const std::uint64_t size = fs.file_size(*path);
          auto f = fs.open(*path, aerodb::io::open_mode::append);
          require(f.has_value() && (*f)->truncate(size - std::min(size, cut)).has_value(),
                  "truncate failed");
        }
        break;
      }
      default: {
        const auto garbage = in.bytes(in.byte());
        if (auto path = newest()) {
          auto f = fs.open(*path, aerodb::io::open_mode::append);
          require(f.has_value() && (*f)->append(garbage).has_value(), "append failed");
        }
        break;
      }
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  return aerodb_fuzz::guarded([&] {
    if (size == 0) return;
    aerodb::testing::fault_injection_fs fs;
    require(fs.create_dir(dir).has_value(), "create_dir failed");
    const commit_id checkpoint = data[0] >> 1;
    if ((data[0] & 1) == 0) {
      build_files(fs, aerodb_fuzz::bytes_of(data + 1, size - 1));
    } else {
      input_reader in(data + 1, size - 1);
      build_program(fs, checkpoint, in);
    }

    auto first = read(fs, checkpoint);
    if (aerodb_fuzz::verbose()) {
      std::fprintf(stderr, "checkpoint %llu, %zu segment file(s): ",
                   static_cast<unsigned long long>(checkpoint), segment_files(fs).size());
      if (!first.scan) {
        std::fprintf(stderr, "%s\n", first.scan.error_value().to_string().c_str());
      } else {
        std::fprintf(stderr, "%zu record(s) delivered, last CommitId %llu, torn tail: %s\n",
                     first.records.size(),
                     static_cast<unsigned long long>(first.scan->last_commit_id),
                     first.scan->torn ? first.scan->torn->reason.c_str() : "none");
      }
    }
    if (!first.scan) {
      const auto& e = first.scan.error_value();
      aerodb_fuzz::require_error(e, {errc::wal_corruption}, "read_wal");
      aerodb_fuzz::require_detail(e, "segment");
      aerodb_fuzz::require_detail(e, "offset", true);
      // Deterministic: the same files give the same error.
      auto second = read(fs, checkpoint);
      require(!second.scan && second.scan.error_value().to_string() == e.to_string(),
              "a second read gave another outcome", e.to_string());
      return;
    }
    check_scan(fs, checkpoint, *first.scan, first.records);
    check_recovery(fs, checkpoint, *first.scan, first.records);
  });
}
