// Limits every document must respect, and the rule for field names.
//
// The limits are enforced on the way in (JSON -> document) with their own error codes, so
// an oversize or too-deep document is refused before it reaches validation or the WAL.
// The defaults are documented in docs/format.md; an application may lower them (or raise
// them up to the hard caps, which bound what the decoder accepts from disk).
#pragma once

#include <aerodb/format/limits.hpp>

#include <cstddef>
#include <string_view>

namespace aerodb {

struct document_limits {
  // Size of the encoded document, in bytes.
  std::size_t max_document_bytes = 1u << 20;
  // Nesting levels of objects and arrays; the root object is level 1.
  std::size_t max_depth = 32;
  // Bytes of one field name.
  std::size_t max_field_name_bytes = 256;
  // Bytes of the `_id` string.
  std::size_t max_id_bytes = 128;
};

// Upper bounds the binary decoder enforces on bytes read from disk, whatever the
// configured limits. The format defines them (format/limits.hpp); they are named here
// too because every configured limit is checked against its cap.
using format::hard_max_depth;
using format::hard_max_document_bytes;
using format::hard_max_field_name_bytes;
using format::hard_max_id_bytes;

// Well-formed UTF-8 (RFC 3629: shortest forms only, no surrogates, nothing above
// U+10FFFF). Every string the store writes to its log is UTF-8, which is also why no
// stored record body holds long runs of 0xFF bytes (docs/format.md §5.2).
constexpr bool valid_utf8(std::string_view s) noexcept {
  std::size_t i = 0;
  const std::size_t size = s.size();
  while (i < size) {
    const unsigned c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    std::size_t n = 0;
    unsigned lo = 0x80, hi = 0xBF;  // allowed range of the second byte
    if (c >= 0xC2 && c <= 0xDF) n = 1;
    else if (c == 0xE0) n = 2, lo = 0xA0;
    else if (c >= 0xE1 && c <= 0xEC) n = 2;
    else if (c == 0xED) n = 2, hi = 0x9F;  // no UTF-16 surrogates
    else if (c >= 0xEE && c <= 0xEF) n = 2;
    else if (c == 0xF0) n = 3, lo = 0x90;
    else if (c >= 0xF1 && c <= 0xF3) n = 3;
    else if (c == 0xF4) n = 3, hi = 0x8F;
    else return false;
    if (size - i <= n) return false;
    const unsigned second = static_cast<unsigned char>(s[i + 1]);
    if (second < lo || second > hi) return false;
    for (std::size_t k = 2; k <= n; ++k)
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    i += n + 1;
  }
  return true;
}

// A field name is 1..max bytes of UTF-8, contains no '.' (it separates path segments in
// queries), no '[' or ']' (they write array positions in error paths, which must stay
// unambiguous) and does not start with '$' (reserved for query operators).
constexpr bool valid_field_name(std::string_view name, std::size_t max_bytes) noexcept {
  if (name.empty() || name.size() > max_bytes) return false;
  if (name.front() == '$') return false;
  return name.find_first_of(".[]") == std::string_view::npos && valid_utf8(name);
}

}  // namespace aerodb
