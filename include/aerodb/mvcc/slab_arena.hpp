// slab_arena: the memory of the compact layout's versions (policies/compact_layout.hpp).
// Each version is one block, its header and its document bytes together, taken from a
// size class; a class carves its blocks out of 64 KiB slabs mapped straight from the
// kernel, so that a slab whose blocks have all been freed goes back to the kernel at once
// and the process's resident size falls with it.
//
// Why not malloc: glibc returns freed memory to the kernel only from the top of its heap
// (or with malloc_trim, which the engine has no business calling), so after GC of a long
// history the memory stays resident; and a malloc'd version costs a chunk header and a
// rounding per allocation. Why not Boost.Pool: its pools grow but never give back one
// block of their chunks, which is the property wanted here.
//
//   size classes  16-byte steps up to 1 KiB, 128-byte steps up to 4 KiB (88 classes);
//                 a request above 4 KiB goes to operator new, one block each
//   slab          64 KiB, aligned to 64 KiB (the slab of a block is its address rounded
//                 down), a header then blocks of one class; a free list of freed blocks,
//                 then never-used blocks carved in address order
//   giving back   a slab left with no block in use is unmapped, except that up to
//                 spare_slabs wholly free slabs are kept for the next class that needs
//                 one (a workload that frees and allocates one block at a slab boundary
//                 would otherwise map and unmap on every write). Deterministic: which
//                 slabs go depends only on the sequence of calls, never on time.
//
// Accounting (exact, readable without a lock): bytes_in_use() is the sum of the class
// sizes of the blocks handed out (the request, for a large block); bytes_reserved() is
// the slabs mapped times the slab size, plus the large blocks. in_use <= reserved.
//
// Under AddressSanitizer a freed block is poisoned until it is handed out again, so a
// reader that kept a pointer into a version GC freed is reported at its first access (an
// unmapped slab faults anyway).
//
// Thread safety: allocate and deallocate REQUIRE one thread at a time (the version store
// calls them under its state lock held exclusively); the two accounting functions may be
// called from any thread at any time.
#pragma once

#include <sys/mman.h>

#include <aerodb/detail/single_writer_counter.hpp>

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <new>

#if defined(__SANITIZE_ADDRESS__)
#define AERODB_ARENA_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define AERODB_ARENA_ASAN 1
#endif
#endif
#ifdef AERODB_ARENA_ASAN
#include <sanitizer/asan_interface.h>
#endif

namespace aerodb::mvcc {

class slab_arena {
 public:
  static constexpr std::size_t slab_bytes = std::size_t{64} << 10;
  static constexpr std::size_t max_small = 4096;
  static constexpr std::size_t class_count = 64 + 24;
  static constexpr std::size_t spare_slabs = 4;

  slab_arena() = default;
  slab_arena(const slab_arena&) = delete;
  slab_arena& operator=(const slab_arena&) = delete;
  // REQUIRES: every block freed, or abandoned with the arena (the version store frees its
  // chains first; a block still out would otherwise be unmapped under its holder).
  ~slab_arena() {
    for (auto* head : partial_)
      while (head) {
        slab* next = head->next;
        unmap(head);
        head = next;
      }
    for (auto* s = full_; s;) {
      slab* next = s->next;
      unmap(s);
      s = next;
    }
    for (std::size_t i = 0; i < spare_count_; ++i) unmap(spare_[i]);
  }

  // The size class of an n-byte request (n <= max_small), and its block size.
  static constexpr std::size_t class_of(std::size_t n) noexcept {
    if (n <= 1024) return n == 0 ? 0 : (n + 15) / 16 - 1;
    return 64 + (n - 1024 + 127) / 128 - 1;
  }
  static constexpr std::size_t class_size(std::size_t c) noexcept {
    return c < 64 ? (c + 1) * 16 : 1024 + (c - 63) * 128;
  }
  // The bytes a request of n bytes holds in the arena (what bytes_in_use counts for it).
  static constexpr std::size_t block_size(std::size_t n) noexcept {
    return n > max_small ? n : class_size(class_of(n));
  }

  // A block of at least n bytes, aligned to 16. Throws std::bad_alloc when the kernel
  // gives no memory (allocation failure is the one exception storage paths may throw).
  void* allocate(std::size_t n) {
    if (n > max_small) {
      void* p = ::operator new(n);
      detail::single_writer_add(in_use_, n);
      detail::single_writer_add(reserved_, n);
      return p;
    }
    const std::size_t c = class_of(n);
    slab* s = partial_[c];
    if (!s) {
      s = take_slab(c);
      push(partial_[c], s);
    }
    const std::size_t size = class_size(c);
    std::byte* block;
    if (s->free_list) {
      block = s->free_list;
      unpoison(block, size);
      std::memcpy(&s->free_list, block, sizeof(std::byte*));
    } else {
      block = reinterpret_cast<std::byte*>(s) + header_bytes + s->carved * size;
      ++s->carved;
      unpoison(block, size);  // never used: poisoned with the rest of its slab
    }
    if (++s->used == s->capacity) {
      unlink(partial_[c], s);
      push(full_, s);
    }
    detail::single_writer_add(in_use_, size);
    return block;
  }

