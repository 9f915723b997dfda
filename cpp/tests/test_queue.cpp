// The two rings' bookkeeping: SQ full after exactly `entries` SQEs, thousands of NOPs through a
// 4-entry ring, copy_cqes batches that wrap the CQ array, CQ overflow with NODROP, and the
// unsigned 32-bit counter arithmetic on a fake ring whose counters are about to wrap.
#include <sys/mman.h>
#include <unistd.h>

#include "check.hpp"

using namespace iouring;

namespace {

// --- SQ full ---------------------------------------------------------------------------------

void test_queue_sq_full(IoUring& ring) {
    const std::uint32_t entries = ring.sq().entries();
    CHECK_EQ(entries, 4);
    for (int round = 0; round < 3; ++round) {
        Sqe* taken[4] = {};
        for (std::uint32_t i = 0; i < entries; ++i) {
            taken[i] = ring.get_sqe();
            if (!CHECK(taken[i] != nullptr)) return;
            for (std::uint32_t j = 0; j < i; ++j) CHECK(taken[i] != taken[j]);
            prep_nop(*taken[i], 100u * static_cast<unsigned>(round) + i);
            CHECK_EQ(ring.sq_ready(), i + 1);
            CHECK_EQ(ring.sq_space_left(), entries - i - 1);
        }
        // Exactly `entries` SQEs fit; the next one is refused, and refusing changes nothing.
        CHECK(ring.get_sqe() == nullptr);
        CHECK(ring.get_sqe() == nullptr);
        CHECK_EQ(ring.sq().sqe_tail() - ring.sq().sqe_head(), entries);
        CHECK_EQ(ring.sq().unflushed(), entries);

        int submitted = ring.submit();
        if (check::is_sqpoll(ring)) {
            CHECK(submitted >= 0 && submitted <= 4);
        } else {
            CHECK_EQ(submitted, 4);
            CHECK_EQ(ring.sq_space_left(), entries);  // consumed at submit time
        }
        std::vector<Cqe> cqes = check::reap(ring, entries);
        if (!CHECK_EQ(cqes.size(), entries)) return;
        for (std::uint32_t i = 0; i < entries; ++i) {
            CHECK_CQE(cqes[i], 100u * static_cast<unsigned>(round) + i, 0, 0);
        }
        // SQPOLL: reaped CQEs can precede the kernel thread's SQ head store.
        if (check::is_sqpoll(ring)) check::wait_sq_consumed(ring);
        CHECK_EQ(ring.sq_space_left(), entries);
    }

    // reserve() takes the same `entries` slots in one step, and no more.
    const std::uint32_t first = ring.sq().sqe_tail();
    CHECK_EQ(ring.sq().reserve(entries + 3), entries);
    CHECK_EQ(ring.sq().reserve(1), 0);
    CHECK(ring.get_sqe() == nullptr);
    CHECK_EQ(ring.sq().sqe_tail() - first, entries);
    for (std::uint32_t i = 0; i < entries; ++i) prep_nop(ring.sq().at(first + i), 0x900 + i);
    CHECK(ring.submit() >= 0);
    std::vector<Cqe> cqes = check::reap(ring, entries);
    if (!CHECK_EQ(cqes.size(), entries)) return;
    for (std::uint32_t i = 0; i < entries; ++i) CHECK_CQE(cqes[i], 0x900 + i, 0, 0);
}

// --- wrap-around -----------------------------------------------------------------------------

// 10,000 NOPs through a 4-entry SQ (and 8-entry CQ): the masked indices wrap 2,500 times. Never
// more in flight than the CQ holds, so nothing overflows here.
void test_queue_wrap_around(IoUring& ring) {
    constexpr std::uint32_t kTotal = 10000;
    const std::uint32_t cq_entries = ring.cq().entries();
    const std::uint32_t sq_tail0 = ring.sq().sqe_tail();
    const std::uint32_t cq_head0 = ring.cq().head();
    std::vector<unsigned char> seen(kTotal, 0);
    std::uint32_t submitted = 0;
    std::uint32_t completed = 0;
    std::uint64_t expected_next = 0;
    bool in_order = true;
    Cqe batch[16];
    int stalls = 0;
    while (completed < kTotal) {
        // Vary the batch size (1..4) so the tail visits every slot with every neighbour.
        std::uint32_t want = 1 + submitted % 4;
        while (want > 0 && submitted < kTotal && submitted - completed < cq_entries) {
            Sqe* sqe = ring.get_sqe();
            if (sqe == nullptr) {
                if (submitted != completed) break;  // reap first
                // Nothing in flight yet the SQ looks full: only SQPOLL's late head store can do
                // that, and check::get_sqe waits it out (anything else fails there).
                sqe = check::get_sqe(ring);
            }
            prep_nop(*sqe, submitted);
            ++submitted;
            --want;
        }
        if (!CHECK(ring.submit() >= 0)) return;
        int n = ring.copy_cqes(batch, 16, 1);
        if (!CHECK(n >= 0)) return;
        if (n == 0 && ++stalls > 1000) {
            FAIL("no progress: copy_cqes keeps returning 0");
            return;
        }
        for (int i = 0; i < n; ++i) {
            const Cqe& cqe = batch[i];
            if (cqe.user_data >= kTotal || cqe.res != 0 || cqe.flags != 0) {
                CHECK_CQE(cqe, expected_next, 0, 0);
                return;
            }
            if (!CHECK_EQ(seen[cqe.user_data], 0)) return;  // each user_data exactly once
            seen[cqe.user_data] = 1;
            if (cqe.user_data != expected_next) in_order = false;
            ++expected_next;
        }
        completed += static_cast<std::uint32_t>(n);
    }
    CHECK(in_order);  // NOPs complete inline, in submission order, in every configuration
    if (check::is_sqpoll(ring)) check::wait_sq_consumed(ring);
    CHECK_EQ(submitted, kTotal);
    CHECK_EQ(ring.sq().sqe_tail() - sq_tail0, kTotal);
    CHECK_EQ(ring.sq().sqe_head(), ring.sq().sqe_tail());
    CHECK_EQ(ring.sq().kernel_head(), ring.sq().sqe_tail());
    CHECK_EQ(ring.cq().head() - cq_head0, kTotal);
    CHECK_EQ(ring.cq().tail(), ring.cq().head());
    CHECK_EQ(ring.sq().dropped(), 0);
    CHECK_EQ(ring.cq().overflow(), 0);
}

// --- copy_cqes around the end of the CQ array -------------------------------------------------

// IoUring(2) has a 2-entry SQ and a 4-entry CQ. Submitting up to the CQ's capacity and reaping
// 1, 2, 3 or 4 at a time moves the head to every slot, so many batches straddle the end of the
// array and need copy_cqes's second memcpy; each must come out whole and in order.
void test_queue_copy_cqes_wrap(IoUring& ring) {
    CHECK_EQ(ring.sq().entries(), 2);
    const std::uint32_t cq_entries = ring.cq().entries();
    if (!CHECK_EQ(cq_entries, 4)) return;
    std::uint64_t next_user_data = 0x1000;
    std::uint64_t expected = 0x1000;
    std::uint32_t in_flight = 0;
    int wrapped_batches = 0;
    for (unsigned round = 0; round < 400; ++round) {
        while (in_flight < cq_entries) {
            Sqe* sqe = check::get_sqe(ring);
            prep_nop(*sqe, next_user_data++);
            ++in_flight;
            if (ring.sq().unflushed() == ring.sq().entries()) break;  // SQ full: submit first
        }
        if (!CHECK(ring.submit() >= 0)) return;
        std::uint32_t take = std::min<std::uint32_t>(1 + round % cq_entries, in_flight);
        Cqe out[8];
        const std::uint32_t head_before = ring.cq().head();
        int n = ring.copy_cqes(out, take, take);
        if (!CHECK_EQ(n, take)) return;
        if ((head_before & (cq_entries - 1)) + take > cq_entries) ++wrapped_batches;
        for (std::uint32_t i = 0; i < take; ++i) {
            if (!CHECK_CQE(out[i], expected, 0, 0)) return;
            ++expected;
        }
        CHECK_EQ(ring.cq().head(), head_before + take);  // one head store per batch
        in_flight -= take;
    }
    // Drain: a non-waiting copy with room for more than is ready returns exactly what is ready.
    std::vector<Cqe> rest = check::reap(ring, in_flight);
    for (const Cqe& cqe : rest) {
        CHECK_CQE(cqe, expected, 0, 0);
        ++expected;
    }
    Cqe out[8];
    CHECK_EQ(ring.copy_cqes(out, 8, 0), 0);
    CHECK_EQ(expected, next_user_data);
    CHECK(wrapped_batches >= 50);
    CHECK_EQ(ring.cq().overflow(), 0);
}

// --- CQ overflow -----------------------------------------------------------------------------

// Four times the CQ's capacity of NOPs, none reaped until all are in: with IORING_FEAT_NODROP
// the kernel keeps the surplus and raises IORING_SQ_CQ_OVERFLOW; copy_cqes sees that through
// cq_ring_needs_flush() and enters to have it flushed, so every user_data comes back exactly once.
void test_queue_cq_overflow(IoUring& ring) {
    if (!CHECK((ring.features() & feat::NODROP) != 0)) return;
    const std::uint32_t cq_entries = ring.cq().entries();
    const std::uint32_t total = 4 * cq_entries;
    for (std::uint32_t i = 0; i < total; ++i) {
        Sqe* sqe = check::get_sqe(ring);
        prep_nop(*sqe, 0x5000 + i);
        if (ring.sq().unflushed() == ring.sq().entries() || i + 1 == total) {
            if (!CHECK(ring.submit() >= 0)) return;
        }
    }
    // Under SQPOLL submission is asynchronous: wait until the kernel thread took every SQE
    // (NOPs complete as they are taken, before the head moves).
    check::wait_sq_consumed(ring);
    CHECK_EQ(ring.cq_ready(), cq_entries);  // the ring is full...
    CHECK(ring.cq_ring_needs_flush());      // ...and the kernel holds the rest back
    CHECK((ring.sq().kernel_flags() & sq_ring::CQ_OVERFLOW) != 0);

    std::vector<unsigned char> seen(total, 0);
    std::uint32_t got = 0;
    Cqe out[64];
    int first = -1;
    for (int attempt = 0; attempt < 100 && got < total; ++attempt) {
        int n = ring.copy_cqes(out, 64, 0);
        if (!CHECK(n >= 0)) return;
        if (first < 0) first = n;
        for (int i = 0; i < n; ++i) {
            std::uint64_t index = out[i].user_data - 0x5000;
            if (index >= total || !CHECK_EQ(seen[index], 0)) {
                CHECK_CQE(out[i], 0x5000 + got, 0, 0);
                return;
            }
            CHECK_EQ(out[i].res, 0);
            seen[index] = 1;
        }
        got += static_cast<std::uint32_t>(n);
    }
    CHECK_EQ(first, cq_entries);  // the first copy takes what the ring held, without entering
    CHECK_EQ(got, total);
    CHECK(!ring.cq_ring_needs_flush());
    CHECK_EQ(ring.cq().overflow(), 0);  // NODROP: none lost
    CHECK_EQ(ring.copy_cqes(out, 64, 0), 0);
}

// --- unsigned counter arithmetic ---------------------------------------------------------------

// A fake ring in a memfd, laid out like the kernel's, whose counters start just below 2^32: the
// queues must compute ready/space with wrapping u32 subtraction and index with the mask, never
// compare head and tail as numbers.
void test_queue_counter_wrap() {
    int fd = ::memfd_create("iouring-fake-ring", MFD_CLOEXEC);
    if (!CHECK(fd >= 0)) return;
    if (!CHECK_EQ(::ftruncate(fd, 8192), 0)) {
        ::close(fd);
        return;
    }
    Mapping ring_map;
    Mapping sqe_map;
    CHECK_EQ(ring_map.map(fd, 4096, 0), 0);
    CHECK_EQ(sqe_map.map(fd, 4096, 4096), 0);
    ::close(fd);
    if (!ring_map || !sqe_map) return;

    SqRingOffsets sq_off{};
    sq_off.head = 0;
    sq_off.tail = 4;
    sq_off.ring_mask = 8;
    sq_off.ring_entries = 12;
    sq_off.flags = 16;
    sq_off.dropped = 20;
    sq_off.array = 64;
    CqRingOffsets cq_off{};
    cq_off.head = 128;
    cq_off.tail = 132;
    cq_off.ring_mask = 136;
    cq_off.ring_entries = 140;
    cq_off.overflow = 144;
    cq_off.flags = 148;
    cq_off.cqes = 192;
    auto word = [&](std::uint32_t offset) -> std::uint32_t& {
        return *ring_map.at<std::uint32_t>(offset);
    };

    // SQ: head == tail == 2^32 - 2, so the 4 free slots are positions 2, 3, 0, 1.
    word(sq_off.ring_mask) = 3;
    word(sq_off.ring_entries) = 4;
    word(sq_off.head) = 0xfffffffe;
    word(sq_off.tail) = 0xfffffffe;
    SubmissionQueue sq;
    sq.attach(ring_map, sq_off, sqe_map, /*has_array=*/true);
    const std::uint32_t* array = ring_map.at<std::uint32_t>(sq_off.array);
    for (std::uint32_t i = 0; i < 4; ++i) CHECK_EQ(array[i], i);  // identity index array
    CHECK_EQ(sq.sqe_head(), 0xfffffffeu);
    CHECK_EQ(sq.sqe_tail(), 0xfffffffeu);
    CHECK_EQ(sq.ready(), 0);
    CHECK_EQ(sq.space_left(), 4);
    Sqe* base = sqe_map.at<Sqe>(0);
    const std::uint32_t slots[] = {2, 3, 0, 1};
    for (std::uint32_t slot : slots) CHECK(sq.get_sqe_raw() == base + slot);
    CHECK(sq.get_sqe_raw() == nullptr);
    CHECK_EQ(sq.sqe_tail(), 2);  // wrapped past 2^32
    CHECK_EQ(sq.ready(), 4);
    CHECK_EQ(sq.space_left(), 0);
    CHECK_EQ(sq.unflushed(), 4);
    CHECK_EQ(sq.flush(), 4);
    CHECK_EQ(word(sq_off.tail), 2);
    CHECK_EQ(sq.shared_tail(), 2);
    CHECK_EQ(sq.unflushed(), 0);
    // The "kernel" consumes three: its head wraps too.
    word(sq_off.head) = 0xfffffffeu + 3u;
    CHECK_EQ(sq.kernel_head(), 1);
    CHECK_EQ(sq.ready(), 1);
    CHECK_EQ(sq.space_left(), 3);
    CHECK(sq.get_sqe_raw() == base + 2);
    CHECK_EQ(sq.flush(), 2);
    CHECK_EQ(word(sq_off.tail), 3);
    // reserve() counts the free slots with the same wrapping arithmetic: positions 3 and 4.
    CHECK_EQ(sq.reserve(7), 2);
    CHECK_EQ(sq.reserve(1), 0);
    CHECK_EQ(sq.sqe_tail(), 5);
    CHECK(&sq.at(3) == base + 3);
    CHECK(&sq.at(4) == base + 0);
    CHECK_EQ(sq.flush(), 4);
    CHECK_EQ(word(sq_off.tail), 5);

    // CQ: head = 2^32 - 2, tail = 1: three CQEs at positions 2, 3, 0.
    word(cq_off.ring_mask) = 3;
    word(cq_off.ring_entries) = 4;
    word(cq_off.head) = 0xfffffffe;
    word(cq_off.tail) = 1;
    Cqe* cqes = ring_map.at<Cqe>(cq_off.cqes);
    cqes[2] = Cqe{100, 1, 0};
    cqes[3] = Cqe{101, 2, 0};
    cqes[0] = Cqe{102, -3, 7};
    CompletionQueue cq;
    cq.attach(ring_map, cq_off);
    CHECK_EQ(cq.entries(), 4);
    CHECK_EQ(cq.ready(), 3);
    CHECK_EQ(cq.at(0).user_data, 100);
    CHECK_EQ(cq.at(2).user_data, 102);
    Cqe out[8] = {};
    CHECK_EQ(cq.peek_batch(out, 2), 2);  // capped by max, no wrap
    CHECK_CQE(out[0], 100, 1, 0);
    CHECK_CQE(out[1], 101, 2, 0);
    CHECK_EQ(cq.peek_batch(out, 8), 3);  // capped by ready, wraps the array
    CHECK_CQE(out[0], 100, 1, 0);
    CHECK_CQE(out[1], 101, 2, 0);
    CHECK_CQE(out[2], 102, -3, 7);
    CHECK_EQ(cq.ready(), 3);  // peeking consumes nothing
    cq.advance(3);
    CHECK_EQ(word(cq_off.head), 1);
    CHECK_EQ(cq.head(), 1);
    CHECK_EQ(cq.ready(), 0);
    CHECK_EQ(cq.peek_batch(out, 8), 0);
    // A completely full CQ starting at position 1: positions 1, 2, 3, 0.
    for (std::uint32_t i = 0; i < 4; ++i) cqes[(1 + i) & 3] = Cqe{200 + i, 0, 0};
    word(cq_off.tail) = 5;
    CHECK_EQ(cq.ready(), 4);
    CHECK_EQ(cq.peek_batch(out, 8), 4);
    for (std::uint32_t i = 0; i < 4; ++i) CHECK_CQE(out[i], 200 + i, 0, 0);
    cq.advance(0);  // a no-op, not a store
    CHECK_EQ(cq.head(), 1);
    cq.advance(4);
    CHECK_EQ(cq.head(), 5);
    CHECK_EQ(cq.ready(), 0);
}

}  // namespace

int main() {
    check::run("test_queue_counter_wrap", test_queue_counter_wrap);
    check::require_io_uring();
    check::run_configs("test_queue_sq_full", 4, test_queue_sq_full);
    check::run_configs("test_queue_wrap_around", 4, test_queue_wrap_around);
    check::run_configs("test_queue_copy_cqes_wrap", 2, test_queue_copy_cqes_wrap);
    check::run_configs("test_queue_cq_overflow", 4, test_queue_cq_overflow);
    return check::exit_code();
}
