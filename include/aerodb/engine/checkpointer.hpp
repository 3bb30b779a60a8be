// The checkpointer: writes a persistent snapshot of the store at a boundary C, makes it
// the checkpoint, and removes the log segments it covers (SPEC_DIGEST §6).
//
// Order, each step durable before the next: the snapshot data file, its manifest, a
// directory sync; then the CHECKPOINT record naming the manifest, a directory sync (the
// switch: recovery starts from this snapshot from now on); then the covered segments and
// the files of older snapshots are removed. A crash before the switch leaves the previous
// checkpoint and the full log; after it, the new snapshot and the log after C.
//
// Owns: the lock that runs one checkpoint at a time. The image is read from the version
// store under its state lock held shared. How long each hold lasts, and how much of the
// file is in memory at once, is the CheckpointPolicy's (policies/checkpoint.hpp): the whole
// image under one hold into one buffer, or batches of keys streamed out in chunks. The
// bytes written are the same either way, and so is the durability order above.
//
// Thread safety: write() from any thread, one at a time (serialize()); it REQUIRES a read
// view at C to stay open throughout, so GC keeps every version the image needs.
#pragma once

#include <aerodb/engine/version_store.hpp>
#include <aerodb/error.hpp>
#include <aerodb/format/snapshot_format.hpp>
#include <aerodb/io/durable_file.hpp>
#include <aerodb/io/file_system.hpp>
#include <aerodb/metrics.hpp>
#include <aerodb/policies/checkpoint.hpp>
#include <aerodb/policies/concepts.hpp>
#include <aerodb/outcomes.hpp>
#include <aerodb/wal/segments.hpp>

#include <algorithm>
#include <chrono>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace aerodb::engine {

// The snapshot files of every boundary but `keep`, and temporary files: leftovers of an
// interrupted or superseded checkpoint, which recovery never reads.
inline result<std::vector<std::string>> stale_snapshot_files(io::file_system& fs, const std::string& dir,
                                                             commit_id keep) {
  AERO_TRY_ASSIGN(auto names, fs.list_dir(dir));
  std::vector<std::string> stale;
  for (auto& n : names) {
    auto data = format::parse_snapshot_data_file_name(n);
    auto man = format::parse_snapshot_manifest_file_name(n);
    if ((data && *data != keep) || (man && *man != keep) || (n.size() > 4 && n.substr(n.size() - 4) == ".tmp"))
      stale.push_back(std::move(n));
  }
  return stale;
}

// Removes stale_snapshot_files(keep).
inline result<void> remove_stale_snapshot_files(io::file_system& fs, const std::string& dir,
                                                commit_id keep) {
  AERO_TRY_ASSIGN(const auto stale, stale_snapshot_files(fs, dir, keep));
  for (const auto& n : stale) AERO_TRY(fs.remove(io::join(dir, n)));
  if (!stale.empty()) AERO_TRY(fs.sync_dir(dir));
  return ok();
}

template <class IndexPolicy, class MemoryLayout = policies::baseline_memory_layout,
          class CheckpointPolicy = policies::whole_image_checkpoint>
class checkpointer {
  static_assert(policies::check_checkpoint_policy<CheckpointPolicy>());

 public:
  using store_type = version_store<IndexPolicy, MemoryLayout>;

  std::unique_lock<std::mutex> serialize() { return std::unique_lock(mu_); }

  // REQUIRES: serialize() held; a read view at `c` open.
  static result<checkpoint_outcome> write(io::file_system& fs, const std::string& dir,
                                          const store_type& store, commit_id c,
                                          metrics_registry& metrics) {
    const auto started = std::chrono::steady_clock::now();
    checkpoint_outcome out;
    out.commit = c;
    AERO_TRY(write_snapshot_files(fs, dir, store, c, out));

    AERO_TRY_ASSIGN(out.segments_removed, wal::remove_covered_segments(fs, dir, c));
    AERO_TRY(remove_stale_snapshot_files(fs, dir, c));
    out.duration = std::chrono::steady_clock::now() - started;
    metrics.checkpoints.add();
    metrics.checkpoint_duration_ns.add(static_cast<std::uint64_t>(out.duration.count()));
    return out;
  }

