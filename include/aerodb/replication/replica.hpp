// basic_replica: a store that follows a primary (SPEC_DIGEST §9, docs/replication.md).
//
// Owns: a database opened in the replica role (its directory's AUTHORITY says so, so no
// primary open can take it and write), the replica's state (active or halted, and why),
// and what the handshake needs: the epoch followed, the newest record's CommitId and
// payload checksum, and the segment the log is in.
//
// What it does with a record the primary ships: checks its framing and checksums, that
// it is the next CommitId and where it goes in the segment layout; appends the same bytes
// to its own log and fsyncs (commit_pipeline::commit_replicated); applies it through
// recovery's replay of one record (the path every open uses), with index entries kept up
// as it goes; publishes it; and only then acknowledges it. Anything else (a gap, a
// duplicate, a checksum that fails, a layout or handshake that disagrees) halts it:
// nothing of the offending record is stored or applied, reads and records are refused,
// and the reason stays in status() until an operator acts (resume(), or a new
// bootstrap). A halt is never cleared by the replica itself.
//
// Snapshot bootstrap (docs/replication.md §8): when the primary's log no longer holds what
// this replica needs, the primary sends its image at some P and the records of its
// segment holding P. They are staged in files beside the live state (which keeps serving
// reads meanwhile), checked whole, then installed (engine/snapshot_install.hpp: a crash at
// any step leaves the old state or the new) with the database closed and reopened, which
// recovers from the new snapshot like any open. The install needs every read view of
// this replica closed; with one open it halts instead (resume() and the next handshake
// start the bootstrap over).
//
// Reads: only while active, and only at bounds at or below the applied CommitId, which
// is the durable one (a record is applied after its fsync). A GC record applied while a
// replica view below its floor is open frees only what that view cannot see
// (view_registry::clamp_floor); the rest is freed by the next GC record, or at the next
// open, whose replay frees it all, as on the primary.
//
// How a read is admitted is the ReplicaReadPolicy's choice (policies/replica_read.hpp):
// the baseline checks the state and the applied CommitId under the lock every time;
// replica_read_fast_path admits a read at or below a boundary the follower published
// after its last record with one atomic load, and runs the check for anything else. The
// boundary is published only at the end of on_records, with mu_ held and the replica
// active, and zeroed by halt() and invalidate_read_boundary() (the follower's thread,
// when a snapshot bootstrap begins), so either policy admits the same reads and refuses
// the others with the same codes (docs/optimizations/replica_read_fast_path.md). The fast
// path still holds db_mu_ shared, as every read does, so an install never replaces the
// database under a read.
//
// Thread safety: on_message() from one thread at a time (the follower); reads, status()
// and resume() from any thread. The database instance is replaced only by a bootstrap's
// install, under db_mu_ held exclusively; every other member reaches it under db_mu_
// held shared (the follower's own calls need no lock: only it replaces the instance).
#pragma once

#include <aerodb/database.hpp>
#include <aerodb/engine/snapshot_install.hpp>
#include <aerodb/error.hpp>
#include <aerodb/format/bootstrap_marker.hpp>
#include <aerodb/format/authority.hpp>
#include <aerodb/format/wal_format.hpp>
#include <aerodb/options.hpp>
#include <aerodb/policies/concepts.hpp>
#include <aerodb/policies/replica_read.hpp>
#include <aerodb/replication/log_source.hpp>
#include <aerodb/replication/wire.hpp>

#include <algorithm>
#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <utility>
#include <vector>

namespace aerodb::replication {

enum class replica_state : std::uint8_t { active, halted };

inline std::string_view to_string(replica_state s) { return s == replica_state::active ? "active" : "halted"; }

struct replica_status {
  replica_state state = replica_state::active;
  commit_id applied = 0;                // every record up to it is durable and applied
  std::uint64_t epoch = 0;              // the primary epoch followed
  std::uint64_t records_applied = 0;    // by this instance
  std::uint64_t bootstraps_installed = 0;  // by this instance
  std::optional<error> halt_reason = std::nullopt;
};

template <class Database, class ReplicaReadPolicy = policies::baseline_replica_read>
class basic_replica {
  static_assert(policies::check_replica_read_policy<ReplicaReadPolicy>());

