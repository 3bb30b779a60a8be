// Memory given back (issue 16, "must show" 3, first half, for today's layout): after GC
// of a large history, the engine's accounting falls to what the live documents need, and
// the process's resident size falls with it, so freed versions do not stay in the process
// as memory nobody uses.
//
// Its own program, so the resident size measured is this workload's and not what earlier
// test cases left in the heap. Runs on the real POSIX file system in a temporary
// directory, so the log's bytes go to the page cache rather than into the process (the
// in-memory test file system would hold them in the heap). Skipped under the sanitizers,
// whose allocators keep freed memory in quarantine on purpose, and without glibc.
#include "support/common.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <unistd.h>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define AERODB_TEST_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || __has_feature(memory_sanitizer)
#define AERODB_TEST_SANITIZED 1
#endif
#endif
#ifndef AERODB_TEST_SANITIZED
#define AERODB_TEST_SANITIZED 0
#endif

using namespace aerodb;
using namespace aerodb_test;

namespace {

#if defined(__GLIBC__)
constexpr bool with_glibc = true;
#else
constexpr bool with_glibc = false;
#endif
constexpr bool sanitized = AERODB_TEST_SANITIZED != 0;

// Resident bytes of this process: the second field of /proc/self/statm, in pages.
std::uint64_t resident_bytes() {
  std::FILE* f = std::fopen("/proc/self/statm", "r");
  REQUIRE(f != nullptr);
  unsigned long long size = 0, resident = 0;
  const int got = std::fscanf(f, "%llu %llu", &size, &resident);
  std::fclose(f);
  REQUIRE(got == 2);
  return resident * static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
}

// Resident bytes once the allocator has given back what it can. glibc keeps freed chunks
// in its heap, returning only the top of it by itself; malloc_trim(0) returns every whole
// free page inside it too. A long-running application that wants the same calls it, or
// tunes M_TRIM_THRESHOLD; the engine itself does not, as an allocator policy is not its
// to choose.
std::uint64_t settled_resident_bytes() {
#if defined(__GLIBC__)
  ::malloc_trim(0);
#endif
  return resident_bytes();
}

struct temp_dir {
  std::string path;
  temp_dir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "aerodb-gc-memory-XXXXXX").string();
    if (!::mkdtemp(tmpl.data())) FAIL("mkdtemp failed: " << std::strerror(errno));
    path = tmpl;
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  ~temp_dir() {
    std::error_code ignored;
    std::filesystem::remove_all(path, ignored);
  }
};

}  // namespace

TEST_CASE_TEMPLATE("GC of a large history gives the memory back: accounting and resident size both fall", Db,
                   aerodb::database, aerodb::accelerated_database) {
  if constexpr (sanitized || !with_glibc) {
    MESSAGE("skipped: resident size is only meaningful with glibc's allocator and no sanitizer");
    return;
  }
  // 500 documents of about 2 KiB, each written 100 times: 50,000 versions, some 100 MiB
  // of documents, of which GC frees all but the newest version of each.
  constexpr int keys = 500, versions_each = 100, filler_bytes = 2000;
  const std::string filler(filler_bytes, 'x');
  temp_dir dir;
  auto db = open_or_fail<Db>(dir.path + "/db", open_options{});
  setup_users(*db);
  // One commit per round, every key in it: the log's fsyncs stay few.
  for (int round = 0; round < versions_each; ++round) {
    write_batch batch;
    for (int k = 0; k < keys; ++k) {
      const std::string id = "k" + std::to_string(k);
      const std::string json = R"({"_id":")" + id + R"(","name":")" + filler + R"(","age":)" + std::to_string(round) + "}";
      if (round == 0)
        batch.insert("users", 1, json);
      else
        batch.update("users", id, 1, json);
    }
    REQUIRE(db->commit(batch));
  }
  const memory_stats full = db->memory();
  REQUIRE(full.versions == std::uint64_t{keys} * versions_each);
  REQUIRE(full.document_bytes > std::uint64_t{keys} * versions_each * filler_bytes);
  const std::uint64_t resident_full = settled_resident_bytes();

  auto gc = db->gc();
  REQUIRE(gc);
  const memory_stats after = db->memory();
  const std::uint64_t resident_after = settled_resident_bytes();

  // The accounting: down to one version per key, by exactly what GC reports.
  CHECK(gc->versions_freed == std::uint64_t{keys} * (versions_each - 1));
  CHECK(after.versions == keys);
  CHECK(after.keys == keys);
  CHECK(full.document_bytes - after.document_bytes == gc->bytes_freed);
  CHECK(after.document_bytes * (versions_each - 1) <= full.document_bytes);

  // The process: resident size falls by at least half the document bytes freed. (The
  // rest of what a version costs, its node, control block and index entries, comes back
  // too; half leaves room for what the allocator keeps in partly used pages.)
  MESSAGE("document bytes freed: " << gc->bytes_freed << "; resident before GC: " << resident_full
                                   << ", after: " << resident_after);
  REQUIRE(resident_full > resident_after);
  CHECK(resident_full - resident_after >= gc->bytes_freed / 2);

  // What is left still reads.
  auto got = db->read().get("users", "k7");
  REQUIRE(got);
  REQUIRE(got->has_value());
  CHECK((*got)->committed_at == db->last_commit_id() - 1);  // the last round, before the GC record
}
