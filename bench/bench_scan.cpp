// bench_scan: reading a whole collection under one read view, the baseline engine against
// the accelerated one, in memory (no disk, so only the read path is measured):
//   - for_each, which reads in cursor batches of 1000 (read_view.hpp);
//   - a cursor over a secondary index in batches of 100 (query/cursor.hpp);
//   - query paging: `limit` 100 pages of a sorted range query holding 5% of the documents,
//     each resumed with `after`. (On the baseline every page reads all of the query's
//     candidates, so paging a whole large collection there is quadratic: a cursor is the
//     tool for that, and docs/queries.md 6.1 says so.)
// Prints documents per second for each, the median of --reps runs, and the ratio
// accelerated / baseline. Usage: bench_scan [--docs N] [--reps R]
#include <aerodb/aerodb.hpp>
#include <aerodb/testing/fault_injection_fs.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

struct rates {
  double for_each = 0, cursor = 0, paging = 0;  // documents per second (medians)
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

template <class Db>
rates measure(int docs, int reps) {
  aerodb::open_options o;
  o.fs = std::make_shared<aerodb::testing::fault_injection_fs>();
  auto opened = Db::open("/db", o);
  if (!opened) {
    std::fprintf(stderr, "open: %s\n", opened.error_value().to_string().c_str());
    std::exit(1);
  }
  auto db = std::move(*opened);
  const auto must = [](const auto& r) {
    if (!r) {
      std::fprintf(stderr, "%s\n", r.error_value().to_string().c_str());
      std::exit(1);
    }
  };
  must(db->register_schema(R"({"id":"r","version":1,"fields":{"_id":{"type":"string","required":true},)"
                           R"("n":{"type":"int"},"pad":{"type":"string"}}})"));
  must(db->create_collection("c", "r"));
  must(db->create_index("c", "n"));
  const std::string pad(180, 'x');  // documents of about 256 bytes, as in bench_suite
  for (int b = 0; b < docs; b += 1000) {
    aerodb::write_batch wb;
    for (int i = b; i < std::min(docs, b + 1000); ++i) {
      // Ids inserted out of order (a multiplicative permutation), so neither engine meets
      // them in insertion order by accident.
      char id[32];
      std::snprintf(id, sizeof id, "k%010llu", static_cast<unsigned long long>(i) * 2654435761ULL % 4294967296ULL);
      wb.insert("c", 1, std::string(R"({"_id":")") + id + R"(","n":)" + std::to_string(i % 997) + R"(,"pad":")" +
                            pad + "\"}");
    }
    must(db->commit(wb));
  }
  std::vector<double> each, cursor, paging;
  for (int rep = 0; rep < reps; ++rep) {
    const auto view = db->read();
    using clock = std::chrono::steady_clock;
    auto t0 = clock::now();
    std::size_t seen = 0;
    must(view.for_each("c", [&](const aerodb::versioned_document&) { ++seen; }));
    auto t1 = clock::now();
    each.push_back(seen / std::chrono::duration<double>(t1 - t0).count());

    aerodb::query::scan_request r;
    r.collection = "c";
    r.field = "n";
    r.limit = 100;
    seen = 0;
    t0 = clock::now();
    for (;;) {
      auto page = view.scan(r);
      must(page);
      seen += page->documents.size();
      if (!page->next) break;
      r.after = page->next;
    }
    t1 = clock::now();
    cursor.push_back(seen / std::chrono::duration<double>(t1 - t0).count());

    auto spec = aerodb::query_builder("c").version(1).where("n", aerodb::query::op::lt, 50).sort_by("n").limit(100).spec();
    seen = 0;
    t0 = clock::now();
    for (;;) {
      auto page = view.query(spec);
      must(page);
      seen += page->documents.size();
      if (!page->next) break;
      spec.after = page->next;
    }
    t1 = clock::now();
    paging.push_back(seen / std::chrono::duration<double>(t1 - t0).count());
  }
  return {median(each), median(cursor), median(paging)};
}

}  // namespace

int main(int argc, char** argv) {
  int docs = 500000, reps = 5;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--docs")) docs = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--reps")) reps = std::atoi(argv[i + 1]);
  }
  if (docs <= 0 || reps <= 0) {
    std::fprintf(stderr, "usage: bench_scan [--docs N] [--reps R]\n");
    return 2;
  }
  const rates base = measure<aerodb::database>(docs, reps);
  const rates accel = measure<aerodb::accelerated_database>(docs, reps);
  std::printf("%d documents, median of %d runs, million documents per second\n", docs, reps);
  std::printf("%-34s %10s %12s %8s\n", "read", "baseline", "accelerated", "ratio");
  const auto row = [](const char* name, double b, double a) {
    std::printf("%-34s %10.2f %12.2f %7.2fx\n", name, b / 1e6, a / 1e6, a / b);
  };
  row("for_each (batches of 1000)", base.for_each, accel.for_each);
  row("index cursor (batches of 100)", base.cursor, accel.cursor);
  row("query pages of 100, 5% range", base.paging, accel.paging);
}
