// The net family of operations, and the two small objects they share with Python: SockAddr
// (a socket address, as input or as output of accept) and Msghdr (a struct msghdr with its
// iovecs, name and control buffers, for sendmsg/recvmsg). See ops.hpp for how each operation
// becomes two methods.
//
// Addresses the kernel reads are private copies; addresses it writes (accept's peer, recvmsg's
// name, control data and flags) live in storage shared between the Python object and the
// ring's pin, so the caller reads them after the completion.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include <iouring/sqe_net.hpp>

#include "convert.hpp"
#include "module.hpp"
#include "ops.hpp"
#include "pins.hpp"

namespace iouring::bindings {

// Defined in register_buffer_ring.cpp: a buffer group id from an int or a BufferRing.
std::uint16_t to_buf_group(py::handle value, const char* name);
// SockAddr, Msghdr and parse_cmsgs, registered by register_net_ops() before the operations.
void register_net_types(py::module_& m);
// Defined in register_ops.cpp: raises ValueError unless [data, data + size) lies inside
// registered buffer `index` of `ring`.
void check_registered_range(const Ring& ring, std::uint16_t index, const void* data,
                            std::size_t size, const std::string& name);

// A flag taken as a bool: True/False, a NumPy bool, or the ints 0 and 1. Anything else is a
// TypeError naming the argument (an object that is merely truthy is most likely a mistake).
// Shared with register_buffer_ring.cpp.
bool to_bool(py::handle h, const char* name) {
    if (PyBool_Check(h.ptr())) return h.ptr() == Py_True;
    std::string type = type_name(h);
    if (type == "numpy.bool" || type == "numpy.bool_") {
        int truth = PyObject_IsTrue(h.ptr());
        if (truth < 0) throw py::error_already_set();
        return truth != 0;
    }
    if (PyLong_Check(h.ptr()) || PyIndex_Check(h.ptr())) return to_i64(h, name, 0, 1) != 0;
    raise(PyExc_TypeError, std::string(name) + " must be a bool, not " + type);
}

namespace {

// --- socket addresses ----------------------------------------------------------------------

// A socket address and its length. As an accept output, `len` is the space on input and the
// address's full length on output (the kernel's socklen_t* points at it).
struct SockAddrStorage {
    sockaddr_storage ss{};
    socklen_t len = 0;
};

constexpr auto kSockAddrMax = static_cast<socklen_t>(sizeof(sockaddr_storage));

// The Python object: a handle on shared storage, so an in-flight accept keeps it alive.
struct SockAddr {
    std::shared_ptr<SockAddrStorage> s = std::make_shared<SockAddrStorage>();
};

std::size_t used_len(const SockAddrStorage& s) {
    return std::min<std::size_t>(s.len, sizeof(s.ss));
}

py::object sockaddr_to_python(const sockaddr_storage& ss, std::size_t len) {
    if (len < sizeof(sa_family_t) || ss.ss_family == AF_UNSPEC) return py::none();
    const auto* raw = reinterpret_cast<const char*>(&ss);
    char text[INET6_ADDRSTRLEN] = {};
    switch (ss.ss_family) {
        case AF_INET:
            if (len >= sizeof(sockaddr_in)) {
                const auto* in = reinterpret_cast<const sockaddr_in*>(&ss);
                inet_ntop(AF_INET, &in->sin_addr, text, sizeof(text));
                return py::make_tuple(py::str(text), ntohs(in->sin_port));
            }
            break;
        case AF_INET6:
            if (len >= sizeof(sockaddr_in6)) {
                const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&ss);
                inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof(text));
                return py::make_tuple(py::str(text), ntohs(in6->sin6_port),
                                      ntohl(in6->sin6_flowinfo), in6->sin6_scope_id);
            }
            break;
        case AF_UNIX: {
            const auto* un = reinterpret_cast<const sockaddr_un*>(&ss);
            std::size_t path_len = std::min(len - offsetof(sockaddr_un, sun_path),
                                            sizeof(un->sun_path));
            if (path_len > 0 && un->sun_path[0] == '\0') {  // Linux abstract namespace
                return py::bytes(un->sun_path, path_len);
            }
            std::size_t n = strnlen(un->sun_path, path_len);
            PyObject* path = PyUnicode_DecodeFSDefaultAndSize(un->sun_path,
                                                              static_cast<Py_ssize_t>(n));
            if (path == nullptr) throw py::error_already_set();
            return py::reinterpret_steal<py::object>(path);
        }
        default:
            break;
    }
    return py::bytes(raw, len);
}

std::uint16_t to_port(py::handle h, const std::string& name) {
    return static_cast<std::uint16_t>(to_i64(h, (name + " port").c_str(), 0, 65535));
}

SockAddrStorage to_inet_sockaddr(py::handle addr, const char* name) {
    py::tuple t = py::reinterpret_borrow<py::tuple>(addr);
    std::size_t n = t.size();
    if (n < 2 || n > 4) {
        raise(PyExc_ValueError, std::string(name) +
                                    " must be (host, port) or (host, port, flowinfo, scope_id), "
                                    "got a tuple of " +
                                    std::to_string(n));
    }
    if (!PyUnicode_Check(t[0].ptr())) {
        raise(PyExc_TypeError, std::string(name) + " host must be a str, not " + type_name(t[0]));
    }
    std::string host = t[0].cast<std::string>();
    std::uint16_t port = to_port(t[1], name);
    SockAddrStorage out;
    if (n == 2) {
        auto* in = reinterpret_cast<sockaddr_in*>(&out.ss);
        bool v4 = true;
        if (host.empty()) {
            in->sin_addr.s_addr = htonl(INADDR_ANY);
        } else if (host == "<broadcast>") {
            in->sin_addr.s_addr = htonl(INADDR_BROADCAST);
        } else {
            v4 = inet_pton(AF_INET, host.c_str(), &in->sin_addr) == 1;
        }
        if (v4) {
            in->sin_family = AF_INET;
            in->sin_port = htons(port);
            out.len = sizeof(sockaddr_in);
            return out;
        }
        out.ss = sockaddr_storage{};
    }
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&out.ss);
    if (host.empty()) {
        in6->sin6_addr = in6addr_any;
    } else if (inet_pton(AF_INET6, host.c_str(), &in6->sin6_addr) != 1) {
        raise(PyExc_ValueError, std::string(name) +
                                    " host must be a numeric IPv4 or IPv6 address, got '" + host +
                                    "' (resolve names with socket.getaddrinfo first)");
    }
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(port);
    if (n >= 3) {
        auto flowinfo = static_cast<std::uint32_t>(
            to_i64(t[2], (std::string(name) + " flowinfo").c_str(), 0, 0xfffff));
        in6->sin6_flowinfo = htonl(flowinfo);
    }
    if (n == 4) in6->sin6_scope_id = to_u32(t[3], (std::string(name) + " scope_id").c_str());
    out.len = sizeof(sockaddr_in6);
    return out;
}

