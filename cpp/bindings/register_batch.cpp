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

#include "columns.hpp"
#include "convert.hpp"
#include "module.hpp"
#include "op_policy.hpp"
#include "path_block.hpp"
#include "pins.hpp"

namespace iouring::bindings {

namespace {

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

// The steps every batch method shares around its own columns: the number of operations (the
// broadcasting rule), the user_data start check, at most what fits in the SQ (`m`: the
// operations whose values the method checks), then the reserved slots, each prepared by
// prepare(sqe, i, position) and given sqe_flags[i].
struct Batch {
    Batch(Ring& r, const Column& user_data, std::initializer_list<Extent> extents, py::handle count)
        : ring(r), ud(user_data), n(batch_size(extents, count)) {
        check_user_data_start(ud, n);
        m = fitting(ring, n);
    }

    [[nodiscard]] std::uint64_t user_data(std::size_t i) const { return user_data_at(ud, i); }

    template <typename Prepare>
    std::uint32_t fill(const Column& sqe_flags, Prepare&& prepare) {
        check_skip_flag_fits_ring(sqe_flags);
        std::uint32_t prepared = 0;
        std::uint64_t first = reserve(ring, m, prepared);
        SubmissionQueue& sq = ring.core().sq();
        fill_slots(sq, first, prepared, [&](std::uint32_t i) {
            Sqe& sqe = sq.at(static_cast<std::uint32_t>(first + i));
            prepare(sqe, i, first + i);
            sqe.flags = sqe_flags.at<std::uint8_t>(i);
        });
        return prepared;
    }

    // CQE_SKIP_SUCCESS where the ring refuses it (SQPOLL, or a kernel without the feature)
    // would otherwise only be found at submit, with the batch already in the SQ.
    void check_skip_flag_fits_ring(const Column& sqe_flags) const {
        const char* why = nullptr;
        for (std::size_t i = 0; i < m; ++i) {
            if ((sqe_flags.at<std::uint8_t>(i) & sqe_flags::CQE_SKIP_SUCCESS) == 0) continue;
            if (why == nullptr) why = ring.skip_ring_refusal();
            if (why == nullptr) return;
            raise(PyExc_ValueError, "sqe_flags: operation " + std::to_string(i) +
                                        ": SqeFlags.CQE_SKIP_SUCCESS is refused: " + why);
        }
    }

