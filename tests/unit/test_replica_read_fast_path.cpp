// The replica read fast path (policies/replica_read.hpp,
// docs/optimizations/replica_read_fast_path.md):
//   - one scripted sequence (records applied one by one, reads ahead of them, an
//     invalidated boundary, a halt, a record refused while halted, a resume, a gap) given
//     to a replica with the fast path and to one with the baseline check: after every step
//     both admit the same reads with the same answers and refuse the others with the same
//     codes; the boundary is the applied CommitId after a record, and none after an open,
//     a halt, a resume or an invalidation;
//   - through a snapshot bootstrap (staging, install, the records after it) given to both
//     replicas: the fast path is off from the snapshot's first frame until the first
//     records after the install, and the answers are the same after every frame;
//   - two threads reading while a follower applies records and a halt comes in: no read
//     is admitted above the CommitId the replica has applied and made durable (read from
//     what its disk has synced), every admitted read answers as the primary at its bound,
//     and once halt() has returned every read is refused;
//   - disablement: a replica directory written with the fast path follows on with the
//     baseline check and back again, with and without a crash of its disk in between:
//     the same answers at every bound, and at the end the primary's answers and files.
// (The primary and replica pairs with different policies, the fast path among them, are in
// test_replication.cpp.)
#include "support/common.hpp"
#include "support/replication.hpp"

#include <aerodb/replication.hpp>

#include <atomic>
#include <chrono>
#include <latch>
#include <random>
#include <thread>

using namespace aerodb;
using namespace aerodb_test;
namespace repl = aerodb::replication;

namespace {

using fast_path = aerodb::policies::replica_read_fast_path;
using checked = aerodb::policies::baseline_replica_read;

// A read's outcome as text: the view's answers, or the refusal's code (only the code: the
// messages name the directory, which differs between two replicas).
template <class R>
std::string outcome(const R& r) {
  return r ? "ok at " + std::to_string(r->bound()) + "\n" + image(*r) : "refused " + std::string(to_string(r.code()));
}

// What `source` (a replica or a primary) answers at each bound.
template <class Source>
std::string answers_at(const Source& source, const std::vector<commit_id>& bounds) {
  std::string out;
  for (const commit_id b : bounds) out += std::to_string(b) + " -> " + outcome(source.read_at(b)) + "\n";
  return out;
}

// The frames a primary sends a replica whose handshake is `h`, up to `upto`: the
// welcome, then segment and record frames, each as its bytes.
template <class P>
std::vector<std::vector<std::byte>> frames_for(P& primary, const repl::hello& h, commit_id upto) {
  repl::primary_feed<P> feed(primary);
  auto w = feed.on_hello(h);
  REQUIRE(w);
  std::vector<std::vector<std::byte>> frames;
  frames.push_back(repl::encode(repl::message(*w)));
  format::byte_buffer out;
  while (feed.next() <= upto) {
    auto n = feed.next_frames(out, upto);
    REQUIRE(n);
    if (*n == 0) break;
  }
  for (std::size_t at = 0; at < out.size();) {
    auto fh = repl::decode_header(std::span(out).subspan(at, repl::frame_header_size));
    REQUIRE(fh);
    const std::size_t len = repl::frame_header_size + fh->body_length;
    frames.emplace_back(out.begin() + static_cast<std::ptrdiff_t>(at),
                        out.begin() + static_cast<std::ptrdiff_t>(at + len));
    at += len;
  }
  return frames;
}

bool is_record(const std::vector<std::byte>& frame) {
  return std::holds_alternative<repl::record_frame>(*repl::decode(frame));
}

template <class Replica>
result<std::optional<repl::message>> deliver(Replica& r, const std::vector<std::byte>& frame) {
  return r.on_message(*repl::decode(frame));
}

// Brings `replica` up to the primary's newest CommitId, one frame at a time.
template <class P, class Replica>
void follow_all(P& primary, Replica& replica) {
  for (const auto& f : frames_for(primary, replica.make_hello(), primary.last_commit_id())) REQUIRE(deliver(replica, f));
  REQUIRE(replica.applied() == primary.last_commit_id());
}

// The newest CommitId whose record the segments of `dir` hold in their synced bytes: what
// the replica would still hold after losing power now.
commit_id durable_last_commit(testing::fault_injection_fs& fs, const std::string& dir) {
  commit_id last = 0;
  const auto names = fs.list_dir(dir);
  if (!names) return 0;
  for (const auto& name : *names) {
    const std::string path = io::join(dir, name);
    if (!format::parse_segment_file_name(name) || !fs.durable_exists(path)) continue;
    const auto bytes = fs.durable_contents(path);
    std::size_t at = format::segment_header_size;
    while (at + format::record_header_size <= bytes.size()) {
      const auto len = format::load_le<std::uint32_t>(bytes.data() + at + 4);
      if (len == 0 || at + format::record_header_size + len > bytes.size()) break;
      last = std::max<commit_id>(last, format::load_le<std::uint64_t>(bytes.data() + at + 8));
      at += format::record_header_size + len;
    }
  }
  return last;
}

// Every read a caller could make now, on a replica with the baseline check (`a`) and one
// with the fast path (`b`) that received the same frames: the same outcome.
template <class A, class B>
void expect_same_reads(const A& a, const B& b) {
  REQUIRE(a.applied() == b.applied());
  const commit_id applied = a.applied();
  std::vector<commit_id> bounds = {0, 1, applied + 1, applied + 7};
  if (applied > 1) bounds.push_back(applied - 1);
  if (applied > 0) bounds.push_back(applied);
  CHECK(answers_at(a, bounds) == answers_at(b, bounds));
  CHECK(outcome(a.read()) == outcome(b.read()));
  CHECK(a.read_boundary() == 0);  // the baseline never has one
}

}  // namespace

