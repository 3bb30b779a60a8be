// The ordered structure of the accelerated index (index/accelerated_field_index.hpp):
// a blocked sorted vector of entries in (key, _id, CommitId) order.
//
// A list of blocks, each a fixed array of at most `block_capacity` sorted slots. A slot
// is 48 trivially copyable bytes: a 16-byte order-preserving abbreviation of its key, a
// pointer to the key, the key_entry, the CommitId and the schema version. Next to the
// blocks sit two compact arrays: each block's last abbreviation (its fence) and its size.
// A lookup binary-searches the fences and then one block, both settled by abbreviations
// except on ties; an insert or erase shifts the shorter side of its position inside one
// block with a memmove; a walk over a range streams through contiguous slots instead of
// chasing tree nodes. A Fenwick tree over the block sizes gives the rank of any position
// in O(log blocks), so count_range is exact without walking the range.
//
// The slots do not own their keys: a slot points at a copy of its key that the owner
// keeps (insert's store_key), and that copy must outlive the slot.
//
// Complexity (n entries, C = block_capacity, B = about n / (0.7 C) blocks): insert and
// erase O(log n + C), plus O(B) on the rare split or merge to shift the per-block arrays
// and rebuild the Fenwick tree; for_range O(log n + results); count_range O(log n);
// for_range_prefiltered and for_range_until at most for_range's cost.
//
// Invariants:
//   - Entries are unique by (key, _id, CommitId), keys compared in the scalar total order
//     (so 3 and 3.0 are one key), exactly like the baseline's std::set: inserting a
//     present entry is a no-op and keeps the first entry's key_entry and schema version.
//   - Every block holds between 1 and `block_capacity` entries — except a lone block,
//     which is empty when the structure is; the blocks' concatenation is sorted.
//     fences_[b] abbreviates block b's last key and sizes_[b] is its entry count;
//     counts_ is the Fenwick tree over sizes_, and size_ their sum.
//   - A block's summary (a lower bound on its CommitIds, a superset of its schema versions
//     as bits) covers every entry in it, so a pre-filtered walk may skip a whole block
//     that cannot match. Erases leave it loose; splits and merges recompute it.
//
// Exception safety: if an allocation fails, insert throws and leaves the slots as they
// were (possibly with a block split, which changes no answer). erase and clear do not
// allocate. Moves leave the source empty. Not copyable: the keys belong to the owner, so
// the owner copies by re-inserting (for_each walks the slots in order).
//
// Thread safety: none; the owner's. Const member functions change nothing (no lazily
// built caches), so any number of readers may run at once.
#pragma once

#include <aerodb/commit_id.hpp>
#include <aerodb/index/field_index.hpp>
#include <aerodb/index/scalar.hpp>
#include <aerodb/mvcc/version.hpp>

#include <algorithm>
#include <array>
#include <bit>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <span>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace aerodb::index {

template <std::size_t BlockCapacity>
class blocked_sorted_slots {
 public:
  static constexpr std::size_t block_capacity = BlockCapacity;
  static_assert(block_capacity >= 4, "merging needs room below a quarter of a block");

 private:
  // ---- keys -------------------------------------------------------------------------------
  // An order-preserving summary of a key in two words, compared high word first:
  // abbreviate(a) < abbreviate(b) implies a < b (and > implies >), so most comparisons
  // are settled without loading the key itself, which lives in another allocation.
  // Equal abbreviations settle nothing.
  struct abbreviation {
    std::uint64_t high;  // the type rank in the top two bits, then 62 bits of value
    std::uint64_t low;   // more of the value, for when `high` ties
    friend auto operator<=>(const abbreviation&, const abbreviation&) = default;
  };

