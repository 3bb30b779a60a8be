// Queries: the JSON form (every parse error, round trips, builder equivalence), the
// planner (each rule, ties, bound folding, each rejection in the documented order),
// explain output, predicate matching and the result order.
#include <doctest/doctest.h>

#include <aerodb/document/document.hpp>
#include <aerodb/query/match.hpp>
#include <aerodb/query/parse.hpp>
#include <aerodb/query/plan.hpp>
#include <aerodb/query/query.hpp>
#include <aerodb/schema/schema.hpp>

#include <boost/json/serialize.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <set>
#include <string>
#include <string_view>
#include <vector>

using namespace aerodb;
using namespace aerodb::query;

namespace {

constexpr std::string_view users_definition = R"({"id": "users", "version": 1, "fields": {
   "_id":     {"type": "string", "required": true},
   "name":    {"type": "string", "required": true},
   "age":     {"type": "int"},
   "score":   {"type": "float"},
   "active":  {"type": "bool"},
   "address": {"type": "object", "fields": {"city": {"type": "string", "required": true},
                                            "zip":  {"type": "string"},
                                            "geo":  {"type": "object", "fields": {
                                                       "lat": {"type": "float"}}}}},
   "tags":    {"type": "array", "items": {"type": "string"}}
}})";

const schema& users() {
  static const schema s = [] {
    auto r = schema::from_json(users_definition);
    REQUIRE(r);
    return std::move(r).value();
  }();
  return s;
}

// Everything scalar is indexed except "score" and "address.zip".
catalog_view catalog() {
  return {&users(), [](std::string_view f) { return f != "score" && f != "address.zip"; }};
}

query_spec must_parse(std::string_view text) {
  auto r = parse_query(text);
  if (!r) FAIL_CHECK(r.error_value().to_string());
  REQUIRE(r);
  return std::move(r).value();
}

// Expects AERO_QUERY_INVALID at `path`.
void check_invalid(std::string_view text, std::string_view path) {
  CAPTURE(text);
  auto r = parse_query(text);
  REQUIRE_FALSE(r);
  CHECK(r.code() == errc::query_invalid);
  CHECK(r.error_value().detail("path") == path);
  CHECK_FALSE(r.error_value().detail("reason").empty());
}

plan must_plan(const query_spec& q, const catalog_view& c = catalog()) {
  auto r = make_plan(q, c);
  if (!r) FAIL_CHECK(r.error_value().to_string());
  REQUIRE(r);
  return std::move(r).value();
}

plan must_plan(std::string_view text) { return must_plan(must_parse(text)); }

error plan_error(const query_spec& q, const catalog_view& c = catalog()) {
  auto r = make_plan(q, c);
  REQUIRE_FALSE(r);
  return std::move(r).error_value();
}

document doc(std::string_view json) {
  auto d = document_from_json(json);
  if (!d) FAIL_CHECK(d.error_value().to_string());
  REQUIRE(d);
  return std::move(d).value();
}

bool match(const predicate& p, std::string_view json) { return matches(p, doc(json).view()); }

}  // namespace

TEST_CASE("parse_query: the full form") {
  const auto q = must_parse(R"({"collection":"users","schema_version":1,
      "filter":{"age":{"$gte":21,"$lt":65},"name":"Ada","active":{"$eq":true},
                "address.city":{"$gt":"A"},"score":{"$lte":2.5}},
      "sort":{"age":"desc"},"limit":50})");
  CHECK(q.collection == "users");
  CHECK(q.schema_version == 1);
  REQUIRE(q.filter.size() == 6);
  CHECK(q.filter[0] == predicate{"age", op::gte, scalar(21)});
  CHECK(q.filter[1] == predicate{"age", op::lt, scalar(65)});
  CHECK(q.filter[2] == predicate{"name", op::eq, scalar("Ada")});
  CHECK(q.filter[3] == predicate{"active", op::eq, scalar(true)});
  CHECK(q.filter[4] == predicate{"address.city", op::gt, scalar("A")});
  CHECK(q.filter[5] == predicate{"score", op::lte, scalar(2.5)});
  CHECK(q.filter[0].value.type() == scalar::kind::integer);
  CHECK(q.filter[5].value.type() == scalar::kind::floating);
  REQUIRE(q.sort);
  CHECK(*q.sort == sort_spec{"age", direction::desc});
  CHECK(q.limit == 50);
}

TEST_CASE("parse_query: optional parts") {
  const auto q = must_parse(R"({"collection":"users"})");
  CHECK(q.schema_version == 0);
  CHECK(q.filter.empty());
  CHECK_FALSE(q.sort);
  CHECK_FALSE(q.limit);
  CHECK(must_parse(R"({"collection":"c","filter":{}})").filter.empty());
  CHECK(must_parse(R"({"collection":"c","sort":{"a":"asc"}})").sort->dir == direction::asc);
  // Range checks on limit and schema_version 0 belong to the planner.
  CHECK(must_parse(R"({"collection":"c","limit":-3})").limit == -3);
  CHECK(must_parse(R"({"collection":"c","limit":0})").limit == 0);
  CHECK(must_parse(R"({"collection":"c","limit":99999999})").limit == 99999999);
  CHECK(must_parse(R"({"collection":"c","schema_version":0})").schema_version == 0);
  CHECK(must_parse(R"({"collection":"c","schema_version":4294967295})").schema_version ==
        4294967295u);
  // Exotic but valid values.
  const auto v = must_parse(
      R"({"collection":"c","filter":{"a":9223372036854775807,"b":-9223372036854775808,"c":"","d":false,"e":-0.0}})");
  CHECK(v.filter[0].value.as_int() == INT64_MAX);
  CHECK(v.filter[1].value.as_int() == INT64_MIN);
  CHECK(v.filter[2].value.as_string().empty());
  CHECK(v.filter[3].value.as_bool() == false);
  CHECK(v.filter[4].value.type() == scalar::kind::floating);
}

