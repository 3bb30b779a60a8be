// basic_database<FsyncPolicy, VisibilityCachePolicy, IndexPolicy>: the engine.
//
// Life of a write (SPEC_DIGEST §3), and where each step happens:
//   caller thread, no engine lock held:
//     1. parse the JSON and enforce the document limits
//     2. find the collection and schema version; validate strictly
//     3. encode the document and serialize the record payload, with its CRC32C
//   commit pipeline (FsyncPolicy decides grouping; commit_group never runs twice at once):
//     4. check the write against the newest versions (insert of an existing _id, update
//        of a missing one, delete of a missing one = no-op)
//     5. assign the CommitId and link the new, still invisible, versions into their chains
//     6. frame and write the record(s), then fsync: the durability boundary
//     7. publish the CommitId: read views opened from now on see the write
//   caller thread: the call returns (the acknowledgment), after step 7.
//
// A failed append or fsync is FATAL: nothing of that group is acknowledged or published,
// and the instance refuses every later write with AERO_STORAGE_READ_ONLY. Reopening the
// directory decides from the log what survived.
//
// Thread safety: every public member may be called from any number of threads at once.
// A read_view may be used by one thread at a time; open one per thread. Read views must
// not outlive the database that made them.
#pragma once

#include <aerodb/document/document.hpp>
#include <aerodb/options.hpp>
#include <aerodb/outcomes.hpp>
#include <aerodb/write_batch.hpp>
#include <aerodb/error.hpp>
#include <aerodb/format/snapshot_format.hpp>
#include <aerodb/format/wal_format.hpp>
#include <aerodb/io/file_system.hpp>
#include <aerodb/index/field_index.hpp>
#include <aerodb/index/scalar.hpp>
#include <aerodb/io/posix_fs.hpp>
#include <aerodb/metrics.hpp>
#include <aerodb/mvcc/version.hpp>
#include <aerodb/policies/baseline.hpp>
#include <aerodb/policies/concepts.hpp>
#include <aerodb/query/match.hpp>
#include <aerodb/query/parse.hpp>
#include <aerodb/query/plan.hpp>
#include <aerodb/query/query.hpp>
#include <aerodb/schema/schema.hpp>
#include <aerodb/wal/wal_reader.hpp>
#include <aerodb/wal/wal_writer.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <shared_mutex>
#include <string>
#include <vector>

namespace aerodb {

using format::commit_id;

template <class Database>
class basic_read_view;

template <class FsyncPolicy, class VisibilityCachePolicy, class IndexPolicy>
class basic_database {
  static_assert(policies::check_fsync_policy<FsyncPolicy>());
  static_assert(policies::check_visibility_cache_policy<VisibilityCachePolicy>());
  static_assert(policies::check_index_policy<IndexPolicy>());

 public:
  using fsync_policy = FsyncPolicy;
  using visibility_cache_policy = VisibilityCachePolicy;
  using index_policy = IndexPolicy;
  using read_view = basic_read_view<basic_database>;
  friend read_view;

  basic_database(const basic_database&) = delete;
  basic_database& operator=(const basic_database&) = delete;

  // Opens (creating if needed) the data directory, takes its lock and recovers.
  static result<std::unique_ptr<basic_database>> open(std::string dir, open_options options = {}) {
    AERO_TRY(validate(options));
    std::unique_ptr<basic_database> db(new basic_database(std::move(dir), std::move(options)));
    AERO_TRY(db->recover());
    return db;
  }

  ~basic_database() = default;

  // ---- catalog ------------------------------------------------------------------------

  // Registers a schema version (see docs/schemas.md for the definition format).
  result<commit_id> register_schema(std::string_view definition_json) {
    if (definition_json.size() > max_schema_definition_bytes)
      return error(errc::schema_invalid, "the schema definition is larger than allowed",
                   {{"bytes", std::to_string(definition_json.size())},
                    {"limit", std::to_string(max_schema_definition_bytes)}});
    AERO_TRY_ASSIGN(schema s, schema::from_json(definition_json));
    commit_request req;
    req.type = format::record_type::schema_register;
    const std::string text = s.to_canonical_json();
    format::put_bytes(req.payload, text);
    req.new_schema = std::make_unique<schema>(std::move(s));
    return submit(req);
  }

  // Creates a collection whose documents follow versions of schema `schema_id`.
  result<commit_id> create_collection(std::string_view name, std::string_view schema_id) {
    if (!valid_collection_name(name))
      return error(errc::collection_invalid_name,
                   "a collection name is 1 to 64 characters of A-Z, a-z, 0-9, '_' and '-'",
                   {{"collection", std::string(name)}});
    {
      std::shared_lock lock(state_mu_);
      if (!schema_known(schema_id))
        return error(errc::unknown_schema, "no version of this schema is registered",
                     {{"schema_id", std::string(schema_id)}});
    }
    commit_request req;
    req.type = format::record_type::collection_create;
    req.new_collection = format::collection_create_record{std::string(name), std::string(schema_id)};
    req.payload = format::encode_collection_create(*req.new_collection);
    return submit(req);
  }

  // Indexes `field_path` (dotted, through objects) in a collection. Every live version is
  // indexed, so read views of any retained boundary can use it; documents whose field is
  // missing or not a scalar simply have no entry.
  result<commit_id> create_index(std::string_view collection, std::string_view field_path) {
    if (!valid_field_path(field_path))
      return error(errc::index_invalid_field,
                   "an index field is a dotted path of valid field names",
                   {{"field", std::string(field_path)}});
    {
      std::shared_lock lock(state_mu_);
      if (!collections_.count(collection))
        return error(errc::collection_unknown, "no such collection",
                     {{"collection", std::string(collection)}});
    }
    commit_request req;
    req.type = format::record_type::index_create;
    req.new_index = format::index_create_record{std::string(collection), std::string(field_path)};
    req.payload = format::encode_index_create(*req.new_index);
    return submit(req);
  }

  // Logs a GC record and frees the versions no open read view can see. Runs only when
  // called: never on a timer, never by itself.
  result<gc_outcome> gc() {
    if (read_only_) return snapshot_read_only_error();
    // Refused before anything else, as every write is: otherwise a GC with nothing to
    // collect would answer success, and one with something would reserve its floor.
    if (!writable()) return read_only_error();
    std::lock_guard serial(gc_mu_);
    commit_id floor = 0;
    {
      // Lock order: views_mu_, then state_mu_ (inside anything_to_collect). Nothing takes
      // views_mu_ while holding state_mu_.
      std::lock_guard lock(views_mu_);
      floor = visible_.load(std::memory_order_acquire);
      if (!active_views_.empty()) floor = std::min(floor, *active_views_.begin());
      if (floor <= history_floor_.load(std::memory_order_acquire) || !anything_to_collect(floor))
        return gc_outcome{0, floor, 0, 0};
      // From here on no view below the floor can be opened, even before the GC record
      // is durable (if it never is, those boundaries stay refused: the safe side).
      gc_reserved_floor_ = std::max(gc_reserved_floor_, floor);
    }
    commit_request req;
    req.type = format::record_type::gc;
    req.gc_floor = floor;
    req.payload = format::encode_gc(floor);
    AERO_TRY_ASSIGN(commit_id id, submit(req));
    req.gc_result.record = id;
    return req.gc_result;
  }

