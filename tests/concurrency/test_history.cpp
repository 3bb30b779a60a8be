// History check: writers, readers, a checkpointer and a garbage collector at once (run
// under ThreadSanitizer in CI). Every thread logs what it did, stamped from one global
// sequence; after the join, one thread replays the log and checks each read view:
//   (a) it covers every commit acknowledged before it was opened;
//   (b) it covers no commit whose call had not yet started when it finished opening;
//   (c) every document, scan and query it answered equals the state built by applying
//       exactly the commits <= its bound, in CommitId order (so a batch is all or nothing);
//   (d) a read repeated later in the same view answers the same, GC and checkpoints
//       having run in between.
// Also: the CommitIds handed out are exactly 1..last (no gap, no reuse), checkpoints obey
// (a) and (b) like views, the last checkpoint's snapshot holds the state at its boundary,
// and recovery finds the final state.
//
// The key space is small on purpose: keys are deleted, reinserted and rewritten often, so
// version chains grow and GC has something to free under the readers' feet.
#include "support/common.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

using namespace aerodb;
using namespace aerodb_test;

namespace {

const char* history_schema = R"({"id":"h","version":1,"fields":{
  "_id":{"type":"string","required":true},
  "v":{"type":"int","required":true},
  "g":{"type":"int","required":true}}})";

constexpr int collection_count = 2;
const char* const collection_names[collection_count] = {"a", "b"};
constexpr int keys_per_collection = 12;
constexpr std::int64_t group_count = 5;  // values of the indexed field "g"

std::string key_name(int key) {
  return std::string(key < 10 ? "k0" : "k") + std::to_string(key);
}

// What one document holds as far as the check is concerned. `v` is unique per write
// (writer and sequence number), so it names the write that produced the version.
struct cell {
  std::int64_t v = 0;
  std::int64_t g = 0;
  commit_id at = 0;
  friend bool operator==(const cell&, const cell&) = default;
};
using slot = std::optional<cell>;  // empty: absent or deleted

std::string describe(const slot& s) {
  if (!s) return "absent";
  return "{v=" + std::to_string(s->v) + ",g=" + std::to_string(s->g) + ",at=" + std::to_string(s->at) + "}";
}

// One write of a commit: a whole new document, or a deletion.
struct write_op {
  int coll = 0;
  int key = 0;
  slot value;  // at == the commit's id once known
};

enum class commit_kind : std::uint8_t { setup, writes, gc };

struct commit_entry {
  std::uint64_t started = 0;  // stamp right before the call
  std::uint64_t acked = 0;    // stamp right after it returned
  commit_id id = 0;
  commit_kind kind = commit_kind::writes;
  std::vector<write_op> writes;
};

struct read_record {
  int coll = 0;
  int key = 0;
  slot got;
};

// A scan (for_each) or a query: the documents in the order returned.
struct listing {
  int coll = 0;
  std::string what;             // the query text, or "scan"
  std::optional<query::query_spec> spec;
  std::vector<std::pair<int, cell>> docs;
};

// The same key read twice in one view, with the GC and checkpoint counters at each read.
struct reread_record {
  int coll = 0;
  int key = 0;
  slot first, second;
  bool across_gc = false, across_checkpoint = false;
};

struct view_record {
  std::uint64_t open_started = 0, open_finished = 0;
  commit_id bound = 0;
  bool latest = true;  // read(); false: read_at(an older bound)
  std::vector<read_record> reads;
  std::vector<listing> listings;
  std::vector<reread_record> rereads;
};

struct checkpoint_record {
  std::uint64_t started = 0, finished = 0;
  commit_id id = 0;
};

// Violations found while running (errors returned by the engine, malformed documents),
// reported after the join with the history violations.
struct problems {
  std::mutex mu;
  std::vector<std::string> list;
  void add(std::string s) {
    std::lock_guard lock(mu);
    list.push_back(std::move(s));
  }
};

