// Reflection-centric rendering of compact (tophat, gauss) spots.
//
// A reflection G = h a* + k b* + l c* of one domain lights the detector only
// where the Ewald sphere |S + s0/lambda| = 1/lambda passes through its spot,
// a small ellipsoid |diag(N) A (S - G)| < rho around G, inside a ball of
// radius r_S. So for each source and domain we
//  1. list the reflections whose ball meets the Ewald sphere inside the largest
//     |S| the detector sees, solving a quadratic along one reciprocal axis
//     instead of visiting every index;
//  2. bound each spot's footprint: the sphere points inside the ball form a cap
//     seen from the sphere's centre as a cone of half-angle alpha around the
//     ray through G, and a cone meets the detector plane within
//     D alpha / cos_min^2 of the ray's hit point;
//  3. evaluate the exact per-pixel formula only at the subpixel centres inside
//     that footprint. The per-pixel loop finds zero everywhere else, so both
//     renderers give the same image.
//
// Determinism: spots are listed per domain (in parallel, each domain its own
// list) and then bucketed, in domain order, into fixed bands of subpixel rows;
// each band is filled by one thread in that fixed order. The result is
// bit-identical for any number of threads.
#include <algorithm>
#include <array>
#include <cmath>
#include <vector>

#include "bragg_common.hpp"
#include "diffranet/detector.hpp"

