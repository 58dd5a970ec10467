// Highway kernels for fake_quant and sample_stats, compiled once per SIMD target and picked at run time.
// Compiled with -ffp-contract=off (src/quant/CMakeLists.txt): a fused multiply-add on AVX2 but not on SSE4
// would break bit-identity with the scalar reference and between targets.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <span>
#include <vector>

#include "aciq/core.hpp"
#include "aciq/quant.hpp"
#include "quant/internal.hpp"

#ifndef ACIQ_QUANT_SIMD_SHARED_
#define ACIQ_QUANT_SIMD_SHARED_
// Target-independent parts of the statistics kernel (this file is compiled once per SIMD target).
namespace aciq::quant::stats_detail {

// Element i always lands in float lane i % kStripe whatever the vector width, each block of kBlock
// elements is flushed into double lane totals in lane order, segments of kSegment elements are
// reduced independently (possibly on different threads) and added in segment order, and the lanes
// are added in a fixed tree: every target and every thread count produces the same bits. Float
// arithmetic doubles the lanes per instruction and removes the float->double conversions of an
// all-double kernel (collect on MobileNetV2 spent most of its extra time there). Relative error stays
// ~1e-7 (kSampleStatsTolerance): float partial sums never run longer than kBlock / kStripe terms, and
// pass 2 works on deviations scaled by a power of two (exact), so neither d^4 overflow nor underflow
// can occur for finite data.
constexpr std::size_t kStripe = 32;
constexpr std::size_t kBlock = 2048;
constexpr std::size_t kSegment = 1 << 16;

// Lane totals of pass 1 (min, max, sum x, sum |x|).
struct Pass1 {
  double sum[kStripe] = {}, abs[kStripe] = {};
  float lo = 0.0f, hi = 0.0f;
};
// Lane totals of pass 2 (sums of d, |d|, d^2, d^3, d^4).
struct Pass2 {
  double s1[kStripe] = {}, sa[kStripe] = {}, s2[kStripe] = {}, s3[kStripe] = {}, s4[kStripe] = {};
};
// Where pass 2 centres and scales: d = (x - centre) * down, down = 2^-k.
struct Centre {
  float centre = 0.0f, down = 1.0f;
  int k = 0;
};

inline double TreeSum(const double* l) {
  double t[kStripe];
  for (std::size_t i = 0; i < kStripe; ++i) t[i] = l[i];
  for (std::size_t w = kStripe / 2; w >= 1; w /= 2) {
    for (std::size_t i = 0; i < w; ++i) t[i] = t[2 * i] + t[2 * i + 1];
  }
  return t[0];
}

}  // namespace aciq::quant::stats_detail
#endif  // ACIQ_QUANT_SIMD_SHARED_

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

using namespace stats_detail;  // NOLINT: the shared statistics definitions above

template <class D, class V = hn::Vec<D>>
HWY_INLINE void FlushLanes(D d, const V* v, std::size_t vecs, double* lanes) {
  HWY_ALIGN float tmp[kStripe];
  for (std::size_t k = 0; k < vecs; ++k) hn::Store(v[k], d, tmp + k * hn::Lanes(d));
  for (std::size_t i = 0; i < kStripe; ++i) lanes[i] += static_cast<double>(tmp[i]);
}

using DF = hn::CappedTag<float, kStripe>;
using VF = hn::Vec<DF>;
constexpr std::size_t kLanes = hn::MaxLanes(DF());
static_assert(kStripe % kLanes == 0, "the stripe must be a whole number of vectors");
constexpr std::size_t kVecs = kStripe / kLanes;

// Pass-1 accumulators of one block; `Add` takes one vector of data, `Flush` moves the block into
// the double lane totals. Shared by the plain and the fused (activation) kernels so both produce the
// same bits.
struct Pass1Block {
  VF sum[kVecs], sum_abs[kVecs];
  HWY_INLINE void Reset(DF d) {
    for (std::size_t k = 0; k < kVecs; ++k) sum[k] = sum_abs[k] = hn::Zero(d);
  }
  HWY_INLINE void Add(std::size_t k, VF v) {
    sum[k] = hn::Add(sum[k], v);
    sum_abs[k] = hn::Add(sum_abs[k], hn::Abs(v));
  }
  HWY_INLINE void Flush(DF d, Pass1& p) {
    FlushLanes(d, sum, kVecs, p.sum);
    FlushLanes(d, sum_abs, kVecs, p.abs);
  }
};

