// Preparation of the buffers family of operations (see sqe.hpp for the conventions: every helper
// funnels into prep_rw() and sets the kernel's field layout of liburing's helper of the same
// name). Structs of the kernel ABI that only this family uses are defined here, with
// static_asserts on their layout.
//
// Two ways to hand the kernel buffers it picks from (IOSQE_BUFFER_SELECT + buf_group):
// - legacy provided buffers (PROVIDE_BUFFERS / REMOVE_BUFFERS operations, 5.7);
// - a registered provided-buffer ring (IORING_REGISTER_PBUF_RING, 5.19): an array of Buf
//   entries in memory we own, whose tail we publish and whose head the kernel advances as it
//   consumes buffers. The buffer id of the buffer used comes back in cqe.flags >> 16.
#pragma once

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <unistd.h>

#include "abi.hpp"
#include "io_uring.hpp"
#include "mmap.hpp"
#include "sqe.hpp"

namespace iouring {

// One entry of a provided-buffer ring (struct io_uring_buf).
struct Buf {
    std::uint64_t addr;
    std::uint32_t len;
    std::uint16_t bid;
    std::uint16_t resv;  // in entry 0: the ring's tail
};
static_assert(sizeof(Buf) == 16);
static_assert(offsetof(Buf, bid) == 12);
static_assert(offsetof(Buf, resv) == 14);

// Argument of IORING_(UN)REGISTER_PBUF_RING (struct io_uring_buf_reg).
struct BufReg {
    std::uint64_t ring_addr;
    std::uint32_t ring_entries;
    std::uint16_t bgid;
    std::uint16_t flags;  // pbuf:: bits
    std::uint64_t resv[3];
};
static_assert(sizeof(BufReg) == 40);
static_assert(offsetof(BufReg, bgid) == 12);
static_assert(offsetof(BufReg, resv) == 16);

// Argument of IORING_REGISTER_PBUF_STATUS (struct io_uring_buf_status).
struct BufStatus {
    std::uint32_t buf_group;
    std::uint32_t head;  // out: the kernel's head
    std::uint32_t resv[8];
};
static_assert(sizeof(BufStatus) == 40);

// IOU_PBUF_RING_* flags of BufReg
namespace pbuf {
inline constexpr std::uint16_t MMAP = 1u << 0;  // the kernel allocates the ring (we never do)
inline constexpr std::uint16_t INC = 1u << 1;   // incremental consumption (6.12)
}  // namespace pbuf

// The kernel takes at most 32768 entries (65536 would make full and empty look alike) and
// buffer ids and legacy buffer counts are 16-bit.
inline constexpr std::uint32_t kMaxBufRingEntries = 32768;
inline constexpr std::uint32_t kMaxBufferIds = 65536;

// --- operations --------------------------------------------------------------------------

// Hands `nr` buffers of `len` bytes each, starting at `addr`, to group `bgid` with ids
// bid, bid + 1, ... The kernel owns them until an operation consumes one or they are removed.
inline void prep_provide_buffers(Sqe& sqe, std::uint64_t user_data, void* addr, std::uint32_t len,
                                 std::int32_t nr, std::uint16_t bgid, std::uint16_t bid) noexcept {
    prep_rw(sqe, Op::PROVIDE_BUFFERS, nr, address_of(addr), len, bid, user_data);
    sqe.buf_index = bgid;
}

// Removes up to `nr` buffers of group `bgid`; res is the number removed.
inline void prep_remove_buffers(Sqe& sqe, std::uint64_t user_data, std::int32_t nr,
                                std::uint16_t bgid) noexcept {
    prep_rw(sqe, Op::REMOVE_BUFFERS, nr, 0, 0, 0, user_data);
    sqe.buf_index = bgid;
}

// A read into a provided buffer of `buf_group` (at most `len` bytes; 0: the whole buffer).
inline void prep_read_select(Sqe& sqe, std::uint64_t user_data, std::int32_t fd, std::uint32_t len,
                             std::uint64_t offset, std::uint16_t buf_group) noexcept {
    prep_rw(sqe, Op::READ, fd, 0, len, offset, user_data);
    sqe.flags = sqe_flags::BUFFER_SELECT;
    sqe.buf_index = buf_group;
}

// Multishot read (pipes, eventfds, sockets...): one completion per chunk, each in a provided
// buffer of `buf_group`, flagged MORE until the last.
inline void prep_read_multishot(Sqe& sqe, std::uint64_t user_data, std::int32_t fd,
                                std::uint32_t nbytes, std::uint64_t offset,
                                std::uint16_t buf_group) noexcept {
    prep_rw(sqe, Op::READ_MULTISHOT, fd, 0, nbytes, offset, user_data);
    sqe.flags = sqe_flags::BUFFER_SELECT;
    sqe.buf_index = buf_group;
}

// --- provided-buffer rings ---------------------------------------------------------------

// The ring's tail overlays the resv field of entry 0. We own it: the kernel only reads it.
inline std::uint16_t* buf_ring_tail(Buf* ring) noexcept { return &ring[0].resv; }

inline std::uint32_t buf_ring_mask(std::uint32_t entries) noexcept { return entries - 1; }

inline void buf_ring_init(Buf* ring) noexcept {
    std::atomic_ref<std::uint16_t>(*buf_ring_tail(ring)).store(0, std::memory_order_relaxed);
}

// Writes buffer `bid` into the entry `offset` places past the tail. The kernel does not see it
// until buf_ring_advance() publishes the tail. Entry fields other than resv only: in entry 0,
// resv is the tail.
inline void buf_ring_add(Buf* ring, const void* addr, std::uint32_t len, std::uint16_t bid,
                         std::uint32_t mask, std::uint32_t offset) noexcept {
    std::uint16_t tail =
        std::atomic_ref<std::uint16_t>(*buf_ring_tail(ring)).load(std::memory_order_relaxed);
    Buf& buf = ring[(tail + offset) & mask];
    buf.addr = address_of(addr);
    buf.len = len;
    buf.bid = bid;
}

// Publishes `count` entries added by buf_ring_add(). Store-release: the entries written before
// must be visible to the kernel (which loads the tail with acquire) before the new tail is.
inline void buf_ring_advance(Buf* ring, std::uint16_t count) noexcept {
    std::atomic_ref<std::uint16_t> tail(*buf_ring_tail(ring));
    auto next = static_cast<std::uint16_t>(tail.load(std::memory_order_relaxed) + count);
    tail.store(next, std::memory_order_release);
}

// Registers `entries` (a power of two up to 32768) ring entries at `ring_addr` (page-aligned,
// at least entries * sizeof(Buf) bytes rounded up to a page) as buffer group `bgid`.
inline int register_buf_ring(IoUring& ring, Buf* ring_addr, std::uint32_t entries,
                             std::uint16_t bgid, std::uint16_t flags) noexcept {
    BufReg reg{};
    reg.ring_addr = address_of(ring_addr);
    reg.ring_entries = entries;
    reg.bgid = bgid;
    reg.flags = flags;
    return ring.register_op(RegisterOp::REGISTER_PBUF_RING, &reg, 1);
}

inline int unregister_buf_ring(IoUring& ring, std::uint16_t bgid) noexcept {
    BufReg reg{};
    reg.bgid = bgid;
    return ring.register_op(RegisterOp::UNREGISTER_PBUF_RING, &reg, 1);
}

// The kernel's head of group `bgid` (6.8): entries before it were consumed.
inline int buf_ring_head(IoUring& ring, std::uint16_t bgid, std::uint16_t& head) noexcept {
    BufStatus status{};
    status.buf_group = bgid;
    int ret = ring.register_op(RegisterOp::REGISTER_PBUF_STATUS, &status, 1);
    if (ret == 0) head = static_cast<std::uint16_t>(status.head);
    return ret;
}

// Anonymous, page-aligned, zeroed memory (ring entries and buffers): mmap'd rather than
// malloc'd, so it starts on a page boundary (the kernel requires that of a ring, and copies
// into page-aligned buffers run fastest).
class PageMemory {
public:
    // Maps `size` bytes rounded up to whole pages. Returns 0 or -errno.
    int allocate(std::size_t size) noexcept {
        reset();
        auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
        if (size == 0 || size > SIZE_MAX - page) return -EINVAL;
        return mapping_.map_anonymous((size + page - 1) / page * page);
    }

    void reset() noexcept { mapping_.reset(); }

    [[nodiscard]] std::byte* data() const noexcept { return mapping_.data(); }
    [[nodiscard]] std::size_t size() const noexcept { return mapping_.size(); }

private:
    Mapping mapping_;
};

}  // namespace iouring
