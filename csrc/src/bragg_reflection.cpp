// Reflection-centric rendering of compact (tophat, gauss) spots.
//
// A reflection G = h a* + k b* + l c* of one domain lights the detector only
// where the Ewald sphere |S + s0/lambda| = 1/lambda passes through its spot,
// a small ellipsoid |diag(N) A (S - G)| < rho around G, inside a ball of
// radius r_S. So for each source we
//  1. list the reflections of the reference crystal that some domain may bring
//     near the Ewald sphere (a domain rotation by at most theta moves G by at
//     most theta |G|), solving a quadratic along one reciprocal axis instead of
//     visiting every index;
//  2. bound, for each such reflection, the part of the detector that any of its
//     domains can light (its "union box": the footprint of the ball of radius
//     r_S + theta |G| around G), and file it under the bands of subpixel rows
//     that box meets;
//  3. per band, take its reflections in a fixed order and, for each, all the
//     domains together: a shell test |R G + k0| ~ 1/lambda over the domains,
//     the footprint of each domain's spot that passes (the sphere points
//     inside the spot's ball form a cap seen from the sphere's centre as a cone
//     of half-angle alpha around the ray through G, and a cone meets the
//     detector plane within D tan(alpha) / cos_min^2 of the ray's hit point),
//     and the exact per-pixel formula at the subpixel centres inside that
//     footprint. The per-pixel loop finds zero everywhere else, so both
//     renderers give the same image up to the order of additions;
//  4. fold the band's subpixel sums into pixels (solid angle, polarisation)
//     while they are still in cache.
//
// Memory: one band of subpixel sums per thread and one double per pixel,
// whatever the number of domains or reflections.
//
// Determinism: bands have a fixed height (independent of the thread count),
// each band is filled by one thread in candidate-then-domain order and writes
// only its own pixel rows, so the image is bit-identical for any number of
// threads.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <vector>

#include "bragg_common.hpp"
#include "diffranet/detector.hpp"
#include "diffranet/parallel.hpp"
#include "diffranet/subpixel.hpp"

namespace diffranet {

namespace {

constexpr int kBandSubRows = 32;  // subpixel rows per band, rounded up to whole pixels
constexpr int kLanes = 4;         // columns evaluated together
constexpr size_t kKeptScratchBytes = size_t{64} << 20;  // larger pixel sums are freed after each render

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

// Four doubles operated on together (GCC/Clang vector extensions: SSE2 pairs on
// baseline x86-64). Each lane does exactly the scalar IEEE operations.
typedef double Lanes __attribute__((vector_size(4 * sizeof(double))));
typedef long long LaneMask __attribute__((vector_size(4 * sizeof(double))));
static_assert(sizeof(Lanes) == kLanes * sizeof(double), "four lanes");

// (by reference: passing vectors by value would tie the ABI to the instruction set)
inline void load_lanes(const double* p, Lanes& v) { std::memcpy(&v, p, sizeof v); }
// p[lane] += value[lane] where keep, else += +0.0 (which leaves a sum of
// non-negative terms unchanged)
inline void add_where(double* p, const LaneMask& keep, const Lanes& value) {
    LaneMask bits;
    std::memcpy(&bits, &value, sizeof bits);
    bits &= keep;
    Lanes kept, sums;
    std::memcpy(&kept, &bits, sizeof kept);
    std::memcpy(&sums, p, sizeof sums);
    sums += kept;
    std::memcpy(p, &sums, sizeof sums);
}

// Smallest integer >= x, clamped to [0, n]; largest integer <= x, clamped to
// [-1, n - 1] (or 0 for x in (-1, 0), a harmless extra column). Clamping first
// keeps the conversions in range; integer arithmetic keeps them branch-free.
inline int first_index(double x, int n) {
    x = std::min(std::max(x, 0.0), static_cast<double>(n));
    const int t = static_cast<int>(x);
    return t + (static_cast<double>(t) < x);
}
inline int last_index(double x, int n) {
    return static_cast<int>(std::min(std::max(x, -1.0), static_cast<double>(n - 1)));
}

// A box of subpixel centres (inclusive bounds).
struct Box {
    int row0, row1, col0, col1;
};

// Constants of the footprint computation for one source.
struct FootprintGeometry {
    Vec3 normal, origin_mm, fast_axis, slow_axis, k0;
    double plane_distance_mm, inv_step, lambda, inv_lambda;
    int sub_rows, sub_cols;

