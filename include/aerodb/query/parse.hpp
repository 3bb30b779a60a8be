// The JSON form of a query: parse_query (text -> query_spec) and to_json (back).
//
//   {"collection": "users", "schema_version": 1,
//    "filter": {"age": {"$gte": 21, "$lt": 65}, "name": "Ada", "active": {"$eq": true}},
//    "sort": {"age": "desc"}, "limit": 50}
//
// Rules (each violation is AERO_QUERY_INVALID with details `path` and `reason`; `path` is
// "$" for the whole text, else dotted keys such as `filter.age.$foo` — a filter key may
// itself contain dots, the path simply joins the keys):
//   - the text is one JSON object, parsed by aerodb::parse_json; keys are never repeated
//     (Boost.JSON alone would silently keep the last, dropping a condition): a repeated
//     key is reported at its own path (`filter.age.$gt`), other syntax errors at "$", both
//     with an `offset` detail;
//   - top-level keys: collection (required, non-empty string), schema_version (optional
//     integer 0..4294967295; 0 or absent means "not given", which make_plan refuses with
//     AERO_SCHEMA_VERSION_REQUIRED), filter (optional object), sort (optional object with
//     exactly one key whose value is "asc" or "desc"), limit (optional integer; absence
//     and range are make_plan's business: AERO_QUERY_LIMIT_REQUIRED etc.), after
//     (optional object {"_id": non-empty string, "value": scalar}, "value" absent when the
//     last document lacked the sort field: a page's continuation, query_result::next);
//   - a filter key is a dotted path whose segments are valid field names; its value is a
//     scalar (meaning $eq) or a non-empty object of operators $eq $gt $gte $lt $lte,
//     ANDed; an operator value must be a scalar: bool, string, int64 (a uint64 above
//     INT64_MAX is out of range) or a finite double (1e999 parses as infinity: refused);
//   - checks run in a fixed order (unknown top-level keys in text order, then collection,
//     schema_version, filter, sort, limit, after), so one text always yields the same error.
// Predicates come out in text order: fields as written, operators within a field as
// written.
//
// to_json writes a compact, deterministic text: keys collection, schema_version, filter
// (only if non-empty), sort (if any), limit (if any), after (if any); each field once, in the order it
// first appears in spec.filter, with all its operators in spec order, always in the
// operator form ({"$eq": v}). Hence parse_query(to_json(s)) == s whenever the predicates
// of each field are contiguous in s (always true for a parsed spec), and otherwise equals
// s with predicates stably grouped by field — the same AND. A spec repeating an operator
// on one field cannot be written as a JSON object; to_json writes the repeated key and
// parse_query refuses it, exactly as make_plan refuses that spec.
//
// Thread safety: stateless functions.
#pragma once

#include <aerodb/document/json_input.hpp>
#include <aerodb/document/limits.hpp>
#include <aerodb/error.hpp>
#include <aerodb/index/scalar.hpp>
#include <aerodb/query/query.hpp>

#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace aerodb::query {