 public:
  using database_type = Database;
  using replica_read_policy = ReplicaReadPolicy;
  using read_view = typename Database::read_view;

  // Opens (creating if needed) `dir` as a replica: recovery runs as for any open, and the
  // directory is marked a replica from now on.
  static result<std::unique_ptr<basic_replica>> open(std::string dir, open_options options = {}) {
    options.role = open_role::replica;
    AERO_TRY_ASSIGN(auto db, Database::open(dir, options));
    std::unique_ptr<basic_replica> r(new basic_replica(std::move(db), std::move(dir), std::move(options)));
    AERO_TRY(r->load_log_position());
    return r;
  }

  basic_replica(const basic_replica&) = delete;
  basic_replica& operator=(const basic_replica&) = delete;

  // ---- reads ----------------------------------------------------------------------------

  // A view at the applied CommitId; AERO_REPLICATION_HALTED while halted.
  result<read_view> read() const {
    std::shared_lock db_lock(db_mu_);
    // A published boundary says the replica was active when it was loaded (a halt zeroes
    // it first), and the database's applied CommitId is at or above it.
    if (boundary_.load() != 0) return db_->read();
    AERO_TRY(check_active());
    return db_->read();
  }

  // A view at `bound`; AERO_REPLICATION_READ_AHEAD above the applied CommitId (this
  // replica has not made it durable yet), AERO_REPLICATION_HALTED while halted.
  result<read_view> read_at(commit_id bound) const {
    std::shared_lock db_lock(db_mu_);
    if (const commit_id pre = boundary_.load(); pre != 0 && bound <= pre) return db_->read_at(bound);
    AERO_TRY(check_active());
    const commit_id applied = db_->last_commit_id();
    if (bound > applied)
      return error(errc::replication_read_ahead,
                   "this replica has not applied that CommitId yet; read at or below the applied one",
                   {{"bound", std::to_string(bound)}, {"applied", std::to_string(applied)}});
    return db_->read_at(bound);
  }

  // ---- state ----------------------------------------------------------------------------

  replica_status status() const {
    std::shared_lock db_lock(db_mu_);
    std::lock_guard lock(mu_);
    return replica_status{halted_ ? replica_state::halted : replica_state::active,
                          db_ ? db_->last_commit_id() : 0,
                          db_ ? db_->epoch() : 0,
                          records_applied_,
                          bootstraps_installed_,
                          halt_reason_};
  }
  commit_id applied() const {
    std::shared_lock db_lock(db_mu_);
    return db_ ? db_->last_commit_id() : 0;
  }
  // The pre-validated read boundary (0: none; always 0 with the baseline policy). Passive:
  // for tests and diagnostics, it never decides anything.
  commit_id read_boundary() const noexcept { return boundary_.load(); }

  // Withdraws the pre-validated read boundary: reads go through the check until the
  // follower applies its next record. Call it from the follower's thread (the one that
  // calls on_message) before changing the replica's state outside on_records; a snapshot
  // bootstrap does so when it begins, and halt() calls it itself.
  void invalidate_read_boundary() noexcept { boundary_.invalidate(); }
  bool halted() const {
    std::lock_guard lock(mu_);
    return halted_;
  }

  // An operator's decision after a halt (docs/replication.md §7): the replica goes back
  // to active, with the state it had; the next handshake checks everything again. Refused
  // when the log itself cannot take more records (a failed fsync: reopen instead). It
  // publishes no read boundary: only the follower does, after its next record, so a
  // resume during a bootstrap cannot vouch for a state being replaced.
  result<void> resume() {
    std::shared_lock db_lock(db_mu_);
    if (!db_)
      return error(errc::storage_read_only, "this replica's database could not be reopened after a bootstrap; reopen the directory",
                   {{"directory", dir_}});
    if (!db_->pipeline_.accepts_writes())
      return error(errc::storage_read_only,
                   "this replica's log failed; reopen the directory instead of resuming");
    std::lock_guard lock(mu_);
    halted_ = false;
    halt_reason_.reset();
    return ok();
  }

