// SIMD QuantizeLinear / DequantizeLinear (Highway, dynamic dispatch): bit for bit ref::quantize_linear and
// ref::dequantize_linear, which the int8 engine runs around every float op (residual Add, pooling) that
// has no integer form yet.
#pragma once

#include <cstdint>

namespace aciq::kernels::fast {

// y[i] = saturate(nearbyint(x[i] / scale) + zero_point), NaN -> 0: the reference's float32 steps
// (IEEE division, round half to even, float add, clamp), so every output byte is the reference's.
void quantize_linear_simd(const float* x, float scale, std::uint8_t zero_point, std::uint8_t* y,
                          std::int64_t n);
void quantize_linear_simd(const float* x, float scale, std::int8_t zero_point, std::int8_t* y,
                          std::int64_t n);

// y[i] = float(int32(x[i]) - zero_point) * scale: an exact integer difference, an exact conversion and
// one float32 product, as the reference computes it.
void dequantize_linear_simd(const std::uint8_t* x, float scale, std::uint8_t zero_point, float* y,
                            std::int64_t n);
void dequantize_linear_simd(const std::int8_t* x, float scale, std::int8_t zero_point, float* y,
                            std::int64_t n);

}  // namespace aciq::kernels::fast
