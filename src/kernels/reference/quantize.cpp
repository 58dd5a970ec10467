// Reference QuantizeLinear/DequantizeLinear and integer Clip kernels: the exact ONNX Runtime formulas.
#include "kernels/reference/quantize.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>

namespace aciq::kernels::ref {

namespace {

template <typename T>
T quantize_one(float x, float scale, float zp) {
  constexpr float qmin = std::numeric_limits<T>::min();
  constexpr float qmax = std::numeric_limits<T>::max();
  float r = std::nearbyint(x / scale) + zp;
  if (std::isnan(r)) return 0;
  r = r < qmin ? qmin : r;
  r = r > qmax ? qmax : r;
  return static_cast<T>(r);
}

template <typename T>
void quantize(const QuantAxis& a, const float* x, const float* scale, const T* zero_point, T* y) {
  for (std::int64_t o = 0; o < a.outer; ++o) {
    for (std::int64_t c = 0; c < a.channels; ++c) {
      const float s = scale[c];
      const float zp = zero_point ? static_cast<float>(zero_point[c]) : 0.0f;
      const std::int64_t base = (o * a.channels + c) * a.inner;
      for (std::int64_t i = 0; i < a.inner; ++i) y[base + i] = quantize_one<T>(x[base + i], s, zp);
    }
  }
}

// int32 differences for 8-bit inputs (exact); int64 for int32 inputs so no zero point overflows.
template <typename T>
using Wide = std::conditional_t<sizeof(T) < 4, std::int32_t, std::int64_t>;

template <typename T>
void dequantize(const QuantAxis& a, const T* x, const float* scale, const T* zero_point, float* y) {
  for (std::int64_t o = 0; o < a.outer; ++o) {
    for (std::int64_t c = 0; c < a.channels; ++c) {
      const float s = scale[c];
      const Wide<T> zp = zero_point ? static_cast<Wide<T>>(zero_point[c]) : 0;
      const std::int64_t base = (o * a.channels + c) * a.inner;
      for (std::int64_t i = 0; i < a.inner; ++i)
        y[base + i] = static_cast<float>(static_cast<Wide<T>>(x[base + i]) - zp) * s;
    }
  }
}

template <typename T>
void clip_int(const T* x, T lo, T hi, T* y, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) y[i] = std::min(std::max(x[i], lo), hi);
}

}  // namespace

void quantize_linear(const QuantAxis& a, const float* x, const float* scale, const std::uint8_t* zero_point,
                     std::uint8_t* y) {
  quantize(a, x, scale, zero_point, y);
}
void quantize_linear(const QuantAxis& a, const float* x, const float* scale, const std::int8_t* zero_point,
                     std::int8_t* y) {
  quantize(a, x, scale, zero_point, y);
}

void dequantize_linear(const QuantAxis& a, const std::uint8_t* x, const float* scale,
                       const std::uint8_t* zero_point, float* y) {
  dequantize(a, x, scale, zero_point, y);
}
void dequantize_linear(const QuantAxis& a, const std::int8_t* x, const float* scale,
                       const std::int8_t* zero_point, float* y) {
  dequantize(a, x, scale, zero_point, y);
}
void dequantize_linear(const QuantAxis& a, const std::int32_t* x, const float* scale,
                       const std::int32_t* zero_point, float* y) {
  dequantize(a, x, scale, zero_point, y);
}

void clip(const std::uint8_t* x, std::uint8_t lo, std::uint8_t hi, std::uint8_t* y, std::int64_t n) {
  clip_int(x, lo, hi, y, n);
}
void clip(const std::int8_t* x, std::int8_t lo, std::int8_t hi, std::int8_t* y, std::int64_t n) {
  clip_int(x, lo, hi, y, n);
}
void clip(const std::int32_t* x, std::int32_t lo, std::int32_t hi, std::int32_t* y, std::int64_t n) {
  clip_int(x, lo, hi, y, n);
}
void clip(const std::int64_t* x, std::int64_t lo, std::int64_t hi, std::int64_t* y, std::int64_t n) {
  clip_int(x, lo, hi, y, n);
}

}  // namespace aciq::kernels::ref
