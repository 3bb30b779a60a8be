// The behavioural suite: write semantics, read views, atomic batches, recovery and the
// directory lock. Every case runs for every engine in AERODB_ENGINES.
#include "support/common.hpp"

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>

using namespace aerodb;
using namespace aerodb_test;

namespace {

open_options in_memory(std::shared_ptr<testing::fault_injection_fs> fs = nullptr) {
  open_options o;
  o.fs = fs ? fs : std::make_shared<testing::fault_injection_fs>();
  return o;
}

std::string temp_dir(const char* tag) {
  auto p = std::filesystem::temp_directory_path() /
           ("aerodb-test-" + std::string(tag) + "-" + std::to_string(::getpid()));
  std::filesystem::remove_all(p);
  return p.string();
}

}  // namespace

TEST_CASE_TEMPLATE("CommitIds start at 1 and increase by one per commit", Db, AERODB_ENGINES) {
  auto db = open_or_fail<Db>("/db", in_memory());
  CHECK(db->last_commit_id() == 0);
  CHECK(*db->register_schema(user_schema_v1) == 1);
  CHECK(*db->create_collection("users", "user") == 2);
  CHECK(*db->insert("users", 1, R"({"_id":"a","name":"A"})") == 3);
  CHECK(*db->update("users", "a", 1, R"({"_id":"a","name":"B"})") == 4);
  auto d = db->remove("users", "a");
  REQUIRE(d);
  CHECK(d->deleted);
  CHECK(d->commit == 5);
  CHECK(db->last_commit_id() == 5);
}

TEST_CASE_TEMPLATE("insert, get, update, delete", Db, AERODB_ENGINES) {
  auto db = open_or_fail<Db>("/db", in_memory());
  setup_users(*db);
  REQUIRE(db->insert("users", 1, R"({"_id":"u1","name":"Ada","age":36,"tags":["x","y"]})"));
  {
    auto got = db->read().get("users", "u1");
    REQUIRE(got);
    REQUIRE(got->has_value());
    CHECK((*got)->doc.to_json_string() == R"({"_id":"u1","name":"Ada","age":36,"tags":["x","y"]})");
    CHECK((*got)->schema_version == 1);
    CHECK((*got)->committed_at == 3);
    CHECK((*got)->doc.view().find("age")->as_int() == 36);
  }
  REQUIRE(db->update("users", "u1", 1, R"({"_id":"u1","name":"Ada L."})"));
  {
    auto got = db->read().get("users", "u1");
    REQUIRE(got->has_value());
    CHECK((*got)->doc.to_json_string() == R"({"_id":"u1","name":"Ada L."})");
  }
  auto removed = db->remove("users", "u1");
  REQUIRE(removed);
  CHECK(removed->deleted);
  auto got = db->read().get("users", "u1");
  REQUIRE(got);
  CHECK_FALSE(got->has_value());
  // A deleted _id can be inserted again.
  CHECK(db->insert("users", 1, R"({"_id":"u1","name":"Again"})"));
}

TEST_CASE_TEMPLATE("deleting a missing document writes nothing", Db, AERODB_ENGINES) {
  auto fs = std::make_shared<testing::fault_injection_fs>();
  auto db = open_or_fail<Db>("/db", in_memory(fs));
  setup_users(*db);
  const auto ops = fs->op_count();
  const auto last = db->last_commit_id();
  auto r = db->remove("users", "nobody");
  REQUIRE(r);
  CHECK_FALSE(r->deleted);
  CHECK(r->commit == 0);
  CHECK(fs->op_count() == ops);
  CHECK(db->last_commit_id() == last);
}