    Ring& ring;
    const Column& ud;
    std::size_t n;
    std::size_t m = 0;
};

// --- the batch methods ----------------------------------------------------------------------

std::uint32_t nop_batch(Ring& ring, py::handle user_data, py::handle count, py::handle flags) {
    Column ud = user_data_column(user_data);
    Column sf = sqe_flags_column(flags);
    Batch b(ring, ud, {extent(ud), extent(sf)}, count);
    take_all(b.m, ud, sf);
    return b.fill(sf,
                  [&](Sqe& sqe, std::uint32_t i, std::uint64_t) { prep_nop(sqe, b.user_data(i)); });
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
    Batch b(ring, ud,
            {extent(ud), extent(fds), extent(offsets), extent(lengths), extent(place), extent(sf),
             extent(rwf)},
            count);
    std::size_t m = b.m;
    take_all(m, ud, fds, offsets, lengths, rwf, sf);
    take_optional(m, place);
    PinnedBuffer buf = pin_buffer(buffer, !kWrites, "buffer");
    std::shared_ptr<std::vector<Iovec>> iovecs;
    if constexpr (kVectored) iovecs = std::make_shared<std::vector<Iovec>>(m);
    Scratch<Range> scratch;
    Range* ranges = scratch.get(m);
    place_ranges(place ? &*place : nullptr, lengths, m, address_of(buf.data), buf.size, "buffer",
                 ranges);
    Pin iovec_pin = iovecs;
    return b.fill(sf, [&](Sqe& sqe, std::uint32_t i, std::uint64_t position) {
        const Range& r = ranges[i];
        auto* address = reinterpret_cast<std::byte*>(static_cast<std::uintptr_t>(r.address));
        std::uint64_t u = b.user_data(i);
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
            ring.add_slot_pin(position, iovec_pin);
        }
        sqe.op_flags = rwf.at<std::uint32_t>(i);
        ring.add_slot_pin(position, buf.pin);
    });
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
    Batch b(ring, ud,
            {extent(ud), extent(fds), extent(index), extent(offsets), extent(lengths),
             extent(place), extent(sf), extent(rwf)},
            count);
    std::size_t m = b.m;
    take_all(m, ud, fds, offsets, lengths, rwf, sf);
    index.take(m, true);  // checked against the registration below
    take_optional(m, place);
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
    return b.fill(sf, [&](Sqe& sqe, std::uint32_t i, std::uint64_t) {
        const Range& r = ranges[i];
        auto* address = reinterpret_cast<std::byte*>(static_cast<std::uintptr_t>(r.address));
        if constexpr (Write) {
            prep_write_fixed(sqe, b.user_data(i), fds.at<std::int32_t>(i), address, r.length,
                             offsets[i], index.at<std::uint16_t>(i));
        } else {
            prep_read_fixed(sqe, b.user_data(i), fds.at<std::int32_t>(i), address, r.length,
                            offsets[i], index.at<std::uint16_t>(i));
        }
        sqe.op_flags = rwf.at<std::uint32_t>(i);
    });
}

std::uint32_t fsync_batch(Ring& ring, py::handle user_data, py::handle fd, py::handle fsync_flags,
                          py::handle count, py::handle flags) {
    Column ud = user_data_column(user_data);
    Column fds = fd_column(fd);
    Column ff = Column(fsync_flags, "flags", 0, 0xffffffffull, &check_fsync_flags);
    Column sf = sqe_flags_column(flags);
    Batch b(ring, ud, {extent(ud), extent(fds), extent(ff), extent(sf)}, count);
    take_all(b.m, ud, fds, ff, sf);
    return b.fill(sf, [&](Sqe& sqe, std::uint32_t i, std::uint64_t) {
        prep_fsync(sqe, b.user_data(i), fds.at<std::int32_t>(i), ff.at<std::uint32_t>(i));
    });
}

std::uint32_t close_batch(Ring& ring, py::handle user_data, py::handle fd, py::handle count,
                          py::handle flags) {
    Column ud = user_data_column(user_data);
    Column fds = fd_column(fd);
    Column sf = sqe_flags_column(flags);
    Batch b(ring, ud, {extent(ud), extent(fds), extent(sf)}, count);
    take_all(b.m, ud, fds, sf);
    return b.fill(sf, [&](Sqe& sqe, std::uint32_t i, std::uint64_t) {
        prep_close(sqe, b.user_data(i), fds.at<std::int32_t>(i));
    });
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
    py::sequence items =
        as_sequence(paths, "paths must be a path (str, bytes, os.PathLike) or a sequence of paths");
    std::size_t len = py::len(items);
    block.starts.reserve(len);
    for (std::size_t i = 0; i < len; ++i) append_path(block, items[i], i);
    return false;
}

// The arguments of a batch over paths (openat, statx): user_data, dir_fd, AT_*/O_* flags, one
// more u32 column (mode, mask), sqe_flags, and the paths in one block that every operation
// pins. A sequence of paths is an array argument like any other; one path broadcasts.
struct PathBatch {
    PathBatch(Ring& ring, py::handle user_data, py::handle dir_fd, py::handle paths,
              py::handle path_flags, py::handle extra, const char* extra_name, py::handle count,
              py::handle sqe_flags)
        : ud(user_data_column(user_data)),
          dirs(dir_fd_column(dir_fd)),
          flags(path_flags, "flags", INT32_MIN, 0xffffffffull),
          more(u32_column(extra, extra_name)),
          sf(sqe_flags_column(sqe_flags)),
          block(std::make_shared<PathBlock>()),
          single(collect_paths(*block, paths)),
          batch(ring, ud,
                {extent(ud), extent(dirs), extent(flags), extent(more), extent(sf),
                 Extent{"paths", block->starts.size(), !single}},
                count) {
        take_all(batch.m, ud, dirs, flags, more, sf);
    }

    // The NUL-terminated path of operation i.
    [[nodiscard]] const char* path(std::size_t i) const {
        return block->bytes.data() + block->starts[single || block->starts.size() == 1 ? 0 : i];
    }

