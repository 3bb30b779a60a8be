// An atomic write batch: operations on several documents, possibly in several
// collections, committed under one CommitId or not at all.
//
// Thread safety: a value; build it in one thread, commit it from any.
#pragma once

#include <aerodb/commit_id.hpp>
#include <aerodb/format/wal_format.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace aerodb {

// Several writes, possibly to several collections, committed as one CommitId: either all
// of them become durable and visible together, or none does.
class write_batch {
 public:
  struct op {
    format::write_kind kind;
    std::string collection;
    std::string doc_id;  // update and remove
    std::uint32_t schema_version = 0;
    std::string json;  // insert and update
    // Conditional update or remove: the CommitId of the version it was based on (the
    // `committed_at` the caller read). The operation, and so the whole batch, fails with
    // AERO_WRITE_CONFLICT if the document's newest version (a deletion included, until GC
    // reclaims it; 0 for a document that never existed or whose deletion GC reclaimed)
    // was committed at any other CommitId.
    std::optional<commit_id> based_on;
  };
  write_batch& insert(std::string collection, std::uint32_t schema_version, std::string json) {
    ops_.push_back({format::write_kind::insert, std::move(collection), {}, schema_version,
                    std::move(json), std::nullopt});
    return *this;
  }
  write_batch& update(std::string collection, std::string doc_id, std::uint32_t schema_version,
                      std::string json) {
    ops_.push_back({format::write_kind::update, std::move(collection), std::move(doc_id),
                    schema_version, std::move(json), std::nullopt});
    return *this;
  }
  write_batch& remove(std::string collection, std::string doc_id) {
    ops_.push_back({format::write_kind::remove, std::move(collection), std::move(doc_id), 0, {},
                    std::nullopt});
    return *this;
  }
  // update() and remove() that apply only if the document is still at the version
  // committed at `based_on` (see op::based_on): the read-modify-write of a careful caller,
  // which retries on AERO_WRITE_CONFLICT instead of overwriting a concurrent change.
  write_batch& update_if(std::string collection, std::string doc_id, commit_id based_on,
                         std::uint32_t schema_version, std::string json) {
    update(std::move(collection), std::move(doc_id), schema_version, std::move(json));
    ops_.back().based_on = based_on;
    return *this;
  }
  write_batch& remove_if(std::string collection, std::string doc_id, commit_id based_on) {
    remove(std::move(collection), std::move(doc_id));
    ops_.back().based_on = based_on;
    return *this;
  }
  const std::vector<op>& ops() const noexcept { return ops_; }
  std::size_t size() const noexcept { return ops_.size(); }
  bool empty() const noexcept { return ops_.empty(); }
  void clear() noexcept { ops_.clear(); }

 private:
  std::vector<op> ops_;
};

}  // namespace aerodb
