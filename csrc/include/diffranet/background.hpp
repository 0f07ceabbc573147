// Background from amorphous scatterers (liquid, gas, disordered crystal) onto a
// flat detector: the "nonBragg" model of Holton et al. (2014), supplement.
//
// Expected photons in a pixel:
//   I = r_e^2 * fluence * sum_m N_m < Omega * P * (F_m(s)^2 + S_m(s)) >
// averaged over the pixel's subpixels and the beam's sources (by weight), in
// exactly the way the Bragg renderer averages, where for material m
//   N_m  molecules illuminated by the beam,
//   F_m  its molecular structure factor (electrons) at s = sin(theta)/lambda,
//   S_m  its incoherent (Compton) scattering function per molecule (electrons;
//        all zeros when Compton scattering is off),
// both interpolated linearly in s and held at their end values outside the table,
// and s = |d - s0| / (2 lambda) for diffracted unit vector d and beam direction s0.
#pragma once

#include <cstddef>
#include <vector>

#include "diffranet/parallel.hpp"
#include "diffranet/params.hpp"

namespace diffranet {

// One amorphous material: tables on a strictly increasing grid of sin(theta)/lambda.
class AmorphousMaterial {
  public:
    AmorphousMaterial(std::vector<double> stol_per_A, std::vector<double> structure_factor,
                      std::vector<double> incoherent, double molecules);

    // N * (F(s)^2 + S(s)): photons per unit r_e^2 * fluence * Omega * P.
    double intensity(double stol_per_A) const;

  private:
    // Index i with stol_[i] <= s < stol_[i + 1], for s strictly inside the table.
    std::size_t lower_index(double s) const;

    std::vector<double> stol_;
    std::vector<double> f_;
    std::vector<double> s_;
    double molecules_;
    // A uniform grid over the table's range: cell c holds the lower index of its
    // left edge, so a lookup starts next to its answer (O(1) instead of a
    // binary search per pixel).
    std::vector<std::size_t> cell_start_;
    double inv_cell_width_ = 0.0;
};

struct BackgroundProblem {
    DetectorGeometry detector;
    BeamParams beam;
    std::vector<AmorphousMaterial> materials;
};

// Output: rows * cols float32 expected photons per pixel, row-major. Each pixel
// is computed by one thread, so the image does not depend on n_threads
// (<= 0: the OpenMP default). `control` (optional) lets the caller stop the
// render (it then throws Cancelled); an exception in any thread is rethrown
// from the calling thread.
void render_background(const BackgroundProblem& problem, float* image, int n_threads,
                       const RunControl* control = nullptr);

}  // namespace diffranet
