// The pieces module.cpp assembles, and the types shared between the register_*.cpp files.
#pragma once

#include <pybind11/pybind11.h>

#include <cstdint>
#include <memory>

#include "ring.hpp"

namespace iouring::bindings {

namespace py = pybind11;

// A Python handle on one SQE slot. It names the slot by its absolute position, so once the
// slot is flushed (position < the ring's flushed count) every use raises StaleSqeError.
struct SqeHandle {
    std::shared_ptr<Ring> ring;
    std::uint64_t position;

    [[nodiscard]] Sqe& sqe() const { return ring->sqe_at(position); }
};

// The handle object for the slot at `position` of `ring`, as returned by get_sqe() and the
// one-call ring methods.
py::object sqe_handle(Ring& ring, std::uint64_t position);

// The iouring._core.IoUring type (set by register_ring).
inline PyTypeObject*& ring_type() {
    static PyTypeObject* type = nullptr;
    return type;
}

// The Ring of `self`, for the methods on the fast paths: they take `self` as a py::handle
// rather than a Ring&, whose pybind11 conversion looks the type up in pybind11's registry on
// every call (a fifth of a one-call method's cost). Raises TypeError for anything that is not
// an initialised IoUring (a method called through the class with another object).
inline Ring& ring_of(py::handle self) {
    if (PyObject_TypeCheck(self.ptr(), ring_type()) == 0) {
        raise(PyExc_TypeError, "an iouring.IoUring is required, not " + type_name(self));
    }
    // One pybind11 base: the instance has the simple layout, value and holder inline.
    py::detail::value_and_holder v_h =
        reinterpret_cast<py::detail::instance*>(self.ptr())->get_value_and_holder();
    if (!v_h.holder_constructed()) raise(PyExc_TypeError, "IoUring.__init__() was not called");
    return *v_h.value_ptr<Ring>();
}

using RingClass = py::class_<Ring, std::shared_ptr<Ring>>;
using SqeClass = py::class_<SqeHandle>;

void register_enums(py::module_& m);
void register_errors(py::module_& m);
void register_completions(py::module_& m);
SqeClass register_sqe(py::module_& m);
RingClass register_ring(py::module_& m);
void register_ops(py::module_& m, RingClass& ring, SqeClass& sqe);
void register_batch(py::module_& m, RingClass& ring);
void register_sqe_array(py::module_& m, RingClass& ring);
void register_registration(py::module_& m, RingClass& ring);
void register_fs_ops(py::module_& m, RingClass& ring, SqeClass& sqe);
void register_control_ops(py::module_& m, RingClass& ring, SqeClass& sqe);
void register_net_ops(py::module_& m, RingClass& ring, SqeClass& sqe);
void register_buffer_ops(py::module_& m, RingClass& ring, SqeClass& sqe);
void register_helpers(py::module_& m);
void register_aio(py::module_& m);

}  // namespace iouring::bindings
