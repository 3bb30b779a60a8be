// What the replication tests share (tests/unit/test_replication*.cpp): the engine pairs of
// the two sides, a schema and a churning workload, the answers and image compared across
// sides, the segment files of a directory and the prefix check over them, and a session
// (the primary's and the replica's loops over an in-process connection, on two threads).
//
// Thread safety: a session's loops run on their own threads; everything else is called
// from the test's thread.
#pragma once

#include "common.hpp"

#include <aerodb/replication.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace aerodb_test {

using namespace aerodb;
namespace repl = aerodb::replication;

template <class P, class R, class ReadPolicy = aerodb::policies::baseline_replica_read>
struct sides {
  using primary = P;
  using replica = R;
  using read_policy = ReadPolicy;  // the replica's (policies/replica_read.hpp)
};
using base_base = sides<aerodb::database, aerodb::database>;
using base_accel = sides<aerodb::database, aerodb::accelerated_database>;
using accel_base = sides<aerodb::accelerated_database, aerodb::database>;
using accel_accel = sides<aerodb::accelerated_database, aerodb::accelerated_database>;
// The replica read fast path alone, and in replication::accelerated_replica.
using base_fastpath = sides<aerodb::database, aerodb::database, aerodb::policies::replica_read_fast_path>;
using base_accelrep = sides<aerodb::database, aerodb::accelerated_database, aerodb::policies::replica_read_fast_path>;
using accel_accelrep =
    sides<aerodb::accelerated_database, aerodb::accelerated_database, aerodb::policies::replica_read_fast_path>;

inline const char* rec_schema = R"({"id":"rec","version":1,"fields":{
  "_id":{"type":"string","required":true},
  "n":{"type":"int"},
  "s":{"type":"string","required":true}}})";

inline open_options small_segments(std::shared_ptr<io::file_system> fs) {
  open_options o;
  o.fs = std::move(fs);
  o.wal_segment_bytes = 4096;  // many segments, so their layout is exercised
  o.wal_preallocate_bytes = 1024;
  return o;
}

template <class Db>
void setup(Db& db) {
  REQUIRE(db.register_schema(rec_schema));
  REQUIRE(db.create_collection("recs", "rec"));
  REQUIRE(db.create_index("recs", "n"));
}

inline std::string doc(int i, int n, int s) {
  return R"({"_id":"d)" + std::to_string(i) + R"(","n":)" + std::to_string(n) + R"(,"s":"s)" + std::to_string(s) +
         "\"}";
}

// Inserts, updates and removes on a small universe of keys (keys from `first`: writers
// running at once use their own keys, so each one's update finds what it inserted).
template <class Db>
void churn(Db& db, std::uint32_t seed, int rounds, int first = 0) {
  std::mt19937 rng(seed);
  for (int r = 0; r < rounds; ++r) {
    const int i = first + static_cast<int>(rng() % 60);
    write_batch b;
    switch (rng() % 4) {
      case 0:
        b.remove("recs", "d" + std::to_string(i));
        break;
      default:
        b.insert("recs", 1, doc(i, static_cast<int>(rng() % 50), static_cast<int>(rng() % 5)));
        break;
    }
    auto got = db.commit(b);
    if (!got && got.code() == errc::document_exists) {
      write_batch u;
      u.update("recs", "d" + std::to_string(i), 1, doc(i, static_cast<int>(rng() % 50), static_cast<int>(rng() % 5)));
      got = db.commit(u);
    }
    REQUIRE(got);
  }
}

// Fixed queries, as their answers' JSON.
template <class View>
std::string answers(const View& v) {
  std::string out;
  for (const char* q :
       {R"({"collection":"recs","schema_version":1,"filter":{"n":{"$gte":10,"$lt":30}},"limit":1000})",
        R"({"collection":"recs","schema_version":1,"filter":{"n":{"$eq":7}},"limit":1000})",
        R"({"collection":"recs","schema_version":1,"filter":{"n":{"$gte":0}},"sort":{"n":"desc"},"limit":7})"}) {
    auto r = v.query(q);
    if (!r) {
      // Before the collection or its index exists, both sides must say so (the answers
      // are compared); nothing else may fail.
      if (r.code() != errc::collection_unknown && r.code() != errc::query_unindexed_field) FAIL_CHECK("query refused: " << r.error_value().to_string());
      out += r.error_value().to_string();
      continue;
    }
    for (const auto& d : r->documents) out += std::to_string(d.committed_at) + d.doc.to_json_string() + "\n";
    out += "--\n";
  }
  return out;
}

template <class View>
std::string image(const View& v) {
  std::string out;
  auto r = v.for_each("recs", [&](const versioned_document& d) {
    out += std::to_string(d.committed_at) + ":" + d.doc.to_json_string() + "\n";
  });
  if (!r) out += r.error_value().to_string();
  return out + answers(v);
}

// Segment files of `dir`, name -> bytes.
inline std::map<std::string, std::vector<std::byte>> segments(testing::fault_injection_fs& fs, const std::string& dir) {
  std::map<std::string, std::vector<std::byte>> out;
  const auto names = fs.list_dir(dir);
  REQUIRE(names);
  for (const auto& n : *names)
    if (format::parse_segment_file_name(n)) out[n] = fs.contents(io::join(dir, n));
  return out;
}

