// Test hooks of the compiled core (private: for the test suite only).
#include <pybind11/pybind11.h>

#include <string>

#include "diffranet/parallel.hpp"

namespace py = pybind11;

void register_testing(py::module_& m) {
    m.def(
        "_inject_failure",
        [](const std::string& kernel) { diffranet::set_injected_failure(kernel.c_str()); },
        py::arg("kernel"),
        "Testing only: every parallel task of `kernel` (e.g. 'poisson', 'bragg_reflection', 'background') throws "
        "std::bad_alloc until called again with ''.");
}
