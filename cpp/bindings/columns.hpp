// The column form of the argument converters (convert.hpp has the scalar form): a batch
// argument is one value for every operation or a 1-D integer array with one per operation,
// and batch_size() is the one broadcasting rule (NumPy's) every batch path uses, from C++ and
// from Python (iouring._core.batch_size, which iouring.aio hands its columns to).
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <optional>
#include <string>
#include <vector>

#include <iouring/abi.hpp>

#include "convert.hpp"

namespace iouring::bindings {

inline std::string out_of_range(const char* name, long long lo, unsigned long long hi) {
    return std::string(name) + " values must be in " + std::to_string(lo) + ".." +
           std::to_string(hi);
}

inline py::module_& numpy_module() {
    static py::module_* np = new py::module_(py::module_::import("numpy"));  // never freed
    return *np;
}

// Storage private to one batch call: `Inline` elements live in the object (on the caller's
// stack), more on the heap. Nothing is shared between calls, so a call that re-enters a batch
// method on the same thread (a signal handler run while a batch waits for SQ space, or Python
// code run by a conversion) cannot overwrite the snapshot of the call it interrupted, and the
// common batch (up to `Inline` operations) allocates nothing.
template <typename T, std::size_t Inline = 64>
class Scratch {
public:
    Scratch() = default;
    Scratch(const Scratch&) = delete;
    Scratch& operator=(const Scratch&) = delete;
    // n elements (value-initialized only when they come from the heap).
    T* get(std::size_t n) {
        size_ = n;
        if (n <= Inline) return inline_;
        heap_.resize(n);
        return heap_.data();
    }
    [[nodiscard]] std::size_t size() const noexcept { return size_; }

private:
    T inline_[Inline];
    std::vector<T> heap_;
    std::size_t size_ = 0;
};

// One integer argument of a batch: a single value for every operation, or a 1-D integer array
// with one value per operation (a length-1 array applies to every operation). Negative values
// are kept as two's complement, so -1 becomes the all-ones u64 ("no offset").
//
// Construction converts (which may run Python code: __index__, __array__); take(n) then checks
// the values of the first n operations. Checked values are copied into a private snapshot as
// they are checked, and the SQEs are prepared from that copy, so neither Python code run later
// in the call (another argument's conversion) nor another thread can slip in a value that was
// not checked. An array whose dtype holds only acceptable values (uint64 user_data, int32 fds)
// needs no check and is read in place, with no copy. Only the first n values are looked at: a
// batch prepares at most what fits in the SQ, whatever the length of its arrays.
class Column {
public:
    // `check` (optional) validates each value further (it raises); values it checks are
    // always snapshotted.
    using Check = void (*)(std::uint64_t);
    Column(py::handle h, const char* name, long long lo, unsigned long long hi,
           Check check = nullptr)
        : name_(name), lo_(lo), hi_(hi), check_(check) {
        if (is_single_value(h)) {
            single_ = convert_single(h, lo, hi);
            if (check_ != nullptr) check_(single_);
            return;
        }
        py::array a;
        if (py::isinstance<py::array>(h)) {
            a = py::reinterpret_borrow<py::array>(h);
        } else {
            bool array_like = PySequence_Check(h.ptr()) != 0 ||
                              PyObject_HasAttrString(h.ptr(), "__array__") != 0 ||
                              PyObject_HasAttrString(h.ptr(), "__array_interface__") != 0;
            if (!array_like || PyUnicode_Check(h.ptr()) || PyBytes_Check(h.ptr()) ||
                PyByteArray_Check(h.ptr())) {
                raise(PyExc_TypeError, std::string(name) +
                                           " must be an int or a one-dimensional integer array, "
                                           "not " +
                                           type_name(h));
            }
            a = numpy_module().attr("asarray")(h);
        }
        if (a.ndim() != 1) {
            raise(PyExc_ValueError,
                  std::string(name) + " must be an int or a one-dimensional array");
        }
        py::dtype dt = a.dtype();
        char kind = dt.kind();
        if (kind != 'i' && kind != 'u' && kind != 'b') {
            raise(PyExc_TypeError, std::string(name) + " must hold integers, not " +
                                       py::str(dt).cast<std::string>());
        }
        if (dt.byteorder() == '>') {  // not native on the little-endian machines we run on
            a = numpy_module().attr("asarray")(a, kind == 'u' ? "<u8" : "<i8");
            dt = a.dtype();
        }
        owner_ = a;
        data_ = static_cast<const char*>(a.data());
        stride_ = a.strides(0);
        size_ = static_cast<std::size_t>(a.shape(0));
        signed_ = kind == 'i';
        itemsize_ = static_cast<int>(dt.itemsize());
        if (itemsize_ != 1 && itemsize_ != 2 && itemsize_ != 4 && itemsize_ != 8) {
            raise(PyExc_TypeError, std::string(name) + " must hold integers of 1, 2, 4 or 8 bytes");
        }
    }
    // Not movable: once take() copied, data_ may point into snapshot_. The helpers below return
    // prvalues, which C++17 constructs in place.
    Column(Column&&) = delete;
    Column(const Column&) = delete;
    Column& operator=(const Column&) = delete;
    Column& operator=(Column&&) = delete;
    ~Column() = default;

