// The `aerodb` tool on real directories: each command's output and exit code, and that no
// command changes a byte of the directory (docs/cli.md).
#include <aerodb/aerodb.hpp>
#include <aerodb/format/snapshot_format.hpp>
#include <aerodb/format/wal_format.hpp>
#include <aerodb/io/posix_fs.hpp>
#include <doctest/doctest.h>

#include <boost/json.hpp>

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

using namespace aerodb;
namespace fs = std::filesystem;

namespace {

struct run_result {
  int code = -1;
  std::string out;  // stdout and stderr together
};

std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

// Runs the tool with `args`; its stderr joins the output unless `with_stderr` is false.
run_result run_cli(const std::string& args, bool with_stderr = true) {
  const char* cli = std::getenv("AERODB_CLI");
  REQUIRE_MESSAGE(cli != nullptr, "AERODB_CLI names the tool (meson test sets it)");
  run_result r;
  FILE* p = ::popen((shell_quote(cli) + " " + args + (with_stderr ? " 2>&1" : " 2>/dev/null")).c_str(), "r");
  REQUIRE(p != nullptr);
  std::array<char, 4096> buf{};
  std::size_t n = 0;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
  const int status = ::pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

// Every file's bytes, by name: what "changes nothing" is checked against.
std::map<std::string, std::string> snapshot_files(const fs::path& dir) {
  std::map<std::string, std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    std::ifstream in(e.path(), std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    out[e.path().filename().string()] = s.str();
  }
  return out;
}

void flip_bit(const fs::path& file, std::uint64_t byte, int bit) {
  std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
  REQUIRE(f);
  f.seekg(static_cast<std::streamoff>(byte));
  char c = 0;
  f.read(&c, 1);
  c = static_cast<char>(c ^ (1 << bit));
  f.seekp(static_cast<std::streamoff>(byte));
  f.write(&c, 1);
}

// Every document of `collection` in the store at `dir`, in _id order: schema version and
// encoded bytes, so that equal lists mean byte-for-byte equal documents.
std::vector<std::pair<std::uint32_t, std::string>> documents_of(const std::string& dir,
                                                                const std::string& collection) {
  auto db = database::open(dir);
  REQUIRE(db);
  std::vector<std::pair<std::uint32_t, std::string>> out;
  REQUIRE((*db)->read().for_each(collection, [&](const versioned_document& d) {
    const auto b = d.doc.bytes();
    out.emplace_back(d.schema_version, std::string(reinterpret_cast<const char*>(b.data()), b.size()));
  }));
  return out;
}

// A store with a checkpoint and log records on both sides of it, closed.
struct store_dir {
  fs::path root;
  fs::path dir;
  commit_id checkpoint = 0;
  commit_id last = 0;

  store_dir() {
    char tmpl[] = "/tmp/aerodb-cli-XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    root = tmpl;
    dir = root / "db";
    auto db = database::open(dir.string());
    REQUIRE(db);
    REQUIRE((*db)->register_schema(
        R"({"id":"user","version":1,"fields":{"_id":{"type":"string","required":true},"name":{"type":"string","required":true},"age":{"type":"int","required":false}}})"));
    REQUIRE((*db)->create_collection("users", "user"));
    REQUIRE((*db)->create_index("users", "age"));
    for (int i = 0; i < 20; ++i)
      REQUIRE((*db)->insert("users", 1, R"({"_id":"u)" + std::to_string(i) + R"(","name":"N","age":)" + std::to_string(i) + "}"));
    auto cp = (*db)->checkpoint();
    REQUIRE(cp);
    checkpoint = cp->commit;
    for (int i = 20; i < 25; ++i)
      REQUIRE((*db)->insert("users", 1, R"({"_id":"u)" + std::to_string(i) + R"(","name":"Ñandú \"q\"","age":)" + std::to_string(i) + "}"));
    REQUIRE((*db)->remove("users", "u3"));
    last = (*db)->last_commit_id();
  }
  ~store_dir() { fs::remove_all(root); }
  std::string arg() const { return shell_quote(dir.string()); }
};

}  // namespace

TEST_CASE("aerodb verify passes on a clean store and changes nothing") {
  store_dir s;
  const auto before = snapshot_files(s.dir);
  auto r = run_cli("verify " + s.arg());
  CHECK_MESSAGE(r.code == 0, r.out);
  CHECK(r.out.find("ok: ") != std::string::npos);
  CHECK(r.out.find("checkpoint at CommitId " + std::to_string(s.checkpoint)) != std::string::npos);
  CHECK(r.out.find("last CommitId " + std::to_string(s.last)) != std::string::npos);
  CHECK(snapshot_files(s.dir) == before);
}

TEST_CASE("aerodb verify --progress prints recovery's phases in order on stderr") {
  store_dir s;
  const auto before = snapshot_files(s.dir);
  auto r = run_cli("verify --progress " + s.arg());
  CHECK_MESSAGE(r.code == 0, r.out);
  std::size_t at = 0;
  for (const char* phase : {"snapshot read", "snapshot load", "log replay", "cleanup", "index build"})
    for (const char* event : {" begin 0/", " end "}) {
      const auto found = r.out.find(std::string("recovery: ") + phase + event, at);
      CHECK_MESSAGE(found != std::string::npos, phase << event << " in order in:\n" << r.out);
      if (found != std::string::npos) at = found;
    }
  CHECK(r.out.find("recovery: loaded checkpoint " + std::to_string(s.checkpoint)) != std::string::npos);
  CHECK(r.out.find("ok: ") != std::string::npos);
  // Progress goes to stderr only: stdout is what verify prints without it.
  CHECK(run_cli("verify --progress " + s.arg(), false).out == run_cli("verify " + s.arg(), false).out);
  CHECK(snapshot_files(s.dir) == before);
}

TEST_CASE("aerodb verify fails with the file and byte offset on a flipped bit in each kind of file") {
  store_dir s;
  const auto clean = snapshot_files(s.dir);
  std::vector<std::string> names;
  for (const auto& [name, bytes] : clean)
    if (!bytes.empty()) names.push_back(name);  // the LOCK file is empty
  std::map<std::string, int> kinds;
  for (const auto& name : names) {
    const std::string kind = format::parse_segment_file_name(name) ? "segment"
                             : name == "CHECKPOINT"                 ? "checkpoint"
                             : name.find(".manifest") != std::string::npos ? "manifest"
                                                                            : "snapshot data";
    const std::uint64_t size = clean.at(name).size();
    // A bit in the middle of what the file holds: for a segment, inside its records.
    std::uint64_t at = size / 2;
    if (kind == "segment") {
      std::uint64_t end = size;
      while (end > 0 && clean.at(name)[end - 1] == '\0') --end;
      if (end <= format::segment_header_size) continue;  // a segment with no records yet
      at = (format::segment_header_size + end) / 2;
    }
    CAPTURE(name);
    flip_bit(s.dir / name, at, 3);
    const auto damaged = snapshot_files(s.dir);
    auto r = run_cli("verify " + s.arg());
    CHECK_MESSAGE(r.code == 1, r.out);
    if (kind == "snapshot data")  // checked whole against the manifest: no offset exists
      CHECK_MESSAGE(r.out.find("DAMAGED: " + name + " (its whole-file checksum") != std::string::npos, r.out);
    else
      CHECK_MESSAGE(r.out.find("DAMAGED: " + name + " at byte ") != std::string::npos, r.out);
    CHECK(snapshot_files(s.dir) == damaged);  // verify changed nothing, the damage included
    flip_bit(s.dir / name, at, 3);
    ++kinds[kind];
  }
  CHECK(kinds.size() == 4);
  CHECK(snapshot_files(s.dir) == clean);
  CHECK(run_cli("verify " + s.arg()).code == 0);
}

TEST_CASE("aerodb verify and repair report a torn tail without removing it") {
  store_dir s;
  fs::path last_segment;
  for (const auto& e : fs::directory_iterator(s.dir))
    if (format::parse_segment_file_name(e.path().filename().string()) &&
        (last_segment.empty() || e.path().filename() > last_segment.filename()))
      last_segment = e.path();
  auto bytes = snapshot_files(s.dir).at(last_segment.filename().string());
  std::uint64_t end = bytes.size();
  while (end > 0 && bytes[end - 1] == '\0') --end;
  // The next record, of which only the sectors up to the first boundary inside its body
  // reached the disk: what a power loss during its write leaves (the rest reads as zeros).
  {
    format::byte_buffer rec;
    format::append_plain_record(rec, format::record_type::schema_register, s.last + 1,
                                format::as_bytes(std::string(700, 's')));
    std::uint64_t boundary = (end / 512 + 1) * 512;
    if (boundary - end < format::record_header_size + 1) boundary += 512;
    std::fstream f(last_segment, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(end));
    f.write(reinterpret_cast<const char*>(rec.data()), static_cast<std::streamsize>(boundary - end));
  }
  const auto before = snapshot_files(s.dir);
  auto r = run_cli("verify " + s.arg());
  CHECK_MESSAGE(r.code == 0, r.out);
  CHECK(r.out.find("torn tail") != std::string::npos);
  CHECK(snapshot_files(s.dir) == before);
  // Not damage: the next open discards it, so repair has nothing to do.
  auto repair = run_cli("repair --yes " + s.arg());
  CHECK_MESSAGE(repair.code == 0, repair.out);
  CHECK(repair.out.find("nothing to repair") != std::string::npos);
  CHECK(repair.out.find("torn tail") != std::string::npos);
  CHECK(snapshot_files(s.dir) == before);
}

TEST_CASE("aerodb info shows the collections, their counts and the sizes") {
  store_dir s;
  const auto before = snapshot_files(s.dir);
  auto r = run_cli("info " + s.arg());
  CHECK_MESSAGE(r.code == 0, r.out);
  CHECK(r.out.find("users: 24 documents") != std::string::npos);
  CHECK(r.out.find("last CommitId:  " + std::to_string(s.last)) != std::string::npos);
  auto j = run_cli("info --json " + s.arg());
  REQUIRE_MESSAGE(j.code == 0, j.out);
  const auto v = boost::json::parse(j.out).as_object();
  CHECK(v.at("last_commit_id").to_number<std::uint64_t>() == s.last);
  CHECK(v.at("checkpoint").to_number<std::uint64_t>() == s.checkpoint);
  CHECK(v.at("log_bytes").to_number<std::uint64_t>() > 0);
  CHECK(v.at("snapshot_bytes").to_number<std::uint64_t>() > 0);
  CHECK(v.at("collections").as_array().at(0).at("documents").to_number<std::uint64_t>() == 24);
  CHECK(snapshot_files(s.dir) == before);
}

TEST_CASE("aerodb dump-wal prints the records after the checkpoint as JSON lines, in a CommitId range") {
  store_dir s;
  auto r = run_cli("dump-wal " + s.arg(), false);
  REQUIRE_MESSAGE(r.code == 0, r.out);
  std::istringstream lines(r.out);
  std::string line;
  std::vector<boost::json::object> records;
  while (std::getline(lines, line)) records.push_back(boost::json::parse(line).as_object());
  REQUIRE(records.size() == s.last - s.checkpoint);
  for (std::size_t i = 0; i < records.size(); ++i)
    CHECK(records[i].at("commit_id").to_number<std::uint64_t>() == s.checkpoint + 1 + i);
  const auto& first = records.front().at("ops").as_array().at(0).as_object();
  CHECK(first.at("kind").as_string() == "insert");
  CHECK(first.at("_id").as_string() == "u20");
  CHECK(first.at("document").at("name").as_string() == "Ñandú \"q\"");
  CHECK(records.back().at("ops").as_array().at(0).at("kind").as_string() == "delete");

  auto one = run_cli("dump-wal --from " + std::to_string(s.last) + " --to " + std::to_string(s.last) + " " +
                     s.arg(), false);
  REQUIRE(one.code == 0);
  CHECK(boost::json::parse(one.out).at("commit_id").to_number<std::uint64_t>() == s.last);
}

TEST_CASE("aerodb refuses a locked store, a missing directory and bad usage with their exit codes") {
  store_dir s;
  {
    auto db = database::open(s.dir.string());  // a running store holds the lock
    REQUIRE(db);
    auto r = run_cli("verify " + s.arg());
    CHECK_MESSAGE(r.code == 3, r.out);
    CHECK(r.out.find("error: ") != std::string::npos);
  }
  auto missing = run_cli("info " + shell_quote((s.root / "nowhere").string()));
  CHECK(missing.code == 3);
  CHECK(missing.out.find("no such directory") != std::string::npos);
  auto not_a_store = run_cli("info " + shell_quote(s.root.string()));
  CHECK(not_a_store.code == 3);
  CHECK(not_a_store.out.find("not an AeroDB data directory") != std::string::npos);
  CHECK(fs::exists(s.root / "LOCK") == false);  // and nothing was created there
  CHECK(run_cli("").code == 2);
  CHECK(run_cli("frobnicate " + s.arg()).code == 2);
  CHECK(run_cli("dump-wal --from 9 --to 3 " + s.arg()).code == 2);
  CHECK(run_cli("verify --help").code == 0);
}

TEST_CASE("aerodb backup writes a copy that verifies and holds the same documents; checkpoint bounds the log") {
  store_dir s;
  const std::string dest = (s.root / "copy").string();
  auto r = run_cli("backup " + s.arg() + " " + shell_quote(dest));
  REQUIRE_MESSAGE(r.code == 0, r.out);
  CHECK(r.out.find("at CommitId " + std::to_string(s.last)) != std::string::npos);
  auto v = run_cli("verify " + shell_quote(dest));
  CHECK_MESSAGE(v.code == 0, v.out);
  auto info = run_cli("info " + shell_quote(dest));
  CHECK(info.out.find("users: 24 documents") != std::string::npos);
  CHECK(documents_of(s.dir.string(), "users") == documents_of(dest, "users"));
  {
    auto b = database::open(dest);
    REQUIRE(b);
    CHECK((*b)->last_commit_id() == s.last);
  }
  // Owner-only, like the store it copies (the tool opens with the default modes).
  CHECK((fs::status(dest).permissions() & fs::perms::all) == fs::perms::owner_all);
  CHECK((fs::status(fs::path(dest) / "CHECKPOINT").permissions() & fs::perms::all) ==
        (fs::perms::owner_read | fs::perms::owner_write));
  // An existing destination is refused, and the existing copy is left as it was.
  const auto copy_files = snapshot_files(dest);
  auto again = run_cli("backup " + s.arg() + " " + shell_quote(dest));
  CHECK(again.code == 2);
  CHECK(again.out.find("AERO_STORAGE_EXISTS") != std::string::npos);
  CHECK(snapshot_files(dest) == copy_files);

  auto c = run_cli("checkpoint " + s.arg());
  REQUIRE_MESSAGE(c.code == 0, c.out);
  CHECK(c.out.find("checkpoint at CommitId " + std::to_string(s.last)) != std::string::npos);
  auto after = run_cli("dump-wal " + s.arg(), false);
  CHECK(after.code == 0);
  CHECK(after.out.empty());  // every record is in the new checkpoint
  CHECK(run_cli("verify " + s.arg()).code == 0);
}

TEST_CASE("aerodb export then import into a fresh store round-trips every document byte for byte") {
  store_dir s;
  const std::string file = (s.root / "users.jsonl").string();
  const auto before = snapshot_files(s.dir);
  auto e = run_cli("export " + s.arg() + " users --out " + shell_quote(file));
  REQUIRE_MESSAGE(e.code == 0, e.out);
  CHECK(e.out.find("exported 24 documents") != std::string::npos);
  CHECK(snapshot_files(s.dir) == before);  // export reads a copy
  CHECK((fs::status(file).permissions() & fs::perms::all) == (fs::perms::owner_read | fs::perms::owner_write));
  CHECK(run_cli("export " + s.arg() + " users --out " + shell_quote(file)).code == 2);  // never overwrites
  CHECK(run_cli("export " + s.arg() + " nosuch").code == 2);

  const std::string fresh = (s.root / "fresh").string();
  auto i = run_cli("import " + shell_quote(fresh) + " --batch 7 --in " + shell_quote(file));
  REQUIRE_MESSAGE(i.code == 0, i.out);
  CHECK(i.out.find("imported 24 documents into users") != std::string::npos);
  // 24 documents in batches of 7: four commits after the schema and the collection.
  const auto exported = documents_of(s.dir.string(), "users");
  CHECK(exported.size() == 24);
  CHECK(documents_of(fresh, "users") == exported);
  {
    auto a = database::open(s.dir.string());
    auto b = database::open(fresh);
    REQUIRE(a);
    REQUIRE(b);
    CHECK((*b)->last_commit_id() == 2 + 4);
    CHECK((*b)->find_schema("user", 1)->to_canonical_json() == (*a)->find_schema("user", 1)->to_canonical_json());
  }
  // Importing the same export again stops at the first batch (the documents exist), and
  // says how far it got; nothing of that batch goes in.
  auto again = run_cli("import " + shell_quote(fresh) + " --in " + shell_quote(file));
  CHECK(again.code == 4);
  CHECK(again.out.find("AERO_DOCUMENT_EXISTS") != std::string::npos);
  CHECK(again.out.find("0 documents before it are imported") != std::string::npos);
  // Not an export at all.
  const std::string junk = (s.root / "junk.jsonl").string();
  std::ofstream(junk) << "{\"_id\":\"x\"}\n";
  CHECK(run_cli("import " + shell_quote((s.root / "other").string()) + " --in " + shell_quote(junk)).code == 2);
  CHECK(run_cli("import " + shell_quote(fresh) + " --batch 0 --in " + shell_quote(file)).code == 2);
}

TEST_CASE("aerodb query runs a query on a copy, or explains it; a bad query is refused with its code") {
  store_dir s;
  const auto before = snapshot_files(s.dir);
  const std::string q =
      R"({"collection":"users","schema_version":1,"filter":{"age":{"$gte":20}},"sort":{"age":"asc"},"limit":3})";
  auto r = run_cli("query " + s.arg() + " " + shell_quote(q), false);
  REQUIRE_MESSAGE(r.code == 0, r.out);
  std::istringstream lines(r.out);
  std::string line;
  std::vector<std::int64_t> ages;
  while (std::getline(lines, line)) ages.push_back(boost::json::parse(line).at("age").as_int64());
  CHECK(ages == std::vector<std::int64_t>{20, 21, 22});
  auto e = run_cli("query --explain " + s.arg() + " " + shell_quote(q), false);
  REQUIRE_MESSAGE(e.code == 0, e.out);
  const auto plan = boost::json::parse(e.out).as_object();
  CHECK(plan.at("collection").as_string() == "users");
  CHECK(plan.at("index").as_string() == "age");
  auto bad = run_cli("query " + s.arg() + " " + shell_quote(R"({"collection":"users"})"));
  CHECK(bad.code == 2);
  CHECK(bad.out.find("AERO_QUERY_") != std::string::npos);
  CHECK(snapshot_files(s.dir) == before);
}

TEST_CASE("aerodb query hands out the next page's continuation, and --all pages through every result") {
  store_dir s;
  const auto before = snapshot_files(s.dir);
  // Ages 10..24 without u3's 3: 15 results, in pages of 4.
  const std::string q =
      R"({"collection":"users","schema_version":1,"filter":{"age":{"$gte":10}},"sort":{"age":"desc"},"limit":4})";
  auto first = run_cli("query " + s.arg() + " " + shell_quote(q));
  REQUIRE_MESSAGE(first.code == 0, first.out);
  CHECK(first.out.find(R"(for the next one add "after":{"_id":"u21","value":21})") != std::string::npos);
  auto all = run_cli("query --all " + s.arg() + " " + shell_quote(q), false);
  REQUIRE_MESSAGE(all.code == 0, all.out);
  std::istringstream lines(all.out);
  std::string line;
  std::vector<std::int64_t> ages;
  while (std::getline(lines, line)) ages.push_back(boost::json::parse(line).at("age").as_int64());
  std::vector<std::int64_t> expected;
  for (int a = 24; a >= 10; --a) expected.push_back(a);
  CHECK(ages == expected);
  auto summary = run_cli("query --all " + s.arg() + " " + shell_quote(q));
  CHECK(summary.out.find("15 document(s)") != std::string::npos);
  CHECK(summary.out.find("in 4 page(s)") != std::string::npos);
  // The continuation it printed, given back, starts the second page.
  const std::string second_q =
      R"({"collection":"users","schema_version":1,"filter":{"age":{"$gte":10}},"sort":{"age":"desc"},"limit":4,"after":{"_id":"u21","value":21}})";
  auto second = run_cli("query " + s.arg() + " " + shell_quote(second_q), false);
  REQUIRE_MESSAGE(second.code == 0, second.out);
  CHECK(boost::json::parse(second.out.substr(0, second.out.find('\n'))).at("age").as_int64() == 20);
  CHECK(snapshot_files(s.dir) == before);
}

// ---- repair ---------------------------------------------------------------------------------

namespace {

// A closed store without a checkpoint whose log spans several small segments: a schema, a
// collection (CommitIds 1 and 2), then one insert per commit, u0 at CommitId 3 onward.
struct segmented_store {
  fs::path root;
  fs::path dir;
  commit_id last = 0;

