// Python binding of the local-significance map: argument checks (checked.hpp)
// only. diffranet.features.significance validates the options and owns the API.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>
#include <vector>

#include "checked.hpp"
#include "diffranet/significance.hpp"

namespace {

py::array_t<float> significance_map(const py::object& images_obj, int block_px, int cell_px, double lower_share,
                                    double mean_shift, double std_factor, double noise_floor, double clip_low,
                                    double clip_high, bool second, int n_threads) {
    const auto images = checked::array<std::uint8_t>(
        images_obj, "images", {checked::kAnyLength, checked::kAnyLength, checked::kAnyLength});
    const int rows = checked::side(images.shape(1), "rows"), cols = checked::side(images.shape(2), "cols");
    if (block_px < 1 || cell_px < block_px || cell_px % block_px || rows % cell_px || cols % cell_px)
        checked::fail("cell_px must be a multiple of block_px >= 1, and rows and cols multiples of cell_px");
    if (!(lower_share > 0.0 && lower_share <= 1.0) || !(std_factor > 0.0) || !(noise_floor > 0.0) ||
        !(checked::finite(clip_low, "clip_low") < checked::finite(clip_high, "clip_high")))
        checked::fail("lower_share in (0, 1], std_factor > 0, noise_floor > 0 and clip_low < clip_high are needed");
    diffranet::SignificanceParams p;
    p.block_px = block_px;
    p.cell_px = cell_px;
    p.lower_share = lower_share;
    p.mean_shift = checked::finite(mean_shift, "mean_shift");
    p.std_factor = std_factor;
    p.noise_floor = noise_floor;
    p.clip_low = static_cast<float>(clip_low);
    p.clip_high = static_cast<float>(clip_high);
    p.second = second;
    const int threads = checked::threads(n_threads);
    std::vector<py::ssize_t> shape{images.shape(0), static_cast<py::ssize_t>(rows / block_px),
                                   static_cast<py::ssize_t>(cols / block_px)};
    if (second) shape.insert(shape.begin() + 1, 2);
    py::array_t<float> out(shape);
    {
        py::gil_scoped_release release;
        diffranet::significance_map(images.data(), images.shape(0), rows, cols, p, out.mutable_data(), threads);
    }
    return out;
}

}  // namespace

void register_significance(py::module_& m) {
    m.def("significance_map", &significance_map, py::arg("images"), py::arg("block_px"), py::arg("cell_px"),
          py::arg("lower_share"), py::arg("mean_shift"), py::arg("std_factor"), py::arg("noise_floor"),
          py::arg("clip_low"), py::arg("clip_high"), py::arg("second"), py::arg("n_threads"),
          "Local significance of the block maxima of uint8 images (n, rows, cols), C-contiguous: a new float32 "
          "array (n, rows / block_px, cols / block_px); with second, (n, 2, ...): the maxima, then each "
          "block's second-largest value. See diffranet.features.significance.");
}
