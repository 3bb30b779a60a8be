// scalar_hash: a hash of index keys consistent with scalar equality (index/scalar.hpp),
// so that 3 and 3.0 hash alike, as the hash tables of the accelerated index require.
//
// Invariant: a == b implies scalar_hash{}(a) == scalar_hash{}(b), for every pair of
// scalars; every input bit affects every output bit (the tables are told no further
// mixing is needed).
//
// Thread safety: stateless; safe to call from any number of threads.
#pragma once

#include <aerodb/index/scalar.hpp>

#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string_view>

namespace aerodb::index {

namespace detail {

// A 64-bit finalizer (splitmix64): every input bit affects every output bit, so the
// hashes below can tell the hash table they need no further mixing.
constexpr std::uint64_t mix64(std::uint64_t x) noexcept {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

}  // namespace detail

// A hash consistent with scalar equality: equal scalars hash equal.
//
// Numbers are equal across int and float by mathematical value, so a number's hash must
// depend on its value only. A double with an integral value inside the int64 range is
// hashed as that int64 (3.0 as 3, 2^60 as 2^60, -0.0 and 0.0 both as 0); any other
// double (a fraction, or a magnitude of 2^63 or more) equals no int64 and only the one
// double with its bits (-0.0 is integral, so it never gets here), so its bits decide.
struct scalar_hash {
  using is_avalanching = void;

  std::size_t operator()(const scalar& s) const noexcept {
    // Distinct salts keep false/0 and "" apart; equality would separate them anyway,
    // this only keeps them out of each other's probe sequences.
    constexpr std::uint64_t bool_salt = 0x6a09e667f3bcc908ULL;
    constexpr std::uint64_t number_salt = 0xbb67ae8584caa73bULL;
    constexpr std::uint64_t fraction_salt = 0x3c6ef372fe94f82bULL;
    constexpr std::uint64_t string_salt = 0xa54ff53a5f1d36f1ULL;
    switch (s.type()) {
      case scalar::kind::boolean:
        return to_size(detail::mix64(bool_salt ^ (s.as_bool() ? 1U : 0U)));
      case scalar::kind::integer:
        return to_size(detail::mix64(number_salt ^ static_cast<std::uint64_t>(s.as_int())));
      case scalar::kind::floating: {
        const double d = s.as_double();
        constexpr double two63 = 9223372036854775808.0;  // exact; int64 is [-2^63, 2^63)
        if (d >= -two63 && d < two63 && std::trunc(d) == d) {
          const auto i = static_cast<std::int64_t>(d);
          return to_size(detail::mix64(number_salt ^ static_cast<std::uint64_t>(i)));
        }
        return to_size(detail::mix64(fraction_salt ^ std::bit_cast<std::uint64_t>(d)));
      }
      case scalar::kind::string:
        return to_size(detail::mix64(
            string_salt ^ static_cast<std::uint64_t>(std::hash<std::string_view>{}(s.as_string()))));
    }
    return 0;
  }

 private:
  static std::size_t to_size(std::uint64_t h) noexcept { return static_cast<std::size_t>(h); }
};

}  // namespace aerodb::index
