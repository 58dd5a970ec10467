// Tests of the per-sample statistics: closed-form values, SIMD vs reference tolerance, NaN/Inf behaviour.
#include <gtest/gtest.h>

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
constexpr std::uint64_t kSeed = 777;

std::vector<float> laplace_like(std::size_t n, std::uint64_t seed, float mean, float b) {
  std::mt19937_64 rng(seed);
  std::exponential_distribution<float> e(1.0f / b);
  std::bernoulli_distribution sign(0.5);
  std::vector<float> x(n);
  for (float& v : x) v = mean + (sign(rng) ? e(rng) : -e(rng));
  return x;
}

// |simd - ref| <= tol * (|ref| + scale), the contract stated in quant.hpp.
void expect_close(const SampleStats& ref, const SampleStats& simd) {
  const double scale = std::max(std::abs(ref.min), std::abs(ref.max));
  auto check = [&](const char* name, double r, double s, double sc) {
    if (std::isnan(r)) {
      EXPECT_TRUE(std::isnan(s)) << name << ": ref NaN, simd " << s;
      return;
    }
    EXPECT_LE(std::abs(r - s), kSampleStatsTolerance * (std::abs(r) + sc))
        << name << ": ref " << r << " simd " << s;
  };
  EXPECT_EQ(ref.min, simd.min);  // min/max are exact
  EXPECT_EQ(ref.max, simd.max);
  check("mean", ref.mean, simd.mean, scale);
  check("std", ref.std, simd.std, scale);
  check("mean_abs", ref.mean_abs, simd.mean_abs, scale);
  check("b", ref.b, simd.b, scale);
  check("kurtosis", ref.kurtosis, simd.kurtosis, 1.0);
}

TEST(SampleStats, HandComputedValues) {
  const std::vector<float> x = {1.0f, 2.0f, 3.0f, 4.0f};
  for (const bool simd : {false, true}) {
    SampleStats s;
    simd ? sample_stats(x, s) : sample_stats_ref(x, s);
    EXPECT_EQ(s.min, 1.0);
    EXPECT_EQ(s.max, 4.0);
    EXPECT_DOUBLE_EQ(s.mean, 2.5);
    EXPECT_DOUBLE_EQ(s.std, std::sqrt(5.0 / 3.0));  // unbiased, like torch.std
    EXPECT_DOUBLE_EQ(s.mean_abs, 2.5);
    EXPECT_DOUBLE_EQ(s.b, 1.0);
    // The seed's kurtosis: mean(((x - mean) / std_unbiased)^4) - 3 = 2.5625 / (25/9) - 3.
    EXPECT_DOUBLE_EQ(s.kurtosis, 2.5625 / (25.0 / 9.0) - 3.0);
  }
}

TEST(SampleStats, SimdWithinToleranceOnOddSizes) {
  for (const std::size_t n :
       {std::size_t{1}, std::size_t{2}, std::size_t{13}, std::size_t{127}, std::size_t{1000003}}) {
    SCOPED_TRACE("n=" + std::to_string(n) + " seed=" + std::to_string(kSeed) +
                 " target=" + std::string(simd_target_name()));
    const std::vector<float> x = laplace_like(n, kSeed + n, 0.75f, 1.5f);
    SampleStats ref, simd;
    sample_stats_ref(x, ref);
    sample_stats(x, simd);
    expect_close(ref, simd);
  }
}

// Large offset, small spread: one-pass power sums would lose the variance; the two-pass form keeps it.
TEST(SampleStats, AccurateUnderLargeMean) {
  const std::size_t n = 100003;
  std::vector<float> x(n);
  for (std::size_t i = 0; i < n; ++i) x[i] = 4096.0f + (i % 2 ? 0.125f : -0.125f);
  // Exact: deviations are +-0.125 except one extra -0.125 (n odd).
  const double mean = 4096.0 - 0.125 / static_cast<double>(n);
  long double ss = 0, s4 = 0;
  for (const float v : x) {
    const long double d = static_cast<long double>(v) - mean;
    ss += d * d;
    s4 += d * d * d * d;
  }
  const double var = static_cast<double>(ss / (n - 1));
  for (const bool simd : {false, true}) {
    SampleStats s;
    simd ? sample_stats(x, s) : sample_stats_ref(x, s);
    EXPECT_NEAR(s.mean, mean, 1e-12);
    EXPECT_NEAR(s.std / std::sqrt(var), 1.0, 1e-12);
    EXPECT_NEAR(s.kurtosis, static_cast<double>(s4 / n) / (var * var) - 3.0, 1e-9);
  }
}

