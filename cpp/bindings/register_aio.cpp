// The completion side of iouring.aio: one call that submits what is prepared, waits for
// completions when asked to, and resolves the asyncio futures waiting for them, without a
// NumPy array or a Python tuple per completion.
//
// Completions are consumed through Ring::copy_cqes(), the function every reaping path uses, so
// pins are released exactly as they are for copy_cqes() from Python (DESIGN.md section 3,
// rule 1). Handlers are found in per-adapter dicts: bits 55..62 of a single operation's
// user_data pick the dict (the adapter's slot in `tables`), and batch operations (bit 63) are
// copied into an array for the vectorised batch code in aio.py.
#include <Python.h>
#include <structmember.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>

#include "convert.hpp"
#include "module.hpp"

namespace iouring::bindings {

namespace {

constexpr std::uint64_t batch_bit = std::uint64_t{1} << 63;
constexpr unsigned slot_shift = 55;
constexpr std::uint64_t slot_mask = 0xFF;
constexpr std::uint32_t chunk_bytes = 64 * 32;  // CQEs copied per round (64 of CQE32's size)

PyObject* str_set_result = nullptr;
PyObject* str_more = nullptr;
PyObject* str_complete = nullptr;
PyObject* invalid_state_error = nullptr;  // asyncio.InvalidStateError

// Looks asyncio's InvalidStateError, CancelledError and _get_running_loop up on first use
// (importing iouring does not import asyncio), then keeps them for the life of the process,
// like the interned names.
PyObject* cancelled_error = nullptr;   // asyncio.CancelledError
PyObject* get_running_loop = nullptr;  // asyncio.events._get_running_loop (None outside a loop)
void import_asyncio() {
    if (cancelled_error != nullptr) return;
    py::module_ asyncio = py::module_::import("asyncio");
    py::object invalid = asyncio.attr("InvalidStateError");
    py::object cancelled = asyncio.attr("CancelledError");
    py::object running = py::module_::import("asyncio.events").attr("_get_running_loop");
    invalid_state_error = invalid.release().ptr();
    get_running_loop = running.release().ptr();
    cancelled_error = cancelled.release().ptr();
}

// Keeps the first exception a handler raised; later ones are reported as unraisable, so that
// one bad handler does not strand the completions after it.
struct FirstError {
    PyObject* type = nullptr;
    PyObject* value = nullptr;
    PyObject* traceback = nullptr;

    void take() {
        if (type == nullptr) {
            PyErr_Fetch(&type, &value, &traceback);
        } else {
            PyErr_WriteUnraisable(nullptr);
        }
    }
    // Restores the kept exception; true if there was one.
    bool restore() {
        if (type == nullptr) return false;
        PyErr_Restore(type, value, traceback);
        type = value = traceback = nullptr;
        return true;
    }
    ~FirstError() {
        Py_XDECREF(type);
        Py_XDECREF(value);
        Py_XDECREF(traceback);
    }
};

// Calls handler.<name>(res, flags).
void call_handler(PyObject* handler, PyObject* name, std::int32_t res, std::uint32_t flags,
                  FirstError& error) {
    PyObject* args[3] = {handler, PyLong_FromLong(res), PyLong_FromUnsignedLong(flags)};
    PyObject* out = nullptr;
    if (args[1] != nullptr && args[2] != nullptr) {
        out = PyObject_VectorcallMethod(name, args, 3 | PY_VECTORCALL_ARGUMENTS_OFFSET, nullptr);
    }
    Py_XDECREF(args[1]);
    Py_XDECREF(args[2]);
    if (out == nullptr) {
        error.take();
    } else {
        Py_DECREF(out);
    }
}

// Resolves one completion. Futures get set_result(res) (a future already done, because its
// task was cancelled in the same iteration, is skipped); other handlers get more() or
// complete(). Unknown user_data (an operation abandoned by a closed adapter) is ignored: its
// pins were released when it was consumed.
void dispatch_one(PyObject* tables, PyTypeObject* future_type, const Cqe& cqe, FirstError& error) {
    auto slot = static_cast<Py_ssize_t>((cqe.user_data >> slot_shift) & slot_mask);
    if (slot >= PyList_GET_SIZE(tables)) return;
    PyObject* table = PyList_GET_ITEM(tables, slot);
    if (!PyDict_CheckExact(table)) return;
    PyObject* key = PyLong_FromUnsignedLongLong(cqe.user_data);
    if (key == nullptr) {
        error.take();
        return;
    }
    bool more = (cqe.flags & cqe_flags::MORE) != 0;
    PyObject* handler = PyDict_GetItemWithError(table, key);  // borrowed
    if (handler == nullptr) {
        Py_DECREF(key);
        if (PyErr_Occurred() != nullptr) error.take();
        return;
    }
    bool is_future = Py_IS_TYPE(handler, future_type) || PyObject_TypeCheck(handler, future_type);
    if (more) {
        Py_DECREF(key);
        // A future waits for one result only: a non-final completion is not for it.
        if (!is_future) {
            Py_INCREF(handler);
            call_handler(handler, str_more, cqe.res, cqe.flags, error);
            Py_DECREF(handler);
        }
        return;
    }
    Py_INCREF(handler);  // the dict's reference goes with the deletion
    int deleted = PyDict_DelItem(table, key);
    Py_DECREF(key);
    if (deleted != 0) error.take();
    if (is_future) {
        PyObject* res = PyLong_FromLong(cqe.res);
        PyObject* args[2] = {handler, res};
        PyObject* out = res == nullptr
                            ? nullptr
                            : PyObject_VectorcallMethod(str_set_result, args,
                                                        2 | PY_VECTORCALL_ARGUMENTS_OFFSET,
                                                        nullptr);
        Py_XDECREF(res);
        if (out == nullptr) {
            if (PyErr_ExceptionMatches(invalid_state_error) != 0) {
                PyErr_Clear();  // cancelled or resolved already: nobody waits for the result
            } else {
                error.take();
            }
        } else {
            Py_DECREF(out);
        }
    } else {
        call_handler(handler, str_complete, cqe.res, cqe.flags, error);
    }
    Py_DECREF(handler);
}

// A writable, C-contiguous CQE_DTYPE-sized array for the batch completions.
struct BatchOut {
    PyObject* array;
    Py_buffer view{};
    bool acquired = false;
    std::uint32_t capacity = 0;
    std::uint32_t used = 0;

