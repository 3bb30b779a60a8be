// Shared pieces of the libFuzzer targets in this directory (see tests/fuzz/README.md).
//
// A target checks properties, not just survival: a violated property prints what broke
// and calls __builtin_trap(), so libFuzzer records the input as a crash artifact. Every
// target runs its body through `guarded`, which turns any escaping exception (the
// engine's storage paths promise never to throw) into a property violation too.
//
// Thread safety: none needed; libFuzzer calls a target from one thread.
#pragma once

#include <aerodb/error.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace aerodb_fuzz {

[[noreturn]] inline void violated(const char* what, const std::string& context) {
  std::fprintf(stderr, "\nFUZZ PROPERTY VIOLATED: %s\n  %s\n", what, context.c_str());
  std::fflush(stderr);
  __builtin_trap();
}

inline void require(bool ok, const char* what, const std::string& context = {}) {
  if (!ok) violated(what, context);
}

// An error is "proper" when its code is one the documentation lists for the call that
// produced it, its severity is the code's documented one, and it names itself AERO_*.
inline void require_error(const aerodb::error& e, std::initializer_list<aerodb::errc> allowed,
                          const char* call) {
  bool listed = false;
  for (const auto c : allowed) listed = listed || e.code() == c;
  if (!listed) violated("undocumented error code", std::string(call) + ": " + e.to_string());
  require(e.name().starts_with("AERO_"), "error name", e.to_string());
  require(e.level() == aerodb::info(e.code()).level, "error severity", e.to_string());
  require(!e.message().empty(), "error without a message", e.to_string());
}

// Requires that detail `key` is present (and, for `offset`-like keys, a decimal number).
inline void require_detail(const aerodb::error& e, std::string_view key, bool numeric = false) {
  bool present = false;
  for (const auto& d : e.details()) present = present || d.key == key;
  require(present, "missing error detail", std::string(key) + " in " + e.to_string());
  if (!numeric) return;
  const std::string_view v = e.detail(key);
  require(!v.empty() && v.size() <= 20, "non-numeric error detail", e.to_string());
  for (const char c : v) require(c >= '0' && c <= '9', "non-numeric error detail", e.to_string());
}

// AERODB_FUZZ_VERBOSE=1 makes the targets describe what they saw (for reproducing a
// finding by hand: <target> FILE).
inline bool verbose() {
  static const bool on = std::getenv("AERODB_FUZZ_VERBOSE") != nullptr;
  return on;
}

template <class Body>
int guarded(Body&& body) {
  try {
    body();
  } catch (const std::exception& e) {
    violated("exception escaped", e.what());
  } catch (...) {
    violated("exception escaped", "(not a std::exception)");
  }
  return 0;
}

inline std::span<const std::byte> bytes_of(const std::uint8_t* data, std::size_t size) {
  return {reinterpret_cast<const std::byte*>(data), size};
}

inline std::string_view text_of(const std::uint8_t* data, std::size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

inline bool same_bytes(std::span<const std::byte> a, std::span<const std::byte> b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin());
}

// Inputs that carry several files separate them with this line. It is text so that seeds
// stay greppable, and long enough that a mutation rarely creates one by accident.
inline constexpr std::string_view file_separator = "\n--aerodb-fuzz-file--\n";

inline std::vector<std::span<const std::byte>> split_files(std::span<const std::byte> in) {
  std::vector<std::span<const std::byte>> out;
  const std::string_view text(reinterpret_cast<const char*>(in.data()), in.size());
  std::size_t from = 0;
  for (;;) {
    const std::size_t at = text.find(file_separator, from);
    if (at == std::string_view::npos) {
      out.push_back(in.subspan(from));
      return out;
    }
    out.push_back(in.subspan(from, at - from));
    from = at + file_separator.size();
  }
}

}  // namespace aerodb_fuzz
