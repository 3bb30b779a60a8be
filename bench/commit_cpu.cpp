// commit_cpu: CPU per commit with the disk taken out (docs/optimizations/commit_cpu.md).
// Commits the bench suite's 256-byte documents (same schema and generator as
// bench/suite/engine_aerodb.cpp and suite_util.hpp) into a database on tmpfs, where
// fdatasync is cheap, and prints the process's CPU time per commit.
//   commit_cpu baseline|accelerated [N=200000] [insert|batch] [dir-prefix=/dev/shm/commit-cpu]
// insert: N single-document commits; batch: N/4 commits of 4 inserts + 4 deletes of
// missing documents. Meant to be run under perf record or valgrind --tool=callgrind.
#include <aerodb/aerodb.hpp>
#include <sys/resource.h>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>
#include <chrono>
#include <filesystem>

static constexpr const char* doc_schema = R"({"id":"doc","version":1,"fields":{
  "_id":{"type":"string","required":true},
  "bucket":{"type":"int","required":true},
  "score":{"type":"float","required":true},
  "body":{"type":"string","required":true}}})";

struct splitmix { std::uint64_t s; std::uint64_t next() { std::uint64_t z = (s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull; z = (z ^ (z >> 27)) * 0x94D049BB133111EBull; return z ^ (z >> 31);} };
static std::uint64_t mix(std::uint64_t x) { return splitmix{x}.next(); }
static std::string make_json(const std::string& id) {
  static constexpr char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::uint64_t h = 1469598103934665603ull;
  for (char c : id) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ull;
  long long bucket = static_cast<long long>(mix(h) % 100);
  double score = static_cast<double>(mix(h ^ 0x5c0e) % 1000000) / 1000.0;
  char head[128];
  int n = std::snprintf(head, sizeof head, R"({"_id":"%s","bucket":%lld,"score":%.3f,"body":")", id.c_str(), bucket, score);
  std::string j(head, n);
  splitmix rng{h};
  std::uint64_t r = 0; int left = 0;
  while (j.size() < 254) { if (!left) { r = rng.next(); left = 10; } j += alphabet[r & 63]; r >>= 6; --left; }
  j += "\"}";
  return j;
}
static double cpu_seconds() {
  rusage u; getrusage(RUSAGE_SELF, &u);
  return u.ru_utime.tv_sec + u.ru_utime.tv_usec / 1e6 + u.ru_stime.tv_sec + u.ru_stime.tv_usec / 1e6;
}
template <class T> T need(aerodb::result<T> r) { if (!r) { std::fprintf(stderr, "%s\n", r.error_value().to_string().c_str()); std::exit(1);} return std::move(r).value(); }

template <class Db> int run(const std::string& dir, std::size_t n, const char* mode) {
  std::filesystem::remove_all(dir);
  auto db = need(Db::open(dir));
  need(db->register_schema(doc_schema));
  need(db->create_collection("docs", "doc"));
  std::vector<std::string> ids(n), jsons(n);
  for (std::size_t i = 0; i < n; ++i) { char b[24]; std::snprintf(b, sizeof b, "d%015zu", i); ids[i] = b; jsons[i] = make_json(ids[i]); }
  const double c0 = cpu_seconds(); auto w0 = std::chrono::steady_clock::now();
  std::size_t commits = 0;
  if (std::string(mode) == "insert") {
    for (std::size_t i = 0; i < n; ++i) { need(db->insert("docs", 1, jsons[i])); ++commits; }
  } else {  // batch: 4 inserts + 4 deletes of missing documents per commit
    for (std::size_t i = 0; i + 4 <= n; i += 4) {
      aerodb::write_batch b;
      for (std::size_t k = 0; k < 4; ++k) { b.insert("docs", 1, jsons[i + k]); b.remove("docs", "missing" + ids[i + k]); }
      need(db->commit(b)); ++commits;
    }
  }
  const double c1 = cpu_seconds(); auto w1 = std::chrono::steady_clock::now();
  std::printf("%s %s commits=%zu cpu=%.3fs wall=%.3fs cpu/commit=%.2fus\n", mode, dir.c_str(), commits, c1 - c0,
              std::chrono::duration<double>(w1 - w0).count(), (c1 - c0) / commits * 1e6);
  return 0;
}
int main(int argc, char** argv) {
  const std::string engine = argc > 1 ? argv[1] : "baseline";
  const std::size_t n = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 200000;
  const char* mode = argc > 3 ? argv[3] : "insert";
  const std::string prefix = argc > 4 ? argv[4] : "/dev/shm/commit-cpu";
  if (engine == "baseline") return run<aerodb::database>(prefix + "-baseline", n, mode);
  return run<aerodb::accelerated_database>(prefix + "-accelerated", n, mode);
}