std::optional<cell> decode(const versioned_document& d, int expected_coll_keys, int& key_out,
                           std::string& why) {
  const std::string_view id = d.doc.id();
  if (id.size() != 3 || id[0] != 'k') {
    why = "unexpected _id " + std::string(id);
    return std::nullopt;
  }
  key_out = (id[1] - '0') * 10 + (id[2] - '0');
  if (key_out < 0 || key_out >= expected_coll_keys) {
    why = "unexpected _id " + std::string(id);
    return std::nullopt;
  }
  const auto view = d.doc.view();
  const auto v = view.find("v");
  const auto g = view.find("g");
  if (!v || !g || v->kind() != value_kind::integer || g->kind() != value_kind::integer ||
      d.schema_version != 1) {
    why = "malformed document " + d.doc.to_json_string();
    return std::nullopt;
  }
  return cell{v->as_int(), g->as_int(), d.committed_at};
}

// The state of every key as of any bound, from the logged commits.
class history_model {
 public:
  explicit history_model(const std::vector<commit_entry>& by_id) {
    for (const auto& c : by_id)
      for (const auto& w : c.writes) chains_[index(w.coll, w.key)].push_back({c.id, w.value});
  }
  slot at(int coll, int key, commit_id bound) const {
    const auto& chain = chains_[index(coll, key)];
    auto it = std::upper_bound(chain.begin(), chain.end(), bound,
                               [](commit_id b, const auto& e) { return b < e.first; });
    if (it == chain.begin()) return std::nullopt;
    return std::prev(it)->second;
  }
  std::vector<std::pair<int, cell>> collection_at(int coll, commit_id bound) const {
    std::vector<std::pair<int, cell>> out;
    for (int k = 0; k < keys_per_collection; ++k)
      if (auto s = at(coll, k, bound)) out.push_back({k, *s});
    return out;
  }

 private:
  static std::size_t index(int coll, int key) {
    return static_cast<std::size_t>(coll * keys_per_collection + key);
  }
  std::vector<std::vector<std::pair<commit_id, slot>>> chains_ =
      std::vector<std::vector<std::pair<commit_id, slot>>>(
          static_cast<std::size_t>(collection_count * keys_per_collection));
};

// The answer a query must give over `docs` (one collection's state): filter, order by the
// sort field then _id ascending (whatever the direction), cut at the limit.
std::vector<std::pair<int, cell>> expected_answer(const query::query_spec& spec,
                                                  std::vector<std::pair<int, cell>> docs) {
  auto field_of = [](const std::pair<int, cell>& d, const std::string& field) -> scalar {
    if (field == "g") return scalar(d.second.g);
    if (field == "v") return scalar(d.second.v);
    return scalar(key_name(d.first));
  };
  std::erase_if(docs, [&](const std::pair<int, cell>& d) {
    for (const auto& p : spec.filter) {
      const auto c = field_of(d, p.field) <=> p.value;
      const bool ok = (p.o == query::op::eq && c == 0) || (p.o == query::op::gt && c > 0) ||
                      (p.o == query::op::gte && c >= 0) || (p.o == query::op::lt && c < 0) ||
                      (p.o == query::op::lte && c <= 0);
      if (!ok) return true;
    }
    return false;
  });
  const query::sort_spec order = spec.sort ? *spec.sort : query::sort_spec{"_id", query::direction::asc};
  std::sort(docs.begin(), docs.end(), [&](const auto& x, const auto& y) {
    auto c = field_of(x, order.field) <=> field_of(y, order.field);
    if (order.dir == query::direction::desc) c = 0 <=> c;
    if (c != 0) return c < 0;
    return x.first < y.first;
  });
  if (docs.size() > static_cast<std::size_t>(*spec.limit)) docs.resize(static_cast<std::size_t>(*spec.limit));
  return docs;
}

std::string describe(const std::vector<std::pair<int, cell>>& docs) {
  std::string out = "[";
  for (const auto& [k, c] : docs) out += key_name(k) + describe(slot(c)) + " ";
  return out + "]";
}

