// Snapshot bootstrap (docs/replication.md §8, engine/snapshot_install.hpp), over the
// in-process transport:
//   - a replica whose next record the primary's log no longer holds (a checkpoint removed
//     it), or a new one, is bootstrapped from the primary's image and the primary's
//     segment holding its boundary, then follows; its log's records are the primary's,
//     byte for byte, and it answers as the primary does; for every pair of baseline and
//     accelerated engines on the two sides, and for replicas with the read fast path
//     (whose boundary comes back with the records after the install);
//   - a snapshot damaged in transit, or cut short, halts the replica with nothing of it
//     installed and no staged file left;
//   - a bootstrap with a read view of the replica open halts instead of installing, and
//     the view's answers do not change;
//   - readers on two threads while a bootstrap installs (with either replica read policy)
//     see the old state or the new one;
//   - a crash at every mutating file operation of the bootstrap, each crashed with
//     unsynced data dropped and with it kept, reopens to the old state or the new one,
//     never a mix, and the replica then catches up.
#include "support/common.hpp"
#include "support/replication.hpp"

#include <aerodb/replication.hpp>

using namespace aerodb;
using namespace aerodb_test;
namespace repl = aerodb::replication;

TEST_CASE_TEMPLATE("a replica the primary's log cannot serve bootstraps from a snapshot, then follows with the "
                   "primary's log byte for byte",
                   S, base_base, base_accel, accel_base, accel_accel, base_fastpath, accel_accelrep) {
  using P = typename S::primary;
  using R = typename S::replica;
  using Replica = repl::basic_replica<R, typename S::read_policy>;
  using Session = session<P, R, typename S::read_policy>;
  auto fs = std::make_shared<testing::fault_injection_fs>();
  auto primary = open_or_fail<P>("/p", small_segments(fs));
  setup(*primary);
  churn(*primary, 1, 60);
  bool fresh = false;
  SUBCASE("a replica that fell behind") { fresh = false; }
  SUBCASE("a new replica") { fresh = true; }
  commit_id behind = 0;
  if (!fresh) {
    auto opened = Replica::open("/r", small_segments(fs));
    REQUIRE(opened);
    Session l(*primary, **opened);
    REQUIRE(caught_up(**opened, primary->last_commit_id()));
    behind = (*opened)->applied();
  }
  truncate_past(*primary, *fs, behind, 7);
  {
    auto opened = Replica::open("/r", small_segments(fs));
    REQUIRE(opened);
    auto& replica = **opened;
    {
      Session l(*primary, replica);
      REQUIRE(caught_up(replica, primary->last_commit_id()));
      // It follows on from there, writers running.
      std::thread writer([&] { churn(*primary, 99, 150, 100); });
      writer.join();
      REQUIRE(caught_up(replica, primary->last_commit_id()));
      // Read only now: the feed counts a bootstrap after its last frame is sent, which may
      // be after the replica installed it; records after it were sent after the count.
      CHECK(l.feed.bootstraps_shipped() == 1);
    }
    CHECK(!replica.halted());
    CHECK(replica.status().bootstraps_installed == 1);
    // With the fast path, the boundary is back at the newest record applied after the install.
    CHECK(replica.read_boundary() ==
          (std::is_same_v<typename S::read_policy, policies::baseline_replica_read> ? 0 : replica.applied()));
    CHECK(image(*replica.read()) == image(primary->read()));
    // The install made the snapshot the replica's checkpoint and left no staged file.
    CHECK(fs->exists("/r/CHECKPOINT").value());
    CHECK(!fs->exists("/r/BOOTSTRAP").value());
    CHECK(!fs->exists("/r/bootstrap-data.staged").value());
    CHECK(!fs->exists("/r/bootstrap-segment.staged").value());
  }
  // Every segment the replica holds is the primary's, records byte for byte, and the
  // first one starts where the primary's does.
  const auto ps = segments(*fs, "/p"), rs = segments(*fs, "/r");
  REQUIRE(!rs.empty());
  CHECK(is_prefix(rs, ps));
  CHECK(rs.begin()->first == ps.begin()->first);
  // Reopened, it answers the same, and a second handshake needs no bootstrap.
  auto again = Replica::open("/r", small_segments(fs));
  REQUIRE(again);
  CHECK(image(*(*again)->read()) == image(primary->read()));
  churn(*primary, 5, 30, 200);
  Session l(*primary, **again);
  REQUIRE(caught_up(**again, primary->last_commit_id()));
  CHECK(l.feed.bootstraps_shipped() == 0);
  CHECK(image(*(*again)->read()) == image(primary->read()));
}

