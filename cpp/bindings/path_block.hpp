// Paths encoded once (os.fsencode) into one block of NUL-terminated strings: what the batch
// methods pin for the kernel and what the direct statx loop reads without the GIL.
#pragma once

#include <pybind11/pybind11.h>

#include <cstddef>
#include <string>
#include <vector>

#include "errors.hpp"

namespace iouring::bindings {

namespace py = pybind11;

struct PathBlock {
    std::string bytes;
    std::vector<std::size_t> starts;

    [[nodiscard]] const char* path(std::size_t i) const { return bytes.data() + starts[i]; }
};

// Appends paths[i]; TypeError/ValueError naming `paths[i]` for what os.fsencode refuses.
inline void append_path(PathBlock& block, py::handle item, std::size_t i) {
    PyObject* encoded = nullptr;
    if (PyUnicode_FSConverter(item.ptr(), &encoded) == 0) {
        py::error_already_set error;
        PyObject* type = error.matches(PyExc_ValueError) ? PyExc_ValueError : PyExc_TypeError;
        std::string detail = py::str(error.value());
        raise(type, "paths[" + std::to_string(i) + "]: " + detail);
    }
    py::object bytes = py::reinterpret_steal<py::object>(encoded);
    block.starts.push_back(block.bytes.size());
    block.bytes.append(PyBytes_AS_STRING(encoded),
                       static_cast<std::size_t>(PyBytes_GET_SIZE(encoded)));
    block.bytes.push_back('\0');
}

}  // namespace iouring::bindings
