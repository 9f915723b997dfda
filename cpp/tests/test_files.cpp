// File operations through the ring, over every ring configuration: a linked write-then-read,
// readv/writev with Iovec arrays, fsync, openat/close, registered files (FIXED_FILE), registered
// buffers (read_fixed/write_fixed) and splice file -> pipe -> file. Each case asserts the
// prepared SQE where its layout is unusual and compares whole CQEs.
#include <fcntl.h>
#include <string>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

#include "check.hpp"

using namespace iouring;

namespace {

// A temporary file, unlinked at the end of the case.
struct TempFile {
    std::string path;
    int fd = -1;
    TempFile() {
        const char* dir = std::getenv("TMPDIR");
        path = std::string(dir != nullptr && *dir != '\0' ? dir : "/tmp") + "/iouring-test-XXXXXX";
        fd = ::mkstemp(path.data());
        CHECK(fd >= 0);
    }
    TempFile(const TempFile&) = delete;
    TempFile& operator=(const TempFile&) = delete;
    ~TempFile() {
        if (fd >= 0) ::close(fd);
        ::unlink(path.c_str());
    }
};

std::vector<unsigned char> pattern(std::size_t size, unsigned seed) {
    std::vector<unsigned char> bytes(size);
    for (std::size_t i = 0; i < size; ++i) {
        bytes[i] = static_cast<unsigned char>((i * 31 + seed) & 0xff);
    }
    return bytes;
}

std::vector<unsigned char> pread_all(int fd, std::size_t size, off_t offset) {
    std::vector<unsigned char> bytes(size);
    ssize_t n = ::pread(fd, bytes.data(), size, offset);
    bytes.resize(n < 0 ? 0 : static_cast<std::size_t>(n));
    return bytes;
}

std::vector<Cqe> submit_and_reap(IoUring& ring, std::uint32_t n) {
    CHECK(ring.submit() >= 0);
    return check::reap(ring, n);
}

Sqe rw_sqe(Op op, std::uint64_t user_data, std::int32_t fd, const void* addr, std::uint32_t len,
           std::uint64_t offset) {
    Sqe want{};
    want.opcode = static_cast<std::uint8_t>(op);
    want.fd = fd;
    want.off = offset;
    want.addr = address_of(addr);
    want.len = len;
    want.user_data = user_data;
    return want;
}

// WRITE linked to a READ of the same range: the read starts only after the write completed, so
// it must see the written bytes. A failed head cancels the rest of the chain.
void test_files_write_read_linked(IoUring& ring) {
    TempFile file;
    const std::vector<unsigned char> out = pattern(4096, 7);
    std::vector<unsigned char> in(4096, 0);

    Sqe* write = check::get_sqe(ring);
    prep_write(*write, 0x1111, file.fd, out.data(), 4096, 0);
    write->flags |= sqe_flags::IO_LINK;
    Sqe want = rw_sqe(Op::WRITE, 0x1111, file.fd, out.data(), 4096, 0);
    want.flags = sqe_flags::IO_LINK;
    CHECK_SQE(*write, want);
    Sqe* read = check::get_sqe(ring);
    prep_read(*read, 0x2222, file.fd, in.data(), 4096, 0);
    CHECK_SQE(*read, rw_sqe(Op::READ, 0x2222, file.fd, in.data(), 4096, 0));

    std::vector<Cqe> cqes = submit_and_reap(ring, 2);
    if (!CHECK_EQ(cqes.size(), 2)) return;
    CHECK_CQE(cqes[0], 0x1111, 4096, 0);  // links complete in order
    CHECK_CQE(cqes[1], 0x2222, 4096, 0);
    CHECK(in == out);
    CHECK(pread_all(file.fd, 4096, 0) == out);

    // The head fails (bad fd), so the linked read never runs.
    write = check::get_sqe(ring);
    prep_write(*write, 0x1112, -1, out.data(), 16, 0);
    write->flags |= sqe_flags::IO_LINK;
    read = check::get_sqe(ring);
    prep_read(*read, 0x2223, file.fd, in.data(), 16, 0);
    cqes = submit_and_reap(ring, 2);
    if (!CHECK_EQ(cqes.size(), 2)) return;
    CHECK_CQE(check::find_cqe(cqes, 0x1112), 0x1112, -EBADF, 0);
    CHECK_CQE(check::find_cqe(cqes, 0x2223), 0x2223, -ECANCELED, 0);
}

// WRITEV gathers three buffers of odd sizes; READV scatters the same range into two others.
void test_files_readv_writev(IoUring& ring) {
    TempFile file;
    const std::string a = "io_uring ";
    const std::string b(5000, 'x');
    const std::string c = " and a tail";
    const std::string all = a + b + c;
    const Iovec write_iovecs[3] = {{address_of(a.data()), a.size()},
                                   {address_of(b.data()), b.size()},
                                   {address_of(c.data()), c.size()}};
    Sqe* sqe = check::get_sqe(ring);
    prep_writev(*sqe, 0x3001, file.fd, write_iovecs, 3, 100);
    CHECK_SQE(*sqe, rw_sqe(Op::WRITEV, 0x3001, file.fd, write_iovecs, 3, 100));
    std::vector<Cqe> cqes = submit_and_reap(ring, 1);
    if (!CHECK_EQ(cqes.size(), 1)) return;
    CHECK_CQE(cqes[0], 0x3001, static_cast<std::int32_t>(all.size()), 0);

    std::vector<char> first(7);
    std::vector<char> second(all.size() - first.size() + 10);  // room past the end of file
    const Iovec read_iovecs[2] = {{address_of(first.data()), first.size()},
                                  {address_of(second.data()), second.size()}};
    sqe = check::get_sqe(ring);
    prep_readv(*sqe, 0x3002, file.fd, read_iovecs, 2, 100);
    CHECK_SQE(*sqe, rw_sqe(Op::READV, 0x3002, file.fd, read_iovecs, 2, 100));
    cqes = submit_and_reap(ring, 1);
    if (!CHECK_EQ(cqes.size(), 1)) return;
    CHECK_CQE(cqes[0], 0x3002, static_cast<std::int32_t>(all.size()), 0);  // short at EOF
    std::string got(first.begin(), first.end());
    got.append(second.begin(), second.begin() + static_cast<long>(all.size() - first.size()));
    CHECK(got == all);
    // The bytes before offset 100 are a hole of zeros.
    CHECK(pread_all(file.fd, 100, 0) == std::vector<unsigned char>(100, 0));
}

void test_files_fsync(IoUring& ring) {
    TempFile file;
    const std::vector<unsigned char> bytes = pattern(8192, 3);
    CHECK_EQ(::pwrite(file.fd, bytes.data(), bytes.size(), 0), 8192);

    Sqe* sqe = check::get_sqe(ring);
    prep_fsync(*sqe, 0x4001, file.fd, 0);
    CHECK_SQE(*sqe, rw_sqe(Op::FSYNC, 0x4001, file.fd, nullptr, 0, 0));
    sqe = check::get_sqe(ring);
    prep_fsync(*sqe, 0x4002, file.fd, kFsyncDatasync);
    Sqe want = rw_sqe(Op::FSYNC, 0x4002, file.fd, nullptr, 0, 0);
    want.op_flags = kFsyncDatasync;
    CHECK_SQE(*sqe, want);
    sqe = check::get_sqe(ring);
    prep_fsync(*sqe, 0x4003, -1, 0);
    std::vector<Cqe> cqes = submit_and_reap(ring, 3);
    if (!CHECK_EQ(cqes.size(), 3)) return;
    CHECK_CQE(check::find_cqe(cqes, 0x4001), 0x4001, 0, 0);
    CHECK_CQE(check::find_cqe(cqes, 0x4002), 0x4002, 0, 0);
    CHECK_CQE(check::find_cqe(cqes, 0x4003), 0x4003, -EBADF, 0);
}

// OPENAT's mode travels in `len` and its flags in op_flags; CLOSE closes a plain fd.
void test_files_openat_close(IoUring& ring) {
    TempFile file;
    const std::string text = "opened through the ring";
    CHECK_EQ(::pwrite(file.fd, text.data(), text.size(), 0), text.size());

    const auto open_flags = static_cast<std::uint32_t>(O_RDONLY | O_CLOEXEC);
    Sqe* sqe = check::get_sqe(ring);
    prep_openat(*sqe, 0x5001, AT_FDCWD, file.path.c_str(), open_flags, 0);
    Sqe want = rw_sqe(Op::OPENAT, 0x5001, AT_FDCWD, file.path.c_str(), 0, 0);
    want.op_flags = open_flags;
    CHECK_SQE(*sqe, want);
    sqe = check::get_sqe(ring);
    prep_openat(*sqe, 0x5002, AT_FDCWD, "/nonexistent/iouring-test", open_flags, 0);
    std::vector<Cqe> cqes = submit_and_reap(ring, 2);
    if (!CHECK_EQ(cqes.size(), 2)) return;
    const Cqe opened = check::find_cqe(cqes, 0x5001);
    CHECK_CQE(check::find_cqe(cqes, 0x5002), 0x5002, -ENOENT, 0);
    if (!CHECK(opened.res >= 0)) return;
    const int fd = opened.res;

    std::vector<char> in(64, 0);
    sqe = check::get_sqe(ring);
    prep_read(*sqe, 0x5003, fd, in.data(), 64, 0);
    cqes = submit_and_reap(ring, 1);
    if (!CHECK_EQ(cqes.size(), 1)) return;
    CHECK_CQE(cqes[0], 0x5003, static_cast<std::int32_t>(text.size()), 0);
    CHECK(std::string(in.data(), text.size()) == text);

    sqe = check::get_sqe(ring);
    prep_close(*sqe, 0x5004, fd);
    CHECK_SQE(*sqe, rw_sqe(Op::CLOSE, 0x5004, fd, nullptr, 0, 0));
    cqes = submit_and_reap(ring, 1);
    if (!CHECK_EQ(cqes.size(), 1)) return;
    CHECK_CQE(cqes[0], 0x5004, 0, 0);
    errno = 0;
    CHECK(::fcntl(fd, F_GETFD) == -1 && errno == EBADF);

    // O_CREAT with a mode, relative to a directory fd.
    std::string dir = file.path + ".d";
    if (!CHECK_EQ(::mkdir(dir.c_str(), 0700), 0)) return;
    const int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (CHECK(dir_fd >= 0)) {
        sqe = check::get_sqe(ring);
        prep_openat(*sqe, 0x5005, dir_fd, "created",
                    static_cast<std::uint32_t>(O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC), 0640);
        CHECK_EQ(sqe->len, 0640);
        cqes = submit_and_reap(ring, 1);
        if (CHECK_EQ(cqes.size(), 1) && CHECK(cqes[0].res >= 0)) {
            struct stat st {};
            CHECK_EQ(::fstat(cqes[0].res, &st), 0);
            CHECK_EQ(st.st_mode & 0777, 0640);  // main() set umask 022
            ::close(cqes[0].res);
            CHECK_EQ(::unlinkat(dir_fd, "created", 0), 0);
        }
        ::close(dir_fd);
    }
    CHECK_EQ(::rmdir(dir.c_str()), 0);
}

// Registered files: with FIXED_FILE the SQE's fd is an index into the table, not an fd. The
// table holds its own references, so the original fds can be closed first.
void test_files_registered_files(IoUring& ring) {
    const int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    const int zero_fd = ::open("/dev/zero", O_RDONLY | O_CLOEXEC);
    if (!CHECK(null_fd >= 0 && zero_fd >= 0)) return;
    const std::int32_t fds[2] = {null_fd, zero_fd};
    const int ret = ring.register_files(fds, 2);
    ::close(null_fd);
    ::close(zero_fd);
    if (!CHECK_EQ(ret, 0)) return;

    std::vector<unsigned char> buf(512, 0xff);
    auto read_fixed_file = [&](std::uint64_t user_data, std::int32_t index) {
        std::fill(buf.begin(), buf.end(), 0xff);
        Sqe* sqe = check::get_sqe(ring);
        prep_read(*sqe, user_data, index, buf.data(), 512, 0);
        sqe->flags |= sqe_flags::FIXED_FILE;
        std::vector<Cqe> cqes = submit_and_reap(ring, 1);
        return cqes.empty() ? Cqe{user_data, -ENOENT, ~0u} : cqes[0];
    };
    CHECK_CQE(read_fixed_file(0x6001, 1), 0x6001, 512, 0);  // index 1: /dev/zero
    CHECK(buf == std::vector<unsigned char>(512, 0));
    CHECK_CQE(read_fixed_file(0x6002, 0), 0x6002, 0, 0);  // index 0: /dev/null, at EOF
    CHECK(buf == std::vector<unsigned char>(512, 0xff));
    CHECK_CQE(read_fixed_file(0x6003, 2), 0x6003, -EBADF, 0);  // past the table

    // Slot 0 now gets /dev/zero too.
    const int zero_again = ::open("/dev/zero", O_RDONLY | O_CLOEXEC);
    if (CHECK(zero_again >= 0)) {
        const std::int32_t update[1] = {zero_again};
        CHECK_EQ(ring.register_files_update(0, update, 1), 1);
        ::close(zero_again);
        CHECK_CQE(read_fixed_file(0x6004, 0), 0x6004, 512, 0);
        CHECK(buf == std::vector<unsigned char>(512, 0));
    }

    CHECK_EQ(ring.unregister_files(), 0);
    CHECK_CQE(read_fixed_file(0x6005, 1), 0x6005, -EBADF, 0);
    CHECK_EQ(ring.unregister_files(), -ENXIO);  // nothing left to unregister
}

// Registered buffers: READ_FIXED/WRITE_FIXED name a buffer by index, and addr/len must lie
// inside it.
void test_files_registered_buffers(IoUring& ring) {
    TempFile file;
    std::vector<unsigned char> out = pattern(4096, 11);
    std::vector<unsigned char> in(4096, 0);
    const Iovec iovecs[2] = {{address_of(out.data()), out.size()},
                             {address_of(in.data()), in.size()}};
    const int ret = ring.register_buffers(iovecs, 2);
    if (ret == -ENOMEM || ret == -EPERM) {
        check::skip("test_files_registered_buffers", "cannot pin memory (RLIMIT_MEMLOCK)");
        return;
    }
    if (!CHECK_EQ(ret, 0)) return;

    Sqe* sqe = check::get_sqe(ring);
    prep_write_fixed(*sqe, 0x7001, file.fd, out.data(), 4096, 0, 0);
    sqe->flags |= sqe_flags::IO_LINK;
    Sqe want = rw_sqe(Op::WRITE_FIXED, 0x7001, file.fd, out.data(), 4096, 0);
    want.flags = sqe_flags::IO_LINK;
    CHECK_SQE(*sqe, want);
    sqe = check::get_sqe(ring);
    prep_read_fixed(*sqe, 0x7002, file.fd, in.data(), 4096, 0, 1);
    want = rw_sqe(Op::READ_FIXED, 0x7002, file.fd, in.data(), 4096, 0);
    want.buf_index = 1;
    CHECK_SQE(*sqe, want);
    std::vector<Cqe> cqes = submit_and_reap(ring, 2);
    if (!CHECK_EQ(cqes.size(), 2)) return;
    CHECK_CQE(cqes[0], 0x7001, 4096, 0);
    CHECK_CQE(cqes[1], 0x7002, 4096, 0);
    CHECK(in == out);
    CHECK(pread_all(file.fd, 4096, 0) == out);

    // A slice in the middle of buffer 1, from the middle of the file.
    std::fill(in.begin(), in.end(), 0);
    sqe = check::get_sqe(ring);
    prep_read_fixed(*sqe, 0x7003, file.fd, in.data() + 100, 200, 50, 1);
    // Outside buffer 1 (runs past its end), and a buffer index that does not exist.
    Sqe* past_end = check::get_sqe(ring);
    prep_read_fixed(*past_end, 0x7004, file.fd, in.data() + 4000, 200, 0, 1);
    Sqe* bad_index = check::get_sqe(ring);
    prep_read_fixed(*bad_index, 0x7005, file.fd, in.data(), 16, 0, 2);
    cqes = submit_and_reap(ring, 3);
    if (!CHECK_EQ(cqes.size(), 3)) return;
    CHECK_CQE(check::find_cqe(cqes, 0x7003), 0x7003, 200, 0);
    CHECK(std::equal(in.begin() + 100, in.begin() + 300, out.begin() + 50));
    CHECK(in[99] == 0 && in[300] == 0);
    CHECK_CQE(check::find_cqe(cqes, 0x7004), 0x7004, -EFAULT, 0);
    CHECK_CQE(check::find_cqe(cqes, 0x7005), 0x7005, -EFAULT, 0);

    CHECK_EQ(ring.unregister_buffers(), 0);
    CHECK_EQ(ring.unregister_buffers(), -ENXIO);
}

// SPLICE's odd layout: the input fd sits in splice_fd_in and its offset in addr; a pipe end
// takes kNoOffset.
void test_files_splice(IoUring& ring) {
    TempFile source;
    TempFile target;
    const std::vector<unsigned char> bytes = pattern(10000, 5);
    CHECK_EQ(::pwrite(source.fd, bytes.data(), bytes.size(), 0), bytes.size());
    int pipe_fds[2];
    if (!CHECK_EQ(::pipe2(pipe_fds, O_CLOEXEC), 0)) return;

    Sqe* sqe = check::get_sqe(ring);
    prep_splice(*sqe, 0x8001, source.fd, 0, pipe_fds[1], kNoOffset, 10000, 0);
    sqe->flags |= sqe_flags::IO_LINK;
    Sqe want{};
    want.opcode = static_cast<std::uint8_t>(Op::SPLICE);
    want.flags = sqe_flags::IO_LINK;
    want.fd = pipe_fds[1];
    want.off = kNoOffset;
    want.addr = 0;  // splice_off_in
    want.len = 10000;
    want.user_data = 0x8001;
    want.splice_fd_in = source.fd;
    CHECK_SQE(*sqe, want);
    sqe = check::get_sqe(ring);
    prep_splice(*sqe, 0x8002, pipe_fds[0], kNoOffset, target.fd, 0, 10000, 0);
    CHECK_EQ(sqe->addr, kNoOffset);
    CHECK_EQ(sqe->splice_fd_in, pipe_fds[0]);
    std::vector<Cqe> cqes = submit_and_reap(ring, 2);
    if (CHECK_EQ(cqes.size(), 2)) {
        CHECK_CQE(cqes[0], 0x8001, 10000, 0);
        CHECK_CQE(cqes[1], 0x8002, 10000, 0);
        CHECK(pread_all(target.fd, 10000, 0) == bytes);
    }
    ::close(pipe_fds[0]);
    ::close(pipe_fds[1]);
}

}  // namespace

int main() {
    ::umask(022);
    check::require_io_uring();
    check::run_configs("test_files_write_read_linked", 8, test_files_write_read_linked);
    check::run_configs("test_files_readv_writev", 8, test_files_readv_writev);
    check::run_configs("test_files_fsync", 8, test_files_fsync);
    check::run_configs("test_files_openat_close", 8, test_files_openat_close);
    check::run_configs("test_files_registered_files", 8, test_files_registered_files);
    check::run_configs("test_files_registered_buffers", 8, test_files_registered_buffers);
    check::run_configs("test_files_splice", 8, test_files_splice);
    return check::exit_code();
}
