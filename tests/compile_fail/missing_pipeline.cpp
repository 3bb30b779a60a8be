// An FsyncPolicy with no `pipeline` template.
#include <aerodb/aerodb.hpp>

struct my_fsync {};

using my_db = aerodb::basic_database<my_fsync, aerodb::policies::full_traversal,
                                     aerodb::policies::ordered_index>;
int main() { return my_db::open("/nonexistent").has_value() ? 0 : 1; }
