// Bad input: each rejection has its own case, which checks the error code AND that the
// database did not change (same visible state, same last CommitId, not one file
// operation).
#include "support/common.hpp"

#include <cerrno>

using namespace aerodb;
using namespace aerodb_test;

namespace {

// A database with a users collection and one document, over an in-memory file system.
template <class Db>
struct fixture {
  std::shared_ptr<testing::fault_injection_fs> fs = std::make_shared<testing::fault_injection_fs>();
  std::unique_ptr<Db> db;

  fixture() {
    open_options o;
    o.fs = fs;
    db = open_or_fail<Db>("/db", o);
    setup_users(*db);
    REQUIRE(db->insert("users", 1, R"({"_id":"present","name":"P","age":1})"));
  }

  // Runs `op`, expects `code`, and checks nothing changed.
  template <class Op>
  error expect_rejected(errc code, Op&& op) {
    const auto before = dump(*db);
    const auto last = db->last_commit_id();
    const auto ops = fs->op_count();
    auto r = op(*db);
    REQUIRE_FALSE(r);
    const error e = r.error_value();
    CHECK_MESSAGE(e.code() == code, e.to_string());
    CHECK(dump(*db) == before);
    CHECK(db->last_commit_id() == last);
    CHECK(fs->op_count() == ops);
    return e;
  }

  error insert_rejected(errc code, std::string json, std::uint32_t version = 1) {
    return expect_rejected(code, [&](Db& d) { return d.insert("users", version, json); });
  }
};

}  // namespace

TEST_CASE_TEMPLATE("malformed JSON", Db, AERODB_ENGINES) {
  fixture<Db> f;
  auto e = f.insert_rejected(errc::document_malformed_json, R"({"_id":"x","name":)");
  CHECK_FALSE(e.detail("offset").empty());
  f.insert_rejected(errc::document_malformed_json, R"({"_id":"x" "name":"y"})");
  f.insert_rejected(errc::document_malformed_json, "");
  f.insert_rejected(errc::document_not_object, R"(["_id","x"])");
}

TEST_CASE_TEMPLATE("each schema rule rejects with its path", Db, AERODB_ENGINES) {
  fixture<Db> f;
  auto rule = [&](const char* json, const char* path, const char* which) {
    auto e = f.insert_rejected(errc::schema_validation_failed, json);
    CHECK(e.detail("path") == path);
    CHECK(e.detail("rule") == which);
  };
  rule(R"({"_id":"x","name":"n","extra":1})", "extra", "undeclared_field");
  rule(R"({"_id":"x"})", "name", "missing_required");
  rule(R"({"_id":"x","name":null})", "name", "null_value");
  rule(R"({"_id":"x","name":"n","age":null})", "age", "null_value");
  rule(R"({"_id":"x","name":"n","age":1.5})", "age", "type_mismatch");
  rule(R"({"_id":"x","name":"n","age":"1"})", "age", "type_mismatch");
  rule(R"({"_id":"x","name":5})", "name", "type_mismatch");
  rule(R"({"_id":"x","name":"n","active":1})", "active", "type_mismatch");
  rule(R"({"_id":"x","name":"n","score":"1.5"})", "score", "type_mismatch");
  rule(R"({"_id":"x","name":"n","address":"Paris"})", "address", "type_mismatch");
  rule(R"({"_id":"x","name":"n","address":{}})", "address.city", "missing_required");
  rule(R"({"_id":"x","name":"n","address":{"city":"P","planet":"E"}})", "address.planet", "undeclared_field");
  rule(R"({"_id":"x","name":"n","tags":"t"})", "tags", "type_mismatch");
  rule(R"({"_id":"x","name":"n","tags":["a","b",3]})", "tags[2]", "type_mismatch");
  rule(R"({"_id":"x","name":"n","tags":["a",null]})", "tags[1]", "null_value");
  // float accepts integers; int rejects nothing but non-integers.
  CHECK(f.db->insert("users", 1, R"({"_id":"ok","name":"n","score":2})"));
}

