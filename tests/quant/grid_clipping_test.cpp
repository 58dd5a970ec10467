// The clipping optimum for the grid that runs: exact MSE against Monte Carlo, and the minimizer.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "aciq/core.hpp"
#include "aciq/quant.hpp"

namespace aciq::quant {
namespace {

// The grid written out independently of the library: levels lo + k * step, nearest level, clamped.
double quantize(double x, ClipGrid grid, double alpha, int bits) {
  const double steps = std::ldexp(1.0, bits) - 1.0;
  const double lo = grid == ClipGrid::kSymmetric ? -alpha : 0.0;
  const double step = (alpha - lo) / steps;
  const double k = std::clamp(std::nearbyint((x - lo) / step), 0.0, steps);
  return lo + k * step;
}

// Monte-Carlo MSE and its standard error over n draws with a fixed seed.
std::pair<double, double> monte_carlo(Distribution d, ClipGrid grid, double alpha, double scale, int bits,
                                      std::uint64_t seed, int n) {
  std::mt19937_64 rng(seed);
  std::exponential_distribution<double> expo(1.0 / scale);
  std::normal_distribution<double> normal(0.0, scale);
  std::bernoulli_distribution sign(0.5);
  double sum = 0.0, sum2 = 0.0;
  for (int i = 0; i < n; ++i) {
    double x = d == Distribution::kLaplace ? (sign(rng) ? 1.0 : -1.0) * expo(rng) : normal(rng);
    if (grid == ClipGrid::kHalf) x = std::max(x, 0.0);
    const double e = x - quantize(x, grid, alpha, bits);
    sum += e * e;
    sum2 += e * e * e * e;
  }
  const double mean = sum / n;
  return {mean, std::sqrt((sum2 / n - mean * mean) / n)};
}

TEST(GridClipping, ExactMseMatchesMonteCarlo) {
  std::uint64_t seed = 20261202;
  for (const auto d : {Distribution::kLaplace, Distribution::kGauss}) {
    for (const auto grid : {ClipGrid::kSymmetric, ClipGrid::kHalf}) {
      for (const int bits : {1, 2, 3, 4, 8}) {
        for (const double c : {0.7, 2.0, 4.5}) {
          const double scale = 1.7;
          const auto [mc, se] = monte_carlo(d, grid, c * scale, scale, bits, ++seed, 1'000'000);
          const double exact = grid_clip_mse(d, grid, c * scale, scale, bits);
          EXPECT_NEAR(exact, mc, 4.0 * se + 1e-12) << "seed " << seed << " dist " << distribution_name(d)
                                                   << " bits " << bits << " alpha/scale " << c;
        }
      }
    }
  }
}

TEST(GridClipping, CoefficientIsTheMinimizer) {
  for (const auto d : {Distribution::kLaplace, Distribution::kGauss}) {
    for (const auto grid : {ClipGrid::kSymmetric, ClipGrid::kHalf}) {
      for (int bits = 1; bits <= 8; ++bits) {
        const double c = grid_alpha_coefficient(d, grid, bits);
        const double at = grid_clip_mse(d, grid, c, 1.0, bits);
        EXPECT_LE(at, grid_clip_mse(d, grid, c * (1 + 1e-4), 1.0, bits)) << bits;
        EXPECT_LE(at, grid_clip_mse(d, grid, c * (1 - 1e-4), 1.0, bits)) << bits;
        for (int i = 1; i <= 4000; ++i) {  // nothing lower anywhere in (0, 20]
          ASSERT_GE(grid_clip_mse(d, grid, 20.0 * i / 4000, 1.0, bits), at * (1 - 1e-9))
              << distribution_name(d) << " bits " << bits << " alpha " << 20.0 * i / 4000;
        }
      }
    }
  }
}

TEST(GridClipping, BeatsTheMidriseCoefficientOnTheRealGrid) {
  for (const auto d : {Distribution::kLaplace, Distribution::kGauss}) {
    for (const int bits : {2, 3}) {
      const double grid_c = grid_alpha_coefficient(d, ClipGrid::kSymmetric, bits);
      const double seed_c = optimal_alpha_coefficient(d, bits);
      const double ours = grid_clip_mse(d, ClipGrid::kSymmetric, grid_c, 1.0, bits);
      const double seeds = grid_clip_mse(d, ClipGrid::kSymmetric, seed_c, 1.0, bits);
      EXPECT_LT(ours, seeds) << distribution_name(d) << " bits " << bits << ": " << grid_c << " vs "
                             << seed_c;
      EXPECT_LT(grid_c, seed_c);  // fewer steps than bins: clipping harder pays less
    }
  }
}

TEST(GridClipping, LaplaceOneBitIsTheMeanAbsoluteValue) {
  // Levels +-alpha: the error is E(|X| - alpha)^2, minimal at alpha = E|X| = b (closed form).
  EXPECT_NEAR(grid_alpha_coefficient(Distribution::kLaplace, ClipGrid::kSymmetric, 1), 1.0, 1e-8);
  // and for N(0, 1) at E|X| = sqrt(2 / pi).
  EXPECT_NEAR(grid_alpha_coefficient(Distribution::kGauss, ClipGrid::kSymmetric, 1), std::sqrt(2.0 / M_PI),
              1e-8);
}

TEST(GridClipping, RejectsBadArguments) {
  EXPECT_THROW(grid_clip_mse(Distribution::kLaplace, ClipGrid::kSymmetric, 0.0, 1.0, 4), Error);
  EXPECT_THROW(grid_clip_mse(Distribution::kLaplace, ClipGrid::kSymmetric, 1.0, -1.0, 4), Error);
  EXPECT_THROW(grid_alpha_coefficient(Distribution::kGauss, ClipGrid::kHalf, 0), Error);
  EXPECT_THROW(grid_alpha_coefficient(Distribution::kGauss, ClipGrid::kHalf, 17), Error);
}

}  // namespace
}  // namespace aciq::quant
