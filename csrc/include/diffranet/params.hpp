// Plain parameter structs handed from Python to the core. Units are in the
// names; every vector is in the lab frame (beam along +x, see docs/conventions.md).
#pragma once

#include <cstdint>
#include <vector>

#include "diffranet/lattice.hpp"
#include "diffranet/vec3.hpp"

namespace diffranet {

// A flat detector of rows x cols square pixels. Pixel (row, col) covers
// origin + [col, col+1) * pixel_size * fast + [row, row+1) * pixel_size * slow.
struct DetectorGeometry {
    int rows = 0;
    int cols = 0;
    double pixel_size_mm = 0.0;
    Vec3 origin_mm;   // lab position of the outer corner of pixel (0, 0), mm from the sample
    Vec3 fast_axis;   // unit vector along increasing column
    Vec3 slow_axis;   // unit vector along increasing row
    Vec3 normal;      // unit vector from the sample towards the detector plane
    int oversample = 1;  // each pixel is split into oversample x oversample subpixels
    // Optional cache of the unit vectors from the sample to every subpixel centre
    // (row-major, (rows*oversample) x (cols*oversample) x 3, from
    // fill_subpixel_directions); computed on the fly when null.
    const double* directions = nullptr;
};

// One monochromatic, parallel component of the incident beam.
struct Source {
    Vec3 direction;        // unit vector of propagation
    double wavelength_A;   // Angstrom
    double weight;         // fraction of the fluence; the weights of all sources sum to 1
};

struct BeamParams {
    std::vector<Source> sources;
    double fluence_photons_per_m2 = 0.0;
    double polarization_fraction = 0.0;  // Kahn factor: 0 unpolarised, 1 fully polarised
    Vec3 polarization_axis{0.0, 0.0, 1.0};  // E-vector direction of the polarised part
};

// Dense |F| table: value of (h, k, l) is data[((h-h_min)*nk + (k-k_min))*nl + (l-l_min)],
// default_F outside it. Not owning: the buffer lives in the Python object.
struct StructureFactorTable {
    const float* data = nullptr;
    int h_min = 0, k_min = 0, l_min = 0;
    int nh = 0, nk = 0, nl = 0;
    double default_F = 0.0;

    double amplitude(int h, int k, int l) const {
        const int i = h - h_min, j = k - k_min, m = l - l_min;
        if (data == nullptr || i < 0 || j < 0 || m < 0 || i >= nh || j >= nk || m >= nl)
            return default_F;
        return data[(static_cast<std::int64_t>(i) * nk + j) * nl + m];
    }
};

struct CrystalParams {
    Mat3 real_basis_A;   // rows: a, b, c of the reference domain in the lab frame (Angstrom)
    double na = 1, nb = 1, nc = 1;   // unit cells along a, b, c per mosaic domain
    SpotShape shape = SpotShape::kTophat;
    std::vector<Mat3> domain_rotations;   // one lab-frame rotation per mosaic domain
};

}  // namespace diffranet
