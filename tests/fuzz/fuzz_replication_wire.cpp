// Fuzz target: the replication wire decoder (replication/wire.hpp) and a replica fed what
// it decodes.
//
// Input: a stream of bytes as a replica would receive it from a primary after the
// handshake. It is cut into frames as replication::receive_message does (a 16-byte header,
// then the body its header names); each frame is decoded, and each decoded message is
// handed to a basic_replica (baseline engine, in-memory file system) whose store already
// holds a schema, a collection, an index and a few documents, received from a real
// primary in the same way.
//
// Properties, on every input:
//   - no exception, no sanitizer report; decoding fails only with AERO_REPLICATION_PROTOCOL;
//   - a frame that decodes re-encodes to exactly its bytes;
//   - the replica never throws; once it halts it takes nothing more (every later message
//     is refused with AERO_REPLICATION_HALTED), and its applied CommitId never moves
//     while halted;
//   - the replica's applied CommitId only grows, one record at a time, and only when a
//     record message returned an ack naming it;
//   - whatever the input, the replica's state is one a primary could have shipped: it
//     reopens (recovery replays its log) with the same applied CommitId and the same
//     documents.
#include "fuzz_common.hpp"

#include <aerodb/aerodb.hpp>
#include <aerodb/replication.hpp>
#include <aerodb/testing/fault_injection_fs.hpp>

#include <memory>
#include <string>

namespace repl = aerodb::replication;
using aerodb::database;

namespace {

std::string image(const database::read_view& v) {
  std::string out;
  (void)v.for_each("recs", [&](const aerodb::versioned_document& d) {
    out += std::to_string(d.committed_at) + d.doc.to_json_string() + "\n";
  });
  return out;
}

// A replica that received a small store from a real primary.
std::unique_ptr<repl::basic_replica<database>> make_replica(std::shared_ptr<aerodb::testing::fault_injection_fs> fs) {
  aerodb::open_options o;
  o.fs = fs;
  o.wal_segment_bytes = 1024;
  o.wal_preallocate_bytes = 512;
  auto primary = database::open("/p", o);
  (void)(*primary)->register_schema(R"({"id":"rec","version":1,"fields":{"_id":{"type":"string","required":true},"n":{"type":"int"}}})");
  (void)(*primary)->create_collection("recs", "rec");
  (void)(*primary)->create_index("recs", "n");
  for (int i = 0; i < 6; ++i)
    (void)(*primary)->insert("recs", 1, R"({"_id":"r)" + std::to_string(i) + R"(","n":)" + std::to_string(i) + "}");
  auto replica = repl::basic_replica<database>::open("/r", o);
  repl::primary_feed<database> feed(**primary);
  auto w = feed.on_hello((*replica)->make_hello());
  (void)(*replica)->on_message(*w);
  aerodb::format::byte_buffer out;
  (void)feed.next_frames(out, (*primary)->last_commit_id());
  for (std::size_t at = 0; at < out.size();) {
    auto h = repl::decode_header(std::span(out).subspan(at, repl::frame_header_size));
    const std::size_t len = repl::frame_header_size + h->body_length;
    (void)(*replica)->on_message(*repl::decode(std::span(out).subspan(at, len)));
    at += len;
  }
  return std::move(*replica);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  return aerodb_fuzz::guarded([&] {
    using aerodb_fuzz::require;
    auto fs = std::make_shared<aerodb::testing::fault_injection_fs>();
    auto replica = make_replica(fs);
    require(replica->applied() == 9 && !replica->halted(), "the set-up replica is not where it should be");
    auto in = aerodb_fuzz::bytes_of(data, size);
    bool was_halted = false;
    while (in.size() >= repl::frame_header_size) {
      auto h = repl::decode_header(in.first(repl::frame_header_size));
      if (!h) {
        aerodb_fuzz::require_error(h.error_value(), {aerodb::errc::replication_protocol}, "decode_header");
        break;
      }
      const std::size_t len = repl::frame_header_size + h->body_length;
      if (in.size() < len) break;  // the connection would wait for the rest
      const auto frame = in.first(len);
      in = in.subspan(len);
      auto m = repl::decode(frame);
      if (!m) {
        aerodb_fuzz::require_error(m.error_value(), {aerodb::errc::replication_protocol}, "decode");
        continue;
      }
      require(aerodb_fuzz::same_bytes(repl::encode(*m), frame), "a decoded frame does not re-encode to its bytes");
      const aerodb::commit_id before = replica->applied();
      auto reply = replica->on_message(*m);
      const aerodb::commit_id after = replica->applied();
      if (was_halted) {
        require(!reply && reply.code() == aerodb::errc::replication_halted, "a halted replica took a message");
        require(after == before, "a halted replica's state moved");
        continue;
      }
      if (!reply) {
        require(replica->halted(), "a refused message did not halt the replica");
        require(after == before, "a message that halted the replica changed its state");
        was_halted = true;
        continue;
      }
      if (after != before) {
        // One record at a time, except a snapshot bootstrap's install, which moves the
        // replica to the snapshot's CommitId at once.
        require(after == before + 1 || std::holds_alternative<repl::snapshot_end>(*m),
                "the replica applied more than one record at once");
        require(*reply && std::holds_alternative<repl::ack>(**reply) && std::get<repl::ack>(**reply).durable == after,
                "a record was applied without its ack");
      }
    }
    // What the replica holds is what its log replays to.
    const aerodb::commit_id applied = replica->applied();
    const std::string held = was_halted ? std::string() : image(*replica->read());
    replica.reset();
    auto reopened = repl::basic_replica<database>::open("/r", [&] {
      aerodb::open_options o;
      o.fs = fs;
      o.wal_segment_bytes = 1024;
      o.wal_preallocate_bytes = 512;
      return o;
    }());
    require(static_cast<bool>(reopened), "the replica's directory does not reopen",
            reopened ? std::string() : reopened.error_value().to_string());
    require((*reopened)->applied() == applied, "the reopened replica holds another CommitId");
    if (!was_halted) require(image(*(*reopened)->read()) == held, "the reopened replica holds other documents");
  });
}
