// What the ring keeps alive for the kernel: buffer exports of Python objects and private copies
// of small kernel arguments. A pin is a type-erased shared_ptr, so one pin can be shared by
// several operations; destroying a pin may run Python code, so the ring destroys pins only after
// its own bookkeeping is consistent.
#pragma once

#include <pybind11/pybind11.h>

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "convert.hpp"
#include "errors.hpp"
#include <iouring/abi.hpp>

namespace iouring::bindings {

using Pin = std::shared_ptr<const void>;
using PinList = std::vector<Pin>;

// A held Py_buffer: while it lives the exporter keeps the memory where it is (a bytearray
// refuses to resize, an mmap refuses to close).
class BufferExport {
public:
    BufferExport() = default;
    BufferExport(const BufferExport&) = delete;
    BufferExport& operator=(const BufferExport&) = delete;
    ~BufferExport() {
        if (view_.obj != nullptr) PyBuffer_Release(&view_);
    }

    // Exports `obj` as one contiguous block; `writable` for memory the kernel writes into.
    void acquire(py::handle obj, bool writable, const char* name) {
        if (PyObject_CheckBuffer(obj.ptr()) == 0) {
            raise(PyExc_TypeError,
                  std::string(name) + " must be a bytes-like object, not " + type_name(obj));
        }
        if (PyObject_GetBuffer(obj.ptr(), &view_, PyBUF_SIMPLE) != 0) {
            view_.obj = nullptr;
            PyErr_Clear();
            raise(PyExc_ValueError,
                  std::string(name) + " must be a C-contiguous buffer (" + type_name(obj) + ")");
        }
        if (writable && view_.readonly != 0) {
            PyBuffer_Release(&view_);
            raise(PyExc_TypeError, std::string(name) +
                                       " must be a writable bytes-like object (the kernel "
                                       "writes into it), not read-only " +
                                       type_name(obj));
        }
    }

    [[nodiscard]] void* data() const noexcept { return view_.buf; }
    [[nodiscard]] std::size_t size() const noexcept { return static_cast<std::size_t>(view_.len); }

private:
    Py_buffer view_{};
};

struct PinnedBuffer {
    Pin pin;
    void* data;
    std::size_t size;
};

inline PinnedBuffer pin_buffer(py::handle obj, bool writable, const char* name) {
    auto view = std::make_shared<BufferExport>();
    view->acquire(obj, writable, name);
    return {view, view->data(), view->size()};
}

// A length the kernel takes as u32; refusing larger buffers avoids a silent truncation.
inline std::uint32_t checked_len(std::size_t size, const char* name) {
    if (size > 0xffffffffu) {
        raise(PyExc_ValueError,
              std::string(name) + " is larger than 4 GiB - 1 bytes, the most one operation takes");
    }
    return static_cast<std::uint32_t>(size);
}

// A private NUL-terminated copy of a path (str, bytes or os.PathLike, encoded as os.fsencode).
struct PinnedPath {
    Pin pin;
    const char* c_str;
};

inline PinnedPath pin_path(py::handle obj, const char* name) {
    PyObject* encoded = nullptr;
    if (PyUnicode_FSConverter(obj.ptr(), &encoded) == 0) {
        py::error_already_set error;
        PyObject* type = error.matches(PyExc_ValueError) ? PyExc_ValueError : PyExc_TypeError;
        std::string detail = py::str(error.value());
        raise(type, std::string(name) + ": " + detail);
    }
    py::object bytes = py::reinterpret_steal<py::object>(encoded);
    auto copy = std::make_shared<std::string>(PyBytes_AS_STRING(encoded),
                                              static_cast<std::size_t>(PyBytes_GET_SIZE(encoded)));
    return {copy, copy->c_str()};
}

// A private copy of a small kernel argument (timespec, open_how, sockaddr, ...) that the
// ring keeps until the operation's final completion.
template <typename T>
struct PinnedCopy {
    Pin pin;
    T* ptr;
};

template <typename T>
PinnedCopy<T> pin_copy(const T& value) {
    auto copy = std::make_shared<T>(value);
    T* ptr = copy.get();
    return {std::move(copy), ptr};
}

// An iovec array for readv/writev: a private copy of the array plus a pin on every buffer.
struct PinnedIovecs {
    PinList pins;
    const Iovec* iovecs;
    std::uint32_t count;
};

inline constexpr std::size_t kIovMax = 1024;  // UIO_MAXIOV

inline PinnedIovecs pin_iovecs(py::handle seq, bool writable, const char* name) {
    if (PyUnicode_Check(seq.ptr()) || PyBytes_Check(seq.ptr()) || PyByteArray_Check(seq.ptr()) ||
        PySequence_Check(seq.ptr()) == 0) {
        raise(PyExc_TypeError, std::string(name) +
                                   " must be a sequence of bytes-like objects, not " +
                                   type_name(seq));
    }
    py::sequence items = py::reinterpret_borrow<py::sequence>(seq);
    std::size_t n = py::len(items);
    if (n > kIovMax) {
        raise(PyExc_ValueError, std::string(name) + " has " + std::to_string(n) +
                                    " buffers; the kernel takes at most 1024 (IOV_MAX)");
    }
    auto array = std::make_shared<std::vector<Iovec>>(n);
    PinnedIovecs out{{}, array->data(), static_cast<std::uint32_t>(n)};
    out.pins.reserve(n + 1);
    for (std::size_t i = 0; i < n; ++i) {
        PinnedBuffer b = pin_buffer(items[i], writable, name);
        (*array)[i] = Iovec{reinterpret_cast<std::uintptr_t>(b.data), b.size};
        out.pins.push_back(std::move(b.pin));
    }
    out.pins.push_back(std::move(array));
    return out;
}

}  // namespace iouring::bindings
