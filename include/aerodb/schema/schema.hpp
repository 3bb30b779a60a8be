// Schemas: the declared shape of the documents of a collection, and strict validation.
//
// A schema is identified by (id, version), is registered once and is immutable; the
// engine logs its canonical JSON in the WAL, so `to_canonical_json()` must be
// deterministic and `from_json(s.to_canonical_json()) == s` (canonical text is a fixed
// point). Definition format:
//
//   {"id": "users", "version": 1, "fields": {
//      "_id":     {"type": "string", "required": true},
//      "age":     {"type": "int"},
//      "address": {"type": "object", "fields": {"city": {"type": "string", "required": true}}},
//      "tags":    {"type": "array", "items": {"type": "string"}}}}
//
// Definition rules (violations: AERO_SCHEMA_INVALID with details `path` — a dotted path
// into the definition such as `fields.tags.items.type`, or `$` for the whole text — and
// `reason`; a missing version is AERO_SCHEMA_VERSION_REQUIRED):
//   - exactly the top-level keys id, version, fields; no key repeated anywhere (text form);
//   - id: 1..64 chars of [A-Za-z0-9_-]; version: JSON integer 1..4294967295;
//   - a field spec has only the keys type, required, fields, items; type is one of
//     string, int, float, bool, object, array; required is a bool (default false);
//     `fields` (an object) exactly for objects, `items` (a spec) exactly for arrays; an
//     items spec may not say `required` (elements are never absent);
//   - field names satisfy valid_field_name(name, document_limits{}.max_field_name_bytes);
//   - `_id` is declared at top level as {"type": "string", "required": true};
//   - container nesting is at most hard_max_depth levels (the decoder's bound).
// Field order in a definition is significant and preserved (see field_spec.hpp).
//
// Validation is strict and never coerces:
//   - undeclared fields are rejected (rule `undeclared_field`);
//   - required fields must be present (`missing_required`);
//   - null is rejected everywhere, including optional fields and array elements
//     (`null_value`): an absent optional field is written by omitting it;
//   - `int` accepts only JSON integers that fit int64 (a double such as 1.0 or 1e3 is
//     not an int); `float` accepts doubles and any integer; `string`, `bool`, `object`,
//     `array` accept only their own kind (`type_mismatch`, with `expected`/`actual`);
//   - objects recurse; every array element is checked against `items`.
// Failures are AERO_SCHEMA_VALIDATION_FAILED with details `path` (`address.city`,
// `tags[2]`, `a.b[2].c`), `rule`, and for type mismatches `expected` and `actual` (the
// type names above; `actual` is `uint64` for an integer above INT64_MAX).
//
// Which failure is reported (deterministic; the FIRST one in this order): at each object
// level, first the document's members in document order — for each: undeclared, then
// null, then type, then (for a container) recursing depth-first into it — and only then
// the missing required fields of that level, in schema declaration order.
//
// Thread safety: a schema is immutable after from_json; const member functions may be
// called concurrently. Copies share array item specs (const).
#pragma once

#include <aerodb/document/limits.hpp>
#include <aerodb/error.hpp>
#include <aerodb/schema/duplicate_keys.hpp>
#include <aerodb/schema/field_spec.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace aerodb {

inline constexpr std::size_t max_schema_id_bytes = 64;

