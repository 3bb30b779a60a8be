// ReplicaReadPolicy: how a replica admits a read (replication/replica.hpp;
// docs/optimizations/replica_read_fast_path.md).
//
// A replica answers a read at bound b only while it is active and only when b is at or
// below its applied CommitId (SPEC_DIGEST §9). The baseline decides this for every read
// under the replica's lock. A policy's `boundary` lets the replica skip that check for
// reads at or below a CommitId that was already checked once: the pre-validated boundary.
//
//   baseline_replica_read    no boundary: every read is checked (today's behaviour).
//   replica_read_fast_path   one atomic CommitId, published after each record is durable
//                            and applied, zeroed by a halt or a bootstrap before either
//                            changes anything. A read at or below it costs one load.
//
// The contract of `boundary` (checked by policies::check_replica_read_policy):
//   publish(c)   the replica calls it with its lock held, only while active, once every
//                record up to c is durable, applied and published by the database (c > 0).
//   invalidate() from then on load() returns 0, until the next publish. The replica calls
//                it before anything that could make a published boundary untrue happens:
//                a halt, the start of a snapshot bootstrap.
//   load()       the last published boundary, or 0 for none. A read at bound <= load()
//                (load() != 0) may skip the check; every other read runs it.
// A boundary may always answer 0: that only sends reads to the checked path, which is
// how the baseline works. What a policy must never do is answer a CommitId that was not
// published, or one published before the last invalidate().
//
// No boundary is persistent: a replica starts with none (0) at every open, so it holds
// nothing that recovery, a snapshot or a log could depend on.
//
// Thread safety: publish() and invalidate() from the replica's follower thread or under
// its lock; load() from any number of threads at once.
#pragma once

#include <aerodb/commit_id.hpp>

#include <atomic>

namespace aerodb::policies {

struct baseline_replica_read {
  struct boundary {
    void publish(commit_id) noexcept {}
    void invalidate() noexcept {}
    // Always none: every read takes the replica's lock and checks the state and the
    // applied CommitId. The constant lets the compiler drop the fast branch altogether.
    static constexpr commit_id load() noexcept { return 0; }
  };
};

struct replica_read_fast_path {
  class boundary {
   public:
    // Release: a reader whose acquire load returns `applied` also sees the database's
    // publish of it, and so every version up to it (the replica publishes the boundary
    // after commit_pipeline::commit_replicated has returned).
    void publish(commit_id applied) noexcept { value_.store(applied, std::memory_order_release); }
    // A reader that sees a change the caller makes after this call (a bootstrap installing
    // a snapshot), published by a release store, a lock or a seq_cst store, loads 0 (or a
    // later boundary) afterwards: the zero happens before that change. Release order on
    // the later change is what guarantees it; seq_cst here adds a place in the total order
    // of the engine's own seq_cst stores (version_store::publish), and costs nothing that
    // matters, since halts and bootstraps are rare.
    void invalidate() noexcept { value_.store(0, std::memory_order_seq_cst); }
    commit_id load() const noexcept { return value_.load(std::memory_order_acquire); }

   private:
    // The fast path is one load only if this never needs a lock.
    static_assert(std::atomic<commit_id>::is_always_lock_free);
    std::atomic<commit_id> value_{0};
  };
};

}  // namespace aerodb::policies
