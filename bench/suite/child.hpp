// Runs one measurement in a forked child process and brings its result back as JSON.
//
// Each cell of the suite runs in its own process: the engine's memory, threads and file
// handles die with it, resident-set growth is measured from a clean start, and a "kill"
// (W7) is a real SIGKILL of a process holding the store open, not a polite close.
//
// Thread safety: call from the suite's single orchestrating thread only (fork() copies
// only the calling thread).
#pragma once

#include "suite_util.hpp"

#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>

namespace bench {

// `fn` runs in the child. Its object is written to `result_path`; then the child exits,
// or kills itself with SIGKILL when `kill_after` (the store is left as a crash leaves it).
// An exception in the child comes back as {"error": message}.
inline boost::json::object run_in_child(const std::string& result_path, bool kill_after,
                                        const std::function<boost::json::object()>& fn) {
  std::fflush(stdout);
  std::fflush(stderr);
  const pid_t pid = ::fork();
  if (pid < 0) throw failure("fork failed");
  if (pid == 0) {
    boost::json::object r;
    try {
      r = fn();
    } catch (const std::exception& e) {
      r = boost::json::object{{"error", e.what()}};
      kill_after = false;
    }
    {
      std::ofstream f(result_path, std::ios::trunc);
      f << boost::json::serialize(r);
    }
    std::fflush(stderr);
    if (kill_after) ::kill(::getpid(), SIGKILL);
    ::_exit(0);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {}
  std::ifstream f(result_path);
  std::stringstream text;
  text << f.rdbuf();
  ::unlink(result_path.c_str());
  if (text.str().empty())
    return boost::json::object{{"error", "child died without a result (status " + std::to_string(status) + ")"}};
  return boost::json::parse(text.str()).as_object();
}

}  // namespace bench
