// A replica in a process of its own, for the kill campaign of test_replication_tcp: it
// opens DIR as a replica (baseline engine), connects to the primary at 127.0.0.1:PORT
// with SECRET, and follows it until the connection ends or the process is killed.
//
//   replica_process DIR PORT SECRET SEGMENT_BYTES PREALLOCATE_BYTES
//
// The last two are the replica's open_options::wal_segment_bytes and
// wal_preallocate_bytes: the same as the primary's, so that its files, zeros ahead of the
// records included, are the primary's byte for byte.
//
// Exit status: 0 when the connection ended, 1 on an error (printed), 2 on bad usage.
#include <aerodb/aerodb.hpp>
#include <aerodb/replication.hpp>
#include <aerodb/replication/tcp.hpp>

#include <cstdio>
#include <cstdlib>
#include <string>

int main(int argc, char** argv) {
  if (argc != 6) {
    std::fprintf(stderr, "usage: replica_process DIR PORT SECRET SEGMENT_BYTES PREALLOCATE_BYTES\n");
    return 2;
  }
  namespace repl = aerodb::replication;
  aerodb::open_options options;
  options.wal_segment_bytes = std::strtoull(argv[4], nullptr, 10);
  options.wal_preallocate_bytes = std::strtoull(argv[5], nullptr, 10);
  auto replica = repl::basic_replica<aerodb::database>::open(argv[1], options);
  if (!replica) {
    std::fprintf(stderr, "error: %s\n", replica.error_value().to_string().c_str());
    return 1;
  }
  auto conn = repl::tcp_connect("127.0.0.1", static_cast<std::uint16_t>(std::atoi(argv[2])), argv[3]);
  if (!conn) {
    std::fprintf(stderr, "error: %s\n", conn.error_value().to_string().c_str());
    return 1;
  }
  auto ended = repl::follow_primary(**replica, **conn);
  if (!ended && ended.code() != aerodb::errc::replication_disconnected) {
    std::fprintf(stderr, "error: %s\n", ended.error_value().to_string().c_str());
    return 1;
  }
  return 0;
}