    explicit BatchOut(PyObject* a) : array(a) {}
    BatchOut(const BatchOut&) = delete;
    BatchOut& operator=(const BatchOut&) = delete;
    void acquire() {
        if (PyObject_GetBuffer(array, &view, PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS) != 0) {
            PyErr_Clear();
            raise(PyExc_TypeError, "batch_out must be a writable, contiguous CQE_DTYPE array");
        }
        acquired = true;
        capacity = static_cast<std::uint32_t>(
            std::min<Py_ssize_t>(view.len / static_cast<Py_ssize_t>(sizeof(Cqe)), UINT32_MAX));
    }
    ~BatchOut() {
        if (acquired) PyBuffer_Release(&view);
    }
};

// Submits what is prepared and, unless `wait` is false, waits for one completion (until
// `deadline` when it has one). Completions already ready, or held back in the kernel, end the
// wait before it starts.
//
// The submit runs first with the GIL held and no wait: most completions of an event loop's
// iteration are posted inline while their SQEs are submitted (NOPs, sends, reads of cached
// files, recvs with data queued), and then no GIL release is needed at all. Releasing the GIL
// for one enter that submits and waits costs more than the second enter saves.
void submit_and_wait(Ring& r, bool wait, const Deadline& deadline) {
    IoUring& core = r.core();
    if (core.sq_ready() != 0) r.submit_nowait(false);
    if (wait && core.cq_ready() == 0 && !core.cq_ring_needs_flush()) r.wait_ready(1, deadline);
}

// Consumes every ready completion (batch_out's room permitting): resolves single operations,
// copies batch ones into batch_out. Returns how many completions were consumed.
std::uint32_t dispatch_ready(Ring& r, PyObject* tables, PyTypeObject* future_type,
                             BatchOut& batch_out, FirstError& error) {
    std::uint32_t consumed = 0;
    alignas(16) std::byte buffer[chunk_bytes];
    const std::uint32_t stride = r.core().cq().cqe_size();
    const std::uint32_t chunk = chunk_bytes / stride;
    while (!r.closed()) {
        std::uint32_t max = chunk;
        // Every CQE of a round may belong to a batch: take no more than batch_out has room for.
        max = std::min(max, batch_out.capacity - batch_out.used);
        if (max == 0) break;  // the caller empties batch_out and calls again
        std::uint32_t n = r.copy_cqes(buffer, max, 0);
        consumed += n;
        for (std::uint32_t i = 0; i < n; ++i) {
            Cqe cqe;
            std::memcpy(&cqe, buffer + static_cast<std::size_t>(i) * stride, sizeof(cqe));
            if ((cqe.user_data & batch_bit) != 0) {
                std::memcpy(static_cast<Cqe*>(batch_out.view.buf) + batch_out.used, &cqe,
                            sizeof(cqe));
                ++batch_out.used;
                continue;
            }
            dispatch_one(tables, future_type, cqe, error);
        }
        if (n < max && !r.core().cq_ring_needs_flush() && r.core().cq_ready() == 0) break;
    }
    return consumed;
}

// The checks of aio_dispatch's and aio_flush's tables and future_type; returns the type.
PyTypeObject* check_tables(PyObject* tables, PyObject* future_type) {
    if (!PyList_Check(tables)) {
        raise(PyExc_TypeError, "tables must be a list, not " + type_name(tables));
    }
    if (!PyType_Check(future_type)) {
        raise(PyExc_TypeError, "future_type must be a type, not " + type_name(future_type));
    }
    return reinterpret_cast<PyTypeObject*>(future_type);
}

PyObject* aio_dispatch(PyObject* /*module*/, PyObject* const* args, Py_ssize_t nargs) noexcept {
    try {
        if (nargs < 4 || nargs > 5) {
            raise(PyExc_TypeError,
                  "aio_dispatch(ring, tables, future_type, batch_out, timeout=0.0) takes 4 or 5 "
                  "arguments, got " +
                      std::to_string(nargs));
        }
        Ring& r = ring_of(args[0]);
        PyObject* tables = args[1];
        PyTypeObject* future_type = check_tables(tables, args[2]);
        import_asyncio();
        BatchOut batch_out(args[3]);
        bool wait = false;
        Deadline deadline;
        if (nargs == 5 && args[4] != Py_None) {
            double seconds = PyFloat_AsDouble(args[4]);
            if (seconds == -1.0 && PyErr_Occurred() != nullptr) {
                PyErr_Clear();
                raise(PyExc_TypeError,
                      "timeout must be None or a number of seconds, not " + type_name(args[4]));
            }
            if (std::isnan(seconds)) raise(PyExc_ValueError, "timeout must not be NaN");
            if (seconds > 0) {
                wait = true;
                if (std::isfinite(seconds) && seconds < 1e9) {
                    deadline = std::chrono::steady_clock::now() +
                               std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                   std::chrono::duration<double>(seconds));
                }
            }
        } else if (nargs == 5) {
            wait = true;
        }
        batch_out.acquire();
        if (batch_out.capacity == 0) raise(PyExc_ValueError, "batch_out must not be empty");
        r.check_usable();
        submit_and_wait(r, wait, deadline);

        FirstError error;
        dispatch_ready(r, tables, future_type, batch_out, error);
        if (error.restore()) return nullptr;
        return PyLong_FromUnsignedLong(batch_out.used);
    } catch (...) {
        py::detail::try_translate_exceptions();
        return nullptr;
    }
}

// aio_flush(ring, tables, future_type, batch_out, toggle): the flush of an AsyncRing on an
// ordinary event loop, which watches the ring's eventfd. Submits, then dispatches what is ready
// as aio_dispatch(timeout=0) does. With `toggle`, the eventfd is disabled
// (IORING_CQ_EVENTFD_DISABLED) while completions are reaped here, so the loop is not woken for
// completions already handled: it stays disabled when something was reaped (the adapter polls
// again in the next iteration), and is enabled again when nothing was, followed by one more
// look at the CQ for what was posted while it was off. Returns (batch count, reaped).
PyObject* aio_flush(PyObject* /*module*/, PyObject* const* args, Py_ssize_t nargs) noexcept {
    try {
        if (nargs != 5) {
            raise(PyExc_TypeError,
                  "aio_flush(ring, tables, future_type, batch_out, toggle) takes 5 arguments, "
                  "got " +
                      std::to_string(nargs));
        }
        Ring& r = ring_of(args[0]);
        PyObject* tables = args[1];
        PyTypeObject* future_type = check_tables(tables, args[2]);
        int toggle = PyObject_IsTrue(args[4]);
        if (toggle < 0) throw py::error_already_set();
        import_asyncio();
        BatchOut batch_out(args[3]);
        batch_out.acquire();
        if (batch_out.capacity == 0) raise(PyExc_ValueError, "batch_out must not be empty");
        r.check_usable();
        if (toggle != 0) r.core().cq().eventfd_toggle(false);
        try {
            submit_and_wait(r, false, {});
        } catch (...) {
            if (toggle != 0 && !r.closed()) r.core().cq().eventfd_toggle(true);
            throw;
        }
        FirstError error;
        std::uint32_t reaped = dispatch_ready(r, tables, future_type, batch_out, error);
        if (toggle != 0 && reaped == 0 && !r.closed()) {
            r.core().cq().eventfd_toggle(true);  // fences before the look at the tail
            reaped = dispatch_ready(r, tables, future_type, batch_out, error);
            if (reaped != 0 && !r.closed()) r.core().cq().eventfd_toggle(false);
        }
        if (error.restore()) return nullptr;
        return Py_BuildValue("(IO)", batch_out.used, reaped != 0 ? Py_True : Py_False);
    } catch (...) {
        py::detail::try_translate_exceptions();
        return nullptr;
    }
}

PyObject* aio_has_work(PyObject* /*module*/, PyObject* const* args, Py_ssize_t nargs) noexcept {
    try {
        if (nargs != 2) {
            raise(PyExc_TypeError,
                  "aio_has_work(ring, ignore) takes 2 arguments, got " + std::to_string(nargs));
        }
        Ring& r = ring_of(args[0]);
        std::uint32_t ignore = to_u32(args[1], "ignore");
        r.check_usable();
        IoUring& core = r.core();
        bool busy = core.sq_ready() != 0 || core.cq_ready() != 0 || core.cq_ring_needs_flush() ||
                    r.in_flight() > ignore;
        return PyBool_FromLong(busy ? 1 : 0);
    } catch (...) {
        py::detail::try_translate_exceptions();
        return nullptr;
    }
}

// --- the start of one awaited operation ------------------------------------------------------
//
// _AsyncRingBase is the C part of iouring.aio.AsyncRing (its Python subclass): the state its
// per-await path reads (loop, handler table, user_data counter, flags) lives in this struct, so
// that starting an operation is one C call instead of a dozen attribute loads and stores in
// Python. _start() prepares the SQE, registers a future in the handler table, schedules the
// flush and returns an _AioWait: the awaitable that waits for the future and turns a negative
// result into its OSError, and cancels the operation in the kernel when the awaiting task is
// cancelled. Everything off the fast path (closed adapter, wrong thread, full SQ, cancellation)
// calls back into the Python methods of the subclass (_check_open, _prepare, _abandon).

PyObject* str_thread_id = nullptr;
PyObject* str_check_open = nullptr;
PyObject* str_prepare = nullptr;
PyObject* str_schedule_flush = nullptr;
PyObject* str_abandon = nullptr;
PyObject* str_throw = nullptr;
PyObject* str_close = nullptr;
PyObject* loop_kwnames = nullptr;       // ("loop",)
PyObject* sq_full_error = nullptr;      // iouring.SubmissionQueueFull
PyTypeObject* aio_wait_type = nullptr;  // _AioWait

struct AsyncRingBase {
    PyObject_HEAD
    PyObject* loop;         // _loop
    PyObject* ops;          // _ops: user_data -> handler
    PyObject* new_future;   // _new_future: makes a future of the loop
    PyObject* future_type;  // _future_type: asyncio.Future when future_type(loop=loop) will do
    unsigned long long next_user_data;
    unsigned long long ud_first;
    unsigned long long ud_end;
    char closed;
    char thread_checked;  // the loop is a BaseEventLoop: compare its _thread_id
    char flush_scheduled;
};

struct AioWait {
    PyObject_HEAD
    PyObject* owner;      // the AsyncRing
    PyObject* future;     // null once the result is taken
    PyObject* user_data;  // the operation's user_data (an int)
    PyObject* iter;       // the future's own iterator, made on the first send
};

// tp_traverse, tp_clear and tp_dealloc of a heap type whose only references are `Fields` (the
// type itself is visited and released too, as heap types must).
template <class T, PyObject* T::*... Fields>
struct GcFields {
    static void clear_one(PyObject*& field) noexcept { Py_CLEAR(field); }
    static int traverse(PyObject* obj, visitproc visit, void* arg) noexcept {
        Py_VISIT(Py_TYPE(obj));
        T* self = reinterpret_cast<T*>(obj);
        int ret = 0;
        ((ret = ret == 0 && self->*Fields != nullptr ? visit(self->*Fields, arg) : ret), ...);
        return ret;
    }
    static int clear(PyObject* obj) noexcept {
        T* self = reinterpret_cast<T*>(obj);
        (clear_one(self->*Fields), ...);
        return 0;
    }
    static void dealloc(PyObject* obj) noexcept {
        PyTypeObject* type = Py_TYPE(obj);
        PyObject_GC_UnTrack(obj);
        clear(obj);
        type->tp_free(obj);
        Py_DECREF(type);
    }
};

// True when the call comes from the running loop of the adapter, which is then open: what
// _check_open() would accept, without asyncio.get_running_loop()'s getpid() per call.
bool on_loop(AsyncRingBase* self) {
    if (self->closed != 0) return false;
    if (self->thread_checked != 0) {
        PyObject* tid = PyObject_GetAttr(self->loop, str_thread_id);
        if (tid == nullptr) {
            PyErr_Clear();
            return false;
        }
        bool ok = false;
        if (PyLong_CheckExact(tid)) {
            unsigned long value = PyLong_AsUnsignedLong(tid);
            if (value == static_cast<unsigned long>(-1) && PyErr_Occurred() != nullptr) {
                PyErr_Clear();
            } else {
                ok = value == PyThread_get_thread_ident();
            }
        }
        Py_DECREF(tid);
        return ok;
    }
    PyObject* running = PyObject_CallNoArgs(get_running_loop);
    if (running == nullptr) {
        PyErr_Clear();
        return false;
    }
    bool ok = running == self->loop;
    Py_DECREF(running);
    return ok;
}

// Calls self.<name>(*args) and drops the result; false with the exception set on failure.
template <class... Args>
bool call_method(PyObject* self, PyObject* name, Args... args) {
    PyObject* out = PyObject_CallMethodObjArgs(self, name, args..., nullptr);
    if (out == nullptr) return false;
    Py_DECREF(out);
    return true;
}

// The SubmissionQueueFull path: self._prepare(method, user_data, args, kwargs), which submits
// to make room and retries.
bool prepare_slowly(PyObject* self, PyObject* method, PyObject* user_data, PyObject* const* args,
                    Py_ssize_t nargs, PyObject* kwnames) {
    PyObject* tuple = PyTuple_New(nargs);
    if (tuple == nullptr) return false;
    for (Py_ssize_t i = 0; i < nargs; ++i) PyTuple_SET_ITEM(tuple, i, Py_NewRef(args[i]));
    PyObject* kwargs = Py_NewRef(Py_None);
    if (kwnames != nullptr && PyTuple_GET_SIZE(kwnames) != 0) {
        Py_DECREF(kwargs);
        kwargs = PyDict_New();
        for (Py_ssize_t i = 0; kwargs != nullptr && i < PyTuple_GET_SIZE(kwnames); ++i) {
            if (PyDict_SetItem(kwargs, PyTuple_GET_ITEM(kwnames, i), args[nargs + i]) != 0) {
                Py_CLEAR(kwargs);
            }
        }
    }
    bool ok = kwargs != nullptr && call_method(self, str_prepare, method, user_data, tuple, kwargs);
    Py_DECREF(tuple);
    Py_XDECREF(kwargs);
    return ok;
}

// Starts method(user_data, *args, **kwargs) with a new user_data and a future registered for
// its completion; new references in *user_data_out and *future_out. args[0] is the method.
bool start_operation(PyObject* obj, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames,
                     PyObject** user_data_out, PyObject** future_out) {
    auto* self = reinterpret_cast<AsyncRingBase*>(obj);
    if (nargs < 1) {
        PyErr_SetString(PyExc_TypeError, "_start(method, *args, **kwargs) needs the method");
        return false;
    }
    if (self->loop == nullptr || self->ops == nullptr || self->new_future == nullptr) {
        PyErr_SetString(PyExc_ValueError, "AsyncRing.__init__() did not finish");
        return false;
    }
    if (!on_loop(self) && !call_method(obj, str_check_open)) return false;
    unsigned long long value = self->next_user_data;
    self->next_user_data = value + 1 >= self->ud_end ? (self->ud_first | 1) : value + 1;
    PyObject* user_data = PyLong_FromUnsignedLongLong(value);
    if (user_data == nullptr) return false;

    // method(user_data, *args[1:], **kwargs): the arguments moved one place down.
    PyObject* method = args[0];
    Py_ssize_t nkw = kwnames != nullptr ? PyTuple_GET_SIZE(kwnames) : 0;
    Py_ssize_t total = nargs + nkw;
    PyObject* small[8];
    PyObject** stack = small;
    if (total > 8) {
        stack = static_cast<PyObject**>(PyMem_Malloc(sizeof(PyObject*) * std::size_t(total)));
        if (stack == nullptr) {
            Py_DECREF(user_data);
            PyErr_NoMemory();
            return false;
        }
    }
    stack[0] = user_data;
    for (Py_ssize_t i = 1; i < total; ++i) stack[i] = args[i];
    PyObject* sqe = PyObject_Vectorcall(method, stack, std::size_t(nargs), kwnames);
    if (stack != small) PyMem_Free(stack);
    bool prepared = sqe != nullptr;
    Py_XDECREF(sqe);
    if (!prepared && PyErr_ExceptionMatches(sq_full_error) != 0) {
        PyErr_Clear();
        prepared = prepare_slowly(obj, method, user_data, args + 1, nargs - 1, kwnames);
    }
    if (!prepared) {
        Py_DECREF(user_data);
        return false;
    }

    PyObject* future = nullptr;
    if (self->future_type != nullptr && self->future_type != Py_None) {
        future = PyObject_Vectorcall(self->future_type, &self->loop, 0, loop_kwnames);
    } else {
        future = PyObject_CallNoArgs(self->new_future);
    }
    int stored = -1;
    if (future != nullptr) {
        stored = PyDict_CheckExact(self->ops) ? PyDict_SetItem(self->ops, user_data, future)
                                              : PyObject_SetItem(self->ops, user_data, future);
    }
    if (stored != 0 || (self->flush_scheduled == 0 && !call_method(obj, str_schedule_flush))) {
        Py_XDECREF(future);
        Py_DECREF(user_data);
        return false;
    }
    *user_data_out = user_data;
    *future_out = future;
    return true;
}

PyObject* base_start(PyObject* self, PyObject* const* args, Py_ssize_t nargs,
                     PyObject* kwnames) noexcept {
    PyObject* user_data = nullptr;
    PyObject* future = nullptr;
    if (!start_operation(self, args, nargs, kwnames, &user_data, &future)) return nullptr;
    AioWait* wait = PyObject_GC_New(AioWait, aio_wait_type);
    if (wait == nullptr) {
        Py_DECREF(user_data);
        Py_DECREF(future);
        return nullptr;
    }
    wait->owner = Py_NewRef(self);
    wait->future = future;
    wait->user_data = user_data;
    wait->iter = nullptr;
    PyObject_GC_Track(wait);
    return reinterpret_cast<PyObject*>(wait);
}

PyObject* base_begin(PyObject* self, PyObject* const* args, Py_ssize_t nargs,
                     PyObject* kwnames) noexcept {
    PyObject* user_data = nullptr;
    PyObject* future = nullptr;
    if (!start_operation(self, args, nargs, kwnames, &user_data, &future)) return nullptr;
    PyObject* pair = PyTuple_Pack(2, user_data, future);
    Py_DECREF(user_data);
    Py_DECREF(future);
    return pair;
}

PyObject* base_new(PyTypeObject* type, PyObject* /*args*/, PyObject* /*kwargs*/) noexcept {
    PyObject* obj = type->tp_alloc(type, 0);
    if (obj != nullptr) reinterpret_cast<AsyncRingBase*>(obj)->closed = 1;  // until __init__
    return obj;
}

using BaseGc = GcFields<AsyncRingBase, &AsyncRingBase::loop, &AsyncRingBase::ops,
                        &AsyncRingBase::new_future, &AsyncRingBase::future_type>;

PyMethodDef base_methods[] = {
    {"_start", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(&base_start)),
     METH_FASTCALL | METH_KEYWORDS,
     "_start($self, method, /, *args, **kwargs)\n--\n\n"
     "Starts method(user_data, *args, **kwargs) (a one-call ring method preparing one SQE) "
     "with a new user_data, registers a future for its completion and schedules the flush; "
     "returns the awaitable of its result: Cqe.res, or the OSError of a negative res. "
     "Cancelling the awaiting task calls _abandon(user_data). Raises what _check_open() and "
     "the method raise (a full SQ goes through _prepare())."},
    {"_begin", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(&base_begin)),
     METH_FASTCALL | METH_KEYWORDS,
     "_begin($self, method, /, *args, **kwargs)\n--\n\n"
     "Like _start() but returns (user_data, future): the future resolves to the raw res."},
    {nullptr, nullptr, 0, nullptr},
};

