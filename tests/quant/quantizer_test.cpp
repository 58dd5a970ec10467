// Tests of the fake quantizer: seed-formula golden values, degenerate ranges, SIMD vs reference bit-identity.
#include <gtest/gtest.h>
#include <hwy/targets.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "aciq/core.hpp"
#include "aciq/quant.hpp"

namespace aciq::quant {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr std::uint64_t kSeed = 1234567;

// First index where the bit patterns differ, or -1.
std::ptrdiff_t first_bit_difference(const std::vector<float>& a, const std::vector<float>& b) {
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::bit_cast<std::uint32_t>(a[i]) != std::bit_cast<std::uint32_t>(b[i]))
      return static_cast<std::ptrdiff_t>(i);
  }
  return -1;
}

// Values around the range, exact grid ties, signed zeros and non-finite values.
std::vector<float> test_input(std::size_t n, std::uint64_t seed, float lo, float hi, float scale) {
  std::mt19937_64 rng(seed);
  const float margin = 0.25f * (hi - lo) + 1.0f;
  std::uniform_real_distribution<float> u(lo - margin, hi + margin);
  std::uniform_int_distribution<int> k(-3, 300);
  std::vector<float> x(n);
  for (std::size_t i = 0; i < n; ++i) {
    switch (i % 11) {
      case 3: x[i] = (static_cast<float>(k(rng)) + 0.5f) * scale + lo; break;  // near half-way points
      case 7: x[i] = (i / 11) % 2 ? -0.0f : 0.0f; break;
      default: x[i] = u(rng);
    }
  }
  const float specials[] = {kNaN, kInf, -kInf, lo, hi, -0.0f};
  for (std::size_t i = 0; i < std::size(specials) && 5 * i < n; ++i) x[n - 1 - 5 * i] = specials[i];
  return x;
}

std::vector<float> quantize_ref(std::vector<float> x, const AffineQuantParams& p,
                                PostOp post = PostOp::kNone) {
  fake_quant_ref(x, p, post);
  return x;
}

std::vector<float> quantize_simd(std::vector<float> x, const AffineQuantParams& p,
                                 PostOp post = PostOp::kNone) {
  fake_quant(x, p, post);
  return x;
}

struct NamedParams {
  std::string name;
  AffineQuantParams p;
  float lo, hi;
};

std::vector<NamedParams> param_cases() {
  return {
      {"true-zero 8b", affine_params(-1.3f, 2.9f, 8), -1.3f, 2.9f},
      {"true-zero 4b", affine_params(-0.7f, 5.1f, 4), -0.7f, 5.1f},
      {"offset 8b (all positive)", affine_params(0.25f, 7.5f, 8), 0.25f, 7.5f},
      {"offset 3b (all negative)", affine_params(-9.0f, -2.0f, 3), -9.0f, -2.0f},
      {"window 2b", affine_params(seed_window(1.1, -4.0, 3.0, 0.2), 2), -0.9f, 1.3f},
      {"symmetric 8b", symmetric_params(3.0f, 8), -3.0f, 3.0f},
      {"midrise 1b", midrise_params(2.0f, 1), -2.0f, 2.0f},
      {"midrise 16b", midrise_params(2.0f, 16), -2.0f, 2.0f},
      {"identity", affine_params(1.5f, 1.5f, 8), 1.0f, 2.0f},
  };
}

TEST(Quantizer, AffineParamsTrueZero) {
  const AffineQuantParams p = affine_params(-1.0f, 3.0f, 8);
  EXPECT_EQ(p.form, GridForm::kZeroPoint);
  EXPECT_EQ(p.qmax, 255.0f);
  EXPECT_EQ(p.scale, 4.0f / 255.0f);
  EXPECT_EQ(p.zero_point, 64.0f);  // -roundf(-1 / (4/255)) = -roundf(-63.75)
  std::vector<float> x = {0.0f, -0.0f};
  fake_quant(x, p);
  EXPECT_EQ(x[0], 0.0f);  // true zero: 0 is on the grid
  EXPECT_EQ(x[1], 0.0f);
}

