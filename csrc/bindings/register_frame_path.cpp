// Python binding of the compiled frame path, of the frames' finite check and of framed LZ4
// decoding: argument checks (checked.hpp) and dtype dispatch only.
// diffranet.inference.frame_path builds the maps; diffranet.live.compression
// parses the Stream V2 framing.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "checked.hpp"
#include "diffranet/bitshuffle.hpp"
#include "diffranet/finite.hpp"
#include "diffranet/frame_path.hpp"
#include "diffranet/lz4_frames.hpp"

namespace {

// A contiguous byte string (bytes, bytearray, memoryview, uint8 array) as a buffer.
py::buffer_info byte_string(const py::buffer& payload) {
    py::buffer_info info = payload.request();
    if (info.ndim != 1 || info.itemsize != 1 || info.strides[0] != 1)
        checked::fail("payload must be a contiguous byte string");
    return info;
}

// bslz4 framing arguments, checked: the offset inside the payload, blocks of a whole
// multiple of 8 elements.
void check_bslz4(const py::buffer_info& info, std::int64_t offset, std::int64_t block_elements) {
    if (offset < 0 || offset > info.size) checked::fail("offset must lie inside the payload");
    if (block_elements < 8 || block_elements % 8)
        checked::fail("bslz4 block size must be a positive multiple of 8 elements, got " +
                      std::to_string(block_elements));
}

// A training-detector map checked once (every source index inside the frame,
// row starts ascending), kept with the arrays it points into.
class FrameMap {
  public:
    FrameMap(std::int64_t rows, std::int64_t cols, const py::object& starts_obj, const py::object& sources_obj,
             const py::object& weights_obj, const py::object& expected_obj, const py::object& cells_obj,
             const py::object& order_obj, const py::object& cell_starts_obj, int n_rings, int n_sectors,
             double min_coverage)
        : rows_(checked::side(rows, "rows")),
          cols_(checked::side(cols, "cols")),
          starts_(checked::array<std::int64_t>(starts_obj, "starts", {checked::kAnyLength})),
          sources_(checked::array<std::int32_t>(sources_obj, "sources", {checked::kAnyLength})),
          weights_(checked::array<double>(weights_obj, "weights", {sources_.shape(0)})),
          expected_(checked::all_finite(checked::array<double>(expected_obj, "expected", {checked::kAnyLength,
                                                                                           checked::kAnyLength}),
                                        "expected")),
          cells_(checked::array<std::int32_t>(cells_obj, "cells", {expected_.shape(0), expected_.shape(1)})),
          order_(checked::array<std::int32_t>(order_obj, "order", {expected_.size()})),
          cell_starts_(checked::array<std::int64_t>(cell_starts_obj, "cell_starts", {checked::kAnyLength})) {
        const std::int64_t n_targets = expected_.size();
        if (starts_.shape(0) != n_targets + 1)
            checked::fail("starts must have one entry per training pixel and one more, got " +
                          std::to_string(starts_.shape(0)) + " for " + std::to_string(n_targets) + " pixels");
        const std::int64_t* s = starts_.data();
        if (s[0] != 0 || s[n_targets] != sources_.shape(0))
            checked::fail("starts must run from 0 to the number of sources");
        for (std::int64_t t = 0; t < n_targets; ++t)
            if (s[t + 1] < s[t]) checked::fail("starts must not decrease");
        const std::int64_t n_sources = std::int64_t{rows_} * cols_;
        const std::int32_t* src = sources_.data();
        for (py::ssize_t j = 0; j < sources_.shape(0); ++j)
            if (src[j] < 0 || src[j] >= n_sources) checked::fail("sources must be pixels of the frame");
        if (n_sectors < 1 || n_rings < 1) checked::fail("n_rings and n_sectors must be >= 1");
        const std::int32_t* c = cells_.data();
        for (std::int64_t t = 0; t < n_targets; ++t)
            if (c[t] < 0 || c[t] >= std::int64_t{n_rings} * n_sectors)
                checked::fail("cells must lie in [0, n_rings * n_sectors)");
        if (!(min_coverage >= 0.0 && min_coverage <= 1.0)) checked::fail("min_coverage must lie in [0, 1]");
        // order: the training pixels by cell, cell c holding order[cell_starts[c]:cell_starts[c + 1]]
        const std::int64_t n_cells = std::int64_t{n_rings} * n_sectors;
        const std::int64_t* cs = cell_starts_.data();
        if (cell_starts_.shape(0) != n_cells + 1 || cs[0] != 0 || cs[n_cells] != n_targets)
            checked::fail("cell_starts must run from 0 to the number of training pixels, one entry per cell and one more");
        const std::int32_t* o = order_.data();
        for (std::int64_t cell = 0; cell < n_cells; ++cell) {
            if (cs[cell + 1] < cs[cell]) checked::fail("cell_starts must not decrease");
            for (std::int64_t k = cs[cell]; k < cs[cell + 1]; ++k)
                if (o[k] < 0 || o[k] >= n_targets || c[o[k]] != cell)
                    checked::fail("order must list the training pixels of each cell in turn");
        }
        map_.starts = s;
        map_.sources = src;
        map_.weights = weights_.data();
        const double* w = weights_.data();
        map_.uniform = true;
        for (py::ssize_t j = 0; j < weights_.shape(0) && map_.uniform; ++j) map_.uniform = w[j] == w[0];
        if (!map_.uniform && diffranet::index_weights(w, weights_.shape(0), weight_index_, weight_table_)) {
            map_.weight_index = weight_index_.data();
            map_.weight_table = weight_table_.data();
        }
        map_.weight = weights_.shape(0) ? w[0] : 0.0;
        map_.n_targets = n_targets;
        map_.n_sources = n_sources;
        read_ = diffranet::read_pixels(map_);
        map_.run_first = read_.first.data();
        map_.run_offset = read_.offset.data();
        map_.n_runs = static_cast<std::int64_t>(read_.first.size());
        map_.read_place = read_.place.data();
        plan_.expected = expected_.data();
        plan_.cells = c;
        plan_.order = o;
        plan_.cell_starts = cs;
        plan_.n = n_targets;
        plan_.n_rings = n_rings;
        plan_.n_sectors = n_sectors;
        plan_.min_coverage = min_coverage;
    }

