// A commit request: what steps W1-W3 of the write path (docs/architecture.md) prepare on
// the caller's thread, and what the commit pipeline fills in (W4-W9): one request per
// logical commit, one log record per request.
//
// Also prepare_batch, steps W1-W3 for a write batch: parse the JSON and enforce the
// document limits (W1), find the collection and schema version and validate strictly
// (W2), encode each document and serialize the record payload (W3; its CRC32C is taken by
// the pipeline's submit, still on the caller's thread). A batch holding a remove also
// keeps each op's byte range and CRC32C, so that W4 can drop the deletes of missing
// documents from the payload without re-encoding it (drop_noop_ops).
//
// Thread safety: a request belongs to its caller until submit() returns; the pipeline
// touches it only while the caller waits in submit(). prepare_batch takes the version
// store's state lock shared, per operation, only to look the catalog up; asked for more
// than one thread, it prepares a large batch's operations on helper threads too, each
// operation on one thread, and joins them all before it returns.
#pragma once

#include <aerodb/detail/share_work.hpp>
#include <aerodb/document/document.hpp>
#include <aerodb/engine/catalog.hpp>
#include <aerodb/engine/errors.hpp>
#include <aerodb/error.hpp>
#include <aerodb/format/wal_format.hpp>
#include <aerodb/io/crc32c.hpp>
#include <aerodb/mvcc/version.hpp>
#include <aerodb/options.hpp>
#include <aerodb/outcomes.hpp>
#include <aerodb/write_batch.hpp>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace aerodb::engine {

struct prepared_op {
  format::write_kind kind;
  std::string collection;
  std::string doc_id;
  std::uint32_t schema_version = 0;
  std::shared_ptr<const mvcc::payload::buffer> doc;  // null for a remove
};

struct commit_request {
  format::record_type type = format::record_type::write_batch;
  std::vector<prepared_op> ops;            // write_batch
  // write_batch: the CommitId each conditional operation was based on, by the index of
  // ops as prepared (write_batch::op::based_on); empty when none is conditional.
  std::vector<std::optional<commit_id>> based_on;
  std::optional<catalog_change> change;    // schema_register, collection_create, index_create
  commit_id gc_floor = 0;                  // gc
  gc_outcome gc_result;                    // gc, filled in at W8
  format::byte_buffer payload;
  // From submit() on, `payload` holds the record body in its stored, complemented form
  // (format/wal_format.hpp), and payload_crc is format::stored_payload_crc of it, both made
  // on the caller's thread.
  std::uint32_t payload_crc = 0;
  // A write_batch holding a remove (the only kind W4 may turn into a no-op): op i's bytes
  // in `payload` end at op_ends[i] (and start at op_ends[i - 1], or 4 for the first), and
  // op_crcs[i] is their CRC32C. Both taken on the caller's thread, so W4 can drop no-op
  // deletes without encoding or checksumming anything again (drop_noop_ops). Empty
  // otherwise. op_crcs are checksums of the ops' stored (complemented) bytes.
  std::vector<std::uint32_t> op_ends;
  std::vector<std::uint32_t> op_crcs;
  // Outcome, filled in by the commit pipeline.
  bool acknowledged = false;
  std::optional<error> failure;
  commit_id commit = 0;
  std::vector<bool> applied;  // write_batch: false only for deletes of missing documents
};

// The record payload holds at most max_record_payload bytes, so op_ends fit 32 bits.
static_assert(format::max_record_payload <= std::numeric_limits<std::uint32_t>::max());

// The write_batch record payload of `ops`, leaving out those `applied` marks as no-ops.
// With `op_ends`, appends where each written op's bytes end. This function is the
// definition of the payload; drop_noop_ops must produce exactly its bytes.
inline format::byte_buffer encode_batch_payload(const std::vector<prepared_op>& ops,
                                                const std::vector<bool>* applied,
                                                std::vector<std::uint32_t>* op_ends = nullptr) {
  std::uint32_t count = 0;
  std::size_t size = 4;
  for (std::size_t i = 0; i < ops.size(); ++i) {
    if (applied && !(*applied)[i]) continue;
    ++count;
    size += format::write_op_size(ops[i].kind, ops[i].collection.size(), ops[i].doc_id.size(),
                                  ops[i].doc ? ops[i].doc->size() : 0);
  }
  format::byte_buffer out;
  out.reserve(size);
  format::put_le<std::uint32_t>(out, count);
  for (std::size_t i = 0; i < ops.size(); ++i) {
    if (applied && !(*applied)[i]) continue;
    const auto& op = ops[i];
    format::encode_write_op(out, op.kind, op.collection, op.doc_id, op.schema_version,
                            op.doc ? std::span<const std::byte>(*op.doc) : std::span<const std::byte>());
    if (op_ends) op_ends->push_back(static_cast<std::uint32_t>(out.size()));
  }
  return out;
}