TEST_CASE("parse_query: every error") {
  // Malformed JSON: not JSON, truncated, trailing data, duplicate keys at every level.
  check_invalid("", "$");
  check_invalid("{", "$");
  check_invalid(R"({"collection":"c"} x)", "$");
  check_invalid(R"({"collection":"c",})", "$");
  check_invalid(R"({"collection":"c","collection":"d"})", "collection");
  check_invalid(R"({"collection":"c","filter":{"a":1,"a":2}})", "filter.a");
  check_invalid(R"({"collection":"c","filter":{"a":{"$gt":1,"$gt":2}}})", "filter.a.$gt");
  {
    auto r = parse_query(R"({"collection":"c","filter":{"a":1,"a":2}})");
    REQUIRE_FALSE(r);
    CHECK_FALSE(r.error_value().detail("offset").empty());
  }
  {
    auto r = parse_query("[1");
    REQUIRE_FALSE(r);
    CHECK_FALSE(r.error_value().detail("offset").empty());
  }
  // Not an object.
  check_invalid("[]", "$");
  check_invalid("42", "$");
  check_invalid("\"q\"", "$");
  check_invalid("null", "$");
  // Unknown top-level key (reported before anything else).
  check_invalid(R"({"collection":"c","where":{}})", "where");
  check_invalid(R"({"limit":"x","Collection":"c"})", "Collection");
  // collection.
  check_invalid(R"({"limit":5})", "collection");
  check_invalid(R"({"collection":5})", "collection");
  check_invalid(R"({"collection":""})", "collection");
  check_invalid(R"({"collection":null})", "collection");
  // schema_version.
  check_invalid(R"({"collection":"c","schema_version":"1"})", "schema_version");
  check_invalid(R"({"collection":"c","schema_version":1.0})", "schema_version");
  check_invalid(R"({"collection":"c","schema_version":-1})", "schema_version");
  check_invalid(R"({"collection":"c","schema_version":4294967296})", "schema_version");
  check_invalid(R"({"collection":"c","schema_version":true})", "schema_version");
  // filter shape.
  check_invalid(R"({"collection":"c","filter":[]})", "filter");
  check_invalid(R"({"collection":"c","filter":"a"})", "filter");
  check_invalid(R"({"collection":"c","filter":null})", "filter");
  // Unknown operator, operator outside a field, object values.
  check_invalid(R"({"collection":"c","filter":{"age":{"$foo":1}}})", "filter.age.$foo");
  check_invalid(R"({"collection":"c","filter":{"age":{"$in":[1]}}})", "filter.age.$in");
  check_invalid(R"({"collection":"c","filter":{"age":{"$ne":1}}})", "filter.age.$ne");
  check_invalid(R"({"collection":"c","filter":{"age":{"$gte":1,"$EQ":2}}})", "filter.age.$EQ");
  check_invalid(R"({"collection":"c","filter":{"$or":[]}})", "filter.$or");
  check_invalid(R"({"collection":"c","filter":{"address":{"city":"X"}}})",
                "filter.address.city");
  // Null, array, object as a value (bare or under an operator).
  check_invalid(R"({"collection":"c","filter":{"a":null}})", "filter.a");
  check_invalid(R"({"collection":"c","filter":{"a":[1]}})", "filter.a");
  check_invalid(R"({"collection":"c","filter":{"a":{"$eq":null}}})", "filter.a.$eq");
  check_invalid(R"({"collection":"c","filter":{"a":{"$lt":[]}}})", "filter.a.$lt");
  check_invalid(R"({"collection":"c","filter":{"a":{"$gt":{}}}})", "filter.a.$gt");
  check_invalid(R"({"collection":"c","filter":{"a":{"$eq":{"$eq":1}}}})", "filter.a.$eq");
  // Non-finite and out-of-range numbers.
  check_invalid(R"({"collection":"c","filter":{"a":1e999}})", "filter.a");
  check_invalid(R"({"collection":"c","filter":{"a":{"$gt":-1e999}}})", "filter.a.$gt");
  check_invalid(R"({"collection":"c","filter":{"a":18446744073709551615}})", "filter.a");
  check_invalid(R"({"collection":"c","filter":{"a":99999999999999999999999}})", "$");
  // Empty operator object.
  check_invalid(R"({"collection":"c","filter":{"a":{}}})", "filter.a");
  // Invalid field paths.
  check_invalid(R"({"collection":"c","filter":{"":1}})", "filter.");
  check_invalid(R"({"collection":"c","filter":{"a..b":1}})", "filter.a..b");
  check_invalid(R"({"collection":"c","filter":{"a.":1}})", "filter.a.");
  check_invalid(R"({"collection":"c","filter":{"a.$b":1}})", "filter.a.$b");
  // Bad sort.
  check_invalid(R"({"collection":"c","sort":"age"})", "sort");
  check_invalid(R"({"collection":"c","sort":["age"]})", "sort");
  check_invalid(R"({"collection":"c","sort":{}})", "sort");
  check_invalid(R"({"collection":"c","sort":{"a":"asc","b":"asc"}})", "sort");
  check_invalid(R"({"collection":"c","sort":{"a":"ASC"}})", "sort.a");
  check_invalid(R"({"collection":"c","sort":{"a":"up"}})", "sort.a");
  check_invalid(R"({"collection":"c","sort":{"a":1}})", "sort.a");
  check_invalid(R"({"collection":"c","sort":{"a":null}})", "sort.a");
  check_invalid(R"({"collection":"c","sort":{"":"asc"}})", "sort.");
  // limit type.
  check_invalid(R"({"collection":"c","limit":"10"})", "limit");
  check_invalid(R"({"collection":"c","limit":10.0})", "limit");
  check_invalid(R"({"collection":"c","limit":1.5})", "limit");
  check_invalid(R"({"collection":"c","limit":null})", "limit");
  check_invalid(R"({"collection":"c","limit":18446744073709551615})", "limit");
}

