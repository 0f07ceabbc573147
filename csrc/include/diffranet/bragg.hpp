// Bragg scattering from a mosaic crystal onto a flat detector.
//
// Expected photons in a pixel (Holton et al. 2014, nanoBragg):
//   I = r_e^2 * fluence * < Omega * P * |F_cell(h0,k0,l0)|^2 * |F_latt(h,k,l)|^2 >
// averaged over the pixel's subpixels, the beam's sources (by weight) and the
// mosaic domains, where (h, k, l) = (a.S, b.S, c.S) with S = (d - s0) / lambda
// the scattering vector, d the unit vector to the subpixel, s0 the beam direction,
// and (h0, k0, l0) the nearest integers.
//
// Two renderers give the same image:
//  - PixelRenderer: the loop above for every subpixel, source and domain; works
//    for every spot shape and is the only choice for sinc and round spots.
//  - ReflectionRenderer: for compact spots (tophat, gauss) finds, per domain, the
//    reflections whose spot meets the Ewald sphere and rasterises only the
//    subpixels they can touch.
// Both are deterministic for any number of OpenMP threads.
#pragma once

#include <vector>

#include "diffranet/parallel.hpp"
#include "diffranet/params.hpp"

namespace diffranet {

struct BraggProblem {
    DetectorGeometry detector;
    BeamParams beam;
    CrystalParams crystal;
    StructureFactorTable structure_factors;
};

// What the reflection renderer did: (source, domain, reflection) spots that
// meet the Ewald sphere and hit the detector, and subpixels it evaluated.
struct ReflectionStats {
    long long spots = 0;
    long long subpixels_tested = 0;
};

// Output: rows * cols float32 photons per pixel, row-major. `control`
// (optional) lets the caller stop the render (it then throws Cancelled); an
// exception in any thread is rethrown from the calling thread.
void render_bragg_pixelwise(const BraggProblem& problem, float* image, int n_threads,
                            const RunControl* control = nullptr);
ReflectionStats render_bragg_reflectionwise(const BraggProblem& problem, float* image, int n_threads,
                                            const RunControl* control = nullptr);

}  // namespace diffranet