  // Writes a persistent snapshot of the newest commit, makes it the checkpoint, and
  // removes the WAL segments it covers. Readers and writers go on meanwhile (writers wait
  // only while the image is copied in memory). Crash-safe at every step: until the
  // CHECKPOINT record is durable the previous checkpoint and the full log stand.
  result<checkpoint_outcome> checkpoint() {
    if (read_only_) return snapshot_read_only_error();
    std::lock_guard serial(checkpoint_mu_);
    if (!writable()) return read_only_error();
    const auto started = std::chrono::steady_clock::now();
    const read_view pin = read();  // holds GC back from the versions being written
    const commit_id c = pin.bound();
    checkpoint_outcome out;
    out.id = c;

    format::snapshot_encoder enc(c);
    AERO_TRY(encode_image(enc, c, out.documents));
    AERO_TRY(enc.finish());
    const format::byte_buffer data = enc.take_pending();
    out.snapshot_bytes = data.size();

    const std::string data_name = format::snapshot_data_file_name(c);
    const std::string manifest_name = format::snapshot_manifest_file_name(c);
    AERO_TRY(write_file_durably(data_name, data));
    format::manifest m{c, {format::describe_file(data_name, data)}};
    AERO_TRY_ASSIGN(auto manifest_bytes, format::encode_manifest(m));
    AERO_TRY(write_file_durably(manifest_name, manifest_bytes));
    AERO_TRY(fs_->sync_dir(dir_));

    // The durable switch: from here on, recovery starts from this snapshot.
    AERO_TRY_ASSIGN(auto record, format::encode_checkpoint({c, manifest_name}));
    AERO_TRY(write_file_durably(std::string(format::checkpoint_file_name), record));
    AERO_TRY(fs_->sync_dir(dir_));

    AERO_TRY_ASSIGN(out.segments_removed, remove_covered_segments(c));
    AERO_TRY(remove_stale_snapshot_files(c));
    out.duration = std::chrono::steady_clock::now() - started;
    metrics_.checkpoints.add();
    metrics_.checkpoint_duration_ns.add(static_cast<std::uint64_t>(out.duration.count()));
    return out;
  }

  // Opens the persistent snapshot at boundary `c` in `dir` read-only: queries and reads
  // answer as the live database did at `c`; every write is refused. Takes no lock (the
  // files are immutable), so the live database must not remove the snapshot meanwhile.
  static result<std::unique_ptr<basic_database>> open_snapshot(std::string dir, commit_id c,
                                                               open_options options = {}) {
    AERO_TRY(validate(options));
    std::unique_ptr<basic_database> db(new basic_database(std::move(dir), std::move(options)));
    db->read_only_ = true;
    std::unique_lock state_lock(db->state_mu_);
    auto loaded = db->load_snapshot(format::snapshot_manifest_file_name(c), c);
    if (!loaded) {
      if (loaded.code() == errc::checkpoint_snapshot_missing)
        return error(errc::snapshot_not_found, "no complete snapshot at this CommitId",
                     {{"directory", db->dir_}, {"commit_id", std::to_string(c)}});
      return std::move(loaded).error_value();
    }
    db->rebuild_all_indexes();
    db->visible_.store(c, std::memory_order_release);
    db->history_floor_.store(c, std::memory_order_release);
    db->report_.checkpoint = c;
    db->report_.last_commit_id = c;
    return db;
  }

  bool read_only() const noexcept { return read_only_; }

  // Versions held in memory and the bytes of their documents.
  memory_stats memory() const noexcept {
    return {versions_.load(std::memory_order_relaxed), payload_bytes_.load(std::memory_order_relaxed)};
  }

  commit_id oldest_readable() const noexcept { return history_floor_.load(std::memory_order_acquire); }

  // ---- writes -------------------------------------------------------------------------

  result<commit_id> insert(std::string_view collection, std::uint32_t schema_version,
                           std::string_view json) {
    write_batch b;
    b.insert(std::string(collection), schema_version, std::string(json));
    AERO_TRY_ASSIGN(batch_outcome out, commit(b));
    return out.id;
  }

  // Replaces the whole document `id`; the new JSON must carry the same `_id`.
  result<commit_id> update(std::string_view collection, std::string_view id,
                           std::uint32_t schema_version, std::string_view json) {
    write_batch b;
    b.update(std::string(collection), std::string(id), schema_version, std::string(json));
    AERO_TRY_ASSIGN(batch_outcome out, commit(b));
    return out.id;
  }

  // Deleting a missing document is a no-op that writes nothing.
  result<delete_outcome> remove(std::string_view collection, std::string_view id) {
    write_batch b;
    b.remove(std::string(collection), std::string(id));
    AERO_TRY_ASSIGN(batch_outcome out, commit(b));
    return delete_outcome{out.applied.at(0), out.id};
  }

  // Commits every operation of `batch` as one CommitId, or none of them.
  result<batch_outcome> commit(const write_batch& batch) {
    AERO_TRY_ASSIGN(commit_request req, prepare_batch(batch));
    AERO_TRY_ASSIGN(commit_id id, submit(req));
    return batch_outcome{id, std::move(req.applied)};
  }

  // ---- reads --------------------------------------------------------------------------

  // A read view of every commit acknowledged before this call.
  read_view read() const {
    // The bound is read and the view registered under views_mu_, the lock gc() takes to
    // compute its floor: a view is either seen by that GC or bounded above its floor.
    std::lock_guard lock(views_mu_);
    return read_view(*this, visible_.load(std::memory_order_acquire));
  }

  // A read view at an older boundary; AERO_CONFIG_INVALID beyond the newest commit.
  result<read_view> read_at(commit_id bound) const {
    std::lock_guard lock(views_mu_);
    const commit_id newest = visible_.load(std::memory_order_acquire);
    if (bound > newest)
      return error(errc::config_invalid, "a read view cannot be bounded beyond the newest commit",
                   {{"bound", std::to_string(bound)}, {"newest", std::to_string(newest)}});
    const commit_id floor = history_floor_.load(std::memory_order_acquire);
    if (bound < std::max(floor, gc_reserved_floor_))
      return error(errc::read_view_too_old,
                   "versions below this boundary have been garbage collected",
                   {{"bound", std::to_string(bound)}, {"oldest", std::to_string(floor)}});
    return read_view(*this, bound);
  }

