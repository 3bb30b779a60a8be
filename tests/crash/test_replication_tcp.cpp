// Replication over the real TCP transport (replication/tcp.hpp), on loopback, with real
// files:
//   - a replica follows a primary with writers and ends with its documents and its
//     segment files;
//   - a client with no secret or a wrong one receives the 44-byte challenge and not one
//     byte more (counted on the wire), and the listener counts it refused; a replica with
//     the wrong secret learns nothing and applies nothing;
//   - the connection cut at every frame boundary of an exchange, on the primary's side and
//     on the replica's, then resumed: the replica ends with every record once and the
//     primary's files;
//   - a replica process killed with SIGKILL at random points (AERODB_KILLS times, 50 by
//     default) and restarted loses no record it acknowledged, and at the end catches up
//     with no gap and no duplicate: its log files are the primary's byte for byte.
#include "support/common.hpp"

#include <aerodb/replication.hpp>
#include <aerodb/replication/tcp.hpp>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <optional>
#include <random>
#include <thread>

using namespace aerodb;
using namespace aerodb_test;
namespace repl = aerodb::replication;

namespace {

const std::string secret = "a test secret of enough bytes";

const char* rec_schema = R"({"id":"rec","version":1,"fields":{
  "_id":{"type":"string","required":true},
  "n":{"type":"int"}}})";

std::string fresh_dir(const std::string& name) {
  const char* base = std::getenv("AERODB_BUILD_ROOT");
  const std::string dir = std::string(base ? base : "/tmp") + "/replication-tcp-" + name;
  std::filesystem::remove_all(dir);
  return dir;
}

open_options small_segments() {
  open_options o;
  o.wal_segment_bytes = 8192;
  o.wal_preallocate_bytes = 2048;
  return o;
}

std::map<std::string, std::string> segment_files(const std::string& dir) {
  std::map<std::string, std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (!format::parse_segment_file_name(name)) continue;
    std::ifstream in(e.path(), std::ios::binary);
    out[name] = std::string(std::istreambuf_iterator<char>(in), {});
  }
  return out;
}

template <class View>
std::string image(const View& v) {
  std::string out;
  auto r = v.for_each("recs", [&](const versioned_document& d) {
    out += std::to_string(d.committed_at) + d.doc.to_json_string() + "\n";
  });
  if (!r) out += r.error_value().to_string();
  return out;
}

// Serves every authenticated connection of `listener`, one at a time, until closed;
// remembers how far each session's replica acknowledged.
struct server {
  server(database& db, repl::tcp_listener& l) : listener(l), feed_db(db) {
    thread = std::thread([this] {
      for (;;) {
        auto conn = listener.accept();
        if (!conn) return;
        ++started;
        repl::primary_feed<database> feed(feed_db);
        current_feed.store(&feed);
        (void)repl::serve_replica(feed, **conn, stop);
        current_feed.store(nullptr);
        last_acked.store(feed.acknowledged());
        ++sessions;
      }
    });
  }
  ~server() {
    stop.store(true);
    listener.close();
    if (auto* f = current_feed.load()) f->wake();
    thread.join();
  }
  repl::tcp_listener& listener;
  database& feed_db;
  std::atomic<bool> stop{false};
  std::atomic<repl::primary_feed<database>*> current_feed{nullptr};
  std::atomic<commit_id> last_acked{0};
  std::atomic<int> started{0}, sessions{0};
  std::thread thread;
};

