// primary_feed: the primary's side of one replica's connection (docs/replication.md §2-§4).
//
// Owns: the handshake's decision for that replica, the position shipped so far, and what
// the replica acknowledged. It reads the primary's log files through a log_source and
// ships only published records, which are durable (W7 before W9): a replica never holds a
// record the primary could lose in a crash, so its log stays a prefix of the primary's.
//
// The handshake refuses (with the reason sent back as a refuse frame):
//   - a store that is not a primary (a replica, or a deposed primary);
//   - a replica that follows a newer epoch: this primary was deposed, and it fences
//     itself durably before refusing (basic_database::fence);
//   - a replica whose newest record is above this primary's durable CommitId, or whose
//     checksum differs from this primary's record at that CommitId: it diverged;
//
// A replica whose next record this primary's log no longer holds (a checkpoint removed
// it) is welcomed and then bootstrapped (ship_bootstrap, docs/replication.md §8): the
// image at the newest published CommitId P, encoded in memory from a read view as a
// checkpoint would write it, then the records of the primary's segment that holds P, up to
// P, so that the replica's log starts exactly where the primary's does. When this log
// cannot hold the replica's newest record to check it, the replica's state is replaced
// whole, so nothing of it can diverge unseen.
//
// Thread safety: on_hello() and next_frames() from one thread (the sender); on_ack() and
// the lag readers from any thread.
#pragma once

#include <aerodb/database.hpp>
#include <aerodb/engine/checkpointer.hpp>
#include <aerodb/error.hpp>
#include <aerodb/format/authority.hpp>
#include <aerodb/replication/log_source.hpp>
#include <aerodb/replication/wire.hpp>

#include <atomic>
#include <cstdint>
#include <string>
#include <utility>

namespace aerodb::replication {

template <class Database>
class primary_feed {
 public:
  // The bytes of records one next_frames() call ships, at most (and at least one record).
  static constexpr std::size_t batch_bytes = 1u << 20;
  // The bytes of snapshot data one snapshot_chunk frame carries, at most.
  static constexpr std::size_t bootstrap_chunk_bytes = 1u << 20;

  explicit primary_feed(Database& db) : db_(db), source_(*db.fs_, db.dir_) {}

  // The handshake: the welcome to send, or the refusal (also sent, then the connection
  // closes).
  result<welcome> on_hello(const hello& h) {
    if (auto r = db_.check_primary(); !r) return std::move(r).error_value();
    if (h.epoch > db_.epoch()) {
      AERO_TRY(db_.fence(h.epoch));
      return error(errc::replication_stale_epoch,
                   "this primary was deposed: the replica follows a newer epoch; this store now refuses writes",
                   {{"epoch", std::to_string(h.epoch)}});
    }
    const commit_id durable = db_.last_commit_id();
    if (h.last_commit > durable)
      return error(errc::replication_divergence, "the replica holds records this primary does not",
                   {{"replica_last", std::to_string(h.last_commit)}, {"primary_durable", std::to_string(durable)}});
    bootstrap_ = false;
    if (h.last_commit > 0) {
      auto crc = source_.payload_crc_of(h.last_commit);
      if (!crc && crc.code() == errc::replication_snapshot_needed) {
        bootstrap_ = true;
        acked_.store(h.last_commit);
        return welcome{db_.epoch(), durable};
      }
      if (!crc) return std::move(crc).error_value();
      if (*crc != h.last_payload_crc)
        return error(errc::replication_divergence,
                     "the replica's record at its newest CommitId differs from this primary's",
                     {{"commit_id", std::to_string(h.last_commit)}});
    }
    next_ = h.last_commit + 1;
    acked_.store(h.last_commit);
    // Checked now, so that a replica this log cannot serve learns it at the handshake.
    if (next_ <= durable) {
      std::size_t n = 0;
      auto probe = source_.read(next_, next_, 1, [&n](const shipped_record&) -> result<void> {
        ++n;
        return ok();
      });
      if (!probe && probe.code() == errc::replication_snapshot_needed) bootstrap_ = true;
      else if (!probe) return std::move(probe).error_value();
    }
    return welcome{db_.epoch(), durable};
  }

  // Whether the handshake decided on a snapshot bootstrap: call ship_bootstrap() next.
  bool bootstrap_pending() const noexcept { return bootstrap_; }

