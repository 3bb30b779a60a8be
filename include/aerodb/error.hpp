// Errors and results for every storage path.
//
// Storage paths never throw: they return `result<T>`, which holds either a value or an
// `error` carrying a stable `AERO_*` code, a severity, a message and key/value details.
// Exceptions are reserved for programmer misuse (e.g. calling value() on an error) and
// allocation failure.
//
// The list below is the single source of every code; docs/errors.md documents each one
// and a test checks that the document names them all.
//
// Thread safety: all types here are values; distinct objects may be used concurrently.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace aerodb {

enum class severity : std::uint8_t {
  fatal,   // the instance must stop serving (failed fsync, corruption found at recovery)
  error,   // the operation failed; state is unchanged
  reject,  // the caller's request is invalid; state is unchanged
  bug,     // an internal invariant was broken
};

// X(enum_name, "AERO_CODE", severity)
#define AERODB_ERROR_CODES(X)                                                        \
  X(config_invalid, "AERO_CONFIG_INVALID", reject)                                   \
  X(unknown_schema, "AERO_UNKNOWN_SCHEMA", reject)                                   \
  X(unknown_schema_version, "AERO_UNKNOWN_SCHEMA_VERSION", reject)                   \
  X(schema_validation_failed, "AERO_SCHEMA_VALIDATION_FAILED", reject)               \
  X(schema_immutable, "AERO_SCHEMA_IMMUTABLE", reject)                               \
  X(schema_version_required, "AERO_SCHEMA_VERSION_REQUIRED", reject)                 \
  X(schema_invalid, "AERO_SCHEMA_INVALID", reject)                                   \
  X(collection_unknown, "AERO_COLLECTION_UNKNOWN", reject)                           \
  X(collection_exists, "AERO_COLLECTION_EXISTS", reject)                             \
  X(collection_invalid_name, "AERO_COLLECTION_INVALID_NAME", reject)                 \
  X(document_malformed_json, "AERO_DOCUMENT_MALFORMED_JSON", reject)                 \
  X(document_not_object, "AERO_DOCUMENT_NOT_OBJECT", reject)                         \
  X(document_too_large, "AERO_DOCUMENT_TOO_LARGE", reject)                           \
  X(document_too_deep, "AERO_DOCUMENT_TOO_DEEP", reject)                             \
  X(document_field_name_invalid, "AERO_DOCUMENT_FIELD_NAME_INVALID", reject)         \
  X(document_number_out_of_range, "AERO_DOCUMENT_NUMBER_OUT_OF_RANGE", reject)       \
  X(document_invalid_id, "AERO_DOCUMENT_INVALID_ID", reject)                         \
  X(document_id_immutable, "AERO_DOCUMENT_ID_IMMUTABLE", reject)                     \
  X(document_exists, "AERO_DOCUMENT_EXISTS", error)                                  \
  X(document_not_found, "AERO_DOCUMENT_NOT_FOUND", error)                            \
  X(write_conflict, "AERO_WRITE_CONFLICT", error)                                    \
  X(batch_empty, "AERO_BATCH_EMPTY", reject)                                         \
  X(batch_duplicate_key, "AERO_BATCH_DUPLICATE_KEY", reject)                         \
  X(batch_too_large, "AERO_BATCH_TOO_LARGE", reject)                                 \
  X(index_exists, "AERO_INDEX_EXISTS", reject)                                       \
  X(index_invalid_field, "AERO_INDEX_INVALID_FIELD", reject)                         \
  X(query_invalid, "AERO_QUERY_INVALID", reject)                                     \
  X(query_unbounded, "AERO_QUERY_UNBOUNDED", reject)                                 \
  X(query_unindexed_field, "AERO_QUERY_UNINDEXED_FIELD", reject)                     \
  X(query_limit_required, "AERO_QUERY_LIMIT_REQUIRED", reject)                       \
  X(query_sort_not_indexed, "AERO_QUERY_SORT_NOT_INDEXED", reject)                   \
  X(query_schema_mismatch, "AERO_QUERY_SCHEMA_MISMATCH", reject)                     \
  X(read_view_too_old, "AERO_READ_VIEW_TOO_OLD", reject)                             \
  X(storage_io_error, "AERO_STORAGE_IO_ERROR", error)                                \
  X(storage_locked, "AERO_STORAGE_LOCKED", error)                                    \
  X(storage_read_only, "AERO_STORAGE_READ_ONLY", fatal)                              \
  X(storage_not_found, "AERO_STORAGE_NOT_FOUND", error)                              \
  X(storage_exists, "AERO_STORAGE_EXISTS", reject)                                 \
  X(wal_append_failed, "AERO_WAL_APPEND_FAILED", fatal)                              \
  X(wal_fsync_failed, "AERO_WAL_FSYNC_FAILED", fatal)                                \
  X(wal_corruption, "AERO_WAL_CORRUPTION", fatal)                                    \
  X(wal_record_too_large, "AERO_WAL_RECORD_TOO_LARGE", reject)                       \
  X(snapshot_corruption, "AERO_SNAPSHOT_CORRUPTION", fatal)                          \
  X(snapshot_not_found, "AERO_SNAPSHOT_NOT_FOUND", error)                            \
  X(checkpoint_corruption, "AERO_CHECKPOINT_CORRUPTION", fatal)                      \
  X(checkpoint_snapshot_missing, "AERO_CHECKPOINT_SNAPSHOT_MISSING", fatal)          \
  X(checkpoint_failed, "AERO_CHECKPOINT_FAILED", error)                              \
  X(data_corruption, "AERO_DATA_CORRUPTION", fatal)                                  \
  X(replication_not_primary, "AERO_REPLICATION_NOT_PRIMARY", reject)                \
  X(replication_halted, "AERO_REPLICATION_HALTED", error)                            \
  X(replication_read_ahead, "AERO_REPLICATION_READ_AHEAD", reject)                   \
  X(replication_gap, "AERO_REPLICATION_GAP", fatal)                                  \
  X(replication_divergence, "AERO_REPLICATION_DIVERGENCE", fatal)                    \
  X(replication_record_corrupt, "AERO_REPLICATION_RECORD_CORRUPT", fatal)            \
  X(replication_protocol, "AERO_REPLICATION_PROTOCOL", error)                        \
  X(replication_snapshot_needed, "AERO_REPLICATION_SNAPSHOT_NEEDED", error)          \
  X(replication_disconnected, "AERO_REPLICATION_DISCONNECTED", error)                \
  X(replication_stale_epoch, "AERO_REPLICATION_STALE_EPOCH", fatal)                  \
  X(replication_auth_failed, "AERO_REPLICATION_AUTH_FAILED", error)                 \
  X(authority_corruption, "AERO_AUTHORITY_CORRUPTION", fatal)                      \
  X(internal_bug, "AERO_INTERNAL_BUG", bug)                                         \
  X(open_cancelled, "AERO_OPEN_CANCELLED", error)