  // One line: tests/unit/test_metrics.cpp allows metrics to be read only in accessors.
  metrics_snapshot metrics() const { std::shared_lock l(db_mu_); return db_ ? db_->metrics_.snapshot() : metrics_snapshot{}; }
  // The report of the newest open of this replica's directory (a bootstrap reopens it).
  recovery_report recovery() const {
    std::shared_lock db_lock(db_mu_);
    return db_ ? db_->recovery() : recovery_report{};
  }
  memory_stats memory() const {
    std::shared_lock db_lock(db_mu_);
    return db_ ? db_->memory() : memory_stats{};
  }
  const std::string& directory() const noexcept { return dir_; }

  // A replica's own checkpoint (it bounds the replica's log; it writes no log record).
  result<checkpoint_outcome> checkpoint() {
    std::shared_lock db_lock(db_mu_);
    AERO_TRY(check_open());
    return db_->checkpoint();
  }

  // ---- the protocol ---------------------------------------------------------------------

  // The handshake's first message: what this replica holds.
  hello make_hello() const {
    std::shared_lock db_lock(db_mu_);
    std::lock_guard lock(mu_);
    if (!db_) return hello{};
    return hello{db_->epoch(), db_->last_commit_id(), last_payload_crc_};
  }

  // Handles one message from the primary. Returns the reply to send (an ack once a record
  // is durable and applied), or the error that halted this replica (send it back as a
  // refuse frame, and close the connection).
  result<std::optional<message>> on_message(const message& m) {
    if (auto r = check_active(); !r) return std::move(r).error_value();
    if (const auto* w = std::get_if<welcome>(&m)) return on_welcome(*w);
    if (boot_) return on_bootstrap_message(m);
    if (const auto* b = std::get_if<snapshot_begin>(&m)) return on_snapshot_begin(*b);
    if (std::holds_alternative<snapshot_chunk>(m) || std::holds_alternative<snapshot_end>(m))
      return halt(error(errc::replication_protocol, "snapshot data arrived outside a snapshot bootstrap"));
    if (std::holds_alternative<segment_start>(m) || std::holds_alternative<record_frame>(m))
      return on_records(std::span(&m, 1));
    if (const auto* f = std::get_if<refuse>(&m))
      return halt(error(f->code, "the primary refused this replica: " + f->text));
    return halt(error(errc::replication_protocol, "the primary sent a message only a replica sends"));
  }

  // Handles messages that arrived together: a run of segment and record messages is one
  // group, made durable by one fsync and acknowledged once (the replica's group commit;
  // docs/replication.md §2); anything else goes through on_message() one by one. Returns
  // the newest acknowledgment to send, or the error that halted this replica.
  result<std::optional<message>> on_messages(std::span<const message> ms) {
    const bool all_records = std::all_of(ms.begin(), ms.end(), [](const message& m) {
      return std::holds_alternative<segment_start>(m) || std::holds_alternative<record_frame>(m);
    });
    if (all_records && !boot_ && !ms.empty()) {
      if (auto r = check_active(); !r) return std::move(r).error_value();
      return on_records(ms);
    }
    std::optional<message> reply;
    for (const auto& m : ms) {
      AERO_TRY_ASSIGN(auto one, on_message(m));
      if (one) reply = std::move(one);
    }
    return reply;
  }

  // Halts this replica for `e` (a transport's own failure does not: a disconnect leaves
  // it active, and it resumes with the next handshake).
  error halt(error e) {
    std::lock_guard lock(mu_);
    boundary_.invalidate();  // before halted_: no read may skip the check from here on
    if (!halted_) {
      halted_ = true;
      halt_reason_ = e;
    }
    return e;
  }

