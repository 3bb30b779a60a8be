// Documents: JSON input rules, the binary encoding (pinned byte for byte), zero-copy views,
// and the validating decoder against truncated, mutated and random input.
#include <aerodb/document/document.hpp>
#include <aerodb/format/document_codec.hpp>
#include <doctest/doctest.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

using namespace aerodb;
namespace json = boost::json;

namespace {

document must(result<document> r) {
  if (!r) FAIL(r.error_value().to_string());
  return std::move(r).value();
}

error must_fail(const result<document>& r) {
  REQUIRE_MESSAGE(!r, "expected an error, got " << (r ? r->to_json_string() : ""));
  return r.error_value();
}

std::vector<std::byte> bytes_of(std::initializer_list<int> v) {
  std::vector<std::byte> out;
  for (int b : v) out.push_back(static_cast<std::byte>(b));
  return out;
}

std::vector<std::byte> encode(const json::value& v) {
  std::vector<std::byte> out;
  REQUIRE(format::encode_value(v, out));
  return out;
}

bool inside(std::string_view s, std::span<const std::byte> buf) {
  const auto* p = reinterpret_cast<const std::byte*>(s.data());
  return p >= buf.data() && p + s.size() <= buf.data() + buf.size();
}

}  // namespace

TEST_CASE("round trip keeps every kind, order and nesting") {
  const std::string text =
      R"({"_id":"k1","z":null,"f":false,"t":true,"i":-42,"big":9223372036854775807,)"
      R"("small":-9223372036854775808,"u":9223372036854775807,"one":1,"onef":1.0,"neg0":-0.0,)"
      R"("d":3.25,"s":"h\u00e9llo \"q\" \\ \n \u0001 \ud83d\ude00","e":"","ea":[],"eo":{},)"
      R"("arr":[1,[2,[3,{"x":[]}]],{"y":{"z":"deep"}}],"o":{"b":2,"a":1}})";
  const document d = must(document_from_json(text));
  const json::value expected = json::parse(text);
  CHECK(json::value(d.view().to_json()) == expected);
  // Same field order as the input; numbers as written there (a double keeps its point).
  CHECK(json::parse(d.to_json_string()) == expected);
  CHECK(d.to_json_string().find(R"("onef":1.0,"neg0":-0.0,"d":3.25,)") != std::string::npos);

  const auto v = d.view();
  CHECK(v.find("z")->kind() == value_kind::null);
  CHECK(v.find("f")->as_bool() == false);
  CHECK(v.find("t")->as_bool() == true);
  CHECK(v.find("i")->as_int() == -42);
  CHECK(v.find("big")->as_int() == std::numeric_limits<std::int64_t>::max());
  CHECK(v.find("small")->as_int() == std::numeric_limits<std::int64_t>::min());
  CHECK(v.find("u")->kind() == value_kind::integer);
  CHECK(v.find("one")->kind() == value_kind::integer);
  CHECK(v.find("onef")->kind() == value_kind::floating);
  CHECK(v.find("onef")->as_double() == 1.0);
  CHECK(std::signbit(v.find("neg0")->as_double()));
  CHECK(v.find("d")->as_double() == 3.25);
  CHECK(v.find("s")->as_string() == "h\xC3\xA9llo \"q\" \\ \n \x01 \xF0\x9F\x98\x80");
  CHECK(v.find("e")->as_string().empty());
  CHECK(v.find("ea")->size() == 0);
  CHECK(v.find("eo")->size() == 0);
  CHECK(v.find("eo")->empty());

  // A second round trip through text is stable, and 1 / 1.0 keep their kinds.
  const document again = must(document_from_json(d.to_json_string()));
  CHECK(again == d);
  CHECK(again.view().find("onef")->kind() == value_kind::floating);
}