  // Numbers become doubles (rounding to nearest is monotonic, so int/float order is kept
  // up to ties) mapped to unsigned integers in the same order: `high` holds the top 62
  // bits and `low` all 64, so a tie on both means the same double. Strings keep their
  // first fifteen bytes, big-endian, which orders them bytewise up to ties: `high` holds
  // bytes 0-7 less the last two bits, `low` bytes 7-14, so that a tie on `high` leaves
  // byte 7 to `low` in full. Integers beyond 2^53, strings sharing fifteen bytes and
  // equal keys tie and go to the full comparison.
  static abbreviation abbreviate(const scalar& k) noexcept {
    const auto number_bits = [](double d) {
      if (d == 0) d = 0.0;  // -0.0 == 0.0
      const auto u = std::bit_cast<std::uint64_t>(d);
      return (u >> 63) != 0 ? ~u : u | (std::uint64_t{1} << 63);
    };
    const auto big_endian = [](std::string_view bytes) {
      std::uint64_t w = 0;
      for (std::size_t i = 0; i < 8 && i < bytes.size(); ++i)
        w |= std::uint64_t{static_cast<unsigned char>(bytes[i])} << (56 - 8 * i);
      return w;
    };
    std::uint64_t head = 0, tail = 0;
    switch (k.type()) {
      case scalar::kind::boolean: head = k.as_bool() ? 4U : 0U; break;
      case scalar::kind::integer: head = tail = number_bits(static_cast<double>(k.as_int())); break;
      case scalar::kind::floating: head = tail = number_bits(k.as_double()); break;
      case scalar::kind::string: {
        const std::string_view str = k.as_string();
        head = big_endian(str);
        if (str.size() > 7) tail = big_endian(str.substr(7));
        break;
      }
    }
    const auto rank = static_cast<std::uint64_t>(scalar::type_rank(k.type()));
    return {(rank << 62) | (head >> 2), tail};
  }

  // scalar's own <=> with the common same-kind cases inlined.
  static int compare_keys(const scalar& a, const scalar& b) {
    if (a.type() == b.type()) {
      if (a.type() == scalar::kind::integer) return a.as_int() < b.as_int() ? -1 : a.as_int() > b.as_int() ? 1 : 0;
      if (a.type() == scalar::kind::string) {
        const int c = a.as_string().compare(b.as_string());
        return c < 0 ? -1 : c > 0 ? 1 : 0;
      }
    }
    const auto c = a <=> b;
    return c < 0 ? -1 : c > 0 ? 1 : 0;
  }

 public:
  // ---- slots ------------------------------------------------------------------------------
  // Trivially copyable (shifting slots is a memmove) and trivially default-constructible
  // (a new block's array is left uninitialised until slots are written into it).
  struct slot {
    abbreviation abbr;    // of *key
    const scalar* key;    // not owned: the copy insert's store_key() returned
    const mvcc::key_entry* doc;
    commit_id version;
    std::uint32_t schema_version;
  };
  static_assert(std::is_trivially_copyable_v<slot> && std::is_trivially_default_constructible_v<slot> &&
                sizeof(slot) <= 48);

  blocked_sorted_slots() = default;
  blocked_sorted_slots(const blocked_sorted_slots&) = delete;
  blocked_sorted_slots& operator=(const blocked_sorted_slots&) = delete;
  blocked_sorted_slots(blocked_sorted_slots&& other) noexcept
      : blocks_(std::move(other.blocks_)),
        fences_(std::move(other.fences_)),
        sizes_(std::move(other.sizes_)),
        counts_(std::move(other.counts_)),
        size_(std::exchange(other.size_, 0)) {
    other.clear();
  }
  blocked_sorted_slots& operator=(blocked_sorted_slots&& other) noexcept {
    if (this != &other) {
      blocks_ = std::move(other.blocks_);
      fences_ = std::move(other.fences_);
      sizes_ = std::move(other.sizes_);
      counts_ = std::move(other.counts_);
      size_ = std::exchange(other.size_, 0);
      other.clear();
    }
    return *this;
  }
  ~blocked_sorted_slots() = default;