// docs/optimizations/commit_cpu.md: W4 drops the no-op deletes from the payload prepared
// on the caller's thread by moving bytes and combining checksums, not by encoding again.
// The log must hold exactly the record of the same batch written without those deletes.
TEST_CASE_TEMPLATE("a batch with deletes of missing documents writes the record of the same batch without them",
                   Db, AERODB_ENGINES) {
  struct outcome {
    std::map<std::string, std::vector<std::byte>> files;
    std::vector<std::vector<bool>> applied;
    std::vector<commit_id> commits;
  };
  auto run = [](bool with_noops) {
    auto fs = std::make_shared<testing::fault_injection_fs>();
    outcome o;
    {
      auto db = open_or_fail<Db>("/db", in_memory(fs));
      setup_users(*db);
      REQUIRE(db->insert("users", 1, R"({"_id":"present","name":"P"})"));
      REQUIRE(db->insert("users", 1, R"({"_id":"doomed","name":"D"})"));
      // No-op deletes first, between, consecutive and last; the real ops in between.
      write_batch b;
      if (with_noops) b.remove("users", "missing-first");
      b.insert("users", 1, R"({"_id":"n1","name":"One","tags":["a","b"]})");
      if (with_noops) b.remove("users", "missing-2").remove("users", "missing-3");
      b.update("users", "present", 1, R"({"_id":"present","name":"P2","age":7})");
      b.remove("users", "doomed");
      b.insert("users", 1, R"({"_id":"n2","name":"Two"})");
      if (with_noops) b.remove("users", "missing-last");
      auto out = db->commit(b);
      REQUIRE(out);
      o.applied.push_back(out->applied);
      o.commits.push_back(out->commit);
      // A batch of nothing but no-ops still writes nothing.
      write_batch nothing;
      nothing.remove("users", "missing-a").remove("users", "missing-b");
      auto none = db->commit(nothing);
      REQUIRE(none);
      CHECK(none->commit == 0);
      CHECK(none->applied == std::vector<bool>{false, false});
    }
    auto names = fs->list_dir("/db");
    REQUIRE(names);
    for (const auto& n : *names)
      if (n != "LOCK") o.files[n] = fs->contents("/db/" + n);
    // Recovery reads back what was written.
    auto db = open_or_fail<Db>("/db", in_memory(fs));
    const auto view = db->read();
    CHECK(view.get("users", "n1")->has_value());
    CHECK(view.get("users", "n2")->has_value());
    CHECK_FALSE(view.get("users", "doomed")->has_value());
    CHECK(std::string((*view.get("users", "present"))->doc.view().find("name")->as_string()) == "P2");
    return o;
  };
  const outcome with = run(true);
  const outcome plain = run(false);
  CHECK(with.files == plain.files);
  CHECK(with.commits == plain.commits);
  REQUIRE(with.applied.size() == 1);
  CHECK(with.applied[0] == std::vector<bool>{false, true, false, false, true, true, true, false});
  CHECK(plain.applied[0] == std::vector<bool>{true, true, true, true});
}

TEST_CASE("drop_noop_ops leaves exactly the stored payload and checksum of encoding the kept operations") {
  using aerodb::engine::prepared_op;
  namespace eng = aerodb::engine;
  auto doc = [](std::string_view json) {
    auto d = document_from_json(json);
    REQUIRE(d);
    return d->buffer();
  };
  // Removes and writes of different sizes, so every splice moves a different length.
  std::vector<prepared_op> ops;
  ops.push_back({format::write_kind::remove, "users", "gone-1", 0, nullptr});
  ops.push_back({format::write_kind::insert, "users", "a", 1, doc(R"({"_id":"a","name":"A"})")});
  ops.push_back({format::write_kind::remove, "items", "gone-22", 0, nullptr});
  ops.push_back({format::write_kind::update, "users", "bb", 2,
                 doc(R"({"_id":"bb","name":"B","tags":["x","y","z"],"age":12})")});
  ops.push_back({format::write_kind::remove, "users", "gone-333", 0, nullptr});
  ops.push_back({format::write_kind::remove, "u", "g", 0, nullptr});
  // Long enough that its checksum is folded in with crc32c::combine, not recomputed.
  const std::string long_json = R"({"_id":"long","name":")" + std::string(1500, 'x') + R"("})";
  ops.push_back({format::write_kind::insert, "users", "long", 1, doc(long_json)});
  REQUIRE(ops.back().doc->size() >= eng::combine_min_op_bytes);
  ops.push_back({format::write_kind::remove, "users", "gone-4", 0, nullptr});
  for (unsigned mask = 1; mask < (1u << ops.size()); ++mask) {
    INFO("mask=", mask);
    eng::commit_request req;
    req.ops = ops;
    req.payload = eng::encode_batch_payload(req.ops, nullptr, &req.op_ends);
    req.op_crcs = eng::op_checksums(req.payload, req.op_ends);
    format::complement(req.payload);  // the stored form, as submit() leaves it for W4
    req.applied.clear();
    for (std::size_t i = 0; i < ops.size(); ++i) req.applied.push_back(((mask >> i) & 1u) != 0);
    eng::drop_noop_ops(req);
    auto expected = eng::encode_batch_payload(req.ops, &req.applied);
    format::complement(expected);
    REQUIRE(req.payload == expected);
    REQUIRE(req.payload_crc == format::stored_payload_crc(expected));
  }
}

