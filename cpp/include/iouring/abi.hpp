// The io_uring kernel ABI: structs, opcodes and flags, written from the kernel's UAPI facts.
//
// We deliberately do not include <linux/io_uring.h>: Debian 12 ships 6.1 headers while the
// kernels we run are newer, and a binding must not silently lose features because of the
// build host. Every struct carries static_asserts on its size and field offsets.
#pragma once

#include <cstddef>
#include <cstdint>

namespace iouring {

// Submission queue entry. The kernel's struct is a pile of unions; we name each 64-bit slot by
// its most common meaning and keep the aliases in comments (sqe.hpp sets them by meaning).
struct Sqe {
    std::uint8_t opcode;
    std::uint8_t flags;    // IOSQE_*
    std::uint16_t ioprio;  // also: accept/recv/send flags, poll flags
    std::int32_t fd;
    std::uint64_t off;   // also: addr2, cmd_op
    std::uint64_t addr;  // also: splice_off_in, level/optname
    std::uint32_t len;
    std::uint32_t op_flags;  // rw_flags, fsync_flags, open_flags, cancel_flags, splice_flags...
    std::uint64_t user_data;
    std::uint16_t buf_index;  // also: buf_group
    std::uint16_t personality;
    std::int32_t splice_fd_in;  // also: file_index, optlen, addr_len
    std::uint64_t addr3;        // also: attr_ptr, optval
    std::uint64_t pad2;         // also: attr_type_mask
};
static_assert(sizeof(Sqe) == 64);
static_assert(offsetof(Sqe, opcode) == 0);
static_assert(offsetof(Sqe, flags) == 1);
static_assert(offsetof(Sqe, ioprio) == 2);
static_assert(offsetof(Sqe, fd) == 4);
static_assert(offsetof(Sqe, off) == 8);
static_assert(offsetof(Sqe, addr) == 16);
static_assert(offsetof(Sqe, len) == 24);
static_assert(offsetof(Sqe, op_flags) == 28);
static_assert(offsetof(Sqe, user_data) == 32);
static_assert(offsetof(Sqe, buf_index) == 40);
static_assert(offsetof(Sqe, personality) == 42);
static_assert(offsetof(Sqe, splice_fd_in) == 44);
static_assert(offsetof(Sqe, addr3) == 48);
static_assert(offsetof(Sqe, pad2) == 56);

// Completion queue entry (16 bytes; CQE32 rings append two u64s, which we do not support yet).
struct Cqe {
    std::uint64_t user_data;
    std::int32_t res;
    std::uint32_t flags;  // IORING_CQE_F_*
};
static_assert(sizeof(Cqe) == 16);
static_assert(offsetof(Cqe, user_data) == 0);
static_assert(offsetof(Cqe, res) == 8);
static_assert(offsetof(Cqe, flags) == 12);

struct SqRingOffsets {
    std::uint32_t head, tail, ring_mask, ring_entries, flags, dropped, array, resv1;
    std::uint64_t user_addr;
};
static_assert(sizeof(SqRingOffsets) == 40);
static_assert(offsetof(SqRingOffsets, array) == 24);
static_assert(offsetof(SqRingOffsets, user_addr) == 32);

struct CqRingOffsets {
    std::uint32_t head, tail, ring_mask, ring_entries, overflow, cqes, flags, resv1;
    std::uint64_t user_addr;
};
static_assert(sizeof(CqRingOffsets) == 40);
static_assert(offsetof(CqRingOffsets, cqes) == 20);
static_assert(offsetof(CqRingOffsets, user_addr) == 32);

struct Params {
    std::uint32_t sq_entries;
    std::uint32_t cq_entries;
    std::uint32_t flags;
    std::uint32_t sq_thread_cpu;
    std::uint32_t sq_thread_idle;
    std::uint32_t features;
    std::uint32_t wq_fd;
    std::uint32_t resv[3];
    SqRingOffsets sq_off;
    CqRingOffsets cq_off;
};
static_assert(sizeof(Params) == 120);
static_assert(offsetof(Params, wq_fd) == 24);
static_assert(offsetof(Params, sq_off) == 40);
static_assert(offsetof(Params, cq_off) == 80);

struct ProbeOp {
    std::uint8_t op;
    std::uint8_t resv;
    std::uint16_t flags;  // IO_URING_OP_SUPPORTED
    std::uint32_t resv2;
};
static_assert(sizeof(ProbeOp) == 8);

// io_uring_probe with room for every opcode number a u8 can name.
struct Probe {
    std::uint8_t last_op;
    std::uint8_t ops_len;
    std::uint16_t resv;
    std::uint32_t resv2[3];
    ProbeOp ops[256];
};
static_assert(offsetof(Probe, ops) == 16);
inline constexpr std::uint16_t kProbeOpSupported = 1u << 0;

struct FilesUpdate {
    std::uint32_t offset;
    std::uint32_t resv;
    std::uint64_t fds;  // pointer to int32 array
};
static_assert(sizeof(FilesUpdate) == 16);

struct RsrcRegister {
    std::uint32_t nr;
    std::uint32_t flags;  // kRsrcRegisterSparse
    std::uint64_t resv2;
    std::uint64_t data;
    std::uint64_t tags;
};
static_assert(sizeof(RsrcRegister) == 32);
inline constexpr std::uint32_t kRsrcRegisterSparse = 1u << 0;

struct RsrcUpdate {  // io_uring_rsrc_update (ring fd registration)
    std::uint32_t offset;
    std::uint32_t resv;
    std::uint64_t data;
};
static_assert(sizeof(RsrcUpdate) == 16);

struct RsrcUpdate2 {  // io_uring_rsrc_update2 (buffer/file table updates with tags)
    std::uint32_t offset;
    std::uint32_t resv;
    std::uint64_t data;
    std::uint64_t tags;
    std::uint32_t nr;
    std::uint32_t resv2;
};
static_assert(sizeof(RsrcUpdate2) == 32);

struct Restriction {       // io_uring_restriction
    std::uint16_t opcode;  // kRestriction*
    std::uint8_t op;       // register_op, sqe_op or sqe_flags, by opcode
    std::uint8_t resv;
    std::uint32_t resv2[3];
};
static_assert(sizeof(Restriction) == 16);
inline constexpr std::uint16_t kRestrictionRegisterOp = 0;
inline constexpr std::uint16_t kRestrictionSqeOp = 1;
inline constexpr std::uint16_t kRestrictionSqeFlagsAllowed = 2;
inline constexpr std::uint16_t kRestrictionSqeFlagsRequired = 3;

struct FileIndexRange {  // io_uring_file_index_range
    std::uint32_t off;
    std::uint32_t len;
    std::uint64_t resv;
};
static_assert(sizeof(FileIndexRange) == 16);

struct ClockRegister {  // io_uring_clock_register
    std::uint32_t clockid;
    std::uint32_t resv[3];
};
static_assert(sizeof(ClockRegister) == 16);

struct Napi {                    // io_uring_napi
    std::uint32_t busy_poll_to;  // microseconds
    std::uint8_t prefer_busy_poll;
    std::uint8_t opcode;  // 0: register (static tracking off) in older kernels
    std::uint8_t pad[2];
    std::uint32_t op_param;
    std::uint32_t resv;
};
static_assert(sizeof(Napi) == 16);
static_assert(offsetof(Napi, op_param) == 8);
// Napi.opcode and, for kNapiRegisterOp, Napi.op_param (the tracking mode; Linux 6.13+).
inline constexpr std::uint8_t kNapiRegisterOp = 0;
inline constexpr std::uint8_t kNapiStaticAddId = 1;
inline constexpr std::uint8_t kNapiStaticDelId = 2;
inline constexpr std::uint32_t kNapiTrackingDynamic = 0;
inline constexpr std::uint32_t kNapiTrackingStatic = 1;

struct CloneBuffers {  // io_uring_clone_buffers
    std::uint32_t src_fd;
    std::uint32_t flags;  // kCloneBuffers*
    std::uint32_t src_off;
    std::uint32_t dst_off;
    std::uint32_t nr;
    std::uint32_t pad[3];
};
static_assert(sizeof(CloneBuffers) == 32);
inline constexpr std::uint32_t kCloneBuffersSrcRegistered = 1u << 0;
inline constexpr std::uint32_t kCloneBuffersReplace = 1u << 1;

struct GeteventsArg {
    std::uint64_t sigmask;
    std::uint32_t sigmask_sz;
    std::uint32_t min_wait_usec;
    std::uint64_t ts;  // pointer to KernelTimespec
};
static_assert(sizeof(GeteventsArg) == 24);

struct KernelTimespec {
    std::int64_t tv_sec;
    std::int64_t tv_nsec;
};
static_assert(sizeof(KernelTimespec) == 16);

// IORING_REGISTER_QUERY (Linux 6.18): a chain of headers, each naming one query and its
// result buffer; the kernel fills `result` (0 or -errno) and the buffer.
struct QueryHdr {              // io_uring_query_hdr
    std::uint64_t next_entry;  // pointer to the next QueryHdr, or 0
    std::uint64_t query_data;  // pointer to the result buffer
    std::uint32_t query_op;    // kQuery*
    std::uint32_t size;        // of the result buffer; the kernel writes what it filled
    std::int32_t result;
    std::uint32_t resv[3];
};
static_assert(sizeof(QueryHdr) == 40);
static_assert(offsetof(QueryHdr, result) == 24);
inline constexpr std::uint32_t kQueryOpcodes = 0;

struct QueryOpcode {  // io_uring_query_opcode
    std::uint32_t nr_request_opcodes;
    std::uint32_t nr_register_opcodes;
    std::uint64_t feature_flags;
    std::uint64_t ring_setup_flags;
    std::uint64_t enter_flags;
    std::uint64_t sqe_flags;
    std::uint32_t nr_query_opcodes;
    std::uint32_t pad;
};
static_assert(sizeof(QueryOpcode) == 48);
static_assert(offsetof(QueryOpcode, sqe_flags) == 32);

// IORING_REGISTER_MEM_REGION (Linux 6.13): one region of memory shared with the kernel.
struct RegionDesc {  // io_uring_region_desc
    std::uint64_t user_addr;
    std::uint64_t size;
    std::uint32_t flags;  // kMemRegionTypeUser
    std::uint32_t id;
    std::uint64_t mmap_offset;
    std::uint64_t resv[4];
};
static_assert(sizeof(RegionDesc) == 64);
inline constexpr std::uint32_t kMemRegionTypeUser = 1;

struct MemRegionReg {           // io_uring_mem_region_reg
    std::uint64_t region_uptr;  // pointer to a RegionDesc
    std::uint64_t flags;        // kMemRegionRegWaitArg
    std::uint64_t resv[2];
};
static_assert(sizeof(MemRegionReg) == 32);
inline constexpr std::uint64_t kMemRegionRegWaitArg = 1;

// One registered wait argument (IORING_ENTER_EXT_ARG_REG): the enter's arg is its byte offset
// in the region, argsz its size.
struct RegWait {  // io_uring_reg_wait
    KernelTimespec ts;
    std::uint32_t min_wait_usec;
    std::uint32_t flags;  // kRegWaitTs
    std::uint64_t sigmask;
    std::uint32_t sigmask_sz;
    std::uint32_t pad[3];
    std::uint64_t pad2[2];
};
static_assert(sizeof(RegWait) == 64);
static_assert(offsetof(RegWait, sigmask) == 24);
inline constexpr std::uint32_t kRegWaitTs = 1;

struct SyncCancelReg {   // io_uring_sync_cancel_reg
    std::uint64_t addr;  // user_data to match
    std::int32_t fd;
    std::uint32_t flags;     // cancel::*
    KernelTimespec timeout;  // {-1, -1}: wait forever
    std::uint8_t opcode;
    std::uint8_t pad[7];
    std::uint64_t pad2[3];
};
static_assert(sizeof(SyncCancelReg) == 64);
static_assert(offsetof(SyncCancelReg, timeout) == 16);
static_assert(offsetof(SyncCancelReg, opcode) == 32);

struct Iovec {
    std::uint64_t base;
    std::uint64_t len;
};
static_assert(sizeof(Iovec) == 16);

// IORING_OP_*: every opcode up to 6.19.
enum class Op : std::uint8_t {
    NOP = 0,
    READV,
    WRITEV,
    FSYNC,
    READ_FIXED,
    WRITE_FIXED,
    POLL_ADD,
    POLL_REMOVE,
    SYNC_FILE_RANGE,
    SENDMSG,
    RECVMSG,
    TIMEOUT,
    TIMEOUT_REMOVE,
    ACCEPT,
    ASYNC_CANCEL,
    LINK_TIMEOUT,
    CONNECT,
    FALLOCATE,
    OPENAT,
    CLOSE,
    FILES_UPDATE,
    STATX,
    READ,
    WRITE,
    FADVISE,
    MADVISE,
    SEND,
    RECV,
    OPENAT2,
    EPOLL_CTL,
    SPLICE,
    PROVIDE_BUFFERS,
    REMOVE_BUFFERS,
    TEE,
    SHUTDOWN,
    RENAMEAT,
    UNLINKAT,
    MKDIRAT,
    SYMLINKAT,
    LINKAT,
    MSG_RING,
    FSETXATTR,
    SETXATTR,
    FGETXATTR,
    GETXATTR,
    SOCKET,
    URING_CMD,
    SEND_ZC,
    SENDMSG_ZC,
    READ_MULTISHOT,
    WAITID,
    FUTEX_WAIT,
    FUTEX_WAKE,
    FUTEX_WAITV,
    FIXED_FD_INSTALL,
    FTRUNCATE,
    BIND,
    LISTEN,
    RECV_ZC,
    EPOLL_WAIT,
    READV_FIXED,
    WRITEV_FIXED,
    PIPE,
    NOP128,
    URING_CMD128,
    LAST  // one past the newest opcode we know
};
static_assert(static_cast<int>(Op::READ) == 22);
static_assert(static_cast<int>(Op::SPLICE) == 30);
static_assert(static_cast<int>(Op::SOCKET) == 45);
static_assert(static_cast<int>(Op::PIPE) == 62);
static_assert(static_cast<int>(Op::LAST) == 65);

// IORING_SETUP_*
namespace setup {
inline constexpr std::uint32_t IOPOLL = 1u << 0;
inline constexpr std::uint32_t SQPOLL = 1u << 1;
inline constexpr std::uint32_t SQ_AFF = 1u << 2;
inline constexpr std::uint32_t CQSIZE = 1u << 3;
inline constexpr std::uint32_t CLAMP = 1u << 4;
inline constexpr std::uint32_t ATTACH_WQ = 1u << 5;
inline constexpr std::uint32_t R_DISABLED = 1u << 6;
inline constexpr std::uint32_t SUBMIT_ALL = 1u << 7;
inline constexpr std::uint32_t COOP_TASKRUN = 1u << 8;
inline constexpr std::uint32_t TASKRUN_FLAG = 1u << 9;
inline constexpr std::uint32_t SQE128 = 1u << 10;
inline constexpr std::uint32_t CQE32 = 1u << 11;
inline constexpr std::uint32_t SINGLE_ISSUER = 1u << 12;
inline constexpr std::uint32_t DEFER_TASKRUN = 1u << 13;
inline constexpr std::uint32_t NO_MMAP = 1u << 14;
inline constexpr std::uint32_t REGISTERED_FD_ONLY = 1u << 15;
inline constexpr std::uint32_t NO_SQARRAY = 1u << 16;
inline constexpr std::uint32_t HYBRID_IOPOLL = 1u << 17;
inline constexpr std::uint32_t CQE_MIXED = 1u << 18;
inline constexpr std::uint32_t SQE_MIXED = 1u << 19;
inline constexpr std::uint32_t SQ_REWIND = 1u << 20;
}  // namespace setup

// IOSQE_*
namespace sqe_flags {
inline constexpr std::uint8_t FIXED_FILE = 1u << 0;
inline constexpr std::uint8_t IO_DRAIN = 1u << 1;
inline constexpr std::uint8_t IO_LINK = 1u << 2;
inline constexpr std::uint8_t IO_HARDLINK = 1u << 3;
inline constexpr std::uint8_t ASYNC = 1u << 4;
inline constexpr std::uint8_t BUFFER_SELECT = 1u << 5;
inline constexpr std::uint8_t CQE_SKIP_SUCCESS = 1u << 6;
inline constexpr std::uint8_t ALL = 0x7f;
}  // namespace sqe_flags

// IORING_ENTER_*
namespace enter {
inline constexpr std::uint32_t GETEVENTS = 1u << 0;
inline constexpr std::uint32_t SQ_WAKEUP = 1u << 1;
inline constexpr std::uint32_t SQ_WAIT = 1u << 2;
inline constexpr std::uint32_t EXT_ARG = 1u << 3;
inline constexpr std::uint32_t REGISTERED_RING = 1u << 4;
inline constexpr std::uint32_t ABS_TIMER = 1u << 5;
inline constexpr std::uint32_t EXT_ARG_REG = 1u << 6;
inline constexpr std::uint32_t NO_IOWAIT = 1u << 7;
}  // namespace enter

// IORING_FEAT_*
namespace feat {
inline constexpr std::uint32_t SINGLE_MMAP = 1u << 0;
inline constexpr std::uint32_t NODROP = 1u << 1;
inline constexpr std::uint32_t SUBMIT_STABLE = 1u << 2;
inline constexpr std::uint32_t RW_CUR_POS = 1u << 3;
inline constexpr std::uint32_t CUR_PERSONALITY = 1u << 4;
inline constexpr std::uint32_t FAST_POLL = 1u << 5;
inline constexpr std::uint32_t POLL_32BITS = 1u << 6;
inline constexpr std::uint32_t SQPOLL_NONFIXED = 1u << 7;
inline constexpr std::uint32_t EXT_ARG = 1u << 8;
inline constexpr std::uint32_t NATIVE_WORKERS = 1u << 9;
inline constexpr std::uint32_t RSRC_TAGS = 1u << 10;
inline constexpr std::uint32_t CQE_SKIP = 1u << 11;
inline constexpr std::uint32_t LINKED_FILE = 1u << 12;
inline constexpr std::uint32_t REG_REG_RING = 1u << 13;
inline constexpr std::uint32_t RECVSEND_BUNDLE = 1u << 14;
inline constexpr std::uint32_t MIN_TIMEOUT = 1u << 15;
inline constexpr std::uint32_t RW_ATTR = 1u << 16;
inline constexpr std::uint32_t NO_IOWAIT = 1u << 17;
}  // namespace feat

// IORING_SQ_* (flags word of the SQ ring) and IORING_CQ_* (flags word of the CQ ring)
namespace sq_ring {
inline constexpr std::uint32_t NEED_WAKEUP = 1u << 0;
inline constexpr std::uint32_t CQ_OVERFLOW = 1u << 1;
inline constexpr std::uint32_t TASKRUN = 1u << 2;
}  // namespace sq_ring
namespace cq_ring {
inline constexpr std::uint32_t EVENTFD_DISABLED = 1u << 0;
}  // namespace cq_ring

// IORING_CQE_F_*
namespace cqe_flags {
inline constexpr std::uint32_t BUFFER = 1u << 0;
inline constexpr std::uint32_t MORE = 1u << 1;
inline constexpr std::uint32_t SOCK_NONEMPTY = 1u << 2;
inline constexpr std::uint32_t NOTIF = 1u << 3;
inline constexpr std::uint32_t BUF_MORE = 1u << 4;
inline constexpr std::uint32_t SKIP = 1u << 5;
inline constexpr std::uint32_t F_32 = 1u << 15;
inline constexpr unsigned BUFFER_SHIFT = 16;
}  // namespace cqe_flags

// IORING_REGISTER_* opcodes of io_uring_register(2)
enum class RegisterOp : std::uint32_t {
    REGISTER_BUFFERS = 0,
    UNREGISTER_BUFFERS = 1,
    REGISTER_FILES = 2,
    UNREGISTER_FILES = 3,
    REGISTER_EVENTFD = 4,
    UNREGISTER_EVENTFD = 5,
    REGISTER_FILES_UPDATE = 6,
    REGISTER_EVENTFD_ASYNC = 7,
    REGISTER_PROBE = 8,
    REGISTER_PERSONALITY = 9,
    UNREGISTER_PERSONALITY = 10,
    REGISTER_RESTRICTIONS = 11,
    REGISTER_ENABLE_RINGS = 12,
    REGISTER_FILES2 = 13,
    REGISTER_FILES_UPDATE2 = 14,
    REGISTER_BUFFERS2 = 15,
    REGISTER_BUFFERS_UPDATE = 16,
    REGISTER_IOWQ_AFF = 17,
    UNREGISTER_IOWQ_AFF = 18,
    REGISTER_IOWQ_MAX_WORKERS = 19,
    REGISTER_RING_FDS = 20,
    UNREGISTER_RING_FDS = 21,
    REGISTER_PBUF_RING = 22,
    UNREGISTER_PBUF_RING = 23,
    REGISTER_SYNC_CANCEL = 24,
    REGISTER_FILE_ALLOC_RANGE = 25,
    REGISTER_PBUF_STATUS = 26,
    REGISTER_NAPI = 27,
    UNREGISTER_NAPI = 28,
    REGISTER_CLOCK = 29,
    REGISTER_CLONE_BUFFERS = 30,
    REGISTER_SEND_MSG_RING = 31,
    REGISTER_ZCRX_IFQ = 32,
    REGISTER_RESIZE_RINGS = 33,
    REGISTER_MEM_REGION = 34,
    REGISTER_QUERY = 35,
    REGISTER_ZCRX_CTRL = 36,
    REGISTER_BPF_FILTER = 37,
};
inline constexpr std::uint32_t kRegisterUseRegisteredRing = 1u << 31;

// mmap offsets of the rings
inline constexpr std::int64_t kOffSqRing = 0;
inline constexpr std::int64_t kOffCqRing = 0x8000000;
inline constexpr std::int64_t kOffSqes = 0x10000000;

// Operation-specific constants used by the prep helpers.
inline constexpr std::uint32_t kFsyncDatasync = 1u << 0;
inline constexpr std::uint32_t kSpliceFdInFixed = 1u << 31;
inline constexpr std::uint32_t kFileIndexAlloc = ~0u;
inline constexpr std::int32_t kRegisterFilesSkip = -2;
inline constexpr std::uint64_t kNoOffset = ~std::uint64_t{0};  // "current position" / "pipe"

namespace cancel {
inline constexpr std::uint32_t ALL = 1u << 0;
inline constexpr std::uint32_t FD = 1u << 1;
inline constexpr std::uint32_t ANY = 1u << 2;
inline constexpr std::uint32_t FD_FIXED = 1u << 3;
inline constexpr std::uint32_t USERDATA = 1u << 4;
inline constexpr std::uint32_t OP = 1u << 5;
}  // namespace cancel

namespace timeout {
inline constexpr std::uint32_t ABS = 1u << 0;
inline constexpr std::uint32_t UPDATE = 1u << 1;
inline constexpr std::uint32_t BOOTTIME = 1u << 2;
inline constexpr std::uint32_t REALTIME = 1u << 3;
inline constexpr std::uint32_t LINK_TIMEOUT_UPDATE = 1u << 4;
inline constexpr std::uint32_t ETIME_SUCCESS = 1u << 5;
inline constexpr std::uint32_t MULTISHOT = 1u << 6;
}  // namespace timeout

inline constexpr unsigned kMaxEntries = 32768;
inline constexpr unsigned kSyscallSetup = 425;
inline constexpr unsigned kSyscallEnter = 426;
inline constexpr unsigned kSyscallRegister = 427;

}  // namespace iouring