TEST_CASE("parse_query: checks run in a fixed order") {
  // collection before schema_version before filter before sort before limit,
  // whatever order the keys are written in.
  check_invalid(R"({"limit":"x","sort":1,"filter":1,"schema_version":"x"})", "collection");
  check_invalid(R"({"limit":"x","sort":1,"filter":1,"schema_version":"x","collection":"c"})",
                "schema_version");
  check_invalid(R"({"limit":"x","sort":1,"filter":1,"collection":"c"})", "filter");
  check_invalid(R"({"limit":"x","sort":1,"collection":"c"})", "sort");
  check_invalid(R"({"limit":"x","collection":"c"})", "limit");
  auto r = parse_query(R"({"collection":"c","filter":{"a":{"$foo":1}}})");
  REQUIRE_FALSE(r);
  CHECK(r.error_value().level() == severity::reject);
  CHECK(r.error_value().message().find("$foo") != std::string::npos);
}

TEST_CASE("builder and JSON form are equivalent") {
  const auto built = aerodb::query::query("users")
                         .version(1)
                         .where("age", op::gte, 21)
                         .where("age", op::lt, 65)
                         .where("name", op::eq, "Ada")
                         .where("active", op::eq, true)
                         .where("score", op::gt, 1.5)
                         .where("address.city", op::eq, std::string("Paris"))
                         .where("address.zip", op::eq, std::string_view("75001"))
                         .where(predicate{"_id", op::lte, scalar("z")})
                         .sort_by("age", direction::desc)
                         .limit(50)
                         .spec();
  const auto parsed = must_parse(R"({"collection":"users","schema_version":1,
      "filter":{"age":{"$gte":21,"$lt":65},"name":"Ada","active":{"$eq":true},
                "score":{"$gt":1.5},"address.city":"Paris","address.zip":{"$eq":"75001"},
                "_id":{"$lte":"z"}},
      "sort":{"age":"desc"},"limit":50})");
  CHECK(built == parsed);
  CHECK(to_json(built) == to_json(parsed));

  // Integer types of every width, unsigned included, become int scalars.
  const auto ints = aerodb::query_builder("c")
                        .where("a", op::eq, std::uint8_t{7})
                        .where("b", op::eq, std::int16_t{-7})
                        .where("c", op::eq, 7u)
                        .where("d", op::eq, std::int64_t{7})
                        .spec();
  for (const auto& p : ints.filter) CHECK(p.value.type() == scalar::kind::integer);
  CHECK(aerodb::query::query("c").sort_by("x").spec().sort->dir == direction::asc);

  // What `where` takes.
  static_assert(scalar_source<bool>);
  static_assert(scalar_source<int>);
  static_assert(scalar_source<double>);
  static_assert(scalar_source<const char (&)[4]>);
  static_assert(scalar_source<std::string&>);
  static_assert(!scalar_source<std::nullptr_t>);
  static_assert(!scalar_source<std::vector<int>>);

  // A builder kept as an lvalue and extended later.
  aerodb::query::query b("users");
  b.version(2);
  b.where("age", op::lt, 3).limit(4);
  const query_spec s = b.spec();
  CHECK(s == query_spec{"users", 2, {{"age", op::lt, scalar(3)}}, std::nullopt, 4});
}