TEST_CASE("encoded bytes are pinned") {
  const document d =
      must(document_from_json(R"({"_id":"a","n":1,"f":1.5,"t":true,"z":null,"l":[false],"o":{}})"));
  // clang-format off
  const auto expected = bytes_of({
      0x07, 0x48, 0, 0, 0, 0x07, 0, 0, 0,           // object, body_len 72, 7 fields
      0x03, 0, '_', 'i', 'd', 0x05, 0x01, 0, 0, 0, 'a',
      0x01, 0, 'n', 0x03, 0x01, 0, 0, 0, 0, 0, 0, 0,
      0x01, 0, 'f', 0x04, 0, 0, 0, 0, 0, 0, 0xF8, 0x3F,
      0x01, 0, 't', 0x02,
      0x01, 0, 'z', 0x00,
      0x01, 0, 'l', 0x06, 0x05, 0, 0, 0, 0x01, 0, 0, 0, 0x01,
      0x01, 0, 'o', 0x07, 0x04, 0, 0, 0, 0, 0, 0, 0,
  });
  // clang-format on
  CHECK(std::vector<std::byte>(d.bytes().begin(), d.bytes().end()) == expected);
  CHECK(d.bytes().size() == 77);
  CHECK(format::check_encoded_document(d.bytes()));
  CHECK(encode(json::value(-2)) == bytes_of({0x03, 0xFE, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}));
  CHECK(encode(json::value(nullptr)) == bytes_of({0x00}));
  CHECK(encode(json::value("")) == bytes_of({0x05, 0, 0, 0, 0}));
}

TEST_CASE("find, find_path, iteration and at") {
  const document d = must(document_from_json(
      R"({"_id":"p","a":{"b":{"c":7},"arr":[10,"x",{"k":true}]},"s":"str"})"));
  const auto v = d.view();
  CHECK(v.find("_id")->as_string() == "p");
  CHECK(!v.find("nope"));
  CHECK(v.find_path("a.b.c")->as_int() == 7);
  CHECK(v.find_path("a.b")->kind() == value_kind::object);
  CHECK(v.find_path("s")->as_string() == "str");
  CHECK(!v.find_path("a.b.c.d"));  // through a non-object
  CHECK(!v.find_path("a.x.c"));
  CHECK(!v.find_path("s.x"));
  CHECK(!v.find_path(""));
  CHECK(!v.find_path("a..b"));
  CHECK(!v.find_path("a.arr.0"));  // arrays are not addressed by dotted paths
  CHECK(v.id() == "p");
  CHECK(d.id() == "p");

  const auto arr = *v.find_path("a.arr");
  REQUIRE(arr.kind() == value_kind::array);
  CHECK(arr.size() == 3);
  CHECK(arr.at(0).as_int() == 10);
  CHECK(arr.at(1).as_string() == "x");
  CHECK(arr.at(2).find("k")->as_bool());
  std::vector<value_kind> kinds;
  for (value_view e : arr.elements()) kinds.push_back(e.kind());
  CHECK(kinds == std::vector{value_kind::integer, value_kind::string, value_kind::object});

  std::vector<std::string> names;
  for (member_view m : v.root().members()) names.emplace_back(m.name);
  CHECK(names == std::vector<std::string>{"_id", "a", "s"});
  CHECK(v.root().size() == 3);
  CHECK(v.root().encoded().size() == d.bytes().size());
  CHECK(v.to_json().at("a").at("b").at("c") == 7);
}

TEST_CASE("views are zero-copy and documents share their buffer") {
  const document d = must(document_from_json(R"({"_id":"zero-copy","s":{"t":"inner"}})"));
  const auto buf = d.bytes();
  CHECK(inside(d.id(), buf));
  CHECK(inside(d.view().find_path("s.t")->as_string(), buf));
  const document copy = d;  // NOLINT: the copy is the point
  CHECK(copy.buffer() == d.buffer());
  CHECK(copy.bytes().data() == d.bytes().data());
  CHECK(copy == d);
  CHECK(!d.empty());
  const document none;
  CHECK(none.empty());
  CHECK(none.bytes().empty());
  CHECK(none == document{});
  CHECK(!(none == d));
}

