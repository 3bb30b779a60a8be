// Schemas: every definition error, every validation rule with its exact path, int/float
// corner cases, the reporting order, canonical JSON and equality.
#include <doctest/doctest.h>

#include <aerodb/schema/schema.hpp>
#include <boost/json/parse.hpp>
#include <cstdint>
#include <string>
#include <string_view>

using namespace aerodb;

namespace {

constexpr std::string_view users_definition = R"({"id": "users", "version": 1, "fields": {
   "_id":     {"type": "string", "required": true},
   "name":    {"type": "string", "required": true},
   "age":     {"type": "int"},
   "score":   {"type": "float"},
   "active":  {"type": "bool"},
   "address": {"type": "object", "fields": {"city": {"type": "string", "required": true},
                                            "zip":  {"type": "string"}}},
   "tags":    {"type": "array", "items": {"type": "string"}}
}})";

schema must_parse(std::string_view text) {
  auto s = schema::from_json(text);
  if (!s) FAIL_CHECK(s.error_value().to_string());
  REQUIRE(s);
  return std::move(s).value();
}

const schema& users() {
  static const schema s = must_parse(users_definition);
  return s;
}

boost::json::object doc(std::string_view text) {
  boost::json::error_code ec;
  boost::json::value v = boost::json::parse(text, ec);
  REQUIRE_MESSAGE(!ec, "test document is not JSON: ", std::string(text));
  REQUIRE(v.is_object());
  return std::move(v.get_object());
}

// A definition with `fields_body` as the fields object (plus the mandatory _id).
std::string with_fields(std::string_view fields_body) {
  return R"({"id":"t","version":1,"fields":{"_id":{"type":"string","required":true})" +
         std::string(fields_body.empty() ? "" : ",") + std::string(fields_body) + "}}";
}

void check_definition_error(std::string_view text, std::string_view path,
                            errc code = errc::schema_invalid) {
  INFO("definition: ", std::string(text));
  auto s = schema::from_json(text);
  REQUIRE_FALSE(s);
  INFO("error: ", s.error_value().to_string());
  CHECK(s.code() == code);
  CHECK(s.error_value().detail("path") == path);
  CHECK_FALSE(s.error_value().detail("reason").empty());
}

void check_valid(const schema& s, std::string_view text) {
  INFO("document: ", std::string(text));
  auto r = s.validate(doc(text));
  if (!r) INFO("error: ", r.error_value().to_string());
  CHECK(r);
}

void check_invalid(const schema& s, std::string_view text, std::string_view path,
                   std::string_view rule, std::string_view expected = {},
                   std::string_view actual = {}) {
  INFO("document: ", std::string(text));
  auto r = s.validate(doc(text));
  REQUIRE_FALSE(r);
  const error& e = r.error_value();
  INFO("error: ", e.to_string());
  CHECK(e.code() == errc::schema_validation_failed);
  CHECK(e.level() == severity::reject);
  CHECK(e.detail("path") == path);
  CHECK(e.detail("rule") == rule);
  CHECK(e.detail("expected") == expected);
  CHECK(e.detail("actual") == actual);
  CHECK(e.message().find("'" + std::string(path) + "'") != std::string::npos);
}

}  // namespace

// ---------------------------------------------------------------------------------------
// Definitions

TEST_CASE("the example definition parses into the declared shape") {
  const schema& s = users();
  CHECK(s.id() == "users");
  CHECK(s.version() == 1u);
  REQUIRE(s.fields().size() == 7u);
  CHECK(s.fields()[0].first == "_id");
  CHECK(s.fields()[6].first == "tags");
  const field_spec* id = s.find_field("_id");
  REQUIRE(id);
  CHECK(id->type == field_type::string);
  CHECK(id->required);
  const field_spec* age = s.find_field("age");
  REQUIRE(age);
  CHECK(age->type == field_type::integer);
  CHECK_FALSE(age->required);
  CHECK(s.find_field("score")->type == field_type::floating);
  CHECK(s.find_field("active")->type == field_type::boolean);
  const field_spec* addr = s.find_field("address");
  REQUIRE(addr);
  CHECK(addr->type == field_type::object);
  REQUIRE(addr->fields.size() == 2u);
  CHECK(addr->fields[0].first == "city");
  CHECK(addr->fields[0].second.required);
  CHECK(addr->items == nullptr);
  const field_spec* tags = s.find_field("tags");
  REQUIRE(tags);
  REQUIRE(tags->items);
  CHECK(tags->items->type == field_type::string);
  CHECK(tags->fields.empty());
  CHECK(s.find_field("nope") == nullptr);
}

