/*
 * c_reference.c: the C baseline of the iouring benchmarks.
 *
 * It does the work of each benchmark case the way a careful C program would, with the same raw
 * system calls as iouring's C++ core (io_uring_setup/enter/register through syscall(2); no
 * liburing, no <linux/io_uring.h>), the same ring setup (default flags, identity SQ index
 * array) and the same algorithm as the Python batch path, so a ratio against it measures what
 * Python adds and nothing else.
 *
 * The benchmark (python -m iouring bench) compiles this file with the system compiler into a
 * shared library and calls it through ctypes, so it runs in the benchmark's own process,
 * interleaved with the Python contenders. Built with -DREF_MAIN it is also a standalone program:
 *     cc -O2 -DREF_MAIN -o c_reference benchmarks/c_reference.c
 *     ./c_reference nop 64 10000000
 *     ./c_reference read FILE QD SIZE COUNT [fixed] [direct]
 *
 * Every function returns the elapsed wall-clock time of its timed loop in nanoseconds (ring
 * setup and buffer registration excluded), or a negative errno. A completion with an unexpected
 * result makes it return -EIO (with the result in *bad_res when bad_res is not NULL).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define SYS_SETUP 425
#define SYS_ENTER 426
#define SYS_REGISTER 427

#define OP_NOP 0
#define OP_READ_FIXED 4
#define OP_READ 22
#define ENTER_GETEVENTS 1u
#define FEAT_SINGLE_MMAP 1u
#define REGISTER_BUFFERS 0u
#define OFF_SQ_RING 0ull
#define OFF_SQES 0x10000000ull

struct sqe {
    uint8_t opcode;
    uint8_t flags;
    uint16_t ioprio;
    int32_t fd;
    uint64_t off;
    uint64_t addr;
    uint32_t len;
    uint32_t op_flags;
    uint64_t user_data;
    uint16_t buf_index;
    uint16_t personality;
    int32_t splice_fd_in;
    uint64_t addr3;
    uint64_t pad2;
};
_Static_assert(sizeof(struct sqe) == 64, "io_uring_sqe is 64 bytes");

struct cqe {
    uint64_t user_data;
    int32_t res;
    uint32_t flags;
};
_Static_assert(sizeof(struct cqe) == 16, "io_uring_cqe is 16 bytes");

struct sq_offsets {
    uint32_t head, tail, ring_mask, ring_entries, flags, dropped, array, resv1;
    uint64_t user_addr;
};
struct cq_offsets {
    uint32_t head, tail, ring_mask, ring_entries, overflow, cqes, flags, resv1;
    uint64_t user_addr;
};
struct params {
    uint32_t sq_entries, cq_entries, flags, sq_thread_cpu, sq_thread_idle, features, wq_fd;
    uint32_t resv[3];
    struct sq_offsets sq_off;
    struct cq_offsets cq_off;
};
_Static_assert(sizeof(struct params) == 120, "io_uring_params is 120 bytes");

struct iovec64 {
    uint64_t base;
    uint64_t len;
};

struct ring {
    int fd;
    void* ring_map;
    size_t ring_size;
    struct sqe* sqes;
    size_t sqes_size;
    uint32_t *sq_head, *sq_tail, *cq_head, *cq_tail;
    struct cqe* cqes;
    uint32_t sq_mask, sq_entries, cq_mask;
    uint32_t sqe_tail; /* private tail, published with one release store per batch */
};

static int sys_enter(int fd, unsigned to_submit, unsigned min_complete, unsigned flags) {
    long ret = syscall(SYS_ENTER, fd, to_submit, min_complete, flags, NULL, 0);
    return ret < 0 ? -errno : (int)ret;
}

static int ring_init(struct ring* r, unsigned entries) {
    struct params p;
    memset(&p, 0, sizeof(p));
    memset(r, 0, sizeof(*r));
    long fd = syscall(SYS_SETUP, entries, &p);
    if (fd < 0) return -errno;
    r->fd = (int)fd;
    if ((p.features & FEAT_SINGLE_MMAP) == 0) {
        close(r->fd);
        return -ENOSYS;
    }
    size_t sq_size = p.sq_off.array + p.sq_entries * sizeof(uint32_t);
    size_t cq_size = p.cq_off.cqes + p.cq_entries * sizeof(struct cqe);
    r->ring_size = sq_size > cq_size ? sq_size : cq_size;
    r->ring_map = mmap(NULL, r->ring_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, r->fd,
                       (off_t)OFF_SQ_RING);
    if (r->ring_map == MAP_FAILED) {
        int err = -errno;
        close(r->fd);
        return err;
    }
    r->sqes_size = p.sq_entries * sizeof(struct sqe);
    r->sqes = mmap(NULL, r->sqes_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, r->fd,
                   (off_t)OFF_SQES);
    if (r->sqes == MAP_FAILED) {
        int err = -errno;
        munmap(r->ring_map, r->ring_size);
        close(r->fd);
        return err;
    }
    char* base = r->ring_map;
    r->sq_head = (uint32_t*)(base + p.sq_off.head);
    r->sq_tail = (uint32_t*)(base + p.sq_off.tail);
    r->sq_mask = *(uint32_t*)(base + p.sq_off.ring_mask);
    r->sq_entries = *(uint32_t*)(base + p.sq_off.ring_entries);
    uint32_t* array = (uint32_t*)(base + p.sq_off.array);
    for (uint32_t i = 0; i < r->sq_entries; ++i) array[i] = i; /* identity, as iouring does */
    r->cq_head = (uint32_t*)(base + p.cq_off.head);
    r->cq_tail = (uint32_t*)(base + p.cq_off.tail);
    r->cq_mask = *(uint32_t*)(base + p.cq_off.ring_mask);
    r->cqes = (struct cqe*)(base + p.cq_off.cqes);
    r->sqe_tail = *r->sq_tail;
    return 0;
}