  // Gives back a block allocate(n) returned, with the same n.
  void deallocate(void* p, std::size_t n) noexcept {
    if (n > max_small) {
      ::operator delete(p);
      detail::single_writer_sub(in_use_, n);
      detail::single_writer_sub(reserved_, n);
      return;
    }
    auto* block = static_cast<std::byte*>(p);
    slab* s = slab_of(block);
    const std::size_t c = s->class_index, size = class_size(c);
    std::memcpy(block, &s->free_list, sizeof(std::byte*));
    s->free_list = block;
    poison(block, size);
    if (s->used-- == s->capacity) {
      unlink(full_, s);
      push(partial_[c], s);
    }
    detail::single_writer_sub(in_use_, size);
    if (s->used == 0) {
      unlink(partial_[c], s);
      give_back(s);
    }
  }

  std::uint64_t bytes_in_use() const noexcept { return in_use_.load(std::memory_order_relaxed); }
  std::uint64_t bytes_reserved() const noexcept { return reserved_.load(std::memory_order_relaxed); }

 private:
  struct slab {
    slab* prev = nullptr;
    slab* next = nullptr;
    std::byte* free_list = nullptr;  // freed blocks; each holds the next one's address
    std::uint32_t used = 0;          // blocks handed out
    std::uint32_t carved = 0;        // blocks ever handed out from the never-used end
    std::uint32_t capacity = 0;
    std::uint32_t class_index = 0;
  };
  static constexpr std::size_t header_bytes = (sizeof(slab) + 15) / 16 * 16;
  static_assert(slab_bytes - header_bytes >= max_small, "every class fits a slab at least once");

  static slab* slab_of(std::byte* block) noexcept {
    return reinterpret_cast<slab*>(reinterpret_cast<std::uintptr_t>(block) & ~(std::uintptr_t{slab_bytes} - 1));
  }

  static void push(slab*& head, slab* s) noexcept {
    s->prev = nullptr;
    s->next = head;
    if (head) head->prev = s;
    head = s;
  }
  static void unlink(slab*& head, slab* s) noexcept {
    if (s->prev) s->prev->next = s->next;
    else head = s->next;
    if (s->next) s->next->prev = s->prev;
    s->prev = s->next = nullptr;
  }

  // A wholly free slab set up for class c: a spare one, or a new mapping.
  slab* take_slab(std::size_t c) {
    void* mem = spare_count_ ? spare_[--spare_count_] : map_aligned();
    unpoison(mem, slab_bytes);
    auto* s = ::new (mem) slab;
    s->class_index = static_cast<std::uint32_t>(c);
    s->capacity = static_cast<std::uint32_t>((slab_bytes - header_bytes) / class_size(c));
    poison(reinterpret_cast<std::byte*>(mem) + header_bytes, slab_bytes - header_bytes);
    return s;
  }

  void give_back(slab* s) noexcept {
    if (spare_count_ < spare_slabs) {
      spare_[spare_count_++] = s;
      return;
    }
    unmap(s);
  }

  // slab_bytes of fresh memory aligned to slab_bytes: twice that mapped, the excess on
  // either side unmapped.
  void* map_aligned() {
    const std::size_t span = 2 * slab_bytes;
    void* raw = ::mmap(nullptr, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED) throw std::bad_alloc();
    const auto at = reinterpret_cast<std::uintptr_t>(raw);
    const std::uintptr_t aligned = (at + slab_bytes - 1) & ~(std::uintptr_t{slab_bytes} - 1);
    if (aligned > at) ::munmap(raw, aligned - at);
    if (const std::uintptr_t end = at + span, used_end = aligned + slab_bytes; end > used_end)
      ::munmap(reinterpret_cast<void*>(used_end), end - used_end);
    detail::single_writer_add(reserved_, slab_bytes);
    return reinterpret_cast<void*>(aligned);
  }

  void unmap(void* s) noexcept {
    unpoison(s, slab_bytes);  // the mapping may come back for anything (ASan's own books)
    ::munmap(s, slab_bytes);
    detail::single_writer_sub(reserved_, slab_bytes);
  }

  static void poison([[maybe_unused]] void* p, [[maybe_unused]] std::size_t n) noexcept {
#ifdef AERODB_ARENA_ASAN
    ASAN_POISON_MEMORY_REGION(p, n);
#endif
  }
  static void unpoison([[maybe_unused]] void* p, [[maybe_unused]] std::size_t n) noexcept {
#ifdef AERODB_ARENA_ASAN
    ASAN_UNPOISON_MEMORY_REGION(p, n);
#endif
  }

  std::array<slab*, class_count> partial_{};  // slabs of each class with a free block
  slab* full_ = nullptr;                      // slabs with every block in use
  std::array<slab*, spare_slabs> spare_{};    // wholly free slabs kept for reuse
  std::size_t spare_count_ = 0;
  // One writer at a time (see Thread safety), readers anywhere (detail/single_writer_counter.hpp).
  std::atomic<std::uint64_t> in_use_{0};
  std::atomic<std::uint64_t> reserved_{0};
};

static_assert(slab_arena::class_of(16) == 0 && slab_arena::class_size(0) == 16);
static_assert(slab_arena::class_of(1024) == 63 && slab_arena::class_size(63) == 1024);
static_assert(slab_arena::class_of(1025) == 64 && slab_arena::class_size(64) == 1152);
static_assert(slab_arena::class_of(4096) == slab_arena::class_count - 1 &&
              slab_arena::class_size(slab_arena::class_count - 1) == 4096);

}  // namespace aerodb::mvcc
