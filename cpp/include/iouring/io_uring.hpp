// IoUring: one io_uring instance (its fd, its mappings, its two queues) with the ring-level
// operations of liburing/Zig: submit, wait, copy completions, register resources, probe.
// Errors are returned as -errno; nothing here throws or allocates after init().
#pragma once

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <pthread.h>
#include <unistd.h>
#include <utility>

#include "abi.hpp"
#include "barrier.hpp"
#include "completion_queue.hpp"
#include "mmap.hpp"
#include "sqe.hpp"
#include "submission_queue.hpp"
#include "syscall.hpp"

namespace iouring {

struct SetupOptions {
    std::uint32_t flags = 0;              // setup:: bits
    std::uint32_t sq_thread_idle = 1000;  // ms, with SQPOLL
    std::uint32_t sq_thread_cpu = 0;      // with SQ_AFF
    std::uint32_t cq_entries = 0;         // with CQSIZE
    std::uint32_t wq_fd = 0;              // with ATTACH_WQ
};

// Setup flags whose ring layout or semantics this core handles.
inline constexpr std::uint32_t kSupportedSetupFlags = setup::IOPOLL | setup::SQPOLL |
                                                      setup::SQ_AFF | setup::CQSIZE | setup::CLAMP |
                                                      setup::ATTACH_WQ | setup::R_DISABLED |
                                                      setup::SUBMIT_ALL | setup::COOP_TASKRUN |
                                                      setup::TASKRUN_FLAG | setup::SQE128 |
                                                      setup::CQE32 | setup::SINGLE_ISSUER |
                                                      setup::DEFER_TASKRUN | setup::NO_SQARRAY |
                                                      setup::HYBRID_IOPOLL;

inline bool is_power_of_two(unsigned n) noexcept { return n != 0 && (n & (n - 1)) == 0; }

class IoUring {
public:
    IoUring() = default;
    IoUring(const IoUring&) = delete;
    IoUring& operator=(const IoUring&) = delete;
    IoUring(IoUring&& other) noexcept { *this = std::move(other); }
    IoUring& operator=(IoUring&& other) noexcept {
        if (this != &other) {
            close();
            fd_ = std::exchange(other.fd_, -1);
            enter_fd_ = std::exchange(other.enter_fd_, -1);
            enter_flags_ = std::exchange(other.enter_flags_, 0);
            enter_thread_ = other.enter_thread_;
            flags_ = other.flags_;
            features_ = other.features_;
            sq_array_offset_known_ = other.sq_array_offset_known_;
            ring_map_ = std::move(other.ring_map_);
            sqe_map_ = std::move(other.sqe_map_);
            sq_ = std::exchange(other.sq_, {});
            cq_ = std::exchange(other.cq_, {});
            other.flags_ = other.features_ = 0;
        }
        return *this;
    }
    ~IoUring() { close(); }

    // Creates the ring. entries must be a power of two in 1..32768 (any power of two with
    // SetupFlags.CLAMP, which makes the kernel clamp entries and cq_entries); flags outside
    // kSupportedSetupFlags are refused with -EINVAL before the kernel sees them, as are kernels
    // without IORING_FEAT_SINGLE_MMAP (< 5.4, -ENOSYS). Returns 0 or -errno.
    int init(unsigned entries, const SetupOptions& options = {}) noexcept {
        close();
        if (!is_power_of_two(entries)) return -EINVAL;
        if (entries > kMaxEntries && (options.flags & setup::CLAMP) == 0) return -EINVAL;
        if ((options.flags & ~kSupportedSetupFlags) != 0) return -EINVAL;
        Params p{};
        p.flags = options.flags;
        p.sq_thread_idle = options.sq_thread_idle;
        p.sq_thread_cpu = options.sq_thread_cpu;
        p.cq_entries = options.cq_entries;
        p.wq_fd = options.wq_fd;
        int fd = sys::io_uring_setup(entries, &p);
        if (fd < 0) return fd;
        fd_ = enter_fd_ = fd;
        flags_ = p.flags;
        features_ = p.features;
        if ((features_ & feat::SINGLE_MMAP) == 0) {
            close();
            return -ENOSYS;
        }
        sq_array_offset_known_ = (flags_ & setup::NO_SQARRAY) == 0 &&
                                 p.sq_off.array == sq_array_offset_of(p);
        Mapping ring_map;
        Mapping sqe_map;
        int err = map_rings(p, ring_map, sqe_map);
        if (err != 0) {
            close();
            return err;
        }
        attach(p, std::move(ring_map), std::move(sqe_map));
        return 0;
    }

