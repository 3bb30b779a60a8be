// Small utilities shared by the suite and its adapters: errors, statistics, the document
// generator, process memory, file-system facts.
//
// Thread safety: the free functions are reentrant; `splitmix` and `zipf` are per-thread.
#pragma once

#include "engine.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace bench {

using clock_type = std::chrono::steady_clock;

struct failure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

inline double seconds_since(clock_type::time_point t0) {
  return std::chrono::duration<double>(clock_type::now() - t0).count();
}

inline void make_dir(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw failure("cannot create " + dir + ": " + ec.message());
}

// The KV peers do not record their index layout; the suite leaves a marker instead.
inline void write_indexed_hint(const std::string& dir) { std::ofstream(dir + "/bench-indexed") << "1\n"; }
inline bool indexed_hint(const std::string& dir) { return std::filesystem::exists(dir + "/bench-indexed"); }

// Median (mean of the middle two for an even count); NaN when empty.
inline double median(std::vector<double> v) {
  if (v.empty()) return NAN;
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// Nearest-rank percentile, p in (0, 100].
inline double percentile(std::vector<double> v, double p) {
  if (v.empty()) return NAN;
  std::sort(v.begin(), v.end());
  const auto rank = static_cast<std::size_t>(std::ceil(p / 100.0 * static_cast<double>(v.size())));
  return v[std::clamp<std::size_t>(rank, 1, v.size()) - 1];
}

// splitmix64: cheap deterministic pseudo-random numbers.
struct splitmix {
  std::uint64_t s;
  std::uint64_t next() {
    std::uint64_t z = (s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
};

inline std::uint64_t mix(std::uint64_t x) { return splitmix{x}.next(); }

// The dataset's i-th `_id`: exactly 16 bytes, in insertion order.
inline std::string dataset_id(std::size_t i) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "d%015zu", i);
  return buf;
}

// A writer's `_id` (W1/W2/W5): thread number and sequence, 16 bytes.
inline std::string writer_id(int thread, std::uint64_t seq) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "w%02d%013llu", thread % 100, static_cast<unsigned long long>(seq % 10000000000000ull));
  return buf;
}

// Fills `d` with the document for `id`, variant `seed`: exactly 256 bytes of JSON,
// {"_id":..,"bucket":0..99,"score":[0,1000) in steps of 0.001,"body":<random base64>}.
// The body is drawn from 64 symbols (6 bits of entropy per byte), so neither the WAL
// nor a peer can compress it much. bucket and score derive from the id's hash alone, so
// every engine holds the same values.
inline void make_document(document& d, std::string id, std::uint64_t seed) {
  static constexpr char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::uint64_t h = 1469598103934665603ull;
  for (char c : id) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ull;
  d.bucket = static_cast<std::int64_t>(mix(h) % 100);
  d.score = static_cast<double>(mix(h ^ 0x5c0e) % 1000000) / 1000.0;
  char head[128];
  const int n = std::snprintf(head, sizeof head, R"({"_id":"%s","bucket":%lld,"score":%.3f,"body":")", id.c_str(),
                              static_cast<long long>(d.bucket), d.score);
  d.json.assign(head, static_cast<std::size_t>(n));
  splitmix rng{h ^ (seed * 0x9E3779B97F4A7C15ull)};
  std::uint64_t r = 0;
  int left = 0;
  while (d.json.size() < document_bytes - 2) {
    if (!left) { r = rng.next(); left = 10; }
    d.json += alphabet[r & 63];
    r >>= 6;
    --left;
  }
  d.json += "\"}";
  d.id = std::move(id);
}

// Zipfian ranks in [0, n) with exponent theta (Gray et al., as in YCSB), rank 0 hottest.
class zipf {
 public:
  zipf(std::size_t n, double theta, std::uint64_t seed) : n_(static_cast<double>(n)), theta_(theta), rng_{seed} {
    double zeta_n = 0;
    for (std::size_t i = 1; i <= n; ++i) zeta_n += 1.0 / std::pow(static_cast<double>(i), theta);
    zeta_n_ = zeta_n;
    const double zeta_2 = 1.0 + 1.0 / std::pow(2.0, theta);
    alpha_ = 1.0 / (1.0 - theta);
    eta_ = (1.0 - std::pow(2.0 / n_, 1.0 - theta)) / (1.0 - zeta_2 / zeta_n_);
  }
  std::size_t next() {
    const double u = static_cast<double>(rng_.next() >> 11) * 0x1.0p-53;
    const double uz = u * zeta_n_;
    if (uz < 1.0) return 0;
    if (uz < 1.0 + std::pow(0.5, theta_)) return 1;
    const auto r = static_cast<std::size_t>(n_ * std::pow(eta_ * u - eta_ + 1.0, alpha_));
    return std::min(r, static_cast<std::size_t>(n_) - 1);
  }

 private:
  double n_, theta_, zeta_n_ = 0, alpha_ = 0, eta_ = 0;
  splitmix rng_;
};

inline std::uint64_t resident_bytes() {
  std::ifstream statm("/proc/self/statm");
  std::uint64_t size = 0, resident = 0;
  statm >> size >> resident;
  return resident * static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
}

// Bytes of all files under `dir`.
inline std::uint64_t directory_bytes(const std::string& dir) {
  std::uint64_t total = 0;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(dir, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec))
    if (it->is_regular_file(ec)) total += it->file_size(ec);
  return total;
}

// W7's read floor: the time to read every file under `dir` once, in 1 MiB reads, right
// after a recovery read them (so mostly from the page cache, as the recovery found them
// when it ran second). No engine can recover its files faster than it can read them.
struct read_floor {
  double seconds = 0;
  std::uint64_t bytes = 0;
};

inline read_floor measure_read_floor(const std::string& dir) {
  read_floor out;
  std::vector<char> buf(1 << 20);
  const auto t0 = std::chrono::steady_clock::now();
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(dir, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    if (!it->is_regular_file(ec)) continue;
    const int fd = ::open(it->path().c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    for (;;) {
      const ssize_t n = ::read(fd, buf.data(), buf.size());
      if (n <= 0) break;
      out.bytes += static_cast<std::uint64_t>(n);
    }
    ::close(fd);
  }
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return out;
}

}  // namespace bench
