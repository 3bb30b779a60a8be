// A CheckpointPolicy that gives its batch size but forgets `chunk_bytes`: the user must be
// told what the slot needs.
#include <aerodb/aerodb.hpp>

struct my_checkpoint {
  static constexpr std::size_t keys_per_batch = 256;
};

using my_db = aerodb::basic_database<aerodb::policies::fsync_per_commit, aerodb::policies::full_traversal,
                                     aerodb::policies::ordered_index, aerodb::policies::baseline_memory_layout,
                                     my_checkpoint>;
my_db* instantiate = nullptr;
int main() { return my_db::open("/nonexistent").has_value() ? 0 : 1; }
