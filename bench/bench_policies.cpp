// bench_policies: the policies of basic_database measured side by side, in one process.
//
//   bench_policies [--quick] [--dir PATH] [--json FILE] [--markdown FILE]
//
// Three measurements (see bench/README.md), each run for every engine it compares, with
// the engines' repetitions interleaved and the median reported:
//   1. durable commits per second from 1, 4, 16 and 32 writer threads, one small
//      document per commit: the baseline, group commit alone, and the accelerated
//      engine, against a write + fdatasync floor measured in the same directory;
//   2. point reads of random existing _ids under a read view (each key once per view,
//      and each key twice per view): baseline against accelerated;
//   3. secondary-index equality and range queries at 1% selectivity (limit 10000, and
//      limit 100 with a sort): baseline against accelerated.
//
// Nothing here is asserted: every number is measured in this run and printed as measured.
// Results are meant to be read as ratios between engines measured in the same process
// on the same disk, not as absolute numbers.
#include <aerodb/aerodb.hpp>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <fcntl.h>
#include <malloc.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <latch>
#include <memory>
#include <numeric>
#include <optional>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using clock_type = std::chrono::steady_clock;

using baseline_db = aerodb::database;
using group_db = aerodb::basic_database<aerodb::policies::group_commit, aerodb::policies::full_traversal,
                                        aerodb::policies::ordered_index>;
using accel_db = aerodb::accelerated_database;

// ---- small utilities ------------------------------------------------------------------

struct bench_failure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// The value of a result, or a bench_failure naming what failed.
template <class T>
T need(aerodb::result<T> r, std::string_view what) {
  if (!r) throw bench_failure(std::string(what) + ": " + r.error_value().to_string());
  return std::move(r).value();
}

double seconds_since(clock_type::time_point t0) {
  return std::chrono::duration<double>(clock_type::now() - t0).count();
}

std::string fmt(double v, int precision) {
  if (!std::isfinite(v)) return "n/a";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", precision, v);
  return buf;
}

// A number with thousands separators, rounded to an integer.
std::string fmt_count(double v) {
  if (!std::isfinite(v)) return "n/a";
  const long long n = std::llround(v);
  std::string digits = std::to_string(n < 0 ? -n : n);
  std::string out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return n < 0 ? "-" + out : out;
}

std::string fmt_ratio(double v) { return std::isfinite(v) ? fmt(v, 2) + "x" : "n/a"; }

// Median of a sample (the mean of the two middle values for an even count).
double median(std::vector<double> v) {
  if (v.empty()) return NAN;
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// Nearest-rank percentile, p in (0, 100].
double percentile(std::vector<double> v, double p) {
  if (v.empty()) return NAN;
  std::sort(v.begin(), v.end());
  const auto rank = static_cast<std::size_t>(std::ceil(p / 100.0 * static_cast<double>(v.size())));
  return v[std::clamp<std::size_t>(rank, 1, v.size()) - 1];
}

double ratio(double a, double b) { return b > 0 ? a / b : NAN; }

json::array to_json_array(const std::vector<double>& v) {
  json::array a;
  for (double x : v) a.emplace_back(x);
  return a;
}

// splitmix64: cheap per-thread pseudo-random bytes for document bodies.
struct splitmix {
  std::uint64_t s;
  std::uint64_t next() {
    std::uint64_t z = (s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
};

// `n` random lowercase hex digits (incompressible enough for a WAL without compression).
void append_hex(std::string& out, splitmix& rng, std::size_t n) {
  static constexpr char digits[] = "0123456789abcdef";
  while (n) {
    std::uint64_t r = rng.next();
    for (int i = 0; i < 16 && n; ++i, --n, r >>= 4) out += digits[r & 15];
  }
}

// A sink the optimizer cannot see through, for values read back from the engines.
std::atomic<std::uint64_t> g_sink{0};

// ---- machine facts --------------------------------------------------------------------

std::string fs_type_name(long type) {
  switch (static_cast<unsigned long>(type)) {
    case 0xEF53ul: return "ext2/3/4";
    case 0x58465342ul: return "xfs";
    case 0x9123683Eul: return "btrfs";
    case 0x01021994ul: return "tmpfs";
    case 0x858458F6ul: return "ramfs";
    case 0x794C7630ul: return "overlayfs";
    case 0x6969ul: return "nfs";
    case 0x2FC12FC1ul: return "zfs";
    case 0xF2F52010ul: return "f2fs";
    case 0x65735546ul: return "fuse";
    case 0x01021997ul: return "9p/v9fs";
    default: {
      char buf[32];
      std::snprintf(buf, sizeof buf, "unknown (0x%lx)", static_cast<unsigned long>(type));
      return buf;
    }
  }
}

struct machine_facts {
  unsigned nproc = 0;
  std::string cpu_model, kernel, fs_type, date, compiler;
  bool tmpfs = false;
  bool optimized = false, assertions = true;
};

machine_facts probe_machine(const std::string& dir) {
  machine_facts m;
  const long n = ::sysconf(_SC_NPROCESSORS_ONLN);
  m.nproc = n > 0 ? static_cast<unsigned>(n) : std::thread::hardware_concurrency();
  std::ifstream cpuinfo("/proc/cpuinfo");
  for (std::string line; std::getline(cpuinfo, line);) {
    if (line.rfind("model name", 0) == 0) {
      const auto colon = line.find(':');
      if (colon != std::string::npos) m.cpu_model = line.substr(line.find_first_not_of(" \t", colon + 1));
      break;
    }
  }
  if (m.cpu_model.empty()) m.cpu_model = "unknown";
  struct utsname u {};
  if (::uname(&u) == 0) m.kernel = std::string(u.sysname) + " " + u.release + " " + u.machine;
  struct statfs sf {};
  if (::statfs(dir.c_str(), &sf) == 0) {
    m.fs_type = fs_type_name(static_cast<long>(sf.f_type));
    m.tmpfs = static_cast<unsigned long>(sf.f_type) == 0x01021994ul ||
              static_cast<unsigned long>(sf.f_type) == 0x858458F6ul;
  } else {
    m.fs_type = std::string("statfs failed: ") + std::strerror(errno);
  }
  const std::time_t now = std::time(nullptr);
  std::tm tm {};
  ::gmtime_r(&now, &tm);
  char date[40];
  std::strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", &tm);
  m.date = date;
#if defined(__clang__)
  m.compiler = std::string("clang ") + __clang_version__;
#elif defined(__GNUC__)
  m.compiler = std::string("gcc ") + __VERSION__;
#else
  m.compiler = "unknown";
#endif
#if defined(__OPTIMIZE__)
  m.optimized = true;
#endif
#if defined(NDEBUG)
  m.assertions = false;
#endif
  return m;
}

std::uint64_t resident_bytes() {
  std::ifstream statm("/proc/self/statm");
  std::uint64_t size = 0, resident = 0;
  statm >> size >> resident;
  return resident * static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
}

std::uint64_t peak_resident_bytes() {
  struct rusage ru {};
  ::getrusage(RUSAGE_SELF, &ru);
  return static_cast<std::uint64_t>(ru.ru_maxrss) * 1024;  // Linux reports KiB
}

// ---- configuration --------------------------------------------------------------------

struct config {
  bool quick = false;
  std::string dir = "bench-data";
  std::string json_path, markdown_path;

  int reps = 3;
  std::vector<int> thread_counts{1, 4, 16, 32};
  double commit_seconds = 1.5;  // per commit measurement
  double floor_seconds = 1.0;   // per floor measurement
  std::size_t read_docs = 200'000;
  double read_seconds = 1.5;    // per read measurement (at least one view's worth)
  std::size_t query_docs = 1'000'000;
  int queries_per_rep = 20;
  std::size_t batch_ops = 1'000;  // documents per commit when loading
  std::size_t floor_record_bytes = 128;

  void make_quick() {
    quick = true;
    commit_seconds = 0.08;
    floor_seconds = 0.08;
    read_docs = 20'000;
    read_seconds = 0.05;
    query_docs = 20'000;
    queries_per_rep = 5;
  }
};

void usage(std::FILE* out) {
  std::fprintf(out,
               "usage: bench_policies [--quick] [--dir PATH] [--json FILE] [--markdown FILE]\n"
               "  --quick          tiny sizes: the whole run takes a few seconds\n"
               "  --dir PATH       where data directories are created (default ./bench-data);\n"
               "                   use a real disk, not tmpfs. Everything created is removed.\n"
               "  --json FILE      write every measured number as JSON\n"
               "  --markdown FILE  also write the Markdown report to FILE\n");
}

// ---- data directories -------------------------------------------------------------------

// A run directory under the chosen base; every data directory lives in it and the whole
// tree is removed at the end (as is the base itself if this run created it).
class scratch_space {
 public:
  explicit scratch_space(const std::string& base) : base_(base) {
    std::error_code ec;
    created_base_ = !fs::exists(base_, ec);
    fs::create_directories(base_, ec);
    if (ec) throw bench_failure("cannot create " + base_.string() + ": " + ec.message());
    run_ = base_ / ("run-" + std::to_string(::getpid()));
    fs::remove_all(run_, ec);
    fs::create_directories(run_, ec);
    if (ec) throw bench_failure("cannot create " + run_.string() + ": " + ec.message());
  }
  scratch_space(const scratch_space&) = delete;
  scratch_space& operator=(const scratch_space&) = delete;
  ~scratch_space() {
    std::error_code ec;
    fs::remove_all(run_, ec);
    if (created_base_ && fs::is_empty(base_, ec)) fs::remove(base_, ec);
  }

  // A fresh, not yet existing, path for one measurement.
  std::string fresh(const std::string& name) {
    const fs::path p = run_ / (name + "-" + std::to_string(counter_++));
    std::error_code ec;
    fs::remove_all(p, ec);
    return p.string();
  }
  // Removes a measurement's directory, then flushes the file system so the next
  // measurement does not pay for this one's deletion.
  void discard(const std::string& path) {
    std::error_code ec;
    fs::remove_all(path, ec);
    settle();
  }
  void settle() {
    const int fd = ::open(run_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
      (void)::syncfs(fd);
      ::close(fd);
    }
  }
  const fs::path& run_dir() const { return run_; }

 private:
  fs::path base_, run_;
  bool created_base_ = false;
  int counter_ = 0;
};

template <class Db>
std::unique_ptr<Db> open_db(const std::string& dir) {
  return need(Db::open(dir), "open " + dir);
}

// ---- 1. durable commits -----------------------------------------------------------------

constexpr const char* event_schema = R"({"id":"evt","version":1,"fields":{
  "_id":{"type":"string","required":true},
  "n":{"type":"int","required":true},
  "body":{"type":"string","required":true}}})";