  // Where the entry after the last hinted insert would go: an ascending run of inserts
  // (a write batch's entries, sorted) mostly puts each entry right after the previous
  // one, in a block already in cache. Only a guess: insert uses it only when the entries
  // on both sides of it are in the same block and order the new entry strictly between
  // them, which is the one place it can go, so a stale hint (the slots changed since)
  // costs a search, never a misplaced entry. A default hint guesses nothing.
  struct insert_hint {
    std::size_t block = std::numeric_limits<std::size_t>::max();
    std::size_t offset = 0;
  };

  // Inserts the entry (key, doc._id, version) unless it is present, which is a no-op.
  // store_key() is called once the entry is sure to go in and every allocation of its own
  // is done; it returns the copy of `key` the new slot will point at, which must outlive
  // the slot. If store_key (or an allocation before it) throws, the slots are as they
  // were, but for a block split, which changes no answer.
  template <class StoreKey>
  void insert(const scalar& key, const mvcc::key_entry& doc, commit_id version, std::uint32_t schema_version,
              StoreKey&& store_key) {
    insert_impl(key, doc, version, schema_version, std::forward<StoreKey>(store_key), nullptr);
  }

  // The same, trying `hint` first; afterwards `hint` guesses the place right after the
  // entry (or is left as it was when the entry was already present).
  template <class StoreKey>
  void insert(const scalar& key, const mvcc::key_entry& doc, commit_id version, std::uint32_t schema_version,
              StoreKey&& store_key, insert_hint& hint) {
    insert_impl(key, doc, version, schema_version, std::forward<StoreKey>(store_key), &hint);
  }

 private:
  template <class StoreKey>
  void insert_impl(const scalar& key, const mvcc::key_entry& doc, commit_id version, std::uint32_t schema_version,
                   StoreKey&& store_key, insert_hint* hint) {
    if (blocks_.empty()) {
      // A lone empty block gives the entry a place to go; keeping it when the index
      // empties again is allowed by the invariants.
      auto first = make_block();
      reserve_blocks(1);
      insert_block(0, std::move(first), 0);
    }
    const entry_probe probe{key, abbreviate(key), doc.doc_id, version};
    std::size_t b = blocks_.size() - 1, off = 0;
    if (hint_fits(hint, probe)) {
      b = hint->block;
      off = hint->offset;
    } else if (sizes_[b] != 0 && compare(last_slot(b), probe) < 0) {
      // After every entry (a rebuild fills in index order): one comparison, no search.
      off = sizes_[b];
    } else {
      b = first_block_not_before(probe);
      if (b == blocks_.size()) b = blocks_.size() - 1;  // after every entry: append to the last block
      off = offset_not_before(b, probe);
      if (off < sizes_[b] && compare(live(b)[off], probe) == 0) return;
    }

    std::unique_ptr<block> fresh;
    if (sizes_[b] == block_capacity) {
      if (off == block_capacity) {
        // Appending after every entry (ascending keys, e.g. timestamps): a fresh block
        // keeps full blocks full instead of leaving two halves behind. It joins the list
        // only once the entry is sure to go into it (an empty block may not stay).
        fresh = make_block();
        reserve_blocks(1);
      } else {
        split(b);
        if (off > sizes_[b]) {
          off -= sizes_[b];
          ++b;
        }
      }
    }

    const scalar& stored_key = store_key();
    // From here on nothing allocates or throws, so the owner's structures change together
    // or not at all.
    if (fresh) {
      insert_block(b + 1, std::move(fresh), 0);
      ++b;
      off = 0;
    }
    block& target = *blocks_[b];
    slot* items = target.items.data();
    const std::size_t first = target.first, n = sizes_[b];
    const bool room_left = first > 0, room_right = first + n < block_capacity;  // one at least
    if (room_left && (off < n - off || !room_right)) {
      std::copy(items + first, items + first + off, items + first - 1);
      target.first = first - 1;
    } else {
      std::copy_backward(items + first + off, items + first + n, items + first + n + 1);
    }
    items[target.first + off] = slot{probe.abbr, &stored_key, &doc, version, schema_version};
    ++sizes_[b];
    fences_[b] = last_slot(b).abbr;
    target.min_version = std::min(target.min_version, version);
    target.schema_mask |= schema_bit(schema_version);
    count_add(b);
    ++size_;
    if (hint) *hint = insert_hint{b, off + 1};
  }

