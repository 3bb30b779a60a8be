// An IndexPolicy whose field index has no equality lookup.
#include <aerodb/aerodb.hpp>

struct ranges_only {
  void insert(const aerodb::scalar&, const aerodb::mvcc::key_entry&, const aerodb::mvcc::version&) {}
  void erase(const aerodb::scalar&, const aerodb::mvcc::key_entry&, const aerodb::mvcc::version&) {}
  void clear() {}
  template <class Fn>
  void for_range(const std::optional<aerodb::index::bound>&, const std::optional<aerodb::index::bound>&, Fn&&) const {}
  std::uint64_t count_range(const std::optional<aerodb::index::bound>&, const std::optional<aerodb::index::bound>&) const { return 0; }
  std::size_t size() const { return 0; }
};

struct my_index {
  template <class V>
  using primary_map = std::map<std::string, V, std::less<>>;
  using field_index = ranges_only;
};

using my_db = aerodb::basic_database<aerodb::policies::fsync_per_commit, aerodb::policies::full_traversal, my_index>;
int main() { return my_db::open("/nonexistent").has_value() ? 0 : 1; }
