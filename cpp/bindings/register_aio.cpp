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
        if (!PyList_Check(tables)) {
            raise(PyExc_TypeError, "tables must be a list, not " + type_name(tables));
        }
        if (!PyType_Check(args[2])) {
            raise(PyExc_TypeError, "future_type must be a type, not " + type_name(args[2]));
        }
        auto* future_type = reinterpret_cast<PyTypeObject*>(args[2]);
        if (invalid_state_error == nullptr) {
            // Looked up on first use (importing iouring does not import asyncio), then kept for
            // the life of the process, like the interned names.
            py::object type = py::module_::import("asyncio").attr("InvalidStateError");
            invalid_state_error = type.release().ptr();
        }
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
        alignas(16) std::byte buffer[chunk_bytes];
        const std::uint32_t stride = r.core().cq().cqe_size();
        const std::uint32_t chunk = chunk_bytes / stride;
        while (!r.closed()) {
            std::uint32_t max = chunk;
            // Every CQE of a round may belong to a batch: take no more than batch_out has room for.
            max = std::min(max, batch_out.capacity - batch_out.used);
            if (max == 0) break;  // the caller empties batch_out and calls again
            std::uint32_t n = r.copy_cqes(buffer, max, 0);
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
        if (error.restore()) return nullptr;
        return PyLong_FromUnsignedLong(batch_out.used);
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
}

}  // namespace iouring::bindings
