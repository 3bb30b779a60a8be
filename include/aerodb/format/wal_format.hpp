// The write-ahead log's bytes: segment files, record framing and record payloads.
//
// docs/format.md is the prose version of this header; the two change together. Nothing
// outside aerodb/format/ may define or assume these layouts, and no policy may change
// them: a log written by any engine instantiation is read by every other.
//
//   segment   := segment_header record* zero*
//   segment_header (40 bytes):
//     0  magic "AERODBWL"         8 bytes
//     8  format_version u32       = 3 (1, 2: earlier record framings; not read)
//     12 flags u32                = 0
//     16 segment_seq u64          = the number in the file name, from 1
//     24 first_commit_id u64      = CommitId of the segment's first record
//     32 header_crc u32           = CRC32C of bytes [0, 32)
//     36 reserved u32             = 0
//   record    := record_header payload
//   payload   := ~body end_marker          (payload_length bytes: the body, every byte
//                                           complemented, then one byte 0x5A)
//   record_header (24 bytes):
//     0  start_marker u8          = 0xA5
//     1  type u8                  one of record_type
//     2  reserved 2 bytes         = 0
//     4  payload_length u32       1 ..= max_record_payload (the end marker included)
//     8  commit_id u64            = previous record's commit_id + 1
//     16 payload_crc u32          = CRC32C of the payload as stored
//     20 header_crc u32           = CRC32C of bytes [0, 20)
//
// Segments are preallocated (since version 2): the file holds zeros after its last record
// (space allocated, and made durable, before any record was written into it). The first
// zero byte where a record header would start is the end of the segment; a record header
// can never be all zeros (its start marker, type and CommitId are non-zero). Versions 1
// and 2 are refused by name rather than guessed at.
//
// Why the markers and the complement (version 3). A crash may leave any 512-byte sector of
// the unsynced tail unwritten, reading as zeros; a flipped bit in acknowledged data must
// still be corruption. The two look alike exactly when the bytes of a record that fall in
// the unwritten sectors held a single set bit. Every such part of a record contains the
// record's first byte, its last byte, or a whole sector inside it, so the format makes each
// of those hold at least two set bits: the start marker (four set bits), the end marker
// (four), and the complemented body, in which a run of zero bytes is a run of 0xFF bytes
// of the body. No body holds more than 16 of those in a row (UTF-8 text never contains
// 0xFF, no tag is 0xFF, and every length and count is far below 2^24), so any 512 bytes
// of a stored body hold dozens of set bits. docs/format.md §5.2 gives the full argument.
//
// The header carries its own checksum so that recovery can tell a record that was cut
// short by a crash (its header is whole and valid, its payload runs past the end of the
// file) from one whose length field was damaged after it was written: without it, a
// flipped length in the log's last record would look like a torn write and an
// acknowledged commit would be discarded. The payload's checksum does not depend on the
// CommitId, so it is computed before the CommitId is known (outside the commit lock).
#pragma once

#include <aerodb/commit_id.hpp>
#include <aerodb/error.hpp>
#include <aerodb/format/bytes.hpp>
#include <aerodb/io/crc32c.hpp>

#include <array>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace aerodb::format {

// Spelled format::commit_id by code written before aerodb/commit_id.hpp existed.
using aerodb::commit_id;

inline constexpr std::array<char, 8> wal_magic = {'A', 'E', 'R', 'O', 'D', 'B', 'W', 'L'};
inline constexpr std::uint32_t wal_format_version = 3;
inline constexpr std::size_t segment_header_size = 40;
inline constexpr std::size_t record_header_size = 24;
// A record larger than this cannot have been written by any AeroDB: it is damage.
inline constexpr std::uint32_t max_record_payload = 64u << 20;
// The first byte of every record and the last byte of its payload (see above).
inline constexpr std::byte record_start_marker{0xA5};
inline constexpr std::byte record_end_marker{0x5A};
// The largest body a record can carry: the payload less its end marker.
inline constexpr std::uint32_t max_record_body = max_record_payload - 1;

static_assert(segment_header_size == 8 + 4 + 4 + 8 + 8 + 4 + 4);
static_assert(record_header_size == 1 + 1 + 2 + 4 + 8 + 4 + 4);