 public:

  // Erasing an absent entry is a no-op. Matches by (key, _id, CommitId) like the baseline.
  // released(slot) gets a copy of the removed slot, before blocks are merged or removed,
  // so that the owner can let go of what the slot pointed at.
  template <class Released>
  void erase(const scalar& key, const mvcc::key_entry& doc, commit_id version, Released&& released) {
    const entry_probe probe{key, abbreviate(key), doc.doc_id, version};
    const std::size_t b = first_block_not_before(probe);
    if (b == blocks_.size()) return;
    const std::size_t off = offset_not_before(b, probe);
    if (off == sizes_[b] || compare(live(b)[off], probe) != 0) return;

    const slot gone = live(b)[off];  // a copy: releasing it may free *gone.key
    remove_slot(b, off);
    released(gone);
    rebalance_after_erase(b);
  }

  std::size_t size() const noexcept { return size_; }

  void clear() noexcept {
    blocks_.clear();
    fences_.clear();
    sizes_.clear();
    counts_.clear();
    size_ = 0;
  }

  // Calls fn(const slot&) for every entry, ascending by (key, _id, CommitId).
  template <class Fn>
  void for_each(Fn&& fn) const {
    for (std::size_t b = 0; b < blocks_.size(); ++b)
      for (const slot& s : live(b)) fn(s);
  }

  // Calls fn(const mvcc::key_entry& doc, commit_id version) for the entries whose key
  // lies in the range, ascending by (key, _id, CommitId).
  template <class Fn>
  void for_range(const std::optional<bound>& lower, const std::optional<bound>& upper, Fn&& fn) const {
    const auto [first, last] = locate(lower, upper);
    for (std::size_t b = first.block; b < blocks_.size() && b <= last.block; ++b) {
      const slot* items = live(b).data();
      const std::size_t from = b == first.block ? first.offset : 0;
      const std::size_t to = b == last.block ? last.offset : sizes_[b];
      for (std::size_t i = from; i < to; ++i) fn(*items[i].doc, items[i].version);
    }
  }

  std::uint64_t count_range(const std::optional<bound>& lower, const std::optional<bound>& upper) const {
    const auto [first, last] = locate(lower, upper);
    return static_cast<std::uint64_t>(rank(last) - rank(first));
  }

  // Like for_range, but may skip entries that no query with this prefilter can use: it
  // calls fn only for entries with version <= f.bound and schema_version ==
  // f.schema_version, and never skips one that has both. Whole blocks whose summary rules
  // them out are skipped without looking at their entries.
  template <class Fn>
  void for_range_prefiltered(const std::optional<bound>& lower, const std::optional<bound>& upper,
                             const prefilter& f, Fn&& fn) const {
    for_range_until(lower, upper, f, [&](const scalar&, const mvcc::key_entry& doc, commit_id version) {
      fn(doc, version);
      return true;
    });
  }

  // The ordered walk behind the executor's index-order hint (read_view.hpp): like
  // for_range_prefiltered, ascending by (key, _id, CommitId), but fn also gets the entry's
  // key and returns false to stop the walk early.
  template <class Fn>
  void for_range_until(const std::optional<bound>& lower, const std::optional<bound>& upper,
                       const prefilter& f, Fn&& fn) const {
    const auto [first, last] = locate(lower, upper);
    walk(first, last, f.bound, f.schema_version, fn);
  }