namespace detail {

inline error invalid_query(std::string path, std::string reason) {
  std::string message = "invalid query at '" + path + "': " + reason;
  return error(errc::query_invalid, std::move(message),
               {{"path", std::move(path)}, {"reason", std::move(reason)}});
}

inline std::string child_path(std::string_view base, std::string_view key) {
  std::string p(base);
  p += '.';
  p += key;
  return p;
}

// Every segment a valid field name, so a path can name a field a document may hold.
inline bool valid_field_path(std::string_view path) noexcept {
  if (path.empty()) return false;
  for (;;) {
    const std::size_t dot = path.find('.');
    if (!valid_field_name(path.substr(0, dot), document_limits{}.max_field_name_bytes))
      return false;
    if (dot == std::string_view::npos) return true;
    path.remove_prefix(dot + 1);
  }
}

inline std::string_view json_type_name(const boost::json::value& v) noexcept {
  switch (v.kind()) {
    case boost::json::kind::null: return "null";
    case boost::json::kind::bool_: return "bool";
    case boost::json::kind::int64:
    case boost::json::kind::uint64: return "int";
    case boost::json::kind::double_: return "float";
    case boost::json::kind::string: return "string";
    case boost::json::kind::array: return "array";
    case boost::json::kind::object: return "object";
  }
  return "?";
}

// A comparison value, or the reason it cannot be one.
inline result<scalar> value_of(const boost::json::value& v, const std::string& path) {
  if (auto s = scalar::from_json(v)) return std::move(*s);
  switch (v.kind()) {
    case boost::json::kind::uint64:
      return invalid_query(path, "integer out of range (above INT64_MAX)");
    case boost::json::kind::double_:
      return invalid_query(path, "number is not finite");
    default:
      return invalid_query(path, "a comparison value must be a bool, number or string, not " +
                                     std::string(json_type_name(v)));
  }
}

inline result<void> parse_filter(const boost::json::value& v, std::vector<predicate>& out) {
  if (!v.is_object()) return invalid_query("filter", "filter must be an object");
  for (const auto& kv : v.get_object()) {
    const std::string_view field(kv.key().data(), kv.key().size());
    const std::string path = child_path("filter", field);
    if (!valid_field_path(field)) {
      if (!field.empty() && field.front() == '$')
        return invalid_query(path, "operator '" + aerodb::detail::detail_text(field) +
                                       "' must be inside a field's object");
      return invalid_query(path, "invalid field path '" + aerodb::detail::detail_text(field) +
                                     "': segments must be valid field names");
    }
    const boost::json::value& cond = kv.value();
    if (!cond.is_object()) {
      AERO_TRY_ASSIGN(scalar value, value_of(cond, path));
      out.push_back({std::string(field), op::eq, std::move(value)});
      continue;
    }
    const auto& ops = cond.get_object();
    if (ops.empty()) return invalid_query(path, "empty operator object");
    for (const auto& okv : ops) {
      const std::string_view name(okv.key().data(), okv.key().size());
      const std::string op_path = child_path(path, name);
      const auto o = op_from_string(name);
      if (!o) {
        if (name.empty() || name.front() != '$')
          return invalid_query(op_path,
                               "an object is not a comparison value; name nested fields with a "
                               "dotted path");
        return invalid_query(op_path, "unknown operator '" + aerodb::detail::detail_text(name) +
                                          "' (allowed: $eq $gt $gte $lt $lte)");
      }
      AERO_TRY_ASSIGN(scalar value, value_of(okv.value(), op_path));
      out.push_back({std::string(field), *o, std::move(value)});
    }
  }
  return ok();
}

inline result<continuation> parse_after(const boost::json::value& v) {
  if (!v.is_object()) return invalid_query("after", "after must be an object {\"_id\": ..., \"value\": ...}");
  continuation out;
  for (const auto& kv : v.get_object()) {
    const std::string_view key(kv.key().data(), kv.key().size());
    if (key != "_id" && key != "value")
      return invalid_query(child_path("after", key), "unknown key '" + aerodb::detail::detail_text(key) +
                                                         "' (allowed: _id, value)");
  }
  const auto* id = v.get_object().if_contains("_id");
  if (id == nullptr || !id->is_string() || id->get_string().empty())
    return invalid_query("after._id", "after._id must be a non-empty string");
  out.doc_id.assign(id->get_string().data(), id->get_string().size());
  if (const auto* value = v.get_object().if_contains("value")) {
    AERO_TRY_ASSIGN(scalar s, value_of(*value, "after.value"));
    out.value = std::move(s);
  }
  return out;
}

inline std::string continuation_json(const continuation& c) {
  boost::json::object o;
  o["_id"] = c.doc_id;
  if (c.value) o["value"] = c.value->to_json();
  return boost::json::serialize(o);
}

inline result<sort_spec> parse_sort(const boost::json::value& v) {
  if (!v.is_object()) return invalid_query("sort", "sort must be an object");
  const auto& obj = v.get_object();
  if (obj.size() != 1)
    return invalid_query("sort", "sort must have exactly one field (got " +
                                     std::to_string(obj.size()) + ")");
  const auto& kv = *obj.begin();
  const std::string_view field(kv.key().data(), kv.key().size());
  const std::string path = child_path("sort", field);
  if (!valid_field_path(field))
    return invalid_query(path, "invalid field path '" + aerodb::detail::detail_text(field) + "'");
  const auto* dir = kv.value().if_string();
  if (dir == nullptr || (*dir != "asc" && *dir != "desc"))
    return invalid_query(path, "sort direction must be \"asc\" or \"desc\"");
  return sort_spec{std::string(field), *dir == "asc" ? direction::asc : direction::desc};
}

// An integer JSON value as int64, if it is one (a uint64 fits only up to INT64_MAX).
inline std::optional<std::int64_t> as_int64(const boost::json::value& v) noexcept {
  if (v.is_int64()) return v.get_int64();
  if (v.is_uint64() && v.get_uint64() <= static_cast<std::uint64_t>(INT64_MAX))
    return static_cast<std::int64_t>(v.get_uint64());
  return std::nullopt;
}

}  // namespace detail

