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
 *     ./c_reference read FILE QD SIZE COUNT [fixed] [direct] [tune=MASK]
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
#define ENTER_REGISTERED_RING 16u
#define FEAT_SINGLE_MMAP 1u
#define SQE_FIXED_FILE 1u
#define SETUP_COOP_TASKRUN (1u << 8)
#define SETUP_TASKRUN_FLAG (1u << 9)
#define SETUP_SINGLE_ISSUER (1u << 12)
#define SETUP_DEFER_TASKRUN (1u << 13)
#define SETUP_NO_SQARRAY (1u << 16)
#define REGISTER_BUFFERS 0u
#define REGISTER_FILES 2u
#define REGISTER_RING_FDS 20u
#define UNREGISTER_RING_FDS 21u
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

struct rsrc_update {
    uint32_t offset;
    uint32_t resv;
    uint64_t data;
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
    int enter_fd;      /* fd, or the registered ring index with ENTER_REGISTERED_RING */
    unsigned enter_flags;
};

static int sys_enter(int fd, unsigned to_submit, unsigned min_complete, unsigned flags) {
    long ret = syscall(SYS_ENTER, fd, to_submit, min_complete, flags, NULL, 0);
    return ret < 0 ? -errno : (int)ret;
}

/* setup_flags: 0 (the default ring) or the SETUP_* flags of a tuned read loop. */
static int ring_init(struct ring* r, unsigned entries, unsigned setup_flags) {
    struct params p;
    memset(&p, 0, sizeof(p));
    memset(r, 0, sizeof(*r));
    p.flags = setup_flags;
    long fd = syscall(SYS_SETUP, entries, &p);
    if (fd < 0) return -errno;
    r->fd = r->enter_fd = (int)fd;
    if ((p.features & FEAT_SINGLE_MMAP) == 0) {
        close(r->fd);
        return -ENOSYS;
    }
    int has_array = (setup_flags & SETUP_NO_SQARRAY) == 0;
    size_t sq_size = has_array ? p.sq_off.array + p.sq_entries * sizeof(uint32_t) : 0;
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
    if (has_array) {
        uint32_t* array = (uint32_t*)(base + p.sq_off.array);
        for (uint32_t i = 0; i < r->sq_entries; ++i) array[i] = i; /* identity, as iouring does */
    }
    r->cq_head = (uint32_t*)(base + p.cq_off.head);
    r->cq_tail = (uint32_t*)(base + p.cq_off.tail);
    r->cq_mask = *(uint32_t*)(base + p.cq_off.ring_mask);
    r->cqes = (struct cqe*)(base + p.cq_off.cqes);
    r->sqe_tail = *r->sq_tail;
    return 0;
}

