// Real process kills: no simulated file system, no simulated crash.
//
// Each round forks a child that opens a real directory (posix file system, real fsync)
// with the accelerated engine (group commit) and runs several writer threads: single
// inserts, updates and deletes, and atomic multi-document batches across two collections;
// in some rounds another thread takes checkpoints and runs GC. Before each commit a writer
// reports its intent to the parent through a pipe, and after the commit returns it
// reports the acknowledgment with its CommitId, each report one fixed-size write() of at
// most PIPE_BUF bytes (so reports never interleave). The parent sends SIGKILL at a random
// moment (fixed seed; spread over startup and recovery, normal writing, and checkpoints),
// reaps the child, reads every report, recovers the directory and checks that:
//   - every acknowledged commit is there with its exact content and CommitId;
//   - the recovered state is exactly the state after commits 1..L of the commit order,
//     for the recovered last CommitId L: each commit that was in flight (intent without
//     acknowledgment; at most one per writer) is present whole or absent whole, and no
//     CommitId up to L is unexplained (which would be a commit missing from the prefix);
//   - a second recovery, by the other engine, finds the same state.
// The next round's child recovers the same directory, so later rounds recover from
// earlier kills, including kills during recovery.
//
// How the parent knows a commit's content: every key belongs to one writer thread (only
// that thread writes it), and a document's content is a function of (collection, thread,
// key, the thread's sequence number). So the recovered content of a key says which of its
// writes it holds, and a thread's in-flight commit is decided by looking at its keys.
//
// 150 kills at AERODB_SCALE=1, scaled down by AERODB_SCALE but never below 50; 400 with
// AERODB_LONG=1. SIGKILL leaves the page cache intact, so it cannot tear a write: torn
// tails and lost unsynced data are the fault-injection crash sweeps' business.
#include "support/common.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

using namespace aerodb;
using namespace aerodb_test;

namespace {

constexpr int max_threads = 8;
constexpr int keys_per_thread = 16;                        // per collection
constexpr std::array<const char*, 2> collections{"a", "b"};
constexpr std::size_t max_batch_ops = 5;
constexpr std::uint32_t record_magic = 0xAE50D1E5u;

const char* kv_schema = R"({"id":"kv","version":1,"fields":{
  "_id":{"type":"string","required":true},
  "t":{"type":"int","required":true},
  "s":{"type":"int","required":true},
  "p":{"type":"string","required":true}}})";

// ---- what the child reports -------------------------------------------------------------

enum class report_kind : std::uint8_t {
  ready = 1,         // the database is open (recovery is over)
  intent,            // a writer is about to commit `ops` as its commit number `seq`
  ack,               // ... and that commit returned `id`
  gc_begin,
  gc_end,            // id: the GC record's CommitId, 0 when there was nothing to collect
  checkpoint_begin,
  checkpoint_end,    // id: the checkpoint's boundary
  metrics,           // id: groups, extra[0]: commits in groups, extra[1]: largest group
  failure,           // text: what went wrong; the child exits right after
};

enum class op_kind : std::uint8_t { insert = 1, update, remove };

struct wire_op {
  std::uint8_t collection;
  op_kind kind;
  std::uint16_t key;
};

struct report {
  std::uint32_t magic;
  report_kind kind;
  std::uint8_t thread;
  std::uint8_t n_ops;
  std::uint8_t unused;
  std::uint64_t seq;
  std::uint64_t id;
  std::uint64_t extra[2];
  wire_op ops[max_batch_ops];
  char text[160];
};
// One write() of at most PIPE_BUF bytes to a pipe is atomic: reports from several threads
// never interleave, and a report written before the kill is read whole.
static_assert(sizeof(report) <= PIPE_BUF);
static_assert(std::is_trivially_copyable_v<report>);

// ---- the workload's content -------------------------------------------------------------

std::string key_name(int thread, int key) {
  return "t" + std::to_string(thread) + "-k" + std::to_string(key);
}