TEST_CASE_TEMPLATE("a read view keeps seeing its boundary", Db, AERODB_ENGINES) {
  auto db = open_or_fail<Db>("/db", in_memory());
  setup_users(*db);
  REQUIRE(db->insert("users", 1, R"({"_id":"a","name":"v1"})"));
  auto before = db->read();
  REQUIRE(db->update("users", "a", 1, R"({"_id":"a","name":"v2"})"));
  REQUIRE(db->insert("users", 1, R"({"_id":"b","name":"new"})"));
  auto middle = db->read();
  REQUIRE(db->remove("users", "a"));
  auto after = db->read();

  auto name = [](const auto& view, const char* id) -> std::string {
    auto r = view.get("users", id);
    REQUIRE(r);
    if (!r->has_value()) return "<absent>";
    return std::string((*r)->doc.view().find("name")->as_string());
  };
  CHECK(name(before, "a") == "v1");
  CHECK(name(before, "b") == "<absent>");
  CHECK(name(middle, "a") == "v2");
  CHECK(name(middle, "b") == "new");
  CHECK(name(after, "a") == "<absent>");
  CHECK(name(after, "b") == "new");

  // An explicit older boundary sees the same as a view opened then.
  auto old = db->read_at(before.bound());
  REQUIRE(old);
  CHECK(name(*old, "a") == "v1");
  CHECK(db->read_at(db->last_commit_id() + 1).code() == errc::config_invalid);
  // Before the collection existed, it does not exist.
  auto genesis = db->read_at(1);
  REQUIRE(genesis);
  CHECK(genesis->get("users", "a").code() == errc::collection_unknown);
}

TEST_CASE_TEMPLATE("an atomic batch commits several collections under one CommitId", Db, AERODB_ENGINES) {
  auto db = open_or_fail<Db>("/db", in_memory());
  setup_users(*db);
  REQUIRE(db->register_schema(item_schema_v1));
  REQUIRE(db->create_collection("items", "item"));
  REQUIRE(db->insert("users", 1, R"({"_id":"old","name":"Old"})"));
  auto before = db->read();

  write_batch b;
  b.insert("users", 1, R"({"_id":"u1","name":"One"})")
      .insert("items", 1, R"({"_id":"i1","qty":5})")
      .update("users", "old", 1, R"({"_id":"old","name":"Renamed"})")
      .remove("users", "missing");
  auto out = db->commit(b);
  REQUIRE(out);
  CHECK(out->commit == before.bound() + 1);
  CHECK(out->applied == std::vector<bool>{true, true, true, false});

  auto after = db->read();
  for (auto [c, id] : {std::pair{"users", "u1"}, std::pair{"items", "i1"}, std::pair{"users", "old"}}) {
    auto r = after.get(c, id);
    REQUIRE(r);
    REQUIRE(r->has_value());
    CHECK((*r)->committed_at == out->commit);
  }
  // The earlier view sees none of it.
  CHECK_FALSE(before.get("users", "u1")->has_value());
  CHECK_FALSE(before.get("items", "i1")->has_value());
}

