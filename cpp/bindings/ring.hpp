// Ring: the Python-facing io_uring. It owns the C++ IoUring and everything that makes it safe
// from Python: the pins of prepared and in-flight operations, stale-handle detection, fork
// detection, GIL release around blocking waits, and the draining close.
//
// Thread safety: every method runs with the GIL held, and the GIL is released only around
// kernel calls that may block (enter_blocking(), the SQPOLL SQ wait, the unregistrations),
// where no bookkeeping is touched; an unregistration refuses registrations of its table until
// its own bookkeeping is settled. Pins are destroyed (which may run Python code and switch
// threads) only after the bookkeeping of the current call is consistent.
#pragma once

#include <pybind11/pybind11.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <ctime>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "errors.hpp"
#include "fork.hpp"
#include "inflight_table.hpp"
#include "pins.hpp"
#include <iouring/io_uring.hpp>

namespace iouring::bindings {

using Deadline = std::optional<std::chrono::steady_clock::time_point>;

// "Op.NAME" for an opcode (or "opcode N"), for messages.
std::string op_name(std::uint8_t opcode);

// The deadline `timeout` seconds from now (None: no deadline).
Deadline deadline_after(py::handle timeout);

// How one wait on the ring may end besides its wait_nr completions, and how it sleeps.
// Implicitly made from a Deadline: most waits have nothing else.
struct WaitOptions {
    WaitOptions(const Deadline& d = {}) : deadline(d) {}  // NOLINT(google-explicit-constructor)
    Deadline deadline;                       // timeout=: relative, re-armed on every retry
    std::optional<KernelTimespec> absolute;  // deadline=: IORING_ENTER_ABS_TIMER, ring's clock
    std::uint32_t min_wait_usec = 0;         // min_wait=: IORING_FEAT_MIN_TIMEOUT batching
    std::optional<std::uint64_t> sigmask;    // sigmask=: kernel sigset_t, bit n-1 = signal n
    bool no_iowait = false;                  // iowait=False: IORING_ENTER_NO_IOWAIT
    [[nodiscard]] bool bounded() const noexcept { return deadline || absolute; }
};

// Converted arguments of one operation: the SQE body to copy into a slot and what it pins.
struct Prepared {
    Sqe sqe{};
    PinList pins;
};

// Buffers registered with IORING_REGISTER_BUFFERS, kept alive while registered and while any
// fixed-buffer operation that was flushed under this registration is in flight.
struct RegisteredBuffers {
    std::vector<std::shared_ptr<BufferExport>> exports;
    std::vector<Iovec> iovecs;
};

// Where a byte range stands against a registered buffer (see registered_range).
enum class RangeFault : std::uint8_t { None, NothingRegistered, BadIndex, Outside };

// The one check that keeps the kernel inside pinned memory for every fixed-buffer path (the
// prep methods, the batch methods and push_sqes): [start, start + size) must lie inside
// registered buffer `index` of `table` (nullptr: nothing registered). `start` is an address,
// or with `relative` an offset from the buffer's start. Overflow-free for any 64-bit values.
inline RangeFault registered_range(const RegisteredBuffers* table, std::uint64_t index,
                                   std::uint64_t start, std::uint64_t size, bool relative) {
    if (table == nullptr) return RangeFault::NothingRegistered;
    if (index >= table->iovecs.size()) return RangeFault::BadIndex;
    const Iovec& reg = table->iovecs[index];
    if (!relative) {
        if (start < reg.base) return RangeFault::Outside;
        start -= reg.base;
    }
    if (size > reg.len || start > reg.len - size) return RangeFault::Outside;
    return RangeFault::None;
}

// Not enable_shared_from_this: pybind11 would then hold the ring by shared_from_this() and
// ignore the holder made by the constructor, whose deleter drops the handle cache.
class Ring {
public:
    Ring(unsigned entries, const SetupOptions& options);
    ~Ring();
    Ring(const Ring&) = delete;
    Ring& operator=(const Ring&) = delete;

