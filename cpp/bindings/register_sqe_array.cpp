// SQE arrays: SQE_DTYPE (the kernel's 64-byte io_uring_sqe as NumPy sees it) and
// IoUring.push_sqes(), which copies SQEs that Python built with NumPy into the ring in one call.
//
// Python code cannot be trusted with raw pointers, so every SQE is validated the way the prep
// methods validate their arguments, before the first one is written:
// - only opcodes whose fields are plain numbers, or whose one pointer (addr, len) can be checked
//   against memory that this call pins (`buffer`) or against a registered buffer, are taken;
//   the others (iovec arrays, paths, timespecs, msghdrs...) are refused, because their memory
//   is reached through pointers that Python could still change after the check;
// - a field that the opcode does not use must be zero, so no future kernel can read a pointer
//   out of it;
// - SqeFlags.BUFFER_SELECT is refused, as in the batch methods, and CQE_SKIP_SUCCESS is taken
//   where the ring can account for it (see skip_refusal in op_policy.hpp; the chain rules are
//   checked at submit).
// What each opcode may do is its row of op_policy.hpp (the push and memory columns).
// The SQEs are copied out of the array first and validated in that private copy, which is what
// goes into the ring: an array changed concurrently cannot slip an unchecked value in.
#include <pybind11/numpy.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include <iouring/sqe.hpp>

#include "convert.hpp"
#include "module.hpp"
#include "op_policy.hpp"
#include "ops.hpp"
#include "pins.hpp"