TEST_CASE_TEMPLATE("unknown schema, schema version, collection", Db, AERODB_ENGINES) {
  fixture<Db> f;
  f.expect_rejected(errc::unknown_schema, [](Db& d) { return d.create_collection("c2", "nope"); });
  f.insert_rejected(errc::unknown_schema_version, R"({"_id":"x","name":"n"})", 7);
  f.insert_rejected(errc::schema_version_required, R"({"_id":"x","name":"n"})", 0);
  f.expect_rejected(errc::collection_unknown,
                    [](Db& d) { return d.insert("nope", 1, R"({"_id":"x","name":"n"})"); });
  f.expect_rejected(errc::collection_unknown, [](Db& d) { return d.remove("nope", "x"); });
  f.expect_rejected(errc::collection_invalid_name, [](Db& d) { return d.create_collection("a b", "user"); });
  f.expect_rejected(errc::collection_exists, [](Db& d) { return d.create_collection("users", "user"); });
}

TEST_CASE_TEMPLATE("schema definitions: invalid, immutable", Db, AERODB_ENGINES) {
  fixture<Db> f;
  f.expect_rejected(errc::schema_immutable, [](Db& d) { return d.register_schema(user_schema_v1); });
  f.expect_rejected(errc::schema_invalid, [](Db& d) {
    return d.register_schema(R"({"id":"s","version":1,"fields":{"_id":{"type":"int","required":true}}})");
  });
  f.expect_rejected(errc::schema_version_required, [](Db& d) {
    return d.register_schema(R"({"id":"s","fields":{"_id":{"type":"string","required":true}}})");
  });
  f.expect_rejected(errc::schema_invalid, [](Db& d) { return d.register_schema("{not json"); });
}

TEST_CASE_TEMPLATE("duplicate insert and update of a missing document", Db, AERODB_ENGINES) {
  fixture<Db> f;
  auto e = f.insert_rejected(errc::document_exists, R"({"_id":"present","name":"again"})");
  CHECK(e.detail("_id") == "present");
  f.expect_rejected(errc::document_not_found, [](Db& d) {
    return d.update("users", "absent", 1, R"({"_id":"absent","name":"n"})");
  });
  f.expect_rejected(errc::document_id_immutable, [](Db& d) {
    return d.update("users", "present", 1, R"({"_id":"other","name":"n"})");
  });
}

TEST_CASE_TEMPLATE("document limits: size, depth, field names", Db, AERODB_ENGINES) {
  fixture<Db> f;
  const std::string big(document_limits{}.max_document_bytes, 'x');
  auto e = f.insert_rejected(errc::document_too_large, R"({"_id":"x","name":")" + big + R"("})");
  CHECK_FALSE(e.detail("limit").empty());

  std::string deep = R"({"_id":"x","name":"n","address":)";
  for (int i = 0; i < 40; ++i) deep += R"({"a":)";
  deep += "1";
  for (int i = 0; i < 40; ++i) deep += "}";
  deep += "}";
  f.insert_rejected(errc::document_too_deep, deep);

  f.insert_rejected(errc::document_field_name_invalid, R"({"_id":"x","name":"n","a.b":1})");
  f.insert_rejected(errc::document_field_name_invalid, R"({"_id":"x","name":"n","$gt":1})");
  f.insert_rejected(errc::document_field_name_invalid,
                    R"({"_id":"x","name":"n",")" + std::string(300, 'f') + R"(":1})");
}

