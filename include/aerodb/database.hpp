// basic_database<FsyncPolicy, VisibilityCachePolicy, IndexPolicy, MemoryLayoutPolicy,
// CheckpointPolicy>: the engine's façade. The last two slots default to the baseline
// (policies/baseline.hpp, policies/checkpoint.hpp), so code written against the
// three-slot form keeps compiling and means what it did.
//
// It owns the instance's directory, options, file system and lock file, and wires the
// engine's rooms (include/aerodb/engine/, docs/architecture.md):
//   catalog          schemas, collections, index definitions; one apply() for every change
//   version_store    the catalog and the version chains behind the state lock; publication
//                    and the history floor; hands readers out
//   commit_pipeline  write path steps W4-W9 (check, link, frame, write, fsync, index,
//                    publish), with the FsyncPolicy deciding how commits share an fsync
//   indexer          secondary-index entries derived from versions
//   gc               the registry of open read views, and the collector
//   checkpointer     snapshots, the CHECKPOINT switch, removal of covered segments
//   recovery         what every open does before it serves (R1-R6)
// A write's steps W1-W3 (parse, validate, encode) run on the caller's thread
// (engine/commit_request.hpp) before the request enters the pipeline.
//
// A failed append or fsync is FATAL: nothing of that group is acknowledged or published,
// and the instance refuses every later write with AERO_STORAGE_READ_ONLY. Reopening the
// directory decides from the log what survived.
//
// Thread safety: every public member may be called from any number of threads at once.
// A read_view may be used by one thread at a time; open one per thread. Read views must
// not outlive the database that made them; with AERODB_CHECK_LIFETIMES (engine/gc.hpp, on
// unless NDEBUG) destroying the database while views are open aborts with a message.
#pragma once

#include <aerodb/detail/share_work.hpp>
#include <aerodb/document/document.hpp>
#include <aerodb/engine/catalog.hpp>
#include <aerodb/engine/checkpointer.hpp>
#include <aerodb/engine/commit_pipeline.hpp>
#include <aerodb/engine/commit_request.hpp>
#include <aerodb/engine/errors.hpp>
#include <aerodb/engine/gc.hpp>
#include <aerodb/engine/indexer.hpp>
#include <aerodb/engine/phase_progress.hpp>
#include <aerodb/engine/recovery.hpp>
#include <aerodb/engine/version_store.hpp>
#include <aerodb/error.hpp>
#include <aerodb/format/authority.hpp>
#include <aerodb/format/wal_format.hpp>
#include <aerodb/io/durable_file.hpp>
#include <aerodb/io/file_system.hpp>
#include <aerodb/io/posix_fs.hpp>
#include <aerodb/metrics.hpp>
#include <aerodb/options.hpp>
#include <aerodb/outcomes.hpp>
#include <aerodb/policies/baseline.hpp>
#include <aerodb/policies/concepts.hpp>
#include <aerodb/query/parse.hpp>
#include <aerodb/query/plan.hpp>
#include <aerodb/query/query.hpp>
#include <aerodb/schema/schema.hpp>
#include <aerodb/wal/wal_writer.hpp>
#include <aerodb/write_batch.hpp>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace aerodb {

template <class Database>
class basic_read_view;
namespace replication {
template <class Database, class ReplicaReadPolicy>
class basic_replica;
template <class Database>
class primary_feed;
}  // namespace replication

template <class FsyncPolicy, class VisibilityCachePolicy, class IndexPolicy,
          class MemoryLayoutPolicy = policies::baseline_memory_layout,
          class CheckpointPolicy = policies::whole_image_checkpoint>
class basic_database {
  static_assert(policies::check_fsync_policy<FsyncPolicy>());
  static_assert(policies::check_visibility_cache_policy<VisibilityCachePolicy>());
  static_assert(policies::check_index_policy<IndexPolicy>());
  static_assert(policies::check_memory_layout_policy<MemoryLayoutPolicy>());
  static_assert(policies::check_checkpoint_policy<CheckpointPolicy>());

  using store_type = engine::version_store<IndexPolicy, MemoryLayoutPolicy>;
  using pipeline_type = engine::commit_pipeline<FsyncPolicy, IndexPolicy, MemoryLayoutPolicy>;
  using recovery_type = engine::recovery<IndexPolicy, MemoryLayoutPolicy>;
  using collector_type = engine::collector<IndexPolicy, MemoryLayoutPolicy>;
  using checkpointer_type = engine::checkpointer<IndexPolicy, MemoryLayoutPolicy, CheckpointPolicy>;

