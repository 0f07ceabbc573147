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
#include <cstring>
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

// Inputs read by every render but made once per structure or detector: the
// |F| table (~10^7 values) and the subpixel direction grid (~3 x 10^6). A scan
// of both costs ~10 ms, a sixth of a whole render, so they are checked once,
// when made, and handed to render_bragg as these read-only objects.

// The |F| table (float32, 3-D, finite values >= 0), copied when made (later
// changes to the caller's array cannot reach it), with the (h, k, l) of its
// first entry and the amplitude of reflections outside it.
class CheckedStructureFactors {
  public:
    CheckedStructureFactors(const py::object& table_obj, const std::vector<std::int64_t>& hkl_min, double default_F) {
        const auto table = checked::array<float>(table_obj, "sf_table",
                                                 {checked::kAnyLength, checked::kAnyLength, checked::kAnyLength});
        if (hkl_min.size() != 3)
            checked::fail("sf_hkl_min must hold 3 indices (h, k, l), got " + std::to_string(hkl_min.size()));
        for (py::ssize_t axis = 0; axis < 3; ++axis) {
            if (table.shape(axis) > kMaxTableIndex)
                checked::fail("sf_table must have at most 2**30 entries per axis, got shape " +
                              checked::describe_shape(table));
            if (hkl_min[axis] < -kMaxTableIndex || hkl_min[axis] > kMaxTableIndex)
                checked::fail("sf_hkl_min must lie in [-2**30, 2**30], got " + std::to_string(hkl_min[axis]));
        }
        checked::all_finite_nonnegative(table, "sf_table");
        values_ = py::array_t<float, py::array::c_style>({table.shape(0), table.shape(1), table.shape(2)});
        if (table.size() > 0) std::memcpy(values_.mutable_data(), table.data(), sizeof(float) * table.size());
        view_ = StructureFactorTable{table.size() > 0 ? values_.data() : nullptr,
                                     static_cast<int>(hkl_min[0]),
                                     static_cast<int>(hkl_min[1]),
                                     static_cast<int>(hkl_min[2]),
                                     static_cast<int>(table.shape(0)),
                                     static_cast<int>(table.shape(1)),
                                     static_cast<int>(table.shape(2)),
                                     checked::nonnegative(default_F, "default_F")};
    }
    const StructureFactorTable& view() const { return view_; }

  private:
    py::array_t<float, py::array::c_style> values_;
    StructureFactorTable view_{};
};

// Unit vectors from the sample to every subpixel centre of one detector
// geometry, computed when made; render_bragg reads them only for that geometry.
class DirectionGrid {
  public:
    explicit DirectionGrid(const DetectorGeometry& det)
        : det_(det),
          values_({static_cast<py::ssize_t>(det.rows) * det.oversample,
                   static_cast<py::ssize_t>(det.cols) * det.oversample, py::ssize_t(3)}) {
        double* data = values_.mutable_data();
        py::gil_scoped_release release;
        fill_subpixel_directions(det_, data, 0);
    }
    // Exactly the geometry the grid was computed for (no tolerance: any
    // change moves the subpixel centres).
    bool matches(const DetectorGeometry& det) const { return same_geometry(det, det_); }
    const double* data() const { return values_.data(); }
    // A read-only view (rows*n, cols*n, 3) that keeps the grid alive.
    py::array view(const py::object& self) const {
        py::array out(values_.dtype(), std::vector<py::ssize_t>(values_.shape(), values_.shape() + 3),
                      std::vector<py::ssize_t>(values_.strides(), values_.strides() + 3), values_.data(), self);
        py::detail::array_proxy(out.ptr())->flags &= ~py::detail::npy_api::NPY_ARRAY_WRITEABLE_;
        return out;
    }

  private:
    DetectorGeometry det_;
    DoubleArray values_;
};

py::tuple render_bragg(std::int64_t rows, std::int64_t cols, double pixel_size_mm, const py::object& origin_mm,
                       const py::object& fast_axis, const py::object& slow_axis, const py::object& normal,
                       std::int64_t oversample, const py::object& source_directions,
                       const py::object& source_wavelengths_A, const py::object& source_weights, double fluence,
                       double polarization_fraction, const py::object& polarization_axis,
                       const py::object& real_basis_A, const py::object& ncells, int shape,
                       const py::object& domain_rotations, const CheckedStructureFactors& structure_factors,
                       const std::string& method, int n_threads, const DirectionGrid* directions) {
    BraggProblem problem;
    problem.detector = make_detector(rows, cols, pixel_size_mm, origin_mm, fast_axis, slow_axis, normal, oversample);
    const DetectorGeometry& det = problem.detector;
    if (directions != nullptr) {
        if (!directions->matches(det))
            checked::fail("directions: the grid was computed for another detector geometry or oversample");
        problem.detector.directions = directions->data();
    }
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
    problem.structure_factors = structure_factors.view();
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

DirectionGrid direction_grid(std::int64_t rows, std::int64_t cols, double pixel_size_mm, const py::object& origin_mm,
                             const py::object& fast_axis, const py::object& slow_axis, const py::object& normal,
                             std::int64_t oversample) {
    return DirectionGrid(make_detector(rows, cols, pixel_size_mm, origin_mm, fast_axis, slow_axis, normal, oversample));
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
          py::arg("structure_factors"), py::arg("method"), py::arg("n_threads"), py::arg("directions") = py::none(),
          "Expected Bragg photons per pixel (float32 rows x cols) and renderer statistics. Arrays: float64 "
          "C-contiguous, never cast; a bad argument raises ValueError naming it.");
    py::class_<CheckedStructureFactors>(m, "StructureFactorTable",
                                        "|F| table (float32, 3-D, finite, >= 0) checked and copied once, for render_bragg.")
        .def(py::init<const py::object&, const std::vector<std::int64_t>&, double>(), py::arg("sf_table"),
             py::arg("sf_hkl_min"), py::arg("default_F"));
    py::class_<DirectionGrid>(m, "DirectionGrid",
                              "Unit vectors from the sample to every subpixel centre of one detector geometry.")
        .def(py::init(&direction_grid), py::arg("rows"), py::arg("cols"), py::arg("pixel_size_mm"),
             py::arg("origin_mm"), py::arg("fast_axis"), py::arg("slow_axis"), py::arg("normal"),
             py::arg("oversample"))
        .def_property_readonly(
            "values", [](const py::object& self) { return self.cast<const DirectionGrid&>().view(self); },
            "Read-only array (rows*n, cols*n, 3).");
    m.def("mosaic_rotations", &mosaic, py::arg("n_domains"), py::arg("spread_rad"), py::arg("distribution"),
          py::arg("seed"), "Lab-frame rotation matrices (n, 3, 3) of the mosaic domains (distribution: 0 tophat, 1 gauss).");
}
