// Completions: the Cqe record class and CQE_DTYPE, the kernel's 16-byte layout as NumPy sees it.
#include <pybind11/numpy.h>

#include <cstdio>
#include <cstring>
#include <string>

#include "convert.hpp"
#include "module.hpp"

namespace iouring::bindings {

void register_completions(py::module_& m) {
    PYBIND11_NUMPY_DTYPE(Cqe, user_data, res, flags);
    m.attr("CQE_DTYPE") = py::dtype::of<Cqe>();

    py::class_<Cqe>(m, "Cqe",
                    "One completion (the kernel's io_uring_cqe): user_data, res (the result, or "
                    "-errno) and flags (CqeFlags).")
        .def(py::init([](py::handle user_data, py::handle res, py::handle flags) {
                 return Cqe{to_u64(user_data, "user_data"), to_i32(res, "res"),
                            to_u32(flags, "flags")};
             }),
             py::arg("user_data") = 0, py::arg("res") = 0, py::arg("flags") = 0)
        .def_readonly("user_data", &Cqe::user_data)
        .def_readonly("res", &Cqe::res)
        .def_readonly("flags", &Cqe::flags)
        .def_property_readonly(
            "more", [](const Cqe& c) { return (c.flags & cqe_flags::MORE) != 0; },
            "True when more completions will follow for the same operation (CqeFlags.MORE).")
        .def_property_readonly(
            "buffer_id",
            [](const Cqe& c) -> py::object {
                if ((c.flags & cqe_flags::BUFFER) == 0) return py::none();
                return py::int_(c.flags >> cqe_flags::BUFFER_SHIFT);
            },
            "The provided buffer's id when CqeFlags.BUFFER is set, else None.")
        .def(
            "result",
            [](const Cqe& c) {
                if (c.res < 0) {
                    py::object args = py::make_tuple(-c.res, std::strerror(-c.res));
                    PyErr_SetObject(PyExc_OSError, args.ptr());
                    throw py::error_already_set();
                }
                return c.res;
            },
            "Returns res, or raises the OSError subclass matching -res when it is negative.")
        .def("__eq__",
             [](const Cqe& a, py::handle other) -> py::object {
                 if (!py::isinstance<Cqe>(other))
                     return py::reinterpret_borrow<py::object>(Py_NotImplemented);
                 const Cqe& b = other.cast<const Cqe&>();
                 return py::bool_(a.user_data == b.user_data && a.res == b.res &&
                                  a.flags == b.flags);
             })
        .def("__hash__",
             [](const Cqe& c) { return py::hash(py::make_tuple(c.user_data, c.res, c.flags)); })
        .def("__iter__",
             [](const Cqe& c) { return py::iter(py::make_tuple(c.user_data, c.res, c.flags)); })
        .def("__repr__", [](const Cqe& c) {
            char text[96];
            std::snprintf(text, sizeof(text), "Cqe(user_data=%#llx, res=%d, flags=%#x)",
                          static_cast<unsigned long long>(c.user_data), c.res, c.flags);
            return std::string(text);
        });
}

}  // namespace iouring::bindings
