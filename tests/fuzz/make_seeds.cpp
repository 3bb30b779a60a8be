// Writes the seed corpora of the fuzz targets: make_seeds OUT_DIR
//
// OUT_DIR/<target>/<seed> for each target in this directory. The WAL and snapshot seeds
// are files the engine itself writes (aerodb::database over an in-memory
// testing::fault_injection_fs), so they follow the current on-disk format; the others
// are documents, queries and schema definitions, good and bad. Output is deterministic:
// running it again rewrites the same files.
//
// scripts/fuzz.sh runs it into each run's working corpus, so WAL and snapshot seeds are
// always fresh; the committed corpus (tests/fuzz/corpus) is refreshed with
//   <build>/tests/fuzz/make_seeds tests/fuzz/corpus
#include "fuzz_common.hpp"

#include <aerodb/aerodb.hpp>
#include <aerodb/replication.hpp>
#include <aerodb/testing/fault_injection_fs.hpp>

#include <boost/json/parse.hpp>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;
using bytes = std::vector<std::byte>;

fs::path out_root;
std::size_t written = 0;

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "make_seeds: %s\n", what.c_str());
  std::exit(1);
}

template <class T>
T must(aerodb::result<T> r, const char* what) {
  if (!r) die(std::string(what) + ": " + r.error_value().to_string());
  return std::move(r).value();
}
void must(aerodb::result<void> r, const char* what) {
  if (!r) die(std::string(what) + ": " + r.error_value().to_string());
}

void seed(const std::string& target, const std::string& name, std::span<const std::byte> b) {
  if (b.size() > 8192) die("seed " + target + "/" + name + " is larger than 8 KiB");
  const fs::path dir = out_root / target;
  fs::create_directories(dir);
  std::ofstream f(dir / name, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
  if (!f) die("cannot write " + (dir / name).string());
  ++written;
}
void seed(const std::string& target, const std::string& name, std::string_view text) {
  seed(target, name, aerodb::format::as_bytes(text));
}

// Byte 0 of a WAL reader input in files mode, with the checkpoint boundary to read with.
bytes wal_files_input(std::uint8_t checkpoint, const std::vector<bytes>& files) {
  if (checkpoint > 127) die("checkpoint too large for a WAL seed");
  bytes out{static_cast<std::byte>(checkpoint << 1)};
  for (std::size_t i = 0; i < files.size(); ++i) {
    if (i) aerodb::format::put_bytes(out, aerodb_fuzz::file_separator);
    aerodb::format::put_bytes(out, files[i]);
  }
  return out;
}

const char* user_schema = R"({"id":"user","version":1,"fields":{
  "_id":{"type":"string","required":true},
  "name":{"type":"string","required":true},
  "age":{"type":"int"},"score":{"type":"float"},"active":{"type":"bool"},
  "address":{"type":"object","fields":{"city":{"type":"string","required":true},
                                       "zip":{"type":"string"}}},
  "tags":{"type":"array","items":{"type":"string"}}}})";
const char* item_schema = R"({"id":"item","version":1,"fields":{
  "_id":{"type":"string","required":true},"qty":{"type":"int","required":true}}})";

struct engine_dir {
  std::shared_ptr<aerodb::testing::fault_injection_fs> fs =
      std::make_shared<aerodb::testing::fault_injection_fs>();
  std::unique_ptr<aerodb::database> db;

  explicit engine_dir(std::uint64_t segment_bytes) {
    aerodb::open_options o;
    o.fs = fs;
    o.wal_segment_bytes = segment_bytes;
    // Preallocated segments are zero-filled past their records in steps of this size:
    // small steps keep the seeds small.
    o.wal_preallocate_bytes = 1024;
    db = must(aerodb::database::open("db", o), "open");
  }
  std::vector<std::string> names(bool (*pick)(const std::string&)) const {
    std::vector<std::string> out;
    for (auto& n : must(fs->list_dir("db"), "list_dir"))
      if (pick(n)) out.push_back(n);
    return out;
  }
  std::vector<bytes> segments() const {
    std::vector<bytes> out;
    for (auto& n : names([](const std::string& n) {
           return aerodb::format::parse_segment_file_name(n).has_value();
         }))
      out.push_back(fs->contents("db/" + n));
    return out;
  }
  bytes file(const std::string& name) const { return fs->contents("db/" + name); }
};