TEST_CASE_TEMPLATE("invalid _id", Db, AERODB_ENGINES) {
  fixture<Db> f;
  f.insert_rejected(errc::document_invalid_id, R"({"name":"n"})");
  f.insert_rejected(errc::document_invalid_id, R"({"_id":5,"name":"n"})");
  f.insert_rejected(errc::document_invalid_id, R"({"_id":"","name":"n"})");
  f.insert_rejected(errc::document_invalid_id, R"({"_id":")" + std::string(200, 'i') + R"(","name":"n"})");
  f.insert_rejected(errc::document_invalid_id, "{\"_id\":\"a\\u0001b\",\"name\":\"n\"}");
  f.expect_rejected(errc::document_invalid_id, [](Db& d) { return d.remove("users", ""); });
  // An _id argument that is not UTF-8 names no document (a document's _id is a JSON
  // string), and nothing that is not UTF-8 reaches the log (format.md §5.2).
  for (const std::string& bad : {std::string("\xff\xfe"), std::string("a\xc3"), std::string("\xed\xa0\x80")}) {
    CAPTURE(bad);
    auto e = f.expect_rejected(errc::document_invalid_id, [&](Db& d) { return d.remove("users", bad); });
    CHECK(e.detail("reason") == "not valid UTF-8");
    f.expect_rejected(errc::document_invalid_id, [&](Db& d) {
      return d.update("users", bad, 1, R"({"_id":"present","name":"n"})");
    });
  }
}

TEST_CASE_TEMPLATE("an index path that is not UTF-8 is refused", Db, AERODB_ENGINES) {
  fixture<Db> f;
  f.expect_rejected(errc::index_invalid_field, [](Db& d) { return d.create_index("users", "\xff\xff"); });
  f.expect_rejected(errc::index_invalid_field, [](Db& d) { return d.create_index("users", "address.\xc0\xaf"); });
}

TEST_CASE_TEMPLATE("a batch larger than one log record is refused before anything is written", Db, AERODB_ENGINES) {
  fixture<Db> f;
  open_options big;
  big.fs = f.fs;
  big.limits.max_document_bytes = 8u << 20;
  f.db.reset();
  f.db = open_or_fail<Db>("/db", big);
  // Nine documents of a little over 7.5 MiB: a body of about 68 MiB.
  const std::string name(7'600'000, 'n');
  auto e = f.expect_rejected(errc::wal_record_too_large, [&](Db& d) {
    write_batch b;
    for (int i = 0; i < 9; ++i)
      b.insert("users", 1, R"({"_id":"big-)" + std::to_string(i) + R"(","name":")" + name + R"(","age":1})");
    return d.commit(b);
  });
  CHECK(e.detail("limit") == std::to_string(format::max_record_body));
  CHECK(std::stoull(std::string(e.detail("bytes"))) > format::max_record_body);
  // Eight of them fit in one record, and survive a reopen.
  write_batch fits;
  for (int i = 0; i < 8; ++i)
    fits.insert("users", 1, R"({"_id":"big-)" + std::to_string(i) + R"(","name":")" + name + R"(","age":1})");
  REQUIRE(f.db->commit(fits));
  f.db.reset();
  f.db = open_or_fail<Db>("/db", big);
  CHECK(f.db->read().get("users", "big-7")->has_value());
}

TEST_CASE_TEMPLATE("a batch with one invalid document applies nothing", Db, AERODB_ENGINES) {
  fixture<Db> f;
  auto batch_with = [](std::string bad) {
    write_batch b;
    b.insert("users", 1, R"({"_id":"b1","name":"one"})")
        .update("users", "present", 1, R"({"_id":"present","name":"changed"})")
        .insert("users", 1, std::move(bad))
        .insert("users", 1, R"({"_id":"b4","name":"four"})");
    return b;
  };
  auto e = f.expect_rejected(errc::schema_validation_failed, [&](Db& d) {
    return d.commit(batch_with(R"({"_id":"b3","name":3})"));
  });
  CHECK(e.detail("batch_op") == "2");
  // Found only at commit time (the _id exists): still nothing applied.
  e = f.expect_rejected(errc::document_exists, [&](Db& d) {
    write_batch b;
    b.insert("users", 1, R"({"_id":"b1","name":"one"})")
        .remove("users", "absent")
        .insert("users", 1, R"({"_id":"present","name":"dup"})");
    return d.commit(b);
  });
  CHECK(e.detail("batch_op") == "2");
  f.expect_rejected(errc::batch_empty, [](Db& d) { return d.commit(write_batch{}); });
  f.expect_rejected(errc::batch_duplicate_key, [](Db& d) {
    write_batch b;
    b.insert("users", 1, R"({"_id":"z","name":"1"})").remove("users", "z");
    return d.commit(b);
  });
}