struct commit_sample {
  double commits_per_s = 0, seconds = 0;
  std::uint64_t commits = 0;
  double p50_us = 0, p99_us = 0;
  double mean_group = 0, fsyncs_per_commit = 0, wal_bytes_per_commit = 0;
  std::uint64_t max_group = 0;
  std::uint64_t errors = 0;
};

template <class Db>
commit_sample measure_commits(const std::string& dir, int threads, double seconds) {
  auto db = open_db<Db>(dir);
  need(db->register_schema(event_schema), "register_schema");
  need(db->create_collection("events", "evt"), "create_collection");
  const auto before = db->metrics();

  std::atomic<bool> stop{false};
  std::latch start(threads + 1);
  std::vector<std::vector<double>> latencies(static_cast<std::size_t>(threads));
  std::vector<std::uint64_t> errors(static_cast<std::size_t>(threads), 0);
  std::vector<std::string> first_error(static_cast<std::size_t>(threads));
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      const auto ti = static_cast<std::size_t>(t);
      splitmix rng{0x5eed0000u + static_cast<std::uint64_t>(t)};
      auto& lat = latencies[ti];
      lat.reserve(1 << 14);
      std::string json;
      char head[64];
      start.arrive_and_wait();
      for (std::uint64_t seq = 0; !stop.load(std::memory_order_relaxed); ++seq) {
        // ~105 bytes: {"_id":"w07-000000123","n":123,"body":"<64 hex digits>"}
        std::snprintf(head, sizeof head, R"({"_id":"w%02d-%09llu","n":%llu,"body":")", t,
                      static_cast<unsigned long long>(seq), static_cast<unsigned long long>(seq));
        json.assign(head);
        append_hex(json, rng, 64);
        json += "\"}";
        const auto t0 = clock_type::now();
        auto r = db->insert("events", 1, json);
        const auto t1 = clock_type::now();
        if (!r) {
          if (!errors[ti]++) first_error[ti] = r.error_value().to_string();
          break;
        }
        lat.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
      }
    });
  }
  start.arrive_and_wait();
  const auto t0 = clock_type::now();
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop.store(true, std::memory_order_relaxed);
  for (auto& th : pool) th.join();
  const double elapsed = seconds_since(t0);
  const auto after = db->metrics();
  db.reset();

  commit_sample s;
  std::vector<double> all;
  for (auto& v : latencies) all.insert(all.end(), v.begin(), v.end());
  for (std::size_t i = 0; i < errors.size(); ++i) {
    s.errors += errors[i];
    if (errors[i]) std::fprintf(stderr, "  warning: a writer failed: %s\n", first_error[i].c_str());
  }
  s.commits = all.size();
  s.seconds = elapsed;
  s.commits_per_s = static_cast<double>(s.commits) / elapsed;
  s.p50_us = percentile(all, 50);
  s.p99_us = percentile(all, 99);
  const auto groups = after.group_commit_groups - before.group_commit_groups;
  const auto written = after.group_commit_size_sum - before.group_commit_size_sum;
  const auto fsyncs = after.group_commit_fsync_count - before.group_commit_fsync_count;
  s.mean_group = groups ? static_cast<double>(written) / static_cast<double>(groups) : NAN;
  s.fsyncs_per_commit = written ? static_cast<double>(fsyncs) / static_cast<double>(written) : NAN;
  s.wal_bytes_per_commit =
      written ? static_cast<double>(after.wal_bytes - before.wal_bytes) / static_cast<double>(written) : NAN;
  s.max_group = after.group_commit_size_max;
  return s;
}

