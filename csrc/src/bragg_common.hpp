// Pieces shared by the two Bragg renderers (private to the core).
#pragma once

#include <cmath>
#include <vector>

#include "diffranet/bragg.hpp"
#include "diffranet/constants.hpp"
#include "diffranet/lattice.hpp"
#include "diffranet/threads.hpp"

namespace diffranet {

// Real-space basis (rows a, b, c in Angstrom) of every mosaic domain: each domain
// rotates the reference crystal's cell vectors in the lab frame.
inline std::vector<Mat3> domain_bases(const CrystalParams& crystal) {
    std::vector<Mat3> bases;
    bases.reserve(crystal.domain_rotations.size());
    for (const Mat3& rot : crystal.domain_rotations)
        bases.push_back(crystal.real_basis_A * rot.transposed());
    return bases;
}

// Photons per unit of <Omega P |F|^2 |F_latt|^2> summed over subpixels and domains.
inline double photon_scale(const BraggProblem& p) {
    const double n_sub = static_cast<double>(p.detector.oversample) * p.detector.oversample;
    const double n_domains = static_cast<double>(p.crystal.domain_rotations.size());
    return kElectronRadiusSq_m2 * p.beam.fluence_photons_per_m2 / (n_sub * n_domains);
}

// ceil() for |x| < 2^31 without a libm call (baseline x86-64 has no SSE4.1 round).
inline double fast_ceil(double x) {
    const double t = static_cast<double>(static_cast<long long>(x));
    return t < x ? t + 1.0 : t;
}
inline double fast_floor(double x) {
    const double t = static_cast<double>(static_cast<long long>(x));
    return t > x ? t - 1.0 : t;
}

// Nearest lattice point, rounding halves up as nanoBragg does: ceil(x - 0.5).
inline double nearest_index(double x) { return fast_ceil(x - 0.5); }

// |F_latt|^2 of the compact and round shapes at offsets (dh, dk, dl) from the
// nearest lattice point (the one expression both renderers evaluate).
template <SpotShape kShape>
inline double offset_intensity(double dh, double dk, double dl, double na, double nb, double nc) {
    const double sh = dh * na, sk = dk * nb, sl = dl * nc;
    const double f = compact_lattice_amplitude<kShape>(sh * sh + sk * sk + sl * sl, na * nb * nc);
    return f * f;
}

// |F_latt|^2 at fractional indices (h, k, l) for any shape.
template <SpotShape kShape>
inline double lattice_intensity(double h, double k, double l, double na, double nb, double nc) {
    if constexpr (kShape == SpotShape::kSinc) {
        return grating_intensity(h, na) * grating_intensity(k, nb) * grating_intensity(l, nc);
    } else {
        return offset_intensity<kShape>(h - nearest_index(h), k - nearest_index(k), l - nearest_index(l), na, nb, nc);
    }
}

}  // namespace diffranet