static void ring_exit(struct ring* r) {
    munmap(r->sqes, r->sqes_size);
    munmap(r->ring_map, r->ring_size);
    close(r->fd);
}

static inline struct sqe* next_sqe(struct ring* r) { return &r->sqes[r->sqe_tail++ & r->sq_mask]; }

/* Every field written, as prep_rw() does in iouring's core. */
static inline void prep(struct sqe* s, uint8_t op, int fd, uint64_t addr, uint32_t len,
                        uint64_t off, uint64_t user_data) {
    s->opcode = op;
    s->flags = 0;
    s->ioprio = 0;
    s->fd = fd;
    s->off = off;
    s->addr = addr;
    s->len = len;
    s->op_flags = 0;
    s->user_data = user_data;
    s->buf_index = 0;
    s->personality = 0;
    s->splice_fd_in = 0;
    s->addr3 = 0;
    s->pad2 = 0;
}

/* Publishes the prepared SQEs (release: their bodies before the tail) and enters. */
static int submit_and_wait(struct ring* r, unsigned wait_nr) {
    __atomic_store_n(r->sq_tail, r->sqe_tail, __ATOMIC_RELEASE);
    unsigned to_submit = r->sqe_tail - __atomic_load_n(r->sq_head, __ATOMIC_ACQUIRE);
    for (;;) {
        int ret = sys_enter(r->fd, to_submit, wait_nr, wait_nr ? ENTER_GETEVENTS : 0);
        if (ret != -EINTR) return ret;
    }
}

static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

static unsigned ring_size_for(unsigned n) {
    unsigned entries = 1;
    while (entries < n) entries <<= 1;
    return entries;
}

/*
 * NOPs in batches of `batch`: get and prepare `batch` SQEs, submit_and_wait(batch), reap the
 * batch (check every res, one head store). At batch 1 this is liburing's get_sqe, prep_nop,
 * submit_and_wait(1), peek/seen loop.
 */
long long ref_nop(unsigned batch, long long ops) {
    if (batch == 0 || batch > 32768 || ops < 0) return -EINVAL;
    struct ring r;
    int err = ring_init(&r, ring_size_for(batch));
    if (err < 0) return err;
    long long result = 0;
    long long start = now_ns();
    for (long long done = 0; done < ops;) {
        unsigned n = (unsigned)(ops - done < batch ? ops - done : batch);
        for (unsigned i = 0; i < n; ++i)
            prep(next_sqe(&r), OP_NOP, 0, 0, 0, 0, (uint64_t)(done + i));
        int ret = submit_and_wait(&r, n);
        if (ret < 0) {
            result = ret;
            break;
        }
        uint32_t head = *r.cq_head;
        uint32_t tail = __atomic_load_n(r.cq_tail, __ATOMIC_ACQUIRE);
        for (uint32_t h = head; h != tail; ++h) {
            if (r.cqes[h & r.cq_mask].res != 0) result = -EIO;
        }
        __atomic_store_n(r.cq_head, tail, __ATOMIC_RELEASE);
        done += tail - head;
        if (result < 0) break;
    }
    long long elapsed = now_ns() - start;
    ring_exit(&r);
    return result < 0 ? result : elapsed;
}

/*
 * `count` reads of `size` bytes from fd at offsets[0..count), `qd` of them in flight: slot s of
 * the caller's buffer (buf + s * size, qd * size bytes in all) receives one read at a time, and
 * the read's user_data is its slot's byte offset, as in the Python batch path. Each round trip
 * fills every free slot, submits and waits for at least one completion, then reaps every
 * completion ready (one head store). With `fixed`, buf is registered as one fixed buffer and
 * the reads are READ_FIXED. Every completion must return `size` bytes.
 */
