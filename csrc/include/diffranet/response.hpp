// Detector response: what a detector records given the expected number of
// X-ray photons on each pixel (the output of the Bragg and background
// renderers). Two detector models are built from these pieces:
//
//   fiber-coupled CCD (the DiffraNet paper, Appendix A), in this order:
//     shot-to-shot fluence (flicker) -> Poisson photon counting ->
//     point-spread function -> per-pixel calibration error ->
//     read-out noise -> ADC offset -> digitise and clip at saturation;
//   photon-counting pixel array (Pilatus, Eiger, Jungfrau-like):
//     Poisson photon counting -> clip at the counter's saturation.
//
// Images are row-major float32, rows x cols. Every random draw is a pure
// function of (seed, stream, pixel key) with the key built from the pixel's
// position on the whole detector (pixel_key), so an image is the same for
// any number of threads and a tile of the detector gets exactly the noise
// of the same pixels in the whole image.
//
// The kernels check nothing: the Python layer (diffranet.simulation.response)
// validates and the bindings check every array's dtype, layout and shape.
// Each parallel region catches what its work throws and rethrows it after
// the region (diffranet/parallel.hpp).
#pragma once

#include <cstdint>
#include <vector>

#include "diffranet/rng.hpp"

#include "diffranet/threads.hpp"

namespace diffranet {

// Counter key of the pixel at (row, col) of the whole detector.
inline std::uint64_t pixel_key(std::int64_t row, std::int64_t col) {
    return (static_cast<std::uint64_t>(row) << 32) ^ static_cast<std::uint64_t>(col);
}

// Position of an image (or tile) on the whole detector and its pixel mask.
struct ImageTile {
    int rows = 0;
    int cols = 0;
    std::int64_t row0 = 0;               // detector row of the tile's first row
    std::int64_t col0 = 0;               // detector column of the tile's first column
    const std::uint8_t* mask = nullptr;  // rows x cols, nonzero = records nothing; may be null
};

// ---- noise.cpp ------------------------------------------------------------

// Shot-to-shot fluence factor max(0, 1 + rms * z), z standard normal drawn
// from (seed, kFlicker, 0): one factor per image.
double flicker_factor(std::uint64_t seed, double rms);

// One Poisson deviate of mean mu >= 0: exact for every mean (sequential
// inversion below mu = 10, Hoermann's PTRS transformed rejection above).
// `rng` supplies the uniforms.
double poisson_deviate(double mu, CounterRng& rng);

// out = Poisson(scale * expected) for each pixel, 0 where masked.
void poisson_image(const float* expected, const ImageTile& tile, double scale, std::uint64_t seed, float* out,
                   int n_threads);

// Fiber-coupled CCD read-out of photon counts `counts` into `out` (which may
// be `counts` itself):
//   adu = counts * gain + readout_rms * z_read + adc_offset,
// rounded to the nearest integer and clipped to [0, saturation]; masked
// pixels become 0. `gain` is the detector's calibration map (see
// calibration_map; null means 1 everywhere); z_read is new for every image:
// detector columns 2m and 2m + 1 of a row take the two normals of one
// Box-Muller draw from (seed, kReadout, pixel_key(row, m)).
struct ReadoutParams {
    double readout_rms = 0.0;     // photons (ADU, one ADU per photon)
    double adc_offset = 0.0;      // ADU
    double saturation = 65025.0;  // ADU
};
void ccd_readout(const float* counts, const float* gain, const ImageTile& tile, const ReadoutParams& p,
                 std::uint64_t seed, float* out, int n_threads);

// Per-pixel calibration factors 1 + calibration_rms * z_cal, z_cal drawn
// from (calibration_seed, kCalibration, key): the same for every image of a
// detector, whatever the image seed.
void calibration_map(const ImageTile& tile, double calibration_rms, std::uint64_t calibration_seed, float* out,
                     int n_threads);

// out = counts clipped to [0, saturation], 0 where masked (`out` may be `counts`).
void clip_counts(const float* counts, const ImageTile& tile, double saturation, float* out, int n_threads);

// ---- psf.cpp --------------------------------------------------------------

// Separable convolution with a symmetric 1-D kernel k[0..radius] (k[d] is the
// weight at offset +-d), applied along rows then columns. Zero outside the
// image: what would land off the detector is lost.
void convolve_separable(const float* in, int rows, int cols, const double* kernel, int radius, float* out,
                        int n_threads);

}  // namespace diffranet
