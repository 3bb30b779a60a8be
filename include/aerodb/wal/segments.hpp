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

// Removes, oldest first, the segments whose every record is at or below `c` (a segment
// whose successor starts at or below c + 1), then syncs the directory. The newest segment
// always stays: it is the one being appended to. Returns how many were removed.
inline result<std::uint64_t> remove_covered_segments(io::file_system& fs, const std::string& dir,
                                                     commit_id c) {
  AERO_TRY_ASSIGN(auto names, fs.list_dir(dir));
  std::vector<std::pair<std::uint64_t, std::string>> segs;
  for (auto& n : names)
    if (auto seq = format::parse_segment_file_name(n)) segs.push_back({*seq, n});
  std::uint64_t removed = 0;
  for (std::size_t i = 0; i + 1 < segs.size(); ++i) {
    AERO_TRY_ASSIGN(auto f, fs.open(io::join(dir, segs[i + 1].second), io::open_mode::read));
    std::array<std::byte, format::segment_header_size> header{};
    AERO_TRY_ASSIGN(std::size_t got, f->read_at(0, header));
    const auto next = format::decode_segment_header(std::span(header).first(got));
    if (next.status != format::header_status::valid || next.header.first_commit_id > c + 1) break;
    AERO_TRY(fs.remove(io::join(dir, segs[i].second)));
    ++removed;
  }
  if (removed) AERO_TRY(fs.sync_dir(dir));
  return removed;
}

}  // namespace aerodb::wal
