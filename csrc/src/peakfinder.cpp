// peakfinder8-style Bragg peak finding: ring statistics, threshold, grouping,
// local background (see diffranet/peakfinder.hpp for the algorithm).
//
// References: A. Barty et al., "Cheetah: software for high-throughput
// reduction and analysis of serial femtosecond X-ray diffraction data",
// J. Appl. Cryst. 47 (2014) 1118-1131, doi:10.1107/S1600576714007626;
// V. Mariani et al., "OnDA: online data analysis and feedback for serial
// X-ray imaging", J. Appl. Cryst. 49 (2016) 1073-1080,
// doi:10.1107/S1600576716007469.

#include "diffranet/peakfinder.hpp"

#include "diffranet/parallel.hpp"
#include "diffranet/threads.hpp"

#include <algorithm>
#include <cmath>

namespace diffranet {

RingLayout::RingLayout(int rows, int cols, double beam_center_x, double beam_center_y, const std::uint8_t* mask)
    : rows_(rows),
      cols_(cols),
      beam_center_x_(beam_center_x),
      beam_center_y_(beam_center_y),
      ring_(static_cast<std::size_t>(rows) * cols) {
    std::int32_t max_ring = -1;
    for (int r = 0; r < rows; ++r) {
        const double dy = r - beam_center_y;
        for (int c = 0; c < cols; ++c) {
            const std::int64_t i = static_cast<std::int64_t>(r) * cols + c;
            if (mask != nullptr && mask[i] != 0) {
                ring_[i] = -1;
                continue;
            }
            const double dx = c - beam_center_x;
            const auto k = static_cast<std::int32_t>(std::lround(std::sqrt(dx * dx + dy * dy)));
            ring_[i] = k;
            max_ring = std::max(max_ring, k);
        }
    }
    // Counting sort of the unmasked pixels by ring, row-major within a ring.
    ring_start_.assign(static_cast<std::size_t>(max_ring) + 2, 0);
    for (std::int32_t k : ring_)
        if (k >= 0) ++ring_start_[k + 1];
    for (std::size_t k = 1; k < ring_start_.size(); ++k) ring_start_[k] += ring_start_[k - 1];
    order_.resize(static_cast<std::size_t>(ring_start_.back()));
    std::vector<std::int64_t> fill(ring_start_.begin(), ring_start_.end() - 1);
    for (std::int64_t i = 0; i < static_cast<std::int64_t>(ring_.size()); ++i)
        if (ring_[i] >= 0) order_[fill[ring_[i]]++] = static_cast<std::int32_t>(i);
}

namespace {

// Pixel values of one image, as the kernels read them.
struct FloatPixels {
    const float* values;
    double operator[](std::int64_t i) const { return values[i]; }
};

// An 8-bit image: level l stands for the value table[l].
struct LevelPixels {
    const std::uint8_t* levels;
    const float* table;  // 256 entries
    double operator[](std::int64_t i) const { return table[levels[i]]; }
};


// Sigma clipping of one ring. sum_kept(lo, hi, sum, sum_sq, count) adds up
// d = value - shift and d^2 over the ring's values in (lo, hi); sums relative
// to one of the ring's values keep the variance free of cancellation when the
// values are large and nearly equal.
template <class SumKept>
void clip_ring(double shift, const PeakFinderParams& p, SumKept sum_kept, double& mean, double& sigma,
               double& threshold) {
    double lo = -std::numeric_limits<double>::infinity();
    double hi = std::numeric_limits<double>::infinity();
    std::int64_t last_count = -1;
    for (int it = 0; it < p.iterations; ++it) {
        double sum = 0.0, sum_sq = 0.0;
        std::int64_t count = 0;
        sum_kept(lo, hi, sum, sum_sq, count);
        if (count == 0) break;  // keep the previous pass's values
        const double m = sum / count;
        mean = shift + m;
        sigma = std::sqrt(std::max(sum_sq / count - m * m, 0.0));
        lo = mean - p.min_snr * sigma;
        hi = mean + p.min_snr * sigma;
        threshold = std::max(hi, p.adc_threshold);
        if (count == last_count) break;  // the same pixels again: converged
        last_count = count;
    }
}

// One ring's values, gathered into a contiguous buffer.
void clip_values(const float* values, std::int64_t n, const PeakFinderParams& p, double& mean, double& sigma,
                 double& threshold, double& brightest) {
    brightest = *std::max_element(values, values + n);
    const double shift = values[0];
    clip_ring(shift, p, [&](double lo, double hi, double& sum, double& sum_sq, std::int64_t& count) {
        // Four interleaved partial sums (combined in a fixed order): no branch
        // and no single dependency chain in the hot loop.
        double s[4] = {0.0, 0.0, 0.0, 0.0}, s2[4] = {0.0, 0.0, 0.0, 0.0};
        std::int64_t c[4] = {0, 0, 0, 0};
        std::int64_t j = 0;
        for (; j + 4 <= n; j += 4) {
            for (int lane = 0; lane < 4; ++lane) {
                const double v = values[j + lane];
                const bool keep = v > lo && v < hi;
                const double d = keep ? v - shift : 0.0;
                s[lane] += d;
                s2[lane] += d * d;
                c[lane] += keep;
            }
        }
        for (; j < n; ++j) {
            const double v = values[j];
            const bool keep = v > lo && v < hi;
            const double d = keep ? v - shift : 0.0;
            s[0] += d;
            s2[0] += d * d;
            c[0] += keep;
        }
        sum = (s[0] + s[1]) + (s[2] + s[3]);
        sum_sq = (s2[0] + s2[1]) + (s2[2] + s2[3]);
        count = (c[0] + c[1]) + (c[2] + c[3]);
    }, mean, sigma, threshold);
}

// One ring's levels, as a histogram: each pass visits the occupied levels only.
void clip_levels(const LevelPixels& px, const std::int32_t* pixels, std::int64_t n, const PeakFinderParams& p,
                 double& mean, double& sigma, double& threshold, double& brightest) {
    // Four partial histograms: most pixels of a ring share a level, and a
    // single one would make each increment wait for the one before.
    std::int32_t partial[4][256] = {};
    std::int64_t j = 0;
    for (; j + 4 <= n; j += 4)
        for (int lane = 0; lane < 4; ++lane) ++partial[lane][px.levels[pixels[j + lane]]];
    for (; j < n; ++j) ++partial[0][px.levels[pixels[j]]];
    std::int64_t histogram[256];
    int occupied[256];
    int n_occupied = 0;
    for (int level = 0; level < 256; ++level) {
        histogram[level] = std::int64_t{partial[0][level]} + partial[1][level] + partial[2][level] + partial[3][level];
        if (histogram[level] != 0) occupied[n_occupied++] = level;
    }
    brightest = -std::numeric_limits<double>::infinity();
    for (int b = 0; b < n_occupied; ++b) brightest = std::max(brightest, static_cast<double>(px.table[occupied[b]]));
    const double shift = px[pixels[0]];
    clip_ring(shift, p, [&](double lo, double hi, double& sum, double& sum_sq, std::int64_t& count) {
        for (int b = 0; b < n_occupied; ++b) {
            const int level = occupied[b];
            const double v = px.table[level];
            if (!(v > lo && v < hi)) continue;
            const double d = v - shift;
            const auto h = static_cast<double>(histogram[level]);
            sum += h * d;
            sum_sq += h * (d * d);
            count += histogram[level];
        }
    }, mean, sigma, threshold);
}

// Per-image scratch buffers, reused across the images a thread processes.
struct Workspace {
    std::vector<float> ring_values;
    std::vector<std::uint8_t> state;  // 0 below threshold, 1 candidate, 2 grouped
    std::vector<std::int64_t> pixels;
    std::vector<std::int64_t> stack;
    std::vector<std::int64_t> candidates;
};

RingStats empty_stats(int n_rings) {
    RingStats st;
    st.mean.assign(n_rings, 0.0);
    st.sigma.assign(n_rings, 0.0);
    st.threshold.assign(n_rings, std::numeric_limits<double>::infinity());
    st.brightest.assign(n_rings, -std::numeric_limits<double>::infinity());
    return st;
}

RingStats ring_statistics_impl(const FloatPixels& px, const RingLayout& layout, const PeakFinderParams& p,
                               int n_threads, Workspace& ws) {
    const int n_rings = layout.n_rings();
    RingStats st = empty_stats(n_rings);
    const auto& order = layout.order();
    ws.ring_values.resize(order.size());
    float* values = ws.ring_values.data();
    const std::int64_t n_order = static_cast<std::int64_t>(order.size());
#pragma omp parallel for schedule(static) num_threads(n_threads) if (n_threads > 1)
    for (std::int64_t j = 0; j < n_order; ++j) values[j] = px.values[order[j]];
    ParallelRun errors(nullptr, "find_peaks");
#pragma omp parallel for schedule(dynamic, 16) num_threads(n_threads) if (n_threads > 1)
    for (int k = 0; k < n_rings; ++k) {
        const std::int64_t a = layout.ring_start(k), b = layout.ring_start(k + 1);
        if (b > a)
            errors.task([&] { clip_values(values + a, b - a, p, st.mean[k], st.sigma[k], st.threshold[k], st.brightest[k]); });
    }
    errors.finish();
    return st;
}

RingStats ring_statistics_impl(const LevelPixels& px, const RingLayout& layout, const PeakFinderParams& p,
                               int n_threads, Workspace&) {
    const int n_rings = layout.n_rings();
    RingStats st = empty_stats(n_rings);
    const std::int32_t* order = layout.order().data();
    ParallelRun errors(nullptr, "find_peaks");
#pragma omp parallel for schedule(dynamic, 16) num_threads(n_threads) if (n_threads > 1)
    for (int k = 0; k < n_rings; ++k) {
        const std::int64_t a = layout.ring_start(k), b = layout.ring_start(k + 1);
        if (b > a)
            errors.task([&] { clip_levels(px, order + a, b - a, p, st.mean[k], st.sigma[k], st.threshold[k], st.brightest[k]); });
    }
    errors.finish();
    return st;
}

// Local background around pixel (row, col): unmasked non-candidate pixels
// within `radius`. Returns false when there are none.
template <class Pixels>
bool local_background(const Pixels& px, const RingLayout& layout, const std::uint8_t* state, std::int64_t row,
                      std::int64_t col, int radius, double& mean, double& sigma, double& max_value) {
    const int rows = layout.rows(), cols = layout.cols();
    const double shift = px[row * cols + col];
    double s = 0.0, s2 = 0.0;
    std::int64_t count = 0;
    max_value = -std::numeric_limits<double>::infinity();
    for (std::int64_t dr = -radius; dr <= radius; ++dr) {
        const std::int64_t r = row + dr;
        if (r < 0 || r >= rows) continue;
        for (std::int64_t dc = -radius; dc <= radius; ++dc) {
            const std::int64_t c = col + dc;
            if (c < 0 || c >= cols || dr * dr + dc * dc > static_cast<std::int64_t>(radius) * radius) continue;
            const std::int64_t i = r * cols + c;
            if (layout.ring_of(i) < 0 || state[i] != 0) continue;
            const double v = px[i];
            const double d = v - shift;
            s += d;
            s2 += d * d;
            ++count;
            max_value = std::max(max_value, v);
        }
    }
    if (count == 0) return false;
    const double m = s / count;
    mean = shift + m;
    sigma = std::sqrt(std::max(s2 / count - m * m, 0.0));
    return true;
}

// Value j of the pixels in ring order: float images have them gathered by
// the ring statistics already.
double ring_value(const FloatPixels&, const Workspace& ws, const std::int32_t*, std::int64_t j) {
    return ws.ring_values[j];
}
double ring_value(const LevelPixels& px, const Workspace&, const std::int32_t* order, std::int64_t j) {
    return px[order[j]];
}

// Candidates above their ring's threshold within the radius limits, marked in
// ws.state and listed in row-major order in ws.candidates. Only the rings
// whose brightest pixel passes are visited: in most rings of most images none
// does.
template <class Pixels>
void mark_candidates(const Pixels& px, const RingLayout& layout, const RingStats& st, const PeakFinderParams& p,
                     int n_threads, Workspace& ws) {
    const int cols = layout.cols();
    ws.state.assign(static_cast<std::size_t>(layout.rows()) * cols, 0);
    std::uint8_t* state = ws.state.data();
    const std::int32_t* order = layout.order().data();
    const double cx = layout.beam_center_x(), cy = layout.beam_center_y();
    ws.candidates.clear();
    ParallelRun errors(nullptr, "find_peaks");
#pragma omp parallel num_threads(n_threads) if (n_threads > 1)
    {
        std::vector<std::int64_t> found;
#pragma omp for schedule(dynamic, 16) nowait
        for (int k = 0; k < layout.n_rings(); ++k) {
            const double threshold = st.threshold[k];
            if (!(st.brightest[k] > threshold)) continue;
            errors.task([&] {
                for (std::int64_t j = layout.ring_start(k); j < layout.ring_start(k + 1); ++j) {
                    if (!(ring_value(px, ws, order, j) > threshold)) continue;
                    const std::int64_t i = order[j];
                    const double dx = static_cast<double>(i % cols) - cx;
                    const double dy = static_cast<double>(i / cols) - cy;
                    const double radius = std::sqrt(dx * dx + dy * dy);
                    if (radius >= p.min_radius_px && radius <= p.max_radius_px) {
                        state[i] = 1;
                        found.push_back(i);
                    }
                }
            });
        }
#pragma omp critical(diffranet_peak_candidates)
        errors.task([&] { ws.candidates.insert(ws.candidates.end(), found.begin(), found.end()); });
    }
    errors.finish();
    std::sort(ws.candidates.begin(), ws.candidates.end());
}

template <class Pixels>
std::vector<Peak> find_peaks_impl(const Pixels& px, const RingLayout& layout, const PeakFinderParams& p,
                                  int n_threads, Workspace& ws) {
    const RingStats st = ring_statistics_impl(px, layout, p, n_threads, ws);
    mark_candidates(px, layout, st, p, n_threads, ws);
    const int rows = layout.rows(), cols = layout.cols();
    std::uint8_t* state = ws.state.data();

    // Group 8-connected candidates, in row-major order of their first pixel.
    std::vector<Peak> peaks;
    const int bg_radius = 2 * p.local_bg_radius;
    for (std::int64_t start : ws.candidates) {
        if (state[start] != 1) continue;
        ws.pixels.clear();
        ws.stack.assign(1, start);
        state[start] = 2;
        while (!ws.stack.empty()) {
            const std::int64_t i = ws.stack.back();
            ws.stack.pop_back();
            ws.pixels.push_back(i);
            const std::int64_t r = i / cols, c = i % cols;
            for (std::int64_t dr = -1; dr <= 1; ++dr) {
                const std::int64_t rr = r + dr;
                if (rr < 0 || rr >= rows) continue;
                for (std::int64_t dc = -1; dc <= 1; ++dc) {
                    const std::int64_t cc = c + dc;
                    if (cc < 0 || cc >= cols) continue;
                    const std::int64_t j = rr * cols + cc;
                    if (state[j] == 1) {
                        state[j] = 2;
                        ws.stack.push_back(j);
                    }
                }
            }
        }
        const auto npix = static_cast<std::int64_t>(ws.pixels.size());
        if (npix < p.min_pixels || npix > p.max_pixels) continue;
        // The local maximum (first in row-major order among equals) anchors the background disc.
        std::sort(ws.pixels.begin(), ws.pixels.end());
        std::int64_t top = ws.pixels[0];
        for (std::int64_t i : ws.pixels)
            if (px[i] > px[top]) top = i;
        double bg_mean, bg_sigma, bg_max;
        if (!local_background(px, layout, state, top / cols, top % cols, bg_radius, bg_mean, bg_sigma, bg_max)) {
            const std::int32_t k = layout.ring_of(top);
            bg_mean = st.mean[k];
            bg_sigma = st.sigma[k];
            bg_max = -std::numeric_limits<double>::infinity();
        }
        Peak peak;
        double sx = 0.0, sy = 0.0;
        for (std::int64_t i : ws.pixels) {
            const double v = px[i] - bg_mean;
            peak.intensity += v;
            sx += v * static_cast<double>(i % cols);
            sy += v * static_cast<double>(i / cols);
        }
        peak.max_value = px[top] - bg_mean;
        if (!(peak.intensity > 0.0) || !(bg_sigma > 0.0)) continue;
        peak.snr = peak.intensity / bg_sigma;
        if (peak.snr < p.min_snr || px[top] <= bg_max) continue;
        peak.x = sx / peak.intensity;
        peak.y = sy / peak.intensity;
        peak.background = bg_mean;
        peak.sigma = bg_sigma;
        peak.n_pixels = npix;
        peaks.push_back(peak);
    }
    return peaks;
}

// Image n of a batch.
FloatPixels image_of(const float* images, std::int64_t n, std::int64_t stride) { return {images + n * stride}; }
LevelPixels image_of(const LevelPixels& images, std::int64_t n, std::int64_t stride) {
    return {images.levels + n * stride, images.table};
}

template <class Batch>
void find_peaks_batch_impl(const Batch& images, std::int64_t n_images, const RingLayout& layout,
                           const PeakFinderParams& p, std::vector<std::vector<Peak>>& out, int n_threads) {
    n_threads = resolve_threads(n_threads);
    out.assign(static_cast<std::size_t>(n_images), {});
    const std::int64_t stride = static_cast<std::int64_t>(layout.rows()) * layout.cols();
    if (n_images == 1 || n_threads == 1) {
        Workspace ws;
        for (std::int64_t n = 0; n < n_images; ++n)
            out[n] = find_peaks_impl(image_of(images, n, stride), layout, p, n_threads, ws);
        return;
    }
    ParallelRun errors(nullptr, "find_peaks_batch");
#pragma omp parallel num_threads(n_threads)
    {
        Workspace ws;
#pragma omp for schedule(dynamic, 1)
        for (std::int64_t n = 0; n < n_images; ++n)
            errors.task([&] { out[n] = find_peaks_impl(image_of(images, n, stride), layout, p, 1, ws); });
    }
    errors.finish();
}

}  // namespace

RingStats ring_statistics(const float* image, const RingLayout& layout, const PeakFinderParams& p, int n_threads) {
    Workspace ws;
    return ring_statistics_impl(FloatPixels{image}, layout, p, resolve_threads(n_threads), ws);
}

void find_peaks_batch(const float* images, std::int64_t n_images, const RingLayout& layout,
                      const PeakFinderParams& p, std::vector<std::vector<Peak>>& out, int n_threads) {
    find_peaks_batch_impl(images, n_images, layout, p, out, n_threads);
}

void find_peaks_batch(const std::uint8_t* levels, const float* level_values, std::int64_t n_images,
                      const RingLayout& layout, const PeakFinderParams& p, std::vector<std::vector<Peak>>& out,
                      int n_threads) {
    find_peaks_batch_impl(LevelPixels{levels, level_values}, n_images, layout, p, out, n_threads);
}

}  // namespace diffranet
