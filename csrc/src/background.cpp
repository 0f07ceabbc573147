#include "diffranet/background.hpp"

#include <algorithm>
#include <stdexcept>
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

namespace {

// The samples of pixel row `row`, in the order the renderers sum them.
void fill_row(const SubpixelSampler& sampler, int row, int cols, BackgroundSamples::Sample* out) {
    const std::vector<Source>& sources = sampler.sources();
    for (int col = 0; col < cols; ++col)
        sampler.visit_samples(row, col, [&](int j, double weight, const Vec3& d) {
            *out++ = {weight, 0.5 * norm(d - sources[j].direction)};
        });
}

}  // namespace

BackgroundSamples::BackgroundSamples(const DetectorGeometry& detector, const BeamParams& beam, int n_threads)
    : detector_(detector),
      beam_(beam),
      row_size_(static_cast<std::size_t>(detector.oversample) * detector.oversample * beam.sources.size() *
                detector.cols),
      samples_(row_size_ * detector.rows) {
    detector_.directions = nullptr;  // a borrowed cache: the samples hold the values it gave
    const SubpixelSampler sampler(detector_, beam_);
#pragma omp parallel for schedule(static) num_threads(resolve_threads(n_threads))
    for (int row = 0; row < detector_.rows; ++row)
        fill_row(sampler, row, detector_.cols, samples_.data() + static_cast<std::size_t>(row) * row_size_);
}

bool BackgroundSamples::matches(const DetectorGeometry& det, const BeamParams& beam) const {
    if (!same_geometry(det, detector_) || beam.polarization_fraction != beam_.polarization_fraction ||
        !(beam.polarization_axis == beam_.polarization_axis) || beam.sources.size() != beam_.sources.size())
        return false;
    for (std::size_t j = 0; j < beam.sources.size(); ++j)
        if (!(beam.sources[j].direction == beam_.sources[j].direction) ||
            beam.sources[j].weight != beam_.sources[j].weight)
            return false;
    return true;
}

void render_background(const BackgroundProblem& p, float* image, int n_threads, const RunControl* control,
                       const BackgroundSamples* samples) {
    const DetectorGeometry& det = p.detector;
    if (samples != nullptr && !samples->matches(det, p.beam))
        throw std::invalid_argument("samples: computed for another detector geometry, oversample or beam direction");
    const int n = det.oversample;
    const std::vector<Source>& sources = p.beam.sources;
    const std::size_t n_sources = sources.size(), per_pixel = static_cast<std::size_t>(n) * n * n_sources;
    // r_e^2 (m^2) * fluence (photons/m^2) / subpixels: the mean over subpixels
    // and the weighted sum over sources below give photons per pixel.
    const double scale = kElectronRadiusSq_m2 * p.beam.fluence_photons_per_m2 / (static_cast<double>(n) * n);
    const SubpixelSampler sampler(det, p.beam);
    ParallelRun run(control, "background");

#pragma omp parallel for schedule(dynamic, 1) num_threads(resolve_threads(n_threads))
    for (int row = 0; row < det.rows; ++row) {
        run.task([&] {
            const BackgroundSamples::Sample* row_samples;
            std::vector<BackgroundSamples::Sample> computed;
            if (samples != nullptr) {
                row_samples = samples->row(row);
            } else {
                computed.resize(per_pixel * det.cols);
                fill_row(sampler, row, det.cols, computed.data());
                row_samples = computed.data();
            }
            for (int col = 0; col < det.cols; ++col) {
                if (col % 64 == 0) {  // rows of large, finely sampled detectors are long
                    if (run.stopped()) return;
                    run.poll();
                }
                const BackgroundSamples::Sample* s = row_samples + per_pixel * col;
                double pixel_sum = 0.0;
                for (std::size_t k = 0; k < per_pixel; k += n_sources) {  // subpixels
                    for (std::size_t j = 0; j < n_sources; ++j) {
                        // sin(theta)/lambda is half the length of the scattering vector
                        const double stol = s[k + j].half_q / sources[j].wavelength_A;
                        double per_molecule = 0.0;
                        for (const AmorphousMaterial& material : p.materials) per_molecule += material.intensity(stol);
                        pixel_sum += s[k + j].weight * per_molecule;
                    }
                }
                image[static_cast<long long>(row) * det.cols + col] = static_cast<float>(scale * pixel_sum);
            }
        });
    }
    run.finish();
}

}  // namespace diffranet
