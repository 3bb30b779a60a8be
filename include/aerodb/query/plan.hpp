// Validation of a query against the catalog, and the rule-based planner (SPEC_DIGEST §7).
//
// make_plan is the single gate a query passes before it runs. It checks, IN THIS ORDER,
// and reports the first failure (so one query always yields the same error):
//   1. limit missing                           AERO_QUERY_LIMIT_REQUIRED   {max}
//   2. limit <= 0                              AERO_QUERY_INVALID          {limit, reason}
//   3. limit > max_limit                       AERO_QUERY_UNBOUNDED        {limit, max}
//   4. a spec the JSON form cannot express (built in code): empty collection, a field
//      path with an empty/invalid segment, a non-finite double, the same operator twice
//      on one field              AERO_QUERY_INVALID  {path, reason} (paths as parse_query's)
//   5. schema_version 0                        AERO_SCHEMA_VERSION_REQUIRED {collection}
//   6. catalog has no such version             AERO_UNKNOWN_SCHEMA_VERSION {collection, schema_version}
//   7. a filtered (in filter order) then the sorted field is not declared in that version
//      (dotted paths resolve through `object` specs), or is declared object/array
//                                              AERO_QUERY_SCHEMA_MISMATCH  {field, reason, [expected]}
//   8. a filter value whose type can never equal the declared type (int and float fields
//      take any number, string fields strings, bool fields bools)
//                                              AERO_QUERY_SCHEMA_MISMATCH  {field, expected, actual}
//   9. a filtered field without an index       AERO_QUERY_UNINDEXED_FIELD  {field}
//  10. the sort field without an index         AERO_QUERY_SORT_NOT_INDEXED {field}
// `_id` is always indexed, whatever the catalog says.
//
// Then the access path, by rule (never by cost, so plans are reproducible):
//   - an `_id` equality                        -> primary_key (index "_id", equals)
//   - else an equality on some field           -> index_equality on the lexicographically
//                                                 (bytewise) smallest such field name
//   - else a range on some field               -> index_range on the smallest such field
//     name; every range predicate on it folds into the tightest lower and upper bound
//     (at equal values an exclusive bound is tighter than an inclusive one)
//   - else (no filter)                         -> index_scan of the `_id` index (every
//                                                 document has an entry there; the sort
//                                                 field's index lacks documents without
//                                                 that field, which sort first)
// Every rule is sound because make_plan has already required every filtered field to be
// indexed. The access path only narrows candidates: plan.predicates carries ALL the
// predicates and the executor re-checks each one (indexes are non-authoritative).
//
// Thread safety: stateless functions; catalog_view::is_indexed is called synchronously,
// only from the calling thread, and never retained.
#pragma once

#include <aerodb/error.hpp>
#include <aerodb/index/field_index.hpp>
#include <aerodb/index/scalar.hpp>
#include <aerodb/query/parse.hpp>
#include <aerodb/query/query.hpp>
#include <aerodb/schema/field_spec.hpp>
#include <aerodb/schema/schema.hpp>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include <cmath>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace aerodb::query {

// What the planner needs to know about the queried collection; the engine builds one
// under its catalog lock and it only has to stay valid for the make_plan call.
struct catalog_view {
  // The schema version the query names; nullptr when the collection's schema has no such
  // version.
  const schema* version_schema = nullptr;
  // Whether an index exists on a dotted field path. Empty: no index but `_id`.
  std::function<bool(std::string_view field)> is_indexed;

  bool indexed(std::string_view field) const {
    return field == "_id" || (is_indexed && is_indexed(field));
  }
};

// One end of a key range: the same type the index structures take.
using bound = index::bound;

struct plan {
  enum class access : std::uint8_t { primary_key, index_equality, index_range, index_scan };

