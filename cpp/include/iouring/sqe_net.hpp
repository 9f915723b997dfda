// Preparation of the net family of operations (see sqe.hpp for the conventions: every helper
// funnels into prep_rw() and sets the kernel's field layout of liburing's helper of the same
// name). Structs of the kernel ABI that only this family uses are defined here, with
// static_asserts on their layout.
//
// Layouts worth remembering:
// - accept: addr = sockaddr*, off (addr2) = socklen_t*, accept4 flags in op_flags, ioprio =
//   accept:: bits; the direct variants put slot + 1 (or kFileIndexAlloc) in file_index.
// - connect/bind: addr = sockaddr*, off = addrlen (a value, not a pointer).
// - send/recv: msg flags in op_flags, ioprio = recvsend:: bits; sendto adds the destination in
//   off (addr2) and its length in the low 16 bits of splice_fd_in (addr_len).
// - socket: fd = domain, off = type, len = protocol.
// - socket commands (URING_CMD): off = cmd_op, addr = level | optname << 32,
//   splice_fd_in = optlen, addr3 = optval.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <sys/socket.h>

#include "abi.hpp"
#include "sqe.hpp"

namespace iouring {

// send/recv flags in sqe.ioprio (IORING_RECVSEND_*, IORING_RECV_MULTISHOT, ...)
namespace recvsend {
inline constexpr std::uint16_t POLL_FIRST = 1u << 0;
inline constexpr std::uint16_t RECV_MULTISHOT = 1u << 1;
inline constexpr std::uint16_t FIXED_BUF = 1u << 2;
inline constexpr std::uint16_t SEND_ZC_REPORT_USAGE = 1u << 3;
inline constexpr std::uint16_t BUNDLE = 1u << 4;
inline constexpr std::uint16_t SEND_VECTORIZED = 1u << 5;
}  // namespace recvsend

// cqe.res bit of a send_zc notification when SEND_ZC_REPORT_USAGE was asked for: the kernel
// copied (at least part of) the data instead of sending it from the buffer.
inline constexpr std::uint32_t kNotifUsageZcCopied = 1u << 31;

// accept flags in sqe.ioprio (IORING_ACCEPT_*)
namespace accept {
inline constexpr std::uint16_t MULTISHOT = 1u << 0;
inline constexpr std::uint16_t DONTWAIT = 1u << 1;
inline constexpr std::uint16_t POLL_FIRST = 1u << 2;
}  // namespace accept

// Socket commands of IORING_OP_URING_CMD (enum io_uring_socket_op).
namespace socket_cmd {
inline constexpr std::uint32_t SIOCINQ = 0;
inline constexpr std::uint32_t SIOCOUTQ = 1;
inline constexpr std::uint32_t GETSOCKOPT = 2;
inline constexpr std::uint32_t SETSOCKOPT = 3;
inline constexpr std::uint32_t TX_TIMESTAMP = 4;
inline constexpr std::uint32_t GETSOCKNAME = 5;
}  // namespace socket_cmd

// The header a multishot recvmsg writes at the start of each provided buffer; the source
// address (msg_namelen bytes reserved), the control data (msg_controllen bytes reserved) and
// the payload follow it.
struct RecvmsgOut {
    std::uint32_t namelen;     // full length of the source address (may exceed the space)
    std::uint32_t controllen;  // control bytes written
    std::uint32_t payloadlen;  // full payload length (may exceed what fit: MSG_TRUNC)
    std::uint32_t flags;       // msg_flags
};
static_assert(sizeof(RecvmsgOut) == 16);
static_assert(offsetof(RecvmsgOut, payloadlen) == 8);

inline void prep_socket(Sqe& sqe, std::uint64_t user_data, std::int32_t domain, std::int32_t type,
                        std::int32_t protocol, std::uint32_t flags) noexcept {
    prep_rw(sqe, Op::SOCKET, domain, 0, static_cast<std::uint32_t>(protocol),
            static_cast<std::uint32_t>(type), user_data);
    sqe.op_flags = flags;
}

inline void prep_socket_direct(Sqe& sqe, std::uint64_t user_data, std::int32_t domain,
                               std::int32_t type, std::int32_t protocol, std::uint32_t file_index,
                               std::uint32_t flags) noexcept {
    prep_socket(sqe, user_data, domain, type, protocol, flags);
    set_target_fixed_file(sqe, file_index);
}

inline void prep_socket_direct_alloc(Sqe& sqe, std::uint64_t user_data, std::int32_t domain,
                                     std::int32_t type, std::int32_t protocol,
                                     std::uint32_t flags) noexcept {
    prep_socket_direct(sqe, user_data, domain, type, protocol, kFileIndexAlloc, flags);
}

inline void prep_bind(Sqe& sqe, std::uint64_t user_data, std::int32_t fd, const sockaddr* addr,
                      socklen_t addrlen) noexcept {
    prep_rw(sqe, Op::BIND, fd, address_of(addr), 0, addrlen, user_data);
}

inline void prep_listen(Sqe& sqe, std::uint64_t user_data, std::int32_t fd,
                        std::int32_t backlog) noexcept {
    prep_rw(sqe, Op::LISTEN, fd, 0, static_cast<std::uint32_t>(backlog), 0, user_data);
}

// addr/addrlen may both be null (the peer's address is not wanted); else the kernel reads
// *addrlen as the space at addr and writes the address's full length back.
inline void prep_accept(Sqe& sqe, std::uint64_t user_data, std::int32_t fd, sockaddr* addr,
                        socklen_t* addrlen, std::uint32_t flags) noexcept {
    prep_rw(sqe, Op::ACCEPT, fd, address_of(addr), 0, address_of(addrlen), user_data);
    sqe.op_flags = flags;
}

inline void prep_accept_direct(Sqe& sqe, std::uint64_t user_data, std::int32_t fd, sockaddr* addr,
                               socklen_t* addrlen, std::uint32_t flags,
                               std::uint32_t file_index) noexcept {
    prep_accept(sqe, user_data, fd, addr, addrlen, flags);
    set_target_fixed_file(sqe, file_index);
}

inline void prep_multishot_accept(Sqe& sqe, std::uint64_t user_data, std::int32_t fd,
                                  sockaddr* addr, socklen_t* addrlen,
                                  std::uint32_t flags) noexcept {
    prep_accept(sqe, user_data, fd, addr, addrlen, flags);
    sqe.ioprio |= accept::MULTISHOT;
}

inline void prep_multishot_accept_direct(Sqe& sqe, std::uint64_t user_data, std::int32_t fd,
                                         sockaddr* addr, socklen_t* addrlen,
                                         std::uint32_t flags) noexcept {
    prep_multishot_accept(sqe, user_data, fd, addr, addrlen, flags);
    set_target_fixed_file(sqe, kFileIndexAlloc);
}

inline void prep_connect(Sqe& sqe, std::uint64_t user_data, std::int32_t fd, const sockaddr* addr,
                         socklen_t addrlen) noexcept {
    prep_rw(sqe, Op::CONNECT, fd, address_of(addr), 0, addrlen, user_data);
}

inline void prep_send(Sqe& sqe, std::uint64_t user_data, std::int32_t fd, const void* buf,
                      std::uint32_t len, std::uint32_t msg_flags) noexcept {
    prep_rw(sqe, Op::SEND, fd, address_of(buf), len, 0, user_data);
    sqe.op_flags = msg_flags;
}

// The destination of a send/send_zc: addr2 and addr_len (the low 16 bits of splice_fd_in).
inline void prep_send_set_addr(Sqe& sqe, const sockaddr* dest, std::uint16_t addrlen) noexcept {
    sqe.off = address_of(dest);
    // struct { __u16 addr_len; __u16 __pad3[1]; } overlays splice_fd_in.
    sqe.splice_fd_in = 0;
    std::memcpy(&sqe.splice_fd_in, &addrlen, sizeof(addrlen));
}

inline void prep_sendto(Sqe& sqe, std::uint64_t user_data, std::int32_t fd, const void* buf,
                        std::uint32_t len, std::uint32_t msg_flags, const sockaddr* dest,
                        std::uint16_t addrlen) noexcept {
    prep_send(sqe, user_data, fd, buf, len, msg_flags);
    prep_send_set_addr(sqe, dest, addrlen);
}

// Sends from the provided buffers of group `buf_group` (IOSQE_BUFFER_SELECT), as many as `len`
// bytes (0: no limit) across consecutive buffers.
inline void prep_send_bundle(Sqe& sqe, std::uint64_t user_data, std::int32_t fd, std::uint32_t len,
                             std::uint32_t msg_flags, std::uint16_t buf_group) noexcept {
    prep_send(sqe, user_data, fd, nullptr, len, msg_flags);
    sqe.ioprio |= recvsend::BUNDLE;
    sqe.flags |= sqe_flags::BUFFER_SELECT;
    sqe.buf_index = buf_group;
}

// A send of `count` buffers described by `iovecs` (IORING_SEND_VECTORIZED, Linux 6.17+): addr and
// len name the iovec array instead of one buffer, as writev does on a file. Older kernels refuse
// the ioprio bit with -EINVAL.
inline void prep_send_vectorized(Sqe& sqe, std::uint64_t user_data, std::int32_t fd,
                                 const Iovec* iovecs, std::uint32_t count,
                                 std::uint32_t msg_flags) noexcept {
    prep_send(sqe, user_data, fd, iovecs, count, msg_flags);
    sqe.ioprio |= recvsend::SEND_VECTORIZED;
}

// Two completions: the result (flagged MORE), then a notification (flagged NOTIF) once the
// kernel no longer reads `buf`.
inline void prep_send_zc(Sqe& sqe, std::uint64_t user_data, std::int32_t fd, const void* buf,
                         std::uint32_t len, std::uint32_t msg_flags,
                         std::uint16_t zc_flags) noexcept {
    prep_rw(sqe, Op::SEND_ZC, fd, address_of(buf), len, 0, user_data);
    sqe.op_flags = msg_flags;
    sqe.ioprio = zc_flags;
}

// A zero-copy send from registered buffer `buf_index`: [buf, buf + len) must lie inside it.
inline void prep_send_zc_fixed(Sqe& sqe, std::uint64_t user_data, std::int32_t fd, const void* buf,
                               std::uint32_t len, std::uint32_t msg_flags, std::uint16_t zc_flags,
                               std::uint16_t buf_index) noexcept {
    prep_send_zc(sqe, user_data, fd, buf, len, msg_flags, zc_flags);
    sqe.ioprio |= recvsend::FIXED_BUF;
    sqe.buf_index = buf_index;
}

inline void prep_recv(Sqe& sqe, std::uint64_t user_data, std::int32_t fd, void* buf,
                      std::uint32_t len, std::uint32_t msg_flags) noexcept {
    prep_rw(sqe, Op::RECV, fd, address_of(buf), len, 0, user_data);
    sqe.op_flags = msg_flags;
}

// A receive into a provided buffer of group `buf_group` (at most `len` bytes; 0: the whole
// buffer).
inline void prep_recv_select(Sqe& sqe, std::uint64_t user_data, std::int32_t fd, std::uint32_t len,
                             std::uint32_t msg_flags, std::uint16_t buf_group) noexcept {
    prep_recv(sqe, user_data, fd, nullptr, len, msg_flags);
    sqe.flags |= sqe_flags::BUFFER_SELECT;
    sqe.buf_index = buf_group;
}

// Multishot receive: one completion per received chunk, each in a provided buffer of
// `buf_group`, flagged MORE until the last.
inline void prep_recv_multishot(Sqe& sqe, std::uint64_t user_data, std::int32_t fd,
                                std::uint32_t len, std::uint32_t msg_flags,
                                std::uint16_t buf_group) noexcept {
    prep_recv_select(sqe, user_data, fd, len, msg_flags, buf_group);
    sqe.ioprio |= recvsend::RECV_MULTISHOT;
}

// A receive that may fill several consecutive provided buffers; cqe.res is the total and the
// CQE's buffer id the first buffer.
inline void prep_recv_bundle(Sqe& sqe, std::uint64_t user_data, std::int32_t fd,
                             std::uint32_t msg_flags, std::uint16_t buf_group) noexcept {
    prep_recv_select(sqe, user_data, fd, 0, msg_flags, buf_group);
    sqe.ioprio |= recvsend::BUNDLE;
}

inline void prep_sendmsg(Sqe& sqe, std::uint64_t user_data, std::int32_t fd, const msghdr* msg,
                         std::uint32_t msg_flags) noexcept {
    prep_rw(sqe, Op::SENDMSG, fd, address_of(msg), 1, 0, user_data);
    sqe.op_flags = msg_flags;
}

inline void prep_sendmsg_zc(Sqe& sqe, std::uint64_t user_data, std::int32_t fd, const msghdr* msg,
                            std::uint32_t msg_flags) noexcept {
    prep_sendmsg(sqe, user_data, fd, msg, msg_flags);
    sqe.opcode = static_cast<std::uint8_t>(Op::SENDMSG_ZC);
}

// A zero-copy sendmsg whose iovecs all lie inside registered buffer `buf_index` (6.15+).
inline void prep_sendmsg_zc_fixed(Sqe& sqe, std::uint64_t user_data, std::int32_t fd,
                                  const msghdr* msg, std::uint32_t msg_flags,
                                  std::uint16_t buf_index) noexcept {
    prep_sendmsg_zc(sqe, user_data, fd, msg, msg_flags);
    sqe.ioprio |= recvsend::FIXED_BUF;
    sqe.buf_index = buf_index;
}

// The kernel writes msg_namelen, msg_controllen and msg_flags back into *msg.
inline void prep_recvmsg(Sqe& sqe, std::uint64_t user_data, std::int32_t fd, msghdr* msg,
                         std::uint32_t msg_flags) noexcept {
    prep_rw(sqe, Op::RECVMSG, fd, address_of(msg), 1, 0, user_data);
    sqe.op_flags = msg_flags;
}

// Each completion lands in a provided buffer of `buf_group`, framed as RecvmsgOut + name +
// control + payload; msg supplies the space reserved for name and control.
inline void prep_recvmsg_multishot(Sqe& sqe, std::uint64_t user_data, std::int32_t fd, msghdr* msg,
                                   std::uint32_t msg_flags, std::uint16_t buf_group) noexcept {
    prep_recvmsg(sqe, user_data, fd, msg, msg_flags);
    sqe.ioprio |= recvsend::RECV_MULTISHOT;
    sqe.flags |= sqe_flags::BUFFER_SELECT;
    sqe.buf_index = buf_group;
}

inline void prep_shutdown(Sqe& sqe, std::uint64_t user_data, std::int32_t fd,
                          std::int32_t how) noexcept {
    prep_rw(sqe, Op::SHUTDOWN, fd, 0, static_cast<std::uint32_t>(how), 0, user_data);
}

// A socket command: SIOCINQ/SIOCOUTQ (res = the byte count), GETSOCKOPT (the kernel writes
// optval; res = the option's length) or SETSOCKOPT (the kernel reads optval).
inline void prep_cmd_sock(Sqe& sqe, std::uint64_t user_data, std::uint32_t cmd_op, std::int32_t fd,
                          std::int32_t level, std::int32_t optname, void* optval,
                          std::int32_t optlen) noexcept {
    prep_rw(sqe, Op::URING_CMD, fd, 0, 0, cmd_op, user_data);
    // struct { __u32 level; __u32 optname; } overlays addr.
    const std::int32_t level_optname[2] = {level, optname};
    std::memcpy(&sqe.addr, level_optname, sizeof(level_optname));
    sqe.splice_fd_in = optlen;
    sqe.addr3 = address_of(optval);
}

}  // namespace iouring