TEST_CASE("to_json: canonical text and round trips") {
  const auto q = must_parse(R"({"limit":5,"sort":{"name":"asc"},
      "filter":{"name":"Ada","age":{"$lt":65,"$gte":21},"score":2.5,"ok":false},
      "schema_version":3,"collection":"users"})");
  const std::string text = to_json(q);
  CHECK(text ==
        R"({"collection":"users","schema_version":3,"filter":{"name":{"$eq":"Ada"},)"
        R"("age":{"$lt":65,"$gte":21},"score":{"$eq":2.5E0},"ok":{"$eq":false}},)"
        R"("sort":{"name":"asc"},"limit":5})");
  CHECK(must_parse(text) == q);
  CHECK(to_json(must_parse(text)) == text);  // a fixed point

  // Minimal spec: optional parts are left out; schema_version 0 is written as given.
  const query_spec minimal{"c", 0, {}, std::nullopt, std::nullopt};
  CHECK(to_json(minimal) == R"({"collection":"c","schema_version":0})");
  CHECK(must_parse(to_json(minimal)) == minimal);

  // Number kinds survive: 7 stays int, 7.0 stays float; strings are escaped.
  const auto kinds = aerodb::query::query("c\"x")
                         .where("i", op::eq, 7)
                         .where("f", op::eq, 7.0)
                         .where("s", op::eq, "quo\"te\n\xC3\xA9")
                         .where("d", op::gt, 0.1)
                         .where("big", op::lt, INT64_MIN)
                         .limit(1)
                         .spec();
  const auto back = must_parse(to_json(kinds));
  CHECK(back == kinds);
  CHECK(back.filter[0].value.type() == scalar::kind::integer);
  CHECK(back.filter[1].value.type() == scalar::kind::floating);
  CHECK(back.filter[2].value.as_string() == "quo\"te\n\xC3\xA9");
  CHECK(back.filter[3].value.as_double() == 0.1);  // exact, not one ulp off
  CHECK(back.filter[4].value.as_int() == INT64_MIN);

  // Non-contiguous predicates of one field come back grouped (the same AND).
  const auto split = aerodb::query::query("c")
                         .where("a", op::gt, 1)
                         .where("b", op::eq, 2)
                         .where("a", op::lt, 9)
                         .spec();
  const auto grouped = must_parse(to_json(split));
  REQUIRE(grouped.filter.size() == 3);
  CHECK(grouped.filter[0] == split.filter[0]);
  CHECK(grouped.filter[1] == split.filter[2]);
  CHECK(grouped.filter[2] == split.filter[1]);

  // A repeated operator is written as a repeated key, which the parser refuses.
  const auto repeated =
      aerodb::query::query("c").where("a", op::gt, 1).where("a", op::gt, 2).spec();
  auto r = parse_query(to_json(repeated));
  REQUIRE_FALSE(r);
  CHECK(r.error_value().detail("path") == "filter.a.$gt");
}

TEST_CASE("planner: primary key") {
  const plan p = must_plan(
      R"({"collection":"users","schema_version":1,"filter":{"name":"Ada","_id":"u1","age":{"$gt":3}},"limit":5})");
  CHECK(p.kind == plan::access::primary_key);
  CHECK(p.index_field == "_id");
  REQUIRE(p.equals);
  CHECK(*p.equals == scalar("u1"));
  CHECK_FALSE(p.lower);
  CHECK_FALSE(p.upper);
  CHECK(p.predicates.size() == 3);
  CHECK(p.order == sort_spec{"_id", direction::asc});
  CHECK(p.limit == 5);
  CHECK(p.schema_version == 1);
  CHECK(p.collection == "users");
  CHECK(p.max_scan == 0);
  // _id is indexed even when the catalog says nothing at all.
  const plan q = must_plan(must_parse(R"({"collection":"users","schema_version":1,
      "filter":{"_id":"u1"},"limit":1})"),
                           catalog_view{&users(), {}});
  CHECK(q.kind == plan::access::primary_key);
}

TEST_CASE("planner: index equality, smallest field name wins") {
  const plan p = must_plan(R"({"collection":"users","schema_version":1,
      "filter":{"name":"Ada","age":30,"active":true,"_id":{"$gt":"a"}},"limit":5})");
  CHECK(p.kind == plan::access::index_equality);
  CHECK(p.index_field == "active");
  CHECK(*p.equals == scalar(true));
  CHECK(p.predicates.size() == 4);
  // Bytewise order: "address.city" < "age" < "name"; an equality beats any range.
  const plan q = must_plan(R"({"collection":"users","schema_version":1,
      "filter":{"name":"Ada","age":{"$lt":3},"address.city":"Paris"},"limit":5})");
  CHECK(q.kind == plan::access::index_equality);
  CHECK(q.index_field == "address.city");
  CHECK(*q.equals == scalar("Paris"));
  const plan r = must_plan(R"({"collection":"users","schema_version":1,
      "filter":{"name":"Ada","age":{"$lt":3}},"sort":{"age":"desc"},"limit":5})");
  CHECK(r.kind == plan::access::index_equality);
  CHECK(r.index_field == "name");
  CHECK(r.order == sort_spec{"age", direction::desc});
}