enum class errc : std::uint16_t {
#define AERODB_X(name, text, sev) name,
  AERODB_ERROR_CODES(AERODB_X)
#undef AERODB_X
};

struct errc_info {
  errc code;
  std::string_view name;
  aerodb::severity level;
};

inline constexpr errc_info errc_table[] = {
#define AERODB_X(name, text, sev) {errc::name, text, severity::sev},
    AERODB_ERROR_CODES(AERODB_X)
#undef AERODB_X
};

constexpr const errc_info& info(errc c) noexcept { return errc_table[static_cast<std::size_t>(c)]; }
constexpr std::string_view to_string(errc c) noexcept { return info(c).name; }
constexpr std::string_view to_string(severity s) noexcept {
  switch (s) {
    case severity::fatal: return "FATAL";
    case severity::error: return "ERROR";
    case severity::reject: return "REJECT";
    case severity::bug: return "BUG";
  }
  return "?";
}

struct error_detail {
  std::string key;
  std::string value;
  friend bool operator==(const error_detail&, const error_detail&) = default;
};

class error {
 public:
  error(errc code, std::string message, std::vector<error_detail> details = {})
      : code_(code), message_(std::move(message)), details_(std::move(details)) {}

  errc code() const noexcept { return code_; }
  aerodb::severity level() const noexcept { return info(code_).level; }
  std::string_view name() const noexcept { return aerodb::to_string(code_); }
  const std::string& message() const noexcept { return message_; }
  const std::vector<error_detail>& details() const noexcept { return details_; }

