// Bit-flip sweep: single bits are flipped, one at a time, in every file of a closed data
// directory (WAL segments, the snapshot data file, its manifest, the CHECKPOINT record),
// and the directory is opened again. Each flip must make the open fail with the code that
// names the damaged file (AERO_WAL_CORRUPTION, AERO_SNAPSHOT_CORRUPTION,
// AERO_CHECKPOINT_CORRUPTION), FATAL; an open that succeeds, or fails with another code,
// is a violation. Every bit of the small files, of every segment header and of the log's
// last record is flipped; the large files get evenly spread positions. The one exception
// is the preallocated zeros after the log's last record (format version 2): a single set
// bit there is not a record and loses nothing, so the open must succeed with exactly the
// acknowledged state and report the stray bit as a torn tail at the end of the log.
//
// A second sweep flips bits inside a final record that was never acknowledged, written over
// the preallocated zeros, of which a crash kept any subset of its 512-byte sectors: there
// the open may discard the torn tail (and must report it, with exactly the acknowledged
// state left), or fail with AERO_WAL_CORRUPTION. Never a different state.
//
// The engine opening each damaged copy rotates through the policy matrix. AERODB_SCALE
// sizes the sampled part; AERODB_LONG=1 flips every bit of every file.
#include "support/workload.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <set>

using namespace aerodb;
using namespace aerodb_test;
namespace fmt = aerodb::format;

namespace {

using matrix = engine_list<AERODB_ENGINES>;

// The code a flip in this file must produce.
std::optional<errc> expected_code(const std::string& name) {
  if (fmt::parse_segment_file_name(name)) return errc::wal_corruption;
  if (name == "CHECKPOINT") return errc::checkpoint_corruption;
  if (name.rfind("snapshot-", 0) == 0) return errc::snapshot_corruption;
  return std::nullopt;
}

struct outcome {
  bool opened = false;
  std::string image;        // when opened
  bool torn = false;        // when opened: a torn tail was reported
  std::uint64_t torn_offset = 0, torn_bytes = 0;
  std::optional<errc> code;  // when not opened
  severity level = severity::reject;
  std::string message;
};

template <class Db>
outcome open_copy(const testing::fault_injection_fs& disk, const std::string& file,
                  std::uint64_t bit) {
  auto fs = disk.copy_disk();
  fs->flip_bit("/db/" + file, bit);
  open_options opts;
  opts.fs = fs;
  auto db = Db::open("/db", opts);
  outcome o;
  if (!db) {
    o.code = db.code();
    o.level = db.error_value().level();
    o.message = db.error_value().to_string();
    return o;
  }
  o.opened = true;
  o.image = image_of(**db);
  if (const auto& t = (*db)->recovery().torn_tail) {
    o.torn = true;
    o.torn_offset = t->offset;
    o.torn_bytes = t->bytes;
  }
  return o;
}

// A closed directory with a checkpoint, log records on both sides of it and several
// segments.
std::shared_ptr<testing::fault_injection_fs> make_directory(open_options& base, std::string& image) {
  auto fs = std::make_shared<testing::fault_injection_fs>();
  base.wal_segment_bytes = 1024;
  auto opts = base;
  opts.fs = fs;
  const mixed_workload w = make_mixed_workload(77, 160);
  auto db = open_or_fail<database>("/db", opts);
  std::vector<database::read_view> held;
  run_steps(*db, w, 0, w.steps.size() / 2, held);
  REQUIRE(db->checkpoint());
  run_steps(*db, w, w.steps.size() / 2, w.steps.size(), held);
  held.clear();
  image = image_of(*db);
  return fs;
}

}  // namespace

