// Non-finite pixels of a frame, counted from the bits of their magnitude (exponent all ones:
// NaN or infinite; for float64 also values float32, the model input's type, cannot hold) with
// integer operations that the compiler vectorises. The mask is read only where a block holds
// such a pixel: frames are nearly always finite, and a pass over the pixels alone reads a
// fifth less memory.
#include "diffranet/finite.hpp"

#include <algorithm>
#include <cstring>

#include "diffranet/threads.hpp"

namespace diffranet {
namespace {

template <typename T>
struct Bits;
// `limit`: the smallest magnitude counted, as bits (a larger magnitude has larger bits).
template <>
struct Bits<float> {
    using U = std::uint32_t;
    static constexpr U magnitude = 0x7fffffffu;
    static constexpr U limit = 0x7f800000u;  // infinity; NaN above it
};
template <>
struct Bits<double> {
    using U = std::uint64_t;
    static constexpr U magnitude = 0x7fffffffffffffffu;
    static constexpr U limit = 0x47effffff0000000u;  // 2^128 - 2^103: becomes infinite as float32
};

constexpr std::int64_t kBlock = 16384;  // pixels per block (64 kB of float32)

}  // namespace

template <typename T>
std::int64_t count_nonfinite(const T* frame, const std::uint8_t* mask, std::int64_t n, int n_threads) {
    using U = typename Bits<T>::U;
    constexpr U magnitude = Bits<T>::magnitude, limit = Bits<T>::limit;
    const std::int64_t n_blocks = (n + kBlock - 1) / kBlock;
    std::int64_t total = 0;
#pragma omp parallel for schedule(static) num_threads(resolve_threads(n_threads)) reduction(+ : total)
    for (std::int64_t b = 0; b < n_blocks; ++b) {
        const std::int64_t low = b * kBlock, high = std::min(n, low + kBlock);
        std::int64_t found = 0;
        for (std::int64_t i = low; i < high; ++i) {
            U bits;
            std::memcpy(&bits, frame + i, sizeof bits);
            found += (bits & magnitude) >= limit;
        }
        if (found && mask != nullptr) {
            found = 0;
            for (std::int64_t i = low; i < high; ++i) {
                U bits;
                std::memcpy(&bits, frame + i, sizeof bits);
                found += ((bits & magnitude) >= limit) & (mask[i] == 0);
            }
        }
        total += found;
    }
    return total;
}

template std::int64_t count_nonfinite<float>(const float*, const std::uint8_t*, std::int64_t, int);
template std::int64_t count_nonfinite<double>(const double*, const std::uint8_t*, std::int64_t, int);

}  // namespace diffranet
