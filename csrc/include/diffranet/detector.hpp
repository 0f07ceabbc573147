// Per-subpixel geometry of a flat detector: where each subpixel is, the
// solid angle it subtends and the polarisation factor of the light reaching it.
#pragma once

#include "diffranet/params.hpp"

namespace diffranet {

// Lab position (mm) of the centre of subpixel (sub_row, sub_col), where the
// subpixel grid has rows*oversample x cols*oversample cells.
Vec3 subpixel_position_mm(const DetectorGeometry& det, int sub_row, int sub_col);

// Solid angle (sr) of a whole pixel seen from the sample, evaluated at one of its
// subpixel positions: area / R^2 times the obliquity cos = (position . normal) / R.
double pixel_solid_angle_sr(const DetectorGeometry& det, const Vec3& position_mm);

// Polarisation factor of Kahn et al. (1982) for incident direction `incident` and
// diffracted unit vector `diffracted`:
//   P = (1 + cos^2 2theta - f cos(2 psi) sin^2 2theta) / 2,
// psi the azimuth of the diffracted ray about the beam, measured from the E-vector.
double polarization_factor(double fraction, const Vec3& axis, const Vec3& incident,
                           const Vec3& diffracted);

}  // namespace diffranet
