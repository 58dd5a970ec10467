// ONNX QuantizeLinear/DequantizeLinear grids: ONNX Runtime's scale/zero-point rule and the reference kernels.
#include <fmt/format.h>

#include <cmath>
#include <limits>

#include "aciq/core.hpp"
#include "aciq/quant.hpp"
#include "quant/internal.hpp"

namespace aciq::quant {

std::pair<std::int32_t, std::int32_t> int_range(int bits, bool is_signed, bool symmetric) {
  if (bits < 2 || bits > kMaxBits) {
    if (!(bits == 1 && !is_signed))
      fail(fmt::format("integer grid: {} bits is outside 2..{}", bits, kMaxBits));
  }
  if (!is_signed) return {0, static_cast<std::int32_t>((std::int64_t{1} << bits) - 1)};
  const auto half = static_cast<std::int32_t>(std::int64_t{1} << (bits - 1));
  return {symmetric ? -(half - 1) : -half, half - 1};
}

IntGrid onnx_asymmetric_grid(double lo, double hi, std::int32_t qmin, std::int32_t qmax) {
  if (!std::isfinite(lo) || !std::isfinite(hi) || lo > hi)
    fail(fmt::format("integer grid: invalid window [{}, {}]", lo, hi));
  if (qmin >= qmax) fail(fmt::format("integer grid: empty integer range [{}, {}]", qmin, qmax));
  // ONNX Runtime stretches a window that excludes 0 until it reaches 0, so 0 is exactly representable
  // (zero padding and ReLU outputs must be exact).
  lo = std::min(lo, 0.0);
  hi = std::max(hi, 0.0);
  IntGrid g;
  g.qmin = qmin;
  g.qmax = qmax;
  const double scale = (hi - lo) / static_cast<double>(qmax - qmin);
  if (!(scale >= static_cast<double>(std::numeric_limits<float>::min()))) {
    g.scale = 1.0f;
    g.zero_point = std::clamp<std::int32_t>(0, qmin, qmax);
    return g;
  }
  g.scale = static_cast<float>(scale);
  // Half to even, like numpy.round in ONNX Runtime's compute_scale_zp (the default FE rounding mode).
  const double zp = std::nearbyint(static_cast<double>(qmin) - lo / scale);
  g.zero_point =
      static_cast<std::int32_t>(std::clamp(zp, static_cast<double>(qmin), static_cast<double>(qmax)));
  return g;
}

IntGrid onnx_symmetric_grid(double max_abs, std::int32_t qmax) {
  if (!std::isfinite(max_abs) || max_abs < 0) fail(fmt::format("integer grid: invalid max |x| {}", max_abs));
  if (qmax < 1) fail(fmt::format("integer grid: qmax {} must be positive", qmax));
  IntGrid g;
  g.qmin = -qmax;
  g.qmax = qmax;
  g.zero_point = 0;
  const double scale = max_abs / qmax;
  g.scale =
      scale >= static_cast<double>(std::numeric_limits<float>::min()) ? static_cast<float>(scale) : 1.0f;
  return g;
}

std::int32_t quantize_linear(float x, const IntGrid& g) {
  float v = x / g.scale;
  if (std::isnan(v)) return std::clamp<std::int32_t>(0, g.qmin, g.qmax);  // ONNX Runtime's x86 result
  // Clamping before rounding to integers bounds the int conversion; the bounds are integers, so the
  // result equals round-then-saturate.
  const float lo = static_cast<float>(g.qmin - g.zero_point), hi = static_cast<float>(g.qmax - g.zero_point);
  v = v < lo ? lo : v;
  v = v > hi ? hi : v;
  return static_cast<std::int32_t>(std::nearbyint(v)) + g.zero_point;
}

void fake_quant_onnx(std::span<float> x, const IntGrid& g, PostOp post) {
  if (!(g.scale > 0.0f) || !std::isfinite(g.scale) || g.zero_point < g.qmin || g.zero_point > g.qmax)
    fail(fmt::format("fake_quant_onnx: invalid grid (scale {}, zero point {}, range [{}, {}])", g.scale,
                     g.zero_point, g.qmin, g.qmax));
  for (float& v : x) {
    v = apply_post_op(dequantize_linear(quantize_linear(v, g), g), post);
  }
}

void fake_quant(std::span<float> x, const PointQuantizer& q, PostOp post) {
  if (q.onnx) {
    fake_quant_onnx(x, q.grid, post);
  } else {
    fake_quant(x, q.seed, post);
  }
}

}  // namespace aciq::quant
