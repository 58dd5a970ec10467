// Reference kernels for ONNX QuantizeLinear/DequantizeLinear and integer Clip (ONNX Runtime arithmetic).
#pragma once

#include <cstdint>

namespace aciq::kernels::ref {

// A tensor viewed as [outer, channels, inner] around the quantization axis; element (o, c, i) uses
// scale[c] and zero_point[c]. Per-tensor quantization is {1, 1, numel}.
struct QuantAxis {
  std::int64_t outer = 1, channels = 1, inner = 1;
};

// y = saturate(nearbyint(x / scale) + zero_point) to the full range of the output type, in float32:
//   float r = std::nearbyint(x / scale) + (float)zp;  r = clamp(r, qmin, qmax)
// nearbyint rounds half to even under the default rounding mode (what ONNX Runtime computes).
// +-Inf saturate to qmax/qmin. NaN gives 0 (ONNX leaves it undefined; ONNX Runtime's scalar x86 path
// converts NaN to INT32_MIN, whose low byte is 0 for both types). zero_point may be null (0).
void quantize_linear(const QuantAxis& a, const float* x, const float* scale, const std::uint8_t* zero_point,
                     std::uint8_t* y);
void quantize_linear(const QuantAxis& a, const float* x, const float* scale, const std::int8_t* zero_point,
                     std::int8_t* y);

// y = (float)((int32)x - (int32)zero_point) * scale in float32 (int32 input: the difference is taken
// in int64, exact for the zero point ONNX requires there, 0). zero_point may be null (0).
void dequantize_linear(const QuantAxis& a, const std::uint8_t* x, const float* scale,
                       const std::uint8_t* zero_point, float* y);
void dequantize_linear(const QuantAxis& a, const std::int8_t* x, const float* scale,
                       const std::int8_t* zero_point, float* y);
void dequantize_linear(const QuantAxis& a, const std::int32_t* x, const float* scale,
                       const std::int32_t* zero_point, float* y);

// Integer Clip: y = min(max(x, lo), hi), so lo > hi gives hi (as ONNX Runtime).
void clip(const std::uint8_t* x, std::uint8_t lo, std::uint8_t hi, std::uint8_t* y, std::int64_t n);
void clip(const std::int8_t* x, std::int8_t lo, std::int8_t hi, std::int8_t* y, std::int64_t n);
void clip(const std::int32_t* x, std::int32_t lo, std::int32_t hi, std::int32_t* y, std::int64_t n);
void clip(const std::int64_t* x, std::int64_t lo, std::int64_t hi, std::int64_t* y, std::int64_t n);

}  // namespace aciq::kernels::ref