    void to_8bit(const py::object& frame, const py::object& mask, const py::object& saturation, double adc_offset,
                 const py::object& out_obj, int n_threads) const {
        const auto out = checked::array<std::uint8_t>(out_obj, "out", {expected_.shape(0), expected_.shape(1)}, true);
        const float adc = static_cast<float>(checked::nonnegative(adc_offset, "adc_offset"));
        std::int64_t nan = 0;
        dispatch(frame, mask, saturation, n_threads, [&](auto* pixels, const diffranet::PixelRules& rules, int threads) {
            auto* target = const_cast<std::uint8_t*>(out.data());
            py::gil_scoped_release release;
            nan = diffranet::frame_to_8bit(pixels, rules, map_, plan_, adc, target, threads);
        });
        if (nan) checked::fail("counts must not contain NaN (" + std::to_string(nan) + " training pixels)");
    }

    void gather(const py::object& frame, const py::object& mask, const py::object& saturation,
                const py::object& sums_obj, const py::object& covered_obj, int n_threads) const {
        const auto sums = checked::array<double>(sums_obj, "sums", {expected_.shape(0), expected_.shape(1)}, true);
        const auto covered =
            checked::array<double>(covered_obj, "covered", {expected_.shape(0), expected_.shape(1)}, true);
        dispatch(frame, mask, saturation, n_threads, [&](auto* pixels, const diffranet::PixelRules& rules, int threads) {
            auto* s = const_cast<double*>(sums.data());
            auto* c = const_cast<double*>(covered.data());
            py::gil_scoped_release release;
            diffranet::gather_frame(pixels, rules, map_, s, c, threads);
        });
    }

