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
// Complexity (P postings in a list): add_posting O(1) amortised; remove_posting O(1)
// amortised for a list of posting_list::index_at postings or more (a position map finds
// the posting; the first removal from such a list builds the map, O(P) once), a scan of
// the list below that length (short lists, where a scan is cheapest); for_equal
// O(schema versions present + results), for_equal_prefiltered O(1 + results).
//
// Why the position map waits for a removal: most long lists are only ever appended to
// (an index rebuilt at every open, a field whose old versions nobody collects), and
// keeping a map for them cost a hash insert per posting and about 30 bytes per entry
// (perf of a 1M-document open, docs/benchmarks.md). A list that has removals pays for
// its map once, at the first.
//
// Invariants:
//   - Every list holds at least one posting; a list is erased with its last posting.
//   - A list's node, and so its key, stays put from the list's creation to its erasure:
//     add_posting returns a reference to that key which remains valid until then.
//   - A list's postings are distinct. A list may have a position map, giving each of its
//     postings' positions, only while it holds unindex_below postings or more; once a
//     list has one, every add and removal keeps it exact.
//   - schema_versions_ lists, ascending, every schema version with postings, with the
//     number of postings it has; no count is zero.
//
// Exception safety: add_posting gives the strong guarantee; remove_posting and clear do
// not throw (a position map that cannot be allocated is not built, and the removal
// scans the list instead). Moves leave the source empty. Not copyable: the ordered slots of the
// owner point at the keys in these lists, so the owner copies by re-inserting.
//
// Thread safety: none; the owner's. Const member functions change nothing, so any number
// of readers may run at once.
#pragma once

