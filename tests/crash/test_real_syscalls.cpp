// The real POSIX path: the engine's real system calls, replayed into every crash state a
// POSIX file system may leave on power loss.
//
// The other crash campaigns run over the fault-injecting file system, which checks the
// engine against the file_system seam's contract; nothing there checks that
// io/posix_fs.hpp makes the calls the contract promises, or that the sequence of real
// calls is crash-safe. Here the workload program (tests/crash/real_syscalls_workload.cpp,
// workload in tests/support/real_syscalls_workload.hpp) opens a NEW store with the real
// POSIX file system and runs ~90 commits, two checkpoints and a GC under
//   strace -f -xx -s 100000000 -e trace=<file, descriptor and sync calls> -o TRACE
// for both engines (baseline, accelerated) and two WAL segment sizes (512 and 4608 bytes):
// four runs. It marks each commit on stdout with one write(2) before the call
// ("BEGIN <step>") and one after it returned ("ACK <CommitId>"), so the markers sit in
// the trace between the engine's calls.
//
// The test replays each trace into a model of the file system (descriptors -> open file
// descriptions -> inodes; O_CREAT/O_TRUNC/O_APPEND; cwd-relative, dirfd-relative and
// absolute paths; only the store directory and its parent are modelled) and after every
// traced call (a crash point) builds crash states under this model of power loss:
//   - a directory entry (a file's or a directory's creation, rename or unlink, the store
//     directory's own mkdir included) is durable only after an fsync of its parent
//     directory; each entry that is not yet durable is independently in its old or its new
//     state (a rename is one entry change: its two names move together); a lost directory
//     loses everything under it;
//   - file data written but not yet fdatasync'ed/fsync'ed: any subset of its 512-byte
//     sectors (aligned to file offsets) reached the disk, the rest reads as zeroes (or the
//     old bytes where the region existed before); the size is the synced one or the
//     current one. Sectors are written atomically: no tear inside a sector.
// Per crash point: the two extreme states (everything unsynced lost; everything kept) and
// a few seeded random choices. Identical states are deduplicated by a hash of their files.
// Each distinct state is materialized in a temporary directory and opened by the real
// engine (posix fs), baseline and accelerated, and checked:
//   (a) it opens (a refusal is a failure);
//   (b) the recovered last CommitId L is at least the last ACKed commit before the crash
//       point and at most the last BEGUN one;
//   (c) the documents equal the workload's contents after CommitId L, and a query on the
//       indexed field finds exactly the expected documents.
// The trace is also checked against the POSIX contract directly: at every ACK, every WAL
// file written since its last fdatasync/fsync is a violation, and so is every creation,
// rename and unlink in the store (and the mkdir of the store directory itself) not yet
// followed by an fsync of its parent directory.
//
// Prints AERODB_COUNTS (tests/support/counts.hpp) and a summary line; failures and
// violations are grouped by reason (numbers replaced by '#') with one example each.
// AERODB_REAL_SYSCALLS_KEEP=<dir> keeps (a few of) the failing states in <dir>.
// Needs strace (AERODB_STRACE, set by tests/meson.build; CI installs it) and the workload
// program (AERODB_REAL_SYSCALLS_WORKLOAD).
#include "support/common.hpp"
#include "support/real_syscalls_workload.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <random>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace aerodb;
using namespace aerodb_test;

namespace {

namespace rs = aerodb_test::real_syscalls;
namespace stdfs = std::filesystem;

constexpr std::uint64_t sector = 512;
constexpr const char* traced_calls =
    "openat,open,creat,openat2,write,pwrite64,writev,pwritev,pwritev2,fsync,fdatasync,"
    "sync_file_range,sync,syncfs,rename,renameat,renameat2,unlink,unlinkat,rmdir,mkdir,mkdirat,"
    "ftruncate,truncate,fallocate,close,dup,dup2,dup3,fcntl,chdir,fchdir,lseek";

// ---- the trace ---------------------------------------------------------------------------

struct call {
  std::size_t line = 0;
  std::string name;
  std::vector<std::string> args;  // top-level arguments, as strace printed them
  long long ret = 0;
  std::string text;  // the line, shortened, for messages
};

// Bytes of a string literal as strace -xx prints it ("\x41\x42..."); other escapes too.
std::string unquote(std::string_view s) {
  std::string out;
  if (s.size() < 2 || s.front() != '"') throw std::runtime_error("not a string: " + std::string(s.substr(0, 40)));
  std::size_t end = s.rfind('"');
  for (std::size_t i = 1; i < end; ++i) {
    if (s[i] != '\\') {
      out += s[i];
      continue;
    }
    const char c = s[++i];
    switch (c) {
      case 'x':
        out += static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16));
        i += 2;
        break;
      case 'n': out += '\n'; break;
      case 't': out += '\t'; break;
      case 'r': out += '\r'; break;
      case 'v': out += '\v'; break;
      case 'f': out += '\f'; break;
      default: out += c; break;
    }
  }
  return out;
}

std::vector<std::string> split_args(std::string_view s) {
  std::vector<std::string> out;
  int depth = 0;
  bool quoted = false;
  std::string cur;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (quoted) {
      cur += c;
      if (c == '\\' && i + 1 < s.size()) cur += s[++i];
      else if (c == '"') quoted = false;
      continue;
    }
    if (c == '"') quoted = true;
    if (c == '[' || c == '{' || c == '(') ++depth;
    if (c == ']' || c == '}' || c == ')') --depth;
    if (c == ',' && depth == 0) {
      out.push_back(cur);
      cur.clear();
      while (i + 1 < s.size() && s[i + 1] == ' ') ++i;
      continue;
    }
    cur += c;
  }
  if (!cur.empty() || !out.empty()) out.push_back(cur);
  return out;
}

std::string shorten(std::string s, std::size_t n = 160) {
  if (s.size() > n) s = s.substr(0, n) + "...";
  return s;
}

