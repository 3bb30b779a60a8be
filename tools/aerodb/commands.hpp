// The commands of the `aerodb` command-line tool: info, verify, dump-wal, export and
// query, which never change the directory; import, backup and checkpoint, which open the
// store as an application does; and repair, which cuts a damaged log back to its last
// intact record only when told to (--yes), after proving the cut on a copy.
//
// The read-only commands work on a private, in-memory copy of the data directory, taken
// while the directory's lock is held (so never in the middle of another process's checkpoint or
// commit) and released at once. Recovery then runs on the copy: whatever it would do to
// the files (discard a torn tail, delete covered segments or stale snapshot files) happens
// to the copy only, so these commands never change a byte of the directory. The price is
// memory: the copy holds every file of the directory, about what opening the store costs.
//
// Exit codes (docs/cli.md): 0 success; 1 damage found; 2 bad usage (CLI11's own code for
// a parse error is mapped to it); 3 the directory could not be read, is locked by a
// running store, or is not an AeroDB directory; 4 an import stopped part way.
//
// Thread safety: each command is a function of its arguments; the tool is single-threaded.
#pragma once

#include <aerodb/aerodb.hpp>
#include <aerodb/format/snapshot_format.hpp>
#include <aerodb/format/wal_format.hpp>
#include <aerodb/io/posix_fs.hpp>
#include <aerodb/testing/fault_injection_fs.hpp>
#include <aerodb/wal/wal_reader.hpp>

#include <boost/json.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace aerodb::cli {

inline constexpr int exit_ok = 0;
inline constexpr int exit_damage = 1;
inline constexpr int exit_usage = 2;
inline constexpr int exit_unreadable = 3;

// Where the copy lives inside the in-memory file system.
inline const std::string copy_dir = "/store";

struct directory_copy {
  std::shared_ptr<testing::fault_injection_fs> fs;  // holds the files under copy_dir
  std::map<std::string, std::uint64_t> sizes;        // every file copied, by name
  std::uint64_t bytes = 0;
};

// Refuses, before anything is read or opened, a directory that is missing or is not an
// AeroDB data directory (the tool never creates one where it is pointed by mistake).
inline result<void> check_store_directory(io::file_system& disk, const std::string& dir) {
  AERO_TRY_ASSIGN(const bool present, disk.exists(dir));
  if (!present)
    return error(errc::storage_not_found, "no such directory", {{"directory", dir}});
  AERO_TRY_ASSIGN(const bool has_lock_file, disk.exists(io::join(dir, "LOCK")));
  if (!has_lock_file)
    return error(errc::storage_not_found,
                 "not an AeroDB data directory (it has no LOCK file; the tool creates nothing)",
                 {{"directory", dir}});
  return ok();
}

// Reads every file of `dir` into memory under the directory's lock. The in-memory file
// system is the one the test suite uses for crash simulation; here it serves only as a
// plain memory file system, with every file durable.
inline result<directory_copy> copy_directory(const std::string& dir) {
  io::posix_file_system disk;
  AERO_TRY(check_store_directory(disk, dir));
  // Taking the lock changes nothing on disk (the file exists) and fails at once when a
  // running store holds it.
  AERO_TRY_ASSIGN(auto lock, disk.lock(io::join(dir, "LOCK")));
  directory_copy out;
  out.fs = std::make_shared<testing::fault_injection_fs>();
  AERO_TRY(out.fs->create_dir(copy_dir));
  AERO_TRY_ASSIGN(const auto names, disk.list_dir(dir));
  for (const auto& name : names) {
    AERO_TRY_ASSIGN(auto in, disk.open(io::join(dir, name), io::open_mode::read));
    AERO_TRY_ASSIGN(auto bytes, io::read_all(*in));
    AERO_TRY_ASSIGN(auto copy, out.fs->open(io::join(copy_dir, name), io::open_mode::create_or_truncate));
    AERO_TRY(copy->append(bytes));
    AERO_TRY(copy->sync());
    out.sizes[name] = bytes.size();
    out.bytes += bytes.size();
  }
  AERO_TRY(out.fs->sync_dir(copy_dir));
  return out;
}

// Opens the copy with the baseline engine: every engine recovers the same state from the
// same files, and the baseline builds the least in memory.
// A replica's directory (docs/replication.md) opens in its own role: the copy is only
// read, and the role changes nothing of what recovery finds.
inline result<std::unique_ptr<database>> open_copy(const directory_copy& copy,
                                                   std::function<void(const recovery_progress&)> on_progress = {}) {
  open_options options;
  options.fs = copy.fs;
  options.on_recovery_progress = std::move(on_progress);
  auto db = database::open(copy_dir, options);
  if (db || db.code() != errc::replication_not_primary) return db;
  options.role = open_role::replica;
  return database::open(copy_dir, options);
}

inline void print_error(std::ostream& err, const error& e) { err << "error: " << e.to_string() << "\n"; }

// The place an error names: "<file> at byte <offset>", or the file alone.
inline std::string location_of(const error& e) {
  std::string file(e.detail("segment"));
  if (file.empty()) file = std::string(e.detail("file"));
  std::string where = file.empty() ? "(no file named)" : file;
  if (const auto off = e.detail("offset"); !off.empty()) where += " at byte " + std::string(off);
  return where;
}

inline bool is_damage(errc code) {
  return code == errc::wal_corruption || code == errc::snapshot_corruption ||
         code == errc::checkpoint_corruption || code == errc::checkpoint_snapshot_missing;
}

inline int open_error(const error& e, std::ostream& err) {
  print_error(err, e);
  return is_damage(e.code()) ? exit_damage : exit_unreadable;
}

// Runs `fn(copy, db)` on a store recovered from a copy of `dir`. A directory that cannot
// be copied, or a copy that does not open, ends the command with its exit code after
// saying why.
template <class Fn>
int on_recovered_copy(const std::string& dir, std::ostream& err, Fn&& fn) {
  auto copy = copy_directory(dir);
  if (!copy) {
    print_error(err, copy.error_value());
    return exit_unreadable;
  }
  auto db = open_copy(*copy);
  if (!db) return open_error(db.error_value(), err);
  return fn(*copy, **db);
}

// ---- verify -----------------------------------------------------------------------------

// `verify --progress`: recovery's phases as open_options::on_recovery_progress tells them,
// one line each on `err`: every phase's begin and end, and each further 1% between.
inline std::function<void(const recovery_progress&)> progress_printer(std::ostream& err) {
  return [&err](const recovery_progress& p) {
    err << "recovery: " << to_string(p.phase);
    if (p.event == recovery_event::begin) err << " begin";
    if (p.event == recovery_event::end) err << " end";
    err << " " << p.done << "/" << p.total << " " << recovery_unit_name(p.phase);
    if (p.total)
      err << " (" << static_cast<int>(100.0 * static_cast<double>(p.done) / static_cast<double>(p.total)) << "%)";
    if (p.phase == recovery_phase::snapshot_load) err << ", " << p.documents_loaded << " documents";
    if (p.phase == recovery_phase::log_replay) err << ", " << p.records_replayed << " records";
    err << "\n";
  };
}

