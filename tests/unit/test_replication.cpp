// Replication (replication/*.hpp, docs/replication.md), over the in-process transport:
//   - the wire format round-trips, and a damaged frame is refused, never read as another
//     message;
//   - a replica following a primary under several writers ends with the primary's log
//     files byte for byte, and at sampled CommitIds answers reads and queries as the
//     primary does at the same CommitId; for every pair of baseline and accelerated
//     engines on the two sides;
//   - a record damaged in transit, a gap, a duplicate, and a handshake that shows
//     divergence each halt the replica with its state and its files unchanged, and reads
//     are refused while it is halted; reads above the applied CommitId are refused;
//   - a replica's directory refuses a primary open; a restarted replica (after a crash
//     of its disk) catches up with no gap and no duplicate;
//   - a GC record that arrives while a replica view below its floor is open does not
//     change that view's answers;
//   - promotion: the replica becomes the primary of the next epoch, durably; the old
//     primary, told of the newer epoch by a replica's handshake, refuses writes for good.
#include "support/common.hpp"
#include "support/replication.hpp"

#include <aerodb/replication.hpp>

#include <atomic>
#include <chrono>
#include <random>
#include <thread>

using namespace aerodb;
using namespace aerodb_test;
namespace repl = aerodb::replication;

TEST_CASE("replication frames round-trip, and a damaged frame is refused, never read as another message") {
  std::vector<std::byte> record;
  format::append_plain_record(record, format::record_type::gc, 9, format::encode_gc(4));
  const std::vector<repl::message> all = {
      repl::hello{3, 17, 0xdeadbeef}, repl::welcome{3, 40},     repl::segment_start{2, 18},
      repl::record_frame{record},    repl::ack{17},            repl::refuse{errc::replication_divergence, "why"},
      repl::snapshot_begin{40, 9000, 0x1234, {2, 18}},             repl::snapshot_chunk{record},
      repl::snapshot_end{40}};
  for (const auto& m : all) {
    const auto bytes = repl::encode(m);
    auto back = repl::decode(bytes);
    REQUIRE(back);
    CHECK(*back == m);
    for (std::size_t bit = 0; bit < bytes.size() * 8; ++bit) {
      auto bad = bytes;
      bad[bit / 8] ^= std::byte{static_cast<unsigned char>(1u << (bit % 8))};
      auto r = repl::decode(bad);
      INFO("message " << m.index() << " bit " << bit);
      REQUIRE(!r);
      CHECK(r.code() == errc::replication_protocol);
    }
    // Cut short anywhere: refused.
    for (std::size_t n = 0; n < bytes.size(); ++n) CHECK(!repl::decode(std::span(bytes).first(n)));
  }
  SUBCASE("a hello naming a checksum for an empty log is refused") {
    CHECK(!repl::decode(repl::encode(repl::hello{0, 0, 5})));
  }
}

TEST_CASE_TEMPLATE("a replica following a primary under writers holds the primary's log byte for byte and "
                   "answers as the primary at sampled CommitIds",
                   S, base_base, base_accel, accel_base, accel_accel) {
  using P = typename S::primary;
  using R = typename S::replica;
  auto fs = std::make_shared<testing::fault_injection_fs>();
  auto primary = open_or_fail<P>("/p", small_segments(fs));
  setup(*primary);
  churn(*primary, 1, 50);  // some history before the replica exists
  auto opened = repl::basic_replica<R>::open("/r", small_segments(fs));
  REQUIRE(opened);
  auto& replica = **opened;

  session<P, R> l(*primary, replica);
  std::atomic<bool> writing{true};
  std::vector<std::thread> writers;
  for (std::uint32_t t = 0; t < 3; ++t)
    writers.emplace_back([&, t] { churn(*primary, 100 + t, 300, 1000 * static_cast<int>(t + 1)); });
  int samples = 0;
  std::thread sampler([&] {
    do {
      const commit_id c = replica.applied();
      auto rv = replica.read_at(c);
      auto pv = primary->read_at(c);
      if (!rv || !pv) break;
      CHECK(image(*rv) == image(*pv));
      const auto rs = segments(*fs, "/r");  // first: the primary's only grow meanwhile
      CHECK(is_prefix(rs, segments(*fs, "/p")));
      ++samples;
          std::this_thread::sleep_for(std::chrono::milliseconds(2));
    } while (writing.load());
  });
  for (auto& w : writers) w.join();
  REQUIRE(primary->create_index("recs", "s"));  // an index made while the replica follows
  churn(*primary, 7, 20);
  writing.store(false);
  sampler.join();
  CHECK(samples > 0);
  const commit_id last = primary->last_commit_id();
  const bool up = caught_up(replica, last);
  if (!up) {
    auto st = replica.status();
    MESSAGE("applied " << st.applied << " of " << last << " halted " << (st.halt_reason ? st.halt_reason->to_string() : "no"));
  }
  REQUIRE(up);
  CHECK(!replica.halted());
  CHECK(l.feed.acknowledged() <= last);
  l.close();
  CHECK(l.followed.code() == errc::replication_disconnected);

  auto rv = replica.read();
  REQUIRE(rv);
  CHECK(image(*rv) == image(primary->read()));
  CHECK(rv->bound() == last);
  // The same files: every segment, byte for byte (the replica laid its segments out where
  // the primary's are, whatever the sizes of the groups the primary wrote).
  const auto ps = segments(*fs, "/p"), rs = segments(*fs, "/r");
  CHECK(ps.size() > 3);
  CHECK(ps == rs);
  CHECK(replica.status().records_applied == last);
}

