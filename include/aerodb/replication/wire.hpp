// The replication wire format: the frames a primary and a replica exchange over any
// transport (replication/transport.hpp). docs/replication.md §3 is the prose version of
// this header; the two change together.
//
//   frame        := frame_header body
//   frame_header (16 bytes, little-endian):
//     0  version u8      = 1
//     1  type u8         one of frame_type
//     2  reserved u16    = 0
//     4  body_length u32 <= max_frame_body
//     8  body_crc u32    = CRC32C of the body
//     12 header_crc u32  = CRC32C of bytes [0, 12)
//
// Bodies, by type:
//   hello    (replica -> primary) 24 bytes: epoch u64 (the primary epoch the replica follows;
//            0: none yet), last_commit u64 (its newest durable record; 0: empty log),
//            last_payload_crc u32 (that record's payload_crc; 0 with last_commit 0),
//            reserved u32 = 0
//   welcome  (primary -> replica) 16 bytes: epoch u64 (the primary's), durable u64 (its
//            newest durable CommitId when the handshake was answered)
//   segment  (primary -> replica) 16 bytes: seq u64, first_commit u64: the next record
//            shipped is in the primary's segment `seq`, which starts at `first_commit`
//   record   (primary -> replica) one WAL record exactly as the primary's log holds it
//            (record header and payload, docs/format.md §5), 25 ..= 24 + max_record_payload
//            bytes
//   ack      (replica -> primary) 8 bytes: durable u64, every record up to it is on the
//            replica's disk and applied
//   refuse   (either way) 2 + n bytes: code u16 (the errc of the reason), then n bytes of
//            UTF-8 text; the sender closes the connection after it
//   snapshot_begin (primary -> replica) 40 bytes: commit u64 (P, the image's boundary),
//            data_size u64, data_crc u32 (CRC32C of the whole snapshot data file),
//            reserved u32 = 0, seq u64, first_commit u64 (the primary's segment that
//            holds record P, and where it starts); a snapshot bootstrap follows
//            (docs/replication.md §8)
//   snapshot_chunk (primary -> replica) 1 ..= max_frame_body bytes: the next bytes of the
//            snapshot data file, in order
//   snapshot_end (primary -> replica) 8 bytes: commit u64 = P; the data file was sent
//            whole, then records first_commit ..= P as record frames
//
// Why a checksum of its own around a record that has two already: the frame checksum
// catches damage to the framing (a type or a length), which the record's checksums do
// not cover; the record's own are checked again on receipt, and the replica stores the
// record's bytes only after both pass.
//
// Thread safety: pure functions.
#pragma once

#include <aerodb/commit_id.hpp>
#include <aerodb/error.hpp>
#include <aerodb/format/bytes.hpp>
#include <aerodb/format/wal_format.hpp>
#include <aerodb/io/crc32c.hpp>

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <variant>