 public:
  using fsync_policy = FsyncPolicy;
  using visibility_cache_policy = VisibilityCachePolicy;
  using index_policy = IndexPolicy;
  using memory_layout_policy = MemoryLayoutPolicy;
  using checkpoint_policy = CheckpointPolicy;
  using read_view = basic_read_view<basic_database>;

  basic_database(const basic_database&) = delete;
  basic_database& operator=(const basic_database&) = delete;
  ~basic_database() = default;

  // Opens (creating if needed) the data directory, takes its lock and recovers.
  static result<std::unique_ptr<basic_database>> open(std::string dir, open_options options = {}) {
    AERO_TRY(validate(options));
    std::unique_ptr<basic_database> db(new basic_database(std::move(dir), std::move(options)));
    AERO_TRY(db->recover());
    db->log_since_checkpoint_at_open_ = db->report_.wal_bytes;
    return db;
  }

  // Opens the persistent snapshot at boundary `c` in `dir` read-only: queries and reads
  // answer as the live database did at `c`; every write is refused. Takes no lock (the
  // files are immutable), so the live database must not remove the snapshot meanwhile.
  static result<std::unique_ptr<basic_database>> open_snapshot(std::string dir, commit_id c,
                                                               open_options options = {}) {
    AERO_TRY(validate(options));
    std::unique_ptr<basic_database> db(new basic_database(std::move(dir), std::move(options)));
    db->is_snapshot_ = true;
    const auto started = std::chrono::steady_clock::now();
    // The snapshot read, snapshot load and index build phases of an open (options.hpp).
    auto loaded = cancellable([&]() -> result<void> {
      auto state_lock = db->store_.lock_exclusive();
      const auto& on_progress = db->options_.on_recovery_progress;
      AERO_TRY(recovery_type::load_snapshot(*db->fs_, db->dir_, db->store_,
                                                            format::snapshot_manifest_file_name(c), c,
                                                            db->report_, on_progress));
      engine::phase_progress progress(on_progress, recovery_phase::index_build,
                                      engine::indexer<IndexPolicy>::rebuild_steps(db->store_.catalog()),
                                      db->report_.index_build);
      engine::indexer<IndexPolicy>::rebuild_all(db->store_.catalog(), db->metrics_,
                                                [&progress](std::uint64_t done) { progress.advance(done); });
      progress.finish();
      return ok();
    });
    if (!loaded) {
      if (loaded.code() == errc::checkpoint_snapshot_missing)
        return error(errc::snapshot_not_found, "no complete snapshot at this CommitId",
                     {{"directory", db->dir_}, {"commit_id", std::to_string(c)}});
      return std::move(loaded).error_value();
    }
    db->report_.duration = std::chrono::steady_clock::now() - started;
    db->store_.publish(c);
    db->store_.set_history_floor(c);
    db->report_.checkpoint = c;
    db->report_.last_commit_id = c;
    return db;
  }

  // ---- catalog ------------------------------------------------------------------------

  // Registers a schema version (see docs/schemas.md for the definition format).
  result<commit_id> register_schema(std::string_view definition_json) {
    if (definition_json.size() > max_schema_definition_bytes)
      return error(errc::schema_invalid, "the schema definition is larger than allowed",
                   {{"bytes", std::to_string(definition_json.size())},
                    {"limit", std::to_string(max_schema_definition_bytes)}});
    AERO_TRY_ASSIGN(schema s, schema::from_json(definition_json));
    engine::commit_request req;
    req.type = format::record_type::schema_register;
    format::put_bytes(req.payload, s.to_canonical_json());
    req.change = engine::schema_definition{std::make_shared<const schema>(std::move(s))};
    return submit(req);
  }

