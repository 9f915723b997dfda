// Preparation of submission queue entries. Every helper funnels into prep_rw(), which writes
// every field of the entry, so a prepared SQE never carries leftovers of an earlier operation.
// Field layouts follow the kernel (and liburing's io_uring_prep_* of the same name).
#pragma once

#include <cstdint>

#include "abi.hpp"

namespace iouring {

inline void prep_rw(Sqe& sqe, Op op, std::int32_t fd, std::uint64_t addr, std::uint32_t len,
                    std::uint64_t offset, std::uint64_t user_data = 0) noexcept {
    sqe.opcode = static_cast<std::uint8_t>(op);
    sqe.flags = 0;
    sqe.ioprio = 0;
    sqe.fd = fd;
    sqe.off = offset;
    sqe.addr = addr;
    sqe.len = len;
    sqe.op_flags = 0;
    sqe.user_data = user_data;
    sqe.buf_index = 0;
    sqe.personality = 0;
    sqe.splice_fd_in = 0;
    sqe.addr3 = 0;
    sqe.pad2 = 0;
}

inline std::uint64_t address_of(const void* p) noexcept {
    return static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(p));
}

// Points an operation that creates a file (openat, accept, socket, ... "_direct" variants) at
// fixed-file slot `file_index` instead of the fd table; kFileIndexAlloc lets the kernel pick a
// free slot and return it in res. The kernel takes the slot plus one (0 means "no slot").
inline void set_target_fixed_file(Sqe& sqe, std::uint32_t file_index) noexcept {
    std::uint32_t encoded = file_index == kFileIndexAlloc ? kFileIndexAlloc : file_index + 1;
    sqe.splice_fd_in = static_cast<std::int32_t>(encoded);
}

inline void prep_nop(Sqe& sqe, std::uint64_t user_data) noexcept {
    prep_rw(sqe, Op::NOP, 0, 0, 0, 0, user_data);
}

inline void prep_read(Sqe& sqe, std::uint64_t user_data, std::int32_t fd, void* buf,
                      std::uint32_t len, std::uint64_t offset) noexcept {
    prep_rw(sqe, Op::READ, fd, address_of(buf), len, offset, user_data);
}

inline void prep_write(Sqe& sqe, std::uint64_t user_data, std::int32_t fd, const void* buf,
                       std::uint32_t len, std::uint64_t offset) noexcept {
    prep_rw(sqe, Op::WRITE, fd, address_of(buf), len, offset, user_data);
}

inline void prep_readv(Sqe& sqe, std::uint64_t user_data, std::int32_t fd, const Iovec* iovecs,
                       std::uint32_t count, std::uint64_t offset) noexcept {
    prep_rw(sqe, Op::READV, fd, address_of(iovecs), count, offset, user_data);
}

inline void prep_writev(Sqe& sqe, std::uint64_t user_data, std::int32_t fd, const Iovec* iovecs,
                        std::uint32_t count, std::uint64_t offset) noexcept {
    prep_rw(sqe, Op::WRITEV, fd, address_of(iovecs), count, offset, user_data);
}

inline void prep_fsync(Sqe& sqe, std::uint64_t user_data, std::int32_t fd,
                       std::uint32_t fsync_flags) noexcept {
    prep_rw(sqe, Op::FSYNC, fd, 0, 0, 0, user_data);
    sqe.op_flags = fsync_flags;
}

inline void prep_read_fixed(Sqe& sqe, std::uint64_t user_data, std::int32_t fd, void* buf,
                            std::uint32_t len, std::uint64_t offset,
                            std::uint16_t buf_index) noexcept {
    prep_rw(sqe, Op::READ_FIXED, fd, address_of(buf), len, offset, user_data);
    sqe.buf_index = buf_index;
}

inline void prep_write_fixed(Sqe& sqe, std::uint64_t user_data, std::int32_t fd, const void* buf,
                             std::uint32_t len, std::uint64_t offset,
                             std::uint16_t buf_index) noexcept {
    prep_rw(sqe, Op::WRITE_FIXED, fd, address_of(buf), len, offset, user_data);
    sqe.buf_index = buf_index;
}

