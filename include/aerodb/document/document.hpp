// Documents: JSON objects with a mandatory string `_id`, held in their binary encoding.
//
// `document` owns an immutable, shared encoded buffer, so copies are cheap and the engine
// can hand readers the same bytes (buffer()) without copying. Every document holds bytes
// that passed format::check_encoded_document and have a string `_id`: it is built either
// by encode_document (from JSON that passed check_document_shape) or by from_bytes (which
// validates bytes read from disk). The buffer-taking constructor trusts its caller.
//
// Numbers keep their JSON kind: integers (int64, or uint64 <= INT64_MAX) are stored as
// int, numbers written with a fraction or exponent as float, so `1` stays an int and
// `1.0` a float through a round trip.
//
// Thread safety: a document is immutable; copies may be used from any thread.
#pragma once

#include <aerodb/document/json_input.hpp>
#include <aerodb/document/limits.hpp>
#include <aerodb/document/value_view.hpp>
#include <aerodb/error.hpp>
#include <aerodb/format/document_codec.hpp>

#include <boost/json/value.hpp>

#include <algorithm>
#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace aerodb {

class document {
 public:
  using buffer_ptr = std::shared_ptr<const std::vector<std::byte>>;

  document() = default;  // empty(): holds no document; only empty(), ==, bytes() are usable
  // REQUIRES: `validated` holds a valid encoded document (see above).
  explicit document(buffer_ptr validated) noexcept : buf_(std::move(validated)) {}

  // Validates untrusted bytes (from disk): a well-formed encoding whose root is an object
  // with a string `_id`. Failures are AERO_DATA_CORRUPTION with an `offset` detail.
  static result<document> from_bytes(std::vector<std::byte> bytes) {
    AERO_TRY(format::check_encoded_document(bytes));
    const document_view v{std::span<const std::byte>(bytes)};
    auto id = v.find("_id");
    if (!id || id->kind() != value_kind::string)
      return error(errc::data_corruption, "encoded document has no string _id", {{"offset", "0"}});
    return document(std::make_shared<const std::vector<std::byte>>(std::move(bytes)));
  }

  bool empty() const noexcept { return !buf_; }
  std::span<const std::byte> bytes() const noexcept {
    return buf_ ? std::span<const std::byte>(*buf_) : std::span<const std::byte>{};
  }
  // REQUIRES: !empty() for everything below but buffer().
  document_view view() const noexcept { return document_view(bytes()); }
  std::string_view id() const noexcept { return view().id(); }
  std::string to_json_string() const { return view().to_json_string(); }
  const buffer_ptr& buffer() const noexcept { return buf_; }

  friend bool operator==(const document& a, const document& b) noexcept {
    const auto x = a.bytes(), y = b.bytes();
    return std::equal(x.begin(), x.end(), y.begin(), y.end());
  }

 private:
  buffer_ptr buf_;
};

// encode_document without its check_document_shape, for a caller that has just run that
// check on this same value (the write path runs it before schema validation, which it
// must precede in the error order, and does not repeat the walk).
// REQUIRES: check_document_shape(v, limits) accepted `v`, and `v` has not changed since.
inline result<document> encode_shape_checked_document(const boost::json::value& v,
                                                      const document_limits& limits) {
  std::vector<std::byte> out;
  AERO_TRY(format::encode_value(v, out));
  const std::size_t limit = std::min(limits.max_document_bytes, hard_max_document_bytes);
  if (out.size() > limit)
    return error(errc::document_too_large, "encoded document larger than the limit",
                 {{"size", std::to_string(out.size())}, {"limit", std::to_string(limit)}});
  return document(std::make_shared<const std::vector<std::byte>>(std::move(out)));
}

// check_document_shape, then encode. An encoding larger than limits.max_document_bytes
// (or the hard cap) is AERO_DOCUMENT_TOO_LARGE with `size` and `limit` details.
inline result<document> encode_document(const boost::json::value& v, const document_limits& limits) {
  AERO_TRY(check_document_shape(v, limits));
  return encode_shape_checked_document(v, limits);
}

// parse_json + encode_document.
inline result<document> document_from_json(std::string_view text, const document_limits& limits = {}) {
  AERO_TRY_ASSIGN(const boost::json::value v, parse_json(text, limits));
  return encode_document(v, limits);
}

}  // namespace aerodb
