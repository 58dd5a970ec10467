// Highway kernels for fake_quant and sample_stats, compiled once per SIMD target and picked at run time.
// Compiled with -ffp-contract=off (src/quant/CMakeLists.txt): a fused multiply-add on AVX2 but not on SSE4
// would break bit-identity with the scalar reference and between targets.
#include <cmath>
#include <cstddef>
#include <cstring>
#include <span>

#include "aciq/core.hpp"
#include "aciq/quant.hpp"
#include "quant/internal.hpp"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "quant/simd_kernels.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

HWY_BEFORE_NAMESPACE();
namespace aciq::quant {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// One vector of the fake-quant formula; every op is an IEEE-exact lane operation, in the order of
// fake_quant_ref, so lanes equal the scalar result bit for bit. Form and post-op are template
// arguments so the element loop carries no branches. The clamp post-op never sees NaN here (the
// quantizer maps NaN to qmax), so compare+select gives exactly apply_post_op's result.
template <GridForm kForm, PostOp::Kind kPost, class D, class V = hn::Vec<D>>
HWY_INLINE V QuantizeVec(D d, V x, V scale, V zp, V offset, V qmax, V lo, V hi) {
  const V zero = hn::Zero(d);
  V q = kForm == GridForm::kZeroPoint ? hn::Add(hn::Div(x, scale), zp) : hn::Div(hn::Sub(x, offset), scale);
  // Compare+select rather than Min/Max: the NaN and -0 behaviour is then defined on every target and
  // matches the reference's `q < qmax ? q : qmax; q > 0 ? q : 0`.
  q = hn::IfThenElse(hn::Lt(q, qmax), q, qmax);
  q = hn::IfThenElse(hn::Gt(q, zero), q, zero);
  // Round half away from zero (roundf) for q >= 0. Highway's Round is half-to-even; floor(q + 0.5)
  // misrounds 0.49999997. q - trunc(q) is exact (Sterbenz), so comparing it with 0.5 is exact.
  const V t = hn::Trunc(q);
  q = hn::Add(t, hn::IfThenElseZero(hn::Ge(hn::Sub(q, t), hn::Set(d, 0.5f)), hn::Set(d, 1.0f)));
  V out = kForm == GridForm::kZeroPoint ? hn::Mul(hn::Sub(q, zp), scale) : hn::Add(hn::Mul(q, scale), offset);
  if constexpr (kPost == PostOp::Kind::kRelu) out = hn::IfThenElse(hn::Lt(out, zero), zero, out);
  if constexpr (kPost == PostOp::Kind::kClamp) {
    out = hn::IfThenElse(hn::Lt(lo, out), out, lo);
    out = hn::IfThenElse(hn::Lt(out, hi), out, hi);
  }
  return out;
}

template <GridForm kForm, PostOp::Kind kPost>
void FakeQuantLoop(float* HWY_RESTRICT x, std::size_t n, const AffineQuantParams& p, const PostOp& post) {
  const hn::ScalableTag<float> d;
  const std::size_t lanes = hn::Lanes(d);
  const auto scale = hn::Set(d, p.scale), zp = hn::Set(d, p.zero_point), offset = hn::Set(d, p.offset),
             qmax = hn::Set(d, p.qmax), lo = hn::Set(d, post.lo), hi = hn::Set(d, post.hi);
  std::size_t i = 0;
  for (; i + lanes <= n; i += lanes) {
    hn::StoreU(QuantizeVec<kForm, kPost>(d, hn::LoadU(d, x + i), scale, zp, offset, qmax, lo, hi), d, x + i);
  }
  if (i < n) {
    // The remainder goes through the same vector code via a padded copy, so there is no second
    // (scalar) formula to keep in sync.
    HWY_ALIGN float buf[hn::MaxLanes(d)] = {};
    std::memcpy(buf, x + i, (n - i) * sizeof(float));
    hn::Store(QuantizeVec<kForm, kPost>(d, hn::Load(d, buf), scale, zp, offset, qmax, lo, hi), d, buf);
    std::memcpy(x + i, buf, (n - i) * sizeof(float));
  }
}

template <GridForm kForm>
void FakeQuantForm(float* HWY_RESTRICT x, std::size_t n, const AffineQuantParams& p, const PostOp& post) {
  switch (post.kind) {
    case PostOp::Kind::kNone: return FakeQuantLoop<kForm, PostOp::Kind::kNone>(x, n, p, post);
    case PostOp::Kind::kRelu: return FakeQuantLoop<kForm, PostOp::Kind::kRelu>(x, n, p, post);
    case PostOp::Kind::kClamp: return FakeQuantLoop<kForm, PostOp::Kind::kClamp>(x, n, p, post);
  }
}

void FakeQuantImpl(float* HWY_RESTRICT x, std::size_t n, const AffineQuantParams& p, PostOp post) {
  switch (p.form) {
    case GridForm::kIdentity:
      // Nothing to quantize; the post-op alone keeps NaN, like the reference.
      if (post.kind != PostOp::Kind::kNone) {
        for (std::size_t i = 0; i < n; ++i) x[i] = apply_post_op(x[i], post);
      }
      return;
    case GridForm::kZeroPoint: return FakeQuantForm<GridForm::kZeroPoint>(x, n, p, post);
    case GridForm::kOffset: return FakeQuantForm<GridForm::kOffset>(x, n, p, post);
  }
}

// Sums in kStripe fixed double lanes: element i always lands in lane i % kStripe whatever the vector
// width, and the lanes are added in a fixed tree, so every target produces the same bits.
constexpr std::size_t kStripe = 8;

HWY_INLINE double TreeSum(const double* l) {
  return ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7]));
}

