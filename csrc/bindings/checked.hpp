// Argument checks for the bindings whose kernels read and write raw buffers.
//
// The kernels check nothing, so before a binding releases the GIL it makes
// sure that every array has exactly the dtype, memory layout and shape the
// kernel will read or write, and that every size, count and enum value is in
// range. Nothing is converted or copied silently: an input of the wrong dtype
// is refused rather than cast, and an output buffer is written exactly where
// the caller handed it over. A failed check throws std::invalid_argument,
// which pybind11 raises as ValueError naming the argument.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <stdexcept>
#include <limits>
#include <string>

namespace py = pybind11;

namespace checked {

// Matches any length along an axis.
constexpr py::ssize_t kAnyLength = -1;

// Most OpenMP threads a binding accepts (0 = the OpenMP default).
constexpr int kMaxThreads = 1024;

[[noreturn]] inline void fail(const std::string& message) { throw std::invalid_argument(message); }

inline std::string describe_shape(const py::array& a) {
    std::string text = "(";
    for (py::ssize_t i = 0; i < a.ndim(); ++i) text += (i ? ", " : "") + std::to_string(a.shape(i));
    return text + (a.ndim() == 1 ? ",)" : ")");
}

// `obj` as a C-contiguous, aligned array of T with the given number of axes
// and the given length along each axis that is not kAnyLength; `writable`
// for an output the kernel fills.
template <typename T>
py::array_t<T, py::array::c_style> array(const py::handle& obj, const char* name,
                                         std::initializer_list<py::ssize_t> shape, bool writable = false) {
    const std::string what(name);
    if (!py::isinstance<py::array>(obj))
        fail(what + " must be a numpy array, got " + py::str(py::type::handle_of(obj).attr("__name__")).cast<std::string>());
    const auto a = py::reinterpret_borrow<py::array>(obj);
    const py::dtype expected = py::dtype::of<T>();
    if (!a.dtype().equal(expected))
        fail(what + " must have dtype " + py::str(expected).cast<std::string>() + ", got " +
             py::str(a.dtype()).cast<std::string>());
    if (a.ndim() != static_cast<py::ssize_t>(shape.size()))
        fail(what + " must have " + std::to_string(shape.size()) + " dimensions, got shape " + describe_shape(a));
    py::ssize_t axis = 0;
    for (const py::ssize_t length : shape) {
        if (length != kAnyLength && a.shape(axis) != length)
            fail(what + ": expected length " + std::to_string(length) + " along axis " + std::to_string(axis) +
                 ", got shape " + describe_shape(a));
        ++axis;
    }
    const int layout = py::detail::npy_api::NPY_ARRAY_C_CONTIGUOUS_ | py::detail::npy_api::NPY_ARRAY_ALIGNED_;
    if ((a.flags() & layout) != layout) fail(what + " must be a C-contiguous, aligned array");
    if (writable && !a.writeable()) fail(what + " must be writeable: the result is written into it");
    return py::reinterpret_borrow<py::array_t<T, py::array::c_style>>(a);
}

// `obj` as an optional array: std::nullopt for None.
template <typename T>
std::optional<py::array_t<T, py::array::c_style>> optional_array(const py::handle& obj, const char* name,
                                                                 std::initializer_list<py::ssize_t> shape) {
    if (obj.is_none()) return std::nullopt;
    return array<T>(obj, name, shape);
}

// An image side length (rows or columns): 1 .. 2^31 - 1.
inline int side(std::int64_t n, const char* name) {
    if (n < 1 || n > INT32_MAX) fail(std::string(name) + " must lie in [1, 2**31 - 1], got " + std::to_string(n));
    return static_cast<int>(n);
}

// A thread count: 0 (the OpenMP default) to kMaxThreads.
inline int threads(int n) {
    if (n < 0 || n > kMaxThreads)
        fail("n_threads must lie in [0, " + std::to_string(kMaxThreads) + "] (0: all), got " + std::to_string(n));
    return n;
}

// A real number that must be finite.
inline double finite(double value, const char* name) {
    if (!std::isfinite(value)) fail(std::string(name) + " must be finite, got " + std::to_string(value));
    return value;
}

// A real number that must be finite and >= 0.
inline double nonnegative(double value, const char* name) {
    if (!(finite(value, name) >= 0.0)) fail(std::string(name) + " must be >= 0, got " + std::to_string(value));
    return value;
}

// A real number that must be finite and > 0.
inline double positive(double value, const char* name) {
    if (!(finite(value, name) > 0.0)) fail(std::string(name) + " must be > 0, got " + std::to_string(value));
    return value;
}

// Whether every value lies in [lo, hi] (NaN never does). Branch-free so that the
// compiler vectorises it: the tables checked on every render hold tens of MB.
template <typename T>
bool all_within(const T* values, py::ssize_t n, T lo, T hi) {
    py::ssize_t outside = 0;
    for (py::ssize_t i = 0; i < n; ++i) outside += !(values[i] >= lo && values[i] <= hi);
    return outside == 0;
}

// The first value outside [lo, hi], for the error message.
template <typename T>
T first_outside(const T* values, py::ssize_t n, T lo, T hi) {
    for (py::ssize_t i = 0; i < n; ++i)
        if (!(values[i] >= lo && values[i] <= hi)) return values[i];
    return lo;
}

// An array whose values must all be finite.
template <typename T>
const py::array_t<T, py::array::c_style>& all_finite(const py::array_t<T, py::array::c_style>& a, const char* name) {
    const T big = std::numeric_limits<T>::max();
    if (!all_within(a.data(), a.size(), -big, big))
        fail(std::string(name) + " must hold finite values, got " + std::to_string(first_outside(a.data(), a.size(), -big, big)));
    return a;
}

// An array whose values must all be finite and >= 0.
template <typename T>
const py::array_t<T, py::array::c_style>& all_finite_nonnegative(const py::array_t<T, py::array::c_style>& a,
                                                                 const char* name) {
    const T big = std::numeric_limits<T>::max();
    if (!all_within(a.data(), a.size(), T(0), big))
        fail(std::string(name) + " must hold finite values >= 0, got " +
             std::to_string(first_outside(a.data(), a.size(), T(0), big)));
    return a;
}

}  // namespace checked