namespace aerodb::replication {

inline constexpr std::uint8_t wire_version = 1;
inline constexpr std::size_t frame_header_size = 16;
// The largest body: a record frame holding the largest record.
inline constexpr std::uint32_t max_frame_body =
    static_cast<std::uint32_t>(format::record_header_size) + format::max_record_payload;
// A refusal's text is cut to this many bytes.
inline constexpr std::size_t max_refuse_text = 4096;

enum class frame_type : std::uint8_t {
  hello = 1,
  welcome = 2,
  segment = 3,
  record = 4,
  ack = 5,
  refuse = 6,
  snapshot_begin = 7,
  snapshot_chunk = 8,
  snapshot_end = 9,
};
inline constexpr std::uint8_t max_frame_type = 9;

inline std::string_view to_string(frame_type t) {
  switch (t) {
    case frame_type::hello: return "hello";
    case frame_type::welcome: return "welcome";
    case frame_type::segment: return "segment";
    case frame_type::record: return "record";
    case frame_type::ack: return "ack";
    case frame_type::refuse: return "refuse";
    case frame_type::snapshot_begin: return "snapshot_begin";
    case frame_type::snapshot_chunk: return "snapshot_chunk";
    case frame_type::snapshot_end: return "snapshot_end";
  }
  return "?";
}

struct hello {
  std::uint64_t epoch = 0;
  commit_id last_commit = 0;
  std::uint32_t last_payload_crc = 0;
  friend bool operator==(const hello&, const hello&) = default;
};
struct welcome {
  std::uint64_t epoch = 0;
  commit_id durable = 0;
  friend bool operator==(const welcome&, const welcome&) = default;
};
struct segment_start {
  std::uint64_t seq = 0;
  commit_id first_commit = 0;
  friend bool operator==(const segment_start&, const segment_start&) = default;
};
// A record frame's body: the framed WAL record, valid as long as the buffer it was decoded
// from.
struct record_frame {
  std::span<const std::byte> framed;
  friend bool operator==(const record_frame& a, const record_frame& b) {
    return std::equal(a.framed.begin(), a.framed.end(), b.framed.begin(), b.framed.end());
  }
};
struct ack {
  commit_id durable = 0;
  friend bool operator==(const ack&, const ack&) = default;
};
struct refuse {
  errc code = errc::replication_protocol;
  std::string text;
  friend bool operator==(const refuse&, const refuse&) = default;
};

struct snapshot_begin {
  commit_id commit = 0;
  std::uint64_t data_size = 0;
  std::uint32_t data_crc = 0;
  segment_start segment;  // the primary's segment holding record `commit`
  friend bool operator==(const snapshot_begin&, const snapshot_begin&) = default;
};
// The next bytes of the snapshot data file, valid as long as the buffer it was decoded from.
struct snapshot_chunk {
  std::span<const std::byte> bytes;
  friend bool operator==(const snapshot_chunk& a, const snapshot_chunk& b) {
    return std::equal(a.bytes.begin(), a.bytes.end(), b.bytes.begin(), b.bytes.end());
  }
};
struct snapshot_end {
  commit_id commit = 0;
  friend bool operator==(const snapshot_end&, const snapshot_end&) = default;
};

using message = std::variant<hello, welcome, segment_start, record_frame, ack, refuse, snapshot_begin, snapshot_chunk,
                             snapshot_end>;

struct frame_header {
  frame_type type = frame_type::hello;
  std::uint32_t body_length = 0;
  std::uint32_t body_crc = 0;
};

namespace detail {
inline error protocol_error(std::string why, std::vector<error_detail> details = {}) {
  return error(errc::replication_protocol, "malformed replication frame: " + std::move(why), std::move(details));
}
inline void put_header(format::byte_buffer& out, frame_type t, std::span<const std::byte> body) {
  std::array<std::byte, frame_header_size> h{};
  h[0] = static_cast<std::byte>(wire_version);
  h[1] = static_cast<std::byte>(t);
  format::store_le<std::uint32_t>(h.data() + 4, static_cast<std::uint32_t>(body.size()));
  format::store_le<std::uint32_t>(h.data() + 8, crc32c::value(body));
  format::store_le<std::uint32_t>(h.data() + 12, crc32c::value(std::span(h).first(12)));
  out.insert(out.end(), h.begin(), h.end());
}
}  // namespace detail

// Appends the frame of `m` to `out`.
inline void encode(format::byte_buffer& out, const message& m) {
  format::byte_buffer body;
  frame_type t = frame_type::hello;
  std::visit(
      [&](const auto& v) {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, hello>) {
          t = frame_type::hello;
          format::put_le<std::uint64_t>(body, v.epoch);
          format::put_le<std::uint64_t>(body, v.last_commit);
          format::put_le<std::uint32_t>(body, v.last_payload_crc);
          format::put_le<std::uint32_t>(body, 0);
        } else if constexpr (std::is_same_v<T, welcome>) {
          t = frame_type::welcome;
          format::put_le<std::uint64_t>(body, v.epoch);
          format::put_le<std::uint64_t>(body, v.durable);
        } else if constexpr (std::is_same_v<T, segment_start>) {
          t = frame_type::segment;
          format::put_le<std::uint64_t>(body, v.seq);
          format::put_le<std::uint64_t>(body, v.first_commit);
        } else if constexpr (std::is_same_v<T, record_frame>) {
          t = frame_type::record;
          format::put_bytes(body, v.framed);
        } else if constexpr (std::is_same_v<T, ack>) {
          t = frame_type::ack;
          format::put_le<std::uint64_t>(body, v.durable);
        } else if constexpr (std::is_same_v<T, snapshot_begin>) {
          t = frame_type::snapshot_begin;
          format::put_le<std::uint64_t>(body, v.commit);
          format::put_le<std::uint64_t>(body, v.data_size);
          format::put_le<std::uint32_t>(body, v.data_crc);
          format::put_le<std::uint32_t>(body, 0);
          format::put_le<std::uint64_t>(body, v.segment.seq);
          format::put_le<std::uint64_t>(body, v.segment.first_commit);
        } else if constexpr (std::is_same_v<T, snapshot_chunk>) {
          t = frame_type::snapshot_chunk;
          format::put_bytes(body, v.bytes);
        } else if constexpr (std::is_same_v<T, snapshot_end>) {
          t = frame_type::snapshot_end;
          format::put_le<std::uint64_t>(body, v.commit);
        } else {
          t = frame_type::refuse;
          format::put_le<std::uint16_t>(body, static_cast<std::uint16_t>(v.code));
          format::put_bytes(body, std::string_view(v.text).substr(0, max_refuse_text));
        }
      },
      m);
  detail::put_header(out, t, body);
  out.insert(out.end(), body.begin(), body.end());
}

