// The clipping optimum for a uniform grid of 2^M levels spanning the window (docs/clipping.md).
#include <fmt/format.h>

#include <array>
#include <cmath>
#include <mutex>
#include <numbers>

#include "aciq/core.hpp"
#include "aciq/quant.hpp"
#include "quant/internal.hpp"

namespace aciq::quant {

namespace {

// Density at x >= 0 of Laplace(0, 1) or N(0, 1).
double density(Distribution d, double x) {
  if (d == Distribution::kLaplace) return 0.5 * std::exp(-x);
  return std::exp(-0.5 * x * x) / std::sqrt(2.0 * std::numbers::pi);
}

// One clipped tail at scale 1: integral over x > alpha of (x - alpha)^2 p(x) dx, half the seed's
// two-sided clipping term.
double tail(Distribution d, double alpha) { return 0.5 * clipping_error(d, alpha, 1.0); }

// 8-point Gauss-Legendre nodes and weights on [-1, 1]: exact for polynomials of degree 15, so on a piece
// no wider than a quarter of the scale the smooth integrand (x - level)^2 p(x) is integrated to ~1e-14.
constexpr std::array<double, 4> kNode{0.1834346424956498, 0.5255324099163290, 0.7966664774136267,
                                      0.9602898564975363};
constexpr std::array<double, 4> kWeight{0.3626837833783620, 0.3137066458778873, 0.2223810344533745,
                                        0.1012285362903763};

// Integral over [a, b] of (x - level)^2 p(x) dx, split into pieces of width <= 0.25.
double piece(Distribution d, double a, double b, double level) {
  const int parts = std::max(1, static_cast<int>(std::ceil((b - a) / 0.25)));
  const double w = (b - a) / parts;
  double sum = 0.0;
  for (int k = 0; k < parts; ++k) {
    const double mid = a + (k + 0.5) * w, half = 0.5 * w;
    for (std::size_t i = 0; i < kNode.size(); ++i) {
      for (const double sgn : {-1.0, 1.0}) {
        const double x = mid + sgn * half * kNode[i];
        sum += kWeight[i] * half * (x - level) * (x - level) * density(d, x);
      }
    }
  }
  return sum;
}

// The MSE at scale 1. Symmetric grid: levels -alpha + k delta (k = 0..K, K = 2^M - 1 odd), so the
// positive side holds the levels (j + 1/2) delta with thresholds at j delta, 0 included; by symmetry the
// MSE is twice the positive side. Half grid: levels k alpha / K from 0; the point mass at 0 costs nothing.
double unit_mse(Distribution d, ClipGrid grid, double alpha, int bits) {
  const double steps = std::ldexp(1.0, bits) - 1.0;
  double inner = 0.0;
  if (grid == ClipGrid::kSymmetric) {
    const double delta = 2.0 * alpha / steps;
    const auto cells = static_cast<std::int64_t>(std::ldexp(1.0, bits - 1));  // positive levels
    for (std::int64_t j = 0; j < cells; ++j) {
      const double level = (static_cast<double>(j) + 0.5) * delta;
      const double a = static_cast<double>(j) * delta;
      const double b = std::min(alpha, a + delta);
      inner += piece(d, a, b, level);
    }
    return 2.0 * (inner + tail(d, alpha));
  }
  const double delta = alpha / steps;
  const auto levels = static_cast<std::int64_t>(steps);
  for (std::int64_t k = 0; k <= levels; ++k) {
    const double level = static_cast<double>(k) * delta;
    const double a = std::max(0.0, level - 0.5 * delta), b = std::min(alpha, level + 0.5 * delta);
    if (b > a) inner += piece(d, a, b, level);
  }
  return inner + tail(d, alpha);
}

double minimize(Distribution d, ClipGrid grid, int bits) {
  // The optimum lies below the midrise model's (fewer steps, so less room for clipping to pay) and above
  // a fifth of it at every width; scan that bracket, then refine the best cell by golden section
  // (the MSE is unimodal near its minimum; the scan guards against the kinks at 1-2 bits).
  const double ref = optimal_alpha_coefficient(d, bits);
  const double lo = 0.2 * ref, hi = 1.5 * ref;
  constexpr int kScan = 240;
  int best = 0;
  double best_mse = INFINITY;
  for (int i = 0; i <= kScan; ++i) {
    const double a = lo + (hi - lo) * i / kScan;
    const double m = unit_mse(d, grid, a, bits);
    if (m < best_mse) {
      best_mse = m;
      best = i;
    }
  }
  if (best == 0 || best == kScan) {
    fail(fmt::format("grid_alpha_coefficient: no interior minimum for {} bits (internal)", bits));
  }
  const double step = (hi - lo) / kScan;
  double a = lo + step * std::max(0, best - 1), b = lo + step * std::min(kScan, best + 1);
  const double phi = 0.5 * (std::sqrt(5.0) - 1.0);
  double x1 = b - phi * (b - a), x2 = a + phi * (b - a);
  double f1 = unit_mse(d, grid, x1, bits), f2 = unit_mse(d, grid, x2, bits);
  while (b - a > 1e-10 * b) {
    if (f1 < f2) {
      b = x2, x2 = x1, f2 = f1;
      x1 = b - phi * (b - a);
      f1 = unit_mse(d, grid, x1, bits);
    } else {
      a = x1, x1 = x2, f1 = f2;
      x2 = a + phi * (b - a);
      f2 = unit_mse(d, grid, x2, bits);
    }
  }
  return 0.5 * (a + b);
}

}  // namespace

double grid_clip_mse(Distribution d, ClipGrid grid, double alpha, double scale, int bits) {
  check_bits(bits, "grid_clip_mse");
  if (!(scale > 0.0) || !std::isfinite(scale))
    fail(fmt::format("grid_clip_mse: scale must be positive and finite, got {}", scale));
  if (!(alpha > 0.0) || !std::isfinite(alpha))
    fail(fmt::format("grid_clip_mse: alpha must be positive and finite, got {}", alpha));
  return scale * scale * unit_mse(d, grid, alpha / scale, bits);
}

double grid_alpha_coefficient(Distribution d, ClipGrid grid, int bits) {
  check_bits(bits, "grid_alpha_coefficient");
  // Computed once per (distribution, grid, width) on first use; the table never changes afterwards.
  struct Entry {
    std::once_flag once;
    double value = 0.0;
  };
  static std::array<Entry, 2 * 2 * (kMaxBits + 1)> table;
  Entry& e = table[(static_cast<std::size_t>(d) * 2 + static_cast<std::size_t>(grid)) * (kMaxBits + 1) +
                   static_cast<std::size_t>(bits)];
  std::call_once(e.once, [&] { e.value = minimize(d, grid, bits); });
  return e.value;
}

}  // namespace aciq::quant