SockAddrStorage to_unix_sockaddr(py::handle addr, const char* name) {
    // Like Python's socket (not os.fsencode): NUL bytes are allowed, for abstract names.
    PyObject* path_obj = PyOS_FSPath(addr.ptr());
    if (path_obj == nullptr) throw py::error_already_set();
    py::object fspath = py::reinterpret_steal<py::object>(path_obj);
    PyObject* encoded = PyUnicode_Check(path_obj) ? PyUnicode_EncodeFSDefault(path_obj)
                                                  : Py_NewRef(path_obj);
    if (encoded == nullptr) throw py::error_already_set();
    py::object bytes = py::reinterpret_steal<py::object>(encoded);
    const char* path = PyBytes_AS_STRING(encoded);
    auto len = static_cast<std::size_t>(PyBytes_GET_SIZE(encoded));
    SockAddrStorage out;
    auto* un = reinterpret_cast<sockaddr_un*>(&out.ss);
    // Like Python's socket: an abstract name (leading NUL) may fill sun_path; a path needs
    // room for its terminating NUL.
    bool abstract = len == 0 || path[0] == '\0';
    if (abstract ? len > sizeof(un->sun_path) : len >= sizeof(un->sun_path)) {
        raise(PyExc_ValueError, std::string(name) + ": AF_UNIX path too long (" +
                                    std::to_string(len) + " bytes, at most " +
                                    std::to_string(sizeof(un->sun_path) - (abstract ? 0 : 1)) +
                                    ")");
    }
    un->sun_family = AF_UNIX;
    std::memcpy(un->sun_path, path, len);
    out.len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + len);
    return out;
}

// A socket address from Python: (host, port) / (host, port, flowinfo, scope_id) tuples with a
// numeric IPv4 or IPv6 host, an AF_UNIX path (str, bytes or os.PathLike; a leading NUL names
// the abstract namespace), or a SockAddr (raw addresses: SockAddr.from_bytes).
SockAddrStorage to_sockaddr(py::handle addr, const char* name) {
    if (py::isinstance<SockAddr>(addr)) {
        const SockAddrStorage& s = *addr.cast<const SockAddr&>().s;
        if (s.len == 0) {
            raise(PyExc_ValueError, std::string(name) + " is an empty SockAddr");
        }
        SockAddrStorage out = s;
        out.len = static_cast<socklen_t>(used_len(s));
        return out;
    }
    if (PyTuple_Check(addr.ptr())) return to_inet_sockaddr(addr, name);
    if (PyUnicode_Check(addr.ptr()) || PyBytes_Check(addr.ptr()) ||
        PyObject_HasAttrString(addr.ptr(), "__fspath__") != 0) {
        return to_unix_sockaddr(addr, name);
    }
    raise(PyExc_TypeError,
          std::string(name) +
              " must be a (host, port[, flowinfo, scope_id]) tuple, an AF_UNIX path (str, bytes "
              "or os.PathLike) or an iouring.SockAddr, not " +
              type_name(addr));
}

// A private copy of a destination address for the kernel to read.
PinnedCopy<SockAddrStorage> pin_sockaddr(py::handle addr, const char* name) {
    return pin_copy(to_sockaddr(addr, name));
}

const sockaddr* as_sockaddr(const SockAddrStorage& s) {
    return reinterpret_cast<const sockaddr*>(&s.ss);
}

// An accept output: the SockAddr's own storage, reset to "all the space", pinned.
struct AcceptOutput {
    Pin pin;
    sockaddr* addr = nullptr;
    socklen_t* addrlen = nullptr;
};

AcceptOutput accept_output(py::handle addr, const char* name) {
    AcceptOutput out;
    if (addr.is_none()) return out;
    if (!py::isinstance<SockAddr>(addr)) {
        raise(PyExc_TypeError, std::string(name) +
                                   " must be None or an iouring.SockAddr() the kernel writes the "
                                   "peer's address into, not " +
                                   type_name(addr));
    }
    std::shared_ptr<SockAddrStorage> s = addr.cast<const SockAddr&>().s;
    s->len = kSockAddrMax;
    out.addr = reinterpret_cast<sockaddr*>(&s->ss);
    out.addrlen = &s->len;
    out.pin = std::move(s);
    return out;
}

// --- msghdr --------------------------------------------------------------------------------

constexpr std::size_t align_cmsg(std::size_t n) {
    return (n + sizeof(std::size_t) - 1) & ~(sizeof(std::size_t) - 1);
}
constexpr std::size_t kCmsgHeader = align_cmsg(sizeof(cmsghdr));

py::list parse_cmsgs(const unsigned char* data, std::size_t len) {
    py::list out;
    std::size_t off = 0;
    while (len - off >= kCmsgHeader) {
        cmsghdr c{};
        std::memcpy(&c, data + off, sizeof(c));
        if (c.cmsg_len < kCmsgHeader) break;
        std::size_t end = c.cmsg_len > len - off ? len : off + c.cmsg_len;
        out.append(py::make_tuple(c.cmsg_level, c.cmsg_type,
                                  py::bytes(reinterpret_cast<const char*>(data + off + kCmsgHeader),
                                            end - off - kCmsgHeader)));
        std::size_t step = align_cmsg(c.cmsg_len);
        if (step >= len - off) break;
        off += step;
    }
    return out;
}

