// Kernel constants as real enum.IntEnum / enum.IntFlag classes (pybind11's native_enum).
#include <pybind11/native_enum.h>

#include "flag_enum.hpp"
#include "module.hpp"

namespace iouring::bindings {

void register_enums(py::module_& m) {
    py::native_enum<Op> op(m, "Op", "enum.IntEnum", "io_uring opcodes (IORING_OP_*).");
    static constexpr const char* op_names[] = {"NOP",
                                               "READV",
                                               "WRITEV",
                                               "FSYNC",
                                               "READ_FIXED",
                                               "WRITE_FIXED",
                                               "POLL_ADD",
                                               "POLL_REMOVE",
                                               "SYNC_FILE_RANGE",
                                               "SENDMSG",
                                               "RECVMSG",
                                               "TIMEOUT",
                                               "TIMEOUT_REMOVE",
                                               "ACCEPT",
                                               "ASYNC_CANCEL",
                                               "LINK_TIMEOUT",
                                               "CONNECT",
                                               "FALLOCATE",
                                               "OPENAT",
                                               "CLOSE",
                                               "FILES_UPDATE",
                                               "STATX",
                                               "READ",
                                               "WRITE",
                                               "FADVISE",
                                               "MADVISE",
                                               "SEND",
                                               "RECV",
                                               "OPENAT2",
                                               "EPOLL_CTL",
                                               "SPLICE",
                                               "PROVIDE_BUFFERS",
                                               "REMOVE_BUFFERS",
                                               "TEE",
                                               "SHUTDOWN",
                                               "RENAMEAT",
                                               "UNLINKAT",
                                               "MKDIRAT",
                                               "SYMLINKAT",
                                               "LINKAT",
                                               "MSG_RING",
                                               "FSETXATTR",
                                               "SETXATTR",
                                               "FGETXATTR",
                                               "GETXATTR",
                                               "SOCKET",
                                               "URING_CMD",
                                               "SEND_ZC",
                                               "SENDMSG_ZC",
                                               "READ_MULTISHOT",
                                               "WAITID",
                                               "FUTEX_WAIT",
                                               "FUTEX_WAKE",
                                               "FUTEX_WAITV",
                                               "FIXED_FD_INSTALL",
                                               "FTRUNCATE",
                                               "BIND",
                                               "LISTEN",
                                               "RECV_ZC",
                                               "EPOLL_WAIT",
                                               "READV_FIXED",
                                               "WRITEV_FIXED",
                                               "PIPE",
                                               "NOP128",
                                               "URING_CMD128"};
    static_assert(std::size(op_names) == static_cast<std::size_t>(Op::LAST));
    for (std::size_t i = 0; i < std::size(op_names); ++i) {
        op.value(op_names[i], static_cast<Op>(i));
    }
    op.finalize();

    FlagEnum<SetupFlag>(m, "SetupFlags", "io_uring_setup(2) flags (IORING_SETUP_*).")
        .value("IOPOLL", setup::IOPOLL)
        .value("SQPOLL", setup::SQPOLL)
        .value("SQ_AFF", setup::SQ_AFF)
        .value("CQSIZE", setup::CQSIZE)
        .value("CLAMP", setup::CLAMP)
        .value("ATTACH_WQ", setup::ATTACH_WQ)
        .value("R_DISABLED", setup::R_DISABLED)
        .value("SUBMIT_ALL", setup::SUBMIT_ALL)
        .value("COOP_TASKRUN", setup::COOP_TASKRUN)
        .value("TASKRUN_FLAG", setup::TASKRUN_FLAG)
        .value("SQE128", setup::SQE128)
        .value("CQE32", setup::CQE32)
        .value("SINGLE_ISSUER", setup::SINGLE_ISSUER)
        .value("DEFER_TASKRUN", setup::DEFER_TASKRUN)
        .value("NO_MMAP", setup::NO_MMAP)
        .value("REGISTERED_FD_ONLY", setup::REGISTERED_FD_ONLY)
        .value("NO_SQARRAY", setup::NO_SQARRAY)
        .value("HYBRID_IOPOLL", setup::HYBRID_IOPOLL)
        .value("CQE_MIXED", setup::CQE_MIXED)
        .value("SQE_MIXED", setup::SQE_MIXED)
        .value("SQ_REWIND", setup::SQ_REWIND)
        .finalize();

    FlagEnum<SqeFlag>(m, "SqeFlags", "Per-SQE flags (IOSQE_*).")
        .value("FIXED_FILE", sqe_flags::FIXED_FILE)
        .value("IO_DRAIN", sqe_flags::IO_DRAIN)
        .value("IO_LINK", sqe_flags::IO_LINK)
        .value("IO_HARDLINK", sqe_flags::IO_HARDLINK)
        .value("ASYNC", sqe_flags::ASYNC)
        .value("BUFFER_SELECT", sqe_flags::BUFFER_SELECT)
        .value("CQE_SKIP_SUCCESS", sqe_flags::CQE_SKIP_SUCCESS)
        .finalize();

    FlagEnum<CqeFlag>(m, "CqeFlags",
                      "Completion flags (IORING_CQE_F_*). With BUFFER, the upper 16 bits of a "
                      "CQE's flags hold the buffer id: clear a flag with flags & ~int(CqeFlags.X), "
                      "since ~CqeFlags.X (an IntFlag complement) clears those bits too.")
        .value("BUFFER", cqe_flags::BUFFER)
        .value("MORE", cqe_flags::MORE)
        .value("SOCK_NONEMPTY", cqe_flags::SOCK_NONEMPTY)
        .value("NOTIF", cqe_flags::NOTIF)
        .value("BUF_MORE", cqe_flags::BUF_MORE)
        .value("SKIP", cqe_flags::SKIP)
        .value("F_32", cqe_flags::F_32)
        .finalize();

    FlagEnum<EnterFlag>(m, "EnterFlags", "io_uring_enter(2) flags (IORING_ENTER_*).")
        .value("GETEVENTS", enter::GETEVENTS)
        .value("SQ_WAKEUP", enter::SQ_WAKEUP)
        .value("SQ_WAIT", enter::SQ_WAIT)
        .value("EXT_ARG", enter::EXT_ARG)
        .value("REGISTERED_RING", enter::REGISTERED_RING)
        .value("ABS_TIMER", enter::ABS_TIMER)
        .value("EXT_ARG_REG", enter::EXT_ARG_REG)
        .value("NO_IOWAIT", enter::NO_IOWAIT)
        .finalize();

    FlagEnum<Feature>(m, "Features", "Kernel features reported by io_uring_setup (IORING_FEAT_*).")
        .value("SINGLE_MMAP", feat::SINGLE_MMAP)
        .value("NODROP", feat::NODROP)
        .value("SUBMIT_STABLE", feat::SUBMIT_STABLE)
        .value("RW_CUR_POS", feat::RW_CUR_POS)
        .value("CUR_PERSONALITY", feat::CUR_PERSONALITY)
        .value("FAST_POLL", feat::FAST_POLL)
        .value("POLL_32BITS", feat::POLL_32BITS)
        .value("SQPOLL_NONFIXED", feat::SQPOLL_NONFIXED)
        .value("EXT_ARG", feat::EXT_ARG)
        .value("NATIVE_WORKERS", feat::NATIVE_WORKERS)
        .value("RSRC_TAGS", feat::RSRC_TAGS)
        .value("CQE_SKIP", feat::CQE_SKIP)
        .value("LINKED_FILE", feat::LINKED_FILE)
        .value("REG_REG_RING", feat::REG_REG_RING)
        .value("RECVSEND_BUNDLE", feat::RECVSEND_BUNDLE)
        .value("MIN_TIMEOUT", feat::MIN_TIMEOUT)
        .value("RW_ATTR", feat::RW_ATTR)
        .value("NO_IOWAIT", feat::NO_IOWAIT)
        .finalize();

    FlagEnum<SqFlag>(m, "SqFlags", "Flags the kernel sets in the SQ ring (IORING_SQ_*).")
        .value("NEED_WAKEUP", sq_ring::NEED_WAKEUP)
        .value("CQ_OVERFLOW", sq_ring::CQ_OVERFLOW)
        .value("TASKRUN", sq_ring::TASKRUN)
        .finalize();

    FlagEnum<FsyncFlag>(m, "FsyncFlags", "Flags of prep_fsync (IORING_FSYNC_*).")
        .value("DATASYNC", kFsyncDatasync)
        .finalize();

    m.attr("SQE_SIZE") = sizeof(Sqe);
    m.attr("CQE_SIZE") = sizeof(Cqe);
    m.attr("PARAMS_SIZE") = sizeof(Params);
    m.attr("OFF_SQ_RING") = kOffSqRing;
    m.attr("OFF_CQ_RING") = kOffCqRing;
    m.attr("OFF_SQES") = kOffSqes;
    m.attr("FILE_INDEX_ALLOC") = kFileIndexAlloc;
    m.attr("REGISTER_FILES_SKIP") = kRegisterFilesSkip;
}

}  // namespace iouring::bindings
