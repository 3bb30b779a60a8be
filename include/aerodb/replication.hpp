// Replication, all of it (docs/replication.md): the wire format, the primary's log
// source and feed, the replica, and the transports. Separate from aerodb.hpp because it
// brings threads and, with replication/tcp.hpp, networking.
#pragma once

#include <aerodb/replication/log_source.hpp>
#include <aerodb/replication/primary.hpp>
#include <aerodb/replication/replica.hpp>
#include <aerodb/replication/transport.hpp>
#include <aerodb/replication/wire.hpp>
