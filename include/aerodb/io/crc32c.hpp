// CRC-32C (Castagnoli) checksums for everything the engine writes to disk.
//
// CRC-32C rather than the zlib CRC-32 because x86-64 computes it with one instruction
// per 8 bytes (SSE4.2 `crc32`), which keeps checksumming off the write path's profile.
// Parameters: polynomial 0x1EDC6F41 (reflected 0x82F63B78), init 0xFFFFFFFF, reflected
// input and output, final xor 0xFFFFFFFF; value("123456789") == 0xE3069283.
//
// `extend(crc, data)` continues a finished checksum: extend(value(a), b) == value(a + b),
// so a record's checksum can be computed over pieces without copying them together. The
// pre/post inversion is folded into every call for that reason.
//
// `combine(crc_a, crc_b, len_b)` == value(a + b) from value(a), value(b) and b's length,
// without reading any byte: CRC is linear, so value(a + b) is value(a) shifted by len_b
// zero bytes (a multiplication by x^(8 len_b) modulo the polynomial) xor value(b); the
// equal init and final xor cancel out. O(log len_b) steps of at most 32 shifts each.
//
// Two implementations that must always agree (the tests check both on every vector):
//   - portable_extend: slicing-by-8 over tables computed at compile time; used everywhere;
//   - hardware_extend: SSE4.2, compiled only on x86-64 with GCC/Clang (via a target
//     attribute, so the rest of the program needs no -msse4.2); call it only when
//     hardware_available() is true.
// `extend` picks the hardware one when the running CPU has it (detected once).
//
// Thread safety: all functions are pure; the one-time CPU probe is a function-local
// static, so concurrent first calls are safe.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string_view>

// Defining AERODB_CRC32C_HAVE_SSE42=0 forces the portable build (also how the tests check
// that a non-x86 build compiles).
#ifndef AERODB_CRC32C_HAVE_SSE42
#if (defined(__x86_64__) || defined(_M_X64)) && (defined(__GNUC__) || defined(__clang__))
#define AERODB_CRC32C_HAVE_SSE42 1
#else
#define AERODB_CRC32C_HAVE_SSE42 0
#endif
#endif
#if AERODB_CRC32C_HAVE_SSE42
#include <nmmintrin.h>
#endif