  // ---- promotion --------------------------------------------------------------------------

  // Makes this replica the primary of the next epoch (docs/replication.md §6): the
  // AUTHORITY marker says so durably first, then the database takes writes from the next
  // CommitId. Views of the replica may stay open: they are views of the same database.
  static result<std::unique_ptr<Database>> promote(std::unique_ptr<basic_replica> r) {
    AERO_TRY(r->check_open());
    Database& db = *r->db_;
    {
      std::lock_guard lock(db.authority_mu_);
      AERO_TRY(db.write_authority({format::node_role::primary, db.epoch() + 1}));
    }
    return std::move(r->db_);
  }

 private:
  basic_replica(std::unique_ptr<Database> db, std::string dir, open_options options)
      : db_(std::move(db)), fs_(db_->fs_), dir_(std::move(dir)), options_(std::move(options)) {}

  result<void> check_open() const {
    if (db_) return ok();
    return error(errc::storage_read_only,
                 "this replica's database could not be reopened after a bootstrap; reopen the directory",
                 {{"directory", dir_}});
  }

  result<void> check_active() const {
    std::lock_guard lock(mu_);
    if (!halted_) return ok();
    auto e = error(errc::replication_halted, "this replica is halted; see its status for the reason",
                   {{"directory", db_->directory()}});
    if (halt_reason_) e = std::move(e).with("reason", halt_reason_->to_string());
    return e;
  }

  // The newest record's checksum and the segment it is in, for the handshake and the
  // layout checks.
  result<void> load_log_position() {
    // The segment the log appends to: the newest one (recovery resumed it).
    active_seq_ = 0;
    active_first_ = 0;
    pending_segment_.reset();
    AERO_TRY_ASSIGN(auto names, db_->fs_->list_dir(db_->dir_));
    for (const auto& n : names)
      if (auto seq = format::parse_segment_file_name(n); seq && *seq > active_seq_) active_seq_ = *seq;
    if (active_seq_) {
      AERO_TRY_ASSIGN(auto f, db_->fs_->open(io::join(db_->dir_, format::segment_file_name(active_seq_)),
                                             io::open_mode::read));
      std::array<std::byte, format::segment_header_size> hb{};
      AERO_TRY_ASSIGN(std::size_t got, f->read_at(0, hb));
      const auto decoded = format::decode_segment_header(std::span(hb).first(got));
      if (decoded.status != format::header_status::valid)
        return error(errc::wal_corruption, "the replica's newest segment header does not verify",
                     {{"segment", format::segment_file_name(active_seq_)}});
      active_first_ = decoded.header.first_commit_id;
    }
    const commit_id last = db_->last_commit_id();
    last_payload_crc_ = 0;
    if (last == 0) return ok();
    log_source source(*db_->fs_, db_->dir_);
    auto read = source.read(last, last, 1, [this](const shipped_record& rec) -> result<void> {
      last_payload_crc_ = rec.payload_crc;
      return ok();
    });
    // No segment holds the newest record when the replica's own checkpoint covered it and
    // a crash left the segment after it empty: the handshake then names no checksum, the
    // primary's check fails, and the replica halts (the safe side of an ambiguity).
    if (!read && read.code() != errc::replication_snapshot_needed) return std::move(read).error_value();
    return ok();
  }

  result<std::optional<message>> on_welcome(const welcome& w) {
    if (w.epoch < db_->epoch())
      return halt(error(errc::replication_stale_epoch,
                        "the primary leads an older epoch than this replica follows; it was deposed",
                        {{"primary_epoch", std::to_string(w.epoch)}, {"followed_epoch", std::to_string(db_->epoch())}}));
    if (w.durable < db_->last_commit_id())
      return halt(error(errc::replication_divergence, "this replica holds records the primary does not",
                        {{"primary_durable", std::to_string(w.durable)},
                         {"applied", std::to_string(db_->last_commit_id())}}));
    if (w.epoch > db_->epoch()) {
      std::lock_guard lock(db_->authority_mu_);
      if (auto r = db_->write_authority({format::node_role::replica, w.epoch}); !r) return halt(r.error_value());
    }
    pending_segment_.reset();
    since_welcome_ = true;
    // A bootstrap the previous connection left unfinished starts over.
    if (boot_) discard_bootstrap();
    return std::optional<message>();
  }