enum class record_type : std::uint8_t {
  schema_register = 1,    // payload: the schema's canonical JSON text
  collection_create = 2,  // payload: name_len u16, name, schema_id_len u16, schema_id
  write_batch = 3,        // payload: see write_batch_record
  index_create = 4,       // payload: collection_len u16, collection, path_len u16, field path
  gc = 5,                 // payload: floor u64 (versions superseded at or below it go)
};

inline bool known_record_type(std::uint8_t t) { return t >= 1 && t <= 5; }

// "wal-00000000000000000001.log": fixed width so that names sort in sequence order.
inline std::string segment_file_name(std::uint64_t seq) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "wal-%020llu.log", static_cast<unsigned long long>(seq));
  return buf;
}

inline std::optional<std::uint64_t> parse_segment_file_name(std::string_view name) {
  if (name.size() != 28 || name.substr(0, 4) != "wal-" || name.substr(24) != ".log")
    return std::nullopt;
  std::uint64_t v = 0;
  for (char c : name.substr(4, 20)) {
    if (c < '0' || c > '9') return std::nullopt;
    const auto digit = static_cast<std::uint64_t>(c - '0');
    if (v > (UINT64_MAX - digit) / 10) return std::nullopt;  // 20 digits can exceed 2^64
    v = v * 10 + digit;
  }
  return v;
}

struct segment_header {
  std::uint64_t segment_seq = 0;
  commit_id first_commit_id = 0;
};

inline byte_buffer encode_segment_header(const segment_header& h) {
  byte_buffer out;
  out.reserve(segment_header_size);
  for (char c : wal_magic) out.push_back(static_cast<std::byte>(c));
  put_le<std::uint32_t>(out, wal_format_version);
  put_le<std::uint32_t>(out, 0);
  put_le<std::uint64_t>(out, h.segment_seq);
  put_le<std::uint64_t>(out, h.first_commit_id);
  put_le<std::uint32_t>(out, crc32c::value(std::span(out).first(32)));
  put_le<std::uint32_t>(out, 0);
  return out;
}

enum class header_status : std::uint8_t {
  valid,
  damaged,      // short, wrong magic or checksum mismatch (torn only if short or zeros)
  unsupported,  // checksummed, but a version or flags this reader does not know: never torn
};

struct decoded_segment_header {
  header_status status = header_status::damaged;
  segment_header header;
  std::uint32_t format_version = 0;  // as stored, once the header's checksum verified
};

inline decoded_segment_header decode_segment_header(std::span<const std::byte> bytes) {
  decoded_segment_header out;
  if (bytes.size() < segment_header_size) return out;
  for (std::size_t i = 0; i < wal_magic.size(); ++i)
    if (bytes[i] != static_cast<std::byte>(wal_magic[i])) return out;
  if (load_le<std::uint32_t>(bytes.data() + 32) != crc32c::value(bytes.first(32))) return out;
  out.status = header_status::unsupported;
  out.format_version = load_le<std::uint32_t>(bytes.data() + 8);
  if (out.format_version != wal_format_version) return out;
  if (load_le<std::uint32_t>(bytes.data() + 12) != 0) return out;
  if (load_le<std::uint32_t>(bytes.data() + 36) != 0) return out;
  out.status = header_status::valid;
  out.header = segment_header{load_le<std::uint64_t>(bytes.data() + 16),
                              load_le<std::uint64_t>(bytes.data() + 24)};
  return out;
}

struct record_header {
  bool header_crc_ok = false;  // bytes [0, 20) match the header checksum
  // The start marker is right and the reserved bytes are zero: a verified header without
  // them was written so by something that is not this format.
  bool framing_ok = false;
  std::uint32_t payload_crc = 0;
  std::uint32_t payload_length = 0;  // the stored payload: body and end marker
  std::uint8_t type = 0;
  commit_id commit = 0;
};

// REQUIRES: `at` points to record_header_size readable bytes.
inline record_header decode_record_header(const std::byte* at) {
  record_header h;
  h.header_crc_ok = load_le<std::uint32_t>(at + 20) == crc32c::value(std::span(at, 20));
  h.framing_ok = at[0] == record_start_marker && at[2] == std::byte{0} && at[3] == std::byte{0};
  h.type = std::to_integer<std::uint8_t>(at[1]);
  h.payload_length = load_le<std::uint32_t>(at + 4);
  h.commit = load_le<std::uint64_t>(at + 8);
  h.payload_crc = load_le<std::uint32_t>(at + 16);
  return h;
}