  // The value of a detail, or an empty view when absent.
  std::string_view detail(std::string_view key) const noexcept {
    for (const auto& d : details_)
      if (d.key == key) return d.value;
    return {};
  }

  error&& with(std::string key, std::string value) && {
    details_.push_back({std::move(key), std::move(value)});
    return std::move(*this);
  }

  // "AERO_X (SEVERITY): message [k=v, ...]"
  std::string to_string() const {
    std::string s{name()};
    s += " (";
    s += aerodb::to_string(level());
    s += "): ";
    s += message_;
    if (!details_.empty()) {
      s += " [";
      for (std::size_t i = 0; i < details_.size(); ++i) {
        if (i) s += ", ";
        s += details_[i].key + "=" + details_[i].value;
      }
      s += "]";
    }
    return s;
  }

 private:
  errc code_;
  std::string message_;
  std::vector<error_detail> details_;
};

// Thrown only when a caller reads the value of a result that holds an error: misuse.
class bad_result_access : public std::logic_error {
 public:
  explicit bad_result_access(const error& e)
      : std::logic_error("value() called on a result holding " + e.to_string()) {}
};

template <class T>
class [[nodiscard]] result {
 public:
  using value_type = T;
  result(T value) : v_(std::in_place_index<0>, std::move(value)) {}
  result(error e) : v_(std::in_place_index<1>, std::move(e)) {}

  bool has_value() const noexcept { return v_.index() == 0; }
  explicit operator bool() const noexcept { return has_value(); }

  T& value() & { check(); return std::get<0>(v_); }
  const T& value() const& { check(); return std::get<0>(v_); }
  T&& value() && { check(); return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  // REQUIRES: !has_value()
  const error& error_value() const& { return std::get<1>(v_); }
  aerodb::error&& error_value() && { return std::get<1>(std::move(v_)); }
  errc code() const { return error_value().code(); }

 private:
  void check() const {
    if (!has_value()) throw bad_result_access(std::get<1>(v_));
  }
  std::variant<T, aerodb::error> v_;
};

template <>
class [[nodiscard]] result<void> {
 public:
  using value_type = void;
  result() = default;
  result(error e) : e_(std::move(e)) {}

  bool has_value() const noexcept { return !e_.has_value(); }
  explicit operator bool() const noexcept { return has_value(); }
  void value() const {
    if (e_) throw bad_result_access(*e_);
  }
  const error& error_value() const& { return *e_; }
  aerodb::error&& error_value() && { return std::move(*e_); }
  errc code() const { return e_->code(); }

 private:
  std::optional<aerodb::error> e_;
};

inline result<void> ok() { return {}; }

}  // namespace aerodb

// Propagate an error from a result<void>-returning expression.
#define AERO_TRY(expr)                                              \
  do {                                                              \
    auto aero_try_result_ = (expr);                                 \
    if (!aero_try_result_) return std::move(aero_try_result_).error_value(); \
  } while (0)

// Declare `decl` from the value of a result, or propagate its error.
#define AERO_CONCAT_INNER_(a, b) a##b
#define AERO_CONCAT_(a, b) AERO_CONCAT_INNER_(a, b)
#define AERO_TRY_ASSIGN(decl, expr) AERO_TRY_ASSIGN_IMPL_(AERO_CONCAT_(aero_r_, __LINE__), decl, expr)
#define AERO_TRY_ASSIGN_IMPL_(tmp, decl, expr)        \
  auto tmp = (expr);                                  \
  if (!tmp) return std::move(tmp).error_value();      \
  decl = std::move(tmp).value()
