// CRC-32C: standard vectors against both implementations, incremental == one-shot, and
// portable/hardware agreement on random buffers at every alignment.
#include <doctest/doctest.h>

#include <aerodb/io/crc32c.hpp>
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace crc32c = aerodb::crc32c;

namespace {

using extend_fn = std::function<std::uint32_t(std::uint32_t, std::span<const std::byte>)>;

struct impl {
  const char* name;
  extend_fn extend;
};

// The implementations this machine can run; the portable one is always there.
std::vector<impl> implementations() {
  std::vector<impl> v{{"portable", crc32c::portable_extend}, {"dispatch", crc32c::extend}};
#if AERODB_CRC32C_HAVE_SSE42
  if (crc32c::hardware_available()) v.push_back({"hardware", crc32c::hardware_extend});
#endif
  return v;
}

std::vector<std::byte> bytes_of(std::string_view s) {
  std::vector<std::byte> v(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) v[i] = static_cast<std::byte>(s[i]);
  return v;
}

std::vector<std::byte> filled(std::size_t n, unsigned char b) {
  return std::vector<std::byte>(n, static_cast<std::byte>(b));
}

std::vector<std::byte> ramp(bool ascending) {
  std::vector<std::byte> v(32);
  for (std::size_t i = 0; i < 32; ++i) v[i] = static_cast<std::byte>(ascending ? i : 31 - i);
  return v;
}

struct vector_case {
  const char* name;
  std::vector<std::byte> data;
  std::uint32_t expected;
};

std::vector<vector_case> standard_vectors() {
  return {
      {"123456789", bytes_of("123456789"), 0xE3069283u},
      {"32 x 0x00 (RFC 3720 B.4)", filled(32, 0x00), 0x8A9136AAu},
      {"32 x 0xFF (RFC 3720 B.4)", filled(32, 0xFF), 0x62A8AB43u},
      {"0..31 ascending (RFC 3720 B.4)", ramp(true), 0x46DD794Eu},
      {"31..0 descending (RFC 3720 B.4)", ramp(false), 0x113FDB5Cu},
      {"empty", {}, 0x00000000u},
  };
}

// Bit-at-a-time definition of CRC-32C: slow, but shares nothing with the tables.
std::uint32_t bitwise(std::uint32_t crc, std::span<const std::byte> data) {
  std::uint32_t c = ~crc;
  for (std::byte b : data) {
    c ^= static_cast<std::uint32_t>(b);
    for (int i = 0; i < 8; ++i) c = (c >> 1) ^ ((c & 1u) ? 0x82F63B78u : 0u);
  }
  return ~c;
}

}  // namespace

TEST_CASE("which implementations run here") {
  if (crc32c::hardware_available())
    MESSAGE("SSE4.2 crc32 available: hardware implementation is tested");
  else
    MESSAGE(
        "SSE4.2 crc32 NOT available (or not compiled): only the portable implementation "
        "is tested");
  CHECK(crc32c::hardware_available() == crc32c::hardware_available());  // cached, stable
  if (!crc32c::hardware_compiled) CHECK_FALSE(crc32c::hardware_available());
}

TEST_CASE("standard vectors, every implementation") {
  for (const auto& im : implementations()) {
    for (const auto& vc : standard_vectors()) {
      INFO(im.name, ": ", vc.name);
      CHECK(im.extend(0, vc.data) == vc.expected);
    }
  }
  CHECK(crc32c::value("123456789") == 0xE3069283u);
  CHECK(crc32c::value(std::span<const std::byte>(bytes_of("123456789"))) == 0xE3069283u);
  CHECK(crc32c::portable_extend(0, bytes_of("123456789")) == 0xE3069283u);
#if AERODB_CRC32C_HAVE_SSE42
  if (crc32c::hardware_available())
    CHECK(crc32c::hardware_extend(0, bytes_of("123456789")) == 0xE3069283u);
#endif
}

