// The operations of the foundation: nop, read/write (plain, vectored, fixed), fsync, splice,
// openat, close. See ops.hpp for how each becomes two methods.
#include <string>

#include "convert.hpp"
#include "module.hpp"
#include "ops.hpp"
#include "pins.hpp"
#include <iouring/sqe.hpp>

namespace iouring::bindings {

namespace {

Prepared make_nop(py::handle user_data) {
    Prepared p;
    prep_nop(p.sqe, to_u64(user_data, "user_data"));
    return p;
}

template <bool Write>
Prepared make_rw(py::handle user_data, py::handle fd, py::handle buffer, py::handle offset) {
    std::uint64_t ud = to_u64(user_data, "user_data");
    std::int32_t file = to_fd(fd, "fd");
    std::uint64_t off = to_offset(offset, "offset");
    PinnedBuffer buf = pin_buffer(buffer, !Write, "buffer");
    Prepared p;
    std::uint32_t len = checked_len(buf.size, "buffer");
    if constexpr (Write) {
        prep_write(p.sqe, ud, file, buf.data, len, off);
    } else {
        prep_read(p.sqe, ud, file, buf.data, len, off);
    }
    p.pins.push_back(std::move(buf.pin));
    return p;
}

template <bool Write>
Prepared make_rw_vectored(py::handle user_data, py::handle fd, py::handle iovecs,
                          py::handle offset) {
    std::uint64_t ud = to_u64(user_data, "user_data");
    std::int32_t file = to_fd(fd, "fd");
    std::uint64_t off = to_offset(offset, "offset");
    PinnedIovecs vec = pin_iovecs(iovecs, !Write, "iovecs");
    Prepared p;
    if constexpr (Write) {
        prep_writev(p.sqe, ud, file, vec.iovecs, vec.count, off);
    } else {
        prep_readv(p.sqe, ud, file, vec.iovecs, vec.count, off);
    }
    p.pins = std::move(vec.pins);
    return p;
}

Prepared make_fsync(py::handle user_data, py::handle fd, py::handle flags) {
    Prepared p;
    std::uint64_t ud = to_u64(user_data, "user_data");
    std::int32_t file = to_fd(fd, "fd");
    std::uint32_t fsync_flags = to_u32(flags, "flags");
    if ((fsync_flags & ~kFsyncDatasync) != 0) {
        raise(PyExc_ValueError, "flags: only FsyncFlags.DATASYNC is defined");
    }
    prep_fsync(p.sqe, ud, file, fsync_flags);
    return p;
}

// The buffer of a fixed operation must lie inside registered buffer `index`; the registration
// (not this call) keeps the memory alive, see Ring::flush().
template <bool Write>
Prepared make_rw_fixed(const Ring& ring, py::handle user_data, py::handle fd, py::handle buffer,
                       py::handle offset, py::handle buffer_index) {
    std::uint64_t ud = to_u64(user_data, "user_data");
    std::int32_t file = to_fd(fd, "fd");
    std::uint64_t off = to_offset(offset, "offset");
    std::uint16_t index = to_u16(buffer_index, "buffer_index");
    BufferExport view;
    view.acquire(buffer, !Write, "buffer");
    const RegisteredBuffers* registered = ring.registered_buffers();
    if (registered == nullptr) {
        raise(PyExc_ValueError, "buffer_index: no buffers are registered with this ring");
    }
    if (index >= registered->iovecs.size()) {
        raise(PyExc_ValueError, "buffer_index " + std::to_string(index) + " is out of range (" +
                                    std::to_string(registered->iovecs.size()) +
                                    " buffers registered)");
    }
    const Iovec& reg = registered->iovecs[index];
    auto start = reinterpret_cast<std::uintptr_t>(view.data());
    if (start < reg.base || start + view.size() > reg.base + reg.len) {
        raise(PyExc_ValueError, "buffer must lie inside registered buffer " +
                                    std::to_string(index) +
                                    " (pass a memoryview slice of the registered buffer)");
    }
    Prepared p;
    std::uint32_t len = checked_len(view.size(), "buffer");
    if constexpr (Write) {
        prep_write_fixed(p.sqe, ud, file, view.data(), len, off, index);
    } else {
        prep_read_fixed(p.sqe, ud, file, view.data(), len, off, index);
    }
    return p;
}

Prepared make_splice(py::handle user_data, py::handle fd_in, py::handle off_in, py::handle fd_out,
                     py::handle off_out, py::handle len, py::handle flags) {
    Prepared p;
    std::uint64_t ud = to_u64(user_data, "user_data");
    std::int32_t in = to_fd(fd_in, "fd_in");
    std::uint64_t in_off = to_offset(off_in, "off_in");
    std::int32_t out = to_fd(fd_out, "fd_out");
    std::uint64_t out_off = to_offset(off_out, "off_out");
    std::uint32_t nbytes = to_u32(len, "len");
    std::uint32_t splice_flags = to_u32(flags, "flags");
    prep_splice(p.sqe, ud, in, in_off, out, out_off, nbytes, splice_flags);
    return p;
}

Prepared make_openat(py::handle user_data, py::handle dir_fd, py::handle path, py::handle flags,
                     py::handle mode) {
    std::uint64_t ud = to_u64(user_data, "user_data");
    std::int32_t dir = to_fd(dir_fd, "dir_fd");
    std::uint32_t open_flags = static_cast<std::uint32_t>(to_i32(flags, "flags"));
    std::uint32_t file_mode = to_u32(mode, "mode");
    PinnedPath copy = pin_path(path, "path");
    Prepared p;
    prep_openat(p.sqe, ud, dir, copy.c_str, open_flags, file_mode);
    p.pins.push_back(std::move(copy.pin));
    return p;
}

Prepared make_close(py::handle user_data, py::handle fd) {
    Prepared p;
    std::uint64_t ud = to_u64(user_data, "user_data");
    prep_close(p.sqe, ud, to_fd(fd, "fd"));
    return p;
}

// Fixed-buffer operations need the ring to check the buffer against its registration.
template <bool Write>
void def_fixed_op(RingClass& ring, SqeClass& sqe, const char* ring_name, const char* prep_name,
                  const char* doc) {
    auto args = std::make_tuple(py::arg("user_data"), py::arg("fd"), py::arg("buffer"),
                                py::arg("offset"), py::arg("buffer_index"));
    ring.def(
        ring_name,
        [](const std::shared_ptr<Ring>& r, py::handle ud, py::handle fd, py::handle buf,
           py::handle off, py::handle index) {
            r->check_usable();
            return SqeHandle{r, r->push(make_rw_fixed<Write>(*r, ud, fd, buf, off, index))};
        },
        std::get<0>(args), std::get<1>(args), std::get<2>(args), std::get<3>(args),
        std::get<4>(args), doc);
    sqe.def(
        prep_name,
        [](py::object self, py::handle ud, py::handle fd, py::handle buf, py::handle off,
           py::handle index) {
            const SqeHandle& h = self.cast<const SqeHandle&>();
            h.ring->check_usable();
            h.ring->prepare(h.position, make_rw_fixed<Write>(*h.ring, ud, fd, buf, off, index));
            return self;
        },
        std::get<0>(args), std::get<1>(args), std::get<2>(args), std::get<3>(args),
        std::get<4>(args), doc);
}

}  // namespace

void register_ops(RingClass& ring, SqeClass& sqe) {
    mark_plain({Op::NOP, Op::READV, Op::WRITEV, Op::FSYNC, Op::READ_FIXED, Op::WRITE_FIXED,
                Op::READ, Op::WRITE, Op::SPLICE, Op::OPENAT, Op::CLOSE});
    def_op(ring, sqe, "nop", "prep_nop", &make_nop,
           "Prepares a no-op that completes with res 0. Matches io_uring_prep_nop(3).",
           py::arg("user_data"));
    def_op(ring, sqe, "read", "prep_read", &make_rw<false>,
           "Prepares a read of len(buffer) bytes from fd at offset (-1: the current position) "
           "into buffer, a writable bytes-like object kept alive until the completion is "
           "reaped. Raises TypeError for a read-only buffer. Matches io_uring_prep_read(3).",
           py::arg("user_data"), py::arg("fd"), py::arg("buffer"), py::arg("offset"));
    def_op(ring, sqe, "write", "prep_write", &make_rw<true>,
           "Prepares a write of buffer (any bytes-like object, kept alive until the completion "
           "is reaped) to fd at offset (-1: the current position). Matches "
           "io_uring_prep_write(3).",
           py::arg("user_data"), py::arg("fd"), py::arg("buffer"), py::arg("offset"));
    def_op(ring, sqe, "readv", "prep_readv", &make_rw_vectored<false>,
           "Prepares a vectored read into a sequence of writable buffers (at most 1024), kept "
           "alive with a private copy of the iovec array until the completion is reaped. "
           "Matches io_uring_prep_readv(3).",
           py::arg("user_data"), py::arg("fd"), py::arg("iovecs"), py::arg("offset"));
    def_op(ring, sqe, "writev", "prep_writev", &make_rw_vectored<true>,
           "Prepares a vectored write from a sequence of buffers (at most 1024). Matches "
           "io_uring_prep_writev(3).",
           py::arg("user_data"), py::arg("fd"), py::arg("iovecs"), py::arg("offset"));
    def_op(ring, sqe, "fsync", "prep_fsync", &make_fsync,
           "Prepares an fsync of fd; flags=FsyncFlags.DATASYNC for fdatasync. Link it after "
           "writes (SqeFlags.IO_LINK) to order it. Matches io_uring_prep_fsync(3).",
           py::arg("user_data"), py::arg("fd"), py::arg("flags") = 0);
    def_fixed_op<false>(ring, sqe, "read_fixed", "prep_read_fixed",
                        "Prepares a read into registered buffer buffer_index; buffer must lie "
                        "inside it (a memoryview slice of the registered object). Raises "
                        "ValueError otherwise. Matches io_uring_prep_read_fixed(3).");
    def_fixed_op<true>(ring, sqe, "write_fixed", "prep_write_fixed",
                       "Prepares a write from registered buffer buffer_index; buffer must lie "
                       "inside it. Matches io_uring_prep_write_fixed(3).");
    def_op(ring, sqe, "splice", "prep_splice", &make_splice,
           "Prepares a splice of len bytes from fd_in at off_in to fd_out at off_out; an "
           "offset of -1 means none (required for pipes). Matches io_uring_prep_splice(3).",
           py::arg("user_data"), py::arg("fd_in"), py::arg("off_in"), py::arg("fd_out"),
           py::arg("off_out"), py::arg("len"), py::arg("flags") = 0);
    def_op(ring, sqe, "openat", "prep_openat", &make_openat,
           "Prepares an openat of path (str, bytes or os.PathLike; a private copy is kept) "
           "relative to dir_fd (os.AT_FDCWD for the working directory); res is the new fd. "
           "Matches io_uring_prep_openat(3).",
           py::arg("user_data"), py::arg("dir_fd"), py::arg("path"), py::arg("flags"),
           py::arg("mode") = 0666);
    def_op(ring, sqe, "close_fd", "prep_close", &make_close,
           "Prepares a close of fd. (The ring method is close_fd because close() closes the "
           "ring.) Matches io_uring_prep_close(3).",
           py::arg("user_data"), py::arg("fd"));
}

}  // namespace iouring::bindings