TEST_CASE_TEMPLATE("reopening recovers every commit and continues the CommitIds", Db, AERODB_ENGINES) {
  auto fs = std::make_shared<testing::fault_injection_fs>();
  state_map expected;
  {
    auto db = open_or_fail<Db>("/db", in_memory(fs));
    setup_users(*db);
    REQUIRE(db->register_schema(user_schema_v2));
    for (int i = 0; i < 50; ++i)
      REQUIRE(db->insert("users", 1, R"({"_id":"k)" + std::to_string(i) + R"(","name":"n","age":)" +
                                          std::to_string(i) + "}"));
    REQUIRE(db->update("users", "k3", 2, R"({"_id":"k3","name":"n","email":"e@x"})"));
    REQUIRE(db->remove("users", "k4"));
    expected = dump(*db);
    CHECK(db->last_commit_id() == 55);
  }
  std::vector<recovery_progress> progress;
  auto opts = in_memory(fs);
  opts.on_recovery_progress = [&](const recovery_progress& p) { progress.push_back(p); };
  auto db = open_or_fail<Db>("/db", opts);
  CHECK(dump(*db) == expected);
  CHECK(db->last_commit_id() == 55);
  CHECK(db->recovery().records_replayed == 55);
  CHECK(db->recovery().last_commit_id == 55);
  CHECK_FALSE(db->recovery().torn_tail.has_value());
  // The log replay phase's last call (tests/unit/test_recovery_progress.cpp checks the rest).
  const auto replay_end = std::find_if(progress.rbegin(), progress.rend(), [](const recovery_progress& p) {
    return p.phase == recovery_phase::log_replay;
  });
  REQUIRE(replay_end != progress.rend());
  CHECK(replay_end->event == recovery_event::end);
  CHECK(replay_end->done == replay_end->total);
  CHECK(replay_end->records_replayed == 55);
  CHECK(db->find_schema("user", 2).has_value());
  CHECK(*db->insert("users", 1, R"({"_id":"next","name":"n"})") == 56);
  auto k3 = db->read().get("users", "k3");
  CHECK((*k3)->schema_version == 2);
}

TEST_CASE_TEMPLATE("recovery spans many WAL segments", Db, AERODB_ENGINES) {
  auto fs = std::make_shared<testing::fault_injection_fs>();
  auto opts = in_memory(fs);
  opts.wal_segment_bytes = 1024;
  state_map expected;
  {
    auto db = open_or_fail<Db>("/db", opts);
    setup_users(*db);
    for (int i = 0; i < 100; ++i)
      REQUIRE(db->insert("users", 1, R"({"_id":"k)" + std::to_string(i) + R"(","name":"some longer name"})"));
    expected = dump(*db);
    CHECK(db->wal_stats().segments_created > 5);
  }
  auto db = open_or_fail<Db>("/db", opts);
  CHECK(db->recovery().segments > 5);
  CHECK(dump(*db) == expected);
}

TEST_CASE_TEMPLATE("a second open of a directory fails clearly", Db, AERODB_ENGINES) {
  SUBCASE("in the same process, fault-injecting file system") {
    auto fs = std::make_shared<testing::fault_injection_fs>();
    auto first = open_or_fail<Db>("/db", in_memory(fs));
    auto second = Db::open("/db", in_memory(fs));
    REQUIRE_FALSE(second);
    CHECK(second.code() == errc::storage_locked);
    CHECK(second.error_value().detail("directory") == "/db");
    first.reset();
    CHECK(Db::open("/db", in_memory(fs)));
  }
  SUBCASE("POSIX, from this process and from another process") {
    const auto dir = temp_dir("lock");
    {
      auto first = open_or_fail<Db>(dir, {});
      setup_users(*first);
      auto second = Db::open(dir, {});
      REQUIRE_FALSE(second);
      CHECK(second.code() == errc::storage_locked);

      const pid_t child = ::fork();
      REQUIRE(child >= 0);
      if (child == 0) {
        auto r = Db::open(dir, {});
        ::_exit(!r && r.code() == errc::storage_locked ? 0 : 1);
      }
      int status = 0;
      ::waitpid(child, &status, 0);
      CHECK(WIFEXITED(status));
      CHECK(WEXITSTATUS(status) == 0);
    }
    auto again = open_or_fail<Db>(dir, {});
    CHECK(again->last_commit_id() == 2);
    again.reset();
    std::filesystem::remove_all(dir);
  }
}