TEST_CASE("extending by nothing changes nothing") {
  for (const auto& im : implementations()) {
    INFO(im.name);
    const std::uint32_t c = im.extend(0, bytes_of("abc"));
    CHECK(im.extend(c, {}) == c);
    CHECK(im.extend(0, {}) == 0u);
  }
}

TEST_CASE("incremental extend equals one-shot at every split point") {
  std::mt19937_64 rng(12345);
  std::vector<std::byte> data(301);
  for (auto& b : data) b = static_cast<std::byte>(rng() & 0xFFu);
  const std::span<const std::byte> all(data);
  for (const auto& im : implementations()) {
    const std::uint32_t whole = im.extend(0, all);
    CHECK(whole == crc32c::portable_extend(0, all));
    for (std::size_t split = 0; split <= data.size(); ++split) {
      INFO(im.name, " split=", split);
      const std::uint32_t first = im.extend(0, all.first(split));
      REQUIRE(im.extend(first, all.subspan(split)) == whole);
    }
    // Three pieces, including the byte-at-a-time degenerate case.
    std::uint32_t c = 0;
    for (std::size_t i = 0; i < data.size(); ++i) c = im.extend(c, all.subspan(i, 1));
    CHECK(c == whole);
  }
}

TEST_CASE("combine of two checksums equals the checksum of the concatenation at every split point") {
  std::mt19937_64 rng(777);
  std::vector<std::byte> data(1100);
  for (auto& b : data) b = static_cast<std::byte>(rng() & 0xFFu);
  const std::span<const std::byte> all(data);
  const std::uint32_t whole = crc32c::value(all);
  for (std::size_t split = 0; split <= data.size(); ++split) {
    INFO("split=", split);
    const std::uint32_t a = crc32c::value(all.first(split));
    const std::uint32_t b = crc32c::value(all.subspan(split));
    REQUIRE(crc32c::combine(a, b, data.size() - split) == whole);
  }
  // Folding many pieces, as a write batch's record is folded from its operations.
  std::uint32_t c = crc32c::value(all.first(0));
  for (std::size_t at = 0, step = 1; at < data.size(); at += step, step = step * 3 % 97 + 1) {
    const auto piece = all.subspan(at, std::min(step, data.size() - at));
    c = crc32c::combine(c, crc32c::value(piece), piece.size());
  }
  CHECK(c == whole);
  // Lengths with high bits set: combining with an empty b shifts a by len_b zero bytes.
  std::vector<std::byte> zeros(70000);
  const std::uint32_t a = crc32c::value(all.first(5));
  CHECK(crc32c::combine(a, crc32c::value(zeros), zeros.size()) ==
        crc32c::extend(a, zeros));
  static_assert(crc32c::combine(0, 0, 0) == 0);
}

TEST_CASE("portable and hardware agree on random buffers at odd alignments") {
  std::mt19937_64 rng(0xC0FFEEu);
  // 16 bytes of slack so every offset 0..15 can start a buffer of the full length.
  std::vector<std::byte> backing(1000 + 16);
  for (auto& b : backing) b = static_cast<std::byte>(rng() & 0xFFu);
  const auto impls = implementations();
  std::size_t compared = 0;
  for (std::size_t len = 0; len <= 1000; ++len) {
    for (std::size_t offset : {0u, 1u, 3u, 5u, 7u, 9u, 13u}) {
      const std::span<const std::byte> buf(backing.data() + offset, len);
      const std::uint32_t ref = crc32c::portable_extend(0, buf);
      const std::uint32_t seed = static_cast<std::uint32_t>(rng());
      const std::uint32_t ref_seeded = crc32c::portable_extend(seed, buf);
      if (offset == 1u) {
        INFO("len=", len);
        REQUIRE(ref == bitwise(0, buf));
        REQUIRE(ref_seeded == bitwise(seed, buf));
      }
      for (const auto& im : impls) {
        if (im.extend(0, buf) != ref || im.extend(seed, buf) != ref_seeded) {
          INFO(im.name, " len=", len, " offset=", offset);
          FAIL("implementations disagree");
        }
        ++compared;
      }
    }
  }
  CHECK(compared == 1001u * 7u * impls.size());
}