TEST_CASE_TEMPLATE("opening a locked directory", Db, AERODB_ENGINES) {
  fixture<Db> f;
  open_options o;
  o.fs = f.fs;
  const auto before = dump(*f.db);
  auto second = Db::open("/db", o);
  REQUIRE_FALSE(second);
  CHECK(second.code() == errc::storage_locked);
  CHECK(dump(*f.db) == before);
  CHECK(f.db->insert("users", 1, R"({"_id":"still","name":"writable"})"));
}

TEST_CASE_TEMPLATE("after a failed fsync the instance refuses writes; reopening recovers", Db, AERODB_ENGINES) {
  fixture<Db> f;
  const auto before = dump(*f.db);
  const auto last = f.db->last_commit_id();
  // The next mutating operations are the record's append (op n+1) and its fsync (n+2).
  f.fs->fail_op(f.fs->op_count() + 2, EIO);
  auto r = f.db->insert("users", 1, R"({"_id":"lost","name":"n"})");
  REQUIRE_FALSE(r);
  CHECK(r.code() == errc::wal_fsync_failed);
  CHECK(r.error_value().level() == severity::fatal);
  CHECK_FALSE(f.db->accepts_writes());
  // Not acknowledged, not visible.
  CHECK(dump(*f.db) == before);
  CHECK(f.db->last_commit_id() == last);

  const auto ops = f.fs->op_count();
  auto again = f.db->insert("users", 1, R"({"_id":"later","name":"n"})");
  CHECK(again.code() == errc::storage_read_only);
  CHECK(f.db->remove("users", "present").code() == errc::storage_read_only);
  CHECK(f.db->register_schema(item_schema_v1).code() == errc::storage_read_only);
  CHECK(f.fs->op_count() == ops);
  CHECK(dump(*f.db) == before);

  // Reads go on.
  CHECK(f.db->read().get("users", "present")->has_value());

  f.db.reset();
  open_options o;
  o.fs = f.fs;
  auto reopened = open_or_fail<Db>("/db", o);
  CHECK(reopened->accepts_writes());
  // The record was written before the failed fsync; whether it survives is for the log to
  // say. Here the file system kept it (no crash), so recovery finds it: never acknowledged,
  // but durable now, which the spec allows (the log decides).
  CHECK(reopened->last_commit_id() >= last);
  CHECK(reopened->insert("users", 1, R"({"_id":"after","name":"n"})"));
}

TEST_CASE_TEMPLATE("open options out of range are refused before touching the directory", Db, AERODB_ENGINES) {
  auto fs = std::make_shared<testing::fault_injection_fs>();
  auto bad = [&](auto mutate, const char* option) {
    open_options o;
    o.fs = fs;
    mutate(o);
    auto r = Db::open("/db", o);
    REQUIRE_FALSE(r);
    CHECK(r.code() == errc::config_invalid);
    CHECK(r.error_value().detail("option") == option);
    CHECK(fs->op_count() == 0);
  };
  // An _id longer than the log's 16-bit length would otherwise be cut when logged.
  bad([](open_options& o) { o.limits.max_id_bytes = 100'000; }, "limits.max_id_bytes");
  bad([](open_options& o) { o.wal_segment_bytes = 0; }, "wal_segment_bytes");
  bad([](open_options& o) { o.max_batch_ops = 0; }, "max_batch_ops");
  bad([](open_options& o) { o.limits.max_depth = 1000; }, "limits.max_depth");
}

TEST_CASE_TEMPLATE("field names with brackets are refused (error paths stay unambiguous)", Db, AERODB_ENGINES) {
  fixture<Db> f;
  f.insert_rejected(errc::document_field_name_invalid, R"({"_id":"x","name":"n","a[0]":1})");
  f.expect_rejected(errc::index_invalid_field, [](Db& d) { return d.create_index("users", "tags[0]"); });
  f.expect_rejected(errc::index_invalid_field,
                    [](Db& d) { return d.create_index("users", std::string(2000, 'a')); });
}