TEST_CASE("field type names") {
  for (auto [t, name] : {std::pair{field_type::string, "string"},
                         {field_type::integer, "int"},
                         {field_type::floating, "float"},
                         {field_type::boolean, "bool"},
                         {field_type::object, "object"},
                         {field_type::array, "array"}}) {
    CHECK(to_string(t) == name);
    CHECK(field_type_from_string(name) == t);
  }
  CHECK_FALSE(field_type_from_string("integer"));
  CHECK_FALSE(field_type_from_string("String"));
  CHECK_FALSE(field_type_from_string(""));
}

TEST_CASE("definition: not JSON, not an object") {
  check_definition_error("", "$");
  check_definition_error("{", "$");
  check_definition_error(R"({"id":"t",})", "$");
  check_definition_error("{} trailing", "$");
  check_definition_error("[]", "$");
  check_definition_error("42", "$");
  check_definition_error("null", "$");
  check_definition_error(R"("users")", "$");
  CHECK(schema::from_json(boost::json::value(nullptr)).code() == errc::schema_invalid);
}

TEST_CASE("definition: top-level keys") {
  check_definition_error(
      R"({"id":"t","version":1,"fields":{"_id":{"type":"string","required":true}},"x":1})", "x");
  check_definition_error(R"({"version":1,"fields":{"_id":{"type":"string","required":true}}})",
                         "id");
  check_definition_error(R"({"id":"t","fields":{"_id":{"type":"string","required":true}}})",
                         "version", errc::schema_version_required);
  check_definition_error(R"({"id":"t","version":1})", "fields");
  check_definition_error(R"({})", "id");
}

TEST_CASE("definition: id") {
  const auto def = [](std::string_view id_json) {
    return R"({"id":)" + std::string(id_json) +
           R"(,"version":1,"fields":{"_id":{"type":"string","required":true}}})";
  };
  check_definition_error(def("1"), "id");
  check_definition_error(def("null"), "id");
  check_definition_error(def(R"("")"), "id");
  check_definition_error(def("\"" + std::string(65, 'a') + "\""), "id");
  check_definition_error(def(R"("a.b")"), "id");
  check_definition_error(def(R"("a b")"), "id");
  check_definition_error(def(R"("a/b")"), "id");
  check_definition_error(def(R"("us\u00e9rs")"), "id");
  CHECK(schema::from_json(def("\"" + std::string(64, 'a') + "\"")));
  auto ok = schema::from_json(def(R"("Az09_-")"));
  REQUIRE(ok);
  CHECK(ok->id() == "Az09_-");
}

TEST_CASE("definition: version") {
  const auto def = [](std::string_view v) {
    return R"({"id":"t","version":)" + std::string(v) +
           R"(,"fields":{"_id":{"type":"string","required":true}}})";
  };
  for (auto bad : {"0", "-1", "1.0", "1.5", "1e0", "\"1\"", "true", "null", "4294967296",
                   "18446744073709551615", "-9223372036854775808", "[1]"})
    check_definition_error(def(bad), "version");
  auto max = schema::from_json(def("4294967295"));
  REQUIRE(max);
  CHECK(max->version() == 4294967295u);
  auto one = schema::from_json(def("1"));
  REQUIRE(one);
  CHECK(one->version() == 1u);
}

