// The hard caps: upper bounds on what the decoders accept from disk.
//
// They belong to the format, because they bound the bytes a reader must be ready for:
// whatever limits an application configures (document_limits, document/limits.hpp, which
// may be raised up to these caps and no further), the binary decoder refuses anything
// beyond them, which keeps decoding of damaged or hostile input bounded. docs/format.md
// section 8 lists them with the defaults.
//
// Thread safety: constants only.
#pragma once

#include <cstddef>

namespace aerodb::format {

inline constexpr std::size_t hard_max_document_bytes = 64u << 20;
inline constexpr std::size_t hard_max_depth = 128;
inline constexpr std::size_t hard_max_field_name_bytes = 0xFFFF;
// The log stores an _id behind a 16-bit length; this cap keeps well inside it.
inline constexpr std::size_t hard_max_id_bytes = 4096;

}  // namespace aerodb::format