  commit_id last_commit_id() const noexcept { return visible_.load(std::memory_order_acquire); }
  const recovery_report& recovery() const noexcept { return report_; }
  bool writable() const {
    std::lock_guard lock(writer_mu_);
    return !writer_.failed();
  }
  const std::string& directory() const noexcept { return dir_; }
  const open_options& options() const noexcept { return options_; }

  std::vector<std::string> collection_names() const {
    std::shared_lock lock(state_mu_);
    const commit_id published = visible_.load(std::memory_order_acquire);
    std::vector<std::string> out;
    for (const auto& [name, c] : collections_)
      if (c->created_at <= published) out.push_back(name);
    return out;
  }

  // The schema registered as (id, version), if any.
  std::optional<schema> find_schema(std::string_view id, std::uint32_t version) const {
    std::shared_lock lock(state_mu_);
    auto it = schemas_.find(std::pair<std::string_view, std::uint32_t>(id, version));
    if (it == schemas_.end() || it->second.registered_at > visible_.load(std::memory_order_acquire))
      return std::nullopt;
    return *it->second.def;
  }

  wal::writer_stats wal_stats() const {
    std::lock_guard lock(writer_mu_);
    return writer_.stats();
  }

  // ---- the commit pipeline's side of the engine ---------------------------------------

  struct prepared_op {
    format::write_kind kind;
    std::string collection;
    std::string id;
    std::uint32_t schema_version = 0;
    std::shared_ptr<const mvcc::payload::buffer> doc;
  };

  struct commit_request {
    format::record_type type = format::record_type::write_batch;
    std::vector<prepared_op> ops;
    std::unique_ptr<schema> new_schema;
    std::optional<format::collection_create_record> new_collection;
    std::optional<format::index_create_record> new_index;
    commit_id gc_floor = 0;
    gc_outcome gc_result;
    format::byte_buffer payload;
    std::uint32_t payload_crc = 0;  // CRC32C of payload, computed on the caller's thread
    // Outcome, filled in by commit_group.
    bool acknowledged = false;
    std::optional<error> failure;
    commit_id id = 0;
    std::vector<bool> applied;
  };

  // Handles a group of requests in order. The FsyncPolicy guarantees that no two calls
  // overlap. Requests that fail their checks get their error and take no CommitId; the
  // others are written, synced once, then published together.
  //
  // Never throws. If memory runs out part-way (a CommitId may be taken, versions linked,
  // a record written), the instance stops accepting writes exactly as after a failed
  // fsync: nothing of the group is acknowledged, and reopening decides from the log.
  void commit_group(std::span<commit_request* const> group) noexcept {
    std::lock_guard wlock(writer_mu_);
    try {
      commit_group_locked(group);
    } catch (const std::bad_alloc&) {
      writer_.refuse_further_writes();
      for (commit_request* req : group) {
        if (req->failure || (req->id != 0 && req->acknowledged)) continue;
        req->id = 0;
        req->failure = error(errc::storage_read_only,
                             "out of memory while committing; this commit is not acknowledged and "
                             "this instance accepts no more writes (reopen to recover)");
      }
    }
  }

  // Counters of the work done so far (passive: the engine never reads them itself).
  metrics_snapshot metrics() const noexcept { return metrics_.snapshot(); }

 private:
  // REQUIRES: writer_mu_ held.
  void commit_group_locked(std::span<commit_request* const> group) {
    format::byte_buffer framed;
    std::vector<wal::framed_record> layout;
    std::vector<commit_request*> accepted;
    for (commit_request* req : group) {
      if (writer_.failed()) {
        req->failure = read_only_error();
        continue;
      }
      if (auto e = check(*req)) {
        req->failure = std::move(*e);
        continue;
      }
      if (req->type == format::record_type::write_batch &&
          std::none_of(req->applied.begin(), req->applied.end(), [](bool b) { return b; })) {
        req->id = 0;  // only deletes of missing documents: nothing to write
        continue;
      }
      req->id = next_id_++;
      link(*req);
      const std::size_t offset = framed.size();
      format::append_record(framed, req->type, req->id, req->payload, req->payload_crc);
      layout.push_back({offset, framed.size() - offset, req->id});
      accepted.push_back(req);
    }
    if (accepted.empty()) return;

    const auto before = writer_.stats();
    auto written = writer_.append_group(framed, layout);
    if (written) written = writer_.sync();
    const auto after = writer_.stats();
    metrics_.wal_bytes.add(after.bytes_appended - before.bytes_appended);
    metrics_.wal_records.add(after.records_appended - before.records_appended);
    metrics_.wal_write_calls.add(after.write_calls - before.write_calls);
    if (!written) {
      // Nothing of the group is acknowledged: its versions stay linked but are never
      // published, and the writer refuses everything from now on.
      for (commit_request* req : accepted) {
        req->failure = written.error_value();
        req->id = 0;
      }
      return;
    }
    metrics_.group_commit_fsync_count.add(after.syncs - before.syncs);
    metrics_.group_commit_groups.add();
    metrics_.group_commit_size_sum.add(accepted.size());
    metrics_.group_commit_size_max.raise_to(accepted.size());
    metrics_.group_commit_waiters.add(accepted.size() - 1);
    {
      // Step 8: derived state follows the durable record, before anyone can see it.
      std::unique_lock lock(state_mu_);
      for (commit_request* req : accepted) after_durable(*req);
    }
    for (commit_request* req : accepted) req->acknowledged = true;
    visible_.store(accepted.back()->id, std::memory_order_release);
  }

  // (schema id, version), ordered by id then version, searchable without copying the id.
  struct schema_key_less {
    using is_transparent = void;
    template <class A, class B>
    bool operator()(const A& a, const B& b) const {
      const std::string_view ai(a.first), bi(b.first);
      return ai < bi || (ai == bi && a.second < b.second);
    }
  };

  using collection_keys = typename IndexPolicy::template primary_map<std::unique_ptr<mvcc::key_entry>>;

  struct index_state {
    commit_id created_at = 0;
    typename IndexPolicy::field_index entries;
  };

  struct collection_state {
    std::string name;
    std::string schema_id;
    commit_id created_at = 0;
    collection_keys keys;
    // Field path -> index. "_id" is always there, created with the collection.
    std::map<std::string, std::unique_ptr<index_state>, std::less<>> indexes;

    void add_index(const std::string& path, commit_id at) {
      auto ix = std::make_unique<index_state>();
      ix->created_at = at;
      indexes.emplace(path, std::move(ix));
    }
  };

  basic_database(std::string dir, open_options options)
      : dir_(std::move(dir)),
        options_(std::move(options)),
        fs_(options_.fs ? options_.fs : io::posix_file_system_instance()),
        writer_(*fs_, dir_, options_.wal_segment_bytes),
        pipeline_(*this) {}

