// The errors the engine's rooms share: refusals of a whole instance, and the check of a
// document _id named as an argument. (Every code is listed in docs/errors.md.)
//
// Thread safety: plain functions.
#pragma once

#include <aerodb/document/limits.hpp>
#include <aerodb/error.hpp>

#include <string>
#include <string_view>

namespace aerodb::engine {

// Every write after a failed log append or fsync (SPEC_DIGEST §3: never retry an fsync).
inline error read_only_error() {
  return error(errc::storage_read_only,
               "this instance refuses writes after a failed write-ahead log append or fsync; "
               "reopen the directory to recover");
}

// Every write to an instance opened by open_snapshot.
inline error snapshot_read_only_error() {
  return error(errc::storage_read_only, "a snapshot opened read-only accepts no writes");
}

inline error invalid_id(std::string_view doc_id, std::string reason) {
  return error(errc::document_invalid_id, "invalid document _id: " + reason,
               {{"_id", std::string(doc_id.substr(0, 200))}, {"reason", reason}});
}

// An _id named by an update or a delete: 1 to max_id_bytes of UTF-8, no control characters.
inline result<void> check_id_argument(std::string_view doc_id, const document_limits& limits) {
  if (doc_id.empty()) return invalid_id(doc_id, "empty");
  if (doc_id.size() > limits.max_id_bytes)
    return invalid_id(doc_id, "too long").with("limit", std::to_string(limits.max_id_bytes));
  for (const char c : doc_id)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F) return invalid_id(doc_id, "control character");
  if (!valid_utf8(doc_id)) return invalid_id(doc_id, "not valid UTF-8");
  return ok();
}

}  // namespace aerodb::engine
