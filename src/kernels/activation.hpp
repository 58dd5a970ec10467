// Elementwise activations a producer kernel can apply to its output (oneDNN post-ops or a scalar pass).
#pragma once

#include <cstdint>

namespace aciq::kernels {

struct Activation {
  enum class Kind : std::uint8_t { kNone, kRelu, kClip, kLeakyRelu };
  Kind kind = Kind::kNone;
  float lo = 0.0f, hi = 0.0f, alpha = 0.0f;
};

// Applies `act` in place; NaN passes through like the unfused operators.
void apply_activation(const Activation& act, float* data, std::int64_t n);

}  // namespace aciq::kernels