// Every system call of a trace, in order; unfinished/resumed halves joined per thread.
std::vector<call> parse_trace(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read the trace " + path);
  std::vector<call> calls;
  std::map<std::string, std::string> unfinished;  // pid -> first half
  std::string line;
  std::size_t number = 0;
  while (std::getline(in, line)) {
    ++number;
    std::size_t p = 0;
    std::string pid;
    while (p < line.size() && line[p] >= '0' && line[p] <= '9') pid += line[p++];
    while (p < line.size() && line[p] == ' ') ++p;
    std::string body = line.substr(p);
    if (body.rfind("+++", 0) == 0 || body.rfind("---", 0) == 0 || body.empty()) continue;
    const std::string unf = " <unfinished ...>";
    if (body.size() >= unf.size() && body.compare(body.size() - unf.size(), unf.size(), unf) == 0) {
      unfinished[pid] = body.substr(0, body.size() - unf.size());
      continue;
    }
    if (body.rfind("<... ", 0) == 0) {
      const auto r = body.find(" resumed>");
      if (r == std::string::npos) throw std::runtime_error("cannot parse trace line " + std::to_string(number));
      body = unfinished[pid] + body.substr(r + 9);
      unfinished.erase(pid);
    }
    // name(args)<padding> = ret: strings are hex-escaped, so the last " = " is the result's.
    const auto open = body.find('(');
    const auto eq = body.rfind(" = ");
    const auto close = eq == std::string::npos ? std::string::npos : body.find_last_not_of(' ', eq);
    if (open == std::string::npos || close == std::string::npos || close < open || body[close] != ')')
      throw std::runtime_error("cannot parse trace line " + std::to_string(number) + ": " + shorten(body));
    call c;
    c.line = number;
    c.name = body.substr(0, open);
    c.args = split_args(std::string_view(body).substr(open + 1, close - open - 1));
    const std::string ret = body.substr(eq + 3);
    if (ret.empty() || ret[0] == '?') continue;
    c.ret = std::stoll(ret, nullptr, 0);
    c.text = shorten(body);
    calls.push_back(std::move(c));
  }
  return calls;
}

bool has_flag(const std::string& flags, std::string_view f) {
  std::size_t i = 0;
  while (i <= flags.size()) {
    std::size_t j = flags.find_first_of("|{}, =", i);
    if (j == std::string::npos) j = flags.size();
    if (std::string_view(flags).substr(i, j - i) == f) return true;
    i = j + 1;
  }
  return false;
}

std::string normalize_path(const std::string& abs) {
  std::vector<std::string> parts;
  std::size_t i = 0;
  while (i < abs.size()) {
    std::size_t j = abs.find('/', i);
    if (j == std::string::npos) j = abs.size();
    const std::string part = abs.substr(i, j - i);
    if (part == "..") {
      if (!parts.empty()) parts.pop_back();
    } else if (!part.empty() && part != ".") {
      parts.push_back(part);
    }
    i = j + 1;
  }
  std::string out;
  for (const auto& p : parts) out += "/" + p;
  return out.empty() ? "/" : out;
}

// ---- the file system model ---------------------------------------------------------------

struct inode {
  bool dir = false;
  // files
  std::string durable, current;     // content as of the last sync, and now
  std::set<std::uint64_t> dirty;    // sectors written since the last sync
  bool wal_unsynced = false;        // a WAL segment written since its last sync
  // directories
  std::map<std::string, int> entries, durable_entries;
  std::vector<std::string> unsynced_ops;  // entry changes since the last fsync
  int links = 0;
  std::string label;  // its path relative to the store's parent, when last named
};

struct open_file {
  int ino;
  std::uint64_t pos = 0;
  bool append = false;
};

using entry_key = std::pair<int, std::string>;  // (directory inode, name)

struct marker_state {
  commit_id acked = 0;   // the last ACKed CommitId
  commit_id begun = 0;   // the CommitId of the last BEGUN step
  std::size_t acks = 0;
};

struct violation {
  std::string reason;
  std::string example;
};

class fs_model {
 public:
  fs_model(std::string root, std::string cwd, const rs::workload& w)
      : root_(normalize_path(root)), cwd_(normalize_path(cwd)), w_(w) {
    inodes_.push_back({});
    inodes_[0].dir = true;
    inodes_[0].links = 1;
    inodes_[0].label = ".";
  }