PyMemberDef base_members[] = {
    {"_loop", T_OBJECT_EX, offsetof(AsyncRingBase, loop), 0, "The adapter's event loop."},
    {"_ops", T_OBJECT_EX, offsetof(AsyncRingBase, ops), 0, "user_data -> handler."},
    {"_new_future", T_OBJECT_EX, offsetof(AsyncRingBase, new_future), 0,
     "Makes a future of the loop."},
    {"_future_type", T_OBJECT_EX, offsetof(AsyncRingBase, future_type), 0,
     "asyncio.Future when future_type(loop=loop) makes the loop's futures, else None."},
    {"_next_user_data", T_ULONGLONG, offsetof(AsyncRingBase, next_user_data), 0,
     "The next single operation's user_data."},
    {"_ud_first", T_ULONGLONG, offsetof(AsyncRingBase, ud_first), 0,
     "The first user_data of the adapter's slot."},
    {"_ud_end", T_ULONGLONG, offsetof(AsyncRingBase, ud_end), 0,
     "One past the last user_data of the slot."},
    {"_closed", T_BOOL, offsetof(AsyncRingBase, closed), 0, "True once closed."},
    {"_thread_checked", T_BOOL, offsetof(AsyncRingBase, thread_checked), 0,
     "The loop is a BaseEventLoop (its _thread_id says where it runs)."},
    {"_flush_scheduled", T_BOOL, offsetof(AsyncRingBase, flush_scheduled), 0,
     "A flush is scheduled (or the loop's wait submits)."},
    {nullptr, 0, 0, 0, nullptr},
};

