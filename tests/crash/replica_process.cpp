// A replica in a process of its own, for the kill campaign of test_replication_tcp: it
// opens DIR as a replica (baseline engine), connects to the primary at 127.0.0.1:PORT
// with SECRET, and follows it until the connection ends or the process is killed.
//
//   replica_process DIR PORT SECRET SEGMENT_BYTES PREALLOCATE_BYTES [UNTIL SAMPLE...]
//
// SEGMENT_BYTES and PREALLOCATE_BYTES are the replica's open_options::wal_segment_bytes and
// wal_preallocate_bytes: the same as the primary's, so that its files, zeros ahead of the
// records included, are the primary's byte for byte. With UNTIL, it follows until it has
// applied that CommitId, then prints one line per SAMPLE CommitId, "C HASH", HASH the
// std::hash of the collection `recs` as a read view at C sees it (each document's
// CommitId and JSON, in _id order), and exits; the test compares them with the primary's.
//
// Exit status: 0 when the connection ended, 1 on an error (printed), 2 on bad usage.
#include <aerodb/aerodb.hpp>
#include <aerodb/replication.hpp>
#include <aerodb/replication/tcp.hpp>

#include <cstdio>
#include <chrono>
#include <cstdlib>
#include <functional>
#include <string>
#include <thread>

int main(int argc, char** argv) {
  if (argc < 6 || argc == 7) {
    std::fprintf(stderr, "usage: replica_process DIR PORT SECRET SEGMENT_BYTES PREALLOCATE_BYTES [UNTIL SAMPLE...]\n");
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
  if (argc > 6) {
    const aerodb::commit_id until = std::strtoull(argv[6], nullptr, 10);
    aerodb::result<void> followed = aerodb::ok();
    std::thread follower([&] { followed = repl::follow_primary(**replica, **conn); });
    while ((*replica)->applied() < until && !(*replica)->halted())
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    (*conn)->shutdown();
    follower.join();
    if ((*replica)->halted()) {
      std::fprintf(stderr, "error: halted: %s\n", (*replica)->status().halt_reason->to_string().c_str());
      return 1;
    }
    for (int i = 7; i < argc; ++i) {
      const aerodb::commit_id c = std::strtoull(argv[i], nullptr, 10);
      auto view = (*replica)->read_at(c);
      if (!view) {
        std::fprintf(stderr, "error: %s\n", view.error_value().to_string().c_str());
        return 1;
      }
      std::string image;
      (void)view->for_each("recs", [&](const aerodb::versioned_document& d) {
        image += std::to_string(d.committed_at) + d.doc.to_json_string() + "\n";
      });
      std::printf("%llu %zu\n", static_cast<unsigned long long>(c), std::hash<std::string>{}(image));
    }
    return 0;
  }
  auto ended = repl::follow_primary(**replica, **conn);
  if (!ended && ended.code() != aerodb::errc::replication_disconnected) {
    std::fprintf(stderr, "error: %s\n", ended.error_value().to_string().c_str());
    return 1;
  }
  return 0;
}
