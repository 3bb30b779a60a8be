// The bytes of a snapshot manifest, snapshot-<C>.manifest: every file of the snapshot at
// CommitId C with its size and CRC32C. It is written and made durable after the files it
// lists, so a snapshot without a valid manifest is incomplete and is ignored; a reader
// checks each file against it (verify_file) before decoding the file.
//
// docs/format.md (12.3) is the prose version of this header; the two change together.
// File names, the rule for names a manifest may hold, the decoding conventions and the
// failure codes are in snapshot_files.hpp.
//
//   manifest  :=
//     0  magic "AERODBMF"         8 bytes
//     8  format_version u32       = 1
//     12 commit_id u64            = C
//     20 file_count u32           >= 1
//     24 file_count x (name_len u16, name, size u64, crc32c u32 of the whole file)
//        manifest_crc u32         = CRC32C of every preceding byte; the file's last bytes
//
// Invariants: a manifest lists at least one file and at most 2^32-1; every name is a
// valid_snapshot_file_name and no name repeats. encode_manifest refuses anything else and
// decode_manifest rejects it.
//
// Thread safety: free functions, all pure.
#pragma once

#include <aerodb/commit_id.hpp>
#include <aerodb/error.hpp>
#include <aerodb/format/bytes.hpp>
#include <aerodb/format/snapshot_files.hpp>
#include <aerodb/io/crc32c.hpp>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace aerodb::format {

// ---- constants --------------------------------------------------------------------------

inline constexpr std::array<char, 8> manifest_magic = {'A', 'E', 'R', 'O', 'D', 'B', 'M', 'F'};
inline constexpr std::uint32_t manifest_format_version = 1;

// Offset of the first file entry, and the fixed part of one.
inline constexpr std::size_t manifest_files_offset = 24;
inline constexpr std::size_t manifest_file_fixed = 14;
inline constexpr std::size_t manifest_min_size = manifest_files_offset + 4;

static_assert(manifest_files_offset == 8 + 4 + 8 + 4);
static_assert(manifest_file_fixed == 2 + 8 + 4);

// ---- manifest ----------------------------------------------------------------------------

struct manifest_file {
  std::string name;
  std::uint64_t size = 0;
  std::uint32_t crc = 0;  // CRC32C of the whole file
  friend bool operator==(const manifest_file&, const manifest_file&) = default;
};

struct manifest {
  commit_id commit = 0;
  std::vector<manifest_file> files;
  friend bool operator==(const manifest&, const manifest&) = default;
};

// The manifest entry describing `contents`.
inline manifest_file describe_file(std::string name, std::span<const std::byte> contents) {
  return {std::move(name), contents.size(), crc32c::value(contents)};
}

inline const manifest_file* find_file(const manifest& m, std::string_view name) noexcept {
  for (const auto& f : m.files)
    if (f.name == name) return &f;
  return nullptr;
}

namespace snapshot_detail {

inline error manifest_corrupt(std::size_t offset, const std::string& reason) {
  return error(errc::snapshot_corruption, "corrupt snapshot manifest: " + reason,
               {{"offset", std::to_string(offset)}, {"reason", reason}});
}

// Names must be valid and unique; `names` is sorted in place.
inline bool names_unique(std::vector<std::string_view>& names) {
  std::sort(names.begin(), names.end());
  return std::adjacent_find(names.begin(), names.end()) == names.end();
}

}  // namespace snapshot_detail

// Fails (AERO_INTERNAL_BUG, `reason`) when the decoder would refuse the result: no files,
// more than 2^32-1 files, or a name that is invalid or repeated.
inline result<byte_buffer> encode_manifest(const manifest& m) {
  const auto refuse = [](std::string reason) {
    return error(errc::internal_bug, "manifest encoder refused: " + reason, {{"reason", reason}});
  };
  if (m.files.empty()) return refuse("no files");
  if (m.files.size() > std::numeric_limits<std::uint32_t>::max()) return refuse("too many files");
  std::vector<std::string_view> names;
  names.reserve(m.files.size());
  for (const auto& f : m.files) {
    if (!valid_snapshot_file_name(f.name)) return refuse("invalid file name");
    names.push_back(f.name);
  }
  if (!snapshot_detail::names_unique(names)) return refuse("duplicate file name");

  byte_buffer out;
  for (char ch : manifest_magic) out.push_back(static_cast<std::byte>(ch));
  put_le<std::uint32_t>(out, manifest_format_version);
  put_le<std::uint64_t>(out, m.commit);
  put_le<std::uint32_t>(out, static_cast<std::uint32_t>(m.files.size()));
  for (const auto& f : m.files) {
    put_le<std::uint16_t>(out, static_cast<std::uint16_t>(f.name.size()));
    put_bytes(out, f.name);
    put_le<std::uint64_t>(out, f.size);
    put_le<std::uint32_t>(out, f.crc);
  }
  put_le<std::uint32_t>(out, crc32c::value(out));
  return out;
}