TEST_CASE("malformed JSON reports offset and Boost's reason") {
  {
    const auto e = must_fail(document_from_json(R"({"_id":"a",})"));
    CHECK(e.code() == errc::document_malformed_json);
    CHECK(e.detail("offset") == "11");
    CHECK(!e.detail("reason").empty());
  }
  {
    const auto e = must_fail(document_from_json(R"({"_id":"a")"));
    CHECK(e.code() == errc::document_malformed_json);
    CHECK(e.detail("offset") == "10");  // needs more input: the end
  }
  {
    const auto e = must_fail(document_from_json(R"({"_id":"a"} x)"));
    CHECK(e.code() == errc::document_malformed_json);
    CHECK(e.detail("offset") == "12");
  }
  {
    const auto e = must_fail(document_from_json(""));
    CHECK(e.code() == errc::document_malformed_json);
    CHECK(e.detail("offset") == "0");
  }
  {  // comments and trailing commas are not JSON
    CHECK(document_from_json(R"({"_id":"a"/*c*/})").code() == errc::document_malformed_json);
    CHECK(document_from_json(R"({"_id":"a","l":[1,]})").code() == errc::document_malformed_json);
    CHECK(document_from_json("{\"_id\":\"\xFF\"}").code() == errc::document_malformed_json);
  }
  {  // an error far into the text (past the first 4 KiB chunk)
    const std::string pad(10000, 'x');
    const std::string text = R"({"_id":"a","p":")" + pad + R"(",?})";
    const auto e = must_fail(document_from_json(text));
    CHECK(e.detail("offset") == std::to_string(text.find('?')));
  }
}

TEST_CASE("duplicate field names are rejected") {
  {
    const std::string text = R"({"_id":"a","x":1,"x":2})";
    const auto e = must_fail(document_from_json(text));
    CHECK(e.code() == errc::document_malformed_json);
    CHECK(e.detail("key") == "x");
    CHECK(e.detail("path") == "x");
    CHECK(e.detail("offset") == std::to_string(text.rfind("\"x\"") + 2));  // the closing quote
  }
  {
    const auto e = must_fail(document_from_json(R"({"_id":"a","l":[{"k":1},{"k":1,"k":2}]})"));
    CHECK(e.detail("key") == "k");
    CHECK(e.detail("path") == "l[1].k");
  }
  CHECK(must_fail(document_from_json(R"({"_id":"a","_id":"b"})")).detail("key") == "_id");
  // The same name in different objects is fine.
  CHECK(document_from_json(R"({"_id":"a","o":{"_id":1},"p":{"o":{"o":2}}})"));
}

TEST_CASE("root must be an object") {
  for (const char* t : {"[1]", "\"s\"", "1", "null", "true"})
    CHECK(document_from_json(t).code() == errc::document_not_object);
  CHECK(encode_document(json::value(1), {}).code() == errc::document_not_object);
}

TEST_CASE("depth limit: exactly at the limit, and one over") {
  document_limits lim;
  lim.max_depth = 3;
  CHECK(document_from_json(R"({"_id":"a","a":{"b":[1]}})", lim));
  {
    const auto e = must_fail(document_from_json(R"({"_id":"a","a":{"b":[[1]]}})", lim));
    CHECK(e.code() == errc::document_too_deep);
    CHECK(e.detail("offset") == "21");  // the fourth bracket
  }
  // Same rule for values built in code, with the path of the offending container.
  const json::value ok = json::parse(R"({"_id":"a","a":{"b":[1]}})");
  CHECK(check_document_shape(ok, lim));
  const json::value deep = json::parse(R"({"_id":"a","a":{"b":[2,[1]]}})");
  const auto r = check_document_shape(deep, lim);
  REQUIRE(!r);
  CHECK(r.code() == errc::document_too_deep);
  CHECK(r.error_value().detail("path") == "a.b[1]");

  // Deep input fails early as too deep, not as malformed.
  const std::string very_deep = R"({"_id":"a","x":)" + std::string(100000, '[');
  CHECK(document_from_json(very_deep).code() == errc::document_too_deep);
  // The default limit is 32 levels.
  std::string d32 = R"({"_id":"a","x":)" + std::string(31, '[') + std::string(31, ']') + "}";
  CHECK(document_from_json(d32));
  std::string d33 = R"({"_id":"a","x":)" + std::string(32, '[') + std::string(32, ']') + "}";
  CHECK(document_from_json(d33).code() == errc::document_too_deep);
}

