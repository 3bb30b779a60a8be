// The indexer: derives secondary-index entries from versions (SPEC_DIGEST §8). Indexes are
// derived and non-authoritative: everything here can be rebuilt from the chains, and an
// index only ever proposes candidates that the query executor checks in full.
//
// Owns no state: the entries live in the catalog's collections (engine/catalog.hpp), next
// to the chains they point into, and are guarded by the version store's state lock.
//
// Thread safety: REQUIRES the state lock held exclusively for every function (or
// recovery, before the store is shared). A rebuild and a large batch's inserts may use
// helper threads under that lock (policy permitting), each index filled by one thread;
// all of their work is done before the function returns (a rebuild joins its helpers; a
// batch's helpers, detail::share_items, may outlive the call with nothing left to do).
//
// Invariants: an index holds one entry per (version, scalar value at its path) for every
// live version of its collection; documents whose field is missing or not a scalar have
// no entry; a version's entries leave with it (GC).
#pragma once

#include <aerodb/detail/share_work.hpp>
#include <aerodb/document/value_view.hpp>
#include <aerodb/engine/catalog.hpp>
#include <aerodb/index/scalar.hpp>
#include <aerodb/metrics.hpp>
#include <aerodb/mvcc/version.hpp>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <system_error>
#include <thread>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace aerodb::engine {

template <class IndexPolicy>
struct indexer {
  using catalog_type = engine::catalog<IndexPolicy>;
  using collection_state = typename catalog_type::collection_state;
  using index_state = typename catalog_type::index_state;

  // The key version `v` has in the index on `path`, if any.
  static std::optional<scalar> key_of(const mvcc::version& v, std::string_view path) {
    if (v.tombstone()) return std::nullopt;
    const document_view doc(v.bytes());
    auto value = path == "_id" ? doc.find("_id") : doc.find_path(path);
    if (!value) return std::nullopt;
    return scalar::from_value(*value);
  }

  // Step W8 of a write (docs/architecture.md): indexes the version of `key` made by
  // `commit` in every index of its collection. With grouped commits a later version of
  // the same key may already be linked above it, so the chain is searched for it.
  static void index_commit(collection_state& c, const mvcc::key_entry& key, commit_id commit) {
    const mvcc::version* mine = nullptr;
    for (const auto& v : key.chain)
      if (v.commit == commit) { mine = &v; break; }
    for (auto& [path, ix] : c.indexes)
      if (auto k = key_of(*mine, path)) ix->entries.insert(*k, key, *mine);
  }

  // Whether W8 inserts a write batch's entries in index order (IndexPolicy::
  // sorted_commit_inserts): an index whose inserts land in sorted blocks finds each next
  // position next to the last, in cache, instead of at a random place of the structure.
  // Any order gives the same index.
  static constexpr bool sorts_commit_entries = [] {
    if constexpr (requires { IndexPolicy::sorted_commit_inserts; })
      return static_cast<bool>(IndexPolicy::sorted_commit_inserts);
    else
      return false;
  }();

  // An entry a write adds: index_commit's, gathered instead of inserted.
  struct commit_entry {
    index_state* ix;
    scalar key;
    const mvcc::key_entry* doc;
    const mvcc::version* v;
  };

  // index_commit's entries for the version of `key` made by `commit`, appended to `out`.
  static void gather_commit(collection_state& c, const mvcc::key_entry& key, commit_id commit,
                            std::vector<commit_entry>& out) {
    const mvcc::version* mine = nullptr;
    for (const auto& v : key.chain)
      if (v.commit == commit) { mine = &v; break; }
    for (auto& [path, ix] : c.indexes)
      if (auto k = key_of(*mine, path)) out.push_back({ix.get(), std::move(*k), &key, mine});
  }

  // Whether a large write batch's entries go into its indexes on a thread each
  // (IndexPolicy::parallel_commit_inserts). Each index is still filled by one thread, with
  // the same entries in the same order, so the indexes are the same whatever the count.
  static constexpr bool inserts_in_parallel = [] {
    if constexpr (requires { IndexPolicy::parallel_commit_inserts; })
      return static_cast<bool>(IndexPolicy::parallel_commit_inserts);
    else
      return false;
  }();

  // Fewer entries than this stay on the committing thread: starting a thread costs tens
  // of microseconds, about what a few hundred inserts take.
  static constexpr std::size_t parallel_insert_min_entries = 512;