PyType_Slot base_slots[] = {
    {Py_tp_doc, const_cast<char*>("The C part of iouring.aio.AsyncRing: the state of its "
                                  "per-await path and _start()/_begin().")},
    {Py_tp_new, reinterpret_cast<void*>(&base_new)},
    {Py_tp_dealloc, reinterpret_cast<void*>(&BaseGc::dealloc)},
    {Py_tp_traverse, reinterpret_cast<void*>(&BaseGc::traverse)},
    {Py_tp_clear, reinterpret_cast<void*>(&BaseGc::clear)},
    {Py_tp_methods, base_methods},
    {Py_tp_members, base_members},
    {0, nullptr},
};

PyType_Spec base_spec = {
    "iouring._core._AsyncRingBase",
    sizeof(AsyncRingBase),
    0,
    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    base_slots,
};

// --- _AioWait ----------------------------------------------------------------------------

void wait_release(AioWait* self) {
    Py_CLEAR(self->future);
    Py_CLEAR(self->iter);
}

// The task awaiting the operation was cancelled: owner._abandon(user_data) cancels it in the
// kernel. The CancelledError stays the exception raised (an error of _abandon replaces it,
// with the CancelledError as its context, as an except block in Python would).
void wait_abandon(AioWait* self) {
    PyObject *type = nullptr, *value = nullptr, *traceback = nullptr;
    PyErr_Fetch(&type, &value, &traceback);
    PyErr_NormalizeException(&type, &value, &traceback);
    if (traceback != nullptr && value != nullptr) PyException_SetTraceback(value, traceback);
    if (call_method(self->owner, str_abandon, self->user_data)) {
        PyErr_Restore(type, value, traceback);
        return;
    }
    PyObject *type2 = nullptr, *value2 = nullptr, *traceback2 = nullptr;
    PyErr_Fetch(&type2, &value2, &traceback2);
    PyErr_NormalizeException(&type2, &value2, &traceback2);
    if (value2 != nullptr && value != nullptr) {
        PyException_SetContext(value2, value);  // steals value
        value = nullptr;
    }
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(traceback);
    PyErr_Restore(type2, value2, traceback2);
}