namespace aerodb::crc32c {

// Reflected form of 0x1EDC6F41.
inline constexpr std::uint32_t reflected_polynomial = 0x82F63B78u;

// True when this build contains hardware_extend (whether the CPU has it is a run-time
// question: hardware_available()).
inline constexpr bool hardware_compiled = AERODB_CRC32C_HAVE_SSE42 != 0;

namespace detail {

// tables[0] is the classic byte-at-a-time table; tables[k][b] is the CRC contribution of
// byte b followed by k zero bytes, which lets slicing-by-8 fold 8 input bytes per step.
using slice_tables = std::array<std::array<std::uint32_t, 256>, 8>;

constexpr slice_tables make_tables() noexcept {
  slice_tables t{};
  for (std::uint32_t b = 0; b < 256; ++b) {
    std::uint32_t c = b;
    for (int i = 0; i < 8; ++i) c = (c >> 1) ^ ((c & 1u) ? reflected_polynomial : 0u);
    t[0][b] = c;
  }
  for (std::size_t k = 1; k < 8; ++k)
    for (std::size_t b = 0; b < 256; ++b) t[k][b] = (t[k - 1][b] >> 8) ^ t[0][t[k - 1][b] & 0xFFu];
  return t;
}

inline constexpr slice_tables tables = make_tables();

// Little-endian load independent of alignment and host byte order, so the slicing
// arithmetic below is the same on every platform.
inline std::uint32_t load_le32(const std::byte* p) noexcept {
  return static_cast<std::uint32_t>(p[0]) | (static_cast<std::uint32_t>(p[1]) << 8) |
         (static_cast<std::uint32_t>(p[2]) << 16) | (static_cast<std::uint32_t>(p[3]) << 24);
}

}  // namespace detail

// Table-driven CRC-32C; correct on every platform.
inline std::uint32_t portable_extend(std::uint32_t crc, std::span<const std::byte> data) noexcept {
  const auto& t = detail::tables;
  std::uint32_t c = ~crc;
  const std::byte* p = data.data();
  std::size_t n = data.size();
  while (n >= 8) {
    const std::uint32_t lo = detail::load_le32(p) ^ c;
    const std::uint32_t hi = detail::load_le32(p + 4);
    c = t[7][lo & 0xFFu] ^ t[6][(lo >> 8) & 0xFFu] ^ t[5][(lo >> 16) & 0xFFu] ^ t[4][lo >> 24] ^
        t[3][hi & 0xFFu] ^ t[2][(hi >> 8) & 0xFFu] ^ t[1][(hi >> 16) & 0xFFu] ^ t[0][hi >> 24];
    p += 8;
    n -= 8;
  }
  for (; n > 0; --n, ++p) c = (c >> 8) ^ t[0][(c ^ static_cast<std::uint32_t>(*p)) & 0xFFu];
  return ~c;
}

#if AERODB_CRC32C_HAVE_SSE42

// SSE4.2 CRC-32C. REQUIRES: hardware_available().
__attribute__((target("sse4.2"))) inline std::uint32_t hardware_extend(
    std::uint32_t crc, std::span<const std::byte> data) noexcept {
  std::uint64_t c = static_cast<std::uint32_t>(~crc);
  const std::byte* p = data.data();
  std::size_t n = data.size();
  // Byte steps until 8-aligned: unaligned 8-byte loads are legal on x86 but can straddle
  // cache lines, and the prefix is at most 7 bytes.
  while (n > 0 && (reinterpret_cast<std::uintptr_t>(p) & 7u) != 0) {
    c = _mm_crc32_u8(static_cast<std::uint32_t>(c), static_cast<unsigned char>(*p));
    ++p;
    --n;
  }
  while (n >= 8) {
    std::uint64_t word;
    std::memcpy(&word, p, sizeof word);  // no aliasing or alignment UB; compiles to a load
    c = _mm_crc32_u64(c, word);
    p += 8;
    n -= 8;
  }
  for (; n > 0; --n, ++p)
    c = _mm_crc32_u8(static_cast<std::uint32_t>(c), static_cast<unsigned char>(*p));
  return ~static_cast<std::uint32_t>(c);
}

inline bool hardware_available() noexcept {
  static const bool available = [] {
    // Needed when this runs before the runtime's own CPU-model constructor (e.g. from
    // another static initializer); harmless otherwise.
    __builtin_cpu_init();
    return __builtin_cpu_supports("sse4.2") != 0;
  }();
  return available;
}

#else

inline bool hardware_available() noexcept { return false; }

#endif

// CRC-32C of `data` appended to bytes whose CRC-32C is `crc` (0 for no bytes).
inline std::uint32_t extend(std::uint32_t crc, std::span<const std::byte> data) noexcept {
#if AERODB_CRC32C_HAVE_SSE42
  if (hardware_available()) return hardware_extend(crc, data);
#endif
  return portable_extend(crc, data);
}

inline std::uint32_t value(std::span<const std::byte> data) noexcept { return extend(0, data); }

namespace detail {

// a * b modulo the polynomial, both in the reflected bit order (x^0 is bit 31).
constexpr std::uint32_t multiply_mod_p(std::uint32_t a, std::uint32_t b) noexcept {
  std::uint32_t product = 0;
  for (std::uint32_t m = 1u << 31; m != 0; m >>= 1) {
    if (a & m) product ^= b;
    b = (b & 1u) ? (b >> 1) ^ reflected_polynomial : b >> 1;
  }
  return product;
}

// x^(2^k) modulo the polynomial, for k = 0..66 (x^1 is 1 << 30): enough for any 64-bit
// length in bytes (bit i of a length stands for x^(2^(i+3))).
constexpr std::array<std::uint32_t, 67> make_x_pow_2k() noexcept {
  std::array<std::uint32_t, 67> t{};
  std::uint32_t p = 1u << 30;
  for (auto& e : t) {
    e = p;
    p = multiply_mod_p(p, p);
  }
  return t;
}
inline constexpr std::array<std::uint32_t, 67> x_pow_2k = make_x_pow_2k();

}  // namespace detail

// value(a + b), given crc_a = value(a), crc_b = value(b) and len_b = b.size().
constexpr std::uint32_t combine(std::uint32_t crc_a, std::uint32_t crc_b, std::uint64_t len_b) noexcept {
  // x^(8 len_b): bit i of len_b contributes x^(2^(i+3)).
  std::uint32_t shift = 1u << 31;  // x^0
  for (std::size_t k = 3; len_b != 0; len_b >>= 1, ++k)
    if (len_b & 1u) shift = detail::multiply_mod_p(detail::x_pow_2k[k], shift);
  return detail::multiply_mod_p(shift, crc_a) ^ crc_b;
}

// Convenience for text (test vectors, names): the checksum of the string's bytes.
inline std::uint32_t value(std::string_view text) noexcept {
  return value(std::as_bytes(std::span<const char>(text.data(), text.size())));
}

}  // namespace aerodb::crc32c
