// Machine-readable campaign counts. A crash, fault or concurrency campaign ends by printing
// one line on stdout,
//   AERODB_COUNTS {"campaign":"power-loss","engines":8,"crash_states":10625,...}
// (JSON on one line: "campaign" names it, "engine" or "phase" say which part of it ran,
// every other member is a count or a duration). .ci/run collects these lines from Meson's
// testlog.json for docs/reliability.md, section 4. The prose line each campaign prints
// next to it is for people and may change wording freely.
#pragma once

#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include <cstdio>

namespace aerodb_test {

inline void print_counts(const boost::json::object& counts) {
  std::printf("AERODB_COUNTS %s\n", boost::json::serialize(counts).c_str());
  std::fflush(stdout);
}

}  // namespace aerodb_test
