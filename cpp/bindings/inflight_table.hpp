// Operations in flight, counted per user_data, with the pins each key holds.
//
// The kernel identifies a completion only by its user_data, and callers may reuse a user_data
// for several operations at once. Pins of a key are therefore released when the count of
// operations in flight under that key drops to zero: then every operation that could have used
// them has completed. Every flushed operation is counted, pinned or not, or an unpinned
// operation completing first would release the pins of a pinned one still running.
//
// Open addressing with linear probing and backward-shift deletion keeps this allocation-free
// on the hot path: one probe per flushed SQE and one per final CQE.
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "pins.hpp"

namespace iouring::bindings {

class InflightTable {
public:
    explicit InflightTable(std::size_t expected = 64) { rehash(capacity_for(expected)); }

    // One more operation in flight under `key`, holding `pins` (moved from) until the key's
    // count drops to zero.
    void add(std::uint64_t key, PinList& pins) {
        if ((size_ + 1) * 2 > slots_.size()) rehash(slots_.size() * 2);
        std::size_t i = home(key);
        while (slots_[i].count != 0 && slots_[i].key != key) i = (i + 1) & mask_;
        Slot& slot = slots_[i];
        if (slot.count == 0) {
            slot.key = key;
            slot.pins = 0;
            ++size_;
        }
        ++slot.count;
        ++operations_;
        if (!pins.empty()) {
            PinList& held = pins_of(slot);
            pin_count_ += pins.size();
            for (Pin& pin : pins) held.push_back(std::move(pin));
            pins.clear();
        }
    }

    // A final completion for `key`; when the key's count reaches zero its pins move to
    // `released`. Unknown keys (a CQE posted by another ring's MSG_RING) are ignored.
    void complete(std::uint64_t key, PinList& released) {
        std::size_t i = home(key);
        for (;; i = (i + 1) & mask_) {
            if (slots_[i].count == 0) return;
            if (slots_[i].key == key) break;
        }
        Slot& slot = slots_[i];
        --operations_;
        if (--slot.count != 0) return;
        if (slot.pins != 0) {
            PinList& held = pin_lists_[slot.pins - 1];
            pin_count_ -= held.size();
            for (Pin& pin : held) released.push_back(std::move(pin));
            held.clear();
            free_lists_.push_back(slot.pins - 1);
        }
        erase_at(i);
    }

    // `pin` held as well by every key in flight now: released once all of them completed.
    void pin_to_all(const Pin& pin) {
        for (Slot& slot : slots_) {
            if (slot.count == 0) continue;
            pins_of(slot).push_back(pin);
            ++pin_count_;
        }
    }

    // Every pin still held, for a ring that must keep them forever (see Ring::close).
    void take_all_pins(PinList& out) {
        for (PinList& held : pin_lists_) {
            for (Pin& pin : held) out.push_back(std::move(pin));
            held.clear();
        }
        pin_count_ = 0;
    }

    void clear() {
        for (Slot& slot : slots_) slot.count = 0;
        pin_lists_.clear();
        free_lists_.clear();
        size_ = operations_ = pin_count_ = 0;
    }

    // The keys in flight that hold `target` among their pins, in table order.
    [[nodiscard]] std::vector<std::uint64_t> keys_holding(const void* target) const {
        std::vector<std::uint64_t> keys;
        for (const Slot& slot : slots_) {
            if (slot.count == 0 || slot.pins == 0) continue;
            for (const Pin& pin : pin_lists_[slot.pins - 1]) {
                if (pin.get() == target) {
                    keys.push_back(slot.key);
                    break;
                }
            }
        }
        return keys;
    }

    // Whether an operation is in flight under `key`.
    [[nodiscard]] bool contains(std::uint64_t key) const noexcept {
        for (std::size_t i = home(key);; i = (i + 1) & mask_) {
            if (slots_[i].count == 0) return false;
            if (slots_[i].key == key) return true;
        }
    }

    [[nodiscard]] std::size_t operations() const noexcept { return operations_; }
    [[nodiscard]] std::size_t pin_count() const noexcept { return pin_count_; }
    [[nodiscard]] bool empty() const noexcept { return operations_ == 0; }

private:
    struct Slot {
        std::uint64_t key = 0;
        std::uint32_t count = 0;  // 0: the slot is empty
        std::uint32_t pins = 0;   // 1 + index into pin_lists_, or 0 for none
    };

    static std::size_t capacity_for(std::size_t expected) {
        std::size_t capacity = 16;
        while (capacity < expected * 2) capacity *= 2;
        return capacity;
    }

    // Fibonacci hashing: user_data values are often sequential or pointer-like.
    [[nodiscard]] std::size_t home(std::uint64_t key) const noexcept {
        return static_cast<std::size_t>((key * 0x9e3779b97f4a7c15ull) >> shift_);
    }

    PinList& pins_of(Slot& slot) {
        if (slot.pins == 0) {
            if (!free_lists_.empty()) {
                slot.pins = free_lists_.back() + 1;
                free_lists_.pop_back();
            } else {
                pin_lists_.emplace_back();
                slot.pins = static_cast<std::uint32_t>(pin_lists_.size());
            }
        }
        return pin_lists_[slot.pins - 1];
    }

    void erase_at(std::size_t hole) {
        std::size_t j = hole;
        for (;;) {
            j = (j + 1) & mask_;
            if (slots_[j].count == 0) break;
            // An entry may move back into the hole if that keeps it at or after its home.
            std::size_t from_home = (j - home(slots_[j].key)) & mask_;
            std::size_t from_hole = (j - hole) & mask_;
            if (from_home >= from_hole) {
                slots_[hole] = slots_[j];
                hole = j;
            }
        }
        slots_[hole].count = 0;
        --size_;
    }

    void rehash(std::size_t capacity) {
        std::vector<Slot> old = std::move(slots_);
        slots_.assign(capacity, Slot{});
        mask_ = capacity - 1;
        shift_ = 64;
        for (std::size_t c = capacity; c > 1; c >>= 1) --shift_;
        for (const Slot& slot : old) {
            if (slot.count == 0) continue;
            std::size_t i = home(slot.key);
            while (slots_[i].count != 0) i = (i + 1) & mask_;
            slots_[i] = slot;
        }
    }

    std::vector<Slot> slots_;
    std::size_t mask_ = 0;
    unsigned shift_ = 64;
    std::size_t size_ = 0;        // keys present
    std::size_t operations_ = 0;  // sum of counts
    std::size_t pin_count_ = 0;
    std::vector<PinList> pin_lists_;
    std::vector<std::uint32_t> free_lists_;
};

}  // namespace iouring::bindings
