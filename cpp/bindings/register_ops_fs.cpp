// The fs family of operations: readv2/writev2, sync_file_range, fallocate, fadvise, madvise,
// ftruncate, openat2 and the direct-descriptor variants, close_direct, statx (with the
// ring-independent Statx result object and STATX_DTYPE), renameat, unlinkat, mkdirat,
// symlinkat, linkat, the xattr operations, tee and pipe. See ops.hpp for how each operation
// becomes two methods.
#include <pybind11/native_enum.h>
#include <pybind11/numpy.h>

#include <fcntl.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>

#include <iouring/sqe_fs.hpp>

#include "convert.hpp"
#include "dtype.hpp"
#include "flag_enum.hpp"
#include "module.hpp"
#include "ops.hpp"
#include "pins.hpp"

namespace iouring::bindings {

namespace {

// ---------------------------------------------------------------------------------------------
// Argument conversion

// Flags with a defined set: unknown bits raise ValueError before the ring is touched (the
// kernel would refuse them with EINVAL in the CQE). `hint` names the accepted flags.
std::uint32_t to_flags(py::handle h, const char* name, std::uint32_t allowed, const char* hint) {
    std::uint32_t value = to_u32(h, name);
    check_bits(value, allowed, name, hint);
    return value;
}

constexpr std::uint32_t kFallocateModes = falloc::KEEP_SIZE | falloc::PUNCH_HOLE |
                                          falloc::NO_HIDE_STALE | falloc::COLLAPSE_RANGE |
                                          falloc::ZERO_RANGE | falloc::INSERT_RANGE |
                                          falloc::UNSHARE_RANGE | falloc::WRITE_ZEROES;
constexpr std::uint32_t kStatxAtFlags = at_flags::SYMLINK_NOFOLLOW | at_flags::NO_AUTOMOUNT |
                                        at_flags::EMPTY_PATH | at_flags::STATX_FORCE_SYNC |
                                        at_flags::STATX_DONT_SYNC;
constexpr std::uint64_t kResolveFlags = resolve::NO_XDEV | resolve::NO_MAGICLINKS |
                                        resolve::NO_SYMLINKS | resolve::BENEATH | resolve::IN_ROOT |
                                        resolve::CACHED;

// A writable output buffer of at least `min_size` bytes.
PinnedBuffer pin_output(py::handle obj, std::size_t min_size, const char* name, const char* what) {
    PinnedBuffer b = pin_buffer(obj, true, name);
    if (b.size < min_size) {
        raise(PyExc_ValueError, std::string(name) + " must be at least " +
                                    std::to_string(min_size) + " bytes (" + what + "), got " +
                                    std::to_string(b.size));
    }
    return b;
}

// ---------------------------------------------------------------------------------------------
// Reads and writes with flags

template <bool Write>
Prepared make_rw_vectored2(py::handle user_data, py::handle fd, py::handle iovecs,
                           py::handle offset, py::handle flags) {
    std::uint64_t ud = to_u64(user_data, "user_data");
    std::int32_t file = to_fd(fd, "fd");
    std::uint64_t off = to_offset(offset, "offset");
    // RWF_* pass through: that set grows with the kernel (RWF_ATOMIC 6.11, RWF_DONTCACHE
    // 6.14, ...) and the kernel refuses what it does not know with EOPNOTSUPP in the CQE.
    std::uint32_t rw_flags = to_u32(flags, "flags");
    PinnedIovecs vec = pin_iovecs(iovecs, !Write, "iovecs");
    Prepared p;
    if constexpr (Write) {
        prep_writev2(p.sqe, ud, file, vec.iovecs, vec.count, off, rw_flags);
    } else {
        prep_readv2(p.sqe, ud, file, vec.iovecs, vec.count, off, rw_flags);
    }
    p.pins = std::move(vec.pins);
    return p;
}

// ---------------------------------------------------------------------------------------------
// Syncing, space and advice

Prepared make_sync_file_range(py::handle user_data, py::handle fd, py::handle len,
                              py::handle offset, py::handle flags) {
    Prepared p;
    std::uint64_t ud = to_u64(user_data, "user_data");
    std::int32_t file = to_fd(fd, "fd");
    std::uint32_t nbytes = to_u32(len, "len");
    std::uint64_t off = to_u64(offset, "offset");
    std::uint32_t range_flags = to_flags(flags, "flags",
                                         sync_range::WAIT_BEFORE | sync_range::WRITE |
                                             sync_range::WAIT_AFTER,
                                         "SyncFileRangeFlags");
    prep_sync_file_range(p.sqe, ud, file, nbytes, off, range_flags);
    return p;
}

Prepared make_fallocate(py::handle user_data, py::handle fd, py::handle mode, py::handle offset,
                        py::handle len) {
    Prepared p;
    std::uint64_t ud = to_u64(user_data, "user_data");
    std::int32_t file = to_fd(fd, "fd");
    std::uint32_t falloc_mode = to_flags(mode, "mode", kFallocateModes, "FallocateFlags");
    auto off = static_cast<std::uint64_t>(to_i64(offset, "offset", 0, INT64_MAX));
    auto length = static_cast<std::uint64_t>(to_i64(len, "len", 0, INT64_MAX));
    prep_fallocate(p.sqe, ud, file, falloc_mode, off, length);
    return p;
}

Prepared make_fadvise(py::handle user_data, py::handle fd, py::handle offset, py::handle len,
                      py::handle advice) {
    Prepared p;
    std::uint64_t ud = to_u64(user_data, "user_data");
    std::int32_t file = to_fd(fd, "fd");
    auto off = static_cast<std::uint64_t>(to_i64(offset, "offset", 0, INT64_MAX));
    auto length = static_cast<std::uint64_t>(to_i64(len, "len", 0, INT64_MAX));
    auto adv = static_cast<std::uint32_t>(to_i32(advice, "advice"));
    if (length <= 0xffffffffu) {
        prep_fadvise(p.sqe, ud, file, off, static_cast<std::uint32_t>(length), adv);
    } else {
        prep_fadvise64(p.sqe, ud, file, off, length, adv);
    }
    return p;
}

// madvise advice values (MADV_*), by what they may do to the memory of the range. The kernel
// rounds the range out to whole pages, so an advice that changes memory contents would also
// change the neighbours of a buffer that does not own its pages.
enum class AdviceKind { Preserving, ChangesPages, Refused, Unknown };

AdviceKind classify_madvise(std::int32_t advice) {
    switch (advice) {
        case 0:   // NORMAL
        case 1:   // RANDOM
        case 2:   // SEQUENTIAL
        case 3:   // WILLNEED
        case 12:  // MERGEABLE
        case 13:  // UNMERGEABLE
        case 14:  // HUGEPAGE
        case 15:  // NOHUGEPAGE
        case 16:  // DONTDUMP
        case 17:  // DODUMP
        case 20:  // COLD
        case 21:  // PAGEOUT
        case 22:  // POPULATE_READ
        case 23:  // POPULATE_WRITE
        case 25:  // COLLAPSE
            return AdviceKind::Preserving;
        case 4:   // DONTNEED: the pages read back as zeros (or the file's contents)
        case 8:   // FREE
        case 9:   // REMOVE
        case 11:  // DOFORK
        case 18:  // WIPEONFORK
        case 19:  // KEEPONFORK
        case 24:  // DONTNEED_LOCKED
            return AdviceKind::ChangesPages;
        case 10:   // DONTFORK: a forked child touching the object would crash
        case 100:  // HWPOISON
        case 101:  // SOFT_OFFLINE
        case 102:  // GUARD_INSTALL: touching the object would crash
        case 103:  // GUARD_REMOVE
            return AdviceKind::Refused;
        default:
            return AdviceKind::Unknown;
    }
}

Prepared make_madvise(py::handle user_data, py::handle buffer, py::handle advice) {
    std::uint64_t ud = to_u64(user_data, "user_data");
    std::int32_t adv = to_i32(advice, "advice");
    AdviceKind kind = classify_madvise(adv);
    if (kind == AdviceKind::Refused) {
        raise(PyExc_ValueError, "advice " + std::to_string(adv) +
                                    " is refused: it would make the memory of Python objects "
                                    "fault or crash (MADV_DONTFORK, MADV_GUARD_*, MADV_HWPOISON, "
                                    "MADV_SOFT_OFFLINE)");
    }
    if (kind == AdviceKind::Unknown) {
        raise(PyExc_ValueError, "advice " + std::to_string(adv) + " is not a known MADV_* value");
    }
    bool changes = kind == AdviceKind::ChangesPages;
    PinnedBuffer b = pin_buffer(buffer, changes, "buffer");
    std::uint32_t len = checked_len(b.size, "buffer");
    if (changes) {
        auto page = static_cast<std::uintptr_t>(sysconf(_SC_PAGESIZE));
        auto start = reinterpret_cast<std::uintptr_t>(b.data);
        if (start % page != 0 || len % page != 0) {
            raise(PyExc_ValueError,
                  "buffer must start on a page boundary and span whole pages (page size " +
                      std::to_string(page) + ") for advice " + std::to_string(adv) +
                      ", which changes the contents of every page in the range (use an "
                      "mmap.mmap or a page-aligned slice of one)");
        }
    }
    Prepared p;
    prep_madvise(p.sqe, ud, b.data, len, static_cast<std::uint32_t>(adv));
    p.pins.push_back(std::move(b.pin));
    return p;
}

Prepared make_ftruncate(py::handle user_data, py::handle fd, py::handle len) {
    Prepared p;
    std::uint64_t ud = to_u64(user_data, "user_data");
    std::int32_t file = to_fd(fd, "fd");
    auto length = static_cast<std::uint64_t>(to_i64(len, "len", 0, INT64_MAX));
    prep_ftruncate(p.sqe, ud, file, length);
    return p;
}

// ---------------------------------------------------------------------------------------------
// Opening and closing

struct OpenArgs {
    std::uint64_t ud;
    std::int32_t dir;
    PinnedPath path;
    std::uint32_t flags;
    std::uint32_t mode;
};

OpenArgs open_args(py::handle user_data, py::handle dir_fd, py::handle path, py::handle flags,
                   py::handle mode) {
    OpenArgs a{};
    a.ud = to_u64(user_data, "user_data");
    a.dir = to_dir_fd(dir_fd, "dir_fd");
    a.flags = static_cast<std::uint32_t>(to_i32(flags, "flags"));
    a.mode = to_u32(mode, "mode");
    a.path = pin_path(path, "path");
    return a;
}

template <bool Direct>
Prepared make_openat2_impl(py::handle user_data, py::handle dir_fd, py::handle path,
                           py::handle flags, py::handle mode, py::handle resolve,
                           py::handle file_index) {
    OpenArgs a = open_args(user_data, dir_fd, path, flags, mode);
    std::uint64_t resolve_flags = to_u64(resolve, "resolve");
    check_bits(resolve_flags, kResolveFlags, "resolve", "ResolveFlags");
    OpenHow how{a.flags, a.mode, resolve_flags};
    std::uint32_t slot = Direct ? to_file_index(file_index, "file_index", SlotAlloc::Allowed) : 0;
    PinnedCopy<OpenHow> copy = pin_copy(how);
    Prepared p;
    if constexpr (Direct) {
        prep_openat2_direct(p.sqe, a.ud, a.dir, a.path.c_str, copy.ptr, slot);
    } else {
        prep_openat2(p.sqe, a.ud, a.dir, a.path.c_str, copy.ptr);
    }
    p.pins.push_back(std::move(a.path.pin));
    p.pins.push_back(std::move(copy.pin));
    return p;
}

Prepared make_openat2(py::handle user_data, py::handle dir_fd, py::handle path, py::handle flags,
                      py::handle mode, py::handle resolve) {
    return make_openat2_impl<false>(user_data, dir_fd, path, flags, mode, resolve, py::none());
}

Prepared make_openat2_direct(py::handle user_data, py::handle dir_fd, py::handle path,
                             py::handle flags, py::handle mode, py::handle resolve,
                             py::handle file_index) {
    return make_openat2_impl<true>(user_data, dir_fd, path, flags, mode, resolve, file_index);
}

Prepared make_openat_direct(py::handle user_data, py::handle dir_fd, py::handle path,
                            py::handle flags, py::handle mode, py::handle file_index) {
    OpenArgs a = open_args(user_data, dir_fd, path, flags, mode);
    std::uint32_t slot = to_file_index(file_index, "file_index", SlotAlloc::Allowed);
    Prepared p;
    prep_openat_direct(p.sqe, a.ud, a.dir, a.path.c_str, a.flags, a.mode, slot);
    p.pins.push_back(std::move(a.path.pin));
    return p;
}

Prepared make_close_direct(py::handle user_data, py::handle file_index) {
    Prepared p;
    std::uint64_t ud = to_u64(user_data, "user_data");
    prep_close_direct(p.sqe, ud, to_file_index(file_index, "file_index", SlotAlloc::Refused));
    return p;
}

// ---------------------------------------------------------------------------------------------
// statx and its result object

// The statx output owned by a Python object, independent of any ring: the operation pins it
// through its buffer export, so it lives (and stays put) until the completion is reaped.
struct StatxResult {
    Statx st{};
};

double seconds_of(const StatxTimestamp& t) {
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) * 1e-9;
}

py::object nanoseconds_of(const StatxTimestamp& t) {
    return py::int_(t.tv_sec) * py::int_(1'000'000'000) + py::int_(t.tv_nsec);
}

Prepared make_statx(py::handle user_data, py::handle dir_fd, py::handle path, py::handle flags,
                    py::handle mask, py::handle statxbuf) {
    std::uint64_t ud = to_u64(user_data, "user_data");
    std::int32_t dir = to_dir_fd(dir_fd, "dir_fd");
    std::uint32_t at = to_flags(flags, "flags", kStatxAtFlags,
                                "AtFlags SYMLINK_NOFOLLOW, NO_AUTOMOUNT, EMPTY_PATH, STATX_*");
    std::uint32_t want = to_u32(mask, "mask");
    PinnedPath copy = pin_path(path, "path");
    PinnedBuffer out = pin_output(statxbuf, sizeof(Statx), "statxbuf", "a struct statx");
    Prepared p;
    prep_statx(p.sqe, ud, dir, copy.c_str, at, want, static_cast<Statx*>(out.data));
    p.pins.push_back(std::move(copy.pin));
    p.pins.push_back(std::move(out.pin));
    return p;
}

py::object statx_dtype() {
    py::object ts = struct_dtype({{"tv_sec", "<i8", offsetof(StatxTimestamp, tv_sec)},
                                  {"tv_nsec", "<u4", offsetof(StatxTimestamp, tv_nsec)},
                                  {"reserved", "<i4", offsetof(StatxTimestamp, reserved)}},
                                 sizeof(StatxTimestamp));
    return struct_dtype(
        {
            {"stx_mask", "<u4", offsetof(Statx, stx_mask)},
            {"stx_blksize", "<u4", offsetof(Statx, stx_blksize)},
            {"stx_attributes", "<u8", offsetof(Statx, stx_attributes)},
            {"stx_nlink", "<u4", offsetof(Statx, stx_nlink)},
            {"stx_uid", "<u4", offsetof(Statx, stx_uid)},
            {"stx_gid", "<u4", offsetof(Statx, stx_gid)},
            {"stx_mode", "<u2", offsetof(Statx, stx_mode)},
            {"stx_ino", "<u8", offsetof(Statx, stx_ino)},
            {"stx_size", "<u8", offsetof(Statx, stx_size)},
            {"stx_blocks", "<u8", offsetof(Statx, stx_blocks)},
            {"stx_attributes_mask", "<u8", offsetof(Statx, stx_attributes_mask)},
            {"stx_atime", ts, offsetof(Statx, stx_atime)},
            {"stx_btime", ts, offsetof(Statx, stx_btime)},
            {"stx_ctime", ts, offsetof(Statx, stx_ctime)},
            {"stx_mtime", ts, offsetof(Statx, stx_mtime)},
            {"stx_rdev_major", "<u4", offsetof(Statx, stx_rdev_major)},
            {"stx_rdev_minor", "<u4", offsetof(Statx, stx_rdev_minor)},
            {"stx_dev_major", "<u4", offsetof(Statx, stx_dev_major)},
            {"stx_dev_minor", "<u4", offsetof(Statx, stx_dev_minor)},
            {"stx_mnt_id", "<u8", offsetof(Statx, stx_mnt_id)},
            {"stx_dio_mem_align", "<u4", offsetof(Statx, stx_dio_mem_align)},
            {"stx_dio_offset_align", "<u4", offsetof(Statx, stx_dio_offset_align)},
            {"stx_subvol", "<u8", offsetof(Statx, stx_subvol)},
            {"stx_atomic_write_unit_min", "<u4", offsetof(Statx, stx_atomic_write_unit_min)},
            {"stx_atomic_write_unit_max", "<u4", offsetof(Statx, stx_atomic_write_unit_max)},
            {"stx_atomic_write_segments_max", "<u4",
             offsetof(Statx, stx_atomic_write_segments_max)},
            {"stx_dio_read_offset_align", "<u4", offsetof(Statx, stx_dio_read_offset_align)},
            {"stx_atomic_write_unit_max_opt", "<u4",
             offsetof(Statx, stx_atomic_write_unit_max_opt)},
        },
        sizeof(Statx));
}

void register_statx_class(py::module_& m) {
    using S = StatxResult;
    py::class_<S> cls(m, "Statx", py::buffer_protocol(),
                      "The output of a statx operation: owns the kernel's 256-byte struct statx "
                      "and belongs to no ring. Pass it as statxbuf; the ring keeps it alive "
                      "until the completion is reaped, after which the st_* attributes (named "
                      "as in os.stat_result) read the result. It also exports the raw bytes "
                      "(numpy.frombuffer(stx, STATX_DTYPE)). Reading it while the operation is "
                      "in flight returns whatever the kernel has written so far.");
    cls.def(py::init<>(), "A zeroed struct statx.").def_buffer([](S& s) {
        return py::buffer_info(&s.st, 1, py::format_descriptor<std::uint8_t>::format(), 1,
                               {static_cast<py::ssize_t>(sizeof(Statx))}, {1});
    });
    cls.def_property_readonly(
           "stx_mask",
           [](const S& s) {
               return py::module_::import("iouring._core").attr("StatxMask")(s.st.stx_mask);
           },
           "The fields the kernel filled (StatxMask); the others read as 0.")
        .def_property_readonly(
            "st_mode", [](const S& s) { return s.st.stx_mode; },
            "File type and permission bits, as os.stat_result.st_mode.")
        .def_property_readonly(
            "st_ino", [](const S& s) { return s.st.stx_ino; }, "The inode number.")
        .def_property_readonly(
            "st_dev", [](const S& s) { return makedev(s.st.stx_dev_major, s.st.stx_dev_minor); },
            "The device of the file, as os.makedev(stx_dev_major, stx_dev_minor).")
        .def_property_readonly(
            "st_rdev", [](const S& s) { return makedev(s.st.stx_rdev_major, s.st.stx_rdev_minor); },
            "The device a device file stands for.")
        .def_property_readonly(
            "st_nlink", [](const S& s) { return s.st.stx_nlink; }, "The number of hard links.")
        .def_property_readonly(
            "st_uid", [](const S& s) { return s.st.stx_uid; }, "The owner's user id.")
        .def_property_readonly(
            "st_gid", [](const S& s) { return s.st.stx_gid; }, "The owner's group id.")
        .def_property_readonly(
            "st_size", [](const S& s) { return s.st.stx_size; }, "The size in bytes.")
        .def_property_readonly(
            "st_blksize", [](const S& s) { return s.st.stx_blksize; },
            "The preferred block size for I/O.")
        .def_property_readonly(
            "st_blocks", [](const S& s) { return s.st.stx_blocks; },
            "Number of 512-byte blocks allocated.")
        .def_property_readonly(
            "st_atime", [](const S& s) { return seconds_of(s.st.stx_atime); },
            "Last access, in float seconds since the epoch.")
        .def_property_readonly(
            "st_mtime", [](const S& s) { return seconds_of(s.st.stx_mtime); },
            "Last modification, in float seconds since the epoch.")
        .def_property_readonly(
            "st_ctime", [](const S& s) { return seconds_of(s.st.stx_ctime); },
            "Last status change, in float seconds since the epoch.")
        .def_property_readonly(
            "st_birthtime",
            [](const S& s) -> py::object {
                if ((s.st.stx_mask & statx_mask::BTIME) == 0) return py::none();
                return py::float_(seconds_of(s.st.stx_btime));
            },
            "Creation time in float seconds, or None when the file system did not report it "
            "(StatxMask.BTIME not in stx_mask).")
        .def_property_readonly(
            "st_atime_ns", [](const S& s) { return nanoseconds_of(s.st.stx_atime); },
            "Last access, in integer nanoseconds since the epoch.")
        .def_property_readonly(
            "st_mtime_ns", [](const S& s) { return nanoseconds_of(s.st.stx_mtime); },
            "Last modification, in integer nanoseconds since the epoch.")
        .def_property_readonly(
            "st_ctime_ns", [](const S& s) { return nanoseconds_of(s.st.stx_ctime); },
            "Last status change, in integer nanoseconds since the epoch.")
        .def_property_readonly(
            "st_birthtime_ns",
            [](const S& s) -> py::object {
                if ((s.st.stx_mask & statx_mask::BTIME) == 0) return py::none();
                return nanoseconds_of(s.st.stx_btime);
            },
            "Creation time in integer nanoseconds, or None (see st_birthtime).")
        .def_property_readonly(
            "stx_attributes", [](const S& s) { return s.st.stx_attributes; },
            "File attributes (STATX_ATTR_*: compressed, immutable, append, ...).")
        .def_property_readonly(
            "stx_attributes_mask", [](const S& s) { return s.st.stx_attributes_mask; },
            "The STATX_ATTR_* bits this file system supports in stx_attributes.")
        .def_property_readonly(
            "stx_mnt_id", [](const S& s) { return s.st.stx_mnt_id; },
            "The mount id (StatxMask.MNT_ID or MNT_ID_UNIQUE).")
        .def_property_readonly(
            "stx_dio_mem_align", [](const S& s) { return s.st.stx_dio_mem_align; },
            "Memory alignment O_DIRECT needs, or 0 (StatxMask.DIOALIGN).")
        .def_property_readonly(
            "stx_dio_offset_align", [](const S& s) { return s.st.stx_dio_offset_align; },
            "File offset and length alignment O_DIRECT needs, or 0 (StatxMask.DIOALIGN).")
        .def_property_readonly(
            "stx_subvol", [](const S& s) { return s.st.stx_subvol; },
            "The subvolume id, or 0 (StatxMask.SUBVOL).")
        .def("__repr__", [](const S& s) {
            char text[160];
            std::snprintf(text, sizeof(text),
                          "<iouring.Statx mask=%#x mode=%#o ino=%llu size=%llu nlink=%u>",
                          s.st.stx_mask, s.st.stx_mode,
                          static_cast<unsigned long long>(s.st.stx_ino),
                          static_cast<unsigned long long>(s.st.stx_size), s.st.stx_nlink);
            return std::string(text);
        });
}

// ---------------------------------------------------------------------------------------------
// Names

// renameat and linkat: old (dir, path) to new (dir, path), both paths private copies.
template <bool Link>
Prepared make_two_paths(py::handle user_data, py::handle old_dir_fd, py::handle old_path,
                        py::handle new_dir_fd, py::handle new_path, py::handle flags) {
    std::uint64_t ud = to_u64(user_data, "user_data");
    std::int32_t old_dir = to_dir_fd(old_dir_fd, "old_dir_fd");
    std::int32_t new_dir = to_dir_fd(new_dir_fd, "new_dir_fd");
    std::uint32_t f = Link ? to_flags(flags, "flags",
                                      at_flags::SYMLINK_FOLLOW | at_flags::EMPTY_PATH,
                                      "AtFlags SYMLINK_FOLLOW, EMPTY_PATH")
                           : to_flags(flags, "flags",
                                      rename_flags::NOREPLACE | rename_flags::EXCHANGE |
                                          rename_flags::WHITEOUT,
                                      "RenameFlags");
    PinnedPath from = pin_path(old_path, "old_path");
    PinnedPath to = pin_path(new_path, "new_path");
    Prepared p;
    if constexpr (Link) {
        prep_linkat(p.sqe, ud, old_dir, from.c_str, new_dir, to.c_str, f);
    } else {
        prep_renameat(p.sqe, ud, old_dir, from.c_str, new_dir, to.c_str, f);
    }
    p.pins.push_back(std::move(from.pin));
    p.pins.push_back(std::move(to.pin));
    return p;
}

Prepared make_unlinkat(py::handle user_data, py::handle dir_fd, py::handle path, py::handle flags) {
    std::uint64_t ud = to_u64(user_data, "user_data");
    std::int32_t dir = to_dir_fd(dir_fd, "dir_fd");
    std::uint32_t unlink = to_flags(flags, "flags", at_flags::REMOVEDIR, "AtFlags.REMOVEDIR");
    PinnedPath copy = pin_path(path, "path");
    Prepared p;
    prep_unlinkat(p.sqe, ud, dir, copy.c_str, unlink);
    p.pins.push_back(std::move(copy.pin));
    return p;
}

Prepared make_mkdirat(py::handle user_data, py::handle dir_fd, py::handle path, py::handle mode) {
    std::uint64_t ud = to_u64(user_data, "user_data");
    std::int32_t dir = to_dir_fd(dir_fd, "dir_fd");
    std::uint32_t dir_mode = to_u32(mode, "mode");
    PinnedPath copy = pin_path(path, "path");
    Prepared p;
    prep_mkdirat(p.sqe, ud, dir, copy.c_str, dir_mode);
    p.pins.push_back(std::move(copy.pin));
    return p;
}

Prepared make_symlinkat(py::handle user_data, py::handle target, py::handle new_dir_fd,
                        py::handle link_path) {
    std::uint64_t ud = to_u64(user_data, "user_data");
    std::int32_t new_dir = to_dir_fd(new_dir_fd, "new_dir_fd");
    PinnedPath to = pin_path(target, "target");
    PinnedPath link = pin_path(link_path, "link_path");
    Prepared p;
    prep_symlinkat(p.sqe, ud, to.c_str, new_dir, link.c_str);
    p.pins.push_back(std::move(to.pin));
    p.pins.push_back(std::move(link.pin));
    return p;
}

// ---------------------------------------------------------------------------------------------
// Extended attributes: the name and path are private copies; the value is the caller's buffer
// (writable for the get operations; an empty one asks for the value's size).

Prepared make_getxattr(py::handle user_data, py::handle name, py::handle value, py::handle path) {
    std::uint64_t ud = to_u64(user_data, "user_data");
    PinnedPath attr = pin_path(name, "name");
    PinnedPath file = pin_path(path, "path");
    PinnedBuffer out = pin_buffer(value, true, "value");
    std::uint32_t len = checked_len(out.size, "value");
    Prepared p;
    prep_getxattr(p.sqe, ud, attr.c_str, out.data, file.c_str, len);
    p.pins.push_back(std::move(attr.pin));
    p.pins.push_back(std::move(file.pin));
    p.pins.push_back(std::move(out.pin));
    return p;
}

Prepared make_setxattr(py::handle user_data, py::handle name, py::handle value, py::handle path,
                       py::handle flags) {
    std::uint64_t ud = to_u64(user_data, "user_data");
    std::uint32_t xflags = to_flags(flags, "flags", xattr_flags::CREATE | xattr_flags::REPLACE,
                                    "XattrFlags");
    PinnedPath attr = pin_path(name, "name");
    PinnedPath file = pin_path(path, "path");
    PinnedBuffer in = pin_buffer(value, false, "value");
    std::uint32_t len = checked_len(in.size, "value");
    Prepared p;
    prep_setxattr(p.sqe, ud, attr.c_str, in.data, file.c_str, xflags, len);
    p.pins.push_back(std::move(attr.pin));
    p.pins.push_back(std::move(file.pin));
    p.pins.push_back(std::move(in.pin));
    return p;
}

Prepared make_fgetxattr(py::handle user_data, py::handle fd, py::handle name, py::handle value) {
    std::uint64_t ud = to_u64(user_data, "user_data");
    std::int32_t file = to_fd(fd, "fd");
    PinnedPath attr = pin_path(name, "name");
    PinnedBuffer out = pin_buffer(value, true, "value");
    std::uint32_t len = checked_len(out.size, "value");
    Prepared p;
    prep_fgetxattr(p.sqe, ud, file, attr.c_str, out.data, len);
    p.pins.push_back(std::move(attr.pin));
    p.pins.push_back(std::move(out.pin));
    return p;
}

Prepared make_fsetxattr(py::handle user_data, py::handle fd, py::handle name, py::handle value,
                        py::handle flags) {
    std::uint64_t ud = to_u64(user_data, "user_data");
    std::int32_t file = to_fd(fd, "fd");
    std::uint32_t xflags = to_flags(flags, "flags", xattr_flags::CREATE | xattr_flags::REPLACE,
                                    "XattrFlags");
    PinnedPath attr = pin_path(name, "name");
    PinnedBuffer in = pin_buffer(value, false, "value");
    std::uint32_t len = checked_len(in.size, "value");
    Prepared p;
    prep_fsetxattr(p.sqe, ud, file, attr.c_str, in.data, xflags, len);
    p.pins.push_back(std::move(attr.pin));
    p.pins.push_back(std::move(in.pin));
    return p;
}

// ---------------------------------------------------------------------------------------------
// Pipes

Prepared make_tee(py::handle user_data, py::handle fd_in, py::handle fd_out, py::handle len,
                  py::handle flags) {
    Prepared p;
    std::uint64_t ud = to_u64(user_data, "user_data");
    std::int32_t in = to_fd(fd_in, "fd_in");
    std::int32_t out = to_fd(fd_out, "fd_out");
    std::uint32_t nbytes = to_u32(len, "len");
    std::uint32_t flags_in = to_flags(flags, "flags", splice_flags::ALL,
                                      "SPLICE_F_MOVE, NONBLOCK, MORE, GIFT and FD_IN_FIXED");
    prep_tee(p.sqe, ud, in, out, nbytes, flags_in);
    return p;
}

template <bool Direct>
Prepared make_pipe_impl(py::handle user_data, py::handle fds, py::handle flags,
                        py::handle file_index) {
    std::uint64_t ud = to_u64(user_data, "user_data");
    // pipe2(2) flags; O_NOTIFICATION_PIPE is O_EXCL.
    constexpr std::uint32_t kPipeFlags = O_CLOEXEC | O_NONBLOCK | O_DIRECT | O_EXCL;
    std::uint32_t pipe_flags = to_flags(flags, "flags", kPipeFlags,
                                        "os.O_CLOEXEC, O_NONBLOCK, O_DIRECT, O_NOTIFICATION_PIPE");
    std::uint32_t slot = Direct ? to_file_index(file_index, "file_index", SlotAlloc::Allowed) : 0;
    PinnedBuffer out = pin_output(fds, 2 * sizeof(std::int32_t), "fds", "two C ints");
    Prepared p;
    if constexpr (Direct) {
        prep_pipe_direct(p.sqe, ud, static_cast<std::int32_t*>(out.data), pipe_flags, slot);
    } else {
        prep_pipe(p.sqe, ud, static_cast<std::int32_t*>(out.data), pipe_flags);
    }
    p.pins.push_back(std::move(out.pin));
    return p;
}

Prepared make_pipe(py::handle user_data, py::handle fds, py::handle flags) {
    return make_pipe_impl<false>(user_data, fds, flags, py::none());
}

Prepared make_pipe_direct(py::handle user_data, py::handle fds, py::handle flags,
                          py::handle file_index) {
    return make_pipe_impl<true>(user_data, fds, flags, file_index);
}

void register_fs_constants(py::module_& m) {
    FlagEnum<StatxMaskFlag>(m, "StatxMask",
                            "Fields requested from and reported by statx "
                            "(STATX_*).")
        .value("TYPE", statx_mask::TYPE)
        .value("MODE", statx_mask::MODE)
        .value("NLINK", statx_mask::NLINK)
        .value("UID", statx_mask::UID)
        .value("GID", statx_mask::GID)
        .value("ATIME", statx_mask::ATIME)
        .value("MTIME", statx_mask::MTIME)
        .value("CTIME", statx_mask::CTIME)
        .value("INO", statx_mask::INO)
        .value("SIZE", statx_mask::SIZE)
        .value("BLOCKS", statx_mask::BLOCKS)
        .value("BASIC_STATS", statx_mask::BASIC_STATS)
        .value("BTIME", statx_mask::BTIME)
        .value("MNT_ID", statx_mask::MNT_ID)
        .value("DIOALIGN", statx_mask::DIOALIGN)
        .value("MNT_ID_UNIQUE", statx_mask::MNT_ID_UNIQUE)
        .value("SUBVOL", statx_mask::SUBVOL)
        .value("WRITE_ATOMIC", statx_mask::WRITE_ATOMIC)
        .value("DIO_READ_ALIGN", statx_mask::DIO_READ_ALIGN)
        .finalize();
    FlagEnum<AtFlag>(m, "AtFlags", "AT_* flags of statx, unlinkat and linkat.")
        .value("SYMLINK_NOFOLLOW", at_flags::SYMLINK_NOFOLLOW)
        .value("REMOVEDIR", at_flags::REMOVEDIR)
        .value("SYMLINK_FOLLOW", at_flags::SYMLINK_FOLLOW)
        .value("NO_AUTOMOUNT", at_flags::NO_AUTOMOUNT)
        .value("EMPTY_PATH", at_flags::EMPTY_PATH)
        .value("STATX_FORCE_SYNC", at_flags::STATX_FORCE_SYNC)
        .value("STATX_DONT_SYNC", at_flags::STATX_DONT_SYNC)
        .finalize();
    FlagEnum<ResolveFlag>(m, "ResolveFlags", "RESOLVE_* flags of openat2 (open_how.resolve).")
        .value("NO_XDEV", resolve::NO_XDEV)
        .value("NO_MAGICLINKS", resolve::NO_MAGICLINKS)
        .value("NO_SYMLINKS", resolve::NO_SYMLINKS)
        .value("BENEATH", resolve::BENEATH)
        .value("IN_ROOT", resolve::IN_ROOT)
        .value("CACHED", resolve::CACHED)
        .finalize();
    FlagEnum<FallocateFlag>(m, "FallocateFlags", "FALLOC_FL_* modes of fallocate.")
        .value("KEEP_SIZE", falloc::KEEP_SIZE)
        .value("PUNCH_HOLE", falloc::PUNCH_HOLE)
        .value("NO_HIDE_STALE", falloc::NO_HIDE_STALE)
        .value("COLLAPSE_RANGE", falloc::COLLAPSE_RANGE)
        .value("ZERO_RANGE", falloc::ZERO_RANGE)
        .value("INSERT_RANGE", falloc::INSERT_RANGE)
        .value("UNSHARE_RANGE", falloc::UNSHARE_RANGE)
        .value("WRITE_ZEROES", falloc::WRITE_ZEROES)
        .finalize();
    FlagEnum<SyncFileRangeFlag>(m, "SyncFileRangeFlags", "SYNC_FILE_RANGE_* flags.")
        .value("WAIT_BEFORE", sync_range::WAIT_BEFORE)
        .value("WRITE", sync_range::WRITE)
        .value("WAIT_AFTER", sync_range::WAIT_AFTER)
        .finalize();
    FlagEnum<RenameFlag>(m, "RenameFlags", "RENAME_* flags of renameat (renameat2(2)).")
        .value("NOREPLACE", rename_flags::NOREPLACE)
        .value("EXCHANGE", rename_flags::EXCHANGE)
        .value("WHITEOUT", rename_flags::WHITEOUT)
        .finalize();
    FlagEnum<XattrFlag>(m, "XattrFlags", "XATTR_* flags of setxattr/fsetxattr.")
        .value("CREATE", xattr_flags::CREATE)
        .value("REPLACE", xattr_flags::REPLACE)
        .finalize();
    m.attr("AT_FDCWD") = kAtFdcwd;
    m.attr("STATX_SIZE") = sizeof(Statx);
    m.attr("STATX_DTYPE") = statx_dtype();
}

}  // namespace

void register_fs_ops(py::module_& m, RingClass& ring, SqeClass& sqe) {
    register_fs_constants(m);
    register_statx_class(m);

    // Every fs operation, generated from tools/ops_spec.py by tools/gen_ops.py.
#include "generated/ops_fs.inc"
}

}  // namespace iouring::bindings