TEST(SampleStats, DegenerateSamples) {
  for (const bool simd : {false, true}) {
    SampleStats s;
    // One element: torch.std is NaN (n - 1 = 0), so is the seed's kurtosis.
    const std::vector<float> one = {3.0f};
    simd ? sample_stats(one, s) : sample_stats_ref(one, s);
    EXPECT_EQ(s.min, 3.0);
    EXPECT_EQ(s.mean, 3.0);
    EXPECT_EQ(s.b, 0.0);
    EXPECT_TRUE(std::isnan(s.std));
    EXPECT_TRUE(std::isnan(s.kurtosis));
    // Constant: std 0, kurtosis 0/0.
    const std::vector<float> flat(37, -2.0f);
    simd ? sample_stats(flat, s) : sample_stats_ref(flat, s);
    EXPECT_EQ(s.std, 0.0);
    EXPECT_EQ(s.b, 0.0);
    EXPECT_EQ(s.mean_abs, 2.0);
    EXPECT_TRUE(std::isnan(s.kurtosis));
    // Signed zeros: min and max are +0 whatever the order.
    const std::vector<float> zeros = {-0.0f, 0.0f, -0.0f};
    simd ? sample_stats(zeros, s) : sample_stats_ref(zeros, s);
    EXPECT_FALSE(std::signbit(s.min));
    EXPECT_FALSE(std::signbit(s.max));
  }
  std::vector<float> empty;
  SampleStats s;
  EXPECT_THROW(sample_stats(empty, s), Error);
  EXPECT_THROW(sample_stats_ref(empty, s), Error);
}

// NaN anywhere: every field NaN. +-Inf without NaN: exact min/max, every other field NaN. Positions
// cover the SIMD body and the remainder.
TEST(SampleStats, NonFiniteInputs) {
  for (const std::size_t n : {std::size_t{13}, std::size_t{127}, std::size_t{1001}}) {
    for (const std::size_t pos : {std::size_t{0}, n / 2, n - 1}) {
      SCOPED_TRACE("n=" + std::to_string(n) + " pos=" + std::to_string(pos));
      std::vector<float> x = laplace_like(n, kSeed, 0.0f, 1.0f);
      for (const bool simd : {false, true}) {
        SampleStats s;
        std::vector<float> y = x;
        y[pos] = kNaN;
        simd ? sample_stats(y, s) : sample_stats_ref(y, s);
        for (const double v : {s.min, s.max, s.mean, s.std, s.mean_abs, s.b, s.kurtosis})
          EXPECT_TRUE(std::isnan(v));
        y = x;
        y[pos] = kInf;
        y[(pos + 1) % n] = -kInf;
        simd ? sample_stats(y, s) : sample_stats_ref(y, s);
        EXPECT_EQ(s.min, -static_cast<double>(kInf));
        EXPECT_EQ(s.max, static_cast<double>(kInf));
        for (const double v : {s.mean, s.std, s.mean_abs, s.b, s.kurtosis}) EXPECT_TRUE(std::isnan(v));
        y = x;
        y[pos] = kInf;
        simd ? sample_stats(y, s) : sample_stats_ref(y, s);
        EXPECT_EQ(s.max, static_cast<double>(kInf));
        EXPECT_TRUE(std::isnan(s.mean));
      }
    }
  }
}

// Finite values whose float |x| partials overflow although their signed sum cancels: in one 32-lane
// stripe, 2e38 and -2e38 share a lane. The kernel must notice and fall back, matching the reference.
TEST(SampleStats, OverflowingAbsolutePartialsFallBack) {
  std::vector<float> x(64, 0.0f);
  x[0] = 2e38f;
  x[32] = -2e38f;
  SampleStats simd, ref, raw, act;
  sample_stats(x, simd);
  sample_stats_ref(x, ref);
  EXPECT_TRUE(std::isfinite(simd.mean_abs));
  EXPECT_DOUBLE_EQ(simd.mean_abs, 2.0 * static_cast<double>(2e38f) / 64);
  EXPECT_EQ(simd.mean_abs, ref.mean_abs);
  EXPECT_EQ(simd.b, ref.b);
  std::vector<float> y = x;
  sample_stats_clamped(y, -kInf, kInf, raw, act);
  EXPECT_EQ(raw.mean_abs, ref.mean_abs);
  EXPECT_EQ(act.mean_abs, ref.mean_abs);
}