  // Applies one call; returns the contract violations found at an ACK.
  std::vector<violation> apply(const call& c) {
    std::vector<violation> found;
    const auto& a = c.args;
    const bool ok = c.ret >= 0;
    const std::string& n = c.name;
    if (n == "openat" || n == "open" || n == "creat" || n == "openat2") {
      if (!ok) return found;
      std::string path, flags;
      if (n == "open") { path = resolve("AT_FDCWD", unquote(a.at(0))); flags = a.at(1); }
      else if (n == "creat") { path = resolve("AT_FDCWD", unquote(a.at(0))); flags = "O_WRONLY|O_CREAT|O_TRUNC"; }
      else { path = resolve(a.at(0), unquote(a.at(1))); flags = a.at(2); }
      do_open(static_cast<int>(c.ret), path, flags, c);
    } else if (n == "write" || n == "pwrite64" || n == "writev" || n == "pwritev" || n == "pwritev2") {
      if (!ok) return found;
      const int fd = std::stoi(a.at(0));
      std::string data;
      if (n == "write" || n == "pwrite64") {
        data = unquote(a.at(1));
      } else {
        // [{iov_base="...", iov_len=N}, ...]: the strings in order.
        const std::string& v = a.at(1);
        std::size_t i = 0;
        while ((i = v.find('"', i)) != std::string::npos) {
          std::size_t j = i + 1;
          while (j < v.size() && v[j] != '"') j += v[j] == '\\' ? 2 : 1;
          data += unquote(std::string_view(v).substr(i, j - i + 1));
          i = j + 1;
        }
      }
      data.resize(std::min<std::size_t>(data.size(), static_cast<std::size_t>(c.ret)));
      std::optional<std::uint64_t> at;
      if (n == "pwrite64" || n == "pwritev" || n == "pwritev2") at = std::stoull(a.at(n == "pwrite64" ? 3 : 3));
      auto it = fds_.find(fd);
      if (it == fds_.end()) {
        if (fd == 1) found = on_marker(data, c);
        return found;
      }
      do_write(*it->second, data, at);
    } else if (n == "fsync" || n == "fdatasync") {
      if (!ok) return found;
      auto it = fds_.find(std::stoi(a.at(0)));
      if (it != fds_.end()) sync_inode(it->second->ino);
    } else if (n == "sync" || n == "syncfs") {
      if (!ok) return found;
      for (std::size_t i = 0; i < inodes_.size(); ++i) sync_inode(static_cast<int>(i));
    } else if (n == "sync_file_range") {
      // Starts writeback but promises nothing durable (no metadata, no completion):
      // the model keeps the data unsynced.
    } else if (n == "rename" || n == "renameat" || n == "renameat2") {
      if (!ok) return found;
      std::string from, to;
      if (n == "rename") { from = resolve("AT_FDCWD", unquote(a.at(0))); to = resolve("AT_FDCWD", unquote(a.at(1))); }
      else { from = resolve(a.at(0), unquote(a.at(1))); to = resolve(a.at(2), unquote(a.at(3))); }
      if (n == "renameat2" && a.size() > 4 && has_flag(a[4], "RENAME_EXCHANGE"))
        throw std::runtime_error("RENAME_EXCHANGE is not modelled: " + c.text);
      do_rename(from, to, c);
    } else if (n == "unlink" || n == "unlinkat" || n == "rmdir") {
      if (!ok) return found;
      const std::string p = n == "unlinkat" ? resolve(a.at(0), unquote(a.at(1))) : resolve("AT_FDCWD", unquote(a.at(0)));
      do_unlink(p, c);
    } else if (n == "mkdir" || n == "mkdirat") {
      if (!ok) return found;
      const std::string p = n == "mkdirat" ? resolve(a.at(0), unquote(a.at(1))) : resolve("AT_FDCWD", unquote(a.at(0)));
      do_mkdir(p, c);
    } else if (n == "ftruncate" || n == "truncate") {
      if (!ok) return found;
      int ino = -1;
      if (n == "ftruncate") {
        auto it = fds_.find(std::stoi(a.at(0)));
        if (it != fds_.end()) ino = it->second->ino;
      } else if (auto comps = inside(resolve("AT_FDCWD", unquote(a.at(0))))) {
        ino = lookup(*comps);
      }
      if (ino >= 0) {
        inodes_[static_cast<std::size_t>(ino)].current.resize(std::stoull(a.at(1)), '\0');
        ++version_;
      }
    } else if (n == "fallocate") {
      if (!ok) return found;
      auto it = fds_.find(std::stoi(a.at(0)));
      if (it == fds_.end()) return found;
      if (a.at(1) != "0") throw std::runtime_error("fallocate with a mode is not modelled: " + c.text);
      auto& f = inodes_[static_cast<std::size_t>(it->second->ino)];
      const auto end = std::stoull(a.at(2)) + std::stoull(a.at(3));
      if (end > f.current.size()) {
        f.current.resize(end, '\0');
        ++version_;
      }
    } else if (n == "close") {
      if (!ok) return found;
      const int fd = std::stoi(a.at(0));
      fds_.erase(fd);
      fd_paths_.erase(fd);
    } else if (n == "dup" || n == "dup2" || n == "dup3" || n == "fcntl") {
      if (!ok) return found;
      if (n == "fcntl" && !(a.size() > 1 && (a[1] == "F_DUPFD" || a[1] == "F_DUPFD_CLOEXEC"))) return found;
      const int from = std::stoi(a.at(0));
      const int to = static_cast<int>(c.ret);
      if (from == to) return found;
      fds_.erase(to);
      fd_paths_.erase(to);
      if (auto it = fds_.find(from); it != fds_.end()) fds_[to] = it->second;
      if (auto it = fd_paths_.find(from); it != fd_paths_.end()) fd_paths_[to] = it->second;
    } else if (n == "chdir" || n == "fchdir") {
      if (!ok) return found;
      if (n == "chdir") cwd_ = resolve("AT_FDCWD", unquote(a.at(0)));
      else cwd_ = fd_paths_.at(std::stoi(a.at(0)));
    } else if (n == "lseek") {
      if (!ok) return found;
      auto it = fds_.find(std::stoi(a.at(0)));
      if (it != fds_.end()) it->second->pos = static_cast<std::uint64_t>(c.ret);
    }
    return found;
  }

  std::uint64_t version() const noexcept { return version_; }
  const marker_state& markers() const noexcept { return markers_; }
  const std::vector<inode>& inodes() const noexcept { return inodes_; }
  const std::vector<std::pair<entry_key, entry_key>>& renames() const noexcept { return renames_; }

 private:
  std::string resolve(const std::string& dirfd, const std::string& path) const {
    if (!path.empty() && path[0] == '/') return normalize_path(path);
    std::string base;
    if (dirfd == "AT_FDCWD") {
      base = cwd_;
    } else {
      auto it = fd_paths_.find(std::stoi(dirfd));
      if (it == fd_paths_.end()) throw std::runtime_error("relative path against an unknown descriptor " + dirfd);
      base = it->second;
    }
    return normalize_path(base + "/" + path);
  }

  // The components of `abs` below the root, or nullopt when it is not inside the root.
  std::optional<std::vector<std::string>> inside(const std::string& abs) const {
    if (abs == root_) return std::vector<std::string>{};
    if (abs.size() <= root_.size() || abs.compare(0, root_.size(), root_) != 0 || abs[root_.size()] != '/')
      return std::nullopt;
    std::vector<std::string> out;
    std::size_t i = root_.size() + 1;
    while (i < abs.size()) {
      std::size_t j = abs.find('/', i);
      if (j == std::string::npos) j = abs.size();
      out.push_back(abs.substr(i, j - i));
      i = j + 1;
    }
    return out;
  }

  // The inode of a path (components below the root) in the current namespace, or -1.
  int lookup(const std::vector<std::string>& comps) const {
    int ino = 0;
    for (const auto& p : comps) {
      const auto& d = inodes_[static_cast<std::size_t>(ino)];
      if (!d.dir) return -1;
      auto it = d.entries.find(p);
      if (it == d.entries.end()) return -1;
      ino = it->second;
    }
    return ino;
  }