TEST_CASE("planner: index range, ties and bound folding") {
  SUBCASE("smallest field among range fields") {
    const plan p = must_plan(R"({"collection":"users","schema_version":1,
        "filter":{"name":{"$gt":"M"},"age":{"$lt":40}},"limit":5})");
    CHECK(p.kind == plan::access::index_range);
    CHECK(p.index_field == "age");
    CHECK_FALSE(p.lower);
    REQUIRE(p.upper);
    CHECK(*p.upper == bound{scalar(40), false});
    CHECK_FALSE(p.equals);
    CHECK(p.predicates.size() == 2);
  }
  SUBCASE("gt 5 with gte 7 -> lower 7 inclusive") {
    const plan p = must_plan(R"({"collection":"users","schema_version":1,
        "filter":{"age":{"$gt":5,"$gte":7}},"limit":5})");
    REQUIRE(p.lower);
    CHECK(p.lower->value == scalar(7));
    CHECK(p.lower->inclusive);
    CHECK_FALSE(p.upper);
  }
  SUBCASE("lt 10 and lte 10 -> upper 10 exclusive, in either order") {
    for (const char* f : {R"({"$lt":10,"$lte":10})", R"({"$lte":10,"$lt":10})"}) {
      const plan p = must_plan(std::string(R"({"collection":"users","schema_version":1,"filter":{"age":)") +
                               f + R"(},"limit":5})");
      REQUIRE(p.upper);
      CHECK(p.upper->value == scalar(10));
      CHECK_FALSE(p.upper->inclusive);
    }
  }
  SUBCASE("gte 5 with gt 5.0 -> lower 5 exclusive; both bounds") {
    const plan p = must_plan(R"({"collection":"users","schema_version":1,
        "filter":{"age":{"$gte":5,"$gt":5.0,"$lte":9.5,"$lt":12}},"limit":5})");
    REQUIRE(p.lower);
    CHECK(p.lower->value == scalar(5));
    CHECK_FALSE(p.lower->inclusive);
    REQUIRE(p.upper);
    CHECK(p.upper->value == scalar(9.5));
    CHECK(p.upper->inclusive);
  }
  SUBCASE("gt 7 with gte 5 -> lower 7 exclusive; lte 3 with lt 4 -> upper 3 inclusive") {
    const plan p = must_plan(R"({"collection":"users","schema_version":1,
        "filter":{"age":{"$gte":5,"$gt":7,"$lt":4,"$lte":3}},"limit":5})");
    CHECK(*p.lower == bound{scalar(7), false});
    CHECK(*p.upper == bound{scalar(3), true});
  }
  SUBCASE("a range on _id is an index range on _id") {
    const plan p = must_plan(R"({"collection":"users","schema_version":1,
        "filter":{"_id":{"$gte":"a"},"name":{"$lt":"b"}},"limit":5})");
    CHECK(p.kind == plan::access::index_range);
    CHECK(p.index_field == "_id");  // '_' (0x5F) sorts before 'n'
    CHECK(*p.lower == bound{scalar("a"), true});
  }
  SUBCASE("the range field's predicates only") {
    const plan p = must_plan(R"({"collection":"users","schema_version":1,
        "filter":{"name":{"$gt":"x"},"age":{"$gt":1},"address.geo.lat":{"$lt":2}},"limit":5})");
    CHECK(p.index_field == "address.geo.lat");
    CHECK_FALSE(p.lower);
    CHECK(*p.upper == bound{scalar(2), false});
  }
}

TEST_CASE("planner: ordered scan without a filter") {
  const plan p = must_plan(R"({"collection":"users","schema_version":1,"limit":10})");
  CHECK(p.kind == plan::access::index_scan);
  CHECK(p.index_field == "_id");
  CHECK(p.order == sort_spec{"_id", direction::asc});
  CHECK(p.predicates.empty());
  const plan q = must_plan(
      R"({"collection":"users","schema_version":1,"sort":{"age":"desc"},"limit":10000})");
  CHECK(q.kind == plan::access::index_scan);
  // Scanning the sort field's index would miss documents without the field.
  CHECK(q.index_field == "_id");
  CHECK(q.order == sort_spec{"age", direction::desc});
  CHECK(q.limit == max_limit);
}

TEST_CASE("planner: every rejection, in the documented order") {
  const catalog_view good = catalog();
  const catalog_view no_version{nullptr, good.is_indexed};
  // A query that breaks every rule at once; fixing one rule at a time exposes the next.
  query_spec q{"users", 0,
               {{"tags", op::eq, scalar("x")},
                {"age", op::eq, scalar("old")},
                {"score", op::gt, scalar(1)},
                {"a..b", op::eq, scalar(1)}},
               sort_spec{"address.zip", direction::asc},
               std::nullopt};
  catalog_view c = no_version;

  auto e = plan_error(q, c);
  CHECK(e.code() == errc::query_limit_required);
  CHECK(e.detail("max") == "10000");

  q.limit = 0;
  e = plan_error(q, c);
  CHECK(e.code() == errc::query_invalid);
  CHECK(e.detail("limit") == "0");
  q.limit = -5;
  CHECK(plan_error(q, c).code() == errc::query_invalid);

  q.limit = max_limit + 1;
  e = plan_error(q, c);
  CHECK(e.code() == errc::query_unbounded);
  CHECK(e.detail("limit") == "10001");
  CHECK(e.detail("max") == "10000");
  q.limit = INT64_MAX;
  CHECK(plan_error(q, c).code() == errc::query_unbounded);

  q.limit = max_limit;
  e = plan_error(q, c);
  CHECK(e.code() == errc::query_invalid);
  CHECK(e.detail("path") == "filter.a..b");
  q.filter.pop_back();

  e = plan_error(q, c);
  CHECK(e.code() == errc::schema_version_required);
  CHECK(e.detail("collection") == "users");

  q.schema_version = 7;
  e = plan_error(q, c);
  CHECK(e.code() == errc::unknown_schema_version);
  CHECK(e.detail("collection") == "users");
  CHECK(e.detail("schema_version") == "7");

  c = good;
  e = plan_error(q, c);  // tags is an array
  CHECK(e.code() == errc::query_schema_mismatch);
  CHECK(e.detail("field") == "tags");
  CHECK(e.detail("actual") == "array");

  q.filter.erase(q.filter.begin());
  q.sort = sort_spec{"nope", direction::asc};
  e = plan_error(q, c);  // undeclared sort field, reported before value types
  CHECK(e.code() == errc::query_schema_mismatch);
  CHECK(e.detail("field") == "nope");
  CHECK(e.detail("reason") == "undeclared");

  q.sort = sort_spec{"address.zip", direction::asc};
  e = plan_error(q, c);  // "old" can never equal an int
  CHECK(e.code() == errc::query_schema_mismatch);
  CHECK(e.detail("field") == "age");
  CHECK(e.detail("expected") == "int");
  CHECK(e.detail("actual") == "string");

  q.filter[0].value = scalar(30);
  e = plan_error(q, c);
  CHECK(e.code() == errc::query_unindexed_field);
  CHECK(e.detail("field") == "score");

  q.filter.pop_back();
  e = plan_error(q, c);
  CHECK(e.code() == errc::query_sort_not_indexed);
  CHECK(e.detail("field") == "address.zip");

  q.sort = sort_spec{"age", direction::asc};
  const plan p = must_plan(q, c);
  CHECK(p.kind == plan::access::index_equality);
}

