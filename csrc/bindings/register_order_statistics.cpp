// Python binding of the per-group order statistic: argument checks
// (checked.hpp) only. diffranet.dataset.labels validates the user's input.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <limits>
#include <string>

#include "checked.hpp"
#include "diffranet/order_statistics.hpp"

namespace {

constexpr int kMaxOrder = 1024;

py::array_t<double> kth_smallest_per_group(const py::object& labels_obj, const py::object& values_obj,
                                           std::int64_t n_groups, std::int64_t k) {
    const auto labels = checked::array<std::int32_t>(labels_obj, "labels", {checked::kAnyLength});
    const auto values = checked::array<double>(values_obj, "values", {labels.shape(0)});
    if (n_groups < 0 || n_groups > INT32_MAX)
        checked::fail("n_groups must lie in [0, 2**31 - 1], got " + std::to_string(n_groups));
    if (k < 1 || k > kMaxOrder)
        checked::fail("k must lie in [1, " + std::to_string(kMaxOrder) + "], got " + std::to_string(k));
    if (!checked::all_within(labels.data(), labels.size(), std::int32_t{0}, static_cast<std::int32_t>(n_groups)))
        checked::fail("labels must lie in [0, n_groups = " + std::to_string(n_groups) + "], got " +
                      std::to_string(checked::first_outside(labels.data(), labels.size(), std::int32_t{0},
                                                            static_cast<std::int32_t>(n_groups))));
    const double inf = std::numeric_limits<double>::infinity();
    if (!checked::all_within(values.data(), values.size(), -inf, inf)) checked::fail("values must not hold NaN");
    py::array_t<double> out(n_groups);
    {
        py::gil_scoped_release release;
        diffranet::kth_smallest_per_group(labels.data(), values.data(), labels.size(), static_cast<int>(n_groups),
                                          static_cast<int>(k), out.mutable_data());
    }
    return out;
}

}  // namespace

void register_order_statistics(py::module_& m) {
    m.def("kth_smallest_per_group", &kth_smallest_per_group, py::arg("labels"), py::arg("values"),
          py::arg("n_groups"), py::arg("k"),
          "out[g - 1]: the k-th smallest of values where labels == g (g = 1 .. n_groups; inf for fewer than k "
          "values). labels int32 (n,) in [0, n_groups], 0 for none; values float64 (n,), no NaN.");
}