TEST_CASE_TEMPLATE("the fast path and the baseline check admit the same reads with the same answers, and refuse "
                   "the others with the same codes",
                   Db, aerodb::database, aerodb::accelerated_database) {
  auto fs = std::make_shared<testing::fault_injection_fs>();
  auto primary = open_or_fail<Db>("/p", small_segments(fs));
  setup(*primary);
  churn(*primary, 1, 60);
  auto opened_checked = repl::basic_replica<Db, checked>::open("/rc", small_segments(fs));
  auto opened_fast = repl::basic_replica<Db, fast_path>::open("/rf", small_segments(fs));
  REQUIRE(opened_checked);
  REQUIRE(opened_fast);
  auto& a = **opened_checked;
  auto& b = **opened_fast;
  const auto frames = frames_for(*primary, b.make_hello(), primary->last_commit_id());
  REQUIRE(frames.size() > 40);

  int compared = 0;
  auto same_answers = [&] {
    expect_same_reads(a, b);
    ++compared;
  };
  // Both get the same frame; both answer it the same way.
  std::size_t i = 0;
  auto both = [&](const std::vector<std::byte>& f) {
    auto ra = deliver(a, f);
    auto rb = deliver(b, f);
    REQUIRE(ra.has_value() == rb.has_value());
    if (!ra) CHECK(ra.code() == rb.code());
    same_answers();
    return ra.has_value() ? std::optional<errc>() : std::optional<errc>(ra.code());
  };

  same_answers();  // nothing applied: only bound 0 is admitted
  CHECK(b.read_boundary() == 0);  // none after an open
  for (; i < frames.size() / 3; ++i) {
    CHECK(!both(frames[i]));
    if (is_record(frames[i])) CHECK(b.read_boundary() == b.applied());
  }
  REQUIRE(b.read_boundary() > 0);

  // A withdrawn boundary (what a bootstrap does first): reads go through the check.
  b.invalidate_read_boundary();
  CHECK(b.read_boundary() == 0);
  same_answers();
  while (!is_record(frames[i])) CHECK(!both(frames[i++]));
  CHECK(!both(frames[i++]));
  CHECK(b.read_boundary() == b.applied());  // the next record publishes it again

  // A halt: every read refused, on both, at every bound; nothing is applied meanwhile.
  const commit_id before_halt = a.applied();
  a.halt(error(errc::replication_protocol, "halted by the test"));
  b.halt(error(errc::replication_protocol, "halted by the test"));
  CHECK(b.read_boundary() == 0);
  same_answers();
  CHECK(b.read_at(before_halt).code() == errc::replication_halted);
  CHECK(b.read_at(1).code() == errc::replication_halted);
  CHECK(b.read().code() == errc::replication_halted);
  const std::size_t resume_from = i;  // the frames refused now are sent again after the resume
  for (bool record = false; !record; ++i) {
    record = is_record(frames[i]);
    CHECK(both(frames[i]) == errc::replication_halted);
  }
  i = resume_from;
  CHECK(b.applied() == before_halt);
  CHECK(b.read_boundary() == 0);

  // A resume publishes no boundary; the next record does.
  REQUIRE(a.resume());
  REQUIRE(b.resume());
  CHECK(b.read_boundary() == 0);
  same_answers();
  for (const std::size_t end = i + frames.size() / 3; i < end; ++i) CHECK(!both(frames[i]));
  REQUIRE(b.read_boundary() == b.applied());

  // A gap: the record after the next one. Both halt with the same code, nothing applied.
  std::size_t next = i;
  while (!is_record(frames[next])) ++next;
  std::size_t after = next + 1;
  while (!is_record(frames[after])) ++after;
  const commit_id before_gap = b.applied();
  CHECK(both(frames[after]) == errc::replication_gap);
  CHECK(b.applied() == before_gap);
  CHECK(b.read_boundary() == 0);
  CHECK(b.read_at(before_gap).code() == errc::replication_halted);
  REQUIRE(a.resume());
  REQUIRE(b.resume());
  for (; i < frames.size(); ++i) CHECK(!both(frames[i]));

  CHECK(b.applied() == primary->last_commit_id());
  CHECK(b.read_boundary() == b.applied());
  CHECK(image(*b.read()) == image(primary->read()));
  CHECK(compared > 40);
}

