// LevelDB as a peer: WriteOptions.sync = true, compression off, everything else default.
// Read views are snapshots.
#include "engine.hpp"
#include "kv_documents.hpp"
#include "suite_util.hpp"

#include <leveldb/db.h>
#include <leveldb/options.h>
#include <leveldb/write_batch.h>

namespace bench {
namespace {

void check(const leveldb::Status& s, const char* what) {
  if (!s.ok()) throw failure(std::string("leveldb ") + what + ": " + s.ToString());
}

leveldb::Slice slice(std::string_view s) { return {s.data(), s.size()}; }

class leveldb_view final : public kv::kv_view, public reader {
 public:
  explicit leveldb_view(leveldb::DB* db) : db_(db) { take(); }
  ~leveldb_view() override { db_->ReleaseSnapshot(snap_); }

  bool get(std::string_view key, std::uint64_t& sink) override {
    const auto s = db_->Get(ro_, slice(key), &value_);
    if (s.IsNotFound()) return false;
    check(s, "get");
    sink += value_.size() + (value_.empty() ? 0u : static_cast<unsigned char>(value_.back()));
    return true;
  }
  void scan(std::string_view lo, std::string_view hi, const std::function<bool(std::string_view)>& fn) override {
    std::unique_ptr<leveldb::Iterator> it(db_->NewIterator(ro_));
    for (it->Seek(slice(lo)); it->Valid(); it->Next()) {
      const auto k = it->key();
      const std::string_view key(k.data(), k.size());
      if (key >= hi || !fn(key)) break;
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
  leveldb::DB* db_;
  const leveldb::Snapshot* snap_ = nullptr;
  leveldb::ReadOptions ro_;
  std::string value_;
};

class leveldb_engine final : public engine {
 public:
  ~leveldb_engine() override { close(); }
  std::string name() const override { return "leveldb"; }

  void open(const std::string& dir, bool create, bool indexed) override {
    if (create) make_dir(dir);
    indexed_ = indexed || (!create && indexed_hint(dir));
    leveldb::Options o;
    o.create_if_missing = true;
    o.compression = leveldb::kNoCompression;
    leveldb::DB* db = nullptr;
    check(leveldb::DB::Open(o, dir + "/db", &db), "open");
    db_.reset(db);
    wo_.sync = true;
    if (create && indexed) write_indexed_hint(dir);
  }

  void insert(const document& d) override { commit_one(d); }
  void update(const document& d) override {
    if (indexed_) throw failure("leveldb: updates of indexed documents are not part of any workload");
    commit_one(d);
  }
  void insert_batch(const std::vector<document>& docs, std::size_t begin, std::size_t end) override {
    leveldb::WriteBatch b;
    for (std::size_t i = begin; i < end; ++i)
      kv::put_document(docs[i], indexed_, [&](std::string_view k, std::string_view v) { b.Put(slice(k), slice(v)); });
    check(db_->Write(wo_, &b), "write");
  }
  std::unique_ptr<reader> read() override { return std::make_unique<leveldb_view>(db_.get()); }
  void close() override { db_.reset(); }

 private:
  void commit_one(const document& d) {
    if (!indexed_) {
      check(db_->Put(wo_, slice(d.id), slice(d.json)), "put");
      return;
    }
    leveldb::WriteBatch b;
    kv::put_document(d, true, [&](std::string_view k, std::string_view v) { b.Put(slice(k), slice(v)); });
    check(db_->Write(wo_, &b), "write");
  }

  std::unique_ptr<leveldb::DB> db_;
  leveldb::WriteOptions wo_;
  bool indexed_ = false;
};

}  // namespace

std::unique_ptr<engine> make_leveldb() { return std::make_unique<leveldb_engine>(); }

std::string leveldb_build_facts() {
  return "LevelDB " + std::to_string(leveldb::kMajorVersion) + "." + std::to_string(leveldb::kMinorVersion) +
         " (Debian libleveldb-dev); WriteOptions.sync=true, compression off (kNoCompression), other options default "
         "(4 MiB write buffer, 8 MiB block cache); Debian's build computes CRC32C in software (not linked with "
         "libcrc32c, no crc32 instructions in the library)";
}

}  // namespace bench
