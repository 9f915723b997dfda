// The io_uring_register(2) operations beyond files and buffers: registered ring fd,
// personalities, restrictions, io-wq tuning, synchronous cancel, clock, file allocation range,
// eventfd in async mode, sparse and updated buffer tables, buffer cloning between rings, NAPI.
// Each raises OSError with the kernel's errno (EINVAL on kernels that lack the opcode).
#include <sched.h>

#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include <iouring/sqe_control.hpp>

#include "convert.hpp"
#include "module.hpp"
#include "pins.hpp"

namespace iouring::bindings {

namespace {

int check(int ret, const char* call) {
    if (ret < 0) throw_errno(ret, call);
    return ret;
}

std::vector<std::uint32_t> to_u32_list(py::handle items, const char* name) {
    if (PyIter_Check(items.ptr()) == 0 && PySequence_Check(items.ptr()) == 0) {
        raise(PyExc_TypeError,
              std::string(name) + " must be an iterable of ints, not " + type_name(items));
    }
    std::vector<std::uint32_t> out;
    for (py::handle item : py::iter(items)) out.push_back(to_u32(item, name));
    return out;
}

void register_restrictions(Ring& r, py::handle register_ops, py::handle sqe_ops,
                           py::handle flags_allowed, py::handle flags_required) {
    std::vector<Restriction> list;
    for (std::uint32_t op : to_u32_list(register_ops, "register_ops")) {
        if (op > 255) raise(PyExc_ValueError, "register_ops values must be register opcodes");
        list.push_back(Restriction{kRestrictionRegisterOp, static_cast<std::uint8_t>(op), 0, {}});
    }
    for (std::uint32_t op : to_u32_list(sqe_ops, "sqe_ops")) {
        if (op >= static_cast<std::uint32_t>(Op::LAST)) {
            raise(PyExc_ValueError, "sqe_ops values must be Op members");
        }
        list.push_back(Restriction{kRestrictionSqeOp, static_cast<std::uint8_t>(op), 0, {}});
    }
    std::uint32_t allowed = to_u32(flags_allowed, "sqe_flags_allowed");
    std::uint32_t required = to_u32(flags_required, "sqe_flags_required");
    if (((allowed | required) & ~std::uint32_t{sqe_flags::ALL}) != 0) {
        raise(PyExc_ValueError, "sqe_flags_allowed/sqe_flags_required: unknown SQE flag bits");
    }
    list.push_back(
        Restriction{kRestrictionSqeFlagsAllowed, static_cast<std::uint8_t>(allowed), 0, {}});
    if (required != 0) {
        list.push_back(
            Restriction{kRestrictionSqeFlagsRequired, static_cast<std::uint8_t>(required), 0, {}});
    }
    r.check_usable();
    check(r.core().register_op(RegisterOp::REGISTER_RESTRICTIONS, list.data(),
                               static_cast<unsigned>(list.size())),
          "register_restrictions");
}

void register_iowq_aff(Ring& r, py::handle cpus) {
    cpu_set_t set;
    CPU_ZERO(&set);
    for (std::uint32_t cpu : to_u32_list(cpus, "cpus")) {
        if (cpu >= CPU_SETSIZE) raise(PyExc_ValueError, "cpus values must be below CPU_SETSIZE");
        CPU_SET(cpu, &set);
    }
    r.check_usable();
    check(r.core().register_op(RegisterOp::REGISTER_IOWQ_AFF, &set, sizeof(set)),
          "register_iowq_aff");
}

py::tuple register_iowq_max_workers(Ring& r, py::handle bounded, py::handle unbounded) {
    std::uint32_t values[2] = {to_u32(bounded, "bounded"), to_u32(unbounded, "unbounded")};
    r.check_usable();
    check(r.core().register_op(RegisterOp::REGISTER_IOWQ_MAX_WORKERS, values, 2),
          "register_iowq_max_workers");
    return py::make_tuple(values[0], values[1]);
}

// IORING_REGISTER_SYNC_CANCEL blocks until the matched requests are cancelled: GIL released.
int register_sync_cancel(Ring& r, py::handle user_data, py::handle fd, py::handle op, bool any,
                         bool all, bool fixed_fd, py::handle timeout) {
    SyncCancelReg reg{};
    reg.fd = -1;
    reg.timeout = KernelTimespec{-1, -1};
    if (!user_data.is_none()) {
        reg.addr = to_u64(user_data, "user_data");
        reg.flags |= cancel::USERDATA;
    }
    if (!fd.is_none()) {
        reg.fd = to_fd(fd, "fd");
        reg.flags |= cancel::FD | (fixed_fd ? cancel::FD_FIXED : 0);
    }
    if (!op.is_none()) {
        std::uint32_t opcode = to_u32(op, "op");
        if (opcode >= static_cast<std::uint32_t>(Op::LAST))
            raise(PyExc_ValueError, "op must be an Op");
        reg.opcode = static_cast<std::uint8_t>(opcode);
        reg.flags |= cancel::OP;
    }
    if (any) reg.flags |= cancel::ANY;
    if (all) reg.flags |= cancel::ALL;
    if ((reg.flags & (cancel::USERDATA | cancel::FD | cancel::OP | cancel::ANY)) == 0) {
        raise(PyExc_ValueError, "register_sync_cancel needs user_data, fd, op or any=True");
    }
    if (!timeout.is_none()) reg.timeout = to_timespec(timeout, "timeout");
    r.check_usable();
    int ret;
    {
        py::gil_scoped_release nogil;
        ret = r.core().register_op(RegisterOp::REGISTER_SYNC_CANCEL, &reg, 1);
    }
    if (ret == -ETIME) raise(PyExc_TimeoutError, "register_sync_cancel: timeout expired");
    return check(ret, "register_sync_cancel");
}

void resize_rings(Ring& r, py::handle sq_entries, py::handle cq_entries) {
    r.check_usable();
    std::int64_t sq = sq_entries.is_none() ? std::int64_t{r.core().sq().entries()}
                                           : to_i64(sq_entries, "sq_entries", 0, INT64_MAX);
    if (sq < 1 || sq > kMaxEntries || !is_power_of_two(static_cast<unsigned>(sq))) {
        raise(PyExc_ValueError, "sq_entries must be a power of two in 1.." +
                                    std::to_string(kMaxEntries) + ", got " + std::to_string(sq));
    }
    std::uint32_t cq = 0;  // the kernel's default: twice sq_entries
    if (!cq_entries.is_none()) {
        cq = to_u32(cq_entries, "cq_entries");
        if (cq < sq || cq > 2 * kMaxEntries) {
            raise(PyExc_ValueError, "cq_entries must be in sq_entries.." +
                                        std::to_string(2 * kMaxEntries) + ", got " +
                                        std::to_string(cq));
        }
    }
    r.resize(static_cast<unsigned>(sq), cq);
}

void register_buffers_sparse(Ring& r, py::handle count) {
    std::uint32_t n = to_u32(count, "count");
    r.check_usable();
    r.check_not_unregistering(Ring::TagTable::buffers, "register_buffers_sparse");
    RsrcRegister reg{};
    reg.nr = n;
    reg.flags = kRsrcRegisterSparse;
    check(r.core().register_op(RegisterOp::REGISTER_BUFFERS2, &reg, sizeof(reg)),
          "register_buffers_sparse");
    auto table = std::make_shared<RegisteredBuffers>();
    table->exports.resize(n);
    table->iovecs.resize(n, Iovec{0, 0});
    r.replace_registered_buffers(std::move(table));
}

int register_buffers_update(Ring& r, py::handle offset, py::handle buffers, py::handle tags_arg) {
    std::uint32_t first = to_u32(offset, "offset");
    if (PyIter_Check(buffers.ptr()) == 0 && PySequence_Check(buffers.ptr()) == 0) {
        raise(PyExc_TypeError, "buffers must be an iterable of writable buffers");
    }
    std::vector<std::shared_ptr<BufferExport>> exports;
    std::vector<Iovec> iovecs;
    for (py::handle item : py::iter(buffers)) {
        auto view = std::make_shared<BufferExport>();
        view->acquire(item, true, "buffers");
        iovecs.push_back(Iovec{reinterpret_cast<std::uintptr_t>(view->data()), view->size()});
        exports.push_back(std::move(view));
    }
    std::vector<std::uint64_t> tags = to_tags(r, tags_arg, exports.size(), Ring::TagTable::buffers);
    r.check_usable();
    r.check_not_unregistering(Ring::TagTable::buffers, "register_buffers_update");
    const RegisteredBuffers* current = r.registered_buffers();
    if (current == nullptr || first + iovecs.size() > current->iovecs.size()) {
        raise(PyExc_ValueError, "offset: the update must fit inside the registered buffer table");
    }
    // The kernel applies an update in order and stops at the first buffer it refuses (an empty
    // one, a file-backed mapping), returning how many it applied, or the error when it applied
    // none. The table must then hold exactly what the kernel holds: the buffers it applied, and
    // the old exports of every slot it did not reach.
    const auto n = static_cast<std::uint32_t>(iovecs.size());
    std::uint32_t done = 0;
    int error = 0;
    while (done < n) {
        RsrcUpdate2 update{};
        update.offset = first + done;
        update.data = address_of(iovecs.data() + done);
        update.nr = n - done;
        if (!tags.empty()) update.tags = address_of(tags.data() + done);
        int ret = r.core().register_op(RegisterOp::REGISTER_BUFFERS_UPDATE, &update,
                                       sizeof(update));
        if (ret <= 0) {  // asking again for the rest reports why the kernel stopped
            error = ret < 0 ? ret : -EINVAL;
            break;
        }
        done += std::min(static_cast<std::uint32_t>(ret), n - done);
    }
    if (done > 0) {
        PinList pins(exports.begin(), exports.begin() + done);
        r.add_live_tags(tags, done, {}, &pins,
                        Ring::TagTable::buffers);  // before the exports move into the table
        auto table = std::make_shared<RegisteredBuffers>(*current);
        for (std::uint32_t i = 0; i < done; ++i) {
            table->iovecs[first + i] = iovecs[i];
            table->exports[first + i] = std::move(exports[i]);
        }
        r.replace_registered_buffers(std::move(table));
    }
    if (error != 0) {
        std::string call = "register_buffers_update: buffers[" + std::to_string(done) +
                           "] was refused (" + std::to_string(done) + " of " + std::to_string(n) +
                           " slots were updated)";
        throw_errno(error, call.c_str());
    }
    return static_cast<int>(done);
}

// The clone shares memory with `source`'s table, so the new table holds the same exports.
void clone_buffers(Ring& r, Ring& source, py::handle src_offset, py::handle dst_offset,
                   py::handle count, bool replace) {
    std::uint32_t src_off = to_u32(src_offset, "src_offset");
    std::uint32_t dst_off = to_u32(dst_offset, "dst_offset");
    // Converted before the tables are looked at: __index__ may close either ring or replace
    // the source's table (which `src` would then point into).
    std::optional<std::uint32_t> count_value;
    if (!count.is_none()) count_value = to_u32(count, "count");
    source.check_usable();
    r.check_usable();
    r.check_not_unregistering(Ring::TagTable::buffers, "clone_buffers");
    source.check_not_unregistering(Ring::TagTable::buffers, "clone_buffers (source)");
    const RegisteredBuffers* src = source.registered_buffers();
    if (src == nullptr) raise(PyExc_ValueError, "source has no registered buffers");
    std::uint32_t nr = count_value ? *count_value
                                   : static_cast<std::uint32_t>(src->iovecs.size()) - src_off;
    if (src_off > src->iovecs.size() || nr > src->iovecs.size() - src_off) {
        raise(PyExc_ValueError, "src_offset/count exceed the source's buffer table");
    }
    CloneBuffers clone{};
    clone.src_fd = static_cast<std::uint32_t>(source.core().fd());
    clone.flags = replace ? kCloneBuffersReplace : 0;
    clone.src_off = src_off;
    clone.dst_off = dst_off;
    clone.nr = nr;
    check(r.core().register_op(RegisterOp::REGISTER_CLONE_BUFFERS, &clone, 1), "clone_buffers");
    auto table = r.registered_buffers() != nullptr
                     ? std::make_shared<RegisteredBuffers>(*r.registered_buffers())
                     : std::make_shared<RegisteredBuffers>();
    if (table->iovecs.size() < dst_off + nr) {
        table->iovecs.resize(dst_off + nr, Iovec{0, 0});
        table->exports.resize(dst_off + nr);
    }
    for (std::uint32_t i = 0; i < nr; ++i) {
        table->iovecs[dst_off + i] = src->iovecs[src_off + i];
        table->exports[dst_off + i] = src->exports[src_off + i];
    }
    r.replace_registered_buffers(std::move(table));
}

// IORING_REGISTER_QUERY with fd -1 (no ring needed).
py::dict query_opcodes() {
    QueryOpcode data{};
    QueryHdr hdr{};
    hdr.query_data = address_of(&data);
    hdr.query_op = kQueryOpcodes;
    hdr.size = sizeof(data);
    int ret = sys::io_uring_register(-1, RegisterOp::REGISTER_QUERY, &hdr, 0);
    if (ret == -EINVAL || ret == -EBADF) {
        raise(PyExc_NotImplementedError,
              "IoUring.query() needs IORING_REGISTER_QUERY (Linux 6.18 or newer)");
    }
    check(ret, "query (IORING_REGISTER_QUERY)");
    if (hdr.result < 0) throw_errno(hdr.result, "query (IO_URING_QUERY_OPCODES)");
    py::dict out;
    out["nr_request_opcodes"] = data.nr_request_opcodes;
    out["nr_register_opcodes"] = data.nr_register_opcodes;
    out["feature_flags"] = data.feature_flags;
    out["ring_setup_flags"] = data.ring_setup_flags;
    out["enter_flags"] = data.enter_flags;
    out["sqe_flags"] = data.sqe_flags;
    // Kernels whose struct is shorter than ours filled less (hdr.size says how much).
    out["nr_query_opcodes"] = hdr.size >= offsetof(QueryOpcode, pad)
                                  ? py::int_(data.nr_query_opcodes)
                                  : py::int_(0);
    return out;
}

// IORING_REGISTER_SEND_MSG_RING with fd -1: a msg_ring data message without a ring of ours.
void send_msg_ring(py::handle target, py::handle data, py::handle len, py::handle cqe_flags) {
    std::int32_t fd = -1;
    if (PyObject_TypeCheck(target.ptr(), ring_type()) != 0) {
        const Ring& ring = ring_of(target);
        ring.check_usable();  // ValueError on a closed ring
        fd = ring.core().fd();
    } else {
        fd = to_fd(target, "target");
        if (fd < 0) raise(PyExc_ValueError, "target must be an IoUring or a ring fd (>= 0)");
    }
    std::uint64_t value = to_u64(data, "data");
    std::int64_t res = to_i64(len, "len", INT32_MIN, UINT32_MAX);
    std::uint32_t flags = to_u32(cqe_flags, "cqe_flags");
    if ((flags & (cqe_flags::SKIP | cqe_flags::F_32)) != 0) {
        raise(PyExc_ValueError,
              "cqe_flags: CqeFlags.SKIP and CqeFlags.F_32 are refused (they change how the "
              "target ring's CQ is read)");
    }
    Sqe sqe{};
    // Flagged MORE like every msg_ring of ours: a CQE without it would count, in the target
    // ring, as the final completion of an operation with that user_data (see
    // register_ops_control.cpp).
    prep_msg_ring_cqe_flags(sqe, 0, fd, static_cast<std::uint32_t>(res), value, 0,
                            flags | cqe_flags::MORE);
    int ret = sys::io_uring_register(-1, RegisterOp::REGISTER_SEND_MSG_RING, &sqe, 1);
    if (ret == -EINVAL && fd >= 0) {
        throw_errno(ret,
                    "send_msg_ring (IORING_REGISTER_SEND_MSG_RING, Linux 6.13+; EINVAL also "
                    "when target is not an io_uring)");
    }
    check(ret, "send_msg_ring (IORING_REGISTER_SEND_MSG_RING)");
}

// napi_add_id/napi_del_id: one IORING_REGISTER_NAPI call with a static-tracking opcode.
void napi_static_id(Ring& r, py::handle napi_id, std::uint8_t opcode, const char* what) {
    Napi napi{};
    napi.opcode = opcode;
    napi.op_param = to_u32(napi_id, "napi_id");
    r.check_usable();  // after the conversion, which may run Python code
    check(r.core().register_op(RegisterOp::REGISTER_NAPI, &napi, 1), what);
}

}  // namespace

void register_registration(py::module_& /*m*/, RingClass& cls) {
    cls.def(
        "register_wait_region",
        [](Ring& r, py::handle pages) { r.register_wait_region(to_u32(pages, "pages")); },
        py::arg("pages") = 1,
        "Registers `pages` pages (1..16) of memory the ring owns as registered wait arguments "
        "(IORING_REGISTER_MEM_REGION with IORING_MEM_REGION_REG_WAIT_ARG, Linux 6.13+): every "
        "later wait with a timeout, deadline, min_wait or sigmask passes them through a slot "
        "of the region (IORING_ENTER_EXT_ARG_REG) instead of copying an argument struct in; "
        "waits behave the same. One slot per waiting thread (64 per 4 KiB page); beyond that "
        "a wait uses the plain EXT_ARG. The memory lives until the ring is closed. The kernel "
        "only takes it on a ring set up with SetupFlags.R_DISABLED, before enable_rings(): "
        "ValueError otherwise (and for bad pages, or a second region); OSError from the "
        "kernel.");
    cls.def_property_readonly(
        "wait_region_slots",
        [](const Ring& r) {
            r.check_usable();
            return r.wait_region_slots();
        },
        "The slots of the registered wait region (0: none). Raises ValueError on a closed ring.");
    cls.def_property_readonly(
        "wait_region_waits",
        [](const Ring& r) {
            r.check_usable();
            return r.wait_region_waits();
        },
        "How many waits went through the registered wait region. Raises ValueError on a "
        "closed ring.");
    cls.def_static("query", &query_opcodes,
                   "What the running kernel's io_uring supports (IORING_REGISTER_QUERY, "
                   "IO_URING_QUERY_OPCODES; no ring needed): a dict with nr_request_opcodes "
                   "and nr_register_opcodes (how many IORING_OP_* and IORING_REGISTER_* "
                   "opcodes it knows), the feature_flags, ring_setup_flags, enter_flags and "
                   "sqe_flags bitmasks it accepts, and nr_query_opcodes. Raises "
                   "NotImplementedError before Linux 6.18, OSError from the kernel.");
    cls.def_static("send_msg_ring", &send_msg_ring, py::arg("target"), py::arg("data"),
                   py::arg("len") = 0, py::kw_only(), py::arg("cqe_flags") = 0,
                   "Posts a CQE {user_data: data, res: len, flags: cqe_flags | CqeFlags.MORE} to "
                   "the ring `target` (an IoUring or a ring fd) without a ring of ours "
                   "(IORING_REGISTER_SEND_MSG_RING, Linux 6.13+), synchronously. MORE is always "
                   "set: a CQE without it would count in the target as the final completion "
                   "of an operation with that user_data (msg_ring(more=False) sends one to a "
                   "ring of this process, reserving that user_data there). Raises "
                   "TypeError/ValueError/OverflowError naming the argument (cqe_flags SKIP or "
                   "F_32 are refused), OSError from the kernel (EINVAL: older kernel or not a "
                   "ring; EBADFD: the target is disabled).");
    cls.def(
           "register_ring_fd",
           [](Ring& r) {
               r.check_usable();
               return check(r.core().register_ring_fd(), "register_ring_fd");
           },
           "Registers the ring fd with the calling thread's io_uring context, so enters from "
           "this thread skip the fd lookup (IORING_ENTER_REGISTERED_RING); other threads keep "
           "using the fd. Returns the registered index. A thread has 16 slots (EBUSY when they "
           "are taken); close() frees this ring's slot when it runs on the registering thread, "
           "otherwise the slot and the ring itself stay taken until that thread exits, so "
           "unregister first when another thread will close the ring. Raises the OSError subclass "
           "of the kernel's errno (EINVAL where this kernel lacks the operation) and ValueError on "
           "a closed ring.")
        .def(
            "unregister_ring_fd",
            [](Ring& r) {
                r.check_usable();
                check(r.core().unregister_ring_fd(), "unregister_ring_fd");
            },
            "Undoes register_ring_fd(); must run on the registering thread (else EPERM). Raises "
            "the OSError subclass of the kernel's errno (EINVAL where this kernel lacks the "
            "operation) and ValueError on a closed ring.")
        .def_property_readonly(
            "ring_fd_registered",
            [](const Ring& r) {
                r.check_usable();
                return r.core().ring_fd_registered();
            },
            "True while register_ring_fd() is in effect. Raises ValueError on a closed ring.")
        .def(
            "register_personality",
            [](Ring& r) {
                r.check_usable();
                return check(r.core().register_op(RegisterOp::REGISTER_PERSONALITY, nullptr, 0),
                             "register_personality");
            },
            "Registers the current credentials; returns an id for Sqe.personality. Raises the "
            "OSError subclass of the kernel's errno (EINVAL where this kernel lacks the operation) "
            "and ValueError on a closed ring.")
        .def(
            "unregister_personality",
            [](Ring& r, py::handle id) {
                unsigned personality = to_u16(id, "id");
                r.check_usable();
                check(r.core().register_op(RegisterOp::UNREGISTER_PERSONALITY, nullptr,
                                           personality),
                      "unregister_personality");
            },
            py::arg("id"),
            "Forgets a personality id from register_personality(). Raises OSError (EINVAL: "
            "no such id).")
        .def("register_restrictions", &register_restrictions, py::kw_only(),
             py::arg("register_ops") = py::tuple(), py::arg("sqe_ops") = py::tuple(),
             py::arg("sqe_flags_allowed") = 0, py::arg("sqe_flags_required") = 0,
             "Restricts a ring created with SetupFlags.R_DISABLED to the given register "
             "opcodes, SQE opcodes and SQE flags; then call enable_rings(). Raises the OSError "
             "subclass of the kernel's errno (EINVAL where this kernel lacks the operation) and "
             "ValueError on a closed ring.")
        .def("register_iowq_aff", &register_iowq_aff, py::arg("cpus"),
             "Pins the ring's io-wq worker threads to the given CPUs. Raises the OSError subclass "
             "of the kernel's errno (EINVAL where this kernel lacks the operation) and ValueError "
             "on a closed ring.")
        .def(
            "unregister_iowq_aff",
            [](Ring& r) {
                r.check_usable();
                check(r.core().register_op(RegisterOp::UNREGISTER_IOWQ_AFF, nullptr, 0),
                      "unregister_iowq_aff");
            },
            "Lets io-wq workers run on any CPU again (undoes register_iowq_aff). Raises "
            "OSError.")
        .def("register_iowq_max_workers", &register_iowq_max_workers, py::arg("bounded") = 0,
             py::arg("unbounded") = 0,
             "Sets the maximum io-wq workers (0 leaves a limit unchanged); returns the previous "
             "(bounded, unbounded) limits. Raises the OSError subclass of the kernel's errno "
             "(EINVAL where this kernel lacks the operation) and ValueError on a closed ring.")
        .def("register_sync_cancel", &register_sync_cancel, py::kw_only(),
             py::arg("user_data") = py::none(), py::arg("fd") = py::none(),
             py::arg("op") = py::none(), py::arg("any") = false, py::arg("all") = false,
             py::arg("fixed_fd") = false, py::arg("timeout") = py::none(),
             "Cancels matching requests and waits until they are cancelled (GIL released); "
             "their completions still arrive in the CQ. Returns the count (with all=True) or "
             "0; raises FileNotFoundError (ENOENT) when nothing matched, TimeoutError on "
             "timeout.")
        .def(
            "register_clock",
            [](Ring& r, py::handle clockid) {
                ClockRegister reg{};
                reg.clockid = to_u32(clockid, "clockid");
                r.check_usable();
                check(r.core().register_op(RegisterOp::REGISTER_CLOCK, &reg, 0), "register_clock");
                r.set_wait_clock(static_cast<int>(reg.clockid));  // deadline= is on this clock
            },
            py::arg("clockid"),
            "Selects the clock of wait timeouts and of the deadline= of waits: "
            "time.CLOCK_MONOTONIC or time.CLOCK_BOOTTIME. "
            "Raises the OSError subclass of the kernel's errno (EINVAL where this kernel lacks the "
            "operation) and ValueError on a closed ring.")
        .def(
            "register_file_alloc_range",
            [](Ring& r, py::handle offset, py::handle length) {
                FileIndexRange range{};
                range.off = to_u32(offset, "offset");
                range.len = to_u32(length, "length");
                r.check_usable();
                check(r.core().register_op(RegisterOp::REGISTER_FILE_ALLOC_RANGE, &range, 0),
                      "register_file_alloc_range");
            },
            py::arg("offset"), py::arg("length"),
            "Limits the fixed-file slots that FILE_INDEX_ALLOC may pick. Raises the OSError "
            "subclass of the kernel's errno (EINVAL where this kernel lacks the operation) and "
            "ValueError on a closed ring.")
        .def(
            "register_eventfd_async",
            [](Ring& r, py::handle fd) {
                int efd = to_fd(fd, "fd");
                r.check_usable();
                check(r.core().register_op(RegisterOp::REGISTER_EVENTFD_ASYNC, &efd, 1),
                      "register_eventfd_async");
            },
            py::arg("fd"),
            "Like register_eventfd, but only signalled for completions posted asynchronously: "
            "not for those completed inline during submit (do not rely on it to wake a loop). "
            "Raises the OSError subclass of the kernel's errno (EINVAL where this kernel lacks the "
            "operation) and ValueError on a closed ring.")
        .def("resize", &resize_rings, py::kw_only(), py::arg("sq_entries") = py::none(),
             py::arg("cq_entries") = py::none(),
             "Resizes the rings (IORING_REGISTER_RESIZE_RINGS, Linux 6.13+; the kernel only "
             "resizes rings set up with SetupFlags.DEFER_TASKRUN). sq_entries (a power of two "
             "in 1..32768) defaults to the current size, cq_entries (sq_entries..65536, rounded "
             "up to a power of two by the kernel) to twice sq_entries. Operations in flight are "
             "unaffected and completions not yet reaped move to the new CQ; sq_entries and "
             "cq_entries report the new sizes. Raises ValueError for bad sizes or while SQEs "
             "are prepared but not submitted (submit() first; their handles would go stale), "
             "OSError from the kernel: EINVAL (older kernel, or no DEFER_TASKRUN), EOVERFLOW "
             "(the new CQ cannot hold the completions not yet reaped).")
        .def("register_buffers_sparse", &register_buffers_sparse, py::arg("count"),
             "Registers an empty table of `count` buffer slots, filled by "
             "register_buffers_update(). Raises the OSError subclass of the kernel's errno (EINVAL "
             "where this kernel lacks the operation) and ValueError on a closed ring.")
        .def("register_buffers_update", &register_buffers_update, py::arg("offset"),
             py::arg("buffers"), py::kw_only(), py::arg("tags") = py::none(),
             "Replaces registered buffers from slot `offset`; returns the number replaced. "
             "With tags (one u64 per buffer, 0 for none), the new buffers are tagged as "
             "register_buffers() describes: each stays exported until the kernel's tag CQE. "
             "In-flight fixed operations keep the buffers they were flushed with alive. The "
             "kernel stops at the first buffer it refuses (empty, or a file-backed mmap): the "
             "slots before it are replaced, the others keep their buffers, and the OSError "
             "subclass of the kernel's errno names buffers[i]. Raises that OSError too where "
             "this kernel lacks the operation (EINVAL), and ValueError on a closed ring.")
        .def("clone_buffers", &clone_buffers, py::arg("source"), py::kw_only(),
             py::arg("src_offset") = 0, py::arg("dst_offset") = 0, py::arg("count") = py::none(),
             py::arg("replace") = false,
             "Registers (a range of) `source`'s registered buffers in this ring too "
             "(IORING_REGISTER_CLONE_BUFFERS, Linux 6.12); both rings keep the memory alive. "
             "Raises the OSError subclass of the kernel's errno (EINVAL where this kernel lacks "
             "the operation) and ValueError on a closed ring.")
        .def(
            "register_napi",
            [](Ring& r, py::handle busy_poll_us, bool prefer_busy_poll, bool static_tracking) {
                Napi napi{};
                napi.busy_poll_to = to_u32(busy_poll_us, "busy_poll_us");
                napi.prefer_busy_poll = prefer_busy_poll ? 1 : 0;
                napi.opcode = kNapiRegisterOp;
                napi.op_param = static_tracking ? kNapiTrackingStatic : kNapiTrackingDynamic;
                r.check_usable();
                check(r.core().register_op(RegisterOp::REGISTER_NAPI, &napi, 1),
                      static_tracking
                          ? "register_napi (static tracking: IO_URING_NAPI_TRACKING_STATIC, "
                            "Linux 6.13+)"
                          : "register_napi");
            },
            py::arg("busy_poll_us"), py::arg("prefer_busy_poll") = false, py::kw_only(),
            py::arg("static_tracking") = false,
            "Enables NAPI busy polling of the sockets the ring uses. With static_tracking=True "
            "(Linux 6.13+) the ring polls only the NAPI ids given to napi_add_id(), instead of "
            "tracking those of the sockets it sees. Raises the OSError subclass of the kernel's "
            "errno (EINVAL where this kernel lacks the operation or the mode) and ValueError on "
            "a closed ring.")
        .def(
            "napi_add_id",
            [](Ring& r, py::handle napi_id) {
                napi_static_id(r, napi_id, kNapiStaticAddId,
                               "napi_add_id (IO_URING_NAPI_STATIC_ADD_ID)");
            },
            py::arg("napi_id"),
            "Adds a NAPI id (socket.SO_INCOMING_NAPI_ID of a socket) to poll, after "
            "register_napi(..., static_tracking=True) (Linux 6.13+). Raises TypeError/"
            "OverflowError naming napi_id, OSError from the kernel (EINVAL: not static "
            "tracking, or an id below the valid range; EEXIST: already added) and ValueError on "
            "a closed ring.")
        .def(
            "napi_del_id",
            [](Ring& r, py::handle napi_id) {
                napi_static_id(r, napi_id, kNapiStaticDelId,
                               "napi_del_id (IO_URING_NAPI_STATIC_DEL_ID)");
            },
            py::arg("napi_id"),
            "Removes a NAPI id added by napi_add_id(). Raises TypeError/OverflowError naming "
            "napi_id, OSError from the kernel (ENOENT: not added; EINVAL: not static tracking) "
            "and ValueError on a closed ring.")
        .def(
            "unregister_napi",
            [](Ring& r) {
                Napi napi{};
                r.check_usable();
                check(r.core().register_op(RegisterOp::UNREGISTER_NAPI, &napi, 1),
                      "unregister_napi");
            },
            "Turns NAPI busy polling off (undoes register_napi). Raises OSError (EINVAL on "
            "kernels without NAPI support).");
}

}  // namespace iouring::bindings
