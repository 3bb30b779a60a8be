// The bytes of a snapshot data file, snapshot-<C>.data: the image of the database at
// CommitId C (schemas, collections, index definitions and every live document).
//
// docs/format.md (12.2) is the prose version of this header; the two change together.
// File names, the decoding conventions and the failure codes are in snapshot_files.hpp;
// the manifest that lists this file with its CRC32C is in manifest.hpp.
//
//   data      := data_header entry* end_entry
//   data_header (24 bytes):
//     0  magic "AERODBSN"         8 bytes
//     8  format_version u32       = 1
//     12 flags u32                = 0
//     16 commit_id u64            = C
//   entry     := tag u8, body
//     0x01 schema      registered_at u64, text_len u32, text (canonical schema JSON)
//     0x02 collection  created_at u64, name_len u16, name, schema_id_len u16, schema_id
//     0x03 index       created_at u64, collection_len u16, collection, path_len u16, path
//     0x04 document    committed_at u64, collection_len u16, collection,
//                      schema_version u32, doc_len u32, doc (document_codec.hpp bytes)
//   end_entry := 0xFF, entry_count u64 (the number of entries before it); nothing follows
//
// The data file carries no checksum of its own: the manifest's CRC32C covers the whole
// file, and a reader calls verify_file before read_snapshot_data. The decoder is still
// fully validating, because a checksum only proves the bytes are the ones written.
//
// Entry order (written by snapshot_encoder, which refuses anything else):
//   1. schemas      by (schema id, version)   the reader cannot check this without
//                                             parsing the JSON; the engine's loader does
//   2. collections  by name                   checked: strictly increasing
//   3. indexes      by (collection, path)     checked: strictly increasing
//   4. documents    by (collection, _id)      checked: strictly increasing
// Strings compare bytewise (memcmp order). Kinds never go backwards (a schema after a
// document can only be damage), and keys never repeat.
// Further rules the decoder checks: every string is non-empty; an index or document
// names a collection entry of the same file; a document passes check_encoded_document
// and its root object has a string `_id` (the first `_id` field if damage repeated it).
//
// Thread safety: free functions are pure; a snapshot_encoder is used by one thread.
#pragma once

#include <aerodb/commit_id.hpp>
#include <aerodb/error.hpp>
#include <aerodb/format/bytes.hpp>
#include <aerodb/format/document_codec.hpp>
#include <aerodb/format/limits.hpp>
#include <aerodb/format/snapshot_files.hpp>
#include <aerodb/io/crc32c.hpp>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace aerodb::format {

// ---- constants --------------------------------------------------------------------------

inline constexpr std::array<char, 8> snapshot_magic = {'A', 'E', 'R', 'O', 'D', 'B', 'S', 'N'};
inline constexpr std::uint32_t snapshot_format_version = 1;

inline constexpr std::uint8_t snapshot_tag_schema = 0x01;
inline constexpr std::uint8_t snapshot_tag_collection = 0x02;
inline constexpr std::uint8_t snapshot_tag_index = 0x03;
inline constexpr std::uint8_t snapshot_tag_document = 0x04;
inline constexpr std::uint8_t snapshot_tag_end = 0xFF;

inline constexpr std::size_t snapshot_header_size = 24;
inline constexpr std::size_t snapshot_end_entry_size = 9;
// Fixed part of each entry, tag included (the rest is its strings).
inline constexpr std::size_t snapshot_schema_fixed = 13;
inline constexpr std::size_t snapshot_collection_fixed = 13;
inline constexpr std::size_t snapshot_index_fixed = 13;
inline constexpr std::size_t snapshot_document_fixed = 19;

static_assert(snapshot_header_size == 8 + 4 + 4 + 8);
static_assert(snapshot_end_entry_size == 1 + 8);
static_assert(snapshot_schema_fixed == 1 + 8 + 4);
static_assert(snapshot_collection_fixed == 1 + 8 + 2 + 2);
static_assert(snapshot_index_fixed == 1 + 8 + 2 + 2);
static_assert(snapshot_document_fixed == 1 + 8 + 2 + 4 + 4);
// The document length field is u32; the decoder's cap must fit in it.
static_assert(hard_max_document_bytes <= std::numeric_limits<std::uint32_t>::max());

inline constexpr bool known_snapshot_tag(std::uint8_t t) noexcept {
  return t >= snapshot_tag_schema && t <= snapshot_tag_document;
}

// ---- data file: entries ------------------------------------------------------------------

struct snapshot_header {
  commit_id commit = 0;
};

// The views in these structs point into the bytes being decoded (or encoded).
struct schema_entry {
  std::uint64_t registered_at = 0;
  std::string_view text;  // canonical schema JSON
};

