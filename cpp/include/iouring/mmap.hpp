// RAII ownership of one mapping: a shared mapping of an io_uring fd (SQ/CQ rings or the SQE
// array), or anonymous pages we own (provided-buffer rings and their buffers).
#pragma once

#include <cerrno>
#include <cstddef>
#include <sys/mman.h>
#include <utility>

namespace iouring {

class Mapping {
public:
    Mapping() = default;
    Mapping(const Mapping&) = delete;
    Mapping& operator=(const Mapping&) = delete;
    Mapping(Mapping&& other) noexcept
        : addr_(std::exchange(other.addr_, nullptr)), size_(std::exchange(other.size_, 0)) {}
    Mapping& operator=(Mapping&& other) noexcept {
        if (this != &other) {
            reset();
            addr_ = std::exchange(other.addr_, nullptr);
            size_ = std::exchange(other.size_, 0);
        }
        return *this;
    }
    ~Mapping() { reset(); }

    // Maps `size` bytes of `fd` at `offset`. MADV_DONTFORK keeps the mapping out of children:
    // a forked child must never read or publish ring indices that the parent's kernel ring
    // also uses. Returns 0 or -errno.
    int map(int fd, std::size_t size, long long offset) noexcept {
        reset();
        void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd,
                         static_cast<off_t>(offset));
        if (p == MAP_FAILED) return -errno;
        addr_ = p;
        size_ = size;
        if (::madvise(addr_, size_, MADV_DONTFORK) != 0) {
            int err = -errno;
            reset();
            return err;
        }
        return 0;
    }

    // Maps `size` bytes of private, zeroed anonymous memory (page-aligned, as mmap returns
    // it). Returns 0 or -errno.
    int map_anonymous(std::size_t size) noexcept {
        reset();
        void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) return -errno;
        addr_ = p;
        size_ = size;
        return 0;
    }

    void reset() noexcept {
        if (addr_ != nullptr) ::munmap(addr_, size_);
        addr_ = nullptr;
        size_ = 0;
    }

    // Forgets the mapping without unmapping it.
    void release() noexcept {
        addr_ = nullptr;
        size_ = 0;
    }

    [[nodiscard]] std::byte* data() const noexcept { return static_cast<std::byte*>(addr_); }
    [[nodiscard]] std::size_t size() const noexcept { return size_; }
    [[nodiscard]] explicit operator bool() const noexcept { return addr_ != nullptr; }

    template <typename T>
    [[nodiscard]] T* at(std::size_t offset) const noexcept {
        return reinterpret_cast<T*>(data() + offset);
    }

private:
    void* addr_ = nullptr;
    std::size_t size_ = 0;
};

}  // namespace iouring