    // Raises ValueError on a closed ring, RingForkedError in a forked child and RuntimeError on
    // a ring that a failed resize() broke.
    void check_usable() const {
        if (closed_ || closing_ || broken_) raise_unusable();
        if (fork_generation_ != fork_generation.load(std::memory_order_relaxed)) {
            throw RingForkedError(
                "this ring belongs to the parent process; a forked child must create its own");
        }
    }

    // --- submission side -------------------------------------------------------------------
    // Takes a vacant slot (reset to a NOP) and returns its absolute position.
    std::uint64_t acquire_slot();
    // The SQE at an absolute position, if it has not been flushed yet.
    Sqe& sqe_at(std::uint64_t position);
    [[nodiscard]] bool is_stale(std::uint64_t position) const {
        return closed_ || closing_ || broken_ || position < flushed_ || position >= handed_out_;
    }
    // Writes a prepared operation into the slot at `position`, replacing its pins.
    void prepare(std::uint64_t position, Prepared&& op);
    // acquire_slot() + prepare(): one call per operation.
    std::uint64_t push(Prepared&& op);
    // Takes up to `max` vacant slots (not reset: the caller prepares every one of them) for a
    // batch; returns the first position and sets `count`. Raises SubmissionQueueFull when
    // max > 0 and no slot is free.
    std::uint64_t reserve_slots(std::uint32_t max, std::uint32_t& count);
    // Adds a pin to the (unflushed) slot at `position`; batches share one pin this way.
    void add_slot_pin(std::uint64_t position, const Pin& pin) {
        slot_pins_[position & core_.sq().mask()].push_back(pin);
        ++slot_pin_count_;
    }
    // Publishes the prepared SQEs and moves their pins in flight. A linked chain that uses
    // CQE_SKIP_SUCCESS counts as one operation under its user_data, holding every member's pins
    // (see skip_refusal in op_policy.hpp); a chain breaking those rules raises ValueError before
    // anything is published.
    std::uint32_t flush();
    // Why CQE_SKIP_SUCCESS cannot be used on this ring at all; nullptr if it can.
    [[nodiscard]] const char* skip_ring_refusal() const noexcept;
    // Raises TimeoutError when `deadline` passes first (the SQEs were submitted all the same).
    int submit_and_wait(unsigned wait_nr, const WaitOptions& wait = {});
    // Flushes and submits without waiting (GIL held); with `getevents` the enter also posts
    // deferred completions (DEFER_TASKRUN). Returns the number submitted.
    int submit_nowait(bool getevents);
    int enter(unsigned to_submit, unsigned min_complete, unsigned flags);

    // --- completion side -------------------------------------------------------------------
    // Copies up to `max` CQEs into `out` and consumes them, waiting first as copy_cqes does.
    // At the deadline it copies what is ready.
    // `out` holds max entries of the ring's CQE size (core().cq().cqe_size(): 16, or 32 on
    // CQE32 rings).
    std::uint32_t copy_cqes(void* out, std::uint32_t max, std::uint32_t wait_nr,
                            const WaitOptions& wait = {});
    // Waits until at least `wait_nr` CQEs are ready (with min_wait: or at least one once
    // min_wait passed); false if the timeout or deadline passed first.
    bool wait_ready(std::uint32_t wait_nr, const WaitOptions& wait = {});
    // Whether the timeout or absolute deadline of `wait` has passed (on the ring's clock).
    [[nodiscard]] bool wait_expired(const WaitOptions& wait) const;
    // The clock of waits with a deadline (register_clock() changes it).
    void set_wait_clock(int clockid) noexcept { wait_clock_ = clockid; }
    [[nodiscard]] int wait_clock() const noexcept { return wait_clock_; }
    // Enters (without waiting) when CQEs are held back in the kernel: overflowed, behind task
    // work, or on an IOPOLL ring.
    void flush_held_back();
    // Consumes `count` ready CQEs (count <= cq_ready()), releasing what they unpin.
    void cq_advance(std::uint32_t count);

