// The commit pipeline: steps W4-W9 of the write path (docs/architecture.md). It owns the
// log writer and the next CommitId, and is the only writer of the version store.
//
//   W4  check each request against the newest (possibly unpublished) state
//   W5  assign its CommitId and link its versions or catalog change, still invisible
//   W6  frame the group's records and write them with one call
//   W7  fsync: the durability boundary
//   W8  derived state follows the durable records (indexes, GC)
//   W9  publish the last CommitId of the group: views opened from now on see it
//
// The FsyncPolicy decides how requests form groups; it is handed a private sink, so
// nothing outside this class can reach those steps. The sink runs a group whole
// (commit_group: W4-W9) or in two parts: write_group (W4-W6) and finish_group (W7-W9). The
// policy guarantees that no two writes (commit_group or write_group) run at once; finishes
// may run while later groups are written (pipelined groups). At most one fsync runs at a
// time and it covers every write made before it began, so the groups written while one
// fsync runs share the next. Groups complete (W8, W9, outcomes) strictly in the order they
// were written: a group's requests are acknowledged after an fsync that began after its
// write returned, and after every earlier group was.
//
// A failed append or fsync is FATAL: nothing of that group, nor of any group written
// after it that no earlier fsync covered, is acknowledged or published, and the pipeline
// refuses every later write (SPEC_DIGEST §3). Reopening the directory decides from the
// log what survived. Running out of memory part-way is treated the same.
//
// Thread safety: submit() from any number of threads. writer_mu_ guards the log writer,
// the next CommitId and the group counters, and is held for W4-W6 and for W8-W9, never
// across a commit's fsync (W7 syncs the segment through a shared handle with no lock
// held). finish_mu_ guards the finishing groups, the fsync in progress and what it
// covered; it is taken before writer_mu_ when both are held, never after. The version
// store's state lock is taken exclusively only at W5 and W8, never across I/O.
#pragma once

#include <aerodb/engine/commit_request.hpp>
#include <aerodb/engine/errors.hpp>
#include <aerodb/engine/gc.hpp>
#include <aerodb/engine/indexer.hpp>
#include <aerodb/engine/version_store.hpp>
#include <aerodb/io/crc32c.hpp>
#include <aerodb/io/file_system.hpp>
#include <aerodb/metrics.hpp>
#include <aerodb/wal/wal_writer.hpp>

#include <algorithm>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <span>
#include <string>
#include <variant>
#include <vector>

namespace aerodb::engine {

template <class FsyncPolicy, class IndexPolicy, class MemoryLayout = policies::baseline_memory_layout>
class commit_pipeline {
 public:
  using store_type = version_store<IndexPolicy, MemoryLayout>;

  commit_pipeline(io::file_system& fs, const std::string& dir, std::uint64_t segment_bytes,
                  std::uint64_t preallocate_bytes, store_type& store, metrics_registry& metrics)
      : store_(store),
        metrics_(metrics),
        writer_(fs, dir, segment_bytes, preallocate_bytes),
        sink_(*this),
        policy_(sink_) {}

  commit_pipeline(const commit_pipeline&) = delete;
  commit_pipeline& operator=(const commit_pipeline&) = delete;

  // Runs W4-W9 for a prepared request; returns its CommitId once it is durable and
  // published (0 for a batch of deletes of missing documents, which writes nothing).
  result<commit_id> submit(commit_request& req) {
    // The record's stored form (wal_format.hpp), made here on the caller's thread so the
    // commit lock only copies it.
    format::complement(req.payload);
    req.payload_crc = format::stored_payload_crc(req.payload);
    policy_.submit(req);
    if (req.failure) return std::move(*req.failure);
    return req.commit;
  }

  // False once a log append or fsync has failed.
  bool accepts_writes() const {
    std::lock_guard lock(writer_mu_);
    return !writer_.failed();
  }

  wal::writer_stats stats() const {
    std::lock_guard lock(writer_mu_);
    return writer_.stats();
  }

