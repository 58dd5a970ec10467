// Elementwise activations a producer kernel applies to its output when oneDNN cannot fuse them.
#pragma once

#include <cstdint>

#include "aciq/core.hpp"

namespace aciq::kernels {

using aciq::Activation;

// Plain scalar definition (the oracle): NaN passes through like the unfused operators.
void apply_activation_ref(const Activation& act, float* data, std::int64_t n);
// The same results bit for bit, vectorizable loops split across the context's threads (tested
// against apply_activation_ref). Used for every activation pass of the fast backend.
void apply_activation(const Activation& act, float* data, std::int64_t n, Context& ctx);
// The vectorized pass on the calling thread only (for callers already running per-sample in parallel).
void apply_activation_serial(const Activation& act, float* data, std::int64_t n);
// dst = act(src); src == dst is allowed, partial overlap is not. kNone copies.
void apply_activation(const Activation& act, const float* src, float* dst, std::int64_t n, Context& ctx);

}  // namespace aciq::kernels
