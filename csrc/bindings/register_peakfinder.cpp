// Python bindings of the peak finder: argument checks (checked.hpp) and array
// packing only.
//
// diffranet.peaks validates the user's input; this wrapper makes sure every
// buffer and value is what the kernel reads, calls C++ with the GIL released
// and packs the peaks of every image into flat arrays.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cmath>
#include <cstdint>
#include <string>

#include "checked.hpp"
#include "diffranet/peakfinder.hpp"

namespace {

// Images index their pixels with 32-bit integers.
constexpr std::int64_t kMaxPixels = std::int64_t{INT32_MAX};

// The images (n, rows, cols), the optional mask and the beam centre, checked.
struct Frames {
    py::array_t<float, py::array::c_style> images;
    std::optional<py::array_t<std::uint8_t, py::array::c_style>> mask;
    int rows = 0, cols = 0;
};

Frames check_frames(const py::object& images_obj, const py::object& mask_obj, int ndim) {
    Frames f;
    f.images = ndim == 3 ? checked::array<float>(images_obj, "images", {checked::kAnyLength, checked::kAnyLength,
                                                                          checked::kAnyLength})
                         : checked::array<float>(images_obj, "image", {checked::kAnyLength, checked::kAnyLength});
    f.rows = checked::side(f.images.shape(ndim - 2), "rows");
    f.cols = checked::side(f.images.shape(ndim - 1), "cols");
    if (static_cast<std::int64_t>(f.rows) * f.cols > kMaxPixels)
        checked::fail("images must have fewer than 2**31 pixels, got " +
                      std::to_string(static_cast<std::int64_t>(f.rows) * f.cols));
    f.mask = checked::optional_array<std::uint8_t>(mask_obj, "mask", {f.rows, f.cols});
    return f;
}

diffranet::PeakFinderParams check_params(double beam_center_x, double beam_center_y, double min_snr,
                                         double adc_threshold, int min_pixels, int max_pixels, int local_bg_radius,
                                         int iterations, double min_radius_px, double max_radius_px) {
    diffranet::PeakFinderParams p;
    p.beam_center_x = checked::finite(beam_center_x, "beam_center_x");
    p.beam_center_y = checked::finite(beam_center_y, "beam_center_y");
    if (std::fabs(p.beam_center_x) > 1e7 || std::fabs(p.beam_center_y) > 1e7)
        checked::fail("the beam centre must lie within 1e7 pixels of the image");
    if (!(checked::finite(min_snr, "min_snr") > 0.0)) checked::fail("min_snr must be > 0");
    p.min_snr = min_snr;
    p.adc_threshold = checked::finite(adc_threshold, "adc_threshold");
    if (min_pixels < 1) checked::fail("min_pixels must be >= 1, got " + std::to_string(min_pixels));
    if (max_pixels < min_pixels) checked::fail("max_pixels must be >= min_pixels, got " + std::to_string(max_pixels));
    if (local_bg_radius < 1 || local_bg_radius > 1000)
        checked::fail("local_bg_radius must lie in [1, 1000], got " + std::to_string(local_bg_radius));
    if (iterations < 1 || iterations > 100) checked::fail("iterations must lie in [1, 100], got " + std::to_string(iterations));
    p.min_pixels = min_pixels;
    p.max_pixels = max_pixels;
    p.local_bg_radius = local_bg_radius;
    p.iterations = iterations;
    p.min_radius_px = checked::nonnegative(min_radius_px, "min_radius_px");
    if (std::isnan(max_radius_px) || !(max_radius_px > min_radius_px))
        checked::fail("max_radius_px must be > min_radius_px (inf: no limit)");
    p.max_radius_px = max_radius_px;
    return p;
}

py::dict find_peaks(const py::object& images_obj, const py::object& mask_obj, double beam_center_x,
                    double beam_center_y, double min_snr, double adc_threshold, int min_pixels, int max_pixels,
                    int local_bg_radius, int iterations, double min_radius_px, double max_radius_px, int n_threads) {
    const Frames f = check_frames(images_obj, mask_obj, 3);
    const diffranet::PeakFinderParams p = check_params(beam_center_x, beam_center_y, min_snr, adc_threshold,
                                                       min_pixels, max_pixels, local_bg_radius, iterations,
                                                       min_radius_px, max_radius_px);
    n_threads = checked::threads(n_threads);
    const auto n_images = static_cast<std::int64_t>(f.images.shape(0));
    const float* image_ptr = f.images.data();
    const std::uint8_t* mask_ptr = f.mask ? f.mask->data() : nullptr;
    std::vector<std::vector<diffranet::Peak>> found;
    {
        py::gil_scoped_release release;
        const diffranet::RingLayout layout(f.rows, f.cols, p.beam_center_x, p.beam_center_y, mask_ptr);
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

py::dict ring_statistics(const py::object& image_obj, const py::object& mask_obj, double beam_center_x,
                         double beam_center_y, double min_snr, double adc_threshold, int iterations, int n_threads) {
    const Frames f = check_frames(image_obj, mask_obj, 2);
    const diffranet::PeakFinderParams p = check_params(beam_center_x, beam_center_y, min_snr, adc_threshold, 1, 1,
                                                       1, iterations, 0.0, INFINITY);
    n_threads = checked::threads(n_threads);
    const float* image_ptr = f.images.data();
    const std::uint8_t* mask_ptr = f.mask ? f.mask->data() : nullptr;
    diffranet::RingStats st;
    {
        py::gil_scoped_release release;
        const diffranet::RingLayout layout(f.rows, f.cols, p.beam_center_x, p.beam_center_y, mask_ptr);
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
          "peakfinder8-style peaks of float32 images (n, rows, cols); mask: uint8 (rows, cols) or None.");
    m.def("ring_statistics", &ring_statistics, py::arg("image"), py::arg("mask"), py::arg("beam_center_x"),
          py::arg("beam_center_y"), py::arg("min_snr"), py::arg("adc_threshold"), py::arg("iterations"),
          py::arg("n_threads"), "Sigma-clipped mean, sigma and threshold per ring of a float32 image (rows, cols).");
}
