// OpenMP thread counts for the kernels.
#pragma once

#ifdef _OPENMP
#include <omp.h>
#endif

namespace diffranet {

// Threads a kernel uses: n_threads, or all available when it is 0 (or less).
inline int resolve_threads(int n_threads) {
#ifdef _OPENMP
    return n_threads > 0 ? n_threads : omp_get_max_threads();
#else
    (void)n_threads;
    return 1;
#endif
}

}  // namespace diffranet