    // --- registration ----------------------------------------------------------------------
    void register_buffers(std::shared_ptr<RegisteredBuffers> buffers);
    void unregister_buffers();
    // Installs the table after a successful io_uring_register update (sparse, update, clone).
    void replace_registered_buffers(std::shared_ptr<RegisteredBuffers> buffers) {
        retire_registered_buffers();
        registered_buffers_ = std::move(buffers);
    }
    [[nodiscard]] const RegisteredBuffers* registered_buffers() const {
        return registered_buffers_.get();
    }
    // Keeps `pin` until the ring is closed and every operation has completed: for memory the
    // kernel may write into without a pin of its own, such as provided buffers (any in-flight
    // buffer-select operation may land in them). While such pins exist, close() drains every
    // operation in flight, not only the pinned ones.
    void keep_until_close(Pin pin) {
        check_usable();
        lifetime_pins_.push_back(std::move(pin));
    }

    // --- resource tags (REGISTER_FILES2/BUFFERS2, FILES_UPDATE2/BUFFERS_UPDATE) -------------
    // The kernel posts a CQE whose user_data is the tag when it releases a tagged file or
    // buffer (replaced by an update, or unregistered). Operations are retired by user_data, so
    // a user_data value is never both: a tag may not be registered while an operation with
    // that user_data is in flight (check_tags_free), and flush() refuses an SQE whose
    // user_data is a live tag. settle_ready() then consumes a live tag's CQE as a tag, never
    // as an operation's completion (the CQE still reaches the caller).
    // A tag value is live for one table at a time: before Linux 6.13 unregistering a table
    // settles its own tags without CQEs (forget_unposted_tags), so each must be known to
    // belong to it. To the caller, one value in both tables would be two indistinguishable
    // CQEs anyway.
    enum class TagTable : std::uint8_t { files, buffers };
    // Raises ValueError naming tags[i] when a nonzero tag is the user_data of an operation in
    // flight, or a live tag of the other table.
    void check_tags_free(const std::vector<std::uint64_t>& tags, TagTable table) const;
    // Counts the nonzero tags among the first `count` of `tags` as live (skip[i] true: the
    // kernel ignored entry i); pins[i], when given, is held until that tag's CQE.
    void add_live_tags(const std::vector<std::uint64_t>& tags, std::size_t count,
                       const std::vector<bool>& skip, const PinList* pins, TagTable table);
    // IORING_UNREGISTER_FILES; then, as after every unregistration, forget_unposted_tags.
    void unregister_files();
    // BlockingIOError (EBUSY) naming `call` while `table` is being unregistered.
    void check_not_unregistering(TagTable table, const char* call) const;
    // Tag CQEs still to come.
    [[nodiscard]] std::size_t live_tags() const noexcept { return live_tag_count_; }

    // --- registered wait arguments (IORING_REGISTER_MEM_REGION, REG_WAIT_ARG, Linux 6.13+) ---
    // Registers `pages` pages of memory the ring owns (until after the kernel ring is closed)
    // as io_uring_reg_wait slots; from then on every wait with arguments (timeout, deadline,
    // min_wait, sigmask) writes them into a free slot and enters with
    // IORING_ENTER_EXT_ARG_REG (falling back to EXT_ARG when every slot is taken by other
    // waiting threads). The kernel takes the region only before enable_rings(): ValueError
    // otherwise, OSError from the kernel.
    void register_wait_region(std::uint32_t pages);
    [[nodiscard]] std::uint32_t wait_region_slots() const noexcept { return wait_slots_; }
    [[nodiscard]] std::uint64_t wait_region_waits() const noexcept { return wait_region_waits_; }

    // IORING_REGISTER_ENABLE_RINGS for a ring set up with SetupFlags.R_DISABLED. Raises OSError.
    void enable_rings();