    // Resizes the rings (IORING_REGISTER_RESIZE_RINGS, Linux 6.13+, DEFER_TASKRUN rings only):
    // the kernel moves the SQEs it has not consumed and the CQEs not yet reaped into new rings
    // of sq_entries SQEs and cq_entries CQEs (0: twice sq_entries), keeping head and tail
    // positions; this then maps the new rings. Refused with -EBUSY while SQEs are prepared but
    // not flushed (the kernel copies published SQEs only). The kernel answers -EOVERFLOW when
    // the new rings cannot hold what is pending. If mapping the new rings fails after the
    // kernel resized them (-ENOMEM under RLIMIT_AS, say), the kernel reads and writes rings
    // that this object cannot reach while sq() and cq() still show the old ones: anything
    // prepared would silently never be submitted. The ring is then broken() for good; callers
    // must refuse every further use and only close() it. -EOPNOTSUPP: the
    // ring has an SQ index array whose new place cannot be known (see below); rings set up with
    // NO_SQARRAY have none.
    int resize(unsigned sq_entries, unsigned cq_entries = 0) noexcept {
        if (fd_ < 0) return -EBADF;
        if (sq_.unflushed() != 0) return -EBUSY;
        const bool has_array = (flags_ & setup::NO_SQARRAY) == 0;
        // The kernel (up to 6.18 at least) reports sq_off.array as 0 after a resize: the new
        // SQ array's place is computed the way the kernel computes it, which must have matched
        // what io_uring_setup reported, else the resize is refused before the kernel sees it.
        if (has_array && !sq_array_offset_known_) return -EOPNOTSUPP;
        Params p{};
        p.sq_entries = sq_entries;
        p.cq_entries = cq_entries;
        if (cq_entries != 0) p.flags = setup::CQSIZE;
        int ret = register_op(RegisterOp::REGISTER_RESIZE_RINGS, &p, 1);
        if (ret < 0) return ret;
        p.flags = flags_;  // the layout flags (NO_SQARRAY, SQE128, CQE32) are inherited
        if (has_array && p.sq_off.array == 0) {
            p.sq_off.array = static_cast<std::uint32_t>(sq_array_offset_of(p));
        }
        Mapping ring_map;
        Mapping sqe_map;
        int err = map_rings(p, ring_map, sqe_map);
        if (err != 0) {
            broken_ = true;
            return err;
        }
        // The old mappings are dropped only now: the kernel keeps their pages until unmapped,
        // and it no longer reads or writes them.
        attach(p, std::move(ring_map), std::move(sqe_map));
        return 0;
    }

    // Unmaps and closes. The kernel cancels what is still in flight; callers that lent memory
    // to in-flight operations must reap them first (the Python binding does).
    // A registered ring fd is a reference to the ring held by the registering thread's io_uring
    // context (16 slots per thread): closing fd_ does not drop it, so the ring would live on
    // and the slot stay taken until that thread exits. Only that thread can unregister it.
    void close() noexcept {
        if (fd_ >= 0 && enter_flags_ != 0 && pthread_equal(pthread_self(), enter_thread_) != 0) {
            unregister_ring_fd();
        }
        sqe_map_.reset();
        ring_map_.reset();
        if (fd_ >= 0) ::close(fd_);
        fd_ = enter_fd_ = -1;
        enter_flags_ = 0;
        flags_ = features_ = 0;
        sq_ = {};
        cq_ = {};
    }

    // For a forked child: its copies of the mappings do not exist (MADV_DONTFORK), and the
    // addresses may since hold the child's own mappings, so forget them without munmap; close
    // the child's copy of the fd so the parent's ring does not outlive the parent's close().
    void abandon_after_fork() noexcept {
        ring_map_.release();
        sqe_map_.release();
        if (fd_ >= 0) ::close(fd_);
        fd_ = enter_fd_ = -1;
        enter_flags_ = 0;
        sq_ = {};
        cq_ = {};
    }

