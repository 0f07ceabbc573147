// Bindings of the Bragg renderers and mosaic-domain generator.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <optional>
#include <stdexcept>
#include <string>

#include "convert.hpp"
#include "interruptible.hpp"
#include "diffranet/bragg.hpp"
#include "diffranet/detector.hpp"
#include "diffranet/mosaic.hpp"

namespace {

using namespace diffranet;

py::tuple render_bragg(int rows, int cols, double pixel_size_mm, const DoubleArray& origin_mm,
                       const DoubleArray& fast_axis, const DoubleArray& slow_axis, const DoubleArray& normal,
                       int oversample, const DoubleArray& source_directions, const DoubleArray& source_wavelengths_A,
                       const DoubleArray& source_weights, double fluence, double polarization_fraction,
                       const DoubleArray& polarization_axis, const DoubleArray& real_basis_A,
                       const DoubleArray& ncells, int shape, const DoubleArray& domain_rotations,
                       const FloatArray& sf_table, const std::vector<int>& sf_hkl_min, double default_F,
                       const std::string& method, int n_threads, const std::optional<DoubleArray>& directions) {
    BraggProblem problem;
    problem.detector = make_detector(rows, cols, pixel_size_mm, origin_mm, fast_axis, slow_axis, normal, oversample);
    if (directions) {
        require_size(*directions, 3LL * rows * oversample * cols * oversample, "directions");
        problem.detector.directions = directions->data();
    }
    problem.beam = make_beam(source_directions, source_wavelengths_A, source_weights, fluence, polarization_fraction,
                             polarization_axis);
    require_size(real_basis_A, 9, "real_basis_A");
    problem.crystal.real_basis_A = to_mat3(real_basis_A.data());
    const Vec3 n = to_vec3(ncells, "ncells");
    problem.crystal.na = n.x;
    problem.crystal.nb = n.y;
    problem.crystal.nc = n.z;
    if (shape < static_cast<int>(SpotShape::kSinc) || shape > static_cast<int>(SpotShape::kRound))
        throw std::invalid_argument("shape: unknown spot shape " + std::to_string(shape));
    if (method != "pixel" && method != "reflection")
        throw std::invalid_argument("method: expected 'pixel' or 'reflection', got '" + method + "'");
    if (method == "reflection" && !is_compact(static_cast<SpotShape>(shape)))
        throw std::invalid_argument("method 'reflection' needs a compact spot shape (tophat or gauss)");
    problem.crystal.shape = static_cast<SpotShape>(shape);
    problem.crystal.domain_rotations = to_mat3_list(domain_rotations, "domain_rotations");
    if (sf_table.ndim() != 3 || sf_hkl_min.size() != 3)
        throw std::invalid_argument("sf_table must be 3-D and sf_hkl_min hold 3 indices");
    problem.structure_factors = StructureFactorTable{
        sf_table.size() > 0 ? sf_table.data() : nullptr, sf_hkl_min[0], sf_hkl_min[1], sf_hkl_min[2],
        static_cast<int>(sf_table.shape(0)), static_cast<int>(sf_table.shape(1)), static_cast<int>(sf_table.shape(2)),
        default_F};

    FloatArray image({rows, cols});
    float* out = image.mutable_data();
    const ReflectionStats stats = call_interruptible("render_bragg", [&](const RunControl* control) {
        if (method == "pixel") {
            render_bragg_pixelwise(problem, out, n_threads, control);
            return ReflectionStats{};
        }
        return render_bragg_reflectionwise(problem, out, n_threads, control);
    });
    py::dict info;
    info["spots"] = stats.spots;
    info["subpixels_tested"] = stats.subpixels_tested;
    return py::make_tuple(image, info);
}

DoubleArray directions(int rows, int cols, double pixel_size_mm, const DoubleArray& origin_mm,
                       const DoubleArray& fast_axis, const DoubleArray& slow_axis, const DoubleArray& normal,
                       int oversample) {
    const DetectorGeometry det =
        make_detector(rows, cols, pixel_size_mm, origin_mm, fast_axis, slow_axis, normal, oversample);
    DoubleArray out({static_cast<py::ssize_t>(rows) * oversample, static_cast<py::ssize_t>(cols) * oversample,
                     py::ssize_t(3)});
    double* data = out.mutable_data();
    {
        py::gil_scoped_release release;
        fill_subpixel_directions(det, data, 0);
    }
    return out;
}

DoubleArray mosaic(int n_domains, double spread_rad, int distribution, std::uint64_t seed) {
    return from_mat3_list(mosaic_rotations(n_domains, spread_rad, static_cast<MosaicDistribution>(distribution), seed));
}

}  // namespace

void register_bragg(py::module_& m) {
    m.def("render_bragg", &render_bragg, py::arg("rows"), py::arg("cols"), py::arg("pixel_size_mm"),
          py::arg("origin_mm"), py::arg("fast_axis"), py::arg("slow_axis"), py::arg("normal"), py::arg("oversample"),
          py::arg("source_directions"), py::arg("source_wavelengths_A"), py::arg("source_weights"),
          py::arg("fluence"), py::arg("polarization_fraction"), py::arg("polarization_axis"),
          py::arg("real_basis_A"), py::arg("ncells"), py::arg("shape"), py::arg("domain_rotations"),
          py::arg("sf_table"), py::arg("sf_hkl_min"), py::arg("default_F"), py::arg("method"),
          py::arg("n_threads"), py::arg("directions") = py::none(),
          "Expected Bragg photons per pixel (float32 rows x cols) and renderer statistics.");
    m.def("subpixel_directions", &directions, py::arg("rows"), py::arg("cols"), py::arg("pixel_size_mm"),
          py::arg("origin_mm"), py::arg("fast_axis"), py::arg("slow_axis"), py::arg("normal"), py::arg("oversample"),
          "Unit vectors from the sample to every subpixel centre, shape (rows*n, cols*n, 3).");
    m.def("mosaic_rotations", &mosaic, py::arg("n_domains"), py::arg("spread_rad"), py::arg("distribution"),
          py::arg("seed"), "Lab-frame rotation matrices (n, 3, 3) of the mosaic domains.");
}
