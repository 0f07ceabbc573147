// Point-spread function: convolution of a photon-count image with a
// normalised, separable (Gaussian) kernel, zero outside the image (light that
// spreads off the detector is lost). The fiber-optic taper PSF, whose long
// 1/r^3 tails make its kernel hundreds of pixels wide, is applied by FFT in
// the Python layer (scipy.fft). Deterministic for any thread count: every
// output value is summed in a fixed order by one thread.
#include <cstddef>
#include <vector>

#include "diffranet/parallel.hpp"
#include "diffranet/response.hpp"

namespace diffranet {

void convolve_separable(const float* in, int rows, int cols, const double* kernel, int radius, float* out,
                        int n_threads) {
    const int threads = resolve_threads(n_threads);
    std::vector<double> along_rows(static_cast<std::size_t>(rows) * cols, 0.0);
    ParallelRun errors(nullptr, "convolve_separable");
#pragma omp parallel for schedule(static) num_threads(threads)
    for (int r = 0; r < rows; ++r) {
        errors.task([&] {
            const float* src = in + static_cast<std::ptrdiff_t>(r) * cols;
            double* dst = along_rows.data() + static_cast<std::ptrdiff_t>(r) * cols;
            for (int d = -radius; d <= radius; ++d) {
                const double w = kernel[d < 0 ? -d : d];
                const int c_lo = d < 0 ? -d : 0;
                const int c_hi = d > 0 ? cols - d : cols;
                for (int c = c_lo; c < c_hi; ++c) dst[c] += w * src[c + d];
            }
        });
    }
    errors.finish();
#pragma omp parallel num_threads(threads)
    {
        std::vector<double> acc;
        errors.task([&] { acc.resize(cols); });
#pragma omp for schedule(static)
        for (int r = 0; r < rows; ++r) {
            errors.task([&] {
                for (int c = 0; c < cols; ++c) acc[c] = 0.0;
                const int d_lo = r - radius < 0 ? -r : -radius;
                const int d_hi = r + radius >= rows ? rows - 1 - r : radius;
                for (int d = d_lo; d <= d_hi; ++d) {
                    const double w = kernel[d < 0 ? -d : d];
                    const double* src = along_rows.data() + static_cast<std::ptrdiff_t>(r + d) * cols;
                    for (int c = 0; c < cols; ++c) acc[c] += w * src[c];
                }
                float* dst = out + static_cast<std::ptrdiff_t>(r) * cols;
                for (int c = 0; c < cols; ++c) dst[c] = static_cast<float>(acc[c]);
            });
        }
    }
    errors.finish();
}

}  // namespace diffranet