  // Creates a collection whose documents follow versions of schema `schema_id`.
  result<commit_id> create_collection(std::string_view name, std::string_view schema_id) {
    if (!engine::valid_collection_name(name))
      return error(errc::collection_invalid_name,
                   "a collection name is 1 to 64 characters of A-Z, a-z, 0-9, '_' and '-'",
                   {{"collection", std::string(name)}});
    {
      auto lock = store_.lock_shared();
      if (!store_.catalog().schema_known(schema_id))
        return error(errc::unknown_schema, "no version of this schema is registered",
                     {{"schema_id", std::string(schema_id)}});
    }
    format::collection_create_record rec{std::string(name), std::string(schema_id)};
    engine::commit_request req;
    req.type = format::record_type::collection_create;
    req.payload = format::encode_collection_create(rec);
    req.change = std::move(rec);
    return submit(req);
  }

  // Indexes `field_path` (dotted, through objects) in a collection. Every live version is
  // indexed, so read views of any retained boundary can use it; documents whose field is
  // missing or not a scalar simply have no entry.
  result<commit_id> create_index(std::string_view collection, std::string_view field_path) {
    if (!engine::valid_field_path(field_path))
      return error(errc::index_invalid_field, "an index field is a dotted path of valid field names",
                   {{"field", std::string(field_path)}});
    {
      auto lock = store_.lock_shared();
      if (!store_.catalog().find_collection(collection))
        return error(errc::collection_unknown, "no such collection", {{"collection", std::string(collection)}});
    }
    format::index_create_record rec{std::string(collection), std::string(field_path)};
    engine::commit_request req;
    req.type = format::record_type::index_create;
    req.payload = format::encode_index_create(rec);
    req.change = std::move(rec);
    return submit(req);
  }

  // Logs a GC record and frees the versions no open read view can see. Runs when called,
  // or after a write that crosses open_options::gc_after_superseded_versions; never on a
  // timer.
  result<gc_outcome> gc() {
    if (is_snapshot_) return engine::snapshot_read_only_error();
    // Refused before anything else, as every write is: otherwise a GC with nothing to
    // collect would answer success, and one with something would reserve its floor.
    if (auto r = check_primary(); !r) return std::move(r).error_value();
    if (!accepts_writes()) return engine::read_only_error();
    const auto serial = collector_.serialize();
    const auto choice = views_.reserve_floor(store_, [this](commit_id floor) {
      return collector_type::anything_to_collect(store_, floor);
    });
    if (!choice.reserved) return gc_outcome{0, choice.floor, 0, 0, 0};
    engine::commit_request req;
    req.type = format::record_type::gc;
    req.gc_floor = choice.floor;
    req.payload = format::encode_gc(choice.floor);
    AERO_TRY_ASSIGN(commit_id record, submit(req));
    req.gc_result.record = record;
    return req.gc_result;
  }

  // Writes a persistent snapshot of the newest commit, makes it the checkpoint, and
  // removes the WAL segments it covers (engine/checkpointer.hpp). Readers and writers go
  // on meanwhile; writers wait while the image is read from memory, for all of it or one
  // batch of keys at a time as the CheckpointPolicy says. A replica
  // checkpoints its own copy the same way (it writes no log record).
  result<checkpoint_outcome> checkpoint() {
    if (is_snapshot_) return engine::snapshot_read_only_error();
    const auto serial = checkpointer_.serialize();
    if (!pipeline_.accepts_writes()) return engine::read_only_error();
    const read_view pin = read();  // holds GC back from the versions being written
    return checkpointer_type::write(*fs_, dir_, store_, pin.bound(), metrics_);
  }

