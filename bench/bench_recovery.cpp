// bench_recovery: the open of a store of N documents (W7 of docs/benchmarks.md, without
// the peers), phase by phase, against the time to read its files once.
//
//   bench_recovery [--docs N] [--dir PATH] [--reps R] [--engine baseline|accelerated]
//                  [--checkpoint] [--progress] [--reuse]
//
// It loads N documents as bench_suite does (256-byte JSON, 16-byte `_id`s, 1000 per durable
// commit, indexes on `bucket` and `score`) into PATH/<engine>, closes the store, and opens
// it R times. Each open is timed to its first read, with recovery_report's phases; right
// after it, the read floor of the same files (every file read once, in 1 MiB reads,
// bench/suite/suite_util.hpp). With --checkpoint, the store is checkpointed after the load
// and 1000 more documents are logged after it, so the opens start from the snapshot.
// --progress prints every call of open_options::on_recovery_progress during the first
// open, with the time since the open began. --reuse opens an existing PATH/<engine> as it
// is (for profiling: `perf record -g bench_recovery --reuse ...`).
//
// Nothing is asserted; medians of R opens are printed. Run it on a real disk.
#include "suite/suite_util.hpp"

#include <aerodb/aerodb.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace {

constexpr const char* doc_schema = R"({"id":"doc","version":1,"fields":{
  "_id":{"type":"string","required":true},
  "bucket":{"type":"int","required":true},
  "score":{"type":"float","required":true},
  "body":{"type":"string","required":true}}})";

struct config {
  std::size_t docs = 1'000'000;
  std::string dir = "bench-data";
  int reps = 3;
  std::string engine = "accelerated";
  bool checkpoint = false, progress = false, reuse = false;
};

template <class T>
T must(aerodb::result<T> r, const char* what) {
  if (!r) {
    std::fprintf(stderr, "bench_recovery: %s: %s\n", what, r.error_value().to_string().c_str());
    std::exit(1);
  }
  return std::move(r).value();
}

template <class Db>
void load(const config& cfg, const std::string& dir) {
  auto db = must(Db::open(dir), "open");
  must(db->register_schema(doc_schema), "register_schema");
  must(db->create_collection("docs", "doc"), "create_collection");
  must(db->create_index("docs", "bucket"), "create_index");
  must(db->create_index("docs", "score"), "create_index");
  bench::document d;
  const auto put = [&](std::size_t from, std::size_t to) {
    for (std::size_t start = from; start < to; start += 1000) {
      aerodb::write_batch b;
      for (std::size_t i = start; i < std::min(to, start + 1000); ++i) {
        bench::make_document(d, bench::dataset_id(i), 0);
        b.insert("docs", 1, d.json);
      }
      must(db->commit(b), "commit");
    }
  };
  put(0, cfg.docs);
  if (cfg.checkpoint) {
    must(db->checkpoint(), "checkpoint");
    put(cfg.docs, cfg.docs + 1000);
  }
}

double seconds(std::chrono::nanoseconds d) { return std::chrono::duration<double>(d).count(); }

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

template <class Db>
int run(const config& cfg) {
  const std::string dir = cfg.dir + "/" + cfg.engine;
  if (!cfg.reuse) {
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(cfg.dir);
    std::fprintf(stderr, "loading %zu documents into %s%s\n", cfg.docs, dir.c_str(),
                 cfg.checkpoint ? ", then a checkpoint and 1000 more" : "");
    const auto started = std::chrono::steady_clock::now();
    load<Db>(cfg, dir);
    const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    std::fprintf(stderr, "loaded in %.3f s (%.0f documents/s, 1000 per durable commit, as W3)\n", took,
                 static_cast<double>(cfg.docs) / took);
  }
  constexpr std::size_t phases = aerodb::recovery_phase_count;
  std::vector<double> first_read, floor, whole, phase[phases];
  bool from_checkpoint = false;
  for (int rep = 0; rep < cfg.reps; ++rep) {
    aerodb::open_options o;
    const auto t0 = std::chrono::steady_clock::now();
    if (cfg.progress && rep == 0)
      o.on_recovery_progress = [t0](const aerodb::recovery_progress& p) {
        static constexpr const char* events[] = {"begin", "     ", "end  "};
        const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
        std::fprintf(stderr, "%9.1f ms  %-13s %s %3.0f%%  %llu / %llu %s", ms, aerodb::to_string(p.phase),
                     events[static_cast<int>(p.event)], p.total ? 100.0 * static_cast<double>(p.done) / static_cast<double>(p.total) : 100.0,
                     static_cast<unsigned long long>(p.done), static_cast<unsigned long long>(p.total),
                     aerodb::recovery_unit_name(p.phase));
        if (p.phase == aerodb::recovery_phase::snapshot_load)
          std::fprintf(stderr, ", %llu documents", static_cast<unsigned long long>(p.documents_loaded));
        if (p.phase == aerodb::recovery_phase::log_replay)
          std::fprintf(stderr, ", %llu records", static_cast<unsigned long long>(p.records_replayed));
        std::fputc('\n', stderr);
      };
    auto db = must(Db::open(dir, o), "open");
    {
      const auto view = db->read();
      if (!must(view.get("docs", bench::dataset_id(cfg.docs / 2)), "get")) {
        std::fprintf(stderr, "bench_recovery: a document is missing after the open\n");
        return 1;
      }
    }
    first_read.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    const auto& r = db->recovery();
    from_checkpoint = r.checkpoint != 0;
    whole.push_back(seconds(r.duration));
    for (std::size_t p = 0; p < phases; ++p) phase[p].push_back(seconds(r.phase_duration(static_cast<aerodb::recovery_phase>(p))));
    if (rep == 0) std::printf("report: %s\n", r.to_string().c_str());
    db.reset();
    floor.push_back(bench::measure_read_floor(dir).seconds);
  }
  std::printf("%s, %zu documents%s, median of %d opens (seconds):\n", cfg.engine.c_str(), cfg.docs,
              from_checkpoint ? " (from a checkpoint)" : " (from the log)", cfg.reps);
  std::printf("  open to first read %.3f   read floor %.3f   ratio %.2fx   %.0f documents/s\n", median(first_read),
              median(floor), median(first_read) / median(floor), static_cast<double>(cfg.docs) / median(first_read));
  std::printf("  recovery %.3f:", median(whole));
  for (std::size_t p = 0; p < phases; ++p)
    std::printf(" %s %.3f%s", aerodb::to_string(static_cast<aerodb::recovery_phase>(p)), median(phase[p]),
                p + 1 < phases ? "," : "\n");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  config cfg;
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    const auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "bench_recovery: %s needs a value\n", argv[i]);
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--docs") cfg.docs = std::stoul(value());
    else if (a == "--dir") cfg.dir = value();
    else if (a == "--reps") cfg.reps = std::max(1, std::stoi(value()));
    else if (a == "--engine") cfg.engine = value();
    else if (a == "--checkpoint") cfg.checkpoint = true;
    else if (a == "--progress") cfg.progress = true;
    else if (a == "--reuse") cfg.reuse = true;
    else {
      std::fprintf(stderr,
                   "usage: bench_recovery [--docs N] [--dir PATH] [--reps R] [--engine baseline|accelerated]\n"
                   "                      [--checkpoint] [--progress] [--reuse]\n");
      return 2;
    }
  }
  if (cfg.engine == "baseline") return run<aerodb::database>(cfg);
  if (cfg.engine == "accelerated") return run<aerodb::accelerated_database>(cfg);
  std::fprintf(stderr, "bench_recovery: unknown engine '%s'\n", cfg.engine.c_str());
  return 2;
}