  explicit segmented_store(int inserts) {
    char tmpl[] = "/tmp/aerodb-cli-XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    root = tmpl;
    dir = root / "db";
    last = fill(dir, inserts);
  }
  ~segmented_store() { fs::remove_all(root); }
  std::string arg() const { return shell_quote(dir.string()); }

  static commit_id fill(const fs::path& where, int inserts) {
    open_options options;
    options.wal_segment_bytes = 512;  // the smallest: a few records per segment
    auto db = database::open(where.string(), options);
    REQUIRE(db);
    REQUIRE((*db)->register_schema(
        R"({"id":"user","version":1,"fields":{"_id":{"type":"string","required":true},"name":{"type":"string","required":true}}})"));
    REQUIRE((*db)->create_collection("users", "user"));
    for (int i = 0; i < inserts; ++i)
      REQUIRE((*db)->insert("users", 1, R"({"_id":"u)" + std::to_string(i) + R"(","name":"name )" + std::to_string(i) + "\"}"));
    return (*db)->last_commit_id();
  }
};

struct record_place {
  std::string segment;
  std::uint64_t offset = 0;
};

// Where each record of the log is, by CommitId, as dump-wal reports it.
std::map<commit_id, record_place> record_places(const std::string& dir_arg) {
  auto r = run_cli("dump-wal " + dir_arg, false);
  REQUIRE_MESSAGE(r.code == 0, r.out);
  std::map<commit_id, record_place> out;
  std::istringstream lines(r.out);
  std::string line;
  while (std::getline(lines, line)) {
    const auto o = boost::json::parse(line).as_object();
    out[o.at("commit_id").to_number<commit_id>()] = {std::string(o.at("segment").as_string()),
                                                     o.at("offset").to_number<std::uint64_t>()};
  }
  return out;
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("aerodb repair on a clean store says there is nothing to repair and changes nothing") {
  store_dir s;
  const auto before = snapshot_files(s.dir);
  auto r = run_cli("repair " + s.arg());
  CHECK_MESSAGE(r.code == 0, r.out);
  CHECK_MESSAGE(contains(r.out, "nothing to repair: the store opens at CommitId " + std::to_string(s.last)), r.out);
  auto y = run_cli("repair --yes " + s.arg());
  CHECK_MESSAGE(y.code == 0, y.out);
  CHECK(contains(y.out, "nothing to repair"));
  CHECK(snapshot_files(s.dir) == before);
  CHECK(fs::directory_iterator(s.root) != fs::directory_iterator());
  for (const auto& e : fs::directory_iterator(s.root))  // no keep directory was made
    CHECK(e.path().filename() == "db");
  auto help = run_cli("repair --help");
  CHECK(help.code == 0);
  CHECK(contains(help.out, "--yes"));
  CHECK(contains(help.out, "--keep"));
}

TEST_CASE("aerodb repair without --yes names the bytes and CommitIds a cut discards, and changes nothing") {
  segmented_store s(16);
  const auto places = record_places(s.arg());
  REQUIRE(places.size() == s.last);
  const commit_id damaged = 8;
  const auto& at = places.at(damaged);
  REQUIRE(places.at(s.last).segment != at.segment);  // later segments hold lost commits
  flip_bit(s.dir / at.segment, at.offset + format::record_header_size + 3, 2);  // inside its body
  const auto before = snapshot_files(s.dir);

  auto r = run_cli("repair " + s.arg());
  CHECK_MESSAGE(r.code == 1, r.out);
  const std::string size = std::to_string(before.at(at.segment).size());
  CHECK_MESSAGE(contains(r.out, "DAMAGED: " + at.segment + " at byte " + std::to_string(at.offset)), r.out);
  CHECK(contains(r.out, "cut the log at " + at.segment + " byte " + std::to_string(at.offset)));
  CHECK(contains(r.out, at.segment + ": discard bytes [" + std::to_string(at.offset) + ", " + size + ")"));
  for (const auto& file : before)
    if (format::parse_segment_file_name(file.first) && file.first > at.segment)
      CHECK_MESSAGE(contains(r.out, file.first + ": remove the whole file, bytes [0, " +
                                        std::to_string(file.second.size()) + ")"),
                    r.out);
  CHECK(contains(r.out, "the damaged record is CommitId " + std::to_string(damaged)));
  CHECK(contains(r.out, "still read whole with valid checksums (commits that were acknowledged, unless the writer "
                        "crashed before syncing them): " +
                            std::to_string(damaged + 1) + ".." + std::to_string(s.last) + " (" +
                            std::to_string(s.last - damaged) + " records)"));
  CHECK(contains(r.out, "last CommitId kept: " + std::to_string(damaged - 1)));
  CHECK(contains(r.out, "the store opens at CommitId " + std::to_string(damaged - 1)));
  CHECK(contains(r.out, "nothing was changed"));
  CHECK(contains(r.out, "--yes"));
  CHECK(snapshot_files(s.dir) == before);
  for (const auto& e : fs::directory_iterator(s.root)) CHECK(e.path().filename() == "db");
}

TEST_CASE("aerodb repair --yes keeps the discarded bytes, cuts the log, and the store opens with the commits before the damage") {
  segmented_store s(16);
  const auto places = record_places(s.arg());
  const commit_id damaged = 8;
  const auto& at = places.at(damaged);
  flip_bit(s.dir / at.segment, at.offset + format::record_header_size + 3, 2);
  const auto before = snapshot_files(s.dir);
  const fs::path keep = s.root / "kept";

  auto r = run_cli("repair --yes --keep " + shell_quote(keep.string()) + " " + s.arg());
  REQUIRE_MESSAGE(r.code == 0, r.out);
  CHECK(contains(r.out, "repaired: the store opens at CommitId " + std::to_string(damaged - 1)));
  CHECK(contains(r.out, "copied to " + keep.string()));

  // The keep directory holds exactly the discarded bytes: the damaged segment's tail and
  // every later segment whole, and the plan.
  const auto kept = snapshot_files(keep);
  std::map<std::string, std::string> expected;
  expected[at.segment + ".from-byte-" + std::to_string(at.offset)] = before.at(at.segment).substr(at.offset);
  for (const auto& file : before)
    if (format::parse_segment_file_name(file.first) && file.first > at.segment) expected[file.first] = file.second;
  REQUIRE(expected.size() >= 2);
  for (const auto& file : expected) {
    CAPTURE(file.first);
    REQUIRE(kept.count(file.first) == 1);
    CHECK(kept.at(file.first) == file.second);
  }
  CHECK(kept.size() == expected.size() + 1);
  REQUIRE(kept.count("REPAIR.txt") == 1);
  CHECK(contains(kept.at("REPAIR.txt"), "cut the log at " + at.segment + " byte " + std::to_string(at.offset)));
  CHECK((fs::status(keep).permissions() & fs::perms::all) == fs::perms::owner_all);
  for (const auto& file : kept)
    CHECK((fs::status(keep / file.first).permissions() & fs::perms::all) ==
          (fs::perms::owner_read | fs::perms::owner_write));

  // The directory: the damaged segment cut at the record, the later ones gone, the rest
  // untouched.
  const auto after = snapshot_files(s.dir);
  for (const auto& file : before) {
    CAPTURE(file.first);
    if (expected.count(file.first)) CHECK(after.count(file.first) == 0);
    else if (file.first == at.segment) CHECK(after.at(file.first) == file.second.substr(0, at.offset));
    else CHECK(after.at(file.first) == file.second);
  }

  // Exactly the commits before the damaged record: the same documents as a store that
  // only ever had them.
  const fs::path reference = s.root / "reference";
  CHECK(segmented_store::fill(reference, static_cast<int>(damaged - 3)) == damaged - 1);
  const auto docs = documents_of(s.dir.string(), "users");
  CHECK(docs.size() == damaged - 3);
  CHECK(docs == documents_of(reference.string(), "users"));
  {
    auto db = database::open(s.dir.string());
    REQUIRE(db);
    CHECK((*db)->last_commit_id() == damaged - 1);
    REQUIRE((*db)->insert("users", 1, R"({"_id":"after","name":"repair"})"));  // the log goes on
  }
  CHECK(run_cli("verify " + s.arg()).code == 0);
  auto again = run_cli("repair " + s.arg());
  CHECK_MESSAGE(again.code == 0, again.out);
  CHECK(contains(again.out, "nothing to repair: the store opens at CommitId " + std::to_string(damaged)));
  // An existing keep directory is refused before anything changes.
  flip_bit(s.dir / at.segment, at.offset - 5, 1);
  const auto damaged_again = snapshot_files(s.dir);
  auto exists = run_cli("repair --yes --keep " + shell_quote(keep.string()) + " " + s.arg());
  CHECK_MESSAGE(exists.code == 2, exists.out);
  CHECK(contains(exists.out, "AERO_STORAGE_EXISTS"));
  CHECK(snapshot_files(s.dir) == damaged_again);
  CHECK(snapshot_files(keep) == kept);
}

TEST_CASE("aerodb repair --yes after a checkpoint cuts the one segment and keeps the tail in a new sibling directory") {
  store_dir s;
  const auto places = record_places(s.arg());
  const auto& at = places.at(s.checkpoint + 2);
  flip_bit(s.dir / at.segment, at.offset + 1, 0);  // the record's type: its header fails
  const auto before = snapshot_files(s.dir);
  auto r = run_cli("repair --yes " + s.arg());
  REQUIRE_MESSAGE(r.code == 0, r.out);
  CHECK(contains(r.out, "CommitIds lost that still read whole with valid checksums"));
  CHECK(contains(r.out, std::to_string(s.checkpoint + 3) + ".." + std::to_string(s.last)));
  fs::path keep;
  for (const auto& e : fs::directory_iterator(s.root))
    if (e.path().filename() != "db") keep = e.path();
  REQUIRE(!keep.empty());
  const std::string name = keep.filename().string();
  CHECK(name.rfind("db.repair-", 0) == 0);
  CHECK(name.size() == std::string("db.repair-20240101T000000Z").size());
  CHECK(name.back() == 'Z');
  CHECK(snapshot_files(keep).at(at.segment + ".from-byte-" + std::to_string(at.offset)) ==
        before.at(at.segment).substr(at.offset));
  auto db = database::open(s.dir.string());
  REQUIRE(db);
  CHECK((*db)->last_commit_id() == s.checkpoint + 1);
  CHECK((*db)->recovery().checkpoint == s.checkpoint);
}

TEST_CASE("aerodb repair refuses damage outside the log and changes nothing") {
  store_dir s;
  std::string data_file;
  for (const auto& e : fs::directory_iterator(s.dir))
    if (e.path().extension() == ".data") data_file = e.path().filename().string();
  REQUIRE(!data_file.empty());
  flip_bit(s.dir / data_file, 40, 4);
  const auto before = snapshot_files(s.dir);
  for (const std::string flags : {"", "--yes "}) {
    auto r = run_cli("repair " + flags + s.arg());
    CHECK_MESSAGE(r.code == 1, r.out);
    CHECK(contains(r.out, "DAMAGED: " + data_file));
    CHECK(contains(r.out, "the damage is not in the log"));
    CHECK(contains(r.out, "aerodb backup"));
    CHECK(snapshot_files(s.dir) == before);
  }
  for (const auto& e : fs::directory_iterator(s.root)) CHECK(e.path().filename() == "db");
}

TEST_CASE("aerodb repair refuses a directory a running store holds") {
  segmented_store s(6);
  const auto places = record_places(s.arg());
  flip_bit(s.dir / places.at(4).segment, places.at(4).offset + format::record_header_size + 1, 0);
  const auto before = snapshot_files(s.dir);
  {
    // The damage keeps a store from opening, so the lock is held the way a store holds it.
    io::posix_file_system disk;
    auto lock = disk.lock((s.dir / "LOCK").string());
    REQUIRE(lock);
    for (const std::string flags : {"", "--yes "}) {
      auto r = run_cli("repair " + flags + s.arg());
      CHECK_MESSAGE(r.code == 3, r.out);
      CHECK(contains(r.out, "AERO_STORAGE_LOCKED"));
    }
  }
  CHECK(snapshot_files(s.dir) == before);
  store_dir clean;
  auto db = database::open(clean.dir.string());
  REQUIRE(db);
  auto r = run_cli("repair --yes " + clean.arg());
  CHECK_MESSAGE(r.code == 3, r.out);
}