inline format::byte_buffer encode(const message& m) {
  format::byte_buffer out;
  encode(out, m);
  return out;
}

// The header of a frame; AERO_REPLICATION_PROTOCOL for a bad checksum, version, type,
// reserved bytes or length.
// REQUIRES: bytes.size() == frame_header_size.
inline result<frame_header> decode_header(std::span<const std::byte> bytes) {
  if (bytes.size() != frame_header_size) return detail::protocol_error("short frame header");
  const auto crc = format::load_le<std::uint32_t>(bytes.data() + 12);
  if (crc != crc32c::value(bytes.first(12))) return detail::protocol_error("frame header checksum mismatch");
  if (std::to_integer<std::uint8_t>(bytes[0]) != wire_version)
    return detail::protocol_error("unsupported wire version",
                                  {{"version", std::to_string(std::to_integer<int>(bytes[0]))}});
  const auto type = std::to_integer<std::uint8_t>(bytes[1]);
  if (type < 1 || type > max_frame_type) return detail::protocol_error("unknown frame type", {{"type", std::to_string(type)}});
  if (bytes[2] != std::byte{0} || bytes[3] != std::byte{0}) return detail::protocol_error("reserved bytes set");
  frame_header h;
  h.type = static_cast<frame_type>(type);
  h.body_length = format::load_le<std::uint32_t>(bytes.data() + 4);
  h.body_crc = format::load_le<std::uint32_t>(bytes.data() + 8);
  if (h.body_length > max_frame_body)
    return detail::protocol_error("frame body longer than allowed",
                                  {{"length", std::to_string(h.body_length)}, {"limit", std::to_string(max_frame_body)}});
  return h;
}