struct collection_entry {
  std::uint64_t created_at = 0;
  std::string_view name;
  std::string_view schema_id;
};

struct index_entry {
  std::uint64_t created_at = 0;
  std::string_view collection;
  std::string_view path;
};

struct document_entry {
  std::uint64_t committed_at = 0;
  std::string_view collection;
  std::uint32_t schema_version = 0;
  std::span<const std::byte> bytes;  // passed check_encoded_document
  std::string_view doc_id;           // the document's `_id`, inside `bytes`
};

// Raw appenders: no checks at all. REQUIRES: every string fits its length field. Use
// snapshot_encoder, which checks order and sizes; these exist for it and for tests that
// must build damaged files.
inline void append_snapshot_header(byte_buffer& out, commit_id c) {
  for (char ch : snapshot_magic) out.push_back(static_cast<std::byte>(ch));
  put_le<std::uint32_t>(out, snapshot_format_version);
  put_le<std::uint32_t>(out, 0);
  put_le<std::uint64_t>(out, c);
}

inline void append_schema_entry(byte_buffer& out, const schema_entry& e) {
  out.push_back(std::byte{snapshot_tag_schema});
  put_le<std::uint64_t>(out, e.registered_at);
  put_le<std::uint32_t>(out, static_cast<std::uint32_t>(e.text.size()));
  put_bytes(out, e.text);
}

inline void append_collection_entry(byte_buffer& out, const collection_entry& e) {
  out.push_back(std::byte{snapshot_tag_collection});
  put_le<std::uint64_t>(out, e.created_at);
  put_le<std::uint16_t>(out, static_cast<std::uint16_t>(e.name.size()));
  put_bytes(out, e.name);
  put_le<std::uint16_t>(out, static_cast<std::uint16_t>(e.schema_id.size()));
  put_bytes(out, e.schema_id);
}

inline void append_index_entry(byte_buffer& out, const index_entry& e) {
  out.push_back(std::byte{snapshot_tag_index});
  put_le<std::uint64_t>(out, e.created_at);
  put_le<std::uint16_t>(out, static_cast<std::uint16_t>(e.collection.size()));
  put_bytes(out, e.collection);
  put_le<std::uint16_t>(out, static_cast<std::uint16_t>(e.path.size()));
  put_bytes(out, e.path);
}

// `e.doc_id` is not written: it lives inside the document bytes.
inline void append_document_entry(byte_buffer& out, const document_entry& e) {
  out.push_back(std::byte{snapshot_tag_document});
  put_le<std::uint64_t>(out, e.committed_at);
  put_le<std::uint16_t>(out, static_cast<std::uint16_t>(e.collection.size()));
  put_bytes(out, e.collection);
  put_le<std::uint32_t>(out, e.schema_version);
  put_le<std::uint32_t>(out, static_cast<std::uint32_t>(e.bytes.size()));
  put_bytes(out, e.bytes);
}

inline void append_snapshot_end(byte_buffer& out, std::uint64_t entry_count) {
  out.push_back(std::byte{snapshot_tag_end});
  put_le<std::uint64_t>(out, entry_count);
}

// The `_id` string of an encoded document: the first top-level field named `_id`, if it
// is a string. Safe on any bytes (it never reads outside them), meaningful on bytes that
// passed check_encoded_document.
inline std::optional<std::string_view> encoded_document_id(std::span<const std::byte> doc) {
  cursor c(doc);
  std::uint8_t tag = 0;
  std::uint32_t body_len = 0, count = 0;
  if (!c.read(tag) || tag != tag_object || !c.read(body_len) || !c.read(count)) return std::nullopt;
  for (std::uint32_t i = 0; i < count; ++i) {
    std::uint16_t name_len = 0;
    std::string_view name;
    std::uint8_t vtag = 0;
    if (!c.read(name_len) || !c.read_string(name_len, name) || !c.read(vtag)) return std::nullopt;
    std::size_t skip = 0;
    switch (vtag) {
      case tag_null:
      case tag_false:
      case tag_true: break;
      case tag_int:
      case tag_float: skip = 8; break;
      case tag_string:
      case tag_array:
      case tag_object: {
        // For containers the u32 is body_len, which counts everything after it.
        std::uint32_t len = 0;
        if (!c.read(len)) return std::nullopt;
        if (name == "_id") {
          std::string_view id;
          if (vtag != tag_string || !c.read_string(len, id)) return std::nullopt;
          return id;
        }
        skip = len;
        break;
      }
      default: return std::nullopt;
    }
    if (name == "_id") return std::nullopt;  // present but not a string
    std::span<const std::byte> ignored;
    if (!c.read_bytes(skip, ignored)) return std::nullopt;
  }
  return std::nullopt;
}