  // (parent inode, name) of a path inside the root; throws when the parent is unknown.
  std::pair<int, std::string> parent_of(const std::vector<std::string>& comps, const call& c) const {
    if (comps.empty()) throw std::runtime_error("an entry operation on the root itself: " + c.text);
    std::vector<std::string> up(comps.begin(), comps.end() - 1);
    const int p = lookup(up);
    if (p < 0 || !inodes_[static_cast<std::size_t>(p)].dir)
      throw std::runtime_error("the model has no parent directory for " + c.text);
    return {p, comps.back()};
  }

  std::string label_of(int dir, const std::string& name) const {
    const auto& d = inodes_[static_cast<std::size_t>(dir)];
    return d.label == "." ? name : d.label + "/" + name;
  }

  int new_inode(bool dir) {
    inodes_.push_back({});
    inodes_.back().dir = dir;
    return static_cast<int>(inodes_.size() - 1);
  }

  void link(int dir, const std::string& name, int ino, std::string op) {
    auto& d = inodes_[static_cast<std::size_t>(dir)];
    if (auto it = d.entries.find(name); it != d.entries.end()) --inodes_[static_cast<std::size_t>(it->second)].links;
    inodes_[static_cast<std::size_t>(dir)].entries[name] = ino;
    ++inodes_[static_cast<std::size_t>(ino)].links;
    inodes_[static_cast<std::size_t>(ino)].label = label_of(dir, name);
    inodes_[static_cast<std::size_t>(dir)].unsynced_ops.push_back(std::move(op));
    ++version_;
  }

  void do_open(int fd, const std::string& path, const std::string& flags, const call& c) {
    fd_paths_[fd] = path;
    fds_.erase(fd);
    const auto comps = inside(path);
    if (!comps) return;
    int ino = lookup(*comps);
    if (ino < 0) {
      if (!has_flag(flags, "O_CREAT")) throw std::runtime_error("the model lacks a file the call opened: " + c.text);
      const auto [dir, name] = parent_of(*comps, c);
      ino = new_inode(false);
      link(dir, name, ino, "creation of " + label_of(dir, name));
    } else if (has_flag(flags, "O_TRUNC") && !inodes_[static_cast<std::size_t>(ino)].dir) {
      inodes_[static_cast<std::size_t>(ino)].current.clear();
      ++version_;
    }
    auto f = std::make_shared<open_file>();
    f->ino = ino;
    f->append = has_flag(flags, "O_APPEND");
    fds_[fd] = std::move(f);
  }

  void do_write(open_file& of, const std::string& data, std::optional<std::uint64_t> at) {
    auto& f = inodes_[static_cast<std::size_t>(of.ino)];
    if (f.dir) throw std::runtime_error("a write to a directory");
    const std::uint64_t off = at ? *at : of.append ? f.current.size() : of.pos;
    if (data.empty()) return;
    if (f.current.size() < off + data.size()) f.current.resize(off + data.size(), '\0');
    std::memcpy(f.current.data() + off, data.data(), data.size());
    for (std::uint64_t s = off / sector; s <= (off + data.size() - 1) / sector; ++s) f.dirty.insert(s);
    if (!at) of.pos = off + data.size();
    const auto slash = f.label.rfind('/');
    if (format::parse_segment_file_name(slash == std::string::npos ? f.label : f.label.substr(slash + 1)))
      f.wal_unsynced = true;
    ++version_;
  }

  void sync_inode(int ino) {
    auto& f = inodes_[static_cast<std::size_t>(ino)];
    if (f.dir) {
      f.durable_entries = f.entries;
      f.unsynced_ops.clear();
      std::erase_if(renames_, [&](const auto& r) { return r.first.first == ino || r.second.first == ino; });
    } else {
      f.durable = f.current;
      f.dirty.clear();
      f.wal_unsynced = false;
    }
    ++version_;
  }

  void do_rename(const std::string& from, const std::string& to, const call& c) {
    const auto a = inside(from);
    const auto b = inside(to);
    if (!a && !b) return;
    if (!a || !b) throw std::runtime_error("a rename across the modelled tree's border: " + c.text);
    const auto [fd, fname] = parent_of(*a, c);
    const auto [td, tname] = parent_of(*b, c);
    const int ino = lookup(*a);
    if (ino < 0) throw std::runtime_error("the model lacks the renamed entry: " + c.text);
    if (fd == td && fname == tname) return;
    const std::string op = "rename of " + label_of(fd, fname) + " to " + label_of(td, tname);
    inodes_[static_cast<std::size_t>(fd)].entries.erase(fname);
    --inodes_[static_cast<std::size_t>(ino)].links;
    link(td, tname, ino, op);
    if (fd != td) inodes_[static_cast<std::size_t>(fd)].unsynced_ops.push_back(op);
    renames_.push_back({{fd, fname}, {td, tname}});
  }

  void do_unlink(const std::string& path, const call& c) {
    const auto comps = inside(path);
    if (!comps) return;
    const auto [dir, name] = parent_of(*comps, c);
    auto& d = inodes_[static_cast<std::size_t>(dir)];
    auto it = d.entries.find(name);
    if (it == d.entries.end()) throw std::runtime_error("the model lacks the removed entry: " + c.text);
    --inodes_[static_cast<std::size_t>(it->second)].links;
    d.entries.erase(it);
    d.unsynced_ops.push_back("unlink of " + label_of(dir, name));
    ++version_;
  }

  void do_mkdir(const std::string& path, const call& c) {
    const auto comps = inside(path);
    if (!comps) return;
    const auto [dir, name] = parent_of(*comps, c);
    const int ino = new_inode(true);
    link(dir, name, ino, "mkdir of " + label_of(dir, name));
  }