PySendResult wait_send(PyObject* obj, PyObject* arg, PyObject** result) noexcept {
    auto* self = reinterpret_cast<AioWait*>(obj);
    *result = nullptr;
    if (self->future == nullptr) {
        PyErr_SetString(PyExc_RuntimeError, "cannot reuse already awaited operation");
        return PYGEN_ERROR;
    }
    if (self->iter == nullptr) {
        PyAsyncMethods* async = Py_TYPE(self->future)->tp_as_async;
        self->iter = async != nullptr && async->am_await != nullptr
                         ? async->am_await(self->future)
                         : PyObject_CallMethod(self->future, "__await__", nullptr);
        if (self->iter == nullptr) return PYGEN_ERROR;
    }
    PySendResult state = PyIter_Send(self->iter, arg, result);
    if (state == PYGEN_NEXT) return state;
    wait_release(self);
    if (state == PYGEN_RETURN) {
        PyObject* value = *result;
        if (value != nullptr && PyLong_CheckExact(value)) {
            long res = PyLong_AsLong(value);
            if (res < 0 && res > INT32_MIN) {
                Py_CLEAR(*result);
                int code = static_cast<int>(-res);
                PyObject* exc = PyObject_CallFunction(PyExc_OSError, "is", code,
                                                      std::strerror(code));
                if (exc != nullptr) {
                    PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(exc)), exc);
                    Py_DECREF(exc);
                }
                return PYGEN_ERROR;
            }
            if (res == -1 && PyErr_Occurred() != nullptr) PyErr_Clear();
        }
        return PYGEN_RETURN;
    }
    if (PyErr_ExceptionMatches(cancelled_error) != 0) wait_abandon(self);
    return PYGEN_ERROR;
}