TEST_CASE_TEMPLATE("a damaged, missing or repeated record halts the replica with nothing of it stored or applied",
                   Db, aerodb::database, aerodb::accelerated_database) {
  auto fs = std::make_shared<testing::fault_injection_fs>();
  auto primary = open_or_fail<Db>("/p", small_segments(fs));
  setup(*primary);
  churn(*primary, 3, 40);
  auto opened = repl::basic_replica<Db>::open("/r", small_segments(fs));
  REQUIRE(opened);
  auto& replica = **opened;

  // The frames the primary would send, decoded by hand.
  repl::primary_feed<Db> feed(*primary);
  auto w = feed.on_hello(replica.make_hello());
  REQUIRE(w);
  REQUIRE(replica.on_message(*w));
  format::byte_buffer out;
  REQUIRE(feed.next_frames(out, primary->last_commit_id()));
  std::vector<std::vector<std::byte>> frames;
  for (std::size_t at = 0; at < out.size();) {
    auto h = repl::decode_header(std::span(out).subspan(at, repl::frame_header_size));
    REQUIRE(h);
    const std::size_t len = repl::frame_header_size + h->body_length;
    frames.emplace_back(out.begin() + static_cast<std::ptrdiff_t>(at),
                        out.begin() + static_cast<std::ptrdiff_t>(at + len));
    at += len;
  }
  auto deliver = [&](const std::vector<std::byte>& f) { return replica.on_message(*repl::decode(f)); };
  // The first 20 frames (segment and record frames) apply.
  std::size_t i = 0;
  for (; i < 20; ++i) REQUIRE(deliver(frames[i]));
  const commit_id applied = replica.applied();
  REQUIRE(applied > 5);
  const auto files_before = segments(*fs, "/r");
  const std::string image_before = image(*replica.read());
  // The next record frame, and what to do with it.
  while (repl::decode(frames[i])->index() != 3) REQUIRE(deliver(frames[i++]));
  const auto rec = std::get<repl::record_frame>(*repl::decode(frames[i]));
  std::vector<std::byte> bytes(rec.framed.begin(), rec.framed.end());

  auto halted_with = [&](errc code) {
    CHECK(replica.halted());
    CHECK(replica.status().halt_reason->code() == code);
    CHECK(replica.applied() == applied);
    CHECK(segments(*fs, "/r") == files_before);
    auto r = replica.read();
    REQUIRE(!r);
    CHECK(r.code() == errc::replication_halted);
    CHECK(replica.read_at(applied).code() == errc::replication_halted);
    // Nothing is taken while halted, not even the right record.
    CHECK(deliver(frames[i]).code() == errc::replication_halted);
    CHECK(replica.applied() == applied);
    // An operator's resume: the same state, and the right record applies.
    REQUIRE(replica.resume());
    CHECK(image(*replica.read()) == image_before);
    REQUIRE(deliver(frames[i]));
    CHECK(replica.applied() == applied + 1);
  };
  SUBCASE("a flipped bit in the record, inside a frame that verifies") {
    for (std::size_t bit : {std::size_t{3 * 8}, std::size_t{8 * 8 + 1}, std::size_t{30 * 8 + 4}, bytes.size() * 8 - 2}) {
      auto bad = bytes;
      bad[bit / 8] ^= std::byte{static_cast<unsigned char>(1u << (bit % 8))};
      auto r = replica.on_message(repl::record_frame{bad});
      REQUIRE(!r);
      CHECK(r.code() == errc::replication_record_corrupt);
      CHECK(replica.applied() == applied);
      CHECK(segments(*fs, "/r") == files_before);
      if (bit != bytes.size() * 8 - 2) REQUIRE(replica.resume());
    }
    halted_with(errc::replication_record_corrupt);
  }
  SUBCASE("a gap: the record after the next") {
    std::size_t j = i + 1;
    while (repl::decode(frames[j])->index() != 3) ++j;
    auto r = deliver(frames[j]);
    REQUIRE(!r);
    CHECK(r.code() == errc::replication_gap);
    halted_with(errc::replication_gap);
  }
  SUBCASE("a duplicate: a record already applied") {
    std::size_t j = i - 1;
    while (repl::decode(frames[j])->index() != 3) --j;
    auto r = deliver(frames[j]);
    REQUIRE(!r);
    CHECK(r.code() == errc::replication_gap);
    halted_with(errc::replication_gap);
  }
}

