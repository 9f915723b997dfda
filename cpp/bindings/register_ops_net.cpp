// The net family of operations. See ops.hpp for how each operation becomes two methods.
#include <string>

#include <iouring/sqe_net.hpp>

#include "convert.hpp"
#include "module.hpp"
#include "ops.hpp"
#include "pins.hpp"

namespace iouring::bindings {

namespace {

}  // namespace

void register_net_ops(RingClass& ring, SqeClass& sqe) {
    (void)ring;
    (void)sqe;
}

}  // namespace iouring::bindings
