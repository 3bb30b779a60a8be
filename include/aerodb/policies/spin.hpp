// cpu_relax: one step of a bounded busy-wait (x86 `pause`, ARM `yield`), for the
// group-commit policy's waiters.
//
// Thread safety: a pure function. Invariant: it never sleeps (where no spin hint exists it
// yields); a spin built on it is bounded by its caller's constant count, never by a clock.
#pragma once

#include <cstddef>
#include <thread>

namespace aerodb::policies {

// How many cpu_relax steps a bounded wait takes before it sleeps (about 45 us on the CI
// VM); a constant, never adapted (docs/optimizations/group_commit.md, section 2).
inline constexpr std::size_t default_spin_count = 2048;

namespace detail {

// One busy-wait step: tells the core this is a spin loop (x86 `pause`, ARM `yield`).
inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__) || defined(__arm__)
  asm volatile("yield" ::: "memory");
#else
  std::this_thread::yield();
#endif
}

}  // namespace detail

}  // namespace aerodb::policies
