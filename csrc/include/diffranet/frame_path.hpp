// The compiled frame path of diffranet.inference.preprocess: a raw frame onto the
// training detector (a sparse map from frame pixels to training pixels, pixels to
// ignore skipped as they are read), the missing area completed with the local
// background, and the 8-bit square root. See diffranet/inference/frame_path.py.
#pragma once

#include <cstdint>
#include <vector>

#include "diffranet/lz4_frames.hpp"

namespace diffranet {

// Training pixel t receives weights[j] of frame pixel sources[j] for j in
// [starts[t], starts[t + 1]) (a CSR matrix, column indices ascending).
struct PixelMap {
    const std::int64_t* starts = nullptr;  // n_targets + 1 entries
    const std::int32_t* sources = nullptr;
    const double* weights = nullptr;
    std::int64_t n_targets = 0;
    std::int64_t n_sources = 0;  // pixels of the frame
    bool uniform = false;        // every weight equals `weight` (then weights is not read)
    double weight = 0.0;
    // weights[j] == weight_table[weight_index[j]] when set (maps with subpixels hold a few distinct
    // shares, multiples of 1 / k^2): one byte read per entry instead of eight
    const std::uint8_t* weight_index = nullptr;
    const double* weight_table = nullptr;
    // The frame pixels the map reads, in runs of consecutive pixels laid end to end (read_pixels):
    // entry j reads place read_place[j]; run r starts at frame pixel run_first[r] and place
    // run_offset[r] (run_offset[n_runs]: pixels read). Required by gather_frame.
    const std::int64_t* run_first = nullptr;
    const std::int64_t* run_offset = nullptr;
    std::int64_t n_runs = 0;
    const std::int32_t* read_place = nullptr;
};

// The runs of frame pixels a map reads (at most 4096 pixels each) and the place of each entry's
// pixel among them: what PixelMap's run_first, run_offset and read_place point into.
struct ReadPixels {
    std::vector<std::int64_t> first, offset;  // offset has one more entry than first
    std::vector<std::int32_t> place;
};
ReadPixels read_pixels(const PixelMap& map);

// The distinct weights of a map (table) and each entry's place in it (index), if there are
// at most 256; false otherwise (index and table then not to be used).
bool index_weights(const double* weights, std::int64_t n, std::vector<std::uint8_t>& index,
                   std::vector<double>& table);

// Which frame pixels carry no photon count: mask (nonzero = ignore, may be null),
// negative or non-finite values, values >= saturation (when has_saturation).
struct PixelRules {
    const std::uint8_t* mask = nullptr;
    bool has_saturation = false;
    double saturation = 0.0;
};

// sums[t] = sum over the valid pixels s of row t of weights * frame[s], covered[t] =
// sum of their weights, both accumulated in the map's order (the same float64
// operations as the sparse matrix-vector products of the Python path). T is one of
// uint8/16/32/64, int8/16/32/64, float, double. The pixels read are first checked once
// each, in runs, into a buffer of the calling thread (kept between calls); runs and rows
// are spread over n_threads.
template <typename T>
void gather_frame(const T* frame, const PixelRules& rules, const PixelMap& map, double* sums, double* covered,
                  int n_threads);

// The training detector's pixels and what completing them needs.
struct CompletionPlan {
    const double* expected = nullptr;  // area of each training pixel in frame pixels
    const std::int32_t* cells = nullptr;  // ring * n_sectors + sector of each training pixel
    const std::int32_t* order = nullptr;  // training pixels sorted by cell
    const std::int64_t* cell_starts = nullptr;  // cell c holds order[cell_starts[c]:cell_starts[c + 1]]
    std::int64_t n = 0;                   // training pixels
    int n_rings = 0;
    int n_sectors = 0;
    double min_coverage = 0.5;
};

// counts = sums + (expected - covered) x the local background density (median of
// sums / covered over the unmasked training pixels of the ring and sector), training
// pixels covered below min_coverage holding the background only; then
// out = uint8(rint(sqrt(clip(float32(max(counts, 0)) + adc_offset, 0, 65025)))).
// Returns the number of training pixels whose counts are NaN (out is then not to be
// used). Scratch memory is kept per thread and reused. Cells and pixels are spread over
// n_threads; the result does not depend on it.
std::int64_t complete_to_8bit(const double* sums, const double* covered, const CompletionPlan& plan,
                              float adc_offset, std::uint8_t* out, int n_threads);

// gather_frame then complete_to_8bit, sums and covered in per-thread scratch kept
// between calls. Returns complete_to_8bit's count of NaN training pixels.
template <typename T>
std::int64_t frame_to_8bit(const T* frame, const PixelRules& rules, const PixelMap& map, const CompletionPlan& plan,
                           float adc_offset, std::uint8_t* out, int n_threads);

// One flag per block of block_elements frame pixels (the bslz4 blocks of a frame in
// row-major order): 1 if the map reads a pixel of it. Pixels after the last whole
// multiple of 8 are not in blocks (bslz4 sends them as they are).
std::vector<std::uint8_t> blocks_read(const PixelMap& map, std::int64_t block_elements);

// A map's entries in frame-pixel order, for maps whose photon sums do not depend on the order
// of their additions: every weight 1, so that an integer frame of up to 32 bits gives
// integer sums, exact in float64 (rows of at most 2^20 entries). `exact` is false (and
// the lists empty) for any other map.
struct SourceOrder {
    bool exact = false;
    std::vector<std::int32_t> sources, targets;  // sources ascending
};
SourceOrder source_order(const PixelMap& map);

// frame_to_8bit of a frame whose pixels (T, little-endian) are still bslz4-compressed
// (decode_bslz4's framing): only the blocks flagged in `wanted` (blocks_read) are
// expanded, into a buffer of the calling thread kept between calls, and only those are
// read. With `by_source` exact and integers of up to 32 bits, each block's pixels are added
// to per-thread sums straight from the block (in cache), the frame never written out;
// otherwise the wanted blocks are expanded into a buffer of the calling thread and
// gathered. The framing of every block is checked; a failure is returned (out then not
// to be used), otherwise nan_pixels is complete_to_8bit's count.
template <typename T>
Lz4Result bslz4_frame_to_8bit(const std::uint8_t* payload, std::int64_t payload_size, std::int64_t offset,
                              std::int64_t block_elements, const std::uint8_t* wanted, const SourceOrder* by_source,
                              const PixelRules& rules, const PixelMap& map, const CompletionPlan& plan,
                              float adc_offset, std::uint8_t* out, int n_threads, std::int64_t& nan_pixels);

}  // namespace diffranet