  std::vector<violation> on_marker(const std::string& data, const call& c) {
    std::vector<violation> found;
    if (data.rfind("BEGIN ", 0) == 0) {
      const auto step = std::stoull(data.substr(6));
      if (step >= w_.steps.size()) throw std::runtime_error("BEGIN of an unknown step: " + c.text);
      markers_.begun = w_.steps[step].commit;
      return found;
    }
    if (data.rfind("ACK ", 0) != 0) return found;
    const commit_id id = std::stoull(data.substr(4));
    if (id != markers_.begun)
      throw std::runtime_error("ACK " + std::to_string(id) + " but the workload description expects CommitId " +
                               std::to_string(markers_.begun) + " for the step begun last (line " +
                               std::to_string(c.line) + ")");
    markers_.acked = id;
    ++markers_.acks;
    const std::string at = "at the ACK of CommitId " + std::to_string(id) + " (trace line " + std::to_string(c.line) + ")";
    for (const auto& f : inodes_) {
      if (f.dir || f.links == 0 || !f.wal_unsynced) continue;
      found.push_back({"WAL file " + f.label + " was written and not fdatasync'ed/fsync'ed before the ACK",
                       at + ": " + f.label + " holds " + std::to_string(f.current.size() - f.durable.size()) +
                           " bytes past its synced size"});
    }
    for (const auto& d : inodes_) {
      if (!d.dir || d.links == 0) continue;
      for (const auto& op : d.unsynced_ops)
        found.push_back({op + " was not followed by an fsync of its parent directory (" + d.label + ") before the ACK",
                         at + ": " + op});
    }
    return found;
  }

  std::string root_, cwd_;
  const rs::workload& w_;
  std::vector<inode> inodes_;
  std::map<int, std::shared_ptr<open_file>> fds_;  // descriptors of files inside the root
  std::map<int, std::string> fd_paths_;            // every descriptor's path (for dirfd)
  std::vector<std::pair<entry_key, entry_key>> renames_;  // not yet durable renames
  marker_state markers_;
  std::uint64_t version_ = 0;
};

// ---- crash states ------------------------------------------------------------------------

enum class pick_mode { all_old, all_new, random };

struct chooser {
  pick_mode mode;
  std::mt19937_64 rng{0};
  bool pick() {
    if (mode == pick_mode::all_old) return false;
    if (mode == pick_mode::all_new) return true;
    return (rng() >> 17) & 1;
  }
};

struct crash_state {
  // Path below the store's parent -> content; nullopt for a directory. Sorted, so a
  // directory comes before what it holds.
  std::map<std::string, std::optional<std::string>> files;
  std::string description;  // the choices made, for people
  bool store_present = false;
};

using state_hash = std::pair<std::uint64_t, std::uint64_t>;

struct hash_of_pair {
  std::size_t operator()(const state_hash& h) const noexcept { return static_cast<std::size_t>(h.first ^ (h.second * 31)); }
};

state_hash hash_state(const crash_state& s) {
  std::string ser;
  for (const auto& [path, content] : s.files) {
    ser += path;
    ser += '\0';
    if (!content) {
      ser += "D";
    } else {
      ser += "F" + std::to_string(content->size());
      ser += '\0';
      ser += *content;
    }
    ser += '\0';
  }
  std::uint64_t fnv = 1469598103934665603ull;
  for (unsigned char ch : ser) fnv = (fnv ^ ch) * 1099511628211ull;
  return {std::hash<std::string>{}(ser), fnv ^ ser.size()};
}

std::string sector_list(const std::vector<std::uint64_t>& v) {
  std::string s;
  for (std::size_t i = 0; i < v.size(); ++i) s += (i ? "," : "") + std::to_string(v[i]);
  return s.empty() ? "none" : s;
}

crash_state make_state(const fs_model& m, chooser& ch) {
  const auto& in = m.inodes();
  crash_state st;
  // Entries not yet durable, grouped: a rename's two names move together.
  std::map<entry_key, entry_key> parent;
  std::function<entry_key(const entry_key&)> find = [&](const entry_key& k) -> entry_key {
    auto it = parent.find(k);
    if (it == parent.end() || it->second == k) return k;
    return it->second = find(it->second);
  };
  for (std::size_t d = 0; d < in.size(); ++d) {
    if (!in[d].dir) continue;
    std::set<std::string> names;
    for (const auto& e : in[d].entries) names.insert(e.first);
    for (const auto& e : in[d].durable_entries) names.insert(e.first);
    for (const auto& name : names) {
      auto a = in[d].entries.find(name);
      auto b = in[d].durable_entries.find(name);
      const int cur = a == in[d].entries.end() ? -1 : a->second;
      const int dur = b == in[d].durable_entries.end() ? -1 : b->second;
      if (cur != dur) parent[{static_cast<int>(d), name}] = {static_cast<int>(d), name};
    }
  }
  for (const auto& r : m.renames()) {
    if (!parent.count(r.first) || !parent.count(r.second)) continue;
    const auto x = find(r.first);
    const auto y = find(r.second);
    if (x != y) parent[x] = y;
  }
  std::map<entry_key, bool> group_new;
  for (const auto& p : parent) {
    const auto g = find(p.first);
    if (!group_new.count(g)) group_new[g] = ch.pick();
  }
  std::map<int, std::string> contents;  // per inode, once per state
  std::function<void(int, const std::string&)> walk = [&](int d, const std::string& prefix) {
    const auto& dir = in[static_cast<std::size_t>(d)];
    std::set<std::string> names;
    for (const auto& e : dir.entries) names.insert(e.first);
    for (const auto& e : dir.durable_entries) names.insert(e.first);
    for (const auto& name : names) {
      const entry_key k{d, name};
      int ino;
      if (parent.count(k)) {
        const bool take_new = group_new.at(find(k));
        auto it = take_new ? dir.entries.find(name) : dir.durable_entries.find(name);
        ino = it == (take_new ? dir.entries.end() : dir.durable_entries.end()) ? -1 : it->second;
        const std::string label = prefix + name;
        st.description += label + ": entry " + (take_new ? "new" : "old") + (ino < 0 ? " (absent)" : "") + "; ";
      } else {
        ino = dir.entries.at(name);
      }
      if (ino < 0) continue;
      const std::string path = prefix + name;
      const auto& f = in[static_cast<std::size_t>(ino)];
      if (f.dir) {
        st.files[path] = std::nullopt;
        walk(ino, path + "/");
        continue;
      }
      auto known = contents.find(ino);
      if (known == contents.end()) {
        std::uint64_t size = f.durable.size();
        if (f.current.size() != f.durable.size() && ch.pick()) size = f.current.size();
        std::string data = f.durable;
        data.resize(size, '\0');
        std::vector<std::uint64_t> kept, lost;
        for (std::uint64_t s : f.dirty) {
          if (s * sector >= size) continue;
          if (ch.pick()) {
            const std::uint64_t end = std::min<std::uint64_t>({(s + 1) * sector, size, f.current.size()});
            if (end > s * sector) std::memcpy(data.data() + s * sector, f.current.data() + s * sector, end - s * sector);
            kept.push_back(s);
          } else {
            lost.push_back(s);
          }
        }
        if (f.current != f.durable)
          st.description += path + ": " + std::to_string(size) + " bytes (synced " + std::to_string(f.durable.size()) +
                            ", written " + std::to_string(f.current.size()) + "), unsynced sectors kept " +
                            sector_list(kept) + ", lost " + sector_list(lost) + "; ";
        known = contents.emplace(ino, std::move(data)).first;
      }
      st.files[path] = known->second;
    }
  };
  walk(0, "");
  st.store_present = st.files.count("store") != 0;
  if (st.description.empty()) st.description = "nothing unsynced";
  return st;
}

