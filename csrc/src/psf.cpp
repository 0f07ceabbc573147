// Point-spread function: convolution of a photon-count image with a
// normalised kernel, zero outside the image (light that spreads off the
// detector is lost). A Gaussian is separable and applied directly; the
// fiber-optic taper PSF has long 1/r^3 tails, so its kernel is large and is
// applied by zero-padded FFT. Both are deterministic for any thread count:
// every output value is summed in a fixed order by one thread.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>

#include "diffranet/constants.hpp"
#include "diffranet/response.hpp"

namespace diffranet {

namespace {

struct Complex {
    double re = 0.0;
    double im = 0.0;
};

// In-place iterative radix-2 FFT of one length (a power of two), with the
// bit-reversal permutation and the twiddle factors computed once. The
// twiddles of the stage of butterfly span `half` are stored contiguously at
// [half, 2 half), exp(-+ i pi j / half), so the inner loop reads them in order.
// inverse = true gives the unnormalised backward transform (sign +i).
class Fft {
  public:
    explicit Fft(int n) : n_(n), forward_(n > 1 ? n : 2), backward_(n > 1 ? n : 2), reversed_(n) {
        for (int half = 1; half < n; half <<= 1) {
            for (int j = 0; j < half; ++j) {
                const double angle = kPi * j / half;
                forward_[half + j] = {std::cos(angle), -std::sin(angle)};
                backward_[half + j] = {std::cos(angle), std::sin(angle)};
            }
        }
        int bits = 0;
        while ((1 << bits) < n) ++bits;
        for (int i = 0; i < n; ++i) {
            int r = 0;
            for (int b = 0; b < bits; ++b) r |= ((i >> b) & 1) << (bits - 1 - b);
            reversed_[i] = r;
        }
    }

    void run(Complex* a, bool inverse) const {
        for (int i = 0; i < n_; ++i)
            if (i < reversed_[i]) std::swap(a[i], a[reversed_[i]]);
        // span-1 butterflies have the twiddle 1
        for (int start = 0; start + 1 < n_; start += 2) {
            const Complex lo = a[start];
            const Complex hi = a[start + 1];
            a[start] = {lo.re + hi.re, lo.im + hi.im};
            a[start + 1] = {lo.re - hi.re, lo.im - hi.im};
        }
        const Complex* table = inverse ? backward_.data() : forward_.data();
        for (int half = 2; half < n_; half <<= 1) {
            const Complex* w = table + half;
            for (int start = 0; start < n_; start += 2 * half) {
                Complex* lo = a + start;
                Complex* hi = lo + half;
                for (int j = 0; j < half; ++j) {
                    const double tr = hi[j].re * w[j].re - hi[j].im * w[j].im;
                    const double ti = hi[j].re * w[j].im + hi[j].im * w[j].re;
                    hi[j] = {lo[j].re - tr, lo[j].im - ti};
                    lo[j] = {lo[j].re + tr, lo[j].im + ti};
                }
            }
        }
    }