  // Inserts gathered entries: sorted by index, then in index order (key, _id, CommitId).
  static void insert_gathered(std::vector<commit_entry>& entries) {
    std::sort(entries.begin(), entries.end(), [](const commit_entry& a, const commit_entry& b) {
      if (a.ix != b.ix) return std::less<>{}(a.ix, b.ix);
      if (const auto cmp = a.key <=> b.key; cmp != 0) return cmp < 0;
      if (a.doc != b.doc) return a.doc->doc_id < b.doc->doc_id;
      return a.v->commit < b.v->commit;
    });
    // One run of consecutive entries per index.
    std::vector<std::pair<std::size_t, std::size_t>> runs;
    for (std::size_t i = 0; i < entries.size(); ++i) {
      if (i == 0 || entries[i].ix != entries[i - 1].ix) runs.emplace_back(i, i);
      runs.back().second = i + 1;
    }
    const auto insert_run = [&](std::pair<std::size_t, std::size_t> run) {
      using field_index = typename IndexPolicy::field_index;
      if constexpr (requires { typename field_index::insert_hint; }) {
        // A run is ascending: each entry goes next to the one before.
        typename field_index::insert_hint hint{};
        for (std::size_t i = run.first; i < run.second; ++i)
          entries[i].ix->entries.insert(entries[i].key, *entries[i].doc, *entries[i].v, hint);
      } else {
        for (std::size_t i = run.first; i < run.second; ++i)
          entries[i].ix->entries.insert(entries[i].key, *entries[i].doc, *entries[i].v);
      }
    };
    std::size_t threads = 1;
    if constexpr (inserts_in_parallel) {
      if (entries.size() >= parallel_insert_min_entries)
        threads = std::min(runs.size(), detail::available_cores());
    }
    if (threads <= 1) {
      for (const auto& run : runs) insert_run(run);
      return;
    }
    // Each thread takes the next run not taken yet, so a long run (an index whose inserts
    // land at random places) overlaps the short ones. The runs touch disjoint indexes.
    detail::share_items(threads - 1, runs.size(), [&](std::size_t r) { insert_run(runs[r]); });
  }

  // Removes every entry of version `v` (GC frees it next).
  static void unindex(collection_state& c, const mvcc::key_entry& key, const mvcc::version& v) {
    for (auto& [path, ix] : c.indexes)
      if (auto k = key_of(v, path)) ix->entries.erase(*k, key, v);
  }

  // Fills an empty index from every live version of the collection.
  static void build(collection_state& c, const std::string& path, index_state& ix,
                    metrics_registry& metrics) {
    build_together(c, {{&path, &ix}}, metrics, 0, [](std::uint64_t) {});
  }

  // The steps rebuild_all reports as it goes (the index_build phase of an open): for each
  // collection with indexes, one per document key for the walk over its chains, then as
  // many again for each of its indexes, as that index's entries are put in place.
  static std::uint64_t rebuild_steps(const catalog_type& cat) {
    std::uint64_t steps = 0;
    for (const auto& [name, c] : cat.collections())
      if (!c->indexes.empty()) steps += c->keys.size() * (1 + c->indexes.size());
    return steps;
  }

  // Rebuilds every index of every collection from the chains (the end of every open),
  // calling `progress(steps done)` with rebuild_steps' count, never decreasing, at least
  // once per 1024 steps.
  template <class Progress>
  static void rebuild_all(catalog_type& cat, metrics_registry& metrics, Progress&& progress) {
    std::uint64_t done = 0;
    for (auto& [name, c] : cat.collections()) {
      if (c->indexes.empty()) continue;
      std::vector<std::pair<const std::string*, index_state*>> all;
      for (auto& [path, ix] : c->indexes) {
        ix->entries.clear();
        all.emplace_back(&path, ix.get());
      }
      build_together(*c, all, metrics, done, progress);
      done += c->keys.size() * (1 + all.size());
      progress(done);
    }
  }
  static void rebuild_all(catalog_type& cat, metrics_registry& metrics) {
    rebuild_all(cat, metrics, [](std::uint64_t) {});
  }

 private:
  static void prefetch(const void* p) noexcept { __builtin_prefetch(p); }

  template <class Entries>
  static constexpr bool has_bulk_fill = requires(Entries& e) {
    e.begin_bulk_fill(std::size_t{});
    e.end_bulk_fill();
  };
  // Closes an index's open bulk fill when a fill leaves by an exception.
  template <class Entries>
  struct bulk_fill_guard {
    Entries* open = nullptr;
    bulk_fill_guard() = default;
    bulk_fill_guard(const bulk_fill_guard&) = delete;
    bulk_fill_guard& operator=(const bulk_fill_guard&) = delete;
    ~bulk_fill_guard() {
      if constexpr (has_bulk_fill<Entries>) {
        if (open) try {
            open->end_bulk_fill();
          } catch (...) {  // the index cleared itself; the first exception goes on
          }
      }
    }
  };

