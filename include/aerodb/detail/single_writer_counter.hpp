// Counters with one writer at a time and readers on any thread: the version store's and
// the slab arena's memory accounting, which change only under the state lock held
// exclusively and are read without it.
//
// Why not fetch_add: a locked read-modify-write waits for the writer's earlier stores to
// reach the cache, and on the link path one of them (the new primary-map slot) is a cache
// miss (perf annotate of version_store::link, docs/benchmarks.md). A relaxed load and
// store are exact when writers never overlap, and readers see some recent value.
//
// Thread safety: REQUIRES that calls on one counter never run at once (callers hold an
// exclusive lock); loads of the counter may run anywhere.
#pragma once

#include <atomic>
#include <cstdint>

namespace aerodb::detail {

inline void single_writer_add(std::atomic<std::uint64_t>& counter, std::uint64_t n) noexcept {
  counter.store(counter.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}

inline void single_writer_sub(std::atomic<std::uint64_t>& counter, std::uint64_t n) noexcept {
  counter.store(counter.load(std::memory_order_relaxed) - n, std::memory_order_relaxed);
}

}  // namespace aerodb::detail
