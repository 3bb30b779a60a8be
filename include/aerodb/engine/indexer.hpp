// The indexer: derives secondary-index entries from versions (SPEC_DIGEST §8). Indexes are
// derived and non-authoritative: everything here can be rebuilt from the chains, and an
// index only ever proposes candidates that the query executor checks in full.
//
// Owns no state: the entries live in the catalog's collections (engine/catalog.hpp), next
// to the chains they point into, and are guarded by the version store's state lock.
//
// Thread safety: REQUIRES the state lock held exclusively for every function (or
// recovery, before the store is shared).
//
// Invariants: an index holds one entry per (version, scalar value at its path) for every
// live version of its collection; documents whose field is missing or not a scalar have
// no entry; a version's entries leave with it (GC).
#pragma once

#include <aerodb/document/value_view.hpp>
#include <aerodb/engine/catalog.hpp>
#include <aerodb/index/scalar.hpp>
#include <aerodb/metrics.hpp>
#include <aerodb/mvcc/version.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
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
    const document_view doc(v.data.bytes());
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
  // Fills empty indexes of one collection from its live versions, as sorted runs. Built
  // from measurement (perf on a 1M-document open, docs/benchmarks.md): the build is bound
  // by memory latency, not by work. Walking the chains costs a cache miss per key and per
  // document, so the walk is done once for all the collection's indexes, each version's
  // document is read once, and an entry carries its CommitId and schema version, so that
  // filling the index in key order does not go back to the version (another miss per
  // entry). Entries go in in index order (key, _id, CommitId): a sorted index then only
  // appends at its end. The order is only a hint: any order builds the same index.
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
    };
    std::vector<std::vector<pending>> runs(ixs.size());
    for (auto& run : runs) run.reserve(c.keys.size());
    const std::uint64_t keys = c.keys.size();
    std::uint64_t walked = 0;
    for (const auto& [id, key] : c.keys) {
      if ((++walked & 1023) == 0) progress(base + walked);
      for (const auto& v : key->chain) {
        if (v.tombstone()) continue;
        const document_view doc(v.data.bytes());
        for (std::size_t i = 0; i < ixs.size(); ++i) {
          const std::string& path = *ixs[i].first;
          auto value = path == "_id" ? doc.find("_id") : doc.find_path(path);
          if (!value) continue;
          if (auto k = scalar::from_value(*value))
            runs[i].push_back({std::move(*k), key.get(), &v, v.commit, v.schema_version});
        }
      }
    }
    for (std::size_t i = 0; i < ixs.size(); ++i) {
      const std::uint64_t filled_before = base + keys * (1 + i);
      auto& run = runs[i];
      std::sort(run.begin(), run.end(), [](const pending& a, const pending& b) {
        if (const auto cmp = a.key <=> b.key; cmp != 0) return cmp < 0;
        if (const int cmp = a.doc->doc_id.compare(b.doc->doc_id); cmp != 0) return cmp < 0;
        return a.commit < b.commit;
      });
      auto& entries = ixs[i].second->entries;
      using entries_type = std::remove_cvref_t<decltype(entries)>;
      constexpr bool takes_values = requires(entries_type& e, const scalar& k, const mvcc::key_entry& d) {
        e.insert(k, d, commit_id{}, std::uint32_t{});
      };
      for (std::size_t j = 0; j < run.size(); ++j) {
        const auto& p = run[j];
        if constexpr (takes_values)
          entries.insert(p.key, *p.doc, p.commit, p.schema_version);
        else
          entries.insert(p.key, *p.doc, *p.v);
        if ((j & 1023) == 1023) progress(filled_before + keys * (j + 1) / run.size());
      }
      std::vector<pending>().swap(run);  // the next index's run has the memory
      metrics.index_rebuild_count.add();
    }
    metrics.index_rebuild_duration_ns.add(static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - started)
            .count()));
  }
};

}  // namespace aerodb::engine
