// The compiled frame path (diffranet/inference/frame_path.py): gather a frame's
// valid pixels through the training-detector map, complete the missing area with
// the ring-and-sector median background, and apply the 8-bit square root.
//
// Every floating-point operation is the one the Python path (preprocess.py,
// peaks/background.py) performs, in the same order, so the 8-bit images are equal
// byte for byte; this file is compiled without contraction into fused
// multiply-adds (CMakeLists.txt), which would round differently.
#include "diffranet/frame_path.hpp"

#include <algorithm>
#include <bitset>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <type_traits>
#include <vector>

#include "diffranet/bitshuffle.hpp"
#include "diffranet/threads.hpp"

namespace diffranet {
namespace {

// Frame pixels whose values carry photons: numpy's comparisons of preprocess.invalid_pixels
// (a float32 frame is compared with the saturation rounded to float32, any other with float64).
template <typename T>
struct Validity {
    using Compare = std::conditional_t<std::is_same_v<T, float>, float, double>;
    bool has_saturation;
    Compare saturation;

    explicit Validity(const PixelRules& rules) : has_saturation(rules.has_saturation) {
        const double limit = static_cast<double>(std::numeric_limits<Compare>::max());
        saturation = rules.saturation > limit    ? std::numeric_limits<Compare>::infinity()
                     : rules.saturation < -limit ? -std::numeric_limits<Compare>::infinity()
                                                 : static_cast<Compare>(rules.saturation);
    }