  // for_range_until from a resume point: only the entries after every entry of
  // (after.key, after.doc_id), found with one search (a query's continuation).
  template <class Fn>
  void for_range_until(const std::optional<bound>& lower, const std::optional<bound>& upper,
                       const resume_after& after, const prefilter& f, Fn&& fn) const {
    const auto [first, last] = locate_after(lower, upper, after);
    walk(first, last, f.bound, f.schema_version, fn);
  }

  // The cursor's walk (query/cursor.hpp): entries in the range after `after` (when given)
  // with version <= max_version, of every schema version; fn as for for_range_until.
  template <class Fn>
  void for_range_after(const std::optional<bound>& lower, const std::optional<bound>& upper,
                       const std::optional<resume_after>& after, commit_id max_version, Fn&& fn) const {
    const auto [first, last] = after ? locate_after(lower, upper, *after) : locate(lower, upper);
    walk(first, last, max_version, std::nullopt, fn);
  }


 private:
  // One allocation: the summary sits in front of the slots it summarises. The live slots
  // are a window items[first, first + sizes_[b]) with room on both sides, so that an
  // insert or erase shifts whichever side of its position is shorter: half the copying
  // of a window pinned to the front.
  struct block {
    commit_id min_version;
    std::uint64_t schema_mask;  // bit (schema_version % 64) of every entry
    std::size_t first;
    std::array<slot, block_capacity> items;
  };

  // Where a range starts or ends: an entry's block and offset, or {blocks, 0} for the end.
  struct position {
    std::size_t block = 0;
    std::size_t offset = 0;
  };

  // What insert and erase look for: a whole entry.
  struct entry_probe {
    const scalar& key;
    abbreviation abbr;
    std::string_view doc_id;
    commit_id version;
  };

  // Merging thresholds: a block below a quarter of capacity joins its smaller neighbour
  // when the two fit in three quarters of one, which keeps the block count within a
  // constant of n / C after mass erasure while leaving the merged block room, so the
  // next inserts do not split it straight away.
  static constexpr std::size_t merge_below = block_capacity / 4;
  static constexpr std::size_t merged_at_most = block_capacity * 3 / 4;

  static std::uint64_t schema_bit(std::uint32_t schema_version) noexcept {
    return std::uint64_t{1} << (schema_version % 64);
  }

  // The abbreviations settle most comparisons; only ties load the key (and the _id).
  static int compare_key(const slot& s, const scalar& key, const abbreviation& abbr) {
    if (const auto c = s.abbr <=> abbr; c != 0) return c < 0 ? -1 : 1;
    return compare_keys(*s.key, key);
  }

  static int compare(const slot& s, const entry_probe& p) {
    if (const auto c = s.abbr <=> p.abbr; c != 0) return c < 0 ? -1 : 1;
    return compare_tied(s, p);
  }

  static int compare_tied(const slot& s, const entry_probe& p) {
    if (const int c = compare_keys(*s.key, p.key); c != 0) return c;
    if (const int c = std::string_view(s.doc->doc_id).compare(p.doc_id); c != 0) return c < 0 ? -1 : 1;
    return s.version < p.version ? -1 : s.version > p.version ? 1 : 0;
  }
  // True when `hint` names a place strictly inside one block whose neighbours order the
  // probe strictly between them: the only place the entry can go (the slots are sorted
  // and unique), whatever the slots did since the hint was made.
  bool hint_fits(const insert_hint* hint, const entry_probe& probe) const {
    if (hint == nullptr || hint->block >= blocks_.size()) return false;
    const std::size_t off = hint->offset;
    if (off == 0 || off >= sizes_[hint->block]) return false;
    const auto window = live(hint->block);
    return compare(window[off - 1], probe) < 0 && compare(window[off], probe) > 0;
  }


  std::span<const slot> live(std::size_t b) const noexcept {
    return {blocks_[b]->items.data() + blocks_[b]->first, sizes_[b]};
  }
  const slot& last_slot(std::size_t b) const noexcept { return live(b)[sizes_[b] - 1]; }

