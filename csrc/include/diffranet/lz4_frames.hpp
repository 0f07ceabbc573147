// LZ4 blocks in the framing of the HDF5 LZ4 and bitshuffle filters (DECTRIS
// Stream V2 compressed byte strings), decoded with every length checked against
// the input and the output. See diffranet/live/compression.py.
#pragma once

#include <cstdint>
#include <string>

namespace diffranet {

// The outcome of decode_framed_lz4: ok, or what was wrong and where.
struct Lz4Result {
    bool ok = true;
    std::string error;
    std::int64_t end = 0;  // offset in the payload after the last block
};

// `result`, failed when any block of a parallel decode failed (`failed` nonzero).
inline Lz4Result with_block_failures(Lz4Result result, int failed) {
    if (failed) {
        result.ok = false;
        result.error = "corrupt LZ4 block";
    }
    return result;
}

// One LZ4 block of `size` input bytes into exactly `capacity` output bytes; false if
// the block is malformed or does not decode to exactly `capacity` bytes. Reads and
// writes nothing outside the two buffers.
bool decode_lz4_block(const std::uint8_t* in, std::int64_t size, std::uint8_t* out, std::int64_t capacity);

// The first pass of decode_framed_lz4: the start and stored size of each of n_blocks
// blocks from payload[offset:] (end: the offset after the last one); fails when a
// size record or a block runs past the payload.
Lz4Result frame_lz4_blocks(const std::uint8_t* payload, std::int64_t payload_size, std::int64_t offset,
                           std::int64_t n_blocks, std::int64_t* starts, std::int64_t* stored);

// Decodes `total` bytes cut into blocks of `block_bytes` (the last one shorter)
// from payload[offset:], each block a big-endian uint32 stored size and the LZ4
// block (stored as is when its stored size equals its decoded size), into out.
// Block boundaries are found first (one pass over the size records); blocks are
// then decoded in parallel over n_threads.
Lz4Result decode_framed_lz4(const std::uint8_t* payload, std::int64_t payload_size, std::int64_t offset,
                            std::int64_t total, std::int64_t block_bytes, std::uint8_t* out, int n_threads);

}  // namespace diffranet
