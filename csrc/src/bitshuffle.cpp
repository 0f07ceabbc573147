// bslz4 expansion: each LZ4 block decoded into a buffer of the thread (a few KB,
// in L1 / L2 cache) and bit-unshuffled from there into the output, blocks in
// parallel. The output is the one of bitshuffle's bitunshuffle, byte for byte.
#include "diffranet/bitshuffle.hpp"

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "diffranet/threads.hpp"

namespace diffranet {
namespace {

// Transposes the 8 x 8 bit matrix whose row k is byte k of x (bit n of byte k <-> bit k of
// byte n): three swaps of ever larger sub-blocks (Hacker's Delight, "transpose8").
inline std::uint64_t transpose_bits(std::uint64_t x) {
    std::uint64_t t = (x ^ (x >> 7)) & 0x00AA00AA00AA00AAull;
    x ^= t ^ (t << 7);
    t = (x ^ (x >> 14)) & 0x0000CCCC0000CCCCull;
    x ^= t ^ (t << 14);
    t = (x ^ (x >> 28)) & 0x00000000F0F0F0F0ull;
    x ^= t ^ (t << 28);
    return x;
}

// Byte `plane` of the 8 elements of column c (elements 8c .. 8c + 7): bit k of each comes
// from row 8 * plane + k of the block's bit rows (row_bytes bytes each).
inline void unshuffle_column(const std::uint8_t* in, std::int64_t row_bytes, int plane, std::int64_t c,
                             std::uint8_t* bytes) {
    std::uint64_t x = 0;
    for (int k = 0; k < 8; ++k) x |= std::uint64_t{in[(8 * plane + k) * row_bytes + c]} << (8 * k);
    x = transpose_bits(x);
    for (int n = 0; n < 8; ++n) bytes[n] = static_cast<std::uint8_t>(x >> (8 * n));
}

#ifdef __SSE2__
// Swaps the bits of r[k] and r[k + step] that transpose_bits swaps at that distance, in every
// byte at once: bit k + step of each byte of r[k] <-> bit k of the same byte of r[k + step].
template <int Step>
inline void swap_bit_blocks(__m128i* r, __m128i mask) {
    for (int k = 0; k < 8; ++k) {
        if (k & Step) continue;
        const __m128i t = _mm_and_si128(_mm_xor_si128(_mm_srli_epi64(r[k], Step), r[k + Step]), mask);
        r[k + Step] = _mm_xor_si128(r[k + Step], t);
        r[k] = _mm_xor_si128(r[k], _mm_slli_epi64(t, Step));
    }
}

// Byte `plane` of the 128 elements of columns c .. c + 15. Each byte position of the 8 bit
// rows is an 8 x 8 bit matrix, transposed across the 8 registers (row k then holds byte
// `plane` of element 8 * column + k); the rows are then interleaved byte by byte.
inline void unshuffle_16_columns(const std::uint8_t* in, std::int64_t row_bytes, int plane, std::int64_t c,
                                 std::uint8_t* bytes) {
    __m128i r[8];
    for (int k = 0; k < 8; ++k)
        r[k] = _mm_loadu_si128(reinterpret_cast<const __m128i*>(in + (8 * plane + k) * row_bytes + c));
    swap_bit_blocks<1>(r, _mm_set1_epi8(0x55));
    swap_bit_blocks<2>(r, _mm_set1_epi8(0x33));
    swap_bit_blocks<4>(r, _mm_set1_epi8(0x0F));
    __m128i a[8], b[8];
    for (int k = 0; k < 4; ++k) {  // rows 2k, 2k + 1 byte by byte: columns 0-7, 8-15
        a[2 * k] = _mm_unpacklo_epi8(r[2 * k], r[2 * k + 1]);
        a[2 * k + 1] = _mm_unpackhi_epi8(r[2 * k], r[2 * k + 1]);
    }
    for (int h = 0; h < 2; ++h) {  // rows 0-3 and 4-7, four columns per vector
        b[4 * h + 0] = _mm_unpacklo_epi16(a[4 * h + 0], a[4 * h + 2]);
        b[4 * h + 1] = _mm_unpackhi_epi16(a[4 * h + 0], a[4 * h + 2]);
        b[4 * h + 2] = _mm_unpacklo_epi16(a[4 * h + 1], a[4 * h + 3]);
        b[4 * h + 3] = _mm_unpackhi_epi16(a[4 * h + 1], a[4 * h + 3]);
    }
    for (int q = 0; q < 4; ++q) {  // the eight rows of two columns per vector: 16 elements in order
        _mm_storeu_si128(reinterpret_cast<__m128i*>(bytes + 32 * q), _mm_unpacklo_epi32(b[q], b[4 + q]));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(bytes + 32 * q + 16), _mm_unpackhi_epi32(b[q], b[4 + q]));
    }
}

// out[i * E + j] = planes[j * n + i] for 16 elements from i (E = 2, 4, 8).
template <int E>
inline void interleave_16(const std::uint8_t* planes, std::int64_t n, std::int64_t i, std::uint8_t* out) {
    __m128i r[E];
    for (int j = 0; j < E; ++j) r[j] = _mm_loadu_si128(reinterpret_cast<const __m128i*>(planes + j * n + i));
    __m128i* to = reinterpret_cast<__m128i*>(out + i * E);
    if constexpr (E == 2) {
        _mm_storeu_si128(to, _mm_unpacklo_epi8(r[0], r[1]));
        _mm_storeu_si128(to + 1, _mm_unpackhi_epi8(r[0], r[1]));
    } else if constexpr (E == 4) {
        const __m128i a = _mm_unpacklo_epi8(r[0], r[1]), b = _mm_unpackhi_epi8(r[0], r[1]);
        const __m128i c = _mm_unpacklo_epi8(r[2], r[3]), d = _mm_unpackhi_epi8(r[2], r[3]);
        _mm_storeu_si128(to, _mm_unpacklo_epi16(a, c));
        _mm_storeu_si128(to + 1, _mm_unpackhi_epi16(a, c));
        _mm_storeu_si128(to + 2, _mm_unpacklo_epi16(b, d));
        _mm_storeu_si128(to + 3, _mm_unpackhi_epi16(b, d));
    } else {
        __m128i a[8], b[8];
        for (int k = 0; k < 4; ++k) {
            a[2 * k] = _mm_unpacklo_epi8(r[2 * k], r[2 * k + 1]);
            a[2 * k + 1] = _mm_unpackhi_epi8(r[2 * k], r[2 * k + 1]);
        }
        for (int h = 0; h < 2; ++h) {
            b[4 * h + 0] = _mm_unpacklo_epi16(a[4 * h + 0], a[4 * h + 2]);
            b[4 * h + 1] = _mm_unpackhi_epi16(a[4 * h + 0], a[4 * h + 2]);
            b[4 * h + 2] = _mm_unpacklo_epi16(a[4 * h + 1], a[4 * h + 3]);
            b[4 * h + 3] = _mm_unpackhi_epi16(a[4 * h + 1], a[4 * h + 3]);
        }
        for (int q = 0; q < 4; ++q) {
            _mm_storeu_si128(to + 2 * q, _mm_unpacklo_epi32(b[q], b[4 + q]));
            _mm_storeu_si128(to + 2 * q + 1, _mm_unpackhi_epi32(b[q], b[4 + q]));
        }
    }
}
#endif

template <int E>
void interleave(const std::uint8_t* planes, std::int64_t n, std::uint8_t* out) {
    std::int64_t i = 0;
#ifdef __SSE2__
    for (; i + 16 <= n; i += 16) interleave_16<E>(planes, n, i, out);
#endif
    for (; i < n; ++i)
        for (int j = 0; j < E; ++j) out[i * E + j] = planes[j * n + i];
}

}  // namespace

