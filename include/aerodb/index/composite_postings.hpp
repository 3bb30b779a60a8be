// The composite (schema_version, key) postings of the accelerated index
// (index/accelerated_field_index.hpp, which keeps them in step with its ordered slots).
//
// A hash table keyed by (schema_version, key) — a composite, multi-attribute index —
// whose value is the postings list {key_entry*, CommitId} of that pair. An equality
// lookup is one probe per schema version present; a pre-filtered one is a single probe,
// because a query only ever wants one schema version. Each list lives in a heap node that
// never moves and holds the key, so the ordered slots can point at that key and a key is
// stored once however many entries share it.
//
// Complexity (P postings in a list): add_posting O(1) amortised; remove_posting O(1) for
// a list past posting_list::index_at postings (a position map finds the posting), a scan
// of the list below it (short lists, where a scan is cheapest); for_equal O(schema
// versions present + results), for_equal_prefiltered O(1 + results).
//
// Invariants:
//   - Every list holds at least one posting; a list is erased with its last posting.
//   - A list's node, and so its key, stays put from the list's creation to its erasure:
//     add_posting returns a reference to that key which remains valid until then.
//   - A list's postings are distinct; a list of index_at postings or more has a position
//     map giving each posting's position, kept until it shrinks below unindex_below.
//   - schema_versions_ lists, ascending, every schema version with postings, with the
//     number of postings it has; no count is zero.
//
// Exception safety: add_posting gives the strong guarantee; remove_posting and clear do
// not allocate. Moves leave the source empty. Not copyable: the ordered slots of the
// owner point at the keys in these lists, so the owner copies by re-inserting.
//
// Thread safety: none; the owner's. Const member functions change nothing, so any number
// of readers may run at once.
#pragma once

#include <aerodb/commit_id.hpp>
#include <aerodb/index/field_index.hpp>
#include <aerodb/index/scalar.hpp>
#include <aerodb/index/scalar_hash.hpp>
#include <aerodb/mvcc/version.hpp>

#include <boost/unordered/unordered_flat_map.hpp>
#include <boost/unordered/unordered_flat_set.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

namespace aerodb::index {

class composite_postings {
 public:
  struct posting {
    const mvcc::key_entry* doc = nullptr;
    commit_id version = 0;
    friend bool operator==(const posting&, const posting&) = default;
  };

  composite_postings() = default;
  composite_postings(const composite_postings&) = delete;
  composite_postings& operator=(const composite_postings&) = delete;
  composite_postings(composite_postings&& other) noexcept
      : lists_(std::move(other.lists_)), schema_versions_(std::move(other.schema_versions_)) {
    other.clear();
  }
  composite_postings& operator=(composite_postings&& other) noexcept {
    if (this != &other) {
      lists_ = std::move(other.lists_);
      schema_versions_ = std::move(other.schema_versions_);
      other.clear();
    }
    return *this;
  }
  ~composite_postings() = default;

  void clear() noexcept {
    lists_.clear();
    schema_versions_.clear();
  }

  // Any order (postings order). One probe per schema version present in the index.
  template <class Fn>
  void for_equal(const scalar& key, Fn&& fn) const {
    const std::size_t key_hash = scalar_hash{}(key);
    for (const auto& present : schema_versions_) {
      const auto it = lists_.find(probe_for(present.first, key, key_hash));
      if (it == lists_.end()) continue;
      it->list->for_each([&](const posting& p) { fn(*p.doc, p.version); });
    }
  }

  // A single probe of the composite (schema_version, key) table.
  template <class Fn>
  void for_equal_prefiltered(const scalar& key, const prefilter& f, Fn&& fn) const {
    const auto it = lists_.find(probe_for(f.schema_version, key, scalar_hash{}(key)));
    if (it == lists_.end()) return;
    it->list->for_each([&](const posting& p) {
      if (p.version <= f.bound) fn(*p.doc, p.version);
    });
  }

  // Adds a posting with the strong guarantee: if anything throws, the lists and the
  // schema version counts are as they were. Returns the list's copy of the key, which
  // stays put for as long as the list (and so the entry) exists.
  const scalar& add_posting(const scalar& key, const mvcc::key_entry& doc, commit_id version,
                            std::uint32_t schema_version) {
    const posting p{&doc, version};
    auto sv = std::lower_bound(schema_versions_.begin(), schema_versions_.end(), schema_version,
                               [](const auto& e, std::uint32_t s) { return e.first < s; });
    const bool new_schema_version = sv == schema_versions_.end() || sv->first != schema_version;
    if (new_schema_version) sv = schema_versions_.insert(sv, {schema_version, 0});
    try {
      const list_probe probe = probe_for(schema_version, key, scalar_hash{}(key));
      auto it = lists_.find(probe);
      if (it == lists_.end()) {
        it = lists_.insert(list_ref{probe.hash, std::make_unique<posting_list>(schema_version, key, p)}).first;
      } else {
        append(*it->list, p);
      }
      ++sv->second;
      return it->list->key;
    } catch (...) {
      if (new_schema_version) schema_versions_.erase(sv);
      throw;
    }
  }