  access kind = access::index_scan;
  std::string index_field;           // the index the access path reads ("_id" for primary_key)
  std::optional<scalar> equals;      // primary_key, index_equality
  std::optional<bound> lower, upper;  // index_range: either or both
  std::vector<predicate> predicates;  // ALL of them: the executor re-checks every one
  sort_spec order;                    // the requested sort, or {"_id", asc}
  std::int64_t limit = 0;             // 1..max_limit
  std::uint32_t schema_version = 0;
  std::string collection;
  std::uint64_t max_scan = 0;  // the bound on candidates examined; filled in by the engine
  std::optional<continuation> after = std::nullopt;  // only results strictly after this place in `order`
};

constexpr std::string_view to_string(plan::access a) noexcept {
  switch (a) {
    case plan::access::primary_key: return "primary_key";
    case plan::access::index_equality: return "index_equality";
    case plan::access::index_range: return "index_range";
    case plan::access::index_scan: return "index_scan";
  }
  return "?";
}

// The declared spec of a dotted path, or nullptr when some segment is undeclared or an
// intermediate segment is not an object.
inline const field_spec* resolve_field(const schema& s, std::string_view path) noexcept {
  std::size_t dot = path.find('.');
  const field_spec* cur = s.find_field(path.substr(0, dot));
  while (cur != nullptr && dot != std::string_view::npos) {
    path.remove_prefix(dot + 1);
    if (cur->type != field_type::object) return nullptr;
    dot = path.find('.');
    cur = cur->find(path.substr(0, dot));
  }
  return cur;
}

namespace detail {

inline std::string_view scalar_type_name(const scalar& v) noexcept {
  switch (v.type()) {
    case scalar::kind::boolean: return "bool";
    case scalar::kind::integer: return "int";
    case scalar::kind::floating: return "float";
    case scalar::kind::string: return "string";
  }
  return "?";
}

inline bool value_fits(field_type t, const scalar& v) noexcept {
  switch (t) {
    case field_type::integer:
    case field_type::floating: return v.is_number();
    case field_type::string: return v.type() == scalar::kind::string;
    case field_type::boolean: return v.type() == scalar::kind::boolean;
    default: return false;
  }
}

// Check 4 (see the header comment).
inline result<void> check_expressible(const query_spec& q) {
  if (q.collection.empty()) return invalid_query("collection", "collection must be non-empty");
  for (std::size_t i = 0; i < q.filter.size(); ++i) {
    const predicate& p = q.filter[i];
    const std::string path = child_path("filter", p.field);
    if (!valid_field_path(p.field))
      return invalid_query(path, "invalid field path '" + aerodb::detail::detail_text(p.field) +
                                     "': segments must be valid field names");
    const std::string op_path = child_path(path, to_string(p.o));
    if (p.value.type() == scalar::kind::floating && !std::isfinite(p.value.as_double()))
      return invalid_query(op_path, "number is not finite");
    for (std::size_t j = 0; j < i; ++j)
      if (q.filter[j].field == p.field && q.filter[j].o == p.o)
        return invalid_query(op_path, "operator repeated on one field");
  }
  if (q.sort && !valid_field_path(q.sort->field))
    return invalid_query(child_path("sort", q.sort->field),
                         "invalid field path '" + aerodb::detail::detail_text(q.sort->field) + "'");
  if (q.after) {
    if (q.after->doc_id.empty()) return invalid_query("after._id", "after._id must be a non-empty string");
    if (q.after->value && q.after->value->type() == scalar::kind::floating &&
        !std::isfinite(q.after->value->as_double()))
      return invalid_query("after.value", "number is not finite");
  }
  return ok();
}

inline error mismatch(const std::string& field, std::string message,
                      std::vector<error_detail> extra) {
  std::vector<error_detail> details{{"field", field}};
  for (auto& d : extra) details.push_back(std::move(d));
  return error(errc::query_schema_mismatch, std::move(message), std::move(details));
}

// Check 7 for one field.
inline result<void> check_declared(const schema& s, const std::string& field) {
  const field_spec* spec = resolve_field(s, field);
  if (spec == nullptr)
    return mismatch(field,
                    "field '" + field + "' is not declared in schema " + s.id() + " v" +
                        std::to_string(s.version()),
                    {{"reason", "undeclared"}});
  if (spec->type == field_type::object || spec->type == field_type::array)
    return mismatch(field,
                    "field '" + field + "' is declared " + std::string(to_string(spec->type)) +
                        "; only scalar fields can be filtered or sorted",
                    {{"reason", "not_scalar"}, {"expected", "scalar"}, {"actual", std::string(to_string(spec->type))}});
  return ok();
}

// Folds `v` into `b` if it is tighter. `lower` selects which way is tighter.
inline void tighten(std::optional<bound>& b, const scalar& v, bool inclusive, bool lower) {
  if (!b) {
    b = bound{v, inclusive};
    return;
  }
  const auto c = v <=> b->value;
  const bool tighter = lower ? c > 0 : c < 0;
  if (tighter || (c == 0 && !inclusive)) b = bound{v, inclusive};
}

}  // namespace detail