TEST_CASE_TEMPLATE("documents survive a real reopen on POSIX files", Db, AERODB_ENGINES) {
  const auto dir = temp_dir("posix");
  state_map expected;
  {
    auto db = open_or_fail<Db>(dir, {});
    setup_users(*db);
    write_batch b;
    for (int i = 0; i < 10; ++i)
      b.insert("users", 1, R"({"_id":"b)" + std::to_string(i) + R"(","name":"x","score":1.5})");
    REQUIRE(db->commit(b));
    expected = dump(*db);
  }
  auto db = open_or_fail<Db>(dir, {});
  CHECK(dump(*db) == expected);
  CHECK(expected["users"].size() == 10);
  db.reset();
  std::filesystem::remove_all(dir);
}

TEST_CASE_TEMPLATE("writes and schema versions are scoped correctly", Db, AERODB_ENGINES) {
  auto db = open_or_fail<Db>("/db", in_memory());
  setup_users(*db);
  REQUIRE(db->register_schema(user_schema_v2));
  // v2 requires email; v1 forbids it.
  CHECK(db->insert("users", 2, R"({"_id":"a","name":"A","email":"a@x"})"));
  CHECK(db->insert("users", 1, R"({"_id":"b","name":"B","email":"b@x"})").code() ==
        errc::schema_validation_failed);
  auto a = db->read().get("users", "a");
  CHECK((*a)->schema_version == 2);
}

TEST_CASE_TEMPLATE("regression: a new store's directory, and the commits acknowledged in it, survive a power loss",
                   Db, AERODB_ENGINES) {
  // Found by the real-syscall crash test: the data directory was made by mkdir and never
  // synced into its parent, so a power loss took it away with every acknowledged commit.
  // Here the store's directory and its parent are both new.
  auto fs = std::make_shared<testing::fault_injection_fs>();
  commit_id acked = 0;
  {
    auto db = open_or_fail<Db>("/srv/stores/db", in_memory(fs));
    setup_users(*db);
    REQUIRE(db->insert("users", 1, R"({"_id":"u1","name":"a","age":1})"));
    acked = db->last_commit_id();
  }
  fs->crash({testing::crash_kind::drop_unsynced});
  REQUIRE(*fs->exists("/srv/stores/db"));
  auto db = open_or_fail<Db>("/srv/stores/db", in_memory(fs));
  CHECK(db->last_commit_id() == acked);
  auto got = db->read().get("users", "u1");
  REQUIRE(got);
  CHECK(got->has_value());
}

