// Batch preparation: one Python call prepares N SQEs of one operation from NumPy arrays (or
// single values, broadcast), in C++, with no Python object and no allocation per operation.
// Every argument is validated for all N operations before the first SQE is written, so an
// error leaves the ring untouched. A batch prepares as many operations as the SQ has room for
// and returns that count.
#include <pybind11/numpy.h>

#include <string>
#include <vector>

#include <iouring/sqe.hpp>

#include "convert.hpp"
#include "module.hpp"
#include "pins.hpp"

namespace iouring::bindings {

namespace {

// One argument of a batch: a single value for every operation, or one value per operation.
template <typename T>
struct Column {
    std::vector<T> values;  // empty: every operation takes `single`
    T single{};

    [[nodiscard]] T operator[](std::size_t i) const {
        if (values.empty()) return single;
        return values.size() == 1 ? values[0] : values[i];
    }
    // 0 for a single value (broadcast), else the array's length.
    [[nodiscard]] std::size_t length() const { return values.size(); }
};

bool is_single_value(py::handle h) {
    return PyLong_Check(h.ptr()) ||
           (!py::isinstance<py::array>(h) && PyIndex_Check(h.ptr()) != 0);
}

std::string out_of_range(const char* name, long long lo, unsigned long long hi) {
    return std::string(name) + " values must be in " + std::to_string(lo) + ".." +
           std::to_string(hi);
}

// Converts an int or a 1-D integer array whose values lie in [lo, hi]. Negative values are
// stored as T's two's complement (so -1 becomes the "no offset" u64 for offsets).
template <typename T>
Column<T> column(py::handle h, const char* name, long long lo, unsigned long long hi) {
    Column<T> c;
    if (is_single_value(h)) {
        py::object v = as_index(h, name);
        int overflow = 0;
        long long x = PyLong_AsLongLongAndOverflow(v.ptr(), &overflow);
        if (overflow == 0 && x < 0) {
            if (x < lo) raise(PyExc_OverflowError, out_of_range(name, lo, hi));
            c.single = static_cast<T>(x);
            return c;
        }
        unsigned long long u = PyLong_AsUnsignedLongLong(v.ptr());
        if ((u == static_cast<unsigned long long>(-1) && PyErr_Occurred() != nullptr) || u > hi) {
            PyErr_Clear();
            raise(PyExc_OverflowError, out_of_range(name, lo, hi));
        }
        c.single = static_cast<T>(u);
        return c;
    }
    py::module_ np = py::module_::import("numpy");
    py::array a = np.attr("asarray")(h);
    if (a.ndim() != 1) {
        raise(PyExc_ValueError, std::string(name) + " must be an int or a one-dimensional array");
    }
    char kind = a.dtype().kind();
    c.values.reserve(static_cast<std::size_t>(a.size()));
    if (kind == 'u') {
        auto u = py::array_t<std::uint64_t, py::array::c_style | py::array::forcecast>::ensure(a);
        const std::uint64_t* data = u.data();
        for (py::ssize_t i = 0; i < u.size(); ++i) {
            if (data[i] > hi) raise(PyExc_OverflowError, out_of_range(name, lo, hi));
            c.values.push_back(static_cast<T>(data[i]));
        }
    } else if (kind == 'i' || kind == 'b') {
        auto s = py::array_t<std::int64_t, py::array::c_style | py::array::forcecast>::ensure(a);
        const std::int64_t* data = s.data();
        for (py::ssize_t i = 0; i < s.size(); ++i) {
            std::int64_t v = data[i];
            if (v < lo || (v > 0 && static_cast<unsigned long long>(v) > hi)) {
                raise(PyExc_OverflowError, out_of_range(name, lo, hi));
            }
            c.values.push_back(static_cast<T>(v));
        }
    } else {
        raise(PyExc_TypeError, std::string(name) + " must hold integers, not " +
                                   py::str(a.dtype()).cast<std::string>());
    }
    return c;
}

Column<std::uint64_t> user_data_column(py::handle h) {
    return column<std::uint64_t>(h, "user_data", 0, ~0ull);
}
Column<std::int32_t> fd_column(py::handle h) {
    return column<std::int32_t>(h, "fd", INT32_MIN, INT32_MAX);
}
Column<std::uint64_t> offset_column(py::handle h, const char* name) {
    return column<std::uint64_t>(h, name, -1, ~0ull);
}
Column<std::uint32_t> length_column(py::handle h) {
    return column<std::uint32_t>(h, "length", 0, 0xffffffffull);
}

// The number of operations: the common length of the array arguments (length-1 arrays
// broadcast), or `count` when every argument is a single value.
std::size_t batch_size(std::initializer_list<std::pair<const char*, std::size_t>> lengths,
                       py::handle count) {
    std::size_t n = 0;
    const char* first = nullptr;
    for (auto [name, length] : lengths) {
        if (length <= 1) continue;
        if (n == 0) {
            n = length;
            first = name;
        } else if (length != n) {
            raise(PyExc_ValueError, std::string("array lengths differ: ") + first + " has " +
                                        std::to_string(n) + ", " + name + " has " +
                                        std::to_string(length));
        }
    }
    if (n == 0) {
        for (auto [name, length] : lengths) {
            if (length == 1) n = 1;
        }
    }
    if (!count.is_none()) {
        std::size_t c = static_cast<std::size_t>(to_i64(count, "count", 0, INT64_MAX));
        if (n > 1 && c != n) {
            raise(PyExc_ValueError, "count (" + std::to_string(c) +
                                        ") differs from the arrays' length (" +
                                        std::to_string(n) + ")");
        }
        return c;
    }
    if (n == 0) raise(PyExc_ValueError, "count is needed when every argument is a single value");
    return n;
}

// A user_data given as one int is a start value: operation i gets start + i.
std::uint64_t user_data_at(const Column<std::uint64_t>& ud, std::size_t i) {
    return ud.length() == 0 ? ud.single + i : ud[i];
}

// Reserves up to n slots; returns the first position and the count through `count`.
std::uint64_t reserve(Ring& ring, std::size_t n, std::uint32_t& count) {
    auto max = static_cast<std::uint32_t>(std::min<std::size_t>(n, 0xffffffffu));
    return ring.reserve_slots(max, count);
}

// Where each operation's bytes sit in the buffer: buf_offset[i], or packed one after another.
struct Placement {
    Column<std::uint64_t> buf_offset;
    bool packed;
};

Placement placement(py::handle buf_offset) {
    if (buf_offset.is_none()) return {{}, true};
    return {column<std::uint64_t>(buf_offset, "buf_offset", 0, ~0ull), false};
}

// Checks every operation's [start, start + length) against `size`; fills `starts`.
void check_ranges(const Placement& place, const Column<std::uint32_t>& length, std::size_t n,
                  std::uint64_t size, const char* what, std::vector<std::uint64_t>& starts) {
    starts.resize(n);
    std::uint64_t next = 0;
    for (std::size_t i = 0; i < n; ++i) {
        std::uint64_t start = place.packed ? next : place.buf_offset[i];
        std::uint64_t end = start + length[i];
        if (end < start || end > size) {
            raise(PyExc_ValueError, "operation " + std::to_string(i) + ": bytes [" +
                                        std::to_string(start) + ", " + std::to_string(end) +
                                        ") lie outside " + what + " of " +
                                        std::to_string(size) + " bytes");
        }
        starts[i] = start;
        next = end;
    }
}

template <bool Write>
std::uint32_t rw_batch(Ring& ring, py::handle user_data, py::handle fd, py::handle buffer,
                       py::handle offset, py::handle length, py::handle buf_offset,
                       py::handle count) {
    auto ud = user_data_column(user_data);
    auto fds = fd_column(fd);
    auto offsets = offset_column(offset, "offset");
    auto lengths = length_column(length);
    Placement place = placement(buf_offset);
    std::size_t n = batch_size({{"user_data", ud.length()}, {"fd", fds.length()},
                                {"offset", offsets.length()}, {"length", lengths.length()},
                                {"buf_offset", place.buf_offset.length()}},
                               count);
    PinnedBuffer buf = pin_buffer(buffer, !Write, "buffer");
    std::vector<std::uint64_t> starts;
    check_ranges(place, lengths, n, buf.size, "buffer", starts);
    auto* base = static_cast<std::byte*>(buf.data);
    std::uint32_t prepared = 0;
    std::uint64_t first = reserve(ring, n, prepared);
    SubmissionQueue& sq = ring.core().sq();
    for (std::uint32_t i = 0; i < prepared; ++i) {
        Sqe& sqe = sq.at(static_cast<std::uint32_t>(first + i));
        if constexpr (Write) {
            prep_write(sqe, user_data_at(ud, i), fds[i], base + starts[i], lengths[i], offsets[i]);
        } else {
            prep_read(sqe, user_data_at(ud, i), fds[i], base + starts[i], lengths[i], offsets[i]);
        }
        ring.add_slot_pin(first + i, buf.pin);
    }
    return prepared;
}

template <bool Write>
std::uint32_t rw_fixed_batch(Ring& ring, py::handle user_data, py::handle fd,
                             py::handle buffer_index, py::handle offset, py::handle length,
                             py::handle buf_offset, py::handle count) {
    auto ud = user_data_column(user_data);
    auto fds = fd_column(fd);
    auto index = column<std::uint16_t>(buffer_index, "buffer_index", 0, 0xffff);
    auto offsets = offset_column(offset, "offset");
    auto lengths = length_column(length);
    Placement place = placement(buf_offset);
    std::size_t n = batch_size({{"user_data", ud.length()}, {"fd", fds.length()},
                                {"buffer_index", index.length()}, {"offset", offsets.length()},
                                {"length", lengths.length()},
                                {"buf_offset", place.buf_offset.length()}},
                               count);
    ring.check_usable();
    const RegisteredBuffers* registered = ring.registered_buffers();
    if (registered == nullptr) {
        raise(PyExc_ValueError, "buffer_index: no buffers are registered with this ring");
    }
    std::vector<std::uint64_t> starts(n);
    std::uint64_t next = 0;
    for (std::size_t i = 0; i < n; ++i) {
        if (index[i] >= registered->iovecs.size()) {
            raise(PyExc_ValueError, "operation " + std::to_string(i) + ": buffer_index " +
                                        std::to_string(index[i]) + " is out of range (" +
                                        std::to_string(registered->iovecs.size()) +
                                        " buffers registered)");
        }
        const Iovec& reg = registered->iovecs[index[i]];
        std::uint64_t start = place.packed ? next : place.buf_offset[i];
        std::uint64_t end = start + lengths[i];
        if (end < start || end > reg.len) {
            raise(PyExc_ValueError, "operation " + std::to_string(i) + ": bytes [" +
                                        std::to_string(start) + ", " + std::to_string(end) +
                                        ") lie outside registered buffer " +
                                        std::to_string(index[i]) + " of " +
                                        std::to_string(reg.len) + " bytes");
        }
        starts[i] = reg.base + start;
        next = end;
    }
    std::uint32_t prepared = 0;
    std::uint64_t first = reserve(ring, n, prepared);
    SubmissionQueue& sq = ring.core().sq();
    for (std::uint32_t i = 0; i < prepared; ++i) {
        Sqe& sqe = sq.at(static_cast<std::uint32_t>(first + i));
        auto* address = reinterpret_cast<std::byte*>(static_cast<std::uintptr_t>(starts[i]));
        if constexpr (Write) {
            prep_write_fixed(sqe, user_data_at(ud, i), fds[i], address, lengths[i], offsets[i],
                             index[i]);
        } else {
            prep_read_fixed(sqe, user_data_at(ud, i), fds[i], address, lengths[i], offsets[i],
                            index[i]);
        }
    }
    return prepared;
}

std::uint32_t nop_batch(Ring& ring, py::handle user_data, py::handle count) {
    auto ud = user_data_column(user_data);
    std::size_t n = batch_size({{"user_data", ud.length()}}, count);
    std::uint32_t prepared = 0;
    std::uint64_t first = reserve(ring, n, prepared);
    SubmissionQueue& sq = ring.core().sq();
    for (std::uint32_t i = 0; i < prepared; ++i) {
        prep_nop(sq.at(static_cast<std::uint32_t>(first + i)), user_data_at(ud, i));
    }
    return prepared;
}

std::uint32_t fsync_batch(Ring& ring, py::handle user_data, py::handle fd, py::handle flags,
                          py::handle count) {
    auto ud = user_data_column(user_data);
    auto fds = fd_column(fd);
    std::uint32_t fsync_flags = to_u32(flags, "flags");
    if ((fsync_flags & ~kFsyncDatasync) != 0) {
        raise(PyExc_ValueError, "flags: only FsyncFlags.DATASYNC is defined");
    }
    std::size_t n = batch_size({{"user_data", ud.length()}, {"fd", fds.length()}}, count);
    std::uint32_t prepared = 0;
    std::uint64_t first = reserve(ring, n, prepared);
    SubmissionQueue& sq = ring.core().sq();
    for (std::uint32_t i = 0; i < prepared; ++i) {
        prep_fsync(sq.at(static_cast<std::uint32_t>(first + i)), user_data_at(ud, i), fds[i],
                   fsync_flags);
    }
    return prepared;
}

std::uint32_t close_batch(Ring& ring, py::handle user_data, py::handle fd, py::handle count) {
    auto ud = user_data_column(user_data);
    auto fds = fd_column(fd);
    std::size_t n = batch_size({{"user_data", ud.length()}, {"fd", fds.length()}}, count);
    std::uint32_t prepared = 0;
    std::uint64_t first = reserve(ring, n, prepared);
    SubmissionQueue& sq = ring.core().sq();
    for (std::uint32_t i = 0; i < prepared; ++i) {
        prep_close(sq.at(static_cast<std::uint32_t>(first + i)), user_data_at(ud, i), fds[i]);
    }
    return prepared;
}

constexpr const char* kBatchNote =
    "\n\nuser_data is an array, or an int start (operation i gets start + i). Other array "
    "arguments broadcast (length 1 or a single int applies to all). Prepares as many "
    "operations as the SQ has room for and returns that count; raises SubmissionQueueFull "
    "when there is no room at all. Every operation is validated before the first is "
    "prepared.";

std::string doc(const char* text) { return std::string(text) + kBatchNote; }

}  // namespace

void register_batch(RingClass& ring) {
    static const std::string nop_doc = doc("Prepares N no-ops.");
    static const std::string read_doc = doc(
        "Prepares N reads into one writable buffer: operation i reads length[i] bytes from "
        "fd[i] at offset[i] (-1: current position) into buffer[buf_offset[i]:][:length[i]]; "
        "without buf_offset the ranges follow each other from 0. The buffer is pinned once "
        "for the batch and released when the last of its operations completes.");
    static const std::string write_doc = doc(
        "Prepares N writes from one buffer: operation i writes "
        "buffer[buf_offset[i]:][:length[i]] to fd[i] at offset[i].");
    static const std::string read_fixed_doc = doc(
        "Prepares N reads into registered buffers: operation i reads length[i] bytes into "
        "registered buffer buffer_index[i] at buf_offset[i] (packed from 0 when omitted).");
    static const std::string write_fixed_doc =
        doc("Prepares N writes from registered buffers (see read_fixed_batch).");
    static const std::string fsync_doc = doc("Prepares N fsyncs.");
    static const std::string close_doc = doc("Prepares N closes.");

    ring.def("nop_batch", &nop_batch, py::arg("user_data"), py::kw_only(),
             py::arg("count") = py::none(), nop_doc.c_str())
        .def("read_batch", &rw_batch<false>, py::arg("user_data"), py::arg("fd"),
             py::arg("buffer"), py::arg("offset"), py::arg("length"),
             py::arg("buf_offset") = py::none(), py::kw_only(), py::arg("count") = py::none(),
             read_doc.c_str())
        .def("write_batch", &rw_batch<true>, py::arg("user_data"), py::arg("fd"),
             py::arg("buffer"), py::arg("offset"), py::arg("length"),
             py::arg("buf_offset") = py::none(), py::kw_only(), py::arg("count") = py::none(),
             write_doc.c_str())
        .def("read_fixed_batch", &rw_fixed_batch<false>, py::arg("user_data"), py::arg("fd"),
             py::arg("buffer_index"), py::arg("offset"), py::arg("length"),
             py::arg("buf_offset") = py::none(), py::kw_only(), py::arg("count") = py::none(),
             read_fixed_doc.c_str())
        .def("write_fixed_batch", &rw_fixed_batch<true>, py::arg("user_data"), py::arg("fd"),
             py::arg("buffer_index"), py::arg("offset"), py::arg("length"),
             py::arg("buf_offset") = py::none(), py::kw_only(), py::arg("count") = py::none(),
             write_fixed_doc.c_str())
        .def("fsync_batch", &fsync_batch, py::arg("user_data"), py::arg("fd"),
             py::arg("flags") = 0, py::kw_only(), py::arg("count") = py::none(),
             fsync_doc.c_str())
        .def("close_batch", &close_batch, py::arg("user_data"), py::arg("fd"), py::kw_only(),
             py::arg("count") = py::none(), close_doc.c_str());
}

}  // namespace iouring::bindings