    // Checks the values of operations 0..n-1 (an array's first n elements, or its one element
    // when it broadcasts) and snapshots them; `copy` snapshots even values that need no range
    // check, for a caller that checks them further (values()). Call once, before operator[].
    void take(std::size_t n, bool copy = false) {
        if (data_ == nullptr) return;  // a single value: converted and checked already
        std::size_t count = size_ == 1 ? 1 : std::min(size_, n);
        bool check = !type_fits(lo_, hi_);
        if (!check && !copy && check_ == nullptr) return;  // read in place: any value will do
        std::uint64_t* values = snapshot_.get(count);
        for (std::size_t i = 0; i < count; ++i) {
            std::uint64_t v = load(i);
            if (check) {
                bool ok = signed_ ? (static_cast<std::int64_t>(v) >= lo_ &&
                                     (static_cast<std::int64_t>(v) < 0 || v <= hi_))
                                  : v <= hi_;
                if (!ok) {
                    raise(PyExc_OverflowError,
                          out_of_range(name_, lo_, hi_) + " (operation " + std::to_string(i) +
                              " has " +
                              (signed_ ? std::to_string(static_cast<std::int64_t>(v))
                                       : std::to_string(v)) +
                              ")");
                }
            }
            if (check_ != nullptr) check_(v);
            values[i] = v;
        }
        // From now on the column reads its snapshot, as an array of u64 (the fast path of load).
        data_ = reinterpret_cast<const char*>(values);
        stride_ = sizeof(std::uint64_t);
        itemsize_ = sizeof(std::uint64_t);
    }

    // 0 for a single value (broadcast), else the array's length.
    [[nodiscard]] std::size_t length() const noexcept { return data_ == nullptr ? 0 : size_; }
    [[nodiscard]] bool is_single() const noexcept { return data_ == nullptr; }
    [[nodiscard]] const char* name() const noexcept { return name_; }

    // The value of operation i, as the bits of a u64 (the caller casts to the field's type).
    [[nodiscard]] std::uint64_t operator[](std::size_t i) const noexcept {
        if (data_ == nullptr) return single_;
        return load(size_ == 1 ? 0 : i);
    }
    template <typename T>
    [[nodiscard]] T at(std::size_t i) const noexcept {
        return static_cast<T>((*this)[i]);
    }

private:
    static bool is_single_value(py::handle h) {
        return PyLong_Check(h.ptr()) ||
               (!py::isinstance<py::array>(h) && PyIndex_Check(h.ptr()) != 0);
    }

