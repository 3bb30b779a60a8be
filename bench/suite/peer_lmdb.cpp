// LMDB as a peer: default environment flags (no MDB_NOSYNC, MDB_NOMETASYNC, MDB_WRITEMAP),
// so every commit is durable: LMDB writes the data pages, fdatasyncs, writes the meta
// page and fdatasyncs again. One write transaction per commit; LMDB serializes writers
// on its own lock. Read views are read-only transactions (bound to the creating thread).
#include "engine.hpp"
#include "kv_documents.hpp"
#include "suite_util.hpp"

#include <lmdb.h>

#include <mutex>

namespace bench {
namespace {

void check(int rc, const char* what) {
  if (rc != MDB_SUCCESS) throw failure(std::string("lmdb ") + what + ": " + mdb_strerror(rc));
}

MDB_val val(std::string_view s) { return MDB_val{s.size(), const_cast<char*>(s.data())}; }

class lmdb_view final : public kv::kv_view, public reader {
 public:
  lmdb_view(MDB_env* env, MDB_dbi dbi) : dbi_(dbi) {
    check(mdb_txn_begin(env, nullptr, MDB_RDONLY, &txn_), "txn_begin(rdonly)");
  }
  ~lmdb_view() override { mdb_txn_abort(txn_); }

  bool get(std::string_view key, std::uint64_t& sink) override {
    MDB_val k = val(key), v{};
    const int rc = mdb_get(txn_, dbi_, &k, &v);
    if (rc == MDB_NOTFOUND) return false;
    check(rc, "get");
    sink += v.mv_size + (v.mv_size ? static_cast<unsigned char>(static_cast<const char*>(v.mv_data)[v.mv_size - 1]) : 0u);
    return true;
  }
  void scan(std::string_view lo, std::string_view hi, const std::function<bool(std::string_view)>& fn) override {
    MDB_cursor* c = nullptr;
    check(mdb_cursor_open(txn_, dbi_, &c), "cursor_open");
    MDB_val k = val(lo), v{};
    int rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
    while (rc == MDB_SUCCESS) {
      const std::string_view key(static_cast<const char*>(k.mv_data), k.mv_size);
      if (key >= hi || !fn(key)) break;
      rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(c);
    if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND) check(rc, "cursor_get");
  }
  query_answer query(const query_request& q, std::uint64_t& sink) override { return kv::kv_query(*this, q, sink); }
  void refresh() override {
    mdb_txn_reset(txn_);
    check(mdb_txn_renew(txn_), "txn_renew");
  }

 private:
  MDB_dbi dbi_;
  MDB_txn* txn_ = nullptr;
};

class lmdb_engine final : public engine {
 public:
  ~lmdb_engine() override { close(); }
  std::string name() const override { return "lmdb"; }

  void open(const std::string& dir, bool create, bool indexed) override {
    if (create) make_dir(dir);
    indexed_ = indexed || (!create && indexed_hint(dir));
    check(mdb_env_create(&env_), "env_create");
    // The map is address space, not disk: big enough for every workload here.
    check(mdb_env_set_mapsize(env_, std::size_t{32} << 30), "set_mapsize");
    check(mdb_env_set_maxreaders(env_, 256), "set_maxreaders");
    check(mdb_env_open(env_, dir.c_str(), 0, 0644), "env_open");
    MDB_txn* txn = nullptr;
    check(mdb_txn_begin(env_, nullptr, 0, &txn), "txn_begin");
    check(mdb_dbi_open(txn, nullptr, 0, &dbi_), "dbi_open");
    check(mdb_txn_commit(txn), "txn_commit");
    if (create && indexed) write_indexed_hint(dir);
  }

  void insert(const document& d) override { commit_one(d); }
  void update(const document& d) override {
    if (indexed_) throw failure("lmdb: updates of indexed documents are not part of any workload");
    commit_one(d);
  }
  void insert_batch(const std::vector<document>& docs, std::size_t begin, std::size_t end) override {
    MDB_txn* txn = nullptr;
    check(mdb_txn_begin(env_, nullptr, 0, &txn), "txn_begin");
    for (std::size_t i = begin; i < end; ++i) put_all(txn, docs[i]);
    check(mdb_txn_commit(txn), "txn_commit");
  }
  std::unique_ptr<reader> read() override { return std::make_unique<lmdb_view>(env_, dbi_); }
  void close() override {
    if (env_) mdb_env_close(env_);
    env_ = nullptr;
  }

 private:
  void put_all(MDB_txn* txn, const document& d) {
    kv::put_document(d, indexed_, [&](std::string_view k, std::string_view v) {
      MDB_val kk = val(k), vv = val(v);
      check(mdb_put(txn, dbi_, &kk, &vv, 0), "put");
    });
  }
  void commit_one(const document& d) {
    MDB_txn* txn = nullptr;
    check(mdb_txn_begin(env_, nullptr, 0, &txn), "txn_begin");
    put_all(txn, d);
    check(mdb_txn_commit(txn), "txn_commit");
  }

  MDB_env* env_ = nullptr;
  MDB_dbi dbi_ = 0;
  bool indexed_ = false;
};

}  // namespace

std::unique_ptr<engine> make_lmdb() { return std::make_unique<lmdb_engine>(); }

std::string lmdb_build_facts() {
  int major = 0, minor = 0, patch = 0;
  mdb_version(&major, &minor, &patch);
  return "LMDB " + std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(patch) +
         " (Debian liblmdb-dev); default env flags (two fdatasyncs per commit: data, then meta page); "
         "mapsize 32 GiB, maxreaders 256; one unnamed database; hand-built index keys in the same transaction";
}

}  // namespace bench
