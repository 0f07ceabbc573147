// Binding of the amorphous-background renderer: array conversion only.
//
// python/diffranet/background.py validates every table and computes the
// number of illuminated molecules; this wrapper copies the tables into the
// core's structs and calls C++ with the GIL released.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <stdexcept>
#include <vector>

#include "convert.hpp"
#include "interruptible.hpp"
#include "diffranet/background.hpp"

namespace {

using namespace diffranet;

std::vector<double> to_vector(const DoubleArray& a) { return std::vector<double>(a.data(), a.data() + a.size()); }

FloatArray render(int rows, int cols, double pixel_size_mm, const DoubleArray& origin_mm, const DoubleArray& fast_axis,
                  const DoubleArray& slow_axis, const DoubleArray& normal, int oversample,
                  const DoubleArray& source_directions, const DoubleArray& source_wavelengths_A,
                  const DoubleArray& source_weights, double fluence, double polarization_fraction,
                  const DoubleArray& polarization_axis, const std::vector<DoubleArray>& material_stol_per_A,
                  const std::vector<DoubleArray>& material_F, const std::vector<DoubleArray>& material_incoherent,
                  const std::vector<double>& material_molecules, int n_threads) {
    BackgroundProblem problem;
    problem.detector = make_detector(rows, cols, pixel_size_mm, origin_mm, fast_axis, slow_axis, normal, oversample);
    problem.beam = make_beam(source_directions, source_wavelengths_A, source_weights, fluence, polarization_fraction,
                             polarization_axis);
    const std::size_t n = material_molecules.size();
    if (material_stol_per_A.size() != n || material_F.size() != n || material_incoherent.size() != n)
        throw std::invalid_argument("material_* lists must have one entry per material");
    for (std::size_t m = 0; m < n; ++m) {
        const py::ssize_t points = material_stol_per_A[m].size();
        require_size(material_F[m], points, "material_F");
        require_size(material_incoherent[m], points, "material_incoherent");
        problem.materials.emplace_back(to_vector(material_stol_per_A[m]), to_vector(material_F[m]),
                                       to_vector(material_incoherent[m]), material_molecules[m]);
    }

    FloatArray image({rows, cols});
    float* out = image.mutable_data();
    call_interruptible("render_background", [&](const RunControl* control) {
        diffranet::render_background(problem, out, n_threads, control);
    });
    return image;
}

}  // namespace

void register_background(py::module_& m) {
    m.def("render_background", &render, py::arg("rows"), py::arg("cols"), py::arg("pixel_size_mm"),
          py::arg("origin_mm"), py::arg("fast_axis"), py::arg("slow_axis"), py::arg("normal"),
          py::arg("oversample"), py::arg("source_directions"), py::arg("source_wavelengths_A"),
          py::arg("source_weights"), py::arg("fluence"), py::arg("polarization_fraction"),
          py::arg("polarization_axis"), py::arg("material_stol_per_A"), py::arg("material_F"),
          py::arg("material_incoherent"), py::arg("material_molecules"), py::arg("n_threads"),
          "Expected amorphous-background photons per pixel (float32 rows x cols); no validation.");
}
