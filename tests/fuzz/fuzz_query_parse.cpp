// Fuzz target: the JSON query parser (query/parse.hpp) and, for what it accepts, the
// planner (query/plan.hpp) against a fixed catalog.
//
// Input: query text. Seeds are the queries of docs/queries.md and the tests, good and bad.
//
// Properties:
//   - no exception, no sanitizer report;
//   - parse_query refuses only with AERO_QUERY_INVALID, with `path` and `reason` details;
//   - an accepted spec survives to_json -> parse_query unchanged, and to_json is then a
//     fixed point;
//   - make_plan refuses only with the codes of its ten documented checks; a plan keeps
//     every predicate, the limit and the version, uses an indexed field, and follows the
//     access rules (an `_id` equality -> primary_key; else the smallest field with an
//     equality; else the smallest field with a range; else a scan of `_id`);
//   - the plan never loses a match: every predicate value on the access field that
//     satisfies all of that field's predicates lies inside the plan's equality or range
//     bounds.
#include "fuzz_common.hpp"

#include <aerodb/query/parse.hpp>
#include <aerodb/query/plan.hpp>
#include <aerodb/schema/schema.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace {

using aerodb::errc;
using aerodb::scalar;
using aerodb_fuzz::require;
namespace query = aerodb::query;

const aerodb::schema& fixed_schema() {
  static const aerodb::schema s = [] {
    auto r = aerodb::schema::from_json(R"({"id":"user","version":1,"fields":{
      "_id":{"type":"string","required":true},
      "name":{"type":"string","required":true},
      "age":{"type":"int"},"score":{"type":"float"},"active":{"type":"bool"},
      "address":{"type":"object","fields":{"city":{"type":"string","required":true},
                                           "zip":{"type":"string"}}},
      "tags":{"type":"array","items":{"type":"string"}}}})");
    require(r.has_value(), "the fixed schema does not parse");
    return std::move(r).value();
  }();
  return s;
}

bool indexed(std::string_view field) {
  return field == "name" || field == "age" || field == "score" || field == "address.city" ||
         field == "active";
}

bool satisfies(const scalar& v, const query::predicate& p) {
  const auto c = v <=> p.value;
  switch (p.o) {
    case query::op::eq: return c == 0;
    case query::op::gt: return c > 0;
    case query::op::gte: return c >= 0;
    case query::op::lt: return c < 0;
    case query::op::lte: return c <= 0;
  }
  return false;
}

void check_plan(const query::query_spec& spec) {
  query::catalog_view catalog;
  catalog.version_schema = spec.schema_version == 1 ? &fixed_schema() : nullptr;
  catalog.is_indexed = indexed;
  auto p = query::make_plan(spec, catalog);
  if (!p) {
    aerodb_fuzz::require_error(
        p.error_value(),
        {errc::query_limit_required, errc::query_invalid, errc::query_unbounded,
         errc::schema_version_required, errc::unknown_schema_version,
         errc::query_schema_mismatch, errc::query_unindexed_field, errc::query_sort_not_indexed},
        "make_plan");
    return;
  }
  require(p->predicates == spec.filter, "the plan dropped or changed predicates");
  require(spec.limit && p->limit == *spec.limit && p->limit >= 1 && p->limit <= query::max_limit,
          "plan limit");
  require(p->schema_version == spec.schema_version && p->collection == spec.collection, "plan target");
  require(catalog.indexed(p->index_field), "the plan reads an unindexed field", p->index_field);
  if (spec.sort) require(p->order == *spec.sort, "plan order");

  std::optional<std::string> eq_field, range_field;
  bool id_eq = false;
  for (const auto& pr : spec.filter) {
    if (pr.o == query::op::eq) {
      id_eq = id_eq || pr.field == "_id";
      if (!eq_field || pr.field < *eq_field) eq_field = pr.field;
    } else if (!range_field || pr.field < *range_field) {
      range_field = pr.field;
    }
  }
  using access = query::plan::access;
  if (id_eq)
    require(p->kind == access::primary_key && p->index_field == "_id", "an _id equality is not a primary_key plan");
  else if (eq_field)
    require(p->kind == access::index_equality && p->index_field == *eq_field, "equality rule");
  else if (range_field)
    require(p->kind == access::index_range && p->index_field == *range_field, "range rule");
  else
    require(p->kind == access::index_scan && p->index_field == "_id", "scan rule");

  for (const auto& candidate : spec.filter) {
    if (candidate.field != p->index_field) continue;
    const scalar& v = candidate.value;
    bool all = true;
    for (const auto& pr : spec.filter)
      if (pr.field == p->index_field) all = all && satisfies(v, pr);
    if (!all) continue;
    if (p->kind == access::primary_key || p->kind == access::index_equality) {
      require(p->equals.has_value() && v == *p->equals, "an equality plan misses a match");
    } else if (p->kind == access::index_range) {
      if (p->lower) {
        const auto c = v <=> p->lower->value;
        require(c > 0 || (c == 0 && p->lower->inclusive), "a range plan's lower bound misses a match");
      }
      if (p->upper) {
        const auto c = v <=> p->upper->value;
        require(c < 0 || (c == 0 && p->upper->inclusive), "a range plan's upper bound misses a match");
      }
    }
  }
  (void)query::explain_text(*p);
  (void)query::explain_json(*p);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  return aerodb_fuzz::guarded([&] {
    const std::string_view text = aerodb_fuzz::text_of(data, size);
    auto spec = query::parse_query(text);
    if (!spec) {
      aerodb_fuzz::require_error(spec.error_value(), {errc::query_invalid}, "parse_query");
      aerodb_fuzz::require_detail(spec.error_value(), "path");
      aerodb_fuzz::require_detail(spec.error_value(), "reason");
      return;
    }
    const std::string out = query::to_json(*spec);
    auto back = query::parse_query(out);
    require(back.has_value(), "to_json of a parsed query is refused",
            out + " -> " + (back ? "" : back.error_value().to_string()));
    require(*back == *spec, "to_json -> parse_query changed the query", out);
    require(query::to_json(*back) == out, "to_json is not a fixed point", out);
    check_plan(*spec);
  });
}
