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

// The int8 engine's fused residual: y = Q(DQ(a) + DQ(b)), with a Relu before the Q when `relu`; bit for bit
// dequantize_linear_simd on both operands, a float add, apply_activation_ref's Relu and
// quantize_linear_simd (the unfused steps), without the float buffers between them.
void add_quantized_simd(const std::uint8_t* a, float sa, std::uint8_t za, const std::uint8_t* b, float sb,
                        std::uint8_t zb, bool relu, float sy, std::uint8_t zy, std::uint8_t* y,
                        std::int64_t n);
void add_quantized_simd(const std::int8_t* a, float sa, std::int8_t za, const std::int8_t* b, float sb,
                        std::int8_t zb, bool relu, float sy, std::int8_t zy, std::int8_t* y, std::int64_t n);

}  // namespace aciq::kernels::fast
