// Exceptions and OpenMP parallel regions.
//
// A C++ exception must not leave an OpenMP structured block: if one does, the
// runtime calls std::terminate and the whole Python process aborts. Every
// parallel kernel therefore runs the work of its region through
// ParallelErrors::run, which catches whatever is thrown (std::bad_alloc from a
// per-thread buffer, most often), keeps the first exception and makes the
// remaining work of every thread a no-op; after the region, rethrow() hands
// the exception to the caller, and pybind11 raises it in Python
// (std::bad_alloc becomes MemoryError).
//
// Worksharing constructs (`omp for`) stay outside run(): every thread of the
// team must reach them, or the others would wait at their barrier forever.
//
//     ParallelErrors errors("poisson");
//     #pragma omp parallel for
//     for (int r = 0; r < rows; ++r) errors.run([&] { ...row r... });
//     errors.rethrow();
#pragma once

#include <atomic>
#include <exception>
#include <mutex>
#include <new>
#include <string>

namespace diffranet {

namespace testing {

// Test hook: the name of the kernel whose parallel regions throw
// std::bad_alloc on entering run(), or "" for none. Set it only while no
// kernel is running (the tests do, through diffranet._core).
inline std::string& injected_failure() {
    static std::string kernel;
    return kernel;
}

}  // namespace testing

class ParallelErrors {
  public:
    // `kernel` names the kernel for the test hook (a string literal).
    explicit ParallelErrors(const char* kernel) : kernel_(kernel) {}

    ParallelErrors(const ParallelErrors&) = delete;
    ParallelErrors& operator=(const ParallelErrors&) = delete;

    // Runs body() unless some thread has failed already; never throws.
    template <typename Body>
    void run(Body&& body) noexcept {
        if (failed_.load(std::memory_order_relaxed)) return;
        try {
            const std::string& injected = testing::injected_failure();
            if (!injected.empty() && injected == kernel_) throw std::bad_alloc();
            body();
        } catch (...) {
            std::lock_guard<std::mutex> lock(mutex_);
            if (!first_) first_ = std::current_exception();
            failed_.store(true, std::memory_order_relaxed);
        }
    }

    // True once any thread's body has thrown.
    bool failed() const noexcept { return failed_.load(std::memory_order_relaxed); }

    // After the parallel region: throws the first exception caught, if any.
    void rethrow() const {
        if (first_) std::rethrow_exception(first_);
    }

  private:
    const char* kernel_;
    std::atomic<bool> failed_{false};
    std::mutex mutex_;
    std::exception_ptr first_;
};

}  // namespace diffranet