// ---- data file: encoder ------------------------------------------------------------------

// Builds a data file entry by entry. Bytes accumulate in pending(); the engine may move
// them out with take_pending() at any point (e.g. to write them to the file in chunks),
// while the encoder keeps the entry count, the order state and the running size and
// CRC32C of everything produced, for the manifest.
//
// Every add_* and finish() checks that the result will be readable by read_snapshot_data
// and fails with AERO_INTERNAL_BUG (`reason` detail), appending nothing, when it would not
// be: an entry out of order, an empty or oversized string, an undeclared collection, a
// document that fails check_encoded_document or has no string `_id`, use after finish().
class snapshot_encoder {
 public:
  explicit snapshot_encoder(commit_id c) : commit_(c) {
    append_snapshot_header(pending_, c);
    account(0);
  }

  result<void> add_schema(std::uint64_t registered_at, std::string_view canonical_text) {
    AERO_TRY(admit(snapshot_tag_schema));
    if (canonical_text.empty()) return misuse("empty schema text");
    if (canonical_text.size() > std::numeric_limits<std::uint32_t>::max())
      return misuse("schema text longer than its u32 length field");
    const std::size_t from = pending_.size();
    append_schema_entry(pending_, {registered_at, canonical_text});
    return accept(from, snapshot_tag_schema);
  }

  result<void> add_collection(std::uint64_t created_at, std::string_view name,
                              std::string_view schema_id) {
    AERO_TRY(admit(snapshot_tag_collection));
    AERO_TRY(check_name(name, "collection name"));
    AERO_TRY(check_name(schema_id, "schema id"));
    if (!collections_.empty() && !(collections_.back() < name))
      return misuse("collections not in strictly increasing name order");
    const std::size_t from = pending_.size();
    append_collection_entry(pending_, {created_at, name, schema_id});
    collections_.emplace_back(name);
    return accept(from, snapshot_tag_collection);
  }

  result<void> add_index(std::uint64_t created_at, std::string_view collection,
                         std::string_view path) {
    AERO_TRY(admit(snapshot_tag_index));
    AERO_TRY(check_name(collection, "index collection"));
    AERO_TRY(check_name(path, "index path"));
    AERO_TRY(check_declared(collection));
    AERO_TRY(check_key_order(snapshot_tag_index, collection, path, "indexes"));
    const std::size_t from = pending_.size();
    append_index_entry(pending_, {created_at, collection, path});
    remember_key(snapshot_tag_index, collection, path);
    return accept(from, snapshot_tag_index);
  }

  result<void> add_document(std::uint64_t committed_at, std::string_view collection,
                            std::uint32_t schema_version, std::span<const std::byte> encoded) {
    AERO_TRY(admit(snapshot_tag_document));
    AERO_TRY(check_name(collection, "document collection"));
    AERO_TRY(check_declared(collection));
    // A full check costs one pass per document, like the CRC; it turns a damaged
    // in-memory document into a failed checkpoint instead of an unopenable database.
    if (auto r = check_encoded_document(encoded); !r)
      return misuse("invalid encoded document").with("cause", r.error_value().message());
    const auto id = encoded_document_id(encoded);
    if (!id) return misuse("document without a string _id");
    AERO_TRY(check_key_order(snapshot_tag_document, collection, *id, "documents"));
    const std::size_t from = pending_.size();
    append_document_entry(pending_, {committed_at, collection, schema_version, encoded, *id});
    remember_key(snapshot_tag_document, collection, *id);
    return accept(from, snapshot_tag_document);
  }

  // Appends the end entry. Nothing may be added afterwards.
  result<void> finish() {
    if (finished_) return misuse("finish() called twice");
    const std::size_t from = pending_.size();
    append_snapshot_end(pending_, entries_);
    account(from);
    finished_ = true;
    return ok();
  }

  // Bytes produced and not yet taken.
  const byte_buffer& pending() const noexcept { return pending_; }
  byte_buffer take_pending() noexcept { return std::exchange(pending_, {}); }
  // Forgets the pending bytes (the caller wrote them) and keeps the buffer for the next ones.
  void clear_pending() noexcept { pending_.clear(); }

  commit_id commit() const noexcept { return commit_; }
  std::uint64_t entry_count() const noexcept { return entries_; }
  bool finished() const noexcept { return finished_; }
  // Size and CRC32C of all bytes produced so far (taken or not): after finish(), those of
  // the whole file, as its manifest entry needs them.
  std::uint64_t file_size() const noexcept { return size_; }
  std::uint32_t file_crc() const noexcept { return crc_; }