    // Resizes the SQ and CQ (IORING_REGISTER_RESIZE_RINGS; cq_entries 0: twice sq_entries).
    // Raises ValueError while SQEs are prepared and not yet submitted, OSError from the kernel.
    void resize(unsigned sq_entries, unsigned cq_entries);

    // --- reservations (ring_reservations.cpp) -------------------------------------------
    // Two kinds of SQE make the kernel post a final CQE under a user_data that no operation of
    // ours was submitted with, which would count as the final completion of an operation with
    // that user_data and release its pins:
    // - a MSG_RING whose CQE on the target ring is final (no CqeFlags.MORE: msg_ring(more=False),
    //   msg_ring_fd(post_cqe=True), push_sqes). Such a message may only go to a ring of this
    //   process, which flush() finds by fd;
    // - a poll update that renames a poll (PollFlags.UPDATE_USER_DATA, new != old): the poll's
    //   later CQEs come under the new user_data.
    // flush() reserves that user_data on the in-flight table of the ring that will get the CQE
    // (one more operation, without pins), so the CQE ends the reservation instead of an
    // operation. The SQE's own completion says whether the kernel did it: res < 0 means it
    // did not (nothing posted, the poll not renamed: its CQEs keep the old user_data), and the
    // reservation is dropped; a successful rename also ends the poll's count under the old
    // user_data, which no CQE of it will carry any more.
    //
    // The open, usable ring of this process whose fd is `fd` (nullptr if none). The registry
    // holds weak references, under its own lock.
    static std::shared_ptr<Ring> find_by_fd(int fd);

    // --- lifetime --------------------------------------------------------------------------
    // Cancels what is in flight, reaps it (bounded in time) and closes. Pins that could not be
    // released safely are kept for the life of the process, with a ResourceWarning.
    void close();
    [[nodiscard]] bool closed() const noexcept { return closed_ || closing_; }

    // The Sqe handle object last returned to Python and the SqeHandle inside it (see
    // sqe_handle()): reused for the next handle when the ring holds its only reference, which
    // saves making a Python object per one-call operation. A cached handle references the
    // ring, so the Python IoUring object drops the cache when it goes (see register_ring.cpp).
    struct HandleCache {
        py::object object;
        void* handle = nullptr;  // the SqeHandle inside `object`
    };
    HandleCache& handle_cache() noexcept { return handle_cache_; }
    // The reference that Sqe handles hold (set once by the Python constructor); from then on
    // the ring can be found by its fd (find_by_fd) until it closes.
    void set_self(const std::shared_ptr<Ring>& self);
    [[nodiscard]] std::shared_ptr<Ring> self() const { return self_.lock(); }

