// Kernel flag words as Python enum.IntFlag classes, shared by every register_*.cpp.
#pragma once

#include <pybind11/native_enum.h>
#include <pybind11/pybind11.h>

#include <cstdint>

#include "module.hpp"

namespace iouring::bindings {

// pybind11's native_enum needs a C++ enum type; each flag family declares an empty scoped enum
// (`enum class TimeoutFlag : std::uint32_t {};`) and lists its bits here by name.
template <typename E>
struct FlagEnum {
    py::native_enum<E> e;
    FlagEnum(py::handle scope, const char* name, const char* doc)
        : e(scope, name, "enum.IntFlag", doc) {}
    FlagEnum& value(const char* name, std::uint64_t bit) {
        e.value(name, static_cast<E>(bit));
        return *this;
    }
    void finalize() { e.finalize(); }
};

// The module being initialised: the family registration functions get the classes only. With
// multi-phase initialisation the module is in sys.modules while it executes.
inline py::module_ module_of(const RingClass& ring) {
    py::object name = ring.attr("__module__");
    return py::reinterpret_borrow<py::module_>(py::module_::import("sys").attr("modules")[name]);
}

}  // namespace iouring::bindings