    [[nodiscard]] bool is_open() const noexcept { return fd_ >= 0; }
    // A resize() whose new rings could not be mapped left this ring unusable (see resize).
    [[nodiscard]] bool broken() const noexcept { return broken_; }
    [[nodiscard]] int fd() const noexcept { return fd_; }
    [[nodiscard]] std::uint32_t flags() const noexcept { return flags_; }
    [[nodiscard]] std::uint32_t features() const noexcept { return features_; }
    [[nodiscard]] SubmissionQueue& sq() noexcept { return sq_; }
    [[nodiscard]] CompletionQueue& cq() noexcept { return cq_; }
    [[nodiscard]] const SubmissionQueue& sq() const noexcept { return sq_; }
    [[nodiscard]] const CompletionQueue& cq() const noexcept { return cq_; }

    // A vacant SQE, zeroed (a zeroed SQE is a NOP), or nullptr when the queue is full.
    [[nodiscard]] Sqe* get_sqe() noexcept {
        Sqe* sqe = sq_.get_sqe_raw();
        if (sqe != nullptr) std::memset(sqe, 0, sq_.sqe_size());
        return sqe;
    }

    std::uint32_t flush_sq() noexcept { return sq_.flush(); }

    // Whether submitting needs a syscall, and with which flags: always without SQPOLL; with
    // SQPOLL only when the kernel thread sleeps and asked to be woken.
    [[nodiscard]] bool sq_ring_needs_enter(std::uint32_t& enter_flags) const noexcept {
        if ((flags_ & setup::SQPOLL) == 0) return true;
        full_fence();  // see barrier.hpp: the tail store must precede the NEED_WAKEUP load
        if ((sq_.kernel_flags() & sq_ring::NEED_WAKEUP) != 0) {
            enter_flags |= enter::SQ_WAKEUP;
            return true;
        }
        return false;
    }

    // CQEs wait in the kernel: overflowed (NODROP) or behind deferred task work (TASKRUN).
    [[nodiscard]] bool cq_ring_needs_flush() const noexcept {
        return (sq_.kernel_flags() & (sq_ring::CQ_OVERFLOW | sq_ring::TASKRUN)) != 0;
    }

    // Reaping needs an enter even without waiting: IOPOLL rings only complete when polled, and
    // DEFER_TASKRUN rings only post completions when their issuer enters with GETEVENTS.
    [[nodiscard]] bool cq_ring_needs_enter() const noexcept {
        return (flags_ & (setup::IOPOLL | setup::DEFER_TASKRUN)) != 0 || cq_ring_needs_flush();
    }

    int enter(unsigned to_submit, unsigned min_complete, unsigned flags, const void* arg = nullptr,
              std::size_t argsz = 0) noexcept {
        // A registered ring fd lives in the registering thread's io_uring context only.
        if (enter_flags_ != 0 && pthread_equal(pthread_self(), enter_thread_) != 0) {
            return sys::io_uring_enter(enter_fd_, to_submit, min_complete, flags | enter_flags_,
                                       arg, argsz);
        }
        return sys::io_uring_enter(fd_, to_submit, min_complete, flags, arg, argsz);
    }

    // Registers the ring's own fd with the kernel (IORING_REGISTER_RING_FDS) so that later
    // enters from this thread skip the fd table lookup (IORING_ENTER_REGISTERED_RING); the
    // registration belongs to the calling thread, so other threads keep using the fd. Returns
    // the index or -errno.
    int register_ring_fd() noexcept {
        if (enter_flags_ != 0) return -EEXIST;
        RsrcUpdate update{};
        update.offset = ~0u;  // let the kernel pick a slot
        update.data = static_cast<std::uint64_t>(fd_);
        int ret = register_op(RegisterOp::REGISTER_RING_FDS, &update, 1);
        if (ret != 1) return ret < 0 ? ret : -EINVAL;
        enter_fd_ = static_cast<int>(update.offset);
        enter_flags_ = enter::REGISTERED_RING;
        enter_thread_ = pthread_self();
        return enter_fd_;
    }

    // Must run on the thread that registered it.
    int unregister_ring_fd() noexcept {
        if (enter_flags_ == 0) return -EINVAL;
        if (pthread_equal(pthread_self(), enter_thread_) == 0) return -EPERM;
        RsrcUpdate update{};
        update.offset = static_cast<std::uint32_t>(enter_fd_);
        int ret = register_op(RegisterOp::UNREGISTER_RING_FDS, &update, 1);
        if (ret != 1) return ret < 0 ? ret : -EINVAL;
        enter_fd_ = fd_;
        enter_flags_ = 0;
        return 0;
    }
    [[nodiscard]] bool ring_fd_registered() const noexcept { return enter_flags_ != 0; }