  // Writes a consistent, openable copy of the store to `dest`, a directory that must not
  // exist yet, while writers go on: the snapshot at the newest published CommitId (so it
  // holds every commit acknowledged before the call) made the copy's checkpoint, with no
  // log after it. Writers wait while the image is read from memory, as for a
  // checkpoint. Files and the directory get this store's modes (open_options::file_mode,
  // dir_mode). The copy's CHECKPOINT record is written last: a destination without one is
  // an interrupted backup, and a failed backup removes what it wrote.
  result<backup_outcome> backup(const std::string& dest) {
    const auto started = std::chrono::steady_clock::now();
    if (dest.empty() || io::is_root_dir(dest))
      return error(errc::config_invalid, "a backup needs a destination directory", {{"directory", dest}});
    AERO_TRY_ASSIGN(const bool exists, fs_->exists(dest));
    if (exists)
      return error(errc::storage_exists, "the backup destination already exists; name a new directory",
                   {{"directory", dest}});
    const read_view pin = read();  // holds GC back from the versions being copied
    auto written = [&]() -> result<checkpoint_outcome> {
      AERO_TRY(fs_->create_dir(dest));
      AERO_TRY(fs_->sync_dir(io::parent_dir(dest)));
      {
        AERO_TRY_ASSIGN(auto lock_file, fs_->open(io::join(dest, "LOCK"), io::open_mode::create_or_truncate));
        AERO_TRY(lock_file->sync());
      }
      checkpoint_outcome out;
      AERO_TRY(checkpointer_type::write_snapshot_files(*fs_, dest, store_, pin.bound(), out));
      return out;
    }();
    if (!written) {
      // Best effort: an error here is less useful than the one that stopped the backup.
      if (auto names = fs_->list_dir(dest)) {
        for (const auto& n : *names) (void)fs_->remove(io::join(dest, n));
        (void)fs_->sync_dir(dest);
      }
      return std::move(written).error_value();
    }
    backup_outcome out;
    out.commit = written->commit;
    out.documents = written->documents;
    out.bytes = written->snapshot_bytes;
    out.duration = std::chrono::steady_clock::now() - started;
    return out;
  }

  // ---- writes -------------------------------------------------------------------------

  result<commit_id> insert(std::string_view collection, std::uint32_t schema_version, std::string_view json) {
    write_batch b;
    b.insert(std::string(collection), schema_version, std::string(json));
    AERO_TRY_ASSIGN(batch_outcome out, commit(b));
    return out.commit;
  }

  // Replaces the whole document `doc_id`; the new JSON must carry the same `_id`.
  result<commit_id> update(std::string_view collection, std::string_view doc_id, std::uint32_t schema_version,
                           std::string_view json) {
    write_batch b;
    b.update(std::string(collection), std::string(doc_id), schema_version, std::string(json));
    AERO_TRY_ASSIGN(batch_outcome out, commit(b));
    return out.commit;
  }

  // update() only if the document's newest version is still the one committed at
  // `based_on` (the committed_at of the version read); otherwise AERO_WRITE_CONFLICT, with
  // the CommitId it has now in the details, and nothing changes. Retry from a fresh read.
  result<commit_id> update_if(std::string_view collection, std::string_view doc_id, commit_id based_on,
                              std::uint32_t schema_version, std::string_view json) {
    write_batch b;
    b.update_if(std::string(collection), std::string(doc_id), based_on, schema_version, std::string(json));
    AERO_TRY_ASSIGN(batch_outcome out, commit(b));
    return out.commit;
  }

  // remove() only if the document's newest version is still the one committed at
  // `based_on`; otherwise AERO_WRITE_CONFLICT and nothing changes.
  result<delete_outcome> remove_if(std::string_view collection, std::string_view doc_id, commit_id based_on) {
    write_batch b;
    b.remove_if(std::string(collection), std::string(doc_id), based_on);
    AERO_TRY_ASSIGN(batch_outcome out, commit(b));
    return delete_outcome{out.applied.at(0), out.commit};
  }

  // Deleting a missing document is a no-op that writes nothing.
  result<delete_outcome> remove(std::string_view collection, std::string_view doc_id) {
    write_batch b;
    b.remove(std::string(collection), std::string(doc_id));
    AERO_TRY_ASSIGN(batch_outcome out, commit(b));
    return delete_outcome{out.applied.at(0), out.commit};
  }

  // How many threads prepare a large write batch (parse, validate, encode): one, unless
  // the FsyncPolicy asks for parallel preparation (FsyncPolicy::parallel_prepare), then
  // the cores available. The request is the same whatever the count (prepare_batch).
  static std::size_t prepare_threads() {
    if constexpr (requires { FsyncPolicy::parallel_prepare; }) {
      if (FsyncPolicy::parallel_prepare) return detail::available_cores();
    }
    return 1;
  }

  // Commits every operation of `batch` as one CommitId, or none of them.
  result<batch_outcome> commit(const write_batch& batch) {
    AERO_TRY_ASSIGN(engine::commit_request req, engine::prepare_batch(batch, options_, store_, prepare_threads()));
    AERO_TRY_ASSIGN(commit_id id, submit(req));
    batch_outcome out{id, std::move(req.applied)};
    if (options_.checkpoint_after_log_bytes || options_.gc_after_superseded_versions) maintain(batch, out);
    return out;
  }