    // Without branches: in photon-converted frames (JUNGFRAU) the read-out noise makes about one
    // pixel in five negative, at random, which no branch predictor follows.
    bool operator()(T v) const {
        bool carries = true;
        if constexpr (std::is_floating_point_v<T>) {
            carries = (v >= 0) & (v != std::numeric_limits<T>::infinity());  // not negative, NaN or infinite
        } else if constexpr (std::is_signed_v<T>) {
            carries = v >= 0;
        }
        return carries & !(has_saturation & (static_cast<Compare>(v) >= saturation));
    }
};

// x when keep, +0.0 otherwise, as a bit mask rather than a branch.
inline double kept(double x, bool keep) {
    std::uint64_t bits;
    std::memcpy(&bits, &x, sizeof bits);
    bits &= -static_cast<std::uint64_t>(keep);
    std::memcpy(&x, &bits, sizeof bits);
    return x;
}

// x when keep, -0.0 otherwise: the mark of a pixel to ignore in the buffer of checked pixels.
// Pixels that carry photons hold values >= +0.0 there (x + 0 turns a -0.0 into +0.0).
template <typename C>
C marked(C x, bool keep) {
    using U = std::conditional_t<sizeof(C) == 4, std::uint32_t, std::uint64_t>;
    constexpr U sign = U{1} << (8 * sizeof(C) - 1);
    U bits;
    std::memcpy(&bits, &x, sizeof bits);
    const U m = -static_cast<U>(keep);
    bits = (bits & m) | (sign & ~m);
    std::memcpy(&x, &bits, sizeof bits);
    return x;
}

// The type of the checked pixels: float when it holds every value of T exactly, else double.
template <typename T>
using Checked = std::conditional_t<std::is_same_v<T, float> || (std::is_integral_v<T> && sizeof(T) <= 2), float,
                                   double>;

enum class Weights { uniform, indexed, general };

// Each pixel read is checked once (with sub-pixels it feeds several entries) into `checked`, with the
// branch-free comparisons vectorised along the runs; the rows then read one value per entry.
// Uniform: every weight is map.weight (maps without subpixels), not read per entry; indexed:
// looked up in map.weight_table (the same values).
template <typename T, Weights Kind>
void gather_rows(const T* frame, const PixelRules& rules, const PixelMap& map, double* sums, double* covered,
                 int n_threads) {
    using C = Checked<T>;
    thread_local std::vector<C> buffer;
    buffer.resize(static_cast<std::size_t>(map.run_offset[map.n_runs]));
    C* checked = buffer.data();
    const Validity<T> valid(rules);
    const std::uint8_t* mask = rules.mask;
#pragma omp parallel num_threads(resolve_threads(n_threads))
    {
#pragma omp for schedule(static)
        for (std::int64_t r = 0; r < map.n_runs; ++r) {
            const T* in = frame + map.run_first[r];
            C* out = checked + map.run_offset[r];
            const std::int64_t n = map.run_offset[r + 1] - map.run_offset[r];
            if (mask == nullptr) {
                for (std::int64_t i = 0; i < n; ++i) out[i] = marked(static_cast<C>(in[i]) + C(0), valid(in[i]));
            } else {
                const std::uint8_t* ignore = mask + map.run_first[r];
                for (std::int64_t i = 0; i < n; ++i)
                    out[i] = marked(static_cast<C>(in[i]) + C(0), (ignore[i] == 0) & valid(in[i]));
            }
        }
#pragma omp for schedule(static, 1024)
        for (std::int64_t t = 0; t < map.n_targets; ++t) {
            double sum = 0.0, area = 0.0;
            for (std::int64_t j = map.starts[t]; j < map.starts[t + 1]; ++j) {
                const C x = checked[map.read_place[j]];
                // a pixel to ignore adds +0.0 * -0.0 and +0.0, which change no sum of values >= +0.0:
                // the Python path's sums, whose ignored pixels hold 0
                const double w = kept(Kind == Weights::uniform   ? map.weight
                                      : Kind == Weights::indexed ? map.weight_table[map.weight_index[j]]
                                                                 : map.weights[j],
                                      !std::signbit(x));
                sum += w * static_cast<double>(x);
                area += w;
            }
            sums[t] = sum;
            covered[t] = area;
        }
    }
}

}  // namespace

ReadPixels read_pixels(const PixelMap& map) {
    constexpr std::int64_t kLongestRun = 4096;  // runs are shared among the threads
    const std::int64_t n_words = (map.n_sources + 63) / 64;
    std::vector<std::uint64_t> used(static_cast<std::size_t>(n_words), 0);
    const std::int64_t n_entries = map.starts[map.n_targets];
    for (std::int64_t j = 0; j < n_entries; ++j) used[map.sources[j] >> 6] |= std::uint64_t{1} << (map.sources[j] & 63);
    std::vector<std::int64_t> before(static_cast<std::size_t>(n_words));  // pixels read before each word
    std::int64_t total = 0;
    for (std::int64_t w = 0; w < n_words; ++w) {
        before[w] = total;
        total += static_cast<std::int64_t>(std::bitset<64>(used[w]).count());
    }
    ReadPixels read;
    read.place.resize(static_cast<std::size_t>(n_entries));
    for (std::int64_t j = 0; j < n_entries; ++j) {
        const std::int32_t s = map.sources[j];
        const std::uint64_t below = (std::uint64_t{1} << (s & 63)) - 1;
        read.place[j] = static_cast<std::int32_t>(before[s >> 6] + std::bitset<64>(used[s >> 6] & below).count());
    }
    std::int64_t place = 0, length = 0;
    for (std::int64_t s = 0; s < map.n_sources; ++s) {
        if (!(used[s >> 6] >> (s & 63) & 1)) {
            length = 0;
            continue;
        }
        if (length == 0 || length == kLongestRun) {
            read.first.push_back(s);
            read.offset.push_back(place);
            length = 0;
        }
        ++length;
        ++place;
    }
    read.offset.push_back(place);
    return read;
}

bool index_weights(const double* weights, std::int64_t n, std::vector<std::uint8_t>& index,
                   std::vector<double>& table) {
    index.resize(static_cast<std::size_t>(n));
    table.clear();
    std::uint8_t last = 0;
    for (std::int64_t j = 0; j < n; ++j) {
        if (table.empty() || !(table[last] == weights[j])) {  // runs of one share are common: try the last first
            const auto found = std::find(table.begin(), table.end(), weights[j]);
            if (found == table.end()) {
                if (table.size() == 256 || !std::isfinite(weights[j])) return false;
                table.push_back(weights[j]);
            }
            last = static_cast<std::uint8_t>(std::find(table.begin(), table.end(), weights[j]) - table.begin());
        }
        index[j] = last;
    }
    return true;
}

template <typename T>
void gather_frame(const T* frame, const PixelRules& rules, const PixelMap& map, double* sums, double* covered,
                  int n_threads) {
    if (map.uniform) {
        gather_rows<T, Weights::uniform>(frame, rules, map, sums, covered, n_threads);
    } else if (map.weight_index != nullptr) {
        gather_rows<T, Weights::indexed>(frame, rules, map, sums, covered, n_threads);
    } else {
        gather_rows<T, Weights::general>(frame, rules, map, sums, covered, n_threads);
    }
}

#define DIFFRANET_FRAME_TYPES(X) \
    X(std::uint8_t) X(std::uint16_t) X(std::uint32_t) X(std::uint64_t) X(std::int8_t) X(std::int16_t) \
    X(std::int32_t) X(std::int64_t) X(float) X(double)

#define DIFFRANET_GATHER(T) \
    template void gather_frame<T>(const T*, const PixelRules&, const PixelMap&, double*, double*, int);
DIFFRANET_FRAME_TYPES(DIFFRANET_GATHER)
#undef DIFFRANET_GATHER

namespace {

// Per-thread scratch of complete_to_8bit, grown when needed and kept (no allocation per frame).
struct Scratch {
    std::vector<std::uint8_t> state, cell_wanted, ring_wanted, ring_done;
    std::vector<double> density, values, cell_median, ring_median;
    std::vector<std::int32_t> cell_good;
    std::vector<float> value;  // counts + ADC offset of each training pixel
};

// Bits of a training pixel's state: covered below min_coverage (background only), not fully
// covered (background added).
constexpr std::uint8_t kMasked = 1, kNeed = 2;

// numpy's median of a few values (mean of the two middle ones for an even count).
double median_of(std::vector<double>& values) {
    std::sort(values.begin(), values.end());
    const std::size_t n = values.size(), h = n / 2;
    return n % 2 ? values[h] : (values[h - 1] + values[h]) / 2.0;
}

// The k-th smallest of v[0, n) (v reordered): the value std::nth_element finds. Its partitions
// swap without branching on the values: densities are noise, on which nth_element's comparisons
// are mispredicted half the time (most of its cost on a frame's few thousand cells).
double kth_smallest(double* v, std::int64_t n, std::int64_t k) {
    while (n > 16) {
        const double a = v[0], b = v[n / 2], c = v[n - 1];
        const double pivot = std::max(std::min(a, b), std::min(std::max(a, b), c));  // median of three, one of v
        std::int64_t less = 0;  // v[0, less) < pivot
        for (std::int64_t i = 0; i < n; ++i) {
            const double x = v[i];
            v[i] = v[less];
            v[less] = x;
            less += x < pivot;
        }
        if (k < less) {
            n = less;
            continue;
        }
        std::int64_t equal = less;  // v[less, equal) == pivot: not empty, so every round shrinks v
        for (std::int64_t i = less; i < n; ++i) {
            const double x = v[i];
            v[i] = v[equal];
            v[equal] = x;
            equal += x <= pivot;
        }
        if (k < equal) return pivot;
        v += equal;
        n -= equal;
        k -= equal;
    }
    std::sort(v, v + n);
    return v[k];
}

// The local background of the training pixels (preprocess._background_at): per cell (ring
// and sector) the median of the unmasked densities, with group_medians' sort keys; a cell
// without unmasked pixels takes its ring's median of sector medians, a ring without any
// the interpolation between the nearest rings with data (fill_empty_sectors, np.interp).
class Background {
  public:
    Background(const CompletionPlan& plan, Scratch& s, double low, double high)
        : plan_(plan), s_(s), low_(low), span_(high - low + 1.0) {}

