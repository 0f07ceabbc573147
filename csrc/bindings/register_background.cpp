// Binding of the amorphous-background renderer and its cached samples: argument checks (checked.hpp,
// convert.hpp) and conversion only.
//
// python/diffranet/simulation/background.py validates every table and
// computes the number of illuminated molecules; this wrapper makes sure the
// tables are what the kernel interpolates (non-empty, finite, on a strictly
// increasing grid), copies them into the core's structs and calls C++ with
// the GIL released.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <string>
#include <vector>

#include "checked.hpp"
#include "convert.hpp"
#include "interruptible.hpp"
#include "diffranet/background.hpp"

namespace {

using namespace diffranet;

// Table `m` of the list `name`: a float64 array of shape (points,) (any length
// if points is kAnyLength, but at least one value) holding finite values >= 0.
std::vector<double> table(const py::handle& obj, const std::string& list, std::size_t m, py::ssize_t points) {
    const std::string name = list + "[" + std::to_string(m) + "]";
    const DoubleArray a = finite_array(obj, name.c_str(), {points});
    if (a.size() < 1) checked::fail(name + " must hold at least one value, got none");
    const double* values = a.data();
    for (py::ssize_t i = 0; i < a.size(); ++i) checked::nonnegative(values[i], name.c_str());
    return std::vector<double>(values, values + a.size());
}

AmorphousMaterial material(const py::handle& stol_obj, const py::handle& f_obj, const py::handle& incoherent_obj,
                           double molecules, std::size_t m) {
    std::vector<double> stol = table(stol_obj, "material_stol_per_A", m, checked::kAnyLength);
    for (std::size_t i = 1; i < stol.size(); ++i)
        if (!(stol[i] > stol[i - 1]))
            checked::fail("material_stol_per_A[" + std::to_string(m) + "] must be strictly increasing, got " +
                          std::to_string(stol[i - 1]) + " then " + std::to_string(stol[i]));
    const auto points = static_cast<py::ssize_t>(stol.size());
    return AmorphousMaterial(std::move(stol), table(f_obj, "material_F", m, points),
                             table(incoherent_obj, "material_incoherent", m, points),
                             checked::positive(molecules, "material_molecules"));
}

BackgroundSamples samples(std::int64_t rows, std::int64_t cols, double pixel_size_mm, const py::object& origin_mm,
                          const py::object& fast_axis, const py::object& slow_axis, const py::object& normal,
                          std::int64_t oversample, const py::object& source_directions,
                          const py::object& source_wavelengths_A, const py::object& source_weights, double fluence,
                          double polarization_fraction, const py::object& polarization_axis) {
    const DetectorGeometry det =
        make_detector(rows, cols, pixel_size_mm, origin_mm, fast_axis, slow_axis, normal, oversample);
    const BeamParams beam = make_beam(source_directions, source_wavelengths_A, source_weights, fluence,
                                      polarization_fraction, polarization_axis);
    py::gil_scoped_release release;
    return BackgroundSamples(det, beam, 0);
}

py::array_t<float, py::array::c_style> render(
    std::int64_t rows, std::int64_t cols, double pixel_size_mm, const py::object& origin_mm,
    const py::object& fast_axis, const py::object& slow_axis, const py::object& normal, std::int64_t oversample,
    const py::object& source_directions, const py::object& source_wavelengths_A, const py::object& source_weights,
    double fluence, double polarization_fraction, const py::object& polarization_axis,
    const std::vector<py::object>& material_stol_per_A, const std::vector<py::object>& material_F,
    const std::vector<py::object>& material_incoherent, const std::vector<double>& material_molecules,
    int n_threads, const BackgroundSamples* samples) {
    BackgroundProblem problem;
    problem.detector = make_detector(rows, cols, pixel_size_mm, origin_mm, fast_axis, slow_axis, normal, oversample);
    problem.beam = make_beam(source_directions, source_wavelengths_A, source_weights, fluence, polarization_fraction,
                             polarization_axis);
    const std::size_t n = material_molecules.size();
    if (material_stol_per_A.size() != n || material_F.size() != n || material_incoherent.size() != n)
        checked::fail("material_stol_per_A, material_F, material_incoherent and material_molecules must have one "
                      "entry per material, got lengths " + std::to_string(material_stol_per_A.size()) + ", " +
                      std::to_string(material_F.size()) + ", " + std::to_string(material_incoherent.size()) + ", " +
                      std::to_string(n));
    for (std::size_t m = 0; m < n; ++m)
        problem.materials.push_back(
            material(material_stol_per_A[m], material_F[m], material_incoherent[m], material_molecules[m], m));
    n_threads = checked::threads(n_threads);

    py::array_t<float, py::array::c_style> image({problem.detector.rows, problem.detector.cols});
    float* out = image.mutable_data();
    call_interruptible("render_background", [&](const RunControl* control) {
        diffranet::render_background(problem, out, n_threads, control, samples);
    });
    return image;
}

}  // namespace

void register_background(py::module_& m) {
    py::class_<BackgroundSamples>(m, "BackgroundSamples",
                                  "Per-subpixel weights and scattering angles of the background sum for one detector "
                                  "and beam geometry (the beam's wavelengths and fluence are not part of them).")
        .def(py::init(&samples), py::arg("rows"), py::arg("cols"), py::arg("pixel_size_mm"), py::arg("origin_mm"),
             py::arg("fast_axis"), py::arg("slow_axis"), py::arg("normal"), py::arg("oversample"),
             py::arg("source_directions"), py::arg("source_wavelengths_A"), py::arg("source_weights"),
             py::arg("fluence"), py::arg("polarization_fraction"), py::arg("polarization_axis"))
        .def_property_readonly("nbytes", [](const BackgroundSamples& self) { return self.nbytes(); },
                               "Bytes held.");
    m.def("render_background", &render, py::arg("rows"), py::arg("cols"), py::arg("pixel_size_mm"),
          py::arg("origin_mm"), py::arg("fast_axis"), py::arg("slow_axis"), py::arg("normal"),
          py::arg("oversample"), py::arg("source_directions"), py::arg("source_wavelengths_A"),
          py::arg("source_weights"), py::arg("fluence"), py::arg("polarization_fraction"),
          py::arg("polarization_axis"), py::arg("material_stol_per_A"), py::arg("material_F"),
          py::arg("material_incoherent"), py::arg("material_molecules"), py::arg("n_threads"),
          py::arg("samples") = py::none(),
          "Expected amorphous-background photons per pixel (float32 rows x cols). Tables: float64 1-D, finite, >= 0, "
          "stol strictly increasing; samples: BackgroundSamples of this detector and beam geometry, or None; "
          "a bad argument raises ValueError naming it.");
}
