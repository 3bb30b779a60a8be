// FsyncPolicy `group_commit`: commits that are already queued when an fsync starts share
// the next one (docs/optimizations/group_commit.md).
//
// What it owns: the order in which commits reach the engine's write_group and the
// thread that makes each call. It owns no request (each stays on its caller's stack) and
// allocates nothing.
//
// Leader/follower, with no timer and no waiting for company:
//   - A lone commit (no group being written, nothing queued) makes the baseline's call at
//     once: the caller calls write_group then finish_group with its one request (the
//     baseline's commit_group, in its two halves). It touches one atomic
//     counter on the way in and once on the way out: no mutex, no queue, no wake-up.
//   - Otherwise the caller links a ticket (on its stack) at the tail of a FIFO queue and
//     waits on that ticket alone. The active leader, once write_group returned, hands
//     leadership to the first queued ticket (the earliest arrival) and then marks each
//     ticket of its own group done, waking exactly those threads.
//   - A thread told to lead takes the queue's front, its own ticket first, in arrival
//     order and at most MaxGroup tickets, and calls write_group with their requests, hands
//     the leadership on, then calls finish_group (pipelined: the next group is written
//     while this one is synced). Every leader leads exactly one group, the one that starts
//     with its own request.
//   - A waiter that queued at the front (the next leader) checks its ticket SpinCount
//     times (a `pause` between checks) before it sleeps on the ticket's own condition
//     variable; the others sleep at once, since spinning would only take CPU from the
//     threads that write and sync (with every waiter spinning, a profile of 32 writers on
//     2 cores had a fifth of all samples in the spin). See `spin_count` for the count.
//
// Thread safety: submit() may be called from any number of threads at once; queued() and
// wakeups() from any thread. The engine's write_group never runs twice at once and each
// call happens-after the previous one returned (leadership passes through in_flight_ or
// through the next leader's ticket, both release/acquire).
//
// Invariants:
//   - in_flight_ counts the submits that entered and whose group was not written yet; it is
//     0 exactly when there is no leader, no queued ticket and no arriving caller.
//   - A ticket is queued (guarded by mutex_) from its arrival until a leader takes it;
//     while any ticket is queued, a leader is active or leader_vacant_ is set, and a
//     vacancy is taken by the next caller that queues (one is always on its way).
//   - A ticket's state leaves `waiting` exactly once, by one signal: `lead` (it is the
//     queue's front and its owner now leads) or `done` (its group was committed). The
//     signalling thread never touches the ticket after that signal, so its owner may
//     return and end the ticket's lifetime at once.
//
// MaxGroup bounds the work one fsync acknowledges (and the leader's arrays); the engine's
// own record-size limit bounds each request.
#pragma once

#include <array>
#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <span>
#include <thread>

#include <aerodb/policies/spin.hpp>

namespace aerodb::policies {


// SpinCount: how many times a waiter checks its ticket (with a `pause` between checks)
// before it sleeps. The default, 2048 checks, is about 45 microseconds here (a `pause`
// measured 22 ns on the CI VM's AMD EPYC; Intel cores since Skylake take about 40 ns, so
// about 80 us; older Intel cores about 3 ns, so about 6 us). Why spin at all: an
// fdatasync waited for while every CPU is idle can complete only at the next timer tick
// (4 ms on some VMs), and a spinning waiter keeps a CPU busy, as RocksDB's write thread
// does; a waiter whose ticket is signalled while it spins also skips the sleep and the
// wake-up. Why this little: it covers a hand-off and the end of a group already under
// way, while a waiter whose group takes longer costs an oversubscribed machine at most
// those 45 us of CPU. Why a constant: a count, not a clock, and nothing adaptive, so what
// a commit costs never depends on what earlier commits measured. 0 sleeps at once (tests
// use it to force the sleeping path).
template <std::size_t MaxGroup = 128, std::size_t SpinCount = default_spin_count>
struct basic_group_commit {
  static_assert(MaxGroup >= 1, "a commit group holds at least one commit");
  static_assert(MaxGroup <= 4096, "the leader keeps its group in an array on its stack");
  static_assert(SpinCount <= (std::size_t{1} << 20),
                "a waiter spins for a bounded, short time before it sleeps");
  static constexpr std::size_t max_group = MaxGroup;
  static constexpr std::size_t spin_count = SpinCount;
  // A large write batch is parsed, validated and encoded on a thread per core before it
  // joins a group (engine/commit_request.hpp, prepare_batch): the operations are
  // independent, and the record and any error are the ones one thread makes.
  static constexpr bool parallel_prepare = true;

  template <class Engine>
  class pipeline {
   public:
    using request = typename Engine::commit_request;
    explicit pipeline(Engine& engine) : engine_(engine) {}

    // Allocates nothing: tickets live on the callers' stacks and are linked through
    // themselves, and the leader's group is an array on its stack. So an allocation
    // failure can never leave a leader elected and its followers waiting forever
    // (write_group and finish_group never throw).
    void submit(request& r) {
      if (in_flight_.fetch_add(1, std::memory_order_acq_rel) == 0) {
        // Nobody leads, nothing is queued, nobody is arriving: the baseline's calls, with
        // the leadership passed on between the write and the finish, so a commit that
        // arrives meanwhile is written while this one is synced.
        request* const one[1] = {&r};
        auto token = engine_.write_group(std::span<request* const>(one, 1));
        pass_leadership(1);
        engine_.finish_group(token);
        return;
      }
      ticket mine{&r};
      bool lead = false;
      bool front = false;
      {
        std::lock_guard lock(mutex_);
        front = tail_ == nullptr;
        if (tail_) tail_->next = &mine; else head_ = &mine;
        tail_ = &mine;
        ++queued_;
        // A leader that finished while this caller was on its way left the leadership
        // to the next arrival; the queue was empty, so this ticket is its front.
        if (leader_vacant_) {
          leader_vacant_ = false;
          lead = true;
        }
      }
      // Only the front of the queue, the next leader, spins: the others would only take
      // CPU from the threads writing and syncing (a profile with 32 writers on 2 cores
      // showed a fifth of all samples in the spin), and they are woken by a signal anyway.
      if (!lead && wait(mine, front ? SpinCount : 0) == done) return;
      lead_group(mine);
    }