  // Ships a snapshot bootstrap through `send` (called with whole frames, in order): a
  // snapshot_begin, the data file in chunks, the records of the segment holding P from its
  // first up to P, a snapshot_end. Shipping then continues from P + 1. Fails with
  // AERO_REPLICATION_SNAPSHOT_NEEDED when a checkpoint removed that segment meanwhile
  // (close the connection: the replica's next handshake starts over), or with the
  // error `send` returned.
  // REQUIRES: bootstrap_pending().
  template <class Send>
  result<void> ship_bootstrap(Send&& send) {
    using checkpointer = engine::checkpointer<typename Database::index_policy, typename Database::memory_layout_policy,
                                              typename Database::checkpoint_policy>;
    commit_id p = 0;
    format::byte_buffer data;
    {
      const auto pin = db_.read();  // holds GC back from the versions being encoded
      p = pin.bound();
      std::uint64_t documents = 0;
      AERO_TRY_ASSIGN(data, checkpointer::encode_snapshot(db_.store_, p, documents));
    }
    std::optional<segment_start> segment;
    AERO_TRY(source_.read(p, p, 1, [&segment](const shipped_record& r) -> result<void> {
      segment = r.segment;  // always set for the first record a read hands out
      return ok();
    }));
    if (!segment) return error(errc::internal_bug, "the log source named no segment for a bootstrap");
    format::byte_buffer out;
    encode(out, snapshot_begin{p, data.size(), crc32c::value(data), *segment});
    AERO_TRY(send(std::span<const std::byte>(out)));
    for (std::size_t at = 0; at < data.size(); at += bootstrap_chunk_bytes) {
      const std::size_t n = std::min(bootstrap_chunk_bytes, data.size() - at);
      out.clear();
      encode(out, snapshot_chunk{std::span<const std::byte>(data).subspan(at, n)});
      AERO_TRY(send(std::span<const std::byte>(out)));
    }
    data = {};
    commit_id next = segment->first_commit;
    while (next <= p) {
      out.clear();
      AERO_TRY_ASSIGN(next, source_.read(next, p, batch_bytes, [&out](const shipped_record& r) -> result<void> {
        encode(out, record_frame{r.framed});
        return ok();
      }));
      AERO_TRY(send(std::span<const std::byte>(out)));
    }
    out.clear();
    encode(out, snapshot_end{p});
    AERO_TRY(send(std::span<const std::byte>(out)));
    next_ = p + 1;
    bootstrap_ = false;
    bootstraps_.fetch_add(1, std::memory_order_relaxed);
    return ok();
  }

  // Appends the frames of the next published records (segment frames where the replica
  // must start or check a segment, then record frames) to `out`; returns how many records.
  result<std::size_t> next_frames(format::byte_buffer& out, commit_id limit) {
    std::size_t n = 0;
    AERO_TRY_ASSIGN(commit_id next, source_.read(next_, limit, batch_bytes, [&](const shipped_record& r) -> result<void> {
      if (r.segment) encode(out, *r.segment);
      encode(out, record_frame{r.framed});
      ++n;
      return ok();
    }));
    next_ = next;
    shipped_.fetch_add(n, std::memory_order_relaxed);
    return n;
  }

  void on_ack(const ack& a) {
    commit_id seen = acked_.load();
    while (a.durable > seen && !acked_.compare_exchange_weak(seen, a.durable)) {
    }
  }

  // The next CommitId to ship; the newest one the replica acknowledged; records shipped.
  commit_id next() const noexcept { return next_; }
  commit_id acknowledged() const noexcept { return acked_.load(); }
  std::uint64_t records_shipped() const noexcept { return shipped_.load(std::memory_order_relaxed); }
  // Snapshot bootstraps shipped whole.
  std::uint64_t bootstraps_shipped() const noexcept { return bootstraps_.load(std::memory_order_relaxed); }
  Database& database() noexcept { return db_; }

  // The newest published (durable) CommitId: what may be shipped.
  commit_id published() const noexcept { return db_.store_.published(); }
  // Blocks until a record above `c` is published or `stop()` holds (re-checked at wake()).
  template <class Stop>
  commit_id wait_beyond(commit_id c, Stop&& stop) const {
    return db_.store_.wait_published_beyond(c, std::forward<Stop>(stop));
  }
  void wake() const { db_.store_.wake_publish_waiters(); }

 private:
  Database& db_;
  log_source source_;
  commit_id next_ = 1;
  std::atomic<commit_id> acked_{0};
  std::atomic<std::uint64_t> shipped_{0};
  std::atomic<std::uint64_t> bootstraps_{0};
  bool bootstrap_ = false;  // the sender's own
};

}  // namespace aerodb::replication
