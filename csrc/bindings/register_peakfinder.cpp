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
#include <memory>
#include <optional>
#include <string>

#include "checked.hpp"
#include "diffranet/peakfinder.hpp"

namespace {

// Images index their pixels with 32-bit integers.
constexpr std::int64_t kMaxPixels = std::int64_t{INT32_MAX};

// The ring layout of one detector shape, beam centre and mask, checked.
std::unique_ptr<diffranet::RingLayout> make_layout(std::int64_t rows, std::int64_t cols, double beam_center_x,
                                                   double beam_center_y, const py::object& mask_obj) {
    const int r = checked::side(rows, "rows"), c = checked::side(cols, "cols");
    if (static_cast<std::int64_t>(r) * c > kMaxPixels)
        checked::fail("images must have fewer than 2**31 pixels, got " + std::to_string(static_cast<std::int64_t>(r) * c));
    checked::finite(beam_center_x, "beam_center_x");
    checked::finite(beam_center_y, "beam_center_y");
    if (std::fabs(beam_center_x) > 1e7 || std::fabs(beam_center_y) > 1e7)
        checked::fail("the beam centre must lie within 1e7 pixels of the image");
    const auto mask = checked::optional_array<std::uint8_t>(mask_obj, "mask", {r, c});
    const std::uint8_t* mask_ptr = mask ? mask->data() : nullptr;
    py::gil_scoped_release release;
    return std::make_unique<diffranet::RingLayout>(r, c, beam_center_x, beam_center_y, mask_ptr);
}

diffranet::PeakFinderParams check_params(double min_snr, double adc_threshold, int min_pixels, int max_pixels,
                                         int local_bg_radius, int iterations, double min_radius_px,
                                         double max_radius_px) {
    diffranet::PeakFinderParams p;
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

// Peaks of float32 images (n, rows, cols), or of uint8 levels whose values are level_values (256 float32).
py::dict find_peaks(const py::object& images_obj, const diffranet::RingLayout& layout,
                    const py::object& level_values_obj, double min_snr, double adc_threshold, int min_pixels,
                    int max_pixels, int local_bg_radius, int iterations, double min_radius_px, double max_radius_px,
                    int n_threads) {
    const std::initializer_list<py::ssize_t> shape = {checked::kAnyLength, layout.rows(), layout.cols()};
    const bool levels = !level_values_obj.is_none();
    std::optional<py::array_t<float, py::array::c_style>> images, table;
    std::optional<py::array_t<std::uint8_t, py::array::c_style>> level_images;
    if (levels) {
        level_images = checked::array<std::uint8_t>(images_obj, "images", shape);
        table = checked::array<float>(level_values_obj, "level_values", {256});
        checked::all_finite(*table, "level_values");
    } else {
        images = checked::array<float>(images_obj, "images", shape);
    }
    const diffranet::PeakFinderParams p = check_params(min_snr, adc_threshold, min_pixels, max_pixels,
                                                       local_bg_radius, iterations, min_radius_px, max_radius_px);
    n_threads = checked::threads(n_threads);
    const auto n_images = static_cast<std::int64_t>(levels ? level_images->shape(0) : images->shape(0));
    std::vector<std::vector<diffranet::Peak>> found;
    {
        py::gil_scoped_release release;
        if (levels)
            diffranet::find_peaks_batch(level_images->data(), table->data(), n_images, layout, p, found, n_threads);
        else
            diffranet::find_peaks_batch(images->data(), n_images, layout, p, found, n_threads);
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

py::dict ring_statistics(const py::object& image_obj, const diffranet::RingLayout& layout, double min_snr,
                         double adc_threshold, int iterations, int n_threads) {
    const auto image = checked::array<float>(image_obj, "image", {layout.rows(), layout.cols()});
    const diffranet::PeakFinderParams p = check_params(min_snr, adc_threshold, 1, 1, 1, iterations, 0.0, INFINITY);
    n_threads = checked::threads(n_threads);
    diffranet::RingStats st;
    {
        py::gil_scoped_release release;
        st = diffranet::ring_statistics(image.data(), layout, p, n_threads);
    }
    py::dict out;
    out["mean"] = py::array_t<double>(static_cast<py::ssize_t>(st.mean.size()), st.mean.data());
    out["sigma"] = py::array_t<double>(static_cast<py::ssize_t>(st.sigma.size()), st.sigma.data());
    out["threshold"] = py::array_t<double>(static_cast<py::ssize_t>(st.threshold.size()), st.threshold.data());
    return out;
}

}  // namespace

void register_peakfinder(py::module_& m) {
    py::class_<diffranet::RingLayout>(m, "RingLayout",
                                      "Ring membership of the pixels of one detector shape, beam centre (pixel "
                                      "centres at integers) and mask (uint8, nonzero: record nothing; or None).")
        .def(py::init(&make_layout), py::arg("rows"), py::arg("cols"), py::arg("beam_center_x"),
             py::arg("beam_center_y"), py::arg("mask"))
        .def_property_readonly("rows", &diffranet::RingLayout::rows)
        .def_property_readonly("cols", &diffranet::RingLayout::cols);
    m.def("find_peaks", &find_peaks, py::arg("images"), py::arg("layout"), py::arg("level_values"),
          py::arg("min_snr"), py::arg("adc_threshold"), py::arg("min_pixels"), py::arg("max_pixels"),
          py::arg("local_bg_radius"), py::arg("iterations"), py::arg("min_radius_px"), py::arg("max_radius_px"),
          py::arg("n_threads"),
          "peakfinder8-style peaks of float32 images (n, rows, cols), or of uint8 images whose level l has the "
          "value level_values[l] (float32, 256 entries; None for float32 images).");
    m.def("ring_statistics", &ring_statistics, py::arg("image"), py::arg("layout"), py::arg("min_snr"),
          py::arg("adc_threshold"), py::arg("iterations"), py::arg("n_threads"),
          "Sigma-clipped mean, sigma and threshold per ring of a float32 image (rows, cols).");
}