#include <aerodb/commit_id.hpp>
#include <aerodb/index/field_index.hpp>
#include <aerodb/index/huge_page_allocator.hpp>
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
      : lists_(std::move(other.lists_)),
        bulk_(std::exchange(other.bulk_, false)),
        aside_(std::move(other.aside_)),
        run_(std::move(other.run_)),
        schema_versions_(std::move(other.schema_versions_)) {
    other.clear();
  }
  composite_postings& operator=(composite_postings&& other) noexcept {
    if (this != &other) {
      lists_ = std::move(other.lists_);
      bulk_ = std::exchange(other.bulk_, false);
      aside_ = std::move(other.aside_);
      run_ = std::move(other.run_);
      schema_versions_ = std::move(other.schema_versions_);
      other.clear();
    }
    return *this;
  }
  ~composite_postings() = default;

  void clear() noexcept {
    lists_.clear();
    schema_versions_.clear();
    aside_.clear();
    run_.clear();
    bulk_ = false;
  }

  // ---- bulk fill ----------------------------------------------------------------------
  // A rebuild adds its postings in key order. Inserting each new list into the table as it
  // comes touches a random group and a random slot of a table tens of megabytes long: two
  // cache misses per key, most of a 1M-key rebuild's time (perf annotate of add_posting,
  // docs/benchmarks.md). Between begin_bulk and end_bulk, add_posting instead keeps the new
  // lists aside (a run of equal keys shares them, so no table is needed to find them), and
  // end_bulk inserts them sorted by hash, which walks the table from one end to the other.
  //
  // A bulk fill is for an empty table: begin_bulk on a table with lists does nothing (the
  // adds then go to the table as usual), since a list kept aside could duplicate one that
  // is in it. Until end_bulk the table answers no lookup (the rebuild holds the state lock
  // exclusively, so nobody asks), and remove_posting must not be called. A key that comes
  // out of order ends the bulk fill early (every list kept aside goes into the table
  // first); the postings are the same either way.
  void begin_bulk(std::size_t lists) {
    if (bulk_ || !lists_.empty()) return;
    aside_.reserve(lists);
    bulk_ = true;
  }

  // Puts the lists kept aside into the table. If the table's room cannot be allocated,
  // throws with every list still kept aside (the bulk fill open), so the owner can clear.
  void end_bulk() {
    if (!bulk_) return;
    lists_.reserve(lists_.size() + aside_.size());
    // Nothing below allocates: the table has room for every list.
    std::sort(aside_.begin(), aside_.end(), [](const list_ref& a, const list_ref& b) { return a.hash < b.hash; });
    for (auto& r : aside_) lists_.insert(std::move(r));
    aside_.clear();
    aside_.shrink_to_fit();
    run_.clear();
    bulk_ = false;
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
      if (bulk_) {
        if (run_.empty() || key_order(run_.front()->key, key) == 0) {
          const scalar* stored = bulk_add(key, p, schema_version);
          ++sv->second;
          return *stored;
        }
        if (key_order(run_.front()->key, key) < 0) {
          run_.clear();
          const scalar* stored = bulk_add(key, p, schema_version);
          ++sv->second;
          return *stored;
        }
        end_bulk();  // out of order: the table takes over
      }
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
    if (list.more && !list.more->where && list.size() >= posting_list::index_at) build_positions(list);
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
  // (a low-cardinality field: a status, a boolean) that has a removal also gets a map
  // from posting to position, so that erase stays O(1) instead of a scan.
  struct posting_list {
    static constexpr std::size_t index_at = 32;     // a removal from this length on builds the map
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

  using list_table = boost::unordered_flat_set<list_ref, list_hash, list_equal, huge_page_allocator<list_ref>>;

  static list_probe probe_for(std::uint32_t schema_version, const scalar& key, std::size_t key_hash) noexcept {
    const auto mixed = detail::mix64(static_cast<std::uint64_t>(key_hash) ^
                                     (std::uint64_t{schema_version} * 0x9e3779b97f4a7c15ULL));
    return {static_cast<std::size_t>(mixed), schema_version, &key};
  }

  static int key_order(const scalar& a, const scalar& b) {
    const auto c = a <=> b;
    return c < 0 ? -1 : c > 0 ? 1 : 0;
  }

  // add_posting during a bulk fill, for a key equal to the run's (or the first of a new
  // run): appends to the run's list of this schema version, or keeps a new one aside.
  // Strong guarantee, like add_posting.
  const scalar* bulk_add(const scalar& key, const posting& p, std::uint32_t schema_version) {
    for (posting_list* list : run_)
      if (list->schema_version == schema_version) {
        append(*list, p);
        return &list->key;
      }
    run_.reserve(run_.size() + 1);
    aside_.reserve(aside_.size() + 1);
    auto list = std::make_unique<posting_list>(schema_version, key, p);
    posting_list* made = list.get();
    const list_probe probe = probe_for(schema_version, made->key, scalar_hash{}(made->key));
    // Nothing below throws: both vectors have room.
    aside_.push_back(list_ref{probe.hash, std::move(list)});
    run_.push_back(made);
    return &made->key;
  }

  // Appends to an existing list with the strong guarantee.
  static void append(posting_list& list, const posting& p) {
    const std::size_t position = list.size();
    std::unique_ptr<typename posting_list::overflow> created;
    if (!list.more) created = std::make_unique<typename posting_list::overflow>();
    auto& more = list.more ? *list.more : *created;
    position_map* positions = more.where.get();
    if (positions) positions->emplace(p, position);
    try {
      more.items.push_back(p);
    } catch (...) {
      if (positions) positions->erase(p);
      throw;
    }
    // Nothing below throws.
    if (created) list.more = std::move(created);
  }

  // Gives a long list its position map, for the removal about to be made from it. If the
  // map cannot be allocated the list goes on without one: the removal scans.
  static void build_positions(posting_list& list) noexcept {
    try {
      auto where = std::make_unique<position_map>();
      where->reserve(list.size());
      for (std::size_t i = 0; i < list.size(); ++i) where->emplace(list.at(i), i);
      list.more->where = std::move(where);
    } catch (...) {
    }
  }

  list_table lists_;
  // A bulk fill's state: whether one is open, the new lists it keeps aside for end_bulk,
  // and the lists of the current run of equal keys (one per schema version), in aside_.
  bool bulk_ = false;
  std::vector<list_ref> aside_;
  std::vector<posting_list*> run_;
  // Schema versions present, ascending, with their entry counts: for_equal probes the
  // table once per schema version listed here.
  std::vector<std::pair<std::uint32_t, std::size_t>> schema_versions_;
};

}  // namespace aerodb::index