TEST(Quantizer, AffineParamsOffsetFormWhenZeroOutsideRange) {
  const AffineQuantParams p = affine_params(1.0f, 2.0f, 8);
  EXPECT_EQ(p.form, GridForm::kOffset);
  EXPECT_EQ(p.offset, 1.0f);
  std::vector<float> x = {1.0f, 0.0f, 2.0f};
  fake_quant(x, p);
  EXPECT_EQ(x[0], 1.0f);  // q = 0: out = 0 * scale + offset
  EXPECT_EQ(x[1], 1.0f);  // clamped up
  EXPECT_FLOAT_EQ(x[2], 2.0f);
  // A range touching zero from above (lo == 0) is not "straddling": the seed needs offset < 0.
  EXPECT_EQ(affine_params(0.0f, 1.0f, 8).form, GridForm::kOffset);
  EXPECT_EQ(affine_params(-1.0f, 0.0f, 8).form, GridForm::kOffset);
}

// Hand-computed with the seed's float formula: lo = -1, hi = 3, 2 bits: qmax 3, scale = 4/3,
// shift = roundf(-1 / (4/3)) = roundf(-0.75) = -1 (zero point 1).
TEST(Quantizer, SeedFormulaGolden) {
  const AffineQuantParams p = affine_params(-1.0f, 3.0f, 2);
  ASSERT_EQ(p.form, GridForm::kZeroPoint);
  EXPECT_EQ(p.zero_point, 1.0f);
  const float s = 4.0f / 3.0f;
  const std::vector<float> in = {0.6f, 0.7f, -5.0f, 10.0f, kNaN, kInf, -kInf, 2.0f};
  // 0.6/s + 1 = 1.45 -> 1 -> 0; 0.7/s + 1 = 1.525 -> 2 -> s; clamps; NaN -> qmax (CUDA fminf); 2/s+1 = 2.5
  // -> 3.
  const std::vector<float> want = {0.0f, s, -s, 2 * s, 2 * s, 2 * s, -s, 2 * s};
  EXPECT_EQ(first_bit_difference(quantize_ref(in, p), want), -1);
  EXPECT_EQ(first_bit_difference(quantize_simd(in, p), want), -1);
}

// roundf is half away from zero; Highway's Round and rint are half to even, floor(q + 0.5) misrounds
// the float just below 0.5.
TEST(Quantizer, RoundsHalfAwayFromZero) {
  const AffineQuantParams p = affine_params(0.0f, 255.0f, 8);  // offset form, scale exactly 1
  ASSERT_EQ(p.scale, 1.0f);
  const std::vector<float> in = {2.5f, 3.5f, 0.5f, 0.49999997f, 254.5f, 1.4999999f};
  const std::vector<float> want = {3.0f, 4.0f, 1.0f, 0.0f, 255.0f, 1.0f};
  EXPECT_EQ(first_bit_difference(quantize_ref(in, p), want), -1);
  EXPECT_EQ(first_bit_difference(quantize_simd(in, p), want), -1);
}

TEST(Quantizer, DegenerateAndInvalidRanges) {
  // Zero width: the seed returns the input unchanged; so do we (NaN and Inf included).
  const AffineQuantParams p = affine_params(0.5f, 0.5f, 8);
  EXPECT_EQ(p.form, GridForm::kIdentity);
  const std::vector<float> in = {0.1f, -7.0f, kNaN, kInf};
  EXPECT_EQ(first_bit_difference(quantize_simd(in, p), in), -1);
  EXPECT_EQ(first_bit_difference(quantize_ref(in, p), in), -1);
  // A range whose scale underflows to zero is treated the same way.
  EXPECT_EQ(affine_params(0.0f, std::numeric_limits<float>::denorm_min(), 8).form, GridForm::kIdentity);
  EXPECT_EQ(symmetric_params(0.0f, 8).form, GridForm::kIdentity);
  EXPECT_EQ(midrise_params(0.0f, 8).form, GridForm::kIdentity);
  EXPECT_EQ(affine_params(QuantWindow{-1.0, 0.0}, 8).form, GridForm::kIdentity);

  EXPECT_THROW(affine_params(kNaN, 1.0f, 8), Error);
  EXPECT_THROW(affine_params(0.0f, kInf, 8), Error);
  EXPECT_THROW(affine_params(2.0f, 1.0f, 8), Error);
  EXPECT_THROW(affine_params(-3e38f, 3e38f, 8), Error);  // width overflows
  EXPECT_THROW(affine_params(0.0f, 1.0f, 0), Error);
  EXPECT_THROW(affine_params(0.0f, 1.0f, 17), Error);
  EXPECT_THROW(affine_params(QuantWindow{0.0, -1.0}, 8), Error);
  EXPECT_THROW(affine_params(QuantWindow{0.0, 1e300}, 8), Error);
  EXPECT_THROW(symmetric_params(1.0f, 1), Error);
  EXPECT_THROW(symmetric_params(-1.0f, 8), Error);
  EXPECT_THROW(midrise_params(kNaN, 8), Error);
  try {
    affine_params(2.0f, 1.0f, 8);
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("affine_params"), std::string::npos) << e.what();
  }
  // Hand-built parameters that no constructor would produce are refused, not silently used.
  AffineQuantParams bad = affine_params(-1.0f, 1.0f, 8);
  bad.scale = 0.0f;
  std::vector<float> x = {1.0f};
  EXPECT_THROW(fake_quant(x, bad), Error);
  EXPECT_THROW(fake_quant_ref(x, bad), Error);
  bad = affine_params(-1.0f, 1.0f, 8);
  bad.qmax = 100.0f;
  EXPECT_THROW(fake_quant(x, bad), Error);
}

