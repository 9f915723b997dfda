// Provided buffers: provide_buffers/remove_buffers, reads that select a provided buffer, and
// the BufferRing class (a registered provided-buffer ring), for buffer-select reads and
// receives.
//
// The kernel writes into provided buffers without any pin of its own: any in-flight
// buffer-select operation may land in them, even after the group was removed or unregistered
// (a request on an io-wq worker holds the address it selected). Their memory therefore goes to
// Ring::keep_until_close, never to an operation's pins.
#include <pybind11/numpy.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include <iouring/sqe_buffers.hpp>

#include "convert.hpp"
#include "cqe_object.hpp"
#include "module.hpp"
#include "ops.hpp"
#include "pins.hpp"

namespace iouring::bindings {

std::uint16_t to_buf_group(py::handle value, const char* name);
// Defined in register_ops_net.cpp: a flag taken as a bool, TypeError naming it otherwise.
bool to_bool(py::handle h, const char* name);

namespace {

// --- operations whose memory the ring keeps until it closes --------------------------------

struct KeptPrepared {
    Prepared op;
    Pin keep;  // handed to Ring::keep_until_close once the SQE is prepared
};

// Like def_op(), for operations that lend the kernel memory it owns beyond their completion.
template <typename... Args>
void def_kept_op(RingClass& ring, SqeClass& sqe, const char* ring_name, const char* prep_name,
                 KeptPrepared (*make)(Args...), const char* params, const char* doc,
                 const auto&... args) {
    py::options signatures;  // the docstrings carry theirs (op_doc)
    signatures.disable_function_signatures();
    ring.def(
        ring_name,
        [make](py::handle self, Args... a) {
            Ring& r = ring_of(self);
            r.check_usable();
            KeptPrepared k = make(a...);
            py::object handle = sqe_handle(r, r.push(std::move(k.op)));
            r.keep_until_close(std::move(k.keep));
            return handle;
        },
        args..., op_doc(ring_name, params, doc, kRingOpErrors));
    sqe.def(
        prep_name,
        [make](py::object self, Args... a) {
            const SqeHandle& h = self.cast<const SqeHandle&>();
            h.ring->check_usable();
            KeptPrepared k = make(a...);
            h.ring->prepare(h.position, std::move(k.op));
            h.ring->keep_until_close(std::move(k.keep));
            return self;
        },
        args..., op_doc(prep_name, params, doc, kPrepErrors));
}

KeptPrepared make_provide_buffers(py::handle user_data, py::handle buffer, py::handle buf_len,
                                  py::handle nr, py::handle bgid, py::handle bid) {
    std::uint64_t ud = to_u64(user_data, "user_data");
    auto len = static_cast<std::uint32_t>(
        to_i64(buf_len, "buf_len", 1, std::numeric_limits<std::uint32_t>::max()));
    auto count = static_cast<std::uint32_t>(to_i64(nr, "nr", 1, kMaxBufferIds));
    std::uint16_t group = to_u16(bgid, "bgid");
    std::uint16_t first = to_u16(bid, "bid");
    if (std::uint32_t{first} + count > kMaxBufferIds) {
        raise(PyExc_ValueError, "bid + nr must be at most 65536 (buffer ids are 16-bit), got " +
                                    std::to_string(first) + " + " + std::to_string(count));
    }
    PinnedBuffer buf = pin_buffer(buffer, true, "buffer");
    std::uint64_t needed = std::uint64_t{len} * count;
    if (needed > buf.size) {
        raise(PyExc_ValueError, "buffer holds " + std::to_string(buf.size) +
                                    " bytes, fewer than nr * buf_len = " + std::to_string(needed));
    }
    KeptPrepared k;
    prep_provide_buffers(k.op.sqe, ud, buf.data, len, static_cast<std::int32_t>(count), group,
                         first);
    k.keep = std::move(buf.pin);
    return k;
}

Prepared make_remove_buffers(py::handle user_data, py::handle nr, py::handle bgid) {
    Prepared p;
    std::uint64_t ud = to_u64(user_data, "user_data");
    auto count = static_cast<std::int32_t>(to_i64(nr, "nr", 1, kMaxBufferIds));
    prep_remove_buffers(p.sqe, ud, count, to_u16(bgid, "bgid"));
    return p;
}

Prepared make_read_provided(py::handle user_data, py::handle fd, py::handle buf_group,
                            py::handle len, py::handle offset) {
    Prepared p;
    std::uint64_t ud = to_u64(user_data, "user_data");
    std::int32_t file = to_fd(fd, "fd");
    std::uint16_t group = to_buf_group(buf_group, "buf_group");
    std::uint32_t nbytes = to_u32(len, "len");
    prep_read_select(p.sqe, ud, file, nbytes, to_offset(offset, "offset"), group);
    return p;
}

Prepared make_read_multishot(py::handle user_data, py::handle fd, py::handle nbytes,
                             py::handle offset, py::handle buf_group) {
    Prepared p;
    std::uint64_t ud = to_u64(user_data, "user_data");
    std::int32_t file = to_fd(fd, "fd");
    std::uint32_t n = to_u32(nbytes, "nbytes");
    std::uint64_t off = to_offset(offset, "offset");
    prep_read_multishot(p.sqe, ud, file, n, off, to_buf_group(buf_group, "buf_group"));
    return p;
}

// --- BufferRing ----------------------------------------------------------------------------

// The ring entries and the buffers, page-aligned; owned by the BufferRing, the memoryviews it
// hands out and (once registered) the ring, which keeps it until it closes.
struct BufRingStorage {
    PageMemory ring;
    PageMemory buffers;
    std::size_t buffers_size = 0;  // entries * buf_size (the mapping is rounded to pages)
};

class BufferRing {
public:
    BufferRing(std::shared_ptr<Ring> ring, py::handle bgid_arg, py::handle entries_arg,
               py::handle buf_size_arg, bool incremental_mode, bool populate)
        : ring_(std::move(ring)), incremental_(incremental_mode) {
        bgid_ = to_u16(bgid_arg, "bgid");
        std::int64_t n = to_i64(entries_arg, "entries", 1, kMaxBufRingEntries);
        if ((n & (n - 1)) != 0) {
            raise(PyExc_ValueError,
                  "entries must be a power of two in 1..32768, got " + std::to_string(n));
        }
        entries_ = static_cast<std::uint32_t>(n);
        buf_size_ = static_cast<std::uint32_t>(
            to_i64(buf_size_arg, "buf_size", 1, std::numeric_limits<std::uint32_t>::max()));
        ring_->check_usable();
        mem_ = std::make_shared<BufRingStorage>();
        mem_->buffers_size = std::size_t{entries_} * buf_size_;
        int err = mem_->ring.allocate(std::size_t{entries_} * sizeof(Buf));
        if (err == 0) err = mem_->buffers.allocate(mem_->buffers_size);
        if (err < 0) throw_errno(err, "mmap");
        heads_.assign(entries_, 0);
        lens_.assign(entries_, 0);
        slot_bid_.assign(entries_, 0);
        bid_pos_.assign(entries_, 0);
        buf_ring_init(ring_entries());
        if (populate) {
            for (std::uint32_t bid = 0; bid < entries_; ++bid) {
                add(static_cast<std::uint16_t>(bid), buf_size_, bid);
            }
            advance(entries_);
        }
        std::uint16_t flags = incremental_ ? pbuf::INC : 0;
        err = register_buf_ring(ring_->core(), ring_entries(), entries_, bgid_, flags);
        if (err == -EINVAL && incremental_) {
            throw_errno(err,
                        "register_buffer_ring (incremental=True needs IOU_PBUF_RING_INC, "
                        "Linux 6.12+)");
        }
        if (err < 0) throw_errno(err, "register_buffer_ring");
        registered_ = true;
        ring_->keep_until_close(mem_);
    }

