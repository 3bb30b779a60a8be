// The bytes of the checkpoint record, the file CHECKPOINT: it names the manifest of the
// current checkpoint, the snapshot recovery starts from. It is replaced atomically
// (write CHECKPOINT.tmp, sync, rename), so it names either the old checkpoint or the new.
//
// docs/format.md (12.4) is the prose version of this header; the two change together.
// The rule for the manifest name it holds and the decoding conventions are in
// snapshot_files.hpp; failures here are AERO_CHECKPOINT_CORRUPTION.
//
//   checkpoint (the file CHECKPOINT) :=
//     0  magic "AERODBCP"         8 bytes
//     8  format_version u32       = 1
//     12 commit_id u64            = C
//     20 manifest_name_len u16
//     22 manifest_name
//        crc u32                  = CRC32C of every preceding byte; the file's last bytes
//
// Invariants: the record is exactly checkpoint_min_size plus its name's length, and the
// name is a valid_snapshot_file_name; encode_checkpoint refuses anything else and
// decode_checkpoint rejects it.
//
// Thread safety: free functions, all pure.
#pragma once

#include <aerodb/commit_id.hpp>
#include <aerodb/error.hpp>
#include <aerodb/format/bytes.hpp>
#include <aerodb/format/snapshot_files.hpp>
#include <aerodb/io/crc32c.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace aerodb::format {

// ---- constants --------------------------------------------------------------------------

inline constexpr std::array<char, 8> checkpoint_magic = {'A', 'E', 'R', 'O', 'D', 'B', 'C', 'P'};
inline constexpr std::uint32_t checkpoint_format_version = 1;

inline constexpr std::size_t checkpoint_name_offset = 22;
inline constexpr std::size_t checkpoint_min_size = checkpoint_name_offset + 4;
static_assert(checkpoint_name_offset == 8 + 4 + 8 + 2);

inline constexpr std::string_view checkpoint_file_name = "CHECKPOINT";
inline constexpr std::string_view checkpoint_temp_file_name = "CHECKPOINT.tmp";

// ---- checkpoint record -------------------------------------------------------------------

struct checkpoint_record {
  commit_id commit = 0;
  std::string manifest_name;  // e.g. snapshot_manifest_file_name(commit)
  friend bool operator==(const checkpoint_record&, const checkpoint_record&) = default;
};

// Fails (AERO_INTERNAL_BUG, `reason`) when the name is not a valid_snapshot_file_name.
inline result<byte_buffer> encode_checkpoint(const checkpoint_record& r) {
  if (!valid_snapshot_file_name(r.manifest_name))
    return error(errc::internal_bug, "checkpoint encoder refused: invalid manifest name",
                 {{"reason", "invalid manifest name"}});
  byte_buffer out;
  out.reserve(checkpoint_min_size + r.manifest_name.size());
  for (char ch : checkpoint_magic) out.push_back(static_cast<std::byte>(ch));
  put_le<std::uint32_t>(out, checkpoint_format_version);
  put_le<std::uint64_t>(out, r.commit);
  put_le<std::uint16_t>(out, static_cast<std::uint16_t>(r.manifest_name.size()));
  put_bytes(out, r.manifest_name);
  put_le<std::uint32_t>(out, crc32c::value(out));
  return out;
}

// Failures are AERO_CHECKPOINT_CORRUPTION with `offset` and `reason`. Whether the named
// manifest exists, is valid and is for `commit` is the engine's check.
inline result<checkpoint_record> decode_checkpoint(std::span<const std::byte> bytes) {
  const auto corrupt = [](std::size_t offset, std::string reason) {
    return error(errc::checkpoint_corruption, "corrupt checkpoint record: " + reason,
                 {{"offset", std::to_string(offset)}, {"reason", reason}});
  };
  if (bytes.size() < checkpoint_min_size) return corrupt(bytes.size(), "truncated");
  for (std::size_t i = 0; i < checkpoint_magic.size(); ++i)
    if (bytes[i] != static_cast<std::byte>(checkpoint_magic[i])) return corrupt(0, "bad magic");
  if (load_le<std::uint32_t>(bytes.data() + 8) != checkpoint_format_version)
    return corrupt(8, "unsupported format version");
  const std::size_t body = bytes.size() - 4;
  const std::uint32_t stored = load_le<std::uint32_t>(bytes.data() + body);
  const std::uint32_t actual = crc32c::value(bytes.first(body));
  if (stored != actual)
    return corrupt(body, "checksum mismatch")
        .with("expected_crc", snapshot_detail::hex32(stored))
        .with("actual_crc", snapshot_detail::hex32(actual));
  const std::size_t name_len = load_le<std::uint16_t>(bytes.data() + 20);
  if (name_len != body - checkpoint_name_offset)
    return corrupt(20, "manifest name length does not match the record size");
  checkpoint_record r;
  r.commit = load_le<std::uint64_t>(bytes.data() + 12);
  r.manifest_name = std::string(as_chars(bytes.subspan(checkpoint_name_offset, name_len)));
  if (!valid_snapshot_file_name(r.manifest_name))
    return corrupt(checkpoint_name_offset, "invalid manifest name");
  return r;
}

}  // namespace aerodb::format
