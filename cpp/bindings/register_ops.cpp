// The operations of the foundation: nop, read/write (plain, vectored, fixed, vectored fixed),
// fsync, splice, openat, close. See ops.hpp for how each becomes two methods; the fixed-buffer
// ones are defined with def_op (the overload whose converter takes the ring), as their checks need
// the ring's registration.
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

}  // namespace

// [data, data + size) must lie inside registered buffer `index` of `ring` (nullptr with size 0
// checks only that the buffer exists); the registration, not the operation, keeps that memory
// alive (see Ring::flush()). Shared with the fixed-buffer sends of register_ops_net.cpp.
void check_registered_range(const Ring& ring, std::uint16_t index, const void* data,
                            std::size_t size, const std::string& name) {
    const RegisteredBuffers* registered = ring.registered_buffers();
    RangeFault fault = registered_range(registered, index, reinterpret_cast<std::uintptr_t>(data),
                                        size, false);
    if (fault == RangeFault::NothingRegistered) {
        raise(PyExc_ValueError, "buffer_index: no buffers are registered with this ring");
    }
    if (fault == RangeFault::BadIndex) {
        raise(PyExc_ValueError, "buffer_index " + std::to_string(index) + " is out of range (" +
                                    std::to_string(registered->iovecs.size()) +
                                    " buffers registered)");
    }
    bool empty_array = data == nullptr && size == 0;  // no iovecs: only the index is checked
    if (!empty_array && fault == RangeFault::Outside) {
        raise(PyExc_ValueError, name + " must lie inside registered buffer " +
                                    std::to_string(index) +
                                    " (pass a memoryview slice of the registered buffer)");
    }
}

namespace {

template <bool Write>
Prepared make_rw_fixed(const Ring& ring, py::handle user_data, py::handle fd, py::handle buffer,
                       py::handle offset, py::handle buffer_index) {
    std::uint64_t ud = to_u64(user_data, "user_data");
    std::int32_t file = to_fd(fd, "fd");
    std::uint64_t off = to_offset(offset, "offset");
    std::uint16_t index = to_u16(buffer_index, "buffer_index");
    BufferExport view;
    view.acquire(buffer, !Write, "buffer");
    check_registered_range(ring, index, view.data(), view.size(), "buffer");
    Prepared p;
    std::uint32_t len = checked_len(view.size(), "buffer");
    if constexpr (Write) {
        prep_write_fixed(p.sqe, ud, file, view.data(), len, off, index);
    } else {
        prep_read_fixed(p.sqe, ud, file, view.data(), len, off, index);
    }
    return p;
}

// Vectored I/O on a registered buffer: every iovec must lie inside it. The iovec array is a
// private copy (the kernel reads it when it takes the SQE); the buffers are pinned too, so a
// bytearray cannot be resized under an operation in flight.
template <bool Write>
Prepared make_rwv_fixed(const Ring& ring, py::handle user_data, py::handle fd, py::handle iovecs,
                        py::handle offset, py::handle buffer_index, py::handle flags) {
    std::uint64_t ud = to_u64(user_data, "user_data");
    std::int32_t file = to_fd(fd, "fd");
    std::uint64_t off = to_offset(offset, "offset");
    std::uint16_t index = to_u16(buffer_index, "buffer_index");
    std::uint32_t rw_flags = to_u32(flags, "flags");
    PinnedIovecs vec = pin_iovecs(iovecs, !Write, "iovecs");
    for (std::uint32_t i = 0; i < vec.count; ++i) {
        const Iovec& v = vec.iovecs[i];
        check_registered_range(ring, index, reinterpret_cast<const void*>(v.base), v.len,
                               "iovecs[" + std::to_string(i) + "]");
    }
    if (vec.count == 0) check_registered_range(ring, index, nullptr, 0, "iovecs");
    Prepared p;
    if constexpr (Write) {
        prep_writev_fixed(p.sqe, ud, file, vec.iovecs, vec.count, off, rw_flags, index);
    } else {
        prep_readv_fixed(p.sqe, ud, file, vec.iovecs, vec.count, off, rw_flags, index);
    }
    p.pins = std::move(vec.pins);
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
    std::uint32_t flags_in = to_u32(flags, "flags");
    check_bits(flags_in, splice_flags::ALL, "flags",
               "SPLICE_F_MOVE, NONBLOCK, MORE, GIFT and SPLICE_F_FD_IN_FIXED");
    prep_splice(p.sqe, ud, in, in_off, out, out_off, nbytes, flags_in);
    return p;
}

Prepared make_openat(py::handle user_data, py::handle dir_fd, py::handle path, py::handle flags,
                     py::handle mode) {
    std::uint64_t ud = to_u64(user_data, "user_data");
    std::int32_t dir = to_dir_fd(dir_fd, "dir_fd");
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

}  // namespace

void register_ops(py::module_& /*m*/, RingClass& ring, SqeClass& sqe) {
    // Every core operation, generated from tools/ops_spec.py by tools/gen_ops.py.
#include "generated/ops_core.inc"
}

}  // namespace iouring::bindings