  // ---- snapshot bootstrap ---------------------------------------------------------------

  // What a bootstrap in progress has staged (the follower's own).
  struct bootstrap_state {
    snapshot_begin begin;
    std::unique_ptr<io::file> data, segment;
    std::uint64_t data_received = 0;
    std::uint32_t data_crc = 0;    // of the bytes received so far
    commit_id next_record = 0;     // the next record the staged segment takes
  };

  std::string staged(std::string_view name) const { return io::join(dir_, std::string(name)); }

  // Forgets a bootstrap in progress and removes what it staged (best effort: recovery
  // removes staged files at the next open anyway).
  void discard_bootstrap() {
    boot_.reset();
    (void)fs_->remove(staged(format::bootstrap_staged_data_name));
    (void)fs_->remove(staged(format::bootstrap_staged_segment_name));
  }

  result<std::optional<message>> on_snapshot_begin(const snapshot_begin& b) {
    // No read skips the check while a bootstrap is in progress; the boundary returns with
    // the first record applied after the install.
    invalidate_read_boundary();
    if (!since_welcome_)
      return halt(error(errc::replication_protocol, "a snapshot bootstrap may start only right after the handshake"));
    const commit_id applied = db_->last_commit_id();
    if (b.commit <= applied)
      return halt(error(errc::replication_divergence, "the primary offers a snapshot at or below what this replica holds",
                        {{"snapshot", std::to_string(b.commit)}, {"applied", std::to_string(applied)}}));
    auto staging = [&]() -> result<void> {
      bootstrap_state st;
      st.begin = b;
      st.next_record = b.segment.first_commit;
      AERO_TRY_ASSIGN(st.data, fs_->open(staged(format::bootstrap_staged_data_name), io::open_mode::create_or_truncate));
      AERO_TRY_ASSIGN(st.segment,
                      fs_->open(staged(format::bootstrap_staged_segment_name), io::open_mode::create_or_truncate));
      const auto header = format::encode_segment_header({b.segment.seq, b.segment.first_commit});
      AERO_TRY(st.segment->append(header));
      boot_ = std::move(st);
      return ok();
    }();
    if (!staging) {
      discard_bootstrap();
      return halt(std::move(staging).error_value());
    }
    since_welcome_ = false;
    return std::optional<message>();
  }

