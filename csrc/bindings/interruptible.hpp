// Calling a long-running kernel from Python: the GIL is released while it
// runs, Ctrl-C (or any signal handler that raises) stops it within about
// 0.1 s, and errors raised in its worker threads arrive as Python exceptions.
#pragma once

#include <pybind11/pybind11.h>

#include <new>
#include <string>

#include "diffranet/parallel.hpp"

namespace py = pybind11;

// Runs kernel(const RunControl*) without the GIL. The calling thread re-takes
// the GIL every poll interval to run Python's signal handlers: if one raises
// (KeyboardInterrupt), the kernel stops and that exception is raised here.
// std::bad_alloc becomes a MemoryError naming `what`.
template <class Kernel>
auto call_interruptible(const char* what, Kernel&& kernel) -> decltype(kernel(nullptr)) {
    diffranet::RunControl control;
    control.should_stop = [] {
        py::gil_scoped_acquire gil;
        return PyErr_CheckSignals() != 0;
    };
    try {
        py::gil_scoped_release release;
        return kernel(&control);
    } catch (const diffranet::Cancelled&) {
        if (PyErr_Occurred()) throw py::error_already_set();
        throw;
    } catch (const std::bad_alloc&) {
        PyErr_SetString(PyExc_MemoryError,
                        (std::string(what) + ": out of memory while rendering (std::bad_alloc); "
                                             "use a smaller detector, oversample or number of domains")
                            .c_str());
        throw py::error_already_set();
    }
}