    [[nodiscard]] std::uint16_t bgid() const { return bgid_; }
    [[nodiscard]] std::uint32_t size() const { return entries_; }
    [[nodiscard]] std::uint32_t buf_size() const { return buf_size_; }
    [[nodiscard]] bool incremental() const { return incremental_; }
    [[nodiscard]] bool registered() const { return registered_ && !ring_->closed(); }
    [[nodiscard]] std::uint16_t tail() const { return tail_; }

    void unregister() {
        check_live();
        int err = unregister_buf_ring(ring_->core(), bgid_);
        if (err < 0) throw_errno(err, "unregister_buffer_ring");
        registered_ = false;  // the memory stays with the ring until it closes
    }

    [[nodiscard]] std::uint16_t head() {
        check_live();
        std::uint16_t value = 0;
        int err = buf_ring_head(ring_->core(), bgid_, value);
        if (err < 0) throw_errno(err, "buffer_ring_head");
        return value;
    }

    // Puts buffer `bid` back at the tail with `length` bytes (default: all of it).
    void recycle(py::handle bid_arg, py::handle length_arg) {
        std::uint16_t bid = checked_bid(bid_arg);
        std::uint32_t length = buf_size_;
        if (!length_arg.is_none()) {
            length = static_cast<std::uint32_t>(to_i64(length_arg, "length", 1, buf_size_));
        }
        check_live();
        heads_[bid] = 0;
        add(bid, length, 0);
        advance(1);
    }