namespace {

// Every file of `dir`, name -> current bytes.
std::map<std::string, std::vector<std::byte>> files_of(testing::fault_injection_fs& fs, const std::string& dir) {
  std::map<std::string, std::vector<std::byte>> out;
  const auto names = fs.list_dir(dir);
  REQUIRE(names);
  for (const auto& n : *names) out[n] = fs.contents(io::join(dir, n));
  return out;
}

}  // namespace

TEST_CASE("a snapshot damaged in transit or cut short halts the replica with nothing of it installed") {
  using Db = aerodb::database;
  auto pfs = std::make_shared<testing::fault_injection_fs>();
  auto rfs = std::make_shared<testing::fault_injection_fs>();
  auto primary = open_or_fail<Db>("/p", small_segments(pfs));
  setup(*primary);
  churn(*primary, 1, 40);
  {
    auto r = repl::basic_replica<Db>::open("/r", small_segments(rfs));
    REQUIRE(r);
    session<Db, Db> l(*primary, **r);
    REQUIRE(caught_up(**r, primary->last_commit_id()));
  }
  const commit_id behind = primary->last_commit_id();
  truncate_past(*primary, *pfs, behind, 3);

  auto opened = repl::basic_replica<Db>::open("/r", small_segments(rfs));
  REQUIRE(opened);
  const auto frames = bootstrap_frames(*primary, (*opened)->make_hello());
  const std::string before_image = image(*(*opened)->read());
  opened->reset();
  const auto before_files = files_of(*rfs, "/r");
  REQUIRE(frames.size() > 3);

  // Which frame is changed, and how: a byte of snapshot data flipped (its frame checksum
  // redone, as a forger would), or the stream cut before its end.
  std::string how;
  SUBCASE("a byte of snapshot data flipped") { how = "flipped"; }
  SUBCASE("the stream ends before its snapshot does") { how = "cut"; }
  const std::size_t chunk = 2;  // the first snapshot_chunk (0: welcome, 1: begin)
  auto r = repl::basic_replica<Db>::open("/r", small_segments(rfs));
  REQUIRE(r);
  auto& replica = **r;
  std::optional<error> halted;
  for (std::size_t i = 0; i < frames.size() && !halted; ++i) {
    std::vector<std::byte> f = frames[i];
    if (how == "cut" && i == frames.size() - 1) {
      f = repl::encode(repl::snapshot_end{primary->last_commit_id() + 1});  // claims an end it never sent
    }
    auto m = repl::decode(f);
    REQUIRE(m);
    if (how == "flipped" && i == chunk) {
      auto* c = std::get_if<repl::snapshot_chunk>(&*m);
      REQUIRE(c);
      std::vector<std::byte> bytes(c->bytes.begin(), c->bytes.end());
      bytes[bytes.size() / 2] ^= std::byte{0x10};
      f = repl::encode(repl::snapshot_chunk{bytes});
      m = repl::decode(f);
      REQUIRE(m);
    }
    auto reply = replica.on_message(*m);
    if (!reply) halted = reply.error_value();
  }
  REQUIRE(halted);
  CHECK(halted->code() == (how == "flipped" ? errc::replication_record_corrupt : errc::replication_protocol));
  CHECK(replica.halted());
  CHECK(replica.status().bootstraps_installed == 0);
  CHECK(!replica.read());
  REQUIRE(replica.resume());
  CHECK(image(*replica.read()) == before_image);
  r->reset();
  CHECK(files_of(*rfs, "/r") == before_files);
}