void bitunshuffle_block(const std::uint8_t* in, std::uint8_t* out, std::int64_t n, int elem_size) {
    // the elements' bytes, byte plane by byte plane (byte j of element i at planes[j * n + i]),
    // then interleaved; one byte per element needs no second step
    thread_local std::vector<std::uint8_t> staging;
    std::uint8_t* planes = out;
    if (elem_size > 1) {
        staging.resize(static_cast<std::size_t>(n * elem_size));
        planes = staging.data();
    }
    const std::int64_t row_bytes = n / 8;
    for (int j = 0; j < elem_size; ++j) {
        std::uint8_t* bytes = planes + j * n;
        std::int64_t c = 0;
#ifdef __SSE2__
        for (; c + 16 <= row_bytes; c += 16) unshuffle_16_columns(in, row_bytes, j, c, bytes + 8 * c);
#endif
        for (; c < row_bytes; ++c) unshuffle_column(in, row_bytes, j, c, bytes + 8 * c);
    }
    switch (elem_size) {
        case 2: interleave<2>(planes, n, out); break;
        case 4: interleave<4>(planes, n, out); break;
        case 8: interleave<8>(planes, n, out); break;
        default: break;
    }
}

Bslz4Blocks frame_bslz4(const std::uint8_t* payload, std::int64_t payload_size, std::int64_t offset,
                        std::int64_t n_elements, int elem_size, std::int64_t block_elements) {
    Bslz4Blocks blocks;
    blocks.elem_size = elem_size;
    blocks.block_elements = block_elements;
    // elements in LZ4 blocks: all but the last n_elements % 8, which follow as they are
    blocks.compressed = n_elements - n_elements % 8;
    const std::int64_t n_blocks = blocks.compressed > 0 ? (blocks.compressed + block_elements - 1) / block_elements : 0;
    blocks.starts.resize(static_cast<std::size_t>(n_blocks));
    blocks.stored.resize(static_cast<std::size_t>(n_blocks));
    blocks.result = frame_lz4_blocks(payload, payload_size, offset, n_blocks, blocks.starts.data(), blocks.stored.data());
    if (!blocks.result.ok) return blocks;
    const std::int64_t leftover = (n_elements - blocks.compressed) * elem_size;
    if (payload_size - blocks.result.end != leftover) {
        blocks.result.ok = false;
        blocks.result.error = "bslz4 data hold " + std::to_string(payload_size - blocks.result.end) +
                              " bytes after the last block, expected " + std::to_string(leftover);
    }
    return blocks;
}