    // Zig's BufferGroup.put: a CQE flagged BUF_MORE (incremental mode) leaves the buffer with
    // the kernel, its next data following this one's; otherwise the buffer goes back.
    void put(py::handle cqe) {
        Completion c = completion_of(cqe);
        check_live();
        if ((c.flags & cqe_flags::BUF_MORE) != 0) {
            heads_[c.bid] += static_cast<std::uint32_t>(c.res);
            return;
        }
        heads_[c.bid] = 0;
        add(c.bid, buf_size_, 0);
        advance(1);
    }

    // The bytes a CQE received: res bytes of its buffer (from where the previous completion
    // left off, in incremental mode).
    py::object get(py::handle cqe) const {
        Completion c = completion_of(cqe);
        std::size_t start = std::size_t{c.bid} * buf_size_ + heads_[c.bid];
        return view(start, static_cast<std::size_t>(c.res), true);
    }

    // A bundle receive's buffers: (bid, bytes) pairs in ring order from the CQE's buffer, as
    // many as its res covers. Call before recycling any of them.
    py::list bundle(py::handle cqe) const {
        if (incremental_) {
            raise(PyExc_ValueError, "bundle() is not available in incremental mode");
        }
        Completion c = completion_of(cqe, false);
        py::list out;
        auto remaining = static_cast<std::uint32_t>(c.res);
        std::uint16_t pos = bid_pos_[c.bid];
        for (std::uint32_t i = 0; remaining > 0; ++i) {
            if (i == entries_) {
                raise(PyExc_ValueError, "cqe.res exceeds the buffers queued after its buffer");
            }
            std::uint16_t b = slot_bid_[(pos + i) & mask()];
            std::uint32_t take = std::min(remaining, lens_[b]);
            out.append(py::make_tuple(b, view(std::size_t{b} * buf_size_, take, true)));
            remaining -= take;
        }
        return out;
    }

    // The whole of buffer `bid`, writable (to fill it for a send bundle).
    py::object buffer(py::handle bid_arg) const {
        std::uint16_t bid = checked_bid(bid_arg);
        return view(std::size_t{bid} * buf_size_, buf_size_, false);
    }

    py::object memory() const { return view(0, mem_->buffers_size, false); }

    static void bind(py::module_& m) {
        py::class_<BufRingStorage, std::shared_ptr<BufRingStorage>>(
            m, "_BufferRingMemory", py::buffer_protocol(),
            "The buffers of a BufferRing (exported as bytes; kept alive by its memoryviews).")
            .def_buffer([](BufRingStorage& s) {
                return py::buffer_info(s.buffers.data(), 1,
                                       py::format_descriptor<std::uint8_t>::format(), 1,
                                       {static_cast<py::ssize_t>(s.buffers_size)}, {1}, false);
            });
    }

private:
    struct Completion {
        std::uint16_t bid;
        std::int32_t res;
        std::uint32_t flags;
    };

    [[nodiscard]] Buf* ring_entries() const { return reinterpret_cast<Buf*>(mem_->ring.data()); }
    [[nodiscard]] std::uint32_t mask() const { return buf_ring_mask(entries_); }

    void check_live() const {
        ring_->check_usable();
        if (!registered_) {
            raise(PyExc_ValueError, "buffer ring " + std::to_string(bgid_) + " was unregistered");
        }
    }