bool buffer_is_writable(py::handle obj) {
    Py_buffer view{};
    if (PyObject_GetBuffer(obj.ptr(), &view, PyBUF_SIMPLE) != 0) {
        PyErr_Clear();
        return false;
    }
    bool writable = view.readonly == 0;
    PyBuffer_Release(&view);
    return writable;
}

// struct msghdr and everything it points at. The exports and owned vectors never change after
// construction, so the pointers in `hdr` stay valid for the storage's life.
struct MsgStorage {
    msghdr hdr{};
    std::vector<iovec> iov;
    std::vector<std::shared_ptr<BufferExport>> exports;
    py::tuple buffers;
    bool buffers_writable = true;
    sockaddr_storage name{};
    socklen_t name_capacity = 0;
    bool has_name = false;
    std::shared_ptr<BufferExport> control_export;
    std::vector<unsigned char> control_owned;
    std::size_t control_capacity = 0;
    bool control_writable = true;

    // The fields the kernel writes back (recvmsg) or reads as sizes, reset before each use.
    void reset() {
        hdr.msg_name = has_name ? &name : nullptr;
        hdr.msg_namelen = name_capacity;
        hdr.msg_iov = iov.empty() ? nullptr : iov.data();
        hdr.msg_iovlen = iov.size();
        hdr.msg_control = control_capacity == 0       ? nullptr
                          : control_export != nullptr ? control_export->data()
                                                      : static_cast<void*>(control_owned.data());
        hdr.msg_controllen = control_capacity;
        hdr.msg_flags = 0;
    }
    [[nodiscard]] const unsigned char* control_data() const {
        return static_cast<const unsigned char*>(hdr.msg_control);
    }
};

struct Msghdr {
    std::shared_ptr<MsgStorage> s;
};

std::vector<unsigned char> encode_cmsgs(py::handle items, const char* name) {
    struct Item {
        int level, type;
        std::shared_ptr<BufferExport> data;
    };
    std::vector<Item> parsed;
    std::size_t total = 0;
    for (py::handle item : py::iter(items)) {
        if (!PyTuple_Check(item.ptr()) || PyTuple_GET_SIZE(item.ptr()) != 3) {
            raise(PyExc_TypeError, std::string(name) +
                                       " items must be (level, type, data) tuples, not " +
                                       type_name(item));
        }
        py::tuple t = py::reinterpret_borrow<py::tuple>(item);
        Item parsed_item{to_i32(t[0], name), to_i32(t[1], name), std::make_shared<BufferExport>()};
        parsed_item.data->acquire(t[2], false, name);
        total += align_cmsg(kCmsgHeader + parsed_item.data->size());
        if (total > static_cast<std::size_t>(std::numeric_limits<std::int32_t>::max())) {
            raise(PyExc_ValueError, std::string(name) + " is too large");
        }
        parsed.push_back(std::move(parsed_item));
    }
    std::vector<unsigned char> out(total, 0);
    std::size_t off = 0;
    for (const Item& item : parsed) {
        cmsghdr c{};
        c.cmsg_len = kCmsgHeader + item.data->size();
        c.cmsg_level = item.level;
        c.cmsg_type = item.type;
        std::memcpy(out.data() + off, &c, sizeof(c));
        if (item.data->size() != 0) {
            std::memcpy(out.data() + off + kCmsgHeader, item.data->data(), item.data->size());
        }
        off += align_cmsg(c.cmsg_len);
    }
    return out;
}

std::shared_ptr<MsgStorage> make_msghdr(py::handle buffers, py::handle name, py::handle control) {
    auto s = std::make_shared<MsgStorage>();
    if (PyUnicode_Check(buffers.ptr()) || PyBytes_Check(buffers.ptr()) ||
        PyByteArray_Check(buffers.ptr()) || PySequence_Check(buffers.ptr()) == 0) {
        raise(PyExc_TypeError,
              "buffers must be a sequence of bytes-like objects, not " + type_name(buffers));
    }
    s->buffers = py::tuple(py::reinterpret_borrow<py::sequence>(buffers));
    if (s->buffers.size() > kIovMax) {
        raise(PyExc_ValueError, "buffers has " + std::to_string(s->buffers.size()) +
                                    " buffers; the kernel takes at most 1024 (IOV_MAX)");
    }
    for (py::handle item : s->buffers) {
        auto view = std::make_shared<BufferExport>();
        view->acquire(item, false, "buffers");
        s->buffers_writable = s->buffers_writable && buffer_is_writable(item);
        s->iov.push_back(iovec{view->data(), view->size()});
        s->exports.push_back(std::move(view));
    }
    if (PyBool_Check(name.ptr())) {
        s->has_name = name.ptr() == Py_True;
        s->name_capacity = s->has_name ? kSockAddrMax : 0;
    } else if (PyLong_Check(name.ptr())) {
        auto size = static_cast<socklen_t>(to_i64(name, "name", 1, kSockAddrMax));
        s->has_name = true;
        s->name_capacity = size;
    } else if (!name.is_none()) {
        SockAddrStorage addr = to_sockaddr(name, "name");
        s->name = addr.ss;
        s->name_capacity = addr.len;
        s->has_name = true;
    }
    if (control.is_none()) {
        // no control data
    } else if (PyLong_Check(control.ptr()) && !PyBool_Check(control.ptr())) {
        auto size = static_cast<std::size_t>(
            to_i64(control, "control", 0, std::numeric_limits<std::int32_t>::max()));
        s->control_owned.assign(size, 0);
        s->control_capacity = size;
    } else if (PyObject_CheckBuffer(control.ptr()) != 0) {
        s->control_export = std::make_shared<BufferExport>();
        s->control_export->acquire(control, false, "control");
        s->control_writable = buffer_is_writable(control);
        s->control_capacity = s->control_export->size();
    } else if (PyList_Check(control.ptr()) || PyTuple_Check(control.ptr())) {
        s->control_owned = encode_cmsgs(control, "control");
        s->control_capacity = s->control_owned.size();
    } else {
        raise(PyExc_TypeError,
              "control must be None, a size to reserve (int), a bytes-like object or a list of "
              "(level, type, data) tuples, not " +
                  type_name(control));
    }
    s->reset();
    return s;
}