// StopIteration(value) raised: the return of an iterator's __next__/send.
PyObject* stop_with(PyObject* value) {
    if (value == nullptr) return nullptr;
    if (value == Py_None) {
        Py_DECREF(value);
        PyErr_SetNone(PyExc_StopIteration);
        return nullptr;
    }
    PyObject* stop = PyObject_CallOneArg(PyExc_StopIteration, value);
    Py_DECREF(value);
    if (stop != nullptr) {
        PyErr_SetObject(PyExc_StopIteration, stop);
        Py_DECREF(stop);
    }
    return nullptr;
}

PyObject* wait_iternext(PyObject* obj) noexcept {
    PyObject* result = nullptr;
    PySendResult state = wait_send(obj, Py_None, &result);
    if (state == PYGEN_NEXT) return result;
    if (state == PYGEN_RETURN) return stop_with(result);
    return nullptr;
}

PyObject* wait_send_method(PyObject* obj, PyObject* arg) noexcept {
    PyObject* result = nullptr;
    PySendResult state = wait_send(obj, arg, &result);
    if (state == PYGEN_NEXT) return result;
    if (state == PYGEN_RETURN) return stop_with(result);
    return nullptr;
}

PyObject* wait_throw(PyObject* obj, PyObject* const* args, Py_ssize_t nargs) noexcept {
    auto* self = reinterpret_cast<AioWait*>(obj);
    if (nargs < 1 || nargs > 3) {
        PyErr_SetString(PyExc_TypeError, "throw expected 1 to 3 arguments");
        return nullptr;
    }
    if (self->future != nullptr && PyErr_GivenExceptionMatches(args[0], cancelled_error) != 0) {
        if (!call_method(self->owner, str_abandon, self->user_data)) {
            wait_release(self);
            return nullptr;
        }
    }
    // The future's own iterator raises what was thrown, as `await future` would.
    PyObject* iter = self->iter;
    if (iter == nullptr && self->future != nullptr) {
        PyAsyncMethods* async = Py_TYPE(self->future)->tp_as_async;
        iter = async != nullptr && async->am_await != nullptr
                   ? async->am_await(self->future)
                   : PyObject_CallMethod(self->future, "__await__", nullptr);
        if (iter == nullptr) return nullptr;
    } else if (iter != nullptr) {
        Py_INCREF(iter);
    }
    wait_release(self);
    if (iter == nullptr) {
        // Already finished: raise the exception as given.
        PyObject* exc = args[0];
        if (PyExceptionInstance_Check(exc)) {
            PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(exc)), exc);
        } else {
            PyErr_SetObject(exc, nargs > 1 ? args[1] : Py_None);
        }
        return nullptr;
    }
    PyObject* method = PyObject_GetAttr(iter, str_throw);
    Py_DECREF(iter);
    if (method == nullptr) return nullptr;
    PyObject* out = PyObject_Vectorcall(method, args, std::size_t(nargs), nullptr);
    Py_DECREF(method);
    return out;
}