TEST_CASE("definition: fields object and _id") {
  check_definition_error(R"({"id":"t","version":1,"fields":[]})", "fields");
  check_definition_error(R"({"id":"t","version":1,"fields":null})", "fields");
  check_definition_error(R"({"id":"t","version":1,"fields":{}})", "fields._id");
  check_definition_error(R"({"id":"t","version":1,"fields":{"name":{"type":"string"}}})",
                         "fields._id");
  check_definition_error(
      R"({"id":"t","version":1,"fields":{"_id":{"type":"int","required":true}}})",
      "fields._id.type");
  check_definition_error(R"({"id":"t","version":1,"fields":{"_id":{"type":"string"}}})",
                         "fields._id.required");
  check_definition_error(
      R"({"id":"t","version":1,"fields":{"_id":{"type":"string","required":false}}})",
      "fields._id.required");
  // A nested "_id" is an ordinary field.
  CHECK(schema::from_json(with_fields(R"("o":{"type":"object","fields":{"_id":{"type":"int"}}})")));
}

TEST_CASE("definition: field specs") {
  check_definition_error(with_fields(R"("a":"string")"), "fields.a");
  check_definition_error(with_fields(R"("a":null)"), "fields.a");
  check_definition_error(with_fields(R"("a":{"type":"string","default":"x"})"), "fields.a.default");
  check_definition_error(with_fields(R"("a":{"required":true})"), "fields.a.type");
  check_definition_error(with_fields(R"("a":{"type":1})"), "fields.a.type");
  check_definition_error(with_fields(R"("a":{"type":"integer"})"), "fields.a.type");
  check_definition_error(with_fields(R"("a":{"type":"double"})"), "fields.a.type");
  check_definition_error(with_fields(R"("a":{"type":"null"})"), "fields.a.type");
  check_definition_error(with_fields(R"("a":{"type":"string","required":"yes"})"),
                         "fields.a.required");
  check_definition_error(with_fields(R"("a":{"type":"string","required":1})"), "fields.a.required");
  check_definition_error(with_fields(R"("a":{"type":"string","required":null})"),
                         "fields.a.required");
  // items: required for arrays and only for arrays.
  check_definition_error(with_fields(R"("a":{"type":"array"})"), "fields.a.items");
  check_definition_error(with_fields(R"("a":{"type":"string","items":{"type":"string"}})"),
                         "fields.a.items");
  check_definition_error(with_fields(R"("a":{"type":"array","items":"string"})"), "fields.a.items");
  check_definition_error(with_fields(R"("a":{"type":"array","items":{"type":"str"}})"),
                         "fields.a.items.type");
  check_definition_error(
      with_fields(R"("a":{"type":"array","items":{"type":"int","required":true}})"),
      "fields.a.items.required");
  check_definition_error(with_fields(R"("a":{"type":"array","items":{"type":"int","x":1}})"),
                         "fields.a.items.x");
  check_definition_error(
      with_fields(R"("a":{"type":"array","items":{"type":"array","items":{"type":"object"}}})"),
      "fields.a.items.items.fields");
  // fields: required for objects and only for objects.
  check_definition_error(with_fields(R"("a":{"type":"object"})"), "fields.a.fields");
  check_definition_error(with_fields(R"("a":{"type":"int","fields":{}})"), "fields.a.fields");
  check_definition_error(with_fields(R"("a":{"type":"object","fields":[]})"), "fields.a.fields");
  check_definition_error(with_fields(R"("a":{"type":"array","items":{"type":"int"},"fields":{}})"),
                         "fields.a.fields");
  check_definition_error(with_fields(R"("a":{"type":"object","fields":{},"items":{"type":"int"}})"),
                         "fields.a.items");
  check_definition_error(
      with_fields(
          R"("a":{"type":"object","fields":{"b":{"type":"object","fields":{"c":{"type":"x"}}}}})"),
      "fields.a.fields.b.fields.c.type");
  // Valid corner: an object that must be empty; an array of arrays of objects.
  CHECK(schema::from_json(with_fields(R"("a":{"type":"object","fields":{}})")));
  CHECK(schema::from_json(with_fields(
      R"("a":{"type":"array","items":{"type":"array","items":{"type":"object","fields":{"c":{"type":"int"}}}}})")));
}

