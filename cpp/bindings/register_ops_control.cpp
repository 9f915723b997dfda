// The control family of operations: timeouts (+ remove, update, link), cancellation, poll
// (+ multishot, remove, update), epoll_ctl/epoll_wait, msg_ring (data and fd passing), waitid
// (with the ring-independent Siginfo result object), futex wait/wake/waitv, fixed_fd_install,
// files_update and NOPs with injected results. See ops.hpp for how each operation becomes two
// methods.
//
// msg_ring and the pins of the target ring: a ring releases the pins of an operation when a
// final CQE (one without CqeFlags.MORE) arrives for its user_data. A CQE that another ring
// posts into one of our rings with user_data X would therefore release the pins of an
// operation X still in flight there. So by default our data messages pass CQE flags
// (IORING_MSG_RING_FLAGS_PASS) that include CqeFlags.MORE, which no ring counts as final, and
// fd passing, whose target CQE the kernel posts with flags 0, skips the target CQE
// (IORING_MSG_RING_CQE_SKIP). A final CQE (more=False, post_cqe=True) is taken only for a
// target that is an open IoUring of this process: the submit reserves the message's user_data
// on the target's in-flight table (see ring_messages.cpp). Any other target (a ring of another
// process, or one this process made without iouring) could not be protected, so the prep
// methods and the submit refuse it.
#include <pybind11/native_enum.h>
#include <pybind11/numpy.h>

#include <cstdio>
#include <string>
#include <vector>

#include <iouring/sqe_control.hpp>

#include "convert.hpp"
#include "dtype.hpp"
#include "flag_enum.hpp"
#include "module.hpp"
#include "ops.hpp"
#include "pins.hpp"

