// SQLite as a peer: journal_mode=WAL, synchronous=FULL, documents as JSON text in a
// WITHOUT ROWID table keyed by _id, JSON1 expression indexes on the queried fields
// (json_extract(doc,'$.bucket'), json_extract(doc,'$.score')). Every transaction runs
// prepared statements that are prepared once and reset. SQLite allows one writer at a
// time: the suite's writers share one connection under a mutex (rather than busy-waiting
// on SQLITE_BUSY with a connection each, which is slower). Each read view is its own
// connection holding an open read transaction.
#include "engine.hpp"
#include "suite_util.hpp"

#include <sqlite3.h>

#include <mutex>

namespace bench {
namespace {

[[noreturn]] void fail(sqlite3* db, const char* what) {
  throw failure(std::string("sqlite ") + what + ": " + (db ? sqlite3_errmsg(db) : "out of memory"));
}

void exec(sqlite3* db, const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = std::string("sqlite exec '") + sql + "': " + (err ? err : "?");
    sqlite3_free(err);
    throw failure(msg);
  }
}

sqlite3* open_connection(const std::string& path) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr) !=
      SQLITE_OK) {
    std::string msg = std::string("sqlite open: ") + (db ? sqlite3_errmsg(db) : "out of memory");
    sqlite3_close(db);
    throw failure(msg);
  }
  sqlite3_busy_timeout(db, 60000);
  exec(db, "PRAGMA journal_mode=WAL");
  exec(db, "PRAGMA synchronous=FULL");
  // The default page cache (2 MiB) thrashes on the random-order expression-index inserts
  // of a 1M-document load; 256 MiB keeps the indexes' interior pages resident. It changes
  // nothing about durability.
  exec(db, "PRAGMA cache_size=-262144");
  return db;
}

// A prepared statement, reset after every use.
class statement {
 public:
  statement(sqlite3* db, const char* sql) : db_(db) {
    if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st_, nullptr) != SQLITE_OK) fail(db, sql);
  }
  ~statement() { sqlite3_finalize(st_); }
  statement(const statement&) = delete;
  statement& operator=(const statement&) = delete;
  sqlite3_stmt* get() const { return st_; }
  void text(int i, std::string_view s) { sqlite3_bind_text(st_, i, s.data(), static_cast<int>(s.size()), SQLITE_STATIC); }
  // Runs a statement that returns no rows.
  void run() {
    const int rc = sqlite3_step(st_);
    sqlite3_reset(st_);
    if (rc != SQLITE_DONE) fail(db_, "step");
  }
  sqlite3* db() const { return db_; }

 private:
  sqlite3* db_;
  sqlite3_stmt* st_ = nullptr;
};

constexpr const char* eq_sql =
    "SELECT id, doc FROM docs WHERE json_extract(doc,'$.bucket') = ?1 ORDER BY id LIMIT ?2";
constexpr const char* range_by_id_sql =
    "SELECT id, doc FROM docs WHERE json_extract(doc,'$.score') >= ?1 AND json_extract(doc,'$.score') < ?2 "
    "ORDER BY id LIMIT ?3";
constexpr const char* range_by_score_sql =
    "SELECT id, doc FROM docs WHERE json_extract(doc,'$.score') >= ?1 AND json_extract(doc,'$.score') < ?2 "
    "ORDER BY json_extract(doc,'$.score'), id LIMIT ?3";

class sqlite_view final : public reader {
 public:
  explicit sqlite_view(const std::string& path) : db_(open_connection(path)) {
    get_ = std::make_unique<statement>(db_, "SELECT doc FROM docs WHERE id = ?1");
    eq_ = std::make_unique<statement>(db_, eq_sql);
    range_id_ = std::make_unique<statement>(db_, range_by_id_sql);
    range_score_ = std::make_unique<statement>(db_, range_by_score_sql);
    begin_ = std::make_unique<statement>(db_, "BEGIN");
    commit_ = std::make_unique<statement>(db_, "COMMIT");
    start();
  }
  ~sqlite_view() override {
    commit_->run();
    get_.reset(), eq_.reset(), range_id_.reset(), range_score_.reset(), begin_.reset(), commit_.reset();
    sqlite3_close(db_);
  }

  bool get(std::string_view id, std::uint64_t& sink) override {
    auto* st = get_->get();
    get_->text(1, id);
    const int rc = sqlite3_step(st);
    bool found = false;
    if (rc == SQLITE_ROW) {
      const auto* p = static_cast<const unsigned char*>(sqlite3_column_blob(st, 0));
      const int n = sqlite3_column_bytes(st, 0);
      sink += static_cast<std::uint64_t>(n) + (n ? p[n - 1] : 0u);
      found = true;
    } else if (rc != SQLITE_DONE) {
      sqlite3_reset(st);
      fail(db_, "get");
    }
    sqlite3_reset(st);
    return found;
  }

