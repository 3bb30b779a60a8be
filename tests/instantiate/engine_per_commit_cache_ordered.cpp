// Compiles the engine_per_commit_cache_ordered engine once, with optimization, for every test file (tests/engines.hpp).
#define AERODB_INSTANTIATING
#include "../engines.hpp"

template class aerodb::basic_database<aerodb_test::engine_per_commit_cache_ordered::fsync_policy,
                                      aerodb_test::engine_per_commit_cache_ordered::visibility_cache_policy,
                                      aerodb_test::engine_per_commit_cache_ordered::index_policy>;
template class aerodb::basic_read_view<aerodb_test::engine_per_commit_cache_ordered>;