  // The error of the last automatic checkpoint or GC that failed (open_options::
  // checkpoint_after_log_bytes, gc_after_superseded_versions), if any: the write that ran
  // it was acknowledged all the same, and the next write past the threshold tries again.
  std::optional<error> maintenance_error() const {
    std::lock_guard lock(maintenance_error_mu_);
    return maintenance_error_;
  }

  // ---- reads --------------------------------------------------------------------------

  // A read view of every commit acknowledged before this call.
  read_view read() const { return read_view(store_, views_, metrics_, views_.open_latest(store_)); }

  // A read view at an older boundary; AERO_CONFIG_INVALID beyond the newest commit,
  // AERO_READ_VIEW_TOO_OLD below what GC has freed.
  result<read_view> read_at(commit_id bound) const {
    AERO_TRY_ASSIGN(commit_id registered, views_.open_at(store_, bound));
    return read_view(store_, views_, metrics_, registered);
  }

  std::vector<std::string> collection_names() const {
    auto lock = store_.lock_shared();
    const commit_id published = store_.published();
    std::vector<std::string> out;
    for (const auto& [name, c] : store_.catalog().collections())
      if (c->created_at <= published) out.push_back(name);
    return out;
  }

  // The id of the schema collection `name` is bound to, if the collection exists.
  std::optional<std::string> collection_schema_id(std::string_view name) const {
    auto lock = store_.lock_shared();
    const auto* c = store_.catalog().find_collection(name);
    if (!c || c->created_at > store_.published()) return std::nullopt;
    return c->schema_id;
  }

  // The schema registered as (id, version), if any.
  std::optional<schema> find_schema(std::string_view id, std::uint32_t version) const {
    const auto reader = store_.read();
    const schema* s = reader.schema_at(id, version, store_.published());
    return s ? std::optional<schema>(*s) : std::nullopt;
  }

  // ---- state --------------------------------------------------------------------------

  commit_id last_commit_id() const noexcept { return store_.published(); }
  commit_id oldest_readable() const noexcept { return store_.history_floor(); }
  // True for an instance opened by open_snapshot: it refuses every write.
  bool is_snapshot() const noexcept { return is_snapshot_; }
  // Whether writes are accepted: false for a snapshot, a replica or a deposed primary, and
  // after a failed log write.
  bool accepts_writes() const {
    return !is_snapshot_ && role() == format::node_role::primary && pipeline_.accepts_writes();
  }
  // The replication role and epoch this directory holds (format/authority.hpp).
  format::node_role role() const noexcept { return static_cast<format::node_role>(role_.load()); }
  std::uint64_t epoch() const noexcept { return epoch_.load(); }

  // Records, durably, that a primary of a newer epoch exists: from now on this instance
  // (and the directory, at every later open) refuses writes with
  // AERO_REPLICATION_STALE_EPOCH; it can only be re-bootstrapped as a replica. A no-op
  // unless `newer_epoch` is above this store's epoch. docs/replication.md §6.
  result<void> fence(std::uint64_t newer_epoch) {
    std::lock_guard lock(authority_mu_);
    if (newer_epoch <= epoch_.load() || role() != format::node_role::primary) return ok();
    AERO_TRY(write_authority({format::node_role::deposed, newer_epoch}));
    return ok();
  }
  // Versions held in memory, the bytes of their documents, and the memory layout's arena.
  memory_stats memory() const noexcept { return store_.memory(); }
  const recovery_report& recovery() const noexcept { return report_; }
  const std::string& directory() const noexcept { return dir_; }
  const open_options& options() const noexcept { return options_; }
  wal::writer_stats wal_stats() const { return pipeline_.stats(); }
  // Counters of the work done so far (passive: the engine never reads them itself).
  metrics_snapshot metrics() const noexcept { return metrics_.snapshot(); }

 private:
  template <class, class>
  friend class replication::basic_replica;
  template <class>
  friend class replication::primary_feed;

  basic_database(std::string dir, open_options options)
      : dir_(std::move(dir)),
        options_(std::move(options)),
        fs_(options_.fs ? options_.fs : posix_for(options_)),
        pipeline_(*fs_, dir_, options_.wal_segment_bytes, options_.wal_preallocate_bytes, store_, metrics_) {}