std::uint64_t mix(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// The document that commit `seq` of `thread` writes to (collection, key).
std::string doc_json(int collection, int thread, int key, std::uint64_t seq) {
  std::uint64_t h = mix(mix(mix(static_cast<std::uint64_t>(collection)) ^ static_cast<std::uint64_t>(thread)) ^
                        (static_cast<std::uint64_t>(key) << 20) ^ (seq << 8));
  std::string pad(static_cast<std::size_t>(h % 150), 'x');
  for (auto& ch : pad) {
    ch = static_cast<char>('a' + (h % 26));
    h = mix(h);
  }
  return R"({"_id":")" + key_name(thread, key) + R"(","t":)" + std::to_string(thread) +
         R"(,"s":)" + std::to_string(seq) + R"(,"p":")" + pad + R"("})";
}

// ---- state shared by parent and child (the child gets it through fork) ------------------

struct model_doc {
  std::string json;
  commit_id at = 0;
};
// collection -> _id -> document
using model = std::map<std::string, std::map<std::string, model_doc>>;

struct campaign {
  std::string dir;
  open_options options;
  model state;                 // the directory's visible state, as last verified
  commit_id last = 0;          // and its last CommitId
  std::array<std::uint64_t, max_threads> next_seq{};
};

struct round_plan {
  int threads = 4;
  bool maintenance = false;    // a thread takes checkpoints and runs GC
  int commits_per_thread = 0;  // then the writer stops (the child waits to be killed)
  std::uint64_t seed = 0;
};

// ---- the child --------------------------------------------------------------------------

class reporter {
 public:
  explicit reporter(int fd) : fd_(fd) {}
  void send(report r) const {
    r.magic = record_magic;
    if (::write(fd_, &r, sizeof r) != static_cast<ssize_t>(sizeof r)) ::_exit(4);
  }
  [[noreturn]] void fail(const std::string& what) const {
    report r{};
    r.kind = report_kind::failure;
    std::snprintf(r.text, sizeof r.text, "%s", what.c_str());
    send(r);
    ::_exit(2);
  }

 private:
  int fd_;
};

void writer(accelerated_database& db, const reporter& out, const campaign& c, const round_plan& p,
            int thread, std::atomic<int>& writers_done) {
  std::mt19937_64 rng(p.seed * 7919 + static_cast<std::uint64_t>(thread));
  std::array<std::array<bool, keys_per_thread>, collections.size()> exists{};
  for (std::size_t col = 0; col < collections.size(); ++col)
    for (int k = 0; k < keys_per_thread; ++k)
      exists[col][static_cast<std::size_t>(k)] = c.state.at(collections[col]).count(key_name(thread, k)) > 0;
  std::uint64_t seq = c.next_seq[static_cast<std::size_t>(thread)];
  for (int i = 0; i < p.commits_per_thread; ++i, ++seq) {
    const std::size_t n = rng() % 6 == 0 ? 2 + rng() % (max_batch_ops - 1) : 1;
    report intent{};
    intent.kind = report_kind::intent;
    intent.thread = static_cast<std::uint8_t>(thread);
    intent.seq = seq;
    std::set<std::pair<int, int>> chosen;
    write_batch batch;
    while (chosen.size() < n) {
      const int col = static_cast<int>(rng() % collections.size());
      const int key = static_cast<int>(rng() % keys_per_thread);
      if (!chosen.insert({col, key}).second) continue;
      const bool present = exists[static_cast<std::size_t>(col)][static_cast<std::size_t>(key)];
      const op_kind kind = !present ? op_kind::insert : rng() % 10 < 7 ? op_kind::update : op_kind::remove;
      intent.ops[intent.n_ops++] = {static_cast<std::uint8_t>(col), kind, static_cast<std::uint16_t>(key)};
      const std::string json = doc_json(col, thread, key, seq);
      switch (kind) {
        case op_kind::insert: batch.insert(collections[static_cast<std::size_t>(col)], 1, json); break;
        case op_kind::update: batch.update(collections[static_cast<std::size_t>(col)], key_name(thread, key), 1, json); break;
        case op_kind::remove: batch.remove(collections[static_cast<std::size_t>(col)], key_name(thread, key)); break;
      }
    }
    out.send(intent);
    commit_id id = 0;
    if (n == 1) {
      // Single operations go through the single-operation calls.
      const auto& op = batch.ops().front();
      const wire_op w = intent.ops[0];
      if (w.kind == op_kind::insert) {
        auto r = db.insert(op.collection, 1, op.json);
        if (!r) out.fail("insert: " + r.error_value().to_string());
        id = *r;
      } else if (w.kind == op_kind::update) {
        auto r = db.update(op.collection, op.doc_id, 1, op.json);
        if (!r) out.fail("update: " + r.error_value().to_string());
        id = *r;
      } else {
        auto r = db.remove(op.collection, op.doc_id);
        if (!r) out.fail("remove: " + r.error_value().to_string());
        if (!r->deleted) out.fail("remove of " + op.doc_id + " found nothing to delete");
        id = r->commit;
      }
    } else {
      auto r = db.commit(batch);
      if (!r) out.fail("batch: " + r.error_value().to_string());
      for (bool applied : r->applied)
        if (!applied) out.fail("a batch operation was a no-op");
      id = r->commit;
    }
    report ack{};
    ack.kind = report_kind::ack;
    ack.thread = static_cast<std::uint8_t>(thread);
    ack.seq = seq;
    ack.id = id;
    out.send(ack);
    for (std::size_t j = 0; j < n; ++j)
      exists[intent.ops[j].collection][intent.ops[j].key] = intent.ops[j].kind != op_kind::remove;
  }
  ++writers_done;
}

void maintenance(accelerated_database& db, const reporter& out, const round_plan& p,
                 const std::atomic<int>& writers_done) {
  std::mt19937_64 rng(p.seed * 104729 + 1);
  while (writers_done.load() < p.threads) {
    std::this_thread::sleep_for(std::chrono::microseconds(1000 + rng() % 15000));
    report r{};
    if (rng() % 3 != 0) {
      r.kind = report_kind::checkpoint_begin;
      out.send(r);
      auto c = db.checkpoint();
      if (!c) out.fail("checkpoint: " + c.error_value().to_string());
      r.kind = report_kind::checkpoint_end;
      r.id = c->commit;
      out.send(r);
    } else {
      // A read view held across the GC pins its floor while the writers go on, so the
      // GC has both versions to free and superseded versions it must keep.
      auto view = db.read();
      r.kind = report_kind::gc_begin;
      out.send(r);
      auto g = db.gc();
      if (!g) out.fail("gc: " + g.error_value().to_string());
      r.kind = report_kind::gc_end;
      r.id = g->record;
      out.send(r);
    }
  }
}

// Never returns: ends by SIGKILL (or _exit after reporting a failure). Uses no doctest.
[[noreturn]] void child_main(int fd, const campaign& c, const round_plan& p) {
  try {
    const reporter out(fd);
    auto opened = accelerated_database::open(c.dir, c.options);
    if (!opened) out.fail("open: " + opened.error_value().to_string());
    accelerated_database& db = **opened;
    report ready{};
    ready.kind = report_kind::ready;
    ready.id = db.last_commit_id();
    out.send(ready);
    std::atomic<int> writers_done{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < p.threads; ++t)
      threads.emplace_back([&, t] { writer(db, out, c, p, t, writers_done); });
    if (p.maintenance) threads.emplace_back([&] { maintenance(db, out, p, writers_done); });
    for (;;) {
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
      const auto m = db.metrics();
      report r{};
      r.kind = report_kind::metrics;
      r.id = m.group_commit_groups;
      r.extra[0] = m.group_commit_size_sum;
      r.extra[1] = m.group_commit_size_max;
      out.send(r);
    }
  } catch (const std::exception& e) {
    reporter(fd).fail(std::string("exception: ") + e.what());
  } catch (...) {
    reporter(fd).fail("unknown exception");
  }
}

// ---- the parent -------------------------------------------------------------------------

using steady = std::chrono::steady_clock;

// What the parent learned from one child's reports.
struct round_log {
  bool ready = false;
  std::map<int, std::map<std::uint64_t, std::vector<wire_op>>> intents;  // thread -> seq -> ops
  std::map<int, std::map<std::uint64_t, commit_id>> acks;                // thread -> seq -> id
  std::vector<commit_id> gc_records;   // acknowledged GC records (nonzero only)
  int gc_begun = 0, gc_done = 0;
  int checkpoints_begun = 0, checkpoints_done = 0;
  std::optional<steady::time_point> checkpoint_started;
  std::chrono::nanoseconds longest_checkpoint{0};
  std::uint64_t groups = 0, grouped_commits = 0, largest_group = 0;
  std::string failure;
  std::string protocol_error;

  void take(const report& r) {
    if (r.magic != record_magic) {
      protocol_error = "a report with a bad magic number";
      return;
    }
    switch (r.kind) {
      case report_kind::ready: ready = true; break;
      case report_kind::intent:
        intents[r.thread][r.seq] = std::vector<wire_op>(r.ops, r.ops + r.n_ops);
        break;
      case report_kind::ack:
        if (!intents[r.thread].count(r.seq)) protocol_error = "an acknowledgment without an intent";
        acks[r.thread][r.seq] = r.id;
        break;
      case report_kind::gc_begin: ++gc_begun; break;
      case report_kind::gc_end:
        ++gc_done;
        if (r.id) gc_records.push_back(r.id);
        break;
      case report_kind::checkpoint_begin:
        ++checkpoints_begun;
        checkpoint_started = steady::now();
        break;
      case report_kind::checkpoint_end:
        ++checkpoints_done;
        if (checkpoint_started)
          longest_checkpoint = std::max<std::chrono::nanoseconds>(longest_checkpoint, steady::now() - *checkpoint_started);
        break;
      case report_kind::metrics:
        groups = r.id;
        grouped_commits = r.extra[0];
        largest_group = r.extra[1];
        break;
      case report_kind::failure: failure = std::string(r.text, strnlen(r.text, sizeof r.text)); break;
      default: protocol_error = "a report of unknown kind"; break;
    }
  }
  std::size_t acknowledged() const {
    std::size_t n = 0;
    for (const auto& [t, a] : acks) n += a.size();
    return n;
  }
};

// Reads whole reports from the pipe's read end.
class report_reader {
 public:
  explicit report_reader(int fd) : fd_(fd) {}
  // Waits until `until` for data; false once the pipe is at EOF.
  bool pump(round_log& seen, std::optional<steady::time_point> until) {
    if (until) {
      const auto left = std::max<steady::duration>(steady::duration::zero(), *until - steady::now());
      const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(left).count();
      timespec ts{static_cast<time_t>(ns / 1'000'000'000), static_cast<long>(ns % 1'000'000'000)};
      pollfd pfd{fd_, POLLIN, 0};
      const int rc = ::ppoll(&pfd, 1, &ts, nullptr);
      if (rc <= 0) return true;  // timeout (or EINTR): the caller looks at the clock
    }
    char chunk[16384];
    const ssize_t n = ::read(fd_, chunk, sizeof chunk);
    if (n == 0) return false;
    if (n < 0) return errno == EINTR;
    pending_.insert(pending_.end(), chunk, chunk + n);
    std::size_t used = 0;
    while (pending_.size() - used >= sizeof(report)) {
      report r;
      std::memcpy(&r, pending_.data() + used, sizeof r);
      seen.take(r);
      used += sizeof r;
    }
    pending_.erase(pending_.begin(), pending_.begin() + static_cast<std::ptrdiff_t>(used));
    return true;
  }
  bool clean_end() const { return pending_.empty(); }

 private:
  int fd_;
  std::vector<char> pending_;
};

// Kills and reaps the child if a check fails while it lives.
struct child_guard {
  pid_t pid = -1;
  ~child_guard() {
    if (pid > 0) {
      ::kill(pid, SIGKILL);
      int st = 0;
      ::waitpid(pid, &st, 0);
    }
  }
};

bool same_json(const std::string& a, const std::string& b) {
  return boost::json::parse(a) == boost::json::parse(b);
}

struct recovered {
  commit_id last = 0;
  model state;
  bool torn_tail = false;
};

template <class Db>
recovered recover_with(const campaign& c) {
  auto db = Db::open(c.dir, c.options);
  if (!db) FAIL("recovery failed: " << db.error_value().to_string());
  recovered out;
  out.last = (*db)->last_commit_id();
  out.torn_tail = (*db)->recovery().torn_tail.has_value();
  auto view = (*db)->read();
  for (const std::string col : collections) {
    auto& m = out.state[col];
    auto n = view.for_each(col, [&](const versioned_document& d) {
      if (d.schema_version != 1) FAIL("document " << std::string(d.doc.id()) << " has schema version " << d.schema_version);
      m[std::string(d.doc.id())] = {d.doc.to_json_string(), d.committed_at};
    });
    if (!n) FAIL("collection " << col << " is missing: " << n.error_value().to_string());
  }
  return out;
}

std::string describe(const std::optional<model_doc>& d) {
  return d ? d->json + " @" + std::to_string(d->at) : std::string("(absent)");
}

std::optional<model_doc> lookup(const model& m, const std::string& col, const std::string& id) {
  auto c = m.find(col);
  if (c == m.end()) return std::nullopt;
  auto d = c->second.find(id);
  if (d == c->second.end()) return std::nullopt;
  return d->second;
}

void apply(model& m, int thread, std::uint64_t seq, const std::vector<wire_op>& ops, commit_id at) {
  for (const auto& op : ops) {
    auto& docs = m[collections[op.collection]];
    const std::string id = key_name(thread, op.key);
    if (op.kind == op_kind::remove) docs.erase(id);
    else docs[id] = {doc_json(op.collection, thread, op.key, seq), at};
  }
}

struct check_stats {
  std::uint64_t acks_checked = 0;
  std::uint64_t in_flight_present = 0, in_flight_absent = 0;
};

// The recovered state must be the state after a prefix 1..L of the commit order that holds
// every acknowledged commit. Updates `c` to the verified state.
void check_round(campaign& c, const round_log& seen, const recovered& got, check_stats& stats) {
  const commit_id l0 = c.last;
  const commit_id l = got.last;
  REQUIRE_MESSAGE(l >= l0, "the last CommitId went back from " << l0 << " to " << l);

  // Every acknowledged commit, and the CommitIds known to be taken.
  model expected = c.state;
  std::map<commit_id, std::pair<int, std::uint64_t>> by_id;  // data commits: id -> (thread, seq)
  std::set<commit_id> known_ids;
  // (Plain variables rather than structured bindings below: clang 14 cannot capture a
  // binding in the lambdas the REQUIRE macros expand to.)
  for (const auto& thread_acks : seen.acks) {
    const int t = thread_acks.first;
    commit_id prev = 0;
    for (const auto& ack : thread_acks.second) {
      const std::uint64_t seq = ack.first;
      const commit_id id = ack.second;
      REQUIRE_MESSAGE(id > prev, "thread " << t << "'s commits were acknowledged out of order");
      prev = id;
      REQUIRE_MESSAGE(id > l0, "acknowledged commit " << id << " is not newer than the recovered start " << l0);
      REQUIRE_MESSAGE(id <= l, "acknowledged commit " << id << " (thread " << t << ", seq " << seq
                                                        << ") is lost: recovery ends at CommitId " << l);
      REQUIRE_MESSAGE(known_ids.insert(id).second, "CommitId " << id << " acknowledged twice");
      by_id[id] = {t, seq};
    }
  }
  for (commit_id id : seen.gc_records) {
    REQUIRE_MESSAGE((id > l0 && id <= l), "acknowledged GC record " << id << " is lost (recovered up to " << l << ")");
    REQUIRE_MESSAGE(known_ids.insert(id).second, "GC CommitId " << id << " also acknowledged for a write");
  }
  for (const auto& [id, who] : by_id)
    apply(expected, who.first, who.second, seen.intents.at(who.first).at(who.second), id);
  stats.acks_checked += by_id.size();

  // The commits in flight: at most one per writer, its last intent without acknowledgment.
  std::uint64_t unknown_ids = 0;  // present in-flight commits that were deletes only
  for (const auto& thread_intents : seen.intents) {
    const int t = thread_intents.first;
    const auto& intents = thread_intents.second;
    const auto acks_it = seen.acks.find(t);
    std::vector<std::uint64_t> open;
    for (const auto& [seq, ops] : intents)
      if (acks_it == seen.acks.end() || !acks_it->second.count(seq)) open.push_back(seq);
    if (open.empty()) continue;
    REQUIRE_MESSAGE(open.size() == 1, "thread " << t << " had " << open.size() << " commits in flight");
    const std::uint64_t seq = open.front();
    REQUIRE_MESSAGE(seq == intents.rbegin()->first, "thread " << t << "'s unacknowledged commit is not its last");
    const auto& ops = intents.at(seq);
    model if_present = expected;
    apply(if_present, t, seq, ops, 0);
    std::optional<bool> present;
    std::optional<commit_id> id;
    for (const auto& op : ops) {
      const std::string col = collections[op.collection];
      const std::string key = key_name(t, op.key);
      const auto now = lookup(got.state, col, key);
      const auto before = lookup(expected, col, key);
      const auto after = lookup(if_present, col, key);
      auto matches = [&](const std::optional<model_doc>& want) {
        return now.has_value() == want.has_value() && (!now || same_json(now->json, want->json));
      };
      bool this_present;
      if (matches(after)) this_present = true;
      else if (matches(before)) this_present = false;
      else
        FAIL("key " << col << "/" << key << " holds " << describe(now) << ", which is neither the state before ("
                    << describe(before) << ") nor after (" << describe(after) << ") thread " << t
                    << "'s in-flight commit " << seq);
      if (present && *present != this_present)
        FAIL("half of thread " << t << "'s in-flight batch " << seq << " survived (key " << col << "/" << key << ")");
      present = this_present;
      if (this_present && now) {
        if (id && *id != now->at) FAIL("one batch recovered under two CommitIds " << *id << " and " << now->at);
        id = now->at;
      }
    }
    if (!*present) {
      ++stats.in_flight_absent;
      continue;
    }
    ++stats.in_flight_present;
    if (id) {
      REQUIRE_MESSAGE((*id > l0 && *id <= l), "in-flight commit recovered with CommitId " << *id << " outside (" << l0 << ", " << l << "]");
      REQUIRE_MESSAGE(known_ids.insert(*id).second, "in-flight commit recovered with the CommitId " << *id << " of another commit");
      if (acks_it != seen.acks.end() && !acks_it->second.empty())
        REQUIRE_MESSAGE(*id > acks_it->second.rbegin()->second, "thread " << t << "'s in-flight commit got an older CommitId than its acknowledged ones");
    } else {
      ++unknown_ids;
    }
    apply(expected, t, seq, ops, id.value_or(0));
  }

  // The prefix: every CommitId in (l0, l] belongs to a commit that is present. Those not
  // identified above are present deletes-only commits (no content shows their id) or an
  // in-flight GC record.
  const std::uint64_t unexplained = (l - l0) - known_ids.size();
  const std::uint64_t gc_in_flight = seen.gc_begun > seen.gc_done ? 1 : 0;
  REQUIRE_MESSAGE(unexplained >= unknown_ids, "fewer CommitIds than present commits in (" << l0 << ", " << l << "]");
  REQUIRE_MESSAGE(unexplained <= unknown_ids + gc_in_flight,
                  (unexplained - unknown_ids) << " CommitId(s) in (" << l0 << ", " << l
                                            << "] belong to no commit the child made: the recovered state is not a prefix");

  // The whole state, key by key.
  for (const std::string col : collections) {
    const auto& want = expected[col];
    const auto& have = got.state.at(col);
    for (const auto& [id, doc] : want) {
      auto it = have.find(id);
      if (it == have.end()) FAIL("document " << col << "/" << id << " " << describe(doc) << " is missing after recovery");
      if (!same_json(it->second.json, doc.json))
        FAIL("document " << col << "/" << id << " is " << describe(it->second) << ", expected " << describe(doc));
      if (doc.at != 0 && it->second.at != doc.at)
        FAIL("document " << col << "/" << id << " was committed at " << it->second.at << ", expected " << doc.at);
    }
    for (const auto& [id, doc] : have)
      if (!want.count(id)) FAIL("document " << col << "/" << id << " " << describe(doc) << " should not exist");
  }

  c.state = got.state;
  c.last = l;
  for (const auto& [t, intents] : seen.intents)
    c.next_seq[static_cast<std::size_t>(t)] = intents.rbegin()->first + 1;
}

// Where the kills of a run land, and what they found.
struct kill_stats {
  std::uint64_t kills = 0, before_ready = 0, during_checkpoint = 0, during_gc = 0, with_writes_in_flight = 0;
  std::uint64_t acknowledged = 0, grouped_rounds = 0, largest_group = 0, torn_tails = 0;
  std::uint64_t checkpoints = 0, gc_records = 0;
};

std::string make_run_dir() {
  const char* base = std::getenv("AERODB_BUILD_ROOT");
  if (!base || !*base) base = std::getenv("TMPDIR");
  if (!base || !*base) base = "/tmp";
  std::string templ = std::string(base) + "/aerodb-kill-XXXXXX";
  if (!::mkdtemp(templ.data())) FAIL("mkdtemp failed under " << base << ": " << std::strerror(errno));
  return templ;
}

struct dir_cleanup {
  std::string path;
  ~dir_cleanup() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

}  // namespace

TEST_CASE("SIGKILL at random moments loses no acknowledged commit and recovers a prefix") {
  const bool long_run = std::getenv("AERODB_LONG") != nullptr;
  const int rounds = long_run ? 400 : std::max(50, static_cast<int>(150 * test_scale()));
  const auto started = steady::now();

  const std::string root = make_run_dir();
  const dir_cleanup cleanup{root};
  campaign c;
  c.dir = root + "/db";
  c.options.wal_segment_bytes = 64 * 1024;  // segments rotate, and checkpoints remove some
  {
    auto db = open_or_fail<database>(c.dir, c.options);
    REQUIRE(db->register_schema(kv_schema));
    for (const char* col : collections) REQUIRE(db->create_collection(col, "kv"));
    REQUIRE(db->create_index("a", "s"));
    c.last = db->last_commit_id();
  }
  for (const char* col : collections) c.state[col];

  std::mt19937_64 rng(20240611);
  kill_stats ks;
  check_stats cs;
  std::chrono::nanoseconds checkpoint_estimate = std::chrono::milliseconds(3);
  for (int round_no = 0; round_no < rounds; ++round_no) {
    round_plan plan;
    plan.threads = 4 + static_cast<int>(rng() % 5);
    plan.maintenance = rng() % 2 == 0;
    plan.commits_per_thread = 400;
    plan.seed = rng();
    // Where this kill aims: startup and recovery, a checkpoint, or plain writing.
    const unsigned aim = static_cast<unsigned>(rng() % 100);
    const std::uint64_t r1 = rng(), r2 = rng();

    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    std::fflush(stdout);
    std::fflush(stderr);
    child_guard child;
    const steady::time_point forked = steady::now();
    child.pid = ::fork();
    REQUIRE(child.pid >= 0);
    if (child.pid == 0) {
      ::close(fds[0]);
      child_main(fds[1], c, plan);
    }
    ::close(fds[1]);
    report_reader reader(fds[0]);
    round_log seen;
    std::optional<steady::time_point> deadline;
    if (aim < 15) {
      deadline = forked + std::chrono::microseconds(r1 % 4000);
    }
    const steady::time_point give_up = forked + std::chrono::seconds(30);
    bool open = true;
    while (open) {
      const auto now = steady::now();
      if (deadline && now >= *deadline) break;
      REQUIRE_MESSAGE(now < give_up, "round " << round_no << ": the child made no progress (ready: " << seen.ready << ")");
      if (!deadline && seen.ready) {
        if (plan.maintenance && aim < 50) {
          // Kill somewhere inside a checkpoint, once one starts (or give up after 400 ms).
          if (seen.checkpoint_started)
            deadline = *seen.checkpoint_started +
                       std::chrono::nanoseconds(r2 % static_cast<std::uint64_t>(checkpoint_estimate.count()));
          else if (now - forked > std::chrono::milliseconds(400))
            deadline = now;
        } else {
          deadline = now + std::chrono::microseconds(r2 % 150'000);
        }
      }
      open = reader.pump(seen, deadline ? deadline : std::optional(now + std::chrono::milliseconds(5)));
    }
    ::kill(child.pid, SIGKILL);
    int status = 0;
    REQUIRE(::waitpid(child.pid, &status, 0) == child.pid);
    child.pid = -1;
    while (reader.pump(seen, std::nullopt)) {}
    ::close(fds[0]);
    INFO("round " << round_no << ": " << plan.threads << " writers, maintenance " << plan.maintenance);
    REQUIRE_MESSAGE(seen.failure.empty(), "the child failed: " << seen.failure);
    REQUIRE_MESSAGE((WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL),
                    "the child ended by itself, status " << status);
    REQUIRE_MESSAGE(seen.protocol_error.empty(), seen.protocol_error);
    REQUIRE(reader.clean_end());

    ++ks.kills;
    if (!seen.ready) ++ks.before_ready;
    if (seen.checkpoints_begun > seen.checkpoints_done) ++ks.during_checkpoint;
    if (seen.gc_begun > seen.gc_done) ++ks.during_gc;
    ks.checkpoints += static_cast<std::uint64_t>(seen.checkpoints_done);
    ks.gc_records += seen.gc_records.size();
    checkpoint_estimate = std::max(checkpoint_estimate, std::chrono::nanoseconds(seen.longest_checkpoint * 3 / 2));
    ks.acknowledged += seen.acknowledged();
    if (seen.grouped_commits > seen.groups) ++ks.grouped_rounds;
    ks.largest_group = std::max(ks.largest_group, seen.largest_group);
    std::size_t in_flight = 0;
    for (const auto& [t, intents] : seen.intents)
      in_flight += intents.size() - (seen.acks.count(t) ? seen.acks.at(t).size() : 0);
    if (in_flight) ++ks.with_writes_in_flight;

    // Recover with one engine and check; recover again with the other: same state.
    const bool baseline_first = round_no % 2 == 0;
    const recovered first = baseline_first ? recover_with<database>(c) : recover_with<accelerated_database>(c);
    if (first.torn_tail) ++ks.torn_tails;
    check_round(c, seen, first, cs);
    const recovered second = baseline_first ? recover_with<accelerated_database>(c) : recover_with<database>(c);
    REQUIRE(second.last == first.last);
    REQUIRE_MESSAGE(!second.torn_tail, "the first recovery left a torn tail behind");
    for (const std::string col : collections) {
      const auto& a = first.state.at(col);
      const auto& b = second.state.at(col);
      REQUIRE(a.size() == b.size());
      for (const auto& entry : a) {
        const std::string& id = entry.first;
        const model_doc& doc = entry.second;
        auto it = b.find(id);
        REQUIRE_MESSAGE(it != b.end(), "second recovery lost " << col << "/" << id);
        REQUIRE(it->second.json == doc.json);
        REQUIRE(it->second.at == doc.at);
      }
    }
  }
  const double seconds = std::chrono::duration<double>(steady::now() - started).count();
  std::printf("process kill test: %llu kills in %.1f s (%llu before the database was open, %llu during a "
              "checkpoint, %llu during GC, %llu with commits in flight); %llu acknowledged commits checked; "
              "in-flight commits found %llu present, %llu absent; %llu torn tails discarded; "
              "%llu checkpoints and %llu GC records completed; %llu rounds formed commit groups "
              "of more than one (largest %llu); last CommitId %llu\n",
              static_cast<unsigned long long>(ks.kills), seconds, static_cast<unsigned long long>(ks.before_ready),
              static_cast<unsigned long long>(ks.during_checkpoint), static_cast<unsigned long long>(ks.during_gc),
              static_cast<unsigned long long>(ks.with_writes_in_flight),
              static_cast<unsigned long long>(cs.acks_checked), static_cast<unsigned long long>(cs.in_flight_present),
              static_cast<unsigned long long>(cs.in_flight_absent), static_cast<unsigned long long>(ks.torn_tails),
              static_cast<unsigned long long>(ks.checkpoints), static_cast<unsigned long long>(ks.gc_records),
              static_cast<unsigned long long>(ks.grouped_rounds), static_cast<unsigned long long>(ks.largest_group),
              static_cast<unsigned long long>(c.last));
  print_counts({{"campaign", "process-kill"},
                {"kills", ks.kills},
                {"seconds", seconds},
                {"kills_before_open", ks.before_ready},
                {"kills_during_checkpoint", ks.during_checkpoint},
                {"kills_during_gc", ks.during_gc},
                {"kills_with_commits_in_flight", ks.with_writes_in_flight},
                {"acknowledged_checked", cs.acks_checked},
                {"in_flight_present", cs.in_flight_present},
                {"in_flight_absent", cs.in_flight_absent},
                {"torn_tails", ks.torn_tails},
                {"checkpoints", ks.checkpoints},
                {"gc_records", ks.gc_records},
                {"grouped_rounds", ks.grouped_rounds},
                {"largest_group", ks.largest_group},
                {"last_commit_id", c.last}});
  CHECK(ks.kills >= 50);
  CHECK(cs.acks_checked == ks.acknowledged);
  CHECK(ks.grouped_rounds > 0);  // otherwise group commit was never exercised
  CHECK(ks.during_checkpoint > 0);
}