inline result<query_spec> parse_query(std::string_view json) {
  auto parsed = parse_json(json, document_limits{});
  if (!parsed) {
    // Report the document layer's finding under the query code, keeping what it knew.
    const error& e = parsed.error_value();
    const std::string offset(e.detail("offset"));
    error out = [&] {
      if (const auto key = e.detail("key"); !key.empty())
        return detail::invalid_query(std::string(e.detail("path")),
                                     "duplicate key '" + std::string(key) + "'");
      std::string reason(e.detail("reason"));
      if (reason.empty()) reason = e.message();
      return detail::invalid_query("$", "malformed JSON: " + reason);
    }();
    if (!offset.empty()) return std::move(out).with("offset", offset);
    return out;
  }
  const boost::json::value& v = *parsed;
  if (!v.is_object()) return detail::invalid_query("$", "a query must be a JSON object");
  const auto& top = v.get_object();
  for (const auto& kv : top) {
    const std::string_view key(kv.key().data(), kv.key().size());
    if (key != "collection" && key != "schema_version" && key != "filter" && key != "sort" &&
        key != "limit" && key != "after")
      return detail::invalid_query(
          std::string(key), "unknown top-level key '" + aerodb::detail::detail_text(key) +
                                "' (allowed: collection, schema_version, filter, sort, limit, after)");
  }

  query_spec spec;
  const auto* collection = top.if_contains("collection");
  if (collection == nullptr) return detail::invalid_query("collection", "collection is required");
  if (!collection->is_string() || collection->get_string().empty())
    return detail::invalid_query("collection", "collection must be a non-empty string");
  spec.collection.assign(collection->get_string().data(), collection->get_string().size());

  if (const auto* version = top.if_contains("schema_version")) {
    const auto n = detail::as_int64(*version);
    if (!n || *n < 0 || *n > static_cast<std::int64_t>(std::numeric_limits<std::uint32_t>::max()))
      return detail::invalid_query("schema_version",
                                   "schema_version must be an integer 1..4294967295");
    spec.schema_version = static_cast<std::uint32_t>(*n);
  }

  if (const auto* filter = top.if_contains("filter"))
    AERO_TRY(detail::parse_filter(*filter, spec.filter));

  if (const auto* sort = top.if_contains("sort")) {
    AERO_TRY_ASSIGN(spec.sort, detail::parse_sort(*sort));
  }

  if (const auto* limit = top.if_contains("limit")) {
    const auto n = detail::as_int64(*limit);
    if (!n) return detail::invalid_query("limit", "limit must be an integer");
    spec.limit = *n;
  }

  if (const auto* after = top.if_contains("after")) {
    AERO_TRY_ASSIGN(spec.after, detail::parse_after(*after));
  }
  return spec;
}

// See the header comment for the exact form.
inline std::string to_json(const query_spec& spec) {
  const auto str = [](std::string_view s) {
    return boost::json::serialize(boost::json::value(boost::json::string_view(s.data(), s.size())));
  };
  std::string out = "{\"collection\":" + str(spec.collection) +
                    ",\"schema_version\":" + std::to_string(spec.schema_version);
  if (!spec.filter.empty()) {
    out += ",\"filter\":{";
    std::vector<bool> written(spec.filter.size(), false);
    bool first_field = true;
    for (std::size_t i = 0; i < spec.filter.size(); ++i) {
      if (written[i]) continue;
      if (!first_field) out += ',';
      first_field = false;
      out += str(spec.filter[i].field) + ":{";
      bool first_op = true;
      for (std::size_t j = i; j < spec.filter.size(); ++j) {
        if (written[j] || spec.filter[j].field != spec.filter[i].field) continue;
        written[j] = true;
        if (!first_op) out += ',';
        first_op = false;
        out += str(to_string(spec.filter[j].o)) + ':' +
               boost::json::serialize(spec.filter[j].value.to_json());
      }
      out += '}';
    }
    out += '}';
  }
  if (spec.sort)
    out += ",\"sort\":{" + str(spec.sort->field) + ":" + str(to_string(spec.sort->dir)) + "}";
  if (spec.limit) out += ",\"limit\":" + std::to_string(*spec.limit);
  if (spec.after) out += ",\"after\":" + detail::continuation_json(*spec.after);
  out += '}';
  return out;
}

}  // namespace aerodb::query