query::query_spec random_query(std::mt19937_64& rng, int coll) {
  const auto pick = [&](std::uint64_t n) { return static_cast<std::int64_t>(rng() % n); };
  const std::int64_t limit = pick(3) == 0 ? 1 + pick(5) : keys_per_collection;
  const auto dir = pick(2) == 0 ? query::direction::asc : query::direction::desc;
  query_builder q(collection_names[coll]);
  q.version(1).limit(limit);
  switch (pick(5)) {
    case 0:  // indexed equality
      q.where("g", query::op::eq, pick(group_count));
      break;
    case 1: {  // indexed range, sorted on the indexed field (the index-order path when asc)
      const std::int64_t lo = pick(group_count);
      q.where("g", query::op::gte, lo).where("g", query::op::lte, lo + pick(3)).sort_by("g", dir);
      break;
    }
    case 2:  // range on _id
      q.where("_id", query::op::gt, key_name(static_cast<int>(pick(keys_per_collection))))
          .where("_id", query::op::lte, key_name(static_cast<int>(pick(keys_per_collection))));
      break;
    case 3:  // primary key
      q.where("_id", query::op::eq, key_name(static_cast<int>(pick(keys_per_collection))));
      break;
    default:  // no filter: a scan of the _id index, sorted on g
      q.sort_by("g", dir);
      break;
  }
  return std::move(q).spec();
}

struct run_counts {
  std::uint64_t views = 0, old_views = 0, reads = 0, listings = 0, rereads = 0,
                rereads_across_gc = 0, rereads_across_checkpoint = 0;
};

}  // namespace

