// Preparation of the fs family of operations (see sqe.hpp for the conventions: every helper
// funnels into prep_rw() and sets the kernel's field layout of liburing's helper of the same
// name). Structs of the kernel ABI that only this family uses are defined here, with
// static_asserts on their layout.
#pragma once

#include <cstddef>
#include <cstdint>

#include "abi.hpp"
#include "sqe.hpp"

namespace iouring {

// ---------------------------------------------------------------------------------------------
// ABI structs and constants of the fs family

// struct open_how (openat2(2)): copied by the kernel at prep time, sqe.len holds its size.
struct OpenHow {
    std::uint64_t flags;
    std::uint64_t mode;
    std::uint64_t resolve;  // RESOLVE_*
};
static_assert(sizeof(OpenHow) == 24);
static_assert(offsetof(OpenHow, flags) == 0);
static_assert(offsetof(OpenHow, mode) == 8);
static_assert(offsetof(OpenHow, resolve) == 16);

// struct statx_timestamp
struct StatxTimestamp {
    std::int64_t tv_sec;
    std::uint32_t tv_nsec;
    std::int32_t reserved;
};
static_assert(sizeof(StatxTimestamp) == 16);

// struct statx (statx(2)): 256 bytes, written by the kernel when the operation runs.
struct Statx {
    std::uint32_t stx_mask;
    std::uint32_t stx_blksize;
    std::uint64_t stx_attributes;
    std::uint32_t stx_nlink;
    std::uint32_t stx_uid;
    std::uint32_t stx_gid;
    std::uint16_t stx_mode;
    std::uint16_t spare0;
    std::uint64_t stx_ino;
    std::uint64_t stx_size;
    std::uint64_t stx_blocks;
    std::uint64_t stx_attributes_mask;
    StatxTimestamp stx_atime;
    StatxTimestamp stx_btime;
    StatxTimestamp stx_ctime;
    StatxTimestamp stx_mtime;
    std::uint32_t stx_rdev_major;
    std::uint32_t stx_rdev_minor;
    std::uint32_t stx_dev_major;
    std::uint32_t stx_dev_minor;
    std::uint64_t stx_mnt_id;
    std::uint32_t stx_dio_mem_align;
    std::uint32_t stx_dio_offset_align;
    std::uint64_t stx_subvol;
    std::uint32_t stx_atomic_write_unit_min;
    std::uint32_t stx_atomic_write_unit_max;
    std::uint32_t stx_atomic_write_segments_max;
    std::uint32_t stx_dio_read_offset_align;
    std::uint32_t stx_atomic_write_unit_max_opt;
    std::uint32_t spare2;
    std::uint64_t spare3[8];
};
static_assert(sizeof(Statx) == 256);
static_assert(offsetof(Statx, stx_blksize) == 4);
static_assert(offsetof(Statx, stx_attributes) == 8);
static_assert(offsetof(Statx, stx_nlink) == 16);
static_assert(offsetof(Statx, stx_uid) == 20);
static_assert(offsetof(Statx, stx_gid) == 24);
static_assert(offsetof(Statx, stx_mode) == 28);
static_assert(offsetof(Statx, stx_ino) == 32);
static_assert(offsetof(Statx, stx_size) == 40);
static_assert(offsetof(Statx, stx_blocks) == 48);
static_assert(offsetof(Statx, stx_attributes_mask) == 56);
static_assert(offsetof(Statx, stx_atime) == 64);
static_assert(offsetof(Statx, stx_btime) == 80);
static_assert(offsetof(Statx, stx_ctime) == 96);
static_assert(offsetof(Statx, stx_mtime) == 112);
static_assert(offsetof(Statx, stx_rdev_major) == 128);
static_assert(offsetof(Statx, stx_dev_major) == 136);
static_assert(offsetof(Statx, stx_mnt_id) == 144);
static_assert(offsetof(Statx, stx_dio_mem_align) == 152);
static_assert(offsetof(Statx, stx_subvol) == 160);
static_assert(offsetof(Statx, stx_atomic_write_unit_min) == 168);
static_assert(offsetof(Statx, stx_dio_read_offset_align) == 180);
static_assert(offsetof(Statx, spare3) == 192);

// STATX_* request/result mask bits
namespace statx_mask {
inline constexpr std::uint32_t TYPE = 0x1;
inline constexpr std::uint32_t MODE = 0x2;
inline constexpr std::uint32_t NLINK = 0x4;
inline constexpr std::uint32_t UID = 0x8;
inline constexpr std::uint32_t GID = 0x10;
inline constexpr std::uint32_t ATIME = 0x20;
inline constexpr std::uint32_t MTIME = 0x40;
inline constexpr std::uint32_t CTIME = 0x80;
inline constexpr std::uint32_t INO = 0x100;
inline constexpr std::uint32_t SIZE = 0x200;
inline constexpr std::uint32_t BLOCKS = 0x400;
inline constexpr std::uint32_t BASIC_STATS = 0x7ff;
inline constexpr std::uint32_t BTIME = 0x800;
inline constexpr std::uint32_t MNT_ID = 0x1000;
inline constexpr std::uint32_t DIOALIGN = 0x2000;
inline constexpr std::uint32_t MNT_ID_UNIQUE = 0x4000;
inline constexpr std::uint32_t SUBVOL = 0x8000;
inline constexpr std::uint32_t WRITE_ATOMIC = 0x10000;
inline constexpr std::uint32_t DIO_READ_ALIGN = 0x20000;
}  // namespace statx_mask

// AT_* flags of the *at() calls (statx, unlinkat, linkat, ...)
inline constexpr std::int32_t kAtFdcwd = -100;
namespace at_flags {
inline constexpr std::uint32_t SYMLINK_NOFOLLOW = 0x100;
inline constexpr std::uint32_t REMOVEDIR = 0x200;
inline constexpr std::uint32_t SYMLINK_FOLLOW = 0x400;
inline constexpr std::uint32_t NO_AUTOMOUNT = 0x800;
inline constexpr std::uint32_t EMPTY_PATH = 0x1000;
inline constexpr std::uint32_t STATX_FORCE_SYNC = 0x2000;
inline constexpr std::uint32_t STATX_DONT_SYNC = 0x4000;
}  // namespace at_flags

// RESOLVE_* (open_how.resolve)
namespace resolve {
inline constexpr std::uint64_t NO_XDEV = 0x01;
inline constexpr std::uint64_t NO_MAGICLINKS = 0x02;
inline constexpr std::uint64_t NO_SYMLINKS = 0x04;
inline constexpr std::uint64_t BENEATH = 0x08;
inline constexpr std::uint64_t IN_ROOT = 0x10;
inline constexpr std::uint64_t CACHED = 0x20;
}  // namespace resolve

// FALLOC_FL_* (fallocate mode)
namespace falloc {
inline constexpr std::uint32_t KEEP_SIZE = 0x01;
inline constexpr std::uint32_t PUNCH_HOLE = 0x02;
inline constexpr std::uint32_t NO_HIDE_STALE = 0x04;
inline constexpr std::uint32_t COLLAPSE_RANGE = 0x08;
inline constexpr std::uint32_t ZERO_RANGE = 0x10;
inline constexpr std::uint32_t INSERT_RANGE = 0x20;
inline constexpr std::uint32_t UNSHARE_RANGE = 0x40;
inline constexpr std::uint32_t WRITE_ZEROES = 0x80;
}  // namespace falloc

// SYNC_FILE_RANGE_*
namespace sync_range {
inline constexpr std::uint32_t WAIT_BEFORE = 1;
inline constexpr std::uint32_t WRITE = 2;
inline constexpr std::uint32_t WAIT_AFTER = 4;
}  // namespace sync_range

// RENAME_* (renameat2 flags)
namespace rename_flags {
inline constexpr std::uint32_t NOREPLACE = 1;
inline constexpr std::uint32_t EXCHANGE = 2;
inline constexpr std::uint32_t WHITEOUT = 4;
}  // namespace rename_flags

// XATTR_* (setxattr flags)
namespace xattr_flags {
inline constexpr std::uint32_t CREATE = 1;
inline constexpr std::uint32_t REPLACE = 2;
}  // namespace xattr_flags

// Direct descriptors: set_target_fixed_file() (sqe.hpp) stores slot + 1 in file_index, or
// kFileIndexAlloc for "any free slot, returned in res".

// ---------------------------------------------------------------------------------------------
// Reads and writes with flags

inline void prep_readv2(Sqe& sqe, std::uint64_t user_data, std::int32_t fd, const Iovec* iovecs,
                        std::uint32_t count, std::uint64_t offset,
                        std::uint32_t rw_flags) noexcept {
    prep_readv(sqe, user_data, fd, iovecs, count, offset);
    sqe.op_flags = rw_flags;
}

inline void prep_writev2(Sqe& sqe, std::uint64_t user_data, std::int32_t fd, const Iovec* iovecs,
                         std::uint32_t count, std::uint64_t offset,
                         std::uint32_t rw_flags) noexcept {
    prep_writev(sqe, user_data, fd, iovecs, count, offset);
    sqe.op_flags = rw_flags;
}

// ---------------------------------------------------------------------------------------------
// Syncing, space and advice

inline void prep_sync_file_range(Sqe& sqe, std::uint64_t user_data, std::int32_t fd,
                                 std::uint32_t len, std::uint64_t offset,
                                 std::uint32_t flags) noexcept {
    prep_rw(sqe, Op::SYNC_FILE_RANGE, fd, 0, len, offset, user_data);
    sqe.op_flags = flags;
}

// The odd layout: len holds the mode and addr the length.
inline void prep_fallocate(Sqe& sqe, std::uint64_t user_data, std::int32_t fd, std::uint32_t mode,
                           std::uint64_t offset, std::uint64_t len) noexcept {
    prep_rw(sqe, Op::FALLOCATE, fd, len, mode, offset, user_data);
}

inline void prep_fadvise(Sqe& sqe, std::uint64_t user_data, std::int32_t fd, std::uint64_t offset,
                         std::uint32_t len, std::uint32_t advice) noexcept {
    prep_rw(sqe, Op::FADVISE, fd, 0, len, offset, user_data);
    sqe.op_flags = advice;
}

// 64-bit length in addr (kernels that read it; older ones read only len).
inline void prep_fadvise64(Sqe& sqe, std::uint64_t user_data, std::int32_t fd, std::uint64_t offset,
                           std::uint64_t len, std::uint32_t advice) noexcept {
    prep_rw(sqe, Op::FADVISE, fd, len, 0, offset, user_data);
    sqe.op_flags = advice;
}

// The kernel rounds [addr, addr + len) out to whole pages: see the bindings for what that
// means for memory the caller does not own.
inline void prep_madvise(Sqe& sqe, std::uint64_t user_data, void* addr, std::uint32_t len,
                         std::uint32_t advice) noexcept {
    prep_rw(sqe, Op::MADVISE, -1, address_of(addr), len, 0, user_data);
    sqe.op_flags = advice;
}

inline void prep_ftruncate(Sqe& sqe, std::uint64_t user_data, std::int32_t fd,
                           std::uint64_t len) noexcept {
    prep_rw(sqe, Op::FTRUNCATE, fd, 0, 0, len, user_data);
}

// ---------------------------------------------------------------------------------------------
// Opening and closing

inline void prep_openat2(Sqe& sqe, std::uint64_t user_data, std::int32_t dir_fd, const char* path,
                         const OpenHow* how) noexcept {
    prep_rw(sqe, Op::OPENAT2, dir_fd, address_of(path), sizeof(OpenHow), address_of(how),
            user_data);
}

inline void prep_openat_direct(Sqe& sqe, std::uint64_t user_data, std::int32_t dir_fd,
                               const char* path, std::uint32_t open_flags, std::uint32_t mode,
                               std::uint32_t file_index) noexcept {
    prep_openat(sqe, user_data, dir_fd, path, open_flags, mode);
    set_target_fixed_file(sqe, file_index);
}

inline void prep_openat2_direct(Sqe& sqe, std::uint64_t user_data, std::int32_t dir_fd,
                                const char* path, const OpenHow* how,
                                std::uint32_t file_index) noexcept {
    prep_openat2(sqe, user_data, dir_fd, path, how);
    set_target_fixed_file(sqe, file_index);
}

inline void prep_close_direct(Sqe& sqe, std::uint64_t user_data,
                              std::uint32_t file_index) noexcept {
    prep_close(sqe, user_data, 0);
    set_target_fixed_file(sqe, file_index);
}

// ---------------------------------------------------------------------------------------------
// Metadata and names

inline void prep_statx(Sqe& sqe, std::uint64_t user_data, std::int32_t dir_fd, const char* path,
                       std::uint32_t flags, std::uint32_t mask, Statx* statxbuf) noexcept {
    prep_rw(sqe, Op::STATX, dir_fd, address_of(path), mask, address_of(statxbuf), user_data);
    sqe.op_flags = flags;
}

// fd = old dir, len = new dir, off (addr2) = new path.
inline void prep_renameat(Sqe& sqe, std::uint64_t user_data, std::int32_t old_dir_fd,
                          const char* old_path, std::int32_t new_dir_fd, const char* new_path,
                          std::uint32_t flags) noexcept {
    prep_rw(sqe, Op::RENAMEAT, old_dir_fd, address_of(old_path),
            static_cast<std::uint32_t>(new_dir_fd), address_of(new_path), user_data);
    sqe.op_flags = flags;
}

inline void prep_unlinkat(Sqe& sqe, std::uint64_t user_data, std::int32_t dir_fd, const char* path,
                          std::uint32_t flags) noexcept {
    prep_rw(sqe, Op::UNLINKAT, dir_fd, address_of(path), 0, 0, user_data);
    sqe.op_flags = flags;
}

inline void prep_mkdirat(Sqe& sqe, std::uint64_t user_data, std::int32_t dir_fd, const char* path,
                         std::uint32_t mode) noexcept {
    prep_rw(sqe, Op::MKDIRAT, dir_fd, address_of(path), mode, 0, user_data);
}

inline void prep_symlinkat(Sqe& sqe, std::uint64_t user_data, const char* target,
                           std::int32_t new_dir_fd, const char* link_path) noexcept {
    prep_rw(sqe, Op::SYMLINKAT, new_dir_fd, address_of(target), 0, address_of(link_path),
            user_data);
}

inline void prep_linkat(Sqe& sqe, std::uint64_t user_data, std::int32_t old_dir_fd,
                        const char* old_path, std::int32_t new_dir_fd, const char* new_path,
                        std::uint32_t flags) noexcept {
    prep_rw(sqe, Op::LINKAT, old_dir_fd, address_of(old_path),
            static_cast<std::uint32_t>(new_dir_fd), address_of(new_path), user_data);
    sqe.op_flags = flags;
}

// Extended attributes: addr = name, off (addr2) = value, len = value size, addr3 = path.
inline void prep_getxattr(Sqe& sqe, std::uint64_t user_data, const char* name, void* value,
                          const char* path, std::uint32_t len) noexcept {
    prep_rw(sqe, Op::GETXATTR, 0, address_of(name), len, address_of(value), user_data);
    sqe.addr3 = address_of(path);
}

inline void prep_setxattr(Sqe& sqe, std::uint64_t user_data, const char* name, const void* value,
                          const char* path, std::uint32_t flags, std::uint32_t len) noexcept {
    prep_rw(sqe, Op::SETXATTR, 0, address_of(name), len, address_of(value), user_data);
    sqe.addr3 = address_of(path);
    sqe.op_flags = flags;
}

inline void prep_fgetxattr(Sqe& sqe, std::uint64_t user_data, std::int32_t fd, const char* name,
                           void* value, std::uint32_t len) noexcept {
    prep_rw(sqe, Op::FGETXATTR, fd, address_of(name), len, address_of(value), user_data);
}

inline void prep_fsetxattr(Sqe& sqe, std::uint64_t user_data, std::int32_t fd, const char* name,
                           const void* value, std::uint32_t flags, std::uint32_t len) noexcept {
    prep_rw(sqe, Op::FSETXATTR, fd, address_of(name), len, address_of(value), user_data);
    sqe.op_flags = flags;
}

// ---------------------------------------------------------------------------------------------
// Pipes

inline void prep_tee(Sqe& sqe, std::uint64_t user_data, std::int32_t fd_in, std::int32_t fd_out,
                     std::uint32_t len, std::uint32_t splice_flags) noexcept {
    prep_rw(sqe, Op::TEE, fd_out, 0, len, 0, user_data);
    sqe.splice_fd_in = fd_in;
    sqe.op_flags = splice_flags;
}

// The kernel writes the two new descriptors (or slots) into fds[0..1].
inline void prep_pipe(Sqe& sqe, std::uint64_t user_data, std::int32_t* fds,
                      std::uint32_t pipe_flags) noexcept {
    prep_rw(sqe, Op::PIPE, 0, address_of(fds), 0, 0, user_data);
    sqe.op_flags = pipe_flags;
}

inline void prep_pipe_direct(Sqe& sqe, std::uint64_t user_data, std::int32_t* fds,
                             std::uint32_t pipe_flags, std::uint32_t file_index) noexcept {
    prep_pipe(sqe, user_data, fds, pipe_flags);
    set_target_fixed_file(sqe, file_index);
}

}  // namespace iouring
