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
//   - a replica whose next record this primary's log no longer holds: it needs a snapshot.
//
// Thread safety: on_hello() and next_frames() from one thread (the sender); on_ack() and
// the lag readers from any thread.
#pragma once

#include <aerodb/database.hpp>
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
    if (h.last_commit > 0) {
      auto crc = source_.payload_crc_of(h.last_commit);
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
      if (!probe) return std::move(probe).error_value();
    }
    return welcome{db_.epoch(), durable};
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
};

}  // namespace aerodb::replication