    // Cells are independent: their pixels are counted and their medians taken in parallel, each
    // thread with its own buffer; the few rings to fill follow.
    void medians(int n_threads) {
        const int n_cells = plan_.n_rings * plan_.n_sectors;
        std::int64_t largest = 0;
        for (int c = 0; c < n_cells; ++c) largest = std::max(largest, plan_.cell_starts[c + 1] - plan_.cell_starts[c]);
        s_.values.resize(static_cast<std::size_t>(largest));
        s_.cell_median.assign(n_cells, std::numeric_limits<double>::quiet_NaN());
        s_.cell_wanted.resize(n_cells);
        s_.cell_good.resize(n_cells);
        s_.ring_wanted.assign(plan_.n_rings, 0);
        s_.ring_done.assign(plan_.n_rings, 0);
        s_.ring_median.assign(plan_.n_rings, std::numeric_limits<double>::quiet_NaN());
#pragma omp parallel num_threads(resolve_threads(n_threads))
        {
            std::vector<double> values(static_cast<std::size_t>(largest));
#pragma omp for schedule(dynamic, 64)
            for (int c = 0; c < n_cells; ++c) {
                bool wanted = false;
                const std::int64_t n = cell_densities(c, values.data(), wanted);
                s_.cell_good[c] = static_cast<std::int32_t>(n);
                s_.cell_wanted[c] = wanted;
                if (wanted && n) s_.cell_median[c] = lower_median(c, values.data(), n);
            }
        }
        for (int c = 0; c < n_cells; ++c)
            if (s_.cell_wanted[c] && !s_.cell_good[c]) s_.ring_wanted[c / plan_.n_sectors] = 1;
        for (int r = 0; r < plan_.n_rings; ++r)
            if (s_.ring_wanted[r]) fill_ring(r);
    }

