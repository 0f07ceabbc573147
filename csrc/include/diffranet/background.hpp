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

// The part of the background sum that depends only on where the detector is and
// how the beam comes in (its source directions, weights and polarisation; not
// its wavelengths or fluence): for every subpixel s and source j, the weight
// w_j Omega(s) P_j(s) and h = |d_s - s0_j| / 2, so that s = sin(theta)/lambda =
// h / lambda_j. One set serves every shot of a data set taken on one detector.
//
// Samples are stored pixel by pixel, in the order the renderers sum them
// (subpixel row, subpixel column, source), so that a pixel's sum adds the same
// terms in the same order whether the samples were cached or computed per row.
class BackgroundSamples {
  public:
    struct Sample {
        double weight;      // w_j Omega P_j
        double half_q;      // |d - s0_j| / 2 (sin(theta), dimensionless)
    };

    // Samples of the whole detector (n_threads <= 0: the OpenMP default).
    BackgroundSamples(const DetectorGeometry& detector, const BeamParams& beam, int n_threads);

    // Whether these samples are those of `detector` and `beam`: exactly the same
    // geometry and sources (wavelengths and fluence may differ).
    bool matches(const DetectorGeometry& detector, const BeamParams& beam) const;

    // The samples of pixel row `row` (cols x oversample^2 x sources).
    const Sample* row(int row) const { return samples_.data() + static_cast<std::size_t>(row) * row_size_; }
    std::size_t nbytes() const { return samples_.size() * sizeof(Sample); }

  private:
    DetectorGeometry detector_;
    BeamParams beam_;
    std::size_t row_size_;  // samples per pixel row
    std::vector<Sample> samples_;
};

// Output: rows * cols float32 expected photons per pixel, row-major. Each pixel
// is computed by one thread, so the image does not depend on n_threads
// (<= 0: the OpenMP default). `samples` (optional) are the problem's
// BackgroundSamples, computed earlier; without them each row's samples are
// computed as it is rendered. The image is the same either way. `control`
// (optional) lets the caller stop the render (it then throws Cancelled); an
// exception in any thread is rethrown from the calling thread.
void render_background(const BackgroundProblem& problem, float* image, int n_threads,
                       const RunControl* control = nullptr, const BackgroundSamples* samples = nullptr);

}  // namespace diffranet