// Reads every file the store needs and checks every checksum and every rule recovery
// applies (it is recovery, on the copy). Prints what it checked; on damage, the file and
// byte offset.
inline int run_verify(const std::string& dir, std::ostream& out, std::ostream& err, bool progress = false) {
  auto copy = copy_directory(dir);
  if (!copy) {
    print_error(err, copy.error_value());
    return exit_unreadable;
  }
  auto db = open_copy(*copy, progress ? progress_printer(err) : nullptr);
  if (!db) {
    const error& e = db.error_value();
    if (!is_damage(e.code())) {
      print_error(err, e);
      return exit_unreadable;
    }
    out << "DAMAGED: " << location_of(e);
    // The snapshot data file is checked as a whole against the manifest's CRC32C; it has no
    // finer checksum, so a flipped bit in it has no offset to report.
    if (e.detail("offset").empty() && e.detail("reason") == "checksum mismatch")
      out << " (its whole-file checksum in the manifest does not match; the file has no finer checksum)";
    out << "\n";
    out << "  " << e.to_string() << "\n";
    return exit_damage;
  }
  const recovery_report& r = (*db)->recovery();
  if (progress) err << "recovery: " << r.to_string() << "\n";
  out << "ok: " << copy->sizes.size() << " files, " << copy->bytes << " bytes read\n";
  if (r.checkpoint)
    out << "  checkpoint at CommitId " << r.checkpoint << ": " << r.snapshot_documents
        << " documents, manifest and data checksums verified\n";
  out << "  log: " << r.segments << " segment(s), " << r.records_replayed
      << " records verified and replayed, last CommitId " << r.last_commit_id << "\n";
  if (r.torn_tail)
    out << "  note: a torn tail of " << r.torn_tail->bytes << " bytes at " << r.torn_tail->segment
        << " byte " << r.torn_tail->offset << " (" << r.torn_tail->reason
        << "): an unacknowledged write cut off by a crash; the next open discards it\n";
  // Files recovery removed from the copy: left over by an interrupted checkpoint, and not
  // needed (segments the checkpoint covers, older snapshot files, *.tmp).
  auto after = copy->fs->list_dir(copy_dir);
  if (after) {
    const std::set<std::string> kept(after->begin(), after->end());
    for (const auto& file : copy->sizes)
      if (!kept.count(file.first))
        out << "  note: " << file.first << " is left over and not needed; the next open removes it\n";
  }
  return exit_ok;
}

// ---- info -------------------------------------------------------------------------------

inline int run_info(const std::string& dir, bool as_json, std::ostream& out, std::ostream& err) {
  return on_recovered_copy(dir, err, [&](const directory_copy& copy, database& db) {
    std::uint64_t log_bytes = 0, snapshot_bytes = 0;  // as on disk, leftovers included
    for (const auto& [name, size] : copy.sizes) {
      if (format::parse_segment_file_name(name)) log_bytes += size;
      else if (name.rfind("snapshot-", 0) == 0) snapshot_bytes += size;
    }
    const recovery_report& r = db.recovery();
    boost::json::object info;
    info["directory"] = dir;
    info["last_commit_id"] = r.last_commit_id;
    info["checkpoint"] = r.checkpoint;
    info["recovery"] = r.to_string();
    info["log_bytes"] = log_bytes;
    info["log_segments"] = r.segments;
    info["snapshot_bytes"] = snapshot_bytes;
    boost::json::array collections;
    const auto view = db.read();
    for (const auto& name : db.collection_names()) {
      boost::json::object c;
      c["name"] = name;
      auto count = view.for_each(name, [](const versioned_document&) {});
      c["documents"] = count ? *count : 0;
      collections.push_back(std::move(c));
    }
    info["collections"] = std::move(collections);
    if (as_json) {
      out << boost::json::serialize(info) << "\n";
      return exit_ok;
    }
    out << "directory:      " << dir << "\n"
        << "last CommitId:  " << r.last_commit_id << "\n"
        << "checkpoint:     " << (r.checkpoint ? std::to_string(r.checkpoint) : std::string("none")) << "\n"
        << "log:            " << r.segments << " segment(s), " << log_bytes << " bytes on disk\n"
        << "snapshot files: " << snapshot_bytes << " bytes\n"
        << "recovery:       " << r.to_string() << "\n"
        << "collections:\n";
    for (const auto& c : info["collections"].as_array())
      out << "  " << c.at("name").as_string().c_str() << ": "
          << c.at("documents").to_number<std::uint64_t>() << " documents\n";
    return exit_ok;
  });
}

// ---- dump-wal ---------------------------------------------------------------------------

inline const char* record_type_name(format::record_type t) {
  switch (t) {
    case format::record_type::schema_register: return "schema_register";
    case format::record_type::collection_create: return "collection_create";
    case format::record_type::write_batch: return "write_batch";
    case format::record_type::index_create: return "index_create";
    case format::record_type::gc: return "gc";
  }
  return "unknown";
}

inline const char* write_kind_name(format::write_kind k) {
  switch (k) {
    case format::write_kind::insert: return "insert";
    case format::write_kind::update: return "update";
    case format::write_kind::remove: return "delete";
  }
  return "unknown";
}

// One JSON object per record: where it is, what it holds (documents as JSON).
inline boost::json::object describe_record(const wal::wal_record& r) {
  boost::json::object o;
  o["commit_id"] = r.commit;
  o["type"] = record_type_name(r.type);
  o["segment"] = *r.segment;
  o["offset"] = r.offset;
  o["body_bytes"] = r.payload.size();
  switch (r.type) {
    case format::record_type::schema_register: {
      boost::system::error_code ec;
      auto v = boost::json::parse(std::string_view(format::as_chars(r.payload)), ec);
      if (ec) o["schema_text"] = std::string(format::as_chars(r.payload));
      else o["schema"] = std::move(v);
      break;
    }
    case format::record_type::collection_create:
      if (auto c = format::decode_collection_create(r.payload)) {
        o["collection"] = c->name;
        o["schema_id"] = c->schema_id;
      }
      break;
    case format::record_type::index_create:
      if (auto ix = format::decode_index_create(r.payload)) {
        o["collection"] = ix->collection;
        o["path"] = ix->path;
      }
      break;
    case format::record_type::gc:
      if (auto floor = format::decode_gc(r.payload)) o["floor"] = *floor;
      break;
    case format::record_type::write_batch:
      if (auto ops = format::decode_write_batch(r.payload)) {
        boost::json::array arr;
        for (const auto& op : *ops) {
          boost::json::object j;
          j["kind"] = write_kind_name(op.kind);
          j["collection"] = op.collection;
          j["_id"] = op.doc_id;
          if (op.kind != format::write_kind::remove) {
            j["schema_version"] = op.schema_version;
            boost::system::error_code ec;
            auto doc = boost::json::parse(document_view(op.document).to_json_string(), ec);
            if (!ec) j["document"] = std::move(doc);
          }
          arr.push_back(std::move(j));
        }
        o["ops"] = std::move(arr);
      }
      break;
  }
  return o;
}

