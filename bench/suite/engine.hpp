// The seam between the benchmark suite and the engines it compares: AeroDB's baseline and
// accelerated instantiations, LMDB, RocksDB, LevelDB and SQLite. Every engine stores the
// same documents (16-byte `_id`, 256-byte JSON text, incompressible body) and answers the
// same four query shapes, so a workload is written once against this interface.
//
// Thread safety, as the workloads use it (each adapter below keeps to it):
//   - `insert`, `update` and `read` may be called from any number of threads at once, and
//     at the same time as each other: W2's writers, W4's two-thread cells (each thread
//     opens its own reader), W5's writer beside a reader thread.
//   - `checkpoint` may run while `insert`s do (W8; only AeroDB's adapter does anything).
//   - Everything else (`open`, `close`, `insert_batch`, `syncs`, `counters_json`) is
//     called by one thread with no other call running.
//   - A `reader` is used only by the thread that created it, and a thread holds at most
//     one reader at a time: LMDB (without MDB_NOTLS) binds a read transaction to its
//     thread and allows one per thread; a second fails with MDB_BAD_RSLOT, which the
//     adapter reports as a failed cell.
// Why each adapter's `read` may run concurrently with the others and with the writers:
// AeroDB's database::read is thread-safe; LMDB begins a read-only transaction in the
// calling thread's reader slot; RocksDB and LevelDB take a snapshot (DB::GetSnapshot and
// DB::Get are thread-safe) and the view owns its ReadOptions; SQLite opens a connection
// per reader (multi-thread mode: a connection is never shared between threads, which the
// adapter checks the library was built to allow, sqlite3_threadsafe()).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace bench {

inline constexpr std::size_t key_bytes = 16;
inline constexpr std::size_t document_bytes = 256;

// One document: its `_id` and full JSON text, plus the two indexed fields already
// decoded (the key-value peers maintain their hand-built indexes from these, as an
// application would).
struct document {
  std::string id;
  std::string json;
  std::int64_t bucket = 0;  // 0..99: equality at 1% selectivity
  double score = 0;         // [0, 1000): a range of width 10 is 1% selectivity
};

enum class query_shape {
  eq_by_id,          // bucket == k, ordered by _id, limit 10000
  range_by_id,       // low <= score < high, ordered by _id, limit 10000
  eq_by_id_top,      // bucket == k, ordered by _id, limit 100
  range_by_score_top // low <= score < high, ordered by score (then _id), limit 100
};

struct query_request {
  query_shape shape = query_shape::eq_by_id;
  std::int64_t bucket = 0;
  double low = 0, high = 0;
  int limit = 0;
};

struct query_answer {
  std::size_t count = 0;
  std::uint64_t fingerprint = 0;  // order-sensitive hash of the answer's _ids
};

// Folds one _id into an answer's fingerprint (FNV-1a over the bytes, then a separator).
inline void fingerprint_add(query_answer& a, std::string_view id) {
  std::uint64_t h = a.fingerprint ? a.fingerprint : 1469598103934665603ull;
  for (char c : id) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ull;
  a.fingerprint = (h ^ 0xffu) * 1099511628211ull;
  ++a.count;
}

// A read view. Reads see exactly the commits made before the view was taken (or last
// refreshed). Each read adds something of the document's bytes to `sink`, so a read
// cannot be optimized away.
class reader {
 public:
  virtual ~reader() = default;
  virtual bool get(std::string_view id, std::uint64_t& sink) = 0;
  virtual query_answer query(const query_request& q, std::uint64_t& sink) = 0;
  // Moves the view to the newest commit.
  virtual void refresh() = 0;
};

class engine {
 public:
  virtual ~engine() = default;
  virtual std::string name() const = 0;
  // Opens `dir` (creating it when `create`); `indexed` declares the secondary indexes on
  // `bucket` and `score` (only with `create`: a reopened store keeps what it had).
  virtual void open(const std::string& dir, bool create, bool indexed) = 0;
  // Each is one durable commit. Thread-safe.
  virtual void insert(const document& d) = 0;
  virtual void update(const document& d) = 0;
  // docs[begin, end) as one durable commit.
  virtual void insert_batch(const std::vector<document>& docs, std::size_t begin, std::size_t end) = 0;
  virtual std::unique_ptr<reader> read() = 0;
  // A persistent checkpoint (W7/W8); false when the engine has no such thing.
  virtual bool checkpoint() { return false; }
  // fsync/fdatasync calls the engine made so far, when it counts them (else -1).
  virtual std::int64_t syncs() const { return -1; }
  // Engine-specific counters worth reporting (JSON object text, or empty).
  virtual std::string counters_json() const { return {}; }
  virtual void close() = 0;
};

// Factories, one per adapter file. A peer not built (its package missing at configure
// time) has no factory; bench_suite.cpp lists what was compiled in.
std::unique_ptr<engine> make_aerodb_baseline();
std::unique_ptr<engine> make_aerodb_accelerated();
std::unique_ptr<engine> make_aerodb_group_commit();  // group commit alone (commit workloads only)
std::unique_ptr<engine> make_lmdb();
std::unique_ptr<engine> make_rocksdb();
std::unique_ptr<engine> make_leveldb();
std::unique_ptr<engine> make_sqlite();

// Build facts of each peer (library version, how it was configured here).
std::string lmdb_build_facts();
std::string rocksdb_build_facts();
std::string leveldb_build_facts();
std::string sqlite_build_facts();

}  // namespace bench