// A small workload touching every record type.
void workload(aerodb::database& db) {
  must(db.register_schema(user_schema), "schema");
  must(db.create_collection("users", "user"), "collection");
  must(db.create_index("users", "age"), "index");
  must(db.insert("users", 1, R"({"_id":"ada","name":"Ada","age":36,"tags":["math"]})"), "insert");
  must(db.insert("users", 1, R"({"_id":"alan","name":"Alan","score":9.5,"address":{"city":"London"}})"),
       "insert");
  must(db.update("users", "ada", 1, R"({"_id":"ada","name":"Ada Lovelace","age":36,"active":true})"),
       "update");
  aerodb::write_batch batch;
  batch.insert("users", 1, R"({"_id":"grace","name":"Grace","age":85})")
      .remove("users", "alan");
  must(db.commit(batch), "batch");
  must(db.gc(), "gc");
}

void wal_seeds() {
  const std::string t = "fuzz_wal_reader";
  {
    engine_dir d(64u << 20);
    workload(*d.db);
    const auto segs = d.segments();
    seed(t, "engine_one_segment", wal_files_input(0, segs));
    auto torn = segs;
    // Cut inside the last record: first drop the preallocated zeros after the records.
    while (!torn.back().empty() && torn.back().back() == std::byte{0}) torn.back().pop_back();
    torn.back().resize(torn.back().size() - 7);
    seed(t, "engine_torn_tail", wal_files_input(0, torn));
    auto flipped = segs;
    flipped.back()[flipped.back().size() / 2] ^= std::byte{0x10};
    seed(t, "engine_bit_flip", wal_files_input(0, flipped));
    seed(t, "engine_read_past_checkpoint_4", wal_files_input(4, segs));
  }
  {
    engine_dir d(512);  // the smallest segment size: several segments
    workload(*d.db);
    const auto segs = d.segments();
    seed(t, "engine_segments", wal_files_input(0, segs));
    auto header_torn = segs;
    header_torn.push_back(bytes(segs.back().begin(), segs.back().begin() + 20));
    seed(t, "engine_torn_segment_header", wal_files_input(0, header_torn));
    auto missing = segs;
    if (missing.size() > 2) missing.erase(missing.begin() + 1);
    seed(t, "engine_missing_segment", wal_files_input(0, missing));
    auto damaged_early = segs;
    damaged_early.front().resize(damaged_early.front().size() - 3);
    seed(t, "engine_damage_before_later_segment", wal_files_input(0, damaged_early));
  }
  {
    engine_dir d(512);
    workload(*d.db);
    const auto cp = must(d.db->checkpoint(), "checkpoint");
    must(d.db->insert("users", 1, R"({"_id":"edsger","name":"Edsger","age":72})"), "insert");
    seed(t, "engine_after_checkpoint", wal_files_input(static_cast<std::uint8_t>(cp.commit), d.segments()));
  }
  // Program mode (see fuzz_wal_reader.cpp): independent of the byte layout.
  const auto program = [&](const std::string& name, std::uint8_t checkpoint,
                           std::vector<std::uint8_t> ops) {
    bytes b{static_cast<std::byte>((checkpoint << 1) | 1)};
    for (auto o : ops) b.push_back(static_cast<std::byte>(o));
    seed(t, name, b);
  };
  // op bytes: 6*type (+0) record, 6*type+2 skewed record, 3 flip, 4 cut, 5 garbage
  program("program_records", 0, {4, 0, 6, 3, 'a', 'b', 'c', 12, 2, 'x', 'y', 18, 0, 24, 1, 'z', 30, 8, 0, 0, 0, 0, 0, 0, 0, 0});
  program("program_torn", 0, {2, 0, 6, 4, 't', 'e', 's', 't', 12, 4, 'm', 'o', 'r', 'e', 4, 5});
  program("program_garbage_tail", 0, {0, 0, 6, 1, 'a', 18, 1, 'b', 5, 9, 1, 2, 3, 4, 5, 6, 7, 8, 9});
  program("program_flip", 0, {3, 0, 6, 2, 'o', 'k', 6, 2, 'o', 'k', 3, 0x50, 0x01, 6, 1, '!'});
  program("program_skewed_id", 0, {8, 0, 6, 1, 'a', 8, 0xff, 1, 'b', 6, 1, 'c'});
  program("program_unknown_type", 0, {8, 0, 6, 1, 'a', 42, 1, 'b'});
  program("program_checkpoint", 5, {1, 3, 6, 1, 'a', 6, 1, 'b', 6, 1, 'c', 6, 1, 'd', 6, 1, 'e'});
}

