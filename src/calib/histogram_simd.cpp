// Highway kernel of histogram_slots, compiled once per SIMD target and picked at run time.
#include "calib/histogram_simd.hpp"

#include <cstring>

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "calib/histogram_simd.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

HWY_BEFORE_NAMESPACE();
namespace aciq::calib::detail {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

template <class D, class V = hn::Vec<D>>
HWY_INLINE hn::Vec<hn::RebindToUnsigned<D>> SlotsOf(D d, V v, V positive_scale, V negative_scale) {
  const hn::RebindToSigned<D> di;
  const hn::RebindToUnsigned<D> du;
  const auto zero = hn::Zero(d);
  const auto pos = hn::Gt(v, zero);
  const auto neg = hn::Lt(v, zero);  // neither for 0, -0 and NaN
  auto t = hn::Mul(hn::Abs(v), hn::IfThenElse(pos, positive_scale, negative_scale));
  const auto last = hn::Set(d, 2047.0f);
  t = hn::IfThenElse(hn::Lt(t, last), t, last);  // before the conversion: it is only defined in range
  auto slot = hn::ConvertTo(di, t);              // t >= 0: truncation is floor
  slot = hn::IfThenElse(hn::RebindMask(di, neg), hn::Add(slot, hn::Set(di, 2048)), slot);
  slot = hn::IfThenElse(hn::RebindMask(di, hn::Or(pos, neg)), slot,
                        hn::Set(di, static_cast<std::int32_t>(kZeroSlot)));
  return hn::BitCast(du, slot);
}

void HistogramSlotsImpl(const float* HWY_RESTRICT x, std::size_t n, float positive_scale,
                        float negative_scale, std::uint32_t* HWY_RESTRICT slots) {
  const hn::ScalableTag<float> d;
  const hn::RebindToUnsigned<decltype(d)> du;
  const std::size_t lanes = hn::Lanes(d);
  const auto ps = hn::Set(d, positive_scale), ns = hn::Set(d, negative_scale);
  std::size_t i = 0;
  for (; i + lanes <= n; i += lanes) hn::StoreU(SlotsOf(d, hn::LoadU(d, x + i), ps, ns), du, slots + i);
  if (i < n) {
    // The remainder through the same vector code on a padded copy: one formula only.
    HWY_ALIGN float buf[hn::MaxLanes(d)] = {};
    HWY_ALIGN std::uint32_t out[hn::MaxLanes(du)] = {};
    std::memcpy(buf, x + i, (n - i) * sizeof(float));
    hn::Store(SlotsOf(d, hn::Load(d, buf), ps, ns), du, out);
    std::memcpy(slots + i, out, (n - i) * sizeof(std::uint32_t));
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace aciq::calib::detail
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace aciq::calib::detail {

HWY_EXPORT(HistogramSlotsImpl);

void histogram_slots(const float* x, std::size_t n, float positive_scale, float negative_scale,
                     std::uint32_t* slots) {
  HWY_DYNAMIC_DISPATCH(HistogramSlotsImpl)(x, n, positive_scale, negative_scale, slots);
}

}  // namespace aciq::calib::detail
#endif  // HWY_ONCE
