// Zero-copy read access to encoded documents (format: aerodb/format/document_codec.hpp).
//
// A value_view is a pointer to one encoded value; strings come back as views into the
// buffer, and finding a field skips each sibling in O(1) through its length prefix, so a
// lookup never decodes the rest of the document.
//
// Invariant / precondition: the viewed bytes were accepted by format::check_encoded_value
// (document::from_bytes and encode_document guarantee it) and outlive the view. The
// accessors do not re-check: calling as_int() on a string, or viewing unvalidated bytes,
// is a programming error (asserted in debug builds).
//
// Thread safety: views are read-only values; any number of threads may read the same
// buffer through their own views.
#pragma once

#include <aerodb/format/document_codec.hpp>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <bit>
#include <cassert>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace aerodb {

enum class value_kind { null, boolean, integer, floating, string, array, object };

class value_view;

// One field of an object: its name and its value.
struct member_view;

class value_view {
 public:
  value_view() = default;  // an unusable placeholder; only assignment and == are allowed
  // REQUIRES: `p` points at the tag of a validated encoded value.
  explicit value_view(const std::byte* p) noexcept : p_(p) {}

  value_kind kind() const noexcept {
    switch (tag()) {
      case format::tag_null: return value_kind::null;
      case format::tag_false:
      case format::tag_true: return value_kind::boolean;
      case format::tag_int: return value_kind::integer;
      case format::tag_float: return value_kind::floating;
      case format::tag_string: return value_kind::string;
      case format::tag_array: return value_kind::array;
      default: return value_kind::object;
    }
  }
  bool is_null() const noexcept { return tag() == format::tag_null; }

  bool as_bool() const noexcept {
    assert(kind() == value_kind::boolean);
    return tag() == format::tag_true;
  }
  std::int64_t as_int() const noexcept {
    assert(kind() == value_kind::integer);
    return static_cast<std::int64_t>(format::load_u64(p_ + 1));
  }
  double as_double() const noexcept {
    assert(kind() == value_kind::floating);
    return std::bit_cast<double>(format::load_u64(p_ + 1));
  }
  // A view into the encoded buffer (no copy).
  std::string_view as_string() const noexcept {
    assert(kind() == value_kind::string);
    return {reinterpret_cast<const char*>(p_ + format::string_header_bytes),
            format::load_u32(p_ + 1)};
  }

  // Number of elements (array) or fields (object). REQUIRES: a container.
  std::size_t size() const noexcept {
    assert(is_container());
    return format::load_u32(p_ + 5);
  }
  bool empty() const noexcept { return size() == 0; }

  // The exact encoded bytes of this value, tag included.
  std::span<const std::byte> encoded() const noexcept { return {p_, format::encoded_size(p_)}; }

  class element_iterator;
  class member_iterator;
  template <class It>
  struct range {
    It first, last;
    It begin() const noexcept { return first; }
    It end() const noexcept { return last; }
  };

  // Elements of an array, in order. REQUIRES: kind() == array.
  range<element_iterator> elements() const noexcept;
  // Fields of an object, in encoding (= JSON input) order. REQUIRES: kind() == object.
  range<member_iterator> members() const noexcept;

  // The i-th array element; O(i) skips. REQUIRES: array and i < size().
  value_view at(std::size_t i) const noexcept;

  // The first field called `name`: a linear scan over names, skipping each value in O(1).
  // REQUIRES: kind() == object.
  std::optional<value_view> find(std::string_view name) const noexcept;

  // Decodes into a Boost.JSON value (allocates; for output and tests, not for lookups).
  boost::json::value to_json() const;

  friend bool operator==(const value_view& a, const value_view& b) noexcept { return a.p_ == b.p_; }

 private:
  std::uint8_t tag() const noexcept { return std::to_integer<std::uint8_t>(p_[0]); }
  bool is_container() const noexcept {
    return tag() == format::tag_array || tag() == format::tag_object;
  }
  const std::byte* body_end() const noexcept { return p_ + format::encoded_size(p_); }

  const std::byte* p_ = nullptr;
};

struct member_view {
  std::string_view name;
  value_view value;
};

class value_view::element_iterator {
 public:
  using value_type = value_view;
  using difference_type = std::ptrdiff_t;
  using iterator_category = std::forward_iterator_tag;
  using reference = value_view;
  using pointer = void;

  element_iterator() = default;
  explicit element_iterator(const std::byte* p) noexcept : p_(p) {}
  value_view operator*() const noexcept { return value_view(p_); }
  element_iterator& operator++() noexcept {
    p_ += format::encoded_size(p_);
    return *this;
  }
  element_iterator operator++(int) noexcept {
    auto t = *this;
    ++*this;
    return t;
  }
  friend bool operator==(const element_iterator&, const element_iterator&) = default;

 private:
  const std::byte* p_ = nullptr;
};

class value_view::member_iterator {
 public:
  using value_type = member_view;
  using difference_type = std::ptrdiff_t;
  using iterator_category = std::forward_iterator_tag;
  using reference = member_view;
  using pointer = void;

  member_iterator() = default;
  // `p` points at a field's name_len.
  explicit member_iterator(const std::byte* p) noexcept : p_(p) {}
  member_view operator*() const noexcept {
    const std::size_t n = format::load_u16(p_);
    return {std::string_view(reinterpret_cast<const char*>(p_ + 2), n), value_view(p_ + 2 + n)};
  }
  member_iterator& operator++() noexcept {
    const std::byte* v = p_ + 2 + format::load_u16(p_);
    p_ = v + format::encoded_size(v);
    return *this;
  }
  member_iterator operator++(int) noexcept {
    auto t = *this;
    ++*this;
    return t;
  }
  friend bool operator==(const member_iterator&, const member_iterator&) = default;

