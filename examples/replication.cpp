// Replication in two processes on loopback: this process is the primary; it starts a copy
// of itself as the replica, writes while the replica follows over TCP, and when the
// replica has caught up it stops. The replica reads what it received, checks it against
// what the primary wrote, is promoted to be the primary of epoch 1, and writes one more
// document, which the first process then finds when it opens the promoted directory.
//
//   replication [DATA_DIR]                        (default: ./replication-data)
//   replication --replica DIR PORT SECRET N       (started by the first form)
//
// The secret is shared by both sides; the listener binds to 127.0.0.1 only.
#include <aerodb/aerodb.hpp>
#include <aerodb/replication.hpp>
#include <aerodb/replication/tcp.hpp>

#include "example_dir.hpp"

#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

namespace repl = aerodb::replication;

namespace {

constexpr const char* note_schema = R"({"id":"note","version":1,"fields":{
  "_id":{"type":"string","required":true},
  "text":{"type":"string","required":true},
  "n":{"type":"int"}}})";

constexpr int notes = 200;

std::string note(int i) {
  return R"({"_id":"note-)" + std::to_string(i) + R"(","text":"note number )" + std::to_string(i) +
         R"(","n":)" + std::to_string(i) + "}";
}

// The replica process: follows the primary until it has applied `target`, reads, and is
// promoted.
int run_replica(const std::string& dir, std::uint16_t port, const std::string& secret, aerodb::commit_id target) {
  auto opened = repl::basic_replica<aerodb::database>::open(dir);
  if (!opened) return fail(opened.error_value());
  auto& replica = **opened;
  auto conn = repl::tcp_connect("127.0.0.1", port, secret);
  if (!conn) return fail(conn.error_value());
  std::thread follower([&] { (void)repl::follow_primary(replica, **conn); });
  // The primary ends the connection once this replica acknowledged everything.
  follower.join();
  const auto status = replica.status();
  std::printf("[replica] %s, applied CommitId %llu of %llu\n", std::string(repl::to_string(status.state)).c_str(),
              static_cast<unsigned long long>(status.applied), static_cast<unsigned long long>(target));
  if (status.applied != target) return 1;

  {
  auto view = replica.read();  // closed before the database goes (promote hands it on)
  if (!view) return fail(view.error_value());
  auto q = view->query(R"({"collection":"notes","schema_version":1,"filter":{"n":{"$gte":190}},"limit":100})");
  if (!q) return fail(q.error_value());
  std::printf("[replica] a query finds %zu notes with n >= 190; the first: %s\n", q->documents.size(),
              q->documents.empty() ? "-" : q->documents.front().doc.to_json_string().c_str());
  if (q->documents.size() != 10) return 1;
  auto ahead = replica.read_at(target + 1);
  std::printf("[replica] a read above the applied CommitId is refused: %s\n",
              ahead ? "NOT REFUSED" : std::string(ahead.error_value().name()).c_str());
  if (ahead) return 1;
  }

  auto promoted = repl::basic_replica<aerodb::database>::promote(std::move(*opened));
  if (!promoted) return fail(promoted.error_value());
  auto next = (*promoted)->insert("notes", 1, note(notes));
  if (!next) return fail(next.error_value());
  std::printf("[replica] promoted to primary of epoch %llu; wrote note-%d at CommitId %llu\n",
              static_cast<unsigned long long>((*promoted)->epoch()), notes, static_cast<unsigned long long>(*next));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 6 && std::string(argv[1]) == "--replica")
    return run_replica(argv[2], static_cast<std::uint16_t>(std::atoi(argv[3])), argv[4],
                       std::strtoull(argv[5], nullptr, 10));

  const std::string root = argc > 1 ? argv[1] : "replication-data";
  const std::string primary_dir = root + "/primary", replica_dir = root + "/replica";
  if (!prepare_example_dir(primary_dir) || !prepare_example_dir(replica_dir)) return 1;
  const std::string secret = "example secret, shared by both sides";

  auto db = aerodb::database::open(primary_dir);
  if (!db) return fail(db.error_value());
  auto& primary = **db;
  if (auto r = primary.register_schema(note_schema); !r) return fail(r.error_value());
  if (auto r = primary.create_collection("notes", "note"); !r) return fail(r.error_value());
  if (auto r = primary.create_index("notes", "n"); !r) return fail(r.error_value());

  repl::tcp_options options;
  options.secret = secret;
  auto listener = repl::tcp_listener::open(options);
  if (!listener) return fail(listener.error_value());
  const std::uint16_t port = (*listener)->port();
  std::printf("[primary] listening on 127.0.0.1:%u\n", port);

  // Every write the replica will receive: the catalog (3 records) and the notes.
  const aerodb::commit_id target = 3 + notes;
  const pid_t child = fork();
  if (child < 0) return 1;
  if (child == 0) {
    const std::string self = "/proc/self/exe";
    const std::string port_text = std::to_string(port), target_text = std::to_string(target);
    execl(self.c_str(), argv[0], "--replica", replica_dir.c_str(), port_text.c_str(), secret.c_str(),
          target_text.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }

  auto conn = (*listener)->accept();
  if (!conn) return fail(conn.error_value());
  repl::primary_feed<aerodb::database> feed(primary);
  std::atomic<bool> stop{false};
  std::thread server([&] { (void)repl::serve_replica(feed, **conn, stop); });
  for (int i = 0; i < notes; ++i)
    if (auto r = primary.insert("notes", 1, note(i)); !r) return fail(r.error_value());
  std::printf("[primary] wrote %d notes, last CommitId %llu\n", notes,
              static_cast<unsigned long long>(primary.last_commit_id()));
  // Acknowledgments come back as the replica makes each record durable.
  while (feed.acknowledged() < target) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  std::printf("[primary] the replica acknowledged CommitId %llu; ending the session\n",
              static_cast<unsigned long long>(feed.acknowledged()));
  stop.store(true);
  feed.wake();
  (*conn)->shutdown();
  server.join();

  int status = 0;
  waitpid(child, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::fprintf(stderr, "the replica process failed\n");
    return 1;
  }
  db->reset();

  // The promoted directory is a primary now, with every note and the one it wrote.
  auto leader = aerodb::database::open(replica_dir);
  if (!leader) return fail(leader.error_value());
  auto last = (*leader)->read().get("notes", "note-" + std::to_string(notes));
  if (!last || !*last) return 1;
  std::printf("[primary] the promoted store (epoch %llu) holds %s\n",
              static_cast<unsigned long long>((*leader)->epoch()), (*last)->doc.to_json_string().c_str());
  std::printf("replication example: OK\n");
  return 0;
}
