// The Sqe handle: field access on one slot of the mapped SQE array, guarded against staleness.
//
// Fields the kernel dereferences or uses as a memory size (opcode, addr, len, addr3) are set
// only by the prep methods, which pin what they point at. The scalar fields can be changed
// between prep and submit, as with liburing, but only for operations whose scalar fields carry
// no pointer meaning (the "edit" column of op_policy.hpp).
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <string>

#include "convert.hpp"
#include "module.hpp"
#include "op_policy.hpp"
#include "ops.hpp"

namespace iouring::bindings {

namespace {

Sqe& plain_sqe(const SqeHandle& h, const char* field) {
    Sqe& sqe = h.sqe();
    if (!is_plain_op(sqe.opcode)) {
        raise(PyExc_ValueError, std::string("Sqe.") + field + " cannot be changed for opcode " +
                                    std::to_string(sqe.opcode) +
                                    ": the kernel may read it as a pointer or size; prepare the "
                                    "SQE again instead");
    }
    return sqe;
}

std::uint8_t checked_sqe_flags(py::handle value) {
    std::uint32_t flags = to_u32(value, "flags");
    if ((flags & ~std::uint32_t{sqe_flags::ALL}) != 0) {
        raise(PyExc_ValueError, "flags: unknown SQE flag bits " + std::to_string(flags));
    }
    return static_cast<std::uint8_t>(flags);
}

// The rules of op_policy.hpp that `changed` (the handle's SQE with one field changed) must
// keep: the limited bits of its row when a plain field changed (the prep methods check their
// own), and CQE_SKIP_SUCCESS where it can be accounted for (the chain rules are checked at
// submit, once the whole chain is prepared).
void check_policy(const SqeHandle& h, const Sqe& changed, const char* name, bool plain_field) {
    if (const Limit* limit = plain_field ? broken_limit(changed) : nullptr) {
        raise(PyExc_ValueError, std::string("Sqe.") + name + ": " + field_name(limit->field) +
                                    " of " + op_name(changed.opcode) + ": " + limit->doc);
    }
    if ((changed.flags & sqe_flags::CQE_SKIP_SUCCESS) == 0) return;
    const char* why = h.ring->skip_ring_refusal();
    if (why == nullptr) why = skip_refusal(changed);
    if (why != nullptr) {
        raise(PyExc_ValueError,
              std::string("Sqe.") + name + ": SqeFlags.CQE_SKIP_SUCCESS is refused: " + why);
    }
}

// A read/write property for a scalar field, converting with `convert` before touching the slot.
template <typename T, typename Convert>
void def_plain_field(SqeClass& cls, const char* name, T Sqe::*member, Convert convert,
                     const char* doc) {
    cls.def_property(
        name, [member](const SqeHandle& h) { return h.sqe().*member; },
        [member, convert, name](const SqeHandle& h, py::handle value) {
            T converted = convert(value, name);
            Sqe& sqe = plain_sqe(h, name);
            Sqe changed = sqe;
            changed.*member = converted;
            check_policy(h, changed, name, true);
            sqe.*member = converted;
        },
        doc);
}

// The second half of an SQE128 ring's entry, read-only from Python (see the "cmd" property).
constexpr std::size_t kCmdSize = 64;

py::bytes cmd_of(const SqeHandle& h) {
    const Sqe& sqe = h.sqe();
    if (h.ring->core().sq().sqe_size() <= sizeof(Sqe)) return py::bytes();
    return py::bytes(reinterpret_cast<const char*>(&sqe) + sizeof(Sqe), kCmdSize);
}

py::dict fields_of(const Sqe& s) {
    py::dict d;
    d["opcode"] = s.opcode;
    d["flags"] = s.flags;
    d["ioprio"] = s.ioprio;
    d["fd"] = s.fd;
    d["off"] = s.off;
    d["addr"] = s.addr;
    d["len"] = s.len;
    d["rw_flags"] = s.op_flags;
    d["user_data"] = s.user_data;
    d["buf_index"] = s.buf_index;
    d["personality"] = s.personality;
    d["splice_fd_in"] = s.splice_fd_in;
    d["addr3"] = s.addr3;
    return d;
}

}  // namespace

SqeClass register_sqe(py::module_& m) {
    SqeClass cls(m, "Sqe",
                 "A handle on one vacant SQE slot of a ring, from get_sqe() or a one-call ring "
                 "method. Valid until the slot is flushed to the kernel (flush_sq(), submit(), "
                 "submit_and_wait()); after that every use raises StaleSqeError. Every "
                 "prep_<op> method raises TypeError/ValueError/OverflowError naming the "
                 "argument before the SQE is touched.");
    cls.def_property_readonly(
           "opcode", [](const SqeHandle& h) { return h.sqe().opcode; },
           "The operation (an Op value). Set by the prep methods only.")
        .def_property(
            "flags", [](const SqeHandle& h) { return h.sqe().flags; },
            [](const SqeHandle& h, py::handle value) {
                std::uint8_t flags = checked_sqe_flags(value);
                Sqe& sqe = h.sqe();
                Sqe changed = sqe;
                changed.flags = flags;
                check_policy(h, changed, "flags", false);
                note_skip_flag(flags);
                sqe.flags = flags;
            },
            "SqeFlags of this SQE. CQE_SKIP_SUCCESS is taken on the members of a linked chain "
            "before its last one (each with IO_LINK, all with the chain's user_data; the last "
            "member without the flag): the chain then posts exactly one completion, which "
            "releases the memory of all its members. Elsewhere it raises ValueError saying why "
            "(here for the rules of this SQE alone, at submit for the rules of the chain); see "
            "the guide's section on CQE_SKIP_SUCCESS.")
        .def_property(
            "user_data", [](const SqeHandle& h) { return h.sqe().user_data; },
            [](const SqeHandle& h, py::handle value) {
                std::uint64_t user_data = to_u64(value, "user_data");
                h.sqe().user_data = user_data;
            },
            "The 64-bit value the completion carries back.")
        .def_property(
            "personality", [](const SqeHandle& h) { return h.sqe().personality; },
            [](const SqeHandle& h, py::handle value) {
                std::uint16_t personality = to_u16(value, "personality");
                h.sqe().personality = personality;
            },
            "A registered personality id (credentials) to run the operation with.")
        .def_property_readonly(
            "addr", [](const SqeHandle& h) { return h.sqe().addr; },
            "The address the kernel reads (a pinned buffer, iovec array or path). Read-only.")
        .def_property_readonly(
            "len", [](const SqeHandle& h) { return h.sqe().len; },
            "Length or count that goes with addr. Read-only.")
        .def_property_readonly(
            "addr3", [](const SqeHandle& h) { return h.sqe().addr3; }, "Read-only.")
        .def_property_readonly(
            "valid", [](const SqeHandle& h) { return !h.ring->is_stale(h.position); },
            "False once the slot was flushed or the ring closed.")
        .def_property_readonly(
            "cmd", &cmd_of,
            "The extra 64 bytes of an SQE128 ring's entry: the command area that URING_CMD "
            "passes to the file's uring_cmd handler (b'' on 64-byte-SQE rings). Read-only, and "
            "always zeros: the only URING_CMD operations iouring prepares are the socket "
            "commands, which read none of it, and bytes from Python could reach another "
            "driver's handler (NVMe passthrough reads addresses from it). Raises StaleSqeError "
            "once the SQE was submitted and ValueError on a closed ring.")
        .def(
            "fields",
            [](const SqeHandle& h) {
                py::dict d = fields_of(h.sqe());
                if (h.ring->core().sq().sqe_size() > sizeof(Sqe)) d["cmd"] = cmd_of(h);
                return d;
            },
            "All fields as a dict (a copy), for inspection and tests; on SQE128 rings also "
            "'cmd' (the extra 64 bytes). Raises StaleSqeError once the SQE was submitted and "
            "ValueError on a closed ring.")
        .def("__repr__", [](const SqeHandle& h) {
            if (h.ring->is_stale(h.position)) return std::string("<iouring.Sqe (flushed)>");
            const Sqe& s = h.sqe();
            char text[128];
            std::snprintf(text, sizeof(text), "<iouring.Sqe opcode=%u fd=%d user_data=%#llx>",
                          s.opcode, s.fd, static_cast<unsigned long long>(s.user_data));
            return std::string(text);
        });

    def_plain_field(cls, "fd", &Sqe::fd, to_fd, "The file descriptor (or fixed-file index).");
    def_plain_field(cls, "off", &Sqe::off, to_offset,
                    "File offset (-1: current position). On a poll_update with "
                    "PollFlags.UPDATE_USER_DATA it is the new user_data, which must equal the "
                    "old one (ValueError).");
    def_plain_field(cls, "ioprio", &Sqe::ioprio, to_u16, "I/O priority.");
    def_plain_field(cls, "rw_flags", &Sqe::op_flags, to_u32,
                    "The operation's flags word (RWF_*, open flags, fsync flags, ...).");
    def_plain_field(cls, "buf_index", &Sqe::buf_index, to_u16,
                    "Registered buffer index for read_fixed/write_fixed.");
    def_plain_field(cls, "splice_fd_in", &Sqe::splice_fd_in, to_i32,
                    "Input fd of splice (also file_index of direct operations).");
    return cls;
}

}  // namespace iouring::bindings
