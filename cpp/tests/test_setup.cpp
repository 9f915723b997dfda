// Ring setup: entry counts and setup flags the core refuses (-EINVAL, before or from the kernel),
// the optional ring layouts and modes it accepts (NO_SQARRAY, SQPOLL, CQSIZE), the probe, and
// moving a ring. NO_SQARRAY and SQPOLL are skipped (exit 77) where the kernel refuses them.
#include <unistd.h>

#include <cstring>
#include <string>

#include "check.hpp"

using namespace iouring;

namespace {

// Runs `count` NOPs through `ring` a few at a time and checks every CQE, in order.
void nop_round_trip(IoUring& ring, std::uint32_t count, std::uint64_t first_user_data) {
    std::uint64_t next = first_user_data;
    std::uint64_t expected = first_user_data;
    while (expected < first_user_data + count) {
        std::uint32_t queued = 0;
        while (queued < ring.sq().entries() && next < first_user_data + count) {
            Sqe* sqe = check::get_sqe(ring);
            prep_nop(*sqe, next++);
            ++queued;
        }
        if (!CHECK(ring.submit() >= 0)) return;
        std::vector<Cqe> cqes = check::reap(ring, queued);
        if (!CHECK_EQ(cqes.size(), queued)) return;
        for (const Cqe& cqe : cqes) {
            if (!CHECK_CQE(cqe, expected, 0, 0)) return;
            ++expected;
        }
    }
}

void test_setup_invalid_entries() {
    for (unsigned entries : {0u, 3u, 65536u}) {
        IoUring ring;
        if (!CHECK_EQ(ring.init(entries), -EINVAL)) {
            std::fprintf(stderr, "    entries = %u\n", entries);
        }
        CHECK(!ring.is_open());
        CHECK_EQ(ring.fd(), -1);
    }
}

// The same limits as the kernel applies them: it refuses 0 itself, and takes the largest ring.
void test_setup_kernel_limits() {
    Params p{};
    CHECK_EQ(sys::io_uring_setup(0, &p), -EINVAL);
    p = Params{};
    CHECK_EQ(sys::io_uring_setup(kMaxEntries * 2, &p), -EINVAL);
    IoUring big;
    CHECK_EQ(big.init(kMaxEntries), 0);
    CHECK_EQ(big.sq().entries(), kMaxEntries);
    CHECK_EQ(big.cq().entries(), 2 * kMaxEntries);
}

void test_setup_unsupported_flags() {
    const struct {
        std::uint32_t flags;
        const char* name;
    } refused[] = {
        {setup::NO_MMAP, "NO_MMAP"},
        {setup::NO_MMAP | setup::REGISTERED_FD_ONLY, "NO_MMAP|REGISTERED_FD_ONLY"},
        {setup::CQE_MIXED, "CQE_MIXED"},
        {setup::SQE_MIXED, "SQE_MIXED"},
        {setup::SQPOLL | setup::CQE_MIXED, "SQPOLL|CQE_MIXED"},  // one bad bit spoils the set
    };
    for (const auto& row : refused) {
        IoUring ring;
        SetupOptions options;
        options.flags = row.flags;
        if (!CHECK_EQ(ring.init(4, options), -EINVAL)) {
            std::fprintf(stderr, "    flags = %s\n", row.name);
        }
        CHECK(!ring.is_open());
    }
}

// A failed init leaves no earlier ring behind: init() closes first.
void test_setup_failed_init_closes() {
    IoUring ring;
    CHECK_EQ(ring.init(4), 0);
    CHECK(ring.is_open());
    SetupOptions options;
    options.flags = setup::NO_MMAP;
    CHECK_EQ(ring.init(4, options), -EINVAL);
    CHECK(!ring.is_open());
}

// Big entries: 128-byte SQEs and 32-byte CQEs change the strides of both arrays. NOPs and
// reads through every slot twice (so both arrays wrap) must come back intact.
void test_setup_big_entries() {
    const struct {
        std::uint32_t flags;
        const char* name;
        std::uint32_t sqe_size;
        std::uint32_t cqe_size;
    } configs[] = {
        {setup::SQE128, "SQE128", 128, 16},
        {setup::CQE32, "CQE32", 64, 32},
        {setup::SQE128 | setup::CQE32, "SQE128|CQE32", 128, 32},
    };
    for (const auto& config : configs) {
        IoUring ring;
        SetupOptions options;
        options.flags = config.flags;
        int err = ring.init(4, options);
        if (err == -EINVAL) {
            check::skip("test_setup_big_entries", std::string("kernel refuses ") + config.name);
            continue;
        }
        check::run("test_setup_big_entries", [&] {
            CHECK_EQ(err, 0);
            CHECK_EQ(ring.sq().sqe_size(), config.sqe_size);
            CHECK_EQ(ring.cq().cqe_size(), config.cqe_size);
            unsigned char zeros[64];
            for (std::uint64_t round = 0; round < 8; ++round) {
                for (std::uint64_t i = 0; i < 4; ++i) {
                    Sqe* sqe = ring.get_sqe();
                    CHECK(sqe != nullptr);
                    if (sqe == nullptr) return;
                    if (i % 2 == 0) {
                        prep_nop(*sqe, round * 4 + i);
                    } else {
                        std::memset(zeros, 0xff, sizeof(zeros));
                        prep_read(*sqe, round * 4 + i, -1, zeros, sizeof(zeros), 0);
                    }
                }
                CHECK_EQ(ring.submit_and_wait(4), 4);
                unsigned char out[4 * 32];
                CHECK_EQ(ring.copy_cqes(out, 4, 0), 4);
                for (std::uint64_t i = 0; i < 4; ++i) {
                    Cqe cqe;
                    std::memcpy(&cqe, out + i * config.cqe_size, sizeof(cqe));
                    CHECK_EQ(cqe.user_data, round * 4 + i);
                    CHECK_EQ(cqe.res, i % 2 == 0 ? 0 : -EBADF);
                }
            }
        });
    }
}

void test_setup_no_sqarray() {
    IoUring ring;
    SetupOptions options;
    options.flags = setup::NO_SQARRAY;
    int err = ring.init(4, options);
    if (err == -EINVAL) {
        check::skip("test_setup_no_sqarray", "kernel refuses IORING_SETUP_NO_SQARRAY (< 6.6)");
        return;
    }
    check::run("test_setup_no_sqarray", [&] {
        if (!CHECK_EQ(err, 0)) return;
        CHECK((ring.flags() & setup::NO_SQARRAY) != 0);
        // Without the index array the kernel takes SQE (head & mask) directly; 40 NOPs through
        // 4 slots walk every slot ten times.
        nop_round_trip(ring, 40, 0x100);
        CHECK_EQ(ring.sq().kernel_head(), 40);
    });
}

void test_setup_sqpoll() {
    IoUring ring;
    SetupOptions options;
    options.flags = setup::SQPOLL;
    options.sq_thread_idle = 10;  // ms: let the kernel thread fall asleep quickly
    int err = ring.init(4, options);
    if (err == -EINVAL || err == -EPERM) {
        check::skip("test_setup_sqpoll",
                    std::string("kernel refuses IORING_SETUP_SQPOLL: ") + std::strerror(-err));
        return;
    }
    check::run("test_setup_sqpoll", [&] {
        if (!CHECK_EQ(err, 0)) return;
        CHECK((ring.flags() & setup::SQPOLL) != 0);
        nop_round_trip(ring, 20, 0x200);

        // Once idle, the thread sleeps and asks for a wakeup: submitting must then enter with
        // IORING_ENTER_SQ_WAKEUP (sq_ring_needs_enter says so), and the NOPs still complete.
        bool asleep = false;
        for (int i = 0; i < 200 && !asleep; ++i) {
            ::usleep(5000);
            asleep = (ring.sq().kernel_flags() & sq_ring::NEED_WAKEUP) != 0;
        }
        CHECK(asleep);
        std::uint32_t enter_flags = 0;
        CHECK(ring.sq_ring_needs_enter(enter_flags));
        // Without the wakeup the NOPs below would never complete: stop rather than hang.
        if (!CHECK_EQ(enter_flags, enter::SQ_WAKEUP)) return;
        nop_round_trip(ring, 8, 0x300);
    });
}

void test_setup_cqsize() {
    IoUring ring;
    if (!CHECK_EQ(ring.init(4), 0)) return;
    CHECK_EQ(ring.sq().entries(), 4);
    CHECK_EQ(ring.cq().entries(), 8);  // twice the SQ by default
    SetupOptions options;
    options.flags = setup::CQSIZE;
    options.cq_entries = 64;
    if (!CHECK_EQ(ring.init(4, options), 0)) return;
    CHECK_EQ(ring.sq().entries(), 4);
    CHECK_EQ(ring.cq().entries(), 64);
    CHECK((ring.features() & feat::SINGLE_MMAP) != 0);
    CHECK((ring.features() & feat::NODROP) != 0);
    nop_round_trip(ring, 16, 0x400);
}

void test_setup_probe() {
    IoUring ring;
    if (!CHECK_EQ(ring.init(1), 0)) return;
    Probe probe{};
    if (!CHECK(ring.probe(probe) >= 0)) return;
    CHECK(probe_supports(probe, Op::NOP));
    CHECK(probe_supports(probe, Op::READ));
    CHECK(probe_supports(probe, Op::READV));
    CHECK(probe.last_op >= static_cast<std::uint8_t>(Op::READ));
    std::printf("    kernel knows opcodes 0..%u\n", static_cast<unsigned>(probe.last_op));
}

void test_setup_move() {
    IoUring a;
    if (!CHECK_EQ(a.init(2), 0)) return;
    const int fd = a.fd();
    IoUring b(std::move(a));
    CHECK(!a.is_open());  // the moved-from ring owns nothing
    CHECK_EQ(b.fd(), fd);
    nop_round_trip(b, 6, 0x500);
    IoUring c;
    CHECK_EQ(c.init(1), 0);
    c = std::move(b);  // closes c's own ring first
    CHECK_EQ(c.fd(), fd);
    nop_round_trip(c, 6, 0x600);
    c.close();
    CHECK(!c.is_open());
}

// A registered ring fd holds a reference to the ring in the thread's io_uring context, which has
// 16 slots: close() must give the slot back, or the 17th ring fails with -EBUSY.
void test_setup_ring_fd_released_by_close() {
    for (int i = 0; i < 40; ++i) {
        IoUring ring;
        if (!CHECK_EQ(ring.init(2), 0)) return;
        const int index = ring.register_ring_fd();
        if (i == 0 && index == -EINVAL) {
            return check::skip("test_setup_ring_fd_released_by_close", "no REGISTER_RING_FDS");
        }
        if (!CHECK(index >= 0)) return;
        nop_round_trip(ring, 2, 0x700);
        ring.close();
    }
}

// RESIZE_RINGS (6.13, DEFER_TASKRUN rings): completions not yet reaped move to the new rings
// with their positions, and the new SQ takes as many SQEs as it has entries. With an SQ index
// array and without one (NO_SQARRAY), since the array moves too.
void test_setup_resize() {
    for (std::uint32_t layout : {0u, setup::NO_SQARRAY}) {
        IoUring ring;
        SetupOptions options;
        options.flags = setup::SINGLE_ISSUER | setup::DEFER_TASKRUN | layout;
        if (!CHECK_EQ(ring.init(4, options), 0)) return;
        for (std::uint64_t i = 0; i < 3; ++i) prep_nop(*check::get_sqe(ring), 0x800 + i);
        if (!CHECK_EQ(ring.submit(), 3)) return;
        prep_nop(*check::get_sqe(ring), 0x8ff);  // prepared, not flushed: resize must refuse
        CHECK_EQ(ring.resize(16), -EBUSY);
        CHECK_EQ(ring.submit(), 1);
        const int err = ring.resize(16);
        if (err == -EINVAL) return check::skip("test_setup_resize", "no REGISTER_RESIZE_RINGS");
        if (!CHECK_EQ(err, 0)) return;
        CHECK_EQ(ring.sq().entries(), 16);
        CHECK_EQ(ring.cq().entries(), 32);
        std::vector<Cqe> cqes = check::reap(ring, 4);  // posted before or after: all arrive once
        if (CHECK_EQ(cqes.size(), 4)) {
            for (std::uint64_t i = 0; i < 3; ++i) CHECK_CQE(cqes[i], 0x800 + i, 0, 0);
            CHECK_CQE(cqes[3], 0x8ff, 0, 0);
        }
        nop_round_trip(ring, 40, 0x900);  // whole new SQ per round, across the wrap
    }
}

}  // namespace

int main() {
    check::run("test_setup_invalid_entries", test_setup_invalid_entries);
    check::run("test_setup_unsupported_flags", test_setup_unsupported_flags);
    check::require_io_uring();
    check::run("test_setup_failed_init_closes", test_setup_failed_init_closes);
    check::run("test_setup_kernel_limits", test_setup_kernel_limits);
    check::run("test_setup_cqsize", test_setup_cqsize);
    check::run("test_setup_probe", test_setup_probe);
    check::run("test_setup_move", test_setup_move);
    check::run("test_setup_ring_fd_released_by_close", test_setup_ring_fd_released_by_close);
    check::run("test_setup_resize", test_setup_resize);
    test_setup_no_sqarray();
    test_setup_sqpoll();
    test_setup_big_entries();
    return check::exit_code();
}
