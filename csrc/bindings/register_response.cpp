// Bindings of the detector response (noise and the separable point-spread
// function): argument checks (checked.hpp) and array allocation only. Every
// kernel writes into a new array; the caller's arrays are only read.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cmath>
#include <cstdint>
#include <optional>
#include <string>

#include "checked.hpp"
#include "diffranet/response.hpp"

namespace {

using namespace diffranet;

using FloatImage = py::array_t<float, py::array::c_style>;
using MaskImage = std::optional<py::array_t<std::uint8_t, py::array::c_style>>;

// Detector (row, col) of a tile's first pixel: 0 .. 2^31 - 1 (the pixel keys' range).
std::int64_t origin(std::int64_t value, const char* name) {
    if (value < 0 || value > INT32_MAX)
        checked::fail(std::string(name) + " must lie in [0, 2**31 - 1], got " + std::to_string(value));
    return value;
}

// A 2-D float32 image (rows, cols >= 1 each).
FloatImage image(const py::handle& obj, const char* name) {
    FloatImage a = checked::array<float>(obj, name, {checked::kAnyLength, checked::kAnyLength});
    checked::side(a.shape(0), "rows");
    checked::side(a.shape(1), "cols");
    return a;
}

ImageTile make_tile(const py::array& shape_of, std::int64_t row0, std::int64_t col0, const MaskImage& mask) {
    ImageTile tile;
    tile.rows = static_cast<int>(shape_of.shape(0));
    tile.cols = static_cast<int>(shape_of.shape(1));
    tile.row0 = origin(row0, "row0");
    tile.col0 = origin(col0, "col0");
    tile.mask = mask ? mask->data() : nullptr;
    return tile;
}

MaskImage mask_like(const py::handle& obj, const py::array& image) {
    return checked::optional_array<std::uint8_t>(obj, "mask", {image.shape(0), image.shape(1)});
}

double flicker(std::uint64_t seed, double rms) { return flicker_factor(seed, checked::nonnegative(rms, "rms")); }

FloatImage poisson(const py::object& expected_obj, double scale, std::uint64_t seed, std::int64_t row0,
                   std::int64_t col0, const py::object& mask_obj, int n_threads) {
    const FloatImage expected = image(expected_obj, "expected");
    const MaskImage mask = mask_like(mask_obj, expected);
    const ImageTile tile = make_tile(expected, row0, col0, mask);
    checked::nonnegative(scale, "scale");
    n_threads = checked::threads(n_threads);
    // a non-finite mean would never end the Poisson sampler's rejection loop
    const float* values = expected.data();
    for (py::ssize_t i = 0; i < expected.size(); ++i)
        if (!std::isfinite(values[i]) || values[i] < 0.0f)
            checked::fail("expected must hold finite values >= 0, got " + std::to_string(values[i]));
    FloatImage out({expected.shape(0), expected.shape(1)});
    float* dst = out.mutable_data();
    {
        py::gil_scoped_release release;
        poisson_image(values, tile, scale, seed, dst, n_threads);
    }
    return out;
}

FloatImage readout(const py::object& counts_obj, const py::object& gain_obj, double readout_rms, double adc_offset,
                   double saturation, std::uint64_t seed, std::int64_t row0, std::int64_t col0,
                   const py::object& mask_obj, int n_threads) {
    const FloatImage counts = image(counts_obj, "counts");
    const auto gain = checked::optional_array<float>(gain_obj, "gain", {counts.shape(0), counts.shape(1)});
    const MaskImage mask = mask_like(mask_obj, counts);
    const ImageTile tile = make_tile(counts, row0, col0, mask);
    const ReadoutParams params{checked::nonnegative(readout_rms, "readout_rms"),
                               checked::finite(adc_offset, "adc_offset"),
                               checked::nonnegative(saturation, "saturation")};
    n_threads = checked::threads(n_threads);
    FloatImage out({counts.shape(0), counts.shape(1)});
    const float* src = counts.data();
    const float* gain_data = gain ? gain->data() : nullptr;
    float* dst = out.mutable_data();
    {
        py::gil_scoped_release release;
        ccd_readout(src, gain_data, tile, params, seed, dst, n_threads);
    }
    return out;
}

FloatImage clip(const py::object& counts_obj, double saturation, const py::object& mask_obj, int n_threads) {
    const FloatImage counts = image(counts_obj, "counts");
    const MaskImage mask = mask_like(mask_obj, counts);
    const ImageTile tile = make_tile(counts, 0, 0, mask);
    checked::nonnegative(saturation, "saturation");
    n_threads = checked::threads(n_threads);
    FloatImage out({counts.shape(0), counts.shape(1)});
    const float* src = counts.data();
    float* dst = out.mutable_data();
    {
        py::gil_scoped_release release;
        clip_counts(src, tile, saturation, dst, n_threads);
    }
    return out;
}

FloatImage calibration(std::int64_t rows, std::int64_t cols, double calibration_rms, std::uint64_t calibration_seed,
                       std::int64_t row0, std::int64_t col0, int n_threads) {
    ImageTile tile;
    tile.rows = checked::side(rows, "rows");
    tile.cols = checked::side(cols, "cols");
    tile.row0 = origin(row0, "row0");
    tile.col0 = origin(col0, "col0");
    checked::nonnegative(calibration_rms, "calibration_rms");
    n_threads = checked::threads(n_threads);
    FloatImage out({rows, cols});
    float* dst = out.mutable_data();
    {
        py::gil_scoped_release release;
        calibration_map(tile, calibration_rms, calibration_seed, dst, n_threads);
    }
    return out;
}

FloatImage separable(const py::object& image_obj, const py::object& kernel_obj, int n_threads) {
    const FloatImage in = image(image_obj, "image");
    const auto kernel = checked::array<double>(kernel_obj, "kernel_half", {checked::kAnyLength});
    if (kernel.size() < 1 || kernel.size() > INT32_MAX)
        checked::fail("kernel_half must hold 1 to 2**31 - 1 weights, got " + std::to_string(kernel.size()));
    n_threads = checked::threads(n_threads);
    const int rows = static_cast<int>(in.shape(0));
    const int cols = static_cast<int>(in.shape(1));
    const int radius = static_cast<int>(kernel.size()) - 1;
    FloatImage out({in.shape(0), in.shape(1)});
    const float* src = in.data();
    const double* weights = kernel.data();
    float* dst = out.mutable_data();
    {
        py::gil_scoped_release release;
        convolve_separable(src, rows, cols, weights, radius, dst, n_threads);
    }
    return out;
}

}  // namespace