TEST_CASE("definition: field names follow valid_field_name") {
  check_definition_error(with_fields(R"("a.b":{"type":"int"})"), "fields.a.b");
  check_definition_error(with_fields(R"("$a":{"type":"int"})"), "fields.$a");
  check_definition_error(with_fields(R"("":{"type":"int"})"), "fields.");
  const std::string too_long(document_limits{}.max_field_name_bytes + 1, 'n');
  check_definition_error(with_fields("\"" + too_long + R"(":{"type":"int"})"),
                         "fields." + too_long);
  const std::string longest(document_limits{}.max_field_name_bytes, 'n');
  CHECK(schema::from_json(with_fields("\"" + longest + R"(":{"type":"int"})")));
  check_definition_error(with_fields(R"("o":{"type":"object","fields":{"$x":{"type":"int"}}})"),
                         "fields.o.fields.$x");
  // '$' elsewhere, spaces and non-ASCII are fine.
  CHECK(schema::from_json(
      with_fields(R"("a$":{"type":"int"},"a b":{"type":"int"},"na\u00efve":{"type":"int"})")));
}

TEST_CASE("definition: duplicate keys in the text are refused") {
  check_definition_error(with_fields(R"("a":{"type":"int"},"a":{"type":"string"})"), "fields.a");
  check_definition_error(with_fields(R"("a":{"type":"int","type":"string"})"), "fields.a.type");
  check_definition_error(
      R"({"id":"t","id":"u","version":1,"fields":{"_id":{"type":"string","required":true}}})",
      "id");
  check_definition_error(
      with_fields(R"("o":{"type":"object","fields":{"x":{"type":"int"},"x":{"type":"int"}}})"),
      "fields.o.fields.x");
  // The same key in sibling objects is not a duplicate.
  CHECK(schema::from_json(with_fields(R"("a":{"type":"int"},"b":{"type":"int"})")));
}

TEST_CASE("definition: nesting is bounded by hard_max_depth") {
  // `levels` nested objects below the root: the innermost is at document level levels+1.
  const auto nested = [](std::size_t levels) {
    std::string body;
    for (std::size_t i = 0; i < levels; ++i) body += R"("o":{"type":"object","fields":{)";
    for (std::size_t i = 0; i < levels; ++i) body += "}}";
    return with_fields(body);
  };
  CHECK(schema::from_json(nested(hard_max_depth - 1)));
  auto deep = schema::from_json(nested(hard_max_depth));
  REQUIRE_FALSE(deep);
  CHECK(deep.code() == errc::schema_invalid);
  CHECK(deep.error_value().detail("path").find("fields.o.fields.o") == 0);
}

TEST_CASE("definition: from a parsed value and from std::string") {
  boost::json::error_code ec;
  const boost::json::value v = boost::json::parse(users_definition, ec);
  REQUIRE(!ec);
  auto from_value = schema::from_json(v);
  REQUIRE(from_value);
  CHECK(*from_value == users());
  auto from_string = schema::from_json(std::string(users_definition));
  REQUIRE(from_string);
  CHECK(*from_string == users());
  // The value form has no duplicate-key check (a parsed value cannot hold duplicates);
  // its other checks are the same.
  boost::json::value bad = v;
  bad.get_object()["fields"].get_object()["age"].get_object()["type"] = "integer";
  auto r = schema::from_json(bad);
  REQUIRE_FALSE(r);
  CHECK(r.error_value().detail("path") == "fields.age.type");
}

// ---------------------------------------------------------------------------------------
// Validation

TEST_CASE("valid documents") {
  const schema& s = users();
  check_valid(s, R"({"_id":"u1","name":"Ann"})");
  check_valid(s, R"({"name":"Ann","_id":"u1"})");
  check_valid(s, R"({"_id":"u1","name":"Ann","age":30,"score":1.5,"active":true,
                     "address":{"city":"Oslo","zip":"0150"},"tags":["a","b"]})");
  check_valid(s, R"({"_id":"u1","name":"","tags":[],"address":{"city":""}})");
  check_valid(s, R"({"_id":"u1","name":"Ann","active":false,"age":-5,"score":-2})");
}

TEST_CASE("rule undeclared_field") {
  const schema& s = users();
  check_invalid(s, R"({"_id":"u1","name":"Ann","nick":"A"})", "nick", "undeclared_field");
  check_invalid(s, R"({"_id":"u1","name":"Ann","address":{"city":"Oslo","street":"x"}})",
                "address.street", "undeclared_field");
  // Undeclared wins over null: the field has no declared type to be null in.
  check_invalid(s, R"({"_id":"u1","name":"Ann","nick":null})", "nick", "undeclared_field");
  // Case matters.
  check_invalid(s, R"({"_id":"u1","Name":"Ann","name":"Ann"})", "Name", "undeclared_field");
}

TEST_CASE("rule missing_required") {
  const schema& s = users();
  check_invalid(s, R"({"name":"Ann"})", "_id", "missing_required");
  check_invalid(s, R"({"_id":"u1"})", "name", "missing_required");
  check_invalid(s, R"({})", "_id", "missing_required");  // schema order: _id before name
  check_invalid(s, R"({"_id":"u1","name":"Ann","address":{}})", "address.city", "missing_required");
  check_invalid(s, R"({"_id":"u1","name":"Ann","address":{"zip":"1"}})", "address.city",
                "missing_required");
}

TEST_CASE("rule null_value, including optional fields and array elements") {
  const schema& s = users();
  check_invalid(s, R"({"_id":"u1","name":null})", "name", "null_value");
  check_invalid(s, R"({"_id":null,"name":"Ann"})", "_id", "null_value");
  check_invalid(s, R"({"_id":"u1","name":"Ann","age":null})", "age", "null_value");
  check_invalid(s, R"({"_id":"u1","name":"Ann","score":null})", "score", "null_value");
  check_invalid(s, R"({"_id":"u1","name":"Ann","active":null})", "active", "null_value");
  check_invalid(s, R"({"_id":"u1","name":"Ann","address":null})", "address", "null_value");
  check_invalid(s, R"({"_id":"u1","name":"Ann","address":{"city":null}})", "address.city",
                "null_value");
  check_invalid(s, R"({"_id":"u1","name":"Ann","address":{"city":"x","zip":null}})", "address.zip",
                "null_value");
  check_invalid(s, R"({"_id":"u1","name":"Ann","tags":null})", "tags", "null_value");
  check_invalid(s, R"({"_id":"u1","name":"Ann","tags":["a","b",null]})", "tags[2]", "null_value");
}

TEST_CASE("rule type_mismatch for every type") {
  const schema& s = users();
  check_invalid(s, R"({"_id":1,"name":"Ann"})", "_id", "type_mismatch", "string", "int");
  check_invalid(s, R"({"_id":"u1","name":["Ann"]})", "name", "type_mismatch", "string", "array");
  check_invalid(s, R"({"_id":"u1","name":"Ann","age":"30"})", "age", "type_mismatch", "int",
                "string");
  check_invalid(s, R"({"_id":"u1","name":"Ann","age":true})", "age", "type_mismatch", "int",
                "bool");
  check_invalid(s, R"({"_id":"u1","name":"Ann","score":"1.5"})", "score", "type_mismatch", "float",
                "string");
  check_invalid(s, R"({"_id":"u1","name":"Ann","score":false})", "score", "type_mismatch", "float",
                "bool");
  check_invalid(s, R"({"_id":"u1","name":"Ann","active":1})", "active", "type_mismatch", "bool",
                "int");
  check_invalid(s, R"({"_id":"u1","name":"Ann","active":"true"})", "active", "type_mismatch",
                "bool", "string");
  check_invalid(s, R"({"_id":"u1","name":"Ann","address":"Oslo"})", "address", "type_mismatch",
                "object", "string");
  check_invalid(s, R"({"_id":"u1","name":"Ann","address":[{"city":"Oslo"}]})", "address",
                "type_mismatch", "object", "array");
  check_invalid(s, R"({"_id":"u1","name":"Ann","address":{"city":7}})", "address.city",
                "type_mismatch", "string", "int");
  check_invalid(s, R"({"_id":"u1","name":"Ann","tags":"a"})", "tags", "type_mismatch", "array",
                "string");
  check_invalid(s, R"({"_id":"u1","name":"Ann","tags":{"0":"a"}})", "tags", "type_mismatch",
                "array", "object");
  check_invalid(s, R"({"_id":"u1","name":"Ann","tags":["a","b",3]})", "tags[2]", "type_mismatch",
                "string", "int");
  check_invalid(s, R"({"_id":"u1","name":"Ann","tags":[["a"]]})", "tags[0]", "type_mismatch",
                "string", "array");
}

TEST_CASE("int versus float corner cases") {
  const schema s = must_parse(with_fields(R"("i":{"type":"int"},"f":{"type":"float"})"));
  const auto as_int = [](std::string_view number) {
    return R"({"_id":"x","i":)" + std::string(number) + "}";
  };
  const auto as_float = [](std::string_view number) {
    return R"({"_id":"x","f":)" + std::string(number) + "}";
  };
  for (auto n : {"1", "0", "-0", "-1", "9223372036854775807", "-9223372036854775808"}) {
    check_valid(s, as_int(n));
    check_valid(s, as_float(n));
  }
  for (auto n : {"1.0", "1.5", "1e3", "-0.0", "0.0", "1E0", "-1.5e-3"}) {
    check_invalid(s, as_int(n), "i", "type_mismatch", "int", "float");
    check_valid(s, as_float(n));
  }
  // Above INT64_MAX Boost yields uint64: not an int64, so not an `int`; still a number.
  for (auto n : {"9223372036854775808", "18446744073709551615"}) {
    check_invalid(s, as_int(n), "i", "type_mismatch", "int", "uint64");
    check_valid(s, as_float(n));
  }
  // Beyond uint64 the parser falls back to double.
  check_invalid(s, as_int("18446744073709551616"), "i", "type_mismatch", "int", "float");

  // Values built in code: a small uint64 is an integer that fits int64.
  boost::json::object d{{"_id", "x"}, {"i", std::uint64_t{5}}};
  CHECK(s.validate(d));
  d["i"] = std::uint64_t{9223372036854775807ull};
  CHECK(s.validate(d));
  d["i"] = std::uint64_t{9223372036854775808ull};
  CHECK(s.validate(d).error_value().detail("actual") == "uint64");
  d["i"] = 2.0;
  CHECK(s.validate(d).error_value().detail("actual") == "float");
}

TEST_CASE("nested objects and arrays of objects give exact paths") {
  const schema s = must_parse(with_fields(R"(
    "a": {"type": "object", "fields": {
      "b": {"type": "array", "items": {"type": "object", "fields": {
        "c": {"type": "int", "required": true},
        "d": {"type": "array", "items": {"type": "array", "items": {"type": "bool"}}}}}}}},
    "m": {"type": "array", "items": {"type": "array", "items": {"type": "int"}}})"));
  check_valid(s, R"({"_id":"x"})");
  check_valid(s, R"({"_id":"x","a":{}})");
  check_valid(s, R"({"_id":"x","a":{"b":[]},"m":[[],[1,2]]})");
  check_valid(s, R"({"_id":"x","a":{"b":[{"c":1},{"c":2,"d":[[true],[]]}]}})");

  check_invalid(s, R"({"_id":"x","a":{"b":[{"c":1},{"c":2},{"c":"3"}]}})", "a.b[2].c",
                "type_mismatch", "int", "string");
  check_invalid(s, R"({"_id":"x","a":{"b":[{"c":1},{}]}})", "a.b[1].c", "missing_required");
  check_invalid(s, R"({"_id":"x","a":{"b":[{"c":1,"e":0}]}})", "a.b[0].e", "undeclared_field");
  check_invalid(s, R"({"_id":"x","a":{"b":[{"c":null}]}})", "a.b[0].c", "null_value");
  check_invalid(s, R"({"_id":"x","a":{"b":[{"c":1},null]}})", "a.b[1]", "null_value");
  check_invalid(s, R"({"_id":"x","a":{"b":[{"c":1},7]}})", "a.b[1]", "type_mismatch", "object",
                "int");
  check_invalid(s, R"({"_id":"x","a":{"b":[{"c":1,"d":[[true],[false,1]]}]}})", "a.b[0].d[1][1]",
                "type_mismatch", "bool", "int");
  check_invalid(s, R"({"_id":"x","m":[[1],[2,2.5]]})", "m[1][1]", "type_mismatch", "int", "float");
  check_invalid(s, R"({"_id":"x","m":[[1],3]})", "m[1]", "type_mismatch", "array", "int");
  check_invalid(s, R"({"_id":"x","m":[[1],[null]]})", "m[1][0]", "null_value");
}

TEST_CASE("an object declared with no fields must be empty") {
  const schema s = must_parse(with_fields(R"("e":{"type":"object","fields":{}})"));
  check_valid(s, R"({"_id":"x","e":{}})");
  check_invalid(s, R"({"_id":"x","e":{"k":1}})", "e.k", "undeclared_field");
}

TEST_CASE("the first failure is reported, in the documented order") {
  const schema& s = users();
  // Members in document order: the earlier member's failure wins.
  check_invalid(s, R"({"_id":"u1","name":"Ann","age":"x","nick":1})", "age", "type_mismatch", "int",
                "string");
  check_invalid(s, R"({"_id":"u1","name":"Ann","nick":1,"age":"x"})", "nick", "undeclared_field");
  // Member failures come before missing required fields of the same level.
  check_invalid(s, R"({"_id":"u1","nick":1})", "nick", "undeclared_field");
  check_invalid(s, R"({"age":null})", "age", "null_value");
  // Depth-first: a nested failure inside an earlier member beats a later member.
  check_invalid(s, R"({"_id":"u1","name":"Ann","address":{"city":1},"nick":1})", "address.city",
                "type_mismatch", "string", "int");
  // ...and a nested missing field beats a later top-level failure, and a top-level missing one.
  check_invalid(s, R"({"_id":"u1","address":{},"age":"x"})", "address.city", "missing_required");
  // Nested members before nested missing.
  check_invalid(s, R"({"_id":"u1","name":"Ann","address":{"zip":1}})", "address.zip",
                "type_mismatch", "string", "int");
  // Several missing: schema declaration order, not alphabetical.
  const schema order = must_parse(
      with_fields(R"("z":{"type":"int","required":true},"a":{"type":"int","required":true})"));
  check_invalid(order, R"({"_id":"x"})", "z", "missing_required");
  check_invalid(order, R"({"_id":"x","z":1})", "a", "missing_required");
  // Array elements in index order.
  check_invalid(s, R"({"_id":"u1","name":"Ann","tags":["a",1,null]})", "tags[1]", "type_mismatch",
                "string", "int");
}

TEST_CASE("validation messages are readable and name the schema and path") {
  auto r = users().validate(doc(R"({"_id":"u1","name":"Ann","address":{"city":7}})"));
  REQUIRE_FALSE(r);
  const std::string msg = r.error_value().message();
  CHECK(msg.find("users v1") != std::string::npos);
  CHECK(msg.find("'address.city'") != std::string::npos);
  CHECK(msg.find("string") != std::string::npos);
  MESSAGE(r.error_value().to_string());
}

// ---------------------------------------------------------------------------------------
// Canonical JSON and equality

TEST_CASE("canonical JSON is exact, round-trips and is a fixed point") {
  const schema s = must_parse(R"({ "version" : 7, "fields" : {
      "_id" : {"required": true, "type": "string"},
      "t": {"items": {"type": "object", "fields": {"q\"x": {"type": "bool"}}}, "type": "array"},
      "n": {"type": "float", "required": false} },
    "id" : "things" })");
  const std::string canon = s.to_canonical_json();
  CHECK(canon ==
        R"({"id":"things","version":7,"fields":{"_id":{"type":"string","required":true},)"
        R"("t":{"type":"array","required":false,"items":{"type":"object","fields":)"
        R"({"q\"x":{"type":"bool","required":false}}}},"n":{"type":"float","required":false}}})");
  auto back = schema::from_json(canon);
  REQUIRE(back);
  CHECK(*back == s);
  CHECK(back->to_canonical_json() == canon);

  for (const std::string& text : {std::string(users_definition), with_fields("")}) {
    const schema a = must_parse(text);
    const std::string c = a.to_canonical_json();
    auto b = schema::from_json(c);
    REQUIRE(b);
    CHECK(*b == a);
    CHECK(b->to_canonical_json() == c);
  }
}

