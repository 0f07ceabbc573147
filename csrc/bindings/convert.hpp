// Array <-> struct conversions shared by the register_*.cpp files.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "diffranet/params.hpp"
#include "diffranet/vec3.hpp"

namespace py = pybind11;

using DoubleArray = py::array_t<double, py::array::c_style | py::array::forcecast>;
using FloatArray = py::array_t<float, py::array::c_style | py::array::forcecast>;

inline void require_size(const DoubleArray& a, py::ssize_t size, const char* name) {
    if (a.size() != size)
        throw std::invalid_argument(std::string(name) + ": expected " + std::to_string(size) +
                                    " values, got " + std::to_string(a.size()));
}

inline diffranet::Vec3 to_vec3(const DoubleArray& a, const char* name) {
    require_size(a, 3, name);
    const double* p = a.data();
    return {p[0], p[1], p[2]};
}

inline diffranet::Mat3 to_mat3(const double* p) {
    diffranet::Mat3 m;
    for (int i = 0; i < 3; ++i)
        for (int j = 0; j < 3; ++j) m.m[i][j] = p[3 * i + j];
    return m;
}

inline std::vector<diffranet::Mat3> to_mat3_list(const DoubleArray& a, const char* name) {
    if (a.ndim() != 3 || a.shape(1) != 3 || a.shape(2) != 3)
        throw std::invalid_argument(std::string(name) + ": expected shape (n, 3, 3)");
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

// The detector and beam arguments shared by the renderers' bindings, in the
// order the Python layer passes them (see diffranet._core_args).
inline diffranet::DetectorGeometry make_detector(int rows, int cols, double pixel_size_mm,
                                                 const DoubleArray& origin_mm, const DoubleArray& fast_axis,
                                                 const DoubleArray& slow_axis, const DoubleArray& normal,
                                                 int oversample) {
    diffranet::DetectorGeometry det;
    det.rows = rows;
    det.cols = cols;
    det.pixel_size_mm = pixel_size_mm;
    det.origin_mm = to_vec3(origin_mm, "origin_mm");
    det.fast_axis = to_vec3(fast_axis, "fast_axis");
    det.slow_axis = to_vec3(slow_axis, "slow_axis");
    det.normal = to_vec3(normal, "normal");
    det.oversample = oversample;
    return det;
}

inline diffranet::BeamParams make_beam(const DoubleArray& directions, const DoubleArray& wavelengths_A,
                                       const DoubleArray& weights, double fluence, double polarization_fraction,
                                       const DoubleArray& polarization_axis) {
    diffranet::BeamParams beam;
    const py::ssize_t n = wavelengths_A.size();
    require_size(directions, 3 * n, "source_directions");
    require_size(weights, n, "source_weights");
    for (py::ssize_t i = 0; i < n; ++i) {
        const double* d = directions.data() + 3 * i;
        beam.sources.push_back(diffranet::Source{{d[0], d[1], d[2]}, wavelengths_A.data()[i], weights.data()[i]});
    }
    beam.fluence_photons_per_m2 = fluence;
    beam.polarization_fraction = polarization_fraction;
    beam.polarization_axis = to_vec3(polarization_axis, "polarization_axis");
    return beam;
}