// Replaces every byte of `bytes` by its complement: a record body's stored form, and back.
inline void complement(std::span<std::byte> bytes) noexcept {
  std::byte* p = bytes.data();
  const std::size_t n = bytes.size();
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {  // a word at a time; compilers vectorize it
    std::uint64_t w;
    std::memcpy(&w, p + i, 8);
    w = ~w;
    std::memcpy(p + i, &w, 8);
  }
  for (; i < n; ++i) p[i] = ~p[i];
}

// The payload_crc of a record whose stored body is `stored_body_crc`'s input: the end
// marker's byte folded in.
inline std::uint32_t seal_payload_crc(std::uint32_t stored_body_crc) noexcept {
  const std::array<std::byte, 1> end{record_end_marker};
  return crc32c::extend(stored_body_crc, std::span<const std::byte>(end));
}

// The payload_crc of a record whose stored (already complemented) body is `stored_body`.
inline std::uint32_t stored_payload_crc(std::span<const std::byte> stored_body) noexcept {
  return seal_payload_crc(crc32c::value(stored_body));
}

// Appends one framed record to `out`. `stored_body` is the body already complemented, and
// `payload_crc` is stored_payload_crc(stored_body), computed by the caller (possibly on
// another thread, before the CommitId was assigned), so the commit lock copies bytes and
// checksums only the 20 header bytes.
// REQUIRES: stored_body.size() <= max_record_body.
inline void append_record(byte_buffer& out, record_type type, commit_id commit,
                          std::span<const std::byte> stored_body, std::uint32_t payload_crc) {
  std::array<std::byte, record_header_size> h{};
  h[0] = record_start_marker;
  h[1] = static_cast<std::byte>(type);
  store_le<std::uint32_t>(h.data() + 4, static_cast<std::uint32_t>(stored_body.size() + 1));
  store_le<std::uint64_t>(h.data() + 8, commit);
  store_le<std::uint32_t>(h.data() + 16, payload_crc);
  store_le<std::uint32_t>(h.data() + 20, crc32c::value(std::span(h).first(20)));
  out.insert(out.end(), h.begin(), h.end());
  out.insert(out.end(), stored_body.begin(), stored_body.end());
  out.push_back(record_end_marker);
}

// A plain body framed as a record, for tools and tests that have the body in hand.
inline void append_plain_record(byte_buffer& out, record_type type, commit_id commit,
                                std::span<const std::byte> body) {
  byte_buffer stored(body.begin(), body.end());
  complement(stored);
  append_record(out, type, commit, stored, stored_payload_crc(stored));
}

// ---- payloads -------------------------------------------------------------------------

struct collection_create_record {
  std::string name;
  std::string schema_id;
};

inline byte_buffer encode_collection_create(const collection_create_record& r) {
  byte_buffer out;
  put_le<std::uint16_t>(out, static_cast<std::uint16_t>(r.name.size()));
  put_bytes(out, r.name);
  put_le<std::uint16_t>(out, static_cast<std::uint16_t>(r.schema_id.size()));
  put_bytes(out, r.schema_id);
  return out;
}

inline std::optional<collection_create_record> decode_collection_create(
    std::span<const std::byte> payload) {
  cursor c(payload);
  std::uint16_t n = 0;
  std::string_view name, schema;
  if (!c.read(n) || !c.read_string(n, name) || !c.read(n) || !c.read_string(n, schema) ||
      !c.at_end())
    return std::nullopt;
  return collection_create_record{std::string(name), std::string(schema)};
}

struct index_create_record {
  std::string collection;
  std::string path;
};

inline byte_buffer encode_index_create(const index_create_record& r) {
  byte_buffer out;
  put_le<std::uint16_t>(out, static_cast<std::uint16_t>(r.collection.size()));
  put_bytes(out, r.collection);
  put_le<std::uint16_t>(out, static_cast<std::uint16_t>(r.path.size()));
  put_bytes(out, r.path);
  return out;
}

