// Preparation of the fs family of operations (see sqe.hpp for the conventions: every helper
// funnels into prep_rw() and sets the kernel's field layout of liburing's helper of the same
// name). Structs of the kernel ABI that only this family uses are defined here, with
// static_asserts on their layout.
#pragma once

#include <cstdint>

#include "abi.hpp"
#include "sqe.hpp"

namespace iouring {

}  // namespace iouring
