// The catalog: registered schema versions, collections, and the index definitions of each
// collection, together with the containers the other rooms fill (each collection's
// primary map of version chains, each index's entries).
//
// Owns: the schema map and the collection map. A catalog change (a schema, a collection,
// an index) enters through exactly one function, `apply`, whether it comes from a live
// commit (write path step W5, docs/architecture.md), from a replayed log record, or from a
// snapshot being loaded; `check` is the same validation without the change, run at step W4.
//
// Thread safety: none of its own. The catalog lives inside the version store and is
// guarded by the store's state lock (engine/version_store.hpp): shared to look up,
// exclusive to apply. The commit pipeline, the catalog's only writer, may look up without
// the lock, since nothing else changes it.
//
// Invariants:
//   - schemas and collections are never removed, so pointers to them stay valid for the
//     catalog's life;
//   - every collection has an "_id" index created with it;
//   - a definition's CommitId (registered_at / created_at) never changes once applied.
#pragma once

#include <aerodb/document/limits.hpp>
#include <aerodb/error.hpp>
#include <aerodb/format/wal_format.hpp>
#include <aerodb/mvcc/version.hpp>
#include <aerodb/options.hpp>
#include <aerodb/schema/schema.hpp>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace aerodb::engine {

// A collection name is 1 to 64 characters of A-Z, a-z, 0-9, '_' and '-'.
inline bool valid_collection_name(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  for (const char c : name)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
          c == '-'))
      return false;
  return true;
}

// An index field is a dotted path of valid field names, at most max_field_path_bytes long.
inline bool valid_field_path(std::string_view path) {
  if (path.empty() || path.size() > max_field_path_bytes) return false;
  std::size_t start = 0;
  while (true) {
    const auto dot = path.find('.', start);
    const auto part =
        path.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    if (!valid_field_name(part, document_limits{}.max_field_name_bytes)) return false;
    if (dot == std::string_view::npos) return true;
    start = dot + 1;
  }
}

// One change of the catalog, as a commit request, a log record and a snapshot entry all
// describe it.
struct schema_definition {
  std::shared_ptr<const schema> def;
};
using catalog_change =
    std::variant<schema_definition, format::collection_create_record, format::index_create_record>;

template <class IndexPolicy>
class catalog {
 public:
  struct index_state {
    commit_id created_at = 0;
    typename IndexPolicy::field_index entries;
  };

  using collection_keys =
      typename IndexPolicy::template primary_map<std::unique_ptr<mvcc::key_entry>>;

  struct collection_state {
    std::string name;
    std::string schema_id;
    commit_id created_at = 0;
    collection_keys keys;  // the version chains, one per document key (version_store.hpp)
    // Field path -> index. "_id" is always there, created with the collection.
    std::map<std::string, std::unique_ptr<index_state>, std::less<>> indexes;

    const mvcc::key_entry* find_key(std::string_view doc_id) const {
      auto it = keys.find(doc_id);
      return it == keys.end() ? nullptr : it->second.get();
    }
    // The index on `field` as a view at `bound` may use it, or null.
    const index_state* index_at(std::string_view field, commit_id bound) const {
      auto it = indexes.find(field);
      if (it == indexes.end() || it->second->created_at > bound) return nullptr;
      return it->second.get();
    }
  };

  struct schema_entry {
    std::shared_ptr<const schema> def;
    commit_id registered_at = 0;
  };

  // (schema id, version), ordered by id then version, searchable without copying the id.
  struct schema_key_less {
    using is_transparent = void;
    template <class A, class B>
    bool operator()(const A& a, const B& b) const {
      const std::string_view ai(a.first), bi(b.first);
      return ai < bi || (ai == bi && a.second < b.second);
    }
  };
  using schema_map =
      std::map<std::pair<std::string, std::uint32_t>, schema_entry, schema_key_less>;
  using collection_map = std::map<std::string, std::unique_ptr<collection_state>, std::less<>>;

