// kl: TensorRT's entropy calibration on the histogram of |x| (GTC 2017, "8-bit Inference with TensorRT"),
// with the number of quantized levels following the bit width and the grid's sign.
#include <cmath>

#include "aciq/calib.hpp"
#include "calib/methods/methods.hpp"

namespace aciq::calib::methods {

namespace {

// MXNet's smoothing: zero entries get eps, taken evenly from the non-zero ones, so that KL stays finite.
// Returns false for an all-zero distribution.
bool smooth_normalized(std::vector<double>& d) {
  constexpr double kEps = 1e-4;
  double sum = 0.0;
  std::size_t zeros = 0;
  for (double v : d) {
    sum += v;
    zeros += v == 0.0;
  }
  if (sum <= 0.0 || zeros == d.size()) return false;
  for (double& v : d) v /= sum;
  if (zeros == 0) return true;
  const double eps1 = kEps * static_cast<double>(zeros) / static_cast<double>(d.size() - zeros);
  for (double& v : d) v += v == 0.0 ? kEps : -eps1;
  return true;
}

}  // namespace

WindowChoice choose_kl(const WindowRequest& r) {
  const Histogram& h = require_histogram(r);
  auto m = h.magnitudes();
  if (m.empty()) return choose_minmax(r);
  // Exact zeros are left out: every window holds 0 as a level, so they cost nothing, while in bin 0 their
  // spike (half of a ReLU output) dominates KL once groups merge many bins, and at low widths drives the
  // threshold to a few bins (TensorRT keeps them; measured: MobileNet int2 --half drops to 10% with them).
  m.counts[0] -= h.zeros;
  int used = 0;  // bins up to the last non-empty one
  for (int j = 0; j < Histogram::kBins; ++j) {
    if (m.counts[j] != 0) used = j + 1;
  }
  // A window [-t, t] spends 2^(M-1) levels on each magnitude; [0, t] spends all 2^M.
  const int levels = h.negative.empty() ? 1 << r.bits : 1 << (r.bits - 1);
  int best = used;
  if (used > levels) {
    double best_kl = INFINITY;
    std::vector<double> p, q;
    for (int i = levels; i <= used; ++i) {
      // P: the first i bins, the clipped outliers added to the last; Q: those i bins merged into `levels`
      // groups and spread back evenly over each group's non-empty bins.
      p.assign(m.counts.begin(), m.counts.begin() + i);
      double outliers = 0.0;
      for (int j = i; j < used; ++j) outliers += static_cast<double>(m.counts[j]);
      p[i - 1] += outliers;
      q.assign(static_cast<std::size_t>(i), 0.0);
      const int merged = i / levels;
      for (int g = 0; g < levels; ++g) {
        const int start = g * merged, stop = g == levels - 1 ? i : start + merged;
        double mass = 0.0;
        int nonzero = 0;
        for (int k = start; k < stop; ++k) {
          mass += static_cast<double>(m.counts[k]);
          nonzero += p[k] != 0.0;
        }
        for (int k = start; k < stop; ++k) q[k] = p[k] != 0.0 && nonzero > 0 ? mass / nonzero : 0.0;
      }
      if (!smooth_normalized(p) || !smooth_normalized(q)) continue;
      double kl = 0.0;
      for (int k = 0; k < i; ++k) {
        if (p[k] > 0.0 && q[k] > 0.0) kl += p[k] * std::log(p[k] / q[k]);
      }
      if (kl < best_kl) {
        best_kl = kl;
        best = i;
      }
    }
  }
  // The upper edge of the kept bins (as NVIDIA's pytorch-quantization and MXNet take it).
  WindowChoice c = magnitude_window(*r.stats, best * m.bin_width());
  c.method = r.clip;
  return c;
}

}  // namespace aciq::calib::methods
