// Provided buffers through the ring, over every ring configuration: the legacy
// PROVIDE_BUFFERS/REMOVE_BUFFERS with a buffer-select READ, and a registered buffer ring fed to a
// multishot RECV. The buffer id travels in the upper 16 bits of cqe.flags; a multishot
// receive keeps MORE set until its final completion.
#include <string>
#include <sys/socket.h>
#include <unistd.h>
#include <vector>

#include "check.hpp"

using namespace iouring;

namespace {

std::vector<Cqe> submit_and_reap(IoUring& ring, std::uint32_t n) {
    CHECK(ring.submit() >= 0);
    return check::reap(ring, n);
}

std::uint32_t buffer_flags(std::uint16_t bid, std::uint32_t extra = 0) {
    return cqe_flags::BUFFER | (std::uint32_t{bid} << cqe_flags::BUFFER_SHIFT) | extra;
}

// Four 16-byte buffers, ids 10..13, in group 7; a READ with BUFFER_SELECT picks one and says
// which in the CQE; REMOVE_BUFFERS returns the three left.
void test_buffers_provide_read_remove(IoUring& ring) {
    constexpr std::uint16_t kGroup = 7;
    std::vector<char> pool(4 * 16, 0);
    Sqe* sqe = check::get_sqe(ring);
    prep_provide_buffers(*sqe, 0x1001, pool.data(), 16, 4, kGroup, 10);
    Sqe want{};
    want.opcode = static_cast<std::uint8_t>(Op::PROVIDE_BUFFERS);
    want.fd = 4;  // the count
    want.addr = address_of(pool.data());
    want.len = 16;
    want.off = 10;  // the first id
    want.buf_index = kGroup;
    want.user_data = 0x1001;
    CHECK_SQE(*sqe, want);
    std::vector<Cqe> cqes = submit_and_reap(ring, 1);
    if (!CHECK_EQ(cqes.size(), 1)) return;
    CHECK_CQE(cqes[0], 0x1001, 0, 0);

    int fds[2];
    if (!CHECK_EQ(::pipe(fds), 0)) return;
    const std::string text = "selected buffer";
    CHECK_EQ(::write(fds[1], text.data(), text.size()), text.size());
    sqe = check::get_sqe(ring);
    prep_read_select(*sqe, 0x1002, fds[0], 16, kNoOffset, kGroup);
    CHECK_EQ(sqe->flags, sqe_flags::BUFFER_SELECT);
    CHECK_EQ(sqe->buf_index, kGroup);
    cqes = submit_and_reap(ring, 1);
    if (CHECK_EQ(cqes.size(), 1)) {
        const auto n = static_cast<std::int32_t>(text.size());
        // The kernel hands out the most recently provided buffer first.
        const Cqe& got = cqes[0];
        CHECK_EQ(got.res, n);
        CHECK((got.flags & cqe_flags::BUFFER) != 0);
        const auto bid = static_cast<std::uint16_t>(got.flags >> cqe_flags::BUFFER_SHIFT);
        if (CHECK(bid >= 10 && bid <= 13)) {
            CHECK_CQE(got, 0x1002, n, buffer_flags(bid));
            CHECK(std::string(pool.data() + (bid - 10) * 16, text.size()) == text);
        }
    }

    sqe = check::get_sqe(ring);
    prep_remove_buffers(*sqe, 0x1003, 8, kGroup);
    cqes = submit_and_reap(ring, 1);
    if (CHECK_EQ(cqes.size(), 1)) CHECK_CQE(cqes[0], 0x1003, 3, 0);
    // The group is empty now: a select read fails with ENOBUFS.
    CHECK_EQ(::write(fds[1], "x", 1), 1);
    sqe = check::get_sqe(ring);
    prep_read_select(*sqe, 0x1004, fds[0], 16, kNoOffset, kGroup);
    cqes = submit_and_reap(ring, 1);
    if (CHECK_EQ(cqes.size(), 1)) CHECK_CQE(cqes[0], 0x1004, -ENOBUFS, 0);
    ::close(fds[0]);
    ::close(fds[1]);
}

// A registered ring of 8 buffers of 32 bytes: a multishot RECV takes one per chunk, in ring
// order, with MORE set; closing the peer ends it with a final res=0 completion without MORE.
void test_buffers_ring_recv_multishot(IoUring& ring) {
    constexpr std::uint16_t kGroup = 3;
    constexpr std::uint32_t kEntries = 8;
    constexpr std::uint32_t kSize = 32;
    PageMemory ring_memory, buffers;
    if (!CHECK_EQ(ring_memory.allocate(kEntries * sizeof(Buf)), 0)) return;
    if (!CHECK_EQ(buffers.allocate(kEntries * kSize), 0)) return;
    auto* entries = reinterpret_cast<Buf*>(ring_memory.data());
    buf_ring_init(entries);
    const int err = register_buf_ring(ring, entries, kEntries, kGroup, 0);
    if (err == -EINVAL) return check::skip("test_buffers_ring_recv_multishot", "no PBUF_RING");
    if (!CHECK_EQ(err, 0)) return;
    for (std::uint16_t bid = 0; bid < kEntries; ++bid) {
        buf_ring_add(entries, buffers.data() + bid * kSize, kSize, bid, buf_ring_mask(kEntries),
                     bid);
    }
    buf_ring_advance(entries, kEntries);

    int fds[2];
    if (!CHECK_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0)) return;
    Sqe* sqe = check::get_sqe(ring);
    prep_recv_multishot(*sqe, 0x2001, fds[0], 0, 0, kGroup);
    Sqe want{};
    want.opcode = static_cast<std::uint8_t>(Op::RECV);
    want.flags = sqe_flags::BUFFER_SELECT;
    want.ioprio = recvsend::RECV_MULTISHOT;
    want.fd = fds[0];
    want.buf_index = kGroup;
    want.user_data = 0x2001;
    CHECK_SQE(*sqe, want);
    CHECK(ring.submit() >= 0);

    // One chunk at a time, each reaped before the next is sent, so each lands in its own buffer.
    const std::string chunks[3] = {"first", "second chunk", "third"};
    for (std::uint16_t i = 0; i < 3; ++i) {
        CHECK_EQ(::write(fds[1], chunks[i].data(), chunks[i].size()), chunks[i].size());
        std::vector<Cqe> cqes = check::reap(ring, 1);
        if (!CHECK_EQ(cqes.size(), 1)) break;
        CHECK_CQE(cqes[0], 0x2001, static_cast<std::int32_t>(chunks[i].size()),
                  buffer_flags(i, cqe_flags::MORE));
        const auto* bytes = reinterpret_cast<const char*>(buffers.data() + i * kSize);
        CHECK(std::string(bytes, chunks[i].size()) == chunks[i]);
    }
    std::uint16_t head = 0;
    const int status = buf_ring_head(ring, kGroup, head);
    if (status != -EINVAL) {  // PBUF_STATUS arrived in 6.8
        CHECK_EQ(status, 0);
        CHECK_EQ(head, 3);
    }

    ::close(fds[1]);
    std::vector<Cqe> cqes = check::reap(ring, 1);
    if (CHECK_EQ(cqes.size(), 1)) CHECK_CQE(cqes[0], 0x2001, 0, 0);
    ::close(fds[0]);
    CHECK_EQ(unregister_buf_ring(ring, kGroup), 0);
}

}  // namespace

int main() {
    check::require_io_uring();
    check::run_configs("test_buffers_provide_read_remove", 8, test_buffers_provide_read_remove);
    check::run_configs("test_buffers_ring_recv_multishot", 8, test_buffers_ring_recv_multishot);
    return check::exit_code();
}
