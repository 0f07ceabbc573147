// Python binding of the per-pixel table look-up: argument checks
// (checked.hpp) only. diffranet.inference.preprocess builds the tables.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <limits>
#include <string>

#include "checked.hpp"
#include "diffranet/lookup.hpp"

namespace {

template <typename Index>
py::array_t<std::uint8_t> lookup_image(const py::array_t<std::uint8_t, py::array::c_style>& table,
                                       const py::object& image_obj) {
    const auto image = checked::array<Index>(image_obj, "image", {checked::kAnyLength, checked::kAnyLength});
    constexpr auto kEntries = static_cast<py::ssize_t>(std::numeric_limits<Index>::max()) + 1;
    if (table.shape(0) != kEntries)
        checked::fail("table must have " + std::to_string(kEntries) + " entries for a " +
                      py::str(image.dtype()).cast<std::string>() + " image, got " + std::to_string(table.shape(0)));
    py::array_t<std::uint8_t> out({image.shape(0), image.shape(1)});
    {
        py::gil_scoped_release release;
        diffranet::lookup(table.data(), image.data(), image.size(), out.mutable_data());
    }
    return out;
}

py::array_t<std::uint8_t> lookup(const py::object& table_obj, const py::object& image_obj) {
    const auto table = checked::array<std::uint8_t>(table_obj, "table", {checked::kAnyLength});
    if (py::isinstance<py::array>(image_obj)) {
        const py::dtype dtype = py::reinterpret_borrow<py::array>(image_obj).dtype();
        if (dtype.equal(py::dtype::of<std::uint16_t>())) return lookup_image<std::uint16_t>(table, image_obj);
        if (dtype.equal(py::dtype::of<std::uint8_t>())) return lookup_image<std::uint8_t>(table, image_obj);
    }
    checked::fail("image must be a uint8 or uint16 numpy array (native byte order), got " +
                  py::str(py::type::handle_of(image_obj).attr("__name__")).cast<std::string>() +
                  (py::isinstance<py::array>(image_obj)
                       ? " of dtype " + py::str(py::reinterpret_borrow<py::array>(image_obj).dtype()).cast<std::string>()
                       : std::string()));
}

}  // namespace

void register_lookup(py::module_& m) {
    m.def("lookup_u8", &lookup, py::arg("table"), py::arg("image"),
          "table[image]: a new uint8 array of the image's shape. image: uint8 or uint16, 2-D, C-contiguous; "
          "table: uint8 of 256 or 65536 entries (one per possible value).");
}