  // The snapshot at `c` in `dir`, made the checkpoint there: the data file, its manifest,
  // a directory sync, the CHECKPOINT record, a directory sync. Used by write() in the
  // data directory and by a backup in its destination; fills `out`'s commit, documents
  // and snapshot_bytes.
  // REQUIRES: a read view at `c` open.
  static result<void> write_snapshot_files(io::file_system& fs, const std::string& dir,
                                           const store_type& store, commit_id c,
                                           checkpoint_outcome& out) {
    out.commit = c;
    const std::string data_name = format::snapshot_data_file_name(c);
    const std::string manifest_name = format::snapshot_manifest_file_name(c);
    AERO_TRY_ASSIGN(format::manifest_file data_entry, write_data_file(fs, dir, data_name, store, c, out.documents));
    out.snapshot_bytes = data_entry.size;
    format::manifest m{c, {std::move(data_entry)}};
    AERO_TRY_ASSIGN(auto manifest_bytes, format::encode_manifest(m));
    AERO_TRY(io::write_file_durably(fs, dir, manifest_name, manifest_bytes));
    AERO_TRY(fs.sync_dir(dir));

    // The durable switch: from here on, recovery starts from this snapshot.
    AERO_TRY_ASSIGN(auto record, format::encode_checkpoint({c, manifest_name}));
    AERO_TRY(io::write_file_durably(fs, dir, std::string(format::checkpoint_file_name), record));
    AERO_TRY(fs.sync_dir(dir));
    return ok();
  }

  // The bytes of the snapshot data file for the image at `c`, whole (a primary ships them
  // to a replica that needs a snapshot bootstrap: the frame that starts a bootstrap names
  // the size and CRC32C of all of them). Read from the store as the policy says. Adds the
  // documents written to `documents`.
  // REQUIRES: a read view at `c` open.
  static result<format::byte_buffer> encode_snapshot(const store_type& store, commit_id c,
                                                     std::uint64_t& documents) {
    format::snapshot_encoder enc(c);
    AERO_TRY(encode_image(enc, store, c, documents, [](format::snapshot_encoder&) -> result<void> { return ok(); }));
    AERO_TRY(enc.finish());
    return enc.take_pending();
  }

 private:
  using collection_state = typename store_type::collection_state;
  static constexpr bool pipelined = CheckpointPolicy::keys_per_batch != 0;

  // Writes the data file `name` in `dir` durably (as name.tmp, synced, renamed; the
  // caller syncs the directory) and returns its manifest entry. The whole-image policy
  // encodes it into one buffer first; a chunked one appends the encoder's bytes whenever
  // chunk_bytes are pending, and takes the size and CRC32C from the encoder.
  static result<format::manifest_file> write_data_file(io::file_system& fs, const std::string& dir,
                                                       const std::string& name, const store_type& store,
                                                       commit_id c, std::uint64_t& documents) {
    if constexpr (CheckpointPolicy::chunk_bytes == 0) {
      AERO_TRY_ASSIGN(const format::byte_buffer data, encode_snapshot(store, c, documents));
      AERO_TRY(io::write_file_durably(fs, dir, name, data));
      return format::describe_file(name, data);
    } else {
      const std::string tmp = io::join(dir, name + ".tmp");
      format::snapshot_encoder enc(c);
      {
        AERO_TRY_ASSIGN(auto f, fs.open(tmp, io::open_mode::create_or_truncate));
        auto drain = [&f](format::snapshot_encoder& e) -> result<void> {
          if (e.pending().size() < CheckpointPolicy::chunk_bytes) return ok();
          AERO_TRY(f->append(e.pending()));
          e.clear_pending();
          return ok();
        };
        AERO_TRY(encode_image(enc, store, c, documents, drain));
        AERO_TRY(enc.finish());
        if (!enc.pending().empty()) AERO_TRY(f->append(enc.pending()));
        enc.clear_pending();
        AERO_TRY(f->sync());
      }
      AERO_TRY(fs.rename(tmp, io::join(dir, name)));
      return format::manifest_file{name, enc.file_size(), enc.file_crc()};
    }
  }

