// AERODB_SCALE: how much of their full size the randomized tests run. It needs nothing
// but the standard library, so tests of single components can use it too.
#pragma once

#include <cstdlib>

namespace aerodb_test {

// AERODB_SCALE (a fraction, default 1) shrinks the randomized suites for slow builds:
// CI sets it for the sanitizer builds, whose normal-build counterparts run at full size.
inline double test_scale() {
  const char* s = std::getenv("AERODB_SCALE");
  if (!s) return 1.0;
  const double v = std::atof(s);
  return v > 0 && v <= 1 ? v : 1.0;
}

}  // namespace aerodb_test