struct floor_sample {
  double ops_per_s = 0, p50_us = 0, p99_us = 0;
  std::uint64_t ops = 0;
};

// The disk's floor for one durable small write: a loop of write + fdatasync, either
// appending to a new file (as the WAL does: the size changes every time) or overwriting
// a pre-zeroed, already synced file (no metadata to flush).
floor_sample measure_floor(const std::string& path, bool append, std::size_t record_bytes, double seconds) {
  const int flags = O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | (append ? O_APPEND : 0);
  const int fd = ::open(path.c_str(), flags, 0644);
  if (fd < 0) throw bench_failure("open " + path + ": " + std::strerror(errno));
  std::string record;
  splitmix rng{append ? 11u : 12u};
  append_hex(record, rng, record_bytes);
  constexpr std::size_t zeroed_bytes = 32u << 20;
  auto fail = [&](const char* what) {
    const int e = errno;
    ::close(fd);
    throw bench_failure(std::string(what) + " " + path + ": " + std::strerror(e));
  };
  if (!append) {
    const std::string zeros(1u << 20, '\0');
    for (std::size_t done = 0; done < zeroed_bytes; done += zeros.size())
      if (::write(fd, zeros.data(), zeros.size()) != static_cast<ssize_t>(zeros.size())) fail("write");
    if (::fsync(fd) != 0) fail("fsync");
  }
  std::vector<double> lat;
  lat.reserve(1 << 14);
  off_t offset = 0;
  const auto t0 = clock_type::now();
  while (seconds_since(t0) < seconds) {
    const auto a = clock_type::now();
    const ssize_t w = append ? ::write(fd, record.data(), record.size())
                             : ::pwrite(fd, record.data(), record.size(), offset);
    if (w != static_cast<ssize_t>(record.size())) fail("write");
    if (::fdatasync(fd) != 0) fail("fdatasync");
    lat.push_back(std::chrono::duration<double, std::micro>(clock_type::now() - a).count());
    offset += static_cast<off_t>(record.size());
    if (static_cast<std::size_t>(offset) + record.size() > zeroed_bytes) offset = 0;
  }
  const double elapsed = seconds_since(t0);
  ::close(fd);
  ::unlink(path.c_str());
  floor_sample s;
  s.ops = lat.size();
  s.ops_per_s = static_cast<double>(s.ops) / elapsed;
  s.p50_us = percentile(lat, 50);
  s.p99_us = percentile(lat, 99);
  return s;
}

constexpr const char* commit_engine_names[] = {"baseline", "group_commit", "accelerated"};

commit_sample measure_commits_for(int engine, const std::string& dir, int threads, double seconds) {
  switch (engine) {
    case 0: return measure_commits<baseline_db>(dir, threads, seconds);
    case 1: return measure_commits<group_db>(dir, threads, seconds);
    default: return measure_commits<accel_db>(dir, threads, seconds);
  }
}

// ---- 2. point reads -------------------------------------------------------------------

constexpr const char* record_schema = R"({"id":"rec","version":1,"fields":{
  "_id":{"type":"string","required":true},
  "n":{"type":"int","required":true},
  "rev":{"type":"int","required":true},
  "body":{"type":"string","required":true}}})";

std::string record_id(std::size_t i) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "r%07zu", i);
  return buf;
}

std::string record_json(const std::string& id, std::size_t n, int rev, splitmix& rng) {
  std::string s = R"({"_id":")" + id + R"(","n":)" + std::to_string(n) + R"(,"rev":)" +
                  std::to_string(rev) + R"(,"body":")";
  append_hex(s, rng, 64);
  s += "\"}";
  return s;
}

struct read_dataset_facts {
  double load_s = 0, update_s = 0;
  std::size_t updated_docs = 0;
  std::uint64_t versions = 0;
};

// Loads `ids` in batches, then updates a fifth of them (the same fifth for every engine)
// three times each, so those keys have chains of four versions.
template <class Db>
read_dataset_facts load_read_dataset(Db& db, const std::vector<std::string>& ids,
                                     const std::vector<std::uint32_t>& updated, std::size_t batch_ops,
                                     const char* engine) {
  need(db.register_schema(record_schema), "register_schema");
  need(db.create_collection("records", "rec"), "create_collection");
  read_dataset_facts f;
  splitmix rng{42};
  double committing = 0;
  for (std::size_t start = 0; start < ids.size(); start += batch_ops) {
    aerodb::write_batch b;
    for (std::size_t i = start; i < std::min(ids.size(), start + batch_ops); ++i)
      b.insert("records", 1, record_json(ids[i], i, 0, rng));
    const auto t0 = clock_type::now();
    need(db.commit(b), "load commit");
    committing += seconds_since(t0);
  }
  f.load_s = committing;
  committing = 0;
  for (int rev = 1; rev <= 3; ++rev) {
    std::fprintf(stderr, "[reads] %s: update round %d/3 of %zu documents\n", engine, rev, updated.size());
    for (std::size_t start = 0; start < updated.size(); start += batch_ops) {
      aerodb::write_batch b;
      for (std::size_t k = start; k < std::min(updated.size(), start + batch_ops); ++k) {
        const auto& id = ids[updated[k]];
        b.update("records", id, 1, record_json(id, updated[k], rev, rng));
      }
      const auto t0 = clock_type::now();
      need(db.commit(b), "update commit");
      committing += seconds_since(t0);
    }
  }
  f.update_s = committing;
  f.updated_docs = updated.size();
  f.versions = db.memory().versions;
  return f;
}

struct read_sample {
  double reads_per_s = 0;
  double hit_pass_reads_per_s = NAN;  // "twice" mode: the second pass alone
  std::uint64_t reads = 0, views = 0, missing = 0;
  double seconds = 0;
  double versions_visited_per_read = 0, copies_per_read = 0, cache_hit_rate = 0;
};

