// bench_replication: how far a replica trails its primary while the primary runs the W2
// load (issue 14, must-show 6). Measured, never asserted.
//
//   bench_replication [--quick] [--dir PATH] [--out FILE] [--pairs p:r,..] [--threads 8,32]
//                     [--passes idle,busy] [--reps N] [--seconds S | --commits N]
//                     [--catchup-timeout S] [--no-control]
//
// Each cell is one process (bench/suite/child.hpp) holding a primary store and a replica
// store, in fresh directories under --dir, connected over the real TCP transport on
// loopback with a shared secret (replication/tcp.hpp): serve_replica on one thread,
// follow_primary on another. W writer threads commit bench_suite's W2 documents (one
// 256-byte document per durable insert, the same ids, schema and collection; no
// secondary index) for a fixed time or commit count. A sampler thread records, about
// every millisecond, (time, primary's published CommitId, replica's applied CommitId,
// records shipped). From that series the cell derives the primary's commits/s, the
// records/s shipped and applied, the lag in CommitIds over the samples taken while the
// writers ran, the lag in milliseconds of every CommitId (the first sample that shows it
// applied on the replica minus the first that shows it published on the primary, so its
// resolution is the sampling interval), and the catch-up time once the writers stop.
// A control cell runs the same writers on a primary with no replica, so the cost of
// shipping shows as a ratio measured in the same run; and each pass of each repetition
// measures the disk's write+fdatasync floor (bench/suite/floor.hpp), the ceiling of a
// replica that makes each record durable on its own.
//
// The passes are bench_suite's: idle CPUs, and a nice-19 spinner thread per CPU
// (bench/suite/cpu_spinners.hpp), which keeps an fdatasync from waiting for a 4 ms timer
// tick on the VMs this runs on. Repetitions interleave passes, writer counts and engine
// pairs; the report gives medians and every repetition goes to --out (JSON).
//
// Thread safety: main() and the report run on one thread; inside a cell, the writers, the
// sampler and the two replication loops share only the databases (thread-safe), the
// primary_feed's lag readers and atomics.
#include "suite/child.hpp"
#include "suite/cpu_spinners.hpp"
#include "suite/floor.hpp"
#include "suite/suite_util.hpp"

#include <aerodb/aerodb.hpp>
#include <aerodb/replication.hpp>
#include <aerodb/replication/tcp.hpp>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include <fcntl.h>
#include <pthread.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <linux/magic.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <latch>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
namespace repl = aerodb::replication;
using namespace bench;

// bench_suite's AeroDB schema (suite/engine_aerodb.cpp, where it is private to the
// adapter): the W2 documents must be the same records on the wire as in that workload.
constexpr const char* doc_schema = R"({"id":"doc","version":1,"fields":{
  "_id":{"type":"string","required":true},
  "bucket":{"type":"int","required":true},
  "score":{"type":"float","required":true},
  "body":{"type":"string","required":true}}})";

constexpr const char* secret = "bench_replication: a shared secret of enough bytes";

// ---- configuration --------------------------------------------------------------------

struct config {
  bool quick = false;
  std::string dir = "bench-data";
  std::string out;  // JSON of every repetition; none when empty
  std::vector<std::string> pairs{"accelerated:accelerated", "baseline:baseline"};
  std::vector<int> threads{8, 32};
  std::vector<std::string> passes{"idle", "busy"};
  int reps = 5;
  double seconds = 1.0;          // the writers' time per cell (when commits == 0)
  std::uint64_t commits = 0;     // or a fixed number of commits per cell
  double catchup_timeout = 90;   // seconds the replica gets to catch up after the writers stop
  bool control = true;           // the primary alone, same writers, same pass
};

template <class T>
T need(aerodb::result<T> r, const char* what) {
  if (!r) throw failure(std::string(what) + ": " + r.error_value().to_string());
  return std::move(r).value();
}

// Names the calling thread (at most 15 characters), so that perf and top tell the
// threads of a cell apart. Threads it starts inherit the name.
void name_thread(const char* name) { (void)::pthread_setname_np(::pthread_self(), name); }

json::value num(double v) { return std::isfinite(v) ? json::value(v) : json::value(nullptr); }