long long ref_reads(int fd, unsigned qd, unsigned size, const uint64_t* offsets, long long count,
                    void* buf, int fixed, int32_t* bad_res) {
    if (qd == 0 || qd > 32768 || count < 0 || buf == NULL) return -EINVAL;
    struct ring r;
    int err = ring_init(&r, ring_size_for(qd));
    if (err < 0) return err;
    if (fixed) {
        struct iovec64 iov = {(uint64_t)(uintptr_t)buf, (uint64_t)qd * size};
        long ret = syscall(SYS_REGISTER, r.fd, REGISTER_BUFFERS, &iov, 1);
        if (ret < 0) {
            err = -errno;
            ring_exit(&r);
            return err;
        }
    }
    /* Free slots, as byte offsets into buf: a stack, like the Python path's refill. */
    uint64_t stack_small[256];
    uint64_t* free_slots = stack_small;
    if (qd > 256) {
        free_slots = mmap(NULL, qd * sizeof(uint64_t), PROT_READ | PROT_WRITE,
                          MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (free_slots == MAP_FAILED) {
            ring_exit(&r);
            return -ENOMEM;
        }
    }
    unsigned nfree = qd;
    for (unsigned i = 0; i < qd; ++i) free_slots[i] = (uint64_t)(qd - 1 - i) * size;
    uint8_t op = fixed ? OP_READ_FIXED : OP_READ;
    char* base = buf;
    long long result = 0, next = 0, done = 0;
    long long start = now_ns();
    while (done < count) {
        while (nfree > 0 && next < count) {
            uint64_t slot = free_slots[--nfree];
            prep(next_sqe(&r), op, fd, (uint64_t)(uintptr_t)(base + slot), size, offsets[next],
                 slot);
            ++next;
        }
        int ret = submit_and_wait(&r, 1);
        if (ret < 0) {
            result = ret;
            break;
        }
        uint32_t head = *r.cq_head;
        uint32_t tail = __atomic_load_n(r.cq_tail, __ATOMIC_ACQUIRE);
        for (uint32_t h = head; h != tail; ++h) {
            const struct cqe* c = &r.cqes[h & r.cq_mask];
            if (c->res != (int32_t)size) {
                if (bad_res != NULL) *bad_res = c->res;
                result = -EIO;
            }
            free_slots[nfree++] = c->user_data;
        }
        __atomic_store_n(r.cq_head, tail, __ATOMIC_RELEASE);
        done += tail - head;
        if (result < 0) break;
    }
    long long elapsed = now_ns() - start;
    /* Reap what an error left in flight before the ring (and the caller's buffer) goes away. */
    while (done < next) {
        if (submit_and_wait(&r, 1) < 0) break;
        uint32_t tail = __atomic_load_n(r.cq_tail, __ATOMIC_ACQUIRE);
        done += tail - *r.cq_head;
        __atomic_store_n(r.cq_head, tail, __ATOMIC_RELEASE);
    }
    if (free_slots != stack_small) munmap(free_slots, qd * sizeof(uint64_t));
    ring_exit(&r);
    return result < 0 ? result : elapsed;
}

int ref_version(void) { return 1; }

#ifdef REF_MAIN
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

int main(int argc, char** argv) {
    if (argc >= 4 && strcmp(argv[1], "nop") == 0) {
        long long ops = atoll(argv[3]);
        long long ns = ref_nop((unsigned)atoi(argv[2]), ops);
        if (ns < 0) return fprintf(stderr, "nop: %s\n", strerror((int)-ns)), 1;
        printf("nop batch %s: %.0f ops/s\n", argv[2], (double)ops * 1e9 / (double)ns);
        return 0;
    }
    if (argc >= 6 && strcmp(argv[1], "read") == 0) {
        int fixed = 0, direct = 0;
        for (int i = 6; i < argc; ++i) {
            fixed |= strcmp(argv[i], "fixed") == 0;
            direct |= strcmp(argv[i], "direct") == 0;
        }
        int fd = open(argv[2], O_RDONLY | (direct ? O_DIRECT : 0));
        if (fd < 0) return perror(argv[2]), 1;
        struct stat st;
        fstat(fd, &st);
        unsigned qd = (unsigned)atoi(argv[3]), size = (unsigned)atoi(argv[4]);
        long long count = atoll(argv[5]);
        uint64_t blocks = (uint64_t)st.st_size / size;
        uint64_t* offsets = malloc((size_t)count * sizeof(uint64_t));
        uint64_t x = 88172645463325252ull;
        for (long long i = 0; i < count; ++i) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            offsets[i] = (x % blocks) * size;
        }
        void* buf = mmap(NULL, (size_t)qd * size, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
        int32_t bad = 0;
        long long ns = ref_reads(fd, qd, size, offsets, count, buf, fixed, &bad);
        if (ns < 0) return fprintf(stderr, "read: %s (res %d)\n", strerror((int)-ns), bad), 1;
        printf("read qd %u size %u: %.0f ops/s\n", qd, size, (double)count * 1e9 / (double)ns);
        return 0;
    }
    fprintf(stderr, "usage: %s nop BATCH COUNT | read FILE QD SIZE COUNT [fixed] [direct]\n",
            argv[0]);
    return 2;
}
#endif
