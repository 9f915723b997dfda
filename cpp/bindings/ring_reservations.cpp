// Reservations (see "reservations" in ring.hpp): CQEs that the kernel posts under a user_data
// no operation was submitted with, kept from releasing the pins of an operation in flight
// under that user_data. Two sources: messages from other rings (msg_ring with a final CQE on
// the target) and poll updates that rename a poll. Also the registry of rings by fd, which
// finds a message's target.
//
// Why this is enough: a ring's in-flight table counts operations per user_data and releases a
// key's pins only when its count reaches zero. The reservation is one more count under the
// user_data D that the CQE will carry, taken before the kernel can post it (at flush, before
// the SQ tail is published). If an operation X with user_data D is in flight there, its pins
// stay until both X's final CQE and the reserved CQE were reaped, in either order.
//
// The SQE's own completion tells whether the kernel did post (or rename):
// - a MSG_RING posts the message, or fails with res < 0 without posting anything (-EOVERFLOW
//   included: an fd sent that way is installed, but no CQE comes). A message the kernel
//   accepted but could not post (it drops a CQE only when it cannot even allocate overflow
//   storage, and then reports -EBADR to the target's waits) leaves the key counted: its memory
//   is kept, never freed early;
// - a poll update (IORING_OP_POLL_REMOVE with IORING_POLL_UPDATE_USER_DATA) finds the poll by
//   its old user_data, takes it off its wait queue, sets the new user_data and re-arms it: res
//   0, and every later CQE of the poll (its final one too, even the -ECANCELED of a failed
//   re-arm) carries the new user_data. So on success the poll's count moves: the reservation
//   under the new user_data stands for it, and its count under the old one ends. When the poll
//   has already fired (a single-shot poll whose CQE is posted or on its way), is not found,
//   or is completing, the update fails (-ENOENT, -EALREADY) and the poll's CQEs keep the old
//   user_data: the reservation is dropped and the old count ends with the poll's own CQE.
//   Either way each count ends exactly once, whichever of the two CQEs is reaped first.
//   A poll that is a skipped member of a CQE_SKIP_SUCCESS chain is refused: its chain's one
//   completion could then come under either user_data.
//
// The SQE's completion must be told apart from any other CQE, so its user_data is used by no
// other operation in flight while the reservation stands (flush refuses the overlap either
// way), and the reserved user_data must not be something else that the ring settles by
// user_data alone: a live resource tag, or another SQE with a reservation.
#include "ring.hpp"

#include <cerrno>
#include <mutex>
#include <string>
#include <unordered_map>

#include <fcntl.h>
#include <unistd.h>

#include <iouring/sqe_control.hpp>

#include "ops.hpp"