TEST_CASE("field names") {
  struct bad {
    std::string text, path, name, reason;
  };
  const std::vector<bad> cases = {
      {R"({"_id":"a","":1})", "", "", "empty"},
      {R"({"_id":"a","$x":1})", "$x", "$x", "starts with '$'"},
      {R"({"_id":"a","a.b":1})", "a.b", "a.b", "contains '.'"},
      {R"({"_id":"a","o":{"l":[{"$x":1}]}})", "o.l[0].$x", "$x", "starts with '$'"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.text);
    const auto e = must_fail(document_from_json(c.text));
    CHECK(e.code() == errc::document_field_name_invalid);
    CHECK(e.detail("path") == c.path);
    CHECK(e.detail("name") == c.name);
    CHECK(e.detail("reason") == c.reason);
  }
  CHECK(document_from_json(R"({"_id":"a","a$":1,"_x":{"é":2}})"));

  document_limits lim;  // 256 bytes
  const std::string at = std::string(256, 'n'), over = std::string(257, 'n');
  CHECK(document_from_json(R"({"_id":"a",")" + at + R"(":1})", lim));
  const auto e = must_fail(document_from_json(R"({"_id":"a",")" + over + R"(":1})", lim));
  CHECK(e.code() == errc::document_field_name_invalid);
  CHECK(e.detail("reason") == "too long");
  CHECK(e.detail("limit") == "256");
  CHECK(e.detail("name").size() < 80);  // details stay short

  json::object o{{"_id", "a"}};
  o["bad\xFF"] = 1;
  const auto r = check_document_shape(o, {});
  REQUIRE(!r);
  CHECK(r.code() == errc::document_field_name_invalid);
  CHECK(r.error_value().detail("reason") == "invalid UTF-8");
}

TEST_CASE("numbers out of range") {
  CHECK(document_from_json(R"({"_id":"a","n":9223372036854775807})"));
  CHECK(document_from_json(R"({"_id":"a","n":-9223372036854775808})"));
  for (const char* t : {R"({"_id":"a","o":{"n":[0,9223372036854775808]}})",
                        R"({"_id":"a","o":{"n":[0,-9223372036854775809]}})",
                        R"({"_id":"a","o":{"n":[0,100000000000000000000000]}})",
                        R"({"_id":"a","o":{"n":[0,1e400]}})",
                        R"({"_id":"a","o":{"n":[0,-1e400]}})"}) {
    CAPTURE(t);
    const auto e = must_fail(document_from_json(t));
    CHECK(e.code() == errc::document_number_out_of_range);
    CHECK(e.detail("path") == "o.n[1]");
  }
  CHECK(document_from_json(R"({"_id":"a","n":1e300,"m":1e-400})"));  // underflow is just 0

  json::object o{{"_id", "a"}, {"nan", std::nan("")}};
  CHECK(encode_document(o, {}).code() == errc::document_number_out_of_range);
  // The raw encoder refuses too, leaving its output untouched.
  std::vector<std::byte> out = bytes_of({1, 2});
  CHECK(format::encode_value(json::value(std::uint64_t{1} << 63), out).code() ==
        errc::document_number_out_of_range);
  CHECK(out == bytes_of({1, 2}));
}

TEST_CASE("_id rules") {
  struct bad {
    std::string text, reason;
  };
  const std::vector<bad> cases = {
      {R"({"a":1})", "missing"},
      {R"({"_id":5})", "not a string"},
      {R"({"_id":null})", "not a string"},
      {R"({"_id":""})", "empty"},
      {R"({"_id":"a\u0001b"})", "control character"},
      {R"({"_id":"a\u007f"})", "control character"},
      {R"({"_id":"a\n"})", "control character"},
      {R"({"_id":")" + std::string(129, 'i') + R"("})", "too long"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.text);
    const auto e = must_fail(document_from_json(c.text));
    CHECK(e.code() == errc::document_invalid_id);
    CHECK(e.detail("reason") == c.reason);
  }
  CHECK(document_from_json(R"({"_id":")" + std::string(128, 'i') + R"("})"));
  CHECK(document_from_json(R"({"_id":"ünïcødé 🙂"})"));
}

