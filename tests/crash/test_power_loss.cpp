// Power-loss sweep: the mixed workload of tests/support/workload.hpp (schemas, collections, index
// creation, single writes and atomic batches of inserts, updates and deletes, read views
// held across writes, GC and checkpoints) runs over the fault-injecting file system and is
// stopped at every mutating I/O operation. Each stop is crashed in several ways:
//   - power loss, unsynced data dropped;
//   - process killed, everything written kept;
//   - power loss during the last write, which keeps 1, a quarter, half, three quarters,
//     or all but one of its unsynced bytes;
//   - power loss with writeback in flight on several files, each file independently
//     keeping none, all or a prefix of its unsynced bytes (three seeds);
//   - power loss with writeback in any order: each unsynced directory entry old or new,
//     any subset of each file's unsynced 4 KiB pages or 512-byte sectors on disk, the
//     rest zeros (four seeds; 256 in the long run, for a million crash states).
// Every resulting disk is recovered by every engine of the policy matrix, on its own copy,
// and checked:
//   - recovery succeeds (a crash never produces corruption);
//   - every acknowledged commit is present: the recovered last CommitId L is at least the
//     last acknowledged one and at most the one in flight;
//   - the visible state equals the clean run's state after exactly commits 1..L: a prefix
//     of the commit order, no half batch;
//   - index answers (the probe queries, which use the indexes) equal the clean run's at L,
//     where the indexes were maintained commit by commit, while recovery rebuilt them;
//   - a second recovery of the same files gives the same state and finds nothing torn;
//   - all engines agree, and the recovered instance accepts a new durable commit.
// The writer rotates through every policy combination (all 32 in a full build; single-threaded, every engine makes the same
// I/O calls, which test_equivalence.cpp checks byte for byte).
//
// Crash states that leave byte-identical files are recovered once per engine and counted
// once as distinct (recovery is a pure function of the files). AERODB_SCALE sizes the
// workload; AERODB_LONG=1 runs a larger workload, tears at more offsets and draws 256
// reordered-writeback states per crash point; AERODB_POWER_LOSS_FROM=k starts at crash
// point k.
#include "support/workload.hpp"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <set>

using namespace aerodb;
using namespace aerodb_test;