TEST_CASE("planner: schema checks") {
  const auto mismatch = [](query_spec q) {
    q.schema_version = 1;
    q.limit = 1;
    auto e = plan_error(q);
    CHECK(e.code() == errc::query_schema_mismatch);
    return std::string(e.detail("field"));
  };
  using Q = aerodb::query::query;
  // Undeclared, container, path through a non-object, path too deep or too shallow.
  CHECK(mismatch(Q("users").where("nope", op::eq, 1).spec()) == "nope");
  CHECK(mismatch(Q("users").where("address", op::eq, "x").spec()) == "address");
  CHECK(mismatch(Q("users").where("address.geo", op::eq, 1).spec()) == "address.geo");
  CHECK(mismatch(Q("users").where("address.nope", op::eq, "x").spec()) == "address.nope");
  CHECK(mismatch(Q("users").where("name.first", op::eq, "x").spec()) == "name.first");
  CHECK(mismatch(Q("users").where("tags.0", op::eq, "x").spec()) == "tags.0");
  CHECK(mismatch(Q("users").sort_by("tags").spec()) == "tags");
  CHECK(mismatch(Q("users").sort_by("address").spec()) == "address");
  // Value types.
  CHECK(mismatch(Q("users").where("age", op::gt, true).spec()) == "age");
  CHECK(mismatch(Q("users").where("score", op::gt, "1").spec()) == "score");
  CHECK(mismatch(Q("users").where("name", op::eq, 1).spec()) == "name");
  CHECK(mismatch(Q("users").where("active", op::eq, 0).spec()) == "active");
  CHECK(mismatch(Q("users").where("_id", op::eq, 1).spec()) == "_id");
  CHECK(mismatch(Q("users").where("address.geo.lat", op::lt, "n").spec()) == "address.geo.lat");
  // Declaration is checked for every field before any value type.
  CHECK(mismatch(Q("users").where("age", op::eq, "x").where("nope", op::eq, 1).spec()) == "nope");
  // int and float fields take any number.
  const catalog_view all{&users(), [](std::string_view) { return true; }};
  CHECK(make_plan(Q("users").version(1).where("age", op::gt, 2.5).limit(1).spec(), all));
  CHECK(make_plan(Q("users").version(1).where("score", op::eq, 2).limit(1).spec(), all));
  CHECK(make_plan(Q("users").version(1).where("address.geo.lat", op::gte, -90).limit(1).spec(), all));
  CHECK(make_plan(Q("users").version(1).sort_by("address.city").limit(1).spec(), all));
}

TEST_CASE("planner: specs the JSON form cannot express") {
  using Q = aerodb::query::query;
  const auto invalid_at = [](const query_spec& q) {
    auto e = plan_error(q);
    CHECK(e.code() == errc::query_invalid);
    return std::string(e.detail("path"));
  };
  CHECK(invalid_at(Q("").version(1).limit(1).spec()) == "collection");
  CHECK(invalid_at(Q("users").version(1).where("", op::eq, 1).limit(1).spec()) == "filter.");
  CHECK(invalid_at(Q("users").version(1).where("$age", op::eq, 1).limit(1).spec()) ==
        "filter.$age");
  CHECK(invalid_at(Q("users").version(1).sort_by("a.").limit(1).spec()) == "sort.a.");
  CHECK(invalid_at(Q("users").version(1)
                       .where("score", op::lt, std::numeric_limits<double>::quiet_NaN())
                       .limit(1)
                       .spec()) == "filter.score.$lt");
  CHECK(invalid_at(Q("users").version(1)
                       .where("score", op::gt, std::numeric_limits<double>::infinity())
                       .limit(1)
                       .spec()) == "filter.score.$gt");
  CHECK(invalid_at(Q("users").version(1)
                       .where("age", op::eq, 1)
                       .where("name", op::eq, "x")
                       .where("age", op::eq, 2)
                       .limit(1)
                       .spec()) == "filter.age.$eq");
  // The same field with different operators is fine.
  CHECK(make_plan(Q("users").version(1).where("age", op::gt, 1).where("age", op::gte, 1)
                      .limit(1).spec(),
                  catalog()));
}

