// The way into the store for JSON text: parsing and the shape rules every document obeys.
//
// parse_json builds a boost::json::value with its own Boost.JSON handler rather than
// boost::json::parse, because Boost.JSON 1.81's value builder silently keeps the last of
// duplicate keys ({"a":1,"a":2} parses as {"a":2}); a store must not drop user data
// without saying so, so duplicates are rejected here. The handler also refuses integer
// literals beyond the int64/uint64 range, which Boost would otherwise turn into doubles,
// and re-converts fractional numbers with std::from_chars because Boost 1.81's own
// conversion is off by one ulp for many inputs (so text -> document would not round-trip).
//
// check_document_shape applies document_limits and the field-name rule to a value from
// any source (parsed text or built in code), reporting the first failing rule in a fixed
// priority order so the same document always yields the same error.
//
// Paths in error details are written like `a.b[2].c` (empty for the root).
//
// Thread safety: stateless functions.
#pragma once

#include <aerodb/document/limits.hpp>
#include <aerodb/error.hpp>

#include <boost/json/basic_parser_impl.hpp>
#include <boost/json/error.hpp>
#include <boost/json/parse_options.hpp>
#include <boost/json/value.hpp>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace aerodb {

namespace detail {

// A field name or string as it may appear in an error detail: bounded, cut on a UTF-8
// boundary, so one bad 60 KiB name does not become a 60 KiB log line.
inline std::string detail_text(std::string_view s) {
  constexpr std::size_t max = 64;
  if (s.size() <= max) return std::string(s);
  std::size_t n = max;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  return std::string(s.substr(0, n)) + "...";
}

inline void append_path_name(std::string& path, std::string_view name) {
  if (!path.empty()) path += '.';
  path += name;
}
inline void append_path_index(std::string& path, std::size_t i) {
  path += '[';
  path += std::to_string(i);
  path += ']';
}

// Builds a boost::json::value from basic_parser events, refusing duplicate keys and
// integer literals outside the 64-bit range. Containers are built on an explicit stack
// (no recursion); basic_parser enforces max_depth before we ever push.
class json_builder {
 public:
  static constexpr std::size_t max_array_size = static_cast<std::size_t>(-1);
  static constexpr std::size_t max_object_size = static_cast<std::size_t>(-1);
  static constexpr std::size_t max_string_size = static_cast<std::size_t>(-1);
  static constexpr std::size_t max_key_size = static_cast<std::size_t>(-1);

  using ec_type = boost::json::error_code;
  using sv = boost::json::string_view;

  bool on_document_begin(ec_type&) { return true; }
  bool on_document_end(ec_type&) { return true; }
  bool on_array_begin(ec_type&) {
    stack_.push_back({boost::json::array(), {}});
    return true;
  }
  bool on_array_end(std::size_t, ec_type& ec) { return pop(ec); }
  bool on_object_begin(ec_type&) {
    stack_.push_back({boost::json::object(), {}});
    return true;
  }
  bool on_object_end(std::size_t, ec_type& ec) { return pop(ec); }
  bool on_string_part(sv s, std::size_t, ec_type&) {
    text_.append(s.data(), s.size());
    return true;
  }
  bool on_string(sv s, std::size_t, ec_type& ec) {
    text_.append(s.data(), s.size());
    boost::json::value v = boost::json::string(text_);
    text_.clear();
    return add(std::move(v), ec);
  }
  bool on_key_part(sv s, std::size_t, ec_type&) {
    text_.append(s.data(), s.size());
    return true;
  }
  bool on_key(sv s, std::size_t, ec_type& ec) {
    text_.append(s.data(), s.size());
    frame& f = stack_.back();
    if (f.value.get_object().contains(text_)) {
      std::string path = path_to_top();
      append_path_name(path, text_);
      failure_ = error(errc::document_malformed_json, "duplicate field name",
                       {{"key", detail_text(text_)}, {"path", std::move(path)}});
      return fail(ec);
    }
    f.key.swap(text_);
    text_.clear();
    return true;
  }
  bool on_number_part(sv s, ec_type&) {
    text_.append(s.data(), s.size());
    return true;
  }
  bool on_int64(std::int64_t i, sv, ec_type& ec) {
    text_.clear();
    return add(i, ec);
  }
  bool on_uint64(std::uint64_t u, sv, ec_type& ec) {
    text_.clear();
    return add(u, ec);
  }
  bool on_double(double d, sv s, ec_type& ec) {
    text_.append(s.data(), s.size());
    // Boost turns integer literals that overflow 64 bits into doubles; that would
    // silently change both the kind and the value, so refuse instead.
    const bool integer_literal = text_.find_first_of(".eE") == std::string::npos;
    if (!integer_literal) {
      // Boost 1.81's own conversion is off by one ulp for some inputs; from_chars is
      // correctly rounded. Out of range it fails, and Boost's result (0 or infinity) stands.
      double exact = 0;
      const auto r = std::from_chars(text_.data(), text_.data() + text_.size(), exact);
      if (r.ec == std::errc{} && r.ptr == text_.data() + text_.size()) d = exact;
    }
    text_.clear();
    if (integer_literal) {
      std::string path = path_to_top();
      if (!stack_.empty()) append_child(path);
      failure_ = error(errc::document_number_out_of_range, "integer outside the 64-bit range",
                       {{"path", std::move(path)}});
      return fail(ec);
    }
    return add(d, ec);
  }
  bool on_bool(bool b, ec_type& ec) { return add(b, ec); }
  bool on_null(ec_type& ec) { return add(nullptr, ec); }
  bool on_comment_part(sv, ec_type&) { return true; }
  bool on_comment(sv, ec_type&) { return true; }

