// cat: print files to stdout, reading each through an io_uring in chunks with several reads in
// flight at once. Completions can arrive in any order; each read's user_data is the index of
// the buffer it fills, and buffers are printed in file order.
//
//   usage: cat FILE...
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

#include <iouring/iouring.hpp>

namespace {

constexpr unsigned kQueueDepth = 8;
constexpr std::uint32_t kChunkSize = 16 * 1024;

struct Chunk {
    std::vector<char> data = std::vector<char>(kChunkSize);
    std::uint64_t offset = 0;  // where the chunk starts in the file
    std::uint32_t filled = 0;  // bytes read so far
    bool in_flight = false;
    bool ready = false;  // filled as far as it will be: print it next when its turn comes
    bool eof = false;    // the read hit the end of the file
};

bool write_all(int fd, const char* p, std::size_t n) {
    while (n > 0) {
        ssize_t done = ::write(fd, p, n);
        if (done < 0 && errno == EINTR) continue;
        if (done < 0) return false;
        p += done;
        n -= static_cast<std::size_t>(done);
    }
    return true;
}

// Queues a read of the rest of `chunk`. The ring has a slot for every chunk, so get_sqe cannot
// fail here.
void queue_read(iouring::IoUring& ring, int fd, Chunk& chunk, unsigned index, bool seekable) {
    iouring::Sqe* sqe = ring.get_sqe();
    std::uint64_t offset = seekable ? chunk.offset + chunk.filled : iouring::kNoOffset;
    iouring::prep_read(*sqe, index, fd, chunk.data.data() + chunk.filled, kChunkSize - chunk.filled,
                       offset);
    chunk.in_flight = true;
}

int cat_file(iouring::IoUring& ring, const char* path) {
    int fd = ::open(path, O_RDONLY | O_CLOEXEC);
    struct stat st {};
    if (fd < 0 || ::fstat(fd, &st) != 0) {
        std::fprintf(stderr, "cat: %s: %s\n", path, std::strerror(errno));
        if (fd >= 0) ::close(fd);
        return 1;
    }
    // Pipes and terminals have no offsets: read them one chunk at a time from the current
    // position. Files get kQueueDepth reads at consecutive offsets.
    const bool seekable = S_ISREG(st.st_mode) || S_ISBLK(st.st_mode);
    const unsigned depth = seekable ? kQueueDepth : 1;
    std::vector<Chunk> chunks(depth);
    std::uint64_t next_offset = 0;
    for (unsigned i = 0; i < depth; ++i) {
        chunks[i].offset = next_offset;
        next_offset += kChunkSize;
        queue_read(ring, fd, chunks[i], i, seekable);
    }
    unsigned in_flight = depth;
    unsigned next_out = 0;  // the chunk holding the lowest offset not printed yet
    bool stop = false;      // end of file or an error: queue nothing new, let the rest finish
    int status = 0;
    iouring::Cqe cqes[kQueueDepth];

    // Never leave this loop with reads in flight: the kernel would write into freed buffers.
    while (in_flight > 0) {
        int ret = ring.submit();
        if (ret >= 0) ret = ring.copy_cqes(cqes, kQueueDepth, 1);
        if (ret == -EINTR) continue;
        if (ret < 0) {
            std::fprintf(stderr, "cat: io_uring: %s\n", std::strerror(-ret));
            std::exit(1);  // the ring is unusable; exiting is the only safe way out
        }
        for (int i = 0; i < ret; ++i) {
            auto index = static_cast<unsigned>(cqes[i].user_data);
            Chunk& chunk = chunks[index];
            const int res = cqes[i].res;
            chunk.in_flight = false;
            --in_flight;
            if ((res == -EINTR || res == -EAGAIN) && !stop) {
                queue_read(ring, fd, chunk, index, seekable);
                ++in_flight;
            } else if (res < 0) {
                if (status == 0) std::fprintf(stderr, "cat: %s: %s\n", path, std::strerror(-res));
                status = 1;
                stop = true;
            } else if (res == 0) {
                chunk.ready = chunk.eof = true;
            } else {
                chunk.filled += static_cast<std::uint32_t>(res);
                if (chunk.filled == kChunkSize || !seekable) {
                    chunk.ready = true;
                } else if (!stop) {
                    queue_read(ring, fd, chunk, index, seekable);  // short read: the rest
                    ++in_flight;
                }
            }
        }
        // Print the finished chunks in file order, and reuse each buffer for the next chunk.
        while (status == 0 && chunks[next_out].ready) {
            Chunk& chunk = chunks[next_out];
            if (!write_all(STDOUT_FILENO, chunk.data.data(), chunk.filled)) {
                std::fprintf(stderr, "cat: write error: %s\n", std::strerror(errno));
                status = 1;
                stop = true;
                break;
            }
            stop = stop || chunk.eof;
            chunk.ready = false;
            chunk.filled = 0;
            if (!stop) {
                chunk.offset = next_offset;
                next_offset += kChunkSize;
                queue_read(ring, fd, chunk, next_out, seekable);
                ++in_flight;
            }
            next_out = (next_out + 1) % depth;
        }
    }
    ::close(fd);
    return status;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: %s FILE...\n", argv[0]);
        return 2;
    }
    iouring::IoUring ring;
    if (int err = ring.init(kQueueDepth); err < 0) {
        std::fprintf(stderr, "cat: io_uring_setup: %s\n", std::strerror(-err));
        return 1;
    }
    int status = 0;
    for (int i = 1; i < argc; ++i) status |= cat_file(ring, argv[i]);
    return status;
}