TEST_CASE("explain_json: every field") {
  plan p = must_plan(R"({"collection":"users","schema_version":1,
      "filter":{"age":{"$gt":5,"$lte":9}, "name":{"$lt":"z"}},"sort":{"name":"desc"},"limit":7})");
  p.max_scan = 123;
  const boost::json::object j = explain_json(p);
  CHECK(j.at("collection") == "users");
  CHECK(j.at("schema_version") == 1);
  CHECK(j.at("access") == "index_range");
  CHECK(j.at("index") == "age");
  CHECK_FALSE(j.contains("equals"));
  CHECK(j.at("lower").at("value") == 5);
  CHECK(j.at("lower").at("inclusive") == false);
  CHECK(j.at("upper").at("value") == 9);
  CHECK(j.at("upper").at("inclusive") == true);
  const auto& preds = j.at("predicates").as_array();
  REQUIRE(preds.size() == 3);
  CHECK(preds[0].at("field") == "age");
  CHECK(preds[0].at("op") == "$gt");
  CHECK(preds[0].at("value") == 5);
  CHECK(preds[1].at("op") == "$lte");
  CHECK(preds[2].at("field") == "name");
  CHECK(preds[2].at("op") == "$lt");
  CHECK(preds[2].at("value") == "z");
  CHECK(j.at("sort").at("field") == "name");
  CHECK(j.at("sort").at("direction") == "desc");
  CHECK(j.at("limit") == 7);
  CHECK(j.at("max_scan") == 123);
  CHECK(j.size() == 10);
  // Key order is fixed.
  std::vector<std::string> keys;
  for (const auto& kv : j) keys.emplace_back(kv.key());
  CHECK(keys == std::vector<std::string>{"collection", "schema_version", "access", "index",
                                         "lower", "upper", "predicates", "sort", "limit",
                                         "max_scan"});
  CHECK(explain_text(p) ==
        "users v1: index_range age (5, 9] re-check 3 predicates, sort name desc, limit 7, "
        "max_scan 123");

  const plan pk = must_plan(
      R"({"collection":"users","schema_version":1,"filter":{"_id":"u9"},"limit":1})");
  const auto k = explain_json(pk);
  CHECK(k.at("access") == "primary_key");
  CHECK(k.at("index") == "_id");
  CHECK(k.at("equals") == "u9");
  CHECK_FALSE(k.contains("lower"));
  CHECK_FALSE(k.contains("upper"));
  CHECK(k.at("sort").at("field") == "_id");
  CHECK(k.at("sort").at("direction") == "asc");
  CHECK(k.at("max_scan") == 0);
  CHECK(explain_text(pk) ==
        R"(users v1: primary_key _id = "u9" re-check 1 predicate, sort _id asc, limit 1, max_scan 0)");

  const plan eq = must_plan(
      R"({"collection":"users","schema_version":1,"filter":{"active":true},"limit":1})");
  CHECK(explain_json(eq).at("access") == "index_equality");
  CHECK(explain_json(eq).at("equals") == true);
  const plan scan = must_plan(R"({"collection":"users","schema_version":1,"limit":3})");
  CHECK(explain_json(scan).at("access") == "index_scan");
  CHECK(explain_json(scan).at("predicates").as_array().empty());
  const plan half = must_plan(
      R"({"collection":"users","schema_version":1,"filter":{"age":{"$lt":3}},"limit":3})");
  CHECK(explain_text(half).find("age (-inf, 3)") != std::string::npos);
}

TEST_CASE("matches: numbers across int and float") {
  const char* d = R"({"_id":"a","i":1,"f":1.0,"h":2.5,"big":9007199254740993})";
  CHECK(match({"i", op::eq, scalar(1)}, d));
  CHECK(match({"i", op::eq, scalar(1.0)}, d));
  CHECK(match({"f", op::eq, scalar(1)}, d));
  CHECK(match({"h", op::gt, scalar(2)}, d));
  CHECK(match({"h", op::lt, scalar(3)}, d));
  CHECK(match({"h", op::gte, scalar(2.5)}, d));
  CHECK(match({"h", op::lte, scalar(2.5)}, d));
  CHECK_FALSE(match({"h", op::gt, scalar(2.5)}, d));
  CHECK_FALSE(match({"h", op::lt, scalar(2.5)}, d));
  CHECK_FALSE(match({"i", op::eq, scalar(1.5)}, d));
  CHECK(match({"i", op::lt, scalar(1.5)}, d));
  // 2^53 + 1 is not 2^53 (which is what the double 9007199254740992.0 is).
  CHECK_FALSE(match({"big", op::eq, scalar(9007199254740992.0)}, d));
  CHECK(match({"big", op::gt, scalar(9007199254740992.0)}, d));
  CHECK(match({"big", op::eq, scalar(std::int64_t{9007199254740993})}, d));
}