namespace detail {

inline error schema_definition_error(std::string path, std::string reason,
                                     errc code = errc::schema_invalid) {
  std::string message = "invalid schema definition at '" + path + "': " + reason;
  return error(code, std::move(message),
               {{"path", std::move(path)}, {"reason", std::move(reason)}});
}

inline std::string join_path(const std::string& base, std::string_view key) {
  std::string p = base;
  if (!p.empty()) p += '.';
  p += key;
  return p;
}

inline bool valid_schema_id(std::string_view id) noexcept {
  if (id.empty() || id.size() > max_schema_id_bytes) return false;
  for (char c : id) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

// The name validation errors use for the kind of a JSON value.
inline std::string_view json_kind_name(const boost::json::value& v) noexcept {
  switch (v.kind()) {
    case boost::json::kind::null:
      return "null";
    case boost::json::kind::bool_:
      return "bool";
    case boost::json::kind::int64:
      return "int";
    case boost::json::kind::uint64:
      return v.get_uint64() <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())
                 ? "int"
                 : "uint64";
    case boost::json::kind::double_:
      return "float";
    case boost::json::kind::string:
      return "string";
    case boost::json::kind::array:
      return "array";
    case boost::json::kind::object:
      return "object";
  }
  return "?";
}

// Recursive descent over a definition. `depth` is the document nesting level of the
// value the spec describes (the root object is level 1).
class schema_definition_parser {
 public:
  static result<std::vector<std::pair<std::string, field_spec>>> parse_fields(
      const boost::json::value& v, const std::string& path, std::size_t depth) {
    if (!v.is_object()) return schema_definition_error(path, "fields must be an object");
    std::vector<std::pair<std::string, field_spec>> out;
    const auto& obj = v.get_object();
    out.reserve(obj.size());
    for (const auto& kv : obj) {
      const std::string_view name(kv.key().data(), kv.key().size());
      std::string child = join_path(path, name);
      if (!valid_field_name(name, document_limits{}.max_field_name_bytes))
        return schema_definition_error(
            std::move(child), "invalid field name '" + std::string(name) + "': must be 1.." +
                                  std::to_string(document_limits{}.max_field_name_bytes) +
                                  " bytes of UTF-8, contain no '.' and not start with '$'");
      AERO_TRY_ASSIGN(field_spec spec, parse_spec(kv.value(), child, depth + 1, false));
      out.emplace_back(std::string(name), std::move(spec));
    }
    return out;
  }

  static result<field_spec> parse_spec(const boost::json::value& v, const std::string& path,
                                       std::size_t depth, bool is_items) {
    if (!v.is_object()) return schema_definition_error(path, "a field spec must be an object");
    const auto& obj = v.get_object();
    for (const auto& kv : obj) {
      const std::string_view key(kv.key().data(), kv.key().size());
      if (key == "type" || key == "fields" || key == "items") continue;
      if (key == "required" && !is_items) continue;
      if (key == "required")
        return schema_definition_error(
            join_path(path, key), "array items cannot be 'required' (elements are never absent)");
      return schema_definition_error(
          join_path(path, key), "unknown key '" + std::string(key) +
                                    "' in field spec (allowed: type, required, fields, items)");
    }

    field_spec spec;
    const auto* type = obj.if_contains("type");
    if (type == nullptr)
      return schema_definition_error(join_path(path, "type"), "type is required");
    if (!type->is_string())
      return schema_definition_error(join_path(path, "type"), "type must be a string");
    const std::string_view type_name(type->get_string().data(), type->get_string().size());
    const auto parsed_type = field_type_from_string(type_name);
    if (!parsed_type)
      return schema_definition_error(join_path(path, "type"),
                                     "unknown type '" + std::string(type_name) +
                                         "' (expected string, int, float, bool, object or array)");
    spec.type = *parsed_type;

    if (const auto* req = obj.if_contains("required")) {
      if (!req->is_bool())
        return schema_definition_error(join_path(path, "required"), "required must be a bool");
      spec.required = req->get_bool();
    }

    const bool container = spec.type == field_type::object || spec.type == field_type::array;
    if (container && depth > hard_max_depth)
      return schema_definition_error(
          path, "containers nested deeper than " + std::to_string(hard_max_depth) + " levels");

    const auto* fields = obj.if_contains("fields");
    if (spec.type == field_type::object) {
      if (fields == nullptr)
        return schema_definition_error(join_path(path, "fields"), "type object requires 'fields'");
      AERO_TRY_ASSIGN(spec.fields, parse_fields(*fields, join_path(path, "fields"), depth));
    } else if (fields != nullptr) {
      return schema_definition_error(join_path(path, "fields"),
                                     "'fields' is only allowed for type object");
    }

    const auto* items = obj.if_contains("items");
    if (spec.type == field_type::array) {
      if (items == nullptr)
        return schema_definition_error(join_path(path, "items"), "type array requires 'items'");
      AERO_TRY_ASSIGN(field_spec item,
                      parse_spec(*items, join_path(path, "items"), depth + 1, true));
      spec.items = std::make_shared<const field_spec>(std::move(item));
    } else if (items != nullptr) {
      return schema_definition_error(join_path(path, "items"),
                                     "'items' is only allowed for type array");
    }
    return spec;
  }
};

}  // namespace detail