  static result<void> validate(const open_options& o) {
    auto out_of_range = [](const char* what, std::size_t value, std::size_t lo, std::size_t hi) {
      return error(errc::config_invalid, std::string("open option out of range: ") + what,
                   {{"option", what}, {"value", std::to_string(value)},
                    {"min", std::to_string(lo)}, {"max", std::to_string(hi)}});
    };
    struct range { const char* name; std::size_t value, lo, hi; };
    const range checks[] = {
        {"wal_segment_bytes", static_cast<std::size_t>(o.wal_segment_bytes), 512, std::size_t{1} << 32},
        {"max_batch_ops", o.max_batch_ops, 1, 10'000'000},
        {"limits.max_document_bytes", o.limits.max_document_bytes, 64, hard_max_document_bytes},
        {"limits.max_depth", o.limits.max_depth, 1, hard_max_depth},
        {"limits.max_field_name_bytes", o.limits.max_field_name_bytes, 1, hard_max_field_name_bytes},
        {"limits.max_id_bytes", o.limits.max_id_bytes, 1, hard_max_id_bytes},
    };
    for (const auto& c : checks)
      if (c.value < c.lo || c.value > c.hi) return out_of_range(c.name, c.value, c.lo, c.hi);
    return ok();
  }

  static bool valid_collection_name(std::string_view name) {
    if (name.empty() || name.size() > 64) return false;
    return std::all_of(name.begin(), name.end(), [](char c) {
      return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
             c == '_' || c == '-';
    });
  }

  // REQUIRES: state_mu_ held (shared or exclusive), or the pipeline / recovery thread.
  bool schema_known(std::string_view id) const {
    auto it = schemas_.lower_bound(std::pair<std::string_view, std::uint32_t>(id, 0));
    return it != schemas_.end() && it->first.first == id;
  }

  static error read_only_error() {
    return error(errc::storage_read_only,
                 "this instance refuses writes after a failed write-ahead log append or fsync; "
                 "reopen the directory to recover");
  }

  static error snapshot_read_only_error() {
    return error(errc::storage_read_only, "a snapshot opened read-only accepts no writes");
  }

  static error invalid_id(std::string_view id, std::string reason) {
    return error(errc::document_invalid_id, "invalid document _id: " + reason,
                 {{"_id", std::string(id.substr(0, 200))}, {"reason", reason}});
  }

  result<void> check_id_argument(std::string_view id) const {
    if (id.empty()) return invalid_id(id, "empty");
    if (id.size() > options_.limits.max_id_bytes)
      return invalid_id(id, "too long").with("limit", std::to_string(options_.limits.max_id_bytes));
    for (const char c : id)
      if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F) return invalid_id(id, "control character");
    return ok();
  }

  // Steps 1-3 of a write, outside every engine lock but the catalog's shared one.
  result<commit_request> prepare_batch(const write_batch& batch) const {
    if (batch.empty()) return error(errc::batch_empty, "a write batch needs at least one operation");
    if (batch.size() > options_.max_batch_ops)
      return error(errc::batch_too_large, "the write batch holds too many operations",
                   {{"ops", std::to_string(batch.size())},
                    {"limit", std::to_string(options_.max_batch_ops)}});
    commit_request req;
    req.type = format::record_type::write_batch;
    std::set<std::pair<std::string_view, std::string_view>> seen;
    std::vector<std::string> ids(batch.size());
    req.ops.reserve(batch.size());
    std::size_t index = 0;
    for (const auto& op : batch.ops()) {
      auto at = [&](error e) -> error {
        if (batch.size() > 1) return std::move(e).with("batch_op", std::to_string(index));
        return e;
      };
      prepared_op p{op.kind, op.collection, op.id, op.schema_version, nullptr};
      const schema* s = nullptr;
      {
        std::shared_lock lock(state_mu_);
        auto c = collections_.find(op.collection);
        if (c == collections_.end())
          return at(error(errc::collection_unknown, "no such collection",
                          {{"collection", op.collection}}));
        if (op.kind != format::write_kind::remove) {
          if (op.schema_version == 0)
            return at(error(errc::schema_version_required,
                            "a write must name the schema version its document follows",
                            {{"collection", op.collection}}));
          auto it = schemas_.find(std::pair<std::string_view, std::uint32_t>(
              c->second->schema_id, op.schema_version));
          if (it == schemas_.end())
            return at(error(errc::unknown_schema_version, "this schema version is not registered",
                            {{"schema_id", c->second->schema_id},
                             {"version", std::to_string(op.schema_version)}}));
          s = it->second.def.get();  // schemas are never removed: the pointer stays valid
        }
      }
      if (op.kind == format::write_kind::remove) {
        if (auto r = check_id_argument(op.id); !r) return at(std::move(r).error_value());
      } else {
        auto value = parse_json(op.json, options_.limits);
        if (!value) return at(std::move(value).error_value());
        if (auto r = check_document_shape(*value, options_.limits); !r)
          return at(std::move(r).error_value());
        if (auto r = s->validate(value->as_object()); !r) return at(std::move(r).error_value());
        auto doc = encode_document(*value, options_.limits);
        if (!doc) return at(std::move(doc).error_value());
        const std::string doc_id(doc->id());
        if (op.kind == format::write_kind::update) {
          if (auto r = check_id_argument(op.id); !r) return at(std::move(r).error_value());
          if (doc_id != op.id)
            return at(error(errc::document_id_immutable,
                            "an update cannot change a document's _id",
                            {{"_id", op.id}, {"new_id", doc_id}}));
        }
        p.id = doc_id;
        p.doc = doc->buffer();
      }
      req.ops.push_back(std::move(p));
      ++index;
    }
    for (std::size_t i = 0; i < req.ops.size(); ++i) {
      if (!seen.insert({req.ops[i].collection, req.ops[i].id}).second)
        return error(errc::batch_duplicate_key,
                     "a batch may touch each document once; merge the operations on this _id",
                     {{"collection", req.ops[i].collection}, {"_id", req.ops[i].id},
                      {"batch_op", std::to_string(i)}});
    }
    req.payload = encode_batch_payload(req.ops, nullptr);
    if (req.payload.size() > format::max_record_payload)
      return error(errc::wal_record_too_large, "the write batch is larger than one log record may be",
                   {{"bytes", std::to_string(req.payload.size())},
                    {"limit", std::to_string(format::max_record_payload)}});
    return req;
  }

  static format::byte_buffer encode_batch_payload(const std::vector<prepared_op>& ops,
                                                  const std::vector<bool>* applied) {
    std::uint32_t count = 0;
    for (std::size_t i = 0; i < ops.size(); ++i) count += (!applied || (*applied)[i]) ? 1 : 0;
    format::byte_buffer out;
    format::put_le<std::uint32_t>(out, count);
    for (std::size_t i = 0; i < ops.size(); ++i) {
      if (applied && !(*applied)[i]) continue;
      const auto& op = ops[i];
      format::write_op_record rec{op.kind, op.collection, op.id, op.schema_version,
                                  op.doc ? std::span<const std::byte>(*op.doc)
                                         : std::span<const std::byte>()};
      format::encode_write_op(out, rec);
    }
    return out;
  }

