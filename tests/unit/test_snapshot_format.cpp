// Snapshot data files, manifests and the checkpoint record (format/snapshot_format.hpp):
// round trips, pinned bytes, and the decoders' refusal of every kind of damage —
// truncation at every length, single-bit flips, wrong magic/version/flags, unknown tags,
// entries out of order, a missing or wrong end entry, trailing bytes, and length fields
// that claim more than the input holds (which must not turn into allocations).
#include <aerodb/format/snapshot_format.hpp>
#include <doctest/doctest.h>

#include <boost/json/parse.hpp>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <cstdlib>
#include <new>
#include <string>
#include <vector>

// ---- allocation probe ---------------------------------------------------------------------
// Replaces the global allocation functions (every non-aligned form, so allocation and
// release always pair up, also under ASan) to record the largest single request made
// while a probe is active.
namespace {
std::atomic<bool> probe_active{false};
std::atomic<std::size_t> probe_largest{0};

// Out of line, so that GCC does not pair an inlined malloc with a delete expression and
// report a (false) mismatch.
[[gnu::noinline]] void* probe_alloc(std::size_t n) {
  if (probe_active.load(std::memory_order_relaxed)) {
    std::size_t prev = probe_largest.load(std::memory_order_relaxed);
    while (n > prev && !probe_largest.compare_exchange_weak(prev, n)) {
    }
  }
  return std::malloc(n == 0 ? 1 : n);
}
[[gnu::noinline]] void probe_free(void* p) noexcept { std::free(p); }
}  // namespace

