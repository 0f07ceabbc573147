// Framed LZ4 blocks (HDF5 LZ4 / bitshuffle filter framing): a bounds-checked
// decoder of the LZ4 block format, blocks decoded in parallel. Nothing is read
// or written outside the given buffers, whatever the input.
#include "diffranet/lz4_frames.hpp"

#include <algorithm>
#include <cstring>
#include <vector>

#include "diffranet/threads.hpp"

namespace diffranet {
namespace {

// A length of 15 or more continues in bytes, each added, until one is below 255; false if
// the input ends first or the length exceeds `capacity`.
bool extend(const std::uint8_t* in, std::int64_t size, std::int64_t& i, std::int64_t& length, std::int64_t capacity) {
    unsigned byte = 255;
    while (byte == 255) {
        if (i >= size) return false;
        byte = in[i++];
        length += byte;
        if (length > capacity) return false;
    }
    return true;
}

}  // namespace

bool decode_lz4_block(const std::uint8_t* in, std::int64_t size, std::uint8_t* out, std::int64_t capacity) {
    std::int64_t i = 0, o = 0;
    while (i < size) {
        const unsigned token = in[i++];
        std::int64_t literals = token >> 4;
        if (literals == 15 && !extend(in, size, i, literals, capacity)) return false;
        if (literals > size - i || literals > capacity - o) return false;
        std::memcpy(out + o, in + i, static_cast<std::size_t>(literals));
        i += literals;
        o += literals;
        if (i == size) break;  // the last sequence holds literals only
        if (size - i < 2) return false;
        const std::int64_t distance = in[i] | (in[i + 1] << 8);
        i += 2;
        if (distance == 0 || distance > o) return false;
        std::int64_t length = (token & 15) + 4;
        if ((token & 15) == 15 && !extend(in, size, i, length, capacity)) return false;
        if (length > capacity - o) return false;
        // out[o + k] = out[o + k - distance]: the bytes repeat with period `distance`, so copy
        // from `step` (a multiple of it) bytes back, doubling the step: no copy overlaps itself
        std::uint8_t* to = out + o;
        std::int64_t copied = 0, step = distance;
        while (copied < length) {
            const std::int64_t n = std::min(step, length - copied);
            std::memcpy(to + copied, to + copied - step, static_cast<std::size_t>(n));
            copied += n;
            step = copied + distance;
        }
        o += length;
    }
    return o == capacity;
}

namespace {

std::uint32_t read_be32(const std::uint8_t* p) {
    return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) | p[3];
}

}  // namespace

Lz4Result frame_lz4_blocks(const std::uint8_t* payload, std::int64_t payload_size, std::int64_t offset,
                           std::int64_t n_blocks, std::int64_t* starts, std::int64_t* stored) {
    Lz4Result result;
    for (std::int64_t b = 0; b < n_blocks; ++b) {
        if (offset + 4 > payload_size) {
            result.ok = false;
            result.error = "compressed data end in the middle of a block header";
            return result;
        }
        stored[b] = read_be32(payload + offset);
        offset += 4;
        if (stored[b] > payload_size - offset) {
            result.ok = false;
            result.error = "a block of " + std::to_string(stored[b]) + " bytes runs past the end of the data";
            return result;
        }
        starts[b] = offset;
        offset += stored[b];
    }
    result.end = offset;
    return result;
}

Lz4Result decode_framed_lz4(const std::uint8_t* payload, std::int64_t payload_size, std::int64_t offset,
                            std::int64_t total, std::int64_t block_bytes, std::uint8_t* out, int n_threads) {
    const std::int64_t n_blocks = total > 0 ? (total + block_bytes - 1) / block_bytes : 0;
    std::vector<std::int64_t> starts(static_cast<std::size_t>(n_blocks)), stored(static_cast<std::size_t>(n_blocks));
    Lz4Result result = frame_lz4_blocks(payload, payload_size, offset, n_blocks, starts.data(), stored.data());
    if (!result.ok) return result;
    int failed = 0;
#pragma omp parallel for schedule(dynamic, 16) num_threads(resolve_threads(n_threads)) reduction(| : failed)
    for (std::int64_t b = 0; b < n_blocks; ++b) {
        const std::int64_t size = std::min(block_bytes, total - b * block_bytes);
        std::uint8_t* target = out + b * block_bytes;
        if (stored[b] == size) {
            std::memcpy(target, payload + starts[b], static_cast<std::size_t>(size));
        } else if (!decode_lz4_block(payload + starts[b], stored[b], target, size)) {
            failed |= 1;
        }
    }
    return with_block_failures(result, failed);
}

}  // namespace diffranet