void snapshot_seeds() {
  const std::string t = "fuzz_snapshot";
  {
    engine_dir d(64u << 20);
    workload(*d.db);
    must(d.db->register_schema(item_schema), "schema");
    must(d.db->create_collection("items", "item"), "collection");
    must(d.db->create_index("items", "qty"), "index");
    must(d.db->insert("items", 1, R"({"_id":"bolt","qty":7})"), "insert");
    must(d.db->checkpoint(), "checkpoint");
    for (auto& n : d.names(+[](const std::string& n) {
           return n == "CHECKPOINT" || aerodb::format::parse_snapshot_data_file_name(n) ||
                  aerodb::format::parse_snapshot_manifest_file_name(n);
         })) {
      const std::string kind = n == "CHECKPOINT" ? "checkpoint"
                               : n.ends_with(".data") ? "data" : "manifest";
      seed(t, "engine_" + kind, d.file(n));
      if (kind == "data") {
        auto cut = d.file(n);
        cut.resize(cut.size() - 5);
        seed(t, "engine_data_truncated", cut);
      }
    }
  }
  {
    engine_dir d(64u << 20);
    must(d.db->register_schema(item_schema), "schema");
    must(d.db->create_collection("items", "item"), "collection");
    must(d.db->checkpoint(), "checkpoint");
    for (auto& n : d.names(+[](const std::string& n) {
           return aerodb::format::parse_snapshot_data_file_name(n).has_value();
         }))
      seed(t, "engine_data_no_documents", d.file(n));
  }
}

bytes encode(std::string_view json) {
  bytes out;
  must(aerodb::format::encode_value(boost::json::parse(json), out), "encode_value");
  return out;
}

void document_codec_seeds() {
  const std::string t = "fuzz_document_codec";
  seed(t, "doc_small", encode(R"({"_id":"a"})"));
  seed(t, "doc_kinds", encode(R"({"_id":"k","n":null,"f":false,"t":true,"i":-42,"d":2.5,"s":"text"})"));
  seed(t, "doc_nested", encode(R"({"_id":"n","a":[1,[2,[3,{"x":[]}]]],"o":{"p":{"q":{}}}})"));
  seed(t, "doc_unicode", encode(R"({"_id":"\u00e9t\u00e9","name":"\ud83d\ude00","x":"\u0000"})"));
  seed(t, "doc_numbers", encode(R"({"_id":"num","max":9223372036854775807,"min":-9223372036854775808,"tiny":5e-324,"big":1.7976931348623157e308,"neg0":-0.0})"));
  seed(t, "doc_id_not_first", encode(R"({"name":"x","_id":"late"})"));
  seed(t, "doc_id_not_string", encode(R"({"_id":7})"));
  seed(t, "value_array", encode(R"([1,"two",3.0,[],{}])"));
  seed(t, "value_string", encode(R"("just a string")"));
  seed(t, "value_int", encode("12345"));
  // A document whose object repeats `_id` (damage the JSON path cannot produce).
  bytes dup = encode(R"({"_id":"first","_iX":"second"})");
  for (std::size_t i = 0; i + 3 < dup.size(); ++i)
    if (dup[i] == std::byte{'_'} && dup[i + 1] == std::byte{'i'} && dup[i + 2] == std::byte{'X'})
      dup[i + 2] = std::byte{'d'};
  seed(t, "doc_duplicate_id", dup);
}

