// Completions: the Cqe type, CQE_DTYPE (the kernel's 16-byte io_uring_cqe as NumPy sees it) and
// CQE32_DTYPE (the 32-byte entries of IORING_SETUP_CQE32 rings).
//
// Cqe is written against the C API rather than as a pybind11 class: copy_cqe() makes one per
// call, and a C object holding the fields as C values is created with one allocation and no
// int objects (pybind11's instance plus holder cost about 80 ns more per completion). Fields
// become ints only when read.
#include "cqe_object.hpp"

#include <cstdio>
#include <cstring>
#include <string>

#include "convert.hpp"
#include "dtype.hpp"
#include "module.hpp"

namespace iouring::bindings {

namespace {

struct CqeObject {
    PyObject_HEAD
    std::uint64_t user_data;
    std::int32_t res;
    std::uint32_t flags;
    std::uint64_t big_cqe[2];
    bool has_big_cqe;  // from a CQE32 ring, or given to the constructor
};

PyTypeObject* cqe_type = nullptr;
PyObject* cqe16_dtype = nullptr;  // never released: the module lives until exit
PyObject* cqe32_dtype = nullptr;

CqeObject* as_cqe(PyObject* self) { return reinterpret_cast<CqeObject*>(self); }

CqeObject* new_cqe(PyTypeObject* type) {
    // PyObject_New takes a reference to a heap type; cqe_dealloc gives it back.
    return PyObject_New(CqeObject, type);
}

// Runs `body` (which may throw the bindings' C++ exceptions) inside a C slot, turning an
// exception into a set Python error and `failed`.
template <typename Body>
PyObject* guarded(Body&& body) {
    try {
        return body();
    } catch (py::error_already_set& e) {
        e.restore();
    } catch (const std::exception& e) {
        PyErr_SetString(PyExc_RuntimeError, e.what());
    }
    return nullptr;
}

void cqe_dealloc(PyObject* self) {
    PyTypeObject* type = Py_TYPE(self);
    PyObject_Free(self);
    Py_DECREF(type);
}

PyObject* cqe_new(PyTypeObject* type, PyObject* args, PyObject* kwargs) {
    static const char* keywords[] = {"user_data", "res", "flags", "big_cqe", nullptr};
    PyObject* user_data = nullptr;
    PyObject* res = nullptr;
    PyObject* flags = nullptr;
    PyObject* big = nullptr;
    if (PyArg_ParseTupleAndKeywords(args, kwargs, "|OOOO:Cqe", const_cast<char**>(keywords),
                                    &user_data, &res, &flags, &big) == 0) {
        return nullptr;
    }
    return guarded([&]() -> PyObject* {
        Cqe cqe{};
        if (user_data != nullptr) cqe.user_data = to_u64(user_data, "user_data");
        if (res != nullptr) cqe.res = to_i32(res, "res");
        if (flags != nullptr) cqe.flags = to_u32(flags, "flags");
        std::uint64_t extra[2] = {0, 0};
        bool has_big = big != nullptr && big != Py_None;
        if (has_big) {
            py::object seq = py::reinterpret_borrow<py::object>(big);
            if (PySequence_Check(big) == 0 || PySequence_Size(big) != 2) {
                PyErr_Clear();
                raise(PyExc_TypeError, "big_cqe must be None or a pair of ints (0..2**64-1)");
            }
            extra[0] = to_u64(seq[py::int_(0)], "big_cqe[0]");
            extra[1] = to_u64(seq[py::int_(1)], "big_cqe[1]");
        }
        CqeObject* self = new_cqe(type);
        if (self == nullptr) return nullptr;
        self->user_data = cqe.user_data;
        self->res = cqe.res;
        self->flags = cqe.flags;
        self->big_cqe[0] = extra[0];
        self->big_cqe[1] = extra[1];
        self->has_big_cqe = has_big;
        return reinterpret_cast<PyObject*>(self);
    });
}

PyObject* big_cqe_tuple(const CqeObject* c) {
    if (!c->has_big_cqe) Py_RETURN_NONE;
    PyObject* first = PyLong_FromUnsignedLongLong(c->big_cqe[0]);
    PyObject* second = first != nullptr ? PyLong_FromUnsignedLongLong(c->big_cqe[1]) : nullptr;
    if (second == nullptr) {
        Py_XDECREF(first);
        return nullptr;
    }
    PyObject* pair = PyTuple_Pack(2, first, second);
    Py_DECREF(first);
    Py_DECREF(second);
    return pair;
}

PyObject* get_user_data(PyObject* self, void*) {
    return PyLong_FromUnsignedLongLong(as_cqe(self)->user_data);
}
PyObject* get_res(PyObject* self, void*) { return PyLong_FromLong(as_cqe(self)->res); }
PyObject* get_flags(PyObject* self, void*) { return PyLong_FromUnsignedLong(as_cqe(self)->flags); }
PyObject* get_big_cqe(PyObject* self, void*) { return big_cqe_tuple(as_cqe(self)); }

template <std::uint32_t Flag>
PyObject* get_flag(PyObject* self, void*) {
    return PyBool_FromLong((as_cqe(self)->flags & Flag) != 0 ? 1 : 0);
}

PyObject* get_buffer_id(PyObject* self, void*) {
    std::uint32_t flags = as_cqe(self)->flags;
    if ((flags & cqe_flags::BUFFER) == 0) Py_RETURN_NONE;
    return PyLong_FromUnsignedLong(flags >> cqe_flags::BUFFER_SHIFT);
}

PyObject* get_dtype(PyObject* self, void*) {
    PyObject* dtype = as_cqe(self)->has_big_cqe ? cqe32_dtype : cqe16_dtype;
    Py_INCREF(dtype);
    return dtype;
}

// The fields as a tuple: (user_data, res, flags), plus the big_cqe pair when it is not zero
// (so a Cqe without big_cqe and one with (0, 0) hash alike, as they compare equal).
PyObject* key_tuple(const CqeObject* c, bool with_big) {
    if (with_big) {
        return Py_BuildValue("(KiIKK)", static_cast<unsigned long long>(c->user_data), c->res,
                             c->flags, static_cast<unsigned long long>(c->big_cqe[0]),
                             static_cast<unsigned long long>(c->big_cqe[1]));
    }
    return Py_BuildValue("(KiI)", static_cast<unsigned long long>(c->user_data), c->res, c->flags);
}

bool big_is_zero(const CqeObject* c) {
    return !c->has_big_cqe || (c->big_cqe[0] == 0 && c->big_cqe[1] == 0);
}

PyObject* cqe_richcompare(PyObject* a, PyObject* b, int op) {
    if ((op != Py_EQ && op != Py_NE) || Py_TYPE(b) != cqe_type || Py_TYPE(a) != cqe_type) {
        Py_RETURN_NOTIMPLEMENTED;
    }
    const CqeObject* x = as_cqe(a);
    const CqeObject* y = as_cqe(b);
    // A missing big_cqe (16-byte rings, Cqe(user_data, res, flags)) equals (0, 0).
    std::uint64_t xb0 = x->has_big_cqe ? x->big_cqe[0] : 0;
    std::uint64_t xb1 = x->has_big_cqe ? x->big_cqe[1] : 0;
    std::uint64_t yb0 = y->has_big_cqe ? y->big_cqe[0] : 0;
    std::uint64_t yb1 = y->has_big_cqe ? y->big_cqe[1] : 0;
    bool equal = x->user_data == y->user_data && x->res == y->res && x->flags == y->flags &&
                 xb0 == yb0 && xb1 == yb1;
    return PyBool_FromLong((equal == (op == Py_EQ)) ? 1 : 0);
}

Py_hash_t cqe_hash(PyObject* self) {
    PyObject* key = key_tuple(as_cqe(self), !big_is_zero(as_cqe(self)));
    if (key == nullptr) return -1;
    Py_hash_t hash = PyObject_Hash(key);
    Py_DECREF(key);
    return hash;
}

PyObject* cqe_iter(PyObject* self) {
    PyObject* fields = key_tuple(as_cqe(self), false);
    if (fields == nullptr) return nullptr;
    PyObject* it = PyObject_GetIter(fields);
    Py_DECREF(fields);
    return it;
}

PyObject* cqe_repr(PyObject* self) {
    const CqeObject* c = as_cqe(self);
    char text[160];
    int n = std::snprintf(text, sizeof(text), "Cqe(user_data=%#llx, res=%d, flags=%#x",
                          static_cast<unsigned long long>(c->user_data), c->res, c->flags);
    if (c->has_big_cqe && n > 0 && static_cast<std::size_t>(n) < sizeof(text)) {
        std::snprintf(text + n, sizeof(text) - static_cast<std::size_t>(n),
                      ", big_cqe=(%#llx, %#llx)", static_cast<unsigned long long>(c->big_cqe[0]),
                      static_cast<unsigned long long>(c->big_cqe[1]));
    }
    std::string out(text);
    out += ")";
    return PyUnicode_FromStringAndSize(out.data(), static_cast<Py_ssize_t>(out.size()));
}

// cqe["res"]: a Cqe reads like a CQE_DTYPE (or CQE32_DTYPE) record.
PyObject* cqe_subscript(PyObject* self, PyObject* key) {
    if (PyUnicode_Check(key) != 0) {
        const char* name = PyUnicode_AsUTF8(key);
        if (name == nullptr) return nullptr;
        if (std::strcmp(name, "user_data") == 0) return get_user_data(self, nullptr);
        if (std::strcmp(name, "res") == 0) return get_res(self, nullptr);
        if (std::strcmp(name, "flags") == 0) return get_flags(self, nullptr);
        if (std::strcmp(name, "big_cqe") == 0 && as_cqe(self)->has_big_cqe) {
            return get_big_cqe(self, nullptr);
        }
    }
    PyErr_SetObject(PyExc_KeyError, key);
    return nullptr;
}

PyObject* cqe_result(PyObject* self, PyObject*) {
    std::int32_t res = as_cqe(self)->res;
    if (res < 0) {
        PyObject* args = Py_BuildValue("(is)", -res, std::strerror(-res));
        if (args != nullptr) {
            PyErr_SetObject(PyExc_OSError, args);
            Py_DECREF(args);
        }
        return nullptr;
    }
    return PyLong_FromLong(res);
}

PyObject* cqe_reduce(PyObject* self, PyObject*) {
    const CqeObject* c = as_cqe(self);
    PyObject* type = reinterpret_cast<PyObject*>(Py_TYPE(self));
    if (!c->has_big_cqe) {
        return Py_BuildValue("(O(KiI))", type, static_cast<unsigned long long>(c->user_data),
                             c->res, c->flags);
    }
    return Py_BuildValue("(O(KiI(KK)))", type, static_cast<unsigned long long>(c->user_data),
                         c->res, c->flags, static_cast<unsigned long long>(c->big_cqe[0]),
                         static_cast<unsigned long long>(c->big_cqe[1]));
}

PyGetSetDef cqe_getset[] = {
    {"user_data", get_user_data, nullptr, "The user_data of the SQE this completes.", nullptr},
    {"res", get_res, nullptr, "The result: a count, an fd, ... or -errno.", nullptr},
    {"flags", get_flags, nullptr, "CqeFlags bits (and the buffer id in the upper 16 bits).",
     nullptr},
    {"big_cqe", get_big_cqe, nullptr,
     "The two extra u64s of a CQE32 ring's completion as a tuple (uring_cmd results, NOP "
     "with NopFlags.CQE32), or None for a completion of a 16-byte-CQE ring.",
     nullptr},
    {"more", get_flag<cqe_flags::MORE>, nullptr,
     "True when more completions will follow for the same operation (CqeFlags.MORE).", nullptr},
    {"notif", get_flag<cqe_flags::NOTIF>, nullptr,
     "True for a zero-copy send's notification (CqeFlags.NOTIF).", nullptr},
    {"sock_nonempty", get_flag<cqe_flags::SOCK_NONEMPTY>, nullptr,
     "True when the socket had more data to read (CqeFlags.SOCK_NONEMPTY).", nullptr},
    {"buf_more", get_flag<cqe_flags::BUF_MORE>, nullptr,
     "True when the provided buffer was only partly consumed and stays in use "
     "(CqeFlags.BUF_MORE).",
     nullptr},
    {"buffer_id", get_buffer_id, nullptr,
     "The provided buffer's id when CqeFlags.BUFFER is set, else None.", nullptr},
    {"dtype", get_dtype, nullptr,
     "The NumPy dtype of the record this Cqe corresponds to: CQE_DTYPE, or CQE32_DTYPE when "
     "it has big_cqe.",
     nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr},
};

PyMethodDef cqe_methods[] = {
    {"result", cqe_result, METH_NOARGS,
     "result($self, /)\n--\n\nReturns res, or raises the OSError subclass matching -res when it is "
     "negative."},
    {"__reduce__", cqe_reduce, METH_NOARGS, "Pickling support."},
    {nullptr, nullptr, 0, nullptr},
};

const char cqe_doc[] =
    "Cqe(user_data=0, res=0, flags=0, big_cqe=None)\n--\n\n"
    "One completion (the kernel's io_uring_cqe): user_data, res (the result, or -errno) and "
    "flags (CqeFlags). On CQE32 rings big_cqe holds the entry's two extra u64s; elsewhere it "
    "is None, which compares equal to (0, 0), so Cqe(user_data, res, flags) equals a CQE32 "
    "completion whose extra words are zero. A Cqe is immutable, hashable, picklable, unpacks "
    "as (user_data, res, flags) and reads like a CQE_DTYPE record (cqe[\"res\"]). Raises "
    "TypeError/OverflowError naming the field for bad values.";

PyType_Slot cqe_slots[] = {
    {Py_tp_doc, const_cast<char*>(cqe_doc)},
    {Py_tp_new, reinterpret_cast<void*>(cqe_new)},
    {Py_tp_dealloc, reinterpret_cast<void*>(cqe_dealloc)},
    {Py_tp_repr, reinterpret_cast<void*>(cqe_repr)},
    {Py_tp_hash, reinterpret_cast<void*>(cqe_hash)},
    {Py_tp_richcompare, reinterpret_cast<void*>(cqe_richcompare)},
    {Py_tp_iter, reinterpret_cast<void*>(cqe_iter)},
    {Py_mp_subscript, reinterpret_cast<void*>(cqe_subscript)},
    {Py_tp_getset, cqe_getset},
    {Py_tp_methods, cqe_methods},
    {0, nullptr},
};

PyType_Spec cqe_spec = {
    "iouring._core.Cqe", sizeof(CqeObject), 0, Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE,
    cqe_slots,
};

py::object cqe32_dtype_object() {
    return struct_dtype({{"user_data", "<u8", offsetof(Cqe, user_data)},
                         {"res", "<i4", offsetof(Cqe, res)},
                         {"flags", "<u4", offsetof(Cqe, flags)},
                         {"big_cqe", py::make_tuple("<u8", py::make_tuple(2)),
                          offsetof(Cqe32, big_cqe)}},
                        sizeof(Cqe32));
}

}  // namespace

py::object make_cqe(const Cqe& cqe, std::uint32_t cqe_size) {
    CqeObject* self = new_cqe(cqe_type);
    if (self == nullptr) throw py::error_already_set();
    self->user_data = cqe.user_data;
    self->res = cqe.res;
    self->flags = cqe.flags;
    self->has_big_cqe = cqe_size == sizeof(Cqe32);
    if (self->has_big_cqe) {
        std::memcpy(self->big_cqe, reinterpret_cast<const Cqe32*>(&cqe)->big_cqe,
                    sizeof(self->big_cqe));
    } else {
        self->big_cqe[0] = self->big_cqe[1] = 0;
    }
    return py::reinterpret_steal<py::object>(reinterpret_cast<PyObject*>(self));
}

bool cqe_fields(py::handle obj, Cqe& out) {
    if (Py_TYPE(obj.ptr()) != cqe_type) return false;
    const CqeObject* c = as_cqe(obj.ptr());
    out = Cqe{c->user_data, c->res, c->flags};
    return true;
}

py::dtype cqe_dtype(std::uint32_t cqe_size) {
    return py::reinterpret_borrow<py::dtype>(cqe_size == sizeof(Cqe32) ? cqe32_dtype : cqe16_dtype);
}

void register_completions(py::module_& m) {
    PYBIND11_NUMPY_DTYPE(Cqe, user_data, res, flags);
    py::dtype cqe16 = py::dtype::of<Cqe>();
    py::object cqe32 = cqe32_dtype_object();
    cqe16_dtype = cqe16.inc_ref().ptr();
    cqe32_dtype = cqe32.inc_ref().ptr();
    m.attr("CQE_DTYPE") = cqe16;
    m.attr("CQE32_DTYPE") = cqe32;

    PyObject* type = PyType_FromSpec(&cqe_spec);
    if (type == nullptr) throw py::error_already_set();
    cqe_type = reinterpret_cast<PyTypeObject*>(type);  // one reference kept for make_cqe
    m.attr("Cqe") = py::reinterpret_borrow<py::object>(type);
}

}  // namespace iouring::bindings