// Whether every record the replica's segments hold is the primary's, byte for byte, at
// the same place: the replica's log is a prefix of the primary's.
inline bool is_prefix(const std::map<std::string, std::vector<std::byte>>& replica,
               const std::map<std::string, std::vector<std::byte>>& primary) {
  for (const auto& [name, bytes] : replica) {
    const auto it = primary.find(name);
    if (it == primary.end()) return false;
    const std::size_t end = records_end(bytes);
    if (end > bytes.size()) {
      std::size_t at = format::segment_header_size;
      std::string walk;
      while (at + format::record_header_size <= bytes.size()) {
        const auto len = format::load_le<std::uint32_t>(bytes.data() + at + 4);
        walk += " " + std::to_string(at) + ":" + std::to_string(len) + "/c" +
                std::to_string(format::load_le<std::uint64_t>(bytes.data() + at + 8));
        if (len == 0) break;
        at += format::record_header_size + len;
      }
      MESSAGE("a record of the replica's " << name << " runs past the end of the file; size " << bytes.size()
                                           << " walk" << walk);
      return false;
    }
    if (it->second.size() < end || !std::equal(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(end),
                                                it->second.begin()))
      return false;
  }
  return true;
}

// The primary's side and the replica's side of one connection, each on its own thread.
template <class P, class R, class ReadPolicy = aerodb::policies::baseline_replica_read>
struct session {
  session(P& primary, repl::basic_replica<R, ReadPolicy>& replica) : feed(primary) {
    auto [a, b] = repl::in_process_pair();
    primary_end = std::move(a);
    replica_end = std::move(b);
    server = std::thread([this] {
      served = repl::serve_replica(feed, *primary_end, stop);
      server_done.store(true);
    });
    follower = std::thread([this, &replica] {
      followed = repl::follow_primary(replica, *replica_end);
      follower_done.store(true);
    });
  }
  ~session() { close(); }
  // Waits for both sides to end by themselves (a refused handshake ends both), for a
  // bounded time: a session that goes on instead ends here, and the test's checks of
  // why it ended fail rather than hang.
  void wait_end() {
    for (int i = 0; i < 5000 && !(server_done.load() && follower_done.load()); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    close();
  }
  void close() {
    if (!server.joinable()) return;
    stop.store(true);
    feed.wake();
    primary_end->shutdown();
    server.join();
    follower.join();
  }
  repl::primary_feed<P> feed;
  std::unique_ptr<repl::connection> primary_end, replica_end;
  std::atomic<bool> stop{false}, server_done{false}, follower_done{false};
  result<void> served = ok();
  result<void> followed = ok();
  std::thread server, follower;
};

// Waits until the replica has applied `c` (or halted). A bounded wait on a condition, not
// a measurement.
template <class R, class ReadPolicy>
bool caught_up(const repl::basic_replica<R, ReadPolicy>& r, commit_id c) {
  for (int i = 0; i < 20000 && r.applied() < c && !r.halted(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  return r.applied() >= c;
}

// ---- snapshot bootstrap -------------------------------------------------------------

// The primary's log no longer holds `c + 1`: its oldest segment starts after it.
inline bool log_starts_after(testing::fault_injection_fs& fs, const std::string& dir, commit_id c) {
  const auto segs = segments(fs, dir);
  if (segs.empty()) return true;
  const auto& first = segs.begin()->second;
  const auto decoded = format::decode_segment_header(std::span(first).first(format::segment_header_size));
  return decoded.header.first_commit_id > c + 1;
}

// Moves the primary on until its log no longer holds what a replica at `applied` needs.
template <class P>
void truncate_past(P& primary, testing::fault_injection_fs& fs, commit_id applied, std::uint32_t seed) {
  for (int round = 0; round < 20; ++round) {
    churn(primary, seed + static_cast<std::uint32_t>(round), 80);
    REQUIRE(primary.checkpoint());
    if (log_starts_after(fs, "/p", applied)) return;
  }
  FAIL("the primary's checkpoints never removed the replica's next record");
}

// The frames a primary ships to a replica that says `h`, as separate byte strings.
template <class P>
std::vector<std::vector<std::byte>> bootstrap_frames(P& primary, const repl::hello& h) {
  repl::primary_feed<P> feed(primary);
  auto w = feed.on_hello(h);
  REQUIRE(w);
  REQUIRE(feed.bootstrap_pending());
  std::vector<std::vector<std::byte>> frames;
  frames.push_back(repl::encode(*w));
  REQUIRE(feed.ship_bootstrap([&frames](std::span<const std::byte> bytes) -> result<void> {
    // One call may carry several frames (a batch of records): split them.
    while (!bytes.empty()) {
      auto header = repl::decode_header(bytes.first(repl::frame_header_size));
      REQUIRE(header);
      const std::size_t n = repl::frame_header_size + header->body_length;
      frames.emplace_back(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(n));
      bytes = bytes.subspan(n);
    }
    return ok();
  }));
  return frames;
}

}  // namespace aerodb_test