void json_document_seeds() {
  const std::string t = "fuzz_json_document";
  seed(t, "doc_user", R"({"_id":"ada","name":"Ada","age":36,"score":9.5,"active":true,"address":{"city":"London","zip":"N1"},"tags":["math","poetry"]})");
  seed(t, "doc_kinds", R"({"_id":"k","n":null,"f":false,"i":-1,"u":18446744073709551615,"d":1.0,"e":1e-7,"s":"\u00e9\n\t\""})");
  seed(t, "doc_nested", R"({"_id":"deep","a":{"b":{"c":{"d":[[[[1]]]]}}}})");
  seed(t, "doc_numbers", R"({"_id":"n","x":0.1,"y":123456789012345678,"z":-0.0,"w":1E400,"v":2.2250738585072014e-308})");
  seed(t, "doc_duplicate_key", R"({"_id":"d","a":1,"a":2})");
  seed(t, "doc_bad_field_names", R"({"_id":"f","$x":1,"a.b":2,"c[0]":3,"":4})");
  seed(t, "doc_bad_id", R"({"_id":"\u0001"})");
  seed(t, "doc_no_id", R"({"name":"x"})");
  seed(t, "doc_not_object", R"([1,2,3])");
  seed(t, "doc_malformed", R"({"_id":"x",)");
  seed(t, "doc_whitespace", " \t\n{ \"_id\" : \"ws\" , \"a\" : [ 1 , 2 ] }\r\n ");
  seed(t, "doc_bad_utf8", "{\"_id\":\"a\xc3\x28\"}");
  seed(t, "schema_user", user_schema);
  seed(t, "schema_item", item_schema);
  seed(t, "schema_nested", R"({"id":"n","version":4294967295,"fields":{"_id":{"type":"string","required":true},"m":{"type":"array","items":{"type":"array","items":{"type":"object","fields":{"x":{"type":"float"}}}}}}})");
  seed(t, "schema_no_version", R"({"id":"x","fields":{"_id":{"type":"string","required":true}}})");
  seed(t, "schema_bad_type", R"({"id":"x","version":1,"fields":{"_id":{"type":"string","required":true},"a":{"type":"date"}}})");
  seed(t, "schema_duplicate_key", R"({"id":"x","version":1,"fields":{"_id":{"type":"string","required":true},"a":{"type":"int","type":"bool"}}})");
}

void query_seeds() {
  const std::string t = "fuzz_query_parse";
  seed(t, "doc_example", R"({"collection": "users", "schema_version": 1,
 "filter": {"age": {"$gte": 21, "$lt": 65}, "name": "Ada", "active": {"$eq": true}},
 "sort": {"age": "desc"}, "limit": 50})");
  seed(t, "by_id", R"({"collection":"users","schema_version":1,"filter":{"_id":"ada"},"limit":1})");
  seed(t, "range_folding", R"({"collection":"users","schema_version":1,"filter":{"score":{"$gt":1.5,"$gte":1.5,"$lt":9,"$lte":8.5}},"limit":10})");
  seed(t, "nested_path", R"({"collection":"users","schema_version":1,"filter":{"address.city":{"$eq":"London"}},"sort":{"name":"asc"},"limit":10000})");
  seed(t, "scan", R"({"collection":"users","schema_version":1,"limit":3})");
  seed(t, "no_limit", R"({"collection":"users","schema_version":1})");
  seed(t, "too_large_limit", R"({"collection":"users","schema_version":1,"limit":10001})");
  seed(t, "unknown_key", R"({"collection":"users","where":{},"limit":1})");
  seed(t, "bad_operator", R"({"collection":"users","filter":{"age":{"$ne":3}},"limit":1})");
  seed(t, "duplicate_operator", R"({"collection":"users","filter":{"age":{"$gt":3,"$gt":4}},"limit":1})");
  seed(t, "operator_outside", R"({"collection":"users","filter":{"$gt":1},"limit":1})");
  seed(t, "big_numbers", R"({"collection":"c","schema_version":4294967295,"filter":{"a":9223372036854775807,"b":{"$lt":1e308},"c":{"$gt":18446744073709551615}},"limit":-1})");
  seed(t, "type_mismatch", R"({"collection":"users","schema_version":1,"filter":{"age":"old"},"limit":1})");
  seed(t, "unindexed", R"({"collection":"users","schema_version":1,"filter":{"address.zip":"N1"},"sort":{"tags":"desc"},"limit":1})");
  seed(t, "malformed", R"({"collection":"users",)");
}

