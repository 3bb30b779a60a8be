// Binary encoding of documents: the bytes that are stored, logged and indexed.
//
// The encoding is length-prefixed so a reader can skip any value in O(1) and reach a field
// without decoding its siblings. All integers are little-endian.
//
//   value    := tag:u8 body
//   0x00 null     no body
//   0x01 false    no body
//   0x02 true     no body
//   0x03 int      i64
//   0x04 float    f64 (IEEE-754 bits)
//   0x05 string   len:u32, len bytes of UTF-8
//   0x06 array    body_len:u32, count:u32, count x value
//   0x07 object   body_len:u32, count:u32, count x (name_len:u16, name bytes, value)
//   document := an object value (the root), fields in the order of the JSON input
//
// `body_len` counts the bytes after the body_len field itself (so it includes `count`).
// A valid encoding satisfies, and check_encoded_value() verifies on untrusted bytes:
//   - every tag is one of the above;
//   - every length lies inside the buffer, and the `count` children of a container end
//     exactly at the end of its body (no slack, no overrun);
//   - containers nest at most hard_max_depth levels (the outermost container is level 1);
//   - the whole value is at most hard_max_document_bytes and nothing follows it.
// Not verified: UTF-8 validity of strings and names, and unique field names; those are
// guaranteed on the way in (check_document_shape) and are not needed for memory safety.
//
// Everything that reads encoded bytes (aerodb/document/value_view.hpp) goes through the
// load_* and skip helpers here, so this file alone defines the on-disk bytes.
//
// Thread safety: stateless functions; safe to call concurrently on distinct outputs.
#pragma once

#include <aerodb/error.hpp>
#include <aerodb/format/limits.hpp>

#include <boost/json/value.hpp>

#include <bit>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace aerodb::format {

inline constexpr std::uint8_t tag_null = 0x00;
inline constexpr std::uint8_t tag_false = 0x01;
inline constexpr std::uint8_t tag_true = 0x02;
inline constexpr std::uint8_t tag_int = 0x03;
inline constexpr std::uint8_t tag_float = 0x04;
inline constexpr std::uint8_t tag_string = 0x05;
inline constexpr std::uint8_t tag_array = 0x06;
inline constexpr std::uint8_t tag_object = 0x07;

// tag + body_len + count: where the first child of a container starts.
inline constexpr std::size_t container_header_bytes = 1 + 4 + 4;
// tag + len: where the bytes of a string start.
inline constexpr std::size_t string_header_bytes = 1 + 4;
inline constexpr std::size_t scalar64_bytes = 1 + 8;

// ---- little-endian primitives (byte-by-byte so they are alignment- and host-agnostic) ----

inline std::uint16_t load_u16(const std::byte* p) noexcept {
  return static_cast<std::uint16_t>(std::to_integer<unsigned>(p[0]) |
                                    (std::to_integer<unsigned>(p[1]) << 8));
}
inline std::uint32_t load_u32(const std::byte* p) noexcept {
  std::uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | std::to_integer<std::uint32_t>(p[i]);
  return v;
}
inline std::uint64_t load_u64(const std::byte* p) noexcept {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | std::to_integer<std::uint64_t>(p[i]);
  return v;
}
inline void append_u8(std::vector<std::byte>& out, std::uint8_t v) { out.push_back(std::byte{v}); }
inline void append_le(std::vector<std::byte>& out, std::uint64_t v, int n) {
  for (int i = 0; i < n; ++i) out.push_back(static_cast<std::byte>((v >> (8 * i)) & 0xFF));
}
inline void store_u32(std::byte* p, std::uint32_t v) noexcept {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<std::byte>((v >> (8 * i)) & 0xFF);
}

// ---- readers over validated bytes (precondition: check_encoded_value accepted them) ----

// Bytes occupied by the value whose tag is at `p`, tag included. O(1).
inline std::size_t encoded_size(const std::byte* p) noexcept {
  switch (std::to_integer<std::uint8_t>(p[0])) {
    case tag_int:
    case tag_float: return scalar64_bytes;
    case tag_string: return string_header_bytes + load_u32(p + 1);
    case tag_array:
    case tag_object: return 1 + 4 + std::size_t{load_u32(p + 1)};
    default: return 1;
  }
}

// ---- encoder ----

