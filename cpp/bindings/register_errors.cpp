#include <cstring>
#include <string>

#include "errors.hpp"

namespace iouring::bindings {

void throw_errno(int negative_errno, const char* call) {
    int err = -negative_errno;
    std::string message = std::string(call) + ": " + std::strerror(err);
    if (err == EPERM && std::strcmp(call, "io_uring_setup") == 0) {
        message +=
            " (io_uring is disabled by the sysctl kernel.io_uring_disabled, or blocked by a "
            "seccomp filter such as Docker's default profile)";
    } else if (err == ENOMEM && std::strcmp(call, "register_buffers") == 0) {
        message +=
            " (kernels before 5.12 charge registered buffers to RLIMIT_MEMLOCK; raise it with "
            "ulimit -l or resource.setrlimit)";
    }
    throw ErrnoError(err, message);
}

void register_errors(py::module_& m) {
    auto& base = py::register_exception<IoUringError>(m, "IoUringError", PyExc_Exception);
    base.doc() = "Base class of the errors that iouring raises itself (not OSError).";
    py::register_exception<SubmissionQueueFull>(m, "SubmissionQueueFull", base.ptr()).doc() =
        "get_sqe() found every SQE slot taken: submit() before preparing more.";
    py::register_exception<StaleSqeError>(m, "StaleSqeError", base.ptr()).doc() =
        "The Sqe handle's slot was already flushed to the kernel (or its ring closed).";
    py::register_exception<RingForkedError>(m, "RingForkedError", base.ptr()).doc() =
        "A ring created in a parent process was used in a forked child.";
    py::register_exception<EntriesZero>(m, "EntriesZero", PyExc_ValueError).doc() =
        "IoUring(entries) was given 0 entries.";
    py::register_exception<EntriesNotPowerOfTwo>(m, "EntriesNotPowerOfTwo", PyExc_ValueError)
        .doc() = "IoUring(entries) was given a number of entries that is not a power of two.";

    py::register_exception_translator([](std::exception_ptr p) {
        try {
            if (p) std::rethrow_exception(p);
        } catch (const ErrnoError& e) {
            py::object args = py::make_tuple(e.err, e.what());
            PyErr_SetObject(PyExc_OSError, args.ptr());
        }
    });
}

}  // namespace iouring::bindings
