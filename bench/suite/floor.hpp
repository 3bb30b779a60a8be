// The disk's floor for durable commits: a loop of write + fdatasync of one 256-byte
// document, measured by calling POSIX directly in the directory the engines use. Appending
// (O_APPEND, as a log that grows its file) and overwriting a file zeroed and synced first
// (as a log that writes into preallocated space). No engine can make a record durable
// faster than this loop, so commit rates are stated as ratios to it.
//
// Thread safety: reentrant; each call owns the file at `path` and removes it.
#pragma once

#include "suite_util.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

namespace bench {

struct floor_result {
  double ops_per_s = 0;
  double p50_us = 0, p99_us = 0;
};

inline floor_result fdatasync_floor(const std::string& path, bool append, double seconds) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | (append ? O_APPEND : 0), 0644);
  if (fd < 0) throw failure("open " + path + ": " + std::strerror(errno));
  document d;
  make_document(d, "floor-record-000", 3);
  const std::string& rec = d.json;
  constexpr std::size_t zeroed = 32u << 20;
  if (!append) {
    const std::string zeros(1u << 20, '\0');
    for (std::size_t done = 0; done < zeroed; done += zeros.size())
      if (::write(fd, zeros.data(), zeros.size()) != static_cast<ssize_t>(zeros.size())) throw failure("write");
    if (::fsync(fd) != 0) throw failure("fsync");
  }
  std::vector<double> lat;
  off_t off = 0;
  const auto t0 = clock_type::now();
  while (seconds_since(t0) < seconds) {
    const auto a = clock_type::now();
    const ssize_t w = append ? ::write(fd, rec.data(), rec.size()) : ::pwrite(fd, rec.data(), rec.size(), off);
    if (w != static_cast<ssize_t>(rec.size()) || ::fdatasync(fd) != 0) throw failure("write/fdatasync");
    lat.push_back(std::chrono::duration<double, std::micro>(clock_type::now() - a).count());
    off += static_cast<off_t>(rec.size());
    if (static_cast<std::size_t>(off) + rec.size() > zeroed) off = 0;
  }
  const double elapsed = seconds_since(t0);
  ::close(fd);
  ::unlink(path.c_str());
  return {static_cast<double>(lat.size()) / elapsed, percentile(lat, 50), percentile(lat, 99)};
}

}  // namespace bench