// The message of a frame whose header decoded to `h` and whose body is `body`. A record
// frame's span points into `body`.
inline result<message> decode_body(const frame_header& h, std::span<const std::byte> body) {
  if (body.size() != h.body_length) return detail::protocol_error("frame body length differs from its header");
  if (crc32c::value(body) != h.body_crc) return detail::protocol_error("frame body checksum mismatch",
                                                                       {{"type", std::string(to_string(h.type))}});
  auto fixed = [&](std::size_t n) -> result<void> {
    if (body.size() != n)
      return detail::protocol_error("wrong body length for a " + std::string(to_string(h.type)) + " frame",
                                    {{"length", std::to_string(body.size())}, {"expected", std::to_string(n)}});
    return ok();
  };
  const std::byte* p = body.data();
  switch (h.type) {
    case frame_type::hello: {
      AERO_TRY(fixed(24));
      hello m{format::load_le<std::uint64_t>(p), format::load_le<std::uint64_t>(p + 8),
              format::load_le<std::uint32_t>(p + 16)};
      if (format::load_le<std::uint32_t>(p + 20) != 0) return detail::protocol_error("reserved bytes set in hello");
      if (m.last_commit == 0 && m.last_payload_crc != 0)
        return detail::protocol_error("hello names a checksum for an empty log");
      return message(m);
    }
    case frame_type::welcome:
      AERO_TRY(fixed(16));
      return message(welcome{format::load_le<std::uint64_t>(p), format::load_le<std::uint64_t>(p + 8)});
    case frame_type::segment: {
      AERO_TRY(fixed(16));
      segment_start m{format::load_le<std::uint64_t>(p), format::load_le<std::uint64_t>(p + 8)};
      if (m.seq == 0 || m.first_commit == 0) return detail::protocol_error("segment frame with a zero field");
      return message(m);
    }
    case frame_type::record:
      if (body.size() <= format::record_header_size)
        return detail::protocol_error("record frame shorter than a record",
                                      {{"length", std::to_string(body.size())}});
      return message(record_frame{body});
    case frame_type::ack:
      AERO_TRY(fixed(8));
      return message(ack{format::load_le<std::uint64_t>(p)});
    case frame_type::refuse: {
      if (body.size() < 2 || body.size() > 2 + max_refuse_text)
        return detail::protocol_error("refuse frame of impossible length", {{"length", std::to_string(body.size())}});
      const auto code = format::load_le<std::uint16_t>(p);
      if (code >= std::size(errc_table)) return detail::protocol_error("refuse frame with an unknown code");
      return message(refuse{static_cast<errc>(code), std::string(format::as_chars(body.subspan(2)))});
    }
    case frame_type::snapshot_begin: {
      AERO_TRY(fixed(40));
      snapshot_begin m;
      m.commit = format::load_le<std::uint64_t>(p);
      m.data_size = format::load_le<std::uint64_t>(p + 8);
      m.data_crc = format::load_le<std::uint32_t>(p + 16);
      if (format::load_le<std::uint32_t>(p + 20) != 0)
        return detail::protocol_error("reserved bytes set in snapshot_begin");
      m.segment = segment_start{format::load_le<std::uint64_t>(p + 24), format::load_le<std::uint64_t>(p + 32)};
      if (m.commit == 0 || m.data_size == 0 || m.segment.seq == 0 || m.segment.first_commit == 0 ||
          m.segment.first_commit > m.commit)
        return detail::protocol_error("snapshot_begin names an impossible snapshot or segment");
      return message(m);
    }
    case frame_type::snapshot_chunk:
      if (body.empty()) return detail::protocol_error("empty snapshot_chunk frame");
      return message(snapshot_chunk{body});
    case frame_type::snapshot_end: {
      AERO_TRY(fixed(8));
      snapshot_end m{format::load_le<std::uint64_t>(p)};
      if (m.commit == 0) return detail::protocol_error("snapshot_end with a zero CommitId");
      return message(m);
    }
  }
  return detail::protocol_error("unknown frame type");
}

// Decodes the one frame that `bytes` holds exactly (tests, fuzzing).
inline result<message> decode(std::span<const std::byte> bytes) {
  if (bytes.size() < frame_header_size) return detail::protocol_error("shorter than a frame header");
  AERO_TRY_ASSIGN(frame_header h, decode_header(bytes.first(frame_header_size)));
  return decode_body(h, bytes.subspan(frame_header_size));
}

}  // namespace aerodb::replication