PyObject* wait_close(PyObject* obj, PyObject* /*unused*/) noexcept {
    auto* self = reinterpret_cast<AioWait*>(obj);
    PyObject* iter = self->iter;
    self->iter = nullptr;
    Py_CLEAR(self->future);
    if (iter != nullptr) {
        PyObject* out = PyObject_CallMethodNoArgs(iter, str_close);
        Py_DECREF(iter);
        if (out == nullptr) return nullptr;
        Py_DECREF(out);
    }
    Py_RETURN_NONE;
}

PyObject* wait_await(PyObject* obj) noexcept { return Py_NewRef(obj); }

using WaitGc =
    GcFields<AioWait, &AioWait::owner, &AioWait::future, &AioWait::user_data, &AioWait::iter>;

PyMethodDef wait_methods[] = {
    {"send", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(&wait_send_method)), METH_O,
     "send($self, value, /)\n--\n\nResumes the wait (as a generator's send)."},
    {"throw", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(&wait_throw)),
     METH_FASTCALL,
     "throw($self, exc, value=None, tb=None, /)\n--\n\nRaises exc at the wait; a CancelledError "
     "cancels the operation first."},
    {"close", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(&wait_close)), METH_NOARGS,
     "close(): stops waiting (the operation's completion is still reaped)."},
    {nullptr, nullptr, 0, nullptr},
};