  // One record of a replica's group: its bytes as the primary's log holds them, its
  // CommitId, and the segment it starts, if it starts one (wal_writer::append_replicated).
  struct replicated_append {
    std::span<const std::byte> framed;
    commit_id commit = 0;
    std::optional<std::pair<std::uint64_t, commit_id>> segment;
  };

  // A replica's commit of records its primary shipped (docs/replication.md §2): the same
  // bytes appended where the primary's log holds them, made durable by one fsync for the
  // whole group (as the primary's group commit does for its writers), then applied in
  // order by `apply(store, i)` (recovery's replay of one record) under the state lock,
  // and published. A failed append or fsync is fatal, as for a local commit: nothing is
  // published, nothing later is accepted, and a reopen decides from the log what
  // survived. A failed apply publishes the records applied before it, then is fatal too.
  // REQUIRES: the store takes no local writes (a replica refuses them); the records'
  // bytes verified; their CommitIds consecutive from the next one.
  template <class Apply>
  result<void> commit_replicated(std::span<const replicated_append> group, Apply&& apply) {
    if (group.empty()) return ok();
    std::lock_guard wlock(writer_mu_);
    if (writer_.failed()) return read_only_error();
    for (std::size_t i = 0; i < group.size(); ++i)
      if (group[i].commit != next_commit_ + i)
        return error(errc::replication_gap, "a replicated record does not follow the last one applied",
                     {{"expected", std::to_string(next_commit_ + i)}, {"commit_id", std::to_string(group[i].commit)}});
    const auto before = writer_.stats();
    for (const auto& rec : group)
      if (auto r = writer_.append_replicated(rec.framed, rec.commit, rec.segment); !r) return r;
    if (auto r = writer_.sync(); !r) return r;
    const auto after = writer_.stats();
    metrics_.wal_bytes.add(after.bytes_appended - before.bytes_appended);
    metrics_.wal_records.add(group.size());
    metrics_.wal_write_calls.add(after.write_calls - before.write_calls);
    metrics_.group_commit_fsync_count.add(after.syncs - before.syncs);
    next_commit_ = group.back().commit + 1;
    std::size_t applied = 0;
    std::optional<error> failure;
    try {
      auto lock = store_.lock_exclusive();
      for (; applied < group.size(); ++applied) {
        if (auto r = apply(store_, applied); !r) {
          failure = std::move(r).error_value();
          break;
        }
      }
    } catch (const std::bad_alloc&) {
      failure = error(errc::storage_read_only,
                      "out of memory while applying a replicated record; this instance accepts no more "
                      "records (reopen to recover)");
    }
    if (applied > 0) store_.publish(group[applied - 1].commit);
    if (failure) {
      writer_.refuse_further_writes();
      return *failure;
    }
    return ok();
  }

  // ---- set up by recovery, before the pipeline is shared

  result<void> resume(std::uint64_t seq, const std::string& segment, std::uint64_t valid_end) {
    return writer_.resume(seq, segment, valid_end);
  }
  void set_next_segment_seq(std::uint64_t seq) { writer_.set_next_seq(seq); }
  void set_next_commit(commit_id c) { next_commit_ = c; }

 private:
  // A group between its write (W4-W6) and its finish (W7-W9).
  struct group_token {
    std::uint64_t seq = 0;                  // written order, from 1; 0: nothing written
    std::vector<commit_request*> accepted;  // the requests that took a CommitId
    std::uint64_t writes = 0;               // the writer's write calls once they were written
    std::optional<error> failure;           // the write failed: every accepted request fails
  };

