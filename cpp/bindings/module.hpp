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

using RingClass = py::class_<Ring, std::shared_ptr<Ring>>;
using SqeClass = py::class_<SqeHandle>;

void register_enums(py::module_& m);
void register_errors(py::module_& m);
void register_completions(py::module_& m);
SqeClass register_sqe(py::module_& m);
RingClass register_ring(py::module_& m);
void register_ops(RingClass& ring, SqeClass& sqe);
void register_batch(RingClass& ring);
void register_sqe_array(py::module_& m, RingClass& ring);
void register_registration(RingClass& ring);
void register_fs_ops(RingClass& ring, SqeClass& sqe);
void register_control_ops(RingClass& ring, SqeClass& sqe);
void register_net_ops(RingClass& ring, SqeClass& sqe);
void register_buffer_ops(py::module_& m, RingClass& ring, SqeClass& sqe);

}  // namespace iouring::bindings
