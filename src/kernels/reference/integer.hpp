// Plain integer kernels (ONNX ConvInteger / MatMulInteger): exact int32 accumulation of zero-point-shifted
// 8-bit operands, the oracle for any later fast integer path.
#pragma once

#include <cstdint>

#include "kernels/reference/reference.hpp"

namespace aciq::kernels::ref {

// y[n, oc, oh, ow] = sum over the window of (x - x_zero) * (w - w_zero[oc]), int32. Padded positions hold
// x_zero, i.e. they contribute 0, as ONNX specifies. `x` and `w` are already widened to int32 so one kernel
// serves uint8 and int8; `w_zero` has one entry per output channel.
void conv2d_integer(const ConvShape& s, const Window2d& win, const std::int32_t* x, std::int32_t x_zero,
                    const std::int32_t* w, const std::int32_t* w_zero, std::int32_t* y);

// y[b, m, n] = sum_k (a[b, m, k] - a_zero[m]) * (b[b?, k, n] - b_zero[n]) for `batches` matrices of A;
// B is shared by every batch when `b_batched` is false. Zero points have one entry per row of A and per
// column of B (a scalar zero point is repeated by the caller).
void matmul_integer(std::int64_t batches, std::int64_t m, std::int64_t n, std::int64_t k,
                    const std::int32_t* a, const std::int32_t* a_zero, const std::int32_t* b, bool b_batched,
                    const std::int32_t* b_zero, std::int32_t* y);

// Requantization of int32 accumulators to an 8-bit output (QLinearConv, QLinearMatMul):
//   y[o, c, i] = clamp(rint(float(acc[o, c, i]) * scale[c]) + y_zero, lo, hi)
// with the product in float32 and rint rounding half to even, which is what ONNX Runtime's MLAS
// requantization computes (docs/int8.md derives why this form and not a fixed-point multiplier).
// `scale[c]` = x_scale * w_scale[c] / y_scale, formed in float32 by the caller; out-of-range products
// are clamped before the conversion to integer, so no input is undefined behaviour.
void requantize(std::int64_t outer, std::int64_t channels, std::int64_t inner, const std::int32_t* acc,
                const float* scale, std::int32_t y_zero, std::int32_t lo, std::int32_t hi, std::int32_t* y);

}  // namespace aciq::kernels::ref