  static std::unique_ptr<block> make_block() {
    std::unique_ptr<block> b(new block);  // default-initialised: the slots stay unwritten
    b->min_version = std::numeric_limits<commit_id>::max();
    b->schema_mask = 0;
    b->first = 0;
    return b;
  }

  // Moves block b's window to start at `first` (a memmove; the windows may overlap).
  void move_window(std::size_t b, std::size_t first) noexcept {
    block& blk = *blocks_[b];
    slot* items = blk.items.data();
    const std::size_t n = sizes_[b];
    if (first < blk.first) std::copy(items + blk.first, items + blk.first + n, items + first);
    if (first > blk.first) std::copy_backward(items + blk.first, items + blk.first + n, items + first + n);
    blk.first = first;
  }

  // Recomputes block b's summary and fence from its slots.
  void summarize(std::size_t b) noexcept {
    block& blk = *blocks_[b];
    blk.min_version = std::numeric_limits<commit_id>::max();
    blk.schema_mask = 0;
    for (const slot& s : live(b)) {
      blk.min_version = std::min(blk.min_version, s.version);
      blk.schema_mask |= schema_bit(s.schema_version);
    }
    if (sizes_[b] != 0) fences_[b] = last_slot(b).abbr;
  }

  // The first block whose last entry is not `before` the target; blocks_.size() if none
  // (or if the index is empty). `target` abbreviates the target's key, and `before` must
  // agree with it whenever the abbreviations differ (every comparison here starts with
  // them), so the search reads the compact fences and loads a block's last entry only on
  // a tie.
  template <class Before>
  std::size_t first_block_where_not(const abbreviation& target, Before before) const {
    if (size_ == 0) return blocks_.size();
    std::size_t lo = 0, hi = fences_.size();
    while (lo < hi) {
      const std::size_t mid = lo + (hi - lo) / 2;
      const auto c = fences_[mid] <=> target;
      if (c < 0 || (c == 0 && before(last_slot(mid)))) {
        lo = mid + 1;
      } else {
        hi = mid;
      }
    }
    return lo;
  }

  template <class Before>
  std::size_t offset_where_not(std::size_t b, Before before) const {
    const auto items = live(b);
    return static_cast<std::size_t>(std::partition_point(items.begin(), items.end(), before) - items.begin());
  }

  std::size_t first_block_not_before(const entry_probe& p) const {
    return first_block_where_not(p.abbr, [&](const slot& s) { return compare(s, p) < 0; });
  }
  std::size_t offset_not_before(std::size_t b, const entry_probe& p) const {
    return offset_where_not(b, [&](const slot& s) { return compare(s, p) < 0; });
  }

  // The first entry whose key is >= k (or > k when `strictly_greater`).
  template <bool strictly_greater>
  position first_with_key(const scalar& k) const {
    const abbreviation abbr = abbreviate(k);
    const auto before = [&](const slot& s) {
      const int c = compare_key(s, k, abbr);
      return strictly_greater ? c <= 0 : c < 0;
    };
    const std::size_t b = first_block_where_not(abbr, before);
    if (b == blocks_.size()) return end_position();
    return {b, offset_where_not(b, before)};
  }

  position end_position() const noexcept { return {blocks_.size(), 0}; }

  static bool precedes(const position& a, const position& b) noexcept {
    return a.block < b.block || (a.block == b.block && a.offset < b.offset);
  }

  // [first, last) for a key range; an empty range (lower above upper, or an exclusive
  // bound on both sides of one key) gives last == first.
  std::pair<position, position> locate(const std::optional<bound>& lower,
                                       const std::optional<bound>& upper) const {
    if (size_ == 0) return {end_position(), end_position()};
    const position first = !lower ? position{0, 0}
                           : lower->inclusive ? first_with_key<false>(lower->value)
                                              : first_with_key<true>(lower->value);
    position last = !upper ? end_position()
                    : upper->inclusive ? first_with_key<true>(upper->value)
                                       : first_with_key<false>(upper->value);
    if (precedes(last, first)) last = first;
    return {first, last};
  }