TEST_CASE("matches: strings, bools, cross-type order") {
  const char* d = R"({"_id":"a","s":"abc","e":"","u":"\u00e9","t":true,"n":false})";
  CHECK(match({"s", op::eq, scalar("abc")}, d));
  CHECK_FALSE(match({"s", op::eq, scalar("ab")}, d));
  CHECK(match({"s", op::gt, scalar("ab")}, d));
  CHECK(match({"s", op::lt, scalar("abd")}, d));
  CHECK(match({"e", op::eq, scalar("")}, d));
  CHECK(match({"u", op::gt, scalar("z")}, d));  // bytewise: 0xC3 > 'z'
  CHECK(match({"_id", op::eq, scalar("a")}, d));
  CHECK(match({"t", op::eq, scalar(true)}, d));
  CHECK(match({"t", op::gt, scalar(false)}, d));
  CHECK(match({"n", op::lt, scalar(true)}, d));
  CHECK_FALSE(match({"n", op::eq, scalar(true)}, d));
  // Across types the scalar order decides: bool < number < string.
  CHECK(match({"s", op::gt, scalar(1000)}, d));
  CHECK_FALSE(match({"s", op::eq, scalar(0)}, d));
  CHECK(match({"t", op::lt, scalar(0)}, d));
}

TEST_CASE("matches: nested paths, missing fields and non-scalars") {
  const char* d = R"({"_id":"a","address":{"city":"Paris","geo":{"lat":48.8}},
      "tags":["x"],"obj":{},"nul":null})";
  CHECK(match({"address.city", op::eq, scalar("Paris")}, d));
  CHECK(match({"address.geo.lat", op::gt, scalar(48)}, d));
  CHECK_FALSE(match({"address.zip", op::eq, scalar("")}, d));
  CHECK_FALSE(match({"address.city.x", op::eq, scalar("Paris")}, d));
  // Missing fields never match, whatever the operator.
  for (op o : {op::eq, op::gt, op::gte, op::lt, op::lte}) {
    CAPTURE(to_string(o));
    CHECK_FALSE(match({"missing", o, scalar(0)}, d));
    CHECK_FALSE(match({"address.missing", o, scalar("")}, d));
    // Nor do null, arrays and objects.
    CHECK_FALSE(match({"nul", o, scalar(false)}, d));
    CHECK_FALSE(match({"tags", o, scalar("x")}, d));
    CHECK_FALSE(match({"obj", o, scalar(0)}, d));
    CHECK_FALSE(match({"address", o, scalar("")}, d));
    CHECK_FALSE(match({"tags.0", o, scalar("x")}, d));
  }

  const document x = doc(R"({"_id":"x","age":30,"name":"Ada"})");
  CHECK(matches_all({}, x.view()));
  CHECK(matches_all({{"age", op::gte, scalar(30)}, {"name", op::eq, scalar("Ada")}}, x.view()));
  CHECK_FALSE(matches_all({{"age", op::gte, scalar(30)}, {"name", op::eq, scalar("Bob")}},
                          x.view()));
  CHECK_FALSE(matches_all({{"age", op::gt, scalar(30)}, {"name", op::eq, scalar("Ada")}},
                          x.view()));
}

TEST_CASE("compare_for_sort: value, missing first, desc keeps _id ascending") {
  std::vector<document> docs = {
      doc(R"({"_id":"d","age":30})"),        doc(R"({"_id":"a","age":30.0})"),
      doc(R"({"_id":"c","age":20})"),        doc(R"({"_id":"b"})"),
      doc(R"({"_id":"e","age":null})"),      doc(R"({"_id":"f","age":25.5})"),
      doc(R"({"_id":"g","age":[1]})"),       doc(R"({"_id":"h","age":"x"})"),
      doc(R"({"_id":"i","age":true})"),
  };
  const auto ids = [&](const sort_spec& s) {
    std::vector<document> v = docs;
    std::sort(v.begin(), v.end(), [&](const document& x, const document& y) {
      return compare_for_sort(s, x.view(), y.view()) < 0;
    });
    std::string out;
    for (const auto& d : v) out += d.id();
    return out;
  };
  // Missing/non-scalar (b, e, g) first by _id, then true < 20 < 25.5 < 30 == 30.0 < "x".
  CHECK(ids({"age", direction::asc}) == "begicfadh");
  // Desc reverses values only; equal values (a, d) and the missing group stay _id-ascending.
  CHECK(ids({"age", direction::desc}) == "hadfcibeg");
  CHECK(ids({"_id", direction::asc}) == "abcdefghi");
  CHECK(ids({"_id", direction::desc}) == "ihgfedcba");

  const document a = doc(R"({"_id":"a","x":{"y":1}})");
  const document b = doc(R"({"_id":"b","x":{"y":1}})");
  const document c = doc(R"({"_id":"c","x":{"y":0}})");
  const sort_spec nested{"x.y", direction::asc};
  CHECK(compare_for_sort(nested, a.view(), b.view()) == std::strong_ordering::less);
  CHECK(compare_for_sort(nested, b.view(), a.view()) == std::strong_ordering::greater);
  CHECK(compare_for_sort(nested, a.view(), a.view()) == std::strong_ordering::equal);
  CHECK(compare_for_sort(nested, c.view(), a.view()) == std::strong_ordering::less);
  const sort_spec nested_desc{"x.y", direction::desc};
  CHECK(compare_for_sort(nested_desc, c.view(), a.view()) == std::strong_ordering::greater);
  CHECK(compare_for_sort(nested_desc, a.view(), b.view()) == std::strong_ordering::less);
}
