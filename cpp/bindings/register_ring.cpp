// The IoUring class: construction with validated setup options, the ring methods of the
// reference binding, registration, completions as NumPy arrays.
#include <pybind11/numpy.h>

#include <string>
#include <vector>

#include "convert.hpp"
#include "module.hpp"
#include "pins.hpp"

namespace iouring::bindings {

namespace {

struct RefusedFlag {
    std::uint32_t bit;
    const char* message;
};

constexpr RefusedFlag kRefusedFlags[] = {
    {setup::SQE128, "SetupFlags.SQE128 (128-byte SQEs) is not supported yet"},
    {setup::CQE32, "SetupFlags.CQE32 (32-byte CQEs) is not supported yet"},
    {setup::NO_MMAP, "SetupFlags.NO_MMAP (caller-provided ring memory) is not supported"},
    {setup::REGISTERED_FD_ONLY, "SetupFlags.REGISTERED_FD_ONLY is not supported"},
    {setup::CQE_MIXED, "SetupFlags.CQE_MIXED (mixed CQE sizes) is not supported yet"},
    {setup::SQE_MIXED, "SetupFlags.SQE_MIXED (mixed SQE sizes) is not supported yet"},
    {setup::SQ_REWIND, "SetupFlags.SQ_REWIND is not supported"},
};

unsigned checked_entries(py::handle value) {
    std::int64_t entries = to_i64(value, "entries", INT64_MIN, INT64_MAX);
    if (entries == 0) throw EntriesZero("entries must not be zero");
    if (entries < 0 || entries > kMaxEntries) {
        raise(PyExc_ValueError, "entries must be a power of two in 1.." +
                                    std::to_string(kMaxEntries) + ", got " +
                                    std::to_string(entries));
    }
    if (!is_power_of_two(static_cast<unsigned>(entries))) {
        throw EntriesNotPowerOfTwo("entries must be a power of two, got " +
                                   std::to_string(entries));
    }
    return static_cast<unsigned>(entries);
}

SetupOptions checked_options(unsigned entries, py::handle flags, py::handle sq_thread_idle,
                             py::handle sq_thread_cpu, py::handle cq_entries, py::handle wq_fd) {
    SetupOptions o;
    o.flags = to_u32(flags, "flags");
    for (const RefusedFlag& refused : kRefusedFlags) {
        if ((o.flags & refused.bit) != 0)
            raise(PyExc_ValueError, std::string("flags: ") + refused.message);
    }
    if ((o.flags & ~kSupportedSetupFlags) != 0) {
        raise(PyExc_ValueError,
              "flags: unknown setup flag bits " + std::to_string(o.flags & ~kSupportedSetupFlags));
    }
    o.sq_thread_idle = to_u32(sq_thread_idle, "sq_thread_idle");
    if (!sq_thread_cpu.is_none()) {
        o.sq_thread_cpu = to_u32(sq_thread_cpu, "sq_thread_cpu");
        o.flags |= setup::SQ_AFF;
    }
    if (!cq_entries.is_none()) {
        o.cq_entries = to_u32(cq_entries, "cq_entries");
        if (o.cq_entries < entries || o.cq_entries > 2 * kMaxEntries) {
            raise(PyExc_ValueError, "cq_entries must be in entries.." +
                                        std::to_string(2 * kMaxEntries) + ", got " +
                                        std::to_string(o.cq_entries));
        }
        o.flags |= setup::CQSIZE;
    }
    if (!wq_fd.is_none()) {
        o.wq_fd = static_cast<std::uint32_t>(to_fd(wq_fd, "wq_fd"));
        o.flags |= setup::ATTACH_WQ;
    }
    if ((o.flags & setup::SQ_AFF) != 0 && (o.flags & setup::SQPOLL) == 0) {
        raise(PyExc_ValueError, "sq_thread_cpu (SetupFlags.SQ_AFF) needs SetupFlags.SQPOLL");
    }
    if ((o.flags & setup::SQ_AFF) != 0 && sq_thread_cpu.is_none()) {
        raise(PyExc_ValueError, "SetupFlags.SQ_AFF needs sq_thread_cpu");
    }
    if ((o.flags & setup::CQSIZE) != 0 && cq_entries.is_none()) {
        raise(PyExc_ValueError, "SetupFlags.CQSIZE needs cq_entries");
    }
    if ((o.flags & setup::ATTACH_WQ) != 0 && wq_fd.is_none()) {
        raise(PyExc_ValueError, "SetupFlags.ATTACH_WQ needs wq_fd");
    }
    if ((o.flags & setup::DEFER_TASKRUN) != 0 && (o.flags & setup::SINGLE_ISSUER) == 0) {
        raise(PyExc_ValueError, "SetupFlags.DEFER_TASKRUN needs SetupFlags.SINGLE_ISSUER");
    }
    return o;
}

std::vector<std::int32_t> to_fd_list(py::handle fds, const char* name) {
    if (PyIter_Check(fds.ptr()) == 0 && PySequence_Check(fds.ptr()) == 0) {
        raise(PyExc_TypeError, std::string(name) +
                                   " must be an iterable of file descriptors, not " +
                                   type_name(fds));
    }
    std::vector<std::int32_t> out;
    for (py::handle fd : py::iter(fds)) out.push_back(to_fd(fd, name));
    return out;
}

py::object enum_value(const char* enum_name, std::uint32_t value) {
    return py::module_::import("iouring._core").attr(enum_name)(value);
}

py::array checked_cqe_array(py::handle out) {
    if (!py::isinstance<py::array>(out)) {
        raise(PyExc_TypeError, "out must be a numpy array of CQE_DTYPE, not " + type_name(out));
    }
    py::array array = py::reinterpret_borrow<py::array>(out);
    if (!array.dtype().equal(py::dtype::of<Cqe>())) {
        raise(PyExc_TypeError,
              "out must have dtype CQE_DTYPE, not " + py::str(array.dtype()).cast<std::string>());
    }
    if (array.ndim() != 1 || (array.flags() & py::array::c_style) == 0) {
        raise(PyExc_ValueError, "out must be a one-dimensional C-contiguous array");
    }
    if (!array.writeable()) raise(PyExc_ValueError, "out must be writable");
    return array;
}

void check_ok(int ret, const char* call) {
    if (ret < 0) throw_errno(ret, call);
}

}  // namespace

RingClass register_ring(py::module_& m) {
    RingClass cls(m, "IoUring",
                  "An io_uring instance: the fd, the mapped queues, and the pins that keep the "
                  "memory of operations in flight alive. Use as a context manager or close().");
    cls.def(py::init([](py::handle entries, py::handle flags, py::handle sq_thread_idle,
                        py::handle sq_thread_cpu, py::handle cq_entries, py::handle wq_fd) {
                unsigned n = checked_entries(entries);
                SetupOptions options = checked_options(n, flags, sq_thread_idle, sq_thread_cpu,
                                                       cq_entries, wq_fd);
                return std::make_shared<Ring>(n, options);
            }),
            py::arg("entries"), py::kw_only(), py::arg("flags") = 0,
            py::arg("sq_thread_idle") = 1000, py::arg("sq_thread_cpu") = py::none(),
            py::arg("cq_entries") = py::none(), py::arg("wq_fd") = py::none(),
            "Creates a ring of `entries` SQEs (a power of two in 1..32768).\n\n"
            "Raises EntriesZero / EntriesNotPowerOfTwo (ValueError) for bad entries, ValueError "
            "for unsupported or inconsistent setup options, and OSError from io_uring_setup "
            "(PermissionError when io_uring is disabled or blocked by seccomp).");

    cls.def("close", &Ring::close,
            "Cancels operations in flight, waits (at most 2 s) for their completions, releases "
            "their buffers and closes the ring. Buffers of operations that did not finish are "
            "kept for the life of the process (ResourceWarning). Closing twice is fine.")
        .def("__enter__",
             [](py::object self) {
                 self.cast<const Ring&>().check_usable();
                 return self;
             })
        .def("__exit__", [](Ring& r, py::args) { r.close(); })
        .def_property_readonly("closed", &Ring::closed)
        .def_property_readonly("fd",
                               [](const Ring& r) {
                                   r.check_usable();
                                   return r.core().fd();
                               })
        .def_property_readonly("flags",
                               [](const Ring& r) {
                                   r.check_usable();
                                   return enum_value("SetupFlags", r.core().flags());
                               })
        .def_property_readonly("features",
                               [](const Ring& r) {
                                   r.check_usable();
                                   return enum_value("Features", r.core().features());
                               })
        .def_property_readonly("sq_entries",
                               [](const Ring& r) {
                                   r.check_usable();
                                   return r.core().sq().entries();
                               })
        .def_property_readonly("cq_entries",
                               [](const Ring& r) {
                                   r.check_usable();
                                   return r.core().cq().entries();
                               })
        .def_property_readonly(
            "sqe_head",
            [](const Ring& r) {
                r.check_usable();
                return r.core().sq().sqe_head();
            },
            "Private SQ head: SQEs before it were flushed to the kernel.")
        .def_property_readonly(
            "sqe_tail",
            [](const Ring& r) {
                r.check_usable();
                return r.core().sq().sqe_tail();
            },
            "Private SQ tail: the next get_sqe() takes this position.")
        .def_property_readonly(
            "sq_head",
            [](const Ring& r) {
                r.check_usable();
                return r.core().sq().kernel_head();
            },
            "The kernel's SQ head: SQEs before it were consumed.")
        .def_property_readonly(
            "sq_tail",
            [](const Ring& r) {
                r.check_usable();
                return r.core().sq().shared_tail();
            },
            "The shared SQ tail, as last published by flush_sq().")
        .def_property_readonly("sq_flags",
                               [](const Ring& r) {
                                   r.check_usable();
                                   return enum_value("SqFlags", r.core().sq().kernel_flags());
                               })
        .def_property_readonly("sq_dropped",
                               [](const Ring& r) {
                                   r.check_usable();
                                   return r.core().sq().dropped();
                               })
        .def_property_readonly("cq_head",
                               [](const Ring& r) {
                                   r.check_usable();
                                   return r.core().cq().head();
                               })
        .def_property_readonly("cq_tail",
                               [](const Ring& r) {
                                   r.check_usable();
                                   return r.core().cq().tail();
                               })
        .def_property_readonly("cq_overflow",
                               [](const Ring& r) {
                                   r.check_usable();
                                   return r.core().cq().overflow();
                               })
        .def_property_readonly(
            "in_flight",
            [](const Ring& r) {
                r.check_usable();
                return r.in_flight();
            },
            "Operations flushed whose final completion was not reaped yet.")
        .def_property_readonly(
            "pinned",
            [](const Ring& r) {
                r.check_usable();
                return r.pinned();
            },
            "Objects and private copies the ring keeps alive for prepared "
            "and in-flight operations.");

    cls.def(
           "get_sqe",
           [](const std::shared_ptr<Ring>& r) {
               return SqeHandle{r, r->acquire_slot()};
           },
           "Returns a handle on the next vacant SQE, zeroed (a NOP). Raises "
           "SubmissionQueueFull when all sq_entries slots are taken.")
        .def(
            "get_sqe_raw",
            [](const std::shared_ptr<Ring>& r) {
                return SqeHandle{r, r->acquire_slot()};
            },
            "Like get_sqe(). From Python the slot is still reset to a NOP: an unprepared slot "
            "must never hand the kernel a pointer left by an earlier operation.")
        .def(
            "flush_sq",
            [](Ring& r) {
                r.check_usable();
                return r.flush();
            },
            "Publishes prepared SQEs to the kernel (one store of the SQ tail); returns how "
            "many the kernel has not consumed yet. Their handles become stale.")
        .def(
            "submit", [](Ring& r) { return r.submit_and_wait(0); },
            "Flushes and submits; returns the number of SQEs submitted. Raises OSError.")
        .def(
            "submit_and_wait",
            [](Ring& r, py::handle wait_nr, py::handle timeout) {
                std::uint32_t n = to_u32(wait_nr, "wait_nr");
                return r.submit_and_wait(n, deadline_after(timeout));
            },
            py::arg("wait_nr"), py::kw_only(), py::arg("timeout") = py::none(),
            "Flushes, submits and waits until at least wait_nr completions are ready (GIL "
            "released; Ctrl-C raises KeyboardInterrupt). Returns the number submitted. With "
            "timeout (seconds, or a timedelta) raises TimeoutError when it expires first; the "
            "SQEs were submitted all the same.")
        .def(
            "enter",
            [](Ring& r, py::handle to_submit, py::handle min_complete, py::handle flags) {
                return r.enter(to_u32(to_submit, "to_submit"), to_u32(min_complete, "min_complete"),
                               to_u32(flags, "flags"));
            },
            py::arg("to_submit"), py::arg("min_complete"), py::arg("flags") = 0,
            "The raw io_uring_enter(2) call (no flush). Returns its result; raises OSError.")
        .def(
            "sq_ready",
            [](const Ring& r) {
                r.check_usable();
                return r.core().sq_ready();
            },
            "SQEs prepared and not yet consumed by the kernel.")
        .def("sq_space_left",
             [](const Ring& r) {
                 r.check_usable();
                 return r.core().sq_space_left();
             })
        .def(
            "cq_ready",
            [](const Ring& r) {
                r.check_usable();
                return r.core().cq_ready();
            },
            "Completions ready to be copied.")
        .def("sq_ring_needs_enter",
             [](const Ring& r) {
                 r.check_usable();
                 std::uint32_t flags = 0;
                 return r.core().sq_ring_needs_enter(flags);
             })
        .def(
            "cq_ring_needs_flush",
            [](const Ring& r) {
                r.check_usable();
                return r.core().cq_ring_needs_flush();
            },
            "True when the kernel holds completions back (CQ overflow, or task work with "
            "TASKRUN_FLAG); an enter with GETEVENTS brings them in.");

    cls.def(
           "copy_cqes",
           [](Ring& r, py::handle out, py::handle wait_nr_arg, py::handle timeout) -> py::object {
               r.check_usable();
               std::uint32_t wait_nr = to_u32(wait_nr_arg, "wait_nr");
               Deadline deadline = deadline_after(timeout);
               if (wait_nr > r.core().cq().entries()) {
                   raise(PyExc_ValueError, "wait_nr exceeds the completion queue size");
               }
               if (out.is_none()) {
                   r.wait_ready(wait_nr, deadline);
                   r.flush_held_back();
                   std::uint32_t ready = r.core().cq_ready();
                   py::array_t<Cqe> array(ready);
                   std::uint32_t n = r.copy_cqes(array.mutable_data(), ready, 0);
                   return array[py::slice(0, n, 1)];
               }
               py::array array = checked_cqe_array(out);
               auto size = static_cast<std::uint32_t>(
                   std::min<py::ssize_t>(array.shape(0), 0xffffffff));
               std::uint32_t n = r.copy_cqes(static_cast<Cqe*>(array.mutable_data()), size, wait_nr,
                                             deadline);
               return array[py::slice(0, n, 1)];
           },
           py::arg("out") = py::none(), py::arg("wait_nr") = 0, py::kw_only(),
           py::arg("timeout") = py::none(),
           "Copies ready completions into `out` (a 1-D CQE_DTYPE array; at most len(out)) or, "
           "without `out`, into a new array of all that are ready, consuming them with one "
           "head update. Waits first until at least wait_nr are ready (with timeout: at most "
           "that long, then copies what is ready). Returns the filled part (a view of out).")
        .def(
            "copy_cqe",
            [](Ring& r, py::handle timeout) {
                r.check_usable();
                Deadline deadline = deadline_after(timeout);
                Cqe cqe{};
                while (r.copy_cqes(&cqe, 1, 1, deadline) == 0) {
                    if (deadline && std::chrono::steady_clock::now() >= *deadline) {
                        raise(PyExc_TimeoutError, "copy_cqe: no completion before the timeout");
                    }
                }
                return cqe;
            },
            py::kw_only(), py::arg("timeout") = py::none(),
            "Waits for one completion (at most timeout seconds: TimeoutError) and consumes "
            "it; returns a Cqe.")
        .def(
            "peek_cqe",
            [](Ring& r) -> py::object {
                r.check_usable();
                if (r.core().cq_ready() == 0) r.flush_held_back();
                if (r.core().cq_ready() == 0) return py::none();
                return py::cast(r.core().cq().at(0));
            },
            "The next completion without consuming it, or None.")
        .def(
            "cqe_seen",
            [](Ring& r, py::handle) {
                r.check_usable();
                if (r.core().cq_ready() == 0) {
                    raise(PyExc_ValueError, "no completion is ready to be marked seen");
                }
                r.cq_advance(1);
            },
            py::arg("cqe") = py::none(), "Consumes the next completion (after peek_cqe()).")
        .def(
            "cq_advance",
            [](Ring& r, py::handle count_arg) {
                r.check_usable();
                std::uint32_t count = to_u32(count_arg, "count");
                if (count > r.core().cq_ready()) {
                    raise(PyExc_ValueError, "count (" + std::to_string(count) +
                                                ") exceeds the completions ready (" +
                                                std::to_string(r.core().cq_ready()) + ")");
                }
                r.cq_advance(count);
            },
            py::arg("count"), "Consumes `count` ready completions without copying them.");

    cls.def(
           "register_files",
           [](Ring& r, py::handle fds) {
               std::vector<std::int32_t> list = to_fd_list(fds, "fds");
               r.check_usable();
               check_ok(r.core().register_files(list.data(), static_cast<unsigned>(list.size())),
                        "register_files");
           },
           py::arg("fds"),
           "Registers files for SqeFlags.FIXED_FILE operations (-1 leaves a slot empty).")
        .def(
            "register_files_sparse",
            [](Ring& r, py::handle count) {
                unsigned n = to_u32(count, "count");
                r.check_usable();
                check_ok(r.core().register_files_sparse(n), "register_files_sparse");
            },
            py::arg("count"), "Registers `count` empty file slots.")
        .def(
            "register_files_update",
            [](Ring& r, py::handle offset, py::handle fds) {
                unsigned off = to_u32(offset, "offset");
                std::vector<std::int32_t> list = to_fd_list(fds, "fds");
                r.check_usable();
                int ret = r.core().register_files_update(off, list.data(),
                                                         static_cast<unsigned>(list.size()));
                check_ok(ret, "register_files_update");
                return ret;
            },
            py::arg("offset"), py::arg("fds"),
            "Replaces registered files from slot `offset` (-1 empties a slot, "
            "REGISTER_FILES_SKIP keeps it); returns the number of slots updated.")
        .def("unregister_files",
             [](Ring& r) {
                 r.check_usable();
                 check_ok(r.core().unregister_files(), "unregister_files");
             })
        .def(
            "register_buffers",
            [](Ring& r, py::handle buffers) {
                if (PyIter_Check(buffers.ptr()) == 0 && PySequence_Check(buffers.ptr()) == 0) {
                    raise(PyExc_TypeError, "buffers must be an iterable of writable buffers");
                }
                auto registered = std::make_shared<RegisteredBuffers>();
                for (py::handle item : py::iter(buffers)) {
                    auto view = std::make_shared<BufferExport>();
                    view->acquire(item, true, "buffers");
                    registered->iovecs.push_back(
                        Iovec{reinterpret_cast<std::uintptr_t>(view->data()), view->size()});
                    registered->exports.push_back(std::move(view));
                }
                r.register_buffers(std::move(registered));
            },
            py::arg("buffers"),
            "Registers writable buffers for read_fixed/write_fixed. They stay exported (a "
            "bytearray cannot be resized) until unregistered and no fixed operation using "
            "them is in flight. Raises OSError (ENOMEM: see RLIMIT_MEMLOCK).")
        .def("unregister_buffers", &Ring::unregister_buffers)
        .def(
            "register_eventfd",
            [](Ring& r, py::handle fd) {
                int efd = to_fd(fd, "fd");
                r.check_usable();
                check_ok(r.core().register_eventfd(efd), "register_eventfd");
            },
            py::arg("fd"), "Signals the eventfd `fd` when completions are posted.")
        .def("unregister_eventfd",
             [](Ring& r) {
                 r.check_usable();
                 check_ok(r.core().unregister_eventfd(), "unregister_eventfd");
             })
        .def(
            "enable_rings",
            [](Ring& r) {
                r.check_usable();
                check_ok(r.core().enable_rings(), "enable_rings");
            },
            "Enables a ring created with SetupFlags.R_DISABLED.")
        .def(
            "probe_ops",
            [](Ring& r) {
                r.check_usable();
                Probe probe;
                check_ok(r.core().probe(probe), "register_probe");
                py::list ops;
                for (unsigned i = 0; i < probe.ops_len; ++i) {
                    if ((probe.ops[i].flags & kProbeOpSupported) != 0) ops.append(probe.ops[i].op);
                }
                return ops;
            },
            "The opcode numbers the running kernel supports (IORING_REGISTER_PROBE).");
    return cls;
}

}  // namespace iouring::bindings