// Vectored I/O on registered buffer `buf_index` (6.15+): every iovec must lie inside that
// buffer; the kernel copies the iovec array when it takes the SQE and resolves buf_index at
// issue time. rw_flags are preadv2/pwritev2 flags; `op` is READV_FIXED or WRITEV_FIXED.
inline void prep_rw_vectored_fixed(Sqe& sqe, Op op, std::uint64_t user_data, std::int32_t fd,
                                   const Iovec* iovecs, std::uint32_t count, std::uint64_t offset,
                                   std::uint32_t rw_flags, std::uint16_t buf_index) noexcept {
    prep_rw(sqe, op, fd, address_of(iovecs), count, offset, user_data);
    sqe.op_flags = rw_flags;
    sqe.buf_index = buf_index;
}

inline void prep_readv_fixed(Sqe& sqe, std::uint64_t user_data, std::int32_t fd,
                             const Iovec* iovecs, std::uint32_t count, std::uint64_t offset,
                             std::uint32_t rw_flags, std::uint16_t buf_index) noexcept {
    prep_rw_vectored_fixed(sqe, Op::READV_FIXED, user_data, fd, iovecs, count, offset, rw_flags,
                           buf_index);
}

inline void prep_writev_fixed(Sqe& sqe, std::uint64_t user_data, std::int32_t fd,
                              const Iovec* iovecs, std::uint32_t count, std::uint64_t offset,
                              std::uint32_t rw_flags, std::uint16_t buf_index) noexcept {
    prep_rw_vectored_fixed(sqe, Op::WRITEV_FIXED, user_data, fd, iovecs, count, offset, rw_flags,
                           buf_index);
}

// splice/tee flags: SPLICE_F_* of splice(2), plus io_uring's SPLICE_F_FD_IN_FIXED (fd_in is a
// registered-file index).
namespace splice_flags {
inline constexpr std::uint32_t MOVE = 1u << 0;
inline constexpr std::uint32_t NONBLOCK = 1u << 1;
inline constexpr std::uint32_t MORE = 1u << 2;
inline constexpr std::uint32_t GIFT = 1u << 3;
inline constexpr std::uint32_t FD_IN_FIXED = 1u << 31;
inline constexpr std::uint32_t ALL = MOVE | NONBLOCK | MORE | GIFT | FD_IN_FIXED;
}  // namespace splice_flags

// The odd one: fd/off describe the output, while the input's offset sits in the addr slot and
// its fd in splice_fd_in. kNoOffset means "no offset" (required for pipes).
inline void prep_splice(Sqe& sqe, std::uint64_t user_data, std::int32_t fd_in, std::uint64_t off_in,
                        std::int32_t fd_out, std::uint64_t off_out, std::uint32_t len,
                        std::uint32_t splice_flags) noexcept {
    prep_rw(sqe, Op::SPLICE, fd_out, off_in, len, off_out, user_data);
    sqe.splice_fd_in = fd_in;
    sqe.op_flags = splice_flags;
}

inline void prep_openat(Sqe& sqe, std::uint64_t user_data, std::int32_t dir_fd, const char* path,
                        std::uint32_t open_flags, std::uint32_t mode) noexcept {
    prep_rw(sqe, Op::OPENAT, dir_fd, address_of(path), mode, 0, user_data);
    sqe.op_flags = open_flags;
}

inline void prep_close(Sqe& sqe, std::uint64_t user_data, std::int32_t fd) noexcept {
    prep_rw(sqe, Op::CLOSE, fd, 0, 0, 0, user_data);
}

// Cancels in-flight requests; `flags` are cancel:: bits (ANY|ALL cancels everything).
inline void prep_cancel(Sqe& sqe, std::uint64_t user_data, std::uint64_t target_user_data,
                        std::uint32_t cancel_flags) noexcept {
    prep_rw(sqe, Op::ASYNC_CANCEL, -1, target_user_data, 0, 0, user_data);
    sqe.op_flags = cancel_flags;
}

}  // namespace iouring