static void ring_exit(struct ring* r) {
    if (r->enter_flags & ENTER_REGISTERED_RING) {
        /* The thread's registration holds a reference to the ring: closing the fd alone would
         * leak the ring and, after 16 of them, fail REGISTER_RING_FDS with EBUSY. */
        struct rsrc_update update = {(uint32_t)r->enter_fd, 0, 0};
        syscall(SYS_REGISTER, r->fd, UNREGISTER_RING_FDS, &update, 1);
    }
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
        unsigned flags = r->enter_flags | (wait_nr ? ENTER_GETEVENTS : 0);
        int ret = sys_enter(r->enter_fd, to_submit, wait_nr, flags);
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
    int err = ring_init(&r, ring_size_for(batch), 0);
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

/* The techniques a tuned read loop may use (ref_reads_tuned's `tune`, a bit mask). */
#define TUNE_FIXED_FILE 1u      /* the fd registered (REGISTER_FILES), SQEs with FIXED_FILE */
#define TUNE_DEFER_TASKRUN 2u   /* SETUP_SINGLE_ISSUER | SETUP_DEFER_TASKRUN */
#define TUNE_COOP_TASKRUN 4u    /* SETUP_COOP_TASKRUN | SETUP_TASKRUN_FLAG */
#define TUNE_REGISTERED_RING 8u /* REGISTER_RING_FDS, enters with ENTER_REGISTERED_RING */
#define TUNE_NO_SQARRAY 16u     /* SETUP_NO_SQARRAY */
#define TUNE_SINGLE_ISSUER 32u  /* SETUP_SINGLE_ISSUER alone */
#define TUNE_HALVES 64u         /* at most qd/2 new reads per enter */
#define TUNE_ALL 127u

/*
 * `count` reads of `size` bytes from fd at offsets[0..count), `qd` of them in flight: slot s of
 * the caller's buffer (buf + s * size, qd * size bytes in all) receives one read at a time, and
 * the read's user_data is its slot's byte offset, as in the Python batch path. Each round trip
 * fills every free slot, submits and waits for at least one completion, then reaps every
 * completion ready (one head store). With `fixed`, buf is registered as one fixed buffer and
 * the reads are READ_FIXED. Every completion must return `size` bytes. `tune` (TUNE_*) adds
 * ring setup flags and registrations, which change nothing else: the same file, offsets,
 * queue depth and algorithm. Setup and registration are not timed.
 */
long long ref_reads_tuned(int fd, unsigned qd, unsigned size, const uint64_t* offsets,
                          long long count, void* buf, int fixed, unsigned tune, int32_t* bad_res) {
    if (qd == 0 || qd > 32768 || count < 0 || buf == NULL || (tune & ~TUNE_ALL) != 0)
        return -EINVAL;
    if ((tune & TUNE_DEFER_TASKRUN) && (tune & TUNE_COOP_TASKRUN)) return -EINVAL;
    unsigned setup_flags = 0;
    if (tune & TUNE_DEFER_TASKRUN) setup_flags |= SETUP_SINGLE_ISSUER | SETUP_DEFER_TASKRUN;
    if (tune & TUNE_COOP_TASKRUN) setup_flags |= SETUP_COOP_TASKRUN | SETUP_TASKRUN_FLAG;
    if (tune & TUNE_SINGLE_ISSUER) setup_flags |= SETUP_SINGLE_ISSUER;
    if (tune & TUNE_NO_SQARRAY) setup_flags |= SETUP_NO_SQARRAY;
    struct ring r;
    int err = ring_init(&r, ring_size_for(qd), setup_flags);
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
    int sqe_fd = fd;
    uint8_t sqe_flags = 0;
    if (tune & TUNE_FIXED_FILE) {
        int32_t files[1] = {fd};
        long ret = syscall(SYS_REGISTER, r.fd, REGISTER_FILES, files, 1);
        if (ret < 0) {
            err = -errno;
            ring_exit(&r);
            return err;
        }
        sqe_fd = 0;
        sqe_flags = SQE_FIXED_FILE;
    }
    if (tune & TUNE_REGISTERED_RING) {
        struct rsrc_update update = {~0u, 0, (uint64_t)r.fd};
        long ret = syscall(SYS_REGISTER, r.fd, REGISTER_RING_FDS, &update, 1);
        if (ret != 1) {
            err = ret < 0 ? -errno : -EINVAL;
            ring_exit(&r);
            return err;
        }
        r.enter_fd = (int)update.offset;
        r.enter_flags = ENTER_REGISTERED_RING;
    }
    unsigned per_enter = (tune & TUNE_HALVES) && qd > 1 ? qd / 2 : qd;
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
        for (unsigned k = 0; k < per_enter && nfree > 0 && next < count; ++k) {
            uint64_t slot = free_slots[--nfree];
            struct sqe* s = next_sqe(&r);
            prep(s, op, sqe_fd, (uint64_t)(uintptr_t)(base + slot), size, offsets[next], slot);
            s->flags = sqe_flags;
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

/* The plain read loop: the default ring, plain fd (ref_reads_tuned without tuning). */
long long ref_reads(int fd, unsigned qd, unsigned size, const uint64_t* offsets, long long count,
                    void* buf, int fixed, int32_t* bad_res) {
    return ref_reads_tuned(fd, qd, size, offsets, count, buf, fixed, 0, bad_res);
}

int ref_version(void) { return 2; }

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
        unsigned tune = 0;
        for (int i = 6; i < argc; ++i) {
            fixed |= strcmp(argv[i], "fixed") == 0;
            direct |= strcmp(argv[i], "direct") == 0;
            if (strncmp(argv[i], "tune=", 5) == 0) tune = (unsigned)strtoul(argv[i] + 5, NULL, 0);
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
        long long ns = ref_reads_tuned(fd, qd, size, offsets, count, buf, fixed, tune, &bad);
        if (ns < 0) return fprintf(stderr, "read: %s (res %d)\n", strerror((int)-ns), bad), 1;
        printf("read qd %u size %u: %.0f ops/s\n", qd, size, (double)count * 1e9 / (double)ns);
        return 0;
    }
    fprintf(stderr,
            "usage: %s nop BATCH COUNT | read FILE QD SIZE COUNT [fixed] [direct] [tune=MASK]\n",
            argv[0]);
    return 2;
}
#endif