    void bslz4_to_8bit(const py::buffer& payload, std::int64_t offset, const py::dtype& dtype,
                       std::int64_t block_elements, const py::object& mask_obj, const py::object& saturation,
                       double adc_offset, const py::object& out_obj, int n_threads) {
        const py::buffer_info info = byte_string(payload);
        check_bslz4(info, offset, block_elements);
        const auto out = checked::array<std::uint8_t>(out_obj, "out", {expected_.shape(0), expected_.shape(1)}, true);
        const float adc = static_cast<float>(checked::nonnegative(adc_offset, "adc_offset"));
        const int threads = checked::threads(n_threads);
        const auto mask = checked::optional_array<std::uint8_t>(mask_obj, "mask", {rows_, cols_});
        diffranet::PixelRules rules;
        rules.mask = mask ? mask->data() : nullptr;
        rules.has_saturation = !saturation.is_none();
        if (rules.has_saturation) rules.saturation = checked::finite(saturation.cast<double>(), "saturation");
        std::shared_ptr<const std::vector<std::uint8_t>> wanted;
        std::shared_ptr<const diffranet::SourceOrder> by_source;
        {
            // Built on the first frame of a geometry (sorting the map takes a few hundred ms): the
            // receiving and publishing threads must not wait for it, so without the GIL, one builder at a time.
            py::gil_scoped_release release;
            const std::lock_guard<std::mutex> lock(lazy_);
            wanted = blocks_read(block_elements);
            if (!by_source_) by_source_ = std::make_shared<const diffranet::SourceOrder>(diffranet::source_order(map_));
            by_source = by_source_;
        }
        diffranet::Lz4Result result;
        std::int64_t nan = 0;
        const auto run = [&](auto typed) {
            using T = decltype(typed);
            const auto* bytes = static_cast<const std::uint8_t*>(info.ptr);
            auto* target = const_cast<std::uint8_t*>(out.data());
            py::gil_scoped_release release;
            result = diffranet::bslz4_frame_to_8bit<T>(bytes, info.size, offset, block_elements, wanted->data(),
                                                       by_source.get(), rules, map_, plan_, adc, target, threads, nan);
        };
        if (dtype.equal(py::dtype::of<std::uint8_t>())) run(std::uint8_t{});
        else if (dtype.equal(py::dtype::of<std::uint16_t>())) run(std::uint16_t{});
        else if (dtype.equal(py::dtype::of<std::uint32_t>())) run(std::uint32_t{});
        else if (dtype.equal(py::dtype::of<std::uint64_t>())) run(std::uint64_t{});
        else if (dtype.equal(py::dtype::of<std::int8_t>())) run(std::int8_t{});
        else if (dtype.equal(py::dtype::of<std::int16_t>())) run(std::int16_t{});
        else if (dtype.equal(py::dtype::of<std::int32_t>())) run(std::int32_t{});
        else if (dtype.equal(py::dtype::of<std::int64_t>())) run(std::int64_t{});
        else
            checked::fail("a bslz4 frame must hold 8- to 64-bit integers (native byte order), got " +
                          py::str(dtype).cast<std::string>());
        if (!result.ok) checked::fail(result.error);
        if (nan) checked::fail("counts must not contain NaN (" + std::to_string(nan) + " training pixels)");
    }

  private:
    // The blocks the map reads, for the last block size asked (a series keeps one); replaced,
    // never changed in place, so a call that released the GIL keeps its own.
    std::shared_ptr<const std::vector<std::uint8_t>> blocks_read(std::int64_t block_elements) {
        if (!wanted_ || wanted_block_elements_ != block_elements) {
            wanted_ = std::make_shared<const std::vector<std::uint8_t>>(diffranet::blocks_read(map_, block_elements));
            wanted_block_elements_ = block_elements;
        }
        return wanted_;
    }

    template <typename T, typename Call>
    bool try_type(const py::object& frame, const diffranet::PixelRules& rules, int threads, Call& call) const {
        const auto a = py::reinterpret_borrow<py::array>(frame);
        if (!a.dtype().equal(py::dtype::of<T>())) return false;
        const auto typed = checked::array<T>(frame, "frame", {rows_, cols_});
        call(typed.data(), rules, threads);
        return true;
    }