  // How many threads a rebuild uses: one, unless the policy asks for parallel rebuilds
  // (IndexPolicy::parallel_rebuild), then the cores available. The walk is split into that
  // many parts of consecutive keys, joined in order; each index is filled by exactly one
  // thread, from the same sorted run. So the result is the same whatever the count.
  static std::size_t rebuild_threads() {
    if constexpr (requires { IndexPolicy::parallel_rebuild; }) {
      if (IndexPolicy::parallel_rebuild) return detail::available_cores();
    }
    return 1;
  }

  // Runs task(i, tell) for every i below `count` on `threads` threads: this one and
  // threads - 1 helpers, thread t taking the tasks t, t + threads, ... A task tells of
  // its steps as it goes (tell(n): n more done). Progress is told from this thread only
  // (an open's callback may throw to cancel it), with the count of every thread's steps
  // together: as this thread's tasks report steps, and as the helpers' do. A helper that
  // cannot be started leaves its tasks to this thread; a helper's exception is rethrown
  // here once every helper has stopped.
  template <class Task, class Tell>
  static void in_parallel(std::size_t threads, std::size_t count, const Task& fill, Tell&& tell) {
    std::mutex mu;
    std::condition_variable changed;
    std::uint64_t filled = 0;  // steps done by every thread together
    std::size_t running = 0;   // helpers not yet finished
    std::exception_ptr failure;
    const auto add = [&](std::uint64_t more) {
      {
        std::lock_guard lock(mu);
        filled += more;
      }
      changed.notify_one();
    };
    const auto share = [&](std::size_t t) {
      for (std::size_t i = t; i < count; i += threads) fill(i, add);
    };
    std::vector<std::jthread> helpers;  // joined on every way out, a throw included
    std::vector<std::size_t> orphaned;  // shares of helpers that could not be started
    for (std::size_t t = 1; t < threads; ++t) {
      try {
        {
          std::lock_guard lock(mu);
          ++running;
        }
        helpers.emplace_back([&, t] {
          try {
            share(t);
          } catch (...) {
            std::lock_guard lock(mu);
            if (!failure) failure = std::current_exception();
          }
          {
            std::lock_guard lock(mu);
            --running;
          }
          changed.notify_one();
        });
      } catch (const std::system_error&) {
        std::lock_guard lock(mu);
        --running;
        orphaned.push_back(t);
      }
    }
    const auto add_and_tell = [&](std::uint64_t more) {
      std::uint64_t now = 0;
      {
        std::lock_guard lock(mu);
        now = filled += more;
      }
      tell(now);
    };
    for (std::size_t i = 0; i < count; i += threads) fill(i, add_and_tell);
    for (const std::size_t t : orphaned)
      for (std::size_t i = t; i < count; i += threads) fill(i, add_and_tell);
    std::uint64_t last = 0;
    for (;;) {
      std::unique_lock lock(mu);
      changed.wait(lock, [&] { return filled != last || running == 0; });
      last = filled;
      const bool done = running == 0;
      lock.unlock();
      tell(last);
      if (done) break;
    }
    helpers.clear();
    if (failure) std::rethrow_exception(failure);
  }

  // The fill reads each entry's key (its _id) through the entry's pointer, which the run
  // does not hold, in key order: a cache miss per entry on a large store, fetched this many
  // entries ahead. (Prefetching the walk's loads the same way measured no gain: the walk
  // goes in _id order, which for keys written in _id order is the order they were
  // allocated in, and the hardware prefetcher sees that.)
  static constexpr std::size_t fill_ahead = 8;