TEST_CASE("bit-flip sweep: every flip in a closed directory fails the open with the file's code") {
  const bool long_run = std::getenv("AERODB_LONG") != nullptr;
  open_options base;
  std::string image;
  const auto disk = make_directory(base, image);
  commit_id checkpoint = 0;
  {
    auto clean = disk->copy_disk();
    auto opts = base;
    opts.fs = clean;
    auto db = open_or_fail<database>("/db", opts);
    REQUIRE(image_of(*db) == image);
    checkpoint = db->recovery().checkpoint;
    REQUIRE(checkpoint > 0);
  }
  // Segments the checkpoint wholly covers that its removal could not take yet (the active
  // one when it ran): never read (format.md §9.1, row 0), so a flip in one changes nothing,
  // and recovery deletes it.
  std::set<std::string> covered;
  {
    auto all = disk->list_dir("/db");
    REQUIRE(all);
    std::vector<std::string> segs;
    for (const auto& n : *all)
      if (fmt::parse_segment_file_name(n)) segs.push_back(n);
    auto scratch = disk->copy_disk();
    auto n = wal::count_covered_segments(*scratch, "/db", segs, checkpoint);
    REQUIRE(n);
    covered.insert(segs.begin(), segs.begin() + static_cast<std::ptrdiff_t>(*n));
  }

  auto names = disk->list_dir("/db");
  REQUIRE(names);
  std::map<std::string, std::uint64_t> sizes;
  std::string last_segment;
  for (const auto& n : *names) {
    const auto bytes = disk->contents("/db/" + n);
    if (bytes.empty()) continue;  // the lock file
    if (!expected_code(n)) FAIL("unexpected file in the data directory: " << n);
    sizes[n] = bytes.size();
    if (fmt::parse_segment_file_name(n)) last_segment = n;
  }
  std::size_t segments = 0, snapshot_files = 0;
  for (const auto& [n, size] : sizes) {
    segments += fmt::parse_segment_file_name(n).has_value();
    snapshot_files += n.rfind("snapshot-", 0) == 0;
  }
  REQUIRE(segments >= 3);
  REQUIRE(snapshot_files == 2);  // data file and manifest
  REQUIRE(sizes.count("CHECKPOINT"));

  // The last record of the log: its start is found by walking the last segment's frames
  // up to the zeros after them.
  std::uint64_t last_record = 0, log_end = 0;
  {
    const auto bytes = disk->contents("/db/" + last_segment);
    std::uint64_t off = fmt::segment_header_size;
    while (off + fmt::record_header_size <= bytes.size() &&
           std::any_of(bytes.begin() + static_cast<std::ptrdiff_t>(off), bytes.end(),
                       [](std::byte b) { return b != std::byte{0}; })) {
      last_record = off;
      off += fmt::record_header_size +
             fmt::load_le<std::uint32_t>(bytes.data() + off + 4);
    }
    REQUIRE(off <= bytes.size());
    REQUIRE(last_record > 0);
    log_end = off;
  }

  // Positions: every bit of files up to 512 bytes, of each segment header and of the last
  // record; in larger files an even spread, `sampled` positions in all.
  const std::uint64_t sampled = long_run ? UINT64_MAX
                                         : static_cast<std::uint64_t>(std::max(2000.0, 20000 * test_scale()));
  std::uint64_t large_bits = 0;
  for (const auto& [n, size] : sizes)
    if (size > 512) large_bits += 8 * size;
  std::map<std::string, std::set<std::uint64_t>> positions;
  for (const auto& [n, size] : sizes) {
    auto& p = positions[n];
    const std::uint64_t bits = 8 * size;
    if (size <= 512 || long_run) {
      for (std::uint64_t b = 0; b < bits; ++b) p.insert(b);
      continue;
    }
    if (fmt::parse_segment_file_name(n))
      for (std::uint64_t b = 0; b < 8 * fmt::segment_header_size; ++b) p.insert(b);
    if (n == last_segment)  // the last record and the first 64 bytes of zeros after it
      for (std::uint64_t b = 8 * last_record; b < std::min(bits, 8 * (log_end + 64)); ++b) p.insert(b);
    const std::uint64_t share = std::max<std::uint64_t>(1, sampled * bits / large_bits);
    // An odd stride walks through every bit position within a byte.
    std::uint64_t stride = std::max<std::uint64_t>(1, bits / share) | 1;
    for (std::uint64_t b = 0; b < bits; b += stride) p.insert(b);
  }

  std::map<std::string, std::uint64_t> flips_per_kind;
  std::uint64_t flips = 0, stray = 0, covered_flips = 0;
  for (const auto& entry : positions) {
    // Named copies: Clang 14 cannot capture structured bindings in lambdas (INFO, at).
    const std::string& n = entry.first;
    const std::set<std::uint64_t>& ps = entry.second;
    const errc want = *expected_code(n);
    for (std::uint64_t bit : ps) {
      INFO("flip of bit " << bit << " (byte " << bit / 8 << ") of " << n << " ("
                          << sizes[n] << " bytes)");
      outcome o;
      matrix::at(static_cast<std::size_t>(flips % matrix::size),
                 [&]<class Db>() { o = open_copy<Db>(*disk, n, bit); });
      ++flips;
      if (n == last_segment && bit >= 8 * log_end) {
        // A stray bit in the zeros after the log's end: nothing acknowledged is there.
        if (!o.opened) FAIL("a stray bit after the log's end refused the open: " << o.message);
        REQUIRE(o.image == image);
        REQUIRE(o.torn);
        CHECK(o.torn_offset == log_end);
        ++stray;
        continue;
      }
      if (covered.count(n) && !(n == last_segment)) {
        if (!o.opened) FAIL("a flip in a segment the checkpoint covers refused the open: " << o.message);
        REQUIRE(o.image == image);
        ++covered_flips;
        continue;
      }
      if (o.opened) FAIL("the open succeeded" << (o.image == image ? " with the same state" : " with a DIFFERENT state"));
      if (*o.code != want) FAIL("wrong code: " << o.message);
      REQUIRE(o.level == severity::fatal);
    }
    const std::string kind = fmt::parse_segment_file_name(n) ? "WAL segments"
                             : n == "CHECKPOINT"            ? "CHECKPOINT"
                             : n.find("manifest") != std::string::npos ? "snapshot manifest"
                                                                       : "snapshot data";
    flips_per_kind[kind] += ps.size();
  }
  std::printf("bit-flip sweep (closed directory): %llu flips, every one refused with its file's code "
              "except %llu stray bits after the log's end (opened, acknowledged state, torn tail reported) "
              "and %llu in %zu segment(s) the checkpoint covers (opened, never read):",
              static_cast<unsigned long long>(flips), static_cast<unsigned long long>(stray),
              static_cast<unsigned long long>(covered_flips), covered.size());
  for (const auto& [k, c] : flips_per_kind)
    std::printf(" %s %llu;", k.c_str(), static_cast<unsigned long long>(c));
  std::printf(" (%zu segments, %zu files)\n", segments, sizes.size());
  boost::json::object per_file_kind;
  for (const auto& [k, c] : flips_per_kind) per_file_kind[k] = c;
  print_counts({{"campaign", "bit-flips-closed"},
                {"engines", matrix::size},
                {"flips", flips},
                {"stray_bits_after_log_end", stray},
                {"covered_segment_flips", covered_flips},
                {"flips_per_file_kind", per_file_kind},
                {"segments", segments},
                {"files", sizes.size()}});
  if (test_scale() >= 0.5) CHECK(flips >= 10000);
}