// Prints the log's records with CommitIds in [from, to] as JSON lines, oldest first. The
// records a checkpoint covers are gone from the log (or never read): the first printed is
// above the checkpoint.
inline int run_dump_wal(const std::string& dir, commit_id from, commit_id to, std::ostream& out,
                        std::ostream& err) {
  auto copy = copy_directory(dir);
  if (!copy) {
    print_error(err, copy.error_value());
    return exit_unreadable;
  }
  commit_id checkpoint = 0;
  {
    auto path = io::join(copy_dir, std::string(format::checkpoint_file_name));
    if (copy->fs->durable_exists(path)) {
      auto record = format::decode_checkpoint(copy->fs->contents(path));
      if (!record) {
        print_error(err, record.error_value());
        return exit_damage;
      }
      checkpoint = record->commit;
    }
  }
  if (from <= checkpoint && checkpoint > 0)
    err << "note: the records up to CommitId " << checkpoint
        << " are in the checkpoint's snapshot, not in the log\n";
  std::uint64_t printed = 0;
  auto scanned = wal::read_wal(*copy->fs, copy_dir, checkpoint, [&](const wal::wal_record& r) -> result<void> {
    if (r.commit >= from && r.commit <= to) {
      out << boost::json::serialize(describe_record(r)) << "\n";
      ++printed;
    }
    return ok();
  });
  if (!scanned) {
    print_error(err, scanned.error_value());
    return is_damage(scanned.code()) ? exit_damage : exit_unreadable;
  }
  if (scanned->torn)
    err << "note: a torn tail of " << scanned->torn->bytes << " bytes at " << scanned->torn->segment
        << " byte " << scanned->torn->offset << " (" << scanned->torn->reason << ") is not shown\n";
  err << printed << " record(s) printed\n";
  return exit_ok;
}

// ---- query ------------------------------------------------------------------------------

// Runs a query (docs/queries.md, its JSON form) on a copy of the directory: the documents
// as JSON lines, or with `explain` the plan as JSON and as text, without running it. A full
// page says on stderr how to ask for the next one; with `all`, the pages follow one another
// (each a query bounded by the limit, under one read view) until the last.
inline int run_query(const std::string& dir, const std::string& query_json, bool explain, bool all,
                     std::ostream& out, std::ostream& err) {
  return on_recovered_copy(dir, err, [&](const directory_copy&, database& db) {
    const auto view = db.read();
    if (explain) {
      auto plan = view.explain(query_json);
      if (!plan) {
        print_error(err, plan.error_value());
        return exit_usage;
      }
      out << boost::json::serialize(query::explain_json(*plan)) << "\n";
      err << query::explain_text(*plan) << "\n";
      return exit_ok;
    }
    auto spec = query::parse_query(query_json);
    if (!spec) {
      print_error(err, spec.error_value());
      return exit_usage;
    }
    std::uint64_t documents = 0, candidates = 0, pages = 0;
    for (;;) {
      auto r = view.query(*spec);
      if (!r) {
        print_error(err, r.error_value());
        return exit_usage;
      }
      for (const auto& d : r->documents) out << d.doc.to_json_string() << "\n";
      documents += r->documents.size();
      candidates += r->candidates;
      ++pages;
      if (!all || !r->next) {
        err << documents << " document(s) at CommitId " << view.bound() << ", " << candidates
            << " candidates examined";
        if (all) err << " in " << pages << " page(s)";
        err << " (" << query::explain_text(r->plan) << ")\n";
        if (r->next)
          err << "the page is full; for the next one add \"after\":" << query::detail::continuation_json(*r->next)
              << " to the query, or pass --all\n";
        return exit_ok;
      }
      spec->after = r->next;
    }
  });
}

// ---- commands that open the store --------------------------------------------------------
// These open the directory as the application does (taking its lock, running recovery,
// which discards a torn tail and tidies leftovers), unlike the read-only commands above.

// Writes a consistent copy of the store to `dest` (a new directory): database::backup.
inline int run_backup(const std::string& dir, const std::string& dest, std::ostream& out,
                      std::ostream& err) {
  io::posix_file_system disk;
  if (auto checked = check_store_directory(disk, dir); !checked) {
    print_error(err, checked.error_value());
    return exit_unreadable;
  }
  auto db = database::open(dir);  // takes the lock: a running store is refused here
  if (!db) return open_error(db.error_value(), err);
  auto b = (*db)->backup(dest);
  if (!b) {
    print_error(err, b.error_value());
    return b.code() == errc::storage_exists || b.code() == errc::config_invalid ? exit_usage
                                                                                : exit_unreadable;
  }
  out << "backup of " << dir << " at CommitId " << b->commit << " written to " << dest << ": "
      << b->documents << " documents, " << b->bytes << " bytes of snapshot data, in "
      << std::chrono::duration_cast<std::chrono::milliseconds>(b->duration).count() << " ms\n";
  return exit_ok;
}

// Runs a checkpoint: the log up to now is folded into a snapshot and its segments removed.
inline int run_checkpoint(const std::string& dir, std::ostream& out, std::ostream& err) {
  io::posix_file_system disk;
  if (auto checked = check_store_directory(disk, dir); !checked) {
    print_error(err, checked.error_value());
    return exit_unreadable;
  }
  auto db = database::open(dir);
  if (!db) return open_error(db.error_value(), err);
  auto c = (*db)->checkpoint();
  if (!c) {
    print_error(err, c.error_value());
    return exit_unreadable;
  }
  out << "checkpoint at CommitId " << c->commit << ": " << c->documents << " documents, "
      << c->snapshot_bytes << " bytes of snapshot data, " << c->segments_removed
      << " log segment(s) removed\n";
  return exit_ok;
}