TEST_CASE("shape rules are reported in priority order") {
  document_limits lim;
  lim.max_depth = 2;
  // too deep beats a bad name
  const json::value v1 = json::parse(R"({"$bad":1,"a":{"b":{}}})");
  CHECK(check_document_shape(v1, lim).code() == errc::document_too_deep);
  // bad name beats a bad number, even when the number comes first
  const json::value v2 = json::parse(R"({"n":18446744073709551615,"$bad":1})");
  CHECK(check_document_shape(v2, lim).code() == errc::document_field_name_invalid);
  // bad number beats a missing _id
  const json::value v3 = json::parse(R"({"n":18446744073709551615})");
  CHECK(check_document_shape(v3, lim).code() == errc::document_number_out_of_range);
  CHECK(check_document_shape(v3, lim).error_value().detail("path") == "n");
  // invalid UTF-8 in a string built in code
  json::object o{{"_id", "a"}, {"s", "\xC3"}};
  const auto r = check_document_shape(o, lim);
  CHECK(r.code() == errc::document_malformed_json);
  CHECK(r.error_value().detail("path") == "s");
}

TEST_CASE("size limit: exactly at the limit, and one over") {
  const std::string text = R"({"_id":"a","s":"0123456789"})";
  const auto size = must(document_from_json(text)).bytes().size();
  document_limits lim;
  lim.max_document_bytes = size;
  CHECK(document_from_json(text, lim));
  lim.max_document_bytes = size - 1;
  const auto e = must_fail(document_from_json(text, lim));
  CHECK(e.code() == errc::document_too_large);
  CHECK(e.detail("size") == std::to_string(size));
  CHECK(e.detail("limit") == std::to_string(size - 1));
}

TEST_CASE("decoder: valid input, and from_bytes") {
  const document d = must(document_from_json(R"({"_id":"a","l":[1,"x",[true]],"o":{"p":null}})"));
  std::vector<std::byte> b(d.bytes().begin(), d.bytes().end());
  auto r = document::from_bytes(b);
  REQUIRE(r);
  CHECK(*r == d);
  CHECK(r->id() == "a");

  // Well-formed encodings that are not documents.
  CHECK(format::check_encoded_value(encode(json::value(5))));
  CHECK(document::from_bytes(encode(json::value(5))).code() == errc::data_corruption);
  CHECK(document::from_bytes(encode(json::parse(R"({"a":1})"))).code() == errc::data_corruption);
  CHECK(document::from_bytes(encode(json::parse(R"({"_id":1})"))).code() == errc::data_corruption);
  CHECK(document::from_bytes({}).code() == errc::data_corruption);
}

TEST_CASE("decoder: every truncation is rejected") {
  const document d = must(document_from_json(
      R"({"_id":"a","i":1,"f":2.5,"s":"str","l":[1,"x",[true,null]],"o":{"p":{}}})"));
  const auto full = d.bytes();
  for (std::size_t n = 0; n < full.size(); ++n) {
    CAPTURE(n);
    const auto r = format::check_encoded_value(full.first(n));
    REQUIRE(!r);
    CHECK(r.code() == errc::data_corruption);
    CHECK(!r.error_value().detail("offset").empty());
  }
}