namespace diffranet {

namespace {

constexpr int kBandRows = 8;  // subpixel rows per band (fixed: independent of threads)

// One reflection (an index into the candidates) of one domain, with the box of
// subpixel centres its spot can touch (inclusive).
struct Spot {
    int candidate;
    int domain;
    int row0, row1, col0, col1;
};

// Largest singular value of m (square root of the largest eigenvalue of m^T m,
// by power iteration from a fixed start), padded slightly to stay an upper bound.
double spectral_norm(const Mat3& m) {
    const Mat3 mtm = m.transposed() * m;
    Vec3 v{1.0, 0.7, 0.4};
    double lambda = 0.0;
    for (int it = 0; it < 200; ++it) {
        const Vec3 w = mtm * v;
        const double nw = norm(w);
        if (nw == 0.0) return 0.0;
        const double next = nw;
        v = w / nw;
        if (std::fabs(next - lambda) <= 1e-13 * next) {
            lambda = next;
            break;
        }
        lambda = next;
    }
    return std::sqrt(lambda) * (1.0 + 1e-6);
}

// Largest |S| = |d - s0| / lambda over the detector: sampled at every subpixel
// centre along the border (a flat panel's extreme angle lies on its border).
double max_scattering_vector(const DetectorGeometry& det, const Source& src) {
    const int sub_rows = det.rows * det.oversample, sub_cols = det.cols * det.oversample;
    double best = 0.0;
    auto visit = [&](int r, int c) {
        const Vec3 d = unit(subpixel_position_mm(det, r, c));
        best = std::max(best, norm(d - src.direction) / src.wavelength_A);
    };
    for (int c = 0; c < sub_cols; ++c) {
        visit(0, c);
        visit(sub_rows - 1, c);
    }
    for (int r = 0; r < sub_rows; ++r) {
        visit(r, 0);
        visit(r, sub_cols - 1);
    }
    return best;
}

// Interval [lo, hi] of t where |base + t w|^2 <= radius^2 (false if empty);
// inv_ww = 1 / |w|^2.
inline bool line_ball_interval(const Vec3& base, const Vec3& w, double inv_ww, double radius, double& lo,
                               double& hi) {
    const double bw = dot(base, w);
    const double t_mid = -bw * inv_ww;
    const double q_min = dot(base, base) + t_mid * bw;  // |base + t_mid w|^2
    if (q_min > radius * radius) return false;
    const double half = std::sqrt((radius * radius - q_min) * inv_ww);
    lo = t_mid - half;
    hi = t_mid + half;
    return true;
}

// Reflections of the reference crystal that some mosaic domain may bring onto
// the Ewald sphere. A domain rotation by theta moves G by at most theta |G|
// and keeps |G|, so listing the reference reflections within r_s + theta_max
// g_max of the sphere (and within g_max of the origin) once replaces a search
// per domain.
struct Candidates {
    std::vector<double> gx, gy, gz, f_sq;
    std::vector<int> h, k, l;
    std::vector<double> g_sq;  // |G|^2
};

Candidates find_candidates(const BraggProblem& p, const Mat3& real_basis, const Vec3& k0, double inv_lambda,
                           double shell_half_width, double g_max) {
    const Mat3 recip = inverse(real_basis);  // columns a*, b*, c*
    const std::array<Vec3, 3> axes{recip.col(0), recip.col(1), recip.col(2)};
    const double r_out = inv_lambda + shell_half_width, r_in = inv_lambda - shell_half_width;

    // Solve along the axis with the most indices; loop over the other two.
    std::array<int, 3> index_max;
    for (int i = 0; i < 3; ++i) index_max[i] = static_cast<int>(std::floor(g_max * norm(real_basis.row(i)))) + 1;
    const int solved = static_cast<int>(std::max_element(index_max.begin(), index_max.end()) - index_max.begin());
    const int u = (solved + 1) % 3, v = (solved + 2) % 3;
    const Vec3& w = axes[solved];
    const double inv_ww = 1.0 / dot(w, w);

    Candidates out;
    std::array<int, 3> hkl;
    for (int iu = -index_max[u]; iu <= index_max[u]; ++iu) {
        for (int iv = -index_max[v]; iv <= index_max[v]; ++iv) {
            const Vec3 g_line = axes[u] * iu + axes[v] * iv;
            // |G| <= g_max: the detector sees nothing beyond
            double lo_g, hi_g;
            if (!line_ball_interval(g_line, w, inv_ww, g_max, lo_g, hi_g)) continue;
            // r_in <= |G + k0| <= r_out: near enough to the Ewald sphere
            const Vec3 base = g_line + k0;
            double lo_out, hi_out;
            if (!line_ball_interval(base, w, inv_ww, r_out, lo_out, hi_out)) continue;
            double lo_in = 1.0, hi_in = 0.0;  // empty unless the inner ball is cut
            if (r_in > 0.0) line_ball_interval(base, w, inv_ww, r_in, lo_in, hi_in);
            const int first = static_cast<int>(fast_ceil(std::max(lo_out, lo_g)));
            const int last = static_cast<int>(fast_floor(std::min(hi_out, hi_g)));
            for (int it = first; it <= last; ++it) {
                if (it > lo_in && it < hi_in) continue;  // strictly inside the Ewald sphere
                hkl[u] = iu;
                hkl[v] = iv;
                hkl[solved] = it;
                const double f = p.structure_factors.amplitude(hkl[0], hkl[1], hkl[2]);
                if (f == 0.0) continue;
                const Vec3 g = axes[0] * hkl[0] + axes[1] * hkl[1] + axes[2] * hkl[2];
                out.gx.push_back(g.x);
                out.gy.push_back(g.y);
                out.gz.push_back(g.z);
                out.g_sq.push_back(dot(g, g));
                out.f_sq.push_back(f * f);
                out.h.push_back(hkl[0]);
                out.k.push_back(hkl[1]);
                out.l.push_back(hkl[2]);
            }
        }
    }
    return out;
}

// Largest rotation angle (radians) among the domain rotations.
double max_rotation_angle(const std::vector<Mat3>& rotations) {
    double best = 0.0;
    for (const Mat3& r : rotations) {
        const double c = 0.5 * (r.m[0][0] + r.m[1][1] + r.m[2][2] - 1.0);
        best = std::max(best, std::acos(std::max(-1.0, std::min(1.0, c))));
    }
    return best;
}

// Projects one domain's spots onto the detector.
class SpotProjector {
  public:
    SpotProjector(const BraggProblem& p, const Source& src, double r_s)
        : det_(p.detector), r_s_(r_s),
          sub_rows_(p.detector.rows * p.detector.oversample), sub_cols_(p.detector.cols * p.detector.oversample),
          inv_step_(p.detector.oversample / p.detector.pixel_size_mm),
          plane_distance_mm_(dot(p.detector.origin_mm, p.detector.normal)), lambda_(src.wavelength_A),
          inv_lambda_(1.0 / src.wavelength_A), cap_offset_sq_(inv_lambda_ * inv_lambda_ - r_s * r_s),
          k0_(src.direction * inv_lambda_) {}

