// An accelerated secondary index: the same entries and the same contract as
// ordered_field_index (index/field_index.hpp), held in two structures that are always
// updated together, so that ranges and equality lookups each get a structure built for
// them:
//
//   ordered    blocked_sorted_slots (index/blocked_sorted_slots.hpp): a blocked sorted
//              vector of entries in (key, _id, CommitId) order, with a Fenwick tree over
//              the block sizes, for ranges, counts and the pre-filtered ordered walk.
//   composite  composite_postings (index/composite_postings.hpp): a hash table keyed by
//              (schema_version, key) whose value is the postings list of that pair, for
//              equality lookups. Its lists own the keys; the ordered slots point at them,
//              so a key is stored once however many entries share it.
//
// This header owns what ties the two together; each structure's own layout, complexity
// and invariants are at the top of its header.
//
// Invariants:
//   - Both structures hold exactly the same entries; size() is their number. A slot with
//     schema version s and key k points at the key of the list (s, k), which holds that
//     slot's posting; so a list (and its key) outlives every slot that points at it.
//   - Entries are unique by (key, _id, CommitId), keys compared in the scalar total order
//     (so 3 and 3.0 are one key), exactly like the baseline's std::set: inserting a
//     present entry is a no-op and keeps the first entry's key_entry and schema version.
//   - The ordered structure decides identity: erase finds the stored entry there and then
//     removes exactly that entry's posting, so the two can never disagree about which
//     key_entry an entry refers to.
//
// Exception safety: if an allocation fails, insert throws and leaves the index as it was
// (possibly with a block split, which changes no answer): the slots make every
// allocation of theirs, then the posting is added (strong guarantee), then the slot is
// written, which cannot fail. erase and clear do not allocate. Moves leave the source
// empty; copies re-insert every entry.
//
// Thread safety: none, as for the baseline: the engine mutates it under its exclusive
// state lock and reads it under the shared one. Const member functions change nothing (no
// lazily built caches), so any number of readers may run at once.
#pragma once

#include <aerodb/commit_id.hpp>
#include <aerodb/index/blocked_sorted_slots.hpp>
#include <aerodb/index/composite_postings.hpp>
#include <aerodb/index/field_index.hpp>
#include <aerodb/index/scalar.hpp>
#include <aerodb/index/scalar_hash.hpp>
#include <aerodb/mvcc/version.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <utility>

namespace aerodb::index {

// The index with `BlockCapacity` entries per block; accelerated_field_index (below) is
// the one to use. Tests instantiate tiny blocks to make splits and merges frequent.
template <std::size_t BlockCapacity>
class basic_accelerated_field_index {
  using slots = blocked_sorted_slots<BlockCapacity>;

 public:
  static constexpr std::size_t block_capacity = slots::block_capacity;

  basic_accelerated_field_index() = default;

  // Slots point at keys owned by the other index's lists, so a copy re-inserts every
  // entry; in order, so every insert appends.
  basic_accelerated_field_index(const basic_accelerated_field_index& other) {
    other.ordered_.for_each(
        [&](const typename slots::slot& s) { add(*s.key, *s.doc, s.version, s.schema_version); });
  }
  basic_accelerated_field_index(basic_accelerated_field_index&& other) noexcept
      : ordered_(std::move(other.ordered_)), composite_(std::move(other.composite_)) {
    other.clear();
  }
  basic_accelerated_field_index& operator=(const basic_accelerated_field_index& other) {
    if (this != &other) *this = basic_accelerated_field_index(other);
    return *this;
  }
  basic_accelerated_field_index& operator=(basic_accelerated_field_index&& other) noexcept {
    if (this != &other) {
      ordered_ = std::move(other.ordered_);
      composite_ = std::move(other.composite_);
      other.clear();
    }
    return *this;
  }
  ~basic_accelerated_field_index() = default;

  void insert(const scalar& key, const mvcc::key_entry& doc, const mvcc::version& v) {
    add(key, doc, v.commit, v.schema_version);
  }
  // The same entry from the version's CommitId and schema version, without reading the
  // version (a rebuild has them at hand; the engine/indexer.hpp comment says why).
  void insert(const scalar& key, const mvcc::key_entry& doc, commit_id version, std::uint32_t schema_version) {
    add(key, doc, version, schema_version);
  }

  // The same entry, trying `hint` first (blocked_sorted_slots::insert_hint): a run of
  // entries inserted in index order finds each place next to the last one.
  using insert_hint = typename slots::insert_hint;
  void insert(const scalar& key, const mvcc::key_entry& doc, const mvcc::version& v, insert_hint& hint) {
    ordered_.insert(
        key, doc, v.commit, v.schema_version,
        [&]() -> const scalar& { return composite_.add_posting(key, doc, v.commit, v.schema_version); }, hint);
  }