  result<std::optional<message>> on_bootstrap_message(const message& m) {
    auto failed = [this](error e) -> result<std::optional<message>> {
      discard_bootstrap();
      return halt(std::move(e));
    };
    bootstrap_state& st = *boot_;
    if (const auto* c = std::get_if<snapshot_chunk>(&m)) {
      if (st.next_record != st.begin.segment.first_commit || c->bytes.size() > st.begin.data_size - st.data_received)
        return failed(error(errc::replication_protocol, "snapshot data beyond the size its snapshot_begin named"));
      if (auto r = st.data->append(c->bytes); !r) return failed(std::move(r).error_value());
      st.data_crc = crc32c::extend(st.data_crc, c->bytes);
      st.data_received += c->bytes.size();
      return std::optional<message>();
    }
    if (const auto* rec = std::get_if<record_frame>(&m)) {
      if (st.data_received != st.begin.data_size)
        return failed(error(errc::replication_protocol, "a bootstrap's record arrived before its snapshot data"));
      auto verified = verify_record(rec->framed, db_->last_commit_id());
      if (!verified) return failed(std::move(verified).error_value());
      const format::record_header h = *verified;
      if (h.commit != st.next_record || h.commit > st.begin.commit)
        return failed(error(errc::replication_gap, "a bootstrap's record is not the next one of its segment",
                            {{"commit_id", std::to_string(h.commit)}, {"expected", std::to_string(st.next_record)}}));
      if (auto r = st.segment->append(rec->framed); !r) return failed(std::move(r).error_value());
      ++st.next_record;
      return std::optional<message>();
    }
    if (const auto* e = std::get_if<snapshot_end>(&m)) {
      if (e->commit != st.begin.commit || st.data_received != st.begin.data_size ||
          st.next_record != st.begin.commit + 1)
        return failed(error(errc::replication_protocol, "a snapshot bootstrap ended before all of it arrived",
                            {{"snapshot", std::to_string(st.begin.commit)},
                             {"data_received", std::to_string(st.data_received)},
                             {"data_size", std::to_string(st.begin.data_size)}}));
      if (st.data_crc != st.begin.data_crc)
        return failed(error(errc::replication_record_corrupt,
                            "the shipped snapshot does not verify (checksum mismatch); nothing of it was installed",
                            {{"snapshot", std::to_string(st.begin.commit)}}));
      return install_bootstrap();
    }
    if (const auto* f = std::get_if<refuse>(&m))
      return failed(error(f->code, "the primary refused this replica: " + f->text));
    return failed(error(errc::replication_protocol, "a snapshot bootstrap was interrupted by another message"));
  }

  // The install (engine/snapshot_install.hpp): staged files synced, the database closed,
  // the new state switched in, the database reopened on it; then P is acknowledged.
  result<std::optional<message>> install_bootstrap() {
    bootstrap_state st = std::move(*boot_);
    boot_.reset();
    auto synced = [&]() -> result<void> {
      AERO_TRY(st.data->sync());
      AERO_TRY(st.segment->sync());
      st.data.reset();
      st.segment.reset();
      return ok();
    }();
    if (!synced) {
      discard_bootstrap();
      return halt(std::move(synced).error_value());
    }
    const format::bootstrap_marker marker{st.begin.commit, st.begin.segment.seq, st.begin.segment.first_commit};
    std::unique_lock db_lock(db_mu_);
    if (const std::size_t open = db_->views_.open_count(); open > 0) {
      discard_bootstrap();
      return halt(error(errc::replication_snapshot_needed,
                        "a snapshot bootstrap needs every read view of this replica closed; close them and resume()",
                        {{"open_views", std::to_string(open)}, {"snapshot", std::to_string(st.begin.commit)}}));
    }
    db_.reset();  // releases the directory: the install needs it to itself
    auto installed = engine::install_bootstrap(*fs_, dir_, marker, st.begin.data_size, st.begin.data_crc);
    // Whatever step failed, the directory holds the old state or the new one: reopen it.
    auto reopened = Database::open(dir_, options_);
    if (!reopened) return halt(std::move(reopened).error_value());
    db_ = std::move(*reopened);
    if (auto r = load_log_position(); !r) return halt(std::move(r).error_value());
    if (!installed) return halt(std::move(installed).error_value());
    {
      std::lock_guard lock(mu_);
      ++bootstraps_installed_;
    }
    return std::optional<message>(ack{st.begin.commit});
  }

  // A shipped record's framing and checksums (AERO_REPLICATION_RECORD_CORRUPT otherwise).
  static result<format::record_header> verify_record(std::span<const std::byte> framed, commit_id applied) {
    using namespace format;
    auto corrupt = [&](const char* why, commit_id c) {
      return error(errc::replication_record_corrupt,
                   std::string("a shipped record does not verify: ") + why + "; nothing of it was stored",
                   {{"commit_id", std::to_string(c)}, {"applied", std::to_string(applied)}});
    };
    if (framed.size() <= record_header_size) return corrupt("shorter than a record", 0);
    const auto h = decode_record_header(framed.data());
    if (!h.header_crc_ok || !h.framing_ok || !known_record_type(h.type)) return corrupt("bad record header", h.commit);
    if (h.payload_length != framed.size() - record_header_size) return corrupt("length disagrees with the frame", h.commit);
    const auto payload = framed.subspan(record_header_size);
    if (crc32c::value(payload) != h.payload_crc || payload.back() != record_end_marker)
      return corrupt("payload checksum mismatch", h.commit);
    return h;
  }

