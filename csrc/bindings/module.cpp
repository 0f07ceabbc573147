// The compiled core, diffranet._core: registration only. Each register_*.cpp
// converts arrays to the core's structs, releases the GIL and calls C++.
#include <pybind11/pybind11.h>

namespace py = pybind11;

void register_background(py::module_& m);
void register_bragg(py::module_& m);
void register_frame_path(py::module_& m);
void register_lookup(py::module_& m);
void register_order_statistics(py::module_& m);
void register_peakfinder(py::module_& m);
void register_response(py::module_& m);
void register_significance(py::module_& m);
void register_testing(py::module_& m);
void register_texture(py::module_& m);

PYBIND11_MODULE(_core, m) {
    m.doc() = "diffranet compiled core (private: use the diffranet package)";
    register_background(m);
    register_bragg(m);
    register_frame_path(m);
    register_lookup(m);
    register_order_statistics(m);
    register_peakfinder(m);
    register_response(m);
    register_significance(m);
    register_testing(m);
    register_texture(m);
}