  // Removes the posting that the ordered structure says belongs to this entry: the
  // list's last posting fills its place, which keeps the list dense. `key` may be the
  // list's own key, so it is not used once the list is gone.
  void remove_posting(const scalar& key, const posting& p, std::uint32_t schema_version) noexcept {
    const auto it = lists_.find(probe_for(schema_version, key, scalar_hash{}(key)));
    if (it == lists_.end()) return;  // unreachable while the structures agree
    posting_list& list = *it->list;
    position_map* where = list.more ? list.more->where.get() : nullptr;
    const std::size_t last = list.size() - 1;
    std::size_t i = 0;
    if (where) {
      const auto at = where->find(p);
      if (at == where->end()) return;  // unreachable, as above
      i = at->second;
      where->erase(at);
    } else {
      while (i <= last && !(list.at(i) == p)) ++i;
      if (i > last) return;  // unreachable, as above
    }
    if (last == 0) {
      lists_.erase(it);
    } else {
      if (i != last) {
        list.at(i) = list.at(last);
        if (where) where->find(list.at(i))->second = i;
      }
      list.more->items.pop_back();
      if (list.more->items.empty()) {
        list.more.reset();
      } else if (where && last < posting_list::unindex_below) {
        list.more->where.reset();
      }
    }

    const auto sv = std::lower_bound(schema_versions_.begin(), schema_versions_.end(), schema_version,
                                     [](const auto& e, std::uint32_t s) { return e.first < s; });
    if (sv != schema_versions_.end() && sv->first == schema_version && --sv->second == 0)
      schema_versions_.erase(sv);
  }

 private:
  struct posting_hash {
    using is_avalanching = void;
    std::size_t operator()(const posting& p) const noexcept {
      const auto address = static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(p.doc));
      return static_cast<std::size_t>(detail::mix64(address ^ detail::mix64(p.version)));
    }
  };

  using position_map = boost::unordered_flat_map<posting, std::size_t, posting_hash>;

  // The postings of one (schema_version, key) pair, never empty, in a small heap node
  // that never moves: the ordered slots point at its key. Most lists hold one posting
  // (unique fields), which sits in the node; a second one allocates `more`. A long list
  // (a low-cardinality field: a status, a boolean) also gets a map from posting to
  // position, so that erase stays O(1) instead of a scan.
  struct posting_list {
    static constexpr std::size_t index_at = 32;     // build the position map at this length
    static constexpr std::size_t unindex_below = 8;  // drop it below this one

    struct overflow {
      std::vector<posting> items;  // positions 1, 2, ...
      std::unique_ptr<position_map> where;
    };

    posting_list(std::uint32_t sv, const scalar& k, const posting& p) : schema_version(sv), key(k), head(p) {}

    std::size_t size() const noexcept { return 1 + (more ? more->items.size() : 0); }
    posting& at(std::size_t i) noexcept { return i == 0 ? head : more->items[i - 1]; }
    template <class Fn>
    void for_each(Fn&& fn) const {
      fn(head);
      if (more)
        for (const posting& p : more->items) fn(p);
    }

    const std::uint32_t schema_version;
    const scalar key;
    posting head;                     // position 0
    std::unique_ptr<overflow> more;  // positions 1, 2, ... if any
  };

  // The hash table holds 16-byte references to the lists (small slots rehash fast) with
  // each list's hash, so that rehashing never loads a list and a lookup loads only the
  // list whose hash matches.
  struct list_ref {
    std::size_t hash = 0;
    std::unique_ptr<posting_list> list;
  };
  // A lookup that does not copy the key.
  struct list_probe {
    std::size_t hash = 0;
    std::uint32_t schema_version = 0;
    const scalar* key = nullptr;
  };

  struct list_hash {
    using is_transparent = void;
    using is_avalanching = void;
    std::size_t operator()(const list_ref& r) const noexcept { return r.hash; }
    std::size_t operator()(const list_probe& p) const noexcept { return p.hash; }
  };

  struct list_equal {
    using is_transparent = void;
    bool operator()(const list_ref& a, const list_ref& b) const {
      return a.hash == b.hash && a.list->schema_version == b.list->schema_version && a.list->key == b.list->key;
    }
    bool operator()(const list_ref& a, const list_probe& p) const { return matches(a, p); }
    bool operator()(const list_probe& p, const list_ref& a) const { return matches(a, p); }
    static bool matches(const list_ref& a, const list_probe& p) {
      return a.hash == p.hash && a.list->schema_version == p.schema_version && a.list->key == *p.key;
    }
  };

  using list_table = boost::unordered_flat_set<list_ref, list_hash, list_equal>;

  static list_probe probe_for(std::uint32_t schema_version, const scalar& key, std::size_t key_hash) noexcept {
    const auto mixed = detail::mix64(static_cast<std::uint64_t>(key_hash) ^
                                     (std::uint64_t{schema_version} * 0x9e3779b97f4a7c15ULL));
    return {static_cast<std::size_t>(mixed), schema_version, &key};
  }

  // Appends to an existing list with the strong guarantee.
  static void append(posting_list& list, const posting& p) {
    const std::size_t position = list.size();
    std::unique_ptr<typename posting_list::overflow> created;
    if (!list.more) created = std::make_unique<typename posting_list::overflow>();
    auto& more = list.more ? *list.more : *created;
    std::unique_ptr<position_map> where;  // built here when the list reaches index_at
    if (!more.where && position + 1 >= posting_list::index_at) {
      where = std::make_unique<position_map>();
      where->reserve(position + 1);
      for (std::size_t i = 0; i < position; ++i) where->emplace(list.at(i), i);
    }
    position_map* positions = more.where ? more.where.get() : where.get();
    if (positions) positions->emplace(p, position);
    try {
      more.items.push_back(p);
    } catch (...) {
      if (positions == more.where.get() && positions) positions->erase(p);
      throw;
    }
    // Nothing below throws.
    if (created) list.more = std::move(created);
    if (where) list.more->where = std::move(where);
  }

  list_table lists_;
  // Schema versions present, ascending, with their entry counts: for_equal probes the
  // table once per schema version listed here.
  std::vector<std::pair<std::uint32_t, std::size_t>> schema_versions_;
};

}  // namespace aerodb::index