  // Erasing an absent entry is a no-op. Matches by (key, _id, CommitId) like the baseline.
  void erase(const scalar& key, const mvcc::key_entry& doc, const mvcc::version& v) {
    ordered_.erase(key, doc, v.commit, [&](const typename slots::slot& gone) {
      composite_.remove_posting(*gone.key, composite_postings::posting{gone.doc, gone.version},
                                gone.schema_version);
    });
  }

  std::size_t size() const noexcept { return ordered_.size(); }

  // A rebuild's bulk fill (engine/indexer.hpp): between the two calls, entries are
  // inserted in index order and the equality table is written once at the end, in hash
  // order (composite_postings' bulk fill says why). `distinct_keys` is how many keys are
  // coming. Nothing may be looked up or erased in between. If end_bulk_fill cannot
  // allocate, the index is left empty and the exception passes on.
  void begin_bulk_fill(std::size_t distinct_keys) { composite_.begin_bulk(distinct_keys); }
  void end_bulk_fill() {
    try {
      composite_.end_bulk();
    } catch (...) {
      clear();
      throw;
    }
  }

  void clear() noexcept {
    ordered_.clear();
    composite_.clear();
  }

  // Calls fn(const mvcc::key_entry& doc, commit_id version) for the entries whose key
  // lies in the range, ascending by (key, _id, CommitId).
  template <class Fn>
  void for_range(const std::optional<bound>& lower, const std::optional<bound>& upper, Fn&& fn) const {
    ordered_.for_range(lower, upper, std::forward<Fn>(fn));
  }

  // Any order (postings order). One probe per schema version present in the index.
  template <class Fn>
  void for_equal(const scalar& key, Fn&& fn) const {
    composite_.for_equal(key, std::forward<Fn>(fn));
  }

  std::uint64_t count_range(const std::optional<bound>& lower, const std::optional<bound>& upper) const {
    return ordered_.count_range(lower, upper);
  }

  // Like for_range, but may skip entries that no query with this prefilter can use: it
  // calls fn only for entries with version <= f.bound and schema_version ==
  // f.schema_version, and never skips one that has both. Whole blocks whose summary rules
  // them out are skipped without looking at their entries.
  template <class Fn>
  void for_range_prefiltered(const std::optional<bound>& lower, const std::optional<bound>& upper,
                             const prefilter& f, Fn&& fn) const {
    ordered_.for_range_prefiltered(lower, upper, f, std::forward<Fn>(fn));
  }

  // The ordered walk behind the executor's index-order hint (read_view.hpp): like
  // for_range_prefiltered, ascending by (key, _id, CommitId), but fn also gets the entry's
  // key and returns false to stop the walk early.
  template <class Fn>
  void for_range_until(const std::optional<bound>& lower, const std::optional<bound>& upper,
                       const prefilter& f, Fn&& fn) const {
    ordered_.for_range_until(lower, upper, f, std::forward<Fn>(fn));
  }

  // The same walk from a resume point (a query's continuation): one search, not a walk to it.
  template <class Fn>
  void for_range_until(const std::optional<bound>& lower, const std::optional<bound>& upper,
                       const resume_after& after, const prefilter& f, Fn&& fn) const {
    ordered_.for_range_until(lower, upper, after, f, std::forward<Fn>(fn));
  }

  // The cursor's walk (query/cursor.hpp; the contract is ordered_field_index's).
  template <class Fn>
  void for_range_after(const std::optional<bound>& lower, const std::optional<bound>& upper,
                       const std::optional<resume_after>& after, commit_id max_version, Fn&& fn) const {
    ordered_.for_range_after(lower, upper, after, max_version, std::forward<Fn>(fn));
  }

  // A single probe of the composite (schema_version, key) table.
  template <class Fn>
  void for_equal_prefiltered(const scalar& key, const prefilter& f, Fn&& fn) const {
    composite_.for_equal_prefiltered(key, f, std::forward<Fn>(fn));
  }

 private:
  void add(const scalar& key, const mvcc::key_entry& doc, commit_id version, std::uint32_t schema_version) {
    ordered_.insert(key, doc, version, schema_version, [&]() -> const scalar& {
      return composite_.add_posting(key, doc, version, schema_version);
    });
  }

  slots ordered_;
  composite_postings composite_;
};

// 256 slots of 48 bytes are 12 KiB per block: a random insert shifts about 4 KiB (one
// memmove), while the block count — and with it the cost of a split, which shifts the
// per-block arrays and rebuilds the Fenwick tree — stays near n / 180. On 1M random
// inserts 128, 192 and 256 measured alike, 384 and more slower, 64 much slower (splits).
using accelerated_field_index = basic_accelerated_field_index<256>;

}  // namespace aerodb::index