    template <typename Call>
    void dispatch(const py::object& frame, const py::object& mask_obj, const py::object& saturation, int n_threads,
                  Call call) const {
        const int threads = checked::threads(n_threads);
        if (!py::isinstance<py::array>(frame))
            checked::fail("frame must be a numpy array, got " +
                          py::str(py::type::handle_of(frame).attr("__name__")).cast<std::string>());
        const auto mask = checked::optional_array<std::uint8_t>(mask_obj, "mask", {rows_, cols_});
        diffranet::PixelRules rules;
        rules.mask = mask ? mask->data() : nullptr;
        rules.has_saturation = !saturation.is_none();
        if (rules.has_saturation) rules.saturation = checked::finite(saturation.cast<double>(), "saturation");
        if (!(try_type<std::uint8_t>(frame, rules, threads, call) || try_type<std::uint16_t>(frame, rules, threads, call) ||
              try_type<std::uint32_t>(frame, rules, threads, call) || try_type<std::uint64_t>(frame, rules, threads, call) ||
              try_type<std::int8_t>(frame, rules, threads, call) || try_type<std::int16_t>(frame, rules, threads, call) ||
              try_type<std::int32_t>(frame, rules, threads, call) || try_type<std::int64_t>(frame, rules, threads, call) ||
              try_type<float>(frame, rules, threads, call) || try_type<double>(frame, rules, threads, call)))
            checked::fail("frame must hold 8- to 64-bit integers or float32 / float64 (native byte order), got " +
                          py::str(py::reinterpret_borrow<py::array>(frame).dtype()).cast<std::string>());
    }

    int rows_, cols_;
    py::array_t<std::int64_t, py::array::c_style> starts_;
    py::array_t<std::int32_t, py::array::c_style> sources_;
    py::array_t<double, py::array::c_style> weights_, expected_;
    py::array_t<std::int32_t, py::array::c_style> cells_, order_;
    py::array_t<std::int64_t, py::array::c_style> cell_starts_;
    diffranet::PixelMap map_;
    diffranet::CompletionPlan plan_;
    diffranet::ReadPixels read_;
    std::vector<std::uint8_t> weight_index_;
    std::vector<double> weight_table_;
    std::shared_ptr<const std::vector<std::uint8_t>> wanted_;
    std::shared_ptr<const diffranet::SourceOrder> by_source_;  // built on the first bslz4 frame
    std::mutex lazy_;  // guards wanted_ and by_source_, built without the GIL
    std::int64_t wanted_block_elements_ = 0;
};

std::int64_t decode_framed_lz4(const py::buffer& payload, std::int64_t offset, std::int64_t total,
                               std::int64_t block_bytes, const py::object& out_obj, int n_threads) {
    const py::buffer_info info = payload.request();
    if (info.ndim != 1 || info.itemsize != 1 || (info.ndim == 1 && info.strides[0] != 1))
        checked::fail("payload must be a contiguous byte string");
    const auto out = checked::array<std::uint8_t>(out_obj, "out", {checked::kAnyLength}, true);
    if (total < 0 || out.shape(0) < total) checked::fail("out must hold the " + std::to_string(total) + " bytes");
    if (offset < 0 || offset > info.size) checked::fail("offset must lie inside the payload");
    if (total > 0 && block_bytes < 1) checked::fail("block size of 0 bytes");
    const int threads = checked::threads(n_threads);
    diffranet::Lz4Result result;
    {
        py::gil_scoped_release release;
        result = diffranet::decode_framed_lz4(static_cast<const std::uint8_t*>(info.ptr), info.size, offset, total,
                                              block_bytes, const_cast<std::uint8_t*>(out.data()), threads);
    }
    if (!result.ok) checked::fail(result.error);
    return result.end;
}

void decode_bslz4(const py::buffer& payload, std::int64_t offset, std::int64_t n_elements, int elem_size,
                  std::int64_t block_elements, const py::object& out_obj, int n_threads) {
    const py::buffer_info info = byte_string(payload);
    check_bslz4(info, offset, block_elements);
    if (elem_size != 1 && elem_size != 2 && elem_size != 4 && elem_size != 8)
        checked::fail("bslz4 element size must be 1, 2, 4 or 8 bytes, got " + std::to_string(elem_size));
    const auto out = checked::array<std::uint8_t>(out_obj, "out", {checked::kAnyLength}, true);
    if (n_elements < 0 || out.shape(0) != n_elements * elem_size)
        checked::fail("out must hold the " + std::to_string(n_elements) + " elements of " + std::to_string(elem_size) +
                      " bytes");
    const int threads = checked::threads(n_threads);
    diffranet::Lz4Result result;
    {
        py::gil_scoped_release release;
        result = diffranet::decode_bslz4(static_cast<const std::uint8_t*>(info.ptr), info.size, offset, n_elements,
                                         elem_size, block_elements, const_cast<std::uint8_t*>(out.data()), nullptr,
                                         threads);
    }
    if (!result.ok) checked::fail(result.error);
}

std::int64_t count_nonfinite(const py::object& frame, const py::object& mask_obj, int n_threads) {
    if (!py::isinstance<py::array>(frame))
        checked::fail("frame must be a numpy array, got " +
                      py::str(py::type::handle_of(frame).attr("__name__")).cast<std::string>());
    const auto a = py::reinterpret_borrow<py::array>(frame);
    if (a.ndim() != 2) checked::fail("frame must have 2 dimensions, got shape " + checked::describe_shape(a));
    const int threads = checked::threads(n_threads);
    const auto mask = checked::optional_array<std::uint8_t>(mask_obj, "mask", {a.shape(0), a.shape(1)});
    const std::uint8_t* m = mask ? mask->data() : nullptr;
    const auto run = [&](auto typed) {
        using T = decltype(typed);
        const auto pixels = checked::array<T>(frame, "frame", {a.shape(0), a.shape(1)});
        py::gil_scoped_release release;
        return diffranet::count_nonfinite(pixels.data(), m, pixels.size(), threads);
    };
    if (a.dtype().equal(py::dtype::of<float>())) return run(float{});
    if (a.dtype().equal(py::dtype::of<double>())) return run(double{});
    checked::fail("frame must hold float32 or float64 (native byte order), got " + py::str(a.dtype()).cast<std::string>());
}

}  // namespace

