// The tiny harness shared by the core's test programs. Each test_*.cpp is a plain program in
// liburing's model: exit 0 when every check passed, 1 when one failed, 77 when nothing could
// run (ctest's SKIP_RETURN_CODE). Failed checks print file:line, the expression and both values,
// and the program goes on, so one run shows every broken check.
#pragma once

#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include <iouring/iouring.hpp>

namespace check {

inline constexpr int kExitPass = 0;
inline constexpr int kExitFail = 1;
inline constexpr int kExitSkip = 77;

struct Tally {
    int failures = 0;       // failed checks
    int cases_run = 0;      // cases (or case x configuration) that ran
    int cases_skipped = 0;  // whole cases that could not run here: the program exits 77
};
inline Tally tally;

// --- printing values -------------------------------------------------------------------------

inline std::string errno_name(int err) {
    return err > 0 ? std::string(std::strerror(err)) : std::string("?");
}

template <typename T>
std::string show(const T& value) {
    char buf[96];
    if constexpr (std::is_enum_v<T>) {
        return show(static_cast<std::underlying_type_t<T>>(value));
    } else if constexpr (std::is_same_v<T, bool>) {
        return value ? "true" : "false";
    } else if constexpr (std::is_integral_v<T> && std::is_signed_v<T>) {
        auto v = static_cast<long long>(value);
        if (v < 0 && v >= -4095) {
            std::snprintf(buf, sizeof buf, "%lld (-%s)", v,
                          errno_name(static_cast<int>(-v)).c_str());
        } else {
            std::snprintf(buf, sizeof buf, "%lld", v);
        }
        return buf;
    } else if constexpr (std::is_integral_v<T>) {
        auto v = static_cast<unsigned long long>(value);
        std::snprintf(buf, sizeof buf, "%llu (0x%llx)", v, v);
        return buf;
    } else if constexpr (std::is_pointer_v<T> || std::is_null_pointer_v<T>) {
        std::snprintf(buf, sizeof buf, "%p", static_cast<const void*>(value));
        return buf;
    } else {
        return std::string(value);
    }
}

inline std::string show_cqe(std::uint64_t user_data, std::int32_t res, std::uint32_t flags) {
    return "{user_data=" + show(user_data) + ", res=" + show(res) + ", flags=" + show(flags) + "}";
}

// --- checks ----------------------------------------------------------------------------------

inline bool expect(bool ok, const char* file, int line, const char* expr) {
    if (!ok) {
        ++tally.failures;
        std::fprintf(stderr, "%s:%d: CHECK failed: %s\n", file, line, expr);
    }
    return ok;
}

template <typename A, typename B>
bool equal(const A& a, const B& b) {
    if constexpr (std::is_enum_v<A>) {
        return equal(static_cast<std::underlying_type_t<A>>(a), b);
    } else if constexpr (std::is_enum_v<B>) {
        return equal(a, static_cast<std::underlying_type_t<B>>(b));
    } else if constexpr (std::is_integral_v<A> && std::is_integral_v<B> &&
                         !std::is_same_v<A, bool> && !std::is_same_v<B, bool>) {
        return std::cmp_equal(a, b);  // no sign-compare surprises between u32 and int
    } else {
        return a == b;
    }
}

template <typename A, typename B>
bool expect_eq(const A& a, const B& b, const char* file, int line, const char* ea, const char* eb) {
    bool ok = equal(a, b);
    if (!ok) {
        ++tally.failures;
        std::fprintf(stderr, "%s:%d: CHECK_EQ failed: %s == %s\n    left:  %s\n    right: %s\n",
                     file, line, ea, eb, show(a).c_str(), show(b).c_str());
    }
    return ok;
}

// Zig's habit: compare the whole CQE, not just res.
inline bool expect_cqe(const iouring::Cqe& got, std::uint64_t user_data, std::int32_t res,
                       std::uint32_t flags, const char* file, int line, const char* expr) {
    bool ok = got.user_data == user_data && got.res == res && got.flags == flags;
    if (!ok) {
        ++tally.failures;
        std::fprintf(stderr, "%s:%d: CHECK_CQE failed: %s\n    got:  %s\n    want: %s\n", file,
                     line, expr, show_cqe(got.user_data, got.res, got.flags).c_str(),
                     show_cqe(user_data, res, flags).c_str());
    }
    return ok;
}

// Compares every field of a prepared SQE with the expected one and names each that differs.
inline bool expect_sqe(const iouring::Sqe& got, const iouring::Sqe& want, const char* file,
                       int line, const char* expr) {
    bool ok = true;
    auto field = [&](const char* name, auto g, auto w) {
        if (g != w) {
            if (ok) std::fprintf(stderr, "%s:%d: CHECK_SQE failed: %s\n", file, line, expr);
            ok = false;
            std::fprintf(stderr, "    %s: got %s, want %s\n", name, show(g).c_str(),
                         show(w).c_str());
        }
    };
    field("opcode", got.opcode, want.opcode);
    field("flags", got.flags, want.flags);
    field("ioprio", got.ioprio, want.ioprio);
    field("fd", got.fd, want.fd);
    field("off", got.off, want.off);
    field("addr", got.addr, want.addr);
    field("len", got.len, want.len);
    field("op_flags", got.op_flags, want.op_flags);
    field("user_data", got.user_data, want.user_data);
    field("buf_index", got.buf_index, want.buf_index);
    field("personality", got.personality, want.personality);
    field("splice_fd_in", got.splice_fd_in, want.splice_fd_in);
    field("addr3", got.addr3, want.addr3);
    field("pad2", got.pad2, want.pad2);
    if (!ok) ++tally.failures;
    return ok;
}

}  // namespace check

