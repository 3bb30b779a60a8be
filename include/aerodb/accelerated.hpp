// The accelerated engine: every built-in optimized policy at once. It reads and writes
// exactly the same files as aerodb::database (docs/optimizations/), so a directory can be
// opened with either, in any order.
#pragma once

#include <aerodb/database.hpp>
#include <aerodb/policies/accelerated_index.hpp>
#include <aerodb/policies/checkpoint.hpp>
#include <aerodb/policies/compact_layout.hpp>
#include <aerodb/policies/group_commit.hpp>
#include <aerodb/policies/view_cache.hpp>

namespace aerodb {

using accelerated_database = basic_database<policies::group_commit, policies::view_cache,
                                            policies::accelerated_index, policies::compact_memory_layout,
                                            policies::pipelined_checkpoint>;

}  // namespace aerodb
