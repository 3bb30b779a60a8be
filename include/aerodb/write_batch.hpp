// An atomic write batch: operations on several documents, possibly in several
// collections, committed under one CommitId or not at all.
//
// Thread safety: a value; build it in one thread, commit it from any.
#pragma once

#include <aerodb/format/wal_format.hpp>

#include <cstdint>
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
  };
  write_batch& insert(std::string collection, std::uint32_t schema_version, std::string json) {
    ops_.push_back({format::write_kind::insert, std::move(collection), {}, schema_version,
                    std::move(json)});
    return *this;
  }
  write_batch& update(std::string collection, std::string doc_id, std::uint32_t schema_version,
                      std::string json) {
    ops_.push_back({format::write_kind::update, std::move(collection), std::move(doc_id),
                    schema_version, std::move(json)});
    return *this;
  }
  write_batch& remove(std::string collection, std::string doc_id) {
    ops_.push_back({format::write_kind::remove, std::move(collection), std::move(doc_id), 0, {}});
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