namespace detail {

inline error encode_error(errc code, std::string message) { return error(code, std::move(message)); }

inline result<void> encode_into(const boost::json::value& v, std::vector<std::byte>& out,
                                std::size_t depth) {
  constexpr std::size_t u32_max = std::numeric_limits<std::uint32_t>::max();
  switch (v.kind()) {
    case boost::json::kind::null: append_u8(out, tag_null); return ok();
    case boost::json::kind::bool_: append_u8(out, v.get_bool() ? tag_true : tag_false); return ok();
    case boost::json::kind::int64:
      append_u8(out, tag_int);
      append_le(out, static_cast<std::uint64_t>(v.get_int64()), 8);
      return ok();
    case boost::json::kind::uint64:
      if (v.get_uint64() > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
        return encode_error(errc::document_number_out_of_range, "integer above INT64_MAX");
      append_u8(out, tag_int);
      append_le(out, v.get_uint64(), 8);
      return ok();
    case boost::json::kind::double_:
      append_u8(out, tag_float);
      append_le(out, std::bit_cast<std::uint64_t>(v.get_double()), 8);
      return ok();
    case boost::json::kind::string: {
      const auto& s = v.get_string();
      if (s.size() > u32_max) return encode_error(errc::document_too_large, "string too long");
      append_u8(out, tag_string);
      append_le(out, s.size(), 4);
      const auto* b = reinterpret_cast<const std::byte*>(s.data());
      out.insert(out.end(), b, b + s.size());
      return ok();
    }
    case boost::json::kind::array:
    case boost::json::kind::object: break;
  }
  if (depth + 1 > hard_max_depth)
    return encode_error(errc::document_too_deep, "nesting deeper than the hard maximum");
  const std::size_t start = out.size();
  append_u8(out, v.is_array() ? tag_array : tag_object);
  append_le(out, 0, 4);  // body_len, patched below once the children are written
  if (v.is_array()) {
    const auto& a = v.get_array();
    if (a.size() > u32_max) return encode_error(errc::document_too_large, "array too long");
    append_le(out, a.size(), 4);
    for (const auto& e : a) AERO_TRY(encode_into(e, out, depth + 1));
  } else {
    const auto& o = v.get_object();
    if (o.size() > u32_max) return encode_error(errc::document_too_large, "object too large");
    append_le(out, o.size(), 4);
    for (const auto& kv : o) {
      const std::string_view name = kv.key();
      if (name.size() > hard_max_field_name_bytes)
        return encode_error(errc::document_field_name_invalid, "field name longer than 65535 bytes");
      append_le(out, name.size(), 2);
      const auto* b = reinterpret_cast<const std::byte*>(name.data());
      out.insert(out.end(), b, b + name.size());
      AERO_TRY(encode_into(kv.value(), out, depth + 1));
    }
  }
  const std::size_t body = out.size() - start - 5;
  if (body > u32_max) return encode_error(errc::document_too_large, "container body too large");
  store_u32(out.data() + start + 1, static_cast<std::uint32_t>(body));
  return ok();
}

}  // namespace detail

namespace detail {

// The bytes encode_into appends for `v`, so the output can be allocated once; 0 when the
// walk meets nesting beyond hard_max_depth (encode_into refuses it anyway). A hint only:
// encoding never depends on it.
inline std::size_t encoded_size_hint(const boost::json::value& v, std::size_t depth) noexcept {
  switch (v.kind()) {
    case boost::json::kind::null:
    case boost::json::kind::bool_: return 1;
    case boost::json::kind::int64:
    case boost::json::kind::uint64:
    case boost::json::kind::double_: return scalar64_bytes;
    case boost::json::kind::string: return string_header_bytes + v.get_string().size();
    case boost::json::kind::array:
    case boost::json::kind::object: break;
  }
  if (depth + 1 > hard_max_depth) return 0;
  std::size_t n = container_header_bytes;
  if (v.is_array()) {
    for (const auto& e : v.get_array()) {
      const std::size_t child = encoded_size_hint(e, depth + 1);
      if (child == 0) return 0;
      n += child;
    }
  } else {
    for (const auto& kv : v.get_object()) {
      const std::size_t child = encoded_size_hint(kv.value(), depth + 1);
      if (child == 0) return 0;
      n += 2 + kv.key().size() + child;
    }
  }
  return n;
}

}  // namespace detail

// Appends the encoding of `v` to `out`. Fails (leaving `out` as it was) rather than
// produce bytes the decoder would refuse: uint64 above INT64_MAX, nesting beyond
// hard_max_depth, a name over 0xFFFF bytes, or more than hard_max_document_bytes in all.
// Limits stricter than those are the document layer's business (check_document_shape).
inline result<void> encode_value(const boost::json::value& v, std::vector<std::byte>& out) {
  const std::size_t start = out.size();
  // One allocation instead of a doubling per power of two of the document's size.
  if (const std::size_t hint = detail::encoded_size_hint(v, 0);
      hint != 0 && hint <= hard_max_document_bytes)
    out.reserve(start + hint);
  auto r = detail::encode_into(v, out, 0);
  if (r && out.size() - start > hard_max_document_bytes)
    r = error(errc::document_too_large, "encoding larger than the hard maximum",
              {{"size", std::to_string(out.size() - start)},
               {"limit", std::to_string(hard_max_document_bytes)}});
  if (!r) out.resize(start);
  return r;
}

// ---- validating decoder ----

namespace detail {

inline error corrupt(std::size_t offset, std::string_view what) {
  return error(errc::data_corruption, "corrupt encoded value: " + std::string(what),
               {{"offset", std::to_string(offset)}});
}

// Checks the value starting at `pos`, which must end at or before `end`; returns where it ends.
inline result<std::size_t> check_from(std::span<const std::byte> buf, std::size_t pos,
                                      std::size_t end, std::size_t depth, std::size_t max_depth) {
  if (pos >= end) return corrupt(pos, "truncated: missing tag");
  const std::byte* b = buf.data();
  const std::size_t avail = end - pos - 1;  // bytes after the tag
  switch (std::to_integer<std::uint8_t>(b[pos])) {
    case tag_null:
    case tag_false:
    case tag_true: return pos + 1;
    case tag_int:
    case tag_float:
      if (avail < 8) return corrupt(pos, "truncated number");
      return pos + scalar64_bytes;
    case tag_string: {
      if (avail < 4) return corrupt(pos, "truncated string length");
      const std::size_t len = load_u32(b + pos + 1);
      if (len > avail - 4) return corrupt(pos, "string length past the end");
      return pos + string_header_bytes + len;
    }
    case tag_array:
    case tag_object: break;
    default: return corrupt(pos, "unknown tag");
  }
  const bool is_object = std::to_integer<std::uint8_t>(b[pos]) == tag_object;
  if (depth + 1 > max_depth) return corrupt(pos, "nesting too deep");
  if (avail < 8) return corrupt(pos, "truncated container header");
  const std::size_t body_len = load_u32(b + pos + 1);
  if (body_len < 4) return corrupt(pos, "container body_len smaller than its count field");
  if (body_len > avail - 4) return corrupt(pos, "container body past the end");
  const std::size_t body_end = pos + 5 + body_len;
  const std::uint32_t count = load_u32(b + pos + 5);
  std::size_t cur = pos + container_header_bytes;
  for (std::uint32_t i = 0; i < count; ++i) {
    if (is_object) {
      if (body_end - cur < 2) return corrupt(cur, "truncated field name length");
      const std::size_t name_len = load_u16(b + cur);
      if (name_len > body_end - cur - 2) return corrupt(cur, "field name past the end");
      cur += 2 + name_len;
    }
    AERO_TRY_ASSIGN(cur, check_from(buf, cur, body_end, depth + 1, max_depth));
  }
  if (cur != body_end) return corrupt(cur, "container count does not fill body_len");
  return body_end;
}

}  // namespace detail

// Verifies that `bytes` holds exactly one well-formed encoded value (see the invariants at
// the top), without ever reading outside `bytes`. `max_depth` may only tighten the hard cap.
// Failures are AERO_DATA_CORRUPTION with an `offset` detail (from the start of `bytes`).
inline result<void> check_encoded_value(std::span<const std::byte> bytes,
                                        std::size_t max_depth = hard_max_depth) {
  if (bytes.size() > hard_max_document_bytes)
    return detail::corrupt(hard_max_document_bytes, "larger than the hard maximum");
  if (max_depth > hard_max_depth) max_depth = hard_max_depth;
  AERO_TRY_ASSIGN(const std::size_t end, detail::check_from(bytes, 0, bytes.size(), 0, max_depth));
  if (end != bytes.size()) return detail::corrupt(end, "trailing bytes");
  return ok();
}

// check_encoded_value, plus: the root is an object (what a document must be).
inline result<void> check_encoded_document(std::span<const std::byte> bytes) {
  AERO_TRY(check_encoded_value(bytes));
  if (std::to_integer<std::uint8_t>(bytes[0]) != tag_object)
    return detail::corrupt(0, "document root is not an object");
  return ok();
}

}  // namespace aerodb::format
