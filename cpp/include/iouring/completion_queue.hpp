// The completion side of a ring: the kernel appends CQEs and moves the tail; we copy them out
// and move the head.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "abi.hpp"
#include "barrier.hpp"
#include "mmap.hpp"

namespace iouring {

// One entry of an IORING_SETUP_CQE32 ring: the 16-byte CQE followed by two u64s of extra data
// (big_cqe in the kernel; uring_cmd results, NOP with IORING_NOP_CQE32).
struct Cqe32 {
    Cqe cqe;
    std::uint64_t big_cqe[2];
};
static_assert(sizeof(Cqe32) == 32);
static_assert(offsetof(Cqe32, big_cqe) == 16);

class CompletionQueue {
public:
    CompletionQueue() = default;

    // `cqe_size` is 16, or 32 on IORING_SETUP_CQE32 rings (two more u64s per completion).
    void attach(const Mapping& ring, const CqRingOffsets& off,
                std::uint32_t cqe_size = sizeof(Cqe)) noexcept {
        cqe_size_ = cqe_size;
        head_ = ring.at<std::uint32_t>(off.head);
        tail_ = ring.at<std::uint32_t>(off.tail);
        overflow_ = ring.at<std::uint32_t>(off.overflow);
        flags_ = off.flags != 0 ? ring.at<std::uint32_t>(off.flags) : nullptr;
        cqes_ = ring.at<Cqe>(off.cqes);
        mask_ = *ring.at<std::uint32_t>(off.ring_mask);
        entries_ = *ring.at<std::uint32_t>(off.ring_entries);
    }

    // CQEs the kernel has posted and we have not consumed. We are the only writer of the
    // head, so a relaxed load of it is enough; the tail needs acquire (see barrier.hpp).
    [[nodiscard]] std::uint32_t ready() const noexcept {
        return load_acquire(tail_) - load_relaxed(head_);
    }

    // Copies up to `max` ready CQEs into `out` (two memcpys around the wrap) without
    // consuming them; returns how many. `out` holds max * cqe_size() bytes.
    std::uint32_t peek_batch(void* out, std::uint32_t max) const noexcept {
        std::uint32_t head = load_relaxed(head_);
        std::uint32_t n = std::min(load_acquire(tail_) - head, max);
        std::uint32_t first = head & mask_;
        std::uint32_t before_wrap = std::min(n, entries_ - first);
        auto* dst = static_cast<std::byte*>(out);
        const auto* src = reinterpret_cast<const std::byte*>(cqes_);
        std::memcpy(dst, src + std::size_t{first} * cqe_size_,
                    std::size_t{before_wrap} * cqe_size_);
        std::memcpy(dst + std::size_t{before_wrap} * cqe_size_, src,
                    std::size_t{n - before_wrap} * cqe_size_);
        return n;
    }

    // The CQE `index` places past the head; only valid for index < ready(). On CQE32 rings the
    // entry continues for another 16 bytes (cqe_size()).
    [[nodiscard]] const Cqe& at(std::uint32_t index) const noexcept {
        const auto* base = reinterpret_cast<const std::byte*>(cqes_);
        return *reinterpret_cast<const Cqe*>(
            base + std::size_t{(load_relaxed(head_) + index) & mask_} * cqe_size_);
    }
    [[nodiscard]] std::uint32_t cqe_size() const noexcept { return cqe_size_; }

    void advance(std::uint32_t count) noexcept {
        // Release: our reads of the consumed CQEs happen before the kernel may reuse the slots.
        if (count != 0) store_release(head_, load_relaxed(head_) + count);
    }

    [[nodiscard]] std::uint32_t head() const noexcept { return load_relaxed(head_); }
    [[nodiscard]] std::uint32_t tail() const noexcept { return load_acquire(tail_); }
    [[nodiscard]] std::uint32_t overflow() const noexcept { return load_acquire(overflow_); }
    [[nodiscard]] std::uint32_t ring_flags() const noexcept {
        return flags_ != nullptr ? load_acquire(flags_) : 0;
    }
    [[nodiscard]] std::uint32_t entries() const noexcept { return entries_; }

    // IORING_CQ_EVENTFD_DISABLED, the one CQ ring flag the application writes: while it is set
    // the kernel does not signal the registered eventfd for new completions (liburing's
    // io_uring_cq_eventfd_enabled/toggle). A kernel without a CQ flags word (before 5.8) always
    // signals: eventfd_enabled() is true there and disabling returns false.
    [[nodiscard]] bool eventfd_enabled() const noexcept {
        return (ring_flags() & cq_ring::EVENTFD_DISABLED) == 0;
    }
    bool eventfd_toggle(bool enabled) noexcept {
        if (flags_ == nullptr) return enabled;
        // We are the only writer of this word (the kernel only reads it).
        std::uint32_t flags = load_relaxed(flags_);
        flags = enabled ? (flags & ~cq_ring::EVENTFD_DISABLED)
                        : (flags | cq_ring::EVENTFD_DISABLED);
        store_release(flags_, flags);
        // Full fence: after enabling, the caller looks at the tail for completions posted
        // while the flag was set (they were not signalled). The kernel stores the tail and
        // then, past a full barrier (wq_has_sleeper's smp_mb in io_cqring_wake), reads the
        // flag; with our store ordered before our load of the tail, either the kernel sees
        // the flag clear and signals, or we see its completion.
        full_fence();
        return true;
    }

private:
    std::uint32_t* head_ = nullptr;
    std::uint32_t* tail_ = nullptr;
    std::uint32_t* overflow_ = nullptr;
    std::uint32_t* flags_ = nullptr;
    Cqe* cqes_ = nullptr;
    std::uint32_t mask_ = 0;
    std::uint32_t entries_ = 0;
    std::uint32_t cqe_size_ = sizeof(Cqe);
};

}  // namespace iouring