    std::uint16_t checked_bid(py::handle h) const {
        std::int64_t bid = to_i64(h, "bid", 0, 65535);
        if (bid >= entries_) {
            raise(PyExc_ValueError, "bid " + std::to_string(bid) + " is out of range (" +
                                        std::to_string(entries_) + " buffers)");
        }
        return static_cast<std::uint16_t>(bid);
    }

    // A numpy.void record, or a 0-d array, of CQE_DTYPE or CQE32_DTYPE: its "res" and "flags"
    // are the kernel's i32 and u32 (any other dtype could have fields of any type, or none).
    static bool is_cqe_record(py::handle obj) {
        bool record = py::isinstance(obj, numpy_void_type()) ||
                      (py::isinstance<py::array>(obj) &&
                       py::reinterpret_borrow<py::array>(obj).ndim() == 0);
        if (!record) return false;
        py::object dtype = obj.attr("dtype");
        return dtype.equal(cqe_dtype(sizeof(Cqe))) || dtype.equal(cqe_dtype(sizeof(Cqe32)));
    }
    static py::handle numpy_void_type() {
        static PyObject* type =
            py::object(py::module_::import("numpy").attr("void")).release().ptr();
        return type;  // never released: the module lives until exit
    }

    // A Cqe, or a CQE_DTYPE record, that selected one of our buffers (and, unless it is a
    // bundle's, received no more than the rest of that buffer).
    Completion completion_of(py::handle cqe, bool one_buffer = true) const {
        std::int32_t res = 0;
        std::uint32_t flags = 0;
        if (Cqe c{}; cqe_fields(cqe, c)) {
            res = c.res;
            flags = c.flags;
        } else if (is_cqe_record(cqe)) {
            res = to_i32(cqe["res"], "cqe res");
            flags = to_u32(cqe["flags"], "cqe flags");
        } else {
            std::string what = type_name(cqe);
            if (PyObject_HasAttrString(cqe.ptr(), "dtype") != 0) {
                py::object dtype = cqe.attr("dtype");
                what += " of dtype " + py::str(dtype).cast<std::string>();
                if (py::isinstance<py::array>(cqe) &&
                    py::reinterpret_borrow<py::array>(cqe).ndim() != 0) {
                    what += " (an array: pass one of its elements)";
                }
            }
            raise(PyExc_TypeError,
                  "cqe must be an iouring.Cqe or a CQE_DTYPE (or CQE32_DTYPE) record, such as an "
                  "element of a copy_cqes() array, not " +
                      what);
        }
        if ((flags & cqe_flags::BUFFER) == 0) {
            raise(PyExc_ValueError, "cqe selected no buffer (CqeFlags.BUFFER is not set; res " +
                                        std::to_string(res) + ")");
        }
        auto bid = static_cast<std::uint16_t>(flags >> cqe_flags::BUFFER_SHIFT);
        if (bid >= entries_) {
            raise(PyExc_ValueError, "cqe's buffer id " + std::to_string(bid) +
                                        " is not one of this ring's " + std::to_string(entries_) +
                                        " buffers");
        }
        if (res < 0) raise(PyExc_ValueError, "cqe.res is negative: " + std::to_string(res));
        if (one_buffer &&
            std::uint64_t{heads_[bid]} + static_cast<std::uint64_t>(res) > buf_size_) {
            raise(PyExc_ValueError, "cqe.res (" + std::to_string(res) +
                                        ") exceeds the rest of buffer " + std::to_string(bid));
        }
        return {bid, res, flags};
    }

    // A memoryview of [start, start + length) of the buffers; it keeps the memory alive.
    py::object view(std::size_t start, std::size_t length, bool readonly) const {
        py::object whole = py::memoryview(py::cast(mem_));
        py::object part = whole[py::slice(static_cast<py::ssize_t>(start),
                                          static_cast<py::ssize_t>(start + length), 1)];
        return readonly ? part.attr("toreadonly")() : part;
    }

    // Writes buffer `bid` into the entry `offset` places past the tail (not yet published).
    void add(std::uint16_t bid, std::uint32_t length, std::uint32_t offset) {
        std::byte* addr = mem_->buffers.data() + std::size_t{bid} * buf_size_;
        buf_ring_add(ring_entries(), addr, length, bid, mask(), offset);
        auto pos = static_cast<std::uint16_t>(tail_ + offset);
        slot_bid_[pos & mask()] = bid;
        bid_pos_[bid] = pos;
        lens_[bid] = length;
    }