    const Vec3& k0() const { return k0_; }
    double inv_lambda() const { return inv_lambda_; }

    // Per-thread scratch space for project_domain.
    struct Scratch {
        std::vector<double> near;  // doubles (not flags): loops of one width vectorise
        std::vector<int> index;
        std::vector<double> col_c, row_c, radius, rim_sq, cos_normal, cos_min;
    };

    // Spots of the domain rotated by `rotation` among the candidates. Three
    // passes so that the arithmetic vectorises: a shell filter over all
    // candidates, the footprints of those near the sphere, then the boxes.
    void project_domain(const Candidates& cand, const Mat3& rotation, int domain, std::vector<Spot>& out,
                        Scratch& scratch) const {
        const size_t n = cand.gx.size();
        const double* gx = cand.gx.data();
        const double* gy = cand.gy.data();
        const double* gz = cand.gz.data();
        const double* g_sq = cand.g_sq.data();

        // 1. shell filter: |R G + k0|^2 = |G|^2 + |k0|^2 + 2 G . (R^T k0)
        const double r_out_sq = (inv_lambda_ + r_s_) * (inv_lambda_ + r_s_);
        const double r_in = std::max(0.0, inv_lambda_ - r_s_);
        const double r_in_sq = r_in * r_in;
        const Vec3 k_rot = rotation.transposed() * k0_;
        const double k_sq = dot(k0_, k0_);
        scratch.near.resize(n);
        double* near = scratch.near.data();
#pragma omp simd
        for (size_t i = 0; i < n; ++i) {
            const double dist_sq = g_sq[i] + k_sq + 2.0 * (gx[i] * k_rot.x + gy[i] * k_rot.y + gz[i] * k_rot.z);
            near[i] = (dist_sq <= r_out_sq) & (dist_sq >= r_in_sq) ? 1.0 : 0.0;
        }
        scratch.index.clear();
        for (size_t i = 0; i < n; ++i)
            if (near[i] != 0.0) scratch.index.push_back(static_cast<int>(i));

        // 2. footprints
        const size_t m = scratch.index.size();
        for (auto* v : {&scratch.col_c, &scratch.row_c, &scratch.radius, &scratch.rim_sq, &scratch.cos_normal,
                        &scratch.cos_min})
            v->resize(m);
        const int* index = scratch.index.data();
        double* col_c = scratch.col_c.data();
        double* row_c = scratch.row_c.data();
        double* radius = scratch.radius.data();
        double* rim_sq = scratch.rim_sq.data();
        double* cos_normal = scratch.cos_normal.data();
        double* cos_min = scratch.cos_min.data();
        const Footprint fp = footprint_constants();
        const Mat3 rot = rotation;
#pragma omp simd
        for (size_t j = 0; j < m; ++j) {
            const int i = index[j];
            const Vec3 from_centre = rot * Vec3{gx[i], gy[i], gz[i]} + fp.k0;  // sphere centre to G
            footprint(fp, from_centre, col_c[j], row_c[j], radius[j], rim_sq[j], cos_normal[j], cos_min[j]);
        }

        // 3. boxes of subpixel centres
        out.reserve(out.size() + m);
        for (size_t j = 0; j < m; ++j) {
            if (!(rim_sq[j] > 0.0 && cos_normal[j] > 0.0)) continue;  // the cap misses the sphere or the plane
            Spot spot{index[j], domain, 0, sub_rows_ - 1, 0, sub_cols_ - 1};
            // part of the cone running (nearly) parallel to the plane makes the footprint
            // unbounded: search the whole detector (rare, correct)
            if (cos_min[j] > 1e-3) {
                const double c = col_c[j], r = row_c[j], rad = radius[j];
                if (c + rad < 0.0 || r + rad < 0.0 || c - rad > sub_cols_ || r - rad > sub_rows_)
                    continue;  // off the detector (also keeps the integer conversions in range)
                spot.col0 = std::max(0, static_cast<int>(fast_ceil(c - rad)));
                spot.col1 = std::min(sub_cols_ - 1, static_cast<int>(fast_floor(c + rad)));
                spot.row0 = std::max(0, static_cast<int>(fast_ceil(r - rad)));
                spot.row1 = std::min(sub_rows_ - 1, static_cast<int>(fast_floor(r + rad)));
                if (spot.col0 > spot.col1 || spot.row0 > spot.row1) continue;
            }
            out.push_back(spot);
        }
    }