    // Flushes, then enters only when needed; returns the number of SQEs submitted or -errno.
    // Like the kernel, a wait interrupted by a signal after SQEs were submitted still returns
    // the submitted count.
    int submit_and_wait(unsigned wait_nr) noexcept {
        std::uint32_t submitted = flush_sq();
        std::uint32_t flags = 0;
        if (sq_ring_needs_enter(flags) || wait_nr > 0) {
            if (wait_nr > 0 || (flags_ & setup::IOPOLL) != 0) flags |= enter::GETEVENTS;
            return enter(submitted, wait_nr, flags);
        }
        return static_cast<int>(submitted);
    }
    int submit() noexcept { return submit_and_wait(0); }

    [[nodiscard]] std::uint32_t sq_ready() const noexcept { return sq_.ready(); }
    [[nodiscard]] std::uint32_t sq_space_left() const noexcept { return sq_.space_left(); }
    [[nodiscard]] std::uint32_t cq_ready() const noexcept { return cq_.ready(); }

    // Copies up to `max` CQEs into `out` and consumes them with one head store. When none are
    // ready and the kernel holds some back, or `wait_nr` > 0, enters with GETEVENTS first.
    // Returns the count copied or -errno. `out` holds max * cq().cqe_size() bytes (an array of
    // Cqe, or of 32-byte entries on CQE32 rings).
    //
    // A wait (wait_nr > 0) first submits the SQEs prepared and not yet submitted, in the same
    // io_uring_enter: otherwise a wait for their completions would never end. It still blocks
    // forever when fewer than wait_nr completions can come: nothing in flight, and no other
    // ring (msg_ring) or thread that will post one. This core does not count operations in
    // flight (the Python binding does, and raises instead of waiting); a caller that cannot
    // rule that case out must count them itself, or wait with a timeout (enter() with
    // IORING_ENTER_EXT_ARG).
    int copy_cqes(void* out, std::uint32_t max, std::uint32_t wait_nr) noexcept {
        if (cq_.ready() < std::max<std::uint32_t>(wait_nr, 1) &&
            (wait_nr > 0 || cq_ring_needs_enter())) {
            std::uint32_t flags = enter::GETEVENTS;
            unsigned to_submit = 0;
            if (wait_nr > 0) {
                to_submit = flush_sq();
                if (to_submit != 0) (void)sq_ring_needs_enter(flags);  // SQPOLL: SQ_WAKEUP
            }
            int ret = enter(to_submit, wait_nr, flags);
            if (ret < 0) return ret;
        }
        std::uint32_t n = cq_.peek_batch(out, max);
        cq_.advance(n);
        return static_cast<int>(n);
    }

    // Waits for one CQE and consumes it; `out` gets its first 16 bytes (the whole CQE unless
    // the ring is CQE32).
    int copy_cqe(Cqe& out) noexcept {
        while (cq_.ready() == 0) {
            int ret = enter(0, 1, enter::GETEVENTS);
            if (ret < 0) return ret;
        }
        out = cq_.at(0);
        cq_.advance(1);
        return 0;
    }

    void cq_advance(std::uint32_t count) noexcept { cq_.advance(count); }
    void cqe_seen() noexcept { cq_.advance(1); }

