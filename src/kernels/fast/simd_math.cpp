// Highway kernels for the fast path's transcendental activations (Sigmoid), compiled once per SIMD
// target and picked at run time (scalar fallback included).
#include "kernels/fast/simd_math.hpp"

#include <cstdint>

// foreach_target re-includes this file per target; highway.h and the math header must follow it.
// clang-format off
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/fast/simd_math.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>
#include <hwy/contrib/math/math-inl.h>
// clang-format on

HWY_BEFORE_NAMESPACE();
namespace aciq::kernels::fast {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// 1 / (1 + exp(-x)) with Highway's vector exp; exp(-x) overflows to +inf for x < -88.7 and gives 0,
// as the exact value (< 1e-38) rounds to in float for all but denormal outputs.
void SigmoidImpl(const float* x, float* y, std::int64_t n) {
  const hn::ScalableTag<float> d;
  const auto one = hn::Set(d, 1.0f);
  const auto lo = hn::Set(d, -88.0f);
  const std::int64_t lanes = static_cast<std::int64_t>(hn::Lanes(d));
  std::int64_t i = 0;
  for (; i + lanes <= n; i += lanes) {
    const auto v = hn::LoadU(d, x + i);
    const auto e = hn::CallExp(d, hn::Neg(hn::Max(v, lo)));
    auto s = hn::Div(one, hn::Add(one, e));
    s = hn::IfThenZeroElse(hn::Lt(v, lo), s);
    s = hn::IfThenElse(hn::IsNaN(v), v, s);  // NaN passes through, as in the reference
    hn::StoreU(s, d, y + i);
  }
  for (; i < n; ++i) y[i] = 1.0f / (1.0f + std::exp(-x[i]));
}

}  // namespace HWY_NAMESPACE
}  // namespace aciq::kernels::fast
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace aciq::kernels::fast {

HWY_EXPORT(SigmoidImpl);

void sigmoid_simd(const float* x, float* y, std::int64_t n) { HWY_DYNAMIC_DISPATCH(SigmoidImpl)(x, y, n); }

}  // namespace aciq::kernels::fast
#endif