// The window path keeps the seed's double-precision true-zero test and rounds offset/delta to float
// separately, which can differ from rounding lo and hi.
TEST(Quantizer, WindowParamsFollowTheSeed) {
  const QuantWindow w{-0.1234567890123, 3.3333333333333};
  const AffineQuantParams p = affine_params(w, 8);
  ASSERT_EQ(p.form, GridForm::kZeroPoint);
  const float range = static_cast<float>(w.delta), offset = static_cast<float>(w.offset);
  EXPECT_EQ(p.scale, range / 255.0f);
  EXPECT_EQ(p.zero_point, -std::round(offset / (range / 255.0f)));
}

TEST(Quantizer, SymmetricAndMidriseGrids) {
  const AffineQuantParams s = symmetric_params(2.54f, 8);
  std::vector<float> x = {0.0f, 2.54f, -2.54f, 5.0f, -5.0f};
  fake_quant(x, s);
  EXPECT_EQ(x[0], 0.0f);
  EXPECT_FLOAT_EQ(x[1], 2.54f);
  EXPECT_FLOAT_EQ(x[2], -2.54f);
  EXPECT_FLOAT_EQ(x[3], 2.54f);
  EXPECT_FLOAT_EQ(x[4], -2.56f);  // level 0 = -128 * scale: reachable only beyond -max_abs
  // Midrise: 2 bits on [-1, 1] = bins of 0.5 reconstructed at -0.75, -0.25, 0.25, 0.75.
  const AffineQuantParams m = midrise_params(1.0f, 2);
  std::vector<float> y = {-2.0f, -0.6f, -0.5f, -0.1f, 0.0f, 0.3f, 0.5f, 0.99f, 3.0f};
  fake_quant(y, m);
  const std::vector<float> want = {-0.75f, -0.75f, -0.25f, -0.25f, 0.25f, 0.25f, 0.75f, 0.75f, 0.75f};
  EXPECT_EQ(first_bit_difference(y, want), -1);
}

// Rule 1 of DESIGN.md: the dispatched kernel equals the scalar reference bit for bit on odd sizes.
TEST(Quantizer, SimdMatchesReferenceBitExact) {
  for (const auto& c : param_cases()) {
    for (const std::size_t n : {std::size_t{1}, std::size_t{13}, std::size_t{127}, std::size_t{1000003}}) {
      for (const PostOp post : {PostOp::kNone, PostOp::kRelu, PostOp::clamp(0.0f, 6.0f), PostOp::clamp(-0.5f, 0.25f)}) {
        SCOPED_TRACE(c.name + " n=" + std::to_string(n) + " post=" + std::to_string(static_cast<int>(post.kind)) +
                     " [" + std::to_string(post.lo) + "," + std::to_string(post.hi) + "]" +
                     " seed=" + std::to_string(kSeed) + " target=" + std::string(simd_target_name()));
        const std::vector<float> x = test_input(n, kSeed + n, c.lo, c.hi, c.p.scale);
        const std::vector<float> ref = quantize_ref(x, c.p, post);
        const std::vector<float> simd = quantize_simd(x, c.p, post);
        const std::ptrdiff_t i = first_bit_difference(ref, simd);
        EXPECT_EQ(i, -1) << "x=" << (i >= 0 ? x[i] : 0) << " ref=" << (i >= 0 ? ref[i] : 0)
                         << " simd=" << (i >= 0 ? simd[i] : 0);
      }
    }
  }
}

