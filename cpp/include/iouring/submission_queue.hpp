// The submission side of a ring: the shared head/tail/flags words, the SQE array, and the
// private sqe_head/sqe_tail that let callers prepare SQEs before publishing them in one store.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "abi.hpp"
#include "barrier.hpp"
#include "mmap.hpp"

namespace iouring {

class SubmissionQueue {
public:
    SubmissionQueue() = default;

    // `ring` maps the SQ ring words described by `off`; `sqes` maps the SQE array. When the
    // ring has an index array (no IORING_SETUP_NO_SQARRAY) it is filled once with the identity
    // mapping, so SQE i always sits at ring position i and flushing is a single tail store.
    // `sqe_size` is 64, or 128 on IORING_SETUP_SQE128 rings.
    void attach(const Mapping& ring, const SqRingOffsets& off, const Mapping& sqes, bool has_array,
                std::uint32_t sqe_size = sizeof(Sqe)) noexcept {
        sqe_size_ = sqe_size;
        head_ = ring.at<std::uint32_t>(off.head);
        tail_ = ring.at<std::uint32_t>(off.tail);
        flags_ = ring.at<std::uint32_t>(off.flags);
        dropped_ = ring.at<std::uint32_t>(off.dropped);
        mask_ = *ring.at<std::uint32_t>(off.ring_mask);
        entries_ = *ring.at<std::uint32_t>(off.ring_entries);
        sqes_ = sqes.at<Sqe>(0);
        if (has_array) {
            std::uint32_t* array = ring.at<std::uint32_t>(off.array);
            for (std::uint32_t i = 0; i < entries_; ++i) array[i] = i;
        }
        sqe_head_ = sqe_tail_ = load_relaxed(tail_);
    }

    // Next vacant SQE (not zeroed), or nullptr when all `entries` slots are taken by SQEs that
    // the kernel has not consumed yet.
    [[nodiscard]] Sqe* get_sqe_raw() noexcept {
        // Acquire: once the kernel's head says a slot is consumed, its SQE may be overwritten.
        std::uint32_t head = load_acquire(head_);
        if (sqe_tail_ - head >= entries_) return nullptr;
        Sqe* sqe = &at(sqe_tail_);
        ++sqe_tail_;
        return sqe;
    }

    // Takes up to `max` vacant slots at once (not zeroed) and returns how many: the slots at
    // positions [sqe_tail() before the call, sqe_tail() after it), reached with at().
    std::uint32_t reserve(std::uint32_t max) noexcept {
        std::uint32_t n = std::min(max, entries_ - (sqe_tail_ - load_acquire(head_)));
        sqe_tail_ += n;
        return n;
    }

    // Publishes every prepared SQE with one store; returns how many SQEs the kernel has not
    // consumed yet (the to_submit of the next enter).
    std::uint32_t flush() noexcept {
        if (sqe_head_ != sqe_tail_) {
            // Release: the SQE bodies written before must be visible before the new tail.
            store_release(tail_, sqe_tail_);
            sqe_head_ = sqe_tail_;
        }
        return sqe_tail_ - load_acquire(head_);
    }

    // Prepared SQEs not yet consumed by the kernel, flushed or not (liburing's sq_ready).
    [[nodiscard]] std::uint32_t ready() const noexcept { return sqe_tail_ - load_acquire(head_); }
    [[nodiscard]] std::uint32_t space_left() const noexcept { return entries_ - ready(); }
    [[nodiscard]] std::uint32_t unflushed() const noexcept { return sqe_tail_ - sqe_head_; }

    [[nodiscard]] std::uint32_t kernel_flags() const noexcept { return load_acquire(flags_); }
    [[nodiscard]] std::uint32_t kernel_head() const noexcept { return load_acquire(head_); }
    [[nodiscard]] std::uint32_t shared_tail() const noexcept { return load_relaxed(tail_); }
    [[nodiscard]] std::uint32_t dropped() const noexcept { return load_acquire(dropped_); }
    [[nodiscard]] std::uint32_t sqe_head() const noexcept { return sqe_head_; }
    [[nodiscard]] std::uint32_t sqe_tail() const noexcept { return sqe_tail_; }
    [[nodiscard]] std::uint32_t entries() const noexcept { return entries_; }
    [[nodiscard]] std::uint32_t mask() const noexcept { return mask_; }
    // The SQE array; index it with at(), which knows the entry size.
    [[nodiscard]] Sqe* sqes() const noexcept { return sqes_; }
    // The SQE at a ring position. On SQE128 rings the entry continues for another 64 bytes
    // (sqe_size()), which only URING_CMD and NOP128 use.
    [[nodiscard]] Sqe& at(std::uint32_t position) const noexcept {
        auto* base = reinterpret_cast<std::byte*>(sqes_);
        return *reinterpret_cast<Sqe*>(base + std::size_t{position & mask_} * sqe_size_);
    }
    [[nodiscard]] std::uint32_t sqe_size() const noexcept { return sqe_size_; }

private:
    std::uint32_t* head_ = nullptr;
    std::uint32_t* tail_ = nullptr;
    std::uint32_t* flags_ = nullptr;
    std::uint32_t* dropped_ = nullptr;
    Sqe* sqes_ = nullptr;
    std::uint32_t mask_ = 0;
    std::uint32_t entries_ = 0;
    std::uint32_t sqe_size_ = sizeof(Sqe);
    std::uint32_t sqe_head_ = 0;
    std::uint32_t sqe_tail_ = 0;
};

}  // namespace iouring