class schema {
 public:
  using field_list = std::vector<std::pair<std::string, field_spec>>;

  // JSON text of a definition. Stricter than from_json(value) in one respect: a key
  // repeated within an object is an error (a parsed value has already lost it).
  static result<schema> from_json(std::string_view text) {
    boost::json::parse_options opts;
    // A definition nests two JSON levels per document level ({"type":..,"fields":{..}}).
    opts.max_depth = 2 * hard_max_depth + 8;
    const auto scan = detail::scan_duplicate_keys(text, opts);
    if (scan.parse_error)
      return detail::schema_definition_error("$", "malformed JSON: " + scan.parse_error.message());
    if (scan.duplicate_path)
      return detail::schema_definition_error(*scan.duplicate_path, "duplicate key");
    boost::json::error_code ec;
    const boost::json::value v = boost::json::parse(text, ec, {}, opts);
    if (ec) return detail::schema_definition_error("$", "malformed JSON: " + ec.message());
    return from_json(v);
  }
  // Without this, a string literal would be ambiguous between string_view and
  // boost::json::value (which is constructible from const char*).
  static result<schema> from_json(const char* text) { return from_json(std::string_view(text)); }

  static result<schema> from_json(const boost::json::value& definition) {
    if (!definition.is_object())
      return detail::schema_definition_error("$", "a schema definition must be a JSON object");
    const auto& top = definition.get_object();
    for (const auto& kv : top) {
      const std::string_view key(kv.key().data(), kv.key().size());
      if (key != "id" && key != "version" && key != "fields")
        return detail::schema_definition_error(
            std::string(key),
            "unknown top-level key '" + std::string(key) + "' (allowed: id, version, fields)");
    }

    schema s;
    const auto* id = top.if_contains("id");
    if (id == nullptr) return detail::schema_definition_error("id", "id is required");
    if (!id->is_string()) return detail::schema_definition_error("id", "id must be a string");
    s.id_.assign(id->get_string().data(), id->get_string().size());
    if (!detail::valid_schema_id(s.id_))
      return detail::schema_definition_error("id", "id must be 1..64 characters of [A-Za-z0-9_-]");

    const auto* version = top.if_contains("version");
    if (version == nullptr)
      return detail::schema_definition_error("version", "version is required",
                                             errc::schema_version_required);
    constexpr std::uint64_t max_version = std::numeric_limits<std::uint32_t>::max();
    std::uint64_t ver = 0;
    if (version->is_int64() && version->get_int64() >= 1)
      ver = static_cast<std::uint64_t>(version->get_int64());
    else if (version->is_uint64())
      ver = version->get_uint64();
    if (ver < 1 || ver > max_version)
      return detail::schema_definition_error("version", "version must be an integer 1..4294967295");
    s.version_ = static_cast<std::uint32_t>(ver);

    const auto* fields = top.if_contains("fields");
    if (fields == nullptr) return detail::schema_definition_error("fields", "fields is required");
    s.root_.type = field_type::object;
    s.root_.required = true;
    AERO_TRY_ASSIGN(s.root_.fields,
                    detail::schema_definition_parser::parse_fields(*fields, "fields", 1));

    const field_spec* id_spec = s.root_.find("_id");
    if (id_spec == nullptr)
      return detail::schema_definition_error("fields._id", "_id must be declared");
    if (id_spec->type != field_type::string)
      return detail::schema_definition_error("fields._id.type", "_id must have type string");
    if (!id_spec->required)
      return detail::schema_definition_error("fields._id.required", "_id must be required");
    return s;
  }

  const std::string& id() const noexcept { return id_; }
  std::uint32_t version() const noexcept { return version_; }
  const field_list& fields() const noexcept { return root_.fields; }
  // The top-level field `name`, or nullptr.
  const field_spec* find_field(std::string_view name) const noexcept { return root_.find(name); }

  // Compact JSON; keys in a fixed order (id, version, fields; per spec: type, required,
  // fields | items), fields in declaration order, `required` always written (except in
  // items specs, where it is not allowed).
  std::string to_canonical_json() const {
    boost::json::object top;
    top["id"] = id_;
    top["version"] = static_cast<std::int64_t>(version_);
    top["fields"] = fields_json(root_.fields);
    return boost::json::serialize(top);
  }