    int register_op(RegisterOp op, const void* arg, unsigned nr) noexcept {
        return sys::io_uring_register(fd_, op, arg, nr);
    }
    int register_files(const std::int32_t* fds, unsigned count) noexcept {
        return register_op(RegisterOp::REGISTER_FILES, fds, count);
    }
    int register_files_sparse(unsigned count) noexcept {
        RsrcRegister reg{};
        reg.nr = count;
        reg.flags = kRsrcRegisterSparse;
        return register_op(RegisterOp::REGISTER_FILES2, &reg, sizeof(reg));
    }
    // Returns the number of slots updated.
    int register_files_update(unsigned offset, const std::int32_t* fds, unsigned count) noexcept {
        FilesUpdate update{};
        update.offset = offset;
        update.fds = address_of(fds);
        return register_op(RegisterOp::REGISTER_FILES_UPDATE, &update, count);
    }
    int unregister_files() noexcept {
        return register_op(RegisterOp::UNREGISTER_FILES, nullptr, 0);
    }
    int register_buffers(const Iovec* iovecs, unsigned count) noexcept {
        return register_op(RegisterOp::REGISTER_BUFFERS, iovecs, count);
    }
    int unregister_buffers() noexcept {
        return register_op(RegisterOp::UNREGISTER_BUFFERS, nullptr, 0);
    }
    int register_eventfd(int eventfd) noexcept {
        return register_op(RegisterOp::REGISTER_EVENTFD, &eventfd, 1);
    }
    int unregister_eventfd() noexcept {
        return register_op(RegisterOp::UNREGISTER_EVENTFD, nullptr, 0);
    }
    int enable_rings() noexcept {
        return register_op(RegisterOp::REGISTER_ENABLE_RINGS, nullptr, 0);
    }
    // Fills `probe` (zeroed first) with the opcodes the kernel knows.
    int probe(Probe& probe) noexcept {
        probe = Probe{};
        return register_op(RegisterOp::REGISTER_PROBE, &probe, 256);
    }

private:
    // Maps the rings that `p` (as filled by io_uring_setup or RESIZE_RINGS) describes.
    int map_rings(const Params& p, Mapping& ring_map, Mapping& sqe_map) const noexcept {
        bool has_array = (p.flags & setup::NO_SQARRAY) == 0;
        std::size_t ring_size = p.cq_off.cqes + std::size_t{p.cq_entries} * cqe_size_of(p.flags);
        if (has_array) {
            ring_size = std::max(ring_size, p.sq_off.array +
                                                std::size_t{p.sq_entries} * sizeof(std::uint32_t));
        }
        int err = ring_map.map(fd_, ring_size, kOffSqRing);
        if (err == 0) {
            err = sqe_map.map(fd_, std::size_t{p.sq_entries} * sqe_size_of(p.flags), kOffSqes);
        }
        return err;
    }

    void attach(const Params& p, Mapping&& ring_map, Mapping&& sqe_map) noexcept {
        ring_map_ = std::move(ring_map);
        sqe_map_ = std::move(sqe_map);
        sq_.attach(ring_map_, p.sq_off, sqe_map_, (p.flags & setup::NO_SQARRAY) == 0,
                   sqe_size_of(p.flags));
        cq_.attach(ring_map_, p.cq_off, cqe_size_of(p.flags));
    }

    // Where the kernel puts the SQ index array (rings_size() in io_uring/io_uring.c): after the
    // CQEs (the whole struct doubled on CQE32 rings), aligned to a cache line.
    static std::size_t sq_array_offset_of(const Params& p) noexcept {
        std::size_t off = p.cq_off.cqes + std::size_t{p.cq_entries} * sizeof(Cqe);
        if ((p.flags & setup::CQE32) != 0) off <<= 1;
        constexpr std::size_t kCacheLine = 64;
        return (off + kCacheLine - 1) & ~(kCacheLine - 1);
    }

    static std::uint32_t cqe_size_of(std::uint32_t flags) noexcept {
        return (flags & setup::CQE32) != 0 ? 32 : 16;
    }
    static std::uint32_t sqe_size_of(std::uint32_t flags) noexcept {
        return (flags & setup::SQE128) != 0 ? 128 : 64;
    }

    int fd_ = -1;
    int enter_fd_ = -1;              // fd_, or the registered index with REGISTERED_RING
    std::uint32_t enter_flags_ = 0;  // enter::REGISTERED_RING once the fd is registered
    pthread_t enter_thread_{};       // the thread whose io_uring context holds enter_fd_
    std::uint32_t flags_ = 0;
    std::uint32_t features_ = 0;
    bool sq_array_offset_known_ = false;  // sq_array_offset_of() matched io_uring_setup's
    bool broken_ = false;                 // see resize()
    Mapping ring_map_;
    Mapping sqe_map_;
    SubmissionQueue sq_;
    CompletionQueue cq_;
};

inline bool probe_supports(const Probe& probe, Op op) noexcept {
    auto i = static_cast<unsigned>(op);
    return i <= probe.last_op && i < probe.ops_len && (probe.ops[i].flags & kProbeOpSupported) != 0;
}

}  // namespace iouring
