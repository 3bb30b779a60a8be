// Fuzz target: the snapshot data file, manifest and CHECKPOINT record decoders
// (format/snapshot_format.hpp), and the engine's snapshot loader (basic_database::recover
// -> load_snapshot).
//
// Input: the bytes of one file. Every input goes through all three decoders (each refuses
// the others' magic at once, so this costs little and lets a mutation cross from one
// grammar to another). An input that starts with the data file magic is also installed
// as the current checkpoint of an in-memory directory, with a valid manifest and
// CHECKPOINT written around it, and opened with aerodb::database. Seeds are real files
// written by the engine's checkpoint().
//
// Properties:
//   - no exception, no sanitizer report;
//   - decode_checkpoint: an accepted record re-encodes to exactly the input; a refusal is
//     AERO_CHECKPOINT_CORRUPTION with numeric `offset` and a `reason`;
//   - decode_manifest: likewise, AERO_SNAPSHOT_CORRUPTION;
//   - read_snapshot_data: an accepted file is rebuilt entry by entry with
//     snapshot_encoder, which must accept every entry and produce exactly the input (and
//     its size and CRC32C); every document entry is accepted by document::from_bytes with
//     the same `_id`; a refusal is AERO_SNAPSHOT_CORRUPTION with `offset` and `reason`;
//   - the engine refuses what read_snapshot_data refuses (AERO_SNAPSHOT_CORRUPTION); when
//     it opens the directory, it reports the checkpoint, holds every document of the file
//     (same bytes, CommitId and schema version), and its own checkpoint() writes the same
//     entries back (schema texts compared as parsed schemas, since the engine writes them
//     canonically).
#include "fuzz_common.hpp"

#include <aerodb/aerodb.hpp>
#include <aerodb/format/snapshot_format.hpp>
#include <aerodb/testing/fault_injection_fs.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace {

using aerodb::errc;
using aerodb_fuzz::require;
namespace format = aerodb::format;

void check_checkpoint_record(std::span<const std::byte> in) {
  auto r = format::decode_checkpoint(in);
  if (!r) {
    aerodb_fuzz::require_error(r.error_value(), {errc::checkpoint_corruption}, "decode_checkpoint");
    aerodb_fuzz::require_detail(r.error_value(), "offset", true);
    aerodb_fuzz::require_detail(r.error_value(), "reason");
    return;
  }
  require(format::valid_snapshot_file_name(r->manifest_name), "accepted an invalid manifest name");
  auto again = format::encode_checkpoint(*r);
  require(again.has_value(), "encode_checkpoint refused a decoded record");
  require(aerodb_fuzz::same_bytes(*again, in), "CHECKPOINT record does not re-encode to its bytes");
}

void check_manifest(std::span<const std::byte> in) {
  auto m = format::decode_manifest(in);
  if (!m) {
    aerodb_fuzz::require_error(m.error_value(), {errc::snapshot_corruption}, "decode_manifest");
    aerodb_fuzz::require_detail(m.error_value(), "offset", true);
    aerodb_fuzz::require_detail(m.error_value(), "reason");
    return;
  }
  require(!m->files.empty(), "accepted a manifest without files");
  auto again = format::encode_manifest(*m);
  require(again.has_value(), "encode_manifest refused a decoded manifest");
  require(aerodb_fuzz::same_bytes(*again, in), "manifest does not re-encode to its bytes");
}

// Owning copies of decoded entries, in file order.
struct entry {
  std::uint8_t tag = 0;
  std::uint64_t at = 0;  // registered_at / created_at / committed_at
  std::string a, b;      // schema: text; collection: name, schema id; index: collection, path;
                         // document: collection, _id
  std::uint32_t schema_version = 0;
  std::vector<std::byte> bytes;
  bool operator==(const entry&) const = default;
};

struct decoded_data {
  aerodb::result<void> status;
  format::commit_id commit = 0;
  std::vector<entry> entries;
};

decoded_data decode_data(std::span<const std::byte> in) {
  decoded_data out;
  format::snapshot_visitor v;
  v.on_header = [&](const format::snapshot_header& h) -> aerodb::result<void> {
    out.commit = h.commit;
    return aerodb::ok();
  };
  v.on_schema = [&](const format::schema_entry& e) -> aerodb::result<void> {
    out.entries.push_back({format::snapshot_tag_schema, e.registered_at, std::string(e.text), {}, 0, {}});
    return aerodb::ok();
  };
  v.on_collection = [&](const format::collection_entry& e) -> aerodb::result<void> {
    out.entries.push_back({format::snapshot_tag_collection, e.created_at, std::string(e.name),
                           std::string(e.schema_id), 0, {}});
    return aerodb::ok();
  };
  v.on_index = [&](const format::index_entry& e) -> aerodb::result<void> {
    out.entries.push_back({format::snapshot_tag_index, e.created_at, std::string(e.collection),
                           std::string(e.path), 0, {}});
    return aerodb::ok();
  };
  v.on_document = [&](const format::document_entry& e) -> aerodb::result<void> {
    out.entries.push_back({format::snapshot_tag_document, e.committed_at, std::string(e.collection),
                           std::string(e.doc_id), e.schema_version,
                           std::vector<std::byte>(e.bytes.begin(), e.bytes.end())});
    return aerodb::ok();
  };
  out.status = format::read_snapshot_data(in, v);
  return out;
}

