// Running the kernels' OpenMP loops safely: no exception may leave a parallel
// region (it would call std::terminate), and a long render must stop soon
// after its caller asks it to.
//
// Usage inside a kernel:
//
//   ParallelRun run(control);
//   #pragma omp parallel for
//   for (int i = 0; i < n; ++i)
//       run.task([&] { ... one work item ... });
//   run.finish();   // after the region: rethrows the first error, or Cancelled
//
// task() runs nothing once the run is stopped, catches every exception
// (recording the first) and lets the calling thread poll the caller's stop
// request every poll_interval_s.
#pragma once

#include <atomic>
#include <chrono>
#include <exception>
#include <functional>
#include <mutex>
#include <stdexcept>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace diffranet {

// What a kernel's caller controls while it runs. should_stop is called only
// from the thread that called the kernel, at most every poll_interval_s; it
// returns true to stop the render (the kernel then throws Cancelled).
struct RunControl {
    std::function<bool()> should_stop;
    double poll_interval_s = 0.1;
};

// Thrown by a kernel whose caller asked it to stop.
class Cancelled : public std::runtime_error {
  public:
    Cancelled() : std::runtime_error("render cancelled") {}
};

// Test hook: makes the next task of each parallel loop of the named kernel
// ("bragg_reflection", "bragg_pixel", "background") throw std::bad_alloc, as
// an allocation failing inside a worker thread would. Empty: off.
void set_injected_failure(const char* kernel);
bool injected_failure(const char* kernel);

class ParallelRun {
  public:
    explicit ParallelRun(const RunControl* control = nullptr, const char* kernel = "")
        : control_(control), fail_(injected_failure(kernel)), last_poll_(std::chrono::steady_clock::now()) {}

    ParallelRun(const ParallelRun&) = delete;
    ParallelRun& operator=(const ParallelRun&) = delete;

    bool stopped() const noexcept { return stop_.load(std::memory_order_relaxed); }

    template <class F>
    void task(F&& body) noexcept {
        if (stopped()) return;
        try {
            if (fail_) throw std::bad_alloc();
            body();
        } catch (...) {
            record(std::current_exception());
        }
        poll();
    }

    // The calling thread asks the caller whether to stop (at most every
    // poll interval); other threads return at once.
    void poll() noexcept {
        if (control_ == nullptr || !control_->should_stop || stopped()) return;
#ifdef _OPENMP
        if (omp_get_thread_num() != 0) return;
#endif
        const auto now = std::chrono::steady_clock::now();
        if (std::chrono::duration<double>(now - last_poll_).count() < control_->poll_interval_s) return;
        last_poll_ = now;
        bool stop = true;
        try {
            stop = control_->should_stop();
        } catch (...) {
            record(std::current_exception());
        }
        if (stop) {
            cancelled_ = true;
            stop_.store(true, std::memory_order_relaxed);
        }
    }

    // After the parallel region: the first recorded exception, else Cancelled
    // if the caller stopped the run.
    void finish() const {
        if (error_) std::rethrow_exception(error_);
        if (cancelled_) throw Cancelled();
    }

  private:
    void record(std::exception_ptr error) noexcept {
        std::lock_guard<std::mutex> lock(mutex_);
        if (!error_) error_ = error;
        stop_.store(true, std::memory_order_relaxed);
    }

    const RunControl* control_;
    bool fail_;
    std::atomic<bool> stop_{false};
    bool cancelled_ = false;  // written by the calling thread only
    std::chrono::steady_clock::time_point last_poll_;
    std::mutex mutex_;
    std::exception_ptr error_;
};

}  // namespace diffranet
