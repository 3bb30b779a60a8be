// Recovery: what every open does before it serves (SPEC_DIGEST §6). Deterministic and
// idempotent; it never skips replay because of a "clean shutdown".
//
//   R1  create the data directory if needed (and sync its parent, so that the new
//       directory's entry is durable) and take its lock file
//   R1b finish a replica's snapshot bootstrap whose switch (the BOOTSTRAP marker) is
//       durable, or remove the staged files of one that never reached it
//       (engine/snapshot_install.hpp)
//   R2  read CHECKPOINT, if any, and load the snapshot it names (every checksum verified),
//       applying its catalog entries through catalog::apply and its documents through
//       version_store::link
//   R3  replay the log strictly after the checkpoint, each record through the same two
//       calls (replay_record); stop with AERO_WAL_CORRUPTION on damage followed by data
//   R4  discard a torn tail for good (truncate, or remove a whole torn segment), so no
//       valid record is ever appended behind it
//   R5  point the commit pipeline at the end of the log; tidy away leftovers of an
//       interrupted checkpoint: stale snapshot files, and log segments the checkpoint
//       covers whose removal a crash undid (wal::scan_result::covered)
//   R6  rebuild every index from the chains (engine/indexer.hpp), publish the last
//       CommitId, and fill in the recovery report
//
// Thread safety: runs before the instance is shared, holding the state lock exclusively.
#pragma once

#include <aerodb/document/document.hpp>
#include <aerodb/engine/catalog.hpp>
#include <aerodb/engine/checkpointer.hpp>
#include <aerodb/engine/gc.hpp>
#include <aerodb/engine/indexer.hpp>
#include <aerodb/engine/snapshot_install.hpp>
#include <aerodb/engine/version_store.hpp>
#include <aerodb/error.hpp>
#include <aerodb/format/snapshot_format.hpp>
#include <aerodb/format/wal_format.hpp>
#include <aerodb/io/file_system.hpp>
#include <aerodb/metrics.hpp>
#include <aerodb/options.hpp>
#include <aerodb/schema/schema.hpp>
#include <aerodb/wal/wal_reader.hpp>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace aerodb::engine {

template <class IndexPolicy>
struct recovery {
  using store_type = version_store<IndexPolicy>;

  // A decoder's error names the offset; the file it was reading is added here, so that an
  // operator (and `aerodb verify`) learns exactly where the damage is.
  template <class T>
  static result<T> in_file(result<T> r, const std::string& file) {
    if (r || !r.error_value().detail("file").empty()) return r;
    return std::move(r).error_value().with("file", file);
  }

  // R2: loads the snapshot whose manifest is `manifest_name`, at boundary `c`.
  // REQUIRES: the state lock held exclusively, the store empty.
  static result<void> load_snapshot(io::file_system& fs, const std::string& dir, store_type& store,
                                    const std::string& manifest_name, commit_id c,
                                    recovery_report& report) {
    auto missing = [&](const std::string& file) {
      return error(errc::checkpoint_snapshot_missing, "the checkpoint names a snapshot file that does not exist",
                   {{"file", file}, {"commit_id", std::to_string(c)}});
    };
    auto read_file = [&](const std::string& name) -> result<std::vector<std::byte>> {
      auto f = fs.open(io::join(dir, name), io::open_mode::read);
      if (!f) {
        if (f.code() == errc::storage_not_found) return missing(name);
        return std::move(f).error_value();
      }
      return io::read_all(**f);
    };
    AERO_TRY_ASSIGN(auto manifest_bytes, read_file(manifest_name));
    AERO_TRY_ASSIGN(auto m, in_file(format::decode_manifest(manifest_bytes), manifest_name));
    if (m.commit != c)
      return error(errc::snapshot_corruption, "the manifest belongs to another CommitId",
                   {{"file", manifest_name}, {"expected", std::to_string(c)}, {"actual", std::to_string(m.commit)}});
    const std::string data_name = format::snapshot_data_file_name(c);
    if (!format::find_file(m, data_name))
      return error(errc::snapshot_corruption, "the manifest does not list the snapshot data file",
                   {{"file", manifest_name}});
    std::vector<std::byte> data;
    for (const auto& file : m.files) {
      AERO_TRY_ASSIGN(auto bytes, read_file(file.name));
      AERO_TRY(format::verify_file(m, file.name, bytes));
      if (file.name == data_name) data = std::move(bytes);
    }

    auto corrupt = [&](std::string why) {
      return error(errc::snapshot_corruption, "the snapshot contradicts itself: " + why, {{"file", data_name}});
    };
    auto apply = [&](catalog_change change, commit_id at, const char* what) -> result<void> {
      if (at > c) return corrupt(std::string(what) + " created after the boundary");
      if (auto r = store.catalog().apply(change, at); !r)
        return corrupt(std::string("bad ") + what + " entry: " + r.error_value().message());
      return ok();
    };
    std::optional<std::pair<std::string, std::uint32_t>> last_schema;
    format::snapshot_visitor v;
    v.on_header = [&](const format::snapshot_header& h) -> result<void> {
      if (h.commit != c) return corrupt("header names another CommitId");
      return ok();
    };
    v.on_schema = [&](const format::schema_entry& e) -> result<void> {
      auto sch = schema::from_json(e.text);
      if (!sch) return corrupt("bad schema: " + sch.error_value().message());
      auto key = std::pair<std::string, std::uint32_t>(sch->id(), sch->version());
      if (last_schema && !(*last_schema < key)) return corrupt("schemas out of order");
      last_schema = key;
      return apply(schema_definition{std::make_shared<const schema>(std::move(*sch))}, e.registered_at, "schema");
    };
    v.on_collection = [&](const format::collection_entry& e) -> result<void> {
      return apply(format::collection_create_record{std::string(e.name), std::string(e.schema_id)}, e.created_at,
                   "collection");
    };
    v.on_index = [&](const format::index_entry& e) -> result<void> {
      return apply(format::index_create_record{std::string(e.collection), std::string(e.path)}, e.created_at,
                   "index");
    };
    v.on_document = [&](const format::document_entry& e) -> result<void> {
      auto* coll = store.catalog().find_collection(e.collection);
      if (!coll || e.committed_at > c || e.schema_version == 0) return corrupt("bad document entry");
      auto buf = std::make_shared<const mvcc::payload::buffer>(e.bytes.begin(), e.bytes.end());
      store.link(*coll, std::string(e.doc_id), e.committed_at, format::write_kind::insert, e.schema_version,
                 std::move(buf));
      ++report.snapshot_documents;
      return ok();
    };
    return in_file(format::read_snapshot_data(data, v), data_name);
  }

