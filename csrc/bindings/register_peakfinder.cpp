// Python bindings of the peak finder: array conversion only.
//
// diffranet.peaks validates images, mask and parameters; this wrapper passes
// raw pointers to C++ with the GIL released and packs the peaks of every
// image into flat arrays.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include "diffranet/peakfinder.hpp"

namespace py = pybind11;

namespace {

constexpr int kCOrder = py::array::c_style;

py::dict find_peaks(py::array_t<float, kCOrder> images, py::object mask, double beam_center_x, double beam_center_y,
                    double min_snr, double adc_threshold, int min_pixels, int max_pixels, int local_bg_radius,
                    int iterations, double min_radius_px, double max_radius_px, int n_threads) {
    diffranet::PeakFinderParams p;
    p.beam_center_x = beam_center_x;
    p.beam_center_y = beam_center_y;
    p.min_snr = min_snr;
    p.adc_threshold = adc_threshold;
    p.min_pixels = min_pixels;
    p.max_pixels = max_pixels;
    p.local_bg_radius = local_bg_radius;
    p.iterations = iterations;
    p.min_radius_px = min_radius_px;
    p.max_radius_px = max_radius_px;
    const auto n_images = static_cast<std::int64_t>(images.shape(0));
    const int rows = static_cast<int>(images.shape(1)), cols = static_cast<int>(images.shape(2));
    py::array_t<std::uint8_t, kCOrder> mask_array;
    const std::uint8_t* mask_ptr = nullptr;
    if (!mask.is_none()) {
        mask_array = mask.cast<py::array_t<std::uint8_t, kCOrder>>();
        mask_ptr = mask_array.data();
    }
    const float* image_ptr = images.data();
    std::vector<std::vector<diffranet::Peak>> found;
    {
        py::gil_scoped_release release;
        const diffranet::RingLayout layout(rows, cols, beam_center_x, beam_center_y, mask_ptr);
        diffranet::find_peaks_batch(image_ptr, n_images, layout, p, found, n_threads);
    }
    py::ssize_t total = 0;
    py::array_t<std::int64_t> counts(n_images);
    for (std::int64_t n = 0; n < n_images; ++n) {
        counts.mutable_data()[n] = static_cast<std::int64_t>(found[n].size());
        total += static_cast<py::ssize_t>(found[n].size());
    }
    py::array_t<std::int64_t> image_index(total), n_pix(total);
    py::array_t<double> x(total), y(total), intensity(total), max_value(total), background(total), sigma(total),
        snr(total);
    py::ssize_t j = 0;
    for (std::int64_t n = 0; n < n_images; ++n) {
        for (const auto& pk : found[n]) {
            image_index.mutable_data()[j] = n;
            x.mutable_data()[j] = pk.x;
            y.mutable_data()[j] = pk.y;
            intensity.mutable_data()[j] = pk.intensity;
            max_value.mutable_data()[j] = pk.max_value;
            background.mutable_data()[j] = pk.background;
            sigma.mutable_data()[j] = pk.sigma;
            snr.mutable_data()[j] = pk.snr;
            n_pix.mutable_data()[j] = pk.n_pixels;
            ++j;
        }
    }
    py::dict out;
    out["counts"] = counts;
    out["image"] = image_index;
    out["x"] = x;
    out["y"] = y;
    out["intensity"] = intensity;
    out["max_value"] = max_value;
    out["background"] = background;
    out["sigma"] = sigma;
    out["snr"] = snr;
    out["n_pixels"] = n_pix;
    return out;
}

py::dict ring_statistics(py::array_t<float, kCOrder> image, py::object mask, double beam_center_x,
                         double beam_center_y, double min_snr, double adc_threshold, int iterations, int n_threads) {
    diffranet::PeakFinderParams p;
    p.beam_center_x = beam_center_x;
    p.beam_center_y = beam_center_y;
    p.min_snr = min_snr;
    p.adc_threshold = adc_threshold;
    p.iterations = iterations;
    py::array_t<std::uint8_t, kCOrder> mask_array;
    const std::uint8_t* mask_ptr = nullptr;
    if (!mask.is_none()) {
        mask_array = mask.cast<py::array_t<std::uint8_t, kCOrder>>();
        mask_ptr = mask_array.data();
    }
    const int rows = static_cast<int>(image.shape(0)), cols = static_cast<int>(image.shape(1));
    const float* image_ptr = image.data();
    diffranet::RingStats st;
    {
        py::gil_scoped_release release;
        const diffranet::RingLayout layout(rows, cols, beam_center_x, beam_center_y, mask_ptr);
        st = diffranet::ring_statistics(image_ptr, layout, p, n_threads);
    }
    py::dict out;
    out["mean"] = py::array_t<double>(static_cast<py::ssize_t>(st.mean.size()), st.mean.data());
    out["sigma"] = py::array_t<double>(static_cast<py::ssize_t>(st.sigma.size()), st.sigma.data());
    out["threshold"] = py::array_t<double>(static_cast<py::ssize_t>(st.threshold.size()), st.threshold.data());
    return out;
}

}  // namespace

void register_peakfinder(py::module_& m) {
    m.def("find_peaks", &find_peaks, py::arg("images"), py::arg("mask"), py::arg("beam_center_x"),
          py::arg("beam_center_y"), py::arg("min_snr"), py::arg("adc_threshold"), py::arg("min_pixels"),
          py::arg("max_pixels"), py::arg("local_bg_radius"), py::arg("iterations"), py::arg("min_radius_px"),
          py::arg("max_radius_px"), py::arg("n_threads"),
          "peakfinder8-style peaks of (n, rows, cols) float32 images; no validation.");
    m.def("ring_statistics", &ring_statistics, py::arg("image"), py::arg("mask"), py::arg("beam_center_x"),
          py::arg("beam_center_y"), py::arg("min_snr"), py::arg("adc_threshold"), py::arg("iterations"),
          py::arg("n_threads"), "Sigma-clipped mean, sigma and threshold per ring; no validation.");
}
