// MemoryLayoutPolicy `compact_memory_layout`: the memory-layout optimization of
// docs/optimizations/memory_layout.md.
//
//   - A version and its document bytes are one block: the 40-byte header, then the bytes
//     (mvcc::inline_bytes), where the baseline makes three allocations (node, control
//     block with vector, bytes).
//   - The blocks come from a slab arena owned by the version store (mvcc/slab_arena.hpp):
//     size classes, 64 KiB slabs mapped from the kernel, a freed block reused by the next
//     version of its class, a wholly free slab unmapped, so GC lowers the resident size.
//   - No shared ownership of the bytes: a read that must own its document copies it
//     (read_view::get); a zero-copy read hands out a document_ref that points into the
//     block and is valid while its read view is open (read_view::get_ref; the rule and its
//     check are in document/document_ref.hpp). GC never frees a version an open view can
//     see, so the block outlives every ref that may be used.
//
// Nothing here reaches the disk: the bytes copied into a block are the encoded document
// the log record and the snapshot carry, unchanged.
//
// Thread safety: version_memory is called under the version store's state lock held
// exclusively (make, free); bytes_in_use and bytes_reserved from any thread.
#pragma once

#include <aerodb/commit_id.hpp>
#include <aerodb/mvcc/slab_arena.hpp>
#include <aerodb/mvcc/version.hpp>

#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <new>
#include <span>

namespace aerodb::policies {

struct compact_memory_layout {
  class version_memory {
   public:
    mvcc::version* make(commit_id c, std::uint32_t schema_version, const std::shared_ptr<const mvcc::payload::buffer>& doc) {
      return make(c, schema_version, std::span<const std::byte>(*doc));
    }
    mvcc::version* make(commit_id c, std::uint32_t schema_version, std::span<const std::byte> doc) {
      // Documents are far below 4 GiB (document/limits.hpp), so the size fits the header.
      static_assert(std::numeric_limits<std::uint32_t>::max() > std::size_t{1} << 30);
      const auto n = static_cast<std::uint32_t>(doc.size());
      void* block = arena_.allocate(sizeof(mvcc::version) + n);
      if (n) std::memcpy(static_cast<std::byte*>(block) + sizeof(mvcc::version), doc.data(), n);
      return ::new (block) mvcc::version(c, schema_version, mvcc::inline_bytes{n});
    }
    mvcc::version* make_tombstone(commit_id c) {
      return ::new (arena_.allocate(sizeof(mvcc::version))) mvcc::version(c);
    }
    void free(mvcc::version* v) noexcept {
      const std::size_t n = sizeof(mvcc::version) + (v->bytes_inline() ? v->size() : 0);
      v->~version();
      arena_.deallocate(v, n);
    }
    std::uint64_t bytes_in_use() const noexcept { return arena_.bytes_in_use(); }
    std::uint64_t bytes_reserved() const noexcept { return arena_.bytes_reserved(); }

   private:
    mvcc::slab_arena arena_;
  };
};

}  // namespace aerodb::policies
