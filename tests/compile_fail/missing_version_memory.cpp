// A MemoryLayoutPolicy that names its allocator otherwise: the user must be told what the
// engine looks for.
#include <aerodb/aerodb.hpp>

struct my_layout {
  struct allocator {};
};

using my_db = aerodb::basic_database<aerodb::policies::fsync_per_commit, aerodb::policies::full_traversal,
                                     aerodb::policies::ordered_index, my_layout>;
my_db* instantiate = nullptr;
int main() { return my_db::open("/nonexistent").has_value() ? 0 : 1; }