  // See the header comment for the rules and which failure is reported.
  result<void> validate(const boost::json::object& doc) const {
    std::string path;
    return validate_object(root_, doc, path);
  }

  friend bool operator==(const schema& a, const schema& b) {
    return a.version_ == b.version_ && a.id_ == b.id_ && a.root_ == b.root_;
  }

 private:
  schema() = default;

  static boost::json::object fields_json(const field_list& fields) {
    boost::json::object out;
    out.reserve(fields.size());
    for (const auto& [name, spec] : fields) out[name] = spec_json(spec, false);
    return out;
  }

  static boost::json::object spec_json(const field_spec& spec, bool is_items) {
    boost::json::object out;
    out["type"] = to_string(spec.type);
    if (!is_items) out["required"] = spec.required;
    if (spec.type == field_type::object) out["fields"] = fields_json(spec.fields);
    if (spec.type == field_type::array && spec.items) out["items"] = spec_json(*spec.items, true);
    return out;
  }

  error validation_error(const std::string& path, std::string_view rule, std::string message,
                         const field_spec* expected = nullptr,
                         const boost::json::value* actual = nullptr) const {
    std::vector<error_detail> details{{"path", path}, {"rule", std::string(rule)}};
    if (expected) details.push_back({"expected", std::string(to_string(expected->type))});
    if (actual) details.push_back({"actual", std::string(detail::json_kind_name(*actual))});
    return error(errc::schema_validation_failed,
                 "document does not match schema " + id_ + " v" + std::to_string(version_) + ": " +
                     std::move(message),
                 std::move(details));
  }

  // `path` is a scratch buffer shared down the recursion (extended, then restored), so a
  // valid document costs no path allocations per field.
  result<void> validate_object(const field_spec& spec, const boost::json::object& obj,
                               std::string& path) const {
    const std::size_t base = path.size();
    for (const auto& kv : obj) {
      const std::string_view name(kv.key().data(), kv.key().size());
      if (base != 0) path += '.';
      path += name;
      const field_spec* member = spec.find(name);
      if (member == nullptr)
        return validation_error(path, "undeclared_field", "field '" + path + "' is not declared");
      AERO_TRY(validate_value(*member, kv.value(), path));
      path.resize(base);
    }
    for (const auto& [name, member] : spec.fields) {
      if (!member.required || obj.contains(name)) continue;
      if (base != 0) path += '.';
      path += name;
      return validation_error(path, "missing_required", "required field '" + path + "' is missing");
    }
    return ok();
  }

  result<void> validate_value(const field_spec& spec, const boost::json::value& v,
                              std::string& path) const {
    if (v.is_null())
      return validation_error(path, "null_value",
                              "field '" + path +
                                  "' is null (null is never allowed; omit an "
                                  "optional field instead)");
    bool matches = false;
    switch (spec.type) {
      case field_type::string:
        matches = v.is_string();
        break;
      case field_type::integer:
        matches = v.is_int64() || (v.is_uint64() &&
                                   v.get_uint64() <= static_cast<std::uint64_t>(
                                                         std::numeric_limits<std::int64_t>::max()));
        break;
      case field_type::floating:
        matches = v.is_double() || v.is_int64() || v.is_uint64();
        break;
      case field_type::boolean:
        matches = v.is_bool();
        break;
      case field_type::object:
        matches = v.is_object();
        break;
      case field_type::array:
        matches = v.is_array();
        break;
    }
    if (!matches)
      return validation_error(path, "type_mismatch",
                              "field '" + path + "' must be " + std::string(to_string(spec.type)) +
                                  ", got " + std::string(detail::json_kind_name(v)),
                              &spec, &v);
    if (spec.type == field_type::object) return validate_object(spec, v.get_object(), path);
    if (spec.type == field_type::array) {
      const auto& arr = v.get_array();
      const std::size_t base = path.size();
      for (std::size_t i = 0; i < arr.size(); ++i) {
        path += '[';
        path += std::to_string(i);
        path += ']';
        AERO_TRY(validate_value(*spec.items, arr[i], path));
        path.resize(base);
      }
    }
    return ok();
  }

  std::string id_;
  std::uint32_t version_ = 0;
  // The document root: an object whose members are the top-level fields.
  field_spec root_;
};

}  // namespace aerodb
