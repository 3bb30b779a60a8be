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
// Each of R2-R6 is a recovery_phase (options.hpp): timed into the recovery report and told
// to open_options::on_recovery_progress (engine/phase_progress.hpp), in the same order on
// every open, a phase with nothing to do included.
//
// Thread safety: runs before the instance is shared, holding the state lock exclusively.
#pragma once

#include <aerodb/document/document.hpp>
#include <aerodb/engine/catalog.hpp>
#include <aerodb/engine/checkpointer.hpp>
#include <aerodb/engine/gc.hpp>
#include <aerodb/engine/indexer.hpp>
#include <aerodb/engine/phase_progress.hpp>
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

template <class IndexPolicy, class MemoryLayout = policies::baseline_memory_layout>
struct recovery {
  using store_type = version_store<IndexPolicy, MemoryLayout>;

  // A decoder's error names the offset; the file it was reading is added here, so that an
  // operator (and `aerodb verify`) learns exactly where the damage is.
  template <class T>
  static result<T> in_file(result<T> r, const std::string& file) {
    if (r || !r.error_value().detail("file").empty()) return r;
    return std::move(r).error_value().with("file", file);
  }

  // R2: loads the snapshot whose manifest is `manifest_name`, at boundary `c`: the
  // snapshot_read phase, then snapshot_load.
  // REQUIRES: the state lock held exclusively, the store empty.
  static result<void> load_snapshot(io::file_system& fs, const std::string& dir, store_type& store,
                                    const std::string& manifest_name, commit_id c,
                                    recovery_report& report, const phase_progress::callback& on_progress = {}) {
    auto missing = [&](const std::string& file) {
      return error(errc::checkpoint_snapshot_missing, "the checkpoint names a snapshot file that does not exist",
                   {{"file", file}, {"commit_id", std::to_string(c)}});
    };
    auto open_file = [&](const std::string& name) -> result<std::unique_ptr<io::file>> {
      auto f = fs.open(io::join(dir, name), io::open_mode::read);
      if (!f && f.code() == errc::storage_not_found) return missing(name);
      return f;
    };
    AERO_TRY_ASSIGN(auto manifest_file, open_file(manifest_name));
    AERO_TRY_ASSIGN(auto manifest_bytes, io::read_all(*manifest_file));
    AERO_TRY_ASSIGN(auto m, in_file(format::decode_manifest(manifest_bytes), manifest_name));
    if (m.commit != c)
      return error(errc::snapshot_corruption, "the manifest belongs to another CommitId",
                   {{"file", manifest_name}, {"expected", std::to_string(c)}, {"actual", std::to_string(m.commit)}});
    const std::string data_name = format::snapshot_data_file_name(c);
    if (!format::find_file(m, data_name))
      return error(errc::snapshot_corruption, "the manifest does not list the snapshot data file",
                   {{"file", manifest_name}});

    // Each listed file is read in steps, its CRC32C extended over each step while the step
    // is still in the cache: one pass over the bytes instead of a read and then a second,
    // uncached, pass for the checksum.
    std::uint64_t listed = 0;
    for (const auto& file : m.files) listed += file.size;
    std::vector<std::byte> data;
    {
      phase_progress progress(on_progress, recovery_phase::snapshot_read, listed, report.snapshot_read);
      constexpr std::size_t step = std::size_t{1} << 20;
      std::uint64_t done = 0;
      for (const auto& file : m.files) {
        AERO_TRY_ASSIGN(auto f, open_file(file.name));
        AERO_TRY_ASSIGN(const std::uint64_t size, f->size());
        if (size != file.size) return format::verify_file_summary(m, file.name, size, [] { return 0u; });
        std::vector<std::byte> bytes(static_cast<std::size_t>(size));
        std::uint32_t crc = 0;  // the CRC32C of no bytes
        std::size_t got = 0;
        while (got < bytes.size()) {
          const auto piece = std::span(bytes).subspan(got, std::min(step, bytes.size() - got));
          AERO_TRY_ASSIGN(const std::size_t n, f->read_at(got, piece));
          if (n == 0) break;  // the file shrank under us: a size mismatch below
          crc = crc32c::extend(crc, piece.first(n));
          got += n;
          progress.advance(done + got);
        }
        AERO_TRY(format::verify_file_summary(m, file.name, got, [crc] { return crc; }));
        done += got;
        if (file.name == data_name) data = std::move(bytes);
      }
      progress.finish();
    }
    phase_progress progress(on_progress, recovery_phase::snapshot_load, data.size(), report.snapshot_load);

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
      store.link(*coll, std::string(e.doc_id), e.committed_at, format::write_kind::insert, e.schema_version,
                 e.bytes);
      progress.set_documents_loaded(++report.snapshot_documents);
      progress.advance(static_cast<std::uint64_t>(e.bytes.data() + e.bytes.size() - data.data()));
      return ok();
    };
    AERO_TRY(in_file(format::read_snapshot_data(data, v), data_name));
    progress.finish();
    return ok();
  }

  // A phase this open skips (no checkpoint: nothing to read or load) is still reported,
  // so every open tells the same sequence of phases.
  static void nothing_to_do(const phase_progress::callback& on_progress, recovery_phase phase,
                            std::chrono::nanoseconds& elapsed) {
    phase_progress(on_progress, phase, 0, elapsed).finish();
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
        collector<IndexPolicy, MemoryLayout>::collect(store, live ? std::min(live->gc_floor, *floor) : *floor);
        return ok();
      }
      case format::record_type::write_batch: {
        auto ops = format::decode_write_batch(r.payload);
        if (!ops) return corrupt("bad write batch");
        for (auto& op : *ops) {
          auto* c = store.catalog().find_collection(op.collection);
          if (!c) return corrupt("write to an unknown collection");
          // The document is checked where it lies in the record, and the memory layout
          // copies it once from there (into a block of its arena, or a shared buffer).
          // The check stays although the writer validated the document before logging
          // it: the readers of encoded documents trust their lengths, and a checksum
          // proves only that the bytes are the ones written, not that the writer was
          // right. It measured about 1% of a 1M-document replay (docs/benchmarks.md).
          if (op.kind != format::write_kind::remove) {
            if (auto checked = format::check_encoded_document(op.document); !checked)
              return corrupt("bad document: " + checked.error_value().message());
            const auto id = document_view(op.document).find("_id");
            if (!id || id->kind() != value_kind::string)
              return corrupt("bad document: encoded document has no string _id");
            if (id->as_string() != op.doc_id) return corrupt("document _id differs from the key");
          }
          store.link(*c, op.doc_id, r.commit, op.kind, op.schema_version, op.document);
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
    const auto& on_progress = options.on_recovery_progress;
    // A replica's snapshot bootstrap whose switch is durable is finished before anything
    // is read; one that never reached it leaves only staged files, removed here.
    AERO_TRY(finish_bootstrap(fs, dir));
    commit_id checkpoint_id = 0;
    const std::string checkpoint_path = io::join(dir, std::string(format::checkpoint_file_name));
    AERO_TRY_ASSIGN(bool has_checkpoint, fs.exists(checkpoint_path));
    if (has_checkpoint) {
      AERO_TRY_ASSIGN(auto f, fs.open(checkpoint_path, io::open_mode::read));
      AERO_TRY_ASSIGN(auto bytes, io::read_all(*f));
      AERO_TRY_ASSIGN(auto record, in_file(format::decode_checkpoint(bytes),
                                           std::string(format::checkpoint_file_name)));
      AERO_TRY(load_snapshot(fs, dir, store, record.manifest_name, record.commit, report, on_progress));
      checkpoint_id = record.commit;
    } else {
      nothing_to_do(on_progress, recovery_phase::snapshot_read, report.snapshot_read);
      nothing_to_do(on_progress, recovery_phase::snapshot_load, report.snapshot_load);
    }
    store.set_history_floor(checkpoint_id);

    // R3. The reader learns the log's size only once it has listed the segments, so the
    // phase is reported from its first call, and timed here around the whole scan.
    using clock = std::chrono::steady_clock;
    std::optional<phase_progress> replay_progress;
    std::chrono::nanoseconds ignored{0};
    wal::progress_callback forward;
    if (on_progress)
      forward = [&](const wal::scan_progress& p) {
        if (!replay_progress) replay_progress.emplace(on_progress, recovery_phase::log_replay, p.bytes_total, ignored);
        replay_progress->set_records_replayed(p.records);
        replay_progress->advance(p.bytes_done);
      };
    const auto replay_started = clock::now();
    AERO_TRY_ASSIGN(wal::scan_result scan,
                    wal::read_wal(fs, dir, checkpoint_id,
                                  [&store](const wal::wal_record& r) { return replay_record(store, r); },
                                  forward));
    report.log_replay = clock::now() - replay_started;
    if (replay_progress) replay_progress->finish();

    // R4 and R5: the cleanup phase, counted in files changed.
    std::uint64_t cleaned = 0;
    AERO_TRY_ASSIGN(auto stale, stale_snapshot_files(fs, dir, checkpoint_id));
    phase_progress cleanup(on_progress, recovery_phase::cleanup,
                           (scan.torn ? 1 : 0) + stale.size() + scan.covered.size(), report.cleanup);
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
      cleanup.advance(++cleaned);
    }
    // R5
    if (resume_at) {
      AERO_TRY(pipeline.resume(resume_at->seq, resume_at->name, resume_at->valid_end));
    } else if (scan.torn && scan.torn->whole_segment) {
      if (auto seq = format::parse_segment_file_name(scan.torn->segment)) pipeline.set_next_segment_seq(*seq);
    }
    // Leftovers of an interrupted checkpoint: snapshot files of another boundary, and
    // segments the checkpoint covers whose removal did not reach the disk before a crash.
    for (const auto& names : {&stale, &scan.covered}) {
      if (names->empty()) continue;
      for (const auto& name : *names) {
        AERO_TRY(fs.remove(io::join(dir, name)));
        cleanup.advance(++cleaned);
      }
      AERO_TRY(fs.sync_dir(dir));
    }
    cleanup.finish();

    // R6
    {
      phase_progress progress(on_progress, recovery_phase::index_build,
                              indexer<IndexPolicy>::rebuild_steps(store.catalog()), report.index_build);
      indexer<IndexPolicy>::rebuild_all(store.catalog(), metrics, [&progress](std::uint64_t done) { progress.advance(done); });
      progress.finish();
    }
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