  private:
    // Constants of the footprint computation, copied into the vectorised loop.
    struct Footprint {
        Vec3 normal, origin_mm, fast_axis, slow_axis, k0;
        double plane_distance_mm, inv_step, lambda, inv_lambda, cap_offset_sq;
    };

    Footprint footprint_constants() const {
        return {det_.normal, det_.origin_mm, det_.fast_axis, det_.slow_axis, k0_,
                plane_distance_mm_, inv_step_, lambda_, inv_lambda_, cap_offset_sq_};
    }

    // Footprint on the detector of the spot whose centre is `from_centre` from
    // the Ewald sphere's centre: centre (col_c, row_c) and radius in subpixels,
    // plus the quantities that decide whether it is usable (rim_sq > 0: the
    // ball meets the sphere; cos_normal > 0: towards the detector; cos_min: the
    // most oblique ray). Free of selects (max(x, 0) = (x + |x|) / 2) so that
    // the loop over spots vectorises.
    static void footprint(const Footprint& c, const Vec3& from_centre, double& col_c, double& row_c, double& radius,
                          double& rim_sq, double& cos_normal, double& cos_min) {
        const double dist_sq = dot(from_centre, from_centre);
        const double inv_dist = 1.0 / std::sqrt(dist_sq);
        // cap of the sphere (radius R = 1/lambda) inside the ball (radius r_s) around G:
        // its rim lies at distance x from the centre, at radius sqrt(R^2 - x^2)
        const double x = (dist_sq + c.cap_offset_sq) * 0.5 * inv_dist;
        rim_sq = c.inv_lambda * c.inv_lambda - x * x;
        const Vec3 ray = from_centre * inv_dist;
        cos_normal = dot(ray, c.normal);
        // half-angle alpha of the cone: sin(alpha) = rim / R; tan(alpha) >= alpha bounds it
        const double sin_alpha = std::sqrt(0.5 * (rim_sq + std::fabs(rim_sq))) * c.lambda;
        const double cos_alpha_sq = 1.0 - sin_alpha * sin_alpha;
        const double cos_alpha = std::sqrt(0.5 * (cos_alpha_sq + std::fabs(cos_alpha_sq)));
        // cos(tilt + alpha): the most oblique direction in the cone
        const double sin_normal_sq = 1.0 - cos_normal * cos_normal;
        cos_min = cos_normal * cos_alpha - std::sqrt(0.5 * (sin_normal_sq + std::fabs(sin_normal_sq))) * sin_alpha;
        const Vec3 rel = ray * (c.plane_distance_mm / cos_normal) - c.origin_mm;
        // |dp| <= D dtheta / cos^2 along any path of directions within the cone
        radius = c.plane_distance_mm * sin_alpha * (1.0 + 1e-9) / (cos_alpha * cos_min * cos_min) * c.inv_step + 1e-6;
        col_c = dot(rel, c.fast_axis) * c.inv_step - 0.5;
        row_c = dot(rel, c.slow_axis) * c.inv_step - 0.5;
    }

