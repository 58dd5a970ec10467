// SIMD bin indices for Histogram::add (Highway, dynamic dispatch); the scalar loop in
// Histogram::add_reference is the oracle (tests/calib/histogram_test.cpp).
#pragma once

#include <cstddef>
#include <cstdint>

namespace aciq::calib::detail {

// Slot of each value in one combined table: positive v -> min(floor(v * positive_scale), 2047), negative
// v -> 2048 + min(floor(-v * negative_scale), 2047), zero, -0 and NaN -> kZeroSlot. The scales are
// powers of two that are normal floats (or 0 for an empty half), so each product is exact or, below
// 2^-126, less than 1 either way: the same bins as the reference's double arithmetic.
inline constexpr std::uint32_t kZeroSlot = 4096;
void histogram_slots(const float* x, std::size_t n, float positive_scale, float negative_scale,
                     std::uint32_t* slots);

}  // namespace aciq::calib::detail
