#include "diffranet/parallel.hpp"

#include <mutex>
#include <string>

namespace diffranet {

namespace {
std::mutex injected_mutex;
std::string injected_kernel;
}  // namespace

void set_injected_failure(const char* kernel) {
    std::lock_guard<std::mutex> lock(injected_mutex);
    injected_kernel = kernel;
}

bool injected_failure(const char* kernel) {
    std::lock_guard<std::mutex> lock(injected_mutex);
    return !injected_kernel.empty() && injected_kernel == kernel;
}

}  // namespace diffranet
