// The transport seam of replication, and the two loops that run the protocol over it
// (docs/replication.md §2, §4).
//
// A connection carries bytes both ways, in order, until either side closes it. Two
// implementations: in_process_pair() here (tests; two byte queues) and TCP over
// Boost.Asio (replication/tcp.hpp). The protocol code sees only this interface, so the
// failure handling that the tests prove over one holds over the other.
//
//   serve_replica(feed, conn, stop)  the primary's side of one connection: the
//                                     handshake, then records as they are published,
//                                     with acknowledgments read on a second thread
//   follow_primary(replica, conn)    the replica's side: hello, then every message
//                                     through basic_replica::on_message, acks sent back
//
// Neither loop uses a timer. The primary waits for the next publish
// (version_store::wait_published_beyond); the replica for the next frame. Closing the
// connection (either side, or shutdown()) ends both loops.
//
// Thread safety: a connection's send() from one thread and receive() from another may run
// at once; shutdown() from any thread.
#pragma once

#include <aerodb/error.hpp>
#include <aerodb/replication/primary.hpp>
#include <aerodb/replication/replica.hpp>
#include <aerodb/replication/wire.hpp>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <memory>
#include <mutex>
#include <span>
#include <thread>
#include <utility>
#include <vector>

namespace aerodb::replication {

class connection {
 public:
  virtual ~connection() = default;
  // Sends all of `bytes`; AERO_REPLICATION_DISCONNECTED once the connection is closed.
  virtual result<void> send(std::span<const std::byte> bytes) = 0;
  // Receives at least one byte (blocking); AERO_REPLICATION_DISCONNECTED at the end.
  virtual result<std::size_t> receive(std::span<std::byte> out) = 0;
  // Closes both directions; blocked calls on either end return.
  virtual void shutdown() = 0;
  // Bytes that have arrived and not been received yet (0 when the transport cannot
  // tell): the replica groups the records already here into one fsync.
  virtual std::size_t available() { return 0; }
};

inline error disconnected(std::string why = "the connection was closed") {
  return error(errc::replication_disconnected, std::move(why));
}

namespace detail {

// One direction of an in-process connection.
class byte_pipe {
 public:
  result<void> push(std::span<const std::byte> b) {
    {
      std::lock_guard lock(mu_);
      if (closed_) return disconnected();
      q_.insert(q_.end(), b.begin(), b.end());
    }
    cv_.notify_all();
    return ok();
  }
  result<std::size_t> pop(std::span<std::byte> out) {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return !q_.empty() || closed_; });
    if (q_.empty()) return disconnected();
    const std::size_t n = std::min(out.size(), q_.size());
    std::copy_n(q_.begin(), n, out.begin());
    q_.erase(q_.begin(), q_.begin() + static_cast<std::ptrdiff_t>(n));
    return n;
  }
  void close() {
    {
      std::lock_guard lock(mu_);
      closed_ = true;
    }
    cv_.notify_all();
  }
  std::size_t size() {
    std::lock_guard lock(mu_);
    return q_.size();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::byte> q_;
  bool closed_ = false;
};

class in_process_end final : public connection {
 public:
  in_process_end(std::shared_ptr<byte_pipe> in, std::shared_ptr<byte_pipe> out)
      : in_(std::move(in)), out_(std::move(out)) {}
  ~in_process_end() override { shutdown(); }
  result<void> send(std::span<const std::byte> bytes) override { return out_->push(bytes); }
  result<std::size_t> receive(std::span<std::byte> out) override { return in_->pop(out); }
  std::size_t available() override { return in_->size(); }
  void shutdown() override {
    in_->close();
    out_->close();
  }

 private:
  std::shared_ptr<byte_pipe> in_, out_;
};

}  // namespace detail

// Two connected ends in this process.
inline std::pair<std::unique_ptr<connection>, std::unique_ptr<connection>> in_process_pair() {
  auto a = std::make_shared<detail::byte_pipe>();
  auto b = std::make_shared<detail::byte_pipe>();
  return {std::make_unique<detail::in_process_end>(a, b), std::make_unique<detail::in_process_end>(b, a)};
}

// Reads exactly `out.size()` bytes.
inline result<void> receive_exactly(connection& c, std::span<std::byte> out) {
  while (!out.empty()) {
    AERO_TRY_ASSIGN(std::size_t n, c.receive(out));
    out = out.subspan(n);
  }
  return ok();
}

// Reads one frame; the message may point into `body` (a record frame).
inline result<message> receive_message(connection& c, std::vector<std::byte>& body) {
  std::array<std::byte, frame_header_size> h{};
  AERO_TRY(receive_exactly(c, h));
  AERO_TRY_ASSIGN(frame_header header, decode_header(h));
  body.resize(header.body_length);
  AERO_TRY(receive_exactly(c, body));
  return decode_body(header, body);
}

inline result<void> send_message(connection& c, const message& m) {
  return c.send(encode(m));
}