    void advance(std::uint32_t count) {
        buf_ring_advance(ring_entries(), static_cast<std::uint16_t>(count));
        tail_ = static_cast<std::uint16_t>(tail_ + count);
    }

    std::shared_ptr<Ring> ring_;
    std::shared_ptr<BufRingStorage> mem_;
    std::uint16_t bgid_ = 0;
    std::uint32_t entries_ = 0;
    std::uint32_t buf_size_ = 0;
    bool incremental_ = false;
    bool registered_ = false;
    std::uint16_t tail_ = 0;
    std::vector<std::uint32_t> heads_;     // incremental mode: bytes of each buffer consumed
    std::vector<std::uint32_t> lens_;      // the length each buffer was last queued with
    std::vector<std::uint16_t> slot_bid_;  // the buffer last written to each ring entry
    std::vector<std::uint16_t> bid_pos_;   // the ring position each buffer was last queued at
};

std::shared_ptr<BufferRing> new_buffer_ring(py::handle ring, py::handle bgid, py::handle entries,
                                            py::handle buf_size, py::handle incremental,
                                            py::handle populate) {
    if (!py::isinstance<Ring>(ring)) {
        raise(PyExc_TypeError, "ring must be an iouring.IoUring, not " + type_name(ring));
    }
    bool inc = to_bool(incremental, "incremental");
    bool fill = to_bool(populate, "populate");
    return std::make_shared<BufferRing>(ring.cast<std::shared_ptr<Ring>>(), bgid, entries, buf_size,
                                        inc, fill);
}

constexpr const char* kBufferRingDoc =
    "A registered provided-buffer ring (IORING_REGISTER_PBUF_RING, 5.19+): `entries` buffers "
    "(a power of two up to 32768) of `buf_size` bytes, page-aligned, in group `bgid`. "
    "Buffer-select operations (recv_provided, recv_multishot, read_multishot, read_provided, "
    "recvmsg_multishot, bundles) pick buffers from it; the CQE's buffer id names the one used. "
    "Read a completion's bytes with get(cqe), then put(cqe) (or recycle(bid)) to hand the "
    "buffer back. incremental=True (IOU_PBUF_RING_INC, 6.12+) lets the kernel fill a buffer "
    "across several completions (CqeFlags.BUF_MORE). populate=False starts with an empty ring "
    "(for send bundles: fill buffer(bid), then recycle(bid, length)). The memory stays alive "
    "until the ring closes, whatever becomes of this object. Raises ValueError/TypeError for "
    "bad arguments and OSError from the kernel (EEXIST: the group is taken; EINVAL: a flag "
    "the kernel lacks).";

}  // namespace

std::uint16_t to_buf_group(py::handle value, const char* name) {
    if (py::isinstance<BufferRing>(value)) return value.cast<const BufferRing&>().bgid();
    if (PyLong_Check(value.ptr()) || PyIndex_Check(value.ptr())) return to_u16(value, name);
    raise(PyExc_TypeError, std::string(name) +
                               " must be a buffer group id (int) or a BufferRing, not " +
                               type_name(value));
}

void register_buffer_ops(py::module_& m, RingClass& ring, SqeClass& sqe) {
    BufferRing::bind(m);
    py::class_<BufferRing, std::shared_ptr<BufferRing>>(m, "BufferRing", kBufferRingDoc)
        .def(py::init(&new_buffer_ring), py::arg("ring"), py::arg("bgid"), py::arg("entries"),
             py::arg("buf_size"), py::kw_only(), py::arg("incremental") = false,
             py::arg("populate") = true,
             "Registers `entries` (a power of two) buffers of `buf_size` bytes as group `bgid` "
             "of `ring`. Raises ValueError/TypeError for bad arguments and OSError from the "
             "kernel (EEXIST: the group is taken; EINVAL: a flag the kernel lacks).")
        .def_property_readonly("bgid", &BufferRing::bgid, "The buffer group id.")
        .def_property_readonly("entries", &BufferRing::size, "The number of buffers.")
        .def_property_readonly("buf_size", &BufferRing::buf_size, "The size of each buffer.")
        .def_property_readonly("incremental", &BufferRing::incremental,
                               "True for an incrementally consumed ring (IOU_PBUF_RING_INC).")
        .def_property_readonly("registered", &BufferRing::registered,
                               "False once unregistered or the ring closed.")
        .def_property_readonly("tail", &BufferRing::tail,
                               "The ring's tail (16-bit): buffers ever queued, modulo 65536.")
        .def("head", &BufferRing::head,
             "The kernel's head (IORING_REGISTER_PBUF_STATUS, 6.8+): buffers ever consumed, "
             "modulo 65536. Raises OSError where the kernel lacks it.")
        .def_property_readonly("memory", &BufferRing::memory,
                               "A writable memoryview of all the buffers (entries * buf_size "
                               "bytes; numpy.frombuffer(...).reshape(entries, buf_size)).")
        .def("buffer", &BufferRing::buffer, py::arg("bid"),
             "A writable memoryview of the whole of buffer bid. Raises ValueError out of range.")
        .def("get", &BufferRing::get, py::arg("cqe"),
             "A read-only memoryview of the cqe.res bytes a completion received into its "
             "buffer (a Cqe or a CQE_DTYPE record). Raises ValueError when the CQE selected no "
             "buffer (CqeFlags.BUFFER unset, e.g. -ENOBUFS) or not one of ours, TypeError naming "
             "cqe for anything but a Cqe or a CQE_DTYPE/CQE32_DTYPE record.")
        .def("put", &BufferRing::put, py::arg("cqe"),
             "Hands the CQE's buffer back to the kernel (with CqeFlags.BUF_MORE it stays with "
             "the kernel and get() of the next completion starts after this one's data). Raises "
             "as get() does.")
        .def("recycle", &BufferRing::recycle, py::arg("bid"), py::arg("length") = py::none(),
             "Queues buffer bid again with `length` bytes (default buf_size). Queueing a buffer "
             "the kernel still holds hands it out twice. Raises ValueError once unregistered.")
        .def("bundle", &BufferRing::bundle, py::arg("cqe"),
             "The (bid, data) pieces of a bundle receive, in ring order from the CQE's buffer, "
             "covering cqe.res bytes. Call it before recycling any of them. Raises as get() does.")
        .def("unregister", &BufferRing::unregister,
             "Unregisters the group (IORING_UNREGISTER_PBUF_RING). The memory stays alive "
             "until the ring closes: an operation in flight may still write into it.")
        .def("__enter__", [](py::object self) { return self; })
        .def("__exit__",
             [](BufferRing& self, py::args) {
                 if (self.registered()) self.unregister();
             })
        .def("__repr__", [](const BufferRing& self) {
            return "<iouring.BufferRing bgid=" + std::to_string(self.bgid()) +
                   " entries=" + std::to_string(self.size()) +
                   " buf_size=" + std::to_string(self.buf_size()) +
                   (self.incremental() ? " incremental" : "") +
                   (self.registered() ? "" : " unregistered") + ">";
        });

    ring.def(
            "register_buffer_ring",
            [](py::object self, py::handle bgid, py::handle entries, py::handle buf_size,
               py::handle incremental, py::handle populate) {
                return new_buffer_ring(self, bgid, entries, buf_size, incremental, populate);
            },
            py::arg("bgid"), py::arg("entries"), py::arg("buf_size"), py::kw_only(),
            py::arg("incremental") = false, py::arg("populate") = true,
            "Registers a provided-buffer ring and returns its BufferRing (see BufferRing). Raises "
            "TypeError/ValueError naming the argument for bad bgid, entries or buf_size, OSError "
            "from the kernel (EEXIST: bgid is taken) and ValueError on a closed ring.")
        .def(
            "unregister_buffer_ring",
            [](Ring& r, py::handle bgid) {
                std::uint16_t group = to_u16(bgid, "bgid");
                r.check_usable();
                int err = unregister_buf_ring(r.core(), group);
                if (err < 0) throw_errno(err, "unregister_buffer_ring");
            },
            py::arg("bgid"),
            "Unregisters provided-buffer ring bgid (prefer BufferRing.unregister(), which also "
            "stops its recycling). Raises OSError (ENOENT: no such ring).");

    // Every buffer operation, generated from tools/ops_spec.py by tools/gen_ops.py.
#include "generated/ops_buffer.inc"
}

}  // namespace iouring::bindings
