// Replication over TCP (Boost.Asio), with mutual challenge-response authentication by a
// shared secret (HMAC-SHA256 from Debian's OpenSSL libcrypto): docs/replication.md §3.1.
//
// A replication port is a door to every document, so:
//   - a listener binds to the loopback address unless another address is configured;
//   - no frame is read or sent on a connection until both ends have proved, with an
//     HMAC over two fresh random nonces, that they hold the same secret; a peer that fails
//     is disconnected after the 44-byte challenge and nothing else (no record, no snapshot
//     byte ever);
//   - the secret must be at least min_secret_bytes long.
//
// The handshake, before any frame (all integers little-endian):
//   server -> client  magic "AERODBRP", version u32 = 1, server_nonce (32 bytes)
//   client -> server  client_nonce (32), HMAC(secret, "replica" || server_nonce || client_nonce) (32)
//   server -> client  HMAC(secret, "primary" || client_nonce || server_nonce) (32)
// The two directions use different labels, so one side's proof can never be replayed as
// the other's, and fresh nonces on both sides, so no earlier exchange can be replayed.
//
// Link with libcrypto (pkg-config: libcrypto). Everything else here is header-only.
//
// Thread safety: a tcp_connection allows one send() and one receive() at once, and
// shutdown() from any thread (the blocked calls then return). A tcp_listener's accept()
// from one thread; close() from any.
#pragma once

#include <aerodb/error.hpp>
#include <aerodb/replication/transport.hpp>

#include <boost/asio.hpp>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

namespace aerodb::replication {

inline constexpr std::size_t min_secret_bytes = 16;
inline constexpr std::size_t nonce_bytes = 32;
inline constexpr std::size_t challenge_bytes = 8 + 4 + nonce_bytes;  // what an unproven peer ever receives
inline constexpr std::array<char, 8> auth_magic = {'A', 'E', 'R', 'O', 'D', 'B', 'R', 'P'};

struct tcp_options {
  // The address the listener binds to: loopback unless set.
  std::string bind_address = "127.0.0.1";
  std::uint16_t port = 0;  // 0: any free port (tcp_listener::port() tells which)
  std::string secret;      // shared by the primary and its replicas; >= min_secret_bytes
};

namespace detail {

using digest = std::array<std::byte, 32>;

inline error auth_failed(std::string why) {
  return error(errc::replication_auth_failed, "replication peer authentication failed: " + std::move(why));
}

inline result<void> check_secret(std::string_view secret) {
  if (secret.size() < min_secret_bytes)
    return error(errc::config_invalid, "a replication secret must be at least 16 bytes long",
                 {{"bytes", std::to_string(secret.size())}, {"min", std::to_string(min_secret_bytes)}});
  return ok();
}

inline digest hmac(std::string_view secret, std::string_view label, std::span<const std::byte> a,
                   std::span<const std::byte> b) {
  std::vector<unsigned char> msg;
  msg.insert(msg.end(), label.begin(), label.end());
  for (auto x : a) msg.push_back(std::to_integer<unsigned char>(x));
  for (auto x : b) msg.push_back(std::to_integer<unsigned char>(x));
  digest out{};
  unsigned int len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()), msg.data(), msg.size(),
       reinterpret_cast<unsigned char*>(out.data()), &len);
  return out;
}

inline result<std::array<std::byte, nonce_bytes>> fresh_nonce() {
  std::array<std::byte, nonce_bytes> n{};
  if (RAND_bytes(reinterpret_cast<unsigned char*>(n.data()), static_cast<int>(n.size())) != 1)
    return error(errc::internal_bug, "the system random generator failed");
  return n;
}

