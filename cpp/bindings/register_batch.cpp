// Batch preparation: one Python call prepares N SQEs of one operation from NumPy arrays (or
// single values, broadcast), in C++, with no Python object and no allocation per operation.
// Every argument is validated for all N operations before the first SQE is written, so an
// error leaves the ring untouched. A batch prepares as many operations as the SQ has room for
// and returns that count.
//
// Cost model: a call converts each argument once, checks the values of the operations that can
// fit in the SQ (never more: a huge count allocates nothing for the operations that cannot be
// prepared), reserves the slots with one call and writes each SQE with one prep_*() call. Every
// value that is checked is copied as it is checked, into per-thread scratch vectors lent to
// one call at a time (see Scratch and Column), and the SQEs are written from these snapshots:
// neither Python code that the call runs after a check (a later argument's __index__ or
// __fspath__) nor another thread (free-threaded Python) can slip in an unchecked value or make
// an operation leave its checked range. Arrays whose dtype holds only acceptable values
// (uint64 user_data, int32 fds, uint32 lengths) are read where they lie, with no copy.
#include <pybind11/numpy.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <iouring/sqe.hpp>
#include <iouring/sqe_fs.hpp>
#include <iouring/sqe_net.hpp>

#include "convert.hpp"
#include "module.hpp"
#include "op_policy.hpp"
#include "path_block.hpp"
#include "pins.hpp"

