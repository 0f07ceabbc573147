// The detector and beam arguments the Bragg and background renderers share,
// checked with checked.hpp and converted into the core's structs.
//
// The renderers check nothing and count subpixels in `int`, so every array
// must have exactly the dtype and shape the core reads (nothing is cast),
// every number must be finite and in range, every direction a unit vector,
// and the subpixel grid must stay well inside `int`. A failed check raises
// ValueError naming the argument.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include "checked.hpp"
#include "diffranet/params.hpp"
#include "diffranet/vec3.hpp"

namespace py = pybind11;

using DoubleArray = py::array_t<double, py::array::c_style>;

// Most subpixels along one side of the detector: keeps the renderers' band and
// index arithmetic (sums of a few subpixel counts) inside `int`.
constexpr std::int64_t kMaxSubpixelsPerSide = std::int64_t{1} << 30;

// Largest | |v| - 1 | of a vector the core takes as a unit vector.
constexpr double kUnitTolerance = 1e-6;

// `obj` as a float64 array of the given shape holding finite values.
inline DoubleArray finite_array(const py::handle& obj, const char* name, std::initializer_list<py::ssize_t> shape) {
    return checked::all_finite(checked::array<double>(obj, name, shape), name);
}

inline diffranet::Vec3 to_vec3(const double* p) { return {p[0], p[1], p[2]}; }

// `obj` as a finite float64 array of shape (3,).
inline diffranet::Vec3 vector3(const py::handle& obj, const char* name) {
    return to_vec3(finite_array(obj, name, {3}).data());
}

// `v`, which must have length 1 (to within kUnitTolerance).
inline diffranet::Vec3 unit_vector(const diffranet::Vec3& v, const std::string& name) {
    const double length = diffranet::norm(v);
    if (!(std::abs(length - 1.0) <= kUnitTolerance))
        checked::fail(name + " must be a unit vector, got length " + std::to_string(length));
    return v;
}

inline diffranet::Mat3 to_mat3(const double* p) {
    diffranet::Mat3 m;
    for (int i = 0; i < 3; ++i)
        for (int j = 0; j < 3; ++j) m.m[i][j] = p[3 * i + j];
    return m;
}

// `obj` as n >= 1 matrices: a finite float64 array of shape (n, 3, 3).
inline std::vector<diffranet::Mat3> mat3_list(const py::handle& obj, const char* name) {
    const DoubleArray a = finite_array(obj, name, {checked::kAnyLength, 3, 3});
    if (a.shape(0) < 1) checked::fail(std::string(name) + " must hold at least one matrix, got shape (0, 3, 3)");
    std::vector<diffranet::Mat3> out;
    for (py::ssize_t i = 0; i < a.shape(0); ++i) out.push_back(to_mat3(a.data() + 9 * i));
    return out;
}

inline DoubleArray from_mat3_list(const std::vector<diffranet::Mat3>& mats) {
    DoubleArray out({static_cast<py::ssize_t>(mats.size()), py::ssize_t(3), py::ssize_t(3)});
    double* p = out.mutable_data();
    for (size_t n = 0; n < mats.size(); ++n)
        for (int i = 0; i < 3; ++i)
            for (int j = 0; j < 3; ++j) p[9 * n + 3 * i + j] = mats[n].m[i][j];
    return out;
}

// The detector arguments, in the order the Python layer passes them (see
// diffranet.simulation._core_args): rows x cols pixels, each split into
// oversample x oversample subpixels.
inline diffranet::DetectorGeometry make_detector(std::int64_t rows, std::int64_t cols, double pixel_size_mm,
                                                 const py::handle& origin_mm, const py::handle& fast_axis,
                                                 const py::handle& slow_axis, const py::handle& normal,
                                                 std::int64_t oversample) {
    diffranet::DetectorGeometry det;
    det.rows = checked::side(rows, "rows");
    det.cols = checked::side(cols, "cols");
    const std::int64_t max_oversample = kMaxSubpixelsPerSide / std::max(rows, cols);
    if (oversample < 1 || oversample > max_oversample)
        checked::fail("oversample must lie in [1, 2**30 // max(rows, cols)] = [1, " + std::to_string(max_oversample) +
                      "], got " + std::to_string(oversample));
    det.oversample = static_cast<int>(oversample);
    det.pixel_size_mm = checked::positive(pixel_size_mm, "pixel_size_mm");
    det.origin_mm = vector3(origin_mm, "origin_mm");
    det.fast_axis = unit_vector(vector3(fast_axis, "fast_axis"), "fast_axis");
    det.slow_axis = unit_vector(vector3(slow_axis, "slow_axis"), "slow_axis");
    det.normal = unit_vector(vector3(normal, "normal"), "normal");
    return det;
}

// The beam arguments, in the order the Python layer passes them: n >= 1
// sources with unit directions (n, 3), wavelengths (n,) > 0 and weights
// (n,) >= 0; fluence >= 0, polarization_fraction in [0, 1] and a unit
// polarization_axis.
inline diffranet::BeamParams make_beam(const py::handle& directions_obj, const py::handle& wavelengths_obj,
                                       const py::handle& weights_obj, double fluence, double polarization_fraction,
                                       const py::handle& polarization_axis) {
    const DoubleArray wavelengths = finite_array(wavelengths_obj, "source_wavelengths_A", {checked::kAnyLength});
    const py::ssize_t n = wavelengths.shape(0);
    if (n < 1) checked::fail("source_wavelengths_A must hold at least one source, got none");
    const DoubleArray directions = finite_array(directions_obj, "source_directions", {n, 3});
    const DoubleArray weights = finite_array(weights_obj, "source_weights", {n});
    diffranet::BeamParams beam;
    for (py::ssize_t i = 0; i < n; ++i) {
        const diffranet::Vec3 direction =
            unit_vector(to_vec3(directions.data() + 3 * i), "source_directions[" + std::to_string(i) + "]");
        beam.sources.push_back(diffranet::Source{direction,
                                                 checked::positive(wavelengths.data()[i], "source_wavelengths_A"),
                                                 checked::nonnegative(weights.data()[i], "source_weights")});
    }
    beam.fluence_photons_per_m2 = checked::nonnegative(fluence, "fluence");
    if (!(checked::nonnegative(polarization_fraction, "polarization_fraction") <= 1.0))
        checked::fail("polarization_fraction must lie in [0, 1], got " + std::to_string(polarization_fraction));
    beam.polarization_fraction = polarization_fraction;
    beam.polarization_axis = unit_vector(vector3(polarization_axis, "polarization_axis"), "polarization_axis");
    return beam;
}
