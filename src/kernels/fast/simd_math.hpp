// SIMD transcendental activations (Highway, dynamic dispatch) for the fast elementwise kernels.
#pragma once

#include <cmath>
#include <cstdint>

namespace aciq::kernels::fast {

// y = 1 / (1 + exp(-x)) on one thread's chunk; within a few float ulps of the double reference for
// outputs above 1e-38 (denormal outputs are 0), NaN in gives NaN out.
void sigmoid_simd(const float* x, float* y, std::int64_t n);

}  // namespace aciq::kernels::fast
