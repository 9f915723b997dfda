// Exceptions raised by the bindings. Python-visible classes are created in register_errors.cpp;
// C++ code throws the types below and pybind11 translates them.
#pragma once

#include <pybind11/pybind11.h>

#include <stdexcept>
#include <string>

namespace iouring::bindings {

namespace py = pybind11;

// Base of our own exception hierarchy (iouring.IoUringError).
struct IoUringError : std::runtime_error {
    using std::runtime_error::runtime_error;
};
struct SubmissionQueueFull : IoUringError {
    using IoUringError::IoUringError;
};
struct StaleSqeError : IoUringError {
    using IoUringError::IoUringError;
};
struct RingForkedError : IoUringError {
    using IoUringError::IoUringError;
};
struct EntriesZero : std::invalid_argument {
    using std::invalid_argument::invalid_argument;
};
struct EntriesNotPowerOfTwo : std::invalid_argument {
    using std::invalid_argument::invalid_argument;
};

// A failed system call: becomes OSError(errno, message), which Python maps to the matching
// subclass (FileNotFoundError, BlockingIOError, ...).
struct ErrnoError : std::runtime_error {
    ErrnoError(int error, const std::string& message) : std::runtime_error(message), err(error) {}
    int err;
};

// Throws ErrnoError for a -errno result of `call`; adds a hint for the errnos whose usual cause
// is not obvious from strerror alone.
[[noreturn]] void throw_errno(int negative_errno, const char* call);

// Raises a Python exception of `type` (TypeError, OverflowError, ...) with `message`.
[[noreturn]] inline void raise(PyObject* type, const std::string& message) {
    PyErr_SetString(type, message.c_str());
    throw py::error_already_set();
}

void register_errors(py::module_& m);

}  // namespace iouring::bindings
