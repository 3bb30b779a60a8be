// bench_replica_read: read_at on a replica while its follower applies records, with the
// baseline check (policies::baseline_replica_read) and with the fast path
// (policies::replica_read_fast_path), from 1 and 2 reader threads
// (docs/optimizations/replica_read_fast_path.md).
//
//   bench_replica_read [--quick] [--dir PATH] [--seconds S] [--repetitions N] [--apply-rate R]
//                      [--only baseline|fast] [--readers 1|2] [--mode view|get]
//
// The last three keep only some cells (to profile one of them: perf record -g -- ...).
//
// Setup, once: a primary (aerodb::database) in PATH/p with 10,000 documents loaded in 10
// commits, then single-document updates; the frames its feed ships are kept in memory.
// Each cell: a new replica directory, caught up with the load, then for S seconds a
// follower thread applies the update records at R records per second (each appended,
// fsynced, applied and published, as in production) while the reader threads loop:
//   view   replica.read_at(b) at a random b among the 64 CommitIds up to the applied one
//          (asked every 64 reads), and the view closed (the cost of admitting a read, and
//          of the view registry);
//   get    the same, plus one point get of a random document under the view.
// Every cell reports reads per second over all readers; the two policies' cells are
// interleaved, repetition by repetition, and the median is reported with their ratio.
//
// Nothing is asserted. On a shared machine only the ratios within one run mean anything.
// The follower's fsyncs go to PATH's file system: on a real disk R may not be reached
// (the table gives the rate achieved); on tmpfs fsync costs nothing.
#include <aerodb/replication.hpp>

#include <sys/statfs.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <latch>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

namespace fs = std::filesystem;
namespace repl = aerodb::replication;
using clock_type = std::chrono::steady_clock;
using aerodb::commit_id;

using checked_replica = repl::basic_replica<aerodb::database, aerodb::policies::baseline_replica_read>;
using fast_replica = repl::basic_replica<aerodb::database, aerodb::policies::replica_read_fast_path>;

template <class T>
T need(aerodb::result<T> r, const char* what) {
  if (!r) throw std::runtime_error(std::string(what) + ": " + r.error_value().to_string());
  return std::move(r).value();
}

std::atomic<std::uint64_t> g_sink{0};  // keeps the reads' results observable

// xorshift64: the readers' random numbers, cheap enough not to hide what is measured
// (std::mt19937 took 6-8% of the samples of a reader under perf).
struct xorshift {
  std::uint64_t s;
  std::uint64_t operator()() noexcept {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return s;
  }
};

struct config {
  fs::path dir = "bench-data";
  double seconds = 1.0;
  int repetitions = 3;
  double apply_rate = 2000;  // records per second
  int documents = 10000;
  int updates = 0;  // derived: enough for every cell
};

std::string id_of(int i) {
  char id[16];
  std::snprintf(id, sizeof id, "d%06d", i);
  return id;
}

std::string doc(int i, int n) { return R"({"_id":")" + id_of(i) + R"(","n":)" + std::to_string(n) + "}"; }

// The primary's frames: [0, load_end) bring a replica to the loaded state; the rest are
// one update record each (segment frames among them).
struct shipped {
  std::vector<std::vector<std::byte>> frames;
  std::size_t load_end = 0;
};

shipped make_primary(const config& c) {
  auto db = need(aerodb::database::open((c.dir / "p").string()), "open the primary");
  need(db->register_schema(R"({"id":"rec","version":1,"fields":{"_id":{"type":"string","required":true},"n":{"type":"int"}}})"),
       "schema");
  need(db->create_collection("recs", "rec"), "collection");
  const int per_commit = c.documents / 10;
  for (int b = 0; b < 10; ++b) {
    aerodb::write_batch batch;
    for (int i = b * per_commit; i < (b + 1) * per_commit; ++i) batch.insert("recs", 1, doc(i, i));
    need(db->commit(batch), "load");
  }
  const commit_id loaded = db->last_commit_id();
  std::mt19937 rng(1);
  for (int u = 0; u < c.updates; ++u) {
    const int i = static_cast<int>(rng() % static_cast<unsigned>(c.documents));
    aerodb::write_batch batch;
    batch.update("recs", id_of(i), 1, doc(i, u));
    need(db->commit(batch), "update");
  }
  repl::primary_feed<aerodb::database> feed(*db);
  shipped out;
  out.frames.push_back(repl::encode(repl::message(need(feed.on_hello(repl::hello{}), "handshake"))));
  aerodb::format::byte_buffer buf;
  std::vector<std::size_t> record_ends;  // frame count after each record
  while (feed.next() <= db->last_commit_id()) {
    buf.clear();
    const std::size_t n = need(feed.next_frames(buf, db->last_commit_id()), "ship");
    if (n == 0) break;
    for (std::size_t at = 0; at < buf.size();) {
      const auto h = need(repl::decode_header(std::span(buf).subspan(at, repl::frame_header_size)), "frame");
      const std::size_t len = repl::frame_header_size + h.body_length;
      out.frames.emplace_back(buf.begin() + static_cast<std::ptrdiff_t>(at),
                              buf.begin() + static_cast<std::ptrdiff_t>(at + len));
      if (h.type == repl::frame_type::record) record_ends.push_back(out.frames.size());
      at += len;
    }
  }
  out.load_end = record_ends.at(static_cast<std::size_t>(loaded) - 1);
  return out;
}