TEST_CASE("a bootstrap with a read view of the replica open halts instead of installing, the view unchanged") {
  using Db = aerodb::database;
  auto fs = std::make_shared<testing::fault_injection_fs>();
  auto primary = open_or_fail<Db>("/p", small_segments(fs));
  setup(*primary);
  churn(*primary, 1, 40);
  auto opened = repl::basic_replica<Db>::open("/r", small_segments(fs));
  REQUIRE(opened);
  auto& replica = **opened;
  {
    session<Db, Db> l(*primary, replica);
    REQUIRE(caught_up(replica, primary->last_commit_id()));
  }
  truncate_past(*primary, *fs, replica.applied(), 11);
  auto view = replica.read();
  REQUIRE(view);
  const std::string seen = image(*view);
  {
    session<Db, Db> l(*primary, replica);
    l.wait_end();
    REQUIRE(!l.followed);
    CHECK(l.followed.code() == errc::replication_snapshot_needed);
  }
  CHECK(replica.halted());
  CHECK(image(*view) == seen);
  view = replica.read();  // refused while halted
  CHECK(!view);
  // Once the operator closed the view and resumed, the next handshake installs it.
  REQUIRE(replica.resume());
  {
    session<Db, Db> l(*primary, replica);
    REQUIRE(caught_up(replica, primary->last_commit_id()));
  }
  CHECK(replica.status().bootstraps_installed == 1);
  CHECK(image(*replica.read()) == image(primary->read()));
}

TEST_CASE_TEMPLATE("a crash at every file operation of a snapshot bootstrap reopens to the old state or the new, "
                   "and the replica then catches up",
                   Db, aerodb::database, aerodb::accelerated_database) {
  auto pfs = std::make_shared<testing::fault_injection_fs>();
  auto rfs = std::make_shared<testing::fault_injection_fs>();
  auto primary = open_or_fail<Db>("/p", small_segments(pfs));
  setup(*primary);
  churn(*primary, 1, 40);
  {
    auto r = repl::basic_replica<Db>::open("/r", small_segments(rfs));
    REQUIRE(r);
    session<Db, Db> l(*primary, **r);
    REQUIRE(caught_up(**r, primary->last_commit_id()));
    REQUIRE((*r)->checkpoint());  // so the old state has a checkpoint of its own to replace
    churn(*primary, 2, 20);
    REQUIRE(caught_up(**r, primary->last_commit_id()));
  }
  const commit_id old_applied = primary->last_commit_id();
  truncate_past(*primary, *pfs, old_applied, 5);
  const commit_id new_applied = primary->last_commit_id();

  std::string old_image, new_image = image(primary->read());
  repl::hello h;
  {
    auto r = repl::basic_replica<Db>::open("/r", small_segments(rfs));
    REQUIRE(r);
    old_image = image(*(*r)->read());
    h = (*r)->make_hello();
  }
  const auto frames = bootstrap_frames(*primary, h);

  // Runs the bootstrap on a copy of the replica's disk, letting `allowed` mutating
  // operations through (all of them when 0); returns the disk and how many it took.
  auto run = [&](std::uint64_t allowed) {
    auto disk = rfs->copy_disk();
    auto r = repl::basic_replica<Db>::open("/r", small_segments(disk));
    REQUIRE(r);
    const std::uint64_t base = disk->op_count();
    if (allowed) disk->crash_after(base + allowed);
    for (const auto& f : frames) {
      auto m = repl::decode(f);
      REQUIRE(m);
      if (!(*r)->on_message(*m)) break;
    }
    r->reset();
    return std::make_pair(disk, disk->op_count() - base);
  };
  const auto whole = run(0);
  const std::uint64_t total = whole.second;
  REQUIRE(total > 10);
  std::uint64_t old_states = 0, new_states = 0;
  for (std::uint64_t k = 1; k <= total; ++k) {
    for (const bool keep : {false, true}) {
      auto disk = run(k).first;
      disk->crash(keep ? testing::crash_spec{testing::crash_kind::keep_unsynced}
                       : testing::crash_spec{testing::crash_kind::drop_unsynced});
      INFO("crash after operation " << k << " of " << total << (keep ? ", unsynced data kept" : ", unsynced data dropped"));
      auto r = repl::basic_replica<Db>::open("/r", small_segments(disk));
      REQUIRE(r);
      auto& replica = **r;
      const commit_id at = replica.applied();
      REQUIRE((at == old_applied || at == new_applied));
      CHECK(image(*replica.read()) == (at == old_applied ? old_image : new_image));
      (at == old_applied ? old_states : new_states) += 1;
      CHECK(!disk->exists("/r/BOOTSTRAP").value());
      CHECK(!disk->exists("/r/bootstrap-data.staged").value());
      // And it catches up from there.
      if (k % 7 == 0 || k == total) {
        session<Db, Db> l(*primary, replica);
        REQUIRE(caught_up(replica, primary->last_commit_id()));
        CHECK(image(*replica.read()) == new_image);
      }
    }
  }
  MESSAGE("bootstrap crash sweep: " << total << " operations, " << old_states << " old states, " << new_states
                                    << " new states");
  CHECK(old_states > 0);
  CHECK(new_states > 0);
}

