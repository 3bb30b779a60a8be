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
// The FsyncPolicy decides how requests form groups; it is handed a private sink whose
// commit_group runs W4-W9, so nothing outside this class can reach those steps, and the
// policy guarantees commit_group never runs twice at once.
//
// A failed append or fsync is FATAL: nothing of that group is acknowledged or published,
// and the pipeline refuses every later write (SPEC_DIGEST §3). Reopening the directory
// decides from the log what survived. Running out of memory part-way is treated the same.
//
// Thread safety: submit() from any number of threads. The writer's lock guards the log
// writer and the next CommitId; the version store's state lock is taken exclusively only
// at W5 and W8, never across I/O.
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
#include <mutex>
#include <new>
#include <optional>
#include <span>
#include <string>
#include <variant>
#include <vector>

namespace aerodb::engine {

template <class FsyncPolicy, class IndexPolicy>
class commit_pipeline {
 public:
  using store_type = version_store<IndexPolicy>;

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
    req.payload_crc = crc32c::value(req.payload);
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

  // ---- set up by recovery, before the pipeline is shared

  result<void> resume(std::uint64_t seq, const std::string& segment, std::uint64_t valid_end) {
    return writer_.resume(seq, segment, valid_end);
  }
  void set_next_segment_seq(std::uint64_t seq) { writer_.set_next_seq(seq); }
  void set_next_commit(commit_id c) { next_commit_ = c; }

 private:
  // What the FsyncPolicy's pipeline calls: it names the request type and runs W4-W9 for
  // a group. Private, so only this pipeline's policy instance ever holds one.
  class sink {
   public:
    using commit_request = engine::commit_request;
    explicit sink(commit_pipeline& owner) : owner_(owner) {}
    void commit_group(std::span<commit_request* const> group) noexcept { owner_.commit_group(group); }

   private:
    commit_pipeline& owner_;
  };

  // Handles a group of requests in order. Requests that fail their checks get their error
  // and take no CommitId; the others are written, synced once, then published together.
  void commit_group(std::span<commit_request* const> group) noexcept {
    std::lock_guard wlock(writer_mu_);
    try {
      commit_group_locked(group);
    } catch (const std::bad_alloc&) {
      writer_.refuse_further_writes();
      for (commit_request* req : group) {
        if (req->failure || (req->commit != 0 && req->acknowledged)) continue;
        req->commit = 0;
        req->failure = error(errc::storage_read_only,
                             "out of memory while committing; this commit is not acknowledged and "
                             "this instance accepts no more writes (reopen to recover)");
      }
    }
  }

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
      accepted.push_back(req);
    }
    if (accepted.empty()) return;

    const auto before = writer_.stats();
    auto written = writer_.append_group(framed, layout);  // W6
    if (written) written = writer_.sync();                // W7
    const auto after = writer_.stats();
    metrics_.wal_bytes.add(after.bytes_appended - before.bytes_appended);
    metrics_.wal_records.add(after.records_appended - before.records_appended);
    metrics_.wal_write_calls.add(after.write_calls - before.write_calls);
    if (!written) {
      // Nothing of the group is acknowledged: its versions stay linked but are never
      // published, and the writer refuses everything from now on.
      for (commit_request* req : accepted) {
        req->failure = written.error_value();
        req->commit = 0;
      }
      return;
    }
    metrics_.group_commit_fsync_count.add(after.syncs - before.syncs);
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
        for (std::size_t i = 0; i < req.ops.size(); ++i) {
          if (!req.applied[i] || req.ops[i].kind == format::write_kind::remove) continue;
          auto& c = *store_.catalog().find_collection(req.ops[i].collection);
          indexer<IndexPolicy>::index_commit(c, *c.find_key(req.ops[i].doc_id), req.commit);
        }
        return;
      case format::record_type::index_create: {
        const auto& ix = std::get<format::index_create_record>(*req.change);
        auto& c = *store_.catalog().find_collection(ix.collection);
        indexer<IndexPolicy>::build(c, ix.path, *c.indexes.find(ix.path)->second, metrics_);
        return;
      }
      case format::record_type::gc:
        req.gc_result = collector<IndexPolicy>::collect(store_, req.gc_floor);
        req.gc_result.floor = req.gc_floor;
        return;
      default:
        return;
    }
  }

  store_type& store_;
  metrics_registry& metrics_;
  mutable std::mutex writer_mu_;  // guards writer_ and next_commit_ (held by commit_group)
  wal::wal_writer writer_;
  commit_id next_commit_ = 1;
  sink sink_;
  typename FsyncPolicy::template pipeline<sink> policy_;
};

}  // namespace aerodb::engine