// ---- export and import ---------------------------------------------------------------
// The export format (docs/cli.md): JSON lines. The first is a header,
//   {"aerodb_export":1,"collection":C,"schema_id":S,"schemas":[definition...],
//    "commit_id":N,"documents":K}
// naming every schema version the documents use; then one line per document, in _id order,
//   {"schema_version":V,"document":{...}}
// Documents print with the store's own JSON writer (member order kept, numbers in
// shortest exact form, floats with a fraction), so an import encodes the same bytes.

inline constexpr int exit_partial = 4;  // import stopped part way; what went in stays

// Progress for long runs, on stderr, at most once a second; nothing for short ones.
class progress_meter {
 public:
  progress_meter(std::ostream& err, std::string verb, std::uint64_t total)
      : err_(err), verb_(std::move(verb)), total_(total), started_(std::chrono::steady_clock::now()),
        last_(started_) {}
  void add(std::uint64_t docs, std::uint64_t bytes) {
    done_ += docs;
    bytes_ += bytes;
    const auto now = std::chrono::steady_clock::now();
    if (now - last_ < std::chrono::seconds(1)) return;
    last_ = now;
    err_ << verb_ << " " << done_;
    if (total_) err_ << " of " << total_ << " documents (" << done_ * 100 / total_ << "%)";
    else err_ << " documents";
    err_ << ", " << rate() << "\n";
  }
  void finish() {
    err_ << verb_ << " " << done_ << " documents, " << bytes_ << " bytes, " << rate() << "\n";
  }

 private:
  std::string rate() const {
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
    char buf[96];
    std::snprintf(buf, sizeof buf, "%.1f s, %.0f documents/s, %.1f MB/s", s, s > 0 ? done_ / s : 0.0,
                  s > 0 ? bytes_ / s / 1e6 : 0.0);
    return buf;
  }
  std::ostream& err_;
  std::string verb_;
  std::uint64_t total_ = 0, done_ = 0, bytes_ = 0;
  std::chrono::steady_clock::time_point started_, last_;
};

// Opens `path` for writing as a new file, owner-only (0600) like the store's own files:
// an export holds the same documents. An existing file is never overwritten.
inline result<std::unique_ptr<std::ofstream>> create_private_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    const int e = errno;
    return error(e == EEXIST ? errc::storage_exists : errc::storage_io_error,
                 e == EEXIST ? "the output file already exists; name a new one" : "cannot create the output file",
                 {{"path", path}, {"errno", std::to_string(e)}});
  }
  ::close(fd);
  auto out = std::make_unique<std::ofstream>(path, std::ios::binary | std::ios::trunc);
  if (!*out) return error(errc::storage_io_error, "cannot open the output file", {{"path", path}});
  return out;
}

inline int export_collection(database& db, const std::string& collection, const std::string& out_path,
                             std::ostream& out, std::ostream& err) {
  const auto schema_id = db.collection_schema_id(collection);
  if (!schema_id) {
    print_error(err, error(errc::collection_unknown, "no such collection", {{"collection", collection}}));
    return exit_usage;
  }
  std::unique_ptr<std::ofstream> file;
  if (!out_path.empty()) {
    auto f = create_private_file(out_path);
    if (!f) {
      print_error(err, f.error_value());
      return f.code() == errc::storage_exists ? exit_usage : exit_unreadable;
    }
    file = std::move(*f);
  }
  std::ostream& sink = file ? static_cast<std::ostream&>(*file) : out;
  const auto view = db.read();
  // Which schema versions the documents use, and how many there are, for the header.
  std::set<std::uint32_t> versions;
  auto counted = view.for_each(collection, [&](const versioned_document& d) { versions.insert(d.schema_version); });
  if (!counted) return open_error(counted.error_value(), err);
  boost::json::object header;
  header["aerodb_export"] = 1;
  header["collection"] = collection;
  header["schema_id"] = *schema_id;
  boost::json::array schemas;
  for (const auto v : versions) {
    const auto s = db.find_schema(*schema_id, v);
    if (s) schemas.push_back(boost::json::parse(s->to_canonical_json()));
  }
  header["schemas"] = std::move(schemas);
  header["commit_id"] = view.bound();
  header["documents"] = *counted;
  sink << boost::json::serialize(header) << "\n";
  progress_meter meter(err, "exported", *counted);
  auto written = view.for_each(collection, [&](const versioned_document& d) {
    const std::string json = d.doc.to_json_string();
    sink << "{\"schema_version\":" << d.schema_version << ",\"document\":" << json << "}\n";
    meter.add(1, json.size());
  });
  if (!written) return open_error(written.error_value(), err);
  sink.flush();
  if (!sink) {
    print_error(err, error(errc::storage_io_error, "writing the export failed", {{"path", out_path}}));
    return exit_unreadable;
  }
  meter.finish();
  return exit_ok;
}

inline int run_export(const std::string& dir, const std::string& collection, const std::string& out_path,
                      std::ostream& out, std::ostream& err) {
  return on_recovered_copy(dir, err, [&](const directory_copy&, database& db) {
    return export_collection(db, collection, out_path, out, err);
  });
}

