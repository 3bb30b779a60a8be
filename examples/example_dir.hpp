// Shared by the examples: a data directory for a demonstration run, and error output.
//
// The examples start from an empty directory so their output is the same every run. To
// never delete a user's files, an existing directory is only cleared when it looks like
// an AeroDB data directory (it holds the LOCK file) or is empty.
#pragma once

#include <aerodb/error.hpp>

#include <cstdio>
#include <filesystem>
#include <string>

inline bool prepare_example_dir(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::exists(dir, ec)) {
    const bool ours = fs::exists(fs::path(dir) / "LOCK", ec);
    if (!ours && !fs::is_empty(dir, ec)) {
      std::fprintf(stderr, "refusing to clear %s: it is not an AeroDB data directory\n", dir.c_str());
      return false;
    }
    fs::remove_all(dir, ec);
  }
  return true;
}

// Prints an engine error the way the examples report them, and returns the exit code.
inline int fail(const aerodb::error& e) {
  std::fprintf(stderr, "error: %s\n", e.to_string().c_str());
  return 1;
}