  // The errors a change meets against the current catalog (step W4), with the codes a
  // caller sees; nothing when `apply` would succeed.
  result<void> check(const catalog_change& change) const {
    return std::visit([&](const auto& c) { return this->check_one(c); }, change);
  }

  // Applies a change made by commit `at`: the one path for live commits, replay and
  // snapshot load. Fails, changing nothing, exactly when `check` fails.
  result<void> apply(const catalog_change& change, commit_id at) {
    AERO_TRY(check(change));
    std::visit([&](const auto& c) { apply_checked(c, at); }, change);
    return ok();
  }

  // ---- look-ups (REQUIRES: the state lock held, shared or exclusive, or the pipeline)

  bool schema_known(std::string_view id) const {
    auto it = schemas_.lower_bound(std::pair<std::string_view, std::uint32_t>(id, 0));
    return it != schemas_.end() && it->first.first == id;
  }
  const schema_entry* find_schema(std::string_view id, std::uint32_t version) const {
    auto it = schemas_.find(std::pair<std::string_view, std::uint32_t>(id, version));
    return it == schemas_.end() ? nullptr : &it->second;
  }
  collection_state* find_collection(std::string_view name) {
    auto it = collections_.find(name);
    return it == collections_.end() ? nullptr : it->second.get();
  }
  const collection_state* find_collection(std::string_view name) const {
    auto it = collections_.find(name);
    return it == collections_.end() ? nullptr : it->second.get();
  }
  const schema_map& schemas() const noexcept { return schemas_; }
  const collection_map& collections() const noexcept { return collections_; }
  collection_map& collections() noexcept { return collections_; }

 private:
  result<void> check_one(const schema_definition& s) const {
    if (find_schema(s.def->id(), s.def->version()))
      return error(errc::schema_immutable,
                   "this schema version is already registered; register a new version",
                   {{"schema_id", s.def->id()}, {"version", std::to_string(s.def->version())}});
    return ok();
  }
  result<void> check_one(const format::collection_create_record& c) const {
    if (!schema_known(c.schema_id))
      return error(errc::unknown_schema, "no version of this schema is registered",
                   {{"schema_id", c.schema_id}});
    if (collections_.count(c.name))
      return error(errc::collection_exists, "a collection with this name exists",
                   {{"collection", c.name}});
    return ok();
  }
  result<void> check_one(const format::index_create_record& ix) const {
    if (!valid_field_path(ix.path))
      return error(errc::index_invalid_field, "an index field is a dotted path of valid field names",
                   {{"field", ix.path}});
    const collection_state* c = find_collection(ix.collection);
    if (!c)
      return error(errc::collection_unknown, "no such collection", {{"collection", ix.collection}});
    if (c->indexes.count(ix.path))
      return error(errc::index_exists, "this field is already indexed",
                   {{"collection", c->name}, {"field", ix.path}});
    return ok();
  }

  void apply_checked(const schema_definition& s, commit_id at) {
    auto key = std::pair<std::string, std::uint32_t>(s.def->id(), s.def->version());
    schemas_.emplace(std::move(key), schema_entry{s.def, at});
  }
  void apply_checked(const format::collection_create_record& c, commit_id at) {
    auto state = std::make_unique<collection_state>();
    state->name = c.name;
    state->schema_id = c.schema_id;
    state->created_at = at;
    add_index(*state, "_id", at);
    std::string name = state->name;
    collections_.emplace(std::move(name), std::move(state));
  }
  // Registers the index; its entries are built by the indexer (engine/indexer.hpp) once
  // the record is durable, or once replay or a snapshot load is done.
  void apply_checked(const format::index_create_record& ix, commit_id at) {
    add_index(*find_collection(ix.collection), ix.path, at);
  }
  static void add_index(collection_state& c, std::string path, commit_id at) {
    auto ix = std::make_unique<index_state>();
    ix->created_at = at;
    c.indexes.emplace(std::move(path), std::move(ix));
  }

  schema_map schemas_;
  collection_map collections_;
};

}  // namespace aerodb::engine
