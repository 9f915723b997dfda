// The Python side of completions (register_completions.cpp): the Cqe type, a small C type that
// stores the kernel's fields as C values (creating one costs one allocation, no int objects),
// and the NumPy dtypes of a ring's completions.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>

#include <iouring/completion_queue.hpp>

namespace iouring::bindings {

namespace py = pybind11;

// A new iouring.Cqe from one entry of a ring's CQ (or of a copy of it): `cqe_size` is the
// ring's (16, or 32 on CQE32 rings, whose extra two u64s become Cqe.big_cqe).
py::object make_cqe(const Cqe& cqe, std::uint32_t cqe_size);

// The fields of `obj` when it is an iouring.Cqe (its big_cqe, if any, is not needed by any
// caller yet); false for anything else.
bool cqe_fields(py::handle obj, Cqe& out);

// CQE_DTYPE (16 bytes) or CQE32_DTYPE (32 bytes), by the ring's CQE size.
py::dtype cqe_dtype(std::uint32_t cqe_size);

}  // namespace iouring::bindings
