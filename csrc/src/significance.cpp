// Local significance of 8-bit model inputs: per cell, background and noise
// from the darkest share of its pixels (a 256-level histogram); per block, the
// maximum (and on request the second-largest value) without overloads (255),
// against the cell statistics interpolated bilinearly between cell centres.
// See diffranet/features/significance.py.
#include "diffranet/significance.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <vector>

#include "diffranet/threads.hpp"

namespace diffranet {
namespace {

constexpr int kLevels = 256;
constexpr std::uint8_t kOverload = 255;

// Mean and standard deviation of the lowest `share` of a histogram's values;
// the level where the share is reached counts in part.
void lower_moments(const std::array<std::int32_t, kLevels>& histogram, double share, double& mean, double& std) {
    double total = 0.0;
    for (int v = 0; v < kLevels; ++v) total += histogram[v];
    const double wanted = share * total;
    double below = 0.0, n = 0.0, sum = 0.0, sum2 = 0.0;
    for (int v = 0; v < kLevels && below < wanted; ++v) {
        const double w = std::min(static_cast<double>(histogram[v]), wanted - below);
        n += w;
        sum += w * v;
        sum2 += w * v * static_cast<double>(v);
        below += histogram[v];
    }
    n = std::max(n, 1.0);
    mean = sum / n;
    std = std::sqrt(std::max(sum2 / n - mean * mean, 0.0));
}

// Left cell and weight of the right cell, for point `i` of `per_cell` per cell (bilinear between centres).
void interpolation(int i, int per_cell, int n_cells, int& left, float& weight) {
    double position = (i + 0.5) / per_cell - 0.5;
    position = std::clamp(position, 0.0, static_cast<double>(n_cells - 1));
    left = std::min(static_cast<int>(std::floor(position)), std::max(n_cells - 2, 0));
    weight = static_cast<float>(position - left);
}

// The 256-level histogram of each cell, cell by cell (no division per pixel),
// in four partial histograms: neighbouring pixels mostly share a level, and
// one histogram would make each increment wait for the one before.
void cell_histograms(const std::uint8_t* image, int rows, int cols, int cell_px,
                     std::vector<std::array<std::int32_t, kLevels>>& histograms) {
    const int cr = rows / cell_px, cc = cols / cell_px;
    std::array<std::array<std::int32_t, kLevels>, 4> partial;
    for (int i = 0; i < cr; ++i) {
        for (int j = 0; j < cc; ++j) {
            for (auto& h : partial) h.fill(0);
            for (int r = i * cell_px; r < (i + 1) * cell_px; ++r) {
                const std::uint8_t* row = image + static_cast<std::int64_t>(r) * cols + static_cast<std::int64_t>(j) * cell_px;
                int c = 0;
                for (; c + 4 <= cell_px; c += 4)
                    for (int lane = 0; lane < 4; ++lane) ++partial[lane][row[c + lane]];
                for (; c < cell_px; ++c) ++partial[0][row[c]];
            }
            auto& h = histograms[static_cast<std::size_t>(i) * cc + j];
            for (int v = 0; v < kLevels; ++v) h[v] = partial[0][v] + partial[1][v] + partial[2][v] + partial[3][v];
        }
    }
}

// The maximum of each block of one block row, overloads (255) counted as 0:
// the rows' maxima column by column first (vectorised), then across each block.
void block_maxima(const std::uint8_t* block_row, int cols, int block_px, std::vector<std::uint8_t>& columns,
                  std::vector<std::uint8_t>& maxima) {
    std::fill(columns.begin(), columns.end(), 0);
    for (int r = 0; r < block_px; ++r) {
        const std::uint8_t* row = block_row + static_cast<std::int64_t>(r) * cols;
        for (int c = 0; c < cols; ++c) {
            const std::uint8_t v = row[c] == kOverload ? 0 : row[c];
            columns[c] = std::max(columns[c], v);
        }
    }
    for (std::size_t j = 0; j < maxima.size(); ++j) {
        const std::uint8_t* block = columns.data() + j * block_px;
        maxima[j] = *std::max_element(block, block + block_px);
    }
}

// The two largest values of each block of one block row (equal values count twice), overloads as 0:
// column by column first, then across each block, each pair kept without branches.
void block_top_two(const std::uint8_t* block_row, int cols, int block_px, std::vector<std::uint8_t>& first,
                   std::vector<std::uint8_t>& second, std::vector<std::uint8_t>& maxima,
                   std::vector<std::uint8_t>& seconds) {
    std::fill(first.begin(), first.end(), 0);
    std::fill(second.begin(), second.end(), 0);
    for (int r = 0; r < block_px; ++r) {
        const std::uint8_t* row = block_row + static_cast<std::int64_t>(r) * cols;
        for (int c = 0; c < cols; ++c) {
            const std::uint8_t v = row[c] == kOverload ? 0 : row[c];
            second[c] = std::max(second[c], std::min(first[c], v));
            first[c] = std::max(first[c], v);
        }
    }
    for (std::size_t j = 0; j < maxima.size(); ++j) {
        std::uint8_t m1 = 0, m2 = 0;
        for (int c = static_cast<int>(j) * block_px; c < (static_cast<int>(j) + 1) * block_px; ++c) {
            // merge the column's pair (first >= second) into the block's
            m2 = std::max({m2, std::min(m1, first[c]), second[c]});
            m1 = std::max(m1, first[c]);
        }
        maxima[j] = m1;
        seconds[j] = m2;
    }
}

void one_image(const std::uint8_t* image, int rows, int cols, const SignificanceParams& p, float* out) {
    const int cr = rows / p.cell_px, cc = cols / p.cell_px;
    const int br = rows / p.block_px, bc = cols / p.block_px;
    std::vector<std::array<std::int32_t, kLevels>> histograms(static_cast<std::size_t>(cr) * cc);
    cell_histograms(image, rows, cols, p.cell_px, histograms);
    std::vector<float> level(histograms.size()), noise(histograms.size());
    for (std::size_t k = 0; k < histograms.size(); ++k) {
        histograms[k][kOverload] = 0;  // overloads are not measurements
        double mean = 0.0, std = 0.0;
        lower_moments(histograms[k], p.lower_share, mean, std);
        const double sigma = std::max(std / p.std_factor, p.noise_floor);
        noise[k] = static_cast<float>(sigma);
        level[k] = static_cast<float>(mean + p.mean_shift * sigma);
    }
    const int per = p.cell_px / p.block_px;
    std::vector<int> col_left(bc);
    std::vector<float> col_weight(bc);
    for (int j = 0; j < bc; ++j) interpolation(j, per, cc, col_left[j], col_weight[j]);
    std::vector<std::uint8_t> columns(cols), maxima(bc), column_seconds(p.second ? cols : 0), seconds(bc);
    const std::int64_t plane = static_cast<std::int64_t>(br) * bc;
    for (int i = 0; i < br; ++i) {
        const std::uint8_t* block_row = image + static_cast<std::int64_t>(i) * p.block_px * cols;
        if (p.second)
            block_top_two(block_row, cols, p.block_px, columns, column_seconds, maxima, seconds);
        else
            block_maxima(block_row, cols, p.block_px, columns, maxima);
        int top;
        float wr;
        interpolation(i, per, cr, top, wr);
        const int bottom = std::min(top + 1, cr - 1);
        float* out_row = out + static_cast<std::int64_t>(i) * bc;
        for (int j = 0; j < bc; ++j) {
            const int l = col_left[j], rgt = std::min(l + 1, cc - 1);
            const float wc = col_weight[j];
            auto at = [&](const std::vector<float>& grid, int a, int b) { return grid[static_cast<std::size_t>(a) * cc + b]; };
            const float bg = (1 - wr) * ((1 - wc) * at(level, top, l) + wc * at(level, top, rgt)) +
                             wr * ((1 - wc) * at(level, bottom, l) + wc * at(level, bottom, rgt));
            const float sd = (1 - wr) * ((1 - wc) * at(noise, top, l) + wc * at(noise, top, rgt)) +
                             wr * ((1 - wc) * at(noise, bottom, l) + wc * at(noise, bottom, rgt));
            out_row[j] = std::clamp((maxima[j] - bg) / sd, p.clip_low, p.clip_high);
            if (p.second) out_row[plane + j] = std::clamp((seconds[j] - bg) / sd, p.clip_low, p.clip_high);
        }
    }
}

}  // namespace

void significance_map(const std::uint8_t* images, std::int64_t n, int rows, int cols, const SignificanceParams& p,
                      float* out, int n_threads) {
    const std::int64_t in_stride = static_cast<std::int64_t>(rows) * cols;
    const std::int64_t out_stride = static_cast<std::int64_t>(rows / p.block_px) * (cols / p.block_px) * (p.second ? 2 : 1);
#pragma omp parallel for schedule(dynamic, 1) num_threads(resolve_threads(n_threads))
    for (std::int64_t k = 0; k < n; ++k) one_image(images + k * in_stride, rows, cols, p, out + k * out_stride);
}

}  // namespace diffranet
