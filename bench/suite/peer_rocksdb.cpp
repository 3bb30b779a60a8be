// RocksDB as a peer: WriteOptions.sync = true (every commit is fsynced, concurrent writers
// are grouped by RocksDB's own write leader), compression off, everything else default.
// Read views are snapshots.
#include "engine.hpp"
#include "kv_documents.hpp"
#include "suite_util.hpp"

#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/slice.h>
#include <rocksdb/statistics.h>
#include <rocksdb/version.h>
#include <rocksdb/write_batch.h>

#include <fstream>

namespace bench {
namespace {

void check(const rocksdb::Status& s, const char* what) {
  if (!s.ok()) throw failure(std::string("rocksdb ") + what + ": " + s.ToString());
}

rocksdb::Slice slice(std::string_view s) { return {s.data(), s.size()}; }

class rocksdb_view final : public kv::kv_view, public reader {
 public:
  explicit rocksdb_view(rocksdb::DB* db) : db_(db) { take(); }
  ~rocksdb_view() override { db_->ReleaseSnapshot(snap_); }

  bool get(std::string_view key, std::uint64_t& sink) override {
    rocksdb::PinnableSlice v;
    const auto s = db_->Get(ro_, db_->DefaultColumnFamily(), slice(key), &v);
    if (s.IsNotFound()) return false;
    check(s, "get");
    sink += v.size() + (v.size() ? static_cast<unsigned char>(v.data()[v.size() - 1]) : 0u);
    return true;
  }
  void scan(std::string_view lo, std::string_view hi, const std::function<bool(std::string_view)>& fn) override {
    rocksdb::ReadOptions ro = ro_;
    const rocksdb::Slice upper = slice(hi);
    ro.iterate_upper_bound = &upper;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro));
    for (it->Seek(slice(lo)); it->Valid(); it->Next()) {
      const auto k = it->key();
      if (!fn(std::string_view(k.data(), k.size()))) break;
    }
    check(it->status(), "iterate");
  }
  query_answer query(const query_request& q, std::uint64_t& sink) override { return kv::kv_query(*this, q, sink); }
  void refresh() override {
    db_->ReleaseSnapshot(snap_);
    take();
  }

 private:
  void take() {
    snap_ = db_->GetSnapshot();
    ro_.snapshot = snap_;
  }
  rocksdb::DB* db_;
  const rocksdb::Snapshot* snap_ = nullptr;
  rocksdb::ReadOptions ro_;
};

class rocksdb_engine final : public engine {
 public:
  ~rocksdb_engine() override { close(); }
  std::string name() const override { return "rocksdb"; }

  void open(const std::string& dir, bool create, bool indexed) override {
    if (create) make_dir(dir);
    dir_ = dir;
    indexed_ = indexed || (!create && indexed_hint(dir));
    rocksdb::Options o;
    o.create_if_missing = true;
    o.compression = rocksdb::kNoCompression;
    o.bottommost_compression = rocksdb::kNoCompression;
    o.statistics = rocksdb::CreateDBStatistics();
    o.statistics->set_stats_level(rocksdb::StatsLevel::kExceptTimers);
    stats_ = o.statistics;
    rocksdb::DB* db = nullptr;
    check(rocksdb::DB::Open(o, dir + "/db", &db), "open");
    db_.reset(db);
    wo_.sync = true;
    if (create && indexed) write_indexed_hint(dir);
  }

  void insert(const document& d) override { commit_one(d); }
  void update(const document& d) override {
    if (indexed_) throw failure("rocksdb: updates of indexed documents are not part of any workload");
    commit_one(d);
  }
  void insert_batch(const std::vector<document>& docs, std::size_t begin, std::size_t end) override {
    rocksdb::WriteBatch b;
    for (std::size_t i = begin; i < end; ++i)
      kv::put_document(docs[i], indexed_, [&](std::string_view k, std::string_view v) { check(b.Put(slice(k), slice(v)), "batch put"); });
    check(db_->Write(wo_, &b), "write");
  }
  std::unique_ptr<reader> read() override { return std::make_unique<rocksdb_view>(db_.get()); }
  std::int64_t syncs() const override {
    return stats_ ? static_cast<std::int64_t>(stats_->getTickerCount(rocksdb::WAL_FILE_SYNCED)) : -1;
  }
  void close() override { db_.reset(); }

 private:
  void commit_one(const document& d) {
    if (!indexed_) {
      check(db_->Put(wo_, slice(d.id), slice(d.json)), "put");
      return;
    }
    rocksdb::WriteBatch b;
    kv::put_document(d, true, [&](std::string_view k, std::string_view v) { check(b.Put(slice(k), slice(v)), "batch put"); });
    check(db_->Write(wo_, &b), "write");
  }

  std::string dir_;
  std::unique_ptr<rocksdb::DB> db_;
  std::shared_ptr<rocksdb::Statistics> stats_;
  rocksdb::WriteOptions wo_;
  bool indexed_ = false;
};

}  // namespace

std::unique_ptr<engine> make_rocksdb() { return std::make_unique<rocksdb_engine>(); }

// The CRC32C fact was checked on Debian 12's librocksdb7.8: `objdump -d` finds no crc32
// instruction in it, so block and WAL checksums are computed in software.
std::string rocksdb_build_facts() {
  std::string facts = "RocksDB " + std::to_string(ROCKSDB_MAJOR) + "." + std::to_string(ROCKSDB_MINOR) + "." +
                      std::to_string(ROCKSDB_PATCH) +
                      " (Debian librocksdb-dev); WriteOptions.sync=true, compression off (kNoCompression), "
                      "other options default (64 MiB memtable, 8 MiB block cache); statistics on at kExceptTimers (tickers only, to count WAL syncs); Debian's build computes CRC32C in "
                      "software (no SSE4.2 crc32 instructions in the library)";
  return facts;
}

}  // namespace bench
