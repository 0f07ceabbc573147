// Order statistics of labelled groups of values, such as the pixels of each
// Bragg spot: the k-th smallest value of every group in one pass, O(n k),
// without sorting the values.
#pragma once

#include <cstdint>

namespace diffranet {

// out[g - 1] = the k-th smallest of values[i] over the i with labels[i] == g,
// for g = 1 .. n_groups; +inf for a group of fewer than k values. Label 0
// belongs to no group. Values may be +/-inf, not NaN; labels lie in
// [0, n_groups]; k >= 1.
void kth_smallest_per_group(const std::int32_t* labels, const double* values, std::int64_t n, int n_groups, int k,
                            double* out);

}  // namespace diffranet
