// The bytes of the authority marker, the file AUTHORITY: which replication role a data
// directory holds and in which primary epoch (docs/replication.md §6). A directory
// without it is a primary of epoch 0, as every store was before replication existed.
// Replaced atomically (AUTHORITY.tmp, sync, rename, directory sync).
//
// docs/format.md (13) is the prose version of this header; the two change together.
//
//   authority (the file AUTHORITY), 32 bytes :=
//     0  magic "AERODBAU"   8 bytes
//     8  format_version u32 = 1
//     12 role u32           1 primary, 2 replica, 3 deposed (a primary that learned of a
//                           newer epoch: it refuses writes for good)
//     16 epoch u64          the primary epoch: the one this primary leads, the one this
//                           replica follows (0: none yet), the newer one that deposed it
//     24 crc u32            CRC32C of bytes [0, 24)
//     28 reserved u32       = 0
//
// Failures are AERO_AUTHORITY_CORRUPTION with `offset` and `reason`.
//
// Thread safety: free functions, all pure.
#pragma once

#include <aerodb/error.hpp>
#include <aerodb/format/bytes.hpp>
#include <aerodb/io/crc32c.hpp>

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace aerodb::format {

inline constexpr std::array<char, 8> authority_magic = {'A', 'E', 'R', 'O', 'D', 'B', 'A', 'U'};
inline constexpr std::uint32_t authority_format_version = 1;
inline constexpr std::size_t authority_size = 32;
inline constexpr std::string_view authority_file_name = "AUTHORITY";

enum class node_role : std::uint32_t { primary = 1, replica = 2, deposed = 3 };

inline std::string_view to_string(node_role r) {
  switch (r) {
    case node_role::primary: return "primary";
    case node_role::replica: return "replica";
    case node_role::deposed: return "deposed";
  }
  return "?";
}

struct authority {
  node_role role = node_role::primary;
  std::uint64_t epoch = 0;
  friend bool operator==(const authority&, const authority&) = default;
};

inline byte_buffer encode_authority(const authority& a) {
  byte_buffer out;
  out.reserve(authority_size);
  for (char ch : authority_magic) out.push_back(static_cast<std::byte>(ch));
  put_le<std::uint32_t>(out, authority_format_version);
  put_le<std::uint32_t>(out, static_cast<std::uint32_t>(a.role));
  put_le<std::uint64_t>(out, a.epoch);
  put_le<std::uint32_t>(out, crc32c::value(out));
  put_le<std::uint32_t>(out, 0);
  return out;
}

inline result<authority> decode_authority(std::span<const std::byte> bytes) {
  const auto corrupt = [](std::size_t offset, std::string reason) {
    return error(errc::authority_corruption, "corrupt authority marker: " + reason,
                 {{"file", std::string(authority_file_name)}, {"offset", std::to_string(offset)}, {"reason", reason}});
  };
  if (bytes.size() != authority_size) return corrupt(0, "the file is not 32 bytes long");
  for (std::size_t i = 0; i < authority_magic.size(); ++i)
    if (bytes[i] != static_cast<std::byte>(authority_magic[i])) return corrupt(0, "bad magic");
  if (load_le<std::uint32_t>(bytes.data() + 24) != crc32c::value(bytes.first(24)))
    return corrupt(24, "checksum mismatch");
  if (load_le<std::uint32_t>(bytes.data() + 8) != authority_format_version)
    return corrupt(8, "unsupported version");
  const auto role = load_le<std::uint32_t>(bytes.data() + 12);
  if (role < 1 || role > 3) return corrupt(12, "unknown role");
  if (load_le<std::uint32_t>(bytes.data() + 28) != 0) return corrupt(28, "reserved bytes set");
  return authority{static_cast<node_role>(role), load_le<std::uint64_t>(bytes.data() + 16)};
}

}  // namespace aerodb::format