  boost::json::value& root() noexcept { return root_; }
  std::optional<error>& failure() noexcept { return failure_; }

 private:
  struct frame {
    boost::json::value value;  // the array or object being filled
    std::string key;           // objects: the key whose value comes next
  };

  bool fail(ec_type& ec) {
    // Any non-zero code stops the parser; the real error is in failure_.
    ec = boost::json::error::exception;
    return false;
  }

  // Path of the innermost open container (excluding the child being parsed).
  std::string path_to_top() const {
    std::string path;
    for (std::size_t i = 0; i + 1 < stack_.size(); ++i) {
      const frame& f = stack_[i];
      if (f.value.is_array())
        append_path_index(path, f.value.get_array().size());
      else
        append_path_name(path, f.key);
    }
    return path;
  }
  void append_child(std::string& path) const {
    const frame& f = stack_.back();
    if (f.value.is_array())
      append_path_index(path, f.value.get_array().size());
    else
      append_path_name(path, f.key);
  }

  bool add(boost::json::value v, ec_type&) {
    if (stack_.empty()) {
      root_ = std::move(v);
      return true;
    }
    frame& f = stack_.back();
    if (f.value.is_array())
      f.value.get_array().push_back(std::move(v));
    else
      f.value.get_object().emplace(f.key, std::move(v));
    return true;
  }
  bool pop(ec_type& ec) {
    boost::json::value v = std::move(stack_.back().value);
    stack_.pop_back();
    return add(std::move(v), ec);
  }

  std::vector<frame> stack_;
  std::string text_;  // the string, key or number being accumulated across parts
  boost::json::value root_;
  std::optional<error> failure_;
};

}  // namespace detail

// Parses one JSON text (RFC 8259: no comments, no trailing commas, valid UTF-8).
// Errors:
//   AERO_DOCUMENT_MALFORMED_JSON  syntax error (details `offset`, `reason` = Boost.JSON's
//                                 message) or a duplicate field name (details `key`,
//                                 `path`, `offset`);
//   AERO_DOCUMENT_TOO_DEEP        more than limits.max_depth nested containers (`offset`);
//   AERO_DOCUMENT_NUMBER_OUT_OF_RANGE  an integer literal outside int64/uint64 (`path`).
inline result<boost::json::value> parse_json(std::string_view text, const document_limits& limits) {
  boost::json::parse_options opt;
  opt.max_depth = std::min(limits.max_depth, hard_max_depth);
  boost::json::error_code ec;
  boost::json::basic_parser<detail::json_builder> p(opt);
  // On failure write_some returns the offset where parsing stopped; on success, how much
  // it consumed (the value plus trailing whitespace), which must be everything.
  const std::size_t n = p.write_some(false, text.data(), text.size(), ec);
  if (!ec && n == text.size()) return std::move(p.handler().root());

  const std::string offset = std::to_string(n);
  if (auto& f = p.handler().failure()) {
    error e = std::move(*f);
    if (e.code() == errc::document_malformed_json) return std::move(e).with("offset", offset);
    return e;
  }
  if (!ec)
    return error(errc::document_malformed_json, "malformed JSON",
                 {{"offset", offset}, {"reason", "extra data after the JSON value"}});
  if (ec == boost::json::error::too_deep)
    return error(errc::document_too_deep, "JSON nested deeper than the limit",
                 {{"offset", offset}, {"limit", std::to_string(opt.max_depth)}});
  return error(errc::document_malformed_json, "malformed JSON",
               {{"offset", offset}, {"reason", ec.message()}});
}

namespace detail {

using aerodb::valid_utf8;

// One walk over the value, keeping the first failure of each rule; the caller reports
// them by priority. A depth failure outranks the rest, so it ends the walk at once (and
// keeps the recursion bounded whatever the input's real depth).
struct shape_walker {
  std::size_t max_depth;
  std::size_t max_name;
  std::optional<error> depth_error, name_error, number_error, string_error;