// Failures are AERO_SNAPSHOT_CORRUPTION with `offset` and `reason`.
inline result<manifest> decode_manifest(std::span<const std::byte> bytes) {
  using snapshot_detail::manifest_corrupt;
  if (bytes.size() < manifest_min_size) return manifest_corrupt(bytes.size(), "truncated");
  for (std::size_t i = 0; i < manifest_magic.size(); ++i)
    if (bytes[i] != static_cast<std::byte>(manifest_magic[i])) return manifest_corrupt(0, "bad magic");
  // Version before checksum: another version may not end with a checksum at all.
  if (load_le<std::uint32_t>(bytes.data() + 8) != manifest_format_version)
    return manifest_corrupt(8, "unsupported format version");
  const std::size_t body = bytes.size() - 4;
  const std::uint32_t stored = load_le<std::uint32_t>(bytes.data() + body);
  const std::uint32_t actual = crc32c::value(bytes.first(body));
  if (stored != actual)
    return manifest_corrupt(body, "checksum mismatch")
        .with("expected_crc", snapshot_detail::hex32(stored))
        .with("actual_crc", snapshot_detail::hex32(actual));

  // Past the checksum the bytes are the ones written; the checks below still hold
  // untrusted input to the grammar, as the decoder is fuzzed without valid checksums too.
  cursor c(bytes.first(body));
  std::span<const std::byte> skipped;
  manifest m;
  std::uint32_t count = 0;
  if (!c.read_bytes(12, skipped) || !c.read(m.commit) || !c.read(count))
    return manifest_corrupt(c.position(), "truncated");
  if (count == 0) return manifest_corrupt(20, "no files");
  if (count > c.remaining() / manifest_file_fixed)
    return manifest_corrupt(20, "file count larger than the manifest");
  m.files.reserve(count);
  std::vector<std::string_view> names;
  names.reserve(count);
  for (std::uint32_t i = 0; i < count; ++i) {
    const std::size_t entry_at = c.position();
    std::string_view name;
    manifest_file f;
    if (!snapshot_detail::read_str16(c, name) || !c.read(f.size) || !c.read(f.crc))
      return manifest_corrupt(c.position(), "truncated file entry");
    if (!valid_snapshot_file_name(name)) return manifest_corrupt(entry_at, "invalid file name");
    f.name = std::string(name);
    names.push_back(name);
    m.files.push_back(std::move(f));
  }
  if (!c.at_end()) return manifest_corrupt(c.position(), "trailing bytes after file entries");
  if (!snapshot_detail::names_unique(names)) return manifest_corrupt(24, "duplicate file name");
  return m;
}

// Checks a file of `size` bytes whose CRC32C is crc() against the manifest's entry for
// `name`; crc() is only called when the name and size match. For a reader that computes
// the checksum as it reads (crc32c::extend), and for verify_file below. Failures are
// AERO_SNAPSHOT_CORRUPTION with `file`, `reason` and, for a mismatch, `expected_size` and
// `actual_size` or `expected_crc` and `actual_crc` (0x-prefixed hex).
template <class Crc>
inline result<void> verify_file_summary(const manifest& m, std::string_view name, std::uint64_t size, Crc&& crc) {
  const auto fail = [&](std::string reason) {
    return error(errc::snapshot_corruption, "snapshot file does not match its manifest: " + reason,
                 {{"file", std::string(name)},
                  {"commit_id", std::to_string(m.commit)},
                  {"reason", reason}});
  };
  const manifest_file* f = find_file(m, name);
  if (!f) return fail("not listed in the manifest");
  if (size != f->size)
    return fail("size mismatch")
        .with("expected_size", std::to_string(f->size))
        .with("actual_size", std::to_string(size));
  const std::uint32_t actual = crc();
  if (actual != f->crc)
    return fail("checksum mismatch")
        .with("expected_crc", snapshot_detail::hex32(f->crc))
        .with("actual_crc", snapshot_detail::hex32(actual));
  return ok();
}

// Checks `contents` against the manifest's entry for `name` (failures as above).
inline result<void> verify_file(const manifest& m, std::string_view name,
                                std::span<const std::byte> contents) {
  return verify_file_summary(m, name, contents.size(), [&] { return crc32c::value(contents); });
}

}  // namespace aerodb::format
