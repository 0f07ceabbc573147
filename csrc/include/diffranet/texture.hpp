// Texture descriptors of 8-bit detector images: grey-level co-occurrence
// matrices (GLCM) reduced to Haralick features.
//
// The callers in python/diffranet/features/ validate every argument and the
// binding checks every buffer; these kernels check nothing and only fill the
// output buffer.
#pragma once

#include <cstdint>

namespace diffranet {

// A GLCM pixel-pair offset in pixels: the second pixel of a pair lies `drow`
// rows below and `dcol` columns right of the first (either may be negative).
struct GlcmOffset {
    int64_t drow;
    int64_t dcol;
};

// Order of the Haralick features in each output row.
enum GlcmProperty : int {
    kContrast = 0,       // sum_ij P(i,j) (i - j)^2
    kDissimilarity = 1,  // sum_ij P(i,j) |i - j|
    kHomogeneity = 2,    // sum_ij P(i,j) / (1 + (i - j)^2)
    kAsm = 3,            // angular second moment, sum_ij P(i,j)^2
    kEnergy = 4,         // sqrt(ASM)
    kCorrelation = 5,    // sum_ij P(i,j) (i - mu_i)(j - mu_j) / (sigma_i sigma_j)
    kGlcmPropertyCount = 6
};

// Haralick features of the normalised GLCM of every image at every offset.
//
// images    n_images x rows x cols grey levels, each < `levels` (C order)
// offsets   n_offsets pixel-pair offsets
// levels    number of grey levels (1..256), the GLCM is levels x levels
// symmetric count each pair as (i, j) and (j, i)
// out       n_images x n_offsets x kGlcmPropertyCount doubles (C order)
// n_threads OpenMP threads (<= 0: the OpenMP default)
//
// An offset that leaves no pixel pair inside the image gives an empty GLCM;
// its features are 0 except correlation, which is 1 (the scikit-image
// convention for a zero standard deviation).
void glcm_features(const uint8_t* images, int64_t n_images, int64_t rows, int64_t cols,
                   const GlcmOffset* offsets, int64_t n_offsets, int levels, bool symmetric,
                   double* out, int n_threads);

}  // namespace diffranet