  // What a replica adds when it applies a shipped record to a store that serves (docs/
  // replication.md §2): index entries follow each version at once, as W8 does on the
  // primary (recovery builds them all at R6 instead), and a GC record frees only what the
  // replica's open views allow (`gc_floor`, at most the record's floor).
  struct live_apply {
    metrics_registry* metrics = nullptr;
    commit_id gc_floor = 0;
  };

  // R3: applies one log record; full-state records make this idempotent.
  // REQUIRES: the state lock held exclusively.
  static result<void> replay_record(store_type& store, const wal::wal_record& r, const live_apply* live = nullptr) {
    auto corrupt = [&](std::string why) {
      return error(errc::wal_corruption, "a checksummed log record cannot be applied: " + why,
                   {{"segment", *r.segment}, {"offset", std::to_string(r.offset)},
                    {"commit_id", std::to_string(r.commit)}});
    };
    auto apply = [&](catalog_change change) -> result<void> {
      if (auto a = store.catalog().apply(change, r.commit); !a)
        return corrupt("the record contradicts the catalog: " + a.error_value().message());
      return ok();
    };
    switch (r.type) {
      case format::record_type::schema_register: {
        auto s = schema::from_json(format::as_chars(r.payload));
        if (!s) return corrupt("bad schema definition: " + s.error_value().message());
        return apply(schema_definition{std::make_shared<const schema>(std::move(*s))});
      }
      case format::record_type::collection_create: {
        auto c = format::decode_collection_create(r.payload);
        if (!c) return corrupt("bad collection record");
        return apply(std::move(*c));
      }
      case format::record_type::index_create: {
        auto ix = format::decode_index_create(r.payload);
        if (!ix) return corrupt("bad index record");
        const std::string collection = ix->collection, path = ix->path;
        AERO_TRY(apply(std::move(*ix)));  // at recovery, entries are built once replay is done (R6)
        if (live) {
          auto& c = *store.catalog().find_collection(collection);
          indexer<IndexPolicy>::build(c, path, *c.indexes.find(path)->second, *live->metrics);
        }
        return ok();
      }
      case format::record_type::gc: {
        auto floor = format::decode_gc(r.payload);
        if (!floor || *floor >= r.commit) return corrupt("bad gc record");
        collector<IndexPolicy>::collect(store, live ? std::min(live->gc_floor, *floor) : *floor);
        return ok();
      }
      case format::record_type::write_batch: {
        auto ops = format::decode_write_batch(r.payload);
        if (!ops) return corrupt("bad write batch");
        for (auto& op : *ops) {
          auto* c = store.catalog().find_collection(op.collection);
          if (!c) return corrupt("write to an unknown collection");
          std::shared_ptr<const mvcc::payload::buffer> buf;
          if (op.kind != format::write_kind::remove) {
            auto doc = document::from_bytes(std::vector<std::byte>(op.document.begin(), op.document.end()));
            if (!doc) return corrupt("bad document: " + doc.error_value().message());
            if (doc->id() != op.doc_id) return corrupt("document _id differs from the key");
            buf = doc->buffer();
          }
          store.link(*c, op.doc_id, r.commit, op.kind, op.schema_version, std::move(buf));
          if (live && op.kind != format::write_kind::remove)
            indexer<IndexPolicy>::index_commit(*c, *c->find_key(op.doc_id), r.commit);
        }
        return ok();
      }
    }
    return corrupt("unknown record type");
  }

