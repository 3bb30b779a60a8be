// share_items: the items of one piece of work done by the calling thread and by helper
// threads at once (and available_cores, how many threads are worth asking for), for the write path's large batches (engine/commit_request.hpp prepares
// their operations in chunks, engine/indexer.hpp fills their indexes).
//
// Every thread takes the next item not taken yet (an atomic counter), so a helper that
// starts late, or cannot be started at all, leaves its share to the threads already
// running; the calling thread alone finishes everything if need be. Which thread does an
// item never changes what the item produces; callers keep one output slot per item.
//
// Why helpers are never joined: joining a thread waits until it has run, and a new thread
// may wait milliseconds for a CPU (behind a low-priority spinner the scheduler lets finish
// its slice; bench_suite --busy-cpus measured a 1,000-document commit 1.5x slower with
// joined helpers). So the caller waits only for the items helpers took, spinning, since
// a helper that took an item is running. A helper that starts after every item was taken
// touches only the shared counters, which it co-owns, and exits.
//
// Thread safety: work(i) runs on several threads at once, each i exactly once. Every
// work(i) has returned, and its effects are visible, when share_items returns or throws.
//
// Exceptions: the first one thrown by any work(i) is rethrown on the calling thread
// once every item is done. A thread that cannot be started is not an error.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>

#include <aerodb/policies/spin.hpp>

namespace aerodb::detail {

// The cores this process may use, at least 1, asked once: hardware_concurrency reads
// /sys on every call, which a commit should not pay for.
inline std::size_t available_cores() {
  static const std::size_t cores = std::max(1U, std::thread::hardware_concurrency());
  return cores;
}

template <class Work>
void share_items(std::size_t helpers, std::size_t count, const Work& work) {
  struct shared {
    std::atomic<std::size_t> next{0};      // the next item to take
    std::atomic<std::size_t> finished{0};  // items done, by any thread
    std::size_t count = 0;
    const Work* work = nullptr;  // valid until `finished` reaches `count`
    std::mutex mu;
    std::exception_ptr failure;  // the first exception; guarded by mu
  };
  const auto run = [](shared& s) {
    for (std::size_t i; (i = s.next.fetch_add(1, std::memory_order_relaxed)) < s.count;) {
      try {
        (*s.work)(i);
      } catch (...) {
        std::lock_guard lock(s.mu);
        if (!s.failure) s.failure = std::current_exception();
      }
      s.finished.fetch_add(1, std::memory_order_release);  // publishes the item's effects
    }
  };
  auto state = std::make_shared<shared>();
  state->count = count;
  state->work = &work;
  for (std::size_t t = 0; t < helpers && t + 1 < count; ++t) {
    try {
      std::thread([state, run] { run(*state); }).detach();
    } catch (...) {
      // No thread to be had (std::system_error, or std::bad_alloc for its state): the
      // threads running take its share. Nothing may leave this function before every
      // item is done, since a helper already started may be running work(i).
      break;
    }
  }
  run(*state);
  // The items still running belong to helpers that are running them: spin, then yield
  // to whatever else wants the CPU if an item is long.
  for (std::size_t spins = 0; state->finished.load(std::memory_order_acquire) < count; ++spins) {
    if (spins < (std::size_t{1} << 14))
      policies::detail::cpu_relax();
    else
      std::this_thread::yield();
  }
  // Moved out, not copied: a helper may drop the last reference to `state` later, and
  // the exception must not be freed there while this thread still handles it.
  std::exception_ptr failure;
  {
    std::lock_guard lock(state->mu);
    failure = std::move(state->failure);
  }
  if (failure) std::rethrow_exception(failure);
}

}  // namespace aerodb::detail
