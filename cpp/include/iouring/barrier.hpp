// Memory ordering on the words shared with the kernel, written once.
//
// The kernel and we each own one end of every ring: we write the SQ tail and the CQ head, the
// kernel writes the SQ head, the CQ tail and the flags words. A word we publish is stored with
// release (so the entries written before it are visible first); a word the kernel publishes is
// loaded with acquire (so the entries it wrote are visible after it).
#pragma once

#include <atomic>
#include <cstdint>

namespace iouring {

inline std::uint32_t load_acquire(std::uint32_t* word) noexcept {
    return std::atomic_ref<std::uint32_t>(*word).load(std::memory_order_acquire);
}

inline std::uint32_t load_relaxed(std::uint32_t* word) noexcept {
    return std::atomic_ref<std::uint32_t>(*word).load(std::memory_order_relaxed);
}

inline void store_release(std::uint32_t* word, std::uint32_t value) noexcept {
    std::atomic_ref<std::uint32_t>(*word).store(value, std::memory_order_release);
}

// A full fence: under SQPOLL, the tail we just stored and the NEED_WAKEUP flag we are about to
// read must not be reordered, or we can miss a kernel thread that went to sleep (liburing's
// io_uring_smp_mb() before reading sq.flags).
inline void full_fence() noexcept { std::atomic_thread_fence(std::memory_order_seq_cst); }

}  // namespace iouring