// The storage of a Msghdr argument, reset for a new operation, and checked writable when the
// kernel writes into its buffers.
std::shared_ptr<MsgStorage> msghdr_arg(py::handle msg, bool receive, const char* name) {
    if (!py::isinstance<Msghdr>(msg)) {
        raise(PyExc_TypeError,
              std::string(name) + " must be an iouring.Msghdr, not " + type_name(msg));
    }
    std::shared_ptr<MsgStorage> s = msg.cast<const Msghdr&>().s;
    if (receive && !s->buffers_writable) {
        raise(PyExc_TypeError, std::string(name) +
                                   ": the buffers of a receive must be writable (the kernel "
                                   "writes into them)");
    }
    if (receive && !s->control_writable) {
        raise(PyExc_TypeError, std::string(name) + ": control must be writable for a receive");
    }
    s->reset();
    return s;
}

// --- argument conversions ------------------------------------------------------------------

// MSG_* flags: an int (negative values are the kernel's business, as in os.*).
std::uint32_t to_msg_flags(py::handle h, const char* name) {
    return static_cast<std::uint32_t>(to_i64(h, name, std::numeric_limits<std::int32_t>::min(),
                                             std::numeric_limits<std::uint32_t>::max()));
}

std::uint16_t to_flag_bits(py::handle h, const char* name, std::uint16_t allowed,
                           const char* allowed_text) {
    std::uint16_t bits = to_u16(h, name);
    check_bits(bits, allowed, name, allowed_text);
    return bits;
}

std::uint16_t to_recvsend_ioprio(py::handle h) {
    return to_flag_bits(h, "ioprio", recvsend::POLL_FIRST, "RecvSendFlags.POLL_FIRST");
}

// accept4(2) flags: the kernel refuses anything but SOCK_NONBLOCK and SOCK_CLOEXEC.
std::uint32_t to_accept_flags(py::handle h) {
    std::uint32_t flags = to_u32(h, "flags");
    check_bits(flags, SOCK_NONBLOCK | SOCK_CLOEXEC, "flags", "socket.SOCK_NONBLOCK, SOCK_CLOEXEC");
    return flags;
}

// The flags of the socket operations: none are defined (the kernel refuses any with EINVAL).
std::uint32_t to_socket_flags(py::handle h) {
    std::uint32_t flags = to_u32(h, "flags");
    check_bits(flags, 0, "flags", "must be 0");
    return flags;
}

std::uint16_t to_accept_ioprio(py::handle h) {
    return to_flag_bits(h, "ioprio", accept::DONTWAIT | accept::POLL_FIRST,
                        "AcceptFlags.DONTWAIT and AcceptFlags.POLL_FIRST");
}

// --- operations ----------------------------------------------------------------------------

// socket, socket_direct (into slot file_index) and socket_direct_alloc (into any free slot).
enum class SocketTarget { Fd, Slot, AnySlot };

template <SocketTarget Target>
Prepared make_socket_impl(py::handle user_data, py::handle domain, py::handle type,
                          py::handle protocol, py::handle file_index, py::handle flags) {
    Prepared p;
    std::uint64_t ud = to_u64(user_data, "user_data");
    std::int32_t d = to_i32(domain, "domain");
    std::int32_t t = to_i32(type, "type");
    std::int32_t proto = to_i32(protocol, "protocol");
    std::uint32_t index = Target == SocketTarget::Slot
                              ? to_file_index(file_index, "file_index", SlotAlloc::Allowed)
                              : 0;
    std::uint32_t f = to_socket_flags(flags);
    if constexpr (Target == SocketTarget::Fd) {
        prep_socket(p.sqe, ud, d, t, proto, f);
    } else if constexpr (Target == SocketTarget::Slot) {
        prep_socket_direct(p.sqe, ud, d, t, proto, index, f);
    } else {
        prep_socket_direct_alloc(p.sqe, ud, d, t, proto, f);
    }
    return p;
}

Prepared make_socket(py::handle user_data, py::handle domain, py::handle type, py::handle protocol,
                     py::handle flags) {
    return make_socket_impl<SocketTarget::Fd>(user_data, domain, type, protocol, py::none(), flags);
}

Prepared make_socket_direct(py::handle user_data, py::handle domain, py::handle type,
                            py::handle protocol, py::handle file_index, py::handle flags) {
    return make_socket_impl<SocketTarget::Slot>(user_data, domain, type, protocol, file_index,
                                                flags);
}

Prepared make_socket_direct_alloc(py::handle user_data, py::handle domain, py::handle type,
                                  py::handle protocol, py::handle flags) {
    return make_socket_impl<SocketTarget::AnySlot>(user_data, domain, type, protocol, py::none(),
                                                   flags);
}

// bind and connect: a private copy of the address, its length in off.
template <bool Connect>
Prepared make_bind_connect(py::handle user_data, py::handle fd, py::handle addr) {
    std::uint64_t ud = to_u64(user_data, "user_data");
    std::int32_t sock = to_fd(fd, "fd");
    PinnedCopy<SockAddrStorage> a = pin_sockaddr(addr, "addr");
    Prepared p;
    if constexpr (Connect) {
        prep_connect(p.sqe, ud, sock, as_sockaddr(*a.ptr), a.ptr->len);
    } else {
        prep_bind(p.sqe, ud, sock, as_sockaddr(*a.ptr), a.ptr->len);
    }
    p.pins.push_back(std::move(a.pin));
    return p;
}

Prepared make_listen(py::handle user_data, py::handle fd, py::handle backlog) {
    Prepared p;
    std::uint64_t ud = to_u64(user_data, "user_data");
    std::int32_t sock = to_fd(fd, "fd");
    prep_listen(p.sqe, ud, sock, to_i32(backlog, "backlog"));
    return p;
}

Prepared make_accept(py::handle user_data, py::handle fd, py::handle addr, py::handle flags,
                     py::handle ioprio) {
    std::uint64_t ud = to_u64(user_data, "user_data");
    std::int32_t sock = to_fd(fd, "fd");
    std::uint32_t accept_flags = to_accept_flags(flags);
    std::uint16_t prio = to_accept_ioprio(ioprio);
    AcceptOutput out = accept_output(addr, "addr");
    Prepared p;
    prep_accept(p.sqe, ud, sock, out.addr, out.addrlen, accept_flags);
    p.sqe.ioprio |= prio;
    if (out.pin) p.pins.push_back(std::move(out.pin));
    return p;
}