  query_answer query(const query_request& q, std::uint64_t& sink) override {
    statement& s = q.shape == query_shape::eq_by_id || q.shape == query_shape::eq_by_id_top ? *eq_
                   : q.shape == query_shape::range_by_id                                    ? *range_id_
                                                                                            : *range_score_;
    auto* st = s.get();
    if (&s == eq_.get()) {
      sqlite3_bind_int64(st, 1, q.bucket);
      sqlite3_bind_int(st, 2, q.limit);
    } else {
      sqlite3_bind_double(st, 1, q.low);
      sqlite3_bind_double(st, 2, q.high);
      sqlite3_bind_int(st, 3, q.limit);
    }
    query_answer a;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
      const auto* id = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
      const int id_n = sqlite3_column_bytes(st, 0);
      const auto* doc = static_cast<const unsigned char*>(sqlite3_column_blob(st, 1));
      const int n = sqlite3_column_bytes(st, 1);
      sink += static_cast<std::uint64_t>(n) + (n ? doc[n - 1] : 0u);
      fingerprint_add(a, std::string_view(id, static_cast<std::size_t>(id_n)));
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) fail(db_, "query");
    return a;
  }

  void refresh() override {
    commit_->run();
    start();
  }

 private:
  // A deferred BEGIN takes its snapshot at the first read: read once so the view is fixed now.
  void start() {
    begin_->run();
    std::uint64_t ignored = 0;
    get("", ignored);
  }
  sqlite3* db_;
  std::unique_ptr<statement> get_, eq_, range_id_, range_score_, begin_, commit_;
};

class sqlite_engine final : public engine {
 public:
  ~sqlite_engine() override { close(); }
  std::string name() const override { return "sqlite"; }

  void open(const std::string& dir, bool create, bool indexed) override {
    // Readers and writers use their connections from several threads (engine.hpp).
    if (!sqlite3_threadsafe()) throw failure("sqlite: this library was built with SQLITE_THREADSAFE=0");
    if (create) make_dir(dir);
    path_ = dir + "/docs.sqlite";
    db_ = open_connection(path_);
    if (create) {
      exec(db_, "CREATE TABLE IF NOT EXISTS docs(id TEXT PRIMARY KEY NOT NULL, doc TEXT NOT NULL) WITHOUT ROWID");
      if (indexed) {
        exec(db_, "CREATE INDEX IF NOT EXISTS docs_bucket ON docs(json_extract(doc,'$.bucket'))");
        exec(db_, "CREATE INDEX IF NOT EXISTS docs_score ON docs(json_extract(doc,'$.score'))");
      }
    }
    insert_ = std::make_unique<statement>(db_, "INSERT INTO docs(id, doc) VALUES(?1, ?2)");
    update_ = std::make_unique<statement>(db_, "UPDATE docs SET doc = ?2 WHERE id = ?1");
    begin_ = std::make_unique<statement>(db_, "BEGIN IMMEDIATE");
    commit_ = std::make_unique<statement>(db_, "COMMIT");
  }

  void insert(const document& d) override { one(*insert_, d); }
  void update(const document& d) override { one(*update_, d); }
  void insert_batch(const std::vector<document>& docs, std::size_t begin, std::size_t end) override {
    std::lock_guard lock(mu_);
    begin_->run();
    for (std::size_t i = begin; i < end; ++i) {
      insert_->text(1, docs[i].id);
      insert_->text(2, docs[i].json);
      insert_->run();
    }
    commit_->run();
  }
  std::unique_ptr<reader> read() override { return std::make_unique<sqlite_view>(path_); }
  void close() override {
    insert_.reset(), update_.reset(), begin_.reset(), commit_.reset();
    if (db_) sqlite3_close(db_);
    db_ = nullptr;
  }

 private:
  // One statement in its own transaction (autocommit is a transaction of one statement).
  void one(statement& s, const document& d) {
    std::lock_guard lock(mu_);
    s.text(1, d.id);
    s.text(2, d.json);
    s.run();
  }

  std::string path_;
  sqlite3* db_ = nullptr;
  std::mutex mu_;  // one writer at a time on the shared connection
  std::unique_ptr<statement> insert_, update_, begin_, commit_;
};

}  // namespace

std::unique_ptr<engine> make_sqlite() { return std::make_unique<sqlite_engine>(); }

std::string sqlite_build_facts() {
  std::string facts = std::string("SQLite ") + sqlite3_libversion() +
                      " (Debian libsqlite3-dev); journal_mode=WAL, synchronous=FULL, default page size, cache_size 256 MiB per connection, "
                      "WITHOUT ROWID table (id TEXT PRIMARY KEY, doc TEXT), JSON1 expression indexes on "
                      "json_extract(doc,'$.bucket') and json_extract(doc,'$.score'); prepared statements reused; "
                      "THREADSAFE=" + std::to_string(sqlite3_threadsafe());
  return facts;
}

}  // namespace bench