// once:  each view reads every key once, in a fresh random order; views follow one
//        another until the time is up (the last one may stop part way).
// twice: each view reads every key, then every key again in another random order; only
//        whole views count, at least one.
template <class Db>
read_sample measure_reads(const Db& db, const std::vector<std::string>& ids,
                          const std::vector<std::vector<std::uint32_t>>& orders, std::size_t first_order,
                          bool twice, double seconds) {
  const auto before = db.metrics();
  read_sample s;
  std::uint64_t sink = 0;
  std::size_t next_order = first_order;
  double hit_pass_seconds = 0;
  std::uint64_t hit_pass_reads = 0;
  auto read_one = [&](const auto& view, std::uint32_t k) {
    auto r = view.get("records", ids[k]);
    if (!r) throw bench_failure("get: " + r.error_value().to_string());
    if (*r) {
      const auto bytes = (*r)->doc.bytes();
      sink += bytes.size() + static_cast<std::uint64_t>(bytes[bytes.size() - 1]);
    } else {
      ++s.missing;
    }
  };
  const auto t0 = clock_type::now();
  if (!twice) {
    bool done = false;
    while (!done) {
      const auto view = db.read();
      ++s.views;
      const auto& order = orders[next_order++ % orders.size()];
      for (std::uint32_t k : order) {
        read_one(view, k);
        if ((++s.reads & 1023) == 0 && seconds_since(t0) >= seconds) {
          done = true;
          break;
        }
      }
      if (seconds_since(t0) >= seconds) done = true;
    }
  } else {
    do {
      const auto view = db.read();
      ++s.views;
      for (std::uint32_t k : orders[next_order++ % orders.size()]) read_one(view, k);
      const auto t1 = clock_type::now();
      for (std::uint32_t k : orders[next_order++ % orders.size()]) read_one(view, k);
      hit_pass_seconds += seconds_since(t1);
      hit_pass_reads += ids.size();
      s.reads += 2 * ids.size();
    } while (seconds_since(t0) < seconds);
  }
  s.seconds = seconds_since(t0);
  g_sink.fetch_add(sink, std::memory_order_relaxed);
  const auto after = db.metrics();
  s.reads_per_s = static_cast<double>(s.reads) / s.seconds;
  if (twice) s.hit_pass_reads_per_s = static_cast<double>(hit_pass_reads) / hit_pass_seconds;
  const double n = static_cast<double>(s.reads);
  s.versions_visited_per_read =
      static_cast<double>(after.read_path_versions_visited - before.read_path_versions_visited) / n;
  s.copies_per_read =
      static_cast<double>(after.read_path_materialization_copies - before.read_path_materialization_copies) / n;
  s.cache_hit_rate = static_cast<double>(after.read_path_cache_hits - before.read_path_cache_hits) / n;
  return s;
}

// ---- 3. queries -------------------------------------------------------------------------

constexpr const char* item_schema = R"({"id":"item","version":1,"fields":{
  "_id":{"type":"string","required":true},
  "bucket":{"type":"int","required":true},
  "score":{"type":"float","required":true},
  "name":{"type":"string","required":true}}})";

struct query_kind {
  const char* key;    // short name (JSON)
  const char* label;  // Markdown
  bool range;         // score range, else bucket equality
  int limit;
  const char* sort;   // nullptr: default order (_id)
};

constexpr query_kind query_kinds[] = {
    {"eq_limit10000", "bucket == k, limit 10000", false, 10000, nullptr},
    {"range_limit10000", "x <= score < x+10, limit 10000", true, 10000, nullptr},
    {"eq_limit100_sort_id", "bucket == k, sort _id, limit 100", false, 100, "_id"},
    {"range_limit100_sort_score", "x <= score < x+10, sort score, limit 100", true, 100, "score"},
};
constexpr std::size_t query_kind_count = std::size(query_kinds);

struct query_params {
  std::int64_t bucket = 0;
  double low = 0;
};

aerodb::query::query_spec make_query(const query_kind& k, const query_params& p) {
  using aerodb::query::op;
  aerodb::query_builder q("items");
  q.version(1);
  if (k.range)
    q.where("score", op::gte, p.low).where("score", op::lt, p.low + 10.0);
  else
    q.where("bucket", op::eq, p.bucket);
  if (k.sort) q.sort_by(k.sort);
  q.limit(k.limit);
  return std::move(q).spec();
}

struct load_facts {
  double commit_s = 0, wall_s = 0;
  std::uint64_t rss_before = 0, rss_after = 0;
};

// Generates the same documents for every engine (same seed): bucket uniform in 0..99,
// score uniform in [0, 1000).
template <class Db>
load_facts load_items(Db& db, std::size_t n, std::size_t batch_ops, const char* engine) {
  load_facts f;
  f.rss_before = resident_bytes();
  const auto wall0 = clock_type::now();
  need(db.register_schema(item_schema), "register_schema");
  need(db.create_collection("items", "item"), "create_collection");
  need(db.create_index("items", "bucket"), "create_index bucket");
  need(db.create_index("items", "score"), "create_index score");
  std::mt19937_64 rng(2024);
  std::uniform_int_distribution<int> bucket(0, 99);
  std::uniform_real_distribution<double> score(0.0, 1000.0);
  splitmix names{7};
  const std::size_t report_every = std::max<std::size_t>(n / 4, 1);
  for (std::size_t start = 0; start < n; start += batch_ops) {
    aerodb::write_batch b;
    for (std::size_t i = start; i < std::min(n, start + batch_ops); ++i) {
      char head[96];
      std::snprintf(head, sizeof head, R"({"_id":"d%07zu","bucket":%d,"score":%.6f,"name":"item-)", i,
                    bucket(rng), score(rng));
      std::string json(head);
      append_hex(json, names, 12);
      json += "\"}";
      b.insert("items", 1, std::move(json));
    }
    const auto t0 = clock_type::now();
    need(db.commit(b), "load commit");
    f.commit_s += seconds_since(t0);
    const std::size_t done = std::min(n, start + batch_ops);
    if (done % report_every < batch_ops || done == n)
      std::fprintf(stderr, "[queries] %s: loaded %zu/%zu documents\n", engine, done, n);
  }
  f.wall_s = seconds_since(wall0);
  f.rss_after = resident_bytes();
  return f;
}

struct query_observation {
  double ms = 0;
  std::size_t results = 0;
  std::uint64_t candidates = 0;
  std::uint64_t fingerprint = 0;
};

template <class Db>
query_observation run_query(const Db& db, const aerodb::query::query_spec& spec) {
  const auto view = db.read();
  const auto t0 = clock_type::now();
  auto r = view.query(spec);
  const double ms = std::chrono::duration<double, std::milli>(clock_type::now() - t0).count();
  if (!r) throw bench_failure("query: " + r.error_value().to_string());
  query_observation o;
  o.ms = ms;
  o.results = r->documents.size();
  o.candidates = r->candidates;
  // Order-sensitive fingerprint of the answer, to compare the engines' answers.
  std::uint64_t h = 1469598103934665603ull;
  for (const auto& d : r->documents) {
    for (char c : d.doc.id()) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ull;
    h = (h ^ 0xff) * 1099511628211ull;
  }
  o.fingerprint = h ^ o.results;
  return o;
}

// ---- reporting ------------------------------------------------------------------------

// Pretty-prints a JSON value with two-space indentation.
void pretty(std::string& out, const json::value& v, int indent) {
  const std::string pad(static_cast<std::size_t>(indent) * 2, ' ');
  const std::string inner(static_cast<std::size_t>(indent + 1) * 2, ' ');
  if (v.is_object()) {
    const auto& o = v.get_object();
    if (o.empty()) { out += "{}"; return; }
    out += "{\n";
    bool first = true;
    for (const auto& kv : o) {
      if (!first) out += ",\n";
      first = false;
      out += inner + json::serialize(json::value(kv.key())) + ": ";
      pretty(out, kv.value(), indent + 1);
    }
    out += "\n" + pad + "}";
  } else if (v.is_array()) {
    const auto& a = v.get_array();
    const bool flat = std::all_of(a.begin(), a.end(), [](const json::value& x) { return !x.is_structured(); });
    if (flat) { out += json::serialize(v); return; }
    out += "[\n";
    for (std::size_t i = 0; i < a.size(); ++i) {
      if (i) out += ",\n";
      out += inner;
      pretty(out, a[i], indent + 1);
    }
    out += "\n" + pad + "]";
  } else if (v.is_double() && !std::isfinite(v.get_double())) {
    out += "null";
  } else {
    out += json::serialize(v);
  }
}