  // locate, then moved past every entry of (after.key, after.doc_id).
  std::pair<position, position> locate_after(const std::optional<bound>& lower, const std::optional<bound>& upper,
                                             const resume_after& after) const {
    auto [first, last] = locate(lower, upper);
    if (size_ == 0) return {first, last};
    const entry_probe p{after.key, abbreviate(after.key), after.doc_id, std::numeric_limits<commit_id>::max()};
    const auto at_or_before = [&](const slot& s) { return compare(s, p) <= 0; };
    const std::size_t b = first_block_where_not(p.abbr, at_or_before);
    const position from = b == blocks_.size() ? end_position() : position{b, offset_where_not(b, at_or_before)};
    if (precedes(first, from)) first = from;
    if (precedes(last, first)) last = first;
    return {first, last};
  }

  // Calls fn for the slots in [first, last) with version <= max_version (and of
  // `schema_version`, when given) until it returns false; skips whole blocks whose summary
  // rules them all out.
  template <class Fn>
  void walk(position first, position last, commit_id max_version, std::optional<std::uint32_t> schema_version,
            Fn& fn) const {
    const std::uint64_t wanted = schema_version ? schema_bit(*schema_version) : ~std::uint64_t{0};
    for (std::size_t b = first.block; b < blocks_.size() && b <= last.block; ++b) {
      const block& blk = *blocks_[b];
      if (blk.min_version > max_version || (blk.schema_mask & wanted) == 0) continue;
      const slot* items = live(b).data();
      const std::size_t from = b == first.block ? first.offset : 0;
      const std::size_t to = b == last.block ? last.offset : sizes_[b];
      for (std::size_t i = from; i < to; ++i) {
        const slot& s = items[i];
        if (s.version <= max_version && (!schema_version || s.schema_version == *schema_version) &&
            !fn(static_cast<const scalar&>(*s.key), *s.doc, s.version))
          return;
      }
    }
  }

  // Leaves the block's summary as it was: it still covers the remaining entries (a lower
  // bound, a superset), only less tightly, and recomputing it would read the whole
  // block on every erase. Splits and merges tighten it again.
  void remove_slot(std::size_t b, std::size_t off) noexcept {
    block& blk = *blocks_[b];
    slot* items = blk.items.data();
    const std::size_t first = blk.first, n = sizes_[b];
    if (off < n - 1 - off) {
      std::copy_backward(items + first, items + first + off, items + first + off + 1);
      blk.first = first + 1;
    } else {
      std::copy(items + first + off + 1, items + first + n, items + first + off);
    }
    --sizes_[b];
    if (sizes_[b] != 0) fences_[b] = last_slot(b).abbr;
    count_sub(b);
    --size_;
  }

  // Room for `extra` more blocks in every per-block array, growing geometrically (an
  // exact reserve would reallocate on every split), so that insert_block cannot throw.
  void reserve_blocks(std::size_t extra) {
    const std::size_t need = blocks_.size() + extra;
    const auto grow = [](auto& v, std::size_t n) {
      if (n > v.capacity()) v.reserve(std::max(n, 2 * v.capacity()));
    };
    grow(blocks_, need);
    grow(fences_, need);
    grow(sizes_, need);
    grow(counts_, need + 1);
  }

  // REQUIRES: reserve_blocks made room; the block's first `live_slots` slots are written.
  // Its summary and fence are the caller's to set.
  void insert_block(std::size_t at, std::unique_ptr<block> blk, std::size_t live_slots) noexcept {
    const auto pos = static_cast<std::ptrdiff_t>(at);
    blocks_.insert(blocks_.begin() + pos, std::move(blk));
    fences_.insert(fences_.begin() + pos, abbreviation{});
    sizes_.insert(sizes_.begin() + pos, live_slots);
    rebuild_counts();
  }

