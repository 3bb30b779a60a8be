// Installing a snapshot bootstrap in a replica's directory (docs/replication.md §8): the
// step that replaces the replica's whole state, its log included, by a primary's snapshot
// at P and the primary's segment that holds record P, so that a crash at any point leaves
// the old state or the new one, never a mix.
//
// Why a marker file and not the CHECKPOINT record alone: the new state needs the old log
// gone and the staged segment in its place, and neither order of those two steps with the
// CHECKPOINT switch opens cleanly after a crash between them (old segments below P and a
// checkpoint at P: the log ends below its checkpoint; the staged segment in place under
// the old checkpoint: a gap in the log). So the switch is the durable BOOTSTRAP marker
// (format/bootstrap_marker.hpp), written once everything is staged; every step after it
// is idempotent, and every open runs them again while the marker exists
// (finish_bootstrap, from recovery's first step).
//
//   stage      the caller writes and syncs bootstrap-data.staged (the snapshot data file)
//              and bootstrap-segment.staged (the segment's header and records
//              first_commit ..= P)
//   install    data renamed to snapshot-<P>.data; its manifest written durably; the
//              directory synced                                  (crash: old state)
//              BOOTSTRAP written durably, the directory synced   (the switch)
//   roll fwd   CHECKPOINT naming P's manifest, durably; every segment but the new one
//              removed; the staged segment renamed to its segment name; the directory
//              synced; BOOTSTRAP removed, the directory synced   (crash: new state)
//
// Thread safety: free functions; REQUIRE that no instance has the directory open (the
// replica closes its database first; recovery holds the directory's lock).
#pragma once

#include <aerodb/error.hpp>
#include <aerodb/format/bootstrap_marker.hpp>
#include <aerodb/format/snapshot_format.hpp>
#include <aerodb/format/wal_format.hpp>
#include <aerodb/io/durable_file.hpp>
#include <aerodb/io/file_system.hpp>

#include <string>

namespace aerodb::engine {

namespace detail {

inline result<bool> file_exists(io::file_system& fs, const std::string& dir, std::string_view name) {
  return fs.exists(io::join(dir, std::string(name)));
}

}  // namespace detail

// The steps after the switch. Idempotent: each one finds its work done, or does it.
inline result<void> roll_bootstrap_forward(io::file_system& fs, const std::string& dir,
                                           const format::bootstrap_marker& m) {
  const std::string manifest_name = format::snapshot_manifest_file_name(m.commit);
  AERO_TRY_ASSIGN(const bool have_manifest, detail::file_exists(fs, dir, manifest_name));
  if (!have_manifest)
    return error(errc::checkpoint_snapshot_missing,
                 "the bootstrap marker names a snapshot whose manifest is missing",
                 {{"file", manifest_name}, {"commit_id", std::to_string(m.commit)}});
  AERO_TRY_ASSIGN(auto record, format::encode_checkpoint({m.commit, manifest_name}));
  AERO_TRY(io::write_file_durably(fs, dir, std::string(format::checkpoint_file_name), record));
  AERO_TRY(fs.sync_dir(dir));

  const std::string target = format::segment_file_name(m.seq);
  AERO_TRY_ASSIGN(const bool staged, detail::file_exists(fs, dir, format::bootstrap_staged_segment_name));
  AERO_TRY_ASSIGN(auto names, fs.list_dir(dir));
  for (const auto& n : names) {
    if (!format::parse_segment_file_name(n)) continue;
    // Once renamed, the new segment is the one to keep; before, every segment is old.
    if (!staged && n == target) continue;
    AERO_TRY(fs.remove(io::join(dir, n)));
  }
  if (staged) {
    AERO_TRY(fs.rename(io::join(dir, std::string(format::bootstrap_staged_segment_name)), io::join(dir, target)));
  } else {
    AERO_TRY_ASSIGN(const bool placed, detail::file_exists(fs, dir, target));
    if (!placed)
      return error(errc::wal_corruption, "a bootstrap's segment is missing: neither staged nor in place",
                   {{"segment", target}, {"commit_id", std::to_string(m.commit)}});
  }
  AERO_TRY(fs.sync_dir(dir));
  AERO_TRY(fs.remove(io::join(dir, std::string(format::bootstrap_file_name))));
  AERO_TRY(fs.sync_dir(dir));
  return ok();
}

// Recovery's first step: finishes an install whose switch is durable; otherwise removes
// the staged leftovers of one that never reached it. True when an install was finished.
inline result<bool> finish_bootstrap(io::file_system& fs, const std::string& dir) {
  const std::string marker_path = io::join(dir, std::string(format::bootstrap_file_name));
  AERO_TRY_ASSIGN(const bool has_marker, fs.exists(marker_path));
  if (has_marker) {
    AERO_TRY_ASSIGN(auto f, fs.open(marker_path, io::open_mode::read));
    AERO_TRY_ASSIGN(auto bytes, io::read_all(*f));
    AERO_TRY_ASSIGN(auto m, format::decode_bootstrap_marker(bytes));
    AERO_TRY(roll_bootstrap_forward(fs, dir, m));
    return true;
  }
  AERO_TRY_ASSIGN(auto names, fs.list_dir(dir));
  bool any = false;
  for (const auto& n : names) {
    if (!format::is_bootstrap_staged_file(n)) continue;
    AERO_TRY(fs.remove(io::join(dir, n)));
    any = true;
  }
  if (any) AERO_TRY(fs.sync_dir(dir));
  return false;
}

// The install, from staged files to the new state. `data_size` and `data_crc` describe
// the staged data file (the caller checked them against what it received).
// REQUIRES: both staged files written and synced; no instance has `dir` open.
inline result<void> install_bootstrap(io::file_system& fs, const std::string& dir, const format::bootstrap_marker& m,
                                      std::uint64_t data_size, std::uint32_t data_crc) {
  const std::string data_name = format::snapshot_data_file_name(m.commit);
  AERO_TRY(fs.rename(io::join(dir, std::string(format::bootstrap_staged_data_name)), io::join(dir, data_name)));
  format::manifest man{m.commit, {format::manifest_file{data_name, data_size, data_crc}}};
  AERO_TRY_ASSIGN(auto manifest_bytes, format::encode_manifest(man));
  AERO_TRY(io::write_file_durably(fs, dir, format::snapshot_manifest_file_name(m.commit), manifest_bytes));
  AERO_TRY(fs.sync_dir(dir));
  // The switch.
  AERO_TRY(io::write_file_durably(fs, dir, std::string(format::bootstrap_file_name),
                                  format::encode_bootstrap_marker(m)));
  AERO_TRY(fs.sync_dir(dir));
  return roll_bootstrap_forward(fs, dir, m);
}

}  // namespace aerodb::engine