enum class read_mode { view, get };

struct cell {
  double reads_per_s = 0;
  double applied_per_s = 0;
  std::uint64_t refused = 0;
};

template <class Replica>
cell run_cell(const config& c, const shipped& s, int readers, read_mode mode, int serial) {
  const fs::path dir = c.dir / ("r" + std::to_string(serial));
  fs::remove_all(dir);
  cell out;
  std::vector<std::string> ids;
  for (int i = 0; i < c.documents; ++i) ids.push_back(id_of(i));
  {
    auto replica = need(Replica::open(dir.string()), "open the replica");
    for (std::size_t i = 0; i < s.load_end; ++i) need(replica->on_message(need(repl::decode(s.frames[i]), "decode")), "load");

    std::atomic<bool> stop{false};
    std::atomic<std::uint64_t> reads{0}, refused{0};
    std::uint64_t applied = 0;
    std::latch start(readers + 2);
    std::thread follower([&] {
      start.arrive_and_wait();
      const auto period = std::chrono::duration<double>(1.0 / c.apply_rate);
      auto next = clock_type::now();
      for (std::size_t i = s.load_end; i < s.frames.size() && !stop.load(std::memory_order_relaxed); ++i) {
        auto m = need(repl::decode(s.frames[i]), "decode");
        const bool record = std::holds_alternative<repl::record_frame>(m);
        need(replica->on_message(m), "apply");
        if (!record) continue;
        ++applied;
        next += std::chrono::duration_cast<clock_type::duration>(period);
        std::this_thread::sleep_until(next);
      }
    });
    std::vector<std::thread> threads;
    for (int t = 0; t < readers; ++t)
      threads.emplace_back([&, t] {
        xorshift rng{0x9E3779B97F4A7C15ull * static_cast<std::uint64_t>(t + 1)};
        std::uint64_t n = 0, bad = 0, sink = 0;
        start.arrive_and_wait();
        commit_id newest = 0;
        while (!stop.load(std::memory_order_relaxed)) {
          // applied() takes the replica's db_mu_ shared: asked once per 64 reads, so that
          // the loop measures reads rather than this question.
          if (n % 64 == 0) newest = replica->applied();
          const commit_id bound = newest - std::min<commit_id>(newest - 1, rng() % 64);
          auto v = replica->read_at(bound);
          if (!v) {
            ++bad;
            continue;
          }
          if (mode == read_mode::get) {
            auto d = v->get("recs", ids[rng() % ids.size()]);
            if (d && *d) sink += (*d)->committed_at;
          } else {
            sink += v->bound();
          }
          ++n;
        }
        reads.fetch_add(n);
        refused.fetch_add(bad);
        g_sink.fetch_add(sink);
      });
    start.arrive_and_wait();
    const auto t0 = clock_type::now();
    std::this_thread::sleep_for(std::chrono::duration<double>(c.seconds));
    stop.store(true);
    for (auto& t : threads) t.join();
    const double elapsed = std::chrono::duration<double>(clock_type::now() - t0).count();
    follower.join();
    out.reads_per_s = static_cast<double>(reads.load()) / elapsed;
    out.applied_per_s = static_cast<double>(applied) / elapsed;
    out.refused = refused.load();
  }
  fs::remove_all(dir);
  return out;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : (v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2);
}

std::string fs_type(const fs::path& p) {
  struct statfs st {};
  if (statfs(p.c_str(), &st) != 0) return "unknown";
  switch (static_cast<unsigned long>(st.f_type)) {
    case 0xEF53ul: return "ext2/3/4";
    case 0x58465342ul: return "xfs";
    case 0x9123683Eul: return "btrfs";
    case 0x01021994ul: return "tmpfs";
    default: return "other";
  }
}

}  // namespace

