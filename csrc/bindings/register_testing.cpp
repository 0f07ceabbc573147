// Test hooks of the compiled core (private: for the test suite only).
#include <pybind11/pybind11.h>

#include <string>

#include "diffranet/parallel_errors.hpp"

namespace py = pybind11;

void register_testing(py::module_& m) {
    m.def(
        "_inject_failure",
        [](const std::string& kernel) { diffranet::testing::injected_failure() = kernel; },
        py::arg("kernel"),
        "Make the parallel regions of `kernel` (a kernel name, \"\" for none) throw std::bad_alloc; for tests.");
}