  // What the FsyncPolicy's pipeline calls: it names the request and token types and runs
  // W4-W9 for a group, whole or in two parts. Private, so only this pipeline's policy
  // instance ever holds one.
  class sink {
   public:
    using commit_request = engine::commit_request;
    using group_token = commit_pipeline::group_token;
    explicit sink(commit_pipeline& owner) : owner_(owner) {}
    void commit_group(std::span<commit_request* const> group) noexcept {
      auto token = owner_.write_group(group);
      owner_.finish_group(token);
    }
    group_token write_group(std::span<commit_request* const> group) noexcept {
      return owner_.write_group(group);
    }
    void finish_group(group_token& token) noexcept { owner_.finish_group(token); }

   private:
    commit_pipeline& owner_;
  };

  // W4-W6 for a group, in order: requests that fail their checks get their error and take
  // no CommitId; the others are linked (invisible) and their records written with one call
  // per segment. Serialized by the FsyncPolicy (never twice at once) and by writer_mu_.
  group_token write_group(std::span<commit_request* const> group) noexcept {
    std::lock_guard wlock(writer_mu_);
    group_token token;
    try {
      write_group_locked(group, token);
    } catch (const std::bad_alloc&) {
      writer_.refuse_further_writes();
      for (commit_request* req : group) {
        if (req->failure) continue;
        req->commit = 0;
        req->failure = error(errc::storage_read_only,
                             "out of memory while committing; this commit is not acknowledged and "
                             "this instance accepts no more writes (reopen to recover)");
      }
      token.accepted.clear();
      token.failure.reset();
    }
    if (token.failure && !write_failure_) write_failure_ = token.failure;
    if (!token.accepted.empty()) token.seq = ++written_groups_;
    return token;
  }

  // REQUIRES: writer_mu_ held.
  void write_group_locked(std::span<commit_request* const> group, group_token& token) {
    format::byte_buffer framed;
    std::vector<wal::framed_record> layout;
    for (commit_request* req : group) {
      if (writer_.failed()) {
        req->failure = read_only_error();
        continue;
      }
      if (auto e = check(*req)) {  // W4
        req->failure = std::move(*e);
        continue;
      }
      if (req->type == format::record_type::write_batch &&
          std::none_of(req->applied.begin(), req->applied.end(), [](bool b) { return b; })) {
        req->commit = 0;  // only deletes of missing documents: nothing to write
        continue;
      }
      req->commit = next_commit_++;
      link(*req);  // W5
      const std::size_t offset = framed.size();
      format::append_record(framed, req->type, req->commit, req->payload, req->payload_crc);
      layout.push_back({offset, framed.size() - offset, req->commit});
      token.accepted.push_back(req);
    }
    if (token.accepted.empty()) return;

    const auto before = writer_.stats();
    auto written = writer_.append_group(framed, layout);  // W6
    const auto after = writer_.stats();
    metrics_.wal_bytes.add(after.bytes_appended - before.bytes_appended);
    metrics_.wal_records.add(after.records_appended - before.records_appended);
    metrics_.wal_write_calls.add(after.write_calls - before.write_calls);
    // Syncs the writer made itself (a segment left behind by a rotation, preallocation).
    metrics_.group_commit_fsync_count.add(after.syncs - before.syncs);
    if (!written) {
      token.failure = written.error_value();
      return;
    }
    token.writes = after.write_calls;
  }

  // A group between the start of its finish_group and its completion, on the stack of the
  // thread that finishes it and linked into finishing_ (in written order) meanwhile.
  struct finisher {
    explicit finisher(group_token& t) : token(&t) {}
    group_token* token;
    finisher* next = nullptr;  // guarded by finish_mu_
    bool done = false;         // its outcomes are set; guarded by finish_mu_
    std::condition_variable cv;  // waited on with finish_mu_
  };

