// The simulated disk behind testing/fault_injection_fs.hpp, whose preamble describes the
// model: what the disk holds, how mutating ops are numbered and faulted, and what a crash
// leaves. The file-system interface (fault_injection_fs) and the handles (fault_file.hpp)
// change this state op by op (file::sync copies an inode's bytes to durable, sync_dir a
// directory's entries); what a crash keeps of it is decided here, in apply_crash, so a
// change to the crash model starts in this file.
//
// Owns: the vocabulary of the public API (op_kind, fault_kind, op_record, crash_kind,
// crash_spec) and, in fault_detail, the state one disk shares with its handles and locks
// (inodes, the current and durable namespaces, op counter, trace, pending faults, held
// locks, epoch), the path and error helpers, begin_op, apply_crash and copy_disk_state.
//
// Thread safety: state::mu guards every other member of a state; a function here that
// takes a state REQUIRES it held (said on each). The path and error helpers are pure.
//
// Invariants: an inode is shared by every name it has in either namespace; once a disk
// is in use, durable_ns changes only in sync_dir and apply_crash; `ops` and `epoch` only
// grow, and every op numbered in a state is recorded in its trace; a lock token is never
// handed out twice.
#pragma once

#include <aerodb/error.hpp>
#include <aerodb/io/posix_fs.hpp>  // errno_name / errno_text only

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace aerodb::testing {

enum class op_kind : std::uint8_t {
  open_append,
  open_create_or_truncate,
  append,
  sync,
  truncate,
  rename,
  remove,
  sync_dir,
  create_dir,
  lock,
  open_write,
  write_at,
};

constexpr std::string_view to_string(op_kind k) noexcept {
  switch (k) {
    case op_kind::open_append: return "open_append";
    case op_kind::open_create_or_truncate: return "open_create_or_truncate";
    case op_kind::append: return "append";
    case op_kind::sync: return "sync";
    case op_kind::truncate: return "truncate";
    case op_kind::rename: return "rename";
    case op_kind::remove: return "remove";
    case op_kind::sync_dir: return "sync_dir";
    case op_kind::create_dir: return "create_dir";
    case op_kind::lock: return "lock";
    case op_kind::open_write: return "open_write";
    case op_kind::write_at: return "write_at";
  }
  return "?";
}

// Which injected fault, if any, an op met.
enum class fault_kind : std::uint8_t { none, crash, fail };

struct op_record {
  std::uint64_t number = 0;  // 1-based; trace()[i].number == i + 1
  op_kind kind = op_kind::append;
  std::string path;         // normalised; the source for rename
  std::string target;       // rename destination; empty otherwise
  std::uint64_t bytes = 0;  // bytes appended or written (append, write_at) or new length (truncate); else 0
  fault_kind injected = fault_kind::none;
};

enum class crash_kind : std::uint8_t {
  // Power loss: every inode goes back to its synced bytes and every directory to its
  // synced entries. A file whose data was synced but whose directory entry never was
  // disappears, as it can on a real file system.
  drop_unsynced,
  // The process was killed but the kernel survived: everything written survives, names
  // included, as if everything had been synced.
  keep_unsynced,
  // Power loss in the middle of the last write: as drop_unsynced, except that the file
  // which received the most recent append or write_at keeps its durable bytes with the
  // first `keep_bytes` of its unsynced bytes (from the first byte that differs; clamped to
  // what exists, and inside the synced size rounded down to a 512-byte sector boundary)
  // written over them. It still vanishes if its directory entry was never made durable.
  tear_last_append,
  // Power loss with writeback still in progress on several files: as drop_unsynced for
  // names, but every file that has unsynced appended bytes independently keeps none, all,
  // or a prefix of them (from the first byte that differs), chosen from `seed`. A file
  // truncated since its last sync keeps either its durable or its current bytes.
  independent_loss,
  // Power loss with writeback in any order, the hardest kind, as a real file system may
  // leave it:
  //   - names: every directory keeps, name by name, either its synced or its current
  //     entry (a removal, creation or rename not yet synced may or may not have reached
  //     the disk, in any combination); a directory whose own entry is lost is lost with
  //     everything under it;
  //   - data: a file written at offsets since its last sync (appends and write_at) keeps,
  //     of its unsynced region, any subset of the `page_bytes` pages (aligned to file
  //     offsets) that region touches; the other pages hold what they held before (synced
  //     bytes, or zeros past the synced size), and the file's size is either its synced or
  //     its current size. A file truncated since its last sync keeps its synced or its
  //     current bytes.
  // Every choice comes from `seed`.
  writeback_reorder,
};

struct crash_spec {
  crash_kind kind = crash_kind::drop_unsynced;
  std::uint64_t keep_bytes = 0;  // tear_last_append only
  std::uint64_t seed = 0;        // independent_loss and writeback_reorder: same seed, same choices
  std::uint64_t page_bytes = 4096;  // writeback_reorder: the unit that reaches the disk whole
};

namespace fault_detail {

struct inode {
  std::vector<std::byte> current;
  std::vector<std::byte> durable;
  // Truncated (or reopened with truncation) since its last sync: a crash keeps either its
  // synced or its current bytes as a whole. Otherwise every change since the last sync was
  // a write at some offset (appends included), and a crash decides per region or page.
  bool rewritten = false;
};

// Where the unsynced bytes of a file that was only written at offsets since its last sync
// begin (the first byte that differs from the synced bytes, or the synced size when it
// only grew); nullopt when it was truncated or shrank, so only "all old or all new" fits.
inline std::optional<std::size_t> unsynced_from(const inode& n) {
  if (n.rewritten || n.current.size() < n.durable.size()) return std::nullopt;
  const auto diff = std::mismatch(n.durable.begin(), n.durable.end(), n.current.begin());
  return static_cast<std::size_t>(diff.first - n.durable.begin());
}

// The unit a disk writes whole (docs/reliability.md §1, assumption 1).
inline constexpr std::size_t sector_bytes = 512;

// One past the last byte of a file written at offsets that differs from its synced bytes
// (a byte past the synced size always does); `from` is unsynced_from(n).
inline std::size_t unsynced_end(const inode& n, std::size_t from) {
  std::size_t end = n.current.size();
  while (end > from && end <= n.durable.size() && n.current[end - 1] == n.durable[end - 1]) --end;
  return end;
}

// The synced bytes with current's bytes [from, from + keep) written over them (clamped to
// what exists): a write that reached the disk only in part, in order. Inside the synced
// size a write lands on sectors that exist, which are written whole: there the kept part
// ends at a sector boundary (rounded down). Past it the file's size may end anywhere.
inline std::vector<std::byte> keep_prefix(const inode& n, std::size_t from, std::size_t keep) {
  std::size_t end = std::min(n.current.size(), from + keep);
  if (end < n.durable.size() && end < unsynced_end(n, from))
    end = std::max(from, end / sector_bytes * sector_bytes);
  std::vector<std::byte> out = n.durable;
  if (out.size() < end) out.resize(end);
  if (end > from)
    std::copy(n.current.begin() + static_cast<std::ptrdiff_t>(from),
              n.current.begin() + static_cast<std::ptrdiff_t>(end),
              out.begin() + static_cast<std::ptrdiff_t>(from));
  return out;
}
using inode_ptr = std::shared_ptr<inode>;
using directory = std::map<std::string, inode_ptr>;  // std::string orders bytewise
using name_space = std::map<std::string, directory>;

struct state {
  mutable std::mutex mu;
  std::set<std::string> dirs;          // directories a running process sees
  std::set<std::string> durable_dirs;  // those whose entry was synced in their parent
  name_space current_ns;
  name_space durable_ns;
  std::uint64_t ops = 0;
  std::vector<op_record> trace;
  std::optional<std::uint64_t> crash_after;
  std::map<std::uint64_t, int> fail_at;
  // Bumped by crash(): a handle remembers the epoch it was opened in and dies with it.
  std::uint64_t epoch = 0;
  // Held locks, by inode (flock locks the file, not the name) -> token of the holder.
  // Tokens are never reused, so a lock object released after crash() cannot drop a lock
  // taken after the reboot.
  std::map<const inode*, std::uint64_t> locks;
  std::uint64_t next_lock_token = 1;
  std::weak_ptr<inode> last_append;
};

inline std::string normalize(std::string_view p) {
  std::string out;
  out.reserve(p.size());
  for (char c : p) {
    if (c == '/' && !out.empty() && out.back() == '/') continue;
    out += c;
  }
  while (out.size() > 1 && out.back() == '/') out.pop_back();
  return out;
}

struct split_path {
  std::string dir;
  std::string name;
};

// REQUIRES: p is normalised.
inline split_path split(const std::string& p) {
  const auto pos = p.rfind('/');
  if (pos == std::string::npos) return {"", p};
  if (pos == 0) return {"/", p.substr(1)};
  return {p.substr(0, pos), p.substr(pos + 1)};
}

inline bool is_root(const std::string& p) { return p.empty() || p == "." || p == "/"; }

inline bool is_dir(const state& s, const std::string& p) {
  return is_root(p) || s.dirs.count(p) != 0;
}

// The key under which a directory's entries are kept: "." names the same directory as "",
// the parent split() gives a relative name without a slash.
inline std::string dir_key(const std::string& d) { return d == "." ? std::string() : d; }

inline inode_ptr find(const name_space& ns, const std::string& p) {
  const auto [dir, name] = split(p);
  const auto d = ns.find(dir);
  if (d == ns.end()) return nullptr;
  const auto f = d->second.find(name);
  return f == d->second.end() ? nullptr : f->second;
}

inline std::string quote_path(const std::string& path) { return "\"" + path + "\""; }

// splitmix64: a fixed, portable sequence, so a crash_spec names the same crash everywhere.
inline std::uint64_t next_random(std::uint64_t& x) {
  std::uint64_t z = (x += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

inline error make_error(errc code, int err, std::string_view op, const std::string& path,
                        std::string what, std::string_view injected = {}) {
  std::string name = io::errno_name(err);
  what += ": ";
  what += io::errno_text(err);
  what += " (" + name + ").";
  std::vector<error_detail> details{{"op", std::string(op)},
                                    {"path", path},
                                    {"errno", std::to_string(err)},
                                    {"errno_name", std::move(name)}};
  if (!injected.empty()) details.push_back({"injected", std::string(injected)});
  return error(code, std::move(what), std::move(details));
}

inline error io_error(int err, std::string_view op, const std::string& path, std::string what) {
  return make_error(errc::storage_io_error, err, op, path, std::move(what));
}

// Numbers and records a mutating op, then applies any injected fault. REQUIRES: s.mu held.
// Returns the error to report when the op must fail without effect.
inline std::optional<error> begin_op(state& s, op_kind kind, std::string_view syscall,
                                     const std::string& path, std::string target = {},
                                     std::uint64_t bytes = 0) {
  const std::uint64_t n = ++s.ops;
  op_record rec{n, kind, path, std::move(target), bytes, fault_kind::none};
  std::optional<error> e;
  if (s.crash_after && n > *s.crash_after) {
    rec.injected = fault_kind::crash;
    e = make_error(errc::storage_io_error, EIO, syscall, path,
                   "Simulated crash: op " + std::to_string(n) + " (" +
                       std::string(to_string(kind)) + " of " + quote_path(path) +
                       ") came after crash_after(" + std::to_string(*s.crash_after) +
                       ") and had no effect",
                   "crash");
  } else if (const auto f = s.fail_at.find(n); f != s.fail_at.end()) {
    rec.injected = fault_kind::fail;
    e = make_error(errc::storage_io_error, f->second, syscall, path,
                   "Injected failure of op " + std::to_string(n) + " (" +
                       std::string(to_string(kind)) + " of " + quote_path(path) + ")",
                   "fail");
    s.fail_at.erase(f);
  }
  s.trace.push_back(std::move(rec));
  return e;
}

// Distinct inodes of a namespace in the order of their first name, so that choices made
// per file (independent_loss) do not depend on where the allocator put the inodes.
inline std::vector<inode*> inodes_in_name_order(const name_space& ns) {
  std::set<inode*> seen;
  std::vector<inode*> out;
  for (const auto& dir : ns)
    for (const auto& entry : dir.second)
      if (seen.insert(entry.second.get()).second) out.push_back(entry.second.get());
  return out;
}

// Distinct inodes of a namespace: one inode may sit under two names after a rename
// across directories whose both sides were not synced together.
inline std::vector<inode*> inodes(const name_space& ns) {
  std::set<inode*> seen;
  for (const auto& dir : ns)
    for (const auto& entry : dir.second) seen.insert(entry.second.get());
  return {seen.begin(), seen.end()};
}

// The directories that survive when `kept` are the ones whose entries reached the disk: a
// directory is found after a reboot only if its own entry and every ancestor's did.
inline std::set<std::string> reachable_dirs(const std::set<std::string>& kept) {
  std::set<std::string> out;
  for (const auto& d : kept) {
    bool ok = true;
    for (std::string p = split(d).dir; !is_root(p); p = split(p).dir)
      if (kept.count(p) == 0) {
        ok = false;
        break;
      }
    if (ok) out.insert(d);
  }
  return out;
}

// Drops from `ns` every directory that did not survive.
inline void drop_lost_dirs(name_space& ns, const std::set<std::string>& dirs) {
  for (auto it = ns.begin(); it != ns.end();)
    it = is_root(it->first) || dirs.count(it->first) != 0 ? std::next(it) : ns.erase(it);
}

// writeback_reorder's names: per directory and per name, the synced or the current entry.
inline name_space reorder_names(const state& s, std::set<std::string>& dirs, std::uint64_t& rng) {
  std::set<std::string> kept = s.durable_dirs;
  for (const auto& d : s.dirs)
    if (kept.count(d) == 0 && next_random(rng) % 2) kept.insert(d);
  dirs = reachable_dirs(kept);
  std::set<std::string> keys;
  for (const auto& [d, entries] : s.durable_ns) keys.insert(d);
  for (const auto& [d, entries] : s.current_ns) keys.insert(d);
  name_space out;
  static const directory none;
  for (const auto& d : keys) {
    const auto dur = s.durable_ns.find(d);
    const auto cur = s.current_ns.find(d);
    const directory& a = dur == s.durable_ns.end() ? none : dur->second;
    const directory& b = cur == s.current_ns.end() ? none : cur->second;
    std::set<std::string> names;
    for (const auto& e : a) names.insert(e.first);
    for (const auto& e : b) names.insert(e.first);
    directory chosen;
    for (const auto& n : names) {
      const auto x = a.find(n);
      const auto y = b.find(n);
      const inode_ptr synced = x == a.end() ? nullptr : x->second;
      const inode_ptr now = y == b.end() ? nullptr : y->second;
      const inode_ptr pick = synced == now ? synced : (next_random(rng) % 2 ? now : synced);
      if (pick) chosen[n] = pick;
    }
    if (!chosen.empty()) out[d] = std::move(chosen);
  }
  drop_lost_dirs(out, dirs);
  return out;
}

// writeback_reorder's data for one file written at offsets since its last sync, whose
// unsynced bytes start at `from`: each page of the unsynced region reached the disk or
// holds what was there before (the synced bytes, or zeros past the synced size); the size
// is the synced or the current one.
inline void reorder_pages(inode& n, std::size_t from, std::uint64_t page_bytes, std::uint64_t& rng) {
  const std::size_t to = n.current.size();
  const std::size_t page = static_cast<std::size_t>(std::max<std::uint64_t>(1, page_bytes));
  const bool extended = next_random(rng) % 2;
  std::vector<std::byte> out = n.current;
  for (std::size_t p = from / page * page; p < to; p += page) {
    if (next_random(rng) % 2) continue;  // this page reached the disk
    for (std::size_t i = std::max(p, from); i < std::min(p + page, to); ++i)
      out[i] = i < n.durable.size() ? n.durable[i] : std::byte{0};
  }
  // A size that never grew keeps only what lies inside the synced size (pages written
  // there in place may still have reached the disk).
  if (!extended) out.resize(n.durable.size());
  n.durable = std::move(out);
}

// What a reboot after a crash finds, per spec.kind (see crash_kind and
// fault_injection_fs::crash()): clears pending faults and locks, starts a new epoch, and
// sets both namespaces and every surviving inode to what survives. REQUIRES: s.mu held.
inline void apply_crash(state& s, const crash_spec& spec) {
  s.crash_after.reset();
  s.fail_at.clear();
  s.locks.clear();
  ++s.epoch;
  const inode_ptr torn = s.last_append.lock();
  s.last_append.reset();
  if (spec.kind == crash_kind::keep_unsynced) {
    s.durable_ns = s.current_ns;
    s.durable_dirs = s.dirs;
    for (inode* n : inodes(s.current_ns)) n->durable = n->current;
    return;
  }
  std::uint64_t rng = spec.seed;
  if (spec.kind == crash_kind::writeback_reorder) {
    std::set<std::string> dirs;
    name_space ns = reorder_names(s, dirs, rng);
    s.dirs = dirs;
    s.durable_dirs = std::move(dirs);
    s.durable_ns = std::move(ns);
    s.current_ns = s.durable_ns;
    for (inode* n : inodes_in_name_order(s.durable_ns)) {
      if (n->current == n->durable) {
        n->rewritten = false;
        continue;
      }
      if (const auto from = unsynced_from(*n))
        reorder_pages(*n, *from, spec.page_bytes, rng);
      else if (next_random(rng) % 2)
        n->durable = n->current;
      n->current = n->durable;
      n->rewritten = false;
    }
    return;
  }
  s.dirs = reachable_dirs(s.durable_dirs);
  s.durable_dirs = s.dirs;
  drop_lost_dirs(s.durable_ns, s.dirs);
  s.current_ns = s.durable_ns;
  for (inode* n : inodes_in_name_order(s.durable_ns)) {
    // Written at offsets only (appends included) since the last sync, with something unsynced.
    const auto from = n->current != n->durable ? unsynced_from(*n) : std::nullopt;
    if (spec.kind == crash_kind::tear_last_append && n == torn.get() && from) {
      n->durable = keep_prefix(*n, *from, static_cast<std::size_t>(std::min<std::uint64_t>(
                                              spec.keep_bytes, n->current.size() - *from)));
    } else if (spec.kind == crash_kind::independent_loss && n->current != n->durable) {
      const std::uint64_t choice = fault_detail::next_random(rng);
      if (!from) {
        if (choice % 2) n->durable = n->current;
      } else if (choice % 3 == 1) {
        n->durable = n->current;
      } else if (choice % 3 == 2) {
        const std::size_t keep = static_cast<std::size_t>(
            fault_detail::next_random(rng) % (n->current.size() - *from + 1));
        n->durable = keep_prefix(*n, *from, keep);
      }
    }
    n->current = n->durable;
    n->rewritten = false;
  }
}

// Copies the disk of `src` into `d`, a fresh state: directories, both namespaces and
// the inodes they name (an inode under two names stays one inode), the op count and the
// file last appended to; not handles, locks, pending faults or the trace.
// REQUIRES: src.mu held; no one else uses `d` yet.
inline void copy_disk_state(const state& src, state& d) {
  d.dirs = src.dirs;
  d.durable_dirs = src.durable_dirs;
  d.ops = src.ops;
  std::map<const inode*, inode_ptr> copies;
  auto copy_ns = [&](const name_space& from) {
    name_space to;
    for (const auto& [dir, entries] : from)
      for (const auto& [name, node] : entries) {
        auto& c = copies[node.get()];
        if (!c) c = std::make_shared<inode>(*node);
        to[dir][name] = c;
      }
    return to;
  };
  d.current_ns = copy_ns(src.current_ns);
  d.durable_ns = copy_ns(src.durable_ns);
  if (auto last = src.last_append.lock()) {
    const auto c = copies.find(last.get());
    if (c != copies.end()) d.last_append = c->second;
  }
}

}  // namespace fault_detail

}  // namespace aerodb::testing