namespace {

using matrix = engine_list<AERODB_ENGINES>;
// The writers: every combination of the five policy kinds in a full build (each crash state
// is then written by one combination and recovered by every engine of the covering set).
using writers = engine_list<AERODB_ENGINES_COMPLETE>;

// writeback_reorder seeds per crash point in the long run: enough for a million crash states.
constexpr std::uint64_t reorder_seeds_long = 256;

// Query answers as text; a refused query (its field is not indexed yet at that commit)
// answers with its error code, which must match too.
template <class View>
std::vector<std::string> answers_of(const View& view) {
  std::vector<std::string> out;
  for (const auto& q : probe_queries()) {
    auto r = view.query(q);
    if (!r) {
      out.push_back(std::string(r.error_value().name()));
      continue;
    }
    std::string s;
    for (const auto& d : r->documents)
      s += d.doc.to_json_string() + "@" + std::to_string(d.committed_at) + "\n";
    out.push_back(std::move(s));
  }
  return out;
}

struct commit_point {
  state_map state;  // readable, for the failure message
  std::string image;
  std::vector<std::string> answers;
};

// What a run without faults went through: the state and answers after every CommitId.
struct history {
  std::map<commit_id, commit_point> at;
  std::uint64_t total_ops = 0;
};

// Runs the workload until the first step that fails. Returns the last CommitId that was
// acknowledged (the value after the last step that succeeded). When `record` is given,
// every step must succeed and the state after each is recorded.
template <class Db>
commit_id run(const mixed_workload& w, const std::shared_ptr<testing::fault_injection_fs>& fs,
              const open_options& base, history* record = nullptr) {
  auto opts = base;
  opts.fs = fs;
  auto db = Db::open("/db", opts);
  if (!db) {
    if (record) FAIL("clean open failed: " << db.error_value().to_string());
    return 0;
  }
  std::vector<typename Db::read_view> held;
  commit_id acked = (*db)->last_commit_id();
  if (record) record->at[acked] = {dump(**db), image_of(**db), answers_of((*db)->read())};
  for (std::size_t i = 0; i < w.steps.size(); ++i) {
    Db& d = **db;
    if (auto why = run_step(d, w.steps[i], held)) {
      if (record) FAIL("clean run: step " << i << " failed: " << *why);
      break;
    }
    acked = d.last_commit_id();
    if (record) {
      auto& p = record->at[acked];
      p.state = dump(d);
      p.image = image_of(d);
      p.answers = answers_of(d.read());
    }
  }
  return acked;
}

// Names and bytes of everything under /db: two disks with the same fingerprint recover
// the same way.
std::string fingerprint(testing::fault_injection_fs& fs) {
  std::string out;
  auto names = fs.list_dir("/db");
  if (!names) return "<no /db>";
  for (const auto& n : *names) {
    out += n;
    out += '\0';
    try {
      const auto bytes = fs.contents("/db/" + n);
      out += std::to_string(bytes.size());
      out += '\0';
      out.append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    } catch (const std::out_of_range&) {
      out += "<dir>";
    }
    out += '\0';
  }
  return out;
}

struct counts {
  std::uint64_t crash_points = 0;
  std::uint64_t states = 0;
  std::uint64_t distinct = 0;
  std::uint64_t recoveries = 0;
  std::uint64_t torn_tails = 0;
  std::uint64_t in_flight_survived = 0;
  std::uint64_t lost_unsynced_files = 0;  // independent_loss states that differ from both
                                          // "all dropped" and "all kept"
  std::uint64_t reordered = 0;            // the same, for writeback_reorder states
  std::uint64_t ambiguous_refused = 0;    // recoveries refused on purpose: ambiguous_refusal
};

// True when `e`, a refusal to open, is the one the reading rules choose on purpose (docs/
// format.md §9, "ambiguous holes"): the failing record lies in the last segment, some
// sector-part of it reads as zeros as an unwritten sector would, and setting one bit inside
// those zeros makes the whole record verify, so one flipped bit in acknowledged data would
// leave the same bytes. Checked here by brute force, independently of the reader.
bool ambiguous_refusal(testing::fault_injection_fs& fs, const error& e) {
  namespace fmt = aerodb::format;
  if (e.code() != errc::wal_corruption) return false;
  const std::string what = e.to_string();
  if (what.find("record header checksum mismatch") == std::string::npos &&
      what.find("record payload checksum mismatch") == std::string::npos)
    return false;
  const std::string segment(e.detail("segment"));
  const std::size_t off = std::stoul(std::string(e.detail("offset")));
  auto names = fs.list_dir("/db");
  REQUIRE(names);
  std::string last_segment;
  for (const auto& n : *names)
    if (fmt::parse_segment_file_name(n)) last_segment = n;
  if (segment != last_segment) return false;
  auto data = fs.contents("/db/" + segment);
  auto verifies = [&] {
    const auto h = fmt::decode_record_header(data.data() + off);
    const std::size_t begin = off + fmt::record_header_size;
    return h.header_crc_ok && h.payload_length <= data.size() - begin &&
           crc32c::value(std::span<const std::byte>(data).subspan(begin, h.payload_length)) == h.payload_crc;
  };
  // Zero sector-parts from the record's start on; the record's own extent is not trusted
  // (its header may be the damaged part), so every part up to the end of the file counts.
  for (std::size_t sec = off / 512 * 512; sec < data.size(); sec += 512) {
    const std::size_t b = std::max(sec, off), e2 = std::min(sec + 512, data.size());
    bool zero = true;
    for (std::size_t i = b; i < e2 && zero; ++i) zero = data[i] == std::byte{0};
    if (!zero) continue;
    for (std::size_t i = b; i < e2; ++i)
      for (int bit = 0; bit < 8; ++bit) {
        data[i] = std::byte{static_cast<unsigned char>(1u << bit)};
        const bool ok = verifies();
        data[i] = std::byte{0};
        if (ok) return true;
      }
  }
  return false;
}

// Recovers a copy of `disk` with engine Db and checks it; returns the recovered CommitId,
// or nothing for an ambiguous refusal (ambiguous_refusal), which is counted.
template <class Db>
std::optional<commit_id> check_recovery(const history& h, const testing::fault_injection_fs& disk,
                         const open_options& base, commit_id acked, commit_id in_flight,
                         bool write_after, counts& n) {
  auto fs = disk.copy_disk();
  auto opts = base;
  opts.fs = fs;
  commit_id last = 0;
  std::string recovered;
  bool has_items = false;
  {
    auto db = Db::open("/db", opts);
    if (!db && ambiguous_refusal(*fs, db.error_value())) {
      ++n.ambiguous_refused;
      return std::nullopt;
    }
    if (!db) FAIL("recovery failed: " << db.error_value().to_string());
    last = (*db)->last_commit_id();
    REQUIRE(last >= acked);
    REQUIRE(last <= in_flight);
    const auto p = h.at.find(last);
    if (p == h.at.end()) FAIL("recovered CommitId " << last << " is no commit boundary of the clean run");
    recovered = image_of(**db);
    if (recovered != p->second.image)
      REQUIRE(dump(**db) == p->second.state);  // shows the difference, or the image is wrong
    REQUIRE(recovered == p->second.image);
    REQUIRE(answers_of((*db)->read()) == p->second.answers);
    has_items = p->second.state.count("items") != 0;
    if ((*db)->recovery().torn_tail) ++n.torn_tails;
    if (last > acked) ++n.in_flight_survived;
  }
  {
    auto db = Db::open("/db", opts);
    if (!db) FAIL("second recovery failed: " << db.error_value().to_string());
    REQUIRE((*db)->last_commit_id() == last);
    REQUIRE(image_of(**db) == recovered);
    REQUIRE_FALSE((*db)->recovery().torn_tail.has_value());
    if (write_after && has_items) {
      auto r = (*db)->insert("items", 1, R"({"_id":"after-crash","qty":1})");
      if (!r) FAIL("write after recovery failed: " << r.error_value().to_string());
    }
  }
  if (write_after && has_items) {
    auto db = Db::open("/db", opts);
    if (!db) FAIL("reopen after a post-recovery write failed: " << db.error_value().to_string());
    REQUIRE((*db)->last_commit_id() == last + 1);
  }
  n.recoveries += 2;
  return last;
}

}  // namespace

