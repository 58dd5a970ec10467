// The seed's calibrators (none, laplace, gauss, mix; bit-exact with the seed) plus minmax and the grid-exact
// analytical coefficients (laplace-grid, gauss-grid), all from the per-sample summaries.
#include <algorithm>

#include "aciq/calib.hpp"
#include "calib/methods/methods.hpp"

namespace aciq::calib::methods {

using quant::ClipMethod;

std::pair<double, double> observed_range(const PointStats& s) {
  return {s.column("min", Stat::kMin), s.column("max", Stat::kMax)};
}

WindowChoice magnitude_window(const PointStats& s, double t) {
  const auto [lo, hi] = observed_range(s);
  const double a = std::max(lo, -t), b = std::min(hi, t);
  return a <= b ? window_of_range(a, b) : window_of_range(lo, hi);
}

WindowChoice choose_none(const WindowRequest& r) {
  WindowChoice c = window_of_range(r.stats->column("mean", Stat::kMin), r.stats->column("mean", Stat::kMax));
  c.method = ClipMethod::kNone;
  return c;
}

WindowChoice choose_minmax(const WindowRequest& r) {
  const auto [lo, hi] = observed_range(*r.stats);
  WindowChoice c = window_of_range(lo, hi);
  c.method = ClipMethod::kMinMax;
  return c;
}

WindowChoice choose_analytical(const WindowRequest& r) {
  const PointStats& s = *r.stats;
  const ClipMethod asked = r.clip.method;
  const double mn = s.column("mean", Stat::kMin), mx = s.column("mean", Stat::kMax);
  // The grid methods keep the seed's statistics and window rule and change only the coefficient.
  const bool grid = asked == ClipMethod::kLaplaceGrid || asked == ClipMethod::kGaussGrid;
  auto coef = [&](quant::Distribution d) {
    if (grid) return quant::grid_alpha_coefficient(d, quant::ClipGrid::kSymmetric, r.bits);
    return r.seed_coefficients ? quant::seed_alpha_coefficient(d, r.bits)
                               : quant::optimal_alpha_coefficient(d, r.bits);
  };
  // A constant activation (b = 0, std = 0, min = max) has nothing to clip: alpha = 0 makes the
  // seed's window rule fall back to [min, max], and the quantizer leaves a zero-width range as is.
  const double b = s.column("mean", Stat::kB);
  const double sd = s.column("mean", Stat::kStd);
  const double alpha_laplace = coef(quant::Distribution::kLaplace) * b;
  const double alpha_gauss =
      mx > mn && s.sample_numel >= 2
          ? coef(quant::Distribution::kGauss) * quant::seed_gauss_sigma(mn, mx, s.sample_numel)
          : 0.0;
  ClipMethod method = asked;
  if (method == ClipMethod::kMix) {
    // The seed compares the analytical MSEs with the measured b and std (not the range estimate).
    if (b > 0 && sd > 0) {
      const double mse_l = quant::laplace_clip_mse(alpha_laplace, b, r.bits);
      const double mse_g = quant::gauss_clip_mse(alpha_gauss, sd, r.bits);
      method = mse_l < mse_g ? ClipMethod::kLaplace : ClipMethod::kGauss;
    } else {
      method = ClipMethod::kLaplace;
    }
  }
  const bool laplace = method == ClipMethod::kLaplace || method == ClipMethod::kLaplaceGrid;
  const double alpha = laplace ? alpha_laplace : alpha_gauss;
  WindowChoice c = window_of(quant::seed_window(alpha, mn, mx, s.column("mean", Stat::kMean)));
  c.method = method;
  c.alpha = alpha;
  if (alpha > 0.0)
    c.coefficient = coef(laplace ? quant::Distribution::kLaplace : quant::Distribution::kGauss);
  return c;
}

}  // namespace aciq::calib::methods
