// Mosaic domains: small crystal blocks misoriented from the mean orientation
// (Darwin 1922). Each domain's rotation is drawn from a counter-based
// generator keyed by (seed, domain index), so a domain's orientation does not
// depend on how many domains are drawn or on the number of threads.
#pragma once

#include <cstdint>
#include <vector>

#include "diffranet/vec3.hpp"

namespace diffranet {

enum class MosaicDistribution : int {
    // rotation vectors uniform in a ball whose diameter is the spread (the paper's top-hat)
    kTophat = 0,
    // rotation vectors isotropic normal, RMS per axis = spread / 2
    kGauss = 1,
};

std::vector<Mat3> mosaic_rotations(int n_domains, double spread_rad, MosaicDistribution distribution,
                                   std::uint64_t seed);

}  // namespace diffranet