  // The image at `c`, in the order the format requires. `drain(enc)` is called with no
  // lock held whenever the pipelined policy has released the state lock; it may write out
  // the encoder's pending bytes.
  template <class Drain>
  static result<void> encode_image(format::snapshot_encoder& enc, const store_type& store, commit_id c,
                                   std::uint64_t& documents, Drain&& drain) {
    if constexpr (!pipelined) {
      auto lock = store.lock_shared();
      AERO_TRY(encode_catalog(enc, store, c));
      for (const auto& [name, coll] : store.catalog().collections()) {
        if (coll->created_at > c) continue;
        for (const auto* key : keys_in_id_order(*coll))
          AERO_TRY(encode_key(enc, name, *key, c, documents));
      }
      return ok();
    } else {
      // Collections are never removed, so their entries stay put; key entries stay alive
      // through `walk` (version_store::key_walk), and the read view at `c` keeps every
      // version the image needs, so each batch finds what a single pass would have found.
      std::vector<std::pair<std::string_view, const collection_state*>> collections;
      std::optional<typename store_type::key_walk> walk;
      {
        auto lock = store.lock_shared();
        AERO_TRY(encode_catalog(enc, store, c));
        for (const auto& [name, coll] : store.catalog().collections())
          if (coll->created_at <= c) collections.emplace_back(name, coll.get());
        walk.emplace(store);
      }
      AERO_TRY(drain(enc));
      for (const auto& [name, coll] : collections) {
        std::vector<const mvcc::key_entry*> keys;
        {
          auto lock = store.lock_shared();
          keys = key_pointers(*coll);
        }
        // Outside the lock: an _id never changes, and the walk keeps every entry alive.
        sort_by_id(keys);
        for (std::size_t at = 0; at < keys.size();) {
          {
            auto lock = store.lock_shared();
            const std::size_t end = std::min(keys.size(), at + CheckpointPolicy::keys_per_batch);
            for (; at < end; ++at) AERO_TRY(encode_key(enc, name, *keys[at], c, documents));
          }
          AERO_TRY(drain(enc));
          if constexpr (requires { CheckpointPolicy::between_batches(); }) CheckpointPolicy::between_batches();
        }
      }
      return ok();
    }
  }

  // Schemas, collections and index definitions at `c`. REQUIRES: the state lock held.
  static result<void> encode_catalog(format::snapshot_encoder& enc, const store_type& store, commit_id c) {
    const auto& cat = store.catalog();
    for (const auto& [key, entry] : cat.schemas())
      if (entry.registered_at <= c) AERO_TRY(enc.add_schema(entry.registered_at, entry.def->to_canonical_json()));
    for (const auto& [name, coll] : cat.collections())
      if (coll->created_at <= c) AERO_TRY(enc.add_collection(coll->created_at, name, coll->schema_id));
    for (const auto& [name, coll] : cat.collections()) {
      if (coll->created_at > c) continue;
      for (const auto& [path, ix] : coll->indexes)
        if (path != "_id" && ix->created_at <= c) AERO_TRY(enc.add_index(ix->created_at, name, path));
    }
    return ok();
  }

  // The document `key` holds at `c`, if any. REQUIRES: the state lock held.
  static result<void> encode_key(format::snapshot_encoder& enc, std::string_view collection,
                                 const mvcc::key_entry& key, commit_id c, std::uint64_t& documents) {
    const mvcc::version* v = nullptr;
    for (const auto& candidate : key.chain)
      if (candidate.commit <= c) { v = &candidate; break; }  // chains are newest first
    if (!v || v->tombstone()) return ok();
    AERO_TRY(enc.add_document(v->commit, collection, v->schema_version, v->bytes()));
    ++documents;
    return ok();
  }

  // REQUIRES: the state lock held.
  static std::vector<const mvcc::key_entry*> key_pointers(const collection_state& coll) {
    std::vector<const mvcc::key_entry*> keys;
    keys.reserve(coll.keys.size());
    for (const auto& [id, key] : coll.keys) keys.push_back(key.get());
    return keys;
  }
  // Policies may keep keys unordered; the image is always in _id order.
  static void sort_by_id(std::vector<const mvcc::key_entry*>& keys) {
    auto by_id = [](const auto* a, const auto* b) { return a->doc_id < b->doc_id; };
    if (!std::is_sorted(keys.begin(), keys.end(), by_id)) std::sort(keys.begin(), keys.end(), by_id);
  }
  // REQUIRES: the state lock held.
  static std::vector<const mvcc::key_entry*> keys_in_id_order(const collection_state& coll) {
    auto keys = key_pointers(coll);
    sort_by_id(keys);
    return keys;
  }

  std::mutex mu_;
};

}  // namespace aerodb::engine