double seconds_between(clock_type::time_point a, clock_type::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// ---- the writers: W2 of bench_suite ----------------------------------------------------

struct writer_result {
  std::uint64_t commits = 0;
  std::vector<double> latency_us;  // every commit's
  clock_type::time_point start, stop;
};

// `threads` writers insert W2 documents (suite_util.hpp: make_document, writer_id), one
// per durable commit, until `seconds` pass or, when `commit_budget` > 0, until that many
// commits were taken in all.
template <class Db>
writer_result run_writers(Db& db, int threads, double seconds, std::uint64_t commit_budget) {
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> tickets{0};
  std::latch ready(threads + 1);
  std::vector<std::vector<double>> lat(static_cast<std::size_t>(threads));
  std::vector<std::string> errors(static_cast<std::size_t>(threads));
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t)
    pool.emplace_back([&, t] {
      name_thread("writer");
      auto& l = lat[static_cast<std::size_t>(t)];
      l.reserve(1 << 14);
      document d;
      ready.arrive_and_wait();
      try {
        for (std::uint64_t seq = 0; !stop.load(std::memory_order_relaxed); ++seq) {
          if (commit_budget && tickets.fetch_add(1, std::memory_order_relaxed) >= commit_budget) break;
          make_document(d, writer_id(t, seq), 1);
          const auto a = clock_type::now();
          need(db.insert("docs", 1, d.json), "insert");
          l.push_back(std::chrono::duration<double, std::micro>(clock_type::now() - a).count());
        }
      } catch (const std::exception& x) {
        errors[static_cast<std::size_t>(t)] = x.what();
      }
    });
  writer_result r;
  r.start = clock_type::now();
  ready.arrive_and_wait();
  if (!commit_budget) {
    std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
    stop = true;
  }
  for (auto& th : pool) th.join();
  r.stop = clock_type::now();
  for (const auto& e : errors)
    if (!e.empty()) throw failure(e);
  for (auto& l : lat) r.latency_us.insert(r.latency_us.end(), l.begin(), l.end());
  r.commits = r.latency_us.size();
  return r;
}

template <class Db>
std::unique_ptr<Db> open_primary(const std::string& dir) {
  auto db = need(Db::open(dir), "open the primary");
  need(db->register_schema(doc_schema), "register_schema");
  need(db->create_collection("docs", "doc"), "create_collection");
  return db;
}

void put_writer_stats(json::object& r, const writer_result& w) {
  const double elapsed = seconds_between(w.start, w.stop);
  r["commits"] = w.commits;
  r["seconds"] = elapsed;
  r["commits_per_s"] = static_cast<double>(w.commits) / elapsed;
  r["p50_us"] = num(percentile(w.latency_us, 50));
  r["p99_us"] = num(percentile(w.latency_us, 99));
}

// The control: the same writers on a primary with no replica.
template <class P>
json::object control_cell(const std::string& dir, int threads, double seconds, std::uint64_t commits) {
  auto db = open_primary<P>(dir + "/primary");
  const auto fsyncs0 = db->metrics().group_commit_fsync_count;
  const auto w = run_writers(*db, threads, seconds, commits);
  json::object r;
  put_writer_stats(r, w);
  const auto fsyncs = db->metrics().group_commit_fsync_count - fsyncs0;
  r["primary_records_per_fsync"] = fsyncs ? num(static_cast<double>(w.commits) / static_cast<double>(fsyncs)) : nullptr;
  return r;
}

// ---- the replication cell ----------------------------------------------------------------

struct sample {
  double t;  // seconds since the cell's origin
  aerodb::commit_id published, applied;
  std::uint64_t shipped;
};

// The last sample at or before `t` (the first one when none is).
std::size_t sample_at(const std::vector<sample>& s, double t) {
  std::size_t i = 0;
  while (i + 1 < s.size() && s[i + 1].t <= t) ++i;
  return i;
}