TEST_CASE_TEMPLATE("a diverged replica halts at the handshake, and reads above the applied CommitId are refused",
                   Db, aerodb::database, aerodb::accelerated_database) {
  auto fs = std::make_shared<testing::fault_injection_fs>();
  auto primary = open_or_fail<Db>("/p", small_segments(fs));
  setup(*primary);
  churn(*primary, 5, 30);
  auto opened = repl::basic_replica<Db>::open("/r", small_segments(fs));
  REQUIRE(opened);
  auto& replica = **opened;
  {
    session<Db, Db> l(*primary, replica);
    REQUIRE(caught_up(replica, primary->last_commit_id()));
  }
  const commit_id applied = replica.applied();
  auto ahead = replica.read_at(applied + 1);
  REQUIRE(!ahead);
  CHECK(ahead.code() == errc::replication_read_ahead);
  REQUIRE(replica.read_at(applied));

  SUBCASE("another store with the same number of records, but other ones") {
    auto other = open_or_fail<Db>("/o", small_segments(fs));
    setup(*other);
    churn(*other, 6, 30);
    while (other->last_commit_id() < applied) churn(*other, 8, 1);
    session<Db, Db> l(*other, replica);
    l.wait_end();
    CHECK(l.served.code() == errc::replication_divergence);
    CHECK(l.followed.code() == errc::replication_divergence);
    CHECK(replica.halted());
    CHECK(replica.status().halt_reason->code() == errc::replication_divergence);
  }
  SUBCASE("a primary that holds fewer records than the replica") {
    auto other = open_or_fail<Db>("/o", small_segments(fs));
    setup(*other);
    session<Db, Db> l(*other, replica);
    l.wait_end();
    CHECK(l.served.code() == errc::replication_divergence);
    CHECK(replica.halted());
  }
  CHECK(replica.applied() == applied);
  CHECK(replica.read().code() == errc::replication_halted);
}

TEST_CASE_TEMPLATE("a replica's directory refuses a primary open, and a restarted replica catches up with no gap "
                   "and no duplicate", Db, aerodb::database, aerodb::accelerated_database) {
  auto pfs = std::make_shared<testing::fault_injection_fs>();
  auto rfs = std::make_shared<testing::fault_injection_fs>();
  auto primary = open_or_fail<Db>("/p", small_segments(pfs));
  setup(*primary);
  for (int round = 0; round < 4; ++round) {
    churn(*primary, 10 + static_cast<std::uint32_t>(round), 40);
    {
      auto opened = repl::basic_replica<Db>::open("/r", small_segments(rfs));
      REQUIRE(opened);
      auto& replica = **opened;
      CHECK(replica.status().records_applied == 0);
      const commit_id before = replica.applied();
      {
        session<Db, Db> l(*primary, replica);
        REQUIRE(caught_up(replica, primary->last_commit_id()));
      }
      CHECK(replica.status().records_applied == primary->last_commit_id() - before);
      CHECK(image(*replica.read()) == image(primary->read()));
      if (round == 2) REQUIRE(replica.checkpoint());  // a replica bounds its own log
    }
    // The replica's disk loses what it did not sync (nothing acknowledged was).
    rfs->crash();
    auto as_primary = Db::open("/r", small_segments(rfs));
    REQUIRE(!as_primary);
    CHECK(as_primary.code() == errc::replication_not_primary);
  }
  // The replica's checkpoint removed the segments it covers; the rest are the primary's.
  const auto ps = segments(*pfs, "/p"), rs = segments(*rfs, "/r");
  CHECK(rs.size() < ps.size());
  for (const auto& [name, bytes] : rs) CHECK(ps.at(name) == bytes);
}

