// The five policy kinds of basic_database, and the one of replication::basic_replica, as
// C++20 concepts.
//
// Each kind has a concept (for users who want to constrain their own templates) and a
// `check_*` function that basic_database (or basic_replica) calls in a static_assert: it
// names the first requirement a policy misses, so a user writing a policy gets a message
// that says what to add instead of a page of substitution failures.
//
//   FsyncPolicy            decides how commits share fsyncs (one per commit, or groups)
//   VisibilityCachePolicy  decides how a read view finds the visible version of a key
//   IndexPolicy            decides which structures index documents in memory
//   MemoryLayoutPolicy     decides where a version and its document bytes live in memory
//   ReplicaReadPolicy      decides whether a replica's read may skip the state check
//                          (policies/replica_read.hpp)
//   CheckpointPolicy       decides how long a checkpoint holds the state lock and how much
//                          of the snapshot it buffers (policies/checkpoint.hpp)
//
// No policy can change what is written to disk: the formats live in aerodb/format/ and
// policies only decide how and when the same bytes are produced or found.
#pragma once

#include <aerodb/commit_id.hpp>
#include <aerodb/error.hpp>
#include <aerodb/index/field_index.hpp>
#include <aerodb/metrics.hpp>
#include <aerodb/mvcc/version.hpp>

#include <concepts>
#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <string_view>