// Reads an export into the store at `dir` (created if missing): registers the schema
// versions it names that the store lacks (a version the store has must be the same
// definition), creates the collection if missing (bound to the same schema), then inserts
// the documents in batches of `batch` operations, one commit each. A failing batch stops
// the import with the line numbers it covered; the batches before it stay committed.
inline int run_import(const std::string& dir, std::istream& in, std::size_t batch, std::ostream& out,
                      std::ostream& err) {
  std::string line;
  std::uint64_t line_no = 1;
  if (!std::getline(in, line)) {
    err << "error: the input is empty; an export starts with its header line\n";
    return exit_usage;
  }
  boost::system::error_code ec;
  auto header_value = boost::json::parse(line, ec);
  const auto* header = header_value.if_object();
  if (ec || !header || !header->contains("aerodb_export") || !header->at("collection").is_string() ||
      !header->at("schema_id").is_string() || !header->at("schemas").is_array()) {
    err << "error: line 1 is not an aerodb export header (see docs/cli.md)\n";
    return exit_usage;
  }
  const std::string collection(header->at("collection").as_string());
  const std::string schema_id(header->at("schema_id").as_string());
  auto db = database::open(dir);
  if (!db) return open_error(db.error_value(), err);
  for (const auto& def : header->at("schemas").as_array()) {
    auto parsed = schema::from_json(def);
    if (!parsed) {
      print_error(err, parsed.error_value());
      return exit_usage;
    }
    if (parsed->id() != schema_id) {
      err << "error: the header's schemas name schema '" << parsed->id() << "', not '" << schema_id << "'\n";
      return exit_usage;
    }
    if (const auto have = (*db)->find_schema(parsed->id(), parsed->version())) {
      if (have->to_canonical_json() != parsed->to_canonical_json()) {
        err << "error: the store already has schema " << parsed->id() << " version " << parsed->version()
            << " with a different definition\n";
        return exit_usage;
      }
      continue;
    }
    if (auto r = (*db)->register_schema(parsed->to_canonical_json()); !r) {
      print_error(err, r.error_value());
      return exit_partial;
    }
  }
  if (const auto bound = (*db)->collection_schema_id(collection)) {
    if (*bound != schema_id) {
      err << "error: collection '" << collection << "' exists bound to schema '" << *bound << "', not '"
          << schema_id << "'\n";
      return exit_usage;
    }
  } else if (auto r = (*db)->create_collection(collection, schema_id); !r) {
    print_error(err, r.error_value());
    return exit_partial;
  }
  const std::uint64_t total = header->contains("documents") && header->at("documents").is_number()
                                  ? header->at("documents").to_number<std::uint64_t>()
                                  : 0;
  progress_meter meter(err, "imported", total);
  std::uint64_t imported = 0;
  write_batch b;
  std::uint64_t batch_bytes = 0, first_line = 0;
  auto flush = [&]() -> bool {
    if (b.empty()) return true;
    auto r = (*db)->commit(b);
    if (!r) {
      err << "error: the batch of lines " << first_line << ".." << line_no << " was refused; "
          << imported << " documents before it are imported\n";
      print_error(err, r.error_value());
      return false;
    }
    imported += b.size();
    meter.add(b.size(), batch_bytes);
    b = write_batch();
    batch_bytes = 0;
    return true;
  };
  while (std::getline(in, line)) {
    ++line_no;
    if (line.empty()) continue;
    auto v = boost::json::parse(line, ec);
    const auto* o = v.if_object();
    if (ec || !o || !o->contains("schema_version") || !o->contains("document") ||
        !o->at("document").is_object() || !o->at("schema_version").is_number()) {
      if (!flush()) return exit_partial;
      err << "error: line " << line_no << " is not {\"schema_version\":V,\"document\":{...}}; " << imported
          << " documents before it are imported\n";
      return exit_partial;
    }
    if (b.empty()) first_line = line_no;
    std::string json = boost::json::serialize(o->at("document"));
    batch_bytes += json.size();
    b.insert(collection, static_cast<std::uint32_t>(o->at("schema_version").to_number<std::uint64_t>()),
             std::move(json));
    if (b.size() >= batch && !flush()) return exit_partial;
  }
  if (!flush()) return exit_partial;
  meter.finish();
  out << "imported " << imported << " documents into " << collection << ", last CommitId "
      << (*db)->last_commit_id() << "\n";
  return exit_ok;
}

// ---- repair -----------------------------------------------------------------------------
// Log damage makes the store refuse to open (docs/format.md §9): the reader cannot tell
// which of the records after the damage were acknowledged, so it discards none of them on
// its own. `repair` is the operator's decision to cut the log at the damaged record: the
// segment holding it keeps the bytes before it, every later segment goes. Because that
// loses commits, the command is never silent: the plan names every byte range it discards
// and every CommitId that still reads whole in them, it is proved on an in-memory copy
// before anything is touched, nothing happens without --yes, and the discarded bytes are
// copied (and synced) elsewhere before the directory is changed.
//
// Damage outside the log is refused: the CHECKPOINT record and the snapshot stand for the
// log segments that were removed when the checkpoint was written, so there is no older
// state to cut back to; a backup is the way back.

// What the scan of discarded bytes found at one place, in file order.
struct discarded_finding {
  std::uint64_t offset = 0;
  std::uint64_t bytes = 0;
  bool readable = false;              // whole records with valid checksums
  commit_id first = 0, last = 0;      // readable: consecutive CommitIds first..last
  std::uint64_t records = 0;
  std::string note;                   // not readable: what is known about it
};

// One file the plan discards bytes of: [from, to) of a segment whose size is `to`.
struct discarded_file {
  std::string name;
  std::uint64_t from = 0;
  std::uint64_t to = 0;
  bool whole = false;                 // the file is removed, not truncated
  std::vector<discarded_finding> findings;
  std::uint64_t trailing_zeros = 0;   // zeros at the end: space allocated ahead of records
};

struct repair_plan {
  std::string segment;                // holds the damaged record
  std::uint64_t offset = 0;           // where the cut is
  std::vector<discarded_file> files;  // the cut segment first, then the later ones in order
  std::uint64_t bytes = 0;            // discarded in all
  std::vector<commit_id> lost;        // CommitIds of whole records in the discarded bytes
  std::optional<commit_id> damaged_commit;  // the damaged record's, when its header verifies
  // The damaged record verifies whole: recovery refused it for what it says (a CommitId
  // out of sequence, a payload that cannot be applied), not for its checksums.
  bool damaged_reads_whole = false;
};

// The record at `off` when it is whole and both its checksums, its framing and its end
// marker verify: what the reader accepts, less the CommitId sequence (records after damage
// are judged on their own).
inline std::optional<format::record_header> whole_record_at(std::span<const std::byte> data,
                                                            std::size_t off) {
  using namespace format;
  if (off > data.size() || data.size() - off < record_header_size) return std::nullopt;
  const auto h = decode_record_header(data.data() + off);
  if (!h.header_crc_ok || !h.framing_ok || !known_record_type(h.type) || h.commit == 0 ||
      h.payload_length == 0 || h.payload_length > max_record_payload ||
      data.size() - off - record_header_size < h.payload_length)
    return std::nullopt;
  const auto payload = data.subspan(off + record_header_size, h.payload_length);
  if (crc32c::value(payload) != h.payload_crc || payload.back() != record_end_marker) return std::nullopt;
  return h;
}

// What is known about bytes at `off` that do not read as a whole record.
inline std::string unreadable_note(std::span<const std::byte> data, std::size_t off) {
  using namespace format;
  if (data.size() - off >= record_header_size) {
    const auto h = decode_record_header(data.data() + off);
    if (h.header_crc_ok && h.framing_ok && known_record_type(h.type))
      return "a record header for CommitId " + std::to_string(h.commit) + " (" +
             record_type_name(static_cast<record_type>(h.type)) +
             ") verifies, but its payload does not";
  }
  return "cannot be parsed as records";
}

