#include "diffranet/mosaic.hpp"

#include <cmath>

#include "diffranet/rng.hpp"

namespace diffranet {

namespace {

// Uniform direction on the unit sphere (Marsaglia's z-phi method).
Vec3 random_unit_vector(CounterRng& rng) {
    const double z = 2.0 * rng.uniform() - 1.0;
    const double phi = 2.0 * kPi * rng.uniform();
    const double r = std::sqrt(1.0 - z * z);
    return {r * std::cos(phi), r * std::sin(phi), z};
}

Vec3 draw_rotation_vector(CounterRng& rng, double spread_rad, MosaicDistribution distribution) {
    if (distribution == MosaicDistribution::kGauss) {
        const double sigma = 0.5 * spread_rad;
        return Vec3{rng.normal(), rng.normal(), rng.normal()} * sigma;
    }
    // Uniform in a ball of radius spread/2: the radius has density ~ r^2.
    const double radius = 0.5 * spread_rad * std::cbrt(rng.uniform());
    return random_unit_vector(rng) * radius;
}

}  // namespace

std::vector<Mat3> mosaic_rotations(int n_domains, double spread_rad, MosaicDistribution distribution,
                                   std::uint64_t seed) {
    std::vector<Mat3> rotations(n_domains);
    for (int d = 0; d < n_domains; ++d) {
        if (spread_rad == 0.0) continue;  // identity
        CounterRng rng(seed, Stream::kMosaic, static_cast<std::uint64_t>(d));
        rotations[d] = rotation_from_vector(draw_rotation_vector(rng, spread_rad, distribution));
    }
    return rotations;
}

}  // namespace diffranet