  // The opt-in bounded log and history, after an acknowledged write. One thread at a time
  // checks the thresholds and runs what is due; a thread that finds another at it goes on
  // (the next write past the threshold checks again). The counters it alone touches are
  // handed from one such thread to the next through maintaining_ (acquire/release).
  void maintain(const write_batch& batch, const batch_outcome& out) {
    std::uint64_t superseded = 0;
    for (std::size_t i = 0; i < out.applied.size(); ++i)
      if (out.applied[i] && batch.ops()[i].kind != format::write_kind::insert) ++superseded;
    const std::uint64_t since_gc = superseded_since_gc_.fetch_add(superseded, std::memory_order_relaxed) + superseded;
    bool idle = false;
    if (!maintaining_.compare_exchange_strong(idle, true, std::memory_order_acq_rel)) return;
    const std::uint64_t gc_every = options_.gc_after_superseded_versions;
    if (gc_every && since_gc >= gc_every) {
      superseded_since_gc_.fetch_sub(since_gc, std::memory_order_relaxed);
      if (auto r = gc(); !r) note_maintenance_failure(r.error_value());
    }
    if (const std::uint64_t every = options_.checkpoint_after_log_bytes) {
      const std::uint64_t appended = pipeline_.stats().bytes_appended;
      if (log_since_checkpoint_at_open_ + (appended - appended_at_checkpoint_) >= every) {
        if (auto r = checkpoint(); r) {
          appended_at_checkpoint_ = appended;
          log_since_checkpoint_at_open_ = 0;
        } else {
          note_maintenance_failure(r.error_value());
        }
      }
    }
    maintaining_.store(false, std::memory_order_release);
  }
  void note_maintenance_failure(const error& e) {
    std::lock_guard lock(maintenance_error_mu_);
    maintenance_error_ = e;
  }

  // The POSIX file system with the options' modes (the shared instance for the defaults).
  static std::shared_ptr<io::file_system> posix_for(const open_options& o) {
    if (o.file_mode == io::posix_file_system::default_file_mode && o.dir_mode == io::posix_file_system::default_dir_mode)
      return io::posix_file_system_instance();
    return std::make_shared<io::posix_file_system>(o.file_mode, o.dir_mode);
  }

  result<commit_id> submit(engine::commit_request& req) {
    if (is_snapshot_) return engine::snapshot_read_only_error();
    AERO_TRY(check_primary());
    return pipeline_.submit(req);
  }

  result<void> check_primary() const {
    switch (role()) {
      case format::node_role::primary:
        return ok();
      case format::node_role::replica:
        return error(errc::replication_not_primary,
                     "this store is a replica: it takes only what its primary ships; write to the primary, or "
                     "promote this replica",
                     {{"directory", dir_}, {"epoch", std::to_string(epoch())}});
      case format::node_role::deposed:
        return error(errc::replication_stale_epoch,
                     "this store was a primary, and a primary of a newer epoch exists: it refuses writes for good; "
                     "re-bootstrap it as a replica of the current primary",
                     {{"directory", dir_}, {"newer_epoch", std::to_string(epoch())}});
    }
    return ok();
  }

  // Replaces AUTHORITY durably, then takes its values. REQUIRES: authority_mu_ held, or
  // the instance not shared yet.
  result<void> write_authority(const format::authority& a) {
    const auto bytes = format::encode_authority(a);
    AERO_TRY(io::write_file_durably(*fs_, dir_, std::string(format::authority_file_name), bytes));
    AERO_TRY(fs_->sync_dir(dir_));
    epoch_.store(a.epoch);
    role_.store(static_cast<std::uint32_t>(a.role));
    return ok();
  }