TEST_CASE("decoder: bad tags, counts, lengths, trailing bytes, depth") {
  const document d = must(document_from_json(R"({"_id":"a","l":[1,2]})"));
  const std::vector<std::byte> good(d.bytes().begin(), d.bytes().end());
  // layout: root hdr 0..8 | 03 00 _id 05 len 'a' (9..19) | 01 00 'l' (20..22) | array at 23
  const std::size_t arr = 23;
  REQUIRE(std::to_integer<int>(good[arr]) == format::tag_array);
  auto offset_of = [](const result<void>& r) { return std::string(r.error_value().detail("offset")); };

  auto b = good;
  b[0] = std::byte{0x08};
  CHECK(offset_of(format::check_encoded_value(b)) == "0");
  b = good;
  b[arr + 9] = std::byte{0xFF};  // first element's tag
  CHECK(offset_of(format::check_encoded_value(b)) == std::to_string(arr + 9));

  b = good;
  b[5] = std::byte{3};  // root count 2 -> 3: runs past body_len
  CHECK(!format::check_encoded_value(b));
  b[5] = std::byte{1};  // root count 2 -> 1: leaves slack
  CHECK(!format::check_encoded_value(b));
  b = good;
  b[arr + 5] = std::byte{1};  // array count 2 -> 1
  CHECK(!format::check_encoded_value(b));
  b[arr + 5] = std::byte{3};
  CHECK(!format::check_encoded_value(b));
  b = good;
  b[arr + 5] = std::byte{0xFF};  // absurd count
  b[arr + 8] = std::byte{0xFF};
  CHECK(!format::check_encoded_value(b));
  b = good;
  b[arr + 1] = std::byte{3};  // body_len smaller than the count field
  CHECK(!format::check_encoded_value(b));
  b = good;
  b[15] = std::byte{0xFF};  // _id string length
  CHECK(!format::check_encoded_value(b));
  b = good;
  b[9] = std::byte{0xFF};  // name length
  CHECK(!format::check_encoded_value(b));

  b = good;
  b.push_back(std::byte{0});
  const auto r = format::check_encoded_value(b);
  CHECK(r.code() == errc::data_corruption);
  CHECK(offset_of(r) == std::to_string(good.size()));

  // Depth: hard_max_depth nested arrays are fine, one more is not.
  auto nested = [](std::size_t levels) {
    json::value v = json::array();
    for (std::size_t i = 1; i < levels; ++i) v = json::array{std::move(v)};
    return v;
  };
  const auto at_max = encode(nested(hard_max_depth));
  CHECK(format::check_encoded_value(at_max));
  CHECK(!format::check_encoded_value(at_max, 3));
  std::vector<std::byte> out;
  CHECK(format::encode_value(nested(hard_max_depth + 1), out).code() == errc::document_too_deep);
  CHECK(out.empty());
  // Build one level too deep by hand: wrap at_max in one more array.
  std::vector<std::byte> over = bytes_of({0x06, 0, 0, 0, 0, 1, 0, 0, 0});
  format::store_u32(over.data() + 1, static_cast<std::uint32_t>(4 + at_max.size()));
  over.insert(over.end(), at_max.begin(), at_max.end());
  CHECK(!format::check_encoded_value(over));
}

namespace {

struct json_gen {
  std::mt19937_64 rng;
  int pick(int n) { return static_cast<int>(rng() % static_cast<std::uint64_t>(n)); }

  std::string str(bool name) {
    static const char* const pieces[] = {"a", "b", "z", "_", "0", "é", "漢", "🙂", " ", "$",
                                         "\"", "\\", "\n", "\x01", "\x7f", "."};
    std::string s;
    const int n = pick(name ? 6 : 12) + (name ? 1 : 0);
    for (int i = 0; i < n; ++i) s += pieces[pick(16)];
    if (name && (s[0] == '$' || s.find('.') != std::string::npos)) s = "n" + std::to_string(rng() % 1000);
    return s;
  }
  json::value scalar() {
    switch (pick(8)) {
      case 0: return nullptr;
      case 1: return pick(2) == 1;
      case 2: return static_cast<std::int64_t>(rng());
      case 3: return static_cast<std::int64_t>(pick(2000) - 1000);
      case 4: {
        double d;
        do d = std::bit_cast<double>(rng());
        while (!std::isfinite(d));
        return d;
      }
      case 5: return pick(1000) / 8.0;
      default: return json::string(str(false));
    }
  }
  json::value any(int depth) {
    if (depth >= 6 || pick(3) == 0) return scalar();
    if (pick(2) == 0) {
      json::array a;
      for (int i = pick(5); i > 0; --i) a.push_back(any(depth + 1));
      return a;
    }
    return object(depth + 1);
  }
  json::object object(int depth) {
    json::object o;
    for (int i = pick(6); i > 0; --i) o[str(true)] = any(depth);
    return o;
  }
  json::object doc() {
    json::object o = object(1);
    o.erase("_id");
    json::object d;
    d["_id"] = "id" + std::to_string(rng() % 100000);
    for (auto& kv : o) d[kv.key()] = kv.value();
    return d;
  }
};

}  // namespace