TEST_CASE_TEMPLATE("a GC record applied while a replica view below its floor is open leaves that view's answers "
                   "as they were", Db, aerodb::database, aerodb::accelerated_database) {
  auto fs = std::make_shared<testing::fault_injection_fs>();
  auto primary = open_or_fail<Db>("/p", small_segments(fs));
  setup(*primary);
  churn(*primary, 20, 60);
  auto opened = repl::basic_replica<Db>::open("/r", small_segments(fs));
  REQUIRE(opened);
  auto& replica = **opened;
  session<Db, Db> l(*primary, replica);
  REQUIRE(caught_up(replica, primary->last_commit_id()));
  auto first_view = replica.read();
  REQUIRE(first_view);
  std::optional<typename Db::read_view> old_view(std::move(*first_view));
  const std::string old_image = image(*old_view);
  const auto held = replica.memory();
  churn(*primary, 21, 200);  // overwrite most of it
  auto g = primary->gc();
  REQUIRE(g);
  REQUIRE(g->versions_freed > 0);
  REQUIRE(caught_up(replica, primary->last_commit_id()));
  CHECK(image(*old_view) == old_image);
  CHECK(image(*replica.read()) == image(primary->read()));
  // Once the view is gone, the next GC record frees what it held back.
  old_view.reset();
  churn(*primary, 22, 5);
  REQUIRE(primary->gc());
  REQUIRE(caught_up(replica, primary->last_commit_id()));
  CHECK(replica.memory().versions < held.versions + 200);
  CHECK(replica.memory().versions == primary->memory().versions);
}

TEST_CASE_TEMPLATE("promotion makes the replica the primary of the next epoch; the old primary, told of it, "
                   "refuses writes for good", Db, aerodb::database, aerodb::accelerated_database) {
  auto pfs = std::make_shared<testing::fault_injection_fs>();
  auto rfs = std::make_shared<testing::fault_injection_fs>();
  auto primary = open_or_fail<Db>("/p", small_segments(pfs));
  setup(*primary);
  churn(*primary, 30, 50);
  auto opened = repl::basic_replica<Db>::open("/r", small_segments(rfs));
  REQUIRE(opened);
  {
    session<Db, Db> l(*primary, **opened);
    REQUIRE(caught_up(**opened, primary->last_commit_id()));
  }
  const commit_id last = primary->last_commit_id();
  primary.reset();  // the primary goes away
  pfs->crash();

  auto promoted = repl::basic_replica<Db>::promote(std::move(*opened));
  REQUIRE(promoted);
  auto& leader = **promoted;
  CHECK(leader.epoch() == 1);
  CHECK(leader.role() == format::node_role::primary);
  auto next = leader.insert("recs", 1, doc(1000, 1, 1));
  REQUIRE(next);
  CHECK(*next == last + 1);
  promoted->reset();
  // Durable: the promoted store opens as a primary of epoch 1.
  auto reopened = open_or_fail<Db>("/r", small_segments(rfs));
  CHECK(reopened->epoch() == 1);
  CHECK(reopened->last_commit_id() == last + 1);

  // The old primary comes back with epoch 0 and takes writes until it learns of epoch 1:
  // a replica of the new primary says so in its handshake.
  auto old = open_or_fail<Db>("/p", small_segments(pfs));
  CHECK(old->epoch() == 0);
  auto follower = repl::basic_replica<Db>::open("/f", small_segments(rfs));
  REQUIRE(follower);
  {
    session<Db, Db> l(*reopened, **follower);
    REQUIRE(caught_up(**follower, reopened->last_commit_id()));
  }
  CHECK((*follower)->make_hello().epoch == 1);
  {
    session<Db, Db> l(*old, **follower);
    l.wait_end();
    CHECK(l.served.code() == errc::replication_stale_epoch);
  }
  CHECK(old->role() == format::node_role::deposed);
  auto refused = old->insert("recs", 1, doc(2000, 1, 1));
  REQUIRE(!refused);
  CHECK(refused.code() == errc::replication_stale_epoch);
  old.reset();
  pfs->crash();
  auto again = open_or_fail<Db>("/p", small_segments(pfs));
  CHECK(again->role() == format::node_role::deposed);
  CHECK(again->insert("recs", 1, doc(2001, 1, 1)).code() == errc::replication_stale_epoch);
}