TEST_CASE_TEMPLATE("through a snapshot bootstrap, the fast path is off from the snapshot's first frame until the "
                   "records after the install, and the answers are the baseline's throughout",
                   Db, aerodb::database, aerodb::accelerated_database) {
  auto fs = std::make_shared<testing::fault_injection_fs>();
  auto primary = open_or_fail<Db>("/p", small_segments(fs));
  setup(*primary);
  churn(*primary, 1, 40);
  auto opened_checked = repl::basic_replica<Db, checked>::open("/rc", small_segments(fs));
  auto opened_fast = repl::basic_replica<Db, fast_path>::open("/rf", small_segments(fs));
  REQUIRE(opened_checked);
  REQUIRE(opened_fast);
  auto& a = **opened_checked;
  auto& b = **opened_fast;
  follow_all(*primary, a);
  follow_all(*primary, b);
  REQUIRE(b.read_boundary() == b.applied());
  truncate_past(*primary, *fs, b.applied(), 7);

  // The welcome, snapshot_begin, the image's chunks, the records of the primary's segment
  // up to the image's CommitId, snapshot_end (which installs). The same for both.
  const auto frames = bootstrap_frames(*primary, b.make_hello());
  REQUIRE(frames.size() > 3);
  for (std::size_t i = 0; i < frames.size(); ++i) {
    CAPTURE(i);
    REQUIRE(deliver(a, frames[i]));
    REQUIRE(deliver(b, frames[i]));
    if (i == 0) CHECK(b.read_boundary() == b.applied());  // a welcome changes nothing
    if (i >= 1) CHECK(b.read_boundary() == 0);            // from snapshot_begin on
    expect_same_reads(a, b);  // the old state while staging, the new one once installed
  }
  CHECK(a.status().bootstraps_installed == 1);
  CHECK(b.status().bootstraps_installed == 1);
  CHECK(b.read_boundary() == 0);  // an install publishes none

  churn(*primary, 9, 30);
  follow_all(*primary, a);
  follow_all(*primary, b);
  CHECK(b.read_boundary() == b.applied());
  expect_same_reads(a, b);
  CHECK(image(*b.read()) == image(primary->read()));
}

namespace {

// What a reader thread saw; checked once the threads are joined.
struct reader_tally {
  std::uint64_t admitted = 0;
  std::uint64_t admitted_at_boundary = 0;  // read_at at or below the boundary loaded just before
  std::uint64_t compared = 0;
  std::uint64_t ahead = 0;
  std::uint64_t halted = 0;
  std::uint64_t after_halt = 0;            // reads begun once halt() had returned
  std::vector<std::string> wrong;          // every read that broke a rule, and how
};

}  // namespace