TEST_CASE("random documents round-trip exactly") {
  json_gen g{std::mt19937_64(12345)};
  for (int i = 0; i < 2000; ++i) {
    const json::object o = g.doc();
    const std::string text = json::serialize(o);
    CAPTURE(text);
    const document d = must(encode_document(o, {}));
    REQUIRE(format::check_encoded_document(d.bytes()));
    CHECK(d.view().to_json() == o);
    // Our text (numbers in their shortest exact form rather than Boost's) reads back to
    // the same bytes: same order, same kinds, same number bits.
    CHECK(must(document_from_json(d.to_json_string())) == d);
    // Through text as well: JSON text -> document -> same bytes.
    const document t = must(document_from_json(text));
    CHECK(t == d);
  }
}

TEST_CASE("random mutations never crash the decoder") {
  json_gen g{std::mt19937_64(777)};
  std::mt19937_64 rng(99);
  int accepted = 0, rejected = 0;
  for (int i = 0; i < 300; ++i) {
    const document d = must(encode_document(g.doc(), {}));
    const std::vector<std::byte> good(d.bytes().begin(), d.bytes().end());
    for (int m = 0; m < 60; ++m) {
      auto b = good;
      const int edits = 1 + static_cast<int>(rng() % 3);
      for (int e = 0; e < edits && !b.empty(); ++e) {
        const std::size_t at = rng() % b.size();
        switch (rng() % 5) {
          case 0: b[at] ^= static_cast<std::byte>(1u << (rng() % 8)); break;
          case 1: b[at] = static_cast<std::byte>(rng()); break;
          case 2: b.insert(b.begin() + static_cast<std::ptrdiff_t>(at), static_cast<std::byte>(rng())); break;
          case 3: b.erase(b.begin() + static_cast<std::ptrdiff_t>(at)); break;
          default: b.resize(at); break;
        }
      }
      if (format::check_encoded_value(b)) {
        ++accepted;
        // Whatever passed must be safe to walk completely.
        (void)value_view(b.data()).to_json();
        if (auto doc = document::from_bytes(b)) {
          (void)doc->to_json_string();
          (void)doc->view().find_path("a.b");
        }
      } else {
        ++rejected;
      }
    }
  }
  MESSAGE("mutations accepted: " << accepted << ", rejected: " << rejected);
  CHECK(rejected > 0);
}

TEST_CASE("numbers leave a document in their shortest exact form, and read back the same") {
  const struct {
    const char* in;
    const char* out;
  } cases[] = {
      {R"({"_id":"a","n":300})", R"({"_id":"a","n":300})"},
      {R"({"_id":"a","n":300.0})", R"({"_id":"a","n":300.0})"},
      {R"({"_id":"a","n":3e2})", R"({"_id":"a","n":300.0})"},
      {R"({"_id":"a","n":0.1})", R"({"_id":"a","n":0.1})"},
      {R"({"_id":"a","n":-2.5e-3})", R"({"_id":"a","n":-0.0025})"},
      {R"({"_id":"a","n":1e300})", R"({"_id":"a","n":1e+300})"},
      {R"({"_id":"a","n":5e-324})", R"({"_id":"a","n":5e-324})"},
      {R"({"_id":"a","n":-0.0})", R"({"_id":"a","n":-0.0})"},
      {R"({"_id":"a","n":123456789012345678})", R"({"_id":"a","n":123456789012345678})"},
      {R"({"_id":"a","s":"tab\there \"q\"","a":[1.5,2,{"x":1E1}]})",
       R"({"_id":"a","s":"tab\there \"q\"","a":[1.5,2,{"x":10.0}]})"},
  };
  for (const auto& c : cases) {
    INFO(c.in);
    const document d = must(document_from_json(c.in));
    CHECK(d.to_json_string() == c.out);
    CHECK(must(document_from_json(d.to_json_string())) == d);
  }
  // Every finite double, by random bit patterns: the text reads back as the same bits and
  // as a double, never as an integer.
  std::uint64_t x = 0x9E3779B97F4A7C15ull;
  int checked = 0;
  for (int i = 0; i < 20000; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    const double v = std::bit_cast<double>(x);
    if (!std::isfinite(v)) continue;
    json::object o;
    o["_id"] = "r";
    o["v"] = v;
    const document d = must(encode_document(json::value(std::move(o)), {}));
    const document again = must(document_from_json(d.to_json_string()));
    REQUIRE(again == d);
    REQUIRE(again.view().find("v")->kind() == value_kind::floating);
    ++checked;
  }
  CHECK(checked > 19000);
}