TEST_CASE("spelling variants of one definition are equal and share canonical JSON") {
  const schema a = must_parse(with_fields(R"("n":{"type":"int"})"));
  const schema b = must_parse(R"(
    {"fields": {"_id": {"required": true, "type": "string"}, "n": {"required": false, "type": "int"}},
     "version": 1, "id": "t"})");
  CHECK(a == b);
  CHECK(a.to_canonical_json() == b.to_canonical_json());
}

TEST_CASE("equality") {
  const schema base = must_parse(with_fields(
      R"("n":{"type":"int"},"o":{"type":"object","fields":{"x":{"type":"string"}}},"l":{"type":"array","items":{"type":"int"}})"));
  const schema copy = base;  // NOLINT(performance-unnecessary-copy-initialization)
  CHECK(copy == base);
  CHECK(must_parse(base.to_canonical_json()) == base);

  const auto differs = [&](std::string_view text) {
    INFO(std::string(text));
    CHECK_FALSE(must_parse(text) == base);
  };
  const std::string o = R"("o":{"type":"object","fields":{"x":{"type":"string"}}})";
  const std::string l = R"("l":{"type":"array","items":{"type":"int"}})";
  differs(
      R"({"id":"u","version":1,"fields":{"_id":{"type":"string","required":true},"n":{"type":"int"},)" +
      o + "," + l + "}}");
  differs(
      R"({"id":"t","version":2,"fields":{"_id":{"type":"string","required":true},"n":{"type":"int"},)" +
      o + "," + l + "}}");
  differs(with_fields(R"("n":{"type":"float"},)" + o + "," + l));
  differs(with_fields(R"("n":{"type":"int","required":true},)" + o + "," + l));
  differs(with_fields(R"("m":{"type":"int"},)" + o + "," + l));
  differs(with_fields(
      R"("n":{"type":"int"},"o":{"type":"object","fields":{"x":{"type":"bool"}}},)" + l));
  differs(with_fields(R"("n":{"type":"int"},"o":{"type":"object","fields":{}},)" + l));
  differs(with_fields(R"("n":{"type":"int"},)" + o +
                      R"(,"l":{"type":"array","items":{"type":"float"}})"));
  differs(with_fields(R"("n":{"type":"int"},)" + o));
  // Declaration order is part of the schema (it orders missing-field reports).
  differs(with_fields(R"("n":{"type":"int"},)" + l + "," + o));

  // field_spec equality is deep through items, not pointer identity.
  field_spec x(field_type::array);
  x.items = std::make_shared<const field_spec>(field_type::integer);
  field_spec y(field_type::array);
  y.items = std::make_shared<const field_spec>(field_type::integer);
  CHECK(x == y);
  y.items = std::make_shared<const field_spec>(field_type::floating);
  CHECK_FALSE(x == y);
  y.items = nullptr;
  CHECK_FALSE(x == y);
  CHECK_FALSE(y == x);
  CHECK(field_spec{} == field_spec{});
}
