// Highway QuantizeLinear, compiled once per SIMD target and picked at run time (scalar included).
#include "kernels/fast/quantize_simd.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

// clang-format off
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/fast/quantize_simd.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>
// clang-format on

HWY_BEFORE_NAMESPACE();
namespace aciq::kernels::fast {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

template <class T>
void QuantizeImpl(const float* x, float scale, T zero_point, T* y, std::int64_t n) {
  const hn::ScalableTag<float> df;
  const hn::Rebind<std::int32_t, decltype(df)> di;
  const hn::Rebind<T, decltype(df)> dq;
  constexpr float qmin = std::numeric_limits<T>::min(), qmax = std::numeric_limits<T>::max();
  const auto vs = hn::Set(df, scale), vz = hn::Set(df, static_cast<float>(zero_point));
  const auto lo = hn::Set(df, qmin), hi = hn::Set(df, qmax), zero = hn::Zero(df);
  const auto lanes = static_cast<std::int64_t>(hn::Lanes(df));
  std::int64_t i = 0;
  for (; i + lanes <= n; i += lanes) {
    // Round() is round-half-to-even, as nearbyint in the default rounding mode.
    auto r = hn::Add(hn::Round(hn::Div(hn::LoadU(df, x + i), vs)), vz);
    r = hn::IfThenElse(hn::IsNaN(r), zero, hn::Min(hn::Max(r, lo), hi));
    hn::StoreU(hn::DemoteTo(dq, hn::ConvertTo(di, r)), dq, y + i);
  }
  for (; i < n; ++i) {
    float r = std::nearbyint(x[i] / scale) + static_cast<float>(zero_point);
    r = std::isnan(r) ? 0.0f : (r < qmin ? qmin : (r > qmax ? qmax : r));
    y[i] = static_cast<T>(r);
  }
}

template <class T>
void DequantizeImpl(const T* x, float scale, T zero_point, float* y, std::int64_t n) {
  const hn::ScalableTag<float> df;
  const hn::Rebind<std::int32_t, decltype(df)> di;
  const hn::Rebind<T, decltype(df)> dq;
  const auto vs = hn::Set(df, scale);
  const auto vz = hn::Set(di, static_cast<std::int32_t>(zero_point));
  const auto lanes = static_cast<std::int64_t>(hn::Lanes(df));
  std::int64_t i = 0;
  for (; i + lanes <= n; i += lanes) {
    const auto v = hn::Sub(hn::PromoteTo(di, hn::LoadU(dq, x + i)), vz);
    hn::StoreU(hn::Mul(hn::ConvertTo(df, v), vs), df, y + i);
  }
  for (; i < n; ++i) {
    y[i] =
        static_cast<float>(static_cast<std::int32_t>(x[i]) - static_cast<std::int32_t>(zero_point)) * scale;
  }
}

// DQ(a) + DQ(b) -> [Relu] -> Q in registers, each step the lane form of the unfused kernel's: the
// dequantizations as DequantizeImpl, one float addition, apply_activation_ref's Relu (v > 0 or NaN keeps
// v, else +0), QuantizeImpl's division, rounding and saturation.
template <class T>
void AddQuantizedImpl(const T* a, float sa, T za, const T* b, float sb, T zb, bool relu, float sy, T zy, T* y,
                      std::int64_t n) {
  const hn::ScalableTag<float> df;
  const hn::Rebind<std::int32_t, decltype(df)> di;
  const hn::Rebind<T, decltype(df)> dq;
  constexpr float qmin = std::numeric_limits<T>::min(), qmax = std::numeric_limits<T>::max();
  const auto vsa = hn::Set(df, sa), vsb = hn::Set(df, sb), vsy = hn::Set(df, sy);
  const auto vza = hn::Set(di, static_cast<std::int32_t>(za)),
             vzb = hn::Set(di, static_cast<std::int32_t>(zb));
  const auto vzy = hn::Set(df, static_cast<float>(zy));
  const auto lo = hn::Set(df, qmin), hi = hn::Set(df, qmax), zero = hn::Zero(df);
  const auto lanes = static_cast<std::int64_t>(hn::Lanes(df));
  const auto one = [&](const T* pa, const T* pb, T* py) {
    const auto fa = hn::Mul(hn::ConvertTo(df, hn::Sub(hn::PromoteTo(di, hn::LoadU(dq, pa)), vza)), vsa);
    const auto fb = hn::Mul(hn::ConvertTo(df, hn::Sub(hn::PromoteTo(di, hn::LoadU(dq, pb)), vzb)), vsb);
    auto v = hn::Add(fa, fb);
    if (relu) v = hn::IfThenElse(hn::Or(hn::Gt(v, zero), hn::IsNaN(v)), v, zero);
    auto r = hn::Add(hn::Round(hn::Div(v, vsy)), vzy);
    r = hn::IfThenElse(hn::IsNaN(r), zero, hn::Min(hn::Max(r, lo), hi));
    hn::StoreU(hn::DemoteTo(dq, hn::ConvertTo(di, r)), dq, py);
  };
  std::int64_t i = 0;
  for (; i + lanes <= n; i += lanes) one(a + i, b + i, y + i);
  if (i < n) {
    // The remainder through the same lanes on padded copies: one formula only.
    HWY_ALIGN T pa[hn::MaxLanes(df)] = {}, pb[hn::MaxLanes(df)] = {}, py[hn::MaxLanes(df)] = {};
    std::copy(a + i, a + n, pa);
    std::copy(b + i, b + n, pb);
    one(pa, pb, py);
    std::copy(py, py + (n - i), y + i);
  }
}

void AddQuantizedU8(const std::uint8_t* a, float sa, std::uint8_t za, const std::uint8_t* b, float sb,
                    std::uint8_t zb, bool relu, float sy, std::uint8_t zy, std::uint8_t* y, std::int64_t n) {
  AddQuantizedImpl(a, sa, za, b, sb, zb, relu, sy, zy, y, n);
}
void AddQuantizedS8(const std::int8_t* a, float sa, std::int8_t za, const std::int8_t* b, float sb,
                    std::int8_t zb, bool relu, float sy, std::int8_t zy, std::int8_t* y, std::int64_t n) {
  AddQuantizedImpl(a, sa, za, b, sb, zb, relu, sy, zy, y, n);
}

void DequantizeU8(const std::uint8_t* x, float scale, std::uint8_t zp, float* y, std::int64_t n) {
  DequantizeImpl(x, scale, zp, y, n);
}
void DequantizeS8(const std::int8_t* x, float scale, std::int8_t zp, float* y, std::int64_t n) {
  DequantizeImpl(x, scale, zp, y, n);
}

void QuantizeU8(const float* x, float scale, std::uint8_t zp, std::uint8_t* y, std::int64_t n) {
  QuantizeImpl(x, scale, zp, y, n);
}
void QuantizeS8(const float* x, float scale, std::int8_t zp, std::int8_t* y, std::int64_t n) {
  QuantizeImpl(x, scale, zp, y, n);
}

}  // namespace HWY_NAMESPACE
}  // namespace aciq::kernels::fast
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace aciq::kernels::fast {

HWY_EXPORT(QuantizeU8);
HWY_EXPORT(QuantizeS8);
HWY_EXPORT(DequantizeU8);
HWY_EXPORT(DequantizeS8);
HWY_EXPORT(AddQuantizedU8);
HWY_EXPORT(AddQuantizedS8);

void add_quantized_simd(const std::uint8_t* a, float sa, std::uint8_t za, const std::uint8_t* b, float sb,
                        std::uint8_t zb, bool relu, float sy, std::uint8_t zy, std::uint8_t* y,
                        std::int64_t n) {
  HWY_DYNAMIC_DISPATCH(AddQuantizedU8)(a, sa, za, b, sb, zb, relu, sy, zy, y, n);
}
void add_quantized_simd(const std::int8_t* a, float sa, std::int8_t za, const std::int8_t* b, float sb,
                        std::int8_t zb, bool relu, float sy, std::int8_t zy, std::int8_t* y, std::int64_t n) {
  HWY_DYNAMIC_DISPATCH(AddQuantizedS8)(a, sa, za, b, sb, zb, relu, sy, zy, y, n);
}

void dequantize_linear_simd(const std::uint8_t* x, float scale, std::uint8_t zero_point, float* y,
                            std::int64_t n) {
  HWY_DYNAMIC_DISPATCH(DequantizeU8)(x, scale, zero_point, y, n);
}
void dequantize_linear_simd(const std::int8_t* x, float scale, std::int8_t zero_point, float* y,
                            std::int64_t n) {
  HWY_DYNAMIC_DISPATCH(DequantizeS8)(x, scale, zero_point, y, n);
}

void quantize_linear_simd(const float* x, float scale, std::uint8_t zero_point, std::uint8_t* y,
                          std::int64_t n) {
  HWY_DYNAMIC_DISPATCH(QuantizeU8)(x, scale, zero_point, y, n);
}
void quantize_linear_simd(const float* x, float scale, std::int8_t zero_point, std::int8_t* y,
                          std::int64_t n) {
  HWY_DYNAMIC_DISPATCH(QuantizeS8)(x, scale, zero_point, y, n);
}

}  // namespace aciq::kernels::fast
#endif