  // W7-W9 for a group written by write_group. At most one fsync runs at a time, with no
  // lock held (so the next groups are written meanwhile), and it covers every write made
  // before it started: groups written while one fsync runs share the next one. Groups are
  // completed (W8, W9, their outcomes set) strictly in the order they were written, by
  // whichever finishing thread finds the next one durable, so each waiting thread is woken
  // once, when its own group is done. A group is acknowledged only after an fsync that
  // started after its write succeeded and every group written before it was acknowledged;
  // once a write or an fsync fails, that group and every later one not yet durable fail
  // (an fsync that succeeds after one that failed proves nothing about the pages the
  // failed one dropped).
  void finish_group(group_token& token) noexcept {
    if (token.seq == 0) return;  // nothing written: the outcomes are already set
    finisher me(token);
    std::unique_lock lock(finish_mu_);
    link_finisher(me);
    for (;;) {
      complete_ready(me);
      if (me.done) break;
      // The disk is idle and some group waits for it (this one, or one written after it
      // while this one waits for an earlier group's turn): sync now.
      if (!sync_running_ && first_unsettled()) {
        run_sync(lock);
        continue;
      }
      me.cv.wait(lock);
    }
    // A group that waits for an fsync nobody runs now is told to run it.
    if (!sync_running_) {
      if (finisher* f = first_unsettled()) f->cv.notify_one();
    }
  }

  // REQUIRES: finish_mu_ held.
  finisher* first_unsettled() const {
    for (finisher* f = finishing_; f; f = f->next)
      if (!settled(*f)) return f;
    return nullptr;
  }

  // REQUIRES: finish_mu_ held. Finishers are linked in written order; they arrive almost
  // in it (only the hand-off between two leaders separates them), so the walk is short.
  void link_finisher(finisher& f) {
    finisher** at = &finishing_;
    while (*at && (*at)->token->seq < f.token->seq) at = &(*at)->next;
    f.next = *at;
    *at = &f;
  }

  // REQUIRES: finish_mu_ held. Whether the group's outcome is decided: its write failed,
  // an fsync covered it, or an fsync (or the writer) failed before one did.
  bool settled(const finisher& f) const {
    return f.token->failure || durable_writes_ >= f.token->writes || sync_failure_;
  }

  // REQUIRES: finish_mu_ held. Completes, in written order, every linked group whose turn
  // has come and whose outcome is decided, and wakes the threads of those it completed.
  void complete_ready(finisher& me) {
    while (finishing_ && finishing_->token->seq == finished_groups_ + 1 && settled(*finishing_)) {
      finisher& f = *finishing_;
      finishing_ = f.next;
      complete(*f.token);
      ++finished_groups_;
      f.done = true;
      // Under finish_mu_: its owner cannot return (and destroy f) before this call ends.
      if (&f != &me) f.cv.notify_one();
    }
  }

  // One fsync of the active segment, covering every write made before it; runs with
  // finish_mu_ released. A rotation synced every segment before the active one
  // (wal_writer::append_group), unless it failed, and then the writer has failed: nothing
  // not yet durable is claimed durable after that.
  void run_sync(std::unique_lock<std::mutex>& lock) noexcept {
    sync_running_ = true;
    lock.unlock();
    std::shared_ptr<io::file> file;
    std::uint64_t target = 0;
    bool writer_failed = false;
    std::optional<error> writer_failure;
    {
      std::lock_guard wlock(writer_mu_);
      file = writer_.active_file();
      target = writer_.stats().write_calls;
      writer_failed = writer_.failed();
      if (writer_failed) writer_failure = write_failure_;
    }
    std::optional<error> failure;
    if (writer_failed || !file) {
      // The write that failed, or the rotation's sync: groups not yet durable fail with
      // its error (out of memory leaves none: then they are refused as read-only).
      failure = writer_failure ? std::move(writer_failure) : read_only_error();
    } else if (auto r = file->sync(); !r) {
      failure = wal::wal_writer::fsync_error(r.error_value());
    } else {
      std::lock_guard wlock(writer_mu_);
      writer_.synced_outside(file.get(), target);
      metrics_.group_commit_fsync_count.add();
    }
    lock.lock();
    sync_running_ = false;
    if (failure) {
      if (!sync_failure_) sync_failure_ = std::move(failure);
    } else {
      durable_writes_ = std::max(durable_writes_, target);
    }
  }