void SampleStatsImpl(const float* HWY_RESTRICT x, std::size_t n, SampleStats& out) {
  const hn::CappedTag<double, kStripe> dd;
  const hn::Rebind<float, decltype(dd)> df;
  using VD = hn::Vec<decltype(dd)>;
  constexpr std::size_t kLanes = hn::MaxLanes(dd);
  static_assert(kStripe % kLanes == 0, "the stripe must be a whole number of vectors");
  constexpr std::size_t kVecs = kStripe / kLanes;
  const std::size_t blocks_end = n - n % kStripe;

  // Pass 1: min, max, sum x, sum |x|.
  auto vmin = hn::Set(df, x[0]), vmax = vmin;
  VD sum[kVecs], sum_abs[kVecs];
  for (std::size_t k = 0; k < kVecs; ++k) sum[k] = sum_abs[k] = hn::Zero(dd);
  for (std::size_t i = 0; i < blocks_end; i += kStripe) {
    for (std::size_t k = 0; k < kVecs; ++k) {
      const auto vf = hn::LoadU(df, x + i + k * kLanes);
      vmin = hn::Min(vmin, vf);
      vmax = hn::Max(vmax, vf);
      const VD v = hn::PromoteTo(dd, vf);
      sum[k] = hn::Add(sum[k], v);
      sum_abs[k] = hn::Add(sum_abs[k], hn::Abs(v));
    }
  }
  HWY_ALIGN double l_sum[kStripe], l_abs[kStripe];
  for (std::size_t k = 0; k < kVecs; ++k) {
    hn::Store(sum[k], dd, l_sum + k * kLanes);
    hn::Store(sum_abs[k], dd, l_abs + k * kLanes);
  }
  float lo = hn::GetLane(hn::MinOfLanes(df, vmin)), hi = hn::GetLane(hn::MaxOfLanes(df, vmax));
  for (std::size_t i = blocks_end; i < n; ++i) {
    const double v = x[i];
    l_sum[i % kStripe] += v;
    l_abs[i % kStripe] += std::abs(v);
    lo = x[i] < lo ? x[i] : lo;
    hi = x[i] > hi ? x[i] : hi;
  }
  const double total = TreeSum(l_sum);
  // NaN/Inf: Min/Max lane semantics with NaN differ per target; the rare path is shared scalar code.
  if (!std::isfinite(total)) {
    non_finite_stats(std::span<const float>(x, n), out);
    return;
  }
  const double mean0 = total / static_cast<double>(n);

  // Pass 2: centered sums of d, |d|, d^2, d^4 with d = x - mean0.
  const VD vmean = hn::Set(dd, mean0);
  VD s1[kVecs], s_abs[kVecs], s2[kVecs], s4[kVecs];
  for (std::size_t k = 0; k < kVecs; ++k) s1[k] = s_abs[k] = s2[k] = s4[k] = hn::Zero(dd);
  for (std::size_t i = 0; i < blocks_end; i += kStripe) {
    for (std::size_t k = 0; k < kVecs; ++k) {
      const VD dv = hn::Sub(hn::PromoteTo(dd, hn::LoadU(df, x + i + k * kLanes)), vmean);
      const VD d2 = hn::Mul(dv, dv);
      s1[k] = hn::Add(s1[k], dv);
      s_abs[k] = hn::Add(s_abs[k], hn::Abs(dv));
      s2[k] = hn::Add(s2[k], d2);
      s4[k] = hn::Add(s4[k], hn::Mul(d2, d2));
    }
  }
  HWY_ALIGN double l1[kStripe], la[kStripe], l2[kStripe], l4[kStripe];
  for (std::size_t k = 0; k < kVecs; ++k) {
    hn::Store(s1[k], dd, l1 + k * kLanes);
    hn::Store(s_abs[k], dd, la + k * kLanes);
    hn::Store(s2[k], dd, l2 + k * kLanes);
    hn::Store(s4[k], dd, l4 + k * kLanes);
  }
  for (std::size_t i = blocks_end; i < n; ++i) {
    const double dv = static_cast<double>(x[i]) - mean0;
    const double d2 = dv * dv;
    l1[i % kStripe] += dv;
    la[i % kStripe] += std::abs(dv);
    l2[i % kStripe] += d2;
    l4[i % kStripe] += d2 * d2;
  }
  finish_stats(static_cast<double>(n), lo, hi, TreeSum(l_abs), mean0, TreeSum(l1), TreeSum(la), TreeSum(l2),
               TreeSum(l4), out);
}

const char* TargetNameImpl() { return hwy::TargetName(HWY_TARGET); }

}  // namespace HWY_NAMESPACE
}  // namespace aciq::quant
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace aciq::quant {

HWY_EXPORT(FakeQuantImpl);
HWY_EXPORT(SampleStatsImpl);
HWY_EXPORT(TargetNameImpl);

void fake_quant(std::span<float> x, const AffineQuantParams& p, PostOp post) {
  check_params(p, "fake_quant");
  if (x.empty()) return;
  HWY_DYNAMIC_DISPATCH(FakeQuantImpl)(x.data(), x.size(), p, post);
}

void sample_stats(std::span<const float> x, SampleStats& out) {
  if (x.empty()) fail("sample_stats: empty sample");
  HWY_DYNAMIC_DISPATCH(SampleStatsImpl)(x.data(), x.size(), out);
}

std::string_view simd_target_name() { return HWY_DYNAMIC_DISPATCH(TargetNameImpl)(); }

}  // namespace aciq::quant
#endif  // HWY_ONCE