void* operator new(std::size_t n) {
  if (void* p = probe_alloc(n)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n) {
  if (void* p = probe_alloc(n)) return p;
  throw std::bad_alloc();
}
void* operator new(std::size_t n, const std::nothrow_t&) noexcept { return probe_alloc(n); }
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept { return probe_alloc(n); }
void operator delete(void* p) noexcept { probe_free(p); }
void operator delete[](void* p) noexcept { probe_free(p); }
void operator delete(void* p, std::size_t) noexcept { probe_free(p); }
void operator delete[](void* p, std::size_t) noexcept { probe_free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { probe_free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { probe_free(p); }

using namespace aerodb;
namespace fmt = aerodb::format;

namespace {

struct allocation_probe {
  allocation_probe() {
    probe_largest = 0;
    probe_active = true;
  }
  ~allocation_probe() { probe_active = false; }
  std::size_t largest() const { return probe_largest.load(); }
};

fmt::byte_buffer doc(std::string_view json) {
  fmt::byte_buffer out;
  REQUIRE(fmt::encode_value(boost::json::parse(json), out));
  return out;
}

fmt::byte_buffer hex(std::string_view h) {
  fmt::byte_buffer out;
  auto nibble = [](char c) { return c <= '9' ? c - '0' : c - 'a' + 10; };
  std::string digits;
  for (char c : h)
    if (c != ' ') digits += c;
  REQUIRE(digits.size() % 2 == 0);
  for (std::size_t i = 0; i < digits.size(); i += 2)
    out.push_back(static_cast<std::byte>(nibble(digits[i]) * 16 + nibble(digits[i + 1])));
  return out;
}

std::string to_hex(std::span<const std::byte> b) {
  static const char* d = "0123456789abcdef";
  std::string s;
  for (auto x : b) {
    const auto v = std::to_integer<unsigned>(x);
    s += d[v >> 4];
    s += d[v & 15];
  }
  return s;
}

// Everything a decode reported, flattened, to compare round trips.
struct collected {
  fmt::commit_id commit = 0;
  std::vector<std::string> lines;
};

fmt::snapshot_visitor collector(collected& out) {
  fmt::snapshot_visitor v;
  v.on_header = [&out](const fmt::snapshot_header& h) {
    out.commit = h.commit;
    return ok();
  };
  v.on_schema = [&out](const fmt::schema_entry& e) {
    out.lines.push_back("schema " + std::to_string(e.registered_at) + " " + std::string(e.text));
    return ok();
  };
  v.on_collection = [&out](const fmt::collection_entry& e) {
    out.lines.push_back("collection " + std::to_string(e.created_at) + " " + std::string(e.name) +
                        " " + std::string(e.schema_id));
    return ok();
  };
  v.on_index = [&out](const fmt::index_entry& e) {
    out.lines.push_back("index " + std::to_string(e.created_at) + " " + std::string(e.collection) +
                        " " + std::string(e.path));
    return ok();
  };
  v.on_document = [&out](const fmt::document_entry& e) {
    out.lines.push_back("document " + std::to_string(e.committed_at) + " " +
                        std::string(e.collection) + " v" + std::to_string(e.schema_version) + " " +
                        std::string(e.doc_id) + " " + to_hex(e.bytes));
    return ok();
  };
  return v;
}

result<void> decode(std::span<const std::byte> b) { return fmt::read_snapshot_data(b, {}); }

void require_snapshot_corrupt(const result<void>& r, std::string_view reason) {
  REQUIRE_FALSE(r);
  CHECK(r.code() == errc::snapshot_corruption);
  CHECK(r.error_value().detail("reason") == reason);
  CHECK_FALSE(r.error_value().detail("offset").empty());
}

// The tiny snapshot whose bytes are pinned below.
fmt::byte_buffer tiny_snapshot() {
  fmt::snapshot_encoder enc(7);
  REQUIRE(enc.add_schema(1, "{}"));
  REQUIRE(enc.add_collection(2, "c", "s"));
  REQUIRE(enc.add_index(3, "c", "p"));
  REQUIRE(enc.add_document(4, "c", 1, doc(R"({"_id":"a"})")));
  REQUIRE(enc.finish());
  return enc.take_pending();
}

const char* tiny_snapshot_hex =
    "4145524f4442534e 01000000 00000000 0700000000000000"        // header, C = 7
    "01 0100000000000000 02000000 7b7d"                          // schema "{}"
    "02 0200000000000000 0100 63 0100 73"                        // collection c, schema s
    "03 0300000000000000 0100 63 0100 70"                        // index c.p
    "04 0400000000000000 0100 63 01000000 14000000"              // document in c, v1, 20 bytes
    "07 0f000000 01000000 0300 5f6964 05 01000000 61"            //   {"_id":"a"}
    "ff 0400000000000000";                                       // end, 4 entries

// A snapshot with several entries of each kind, for round trips and damage sweeps.
fmt::snapshot_encoder populated_encoder(fmt::commit_id c) {
  fmt::snapshot_encoder enc(c);
  REQUIRE(enc.add_schema(10, R"({"id":"item","version":1})"));
  REQUIRE(enc.add_schema(11, R"({"id":"user","version":1})"));
  REQUIRE(enc.add_schema(12, R"({"id":"user","version":2})"));
  REQUIRE(enc.add_collection(20, "items", "item"));
  REQUIRE(enc.add_collection(21, "users", "user"));
  REQUIRE(enc.add_index(30, "items", "qty"));
  REQUIRE(enc.add_index(31, "users", "address.city"));
  REQUIRE(enc.add_index(32, "users", "age"));
  REQUIRE(enc.add_document(40, "items", 1, doc(R"({"_id":"i1","qty":3})")));
  REQUIRE(enc.add_document(41, "users", 1, doc(R"({"name":"Ann","_id":"u1","tags":["x"]})")));
  REQUIRE(enc.add_document(42, "users", 2, doc(R"({"_id":"u2","name":"Bo","email":"b@x"})")));
  return enc;
}

// Raw builders for damaged files, bypassing the encoder's checks.
struct raw {
  fmt::byte_buffer b;
  std::uint64_t n = 0;
  explicit raw(fmt::commit_id c = 1) { fmt::append_snapshot_header(b, c); }
  raw& schema(std::string_view t) { fmt::append_schema_entry(b, {1, t}); ++n; return *this; }
  raw& collection(std::string_view name) {
    fmt::append_collection_entry(b, {1, name, "s"});
    ++n;
    return *this;
  }
  raw& index(std::string_view c, std::string_view p) {
    fmt::append_index_entry(b, {1, c, p});
    ++n;
    return *this;
  }
  raw& document(std::string_view c, const fmt::byte_buffer& d) {
    fmt::append_document_entry(b, {1, c, 1, d, {}});
    ++n;
    return *this;
  }
  fmt::byte_buffer end() {
    fmt::append_snapshot_end(b, n);
    return b;
  }
};

// Recomputes the trailing CRC32C (manifest and checkpoint), to reach the checks behind it.
void reseal(fmt::byte_buffer& b) {
  const auto body = std::span<const std::byte>(b).first(b.size() - 4);
  fmt::store_le<std::uint32_t>(b.data() + b.size() - 4, crc32c::value(body));
}

fmt::manifest sample_manifest() {
  return {42, {{"snapshot-00000000000000000042.data", 123456, 0xDEADBEEF}, {"extra.bin", 0, 0}}};
}

}  // namespace

// ---- names --------------------------------------------------------------------------------

TEST_CASE("snapshot file names are fixed width and parse back") {
  CHECK(fmt::snapshot_data_file_name(42) == "snapshot-00000000000000000042.data");
  CHECK(fmt::snapshot_manifest_file_name(42) == "snapshot-00000000000000000042.manifest");
  for (std::uint64_t c : {std::uint64_t{0}, std::uint64_t{1}, std::uint64_t{1234567890123},
                          std::numeric_limits<std::uint64_t>::max()}) {
    CHECK(fmt::parse_snapshot_data_file_name(fmt::snapshot_data_file_name(c)) == c);
    CHECK(fmt::parse_snapshot_manifest_file_name(fmt::snapshot_manifest_file_name(c)) == c);
  }
  CHECK(fmt::snapshot_data_file_name(9) < fmt::snapshot_data_file_name(10));
  for (std::string_view bad :
       {"", "snapshot-00000000000000000042.manifest", "snapshot-0000000000000000042.data",
        "snapshot-000000000000000000042.data", "snapshot-0000000000000000004x.data",
        "Snapshot-00000000000000000042.data", "snapshot-99999999999999999999.data",
        "snapshot-00000000000000000042.data.tmp"})
    CHECK_FALSE(fmt::parse_snapshot_data_file_name(bad));
  CHECK_FALSE(fmt::parse_snapshot_manifest_file_name("snapshot-00000000000000000042.data"));
  CHECK(fmt::parse_snapshot_data_file_name("snapshot-18446744073709551615.data") ==
        std::numeric_limits<std::uint64_t>::max());
}

TEST_CASE("valid_snapshot_file_name refuses paths") {
  CHECK(fmt::valid_snapshot_file_name("snapshot-00000000000000000001.data"));
  CHECK(fmt::valid_snapshot_file_name("..."));
  CHECK_FALSE(fmt::valid_snapshot_file_name(""));
  CHECK_FALSE(fmt::valid_snapshot_file_name("."));
  CHECK_FALSE(fmt::valid_snapshot_file_name(".."));
  CHECK_FALSE(fmt::valid_snapshot_file_name("../CHECKPOINT"));
  CHECK_FALSE(fmt::valid_snapshot_file_name("/etc/passwd"));
  CHECK_FALSE(fmt::valid_snapshot_file_name(std::string_view("a\0b", 3)));
  CHECK_FALSE(fmt::valid_snapshot_file_name(std::string(0x10000, 'a')));
  CHECK(fmt::valid_snapshot_file_name(std::string(0xFFFF, 'a')));
}

// ---- data file ----------------------------------------------------------------------------

TEST_CASE("the bytes of a tiny snapshot are pinned") {
  const auto bytes = tiny_snapshot();
  CHECK(to_hex(bytes) == to_hex(hex(tiny_snapshot_hex)));
  collected got;
  REQUIRE(fmt::read_snapshot_data(bytes, collector(got)));
  CHECK(got.commit == 7);
  CHECK(got.lines == std::vector<std::string>{
                         "schema 1 {}", "collection 2 c s", "index 3 c p",
                         "document 4 c v1 a 070f0000000100000003005f69640501000000" "61"});
}

TEST_CASE("snapshot round trip, with the running size and CRC the manifest needs") {
  auto enc = populated_encoder(99);
  // Draining midway must not change the file or its checksum.
  fmt::byte_buffer file = enc.take_pending();
  REQUIRE(enc.add_document(43, "users", 2, doc(R"({"_id":"u3","name":"Cy","email":"c@x"})")));
  REQUIRE(enc.finish());
  CHECK(enc.finished());
  CHECK(enc.entry_count() == 12);
  const auto rest = enc.take_pending();
  file.insert(file.end(), rest.begin(), rest.end());
  CHECK(enc.pending().empty());
  CHECK(enc.file_size() == file.size());
  CHECK(enc.file_crc() == crc32c::value(file));
  CHECK(enc.commit() == 99);

  collected got;
  REQUIRE(fmt::read_snapshot_data(file, collector(got)));
  CHECK(got.commit == 99);
  REQUIRE(got.lines.size() == 12);
  CHECK(got.lines[0] == R"(schema 10 {"id":"item","version":1})");
  CHECK(got.lines[3] == "collection 20 items item");
  CHECK(got.lines[6] == "index 31 users address.city");
  CHECK(got.lines[8].starts_with("document 40 items v1 i1 "));
  CHECK(got.lines[9].starts_with("document 41 users v1 u1 "));  // _id found after another field
  CHECK(got.lines[11].starts_with("document 43 users v2 u3 "));

  // The document bytes handed to the visitor are the encoded document, unchanged.
  std::vector<fmt::byte_buffer> docs;
  fmt::snapshot_visitor v;
  v.on_document = [&](const fmt::document_entry& e) {
    docs.emplace_back(e.bytes.begin(), e.bytes.end());
    return ok();
  };
  REQUIRE(fmt::read_snapshot_data(file, v));
  REQUIRE(docs.size() == 4);
  CHECK(docs[0] == doc(R"({"_id":"i1","qty":3})"));
}

TEST_CASE("an empty snapshot is valid") {
  fmt::snapshot_encoder enc(0);
  REQUIRE(enc.finish());
  const auto bytes = enc.take_pending();
  CHECK(bytes.size() == fmt::snapshot_header_size + fmt::snapshot_end_entry_size);
  collected got;
  REQUIRE(fmt::read_snapshot_data(bytes, collector(got)));
  CHECK(got.lines.empty());
}

TEST_CASE("a visitor's error stops decoding and is returned unchanged") {
  auto enc = populated_encoder(5);
  REQUIRE(enc.finish());
  const auto bytes = enc.take_pending();
  int seen = 0;
  fmt::snapshot_visitor v;
  v.on_collection = [&](const fmt::collection_entry&) -> result<void> {
    ++seen;
    return error(errc::unknown_schema, "no such schema");
  };
  v.on_document = [&](const fmt::document_entry&) -> result<void> {
    FAIL("must not be reached");
    return ok();
  };
  const auto r = fmt::read_snapshot_data(bytes, v);
  REQUIRE_FALSE(r);
  CHECK(r.code() == errc::unknown_schema);
  CHECK(seen == 1);
}

TEST_CASE("every truncation of a snapshot is rejected") {
  auto enc = populated_encoder(3);
  REQUIRE(enc.finish());
  const auto bytes = enc.take_pending();
  for (std::size_t len = 0; len < bytes.size(); ++len) {
    CAPTURE(len);
    const auto r = decode(std::span<const std::byte>(bytes).first(len));
    REQUIRE_FALSE(r);
    CHECK(r.code() == errc::snapshot_corruption);
    CHECK_FALSE(r.error_value().detail("reason").empty());
    CHECK_FALSE(r.error_value().detail("offset").empty());
  }
  require_snapshot_corrupt(decode(std::span<const std::byte>(bytes).first(10)), "truncated header");
  require_snapshot_corrupt(
      decode(std::span<const std::byte>(bytes).first(fmt::snapshot_header_size)),
      "missing end entry");
  require_snapshot_corrupt(decode(std::span<const std::byte>(bytes).first(bytes.size() - 3)),
                           "truncated end entry");
}

TEST_CASE("every bit flip in a data file is caught by the decoder or by verify_file") {
  const auto bytes = tiny_snapshot();
  const fmt::manifest m{7, {fmt::describe_file("snapshot-00000000000000000007.data", bytes)}};
  REQUIRE(fmt::verify_file(m, m.files[0].name, bytes));
  std::size_t decoder_caught = 0, total = 0;
  for (std::size_t bit = 0; bit < bytes.size() * 8; ++bit) {
    auto b = bytes;
    b[bit / 8] ^= static_cast<std::byte>(1u << (bit % 8));
    const auto decoded = decode(b);
    const auto verified = fmt::verify_file(m, m.files[0].name, b);
    CAPTURE(bit);
    CHECK_FALSE(verified);  // CRC32C detects every single-bit error
    if (!verified) CHECK(verified.code() == errc::snapshot_corruption);
    if (!decoded) {
      CHECK(decoded.code() == errc::snapshot_corruption);
      ++decoder_caught;
    }
    ++total;
  }
  MESSAGE("decoder alone rejected " << decoder_caught << " of " << total << " bit flips");
  // Timestamps, the commit and schema_version are free-form; most other bits are checked.
  CHECK(decoder_caught * 2 > total);
}

TEST_CASE("snapshot header: wrong magic, version or flags") {
  const auto good = tiny_snapshot();
  REQUIRE(decode(good));
  auto b = good;
  b[7] = std::byte{'X'};
  require_snapshot_corrupt(decode(b), "bad magic");
  b = good;
  fmt::store_le<std::uint32_t>(b.data() + 8, 2);
  require_snapshot_corrupt(decode(b), "unsupported format version");
  b = good;
  fmt::store_le<std::uint32_t>(b.data() + 8, 0);
  require_snapshot_corrupt(decode(b), "unsupported format version");
  b = good;
  fmt::store_le<std::uint32_t>(b.data() + 12, 1);
  require_snapshot_corrupt(decode(b), "nonzero flags");
  // Another format's magic (a WAL segment header) is not a snapshot.
  const auto wal = fmt::encode_segment_header({1, 1});
  require_snapshot_corrupt(decode(wal), "bad magic");
}

TEST_CASE("unknown entry tags are rejected") {
  for (std::uint8_t tag : {std::uint8_t{0x00}, std::uint8_t{0x05}, std::uint8_t{0x7F},
                           std::uint8_t{0xFE}}) {
    CAPTURE(int(tag));
    raw r;
    r.collection("c");
    r.b.push_back(std::byte{tag});
    fmt::put_le<std::uint64_t>(r.b, 0);
    const auto b = r.end();
    const auto res = decode(b);
    require_snapshot_corrupt(res, "unknown entry tag");
    CHECK(res.error_value().detail("offset") ==
          std::to_string(fmt::snapshot_header_size + fmt::snapshot_collection_fixed + 2));
  }
}

TEST_CASE("entry kinds out of order are rejected") {
  const auto d = doc(R"({"_id":"a"})");
  require_snapshot_corrupt(decode(raw().collection("c").document("c", d).schema("{}").end()),
                           "entry kinds out of order");
  require_snapshot_corrupt(decode(raw().collection("c").index("c", "p").collection("d").end()),
                           "entry kinds out of order");
  require_snapshot_corrupt(decode(raw().collection("c").document("c", d).index("c", "p").end()),
                           "entry kinds out of order");
  require_snapshot_corrupt(decode(raw().collection("c").schema("{}").end()),
                           "entry kinds out of order");
  // The same entries in order are fine.
  CHECK(decode(raw().schema("{}").collection("c").index("c", "p").document("c", d).end()));
}

TEST_CASE("keys out of order or repeated within a kind are rejected") {
  const auto a = doc(R"({"_id":"a"})");
  const auto b = doc(R"({"_id":"b"})");
  require_snapshot_corrupt(decode(raw().collection("b").collection("a").end()),
                           "collections out of order");
  require_snapshot_corrupt(decode(raw().collection("a").collection("a").end()),
                           "collections out of order");
  require_snapshot_corrupt(
      decode(raw().collection("a").collection("b").index("b", "x").index("a", "y").end()),
      "indexes out of order");
  require_snapshot_corrupt(decode(raw().collection("a").index("a", "y").index("a", "x").end()),
                           "indexes out of order");
  require_snapshot_corrupt(decode(raw().collection("a").index("a", "x").index("a", "x").end()),
                           "indexes out of order");
  require_snapshot_corrupt(decode(raw().collection("c").document("c", b).document("c", a).end()),
                           "documents out of order");
  require_snapshot_corrupt(decode(raw().collection("c").document("c", a).document("c", a).end()),
                           "documents out of order");
  require_snapshot_corrupt(
      decode(raw().collection("c").collection("d").document("d", a).document("c", b).end()),
      "documents out of order");
  // Keys restart with each kind, and order is bytewise (unsigned).
  CHECK(decode(raw()
                   .collection("Z")
                   .collection("a")
                   .collection("\xc3\xa9")
                   .index("\xc3\xa9", "z")
                   .document("Z", b)
                   .document("a", a)
                   .document("a", b)
                   .end()));
}

TEST_CASE("references to undeclared collections and empty strings are rejected") {
  const auto a = doc(R"({"_id":"a"})");
  require_snapshot_corrupt(decode(raw().collection("c").index("d", "p").end()),
                           "index of an undeclared collection");
  require_snapshot_corrupt(decode(raw().collection("c").document("d", a).end()),
                           "document of an undeclared collection");
  require_snapshot_corrupt(decode(raw().schema("").end()), "empty schema text");
  require_snapshot_corrupt(decode(raw().collection("").end()), "empty collection name or schema id");
  {
    raw r;
    fmt::append_collection_entry(r.b, {1, "c", ""});
    ++r.n;
    require_snapshot_corrupt(decode(r.end()), "empty collection name or schema id");
  }
  require_snapshot_corrupt(decode(raw().collection("c").index("c", "").end()),
                           "empty index collection or path");
  require_snapshot_corrupt(decode(raw().collection("c").document("", a).end()),
                           "empty document collection");
}

TEST_CASE("invalid documents are rejected") {
  auto bad = doc(R"({"_id":"a","n":1})");
  bad[1] = std::byte{0x7F};  // body_len past the end
  const auto res = decode(raw().collection("c").document("c", bad).end());
  require_snapshot_corrupt(res, "invalid document");
  CHECK_FALSE(res.error_value().detail("cause").empty());
  CHECK(res.error_value().detail("document_offset") == "0");
  require_snapshot_corrupt(decode(raw().collection("c").document("c", doc("[1,2]")).end()),
                           "invalid document");
  require_snapshot_corrupt(decode(raw().collection("c").document("c", {}).end()),
                           "invalid document");
  require_snapshot_corrupt(decode(raw().collection("c").document("c", doc(R"({"x":1})")).end()),
                           "document without a string _id");
  require_snapshot_corrupt(decode(raw().collection("c").document("c", doc(R"({"_id":5})")).end()),
                           "document without a string _id");
  require_snapshot_corrupt(
      decode(raw().collection("c").document("c", doc(R"({"a":{"_id":"x"}})")).end()),
      "document without a string _id");
}

TEST_CASE("encoded_document_id finds the top-level _id only") {
  CHECK(fmt::encoded_document_id(doc(R"({"_id":"x"})")) == "x");
  CHECK(fmt::encoded_document_id(doc(R"({"a":null,"b":true,"c":1,"d":2.5,"e":"s","f":[1,{"_id":1}],
                                          "g":{"_id":"no"},"_id":"yes"})")) == "yes");
  CHECK_FALSE(fmt::encoded_document_id(doc(R"({"_id":null})")));
  CHECK_FALSE(fmt::encoded_document_id(doc("{}")));
  CHECK_FALSE(fmt::encoded_document_id({}));
  // Safe on every prefix (it may be handed damage).
  const auto d = doc(R"({"a":[1,2],"_id":"abc"})");
  for (std::size_t len = 0; len < d.size(); ++len)
    CHECK_FALSE(fmt::encoded_document_id(std::span<const std::byte>(d).first(len)));
}

TEST_CASE("the end entry: missing, wrong count, trailing bytes") {
  {
    raw r;
    r.collection("c");
    auto b = r.b;  // no end entry
    require_snapshot_corrupt(decode(b), "missing end entry");
  }
  for (std::uint64_t wrong : {std::uint64_t{0}, std::uint64_t{2}, ~std::uint64_t{0}}) {
    raw r;
    r.collection("c");
    fmt::append_snapshot_end(r.b, wrong);
    const auto res = decode(r.b);
    require_snapshot_corrupt(res, "end entry count mismatch");
    CHECK(res.error_value().detail("expected") == "1");
    CHECK(res.error_value().detail("actual") == std::to_string(wrong));
  }
  {
    auto b = tiny_snapshot();
    b.push_back(std::byte{0});
    const auto res = decode(b);
    require_snapshot_corrupt(res, "trailing bytes after end entry");
    CHECK(res.error_value().detail("offset") == std::to_string(b.size() - 1));
  }
  {
    // Two end entries: the first one ends the file.
    auto b = tiny_snapshot();
    fmt::append_snapshot_end(b, 5);
    require_snapshot_corrupt(decode(b), "trailing bytes after end entry");
  }
}

TEST_CASE("the allocation probe sees allocations") {
  allocation_probe probe;
  fmt::byte_buffer big(1u << 20);
  CHECK(probe.largest() >= big.size());
}

TEST_CASE("absurd lengths are rejected without allocating from them") {
  std::vector<fmt::byte_buffer> inputs;
  {
    raw r;  // schema text_len = 4 GiB - 1
    r.b.push_back(std::byte{fmt::snapshot_tag_schema});
    fmt::put_le<std::uint64_t>(r.b, 1);
    fmt::put_le<std::uint32_t>(r.b, 0xFFFFFFFFu);
    fmt::put_bytes(r.b, "{}");
    inputs.push_back(r.b);
  }
  {
    raw r;  // document doc_len = 4 GiB - 1
    r.collection("c");
    r.b.push_back(std::byte{fmt::snapshot_tag_document});
    fmt::put_le<std::uint64_t>(r.b, 1);
    fmt::put_le<std::uint16_t>(r.b, 1);
    fmt::put_bytes(r.b, "c");
    fmt::put_le<std::uint32_t>(r.b, 1);
    fmt::put_le<std::uint32_t>(r.b, 0xFFFFFFFFu);
    inputs.push_back(r.b);
  }
  {
    raw r;  // collection name_len = 65535
    r.b.push_back(std::byte{fmt::snapshot_tag_collection});
    fmt::put_le<std::uint64_t>(r.b, 1);
    fmt::put_le<std::uint16_t>(r.b, 0xFFFF);
    inputs.push_back(r.b);
  }
  {
    // A document whose own lengths are absurd, inside a correctly sized entry.
    fmt::byte_buffer d;
    d.push_back(std::byte{fmt::tag_object});
    fmt::put_le<std::uint32_t>(d, 0xFFFFFFF0u);
    fmt::put_le<std::uint32_t>(d, 0xFFFFFFFFu);
    inputs.push_back(raw().collection("c").document("c", d).end());
  }
  allocation_probe probe;
  for (const auto& in : inputs) {
    const auto res = decode(in);
    REQUIRE_FALSE(res);
    CHECK(res.code() == errc::snapshot_corruption);
  }
  CHECK(probe.largest() < 4096);
}

TEST_CASE("the encoder refuses what the decoder would reject, appending nothing") {
  const auto refused = [](const result<void>& r, std::string_view reason) {
    REQUIRE_FALSE(r);
    CHECK(r.code() == errc::internal_bug);
    CHECK(r.error_value().detail("reason") == reason);
  };
  fmt::snapshot_encoder enc(1);
  const auto size0 = enc.pending().size();
  refused(enc.add_schema(1, ""), "empty schema text");
  REQUIRE(enc.add_schema(1, "{}"));
  REQUIRE(enc.add_collection(1, "b", "s"));
  refused(enc.add_schema(1, "{}"), "entry kinds out of order");
  refused(enc.add_collection(1, "a", "s"), "collections not in strictly increasing name order");
  refused(enc.add_collection(1, "b", "s"), "collections not in strictly increasing name order");
  refused(enc.add_collection(1, "", "s"), "empty collection name");
  refused(enc.add_collection(1, "c", ""), "empty schema id");
  refused(enc.add_collection(1, std::string(0x10000, 'z'), "s"),
          "collection name longer than its u16 length field");
  REQUIRE(enc.add_collection(1, "c", "s"));
  refused(enc.add_index(1, "a", "p"), "collection not declared before its indexes and documents");
  refused(enc.add_index(1, "b", ""), "empty index path");
  REQUIRE(enc.add_index(1, "c", "p"));
  refused(enc.add_index(1, "b", "p"), "indexes not in strictly increasing key order");
  refused(enc.add_index(1, "c", "p"), "indexes not in strictly increasing key order");
  // Documents start their own key sequence: ("b", ...) < ("c", "p") does not matter.
  REQUIRE(enc.add_document(1, "b", 1, doc(R"({"_id":"m"})")));
  refused(enc.add_document(1, "b", 1, doc(R"({"_id":"a"})")),
          "documents not in strictly increasing key order");
  refused(enc.add_document(1, "b", 1, doc(R"({"_id":"m"})")),
          "documents not in strictly increasing key order");
  refused(enc.add_document(1, "b", 1, doc(R"({"x":"z"})")), "document without a string _id");
  {
    auto bad = doc(R"({"_id":"z"})");
    bad.push_back(std::byte{0});
    const auto r = enc.add_document(1, "b", 1, bad);
    refused(r, "invalid encoded document");
    CHECK_FALSE(r.error_value().detail("cause").empty());
  }
  refused(enc.add_document(1, "zz", 1, doc(R"({"_id":"z"})")),
          "collection not declared before its indexes and documents");
  refused(enc.add_index(1, "c", "q"), "entry kinds out of order");
  REQUIRE(enc.add_document(1, "c", 1, doc(R"({"_id":"a"})")));
  CHECK(enc.entry_count() == 6);
  REQUIRE(enc.finish());
  refused(enc.finish(), "finish() called twice");
  refused(enc.add_document(1, "c", 1, doc(R"({"_id":"b"})")), "entry added after finish()");
  CHECK(enc.entry_count() == 6);
  CHECK(enc.pending().size() > size0);
  // Whatever was refused left no trace: the file decodes.
  collected got;
  REQUIRE(fmt::read_snapshot_data(enc.pending(), collector(got)));
  CHECK(got.lines.size() == 6);
  CHECK(enc.file_crc() == crc32c::value(enc.pending()));
}

// ---- manifest -----------------------------------------------------------------------------

TEST_CASE("manifest round trip and pinned layout") {
  const auto m = sample_manifest();
  auto enc = fmt::encode_manifest(m);
  REQUIRE(enc);
  const auto& b = *enc;
  const auto prefix = hex(
      "4145524f44424d46 01000000 2a00000000000000 02000000"
      "2200 736e617073686f742d30303030303030303030303030303030303034322e64617461"
      "40e2010000000000 efbeadde"
      "0900 65787472612e62696e 0000000000000000 00000000");
  REQUIRE(b.size() == prefix.size() + 4);
  CHECK(to_hex(std::span<const std::byte>(b).first(prefix.size())) == to_hex(prefix));
  CHECK(fmt::load_le<std::uint32_t>(b.data() + prefix.size()) == crc32c::value(prefix));
  auto back = fmt::decode_manifest(b);
  REQUIRE(back);
  CHECK(*back == m);
  CHECK(fmt::find_file(*back, "extra.bin") == &back->files[1]);
  CHECK(fmt::find_file(*back, "nope") == nullptr);
}

TEST_CASE("every bit flip and every truncation of a manifest is rejected") {
  const auto good = *fmt::encode_manifest(sample_manifest());
  for (std::size_t bit = 0; bit < good.size() * 8; ++bit) {
    auto b = good;
    b[bit / 8] ^= static_cast<std::byte>(1u << (bit % 8));
    const auto r = fmt::decode_manifest(b);
    CAPTURE(bit);
    REQUIRE_FALSE(r);
    CHECK(r.code() == errc::snapshot_corruption);
  }
  for (std::size_t len = 0; len < good.size(); ++len) {
    const auto r = fmt::decode_manifest(std::span<const std::byte>(good).first(len));
    CAPTURE(len);
    REQUIRE_FALSE(r);
    CHECK(r.code() == errc::snapshot_corruption);
  }
  auto longer = good;
  longer.push_back(std::byte{0});
  CHECK_FALSE(fmt::decode_manifest(longer));
}

TEST_CASE("manifest: magic, version, checksum and structure") {
  const auto good = *fmt::encode_manifest(sample_manifest());
  const auto reason = [](const result<fmt::manifest>& r) {
    REQUIRE_FALSE(r);
    CHECK(r.code() == errc::snapshot_corruption);
    return std::string(r.error_value().detail("reason"));
  };
  auto b = good;
  b[0] = std::byte{'a'};
  CHECK(reason(fmt::decode_manifest(b)) == "bad magic");
  b = good;
  fmt::store_le<std::uint32_t>(b.data() + 8, 2);
  CHECK(reason(fmt::decode_manifest(b)) == "unsupported format version");
  b = good;
  b[30] ^= std::byte{1};
  {
    const auto r = fmt::decode_manifest(b);
    CHECK(reason(r) == "checksum mismatch");
    CHECK(r.error_value().detail("expected_crc").starts_with("0x"));
  }
  // With the checksum recomputed, the grammar is still enforced.
  b = good;
  fmt::store_le<std::uint32_t>(b.data() + 20, 1);  // one file, but two entries follow
  reseal(b);
  CHECK(reason(fmt::decode_manifest(b)) == "trailing bytes after file entries");
  b = good;
  fmt::store_le<std::uint32_t>(b.data() + 20, 3);
  reseal(b);
  CHECK(reason(fmt::decode_manifest(b)) == "truncated file entry");
  b = good;
  fmt::store_le<std::uint32_t>(b.data() + 20, 7);  // 7 x 14 bytes do not fit
  reseal(b);
  CHECK(reason(fmt::decode_manifest(b)) == "file count larger than the manifest");
  b = good;
  fmt::store_le<std::uint32_t>(b.data() + 20, 0);
  reseal(b);
  CHECK(reason(fmt::decode_manifest(b)) == "no files");
  {
    fmt::manifest m{1, {{"aaaa", 1, 1}, {"bbbb", 2, 2}}};
    auto e = *fmt::encode_manifest(m);
    // Rename the second file to the first's name.
    const std::size_t second_name = fmt::manifest_files_offset + 2 + 4 + 12 + 2;
    std::memcpy(e.data() + second_name, "aaaa", 4);
    reseal(e);
    CHECK(reason(fmt::decode_manifest(e)) == "duplicate file name");
    std::memcpy(e.data() + second_name, "a/bb", 4);
    reseal(e);
    CHECK(reason(fmt::decode_manifest(e)) == "invalid file name");
  }
  {
    // A name that would leave the directory, written by hand (the encoder refuses it).
    fmt::manifest dots{1, {{"..", 1, 1}}};
    fmt::byte_buffer raw_m;
    fmt::put_bytes(raw_m, "AERODBMF");
    fmt::put_le<std::uint32_t>(raw_m, 1);
    fmt::put_le<std::uint64_t>(raw_m, 1);
    fmt::put_le<std::uint32_t>(raw_m, 1);
    fmt::put_le<std::uint16_t>(raw_m, 2);
    fmt::put_bytes(raw_m, "..");
    fmt::put_le<std::uint64_t>(raw_m, 1);
    fmt::put_le<std::uint32_t>(raw_m, 1);
    fmt::put_le<std::uint32_t>(raw_m, 0);
    reseal(raw_m);
    CHECK(reason(fmt::decode_manifest(raw_m)) == "invalid file name");
    CHECK_FALSE(fmt::encode_manifest(dots));
  }
}

TEST_CASE("manifest: an absurd file count does not allocate") {
  fmt::byte_buffer b;
  fmt::put_bytes(b, "AERODBMF");
  fmt::put_le<std::uint32_t>(b, 1);
  fmt::put_le<std::uint64_t>(b, 1);
  fmt::put_le<std::uint32_t>(b, 0xFFFFFFFFu);
  fmt::put_le<std::uint16_t>(b, 0xFFFF);
  fmt::put_le<std::uint32_t>(b, 0);
  reseal(b);
  allocation_probe probe;
  const auto r = fmt::decode_manifest(b);
  REQUIRE_FALSE(r);
  CHECK(r.error_value().detail("reason") == "file count larger than the manifest");
  CHECK(probe.largest() < 4096);
}

TEST_CASE("the manifest encoder refuses manifests the decoder would reject") {
  for (const auto& m : {fmt::manifest{1, {}}, fmt::manifest{1, {{"", 0, 0}}},
                        fmt::manifest{1, {{"a", 0, 0}, {"a", 1, 1}}},
                        fmt::manifest{1, {{"x/y", 0, 0}}}}) {
    const auto r = fmt::encode_manifest(m);
    REQUIRE_FALSE(r);
    CHECK(r.code() == errc::internal_bug);
  }
}

TEST_CASE("verify_file checks size and checksum against the manifest") {
  fmt::byte_buffer data;
  fmt::put_bytes(data, "the snapshot's bytes");
  const fmt::manifest m{9, {fmt::describe_file("snapshot-00000000000000000009.data", data)}};
  CHECK(m.files[0].size == data.size());
  CHECK(m.files[0].crc == crc32c::value(data));
  REQUIRE(fmt::verify_file(m, "snapshot-00000000000000000009.data", data));

  auto shorter = data;
  shorter.pop_back();
  auto r = fmt::verify_file(m, "snapshot-00000000000000000009.data", shorter);
  REQUIRE_FALSE(r);
  CHECK(r.code() == errc::snapshot_corruption);
  CHECK(r.error_value().detail("reason") == "size mismatch");
  CHECK(r.error_value().detail("file") == "snapshot-00000000000000000009.data");
  CHECK(r.error_value().detail("expected_size") == std::to_string(data.size()));
  CHECK(r.error_value().detail("actual_size") == std::to_string(shorter.size()));

  auto flipped = data;
  flipped[3] ^= std::byte{0x10};
  r = fmt::verify_file(m, "snapshot-00000000000000000009.data", flipped);
  REQUIRE_FALSE(r);
  CHECK(r.code() == errc::snapshot_corruption);
  CHECK(r.error_value().detail("reason") == "checksum mismatch");
  char expected[16];
  std::snprintf(expected, sizeof expected, "0x%08x", static_cast<unsigned>(crc32c::value(data)));
  CHECK(r.error_value().detail("expected_crc") == expected);
  std::snprintf(expected, sizeof expected, "0x%08x", static_cast<unsigned>(crc32c::value(flipped)));
  CHECK(r.error_value().detail("actual_crc") == expected);

  r = fmt::verify_file(m, "other", data);
  REQUIRE_FALSE(r);
  CHECK(r.code() == errc::snapshot_corruption);
  CHECK(r.error_value().detail("reason") == "not listed in the manifest");
  CHECK(r.error_value().detail("file") == "other");
}

// ---- checkpoint ---------------------------------------------------------------------------

TEST_CASE("checkpoint round trip and pinned layout") {
  const fmt::checkpoint_record rec{42, fmt::snapshot_manifest_file_name(42)};
  auto enc = fmt::encode_checkpoint(rec);
  REQUIRE(enc);
  const auto prefix = hex(
      "4145524f44424350 01000000 2a00000000000000 2600"
      "736e617073686f742d30303030303030303030303030303030303034322e6d616e6966657374");
  REQUIRE(enc->size() == prefix.size() + 4);
  CHECK(to_hex(std::span<const std::byte>(*enc).first(prefix.size())) == to_hex(prefix));
  CHECK(fmt::load_le<std::uint32_t>(enc->data() + prefix.size()) == crc32c::value(prefix));
  auto back = fmt::decode_checkpoint(*enc);
  REQUIRE(back);
  CHECK(*back == rec);
}

TEST_CASE("every bit flip and every truncation of a checkpoint is rejected") {
  const auto good = *fmt::encode_checkpoint({7, fmt::snapshot_manifest_file_name(7)});
  for (std::size_t bit = 0; bit < good.size() * 8; ++bit) {
    auto b = good;
    b[bit / 8] ^= static_cast<std::byte>(1u << (bit % 8));
    const auto r = fmt::decode_checkpoint(b);
    CAPTURE(bit);
    REQUIRE_FALSE(r);
    CHECK(r.code() == errc::checkpoint_corruption);
    CHECK_FALSE(r.error_value().detail("reason").empty());
  }
  for (std::size_t len = 0; len < good.size(); ++len) {
    const auto r = fmt::decode_checkpoint(std::span<const std::byte>(good).first(len));
    CAPTURE(len);
    REQUIRE_FALSE(r);
    CHECK(r.code() == errc::checkpoint_corruption);
  }
  auto longer = good;
  longer.push_back(std::byte{0});
  CHECK_FALSE(fmt::decode_checkpoint(longer));
}

TEST_CASE("checkpoint: magic, version, checksum, name") {
  const auto good = *fmt::encode_checkpoint({7, "m"});
  const auto reason = [](const result<fmt::checkpoint_record>& r) {
    REQUIRE_FALSE(r);
    CHECK(r.code() == errc::checkpoint_corruption);
    return std::string(r.error_value().detail("reason"));
  };
  auto b = good;
  b[6] = std::byte{'X'};
  CHECK(reason(fmt::decode_checkpoint(b)) == "bad magic");
  b = good;
  fmt::store_le<std::uint32_t>(b.data() + 8, 9);
  CHECK(reason(fmt::decode_checkpoint(b)) == "unsupported format version");
  b = good;
  b[12] ^= std::byte{4};
  CHECK(reason(fmt::decode_checkpoint(b)) == "checksum mismatch");
  b = good;
  fmt::store_le<std::uint16_t>(b.data() + 20, 0xFFFF);
  reseal(b);
  CHECK(reason(fmt::decode_checkpoint(b)) == "manifest name length does not match the record size");
  b = good;
  fmt::store_le<std::uint16_t>(b.data() + 20, 0);
  reseal(b);
  CHECK(reason(fmt::decode_checkpoint(b)) == "manifest name length does not match the record size");
  b = good;
  b[fmt::checkpoint_name_offset] = std::byte{'/'};
  reseal(b);
  CHECK(reason(fmt::decode_checkpoint(b)) == "invalid manifest name");
  CHECK(reason(fmt::decode_checkpoint({})) == "truncated");

  for (std::string_view bad : {"", ".", "..", "../x", "a/b"}) {
    const auto r = fmt::encode_checkpoint({1, std::string(bad)});
    REQUIRE_FALSE(r);
    CHECK(r.code() == errc::internal_bug);
  }
  CHECK(fmt::checkpoint_file_name == "CHECKPOINT");
  CHECK(fmt::checkpoint_temp_file_name == "CHECKPOINT.tmp");
}

// ---- random damage --------------------------------------------------------------------------

TEST_CASE("random multi-byte damage never crashes a decoder (run under ASan/UBSan)") {
  auto enc = populated_encoder(11);
  REQUIRE(enc.finish());
  const auto data = enc.take_pending();
  const auto man = *fmt::encode_manifest(sample_manifest());
  const auto cp = *fmt::encode_checkpoint({11, fmt::snapshot_manifest_file_name(11)});
  std::uint64_t state = 0x9E3779B97F4A7C15ull;
  const auto next = [&state] {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
  };
  const auto mutate = [&](fmt::byte_buffer b) {
    const auto edits = 1 + next() % 4;
    for (std::uint64_t i = 0; i < edits && !b.empty(); ++i) {
      const auto at = next() % b.size();
      switch (next() % 4) {
        case 0: b[at] = static_cast<std::byte>(next()); break;
        case 1: b.resize(at); break;
        case 2: b.insert(b.begin() + static_cast<std::ptrdiff_t>(at), static_cast<std::byte>(next())); break;
        default: b[at] = std::byte{0xFF}; break;
      }
    }
    return b;
  };
  std::size_t data_accepted = 0;
  for (int i = 0; i < 3000; ++i) {
    const auto d = mutate(data);
    if (const auto r = decode(d); r) ++data_accepted;
    else CHECK(r.code() == errc::snapshot_corruption);
    auto m = mutate(man);
    if (m.size() >= 4 && next() % 2) reseal(m);  // reach past the checksum half the time
    const auto rm = fmt::decode_manifest(m);
    if (!rm) CHECK(rm.code() == errc::snapshot_corruption);
    auto c = mutate(cp);
    if (c.size() >= 4 && next() % 2) reseal(c);
    const auto rc = fmt::decode_checkpoint(c);
    if (!rc) CHECK(rc.code() == errc::checkpoint_corruption);
  }
  MESSAGE("mutated data files still accepted (free-form fields): " << data_accepted);
}