Prepared make_accept_direct(py::handle user_data, py::handle fd, py::handle addr, py::handle flags,
                            py::handle file_index) {
    std::uint64_t ud = to_u64(user_data, "user_data");
    std::int32_t sock = to_fd(fd, "fd");
    std::uint32_t accept_flags = to_accept_flags(flags);
    std::uint32_t index = to_file_index(file_index, "file_index", SlotAlloc::Allowed);
    AcceptOutput out = accept_output(addr, "addr");
    Prepared p;
    prep_accept_direct(p.sqe, ud, sock, out.addr, out.addrlen, accept_flags, index);
    if (out.pin) p.pins.push_back(std::move(out.pin));
    return p;
}

template <bool Direct>
Prepared make_multishot_accept(py::handle user_data, py::handle fd, py::handle addr,
                               py::handle flags) {
    std::uint64_t ud = to_u64(user_data, "user_data");
    std::int32_t sock = to_fd(fd, "fd");
    std::uint32_t accept_flags = to_accept_flags(flags);
    AcceptOutput out = accept_output(addr, "addr");
    Prepared p;
    if constexpr (Direct) {
        prep_multishot_accept_direct(p.sqe, ud, sock, out.addr, out.addrlen, accept_flags);
    } else {
        prep_multishot_accept(p.sqe, ud, sock, out.addr, out.addrlen, accept_flags);
    }
    if (out.pin) p.pins.push_back(std::move(out.pin));
    return p;
}

// send and recv: the buffer is pinned (writable for recv) until the completion.
template <bool Recv>
Prepared make_send_recv(py::handle user_data, py::handle fd, py::handle buffer, py::handle flags,
                        py::handle ioprio) {
    std::uint64_t ud = to_u64(user_data, "user_data");
    std::int32_t sock = to_fd(fd, "fd");
    std::uint32_t msg_flags = to_msg_flags(flags, "flags");
    std::uint16_t prio = to_recvsend_ioprio(ioprio);
    PinnedBuffer buf = pin_buffer(buffer, Recv, "buffer");
    std::uint32_t len = checked_len(buf.size, "buffer");
    Prepared p;
    if constexpr (Recv) {
        prep_recv(p.sqe, ud, sock, buf.data, len, msg_flags);
    } else {
        prep_send(p.sqe, ud, sock, buf.data, len, msg_flags);
    }
    p.sqe.ioprio = prio;
    p.pins.push_back(std::move(buf.pin));
    return p;
}

// send_vectorized: the iovec array is a private copy and every buffer is pinned, as for writev.
Prepared make_send_vectorized(py::handle user_data, py::handle fd, py::handle buffers,
                              py::handle flags) {
    std::uint64_t ud = to_u64(user_data, "user_data");
    std::int32_t sock = to_fd(fd, "fd");
    std::uint32_t msg_flags = to_msg_flags(flags, "flags");
    PinnedIovecs vec = pin_iovecs(buffers, false, "buffers");
    Prepared p;
    prep_send_vectorized(p.sqe, ud, sock, vec.iovecs, vec.count, msg_flags);
    p.pins = std::move(vec.pins);
    return p;
}

Prepared make_sendto(py::handle user_data, py::handle fd, py::handle buffer, py::handle addr,
                     py::handle flags) {
    std::uint64_t ud = to_u64(user_data, "user_data");
    std::int32_t sock = to_fd(fd, "fd");
    std::uint32_t msg_flags = to_msg_flags(flags, "flags");
    PinnedCopy<SockAddrStorage> a = pin_sockaddr(addr, "addr");
    PinnedBuffer buf = pin_buffer(buffer, false, "buffer");
    Prepared p;
    prep_sendto(p.sqe, ud, sock, buf.data, checked_len(buf.size, "buffer"), msg_flags,
                as_sockaddr(*a.ptr), static_cast<std::uint16_t>(a.ptr->len));
    p.pins.push_back(std::move(buf.pin));
    p.pins.push_back(std::move(a.pin));
    return p;
}

// send_zc, and send_zc_fixed when `ring` is given: then buffer must lie inside registered
// buffer `buffer_index`, and the registration stays alive until the notification (Ring::flush).
Prepared send_zc_impl(const Ring* ring, py::handle user_data, py::handle fd, py::handle buffer,
                      py::handle buffer_index, py::handle flags, py::handle zc_flags,
                      py::handle addr) {
    std::uint64_t ud = to_u64(user_data, "user_data");
    std::int32_t sock = to_fd(fd, "fd");
    std::uint16_t index = ring != nullptr ? to_u16(buffer_index, "buffer_index") : 0;
    std::uint32_t msg_flags = to_msg_flags(flags, "flags");
    std::uint16_t zc = to_flag_bits(zc_flags, "zc_flags",
                                    recvsend::POLL_FIRST | recvsend::SEND_ZC_REPORT_USAGE,
                                    "RecvSendFlags.POLL_FIRST and SEND_ZC_REPORT_USAGE");
    PinnedCopy<SockAddrStorage> dest{};
    if (!addr.is_none()) dest = pin_sockaddr(addr, "addr");
    PinnedBuffer buf = pin_buffer(buffer, false, "buffer");
    if (ring != nullptr) check_registered_range(*ring, index, buf.data, buf.size, "buffer");
    Prepared p;
    std::uint32_t len = checked_len(buf.size, "buffer");
    if (ring != nullptr) {
        prep_send_zc_fixed(p.sqe, ud, sock, buf.data, len, msg_flags, zc, index);
    } else {
        prep_send_zc(p.sqe, ud, sock, buf.data, len, msg_flags, zc);
    }
    p.pins.push_back(std::move(buf.pin));
    if (dest.ptr != nullptr) {
        prep_send_set_addr(p.sqe, as_sockaddr(*dest.ptr),
                           static_cast<std::uint16_t>(dest.ptr->len));
        p.pins.push_back(std::move(dest.pin));
    }
    return p;
}

