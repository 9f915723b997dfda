// iouring._core: the compiled part of iouring. This file only assembles the register_*()
// pieces, one per area.
#include "module.hpp"

#include <pthread.h>

namespace iouring::bindings {

void install_fork_handler() {
    static bool installed = false;
    if (installed) return;
    installed = true;
    pthread_atfork(nullptr, nullptr,
                   [] { fork_generation.fetch_add(1, std::memory_order_relaxed); });
}

}  // namespace iouring::bindings

PYBIND11_MODULE(_core, m) {
    using namespace iouring::bindings;
    m.doc() = "The compiled core of iouring: rings, SQE handles and completions.";
    install_fork_handler();
    register_errors(m);
    register_enums(m);
    register_completions(m);
    SqeClass sqe = register_sqe(m);
    RingClass ring = register_ring(m);
    register_ops(m, ring, sqe);
    register_fs_ops(m, ring, sqe);
    register_control_ops(m, ring, sqe);
    register_net_ops(m, ring, sqe);
    register_buffer_ops(m, ring, sqe);
    register_batch(m, ring);
    register_sqe_array(m, ring);
    register_registration(m, ring);
    register_helpers(m);
    register_aio(m);
}
