// Preparation of the control family of operations (see sqe.hpp for the conventions: every helper
// funnels into prep_rw() and sets the kernel's field layout of liburing's helper of the same
// name). Structs of the kernel ABI that only this family uses are defined here, with
// static_asserts on their layout.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>

#include "abi.hpp"
#include "sqe.hpp"

namespace iouring {

// ---------------------------------------------------------------------------------------------
// ABI structs and constants of the control family

// struct epoll_event: packed on x86-64 only (12 bytes there, 16 elsewhere), as in the kernel.
#if defined(__x86_64__)
struct __attribute__((packed)) EpollEvent {
    std::uint32_t events;
    std::uint64_t data;
};
static_assert(sizeof(EpollEvent) == 12);
static_assert(offsetof(EpollEvent, data) == 4);
#else
struct EpollEvent {
    std::uint32_t events;
    std::uint64_t data;
};
static_assert(sizeof(EpollEvent) == 16);
static_assert(offsetof(EpollEvent, data) == 8);
#endif

// struct futex_waitv (futex_waitv(2)): one futex of a vectored wait.
struct FutexWaitv {
    std::uint64_t val;
    std::uint64_t uaddr;
    std::uint32_t flags;  // FUTEX2_*
    std::uint32_t reserved;
};
static_assert(sizeof(FutexWaitv) == 24);
static_assert(offsetof(FutexWaitv, uaddr) == 8);
static_assert(offsetof(FutexWaitv, flags) == 16);
inline constexpr std::uint32_t kFutexWaitvMax = 128;
inline constexpr std::uint64_t kFutexBitsetMatchAny = 0xffffffffu;

// FUTEX2_* flags of the futex operations (futex_flags, carried in sqe.fd).
namespace futex2 {
inline constexpr std::uint32_t SIZE_U8 = 0x00;
inline constexpr std::uint32_t SIZE_U16 = 0x01;
inline constexpr std::uint32_t SIZE_U32 = 0x02;
inline constexpr std::uint32_t SIZE_U64 = 0x03;
inline constexpr std::uint32_t SIZE_MASK = 0x03;
inline constexpr std::uint32_t NUMA = 0x04;
inline constexpr std::uint32_t PRIVATE = 128;
}  // namespace futex2

// The part of siginfo_t that waitid fills for SIGCHLD (the kernel writes si_signo, si_errno,
// si_code, si_pid, si_uid and si_status, and may touch the whole 128-byte struct).
struct Siginfo {
    // Field names without the si_ prefix: libc defines si_pid & co. as macros.
    std::int32_t signo;
    std::int32_t error;
    std::int32_t code;
    std::int32_t pad0;
    std::int32_t pid;
    std::uint32_t uid;
    std::int32_t status;
    std::int32_t pad1;
    std::uint8_t rest[96];
};
static_assert(sizeof(Siginfo) == 128);
static_assert(offsetof(Siginfo, code) == 8);
static_assert(offsetof(Siginfo, pid) == 16);
static_assert(offsetof(Siginfo, uid) == 20);
static_assert(offsetof(Siginfo, status) == 24);

// IORING_POLL_* (carried in sqe.len of POLL_ADD / POLL_REMOVE)
namespace poll {
inline constexpr std::uint32_t ADD_MULTI = 1u << 0;
inline constexpr std::uint32_t UPDATE_EVENTS = 1u << 1;
inline constexpr std::uint32_t UPDATE_USER_DATA = 1u << 2;
inline constexpr std::uint32_t ADD_LEVEL = 1u << 3;
}  // namespace poll

// IORING_MSG_* commands (sqe.addr) and IORING_MSG_RING_* flags (sqe.op_flags)
namespace msg_ring {
inline constexpr std::uint64_t DATA = 0;
inline constexpr std::uint64_t SEND_FD = 1;
inline constexpr std::uint32_t CQE_SKIP = 1u << 0;
inline constexpr std::uint32_t FLAGS_PASS = 1u << 1;
}  // namespace msg_ring

// IORING_NOP_* (sqe.op_flags of NOP)
namespace nop_flags {
inline constexpr std::uint32_t INJECT_RESULT = 1u << 0;
inline constexpr std::uint32_t FILE = 1u << 1;
inline constexpr std::uint32_t FIXED_FILE = 1u << 2;
inline constexpr std::uint32_t FIXED_BUFFER = 1u << 3;
inline constexpr std::uint32_t TW = 1u << 4;
inline constexpr std::uint32_t CQE32 = 1u << 5;
}  // namespace nop_flags

inline constexpr std::uint32_t kFixedFdNoCloexec = 1u << 0;  // IORING_FIXED_FD_NO_CLOEXEC

// ---------------------------------------------------------------------------------------------
// Timeouts

// Completes with -ETIME when `ts` passes, or with 0 once `count` other completions were posted
// (count 0: time only). The kernel reads *ts when the operation is issued (and on update).
inline void prep_timeout(Sqe& sqe, std::uint64_t user_data, const KernelTimespec* ts,
                         std::uint32_t count, std::uint32_t flags) noexcept {
    prep_rw(sqe, Op::TIMEOUT, -1, address_of(ts), 1, count, user_data);
    sqe.op_flags = flags;
}

inline void prep_timeout_remove(Sqe& sqe, std::uint64_t user_data, std::uint64_t target_user_data,
                                std::uint32_t flags) noexcept {
    prep_rw(sqe, Op::TIMEOUT_REMOVE, -1, target_user_data, 0, 0, user_data);
    sqe.op_flags = flags;
}

// addr = the target's user_data, off (addr2) = the new timespec; UPDATE is always set.
inline void prep_timeout_update(Sqe& sqe, std::uint64_t user_data, const KernelTimespec* ts,
                                std::uint64_t target_user_data, std::uint32_t flags) noexcept {
    prep_rw(sqe, Op::TIMEOUT_REMOVE, -1, target_user_data, 0, address_of(ts), user_data);
    sqe.op_flags = flags | timeout::UPDATE;
}

inline void prep_link_timeout(Sqe& sqe, std::uint64_t user_data, const KernelTimespec* ts,
                              std::uint32_t flags) noexcept {
    prep_rw(sqe, Op::LINK_TIMEOUT, -1, address_of(ts), 1, 0, user_data);
    sqe.op_flags = flags;
}

// ---------------------------------------------------------------------------------------------
// Cancellation (prep_cancel, by user_data, is in sqe.hpp)

inline void prep_cancel_fd(Sqe& sqe, std::uint64_t user_data, std::int32_t fd,
                           std::uint32_t cancel_flags) noexcept {
    prep_rw(sqe, Op::ASYNC_CANCEL, fd, 0, 0, 0, user_data);
    sqe.op_flags = cancel_flags | cancel::FD;
}

// Every match criterion at once: the kernel uses fd with cancel::FD, opcode (in len) with
// cancel::OP and target_user_data unless cancel::ANY (or FD/OP without USERDATA) is given.
inline void prep_cancel_match(Sqe& sqe, std::uint64_t user_data, std::uint64_t target_user_data,
                              std::int32_t fd, std::uint32_t opcode,
                              std::uint32_t cancel_flags) noexcept {
    prep_rw(sqe, Op::ASYNC_CANCEL, fd, target_user_data, opcode, 0, user_data);
    sqe.op_flags = cancel_flags;
}

// ---------------------------------------------------------------------------------------------
// Polling

// poll32_events: stored as a little-endian u32, with the halves swapped on big-endian hosts.
inline std::uint32_t poll_mask_word(std::uint32_t mask) noexcept {
    if constexpr (std::endian::native == std::endian::big) return (mask << 16) | (mask >> 16);
    return mask;
}

inline void prep_poll_add(Sqe& sqe, std::uint64_t user_data, std::int32_t fd,
                          std::uint32_t poll_mask) noexcept {
    prep_rw(sqe, Op::POLL_ADD, fd, 0, 0, 0, user_data);
    sqe.op_flags = poll_mask_word(poll_mask);
}

inline void prep_poll_multishot(Sqe& sqe, std::uint64_t user_data, std::int32_t fd,
                                std::uint32_t poll_mask) noexcept {
    prep_poll_add(sqe, user_data, fd, poll_mask);
    sqe.len = poll::ADD_MULTI;
}

inline void prep_poll_remove(Sqe& sqe, std::uint64_t user_data,
                             std::uint64_t target_user_data) noexcept {
    prep_rw(sqe, Op::POLL_REMOVE, -1, target_user_data, 0, 0, user_data);
}

// addr = old user_data, off = new user_data, len = poll:: update flags.
inline void prep_poll_update(Sqe& sqe, std::uint64_t user_data, std::uint64_t old_user_data,
                             std::uint64_t new_user_data, std::uint32_t poll_mask,
                             std::uint32_t flags) noexcept {
    prep_rw(sqe, Op::POLL_REMOVE, -1, old_user_data, flags, new_user_data, user_data);
    sqe.op_flags = poll_mask_word(poll_mask);
}

inline void prep_epoll_ctl(Sqe& sqe, std::uint64_t user_data, std::int32_t epfd, std::int32_t fd,
                           std::uint32_t op, const EpollEvent* ev) noexcept {
    prep_rw(sqe, Op::EPOLL_CTL, epfd, address_of(ev), op,
            static_cast<std::uint64_t>(static_cast<std::uint32_t>(fd)), user_data);
}

inline void prep_epoll_wait(Sqe& sqe, std::uint64_t user_data, std::int32_t epfd,
                            EpollEvent* events, std::uint32_t maxevents,
                            std::uint32_t flags) noexcept {
    prep_rw(sqe, Op::EPOLL_WAIT, epfd, address_of(events), maxevents, 0, user_data);
    sqe.op_flags = flags;
}

// ---------------------------------------------------------------------------------------------
// Messages between rings

// Posts a CQE {user_data: data, res: len} into the ring `fd`.
inline void prep_msg_ring(Sqe& sqe, std::uint64_t user_data, std::int32_t fd, std::uint32_t len,
                          std::uint64_t data, std::uint32_t flags) noexcept {
    prep_rw(sqe, Op::MSG_RING, fd, msg_ring::DATA, len, data, user_data);
    sqe.op_flags = flags;
}

// The same, with the target CQE's flags (IORING_MSG_RING_FLAGS_PASS; cqe_flags in file_index).
inline void prep_msg_ring_cqe_flags(Sqe& sqe, std::uint64_t user_data, std::int32_t fd,
                                    std::uint32_t len, std::uint64_t data, std::uint32_t flags,
                                    std::uint32_t cqe_flags) noexcept {
    prep_msg_ring(sqe, user_data, fd, len, data, flags | msg_ring::FLAGS_PASS);
    sqe.splice_fd_in = static_cast<std::int32_t>(cqe_flags);
}

// Installs our registered file `source_fd` into slot `target_fd` (or kFileIndexAlloc) of ring
// `fd`; the target CQE carries user_data `data` unless msg_ring::CQE_SKIP is given.
inline void prep_msg_ring_fd(Sqe& sqe, std::uint64_t user_data, std::int32_t fd,
                             std::uint32_t source_fd, std::uint32_t target_fd, std::uint64_t data,
                             std::uint32_t flags) noexcept {
    prep_rw(sqe, Op::MSG_RING, fd, msg_ring::SEND_FD, 0, data, user_data);
    sqe.addr3 = source_fd;
    set_target_fixed_file(sqe, target_fd);
    sqe.op_flags = flags;
}

inline void prep_msg_ring_fd_alloc(Sqe& sqe, std::uint64_t user_data, std::int32_t fd,
                                   std::uint32_t source_fd, std::uint64_t data,
                                   std::uint32_t flags) noexcept {
    prep_msg_ring_fd(sqe, user_data, fd, source_fd, kFileIndexAlloc, data, flags);
}

// ---------------------------------------------------------------------------------------------
// Processes and futexes

// fd = id, len = idtype, off (addr2) = siginfo output, file_index = options.
inline void prep_waitid(Sqe& sqe, std::uint64_t user_data, std::uint32_t idtype, std::int32_t id,
                        Siginfo* infop, std::uint32_t options, std::uint32_t flags) noexcept {
    prep_rw(sqe, Op::WAITID, id, 0, idtype, address_of(infop), user_data);
    sqe.op_flags = flags;
    sqe.splice_fd_in = static_cast<std::int32_t>(options);
}

// fd = futex_flags (FUTEX2_*), addr = the futex word, off (addr2) = value, addr3 = mask.
inline void prep_futex_wait(Sqe& sqe, std::uint64_t user_data, const void* futex, std::uint64_t val,
                            std::uint64_t mask, std::uint32_t futex_flags,
                            std::uint32_t flags) noexcept {
    prep_rw(sqe, Op::FUTEX_WAIT, static_cast<std::int32_t>(futex_flags), address_of(futex), 0, val,
            user_data);
    sqe.op_flags = flags;
    sqe.addr3 = mask;
}

inline void prep_futex_wake(Sqe& sqe, std::uint64_t user_data, const void* futex, std::uint64_t val,
                            std::uint64_t mask, std::uint32_t futex_flags,
                            std::uint32_t flags) noexcept {
    prep_rw(sqe, Op::FUTEX_WAKE, static_cast<std::int32_t>(futex_flags), address_of(futex), 0, val,
            user_data);
    sqe.op_flags = flags;
    sqe.addr3 = mask;
}

inline void prep_futex_waitv(Sqe& sqe, std::uint64_t user_data, const FutexWaitv* futexes,
                             std::uint32_t count, std::uint32_t flags) noexcept {
    prep_rw(sqe, Op::FUTEX_WAITV, 0, address_of(futexes), count, 0, user_data);
    sqe.op_flags = flags;
}

// ---------------------------------------------------------------------------------------------
// Registered files and NOPs

// Turns registered file `fd` (a slot) into a normal descriptor, returned in res.
inline void prep_fixed_fd_install(Sqe& sqe, std::uint64_t user_data, std::int32_t fd,
                                  std::uint32_t flags) noexcept {
    prep_rw(sqe, Op::FIXED_FD_INSTALL, fd, 0, 0, 0, user_data);
    sqe.flags = sqe_flags::FIXED_FILE;
    sqe.op_flags = flags;
}

// Replaces `count` slots from `offset`; with offset kFileIndexAlloc the kernel picks the
// slots and writes them back into fds[].
inline void prep_files_update(Sqe& sqe, std::uint64_t user_data, std::int32_t* fds,
                              std::uint32_t count, std::uint32_t offset) noexcept {
    prep_rw(sqe, Op::FILES_UPDATE, -1, address_of(fds), count, offset, user_data);
}

// A NOP that completes with res = `res` (IORING_NOP_INJECT_RESULT, carried in len).
inline void prep_nop_inject(Sqe& sqe, std::uint64_t user_data, std::int32_t res,
                            std::uint32_t flags) noexcept {
    prep_rw(sqe, Op::NOP, 0, 0, static_cast<std::uint32_t>(res), 0, user_data);
    sqe.op_flags = flags | nop_flags::INJECT_RESULT;
}

}  // namespace iouring