    FootprintGeometry(const DetectorGeometry& det, const Source& src)
        : normal(det.normal), origin_mm(det.origin_mm), fast_axis(det.fast_axis), slow_axis(det.slow_axis),
          k0(src.direction * (1.0 / src.wavelength_A)), plane_distance_mm(dot(det.origin_mm, det.normal)),
          inv_step(det.oversample / det.pixel_size_mm), lambda(src.wavelength_A), inv_lambda(1.0 / src.wavelength_A),
          sub_rows(det.rows * det.oversample), sub_cols(det.cols * det.oversample) {}
};

// Where a spot can land: the footprint on the detector of the sphere points
// inside a ball whose centre is `from_centre` from the Ewald sphere's centre
// (cap_offset_sq = R^2 - radius^2, R = 1/lambda): centre (col_c, row_c) and
// radius in subpixels, and the quantities that decide whether it is usable:
// rim_sq > 0 when the ball meets the sphere, cos_max > 0 when some direction
// of the cone heads for the detector plane, cos_min the most oblique direction
// of the cone (the footprint is bounded only when it is clearly positive).
// Free of branches (max(x, 0) = (x + |x|) / 2) so that loops over spots vectorise.
struct Footprint {
    double col_c, row_c, radius, rim_sq, cos_max, cos_min;
};

inline Footprint footprint(const FootprintGeometry& g, const Vec3& from_centre, double cap_offset_sq) {
    Footprint f;
    const double dist_sq = dot(from_centre, from_centre);
    const double inv_dist = 1.0 / std::sqrt(dist_sq);
    // the cap's rim lies at distance x from the sphere's centre along the ray, at radius sqrt(R^2 - x^2)
    const double x = (dist_sq + cap_offset_sq) * 0.5 * inv_dist;
    f.rim_sq = g.inv_lambda * g.inv_lambda - x * x;
    const Vec3 ray = from_centre * inv_dist;
    const double cos_normal = dot(ray, g.normal);
    // half-angle alpha of the cone: cos(alpha) = x / R (negative beyond a hemisphere)
    const double sin_alpha = std::sqrt(0.5 * (f.rim_sq + std::fabs(f.rim_sq))) * g.lambda;
    const double cos_alpha = x * g.lambda;
    // cos(tilt -/+ alpha): the least and the most oblique directions in the cone
    const double sin_normal_sq = 1.0 - cos_normal * cos_normal;
    const double sin_normal = std::sqrt(0.5 * (sin_normal_sq + std::fabs(sin_normal_sq)));
    f.cos_max = cos_normal * cos_alpha + sin_normal * sin_alpha;
    f.cos_min = cos_normal * cos_alpha - sin_normal * sin_alpha;
    const Vec3 rel = ray * (g.plane_distance_mm / cos_normal) - g.origin_mm;
    // |dp| <= D dtheta / cos^2 along any path of directions within the cone, dtheta <= alpha <= tan(alpha)
    f.radius = g.plane_distance_mm * sin_alpha * (1.0 + 1e-9) / (cos_alpha * f.cos_min * f.cos_min) * g.inv_step + 1e-6;
    f.col_c = dot(rel, g.fast_axis) * g.inv_step - 0.5;
    f.row_c = dot(rel, g.slow_axis) * g.inv_step - 0.5;
    return f;
}

// The subpixel box of a footprint; false when it cannot light the detector.
// Footprints that are unbounded (part of the cone runs nearly parallel to the
// plane) search the whole detector: rare, and correct.
inline bool footprint_box(const FootprintGeometry& g, const Footprint& f, Box& box) {
    if (!(f.rim_sq > 0.0 && f.cos_max > 0.0)) return false;  // misses the sphere, or heads away from the plane
    box = {0, g.sub_rows - 1, 0, g.sub_cols - 1};
    if (!(f.cos_min > 1e-3)) return true;
    const double c = f.col_c, r = f.row_c, rad = f.radius;
    if (!(c + rad >= 0.0 && r + rad >= 0.0 && c - rad <= g.sub_cols && r - rad <= g.sub_rows))
        return false;  // off the detector (also keeps the integer conversions in range)
    box.col0 = first_index(c - rad, g.sub_cols);
    box.col1 = last_index(c + rad, g.sub_cols);
    box.row0 = first_index(r - rad, g.sub_rows);
    box.row1 = last_index(r + rad, g.sub_rows);
    return box.col0 <= box.col1 && box.row0 <= box.row1;
}

// The domains' rotations in structure-of-arrays form, and for one source the
// beam direction seen from each domain (R^T k0) for the shell test.
struct DomainSet {
    std::array<std::vector<double>, 9> rot;  // R[i][j] of every domain
    std::vector<double> kx, ky, kz;          // R^T k0
    std::vector<Mat3> bases;                 // real-space basis (rows a, b, c) of every domain