  // W8-W9 for a group whose outcome is decided, or its failure. REQUIRES: finish_mu_ held,
  // every group written before it completed.
  void complete(group_token& token) noexcept {
    std::optional<error> failure = std::move(token.failure);
    if (!failure && durable_writes_ < token.writes) failure = sync_failure_;
    std::lock_guard wlock(writer_mu_);
    if (failure) {
      writer_.refuse_further_writes();
      if (!first_failure_) first_failure_ = *failure;
    }
    if (first_failure_) {
      // Nothing of the group is acknowledged: its versions stay linked but are never
      // published, and the writer refuses everything from now on.
      for (commit_request* req : token.accepted) {
        req->failure = *first_failure_;
        req->commit = 0;
      }
      return;
    }
    try {
      publish_locked(token.accepted);
    } catch (const std::bad_alloc&) {
      writer_.refuse_further_writes();
      first_failure_ = error(errc::storage_read_only,
                             "out of memory while committing; this commit is not acknowledged and "
                             "this instance accepts no more writes (reopen to recover)");
      for (commit_request* req : token.accepted) {
        if (req->acknowledged) continue;
        req->failure = *first_failure_;
        req->commit = 0;
      }
    }
  }
  // W8 and W9 for a durable group. REQUIRES: writer_mu_ held (W4 of the next group reads
  // the store without its state lock, so W8's changes must not overlap it), and every
  // earlier group published.
  void publish_locked(const std::vector<commit_request*>& accepted) {
    metrics_.group_commit_groups.add();
    metrics_.group_commit_size_sum.add(accepted.size());
    metrics_.group_commit_size_max.raise_to(accepted.size());
    metrics_.group_commit_waiters.add(accepted.size() - 1);
    {
      // W8: derived state follows the durable record, before anyone can see it.
      auto lock = store_.lock_exclusive();
      for (commit_request* req : accepted) after_durable(*req);
    }
    for (commit_request* req : accepted) req->acknowledged = true;
    store_.publish(accepted.back()->commit);  // W9
  }

  // W4: checks against the newest (possibly unpublished) state. The pipeline is the only
  // writer of the store, so it reads without the state lock.
  std::optional<error> check(commit_request& req) {
    if (req.change) {
      if (auto r = store_.catalog().check(*req.change); !r) return std::move(r).error_value();
      return std::nullopt;
    }
    if (req.type != format::record_type::write_batch) return std::nullopt;
    req.applied.assign(req.ops.size(), true);
    bool any_noop = false;
    for (std::size_t i = 0; i < req.ops.size(); ++i) {
      const auto& op = req.ops[i];
      const auto* key = store_.catalog().find_collection(op.collection)->find_key(op.doc_id);
      const mvcc::version* newest = key ? key->newest() : nullptr;
      const bool exists = newest && !newest->tombstone();
      auto located = [&](error e) -> error {
        if (req.ops.size() > 1) return std::move(e).with("batch_op", std::to_string(i));
        return e;
      };
      // Checked here, against the newest state (earlier requests of the same group
      // included), so no other write can come between the check and this commit.
      if (i < req.based_on.size() && req.based_on[i]) {
        const commit_id current = newest ? newest->commit : 0;
        if (current != *req.based_on[i])
          return located(error(errc::write_conflict,
                               "the document changed after the version this write was based on",
                               {{"collection", op.collection},
                                {"_id", op.doc_id},
                                {"based_on", std::to_string(*req.based_on[i])},
                                {"current", std::to_string(current)}}));
      }
      switch (op.kind) {
        case format::write_kind::insert:
          if (exists)
            return located(error(errc::document_exists, "a document with this _id exists",
                                 {{"collection", op.collection}, {"_id", op.doc_id}}));
          break;
        case format::write_kind::update:
          if (!exists)
            return located(error(errc::document_not_found, "no document with this _id to update",
                                 {{"collection", op.collection}, {"_id", op.doc_id}}));
          break;
        case format::write_kind::remove:
          if (!exists) {
            req.applied[i] = false;
            any_noop = true;
          }
          break;
      }
    }
    // A batch of nothing but no-ops writes nothing, so its payload is left as it is.
    if (any_noop && std::any_of(req.applied.begin(), req.applied.end(), [](bool b) { return b; }))
      drop_noop_ops(req);
    return std::nullopt;
  }

