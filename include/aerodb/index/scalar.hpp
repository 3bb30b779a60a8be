// Scalar values as indexes store them and queries compare them, with one total order.
//
// The order (docs/queries.md):
//   false < true < every number < every string
//   numbers compare by mathematical value, whether int or float: 1 == 1.0, 2 < 2.5, and
//   int64 values beyond 2^53 compare exactly against doubles (no rounding through double);
//   strings compare bytewise (UTF-8 code point order).
// Objects, arrays and null are not scalars: a field holding one has no index entry and
// never satisfies a comparison.
//
// Thread safety: a value type.
#pragma once

#include <aerodb/document/document.hpp>

#include <boost/json.hpp>

#include <cmath>
#include <compare>
#include <concepts>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

namespace aerodb {

class scalar {
 public:
  enum class kind : std::uint8_t { boolean = 0, integer = 1, floating = 2, string = 3 };

  scalar() : v_(false) {}
  explicit scalar(bool b) : v_(b) {}
  // Any integer type; REQUIRES: the value fits in int64.
  template <std::integral I>
    requires(!std::same_as<I, bool>)
  explicit scalar(I i) : v_(static_cast<std::int64_t>(i)) {}
  explicit scalar(double d) : v_(d) {}
  explicit scalar(std::string s) : v_(std::move(s)) {}
  explicit scalar(const char* s) : v_(std::string(s)) {}

  // Empty for null, arrays and objects.
  static std::optional<scalar> from_value(const value_view& v) {
    switch (v.kind()) {
      case value_kind::boolean: return scalar(v.as_bool());
      case value_kind::integer: return scalar(v.as_int());
      case value_kind::floating: return scalar(v.as_double());
      case value_kind::string: return scalar(std::string(v.as_string()));
      default: return std::nullopt;
    }
  }
  // Empty for null, arrays, objects, uint64 values above INT64_MAX and non-finite doubles.
  static std::optional<scalar> from_json(const boost::json::value& v) {
    switch (v.kind()) {
      case boost::json::kind::bool_: return scalar(v.get_bool());
      case boost::json::kind::int64: return scalar(v.get_int64());
      case boost::json::kind::uint64:
        if (v.get_uint64() > static_cast<std::uint64_t>(INT64_MAX)) return std::nullopt;
        return scalar(static_cast<std::int64_t>(v.get_uint64()));
      case boost::json::kind::double_:
        if (!std::isfinite(v.get_double())) return std::nullopt;
        return scalar(v.get_double());
      case boost::json::kind::string: return scalar(std::string(v.get_string()));
      default: return std::nullopt;
    }
  }

  kind type() const noexcept { return static_cast<kind>(v_.index()); }
  bool is_number() const noexcept { return type() == kind::integer || type() == kind::floating; }
  bool as_bool() const { return std::get<bool>(v_); }
  std::int64_t as_int() const { return std::get<std::int64_t>(v_); }
  double as_double() const { return std::get<double>(v_); }
  const std::string& as_string() const { return std::get<std::string>(v_); }

  boost::json::value to_json() const {
    switch (type()) {
      case kind::boolean: return boost::json::value(as_bool());
      case kind::integer: return boost::json::value(as_int());
      case kind::floating: return boost::json::value(as_double());
      case kind::string: return boost::json::value(as_string());
    }
    return {};
  }

  // The rank of a value's type in the total order; numbers share one rank.
  static int type_rank(kind k) noexcept {
    switch (k) {
      case kind::boolean: return 0;
      case kind::integer:
      case kind::floating: return 1;
      case kind::string: return 2;
    }
    return 3;
  }

  friend std::strong_ordering operator<=>(const scalar& a, const scalar& b) {
    const int ra = type_rank(a.type()), rb = type_rank(b.type());
    if (ra != rb) return ra <=> rb;
    switch (a.type()) {
      case kind::boolean: return a.as_bool() <=> b.as_bool();
      case kind::string: {
        const int c = a.as_string().compare(b.as_string());
        return c < 0 ? std::strong_ordering::less
                     : c > 0 ? std::strong_ordering::greater : std::strong_ordering::equal;
      }
      default: return compare_numbers(a, b);
    }
  }
  friend bool operator==(const scalar& a, const scalar& b) { return (a <=> b) == 0; }

 private:
  // Exact comparison of an int64 with a finite double.
  static std::strong_ordering compare_int_double(std::int64_t i, double d) {
    // 2^63 is exactly representable; every int64 is below it and at or above -2^63.
    constexpr double two63 = 9223372036854775808.0;
    if (d >= two63) return std::strong_ordering::less;
    if (d < -two63) return std::strong_ordering::greater;
    const double t = std::trunc(d);  // in [-2^63, 2^63): converts to int64 exactly
    const auto ti = static_cast<std::int64_t>(t);
    if (i != ti) return i <=> ti;
    // Same integral part: the fraction decides.
    if (d > t) return std::strong_ordering::less;
    if (d < t) return std::strong_ordering::greater;
    return std::strong_ordering::equal;
  }

  static std::strong_ordering compare_numbers(const scalar& a, const scalar& b) {
    if (a.type() == kind::integer && b.type() == kind::integer) return a.as_int() <=> b.as_int();
    if (a.type() == kind::integer) return compare_int_double(a.as_int(), b.as_double());
    if (b.type() == kind::integer) return 0 <=> compare_int_double(b.as_int(), a.as_double());
    const double x = a.as_double(), y = b.as_double();
    // Finite doubles only (the document layer refuses NaN and infinities); -0.0 == 0.0.
    return x < y ? std::strong_ordering::less
                 : x > y ? std::strong_ordering::greater : std::strong_ordering::equal;
  }

  std::variant<bool, std::int64_t, double, std::string> v_;
};

}  // namespace aerodb