    std::uint64_t convert_single(py::handle h, long long lo, unsigned long long hi) const {
        py::object v = as_index(h, name_);
        int overflow = 0;
        long long x = PyLong_AsLongLongAndOverflow(v.ptr(), &overflow);
        if (overflow == 0 && x < 0) {
            if (x < lo) raise(PyExc_OverflowError, out_of_range(name_, lo, hi));
            return static_cast<std::uint64_t>(x);
        }
        unsigned long long u = PyLong_AsUnsignedLongLong(v.ptr());
        if ((u == static_cast<unsigned long long>(-1) && PyErr_Occurred() != nullptr) || u > hi) {
            PyErr_Clear();
            raise(PyExc_OverflowError, out_of_range(name_, lo, hi));
        }
        return u;
    }

    // Whether every value of the array's dtype lies in [lo, hi], so no element needs a check
    // (uint64 user_data, int32 fds, ...).
    [[nodiscard]] bool type_fits(long long lo, unsigned long long hi) const noexcept {
        int bits = 8 * itemsize_;
        if (signed_) {
            long long min = bits == 64 ? INT64_MIN : -(1ll << (bits - 1));
            unsigned long long max = (1ull << (bits - 1)) - 1;
            return lo <= min && max <= hi;
        }
        unsigned long long max = bits == 64 ? ~0ull : (1ull << bits) - 1;
        return lo <= 0 && max <= hi;
    }

    [[nodiscard]] std::uint64_t load(std::size_t i) const noexcept {
        const char* p = data_ + static_cast<py::ssize_t>(i) * stride_;
        if (itemsize_ == 8) {  // the common case first: int64/uint64 arrays
            std::uint64_t v;
            std::memcpy(&v, p, 8);
            return v;
        }
        switch (itemsize_) {
            case 1: {
                std::uint8_t v;
                std::memcpy(&v, p, 1);
                return signed_ ? static_cast<std::uint64_t>(static_cast<std::int8_t>(v)) : v;
            }
            case 2: {
                std::uint16_t v;
                std::memcpy(&v, p, 2);
                return signed_ ? static_cast<std::uint64_t>(static_cast<std::int16_t>(v)) : v;
            }
            case 4: {
                std::uint32_t v;
                std::memcpy(&v, p, 4);
                return signed_ ? static_cast<std::uint64_t>(static_cast<std::int32_t>(v)) : v;
            }
            default: {
                std::uint64_t v;
                std::memcpy(&v, p, 8);
                return v;
            }
        }
    }

