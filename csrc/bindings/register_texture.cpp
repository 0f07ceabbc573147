// Python bindings of the texture kernels: array conversion only.
//
// The public functions in python/diffranet/features/ validate shapes, dtypes
// and values and allocate the output; these wrappers pass raw pointers to C++
// with the GIL released.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include "diffranet/texture.hpp"

namespace py = pybind11;

namespace {

constexpr int kCOrder = py::array::c_style;

void glcm_features(py::array_t<uint8_t, kCOrder> images, py::array_t<int64_t, kCOrder> offsets,
                   int levels, bool symmetric, py::array_t<double, kCOrder> out, int n_threads) {
    const uint8_t* image_ptr = images.data();
    // GlcmOffset is two int64 (drow, dcol): the (n_offsets, 2) array has its layout.
    const auto* offset_ptr = reinterpret_cast<const diffranet::GlcmOffset*>(offsets.data());
    double* out_ptr = out.mutable_data();
    const int64_t n_images = images.shape(0), rows = images.shape(1), cols = images.shape(2);
    const int64_t n_offsets = offsets.shape(0);
    py::gil_scoped_release release;
    diffranet::glcm_features(image_ptr, n_images, rows, cols, offset_ptr, n_offsets, levels, symmetric,
                             out_ptr, n_threads);
}

}  // namespace

void register_texture(py::module_& m) {
    m.def("glcm_features", &glcm_features, py::arg("images"), py::arg("offsets"), py::arg("levels"),
          py::arg("symmetric"), py::arg("out"), py::arg("n_threads"),
          "Haralick features (n_images, n_offsets, 6) of uint8 images; no validation.");
}
