// Bragg peak finding in the style of peakfinder8 (Cheetah, OM, CrystFEL).
//
// For each image:
//   1. Rings: every unmasked pixel belongs to ring round(r), r its distance
//      (pixels) from the beam centre. In each ring the mean and standard
//      deviation of the pixel values are computed, then recomputed over the
//      pixels within mean +- min_snr * sigma only, `iterations` times (or
//      until the set of pixels stops changing): a sigma-clipped background
//      and noise that the Bragg peaks themselves do not inflate.
//   2. Threshold: a pixel is a peak candidate when it is unmasked, lies in
//      [min_radius_px, max_radius_px] and its value exceeds
//      max(mean + min_snr * sigma, adc_threshold) of its ring.
//   3. Grouping: 8-connected candidates form one peak, which holds its
//      local maximum; peaks with fewer than min_pixels or more than
//      max_pixels pixels are dropped.
//   4. Local background: mean and sigma of the pixels within
//      2 * local_bg_radius of the peak's brightest pixel that are unmasked and
//      not candidates (the ring's values when there are none).
//   5. A peak is kept when snr = sum(value - local mean) / local sigma is
//      >= min_snr and its brightest pixel is brighter than every local
//      background pixel (peakfinder8's two tests).
//
// Coordinates: x is the column, y the row, pixel centres at integer values.
// Results do not depend on the number of threads: every sum runs in a fixed
// order and peaks are listed in row-major order of their first pixel.
// Images must have fewer than 2^31 pixels.
//
// Images come as float values, or as 8-bit levels with a table of the value
// each level stands for (a model input holds round(sqrt(counts + offset)),
// the table the squares). A ring's statistics then come from its histogram
// of levels, a few dozen occupied bins instead of every pixel at every
// clipping pass; with integer table values every sum is exact in either
// order, so both forms find the same peaks.
//
// The callers (python/diffranet/peaks/) validate every argument; these
// kernels check nothing.
#pragma once

#include <cstdint>
#include <limits>
#include <vector>

namespace diffranet {

struct PeakFinderParams {
    double min_snr = 5.0;        // pixel threshold and peak SNR, in units of the ring / local sigma
    double adc_threshold = 0.0;  // lowest pixel threshold, image units
    int min_pixels = 2;          // pixels per peak, inclusive
    int max_pixels = 200;
    int local_bg_radius = 3;     // pixels; the local background disc has twice this radius
    int iterations = 5;          // sigma-clipping passes per ring
    double min_radius_px = 0.0;  // candidates only at min_radius_px <= r <= max_radius_px
    double max_radius_px = std::numeric_limits<double>::infinity();
};

// One peak.
struct Peak {
    double x = 0.0;              // centroid column (pixels), weighted by value - local background
    double y = 0.0;              // centroid row (pixels)
    double intensity = 0.0;      // sum of value - local background over the peak's pixels
    double max_value = 0.0;      // brightest pixel's value - local background
    double background = 0.0;     // local background (image units per pixel)
    double sigma = 0.0;          // local noise (image units per pixel)
    double snr = 0.0;            // intensity / sigma
    std::int64_t n_pixels = 0;
};

// Ring membership of the pixels of one detector: built once per (shape,
// beam centre, mask) and shared by every image of a batch (and, kept by the
// caller, by every batch: building one sorts every pixel by ring).
class RingLayout {
public:
    // Beam centre in pixels (x column, y row); mask: rows x cols, nonzero =
    // record nothing, may be null.
    RingLayout(int rows, int cols, double beam_center_x, double beam_center_y, const std::uint8_t* mask);

    int rows() const { return rows_; }
    int cols() const { return cols_; }
    double beam_center_x() const { return beam_center_x_; }
    double beam_center_y() const { return beam_center_y_; }
    int n_rings() const { return static_cast<int>(ring_start_.size()) - 1; }
    // Ring of pixel i (row-major), -1 if masked.
    std::int32_t ring_of(std::int64_t i) const { return ring_[i]; }
    // Unmasked pixels of ring k: order()[ring_start(k) .. ring_start(k + 1)),
    // row-major pixel indices (images have fewer than 2^31 pixels).
    std::int64_t ring_start(int k) const { return ring_start_[k]; }
    const std::vector<std::int32_t>& order() const { return order_; }

private:
    int rows_, cols_;
    double beam_center_x_, beam_center_y_;
    std::vector<std::int32_t> ring_;
    std::vector<std::int64_t> ring_start_;
    std::vector<std::int32_t> order_;
};

// Sigma-clipped background of every ring.
struct RingStats {
    std::vector<double> mean;
    std::vector<double> sigma;
    std::vector<double> threshold;  // candidate threshold; +inf for an empty ring
    std::vector<double> brightest;  // the ring's highest value; -inf for an empty ring
};

RingStats ring_statistics(const float* image, const RingLayout& layout, const PeakFinderParams& p, int n_threads);

// Peaks of n_images images of one detector (rows x cols, row-major): parallel
// over images when there are several, within the image otherwise. out[i]
// holds image i's peaks.
void find_peaks_batch(const float* images, std::int64_t n_images, const RingLayout& layout,
                      const PeakFinderParams& p, std::vector<std::vector<Peak>>& out, int n_threads);

// The same for 8-bit images: pixel value level_values[level] (256 entries).
void find_peaks_batch(const std::uint8_t* levels, const float* level_values, std::int64_t n_images,
                      const RingLayout& layout, const PeakFinderParams& p, std::vector<std::vector<Peak>>& out,
                      int n_threads);

}  // namespace diffranet