void materialize(const crash_state& st, const stdfs::path& where) {
  std::error_code ec;
  stdfs::remove_all(where, ec);
  stdfs::create_directories(where);
  for (const auto& [path, content] : st.files) {
    const stdfs::path p = where / path;
    if (!content) {
      stdfs::create_directory(p);
      continue;
    }
    std::ofstream out(p, std::ios::binary);
    out.write(content->data(), static_cast<std::streamsize>(content->size()));
    if (!out) throw std::runtime_error("cannot write " + p.string());
  }
}

// ---- recovery ----------------------------------------------------------------------------

struct outcome {
  bool opened = false;
  std::string error;  // when not opened
  commit_id last = 0;
  std::string content_problem;  // empty when the documents are as expected
};

std::string first_difference(const rs::contents& expected, const std::map<std::string, std::pair<std::uint32_t, std::string>>& got) {
  for (const auto& [id, json] : expected) {
    auto it = got.find(id);
    if (it == got.end()) return "document " + id + " is missing";
    if (it->second.first != 1) return "document " + id + " has schema version " + std::to_string(it->second.first);
    if (boost::json::parse(it->second.second) != boost::json::parse(json))
      return "document " + id + " differs: " + shorten(it->second.second, 80) + " instead of " + shorten(json, 80);
  }
  for (const auto& [id, doc] : got)
    if (!expected.count(id)) return "document " + id + " is not expected";
  return {};
}

template <class Db>
outcome recover(const crash_state& st, const stdfs::path& where, std::uint64_t segment_bytes,
                const rs::workload& w) {
  materialize(st, where);
  outcome out;
  open_options opts;
  opts.wal_segment_bytes = segment_bytes;
  auto db = Db::open((where / "store").string(), opts);
  if (!db) {
    out.error = db.error_value().to_string();
    return out;
  }
  out.opened = true;
  out.last = (*db)->last_commit_id();
  auto exp = w.after.find(out.last);
  if (exp == w.after.end()) {
    out.content_problem = "recovered CommitId " + std::to_string(out.last) + " is beyond the workload's last, " +
                          std::to_string(w.last_commit);
    return out;
  }
  const auto names = (*db)->collection_names();
  const bool want = out.last >= w.collection_created_at;
  if (names != (want ? std::vector<std::string>{rs::collection} : std::vector<std::string>{})) {
    out.content_problem = std::string("the collections are not as expected (") + (want ? "one" : "none") + " expected, " +
                          std::to_string(names.size()) + " found)";
    return out;
  }
  if (!want) return out;
  std::map<std::string, std::pair<std::uint32_t, std::string>> got;
  const auto view = (*db)->read();
  auto r = view.for_each(rs::collection, [&](const versioned_document& d) {
    got[std::string(d.doc.id())] = {d.schema_version, d.doc.to_json_string()};
  });
  if (!r) {
    out.content_problem = "reading the collection failed: " + r.error_value().to_string();
    return out;
  }
  out.content_problem = first_difference(exp->second, got);
  if (!out.content_problem.empty() || out.last < w.index_created_at) return out;
  // The index on qty (rebuilt by recovery) answers as a scan would.
  std::set<std::string> want_ids, got_ids;
  for (const auto& [id, json] : exp->second)
    if (boost::json::parse(json).as_object().at("qty").as_int64() == 2) want_ids.insert(id);
  auto q = view.query(R"({"collection":"items","schema_version":1,"filter":{"qty":{"$eq":2}},"limit":10000})");
  if (!q) {
    out.content_problem = "the query on the index failed: " + q.error_value().to_string();
    return out;
  }
  for (const auto& d : q->documents) got_ids.insert(std::string(d.doc.id()));
  if (got_ids != want_ids)
    out.content_problem = "the query on the indexed field found " + std::to_string(got_ids.size()) + " documents, " +
                          std::to_string(want_ids.size()) + " expected";
  return out;
}

// ---- bookkeeping ---------------------------------------------------------------------------

std::string without_numbers(const std::string& s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] >= '0' && s[i] <= '9') {
      out += '#';
      while (i + 1 < s.size() && s[i + 1] >= '0' && s[i + 1] <= '9') ++i;
    } else {
      out += s[i];
    }
  }
  return out;
}

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (std::size_t i = 0; (i = s.find(from, i)) != std::string::npos; i += to.size()) s.replace(i, from.size(), to);
  return s;
}

struct group {
  std::uint64_t count = 0;        // distinct (state, engine) pairs, or violations
  std::uint64_t crash_points = 0;  // crash points with at least one such state
  std::pair<std::size_t, std::size_t> last_point{~std::size_t{0}, 0};
  std::string example;
  std::uint64_t kept = 0;
  std::size_t id = 0;  // in order of first appearance (names the kept states' directories)
};