TEST_CASE_TEMPLATE("two readers while records are applied and a halt comes in: no read above the durably applied "
                   "CommitId, the primary's answers, and every read refused once halt() has returned",
                   Replica, repl::basic_replica<aerodb::database, checked>,
                   repl::basic_replica<aerodb::database, fast_path>, repl::accelerated_replica) {
  using P = aerodb::database;
  auto fs = std::make_shared<testing::fault_injection_fs>();
  auto primary = open_or_fail<P>("/p", small_segments(fs));
  setup(*primary);
  churn(*primary, 7, std::max(80, static_cast<int>(300 * test_scale())));
  auto opened = Replica::open("/r", small_segments(fs));
  REQUIRE(opened);
  auto& replica = **opened;
  const auto frames = frames_for(*primary, replica.make_hello(), primary->last_commit_id());
  const std::size_t halt_at = frames.size() * 2 / 3;

  std::atomic<bool> halt_started{false}, halt_returned{false}, done{false};
  std::atomic<std::uint64_t> reads_after_halt[2] = {0, 0};  // per reader
  std::atomic<commit_id> known_durable{0};
  commit_id halted_at = 0;
  std::vector<std::string> applier_wrong;
  std::latch start(3);

  // Whether the replica's disk holds record `c` in its synced bytes (durability only grows:
  // there is no crash here, so what was once found durable stays so).
  auto durable = [&](commit_id c) {
    if (c <= known_durable.load()) return true;
    const commit_id now = durable_last_commit(*fs, "/r");
    commit_id seen = known_durable.load();
    while (now > seen && !known_durable.compare_exchange_weak(seen, now)) {
    }
    return c <= now;
  };

  std::thread applier([&] {
    start.arrive_and_wait();
    for (std::size_t i = 0; i < frames.size(); ++i) {
      if (i == halt_at) {
        halt_started.store(true);
        replica.halt(error(errc::replication_protocol, "halted by the test"));
        halted_at = replica.applied();
        halt_returned.store(true);
      }
      auto r = deliver(replica, frames[i]);
      if (i < halt_at && !r) applier_wrong.push_back("frame " + std::to_string(i) + ": " + r.error_value().to_string());
      if (i >= halt_at && (r || r.code() != errc::replication_halted))
        applier_wrong.push_back("frame " + std::to_string(i) + " was not refused after the halt");
      std::this_thread::yield();
    }
    // Let each reader make reads after the halt (a bounded wait on a condition).
    for (int k = 0; k < 10000 && std::min(reads_after_halt[0].load(), reads_after_halt[1].load()) < 100; ++k)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    done.store(true);
  });

  auto reader = [&](int id, reader_tally& t) {
    std::mt19937 rng(static_cast<std::uint32_t>(11 + id));
    start.arrive_and_wait();
    while (!done.load()) {
      const bool after_halt = halt_returned.load();
      const commit_id applied_before = replica.applied();
      const commit_id boundary_before = replica.read_boundary();
      const bool latest = rng() % 4 == 0;
      const commit_id bound = rng() % (applied_before + 4);
      auto r = latest ? replica.read() : replica.read_at(bound);
      const commit_id applied_after = replica.applied();
      if (after_halt) {
        ++t.after_halt;
        reads_after_halt[id].fetch_add(1);
        if (r || r.code() != errc::replication_halted)
          t.wrong.push_back("a read begun after halt() returned was not refused as halted: " + outcome(r));
        continue;
      }
      if (r) {
        ++t.admitted;
        const commit_id b = r->bound();
        if (!latest && boundary_before != 0 && bound <= boundary_before) ++t.admitted_at_boundary;
        if (b > applied_after) t.wrong.push_back("bound " + std::to_string(b) + " above the applied " + std::to_string(applied_after));
        if (latest && b < applied_before) t.wrong.push_back("read() below the CommitId applied before it began");
        if (!durable(b)) t.wrong.push_back("bound " + std::to_string(b) + " not durable on the replica's disk");
        if (t.admitted % 8 == 0) {
          ++t.compared;
          auto pv = primary->read_at(b);
          if (!pv || image(*r) != image(*pv)) t.wrong.push_back("answers differ from the primary's at " + std::to_string(b));
        }
      } else if (r.code() == errc::replication_read_ahead) {
        ++t.ahead;
        if (latest || bound <= applied_before) t.wrong.push_back("refused as ahead at an applied bound: " + outcome(r));
      } else if (r.code() == errc::replication_halted) {
        ++t.halted;
        if (!halt_started.load()) t.wrong.push_back("refused as halted before any halt");
      } else {
        t.wrong.push_back("unexpected refusal: " + outcome(r));
      }
    }
  };
  reader_tally t1, t2;
  std::thread r1(reader, 0, std::ref(t1));
  std::thread r2(reader, 1, std::ref(t2));
  applier.join();
  r1.join();
  r2.join();

  for (const auto& w : applier_wrong) FAIL_CHECK(w);
  for (const reader_tally* t : {&t1, &t2}) {
    for (const auto& w : t->wrong) FAIL_CHECK(w);
    CHECK(t->admitted > 0);
    CHECK(t->after_halt > 0);
  }
  MESSAGE("admitted " << t1.admitted + t2.admitted << " (" << t1.admitted_at_boundary + t2.admitted_at_boundary
                      << " at or below the boundary), compared " << t1.compared + t2.compared << ", ahead "
                      << t1.ahead + t2.ahead << ", halted " << t1.halted + t2.halted << ", after the halt "
                      << t1.after_halt + t2.after_halt);
  if constexpr (std::is_same_v<typename Replica::replica_read_policy, fast_path>)
    CHECK(t1.admitted_at_boundary + t2.admitted_at_boundary > 0);
  else
    CHECK(t1.admitted_at_boundary + t2.admitted_at_boundary == 0);
  CHECK(replica.halted());
  CHECK(replica.applied() == halted_at);
  CHECK(replica.read_boundary() == 0);
  CHECK(replica.read().code() == errc::replication_halted);
}