    const char* name_;
    long long lo_;
    unsigned long long hi_;
    Check check_;
    std::uint64_t single_ = 0;
    py::object owner_;  // keeps the array (or its converted copy) alive
    const char* data_ = nullptr;
    py::ssize_t stride_ = 0;
    std::size_t size_ = 0;
    int itemsize_ = 8;
    bool signed_ = false;
    Scratch<std::uint64_t> snapshot_;  // the checked values, once take() copied them
};

inline Column user_data_column(py::handle h) { return Column(h, "user_data", 0, ~0ull); }
// One fd for every operation (an int or an object with fileno(), as the one-call methods
// take), or an array of them.
inline Column fd_column(py::handle h, const char* name = "fd") {
    if (is_file_object(h)) return Column(py::int_(to_fd(h, name)), name, INT32_MIN, INT32_MAX);
    return Column(h, name, INT32_MIN, INT32_MAX);
}

// Directory fds of the *at batches: fd_column, with None for the working directory.
inline Column dir_fd_column(py::handle h) {
    if (h.is_none()) return Column(py::int_(kAtFdcwd), "dir_fd", INT32_MIN, INT32_MAX);
    return fd_column(h, "dir_fd");
}

// Registered-file slots, by the rule of to_file_index (convert.hpp).
inline void check_slot(std::uint64_t v, const char* name, SlotAlloc alloc) {
    if (!slot_ok(v, alloc)) slot_error(name, alloc, std::to_string(v));
}
inline void check_file_index(std::uint64_t v) { check_slot(v, "file_index", SlotAlloc::Refused); }
inline void check_file_index_alloc(std::uint64_t v) {
    check_slot(v, "file_index", SlotAlloc::Allowed);
}
inline Column file_index_column(py::handle h, SlotAlloc alloc) {
    return Column(h, "file_index", 0, kFileIndexAlloc,
                  alloc == SlotAlloc::Allowed ? &check_file_index_alloc : &check_file_index);
}
inline Column offset_column(py::handle h, const char* name) { return Column(h, name, -1, ~0ull); }
inline Column u32_column(py::handle h, const char* name) {
    return Column(h, name, 0, 0xffffffffull);
}

// Checks the values of the first n operations of every column (see Column::take).
template <typename... Columns>
inline void take_all(std::size_t n, Columns&... columns) {
    (columns.take(n), ...);
}
inline void take_optional(std::size_t n, std::optional<Column>& c) {
    if (c) c->take(n);
}

// The length of one argument: a single value (broadcast), or an array of `length` elements.
struct Extent {
    const char* name;
    std::size_t length;
    bool array;
};
inline Extent extent(const Column& c) { return {c.name(), c.length(), !c.is_single()}; }
inline Extent extent(const std::optional<Column>& c) {
    return c ? extent(*c) : Extent{"", 0, false};
}

// The number of operations, with NumPy's broadcasting rule: the common length of the array
// arguments (length-1 arrays broadcast, an empty array means no operation), or `count` when
// every argument is a single value or a length-1 array.
inline std::size_t batch_size(const Extent* begin, const Extent* end, py::handle count) {
    bool sized = false;
    bool any_array = false;
    std::size_t n = 0;
    const char* first = nullptr;
    for (const Extent* it = begin; it != end; ++it) {
        const Extent& e = *it;
        if (!e.array) continue;
        any_array = true;
        if (e.length == 1) continue;
        if (!sized) {
            sized = true;
            n = e.length;
            first = e.name;
        } else if (e.length != n) {
            raise(PyExc_ValueError, std::string("array lengths differ: ") + first + " has " +
                                        std::to_string(n) + ", " + e.name + " has " +
                                        std::to_string(e.length));
        }
    }
    if (!count.is_none()) {
        auto c = static_cast<std::size_t>(to_i64(count, "count", 0, INT64_MAX));
        if (sized && c != n) {
            raise(PyExc_ValueError, "count (" + std::to_string(c) +
                                        ") differs from the arrays' length (" + std::to_string(n) +
                                        ")");
        }
        return c;
    }
    if (!any_array)
        raise(PyExc_ValueError, "count is needed when every argument is a single value");
    return sized ? n : 1;
}
inline std::size_t batch_size(std::initializer_list<Extent> extents, py::handle count) {
    return batch_size(extents.begin(), extents.end(), count);
}

// The extent of one batch argument as Python passed it, without converting its values: None
// (an omitted optional argument) and single values broadcast; anything else is an array.
inline Extent python_extent(py::handle h, const char* name) {
    if (h.is_none() || PyLong_Check(h.ptr()) ||
        (!py::isinstance<py::array>(h) && PyIndex_Check(h.ptr()) != 0) || is_file_object(h)) {
        return {name, 0, false};
    }
    if (py::isinstance<py::array>(h)) {
        auto a = py::reinterpret_borrow<py::array>(h);
        if (a.ndim() != 1) {
            raise(PyExc_ValueError,
                  std::string(name) + " must be an int or a one-dimensional array");
        }
        return {name, static_cast<std::size_t>(a.shape(0)), true};
    }
    Py_ssize_t n = PyObject_Length(h.ptr());
    if (n < 0) {
        PyErr_Clear();
        raise(PyExc_TypeError, std::string(name) +
                                   " must be an int or a one-dimensional integer array, not " +
                                   type_name(h));
    }
    return {name, static_cast<std::size_t>(n), true};
}

}  // namespace iouring::bindings