bool expand_bslz4_block(const Bslz4Blocks& blocks, const std::uint8_t* payload, std::int64_t b,
                        std::uint8_t* scratch, std::uint8_t* out) {
    const std::int64_t n = blocks.elements_in(b);
    // every bitshuffle block is LZ4 (the filter never stores one as is, unlike HDF5's LZ4 filter)
    if (!decode_lz4_block(payload + blocks.starts[b], blocks.stored[b], scratch, n * blocks.elem_size)) return false;
    bitunshuffle_block(scratch, out, n, blocks.elem_size);
    return true;
}

Lz4Result decode_bslz4(const std::uint8_t* payload, std::int64_t payload_size, std::int64_t offset,
                       std::int64_t n_elements, int elem_size, std::int64_t block_elements, std::uint8_t* out,
                       const std::uint8_t* wanted, int n_threads) {
    const Bslz4Blocks blocks = frame_bslz4(payload, payload_size, offset, n_elements, elem_size, block_elements);
    Lz4Result result = blocks.result;
    if (!result.ok) return result;
    std::memcpy(out + blocks.compressed * elem_size, payload + result.end,
                static_cast<std::size_t>((n_elements - blocks.compressed) * elem_size));
    const std::int64_t n_blocks = blocks.n_blocks();
    int failed = 0;
#pragma omp parallel num_threads(resolve_threads(n_threads)) reduction(| : failed)
    {
        std::vector<std::uint8_t> shuffled(static_cast<std::size_t>(blocks.largest_bytes()));
#pragma omp for schedule(dynamic, 16)
        for (std::int64_t b = 0; b < n_blocks; ++b) {
            if (wanted != nullptr && !wanted[b]) continue;
            if (!expand_bslz4_block(blocks, payload, b, shuffled.data(), out + b * block_elements * elem_size))
                failed |= 1;
        }
    }
    return with_block_failures(result, failed);
}

}  // namespace diffranet