  result<commit_id> submit(commit_request& req) {
    if (read_only_) return snapshot_read_only_error();
    req.payload_crc = crc32c::value(req.payload);
    pipeline_.submit(req);
    if (req.failure) return std::move(*req.failure);
    return req.id;
  }

  const mvcc::key_entry* find_key(const collection_state& c, std::string_view id) const {
    auto it = c.keys.find(id);
    return it == c.keys.end() ? nullptr : it->second.get();
  }

  // Step 4, in the pipeline: checks against the newest (possibly unpublished) state.
  std::optional<error> check(commit_request& req) {
    switch (req.type) {
      case format::record_type::schema_register: {
        const auto key = std::pair<std::string_view, std::uint32_t>(req.new_schema->id(),
                                                                    req.new_schema->version());
        if (schemas_.count(key))
          return error(errc::schema_immutable,
                       "this schema version is already registered; register a new version",
                       {{"schema_id", req.new_schema->id()},
                        {"version", std::to_string(req.new_schema->version())}});
        return std::nullopt;
      }
      case format::record_type::collection_create:
        if (collections_.count(req.new_collection->name))
          return error(errc::collection_exists, "a collection with this name exists",
                       {{"collection", req.new_collection->name}});
        return std::nullopt;
      case format::record_type::index_create: {
        const auto& c = *collections_.find(req.new_index->collection)->second;
        if (c.indexes.count(req.new_index->path))
          return error(errc::index_exists, "this field is already indexed",
                       {{"collection", c.name}, {"field", req.new_index->path}});
        return std::nullopt;
      }
      case format::record_type::gc:
        return std::nullopt;
      case format::record_type::write_batch:
        break;
    }
    req.applied.assign(req.ops.size(), true);
    bool any_noop = false;
    for (std::size_t i = 0; i < req.ops.size(); ++i) {
      const auto& op = req.ops[i];
      const auto* key = find_key(*collections_.find(op.collection)->second, op.id);
      const mvcc::version* newest = key ? key->newest() : nullptr;
      const bool exists = newest && !newest->tombstone();
      auto located = [&](error e) -> error {
        if (req.ops.size() > 1) return std::move(e).with("batch_op", std::to_string(i));
        return e;
      };
      switch (op.kind) {
        case format::write_kind::insert:
          if (exists)
            return located(error(errc::document_exists, "a document with this _id exists",
                                 {{"collection", op.collection}, {"_id", op.id}}));
          break;
        case format::write_kind::update:
          if (!exists)
            return located(error(errc::document_not_found, "no document with this _id to update",
                                 {{"collection", op.collection}, {"_id", op.id}}));
          break;
        case format::write_kind::remove:
          if (!exists) {
            req.applied[i] = false;
            any_noop = true;
          }
          break;
      }
    }
    if (any_noop) {
      req.payload = encode_batch_payload(req.ops, &req.applied);
      req.payload_crc = crc32c::value(req.payload);
    }
    return std::nullopt;
  }

  // Step 5: the versions and catalog entries exist from now on, invisible until the
  // CommitId is published.
  void link(commit_request& req) {
    std::unique_lock lock(state_mu_);
    switch (req.type) {
      case format::record_type::schema_register: {
        auto key = std::pair<std::string, std::uint32_t>(req.new_schema->id(), req.new_schema->version());
        schemas_.emplace(std::move(key), schema_entry{std::move(req.new_schema), req.id});
        return;
      }
      case format::record_type::collection_create: {
        auto c = std::make_unique<collection_state>();
        c->name = req.new_collection->name;
        c->schema_id = req.new_collection->schema_id;
        c->created_at = req.id;
        c->add_index("_id", req.id);
        collections_.emplace(c->name, std::move(c));
        return;
      }
      case format::record_type::index_create:
        // Registered now so that a second request for it is refused; its entries are
        // built after the record is durable (step 8), before the CommitId is published.
        collections_.find(req.new_index->collection)->second->add_index(req.new_index->path, req.id);
        return;
      case format::record_type::gc:
        return;
      case format::record_type::write_batch:
        for (std::size_t i = 0; i < req.ops.size(); ++i) {
          if (!req.applied[i]) continue;
          auto& op = req.ops[i];
          link_version(*collections_.find(op.collection)->second, op.id, req.id, op.kind,
                       op.schema_version, op.doc);
        }
        return;
    }
  }

  void link_version(collection_state& c, const std::string& id, commit_id cid,
                    format::write_kind kind, std::uint32_t schema_version,
                    std::shared_ptr<const mvcc::payload::buffer> doc) {
    auto it = c.keys.find(std::string_view(id));
    if (it == c.keys.end()) it = c.keys.try_emplace(id, std::make_unique<mvcc::key_entry>(id)).first;
    if (kind == format::write_kind::remove) {
      it->second->push(std::make_unique<mvcc::version>(cid));
    } else {
      payload_bytes_.fetch_add(doc->size(), std::memory_order_relaxed);
      it->second->push(std::make_unique<mvcc::version>(cid, schema_version,
                                                       mvcc::payload(std::move(doc))));
    }
    versions_.fetch_add(1, std::memory_order_relaxed);
  }

  // ---- indexes and garbage collection (callers hold state_mu_ exclusively, or recover)

  static bool valid_field_path(std::string_view path) {
    if (path.empty() || path.size() > max_field_path_bytes) return false;
    std::size_t start = 0;
    while (true) {
      const auto dot = path.find('.', start);
      const auto part = path.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
      if (!valid_field_name(part, document_limits{}.max_field_name_bytes)) return false;
      if (dot == std::string_view::npos) return true;
      start = dot + 1;
    }
  }

  static std::optional<scalar> index_key(const mvcc::version& v, std::string_view path) {
    if (v.tombstone()) return std::nullopt;
    const document_view doc(v.data.bytes());
    auto value = path == "_id" ? doc.find("_id") : doc.find_path(path);
    if (!value) return std::nullopt;
    return scalar::from_value(*value);
  }

  static void index_version(index_state& ix, std::string_view path, const mvcc::key_entry& key,
                            const mvcc::version& v) {
    if (auto k = index_key(v, path)) ix.entries.insert(*k, key, v);
  }

