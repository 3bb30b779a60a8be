// CheckpointPolicy: how a checkpoint turns the image at its boundary C into the snapshot
// data file (engine/checkpointer.hpp; docs/optimizations/checkpoint_pipelining.md).
//
// Both built-in policies write the same bytes: the encoder (format/snapshot_data.hpp)
// fixes the order of every entry, and a policy decides only how long the state lock is
// held while the image is read and how much of the file sits in memory at once.
//
//   whole_image_checkpoint   the baseline: the image is encoded under one hold of the
//                            state lock, into one buffer the size of the file, then written.
//                            Writers wait for the whole encoding.
//   pipelined_checkpoint     the image is read from the checkpoint's read view in batches
//                            of `keys_per_batch` keys, the lock taken once per batch, and
//                            the file is written whenever `chunk_bytes` are pending, so
//                            writers wait at most one batch and memory holds about one chunk.
//
// The contract (checked by policies::check_checkpoint_policy):
//   keys_per_batch   0 for one hold over the whole image; otherwise the most keys read
//                    under one hold.
//   chunk_bytes      0 for one write of the whole file; otherwise the encoder's pending
//                    bytes are appended to the file whenever they reach this many.
//   between_batches  optional `static void between_batches()`: called with no lock held
//                    after each batch. Tests use it to write and collect garbage in the
//                    middle of a checkpoint; the built-in policies have none.
// The durability order (data file, manifest, directory sync, CHECKPOINT record, directory
// sync, then removals) is the checkpointer's, the same for every policy.
//
// Thread safety: policies are stateless.
#pragma once

#include <cstddef>

namespace aerodb::policies {

struct whole_image_checkpoint {
  static constexpr std::size_t keys_per_batch = 0;
  static constexpr std::size_t chunk_bytes = 0;
};

template <std::size_t KeysPerBatch, std::size_t ChunkBytes>
struct basic_pipelined_checkpoint {
  static_assert(KeysPerBatch > 0 && ChunkBytes > 0,
                "a pipelined checkpoint needs a batch of at least one key and a chunk of at least one byte");
  static constexpr std::size_t keys_per_batch = KeysPerBatch;
  static constexpr std::size_t chunk_bytes = ChunkBytes;
};

// 1,024 keys hold the lock for about a millisecond with documents of a few hundred bytes
// (docs/optimizations/checkpoint_pipelining.md, "Measurements"); 1 MiB chunks keep the
// number of write calls small while bounding memory.
using pipelined_checkpoint = basic_pipelined_checkpoint<1024, std::size_t{1} << 20>;

}  // namespace aerodb::policies
