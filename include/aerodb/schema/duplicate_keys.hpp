// Finds the first duplicated object key in JSON text.
//
// Why: boost::json::parse keeps the last of duplicated keys without a word, so a schema
// definition with `"age"` declared twice would silently lose the first declaration, and
// that lossy schema would then be logged and be immutable. The schema parser runs this
// check over definition text first and refuses duplicates.
//
// It is a SAX pass (boost::json::basic_parser) that only remembers the keys of the
// objects currently open, so it allocates nothing proportional to scalar content.
//
// Thread safety: stateless free function. Invariant: never throws except bad_alloc.
#pragma once

#include <boost/json/basic_parser_impl.hpp>
#include <boost/json/parse_options.hpp>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace aerodb::detail {

struct duplicate_key_scan {
  // Set when the text is well-formed JSON but repeats a key in some object: the dotted
  // path of the repeated key ("fields.age"; array elements appear as "[]").
  std::optional<std::string> duplicate_path;
  // Set when the text is not well-formed JSON (duplicate_path is then unset).
  boost::json::error_code parse_error;
};

class duplicate_key_handler {
 public:
  static constexpr std::size_t max_array_size = static_cast<std::size_t>(-1);
  static constexpr std::size_t max_object_size = static_cast<std::size_t>(-1);
  static constexpr std::size_t max_string_size = static_cast<std::size_t>(-1);
  static constexpr std::size_t max_key_size = static_cast<std::size_t>(-1);

  std::optional<std::string> duplicate_path;

  bool on_document_begin(boost::json::error_code&) { return true; }
  bool on_document_end(boost::json::error_code&) { return true; }
  bool on_object_begin(boost::json::error_code&) {
    frames_.push_back(frame{true, {}, {}});
    return true;
  }
  bool on_object_end(std::size_t, boost::json::error_code&) { return pop(); }
  bool on_array_begin(boost::json::error_code&) {
    frames_.push_back(frame{false, {}, {}});
    return true;
  }
  bool on_array_end(std::size_t, boost::json::error_code&) { return pop(); }
  bool on_key_part(boost::json::string_view s, std::size_t, boost::json::error_code&) {
    partial_key_.append(s.data(), s.size());
    return true;
  }
  bool on_key(boost::json::string_view s, std::size_t, boost::json::error_code& ec) {
    partial_key_.append(s.data(), s.size());
    frame& top = frames_.back();
    top.current_key = std::move(partial_key_);
    partial_key_.clear();
    if (!top.keys.insert(top.current_key).second) {
      duplicate_path = path();
      // Any error code stops the parser; duplicate_path says which kind of stop it was.
      ec = boost::json::error::exception;
      return false;
    }
    return true;
  }
  bool on_string_part(boost::json::string_view, std::size_t, boost::json::error_code&) {
    return true;
  }
  bool on_string(boost::json::string_view, std::size_t, boost::json::error_code&) { return true; }
  bool on_number_part(boost::json::string_view, boost::json::error_code&) { return true; }
  bool on_int64(std::int64_t, boost::json::string_view, boost::json::error_code&) { return true; }
  bool on_uint64(std::uint64_t, boost::json::string_view, boost::json::error_code&) { return true; }
  bool on_double(double, boost::json::string_view, boost::json::error_code&) { return true; }
  bool on_bool(bool, boost::json::error_code&) { return true; }
  bool on_null(boost::json::error_code&) { return true; }
  bool on_comment_part(boost::json::string_view, boost::json::error_code&) { return true; }
  bool on_comment(boost::json::string_view, boost::json::error_code&) { return true; }

 private:
  struct frame {
    bool is_object;
    std::set<std::string, std::less<>> keys;
    std::string current_key;
  };

  bool pop() {
    frames_.pop_back();
    return true;
  }

  std::string path() const {
    std::string p;
    for (const frame& f : frames_) {
      if (!f.is_object) {
        p += "[]";
        continue;
      }
      if (!p.empty()) p += '.';
      p += f.current_key;
    }
    return p;
  }

  std::vector<frame> frames_;
  std::string partial_key_;
};

inline duplicate_key_scan scan_duplicate_keys(std::string_view text,
                                              const boost::json::parse_options& opts) {
  boost::json::basic_parser<duplicate_key_handler> parser(opts);
  duplicate_key_scan out;
  boost::json::error_code ec;
  parser.write_some(false, text.data(), text.size(), ec);
  if (parser.handler().duplicate_path) {
    out.duplicate_path = std::move(parser.handler().duplicate_path);
  } else if (ec) {
    out.parse_error = ec;
  }
  return out;
}

}  // namespace aerodb::detail
