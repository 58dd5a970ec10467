// Tests of the ACIQ clipping math: MSE formulas, optimal alpha, the seed's tables and window rule.
#include <gtest/gtest.h>

#include <boost/math/quadrature/exp_sinh.hpp>
#include <cmath>
#include <numbers>
#include <string>

#include "aciq/core.hpp"
#include "aciq/quant.hpp"

namespace aciq::quant {
namespace {

// alpha/b for M = 1..8 (W0(3 * 4^M)) and alpha/sigma, to 8 decimals.
constexpr double kLaplace[] = {1.86281686, 2.83068299, 3.89722946, 5.02864014,
                               6.20476633, 7.41312621, 8.64561998, 9.89675977};
constexpr double kGauss[] = {1.23990527, 1.71063517, 2.15159274, 2.55913646,
                             2.93620061, 3.28691422, 3.61511422, 3.92403549};

TEST(Clipping, OptimalLaplaceCoefficients) {
  for (int bits = 1; bits <= 8; ++bits) {
    EXPECT_NEAR(optimal_alpha_coefficient(Distribution::kLaplace, bits), kLaplace[bits - 1], 1e-7)
        << bits << " bits";
  }
}

TEST(Clipping, OptimalGaussCoefficients) {
  for (int bits = 1; bits <= 8; ++bits) {
    EXPECT_NEAR(optimal_alpha_coefficient(Distribution::kGauss, bits), kGauss[bits - 1], 1e-7)
        << bits << " bits";
  }
}

// The closed form solves c exp(c) = 3 * 4^M, the stationarity condition of laplace_clip_mse.
TEST(Clipping, LaplaceCoefficientSolvesLambertEquation) {
  for (int bits = kMinBits; bits <= kMaxBits; ++bits) {
    const double c = optimal_alpha_coefficient(Distribution::kLaplace, bits);
    const double target = 3.0 * std::ldexp(1.0, 2 * bits);
    EXPECT_NEAR(c * std::exp(c) / target, 1.0, 1e-13) << bits << " bits";
  }
}

// Both coefficients are minima of their MSE: the analytic derivative vanishes (relative to its largest
// term, since its terms cancel there) and a step to either side costs.
TEST(Clipping, CoefficientsMinimizeTheMse) {
  for (int bits = kMinBits; bits <= kMaxBits; ++bits) {
    const double noise_slope = 2.0 / (3.0 * std::ldexp(1.0, 2 * bits));  // d/dc of c^2 / (3 * 4^M), per c
    const double cl = optimal_alpha_coefficient(Distribution::kLaplace, bits);
    EXPECT_LT(std::abs(-2.0 * std::exp(-cl) + noise_slope * cl) / (noise_slope * cl), 1e-13) << bits;
    const double cg = optimal_alpha_coefficient(Distribution::kGauss, bits);
    const double gauss_slope = 2.0 * cg * std::erfc(cg / std::numbers::sqrt2) -
                               2.0 * std::sqrt(2.0 / std::numbers::pi) * std::exp(-0.5 * cg * cg) +
                               noise_slope * cg;
    EXPECT_LT(std::abs(gauss_slope) / (noise_slope * cg), 1e-10) << bits;
    for (const Distribution d : {Distribution::kLaplace, Distribution::kGauss}) {
      const double c = d == Distribution::kLaplace ? cl : cg;
      const double mse = clip_mse(d, c, 1.0, bits);
      EXPECT_GT(clip_mse(d, c * 1.01, 1.0, bits), mse) << distribution_name(d) << " " << bits;
      EXPECT_GT(clip_mse(d, c * 0.99, 1.0, bits), mse) << distribution_name(d) << " " << bits;
    }
  }
}

// The coefficient scales: alpha*(b) = c * b, so the MSE at (c b, b) is b^2 times the MSE at (c, 1).
TEST(Clipping, MseScalesWithTheSquareOfTheScale) {
  for (const Distribution d : {Distribution::kLaplace, Distribution::kGauss}) {
    const double c = optimal_alpha_coefficient(d, 4);
    EXPECT_NEAR(clip_mse(d, c * 2.5, 2.5, 4) / clip_mse(d, c, 1.0, 4), 6.25, 1e-12);
  }
}

// The clipping terms are the exact tail integrals 2 * int_alpha^inf (x - alpha)^2 p(x) dx.
TEST(Clipping, ClippingTermsMatchQuadrature) {
  boost::math::quadrature::exp_sinh<double> integrator;
  // 16 bits keeps the noise term small enough that the clipping term survives subtracting it; alpha/scale
  // stays <= 6 where the clipping term is still well above double rounding of the total.
  for (const double alpha : {0.5, 1.7, 3.0, 6.0}) {
    for (const double scale : {1.0, 2.0, 4.0}) {
      const int bits = 16;
      const double noise = alpha * alpha / (3.0 * std::ldexp(1.0, 2 * bits));
      const double laplace = 2.0 * integrator.integrate([&](double t) {
        const double x = alpha + t;
        return (x - alpha) * (x - alpha) * std::exp(-x / scale) / (2 * scale);
      });
      const double gauss = 2.0 * integrator.integrate([&](double t) {
        const double x = alpha + t;
        return (x - alpha) * (x - alpha) * std::exp(-0.5 * x * x / (scale * scale)) /
               (scale * std::sqrt(2 * std::numbers::pi));
      });
      EXPECT_NEAR((laplace_clip_mse(alpha, scale, bits) - noise) / laplace, 1.0, 1e-10)
          << alpha << " " << scale;
      EXPECT_NEAR((gauss_clip_mse(alpha, scale, bits) - noise) / gauss, 1.0, 1e-9) << alpha << " " << scale;
    }
  }
}

TEST(Clipping, SeedFormulaValues) {
  // The seed's expressions evaluated literally (int_quantizer.py mse_laplace / mse_gaus).
  const double a = 2.0, b = 0.7, s = 0.9;
  const int m = 3;
  EXPECT_DOUBLE_EQ(laplace_clip_mse(a, b, m),
                   2 * b * b * std::exp(-a / b) + a * a / (3 * std::pow(2, 2 * m)));
  const double seed_gauss = (s * s + a * a) * (1 - std::erf(a / (s * std::sqrt(2.0)))) -
                            std::sqrt(2.0 / std::numbers::pi) * a * s * std::exp(-0.5 * a * a / (s * s)) +
                            a * a / (3 * std::pow(2, 2 * m));
  EXPECT_NEAR(gauss_clip_mse(a, s, m), seed_gauss, 1e-15);
}

TEST(Clipping, SeedCoefficientTables) {
  EXPECT_EQ(seed_alpha_coefficient(Distribution::kLaplace, 4), 5.03);
  EXPECT_EQ(seed_alpha_coefficient(Distribution::kLaplace, 5), 6.2);
  EXPECT_EQ(seed_alpha_coefficient(Distribution::kGauss, 2), 1.71);
  EXPECT_EQ(seed_alpha_coefficient(Distribution::kGauss, 8), 3.92);
  for (const Distribution d : {Distribution::kLaplace, Distribution::kGauss}) {
    for (int bits = 2; bits <= 8; ++bits) {
      // Two decimals, mostly truncated: never more than 0.01 from the optimum.
      EXPECT_NEAR(seed_alpha_coefficient(d, bits), optimal_alpha_coefficient(d, bits), 0.01) << bits;
    }
    EXPECT_THROW(seed_alpha_coefficient(d, 1), Error);
    EXPECT_THROW(seed_alpha_coefficient(d, 9), Error);
  }
}

TEST(Clipping, BitsOutsideRangeThrow) {
  for (const int bits : {-1, 0, 17, 64}) {
    EXPECT_THROW(optimal_alpha_coefficient(Distribution::kLaplace, bits), Error) << bits;
    EXPECT_THROW(optimal_alpha_coefficient(Distribution::kGauss, bits), Error) << bits;
    EXPECT_THROW(laplace_clip_mse(1.0, 1.0, bits), Error) << bits;
    EXPECT_THROW(gauss_clip_mse(1.0, 1.0, bits), Error) << bits;
  }
  EXPECT_THROW(laplace_clip_mse(1.0, 0.0, 4), Error);
  EXPECT_THROW(gauss_clip_mse(1.0, -1.0, 4), Error);
  EXPECT_THROW(gauss_clip_mse(NAN, 1.0, 4), Error);
  try {
    optimal_alpha_coefficient(Distribution::kGauss, 17);
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("17"), std::string::npos) << e.what();
  }
}

TEST(Clipping, ParseAndNames) {
  EXPECT_EQ(parse_distribution("gaus"), Distribution::kGauss);
  EXPECT_EQ(parse_distribution("laplace"), Distribution::kLaplace);
  for (const Distribution d : {Distribution::kLaplace, Distribution::kGauss}) {
    EXPECT_EQ(parse_distribution(distribution_name(d)), d);
  }
  EXPECT_THROW(parse_distribution("mix"), Error);
  EXPECT_EQ(parse_weight_mode(weight_mode_name(WeightMode::kPerChannelSymmetric)),
            WeightMode::kPerChannelSymmetric);
  EXPECT_THROW(parse_weight_mode("per-channel"), Error);
}

TEST(Clipping, SeedGaussSigma) {
  // 0.5 * 0.35 * (1 + sqrt(pi ln 4)) from get_alpha_gaus.
  const double k = 0.5 * 0.35 * (1 + std::sqrt(std::numbers::pi * std::log(4.0)));
  EXPECT_NEAR(k, 0.5402084, 1e-7);
  const std::int64_t n = 64 * 56 * 56;
  EXPECT_DOUBLE_EQ(seed_gauss_sigma(-2.0, 6.0, n),
                   8.0 * k / std::sqrt(2.0 * std::log(static_cast<double>(n))));
  EXPECT_EQ(seed_gauss_sigma(1.0, 1.0, n), 0.0);
  EXPECT_THROW(seed_gauss_sigma(0.0, 1.0, 1), Error);
  EXPECT_THROW(seed_gauss_sigma(1.0, 0.0, 100), Error);
  EXPECT_THROW(seed_gauss_sigma(0.0, INFINITY, 100), Error);
}

TEST(Clipping, SeedWindow) {
  // alpha at or beyond half the range, or not positive: the whole [min, max].
  for (const double alpha : {0.0, -1.0, 2.0, 5.0}) {
    const QuantWindow w = seed_window(alpha, -1.0, 3.0, 0.5);
    EXPECT_EQ(w.offset, -1.0);
    EXPECT_EQ(w.delta, 4.0);
  }
  // Centered on the mean.
  QuantWindow w = seed_window(1.0, -4.0, 4.0, 0.5);
  EXPECT_EQ(w.offset, -0.5);
  EXPECT_EQ(w.delta, 2.0);
  // Floored at min: the window then spans [min, min + 2 alpha].
  w = seed_window(1.0, -4.0, 4.0, -3.5);
  EXPECT_EQ(w.offset, -4.0);
  EXPECT_EQ(w.delta, 2.0);
  // Not capped at max: the top may exceed max (the seed shifts only the bottom).
  w = seed_window(1.0, -4.0, 4.0, 3.5);
  EXPECT_EQ(w.offset, 2.5);
  EXPECT_EQ(w.offset + w.delta, 4.5);
  const auto [lo, hi] = clipped_range(1.0, -4.0, 4.0, 3.5);
  EXPECT_EQ(lo, 2.5);
  EXPECT_EQ(hi, 4.5);
  EXPECT_THROW(seed_window(1.0, 1.0, -1.0, 0.0), Error);
  EXPECT_THROW(seed_window(NAN, -1.0, 1.0, 0.0), Error);
}

TEST(Clipping, AlphaTable) {
  const std::string t = alpha_table(Distribution::kLaplace, 1, 8, false);
  EXPECT_NE(t.find("1.86281686"), std::string::npos) << t;
  EXPECT_NE(t.find("9.89675977"), std::string::npos) << t;
  int lines = 0;
  for (const char c : t) lines += c == '\n';
  EXPECT_EQ(lines, 2 + 8) << t;
  const std::string g = alpha_table(Distribution::kGauss, 2, 8, true);
  EXPECT_NE(g.find("3.92000000"), std::string::npos) << g;
  EXPECT_THROW(alpha_table(Distribution::kGauss, 1, 8, true), Error);
  EXPECT_THROW(alpha_table(Distribution::kGauss, 5, 4, false), Error);
  EXPECT_THROW(alpha_table(Distribution::kGauss, 0, 4, false), Error);
}

}  // namespace
}  // namespace aciq::quant