inline std::optional<index_create_record> decode_index_create(std::span<const std::byte> payload) {
  cursor c(payload);
  std::uint16_t n = 0;
  std::string_view coll, path;
  if (!c.read(n) || !c.read_string(n, coll) || !c.read(n) || !c.read_string(n, path) ||
      !c.at_end())
    return std::nullopt;
  return index_create_record{std::string(coll), std::string(path)};
}

inline byte_buffer encode_gc(commit_id floor) {
  byte_buffer out;
  put_le<std::uint64_t>(out, floor);
  return out;
}

inline std::optional<commit_id> decode_gc(std::span<const std::byte> payload) {
  cursor c(payload);
  commit_id floor = 0;
  if (!c.read(floor) || !c.at_end()) return std::nullopt;
  return floor;
}

enum class write_kind : std::uint8_t { insert = 1, update = 2, remove = 3 };

// One operation of a write batch. `document` holds the encoded document (see
// document_codec.hpp) for insert and update, and is empty for remove.
struct write_op_record {
  write_kind kind = write_kind::insert;
  std::string collection;
  std::string doc_id;
  std::uint32_t schema_version = 0;
  std::span<const std::byte> document;  // points into the payload being decoded or encoded
};

//   write_batch payload := op_count u32, op*
//   op := kind u8, collection_len u16, collection, id_len u16, id,
//         [insert/update: schema_version u32, document_len u32, document]
// The same bytes from views, so the engine's encoder copies no names.
inline void encode_write_op(byte_buffer& out, write_kind kind, std::string_view collection,
                            std::string_view doc_id, std::uint32_t schema_version,
                            std::span<const std::byte> document) {
  out.push_back(static_cast<std::byte>(kind));
  put_le<std::uint16_t>(out, static_cast<std::uint16_t>(collection.size()));
  put_bytes(out, collection);
  put_le<std::uint16_t>(out, static_cast<std::uint16_t>(doc_id.size()));
  put_bytes(out, doc_id);
  if (kind != write_kind::remove) {
    put_le<std::uint32_t>(out, schema_version);
    put_le<std::uint32_t>(out, static_cast<std::uint32_t>(document.size()));
    put_bytes(out, document);
  }
}
inline void encode_write_op(byte_buffer& out, const write_op_record& op) {
  encode_write_op(out, op.kind, op.collection, op.doc_id, op.schema_version, op.document);
}

// Bytes encode_write_op appends for these sizes.
constexpr std::size_t write_op_size(write_kind kind, std::size_t collection_bytes,
                                    std::size_t doc_id_bytes, std::size_t document_bytes) noexcept {
  return 1 + 2 + collection_bytes + 2 + doc_id_bytes +
         (kind != write_kind::remove ? 4 + 4 + document_bytes : 0);
}

// Structural decoding only; the documents inside are checked by the caller.
inline std::optional<std::vector<write_op_record>> decode_write_batch(
    std::span<const std::byte> payload) {
  cursor c(payload);
  std::uint32_t count = 0;
  if (!c.read(count) || count == 0) return std::nullopt;
  // Each op takes at least 5 bytes: a count larger than that is damage, not a reason to
  // reserve gigabytes.
  if (count > c.remaining() / 5) return std::nullopt;
  std::vector<write_op_record> ops;
  ops.reserve(count);
  for (std::uint32_t i = 0; i < count; ++i) {
    write_op_record op;
    std::uint8_t kind = 0;
    std::uint16_t n = 0;
    std::string_view s;
    if (!c.read(kind) || kind < 1 || kind > 3) return std::nullopt;
    op.kind = static_cast<write_kind>(kind);
    if (!c.read(n) || !c.read_string(n, s)) return std::nullopt;
    op.collection = std::string(s);
    if (!c.read(n) || !c.read_string(n, s)) return std::nullopt;
    op.doc_id = std::string(s);
    if (op.kind != write_kind::remove) {
      std::uint32_t len = 0;
      if (!c.read(op.schema_version) || !c.read(len) || !c.read_bytes(len, op.document))
        return std::nullopt;
    }
    ops.push_back(std::move(op));
  }
  if (!c.at_end()) return std::nullopt;
  return ops;
}

}  // namespace aerodb::format