// The fused kernel the collect observer uses: statistics, clamp in place, statistics again, bit for bit
// the same as the three separate steps (finite data, NaN/Inf data, odd sizes, ReLU and ReLU6).
TEST(SampleStats, ClampedEqualsSeparateSteps) {
  auto same = [](const SampleStats& a, const SampleStats& b) {
    for (const auto& [x, y] : {std::pair{a.min, b.min},
                               {a.max, b.max},
                               {a.mean, b.mean},
                               {a.std, b.std},
                               {a.mean_abs, b.mean_abs},
                               {a.b, b.b},
                               {a.kurtosis, b.kurtosis}}) {
      if (std::bit_cast<std::uint64_t>(x) != std::bit_cast<std::uint64_t>(y)) return false;
    }
    return true;
  };
  for (const std::size_t n : {std::size_t{1}, std::size_t{31}, std::size_t{2048}, std::size_t{100003}}) {
    for (const auto& [lo, hi] : {std::pair{0.0f, kInf}, {0.0f, 6.0f}, {-0.5f, 0.5f}}) {
      for (const int special : {0, 1, 2}) {
        SCOPED_TRACE("n=" + std::to_string(n) + " clamp [" + std::to_string(lo) + "," + std::to_string(hi) +
                     "] special=" + std::to_string(special));
        std::vector<float> x = laplace_like(n, kSeed + n, 0.5f, 3.0f);
        if (special == 1) x[n / 2] = kNaN;
        if (special == 2) x[n / 3] = -kInf;
        std::vector<float> want = x;
        SampleStats raw_want, act_want, raw, act;
        sample_stats(want, raw_want);
        for (float& v : want) {
          if (!std::isnan(v)) v = std::min(hi, std::max(lo, v));  // the Clip operator
        }
        sample_stats(want, act_want);
        sample_stats_clamped(x, lo, hi, raw, act);
        EXPECT_TRUE(same(raw, raw_want));
        EXPECT_TRUE(same(act, act_want));
        for (std::size_t i = 0; i < n; ++i) {
          ASSERT_EQ(std::bit_cast<std::uint32_t>(x[i]), std::bit_cast<std::uint32_t>(want[i])) << i;
        }
      }
    }
  }
  std::vector<float> x(4, 1.0f);
  SampleStats a, b;
  EXPECT_THROW(sample_stats_clamped(x, 1.0f, 0.0f, a, b), Error);
}

// Splitting a sample's segments over threads gives the same bits as one thread, for both kernels.
TEST(SampleStats, PoolGivesSameBits) {
  auto bits = [](const SampleStats& a) {
    return std::vector<std::uint64_t>{
        std::bit_cast<std::uint64_t>(a.min),      std::bit_cast<std::uint64_t>(a.max),
        std::bit_cast<std::uint64_t>(a.mean),     std::bit_cast<std::uint64_t>(a.std),
        std::bit_cast<std::uint64_t>(a.mean_abs), std::bit_cast<std::uint64_t>(a.b),
        std::bit_cast<std::uint64_t>(a.kurtosis)};
  };
  ThreadPool pool(3);
  for (const std::size_t n :
       {std::size_t{65535}, std::size_t{65536}, std::size_t{65537}, std::size_t{300001}}) {
    SCOPED_TRACE("n=" + std::to_string(n));
    const std::vector<float> x = laplace_like(n, kSeed + 7 * n, -0.25f, 2.0f);
    SampleStats serial, threaded;
    sample_stats(x, serial);
    sample_stats(x, threaded, &pool);
    EXPECT_EQ(bits(serial), bits(threaded));
    std::vector<float> y1 = x, y2 = x;
    SampleStats r1, a1, r2, a2;
    sample_stats_clamped(y1, 0.0f, 6.0f, r1, a1);
    sample_stats_clamped(y2, 0.0f, 6.0f, r2, a2, &pool);
    EXPECT_EQ(bits(r1), bits(r2));
    EXPECT_EQ(bits(a1), bits(a2));
    EXPECT_EQ(y1, y2);
    SampleStats ref;
    sample_stats_ref(x, ref);
    expect_close(ref, threaded);
  }
}

// Estimates on a large Laplace sample land on the distribution's values (b for Laplace, kurtosis 3).
TEST(SampleStats, LaplaceEstimates) {
  const std::vector<float> x = laplace_like(2'000'000, kSeed, 1.0f, 0.5f);
  SampleStats s;
  sample_stats(x, s);
  EXPECT_NEAR(s.mean, 1.0, 0.002);
  EXPECT_NEAR(s.b, 0.5, 0.002);
  EXPECT_NEAR(s.std, 0.5 * std::sqrt(2.0), 0.003);
  EXPECT_NEAR(s.kurtosis, 3.0, 0.1);  // excess kurtosis of the Laplace distribution
}

}  // namespace
}  // namespace aciq::quant
