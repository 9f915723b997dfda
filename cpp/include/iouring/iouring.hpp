// Umbrella header of the header-only io_uring core.
#pragma once

#include "abi.hpp"
#include "barrier.hpp"
#include "completion_queue.hpp"
#include "io_uring.hpp"
#include "mmap.hpp"
#include "sqe.hpp"
#include "sqe_buffers.hpp"
#include "sqe_control.hpp"
#include "sqe_fs.hpp"
#include "sqe_net.hpp"
#include "submission_queue.hpp"
#include "syscall.hpp"