Prepared make_send_zc(py::handle user_data, py::handle fd, py::handle buffer, py::handle flags,
                      py::handle zc_flags, py::handle addr) {
    return send_zc_impl(nullptr, user_data, fd, buffer, py::none(), flags, zc_flags, addr);
}

Prepared make_send_zc_fixed(const Ring& ring, py::handle user_data, py::handle fd,
                            py::handle buffer, py::handle buffer_index, py::handle flags,
                            py::handle zc_flags, py::handle addr) {
    return send_zc_impl(&ring, user_data, fd, buffer, buffer_index, flags, zc_flags, addr);
}

Prepared make_send_bundle(py::handle user_data, py::handle fd, py::handle buf_group, py::handle len,
                          py::handle flags) {
    Prepared p;
    std::uint64_t ud = to_u64(user_data, "user_data");
    std::int32_t sock = to_fd(fd, "fd");
    std::uint16_t group = to_buf_group(buf_group, "buf_group");
    std::uint32_t nbytes = to_u32(len, "len");
    prep_send_bundle(p.sqe, ud, sock, nbytes, to_msg_flags(flags, "flags"), group);
    return p;
}

Prepared make_recv_provided(py::handle user_data, py::handle fd, py::handle buf_group,
                            py::handle len, py::handle flags, py::handle ioprio) {
    Prepared p;
    std::uint64_t ud = to_u64(user_data, "user_data");
    std::int32_t sock = to_fd(fd, "fd");
    std::uint16_t group = to_buf_group(buf_group, "buf_group");
    std::uint32_t nbytes = to_u32(len, "len");
    std::uint32_t msg_flags = to_msg_flags(flags, "flags");
    std::uint16_t prio = to_recvsend_ioprio(ioprio);
    prep_recv_select(p.sqe, ud, sock, nbytes, msg_flags, group);
    p.sqe.ioprio |= prio;
    return p;
}

Prepared make_recv_multishot(py::handle user_data, py::handle fd, py::handle buf_group,
                             py::handle flags, py::handle len) {
    Prepared p;
    std::uint64_t ud = to_u64(user_data, "user_data");
    std::int32_t sock = to_fd(fd, "fd");
    std::uint16_t group = to_buf_group(buf_group, "buf_group");
    std::uint32_t msg_flags = to_msg_flags(flags, "flags");
    prep_recv_multishot(p.sqe, ud, sock, to_u32(len, "len"), msg_flags, group);
    return p;
}

Prepared make_recv_bundle(py::handle user_data, py::handle fd, py::handle buf_group,
                          py::handle flags, py::handle multishot) {
    Prepared p;
    std::uint64_t ud = to_u64(user_data, "user_data");
    std::int32_t sock = to_fd(fd, "fd");
    std::uint16_t group = to_buf_group(buf_group, "buf_group");
    std::uint32_t msg_flags = to_msg_flags(flags, "flags");
    bool multi = to_bool(multishot, "multishot");
    prep_recv_bundle(p.sqe, ud, sock, msg_flags, group);
    if (multi) p.sqe.ioprio |= recvsend::RECV_MULTISHOT;
    return p;
}

template <bool ZeroCopy>
Prepared make_sendmsg(py::handle user_data, py::handle fd, py::handle msg, py::handle flags) {
    std::uint64_t ud = to_u64(user_data, "user_data");
    std::int32_t sock = to_fd(fd, "fd");
    std::uint32_t msg_flags = to_msg_flags(flags, "flags");
    std::shared_ptr<MsgStorage> s = msghdr_arg(msg, false, "msg");
    Prepared p;
    if constexpr (ZeroCopy) {
        prep_sendmsg_zc(p.sqe, ud, sock, &s->hdr, msg_flags);
    } else {
        prep_sendmsg(p.sqe, ud, sock, &s->hdr, msg_flags);
    }
    p.pins.push_back(std::move(s));
    return p;
}

// Every iovec of msg must lie inside registered buffer `buffer_index` (6.15+).
Prepared make_sendmsg_zc_fixed(const Ring& ring, py::handle user_data, py::handle fd,
                               py::handle msg, py::handle buffer_index, py::handle flags) {
    std::uint64_t ud = to_u64(user_data, "user_data");
    std::int32_t sock = to_fd(fd, "fd");
    std::uint16_t index = to_u16(buffer_index, "buffer_index");
    std::uint32_t msg_flags = to_msg_flags(flags, "flags");
    std::shared_ptr<MsgStorage> s = msghdr_arg(msg, false, "msg");
    for (std::size_t i = 0; i < s->iov.size(); ++i) {
        check_registered_range(ring, index, s->iov[i].iov_base, s->iov[i].iov_len,
                               "msg buffers[" + std::to_string(i) + "]");
    }
    if (s->iov.empty()) check_registered_range(ring, index, nullptr, 0, "msg buffers");
    Prepared p;
    prep_sendmsg_zc_fixed(p.sqe, ud, sock, &s->hdr, msg_flags, index);
    p.pins.push_back(std::move(s));
    return p;
}

Prepared make_recvmsg(py::handle user_data, py::handle fd, py::handle msg, py::handle flags) {
    std::uint64_t ud = to_u64(user_data, "user_data");
    std::int32_t sock = to_fd(fd, "fd");
    std::uint32_t msg_flags = to_msg_flags(flags, "flags");
    std::shared_ptr<MsgStorage> s = msghdr_arg(msg, true, "msg");
    Prepared p;
    prep_recvmsg(p.sqe, ud, sock, &s->hdr, msg_flags);
    p.pins.push_back(std::move(s));
    return p;
}

Prepared make_recvmsg_multishot(py::handle user_data, py::handle fd, py::handle msg,
                                py::handle buf_group, py::handle flags) {
    std::uint64_t ud = to_u64(user_data, "user_data");
    std::int32_t sock = to_fd(fd, "fd");
    std::uint16_t group = to_buf_group(buf_group, "buf_group");
    std::uint32_t msg_flags = to_msg_flags(flags, "flags");
    std::shared_ptr<MsgStorage> s = msghdr_arg(msg, true, "msg");
    Prepared p;
    prep_recvmsg_multishot(p.sqe, ud, sock, &s->hdr, msg_flags, group);
    p.pins.push_back(std::move(s));
    return p;
}