#define CHECK(cond) ::check::expect(static_cast<bool>(cond), __FILE__, __LINE__, #cond)
#define FAIL(message) ::check::expect(false, __FILE__, __LINE__, message)
#define CHECK_EQ(a, b) ::check::expect_eq((a), (b), __FILE__, __LINE__, #a, #b)
#define CHECK_CQE(cqe, user_data, res, flags) \
    ::check::expect_cqe((cqe), (user_data), (res), (flags), __FILE__, __LINE__, #cqe)
#define CHECK_SQE(sqe, want) ::check::expect_sqe((sqe), (want), __FILE__, __LINE__, #sqe)

namespace check {

// --- cases and ring configurations -----------------------------------------------------------

// Runs one named case and prints its verdict.
template <typename Body>
void run(const char* name, Body&& body) {
    int before = tally.failures;
    std::forward<Body>(body)();
    ++tally.cases_run;
    std::printf("%-56s %s\n", name, tally.failures == before ? "ok" : "FAILED");
    std::fflush(stdout);
}

// A case that cannot run on this kernel or in this sandbox: the program will exit 77 unless
// something failed.
inline void skip(const char* name, const std::string& why) {
    ++tally.cases_skipped;
    std::printf("%-56s SKIP (%s)\n", name, why.c_str());
    std::fflush(stdout);
}

struct Config {
    const char* name;
    std::uint32_t flags;
};

// Every ring configuration the cheap tests run over (liburing runs each test this way).
inline constexpr Config kConfigs[] = {
    {"default", 0},
    {"NO_SQARRAY", iouring::setup::NO_SQARRAY},
    {"SQPOLL", iouring::setup::SQPOLL},
    {"SINGLE_ISSUER|DEFER_TASKRUN", iouring::setup::SINGLE_ISSUER | iouring::setup::DEFER_TASKRUN},
    {"COOP_TASKRUN|TASKRUN_FLAG", iouring::setup::COOP_TASKRUN | iouring::setup::TASKRUN_FLAG},
};

inline bool is_sqpoll(const iouring::IoUring& ring) {
    return (ring.flags() & iouring::setup::SQPOLL) != 0;
}

// Runs `body(ring)` on a fresh ring of `entries` for every configuration. EINVAL from init means
// "this kernel does not know the configuration" and skips only that configuration (as does
// EPERM for SQPOLL, which needed privileges before 5.11). If every configuration was skipped,
// the case counts as skipped.
template <typename Body>
void run_configs(const char* name, unsigned entries, Body&& body) {
    int ran = 0;
    for (const Config& config : kConfigs) {
        std::string label = std::string(name) + "[" + config.name + "]";
        iouring::IoUring ring;
        iouring::SetupOptions options;
        options.flags = config.flags;
        int err = ring.init(entries, options);
        bool sqpoll_eperm = err == -EPERM && (config.flags & iouring::setup::SQPOLL) != 0;
        if (err == -EINVAL || sqpoll_eperm) {
            std::printf("%-56s skip config (init: %s)\n", label.c_str(), errno_name(-err).c_str());
            continue;
        }
        if (err != 0) {
            ++tally.failures;
            std::fprintf(stderr, "%s: init(%u, 0x%x) failed: %s\n", label.c_str(), entries,
                         config.flags, errno_name(-err).c_str());
            std::printf("%-56s FAILED\n", label.c_str());
            continue;
        }
        ++ran;
        run(label.c_str(), [&] { body(ring); });
    }
    if (ran == 0) skip(name, "no ring configuration is supported");
}

inline int exit_code() {
    if (tally.failures != 0) {
        std::printf("%d check(s) FAILED\n", tally.failures);
        return kExitFail;
    }
    if (tally.cases_skipped != 0 || tally.cases_run == 0) {
        std::printf("%d case(s) passed, %d skipped\n", tally.cases_run, tally.cases_skipped);
        return kExitSkip;
    }
    std::printf("all %d case(s) passed\n", tally.cases_run);
    return kExitPass;
}

// Called first by every program that needs a ring: io_uring may be missing (ENOSYS), disabled by
// the kernel.io_uring_disabled sysctl or forbidden by a container's seccomp filter (EPERM).
inline void require_io_uring() {
    iouring::IoUring ring;
    int err = ring.init(1);
    if (err == -ENOSYS || err == -EPERM || err == -EACCES) {
        std::printf("SKIP: io_uring is not available here (%s)%s\n", errno_name(-err).c_str(),
                    err == -ENOSYS ? ""
                                   : ": check kernel.io_uring_disabled or the seccomp profile");
        ++tally.cases_skipped;
        std::exit(exit_code());  // 77, or 1 if a check that needed no ring already failed
    }
    if (err != 0) {
        std::fprintf(stderr, "FAIL: a default 1-entry ring cannot be created: %s\n",
                     errno_name(-err).c_str());
        std::exit(kExitFail);
    }
}

// --- ring helpers ----------------------------------------------------------------------------

// Under SQPOLL a full SQ is often only a kernel thread that has not caught up. Worse, the thread
// posts a batch's CQEs before it publishes its new SQ head (io_submit_sqes flushes completions,
// then commits the head), so even with every CQE reaped the SQ can still look full for a moment.
// IORING_ENTER_SQ_WAIT waits on the kernel's private head, so it can return early too: retry.
inline constexpr auto kSqpollPatience = std::chrono::seconds(10);

// A vacant SQE. Without SQPOLL a full SQ is the caller's bug; under SQPOLL, wake the kernel
// thread if needed and wait for a slot.
inline iouring::Sqe* get_sqe(iouring::IoUring& ring) {
    const auto deadline = std::chrono::steady_clock::now() + kSqpollPatience;
    for (;;) {
        if (iouring::Sqe* sqe = ring.get_sqe()) return sqe;
        if (!is_sqpoll(ring) || std::chrono::steady_clock::now() > deadline) break;
        if (ring.submit() < 0) break;  // publishes, and wakes the thread if it sleeps
        int ret = ring.enter(0, 0, iouring::enter::SQ_WAIT);
        if (ret < 0 && ret != -EINTR) break;
        if (ring.sq_space_left() == 0) std::this_thread::yield();
    }
    // The callers dereference the SQE; nothing sensible is left to do.
    std::fprintf(stderr, "FAIL: get_sqe: the submission queue stayed full\n");
    std::exit(kExitFail);
}

// Waits until the kernel consumed every SQE we published (immediate without SQPOLL, where
// submission is synchronous; see above for why SQPOLL needs the wait even after reaping).
inline bool wait_sq_consumed(iouring::IoUring& ring) {
    const auto deadline = std::chrono::steady_clock::now() + kSqpollPatience;
    while (ring.sq().kernel_head() != ring.sq().shared_tail()) {
        if (std::chrono::steady_clock::now() > deadline) break;
        ring.submit();  // wakes the kernel thread if it fell asleep
        std::this_thread::yield();
    }
    return CHECK_EQ(ring.sq().kernel_head(), ring.sq().shared_tail());
}

// Waits for and consumes exactly `n` CQEs, in the order the kernel posted them.
inline std::vector<iouring::Cqe> reap(iouring::IoUring& ring, std::uint32_t n) {
    std::vector<iouring::Cqe> out(n);
    std::uint32_t got = 0;
    while (got < n) {
        int ret = ring.copy_cqes(out.data() + got, n - got, n - got);
        if (ret == -EINTR) continue;
        if (!CHECK(ret >= 0)) {
            std::fprintf(stderr, "    copy_cqes: %s\n", show(ret).c_str());
            break;
        }
        got += static_cast<std::uint32_t>(ret);
    }
    out.resize(got);
    return out;
}

// The CQE with this user_data, or {~0, -ENOENT, ~0} (which no check expects) when absent.
inline iouring::Cqe find_cqe(const std::vector<iouring::Cqe>& cqes, std::uint64_t user_data) {
    for (const iouring::Cqe& cqe : cqes) {
        if (cqe.user_data == user_data) return cqe;
    }
    std::fprintf(stderr, "    no CQE with user_data %s\n", show(user_data).c_str());
    return iouring::Cqe{~std::uint64_t{0}, -ENOENT, ~0u};
}

}  // namespace check