template <class P, class R>
json::object replication_cell(const std::string& dir, int threads, double seconds, std::uint64_t commits,
                              double catchup_timeout) {
  const auto origin = clock_type::now();
  const auto since = [origin](clock_type::time_point t) { return seconds_between(origin, t); };

  auto db = open_primary<P>(dir + "/primary");
  auto replica = need(repl::basic_replica<R>::open(dir + "/replica"), "open the replica");
  repl::tcp_options options;
  options.secret = secret;
  auto listener = need(repl::tcp_listener::open(options), "listen");
  const std::uint16_t port = listener->port();

  // The replica's side connects and follows on its own thread; the primary's side accepts
  // here, then serves on another.
  std::atomic<bool> follower_done{false};
  std::optional<aerodb::error> follow_error;
  std::thread follower([&] {
    name_thread("repl-follower");
    auto conn = repl::tcp_connect("127.0.0.1", port, secret);
    if (!conn) {
      follow_error = conn.error_value();
    } else {
      auto f = repl::follow_primary(*replica, **conn);
      if (!f) follow_error = f.error_value();
    }
    follower_done.store(true);
  });
  auto accepted = listener->accept();
  if (!accepted) {
    follower.join();
    throw failure("accept: " + accepted.error_value().to_string());
  }
  std::unique_ptr<repl::connection> conn = std::move(*accepted);
  repl::primary_feed<P> feed(*db);
  std::atomic<bool> stop_serving{false};
  std::optional<aerodb::error> serve_error;
  std::thread server([&] {
    name_thread("repl-primary");  // and serve_replica's acknowledgment thread
    auto s = repl::serve_replica(feed, *conn, stop_serving);
    if (!s && s.code() != aerodb::errc::replication_disconnected) serve_error = s.error_value();
  });
  // Ends the session; safe to call more than once.
  const auto end_session = [&] {
    stop_serving.store(true);
    feed.wake();
    conn->shutdown();
    if (server.joinable()) server.join();
    if (follower.joinable()) follower.join();
  };
  const auto replica_failed = [&] { return follower_done.load() || replica->halted(); };

  try {
    // The catalog's records first, so that the load starts from a replica in step.
    const auto setup_deadline = clock_type::now() + std::chrono::seconds(10);
    while (replica->applied() < db->last_commit_id()) {
      if (replica_failed() || clock_type::now() > setup_deadline) throw failure("the replica did not follow the catalog");
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }

    // The sampler. The replica's CommitId is read before the primary's, so a sample never
    // shows the replica ahead (it applies only what was published before).
    std::vector<sample> samples;
    samples.reserve(static_cast<std::size_t>((seconds + catchup_timeout) * 1100) + 4096);
    std::atomic<bool> stop_sampling{false};
    // Joined on every way out of this block, an exception from the writers included.
    struct joined_thread {
      std::atomic<bool>& stop;
      std::thread t;
      ~joined_thread() { finish(); }
      void finish() {
        stop = true;
        if (t.joinable()) t.join();
      }
    };
    // It takes one more sample after it is told to stop, so the series always ends with
    // what the main thread saw when it stopped it (a late wake-up cannot lose the
    // catch-up).
    joined_thread sampler{stop_sampling, std::thread([&] {
      name_thread("sampler");
      for (bool last_one = false; !last_one;) {
        last_one = stop_sampling.load();
        const aerodb::commit_id applied = replica->applied();
        const aerodb::commit_id published = feed.published();
        const std::uint64_t shipped = feed.records_shipped();
        samples.push_back({since(clock_type::now()), published, applied, shipped});
        if (!last_one) std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
    })};

    const auto p_fsyncs0 = db->metrics().group_commit_fsync_count;
    const auto r_fsyncs0 = replica->metrics().group_commit_fsync_count;
    const aerodb::commit_id first = db->last_commit_id() + 1;  // the load's first CommitId
    const auto w = run_writers(*db, threads, seconds, commits);
    const aerodb::commit_id last = db->last_commit_id();
    const auto p_fsyncs = db->metrics().group_commit_fsync_count - p_fsyncs0;

    // Catch-up: until the replica applied the last CommitId, it failed, or time is up.
    const auto catchup_deadline = w.stop + std::chrono::duration<double>(catchup_timeout);
    while (replica->applied() < last && !replica_failed() && clock_type::now() < catchup_deadline)
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    sampler.finish();
    const auto r_fsyncs = replica->metrics().group_commit_fsync_count - r_fsyncs0;
    const aerodb::commit_id applied_end = replica->applied();
    end_session();
    if (serve_error) throw failure("serve_replica: " + serve_error->to_string());
    if (replica->halted()) throw failure("the replica halted: " + replica->status().halt_reason->to_string());

    // ---- what the series says
    const double t_start = since(w.start), t_stop = since(w.stop);
    json::object r;
    put_writer_stats(r, w);
    r["first_commit"] = first;
    r["last_commit"] = last;
    r["primary_records_per_fsync"] =
        p_fsyncs ? num(static_cast<double>(w.commits) / static_cast<double>(p_fsyncs)) : nullptr;
    r["replica_fsyncs"] = r_fsyncs;
    r["samples"] = samples.size();

    // Sampling intervals, so a reader knows the resolution of the millisecond lags.
    std::vector<double> gaps;
    for (std::size_t i = 1; i < samples.size(); ++i) gaps.push_back((samples[i].t - samples[i - 1].t) * 1e3);
    r["sample_interval_ms_mean"] = num(gaps.empty() ? NAN : (samples.back().t - samples.front().t) * 1e3 /
                                                                static_cast<double>(gaps.size()));
    r["sample_interval_ms_p99"] = num(percentile(gaps, 99));
    r["sample_interval_ms_max"] = num(percentile(gaps, 100));

    // Rates while the writers ran, from the samples that bracket the load.
    const sample& a = samples[sample_at(samples, t_start)];
    const sample& b = samples[sample_at(samples, t_stop)];
    const double span = b.t - a.t;
    r["applied_per_s"] = num(span > 0 ? static_cast<double>(b.applied - a.applied) / span : NAN);
    r["shipped_per_s"] = num(span > 0 ? static_cast<double>(b.shipped - a.shipped) / span : NAN);
    r["records_shipped"] = feed.records_shipped();
    r["lag_at_stop"] = b.published - b.applied;

    // Lag in CommitIds over the samples taken while the writers ran.
    std::vector<double> lag_ids;
    double lag_sum = 0;
    for (const auto& s : samples)
      if (s.t >= t_start && s.t <= t_stop) {
        lag_ids.push_back(static_cast<double>(s.published - s.applied));
        lag_sum += lag_ids.back();
      }
    r["lag_commits_mean"] = num(lag_ids.empty() ? NAN : lag_sum / static_cast<double>(lag_ids.size()));
    r["lag_commits_p50"] = num(percentile(lag_ids, 50));
    r["lag_commits_p99"] = num(percentile(lag_ids, 99));
    r["lag_commits_max"] = num(percentile(lag_ids, 100));
    // How fast the backlog grew while the writers ran: the lag numbers above scale with
    // the length of the load whenever this is well above zero.
    r["lag_growth_per_s"] =
        num(span > 0 ? (static_cast<double>(b.published - b.applied) - static_cast<double>(a.published - a.applied)) / span
                     : NAN);

    // Lag in milliseconds of each CommitId of the load: the first sample showing it
    // applied minus the first showing it published. Both series only grow, so one walk.
    std::vector<double> lag_ms;
    lag_ms.reserve(last >= first ? last - first + 1 : 0);
    std::uint64_t never_applied = 0;
    std::size_t ip = 0, ia = 0;
    for (aerodb::commit_id c = first; c <= last; ++c) {
      while (ip < samples.size() && samples[ip].published < c) ++ip;
      while (ia < samples.size() && samples[ia].applied < c) ++ia;
      if (ip == samples.size()) break;  // cannot happen: the last sample saw `last` published
      if (ia == samples.size()) {
        // Not applied when the catch-up timed out: its lag is at least this much.
        ++never_applied;
        lag_ms.push_back((samples.back().t - samples[ip].t) * 1e3);
        continue;
      }
      lag_ms.push_back(std::max(0.0, samples[ia].t - samples[ip].t) * 1e3);
    }
    r["lag_ms_p50"] = num(percentile(lag_ms, 50));
    r["lag_ms_p99"] = num(percentile(lag_ms, 99));
    r["lag_ms_max"] = num(percentile(lag_ms, 100));
    r["not_applied_in_time"] = never_applied;  // counted in the lags above as lower bounds

    // Catch-up: from the writers' stop to the first sample showing the last CommitId
    // applied; and the rate the replica drained its backlog at meanwhile.
    const bool caught_up = applied_end >= last;
    r["caught_up"] = caught_up;
    double catchup = NAN;
    if (caught_up)
      for (const auto& s : samples)
        if (s.applied >= last) {
          catchup = std::max(0.0, s.t - t_stop);
          break;
        }
    r["catchup_s"] = num(catchup);
    r["drain_per_s"] = num(caught_up && catchup > 0.005 ? static_cast<double>(last - b.applied) / catchup : NAN);
    return r;
  } catch (...) {
    end_session();
    throw;
  }
}

// ---- engine pairs ------------------------------------------------------------------------

using cell_fn = std::function<json::object(const std::string&, int, double, std::uint64_t, double)>;

template <class P, class R>
cell_fn replication_fn() {
  return [](const std::string& d, int t, double s, std::uint64_t c, double to) { return replication_cell<P, R>(d, t, s, c, to); };
}
template <class P>
cell_fn control_fn() {
  return [](const std::string& d, int t, double s, std::uint64_t c, double) { return control_cell<P>(d, t, s, c); };
}

// The primary's engine name -> its control; "primary:replica" -> the replication cell.
// `baseline` is aerodb::database, `accelerated` aerodb::accelerated_database, as in
// bench_policies and bench_suite.
const std::map<std::string, cell_fn>& controls() {
  static const std::map<std::string, cell_fn> m{{"baseline", control_fn<aerodb::database>()},
                                                {"accelerated", control_fn<aerodb::accelerated_database>()}};
  return m;
}
const std::map<std::string, cell_fn>& pairs() {
  using base = aerodb::database;
  using accel = aerodb::accelerated_database;
  static const std::map<std::string, cell_fn> m{{"baseline:baseline", replication_fn<base, base>()},
                                                {"baseline:accelerated", replication_fn<base, accel>()},
                                                {"accelerated:baseline", replication_fn<accel, base>()},
                                                {"accelerated:accelerated", replication_fn<accel, accel>()}};
  return m;
}

std::string primary_of(const std::string& pair) { return pair.substr(0, pair.find(':')); }
std::string arrow(const std::string& pair) {
  return primary_of(pair) + " → " + pair.substr(pair.find(':') + 1);
}

// ---- formatting ------------------------------------------------------------------------

std::string fmt(double v, int precision) {
  if (!std::isfinite(v)) return "n/a";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", precision, v);
  return buf;
}

std::string fmt_ratio(double v) { return std::isfinite(v) ? fmt(v, 2) + "x" : "n/a"; }

std::string fmt_count(double v) {
  if (!std::isfinite(v)) return "n/a";
  const long long n = std::llround(v);
  std::string digits = std::to_string(n < 0 ? -n : n), out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return n < 0 ? "-" + out : out;
}

// The median over repetitions of one member (NaN when none has it).
double med(const json::array& reps, const char* key) {
  std::vector<double> v;
  for (const auto& x : reps) {
    const auto& o = x.as_object();
    if (const auto* p = o.if_contains(key); p && !p->is_null()) v.push_back(p->to_number<double>());
  }
  return median(v);
}

// ---- the run -----------------------------------------------------------------------------

void sync_dir(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    (void)::syncfs(fd);
    ::close(fd);
  }
}