  // W5: the versions and catalog entries exist from now on, invisible until the CommitId
  // is published. A catalog change was checked at W4 and cannot fail here.
  void link(commit_request& req) {
    auto lock = store_.lock_exclusive();
    if (req.change) {
      (void)store_.catalog().apply(*req.change, req.commit);
      return;
    }
    if (req.type != format::record_type::write_batch) return;
    for (std::size_t i = 0; i < req.ops.size(); ++i) {
      if (!req.applied[i]) continue;
      auto& op = req.ops[i];
      store_.link(*store_.catalog().find_collection(op.collection), op.doc_id, req.commit, op.kind,
                  op.schema_version, op.doc);
    }
  }

  // W8. REQUIRES: the state lock held exclusively.
  void after_durable(commit_request& req) {
    switch (req.type) {
      case format::record_type::write_batch:
        if constexpr (indexer<IndexPolicy>::sorts_commit_entries) {
          // The batch's entries go in in index order (indexer::sorts_commit_entries).
          std::vector<typename indexer<IndexPolicy>::commit_entry> entries;
          for (std::size_t i = 0; i < req.ops.size(); ++i) {
            if (!req.applied[i] || req.ops[i].kind == format::write_kind::remove) continue;
            auto& c = *store_.catalog().find_collection(req.ops[i].collection);
            indexer<IndexPolicy>::gather_commit(c, *c.find_key(req.ops[i].doc_id), req.commit, entries);
          }
          indexer<IndexPolicy>::insert_gathered(entries);
        } else {
          for (std::size_t i = 0; i < req.ops.size(); ++i) {
            if (!req.applied[i] || req.ops[i].kind == format::write_kind::remove) continue;
            auto& c = *store_.catalog().find_collection(req.ops[i].collection);
            indexer<IndexPolicy>::index_commit(c, *c.find_key(req.ops[i].doc_id), req.commit);
          }
        }
        return;
      case format::record_type::index_create: {
        const auto& ix = std::get<format::index_create_record>(*req.change);
        auto& c = *store_.catalog().find_collection(ix.collection);
        indexer<IndexPolicy>::build(c, ix.path, *c.indexes.find(ix.path)->second, metrics_);
        return;
      }
      case format::record_type::gc:
        req.gc_result = collector<IndexPolicy, MemoryLayout>::collect(store_, req.gc_floor);
        req.gc_result.floor = req.gc_floor;
        return;
      default:
        return;
    }
  }

  store_type& store_;
  metrics_registry& metrics_;
  mutable std::mutex writer_mu_;  // guards writer_, next_commit_, written_groups_, first_failure_,
                                  // write_failure_
  wal::wal_writer writer_;
  commit_id next_commit_ = 1;
  std::uint64_t written_groups_ = 0;     // groups written so far (their token seq)
  std::optional<error> first_failure_;   // the first failed write or fsync of a group
  std::optional<error> write_failure_;   // the first failed write_group (its write or rotation)
  // The finishing of groups (finish_group): guarded by finish_mu_.
  std::mutex finish_mu_;
  finisher* finishing_ = nullptr;      // groups being finished, in written order
  std::uint64_t finished_groups_ = 0;  // groups completed so far (published or failed)
  bool sync_running_ = false;          // a thread is in run_sync
  std::uint64_t durable_writes_ = 0;   // every write call up to this one is durable
  std::optional<error> sync_failure_;  // a failed fsync or writer: nothing later is durable
  sink sink_;
  typename FsyncPolicy::template pipeline<sink> policy_;
};

}  // namespace aerodb::engine