TEST_CASE_TEMPLATE("conditional writes apply only to the version they were based on", Db, AERODB_ENGINES) {
  auto fs = std::make_shared<testing::fault_injection_fs>();
  open_options opts;
  opts.fs = fs;
  auto db = open_or_fail<Db>("/db", opts);
  setup_users(*db);
  const auto c1 = db->insert("users", 1, R"({"_id":"a","name":"v1"})");
  REQUIRE(c1);
  const auto read_a = [&] {
    auto got = db->read().get("users", "a");
    REQUIRE(got);
    return *got;
  };
  REQUIRE(read_a()->committed_at == *c1);

  // Based on the version read: applies.
  const auto c2 = db->update_if("users", "a", *c1, 1, R"({"_id":"a","name":"v2"})");
  REQUIRE(c2);

  // Based on a version that is no longer the newest: refused, nothing changes.
  const auto last = db->last_commit_id();
  const auto wal_bytes = db->wal_stats().bytes_appended;
  const auto stale = db->update_if("users", "a", *c1, 1, R"({"_id":"a","name":"lost"})");
  REQUIRE_FALSE(stale);
  CHECK(stale.code() == errc::write_conflict);
  CHECK(stale.error_value().detail("based_on") == std::to_string(*c1));
  CHECK(stale.error_value().detail("current") == std::to_string(*c2));
  CHECK(stale.error_value().detail("_id") == "a");
  const auto stale_remove = db->remove_if("users", "a", *c1);
  REQUIRE_FALSE(stale_remove);
  CHECK(stale_remove.code() == errc::write_conflict);
  CHECK(db->last_commit_id() == last);
  CHECK(db->wal_stats().bytes_appended == wal_bytes);
  CHECK(read_a()->committed_at == *c2);
  CHECK(read_a()->doc.to_json_string() == R"({"_id":"a","name":"v2"})");

  // A batch with one stale operation applies none of them.
  write_batch b;
  b.insert("users", 1, R"({"_id":"b","name":"new"})");
  b.update_if("users", "a", *c1, 1, R"({"_id":"a","name":"lost"})");
  const auto batch = db->commit(b);
  REQUIRE_FALSE(batch);
  CHECK(batch.code() == errc::write_conflict);
  CHECK(batch.error_value().detail("batch_op") == "1");
  CHECK(db->last_commit_id() == last);
  CHECK_FALSE(db->read().get("users", "b")->has_value());

  // A conditional delete of the current version applies; the deletion is then the newest
  // version: an update based on it finds nothing to update, one based on the older
  // version conflicts.
  const auto removed = db->remove_if("users", "a", *c2);
  REQUIRE(removed);
  CHECK(removed->deleted);
  const commit_id c3 = removed->commit;
  CHECK(db->update_if("users", "a", c3, 1, R"({"_id":"a","name":"x"})").code() == errc::document_not_found);
  CHECK(db->update_if("users", "a", *c2, 1, R"({"_id":"a","name":"x"})").code() == errc::write_conflict);

  // A document that never existed is at CommitId 0.
  CHECK(db->update_if("users", "never", 0, 1, R"({"_id":"never","name":"x"})").code() ==
        errc::document_not_found);
  const auto noop = db->remove_if("users", "never", 0);
  REQUIRE(noop);
  CHECK_FALSE(noop->deleted);
  const auto wrong = db->remove_if("users", "never", 7);
  REQUIRE_FALSE(wrong);
  CHECK(wrong.code() == errc::write_conflict);
  CHECK(wrong.error_value().detail("current") == "0");

  // The condition is checked, never logged: the state survives a reopen as it was.
  const auto image = image_of(*db);
  db.reset();
  auto again = open_or_fail<Db>("/db", opts);
  CHECK(image_of(*again) == image);
}

namespace {

// Every directory and file under `top` (itself included) with its permission bits.
std::map<std::string, unsigned> modes_under(const std::string& top) {
  std::map<std::string, unsigned> out;
  auto add = [&](const std::filesystem::path& p) {
    struct ::stat st {};
    REQUIRE(::stat(p.c_str(), &st) == 0);
    out[p.string()] = static_cast<unsigned>(st.st_mode & 07777);
  };
  add(top);
  for (const auto& e : std::filesystem::recursive_directory_iterator(top)) add(e.path());
  return out;
}

}  // namespace

TEST_CASE("a new store's files and directories carry the configured modes, owner-only by default, whatever the umask allows") {
  char tmpl[] = "/tmp/aerodb-test-modes-XXXXXX";
  REQUIRE(::mkdtemp(tmpl) != nullptr);
  const std::string root = tmpl;
  struct cleanup {
    std::string root;
    ::mode_t umask_before = ::umask(0);
    ~cleanup() {
      ::umask(umask_before);
      std::error_code ec;
      std::filesystem::remove_all(root, ec);
    }
  } guard{root};
  struct variant {
    ::mode_t umask;
    std::uint32_t file_mode, dir_mode;  // 0: the defaults
    unsigned want_file, want_dir;
  };
  const variant variants[] = {
      {0, 0, 0, 0600, 0700},       // a umask that allows everything: still owner-only
      {022, 0, 0, 0600, 0700},
      {0, 0640, 0750, 0640, 0750},  // configured
      {027, 0664, 0775, 0640, 0750},  // the umask may still take bits away
  };
  int n = 0;
  for (const auto& v : variants) {
    ::umask(v.umask);
    const std::string top = root + "/store" + std::to_string(n++);
    const std::string dir = top + "/nested/data";  // directories the open creates
    open_options o;
    if (v.file_mode) o.file_mode = v.file_mode;
    if (v.dir_mode) o.dir_mode = v.dir_mode;
    {
      auto db = open_or_fail<database>(dir, o);
      setup_users(*db);
      REQUIRE(db->insert("users", 1, R"({"_id":"a","name":"n"})"));
      REQUIRE(db->checkpoint());
      REQUIRE(db->insert("users", 1, R"({"_id":"b","name":"n"})"));
    }
    const auto modes = modes_under(top);
    std::size_t files = 0, dirs = 0;
    for (const auto& entry : modes) {
      const std::string& path = entry.first;
      const unsigned mode = entry.second;
      INFO(path << " umask 0" << std::oct << v.umask);
      if (std::filesystem::is_directory(path)) {
        ++dirs;
        CHECK(mode == v.want_dir);
      } else {
        ++files;
        CHECK(mode == v.want_file);
      }
    }
    CHECK(dirs >= 3);   // top, nested, data (and the store's own subdirectories)
    CHECK(files >= 4);  // lock, segment, snapshot data, manifest or CHECKPOINT
  }

  // Modes that would lock the owner out are refused before anything is created.
  for (auto [file_mode, dir_mode, option] : {std::tuple<std::uint32_t, std::uint32_t, const char*>{0400, 0700, "file_mode"},
                                             {0600, 0500, "dir_mode"},
                                             {01600, 0700, "file_mode"}}) {
    open_options o;
    o.file_mode = file_mode;
    o.dir_mode = dir_mode;
    const std::string dir = root + "/refused";
    auto r = database::open(dir, o);
    REQUIRE_FALSE(r);
    CHECK(r.code() == errc::config_invalid);
    CHECK(r.error_value().detail("option") == option);
    CHECK_FALSE(std::filesystem::exists(dir));
  }
}