TEST_CASE_TEMPLATE("a replica directory written with the fast path follows on with the baseline check and back, "
                   "with the same answers and, at the end, the primary's answers and files",
                   Db, aerodb::database, aerodb::accelerated_database) {
  using with_fast = repl::basic_replica<Db, fast_path>;
  using with_check = repl::basic_replica<Db, checked>;
  for (const bool crash_between : {false, true}) {
    CAPTURE(crash_between);
    auto pfs = std::make_shared<testing::fault_injection_fs>();
    auto rfs = std::make_shared<testing::fault_injection_fs>();
    auto primary = open_or_fail<Db>("/p", small_segments(pfs));
    setup(*primary);
    std::string before;              // the answers the last phase ended with
    std::vector<commit_id> bounds;   // where they were taken
    // One phase: open with policy `Replica`; it answers as the last phase ended; then it
    // follows the primary's newest records and answers as the primary does.
    auto phase = [&](auto* tag, std::uint32_t seed) {
      using Replica = std::remove_pointer_t<decltype(tag)>;
      churn(*primary, seed, 40);
      auto opened = Replica::open("/r", small_segments(rfs));
      REQUIRE(opened);
      auto& replica = **opened;
      CHECK(replica.read_boundary() == 0);
      if (!bounds.empty()) CHECK(answers_at(replica, bounds) == before);
      follow_all(*primary, replica);
      const commit_id last = replica.applied();
      const std::vector<commit_id> applied_bounds = {1, last / 3, last / 2, last - 1, last};
      CHECK(answers_at(replica, applied_bounds) == answers_at(*primary, applied_bounds));
      bounds = applied_bounds;
      bounds.push_back(last + 1);  // refused as ahead, by either policy
      before = answers_at(replica, bounds);
      CHECK(replica.status().records_applied > 0);
      opened->reset();
      // Without a clean close: what the disk synced is all there is (every record was
      // fsynced before it was applied, so nothing the replica answered is lost).
      if (crash_between) rfs->crash();
    };
    phase(static_cast<with_fast*>(nullptr), 1);
    phase(static_cast<with_check*>(nullptr), 2);
    phase(static_cast<with_fast*>(nullptr), 3);
    phase(static_cast<with_check*>(nullptr), 4);
    {
      auto last = with_fast::open("/r", small_segments(rfs));
      REQUIRE(last);
      CHECK(answers_at(**last, bounds) == before);
    }
    // A log written by both, in turns: the primary's files, byte for byte.
    CHECK(segments(*rfs, "/r") == segments(*pfs, "/p"));
  }
}