// JSON has no NaN: unknown values become null.
json::value num(double v) { return std::isfinite(v) ? json::value(v) : json::value(nullptr); }

void write_file(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << text;
  if (!f) throw bench_failure("cannot write " + path);
}

// ---- the run ----------------------------------------------------------------------------

int run(const config& cfg) {
  const auto run_started = clock_type::now();
  scratch_space scratch(cfg.dir);  // creates the directory, so that statfs can look at it
  std::error_code ec;
  const std::string abs_dir = fs::absolute(cfg.dir, ec).string();
  const machine_facts m = probe_machine(cfg.dir);
  std::fprintf(stderr, "[setup] data directory %s on %s; %u CPUs (%s); %s%s\n", abs_dir.c_str(),
               m.fs_type.c_str(), m.nproc, m.cpu_model.c_str(), cfg.quick ? "quick mode" : "full mode",
               m.optimized && !m.assertions ? "" : "; WARNING: not an optimized NDEBUG build");
  if (m.tmpfs)
    std::fprintf(stderr,
                 "[setup] WARNING: %s is on tmpfs/ramfs: fdatasync costs nothing there, so the commit "
                 "numbers say nothing about a disk. Use --dir on a real disk.\n",
                 abs_dir.c_str());

  json::object out;
  json::object machine{{"nproc", m.nproc},
                       {"cpu_model", m.cpu_model},
                       {"kernel", m.kernel},
                       {"fs_type", m.fs_type},
                       {"data_dir", abs_dir},
                       {"tmpfs_warning", m.tmpfs},
                       {"date_utc", m.date},
                       {"compiler", m.compiler},
                       {"optimized_build", m.optimized},
                       {"assertions_enabled", m.assertions}};
  out["machine"] = machine;
  json::object jcfg{{"quick", cfg.quick},
                    {"reps", cfg.reps},
                    {"commit_seconds", cfg.commit_seconds},
                    {"floor_seconds", cfg.floor_seconds},
                    {"floor_record_bytes", cfg.floor_record_bytes},
                    {"read_docs", cfg.read_docs},
                    {"read_seconds", cfg.read_seconds},
                    {"query_docs", cfg.query_docs},
                    {"queries_per_rep", cfg.queries_per_rep},
                    {"load_batch_ops", cfg.batch_ops}};
  jcfg["thread_counts"] = json::array(cfg.thread_counts.begin(), cfg.thread_counts.end());
  out["config"] = jcfg;

  std::string md;
  md += "# AeroDB policy benchmark" + std::string(cfg.quick ? " (--quick: tiny sizes, numbers are noise)" : "") + "\n\n";
  md += "- date (UTC): " + m.date + "\n";
  md += "- machine: " + std::to_string(m.nproc) + " CPUs, " + m.cpu_model + ", " + m.kernel + "\n";
  md += "- data directory: " + abs_dir + " (" + m.fs_type + ")" + (m.tmpfs ? " **tmpfs: commit numbers meaningless**" : "") + "\n";
  md += "- build: " + m.compiler + (m.optimized ? ", optimized" : ", NOT optimized") +
        (m.assertions ? ", assertions ON" : ", NDEBUG") + "\n";
  md += "- method: all engines in one process, same directory; " + std::to_string(cfg.reps) +
        " interleaved repetitions per cell, medians reported; ratios are the numbers to read.\n\n";

  // ---- 1. commits ----
  const std::size_t nt = cfg.thread_counts.size();
  // samples[engine][thread index] over reps
  std::vector<std::vector<std::vector<commit_sample>>> cs(3, std::vector<std::vector<commit_sample>>(nt));
  std::vector<floor_sample> floor_append, floor_overwrite;
  for (int rep = 0; rep < cfg.reps; ++rep) {
    std::fprintf(stderr, "[commits] floor write+fdatasync (append), rep %d/%d ...\n", rep + 1, cfg.reps);
    floor_append.push_back(measure_floor((scratch.run_dir() / "floor-append").string(), true,
                                         cfg.floor_record_bytes, cfg.floor_seconds));
    scratch.settle();
    std::fprintf(stderr, "[commits] floor pwrite+fdatasync (overwrite), rep %d/%d ...\n", rep + 1, cfg.reps);
    floor_overwrite.push_back(measure_floor((scratch.run_dir() / "floor-overwrite").string(), false,
                                            cfg.floor_record_bytes, cfg.floor_seconds));
    scratch.settle();
    for (std::size_t ti = 0; ti < nt; ++ti) {
      const int threads = cfg.thread_counts[ti];
      for (int k = 0; k < 3; ++k) {
        const int e = (k + rep) % 3;  // rotate which engine goes first in each repetition
        std::fprintf(stderr, "[commits] %s %d thread%s, rep %d/%d ...\n", commit_engine_names[e], threads,
                     threads == 1 ? "" : "s", rep + 1, cfg.reps);
        const std::string dir = scratch.fresh(std::string("commits-") + commit_engine_names[e]);
        cs[static_cast<std::size_t>(e)][ti].push_back(measure_commits_for(e, dir, threads, cfg.commit_seconds));
        scratch.discard(dir);
      }
    }
  }
  auto med = [](const auto& samples, auto field) {
    std::vector<double> v;
    for (const auto& s : samples) v.push_back(static_cast<double>(s.*field));
    return median(v);
  };
  auto all_of_field = [](const auto& samples, auto field) {
    std::vector<double> v;
    for (const auto& s : samples) v.push_back(static_cast<double>(s.*field));
    return v;
  };
  // Ratios of measurements taken in the same repetition (one after the other).
  auto paired = [](const std::vector<commit_sample>& num_s, const std::vector<commit_sample>& den_s) {
    std::vector<double> v;
    for (std::size_t r = 0; r < std::min(num_s.size(), den_s.size()); ++r)
      v.push_back(ratio(num_s[r].commits_per_s, den_s[r].commits_per_s));
    return v;
  };
  auto paired_text = [&](const std::vector<commit_sample>& num_s, const std::vector<commit_sample>& den_s) {
    std::string t;
    for (double x : paired(num_s, den_s)) t += (t.empty() ? "" : ", ") + fmt(x, 1);
    return t;
  };
  const double floor_app = med(floor_append, &floor_sample::ops_per_s);
  const double floor_ovw = med(floor_overwrite, &floor_sample::ops_per_s);
  {
    json::object jc;
    json::object jf;
    jf["append_ops_per_s"] = to_json_array(all_of_field(floor_append, &floor_sample::ops_per_s));
    jf["append_median_ops_per_s"] = num(floor_app);
    jf["append_p50_us"] = to_json_array(all_of_field(floor_append, &floor_sample::p50_us));
    jf["append_p99_us"] = to_json_array(all_of_field(floor_append, &floor_sample::p99_us));
    jf["overwrite_ops_per_s"] = to_json_array(all_of_field(floor_overwrite, &floor_sample::ops_per_s));
    jf["overwrite_median_ops_per_s"] = num(floor_ovw);
    jf["overwrite_p50_us"] = to_json_array(all_of_field(floor_overwrite, &floor_sample::p50_us));
    jf["overwrite_p99_us"] = to_json_array(all_of_field(floor_overwrite, &floor_sample::p99_us));
    jc["floor"] = jf;

    md += "## 1. Durable commits, one ~105-byte document per commit\n\n";
    md += "Floor (single thread, " + std::to_string(cfg.floor_record_bytes) + "-byte records): append write+fdatasync " +
          fmt_count(floor_app) + " ops/s (p50 " + fmt(med(floor_append, &floor_sample::p50_us), 0) +
          " us), overwrite pwrite+fdatasync " + fmt_count(floor_ovw) + " ops/s (p50 " +
          fmt(med(floor_overwrite, &floor_sample::p50_us), 0) + " us). Per repetition, append: ";
    for (std::size_t r = 0; r < floor_append.size(); ++r)
      md += (r ? ", " : "") + fmt_count(floor_append[r].ops_per_s) + " ops/s (p50 " + fmt(floor_append[r].p50_us, 0) + " us)";
    md += "; overwrite: ";
    for (std::size_t r = 0; r < floor_overwrite.size(); ++r)
      md += (r ? ", " : "") + fmt_count(floor_overwrite[r].ops_per_s) + " ops/s (p50 " + fmt(floor_overwrite[r].p50_us, 0) + " us)";
    md += ".\n\nThe ratio columns divide medians; the \"per rep\" column divides the two engines' "
          "measurements of the same repetition, which ran back to back.\n\n";
    md += "| threads | baseline commits/s | group_commit commits/s | accelerated commits/s | group/baseline | "
          "accelerated/baseline | group/baseline per rep | group/floor(append) |\n|---:|---:|---:|---:|---:|---:|---:|---:|\n";
    json::array rows;
    for (std::size_t ti = 0; ti < nt; ++ti) {
      const double b = med(cs[0][ti], &commit_sample::commits_per_s);
      const double g = med(cs[1][ti], &commit_sample::commits_per_s);
      const double a = med(cs[2][ti], &commit_sample::commits_per_s);
      md += "| " + std::to_string(cfg.thread_counts[ti]) + " | " + fmt_count(b) + " | " + fmt_count(g) + " | " +
            fmt_count(a) + " | " + fmt_ratio(ratio(g, b)) + " | " + fmt_ratio(ratio(a, b)) + " | " +
            paired_text(cs[1][ti], cs[0][ti]) + " | " + fmt_ratio(ratio(g, floor_app)) + " |\n";
      json::object row;
      row["threads"] = cfg.thread_counts[ti];
      for (int e = 0; e < 3; ++e) {
        const auto& v = cs[static_cast<std::size_t>(e)][ti];
        json::object je;
        je["commits_per_s"] = to_json_array(all_of_field(v, &commit_sample::commits_per_s));
        je["median_commits_per_s"] = num(med(v, &commit_sample::commits_per_s));
        je["commits"] = to_json_array(all_of_field(v, &commit_sample::commits));
        je["seconds"] = to_json_array(all_of_field(v, &commit_sample::seconds));
        je["p50_latency_us"] = to_json_array(all_of_field(v, &commit_sample::p50_us));
        je["p99_latency_us"] = to_json_array(all_of_field(v, &commit_sample::p99_us));
        je["mean_group_size"] = to_json_array(all_of_field(v, &commit_sample::mean_group));
        je["max_group_size"] = to_json_array(all_of_field(v, &commit_sample::max_group));
        je["fsyncs_per_commit"] = to_json_array(all_of_field(v, &commit_sample::fsyncs_per_commit));
        je["wal_bytes_per_commit"] = to_json_array(all_of_field(v, &commit_sample::wal_bytes_per_commit));
        je["errors"] = to_json_array(all_of_field(v, &commit_sample::errors));
        row[commit_engine_names[e]] = je;
      }
      row["ratio_group_to_baseline"] = num(ratio(g, b));
      row["ratio_group_to_baseline_per_rep"] = to_json_array(paired(cs[1][ti], cs[0][ti]));
      row["ratio_accelerated_to_baseline_per_rep"] = to_json_array(paired(cs[2][ti], cs[0][ti]));
      row["ratio_accelerated_to_baseline"] = num(ratio(a, b));
      row["ratio_group_to_floor_append"] = num(ratio(g, floor_app));
      row["ratio_baseline_to_floor_append"] = num(ratio(b, floor_app));
      rows.push_back(row);
    }
    jc["by_threads"] = rows;
    out["commits"] = jc;

    md += "\n| threads | engine | p50 latency ms | p99 latency ms | mean group size | max group | fsyncs/commit | WAL bytes/commit |\n"
          "|---:|---|---:|---:|---:|---:|---:|---:|\n";
    for (std::size_t ti = 0; ti < nt; ++ti)
      for (int e = 0; e < 3; ++e) {
        const auto& v = cs[static_cast<std::size_t>(e)][ti];
        md += "| " + std::to_string(cfg.thread_counts[ti]) + " | " + commit_engine_names[e] + " | " +
              fmt(med(v, &commit_sample::p50_us) / 1000, 2) + " | " + fmt(med(v, &commit_sample::p99_us) / 1000, 2) +
              " | " + fmt(med(v, &commit_sample::mean_group), 2) + " | " + fmt(med(v, &commit_sample::max_group), 0) +
              " | " + fmt(med(v, &commit_sample::fsyncs_per_commit), 3) + " | " +
              fmt(med(v, &commit_sample::wal_bytes_per_commit), 0) + " |\n";
      }
    md += "\n";
  }

  // ---- 2. point reads ----
  {
    const std::size_t n = cfg.read_docs;
    std::vector<std::string> ids(n);
    for (std::size_t i = 0; i < n; ++i) ids[i] = record_id(i);
    std::vector<std::uint32_t> all(n);
    std::iota(all.begin(), all.end(), 0u);
    std::mt19937_64 rng(99);
    std::vector<std::uint32_t> updated = all;
    std::shuffle(updated.begin(), updated.end(), rng);
    updated.resize(n / 5);
    std::sort(updated.begin(), updated.end());
    // Random visiting orders, shared by both engines (shuffling is not timed).
    std::vector<std::vector<std::uint32_t>> orders(6, all);
    for (auto& o : orders) std::shuffle(o.begin(), o.end(), rng);

    const std::string dir_b = scratch.fresh("reads-baseline"), dir_a = scratch.fresh("reads-accelerated");
    auto db_b = open_db<baseline_db>(dir_b);
    auto db_a = open_db<accel_db>(dir_a);
    std::fprintf(stderr, "[reads] baseline: loading %zu documents ...\n", n);
    const auto load_b = load_read_dataset(*db_b, ids, updated, cfg.batch_ops, "baseline");
    std::fprintf(stderr, "[reads] accelerated: loading %zu documents ...\n", n);
    const auto load_a = load_read_dataset(*db_a, ids, updated, cfg.batch_ops, "accelerated");

    // samples[mode][engine]
    std::vector<read_sample> rs[2][2];
    const char* mode_names[] = {"once", "twice"};
    const char* engine_names[] = {"baseline", "accelerated"};
    for (int rep = 0; rep < cfg.reps; ++rep)
      for (int mode = 0; mode < 2; ++mode)
        for (int k = 0; k < 2; ++k) {
          const int e = (k + rep) % 2;
          std::fprintf(stderr, "[reads] %s, each key %s per view, rep %d/%d ...\n", engine_names[e],
                       mode_names[mode], rep + 1, cfg.reps);
          const std::size_t first_order = static_cast<std::size_t>(rep) * 2;
          rs[mode][e].push_back(e == 0 ? measure_reads(*db_b, ids, orders, first_order, mode == 1, cfg.read_seconds)
                                       : measure_reads(*db_a, ids, orders, first_order, mode == 1, cfg.read_seconds));
        }
    db_b.reset();
    db_a.reset();
    scratch.discard(dir_b);
    scratch.discard(dir_a);
    ::malloc_trim(0);  // hand freed memory back, so the next section's RSS growth means something

    md += "## 2. Point reads of random existing _ids under a read view (1 thread)\n\n";
    md += std::to_string(n) + " documents (~110 bytes), a fifth of them updated 3 times (chains of 4 versions). "
          "Load: baseline " + fmt(load_b.load_s, 2) + " s + updates " + fmt(load_b.update_s, 2) +
          " s; accelerated " + fmt(load_a.load_s, 2) + " s + updates " + fmt(load_a.update_s, 2) + " s.\n\n";
    md += "| reads | baseline reads/s | accelerated reads/s | accelerated/baseline | versions visited/read (b / a) | "
          "copies/read (b / a) | cache hits/read (a) |\n|---|---:|---:|---:|---:|---:|---:|\n";
    json::object jr;
    jr["documents"] = n;
    jr["updated_documents"] = load_b.updated_docs;
    for (int e = 0; e < 2; ++e) {
      const auto& f = e == 0 ? load_b : load_a;
      jr[std::string("load_") + engine_names[e]] = json::object{{"load_commit_seconds", f.load_s},
                                                                {"update_commit_seconds", f.update_s},
                                                                {"versions", f.versions}};
    }
    const char* mode_labels[] = {"each key once per view", "each key twice per view (both passes)"};
    for (int mode = 0; mode < 2; ++mode) {
      const double b = med(rs[mode][0], &read_sample::reads_per_s);
      const double a = med(rs[mode][1], &read_sample::reads_per_s);
      md += std::string("| ") + mode_labels[mode] + " | " + fmt_count(b) + " | " + fmt_count(a) + " | " +
            fmt_ratio(ratio(a, b)) + " | " + fmt(med(rs[mode][0], &read_sample::versions_visited_per_read), 2) +
            " / " + fmt(med(rs[mode][1], &read_sample::versions_visited_per_read), 2) + " | " +
            fmt(med(rs[mode][0], &read_sample::copies_per_read), 2) + " / " +
            fmt(med(rs[mode][1], &read_sample::copies_per_read), 2) + " | " +
            fmt(med(rs[mode][1], &read_sample::cache_hit_rate), 2) + " |\n";
      json::object jm;
      for (int e = 0; e < 2; ++e) {
        const auto& v = rs[mode][e];
        json::object je;
        je["reads_per_s"] = to_json_array(all_of_field(v, &read_sample::reads_per_s));
        je["median_reads_per_s"] = num(med(v, &read_sample::reads_per_s));
        if (mode == 1) {
          je["hit_pass_reads_per_s"] = to_json_array(all_of_field(v, &read_sample::hit_pass_reads_per_s));
          je["median_hit_pass_reads_per_s"] = num(med(v, &read_sample::hit_pass_reads_per_s));
        }
        je["reads"] = to_json_array(all_of_field(v, &read_sample::reads));
        je["views"] = to_json_array(all_of_field(v, &read_sample::views));
        je["seconds"] = to_json_array(all_of_field(v, &read_sample::seconds));
        je["missing"] = to_json_array(all_of_field(v, &read_sample::missing));
        je["versions_visited_per_read"] = to_json_array(all_of_field(v, &read_sample::versions_visited_per_read));
        je["copies_per_read"] = to_json_array(all_of_field(v, &read_sample::copies_per_read));
        je["cache_hits_per_read"] = to_json_array(all_of_field(v, &read_sample::cache_hit_rate));
        jm[engine_names[e]] = je;
      }
      jm["ratio_accelerated_to_baseline"] = num(ratio(a, b));
      {
        json::array per_rep;
        for (std::size_t r = 0; r < std::min(rs[mode][0].size(), rs[mode][1].size()); ++r)
          per_rep.emplace_back(ratio(rs[mode][1][r].reads_per_s, rs[mode][0][r].reads_per_s));
        jm["ratio_accelerated_to_baseline_per_rep"] = per_rep;
      }
      jr[mode_names[mode]] = jm;
    }
    {
      const double b = med(rs[1][0], &read_sample::hit_pass_reads_per_s);
      const double a = med(rs[1][1], &read_sample::hit_pass_reads_per_s);
      md += "| second pass only (accelerated: cache hits) | " + fmt_count(b) + " | " + fmt_count(a) + " | " +
            fmt_ratio(ratio(a, b)) + " | | | |\n";
      jr["twice"].as_object()["ratio_hit_pass_accelerated_to_baseline"] = num(ratio(a, b));
    }
    std::uint64_t missing = 0;
    for (auto& mode : rs)
      for (auto& v : mode)
        for (auto& s : v) missing += s.missing;
    if (missing) md += "\n**" + std::to_string(missing) + " reads found no document (expected none).**\n";
    md += "\n";
    out["reads"] = jr;
  }

  // ---- 3. queries ----
  {
    const std::size_t n = cfg.query_docs;
    const std::string dir_b = scratch.fresh("queries-baseline"), dir_a = scratch.fresh("queries-accelerated");
    auto db_b = open_db<baseline_db>(dir_b);
    auto db_a = open_db<accel_db>(dir_a);
    std::fprintf(stderr, "[queries] baseline: loading %zu documents ...\n", n);
    const auto load_b = load_items(*db_b, n, cfg.batch_ops, "baseline");
    std::fprintf(stderr, "[queries] accelerated: loading %zu documents ...\n", n);
    const auto load_a = load_items(*db_a, n, cfg.batch_ops, "accelerated");

    // obs[kind][engine] over reps x queries
    std::vector<query_observation> obs[query_kind_count][2];
    std::uint64_t mismatches = 0;
    std::mt19937_64 rng(31337);
    std::uniform_int_distribution<std::int64_t> bucket(0, 99);
    std::uniform_real_distribution<double> low(0.0, 990.0);
    const char* engine_names[] = {"baseline", "accelerated"};
    for (int rep = 0; rep < cfg.reps; ++rep)
      for (std::size_t qk = 0; qk < query_kind_count; ++qk) {
        std::vector<query_params> params(static_cast<std::size_t>(cfg.queries_per_rep));
        for (auto& p : params) {
          p.bucket = bucket(rng);
          p.low = std::round(low(rng) * 1000.0) / 1000.0;
        }
        std::vector<std::uint64_t> prints;
        for (int k = 0; k < 2; ++k) {
          const int e = (k + rep) % 2;
          std::fprintf(stderr, "[queries] %s %s, rep %d/%d ...\n", engine_names[e], query_kinds[qk].key, rep + 1,
                       cfg.reps);
          for (std::size_t i = 0; i < params.size(); ++i) {
            const auto spec = make_query(query_kinds[qk], params[i]);
            const auto o = e == 0 ? run_query(*db_b, spec) : run_query(*db_a, spec);
            obs[qk][e].push_back(o);
            if (k == 0)
              prints.push_back(o.fingerprint);
            else if (prints[i] != o.fingerprint)
              ++mismatches;
          }
        }
      }
    const auto mb = db_b->metrics(), ma = db_a->metrics();
    db_b.reset();
    db_a.reset();
    scratch.discard(dir_b);
    scratch.discard(dir_a);

    md += "## 3. Queries at 1% selectivity over " + fmt_count(static_cast<double>(n)) + " documents\n\n";
    md += "Indexes on `bucket` (int 0..99) and `score` (float in [0, 1000)); " + std::to_string(cfg.queries_per_rep) +
          " random queries per repetition, the same ones for both engines; latency of `view.query()` alone.\n\n";
    md += "| load, 1000 documents per commit | seconds in commit() | documents/s | RSS growth (approx., baseline loaded first) |\n|---|---:|---:|---:|\n";
    for (int e = 0; e < 2; ++e) {
      const auto& f = e == 0 ? load_b : load_a;
      md += std::string("| ") + engine_names[e] + " | " + fmt(f.commit_s, 2) + " | " +
            fmt_count(static_cast<double>(n) / f.commit_s) + " | " +
            fmt(static_cast<double>(f.rss_after) / 1048576.0 - static_cast<double>(f.rss_before) / 1048576.0, 0) +
            " MiB |\n";
    }
    md += "\n| query | results (median) | candidates (b / a) | baseline median ms | baseline p99 ms | "
          "accelerated median ms | accelerated p99 ms | speedup (ratio of medians) | speedup (median of per-query ratios) |\n"
          "|---|---:|---:|---:|---:|---:|---:|---:|---:|\n";
    json::object jq;
    jq["documents"] = n;
    for (int e = 0; e < 2; ++e) {
      const auto& f = e == 0 ? load_b : load_a;
      jq[std::string("load_") + engine_names[e]] =
          json::object{{"commit_seconds", f.commit_s},
                       {"wall_seconds", f.wall_s},
                       {"documents_per_s", static_cast<double>(n) / f.commit_s},
                       {"rss_before_bytes", f.rss_before},
                       {"rss_after_bytes", f.rss_after}};
    }
    for (std::size_t qk = 0; qk < query_kind_count; ++qk) {
      std::vector<double> ms[2], results, cand[2];
      for (int e = 0; e < 2; ++e)
        for (const auto& o : obs[qk][e]) {
          ms[e].push_back(o.ms);
          cand[e].push_back(static_cast<double>(o.candidates));
          if (e == 0) results.push_back(static_cast<double>(o.results));
        }
      const double b = median(ms[0]), a = median(ms[1]);
      // The same query ran on both engines: the ratio per query, then its median.
      std::vector<double> per_query;
      for (std::size_t i = 0; i < std::min(ms[0].size(), ms[1].size()); ++i) per_query.push_back(ratio(ms[0][i], ms[1][i]));
      md += std::string("| ") + query_kinds[qk].label + " | " + fmt_count(median(results)) + " | " +
            fmt_count(median(cand[0])) + " / " + fmt_count(median(cand[1])) + " | " + fmt(b, 2) + " | " +
            fmt(percentile(ms[0], 99), 2) + " | " + fmt(a, 2) + " | " + fmt(percentile(ms[1], 99), 2) + " | " +
            fmt_ratio(ratio(b, a)) + " | " + fmt_ratio(median(per_query)) + " |\n";
      json::object jk;
      jk["label"] = query_kinds[qk].label;
      jk["limit"] = query_kinds[qk].limit;
      jk["results"] = to_json_array(results);
      for (int e = 0; e < 2; ++e)
        jk[engine_names[e]] = json::object{{"latency_ms", to_json_array(ms[e])},
                                           {"median_ms", num(median(ms[e]))},
                                           {"p99_ms", num(percentile(ms[e], 99))},
                                           {"candidates", to_json_array(cand[e])}};
      jk["speedup_median"] = num(ratio(b, a));
      jk["speedup_per_query_median"] = num(median(per_query));
      jq[query_kinds[qk].key] = jk;
    }
    jq["answer_mismatches"] = mismatches;
    auto index_counters = [](const aerodb::metrics_snapshot& s) {
      return json::object{{"index_lookup_count", s.index_lookup_count},
                          {"index_candidate_count", s.index_candidate_count},
                          {"index_filter_false_positives", s.index_filter_false_positives},
                          {"read_path_materialization_copies", s.read_path_materialization_copies},
                          {"read_path_versions_visited", s.read_path_versions_visited}};
    };
    jq["metrics_baseline"] = index_counters(mb);
    jq["metrics_accelerated"] = index_counters(ma);
    md += "\nAnswers compared query by query: " +
          (mismatches ? "**" + std::to_string(mismatches) + " differ between the engines**" : std::string("identical")) +
          ".\n\n";
    out["queries"] = jq;
  }

  const double total = seconds_since(run_started);
  const std::uint64_t peak = peak_resident_bytes();
  out["total_seconds"] = total;
  out["peak_rss_bytes"] = peak;
  out["sink"] = g_sink.load();
  md += "Total run time " + fmt(total, 1) + " s; peak RSS " + fmt(static_cast<double>(peak) / 1048576.0, 0) + " MiB.\n";

  std::fputs(md.c_str(), stdout);
  std::fflush(stdout);
  if (!cfg.markdown_path.empty()) write_file(cfg.markdown_path, md);
  if (!cfg.json_path.empty()) {
    std::string text;
    pretty(text, json::value(std::move(out)), 0);
    text += '\n';
    write_file(cfg.json_path, text);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  config cfg;
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "bench_policies: %s needs a value\n", argv[i]);
        usage(stderr);
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--quick") cfg.make_quick();
    else if (a == "--dir") cfg.dir = value();
    else if (a == "--json") cfg.json_path = value();
    else if (a == "--markdown") cfg.markdown_path = value();
    else if (a == "--help" || a == "-h") {
      usage(stdout);
      return 0;
    } else {
      std::fprintf(stderr, "bench_policies: unknown argument '%s'\n", argv[i]);
      usage(stderr);
      return 2;
    }
  }
  try {
    return run(cfg);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_policies: %s\n", e.what());
    return 1;
  }
}
