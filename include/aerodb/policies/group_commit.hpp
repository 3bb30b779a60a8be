// FsyncPolicy `group_commit`: commits that are already queued when an fsync starts share
// the next one (docs/optimizations/group_commit.md).
//
// Leader/follower, with no timer and no waiting for company: a committing thread queues
// its request; if no group is being written it becomes the leader, takes what is queued
// (in arrival order, at most MaxGroup requests), and hands them to the engine's
// commit_group, which assigns CommitIds in that order, writes the group's records with
// one write call, fsyncs once, and publishes. Requests that arrive meanwhile wait for the
// next group, whose leader is the first of them to wake. A lone commit therefore makes
// exactly the baseline's call: commit_group with one request.
//
// MaxGroup bounds the work one fsync acknowledges (and the leader's batch buffer); the
// engine's own record-size limit bounds each request.
//
// Thread safety: submit() may be called from any number of threads; commit_group never
// runs twice at once, because only the leader (leader_active_ set) calls it.
#pragma once

#include <array>
#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <span>

namespace aerodb::policies {

template <std::size_t MaxGroup = 128>
struct basic_group_commit {
  static_assert(MaxGroup >= 1, "a commit group holds at least one commit");
  static_assert(MaxGroup <= 4096, "the leader keeps its group in an array on its stack");
  static constexpr std::size_t max_group = MaxGroup;

  template <class Engine>
  class pipeline {
   public:
    using request = typename Engine::commit_request;
    explicit pipeline(Engine& engine) : engine_(engine) {}

    // Allocates nothing: tickets live on the callers' stacks and are linked through
    // themselves, and the leader's group is an array on its stack. So an allocation
    // failure can never leave a leader elected and its followers waiting forever
    // (commit_group itself never throws).
    void submit(request& r) {
      ticket mine{&r};
      std::unique_lock lock(mutex_);
      if (tail_) tail_->next = &mine; else head_ = &mine;
      tail_ = &mine;
      ++queued_;
      while (!mine.done) {
        if (leader_active_) {
          wake_.wait(lock);
          continue;
        }
        leader_active_ = true;
        std::array<ticket*, MaxGroup> taken;
        std::array<request*, MaxGroup> group;
        std::size_t n = 0;
        while (head_ && n < MaxGroup) {
          taken[n] = head_;
          group[n] = head_->req;
          ++n;
          head_ = head_->next;
        }
        if (!head_) tail_ = nullptr;
        queued_ -= n;
        lock.unlock();
        engine_.commit_group(std::span<request* const>(group.data(), n));
        lock.lock();
        for (std::size_t i = 0; i < n; ++i) taken[i]->done = true;
        leader_active_ = false;
        // Followers of this group return; the rest elect the next leader among themselves.
        wake_.notify_all();
      }
    }

    // Requests waiting for a group (for tests and diagnostics; never used to decide).
    std::size_t queued() const {
      std::lock_guard lock(mutex_);
      return queued_;
    }

   private:
    struct ticket {
      request* req;
      ticket* next = nullptr;  // guarded by mutex_
      bool done = false;       // guarded by mutex_
    };
    Engine& engine_;
    mutable std::mutex mutex_;
    std::condition_variable wake_;
    ticket* head_ = nullptr;      // arrival order; guarded by mutex_
    ticket* tail_ = nullptr;      // guarded by mutex_
    std::size_t queued_ = 0;      // guarded by mutex_
    bool leader_active_ = false;  // guarded by mutex_
  };
};

using group_commit = basic_group_commit<>;

}  // namespace aerodb::policies
