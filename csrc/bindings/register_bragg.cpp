// Bindings of the Bragg renderers and mosaic-domain generator: argument checks
// (checked.hpp, convert.hpp) and conversion only.
//
// python/diffranet/simulation/simulator.py validates the user's parameters;
// this wrapper makes sure that every buffer the kernels read is exactly what
// they expect and every number is in range, then calls C++ with the GIL released.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "checked.hpp"
#include "convert.hpp"
#include "interruptible.hpp"
#include "diffranet/bragg.hpp"
#include "diffranet/detector.hpp"
#include "diffranet/mosaic.hpp"

namespace {

using namespace diffranet;

// Largest |h_min|, |k_min|, |l_min| and structure-factor table length per axis:
// keeps the table's index arithmetic (h - h_min) inside `int`.
constexpr std::int64_t kMaxTableIndex = std::int64_t{1} << 30;

// Smallest |det A| / (|a| |b| |c|) of the real-space basis: below it the cell
// is (nearly) flat and its reciprocal basis is not finite.
constexpr double kMinCellFlatness = 1e-9;

// The real-space basis (rows a, b, c in Angstrom): finite, of a cell with volume.
Mat3 real_basis(const py::handle& obj) {
    const Mat3 basis = to_mat3(finite_array(obj, "real_basis_A", {3, 3}).data());
    const Vec3 a{basis.m[0][0], basis.m[0][1], basis.m[0][2]};
    const Vec3 b{basis.m[1][0], basis.m[1][1], basis.m[1][2]};
    const Vec3 c{basis.m[2][0], basis.m[2][1], basis.m[2][2]};
    const double volume = std::abs(dot(a, cross(b, c)));
    if (!(volume > kMinCellFlatness * norm(a) * norm(b) * norm(c)))
        checked::fail("real_basis_A must span a cell with volume (a, b, c not coplanar), got volume " +
                      std::to_string(volume) + " A^3");
    return basis;
}

// The |F| table (float32, 3-D, finite values >= 0) and the (h, k, l) of its first entry.
StructureFactorTable structure_factors(const py::array_t<float, py::array::c_style>& table,
                                       const std::vector<std::int64_t>& hkl_min, double default_F) {
    if (hkl_min.size() != 3)
        checked::fail("sf_hkl_min must hold 3 indices (h, k, l), got " + std::to_string(hkl_min.size()));
    for (py::ssize_t axis = 0; axis < 3; ++axis) {
        if (table.shape(axis) > kMaxTableIndex)
            checked::fail("sf_table must have at most 2**30 entries per axis, got shape " +
                          checked::describe_shape(table));
        if (hkl_min[axis] < -kMaxTableIndex || hkl_min[axis] > kMaxTableIndex)
            checked::fail("sf_hkl_min must lie in [-2**30, 2**30], got " + std::to_string(hkl_min[axis]));
    }
    const float* values = checked::all_finite_nonnegative(table, "sf_table").data();
    return StructureFactorTable{table.size() > 0 ? values : nullptr,
                                static_cast<int>(hkl_min[0]),
                                static_cast<int>(hkl_min[1]),
                                static_cast<int>(hkl_min[2]),
                                static_cast<int>(table.shape(0)),
                                static_cast<int>(table.shape(1)),
                                static_cast<int>(table.shape(2)),
                                checked::nonnegative(default_F, "default_F")};
}

py::tuple render_bragg(std::int64_t rows, std::int64_t cols, double pixel_size_mm, const py::object& origin_mm,
                       const py::object& fast_axis, const py::object& slow_axis, const py::object& normal,
                       std::int64_t oversample, const py::object& source_directions,
                       const py::object& source_wavelengths_A, const py::object& source_weights, double fluence,
                       double polarization_fraction, const py::object& polarization_axis,
                       const py::object& real_basis_A, const py::object& ncells, int shape,
                       const py::object& domain_rotations, const py::object& sf_table,
                       const std::vector<std::int64_t>& sf_hkl_min, double default_F, const std::string& method,
                       int n_threads, const py::object& directions) {
    BraggProblem problem;
    problem.detector = make_detector(rows, cols, pixel_size_mm, origin_mm, fast_axis, slow_axis, normal, oversample);
    const DetectorGeometry& det = problem.detector;
    const auto direction_cache = checked::optional_array<double>(
        directions, "directions",
        {static_cast<py::ssize_t>(det.rows) * det.oversample, static_cast<py::ssize_t>(det.cols) * det.oversample, 3});
    if (direction_cache) problem.detector.directions = checked::all_finite(*direction_cache, "directions").data();
    problem.beam = make_beam(source_directions, source_wavelengths_A, source_weights, fluence, polarization_fraction,
                             polarization_axis);
    problem.crystal.real_basis_A = real_basis(real_basis_A);
    const Vec3 n = vector3(ncells, "ncells");
    problem.crystal.na = checked::positive(n.x, "ncells");
    problem.crystal.nb = checked::positive(n.y, "ncells");
    problem.crystal.nc = checked::positive(n.z, "ncells");
    if (shape < static_cast<int>(SpotShape::kSinc) || shape > static_cast<int>(SpotShape::kRound))
        checked::fail("shape: unknown spot shape " + std::to_string(shape));
    if (method != "pixel" && method != "reflection")
        checked::fail("method: expected 'pixel' or 'reflection', got '" + method + "'");
    if (method == "reflection" && !is_compact(static_cast<SpotShape>(shape)))
        checked::fail("method 'reflection' needs a compact spot shape (tophat or gauss)");
    problem.crystal.shape = static_cast<SpotShape>(shape);
    problem.crystal.domain_rotations = mat3_list(domain_rotations, "domain_rotations");
    const auto table = checked::array<float>(sf_table, "sf_table",
                                             {checked::kAnyLength, checked::kAnyLength, checked::kAnyLength});
    problem.structure_factors = structure_factors(table, sf_hkl_min, default_F);
    n_threads = checked::threads(n_threads);

    py::array_t<float, py::array::c_style> image({det.rows, det.cols});
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

DoubleArray directions(std::int64_t rows, std::int64_t cols, double pixel_size_mm, const py::object& origin_mm,
                       const py::object& fast_axis, const py::object& slow_axis, const py::object& normal,
                       std::int64_t oversample) {
    const DetectorGeometry det =
        make_detector(rows, cols, pixel_size_mm, origin_mm, fast_axis, slow_axis, normal, oversample);
    DoubleArray out({static_cast<py::ssize_t>(det.rows) * det.oversample,
                     static_cast<py::ssize_t>(det.cols) * det.oversample, py::ssize_t(3)});
    double* data = out.mutable_data();
    {
        py::gil_scoped_release release;
        fill_subpixel_directions(det, data, 0);
    }
    return out;
}

DoubleArray mosaic(std::int64_t n_domains, double spread_rad, int distribution, std::uint64_t seed) {
    if (n_domains < 1 || n_domains > INT32_MAX)
        checked::fail("n_domains must lie in [1, 2**31 - 1], got " + std::to_string(n_domains));
    checked::nonnegative(spread_rad, "spread_rad");
    if (distribution != static_cast<int>(MosaicDistribution::kTophat) &&
        distribution != static_cast<int>(MosaicDistribution::kGauss))
        checked::fail("distribution must be 0 (tophat) or 1 (gauss), got " + std::to_string(distribution));
    return from_mat3_list(mosaic_rotations(static_cast<int>(n_domains), spread_rad,
                                           static_cast<MosaicDistribution>(distribution), seed));
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
          "Expected Bragg photons per pixel (float32 rows x cols) and renderer statistics. Arrays: float64 "
          "C-contiguous (sf_table float32), never cast; a bad argument raises ValueError naming it.");
    m.def("subpixel_directions", &directions, py::arg("rows"), py::arg("cols"), py::arg("pixel_size_mm"),
          py::arg("origin_mm"), py::arg("fast_axis"), py::arg("slow_axis"), py::arg("normal"), py::arg("oversample"),
          "Unit vectors from the sample to every subpixel centre, shape (rows*n, cols*n, 3).");
    m.def("mosaic_rotations", &mosaic, py::arg("n_domains"), py::arg("spread_rad"), py::arg("distribution"),
          py::arg("seed"), "Lab-frame rotation matrices (n, 3, 3) of the mosaic domains (distribution: 0 tophat, 1 gauss).");
}