  bool walk(const boost::json::value& v, std::string& path, std::size_t depth) {
    switch (v.kind()) {
      case boost::json::kind::uint64:
        if (v.get_uint64() > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()) &&
            !number_error)
          number_error = error(errc::document_number_out_of_range, "integer above INT64_MAX",
                               {{"path", path}});
        return true;
      case boost::json::kind::double_:
        // JSON has no NaN or infinity, and Boost parses 1e400 as infinity.
        if (!std::isfinite(v.get_double()) && !number_error)
          number_error = error(errc::document_number_out_of_range, "number is not finite",
                               {{"path", path}});
        return true;
      case boost::json::kind::string:
        if (!string_error && !valid_utf8(v.get_string()))
          string_error = error(errc::document_malformed_json, "string is not valid UTF-8",
                               {{"path", path}});
        return true;
      case boost::json::kind::array:
      case boost::json::kind::object: break;
      default: return true;
    }
    if (depth + 1 > max_depth) {
      depth_error = error(errc::document_too_deep, "document nested deeper than the limit",
                          {{"path", path}, {"limit", std::to_string(max_depth)}});
      return false;
    }
    const std::size_t base = path.size();
    if (v.is_array()) {
      std::size_t i = 0;
      for (const auto& e : v.get_array()) {
        append_path_index(path, i++);
        if (!walk(e, path, depth + 1)) return false;
        path.resize(base);
      }
      return true;
    }
    for (const auto& kv : v.get_object()) {
      const std::string_view name = kv.key();
      append_path_name(path, name);
      if (!name_error) check_name(name, path);
      if (!walk(kv.value(), path, depth + 1)) return false;
      path.resize(base);
    }
    return true;
  }

  void check_name(std::string_view name, const std::string& path) {
    if (valid_field_name(name, max_name) && valid_utf8(name)) return;
    const char* reason = name.empty()              ? "empty"
                         : name.size() > max_name  ? "too long"
                         : name.front() == '$'     ? "starts with '$'"
                         : name.find('.') != std::string_view::npos ? "contains '.'"
                                                                    : "invalid UTF-8";
    std::vector<error_detail> details{
        {"path", detail_text(path)}, {"name", detail_text(name)}, {"reason", reason}};
    if (name.size() > max_name) details.push_back({"limit", std::to_string(max_name)});
    name_error = error(errc::document_field_name_invalid, "invalid field name", std::move(details));
  }
};

inline error invalid_id(const std::string& reason) {
  return error(errc::document_invalid_id, "invalid _id: " + reason, {{"reason", reason}});
}

}  // namespace detail

// Checks, in this order (the first failing rule is reported):
//   1. the root is an object                     AERO_DOCUMENT_NOT_OBJECT
//   2. nesting <= max_depth (root = level 1)     AERO_DOCUMENT_TOO_DEEP (`path`, `limit`)
//   3. every field name obeys valid_field_name   AERO_DOCUMENT_FIELD_NAME_INVALID
//      and is UTF-8                              (`path`, `name`, `reason`)
//   4. integers <= INT64_MAX, floats finite      AERO_DOCUMENT_NUMBER_OUT_OF_RANGE (`path`)
//   5. strings are UTF-8 (values built in code)  AERO_DOCUMENT_MALFORMED_JSON (`path`)
//   6. `_id` is present, a string, non-empty,    AERO_DOCUMENT_INVALID_ID (`reason`)
//      <= max_id_bytes, without control characters (bytes < 0x20 or 0x7F)
// Limits above the hard caps in limits.hpp are treated as the hard caps.
inline result<void> check_document_shape(const boost::json::value& v, const document_limits& limits) {
  if (!v.is_object())
    return error(errc::document_not_object, "a document must be a JSON object");
  detail::shape_walker w{std::min(limits.max_depth, hard_max_depth),
                         std::min(limits.max_field_name_bytes, hard_max_field_name_bytes),
                         {}, {}, {}, {}};
  std::string path;
  w.walk(v, path, 0);
  for (auto* e : {&w.depth_error, &w.name_error, &w.number_error, &w.string_error})
    if (*e) return std::move(**e);

  const auto* id = v.get_object().if_contains("_id");
  if (!id) return detail::invalid_id("missing");
  if (!id->is_string()) return detail::invalid_id("not a string");
  const std::string_view s = id->get_string();
  if (s.empty()) return detail::invalid_id("empty");
  if (s.size() > limits.max_id_bytes)
    return std::move(detail::invalid_id("too long")).with("limit", std::to_string(limits.max_id_bytes));
  for (const char c : s)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F)
      return detail::invalid_id("control character");
  return ok();
}

}  // namespace aerodb