TEST_CASE("bit-flip sweep: flips in a torn, unacknowledged final record") {
  const bool long_run = std::getenv("AERODB_LONG") != nullptr;
  open_options base;
  std::string image;
  const auto disk = make_directory(base, image);

  // One more commit whose append reaches the file but whose fsync never happens: it is
  // not acknowledged. Power is lost with part of it written. Its size is chosen so that it
  // ends 48 bytes past a sector boundary: every sweep has sector subsets to try, whatever
  // the layout of the log before it.
  std::uint64_t record_start = 0;
  {
    auto copy = disk->copy_disk();
    commit_id checkpoint = 0;
    {
      auto opts = base;
      opts.fs = copy;
      checkpoint = open_or_fail<database>("/db", opts)->recovery().checkpoint;
    }
    auto scan = wal::read_wal(*copy, "/db", checkpoint,
                              [](const wal::wal_record&) -> result<void> { return ok(); });
    REQUIRE(scan);
    record_start = scan->segments.back().valid_end;
  }
  auto json_with_name = [](std::size_t n) {
    return R"({"_id":"never-acknowledged","name":")" + std::string(n, 'n') +
           R"(","age":7,"address":{"city":"c1"}})";
  };
  std::string json;
  {
    const auto doc = document_from_json(json_with_name(0));
    REQUIRE(doc);
    // The write_batch record of one insert (format.md §5, §6.3) with an empty name.
    const std::uint64_t empty_name = fmt::record_header_size + 4 + 1 + 2 + 5 + 2 +
                                     std::string_view("never-acknowledged").size() + 4 + 4 +
                                     doc->bytes().size() + 1;
    std::uint64_t end = (record_start / 512 + 1) * 512 + 48;
    if (end - record_start < empty_name + 1) end += 512;
    json = json_with_name(end - record_start - empty_name);
  }
  std::uint64_t tail_start = 0, tail_size = 0;
  std::string segment;
  // The ops allowed before the crash: enough for the record's write (the insert may
  // first have to start a new segment or allocate), not for its sync. Found by trying.
  std::uint64_t allowed = 0;
  auto build = [&](testing::crash_spec spec) {
    auto d = disk->copy_disk();
    auto opts = base;
    opts.fs = d;
    opts.wal_segment_bytes = 1 << 20;  // the record goes into the last, durable segment
    {
      auto db = open_or_fail<database>("/db", opts);
      REQUIRE(db->last_commit_id() > 0);
      d->crash_after(d->op_count() + allowed);
      auto r = db->insert("users", 1, json);
      REQUIRE_FALSE(r);
    }
    d->crash(spec);
    return d;
  };
  // The durable state before the record, and the record written whole (process killed
  // after the write): where it went is where the two differ. The insert first allocates
  // log space (zeros, synced); `allowed` grows until the record itself is written too.
  std::shared_ptr<testing::fault_injection_fs> before, whole;
  for (;;) {
    ++allowed;
    REQUIRE(allowed < 12);
    before = build({testing::crash_kind::drop_unsynced});
    whole = build({testing::crash_kind::keep_unsynced});
    auto names = whole->list_dir("/db");
    REQUIRE(names);
    for (const auto& n : *names)
      if (fmt::parse_segment_file_name(n)) segment = n;
    const auto a = before->contents("/db/" + segment);
    const auto b = whole->contents("/db/" + segment);
    if (a.size() != b.size()) continue;  // only the allocation's zeros so far
    const auto first = std::mismatch(a.begin(), a.end(), b.begin());
    if (first.first == a.end()) continue;
    tail_start = static_cast<std::uint64_t>(first.first - a.begin());
    std::uint64_t last = a.size();
    while (last > tail_start && a[last - 1] == b[last - 1]) --last;
    tail_size = last - tail_start;
    if (tail_size > fmt::record_header_size) break;
  }
  CHECK(tail_start == record_start);
  CHECK((tail_start + tail_size) % 512 == 48);
  const std::uint64_t sector = 512;
  const std::uint64_t first_sector = tail_start / sector;
  const std::uint64_t sectors = (tail_start + tail_size - 1) / sector - first_sector + 1;
  REQUIRE(sectors <= 8);

  std::uint64_t discarded = 0, refused = 0, flips = 0, states = 0;
  // Every subset of the record's sectors that reached the disk, the others still the
  // preallocated zeros; the empty subset is a clean end of the log, the full one the
  // whole record.
  for (std::uint64_t mask = 1; mask < (std::uint64_t{1} << sectors); ++mask) {
    auto bytes = whole->contents("/db/" + segment);
    const auto zeros = before->contents("/db/" + segment);
    for (std::uint64_t k = 0; k < sectors; ++k) {
      if (mask & (std::uint64_t{1} << k)) continue;
      const std::uint64_t lo = std::max(tail_start, (first_sector + k) * sector);
      const std::uint64_t hi = std::min(tail_start + tail_size, (first_sector + k + 1) * sector);
      std::copy(zeros.begin() + static_cast<std::ptrdiff_t>(lo), zeros.begin() + static_cast<std::ptrdiff_t>(hi),
                bytes.begin() + static_cast<std::ptrdiff_t>(lo));
    }
    const auto state = before->copy_disk();
    {
      auto f = state->open("/db/" + segment, io::open_mode::write);
      REQUIRE(f);
      REQUIRE((*f)->write_at(0, bytes));
      REQUIRE((*f)->sync());
    }
    ++states;
    for (std::uint64_t bit = 8 * tail_start; bit < 8 * (tail_start + tail_size); ++bit) {
      // Every bit within 32 bytes of the record's ends or of a sector boundary, where the
      // rules decide; elsewhere (the middle of the name) every 13th, or all in the long run.
      const std::uint64_t byte = bit / 8;
      const bool near_edge = byte < tail_start + 32 || byte + 32 >= tail_start + tail_size ||
                             byte % sector < 32 || byte % sector >= sector - 32;
      if (!near_edge && !long_run && bit % 13 != 0) continue;
      INFO("flip of bit " << bit << " in an unacknowledged record of " << tail_size
                          << " bytes at " << tail_start << ", sectors kept (mask) " << mask);
      outcome o;
      matrix::at(static_cast<std::size_t>(flips % matrix::size),
                 [&]<class Db>() { o = open_copy<Db>(*state, segment, bit); });
      ++flips;
      if (o.opened) {
        REQUIRE(o.image == image);  // exactly the acknowledged state
        REQUIRE(o.torn);            // and the discarded bytes are reported
        CHECK(o.torn_offset == tail_start);
        ++discarded;
      } else {
        REQUIRE(*o.code == errc::wal_corruption);
        ++refused;
      }
      // The whole record, written: any flip in it is damage to a written record.
      if (mask + 1 == (std::uint64_t{1} << sectors)) REQUIRE_FALSE(o.opened);
    }
  }
  std::printf("bit-flip sweep (unacknowledged last record): %llu flips: %llu torn tails "
              "discarded and reported with the acknowledged state intact, %llu refused with "
              "AERO_WAL_CORRUPTION\n",
              static_cast<unsigned long long>(flips), static_cast<unsigned long long>(discarded),
              static_cast<unsigned long long>(refused));
  print_counts({{"campaign", "bit-flips-last-record"},
                {"engines", matrix::size},
                {"flips", flips},
                {"sector_states", states},
                {"torn_tails_discarded", discarded},
                {"refused", refused}});
  CHECK(discarded > 0);
  CHECK(refused > 0);
}