  // One checked record of a group, ready to be committed.
  struct prepared_record {
    std::span<const std::byte> framed;
    format::record_type type = format::record_type::write_batch;
    commit_id commit = 0;
    std::uint32_t payload_crc = 0;
    std::vector<std::byte> body;  // plain, for the replay
    std::optional<std::pair<std::uint64_t, commit_id>> new_segment;
    std::uint64_t seq = 0;        // the segment it goes into
    commit_id gc_floor = 0;       // a GC record's floor, clamped by this replica's views
  };

  // Where the follower's log stands while a group is checked record by record.
  struct log_cursor {
    commit_id expected = 0;  // the next CommitId
    std::uint64_t seq = 0;   // the active segment (0: none)
    commit_id first = 0;
    std::optional<segment_start> pending;
  };

  // Checks the record `framed` as the next one after `at`, and advances `at` past it.
  // Nothing is stored or halted here.
  result<prepared_record> prepare_record(std::span<const std::byte> framed, log_cursor& at) {
    using namespace format;
    const commit_id applied = at.expected - 1;
    AERO_TRY_ASSIGN(const record_header h, verify_record(framed, applied));
    if (h.commit != at.expected)
      return error(errc::replication_gap,
                   h.commit <= applied ? "a shipped record was already applied (duplicated or reordered)"
                                       : "a shipped record skips CommitIds (a gap)",
                   {{"commit_id", std::to_string(h.commit)}, {"expected", std::to_string(at.expected)}});
    prepared_record p;
    p.framed = framed;
    p.commit = h.commit;
    p.payload_crc = h.payload_crc;
    // Where it goes: the segment the primary's log holds it in.
    if (at.pending) {
      const segment_start s = *at.pending;
      if (s.seq == at.seq && s.first_commit == at.first) {
        // the segment being appended to: nothing to start
      } else if (s.first_commit == h.commit && (at.seq == 0 || s.seq == at.seq + 1)) {
        p.new_segment.emplace(s.seq, s.first_commit);
      } else {
        return error(errc::replication_divergence,
                     "the primary holds this record in a segment this replica's log does not match",
                     {{"segment", std::to_string(s.seq)}, {"first_commit", std::to_string(s.first_commit)},
                      {"active_segment", std::to_string(at.seq)},
                      {"active_first_commit", std::to_string(at.first)}});
      }
    } else if (at.seq == 0) {
      return error(errc::replication_protocol, "a record arrived before the segment it belongs to");
    }
    // The plain body, for the replay and for a GC record's floor.
    const auto payload = framed.subspan(record_header_size);
    p.body.assign(payload.begin(), payload.end() - 1);
    complement(p.body);
    p.type = static_cast<record_type>(h.type);
    if (p.type == record_type::gc) {
      auto floor = decode_gc(p.body);
      if (!floor || *floor >= h.commit)
        return error(errc::replication_record_corrupt, "a shipped record does not verify: bad gc record; nothing of it was stored",
                     {{"commit_id", std::to_string(h.commit)}, {"applied", std::to_string(applied)}});
      // Before the state lock: the registry's lock comes first (engine/gc.hpp).
      p.gc_floor = db_->views_.clamp_floor(*floor);
    }
    at.pending.reset();
    if (p.new_segment) {
      at.seq = p.new_segment->first;
      at.first = p.new_segment->second;
    }
    p.seq = at.seq;
    ++at.expected;
    return p;
  }

