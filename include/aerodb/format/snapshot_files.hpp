// The names of the files that make up snapshots and the checkpoint, the rule for names a
// manifest or checkpoint may hold, and the decoding conventions and helpers shared by
// the three formats: snapshot_data.hpp, manifest.hpp, checkpoint_record.hpp.
//
// docs/format.md (section 12) is the prose version of these headers; they change
// together. Nothing outside aerodb/format/ may define or assume these layouts, and no
// policy may change them. These headers only encode and decode; the engine decides when
// files are written, made durable, renamed and deleted (SPEC_DIGEST §6).
//
// A snapshot at CommitId C is, in the data directory:
//   snapshot-<C>.data       the image at C: schemas, collections, index definitions and
//                           every live document
//   snapshot-<C>.manifest   every file of the snapshot with its size and CRC32C. Written
//                           and made durable after the files it lists: a snapshot without
//                           a valid manifest is incomplete, and is ignored
//   CHECKPOINT              names the manifest of the current checkpoint; replaced
//                           atomically (write CHECKPOINT.tmp, sync, rename)
// <C> is 20 decimal digits, so that names sort in CommitId order.
//
// Invariants every decoder of the three keeps:
//   - Names inside a manifest or checkpoint are plain file names in the data directory:
//     1..65535 bytes, no '/', no NUL, not "." or "..", unique within a manifest. Damage
//     must not be able to make the engine open a path outside its directory.
//   - Decoding never reads outside its input and never allocates from a length field
//     before checking the bytes it claims are there.
//   - Failures are AERO_SNAPSHOT_CORRUPTION (data file, manifest, verify_file) or
//     AERO_CHECKPOINT_CORRUPTION (checkpoint), with a `reason` detail and, where a
//     position means something, an `offset` from the start of the input.
//   - Encoders refuse (AERO_INTERNAL_BUG) to produce bytes the decoders would reject: a
//     snapshot or CHECKPOINT that cannot be read back is FATAL at the next open, whereas
//     a refused checkpoint merely fails and leaves the previous one in place.
//
// Thread safety: free functions, all pure.
#pragma once

#include <aerodb/commit_id.hpp>
#include <aerodb/format/bytes.hpp>

#include <cstdint>
#include <cstdio>
#include <limits>
#include <optional>
#include <string>
#include <string_view>

namespace aerodb::format {

// ---- file names -------------------------------------------------------------------------

namespace snapshot_detail {

inline std::string numbered_name(std::uint64_t c, const char* suffix) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "snapshot-%020llu%s", static_cast<unsigned long long>(c), suffix);
  return buf;
}

inline std::optional<std::uint64_t> parse_numbered_name(std::string_view name,
                                                        std::string_view suffix) {
  constexpr std::string_view prefix = "snapshot-";
  if (name.size() != prefix.size() + 20 + suffix.size() || name.substr(0, prefix.size()) != prefix ||
      name.substr(prefix.size() + 20) != suffix)
    return std::nullopt;
  std::uint64_t v = 0;
  for (char ch : name.substr(prefix.size(), 20)) {
    if (ch < '0' || ch > '9') return std::nullopt;
    const auto d = static_cast<std::uint64_t>(ch - '0');
    // 20 digits can exceed 2^64-1; such a name was not written by us.
    if (v > (std::numeric_limits<std::uint64_t>::max() - d) / 10) return std::nullopt;
    v = v * 10 + d;
  }
  return v;
}

}  // namespace snapshot_detail

// "snapshot-00000000000000000042.data"
inline std::string snapshot_data_file_name(commit_id c) {
  return snapshot_detail::numbered_name(c, ".data");
}
inline std::optional<commit_id> parse_snapshot_data_file_name(std::string_view name) {
  return snapshot_detail::parse_numbered_name(name, ".data");
}
// "snapshot-00000000000000000042.manifest"
inline std::string snapshot_manifest_file_name(commit_id c) {
  return snapshot_detail::numbered_name(c, ".manifest");
}
inline std::optional<commit_id> parse_snapshot_manifest_file_name(std::string_view name) {
  return snapshot_detail::parse_numbered_name(name, ".manifest");
}

// A name a manifest or checkpoint may contain (see the top of this file).
inline bool valid_snapshot_file_name(std::string_view name) noexcept {
  if (name.empty() || name.size() > 0xFFFF || name == "." || name == "..") return false;
  return name.find('/') == std::string_view::npos && name.find('\0') == std::string_view::npos;
}

// ---- decoding helpers --------------------------------------------------------------------

namespace snapshot_detail {

// A string behind a u16 length, as the data file and the manifest store names.
inline bool read_str16(cursor& c, std::string_view& out) {
  std::uint16_t n = 0;
  return c.read(n) && c.read_string(n, out);
}

// A CRC32C as error details show it: "0x" and eight hex digits.
inline std::string hex32(std::uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08x", static_cast<unsigned>(v));
  return buf;
}

}  // namespace snapshot_detail

}  // namespace aerodb::format