// Reads `data` from `from` record by record: whole records are listed with their
// CommitIds, and after bytes that do not read as one the scan resynchronises on the next
// start marker (0xA5) from which a whole record verifies. Records end with the end marker,
// never with a zero, so the zeros at the end are allocated space, not a record.
inline void scan_discarded(std::span<const std::byte> data, std::size_t from, discarded_file& file,
                           std::vector<commit_id>& lost) {
  using namespace format;
  std::size_t end = data.size();
  while (end > from && data[end - 1] == std::byte{0}) --end;
  file.trailing_zeros = data.size() - end;
  // Start of the bytes read so far that are no record; `none` while there are none. (A
  // plain index: GCC's -O1 flow analysis takes an optional here for uninitialized.)
  constexpr std::size_t none = std::numeric_limits<std::size_t>::max();
  std::size_t bad = none;
  auto close_bad = [&](std::size_t upto) {
    if (bad == none) return;
    discarded_finding f;
    f.offset = bad;
    f.bytes = upto - bad;
    f.note = unreadable_note(data, bad);
    file.findings.push_back(std::move(f));
    bad = none;
  };
  std::size_t pos = from;
  while (pos < end) {
    if (const auto h = whole_record_at(data, pos)) {
      close_bad(pos);
      const std::uint64_t size = record_header_size + h->payload_length;
      auto& fs = file.findings;
      if (!fs.empty() && fs.back().readable && fs.back().offset + fs.back().bytes == pos &&
          fs.back().last + 1 == h->commit) {
        fs.back().bytes += size;
        fs.back().last = h->commit;
        ++fs.back().records;
      } else {
        discarded_finding f;
        f.offset = pos;
        f.bytes = size;
        f.readable = true;
        f.first = f.last = h->commit;
        f.records = 1;
        fs.push_back(std::move(f));
      }
      lost.push_back(h->commit);
      pos += size;
      continue;
    }
    if (bad == none) bad = pos;
    const auto next = std::find(data.begin() + static_cast<std::ptrdiff_t>(pos) + 1,
                                data.begin() + static_cast<std::ptrdiff_t>(end), record_start_marker);
    pos = static_cast<std::size_t>(next - data.begin());
  }
  close_bad(end);
}

// "7..9, 12": sorted CommitIds with consecutive runs folded.
inline std::string commit_ranges(std::vector<commit_id> ids) {
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  std::string s;
  for (std::size_t i = 0; i < ids.size();) {
    std::size_t j = i;
    while (j + 1 < ids.size() && ids[j + 1] == ids[j] + 1) ++j;
    if (!s.empty()) s += ", ";
    s += std::to_string(ids[i]);
    if (j > i) s += ".." + std::to_string(ids[j]);
    i = j + 1;
  }
  return s;
}

// The plan for a cut at `offset` of `segment`, with what the discarded bytes hold. A cut
// inside the segment header (the damage is the header itself) removes the whole file: a
// part of a header would only be discarded again as a torn segment at the next open.
inline result<repair_plan> make_repair_plan(testing::fault_injection_fs& fs,
                                            const std::map<std::string, std::uint64_t>& sizes,
                                            const std::string& segment, std::uint64_t offset) {
  const auto seq = format::parse_segment_file_name(segment);
  if (!seq || !sizes.count(segment))
    return error(errc::wal_corruption, "the damage names a segment that is not in the directory",
                 {{"segment", segment}});
  repair_plan plan;
  plan.segment = segment;
  plan.offset = offset;
  for (const auto& entry : sizes) {
    const auto other = format::parse_segment_file_name(entry.first);
    if (!other || *other < *seq) continue;
    const auto data = fs.contents(io::join(copy_dir, entry.first));
    const std::span<const std::byte> bytes(data);
    discarded_file file;
    file.name = entry.first;
    file.to = data.size();
    if (*other == *seq && offset >= format::segment_header_size) {
      file.from = std::min<std::uint64_t>(offset, data.size());
      scan_discarded(bytes, static_cast<std::size_t>(file.from), file, plan.lost);
      if (data.size() - file.from >= format::record_header_size) {
        const auto h = format::decode_record_header(data.data() + file.from);
        if (h.header_crc_ok && h.framing_ok) plan.damaged_commit = h.commit;
        plan.damaged_reads_whole = whole_record_at(bytes, static_cast<std::size_t>(file.from)).has_value();
      }
    } else {
      file.whole = true;
      const auto header = format::decode_segment_header(bytes);
      discarded_finding f;
      f.bytes = std::min<std::uint64_t>(format::segment_header_size, data.size());
      f.note = header.status == format::header_status::valid
                   ? "the segment header (first CommitId " + std::to_string(header.header.first_commit_id) + ")"
                   : "the segment header, which does not verify";
      if (data.size() > format::segment_header_size)
        scan_discarded(bytes, format::segment_header_size, file, plan.lost);
      file.findings.insert(file.findings.begin(), std::move(f));
    }
    plan.bytes += file.to - file.from;
    plan.files.push_back(std::move(file));
  }
  std::sort(plan.lost.begin(), plan.lost.end());
  if (plan.damaged_commit)  // listed apart: it is what failed
    plan.lost.erase(std::remove(plan.lost.begin(), plan.lost.end(), *plan.damaged_commit), plan.lost.end());
  return plan;
}

// Applies the plan to a file system holding the directory at copy_dir (the in-memory copy).
inline result<void> cut_log(io::file_system& fs, const repair_plan& plan) {
  for (const auto& file : plan.files) {
    const std::string path = io::join(copy_dir, file.name);
    if (file.whole) {
      AERO_TRY(fs.remove(path));
      continue;
    }
    AERO_TRY_ASSIGN(auto f, fs.open(path, io::open_mode::write));
    AERO_TRY(f->truncate(file.from));
    AERO_TRY(f->sync());
  }
  return fs.sync_dir(copy_dir);
}

// Cuts a fresh copy of the analysed files and opens it: the proof that the plan works.
inline result<recovery_report> try_repair_plan(const testing::fault_injection_fs& analysed,
                                               const repair_plan& plan) {
  auto trial = analysed.copy_disk();
  AERO_TRY(cut_log(*trial, plan));
  open_options options;
  options.fs = trial;
  AERO_TRY_ASSIGN(auto db, database::open(copy_dir, options));
  return db->recovery();
}