struct run_spec {
  const char* engine;
  std::uint64_t segment_bytes;
  bool relative;  // the store path given relative to the working directory
};

std::string env_or_empty(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

stdfs::path scratch_base() {
  if (auto v = env_or_empty("AERODB_REAL_SYSCALLS_TMP"); !v.empty()) return v;
  if (::access("/dev/shm", W_OK) == 0 && stdfs::is_directory("/dev/shm")) return "/dev/shm";  // fsync is free on tmpfs
  return stdfs::temp_directory_path();
}

stdfs::path make_temp_dir(const stdfs::path& base, const std::string& prefix) {
  std::string tmpl = (base / (prefix + "XXXXXX")).string();
  if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed under " + base.string());
  return tmpl;
}

// Runs the workload under strace; returns "" or what went wrong.
std::string run_traced(const std::string& strace, const std::string& workload, const stdfs::path& parent,
                       const run_spec& r, const stdfs::path& trace, const stdfs::path& out, const stdfs::path& err) {
  const std::string store = r.relative ? std::string("store") : (parent / "store").string();
  const std::string seg = std::to_string(r.segment_bytes);
  std::vector<std::string> argv = {strace, "-f", "-xx", "-s", "100000000", "-e", std::string("trace=") + traced_calls,
                                   "-o", trace.string(), workload, store, r.engine, seg};
  const pid_t pid = ::fork();
  if (pid < 0) return "fork failed";
  if (pid == 0) {
    if (::chdir(parent.c_str()) != 0) ::_exit(120);
    const int o = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const int e = ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (o < 0 || e < 0 || ::dup2(o, 1) < 0 || ::dup2(e, 2) < 0) ::_exit(121);
    ::close(o);
    ::close(e);
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    ::execv(strace.c_str(), args.data());
    ::_exit(122);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return "waitpid failed";
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return {};
  std::ifstream in(err);
  std::stringstream ss;
  ss << in.rdbuf();
  return "the traced workload (" + std::string(r.engine) + ", segments of " + seg + " bytes) ended with status " +
         std::to_string(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status)) + "; stderr:\n" + ss.str();
}

}  // namespace

