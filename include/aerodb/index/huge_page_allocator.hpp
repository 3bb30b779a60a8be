// huge_page_allocator: the allocator of the accelerated index's large hash tables (the
// primary map of policies/accelerated_index.hpp, the composite postings table).
//
// Why: a lookup in a hash table of a million keys lands on a random cache line of a table
// tens of megabytes long, so nearly every lookup is also a TLB miss, and under a hypervisor
// a TLB miss walks two page tables. perf of a 1M-document open (docs/benchmarks.md) put
// most of the primary map's insert time there. A table backed by 2 MiB pages needs 512
// times fewer translations. Where transparent huge pages are enabled for advised memory
// (/sys/kernel/mm/transparent_hugepage/enabled "madvise", Debian's default, or "always"),
// an allocation of 2 MiB or more is mapped 2 MiB-aligned and advised MADV_HUGEPAGE;
// anything smaller comes from the ordinary heap. Where the kernel refuses the advice, the
// memory is ordinary pages: the advice changes speed, never contents.
//
// Invariants: deallocate(p, n) is given the n that allocate returned p for (the standard
// allocator contract), which decides which of the two sources p came from. Whole 2 MiB
// units are mapped, so a table's resident size rounds up to the next 2 MiB at most.
//
// Thread safety: stateless; any thread may allocate and free.
#pragma once

#include <sys/mman.h>

#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <new>

namespace aerodb::index {

template <class T>
class huge_page_allocator {
 public:
  using value_type = T;
  static constexpr std::size_t huge_page = std::size_t{2} << 20;

  huge_page_allocator() noexcept = default;
  template <class U>
  huge_page_allocator(const huge_page_allocator<U>&) noexcept {}

  T* allocate(std::size_t n) {
    if (n > std::numeric_limits<std::size_t>::max() / sizeof(T)) throw std::bad_array_new_length();
    const std::size_t bytes = n * sizeof(T);
    if (bytes < huge_page) return std::allocator<T>{}.allocate(n);
    const std::size_t length = mapped_length(bytes);
    // Map one huge page more than needed and trim both ends to a 2 MiB boundary: mmap
    // itself only promises 4 KiB alignment, and an unaligned range gets no huge page.
    void* raw = ::mmap(nullptr, length + huge_page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED) throw std::bad_alloc();
    const auto start = reinterpret_cast<std::uintptr_t>(raw);
    const std::uintptr_t aligned = (start + huge_page - 1) & ~(std::uintptr_t{huge_page} - 1);
    if (aligned != start) ::munmap(raw, aligned - start);
    if (const std::uintptr_t tail = start + length + huge_page - (aligned + length); tail != 0)
      ::munmap(reinterpret_cast<void*>(aligned + length), tail);
    ::madvise(reinterpret_cast<void*>(aligned), length, MADV_HUGEPAGE);  // advice: failure is harmless
    return reinterpret_cast<T*>(aligned);
  }

  void deallocate(T* p, std::size_t n) noexcept {
    const std::size_t bytes = n * sizeof(T);
    if (bytes < huge_page) {
      std::allocator<T>{}.deallocate(p, n);
      return;
    }
    ::munmap(p, mapped_length(bytes));
  }

  template <class U>
  friend bool operator==(const huge_page_allocator&, const huge_page_allocator<U>&) noexcept {
    return true;
  }

 private:
  static std::size_t mapped_length(std::size_t bytes) noexcept { return (bytes + huge_page - 1) & ~(huge_page - 1); }
};

}  // namespace aerodb::index
