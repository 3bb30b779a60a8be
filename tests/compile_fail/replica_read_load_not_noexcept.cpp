// A ReplicaReadPolicy whose boundary's load() may throw: the replica calls it on every read,
// before any check, so the user must be told it has to be noexcept.
#include <aerodb/replication.hpp>

struct my_replica_read {
  struct boundary {
    void publish(aerodb::commit_id) noexcept {}
    void invalidate() noexcept {}
    aerodb::commit_id load() const { return 0; }
  };
};

using my_replica = aerodb::replication::basic_replica<aerodb::database, my_replica_read>;
my_replica* instantiate = nullptr;
int main() { return my_replica::open("/nonexistent").has_value() ? 0 : 1; }