Prepared make_shutdown(py::handle user_data, py::handle fd, py::handle how) {
    Prepared p;
    std::uint64_t ud = to_u64(user_data, "user_data");
    std::int32_t sock = to_fd(fd, "fd");
    prep_shutdown(p.sqe, ud, sock, to_i32(how, "how"));
    return p;
}

// optval of a socket command: GETSOCKOPT writes into a writable buffer; SETSOCKOPT reads a
// bytes-like object or an int (a private 4-byte copy, as socket.setsockopt does); the other
// commands take none.
Prepared make_cmd_sock(py::handle user_data, py::handle cmd_op, py::handle fd, py::handle level,
                       py::handle optname, py::handle optval) {
    std::uint64_t ud = to_u64(user_data, "user_data");
    std::uint32_t op = to_u32(cmd_op, "cmd_op");
    // URING_CMD goes to whatever driver owns fd, and addr carries level/optname: only the
    // socket commands whose layout prep_cmd_sock writes are accepted.
    if (op != socket_cmd::SIOCINQ && op != socket_cmd::SIOCOUTQ && op != socket_cmd::GETSOCKOPT &&
        op != socket_cmd::SETSOCKOPT) {
        raise(PyExc_ValueError,
              "cmd_op must be SocketCmd.SIOCINQ, SIOCOUTQ, GETSOCKOPT or "
              "SETSOCKOPT, got " +
                  std::to_string(op));
    }
    std::int32_t sock = to_fd(fd, "fd");
    std::int32_t lvl = to_i32(level, "level");
    std::int32_t opt = to_i32(optname, "optname");
    Prepared p;
    void* value = nullptr;
    std::int32_t value_len = 0;
    if (op == socket_cmd::GETSOCKOPT || op == socket_cmd::SETSOCKOPT) {
        bool get = op == socket_cmd::GETSOCKOPT;
        if (optval.is_none()) {
            raise(PyExc_TypeError, std::string("optval is required for ") +
                                       (get ? "GETSOCKOPT (a writable buffer)"
                                            : "SETSOCKOPT (an int or a bytes-like object)"));
        }
        if (!get && PyLong_Check(optval.ptr())) {
            PinnedCopy<std::int32_t> copy = pin_copy(to_i32(optval, "optval"));
            value = copy.ptr;
            value_len = sizeof(std::int32_t);
            p.pins.push_back(std::move(copy.pin));
        } else {
            PinnedBuffer buf = pin_buffer(optval, get, "optval");
            if (buf.size > static_cast<std::size_t>(std::numeric_limits<std::int32_t>::max())) {
                raise(PyExc_ValueError, "optval is too large");
            }
            value = buf.data;
            value_len = static_cast<std::int32_t>(buf.size);
            p.pins.push_back(std::move(buf.pin));
        }
    } else if (!optval.is_none()) {
        raise(PyExc_ValueError,
              "optval: only SocketCmd.GETSOCKOPT and SocketCmd.SETSOCKOPT take an optval");
    }
    prep_cmd_sock(p.sqe, ud, op, sock, lvl, opt, value, value_len);
    return p;
}

// SOCKET_URING_OP_TX_TIMESTAMP (Linux 6.17+): multishot, one 32-byte CQE flagged MORE per TX
// timestamp on the socket's error queue (see iouring.TxTimestamp); nothing is pinned. The
// kernel refuses it (-EINVAL) on rings without 32-byte CQEs, so it is refused here first.
Prepared make_tx_timestamp(const Ring& ring, py::handle user_data, py::handle fd) {
    std::uint64_t ud = to_u64(user_data, "user_data");
    std::int32_t sock = to_fd(fd, "fd");
    if ((ring.core().flags() & (setup::CQE32 | setup::CQE_MIXED)) == 0) {
        raise(PyExc_ValueError,
              "tx_timestamp needs a ring set up with SetupFlags.CQE32 (or CQE_MIXED): each "
              "timestamp comes in a 32-byte completion");
    }
    Prepared p;
    prep_cmd_sock(p.sqe, ud, socket_cmd::TX_TIMESTAMP, sock, 0, 0, nullptr, 0);
    return p;
}

Prepared make_getsockopt(py::handle user_data, py::handle fd, py::handle level, py::handle optname,
                         py::handle optval) {
    return make_cmd_sock(user_data, py::int_(socket_cmd::GETSOCKOPT), fd, level, optname, optval);
}

Prepared make_setsockopt(py::handle user_data, py::handle fd, py::handle level, py::handle optname,
                         py::handle optval) {
    return make_cmd_sock(user_data, py::int_(socket_cmd::SETSOCKOPT), fd, level, optname, optval);
}

}  // namespace