int run(int argc, char** argv) {
  config c;
  bool quick = false;
  std::string only, only_mode;
  int only_readers = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw std::invalid_argument(a + " needs a value");
      return argv[++i];
    };
    if (a == "--quick") quick = true;
    else if (a == "--dir") c.dir = value();
    else if (a == "--seconds") c.seconds = std::stod(value());
    else if (a == "--repetitions") c.repetitions = std::stoi(value());
    else if (a == "--apply-rate") c.apply_rate = std::stod(value());
    else if (a == "--only") only = value();
    else if (a == "--readers") only_readers = std::stoi(value());
    else if (a == "--mode") only_mode = value();
    else {
      std::fprintf(stderr,
                   "usage: %s [--quick] [--dir PATH] [--seconds S] [--repetitions N] [--apply-rate R] "
                   "[--only baseline|fast] [--readers 1|2] [--mode view|get]\n",
                   argv[0]);
      return 2;
    }
  }
  if (quick) {
    c.seconds = 0.1;
    c.repetitions = 1;
    c.documents = 1000;
  }
  if (c.apply_rate <= 0 || c.seconds <= 0 || c.repetitions < 1 || (!only.empty() && only != "baseline" && only != "fast") ||
      (only_readers != 0 && only_readers != 1 && only_readers != 2) ||
      (!only_mode.empty() && only_mode != "view" && only_mode != "get")) {
    std::fprintf(stderr, "--apply-rate, --seconds and --repetitions must be positive; --only baseline|fast, "
                         "--readers 1|2, --mode view|get\n");
    return 2;
  }
  std::vector<int> reader_counts = {1, 2};
  if (only_readers != 0) reader_counts = {only_readers};
  std::vector<read_mode> modes = {read_mode::view, read_mode::get};
  if (!only_mode.empty()) modes = {only_mode == "view" ? read_mode::view : read_mode::get};
  // Every cell of one policy consumes at most rate x seconds records, and starts over.
  c.updates = static_cast<int>(c.apply_rate * c.seconds * 1.2) + 100;

  const fs::path parent = c.dir;
  const bool made_parent = !fs::exists(parent);  // then it goes at the end, as it came
  c.dir = parent / ("run-" + std::to_string(::getpid()));
  fs::create_directories(c.dir);
  const std::string fs_name = fs_type(c.dir);
  std::fprintf(stderr, "primary: %d documents, %d update records, in %s (%s)\n", c.documents, c.updates,
               c.dir.c_str(), fs_name.c_str());
  const shipped s = make_primary(c);

  struct row {
    int readers;
    read_mode mode;
    std::vector<double> checked, fast, checked_rate, fast_rate;
    std::uint64_t refused = 0;
  };
  std::vector<row> rows;
  for (int r : reader_counts)
    for (read_mode m : modes) rows.push_back(row{r, m, {}, {}, {}, {}, 0});
  int serial = 0;
  for (int rep = 0; rep < c.repetitions; ++rep)
    for (auto& rw : rows) {
      // Alternate which policy goes first, so neither always runs on a warmer machine.
      for (int k = 0; k < 2; ++k) {
        const bool fast_now = (k == 0) == (rep % 2 == 1);
        if ((fast_now && only == "baseline") || (!fast_now && only == "fast")) continue;
        const cell got = fast_now ? run_cell<fast_replica>(c, s, rw.readers, rw.mode, ++serial)
                                  : run_cell<checked_replica>(c, s, rw.readers, rw.mode, ++serial);
        (fast_now ? rw.fast : rw.checked).push_back(got.reads_per_s);
        (fast_now ? rw.fast_rate : rw.checked_rate).push_back(got.applied_per_s);
        rw.refused += got.refused;
        std::fprintf(stderr, "rep %d, %d reader(s), %s, %s: %.0f reads/s, %.0f records/s applied\n", rep + 1,
                     rw.readers, rw.mode == read_mode::view ? "view" : "get", fast_now ? "fast path" : "baseline",
                     got.reads_per_s, got.applied_per_s);
      }
    }
  fs::remove_all(c.dir);
  if (made_parent) fs::remove(parent);

  std::printf("## Replica reads while the follower applies records\n\n");
  std::printf("%d documents; follower at %.0f records/s (asked); %s on %s; %.2f s per cell, median of %d; "
              "hardware threads: %u\n\n",
              c.documents, c.apply_rate, parent.c_str(), fs_name.c_str(), c.seconds,
              c.repetitions, std::thread::hardware_concurrency());
  std::printf("| readers | read | baseline reads/s | fast path reads/s | fast / baseline | records/s applied (baseline, fast) | refused |\n");
  std::printf("|---|---|---|---|---|---|---|\n");
  for (const auto& rw : rows) {
    const double b = median(rw.checked), f = median(rw.fast);
    std::printf("| %d | %s | %.0f | %.0f | %.2f | %.0f, %.0f | %llu |\n", rw.readers,
                rw.mode == read_mode::view ? "view (read_at, close)" : "get (read_at, one get, close)", b, f,
                b > 0 ? f / b : 0.0, median(rw.checked_rate), median(rw.fast_rate),
                static_cast<unsigned long long>(rw.refused));
  }
  return g_sink.load() == 42 ? 1 : 0;  // never true in practice; keeps the sink alive
}

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_replica_read: %s\n", e.what());
    return 1;
  }
}
