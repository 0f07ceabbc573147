// Non-finite pixels of a floating-point frame: the check the live service makes of every
// frame before classifying it (diffranet.inference.preprocess.count_nonfinite).
#pragma once

#include <cstdint>

namespace diffranet {

// How many of the n values of frame are NaN or infinite where mask is 0 (mask may be null:
// every pixel counts). T is float or double. Spread over n_threads; the count does not
// depend on it.
template <typename T>
std::int64_t count_nonfinite(const T* frame, const std::uint8_t* mask, std::int64_t n, int n_threads);

}  // namespace diffranet
