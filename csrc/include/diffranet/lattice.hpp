// Lattice transforms |F_latt|: the interference of Na x Nb x Nc unit cells
// as a function of fractional Miller indices (h, k, l).
// Forms follow nanoBragg (Holton et al. 2014), with the tophat normalised as in
// cctbx simtbx: its integral over one reciprocal cell equals the sinc's.
#pragma once

#include <cmath>

#include "diffranet/constants.hpp"

namespace diffranet {

enum class SpotShape : int { kSinc = 0, kTophat = 1, kGauss = 2, kRound = 3 };

// Squared radius, in units of the spot size, below which the tophat is 1:
// 0.3969 = 0.63^2 makes its FWHM match the sinc's (nanoBragg -tophat_spots).
constexpr double kTophatRadiusSq = 0.3969;

// The gauss form exp(-r^2/0.63) is truncated where its intensity falls below
// exp(-2*4/0.63) ~ 3e-6 of the peak, so that spots are compact and the
// reflection-centric renderer gives the same image as the per-pixel loop.
constexpr double kGaussRadiusSq = 4.0;

// Tophat amplitude per unit N: integral over one reciprocal cell of
// |F_latt|^2 is N for the sinc; for a sphere of radius 0.63 in N-scaled
// units it is N * (4/3) pi 0.63^3, hence 1 / sqrt(4/3 pi 0.63^3).
constexpr double kTophatAmplitudeScale = 0.9771131794834488;

// x - round(x), without a libm call so that loops over domains vectorise
// (adding and subtracting 1.5 * 2^52 rounds to the nearest integer; |x| < 2^51).
inline double fractional_offset(double x) {
    constexpr double kRound = 6755399441055744.0;
    return x - ((x + kRound) - kRound);
}

// sin(pi r)^2 for |r| <= 1/2, by its Taylor series to (pi r)^23: the first
// omitted term is below 2e-17, so this is as accurate as libm's sin.
inline double sin_pi_sq(double r) {
    const double x = kPi * r, x2 = x * x;
    double p = -1.0 / 25852016738884976640000.0;  // -1/23!
    p = p * x2 + 1.0 / 51090942171709440000.0;     // 1/21!
    p = p * x2 - 1.0 / 121645100408832000.0;       // -1/19!
    p = p * x2 + 1.0 / 355687428096000.0;          // 1/17!
    p = p * x2 - 1.0 / 1307674368000.0;            // -1/15!
    p = p * x2 + 1.0 / 6227020800.0;               // 1/13!
    p = p * x2 - 1.0 / 39916800.0;                 // -1/11!
    p = p * x2 + 1.0 / 362880.0;                   // 1/9!
    p = p * x2 - 1.0 / 5040.0;                     // -1/7!
    p = p * x2 + 1.0 / 120.0;                      // 1/5!
    p = p * x2 - 1.0 / 6.0;                        // -1/3!
    p = p * x2 + 1.0;
    const double s = x * p;
    return s * s;
}

// (sin(N pi h) / sin(pi h))^2, the 1-D grating function (Fraunhofer), N^2 at
// the lattice points. Both sines are periodic up to sign, so only the
// fractional parts of h and N h matter (and no precision is lost at large h).
inline double grating_intensity(double h, double n) {
    const double denominator = sin_pi_sq(fractional_offset(h));
    if (denominator < 1e-24) return n * n;  // |sin(pi h)| < 1e-12: the limit
    return sin_pi_sq(fractional_offset(n * h)) / denominator;
}

// 3 (sin x - x cos x) / x^3: the transform of a uniform sphere.
inline double sinc3(double x) {
    if (std::fabs(x) < 1e-6) return 1.0;
    return 3.0 * (std::sin(x) / x - std::cos(x)) / (x * x);
}

// Whether a shape vanishes outside a bounded region (rasterised per reflection).
inline bool is_compact(SpotShape shape) {
    return shape == SpotShape::kTophat || shape == SpotShape::kGauss;
}

inline double compact_radius_sq(SpotShape shape) {
    return shape == SpotShape::kTophat ? kTophatRadiusSq : kGaussRadiusSq;
}

// |F_latt| at fractional index offsets (dh, dk, dl) from the nearest lattice
// point, for the compact and round shapes (which depend only on the offsets).
// n_total = Na * Nb * Nc; r2 = (dh Na)^2 + (dk Nb)^2 + (dl Nc)^2. The compact
// shapes use a 0/1 factor instead of a branch, so loops over spots and domains
// stay branch-free and vectorise.
template <SpotShape kShape>
inline double compact_lattice_amplitude(double r2, double n_total) {
    static_assert(kShape != SpotShape::kSinc, "the sinc depends on h, k, l, not on the offsets alone");
    if constexpr (kShape == SpotShape::kTophat) {
        return n_total * kTophatAmplitudeScale * static_cast<double>(r2 < kTophatRadiusSq);
    } else if constexpr (kShape == SpotShape::kGauss) {
        return n_total * std::exp(-r2 / 0.63) * static_cast<double>(r2 < kGaussRadiusSq);
    } else {
        // nanoBragg's "round": a sphere transform, 0.7236 matches its FWHM to the sinc
        return n_total * 0.723601254558268 * sinc3(kPi * std::sqrt(r2));
    }
}

}  // namespace diffranet