 private:
  const std::byte* p_ = nullptr;
};

inline value_view::range<value_view::element_iterator> value_view::elements() const noexcept {
  assert(tag() == format::tag_array);
  return {element_iterator(p_ + format::container_header_bytes), element_iterator(body_end())};
}

inline value_view::range<value_view::member_iterator> value_view::members() const noexcept {
  assert(tag() == format::tag_object);
  return {member_iterator(p_ + format::container_header_bytes), member_iterator(body_end())};
}

inline value_view value_view::at(std::size_t i) const noexcept {
  assert(tag() == format::tag_array && i < size());
  auto it = elements().begin();
  while (i--) ++it;
  return *it;
}

inline std::optional<value_view> value_view::find(std::string_view name) const noexcept {
  for (const member_view m : members())
    if (m.name == name) return m.value;
  return std::nullopt;
}

inline boost::json::value value_view::to_json() const {
  switch (kind()) {
    case value_kind::null: return nullptr;
    case value_kind::boolean: return as_bool();
    case value_kind::integer: return as_int();
    case value_kind::floating: return as_double();
    case value_kind::string: return boost::json::string(as_string());
    case value_kind::array: {
      boost::json::array a;
      a.reserve(size());
      for (const value_view e : elements()) a.push_back(e.to_json());
      return a;
    }
    case value_kind::object: break;
  }
  boost::json::object o;
  o.reserve(size());
  // emplace keeps the first of duplicate names, matching find().
  for (const member_view m : members()) o.emplace(m.name, m.value.to_json());
  return o;
}

namespace detail {

// The shortest text that reads back as exactly `d` (std::to_chars), kept recognisable as a
// floating-point number by a '.' or an exponent, so that parsing it again gives a double,
// not an integer: 300.0 -> "300.0", 0.1 -> "0.1", 1e300 -> "1e+300", -0.0 -> "-0.0".
// (Boost.JSON's serializer writes "3E2", "1E-1".) Documents hold no NaN or infinity.
inline void append_json_number(std::string& out, double d) {
  char buf[32];
  const auto r = std::to_chars(buf, buf + sizeof buf, d);
  const std::string_view text(buf, static_cast<std::size_t>(r.ptr - buf));
  out += text;
  if (text.find_first_of(".e") == std::string_view::npos) out += ".0";
}

// JSON text of `v`, members in stored order, strings escaped as Boost.JSON escapes them.
inline void append_json_text(std::string& out, value_view v) {
  switch (v.kind()) {
    case value_kind::null: out += "null"; return;
    case value_kind::boolean: out += v.as_bool() ? "true" : "false"; return;
    case value_kind::integer: {
      char buf[24];
      const auto r = std::to_chars(buf, buf + sizeof buf, v.as_int());
      out.append(buf, static_cast<std::size_t>(r.ptr - buf));
      return;
    }
    case value_kind::floating: append_json_number(out, v.as_double()); return;
    case value_kind::string: out += boost::json::serialize(boost::json::string_view(v.as_string())); return;
    case value_kind::array: {
      out += '[';
      bool first = true;
      for (const value_view e : v.elements()) {
        if (!first) out += ',';
        first = false;
        append_json_text(out, e);
      }
      out += ']';
      return;
    }
    case value_kind::object: break;
  }
  out += '{';
  bool first = true;
  for (const member_view m : v.members()) {
    if (!first) out += ',';
    first = false;
    out += boost::json::serialize(boost::json::string_view(m.name));
    out += ':';
    append_json_text(out, m.value);
  }
  out += '}';
}

}  // namespace detail

// A whole encoded document: an object with a string `_id`.
// REQUIRES: the bytes passed document::from_bytes-level validation (or came from
// encode_document) and outlive the view.
class document_view {
 public:
  document_view() = default;
  explicit document_view(std::span<const std::byte> bytes) noexcept : bytes_(bytes) {}

  std::span<const std::byte> bytes() const noexcept { return bytes_; }
  value_view root() const noexcept { return value_view(bytes_.data()); }

  std::optional<value_view> find(std::string_view name) const noexcept { return root().find(name); }

  // Follows a dotted path through nested objects ("a.b.c"). Array elements are not
  // addressable this way (a field may legitimately be named "0"); empty segments never
  // match, since field names are never empty.
  std::optional<value_view> find_path(std::string_view path) const noexcept {
    value_view cur = root();
    for (;;) {
      const std::size_t dot = path.find('.');
      const std::string_view seg = path.substr(0, dot);
      if (cur.kind() != value_kind::object) return std::nullopt;
      auto next = cur.find(seg);
      if (!next) return std::nullopt;
      if (dot == std::string_view::npos) return next;
      cur = *next;
      path.remove_prefix(dot + 1);
    }
  }

  // The `_id` string (empty only if the bytes break the documented precondition).
  std::string_view id() const noexcept {
    auto v = find("_id");
    return v && v->kind() == value_kind::string ? v->as_string() : std::string_view{};
  }

  boost::json::object to_json() const { return std::move(root().to_json().as_object()); }
  // JSON text as a person expects it: numbers in their shortest exact form (300, 0.1,
  // 300.0 for a double), fields in stored order. Parsing it gives the same document back.
  std::string to_json_string() const {
    std::string out;
    out.reserve(bytes_.size() + bytes_.size() / 4);
    detail::append_json_text(out, root());
    return out;
  }

 private:
  std::span<const std::byte> bytes_;
};

}  // namespace aerodb