namespace iouring::bindings {

namespace {

// Rings by fd. Never destroyed: rings may close while the interpreter shuts down.
struct RingRegistry {
    std::mutex mutex;
    std::unordered_map<int, std::weak_ptr<Ring>> rings;
};

RingRegistry& registry() {
    static auto* rings = new RingRegistry;
    return *rings;
}

// Whether the kernel, running the MSG_RING `sqe`, would post a CQE without CqeFlags.MORE into
// the target: a data message without FLAGS_PASS (flags 0) or with passed flags lacking MORE,
// or fd passing without CQE_SKIP. Other commands fail with -EINVAL and post nothing.
bool posts_final_cqe(const Sqe& sqe) noexcept {
    if (sqe.addr == msg_ring::DATA) {
        return (sqe.op_flags & msg_ring::FLAGS_PASS) == 0 ||
               (static_cast<std::uint32_t>(sqe.splice_fd_in) & cqe_flags::MORE) == 0;
    }
    if (sqe.addr == msg_ring::SEND_FD) return (sqe.op_flags & msg_ring::CQE_SKIP) == 0;
    return false;
}

}  // namespace

Ring::PlannedReservation::~PlannedReservation() {
    if (fd >= 0) ::close(fd);
}

void Ring::set_self(const std::shared_ptr<Ring>& self) {
    self_ = self;
    RingRegistry& r = registry();
    std::lock_guard<std::mutex> lock(r.mutex);
    r.rings[core_.fd()] = self;
}

void Ring::unregister_fd() noexcept {
    RingRegistry& r = registry();
    std::lock_guard<std::mutex> lock(r.mutex);
    auto it = r.rings.find(core_.fd());
    if (it == r.rings.end()) return;
    // Ours unless another ring took the number since (only after our fd was closed).
    std::shared_ptr<Ring> entry = it->second.lock();
    if (entry == nullptr || entry.get() == this) r.rings.erase(it);
}

std::shared_ptr<Ring> Ring::find_by_fd(int fd) {
    std::shared_ptr<Ring> ring;
    {
        RingRegistry& r = registry();
        std::lock_guard<std::mutex> lock(r.mutex);
        auto it = r.rings.find(fd);
        if (it != r.rings.end()) ring = it->second.lock();
    }
    if (ring == nullptr || ring->closed_ || ring->closing_ || ring->broken_ ||
        ring->fork_generation_ != fork_generation.load(std::memory_order_relaxed)) {
        return nullptr;
    }
    return ring;
}

std::vector<Ring::PlannedReservation> Ring::plan_reservations() const {
    std::vector<PlannedReservation> plan;
    const SubmissionQueue& sq = core_.sq();
    constexpr auto kMsgRing = static_cast<std::uint8_t>(Op::MSG_RING);
    constexpr auto kPollRemove = static_cast<std::uint8_t>(Op::POLL_REMOVE);
    bool any = false;  // one byte per SQE, no branch: the common flush has neither opcode
    for (std::uint64_t position = flushed_; position < handed_out_; ++position) {
        std::uint8_t opcode = sq.at(static_cast<std::uint32_t>(position)).opcode;
        any |= (opcode == kMsgRing) | (opcode == kPollRemove);
    }
    if (!any) return plan;
    auto in_this_flush = [&](std::uint64_t user_data, std::uint64_t except) {
        for (std::uint64_t p = flushed_; p < handed_out_; ++p) {
            if (p != except && sq.at(static_cast<std::uint32_t>(p)).user_data == user_data) {
                return true;
            }
        }
        return false;
    };
    for (std::uint64_t position = flushed_; position < handed_out_; ++position) {
        const Sqe& s = sq.at(static_cast<std::uint32_t>(position));
        const bool message = s.opcode == kMsgRing && posts_final_cqe(s);
        const bool rename = renames_user_data(s);
        if (!message && !rename) continue;
        const std::string what = (message ? "the MSG_RING SQE with user_data "
                                          : "the poll update with user_data ") +
                                 std::to_string(s.user_data) +
                                 (message ? " (a final CQE, without CqeFlags.MORE, on its target)"
                                          : " (PollFlags.UPDATE_USER_DATA to a new user_data)");
        auto refuse = [&what](const std::string& why) {
            raise(PyExc_ValueError, what + ": " + why + ". Nothing was submitted");
        };
        if ((s.flags & sqe_flags::CQE_SKIP_SUCCESS) != 0) {
            refuse(
                "SqeFlags.CQE_SKIP_SUCCESS would skip its completion, which tells whether the "
                "kernel did it");
        }
        std::shared_ptr<Ring> target;
        std::uint64_t key = s.off;  // the message's user_data, the poll's new user_data
        std::optional<std::uint64_t> old;
        if (message) {
            if ((s.flags & sqe_flags::FIXED_FILE) != 0) {
                refuse(
                    "with SqeFlags.FIXED_FILE its fd is a registered file, which cannot be "
                    "told to be a ring of this process; name the target by its fd");
            }
            target = find_by_fd(s.fd);
            if (target == nullptr) {
                refuse("fd " + std::to_string(s.fd) +
                       " is not an open IoUring of this process, whose operations the "
                       "message's CQE could not be kept from completing (and unpinning); send "
                       "with CqeFlags.MORE, or skip the target CQE");
            }
        } else {
            target = self_.lock();
            if (target == nullptr) refuse("the ring is being destroyed");
            old = s.addr;
            bool skipped_here = false;
            for (std::uint64_t p = flushed_; p < handed_out_; ++p) {
                const Sqe& other = sq.at(static_cast<std::uint32_t>(p));
                skipped_here = skipped_here ||
                               (other.opcode == static_cast<std::uint8_t>(Op::POLL_ADD) &&
                                (other.flags & sqe_flags::CQE_SKIP_SUCCESS) != 0 &&
                                other.user_data == s.addr);
            }
            if (skip_polls_.count(s.addr) != 0 || skipped_here) {
                refuse("a poll under user_data " + std::to_string(s.addr) +
                       " is a member of a CQE_SKIP_SUCCESS chain, whose one completion could "
                       "then come under either user_data");
            }
        }
        if (inflight_.contains(s.user_data) || in_this_flush(s.user_data, position) ||
            (rename && (s.user_data == key || s.user_data == s.addr))) {
            refuse(
                "its user_data is also that of another operation in flight or submitted "
                "with it, so its completion (which says whether the kernel did it) could not "
                "be told from that one's; give it a user_data of its own");
        }
        if (target->live_tags_.count(key) != 0 || target->reservations_.count(key) != 0) {
            refuse("user_data " + std::to_string(key) +
                   " is, in the ring that gets the CQE, a live resource tag or the user_data of "
                   "an SQE with a reservation, whose CQEs that ring settles by user_data alone");
        }
        int dup = -1;
        if (message) {
            dup = ::fcntl(s.fd, F_DUPFD_CLOEXEC, 0);
            if (dup < 0) throw_errno(-errno, "msg_ring: duplicating the target ring's fd");
        }
        plan.emplace_back(position, std::move(target), key, dup, old);
    }
    // A reservation of this flush on this very ring must not take the user_data of another SQE
    // of this flush that makes one (the rule above, for what is not in flight yet).
    for (const PlannedReservation& here : plan) {
        if (here.target.get() != this) continue;
        for (const PlannedReservation& m : plan) {
            if (sq.at(static_cast<std::uint32_t>(m.position)).user_data == here.key) {
                raise(PyExc_ValueError,
                      "the SQE with user_data " +
                          std::to_string(
                              sq.at(static_cast<std::uint32_t>(here.position)).user_data) +
                          " makes this ring get a CQE with user_data " + std::to_string(here.key) +
                          ", the user_data of a message or poll update submitted with it: "
                          "their completions could not be told apart. Nothing was submitted");
            }
        }
    }
    return plan;
}

void Ring::reserve(std::vector<PlannedReservation>& plan) {
    SubmissionQueue& sq = core_.sq();
    for (PlannedReservation& m : plan) {
        Sqe& s = sq.at(static_cast<std::uint32_t>(m.position));
        PinList none;
        m.target->inflight_.add(m.key, none);
        reservations_.emplace(s.user_data, Reservation{m.target, m.key, m.fd, m.renamed_from});
        if (m.fd >= 0) s.fd = std::exchange(m.fd, -1);
    }
}

void Ring::settle_reservation(const Cqe& cqe, PinList& released) {
    auto it = reservations_.find(cqe.user_data);
    if (it == reservations_.end()) return;
    Reservation m = it->second;
    reservations_.erase(it);
    // The kernel has run the message: it holds no reference through the fd any more.
    if (m.fd >= 0) ::close(m.fd);
    if (cqe.res >= 0) {
        // Posted: the target's CQE ends the reservation. Renamed: no CQE of the poll carries
        // the old user_data any more.
        if (m.renamed_from) inflight_.complete(*m.renamed_from, released);
        return;
    }
    std::shared_ptr<Ring> target = m.target.lock();
    if (target != nullptr && !target->closed_) target->inflight_.complete(m.key, released);
}

void Ring::check_no_reservation_user_data() const {
    check_prepared_user_data(
        [this](std::uint64_t user_data) { return reservations_.count(user_data) != 0; },
        "that of a message with a final CQE or a poll update renaming a poll, in flight: their "
        "completions could not be told apart");
}

void Ring::forget_reservations(bool drained) noexcept {
    // Undrained messages may still run: their fds stay open (and their reservations counted)
    // for the life of the process, so the kernel never reaches another ring through a reused
    // number.
    if (drained) {
        for (auto& entry : reservations_) {
            if (entry.second.fd >= 0) ::close(entry.second.fd);
        }
    }
    reservations_.clear();
}

}  // namespace iouring::bindings