namespace iouring::bindings {

// Defined in register_ops_net.cpp: a flag taken as a bool, TypeError naming it otherwise.
bool to_bool(py::handle h, const char* name);

namespace {

// ---------------------------------------------------------------------------------------------
// Python-visible constants

// A value the kernel stores into a CQE's res from a u32 field: any int32, or a u32.
std::uint32_t to_res_word(py::handle h, const char* name) {
    return static_cast<std::uint32_t>(
        to_i64(h, name, std::numeric_limits<std::int32_t>::min(), 0xffffffffll));
}

// ---------------------------------------------------------------------------------------------
// Timeouts: the timespec is always a private copy, kept until the final completion (for a
// multishot timeout, the CQE without CqeFlags.MORE).

constexpr std::uint32_t kTimeoutClock = timeout::BOOTTIME | timeout::REALTIME;
constexpr std::uint32_t kTimeoutUpdateMask = timeout::UPDATE | timeout::LINK_TIMEOUT_UPDATE;

Prepared make_timeout(py::handle user_data, py::handle ts, py::handle count, py::handle flags) {
    std::uint64_t ud = to_u64(user_data, "user_data");
    KernelTimespec spec = to_timespec(ts, "ts");
    std::uint32_t n = to_u32(count, "count");
    std::uint32_t f = to_u32(flags, "flags");
    check_bits(f, timeout::ABS | kTimeoutClock | timeout::ETIME_SUCCESS | timeout::MULTISHOT,
               "flags",
               "TimeoutFlags ABS, BOOTTIME, REALTIME, ETIME_SUCCESS, MULTISHOT; use "
               "timeout_update() to update");
    PinnedCopy<KernelTimespec> copy = pin_copy(spec);
    Prepared p;
    prep_timeout(p.sqe, ud, copy.ptr, n, f);
    p.pins.push_back(std::move(copy.pin));
    return p;
}

Prepared make_timeout_remove(py::handle user_data, py::handle target_user_data, py::handle flags) {
    Prepared p;
    std::uint64_t ud = to_u64(user_data, "user_data");
    std::uint64_t target = to_u64(target_user_data, "target_user_data");
    std::uint32_t f = to_u32(flags, "flags");
    check_bits(f, kTimeoutClock, "flags", "use timeout_update() to update a timeout");
    prep_timeout_remove(p.sqe, ud, target, f);
    return p;
}

Prepared make_timeout_update(py::handle user_data, py::handle ts, py::handle target_user_data,
                             py::handle flags) {
    std::uint64_t ud = to_u64(user_data, "user_data");
    KernelTimespec spec = to_timespec(ts, "ts");
    std::uint64_t target = to_u64(target_user_data, "target_user_data");
    std::uint32_t f = to_u32(flags, "flags");
    check_bits(f, timeout::ABS | kTimeoutClock | kTimeoutUpdateMask, "flags",
               "TimeoutFlags ABS, BOOTTIME, REALTIME, LINK_TIMEOUT_UPDATE");
    PinnedCopy<KernelTimespec> copy = pin_copy(spec);
    Prepared p;
    prep_timeout_update(p.sqe, ud, copy.ptr, target, f);
    p.pins.push_back(std::move(copy.pin));
    return p;
}

Prepared make_link_timeout(py::handle user_data, py::handle ts, py::handle flags) {
    std::uint64_t ud = to_u64(user_data, "user_data");
    KernelTimespec spec = to_timespec(ts, "ts");
    std::uint32_t f = to_u32(flags, "flags");
    check_bits(f, timeout::ABS | kTimeoutClock | timeout::ETIME_SUCCESS, "flags",
               "TimeoutFlags ABS, BOOTTIME, REALTIME, ETIME_SUCCESS");
    PinnedCopy<KernelTimespec> copy = pin_copy(spec);
    Prepared p;
    prep_link_timeout(p.sqe, ud, copy.ptr, f);
    p.pins.push_back(std::move(copy.pin));
    return p;
}

// ---------------------------------------------------------------------------------------------
// Cancellation

constexpr std::uint32_t kCancelAll = cancel::ALL | cancel::FD | cancel::ANY | cancel::FD_FIXED |
                                     cancel::USERDATA | cancel::OP;

Prepared make_cancel(py::handle user_data, py::handle target_user_data, py::handle flags,
                     py::handle fd, py::handle op) {
    Prepared p;
    std::uint64_t ud = to_u64(user_data, "user_data");
    std::uint64_t target = to_u64(target_user_data, "target_user_data");
    std::uint32_t f = to_u32(flags, "flags");
    check_bits(f, kCancelAll, "flags", "CancelFlags");
    std::int32_t file = -1;
    std::uint32_t opcode = 0;
    if (!fd.is_none()) {
        file = to_fd(fd, "fd");
        f |= cancel::FD;
    } else if ((f & cancel::FD) != 0) {
        raise(PyExc_ValueError, "flags: CancelFlags.FD needs the fd argument");
    }
    if (!op.is_none()) {
        opcode = static_cast<std::uint32_t>(to_i64(op, "op", 0, 255));
        f |= cancel::OP;
    } else if ((f & cancel::OP) != 0) {
        raise(PyExc_ValueError, "flags: CancelFlags.OP needs the op argument");
    }
    if ((f & cancel::FD_FIXED) != 0 && (f & cancel::FD) == 0) {
        raise(PyExc_ValueError, "flags: CancelFlags.FD_FIXED needs the fd argument");
    }
    prep_cancel_match(p.sqe, ud, target, file, opcode, f);
    return p;
}

Prepared make_cancel_fd(py::handle user_data, py::handle fd, py::handle flags) {
    Prepared p;
    std::uint64_t ud = to_u64(user_data, "user_data");
    std::int32_t file = to_fd(fd, "fd");
    std::uint32_t f = to_u32(flags, "flags");
    check_bits(f, kCancelAll & ~cancel::ANY, "flags", "CancelFlags other than ANY");
    prep_cancel_fd(p.sqe, ud, file, f);
    return p;
}

// ---------------------------------------------------------------------------------------------
// Polling

Prepared make_poll_add(py::handle user_data, py::handle fd, py::handle poll_mask,
                       py::handle flags) {
    Prepared p;
    std::uint64_t ud = to_u64(user_data, "user_data");
    std::int32_t file = to_fd(fd, "fd");
    std::uint32_t mask = to_u32(poll_mask, "poll_mask");
    std::uint32_t f = to_u32(flags, "flags");
    check_bits(f, poll::ADD_MULTI | poll::ADD_LEVEL, "flags", "PollFlags ADD_MULTI, ADD_LEVEL");
    prep_poll_add(p.sqe, ud, file, mask);
    p.sqe.len = f;
    return p;
}

Prepared make_poll_multishot(py::handle user_data, py::handle fd, py::handle poll_mask) {
    Prepared p;
    std::uint64_t ud = to_u64(user_data, "user_data");
    std::int32_t file = to_fd(fd, "fd");
    std::uint32_t mask = to_u32(poll_mask, "poll_mask");
    prep_poll_multishot(p.sqe, ud, file, mask);
    return p;
}

Prepared make_poll_remove(py::handle user_data, py::handle target_user_data) {
    Prepared p;
    std::uint64_t ud = to_u64(user_data, "user_data");
    prep_poll_remove(p.sqe, ud, to_u64(target_user_data, "target_user_data"));
    return p;
}

Prepared make_poll_update(py::handle user_data, py::handle old_user_data, py::handle new_user_data,
                          py::handle poll_mask, py::handle flags) {
    Prepared p;
    std::uint64_t ud = to_u64(user_data, "user_data");
    std::uint64_t old_ud = to_u64(old_user_data, "old_user_data");
    std::uint64_t new_ud = to_u64(new_user_data, "new_user_data");
    std::uint32_t mask = to_u32(poll_mask, "poll_mask");
    std::uint32_t f = to_u32(flags, "flags");
    check_bits(f, poll::UPDATE_EVENTS | poll::UPDATE_USER_DATA | poll::ADD_MULTI, "flags",
               "PollFlags UPDATE_EVENTS, UPDATE_USER_DATA, ADD_MULTI");
    prep_poll_update(p.sqe, ud, old_ud, new_ud, mask, f);
    return p;
}

Prepared make_epoll_ctl(py::handle user_data, py::handle epfd, py::handle fd, py::handle op,
                        py::handle events, py::handle data) {
    std::uint64_t ud = to_u64(user_data, "user_data");
    std::int32_t ep = to_fd(epfd, "epfd");
    std::int32_t file = to_fd(fd, "fd");
    std::uint32_t ctl = to_u32(op, "op");
    std::uint32_t mask = to_u32(events, "events");
    std::uint64_t value = data.is_none()
                              ? static_cast<std::uint64_t>(static_cast<std::uint32_t>(file))
                              : to_u64(data, "data");
    PinnedCopy<EpollEvent> copy = pin_copy(EpollEvent{mask, value});
    Prepared p;
    prep_epoll_ctl(p.sqe, ud, ep, file, ctl, copy.ptr);
    p.pins.push_back(std::move(copy.pin));
    return p;
}

Prepared make_epoll_wait(py::handle user_data, py::handle epfd, py::handle events,
                         py::handle flags) {
    std::uint64_t ud = to_u64(user_data, "user_data");
    std::int32_t ep = to_fd(epfd, "epfd");
    std::uint32_t f = to_u32(flags, "flags");
    check_bits(f, 0, "flags", "no epoll_wait flags are defined: pass 0");
    PinnedBuffer out = pin_buffer(events, true, "events");
    if (out.size == 0 || out.size % sizeof(EpollEvent) != 0 ||
        out.size / sizeof(EpollEvent) > 0x7fffffff) {
        raise(PyExc_ValueError,
              "events must hold a whole, non-zero number of struct epoll_event (" +
                  std::to_string(sizeof(EpollEvent)) +
                  " bytes each; numpy.zeros(n, EPOLL_EVENT_DTYPE)), got " +
                  std::to_string(out.size) + " bytes");
    }
    auto maxevents = static_cast<std::uint32_t>(out.size / sizeof(EpollEvent));
    Prepared p;
    prep_epoll_wait(p.sqe, ud, ep, static_cast<EpollEvent*>(out.data), maxevents, f);
    p.pins.push_back(std::move(out.pin));
    return p;
}

// ---------------------------------------------------------------------------------------------
// Messages between rings (see the comment at the top of the file)

// A message whose target CQE is final needs a target that is an open ring of this process
// (checked again at submit, when the reservation is made).
void check_final_target(std::int32_t fd, const char* keyword) {
    if (Ring::find_by_fd(fd) != nullptr) return;
    raise(PyExc_ValueError,
          "fd: " + std::to_string(fd) + " is not an open IoUring of this process, and " + keyword +
              " sends it a final CQE (without CqeFlags.MORE), which would count there as the "
              "final completion of an operation with that user_data and release its memory; "
              "only the rings of this process can be protected from that");
}

Prepared make_msg_ring(py::handle user_data, py::handle fd, py::handle len, py::handle data,
                       py::handle cqe_flags, py::handle more) {
    Prepared p;
    std::uint64_t ud = to_u64(user_data, "user_data");
    std::int32_t target = to_fd(fd, "fd");
    std::uint32_t res = to_res_word(len, "len");
    std::uint64_t value = to_u64(data, "data");
    std::uint32_t flags = to_u32(cqe_flags, "cqe_flags");
    bool keep_more = to_bool(more, "more");
    if ((flags & (cqe_flags::SKIP | cqe_flags::F_32)) != 0) {
        raise(PyExc_ValueError,
              "cqe_flags: CqeFlags.SKIP and CqeFlags.F_32 are refused (they "
              "change how the target ring's CQ is read)");
    }
    if (keep_more) {
        prep_msg_ring_cqe_flags(p.sqe, ud, target, res, value, 0, flags | cqe_flags::MORE);
        return p;
    }
    if ((flags & cqe_flags::MORE) != 0) {
        raise(PyExc_ValueError, "cqe_flags: CqeFlags.MORE with more=False");
    }
    check_final_target(target, "more=False");
    // Without flags to pass the kernel posts flags 0, and FLAGS_PASS (Linux 6.3+) is not needed.
    if (flags == 0) {
        prep_msg_ring(p.sqe, ud, target, res, value, 0);
    } else {
        prep_msg_ring_cqe_flags(p.sqe, ud, target, res, value, 0, flags);
    }
    return p;
}

Prepared make_msg_ring_fd(py::handle user_data, py::handle fd, py::handle source_fd,
                          py::handle target_fd, py::handle data, py::handle post_cqe) {
    Prepared p;
    std::uint64_t ud = to_u64(user_data, "user_data");
    std::int32_t target = to_fd(fd, "fd");
    std::uint32_t source = to_file_index(source_fd, "source_fd", SlotAlloc::Refused);
    std::uint32_t slot = to_file_index(target_fd, "target_fd", SlotAlloc::Allowed);
    std::uint64_t value = to_u64(data, "data");
    bool post = to_bool(post_cqe, "post_cqe");
    if (post) check_final_target(target, "post_cqe=True");
    prep_msg_ring_fd(p.sqe, ud, target, source, slot, value, post ? 0 : msg_ring::CQE_SKIP);
    return p;
}

Prepared make_msg_ring_fd_alloc(py::handle user_data, py::handle fd, py::handle source_fd,
                                py::handle data, py::handle post_cqe) {
    return make_msg_ring_fd(user_data, fd, source_fd, py::int_(kFileIndexAlloc), data, post_cqe);
}

// ---------------------------------------------------------------------------------------------
// waitid and its result object

struct SiginfoResult {
    Siginfo si{};
};

Prepared make_waitid(py::handle user_data, py::handle idtype, py::handle id, py::handle infop,
                     py::handle options, py::handle flags) {
    std::uint64_t ud = to_u64(user_data, "user_data");
    std::uint32_t which = to_u32(idtype, "idtype");
    std::int32_t pid = to_i32(id, "id");
    auto opts = static_cast<std::uint32_t>(to_i32(options, "options"));
    std::uint32_t f = to_u32(flags, "flags");
    check_bits(f, 0, "flags", "no waitid flags are defined: pass 0");
    Prepared p;
    Siginfo* out = nullptr;
    if (!infop.is_none()) {
        PinnedBuffer b = pin_buffer(infop, true, "infop");
        if (b.size < sizeof(Siginfo)) {
            raise(PyExc_ValueError, "infop must be at least " + std::to_string(sizeof(Siginfo)) +
                                        " bytes (a siginfo_t), got " + std::to_string(b.size));
        }
        out = static_cast<Siginfo*>(b.data);
        p.pins.push_back(std::move(b.pin));
    }
    prep_waitid(p.sqe, ud, which, pid, out, opts, f);
    return p;
}

void register_siginfo_class(py::module_& m) {
    using S = SiginfoResult;
    py::class_<S>(m, "Siginfo", py::buffer_protocol(),
                  "The output of a waitid operation: owns a 128-byte siginfo_t and belongs to "
                  "no ring. Pass it as infop; the ring keeps it alive until the completion is "
                  "reaped, after which si_pid, si_status, si_code (os.CLD_*), si_uid and "
                  "si_signo read the result.")
        .def(py::init<>(), "A zeroed siginfo_t.")
        .def_buffer([](S& s) {
            return py::buffer_info(&s.si, 1, py::format_descriptor<std::uint8_t>::format(), 1,
                                   {static_cast<py::ssize_t>(sizeof(Siginfo))}, {1});
        })
        .def_property_readonly(
            "si_signo", [](const S& s) { return s.si.signo; },
            "signal.SIGCHLD once a child was reaped, 0 otherwise.")
        .def_property_readonly(
            "si_errno", [](const S& s) { return s.si.error; },
            "The errno value of siginfo_t (0 for child events).")
        .def_property_readonly(
            "si_code", [](const S& s) { return s.si.code; },
            "os.CLD_EXITED, CLD_KILLED, CLD_DUMPED, CLD_STOPPED, ...")
        .def_property_readonly(
            "si_pid", [](const S& s) { return s.si.pid; },
            "The pid of the child the event is about.")
        .def_property_readonly(
            "si_uid", [](const S& s) { return s.si.uid; }, "The real user id of that child.")
        .def_property_readonly(
            "si_status", [](const S& s) { return s.si.status; },
            "The exit status (CLD_EXITED) or the signal number.")
        .def("__repr__", [](const S& s) {
            char text[128];
            std::snprintf(text, sizeof(text),
                          "<iouring.Siginfo si_signo=%d si_code=%d si_pid=%d si_status=%d>",
                          s.si.signo, s.si.code, s.si.pid, s.si.status);
            return std::string(text);
        });
}

// ---------------------------------------------------------------------------------------------
// Futexes: the word is a buffer export of exactly the futex size (two words with FUTEX2_NUMA,
// whose second word the kernel may write), aligned to that size.

constexpr std::uint32_t kFutexFlagsKnown = futex2::SIZE_MASK | futex2::NUMA | futex2::PRIVATE;

std::uint32_t checked_futex_flags(py::handle h, const char* name) {
    std::uint32_t f = to_u32(h, name);
    check_bits(f, kFutexFlagsKnown, name, "FutexFlags SIZE_*, NUMA, PRIVATE");
    return f;
}

PinnedBuffer pin_futex_word(py::handle obj, std::uint32_t futex_flags, const char* name) {
    std::size_t word = std::size_t{1} << (futex_flags & futex2::SIZE_MASK);
    bool numa = (futex_flags & futex2::NUMA) != 0;
    std::size_t size = numa ? 2 * word : word;
    PinnedBuffer b = pin_buffer(obj, numa, name);
    if (b.size != size) {
        raise(PyExc_ValueError, std::string(name) +
                                    " must be exactly the futex word: " + std::to_string(size) +
                                    " bytes for these futex_flags, got " + std::to_string(b.size) +
                                    " (pass a slice such as memoryview(buf)[i:i+4])");
    }
    if (reinterpret_cast<std::uintptr_t>(b.data) % size != 0) {
        raise(PyExc_ValueError,
              std::string(name) + " must be " + std::to_string(size) + "-byte aligned");
    }
    return b;
}

template <bool Wake>
Prepared make_futex(py::handle user_data, py::handle futex, py::handle val, py::handle mask,
                    py::handle futex_flags, py::handle flags) {
    std::uint64_t ud = to_u64(user_data, "user_data");
    std::uint64_t v = to_u64(val, "val");
    std::uint64_t m = to_u64(mask, "mask");
    std::uint32_t ff = checked_futex_flags(futex_flags, "futex_flags");
    std::uint32_t f = to_u32(flags, "flags");
    check_bits(f, 0, "flags", "no flags are defined for futex operations: pass 0");
    PinnedBuffer word = pin_futex_word(futex, ff, "futex");
    Prepared p;
    if constexpr (Wake) {
        prep_futex_wake(p.sqe, ud, word.data, v, m, ff, f);
    } else {
        prep_futex_wait(p.sqe, ud, word.data, v, m, ff, f);
    }
    p.pins.push_back(std::move(word.pin));
    return p;
}

Prepared make_futex_waitv(py::handle user_data, py::handle futexes, py::handle flags) {
    std::uint64_t ud = to_u64(user_data, "user_data");
    std::uint32_t f = to_u32(flags, "flags");
    check_bits(f, 0, "flags", "no flags are defined for futex operations: pass 0");
    py::sequence items = as_sequence(
        futexes, "futexes must be a sequence of (futex, val) or (futex, val, futex_flags) tuples");
    std::size_t n = py::len(items);
    if (n == 0 || n > kFutexWaitvMax) {
        raise(PyExc_ValueError, "futexes must hold 1.." + std::to_string(kFutexWaitvMax) +
                                    " futexes, got " + std::to_string(n));
    }
    auto array = std::make_shared<std::vector<FutexWaitv>>(n);
    Prepared p;
    p.pins.reserve(n + 1);
    for (std::size_t i = 0; i < n; ++i) {
        py::object item = items[i];
        if (!py::isinstance<py::tuple>(item) || (py::len(item) != 2 && py::len(item) != 3)) {
            raise(PyExc_TypeError,
                  "futexes[" + std::to_string(i) +
                      "] must be a (futex, val) or (futex, val, futex_flags) tuple, not " +
                      type_name(item));
        }
        py::tuple t = py::reinterpret_borrow<py::tuple>(item);
        std::uint32_t ff = t.size() == 3 ? checked_futex_flags(t[2], "futex_flags")
                                         : futex2::SIZE_U32;
        std::uint64_t v = to_u64(t[1], "val");
        PinnedBuffer word = pin_futex_word(t[0], ff, "futex");
        (*array)[i] = FutexWaitv{v, address_of(word.data), ff, 0};
        p.pins.push_back(std::move(word.pin));
    }
    prep_futex_waitv(p.sqe, ud, array->data(), static_cast<std::uint32_t>(n), f);
    p.pins.push_back(std::move(array));
    return p;
}

// ---------------------------------------------------------------------------------------------
// Registered files and NOPs

Prepared make_fixed_fd_install(py::handle user_data, py::handle fd, py::handle flags) {
    Prepared p;
    std::uint64_t ud = to_u64(user_data, "user_data");
    auto slot = static_cast<std::int32_t>(to_file_index(fd, "fd", SlotAlloc::Refused));
    std::uint32_t f = to_u32(flags, "flags");
    check_bits(f, kFixedFdNoCloexec, "flags", "FixedFdFlags.NO_CLOEXEC");
    prep_fixed_fd_install(p.sqe, ud, slot, f);
    return p;
}

Prepared make_files_update(py::handle user_data, py::handle fds, py::handle offset) {
    std::uint64_t ud = to_u64(user_data, "user_data");
    std::uint32_t off = to_u32(offset, "offset");
    bool alloc = off == kFileIndexAlloc;
    Prepared p;
    std::int32_t* array = nullptr;
    std::size_t count = 0;
    if (PyObject_CheckBuffer(fds.ptr()) != 0) {
        // The kernel writes the allocated slots back into the array with FILE_INDEX_ALLOC.
        PinnedBuffer b = pin_buffer(fds, alloc, "fds");
        if (b.size % sizeof(std::int32_t) != 0) {
            raise(PyExc_ValueError,
                  "fds must be an array of C ints (a multiple of 4 bytes: "
                  "array.array('i') or numpy int32), got " +
                      std::to_string(b.size) + " bytes");
        }
        array = static_cast<std::int32_t*>(b.data);
        count = b.size / sizeof(std::int32_t);
        p.pins.push_back(std::move(b.pin));
    } else {
        if (alloc) {
            raise(PyExc_TypeError,
                  "fds must be a writable array of C ints (array.array('i', "
                  "fds)) with FILE_INDEX_ALLOC: the kernel writes the slots "
                  "it allocated back into it");
        }
        if (PyUnicode_Check(fds.ptr()) || PySequence_Check(fds.ptr()) == 0) {
            raise(PyExc_TypeError,
                  "fds must be an array of C ints or a sequence of file "
                  "descriptors, not " +
                      type_name(fds));
        }
        py::sequence items = py::reinterpret_borrow<py::sequence>(fds);
        auto copy = std::make_shared<std::vector<std::int32_t>>();
        for (py::handle item : items) copy->push_back(to_fd(item, "fds"));
        array = copy->data();
        count = copy->size();
        p.pins.push_back(std::move(copy));
    }
    if (count == 0 || count > 0xffffffffu) {
        raise(PyExc_ValueError, "fds must hold at least one file descriptor");
    }
    prep_files_update(p.sqe, ud, array, static_cast<std::uint32_t>(count), off);
    return p;
}

Prepared make_nop_inject(py::handle user_data, py::handle res, py::handle flags) {
    Prepared p;
    std::uint64_t ud = to_u64(user_data, "user_data");
    std::int32_t value = to_i32(res, "res");
    std::uint32_t f = to_u32(flags, "flags");
    check_bits(f, nop_flags::INJECT_RESULT | nop_flags::TW, "flags", "NopFlags TW");
    prep_nop_inject(p.sqe, ud, value, f);
    return p;
}

py::object epoll_event_dtype() {
    return struct_dtype({{"events", "<u4", offsetof(EpollEvent, events)},
                         {"data", "<u8", offsetof(EpollEvent, data)}},
                        sizeof(EpollEvent));
}

void register_control_constants(py::module_& m) {
    FlagEnum<TimeoutFlag>(m, "TimeoutFlags", "Flags of the timeout operations (IORING_TIMEOUT_*).")
        .value("ABS", timeout::ABS)
        .value("UPDATE", timeout::UPDATE)
        .value("BOOTTIME", timeout::BOOTTIME)
        .value("REALTIME", timeout::REALTIME)
        .value("LINK_TIMEOUT_UPDATE", timeout::LINK_TIMEOUT_UPDATE)
        .value("ETIME_SUCCESS", timeout::ETIME_SUCCESS)
        .value("MULTISHOT", timeout::MULTISHOT)
        .finalize();
    FlagEnum<CancelFlag>(m, "CancelFlags", "Match flags of cancel (IORING_ASYNC_CANCEL_*).")
        .value("ALL", cancel::ALL)
        .value("FD", cancel::FD)
        .value("ANY", cancel::ANY)
        .value("FD_FIXED", cancel::FD_FIXED)
        .value("USERDATA", cancel::USERDATA)
        .value("OP", cancel::OP)
        .finalize();
    FlagEnum<PollFlag>(m, "PollFlags", "Command flags of poll_add/poll_update (IORING_POLL_*).")
        .value("ADD_MULTI", poll::ADD_MULTI)
        .value("UPDATE_EVENTS", poll::UPDATE_EVENTS)
        .value("UPDATE_USER_DATA", poll::UPDATE_USER_DATA)
        .value("ADD_LEVEL", poll::ADD_LEVEL)
        .finalize();
    FlagEnum<NopFlag>(m, "NopFlags", "Flags of NOP (IORING_NOP_*).")
        .value("INJECT_RESULT", nop_flags::INJECT_RESULT)
        .value("FILE", nop_flags::FILE)
        .value("FIXED_FILE", nop_flags::FIXED_FILE)
        .value("FIXED_BUFFER", nop_flags::FIXED_BUFFER)
        .value("TW", nop_flags::TW)
        .value("CQE32", nop_flags::CQE32)
        .finalize();
    FlagEnum<FutexFlag>(m, "FutexFlags", "futex2 flags of the futex operations (FUTEX2_*).")
        .value("SIZE_U8", futex2::SIZE_U8)
        .value("SIZE_U16", futex2::SIZE_U16)
        .value("SIZE_U32", futex2::SIZE_U32)
        .value("SIZE_U64", futex2::SIZE_U64)
        .value("NUMA", futex2::NUMA)
        .value("PRIVATE", futex2::PRIVATE)
        .finalize();
    FlagEnum<FixedFdFlag>(m, "FixedFdFlags", "Flags of fixed_fd_install (IORING_FIXED_FD_*).")
        .value("NO_CLOEXEC", kFixedFdNoCloexec)
        .finalize();
    m.attr("FUTEX_BITSET_MATCH_ANY") = kFutexBitsetMatchAny;
    m.attr("FUTEX_WAITV_MAX") = kFutexWaitvMax;
    m.attr("EPOLL_EVENT_SIZE") = sizeof(EpollEvent);
    // epoll_ctl ops (the select module has the EPOLL* event bits but not these).
    m.attr("EPOLL_CTL_ADD") = 1;
    m.attr("EPOLL_CTL_DEL") = 2;
    m.attr("EPOLL_CTL_MOD") = 3;
    m.attr("EPOLL_EVENT_DTYPE") = epoll_event_dtype();
}

}  // namespace

void register_control_ops(py::module_& m, RingClass& ring, SqeClass& sqe) {
    register_control_constants(m);
    register_siginfo_class(m);

    // Every control operation, generated from tools/ops_spec.py by tools/gen_ops.py.
#include "generated/ops_control.inc"
}

}  // namespace iouring::bindings
