// GLCM Haralick features, computed without storing the normalised matrix.
//
// Every sum over the co-occurrence counts c(i, j) is accumulated in exact
// integer arithmetic and divided by the pair count N only at the end, so the
// features equal scikit-image's graycomatrix + graycoprops to rounding and
// the correlation does not suffer from cancellation in E[ij] - E[i]E[j].
//
// References: R. M. Haralick, K. Shanmugam, I. Dinstein, "Textural features
// for image classification", IEEE Trans. SMC 3 (1973) 610-621,
// doi:10.1109/TSMC.1973.4309314.

#include "diffranet/texture.hpp"

#include "diffranet/parallel.hpp"
#include "diffranet/threads.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

namespace diffranet {
namespace {

using int128 = __int128;

// Grey-level range [lo, hi] present in one image: the GLCM is zero outside
// that square, so the reductions only visit it.
void grey_range(const uint8_t* image, int64_t n_pixels, int& lo, int& hi) {
    uint8_t mn = 255, mx = 0;
    for (int64_t k = 0; k < n_pixels; ++k) {
        mn = std::min(mn, image[k]);
        mx = std::max(mx, image[k]);
    }
    lo = mn;
    hi = mx;
}

// Number of interleaved partial histograms used while counting: consecutive
// pixels of a smooth image often hit the same cell, and spreading them over
// separate copies removes that store-to-load dependency.
constexpr int kCopies = 4;

// Count the pixel pairs (image[r, c], image[r + drow, c + dcol]) and return
// their number N. Only grey levels [lo, hi] occur, so the matrix is stored
// compactly: cell (i, j) at (i - lo) * span + (j - lo), span = hi - lo + 1.
// `counts` holds kCopies * span^2 cells; on return the first span^2 hold the
// GLCM (made symmetric if asked).
uint64_t count_pairs(const uint8_t* image, int64_t rows, int64_t cols, GlcmOffset off, int lo, int hi,
                     bool symmetric, uint32_t* counts) {
    const int64_t span = hi - lo + 1;
    const int64_t cells = span * span;
    std::fill_n(counts, kCopies * cells, 0u);
    const int64_t r0 = std::max<int64_t>(0, -off.drow);
    const int64_t r1 = std::min<int64_t>(rows, rows - off.drow);
    const int64_t c0 = std::max<int64_t>(0, -off.dcol);
    const int64_t c1 = std::min<int64_t>(cols, cols - off.dcol);
    if (r1 <= r0 || c1 <= c0) return 0;
    // Grey levels (a, b) index cell a * span + b - shift of the compact matrix.
    const int64_t shift = lo * span + lo;
    uint32_t* copy[kCopies];
    for (int k = 0; k < kCopies; ++k) copy[k] = counts + k * cells;
    for (int64_t r = r0; r < r1; ++r) {
        const uint8_t* first = image + r * cols;
        const uint8_t* second = image + (r + off.drow) * cols + off.dcol;
        int64_t c = c0;
        for (; c + kCopies <= c1; c += kCopies) {
            for (int k = 0; k < kCopies; ++k) ++copy[k][first[c + k] * span + second[c + k] - shift];
        }
        for (; c < c1; ++c) ++copy[0][first[c] * span + second[c] - shift];
    }
    for (int k = 1; k < kCopies; ++k) {
        for (int64_t cell = 0; cell < cells; ++cell) counts[cell] += counts[k * cells + cell];
    }
    const uint64_t n_pairs = static_cast<uint64_t>(r1 - r0) * static_cast<uint64_t>(c1 - c0);
    if (!symmetric) return n_pairs;
    // P + P^T: the diagonal doubles, off-diagonal pairs become their sum.
    for (int64_t i = 0; i < span; ++i) {
        counts[i * span + i] *= 2;
        for (int64_t j = i + 1; j < span; ++j) {
            const uint32_t sum = counts[i * span + j] + counts[j * span + i];
            counts[i * span + j] = sum;
            counts[j * span + i] = sum;
        }
    }
    return 2 * n_pairs;
}

// Haralick features of the compact counts of grey levels [lo, hi].
void haralick(const uint32_t* counts, uint64_t n_pairs, int lo, int hi, const double* inv_one_plus_sq,
              double* feat) {
    if (n_pairs == 0) {
        std::fill(feat, feat + kGlcmPropertyCount, 0.0);
        feat[kCorrelation] = 1.0;
        return;
    }
    const int span = hi - lo + 1;
    uint64_t s_con = 0, s_dis = 0, s_asm = 0;
    uint64_t s_i = 0, s_j = 0, s_ii = 0, s_jj = 0, s_ij = 0;
    double s_hom = 0.0;
    for (int i = lo; i <= hi; ++i) {
        const uint32_t* row = counts + static_cast<int64_t>(i - lo) * span;
        uint64_t row_sum = 0, row_j = 0;
        for (int j = lo; j <= hi; ++j) {
            const uint64_t c = row[j - lo];
            if (c == 0) continue;
            const int d = i > j ? i - j : j - i;
            row_sum += c;
            row_j += c * static_cast<uint64_t>(j);
            s_jj += c * static_cast<uint64_t>(j * j);
            s_con += c * static_cast<uint64_t>(d * d);
            s_dis += c * static_cast<uint64_t>(d);
            s_asm += c * c;
            s_hom += static_cast<double>(c) * inv_one_plus_sq[d];
        }
        s_i += row_sum * static_cast<uint64_t>(i);
        s_ii += row_sum * static_cast<uint64_t>(i * i);
        s_j += row_j;
        s_ij += row_j * static_cast<uint64_t>(i);
    }
    const double n = static_cast<double>(n_pairs);
    feat[kContrast] = static_cast<double>(s_con) / n;
    feat[kDissimilarity] = static_cast<double>(s_dis) / n;
    feat[kHomogeneity] = s_hom / n;
    feat[kAsm] = static_cast<double>(s_asm) / (n * n);
    feat[kEnergy] = std::sqrt(feat[kAsm]);
    // N^2 var_i = N sum c i^2 - (sum c i)^2, exact in 128-bit integers.
    const int128 big_n = static_cast<int128>(n_pairs);
    const int128 var_i = big_n * s_ii - static_cast<int128>(s_i) * s_i;
    const int128 var_j = big_n * s_jj - static_cast<int128>(s_j) * s_j;
    const int128 cov = big_n * s_ij - static_cast<int128>(s_i) * s_j;
    if (var_i == 0 || var_j == 0) {
        feat[kCorrelation] = 1.0;
    } else {
        feat[kCorrelation] = static_cast<double>(cov) /
                             (std::sqrt(static_cast<double>(var_i)) * std::sqrt(static_cast<double>(var_j)));
    }
}

}  // namespace

void glcm_features(const uint8_t* images, int64_t n_images, int64_t rows, int64_t cols,
                   const GlcmOffset* offsets, int64_t n_offsets, int levels, bool symmetric,
                   double* out, int n_threads) {
    const int64_t n_pixels = rows * cols;
    const int64_t n_tasks = n_images * n_offsets;
    std::vector<double> inv_one_plus_sq(levels);
    for (int d = 0; d < levels; ++d) inv_one_plus_sq[d] = 1.0 / (1.0 + static_cast<double>(d) * d);
    n_threads = resolve_threads(n_threads);

    ParallelRun errors(nullptr, "glcm_features");
#pragma omp parallel num_threads(n_threads)
    {
        std::vector<uint32_t> counts;
        errors.task([&] { counts.resize(static_cast<size_t>(kCopies) * levels * levels); });
#pragma omp for schedule(dynamic)
        for (int64_t task = 0; task < n_tasks; ++task) {
            errors.task([&] {
                const int64_t k = task / n_offsets;
                const int64_t o = task % n_offsets;
                const uint8_t* image = images + k * n_pixels;
                int lo = 0, hi = 0;
                grey_range(image, n_pixels, lo, hi);
                const uint64_t n_pairs =
                    count_pairs(image, rows, cols, offsets[o], lo, hi, symmetric, counts.data());
                haralick(counts.data(), n_pairs, lo, hi, inv_one_plus_sq.data(), out + task * kGlcmPropertyCount);
            });
        }
    }
    errors.finish();
}

}  // namespace diffranet
