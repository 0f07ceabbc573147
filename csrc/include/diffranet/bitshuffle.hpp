// bslz4: LZ4 blocks of bit-shuffled elements (bitshuffle's HDF5 filter, DECTRIS
// Stream V2), expanded block by block: each block is decoded into a small buffer
// of the calling thread and bit-unshuffled from there into the output, so the
// shuffled bytes never travel through main memory. See diffranet/live/compression.py.
#pragma once

#include <cstdint>

#include "diffranet/lz4_frames.hpp"

namespace diffranet {

// bitshuffle's layout of one block of n elements (n a multiple of 8) of elem_size
// bytes: bit b of element i (b counted from the lowest bit of the little-endian
// element) is bit i % 8 of byte b * n / 8 + i / 8. Writes the n elements to out.
void bitunshuffle_block(const std::uint8_t* in, std::uint8_t* out, std::int64_t n, int elem_size);

// Expands n_elements of elem_size bytes (1, 2, 4 or 8) from payload[offset:]: LZ4 blocks
// of block_elements elements (the last one cut to a multiple of 8 elements), each a
// big-endian uint32 size and the LZ4 block (never stored as is: bitshuffle's filter
// always compresses), then the fewer than 8 remaining elements as they are.
// Every block's framing is checked; with `wanted` (one flag per block, may be null for
// all) only the wanted blocks are decoded and written, the others left as they were in
// out. Blocks are spread over n_threads; the result never depends on it.
Lz4Result decode_bslz4(const std::uint8_t* payload, std::int64_t payload_size, std::int64_t offset,
                       std::int64_t n_elements, int elem_size, std::int64_t block_elements, std::uint8_t* out,
                       const std::uint8_t* wanted, int n_threads);

}  // namespace diffranet
