// Array <-> struct conversions shared by the register_*.cpp files.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <stdexcept>
#include <string>
#include <vector>

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