std::string fs_type(const std::string& dir, bool& memory_fs) {
  struct statfs s {};
  memory_fs = false;
  if (::statfs(dir.c_str(), &s) != 0) return "unknown";
  switch (static_cast<unsigned long>(s.f_type)) {
    case EXT4_SUPER_MAGIC: return "ext4";
    case XFS_SUPER_MAGIC: return "xfs";
    case BTRFS_SUPER_MAGIC: return "btrfs";
    case TMPFS_MAGIC: memory_fs = true; return "tmpfs";
    case RAMFS_MAGIC: memory_fs = true; return "ramfs";
    default: {
      char buf[32];
      std::snprintf(buf, sizeof buf, "0x%lx", static_cast<unsigned long>(s.f_type));
      return buf;
    }
  }
}

const char* pass_label(const std::string& pass) {
  return pass == "busy" ? "busy CPUs (a nice-19 spinner thread per CPU)" : "idle CPUs";
}

int run(const config& cfg) {
  const bool made_dir = !fs::exists(cfg.dir);
  make_dir(cfg.dir);
  const std::string run_dir = cfg.dir + "/run-" + std::to_string(::getpid());
  make_dir(run_dir);
  bool memory_fs = false;
  const std::string fstype = fs_type(run_dir, memory_fs);
  if (memory_fs)
    std::fprintf(stderr, "WARNING: %s is %s; fdatasync is free there and these numbers mean nothing\n",
                 cfg.dir.c_str(), fstype.c_str());

  // results[pass][pair or "alone:engine"][threads]: every repetition
  std::map<std::string, std::map<std::string, std::map<int, json::array>>> results;
  std::vector<std::string> controls_run;
  for (const auto& p : cfg.pairs) {
    const std::string e = primary_of(p);
    if (std::find(controls_run.begin(), controls_run.end(), e) == controls_run.end()) controls_run.push_back(e);
  }
  const std::size_t per_pass = cfg.threads.size() * (cfg.pairs.size() + (cfg.control ? controls_run.size() : 0));
  const int total = cfg.reps * static_cast<int>(cfg.passes.size() * per_pass);
  int cell = 0, errors = 0, counter = 0;
  const auto started = clock_type::now();
  std::fprintf(stderr, "bench_replication (%s): data in %s (%s)\n", cfg.quick ? "quick" : "full", run_dir.c_str(),
               fstype.c_str());

  cpu_spinners spinners;
  const std::string result_path = run_dir + "/result.json";
  const auto one = [&](const std::string& pass, int rep, const std::string& key, int threads, const cell_fn& fn) {
    ++cell;
    std::fprintf(stderr, "[%d/%d %4.0fs] %s, %d writers, %s pass, rep %d/%d\n", cell, total, seconds_since(started),
                 key.rfind("alone:", 0) == 0 ? (key.substr(6) + " alone").c_str() : arrow(key).c_str(), threads,
                 pass.c_str(), rep + 1, cfg.reps);
    const std::string dir = run_dir + "/cell-" + std::to_string(counter++);
    make_dir(dir);
    auto r = run_in_child(result_path, false,
                          [&] { return fn(dir, threads, cfg.seconds, cfg.commits, cfg.catchup_timeout); });
    std::error_code ec;
    fs::remove_all(dir, ec);
    sync_dir(run_dir);  // deleting this cell's files is not charged to the next
    if (r.contains("error")) {
      ++errors;
      std::fprintf(stderr, "  FAILED: %s\n", r["error"].as_string().c_str());
      return;
    }
    r["pass"] = pass;
    r["rep"] = rep;
    r["threads"] = threads;
    r["cell"] = key;
    results[pass][key][threads].push_back(r);
  };

  // The disk's floor, in the same pass: what one fdatasync per record allows, which is
  // what the replica does (one fsync per record it applies).
  std::map<std::string, json::array> floors;
  const double floor_seconds = cfg.quick ? 0.1 : 0.5;
  const auto floor = [&](const std::string& pass, int rep) {
    auto r = run_in_child(result_path, false, [&] {
      const auto a = fdatasync_floor(run_dir + "/floor-append", true, floor_seconds);
      const auto o = fdatasync_floor(run_dir + "/floor-overwrite", false, floor_seconds);
      return json::object{{"append_per_s", a.ops_per_s}, {"overwrite_per_s", o.ops_per_s},
                          {"append_p99_us", num(a.p99_us)}, {"overwrite_p99_us", num(o.p99_us)}};
    });
    sync_dir(run_dir);
    if (r.contains("error")) {
      ++errors;
      std::fprintf(stderr, "  floor FAILED: %s\n", r["error"].as_string().c_str());
      return;
    }
    r["pass"] = pass;
    r["rep"] = rep;
    floors[pass].push_back(r);
  };

  // Every repetition runs each pass (which goes first alternates); within a pass, the
  // floor, then each writer count, with the pairs and controls rotated.
  for (int rep = 0; rep < cfg.reps; ++rep)
    for (std::size_t pi = 0; pi < cfg.passes.size(); ++pi) {
      const std::string& pass = cfg.passes[(pi + static_cast<std::size_t>(rep)) % cfg.passes.size()];
      if (pass == "busy") spinners.start();
      std::fprintf(stderr, "[%4.0fs] floor: write+fdatasync, append and overwrite, %s pass, rep %d/%d\n",
                   seconds_since(started), pass.c_str(), rep + 1, cfg.reps);
      floor(pass, rep);
      for (int threads : cfg.threads) {
        std::vector<std::pair<std::string, const cell_fn*>> cells;
        for (const auto& p : cfg.pairs) cells.emplace_back(p, &pairs().at(p));
        if (cfg.control)
          for (const auto& e : controls_run) cells.emplace_back("alone:" + e, &controls().at(e));
        for (std::size_t k = 0; k < cells.size(); ++k) {
          const auto& c = cells[(k + static_cast<std::size_t>(rep)) % cells.size()];
          one(pass, rep, c.first, threads, *c.second);
        }
      }
      spinners.stop();
    }

  // ---- the report
  std::string md;
  const std::string load = cfg.commits ? std::to_string(cfg.commits) + " commits per cell"
                                       : fmt(cfg.seconds, 1) + " s of writing per cell";
  md += "## Replication lag under the W2 load\n\n";
  md += "Primary and replica on one disk (" + fstype + "), over TCP on loopback; " + load + "; medians of " +
        std::to_string(cfg.reps) + " repetition(s).\n\n";
  for (const auto& pass : cfg.passes) {
    const double floor_ovw = med(floors[pass], "overwrite_per_s");
    md += "### Throughput, " + std::string(pass_label(pass)) + "\n\n";
    md += "The disk's floor in this pass: `write+fdatasync` of one 256-byte record, appending " +
          fmt_count(med(floors[pass], "append_per_s")) + "/s, overwriting a pre-zeroed file " + fmt_count(floor_ovw) +
          "/s.\n\n";
    md += "| primary → replica | writers | primary commits/s | alone commits/s | with replica / alone | primary p99 ms | "
          "records/fsync on the primary | shipped records/s | applied records/s | applied / committed | replica drain "
          "records/s | drain / overwrite floor |\n";
    md += "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n";
    for (const auto& p : cfg.pairs)
      for (int t : cfg.threads) {
        const auto& reps = results[pass][p][t];
        const auto& alone = results[pass]["alone:" + primary_of(p)][t];
        const double cps = med(reps, "commits_per_s"), alone_cps = med(alone, "commits_per_s");
        const double applied = med(reps, "applied_per_s"), drain = med(reps, "drain_per_s");
        md += "| " + arrow(p) + " | " + std::to_string(t) + " | " + fmt_count(cps) + " | " + fmt_count(alone_cps) +
              " | " + fmt_ratio(cps / alone_cps) + " | " + fmt(med(reps, "p99_us") / 1e3, 1) + " | " +
              fmt(med(reps, "primary_records_per_fsync"), 1) + " | " + fmt_count(med(reps, "shipped_per_s")) + " | " +
              fmt_count(applied) + " | " + fmt(applied / cps, 2) + " | " + fmt_count(drain) + " | " +
              fmt_ratio(drain / floor_ovw) + " |\n";
      }
    md += "\n### Lag, " + std::string(pass_label(pass)) + "\n\n";
    md += "| primary → replica | writers | CommitIds behind: mean | p50 | p99 | max | growth per s | ms behind: p50 | "
          "p99 | max | catch-up s | caught up |\n";
    md += "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n";
    for (const auto& p : cfg.pairs)
      for (int t : cfg.threads) {
        const auto& reps = results[pass][p][t];
        // A repetition that did not catch up in time counts as longer than any that did.
        int caught = 0;
        std::vector<double> catchup;
        for (const auto& x : reps) {
          const auto& o = x.as_object();
          const bool ok = o.at("caught_up").as_bool();
          caught += ok;
          catchup.push_back(ok && !o.at("catchup_s").is_null() ? o.at("catchup_s").to_number<double>() : INFINITY);
        }
        const double catchup_med = median(catchup);
        const std::string catchup_text = std::isinf(catchup_med) ? "> " + fmt(cfg.catchup_timeout, 0) : fmt(catchup_med, 2);
        md += "| " + arrow(p) + " | " + std::to_string(t) + " | " + fmt_count(med(reps, "lag_commits_mean")) + " | " +
              fmt_count(med(reps, "lag_commits_p50")) + " | " + fmt_count(med(reps, "lag_commits_p99")) + " | " +
              fmt_count(med(reps, "lag_commits_max")) + " | " + fmt_count(med(reps, "lag_growth_per_s")) + " | " +
              fmt(med(reps, "lag_ms_p50"), 0) + " | " + fmt(med(reps, "lag_ms_p99"), 0) + " | " +
              fmt(med(reps, "lag_ms_max"), 0) + " | " + catchup_text + " | " + std::to_string(caught) +
              "/" + std::to_string(reps.size()) + " |\n";
      }
    md += "\n";
  }
  double interval_p99 = 0;
  for (const auto& pass_results : results)
    for (const auto& key_results : pass_results.second)
      for (const auto& thread_results : key_results.second) {
        const double v = med(thread_results.second, "sample_interval_ms_p99");
        if (std::isfinite(v)) interval_p99 = std::max(interval_p99, v);
      }
  md += "Sampling: about every 1 ms (the worst cell's median p99 interval: " + fmt(interval_p99, 1) +
        " ms), which is the resolution of the millisecond lags.\n";
  if (errors) md += "\n**" + std::to_string(errors) + " cell(s) failed**; see stderr.\n";
  std::fputs(md.c_str(), stdout);

  if (!cfg.out.empty()) {
    json::object out;
    char date[32];
    const std::time_t now = std::time(nullptr);
    std::strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
    out["date"] = date;
    out["fs_type"] = fstype;
    out["cpus"] = ::sysconf(_SC_NPROCESSORS_ONLN);
    json::object c;
    c["quick"] = cfg.quick;
    c["reps"] = cfg.reps;
    c["seconds"] = cfg.seconds;
    c["commits"] = cfg.commits;
    c["catchup_timeout"] = cfg.catchup_timeout;
    out["config"] = c;
    json::array cells;
    for (const auto& pass_results : results)
      for (const auto& key_results : pass_results.second)
        for (const auto& thread_results : key_results.second)
          for (const auto& x : thread_results.second) cells.push_back(x);
    out["cells"] = cells;
    json::object jf;
    for (const auto& pf : floors) jf[pf.first] = pf.second;
    out["floors"] = jf;
    std::ofstream(cfg.out) << json::serialize(out) << "\n";
  }

  std::error_code ec;
  fs::remove_all(run_dir, ec);
  if (made_dir) fs::remove(cfg.dir, ec);
  std::fprintf(stderr, "bench_replication: %d cells in %.0f s%s\n", cell, seconds_since(started),
               errors ? (", " + std::to_string(errors) + " failed").c_str() : "");
  return errors ? 1 : 0;
}

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::size_t at = 0;
  while (at <= s.size()) {
    const std::size_t comma = s.find(',', at);
    const std::string item = s.substr(at, comma == std::string::npos ? std::string::npos : comma - at);
    if (!item.empty()) out.push_back(item);
    if (comma == std::string::npos) break;
    at = comma + 1;
  }
  return out;
}

