#include "ring.hpp"

#include "convert.hpp"
#include "op_policy.hpp"

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <sys/mman.h>
#include <sys/utsname.h>
#include <unistd.h>

namespace iouring::bindings {

namespace {

// How long close() waits for cancelled operations before it keeps their memory forever.
constexpr auto kCloseDrainTimeout = std::chrono::seconds(2);
constexpr long long kCloseWaitSliceNs = 50'000'000;

// Pins that must outlive the process: memory the kernel may still write into.
PinList& forever() {
    static auto* pins = new PinList;  // never destroyed, on purpose
    return *pins;
}

// Zeroes what follows the 64-byte SQE in an SQE128 ring's entry (URING_CMD's command area).
void clear_sqe_tail(const SubmissionQueue& sq, Sqe& sqe) {
    if (sq.sqe_size() > sizeof(Sqe)) {
        std::memset(reinterpret_cast<std::byte*>(&sqe) + sizeof(Sqe), 0,
                    sq.sqe_size() - sizeof(Sqe));
    }
}

}  // namespace

namespace {

// Whether the running kernel is older than Linux major.minor (false when uname's release does
// not start with a version).
bool kernel_older_than(int major, int minor) {
    static const std::pair<int, int> running = [] {
        utsname u{};
        int ma = 0, mi = 0;
        if (uname(&u) != 0 || std::sscanf(u.release, "%d.%d", &ma, &mi) != 2)
            return std::pair{0, 0};
        return std::pair{ma, mi};
    }();
    return running.first != 0 && running < std::pair{major, minor};
}

}  // namespace

Ring::Ring(unsigned entries, const SetupOptions& options)
    : fork_generation_(fork_generation.load(std::memory_order_relaxed)),
      inflight_(std::size_t{std::min(entries, kMaxEntries)} * 2) {  // CLAMP: at most 32768
    int err = core_.init(entries, options);
    if (err < 0) throw_errno(err, "io_uring_setup");
    disabled_ = (options.flags & setup::R_DISABLED) != 0;
    slot_pins_.resize(core_.sq().entries());
    if (kernel_older_than(6, 13)) resource_users_ = std::make_shared<const int>(0);
}

Ring::~Ring() {
    if (closed_) return;
    try {
        close_impl(false);
    } catch (py::error_already_set& e) {
        e.discard_as_unraisable("closing an iouring.IoUring");
    } catch (...) {
        // A destructor must not throw; close_impl(false) only raises for warnings.
    }
}

void Ring::raise_unusable() const {
    if (closed_ || closing_) raise(PyExc_ValueError, "I/O operation on closed ring");
    raise(PyExc_RuntimeError,
          "this ring is broken: resize() could not map the rings the kernel resized it to, so "
          "nothing submitted through it would be seen; close() it");
}

std::uint64_t Ring::acquire_slot() {
    check_usable();
    Sqe* sqe = core_.sq().get_sqe_raw();
    if (sqe == nullptr && wait_for_sq_space()) sqe = core_.sq().get_sqe_raw();
    if (sqe == nullptr) {
        throw SubmissionQueueFull("submission queue is full (" +
                                  std::to_string(core_.sq().entries()) +
                                  " entries): submit() before preparing more");
    }
    // Reset even for get_sqe_raw(): a slot left unprepared must not hand the kernel the
    // pointers of an earlier operation whose memory has been released. The whole entry: on
    // SQE128 rings the second half is URING_CMD's command area.
    std::memset(static_cast<void*>(sqe), 0, core_.sq().sqe_size());
    return handed_out_++;
}

Sqe& Ring::sqe_at(std::uint64_t position) {
    check_usable();
    if (position < flushed_) {
        throw StaleSqeError(
            "this SQE was already flushed to the kernel; get a new one with get_sqe()");
    }
    return core_.sq().at(static_cast<std::uint32_t>(position));
}

void Ring::prepare(std::uint64_t position, Prepared&& op) {
    Sqe& sqe = sqe_at(position);
    sqe = op.sqe;
    clear_sqe_tail(core_.sq(), sqe);  // no command bytes of an earlier preparation survive
    PinList& slot = slot_pins_[position & core_.sq().mask()];
    PinList previous = std::move(slot);  // destroyed on return, once the slot is consistent
    slot_pin_count_ = slot_pin_count_ - previous.size() + op.pins.size();
    slot = std::move(op.pins);
}

std::uint64_t Ring::push(Prepared&& op) {
    std::uint64_t position = acquire_slot();
    core_.sq().at(static_cast<std::uint32_t>(position)) = op.sqe;
    if (!op.pins.empty()) {
        slot_pin_count_ += op.pins.size();
        slot_pins_[position & core_.sq().mask()] = std::move(op.pins);
    }
    return position;
}

bool Ring::wait_for_sq_space() {
    // The SQPOLL thread posts the CQEs of the SQEs it takes before it moves the SQ head, so a
    // caller that reaped every completion can still find the SQ full for a moment.
    if ((core_.flags() & setup::SQPOLL) == 0) return false;
    SubmissionQueue& sq = core_.sq();
    // SQEs not yet published are the caller's to submit: waiting for them would never end.
    if (sq.kernel_head() == sq.shared_tail()) return false;
    // SQ_WAIT returns once the kernel's own head moved, which can be before the head we see
    // does: the thread publishes it only after the whole batch it took. When it is preempted
    // in between (a loaded or emulated machine), the window lasts milliseconds, so after a few
    // quick retries each one also sleeps, and the wait is bounded by time, not by count.
    constexpr int quick_attempts = 16;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    for (int attempt = 0; sq.space_left() == 0; ++attempt) {
        if (sq.kernel_head() == sq.shared_tail()) return false;
        std::uint32_t flags = enter::SQ_WAIT;
        (void)core_.sq_ring_needs_enter(flags);  // adds SQ_WAKEUP when the thread sleeps
        int ret = enter_blocking(0, 0, flags);
        check_usable();
        if (ret == -EINVAL) break;  // no SQ_WAIT before 5.10
        if (ret < 0) throw_errno(ret, "io_uring_enter");
        if (sq.space_left() != 0 || std::chrono::steady_clock::now() >= deadline) break;
        if (attempt >= quick_attempts) {
            {
                py::gil_scoped_release nogil;
                std::this_thread::sleep_for(std::chrono::microseconds(50));
            }
            if (PyErr_CheckSignals() != 0) throw py::error_already_set();
            check_usable();  // another thread may have closed the ring meanwhile
        }
    }
    return sq.space_left() != 0;
}

std::uint64_t Ring::reserve_slots(std::uint32_t max, std::uint32_t& count) {
    check_usable();
    count = core_.sq().reserve(max);
    if (count == 0 && max > 0 && wait_for_sq_space()) count = core_.sq().reserve(max);
    if (count == 0 && max > 0) {
        throw SubmissionQueueFull("submission queue is full (" +
                                  std::to_string(core_.sq().entries()) +
                                  " entries): submit() before preparing more");
    }
    std::uint64_t first = handed_out_;
    handed_out_ += count;
    // Batches write 64-byte SQEs: the second half of SQE128 entries starts out zeroed.
    if (core_.sq().sqe_size() > sizeof(Sqe)) {
        for (std::uint32_t i = 0; i < count; ++i) {
            clear_sqe_tail(core_.sq(), core_.sq().at(static_cast<std::uint32_t>(first + i)));
        }
    }
    return first;
}

std::uint32_t Ring::flush() {
    SubmissionQueue& sq = core_.sq();
    if (handed_out_ == flushed_) return core_.flush_sq();
    if (!live_tags_.empty()) check_no_tag_user_data();
    if (!reservations_.empty()) check_no_reservation_user_data();
    std::vector<PlannedReservation> planned = plan_reservations();  // raises before any change
    if (skip_flag_used().load(std::memory_order_relaxed)) [[unlikely]] {
        std::uint8_t flags = 0;  // every flag of the range: one byte per SQE, no branch
        for (std::uint64_t position = flushed_; position < handed_out_; ++position) {
            flags |= sq.at(static_cast<std::uint32_t>(position)).flags;
        }
        if ((flags & sqe_flags::CQE_SKIP_SUCCESS) != 0) {
            check_skip_chains();  // raises before anything changes
            reserve(planned);
            flush_skip_chains();
            return core_.flush_sq();
        }
    }
    if (!planned.empty()) reserve(planned);
    constexpr std::uint8_t links = sqe_flags::IO_LINK | sqe_flags::IO_HARDLINK;
    chain_open_ = (sq.at(static_cast<std::uint32_t>(handed_out_ - 1)).flags & links) != 0;
    for (std::uint64_t position = flushed_; position < handed_out_; ++position) {
        const Sqe& sqe = sq.at(static_cast<std::uint32_t>(position));
        inflight_.add(sqe.user_data, flushed_pins(position, sqe));
    }
    flushed_ = handed_out_;
    return core_.flush_sq();
}

PinList& Ring::flushed_pins(std::uint64_t position, const Sqe& sqe) {
    PinList& pins = slot_pins_[position & core_.sq().mask()];
    slot_pin_count_ -= pins.size();
    // The registration that the kernel will resolve buf_index against is the one current at
    // flush time, so that is the one to keep alive.
    if (registered_buffers_ != nullptr && uses_fixed_buffer(sqe)) {
        pins.push_back(registered_buffers_);
    }
    if (resource_users_ != nullptr && uses_resource_node(sqe)) pins.push_back(resource_users_);
    return pins;
}

bool Ring::uses_resource_node(const Sqe& sqe) noexcept {
    if ((sqe.flags & sqe_flags::FIXED_FILE) != 0 || uses_fixed_buffer(sqe)) return true;
    const bool splices = sqe.opcode == static_cast<std::uint8_t>(Op::SPLICE) ||
                         sqe.opcode == static_cast<std::uint8_t>(Op::TEE);
    return splices && (sqe.op_flags & splice_flags::FD_IN_FIXED) != 0;
}

std::string op_name(std::uint8_t opcode) {
    try {
        py::object op = py::module_::import("iouring._core").attr("Op")(opcode);
        return "Op." + op.attr("name").cast<std::string>();
    } catch (py::error_already_set&) {
        return "opcode " + std::to_string(opcode);
    }
}

const char* Ring::skip_ring_refusal() const noexcept {
    if ((core_.flags() & setup::SQPOLL) != 0) {
        return "not on an SQPOLL ring: its kernel thread may take a linked chain in two "
               "submissions, which run as two chains, and then the completion that retires "
               "the skipped members can come before they finished";
    }
    if ((core_.features() & feat::CQE_SKIP) == 0) {
        return "this kernel does not support it (IORING_FEAT_CQE_SKIP, Linux 5.17)";
    }
    return nullptr;
}

// The chain rules (the rules of one SQE alone are skip_refusal's): in a linked chain that uses
// CQE_SKIP_SUCCESS, every member but the last carries the flag and IO_LINK, the last carries
// neither, all carry the same user_data, and the chain is complete in this flush. The kernel
// then posts exactly one completion for the chain, under that user_data, in every outcome:
// - every member succeeds: the last member's completion (the others are skipped);
// - a member before the last fails (a short transfer counts as failing): its completion, and
//   the rest of the chain is cancelled without completions (REQ_F_SKIP_LINK_CQES);
// - the last member fails: its completion;
// - a member fails at submission: the chain's first member completes with -ECANCELED (or its
//   own error), and the rest is cancelled without completions, the first member being skipped.
// Any member before the last has completed when that completion is posted (links run one after
// the other), so the chain's pins can be released with it. A non-skipped member before a
// skipped one would break this (its failure cancels the rest *with* completions), and so would
// a hard link, a multishot member or a LINK_TIMEOUT (two completions).
void Ring::check_skip_chains() const {
    const SubmissionQueue& sq = core_.sq();
    constexpr std::uint8_t links = sqe_flags::IO_LINK | sqe_flags::IO_HARDLINK;
    auto refuse = [&](std::uint64_t position, const std::string& why) {
        const Sqe& s = sq.at(static_cast<std::uint32_t>(position));
        char ud[32];
        std::snprintf(ud, sizeof(ud), "%#llx", static_cast<unsigned long long>(s.user_data));
        raise(PyExc_ValueError,
              "SqeFlags.CQE_SKIP_SUCCESS: SQE " + std::to_string(position - flushed_ + 1) +
                  " of the " + std::to_string(handed_out_ - flushed_) + " not yet submitted (" +
                  op_name(s.opcode) + ", user_data " + ud + ") breaks a rule of the flag: " + why +
                  ". Nothing was submitted; change it through its Sqe handle, prepare the "
                  "chain's missing members, or close() the ring");
    };
    bool in_chain = chain_open_;     // the SQE at `position` continues a chain
    bool chain_skips = false;        // the chain so far is all skip-flagged members
    bool chain_plain = chain_open_;  // the chain so far has a member without the flag
    std::uint64_t key = 0;
    for (std::uint64_t position = flushed_; position < handed_out_; ++position) {
        const Sqe& s = sq.at(static_cast<std::uint32_t>(position));
        bool skip = (s.flags & sqe_flags::CQE_SKIP_SUCCESS) != 0;
        if (!in_chain) {
            chain_skips = chain_plain = false;
            key = s.user_data;
        }
        if (skip) {
            if (const char* why = skip_ring_refusal()) refuse(position, why);
            if (const char* why = skip_refusal(s)) refuse(position, why);
            if (chain_plain) {
                refuse(position,
                       "a member before it in its chain does not carry the flag: the flag must "
                       "be on every member but the last (a failing member without it cancels "
                       "the rest of the chain with completions, a skipped one without)");
            }
            if (s.user_data != key) {
                refuse(position,
                       "every member of a chain that uses the flag must carry the chain's "
                       "user_data (the first member's): the chain posts one completion, from "
                       "whichever member ends it, and the ring counts it by user_data");
            }
            chain_skips = true;
        } else {
            if (chain_skips) {
                if ((s.flags & links) != 0) {
                    refuse(position,
                           "the member after the skipped ones links further: only the chain's "
                           "last member may go without the flag");
                }
                if (const char* why = skip_chain_end_refusal(s)) refuse(position, why);
                if (s.user_data != key) {
                    refuse(position,
                           "the chain's last member must carry the chain's user_data (the "
                           "first member's): the chain posts one completion, from whichever "
                           "member ends it, and the ring counts it by user_data");
                }
            }
            chain_plain = true;
        }
        in_chain = (s.flags & links) != 0;
    }
    if (in_chain && chain_skips) {
        refuse(handed_out_ - 1,
               "its chain is not finished: the last SQE prepared links to one not prepared yet "
               "(the kernel ends a chain at the end of a submission, and a chain ending with a "
               "skipped member could never report its success)");
    }
}

void Ring::flush_skip_chains() {
    SubmissionQueue& sq = core_.sq();
    PinList chain;            // the pins of the skip-flagged members seen so far
    bool in_chain = false;    // inside a chain that uses the flag
    std::uint64_t start = 0;  // its first position
    for (std::uint64_t position = flushed_; position < handed_out_; ++position) {
        const Sqe& sqe = sq.at(static_cast<std::uint32_t>(position));
        PinList& pins = flushed_pins(position, sqe);
        if ((sqe.flags & sqe_flags::CQE_SKIP_SUCCESS) != 0) {
            if (sqe.opcode == static_cast<std::uint8_t>(Op::POLL_ADD)) {
                skip_polls_.insert(sqe.user_data);
            }
            if (!in_chain) start = position;
            in_chain = true;
            for (Pin& pin : pins) chain.push_back(std::move(pin));
            pins.clear();
            continue;
        }
        if (in_chain) {
            // The last member: the chain counts once, under its user_data, with every pin.
            for (Pin& pin : pins) chain.push_back(std::move(pin));
            pins.clear();
            inflight_.add(sqe.user_data, chain);
            skip_chains_.push_back(SkipChain{start, position + 1, sqe.user_data});
            in_chain = false;
            continue;
        }
        inflight_.add(sqe.user_data, pins);
    }
    flushed_ = handed_out_;
    constexpr std::uint8_t links = sqe_flags::IO_LINK | sqe_flags::IO_HARDLINK;
    chain_open_ = (sq.at(static_cast<std::uint32_t>(handed_out_ - 1)).flags & links) != 0;
}

std::uint64_t Ring::kernel_position() const noexcept {
    const SubmissionQueue& sq = core_.sq();
    // flushed_ is where the shared tail stands; the head is behind it by what the kernel has
    // not taken yet (unsigned 32-bit distance, as the kernel counts).
    return flushed_ - static_cast<std::uint32_t>(sq.shared_tail() - sq.kernel_head());
}

void Ring::check_submit_cut(unsigned to_submit) const {
    if (skip_chains_.empty()) return;
    std::uint64_t head = kernel_position();
    std::uint64_t cut = head + std::min<std::uint64_t>(to_submit, flushed_ - head);
    for (const SkipChain& c : skip_chains_) {
        if (c.start < cut && cut < c.end) {
            raise(PyExc_ValueError,
                  "to_submit=" + std::to_string(to_submit) +
                      " would submit only part of a linked chain that uses "
                      "SqeFlags.CQE_SKIP_SUCCESS (the kernel runs the parts as separate chains, "
                      "and the skipped members could never be accounted for): submit at least " +
                      std::to_string(c.end - head) + " SQEs, or use submit()");
        }
    }
}

// The kernel may take fewer SQEs than asked for (it stops when it cannot allocate a request),
// and then runs the taken part of a chain as a chain of its own, whose skipped members post a
// completion only if one fails. The chain then posts one or two completions: one more is
// counted under its user_data, so its pins are released only once both could have come. If
// only one comes, the pins stay until close() (which then reports them): kept, never freed
// early. A later partial take of the rest counts once more, the same way.
void Ring::note_submitted() {
    // A chain left open by the last flush ends once the kernel took all of it: the next flush
    // starts a new one (see check_skip_chains).
    if (chain_open_ && kernel_position() == flushed_) chain_open_ = false;
    if (skip_chains_.empty()) return;
    std::uint64_t head = kernel_position();
    std::size_t kept = 0;
    for (SkipChain& c : skip_chains_) {
        if (c.end <= head) continue;  // taken whole: its completion is counted already
        if (c.start < head) {
            PinList none;
            inflight_.add(c.key, none);
            c.start = head;
        }
        skip_chains_[kept++] = c;
    }
    skip_chains_.resize(kept);
}

Deadline deadline_after(py::handle timeout) {
    if (timeout.is_none()) return std::nullopt;
    KernelTimespec ts = to_timespec(timeout, "timeout");
    return std::chrono::steady_clock::now() + std::chrono::seconds(ts.tv_sec) +
           std::chrono::nanoseconds(ts.tv_nsec);
}

int Ring::enter_blocking(unsigned to_submit, unsigned min_complete, unsigned flags,
                         const WaitOptions& wait) {
    if (wait.bounded() && (core_.features() & feat::EXT_ARG) == 0) {
        raise(PyExc_NotImplementedError, "timeout needs IORING_FEAT_EXT_ARG (Linux 5.11 or newer)");
    }
    for (;;) {
        GeteventsArg arg{};
        KernelTimespec ts{};
        std::uint64_t sigmask = wait.sigmask.value_or(0);  // the kernel's 64-bit sigset_t
        unsigned wait_flags = flags | (wait.no_iowait ? enter::NO_IOWAIT : 0u);
        bool ext = false;
        if (wait.deadline) {
            auto left = *wait.deadline - std::chrono::steady_clock::now();
            if (left <= decltype(left)::zero()) return -ETIME;
            auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(left).count();
            ts = KernelTimespec{ns / 1'000'000'000, ns % 1'000'000'000};
            arg.ts = address_of(&ts);
            ext = true;
        } else if (wait.absolute) {
            // The same deadline on every retry: the kernel compares it with the ring's clock.
            ts = *wait.absolute;
            arg.ts = address_of(&ts);
            wait_flags |= enter::ABS_TIMER;
            ext = true;
        }
        if (wait.min_wait_usec != 0) {
            arg.min_wait_usec = wait.min_wait_usec;
            ext = true;
        }
        if (wait.sigmask) {
            arg.sigmask = address_of(&sigmask);
            arg.sigmask_sz = sizeof(sigmask);
            ext = ext || (core_.features() & feat::EXT_ARG) != 0;
        }
        // Without EXT_ARG the argument is the sigset itself (kernels before 5.11).
        const void* argp = ext ? static_cast<const void*>(&arg)
                               : (wait.sigmask ? static_cast<const void*>(&sigmask) : nullptr);
        std::size_t argsz = ext ? sizeof(arg) : (wait.sigmask ? sizeof(sigmask) : 0);
        if (ext) wait_flags |= enter::EXT_ARG;
        // A registered wait region: the same arguments in a slot of it, named by its offset.
        std::uint32_t slot = wait_slots_;
        if (ext && wait_slots_ != 0) {
            for (slot = 0; slot < wait_slots_ && wait_slot_busy_[slot]; ++slot) {
            }
        }
        if (slot < wait_slots_) {
            wait_slot_busy_[slot] = true;
            RegWait& reg = static_cast<RegWait*>(wait_region_)[slot];
            reg = RegWait{};
            if (arg.ts != 0) {
                reg.ts = ts;
                reg.flags = kRegWaitTs;
            }
            reg.min_wait_usec = arg.min_wait_usec;
            reg.sigmask = arg.sigmask;
            reg.sigmask_sz = arg.sigmask_sz;
            argp = reinterpret_cast<const void*>(std::uintptr_t{slot} * sizeof(RegWait));
            argsz = sizeof(RegWait);
            wait_flags |= enter::EXT_ARG_REG;
            ++wait_region_waits_;
        }
        int ret;
        ++blocked_threads_;
        blocked_wait_nr_ += min_complete;
        {
            py::gil_scoped_release nogil;
            ret = core_.enter(to_submit, min_complete, wait_flags, argp, argsz);
        }
        --blocked_threads_;
        blocked_wait_nr_ -= min_complete;
        if (slot < wait_slots_) wait_slot_busy_[slot] = false;
        // close() from another thread woke this wait and unmaps the ring once we are out.
        if (closing_ || closed_) {
            raise(PyExc_ValueError, "the ring was closed while this thread was waiting on it");
        }
        if (ret == -EINVAL && wait.absolute) {
            throw_errno(ret,
                        "io_uring_enter (deadline= needs IORING_ENTER_ABS_TIMER, Linux 6.12+)");
        }
        if (ret != -EINTR) return ret;
        if (PyErr_CheckSignals() != 0) throw py::error_already_set();
        check_usable();  // a signal handler may have closed the ring
    }
}

int Ring::submit_and_wait(unsigned wait_nr, const WaitOptions& wait) {
    check_usable();
    if (wait_nr > core_.cq().entries()) {
        raise(PyExc_ValueError, "wait_nr (" + std::to_string(wait_nr) +
                                    ") exceeds the completion queue size (" +
                                    std::to_string(core_.cq().entries()) + ")");
    }
    int submitted = submit_nowait(wait_nr > 0);
    // Waits (GIL released) only when fewer than wait_nr completions are ready; under SQPOLL
    // wait_ready also wakes the kernel thread for SQEs it has not taken yet.
    if (wait_nr > 0 && !wait_ready(wait_nr, wait)) {
        raise(PyExc_TimeoutError, "submit_and_wait: " + std::to_string(core_.cq_ready()) + " of " +
                                      std::to_string(wait_nr) +
                                      " completions ready when the timeout expired (" +
                                      std::to_string(submitted) + " SQEs were submitted)");
    }
    return submitted;
}

int Ring::submit_nowait(bool getevents) {
    // Callers convert arguments first, and a conversion (__index__, __float__) may run Python
    // code that closes the ring: the entry points check here, after it, not before.
    check_usable();
    std::uint32_t to_submit = flush();
    std::uint32_t flags = 0;
    int submitted = static_cast<int>(to_submit);
    if (core_.sq_ring_needs_enter(flags)) {
        // Submits without waiting and with the GIL held, as submit() does: most completions
        // are posted while the SQEs are submitted, and then a wait costs neither a syscall
        // nor a GIL release. Only a wait that can block releases the GIL (wait_ready).
        // GETEVENTS with min_complete 0 runs deferred task work (DEFER_TASKRUN) and reaps
        // IOPOLL without sleeping.
        if (getevents || (core_.flags() & setup::IOPOLL) != 0) flags |= enter::GETEVENTS;
        auto enter_nowait = [&] {
            for (;;) {
                int r = core_.enter(to_submit, 0, flags);
                if (r != -EINTR) return r;
                if (PyErr_CheckSignals() != 0) throw py::error_already_set();
                check_usable();  // a signal handler may have closed the ring
            }
        };
        int ret = enter_nowait();
        if (ret == -EBUSY || ret == -EAGAIN) {
            // Nothing was submitted: older kernels refuse while completions overflow (EBUSY),
            // or the kernel lacked memory for a request (EAGAIN). Bring overflowed CQEs into
            // the CQ and try once more; if the CQ itself is full, the caller must reap.
            flush_held_back();
            ret = enter_nowait();
            if (ret == -EBUSY) {
                throw_errno(ret,
                            "io_uring_enter (the completion queue overflowed: reap "
                            "completions with copy_cqes(), then submit again)");
            }
        }
        note_submitted();
        if (ret < 0) throw_errno(ret, "io_uring_enter");
        submitted = ret;
    }
    return submitted;
}

int Ring::enter(unsigned to_submit, unsigned min_complete, unsigned flags) {
    check_usable();
    constexpr unsigned allowed = enter::GETEVENTS | enter::SQ_WAKEUP | enter::SQ_WAIT |
                                 enter::NO_IOWAIT;
    if ((flags & ~allowed) != 0) {
        raise(PyExc_ValueError,
              "flags: only GETEVENTS, SQ_WAKEUP, SQ_WAIT and NO_IOWAIT can be passed to "
              "enter(); EXT_ARG and REGISTERED_RING need arguments the ring manages itself");
    }
    bool waits = ((flags & enter::GETEVENTS) != 0 && min_complete > 0) ||
                 (flags & enter::SQ_WAIT) != 0;
    if ((flags & enter::GETEVENTS) != 0 && min_complete > core_.cq().entries()) {
        raise(PyExc_ValueError, "min_complete exceeds the completion queue size");
    }
    check_submit_cut(to_submit);
    int ret = waits ? enter_blocking(to_submit, min_complete, flags)
                    : core_.enter(to_submit, min_complete, flags);
    note_submitted();
    if (ret < 0) throw_errno(ret, "io_uring_enter");
    return ret;
}

void Ring::flush_held_back() {
    check_usable();  // see submit_nowait
    if (core_.cq_ring_needs_enter()) {
        int ret = core_.enter(0, 0, enter::GETEVENTS);
        if (ret < 0 && ret != -EINTR && ret != -EAGAIN) throw_errno(ret, "io_uring_enter");
    }
}

bool Ring::wait_expired(const WaitOptions& wait) const {
    if (wait.deadline) return std::chrono::steady_clock::now() >= *wait.deadline;
    if (!wait.absolute) return false;
    timespec now{};
    clock_gettime(wait_clock_, &now);
    return now.tv_sec > wait.absolute->tv_sec ||
           (now.tv_sec == wait.absolute->tv_sec && now.tv_nsec >= wait.absolute->tv_nsec);
}

bool Ring::wait_ready(std::uint32_t wait_nr, const WaitOptions& wait) {
    check_usable();  // see submit_nowait
    CompletionQueue& cq = core_.cq();
    // With nothing in flight no completion of ours can come (overflowed CQEs belong to
    // operations still counted in flight), so a wait without a deadline would never end.
    // Completions that another ring (msg_ring) or a later submission from another thread
    // would post need a timeout. (min_wait does not bound a wait: past it, the wait goes on
    // for one completion.)
    if (!wait.bounded() && cq.ready() < wait_nr && inflight_.empty()) {
        std::string why = handed_out_ != flushed_
                              ? std::to_string(handed_out_ - flushed_) +
                                    " SQEs are prepared but not submitted: submit() them first "
                                    "(or use submit_and_wait)"
                              : "submit() operations first";
        raise(PyExc_ValueError, "wait_nr=" + std::to_string(wait_nr) +
                                    ": nothing is in flight, so the wait would never end; " + why +
                                    ", or pass a timeout to wait for completions that another "
                                    "ring (msg_ring) or thread will post");
    }
    // min_wait: the kernel ends the wait once min_wait passed and at least one completion is
    // ready; retries (after a signal) sleep only for what is left of it.
    using Clock = std::chrono::steady_clock;
    std::optional<Clock::time_point> min_end;
    if (wait.min_wait_usec != 0 && cq.ready() < wait_nr) {
        min_end = Clock::now() + std::chrono::microseconds(wait.min_wait_usec);
    }
    WaitOptions round = wait;
    for (;;) {
        std::uint32_t ready = cq.ready();
        if (ready >= wait_nr) return true;
        unsigned target = wait_nr;
        round.min_wait_usec = 0;
        if (min_end) {
            auto left = *min_end - Clock::now();
            if (left <= decltype(left)::zero()) {
                if (ready >= 1) return true;
                target = 1;  // past min_wait, the first completion ends the wait
            } else {
                auto us = std::chrono::duration_cast<std::chrono::microseconds>(left).count();
                round.min_wait_usec = static_cast<std::uint32_t>(std::max<long long>(us, 1));
            }
        }
        // A signal may have ended an earlier wait (the kernel then reports the SQEs it
        // submitted, not EINTR): run its handler before sleeping again.
        if (PyErr_CheckSignals() != 0) throw py::error_already_set();
        check_usable();  // the handler may have closed the ring
        std::uint32_t flags = enter::GETEVENTS;
        // SQEs published but not consumed by the kernel: with SQPOLL, taken once the kernel
        // thread is woken; without, left behind when the kernel stopped a submission at an SQE
        // that failed (it stops there unless SetupFlags.SUBMIT_ALL), and only submitted by an
        // enter that passes them. They are in flight, so the wait submits them, or it would
        // never end.
        std::uint32_t unconsumed = core_.sq().shared_tail() - core_.sq().kernel_head();
        if (unconsumed != 0) (void)core_.sq_ring_needs_enter(flags);
        int ret = enter_blocking(unconsumed, target, flags, round);
        // Older kernels refuse to submit while completions overflow: wait without submitting.
        if ((ret == -EBUSY || ret == -EAGAIN) && unconsumed != 0) {
            ret = enter_blocking(0, target, flags, round);
        }
        if (ret == -ETIME) {
            // Without a timeout or deadline only min_wait ends a wait with -ETIME (nothing
            // was ready when it passed): the loop goes on waiting for one completion.
            if (!wait.bounded()) continue;
            ready = cq.ready();
            return ready >= wait_nr || (min_end && ready >= 1 && Clock::now() >= *min_end);
        }
        if (ret < 0) throw_errno(ret, "io_uring_enter");
    }
}

std::uint32_t Ring::copy_cqes(void* out, std::uint32_t max, std::uint32_t wait_nr,
                              const WaitOptions& wait) {
    check_usable();  // see submit_nowait
    CompletionQueue& cq = core_.cq();
    if (cq.ready() < std::max<std::uint32_t>(wait_nr, 1)) {
        if (wait_nr > 0) {
            wait_ready(wait_nr, wait);
        } else {
            flush_held_back();
        }
    }
    check_usable();  // a signal handler run while waiting may have closed the ring
    std::uint32_t n = cq.peek_batch(out, max);
    // Accounted from the ring's entries, not from `out`: the caller's memory may change under
    // us (another thread, a process sharing the mapping, the kernel writing into a buffer that
    // `out` views), and a forged final CQE there would release another operation's pins.
    PinList released;
    settle_ready(n, released);
    cq.advance(n);
    return n;
}

void Ring::cq_advance(std::uint32_t count) {
    CompletionQueue& cq = core_.cq();
    PinList released;
    settle_ready(count, released);
    cq.advance(count);
}

void Ring::settle_ready(std::uint32_t count, PinList& released) {
    const CompletionQueue& cq = core_.cq();
    for (std::uint32_t i = 0; i < count; ++i) {
        // at() steps by the ring's CQE size (32 on CQE32 rings) and wraps at the ring's end.
        const Cqe& cqe = cq.at(i);
        // A CQE flagged MORE is not the operation's last: its memory stays pinned.
        if ((cqe.flags & cqe_flags::MORE) != 0) continue;
        // A live resource tag's CQE (the kernel posts them with flags 0, so a msg_ring CQE,
        // always flagged MORE, is never taken for one): no operation has this user_data
        // (see check_tags_free).
        if (!live_tags_.empty() && settle_tag(cqe.user_data, released)) continue;
        if (!reservations_.empty()) settle_reservation(cqe, released);
        inflight_.complete(cqe.user_data, released);
        if (!skip_polls_.empty() && !inflight_.contains(cqe.user_data)) {
            skip_polls_.erase(cqe.user_data);
        }
    }
}

bool Ring::settle_tag(std::uint64_t user_data, PinList& released) {
    auto it = live_tags_.find(user_data);
    if (it == live_tags_.end()) return false;
    --live_tag_count_;
    if (--it->second.count == 0) {
        tag_pin_count_ -= it->second.pins.size();
        for (Pin& pin : it->second.pins) released.push_back(std::move(pin));
        live_tags_.erase(it);
    }
    return true;
}

void Ring::check_tags_free(const std::vector<std::uint64_t>& tags, TagTable table) const {
    for (std::size_t i = 0; i < tags.size(); ++i) {
        if (tags[i] == 0) continue;
        if (inflight_.contains(tags[i])) {
            raise(PyExc_ValueError, "tags[" + std::to_string(i) + "]: " + std::to_string(tags[i]) +
                                        " is the user_data of an operation in flight; the "
                                        "kernel's CQE for the tag could not be told from its "
                                        "completion (pick tags no operation uses)");
        }
        auto live = live_tags_.find(tags[i]);
        if (live != live_tags_.end() && live->second.table != table) {
            const char* other = live->second.table == TagTable::files ? "files" : "buffers";
            raise(PyExc_ValueError,
                  "tags[" + std::to_string(i) + "]: " + std::to_string(tags[i]) +
                      " is a live tag of the registered " + other +
                      "; its CQE could not be told from this one's (pick tags that differ "
                      "between files and buffers)");
        }
    }
}

void Ring::add_live_tags(const std::vector<std::uint64_t>& tags, std::size_t count,
                         const std::vector<bool>& skip, const PinList* pins, TagTable table) {
    for (std::size_t i = 0; i < count && i < tags.size(); ++i) {
        if (tags[i] == 0 || (i < skip.size() && skip[i])) continue;  // 0: no CQE is posted
        LiveTag& tag = live_tags_[tags[i]];
        tag.table = table;
        ++tag.count;
        ++live_tag_count_;
        if (pins != nullptr && i < pins->size() && (*pins)[i] != nullptr) {
            tag.pins.push_back((*pins)[i]);
            ++tag_pin_count_;
        }
    }
}

void Ring::check_no_tag_user_data() const {
    check_prepared_user_data(
        [this](std::uint64_t user_data) { return live_tags_.count(user_data) != 0; },
        "a live resource tag (registered with tags= and its CQE not seen yet): its completion "
        "could not be told from the tag's CQE");
}

void Ring::resize(unsigned sq_entries, unsigned cq_entries) {
    check_usable();
    // The kernel copies the SQEs published to it; ours are flushed only at submit, and their
    // pins live in slot_pins_, indexed by the old mask: there must be none.
    if (handed_out_ != flushed_ || core_.sq_ready() != 0) {
        raise(PyExc_ValueError, "resize: " + std::to_string(core_.sq_ready()) +
                                    " SQEs are prepared but not yet consumed by the kernel; "
                                    "submit() them before resizing");
    }
    if (blocked_threads_ != 0) {
        raise(PyExc_ValueError, "resize: another thread is waiting on this ring");
    }
    int ret = core_.resize(sq_entries, cq_entries);
    if (ret == -EINVAL && (core_.flags() & setup::DEFER_TASKRUN) == 0) {
        throw_errno(ret,
                    "resize (IORING_REGISTER_RESIZE_RINGS, Linux 6.13+, only resizes rings "
                    "set up with SetupFlags.DEFER_TASKRUN)");
    }
    if (ret == -EOPNOTSUPP) {
        throw_errno(ret,
                    "resize (the kernel does not report where the new SQ index array is, "
                    "and this kernel's layout is not the known one: set the ring up with "
                    "SetupFlags.NO_SQARRAY to resize it)");
    }
    if (ret == -EOVERFLOW) {
        throw_errno(ret, "resize (the new rings cannot hold the completions not yet reaped)");
    }
    if (ret < 0 && core_.broken()) {
        broken_ = true;
        throw_errno(ret,
                    "resize (the kernel resized the rings, but mapping the new ones failed: "
                    "this ring can no longer be used; close it)");
    }
    if (ret < 0) throw_errno(ret, "resize (IORING_REGISTER_RESIZE_RINGS, Linux 6.13+)");
    // Every slot is empty (checked above); positions stay absolute, only the mask changed.
    slot_pins_.clear();
    slot_pins_.resize(core_.sq().entries());
}

void Ring::register_buffers(std::shared_ptr<RegisteredBuffers> buffers) {
    check_usable();
    check_not_unregistering(TagTable::buffers, "register_buffers");
    int ret = core_.register_buffers(buffers->iovecs.data(),
                                     static_cast<unsigned>(buffers->iovecs.size()));
    if (ret < 0) throw_errno(ret, "register_buffers");
    registered_buffers_ = std::move(buffers);
}

PinList Ring::forget_unposted_tags(TagTable table) {
    PinList released;
    if (live_tags_.empty() || !kernel_older_than(6, 13)) return released;
    CompletionQueue& cq = core_.cq();
    if ((core_.sq().kernel_flags() & sq_ring::CQ_OVERFLOW) != 0) {
        // Bring overflowed CQEs into the CQ where they fit (min_complete 0: no wait).
        (void)core_.enter(0, 0, enter::GETEVENTS);
        if ((core_.sq().kernel_flags() & sq_ring::CQ_OVERFLOW) != 0) return released;
    }
    // The tag CQEs of this table the kernel posted and nobody reaped yet, counted as
    // settle_ready() will count them.
    std::unordered_map<std::uint64_t, std::uint32_t> posted;
    for (std::uint32_t i = 0, n = cq.ready(); i < n; ++i) {
        const Cqe& cqe = cq.at(i);
        if ((cqe.flags & cqe_flags::MORE) != 0) continue;
        auto live = live_tags_.find(cqe.user_data);
        if (live != live_tags_.end() && live->second.table == table) ++posted[cqe.user_data];
    }
    for (auto it = live_tags_.begin(); it != live_tags_.end();) {
        LiveTag& tag = it->second;
        auto seen = posted.find(it->first);
        std::uint32_t keep = seen == posted.end() ? 0 : std::min(seen->second, tag.count);
        if (tag.table != table || keep == tag.count) {
            ++it;
            continue;
        }
        live_tag_count_ -= tag.count - keep;
        tag.count = keep;
        if (keep != 0) {
            ++it;
            continue;
        }
        tag_pin_count_ -= tag.pins.size();
        for (Pin& pin : tag.pins) released.push_back(std::move(pin));
        it = live_tags_.erase(it);
    }
    return released;
}

namespace {

// BlockingIOError (the call would block) with errno EBUSY (what it needs is busy).
[[noreturn]] void raise_busy(const std::string& message) {
    py::object error = py::reinterpret_borrow<py::object>(PyExc_BlockingIOError)(EBUSY, message);
    PyErr_SetObject(PyExc_BlockingIOError, error.ptr());
    throw py::error_already_set();
}

}  // namespace

void Ring::refuse_unregister_in_flight(const char* call) const {
    if (resource_users_ == nullptr || resource_users_.use_count() == 1) return;
    std::vector<std::uint64_t> keys = inflight_.keys_holding(resource_users_.get());
    if (keys.empty()) return;
    std::string names;
    for (std::size_t i = 0; i < keys.size() && i < 8; ++i) {
        char hex[24];
        std::snprintf(hex, sizeof(hex), "%s0x%llx", i ? ", " : "",
                      static_cast<unsigned long long>(keys[i]));
        names += hex;
    }
    if (keys.size() > 8) names += ", ...";
    utsname u{};
    (void)uname(&u);
    raise_busy(std::string(call) + ": " + std::to_string(keys.size()) +
               " operations using registered files or buffers are in flight (user_data " + names +
               "); before Linux 6.13 the kernel waits for every one of them, whichever table "
               "is unregistered (this kernel is " +
               u.release + "): reap or cancel them first");
}

// Marks `table` as being unregistered for the scope of an unregistration (see unregistering_).
class Ring::UnregisterScope {
public:
    UnregisterScope(Ring& ring, TagTable table)
        : ring_(ring), bit_(static_cast<std::uint8_t>(1u << static_cast<unsigned>(table))) {
        ring_.unregistering_ |= bit_;
    }
    ~UnregisterScope() { ring_.unregistering_ &= static_cast<std::uint8_t>(~bit_); }
    UnregisterScope(const UnregisterScope&) = delete;
    UnregisterScope& operator=(const UnregisterScope&) = delete;

private:
    Ring& ring_;
    std::uint8_t bit_;
};

void Ring::check_not_unregistering(TagTable table, const char* call) const {
    if ((unregistering_ & (1u << static_cast<unsigned>(table))) == 0) return;
    const char* what = table == TagTable::files ? "files" : "buffers";
    raise_busy(std::string(call) + ": the registered " + what + " are being unregistered " +
               "(unregister_" + what + " in another thread, or code it ran): call again " +
               "once it has returned");
}

void Ring::unregister_without_gil(int (IoUring::*call)() noexcept, const char* name) {
    // The kernel may still wait for other operations holding its resource references (before
    // 6.13): without the GIL, so other threads run and a signal ends the wait. Counted as a
    // blocked thread, as a wait is: close() and resize() from another thread must not close
    // or remap the ring (its fd number could be reused) while this call is in it.
    int ret;
    for (;;) {
        ++blocked_threads_;
        {
            py::gil_scoped_release nogil;
            ret = (core_.*call)();
        }
        --blocked_threads_;
        if (closing_ || closed_) {
            raise(PyExc_ValueError,
                  std::string("the ring was closed while ") + name + " waited on it");
        }
        if (ret != -EINTR) break;
        if (PyErr_CheckSignals() != 0) throw py::error_already_set();
        check_usable();  // a signal handler may have closed the ring
    }
    if (ret < 0) throw_errno(ret, name);
}

// Before Linux 6.13, unregistering a table waits in the kernel until every operation holding a
// reference to it has completed, for ever if one never does: on 6.1 even when the read
// completes (a read_fixed of a pipe, written 60 s later, never returned in 200 s), and a
// FIXED_FILE read held unregister_files (and, with the GIL, every thread) until it completed.
// Those kernels keep one resource node for both tables, so the wait covers operations using
// either one (a read_fixed holds unregister_files too). So it is refused, naming the
// operations in flight that use a registered file or buffer (each pinned resource_users_ at
// flush), before any wait. Kernels from 6.13 on drop the table at once and those operations
// keep what they use.
void Ring::unregister_files() {
    check_usable();
    refuse_unregister_in_flight("unregister_files");
    PinList released;  // destroyed last, after the scope: it may run Python code
    UnregisterScope scope(*this, TagTable::files);
    unregister_without_gil(&IoUring::unregister_files, "unregister_files");
    released = forget_unposted_tags(TagTable::files);
}

void Ring::unregister_buffers() {
    check_usable();
    refuse_unregister_in_flight("unregister_buffers");
    // Destroyed last, after the scope: releasing the exports may run Python code (a buffer
    // object's finalizer), which may register buffers again.
    std::shared_ptr<RegisteredBuffers> table = registered_buffers_;
    PinList released;
    UnregisterScope scope(*this, TagTable::buffers);
    unregister_without_gil(&IoUring::unregister_buffers, "unregister_buffers");
    // The table the kernel just dropped (no registration of buffers could run meanwhile); the
    // operations in flight keep it until they completed.
    retire_registered_buffers();
    released = forget_unposted_tags(TagTable::buffers);
}

void Ring::register_wait_region(std::uint32_t pages) {
    check_usable();
    if (pages == 0 || pages > 16) raise(PyExc_ValueError, "pages must be in 1..16");
    if (wait_slots_ != 0) raise(PyExc_ValueError, "a wait region is already registered");
    if (!disabled_) {
        raise(PyExc_ValueError,
              "register_wait_region: the kernel takes a wait region only on a ring set up with "
              "SetupFlags.R_DISABLED, before enable_rings()");
    }
    std::size_t size = std::size_t{pages} * static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
    // Page-aligned memory of our own (IORING_MEM_REGION_TYPE_USER): the kernel pins its pages.
    void* memory = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (memory == MAP_FAILED) throw_errno(-errno, "register_wait_region (mmap)");
    RegionDesc desc{};
    desc.user_addr = address_of(memory);
    desc.size = size;
    desc.flags = kMemRegionTypeUser;
    MemRegionReg reg{};
    reg.region_uptr = address_of(&desc);
    reg.flags = kMemRegionRegWaitArg;
    int ret = core_.register_op(RegisterOp::REGISTER_MEM_REGION, &reg, 1);
    if (ret < 0) {
        munmap(memory, size);
        throw_errno(ret, ret == -EINVAL ? "register_wait_region (IORING_REGISTER_MEM_REGION "
                                          "with REG_WAIT_ARG, Linux 6.13+)"
                                        : "register_wait_region (IORING_REGISTER_MEM_REGION)");
    }
    wait_region_ = memory;
    wait_region_size_ = size;
    wait_slots_ = static_cast<std::uint32_t>(size / sizeof(RegWait));
    wait_slot_busy_.assign(wait_slots_, false);
}

void Ring::unmap_wait_region() noexcept {
    if (wait_region_ != nullptr) munmap(wait_region_, wait_region_size_);
    wait_region_ = nullptr;
    wait_region_size_ = 0;
    wait_slots_ = 0;
    wait_slot_busy_.clear();
}

void Ring::enable_rings() {
    check_usable();
    int ret = core_.enable_rings();
    if (ret < 0) throw_errno(ret, "enable_rings");
    disabled_ = false;
}

void Ring::close() { close_impl(true); }

bool Ring::wait_for_close(unsigned to_submit, long long timeout_ns) {
    int ret;
    // SQPOLL: a sleeping kernel thread must be woken to take the cancel (and what precedes it).
    std::uint32_t wakeup = 0;
    (void)core_.sq_ring_needs_enter(wakeup);
    {
        py::gil_scoped_release nogil;
        if ((core_.features() & feat::EXT_ARG) != 0) {
            KernelTimespec ts{0, timeout_ns};
            GeteventsArg arg{};
            arg.ts = address_of(&ts);
            ret = core_.enter(to_submit, 1, enter::GETEVENTS | enter::EXT_ARG | wakeup, &arg,
                              sizeof(arg));
        } else {
            ret = core_.enter(to_submit, 0, enter::GETEVENTS | wakeup);
            timespec pause{0, 10'000'000};
            nanosleep(&pause, nullptr);
        }
    }
    return ret >= 0 || ret == -ETIME || ret == -EINTR || ret == -EAGAIN || ret == -EBUSY;
}

Sqe* Ring::close_sqe(std::chrono::steady_clock::time_point deadline) {
    SubmissionQueue& sq = core_.sq();
    for (;;) {
        Sqe* sqe = sq.get_sqe_raw();
        if (sqe != nullptr) {
            ++handed_out_;
            // A NOP with user_data 0 until prepared otherwise (all of an SQE128 entry).
            std::memset(static_cast<void*>(sqe), 0, sq.sqe_size());
            return sqe;
        }
        flush();
        auto left = deadline - std::chrono::steady_clock::now();
        if (left <= decltype(left)::zero()) return nullptr;
        if (!wait_for_close(sq.ready(), 0)) return nullptr;
    }
}

bool Ring::wake_waiters(std::chrono::steady_clock::time_point deadline) {
    if (blocked_threads_ == 0) return true;
    // A waiter sleeps until at most cq_entries completions are posted after its wait began
    // (min_complete is checked against the CQ size), so that many NOPs wake every waiter.
    std::uint64_t nops = std::clamp<std::uint64_t>(blocked_wait_nr_, 1, core_.cq().entries());
    for (std::uint64_t i = 0; i < nops; ++i) {
        if (close_sqe(deadline) == nullptr) return false;
    }
    flush();
    while (blocked_threads_ > 0) {
        if (std::chrono::steady_clock::now() >= deadline) return false;
        // Submits the NOPs (EEXIST on a SINGLE_ISSUER ring of another thread: no waking it).
        if (!wait_for_close(core_.sq().ready(), 0)) return false;
        py::gil_scoped_release nogil;  // let the woken waiters take the GIL and leave
        timespec pause{0, 1'000'000};
        nanosleep(&pause, nullptr);
    }
    return true;
}

void Ring::sync_cancel_all(long long timeout_ns) {
    SyncCancelReg reg{};
    reg.fd = -1;
    reg.flags = cancel::ANY | cancel::ALL;
    reg.timeout = KernelTimespec{0, timeout_ns};
    py::gil_scoped_release nogil;
    // ENOENT (nothing left to cancel), EINVAL (before Linux 6.0), ETIME and EEXIST (another
    // thread's SINGLE_ISSUER ring) leave the cancel SQE and the drain's bound to do the work.
    (void)core_.register_op(RegisterOp::REGISTER_SYNC_CANCEL, &reg, 1);
}

bool Ring::drain_for_close(PinList& released) {
    SubmissionQueue& sq = core_.sq();
    auto deadline = std::chrono::steady_clock::now() + kCloseDrainTimeout;
    Sqe* cancel = close_sqe(deadline);
    if (cancel == nullptr) return false;
    prep_cancel(*cancel, 0, 0, cancel::ANY | cancel::ALL);
    flush();
    // Once an IO_DRAIN operation is queued, the kernel holds every later SQE (the cancel above
    // too) until everything before the drain completed: what is ahead of it is cancelled
    // through io_uring_register, which no drain holds back, and again on every round, for what
    // a drain lets through afterwards.
    bool first = true;
    while (must_drain()) {
        if (!first) sync_cancel_all(kCloseWaitSliceNs / 5);
        first = false;
        auto left = deadline - std::chrono::steady_clock::now();
        if (left <= decltype(left)::zero()) return false;
        long long slice = std::min<long long>(
            kCloseWaitSliceNs, std::chrono::duration_cast<std::chrono::nanoseconds>(left).count());
        bool ok = wait_for_close(sq.ready(), slice);
        std::uint32_t ready = core_.cq().ready();
        settle_ready(ready, released);
        core_.cq().advance(ready);
        if (!ok) break;
    }
    return !must_drain();
}

void Ring::close_impl(bool from_close) {
    if (closed_ || closing_) return;  // closed, or being closed by another thread
    // From here on other threads see a closed ring: none starts a wait on it any more.
    closing_ = true;
    PinList released;  // destroyed last, once the ring is closed
    bool forked = fork_generation_ != fork_generation.load(std::memory_order_relaxed);
    bool drained = true;
    if (forked) {
        // Our pins are the child's copies of the parent's objects: the kernel never writes
        // into the child's memory, so they can all go.
        unregister_fd();
        core_.abandon_after_fork();
    } else {
        SubmissionQueue& sq = core_.sq();
        // SQEs prepared but never flushed become NOPs: the kernel must not start them now.
        for (std::uint64_t position = flushed_; position < handed_out_; ++position) {
            sq.at(static_cast<std::uint32_t>(position)) = Sqe{};
            PinList& pins = slot_pins_[position & sq.mask()];
            slot_pin_count_ -= pins.size();
            for (Pin& pin : pins) released.push_back(std::move(pin));
            pins.clear();
        }
        // Threads blocked in a wait would read the mappings after we unmap them: wake them.
        if (!wake_waiters(std::chrono::steady_clock::now() + kCloseDrainTimeout)) {
            closing_ = false;
            raise(PyExc_RuntimeError,
                  "cannot close the ring: another thread is blocked waiting on it and could "
                  "not be woken (a SINGLE_ISSUER ring can only be woken by its own thread)");
        }
        // A ring still disabled never started an operation (io_uring_enter refuses with
        // EBADFD): what it counts as in flight never reached the kernel, and its pins can go.
        if (broken_) {
            drained = !must_drain();  // keeps what is in flight: its completions are unseen
        } else if (must_drain() && !disabled_) {
            drained = drain_for_close(released);
        }
        unregister_fd();  // before the number can be reused
        core_.close();
    }
    forget_reservations(drained);
    skip_polls_.clear();
    unmap_wait_region();  // after the kernel ring: no enter can name a slot of it any more
    closed_ = true;
    PinList kept;
    inflight_.take_all_pins(drained ? released : kept);
    inflight_.clear();
    for (PinList& pins : slot_pins_) {
        for (Pin& pin : pins) released.push_back(std::move(pin));
        pins.clear();
    }
    slot_pin_count_ = 0;
    if (registered_buffers_ != nullptr) {
        (drained ? released : kept).push_back(std::move(registered_buffers_));
        registered_buffers_.reset();
    }
    for (Pin& pin : lifetime_pins_) (drained ? released : kept).push_back(std::move(pin));
    lifetime_pins_.clear();
    for (auto& entry : live_tags_) {
        for (Pin& pin : entry.second.pins) (drained ? released : kept).push_back(std::move(pin));
    }
    live_tags_.clear();
    live_tag_count_ = tag_pin_count_ = 0;
    if (!kept.empty()) {
        std::size_t count = kept.size();
        for (Pin& pin : kept) forever().push_back(std::move(pin));
        std::string message = "iouring: closed a ring whose operations did not finish within " +
                              std::to_string(kCloseDrainTimeout.count()) + " s; keeping " +
                              std::to_string(count) + " buffers alive for the life of the process";
        if (PyErr_WarnEx(PyExc_ResourceWarning, message.c_str(), 1) != 0) {
            if (from_close) throw py::error_already_set();
            PyErr_WriteUnraisable(nullptr);
        }
    }
}

std::vector<std::uint64_t> to_tags(const Ring& ring, py::handle tags, std::size_t expected,
                                   Ring::TagTable table) {
    std::vector<std::uint64_t> out;
    if (tags.is_none()) return out;
    if (PyIter_Check(tags.ptr()) == 0 && PySequence_Check(tags.ptr()) == 0) {
        raise(PyExc_TypeError, "tags must be an iterable of ints (u64), not " + type_name(tags));
    }
    // Read at most one entry past `expected`: a huge or endless iterable (a broadcast NumPy
    // array of 2**40 entries) fails at once instead of exhausting memory.
    auto wrong_count = [&](const std::string& got) {
        raise(PyExc_ValueError,
              "tags must have one entry per slot (" + std::to_string(expected) + "), got " + got);
    };
    if (PySequence_Check(tags.ptr()) != 0) {
        Py_ssize_t n = PySequence_Size(tags.ptr());
        if (n < 0) throw py::error_already_set();
        if (static_cast<std::size_t>(n) != expected) wrong_count(std::to_string(n));
    }
    out.reserve(expected);
    for (py::handle item : py::iter(tags)) {
        if (out.size() == expected) wrong_count("more");
        out.push_back(to_u64(item, "tags"));
    }
    if (out.size() != expected) wrong_count(std::to_string(out.size()));
    ring.check_usable();  // after the conversions, which may run Python code
    if ((ring.core().features() & feat::RSRC_TAGS) == 0) {
        raise(PyExc_NotImplementedError, "tags need IORING_FEAT_RSRC_TAGS (Linux 5.13 or newer)");
    }
    ring.check_tags_free(out, table);
    return out;
}

WaitOptions wait_options(const Ring& ring, PyObject* timeout, PyObject* min_wait, PyObject* sigmask,
                         PyObject* deadline, PyObject* iowait) {
    auto given = [](PyObject* p) { return p != nullptr && p != Py_None; };
    WaitOptions wait;
    if (given(timeout) && given(deadline)) {
        raise(PyExc_ValueError, "timeout and deadline: pass one of them, not both");
    }
    if (given(timeout)) wait.deadline = deadline_after(timeout);
    if (given(deadline)) wait.absolute = to_timespec(deadline, "deadline");
    if (given(min_wait)) {
        KernelTimespec ts = to_timespec(min_wait, "min_wait");
        constexpr std::int64_t kMaxSeconds = 0xffffffffll / 1'000'000;  // u32 microseconds
        if (ts.tv_sec >= kMaxSeconds) {
            raise(PyExc_ValueError, "min_wait must be below " + std::to_string(kMaxSeconds) +
                                        " seconds (the kernel takes microseconds in a u32)");
        }
        std::int64_t us = ts.tv_sec * 1'000'000 + (ts.tv_nsec + 999) / 1000;  // rounded up
        wait.min_wait_usec = static_cast<std::uint32_t>(us);
    }
    if (given(sigmask)) {
        py::handle h(sigmask);
        if (PyIter_Check(sigmask) == 0 && PySequence_Check(sigmask) == 0 &&
            PyAnySet_Check(sigmask) == 0) {
            raise(PyExc_TypeError,
                  "sigmask must be an iterable of signal numbers (as signal.pthread_sigmask "
                  "takes), not " +
                      type_name(h));
        }
        // Bounded: a huge or endless iterable (a broadcast array of 2**40 ones) would otherwise
        // keep the wait converting, GIL held, for ever. 64 signals, and room for repeats.
        constexpr std::size_t kMaxEntries = 1024;
        std::uint64_t mask = 0;
        std::size_t entries = 0;
        for (py::handle item : py::iter(h)) {
            if (++entries > kMaxEntries) {
                raise(PyExc_ValueError, "sigmask: more than " + std::to_string(kMaxEntries) +
                                            " entries (there are 64 signal numbers)");
            }
            std::int64_t signo = to_i64(item, "sigmask", INT64_MIN, INT64_MAX);
            if (signo < 1 || signo > 64) {
                raise(PyExc_ValueError,
                      "sigmask: signal number " + std::to_string(signo) + " is out of range 1..64");
            }
            mask |= std::uint64_t{1} << (signo - 1);
        }
        wait.sigmask = mask;
    }
    if (iowait != nullptr) {
        if (!PyBool_Check(iowait)) {
            raise(PyExc_TypeError, "iowait must be a bool, not " + type_name(py::handle(iowait)));
        }
        wait.no_iowait = iowait == Py_False;
    }
    // Checked after every conversion (which may run Python code), on the ring as it is now.
    ring.check_usable();
    const std::uint32_t features = ring.core().features();
    if (wait.min_wait_usec != 0 && (features & feat::MIN_TIMEOUT) == 0) {
        raise(PyExc_NotImplementedError,
              "min_wait needs IORING_FEAT_MIN_TIMEOUT (Linux 6.12 or newer)");
    }
    if (wait.no_iowait && (features & feat::NO_IOWAIT) == 0) {
        raise(PyExc_NotImplementedError,
              "iowait=False needs IORING_FEAT_NO_IOWAIT (Linux 6.15 or newer)");
    }
    if ((wait.bounded() || wait.min_wait_usec != 0) && (features & feat::EXT_ARG) == 0) {
        raise(PyExc_NotImplementedError,
              "timeout, deadline and min_wait need IORING_FEAT_EXT_ARG (Linux 5.11 or newer)");
    }
    return wait;
}

}  // namespace iouring::bindings