namespace iouring::bindings {

namespace {

constexpr std::uint32_t kNopCqe32 = 1u << 5;  // IORING_NOP_CQE32

// The fields `s` may set: its opcode's push column, plus off and addr for a NOP with
// NopFlags.CQE32, which posts them as the completion's big_cqe (plain numbers, never
// dereferenced).
unsigned fields_of(const Sqe& s) {
    unsigned fields = policy_of(s.opcode).push;
    if (s.opcode == static_cast<std::uint8_t>(Op::NOP) && (s.op_flags & kNopCqe32) != 0) {
        return fields | field::OFF | field::ADDR;
    }
    return fields;
}

bool pushable(std::uint8_t opcode) { return policy_of(opcode).push != kNoPush; }

[[noreturn]] void refuse(std::size_t i, const std::string& why) {
    raise(PyExc_ValueError, "sqes[" + std::to_string(i) + "]: " + why);
}

void check_unused(std::size_t i, const Sqe& s, unsigned allowed) {
    struct Named {
        unsigned bit;
        const char* name;
        bool set;
    };
    const Named fields[] = {
        {field::IOPRIO, "ioprio", s.ioprio != 0},
        {field::FD, "fd", s.fd != 0},
        {field::OFF, "off", s.off != 0},
        {field::ADDR, "addr", s.addr != 0},
        {field::LEN, "len", s.len != 0},
        {field::RW_FLAGS, "rw_flags", s.op_flags != 0},
        {field::BUF_INDEX, "buf_index", s.buf_index != 0},
        {field::SPLICE_FD_IN, "splice_fd_in", s.splice_fd_in != 0},
        {~0u, "addr3", s.addr3 != 0},
        {~0u, "pad2", s.pad2 != 0},
    };
    for (const Named& f : fields) {
        bool usable = f.bit != ~0u && (allowed & f.bit) != 0;
        if (f.set && !usable) {
            refuse(i, std::string(f.name) + " must be 0 for " + op_name(s.opcode) +
                          ", which does not use it");
        }
    }
}

bool touches_buffer(const Sqe& s) {
    Memory memory = policy_of(s.opcode).memory;
    return (memory == Memory::ReadsBuffer || memory == Memory::WritesBuffer) &&
           (s.addr != 0 || s.len != 0);
}

// Prepares every reserved slot with prepare(i). Recording a pin may throw (bad_alloc): then the
// slots not yet prepared, and the one that failed, become NOPs, so the kernel never reads an
// SQE whose memory is not pinned, and the error propagates.
template <typename Prepare>
void fill_slots(SubmissionQueue& sq, std::uint64_t first, std::uint32_t count, Prepare&& prepare) {
    std::uint32_t i = 0;
    try {
        for (; i < count; ++i) prepare(i);
    } catch (...) {
        for (; i < count; ++i) prep_nop(sq.at(static_cast<std::uint32_t>(first + i)), 0);
        throw;
    }
}

std::uint32_t push_sqes(Ring& ring, py::handle sqes_arg, py::handle buffer_arg) {
    if (!py::isinstance<py::array>(sqes_arg)) {
        raise(PyExc_TypeError,
              "sqes must be a numpy array of SQE_DTYPE, not " + type_name(sqes_arg));
    }
    py::array array = py::reinterpret_borrow<py::array>(sqes_arg);
    if (!array.dtype().equal(py::dtype::of<Sqe>())) {
        raise(PyExc_TypeError,
              "sqes must have dtype SQE_DTYPE, not " + py::str(array.dtype()).cast<std::string>());
    }
    if (array.ndim() != 1) raise(PyExc_ValueError, "sqes must be a one-dimensional array");
    // Only the SQEs that can fit are looked at: a huge array (np.broadcast_to makes one out of
    // a single row) must not make the ring copy more than its SQ holds.
    auto n = std::min<std::size_t>(static_cast<std::size_t>(array.shape(0)),
                                   ring.core().sq().entries());

    // A private copy, validated and then written to the ring: nothing can change it between
    // the check and the kernel (one allocation per call, none per SQE).
    std::vector<Sqe> sqes(n);
    const char* data = static_cast<const char*>(array.data());
    py::ssize_t stride = array.strides(0);
    for (std::size_t i = 0; i < n; ++i) {
        std::memcpy(&sqes[i], data + static_cast<py::ssize_t>(i) * stride, sizeof(Sqe));
    }
    bool buffer_read = false;
    bool buffer_written = false;
    for (const Sqe& s : sqes) {
        if (!pushable(s.opcode) || !touches_buffer(s)) continue;
        buffer_read = true;
        buffer_written = buffer_written || policy_of(s.opcode).memory == Memory::WritesBuffer;
    }
    // Exporting may run Python code, so it comes before the ring's state is looked at.
    PinnedBuffer buf{nullptr, nullptr, 0};
    if (!buffer_arg.is_none()) {
        buf = pin_buffer(buffer_arg, buffer_written, "buffer");
    }
    ring.check_usable();
    const RegisteredBuffers* registered = ring.registered_buffers();

    for (std::size_t i = 0; i < n; ++i) {
        const Sqe& s = sqes[i];
        const OpPolicy& rule = policy_of(s.opcode);
        if (!pushable(s.opcode)) {
            refuse(i, "push_sqes cannot validate the pointer fields of " + op_name(s.opcode) +
                          "; prepare it with its ring method, which pins what it points at");
        }
        if ((s.flags & ~sqe_flags::ALL) != 0) {
            refuse(i, "unknown SQE flag bits " + std::to_string(s.flags));
        }
        if ((s.flags & sqe_flags::CQE_SKIP_SUCCESS) != 0) {
            // The rules of one SQE here; those of its chain at submit (Ring::flush).
            const char* why = ring.skip_ring_refusal();
            if (why == nullptr) why = skip_refusal(s);
            if (why != nullptr)
                refuse(i, std::string("SqeFlags.CQE_SKIP_SUCCESS is refused: ") + why);
            note_skip_flag(s.flags);
        }
        if ((s.flags & sqe_flags::BUFFER_SELECT) != 0) {
            refuse(i,
                   "SqeFlags.BUFFER_SELECT is refused by push_sqes; use the operation's ring "
                   "method with provided buffers");
        }
        check_unused(i, s, fields_of(s));
        if (const Limit* limit = broken_limit(s)) {
            refuse(i, std::string(field_name(limit->field)) + " of " + op_name(s.opcode) + ": " +
                          limit->doc);
        }
        std::uint64_t start = s.addr;
        std::uint64_t end = s.addr + s.len;
        if (touches_buffer(s)) {
            if (buf.pin == nullptr) {
                refuse(i,
                       "addr points at memory, but no buffer was given: pass the buffer that "
                       "addr lies in as push_sqes(sqes, buffer)");
            }
            std::uint64_t base = address_of(buf.data);
            if (start < base || end < start || end > base + buf.size) {
                refuse(i, "bytes [addr, addr + len) = [" + std::to_string(start) + ", " +
                              std::to_string(end) + ") lie outside buffer [" +
                              std::to_string(base) + ", " + std::to_string(base + buf.size) + ")");
            }
        } else if (rule.memory == Memory::Registered) {
            RangeFault fault = registered_range(registered, s.buf_index, s.addr, s.len, false);
            if (fault == RangeFault::NothingRegistered) {
                refuse(i, "buf_index: no buffers are registered with this ring");
            }
            if (fault == RangeFault::BadIndex) {
                refuse(i, "buf_index " + std::to_string(s.buf_index) + " is out of range (" +
                              std::to_string(registered->iovecs.size()) + " buffers registered)");
            }
            if (fault == RangeFault::Outside) {
                refuse(i, "bytes [addr, addr + len) = [" + std::to_string(start) + ", " +
                              std::to_string(end) + ") lie outside registered buffer " +
                              std::to_string(s.buf_index));
            }
        }
    }

    std::uint32_t prepared = 0;
    std::uint64_t first = ring.reserve_slots(static_cast<std::uint32_t>(
                                                 std::min<std::size_t>(n, 0xffffffffu)),
                                             prepared);
    SubmissionQueue& sq = ring.core().sq();
    fill_slots(sq, first, prepared, [&](std::uint32_t i) {
        sq.at(static_cast<std::uint32_t>(first + i)) = sqes[i];
        if (buffer_read && touches_buffer(sqes[i])) {
            ring.add_slot_pin(first + i, buf.pin);
        }
    });
    return prepared;
}

}  // namespace

void register_sqe_array(py::module_& m, RingClass& ring) {
    PYBIND11_NUMPY_DTYPE_EX(Sqe, opcode, "opcode", flags, "flags", ioprio, "ioprio", fd, "fd", off,
                            "off", addr, "addr", len, "len", op_flags, "rw_flags", user_data,
                            "user_data", buf_index, "buf_index", personality, "personality",
                            splice_fd_in, "splice_fd_in", addr3, "addr3", pad2, "pad2");
    m.attr("SQE_DTYPE") = py::dtype::of<Sqe>();
    ring.def("push_sqes", &push_sqes, py::arg("sqes"), py::arg("buffer") = py::none(),
             "Copies SQEs built with NumPy (a 1-D array of SQE_DTYPE, the kernel's 64-byte "
             "io_uring_sqe) into the SQ in one call and returns how many fit (SubmissionQueueFull "
             "when none does); rows beyond the SQ's size are not looked at.\n\n"
             "Every SQE that can fit is validated first, as the prep methods validate, and a "
             "refused SQE "
             "leaves the ring unchanged (ValueError/TypeError naming sqes[i]): opcodes whose "
             "pointers push_sqes cannot check are refused (readv/writev, openat, statx, "
             "timeouts, msghdrs... use their ring methods or batch methods); addr/len of READ, "
             "WRITE, SEND and RECV must lie inside `buffer`, which is pinned for those "
             "operations (writable when the kernel writes into it); addr/len of READ_FIXED and "
             "WRITE_FIXED must lie inside registered buffer buf_index; fields an opcode does not "
             "use must be 0; BUFFER_SELECT is refused. A POLL_REMOVE with "
             "PollFlags.UPDATE_USER_DATA whose off (new user_data) differs from its addr (old "
             "user_data) has the rules of poll_update(), checked at submit. A MSG_RING data "
             "message (addr 0) whose "
             "target CQE is final (no FLAGS_PASS in rw_flags, or splice_fd_in, the flags "
             "passed, without CqeFlags.MORE) has the rules of msg_ring(more=False), checked "
             "at submit. CQE_SKIP_SUCCESS follows the rules of Sqe.flags "
             "(the members of a linked chain before its last one, all with one user_data; the "
             "chain's rules are checked at submit).\n\n"
             "Accepted opcodes: NOP, READ, WRITE, READ_FIXED, WRITE_FIXED, FSYNC, CLOSE, "
             "FADVISE, FALLOCATE, SYNC_FILE_RANGE, FTRUNCATE, SHUTDOWN, SPLICE, TEE, POLL_ADD, "
             "POLL_REMOVE, ASYNC_CANCEL, SOCKET, LISTEN, SEND, RECV, MSG_RING.\n\n"
             "On SetupFlags.SQE128 rings the same 64-byte SQE_DTYPE entries are taken; the "
             "second half of each 128-byte slot (used only by URING_CMD, which push_sqes "
             "refuses) is zeroed.");
}

}  // namespace iouring::bindings
