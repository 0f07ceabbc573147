// Physical constants, SI unless the name says otherwise.
#pragma once

namespace diffranet {

constexpr double kPi = 3.14159265358979323846;

// Classical electron radius squared (m^2): the Thomson cross-section per
// electron per steradian for unpolarised light is r_e^2 (1 + cos^2 2theta) / 2.
constexpr double kElectronRadiusSq_m2 = 7.94079248018965e-30;

}  // namespace diffranet
