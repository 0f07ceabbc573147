// Random parts of the detector response: shot-to-shot fluence, Poisson photon
// counting, per-pixel calibration error and read-out noise. Each pixel draws
// from its own counter-based generator keyed by its detector position, so the
// loops parallelise over rows with no shared state.
#include <algorithm>
#include <array>
#include <cmath>

#include "diffranet/constants.hpp"
#include "diffranet/parallel.hpp"
#include "diffranet/response.hpp"
#include "diffranet/rng.hpp"

namespace diffranet {

namespace {

bool masked(const ImageTile& tile, std::int64_t i) { return tile.mask != nullptr && tile.mask[i] != 0; }

// log(k!) for whole k >= 0: a table below 16, Stirling's series above (its
// truncation error is below 1/(1680 k^7) < 1e-11 there). std::lgamma is
// avoided because it writes the global signgam, which threads would share.
double log_factorial(double k) {
    static const std::array<double, 16> table = [] {
        std::array<double, 16> t{};
        double acc = 0.0;
        for (int i = 1; i < 16; ++i) t[i] = acc += std::log(static_cast<double>(i));
        return t;
    }();
    if (k < 16.0) return table[static_cast<int>(k)];
    const double inv = 1.0 / k;
    const double inv2 = inv * inv;
    return (k + 0.5) * std::log(k) - k + 0.91893853320467274178 /* log(2 pi) / 2 */ +
           inv * (1.0 / 12.0 - inv2 * (1.0 / 360.0 - inv2 / 1260.0));
}

// Below this mean, sequential inversion (about mu + 1 steps); above, PTRS.
constexpr double kInversionLimit = 10.0;

// Exact inversion: walk the cumulative distribution from k = 0 until it
// passes one uniform deviate. The loop also stops if the probability
// underflows, so a uniform within rounding of 1 cannot loop forever.
double poisson_inversion(double mu, CounterRng& rng) {
    const double u = rng.uniform();
    double pmf = std::exp(-mu);
    double cdf = pmf;
    double k = 0.0;
    while (u > cdf && pmf > 0.0) {
        k += 1.0;
        pmf *= mu / k;
        cdf += pmf;
    }
    return k;
}

// PTRS, Hoermann's transformed rejection with squeeze (W. Hoermann 1993,
// Insurance: Mathematics and Economics 12, 39-45, doi:10.1016/0167-6687(93)90997-4):
// a transformed-uniform proposal, a quick-acceptance region, and an exact
// acceptance test against the Poisson probability. Exact for mu >= 10, with
// a cost (two uniforms per proposal, few rejections) independent of the mean.
double poisson_ptrs(double mu, CounterRng& rng) {
    const double b = 0.931 + 2.53 * std::sqrt(mu);
    const double a = -0.059 + 0.02483 * b;
    const double inv_alpha = 1.1239 + 1.1328 / (b - 3.4);
    const double v_r = 0.9277 - 3.6224 / (b - 2.0);
    for (;;) {
        const double u = rng.uniform() - 0.5;
        const double v = rng.uniform();
        const double us = 0.5 - std::fabs(u);
        const double k = std::floor((2.0 * a / us + b) * u + mu + 0.43);
        if (us >= 0.07 && v <= v_r) return k;
        if (k < 0.0 || (us < 0.013 && v > us)) continue;
        // the exact test, for the proposals outside the quick-acceptance region
        if (std::log(v * inv_alpha / (a / (us * us) + b)) <= -mu + k * std::log(mu) - log_factorial(k)) return k;
    }
}

}  // namespace

double poisson_deviate(double mu, CounterRng& rng) {
    if (mu <= 0.0) return 0.0;
    return mu < kInversionLimit ? poisson_inversion(mu, rng) : poisson_ptrs(mu, rng);
}

double flicker_factor(std::uint64_t seed, double rms) {
    if (rms <= 0.0) return 1.0;
    CounterRng rng(seed, Stream::kFlicker, 0);
    return std::max(0.0, 1.0 + rms * rng.normal());
}

void poisson_image(const float* expected, const ImageTile& tile, double scale, std::uint64_t seed, float* out,
                   int n_threads) {
    ParallelRun errors(nullptr, "poisson");
#pragma omp parallel for schedule(static) num_threads(resolve_threads(n_threads))
    for (int r = 0; r < tile.rows; ++r) {
        errors.task([&] {
            for (int c = 0; c < tile.cols; ++c) {
                const std::int64_t i = static_cast<std::int64_t>(r) * tile.cols + c;
                const double mu = scale * static_cast<double>(expected[i]);
                if (masked(tile, i) || mu <= 0.0) {
                    out[i] = 0.0f;
                    continue;
                }
                CounterRng rng(seed, Stream::kPoisson, pixel_key(tile.row0 + r, tile.col0 + c));
                out[i] = static_cast<float>(poisson_deviate(mu, rng));
            }
        });
    }
    errors.finish();
}

void ccd_readout(const float* counts, const float* gain, const ImageTile& tile, const ReadoutParams& p,
                 std::uint64_t seed, float* out, int n_threads) {
    ParallelRun errors(nullptr, "ccd_readout");
#pragma omp parallel for schedule(static) num_threads(resolve_threads(n_threads))
    for (int r = 0; r < tile.rows; ++r) {
        errors.task([&] {
            const std::int64_t row = tile.row0 + r;
            for (int c = 0; c < tile.cols;) {
                // Box-Muller gives two independent normals: the read-out noise of
                // detector columns 2m and 2m + 1 comes from the draw keyed by (row, m)
                const std::int64_t col = tile.col0 + c;
                const int first = static_cast<int>(col & 1);
                const int count = (first == 0 && c + 1 < tile.cols) ? 2 : 1;
                double z[2] = {0.0, 0.0};
                if (p.readout_rms > 0.0) {
                    CounterRng noise(seed, Stream::kReadout, pixel_key(row, col >> 1));
                    const double radius = std::sqrt(-2.0 * std::log(noise.uniform()));
                    const double angle = 2.0 * kPi * noise.uniform();
                    z[0] = radius * std::cos(angle);
                    z[1] = radius * std::sin(angle);
                }
                for (int j = 0; j < count; ++j, ++c) {
                    const std::int64_t i = static_cast<std::int64_t>(r) * tile.cols + c;
                    if (masked(tile, i)) {
                        out[i] = 0.0f;
                        continue;
                    }
                    const double photons = static_cast<double>(counts[i]);
                    double adu = gain != nullptr ? photons * gain[i] : photons;
                    adu += p.readout_rms * z[first + j];
                    adu = std::floor(adu + p.adc_offset + 0.5);  // the ADC digitises to whole units
                    out[i] = static_cast<float>(std::min(p.saturation, std::max(0.0, adu)));
                }
            }
        });
    }
    errors.finish();
}

void calibration_map(const ImageTile& tile, double calibration_rms, std::uint64_t calibration_seed, float* out,
                     int n_threads) {
    ParallelRun errors(nullptr, "calibration_map");
#pragma omp parallel for schedule(static) num_threads(resolve_threads(n_threads))
    for (int r = 0; r < tile.rows; ++r) {
        errors.task([&] {
            for (int c = 0; c < tile.cols; ++c) {
                const std::int64_t i = static_cast<std::int64_t>(r) * tile.cols + c;
                CounterRng gain(calibration_seed, Stream::kCalibration, pixel_key(tile.row0 + r, tile.col0 + c));
                out[i] = static_cast<float>(1.0 + calibration_rms * gain.normal());
            }
        });
    }
    errors.finish();
}

void clip_counts(const float* counts, const ImageTile& tile, double saturation, float* out, int n_threads) {
    const float top = static_cast<float>(saturation);
    ParallelRun errors(nullptr, "clip_counts");
#pragma omp parallel for schedule(static) num_threads(resolve_threads(n_threads))
    for (int r = 0; r < tile.rows; ++r) {
        errors.task([&] {
            for (int c = 0; c < tile.cols; ++c) {
                const std::int64_t i = static_cast<std::int64_t>(r) * tile.cols + c;
                out[i] = masked(tile, i) ? 0.0f : std::min(top, std::max(0.0f, counts[i]));
            }
        });
    }
    errors.finish();
}

}  // namespace diffranet