// Every compiled and supported Highway target (AVX-512/AVX2/SSE4/SSSE3/scalar here) gives the same bits
// for fake_quant and sample_stats.
TEST(Quantizer, AllSimdTargetsAgree) {
  const std::vector<std::int64_t> targets = hwy::SupportedAndGeneratedTargets();
  ASSERT_FALSE(targets.empty());
  const auto c = param_cases()[0];
  const std::vector<float> x = test_input(1000003, kSeed, c.lo, c.hi, c.p.scale);
  const std::vector<float> ref = quantize_ref(x, c.p);
  std::vector<float> finite(x.size());
  std::transform(x.begin(), x.end(), finite.begin(), [](float v) { return std::isfinite(v) ? v : 0.5f; });
  SampleStats first{};
  std::string tested;
  for (std::size_t t = 0; t < targets.size(); ++t) {
    hwy::SetSupportedTargetsForTest(targets[t]);
    const std::string name = hwy::TargetName(targets[t]);
    tested += name + " ";
    SCOPED_TRACE("target " + name + " seed=" + std::to_string(kSeed));
    EXPECT_EQ(simd_target_name(), name);
    EXPECT_EQ(first_bit_difference(ref, quantize_simd(x, c.p)), -1);
    EXPECT_EQ(first_bit_difference(quantize_ref(x, c.p, PostOp::kRelu), quantize_simd(x, c.p, PostOp::kRelu)),
              -1);
    SampleStats s{};
    sample_stats(finite, s);
    if (t == 0) first = s;
    for (const auto& [a, b] : {std::pair{s.min, first.min},
                               {s.max, first.max},
                               {s.mean, first.mean},
                               {s.std, first.std},
                               {s.mean_abs, first.mean_abs},
                               {s.b, first.b},
                               {s.kurtosis, first.kurtosis}}) {
      EXPECT_EQ(std::bit_cast<std::uint64_t>(a), std::bit_cast<std::uint64_t>(b)) << a << " vs " << b;
    }
  }
  hwy::SetSupportedTargetsForTest(0);
  std::printf("checked SIMD targets: %s\n", tested.c_str());
}

TEST(Quantizer, FusedReluEqualsQuantizeThenRelu) {
  for (const auto& c : param_cases()) {
    const std::vector<float> x = test_input(1000, kSeed, c.lo, c.hi, c.p.scale);
    std::vector<float> want = quantize_ref(x, c.p);
    for (float& v : want) v = v < 0.0f ? 0.0f : v;
    EXPECT_EQ(first_bit_difference(quantize_simd(x, c.p, PostOp::kRelu), want), -1) << c.name;
  }
}

// The executor fuses a Relu/Clip that consumes a quantized value into the quantizer's pass
// (docs/threading.md); the result must equal quantizing and then running the Clip operator's formula
// (std::min(hi, std::max(lo, v)), kernels/reference), including NaN passing through an identity grid.
TEST(Quantizer, FusedClampEqualsQuantizeThenClip) {
  const float inf = std::numeric_limits<float>::infinity();
  for (const auto& c : param_cases()) {
    for (const auto& [lo, hi] : {std::pair{0.0f, 6.0f}, {0.0f, inf}, {-1.0f, 0.5f}, {-inf, 0.0f}}) {
      const std::vector<float> x = test_input(1001, kSeed, c.lo, c.hi, c.p.scale);
      std::vector<float> want = quantize_ref(x, c.p);
      for (float& v : want) {
        if (!std::isnan(v)) v = std::min(hi, std::max(lo, v));
      }
      EXPECT_EQ(first_bit_difference(quantize_simd(x, c.p, PostOp::clamp(lo, hi)), want), -1) << c.name;
      EXPECT_EQ(first_bit_difference(quantize_ref(x, c.p, PostOp::clamp(lo, hi)), want), -1) << c.name;
    }
  }
}

