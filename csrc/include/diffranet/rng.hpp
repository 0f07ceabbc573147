// Counter-based random numbers: every draw is a pure function of
// (seed, stream, counter), so results never depend on the number of threads
// or on the order in which pixels, domains or images are processed.
// The mixer is SplitMix64's finaliser (Steele, Lea & Flood 2014), applied
// in a chain so that neighbouring counters give independent outputs.
#pragma once

#include <cmath>
#include <cstdint>

#include "diffranet/constants.hpp"

namespace diffranet {

inline std::uint64_t mix64(std::uint64_t z) {
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

// Independent streams keep unrelated uses of one seed apart.
enum class Stream : std::uint64_t {
    kMosaic = 1,
    kPoisson = 2,
    kReadout = 3,
    kCalibration = 4,
    kFlicker = 5,
};

class CounterRng {
  public:
    CounterRng(std::uint64_t seed, Stream stream, std::uint64_t key)
        : state_(mix64(mix64(seed ^ mix64(static_cast<std::uint64_t>(stream))) ^ key)) {}

    std::uint64_t next_u64() { return mix64(state_ += 0x632be59bd9b4e019ULL); }

    // Uniform in (0, 1): never exactly 0, so log() is always finite.
    double uniform() { return (static_cast<double>(next_u64() >> 11) + 0.5) * 0x1.0p-53; }

    // Standard normal by Box-Muller (one of the pair is used: simpler, and
    // the stream is counter-based so nothing is saved by caching).
    double normal() {
        const double u1 = uniform();
        const double u2 = uniform();
        return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * kPi * u2);
    }

  private:
    std::uint64_t state_;
};

}  // namespace diffranet