TEST_CASE_TEMPLATE("readers on other threads during a bootstrap see the old state or the new one, and never a closed "
                   "database", RP, policies::baseline_replica_read, policies::replica_read_fast_path) {
  using Db = aerodb::database;
  auto fs = std::make_shared<testing::fault_injection_fs>();
  auto primary = open_or_fail<Db>("/p", small_segments(fs));
  setup(*primary);
  churn(*primary, 1, 40);
  auto opened = repl::basic_replica<Db, RP>::open("/r", small_segments(fs));
  REQUIRE(opened);
  auto& replica = **opened;
  {
    session<Db, Db, RP> l(*primary, replica);
    REQUIRE(caught_up(replica, primary->last_commit_id()));
  }
  const std::string old_image = image(*replica.read());
  const commit_id old_applied = replica.applied();
  truncate_past(*primary, *fs, old_applied, 13);
  const std::string new_image = image(primary->read());
  const commit_id new_applied = primary->last_commit_id();

  // Two readers: each view lives for one image and is closed, so the install finds a
  // moment with none open (if it does not, it halts, and the loop below resumes it).
  std::atomic<bool> done{false};
  std::atomic<int> bad{0}, reads{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 2; ++t)
    readers.emplace_back([&] {
      while (!done.load()) {
        (void)replica.status();
        (void)replica.metrics();
        auto v = replica.read();
        if (!v) continue;  // halted for a moment: refused, as it must be
        const std::string seen = image(*v);
        if (!((v->bound() == old_applied && seen == old_image) || (v->bound() == new_applied && seen == new_image)))
          bad.fetch_add(1);
        reads.fetch_add(1);
        v = result<Db::read_view>(error(errc::internal_bug, "closed"));  // the view closes here
        std::this_thread::sleep_for(std::chrono::milliseconds(1));     // a gap with no view open
      }
    });
  int attempts = 0;
  while (replica.applied() < new_applied && attempts < 50) {
    ++attempts;
    if (replica.halted()) {
      CHECK(replica.status().halt_reason->code() == errc::replication_snapshot_needed);
      REQUIRE(replica.resume());
    }
    session<Db, Db, RP> l(*primary, replica);
    (void)caught_up(replica, new_applied);  // installed, or halted by an open view
  }
  done.store(true);
  for (auto& r : readers) r.join();
  MESSAGE("bootstrap under readers: " << attempts << " attempt(s), " << reads.load() << " reads");
  CHECK(bad.load() == 0);
  CHECK(replica.applied() == new_applied);
  CHECK(image(*replica.read()) == new_image);
}
