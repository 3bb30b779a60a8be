// Writing a whole file so that a crash leaves either the old file or the whole new one.
//
// Thread safety: as the file system it is given; two writers of the same name must not
// overlap.
#pragma once

#include <aerodb/error.hpp>
#include <aerodb/io/file_system.hpp>

#include <cstddef>
#include <span>
#include <string>

namespace aerodb::io {

// Writes `name` in `dir` as name.tmp, syncs it and renames it into place. The caller syncs
// the directory (after one or several such writes), which makes the rename durable.
inline result<void> write_file_durably(file_system& fs, const std::string& dir, const std::string& name,
                                       std::span<const std::byte> bytes) {
  const std::string tmp = join(dir, name + ".tmp");
  {
    AERO_TRY_ASSIGN(auto f, fs.open(tmp, open_mode::create_or_truncate));
    AERO_TRY(f->append(bytes));
    AERO_TRY(f->sync());
  }
  return fs.rename(tmp, join(dir, name));
}

}  // namespace aerodb::io