namespace aerodb::policies {

// ---- FsyncPolicy ----------------------------------------------------------------------
// A pipeline receives commit requests from any number of threads and hands them, in
// groups, to the sink it was constructed with: `Engine` is the commit pipeline's private
// sink (engine/commit_pipeline.hpp), whose `commit_group` runs write steps W4-W9
// (docs/architecture.md) and must never run twice at once. A pipeline may instead split a
// group in two: `write_group` (W4-W6, never twice at once, nor at once with commit_group)
// returns a token, and `finish_group(token)` (W7-W9) may run while the next group is
// written; the sink acknowledges groups in the order they were written. submit() returns
// only after the sink has filled in the request's outcome. Only the engine can make a
// sink, so no caller can reach these steps except through the pipeline. Optionally,
// `static constexpr bool parallel_prepare` asks for a large write batch to be prepared
// (W1-W3) on a thread per core before it is submitted (engine/commit_request.hpp).
namespace detail {
struct engine_archetype {
  struct commit_request {};
  struct group_token {};
  void commit_group(std::span<commit_request* const>) {}
  group_token write_group(std::span<commit_request* const>) { return {}; }
  void finish_group(group_token&) {}
};
}  // namespace detail

template <class P>
concept has_pipeline_template = requires { typename P::template pipeline<detail::engine_archetype>; };

template <class P>
concept fsync_policy =
    has_pipeline_template<P> &&
    std::constructible_from<typename P::template pipeline<detail::engine_archetype>,
                            detail::engine_archetype&> &&
    requires(typename P::template pipeline<detail::engine_archetype>& p,
             detail::engine_archetype::commit_request& r) {
      { p.submit(r) } -> std::same_as<void>;
    };

template <class P>
constexpr bool check_fsync_policy() {
  static_assert(has_pipeline_template<P>,
                "FsyncPolicy must declare `template <class Engine> class pipeline`");
  if constexpr (has_pipeline_template<P>) {
    using pipe = typename P::template pipeline<detail::engine_archetype>;
    static_assert(std::constructible_from<pipe, detail::engine_archetype&>,
                  "FsyncPolicy::pipeline<Engine> must be constructible from `Engine&`");
    static_assert(requires(pipe& p, detail::engine_archetype::commit_request& r) {
      { p.submit(r) } -> std::same_as<void>;
    }, "FsyncPolicy::pipeline<Engine> must provide `void submit(typename Engine::commit_request&)`"
       " that returns once Engine::commit_group has handled the request");
  }
  return fsync_policy<P>;
}

// ---- VisibilityCachePolicy ------------------------------------------------------------
template <class P>
concept has_view_state = requires { typename P::view_state; } &&
                         std::default_initializable<typename P::view_state>;

template <class P>
concept has_find_visible =
    has_view_state<P> && requires(typename P::view_state& s, const mvcc::key_entry& k,
                                  commit_id bound, read_path_counters& c) {
      { P::find_visible(s, k, bound, c) } -> std::same_as<const mvcc::version*>;
    };

template <class P>
concept has_zero_copy_flag = requires {
  { P::zero_copy } -> std::convertible_to<bool>;
};

template <class P>
concept visibility_cache_policy = has_view_state<P> && has_find_visible<P> && has_zero_copy_flag<P>;

template <class P>
constexpr bool check_visibility_cache_policy() {
  static_assert(has_view_state<P>,
                "VisibilityCachePolicy must declare a default-constructible `view_state` "
                "(per-read-view state, discarded with the read view)");
  static_assert(has_find_visible<P>,
                "VisibilityCachePolicy must provide `static const mvcc::version* "
                "find_visible(view_state&, const mvcc::key_entry&, commit_id bound, "
                "read_path_counters&)` returning the version with the largest CommitId <= "
                "bound, or nullptr (also allowed in place of a tombstone: both mean not "
                "found), and counting its work in the counters");
  static_assert(has_zero_copy_flag<P>,
                "VisibilityCachePolicy must declare `static constexpr bool zero_copy` "
                "(true: reads share the version's bytes; false: reads copy them)");
  return visibility_cache_policy<P>;
}

// ---- IndexPolicy ----------------------------------------------------------------------
template <class P>
concept has_primary_map = requires { typename P::template primary_map<int>; };

template <class P>
concept has_field_index = requires { typename P::field_index; };

template <class I>
concept field_index_like =
    std::default_initializable<I> &&
    requires(I& i, const I& ci, const scalar& k, const mvcc::key_entry& doc, const mvcc::version& v,
             const std::optional<index::bound>& b, const std::optional<index::resume_after>& after) {
      i.insert(k, doc, v);
      i.erase(k, doc, v);
      i.clear();
      ci.for_range(b, b, [](const mvcc::key_entry&, commit_id) {});
      ci.for_equal(k, [](const mvcc::key_entry&, commit_id) {});
      ci.for_range_after(b, b, after, commit_id{}, [](const scalar&, const mvcc::key_entry&, commit_id) { return true; });
      { ci.count_range(b, b) } -> std::convertible_to<std::uint64_t>;
      { ci.size() } -> std::convertible_to<std::size_t>;
    };

template <class P>
concept index_policy =
    has_primary_map<P> && has_field_index<P> && field_index_like<typename P::field_index> &&
    requires(typename P::template primary_map<int>& m, std::string_view key, const std::string& s) {
      m.find(key);
      m.try_emplace(typename P::template primary_map<int>::key_type(s), 1);
      m.size();
      m.begin();
      m.end();
      m.erase(m.begin());
    };

template <class P>
constexpr bool check_index_policy() {
  static_assert(has_primary_map<P>,
                "IndexPolicy must declare `template <class V> using primary_map = ...`, a map "
                "from the _id to V");
  if constexpr (has_primary_map<P>) {
    static_assert(requires(typename P::template primary_map<int>& m, std::string_view key) {
      m.find(key);
    }, "IndexPolicy::primary_map<V> must support heterogeneous find(std::string_view)");
    static_assert(requires(typename P::template primary_map<int>& m, const std::string& s) {
      m.try_emplace(typename P::template primary_map<int>::key_type(s), 1);
      m.size();
      m.begin();
      m.end();
      m.erase(m.begin());
    }, "IndexPolicy::primary_map<V> must provide try_emplace(key_type, V) with a key_type "
       "constructible from the const std::string& of the _id (the key_entry's own, which "
       "outlives the map entry, so the key may borrow it), size(), begin(), end() and "
       "erase(iterator) leaving the other iterators valid (GC forgets deleted keys while it "
       "walks the map)");
  }
  static_assert(has_field_index<P>,
                "IndexPolicy must declare `using field_index = ...`, the secondary index type");
  if constexpr (has_field_index<P>) {
    static_assert(field_index_like<typename P::field_index>,
                  "IndexPolicy::field_index must be default-constructible and provide "
                  "insert(key, key_entry, version), erase(key, key_entry, version), clear(), "
                  "for_range(lower, upper, fn), for_equal(key, fn), count_range(lower, upper), "
                  "size() and for_range_after(lower, upper, after, max_version, walk); fn is "
                  "called as fn(const mvcc::key_entry&, commit_id), walk as walk(const scalar&, "
                  "const mvcc::key_entry&, commit_id) -> bool (see index/field_index.hpp for the "
                  "contract)");
  }
  return index_policy<P>;
}

// ---- MemoryLayoutPolicy ---------------------------------------------------------------
// `version_memory` makes and frees the versions of one version store (it is a member of
// the store, so it may own memory: an arena). make and free are called under the store's
// state lock held exclusively, the two byte counts from any thread. A version it makes is
// an mvcc::version whose bytes() are the document given, unchanged, for as long as the
// version lives; free(v) is called once per version it made.
template <class P>
concept has_version_memory = requires { typename P::version_memory; } &&
                             std::default_initializable<typename P::version_memory>;

template <class P>
concept has_version_makers =
    has_version_memory<P> &&
    requires(typename P::version_memory& m, commit_id c, std::uint32_t s,
             std::shared_ptr<const mvcc::payload::buffer> shared, std::span<const std::byte> bytes,
             mvcc::version* v) {
      { m.make(c, s, std::move(shared)) } -> std::same_as<mvcc::version*>;
      { m.make(c, s, bytes) } -> std::same_as<mvcc::version*>;
      { m.make_tombstone(c) } -> std::same_as<mvcc::version*>;
      { m.free(v) } noexcept -> std::same_as<void>;
    };

template <class P>
concept has_arena_accounting =
    has_version_memory<P> && requires(const typename P::version_memory& m) {
      { m.bytes_in_use() } noexcept -> std::convertible_to<std::uint64_t>;
      { m.bytes_reserved() } noexcept -> std::convertible_to<std::uint64_t>;
    };

template <class P>
concept memory_layout_policy = has_version_memory<P> && has_version_makers<P> && has_arena_accounting<P>;

template <class P>
constexpr bool check_memory_layout_policy() {
  static_assert(has_version_memory<P>,
                "MemoryLayoutPolicy must declare a default-constructible `version_memory` "
                "(the maker of one version store's versions, owned by the store)");
  static_assert(has_version_makers<P>,
                "MemoryLayoutPolicy::version_memory must provide `mvcc::version* make(commit_id, "
                "std::uint32_t schema_version, std::shared_ptr<const mvcc::payload::buffer>)`, the "
                "same taking `std::span<const std::byte>`, `mvcc::version* make_tombstone(commit_id)` "
                "and `void free(mvcc::version*) noexcept`");
  static_assert(has_arena_accounting<P>,
                "MemoryLayoutPolicy::version_memory must provide `std::uint64_t bytes_in_use() const "
                "noexcept` and `std::uint64_t bytes_reserved() const noexcept` (0 and 0 without an "
                "arena)");
  return memory_layout_policy<P>;
}

// ---- ReplicaReadPolicy ----------------------------------------------------------------
// The contract of `boundary` is in policies/replica_read.hpp: publish() and invalidate()
// are called on the write side of a replica (never throwing: they run inside a halt), and
// load() on every read, from any thread.
template <class P>
concept has_read_boundary = requires { typename P::boundary; } &&
                            std::default_initializable<typename P::boundary>;

template <class P>
concept has_boundary_publish = has_read_boundary<P> && requires(typename P::boundary& b, commit_id c) {
  { b.publish(c) } noexcept -> std::same_as<void>;
  { b.invalidate() } noexcept -> std::same_as<void>;
};

template <class P>
concept has_boundary_load = has_read_boundary<P> && requires(const typename P::boundary& b) {
  { b.load() } noexcept -> std::same_as<commit_id>;
};

template <class P>
concept replica_read_policy = has_read_boundary<P> && has_boundary_publish<P> && has_boundary_load<P>;

template <class P>
constexpr bool check_replica_read_policy() {
  static_assert(has_read_boundary<P>,
                "ReplicaReadPolicy must declare a default-constructible `boundary` (the "
                "pre-validated read boundary of one replica; it starts with none)");
  static_assert(has_boundary_publish<P>,
                "ReplicaReadPolicy::boundary must provide `void publish(commit_id) noexcept` "
                "(every record up to it is durable and applied) and `void invalidate() "
                "noexcept` (from now on there is none)");
  static_assert(has_boundary_load<P>,
                "ReplicaReadPolicy::boundary must provide `commit_id load() const noexcept` "
                "returning the last boundary published since the last invalidate(), or 0 for "
                "none");
  return replica_read_policy<P>;
}

// ---- CheckpointPolicy -----------------------------------------------------------------
// The contract is in policies/checkpoint.hpp: two sizes, each 0 for "all at once", and an
// optional hook the checkpointer calls between batches with no lock held.
template <class P>
concept has_checkpoint_sizes = requires {
  { P::keys_per_batch } -> std::convertible_to<std::size_t>;
  { P::chunk_bytes } -> std::convertible_to<std::size_t>;
};

template <class P>
concept checkpoint_policy = has_checkpoint_sizes<P>;

template <class P>
constexpr bool check_checkpoint_policy() {
  static_assert(has_checkpoint_sizes<P>,
                "CheckpointPolicy must declare `static constexpr std::size_t keys_per_batch` "
                "(0: the whole image under one hold of the state lock) and `static constexpr "
                "std::size_t chunk_bytes` (0: the whole file written at once)");
  return checkpoint_policy<P>;
}

}  // namespace aerodb::policies
