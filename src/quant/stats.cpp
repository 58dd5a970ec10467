// Per-sample statistics (the seed's statistic_manager.py columns): the plain two-pass scalar reference.
#include <algorithm>
#include <cmath>
#include <limits>
#include <span>

#include "aciq/core.hpp"
#include "aciq/quant.hpp"
#include "quant/internal.hpp"

namespace aciq::quant {

void non_finite_stats(std::span<const float> x, SampleStats& out) {
  constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
  out = SampleStats{kNaN, kNaN, kNaN, kNaN, kNaN, kNaN, kNaN};
  if (std::any_of(x.begin(), x.end(), [](float v) { return std::isnan(v); })) return;
  // Only infinities: the extremes are still meaningful (and tell the user which way it overflowed).
  const auto [lo, hi] = std::minmax_element(x.begin(), x.end());
  out.min = static_cast<double>(*lo);
  out.max = static_cast<double>(*hi);
}

void sample_stats_ref(std::span<const float> x, SampleStats& out) {
  if (x.empty()) fail("sample_stats: empty sample");
  const double n = static_cast<double>(x.size());
  float lo = x[0], hi = x[0];
  double sum = 0.0, sum_abs = 0.0;
  for (const float v : x) {
    lo = std::min(lo, v);
    hi = std::max(hi, v);
    sum += v;
    sum_abs += std::abs(static_cast<double>(v));
  }
  // A NaN or Inf anywhere makes the sum non-finite (floats cannot overflow a double sum below 2^32 items).
  if (!std::isfinite(sum)) {
    non_finite_stats(x, out);
    return;
  }
  const double mean0 = sum / n;
  // Second pass around the first-pass mean; s1 corrects the mean's rounding error (the classic
  // corrected two-pass algorithm), avoiding the cancellation of raw power sums.
  double s1 = 0.0, s_abs = 0.0, s2 = 0.0, s4 = 0.0;
  for (const float v : x) {
    const double d = static_cast<double>(v) - mean0;
    const double d2 = d * d;
    s1 += d;
    s_abs += std::abs(d);
    s2 += d2;
    s4 += d2 * d2;
  }
  finish_stats(n, lo, hi, sum_abs, mean0, s1, s_abs, s2, s4, out);
}

void finish_stats(double n, float lo, float hi, double sum_abs, double mean0, double s1, double s_abs,
                  double s2, double s4, SampleStats& out) {
  const double m2 = std::max(0.0, s2 - s1 * s1 / n);
  const double var = m2 / (n - 1.0);  // 0/0 = NaN for n == 1, as torch.std
  // -0 + 0 = +0: min/max of a sample holding both zeros do not depend on the scan order.
  out.min = static_cast<double>(lo) + 0.0;
  out.max = static_cast<double>(hi) + 0.0;
  out.mean = mean0 + s1 / n;
  out.std = std::sqrt(var);
  out.mean_abs = sum_abs / n;
  out.b = s_abs / n;
  out.kurtosis = (s4 / n) / (var * var) - 3.0;  // the seed normalizes by the unbiased std
}

}  // namespace aciq::quant
