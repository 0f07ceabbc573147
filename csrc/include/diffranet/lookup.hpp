// Per-pixel table look-up: out[i] = table[in[i]], for 8-bit images made from
// unsigned-integer detector frames (the live service does one per frame).
#pragma once

#include <cstdint>

namespace diffranet {

// Every in[i] must be < the table's length (the caller checks: a uint16 frame
// with a table of 65536 entries needs no check at all).
template <typename Index>
void lookup(const std::uint8_t* table, const Index* in, std::int64_t n, std::uint8_t* out) {
    for (std::int64_t i = 0; i < n; ++i) out[i] = table[in[i]];
}

}  // namespace diffranet
