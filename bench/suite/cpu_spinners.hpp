// cpu_spinners: the busy-CPU pass of the commit benchmarks (bench_suite's W1/W2 and
// bench_replication). On the VMs these run on, an fdatasync waited for while every CPU is
// idle completes only at the next timer tick (4 ms at CONFIG_HZ=250); a nice-19 spinner
// thread per CPU takes CPU only when nothing else wants it, so the CPUs never go idle and
// every engine sees the same, tick-free disk.
//
// Owns its spinner threads. Spinners live in the process that started them only (fork
// copies just the calling thread); they hold no lock, so forking beside them is safe.
//
// Thread safety: start() and stop() from one thread at a time (the orchestrating one).
#pragma once

#include <pthread.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <thread>
#include <vector>

namespace bench {

class cpu_spinners {
 public:
  cpu_spinners() = default;
  cpu_spinners(const cpu_spinners&) = delete;
  cpu_spinners& operator=(const cpu_spinners&) = delete;
  ~cpu_spinners() { stop(); }
  // Starts one spinner per online CPU; does nothing when they already run.
  void start() {
    if (!threads_.empty()) return;
    stop_ = false;
    for (long i = 0; i < ::sysconf(_SC_NPROCESSORS_ONLN); ++i)
      threads_.emplace_back([this] {
        (void)::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), 19);
        (void)::pthread_setname_np(::pthread_self(), "spinner");  // told apart in perf and top
        while (!stop_.load(std::memory_order_relaxed)) {}
      });
  }
  void stop() {
    stop_ = true;
    for (auto& t : threads_) t.join();
    threads_.clear();
  }
  bool running() const noexcept { return !threads_.empty(); }

 private:
  std::atomic<bool> stop_{false};
  std::vector<std::thread> threads_;
};

}  // namespace bench