// The CRC32C of each op's bytes as the log stores them (complemented), in a plain
// write_batch payload whose ops end at `op_ends`.
inline std::vector<std::uint32_t> op_checksums(std::span<const std::byte> payload,
                                               const std::vector<std::uint32_t>& op_ends) {
  std::vector<std::uint32_t> out;
  out.reserve(op_ends.size());
  std::array<std::byte, 512> chunk;
  std::size_t begin = 4;
  for (const std::uint32_t end : op_ends) {
    std::uint32_t crc = crc32c::value(std::span<const std::byte>());
    for (std::size_t at = begin; at < end; at += chunk.size()) {
      const std::size_t n = std::min<std::size_t>(chunk.size(), end - at);
      std::copy_n(payload.begin() + static_cast<std::ptrdiff_t>(at), n, chunk.begin());
      format::complement(std::span(chunk).first(n));
      crc = crc32c::extend(crc, std::span<const std::byte>(chunk).first(n));
    }
    out.push_back(crc);
    begin = end;
  }
  return out;
}

// Ops at least this long get their checksum folded in by drop_noop_ops rather than
// recomputed: a fixed choice between two ways to compute the same value, never adjusted.
inline constexpr std::size_t combine_min_op_bytes = 1024;

// W4's edit of a batch whose deletes of missing documents turned out to be no-ops: the
// stored payload becomes, in place, byte for byte the complement of
// encode_batch_payload(ops, &applied) (the kept ops' bytes moved down over the dropped
// ones, the count patched), and payload_crc format::stored_payload_crc of it: the checksum of an op of combine_min_op_bytes or more is folded in with
// crc32c::combine from prepare_batch's per-op checksum, a shorter op's bytes are
// checksummed again (cheaper than the combine). No document is encoded again and nothing
// is allocated; the work is a move of the kept bytes.
// REQUIRES: req.op_ends and req.op_crcs filled by prepare_batch for this payload, and the
// payload in its stored form (submit() made it); req.applied.size() == req.ops.size().
inline void drop_noop_ops(commit_request& req) {
  std::byte* const base = req.payload.data();
  std::uint32_t kept = 0;
  for (std::size_t i = 0; i < req.ops.size(); ++i) kept += req.applied[i] ? 1 : 0;
  format::store_le<std::uint32_t>(base, kept);
  format::complement(std::span<std::byte>(base, 4));
  std::uint32_t crc = crc32c::value(std::span<const std::byte>(base, 4));
  std::size_t write = 4, begin = 4;
  for (std::size_t i = 0; i < req.ops.size(); ++i) {
    const std::size_t end = req.op_ends[i];
    if (req.applied[i]) {
      const std::size_t len = end - begin;
      if (write != begin) std::memmove(base + write, base + begin, len);
      // Either way the same value (crc32c.hpp); combine costs a fixed ~1,000 instructions,
      // extend about one per byte without SSE4.2 and far less with it.
      crc = len >= combine_min_op_bytes
                ? crc32c::combine(crc, req.op_crcs[i], len)
                : crc32c::extend(crc, std::span<const std::byte>(base + write, len));
      write += len;
    }
    begin = end;
  }
  req.payload.resize(write);
  req.payload_crc = format::seal_payload_crc(crc);
}

// Steps W1-W2 and the document's encoding for one operation (op number `index` of
// `batch`), outside every engine lock but the state lock held shared for its catalog
// look-up.
template <class Store>
result<prepared_op> prepare_op(const write_batch& batch, const write_batch::op& op, std::size_t index,
                               const open_options& options, const Store& store) {
  auto at = [&](error e) -> error {
    if (batch.size() > 1) return std::move(e).with("batch_op", std::to_string(index));
    return e;
  };
  prepared_op p{op.kind, op.collection, op.doc_id, op.schema_version, nullptr};
  const schema* s = nullptr;
  {
    auto lock = store.lock_shared();
    const auto* c = store.catalog().find_collection(op.collection);
    if (!c) return at(error(errc::collection_unknown, "no such collection", {{"collection", op.collection}}));
    if (op.kind != format::write_kind::remove) {
      if (op.schema_version == 0)
        return at(error(errc::schema_version_required,
                        "a write must name the schema version its document follows",
                        {{"collection", op.collection}}));
      const auto* entry = store.catalog().find_schema(c->schema_id, op.schema_version);
      if (!entry)
        return at(error(errc::unknown_schema_version, "this schema version is not registered",
                        {{"schema_id", c->schema_id}, {"version", std::to_string(op.schema_version)}}));
      s = entry->def.get();  // schemas are never removed: the pointer stays valid
    }
  }
  if (op.kind == format::write_kind::remove) {
    if (auto r = check_id_argument(op.doc_id, options.limits); !r) return at(std::move(r).error_value());
  } else {
    auto value = parse_json(op.json, options.limits);
    if (!value) return at(std::move(value).error_value());
    if (auto r = check_document_shape(*value, options.limits); !r) return at(std::move(r).error_value());
    if (auto r = s->validate(value->as_object()); !r) return at(std::move(r).error_value());
    auto doc = encode_shape_checked_document(*value, options.limits);  // shape checked above
    if (!doc) return at(std::move(doc).error_value());
    std::string doc_id(doc->id());
    if (op.kind == format::write_kind::update) {
      if (auto r = check_id_argument(op.doc_id, options.limits); !r) return at(std::move(r).error_value());
      if (doc_id != op.doc_id)
        return at(error(errc::document_id_immutable, "an update cannot change a document's _id",
                        {{"_id", op.doc_id}, {"new_id", doc_id}}));
    }
    p.doc_id = std::move(doc_id);
    p.doc = doc->buffer();
  }
  return p;
}