    IoUring& core() { return core_; }
    [[nodiscard]] const IoUring& core() const { return core_; }
    [[nodiscard]] std::size_t in_flight() const noexcept { return inflight_.operations(); }
    [[nodiscard]] std::size_t pinned() const noexcept {
        // The in-flight pins of resource_users_ (before 6.13) mark operations for the
        // unregister refusal; they keep nothing alive, so they are not counted.
        const auto markers = resource_users_ == nullptr
                                 ? 0
                                 : static_cast<std::size_t>(resource_users_.use_count() - 1);
        const std::size_t held = inflight_.pin_count();
        return held - std::min(markers, held) + slot_pin_count_ + lifetime_pins_.size() +
               tag_pin_count_;
    }

private:
    [[noreturn]] void raise_unusable() const;
    // enter(2) with the GIL released; EINTR runs the signal handlers (raising their exception)
    // and retries.
    // With a timeout or deadline the wait uses IORING_ENTER_EXT_ARG and returns -ETIME when it
    // passes; min_wait, the sigmask and the iowait toggle go to the kernel as they are.
    int enter_blocking(unsigned to_submit, unsigned min_complete, unsigned flags,
                       const WaitOptions& wait = {});
    [[nodiscard]] bool must_drain() const {
        return inflight_.pin_count() != 0 || !reservations_.empty() ||
               ((!lifetime_pins_.empty() || tag_pin_count_ != 0) && !inflight_.empty());
    }
    // Accounts for the first `count` ready CQEs, read from the ring itself (never from a copy
    // that Python can reach), before they are consumed: final completions move the pins they
    // release to `released`. Every path that consumes CQEs goes through here.
    void settle_ready(std::uint32_t count, PinList& released);
    // settle_ready(): consumes a live tag's CQE (true), releasing what its last one kept.
    bool settle_tag(std::uint64_t user_data, PinList& released);
    // SQPOLL only: when the SQ is full of SQEs already published to the kernel thread, waits
    // (IORING_ENTER_SQ_WAIT, GIL released) until it takes some; true if a slot is free now.
    bool wait_for_sq_space();
    bool wait_for_close(unsigned to_submit, long long timeout_ns);
    // close(): a vacant SQE for its own NOPs and cancel, submitting what is queued to make
    // room (at most until `deadline`); nullptr if none could be had.
    Sqe* close_sqe(std::chrono::steady_clock::time_point deadline);
    // close(): wakes the threads blocked in a wait on this ring (they then raise ValueError)
    // and waits until they have left; false if they could not be woken before `deadline`.
    bool wake_waiters(std::chrono::steady_clock::time_point deadline);
    bool drain_for_close(PinList& released);
    // close(): IORING_REGISTER_SYNC_CANCEL of everything, bounded by `timeout_ns`.
    void sync_cancel_all(long long timeout_ns);
    void close_impl(bool raise_warning);
    // flush(): the unflushed SQEs that need a reservation, checked (ValueError, or OSError when
    // a target's fd cannot be duplicated, before anything changes); empty, without allocating,
    // when there are none.
    struct PlannedReservation {
        PlannedReservation(std::uint64_t at, std::shared_ptr<Ring> to, std::uint64_t user_data,
                           int dup, std::optional<std::uint64_t> old)
            : position(at), target(std::move(to)), key(user_data), fd(dup), renamed_from(old) {}
        PlannedReservation(PlannedReservation&& other) noexcept
            : position(other.position),
              target(std::move(other.target)),
              key(other.key),
              fd(std::exchange(other.fd, -1)),
              renamed_from(other.renamed_from) {}
        PlannedReservation(const PlannedReservation&) = delete;
        PlannedReservation& operator=(const PlannedReservation&) = delete;
        PlannedReservation& operator=(PlannedReservation&&) = delete;
        ~PlannedReservation();  // closes `fd` unless reserve() took it
        std::uint64_t position;
        std::shared_ptr<Ring> target;
        std::uint64_t key;
        int fd;  // a message's duplicate of the target's fd; -1 for a rename
        std::optional<std::uint64_t> renamed_from;
    };
    std::vector<PlannedReservation> plan_reservations() const;
    // flush(), once every check passed: makes each planned reservation.
    void reserve(std::vector<PlannedReservation>& plan);
    // settle_ready(): the final completion of an SQE that made a reservation.
    void settle_reservation(const Cqe& cqe, PinList& released);
    // flush(): ValueError when a prepared SQE's user_data is that of an SQE with a reservation.
    void check_no_reservation_user_data() const;
    // close(): the reservations whose SQE's completion was never seen.
    void forget_reservations(bool drained) noexcept;
    // Polls flushed with CQE_SKIP_SUCCESS (members of a skip chain), by the chain's user_data,
    // while it is in flight: such a poll cannot be renamed (its chain's one completion may
    // then come under either user_data).
    std::unordered_set<std::uint64_t> skip_polls_;
    void unregister_fd() noexcept;
    // flush(): raises ValueError for the first unflushed SQE that breaks the chain rules of
    // CQE_SKIP_SUCCESS.
    void check_skip_chains() const;
    // flush() of a range holding CQE_SKIP_SUCCESS chains (checked): accounts each chain once.
    void flush_skip_chains();
    // The absolute position of the kernel's SQ head (every SQE before it was taken).
    [[nodiscard]] std::uint64_t kernel_position() const noexcept;
    // Before an enter that submits `to_submit` SQEs: ValueError if it would take only part of a
    // chain that uses CQE_SKIP_SUCCESS (the kernel would run the parts as separate chains).
    void check_submit_cut(unsigned to_submit) const;
    // After an enter that may have submitted: forgets the skip chains the kernel took, and counts
    // one more completion for a chain the kernel took only part of (see the definition).
    void note_submitted();

