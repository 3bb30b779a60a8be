// Replication, all of it (docs/replication.md): the wire format, the primary's log
// source and feed, the replica, and the transports. Separate from aerodb.hpp because it
// brings threads and, with replication/tcp.hpp, networking.
//
// `accelerated_replica` is to basic_replica<aerodb::database> what
// aerodb::accelerated_database is to aerodb::database: the accelerated engine, with reads
// admitted by the pre-validated boundary of docs/optimizations/replica_read_fast_path.md.
// Either follows either kind of primary, and a replica directory opens with either.
#pragma once

#include <aerodb/accelerated.hpp>
#include <aerodb/database.hpp>
#include <aerodb/policies/replica_read.hpp>
#include <aerodb/replication/log_source.hpp>
#include <aerodb/replication/primary.hpp>
#include <aerodb/replication/replica.hpp>
#include <aerodb/replication/transport.hpp>
#include <aerodb/replication/wire.hpp>

namespace aerodb::replication {

using accelerated_replica = basic_replica<accelerated_database, policies::replica_read_fast_path>;

}  // namespace aerodb::replication
