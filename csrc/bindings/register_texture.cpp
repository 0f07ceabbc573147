// Python bindings of the texture kernels: argument checks (checked.hpp) only.
//
// The public functions in python/diffranet/features/ validate the user's
// input and allocate the output; this wrapper makes sure every buffer is
// exactly what the kernel reads and writes, then calls C++ with the GIL
// released.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <cstdint>
#include <string>

#include "checked.hpp"
#include "diffranet/texture.hpp"

namespace {

// Largest image the kernel's 32-bit co-occurrence counts hold (a symmetric
// GLCM counts every pair twice) and its 64-bit sums of squared counts stay exact.
constexpr std::int64_t kMaxPixels = std::int64_t{1} << 30;

// Largest |row| or |column| offset (keeps the kernel's index arithmetic in range).
constexpr std::int64_t kMaxOffset = INT32_MAX;

void glcm_features(const py::object& images_obj, const py::object& offsets_obj, int levels, bool symmetric,
                   const py::object& out_obj, int n_threads) {
    const auto images = checked::array<std::uint8_t>(images_obj, "images", {checked::kAnyLength, checked::kAnyLength, checked::kAnyLength});
    const auto offsets = checked::array<std::int64_t>(offsets_obj, "offsets", {checked::kAnyLength, 2});
    if (levels < 1 || levels > 256) checked::fail("levels must lie in [1, 256], got " + std::to_string(levels));
    const std::int64_t n_images = images.shape(0), rows = images.shape(1), cols = images.shape(2);
    const std::int64_t n_offsets = offsets.shape(0);
    if (rows < 1 || cols < 1) checked::fail("images must be at least 1 x 1 pixels");
    if (rows * cols > kMaxPixels)
        checked::fail("images must have at most 2**30 pixels each, got " + std::to_string(rows * cols));
    auto out = checked::array<double>(out_obj, "out", {n_images, n_offsets, diffranet::kGlcmPropertyCount}, true);
    n_threads = checked::threads(n_threads);

    const std::int64_t* offset_values = offsets.data();
    for (py::ssize_t i = 0; i < offsets.size(); ++i)
        if (offset_values[i] < -kMaxOffset || offset_values[i] > kMaxOffset)
            checked::fail("offsets must lie in [-(2**31 - 1), 2**31 - 1], got " + std::to_string(offset_values[i]));
    const std::uint8_t* image_ptr = images.data();
    if (images.size() > 0) {
        const int top = *std::max_element(image_ptr, image_ptr + images.size());
        if (top >= levels)
            checked::fail("images must hold grey levels below levels=" + std::to_string(levels) + ", got " +
                          std::to_string(top));
    }
    // GlcmOffset is two int64 (drow, dcol): the (n_offsets, 2) array has its layout.
    const auto* offset_ptr = reinterpret_cast<const diffranet::GlcmOffset*>(offset_values);
    double* out_ptr = out.mutable_data();
    py::gil_scoped_release release;
    diffranet::glcm_features(image_ptr, n_images, rows, cols, offset_ptr, n_offsets, levels, symmetric, out_ptr,
                             n_threads);
}

}  // namespace

void register_texture(py::module_& m) {
    m.def("glcm_features", &glcm_features, py::arg("images"), py::arg("offsets"), py::arg("levels"),
          py::arg("symmetric"), py::arg("out"), py::arg("n_threads"),
          "Haralick features of uint8 images (n_images, rows, cols) with grey levels below `levels`, written "
          "into `out`, a float64 C-contiguous array (n_images, n_offsets, 6).");
}
