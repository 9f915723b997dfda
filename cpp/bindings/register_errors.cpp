#include <sys/utsname.h>

#include <cstdio>
#include <cstring>
#include <string>

#include "errors.hpp"

namespace iouring::bindings {

namespace {

// The Linux release that added each register operation a call name stands for: a kernel older
// than that refuses it with EINVAL, which the message then explains.
struct RegisterSince {
    const char* call;
    int major, minor;
};
constexpr RegisterSince kRegisterSince[] = {
    {"register_eventfd_async", 5, 6},
    {"register_personality", 5, 6},
    {"register_restrictions", 5, 10},
    {"register_buffers_sparse", 5, 13},
    {"register_buffers_update", 5, 13},
    {"register_iowq_aff", 5, 14},
    {"register_iowq_max_workers", 5, 15},
    {"register_ring_fd", 5, 18},
    {"register_buffer_ring", 5, 19},
    {"register_sync_cancel", 6, 0},
    {"register_file_alloc_range", 6, 0},
    {"buffer_ring_head", 6, 8},
    {"register_napi", 6, 9},
    {"unregister_napi", 6, 9},
    {"register_clock", 6, 12},
    {"clone_buffers", 6, 12},
};

// " (register_napi needs Linux 6.9 or newer; this kernel is 6.1.0-57-amd64)" when the running
// kernel is older than the release that added `call`, else "".
std::string too_old_note(const char* call) {
    for (const auto& entry : kRegisterSince) {
        if (std::strcmp(entry.call, call) != 0) continue;
        utsname u{};
        int major = 0, minor = 0;
        if (uname(&u) != 0 || std::sscanf(u.release, "%d.%d", &major, &minor) != 2) return {};
        if (major > entry.major || (major == entry.major && minor >= entry.minor)) return {};
        return " (" + std::string(call) + " needs Linux " + std::to_string(entry.major) + "." +
               std::to_string(entry.minor) + " or newer; this kernel is " + u.release + ")";
    }
    return {};
}

}  // namespace

void throw_errno(int negative_errno, const char* call) {
    int err = -negative_errno;
    std::string message = std::string(call) + ": " + std::strerror(err);
    if (err == EINVAL) message += too_old_note(call);
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
