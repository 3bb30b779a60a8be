// phase_progress: one recovery phase as the application and the recovery report see it.
// It times the phase into its recovery_report field and tells open_options::
// on_recovery_progress about it: `begin`, an `advance` each time the work done crosses
// another 1% of the phase's total, and `end`.
//
// Why a rate in units and not in time: the calls then fall at the same points on every
// run over the same files, so tests can hold them to exact sequences, and a clock is never
// read per unit of work. Why 1%: at most 100 advances per phase, whatever its size, so a
// callback that prints or repaints costs nothing measurable even at a million documents.
// With no callback, advance() is one comparison that never succeeds.
//
// A callback that throws stops the open: the exception is caught here, and what it said
// travels up as progress_callback_threw, which basic_database turns into
// AERO_OPEN_CANCELLED. Recovery holds only RAII resources (the state lock, open files,
// the partly built store), so unwinding through it is as safe as a std::bad_alloc.
//
// Thread safety: used by the opening thread only.
//
// Invariants: within a phase `done` never decreases and never exceeds `total`; the last
// call is `end` with done == total.
#pragma once

#include <aerodb/options.hpp>

#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <limits>
#include <string>
#include <utility>

namespace aerodb::engine {

// What the progress callback threw, carried out of recovery to the open that catches it.
struct progress_callback_threw {
  recovery_phase phase;
  std::string what;
};

class phase_progress {
 public:
  using callback = std::function<void(const recovery_progress&)>;

  // Starts the phase: reports `begin` and starts its clock. `elapsed` receives the phase's
  // duration at finish().
  phase_progress(const callback& cb, recovery_phase phase, std::uint64_t total, std::chrono::nanoseconds& elapsed)
      : cb_(cb ? &cb : nullptr), elapsed_(elapsed), total_(total), step_(total / 100 ? total / 100 : 1) {
    event_.phase = phase;
    emit(recovery_event::begin, 0);
    next_ = cb_ && total_ ? step_ : never;
    started_ = std::chrono::steady_clock::now();
  }
  phase_progress(const phase_progress&) = delete;
  phase_progress& operator=(const phase_progress&) = delete;

  // `done` units of the phase are behind it (never fewer than at the last call; clamped
  // to the total).
  void advance(std::uint64_t done) {
    if (done >= next_) [[unlikely]]
      report(done);
  }
  // The counters that ride along (recovery_progress): set them before advance().
  void set_documents_loaded(std::uint64_t n) noexcept { event_.documents_loaded = n; }
  void set_records_replayed(std::uint64_t n) noexcept { event_.records_replayed = n; }

  // Ends the phase: stops its clock and reports `end` with done == total. Call once.
  void finish() {
    elapsed_ = std::chrono::steady_clock::now() - started_;
    next_ = never;
    emit(recovery_event::end, total_);
  }

 private:
  static constexpr std::uint64_t never = std::numeric_limits<std::uint64_t>::max();

  void report(std::uint64_t done) {
    done = std::min(done, total_);
    next_ = done >= total_ ? never : (done / step_ + 1) * step_;
    emit(recovery_event::advance, done);
  }

  void emit(recovery_event e, std::uint64_t done) {
    if (!cb_) return;
    event_.event = e;
    event_.done = done;
    event_.total = total_;
    try {
      (*cb_)(event_);
    } catch (const std::exception& x) {
      throw progress_callback_threw{event_.phase, x.what()};
    } catch (...) {
      throw progress_callback_threw{event_.phase, "an exception not derived from std::exception"};
    }
  }

  const callback* cb_;
  std::chrono::nanoseconds& elapsed_;
  const std::uint64_t total_;
  const std::uint64_t step_;
  std::uint64_t next_ = never;
  recovery_progress event_;
  std::chrono::steady_clock::time_point started_;
};

}  // namespace aerodb::engine