HWY_INLINE void Pass1Tail(const float* x, std::size_t begin, std::size_t n, Pass1& p) {
  for (std::size_t i = begin; i < n; ++i) {
    p.sum[i % kStripe] += static_cast<double>(x[i]);
    p.abs[i % kStripe] += std::abs(static_cast<double>(x[i]));
    p.lo = x[i] < p.lo ? x[i] : p.lo;
    p.hi = x[i] > p.hi ? x[i] : p.hi;
  }
}

Pass1 RunPass1(const float* HWY_RESTRICT x, std::size_t n) {
  const DF df;
  const std::size_t stripes_end = n - n % kStripe;
  Pass1 p;
  VF vmin = hn::Set(df, x[0]), vmax = vmin;
  Pass1Block blk;
  for (std::size_t b = 0; b < stripes_end; b += kBlock) {
    const std::size_t e = std::min(stripes_end, b + kBlock);
    blk.Reset(df);
    for (std::size_t i = b; i < e; i += kStripe) {
      for (std::size_t k = 0; k < kVecs; ++k) {
        const VF v = hn::LoadU(df, x + i + k * kLanes);
        vmin = hn::Min(vmin, v);
        vmax = hn::Max(vmax, v);
        blk.Add(k, v);
      }
    }
    blk.Flush(df, p);
  }
  p.lo = hn::GetLane(hn::MinOfLanes(df, vmin));
  p.hi = hn::GetLane(hn::MaxOfLanes(df, vmax));
  Pass1Tail(x, stripes_end, n, p);
  return p;
}

// Pass 2 over x; when kPost is not kNone it also replaces x by post(x) in place and runs pass 1 of
// the activated data on the values it writes (into `next`, with identical lanes and blocks).
template <PostOp::Kind kPost>
Pass2 RunPass2(float* HWY_RESTRICT x, std::size_t n, const Centre& c, const PostOp& post, Pass1* next) {
  const DF df;
  const std::size_t stripes_end = n - n % kStripe;
  const VF vc = hn::Set(df, c.centre), vdown = hn::Set(df, c.down);
  const VF lo = hn::Set(df, post.lo), hi = hn::Set(df, post.hi);
  Pass2 p;
  VF ymin = hn::Zero(df), ymax = ymin;
  if constexpr (kPost != PostOp::Kind::kNone) {
    ymin = hn::Set(df, apply_post_op(x[0], post));
    ymax = ymin;
  }
  Pass1Block next_blk;
  for (std::size_t b = 0; b < stripes_end; b += kBlock) {
    const std::size_t e = std::min(stripes_end, b + kBlock);
    VF s1[kVecs], sa[kVecs], s2[kVecs], s3[kVecs], s4[kVecs];
    for (std::size_t j = 0; j < kVecs; ++j) s1[j] = sa[j] = s2[j] = s3[j] = s4[j] = hn::Zero(df);
    next_blk.Reset(df);
    for (std::size_t i = b; i < e; i += kStripe) {
      for (std::size_t j = 0; j < kVecs; ++j) {
        const VF v = hn::LoadU(df, x + i + j * kLanes);
        const VF dv = hn::Mul(hn::Sub(v, vc), vdown);
        const VF d2 = hn::Mul(dv, dv);
        s1[j] = hn::Add(s1[j], dv);
        sa[j] = hn::Add(sa[j], hn::Abs(dv));
        s2[j] = hn::Add(s2[j], d2);
        s3[j] = hn::Add(s3[j], hn::Mul(d2, dv));
        s4[j] = hn::Add(s4[j], hn::Mul(d2, d2));
        if constexpr (kPost == PostOp::Kind::kClamp) {
          // Finite input (pass 1 checked), so compare+select equals apply_post_op.
          VF y = hn::IfThenElse(hn::Lt(lo, v), v, lo);
          y = hn::IfThenElse(hn::Lt(y, hi), y, hi);
          hn::StoreU(y, df, x + i + j * kLanes);
          ymin = hn::Min(ymin, y);
          ymax = hn::Max(ymax, y);
          next_blk.Add(j, y);
        }
      }
    }
    FlushLanes(df, s1, kVecs, p.s1);
    FlushLanes(df, sa, kVecs, p.sa);
    FlushLanes(df, s2, kVecs, p.s2);
    FlushLanes(df, s3, kVecs, p.s3);
    FlushLanes(df, s4, kVecs, p.s4);
    if constexpr (kPost != PostOp::Kind::kNone) next_blk.Flush(df, *next);
  }
  for (std::size_t i = stripes_end; i < n; ++i) {
    const float dv = (x[i] - c.centre) * c.down;
    const float d2 = dv * dv;
    p.s1[i % kStripe] += static_cast<double>(dv);
    p.sa[i % kStripe] += std::abs(static_cast<double>(dv));
    p.s2[i % kStripe] += static_cast<double>(d2);
    p.s3[i % kStripe] += static_cast<double>(d2 * dv);
    p.s4[i % kStripe] += static_cast<double>(d2 * d2);
  }
  if constexpr (kPost != PostOp::Kind::kNone) {
    next->lo = hn::GetLane(hn::MinOfLanes(df, ymin));
    next->hi = hn::GetLane(hn::MaxOfLanes(df, ymax));
    for (std::size_t i = stripes_end; i < n; ++i) x[i] = apply_post_op(x[i], post);
    Pass1Tail(x, stripes_end, n, *next);
  }
  return p;
}