 private:
  static error misuse(std::string reason) {
    return error(errc::internal_bug, "snapshot encoder refused: " + reason, {{"reason", reason}});
  }
  static result<void> check_name(std::string_view s, std::string_view what) {
    if (s.empty()) return misuse("empty " + std::string(what));
    if (s.size() > 0xFFFF) return misuse(std::string(what) + " longer than its u16 length field");
    return ok();
  }
  result<void> admit(std::uint8_t tag) const {
    if (finished_) return misuse("entry added after finish()");
    if (tag < last_tag_) return misuse("entry kinds out of order");
    return ok();
  }
  result<void> check_declared(std::string_view collection) const {
    if (!std::binary_search(collections_.begin(), collections_.end(), collection, std::less<>{}))
      return misuse("collection not declared before its indexes and documents");
    return ok();
  }
  // Keys are compared only within one kind: the last key of another kind is no bound.
  result<void> check_key_order(std::uint8_t tag, std::string_view a, std::string_view b,
                               std::string_view what) const {
    if (key_tag_ == tag && !(std::pair<std::string_view, std::string_view>(key_a_, key_b_) <
                      std::pair<std::string_view, std::string_view>(a, b)))
      return misuse(std::string(what) + " not in strictly increasing key order");
    return ok();
  }
  void remember_key(std::uint8_t tag, std::string_view a, std::string_view b) {
    key_a_.assign(a);
    key_b_.assign(b);
    key_tag_ = tag;
  }
  result<void> accept(std::size_t from, std::uint8_t tag) {
    account(from);
    ++entries_;
    last_tag_ = tag;
    return ok();
  }
  void account(std::size_t from) {
    const auto added = std::span<const std::byte>(pending_).subspan(from);
    crc_ = crc32c::extend(crc_, added);
    size_ += added.size();
  }

  commit_id commit_;
  byte_buffer pending_;
  std::uint64_t entries_ = 0;
  std::uint64_t size_ = 0;
  std::uint32_t crc_ = 0;
  std::uint8_t last_tag_ = 0;
  bool finished_ = false;
  std::vector<std::string> collections_;  // in order, so binary_search applies
  std::uint8_t key_tag_ = 0;  // kind of the entry key_a_/key_b_ belong to; 0: none
  std::string key_a_, key_b_;
};

// ---- data file: decoder ------------------------------------------------------------------

// What read_snapshot_data reports, in file order. Empty members are skipped. A callback's
// error stops decoding and is returned unchanged. Views are valid as long as the input.
struct snapshot_visitor {
  std::function<result<void>(const snapshot_header&)> on_header;
  std::function<result<void>(const schema_entry&)> on_schema;
  std::function<result<void>(const collection_entry&)> on_collection;
  std::function<result<void>(const index_entry&)> on_index;
  std::function<result<void>(const document_entry&)> on_document;
};

namespace snapshot_detail {

inline error data_corrupt(std::size_t offset, const std::string& reason) {
  return error(errc::snapshot_corruption, "corrupt snapshot data file: " + reason,
               {{"offset", std::to_string(offset)}, {"reason", reason}});
}

template <class Entry>
inline result<void> deliver(const std::function<result<void>(const Entry&)>& f, const Entry& e) {
  if (f) return f(e);
  return ok();
}

}  // namespace snapshot_detail

