// The three io_uring system calls, called through syscall(2) so that no libc wrapper (or
// liburing) is needed. Each returns the kernel's result, or -errno on failure.
#pragma once

#include <cerrno>
#include <csignal>
#include <cstddef>
#include <sys/syscall.h>
#include <unistd.h>

#include "abi.hpp"

namespace iouring::sys {

inline int result_or_errno(long ret) noexcept { return ret < 0 ? -errno : static_cast<int>(ret); }

inline int io_uring_setup(unsigned entries, Params* params) noexcept {
    return result_or_errno(::syscall(kSyscallSetup, entries, params));
}

// `arg`/`argsz` are the sigset (plain enter) or a GeteventsArg (with EXT_ARG).
inline int io_uring_enter(int fd, unsigned to_submit, unsigned min_complete, unsigned flags,
                          const void* arg = nullptr, std::size_t argsz = 0) noexcept {
    return result_or_errno(
        ::syscall(kSyscallEnter, fd, to_submit, min_complete, flags, arg, argsz));
}

inline int io_uring_register(int fd, RegisterOp opcode, const void* arg,
                             unsigned nr_args) noexcept {
    return result_or_errno(
        ::syscall(kSyscallRegister, fd, static_cast<unsigned>(opcode), arg, nr_args));
}

}  // namespace iouring::sys