  // Reads AUTHORITY (none: a primary of epoch 0) and reconciles it with the role asked
  // for. REQUIRES: the directory's lock held; the instance not shared.
  result<void> load_authority() {
    const std::string path = io::join(dir_, std::string(format::authority_file_name));
    AERO_TRY_ASSIGN(const bool there, fs_->exists(path));
    format::authority a;
    if (there) {
      AERO_TRY_ASSIGN(auto f, fs_->open(path, io::open_mode::read));
      AERO_TRY_ASSIGN(auto bytes, io::read_all(*f));
      AERO_TRY_ASSIGN(a, format::decode_authority(bytes));
    }
    epoch_.store(a.epoch);
    role_.store(static_cast<std::uint32_t>(a.role));
    if (options_.role == open_role::replica) {
      if (a.role != format::node_role::replica) AERO_TRY(write_authority({format::node_role::replica, a.epoch}));
      return ok();
    }
    if (a.role == format::node_role::replica)
      return error(errc::replication_not_primary,
                   "this directory holds a replica; open it as a replica (replication::basic_replica), or "
                   "promote it to make it a primary",
                   {{"directory", dir_}, {"epoch", std::to_string(a.epoch)}});
    return ok();
  }

  // R1 (engine/recovery.hpp): the directory and its lock; then R2-R6.
  result<void> recover() {
    const auto started = std::chrono::steady_clock::now();
    // Every directory this open creates is an entry of its parent, durable only once the
    // parent is synced: without that a power loss can take the data directory, with the
    // commits acknowledged in it, away. The data directory's parent is synced even when
    // the directory was there, since whoever made it may never have synced it.
    std::vector<std::string> missing;
    for (std::string d = dir_; !io::is_root_dir(d); d = io::parent_dir(d)) {
      AERO_TRY_ASSIGN(const bool there, fs_->exists(d));
      if (there) break;
      missing.push_back(d);
    }
    AERO_TRY(fs_->create_dir(dir_));
    for (auto it = missing.rbegin(); it != missing.rend(); ++it)
      if (*it != dir_) AERO_TRY(fs_->sync_dir(io::parent_dir(*it)));
    AERO_TRY(fs_->sync_dir(io::parent_dir(dir_)));
    auto lock = fs_->lock(io::join(dir_, "LOCK"));
    if (!lock) {
      auto e = std::move(lock).error_value();
      if (e.code() == errc::storage_locked)
        return error(errc::storage_locked, "the data directory is already open in this or another process",
                     {{"directory", dir_}});
      return e;
    }
    lock_ = std::move(*lock);
    AERO_TRY(load_authority());
    return cancellable([&] {
      return recovery_type::run(*fs_, dir_, options_, store_, pipeline_, metrics_, report_,
                                                started);
    });
  }

  // Runs a recovery step; a progress callback that threw stops it, as AERO_OPEN_CANCELLED
  // (open_options::on_recovery_progress). The caller then drops the half-built instance.
  template <class Step>
  static result<void> cancellable(Step&& step) {
    try {
      return step();
    } catch (const engine::progress_callback_threw& e) {
      return error(errc::open_cancelled, "the recovery progress callback threw; the open was abandoned",
                   {{"phase", to_string(e.phase)}, {"what", e.what}});
    }
  }

  const std::string dir_;
  const open_options options_;
  const std::shared_ptr<io::file_system> fs_;
  std::unique_ptr<io::file_lock> lock_;
  store_type store_;
  mutable engine::view_registry views_;
  collector_type collector_;
  checkpointer_type checkpointer_;
  recovery_report report_;
  mutable metrics_registry metrics_;
  bool is_snapshot_ = false;  // an instance opened by open_snapshot
  // The authority marker's values (format/authority.hpp); changed by fence() and a
  // replica's promotion, under authority_mu_, after the marker is durable.
  std::atomic<std::uint32_t> role_{static_cast<std::uint32_t>(format::node_role::primary)};
  std::atomic<std::uint64_t> epoch_{0};
  std::mutex authority_mu_;
  pipeline_type pipeline_;  // after store_ and metrics_, which it is given
  // The automatic checkpoint and GC (maintain()).
  std::atomic<bool> maintaining_{false};
  std::atomic<std::uint64_t> superseded_since_gc_{0};
  std::uint64_t log_since_checkpoint_at_open_ = 0;  // the log replayed at open; held by maintaining_
  std::uint64_t appended_at_checkpoint_ = 0;        // pipeline bytes appended then; held by maintaining_
  mutable std::mutex maintenance_error_mu_;
  std::optional<error> maintenance_error_;
};

// The baseline engine: one fsync per commit, full version-chain traversal, an ordered
// primary-key index.
using database =
    basic_database<policies::fsync_per_commit, policies::full_traversal, policies::ordered_index>;

}  // namespace aerodb

#include <aerodb/read_view.hpp>
