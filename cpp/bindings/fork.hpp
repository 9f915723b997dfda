// Fork detection without a syscall per call: a pthread_atfork child handler bumps a process-wide
// generation, and a ring remembers the generation it was created in.
#pragma once

#include <atomic>
#include <cstdint>

namespace iouring::bindings {

inline std::atomic<std::uint64_t> fork_generation{0};

void install_fork_handler();

}  // namespace iouring::bindings