// The primary's side of one replica's connection, until it closes, the replica refuses,
// or `stop` is set (then call wake(): it wakes the wait for the next publish). Returns why
// it ended: the handshake's refusal, the replica's, or AERO_REPLICATION_DISCONNECTED.
template <class Database>
result<void> serve_replica(primary_feed<Database>& feed, connection& conn, const std::atomic<bool>& stop) {
  std::vector<std::byte> body;
  AERO_TRY_ASSIGN(message first, receive_message(conn, body));
  const auto* h = std::get_if<hello>(&first);
  if (!h) {
    auto e = error(errc::replication_protocol, "a replica's first message must be hello");
    (void)send_message(conn, refuse{e.code(), e.message()});
    conn.shutdown();
    return e;
  }
  auto w = feed.on_hello(*h);
  if (!w) {
    (void)send_message(conn, refuse{w.code(), w.error_value().to_string()});
    conn.shutdown();
    return std::move(w).error_value();
  }
  AERO_TRY(send_message(conn, *w));
  if (feed.bootstrap_pending()) {
    auto b = feed.ship_bootstrap([&conn](std::span<const std::byte> bytes) { return conn.send(bytes); });
    if (!b) {
      // A checkpoint that removed the segment meanwhile, or a closed connection: the
      // replica starts over at its next handshake. Damage on this side is refused.
      if (b.code() != errc::replication_snapshot_needed && b.code() != errc::replication_disconnected)
        (void)send_message(conn, refuse{b.code(), b.error_value().to_string()});
      conn.shutdown();
      return b;
    }
  }

  // Acknowledgments arrive on their own thread, so the sender never waits for them.
  std::atomic<bool> ended{false};
  std::optional<error> ack_error;
  std::thread acks([&] {
    std::vector<std::byte> b;
    for (;;) {
      auto m = receive_message(conn, b);
      if (!m) {
        ack_error = std::move(m).error_value();
        break;
      }
      if (const auto* a = std::get_if<ack>(&*m)) {
        feed.on_ack(*a);
        continue;
      }
      if (const auto* f = std::get_if<refuse>(&*m))
        ack_error = error(f->code, "the replica refused: " + f->text);
      else
        ack_error = error(errc::replication_protocol, "a replica may send only acks after the handshake");
      break;
    }
    ended.store(true);
    feed.wake();
  });

  std::optional<error> failure;
  format::byte_buffer out;
  while (!stop.load() && !ended.load()) {
    out.clear();
    const commit_id limit = feed.published();
    auto n = feed.next_frames(out, limit);
    if (!n) {
      failure = std::move(n).error_value();
      (void)send_message(conn, refuse{failure->code(), failure->to_string()});
      break;
    }
    if (*n == 0) {
      feed.wait_beyond(limit, [&] { return stop.load() || ended.load(); });
      continue;
    }
    if (auto s = conn.send(out); !s) {
      failure = std::move(s).error_value();
      break;
    }
  }
  conn.shutdown();
  acks.join();
  if (failure) return *failure;
  if (ack_error && ack_error->code() != errc::replication_disconnected) return *ack_error;
  return disconnected();
}

// The replica's side: hello, then each message applied, until the connection closes or
// the replica halts (its reason is sent to the primary, and returned). Records that have
// already arrived when one is received are handled with it, as one group (at most
// max_group_records of them, or max_group_bytes): one fsync and one acknowledgment for
// all, where one by one would take as many as there are records.
inline constexpr std::size_t max_group_records = 4096;
inline constexpr std::size_t max_group_bytes = 4u << 20;

template <class Database, class ReplicaReadPolicy>
result<void> follow_primary(basic_replica<Database, ReplicaReadPolicy>& replica, connection& conn) {
  AERO_TRY(send_message(conn, replica.make_hello()));
  // Sends the reply to what was handled: an ack, or the refusal of a replica that halted,
  // which ends the session (returned).
  auto answer = [&conn](result<std::optional<message>> reply) -> std::optional<result<void>> {
    if (!reply) {
      (void)send_message(conn, refuse{reply.code(), reply.error_value().to_string()});
      conn.shutdown();
      return result<void>(std::move(reply).error_value());
    }
    if (*reply) {
      if (auto s = send_message(conn, **reply); !s) {
        conn.shutdown();
        return s;
      }
    }
    return std::nullopt;
  };
  std::vector<std::vector<std::byte>> bodies(1);
  std::vector<message> group;
  for (;;) {
    group.clear();
    auto m = receive_message(conn, bodies[0]);
    if (m && (std::holds_alternative<record_frame>(*m) || std::holds_alternative<segment_start>(*m))) {
      // Gather what else is already here; a message's span points into its own body.
      group.push_back(std::move(*m));
      std::size_t bytes = bodies[0].size();
      while (group.size() < max_group_records && bytes < max_group_bytes &&
             conn.available() >= frame_header_size) {
        if (bodies.size() <= group.size()) bodies.emplace_back();
        auto next = receive_message(conn, bodies[group.size()]);
        if (!next) {
          m = std::move(next);
          break;
        }
        const bool record = std::holds_alternative<record_frame>(*next) || std::holds_alternative<segment_start>(*next);
        bytes += bodies[group.size()].size();
        group.push_back(std::move(*next));
        if (!record) break;
      }
      if (m) {
        if (auto ended = answer(replica.on_messages(group))) return *ended;
        continue;
      }
      // A receive failed after some records arrived: those are still applied first.
      if (auto reply = replica.on_messages(std::span(group)); reply && *reply) (void)send_message(conn, **reply);
    }
    if (!m) {
      // A malformed frame halts the replica (ambiguity); a closed connection does not.
      if (m.code() == errc::replication_protocol) {
        auto e = replica.halt(std::move(m).error_value());
        (void)send_message(conn, refuse{e.code(), e.to_string()});
        conn.shutdown();
        return e;
      }
      conn.shutdown();
      return std::move(m).error_value();
    }
    if (auto ended = answer(replica.on_message(*m))) return *ended;
  }
}

}  // namespace aerodb::replication