TEST(Quantizer, StochasticRounding) {
  const AffineQuantParams p = affine_params(-1.0f, 1.0f, 4);
  std::vector<float> x(100000, 0.3f * p.scale);  // 30% of the way from the zero level to the next
  std::vector<float> a = x, b = x, c = x;
  fake_quant_stochastic_ref(a, p, 42);
  fake_quant_stochastic_ref(b, p, 42);
  EXPECT_EQ(first_bit_difference(a, b), -1);  // deterministic for a seed
  // Chunking with first_index gives the same stream as one call.
  std::span<float> cs(c);
  fake_quant_stochastic_ref(cs.subspan(0, 777), p, 42, 0);
  fake_quant_stochastic_ref(cs.subspan(777), p, 42, 777);
  EXPECT_EQ(first_bit_difference(a, c), -1);
  // Unbiased: the mean of the output is the input (rounds up with probability 0.3).
  double mean = 0.0;
  for (const float v : a) mean += v;
  mean /= static_cast<double>(a.size());
  EXPECT_NEAR(mean / (0.3 * p.scale), 1.0, 0.02);  // binomial standard error ~0.5%
  std::vector<float> d = x;
  fake_quant_stochastic_ref(d, p, 43);
  EXPECT_NE(first_bit_difference(a, d), -1);
}

TEST(Quantizer, WeightModes) {
  // Two output channels of very different scale: per-channel keeps the small one accurate.
  std::vector<float> w = {-0.01f, 0.004f, 0.02f, 0.0f, -3.0f, 1.0f, 2.0f, 0.5f};
  auto run = [&](WeightMode m) {
    std::vector<float> v = w;
    fake_quant_weights(v, 2, 8, m);
    return v;
  };
  std::vector<float> tensor = run(WeightMode::kPerTensorAffine);
  std::vector<float> want = w;
  fake_quant_ref(want, affine_params(-3.0f, 2.0f, 8));
  EXPECT_EQ(first_bit_difference(tensor, want), -1);

  std::vector<float> channel = run(WeightMode::kPerChannelAffine);
  want = w;
  fake_quant_ref(std::span<float>(want).subspan(0, 4), affine_params(-0.01f, 0.02f, 8));
  fake_quant_ref(std::span<float>(want).subspan(4, 4), affine_params(-3.0f, 2.0f, 8));
  EXPECT_EQ(first_bit_difference(channel, want), -1);

  std::vector<float> sym = run(WeightMode::kPerChannelSymmetric);
  want = w;
  fake_quant_ref(std::span<float>(want).subspan(0, 4), symmetric_params(0.02f, 8));
  fake_quant_ref(std::span<float>(want).subspan(4, 4), symmetric_params(3.0f, 8));
  EXPECT_EQ(first_bit_difference(sym, want), -1);
  EXPECT_EQ(sym[3], 0.0f);

  std::vector<float> tsym = run(WeightMode::kPerTensorSymmetric);
  want = w;
  fake_quant_ref(want, symmetric_params(3.0f, 8));
  EXPECT_EQ(first_bit_difference(tsym, want), -1);

  double err_tensor = 0.0, err_channel = 0.0;
  for (std::size_t i = 0; i < 4; ++i) {
    err_tensor += std::abs(tensor[i] - w[i]);
    err_channel += std::abs(channel[i] - w[i]);
  }
  EXPECT_LT(err_channel, err_tensor);

  std::vector<float> v = w;
  EXPECT_THROW(fake_quant_weights(v, 3, 8, WeightMode::kPerChannelAffine), Error);
  EXPECT_THROW(fake_quant_weights(v, 0, 8, WeightMode::kPerTensorAffine), Error);
  v[2] = kNaN;
  EXPECT_THROW(fake_quant_weights(v, 2, 8, WeightMode::kPerTensorAffine), Error);
  std::vector<float> empty;
  EXPECT_NO_THROW(fake_quant_weights(empty, 4, 8, WeightMode::kPerChannelAffine));
}

}  // namespace
}  // namespace aciq::quant