inline void describe_repair_plan(const repair_plan& plan, const result<recovery_report>& trial,
                                 std::ostream& out) {
  out << "repair plan: cut the log at " << plan.segment << " byte " << plan.offset
      << ", where the damage is, and discard everything after it:\n";
  for (const auto& file : plan.files) {
    if (file.whole)
      out << "  " << file.name << ": remove the whole file, bytes [0, " << file.to << "), " << file.to
          << " bytes\n";
    else
      out << "  " << file.name << ": discard bytes [" << file.from << ", " << file.to << "), "
          << file.to - file.from << " bytes (the file is truncated to " << file.from << " bytes)\n";
    for (const auto& f : file.findings) {
      out << "    bytes [" << f.offset << ", " << f.offset + f.bytes << "): ";
      if (!f.readable) out << f.note << "\n";
      else if (f.records == 1) out << "CommitId " << f.first << ", 1 whole record with valid checksums\n";
      else
        out << "CommitIds " << f.first << ".." << f.last << ", " << f.records
            << " whole records with valid checksums\n";
    }
    if (file.trailing_zeros > 0 && file.to - file.from > file.trailing_zeros)
      out << "    bytes [" << file.to - file.trailing_zeros << ", " << file.to
          << "): zeros (space allocated ahead of the records)\n";
    else if (file.trailing_zeros > 0)
      out << "    all zeros (space allocated ahead of the records)\n";
  }
  out << "  in all: " << plan.bytes << " bytes in " << plan.files.size() << " file(s)\n";
  if (trial) out << "  last CommitId kept: " << trial->last_commit_id << "\n";
  if (plan.damaged_commit && plan.damaged_reads_whole)
    out << "  the damaged record is CommitId " << *plan.damaged_commit
        << " (its checksums verify, but recovery refused it: see the error above)\n";
  else if (plan.damaged_commit)
    out << "  the damaged record is CommitId " << *plan.damaged_commit << " (its header verifies, its payload does not)\n";
  if (plan.lost.empty())
    out << "  no record after the damage reads whole with valid checksums: no readable commit is lost\n";
  else
    out << "  CommitIds lost that still read whole with valid checksums (commits that were acknowledged, "
           "unless the writer crashed before syncing them): "
        << commit_ranges(plan.lost) << " (" << plan.lost.size() << " records)\n";
}

// ---- repair: applying the plan to the directory ----

inline error posix_failure(const char* what, const std::string& path) {
  const int e = errno;
  return error(errc::storage_io_error, std::string(what) + " failed",
               {{"path", path}, {"errno", std::to_string(e)}});
}

inline result<void> fsync_path(const std::string& path, bool directory) {
  const int fd = ::open(path.c_str(), (directory ? O_RDONLY | O_DIRECTORY : O_RDONLY) | O_CLOEXEC);
  if (fd < 0) return posix_failure("open for fsync", path);
  const int rc = ::fsync(fd);
  const int e = errno;
  ::close(fd);
  errno = e;
  if (rc != 0) return posix_failure("fsync", path);
  return ok();
}

// Writes a new owner-only file and syncs it; an existing file is never overwritten.
inline result<void> write_private_file(const std::string& path, std::span<const std::byte> data) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return posix_failure("create", path);
  bool good = ::fchmod(fd, 0600) == 0;  // the umask cannot widen it; fchmod makes it exact
  std::size_t done = 0;
  while (good && done < data.size()) {
    const auto n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) good = false;
    else done += static_cast<std::size_t>(n);
  }
  good = good && ::fsync(fd) == 0;
  const int e = errno;
  ::close(fd);
  errno = e;
  if (!good) return posix_failure("write", path);
  return ok();
}

// "<dir>.repair-<UTC yyyymmddThhmmssZ>", beside the data directory.
inline std::string default_keep_directory(const std::string& dir) {
  std::string base = dir;
  while (base.size() > 1 && base.back() == '/') base.pop_back();
  if (base == "." || base == "/") base = std::filesystem::absolute(base).lexically_normal().string();
  while (base.size() > 1 && base.back() == '/') base.pop_back();
  const std::time_t now = std::time(nullptr);
  std::tm utc{};
  ::gmtime_r(&now, &utc);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &utc);
  return base + ".repair-" + stamp;
}

// The name under which the keep directory holds a file's discarded bytes: a removed
// segment under its own name (it is a whole segment), a cut tail under a name that says
// where the bytes came from.
inline std::string kept_name(const discarded_file& file) {
  return file.whole ? file.name : file.name + ".from-byte-" + std::to_string(file.from);
}

inline int fail_repair(const error& e, std::ostream& err, int code) {
  print_error(err, e);
  err << "repair stopped before changing the directory\n";
  return code;
}

// Under the directory's lock: checks that the files are the ones analysed, copies the
// discarded bytes to `keep` and syncs them, then cuts the log and syncs the directory.
inline int apply_repair_plan(const std::string& dir, const std::string& keep, const repair_plan& plan,
                             const directory_copy& analysed, testing::fault_injection_fs& pristine,
                             const std::string& plan_text, std::ostream& out, std::ostream& err) {
  io::posix_file_system disk;
  auto lock = disk.lock(io::join(dir, "LOCK"));
  if (!lock) return fail_repair(lock.error_value(), err, exit_unreadable);
  // A store that ran between the analysis and now (the lock was free for a moment) may
  // have changed the files: then the plan is for other bytes. Sizes show new and removed
  // data; a write over preallocated zeros keeps the size, so the files the plan touches
  // (the last segment is always one of them) are compared byte for byte.
  auto names = disk.list_dir(dir);
  if (!names) return fail_repair(names.error_value(), err, exit_unreadable);
  std::map<std::string, std::uint64_t> now;
  for (const auto& name : *names) {
    auto f = disk.open(io::join(dir, name), io::open_mode::read);
    if (!f) return fail_repair(f.error_value(), err, exit_unreadable);
    auto size = (*f)->size();
    if (!size) return fail_repair(size.error_value(), err, exit_unreadable);
    now[name] = *size;
  }
  const error changed(errc::storage_io_error,
                      "the directory changed after it was analysed (another process opened the store?); "
                      "run repair again",
                      {{"directory", dir}});
  if (now != analysed.sizes) return fail_repair(changed, err, exit_unreadable);
  std::vector<std::pair<std::string, std::vector<std::byte>>> kept;
  for (const auto& file : plan.files) {
    auto f = disk.open(io::join(dir, file.name), io::open_mode::read);
    if (!f) return fail_repair(f.error_value(), err, exit_unreadable);
    auto bytes = io::read_all(**f);
    if (!bytes) return fail_repair(bytes.error_value(), err, exit_unreadable);
    if (*bytes != pristine.contents(io::join(copy_dir, file.name))) return fail_repair(changed, err, exit_unreadable);
    kept.emplace_back(kept_name(file), std::vector<std::byte>(bytes->begin() + static_cast<std::ptrdiff_t>(file.from),
                                                              bytes->end()));
  }

  if (::mkdir(keep.c_str(), 0700) != 0) {
    const int e = errno;
    if (e == EEXIST)
      return fail_repair(error(errc::storage_exists, "the keep directory already exists; name a new one with --keep",
                               {{"path", keep}}),
                         err, exit_usage);
    errno = e;
    return fail_repair(posix_failure("mkdir of the keep directory", keep), err, exit_unreadable);
  }
  if (::chmod(keep.c_str(), 0700) != 0) return fail_repair(posix_failure("chmod", keep), err, exit_unreadable);
  std::uint64_t kept_bytes = 0;
  for (const auto& item : kept) {
    if (auto w = write_private_file(io::join(keep, item.first), item.second); !w)
      return fail_repair(w.error_value(), err, exit_unreadable);
    kept_bytes += item.second.size();
  }
  const std::string report = "aerodb repair of " + dir + ", applied\n\n" + plan_text;
  if (auto w = write_private_file(io::join(keep, "REPAIR.txt"), format::as_bytes(report)); !w)
    return fail_repair(w.error_value(), err, exit_unreadable);
  if (auto s = fsync_path(keep, true); !s) return fail_repair(s.error_value(), err, exit_unreadable);
  if (auto s = fsync_path(io::parent_dir(keep), true); !s) return fail_repair(s.error_value(), err, exit_unreadable);
  out << "kept: " << kept_bytes << " discarded bytes copied to " << keep << " (" << kept.size()
      << " file(s) and REPAIR.txt, the plan; owner-only, synced)\n";

  // From here on the directory changes. The copies above are durable, so a failure part
  // way loses nothing: the store still refuses to open, and repair can run again.
  for (const auto& file : plan.files) {
    const std::string path = io::join(dir, file.name);
    if (file.whole) continue;
    const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
    bool good = fd >= 0 && ::ftruncate(fd, static_cast<off_t>(file.from)) == 0 && ::fsync(fd) == 0;
    const int e = errno;
    if (fd >= 0) ::close(fd);
    errno = e;
    if (!good) {
      print_error(err, posix_failure("truncating the damaged segment", path));
      err << "the discarded bytes are safe in " << keep << "\n";
      return exit_unreadable;
    }
    out << "truncated " << file.name << " to " << file.from << " bytes\n";
  }
  // Highest sequence first, so that what is left is always a run of segments.
  for (auto it = plan.files.rbegin(); it != plan.files.rend(); ++it) {
    if (!it->whole) continue;
    const std::string path = io::join(dir, it->name);
    if (::unlink(path.c_str()) != 0) {
      print_error(err, posix_failure("removing a segment", path));
      err << "the discarded bytes are safe in " << keep << "\n";
      return exit_unreadable;
    }
    out << "removed " << it->name << "\n";
  }
  if (auto s = fsync_path(dir, true); !s) {
    print_error(err, s.error_value());
    return exit_unreadable;
  }
  lock->reset();  // database::open takes it again

  auto db = database::open(dir);
  if (!db) {
    print_error(err, db.error_value());
    err << "the log was cut but the store still does not open; the discarded bytes are in " << keep << "\n";
    return exit_damage;
  }
  out << "repaired: the store opens at CommitId " << (*db)->last_commit_id() << " ("
      << (*db)->recovery().to_string() << ")\n";
  return exit_ok;
}

