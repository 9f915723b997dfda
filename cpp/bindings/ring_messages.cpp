// Messages between rings whose CQE on the target is final (see "messages with a final CQE" in
// ring.hpp): the registry of rings by fd, and the reservations that keep such a CQE from
// releasing the pins of an operation in flight on the target under the same user_data.
//
// Why this is enough: the target's in-flight table counts operations per user_data and releases
// a key's pins only when its count reaches zero. The reservation is one more count under the
// message's user_data D, taken before the kernel can post the message (at flush, before the
// SQ tail is published). If an operation X with user_data D is in flight there, its pins stay
// until both X's final CQE and the message's CQE were reaped, in either order. The sender's
// own completion tells whether the kernel posted the message: the kernel posts it, or fails the
// MSG_RING with res < 0 without posting anything (-EOVERFLOW included: an fd sent that way is
// installed, but no CQE comes), so a failed message's reservation is dropped by the sender.
// A message the kernel accepted but could not post (it drops a CQE only when it cannot even
// allocate overflow storage, and then reports -EBADR to the target's waits) leaves the key
// counted: its memory is kept, never freed early.
//
// The sender's completion must be told apart from any other CQE, so a message's own user_data
// is used by no other operation in flight on the sender while the message is (flush refuses
// the overlap either way), and the reserved user_data must not be something else that the
// target settles by user_data alone: a live resource tag, or a message that the target itself
// has in flight.
#include "ring.hpp"

#include <cerrno>
#include <mutex>
#include <string>
#include <unordered_map>

#include <fcntl.h>
#include <unistd.h>

#include <iouring/sqe_control.hpp>

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

Ring::OutgoingMessage::~OutgoingMessage() {
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

std::vector<Ring::OutgoingMessage> Ring::plan_messages() const {
    std::vector<OutgoingMessage> plan;
    const SubmissionQueue& sq = core_.sq();
    bool any = false;  // one byte per SQE, no branch: the common flush has no MSG_RING
    for (std::uint64_t position = flushed_; position < handed_out_; ++position) {
        any |= sq.at(static_cast<std::uint32_t>(position)).opcode ==
               static_cast<std::uint8_t>(Op::MSG_RING);
    }
    if (!any) return plan;
    for (std::uint64_t position = flushed_; position < handed_out_; ++position) {
        const Sqe& s = sq.at(static_cast<std::uint32_t>(position));
        if (s.opcode != static_cast<std::uint8_t>(Op::MSG_RING) || !posts_final_cqe(s)) continue;
        const std::string what = "the MSG_RING SQE with user_data " + std::to_string(s.user_data) +
                                 " (a final CQE, without CqeFlags.MORE, on its target)";
        auto refuse = [&what](const std::string& why) {
            raise(PyExc_ValueError, what + ": " + why + ". Nothing was submitted");
        };
        if ((s.flags & sqe_flags::FIXED_FILE) != 0) {
            refuse(
                "with SqeFlags.FIXED_FILE its fd is a registered file, which cannot be told "
                "to be a ring of this process; name the target by its fd");
        }
        if ((s.flags & sqe_flags::CQE_SKIP_SUCCESS) != 0) {
            refuse(
                "SqeFlags.CQE_SKIP_SUCCESS would skip its completion, which tells whether "
                "the target got the message");
        }
        std::shared_ptr<Ring> target = find_by_fd(s.fd);
        if (target == nullptr) {
            refuse("fd " + std::to_string(s.fd) +
                   " is not an open IoUring of this process, whose operations the message's "
                   "CQE could not be kept from completing (and unpinning); send with "
                   "CqeFlags.MORE, or skip the target CQE");
        }
        auto in_this_flush = [&](std::uint64_t user_data, std::uint64_t except) {
            for (std::uint64_t p = flushed_; p < handed_out_; ++p) {
                if (p != except && sq.at(static_cast<std::uint32_t>(p)).user_data == user_data) {
                    return true;
                }
            }
            return false;
        };
        if (inflight_.contains(s.user_data) || in_this_flush(s.user_data, position)) {
            refuse(
                "its user_data is also that of another operation in flight or submitted "
                "with it, so its completion (which says whether the target got the "
                "message) could not be told from that one's; give it a user_data of its own");
        }
        const std::uint64_t key = s.off;
        if (target->live_tags_.count(key) != 0 || target->messages_.count(key) != 0) {
            refuse("its data " + std::to_string(key) +
                   " is, in the target ring, a live resource tag or the user_data of a message "
                   "that ring has in flight, whose CQEs it settles by user_data alone");
        }
        int dup = ::fcntl(s.fd, F_DUPFD_CLOEXEC, 0);
        if (dup < 0) throw_errno(-errno, "msg_ring: duplicating the target ring's fd");
        plan.emplace_back(position, std::move(target), key, dup);
    }
    // A message of this flush to this very ring must not reserve the user_data of another
    // message of this flush (the same rule as above, for what is not in flight yet).
    for (const OutgoingMessage& to_self : plan) {
        if (to_self.target.get() != this) continue;
        for (const OutgoingMessage& m : plan) {
            if (sq.at(static_cast<std::uint32_t>(m.position)).user_data == to_self.key) {
                raise(PyExc_ValueError,
                      "the MSG_RING SQE with user_data " +
                          std::to_string(
                              sq.at(static_cast<std::uint32_t>(to_self.position)).user_data) +
                          " sends this ring a final CQE with user_data " +
                          std::to_string(to_self.key) +
                          ", the user_data of a message submitted with it: their completions "
                          "could not be told apart. Nothing was submitted");
            }
        }
    }
    return plan;
}

void Ring::send_messages(std::vector<OutgoingMessage>& plan) {
    SubmissionQueue& sq = core_.sq();
    for (OutgoingMessage& m : plan) {
        Sqe& s = sq.at(static_cast<std::uint32_t>(m.position));
        PinList none;
        m.target->inflight_.add(m.key, none);
        messages_.emplace(s.user_data, PendingMessage{m.target, m.key, m.fd});
        s.fd = std::exchange(m.fd, -1);
    }
}

void Ring::settle_message(const Cqe& cqe, PinList& released) {
    auto it = messages_.find(cqe.user_data);
    if (it == messages_.end()) return;
    PendingMessage m = it->second;
    messages_.erase(it);
    ::close(m.fd);  // the kernel has run the message: it holds no reference through the fd
    if (cqe.res >= 0) return;  // posted: the target's CQE ends the reservation
    std::shared_ptr<Ring> target = m.target.lock();
    if (target != nullptr && !target->closed_) target->inflight_.complete(m.key, released);
}

void Ring::check_no_message_user_data() const {
    const SubmissionQueue& sq = core_.sq();
    for (std::uint64_t position = flushed_; position < handed_out_; ++position) {
        std::uint64_t user_data = sq.at(static_cast<std::uint32_t>(position)).user_data;
        if (messages_.count(user_data) != 0) {
            raise(PyExc_ValueError,
                  "user_data " + std::to_string(user_data) +
                      " of a prepared SQE is that of a message in flight whose target CQE is "
                      "final: their completions could not be told apart. Nothing was "
                      "submitted; change the SQE's user_data");
        }
    }
}

void Ring::forget_messages(bool drained) noexcept {
    // Undrained messages may still run: their fds stay open (and their reservations counted)
    // for the life of the process, so the kernel never reaches another ring through a reused
    // number.
    if (drained) {
        for (auto& entry : messages_) ::close(entry.second.fd);
    }
    messages_.clear();
}

}  // namespace iouring::bindings
