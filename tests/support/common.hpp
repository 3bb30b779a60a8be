// Shared pieces of the behavioural suite: the policy matrix every engine test runs over,
// the schemas the tests use, and a fingerprint of a database's whole visible state.
#pragma once

#include <aerodb/aerodb.hpp>
#include <aerodb/format/wal_format.hpp>
#include "engines.hpp"
#include "counts.hpp"
#include "scale.hpp"
#include <aerodb/testing/fault_injection_fs.hpp>
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>

namespace aerodb_test {

inline const char* user_schema_v1 = R"({"id":"user","version":1,"fields":{
  "_id":{"type":"string","required":true},
  "name":{"type":"string","required":true},
  "age":{"type":"int"},
  "score":{"type":"float"},
  "active":{"type":"bool"},
  "address":{"type":"object","fields":{"city":{"type":"string","required":true},
                                        "zip":{"type":"string"}}},
  "tags":{"type":"array","items":{"type":"string"}}}})";

inline const char* user_schema_v2 = R"({"id":"user","version":2,"fields":{
  "_id":{"type":"string","required":true},
  "name":{"type":"string","required":true},
  "email":{"type":"string","required":true}}})";

inline const char* item_schema_v1 = R"({"id":"item","version":1,"fields":{
  "_id":{"type":"string","required":true},
  "qty":{"type":"int","required":true}}})";

// collection -> _id -> (schema version, JSON text)
using state_map = std::map<std::string, std::map<std::string, std::pair<std::uint32_t, std::string>>>;

template <class View>
state_map dump(const View& view, const std::vector<std::string>& collections) {
  state_map out;
  for (const auto& c : collections) {
    auto& m = out[c];
    auto n = view.for_each(c, [&](const aerodb::versioned_document& d) {
      m[std::string(d.doc.id())] = {d.schema_version, d.doc.to_json_string()};
    });
    if (!n) m.clear();  // the collection does not exist in this view
  }
  return out;
}

template <class Db>
state_map dump(const Db& db) {
  return dump(db.read(), db.collection_names());
}

// Every visible document of every collection, with its schema version and CommitId, as
// one string of encoded bytes: an exact comparison that costs no JSON rendering.
template <class Db>
std::string image_of(const Db& db) {
  std::string out;
  const auto view = db.read();
  for (const auto& c : db.collection_names()) {
    out += c;
    out += '\n';
    auto r = view.for_each(c, [&](const aerodb::versioned_document& d) {
      out += std::to_string(d.schema_version) + ":" + std::to_string(d.committed_at) + ":";
      const auto b = d.doc.bytes();
      out.append(reinterpret_cast<const char*>(b.data()), b.size());
      out += '\n';
    });
    if (!r) FAIL("for_each failed: " << r.error_value().to_string());
  }
  return out;
}

template <class Db>
std::unique_ptr<Db> open_or_fail(const std::string& dir, aerodb::open_options opts) {
  auto r = Db::open(dir, std::move(opts));
  if (!r) FAIL("open failed: " << r.error_value().to_string());
  return std::move(*r);
}

template <class Db>
void setup_users(Db& db) {
  REQUIRE(db.register_schema(user_schema_v1));
  REQUIRE(db.create_collection("users", "user"));
}

// Where the records of a segment file end (the first all-zero record header).
inline std::size_t records_end(const std::vector<std::byte>& seg) {
  if (seg.size() < aerodb::format::segment_header_size) return 0;  // being created: nothing in it yet
  std::size_t at = aerodb::format::segment_header_size;
  while (at + aerodb::format::record_header_size <= seg.size() &&
         std::any_of(seg.begin() + static_cast<std::ptrdiff_t>(at),
                     seg.begin() + static_cast<std::ptrdiff_t>(at + aerodb::format::record_header_size),
                     [](std::byte b) { return b != std::byte{0}; }))
    at += aerodb::format::record_header_size + aerodb::format::load_le<std::uint32_t>(seg.data() + at + 4);
  return std::min(at, seg.size() + 1);  // past the end: a record cut short
}

}  // namespace aerodb_test