inline bool same(const digest& a, std::span<const std::byte> b) {
  return b.size() == a.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace detail

// One TCP connection, blocking. It keeps the io_context its socket was made on alive: a
// socket must not outlive the services of its context.
class tcp_connection final : public connection {
 public:
  tcp_connection(std::shared_ptr<boost::asio::io_context> io, boost::asio::ip::tcp::socket socket)
      : io_(std::move(io)), socket_(std::move(socket)) {}
  ~tcp_connection() override {
    shutdown();
    boost::system::error_code ec;
    socket_.close(ec);
  }

  result<void> send(std::span<const std::byte> bytes) override {
    boost::system::error_code ec;
    boost::asio::write(socket_, boost::asio::buffer(bytes.data(), bytes.size()), ec);
    if (ec) return disconnected("sending failed: " + ec.message());
    return ok();
  }
  result<std::size_t> receive(std::span<std::byte> out) override {
    boost::system::error_code ec;
    const std::size_t n = socket_.read_some(boost::asio::buffer(out.data(), out.size()), ec);
    if (ec || n == 0) return disconnected(ec ? "receiving failed: " + ec.message() : "the peer closed");
    return n;
  }
  std::size_t available() override {
    boost::system::error_code ec;
    const std::size_t n = socket_.available(ec);
    return ec ? 0 : n;
  }
  // shutdown(2) on the descriptor, which wakes a thread blocked on it (Asio's socket
  // object is not meant to be called from two threads; the system call is).
  void shutdown() override { ::shutdown(socket_.native_handle(), SHUT_RDWR); }

 private:
  std::shared_ptr<boost::asio::io_context> io_;  // declared first: destroyed after the socket
  boost::asio::ip::tcp::socket socket_;
};

// The primary's listening socket. accept() returns only connections whose peer proved the
// secret; others are closed after the challenge.
class tcp_listener {
 public:
  static result<std::unique_ptr<tcp_listener>> open(tcp_options options) {
    AERO_TRY(detail::check_secret(options.secret));
    std::unique_ptr<tcp_listener> l(new tcp_listener(std::move(options)));
    boost::system::error_code ec;
    const auto address = boost::asio::ip::make_address(l->options_.bind_address, ec);
    if (ec)
      return error(errc::config_invalid, "not an IP address", {{"bind_address", l->options_.bind_address}});
    const boost::asio::ip::tcp::endpoint ep(address, l->options_.port);
    l->acceptor_.open(ep.protocol(), ec);
    if (!ec) l->acceptor_.set_option(boost::asio::socket_base::reuse_address(true), ec);
    if (!ec) l->acceptor_.bind(ep, ec);
    if (!ec) l->acceptor_.listen(boost::asio::socket_base::max_listen_connections, ec);
    if (ec)
      return error(errc::storage_io_error, "cannot listen for replicas: " + ec.message(),
                   {{"address", l->options_.bind_address}, {"port", std::to_string(l->options_.port)}});
    return l;
  }

  std::uint16_t port() const { return acceptor_.local_endpoint().port(); }

  // The next authenticated connection. A peer that fails the proof is disconnected and
  // counted, and accept() waits for the next one. AERO_REPLICATION_DISCONNECTED once
  // closed.
  result<std::unique_ptr<connection>> accept() {
    for (;;) {
      boost::asio::ip::tcp::socket s(*io_);
      boost::system::error_code ec;
      acceptor_.accept(s, ec);
      if (ec) return disconnected("the listener was closed: " + ec.message());
      auto conn = std::make_unique<tcp_connection>(io_, std::move(s));
      auto proven = prove(*conn);
      if (proven) return std::unique_ptr<connection>(std::move(conn));
      std::lock_guard lock(mu_);
      ++refused_;
      last_refusal_ = proven.error_value();
    }
  }

  void close() { ::shutdown(acceptor_.native_handle(), SHUT_RDWR); }

  // Peers refused for failing the proof, and why the last one was.
  std::uint64_t refused() const {
    std::lock_guard lock(mu_);
    return refused_;
  }
  std::optional<error> last_refusal() const {
    std::lock_guard lock(mu_);
    return last_refusal_;
  }

 private:
  explicit tcp_listener(tcp_options o)
      : options_(std::move(o)), io_(std::make_shared<boost::asio::io_context>()), acceptor_(*io_) {}

  result<void> prove(connection& c) {
    AERO_TRY_ASSIGN(auto server_nonce, detail::fresh_nonce());
    format::byte_buffer challenge;
    for (char ch : auth_magic) challenge.push_back(static_cast<std::byte>(ch));
    format::put_le<std::uint32_t>(challenge, 1);
    challenge.insert(challenge.end(), server_nonce.begin(), server_nonce.end());
    AERO_TRY(c.send(challenge));
    std::array<std::byte, nonce_bytes + 32> answer{};
    AERO_TRY(receive_exactly(c, answer));
    const auto client_nonce = std::span(answer).first(nonce_bytes);
    if (!detail::same(detail::hmac(options_.secret, "replica", server_nonce, client_nonce),
                      std::span(answer).subspan(nonce_bytes)))
      return detail::auth_failed("the replica's proof does not match the secret");
    const auto proof = detail::hmac(options_.secret, "primary", client_nonce, server_nonce);
    return c.send(proof);
  }

  tcp_options options_;
  // Shared with the connections accepted, which may outlive the listener.
  std::shared_ptr<boost::asio::io_context> io_;
  boost::asio::ip::tcp::acceptor acceptor_;
  mutable std::mutex mu_;
  std::uint64_t refused_ = 0;
  std::optional<error> last_refusal_;
};

// Connects to a primary and proves the secret both ways; AERO_REPLICATION_AUTH_FAILED if
// the primary does not prove it (the connection is then closed before any frame).
inline result<std::unique_ptr<connection>> tcp_connect(const std::string& host, std::uint16_t port,
                                                       const std::string& secret) {
  AERO_TRY(detail::check_secret(secret));
  auto io = std::make_shared<boost::asio::io_context>();
  boost::system::error_code ec;
  boost::asio::ip::tcp::resolver resolver(*io);
  const auto endpoints = resolver.resolve(host, std::to_string(port), ec);
  if (ec) return disconnected("cannot resolve the primary's address: " + ec.message());
  boost::asio::ip::tcp::socket s(*io);
  boost::asio::connect(s, endpoints, ec);
  if (ec) return disconnected("cannot connect to the primary: " + ec.message());
  auto conn = std::make_unique<tcp_connection>(io, std::move(s));
  std::array<std::byte, challenge_bytes> challenge{};
  AERO_TRY(receive_exactly(*conn, challenge));
  for (std::size_t i = 0; i < auth_magic.size(); ++i)
    if (challenge[i] != static_cast<std::byte>(auth_magic[i]))
      return detail::auth_failed("the peer is not an AeroDB primary");
  if (format::load_le<std::uint32_t>(challenge.data() + 8) != 1)
    return detail::auth_failed("the primary speaks another authentication version");
  const auto server_nonce = std::span(challenge).subspan(12);
  AERO_TRY_ASSIGN(auto client_nonce, detail::fresh_nonce());
  format::byte_buffer answer(client_nonce.begin(), client_nonce.end());
  const auto proof = detail::hmac(secret, "replica", server_nonce, client_nonce);
  answer.insert(answer.end(), proof.begin(), proof.end());
  AERO_TRY(conn->send(answer));
  std::array<std::byte, 32> theirs{};
  if (auto r = receive_exactly(*conn, theirs); !r)
    return detail::auth_failed("the primary closed the connection: it did not accept this replica's secret");
  if (!detail::same(detail::hmac(secret, "primary", client_nonce, server_nonce), theirs))
    return detail::auth_failed("the primary's proof does not match the secret");
  return std::unique_ptr<connection>(std::move(conn));
}

}  // namespace aerodb::replication
