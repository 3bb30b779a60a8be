// The bytes of the bootstrap marker, the file BOOTSTRAP: a replica's promise, made durable
// once every file of a snapshot bootstrap is staged, that the next open finishes the
// install (docs/replication.md §8, docs/format.md §14). Its existence is the install's
// switch: before it, the directory holds the replica's old state (the staged files are
// leftovers the next open removes); after it, the new one (the next open rolls the
// install forward, however far a crash let it get).
//
// docs/format.md (14) is the prose version of this header; the two change together.
//
//   bootstrap (the file BOOTSTRAP), 48 bytes :=
//     0  magic "AERODBBS"   8 bytes
//     8  format_version u32 = 1
//     12 reserved u32       = 0
//     16 commit u64         P: the snapshot's boundary (snapshot-<P>.data, .manifest)
//     24 seq u64            the segment the staged log prefix becomes (>= 1)
//     32 first_commit u64   where that segment starts (1 <= first_commit <= P)
//     40 crc u32            CRC32C of bytes [0, 40)
//     44 reserved u32       = 0
//
// The staged files, by fixed name: bootstrap-data.staged (the snapshot data file, renamed
// to snapshot-<P>.data before the marker is written) and bootstrap-segment.staged (the
// segment `seq`: its header and records first_commit ..= P, renamed by the install).
//
// Failures are AERO_CHECKPOINT_CORRUPTION with `file`, `offset` and `reason`.
//
// Thread safety: free functions, all pure.
#pragma once

#include <aerodb/commit_id.hpp>
#include <aerodb/error.hpp>
#include <aerodb/format/bytes.hpp>
#include <aerodb/io/crc32c.hpp>

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace aerodb::format {

inline constexpr std::array<char, 8> bootstrap_magic = {'A', 'E', 'R', 'O', 'D', 'B', 'B', 'S'};
inline constexpr std::uint32_t bootstrap_format_version = 1;
inline constexpr std::size_t bootstrap_marker_size = 48;
inline constexpr std::string_view bootstrap_file_name = "BOOTSTRAP";
inline constexpr std::string_view bootstrap_staged_data_name = "bootstrap-data.staged";
inline constexpr std::string_view bootstrap_staged_segment_name = "bootstrap-segment.staged";

// Whether `name` is a staged file of a bootstrap (removed at open when no marker names it).
inline bool is_bootstrap_staged_file(std::string_view name) {
  return name == bootstrap_staged_data_name || name == bootstrap_staged_segment_name;
}

struct bootstrap_marker {
  commit_id commit = 0;
  std::uint64_t seq = 0;
  commit_id first_commit = 0;
  friend bool operator==(const bootstrap_marker&, const bootstrap_marker&) = default;
};

inline byte_buffer encode_bootstrap_marker(const bootstrap_marker& m) {
  byte_buffer out;
  out.reserve(bootstrap_marker_size);
  for (char ch : bootstrap_magic) out.push_back(static_cast<std::byte>(ch));
  put_le<std::uint32_t>(out, bootstrap_format_version);
  put_le<std::uint32_t>(out, 0);
  put_le<std::uint64_t>(out, m.commit);
  put_le<std::uint64_t>(out, m.seq);
  put_le<std::uint64_t>(out, m.first_commit);
  put_le<std::uint32_t>(out, crc32c::value(out));
  put_le<std::uint32_t>(out, 0);
  return out;
}

inline result<bootstrap_marker> decode_bootstrap_marker(std::span<const std::byte> bytes) {
  const auto corrupt = [](std::size_t offset, std::string reason) {
    return error(errc::checkpoint_corruption, "corrupt bootstrap marker: " + reason,
                 {{"file", std::string(bootstrap_file_name)}, {"offset", std::to_string(offset)}, {"reason", reason}});
  };
  if (bytes.size() != bootstrap_marker_size) return corrupt(0, "the file is not 48 bytes long");
  for (std::size_t i = 0; i < bootstrap_magic.size(); ++i)
    if (bytes[i] != static_cast<std::byte>(bootstrap_magic[i])) return corrupt(0, "bad magic");
  if (load_le<std::uint32_t>(bytes.data() + 40) != crc32c::value(bytes.first(40))) return corrupt(40, "checksum mismatch");
  if (load_le<std::uint32_t>(bytes.data() + 8) != bootstrap_format_version) return corrupt(8, "unsupported version");
  if (load_le<std::uint32_t>(bytes.data() + 12) != 0) return corrupt(12, "reserved bytes set");
  if (load_le<std::uint32_t>(bytes.data() + 44) != 0) return corrupt(44, "reserved bytes set");
  bootstrap_marker m{load_le<std::uint64_t>(bytes.data() + 16), load_le<std::uint64_t>(bytes.data() + 24),
                     load_le<std::uint64_t>(bytes.data() + 32)};
  if (m.commit == 0 || m.seq == 0 || m.first_commit == 0 || m.first_commit > m.commit)
    return corrupt(16, "impossible snapshot boundary or segment");
  return m;
}

}  // namespace aerodb::format