    explicit DomainSet(const CrystalParams& xtal) : bases(domain_bases(xtal)) {
        const size_t n = xtal.domain_rotations.size();
        for (auto& v : rot) v.resize(n);
        for (size_t d = 0; d < n; ++d)
            for (int i = 0; i < 3; ++i)
                for (int j = 0; j < 3; ++j) rot[3 * i + j][d] = xtal.domain_rotations[d].m[i][j];
        kx.resize(n);
        ky.resize(n);
        kz.resize(n);
    }
    int size() const { return static_cast<int>(bases.size()); }

    void set_beam(const std::vector<Mat3>& rotations, const Vec3& k0) {
        for (size_t d = 0; d < rotations.size(); ++d) {
            const Vec3 k = rotations[d].transposed() * k0;
            kx[d] = k.x;
            ky[d] = k.y;
            kz[d] = k.z;
        }
    }
};

// Per-thread working space of the band tasks (reused from band to band).
struct BandScratch {
    std::vector<double> near;      // 1 where a domain's spot passes the shell test (doubles: vectorises)
    std::vector<double> rgx, rgy, rgz;  // R G + k0 of every domain (from the Ewald sphere's centre)
    std::vector<int> domains;      // the domains whose spot passes it
    std::vector<double> px, py, pz;     // R G + k0 of those domains, in the same order
    // their footprints, one array per field so that the loop computing them vectorises
    std::vector<double> col_c, row_c, radius, rim_sq, cos_max, cos_min;
    std::vector<double> sums;      // subpixel sums of the band, row-major
    std::vector<double> sx, sy, sz;  // scattering vectors of the band's subpixels
};

// Scattering vectors S = (d - s0) / lambda of the subpixel centres of one
// band (rows row0..row1, row-major, relative to row0), computed once per band
// with the per-pixel loop's arithmetic.
void band_scattering_vectors(const SubpixelSampler& sampler, const Source& src, int row0, int row1, int sub_cols,
                             BandScratch& scratch) {
    const size_t size = static_cast<size_t>(row1 - row0 + 1) * sub_cols;
    // padded by kLanes: the last row's final block reads past its end, into
    // lanes that are masked out (their values, finite leftovers, never count)
    scratch.sx.resize(size + kLanes);
    scratch.sy.resize(size + kLanes);
    scratch.sz.resize(size + kLanes);
    const double inv_lambda = 1.0 / src.wavelength_A;
    for (int r = row0; r <= row1; ++r) {
        const size_t offset = static_cast<size_t>(r - row0) * sub_cols;
        for (int c = 0; c < sub_cols; ++c) {
            const Vec3 sv = (sampler.direction(r, c) - src.direction) * inv_lambda;
            scratch.sx[offset + c] = sv.x;
            scratch.sy[offset + c] = sv.y;
            scratch.sz[offset + c] = sv.z;
        }
    }
}

// Adds |F_cell|^2 |F_latt|^2 of one domain's spot to the subpixels of the
// footprint disc (centre col_c, row_c, radius in subpixels) within `box`;
// rows are relative to the band start row0. Returns the subpixels evaluated.
// Each subpixel counts for its nearest reflection only, as in the per-pixel
// loop (ceil(h - 0.5) == h0 exactly when -0.5 < h - h0 <= 0.5), with the
// same arithmetic. Selects instead of branches: adding zero leaves a sum
// unchanged, so the result equals the branching loop's. When the spot is
// smaller than half a reciprocal cell along every axis (rho < N / 2), every
// subpixel it lights is nearest to it and kCheckNearest may be false.
template <SpotShape kShape, bool kCheckNearest>
__attribute__((always_inline)) inline long long rasterise(const Box& box, const Mat3& basis, double h0, double k0, double l0, double f_cell_sq,
                    const CrystalParams& xtal, int row0, int sub_cols, BandScratch& scratch) {
    const double na = xtal.na, nb = xtal.nb, nc = xtal.nc;
    const double ax = basis.m[0][0], ay = basis.m[0][1], az = basis.m[0][2];
    const double bx = basis.m[1][0], by = basis.m[1][1], bz = basis.m[1][2];
    const double cx = basis.m[2][0], cy = basis.m[2][1], cz = basis.m[2][2];
    const Lanes lane_index = {0.0, 1.0, 2.0, 3.0};
    // f_cell^2 times the tophat's height squared (the scalar expression's order)
    const double tophat_height = compact_lattice_amplitude<SpotShape::kTophat>(0.0, na * nb * nc);
    const double tophat_value = f_cell_sq * (tophat_height * tophat_height);
    for (int r = box.row0; r <= box.row1; ++r) {
        const size_t offset = static_cast<size_t>(r - row0) * sub_cols;
        const double* sx = scratch.sx.data() + offset;
        const double* sy = scratch.sy.data() + offset;
        const double* sz = scratch.sz.data() + offset;
        double* sums = scratch.sums.data() + offset;
        // aligned blocks of kLanes columns (the band's arrays are padded): most
        // spots are at most that wide, so this is one or two branch-free blocks
        // per row; alignment lets the domains of one reflection, which add to
        // the same subpixels one after the other, reuse each other's stores
        const double first = static_cast<double>(box.col0), last = static_cast<double>(box.col1);
        for (int col = box.col0 & ~(kLanes - 1); col <= box.col1; col += kLanes) {
            Lanes x, y, z;
            load_lanes(sx + col, x);
            load_lanes(sy + col, y);
            load_lanes(sz + col, z);
            // the per-pixel loop's arithmetic, lane by lane: dot(a, S) - h0, ...
            const Lanes dh = ax * x + ay * y + az * z - h0;
            const Lanes dk = bx * x + by * y + bz * z - k0;
            const Lanes dl = cx * x + cy * y + cz * z - l0;
            const Lanes column = lane_index + static_cast<double>(col);
            LaneMask keep = (column >= first) & (column <= last);
            if constexpr (kCheckNearest)
                keep &= (dh > -0.5) & (dh <= 0.5) & (dk > -0.5) & (dk <= 0.5) & (dl > -0.5) & (dl <= 0.5);
            Lanes value;
            if constexpr (kShape == SpotShape::kTophat) {
                const Lanes sh = dh * na, sk = dk * nb, sl = dl * nc;
                const Lanes r2 = sh * sh + sk * sk + sl * sl;
                keep &= r2 < kTophatRadiusSq;
                value = tophat_value + Lanes{};
            } else {
                for (int lane = 0; lane < kLanes; ++lane)
                    value[lane] = f_cell_sq * offset_intensity<kShape>(dh[lane], dk[lane], dl[lane], na, nb, nc);
            }
            add_where(sums + col, keep, value);
        }
    }
    return static_cast<long long>(box.row1 - box.row0 + 1) * (box.col1 - box.col0 + 1);
}

// Everything a band task reads, for one source.
struct SourcePass {
    const BraggProblem& p;
    const Source& src;
    const FootprintGeometry& geometry;
    const Candidates& cand;
    const std::vector<Box>& union_boxes;
    const DomainSet& domains;
    const SubpixelSampler& sampler;
    int source_index;
    double r_s;
};

// Renders the spots of the band's candidates into the band's subpixel rows
// [row0, row1], then adds the band's pixels to pixel_sum.
template <SpotShape kShape, bool kCheckNearest>
__attribute__((target_clones("avx2", "default"))) void render_band(const SourcePass& pass, const int* first, const int* last, int row0, int row1,
                 BandScratch& scratch, ParallelRun& run, double* pixel_sum, ReflectionStats& stats) {
    const FootprintGeometry& g = pass.geometry;
    const Candidates& cand = pass.cand;
    const DomainSet& dom = pass.domains;
    const int n_domains = dom.size();
    const int sub_cols = g.sub_cols;
    for (auto* v : {&scratch.near, &scratch.rgx, &scratch.rgy, &scratch.rgz, &scratch.px, &scratch.py, &scratch.pz})
        v->resize(n_domains);
    scratch.domains.resize(n_domains);
    for (auto* v : {&scratch.col_c, &scratch.row_c, &scratch.radius, &scratch.rim_sq, &scratch.cos_max,
                    &scratch.cos_min})
        v->resize(n_domains);
    scratch.sums.assign(static_cast<size_t>(row1 - row0 + 1) * sub_cols + kLanes, 0.0);
    if (first != last) band_scattering_vectors(pass.sampler, pass.src, row0, row1, sub_cols, scratch);

    const double r_s = pass.r_s;
    const double r_out_sq = (g.inv_lambda + r_s) * (g.inv_lambda + r_s);
    const double r_in = std::max(0.0, g.inv_lambda - r_s);
    const double r_in_sq = r_in * r_in;
    const double k_sq = dot(g.k0, g.k0);
    const double cap_offset_sq = g.inv_lambda * g.inv_lambda - r_s * r_s;
    const double *kx = dom.kx.data(), *ky = dom.ky.data(), *kz = dom.kz.data();
    const std::array<const double*, 9> rot{dom.rot[0].data(), dom.rot[1].data(), dom.rot[2].data(),
                                           dom.rot[3].data(), dom.rot[4].data(), dom.rot[5].data(),
                                           dom.rot[6].data(), dom.rot[7].data(), dom.rot[8].data()};

    for (const int* it = first; it != last; ++it) {
        if (run.stopped()) return;
        run.poll();
        const int i = *it;
        const double gx = cand.gx[i], gy = cand.gy[i], gz = cand.gz[i], g_sq = cand.g_sq[i];
        const Box& ubox = pass.union_boxes[i];
        const int clip0 = std::max(ubox.row0, row0), clip1 = std::min(ubox.row1, row1);

        // 1. shell test of every domain: |R G + k0|^2 = |G|^2 + |k0|^2 + 2 G . (R^T k0);
        // R G + k0 of every domain too, from contiguous rotations (cheaper than
        // gathering the rotations of the passing domains afterwards)
        double* near = scratch.near.data();
        double *rgx = scratch.rgx.data(), *rgy = scratch.rgy.data(), *rgz = scratch.rgz.data();
#pragma omp simd
        for (int d = 0; d < n_domains; ++d) {
            const double dist_sq = g_sq + k_sq + 2.0 * (gx * kx[d] + gy * ky[d] + gz * kz[d]);
            near[d] = static_cast<double>((dist_sq <= r_out_sq) & (dist_sq >= r_in_sq));
            rgx[d] = rot[0][d] * gx + rot[1][d] * gy + rot[2][d] * gz + g.k0.x;
            rgy[d] = rot[3][d] * gx + rot[4][d] * gy + rot[5][d] * gz + g.k0.y;
            rgz[d] = rot[6][d] * gx + rot[7][d] * gy + rot[8][d] * gz + g.k0.z;
        }
        int* passing = scratch.domains.data();
        double *px = scratch.px.data(), *py = scratch.py.data(), *pz = scratch.pz.data();
        int m = 0;
        for (int d = 0; d < n_domains; ++d) {
            passing[m] = d;
            px[m] = rgx[d];
            py[m] = rgy[d];
            pz[m] = rgz[d];
            m += near[d] != 0.0;
        }

        // 2. footprints of the passing domains' spots
        double *col_c = scratch.col_c.data(), *row_c = scratch.row_c.data(), *radius = scratch.radius.data();
        double *rim_sq = scratch.rim_sq.data(), *cos_max = scratch.cos_max.data(), *cos_min = scratch.cos_min.data();
#pragma omp simd
        for (int j = 0; j < m; ++j) {
            const Vec3 from_centre{px[j], py[j], pz[j]};
            const Footprint f = footprint(g, from_centre, cap_offset_sq);
            col_c[j] = f.col_c;
            row_c[j] = f.row_c;
            radius[j] = f.radius;
            rim_sq[j] = f.rim_sq;
            cos_max[j] = f.cos_max;
            cos_min[j] = f.cos_min;
        }

        // 3. the exact formula inside each footprint (rows of this band and of the union box)
        const double h0 = cand.h[i], k0 = cand.k[i], l0 = cand.l[i], f_cell_sq = cand.f_sq[i];
        for (int j = 0; j < m; ++j) {
            Box box;
            if (!footprint_box(g, Footprint{col_c[j], row_c[j], radius[j], rim_sq[j], cos_max[j], cos_min[j]}, box))
                continue;
            const int first_row = std::max(box.row0, ubox.row0);
            box.row0 = std::max(box.row0, clip0);
            box.row1 = std::min(box.row1, clip1);
            if (box.row0 > box.row1) continue;
            if (first_row >= row0) ++stats.spots;  // counted once: in the band of its first row
            stats.subpixels_tested += rasterise<kShape, kCheckNearest>(box, dom.bases[passing[j]], h0, k0, l0, f_cell_sq,
                                                        pass.p.crystal, row0, sub_cols, scratch);
        }
    }

    // 4. solid angle and polarisation of the band's pixels, where some spot landed
    const int n = pass.sampler.oversample();
    const int n_cols = pass.p.detector.cols;
    const double* sums = scratch.sums.data();
    for (int row = row0 / n; row <= row1 / n; ++row) {
        for (int col = 0; col < n_cols; ++col) {
            pixel_sum[static_cast<size_t>(row) * n_cols + col] += pass.sampler.sparse_source_pixel_sum(
                pass.source_index, row, col,
                [&](int r, int c) { return sums[static_cast<size_t>(r - row0) * sub_cols + c]; });
        }
    }
}

}  // namespace

ReflectionStats render_bragg_reflectionwise(const BraggProblem& p, float* image, int n_threads,
                                            const RunControl* control) {
    const DetectorGeometry& det = p.detector;
    const CrystalParams& xtal = p.crystal;
    const int threads = resolve_threads(n_threads);
    const int n = det.oversample;
    const int sub_rows = det.rows * n;
    const int band_rows = n * std::max(1, (kBandSubRows + n - 1) / n);  // whole pixels per band
    const int n_bands = (sub_rows + band_rows - 1) / band_rows;

    // Ball around each spot: radius rho * ||(diag(N) A)^-1||_2, the same for
    // every domain (rotations keep singular values).
    const Mat3 recip = inverse(xtal.real_basis_A);
    Mat3 spot_matrix = recip;
    const double n_cells[3] = {xtal.na, xtal.nb, xtal.nc};
    for (int i = 0; i < 3; ++i)
        for (int j = 0; j < 3; ++j) spot_matrix.m[i][j] /= n_cells[j];
    const double r_s = std::sqrt(compact_radius_sq(xtal.shape)) * spectral_norm(spot_matrix);
    // a spot reaches at most rho / N_i from its lattice point along axis i
    const double rho = std::sqrt(compact_radius_sq(xtal.shape));
    const bool check_nearest = !(rho < 0.49 * std::min({xtal.na, xtal.nb, xtal.nc}));
    const double mosaic_shift = max_rotation_angle(xtal.domain_rotations) * (1.0 + 1e-9) + 1e-12;

    DomainSet domains(xtal);
    const SubpixelSampler sampler(det, p.beam);
    ReflectionStats stats;
    // Working memory is kept by each thread from render to render (up to
    // kKeptScratchBytes): fresh pages for every image cost more than the
    // arithmetic of some of its parts.
    static thread_local std::vector<double> pixel_sum;
    pixel_sum.assign(static_cast<size_t>(det.rows) * det.cols, 0.0);
    double* const pixel_sums = pixel_sum.data();  // this thread's: the band tasks run on others

    for (int source = 0; source < static_cast<int>(p.beam.sources.size()); ++source) {
        const Source& src = p.beam.sources[source];
        const FootprintGeometry geometry(det, src);
        domains.set_beam(xtal.domain_rotations, geometry.k0);

        // 1. candidate reflections
        const double g_max = max_scattering_vector(det, src) + r_s;
        const Candidates cand = find_candidates(p, xtal.real_basis_A, geometry.k0, geometry.inv_lambda,
                                                r_s + mosaic_shift * g_max, g_max);
        const int n_cand = static_cast<int>(cand.gx.size());

        // 2. union boxes, and the candidates of each band (counting sort, in candidate order)
        std::vector<Box> union_boxes(n_cand);
        std::vector<int> band_count(n_bands + 1, 0);
        for (int i = 0; i < n_cand; ++i) {
            const double radius = r_s + mosaic_shift * std::sqrt(cand.g_sq[i]);
            const Vec3 from_centre = Vec3{cand.gx[i], cand.gy[i], cand.gz[i]} + geometry.k0;
            const Footprint f = footprint(geometry, from_centre,
                                          geometry.inv_lambda * geometry.inv_lambda - radius * radius);
            Box& box = union_boxes[i];
            if (!footprint_box(geometry, f, box)) {
                box = {1, 0, 1, 0};  // empty: in no band
                continue;
            }
            for (int b = box.row0 / band_rows; b <= box.row1 / band_rows; ++b) ++band_count[b + 1];
        }
        for (int b = 0; b < n_bands; ++b) band_count[b + 1] += band_count[b];
        std::vector<int> band_members(band_count[n_bands]);
        {
            std::vector<int> next(band_count.begin(), band_count.end() - 1);
            for (int i = 0; i < n_cand; ++i) {
                const Box& box = union_boxes[i];
                if (box.row0 > box.row1) continue;
                for (int b = box.row0 / band_rows; b <= box.row1 / band_rows; ++b) band_members[next[b]++] = i;
            }
        }

        // 3-4. the bands
        const SourcePass pass{p, src, geometry, cand, union_boxes, domains, sampler, source, r_s};
        ParallelRun run(control, "bragg_reflection");
        long long spots = 0, tested = 0;
#pragma omp parallel num_threads(threads) reduction(+ : spots, tested)
        {
            static thread_local BandScratch scratch;
            ReflectionStats local;
#pragma omp for schedule(dynamic, 1)
            for (int b = 0; b < n_bands; ++b) {
                run.task([&] {
                    const int row0 = b * band_rows, row1 = std::min(sub_rows - 1, row0 + band_rows - 1);
                    const int* first = band_members.data() + band_count[b];
                    const int* last = band_members.data() + band_count[b + 1];
                    auto* band = xtal.shape == SpotShape::kTophat
                                     ? (check_nearest ? render_band<SpotShape::kTophat, true>
                                                      : render_band<SpotShape::kTophat, false>)
                                     : (check_nearest ? render_band<SpotShape::kGauss, true>
                                                      : render_band<SpotShape::kGauss, false>);
                    band(pass, first, last, row0, row1, scratch, run, pixel_sums, local);
                });
            }
            spots += local.spots;
            tested += local.subpixels_tested;
        }
        run.finish();
        stats.spots += spots;
        stats.subpixels_tested += tested;
    }

    const double scale = photon_scale(p);
    for (size_t i = 0; i < pixel_sum.size(); ++i) image[i] = static_cast<float>(scale * pixel_sum[i]);
    if (pixel_sum.size() * sizeof(double) > kKeptScratchBytes) std::vector<double>().swap(pixel_sum);
    return stats;
}

}  // namespace diffranet
