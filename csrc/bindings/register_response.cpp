// Bindings of the detector response (noise and point-spread function).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <optional>

#include "convert.hpp"
#include "diffranet/response.hpp"

namespace {

using namespace diffranet;

using MaskArray = py::array_t<std::uint8_t, py::array::c_style | py::array::forcecast>;

using OptionalMask = std::optional<MaskArray>;

ImageTile make_tile(int rows, int cols, std::int64_t row0, std::int64_t col0, const OptionalMask& mask) {
    ImageTile tile;
    tile.rows = rows;
    tile.cols = cols;
    tile.row0 = row0;
    tile.col0 = col0;
    if (mask) tile.mask = mask->data();
    return tile;
}

FloatArray poisson(const FloatArray& expected, double scale, std::uint64_t seed, std::int64_t row0,
                   std::int64_t col0, const OptionalMask& mask, int n_threads) {
    const int rows = static_cast<int>(expected.shape(0));
    const int cols = static_cast<int>(expected.shape(1));
    FloatArray out({rows, cols});
    const ImageTile tile = make_tile(rows, cols, row0, col0, mask);
    float* dst = out.mutable_data();
    {
        py::gil_scoped_release release;
        poisson_image(expected.data(), tile, scale, seed, dst, n_threads);
    }
    return out;
}

FloatArray readout(FloatArray counts, const std::optional<FloatArray>& gain, double readout_rms, double adc_offset,
                   double saturation, std::uint64_t seed, std::int64_t row0, std::int64_t col0,
                   const OptionalMask& mask, int n_threads) {
    const ImageTile tile =
        make_tile(static_cast<int>(counts.shape(0)), static_cast<int>(counts.shape(1)), row0, col0, mask);
    const ReadoutParams params{readout_rms, adc_offset, saturation};
    const float* gain_data = gain ? gain->data() : nullptr;
    float* data = counts.mutable_data();
    {
        py::gil_scoped_release release;
        ccd_readout(data, gain_data, tile, params, seed, n_threads);
    }
    return counts;
}

FloatArray clip(FloatArray counts, double saturation, const OptionalMask& mask, int n_threads) {
    const ImageTile tile =
        make_tile(static_cast<int>(counts.shape(0)), static_cast<int>(counts.shape(1)), 0, 0, mask);
    float* data = counts.mutable_data();
    {
        py::gil_scoped_release release;
        clip_counts(data, tile, saturation, n_threads);
    }
    return counts;
}

FloatArray calibration(int rows, int cols, double calibration_rms, std::uint64_t calibration_seed,
                       std::int64_t row0, std::int64_t col0, int n_threads) {
    FloatArray out({rows, cols});
    const ImageTile tile = make_tile(rows, cols, row0, col0, std::nullopt);
    float* dst = out.mutable_data();
    {
        py::gil_scoped_release release;
        calibration_map(tile, calibration_rms, calibration_seed, dst, n_threads);
    }
    return out;
}

FloatArray separable(const FloatArray& image, const DoubleArray& kernel_half, int n_threads) {
    const int rows = static_cast<int>(image.shape(0));
    const int cols = static_cast<int>(image.shape(1));
    FloatArray out({rows, cols});
    float* dst = out.mutable_data();
    {
        py::gil_scoped_release release;
        convolve_separable(image.data(), rows, cols, kernel_half.data(), static_cast<int>(kernel_half.size()) - 1,
                           dst, n_threads);
    }
    return out;
}

DoubleArray spectrum(const DoubleArray& kernel, int mrows, int mcols, int n_threads) {
    const int ry = static_cast<int>(kernel.shape(0)) / 2;
    const int rx = static_cast<int>(kernel.shape(1)) / 2;
    std::vector<double> values;
    {
        py::gil_scoped_release release;
        values = kernel_spectrum(kernel.data(), ry, rx, mrows, mcols, n_threads);
    }
    DoubleArray out({mrows, mcols / 2 + 1});
    std::copy(values.begin(), values.end(), out.mutable_data());
    return out;
}

FloatArray fft_convolve(const FloatArray& image, const DoubleArray& spectrum, int n_threads) {
    const int rows = static_cast<int>(image.shape(0));
    const int cols = static_cast<int>(image.shape(1));
    const int mrows = static_cast<int>(spectrum.shape(0));
    const int mcols = 2 * (static_cast<int>(spectrum.shape(1)) - 1);
    FloatArray out({rows, cols});
    float* dst = out.mutable_data();
    {
        py::gil_scoped_release release;
        convolve_fft(image.data(), rows, cols, spectrum.data(), mrows, mcols, dst, n_threads);
    }
    return out;
}

}  // namespace

void register_response(py::module_& m) {
    m.def("flicker_factor", &flicker_factor, py::arg("seed"), py::arg("rms"),
          "Shot-to-shot fluence factor max(0, 1 + rms z) of image `seed`.");
    m.def("poisson", &poisson, py::arg("expected"), py::arg("scale"), py::arg("seed"), py::arg("row0"),
          py::arg("col0"), py::arg("mask"), py::arg("n_threads"),
          "Poisson deviates of scale * expected (float32 rows x cols), 0 where masked.");
    m.def("ccd_readout", &readout, py::arg("counts"), py::arg("gain"), py::arg("readout_rms"),
          py::arg("adc_offset"), py::arg("saturation"), py::arg("seed"), py::arg("row0"), py::arg("col0"),
          py::arg("mask"), py::arg("n_threads"),
          "Gain map, read-out noise, offset, digitise, clip (in place when counts is float32 C-contiguous).");
    m.def("clip_counts", &clip, py::arg("counts"), py::arg("saturation"), py::arg("mask"), py::arg("n_threads"),
          "Clip to [0, saturation], 0 where masked (in place when counts is float32 C-contiguous).");
    m.def("calibration_map", &calibration, py::arg("rows"), py::arg("cols"), py::arg("calibration_rms"),
          py::arg("calibration_seed"), py::arg("row0"), py::arg("col0"), py::arg("n_threads"),
          "Per-pixel gain factors 1 + calibration_rms z (float32 rows x cols).");
    m.def("convolve_separable", &separable, py::arg("image"), py::arg("kernel_half"), py::arg("n_threads"),
          "Convolution with a symmetric separable kernel given as weights at offsets 0..radius.");
    m.def("kernel_spectrum", &spectrum, py::arg("kernel"), py::arg("mrows"), py::arg("mcols"),
          py::arg("n_threads"), "Real half-spectrum of an even (2ry+1, 2rx+1) kernel on an mrows x mcols grid.");
    m.def("convolve_fft", &fft_convolve, py::arg("image"), py::arg("spectrum"), py::arg("n_threads"),
          "Zero-padded FFT convolution with a kernel given by its real half-spectrum.");
}