PyType_Slot wait_slots[] = {
    {Py_tp_doc, const_cast<char*>("The awaitable of one AsyncRing operation (from _start).")},
    {Py_tp_dealloc, reinterpret_cast<void*>(&WaitGc::dealloc)},
    {Py_tp_traverse, reinterpret_cast<void*>(&WaitGc::traverse)},
    {Py_tp_clear, reinterpret_cast<void*>(&WaitGc::clear)},
    {Py_tp_iter, reinterpret_cast<void*>(&PyObject_SelfIter)},
    {Py_tp_iternext, reinterpret_cast<void*>(&wait_iternext)},
    {Py_tp_methods, wait_methods},
    {Py_am_await, reinterpret_cast<void*>(&wait_await)},
    {Py_am_send, reinterpret_cast<void*>(&wait_send)},
    {0, nullptr},
};

PyType_Spec wait_spec = {
    "iouring._core._AioWait",
    sizeof(AioWait),
    0,
    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    wait_slots,
};

PyMethodDef aio_methods[] = {
    {"aio_dispatch", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(&aio_dispatch)),
     METH_FASTCALL,
     "aio_dispatch(ring, tables, future_type, batch_out, timeout=0.0, /)\n--\n\n"
     "The completion pump of iouring.aio: submits the prepared SQEs of ring, waits for a "
     "completion unless timeout is 0 (None: without a limit; seconds: at most that long, "
     "with the GIL released and Ctrl-C raising KeyboardInterrupt), then consumes every ready "
     "completion. A single operation's handler is tables[(user_data >> 55) & 0xFF][user_data] "
     "(a dict): future_type instances get set_result(res), other handlers more(res, flags) "
     "for a completion flagged MORE and complete(res, flags) for the final one (which also "
     "removes it from the dict). Completions with bit 63 of user_data set (batches) are copied "
     "into batch_out (a writable CQE_DTYPE array) instead; returns how many. Call again after "
     "processing them when that count is batch_out's size. Raises TypeError for bad arguments, "
     "ValueError for a closed ring, OSError from io_uring_enter, and the first exception a "
     "handler raised (after dispatching the rest)."},
    {"aio_flush", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(&aio_flush)),
     METH_FASTCALL,
     "aio_flush(ring, tables, future_type, batch_out, toggle, /)\n--\n\n"
     "The flush of iouring.aio on an ordinary event loop: submits the prepared SQEs and "
     "dispatches the ready completions as aio_dispatch(..., 0.0) does. With toggle true the "
     "ring's eventfd is disabled while it reaps (IORING_CQ_EVENTFD_DISABLED); it is left "
     "disabled when a completion was reaped, and enabled again (then the CQ looked at once "
     "more) when none was. Returns (batch completions copied into batch_out, reaped). Raises "
     "TypeError for bad arguments, ValueError for a closed ring, OSError from io_uring_enter "
     "(the eventfd enabled again), and the first exception a handler raised."},
    {"aio_has_work", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(&aio_has_work)),
     METH_FASTCALL,
     "aio_has_work(ring, ignore, /)\n--\n\n"
     "True when ring has io_uring work for an event loop's wait: SQEs prepared and not yet "
     "submitted, completions ready or held back in the kernel, or more than ignore operations "
     "in flight (an event loop passes 1 while its own poll of the epoll fd is armed). One C "
     "call per loop iteration instead of three properties. Raises TypeError for a non-ring, "
     "ValueError for a closed ring."},
    {nullptr, nullptr, 0, nullptr},
};

}  // namespace

void register_aio(py::module_& m) {
    str_set_result = PyUnicode_InternFromString("set_result");
    str_more = PyUnicode_InternFromString("more");
    str_complete = PyUnicode_InternFromString("complete");
    if (str_set_result == nullptr || str_more == nullptr || str_complete == nullptr) {
        throw py::error_already_set();
    }

    if (PyModule_AddFunctions(m.ptr(), aio_methods) != 0) throw py::error_already_set();

    str_thread_id = PyUnicode_InternFromString("_thread_id");
    str_check_open = PyUnicode_InternFromString("_check_open");
    str_prepare = PyUnicode_InternFromString("_prepare");
    str_schedule_flush = PyUnicode_InternFromString("_schedule_flush");
    str_abandon = PyUnicode_InternFromString("_abandon");
    str_throw = PyUnicode_InternFromString("throw");
    str_close = PyUnicode_InternFromString("close");
    loop_kwnames = Py_BuildValue("(s)", "loop");
    if (str_thread_id == nullptr || str_check_open == nullptr || str_prepare == nullptr ||
        str_schedule_flush == nullptr || str_abandon == nullptr || str_throw == nullptr ||
        str_close == nullptr || loop_kwnames == nullptr) {
        throw py::error_already_set();
    }
    sq_full_error = py::object(m.attr("SubmissionQueueFull")).release().ptr();
    PyObject* base = PyType_FromSpec(&base_spec);
    if (base == nullptr || PyModule_AddObjectRef(m.ptr(), "_AsyncRingBase", base) != 0) {
        Py_XDECREF(base);
        throw py::error_already_set();
    }
    Py_DECREF(base);
    // Kept for the life of the process (the module's reference and ours).
    aio_wait_type = reinterpret_cast<PyTypeObject*>(PyType_FromSpec(&wait_spec));
    if (aio_wait_type == nullptr ||
        PyModule_AddObjectRef(m.ptr(), "_AioWait", reinterpret_cast<PyObject*>(aio_wait_type)) !=
            0) {
        throw py::error_already_set();
    }
}

}  // namespace iouring::bindings
