// Structured NumPy dtypes laid out exactly as a kernel struct is: the one way the bindings
// build CQE32_DTYPE, STATX_DTYPE, EPOLL_EVENT_DTYPE and the like, so that every field sits at
// the struct's own offsetof() and every record is sizeof() the struct (padding included).
#pragma once

#include <pybind11/pybind11.h>

#include <cstddef>
#include <initializer_list>
#include <utility>

namespace iouring::bindings {

namespace py = pybind11;

// One field: its name, what numpy.dtype takes as its format (a type string such as "<u4", a
// nested dtype, or a (format, shape) tuple) and its byte offset in the struct.
struct DtypeField {
    DtypeField(const char* field_name, const char* type, std::size_t field_offset)
        : name(field_name), format(py::str(type)), offset(field_offset) {}
    DtypeField(const char* field_name, py::object type, std::size_t field_offset)
        : name(field_name), format(std::move(type)), offset(field_offset) {}

    const char* name;
    py::object format;
    std::size_t offset;
};

// numpy.dtype({"names", "formats", "offsets", "itemsize"}) of `fields`, `itemsize` bytes a
// record.
inline py::object struct_dtype(std::initializer_list<DtypeField> fields, std::size_t itemsize) {
    py::list names, formats, offsets;
    for (const DtypeField& f : fields) {
        names.append(f.name);
        formats.append(f.format);
        offsets.append(f.offset);
    }
    py::dict spec;
    spec["names"] = names;
    spec["formats"] = formats;
    spec["offsets"] = offsets;
    spec["itemsize"] = itemsize;
    return py::module_::import("numpy").attr("dtype")(spec);
}

}  // namespace iouring::bindings