    const DetectorGeometry& det_;
    double r_s_;
    int sub_rows_, sub_cols_;
    double inv_step_, plane_distance_mm_, lambda_, inv_lambda_;
    double cap_offset_sq_;  // R^2 - r_s^2
    Vec3 k0_;
};

// The spots of one band of subpixel rows, in their fixed order.
struct BandTask {
    const Spot* first;
    const Spot* last;
    int row0, row1;
};

// Adds |F_cell|^2 |F_latt|^2 of every spot of the band to the subpixels of its
// box; returns the number of subpixels evaluated. Each subpixel counts for its
// nearest reflection only, as in the per-pixel loop (ceil(h - 0.5) == h0
// exactly when -0.5 < h - h0 <= 0.5). Selects instead of branches: adding
// zero leaves a sum unchanged, so the result equals the branching loop's.
template <SpotShape kShape>
long long rasterise_band(const BandTask& task, const Candidates& cand, const std::vector<Mat3>& bases,
                         const CrystalParams& xtal, const Source& src, const SubpixelDirections& directions,
                         int sub_cols, double* sub_sum) {
    const double na = xtal.na, nb = xtal.nb, nc = xtal.nc;
    const Vec3 s0 = src.direction;
    const double inv_lambda = 1.0 / src.wavelength_A;
    long long tested = 0;
    for (const Spot* s = task.first; s != task.last; ++s) {
        const double h0 = cand.h[s->candidate], k0 = cand.k[s->candidate], l0 = cand.l[s->candidate];
        const double f_cell_sq = cand.f_sq[s->candidate];
        const Mat3& basis = bases[s->domain];
        const int row0 = std::max(s->row0, task.row0), row1 = std::min(s->row1, task.row1);
        for (int r = row0; r <= row1; ++r) {
            for (int c = s->col0; c <= s->col1; ++c) {
                const long long i = static_cast<long long>(r) * sub_cols + c;
                const Vec3 sv = (directions[i] - s0) * inv_lambda;
                const double dh = dot(basis.row(0), sv) - h0;
                const double dk = dot(basis.row(1), sv) - k0;
                const double dl = dot(basis.row(2), sv) - l0;
                const double nearest =
                    (dh > -0.5) & (dh <= 0.5) & (dk > -0.5) & (dk <= 0.5) & (dl > -0.5) & (dl <= 0.5) ? 1.0 : 0.0;
                sub_sum[i] += f_cell_sq * offset_intensity(kShape, dh, dk, dl, na, nb, nc) * nearest;
            }
        }
        tested += static_cast<long long>(row1 - row0 + 1) * (s->col1 - s->col0 + 1);
    }
    return tested;
}

}  // namespace

ReflectionStats render_bragg_reflectionwise(const BraggProblem& p, float* image, int n_threads) {
    const DetectorGeometry& det = p.detector;
    const CrystalParams& xtal = p.crystal;
    const int threads = resolve_threads(n_threads);
    const int n = det.oversample;
    const int sub_rows = det.rows * n, sub_cols = det.cols * n;
    const std::vector<Mat3> bases = domain_bases(xtal);
    const int n_domains = static_cast<int>(bases.size());
    const int n_bands = (sub_rows + kBandRows - 1) / kBandRows;

    // Ball around each spot: radius rho * ||(diag(N) A)^-1||_2, the same for
    // every domain (rotations keep singular values).
    const Mat3 recip = inverse(xtal.real_basis_A);
    Mat3 spot_matrix = recip;
    const double n_cells[3] = {xtal.na, xtal.nb, xtal.nc};
    for (int i = 0; i < 3; ++i)
        for (int j = 0; j < 3; ++j) spot_matrix.m[i][j] /= n_cells[j];
    const double r_s = std::sqrt(compact_radius_sq(xtal.shape)) * spectral_norm(spot_matrix);
    const double mosaic_shift = max_rotation_angle(xtal.domain_rotations) * (1.0 + 1e-9) + 1e-12;

    const SubpixelDirections directions(det, threads);
    ReflectionStats stats;
    std::vector<double> pixel_sum(static_cast<size_t>(det.rows) * det.cols, 0.0);
    std::vector<double> sub_sum(static_cast<size_t>(sub_rows) * sub_cols);

    for (const Source& src : p.beam.sources) {
        // 1. candidate reflections, then the spots of every domain
        const SpotProjector projector(p, src, r_s);
        const double g_max = max_scattering_vector(det, src) + r_s;
        const Candidates cand = find_candidates(p, xtal.real_basis_A, projector.k0(), projector.inv_lambda(),
                                                r_s + mosaic_shift * g_max, g_max);
        std::vector<std::vector<Spot>> spots(n_domains);
#pragma omp parallel num_threads(threads)
        {
            SpotProjector::Scratch scratch;
#pragma omp for schedule(dynamic, 4)
            for (int d = 0; d < n_domains; ++d)
                projector.project_domain(cand, xtal.domain_rotations[d], d, spots[d], scratch);
        }

        // 2. counting sort into row bands, keeping domain order within a band:
        // count per (domain, band), prefix-sum in (band, domain) order, scatter
        std::vector<size_t> offset(static_cast<size_t>(n_domains) * n_bands, 0);
#pragma omp parallel for schedule(dynamic, 4) num_threads(threads)
        for (int d = 0; d < n_domains; ++d)
            for (const Spot& s : spots[d])
                for (int b = s.row0 / kBandRows; b <= s.row1 / kBandRows; ++b)
                    ++offset[static_cast<size_t>(d) * n_bands + b];
        std::vector<size_t> band_start(n_bands + 1, 0);
        size_t total = 0;
        for (int b = 0; b < n_bands; ++b) {
            band_start[b] = total;
            for (int d = 0; d < n_domains; ++d) {
                const size_t count = offset[static_cast<size_t>(d) * n_bands + b];
                offset[static_cast<size_t>(d) * n_bands + b] = total;
                total += count;
            }
        }
        band_start[n_bands] = total;
        std::vector<Spot> banded(total);
#pragma omp parallel for schedule(dynamic, 4) num_threads(threads)
        for (int d = 0; d < n_domains; ++d) {
            size_t* next = &offset[static_cast<size_t>(d) * n_bands];
            for (const Spot& s : spots[d])
                for (int b = s.row0 / kBandRows; b <= s.row1 / kBandRows; ++b) banded[next[b]++] = s;
        }
        for (const auto& list : spots) stats.spots += static_cast<long long>(list.size());
        spots.clear();

        // 3. the exact formula at each spot's subpixels, one band per task
        std::fill(sub_sum.begin(), sub_sum.end(), 0.0);
        long long tested = 0;
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads) reduction(+ : tested)
        for (int b = 0; b < n_bands; ++b) {
            const BandTask task{banded.data() + band_start[b], banded.data() + band_start[b + 1], b * kBandRows,
                                std::min(sub_rows - 1, b * kBandRows + kBandRows - 1)};
            tested += xtal.shape == SpotShape::kTophat
                          ? rasterise_band<SpotShape::kTophat>(task, cand, bases, xtal, src, directions, sub_cols,
                                                               sub_sum.data())
                          : rasterise_band<SpotShape::kGauss>(task, cand, bases, xtal, src, directions, sub_cols,
                                                              sub_sum.data());
        }
        stats.subpixels_tested += tested;

        // 4. solid angle and polarisation, only where some spot landed
#pragma omp parallel for schedule(static) num_threads(threads)
        for (int row = 0; row < det.rows; ++row) {
            for (int sr = 0; sr < n; ++sr) {
                for (int col = 0; col < det.cols; ++col) {
                    for (int sc = 0; sc < n; ++sc) {
                        const int r = row * n + sr, c = col * n + sc;
                        const double value = sub_sum[static_cast<size_t>(r) * sub_cols + c];
                        if (value == 0.0) continue;
                        const Vec3 pos = subpixel_position_mm(det, r, c);
                        const double polar =
                            polarization_factor(p.beam.polarization_fraction, p.beam.polarization_axis, src.direction,
                                                directions[static_cast<long long>(r) * sub_cols + c]);
                        pixel_sum[static_cast<size_t>(row) * det.cols + col] +=
                            src.weight * pixel_solid_angle_sr(det, pos) * polar * value;
                    }
                }
            }
        }
    }

    const double scale = photon_scale(p);
    for (size_t i = 0; i < pixel_sum.size(); ++i) image[i] = static_cast<float>(scale * pixel_sum[i]);
    return stats;
}

}  // namespace diffranet
