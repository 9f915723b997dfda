// The kernel ABI as abi.hpp spells it: struct sizes and field offsets (also checked by
// static_asserts, repeated here so a failure names the field), every opcode and flag number, the
// mmap offsets, and then the layout as a live kernel fills it in.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <fcntl.h>
#include <sys/uio.h>
#include <vector>

#include "check.hpp"

using namespace iouring;

namespace {

void test_abi_struct_layout() {
    CHECK_EQ(sizeof(Sqe), 64);
    CHECK_EQ(offsetof(Sqe, opcode), 0);
    CHECK_EQ(offsetof(Sqe, flags), 1);
    CHECK_EQ(offsetof(Sqe, ioprio), 2);
    CHECK_EQ(offsetof(Sqe, fd), 4);
    CHECK_EQ(offsetof(Sqe, off), 8);
    CHECK_EQ(offsetof(Sqe, addr), 16);
    CHECK_EQ(offsetof(Sqe, len), 24);
    CHECK_EQ(offsetof(Sqe, op_flags), 28);
    CHECK_EQ(offsetof(Sqe, user_data), 32);
    CHECK_EQ(offsetof(Sqe, buf_index), 40);
    CHECK_EQ(offsetof(Sqe, personality), 42);
    CHECK_EQ(offsetof(Sqe, splice_fd_in), 44);
    CHECK_EQ(offsetof(Sqe, addr3), 48);
    CHECK_EQ(offsetof(Sqe, pad2), 56);

    CHECK_EQ(sizeof(Cqe), 16);
    CHECK_EQ(offsetof(Cqe, user_data), 0);
    CHECK_EQ(offsetof(Cqe, res), 8);
    CHECK_EQ(offsetof(Cqe, flags), 12);

    CHECK_EQ(sizeof(SqRingOffsets), 40);
    CHECK_EQ(offsetof(SqRingOffsets, head), 0);
    CHECK_EQ(offsetof(SqRingOffsets, tail), 4);
    CHECK_EQ(offsetof(SqRingOffsets, ring_mask), 8);
    CHECK_EQ(offsetof(SqRingOffsets, ring_entries), 12);
    CHECK_EQ(offsetof(SqRingOffsets, flags), 16);
    CHECK_EQ(offsetof(SqRingOffsets, dropped), 20);
    CHECK_EQ(offsetof(SqRingOffsets, array), 24);
    CHECK_EQ(offsetof(SqRingOffsets, resv1), 28);
    CHECK_EQ(offsetof(SqRingOffsets, user_addr), 32);

    CHECK_EQ(sizeof(CqRingOffsets), 40);
    CHECK_EQ(offsetof(CqRingOffsets, head), 0);
    CHECK_EQ(offsetof(CqRingOffsets, tail), 4);
    CHECK_EQ(offsetof(CqRingOffsets, ring_mask), 8);
    CHECK_EQ(offsetof(CqRingOffsets, ring_entries), 12);
    CHECK_EQ(offsetof(CqRingOffsets, overflow), 16);
    CHECK_EQ(offsetof(CqRingOffsets, cqes), 20);
    CHECK_EQ(offsetof(CqRingOffsets, flags), 24);
    CHECK_EQ(offsetof(CqRingOffsets, resv1), 28);
    CHECK_EQ(offsetof(CqRingOffsets, user_addr), 32);

    CHECK_EQ(sizeof(Params), 120);
    CHECK_EQ(offsetof(Params, sq_entries), 0);
    CHECK_EQ(offsetof(Params, cq_entries), 4);
    CHECK_EQ(offsetof(Params, flags), 8);
    CHECK_EQ(offsetof(Params, sq_thread_cpu), 12);
    CHECK_EQ(offsetof(Params, sq_thread_idle), 16);
    CHECK_EQ(offsetof(Params, features), 20);
    CHECK_EQ(offsetof(Params, wq_fd), 24);
    CHECK_EQ(offsetof(Params, resv), 28);
    CHECK_EQ(offsetof(Params, sq_off), 40);
    CHECK_EQ(offsetof(Params, cq_off), 80);

    CHECK_EQ(sizeof(ProbeOp), 8);
    CHECK_EQ(offsetof(ProbeOp, op), 0);
    CHECK_EQ(offsetof(ProbeOp, flags), 2);
    CHECK_EQ(offsetof(Probe, last_op), 0);
    CHECK_EQ(offsetof(Probe, ops_len), 1);
    CHECK_EQ(offsetof(Probe, ops), 16);
    CHECK_EQ(sizeof(Probe), 16 + 256 * sizeof(ProbeOp));
    CHECK_EQ(kProbeOpSupported, 1);

    CHECK_EQ(sizeof(FilesUpdate), 16);
    CHECK_EQ(offsetof(FilesUpdate, fds), 8);
    CHECK_EQ(sizeof(RsrcRegister), 32);
    CHECK_EQ(offsetof(RsrcRegister, flags), 4);
    CHECK_EQ(offsetof(RsrcRegister, data), 16);
    CHECK_EQ(offsetof(RsrcRegister, tags), 24);
    CHECK_EQ(sizeof(GeteventsArg), 24);
    CHECK_EQ(offsetof(GeteventsArg, sigmask_sz), 8);
    CHECK_EQ(offsetof(GeteventsArg, min_wait_usec), 12);
    CHECK_EQ(offsetof(GeteventsArg, ts), 16);
    CHECK_EQ(sizeof(KernelTimespec), 16);

    // Iovec must be interchangeable with the C library's struct iovec (64-bit ABI).
    CHECK_EQ(sizeof(Iovec), sizeof(struct iovec));
    CHECK_EQ(offsetof(Iovec, base), offsetof(struct iovec, iov_base));
    CHECK_EQ(offsetof(Iovec, len), offsetof(struct iovec, iov_len));
}

void test_abi_opcodes() {
    // IORING_OP_* in the order of include/uapi/linux/io_uring.h.
    const struct {
        Op op;
        int number;
        const char* name;
    } table[] = {
        {Op::NOP, 0, "NOP"},
        {Op::READV, 1, "READV"},
        {Op::WRITEV, 2, "WRITEV"},
        {Op::FSYNC, 3, "FSYNC"},
        {Op::READ_FIXED, 4, "READ_FIXED"},
        {Op::WRITE_FIXED, 5, "WRITE_FIXED"},
        {Op::POLL_ADD, 6, "POLL_ADD"},
        {Op::POLL_REMOVE, 7, "POLL_REMOVE"},
        {Op::SYNC_FILE_RANGE, 8, "SYNC_FILE_RANGE"},
        {Op::SENDMSG, 9, "SENDMSG"},
        {Op::RECVMSG, 10, "RECVMSG"},
        {Op::TIMEOUT, 11, "TIMEOUT"},
        {Op::TIMEOUT_REMOVE, 12, "TIMEOUT_REMOVE"},
        {Op::ACCEPT, 13, "ACCEPT"},
        {Op::ASYNC_CANCEL, 14, "ASYNC_CANCEL"},
        {Op::LINK_TIMEOUT, 15, "LINK_TIMEOUT"},
        {Op::CONNECT, 16, "CONNECT"},
        {Op::FALLOCATE, 17, "FALLOCATE"},
        {Op::OPENAT, 18, "OPENAT"},
        {Op::CLOSE, 19, "CLOSE"},
        {Op::FILES_UPDATE, 20, "FILES_UPDATE"},
        {Op::STATX, 21, "STATX"},
        {Op::READ, 22, "READ"},
        {Op::WRITE, 23, "WRITE"},
        {Op::FADVISE, 24, "FADVISE"},
        {Op::MADVISE, 25, "MADVISE"},
        {Op::SEND, 26, "SEND"},
        {Op::RECV, 27, "RECV"},
        {Op::OPENAT2, 28, "OPENAT2"},
        {Op::EPOLL_CTL, 29, "EPOLL_CTL"},
        {Op::SPLICE, 30, "SPLICE"},
        {Op::PROVIDE_BUFFERS, 31, "PROVIDE_BUFFERS"},
        {Op::REMOVE_BUFFERS, 32, "REMOVE_BUFFERS"},
        {Op::TEE, 33, "TEE"},
        {Op::SHUTDOWN, 34, "SHUTDOWN"},
        {Op::RENAMEAT, 35, "RENAMEAT"},
        {Op::UNLINKAT, 36, "UNLINKAT"},
        {Op::MKDIRAT, 37, "MKDIRAT"},
        {Op::SYMLINKAT, 38, "SYMLINKAT"},
        {Op::LINKAT, 39, "LINKAT"},
        {Op::MSG_RING, 40, "MSG_RING"},
        {Op::FSETXATTR, 41, "FSETXATTR"},
        {Op::SETXATTR, 42, "SETXATTR"},
        {Op::FGETXATTR, 43, "FGETXATTR"},
        {Op::GETXATTR, 44, "GETXATTR"},
        {Op::SOCKET, 45, "SOCKET"},
        {Op::URING_CMD, 46, "URING_CMD"},
        {Op::SEND_ZC, 47, "SEND_ZC"},
        {Op::SENDMSG_ZC, 48, "SENDMSG_ZC"},
        {Op::READ_MULTISHOT, 49, "READ_MULTISHOT"},
        {Op::WAITID, 50, "WAITID"},
        {Op::FUTEX_WAIT, 51, "FUTEX_WAIT"},
        {Op::FUTEX_WAKE, 52, "FUTEX_WAKE"},
        {Op::FUTEX_WAITV, 53, "FUTEX_WAITV"},
        {Op::FIXED_FD_INSTALL, 54, "FIXED_FD_INSTALL"},
        {Op::FTRUNCATE, 55, "FTRUNCATE"},
        {Op::BIND, 56, "BIND"},
        {Op::LISTEN, 57, "LISTEN"},
        {Op::RECV_ZC, 58, "RECV_ZC"},
        {Op::EPOLL_WAIT, 59, "EPOLL_WAIT"},
        {Op::READV_FIXED, 60, "READV_FIXED"},
        {Op::WRITEV_FIXED, 61, "WRITEV_FIXED"},
        {Op::PIPE, 62, "PIPE"},
        {Op::NOP128, 63, "NOP128"},
        {Op::URING_CMD128, 64, "URING_CMD128"},
        {Op::LAST, 65, "LAST"},
    };
    for (const auto& row : table) {
        if (!CHECK_EQ(static_cast<int>(row.op), row.number)) {
            std::fprintf(stderr, "    opcode %s\n", row.name);
        }
    }
    CHECK_EQ(std::size(table), static_cast<std::size_t>(Op::LAST) + 1);
}

void test_abi_flags() {
    // IORING_SETUP_*
    CHECK_EQ(setup::IOPOLL, 1u << 0);
    CHECK_EQ(setup::SQPOLL, 1u << 1);
    CHECK_EQ(setup::SQ_AFF, 1u << 2);
    CHECK_EQ(setup::CQSIZE, 1u << 3);
    CHECK_EQ(setup::CLAMP, 1u << 4);
    CHECK_EQ(setup::ATTACH_WQ, 1u << 5);
    CHECK_EQ(setup::R_DISABLED, 1u << 6);
    CHECK_EQ(setup::SUBMIT_ALL, 1u << 7);
    CHECK_EQ(setup::COOP_TASKRUN, 1u << 8);
    CHECK_EQ(setup::TASKRUN_FLAG, 1u << 9);
    CHECK_EQ(setup::SQE128, 1u << 10);
    CHECK_EQ(setup::CQE32, 1u << 11);
    CHECK_EQ(setup::SINGLE_ISSUER, 1u << 12);
    CHECK_EQ(setup::DEFER_TASKRUN, 1u << 13);
    CHECK_EQ(setup::NO_MMAP, 1u << 14);
    CHECK_EQ(setup::REGISTERED_FD_ONLY, 1u << 15);
    CHECK_EQ(setup::NO_SQARRAY, 1u << 16);
    CHECK_EQ(setup::HYBRID_IOPOLL, 1u << 17);
    CHECK_EQ(setup::CQE_MIXED, 1u << 18);
    CHECK_EQ(setup::SQE_MIXED, 1u << 19);

    // IOSQE_*
    CHECK_EQ(sqe_flags::FIXED_FILE, 0x01);
    CHECK_EQ(sqe_flags::IO_DRAIN, 0x02);
    CHECK_EQ(sqe_flags::IO_LINK, 0x04);
    CHECK_EQ(sqe_flags::IO_HARDLINK, 0x08);
    CHECK_EQ(sqe_flags::ASYNC, 0x10);
    CHECK_EQ(sqe_flags::BUFFER_SELECT, 0x20);
    CHECK_EQ(sqe_flags::CQE_SKIP_SUCCESS, 0x40);
    CHECK_EQ(sqe_flags::ALL, 0x7f);

    // IORING_ENTER_*
    CHECK_EQ(enter::GETEVENTS, 1u << 0);
    CHECK_EQ(enter::SQ_WAKEUP, 1u << 1);
    CHECK_EQ(enter::SQ_WAIT, 1u << 2);
    CHECK_EQ(enter::EXT_ARG, 1u << 3);
    CHECK_EQ(enter::REGISTERED_RING, 1u << 4);
    CHECK_EQ(enter::ABS_TIMER, 1u << 5);
    CHECK_EQ(enter::EXT_ARG_REG, 1u << 6);
    CHECK_EQ(enter::NO_IOWAIT, 1u << 7);

    // IORING_FEAT_*
    CHECK_EQ(feat::SINGLE_MMAP, 1u << 0);
    CHECK_EQ(feat::NODROP, 1u << 1);
    CHECK_EQ(feat::SUBMIT_STABLE, 1u << 2);
    CHECK_EQ(feat::RW_CUR_POS, 1u << 3);
    CHECK_EQ(feat::CUR_PERSONALITY, 1u << 4);
    CHECK_EQ(feat::FAST_POLL, 1u << 5);
    CHECK_EQ(feat::POLL_32BITS, 1u << 6);
    CHECK_EQ(feat::SQPOLL_NONFIXED, 1u << 7);
    CHECK_EQ(feat::EXT_ARG, 1u << 8);
    CHECK_EQ(feat::NATIVE_WORKERS, 1u << 9);
    CHECK_EQ(feat::RSRC_TAGS, 1u << 10);
    CHECK_EQ(feat::CQE_SKIP, 1u << 11);
    CHECK_EQ(feat::LINKED_FILE, 1u << 12);
    CHECK_EQ(feat::REG_REG_RING, 1u << 13);
    CHECK_EQ(feat::RECVSEND_BUNDLE, 1u << 14);
    CHECK_EQ(feat::MIN_TIMEOUT, 1u << 15);
    CHECK_EQ(feat::RW_ATTR, 1u << 16);
    CHECK_EQ(feat::NO_IOWAIT, 1u << 17);

    // IORING_SQ_*, IORING_CQ_*, IORING_CQE_F_*
    CHECK_EQ(sq_ring::NEED_WAKEUP, 1u << 0);
    CHECK_EQ(sq_ring::CQ_OVERFLOW, 1u << 1);
    CHECK_EQ(sq_ring::TASKRUN, 1u << 2);
    CHECK_EQ(cq_ring::EVENTFD_DISABLED, 1u << 0);
    CHECK_EQ(cqe_flags::BUFFER, 1u << 0);
    CHECK_EQ(cqe_flags::MORE, 1u << 1);
    CHECK_EQ(cqe_flags::SOCK_NONEMPTY, 1u << 2);
    CHECK_EQ(cqe_flags::NOTIF, 1u << 3);
    CHECK_EQ(cqe_flags::BUF_MORE, 1u << 4);
    CHECK_EQ(cqe_flags::BUFFER_SHIFT, 16);

    // IORING_REGISTER_* (the ones the core uses, and the ends of the range)
    CHECK_EQ(RegisterOp::REGISTER_BUFFERS, 0);
    CHECK_EQ(RegisterOp::UNREGISTER_BUFFERS, 1);
    CHECK_EQ(RegisterOp::REGISTER_FILES, 2);
    CHECK_EQ(RegisterOp::UNREGISTER_FILES, 3);
    CHECK_EQ(RegisterOp::REGISTER_EVENTFD, 4);
    CHECK_EQ(RegisterOp::UNREGISTER_EVENTFD, 5);
    CHECK_EQ(RegisterOp::REGISTER_FILES_UPDATE, 6);
    CHECK_EQ(RegisterOp::REGISTER_PROBE, 8);
    CHECK_EQ(RegisterOp::REGISTER_ENABLE_RINGS, 12);
    CHECK_EQ(RegisterOp::REGISTER_FILES2, 13);
    CHECK_EQ(RegisterOp::REGISTER_RING_FDS, 20);
    CHECK_EQ(RegisterOp::REGISTER_PBUF_RING, 22);
    CHECK_EQ(RegisterOp::REGISTER_SYNC_CANCEL, 24);
    CHECK_EQ(RegisterOp::REGISTER_CLOCK, 29);
    CHECK_EQ(RegisterOp::REGISTER_RESIZE_RINGS, 33);
    CHECK_EQ(kRegisterUseRegisteredRing, 1u << 31);

    // Operation constants
    CHECK_EQ(kFsyncDatasync, 1u);
    CHECK_EQ(kSpliceFdInFixed, 1u << 31);
    CHECK_EQ(kFileIndexAlloc, 0xffffffffu);
    CHECK_EQ(kRegisterFilesSkip, -2);
    CHECK_EQ(kNoOffset, static_cast<std::uint64_t>(-1));
    CHECK_EQ(kRsrcRegisterSparse, 1u);
    CHECK_EQ(kMaxEntries, 32768);
    CHECK_EQ(kSyscallSetup, 425);
    CHECK_EQ(kSyscallEnter, 426);
    CHECK_EQ(kSyscallRegister, 427);
}

void test_abi_mmap_offsets() {
    CHECK_EQ(kOffSqRing, 0);
    CHECK_EQ(kOffCqRing, 0x8000000);
    CHECK_EQ(kOffSqes, 0x10000000);
}

// The same layout as a live kernel sees it: a raw io_uring_setup must fill Params where we read
// it, the ring words we map must hold the entries and masks it reports, and the SQE array must
// map at kOffSqes.
void test_abi_kernel_params() {
    Params p{};
    int fd = sys::io_uring_setup(4, &p);
    if (!CHECK(fd >= 0)) return;
    CHECK_EQ(p.sq_entries, 4);
    CHECK_EQ(p.cq_entries, 8);
    CHECK_EQ(p.flags, 0);
    CHECK((p.features & feat::SINGLE_MMAP) != 0);
    CHECK((p.features & feat::NODROP) != 0);
    CHECK(p.sq_off.array != 0);  // the SQ index array exists without NO_SQARRAY
    CHECK(p.cq_off.cqes % alignof(Cqe) == 0);

    Mapping ring;
    std::size_t size = std::max(p.sq_off.array + p.sq_entries * sizeof(std::uint32_t),
                                p.cq_off.cqes + p.cq_entries * sizeof(Cqe));
    if (CHECK_EQ(ring.map(fd, size, kOffSqRing), 0)) {
        CHECK_EQ(*ring.at<std::uint32_t>(p.sq_off.ring_mask), 3);
        CHECK_EQ(*ring.at<std::uint32_t>(p.sq_off.ring_entries), 4);
        CHECK_EQ(*ring.at<std::uint32_t>(p.cq_off.ring_mask), 7);
        CHECK_EQ(*ring.at<std::uint32_t>(p.cq_off.ring_entries), 8);
        CHECK_EQ(*ring.at<std::uint32_t>(p.sq_off.head), 0);
        CHECK_EQ(*ring.at<std::uint32_t>(p.sq_off.tail), 0);
        CHECK_EQ(*ring.at<std::uint32_t>(p.cq_off.head), 0);
        CHECK_EQ(*ring.at<std::uint32_t>(p.cq_off.tail), 0);
    }
    // With SINGLE_MMAP the CQ ring is the same memory, but its offset must still be accepted.
    Mapping cq_ring;
    CHECK_EQ(cq_ring.map(fd, size, kOffCqRing), 0);
    Mapping sqes;
    CHECK_EQ(sqes.map(fd, p.sq_entries * sizeof(Sqe), kOffSqes), 0);
    // An offset whose region bits (0xf8000000) name no region is refused.
    Mapping bogus;
    CHECK(bogus.map(fd, 4096, 0x18000000) < 0);
    sqes.reset();
    cq_ring.reset();
    ring.reset();
    ::close(fd);
}

// Cqe.user_data and Cqe.res where the kernel writes them: a READ of 4660 bytes from /dev/zero
// and a READ on a bad fd give a distinctive positive and negative res under distinctive
// user_data, on any kernel.
void test_abi_kernel_cqe() {
    IoUring ring;
    if (!CHECK_EQ(ring.init(2), 0)) return;
    const int zero_fd = ::open("/dev/zero", O_RDONLY | O_CLOEXEC);
    if (!CHECK(zero_fd >= 0)) return;
    std::vector<unsigned char> buf(4660, 0xff);
    Sqe* sqe = ring.get_sqe();
    Sqe* bad = ring.get_sqe();
    if (CHECK(sqe != nullptr && bad != nullptr)) {
        prep_read(*sqe, 0x0123456789abcdefULL, zero_fd, buf.data(), 4660, 0);
        prep_read(*bad, 0xfedcba9876543210ULL, -1, buf.data(), 1, 0);
        CHECK_EQ(ring.submit(), 2);
        Cqe cqes[2] = {};
        int n = ring.copy_cqes(cqes, 2, 2);
        CHECK_EQ(n, 2);
        for (const Cqe& cqe : cqes) {
            if (cqe.user_data == 0xfedcba9876543210ULL) {
                CHECK_CQE(cqe, 0xfedcba9876543210ULL, -EBADF, 0);
            } else {
                CHECK_CQE(cqe, 0x0123456789abcdefULL, 4660, 0);
            }
        }
        CHECK(buf == std::vector<unsigned char>(4660, 0));
    }
    ::close(zero_fd);
}

void test_abi_kernel_probe() {
    IoUring ring;
    if (!CHECK_EQ(ring.init(1), 0)) return;
    Probe probe{};
    if (!CHECK(ring.probe(probe) >= 0)) return;
    CHECK(probe.last_op >= static_cast<std::uint8_t>(Op::READ));
    CHECK(probe.ops_len > static_cast<std::uint8_t>(Op::READ));
    CHECK(probe.ops_len <= static_cast<unsigned>(probe.last_op) + 1);
    // Every ProbeOp names its own opcode: the array stride and the op field are where we think.
    for (unsigned i = 0; i < probe.ops_len; ++i) {
        if (!CHECK_EQ(probe.ops[i].op, i)) break;
    }
    CHECK(probe_supports(probe, Op::NOP));
    CHECK(!probe_supports(probe, static_cast<Op>(probe.ops_len)));
}

}  // namespace

int main() {
    check::run("test_abi_struct_layout", test_abi_struct_layout);
    check::run("test_abi_opcodes", test_abi_opcodes);
    check::run("test_abi_flags", test_abi_flags);
    check::run("test_abi_mmap_offsets", test_abi_mmap_offsets);
    check::require_io_uring();
    check::run("test_abi_kernel_params", test_abi_kernel_params);
    check::run("test_abi_kernel_cqe", test_abi_kernel_cqe);
    check::run("test_abi_kernel_probe", test_abi_kernel_probe);
    return check::exit_code();
}