// Decodes and validates a whole data file (grammar and rules at the top of this file),
// calling `visitor` for the header and each entry in order. Failures are
// AERO_SNAPSHOT_CORRUPTION with `offset` and `reason`. The visitor may already have seen
// a prefix of the entries when a failure is found further on: callers verify the file
// against its manifest first, and discard what they built if this fails.
inline result<void> read_snapshot_data(std::span<const std::byte> bytes,
                                       const snapshot_visitor& visitor) {
  using snapshot_detail::data_corrupt;
  using snapshot_detail::read_str16;
  if (bytes.size() < snapshot_header_size)
    return data_corrupt(bytes.size(), "truncated header");
  for (std::size_t i = 0; i < snapshot_magic.size(); ++i)
    if (bytes[i] != static_cast<std::byte>(snapshot_magic[i])) return data_corrupt(0, "bad magic");
  if (load_le<std::uint32_t>(bytes.data() + 8) != snapshot_format_version)
    return data_corrupt(8, "unsupported format version");
  if (load_le<std::uint32_t>(bytes.data() + 12) != 0) return data_corrupt(12, "nonzero flags");
  AERO_TRY(snapshot_detail::deliver(visitor.on_header,
                                    snapshot_header{load_le<std::uint64_t>(bytes.data() + 16)}));

  cursor c(bytes.subspan(snapshot_header_size));
  const auto at = [&c] { return snapshot_header_size + c.position(); };
  std::uint64_t count = 0;
  std::uint8_t last_tag = 0;
  // Collection names seen, in strictly increasing order; views into `bytes`, so memory
  // grows only with entries actually present.
  std::vector<std::string_view> collections;
  bool has_key = false;
  std::pair<std::string_view, std::string_view> last_key;
  const auto in_order = [&](std::string_view a, std::string_view b) {
    const bool fine = !has_key || last_key < std::pair(a, b);
    last_key = {a, b};
    has_key = true;
    return fine;
  };
  const auto declared = [&](std::string_view name) {
    return std::binary_search(collections.begin(), collections.end(), name);
  };

  for (;;) {
    const std::size_t entry_at = at();
    std::uint8_t tag = 0;
    if (!c.read(tag)) return data_corrupt(entry_at, "missing end entry");
    if (tag == snapshot_tag_end) {
      std::uint64_t n = 0;
      if (!c.read(n)) return data_corrupt(at(), "truncated end entry");
      if (n != count)
        return data_corrupt(entry_at, "end entry count mismatch")
            .with("expected", std::to_string(count))
            .with("actual", std::to_string(n));
      if (!c.at_end()) return data_corrupt(at(), "trailing bytes after end entry");
      return ok();
    }
    if (!known_snapshot_tag(tag)) return data_corrupt(entry_at, "unknown entry tag");
    if (tag < last_tag) return data_corrupt(entry_at, "entry kinds out of order");
    if (tag != last_tag) has_key = false;
    last_tag = tag;

    switch (tag) {
      case snapshot_tag_schema: {
        schema_entry e;
        std::uint32_t len = 0;
        if (!c.read(e.registered_at) || !c.read(len) || !c.read_string(len, e.text))
          return data_corrupt(at(), "truncated schema entry");
        if (e.text.empty()) return data_corrupt(entry_at, "empty schema text");
        AERO_TRY(snapshot_detail::deliver(visitor.on_schema, e));
        break;
      }
      case snapshot_tag_collection: {
        collection_entry e;
        if (!c.read(e.created_at) || !read_str16(c, e.name) || !read_str16(c, e.schema_id))
          return data_corrupt(at(), "truncated collection entry");
        if (e.name.empty() || e.schema_id.empty())
          return data_corrupt(entry_at, "empty collection name or schema id");
        if (!collections.empty() && !(collections.back() < e.name))
          return data_corrupt(entry_at, "collections out of order");
        collections.push_back(e.name);
        AERO_TRY(snapshot_detail::deliver(visitor.on_collection, e));
        break;
      }
      case snapshot_tag_index: {
        index_entry e;
        if (!c.read(e.created_at) || !read_str16(c, e.collection) || !read_str16(c, e.path))
          return data_corrupt(at(), "truncated index entry");
        if (e.collection.empty() || e.path.empty())
          return data_corrupt(entry_at, "empty index collection or path");
        if (!declared(e.collection)) return data_corrupt(entry_at, "index of an undeclared collection");
        if (!in_order(e.collection, e.path)) return data_corrupt(entry_at, "indexes out of order");
        AERO_TRY(snapshot_detail::deliver(visitor.on_index, e));
        break;
      }
      case snapshot_tag_document: {
        document_entry e;
        std::uint32_t len = 0;
        if (!c.read(e.committed_at) || !read_str16(c, e.collection) || !c.read(e.schema_version) ||
            !c.read(len))
          return data_corrupt(at(), "truncated document entry");
        const std::size_t doc_at = at();
        if (!c.read_bytes(len, e.bytes)) return data_corrupt(doc_at, "truncated document entry");
        if (e.collection.empty()) return data_corrupt(entry_at, "empty document collection");
        if (!declared(e.collection))
          return data_corrupt(entry_at, "document of an undeclared collection");
        if (auto r = check_encoded_document(e.bytes); !r)
          return data_corrupt(doc_at, "invalid document")
              .with("document_offset", std::string(r.error_value().detail("offset")))
              .with("cause", r.error_value().message());
        const auto id = encoded_document_id(e.bytes);
        if (!id) return data_corrupt(doc_at, "document without a string _id");
        e.doc_id = *id;
        if (!in_order(e.collection, e.doc_id)) return data_corrupt(entry_at, "documents out of order");
        AERO_TRY(snapshot_detail::deliver(visitor.on_document, e));
        break;
      }
      default: break;  // unreachable: known_snapshot_tag
    }
    ++count;
  }
}

}  // namespace aerodb::format
