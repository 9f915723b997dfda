// Kernel flag words as Python enum.IntFlag classes, shared by every register_*.cpp.
#pragma once

#include <pybind11/native_enum.h>
#include <pybind11/pybind11.h>

#include <cstdint>

#include "module.hpp"

namespace iouring::bindings {

// pybind11's native_enum needs a C++ enum type per Python class: one empty scoped enum per
// flag family, all listed here; each register_*.cpp lists its family's bits by name.
enum class SetupFlag : std::uint32_t {};
enum class SqeFlag : std::uint32_t {};
enum class CqeFlag : std::uint32_t {};
enum class EnterFlag : std::uint32_t {};
enum class Feature : std::uint32_t {};
enum class SqFlag : std::uint32_t {};
enum class FsyncFlag : std::uint32_t {};
enum class TimeoutFlag : std::uint32_t {};
enum class CancelFlag : std::uint32_t {};
enum class PollFlag : std::uint32_t {};
enum class NopFlag : std::uint32_t {};
enum class FutexFlag : std::uint32_t {};
enum class FixedFdFlag : std::uint32_t {};
enum class StatxMaskFlag : std::uint32_t {};
enum class AtFlag : std::uint32_t {};
enum class ResolveFlag : std::uint32_t {};
enum class FallocateFlag : std::uint32_t {};
enum class SyncFileRangeFlag : std::uint32_t {};
enum class RenameFlag : std::uint32_t {};
enum class XattrFlag : std::uint32_t {};

template <typename E>
struct FlagEnum {
    py::native_enum<E> e;
    FlagEnum(py::handle scope, const char* name, const char* doc)
        : e(scope, name, "enum.IntFlag", doc) {}
    FlagEnum& value(const char* name, std::uint64_t bit) {
        e.value(name, static_cast<E>(bit));
        return *this;
    }
    void finalize() { e.finalize(); }
};

}  // namespace iouring::bindings
