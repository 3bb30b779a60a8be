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

// A field name is 1..max bytes, contains no '.' (it separates path segments in queries),
// no '[' or ']' (they write array positions in error paths, which must stay unambiguous)
// and does not start with '$' (reserved for query operators).
constexpr bool valid_field_name(std::string_view name, std::size_t max_bytes) noexcept {
  if (name.empty() || name.size() > max_bytes) return false;
  if (name.front() == '$') return false;
  return name.find_first_of(".[]") == std::string_view::npos;
}

}  // namespace aerodb
