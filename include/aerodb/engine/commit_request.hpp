// A commit request: what steps W1-W3 of the write path (docs/architecture.md) prepare on
// the caller's thread, and what the commit pipeline fills in (W4-W9): one request per
// logical commit, one log record per request.
//
// Also prepare_batch, steps W1-W3 for a write batch: parse the JSON and enforce the
// document limits (W1), find the collection and schema version and validate strictly
// (W2), encode each document and serialize the record payload (W3; its CRC32C is taken by
// the pipeline's submit, still on the caller's thread).
//
// Thread safety: a request belongs to its caller until submit() returns; the pipeline
// touches it only while the caller waits in submit(). prepare_batch takes the version
// store's state lock shared, per operation, only to look the catalog up.
#pragma once

#include <aerodb/document/document.hpp>
#include <aerodb/engine/catalog.hpp>
#include <aerodb/engine/errors.hpp>
#include <aerodb/error.hpp>
#include <aerodb/format/wal_format.hpp>
#include <aerodb/mvcc/version.hpp>
#include <aerodb/options.hpp>
#include <aerodb/outcomes.hpp>
#include <aerodb/write_batch.hpp>

#include <cstdint>
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
  std::optional<catalog_change> change;    // schema_register, collection_create, index_create
  commit_id gc_floor = 0;                  // gc
  gc_outcome gc_result;                    // gc, filled in at W8
  format::byte_buffer payload;
  std::uint32_t payload_crc = 0;  // CRC32C of payload, computed on the caller's thread
  // Outcome, filled in by the commit pipeline.
  bool acknowledged = false;
  std::optional<error> failure;
  commit_id commit = 0;
  std::vector<bool> applied;  // write_batch: false only for deletes of missing documents
};

// The write_batch record payload of `ops`, leaving out those `applied` marks as no-ops.
inline format::byte_buffer encode_batch_payload(const std::vector<prepared_op>& ops,
                                                const std::vector<bool>* applied) {
  std::uint32_t count = 0;
  for (std::size_t i = 0; i < ops.size(); ++i) count += (!applied || (*applied)[i]) ? 1 : 0;
  format::byte_buffer out;
  format::put_le<std::uint32_t>(out, count);
  for (std::size_t i = 0; i < ops.size(); ++i) {
    if (applied && !(*applied)[i]) continue;
    const auto& op = ops[i];
    format::write_op_record rec{op.kind, op.collection, op.doc_id, op.schema_version,
                                op.doc ? std::span<const std::byte>(*op.doc) : std::span<const std::byte>()};
    format::encode_write_op(out, rec);
  }
  return out;
}

// Steps W1-W3 for a batch, outside every engine lock but the state lock held shared for
// each catalog look-up.
template <class Store>
result<commit_request> prepare_batch(const write_batch& batch, const open_options& options,
                                     const Store& store) {
  if (batch.empty()) return error(errc::batch_empty, "a write batch needs at least one operation");
  if (batch.size() > options.max_batch_ops)
    return error(errc::batch_too_large, "the write batch holds too many operations",
                 {{"ops", std::to_string(batch.size())}, {"limit", std::to_string(options.max_batch_ops)}});
  commit_request req;
  req.type = format::record_type::write_batch;
  req.ops.reserve(batch.size());
  std::size_t index = 0;
  for (const auto& op : batch.ops()) {
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
      auto doc = encode_document(*value, options.limits);
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
    req.ops.push_back(std::move(p));
    ++index;
  }
  std::set<std::pair<std::string_view, std::string_view>> seen;
  for (std::size_t i = 0; i < req.ops.size(); ++i) {
    if (!seen.insert({req.ops[i].collection, req.ops[i].doc_id}).second)
      return error(errc::batch_duplicate_key,
                   "a batch may touch each document once; merge the operations on this _id",
                   {{"collection", req.ops[i].collection}, {"_id", req.ops[i].doc_id},
                    {"batch_op", std::to_string(i)}});
  }
  req.payload = encode_batch_payload(req.ops, nullptr);
  if (req.payload.size() > format::max_record_payload)
    return error(errc::wal_record_too_large, "the write batch is larger than one log record may be",
                 {{"bytes", std::to_string(req.payload.size())},
                  {"limit", std::to_string(format::max_record_payload)}});
  return req;
}

}  // namespace aerodb::engine