TEST_CASE_TEMPLATE("records that arrive together are made durable by one fsync, and a bad record in a group keeps "
                   "the records before it and nothing of itself",
                   Db, aerodb::database, aerodb::accelerated_database) {
  auto fs = std::make_shared<testing::fault_injection_fs>();
  open_options one_segment;
  one_segment.fs = fs;  // default segment size: no rotation, so the group's fsyncs are its own
  auto primary = open_or_fail<Db>("/p", one_segment);
  setup(*primary);
  churn(*primary, 4, 60);
  auto opened = repl::basic_replica<Db>::open("/r", one_segment);
  REQUIRE(opened);
  auto& replica = **opened;
  repl::primary_feed<Db> feed(*primary);
  auto w = feed.on_hello(replica.make_hello());
  REQUIRE(w);
  REQUIRE(replica.on_message(*w));
  format::byte_buffer out;
  REQUIRE(feed.next_frames(out, primary->last_commit_id()));
  std::vector<repl::message> all;
  for (std::size_t at = 0; at < out.size();) {
    auto h = repl::decode_header(std::span(out).subspan(at, repl::frame_header_size));
    REQUIRE(h);
    const std::size_t len = repl::frame_header_size + h->body_length;
    auto m = repl::decode(std::span(out).subspan(at, len));  // spans point into `out`
    REQUIRE(m);
    all.push_back(*m);
    at += len;
  }
  const std::size_t records = static_cast<std::size_t>(
      std::count_if(all.begin(), all.end(), [](const repl::message& m) { return m.index() == 3; }));
  REQUIRE(records == primary->last_commit_id());

  SUBCASE("a whole group: one fsync, one acknowledgment, the primary's state") {
    const auto before = replica.metrics();
    auto reply = replica.on_messages(all);
    REQUIRE(reply);
    REQUIRE(*reply);
    CHECK(std::get<repl::ack>(**reply).durable == primary->last_commit_id());
    const auto after = replica.metrics();
    CHECK(after.group_commit_fsync_count - before.group_commit_fsync_count == 1);
    CHECK(after.wal_records - before.wal_records == records);
    CHECK(replica.applied() == primary->last_commit_id());
    CHECK(image(*replica.read()) == image(primary->read()));
    CHECK(is_prefix(segments(*fs, "/r"), segments(*fs, "/p")));
  }
  SUBCASE("a damaged record in the middle: those before it applied, it and those after not") {
    // The record frame of CommitId 30, its payload's last byte flipped.
    std::size_t bad = 0;
    for (std::size_t i = 0, seen = 0; i < all.size(); ++i)
      if (all[i].index() == 3 && ++seen == 30) bad = i;
    REQUIRE(bad > 0);
    const auto framed = std::get<repl::record_frame>(all[bad]).framed;
    std::vector<std::byte> damaged(framed.begin(), framed.end());
    damaged[damaged.size() - 2] ^= std::byte{1};
    auto group = all;
    group[bad] = repl::record_frame{damaged};
    auto reply = replica.on_messages(group);
    REQUIRE(!reply);
    CHECK(reply.code() == errc::replication_record_corrupt);
    CHECK(replica.halted());
    CHECK(replica.applied() == 29);
    REQUIRE(replica.resume());
    CHECK(image(*replica.read()) == image(*primary->read_at(29)));
    // The log holds exactly the 29 records: reopened, the replica is at 29.
    opened->reset();
    auto again = repl::basic_replica<Db>::open("/r", one_segment);
    REQUIRE(again);
    CHECK((*again)->applied() == 29);
  }
}
