// Zig's "nop" test, run over every ring configuration: prepare a NOP on a 1-entry ring, assert
// the whole SQE and every counter before and after submit, compare the whole CQE, then a second
// NOP with IO_DRAIN.
#include "check.hpp"

using namespace iouring;

namespace {

Sqe expected_nop(std::uint64_t user_data, std::uint8_t flags) {
    Sqe want{};
    want.opcode = static_cast<std::uint8_t>(Op::NOP);
    want.flags = flags;
    want.user_data = user_data;
    return want;
}

void test_nop(IoUring& ring) {
    const bool sqpoll = check::is_sqpoll(ring);
    CHECK_EQ(ring.sq().entries(), 1);
    CHECK_EQ(ring.cq().entries(), 2);

    Sqe* sqe = ring.get_sqe();
    if (!CHECK(sqe != nullptr)) return;
    prep_nop(*sqe, 0xaaaaaaaa);
    CHECK_SQE(*sqe, expected_nop(0xaaaaaaaa, 0));

    // Prepared, not yet published: only our private tail moved.
    CHECK_EQ(ring.sq().sqe_head(), 0);
    CHECK_EQ(ring.sq().sqe_tail(), 1);
    CHECK_EQ(ring.sq().shared_tail(), 0);
    CHECK_EQ(ring.cq().head(), 0);
    CHECK_EQ(ring.sq_ready(), 1);
    CHECK_EQ(ring.cq_ready(), 0);
    CHECK_EQ(ring.sq_space_left(), 0);
    CHECK(ring.get_sqe() == nullptr);  // a 1-entry SQ is now full

    int submitted = ring.submit();
    if (sqpoll) {
        // The count is "published and not yet consumed": the kernel thread may already have
        // taken it (liburing returns the same).
        CHECK(submitted == 0 || submitted == 1);
    } else if (!CHECK_EQ(submitted, 1)) {
        return;  // waiting for the CQE below would hang
    }
    CHECK_EQ(ring.sq().sqe_head(), 1);
    CHECK_EQ(ring.sq().sqe_tail(), 1);
    CHECK_EQ(ring.sq().shared_tail(), 1);
    CHECK_EQ(ring.cq().head(), 0);
    if (!sqpoll) {
        // Synchronous submission: the kernel consumed the SQE and posted the CQE inline.
        CHECK_EQ(ring.sq_ready(), 0);
        CHECK_EQ(ring.sq().kernel_head(), 1);
        if (!CHECK_EQ(ring.cq_ready(), 1)) return;
    }

    Cqe cqe{};
    CHECK_EQ(ring.copy_cqe(cqe), 0);
    CHECK_CQE(cqe, 0xaaaaaaaa, 0, 0);
    CHECK_EQ(ring.cq().head(), 1);
    CHECK_EQ(ring.cq_ready(), 0);
    // Under SQPOLL the kernel thread posts the CQE before it publishes its SQ head.
    if (sqpoll) check::wait_sq_consumed(ring);
    CHECK_EQ(ring.sq_ready(), 0);
    CHECK_EQ(ring.sq_space_left(), 1);

    // IO_DRAIN: the NOP waits for everything before it (nothing here) and completes normally.
    Sqe* barrier = ring.get_sqe();
    if (!CHECK(barrier != nullptr)) return;
    prep_nop(*barrier, 0xbbbbbbbb);
    barrier->flags |= sqe_flags::IO_DRAIN;
    CHECK_SQE(*barrier, expected_nop(0xbbbbbbbb, sqe_flags::IO_DRAIN));
    submitted = ring.submit();
    if (sqpoll) {
        CHECK(submitted == 0 || submitted == 1);
    } else if (!CHECK_EQ(submitted, 1)) {
        return;
    }
    CHECK_EQ(ring.copy_cqe(cqe), 0);
    CHECK_CQE(cqe, 0xbbbbbbbb, 0, 0);
    if (sqpoll) check::wait_sq_consumed(ring);
    CHECK_EQ(ring.sq().sqe_head(), 2);
    CHECK_EQ(ring.sq().sqe_tail(), 2);
    CHECK_EQ(ring.sq().shared_tail(), 2);
    CHECK_EQ(ring.sq().kernel_head(), 2);
    CHECK_EQ(ring.cq().head(), 2);
    CHECK_EQ(ring.cq().tail(), 2);
    CHECK_EQ(ring.cq_ready(), 0);
    CHECK_EQ(ring.sq().dropped(), 0);
    CHECK_EQ(ring.cq().overflow(), 0);

    // Nothing is left: a non-waiting copy returns 0 without blocking.
    Cqe none[2];
    CHECK_EQ(ring.copy_cqes(none, 2, 0), 0);
}

// prep_rw writes every field, and get_sqe hands out a zeroed entry even when the slot still
// holds an earlier SQE: a ring's second round through a slot must not see the first's fields.
void test_nop_get_sqe_zeroes(IoUring& ring) {
    Sqe* sqe = ring.get_sqe();
    if (!CHECK(sqe != nullptr)) return;
    prep_read(*sqe, 0xcccccccc, 12345, sqe, 999, 77);
    sqe->flags = sqe_flags::ASYNC;
    sqe->buf_index = 7;
    sqe->addr3 = 3;
    prep_nop(*sqe, 0xcccccccc);
    CHECK_SQE(*sqe, expected_nop(0xcccccccc, 0));
    CHECK(ring.submit() >= 0);
    Cqe cqe{};
    CHECK_EQ(ring.copy_cqe(cqe), 0);
    CHECK_CQE(cqe, 0xcccccccc, 0, 0);

    // The same slot (1-entry ring) still holds the NOP above; get_sqe must clear it.
    if (check::is_sqpoll(ring)) check::wait_sq_consumed(ring);
    Sqe* again = ring.get_sqe();
    if (!CHECK(again == sqe)) return;
    CHECK_SQE(*again, Sqe{});
    prep_nop(*again, 0xdddddddd);
    CHECK(ring.submit() >= 0);
    CHECK_EQ(ring.copy_cqe(cqe), 0);
    CHECK_CQE(cqe, 0xdddddddd, 0, 0);
}

// A waiting copy_cqes submits what is prepared first: a wait for the completions of SQEs never
// submitted would never end.
void test_nop_copy_cqes_wait_submits_first(IoUring& ring) {
    Sqe* sqe = ring.get_sqe();
    if (!CHECK(sqe != nullptr)) return;
    prep_nop(*sqe, 0xeeeeeeee);
    Cqe out[1];
    CHECK_EQ(ring.copy_cqes(out, 1, 1), 1);
    CHECK_CQE(out[0], 0xeeeeeeee, 0, 0);
}

}  // namespace

int main() {
    check::require_io_uring();
    check::run_configs("test_nop", 1, test_nop);
    check::run_configs("test_nop_get_sqe_zeroes", 1, test_nop_get_sqe_zeroes);
    check::run_configs("test_nop_copy_cqes_wait_submits_first", 1,
                       test_nop_copy_cqes_wait_submits_first);
    return check::exit_code();
}
