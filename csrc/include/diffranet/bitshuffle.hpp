// bslz4: LZ4 blocks of bit-shuffled elements (bitshuffle's HDF5 filter, DECTRIS
// Stream V2), expanded block by block: each block is decoded into a small buffer
// of the calling thread and bit-unshuffled from there into the output, so the
// shuffled bytes never travel through main memory. See diffranet/live/compression.py.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "diffranet/lz4_frames.hpp"

namespace diffranet {

// bitshuffle's layout of one block of n elements (n a multiple of 8) of elem_size
// bytes: bit b of element i (b counted from the lowest bit of the little-endian
// element) is bit i % 8 of byte b * n / 8 + i / 8. Writes the n elements to out.
void bitunshuffle_block(const std::uint8_t* in, std::uint8_t* out, std::int64_t n, int elem_size);

// The blocks of a bslz4 payload (see decode_bslz4), their framing checked.
struct Bslz4Blocks {
    Lz4Result result;                        // ok, or what is wrong; end: the offset after the last block
    std::vector<std::int64_t> starts, stored;  // each block's LZ4 bytes in the payload
    std::int64_t compressed = 0;             // elements in blocks; the rest follow the last block as they are
    std::int64_t block_elements = 0;
    int elem_size = 1;

    std::int64_t n_blocks() const { return static_cast<std::int64_t>(starts.size()); }
    std::int64_t elements_in(std::int64_t b) const { return std::min(block_elements, compressed - b * block_elements); }
    std::int64_t largest_bytes() const { return std::min(block_elements, compressed) * elem_size; }
};

Bslz4Blocks frame_bslz4(const std::uint8_t* payload, std::int64_t payload_size, std::int64_t offset,
                        std::int64_t n_elements, int elem_size, std::int64_t block_elements);

// Block b of a framed payload, expanded into out (its elements); scratch holds largest_bytes().
// False if the block is corrupt.
bool expand_bslz4_block(const Bslz4Blocks& blocks, const std::uint8_t* payload, std::int64_t b,
                        std::uint8_t* scratch, std::uint8_t* out);

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