    double at(std::int32_t cell) const {
        const double m = s_.cell_median[cell];
        return std::isnan(m) ? s_.ring_median[cell / plan_.n_sectors] : m;
    }

  private:
    void fill_ring(int r) {
        if (ring_has_data(r)) {
            ring_median(r);
            return;
        }
        int below = r - 1, above = r + 1;
        while (below >= 0 && !ring_has_data(below)) --below;
        while (above < plan_.n_rings && !ring_has_data(above)) ++above;
        if (below < 0) {
            s_.ring_median[r] = ring_median(above);
        } else if (above >= plan_.n_rings) {
            s_.ring_median[r] = ring_median(below);
        } else {
            const double y0 = ring_median(below), y1 = ring_median(above);
            const double x0 = below, x1 = above, x = r;
            const double slope = (y1 - y0) / (x1 - x0);
            double value = slope * (x - x0) + y0;
            if (std::isnan(value)) {
                value = slope * (x - x1) + y1;
                if (std::isnan(value) && y0 == y1) value = y0;
            }
            s_.ring_median[r] = value;
        }
    }

    // The unmasked densities of cell c, into v (room for the largest cell); their count. `wanted`:
    // whether a pixel of the cell needs its background.
    std::int64_t cell_densities(int c, double* v, bool& wanted) const {
        std::int64_t n = 0;
        std::uint8_t any = 0;
        for (std::int64_t k = plan_.cell_starts[c]; k < plan_.cell_starts[c + 1]; ++k) {
            const std::int32_t p = plan_.order[k];
            const std::uint8_t state = s_.state[p];
            v[n] = s_.density[p];
            n += !(state & kMasked);
            any |= state;
        }
        wanted = any & kNeed;
        return n;
    }

    // The lower median of n densities of cell c (v reordered), as group_medians computes it:
    // key = label * span + (value - low), median = key - label * span + low.
    double lower_median(int c, double* v, std::int64_t n) const {
        const double middle = kth_smallest(v, n, (n - 1) / 2);
        const double label = static_cast<double>(c);
        const double key = label * span_ + (middle - low_);
        return key - label * span_ + low_;
    }

    bool ring_has_data(int r) const {
        for (int c = r * plan_.n_sectors; c < (r + 1) * plan_.n_sectors; ++c)
            if (s_.cell_good[c]) return true;
        return false;
    }

    double ring_median(int r) {
        if (s_.ring_done[r]) return s_.ring_median[r];
        std::vector<double> medians;  // a ring's sectors: a few values, rarely needed
        for (int c = r * plan_.n_sectors; c < (r + 1) * plan_.n_sectors; ++c) {
            if (!s_.cell_good[c]) continue;
            if (std::isnan(s_.cell_median[c])) {
                bool wanted = false;
                const std::int64_t n = cell_densities(c, s_.values.data(), wanted);
                s_.cell_median[c] = lower_median(c, s_.values.data(), n);
            }
            medians.push_back(s_.cell_median[c]);
        }
        s_.ring_done[r] = 1;
        s_.ring_median[r] = median_of(medians);
        return s_.ring_median[r];
    }

