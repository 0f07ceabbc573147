#include "diffranet/background.hpp"

#include <algorithm>
#include <utility>

#include "diffranet/constants.hpp"
#include "diffranet/detector.hpp"
#include "diffranet/subpixel.hpp"
#include "diffranet/threads.hpp"

namespace diffranet {

namespace {

// Where a value falls in a table: index i and weight t such that linear
// interpolation of y is y[i] + t (y[i+1] - y[i]).
struct Bracket {
    std::size_t i;
    double t;
};

double interpolate(const std::vector<double>& y, const Bracket& b) {
    return b.t == 0.0 ? y[b.i] : y[b.i] + b.t * (y[b.i + 1] - y[b.i]);
}

}  // namespace

AmorphousMaterial::AmorphousMaterial(std::vector<double> stol_per_A, std::vector<double> structure_factor,
                                     std::vector<double> incoherent, double molecules)
    : stol_(std::move(stol_per_A)),
      f_(std::move(structure_factor)),
      s_(std::move(incoherent)),
      molecules_(molecules) {
    if (stol_.size() < 2) return;
    const std::size_t n_cells = 4 * stol_.size();
    inv_cell_width_ = static_cast<double>(n_cells) / (stol_.back() - stol_.front());
    cell_start_.resize(n_cells);
    std::size_t i = 0;
    for (std::size_t c = 0; c < n_cells; ++c) {
        const double left = stol_.front() + static_cast<double>(c) / inv_cell_width_;
        while (i + 2 < stol_.size() && stol_[i + 1] <= left) ++i;
        cell_start_[c] = i;
    }
}

std::size_t AmorphousMaterial::lower_index(double s) const {
    const std::size_t cell = std::min(cell_start_.size() - 1,
                                      static_cast<std::size_t>((s - stol_.front()) * inv_cell_width_));
    std::size_t i = cell_start_[cell];
    // the cell's left edge is at or below s, up to rounding: step either way
    while (i > 0 && stol_[i] > s) --i;
    while (stol_[i + 1] <= s) ++i;
    return i;
}

double AmorphousMaterial::intensity(double stol_per_A) const {
    // held at the end values outside the table
    Bracket b{0, 0.0};
    if (stol_per_A >= stol_.back()) {
        b.i = stol_.size() - 1;
    } else if (stol_per_A > stol_.front()) {
        b.i = lower_index(stol_per_A);
        b.t = (stol_per_A - stol_[b.i]) / (stol_[b.i + 1] - stol_[b.i]);
    }
    const double f = interpolate(f_, b);
    return molecules_ * (f * f + interpolate(s_, b));
}

void render_background(const BackgroundProblem& p, float* image, int n_threads, const RunControl* control) {
    const DetectorGeometry& det = p.detector;
    const int n = det.oversample;
    // r_e^2 (m^2) * fluence (photons/m^2) / subpixels: the mean over subpixels
    // and the weighted sum over sources below give photons per pixel.
    const double scale = kElectronRadiusSq_m2 * p.beam.fluence_photons_per_m2 / (static_cast<double>(n) * n);
    const SubpixelSampler sampler(det, p.beam);
    ParallelRun run(control, "background");

#pragma omp parallel for schedule(dynamic, 1) num_threads(resolve_threads(n_threads))
    for (int row = 0; row < det.rows; ++row) {
        run.task([&] {
            for (int col = 0; col < det.cols; ++col) {
                if (col % 64 == 0) {  // rows of large, finely sampled detectors are long
                    if (run.stopped()) return;
                    run.poll();
                }
                const double pixel_sum = sampler.pixel_sum(row, col, [&](int j, const Vec3& diffracted) {
                    const Source& src = p.beam.sources[j];
                    // sin(theta)/lambda is half the length of the scattering vector
                    const double stol = 0.5 * norm(diffracted - src.direction) / src.wavelength_A;
                    double per_molecule = 0.0;
                    for (const AmorphousMaterial& material : p.materials) per_molecule += material.intensity(stol);
                    return per_molecule;
                });
                image[static_cast<long long>(row) * det.cols + col] = static_cast<float>(scale * pixel_sum);
            }
        });
    }
    run.finish();
}

}  // namespace diffranet