void Pass1Impl(const float* HWY_RESTRICT x, std::size_t n, Pass1& out) { out = RunPass1(x, n); }

void Pass2Impl(const float* HWY_RESTRICT x, std::size_t n, const Centre& c, Pass2& out) {
  // Without a post-op pass 2 only reads x.
  out = RunPass2<PostOp::Kind::kNone>(const_cast<float*>(x), n, c, PostOp::kNone, nullptr);
}

void Pass2ClampImpl(float* HWY_RESTRICT x, std::size_t n, const Centre& c, float lo, float hi, Pass2& out,
                    Pass1& next) {
  out = RunPass2<PostOp::Kind::kClamp>(x, n, c, PostOp::clamp(lo, hi), &next);
}

const char* TargetNameImpl() { return hwy::TargetName(HWY_TARGET); }

}  // namespace HWY_NAMESPACE
}  // namespace aciq::quant
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace aciq::quant {

HWY_EXPORT(FakeQuantImpl);
HWY_EXPORT(Pass1Impl);
HWY_EXPORT(Pass2Impl);
HWY_EXPORT(Pass2ClampImpl);
HWY_EXPORT(TargetNameImpl);

namespace {

using namespace stats_detail;  // NOLINT

// The centre and scale of pass 2, or false when pass 1 saw NaN/Inf or a float partial overflowed
// (the caller then uses the all-double reference).
bool MakeCentre(const Pass1& p, std::size_t n, Centre& c) {
  const double total = TreeSum(p.sum);
  // |x| partials are checked too: float lanes of |x| can overflow where the signed sum cancels.
  if (!std::isfinite(total) || !std::isfinite(TreeSum(p.abs)) || !std::isfinite(p.lo) ||
      !std::isfinite(p.hi)) {
    return false;
  }
  // The centre is the first-pass mean rounded to float, so x - centre is one float subtraction;
  // finish_stats corrects the mean with the centred sum s1, as in the reference.
  c.centre = static_cast<float>(total / static_cast<double>(n));
  if (!std::isfinite(c.centre)) return false;
  // Deviations are scaled by 2^-k into [-2, 2): exact, and d^4 stays far from float's limits.
  const float reach = std::max(std::abs(p.hi - c.centre), std::abs(p.lo - c.centre));
  if (!std::isfinite(reach)) return false;
  c.k = reach > 0.0f ? std::ilogb(reach) : 0;
  c.down = std::ldexp(1.0f, -c.k);
  return c.down != 0.0f && std::isfinite(c.down);
}

void Finish(std::size_t n, const Pass1& p1, const Centre& c, const Pass2& p2, SampleStats& out) {
  // Re-centre the 4th moment on the mean (delta = mean - centre, in units of 2^k):
  // sum (d - delta)^4 = s4 - 4 delta s3 + 6 delta^2 s2 - 4 delta^3 s1 + n delta^4.
  const double nn = static_cast<double>(n);
  const double s1 = TreeSum(p2.s1), s2 = TreeSum(p2.s2), s3 = TreeSum(p2.s3), s4 = TreeSum(p2.s4);
  const double delta = s1 / nn;
  const double s4c = s4 - 4.0 * delta * s3 + 6.0 * delta * delta * s2 - 4.0 * delta * delta * delta * s1 +
                     nn * delta * delta * delta * delta;
  const double up = std::ldexp(1.0, c.k);
  finish_stats(nn, p1.lo, p1.hi, TreeSum(p1.abs), static_cast<double>(c.centre), s1 * up, TreeSum(p2.sa) * up,
               s2 * up * up, std::max(0.0, s4c) * (up * up) * (up * up), out);
}

std::size_t segment_count(std::size_t n) { return (n + kSegment - 1) / kSegment; }

// Runs fn(segment, begin, end) for every kSegment-sized piece of [0, n), spread over the pool when
// one is given; the pieces never depend on the thread count.
template <class Fn>
void for_segments(std::size_t n, ThreadPool* pool, const Fn& fn) {
  const std::size_t segments = segment_count(n);
  auto run = [&](std::int64_t b, std::int64_t e) {
    for (auto s = static_cast<std::size_t>(b); s < static_cast<std::size_t>(e); ++s) {
      fn(s, s * kSegment, std::min(n, (s + 1) * kSegment));
    }
  };
  if (pool && segments > 1) {
    pool->parallel_for(static_cast<std::int64_t>(segments), run);
  } else {
    run(0, static_cast<std::int64_t>(segments));
  }
}

Pass1 combine(const std::vector<Pass1>& parts) {
  Pass1 t = parts[0];
  for (std::size_t s = 1; s < parts.size(); ++s) {
    for (std::size_t l = 0; l < kStripe; ++l) {
      t.sum[l] += parts[s].sum[l];
      t.abs[l] += parts[s].abs[l];
    }
    t.lo = parts[s].lo < t.lo ? parts[s].lo : t.lo;
    t.hi = parts[s].hi > t.hi ? parts[s].hi : t.hi;
  }
  return t;
}

Pass2 combine(const std::vector<Pass2>& parts) {
  Pass2 t = parts[0];
  for (std::size_t s = 1; s < parts.size(); ++s) {
    for (std::size_t l = 0; l < kStripe; ++l) {
      t.s1[l] += parts[s].s1[l];
      t.sa[l] += parts[s].sa[l];
      t.s2[l] += parts[s].s2[l];
      t.s3[l] += parts[s].s3[l];
      t.s4[l] += parts[s].s4[l];
    }
  }
  return t;
}

Pass1 pass1(const float* x, std::size_t n, ThreadPool* pool) {
  std::vector<Pass1> parts(segment_count(n));
  for_segments(n, pool, [&](std::size_t s, std::size_t b, std::size_t e) {
    HWY_DYNAMIC_DISPATCH(Pass1Impl)(x + b, e - b, parts[s]);
  });
  return combine(parts);
}

// Pass 2 and the result; false when the float kernel cannot be used (non-finite data, overflow).
bool pass2_and_finish(const float* x, std::size_t n, const Pass1& p1, ThreadPool* pool, SampleStats& out) {
  Centre c;
  if (!MakeCentre(p1, n, c)) return false;
  std::vector<Pass2> parts(segment_count(n));
  for_segments(n, pool, [&](std::size_t s, std::size_t b, std::size_t e) {
    HWY_DYNAMIC_DISPATCH(Pass2Impl)(x + b, e - b, c, parts[s]);
  });
  Finish(n, p1, c, combine(parts), out);
  return true;
}

}  // namespace

void fake_quant(std::span<float> x, const AffineQuantParams& p, PostOp post) {
  check_params(p, "fake_quant");
  if (x.empty()) return;
  HWY_DYNAMIC_DISPATCH(FakeQuantImpl)(x.data(), x.size(), p, post);
}

void sample_stats(std::span<const float> x, SampleStats& out, ThreadPool* pool) {
  if (x.empty()) fail("sample_stats: empty sample");
  if (!pass2_and_finish(x.data(), x.size(), pass1(x.data(), x.size(), pool), pool, out)) {
    // NaN/Inf (Min/Max lane semantics with NaN differ per target) or float overflow: the shared
    // scalar code, identical on every target.
    sample_stats_ref(x, out);
  }
}

void sample_stats_clamped(std::span<float> x, float lo, float hi, SampleStats& raw, SampleStats& activated,
                          ThreadPool* pool) {
  if (x.empty()) fail("sample_stats: empty sample");
  if (!(lo <= hi)) fail("sample_stats_clamped: empty clamp range");
  const std::size_t n = x.size();
  const Pass1 p1 = pass1(x.data(), n, pool);
  Centre c;
  if (!MakeCentre(p1, n, c)) {
    // Non-finite data: the same three steps the unfused path takes.
    sample_stats_ref(x, raw);
    const PostOp post = PostOp::clamp(lo, hi);
    for (float& v : x) v = apply_post_op(v, post);
    sample_stats(x, activated, pool);
    return;
  }
  std::vector<Pass2> parts(segment_count(n));
  std::vector<Pass1> next(parts.size());
  for_segments(n, pool, [&](std::size_t s, std::size_t b, std::size_t e) {
    HWY_DYNAMIC_DISPATCH(Pass2ClampImpl)(x.data() + b, e - b, c, lo, hi, parts[s], next[s]);
  });
  Finish(n, p1, c, combine(parts), raw);
  if (!pass2_and_finish(x.data(), n, combine(next), pool, activated)) sample_stats_ref(x, activated);
}

std::string_view simd_target_name() { return HWY_DYNAMIC_DISPATCH(TargetNameImpl)(); }

}  // namespace aciq::quant
#endif  // HWY_ONCE