void register_frame_path(py::module_& m) {
    py::class_<FrameMap>(m, "FrameMap",
                         "A training-detector map of frames of one shape (CSR: starts, sources, weights), the "
                         "training pixels' expected areas and ring-and-sector cells; checked once.")
        .def(py::init<std::int64_t, std::int64_t, const py::object&, const py::object&, const py::object&,
                      const py::object&, const py::object&, const py::object&, const py::object&, int, int,
                      double>(),
             py::arg("rows"), py::arg("cols"), py::arg("starts"), py::arg("sources"), py::arg("weights"),
             py::arg("expected"), py::arg("cells"), py::arg("order"), py::arg("cell_starts"), py::arg("n_rings"), py::arg("n_sectors"), py::arg("min_coverage"))
        .def("to_8bit", &FrameMap::to_8bit, py::arg("frame"), py::arg("mask"), py::arg("saturation"),
             py::arg("adc_offset"), py::arg("out"), py::arg("n_threads"),
             "The 8-bit model input of a frame, written into out (uint8, the training shape).")
        .def("gather", &FrameMap::gather, py::arg("frame"), py::arg("mask"), py::arg("saturation"), py::arg("sums"),
             py::arg("covered"), py::arg("n_threads"),
             "Photons and valid area received by each training pixel, written into sums and covered (float64).")
        .def("bslz4_to_8bit", &FrameMap::bslz4_to_8bit, py::arg("payload"), py::arg("offset"), py::arg("dtype"),
             py::arg("block_elements"), py::arg("mask"), py::arg("saturation"), py::arg("adc_offset"), py::arg("out"),
             py::arg("n_threads"),
             "to_8bit of a frame still bslz4-compressed (payload[offset:] past the 12-byte header): only the blocks "
             "the map reads are expanded.");
    m.def("count_nonfinite", &count_nonfinite, py::arg("frame"), py::arg("mask"), py::arg("n_threads"),
          "How many pixels of a float32 / float64 frame (2-D, C-contiguous) are NaN or infinite where mask "
          "(uint8, the frame's shape, or None) is 0.");
    m.def("decode_bslz4", &decode_bslz4, py::arg("payload"), py::arg("offset"), py::arg("n_elements"),
          py::arg("elem_size"), py::arg("block_elements"), py::arg("out"), py::arg("n_threads"),
          "Expand n_elements bit-shuffled elements of elem_size bytes in framed LZ4 blocks of block_elements "
          "elements from payload[offset:] into out (uint8, n_elements * elem_size bytes).");
    m.def("decode_framed_lz4", &decode_framed_lz4, py::arg("payload"), py::arg("offset"), py::arg("total"),
          py::arg("block_bytes"), py::arg("out"), py::arg("n_threads"),
          "Decode total bytes of framed LZ4 blocks from payload[offset:] into out (uint8); returns the offset "
          "after the last block.");
}
