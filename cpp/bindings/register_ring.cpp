// The IoUring class: construction with validated setup options, the ring methods of the
// reference binding, registration, completions as NumPy arrays.
#include <pybind11/numpy.h>

#include <chrono>
#include <cstddef>
#include <initializer_list>
#include <string>
#include <vector>

#include "convert.hpp"
#include "cqe_object.hpp"
#include "module.hpp"
#include "pins.hpp"

namespace iouring::bindings {

namespace {

struct RefusedFlag {
    std::uint32_t bit;
    const char* message;
};

constexpr RefusedFlag kRefusedFlags[] = {
    {setup::NO_MMAP, "SetupFlags.NO_MMAP (caller-provided ring memory) is not supported"},
    {setup::REGISTERED_FD_ONLY, "SetupFlags.REGISTERED_FD_ONLY is not supported"},
    {setup::CQE_MIXED, "SetupFlags.CQE_MIXED (mixed CQE sizes) is not supported yet"},
    {setup::SQE_MIXED, "SetupFlags.SQE_MIXED (mixed SQE sizes) is not supported yet"},
    {setup::SQ_REWIND, "SetupFlags.SQ_REWIND is not supported"},
};

// With SetupFlags.CLAMP the kernel clamps entries to 32768 and cq_entries to 65536 instead of
// refusing larger values, so they may be as large as the u32 the kernel takes.
constexpr std::int64_t kMaxClampedEntries = std::int64_t{1} << 31;  // largest u32 power of two

bool clamps(py::handle flags) { return (to_u32(flags, "flags") & setup::CLAMP) != 0; }

unsigned checked_entries(py::handle value, py::handle flags) {
    std::int64_t entries = to_i64(value, "entries", INT64_MIN, INT64_MAX);
    if (entries == 0) throw EntriesZero("entries must not be zero");
    if (entries > kMaxEntries && entries <= 0xffffffffll && clamps(flags)) {
        if (!is_power_of_two(static_cast<unsigned>(entries))) {
            throw EntriesNotPowerOfTwo("entries must be a power of two, got " +
                                       std::to_string(entries));
        }
        return static_cast<unsigned>(entries);
    }
    if (entries > kMaxEntries && clamps(flags)) {
        raise(PyExc_OverflowError, "entries must be a power of two in 1.." +
                                       std::to_string(kMaxClampedEntries) +
                                       " with SetupFlags.CLAMP, got " + std::to_string(entries));
    }
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
        const bool clamp = (o.flags & setup::CLAMP) != 0;
        // The kernel compares with the (clamped) SQ size; with CLAMP it clamps cq_entries too.
        const unsigned sq = clamp ? std::min(entries, kMaxEntries) : entries;
        if (o.cq_entries < sq || (!clamp && o.cq_entries > 2 * kMaxEntries)) {
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

// `out` as an array of the ring's CQE dtype: CQE_DTYPE, or CQE32_DTYPE on CQE32 rings.
py::array checked_cqe_array(const Ring& r, py::handle out) {
    const bool cqe32 = r.core().cq().cqe_size() == sizeof(Cqe32);
    const char* wanted = cqe32 ? "CQE32_DTYPE" : "CQE_DTYPE";
    if (!py::isinstance<py::array>(out)) {
        raise(PyExc_TypeError,
              std::string("out must be a numpy array of ") + wanted + ", not " + type_name(out));
    }
    py::array array = py::reinterpret_borrow<py::array>(out);
    py::dtype expected = cqe_dtype(r.core().cq().cqe_size());
    // Arrays made with dtype=CQE_DTYPE share its descriptor: no structured comparison needed.
    if (array.dtype().ptr() != expected.ptr() && !array.dtype().equal(expected)) {
        if (array.dtype().equal(cqe_dtype(cqe32 ? sizeof(Cqe) : sizeof(Cqe32)))) {
            raise(PyExc_ValueError,
                  cqe32 ? "out has dtype CQE_DTYPE, but this ring was set up with "
                          "SetupFlags.CQE32: its completions are 32 bytes, pass a CQE32_DTYPE "
                          "array"
                        : "out has dtype CQE32_DTYPE, but this ring's completions are 16 bytes "
                          "(no SetupFlags.CQE32): pass a CQE_DTYPE array");
        }
        raise(PyExc_TypeError, std::string("out must have dtype ") + wanted + ", not " +
                                   py::str(array.dtype()).cast<std::string>());
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

// --- submit_and_wait and copy_cqe: the round trip of the single-operation path --------------
// Plain METH_FASTCALL | METH_KEYWORDS methods rather than pybind11 functions: pybind11's
// dispatcher (argument vectors, loader_life_support, overload resolution) costs about as much
// as the work of these calls when the completion is already there.

// Parses `nargs` positional arguments and `kwnames` into out[0..names.size()), in the order of
// `names`: the first `positional` may be given by position, the rest are keyword-only; the
// first `required` must be given. Mistakes raise TypeError as a Python function's would.
void parse_fast_args(const char* function, std::initializer_list<const char*> names,
                     std::size_t positional, std::size_t required, PyObject* const* args,
                     Py_ssize_t nargs, PyObject* kwnames, PyObject** out) {
    auto fn = [function] { return std::string(function); };  // for messages only
    std::size_t n = names.size();
    for (std::size_t i = 0; i < n; ++i) out[i] = nullptr;
    if (nargs < 0 || static_cast<std::size_t>(nargs) > positional) {
        raise(PyExc_TypeError, fn() + "() takes " + std::to_string(positional) +
                                   " positional argument" + (positional == 1 ? "" : "s") + " but " +
                                   std::to_string(nargs) + " were given");
    }
    for (Py_ssize_t i = 0; i < nargs; ++i) out[i] = args[i];
    if (kwnames != nullptr) {
        Py_ssize_t nkw = PyTuple_GET_SIZE(kwnames);
        for (Py_ssize_t k = 0; k < nkw; ++k) {
            PyObject* key = PyTuple_GET_ITEM(kwnames, k);
            std::size_t j = 0;
            for (const char* name : names) {
                if (PyUnicode_CompareWithASCIIString(key, name) == 0) break;
                ++j;
            }
            if (j == n) {
                raise(PyExc_TypeError, fn() + "() got an unexpected keyword argument '" +
                                           py::str(key).cast<std::string>() + "'");
            }
            if (out[j] != nullptr) {
                raise(PyExc_TypeError,
                      fn() + "() got multiple values for argument '" + names.begin()[j] + "'");
            }
            out[j] = args[nargs + k];
        }
    }
    for (std::size_t i = 0; i < required; ++i) {
        if (out[i] == nullptr) {
            raise(PyExc_TypeError,
                  fn() + "() missing required argument '" + names.begin()[i] + "'");
        }
    }
}

// The wait keywords after `timeout` (min_wait, sigmask, deadline, iowait), when any is given;
// else only the timeout, converted without the checks (the common case stays as cheap).
WaitOptions fast_wait_options(Ring& r, PyObject* const* a) {
    if (a[1] == nullptr && a[2] == nullptr && a[3] == nullptr && a[4] == nullptr) {
        return deadline_after(a[0] != nullptr ? a[0] : Py_None);
    }
    return wait_options(r, a[0], a[1], a[2], a[3], a[4]);
}

PyObject* submit_and_wait_method(PyObject* self, PyObject* const* args, Py_ssize_t nargs,
                                 PyObject* kwnames) noexcept {
    try {
        PyObject* a[6];
        parse_fast_args("submit_and_wait",
                        {"wait_nr", "timeout", "min_wait", "sigmask", "deadline", "iowait"}, 1, 1,
                        args, nargs, kwnames, a);
        Ring& r = ring_of(self);
        std::uint32_t n = to_u32(a[0], "wait_nr");
        int submitted = r.submit_and_wait(n, fast_wait_options(r, a + 1));
        return PyLong_FromLong(submitted);
    } catch (...) {
        py::detail::try_translate_exceptions();
        return nullptr;
    }
}

PyObject* copy_cqe_method(PyObject* self, PyObject* const* args, Py_ssize_t nargs,
                          PyObject* kwnames) noexcept {
    try {
        PyObject* a[5];
        parse_fast_args("copy_cqe", {"timeout", "min_wait", "sigmask", "deadline", "iowait"}, 0, 0,
                        args, nargs, kwnames, a);
        Ring& r = ring_of(self);
        WaitOptions wait = fast_wait_options(r, a);
        r.check_usable();  // after the conversion, which may run Python code
        Cqe32 entry{};     // room for a CQE32 ring's entry
        while (r.copy_cqes(&entry, 1, 1, wait) == 0) {
            if (r.wait_expired(wait)) {
                raise(PyExc_TimeoutError, "copy_cqe: no completion before the timeout");
            }
        }
        return make_cqe(entry.cqe, r.core().cq().cqe_size()).release().ptr();
    } catch (...) {
        py::detail::try_translate_exceptions();
        return nullptr;
    }
}

template <typename Method>
PyCFunction as_cfunction(Method method) {
    // METH_FASTCALL | METH_KEYWORDS functions are stored as PyCFunction; the cast through
    // void(*)() is the documented way to do it without a cast-function-type warning.
    return reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(method));
}

// The wait keywords, as every waiting method documents them.
#define IOURING_WAIT_KEYWORDS_DOC                                                                  \
    "min_wait (seconds; IORING_FEAT_MIN_TIMEOUT, Linux 6.12+): once it has passed, the wait "      \
    "ends as soon as one completion is ready, even if fewer than wait_nr are (batching with a "    \
    "bounded latency). sigmask (an iterable of signal numbers, as signal.pthread_sigmask takes): " \
    "the signals blocked while the kernel waits, restored when it returns (an empty set unblocks " \
    "every signal for the wait, like pselect). deadline (seconds on the ring's clock: "            \
    "time.monotonic(), or time.clock_gettime(time.CLOCK_BOOTTIME) after "                          \
    "register_clock(time.CLOCK_BOOTTIME); IORING_ENTER_ABS_TIMER, Linux 6.12+): an absolute "      \
    "timeout, exclusive with timeout. iowait=False (IORING_FEAT_NO_IOWAIT, Linux 6.15+): the "     \
    "wait does not count as iowait. A missing kernel feature raises NotImplementedError naming "   \
    "it; bad values raise TypeError/ValueError naming the argument. "

// How tag CQEs and operations share user_data, as every tags= method documents it.
#define IOURING_TAGS_DOC                                                                     \
    "Tag CQEs arrive with the other completions (copy_cqes() returns them; they are not "    \
    "operations and leave in_flight alone). A tag is live from its registration until its "  \
    "CQE is seen: while it is, no operation may use it as user_data (submitting one raises " \
    "ValueError and submits nothing), and a tag equal to the user_data of an operation in "  \
    "flight is refused with ValueError naming tags[i], as is a tag live in the other table " \
    "(files or buffers). live_tags counts the tag CQEs to come. Before Linux 6.13 the "      \
    "kernel posts none for the entries still in a table it unregisters: the ring settles "   \
    "those tags itself when the unregistration returns. "

// Installs the fast methods on `cls` (the docstrings start with the signature that
// inspect.signature() reads).
void def_fast_methods(RingClass& cls) {
    static PyMethodDef methods[] = {
        {"submit_and_wait", as_cfunction(&submit_and_wait_method), METH_FASTCALL | METH_KEYWORDS,
         "submit_and_wait($self, wait_nr, *, timeout=None, min_wait=None, sigmask=None, "
         "deadline=None, iowait=True)\n--\n\n"
         "Flushes, submits and waits until at least wait_nr completions are ready. The "
         "submission runs with the GIL held, as submit() does; the GIL is released only to wait "
         "for completions that are not ready yet (Ctrl-C then raises KeyboardInterrupt). "
         "Returns the number submitted. With timeout (seconds, or a timedelta) raises "
         "TimeoutError when it expires first; the SQEs were submitted all the "
         "same. " IOURING_WAIT_KEYWORDS_DOC
         "Raises ValueError when wait_nr exceeds cq_entries or when, without a timeout or "
         "deadline, it would wait with nothing in flight (forever), and OSError from "
         "io_uring_enter."},
        {"copy_cqe", as_cfunction(&copy_cqe_method), METH_FASTCALL | METH_KEYWORDS,
         "copy_cqe($self, *, timeout=None, min_wait=None, sigmask=None, deadline=None, "
         "iowait=True)\n--\n\n"
         "Waits for one completion (at most timeout seconds, or until deadline: TimeoutError) "
         "and consumes it; returns a Cqe. sigmask, deadline and iowait as for "
         "submit_and_wait() (min_wait changes nothing for one completion). Raises ValueError when "
         "none is ready, nothing is in flight and "
         "no timeout is given (the wait would never end), OSError from io_uring_enter and "
         "what a signal handler "
         "raises while it waits (KeyboardInterrupt)."},
    };
    for (PyMethodDef& def : methods) {
        PyObject* descr = PyDescr_NewMethod(reinterpret_cast<PyTypeObject*>(cls.ptr()), &def);
        if (descr == nullptr) throw py::error_already_set();
        cls.attr(def.ml_name) = py::reinterpret_steal<py::object>(descr);
    }
}

}  // namespace

// Defined in register_ops_net.cpp: a flag taken as a bool, TypeError naming it otherwise.
bool to_bool(py::handle h, const char* name);

// Whether `object` may be reachable through a weak reference, which the refcount does not show
// (a weakref.ref, WeakValueDictionary, WeakSet, finalize). Types whose weak reference list is
// not at a known offset (managed by the interpreter) count as referenced.
static bool may_be_weakly_referenced(PyObject* object) {
    Py_ssize_t offset = Py_TYPE(object)->tp_weaklistoffset;
    if (offset == 0) return false;  // the type has no weak references at all
    if (offset < 0) return true;
    return *reinterpret_cast<PyObject**>(reinterpret_cast<char*>(object) + offset) != nullptr;
}

py::object sqe_handle(Ring& ring, std::uint64_t position) {
    Ring::HandleCache& cache = ring.handle_cache();
#ifndef Py_GIL_DISABLED
    // Only the ring references the last handle it returned: nobody can observe it any more, so
    // it may become the new handle (a handle the caller still holds is never touched: it stays
    // on its old, now stale or still pending, slot). Nobody: not even through a weak reference.
    if (cache.handle != nullptr && Py_REFCNT(cache.object.ptr()) == 1 &&
        !may_be_weakly_referenced(cache.object.ptr())) {
        static_cast<SqeHandle*>(cache.handle)->position = position;
        return cache.object;
    }
#endif
    py::object object = py::cast(SqeHandle{ring.self(), position});
    cache.handle = &object.cast<SqeHandle&>();
    cache.object = object;  // the previous handle (held by the caller) is released from here
    return object;
}

RingClass register_ring(py::module_& m) {
    RingClass cls(m, "IoUring",
                  "An io_uring instance: the fd, the mapped queues, and the pins that keep the "
                  "memory of operations in flight alive. Use as a context manager or close(). "
                  "Every method of a closed ring raises ValueError, and every method used in a "
                  "forked child raises RingForkedError. Every operation method (read, write, "
                  "...: the one-call twins of Sqe.prep_<op>) raises TypeError/ValueError/"
                  "OverflowError naming the argument before the ring is touched, and "
                  "SubmissionQueueFull when no SQE is vacant.");
    ring_type() = reinterpret_cast<PyTypeObject*>(cls.ptr());
    cls.def(py::init([](py::handle entries, py::handle flags, py::handle sq_thread_idle,
                        py::handle sq_thread_cpu, py::handle cq_entries, py::handle wq_fd) {
                unsigned n = checked_entries(entries, flags);
                SetupOptions options = checked_options(n, flags, sq_thread_idle, sq_thread_cpu,
                                                       cq_entries, wq_fd);
                auto ring = std::make_shared<Ring>(n, options);
                ring->set_self(ring);
                // The Python object holds a second control block over the same ring (handles
                // hold the first): when the object goes, the ring drops its cached Sqe handle
                // (whose reference to the ring would otherwise keep the ring alive forever),
                // then the object's reference. Handles the caller still holds keep the ring
                // alive, as before.
                return std::shared_ptr<Ring>(ring.get(), [ring](Ring* r) mutable {
                    Ring::HandleCache dropped = std::move(r->handle_cache());
                    r->handle_cache() = {};
                    dropped = {};
                    ring.reset();
                });
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
            "kept for the life of the process (ResourceWarning). Closing twice is fine; close() "
            "never raises.")
        .def("__enter__",
             [](py::object self) {
                 self.cast<const Ring&>().check_usable();
                 return self;
             })
        .def("__exit__", [](Ring& r, py::args) { r.close(); })
        .def_property_readonly("closed", &Ring::closed,
                               "True once close() ran (or is running); never raises.")
        .def_property_readonly(
            "fd",
            [](const Ring& r) {
                r.check_usable();
                return r.core().fd();
            },
            "The ring's file descriptor. Raises ValueError on a closed ring.")
        .def_property_readonly(
            "flags",
            [](const Ring& r) {
                r.check_usable();
                return enum_value("SetupFlags", r.core().flags());
            },
            "The SetupFlags the ring was created with (io_uring_params.flags). Raises "
            "ValueError on a closed ring.")
        .def_property_readonly(
            "features",
            [](const Ring& r) {
                r.check_usable();
                return enum_value("Features", r.core().features());
            },
            "The Features the kernel reported at setup (io_uring_params.features). "
            "Raises ValueError on a closed ring.")
        .def_property_readonly(
            "sq_entries",
            [](const Ring& r) {
                r.check_usable();
                return r.core().sq().entries();
            },
            "The number of SQ entries (the kernel may round up). Raises ValueError on "
            "a closed ring.")
        .def_property_readonly(
            "cq_entries",
            [](const Ring& r) {
                r.check_usable();
                return r.core().cq().entries();
            },
            "The number of CQ entries (2 x sq_entries unless cq_entries was given). "
            "Raises ValueError on a closed ring.")
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
        .def_property_readonly(
            "sq_flags",
            [](const Ring& r) {
                r.check_usable();
                return enum_value("SqFlags", r.core().sq().kernel_flags());
            },
            "The kernel's SQ ring flags (SqFlags: NEED_WAKEUP, CQ_OVERFLOW, TASKRUN). "
            "Raises ValueError on a closed ring.")
        .def_property_readonly(
            "sq_dropped",
            [](const Ring& r) {
                r.check_usable();
                return r.core().sq().dropped();
            },
            "SQEs the kernel dropped as invalid (the SQ ring's dropped counter). "
            "Raises ValueError on a closed ring.")
        .def_property_readonly(
            "cq_head",
            [](const Ring& r) {
                r.check_usable();
                return r.core().cq().head();
            },
            "The CQ head: completions before it were consumed. Raises ValueError on a "
            "closed ring.")
        .def_property_readonly(
            "cq_tail",
            [](const Ring& r) {
                r.check_usable();
                return r.core().cq().tail();
            },
            "The CQ tail, as the kernel last published it. Raises ValueError on a "
            "closed ring.")
        .def_property_readonly(
            "cq_overflow",
            [](const Ring& r) {
                r.check_usable();
                return r.core().cq().overflow();
            },
            "Completions the kernel could not post to a full CQ (the overflow "
            "counter). Raises ValueError on a closed ring.")
        .def_property_readonly(
            "in_flight",
            [](const Ring& r) {
                r.check_usable();
                return r.in_flight();
            },
            "Operations flushed whose final completion was not reaped yet.")
        .def_property_readonly(
            "live_tags",
            [](const Ring& r) {
                r.check_usable();
                return r.live_tags();
            },
            "Resource-tag CQEs still to come: tags registered with register_files/"
            "register_buffers(..., tags=) or their updates whose CQE has not been seen. "
            "Raises ValueError on a closed ring.")
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
           [](py::handle self) {
               Ring& r = ring_of(self);
               return sqe_handle(r, r.acquire_slot());
           },
           "Returns a handle on the next vacant SQE, zeroed (a NOP). Raises "
           "SubmissionQueueFull when all sq_entries slots are taken.")
        .def(
            "get_sqe_raw", [](Ring& r) { return sqe_handle(r, r.acquire_slot()); },
            "Like get_sqe(). From Python the slot is still reset to a NOP: an unprepared slot "
            "must never hand the kernel a pointer left by an earlier operation. Raises "
            "SubmissionQueueFull when all sq_entries slots are taken.")
        .def(
            "flush_sq",
            [](Ring& r) {
                r.check_usable();
                return r.flush();
            },
            "Publishes prepared SQEs to the kernel (one store of the SQ tail); returns how "
            "many the kernel has not consumed yet. Their handles become stale. Raises "
            "ValueError on a closed ring.")
        .def(
            "submit", [](Ring& r) { return r.submit_and_wait(0); },
            "Flushes and submits; returns the number of SQEs submitted. Raises OSError.")
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
            "SQEs prepared and not yet consumed by the kernel. Raises ValueError on a closed ring.")
        .def(
            "sq_space_left",
            [](const Ring& r) {
                r.check_usable();
                return r.core().sq_space_left();
            },
            "Vacant SQ slots: how many get_sqe() calls succeed before SubmissionQueueFull. "
            "Raises ValueError on a closed ring.")
        .def(
            "cq_ready",
            [](const Ring& r) {
                r.check_usable();
                return r.core().cq_ready();
            },
            "Completions ready to be copied. Raises ValueError on a closed ring.")
        .def(
            "sq_ring_needs_enter",
            [](const Ring& r) {
                r.check_usable();
                std::uint32_t flags = 0;
                return r.core().sq_ring_needs_enter(flags);
            },
            "True when submitting needs io_uring_enter: always without SQPOLL; with SQPOLL "
            "only when the kernel thread sleeps (SqFlags.NEED_WAKEUP). Raises ValueError on "
            "a closed ring.")
        .def(
            "cq_ring_needs_flush",
            [](const Ring& r) {
                r.check_usable();
                return r.core().cq_ring_needs_flush();
            },
            "True when the kernel holds completions back (CQ overflow, or task work with "
            "TASKRUN_FLAG); an enter with GETEVENTS brings them in. Raises ValueError on a closed "
            "ring.");

    cls.def(
           "copy_cqes",
           [](Ring& r, py::handle out, py::handle wait_nr_arg, py::handle timeout,
              py::handle min_wait, py::handle sigmask, py::handle deadline_arg,
              py::handle iowait) -> py::object {
               std::uint32_t wait_nr = to_u32(wait_nr_arg, "wait_nr");
               WaitOptions deadline = wait_options(r, timeout.ptr(), min_wait.ptr(), sigmask.ptr(),
                                                   deadline_arg.ptr(), iowait.ptr());
               r.check_usable();  // after the conversions, which may run Python code
               if (wait_nr > r.core().cq().entries()) {
                   raise(PyExc_ValueError, "wait_nr exceeds the completion queue size");
               }
               if (out.is_none()) {
                   r.wait_ready(wait_nr, deadline);
                   r.flush_held_back();
                   std::uint32_t ready = r.core().cq_ready();
                   py::array array(cqe_dtype(r.core().cq().cqe_size()),
                                   std::vector<py::ssize_t>{static_cast<py::ssize_t>(ready)});
                   std::uint32_t n = r.copy_cqes(array.mutable_data(), ready, 0);
                   return array[py::slice(0, n, 1)];
               }
               py::array array = checked_cqe_array(r, out);
               auto size = static_cast<std::uint32_t>(
                   std::min<py::ssize_t>(array.shape(0), 0xffffffff));
               std::uint32_t n = r.copy_cqes(array.mutable_data(), size, wait_nr, deadline);
               return array[py::slice(0, n, 1)];
           },
           py::arg("out") = py::none(), py::arg("wait_nr") = 0, py::kw_only(),
           py::arg("timeout") = py::none(), py::arg("min_wait") = py::none(),
           py::arg("sigmask") = py::none(), py::arg("deadline") = py::none(),
           py::arg("iowait") = true,
           "Copies ready completions into `out` (a 1-D CQE_DTYPE array, CQE32_DTYPE on CQE32 "
           "rings, else ValueError naming out; at most len(out)) or, "
           "without `out`, into a new array of all that are ready, consuming them with one "
           "head update. Waits first until at least wait_nr are ready (with timeout: at most "
           "that long, then copies what is ready). Returns the filled part (a view of "
           "out). " IOURING_WAIT_KEYWORDS_DOC
           "Raises TypeError/ValueError naming out or wait_nr, ValueError when it would wait "
           "(wait_nr above the completions ready, no timeout) with nothing in flight, which "
           "would never end, OSError from io_uring_enter, "
           "and what a signal handler raises while it waits (KeyboardInterrupt).")
        .def(
            "submit_and_copy_cqes",
            [](py::handle self, py::handle out, py::handle wait_nr_arg, py::handle timeout,
               py::handle min_wait, py::handle sigmask, py::handle deadline_arg,
               py::handle iowait) {
                Ring& r = ring_of(self);
                // Every argument is checked before anything is submitted.
                py::array array = checked_cqe_array(r, out);
                std::uint32_t wait_nr = to_u32(wait_nr_arg, "wait_nr");
                WaitOptions deadline = wait_options(r, timeout.ptr(), min_wait.ptr(), sigmask.ptr(),
                                                    deadline_arg.ptr(), iowait.ptr());
                r.check_usable();  // after the conversions, which may run Python code
                if (wait_nr > r.core().cq().entries()) {
                    raise(PyExc_ValueError, "wait_nr (" + std::to_string(wait_nr) +
                                                ") exceeds the completion queue size (" +
                                                std::to_string(r.core().cq().entries()) + ")");
                }
                auto size = static_cast<std::uint32_t>(
                    std::min<py::ssize_t>(array.shape(0), 0xffffffff));
                r.submit_nowait(true);
                return r.copy_cqes(array.mutable_data(), size, wait_nr, deadline);
            },
            py::arg("out"), py::arg("wait_nr") = 0, py::kw_only(), py::arg("timeout") = py::none(),
            py::arg("min_wait") = py::none(), py::arg("sigmask") = py::none(),
            py::arg("deadline") = py::none(), py::arg("iowait") = true,
            "submit_and_wait(wait_nr) and copy_cqes(out) in one call, for a loop that submits "
            "and reaps: flushes and submits the prepared SQEs (one io_uring_enter with "
            "GETEVENTS), waits until at least wait_nr completions are ready (GIL released, "
            "only when they are not ready yet; Ctrl-C raises KeyboardInterrupt), then copies "
            "the ready completions into `out`, at most len(out), consuming them with one head "
            "update. Returns the number copied: they are out[:n]. With timeout (seconds, or a "
            "timedelta) it waits at most that long and then copies what is ready, so n may be "
            "less than wait_nr; the SQEs were submitted all the same. " IOURING_WAIT_KEYWORDS_DOC
            "\n\n"
            "Raises TypeError when out is not a numpy array of CQE_DTYPE (CQE32_DTYPE on CQE32 "
            "rings), ValueError when it is not one-dimensional and C-contiguous, is read-only, "
            "or wait_nr exceeds cq_entries (all before anything is submitted), ValueError when, "
            "without a timeout, it would wait with nothing in flight (forever), ValueError on a "
            "closed ring, and OSError when io_uring_enter fails.")
        .def(
            "peek_cqe",
            [](Ring& r) -> py::object {
                r.check_usable();
                if (r.core().cq_ready() == 0) r.flush_held_back();
                if (r.core().cq_ready() == 0) return py::none();
                return make_cqe(r.core().cq().at(0), r.core().cq().cqe_size());
            },
            "The next completion without consuming it, or None. Raises ValueError on a closed "
            "ring.")
        .def(
            "cqe_seen",
            [](Ring& r, py::handle) {
                r.check_usable();
                if (r.core().cq_ready() == 0) {
                    raise(PyExc_ValueError, "no completion is ready to be marked seen");
                }
                r.cq_advance(1);
            },
            py::arg("cqe") = py::none(),
            "Consumes the next completion (after peek_cqe()). Raises ValueError when no "
            "completion is ready.")
        .def(
            "cq_advance",
            [](Ring& r, py::handle count_arg) {
                std::uint32_t count = to_u32(count_arg, "count");
                r.check_usable();  // after the conversion, which may run Python code
                if (count > r.core().cq_ready()) {
                    raise(PyExc_ValueError, "count (" + std::to_string(count) +
                                                ") exceeds the completions ready (" +
                                                std::to_string(r.core().cq_ready()) + ")");
                }
                r.cq_advance(count);
            },
            py::arg("count"),
            "Consumes `count` ready completions without copying them. Raises ValueError when "
            "fewer are ready, TypeError/OverflowError for a bad count.");

    cls.def(
           "register_files",
           [](Ring& r, py::handle fds, py::handle tags_arg) {
               std::vector<std::int32_t> list = to_fd_list(fds, "fds");
               std::vector<std::uint64_t> tags = to_tags(r, tags_arg, list.size(),
                                                         Ring::TagTable::files);
               r.check_usable();
               r.check_not_unregistering(Ring::TagTable::files, "register_files");
               if (tags_arg.is_none()) {
                   check_ok(r.core().register_files(list.data(),
                                                    static_cast<unsigned>(list.size())),
                            "register_files");
                   return;
               }
               RsrcRegister reg{};
               reg.nr = static_cast<std::uint32_t>(list.size());
               reg.data = address_of(list.data());
               reg.tags = address_of(tags.data());
               check_ok(r.core().register_op(RegisterOp::REGISTER_FILES2, &reg, sizeof(reg)),
                        "register_files (IORING_REGISTER_FILES2)");
               r.add_live_tags(tags, tags.size(), {}, nullptr, Ring::TagTable::files);
           },
           py::arg("fds"), py::kw_only(), py::arg("tags") = py::none(),
           "Registers files for SqeFlags.FIXED_FILE operations (-1 leaves a slot empty). "
           "With tags (one u64 per fd, 0 for none; IORING_REGISTER_FILES2, Linux 5.13+), the "
           "kernel posts a CQE with user_data=tag, res=0 when it has released that file (its "
           "slot updated or the table unregistered, once no operation uses it). " IOURING_TAGS_DOC
           "Raises TypeError/ValueError naming fds or tags, OSError from the kernel (EBUSY: "
           "files are already registered; EMFILE: more than RLIMIT_NOFILE; EINVAL: a tag on an "
           "empty slot).")
        .def(
            "register_files_sparse",
            [](Ring& r, py::handle count) {
                unsigned n = to_u32(count, "count");
                r.check_usable();
                r.check_not_unregistering(Ring::TagTable::files, "register_files_sparse");
                check_ok(r.core().register_files_sparse(n), "register_files_sparse");
            },
            py::arg("count"),
            "Registers `count` empty file slots. Raises TypeError/OverflowError naming count "
            "and OSError from the kernel (EBUSY: files are already registered).")
        .def(
            "register_files_update",
            [](Ring& r, py::handle offset, py::handle fds, py::handle tags_arg) {
                unsigned off = to_u32(offset, "offset");
                std::vector<std::int32_t> list = to_fd_list(fds, "fds");
                std::vector<std::uint64_t> tags = to_tags(r, tags_arg, list.size(),
                                                          Ring::TagTable::files);
                r.check_usable();
                r.check_not_unregistering(Ring::TagTable::files, "register_files_update");
                if (tags_arg.is_none()) {
                    int ret = r.core().register_files_update(off, list.data(),
                                                             static_cast<unsigned>(list.size()));
                    check_ok(ret, "register_files_update");
                    return ret;
                }
                RsrcUpdate2 update{};
                update.offset = off;
                update.data = address_of(list.data());
                update.tags = address_of(tags.data());
                update.nr = static_cast<std::uint32_t>(list.size());
                int ret = r.core().register_op(RegisterOp::REGISTER_FILES_UPDATE2, &update,
                                               sizeof(update));
                check_ok(ret, "register_files_update (IORING_REGISTER_FILES_UPDATE2)");
                // The kernel ignores the tag of a REGISTER_FILES_SKIP entry: no CQE for it.
                std::vector<bool> skip(list.size());
                for (std::size_t i = 0; i < list.size(); ++i) {
                    skip[i] = list[i] == kRegisterFilesSkip;
                }
                r.add_live_tags(tags, static_cast<std::size_t>(ret), skip, nullptr,
                                Ring::TagTable::files);
                return ret;
            },
            py::arg("offset"), py::arg("fds"), py::kw_only(), py::arg("tags") = py::none(),
            "Replaces registered files from slot `offset` (-1 empties a slot, "
            "REGISTER_FILES_SKIP keeps it); returns the number of slots updated. With tags "
            "(IORING_REGISTER_FILES_UPDATE2), the new files are tagged as register_files() "
            "describes. Raises "
            "TypeError/ValueError naming the argument and OSError from the kernel (ENXIO: no "
            "files registered; EINVAL: past the table).")
        .def(
            "unregister_files", [](Ring& r) { r.unregister_files(); },
            "Unregisters the registered file table. Raises OSError (ENXIO when no files are "
            "registered), BlockingIOError (errno EBUSY) on kernels before Linux 6.13 while "
            "operations using registered files or buffers are in flight (the kernel would "
            "wait for them).")
        .def(
            "register_buffers",
            [](Ring& r, py::handle buffers, py::handle tags_arg) {
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
                if (tags_arg.is_none()) {
                    r.register_buffers(std::move(registered));
                    return;
                }
                std::vector<std::uint64_t> tags = to_tags(r, tags_arg, registered->iovecs.size(),
                                                          Ring::TagTable::buffers);
                r.check_usable();
                r.check_not_unregistering(Ring::TagTable::buffers, "register_buffers");
                RsrcRegister reg{};
                reg.nr = static_cast<std::uint32_t>(registered->iovecs.size());
                reg.data = address_of(registered->iovecs.data());
                reg.tags = address_of(tags.data());
                check_ok(r.core().register_op(RegisterOp::REGISTER_BUFFERS2, &reg, sizeof(reg)),
                         "register_buffers (IORING_REGISTER_BUFFERS2)");
                PinList pins(registered->exports.begin(), registered->exports.end());
                r.replace_registered_buffers(std::move(registered));
                r.add_live_tags(tags, tags.size(), {}, &pins, Ring::TagTable::buffers);
            },
            py::arg("buffers"), py::kw_only(), py::arg("tags") = py::none(),
            "Registers writable buffers for read_fixed/write_fixed. They stay exported (a "
            "bytearray cannot be resized) until unregistered and no fixed operation using "
            "them is in flight. With tags (one u64 per buffer, 0 for none; "
            "IORING_REGISTER_BUFFERS2, Linux 5.13+), a tagged buffer also stays exported until "
            "the kernel's CQE with user_data=tag, res=0 says it has released it (after an "
            "update replaced it or the table was unregistered, once no operation uses "
            "it). " IOURING_TAGS_DOC
            "Raises TypeError/ValueError naming buffers or tags, OSError "
            "(ENOMEM: see RLIMIT_MEMLOCK; EBUSY: buffers are already registered).")
        .def("unregister_buffers", &Ring::unregister_buffers,
             "Unregisters the registered buffers; fixed operations still in flight keep them "
             "exported until their final completion. Raises OSError (ENXIO when no buffers are "
             "registered), BlockingIOError (errno EBUSY) on kernels before Linux 6.13 while "
             "operations using registered buffers or files are in flight (the kernel would "
             "wait for them).")
        .def(
            "register_eventfd",
            [](Ring& r, py::handle fd) {
                int efd = to_fd(fd, "fd");
                r.check_usable();
                check_ok(r.core().register_eventfd(efd), "register_eventfd");
            },
            py::arg("fd"),
            "Signals the eventfd `fd` when completions are posted. Raises TypeError naming fd "
            "and OSError from the kernel (EBUSY: an eventfd is already registered).")
        .def(
            "unregister_eventfd",
            [](Ring& r) {
                r.check_usable();
                check_ok(r.core().unregister_eventfd(), "unregister_eventfd");
            },
            "Stops signalling the registered eventfd. Raises OSError (ENXIO when none is "
            "registered).")
        .def_property_readonly(
            "cq_eventfd_enabled",
            [](const Ring& r) {
                r.check_usable();
                return r.core().cq().eventfd_enabled();
            },
            "False while IORING_CQ_EVENTFD_DISABLED is set (cq_eventfd_toggle(False)): the "
            "registered eventfd is not signalled for new completions. Matches "
            "io_uring_cq_eventfd_enabled(3). Raises ValueError on a closed ring.")
        .def(
            "cq_eventfd_toggle",
            [](Ring& r, py::handle enabled) {
                bool on = to_bool(enabled, "enabled");
                r.check_usable();
                if (!r.core().cq().eventfd_toggle(on)) {
                    check_ok(-EOPNOTSUPP, "cq_eventfd_toggle (CQ ring flags need Linux 5.8+)");
                }
            },
            py::arg("enabled"),
            "Sets (False) or clears (True) IORING_CQ_EVENTFD_DISABLED in the CQ ring's flags: "
            "while disabled, completions do not signal the registered eventfd (those posted "
            "meanwhile are not signalled later either: look at the CQ after enabling). A user-"
            "space store, no system call. Matches io_uring_cq_eventfd_toggle(3). Raises "
            "TypeError for a non-bool enabled, ValueError on a closed ring, OSError(EOPNOTSUPP) "
            "for disabling on a kernel without CQ ring flags.")
        .def(
            "enable_rings", [](Ring& r) { r.enable_rings(); },
            "Enables a ring created with SetupFlags.R_DISABLED. Raises OSError (EBADFD when "
            "the ring is not disabled).")
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
            "The opcode numbers the running kernel supports (IORING_REGISTER_PROBE). Raises "
            "OSError from the kernel.");
    def_fast_methods(cls);
    return cls;
}

}  // namespace iouring::bindings