void check_data(std::span<const std::byte> in, const decoded_data& d) {
  if (!d.status) {
    aerodb_fuzz::require_error(d.status.error_value(), {errc::snapshot_corruption},
                               "read_snapshot_data");
    aerodb_fuzz::require_detail(d.status.error_value(), "offset", true);
    aerodb_fuzz::require_detail(d.status.error_value(), "reason");
    return;
  }
  format::snapshot_encoder enc(d.commit);
  for (const auto& e : d.entries) {
    aerodb::result<void> r = aerodb::ok();
    switch (e.tag) {
      case format::snapshot_tag_schema: r = enc.add_schema(e.at, e.a); break;
      case format::snapshot_tag_collection: r = enc.add_collection(e.at, e.a, e.b); break;
      case format::snapshot_tag_index: r = enc.add_index(e.at, e.a, e.b); break;
      default: {
        r = enc.add_document(e.at, e.a, e.schema_version, e.bytes);
        auto doc = aerodb::document::from_bytes(e.bytes);
        require(doc.has_value(), "document entry refused by document::from_bytes",
                doc ? "" : doc.error_value().to_string());
        require(doc->id() == e.b, "document entry _id differs from document::id()");
        break;
      }
    }
    require(r.has_value(), "snapshot_encoder refused an entry the decoder accepted",
            r ? "" : r.error_value().to_string());
  }
  require(enc.finish().has_value(), "snapshot_encoder::finish refused");
  require(aerodb_fuzz::same_bytes(enc.pending(), in), "snapshot data does not re-encode to its bytes");
  require(enc.file_size() == in.size() && enc.file_crc() == aerodb::crc32c::value(in),
          "encoder size/CRC disagree with the bytes");
}

void write_file(aerodb::testing::fault_injection_fs& fs, const std::string& path,
                std::span<const std::byte> bytes) {
  auto f = fs.open(path, aerodb::io::open_mode::create_or_truncate);
  require(f.has_value() && (*f)->append(bytes).has_value() && (*f)->sync().has_value(),
          "writing a file failed");
}

bool same_entries(const std::vector<entry>& mine, const std::vector<entry>& engine) {
  if (mine.size() != engine.size()) return false;
  for (std::size_t i = 0; i < mine.size(); ++i) {
    const entry& x = mine[i];
    const entry& y = engine[i];
    if (x.tag != format::snapshot_tag_schema) {
      if (!(x == y)) return false;
      continue;
    }
    if (y.tag != x.tag || y.at != x.at) return false;
    auto sx = aerodb::schema::from_json(x.a);
    auto sy = aerodb::schema::from_json(y.a);
    if (!sx || !sy || !(*sx == *sy)) return false;
  }
  return true;
}

void check_engine_load(std::span<const std::byte> in, const decoded_data& d) {
  const format::commit_id c = format::load_le<std::uint64_t>(in.data() + 16);
  auto fs = std::make_shared<aerodb::testing::fault_injection_fs>();
  const std::string dir = "db";
  require(fs->create_dir(dir).has_value(), "create_dir failed");
  const std::string data_name = format::snapshot_data_file_name(c);
  const std::string manifest_name = format::snapshot_manifest_file_name(c);
  write_file(*fs, aerodb::io::join(dir, data_name), in);
  auto manifest = format::encode_manifest({c, {format::describe_file(data_name, in)}});
  require(manifest.has_value(), "encode_manifest");
  write_file(*fs, aerodb::io::join(dir, manifest_name), *manifest);
  auto record = format::encode_checkpoint({c, manifest_name});
  require(record.has_value(), "encode_checkpoint");
  write_file(*fs, aerodb::io::join(dir, std::string(format::checkpoint_file_name)), *record);

  aerodb::open_options opts;
  opts.fs = fs;
  auto db = aerodb::database::open(dir, opts);
  if (!db) {
    aerodb_fuzz::require_error(db.error_value(), {errc::snapshot_corruption}, "open");
    // The engine's own checks name the file; anything else is the decoder's finding.
    if (db.error_value().detail("file").empty())
      require(!d.status && db.error_value().to_string() == d.status.error_value().to_string(),
              "the engine refused the file with another error than read_snapshot_data",
              db.error_value().to_string());
    return;
  }
  require(d.status.has_value(), "the engine opened a snapshot read_snapshot_data refuses");
  auto& engine = **db;
  require(engine.recovery().checkpoint == c && engine.last_commit_id() == c,
          "the engine does not report the checkpoint it loaded");
  std::uint64_t documents = 0;
  auto view = engine.read();
  for (const auto& e : d.entries) {
    if (e.tag != format::snapshot_tag_document) continue;
    ++documents;
    auto got = view.get(e.a, e.b);
    require(got.has_value() && got->has_value(), "a snapshot document is missing after open", e.b);
    const auto& v = **got;
    require(aerodb_fuzz::same_bytes(v.doc.bytes(), e.bytes) && v.committed_at == e.at &&
                v.schema_version == e.schema_version,
            "a snapshot document changed on load", e.b);
  }
  require(engine.recovery().snapshot_documents == documents, "snapshot_documents count");

  auto cp = engine.checkpoint();
  require(cp.has_value(), "checkpoint after loading a snapshot failed",
          cp ? "" : cp.error_value().to_string());
  require(cp->commit == c, "checkpoint at another CommitId");
  const auto rewritten = fs->contents(aerodb::io::join(dir, data_name));
  const decoded_data again = decode_data(rewritten);
  require(again.status.has_value(), "the engine wrote a snapshot it cannot read");
  require(same_entries(d.entries, again.entries), "the engine's snapshot differs from the one it loaded");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  return aerodb_fuzz::guarded([&] {
    const auto in = aerodb_fuzz::bytes_of(data, size);
    check_checkpoint_record(in);
    check_manifest(in);
    const decoded_data d = decode_data(in);
    check_data(in, d);
    if (size >= format::snapshot_header_size &&
        std::equal(format::snapshot_magic.begin(), format::snapshot_magic.end(),
                   reinterpret_cast<const char*>(data)))
      check_engine_load(in, d);
  });
}