    // Requests waiting for a group (for tests and diagnostics; never used to decide).
    std::size_t queued() const {
      std::lock_guard lock(mutex_);
      return queued_;
    }

    // How many times a sleeping waiter woke up, spurious wake-ups included (for tests and
    // diagnostics; never used to decide). Each signal wakes at most its one ticket's
    // owner, so this stays at most the number of tickets that slept.
    std::uint64_t wakeups() const { return wakeups_.load(std::memory_order_relaxed); }

   private:
    // A ticket's state: waiting -> (sleeping ->) lead or done, each step once.
    static constexpr std::uint32_t waiting = 0;
    static constexpr std::uint32_t sleeping = 1;  // its owner sleeps on cv; signal under mu
    static constexpr std::uint32_t lead = 2;      // its owner is the next leader
    static constexpr std::uint32_t done = 3;      // its group was committed

    struct ticket {
      explicit ticket(request* r) : req(r) {}
      request* req;
      ticket* next = nullptr;  // guarded by the pipeline's mutex_
      std::atomic<std::uint32_t> state{waiting};
      // Only for an owner that stops spinning: the signal then takes mu, so the owner
      // cannot wake (and destroy the ticket) before the signalling thread has released
      // mu, and a mutex may be destroyed as soon as it was released ([thread.mutex.class]).
      std::mutex mu;
      std::condition_variable cv;
    };

    // Runs in the owner's thread; returns `lead` or `done`.
    std::uint32_t wait(ticket& t, std::size_t spins) {
      for (std::size_t i = 0; i < spins; ++i) {
        const std::uint32_t s = t.state.load(std::memory_order_acquire);
        if (s != waiting) return s;
        detail::cpu_relax();
      }
      std::unique_lock lock(t.mu);
      std::uint32_t s = waiting;
      // The signal either comes before this exchange (and the exchange fails, returning
      // it) or finds `sleeping` and must take mu, which this thread holds until it waits.
      if (!t.state.compare_exchange_strong(s, sleeping, std::memory_order_acq_rel,
                                           std::memory_order_acquire))
        return s;
      while ((s = t.state.load(std::memory_order_acquire)) == sleeping) {
        t.cv.wait(lock);
        wakeups_.fetch_add(1, std::memory_order_relaxed);
      }
      return s;
    }

    // Runs in the leader's thread; the last access to `t` (its owner may return at once).
    static void signal(ticket& t, std::uint32_t to) {
      std::uint32_t s = waiting;
      if (t.state.compare_exchange_strong(s, to, std::memory_order_acq_rel,
                                          std::memory_order_relaxed))
        return;  // the owner was still spinning: it sees `to` without a wake-up
      std::lock_guard lock(t.mu);
      t.state.store(to, std::memory_order_release);
      t.cv.notify_one();
    }

    // Runs in the thread whose ticket is the queue's front and that was told to lead.
    void lead_group(ticket& mine) {
      std::array<ticket*, MaxGroup> taken;
      std::array<request*, MaxGroup> group;
      std::size_t n = 0;
      {
        std::lock_guard lock(mutex_);
        while (head_ && n < MaxGroup) {
          taken[n] = head_;
          group[n] = head_->req;
          ++n;
          head_ = head_->next;
        }
        if (!head_) tail_ = nullptr;
        queued_ -= n;
      }
      // taken[0] == &mine: only the leader dequeues, and leadership goes to the front.
      auto token = engine_.write_group(std::span<request* const>(group.data(), n));
      // The next group may be written while this one is synced; the engine finishes
      // groups (acknowledges them) in the order they were written.
      pass_leadership(n);
      engine_.finish_group(token);
      for (std::size_t i = 0; i < n; ++i)
        if (taken[i] != &mine) signal(*taken[i], done);
    }

    // After a group of n: the next leader, if anyone is in flight, is the first queued
    // ticket, or, if the queue is still empty, the next caller to queue.
    void pass_leadership(std::size_t n) {
      if (in_flight_.fetch_sub(n, std::memory_order_acq_rel) == n) return;
      ticket* next = nullptr;
      {
        std::lock_guard lock(mutex_);
        if (head_) next = head_; else leader_vacant_ = true;
      }
      // Only the leader dequeues, so `next` stays queued and alive until it leads.
      if (next) signal(*next, lead);
    }

    Engine& engine_;
    std::atomic<std::size_t> in_flight_{0};
    std::atomic<std::uint64_t> wakeups_{0};
    mutable std::mutex mutex_;
    ticket* head_ = nullptr;      // arrival order; guarded by mutex_
    ticket* tail_ = nullptr;      // guarded by mutex_
    std::size_t queued_ = 0;      // guarded by mutex_
    bool leader_vacant_ = false;  // guarded by mutex_
  };
};

using group_commit = basic_group_commit<>;

}  // namespace aerodb::policies
