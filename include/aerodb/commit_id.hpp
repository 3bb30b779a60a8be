// CommitId: the position of a commit in the one total order of commits.
//
// A CommitId is a u64. The first commit ever made has CommitId 1; each commit after it
// gets the previous one's plus 1, so CommitIds are strictly increasing, without gaps, and
// never reused (docs/format.md 5.3). CommitId 0 means "none": before the first commit,
// nothing committed yet. A read view bounded at C sees exactly the commits <= C.
//
// This header is vocabulary only, so that any layer may name the type without pulling in
// the format that writes it to disk (format/wal_format.hpp).
#pragma once

#include <cstdint>

namespace aerodb {

using commit_id = std::uint64_t;

}  // namespace aerodb