TEST_CASE("power-loss sweep: every crash state of a mixed workload, recovered by every engine") {
  const bool long_run = std::getenv("AERODB_LONG") != nullptr;
  const int data_steps = long_run ? 1500 : std::max(40, static_cast<int>(1080 * test_scale()));
  mixed_workload w = make_mixed_workload(20261121, data_steps);
  // However small the scale, the sweep crosses checkpoints and GC passes, with a read view
  // held across some of them.
  const std::size_t every = std::max<std::size_t>(6, w.steps.size() / 12);
  for (std::size_t i = every, j = 0; i < w.steps.size(); i += every, ++j) {
    static const wl_step extra[] = {wl_checkpoint{}, wl_hold_view{}, wl_gc{}, wl_checkpoint{},
                                    wl_release_view{}, wl_gc{}};
    w.steps.insert(w.steps.begin() + static_cast<std::ptrdiff_t>(i), extra[j % std::size(extra)]);
  }
  std::size_t checkpoints = 0, gcs = 0, indexes = 0, batches = 0;
  for (const auto& s : w.steps) {
    checkpoints += std::holds_alternative<wl_checkpoint>(s);
    gcs += std::holds_alternative<wl_gc>(s);
    indexes += std::holds_alternative<wl_index>(s);
    if (auto* b = std::get_if<wl_batch>(&s)) batches += b->ops.size() > 1;
  }
  REQUIRE(checkpoints >= 2);
  REQUIRE(gcs >= 2);
  REQUIRE(indexes >= 3);
  REQUIRE(batches >= 5);

  open_options base;
  base.wal_segment_bytes = 2048;  // many segments: rotation is part of the sweep

  history h;
  {
    auto clean = std::make_shared<testing::fault_injection_fs>();
    run<engine_per_commit_traversal_ordered>(w, clean, base, &h);
    h.total_ops = clean->op_count();
  }
  // The CommitId that follows each acknowledged one in the clean run: at most that much
  // may survive beyond what was acknowledged.
  auto next_after = [&](commit_id c) {
    auto it = h.at.upper_bound(c);
    return it == h.at.end() ? c : it->first;
  };

  const auto started = std::chrono::steady_clock::now();
  counts n;
  std::set<std::pair<std::size_t, std::uint32_t>> seen;
  // AERODB_POWER_LOSS_FROM=k starts at crash point k: to look at one failure of a long run
  // again without waiting for everything before it.
  const char* from_env = std::getenv("AERODB_POWER_LOSS_FROM");
  const std::uint64_t from = from_env ? std::strtoull(from_env, nullptr, 10) : 0;
  for (std::uint64_t k = from; k <= h.total_ops; ++k) {
    CAPTURE(k);
    if (long_run && (k % 100 == 0 || k == from)) {
      // Progress for the long run, which takes a while.
      const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
      std::fprintf(stderr, "power-loss sweep: crash point %llu of %llu, %llu crash states, %llu distinct, "
                   "%llu recoveries refused as ambiguous, %.0f s\n",
                   static_cast<unsigned long long>(k), static_cast<unsigned long long>(h.total_ops),
                   static_cast<unsigned long long>(n.states), static_cast<unsigned long long>(n.distinct),
                   static_cast<unsigned long long>(n.ambiguous_refused), sec);
    }
    // Run to the crash point once, with the writer engine rotating through the matrix.
    auto live = std::make_shared<testing::fault_injection_fs>();
    live->crash_after(k);
    commit_id acked = 0;
    writers::at(static_cast<std::size_t>(k % writers::size),
               [&]<class Db>() { acked = run<Db>(w, live, base); });
    const commit_id in_flight = next_after(acked);
    const std::uint64_t unsynced = live->unsynced_bytes_of_last_append_file();
    ++n.crash_points;

    std::vector<std::pair<testing::crash_spec, std::string>> variants = {
        {{testing::crash_kind::drop_unsynced}, "unsynced data dropped"},
        {{testing::crash_kind::keep_unsynced}, "process killed, written data kept"},
        {{testing::crash_kind::independent_loss, 0, 3 * k + 1}, "independent loss, seed A"},
        {{testing::crash_kind::independent_loss, 0, 3 * k + 2}, "independent loss, seed B"},
        {{testing::crash_kind::independent_loss, 0, 3 * k + 3}, "independent loss, seed C"},
    };
    // Writeback in any order: each unsynced name old or new, each unsynced 4 KiB page
    // (and, for some seeds, each 512-byte sector) on disk or zeros, the size grown or
    // not. The long run draws many more seeds per crash point.
    const std::uint64_t reorder_seeds = long_run ? reorder_seeds_long : 4;
    for (std::uint64_t i = 0; i < reorder_seeds; ++i) {
      const std::uint64_t page = i % 2 ? 512 : 4096;
      variants.push_back({{testing::crash_kind::writeback_reorder, 0, (k << 16) + i + 1, page},
                          "writeback reordered, " + std::to_string(page) + "-byte pages, seed " +
                              std::to_string(i)});
    }
    std::set<std::uint64_t> tears;
    if (long_run) {
      for (std::uint64_t b = 1; b < unsynced; b += std::max<std::uint64_t>(1, unsynced / 16)) tears.insert(b);
    } else if (unsynced > 1) {
      tears = {1, unsynced / 4, unsynced / 2, 3 * unsynced / 4, unsynced - 1};
      tears.erase(0);
    }
    for (std::uint64_t b : tears)
      variants.push_back({{testing::crash_kind::tear_last_append, b},
                          "torn after " + std::to_string(b) + " of " + std::to_string(unsynced) +
                              " unsynced bytes"});

    std::string dropped_fp, kept_fp;
    for (const auto& variant : variants) {
      // Named copies: Clang 14 cannot capture structured bindings in lambdas (INFO).
      const testing::crash_spec& spec = variant.first;
      const std::string& label = variant.second;
      INFO("crash after op " << k << " of " << h.total_ops << ": " << label
                             << "; acknowledged through CommitId " << acked);
      auto disk = live->copy_disk();
      disk->crash(spec);
      ++n.states;
      std::string fp = fingerprint(*disk);
      if (spec.kind == testing::crash_kind::drop_unsynced) dropped_fp = fp;
      if (spec.kind == testing::crash_kind::keep_unsynced) kept_fp = fp;
      if (spec.kind == testing::crash_kind::independent_loss && fp != dropped_fp && fp != kept_fp)
        ++n.lost_unsynced_files;
      if (spec.kind == testing::crash_kind::writeback_reorder && fp != dropped_fp && fp != kept_fp)
        ++n.reordered;
      // 96 bits of hash per file set, not the files: the long run sees too many to keep.
      const std::pair<std::size_t, std::uint32_t> key{std::hash<std::string>{}(fp),
                                                      crc32c::value(std::string_view(fp))};
      if (!seen.insert(key).second) continue;
      ++n.distinct;
      std::optional<std::optional<commit_id>> agreed;
      bool first = true;
      matrix::each([&]<class Db>() {
        const std::optional<commit_id> last =
            check_recovery<Db>(h, *disk, base, acked, in_flight, first, n);
        if (agreed) REQUIRE(last == *agreed);
        agreed = last;
        first = false;
      });
    }
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::printf("power-loss sweep: %llu commits, %llu mutating operations; %llu crash states "
              "(%llu distinct file sets), each distinct one recovered by %zu engines: %llu "
              "recoveries, %llu with a torn tail discarded, %llu where the in-flight commit "
              "survived, %llu where files lost unsynced data independently, %llu where "
              "writeback was reordered, %llu recoveries refused as ambiguous (one-bit holes); %.0f s\n",
              static_cast<unsigned long long>(h.at.rbegin()->first),
              static_cast<unsigned long long>(h.total_ops),
              static_cast<unsigned long long>(n.states),
              static_cast<unsigned long long>(n.distinct), matrix::size,
              static_cast<unsigned long long>(n.recoveries),
              static_cast<unsigned long long>(n.torn_tails),
              static_cast<unsigned long long>(n.in_flight_survived),
              static_cast<unsigned long long>(n.lost_unsynced_files),
              static_cast<unsigned long long>(n.reordered),
              static_cast<unsigned long long>(n.ambiguous_refused), seconds);
  // Format version 3 leaves no part of a record that a crash can zero with a single set
  // bit (format.md §5.2), so a crash alone never makes the reader refuse: counted above,
  // and a failure.
  CHECK(n.ambiguous_refused == 0);
  print_counts({{"campaign", "power-loss"},
                {"engines", matrix::size},
                {"commits", h.at.rbegin()->first},
                {"mutating_ops", h.total_ops},
                {"crash_states", n.states},
                {"distinct_file_sets", n.distinct},
                {"recoveries", n.recoveries},
                {"torn_tails", n.torn_tails},
                {"in_flight_survived", n.in_flight_survived},
                {"lost_unsynced_files", n.lost_unsynced_files},
                {"reordered_writeback", n.reordered},
                {"ambiguous_refused", n.ambiguous_refused},
                {"seconds", seconds}});
  CHECK(n.torn_tails > 0);
  CHECK(n.in_flight_survived > 0);
  CHECK(n.lost_unsynced_files > 0);
  CHECK(n.reordered > 0);
  if (test_scale() >= 0.5) CHECK(n.states >= 10000);
}