TEST_CASE("real system calls: the engine's traced calls are crash-safe on a POSIX file system") {
  const auto started = std::chrono::steady_clock::now();
  const std::string strace = env_or_empty("AERODB_STRACE");
  const std::string workload = env_or_empty("AERODB_REAL_SYSCALLS_WORKLOAD");
  if (strace.empty() || ::access(strace.c_str(), X_OK) != 0)
    FAIL("strace is missing (AERODB_STRACE='" << strace
         << "'): install it (sudo apt-get install strace) and reconfigure the build (meson setup --reconfigure); "
            "CI installs it");
  if (workload.empty() || ::access(workload.c_str(), X_OK) != 0)
    FAIL("the workload program is missing (AERODB_REAL_SYSCALLS_WORKLOAD='" << workload << "')");
  const bool long_run = std::getenv("AERODB_LONG") != nullptr;
  const int random_states = long_run ? 48 : 16;  // per crash point where the model changed
  const std::string keep_dir = env_or_empty("AERODB_REAL_SYSCALLS_KEEP");

  const rs::workload w = rs::make_workload();
  const stdfs::path scratch = make_temp_dir(scratch_base(), "aerodb-real-syscalls-");
  const stdfs::path recover_dir = scratch / "recover";
  INFO("scratch directory " << scratch.string());

  const run_spec runs[] = {{"baseline", 512, true}, {"baseline", 4608, false},
                           {"accelerated", 512, true}, {"accelerated", 4608, false}};

  std::uint64_t syscalls = 0, crash_points = 0, crash_states = 0, distinct = 0, recoveries = 0, violations = 0;
  std::uint64_t failures = 0;  // (distinct state, engine, reason) triples
  std::set<std::pair<std::size_t, state_hash>> failed_states;  // (run, state)
  std::map<std::string, group> failure_groups, violation_groups;
  std::set<std::tuple<std::size_t, state_hash, std::string>> reported;

  for (std::size_t ri = 0; ri < std::size(runs); ++ri) {
    const run_spec& r = runs[ri];
    const std::string run_name = std::string(r.engine) + " writer, " + std::to_string(r.segment_bytes) + "-byte segments";
    const stdfs::path parent = scratch / ("run" + std::to_string(ri));
    stdfs::create_directories(parent);
    const stdfs::path trace = scratch / ("run" + std::to_string(ri) + ".trace");
    const std::string problem = run_traced(strace, workload, parent, r, trace, scratch / ("run" + std::to_string(ri) + ".out"),
                                           scratch / ("run" + std::to_string(ri) + ".err"));
    if (!problem.empty()) FAIL(problem);
    std::vector<call> calls;
    try {
      calls = parse_trace(trace.string());
    } catch (const std::exception& e) {
      FAIL("trace of the " << run_name << " run: " << std::string(e.what()));
    }
    syscalls += calls.size();

    // Recovery outcomes of each distinct state, per engine (recovery is a function of the
    // files, so each state is recovered once per engine, whatever crash point left it).
    std::unordered_map<state_hash, std::pair<outcome, outcome>, hash_of_pair> outcomes;
    std::unordered_map<state_hash, bool, hash_of_pair> store_present;
    std::unordered_map<state_hash, crash_state, hash_of_pair> kept_states;  // only with KEEP

    fs_model model(parent.string(), parent.string(), w);
    std::uint64_t seen_version = ~0ull;
    std::vector<std::pair<state_hash, std::string>> current;  // states of the current model version
    for (const call& c : calls) {
      std::vector<violation> found;
      try {
        found = model.apply(c);
      } catch (const std::exception& e) {
        FAIL("trace of the " << run_name << " run, line " << c.line << ": " << std::string(e.what()));
      }
      for (const auto& v : found) {
        ++violations;
        auto& g = violation_groups[without_numbers(v.reason)];
        if (g.count++ == 0) g.example = run_name + ", " + v.example;
      }
      ++crash_points;
      if (model.version() != seen_version) {
        seen_version = model.version();
        current.clear();
        std::set<state_hash> here;
        for (int k = 0; k < 2 + random_states; ++k) {
          chooser ch{k == 0 ? pick_mode::all_old : k == 1 ? pick_mode::all_new : pick_mode::random};
          ch.rng.seed(0x5EEDull * (ri + 1) + seen_version * 1000003ull + static_cast<std::uint64_t>(k));
          crash_state st = make_state(model, ch);
          const state_hash h = hash_state(st);
          if (!here.insert(h).second) continue;
          current.push_back({h, st.description});
          if (outcomes.count(h)) continue;
          ++distinct;
          outcome base = recover<aerodb::database>(st, recover_dir, r.segment_bytes, w);
          outcome accel = recover<aerodb::accelerated_database>(st, recover_dir, r.segment_bytes, w);
          recoveries += 2;
          outcomes.emplace(h, std::make_pair(std::move(base), std::move(accel)));
          store_present[h] = st.store_present;
          if (!keep_dir.empty()) kept_states.emplace(h, std::move(st));
        }
      }
      const marker_state& mk = model.markers();
      for (const auto& entry : current) {
        const state_hash& h = entry.first;
        const std::string& description = entry.second;
        ++crash_states;
        const auto& both = outcomes.at(h);
        for (int e = 0; e < 2; ++e) {
          const outcome& o = e == 0 ? both.first : both.second;
          const char* engine = e == 0 ? "baseline" : "accelerated";
          std::vector<std::string> reasons;
          if (!o.opened) {
            reasons.push_back("open refused: " + replace_all(o.error, recover_dir.string(), "<dir>"));
          } else {
            if (o.last < mk.acked)
              reasons.push_back(std::string("acknowledged commits lost") +
                                (store_present.at(h) ? "" : " (the store directory itself is gone)") +
                                ": recovered CommitId " + std::to_string(o.last) + " is below the last acknowledged, " +
                                std::to_string(mk.acked));
            if (o.last > mk.begun)
              reasons.push_back("recovered CommitId " + std::to_string(o.last) + " is beyond the last begun, " +
                                std::to_string(mk.begun));
            if (!o.content_problem.empty())
              reasons.push_back("recovered documents differ from the expected contents at CommitId " +
                                std::to_string(o.last) + ": " + o.content_problem);
          }
          for (const auto& why : reasons) {
            const std::string key = without_numbers(why);
            auto& g = failure_groups[key];
            if (g.count == 0 && g.crash_points == 0) g.id = failure_groups.size();
            const std::pair<std::size_t, std::size_t> point{ri, c.line};
            if (g.last_point != point) {
              g.last_point = point;
              ++g.crash_points;
            }
            if (!reported.insert({ri, h, std::string(engine) + key}).second) continue;
            ++failures;
            failed_states.insert({ri, h});
            if (g.count++ == 0)
              g.example = run_name + ", crash after trace line " + std::to_string(c.line) + " (" + shorten(c.text, 100) +
                          "), acknowledged " + std::to_string(mk.acked) + ", begun " + std::to_string(mk.begun) +
                          ", recovered by " + engine + ": " + why + "; state: " + description;
            if (!keep_dir.empty() && g.kept < 3 && kept_states.count(h)) {
              const stdfs::path where = stdfs::path(keep_dir) /
                                        ("group" + std::to_string(g.id) +
                                         "-" + std::to_string(g.kept++));
              materialize(kept_states.at(h), where);
              std::ofstream(where / "WHY.txt") << run_name << "\ncrash after trace line " << c.line << ": " << c.text
                                               << "\nacknowledged " << mk.acked << ", begun " << mk.begun << "\n"
                                               << engine << ": " << why << "\nstate: " << description << "\n";
            }
          }
        }
      }
    }
    if (model.markers().acked != w.last_commit)
      FAIL("the " << run_name << " run acknowledged through CommitId " << model.markers().acked << ", not "
                  << w.last_commit);
  }

  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  print_counts({{"campaign", "real-syscalls"},
                {"runs", std::size(runs)},
                {"engines", 2},
                {"syscalls", syscalls},
                {"workload_steps", w.steps.size()},
                {"last_commit_id", w.last_commit},
                {"crash_points", crash_points},
                {"crash_states", crash_states},
                {"distinct_states", distinct},
                {"recoveries", recoveries},
                {"failed_states", failed_states.size()},
                {"failures", failures},
                {"contract_violations", violations},
                {"seconds", seconds}});
  std::printf("real-syscalls crash test: %llu system calls traced over %zu runs (%zu workload steps, last CommitId "
              "%llu); %llu crash points, %llu crash states, %llu distinct, %llu recoveries, %zu states failed, "
              "%llu POSIX contract violations\n",
              static_cast<unsigned long long>(syscalls), std::size(runs), w.steps.size(),
              static_cast<unsigned long long>(w.last_commit), static_cast<unsigned long long>(crash_points),
              static_cast<unsigned long long>(crash_states), static_cast<unsigned long long>(distinct),
              static_cast<unsigned long long>(recoveries), failed_states.size(),
              static_cast<unsigned long long>(violations));
  for (const auto& [reason, g] : failure_groups)
    std::printf("  failure (%llu distinct state/engine pairs, at %llu crash points): %s\n    example: %s\n",
                static_cast<unsigned long long>(g.count), static_cast<unsigned long long>(g.crash_points),
                reason.c_str(), g.example.c_str());
  for (const auto& [reason, g] : violation_groups)
    std::printf("  POSIX contract violation (%llu): %s\n    example: %s\n", static_cast<unsigned long long>(g.count),
                reason.c_str(), g.example.c_str());
  std::fflush(stdout);
  std::error_code ec;
  stdfs::remove_all(scratch, ec);
  CHECK_MESSAGE(failed_states.empty(), failed_states.size() << " crash states failed to recover correctly (groups above)");
  CHECK_MESSAGE(violations == 0, violations << " POSIX contract violations (groups above)");
}