int usage(const char* why) {
  if (why) std::fprintf(stderr, "bench_replication: %s\n", why);
  std::fprintf(stderr,
               "usage: bench_replication [--quick] [--dir PATH] [--out FILE] [--pairs p:r,..] [--threads 8,32]\n"
               "                         [--passes idle,busy] [--reps N] [--seconds S | --commits N]\n"
               "                         [--catchup-timeout S] [--no-control]\n"
               "  --quick     1 repetition of 150 commits per cell (CI; the numbers are noise)\n"
               "  --dir       where the data directories go (a real disk; default ./bench-data)\n"
               "  --out       also write every repetition as JSON to FILE\n"
               "  --pairs     primary:replica engines, each baseline or accelerated\n"
               "              (default accelerated:accelerated,baseline:baseline)\n"
               "  --threads   writer thread counts (default 8,32)\n"
               "  --passes    idle (no spinners) and/or busy (a nice-19 spinner thread per CPU); default idle,busy\n"
               "  --reps N    repetitions (default 5)\n"
               "  --seconds S the writers' time per cell (default 1)\n"
               "  --commits N a fixed number of commits per cell instead\n"
               "  --catchup-timeout S  how long the replica may take to catch up (default 90)\n"
               "  --no-control  skip the cells of the primary alone\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  config cfg;
  bool reps_set = false, load_set = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw failure(a + " needs a value");
      return argv[++i];
    };
    try {
      if (a == "--quick") cfg.quick = true;
      else if (a == "--dir") cfg.dir = value();
      else if (a == "--out") cfg.out = value();
      else if (a == "--pairs") cfg.pairs = split(value());
      else if (a == "--passes") cfg.passes = split(value());
      else if (a == "--threads") {
        cfg.threads.clear();
        for (const auto& t : split(value())) cfg.threads.push_back(std::stoi(t));
      } else if (a == "--reps") cfg.reps = std::stoi(value()), reps_set = true;
      else if (a == "--seconds") cfg.seconds = std::stod(value()), cfg.commits = 0, load_set = true;
      else if (a == "--commits") cfg.commits = std::stoull(value()), load_set = true;
      else if (a == "--catchup-timeout") cfg.catchup_timeout = std::stod(value());
      else if (a == "--no-control") cfg.control = false;
      else if (a == "--help" || a == "-h") return usage(nullptr);
      else return usage(("unknown option " + a).c_str());
    } catch (const std::exception& e) {
      return usage(e.what());
    }
  }
  if (cfg.quick) {
    if (!reps_set) cfg.reps = 1;
    if (!load_set) cfg.commits = 150;
    cfg.catchup_timeout = std::min(cfg.catchup_timeout, 20.0);
  }
  for (const auto& p : cfg.pairs)
    if (!pairs().count(p)) return usage(("unknown pair " + p + " (primary:replica, each baseline or accelerated)").c_str());
  for (const auto& p : cfg.passes)
    if (p != "idle" && p != "busy") return usage(("unknown pass " + p).c_str());
  if (cfg.pairs.empty() || cfg.threads.empty() || cfg.passes.empty() || cfg.reps < 1) return usage("nothing to run");
  for (int t : cfg.threads)
    if (t < 1) return usage("a writer count must be at least 1");
  try {
    return run(cfg);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_replication: %s\n", e.what());
    return 1;
  }
}