void register_net_types(py::module_& m) {
    py::class_<SockAddr>(m, "SockAddr",
                         "A socket address. SockAddr(address) copies a Python address: a (host, "
                         "port) or (host, port, flowinfo, scope_id) tuple with a numeric IPv4 "
                         "or IPv6 host, or an AF_UNIX path (str, bytes or os.PathLike; a leading "
                         "NUL byte names the abstract namespace). SockAddr() is empty: pass it "
                         "as the addr of accept() and read the peer's address after the "
                         "completion (the ring keeps it alive meanwhile).")
        .def(py::init([](py::handle address) {
                 SockAddr a;
                 if (!address.is_none()) *a.s = to_sockaddr(address, "address");
                 return a;
             }),
             py::arg("address") = py::none(),
             "Copies `address`, or makes an empty SockAddr for accept() to fill. Raises "
             "TypeError/ValueError naming `address` for an unsupported or malformed address.")
        .def_static(
            "from_bytes",
            [](py::handle data) {
                BufferExport view;
                view.acquire(data, false, "data");
                if (view.size() > sizeof(sockaddr_storage)) {
                    raise(PyExc_ValueError, "data is longer than a sockaddr_storage (128 bytes)");
                }
                SockAddr a;
                std::memcpy(&a.s->ss, view.data(), view.size());
                a.s->len = static_cast<socklen_t>(view.size());
                return a;
            },
            py::arg("data"), "A raw sockaddr (struct sockaddr bytes, at most 128).")
        .def_property_readonly(
            "family",
            [](const SockAddr& a) {
                return a.s->len >= sizeof(sa_family_t) ? int{a.s->ss.ss_family} : AF_UNSPEC;
            },
            "The address family (socket.AF_*), AF_UNSPEC when empty.")
        .def_property_readonly(
            "addrlen", [](const SockAddr& a) { return a.s->len; },
            "The address's length in bytes (as the kernel reported it for an accept output).")
        .def_property_readonly(
            "address",
            [](const SockAddr& a) { return sockaddr_to_python(a.s->ss, used_len(*a.s)); },
            "The address as Python's socket module gives it: (host, port) for AF_INET, (host, "
            "port, flowinfo, scope_id) for AF_INET6, a str path (bytes in the abstract "
            "namespace) for AF_UNIX, the raw bytes for other families, None when empty.")
        .def("__bytes__",
             [](const SockAddr& a) {
                 return py::bytes(reinterpret_cast<const char*>(&a.s->ss), used_len(*a.s));
             })
        .def(
            "__eq__",
            [](const SockAddr& a, py::handle other) -> py::object {
                if (!py::isinstance<SockAddr>(other)) {
                    return py::reinterpret_borrow<py::object>(Py_NotImplemented);
                }
                const SockAddrStorage& b = *other.cast<const SockAddr&>().s;
                std::size_t n = used_len(*a.s);
                return py::bool_(n == used_len(b) && std::memcmp(&a.s->ss, &b.ss, n) == 0);
            },
            py::arg("other"))
        .def("__repr__", [](const SockAddr& a) {
            if (a.s->len < sizeof(sa_family_t) || a.s->ss.ss_family == AF_UNSPEC) {
                return std::string("SockAddr()");
            }
            return "SockAddr(" +
                   py::repr(sockaddr_to_python(a.s->ss, used_len(*a.s))).cast<std::string>() + ")";
        });

    py::class_<Msghdr>(
        m, "Msghdr",
        "A struct msghdr for sendmsg/recvmsg: its iovecs (`buffers`, kept exported while the "
        "Msghdr lives), an optional name and optional control data, in storage that in-flight "
        "operations keep alive. name: None, an address (the destination of a send), True or a "
        "size (room for the source address of a receive). control: None, a size to reserve "
        "(receive), a bytes-like object, or a list of (level, type, data) ancillary messages "
        "(send). After a recvmsg completes, namelen, controllen, flags, name, control and "
        "ancdata hold what the kernel wrote.")
        .def(py::init([](py::handle buffers, py::handle name, py::handle control) {
                 return Msghdr{make_msghdr(buffers, name, control)};
             }),
             py::arg("buffers") = py::tuple(), py::kw_only(), py::arg("name") = py::none(),
             py::arg("control") = py::none(),
             "Builds the msghdr. Raises TypeError/ValueError naming the argument (a read-only "
             "buffer, a bad address, control data over the size limit...).")
        .def_property_readonly(
            "buffers", [](const Msghdr& msg) { return msg.s->buffers; }, "The iovec buffers.")
        .def_property_readonly(
            "name",
            [](const Msghdr& msg) -> py::object {
                const MsgStorage& s = *msg.s;
                if (!s.has_name) return py::none();
                SockAddr a;
                a.s->ss = s.name;
                a.s->len = std::min(s.hdr.msg_namelen, s.name_capacity);
                return py::cast(a);
            },
            "The name as a SockAddr (after a recvmsg: the source address), or None.")
        .def_property_readonly(
            "namelen", [](const Msghdr& msg) { return msg.s->hdr.msg_namelen; },
            "msg_namelen (after a recvmsg: the source address's full length).")
        .def_property_readonly(
            "name_capacity", [](const Msghdr& msg) { return msg.s->name_capacity; },
            "The room for the name: the msg_namelen every operation starts with.")
        .def_property_readonly(
            "controllen", [](const Msghdr& msg) { return msg.s->hdr.msg_controllen; },
            "msg_controllen (after a recvmsg: the control bytes written).")
        .def_property_readonly(
            "control_capacity", [](const Msghdr& msg) { return msg.s->control_capacity; },
            "The room for control data: the msg_controllen every operation starts with.")
        .def_property_readonly(
            "flags", [](const Msghdr& msg) { return msg.s->hdr.msg_flags; },
            "msg_flags as the kernel wrote them (MSG_TRUNC, MSG_CTRUNC, ...).")
        .def_property_readonly(
            "control",
            [](const Msghdr& msg) {
                const MsgStorage& s = *msg.s;
                std::size_t n = std::min(s.hdr.msg_controllen, s.control_capacity);
                return py::bytes(reinterpret_cast<const char*>(s.control_data()), n);
            },
            "The control data (the first controllen bytes).")
        .def_property_readonly(
            "ancdata",
            [](const Msghdr& msg) {
                const MsgStorage& s = *msg.s;
                std::size_t n = std::min(s.hdr.msg_controllen, s.control_capacity);
                return parse_cmsgs(s.control_data(), n);
            },
            "The control data as (level, type, data) tuples, like socket.recvmsg's ancdata.")
        .def("__repr__", [](const Msghdr& msg) {
            const MsgStorage& s = *msg.s;
            return "<iouring.Msghdr buffers=" + std::to_string(s.iov.size()) +
                   " name_capacity=" + std::to_string(s.name_capacity) +
                   " control_capacity=" + std::to_string(s.control_capacity) + ">";
        });

    m.def(
        "parse_cmsgs",
        [](py::handle data) {
            BufferExport view;
            view.acquire(data, false, "data");
            return parse_cmsgs(static_cast<const unsigned char*>(view.data()), view.size());
        },
        py::arg("data"),
        "Parses control data (struct cmsghdr records) into (level, type, data) tuples.");
}

void register_net_ops(py::module_& m, RingClass& ring, SqeClass& sqe) {
    register_net_types(m);

    // Every net operation, generated from tools/ops_spec.py by tools/gen_ops.py.
#include "generated/ops_net.inc"
}

}  // namespace iouring::bindings
