// The policy matrix of the behavioural suite: every built-in combination (2 x 2 x 2).
//
// Compile time: an engine instantiation costs tens of seconds of compiler time, and the
// suite has many test files. So each combination is compiled once, with optimization, in
// tests/instantiate/<name>.cpp (explicit instantiation), and every test file sees only
// the `extern template` declarations below; the test files themselves are compiled
// without optimization (tests/meson.build), so the compiler does not re-instantiate the
// engine's inline members in every one of them.
#pragma once

#include <aerodb/aerodb.hpp>
#include <doctest/doctest.h>

namespace aerodb_test {

// Every built-in policy combination (2 x 2 x 2). Each behavioural TEST_CASE_TEMPLATE runs
// once per entry, so an optimized policy passes the whole suite unmodified by
// construction. Names spell the policies in order: fsync (per commit | group), visibility
// (traversal | cache), index (ordered | accelerated).
template <class F, class V, class I>
using engine = aerodb::basic_database<F, V, I>;
namespace pol = aerodb::policies;
using engine_per_commit_traversal_ordered = aerodb::database;
using engine_per_commit_traversal_accel = engine<pol::fsync_per_commit, pol::full_traversal, pol::accelerated_index>;
using engine_per_commit_cache_ordered = engine<pol::fsync_per_commit, pol::view_cache, pol::ordered_index>;
using engine_per_commit_cache_accel = engine<pol::fsync_per_commit, pol::view_cache, pol::accelerated_index>;
using engine_group_traversal_ordered = engine<pol::group_commit, pol::full_traversal, pol::ordered_index>;
using engine_group_traversal_accel = engine<pol::group_commit, pol::full_traversal, pol::accelerated_index>;
using engine_group_cache_ordered = engine<pol::group_commit, pol::view_cache, pol::ordered_index>;
using engine_group_cache_accel = aerodb::accelerated_database;

// Builds that are slow per test (the sanitizers) set the Meson option engine_matrix=pair,
// which defines AERODB_ENGINE_PAIR: the two ends of the matrix only. The plain GCC build of
// CI always runs all eight.
#ifdef AERODB_ENGINE_PAIR
#define AERODB_ENGINES aerodb_test::engine_per_commit_traversal_ordered, aerodb_test::engine_group_cache_accel
#else
#define AERODB_ENGINES                                                                     \
  aerodb_test::engine_per_commit_traversal_ordered, aerodb_test::engine_per_commit_traversal_accel, \
      aerodb_test::engine_per_commit_cache_ordered, aerodb_test::engine_per_commit_cache_accel,     \
      aerodb_test::engine_group_traversal_ordered, aerodb_test::engine_group_traversal_accel,       \
      aerodb_test::engine_group_cache_ordered, aerodb_test::engine_group_cache_accel
#endif

// The matrix as a type list, for tests that loop over engines at run time (one test case
// that recovers the same files with every engine, or rotates the engine per iteration).
template <class... Engines>
struct engine_list {
  static constexpr std::size_t size = sizeof...(Engines);

  // Calls f.template operator()<E>() for every engine E, in order.
  template <class F>
  static void each(F&& f) {
    (f.template operator()<Engines>(), ...);
  }

  // Calls f.template operator()<E>() for the i-th engine.
  template <class F>
  static void at(std::size_t i, F&& f) {
    std::size_t j = 0;
    ((j++ == i ? (f.template operator()<Engines>(), 0) : 0), ...);
  }
};

}  // namespace aerodb_test

#define AERODB_FOR_EACH_ENGINE_ALL(X)                                                     \
  X(engine_per_commit_traversal_ordered) X(engine_per_commit_traversal_accel)             \
  X(engine_per_commit_cache_ordered) X(engine_per_commit_cache_accel)                     \
  X(engine_group_traversal_ordered) X(engine_group_traversal_accel)                       \
  X(engine_group_cache_ordered) X(engine_group_cache_accel)
#ifdef AERODB_ENGINE_PAIR
#define AERODB_FOR_EACH_ENGINE(X) X(engine_per_commit_traversal_ordered) X(engine_group_cache_accel)
#else
#define AERODB_FOR_EACH_ENGINE(X) AERODB_FOR_EACH_ENGINE_ALL(X)
#endif

#ifndef AERODB_INSTANTIATING
#define AERODB_EXTERN_ENGINE(name)                                          \
  extern template class aerodb::basic_database<aerodb_test::name::fsync_policy, \
                                               aerodb_test::name::visibility_cache_policy, \
                                               aerodb_test::name::index_policy>; \
  extern template class aerodb::basic_read_view<aerodb_test::name>;
AERODB_FOR_EACH_ENGINE(AERODB_EXTERN_ENGINE)
#undef AERODB_EXTERN_ENGINE
#endif

TYPE_TO_STRING(aerodb_test::engine_per_commit_traversal_ordered);
TYPE_TO_STRING(aerodb_test::engine_per_commit_traversal_accel);
TYPE_TO_STRING(aerodb_test::engine_per_commit_cache_ordered);
TYPE_TO_STRING(aerodb_test::engine_per_commit_cache_accel);
TYPE_TO_STRING(aerodb_test::engine_group_traversal_ordered);
TYPE_TO_STRING(aerodb_test::engine_group_traversal_accel);
TYPE_TO_STRING(aerodb_test::engine_group_cache_ordered);
TYPE_TO_STRING(aerodb_test::engine_group_cache_accel);