  void build_index(collection_state& c, const std::string& path, index_state& ix) {
    const auto started = std::chrono::steady_clock::now();
    // Entries go in in index order (key, _id, CommitId): a sorted index then only ever
    // appends at its end, where inserting in the primary map's order (hash order for the
    // accelerated index) would land each entry at a random place and shift its block.
    // The order is only a hint: any order builds the same index.
    struct pending {
      scalar key;
      const mvcc::key_entry* doc;
      const mvcc::version* v;
    };
    std::vector<pending> all;
    all.reserve(c.keys.size());
    for (const auto& [id, key] : c.keys)
      for (const auto& v : key->chain)
        if (auto k = index_key(v, path)) all.push_back({std::move(*k), key.get(), &v});
    std::sort(all.begin(), all.end(), [](const pending& a, const pending& b) {
      if (const auto c = a.key <=> b.key; c != 0) return c < 0;
      if (const int c = a.doc->id.compare(b.doc->id); c != 0) return c < 0;
      return a.v->id < b.v->id;
    });
    for (const auto& p : all) ix.entries.insert(p.key, *p.doc, *p.v);
    metrics_.index_rebuild_count.add();
    metrics_.index_rebuild_duration_ns.add(static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - started).count()));
  }

  void rebuild_all_indexes() {
    for (auto& [name, c] : collections_)
      for (auto& [path, ix] : c->indexes) {
        ix->entries.clear();
        build_index(*c, path, *ix);
      }
  }

  void after_durable(commit_request& req) {
    switch (req.type) {
      case format::record_type::write_batch:
        for (std::size_t i = 0; i < req.ops.size(); ++i) {
          if (!req.applied[i] || req.ops[i].kind == format::write_kind::remove) continue;
          auto& c = *collections_.find(req.ops[i].collection)->second;
          const auto& key = *c.keys.find(std::string_view(req.ops[i].id))->second;
          // This request's version: with grouped commits a later one may already be linked.
          const mvcc::version* mine = nullptr;
          for (const auto& v : key.chain)
            if (v.id == req.id) { mine = &v; break; }
          for (auto& [path, ix] : c.indexes) index_version(*ix, path, key, *mine);
        }
        return;
      case format::record_type::index_create: {
        auto& c = *collections_.find(req.new_index->collection)->second;
        auto& ix = *c.indexes.find(req.new_index->path)->second;
        build_index(c, req.new_index->path, ix);
        return;
      }
      case format::record_type::gc:
        req.gc_result = collect_garbage(req.gc_floor);
        req.gc_result.floor = req.gc_floor;
        return;
      default:
        return;
    }
  }

  // True when some key holds a version older than the one a view at `floor` sees.
  bool anything_to_collect(commit_id floor) const {
    std::shared_lock lock(state_mu_);
    for (const auto& [name, c] : collections_)
      for (const auto& [id, key] : c->keys) {
        auto it = key->chain.begin();
        while (it != key->chain.end() && it->id > floor) ++it;
        if (it != key->chain.end() && std::next(it) != key->chain.end()) return true;
      }
    return false;
  }

  // Frees every version that no read view at or above `floor` can see: for each key, all
  // versions older than the newest one at or below the floor. The newest version of a key
  // always stays. Deterministic: replaying the GC record at the same point of the log
  // frees exactly the same versions.
  gc_outcome collect_garbage(commit_id floor) {
    gc_outcome out;
    for (auto& [name, c] : collections_) {
      for (auto& [id, key] : c->keys) {
        auto it = key->chain.begin();
        while (it != key->chain.end() && it->id > floor) ++it;
        if (it == key->chain.end()) continue;
        // `it` is what a view at the floor sees: keep it, free what follows.
        for (auto old = std::next(it); old != key->chain.end(); ++old) {
          for (auto& [path, ix] : c->indexes)
            if (auto k = index_key(*old, path)) ix->entries.erase(*k, *key, *old);
          ++out.versions_freed;
          out.bytes_freed += old->data.size();
        }
        const std::size_t freed_here = key->drop_older_than_position(
            static_cast<std::size_t>(std::distance(key->chain.begin(), it)) + 1);
        versions_.fetch_sub(freed_here, std::memory_order_relaxed);
      }
    }
    payload_bytes_.fetch_sub(out.bytes_freed, std::memory_order_relaxed);
    commit_id prev = history_floor_.load(std::memory_order_relaxed);
    while (prev < floor && !history_floor_.compare_exchange_weak(prev, floor)) {}
    return out;
  }

  // ---- recovery -----------------------------------------------------------------------

  result<void> recover() {
    const auto started = std::chrono::steady_clock::now();
    AERO_TRY(fs_->create_dir(dir_));
    auto lock = fs_->lock(io::join(dir_, "LOCK"));
    if (!lock) {
      auto e = std::move(lock).error_value();
      if (e.code() == errc::storage_locked)
        return error(errc::storage_locked,
                     "the data directory is already open in this or another process",
                     {{"directory", dir_}});
      return e;
    }
    lock_ = std::move(*lock);

    std::unique_lock state_lock(state_mu_);
    commit_id checkpoint_id = 0;
    {
      AERO_TRY_ASSIGN(bool has_checkpoint,
                      fs_->exists(io::join(dir_, std::string(format::checkpoint_file_name))));
      if (has_checkpoint) {
        AERO_TRY_ASSIGN(auto f, fs_->open(io::join(dir_, std::string(format::checkpoint_file_name)),
                                          io::open_mode::read));
        AERO_TRY_ASSIGN(auto bytes, io::read_all(*f));
        AERO_TRY_ASSIGN(auto record, format::decode_checkpoint(bytes));
        AERO_TRY(load_snapshot(record.manifest_name, record.commit));
        checkpoint_id = record.commit;
      }
    }
    history_floor_.store(checkpoint_id, std::memory_order_release);
    auto progress = [this](const wal::scan_progress& p) {
      if (options_.on_recovery_progress)
        options_.on_recovery_progress({p.bytes_done, p.bytes_total, p.records});
    };
    AERO_TRY_ASSIGN(wal::scan_result scan,
                    wal::read_wal(*fs_, dir_, checkpoint_id,
                                  [this](const wal::wal_record& r) { return replay(r); },
                                  progress));

    // Discard the torn tail for good before anything is appended after it: a valid record
    // behind it would otherwise turn it into corruption at the next recovery.
    std::optional<wal::segment_info> resume_at =
        scan.segments.empty() ? std::nullopt : std::optional(scan.segments.back());
    if (scan.torn) {
      const std::string path = io::join(dir_, scan.torn->segment);
      if (scan.torn->whole_segment) {
        AERO_TRY(fs_->remove(path));
        AERO_TRY(fs_->sync_dir(dir_));
      } else {
        AERO_TRY_ASSIGN(auto f, fs_->open(path, io::open_mode::append));
        AERO_TRY(f->truncate(scan.torn->offset));
        AERO_TRY(f->sync());
      }
    }
    if (resume_at) {
      AERO_TRY(writer_.resume(resume_at->seq, resume_at->name, resume_at->valid_end));
    } else if (scan.torn && scan.torn->whole_segment) {
      if (auto seq = format::parse_segment_file_name(scan.torn->segment))
        writer_.set_next_seq(*seq);
    }
    // Leftovers of an interrupted checkpoint are never read; tidy them away.
    AERO_TRY(remove_stale_snapshot_files(checkpoint_id));

    rebuild_all_indexes();
    next_id_ = scan.last_commit_id + 1;
    visible_.store(scan.last_commit_id, std::memory_order_release);
    report_.records_replayed = scan.records_replayed;
    report_.segments = scan.segments.size();
    report_.wal_bytes = scan.bytes_total;
    report_.last_commit_id = scan.last_commit_id;
    report_.torn_tail = scan.torn;
    report_.checkpoint = checkpoint_id;
    report_.duration = std::chrono::steady_clock::now() - started;
    metrics_.recovery_runs.add();
    metrics_.recovery_duration_ns.add(static_cast<std::uint64_t>(report_.duration.count()));
    if (scan.torn) metrics_.recovery_torn_tail_bytes.add(scan.torn->bytes);
    return ok();
  }

  // ---- snapshots and checkpoints -----------------------------------------------------

  // REQUIRES: state_mu_ held exclusively (or the instance not yet shared).
  result<void> load_snapshot(const std::string& manifest_name, commit_id c) {
    auto missing = [&](const std::string& file) {
      return error(errc::checkpoint_snapshot_missing,
                   "the checkpoint names a snapshot file that does not exist",
                   {{"file", file}, {"commit_id", std::to_string(c)}});
    };
    auto read_file = [&](const std::string& name) -> result<std::vector<std::byte>> {
      auto f = fs_->open(io::join(dir_, name), io::open_mode::read);
      if (!f) {
        if (f.code() == errc::storage_not_found) return missing(name);
        return std::move(f).error_value();
      }
      return io::read_all(**f);
    };
    AERO_TRY_ASSIGN(auto manifest_bytes, read_file(manifest_name));
    AERO_TRY_ASSIGN(auto m, format::decode_manifest(manifest_bytes));
    if (m.commit != c)
      return error(errc::snapshot_corruption, "the manifest belongs to another CommitId",
                   {{"file", manifest_name}, {"expected", std::to_string(c)},
                    {"actual", std::to_string(m.commit)}});
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
      return error(errc::snapshot_corruption, "the snapshot contradicts itself: " + why,
                   {{"file", data_name}});
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
      if (e.registered_at > c) return corrupt("schema registered after the boundary");
      last_schema = key;
      schemas_.emplace(std::move(key), schema_entry{std::make_unique<schema>(std::move(*sch)), e.registered_at});
      return ok();
    };
    v.on_collection = [&](const format::collection_entry& e) -> result<void> {
      if (!schema_known(e.schema_id) || e.created_at > c) return corrupt("bad collection entry");
      auto state = std::make_unique<collection_state>();
      state->name = std::string(e.name);
      state->schema_id = std::string(e.schema_id);
      state->created_at = e.created_at;
      state->add_index("_id", e.created_at);
      collections_.emplace(state->name, std::move(state));
      return ok();
    };
    v.on_index = [&](const format::index_entry& e) -> result<void> {
      auto& coll = *collections_.find(e.collection)->second;
      if (!valid_field_path(e.path) || coll.indexes.count(e.path) || e.created_at > c)
        return corrupt("bad index entry");
      coll.add_index(std::string(e.path), e.created_at);
      return ok();
    };
    v.on_document = [&](const format::document_entry& e) -> result<void> {
      auto& coll = *collections_.find(e.collection)->second;
      if (e.committed_at > c || e.schema_version == 0) return corrupt("bad document entry");
      auto buf = std::make_shared<const mvcc::payload::buffer>(e.bytes.begin(), e.bytes.end());
      link_version(coll, std::string(e.id), e.committed_at, format::write_kind::insert,
                   e.schema_version, std::move(buf));
      ++report_.snapshot_documents;
      return ok();
    };
    return format::read_snapshot_data(data, v);
  }

  // The image at `c`, in the order the format requires. REQUIRES: a read view at `c` is
  // open (GC keeps every version it needs).
  result<void> encode_image(format::snapshot_encoder& enc, commit_id c, std::uint64_t& documents) const {
    std::shared_lock lock(state_mu_);
    for (const auto& [key, entry] : schemas_)
      if (entry.registered_at <= c) AERO_TRY(enc.add_schema(entry.registered_at, entry.def->to_canonical_json()));
    for (const auto& [name, coll] : collections_)
      if (coll->created_at <= c) AERO_TRY(enc.add_collection(coll->created_at, name, coll->schema_id));
    for (const auto& [name, coll] : collections_) {
      if (coll->created_at > c) continue;
      for (const auto& [path, ix] : coll->indexes)
        if (path != "_id" && ix->created_at <= c) AERO_TRY(enc.add_index(ix->created_at, name, path));
    }
    for (const auto& [name, coll] : collections_) {
      if (coll->created_at > c) continue;
      // Policies may keep keys unordered; the image is always in _id order.
      std::vector<const mvcc::key_entry*> keys;
      keys.reserve(coll->keys.size());
      for (const auto& [id, key] : coll->keys) keys.push_back(key.get());
      std::sort(keys.begin(), keys.end(), [](const auto* a, const auto* b) { return a->id < b->id; });
      for (const auto* key : keys) {
        const mvcc::version* v = nullptr;
        for (const auto& candidate : key->chain)
          if (candidate.id <= c) { v = &candidate; break; }  // chains are newest first
        if (!v || v->tombstone()) continue;
        AERO_TRY(enc.add_document(v->id, name, v->schema_version, v->data.bytes()));
        ++documents;
      }
    }
    return ok();
  }

  // Writes `name` as name.tmp, syncs it and renames it into place (the caller syncs the
  // directory), so a crash leaves either the old file or the whole new one.
  result<void> write_file_durably(const std::string& name, std::span<const std::byte> bytes) {
    const std::string tmp = io::join(dir_, name + ".tmp");
    {
      AERO_TRY_ASSIGN(auto f, fs_->open(tmp, io::open_mode::create_new));
      AERO_TRY(f->append(bytes));
      AERO_TRY(f->sync());
    }
    return fs_->rename(tmp, io::join(dir_, name));
  }

  // Removes the segments whose every record is at or below `c`. The newest segment always
  // stays (it is the one being appended to).
  result<std::uint64_t> remove_covered_segments(commit_id c) {
    AERO_TRY_ASSIGN(auto names, fs_->list_dir(dir_));
    std::vector<std::pair<std::uint64_t, std::string>> segs;
    for (auto& n : names)
      if (auto seq = format::parse_segment_file_name(n)) segs.push_back({*seq, n});
    std::uint64_t removed = 0;
    for (std::size_t i = 0; i + 1 < segs.size(); ++i) {
      AERO_TRY_ASSIGN(auto f, fs_->open(io::join(dir_, segs[i + 1].second), io::open_mode::read));
      std::array<std::byte, format::segment_header_size> header{};
      AERO_TRY_ASSIGN(std::size_t got, f->read_at(0, header));
      const auto next = format::decode_segment_header(std::span(header).first(got));
      if (next.status != format::header_status::valid || next.header.first_commit_id > c + 1) break;
      AERO_TRY(fs_->remove(io::join(dir_, segs[i].second)));
      ++removed;
    }
    if (removed) AERO_TRY(fs_->sync_dir(dir_));
    return removed;
  }

  // Removes snapshot files of other boundaries than `keep` and temporary files.
  result<void> remove_stale_snapshot_files(commit_id keep) {
    AERO_TRY_ASSIGN(auto names, fs_->list_dir(dir_));
    bool any = false;
    for (const auto& n : names) {
      auto data = format::parse_snapshot_data_file_name(n);
      auto man = format::parse_snapshot_manifest_file_name(n);
      const bool stale = (data && *data != keep) || (man && *man != keep) ||
                         (n.size() > 4 && n.substr(n.size() - 4) == ".tmp");
      if (!stale) continue;
      AERO_TRY(fs_->remove(io::join(dir_, n)));
      any = true;
    }
    if (any) AERO_TRY(fs_->sync_dir(dir_));
    return ok();
  }

  error corrupt_record(const wal::wal_record& r, std::string why) const {
    return error(errc::wal_corruption,
                 "a checksummed log record cannot be applied: " + why,
                 {{"segment", *r.segment}, {"offset", std::to_string(r.offset)},
                  {"commit_id", std::to_string(r.id)}});
  }

  // Replays one record; full-state records make this idempotent.
  result<void> replay(const wal::wal_record& r) {
    switch (r.type) {
      case format::record_type::schema_register: {
        auto s = schema::from_json(format::as_chars(r.payload));
        if (!s) return corrupt_record(r, "bad schema definition: " + s.error_value().message());
        auto key = std::pair<std::string, std::uint32_t>(s->id(), s->version());
        if (schemas_.count(key)) return corrupt_record(r, "schema registered twice");
        schemas_.emplace(std::move(key), schema_entry{std::make_unique<schema>(std::move(*s)), r.id});
        return ok();
      }
      case format::record_type::collection_create: {
        auto c = format::decode_collection_create(r.payload);
        if (!c) return corrupt_record(r, "bad collection record");
        if (collections_.count(c->name) || !schema_known(c->schema_id))
          return corrupt_record(r, "collection record contradicts the catalog");
        auto state = std::make_unique<collection_state>();
        state->name = c->name;
        state->schema_id = c->schema_id;
        state->created_at = r.id;
        state->add_index("_id", r.id);
        collections_.emplace(c->name, std::move(state));
        return ok();
      }
      case format::record_type::index_create: {
        auto ix = format::decode_index_create(r.payload);
        if (!ix) return corrupt_record(r, "bad index record");
        auto c = collections_.find(ix->collection);
        if (c == collections_.end() || c->second->indexes.count(ix->path) ||
            !valid_field_path(ix->path))
          return corrupt_record(r, "index record contradicts the catalog");
        c->second->add_index(ix->path, r.id);  // entries are built once replay is done
        return ok();
      }
      case format::record_type::gc: {
        auto floor = format::decode_gc(r.payload);
        if (!floor || *floor >= r.id) return corrupt_record(r, "bad gc record");
        collect_garbage(*floor);
        return ok();
      }
      case format::record_type::write_batch: {
        auto ops = format::decode_write_batch(r.payload);
        if (!ops) return corrupt_record(r, "bad write batch");
        for (auto& op : *ops) {
          auto c = collections_.find(op.collection);
          if (c == collections_.end()) return corrupt_record(r, "write to an unknown collection");
          std::shared_ptr<const mvcc::payload::buffer> buf;
          if (op.kind != format::write_kind::remove) {
            auto doc = document::from_bytes(
                std::vector<std::byte>(op.document.begin(), op.document.end()));
            if (!doc) return corrupt_record(r, "bad document: " + doc.error_value().message());
            if (doc->id() != op.id) return corrupt_record(r, "document _id differs from the key");
            buf = doc->buffer();
          }
          link_version(*c->second, op.id, r.id, op.kind, op.schema_version, std::move(buf));
        }
        return ok();
      }
    }
    return corrupt_record(r, "unknown record type");
  }

  // ---- read views ---------------------------------------------------------------------

  // REQUIRES: views_mu_ held.
  void register_view(commit_id bound) const { active_views_.insert(bound); }
  void unregister_view(commit_id bound) const {
    std::lock_guard lock(views_mu_);
    active_views_.erase(active_views_.find(bound));
  }

  const std::string dir_;
  const open_options options_;
  const std::shared_ptr<io::file_system> fs_;
  std::unique_ptr<io::file_lock> lock_;

  // Catalog and version chains. Exclusive only while linking (step 5) and at recovery;
  // readers hold it shared. Never held across I/O by the write path.
  mutable std::shared_mutex state_mu_;
  struct schema_entry {
    std::unique_ptr<schema> def;
    commit_id registered_at = 0;
  };
  std::map<std::pair<std::string, std::uint32_t>, schema_entry, schema_key_less> schemas_;
  std::map<std::string, std::unique_ptr<collection_state>, std::less<>> collections_;

  mutable std::mutex writer_mu_;  // guards writer_ and next_id_ (held by commit_group)
  wal::wal_writer writer_;
  commit_id next_id_ = 1;
  std::atomic<commit_id> visible_{0};
  // Read views below this bound are refused: GC (or a checkpoint at recovery) has freed
  // the versions they would need.
  std::atomic<commit_id> history_floor_{0};
  std::atomic<std::uint64_t> versions_{0};
  std::atomic<std::uint64_t> payload_bytes_{0};

  mutable std::mutex views_mu_;
  mutable std::multiset<commit_id> active_views_;  // guarded by views_mu_
  commit_id gc_reserved_floor_ = 0;                // guarded by views_mu_
  std::mutex gc_mu_;                               // one gc() at a time

  recovery_report report_;
  mutable metrics_registry metrics_;
  bool read_only_ = false;          // an instance opened by open_snapshot
  std::mutex checkpoint_mu_;        // one checkpoint at a time
  typename FsyncPolicy::template pipeline<basic_database> pipeline_;
};

// The baseline engine: one fsync per commit, full version-chain traversal, an ordered
// primary-key index.
using database = basic_database<policies::fsync_per_commit, policies::full_traversal,
                                policies::ordered_index>;

}  // namespace aerodb

#include <aerodb/read_view.hpp>