inline result<plan> make_plan(const query_spec& q, const catalog_view& catalog) {
  const std::string max = std::to_string(max_limit);
  if (!q.limit)
    return error(errc::query_limit_required,
                 "a query must carry a limit (1.." + max + ")", {{"max", max}});
  const std::string limit = std::to_string(*q.limit);
  if (*q.limit <= 0)
    return error(errc::query_invalid, "limit must be positive, got " + limit,
                 {{"path", "limit"}, {"reason", "limit must be positive"}, {"limit", limit}});
  if (*q.limit > max_limit)
    return error(errc::query_unbounded, "limit " + limit + " exceeds the maximum " + max,
                 {{"limit", limit}, {"max", max}});
  AERO_TRY(detail::check_expressible(q));
  if (q.schema_version == 0)
    return error(errc::schema_version_required, "a query must name a schema version",
                 {{"collection", q.collection}});
  if (catalog.version_schema == nullptr)
    return error(errc::unknown_schema_version,
                 "collection '" + q.collection + "' has no schema version " +
                     std::to_string(q.schema_version),
                 {{"collection", q.collection}, {"schema_version", std::to_string(q.schema_version)}});
  const schema& s = *catalog.version_schema;

  for (const predicate& p : q.filter) AERO_TRY(detail::check_declared(s, p.field));
  if (q.sort) AERO_TRY(detail::check_declared(s, q.sort->field));
  for (const predicate& p : q.filter) {
    const field_spec* spec = resolve_field(s, p.field);
    if (!detail::value_fits(spec->type, p.value))
      return detail::mismatch(
          p.field,
          "field '" + p.field + "' is declared " + std::string(to_string(spec->type)) +
              "; a " + std::string(detail::scalar_type_name(p.value)) + " value never matches it",
          {{"reason", "type"},
           {"expected", std::string(to_string(spec->type))},
           {"actual", std::string(detail::scalar_type_name(p.value))}});
  }
  for (const predicate& p : q.filter)
    if (!catalog.indexed(p.field))
      return error(errc::query_unindexed_field,
                   "field '" + p.field + "' is filtered but not indexed", {{"field", p.field}});
  if (q.sort && !catalog.indexed(q.sort->field))
    return error(errc::query_sort_not_indexed,
                 "sort field '" + q.sort->field + "' is not indexed", {{"field", q.sort->field}});

  plan out;
  out.predicates = q.filter;
  out.order = q.sort ? *q.sort : sort_spec{"_id", direction::asc};
  out.limit = *q.limit;
  out.schema_version = q.schema_version;
  out.collection = q.collection;
  out.after = q.after;

  const predicate* id_eq = nullptr;
  const predicate* best_eq = nullptr;
  const std::string* range_field = nullptr;
  for (const predicate& p : q.filter) {
    if (p.o == op::eq) {
      if (p.field == "_id" && id_eq == nullptr) id_eq = &p;
      if (best_eq == nullptr || p.field < best_eq->field) best_eq = &p;
    } else if (range_field == nullptr || p.field < *range_field) {
      range_field = &p.field;
    }
  }
  if (id_eq != nullptr) {
    out.kind = plan::access::primary_key;
    out.index_field = "_id";
    out.equals = id_eq->value;
  } else if (best_eq != nullptr) {
    out.kind = plan::access::index_equality;
    out.index_field = best_eq->field;
    out.equals = best_eq->value;
  } else if (range_field != nullptr) {
    out.kind = plan::access::index_range;
    out.index_field = *range_field;
    for (const predicate& p : q.filter) {
      if (p.field != *range_field) continue;
      const bool lower = p.o == op::gt || p.o == op::gte;
      const bool inclusive = p.o == op::gte || p.o == op::lte;
      detail::tighten(lower ? out.lower : out.upper, p.value, inclusive, lower);
    }
  } else {
    // Every document has an _id entry; the sort field's index has none for documents
    // that lack the field, and those belong in the result (first, in ascending order).
    out.kind = plan::access::index_scan;
    out.index_field = "_id";
  }
  return out;
}

