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
#include <optional>
#include <string>
#include <string_view>
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
    const auto started = std::chrono::steady_clock::now();
    // Entries go in in index order (key, _id, CommitId): a sorted index then only ever
    // appends at its end, where inserting in the primary map's order (hash order for the
    // accelerated index) would land each entry at a random place and shift its block.
    // The order is only a hint: any order builds the same index.
    struct pending {
      scalar key;
      const mvcc::key_entry* doc;
      const mvcc::version* v;
    };
    std::vector<pending> all;
    all.reserve(c.keys.size());
    for (const auto& [id, key] : c.keys)
      for (const auto& v : key->chain)
        if (auto k = key_of(v, path)) all.push_back({std::move(*k), key.get(), &v});
    std::sort(all.begin(), all.end(), [](const pending& a, const pending& b) {
      if (const auto cmp = a.key <=> b.key; cmp != 0) return cmp < 0;
      if (const int cmp = a.doc->doc_id.compare(b.doc->doc_id); cmp != 0) return cmp < 0;
      return a.v->commit < b.v->commit;
    });
    for (const auto& p : all) ix.entries.insert(p.key, *p.doc, *p.v);
    metrics.index_rebuild_count.add();
    metrics.index_rebuild_duration_ns.add(static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - started)
            .count()));
  }

  // Rebuilds every index of every collection from the chains (the end of every open).
  static void rebuild_all(catalog_type& cat, metrics_registry& metrics) {
    for (auto& [name, c] : cat.collections())
      for (auto& [path, ix] : c->indexes) {
        ix->entries.clear();
        build(*c, path, *ix, metrics);
      }
  }
};

}  // namespace aerodb::engine
