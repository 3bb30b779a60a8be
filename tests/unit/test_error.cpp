// Error codes: every code has a name and severity, and docs/errors.md documents each one.
#include <aerodb/error.hpp>
#include <doctest/doctest.h>

#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>

using namespace aerodb;

TEST_CASE("every code has a unique AERO_ name") {
  std::set<std::string_view> names;
  for (const auto& e : errc_table) {
    CHECK(e.name.substr(0, 5) == "AERO_");
    CHECK(names.insert(e.name).second);
    CHECK(&info(e.code) == &e);
  }
}

TEST_CASE("result carries value or error; value() on error is misuse") {
  result<int> good = 7;
  REQUIRE(good);
  CHECK(*good == 7);
  result<int> bad = error(errc::document_not_found, "no such document", {{"_id", "x"}});
  REQUIRE(!bad);
  CHECK(bad.code() == errc::document_not_found);
  CHECK(bad.error_value().detail("_id") == "x");
  CHECK(bad.error_value().level() == severity::error);
  CHECK_THROWS_AS((void)bad.value(), bad_result_access);
  CHECK(bad.error_value().to_string() ==
        "AERO_DOCUMENT_NOT_FOUND (ERROR): no such document [_id=x]");
}

TEST_CASE("docs/errors.md documents every code") {
  const char* root = std::getenv("AERODB_SOURCE_ROOT");
  REQUIRE(root != nullptr);
  std::ifstream in(std::string(root) + "/docs/errors.md");
  REQUIRE(in.good());
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string text = ss.str();
  for (const auto& e : errc_table) {
    INFO(e.name);
    CHECK(text.find("`" + std::string(e.name) + "`") != std::string::npos);
  }
}
