#include "diffranet/background.hpp"

#include <algorithm>
#include <utility>

#include "diffranet/constants.hpp"
#include "diffranet/detector.hpp"
#include "diffranet/subpixel.hpp"
#include "diffranet/threads.hpp"

namespace diffranet {

namespace {

// Where `at` falls in the strictly increasing table x: index i and weight t such
// that linear interpolation of y is y[i] + t (y[i+1] - y[i]); held at the end
// values outside [x0, xn] (t = 0 there).
struct Bracket {
    std::size_t i;
    double t;
};

Bracket bracket(const std::vector<double>& x, double at) {
    if (at <= x.front()) return {0, 0.0};
    if (at >= x.back()) return {x.size() - 1, 0.0};
    const std::size_t i = static_cast<std::size_t>(std::upper_bound(x.begin(), x.end(), at) - x.begin()) - 1;
    return {i, (at - x[i]) / (x[i + 1] - x[i])};
}

double interpolate(const std::vector<double>& y, const Bracket& b) {
    return b.t == 0.0 ? y[b.i] : y[b.i] + b.t * (y[b.i + 1] - y[b.i]);
}

}  // namespace

AmorphousMaterial::AmorphousMaterial(std::vector<double> stol_per_A, std::vector<double> structure_factor,
                                     std::vector<double> incoherent, double molecules)
    : stol_(std::move(stol_per_A)),
      f_(std::move(structure_factor)),
      s_(std::move(incoherent)),
      molecules_(molecules) {}

double AmorphousMaterial::intensity(double stol_per_A) const {
    const Bracket b = bracket(stol_, stol_per_A);
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
