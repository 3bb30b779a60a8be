// Checkpoints and garbage collection: write, checkpoint (a persistent snapshot plus the
// removal of the log it covers), write more, reopen (recovery loads the snapshot and
// replays only the tail), open the snapshot read-only, and reclaim old versions with GC.
// Checks what it prints and exits 1 on a mismatch, so the test suite can run it.
//
//   checkpoint [DATA_DIR]     (default: ./aerodb-checkpoint-data, cleared at start)
#include <aerodb/aerodb.hpp>

#include "example_dir.hpp"

#include <cstdio>
#include <string>

namespace {

constexpr const char* schema = R"({"id":"reading","version":1,"fields":{
  "_id":{"type":"string","required":true},
  "sensor":{"type":"string","required":true},
  "value":{"type":"float","required":true}}})";

std::string reading(int i, double value) {
  return R"({"_id":"r)" + std::to_string(10000 + i) + R"(","sensor":"s)" + std::to_string(i % 7) +
         R"(","value":)" + std::to_string(value) + "}";
}

}  // namespace

int main(int argc, char** argv) {
  const std::string dir = argc > 1 ? argv[1] : "aerodb-checkpoint-data";
  if (!prepare_example_dir(dir)) return 1;
  aerodb::open_options options;
  options.wal_segment_bytes = 16 * 1024;  // small segments, so the checkpoint removes some
  aerodb::commit_id boundary = 0;
  {
    auto opened = aerodb::database::open(dir, options);
    if (!opened) return fail(opened.error_value());
    auto& db = **opened;
    if (auto r = db.register_schema(schema); !r) return fail(r.error_value());
    if (auto r = db.create_collection("readings", "reading"); !r) return fail(r.error_value());
    for (int i = 0; i < 500; ++i)
      if (auto r = db.insert("readings", 1, reading(i, i * 0.5)); !r) return fail(r.error_value());

    auto cp = db.checkpoint();
    if (!cp) return fail(cp.error_value());
    boundary = cp->commit;
    std::printf("checkpoint at CommitId %llu: %llu documents, %llu snapshot bytes, %llu WAL segments removed\n",
                static_cast<unsigned long long>(cp->commit), static_cast<unsigned long long>(cp->documents),
                static_cast<unsigned long long>(cp->snapshot_bytes),
                static_cast<unsigned long long>(cp->segments_removed));

    // Overwrite every reading three times: old versions pile up in memory.
    for (int round = 1; round <= 3; ++round)
      for (int i = 0; i < 100; ++i)
        if (auto r = db.update("readings", "r" + std::to_string(10000 + i), 1, reading(i, round * 100.0)); !r)
          return fail(r.error_value());
    const auto before = db.memory();
    auto gc = db.gc();
    if (!gc) return fail(gc.error_value());
    const auto after = db.memory();
    std::printf("gc at floor %llu freed %llu versions: %llu -> %llu versions, %llu -> %llu document bytes\n",
                static_cast<unsigned long long>(gc->floor), static_cast<unsigned long long>(gc->versions_freed),
                static_cast<unsigned long long>(before.versions), static_cast<unsigned long long>(after.versions),
                static_cast<unsigned long long>(before.document_bytes),
                static_cast<unsigned long long>(after.document_bytes));
    if (after.versions != 500) return 1;
  }

  auto reopened = aerodb::database::open(dir, options);
  if (!reopened) return fail(reopened.error_value());
  auto& db = **reopened;
  std::printf("reopened: %s\n", db.recovery().to_string().c_str());
  if (db.recovery().checkpoint != boundary) return 1;
  auto r0 = db.read().get("readings", "r10000");
  if (!r0 || !*r0) return 1;
  std::printf("r10000 now: %s\n", (*r0)->doc.to_json_string().c_str());

  // The snapshot itself, read-only, answers as the database did at its boundary.
  auto snap = aerodb::database::open_snapshot(dir, boundary, options);
  if (!snap) return fail(snap.error_value());
  auto old = (*snap)->read().get("readings", "r10000");
  if (!old || !*old) return 1;
  std::printf("r10000 in snapshot %llu: %s\n", static_cast<unsigned long long>(boundary),
              (*old)->doc.to_json_string().c_str());
  auto refused = (*snap)->insert("readings", 1, reading(9999, 1));
  if (refused) return 1;
  std::printf("the snapshot refuses writes: %s\n", refused.error_value().to_string().c_str());
  return 0;
}