    IoUring core_;
    bool closed_ = false;
    // Set while close() drains (with the GIL released): other threads then see a closed ring,
    // so none can start a blocking wait on a ring that is about to be unmapped.
    bool closing_ = false;
    // Set up with R_DISABLED and not enabled since: the kernel has not started (and cannot
    // start) any operation, so close() has nothing to drain.
    bool disabled_ = false;
    // The kernel resized the rings but they could not be mapped (see IoUring::resize): every
    // use raises, and close() cannot drain (the completions land where we cannot see them).
    bool broken_ = false;
    std::uint64_t fork_generation_;
    std::uint64_t handed_out_ = 0;  // SQEs handed out by acquire_slot, ever
    std::uint64_t flushed_ = 0;     // SQEs published to the kernel, ever
    std::vector<PinList> slot_pins_;
    std::size_t slot_pin_count_ = 0;
    InflightTable inflight_;
    std::shared_ptr<RegisteredBuffers> registered_buffers_;
    // Before Linux 6.13 only: pinned at flush by every operation that resolves a registered
    // file or buffer. Those kernels hold one resource node for both tables, which each such
    // operation references, and unregistering either table waits for all of them; so
    // unregister_files/unregister_buffers name those in flight instead of waiting.
    Pin resource_users_;
    [[nodiscard]] static bool uses_resource_node(const Sqe& sqe) noexcept;
    // BlockingIOError (EBUSY) naming the operations in flight that pin resource_users_, if any.
    void refuse_unregister_in_flight(const char* call) const;
    // Runs the unregistration `call` without the GIL, retrying after signals.
    void unregister_without_gil(int (IoUring::*call)() noexcept, const char* name);
    // Bit (1 << TagTable) set while that table's unregistration runs: its kernel call releases
    // the GIL, and settling its bookkeeping afterwards (tags, the buffer table) may run Python
    // code. A registration of that table meanwhile (another thread, a finalizer) would be
    // credited to the table being removed, so it is refused (check_not_unregistering).
    std::uint8_t unregistering_ = 0;
    class UnregisterScope;
    PinList lifetime_pins_;
    // The registered wait region (see register_wait_region): unmapped after the kernel ring.
    void* wait_region_ = nullptr;
    std::size_t wait_region_size_ = 0;
    std::uint32_t wait_slots_ = 0;
    std::vector<bool> wait_slot_busy_;
    std::uint64_t wait_region_waits_ = 0;
    void unmap_wait_region() noexcept;
    // Live resource tags: how many CQEs each still has to come, and what they keep alive.
    struct LiveTag {
        std::uint32_t count = 0;
        PinList pins;
        TagTable table = TagTable::files;
    };
    // Before Linux 6.13 the kernel drops the entries still in a table at unregister without
    // posting their tags, and it has posted every tag of the entries replaced earlier by then
    // (it waits for the table to go quiet). So after a successful unregistration, a live tag
    // of that table whose CQE is not in the CQ never comes: it is settled here, its pins
    // released. While completions wait in the kernel's overflow list, nothing is settled
    // (kept live until close: safe, if not tidy). Returns the released pins, for the caller
    // to destroy once its bookkeeping is settled.
    [[nodiscard]] PinList forget_unposted_tags(TagTable table);
    std::unordered_map<std::uint64_t, LiveTag> live_tags_;
    std::size_t live_tag_count_ = 0;
    std::size_t tag_pin_count_ = 0;
    // flush(): ValueError (before anything is published) when a prepared SQE's user_data is a
    // live tag.
    void check_no_tag_user_data() const;
    // ValueError "user_data N of a prepared SQE is <what>. Nothing was submitted; ..." for the
    // first unflushed SQE whose user_data `taken` holds.
    template <typename Taken>
    void check_prepared_user_data(Taken taken, const char* what) const {
        const SubmissionQueue& sq = core_.sq();
        for (std::uint64_t position = flushed_; position < handed_out_; ++position) {
            std::uint64_t user_data = sq.at(static_cast<std::uint32_t>(position)).user_data;
            if (taken(user_data)) {
                raise(PyExc_ValueError, "user_data " + std::to_string(user_data) +
                                            " of a prepared SQE is " + what +
                                            ". Nothing was submitted; change the SQE's user_data");
            }
        }
    }

