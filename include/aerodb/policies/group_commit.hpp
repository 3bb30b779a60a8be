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

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <mutex>
#include <span>
#include <vector>

namespace aerodb::policies {

template <std::size_t MaxGroup = 128>
struct basic_group_commit {
  static_assert(MaxGroup >= 1, "a commit group holds at least one commit");
  static constexpr std::size_t max_group = MaxGroup;

  template <class Engine>
  class pipeline {
   public:
    using request = typename Engine::commit_request;
    explicit pipeline(Engine& engine) : engine_(engine) {}

    void submit(request& r) {
      ticket mine{&r};
      std::unique_lock lock(mutex_);
      queue_.push_back(&mine);
      while (!mine.done) {
        if (leader_active_) {
          wake_.wait(lock);
          continue;
        }
        leader_active_ = true;
        const std::size_t n = std::min(queue_.size(), MaxGroup);
        std::vector<ticket*> taken(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(n));
        queue_.erase(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(n));
        lock.unlock();
        std::vector<request*> group;
        group.reserve(taken.size());
        for (ticket* t : taken) group.push_back(t->req);
        engine_.commit_group(std::span<request* const>(group));
        lock.lock();
        for (ticket* t : taken) t->done = true;
        leader_active_ = false;
        // Followers of this group return; the rest elect the next leader among themselves.
        wake_.notify_all();
      }
    }

    // Requests waiting for a group (for tests and diagnostics; never used to decide).
    std::size_t queued() const {
      std::lock_guard lock(mutex_);
      return queue_.size();
    }

   private:
    struct ticket {
      request* req;
      bool done = false;  // guarded by mutex_
    };
    Engine& engine_;
    mutable std::mutex mutex_;
    std::condition_variable wake_;
    std::deque<ticket*> queue_;  // arrival order; guarded by mutex_
    bool leader_active_ = false; // guarded by mutex_
  };
};

using group_commit = basic_group_commit<>;

}  // namespace aerodb::policies
