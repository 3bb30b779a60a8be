// A VisibilityCachePolicy that forgets `zero_copy`: the user must be told exactly that.
#include <aerodb/aerodb.hpp>

struct my_visibility {
  struct view_state {};
  static const aerodb::mvcc::version* find_visible(view_state&, const aerodb::mvcc::key_entry& key,
                                                   aerodb::commit_id bound, aerodb::read_path_counters&) {
    for (const auto& v : key.chain)
      if (v.commit <= bound) return &v;
    return nullptr;
  }
};

using my_db = aerodb::basic_database<aerodb::policies::fsync_per_commit, my_visibility,
                                     aerodb::policies::ordered_index>;
my_db* instantiate = nullptr;
int main() { return my_db::open("/nonexistent").has_value() ? 0 : 1; }