TEST_CASE_TEMPLATE("opt-in automatic checkpoints and GC bound the log and the history", Db, AERODB_ENGINES) {
  auto fs = std::make_shared<testing::fault_injection_fs>();
  auto segments_in = [&] {
    auto names = fs->list_dir("/db");
    REQUIRE(names);
    return std::count_if(names->begin(), names->end(),
                         [](const std::string& n) { return n.starts_with("wal-") && n.ends_with(".log"); });
  };
  const std::string doc = R"({"_id":"a","name":"a fairly long name, to fill the log a little faster"})";

  // Without the options nothing is checkpointed or collected by itself.
  {
    open_options o;
    o.fs = std::make_shared<testing::fault_injection_fs>();
    o.wal_segment_bytes = 4096;
    o.wal_preallocate_bytes = 4096;
    auto db = open_or_fail<Db>("/db", o);
    setup_users(*db);
    REQUIRE(db->insert("users", 1, doc));
    for (int i = 0; i < 300; ++i) REQUIRE(db->update("users", "a", 1, doc));
    CHECK(db->metrics().checkpoints == 0);
    CHECK(db->memory().versions == 301);
  }

  open_options o;
  o.fs = fs;
  o.wal_segment_bytes = 4096;
  o.wal_preallocate_bytes = 4096;
  o.checkpoint_after_log_bytes = 16384;
  o.gc_after_superseded_versions = 50;
  std::uint64_t most_versions = 0;
  long most_segments = 0;
  {
    auto db = open_or_fail<Db>("/db", o);
    setup_users(*db);
    REQUIRE(db->insert("users", 1, doc));
    for (int i = 0; i < 300; ++i) {
      REQUIRE(db->update("users", "a", 1, doc));
      most_versions = std::max(most_versions, db->memory().versions);
      most_segments = std::max(most_segments, segments_in());
    }
    CHECK_FALSE(db->maintenance_error().has_value());
    // 300 updates of about 100 bytes each are some 35 KiB of log: two checkpoints or more.
    CHECK(db->metrics().checkpoints >= 2);
    // The chain never grows much past the threshold: a GC ran every 50 superseded versions.
    CHECK(most_versions <= 51);
    // The log never grows much past the threshold: 16 KiB in segments of 4 KiB, plus the
    // active one.
    CHECK(most_segments <= 6);
  }
  // A reopen replays only what the last checkpoint did not cover, and sees the state.
  auto db = open_or_fail<Db>("/db", o);
  CHECK(db->recovery().checkpoint > 0);
  CHECK(db->recovery().records_replayed < 200);
  auto got = db->read().get("users", "a");
  REQUIRE(got);
  REQUIRE(got->has_value());
  CHECK((*got)->doc.to_json_string() == doc);
}