  // The collection's keys in _id order. Sorting pointers by the strings they point at
  // costs a cache miss per side of every comparison, so each key carries the first 16
  // bytes of its _id inline (big-endian, zero-padded: comparing the pair compares the
  // bytes), and the strings themselves are read only when those bytes tie. Keys that come
  // in order already (a primary map that is ordered) are checked in one pass and kept.
  // With two threads or more, the two halves are sorted at once and merged: the keys are
  // distinct, so the order is the same however it is reached.
  static std::vector<const mvcc::key_entry*> keys_by_id(const collection_state& c, std::size_t threads) {
    struct keyed {
      std::uint64_t hi, lo;
      const mvcc::key_entry* key;
    };
    std::vector<keyed> all;
    all.reserve(c.keys.size());
    for (const auto& [id, key] : c.keys) {
      unsigned char head[16] = {};
      std::memcpy(head, key->doc_id.data(), std::min<std::size_t>(key->doc_id.size(), sizeof head));
      std::uint64_t hi = 0, lo = 0;
      for (int i = 0; i < 8; ++i) {
        hi = hi << 8 | head[i];
        lo = lo << 8 | head[8 + i];
      }
      all.push_back({hi, lo, key.get()});
    }
    const auto before = [](const keyed& a, const keyed& b) {
      if (a.hi != b.hi) return a.hi < b.hi;
      if (a.lo != b.lo) return a.lo < b.lo;
      return a.key->doc_id < b.key->doc_id;
    };
    if (!std::is_sorted(all.begin(), all.end(), before)) {
      const auto middle = all.begin() + static_cast<std::ptrdiff_t>(all.size() / 2);
      std::optional<std::jthread> helper;
      if (threads > 1) try {
          helper.emplace([&] { std::sort(middle, all.end(), before); });
        } catch (const std::system_error&) {  // no thread to be had: this one sorts it all
        }
      if (helper) {
        std::sort(all.begin(), middle, before);
        helper.reset();  // joins
        std::inplace_merge(all.begin(), middle, all.end(), before);
      } else {
        std::sort(all.begin(), all.end(), before);
      }
    }
    std::vector<const mvcc::key_entry*> out;
    out.reserve(all.size());
    for (const auto& k : all) out.push_back(k.key);
    return out;
  }