  // R2-R6 for a live open. `pipeline` receives where the log ends.
  // REQUIRES: R1 done (the directory exists and its lock is held); the instance not shared.
  template <class Pipeline>
  static result<void> run(io::file_system& fs, const std::string& dir, const open_options& options,
                          store_type& store, Pipeline& pipeline, metrics_registry& metrics,
                          recovery_report& report, std::chrono::steady_clock::time_point started) {
    auto state_lock = store.lock_exclusive();
    // A replica's snapshot bootstrap whose switch is durable is finished before anything
    // is read; one that never reached it leaves only staged files, removed here.
    AERO_TRY(finish_bootstrap(fs, dir));
    commit_id checkpoint_id = 0;
    const std::string checkpoint_path = io::join(dir, std::string(format::checkpoint_file_name));
    AERO_TRY_ASSIGN(bool has_checkpoint, fs.exists(checkpoint_path));
    using clock = std::chrono::steady_clock;
    auto phase_start = clock::now();
    if (has_checkpoint) {
      AERO_TRY_ASSIGN(auto f, fs.open(checkpoint_path, io::open_mode::read));
      AERO_TRY_ASSIGN(auto bytes, io::read_all(*f));
      AERO_TRY_ASSIGN(auto record, in_file(format::decode_checkpoint(bytes),
                                           std::string(format::checkpoint_file_name)));
      AERO_TRY(load_snapshot(fs, dir, store, record.manifest_name, record.commit, report));
      checkpoint_id = record.commit;
    }
    report.snapshot_load = clock::now() - phase_start;
    store.set_history_floor(checkpoint_id);
    auto progress = [&options](const wal::scan_progress& p) {
      if (options.on_recovery_progress) options.on_recovery_progress({p.bytes_done, p.bytes_total, p.records});
    };
    phase_start = clock::now();
    AERO_TRY_ASSIGN(wal::scan_result scan,
                    wal::read_wal(fs, dir, checkpoint_id,
                                  [&store](const wal::wal_record& r) { return replay_record(store, r); },
                                  progress));
    report.log_replay = clock::now() - phase_start;

    // R4: discard the torn tail for good before anything is appended after it: a valid
    // record behind it would otherwise turn it into corruption at the next recovery.
    std::optional<wal::segment_info> resume_at =
        scan.segments.empty() ? std::nullopt : std::optional(scan.segments.back());
    if (scan.torn) {
      const std::string path = io::join(dir, scan.torn->segment);
      if (scan.torn->whole_segment) {
        AERO_TRY(fs.remove(path));
        AERO_TRY(fs.sync_dir(dir));
      } else {
        AERO_TRY_ASSIGN(auto f, fs.open(path, io::open_mode::append));
        AERO_TRY(f->truncate(scan.torn->offset));
        AERO_TRY(f->sync());
      }
    }
    // R5
    if (resume_at) {
      AERO_TRY(pipeline.resume(resume_at->seq, resume_at->name, resume_at->valid_end));
    } else if (scan.torn && scan.torn->whole_segment) {
      if (auto seq = format::parse_segment_file_name(scan.torn->segment)) pipeline.set_next_segment_seq(*seq);
    }
    AERO_TRY(remove_stale_snapshot_files(fs, dir, checkpoint_id));
    // Segments the checkpoint covers whose removal did not reach the disk before a crash.
    if (!scan.covered.empty()) {
      for (const auto& name : scan.covered) AERO_TRY(fs.remove(io::join(dir, name)));
      AERO_TRY(fs.sync_dir(dir));
    }

    // R6
    phase_start = clock::now();
    indexer<IndexPolicy>::rebuild_all(store.catalog(), metrics);
    report.index_build = clock::now() - phase_start;
    pipeline.set_next_commit(scan.last_commit_id + 1);
    store.publish(scan.last_commit_id);
    report.records_replayed = scan.records_replayed;
    report.segments = scan.segments.size();
    report.wal_bytes = scan.bytes_total;
    report.last_commit_id = scan.last_commit_id;
    report.torn_tail = scan.torn;
    report.checkpoint = checkpoint_id;
    report.duration = std::chrono::steady_clock::now() - started;
    metrics.recovery_runs.add();
    metrics.recovery_duration_ns.add(static_cast<std::uint64_t>(report.duration.count()));
    if (scan.torn) metrics.recovery_torn_tail_bytes.add(scan.torn->bytes);
    return ok();
  }
};

}  // namespace aerodb::engine
