// Local significance of 8-bit model inputs (diffranet.features.significance).
#pragma once

#include <cstdint>

namespace diffranet {

// Parameters of significance_map; the Python layer checks them and derives the
// Gaussian constants of the lower share.
struct SignificanceParams {
    int block_px = 4;            // side of the blocks reduced to their maximum (pixels)
    int cell_px = 32;            // side of the background cells (pixels), a multiple of block_px
    double lower_share = 0.6;    // darkest share of a cell's pixels taken as background
    double mean_shift = 0.6439;  // mean of a standard Gaussian truncated at that share, negated
    double std_factor = 0.6498;  // its standard deviation
    double noise_floor = 0.5;    // smallest noise (8-bit levels)
    float clip_low = -4.0f;
    float clip_high = 16.0f;
    bool second = false;         // also each block's second-largest value, as a second channel
};

// images: n x rows x cols uint8 (C order, rows and cols multiples of cell_px);
// out: n x (rows / block_px) x (cols / block_px) float32 (with p.second, n x 2
// x ...: the block maxima, then the blocks' second-largest values). Images are
// spread over n_threads threads (0: all); each image's result does not depend on it.
void significance_map(const std::uint8_t* images, std::int64_t n, int rows, int cols, const SignificanceParams& p,
                      float* out, int n_threads);

}  // namespace diffranet