  void remove_block(std::size_t at) noexcept {
    const auto pos = static_cast<std::ptrdiff_t>(at);
    blocks_.erase(blocks_.begin() + pos);
    fences_.erase(fences_.begin() + pos);
    sizes_.erase(sizes_.begin() + pos);
    rebuild_counts();
  }

  // Splits a full block into two halves, each centred in its block so that inserts on
  // either side find room. Every allocation happens before anything moves.
  void split(std::size_t b) {
    auto upper_half = make_block();
    reserve_blocks(1);
    const std::size_t keep = sizes_[b] / 2, moved = sizes_[b] - keep;
    const slot* items = live(b).data();
    upper_half->first = (block_capacity - moved) / 2;
    std::copy(items + keep, items + sizes_[b], upper_half->items.data() + upper_half->first);
    sizes_[b] = keep;
    insert_block(b + 1, std::move(upper_half), moved);
    move_window(b, (block_capacity - keep) / 2);
    summarize(b);
    summarize(b + 1);
  }

  // Removes an emptied block, or merges a small one into a neighbour. Never allocates.
  void rebalance_after_erase(std::size_t b) noexcept {
    if (sizes_[b] == 0) {
      if (blocks_.size() > 1) remove_block(b);
      return;
    }
    if (sizes_[b] >= merge_below) return;
    // The smaller neighbour; a missing one counts as full.
    const std::size_t left_size = b > 0 ? sizes_[b - 1] : block_capacity;
    const std::size_t right_size = b + 1 < blocks_.size() ? sizes_[b + 1] : block_capacity;
    const bool with_left = left_size <= right_size;
    if ((with_left ? left_size : right_size) + sizes_[b] > merged_at_most) return;
    const std::size_t into = with_left ? b - 1 : b, from = with_left ? b : b + 1;
    // Both windows fit in one block; the first may have to move to make room after it.
    if (blocks_[into]->first + sizes_[into] + sizes_[from] > block_capacity) move_window(into, 0);
    const slot* src = live(from).data();
    std::copy(src, src + sizes_[from], blocks_[into]->items.data() + blocks_[into]->first + sizes_[into]);
    sizes_[into] += sizes_[from];
    sizes_[from] = 0;
    summarize(into);
    remove_block(from);
  }

  // ---- block counts: a Fenwick tree over sizes_ (1-based, counts_[0] unused) -----------
  // Splits and merges shift block numbers, so they rebuild it from the compact sizes_
  // (O(blocks), a few microseconds); an insert or erase inside a block updates it in
  // O(log blocks). Capacity is reserved before any rebuild that grows it.
  void rebuild_counts() noexcept {
    const std::size_t n = sizes_.size();
    counts_.resize(n + 1);
    counts_[0] = 0;
    for (std::size_t i = 1; i <= n; ++i) counts_[i] = sizes_[i - 1];
    for (std::size_t i = 1; i <= n; ++i)
      if (const std::size_t parent = i + (i & (~i + 1)); parent <= n) counts_[parent] += counts_[i];
  }
  void count_add(std::size_t b) noexcept {
    for (std::size_t i = b + 1; i < counts_.size(); i += i & (~i + 1)) ++counts_[i];
  }
  void count_sub(std::size_t b) noexcept {
    for (std::size_t i = b + 1; i < counts_.size(); i += i & (~i + 1)) --counts_[i];
  }
  // Entries before `p`.
  std::size_t rank(const position& p) const noexcept {
    if (p.block >= blocks_.size()) return size_;
    std::size_t before = p.offset;
    for (std::size_t i = p.block; i > 0; i -= i & (~i + 1)) before += counts_[i];
    return before;
  }

  std::vector<std::unique_ptr<block>> blocks_;
  std::vector<abbreviation> fences_;  // fences_[b]: abbreviation of block b's last key
  std::vector<std::size_t> sizes_;    // sizes_[b]: block b's entry count
  std::vector<std::size_t> counts_;   // the Fenwick tree over sizes_
  std::size_t size_ = 0;
};

}  // namespace aerodb::index