    Column ud, dirs, flags, more, sf;
    std::shared_ptr<PathBlock> block;
    bool single;
    Batch batch;
};

std::uint32_t openat_batch(Ring& ring, py::handle user_data, py::handle dir_fd, py::handle paths,
                           py::handle open_flags, py::handle mode, py::handle count,
                           py::handle flags) {
    PathBatch a(ring, user_data, dir_fd, paths, open_flags, mode, "mode", count, flags);
    Pin pin = a.block;
    return a.batch.fill(a.sf, [&](Sqe& sqe, std::uint32_t i, std::uint64_t position) {
        prep_openat(sqe, a.batch.user_data(i), a.dirs.at<std::int32_t>(i), a.path(i),
                    a.flags.at<std::uint32_t>(i), a.more.at<std::uint32_t>(i));
        ring.add_slot_pin(position, pin);
    });
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
    Batch b(ring, ud,
            {extent(ud), extent(fds), extent(lengths), extent(place), extent(sf), extent(mf)},
            count);
    std::size_t m = b.m;
    take_all(m, ud, fds, lengths, mf, sf);
    take_optional(m, place);
    PinnedBuffer buf = pin_buffer(buffer, !Send, "buffer");
    Scratch<Range> scratch;
    Range* ranges = scratch.get(m);
    place_ranges(place ? &*place : nullptr, lengths, m, address_of(buf.data), buf.size, "buffer",
                 ranges);
    return b.fill(sf, [&](Sqe& sqe, std::uint32_t i, std::uint64_t position) {
        const Range& r = ranges[i];
        auto* address = reinterpret_cast<std::byte*>(static_cast<std::uintptr_t>(r.address));
        if constexpr (Send) {
            prep_send(sqe, b.user_data(i), fds.at<std::int32_t>(i), address, r.length,
                      mf.at<std::uint32_t>(i));
        } else {
            prep_recv(sqe, b.user_data(i), fds.at<std::int32_t>(i), address, r.length,
                      mf.at<std::uint32_t>(i));
        }
        ring.add_slot_pin(position, buf.pin);
    });
}

// statx of N paths: operation i writes its struct statx (256 bytes) into out[i], so `out` is a
// writable buffer of at least N * 256 bytes (a STATX_DTYPE array of N records), pinned once.
std::uint32_t statx_batch(Ring& ring, py::handle user_data, py::handle dir_fd, py::handle paths,
                          py::handle at_flags, py::handle mask, py::handle out, py::handle count,
                          py::handle flags) {
    PathBatch a(ring, user_data, dir_fd, paths, at_flags, mask, "mask", count, flags);
    PinnedBuffer buf = pin_buffer(out, true, "out");
    std::size_t n = a.batch.n;
    if (buf.size / sizeof(Statx) < n) {
        raise(PyExc_ValueError, "out holds " + std::to_string(buf.size / sizeof(Statx)) +
                                    " struct statx of " + std::to_string(sizeof(Statx)) +
                                    " bytes; " + std::to_string(n) + " are needed");
    }
    Pin pin = a.block;
    auto* records = static_cast<Statx*>(buf.data);
    return a.batch.fill(a.sf, [&](Sqe& sqe, std::uint32_t i, std::uint64_t position) {
        prep_statx(sqe, a.batch.user_data(i), a.dirs.at<std::int32_t>(i), a.path(i),
                   a.flags.at<std::uint32_t>(i), a.more.at<std::uint32_t>(i), records + i);
        ring.add_slot_pin(position, pin);
        ring.add_slot_pin(position, buf.pin);
    });
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

void register_batch(py::module_& m, RingClass& ring) {
    m.def(
        "batch_size",
        [](const py::dict& columns, py::handle count) {
            std::vector<std::string> names;
            names.reserve(columns.size());
            std::vector<Extent> extents;
            extents.reserve(columns.size());
            for (auto [key, value] : columns) {
                names.push_back(py::str(key).cast<std::string>());
                extents.push_back(python_extent(value, names.back().c_str()));
            }
            return batch_size(extents.data(), extents.data() + extents.size(), count);
        },
        py::arg("columns"), py::arg("count") = py::none(),
        "The number of operations of a batch whose per-operation arguments are the values of "
        "columns (name -> an int or object with fileno() for every operation, a 1-D array or "
        "sequence of one per operation, or None when omitted): the rule every *_batch method "
        "applies, NumPy's broadcasting (length-1 arrays apply to every operation). count, when "
        "given, must agree with the arrays. Raises ValueError when the array lengths differ, "
        "or when every argument is a single value and count is None.");

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
        "path applies to every operation) relative to dir_fd[i] (iouring.AT_FDCWD or None for the "
        "working directory) with open flags flags[i] and mode[i]; its res is the new fd. Private "
        "copies of all paths are made in one block, pinned once for the batch.");

    // The six read/write batches take the same arguments; the buffer ones a buffer, the
    // fixed ones a buffer_index column.
    auto def_rw = [&ring](const char* name, auto* fn, const char* memory, const std::string& d) {
        ring.def(name, fn, py::arg("user_data"), py::arg("fd"), py::arg(memory), py::arg("offset"),
                 py::arg("length"), py::arg("buf_offset") = py::none(), py::kw_only(),
                 py::arg("count") = py::none(), py::arg("sqe_flags") = 0, py::arg("rw_flags") = 0,
                 d.c_str());
    };
    def_rw("read_batch", &rw_batch<RwKind::Read>, "buffer", read_doc);
    def_rw("write_batch", &rw_batch<RwKind::Write>, "buffer", write_doc);
    def_rw("readv_batch", &rw_batch<RwKind::Readv>, "buffer", readv_doc);
    def_rw("writev_batch", &rw_batch<RwKind::Writev>, "buffer", writev_doc);
    def_rw("read_fixed_batch", &rw_fixed_batch<false>, "buffer_index", read_fixed_doc);
    def_rw("write_fixed_batch", &rw_fixed_batch<true>, "buffer_index", write_fixed_doc);
    ring.def("nop_batch", &nop_batch, py::arg("user_data"), py::kw_only(),
             py::arg("count") = py::none(), py::arg("sqe_flags") = 0, nop_doc.c_str())
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
