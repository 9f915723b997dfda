// Shared machinery of the operation families (register_ops_*.cpp). An operation is written
// once, as a function that converts Python arguments into a Prepared SQE plus its pins;
// def_op() exposes it twice: as Sqe.prep_<name>() on a handle, and as the one-call ring method
// IoUring.<name>() that takes a vacant slot and prepares it. The def_op() calls themselves are
// generated from tools/ops_spec.py (cpp/bindings/generated/ops_<family>.inc, by tools/gen_ops.py,
// which writes the stub's signatures from the same entries).
#pragma once

#include <deque>
#include <string>

#include "module.hpp"
#include "op_policy.hpp"
#include <iouring/sqe_control.hpp>

namespace iouring::bindings {

// Operations whose fd, off, ioprio, rw_flags, buf_index and splice_fd_in are plain numbers
// with no pointer or size meaning: only for these may Python change those Sqe fields between
// prep and submit (the "edit" column of op_policy.hpp).
inline bool is_plain_op(std::uint8_t opcode) { return policy_of(opcode).edit; }

// Whether the kernel, running `sqe`, gives another operation a different user_data: a poll
// update (POLL_REMOVE) with PollFlags.UPDATE_USER_DATA whose new value (off) differs from the
// old one (addr). The ring counts operations in flight by user_data, so Ring::flush reserves
// the new user_data for the renamed poll and moves its count once the update's completion
// says it succeeded (see ring_reservations.cpp).
inline bool renames_user_data(const Sqe& sqe) noexcept {
    return sqe.opcode == static_cast<std::uint8_t>(Op::POLL_REMOVE) &&
           (sqe.len & poll::UPDATE_USER_DATA) != 0 && sqe.off != sqe.addr;
}

// The errors every operation shares, added to each docstring before its closing
// "Matches io_uring_prep_<op>(3)." so that help() shows them on every method.
inline constexpr const char* kRingOpErrors =
    "Raises TypeError, ValueError or OverflowError naming the argument for bad input (the ring "
    "is left unchanged), SubmissionQueueFull when every SQE is taken, and ValueError on a "
    "closed ring.";
inline constexpr const char* kPrepErrors =
    "Raises TypeError, ValueError or OverflowError naming the argument for bad input (the SQE "
    "is left unchanged), StaleSqeError when this handle's SQE was already submitted, and "
    "ValueError on a closed ring.";

// `doc` with `errors` inserted; the text lives as long as the process (pybind11 keeps the
// pointer), in a deque so that earlier strings never move.
inline const char* with_errors(const char* doc, const char* errors) {
    static std::deque<std::string> docs;
    std::string text = doc;
    std::size_t at = text.rfind("Matches io_uring_");
    if (at == std::string::npos) {
        text += std::string(text.empty() ? "" : " ") + errors;
    } else {
        text.insert(at, std::string(errors) + " ");
    }
    docs.push_back(std::move(text));
    return docs.back().c_str();
}

// The docstring of an operation's method: the signature line `name(self, params) -> Sqe` with
// the stub's parameter types (tools/ops_spec.py), then `doc` with `errors`. pybind11's own line
// would say `object` for every py::handle parameter, so define_op() disables it for these
// methods; help() and the API docs read this one, the stub signature test compares it.
inline const char* op_doc(const char* name, const char* params, const char* doc,
                          const char* errors) {
    std::string head = std::string(name) + "(self, " + params + ") -> Sqe\n\n";
    return with_errors((head + doc).c_str(), errors);
}

// The two methods of one operation: `prepare(ring, args...)` converts the arguments into a
// Prepared SQE (through the operation's converter).
template <typename Prepare, typename... Args>
void define_op(RingClass& ring, SqeClass& sqe, const char* ring_name, const char* prep_name,
               Prepare prepare, void (* /*signature*/)(Args...), const char* params,
               const char* doc, const auto&... args) {
    py::options signatures;  // the docstrings carry theirs (op_doc)
    signatures.disable_function_signatures();
    ring.def(
        ring_name,
        // self rather than the shared_ptr holder or a Ring& (see ring_of); the holder is only
        // copied when a new handle object has to be made (sqe_handle).
        [prepare](py::handle self, Args... a) {
            Ring& r = ring_of(self);
            return sqe_handle(r, r.push(prepare(r, a...)));
        },
        args..., op_doc(ring_name, params, doc, kRingOpErrors));
    sqe.def(
        prep_name,
        [prepare](py::object self, Args... a) {
            const SqeHandle& h = self.cast<const SqeHandle&>();
            h.ring->prepare(h.position, prepare(*h.ring, a...));
            return self;
        },
        args..., op_doc(prep_name, params, doc, kPrepErrors));
}

// Exposes an operation twice: IoUring.<ring_name>() and Sqe.<prep_name>(). `make` converts
// the Python arguments; an operation whose checks need the ring's registration (fixed buffers)
// takes the ring first, and is called only on a usable ring. `params` is the parameter list as
// the stub writes it, for the docstrings' signature line (op_doc).
template <typename... Args>
void def_op(RingClass& ring, SqeClass& sqe, const char* ring_name, const char* prep_name,
            Prepared (*make)(Args...), const char* params, const char* doc, const auto&... args) {
    define_op(
        ring, sqe, ring_name, prep_name, [make](Ring&, Args... a) { return make(a...); },
        static_cast<void (*)(Args...)>(nullptr), params, doc, args...);
}
template <typename... Args>
void def_op(RingClass& ring, SqeClass& sqe, const char* ring_name, const char* prep_name,
            Prepared (*make)(const Ring&, Args...), const char* params, const char* doc,
            const auto&... args) {
    define_op(
        ring, sqe, ring_name, prep_name,
        [make](Ring& r, Args... a) {
            r.check_usable();
            return make(r, a...);
        },
        static_cast<void (*)(Args...)>(nullptr), params, doc, args...);
}

}  // namespace iouring::bindings