  // Fills empty indexes of one collection from its live versions, as sorted runs. Built
  // from measurement (perf on a 1M-document open, docs/benchmarks.md): the build is bound
  // by memory latency, not by work. Walking the chains costs a cache miss per key and per
  // document, so the walk is done once for all the collection's indexes, each version's
  // document is read once, and an entry carries its CommitId and schema version, so that
  // filling the index in key order does not go back to the version (another miss per
  // entry). Entries go in in index order (key, _id, CommitId): a sorted index then only
  // appends at its end. The order is only a hint: any order builds the same index.
  //
  // Sorting a run by (key, _id, CommitId) compared the _ids through the key pointers, a
  // miss per side of every comparison that ties on the key (most of them in an index of
  // few distinct values). So the keys are walked in _id order (keys_by_id) and each entry
  // carries its key's rank in that order: the runs sort on values they hold. The run of
  // the `_id` index is in index order as walked (its key is the _id) and is not sorted.
  // `progress` hears of the steps (rebuild_steps) from `base` on: a step per key walked,
  // then, for each index, the collection's key count spread over its entries.
  template <class Progress>
  static void build_together(collection_state& c, const std::vector<std::pair<const std::string*, index_state*>>& ixs,
                             metrics_registry& metrics, std::uint64_t base, Progress&& progress) {
    const auto started = std::chrono::steady_clock::now();
    struct pending {
      scalar key;
      const mvcc::key_entry* doc;
      const mvcc::version* v;
      commit_id commit;
      std::uint32_t schema_version;
      std::uint32_t rank;  // of `doc` in _id order (past 2^32 keys it wraps, and only the hint suffers)
    };
    const std::size_t threads = rebuild_threads();
    const std::vector<const mvcc::key_entry*> order = keys_by_id(c, threads);
    const std::uint64_t keys = order.size();
    // The walk, in `threads` parts of consecutive ranks, each into runs of its own that are
    // then joined in rank order: the joined runs are the same whatever the thread count.
    std::vector<std::vector<std::vector<pending>>> parts(threads, std::vector<std::vector<pending>>(ixs.size()));
    const auto walk = [&](std::size_t t, auto&& tell) {
      const std::uint64_t from = keys * t / threads, to = keys * (t + 1) / threads;
      auto& runs = parts[t];
      for (auto& run : runs) run.reserve(static_cast<std::size_t>(to - from));
      std::vector<std::size_t> key_start(ixs.size());
      for (std::uint64_t rank = from; rank < to; ++rank) {
        if (((rank - from + 1) & 1023) == 0) tell(1024);
        const mvcc::key_entry* key = order[rank];
        for (std::size_t i = 0; i < ixs.size(); ++i) key_start[i] = runs[i].size();
        for (const auto& v : key->chain) {
          if (v.tombstone()) continue;
          const document_view doc(v.bytes());
          for (std::size_t i = 0; i < ixs.size(); ++i) {
            const std::string& path = *ixs[i].first;
            auto value = path == "_id" ? doc.find("_id") : doc.find_path(path);
            if (!value) continue;
            if (auto k = scalar::from_value(*value))
              runs[i].push_back({std::move(*k), key, &v, v.commit, v.schema_version, static_cast<std::uint32_t>(rank)});
          }
        }
        // The chain is newest first; the index wants a key's versions oldest first.
        for (std::size_t i = 0; i < ixs.size(); ++i)
          std::reverse(runs[i].begin() + static_cast<std::ptrdiff_t>(key_start[i]), runs[i].end());
      }
      tell((to - from) % 1024);
    };
    if (threads <= 1) {
      std::uint64_t walked = 0;
      walk(0, [&](std::uint64_t more) { progress(base + (walked += more)); });
    } else {
      in_parallel(threads, threads, walk, [&](std::uint64_t walked) { progress(base + walked); });
    }
    std::vector<std::vector<pending>> runs(ixs.size());
    for (std::size_t i = 0; i < ixs.size(); ++i) {
      runs[i] = std::move(parts[0][i]);
      for (std::size_t t = 1; t < threads; ++t) {
        runs[i].insert(runs[i].end(), std::make_move_iterator(parts[t][i].begin()),
                       std::make_move_iterator(parts[t][i].end()));
        std::vector<pending>().swap(parts[t][i]);
      }
    }
    // The fill of index i: sort its run, then put its entries in place. It touches only
    // that run and that index, so two fills may run at once; `tell(n)` hears of the n
    // more steps it has done (the collection's key count in all, spread over its run).
    const auto fill = [&](std::size_t i, auto&& tell) {
      auto& run = runs[i];
      if (*ixs[i].first != "_id")
        std::sort(run.begin(), run.end(), [](const pending& a, const pending& b) {
          if (const auto cmp = a.key <=> b.key; cmp != 0) return cmp < 0;
          if (a.rank != b.rank) return a.rank < b.rank;
          return a.commit < b.commit;
        });
      auto& entries = ixs[i].second->entries;
      using entries_type = std::remove_cvref_t<decltype(entries)>;
      constexpr bool takes_values = requires(entries_type& e, const scalar& k, const mvcc::key_entry& d) {
        e.insert(k, d, commit_id{}, std::uint32_t{});
      };
      // An index with a bulk fill is told how many distinct keys are coming (the run is in
      // key order, so they are the changes of key along it), and the fill is closed on
      // every way out, an exception included (the index is then empty or whole).
      constexpr bool bulk = has_bulk_fill<entries_type>;
      bulk_fill_guard<entries_type> guard;
      if constexpr (bulk) {
        std::size_t distinct = 0;
        for (std::size_t j = 0; j < run.size(); ++j)
          if (j == 0 || !(run[j].key == run[j - 1].key)) ++distinct;
        entries.begin_bulk_fill(distinct);
        guard.open = &entries;
      }
      std::uint64_t told = 0;
      for (std::size_t j = 0; j < run.size(); ++j) {
        if (j + fill_ahead < run.size()) prefetch(run[j + fill_ahead].doc);
        const auto& p = run[j];
        if constexpr (takes_values)
          entries.insert(p.key, *p.doc, p.commit, p.schema_version);
        else
          entries.insert(p.key, *p.doc, *p.v);
        if ((j & 1023) == 1023) {
          const std::uint64_t now = keys * (j + 1) / run.size();
          tell(now - told);
          told = now;
        }
      }
      if constexpr (bulk) {
        guard.open = nullptr;
        entries.end_bulk_fill();
      }
      std::vector<pending>().swap(run);  // the next fill has the memory
      tell(keys - told);
    };
    const std::uint64_t fill_base = base + keys;  // the walk's steps are done
    const std::size_t fillers = std::min(threads, ixs.size());
    if (fillers <= 1) {
      std::uint64_t filled = 0;
      for (std::size_t i = 0; i < ixs.size(); ++i)
        fill(i, [&](std::uint64_t more) { progress(fill_base + (filled += more)); });
    } else {
      in_parallel(fillers, ixs.size(), fill, [&](std::uint64_t filled) { progress(fill_base + filled); });
    }
    for (std::size_t i = 0; i < ixs.size(); ++i) metrics.index_rebuild_count.add();
    metrics.index_rebuild_duration_ns.add(static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - started)
            .count()));
  }
};

}  // namespace aerodb::engine