    // Drops the current registered-buffer table. Operations flushed under it pinned it (see
    // flush()), but one flushed earlier may resolve buf_index against it later than its flush:
    // an SQPOLL thread takes SQEs when it runs, and io-wq may import fixed buffers at issue.
    // So every operation in flight now holds it too, and it is released when they completed.
    // The pins of the SQE at `position`, moved out of its slot's count into flight form: with
    // the buffer registration its buf_index names, when it uses one.
    PinList& flushed_pins(std::uint64_t position, const Sqe& sqe);
    void retire_registered_buffers() {
        if (registered_buffers_ != nullptr) inflight_.pin_to_all(registered_buffers_);
        registered_buffers_.reset();
    }
    // Reservations whose SQE's completion has not been seen, by that SQE's user_data (unique
    // among the operations in flight): the ring holding the reservation, the user_data
    // reserved there, for a message a duplicate of the target's fd that the SQE names instead
    // of the caller's (so that the kernel reaches that ring even if its fd is closed and reused
    // before the message runs: a linked message may run long after the submit), and for a
    // rename the poll's old user_data.
    struct Reservation {
        std::weak_ptr<Ring> target;
        std::uint64_t key;
        int fd;
        std::optional<std::uint64_t> renamed_from;
    };
    std::unordered_map<std::uint64_t, Reservation> reservations_;
    // Chains using CQE_SKIP_SUCCESS flushed but not all taken by the kernel yet: positions
    // [start, end) and their user_data. Empty unless the flag is used.
    struct SkipChain {
        std::uint64_t start, end, key;
    };
    std::vector<SkipChain> skip_chains_;
    bool chain_open_ = false;  // the last SQE flushed links to the next one
    HandleCache handle_cache_;
    std::weak_ptr<Ring> self_;
    int wait_clock_ = CLOCK_MONOTONIC;   // until register_clock()
    int blocked_threads_ = 0;            // threads inside a blocking enter (GIL released)
    std::uint64_t blocked_wait_nr_ = 0;  // the sum of their min_complete
};

// Converts the wait keywords of submit_and_wait/copy_cqe(s) (nullptr: not given) and checks
// them against the kernel's features: TypeError/ValueError naming the argument,
// NotImplementedError naming the kernel that added what is missing.
// The tags= of a registration (None: empty): `expected` u64s, one per fd or buffer. Raises
// TypeError/ValueError naming tags, NotImplementedError without IORING_FEAT_RSRC_TAGS, and
// ValueError when a tag is the user_data of an operation in flight or a live tag of the other
// table (Ring::check_tags_free).
std::vector<std::uint64_t> to_tags(const Ring& ring, py::handle tags, std::size_t expected,
                                   Ring::TagTable table);

WaitOptions wait_options(const Ring& ring, PyObject* timeout, PyObject* min_wait, PyObject* sigmask,
                         PyObject* deadline, PyObject* iowait);

}  // namespace iouring::bindings
