// Conversion of Python arguments to the C++ values the kernel takes. Each check names the
// argument, and all conversions run before a ring is touched, so a bad argument leaves the
// ring exactly as it was.
#pragma once

#include <pybind11/pybind11.h>

#include <cstdint>
#include <limits>
#include <string>

#include <iouring/abi.hpp>
#include <iouring/sqe_fs.hpp>

#include "errors.hpp"

namespace iouring::bindings {

inline std::string type_name(py::handle h) { return Py_TYPE(h.ptr())->tp_name; }

// An exact int, or anything with __index__ (NumPy integers); bool counts as int, as in os.*.
inline py::object as_index(py::handle h, const char* name) {
    if (PyLong_Check(h.ptr())) return py::reinterpret_borrow<py::object>(h);
    PyObject* index = PyNumber_Index(h.ptr());
    if (index == nullptr) {
        PyErr_Clear();
        raise(PyExc_TypeError, std::string(name) + " must be an int, not " + type_name(h));
    }
    return py::reinterpret_steal<py::object>(index);
}

inline std::int64_t to_i64(py::handle h, const char* name, std::int64_t lo, std::int64_t hi) {
    py::object v = as_index(h, name);
    int overflow = 0;
    long long x = PyLong_AsLongLongAndOverflow(v.ptr(), &overflow);
    if (overflow != 0 || x < lo || x > hi) {
        raise(PyExc_OverflowError, std::string(name) + " must be in " + std::to_string(lo) + ".." +
                                       std::to_string(hi) + ", got " +
                                       py::str(v).cast<std::string>());
    }
    return x;
}

inline std::uint64_t to_u64(py::handle h, const char* name) {
    py::object v = as_index(h, name);
    unsigned long long x = PyLong_AsUnsignedLongLong(v.ptr());
    if (x == static_cast<unsigned long long>(-1) && PyErr_Occurred()) {
        PyErr_Clear();
        raise(PyExc_OverflowError,
              std::string(name) + " must be in 0..2**64-1, got " + py::str(v).cast<std::string>());
    }
    return x;
}

inline std::uint32_t to_u32(py::handle h, const char* name) {
    return static_cast<std::uint32_t>(
        to_i64(h, name, 0, std::numeric_limits<std::uint32_t>::max()));
}

inline std::uint16_t to_u16(py::handle h, const char* name) {
    return static_cast<std::uint16_t>(
        to_i64(h, name, 0, std::numeric_limits<std::uint16_t>::max()));
}

inline std::int32_t to_i32(py::handle h, const char* name) {
    return static_cast<std::int32_t>(to_i64(h, name, std::numeric_limits<std::int32_t>::min(),
                                            std::numeric_limits<std::int32_t>::max()));
}

// Refuses bits outside `allowed` (ValueError), naming the argument and, in `hint`, what the
// accepted bits are. For flags with a defined set, checked before the ring is touched.
inline void check_bits(std::uint64_t value, std::uint64_t allowed, const char* name,
                       const char* hint) {
    if ((value & ~allowed) != 0) {
        raise(PyExc_ValueError, std::string(name) + ": bits " + std::to_string(value & ~allowed) +
                                    " are not accepted here" + (*hint != 0 ? " (" : "") + hint +
                                    (*hint != 0 ? ")" : ""));
    }
}

// A file descriptor: an int (negative values such as AT_FDCWD are the kernel's business) or
// an object with fileno().
inline std::int32_t to_fd(py::handle h, const char* name) {
    if (PyLong_Check(h.ptr())) return to_i32(h, name);
    if (PyObject_HasAttrString(h.ptr(), "fileno") != 0) {
        return to_i32(h.attr("fileno")(), name);
    }
    raise(PyExc_TypeError,
          std::string(name) + " must be an int or an object with fileno(), not " + type_name(h));
}

// The user_data of an operation: any u64.
inline std::uint64_t to_user_data(py::handle h, const char* name = "user_data") {
    return to_u64(h, name);
}

// The one rule for registered-file (direct descriptor) slots, used by every operation and
// batch that takes one: a slot is 0..2**31-2, and FILE_INDEX_ALLOC (2**32-1, "the kernel picks
// a free slot") is accepted only where the operation can report the slot it picked. Nothing in
// between: the kernel stores slot + 1, so 2**32-2 would silently become FILE_INDEX_ALLOC.
inline constexpr std::uint32_t kMaxFileSlot = 0x7ffffffe;
enum class SlotAlloc : bool { Refused, Allowed };

inline bool slot_ok(std::uint64_t v, SlotAlloc alloc) noexcept {
    return v <= kMaxFileSlot || (alloc == SlotAlloc::Allowed && v == kFileIndexAlloc);
}

[[noreturn]] inline void slot_error(const char* name, SlotAlloc alloc, const std::string& got) {
    if (alloc == SlotAlloc::Refused && got == std::to_string(kFileIndexAlloc)) {
        raise(PyExc_ValueError,
              std::string(name) + ": FILE_INDEX_ALLOC is not allowed here (name a slot)");
    }
    raise(PyExc_OverflowError, std::string(name) + " must be a slot in 0..2**31-2" +
                                   (alloc == SlotAlloc::Allowed ? " or FILE_INDEX_ALLOC" : "") +
                                   ", got " + got);
}

inline std::uint32_t to_file_index(py::handle h, const char* name, SlotAlloc alloc) {
    py::object v = as_index(h, name);
    int overflow = 0;
    long long x = PyLong_AsLongLongAndOverflow(v.ptr(), &overflow);
    if (overflow != 0 || x < 0 || !slot_ok(static_cast<std::uint64_t>(x), alloc)) {
        slot_error(name, alloc, py::str(v).cast<std::string>());
    }
    return static_cast<std::uint32_t>(x);
}

// Whether `h` is a file-like object standing for one descriptor (it has fileno() and is not an
// int or an array of them), for the batch arguments that take one fd or a column of them.
inline bool is_file_object(py::handle h) {
    return !PyLong_Check(h.ptr()) && PyIndex_Check(h.ptr()) == 0 &&
           PySequence_Check(h.ptr()) == 0 && PyObject_HasAttrString(h.ptr(), "fileno") != 0 &&
           PyObject_HasAttrString(h.ptr(), "__array__") == 0;
}

// A sequence argument (a str is not one), or TypeError with `what` and the type given.
inline py::sequence as_sequence(py::handle h, const std::string& what) {
    if (PyUnicode_Check(h.ptr()) || PySequence_Check(h.ptr()) == 0) {
        raise(PyExc_TypeError, what + ", not " + type_name(h));
    }
    return py::reinterpret_borrow<py::sequence>(h);
}

// A directory fd for the *at operations: like to_fd, and None (as os.open(..., dir_fd=None)
// takes it) for the working directory, iouring.AT_FDCWD.
inline std::int32_t to_dir_fd(py::handle h, const char* name = "dir_fd") {
    return h.is_none() ? kAtFdcwd : to_fd(h, name);
}

// A file offset: 0..2**64-1, with -1 meaning "the current position" (or "no offset" for pipes).
inline std::uint64_t to_offset(py::handle h, const char* name) {
    py::object v = as_index(h, name);
    int overflow = 0;
    long long x = PyLong_AsLongLongAndOverflow(v.ptr(), &overflow);
    if (overflow == 0 && x == -1) return ~std::uint64_t{0};
    if (overflow == 0 && x < -1) {
        raise(PyExc_ValueError,
              std::string(name) + " must be -1 or a non-negative int, got " + std::to_string(x));
    }
    return to_u64(v, name);
}

// A duration as the kernel's timespec: seconds as an int or float, or a datetime.timedelta.
// Negative, NaN and infinite durations are refused.
inline KernelTimespec to_timespec(py::handle h, const char* name) {
    double seconds = 0;
    if (py::isinstance(h, py::module_::import("datetime").attr("timedelta"))) {
        seconds = h.attr("total_seconds")().cast<double>();
    } else if (PyFloat_Check(h.ptr()) || PyLong_Check(h.ptr()) || PyIndex_Check(h.ptr())) {
        if (PyLong_Check(h.ptr()) || (!PyFloat_Check(h.ptr()) && PyIndex_Check(h.ptr()))) {
            std::int64_t whole = to_i64(h, name, 0, INT64_MAX / 2);
            return KernelTimespec{whole, 0};
        }
        seconds = PyFloat_AsDouble(h.ptr());
    } else {
        raise(PyExc_TypeError, std::string(name) +
                                   " must be seconds (int or float) or a datetime.timedelta, not " +
                                   type_name(h));
    }
    if (!(seconds >= 0) || seconds > 9.2e18 / 2) {
        raise(PyExc_ValueError, std::string(name) + " must be a finite, non-negative duration");
    }
    auto whole = static_cast<std::int64_t>(seconds);
    auto nanos = static_cast<std::int64_t>((seconds - static_cast<double>(whole)) * 1e9);
    if (nanos >= 1'000'000'000) nanos = 999'999'999;
    return KernelTimespec{whole, nanos};
}

}  // namespace iouring::bindings
