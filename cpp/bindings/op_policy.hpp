// What the bindings let Python do with each opcode after (or instead of) its prep method, in one
// table built from one list. Every path that writes an SQE from Python values other than a prep
// method's arguments reads it: the Sqe field setters (register_sqe.cpp), IoUring.push_sqes
// (register_sqe_array.cpp) and the flush that moves pins in flight (Ring::flush in ring.cpp), so
// the rule for an opcode lives in its row and nowhere else.
//
// Adding an opcode: its value in abi.hpp's Op, then one row of IOURING_OP_POLICY below (an
// opcode without a row is refused by every path here: not editable, not pushable, no skip).
//
// Columns:
//   edit   the plain fields (fd, off, ioprio, rw_flags, buf_index, splice_fd_in) carry no
//          pointer or size meaning for this opcode, so Sqe setters may change them after prep;
//   push   the fields push_sqes accepts besides opcode/flags/user_data/personality
//          (kNoPush: push_sqes refuses the opcode, its pointers cannot be checked there);
//   memory how push_sqes checks [addr, addr + len);
//   fixed  whether the kernel resolves buf_index against the registered buffers, so that a
//          flushed operation keeps the registration alive until its final completion;
//   skip   whether IOSQE_CQE_SKIP_SUCCESS can be accounted for (see skip_refusal);
//   limit  a field whose bits are limited (push_sqes and the Sqe setters refuse others).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>

#include <iouring/abi.hpp>
#include <iouring/sqe.hpp>
#include <iouring/sqe_control.hpp>
#include <iouring/sqe_net.hpp>

