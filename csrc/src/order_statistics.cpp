#include "diffranet/order_statistics.hpp"

#include <limits>
#include <vector>

namespace diffranet {

void kth_smallest_per_group(const std::int32_t* labels, const double* values, std::int64_t n, int n_groups, int k,
                            double* out) {
    const double inf = std::numeric_limits<double>::infinity();
    // the k smallest values seen so far of each group, ascending (k is small:
    // an insertion into a short sorted row beats sorting all values)
    std::vector<double> smallest(static_cast<std::size_t>(n_groups) * k, inf);
    for (std::int64_t i = 0; i < n; ++i) {
        const std::int32_t g = labels[i];
        if (g == 0) continue;
        double* row = smallest.data() + static_cast<std::size_t>(g - 1) * k;
        double v = values[i];
        if (!(v < row[k - 1])) continue;
        int j = k - 1;
        for (; j > 0 && row[j - 1] > v; --j) row[j] = row[j - 1];
        row[j] = v;
    }
    for (int g = 0; g < n_groups; ++g) out[g] = smallest[static_cast<std::size_t>(g) * k + k - 1];
}

}  // namespace diffranet
