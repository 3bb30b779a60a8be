// AeroDB for C++: the umbrella header. Include this, pick a policy combination (or use
// the `aerodb::database` baseline alias or the `aerodb::accelerated_database` alias), and
// open a data directory.
#pragma once

#include <aerodb/accelerated.hpp>
#include <aerodb/database.hpp>
#include <aerodb/metrics.hpp>
#include <aerodb/document/document.hpp>
#include <aerodb/error.hpp>
#include <aerodb/io/file_system.hpp>
#include <aerodb/index/scalar.hpp>
#include <aerodb/io/posix_fs.hpp>
#include <aerodb/policies/baseline.hpp>
#include <aerodb/policies/checkpoint.hpp>
#include <aerodb/policies/compact_layout.hpp>
#include <aerodb/policies/concepts.hpp>
#include <aerodb/query/match.hpp>
#include <aerodb/query/parse.hpp>
#include <aerodb/query/plan.hpp>
#include <aerodb/query/query.hpp>
#include <aerodb/schema/schema.hpp>