namespace iouring::bindings {

// The SQE fields a policy names (bit masks, so a row lists several).
namespace field {
inline constexpr unsigned NONE = 0;
inline constexpr unsigned IOPRIO = 1u << 0;
inline constexpr unsigned FD = 1u << 1;
inline constexpr unsigned OFF = 1u << 2;
inline constexpr unsigned ADDR = 1u << 3;
inline constexpr unsigned LEN = 1u << 4;
inline constexpr unsigned RW_FLAGS = 1u << 5;
inline constexpr unsigned BUF_INDEX = 1u << 6;
inline constexpr unsigned SPLICE_FD_IN = 1u << 7;
}  // namespace field

// The value of one field (a single bit of field::) as an unsigned number.
inline std::uint64_t field_value(const Sqe& s, unsigned f) noexcept {
    switch (f) {
        case field::IOPRIO:
            return s.ioprio;
        case field::FD:
            return static_cast<std::uint32_t>(s.fd);
        case field::OFF:
            return s.off;
        case field::ADDR:
            return s.addr;
        case field::LEN:
            return s.len;
        case field::RW_FLAGS:
            return s.op_flags;
        case field::BUF_INDEX:
            return s.buf_index;
        case field::SPLICE_FD_IN:
            return static_cast<std::uint32_t>(s.splice_fd_in);
        default:
            return 0;
    }
}

// How push_sqes checks an opcode's addr/len pair.
enum class Memory : std::uint8_t {
    None,          // addr and len are plain numbers (or unused)
    ReadsBuffer,   // the kernel reads [addr, addr + len): must lie inside `buffer`
    WritesBuffer,  // the kernel writes [addr, addr + len): inside `buffer`, which must be writable
    Registered,    // [addr, addr + len) must lie inside registered buffer buf_index
};

// Whether the kernel resolves buf_index against the registered buffers.
enum class Fixed : std::uint8_t {
    No,
    Always,
    // The sends, with IORING_RECVSEND_FIXED_BUF in ioprio (send_zc_fixed, sendmsg_zc_fixed; kernel
    // 6.18 refuses it on plain SEND/SENDMSG with EINVAL, listed in case a later one accepts it).
    IfFixedBufFlag,
};

// What CQE_SKIP_SUCCESS does to the completions of an opcode.
enum class Skip : std::uint8_t {
    Ok,           // one completion, which the flag skips on success
    UnlessMulti,  // one completion unless `multi_bit` of `multi_field` asks for multishot
    Multishot,    // several completions (multishot, or a result and a notification)
    Expires,      // a timeout: its expiry (-ETIME) is a failure, so its completion always comes
    LinkTimeout,  // posts its own completion and cancels the operation it is linked to
    Driver,       // URING_CMD: the completions are the driver's to define
};

// A skip column value: the kind, and for Skip::UnlessMulti the field bit that asks for multishot.
struct SkipRule {
    Skip kind = Skip::Driver;
    unsigned multi_field = field::NONE;
    std::uint32_t multi_bit = 0;
};

// A check column value: `field` may carry only the bits of `mask` (`doc` says which, for the
// message); field::NONE for no limit.
struct Limit {
    unsigned field = field::NONE;
    std::uint64_t mask = 0;
    const char* doc = "";
};

inline constexpr unsigned kNoPush = ~0u;

// An opcode without a row: nothing but its prep method.
struct OpPolicy {
    bool known = false;
    bool edit = false;
    unsigned push = kNoPush;
    Memory memory = Memory::None;
    Fixed fixed = Fixed::No;
    SkipRule skip{};
    Limit limit{};
};

namespace policy_detail {
using namespace field;
constexpr bool E = true;   // editable
constexpr bool R = false;  // read-only after prep
constexpr unsigned NO = kNoPush;
constexpr Memory MNONE = Memory::None;
constexpr Memory READS = Memory::ReadsBuffer;
constexpr Memory WRITES = Memory::WritesBuffer;
constexpr Memory REG = Memory::Registered;
constexpr Fixed FNO = Fixed::No;
constexpr Fixed FIXED = Fixed::Always;
constexpr Fixed IFFLAG = Fixed::IfFixedBufFlag;
constexpr SkipRule OK{Skip::Ok};
constexpr SkipRule POLL_MULTI{Skip::UnlessMulti, LEN, poll::ADD_MULTI};
constexpr SkipRule RECV_MULTI{Skip::UnlessMulti, IOPRIO, recvsend::RECV_MULTISHOT};
constexpr SkipRule ACCEPT_MULTI{Skip::UnlessMulti, IOPRIO, accept::MULTISHOT};
constexpr SkipRule MULTI{Skip::Multishot};
constexpr SkipRule EXPIRES{Skip::Expires};
constexpr SkipRule LTIMEOUT{Skip::LinkTimeout};
constexpr SkipRule DRIVER{Skip::Driver};
constexpr Limit ANY{};
constexpr Limit DATASYNC{RW_FLAGS, kFsyncDatasync, "only FsyncFlags.DATASYNC is defined"};
constexpr Limit MSG_DATA{ADDR, 0,
                         "only IORING_MSG_DATA (addr 0) is accepted by push_sqes (fd passing "
                         "reads a registered file from addr3: use msg_ring_fd())"};
constexpr Limit POLL_FIRST{IOPRIO, recvsend::POLL_FIRST,
                           "only IORING_RECVSEND_POLL_FIRST is accepted by push_sqes (fixed "
                           "buffers, multishot and bundles need the operation's ring method)"};
}  // namespace policy_detail

// The rows: X(op, edit, push fields, memory, fixed, skip, limit).
//
// Not editable, and why: TIMEOUT_REMOVE (an UPDATE flag makes off a pointer), MSG_RING (rw_flags
// and file_index say whether the target's CQE is final; push_sqes may set them, as the flush
// reserves a final CQE's user_data on the target, see ring_messages.cpp), WAITID (off is the
// siginfo pointer), FUTEX_* (fd is the futex size), FILES_UPDATE (off = FILE_INDEX_ALLOC makes the
// kernel write fds), MADVISE (rw_flags is the advice, checked against the buffer), OPENAT2,
// STATX, RENAMEAT, SYMLINKAT, LINKAT, *XATTR (off is a pointer), the socket operations but
// SOCKET/LISTEN/SHUTDOWN (ioprio and rw_flags select multishot, bundles, fixed buffers),
// EPOLL_WAIT, PIPE. The fixed-buffer operations are editable: the kernel checks buf_index and
// the addresses against the registration at issue, and the registration is kept alive (fixed).
// clang-format off
#define IOURING_OP_POLICY(X)                                                                      \
    X(NOP,              E, FD | LEN | RW_FLAGS | BUF_INDEX,                     MNONE,  FNO,    OK,           ANY)        \
    X(READV,            E, NO,                                                  MNONE,  FNO,    OK,           ANY)        \
    X(WRITEV,           E, NO,                                                  MNONE,  FNO,    OK,           ANY)        \
    X(FSYNC,            E, FD | OFF | LEN | RW_FLAGS,                           MNONE,  FNO,    OK,           DATASYNC)   \
    X(READ_FIXED,       E, IOPRIO | FD | OFF | ADDR | LEN | RW_FLAGS | BUF_INDEX, REG,  FIXED,  OK,           ANY)        \
    X(WRITE_FIXED,      E, IOPRIO | FD | OFF | ADDR | LEN | RW_FLAGS | BUF_INDEX, REG,  FIXED,  OK,           ANY)        \
    X(POLL_ADD,         E, FD | LEN | RW_FLAGS,                                 MNONE,  FNO,    POLL_MULTI,   ANY)        \
    X(POLL_REMOVE,      E, FD | OFF | ADDR | LEN,                               MNONE,  FNO,    OK,           ANY)        \
    X(SYNC_FILE_RANGE,  E, FD | OFF | LEN | RW_FLAGS,                           MNONE,  FNO,    OK,           ANY)        \
    X(SENDMSG,          R, NO,                                                  MNONE,  IFFLAG, OK,           ANY)        \
    X(RECVMSG,          R, NO,                                                  MNONE,  FNO,    RECV_MULTI,   ANY)        \
    X(TIMEOUT,          E, NO,                                                  MNONE,  FNO,    EXPIRES,      ANY)        \
    X(TIMEOUT_REMOVE,   R, NO,                                                  MNONE,  FNO,    OK,           ANY)        \
    X(ACCEPT,           R, NO,                                                  MNONE,  FNO,    ACCEPT_MULTI, ANY)        \
    X(ASYNC_CANCEL,     E, FD | ADDR | LEN | RW_FLAGS,                          MNONE,  FNO,    OK,           ANY)        \
    X(LINK_TIMEOUT,     E, NO,                                                  MNONE,  FNO,    LTIMEOUT,     ANY)        \
    X(CONNECT,          R, NO,                                                  MNONE,  FNO,    OK,           ANY)        \
    X(FALLOCATE,        E, FD | OFF | ADDR | LEN,                               MNONE,  FNO,    OK,           ANY)        \
    X(OPENAT,           E, NO,                                                  MNONE,  FNO,    OK,           ANY)        \
    X(CLOSE,            E, FD | SPLICE_FD_IN,                                   MNONE,  FNO,    OK,           ANY)        \
    X(FILES_UPDATE,     R, NO,                                                  MNONE,  FNO,    OK,           ANY)        \
    X(STATX,            R, NO,                                                  MNONE,  FNO,    OK,           ANY)        \
    X(READ,             E, IOPRIO | FD | OFF | ADDR | LEN | RW_FLAGS,           WRITES, FNO,    OK,           ANY)        \
    X(WRITE,            E, IOPRIO | FD | OFF | ADDR | LEN | RW_FLAGS,           READS,  FNO,    OK,           ANY)        \
    X(FADVISE,          E, FD | OFF | ADDR | LEN | RW_FLAGS,                    MNONE,  FNO,    OK,           ANY)        \
    X(MADVISE,          R, NO,                                                  MNONE,  FNO,    OK,           ANY)        \
    X(SEND,             R, IOPRIO | FD | ADDR | LEN | RW_FLAGS,                 READS,  IFFLAG, OK,           POLL_FIRST) \
    X(RECV,             R, IOPRIO | FD | ADDR | LEN | RW_FLAGS,                 WRITES, FNO,    RECV_MULTI,   POLL_FIRST) \
    X(OPENAT2,          R, NO,                                                  MNONE,  FNO,    OK,           ANY)        \
    X(EPOLL_CTL,        E, NO,                                                  MNONE,  FNO,    OK,           ANY)        \
    X(SPLICE,           E, FD | OFF | ADDR | LEN | RW_FLAGS | SPLICE_FD_IN,     MNONE,  FNO,    OK,           ANY)        \
    X(PROVIDE_BUFFERS,  R, NO,                                                  MNONE,  FNO,    OK,           ANY)        \
    X(REMOVE_BUFFERS,   E, NO,                                                  MNONE,  FNO,    OK,           ANY)        \
    X(TEE,              E, FD | LEN | RW_FLAGS | SPLICE_FD_IN,                  MNONE,  FNO,    OK,           ANY)        \
    X(SHUTDOWN,         E, FD | LEN,                                            MNONE,  FNO,    OK,           ANY)        \
    X(RENAMEAT,         R, NO,                                                  MNONE,  FNO,    OK,           ANY)        \
    X(UNLINKAT,         E, NO,                                                  MNONE,  FNO,    OK,           ANY)        \
    X(MKDIRAT,          E, NO,                                                  MNONE,  FNO,    OK,           ANY)        \
    X(SYMLINKAT,        R, NO,                                                  MNONE,  FNO,    OK,           ANY)        \
    X(LINKAT,           R, NO,                                                  MNONE,  FNO,    OK,           ANY)        \
    X(MSG_RING,         R, FD | OFF | ADDR | LEN | RW_FLAGS | SPLICE_FD_IN,     MNONE,  FNO,    OK,           MSG_DATA)   \
    X(FSETXATTR,        R, NO,                                                  MNONE,  FNO,    OK,           ANY)        \
    X(SETXATTR,         R, NO,                                                  MNONE,  FNO,    OK,           ANY)        \
    X(FGETXATTR,        R, NO,                                                  MNONE,  FNO,    OK,           ANY)        \
    X(GETXATTR,         R, NO,                                                  MNONE,  FNO,    OK,           ANY)        \
    X(SOCKET,           E, FD | OFF | LEN | RW_FLAGS | SPLICE_FD_IN,            MNONE,  FNO,    OK,           ANY)        \
    X(URING_CMD,        R, NO,                                                  MNONE,  FNO,    DRIVER,       ANY)        \
    X(SEND_ZC,          R, NO,                                                  MNONE,  IFFLAG, MULTI,        ANY)        \
    X(SENDMSG_ZC,       R, NO,                                                  MNONE,  IFFLAG, MULTI,        ANY)        \
    X(READ_MULTISHOT,   E, NO,                                                  MNONE,  FNO,    MULTI,        ANY)        \
    X(WAITID,           R, NO,                                                  MNONE,  FNO,    OK,           ANY)        \
    X(FUTEX_WAIT,       R, NO,                                                  MNONE,  FNO,    OK,           ANY)        \
    X(FUTEX_WAKE,       R, NO,                                                  MNONE,  FNO,    OK,           ANY)        \
    X(FUTEX_WAITV,      R, NO,                                                  MNONE,  FNO,    OK,           ANY)        \
    X(FIXED_FD_INSTALL, E, NO,                                                  MNONE,  FNO,    OK,           ANY)        \
    X(FTRUNCATE,        E, FD | OFF,                                            MNONE,  FNO,    OK,           ANY)        \
    X(BIND,             R, NO,                                                  MNONE,  FNO,    OK,           ANY)        \
    X(LISTEN,           E, FD | LEN,                                            MNONE,  FNO,    OK,           ANY)        \
    X(RECV_ZC,          R, NO,                                                  MNONE,  FNO,    MULTI,        ANY)        \
    X(EPOLL_WAIT,       R, NO,                                                  MNONE,  FNO,    OK,           ANY)        \
    X(READV_FIXED,      E, NO,                                                  MNONE,  FIXED,  OK,           ANY)        \
    X(WRITEV_FIXED,     E, NO,                                                  MNONE,  FIXED,  OK,           ANY)        \
    X(PIPE,             R, NO,                                                  MNONE,  FNO,    OK,           ANY)        \
    X(NOP128,           R, NO,                                                  MNONE,  FNO,    OK,           ANY)        \
    X(URING_CMD128,     R, NO,                                                  MNONE,  FNO,    DRIVER,       ANY)
// clang-format on

namespace policy_detail {
struct Table {
    OpPolicy rows[256];
};

constexpr Table build() {
    Table t{};
#define IOURING_POLICY_ROW(op, edit, push, memory, fixed, skip, limit)             \
    t.rows[static_cast<std::size_t>(Op::op)] = OpPolicy{true,  edit, push, memory, \
                                                        fixed, skip, limit};
    IOURING_OP_POLICY(IOURING_POLICY_ROW)
#undef IOURING_POLICY_ROW
    return t;
}

inline constexpr Table kTable = build();

constexpr std::size_t known_count() {
    std::size_t n = 0;
    for (const OpPolicy& p : kTable.rows) n += p.known ? 1 : 0;
    return n;
}
// Every opcode abi.hpp knows has its row (and no row is listed twice).
static_assert(known_count() == static_cast<std::size_t>(Op::LAST),
              "every Op needs one row of IOURING_OP_POLICY");
}  // namespace policy_detail

constexpr const OpPolicy& policy_of(std::uint8_t opcode) noexcept {
    return policy_detail::kTable.rows[opcode];
}

// --- derived rules --------------------------------------------------------------------------

// Whether the kernel, running `sqe`, resolves buf_index against the registered buffers.
inline bool uses_fixed_buffer(const Sqe& sqe) noexcept {
    switch (policy_of(sqe.opcode).fixed) {
        case Fixed::No:
            return false;
        case Fixed::Always:
            return true;
        case Fixed::IfFixedBufFlag:
            return (sqe.ioprio & recvsend::FIXED_BUF) != 0;
    }
    return false;
}

// The name of one field bit, for messages.
inline const char* field_name(unsigned f) noexcept {
    switch (f) {
        case field::IOPRIO:
            return "ioprio";
        case field::FD:
            return "fd";
        case field::OFF:
            return "off";
        case field::ADDR:
            return "addr";
        case field::LEN:
            return "len";
        case field::RW_FLAGS:
            return "rw_flags";
        case field::BUF_INDEX:
            return "buf_index";
        case field::SPLICE_FD_IN:
            return "splice_fd_in";
        default:
            return "?";
    }
}

// The limit of `s`'s row if `s` breaks it (a bit outside the mask), nullptr otherwise.
inline const Limit* broken_limit(const Sqe& s) noexcept {
    const Limit& limit = policy_of(s.opcode).limit;
    if (limit.field == field::NONE) return nullptr;
    return (field_value(s, limit.field) & ~limit.mask) != 0 ? &limit : nullptr;
}

// Why IOSQE_CQE_SKIP_SUCCESS cannot go on `s` for a reason of `s` alone (its opcode, its other
// flags); nullptr if it can. The chain rules (Ring::check_skip_chains) come on top.
//
// The ring counts every operation until its final completion, so a skipped completion must be
// accounted for another way: the flag is taken only on the members of a linked chain that come
// before its last one, which carries no flag, and all of them carry the chain's user_data. The
// kernel then posts exactly one completion for the whole chain under that user_data: the last
// member's on success, else the failing member's (a skip-flagged member that fails posts its
// completion, and the kernel then cancels the rest of the chain without completions).
inline const char* skip_refusal(const Sqe& s) noexcept {
    constexpr std::uint8_t links = sqe_flags::IO_LINK | sqe_flags::IO_HARDLINK;
    if ((s.flags & links) == 0) {
        return "it goes only on an SQE linked (SqeFlags.IO_LINK) to the next one: when a "
               "lone operation succeeds no completion arrives, so the ring could never tell "
               "when the kernel is done with its memory and its user_data; link it to a last "
               "operation without the flag";
    }
    if ((s.flags & sqe_flags::IO_HARDLINK) != 0) {
        return "it cannot be combined with IO_HARDLINK: a hard-linked member that fails posts "
               "its completion and the chain goes on, so the chain could post two completions";
    }
    if ((s.flags & sqe_flags::BUFFER_SELECT) != 0) {
        return "it cannot be combined with BUFFER_SELECT: the id of the provided buffer the "
               "kernel picked travels in the completion it would skip";
    }
    const SkipRule& rule = policy_of(s.opcode).skip;
    switch (rule.kind) {
        case Skip::Ok:
            return nullptr;
        case Skip::UnlessMulti:
            if ((field_value(s, rule.multi_field) & rule.multi_bit) == 0) return nullptr;
            [[fallthrough]];
        case Skip::Multishot:
            return "this operation posts more than one completion (multishot, or a result and "
                   "a notification), which the ring cannot account for when the flag skips one";
        case Skip::Expires:
            return "a timeout's expiry (-ETIME) counts as a failure, so its completion always "
                   "comes and the flag would only end the chain there";
        case Skip::LinkTimeout:
            return "a LINK_TIMEOUT posts its own completion and cancels the operation before "
                   "it, so its chain could post two completions";
        case Skip::Driver:
            return "the completions of this opcode are not the ring's to account for";
    }
    return "unknown opcode";
}

// Set (for good) once any path accepted CQE_SKIP_SUCCESS on an SQE (the Sqe.flags setter, the
// sqe_flags column of a batch, push_sqes): until then Ring::flush skips looking for skip chains,
// which keeps the batch path free of the scan. A path that wrote the flag without setting this
// would make its chain counted as separate operations, whose pins are then kept, not freed
// early (a skipped member never posts a completion it was not counted for).
inline std::atomic<bool>& skip_flag_used() noexcept {
    static std::atomic<bool> used{false};
    return used;
}
inline void note_skip_flag(std::uint8_t flags) noexcept {
    if ((flags & sqe_flags::CQE_SKIP_SUCCESS) != 0) {
        skip_flag_used().store(true, std::memory_order_relaxed);
    }
}

// Why `s` cannot be the last member of a chain whose earlier members carry CQE_SKIP_SUCCESS;
// nullptr if it can.
inline const char* skip_chain_end_refusal(const Sqe& s) noexcept {
    if (policy_of(s.opcode).skip.kind == Skip::LinkTimeout) {
        return "its last SQE is a LINK_TIMEOUT, which posts its own completion and cancels the "
               "member before it, so the chain could post two completions";
    }
    if (!policy_of(s.opcode).known) return "its last SQE has an unknown opcode";
    return nullptr;
}

}  // namespace iouring::bindings
