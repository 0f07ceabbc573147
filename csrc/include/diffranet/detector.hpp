// Per-subpixel geometry of a flat detector: where each subpixel is, the
// solid angle it subtends and the polarisation factor of the light reaching it.
#pragma once

#include <vector>

#include "diffranet/params.hpp"

namespace diffranet {

// Lab position (mm) of the centre of subpixel (sub_row, sub_col), where the
// subpixel grid has rows*oversample x cols*oversample cells.
Vec3 subpixel_position_mm(const DetectorGeometry& det, int sub_row, int sub_col);

// Unit vectors from the sample to every subpixel centre, row-major
// ((rows*oversample) x (cols*oversample) x 3): out must hold that many doubles.
void fill_subpixel_directions(const DetectorGeometry& det, double* out, int n_threads);

// The detector's subpixel directions: its cache when it has one, else computed here.
class SubpixelDirections {
  public:
    SubpixelDirections(const DetectorGeometry& det, int n_threads);
    Vec3 operator[](long long subpixel) const {
        const double* d = data_ + 3 * subpixel;
        return {d[0], d[1], d[2]};
    }
    const double* data() const { return data_; }

  private:
    std::vector<double> owned_;
    const double* data_;
};

// Whether a and b are exactly the same geometry and oversample (their
// direction caches aside): any difference moves the subpixel centres.
bool same_geometry(const DetectorGeometry& a, const DetectorGeometry& b);

// Solid angle (sr) of a whole pixel seen from the sample, evaluated at one of its
// subpixel positions: area / R^2 times the obliquity cos = (position . normal) / R.
double pixel_solid_angle_sr(const DetectorGeometry& det, const Vec3& position_mm);

}  // namespace diffranet