  private:
    int n_;
    std::vector<Complex> forward_;
    std::vector<Complex> backward_;
    std::vector<int> reversed_;
};

// Row spectra of a real image: rows [0, rows) of `in` (cols wide, the rest of
// the mcols-long row zero) go to the half-spectrum rows of `spec`
// (mcols/2 + 1 wide). Two real rows share one complex FFT, z = x0 + i x1,
// and are separated by X0[k] = (Z[k] + Z*[-k]) / 2, X1[k] = (Z[k] - Z*[-k]) / 2i.
template <typename T>
void forward_rows(const T* in, int rows, int cols, const Fft& fft, int mcols, Complex* spec, int threads) {
    const int width = mcols / 2 + 1;
    const int pairs = (rows + 1) / 2;
#pragma omp parallel num_threads(threads)
    {
        std::vector<Complex> z(mcols);
#pragma omp for schedule(static)
        for (int p = 0; p < pairs; ++p) {
            const int r0 = 2 * p;
            const int r1 = r0 + 1;
            const T* x0 = in + static_cast<std::ptrdiff_t>(r0) * cols;
            const T* x1 = r1 < rows ? in + static_cast<std::ptrdiff_t>(r1) * cols : nullptr;
            for (int c = 0; c < mcols; ++c) z[c] = {};
            for (int c = 0; c < cols; ++c) z[c] = {static_cast<double>(x0[c]), x1 ? static_cast<double>(x1[c]) : 0.0};
            fft.run(z.data(), false);
            Complex* s0 = spec + static_cast<std::ptrdiff_t>(r0) * width;
            Complex* s1 = spec + static_cast<std::ptrdiff_t>(r1) * width;
            for (int k = 0; k < width; ++k) {
                const Complex zk = z[k];
                const Complex zm = z[(mcols - k) & (mcols - 1)];
                s0[k] = {0.5 * (zk.re + zm.re), 0.5 * (zk.im - zm.im)};
                if (r1 < rows) s1[k] = {0.5 * (zk.im + zm.im), -0.5 * (zk.re - zm.re)};
            }
        }
    }
}

}  // namespace

void convolve_separable(const float* in, int rows, int cols, const double* kernel, int radius, float* out,
                        int n_threads) {
    const int threads = resolve_threads(n_threads);
    std::vector<double> along_rows(static_cast<std::size_t>(rows) * cols, 0.0);
#pragma omp parallel for schedule(static) num_threads(threads)
    for (int r = 0; r < rows; ++r) {
        const float* src = in + static_cast<std::ptrdiff_t>(r) * cols;
        double* dst = along_rows.data() + static_cast<std::ptrdiff_t>(r) * cols;
        for (int d = -radius; d <= radius; ++d) {
            const double w = kernel[d < 0 ? -d : d];
            const int c_lo = d < 0 ? -d : 0;
            const int c_hi = d > 0 ? cols - d : cols;
            for (int c = c_lo; c < c_hi; ++c) dst[c] += w * src[c + d];
        }
    }
#pragma omp parallel num_threads(threads)
    {
        std::vector<double> acc(cols);
#pragma omp for schedule(static)
        for (int r = 0; r < rows; ++r) {
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
        }
    }
}

std::vector<double> kernel_spectrum(const double* kernel, int ry, int rx, int mrows, int mcols, int n_threads) {
    const int threads = resolve_threads(n_threads);
    const int kcols = 2 * rx + 1;
    // the kernel on the periodic grid, centre at (0, 0), negative offsets wrapped
    std::vector<double> grid(static_cast<std::size_t>(mrows) * mcols, 0.0);
    for (int dy = -ry; dy <= ry; ++dy)
        for (int dx = -rx; dx <= rx; ++dx)
            grid[static_cast<std::size_t>((dy + mrows) % mrows) * mcols + (dx + mcols) % mcols] =
                kernel[static_cast<std::size_t>(dy + ry) * kcols + dx + rx];
    const int width = mcols / 2 + 1;
    std::vector<Complex> spec(static_cast<std::size_t>(mrows) * width);
    const Fft row_fft(mcols);
    const Fft col_fft(mrows);
    forward_rows(grid.data(), mrows, mcols, row_fft, mcols, spec.data(), threads);
    std::vector<double> out(static_cast<std::size_t>(mrows) * width);
#pragma omp parallel num_threads(threads)
    {
        std::vector<Complex> column(mrows);
#pragma omp for schedule(static)
        for (int k = 0; k < width; ++k) {
            for (int r = 0; r < mrows; ++r) column[r] = spec[static_cast<std::size_t>(r) * width + k];
            col_fft.run(column.data(), false);
            // a kernel even in both axes has a real spectrum
            for (int r = 0; r < mrows; ++r) out[static_cast<std::size_t>(r) * width + k] = column[r].re;
        }
    }
    return out;
}

void convolve_fft(const float* in, int rows, int cols, const double* spectrum, int mrows, int mcols, float* out,
                  int n_threads) {
    const int threads = resolve_threads(n_threads);
    const int width = mcols / 2 + 1;
    const Fft row_fft(mcols);
    const Fft col_fft(mrows);
    // half-spectra of the image rows; rows >= `rows` are zero padding
    std::vector<Complex> spec(static_cast<std::size_t>(rows + 1) * width);
    forward_rows(in, rows, cols, row_fft, mcols, spec.data(), threads);

    // along the columns: forward FFT, multiply by the kernel's spectrum, back;
    // only the first `rows` rows of the result are ever needed. Columns go in
    // blocks of kBlock, so each row's cache line is read and written once.
    constexpr int kBlock = 4;
    const int blocks = (width + kBlock - 1) / kBlock;
#pragma omp parallel num_threads(threads)
    {
        std::vector<Complex> buffer(static_cast<std::size_t>(kBlock) * mrows);
#pragma omp for schedule(static)
        for (int block = 0; block < blocks; ++block) {
            const int k0 = block * kBlock;
            const int nk = std::min(kBlock, width - k0);
            for (int r = 0; r < rows; ++r) {
                const Complex* src = spec.data() + static_cast<std::size_t>(r) * width + k0;
                for (int j = 0; j < nk; ++j) buffer[static_cast<std::size_t>(j) * mrows + r] = src[j];
            }
            for (int j = 0; j < nk; ++j) {
                Complex* column = buffer.data() + static_cast<std::size_t>(j) * mrows;
                for (int r = rows; r < mrows; ++r) column[r] = {};
                col_fft.run(column, false);
                for (int r = 0; r < mrows; ++r) {
                    const double h = spectrum[static_cast<std::size_t>(r) * width + k0 + j];
                    column[r].re *= h;
                    column[r].im *= h;
                }
                col_fft.run(column, true);
            }
            for (int r = 0; r < rows; ++r) {
                Complex* dst = spec.data() + static_cast<std::size_t>(r) * width + k0;
                for (int j = 0; j < nk; ++j) dst[j] = buffer[static_cast<std::size_t>(j) * mrows + r];
            }
        }
    }

    // back along the rows, two real rows per complex FFT: z = X0 + i X1 with
    // X[-k] = X*[k] filling the upper half of each row's spectrum
    const double norm = 1.0 / (static_cast<double>(mrows) * mcols);
    const int pairs = (rows + 1) / 2;
#pragma omp parallel num_threads(threads)
    {
        std::vector<Complex> z(mcols);
#pragma omp for schedule(static)
        for (int p = 0; p < pairs; ++p) {
            const int r0 = 2 * p;
            const int r1 = r0 + 1;
            const Complex* s0 = spec.data() + static_cast<std::size_t>(r0) * width;
            const Complex* s1 = r1 < rows ? spec.data() + static_cast<std::size_t>(r1) * width : nullptr;
            for (int k = 0; k < mcols; ++k) {
                const bool low = k < width;
                const int j = low ? k : mcols - k;
                const double conj = low ? 1.0 : -1.0;
                const Complex a{s0[j].re, conj * s0[j].im};
                const Complex b = s1 ? Complex{s1[j].re, conj * s1[j].im} : Complex{};
                z[k] = {a.re - b.im, a.im + b.re};
            }
            row_fft.run(z.data(), true);
            float* o0 = out + static_cast<std::ptrdiff_t>(r0) * cols;
            for (int c = 0; c < cols; ++c) o0[c] = static_cast<float>(z[c].re * norm);
            if (s1) {
                float* o1 = out + static_cast<std::ptrdiff_t>(r1) * cols;
                for (int c = 0; c < cols; ++c) o1[c] = static_cast<float>(z[c].im * norm);
            }
        }
    }
}

}  // namespace diffranet
