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
// store under its state lock held shared, so writers wait only while it is copied.
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
#include <aerodb/outcomes.hpp>
#include <aerodb/wal/segments.hpp>

#include <algorithm>
#include <chrono>
#include <mutex>
#include <string>
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

template <class IndexPolicy, class MemoryLayout = policies::baseline_memory_layout>
class checkpointer {
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
    AERO_TRY_ASSIGN(const format::byte_buffer data, encode_snapshot(store, c, out.documents));
    out.snapshot_bytes = data.size();

    const std::string data_name = format::snapshot_data_file_name(c);
    const std::string manifest_name = format::snapshot_manifest_file_name(c);
    AERO_TRY(io::write_file_durably(fs, dir, data_name, data));
    format::manifest m{c, {format::describe_file(data_name, data)}};
    AERO_TRY_ASSIGN(auto manifest_bytes, format::encode_manifest(m));
    AERO_TRY(io::write_file_durably(fs, dir, manifest_name, manifest_bytes));
    AERO_TRY(fs.sync_dir(dir));

    // The durable switch: from here on, recovery starts from this snapshot.
    AERO_TRY_ASSIGN(auto record, format::encode_checkpoint({c, manifest_name}));
    AERO_TRY(io::write_file_durably(fs, dir, std::string(format::checkpoint_file_name), record));
    AERO_TRY(fs.sync_dir(dir));
    return ok();
  }

  // The bytes of the snapshot data file for the image at `c`, whole (a checkpoint writes
  // them; a primary ships them to a replica that needs a snapshot bootstrap). Adds the
  // documents written to `documents`.
  // REQUIRES: a read view at `c` open.
  static result<format::byte_buffer> encode_snapshot(const store_type& store, commit_id c,
                                                     std::uint64_t& documents) {
    format::snapshot_encoder enc(c);
    AERO_TRY(encode_image(enc, store, c, documents));
    AERO_TRY(enc.finish());
    return enc.take_pending();
  }

 private:
  // The image at `c`, in the order the format requires.
  static result<void> encode_image(format::snapshot_encoder& enc, const store_type& store, commit_id c,
                                   std::uint64_t& documents) {
    auto lock = store.lock_shared();
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
    for (const auto& [name, coll] : cat.collections()) {
      if (coll->created_at > c) continue;
      // Policies may keep keys unordered; the image is always in _id order.
      std::vector<const mvcc::key_entry*> keys;
      keys.reserve(coll->keys.size());
      for (const auto& [id, key] : coll->keys) keys.push_back(key.get());
      std::sort(keys.begin(), keys.end(), [](const auto* a, const auto* b) { return a->doc_id < b->doc_id; });
      for (const auto* key : keys) {
        const mvcc::version* v = nullptr;
        for (const auto& candidate : key->chain)
          if (candidate.commit <= c) { v = &candidate; break; }  // chains are newest first
        if (!v || v->tombstone()) continue;
        AERO_TRY(enc.add_document(v->commit, name, v->schema_version, v->bytes()));
        ++documents;
      }
    }
    return ok();
  }

  std::mutex mu_;
};

}  // namespace aerodb::engine