  // A run of segment and record messages as one group: each record checked in order; the
  // records before the first one that fails are committed together (one fsync,
  // commit_pipeline::commit_replicated), applied and published; then the failure, if any,
  // halts this replica with nothing of the offending record stored. The reply
  // acknowledges the newest record applied.
  result<std::optional<message>> on_records(std::span<const message> ms) {
    since_welcome_ = false;
    log_cursor at{db_->last_commit_id() + 1, active_seq_, active_first_, pending_segment_};
    std::vector<prepared_record> group;
    group.reserve(ms.size());
    std::optional<error> failure;
    for (const auto& m : ms) {
      if (const auto* s = std::get_if<segment_start>(&m)) {
        at.pending = *s;
        continue;
      }
      const auto* rec = std::get_if<record_frame>(&m);
      if (!rec) {
        failure = error(errc::replication_protocol, "a group of records holds another message");
        break;
      }
      auto p = prepare_record(rec->framed, at);
      if (!p) {
        failure = std::move(p).error_value();
        break;
      }
      group.push_back(std::move(*p));
    }
    if (!group.empty()) {
      using recovery = engine::recovery<typename Database::index_policy, typename Database::memory_layout_policy>;
      std::vector<std::string> names;
      std::vector<typename std::remove_reference_t<decltype(db_->pipeline_)>::replicated_append> appends;
      names.reserve(group.size());
      appends.reserve(group.size());
      for (const auto& p : group) {
        names.push_back(format::segment_file_name(p.seq));
        appends.push_back({p.framed, p.commit, p.new_segment});
      }
      auto committed = db_->pipeline_.commit_replicated(appends, [&](auto& store, std::size_t i) {
        typename recovery::live_apply live;
        live.metrics = &db_->metrics_;
        live.gc_floor = group[i].gc_floor;
        wal::wal_record rec{group[i].type, group[i].commit, group[i].body, &names[i], 0};
        return recovery::replay_record(store, rec, &live);
      });
      if (!committed) return halt(std::move(committed).error_value());
      std::lock_guard lock(mu_);
      last_payload_crc_ = group.back().payload_crc;
      records_applied_ += group.size();
      active_seq_ = at.seq;
      active_first_ = at.first;
      // Durable, applied and published: reads up to it may skip the check. Not if a halt
      // came in meanwhile from another thread (under mu_, so none can come in between),
      // nor when a bad record after these halts the replica just below.
      if (!halted_ && !failure) boundary_.publish(group.back().commit);
    }
    if (failure) return halt(std::move(*failure));
    pending_segment_ = at.pending;
    if (group.empty()) return std::optional<message>();
    return std::optional<message>(ack{group.back().commit});
  }

  // Replaced only by install_bootstrap(), under db_mu_ held exclusively (null when the
  // reopen after an install failed: the replica is then halted).
  std::unique_ptr<Database> db_;
  mutable std::shared_mutex db_mu_;
  // Read without mu_ (under db_mu_ shared, like every use of db_); published under mu_
  // (on_records), zeroed under it by halt(), and by the follower's own
  // thread (invalidate_read_boundary). Empty for the baseline.
  [[no_unique_address]] typename ReplicaReadPolicy::boundary boundary_;
  std::shared_ptr<io::file_system> fs_;
  std::string dir_;
  open_options options_;  // the replica's, to reopen with after a bootstrap
  mutable std::mutex mu_;  // guards halted_, halt_reason_, last_payload_crc_, records_applied_, bootstraps_installed_
  bool halted_ = false;
  std::optional<error> halt_reason_;
  std::uint32_t last_payload_crc_ = 0;
  std::uint64_t records_applied_ = 0;
  std::uint64_t bootstraps_installed_ = 0;
  // The follower's own (one thread): the segment frame before the next record, and the
  // segment the replica's log is appending to (0: none).
  std::optional<segment_start> pending_segment_;
  bool since_welcome_ = false;  // nothing but the welcome arrived on this connection yet
  std::optional<bootstrap_state> boot_;
  std::uint64_t active_seq_ = 0;
  commit_id active_first_ = 0;
};

}  // namespace aerodb::replication