// A batch with fewer operations than this is prepared on the caller's thread alone:
// starting a thread costs tens of microseconds, about what a hundred documents take to
// parse, validate and encode.
inline constexpr std::size_t parallel_prepare_min_ops = 256;
// Threads take a batch's operations in chunks of this many, the next chunk not taken yet,
// so a helper that starts late (or not at all) leaves its share to the others.
inline constexpr std::size_t prepare_chunk_ops = 32;

// Prepares operations [first, last) of `batch` into out[first, last), stopping at the
// first that fails; returns that failure (the lowest failing index of the range).
template <class Store>
std::optional<error> prepare_range(const write_batch& batch, std::size_t first, std::size_t last,
                                   const open_options& options, const Store& store, std::vector<prepared_op>& out) {
  for (std::size_t i = first; i < last; ++i) {
    auto p = prepare_op(batch, batch.ops()[i], i, options, store);
    if (!p) return std::move(p).error_value();
    out[i] = std::move(*p);
  }
  return std::nullopt;
}

// Steps W1-W3 for a batch, outside every engine lock but the state lock held shared for
// each catalog look-up. With threads > 1 (FsyncPolicy::parallel_prepare) the operations
// of a large batch are prepared in chunks by up to that many threads at once; the
// operations are independent, and the failure reported is the one of the lowest index,
// the one a single thread finds first, so the request or the error is the same whatever
// the count.
template <class Store>
result<commit_request> prepare_batch(const write_batch& batch, const open_options& options,
                                     const Store& store, std::size_t threads = 1) {
  if (batch.empty()) return error(errc::batch_empty, "a write batch needs at least one operation");
  if (batch.size() > options.max_batch_ops)
    return error(errc::batch_too_large, "the write batch holds too many operations",
                 {{"ops", std::to_string(batch.size())}, {"limit", std::to_string(options.max_batch_ops)}});
  commit_request req;
  req.type = format::record_type::write_batch;
  const auto& ops = batch.ops();
  for (std::size_t i = 0; i < ops.size(); ++i)
    if (ops[i].based_on) {
      req.based_on.resize(batch.size());
      req.based_on[i] = ops[i].based_on;
    }
  req.ops.resize(ops.size());
  if (threads > 1 && ops.size() >= parallel_prepare_min_ops) {
    const std::size_t chunks = (ops.size() + prepare_chunk_ops - 1) / prepare_chunk_ops;
    std::vector<std::optional<error>> failures(chunks);  // each chunk's first failure
    detail::share_items(threads - 1, chunks, [&](std::size_t c) {
      failures[c] = prepare_range(batch, c * prepare_chunk_ops, std::min(ops.size(), (c + 1) * prepare_chunk_ops),
                                  options, store, req.ops);
    });
    for (auto& failure : failures)
      if (failure) return std::move(*failure);
  } else if (auto failure = prepare_range(batch, 0, ops.size(), options, store, req.ops)) {
    return std::move(*failure);
  }
  if (req.ops.size() > 1) {  // one operation cannot repeat a key
    std::set<std::pair<std::string_view, std::string_view>> seen;
    for (std::size_t i = 0; i < req.ops.size(); ++i) {
      if (!seen.insert({req.ops[i].collection, req.ops[i].doc_id}).second)
        return error(errc::batch_duplicate_key,
                     "a batch may touch each document once; merge the operations on this _id",
                     {{"collection", req.ops[i].collection}, {"_id", req.ops[i].doc_id},
                      {"batch_op", std::to_string(i)}});
    }
  }
  const bool has_remove = std::any_of(req.ops.begin(), req.ops.end(), [](const prepared_op& o) {
    return o.kind == format::write_kind::remove;
  });
  if (has_remove) req.op_ends.reserve(req.ops.size());
  req.payload = encode_batch_payload(req.ops, nullptr, has_remove ? &req.op_ends : nullptr);
  if (req.payload.size() > format::max_record_body)
    return error(errc::wal_record_too_large, "the write batch is larger than one log record may be",
                 {{"bytes", std::to_string(req.payload.size())},
                  {"limit", std::to_string(format::max_record_body)}});
  if (has_remove) req.op_crcs = op_checksums(req.payload, req.op_ends);
  return req;
}

}  // namespace aerodb::engine
