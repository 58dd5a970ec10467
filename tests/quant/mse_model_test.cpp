// Checks the ACIQ MSE model against clip+quantize measured with the real kernel on synthetic data.
//
// Three quantities per (distribution, bits), all at the optimal alpha with b = sigma = 1:
//   analytical : laplace_clip_mse / gauss_clip_mse (the paper's model)
//   exact      : the true expected MSE of a given quantizer, integrated in closed form bin by bin
//   measured   : the mean squared error of fake_quant on 4e6 stratified samples
// docs/clipping.md tabulates all three; the model is an approximation that is only tight at >= 4 bits.
#include <gtest/gtest.h>

#include <boost/math/special_functions/erf.hpp>
#include <cmath>
#include <cstdint>
#include <numbers>
#include <random>
#include <vector>

#include "aciq/quant.hpp"

namespace aciq::quant {
namespace {

constexpr std::uint64_t kSeed = 20190513;  // fixed; printed with every failure via SCOPED_TRACE
// 4e6 rather than 1e6: at 8 bits the Laplace clipping term comes from the few samples of the outermost
// stratum, whose spread gives ~1.8% standard error at 1e6 samples and ~0.45% at 4e6.
constexpr std::size_t kSamples = 4'000'000;

// How values outside [-alpha, alpha] are reconstructed.
enum class Grid : std::uint8_t {
  kMidrise,  // the kernel with midrise_params: clipped values land on the outer bin midpoint alpha - delta/2
  kClipModel,  // the model's own assumption: clipped values stay at +-alpha, in-range values on bin midpoints
};

// N samples with one sample per probability stratum [i/N, (i+1)/N): the empirical distribution follows
// the true one closely, so the measured MSE is a low-variance estimate (plain i.i.d. sampling of 1e6
// values leaves a 3-7% standard error at 8 bits, where a few tail samples dominate the clipping term).
std::vector<float> stratified_samples(Distribution d, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> jitter(0.0, 1.0);
  std::vector<float> x(kSamples);
  const double n = static_cast<double>(kSamples);
  for (std::size_t i = 0; i < kSamples; ++i) {
    const double j = jitter(rng);
    const double u = (static_cast<double>(i) + j) / n;
    const double upper = (n - static_cast<double>(i) - j) / n;  // 1 - u without cancellation
    double v;
    if (d == Distribution::kLaplace) {
      v = u < 0.5 ? std::log(2.0 * u) : -std::log(2.0 * upper);
    } else {
      v = u < 0.5 ? -std::numbers::sqrt2 * boost::math::erfc_inv(2.0 * u)
                  : std::numbers::sqrt2 * boost::math::erfc_inv(2.0 * upper);
    }
    x[i] = static_cast<float>(v);
  }
  return x;
}

double measured_mse(const std::vector<float>& x, double alpha, int bits, Grid grid) {
  std::vector<float> q = x;
  fake_quant(q, midrise_params(static_cast<float>(alpha), bits));
  const float a = static_cast<float>(alpha);
  double sum = 0.0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    if (grid == Grid::kClipModel && std::abs(x[i]) >= a) q[i] = std::copysign(a, x[i]);
    const double e = static_cast<double>(x[i]) - q[i];
    sum += e * e;
  }
  return sum / static_cast<double>(x.size());
}

// E[(x - c)^2 ; l <= x < h] for the unit distribution (b = 1 or sigma = 1); h = INFINITY allowed.
double bin_error(Distribution d, double l, double h, double c) {
  if (d == Distribution::kLaplace) {
    // 0 <= l: density e^{-x}/2; antiderivative of (x - c)^2 e^{-x} is -e^{-x}((x-c)^2 + 2(x-c) + 2).
    auto g = [c](double t) {
      if (std::isinf(t)) return 0.0;
      const double u = t - c;
      return std::exp(-t) * (u * u + 2 * u + 2);
    };
    return 0.5 * (g(l) - g(h));
  }
  const double inv_sqrt_2pi = 1.0 / std::sqrt(2.0 * std::numbers::pi);
  auto phi = [&](double t) { return std::isinf(t) ? 0.0 : inv_sqrt_2pi * std::exp(-0.5 * t * t); };
  auto tphi = [&](double t) { return std::isinf(t) ? 0.0 : t * phi(t); };
  const double mass = 0.5 * (std::erfc(l / std::numbers::sqrt2) - std::erfc(h / std::numbers::sqrt2));
  return (1 + c * c) * mass - (tphi(h) - tphi(l)) + 2 * c * (phi(h) - phi(l));
}

// The quantizer is odd-symmetric, so integrate x >= 0 and double.
double exact_mse(Distribution d, double alpha, int bits, Grid grid) {
  const int half_bins = 1 << (bits - 1);
  const double delta = 2.0 * alpha / (2.0 * half_bins);
  double sum = 0.0;
  for (int k = 0; k < half_bins; ++k) sum += bin_error(d, k * delta, (k + 1) * delta, (k + 0.5) * delta);
  sum += bin_error(d, alpha, INFINITY, grid == Grid::kMidrise ? alpha - delta / 2 : alpha);
  return 2.0 * sum;
}

struct Case {
  Distribution dist;
  int bits;
};

std::string trace(Distribution d, int bits) {
  return std::string(distribution_name(d)) + " bits=" + std::to_string(bits) +
         " seed=" + std::to_string(kSeed) + " samples=" + std::to_string(kSamples);
}

// The kernel and the measurement are right: fake_quant's MSE equals the quantizer's exact expected MSE.
TEST(MseModel, KernelMatchesExactExpectation) {
  for (const Distribution d : {Distribution::kLaplace, Distribution::kGauss}) {
    const std::vector<float> x = stratified_samples(d, kSeed);
    for (const int bits : {2, 3, 4, 8}) {
      SCOPED_TRACE(trace(d, bits));
      const double alpha = optimal_alpha_coefficient(d, bits);
      for (const Grid g : {Grid::kMidrise, Grid::kClipModel}) {
        const double exact = exact_mse(d, alpha, bits, g), measured = measured_mse(x, alpha, bits, g);
        EXPECT_NEAR(measured / exact, 1.0, 0.02) << "measured " << measured << " exact " << exact;
      }
    }
  }
}

// The model holds within 2% for the real midrise kernel once the bins are fine (7-8 bits).
TEST(MseModel, AnalyticalMatchesMeasuredKernelAtHighBits) {
  for (const Distribution d : {Distribution::kLaplace, Distribution::kGauss}) {
    const std::vector<float> x = stratified_samples(d, kSeed);
    for (const int bits : {7, 8}) {
      SCOPED_TRACE(trace(d, bits));
      const double alpha = optimal_alpha_coefficient(d, bits);
      const double analytical = clip_mse(d, alpha, 1.0, bits),
                   measured = measured_mse(x, alpha, bits, Grid::kMidrise);
      EXPECT_NEAR(measured / analytical, 1.0, 0.02)
          << "measured " << measured << " analytical " << analytical;
    }
  }
}

// At 2-4 bits the model underestimates the real 2^M-level quantizer (+10% to +47%): clipped values land
// on the outer bin midpoint, not on alpha, which the model's clipping term ignores. The gap is a property
// of the model, so it is pinned here against the exact integral rather than hidden by a wide tolerance.
TEST(MseModel, AnalyticalUnderestimatesMidriseKernelAtLowBits) {
  for (const Distribution d : {Distribution::kLaplace, Distribution::kGauss}) {
    const std::vector<float> x = stratified_samples(d, kSeed);
    for (const int bits : {2, 3, 4}) {
      SCOPED_TRACE(trace(d, bits));
      const double alpha = optimal_alpha_coefficient(d, bits);
      const double analytical = clip_mse(d, alpha, 1.0, bits);
      const double measured = measured_mse(x, alpha, bits, Grid::kMidrise);
      const double exact = exact_mse(d, alpha, bits, Grid::kMidrise);
      EXPECT_GT(measured / analytical, 1.05);
      EXPECT_NEAR(measured / analytical, exact / analytical, 0.02 * exact / analytical);
    }
  }
}

// With the model's own clipping assumption (clipped values exactly at +-alpha) the formula is within 2%
// at every width for Laplace and from 4 bits for Gauss; at 2-3 bits the uniform-noise term overestimates
// Gaussian data (-6.6% and -2.5%, see docs/clipping.md), pinned against the exact integral.
TEST(MseModel, AnalyticalMatchesClipModelQuantizer) {
  for (const Distribution d : {Distribution::kLaplace, Distribution::kGauss}) {
    const std::vector<float> x = stratified_samples(d, kSeed);
    for (const int bits : {2, 3, 4, 8}) {
      SCOPED_TRACE(trace(d, bits));
      const double alpha = optimal_alpha_coefficient(d, bits);
      const double analytical = clip_mse(d, alpha, 1.0, bits);
      const double measured = measured_mse(x, alpha, bits, Grid::kClipModel);
      if (d == Distribution::kGauss && bits < 4) {
        const double exact = exact_mse(d, alpha, bits, Grid::kClipModel);
        EXPECT_LT(measured / analytical, 0.98);
        EXPECT_NEAR(measured / analytical, exact / analytical, 0.02 * exact / analytical);
      } else {
        EXPECT_NEAR(measured / analytical, 1.0, 0.02)
            << "measured " << measured << " analytical " << analytical;
      }
    }
  }
}

}  // namespace
}  // namespace aciq::quant