void register_response(py::module_& m) {
    m.def("flicker_factor", &flicker, py::arg("seed"), py::arg("rms"),
          "Shot-to-shot fluence factor max(0, 1 + rms z) of image `seed`.");
    m.def("poisson", &poisson, py::arg("expected"), py::arg("scale"), py::arg("seed"), py::arg("row0"),
          py::arg("col0"), py::arg("mask"), py::arg("n_threads"),
          "Poisson deviates of scale * expected (float32 rows x cols, finite, >= 0), 0 where masked (uint8 mask).");
    m.def("ccd_readout", &readout, py::arg("counts"), py::arg("gain"), py::arg("readout_rms"),
          py::arg("adc_offset"), py::arg("saturation"), py::arg("seed"), py::arg("row0"), py::arg("col0"),
          py::arg("mask"), py::arg("n_threads"),
          "Gain map, read-out noise, offset, digitise, clip: a new float32 array (counts is not modified).");
    m.def("clip_counts", &clip, py::arg("counts"), py::arg("saturation"), py::arg("mask"), py::arg("n_threads"),
          "Counts clipped to [0, saturation], 0 where masked: a new float32 array (counts is not modified).");
    m.def("calibration_map", &calibration, py::arg("rows"), py::arg("cols"), py::arg("calibration_rms"),
          py::arg("calibration_seed"), py::arg("row0"), py::arg("col0"), py::arg("n_threads"),
          "Per-pixel gain factors 1 + calibration_rms z (float32 rows x cols).");
    m.def("convolve_separable", &separable, py::arg("image"), py::arg("kernel_half"), py::arg("n_threads"),
          "Convolution with a symmetric separable kernel given as float64 weights at offsets 0..radius.");
}
