// Housekeeping of the log's segment files once a checkpoint covers them.
//
// Thread safety: REQUIRES that nothing else lists or removes segments meanwhile (the
// engine runs one checkpoint at a time); the writer may go on appending to the newest
// segment, which is never removed.
#pragma once

#include <aerodb/commit_id.hpp>
#include <aerodb/error.hpp>
#include <aerodb/format/wal_format.hpp>
#include <aerodb/io/file_system.hpp>

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace aerodb::wal {

// How many of the segments `names` (segment file names in sequence order), counted from
// the oldest, hold only records at or below `c`: segment i does when the next one present
// has a whole, valid header that starts at or below c + 1. The newest segment never does.
// Reads one header per segment counted, plus the one that stops the count. A gap in the
// sequence numbers does not stop it: that is what a checkpoint's removals leave when a
// crash persisted them out of order, and the reader relies on it (wal_reader.hpp).
inline result<std::size_t> count_covered_segments(io::file_system& fs, const std::string& dir,
                                                  const std::vector<std::string>& names, commit_id c) {
  std::size_t covered = 0;
  for (; covered + 1 < names.size(); ++covered) {
    AERO_TRY_ASSIGN(auto f, fs.open(io::join(dir, names[covered + 1]), io::open_mode::read));
    std::array<std::byte, format::segment_header_size> header{};
    AERO_TRY_ASSIGN(std::size_t got, f->read_at(0, header));
    const auto next = format::decode_segment_header(std::span(header).first(got));
    if (next.status != format::header_status::valid || next.header.first_commit_id > c + 1) break;
  }
  return covered;
}

// Removes, oldest first, the segments whose every record is at or below `c`
// (count_covered_segments), then syncs the directory. The newest segment always stays: it
// is the one being appended to. Returns how many were removed.
inline result<std::uint64_t> remove_covered_segments(io::file_system& fs, const std::string& dir,
                                                     commit_id c) {
  AERO_TRY_ASSIGN(auto names, fs.list_dir(dir));
  std::vector<std::string> segs;
  for (auto& n : names)
    if (format::parse_segment_file_name(n)) segs.push_back(std::move(n));
  AERO_TRY_ASSIGN(const std::size_t covered, count_covered_segments(fs, dir, segs, c));
  for (std::size_t i = 0; i < covered; ++i) AERO_TRY(fs.remove(io::join(dir, segs[i])));
  if (covered) AERO_TRY(fs.sync_dir(dir));
  return covered;
}

}  // namespace aerodb::wal
