// Fuzz target: the binary document decoder (format/document_codec.hpp) and the zero-copy
// views over what it accepts (document/value_view.hpp, document::from_bytes).
//
// Input: encoded bytes, as they would come from a WAL record or a snapshot. Seeds are
// encodings of real documents and values, made by format::encode_value.
//
// Properties:
//   - no exception, no sanitizer report (the views read only what the check accepted);
//   - check_encoded_value refuses with AERO_DATA_CORRUPTION and a numeric `offset` no
//     larger than the input; check_encoded_document accepts exactly the accepted values
//     whose root is an object;
//   - on accepted bytes: encoded_size() of the root is the input size; every container
//     iterates exactly `count` children; the value is accepted with max_depth equal to its
//     real depth and refused with one less;
//   - decode -> encode gives back exactly the input (decoding goes through
//     boost::json, whose objects keep one of duplicate names: with duplicates, the
//     re-encoding must still be valid and decode to the same value);
//   - a document: document::from_bytes accepts it exactly when its first `_id` is a
//     string, and snapshot_format's encoded_document_id finds the same `_id`;
//   - a document that the JSON input rules accept (check_document_shape) survives
//     bytes -> JSON text -> document_from_json with identical bytes.
#include "fuzz_common.hpp"

#include <aerodb/document/document.hpp>
#include <aerodb/format/document_codec.hpp>
#include <aerodb/format/snapshot_format.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace {

using aerodb::errc;
using aerodb::value_kind;
using aerodb::value_view;
using aerodb_fuzz::require;
namespace format = aerodb::format;

struct walk_facts {
  bool duplicate_names = false;
  std::size_t depth = 0;  // container nesting; a scalar root has depth 0
};

void walk(value_view v, std::size_t depth, walk_facts& facts) {
  if (v.kind() != value_kind::array && v.kind() != value_kind::object) return;
  facts.depth = std::max(facts.depth, depth + 1);
  std::size_t n = 0;
  const std::byte* end = v.encoded().data() + v.encoded().size();
  if (v.kind() == value_kind::array) {
    for (const value_view e : v.elements()) {
      require(e.encoded().data() + e.encoded().size() <= end, "element past its container");
      walk(e, depth + 1, facts);
      ++n;
    }
  } else {
    std::vector<std::string_view> names;
    for (const aerodb::member_view m : v.members()) {
      require(m.value.encoded().data() + m.value.encoded().size() <= end, "member past its container");
      names.push_back(m.name);
      walk(m.value, depth + 1, facts);
      ++n;
    }
    std::sort(names.begin(), names.end());
    if (std::adjacent_find(names.begin(), names.end()) != names.end()) facts.duplicate_names = true;
  }
  require(n == v.size(), "a container does not iterate `count` children");
}

void check_document(std::span<const std::byte> in, const boost::json::value& decoded,
                    const walk_facts& facts) {
  auto doc = aerodb::document::from_bytes(std::vector<std::byte>(in.begin(), in.end()));
  const aerodb::document_view view(in);
  const auto id = view.find("_id");
  const bool string_id = id && id->kind() == value_kind::string;
  require(doc.has_value() == string_id, "from_bytes disagrees with the first _id's kind");
  const auto snapshot_id = format::encoded_document_id(in);
  require(snapshot_id.has_value() == string_id &&
              (!string_id || *snapshot_id == id->as_string()),
          "encoded_document_id and document_view disagree on _id");
  if (!doc) {
    aerodb_fuzz::require_error(doc.error_value(), {errc::data_corruption}, "document::from_bytes");
    return;
  }
  require(doc->id() == id->as_string(), "document::id()");
  if (facts.duplicate_names) return;
  if (!aerodb::check_document_shape(decoded, aerodb::document_limits{})) return;
  const std::string text = doc->to_json_string();
  auto back = aerodb::document_from_json(text);
  require(back.has_value(), "a valid document's own JSON text is refused",
          text + " -> " + (back ? "" : back.error_value().to_string()));
  require(aerodb_fuzz::same_bytes(back->bytes(), in),
          "bytes -> JSON text -> document changed the bytes", text);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  return aerodb_fuzz::guarded([&] {
    const auto in = aerodb_fuzz::bytes_of(data, size);
    auto checked = format::check_encoded_value(in);
    auto checked_doc = format::check_encoded_document(in);
    if (!checked) {
      const auto& e = checked.error_value();
      aerodb_fuzz::require_error(e, {errc::data_corruption}, "check_encoded_value");
      aerodb_fuzz::require_detail(e, "offset", true);
      require(std::stoull(std::string(e.detail("offset"))) <= size, "offset past the input");
      require(!checked_doc && checked_doc.error_value().to_string() == e.to_string(),
              "check_encoded_document disagrees with check_encoded_value");
      return;
    }
    const bool object_root = std::to_integer<std::uint8_t>(in[0]) == format::tag_object;
    require(checked_doc.has_value() == object_root, "check_encoded_document vs the root tag");
    if (!checked_doc)
      aerodb_fuzz::require_error(checked_doc.error_value(), {errc::data_corruption},
                                 "check_encoded_document");

    require(format::encoded_size(in.data()) == size, "encoded_size of the root");
    const value_view root(in.data());
    walk_facts facts;
    walk(root, 0, facts);
    require(format::check_encoded_value(in, facts.depth).has_value(),
            "refused at its own depth", std::to_string(facts.depth));
    if (facts.depth > 0)
      require(!format::check_encoded_value(in, facts.depth - 1),
              "accepted below its own depth", std::to_string(facts.depth));

    const boost::json::value decoded = root.to_json();
    std::vector<std::byte> out;
    auto encoded = format::encode_value(decoded, out);
    require(encoded.has_value(), "encode_value refused a decoded value",
            encoded ? "" : encoded.error_value().to_string());
    if (!facts.duplicate_names) {
      require(aerodb_fuzz::same_bytes(out, in), "decode -> encode changed the bytes");
    } else {
      require(format::check_encoded_value(out).has_value(), "re-encoding is not valid");
      std::vector<std::byte> twice;
      require(format::encode_value(value_view(out.data()).to_json(), twice).has_value() &&
                  twice == out,
              "re-encoding is not a fixed point");
    }
    if (object_root) check_document(in, decoded, facts);
  });
}