namespace iouring::bindings {

namespace {

std::string out_of_range(const char* name, long long lo, unsigned long long hi) {
    return std::string(name) + " values must be in " + std::to_string(lo) + ".." +
           std::to_string(hi);
}

py::module_& numpy_module() {
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

Column user_data_column(py::handle h) { return Column(h, "user_data", 0, ~0ull); }
Column fd_column(py::handle h, const char* name = "fd") {
    return Column(h, name, INT32_MIN, INT32_MAX);
}
Column offset_column(py::handle h, const char* name) { return Column(h, name, -1, ~0ull); }
Column u32_column(py::handle h, const char* name) { return Column(h, name, 0, 0xffffffffull); }

// Checks the values of the first n operations of every column (see Column::take).
template <typename... Columns>
void take_all(std::size_t n, Columns&... columns) {
    (columns.take(n), ...);
}
inline void take_optional(std::size_t n, std::optional<Column>& c) {
    if (c) c->take(n);
}

// SqeFlags for every operation of a batch. CQE_SKIP_SUCCESS by the rules of its flags alone
// (skip_refusal; every batch operation posts one completion), the chain rules at submit (see
// Ring::flush); BUFFER_SELECT is refused because a batch gives each operation its own memory.
void check_sqe_flags(std::uint64_t flags) {
    if ((flags & sqe_flags::CQE_SKIP_SUCCESS) != 0 && (flags & sqe_flags::BUFFER_SELECT) == 0) {
        Sqe probe{};  // a NOP: only the flags decide
        probe.flags = static_cast<std::uint8_t>(flags);
        if (const char* why = skip_refusal(probe)) {
            raise(PyExc_ValueError,
                  std::string("sqe_flags: SqeFlags.CQE_SKIP_SUCCESS is refused: ") + why);
        }
        note_skip_flag(probe.flags);  // Ring::flush now looks for skip chains
    }
    if ((flags & sqe_flags::BUFFER_SELECT) != 0) {
        raise(PyExc_ValueError,
              "sqe_flags: SqeFlags.BUFFER_SELECT does not apply to a batch, which gives "
              "every operation its own memory");
    }
}
Column sqe_flags_column(py::handle h) {
    return Column(h, "sqe_flags", 0, sqe_flags::ALL, &check_sqe_flags);
}

void check_fsync_flags(std::uint64_t flags) {
    if ((flags & ~std::uint64_t{kFsyncDatasync}) != 0) {
        raise(PyExc_ValueError, "flags: only FsyncFlags.DATASYNC is defined");
    }
}

// At most the number of operations that can fit in the SQ: nothing per operation is allocated
// or checked beyond it (a count of 2**40 prepares sq_entries operations).
std::size_t fitting(const Ring& ring, std::size_t n) {
    return std::min<std::size_t>(n, ring.core().sq().entries());
}

// The length of one argument: a single value (broadcast), or an array of `length` elements.
struct Extent {
    const char* name;
    std::size_t length;
    bool array;
};
Extent extent(const Column& c) { return {c.name(), c.length(), !c.is_single()}; }
Extent extent(const std::optional<Column>& c) { return c ? extent(*c) : Extent{"", 0, false}; }

// The number of operations, with NumPy's broadcasting rule: the common length of the array
// arguments (length-1 arrays broadcast, an empty array means no operation), or `count` when
// every argument is a single value or a length-1 array.
std::size_t batch_size(std::initializer_list<Extent> extents, py::handle count) {
    bool sized = false;
    bool any_array = false;
    std::size_t n = 0;
    const char* first = nullptr;
    for (const Extent& e : extents) {
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

// A user_data given as one int is a start value: operation i gets start + i, which must not
// wrap around.
void check_user_data_start(const Column& ud, std::size_t n) {
    if (ud.is_single() && n > 0 && ud[0] > ~std::uint64_t{0} - (n - 1)) {
        raise(PyExc_OverflowError, "user_data: start " + std::to_string(ud[0]) + " + " +
                                       std::to_string(n - 1) + " operations exceeds 2**64-1");
    }
}

inline std::uint64_t user_data_at(const Column& ud, std::size_t i) {
    return ud.is_single() ? ud[0] + i : ud[i];
}

// Reserves up to n slots; returns the first position and the count through `count`. Raises
// SubmissionQueueFull (n > 0, no room) and ValueError (closed ring) before touching anything.
std::uint64_t reserve(Ring& ring, std::size_t n, std::uint32_t& count) {
    auto max = static_cast<std::uint32_t>(std::min<std::size_t>(n, 0xffffffffu));
    return ring.reserve_slots(max, count);
}

// The byte range of one operation, checked against the memory it lies in.
struct Range {
    std::uint64_t address;
    std::uint32_t length;
};

std::string range_error(std::size_t i, std::uint64_t start, std::uint64_t end, const char* what,
                        std::uint64_t size) {
    return "operation " + std::to_string(i) + ": bytes [" + std::to_string(start) + ", " +
           std::to_string(end) + ") lie outside " + what + " of " + std::to_string(size) + " bytes";
}

// Places operation i at buf_offset[i], or (without buf_offset) right after operation i - 1,
// and checks [start, start + length[i]) against a buffer of `size` bytes at `base`.
void place_ranges(const Column* buf_offset, const Column& length, std::size_t n, std::uint64_t base,
                  std::uint64_t size, const char* what, Range* out) {
    std::uint64_t next = 0;
    for (std::size_t i = 0; i < n; ++i) {
        std::uint64_t start = buf_offset == nullptr ? next : (*buf_offset)[i];
        auto len = length.at<std::uint32_t>(i);
        std::uint64_t end = start + len;
        if (end < start || end > size)
            raise(PyExc_ValueError, range_error(i, start, end, what, size));
        out[i] = Range{base + start, len};
        next = end;
    }
}

// Prepares every reserved slot with prepare(i). Recording a pin may throw (bad_alloc): then the
// slots not yet prepared, and the one that failed, become NOPs, so the kernel never reads an
// SQE whose memory is not pinned, and the error propagates.
template <typename Prepare>
void fill_slots(SubmissionQueue& sq, std::uint64_t first, std::uint32_t count, Prepare&& prepare) {
    std::uint32_t i = 0;
    try {
        for (; i < count; ++i) prepare(i);
    } catch (...) {
        for (; i < count; ++i) prep_nop(sq.at(static_cast<std::uint32_t>(first + i)), 0);
        throw;
    }
}

// --- the batch methods ----------------------------------------------------------------------

std::uint32_t nop_batch(Ring& ring, py::handle user_data, py::handle count, py::handle flags) {
    Column ud = user_data_column(user_data);
    Column sf = sqe_flags_column(flags);
    std::size_t n = batch_size({extent(ud), extent(sf)}, count);
    check_user_data_start(ud, n);
    std::size_t m = fitting(ring, n);
    take_all(m, ud);
    sf.take(m);
    std::uint32_t prepared = 0;
    std::uint64_t first = reserve(ring, m, prepared);
    SubmissionQueue& sq = ring.core().sq();
    for (std::uint32_t i = 0; i < prepared; ++i) {
        Sqe& sqe = sq.at(static_cast<std::uint32_t>(first + i));
        prep_nop(sqe, user_data_at(ud, i));
        sqe.flags = sf.at<std::uint8_t>(i);
    }
    return prepared;
}

enum class RwKind { Read, Write, Readv, Writev };

// read/write/readv/writev over one pinned buffer. The vectored forms give each operation one
// iovec, from one array allocated (and pinned) per batch.
template <RwKind Kind>
std::uint32_t rw_batch(Ring& ring, py::handle user_data, py::handle fd, py::handle buffer,
                       py::handle offset, py::handle length, py::handle buf_offset,
                       py::handle count, py::handle flags, py::handle rw_flags) {
    constexpr bool kWrites = Kind == RwKind::Write || Kind == RwKind::Writev;
    constexpr bool kVectored = Kind == RwKind::Readv || Kind == RwKind::Writev;
    Column ud = user_data_column(user_data);
    Column fds = fd_column(fd);
    Column offsets = offset_column(offset, "offset");
    Column lengths = u32_column(length, "length");
    std::optional<Column> place;
    if (!buf_offset.is_none()) place.emplace(buf_offset, "buf_offset", 0, ~0ull);
    Column sf = sqe_flags_column(flags);
    Column rwf = u32_column(rw_flags, "rw_flags");
    std::size_t n = batch_size({extent(ud), extent(fds), extent(offsets), extent(lengths),
                                extent(place), extent(sf), extent(rwf)},
                               count);
    check_user_data_start(ud, n);
    std::size_t m = fitting(ring, n);
    take_all(m, ud, fds, offsets, lengths, rwf);
    take_optional(m, place);
    sf.take(m);
    PinnedBuffer buf = pin_buffer(buffer, !kWrites, "buffer");
    std::shared_ptr<std::vector<Iovec>> iovecs;
    if constexpr (kVectored) iovecs = std::make_shared<std::vector<Iovec>>(m);
    Scratch<Range> scratch;
    Range* ranges = scratch.get(m);
    place_ranges(place ? &*place : nullptr, lengths, m, address_of(buf.data), buf.size, "buffer",
                 ranges);
    std::uint32_t prepared = 0;
    std::uint64_t first = reserve(ring, m, prepared);
    SubmissionQueue& sq = ring.core().sq();
    Pin iovec_pin = iovecs;
    fill_slots(sq, first, prepared, [&](std::uint32_t i) {
        Sqe& sqe = sq.at(static_cast<std::uint32_t>(first + i));
        const Range& r = ranges[i];
        auto* address = reinterpret_cast<std::byte*>(static_cast<std::uintptr_t>(r.address));
        std::uint64_t u = user_data_at(ud, i);
        auto file = fds.at<std::int32_t>(i);
        std::uint64_t off = offsets[i];
        if constexpr (Kind == RwKind::Read) {
            prep_read(sqe, u, file, address, r.length, off);
        } else if constexpr (Kind == RwKind::Write) {
            prep_write(sqe, u, file, address, r.length, off);
        } else {
            Iovec& iov = (*iovecs)[i];
            iov = Iovec{r.address, r.length};
            if constexpr (Kind == RwKind::Readv) {
                prep_readv(sqe, u, file, &iov, 1, off);
            } else {
                prep_writev(sqe, u, file, &iov, 1, off);
            }
            ring.add_slot_pin(first + i, iovec_pin);
        }
        sqe.flags = sf.at<std::uint8_t>(i);
        sqe.op_flags = rwf.at<std::uint32_t>(i);
        ring.add_slot_pin(first + i, buf.pin);
    });
    return prepared;
}

template <bool Write>
std::uint32_t rw_fixed_batch(Ring& ring, py::handle user_data, py::handle fd,
                             py::handle buffer_index, py::handle offset, py::handle length,
                             py::handle buf_offset, py::handle count, py::handle flags,
                             py::handle rw_flags) {
    Column ud = user_data_column(user_data);
    Column fds = fd_column(fd);
    Column index = Column(buffer_index, "buffer_index", 0, 0xffff);
    Column offsets = offset_column(offset, "offset");
    Column lengths = u32_column(length, "length");
    std::optional<Column> place;
    if (!buf_offset.is_none()) place.emplace(buf_offset, "buf_offset", 0, ~0ull);
    Column sf = sqe_flags_column(flags);
    Column rwf = u32_column(rw_flags, "rw_flags");
    std::size_t n = batch_size({extent(ud), extent(fds), extent(index), extent(offsets),
                                extent(lengths), extent(place), extent(sf), extent(rwf)},
                               count);
    check_user_data_start(ud, n);
    std::size_t m = fitting(ring, n);
    take_all(m, ud, fds, offsets, lengths, rwf);
    index.take(m, true);  // checked against the registration below
    take_optional(m, place);
    sf.take(m);
    ring.check_usable();
    const RegisteredBuffers* registered = ring.registered_buffers();
    if (registered == nullptr) {
        raise(PyExc_ValueError, "buffer_index: no buffers are registered with this ring");
    }
    Scratch<Range> scratch;
    Range* ranges = scratch.get(m);
    std::uint64_t next = 0;
    for (std::size_t i = 0; i < m; ++i) {
        auto k = index.at<std::uint16_t>(i);
        std::uint64_t start = place ? (*place)[i] : next;
        auto len = lengths.at<std::uint32_t>(i);
        RangeFault fault = registered_range(registered, k, start, len, true);
        if (fault == RangeFault::BadIndex) {
            raise(PyExc_ValueError, "operation " + std::to_string(i) + ": buffer_index " +
                                        std::to_string(k) + " is out of range (" +
                                        std::to_string(registered->iovecs.size()) +
                                        " buffers registered)");
        }
        const Iovec& reg = registered->iovecs[k];
        std::uint64_t end = start + len;
        if (fault != RangeFault::None) {
            std::string what = "registered buffer " + std::to_string(k);
            raise(PyExc_ValueError, range_error(i, start, end, what.c_str(), reg.len));
        }
        ranges[i] = Range{reg.base + start, len};
        next = end;
    }
    std::uint32_t prepared = 0;
    std::uint64_t first = reserve(ring, m, prepared);
    SubmissionQueue& sq = ring.core().sq();
    for (std::uint32_t i = 0; i < prepared; ++i) {
        Sqe& sqe = sq.at(static_cast<std::uint32_t>(first + i));
        const Range& r = ranges[i];
        auto* address = reinterpret_cast<std::byte*>(static_cast<std::uintptr_t>(r.address));
        if constexpr (Write) {
            prep_write_fixed(sqe, user_data_at(ud, i), fds.at<std::int32_t>(i), address, r.length,
                             offsets[i], index.at<std::uint16_t>(i));
        } else {
            prep_read_fixed(sqe, user_data_at(ud, i), fds.at<std::int32_t>(i), address, r.length,
                            offsets[i], index.at<std::uint16_t>(i));
        }
        sqe.flags = sf.at<std::uint8_t>(i);
        sqe.op_flags = rwf.at<std::uint32_t>(i);
    }
    return prepared;
}

std::uint32_t fsync_batch(Ring& ring, py::handle user_data, py::handle fd, py::handle fsync_flags,
                          py::handle count, py::handle flags) {
    Column ud = user_data_column(user_data);
    Column fds = fd_column(fd);
    Column ff = Column(fsync_flags, "flags", 0, 0xffffffffull, &check_fsync_flags);
    Column sf = sqe_flags_column(flags);
    std::size_t n = batch_size({extent(ud), extent(fds), extent(ff), extent(sf)}, count);
    check_user_data_start(ud, n);
    std::size_t m = fitting(ring, n);
    take_all(m, ud, fds);
    ff.take(m);
    sf.take(m);
    std::uint32_t prepared = 0;
    std::uint64_t first = reserve(ring, m, prepared);
    SubmissionQueue& sq = ring.core().sq();
    for (std::uint32_t i = 0; i < prepared; ++i) {
        Sqe& sqe = sq.at(static_cast<std::uint32_t>(first + i));
        prep_fsync(sqe, user_data_at(ud, i), fds.at<std::int32_t>(i), ff.at<std::uint32_t>(i));
        sqe.flags = sf.at<std::uint8_t>(i);
    }
    return prepared;
}

std::uint32_t close_batch(Ring& ring, py::handle user_data, py::handle fd, py::handle count,
                          py::handle flags) {
    Column ud = user_data_column(user_data);
    Column fds = fd_column(fd);
    Column sf = sqe_flags_column(flags);
    std::size_t n = batch_size({extent(ud), extent(fds), extent(sf)}, count);
    check_user_data_start(ud, n);
    std::size_t m = fitting(ring, n);
    take_all(m, ud, fds);
    sf.take(m);
    std::uint32_t prepared = 0;
    std::uint64_t first = reserve(ring, m, prepared);
    SubmissionQueue& sq = ring.core().sq();
    for (std::uint32_t i = 0; i < prepared; ++i) {
        Sqe& sqe = sq.at(static_cast<std::uint32_t>(first + i));
        prep_close(sqe, user_data_at(ud, i), fds.at<std::int32_t>(i));
        sqe.flags = sf.at<std::uint8_t>(i);
    }
    return prepared;
}

// Private NUL-terminated copies of every path of a batch, in one block pinned by all of them.
bool is_single_path(py::handle h) {
    return PyUnicode_Check(h.ptr()) || PyBytes_Check(h.ptr()) ||
           PyObject_HasAttrString(h.ptr(), "__fspath__") != 0;
}

bool collect_paths(PathBlock& block, py::handle paths) {
    if (is_single_path(paths)) {
        append_path(block, paths, 0);
        return true;
    }
    if (PySequence_Check(paths.ptr()) == 0) {
        raise(PyExc_TypeError,
              "paths must be a path (str, bytes, os.PathLike) or a sequence of "
              "paths, not " +
                  type_name(paths));
    }
    py::sequence items = py::reinterpret_borrow<py::sequence>(paths);
    std::size_t len = py::len(items);
    block.starts.reserve(len);
    for (std::size_t i = 0; i < len; ++i) append_path(block, items[i], i);
    return false;
}

std::uint32_t openat_batch(Ring& ring, py::handle user_data, py::handle dir_fd, py::handle paths,
                           py::handle open_flags, py::handle mode, py::handle count,
                           py::handle flags) {
    Column ud = user_data_column(user_data);
    Column dirs = fd_column(dir_fd, "dir_fd");
    Column of = Column(open_flags, "flags", INT32_MIN, 0xffffffffull);
    Column modes = u32_column(mode, "mode");
    Column sf = sqe_flags_column(flags);
    auto block = std::make_shared<PathBlock>();
    // A sequence of paths is an array argument like any other; one path broadcasts.
    bool single = collect_paths(*block, paths);
    std::size_t npaths = block->starts.size();
    std::size_t n = batch_size({extent(ud), extent(dirs), extent(of), extent(modes), extent(sf),
                                Extent{"paths", npaths, !single}},
                               count);
    check_user_data_start(ud, n);
    std::size_t m = fitting(ring, n);
    take_all(m, ud, dirs, of, modes);
    sf.take(m);
    std::uint32_t prepared = 0;
    std::uint64_t first = reserve(ring, m, prepared);
    SubmissionQueue& sq = ring.core().sq();
    Pin pin = block;
    const char* base = block->bytes.data();
    fill_slots(sq, first, prepared, [&](std::uint32_t i) {
        Sqe& sqe = sq.at(static_cast<std::uint32_t>(first + i));
        std::size_t start = block->starts[npaths == 1 ? 0 : i];
        prep_openat(sqe, user_data_at(ud, i), dirs.at<std::int32_t>(i), base + start,
                    of.at<std::uint32_t>(i), modes.at<std::uint32_t>(i));
        sqe.flags = sf.at<std::uint8_t>(i);
        ring.add_slot_pin(first + i, pin);
    });
    return prepared;
}

// send/recv over one pinned buffer: operation i sends buffer[buf_offset[i]:][:length[i]] on
// fd[i] (or receives into it), with MSG_* flags[i].
template <bool Send>
std::uint32_t sendrecv_batch(Ring& ring, py::handle user_data, py::handle fd, py::handle buffer,
                             py::handle length, py::handle buf_offset, py::handle count,
                             py::handle flags, py::handle msg_flags) {
    Column ud = user_data_column(user_data);
    Column fds = fd_column(fd);
    Column lengths = u32_column(length, "length");
    std::optional<Column> place;
    if (!buf_offset.is_none()) place.emplace(buf_offset, "buf_offset", 0, ~0ull);
    Column sf = sqe_flags_column(flags);
    Column mf = Column(msg_flags, "flags", INT32_MIN, 0xffffffffull);
    std::size_t n = batch_size({extent(ud), extent(fds), extent(lengths), extent(place), extent(sf),
                                extent(mf)},
                               count);
    check_user_data_start(ud, n);
    std::size_t m = fitting(ring, n);
    take_all(m, ud, fds, lengths, mf);
    take_optional(m, place);
    sf.take(m);
    PinnedBuffer buf = pin_buffer(buffer, !Send, "buffer");
    Scratch<Range> scratch;
    Range* ranges = scratch.get(m);
    place_ranges(place ? &*place : nullptr, lengths, m, address_of(buf.data), buf.size, "buffer",
                 ranges);
    std::uint32_t prepared = 0;
    std::uint64_t first = reserve(ring, m, prepared);
    SubmissionQueue& sq = ring.core().sq();
    fill_slots(sq, first, prepared, [&](std::uint32_t i) {
        Sqe& sqe = sq.at(static_cast<std::uint32_t>(first + i));
        const Range& r = ranges[i];
        auto* address = reinterpret_cast<std::byte*>(static_cast<std::uintptr_t>(r.address));
        if constexpr (Send) {
            prep_send(sqe, user_data_at(ud, i), fds.at<std::int32_t>(i), address, r.length,
                      mf.at<std::uint32_t>(i));
        } else {
            prep_recv(sqe, user_data_at(ud, i), fds.at<std::int32_t>(i), address, r.length,
                      mf.at<std::uint32_t>(i));
        }
        sqe.flags = sf.at<std::uint8_t>(i);
        ring.add_slot_pin(first + i, buf.pin);
    });
    return prepared;
}

// statx of N paths: operation i writes its struct statx (256 bytes) into out[i], so `out` is a
// writable buffer of at least N * 256 bytes (a STATX_DTYPE array of N records), pinned once.
std::uint32_t statx_batch(Ring& ring, py::handle user_data, py::handle dir_fd, py::handle paths,
                          py::handle at_flags, py::handle mask, py::handle out, py::handle count,
                          py::handle flags) {
    Column ud = user_data_column(user_data);
    Column dirs = fd_column(dir_fd, "dir_fd");
    Column af = Column(at_flags, "flags", INT32_MIN, 0xffffffffull);
    Column masks = u32_column(mask, "mask");
    Column sf = sqe_flags_column(flags);
    auto block = std::make_shared<PathBlock>();
    bool single = collect_paths(*block, paths);
    std::size_t npaths = block->starts.size();
    std::size_t n = batch_size({extent(ud), extent(dirs), extent(af), extent(masks), extent(sf),
                                Extent{"paths", npaths, !single}},
                               count);
    check_user_data_start(ud, n);
    std::size_t m = fitting(ring, n);
    take_all(m, ud, dirs, af, masks);
    sf.take(m);
    PinnedBuffer buf = pin_buffer(out, true, "out");
    if (buf.size / sizeof(Statx) < n) {
        raise(PyExc_ValueError, "out holds " + std::to_string(buf.size / sizeof(Statx)) +
                                    " struct statx of " + std::to_string(sizeof(Statx)) +
                                    " bytes; " + std::to_string(n) + " are needed");
    }
    std::uint32_t prepared = 0;
    std::uint64_t first = reserve(ring, m, prepared);
    SubmissionQueue& sq = ring.core().sq();
    Pin pin = block;
    const char* base = block->bytes.data();
    auto* records = static_cast<Statx*>(buf.data);
    fill_slots(sq, first, prepared, [&](std::uint32_t i) {
        Sqe& sqe = sq.at(static_cast<std::uint32_t>(first + i));
        std::size_t start = block->starts[npaths == 1 ? 0 : i];
        prep_statx(sqe, user_data_at(ud, i), dirs.at<std::int32_t>(i), base + start,
                   af.at<std::uint32_t>(i), masks.at<std::uint32_t>(i), records + i);
        sqe.flags = sf.at<std::uint8_t>(i);
        ring.add_slot_pin(first + i, pin);
        ring.add_slot_pin(first + i, buf.pin);
    });
    return prepared;
}

constexpr const char* kBatchNote =
    "\n\nuser_data is an array, or an int start (operation i gets start + i). Other array "
    "arguments broadcast (length 1 or a single int applies to all); count gives the number "
    "of operations when every argument is a single value. sqe_flags (SqeFlags, one or one "
    "per operation) are set on every SQE; BUFFER_SELECT is refused, and CQE_SKIP_SUCCESS is "
    "taken on the members of a linked chain before its last one, all with one user_data (pass "
    "user_data as an array; see Sqe.flags for the rules, checked at submit). "
    "Prepares as many operations as the SQ has room for and returns that count; raises "
    "SubmissionQueueFull when there is no room at all. Every operation that can fit (at "
    "most sq_entries, whatever the count or the arrays' length) is validated before the first "
    "is prepared, so an error (TypeError, ValueError, OverflowError naming the argument) "
    "leaves the ring unchanged; an empty array broadcasts to nothing (ValueError beside "
    "longer arrays or a count above 0).";

std::string doc(const char* text) { return std::string(text) + kBatchNote; }

}  // namespace

void register_batch(RingClass& ring) {
    static const std::string nop_doc = doc("Prepares N no-ops.");
    static const std::string read_doc = doc(
        "Prepares N reads into one writable buffer: operation i reads length[i] bytes from "
        "fd[i] at offset[i] (-1: current position) into buffer[buf_offset[i]:][:length[i]]; "
        "without buf_offset the ranges follow each other from 0. rw_flags are RWF_* flags. The "
        "buffer is pinned once for the batch and released when the last of its operations "
        "completes.");
    static const std::string write_doc = doc(
        "Prepares N writes from one buffer: operation i writes "
        "buffer[buf_offset[i]:][:length[i]] to fd[i] at offset[i] (see read_batch).");
    static const std::string readv_doc = doc(
        "Prepares N vectored reads (IORING_OP_READV, for kernels before 5.6 or for readv "
        "semantics) into one writable buffer, one iovec per operation, laid out as in "
        "read_batch. The iovec array is allocated once per batch and kept, with the buffer, "
        "until the last operation completes.");
    static const std::string writev_doc = doc(
        "Prepares N vectored writes (IORING_OP_WRITEV) from one buffer, one iovec per "
        "operation (see readv_batch).");
    static const std::string read_fixed_doc = doc(
        "Prepares N reads into registered buffers: operation i reads length[i] bytes into "
        "registered buffer buffer_index[i] at buf_offset[i] (packed from 0 when omitted). The "
        "registration keeps the memory alive; nothing is pinned per call.");
    static const std::string write_fixed_doc = doc(
        "Prepares N writes from registered buffers (see read_fixed_batch).");
    static const std::string fsync_doc = doc(
        "Prepares N fsyncs; flags (FsyncFlags.DATASYNC or 0) per operation or for all.");
    static const std::string close_doc = doc("Prepares N closes.");
    static const std::string send_doc = doc(
        "Prepares N sends from one buffer: operation i sends buffer[buf_offset[i]:][:length[i]] "
        "on socket fd[i] with MSG_* flags[i] (packed from 0 without buf_offset). The buffer is "
        "pinned once for the batch. Matches io_uring_prep_send(3) per operation.");
    static const std::string recv_doc = doc(
        "Prepares N receives into one writable buffer: operation i receives at most length[i] "
        "bytes from socket fd[i] into buffer[buf_offset[i]:][:length[i]] with MSG_* flags[i]. "
        "Matches io_uring_prep_recv(3) per operation.");
    static const std::string statx_doc = doc(
        "Prepares N statx calls: operation i stats paths[i] (one path applies to all; \"\" "
        "with AT_EMPTY_PATH and dir_fd[i] stats an open file) relative to dir_fd[i] with AT_* "
        "flags[i] and StatxMask mask[i], writing its struct statx into out[i]: out is a "
        "writable buffer of at least N * 256 bytes, such as numpy.zeros(N, STATX_DTYPE). Paths "
        "are copied into one block and out is pinned once for the batch. Matches "
        "io_uring_prep_statx(3) per operation.");
    static const std::string openat_doc = doc(
        "Prepares N openat calls: operation i opens paths[i] (str, bytes or os.PathLike; one "
        "path applies to every operation) relative to dir_fd[i] (os.AT_FDCWD for the working "
        "directory) with open flags flags[i] and mode[i]; its res is the new fd. Private "
        "copies of all paths are made in one block, pinned once for the batch.");

    ring.def("nop_batch", &nop_batch, py::arg("user_data"), py::kw_only(),
             py::arg("count") = py::none(), py::arg("sqe_flags") = 0, nop_doc.c_str())
        .def("read_batch", &rw_batch<RwKind::Read>, py::arg("user_data"), py::arg("fd"),
             py::arg("buffer"), py::arg("offset"), py::arg("length"),
             py::arg("buf_offset") = py::none(), py::kw_only(), py::arg("count") = py::none(),
             py::arg("sqe_flags") = 0, py::arg("rw_flags") = 0, read_doc.c_str())
        .def("write_batch", &rw_batch<RwKind::Write>, py::arg("user_data"), py::arg("fd"),
             py::arg("buffer"), py::arg("offset"), py::arg("length"),
             py::arg("buf_offset") = py::none(), py::kw_only(), py::arg("count") = py::none(),
             py::arg("sqe_flags") = 0, py::arg("rw_flags") = 0, write_doc.c_str())
        .def("readv_batch", &rw_batch<RwKind::Readv>, py::arg("user_data"), py::arg("fd"),
             py::arg("buffer"), py::arg("offset"), py::arg("length"),
             py::arg("buf_offset") = py::none(), py::kw_only(), py::arg("count") = py::none(),
             py::arg("sqe_flags") = 0, py::arg("rw_flags") = 0, readv_doc.c_str())
        .def("writev_batch", &rw_batch<RwKind::Writev>, py::arg("user_data"), py::arg("fd"),
             py::arg("buffer"), py::arg("offset"), py::arg("length"),
             py::arg("buf_offset") = py::none(), py::kw_only(), py::arg("count") = py::none(),
             py::arg("sqe_flags") = 0, py::arg("rw_flags") = 0, writev_doc.c_str())
        .def("read_fixed_batch", &rw_fixed_batch<false>, py::arg("user_data"), py::arg("fd"),
             py::arg("buffer_index"), py::arg("offset"), py::arg("length"),
             py::arg("buf_offset") = py::none(), py::kw_only(), py::arg("count") = py::none(),
             py::arg("sqe_flags") = 0, py::arg("rw_flags") = 0, read_fixed_doc.c_str())
        .def("write_fixed_batch", &rw_fixed_batch<true>, py::arg("user_data"), py::arg("fd"),
             py::arg("buffer_index"), py::arg("offset"), py::arg("length"),
             py::arg("buf_offset") = py::none(), py::kw_only(), py::arg("count") = py::none(),
             py::arg("sqe_flags") = 0, py::arg("rw_flags") = 0, write_fixed_doc.c_str())
        .def("fsync_batch", &fsync_batch, py::arg("user_data"), py::arg("fd"), py::arg("flags") = 0,
             py::kw_only(), py::arg("count") = py::none(), py::arg("sqe_flags") = 0,
             fsync_doc.c_str())
        .def("close_batch", &close_batch, py::arg("user_data"), py::arg("fd"), py::kw_only(),
             py::arg("count") = py::none(), py::arg("sqe_flags") = 0, close_doc.c_str())
        .def("openat_batch", &openat_batch, py::arg("user_data"), py::arg("dir_fd"),
             py::arg("paths"), py::arg("flags"), py::arg("mode") = 0666, py::kw_only(),
             py::arg("count") = py::none(), py::arg("sqe_flags") = 0, openat_doc.c_str())
        .def("send_batch", &sendrecv_batch<true>, py::arg("user_data"), py::arg("fd"),
             py::arg("buffer"), py::arg("length"), py::arg("buf_offset") = py::none(),
             py::kw_only(), py::arg("count") = py::none(), py::arg("sqe_flags") = 0,
             py::arg("flags") = 0, send_doc.c_str())
        .def("recv_batch", &sendrecv_batch<false>, py::arg("user_data"), py::arg("fd"),
             py::arg("buffer"), py::arg("length"), py::arg("buf_offset") = py::none(),
             py::kw_only(), py::arg("count") = py::none(), py::arg("sqe_flags") = 0,
             py::arg("flags") = 0, recv_doc.c_str())
        .def("statx_batch", &statx_batch, py::arg("user_data"), py::arg("dir_fd"), py::arg("paths"),
             py::arg("flags"), py::arg("mask"), py::arg("out"), py::kw_only(),
             py::arg("count") = py::none(), py::arg("sqe_flags") = 0, statx_doc.c_str());
}

}  // namespace iouring::bindings