template <class R>
bool caught_up(const R& r, commit_id c) {
  for (int i = 0; i < 20000 && r.applied() < c && !r.halted(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  return r.applied() >= c;
}

void write_some(database& db, int from, int count) {
  for (int i = from; i < from + count; ++i) {
    write_batch b;
    b.insert("recs", 1, R"({"_id":"r)" + std::to_string(i) + R"(","n":)" + std::to_string(i % 97) + "}");
    if (i % 5 == 0 && i > 10) b.remove("recs", "r" + std::to_string(i - 7));
    REQUIRE(db.commit(b));
  }
}

// A connection that passes whole frames through until it has carried `frames_left` of
// them in the direction it guards (sends from this end), and then cuts the connection at
// that frame boundary: the bytes after it never leave.
class cutting_connection final : public repl::connection {
 public:
  cutting_connection(std::unique_ptr<repl::connection> inner, int frames) : inner_(std::move(inner)), left_(frames) {}
  result<void> send(std::span<const std::byte> bytes) override {
    // Where the frames of `bytes` end, one by one (sends carry whole frames).
    std::size_t cut = 0;
    while (cut < bytes.size() && left_ > 0) {
      const auto h = repl::decode_header(bytes.subspan(cut, repl::frame_header_size));
      if (!h) return h.error_value();
      cut += repl::frame_header_size + h->body_length;
      --left_;
    }
    if (cut > 0) AERO_TRY(inner_->send(bytes.first(cut)));
    if (cut < bytes.size()) {
      cuts_.store(true);
      inner_->shutdown();
      return repl::disconnected("cut by the test");
    }
    return ok();
  }
  result<std::size_t> receive(std::span<std::byte> out) override { return inner_->receive(out); }
  void shutdown() override { inner_->shutdown(); }
  bool cut() const { return cuts_.load(); }

 private:
  std::unique_ptr<repl::connection> inner_;
  int left_;
  std::atomic<bool> cuts_{false};
};

// A primary with the tests' schema, collection and index.
std::unique_ptr<database> open_primary(const std::string& dir) {
  auto primary = open_or_fail<database>(dir, small_segments());
  REQUIRE(primary->register_schema(rec_schema));
  REQUIRE(primary->create_collection("recs", "rec"));
  REQUIRE(primary->create_index("recs", "n"));
  return primary;
}

// Every segment of `rdir` holds the records of `pdir`'s segment of the same name, byte for
// byte (the zeros allocated ahead of them may differ).
void check_records_prefix(const std::string& pdir, const std::string& rdir) {
  const auto ps = segment_files(pdir), rs = segment_files(rdir);
  REQUIRE(!rs.empty());
  for (const auto& file : rs) {  // not a structured binding: INFO's lambda captures it
    const std::string& name = file.first;
    std::vector<std::byte> bytes(file.second.size());
    std::memcpy(bytes.data(), file.second.data(), bytes.size());
    const std::size_t end = records_end(bytes);
    INFO(name << ": replica records end at " << end);
    REQUIRE(ps.count(name));
    CHECK(end <= file.second.size());
    CHECK(ps.at(name).compare(0, end, file.second, 0, end) == 0);
  }
}

// A primary's end that changes the record frames it carries: the `target`-th record frame
// (from 0) is damaged (a payload bit flipped, the frame's own checksum redone, as a forger
// or a bad router would), sent twice, or held back and sent after the next one.
enum class tamper { flip, duplicate, reorder };

class tampering_connection final : public repl::connection {
 public:
  tampering_connection(std::unique_ptr<repl::connection> inner, tamper how, int target)
      : inner_(std::move(inner)), how_(how), target_(target) {}
  result<void> send(std::span<const std::byte> bytes) override {
    format::byte_buffer out;
    for (std::size_t at = 0; at < bytes.size();) {
      const auto h = repl::decode_header(bytes.subspan(at, repl::frame_header_size));
      if (!h) return h.error_value();
      const auto frame = bytes.subspan(at, repl::frame_header_size + h->body_length);
      at += frame.size();
      if (h->type != repl::frame_type::record) {
        out.insert(out.end(), frame.begin(), frame.end());
        continue;
      }
      const int n = records_++;
      if (held_) {  // the held record goes after the one that followed it
        out.insert(out.end(), frame.begin(), frame.end());
        out.insert(out.end(), held_->begin(), held_->end());
        held_.reset();
        continue;
      }
      if (n != target_) {
        out.insert(out.end(), frame.begin(), frame.end());
        continue;
      }
      switch (how_) {
        case tamper::flip: {
          auto m = repl::decode(frame);
          if (!m) return m.error_value();
          const auto framed = std::get<repl::record_frame>(*m).framed;
          std::vector<std::byte> bad(framed.begin(), framed.end());
          bad[format::record_header_size + (bad.size() - format::record_header_size) / 2] ^= std::byte{0x04};
          repl::encode(out, repl::record_frame{bad});
          break;
        }
        case tamper::duplicate:
          out.insert(out.end(), frame.begin(), frame.end());
          out.insert(out.end(), frame.begin(), frame.end());
          break;
        case tamper::reorder:
          held_.emplace(frame.begin(), frame.end());
          break;
      }
    }
    return inner_->send(out);
  }
  result<std::size_t> receive(std::span<std::byte> out) override { return inner_->receive(out); }
  void shutdown() override { inner_->shutdown(); }
  std::size_t available() override { return inner_->available(); }

 private:
  std::unique_ptr<repl::connection> inner_;
  tamper how_;
  int target_;
  int records_ = 0;
  std::optional<std::vector<std::byte>> held_;
};

// One session over TCP between `primary` and `replica`, the primary's end wrapped by
// `wrap`, until the replica has `until` or the session ends. Returns the follower's result.
template <class Wrap>
result<void> tcp_session(repl::tcp_listener& listener, database& primary, repl::basic_replica<database>& replica,
                         commit_id until, Wrap&& wrap) {
  std::unique_ptr<repl::connection> server_end;
  std::thread acceptor([&] {
    auto c = listener.accept();
    if (c) server_end = std::move(*c);
  });
  auto client = repl::tcp_connect("127.0.0.1", listener.port(), secret);
  acceptor.join();
  REQUIRE(client);
  REQUIRE(server_end);
  std::unique_ptr<repl::connection> p = wrap(std::move(server_end));
  repl::primary_feed<database> feed(primary);
  std::atomic<bool> stop{false}, ended{false};
  result<void> followed = ok();
  std::thread server([&] { (void)repl::serve_replica(feed, *p, stop); });
  std::thread follower([&] {
    followed = repl::follow_primary(replica, **client);
    ended.store(true);
  });
  for (int i = 0; i < 10000 && replica.applied() < until && !ended.load(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  stop.store(true);
  feed.wake();
  p->shutdown();
  (*client)->shutdown();
  server.join();
  follower.join();
  return followed;
}

}  // namespace

TEST_CASE("a connection cut at every frame boundary, either way, is resumed with no gap and no duplicate") {
  const std::string pdir = fresh_dir("cut-p");
  auto primary = open_primary(pdir);
  write_some(*primary, 0, 40);  // with the removes: records in several segments
  REQUIRE(primary->gc());
  const commit_id last = primary->last_commit_id();
  repl::tcp_options o;
  o.secret = secret;
  auto listener = repl::tcp_listener::open(o);
  REQUIRE(listener);
  const auto primary_files = segment_files(pdir);

  // One session over TCP; `primary_cut` / `replica_cut`: frames that side sends before its
  // end cuts (negative: no cut). Returns whether a cut happened.
  auto run_session = [&](repl::basic_replica<database>& replica, int primary_cut, int replica_cut) {
    std::unique_ptr<repl::connection> server_end;
    std::thread acceptor([&] {
      auto c = (*listener)->accept();
      if (c) server_end = std::move(*c);
    });
    auto client = repl::tcp_connect("127.0.0.1", (*listener)->port(), secret);
    acceptor.join();
    REQUIRE(client);
    REQUIRE(server_end);
    auto* pcut = primary_cut >= 0 ? new cutting_connection(std::move(server_end), primary_cut) : nullptr;
    auto* rcut = replica_cut >= 0 ? new cutting_connection(std::move(*client), replica_cut) : nullptr;
    std::unique_ptr<repl::connection> p(pcut ? pcut : server_end.release());
    std::unique_ptr<repl::connection> r(rcut ? rcut : client->release());
    repl::primary_feed<database> feed(*primary);
    std::atomic<bool> stop{false};
    std::thread server([&] { (void)repl::serve_replica(feed, *p, stop); });
    std::thread follower([&] { (void)repl::follow_primary(replica, *r); });
    // A session with no cut ends once the replica has everything; a cut one by itself.
    for (int i = 0; i < 5000 && replica.applied() < last && !(pcut && pcut->cut()) && !(rcut && rcut->cut()); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    stop.store(true);
    feed.wake();
    p->shutdown();
    r->shutdown();
    server.join();
    follower.join();
    return (pcut && pcut->cut()) || (rcut && rcut->cut());
  };

  for (int side = 0; side < 2; ++side) {
    for (int k = 0;; ++k) {
      INFO((side == 0 ? "primary" : "replica") << " side cut after " << k << " frames");
      const std::string rdir = fresh_dir("cut-r");
      auto replica = repl::basic_replica<database>::open(rdir, small_segments());
      REQUIRE(replica);
      const bool cut = run_session(**replica, side == 0 ? k : -1, side == 1 ? k : -1);
      CHECK(!(*replica)->halted());
      const commit_id after_cut = (*replica)->applied();
      CHECK(after_cut <= last);
      // Reconnect with no cut: it resumes after its last durable record.
      run_session(**replica, -1, -1);
      CHECK((*replica)->applied() == last);
      CHECK((*replica)->status().records_applied == last);  // each record applied once
      CHECK(!(*replica)->halted());
      CHECK(image(*(*replica)->read()) == image(primary->read()));
      CHECK(segment_files(rdir) == primary_files);
      if (!cut) break;  // k passed the last frame of the exchange: every boundary was cut
    }
  }
}

TEST_CASE("over TCP, a replica follows a primary with writers and ends with its documents and its files") {
  const std::string pdir = fresh_dir("follow-p"), rdir = fresh_dir("follow-r");
  auto primary = open_or_fail<database>(pdir, small_segments());
  REQUIRE(primary->register_schema(rec_schema));
  REQUIRE(primary->create_collection("recs", "rec"));
  repl::tcp_options o;
  o.secret = secret;
  auto listener = repl::tcp_listener::open(o);
  REQUIRE(listener);
  server s(*primary, **listener);
  auto replica = repl::basic_replica<accelerated_database>::open(rdir, small_segments());
  REQUIRE(replica);
  auto conn = repl::tcp_connect("127.0.0.1", (*listener)->port(), secret);
  REQUIRE(conn);
  std::thread follower([&] { (void)repl::follow_primary(**replica, **conn); });
  std::thread w1([&] { write_some(*primary, 0, 300); });
  std::thread w2([&] { write_some(*primary, 10000, 300); });
  w1.join();
  w2.join();
  REQUIRE(caught_up(**replica, primary->last_commit_id()));
  (*conn)->shutdown();
  follower.join();
  CHECK(image(*(*replica)->read()) == image(primary->read()));
  CHECK(segment_files(pdir) == segment_files(rdir));
}

TEST_CASE("a client without the secret receives the challenge and not one byte more") {
  const std::string pdir = fresh_dir("auth-p"), rdir = fresh_dir("auth-r");
  auto primary = open_or_fail<database>(pdir, small_segments());
  REQUIRE(primary->register_schema(rec_schema));
  REQUIRE(primary->create_collection("recs", "rec"));
  write_some(*primary, 0, 50);
  repl::tcp_options o;
  o.secret = secret;
  auto listener = repl::tcp_listener::open(o);
  REQUIRE(listener);
  server s(*primary, **listener);

  // Raw clients: one sends nothing and closes its side, one sends a wrong proof, one a
  // proof made with another secret. Each reads until the primary closes.
  auto raw = [&](const std::string& what) {
    boost::asio::io_context io;
    boost::asio::ip::tcp::socket sock(io);
    sock.connect({boost::asio::ip::make_address("127.0.0.1"), (*listener)->port()});
    std::array<std::byte, repl::challenge_bytes> challenge{};
    boost::asio::read(sock, boost::asio::buffer(challenge.data(), challenge.size()));
    if (what == "nothing") {
      sock.shutdown(boost::asio::socket_base::shutdown_send);
    } else {
      std::array<std::byte, 64> answer{};
      if (what == "other secret") {
        const auto nonce = std::span(challenge).subspan(12);
        std::array<std::byte, 32> mine{};
        const auto proof = repl::detail::hmac("another secret, also long", "replica", nonce, mine);
        std::copy(proof.begin(), proof.end(), answer.begin() + 32);
      }
      boost::asio::write(sock, boost::asio::buffer(answer.data(), answer.size()));
    }
    std::size_t more = 0;
    boost::system::error_code ec;
    std::array<char, 4096> buf{};
    for (;;) {
      const std::size_t n = sock.read_some(boost::asio::buffer(buf), ec);
      if (ec) break;
      more += n;
    }
    return more;
  };
  CHECK(raw("nothing") == 0);
  CHECK(raw("zeros") == 0);
  CHECK(raw("other secret") == 0);
  for (int i = 0; i < 200 && (*listener)->refused() < 3; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  CHECK((*listener)->refused() == 3);
  CHECK((*listener)->last_refusal()->code() == errc::replication_auth_failed);

  // A replica with the wrong secret: refused before any frame, nothing applied.
  auto replica = repl::basic_replica<database>::open(rdir, small_segments());
  REQUIRE(replica);
  auto conn = repl::tcp_connect("127.0.0.1", (*listener)->port(), "the wrong secret, long enough");
  REQUIRE(!conn);
  CHECK(conn.code() == errc::replication_auth_failed);
  CHECK((*replica)->applied() == 0);
  CHECK(segment_files(rdir).empty());
  // A secret too short to be one is refused before connecting.
  CHECK(repl::tcp_connect("127.0.0.1", (*listener)->port(), "short").code() == errc::config_invalid);
  o.secret = "short";
  CHECK(repl::tcp_listener::open(o).code() == errc::config_invalid);
  CHECK(s.sessions.load() == 0);
}

TEST_CASE("a replica process killed with SIGKILL at random points loses nothing it acknowledged, and catches up "
          "with no gap and no duplicate") {
  const char* program = std::getenv("AERODB_REPLICA_PROCESS");
  REQUIRE_MESSAGE(program, "AERODB_REPLICA_PROCESS names the replica_process program (tests/meson.build sets it)");
  const int kills = std::getenv("AERODB_KILLS") ? std::atoi(std::getenv("AERODB_KILLS")) : 50;
  const std::string pdir = fresh_dir("kill-p"), rdir = fresh_dir("kill-r");
  auto primary = open_primary(pdir);
  repl::tcp_options o;
  o.secret = secret;
  auto listener = repl::tcp_listener::open(o);
  REQUIRE(listener);
  server s(*primary, **listener);

  std::atomic<bool> writing{true};
  std::thread writer([&] {
    int i = 0;
    while (writing.load()) {
      write_some(*primary, i, 10);
      i += 10;
    }
  });
  std::mt19937 rng(42);
  const std::string port = std::to_string((*listener)->port());
  int killed_mid_session = 0;
  for (int k = 0; k < kills; ++k) {
    const int started_before = s.started.load();
    const pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      execl(program, program, rdir.c_str(), port.c_str(), secret.c_str(), "8192", "2048", static_cast<char*>(nullptr));
      _exit(127);
    }
    // One kill in five lands anywhere in the process's start (recovery, connecting); the
    // others at a random point after the primary accepted its connection, while records
    // flow.
    if (k % 5 != 0) {
      for (int i = 0; i < 10000 && s.started.load() == started_before; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    std::this_thread::sleep_for(std::chrono::microseconds(rng() % 30000));
    kill(pid, SIGKILL);
    int status = 0;
    waitpid(pid, &status, 0);
    REQUIRE(WIFSIGNALED(status));
    // The primary's session ends when the dead replica's socket closes.
    if (s.started.load() > started_before) {
      ++killed_mid_session;
      for (int i = 0; i < 5000 && s.sessions.load() < s.started.load(); ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    // Reopened, the replica holds at least every record it acknowledged.
    auto replica = repl::basic_replica<database>::open(rdir, small_segments());
    REQUIRE(replica);
    INFO("kill " << k);
    CHECK((*replica)->applied() >= s.last_acked.load());
  }
  writing.store(false);
  writer.join();
  CHECK(killed_mid_session >= kills * 3 / 4);

  // The last run catches up: the log is the primary's, byte for byte.
  auto replica = repl::basic_replica<database>::open(rdir, small_segments());
  REQUIRE(replica);
  auto conn = repl::tcp_connect("127.0.0.1", (*listener)->port(), secret);
  REQUIRE(conn);
  std::thread follower([&] { (void)repl::follow_primary(**replica, **conn); });
  REQUIRE(caught_up(**replica, primary->last_commit_id()));
  (*conn)->shutdown();
  follower.join();
  CHECK(!(*replica)->halted());
  CHECK(image(*(*replica)->read()) == image(primary->read()));
  const auto ps = segment_files(pdir), rs = segment_files(rdir);
  CHECK(ps.size() == rs.size());
  for (const auto& file : ps) {  // not a structured binding: INFO's lambda captures it
    const std::string& name = file.first;
    INFO(name << ": primary " << file.second.size() << " bytes, replica "
              << (rs.count(name) ? rs.at(name).size() : 0));
    CHECK((rs.count(name) && rs.at(name) == file.second));
  }
}

TEST_CASE("over TCP, a replica process killed with SIGKILL during its snapshot bootstrap reopens to its old state "
          "or the new one, and then catches up") {
  const char* program = std::getenv("AERODB_REPLICA_PROCESS");
  REQUIRE_MESSAGE(program, "AERODB_REPLICA_PROCESS names the replica_process program (tests/meson.build sets it)");
  const int kills = std::getenv("AERODB_KILLS") ? std::max(5, std::atoi(std::getenv("AERODB_KILLS")) / 5) : 10;
  const std::string pdir = fresh_dir("boot-p"), rdir = fresh_dir("boot-r");
  auto primary = open_primary(pdir);
  write_some(*primary, 0, 200);
  repl::tcp_options o;
  o.secret = secret;
  auto listener = repl::tcp_listener::open(o);
  REQUIRE(listener);
  server s(*primary, **listener);

  // The replica's old state: it followed the first 200 commits.
  std::string old_image;
  commit_id old_applied = 0;
  {
    auto replica = repl::basic_replica<database>::open(rdir, small_segments());
    REQUIRE(replica);
    auto conn = repl::tcp_connect("127.0.0.1", (*listener)->port(), secret);
    REQUIRE(conn);
    std::thread follower([&] { (void)repl::follow_primary(**replica, **conn); });
    REQUIRE(caught_up(**replica, primary->last_commit_id()));
    (*conn)->shutdown();
    follower.join();
    old_applied = (*replica)->applied();
    old_image = image(*(*replica)->read());
  }
  // The primary moves on, and a checkpoint removes what the replica would need next.
  write_some(*primary, 1000, 3000);
  REQUIRE(primary->checkpoint());
  const commit_id new_applied = primary->last_commit_id();
  const std::string new_image = image(primary->read());

  // Each kill interrupts the same bootstrap: the replica's old state is put back first.
  const std::string saved = rdir + ".old";
  std::filesystem::remove_all(saved);
  std::filesystem::copy(rdir, saved, std::filesystem::copy_options::recursive);
  const std::string port = std::to_string((*listener)->port());
  // One run of the replica process from the old state: the handshake, then the whole
  // bootstrap, up to the moment the primary sees it acknowledged; returns how long that
  // took, or kills the process `kill_after` into it (0: no kill) and returns 0.
  auto run = [&](std::chrono::microseconds kill_after) {
    std::filesystem::remove_all(rdir);
    std::filesystem::copy(saved, rdir, std::filesystem::copy_options::recursive);
    const int started_before = s.started.load();
    const pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      execl(program, program, rdir.c_str(), port.c_str(), secret.c_str(), "8192", "2048", static_cast<char*>(nullptr));
      _exit(127);
    }
    for (int i = 0; i < 10000 && s.started.load() == started_before; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    const auto began = std::chrono::steady_clock::now();
    std::chrono::microseconds took{0};
    if (kill_after.count() > 0) {
      std::this_thread::sleep_for(kill_after);
    } else {
      // The feed lives until the session ends, which is after this process's kill.
      for (int i = 0; i < 60000; ++i) {
        auto* feed = s.current_feed.load();
        if (feed && feed->acknowledged() >= new_applied) break;
        std::this_thread::sleep_for(std::chrono::microseconds(200));
      }
      took = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - began);
    }
    kill(pid, SIGKILL);
    int status = 0;
    waitpid(pid, &status, 0);
    REQUIRE(WIFSIGNALED(status));
    for (int i = 0; i < 5000 && s.sessions.load() < s.started.load(); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    return took;
  };
  int old_states = 0, new_states = 0;
  auto check_reopened = [&](int k) {
    auto replica = repl::basic_replica<database>::open(rdir, small_segments());
    REQUIRE(replica);
    INFO("kill " << k);
    const commit_id at = (*replica)->applied();
    REQUIRE((at == old_applied || at == new_applied));
    CHECK(image(*(*replica)->read()) == (at == old_applied ? old_image : new_image));
    (at == old_applied ? old_states : new_states) += 1;
  };
  // How long a whole bootstrap takes on this machine, so that the kills spread over it:
  // early ones while the snapshot streams in, later ones during or after the install.
  const auto whole = run(std::chrono::microseconds{0});
  check_reopened(-1);
  for (int k = 0; k < kills; ++k) {
    (void)run(std::chrono::microseconds{1 + whole.count() * k / kills});
    check_reopened(k);
  }
  MESSAGE("bootstrap kills over " << whole.count() << " us: " << old_states << " reopened to the old state, "
                                   << new_states << " to the new one");

  // Then it finishes: the primary's documents, and its log's records byte for byte.
  auto replica = repl::basic_replica<database>::open(rdir, small_segments());
  REQUIRE(replica);
  auto conn = repl::tcp_connect("127.0.0.1", (*listener)->port(), secret);
  REQUIRE(conn);
  std::thread follower([&] { (void)repl::follow_primary(**replica, **conn); });
  REQUIRE(caught_up(**replica, primary->last_commit_id()));
  write_some(*primary, 9000, 50);
  REQUIRE(caught_up(**replica, primary->last_commit_id()));
  (*conn)->shutdown();
  follower.join();
  CHECK(!(*replica)->halted());
  CHECK(image(*(*replica)->read()) == image(primary->read()));
  check_records_prefix(pdir, rdir);
}

TEST_CASE("over TCP, a record damaged, duplicated or reordered in transit halts the replica with nothing of it "
          "applied, a diverged replica halts at the handshake, and a promotion's epoch fences the old primary") {
  const std::string pdir = fresh_dir("tamper-p");
  auto primary = open_primary(pdir);
  write_some(*primary, 0, 60);
  const commit_id last = primary->last_commit_id();
  repl::tcp_options o;
  o.secret = secret;
  auto listener = repl::tcp_listener::open(o);
  REQUIRE(listener);
  const auto primary_files = segment_files(pdir);
  const auto plain = [](std::unique_ptr<repl::connection> c) { return c; };

  SUBCASE("damaged, duplicated, reordered") {
    const int target = 30;  // the 31st record frame: CommitId 31
    for (const tamper how : {tamper::flip, tamper::duplicate, tamper::reorder}) {
      INFO("tamper " << static_cast<int>(how));
      const std::string rdir = fresh_dir("tamper-r");
      auto replica = repl::basic_replica<database>::open(rdir, small_segments());
      REQUIRE(replica);
      auto followed = tcp_session(**listener, *primary, **replica, last, [&](std::unique_ptr<repl::connection> c) {
        return std::unique_ptr<repl::connection>(new tampering_connection(std::move(c), how, target));
      });
      REQUIRE(!followed);
      const errc expected = how == tamper::flip ? errc::replication_record_corrupt : errc::replication_gap;
      CHECK(followed.code() == expected);
      CHECK((*replica)->halted());
      CHECK((*replica)->status().halt_reason->code() == expected);
      // Every record before the damaged, repeated or early one, and nothing of it.
      const commit_id applied = (*replica)->applied();
      CHECK(applied == (how == tamper::duplicate ? commit_id{target + 1} : commit_id{target}));
      CHECK((*replica)->read().code() == errc::replication_halted);
      REQUIRE((*replica)->resume());
      CHECK(image(*(*replica)->read()) == image(*primary->read_at(applied)));
      replica->reset();
      // Its log holds exactly those records; an honest connection then brings it to the end.
      auto reopened = repl::basic_replica<database>::open(rdir, small_segments());
      REQUIRE(reopened);
      CHECK((*reopened)->applied() == applied);
      (void)tcp_session(**listener, *primary, **reopened, last, plain);
      CHECK((*reopened)->applied() == last);
      CHECK(!(*reopened)->halted());
      CHECK(segment_files(rdir) == primary_files);
    }
  }

  SUBCASE("a replica holding another record at the same CommitId halts at the handshake") {
    const std::string odir = fresh_dir("tamper-other"), rdir = fresh_dir("tamper-diverged");
    {
      // Another primary with a different history of the same length.
      auto other = open_primary(odir);
      write_some(*other, 500, 60);
      repl::tcp_options o2;
      o2.secret = secret;
      auto other_listener = repl::tcp_listener::open(o2);
      REQUIRE(other_listener);
      auto replica = repl::basic_replica<database>::open(rdir, small_segments());
      REQUIRE(replica);
      (void)tcp_session(**other_listener, *other, **replica, other->last_commit_id(), plain);
      REQUIRE((*replica)->applied() == other->last_commit_id());
    }
    auto replica = repl::basic_replica<database>::open(rdir, small_segments());
    REQUIRE(replica);
    const auto before = segment_files(rdir);
    // No CommitId to wait for: the session ends by the primary's refusal.
    auto followed = tcp_session(**listener, *primary, **replica, std::numeric_limits<commit_id>::max(), plain);
    REQUIRE(!followed);
    CHECK(followed.code() == errc::replication_divergence);
    CHECK((*replica)->halted());
    CHECK(segment_files(rdir) == before);
  }

  SUBCASE("a replica promoted while the primary is down fences the old primary when they meet") {
    const std::string rdir = fresh_dir("tamper-promoted"), r2dir = fresh_dir("tamper-r2");
    auto replica = repl::basic_replica<database>::open(rdir, small_segments());
    REQUIRE(replica);
    (void)tcp_session(**listener, *primary, **replica, last, plain);
    REQUIRE((*replica)->applied() == last);
    // The primary goes away; the operator promotes the replica, which takes writes.
    primary.reset();
    auto promoted = repl::basic_replica<database>::promote(std::move(*replica));
    REQUIRE(promoted);
    CHECK((*promoted)->epoch() == 1);
    write_some(**promoted, 2000, 5);
    // A replica of the new primary (epoch 1)...
    repl::tcp_options o3;
    o3.secret = secret;
    auto new_listener = repl::tcp_listener::open(o3);
    REQUIRE(new_listener);
    auto r2 = repl::basic_replica<database>::open(r2dir, small_segments());
    REQUIRE(r2);
    (void)tcp_session(**new_listener, **promoted, **r2, (*promoted)->last_commit_id(), plain);
    REQUIRE((*r2)->applied() == (*promoted)->last_commit_id());
    CHECK((*r2)->status().epoch == 1);
    // ...meets the old primary, restarted: the old primary refuses it and fences itself.
    auto old = open_or_fail<database>(pdir, small_segments());
    auto followed = tcp_session(**listener, *old, **r2, std::numeric_limits<commit_id>::max(), plain);
    REQUIRE(!followed);
    CHECK(followed.code() == errc::replication_stale_epoch);
    write_batch b;
    b.insert("recs", 1, R"({"_id":"late","n":1})");
    auto refused = old->commit(b);
    REQUIRE(!refused);
    CHECK(refused.code() == errc::replication_stale_epoch);
    old.reset();
    auto again = open_or_fail<database>(pdir, small_segments());  // and still after a restart
    CHECK(again->commit(b).code() == errc::replication_stale_epoch);
  }
}

TEST_CASE("two processes on loopback under two writers: the replica's log is the primary's record for record, "
          "and at sampled CommitIds it answers as the primary") {
  const char* program = std::getenv("AERODB_REPLICA_PROCESS");
  REQUIRE_MESSAGE(program, "AERODB_REPLICA_PROCESS names the replica_process program (tests/meson.build sets it)");
  const std::string pdir = fresh_dir("two-p"), rdir = fresh_dir("two-r");
  auto primary = open_primary(pdir);
  repl::tcp_options o;
  o.secret = secret;
  auto listener = repl::tcp_listener::open(o);
  REQUIRE(listener);
  server s(*primary, **listener);
  const commit_id until = primary->last_commit_id() + 600;  // the two writers' 600 commits
  std::string command = std::string(program) + " " + rdir + " " + std::to_string((*listener)->port()) + " '" +
                        secret + "' 8192 2048 " + std::to_string(until);
  std::vector<commit_id> samples;
  for (commit_id c = 4; c <= until; c += 61) samples.push_back(c);
  samples.push_back(until);
  for (commit_id c : samples) command += " " + std::to_string(c);
  // The replica process starts first and follows while the writers run.
  FILE* out = popen(command.c_str(), "r");
  REQUIRE(out);
  std::thread w1([&] { write_some(*primary, 0, 300); });
  std::thread w2([&] { write_some(*primary, 10000, 300); });
  w1.join();
  w2.join();
  REQUIRE(primary->last_commit_id() == until);
  std::map<commit_id, std::size_t> replica_answers;
  char line[128];
  while (std::fgets(line, sizeof line, out)) {
    unsigned long long c = 0;
    std::size_t h = 0;
    if (std::sscanf(line, "%llu %zu", &c, &h) == 2) replica_answers[c] = h;
  }
  REQUIRE(pclose(out) == 0);
  REQUIRE(replica_answers.size() == samples.size());
  for (commit_id c : samples) {
    INFO("CommitId " << c);
    CHECK(replica_answers.at(c) == std::hash<std::string>{}(image(*primary->read_at(c))));
  }
  CHECK(segment_files(rdir).size() == segment_files(pdir).size());
  check_records_prefix(pdir, rdir);
}