// `aerodb repair DIR [--yes] [--keep KEEPDIR]` (docs/cli.md).
inline int run_repair(const std::string& dir, bool yes, const std::string& keep_arg, std::ostream& out,
                      std::ostream& err) {
  auto copy = copy_directory(dir);
  if (!copy) {
    print_error(err, copy.error_value());
    return exit_unreadable;
  }
  // The files as read, before recovery runs on the copy: the plan reads and proves
  // itself on these.
  const auto pristine = copy->fs->copy_disk();
  auto db = open_copy(*copy);
  if (db) {
    const recovery_report& r = (*db)->recovery();
    out << "nothing to repair: the store opens at CommitId " << r.last_commit_id << " (" << r.to_string()
        << ")\n";
    if (r.torn_tail)
      out << "  note: the torn tail of " << r.torn_tail->bytes << " bytes at " << r.torn_tail->segment
          << " byte " << r.torn_tail->offset
          << " is an unacknowledged write cut off by a crash; the next open discards it\n";
    return exit_ok;
  }
  const error& e = db.error_value();
  if (!is_damage(e.code())) {
    print_error(err, e);
    return exit_unreadable;
  }
  const std::string damage = "DAMAGED: " + location_of(e) + "\n  " + e.to_string() + "\n";
  out << damage;
  if (e.code() != errc::wal_corruption) {
    out << "repair cannot fix this: the damage is not in the log. Repair only cuts the log back to its last "
           "intact record; the checkpoint and its snapshot stand in for the log segments that were removed "
           "when it was written, so there is nothing to cut back to. Restore the directory from a backup "
           "made by `aerodb backup`. Nothing was changed.\n";
    return exit_damage;
  }
  if (!e.detail("format_version").empty()) {
    out << "repair cannot fix this: the segment is in another release's log format, which is not damage. "
           "Open the directory with the release that wrote it. Nothing was changed.\n";
    return exit_damage;
  }
  const std::string segment(e.detail("segment"));
  std::uint64_t offset = 0;
  try {
    offset = std::stoull(std::string(e.detail("offset")));
  } catch (const std::exception&) {
    out << "repair cannot fix this: the error names no byte offset in the log to cut at. Nothing was changed.\n";
    return exit_damage;
  }
  auto plan = make_repair_plan(*pristine, copy->sizes, segment, offset);
  if (!plan) {
    print_error(err, plan.error_value());
    out << "repair cannot fix this. Nothing was changed.\n";
    return exit_damage;
  }
  const auto trial = try_repair_plan(*pristine, *plan);
  std::ostringstream text;
  describe_repair_plan(*plan, trial, text);
  if (!trial) {
    text << "check: with the cut applied to the in-memory copy the store still does not open:\n  "
         << trial.error_value().to_string() << "\n";
    out << text.str() << "repair cannot fix this damage by cutting the log. Nothing was changed.\n";
    return exit_damage;
  }
  text << "check: with the cut applied to the in-memory copy, the store opens at CommitId "
       << trial->last_commit_id << " (" << trial->records_replayed << " records replayed)\n";
  out << text.str();
  if (!yes) {
    out << "nothing was changed. To apply this plan, run again with --yes: the discarded bytes are first "
           "copied to "
        << (keep_arg.empty() ? "a new directory " + dir + ".repair-<UTC time>" : keep_arg) << ".\n";
    return exit_damage;
  }
  const std::string keep = keep_arg.empty() ? default_keep_directory(dir) : keep_arg;
  {
    std::error_code ec1, ec2;
    const auto keep_parent = std::filesystem::weakly_canonical(std::filesystem::absolute(keep).parent_path(), ec1);
    const auto store = std::filesystem::weakly_canonical(std::filesystem::absolute(dir), ec2);
    if (!ec1 && !ec2 && keep_parent == store) {
      err << "error: the keep directory must not be inside the data directory: " << keep << "\n";
      return exit_usage;
    }
  }
  return apply_repair_plan(dir, keep, *plan, *copy, *pristine, damage + text.str(), out, err);
}

}  // namespace aerodb::cli