// The plan as JSON, for `explain`. Keys in this order: collection, schema_version, access,
// index, equals (the value; point lookups only), lower and upper ({"value", "inclusive"};
// when bounded), predicates ([{"field", "op", "value"}], op spelled as in the JSON form),
// sort ({"field", "direction"}), limit, max_scan, after ({"_id", "value"}; a later page only).
inline boost::json::object explain_json(const plan& p) {
  boost::json::object o;
  o["collection"] = p.collection;
  o["schema_version"] = p.schema_version;
  o["access"] = to_string(p.kind);
  o["index"] = p.index_field;
  if (p.equals) o["equals"] = p.equals->to_json();
  const auto bound_json = [](const bound& b) {
    boost::json::object j;
    j["value"] = b.value.to_json();
    j["inclusive"] = b.inclusive;
    return j;
  };
  if (p.lower) o["lower"] = bound_json(*p.lower);
  if (p.upper) o["upper"] = bound_json(*p.upper);
  boost::json::array preds;
  preds.reserve(p.predicates.size());
  for (const predicate& pr : p.predicates) {
    boost::json::object j;
    j["field"] = pr.field;
    j["op"] = to_string(pr.o);
    j["value"] = pr.value.to_json();
    preds.push_back(std::move(j));
  }
  o["predicates"] = std::move(preds);
  boost::json::object sort;
  sort["field"] = p.order.field;
  sort["direction"] = to_string(p.order.dir);
  o["sort"] = std::move(sort);
  o["limit"] = p.limit;
  o["max_scan"] = p.max_scan;
  if (p.after) {
    boost::json::object a;
    a["_id"] = p.after->doc_id;
    if (p.after->value) a["value"] = p.after->value->to_json();
    o["after"] = std::move(a);
  }
  return o;
}

// One line for logs and humans, e.g.
//   users v1: index_range age (21, 65] re-check 2 predicates, sort age desc, limit 50, max_scan 120
inline std::string explain_text(const plan& p) {
  const auto value = [](const scalar& v) { return boost::json::serialize(v.to_json()); };
  std::string out = p.collection + " v" + std::to_string(p.schema_version) + ": " +
                    std::string(to_string(p.kind)) + " " + p.index_field;
  if (p.equals) out += " = " + value(*p.equals);
  if (p.kind == plan::access::index_range) {
    out += ' ';
    out += p.lower ? (p.lower->inclusive ? "[" : "(") + value(p.lower->value) : "(-inf";
    out += ", ";
    out += p.upper ? value(p.upper->value) + (p.upper->inclusive ? "]" : ")") : "+inf)";
  }
  out += " re-check " + std::to_string(p.predicates.size()) + " predicate" +
         (p.predicates.size() == 1 ? "" : "s");
  out += ", sort " + p.order.field + " " + std::string(to_string(p.order.dir));
  out += ", limit " + std::to_string(p.limit) + ", max_scan " + std::to_string(p.max_scan);
  if (p.after) out += ", after _id " + boost::json::serialize(boost::json::value(p.after->doc_id.c_str()));
  return out;
}

}  // namespace aerodb::query
