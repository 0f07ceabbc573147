// The average over a pixel's subpixels and the beam's sources that every
// renderer (Bragg and background) applies:
//
//   pixel sum = sum over subpixels s, sources j of  w_j * Omega(s) * P_j(s) * f(j, s)
//
// with w_j the source's weight, Omega the pixel's solid angle evaluated at the
// subpixel centre and P_j the polarisation factor of source j for the
// direction to the subpixel centre. The renderers divide by the number of
// subpixels in their photon scale. Keeping the loop here means the Bragg
// renderers and the background visit exactly the same samples with the same
// weights.
#pragma once

#include <cmath>
#include <vector>

#include "diffranet/detector.hpp"
#include "diffranet/params.hpp"

namespace diffranet {

// Kahn et al. (1982) polarisation factor of one source, with the incident
// E-vector frame computed once:
//   P = (1 + cos^2 2theta - f cos(2 psi) sin^2 2theta) / 2,
// cos(2 psi) = (e^2 - b^2) / (e^2 + b^2) for the diffracted direction's
// components e, b along the E-vector and the B-vector (psi its azimuth).
class Polarization {
  public:
    Polarization(double fraction, const Vec3& axis, const Vec3& incident) : fraction_(fraction), incident_(incident) {
        if (fraction_ != 0.0) {
            b_in_ = unit(cross(axis, incident));
            e_in_ = unit(cross(incident, b_in_));
        }
    }

    double factor(const Vec3& diffracted) const {
        const double cos2theta = dot(incident_, diffracted);
        const double cos2theta_sq = cos2theta * cos2theta;
        const double sin2theta_sq = 1.0 - cos2theta_sq;
        double cos2psi = 0.0;
        if (fraction_ != 0.0) {
            const double e = dot(diffracted, e_in_), b = dot(diffracted, b_in_);
            const double rho_sq = e * e + b * b;
            cos2psi = rho_sq > 0.0 ? (e * e - b * b) / rho_sq : 1.0;  // along the beam: psi = 0
        }
        return 0.5 * (1.0 + cos2theta_sq - fraction_ * cos2psi * sin2theta_sq);
    }

  private:
    double fraction_;
    Vec3 incident_, e_in_, b_in_;
};

// Samples of one detector and beam: subpixel centres, their directions, solid
// angles and per-source weights.
class SubpixelSampler {
  public:
    SubpixelSampler(const DetectorGeometry& det, const BeamParams& beam)
        : det_(det), sources_(beam.sources), sub_cols_(static_cast<long long>(det.cols) * det.oversample) {
        for (const Source& src : sources_)
            polarization_.emplace_back(beam.polarization_fraction, beam.polarization_axis, src.direction);
    }

    int oversample() const { return det_.oversample; }
    const std::vector<Source>& sources() const { return sources_; }

    // Unit vector from the sample to the centre of subpixel (sub_row, sub_col).
    Vec3 direction(int sub_row, int sub_col) const {
        if (det_.directions != nullptr) {
            const double* d = det_.directions + 3 * (sub_row * sub_cols_ + sub_col);
            return {d[0], d[1], d[2]};
        }
        return unit(subpixel_position_mm(det_, sub_row, sub_col));
    }

    // Weight of subpixel (sub_row, sub_col), in direction d, for source j:
    // w_j Omega P_j.
    double weight(int j, int sub_row, int sub_col, const Vec3& d) const {
        const Vec3 pos = subpixel_position_mm(det_, sub_row, sub_col);
        return sources_[j].weight * pixel_solid_angle_sr(det_, pos) * polarization_[j].factor(d);
    }

    // Calls visit(j, w_j Omega P_j, d) for every subpixel of pixel (row, col)
    // (subpixel row, then column) and every source j, d the direction to the
    // subpixel centre: the order in which every renderer sums them.
    template <class F>
    void visit_samples(int row, int col, F&& visit) const {
        const int n = det_.oversample;
        for (int sr = 0; sr < n; ++sr) {
            for (int sc = 0; sc < n; ++sc) {
                const int r = row * n + sr, c = col * n + sc;
                const Vec3 d = direction(r, c);
                for (int j = 0; j < static_cast<int>(sources_.size()); ++j) visit(j, weight(j, r, c, d), d);
            }
        }
    }

    // Sum over the subpixels of pixel (row, col) and all sources of
    // w_j Omega P_j f(j, d) for the direction d to the subpixel centre.
    template <class F>
    double pixel_sum(int row, int col, F&& f) const {
        double sum = 0.0;
        visit_samples(row, col, [&](int j, double weight, const Vec3& d) { sum += weight * f(j, d); });
        return sum;
    }

    // The same sum for source j alone, of values that are mostly zero
    // (value(sub_row, sub_col), e.g. Bragg spots already summed per subpixel):
    // the geometry is evaluated only where the value is not zero.
    template <class F>
    double sparse_source_pixel_sum(int j, int row, int col, F&& value) const {
        const int n = det_.oversample;
        double sum = 0.0;
        for (int sr = 0; sr < n; ++sr) {
            for (int sc = 0; sc < n; ++sc) {
                const int r = row * n + sr, c = col * n + sc;
                const double v = value(r, c);
                if (v == 0.0) continue;
                sum += weight(j, r, c, direction(r, c)) * v;
            }
        }
        return sum;
    }

  private:
    const DetectorGeometry& det_;
    std::vector<Source> sources_;
    std::vector<Polarization> polarization_;
    long long sub_cols_;
};

}  // namespace diffranet