TEST_CASE_TEMPLATE("every read view sees exactly the acknowledged commits its bound covers", Db,
                   AERODB_ENGINES) {
  const double scale = test_scale();
  constexpr int writers = 3;
  constexpr int readers = 3;
  const int commits_per_writer = std::max(40, static_cast<int>(600 * scale));

  auto fs = std::make_shared<testing::fault_injection_fs>();
  open_options opts;
  opts.fs = fs;
  opts.wal_segment_bytes = 4096;  // small segments, so checkpoints have some to remove
  auto db = open_or_fail<Db>("/db", opts);

  std::atomic<std::uint64_t> clock{0};
  auto stamp = [&] { return clock.fetch_add(1, std::memory_order_seq_cst) + 1; };

  // Setup commits go in the history too: every CommitId must be accounted for.
  std::vector<commit_entry> setup_log;
  auto setup = [&](auto&& call) {
    commit_entry e;
    e.kind = commit_kind::setup;
    e.started = stamp();
    auto r = call();
    e.acked = stamp();
    REQUIRE(r);
    e.id = *r;
    setup_log.push_back(std::move(e));
  };
  setup([&] { return db->register_schema(history_schema); });
  for (const char* c : collection_names) {
    setup([&] { return db->create_collection(c, "h"); });
    setup([&] { return db->create_index(c, "g"); });
  }

  problems trouble;
  std::atomic<bool> writers_done{false};
  std::atomic<std::uint64_t> gc_passes{0}, checkpoints{0};

  // ---- writers ------------------------------------------------------------------------
  std::vector<std::vector<commit_entry>> writer_logs(writers);
  std::vector<std::uint64_t> conflicts(writers, 0), noop_deletes(writers, 0);
  auto writer = [&](int w) {
    std::mt19937_64 rng(1000 + static_cast<std::uint64_t>(w));
    const auto pick = [&](std::uint64_t n) { return static_cast<int>(rng() % n); };
    auto& log = writer_logs[static_cast<std::size_t>(w)];
    std::int64_t next_v = (w + 1) * 10'000'000;
    for (int n = 0; n < commits_per_writer; ++n) {
      // Which keys exist right now (a hint only: other writers race for the same keys, and
      // then insert or update fails with a conflict, which is fine and counted).
      const int kind = pick(100);
      const int ops = kind < 45 ? 1 : 2 + pick(3);
      std::vector<write_op> planned;
      write_batch batch;
      {
        auto peek = db->read();
        while (static_cast<int>(planned.size()) < ops) {
          const int coll = pick(collection_count);
          const int key = pick(keys_per_collection);
          if (std::any_of(planned.begin(), planned.end(),
                          [&](const write_op& p) { return p.coll == coll && p.key == key; }))
            continue;
          auto now = peek.get(collection_names[coll], key_name(key));
          if (!now) {
            trouble.add("writer get failed: " + now.error_value().to_string());
            return;
          }
          write_op op{coll, key, std::nullopt};
          const bool exists = now->has_value();
          // Mostly puts; some deletes, a few of them of absent documents (no-ops).
          if (exists ? pick(4) != 0 : pick(10) != 0) {
            op.value = cell{next_v++, pick(group_count), 0};
            const std::string json = R"({"_id":")" + key_name(key) + R"(","v":)" +
                                     std::to_string(op.value->v) + R"(,"g":)" +
                                     std::to_string(op.value->g) + "}";
            if (exists)
              batch.update(collection_names[coll], key_name(key), 1, json);
            else
              batch.insert(collection_names[coll], 1, json);
          } else {
            batch.remove(collection_names[coll], key_name(key));
          }
          planned.push_back(std::move(op));
        }
      }
      commit_entry e;
      e.started = stamp();
      auto r = db->commit(batch);
      e.acked = stamp();
      if (!r) {
        if (r.code() == errc::document_exists || r.code() == errc::document_not_found)
          ++conflicts[static_cast<std::size_t>(w)];
        else
          trouble.add("commit failed: " + r.error_value().to_string());
        continue;
      }
      if (r->applied.size() != planned.size()) {
        trouble.add("commit outcome has " + std::to_string(r->applied.size()) + " entries for " +
                    std::to_string(planned.size()) + " operations");
        continue;
      }
      if (r->commit == 0) {  // deletes of documents already gone: nothing written
        ++noop_deletes[static_cast<std::size_t>(w)];
        for (std::size_t i = 0; i < planned.size(); ++i)
          if (r->applied[i] || planned[i].value)
            trouble.add("a commit without CommitId reports an applied write");
        continue;
      }
      e.id = r->commit;
      for (std::size_t i = 0; i < planned.size(); ++i) {
        if (!r->applied[i]) {
          if (planned[i].value) trouble.add("a put was reported not applied");
          continue;
        }
        if (planned[i].value) planned[i].value->at = r->commit;
        e.writes.push_back(planned[i]);
      }
      log.push_back(std::move(e));
    }
  };

  // ---- readers ------------------------------------------------------------------------
  std::vector<std::deque<view_record>> reader_logs(readers);
  auto reader = [&](int rd) {
    std::mt19937_64 rng(2000 + static_cast<std::uint64_t>(rd));
    const auto pick = [&](std::uint64_t n) { return static_cast<int>(rng() % n); };
    auto& log = reader_logs[static_cast<std::size_t>(rd)];
    struct held_view {
      typename Db::read_view view;
      std::size_t record;  // index into log
      std::vector<std::pair<read_record, std::pair<std::uint64_t, std::uint64_t>>> firsts;
    };
    std::deque<held_view> held;

    auto get = [&](const typename Db::read_view& view, int coll, int key) -> std::optional<slot> {
      auto r = view.get(collection_names[coll], key_name(key));
      if (!r) {
        trouble.add("get failed: " + r.error_value().to_string());
        return std::nullopt;
      }
      if (!r->has_value()) return slot();
      int k = -1;
      std::string why;
      auto c = decode(**r, keys_per_collection, k, why);
      if (!c || k != key) {
        trouble.add("get(" + key_name(key) + ") returned " + (c ? key_name(k) : why));
        return std::nullopt;
      }
      return slot(*c);
    };
    auto list = [&](const typename Db::read_view& view, int coll, view_record& rec) {
      listing l;
      l.coll = coll;
      std::string why;
      bool ok = true;
      auto take = [&](const versioned_document& d) {
        int k = -1;
        if (auto c = decode(d, keys_per_collection, k, why)) l.docs.push_back({k, *c});
        else ok = false;
      };
      if (pick(3) == 0) {
        l.what = "scan";
        auto n = view.for_each(collection_names[coll], take);
        if (!n) {
          trouble.add("for_each failed: " + n.error_value().to_string());
          return;
        }
      } else {
        l.spec = random_query(rng, coll);
        l.what = query::to_json(*l.spec);
        auto r = view.query(*l.spec);
        if (!r) {
          trouble.add("query " + l.what + " failed: " + r.error_value().to_string());
          return;
        }
        for (const auto& d : r->documents) take(d);
      }
      if (!ok) {
        trouble.add(l.what + ": " + why);
        return;
      }
      rec.listings.push_back(std::move(l));
    };

    while (!writers_done.load(std::memory_order_acquire)) {
      // Now and then a view at an older boundary (refused if GC already passed it).
      std::optional<typename Db::read_view> view;
      view_record rec;
      if (pick(8) == 0) {
        // In this order, oldest <= newest: the floor never passes a published commit.
        const commit_id oldest = std::max(db->oldest_readable(), setup_log.back().id);
        const commit_id newest = db->last_commit_id();
        const commit_id bound = oldest + static_cast<commit_id>(rng() % (newest - oldest + 1));
        rec.open_started = stamp();
        auto r = db->read_at(bound);
        rec.open_finished = stamp();
        if (!r) {
          if (r.code() != errc::read_view_too_old)
            trouble.add("read_at(" + std::to_string(bound) + ") failed: " + r.error_value().to_string());
          continue;
        }
        if (r->bound() != bound) trouble.add("read_at returned another bound");
        view.emplace(std::move(*r));
        rec.latest = false;
      } else {
        rec.open_started = stamp();
        view.emplace(db->read());
        rec.open_finished = stamp();
      }
      rec.bound = view->bound();

      std::vector<std::pair<read_record, std::pair<std::uint64_t, std::uint64_t>>> firsts;
      for (int i = 0, n = 1 + pick(4); i < n; ++i) {
        const int coll = pick(collection_count), key = pick(keys_per_collection);
        const std::pair<std::uint64_t, std::uint64_t> epoch{gc_passes.load(), checkpoints.load()};
        if (auto s = get(*view, coll, key)) {
          rec.reads.push_back({coll, key, *s});
          firsts.push_back({rec.reads.back(), epoch});
        }
      }
      list(*view, pick(collection_count), rec);
      log.push_back(std::move(rec));

      // Keep some views open for a while: GC must keep what they see.
      if (pick(3) == 0) {
        held.push_back({std::move(*view), log.size() - 1, std::move(firsts)});
        if (held.size() > 4) held.pop_front();
      }
      // Read again from a held view: same answers, whatever ran in between.
      if (!held.empty()) {
        const auto which = static_cast<std::size_t>(pick(held.size()));
        auto& h = held[which];
        auto& hrec = log[h.record];
        for (const auto& [first, epoch] : h.firsts) {
          if (auto s = get(h.view, first.coll, first.key)) {
            hrec.rereads.push_back({first.coll, first.key, first.got, *s,
                                    gc_passes.load() != epoch.first,
                                    checkpoints.load() != epoch.second});
          }
        }
        list(h.view, pick(collection_count), hrec);
        if (pick(4) == 0) held.erase(held.begin() + static_cast<std::ptrdiff_t>(which));
      }
    }
    held.clear();  // views must not outlive the database
  };

  // ---- garbage collector and checkpointer --------------------------------------------
  std::vector<commit_entry> gc_log;
  std::uint64_t versions_freed = 0;
  auto collector = [&] {
    while (!writers_done.load(std::memory_order_acquire)) {
      commit_entry e;
      e.kind = commit_kind::gc;
      e.started = stamp();
      auto g = db->gc();
      e.acked = stamp();
      if (!g) {
        trouble.add("gc failed: " + g.error_value().to_string());
        return;
      }
      if (g->record) {
        e.id = g->record;
        versions_freed += g->versions_freed;
        gc_log.push_back(std::move(e));
        gc_passes.fetch_add(1);
      } else {
        std::this_thread::sleep_for(std::chrono::microseconds(200));
      }
    }
  };
  std::vector<checkpoint_record> checkpoint_log;
  auto checkpointer = [&] {
    while (!writers_done.load(std::memory_order_acquire)) {
      checkpoint_record c;
      c.started = stamp();
      auto r = db->checkpoint();
      c.finished = stamp();
      if (!r) {
        trouble.add("checkpoint failed: " + r.error_value().to_string());
        return;
      }
      c.id = r->commit;
      checkpoint_log.push_back(c);
      checkpoints.fetch_add(1);
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  };

  const auto started = std::chrono::steady_clock::now();
  {
    std::vector<std::thread> writer_threads, others;
    for (int r = 0; r < readers; ++r) others.emplace_back(reader, r);
    others.emplace_back(collector);
    others.emplace_back(checkpointer);
    for (int w = 0; w < writers; ++w) writer_threads.emplace_back(writer, w);
    for (auto& t : writer_threads) t.join();
    writers_done.store(true, std::memory_order_release);
    for (auto& t : others) t.join();
  }
  const auto ran_for = std::chrono::steady_clock::now() - started;

  // ---- the check, single-threaded ------------------------------------------------------
  std::vector<std::string> violations = std::move(trouble.list);
  auto violation = [&](std::string s) { violations.push_back(std::move(s)); };

  std::vector<commit_entry> commits = setup_log;
  for (auto& l : writer_logs) commits.insert(commits.end(), l.begin(), l.end());
  commits.insert(commits.end(), gc_log.begin(), gc_log.end());
  std::sort(commits.begin(), commits.end(), [](const auto& x, const auto& y) { return x.id < y.id; });
  const commit_id last = db->last_commit_id();
  // CommitIds: exactly 1..last, each once.
  bool ids_dense = commits.size() == last;
  for (std::size_t i = 0; ids_dense && i < commits.size(); ++i)
    ids_dense = commits[i].id == static_cast<commit_id>(i + 1);
  if (!ids_dense)
    violation("the CommitIds handed out are not exactly 1.." + std::to_string(last) + " (" +
              std::to_string(commits.size()) + " commits logged)");
  // by_id[i] is commit i + 1 (when dense).
  const history_model model(commits);

  // (b): the latest call start among commits 1..id; a view at bound B needs this < its
  // open-finished stamp (the commit at B existed, so every commit below it did too).
  std::vector<std::uint64_t> latest_start_upto(commits.size() + 1, 0);
  for (std::size_t i = 0; i < commits.size(); ++i)
    latest_start_upto[i + 1] = std::max(latest_start_upto[i], commits[i].started);
  auto latest_start = [&](commit_id bound) {
    return latest_start_upto[std::min<std::size_t>(static_cast<std::size_t>(bound), commits.size())];
  };
  // (a): commits in acknowledgment order, with the highest id acknowledged so far.
  std::vector<std::pair<std::uint64_t, commit_id>> by_ack;
  for (const auto& c : commits) by_ack.push_back({c.acked, c.id});
  std::sort(by_ack.begin(), by_ack.end());
  for (std::size_t i = 1; i < by_ack.size(); ++i)
    by_ack[i].second = std::max(by_ack[i].second, by_ack[i - 1].second);
  auto highest_acked_before = [&](std::uint64_t stamp_value) -> commit_id {
    auto it = std::lower_bound(by_ack.begin(), by_ack.end(), std::pair<std::uint64_t, commit_id>{stamp_value, 0});
    return it == by_ack.begin() ? 0 : std::prev(it)->second;
  };
  auto check_boundary = [&](const std::string& what, std::uint64_t open_started, std::uint64_t open_finished,
                            commit_id bound, bool must_cover_acked) {
    const commit_id acked = highest_acked_before(open_started);
    if (must_cover_acked && bound < acked)
      violation(what + " at bound " + std::to_string(bound) + " misses commit " + std::to_string(acked) +
                ", acknowledged before it was opened");
    if (bound > commits.size() || latest_start(bound) > open_finished)
      violation(what + " at bound " + std::to_string(bound) +
                " covers a commit that had not been started when it was opened");
  };

  run_counts counts;
  for (const auto& log : reader_logs) {
    for (const auto& v : log) {
      ++counts.views;
      if (!v.latest) ++counts.old_views;
      const std::string name = std::string(v.latest ? "read view" : "read_at view");
      check_boundary(name, v.open_started, v.open_finished, v.bound, v.latest);
      auto check_read = [&](int coll, int key, const slot& got, const char* how) {
        const slot want = model.at(coll, key, v.bound);
        if (got != want)
          violation(name + " at bound " + std::to_string(v.bound) + " " + how + " " +
                    collection_names[coll] + "/" + key_name(key) + " = " + describe(got) +
                    ", expected " + describe(want));
      };
      for (const auto& r : v.reads) {
        ++counts.reads;
        check_read(r.coll, r.key, r.got, "read");
      }
      for (const auto& r : v.rereads) {
        ++counts.rereads;
        counts.rereads_across_gc += r.across_gc ? 1 : 0;
        counts.rereads_across_checkpoint += r.across_checkpoint ? 1 : 0;
        check_read(r.coll, r.key, r.second, "re-read");
        if (r.first != r.second)
          violation(name + " at bound " + std::to_string(v.bound) + " changed its answer for " +
                    collection_names[r.coll] + "/" + key_name(r.key) + ": " + describe(r.first) +
                    " then " + describe(r.second));
      }
      for (const auto& l : v.listings) {
        ++counts.listings;
        auto want = model.collection_at(l.coll, v.bound);
        if (l.spec) want = expected_answer(*l.spec, std::move(want));
        if (l.docs != want)
          violation(name + " at bound " + std::to_string(v.bound) + " " + l.what + " on " +
                    collection_names[l.coll] + " returned " + describe(l.docs) + ", expected " +
                    describe(want));
      }
    }
  }
  for (const auto& c : checkpoint_log)
    check_boundary("checkpoint", c.started, c.finished, c.id, true);

  // The final state, the last checkpoint's snapshot, and recovery.
  auto check_state = [&](const std::string& what, const state_map& got, commit_id bound) {
    for (int coll = 0; coll < collection_count; ++coll) {
      std::vector<std::pair<int, cell>> seen;
      auto it = got.find(collection_names[coll]);
      if (it == got.end()) {
        violation(what + ": collection " + collection_names[coll] + " missing");
        continue;
      }
      for (const auto& [id, doc] : it->second) {
        auto d = document_from_json(doc.second);
        if (!d) {
          violation(what + ": unreadable document " + doc.second);
          continue;
        }
        int k = -1;
        std::string why;
        // committed_at is not part of a dump: compare it as the model's.
        if (auto c = decode(versioned_document{*d, doc.first, 0}, keys_per_collection, k, why))
          seen.push_back({k, *c});
        else
          violation(what + ": " + why);
      }
      auto want = model.collection_at(coll, bound);
      for (auto& w : want) w.second.at = 0;
      if (seen != want)
        violation(what + " at " + std::to_string(bound) + ", " + collection_names[coll] + ": " +
                  describe(seen) + ", expected " + describe(want));
    }
  };
  const state_map final_state = dump(*db);
  check_state("final state", final_state, last);
  if (!checkpoint_log.empty()) {
    const commit_id c = checkpoint_log.back().id;
    auto snap = Db::open_snapshot("/db", c, opts);
    if (!snap)
      violation("the last checkpoint's snapshot does not open: " + snap.error_value().to_string());
    else
      check_state("snapshot", dump(**snap), c);
  }
  db.reset();
  auto reopened = open_or_fail<Db>("/db", opts);
  check_state("recovered state", dump(*reopened), last);
  CHECK(reopened->last_commit_id() == last);

  std::uint64_t writer_commits = 0, conflict_count = 0, noops = 0;
  for (const auto& l : writer_logs) writer_commits += l.size();
  for (auto n : conflicts) conflict_count += n;
  for (auto n : noop_deletes) noops += n;
  MESSAGE("history: " << counts.views << " views checked (" << counts.old_views << " read_at), "
                      << counts.reads << " reads, " << counts.rereads << " re-reads ("
                      << counts.rereads_across_gc << " across GC, " << counts.rereads_across_checkpoint
                      << " across a checkpoint), " << counts.listings << " scans/queries; "
                      << writer_commits << " write commits (" << conflict_count << " conflicts, "
                      << noops << " no-op deletes), " << checkpoint_log.size() << " checkpoints, "
                      << gc_log.size() << " GC passes (" << versions_freed << " versions freed), last CommitId "
                      << last << ", " << std::chrono::duration_cast<std::chrono::milliseconds>(ran_for).count()
                      << " ms");
  print_counts({{"campaign", "history"},
                {"engine", doctest::toString<Db>().c_str()},
                {"views", counts.views},
                {"old_views", counts.old_views},
                {"reads", counts.reads},
                {"rereads", counts.rereads},
                {"rereads_across_gc", counts.rereads_across_gc},
                {"rereads_across_checkpoint", counts.rereads_across_checkpoint},
                {"listings", counts.listings},
                {"write_commits", writer_commits},
                {"conflicts", conflict_count},
                {"noop_deletes", noops},
                {"checkpoints", checkpoint_log.size()},
                {"gc_passes", gc_log.size()},
                {"versions_freed", versions_freed},
                {"last_commit_id", last},
                {"seconds", std::chrono::duration<double>(ran_for).count()}});
  if (!violations.empty()) MESSAGE(violations.size() << " violations; the first ones:");
  for (std::size_t i = 0; i < violations.size() && i < 20; ++i) MESSAGE(violations[i]);
  CHECK(violations.size() == 0);
  CHECK(counts.views > 0);
  CHECK(writer_commits > 0);
}