    const CompletionPlan& plan_;
    Scratch& s_;
    double low_, span_;
};

}  // namespace

std::int64_t complete_to_8bit(const double* sums, const double* covered, const CompletionPlan& plan,
                              float adc_offset, std::uint8_t* out, int n_threads) {
    thread_local Scratch scratch;
    Scratch& s = scratch;
    const std::int64_t n = plan.n;
    const int threads = resolve_threads(n_threads);
    s.state.resize(n);
    s.density.resize(n);
    bool any_masked = false, all_fed = true;
    const double infinity = std::numeric_limits<double>::infinity();
    double low = infinity, high = -infinity;  // min and max: exact in any order
#pragma omp parallel for schedule(static, 4096) num_threads(threads) reduction(min : low) reduction(max : high) \
    reduction(|| : any_masked) reduction(&& : all_fed)
    for (std::int64_t p = 0; p < n; ++p) {
        const double e = plan.expected[p], c = covered[p];
        const bool m = (c < plan.min_coverage * e) | (c <= 0);
        const bool need = m | (c != e);
        const double density = c > 0 ? sums[p] / c : 0.0;
        s.state[p] = static_cast<std::uint8_t>(m * kMasked | need * kNeed);
        s.density[p] = density;
        low = std::min(low, m ? infinity : density);
        high = std::max(high, m ? -infinity : density);
        any_masked = any_masked || m;
        all_fed = all_fed && c >= e;
    }
    const bool complete = any_masked || !all_fed;
    const bool all_masked = !(low <= high);
    Background background(plan, s, low, high);
    if (complete && !all_masked) background.medians(threads);
    std::int64_t nan = 0;
    s.value.resize(n);
    float* values = s.value.data();
#pragma omp parallel num_threads(threads) reduction(+ : nan)
    {
#pragma omp for schedule(static, 4096)
        for (std::int64_t p = 0; p < n; ++p) {
            double counts = sums[p];
            const std::uint8_t state = s.state[p];
            if (complete && (state & kNeed)) {
                const double bg = all_masked ? 0.0 : background.at(plan.cells[p]);
                const double area = plan.expected[p];
                counts = (state & kMasked) ? area * bg : sums[p] + (area - covered[p]) * bg;
            }
            counts = counts < 0.0 ? 0.0 : counts;  // np.maximum(counts, 0.0); NaN stays NaN
            values[p] = static_cast<float>(counts) + adc_offset;
        }
        // The square root, vectorised: 2^23 added and taken away rounds a float in [0, 2^22) half to even,
        // as np.rint (the default rounding mode). A NaN pixel gets 0 (and is counted).
        constexpr float kRound = 8388608.0f;
#pragma omp for schedule(static, 4096)
        for (std::int64_t p = 0; p < n; ++p) {
            const float value = values[p];
            nan += value != value;
            const float root = std::sqrt(value >= 0.0f ? std::min(value, 65025.0f) : 0.0f);
            out[p] = static_cast<std::uint8_t>(static_cast<std::int32_t>((root + kRound) - kRound));
        }
    }
    return nan;
}

template <typename T>
std::int64_t frame_to_8bit(const T* frame, const PixelRules& rules, const PixelMap& map, const CompletionPlan& plan,
                           float adc_offset, std::uint8_t* out, int n_threads) {
    thread_local std::vector<double> sums, covered;
    sums.resize(static_cast<std::size_t>(map.n_targets));
    covered.resize(static_cast<std::size_t>(map.n_targets));
    gather_frame(frame, rules, map, sums.data(), covered.data(), n_threads);
    return complete_to_8bit(sums.data(), covered.data(), plan, adc_offset, out, n_threads);
}

std::vector<std::uint8_t> blocks_read(const PixelMap& map, std::int64_t block_elements) {
    const std::int64_t in_blocks = map.n_sources - map.n_sources % 8;
    std::vector<std::uint8_t> wanted(static_cast<std::size_t>((in_blocks + block_elements - 1) / block_elements), 0);
    const std::int64_t n_entries = map.starts[map.n_targets];
    for (std::int64_t j = 0; j < n_entries; ++j)
        if (map.sources[j] < in_blocks) wanted[map.sources[j] / block_elements] = 1;
    return wanted;
}

SourceOrder source_order(const PixelMap& map) {
    SourceOrder order;
    if (!map.uniform || map.weight != 1.0) return order;
    constexpr std::int64_t kLongestRow = std::int64_t{1} << 20;  // 2^20 sums of 32-bit integers stay below 2^53
    std::vector<std::uint64_t> keys(static_cast<std::size_t>(map.starts[map.n_targets]));
    for (std::int64_t t = 0; t < map.n_targets; ++t) {
        if (map.starts[t + 1] - map.starts[t] > kLongestRow) return order;
        for (std::int64_t j = map.starts[t]; j < map.starts[t + 1]; ++j)
            keys[j] = (static_cast<std::uint64_t>(map.sources[j]) << 32) | static_cast<std::uint64_t>(t);
    }
    std::sort(keys.begin(), keys.end());
    order.sources.resize(keys.size());
    order.targets.resize(keys.size());
    for (std::size_t j = 0; j < keys.size(); ++j) {
        order.sources[j] = static_cast<std::int32_t>(keys[j] >> 32);
        order.targets[j] = static_cast<std::int32_t>(keys[j] & 0xFFFFFFFFu);
    }
    order.exact = true;
    return order;
}

namespace {

// The photon sums and areas of the map from a bslz4 frame, block by block: each wanted block
// is expanded into a buffer of its thread and its pixels added to that thread's sums, which
// are then added up. Exact whatever the order (see SourceOrder), so the threads do not matter.
template <typename T>
Lz4Result scatter_bslz4(const std::uint8_t* payload, std::int64_t payload_size, std::int64_t offset,
                        std::int64_t block_elements, const std::uint8_t* wanted, const SourceOrder& by_source,
                        const PixelRules& rules, const PixelMap& map, double* sums, double* covered, int n_threads) {
    const Bslz4Blocks blocks = frame_bslz4(payload, payload_size, offset, map.n_sources, sizeof(T), block_elements);
    Lz4Result result = blocks.result;
    if (!result.ok) return result;
    const Validity<T> valid(rules);
    const std::uint8_t* mask = rules.mask;
    const std::int64_t n_targets = map.n_targets, n_blocks = blocks.n_blocks();
    const std::int32_t* sources = by_source.sources.data();
    const std::int32_t* targets = by_source.targets.data();
    const std::int64_t n_entries = static_cast<std::int64_t>(by_source.sources.size());
    const auto first_entry = [&](std::int64_t pixel) {
        return static_cast<std::int64_t>(std::lower_bound(sources, sources + n_entries, pixel) - sources);
    };
    const int threads = resolve_threads(n_threads);
    std::vector<double*> parts(static_cast<std::size_t>(threads), nullptr);
    int failed = 0;
#pragma omp parallel num_threads(threads) reduction(| : failed)
    {
        thread_local std::vector<double> part;  // sum and area of each training pixel, this thread's, kept
        thread_local std::vector<std::uint8_t> shuffled;
        thread_local std::vector<T> pixels;
        part.assign(static_cast<std::size_t>(2 * n_targets), 0.0);
        shuffled.resize(static_cast<std::size_t>(blocks.largest_bytes()));
        pixels.resize(static_cast<std::size_t>(std::min(block_elements, blocks.compressed)));
#ifdef _OPENMP
        parts[omp_get_thread_num()] = part.data();
#else
        parts[0] = part.data();
#endif
#pragma omp for schedule(dynamic, 8)
        for (std::int64_t b = 0; b < n_blocks; ++b) {
            if (!wanted[b]) continue;
            if (!expand_bslz4_block(blocks, payload, b, shuffled.data(),
                                    reinterpret_cast<std::uint8_t*>(pixels.data()))) {
                failed |= 1;
                continue;
            }
            // neighbouring pixels mostly feed one training pixel: their sum is kept in registers until
            // the training pixel changes (any order of additions gives the same exact sums)
            const std::int64_t low = b * block_elements, high = low + blocks.elements_in(b);
            std::int64_t j = first_entry(low);
            while (j < n_entries && sources[j] < high) {
                const std::int32_t t = targets[j];
                double sum = 0.0, area = 0.0;
                for (; j < n_entries && sources[j] < high && targets[j] == t; ++j) {
                    const std::int32_t s = sources[j];
                    const T v = pixels[s - low];
                    if ((mask != nullptr && mask[s]) || !valid(v)) continue;
                    sum += static_cast<double>(v);
                    area += 1.0;
                }
                part[2 * t] += sum;
                part[2 * t + 1] += area;
            }
        }
    }
    if (failed) {
        result.ok = false;
        result.error = "corrupt LZ4 block";
        return result;
    }
#pragma omp parallel for schedule(static) num_threads(threads)
    for (std::int64_t t = 0; t < n_targets; ++t) {
        double sum = 0.0, area = 0.0;
        for (const double* part : parts) {
            if (part == nullptr) continue;
            sum += part[2 * t];
            area += part[2 * t + 1];
        }
        sums[t] = sum;
        covered[t] = area;
    }
    // the last n % 8 pixels follow the blocks as they are
    for (std::int64_t j = first_entry(blocks.compressed); j < n_entries; ++j) {
        const std::int32_t s = sources[j];
        T v;
        std::memcpy(&v, payload + result.end + (s - blocks.compressed) * sizeof(T), sizeof(T));
        if ((mask != nullptr && mask[s]) || !valid(v)) continue;
        sums[targets[j]] += static_cast<double>(v);
        covered[targets[j]] += 1.0;
    }
    return result;
}

}  // namespace

template <typename T>
Lz4Result bslz4_frame_to_8bit(const std::uint8_t* payload, std::int64_t payload_size, std::int64_t offset,
                              std::int64_t block_elements, const std::uint8_t* wanted, const SourceOrder* by_source,
                              const PixelRules& rules, const PixelMap& map, const CompletionPlan& plan,
                              float adc_offset, std::uint8_t* out, int n_threads, std::int64_t& nan_pixels) {
    if constexpr (std::is_integral_v<T> && sizeof(T) <= 4) {
        if (by_source != nullptr && by_source->exact) {
            thread_local std::vector<double> sums, covered;
            sums.resize(static_cast<std::size_t>(map.n_targets));
            covered.resize(static_cast<std::size_t>(map.n_targets));
            const Lz4Result result = scatter_bslz4<T>(payload, payload_size, offset, block_elements, wanted,
                                                      *by_source, rules, map, sums.data(), covered.data(), n_threads);
            if (result.ok)
                nan_pixels = complete_to_8bit(sums.data(), covered.data(), plan, adc_offset, out, n_threads);
            return result;
        }
    }
    // left uninitialised (new T[], not a vector): the pages of blocks never expanded are never touched
    thread_local std::unique_ptr<T[]> frame;
    thread_local std::int64_t capacity = 0;
    if (capacity < map.n_sources) {
        frame.reset();
        frame.reset(new T[static_cast<std::size_t>(map.n_sources)]);
        capacity = map.n_sources;
    }
    const Lz4Result result = decode_bslz4(payload, payload_size, offset, map.n_sources, sizeof(T), block_elements,
                                          reinterpret_cast<std::uint8_t*>(frame.get()), wanted, n_threads);
    if (result.ok) nan_pixels = frame_to_8bit(frame.get(), rules, map, plan, adc_offset, out, n_threads);
    return result;
}

#define DIFFRANET_BSLZ4_TO_8BIT(T)                                                                                \
    template Lz4Result bslz4_frame_to_8bit<T>(const std::uint8_t*, std::int64_t, std::int64_t, std::int64_t,      \
                                              const std::uint8_t*, const SourceOrder*, const PixelRules&,          \
                                              const PixelMap&, const CompletionPlan&, float, std::uint8_t*, int,   \
                                              std::int64_t&);
DIFFRANET_FRAME_TYPES(DIFFRANET_BSLZ4_TO_8BIT)
#undef DIFFRANET_BSLZ4_TO_8BIT

#define DIFFRANET_TO_8BIT(T)                                                                                  \
    template std::int64_t frame_to_8bit<T>(const T*, const PixelRules&, const PixelMap&, const CompletionPlan&, \
                                           float, std::uint8_t*, int);
DIFFRANET_FRAME_TYPES(DIFFRANET_TO_8BIT)
#undef DIFFRANET_TO_8BIT

}  // namespace diffranet
