// ACIQ clipping math: the MSE models, their optimal alpha, the seed's tables and its alpha -> window rule.
#include <fmt/format.h>

#include <boost/math/special_functions/lambert_w.hpp>
#include <boost/math/tools/roots.hpp>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numbers>
#include <string>

#include "aciq/core.hpp"
#include "aciq/quant.hpp"
#include "quant/internal.hpp"

namespace aciq::quant {

namespace {

// alpha^2 / (3 * 4^M): uniform noise delta^2 / 12 with delta = 2 alpha / 2^M.
double quantization_noise(double alpha, int bits) {
  return alpha * alpha / (3.0 * std::ldexp(1.0, 2 * bits));
}

void check_scale(double scale, const char* what, const char* fn) {
  if (!(scale > 0.0) || !std::isfinite(scale))
    fail(fmt::format("{}: {} must be positive and finite, got {}", fn, what, scale));
}

void check_alpha(double alpha, const char* fn) {
  if (!(alpha >= 0.0) || !std::isfinite(alpha))
    fail(fmt::format("{}: alpha must be >= 0 and finite, got {}", fn, alpha));
}

// d/dalpha of gauss_clip_mse at sigma = 1, halved:
//   alpha erfc(alpha/sqrt2) - sqrt(2/pi) exp(-alpha^2/2) + alpha / (3 * 4^M).
// Negative at 0 (-sqrt(2/pi)), positive for large alpha, single sign change (the MSE is convex there).
double gauss_mse_slope(double alpha, int bits) {
  using std::numbers::pi;
  return alpha * std::erfc(alpha / std::numbers::sqrt2) -
         std::sqrt(2.0 / pi) * std::exp(-0.5 * alpha * alpha) + alpha / (3.0 * std::ldexp(1.0, 2 * bits));
}

double gauss_optimal_alpha(int bits) {
  double lo = 0.0, hi = 1.0;
  // The root grows like sqrt(2 ln 4^M): doubling reaches a positive slope within a few steps.
  while (gauss_mse_slope(hi, bits) <= 0.0) {
    lo = hi;
    hi *= 2.0;
    if (hi > 1e3) fail(fmt::format("optimal_alpha_coefficient: no Gaussian root bracket for {} bits", bits));
  }
  std::uintmax_t iterations = 200;
  // 50 bits of agreement between the bracket ends: ~1e-15 relative, well under the 1e-9 asked for.
  const auto [a, b] =
      boost::math::tools::toms748_solve([bits](double x) { return gauss_mse_slope(x, bits); }, lo, hi,
                                        boost::math::tools::eps_tolerance<double>(50), iterations);
  return 0.5 * (a + b);
}

}  // namespace

void check_bits(int bits, const char* fn) {
  if (bits < kMinBits || bits > kMaxBits) {
    fail(fmt::format("{}: bit width {} is outside [{}, {}]", fn, bits, kMinBits, kMaxBits));
  }
}

Distribution parse_distribution(std::string_view text) {
  if (text == "laplace") return Distribution::kLaplace;
  if (text == "gaus" || text == "gauss") return Distribution::kGauss;
  fail(fmt::format("unknown distribution '{}' (expected laplace, gaus or gauss)", text));
}

std::string_view distribution_name(Distribution d) {
  switch (d) {
    case Distribution::kLaplace: return "laplace";
    case Distribution::kGauss: return "gauss";
  }
  return "?";
}

double clipping_error(Distribution d, double alpha, double scale) {
  using std::numbers::pi;
  if (d == Distribution::kLaplace) return 2.0 * scale * scale * std::exp(-alpha / scale);
  // erfc instead of the seed's 1 - erf: the same value, without cancellation for large alpha / sigma.
  return (scale * scale + alpha * alpha) * std::erfc(alpha / (scale * std::numbers::sqrt2)) -
         std::sqrt(2.0 / pi) * alpha * scale * std::exp(-0.5 * alpha * alpha / (scale * scale));
}

double laplace_clip_mse(double alpha, double b, int bits) {
  check_bits(bits, "laplace_clip_mse");
  check_scale(b, "b", "laplace_clip_mse");
  check_alpha(alpha, "laplace_clip_mse");
  return clipping_error(Distribution::kLaplace, alpha, b) + quantization_noise(alpha, bits);
}

double gauss_clip_mse(double alpha, double sigma, int bits) {
  check_bits(bits, "gauss_clip_mse");
  check_scale(sigma, "sigma", "gauss_clip_mse");
  check_alpha(alpha, "gauss_clip_mse");
  return clipping_error(Distribution::kGauss, alpha, sigma) + quantization_noise(alpha, bits);
}

double clip_mse(Distribution d, double alpha, double scale, int bits) {
  return d == Distribution::kLaplace ? laplace_clip_mse(alpha, scale, bits)
                                     : gauss_clip_mse(alpha, scale, bits);
}

double optimal_alpha_coefficient(Distribution d, int bits) {
  check_bits(bits, "optimal_alpha_coefficient");
  if (d == Distribution::kLaplace) {
    // -2 b exp(-alpha/b) + 2 alpha / (3 * 4^M) = 0  <=>  (alpha/b) exp(alpha/b) = 3 * 4^M.
    return boost::math::lambert_w0(3.0 * std::ldexp(1.0, 2 * bits));
  }
  return gauss_optimal_alpha(bits);
}

double seed_alpha_coefficient(Distribution d, int bits) {
  // int_quantizer.py's dictionaries, index = bits - 2.
  static constexpr double kLaplace[] = {2.83, 3.89, 5.03, 6.2, 7.41, 8.64, 9.89};
  static constexpr double kGauss[] = {1.71, 2.15, 2.55, 2.93, 3.28, 3.61, 3.92};
  if (bits < 2 || bits > 8) {
    fail(fmt::format("seed_alpha_coefficient: the seed has {} coefficients for 2..8 bits only, not {}",
                     distribution_name(d), bits));
  }
  return d == Distribution::kLaplace ? kLaplace[bits - 2] : kGauss[bits - 2];
}

double seed_gauss_sigma(double mean_min, double mean_max, std::int64_t n) {
  using std::numbers::pi;
  if (!std::isfinite(mean_min) || !std::isfinite(mean_max) || mean_max < mean_min) {
    fail(fmt::format("seed_gauss_sigma: invalid range [{}, {}]", mean_min, mean_max));
  }
  if (n < 2) fail(fmt::format("seed_gauss_sigma: needs at least 2 elements per sample, got {}", n));
  // The expected range of n Gaussian samples grows like sigma * sqrt(2 ln n); the seed's constant
  // 0.5 * 0.35 * (1 + sqrt(pi ln 4)) ~= 0.540208 calibrates that relation.
  const double gaussian_const = (0.5 * 0.35) * (1.0 + std::sqrt(pi * std::log(4.0)));
  return (mean_max - mean_min) * gaussian_const / std::sqrt(2.0 * std::log(static_cast<double>(n)));
}

QuantWindow seed_window(double alpha, double min, double max, double mean) {
  if (!std::isfinite(alpha) || !std::isfinite(min) || !std::isfinite(max) || !std::isfinite(mean)) {
    fail(fmt::format("seed_window: non-finite input (alpha {}, min {}, max {}, mean {})", alpha, min, max,
                     mean));
  }
  if (max < min) fail(fmt::format("seed_window: max {} is below min {}", max, min));
  const double range = max - min;
  if (alpha <= 0.0 || alpha >= range / 2.0) return {min, range};
  const double delta = 2.0 * alpha;
  return {std::max(min, mean - delta / 2.0), delta};
}

std::pair<double, double> clipped_range(double alpha, double min, double max, double mean) {
  const QuantWindow w = seed_window(alpha, min, max, mean);
  return {w.offset, w.offset + w.delta};
}

std::string alpha_table(Distribution d, int bit_lo, int bit_hi, bool seed_coefficients) {
  if (bit_lo > bit_hi) fail(fmt::format("alpha_table: empty bit range {}-{}", bit_lo, bit_hi));
  check_bits(bit_lo, "alpha_table");
  check_bits(bit_hi, "alpha_table");
  const bool laplace = d == Distribution::kLaplace;
  const char* unit = laplace ? "b" : "sigma";
  std::string out =
      fmt::format("# {} clipping, {} coefficients: alpha = c * {}; MSE at {} = 1\n", distribution_name(d),
                  seed_coefficients ? "seed (int_quantizer.py)" : "optimal", unit, unit);
  out += fmt::format("{:>4}  {:>12}  {:>14}\n", "bits", fmt::format("alpha/{}", unit), "mse");
  for (int bits = bit_lo; bits <= bit_hi; ++bits) {
    const double c = seed_coefficients ? seed_alpha_coefficient(d, bits) : optimal_alpha_coefficient(d, bits);
    out += fmt::format("{:>4}  {:>12.8f}  {:>14.8e}\n", bits, c, clip_mse(d, c, 1.0, bits));
  }
  return out;
}

}  // namespace aciq::quant