// Frames a replica receives after the handshake: the records after the ninth of a store
// set up as fuzz_replication_wire's replica is, from a real primary, then an ack and a
// refusal (which a replica must treat as a halt).
void replication_seeds() {
  namespace repl = aerodb::replication;
  const std::string t = "fuzz_replication_wire";
  auto fs = std::make_shared<aerodb::testing::fault_injection_fs>();
  aerodb::open_options o;
  o.fs = fs;
  o.wal_segment_bytes = 1024;
  o.wal_preallocate_bytes = 512;
  auto primary = aerodb::database::open("/p", o);
  if (!primary) die("replication seeds: " + primary.error_value().to_string());
  (void)(*primary)->register_schema(R"({"id":"rec","version":1,"fields":{"_id":{"type":"string","required":true},"n":{"type":"int"}}})");
  (void)(*primary)->create_collection("recs", "rec");
  (void)(*primary)->create_index("recs", "n");
  for (int i = 0; i < 10; ++i)
    (void)(*primary)->insert("recs", 1, R"({"_id":"r)" + std::to_string(i) + R"(","n":)" + std::to_string(i) + "}");
  (void)(*primary)->remove("recs", "r2");
  (void)(*primary)->gc();
  repl::primary_feed<aerodb::database> feed(**primary);
  repl::hello h{0, 9, 0};
  auto crc = repl::log_source(*fs, "/p").payload_crc_of(9);
  if (!crc) die("replication seeds: " + crc.error_value().to_string());
  h.last_payload_crc = *crc;
  if (!feed.on_hello(h)) die("replication seeds: the handshake failed");
  aerodb::format::byte_buffer records;
  if (!feed.next_frames(records, (*primary)->last_commit_id())) die("replication seeds: no frames");
  seed(t, "records", records);
  auto with_tail = records;
  repl::encode(with_tail, repl::ack{3});
  repl::encode(with_tail, repl::refuse{aerodb::errc::replication_divergence, "seed"});
  seed(t, "records_then_ack_and_refuse", with_tail);
  seed(t, "welcome", repl::encode(repl::welcome{0, 20}));

  // A snapshot bootstrap of that replica: the primary moves on and a checkpoint removes
  // the record after its ninth, so the handshake leads to a bootstrap.
  for (int i = 10; i < 16; ++i)
    (void)(*primary)->insert("recs", 1, R"({"_id":"r)" + std::to_string(i) + R"(","n":)" + std::to_string(i) + "}");
  if (!(*primary)->checkpoint()) die("replication seeds: the checkpoint failed");
  repl::primary_feed<aerodb::database> boot_feed(**primary);
  auto w = boot_feed.on_hello(h);
  if (!w || !boot_feed.bootstrap_pending()) die("replication seeds: no bootstrap after the checkpoint");
  aerodb::format::byte_buffer boot = repl::encode(*w);
  auto shipped = boot_feed.ship_bootstrap([&boot](std::span<const std::byte> b) -> aerodb::result<void> {
    boot.insert(boot.end(), b.begin(), b.end());
    return aerodb::ok();
  });
  if (!shipped) die("replication seeds: " + shipped.error_value().to_string());
  seed(t, "bootstrap", boot);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) die("usage: make_seeds OUT_DIR");
  out_root = argv[1];
  wal_seeds();
  snapshot_seeds();
  document_codec_seeds();
  json_document_seeds();
  query_seeds();
  replication_seeds();
  std::printf("make_seeds: wrote %zu seeds under %s\n", written, out_root.string().c_str());
  return 0;
}
