// Provided buffers: provide_buffers/remove_buffers and the BufferRing class (a registered
// provided-buffer ring), for buffer-select reads and receives.
#include <string>

#include <iouring/sqe_buffers.hpp>

#include "convert.hpp"
#include "module.hpp"
#include "ops.hpp"
#include "pins.hpp"

namespace iouring::bindings {

namespace {

}  // namespace

void register_buffer_ops(py::module_& m, RingClass& ring, SqeClass& sqe) {
    (void)m;
    (void)ring;
    (void)sqe;
}

}  // namespace iouring::bindings
