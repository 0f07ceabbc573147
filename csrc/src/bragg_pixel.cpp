// The per-pixel Bragg loop: every subpixel x source x mosaic domain.
// Written as a structure-of-arrays loop over domains so that the compiler can
// vectorise the Miller-index and lattice-transform arithmetic.
#include <stdexcept>
#include <vector>

#include "bragg_common.hpp"
#include "diffranet/detector.hpp"
#include "diffranet/parallel.hpp"
#include "diffranet/subpixel.hpp"

namespace diffranet {

namespace {

struct DomainArrays {
    std::vector<double> ax, ay, az, bx, by, bz, cx, cy, cz;

    explicit DomainArrays(const std::vector<Mat3>& bases) {
        for (const Mat3& m : bases) {
            ax.push_back(m.m[0][0]); ay.push_back(m.m[0][1]); az.push_back(m.m[0][2]);
            bx.push_back(m.m[1][0]); by.push_back(m.m[1][1]); bz.push_back(m.m[1][2]);
            cx.push_back(m.m[2][0]); cy.push_back(m.m[2][1]); cz.push_back(m.m[2][2]);
        }
    }
    int size() const { return static_cast<int>(ax.size()); }
};

// Sum over domains of |F_cell|^2 |F_latt|^2 at scattering vector s (1/A).
// Two passes: the lattice transforms of all domains (branch-free arithmetic
// the compiler vectorises), then the structure-factor lookups where they are
// non-zero. `latt` is per-thread scratch space of one value per domain.
template <SpotShape kShape>
double domain_sum(const DomainArrays& dom, const Vec3& s, const CrystalParams& xtal,
                  const StructureFactorTable& sf, std::vector<double>& latt, std::vector<double>& hkl) {
    const int n = dom.size();
    const double na = xtal.na, nb = xtal.nb, nc = xtal.nc;
    double* hs = hkl.data();
    double* ks = hs + n;
    double* ls = ks + n;
#pragma omp simd
    for (int d = 0; d < n; ++d) {
        const double h = dom.ax[d] * s.x + dom.ay[d] * s.y + dom.az[d] * s.z;
        const double k = dom.bx[d] * s.x + dom.by[d] * s.y + dom.bz[d] * s.z;
        const double l = dom.cx[d] * s.x + dom.cy[d] * s.y + dom.cz[d] * s.z;
        hs[d] = h;
        ks[d] = k;
        ls[d] = l;
        latt[d] = lattice_intensity<kShape>(h, k, l, na, nb, nc);
    }
    double sum = 0.0;
    for (int d = 0; d < n; ++d) {
        if (latt[d] == 0.0) continue;
        const double f = sf.amplitude(static_cast<int>(nearest_index(hs[d])), static_cast<int>(nearest_index(ks[d])),
                                      static_cast<int>(nearest_index(ls[d])));
        sum += f * f * latt[d];
    }
    return sum;
}

template <SpotShape kShape>
void render(const BraggProblem& p, float* image, int n_threads, const RunControl* control) {
    const DetectorGeometry& det = p.detector;
    const DomainArrays domains(domain_bases(p.crystal));
    const double scale = photon_scale(p);
    const SubpixelDirections directions(det, n_threads);
    DetectorGeometry cached = det;
    cached.directions = directions.data();
    const SubpixelSampler sampler(cached, p.beam);
    ParallelRun run(control, "bragg_pixel");

#pragma omp parallel num_threads(resolve_threads(n_threads))
    {
        std::vector<double> latt, hkl;
#pragma omp for schedule(dynamic, 1)
        for (int row = 0; row < det.rows; ++row) {
            run.task([&] {
                latt.resize(domains.size());
                hkl.resize(3 * domains.size());
                for (int col = 0; col < det.cols; ++col) {
                    if (run.stopped()) return;
                    run.poll();  // a pixel is many domains: poll (cheaply) at each
                    const double pixel_sum = sampler.pixel_sum(row, col, [&](int j, const Vec3& diffracted) {
                        const Source& src = p.beam.sources[j];
                        const Vec3 s = (diffracted - src.direction) * (1.0 / src.wavelength_A);
                        return domain_sum<kShape>(domains, s, p.crystal, p.structure_factors, latt, hkl);
                    });
                    image[static_cast<long long>(row) * det.cols + col] = static_cast<float>(scale * pixel_sum);
                }
            });
        }
    }
    run.finish();
}

}  // namespace

void render_bragg_pixelwise(const BraggProblem& p, float* image, int n_threads, const RunControl* control) {
    switch (p.crystal.shape) {
        case SpotShape::kSinc: render<SpotShape::kSinc>(p, image, n_threads, control); break;
        case SpotShape::kTophat: render<SpotShape::kTophat>(p, image, n_threads, control); break;
        case SpotShape::kGauss: render<SpotShape::kGauss>(p, image, n_threads, control); break;
        case SpotShape::kRound: render<SpotShape::kRound>(p, image, n_threads, control); break;
        default: throw std::invalid_argument("unknown spot shape");
    }
}

}  // namespace diffranet
