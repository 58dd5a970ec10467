// mse: the window with the least measured quantization MSE of the histogram on the grid that runs (the
// plan's semantics and bit width), searched over bin edges.
#include <algorithm>
#include <cmath>
#include <functional>

#include "aciq/calib.hpp"
#include "calib/methods/methods.hpp"

namespace aciq::calib::methods {

namespace {

// The candidate with the least error: every k-th candidate first (k keeps it near 256 evaluations), then
// every candidate within k of the best. Ties keep the earlier (smaller) candidate, so results are stable.
std::size_t search(std::size_t n, const std::function<double(std::size_t)>& error) {
  const std::size_t k = std::max<std::size_t>(1, n / 256);
  std::size_t best = n - 1;
  double best_err = error(best);
  auto consider = [&](std::size_t i) {
    const double e = error(i);
    if (e < best_err || (e == best_err && i < best)) {
      best_err = e;
      best = i;
    }
  };
  for (std::size_t i = 0; i < n; i += k) consider(i);
  const std::size_t centre = best;
  for (std::size_t i = centre > k ? centre - k : 0; i < std::min(n, centre + k + 1); ++i) consider(i);
  return best;
}

// Upper edges of a half above `floor` and below `limit` (the observed extreme), then `limit`, ascending.
// The floor keeps every window non-empty for tensors that do not cross 0 (all values in [1, 2]: no
// candidate end below 1).
std::vector<double> edges(const Histogram::Half& h, double limit, double floor = 0.0) {
  std::vector<double> e;
  if (h.empty()) return e;
  for (int j = 0; j < Histogram::kBins; ++j) {
    const double edge = (j + 1) * h.bin_width();
    if (edge >= limit) break;
    if (edge > floor) e.push_back(edge);
  }
  e.push_back(limit);
  return e;
}

WindowChoice with_method(WindowChoice c, const WindowRequest& r) {
  c.method = r.clip;
  return c;
}

}  // namespace

WindowChoice choose_mse(const WindowRequest& r) {
  const Histogram& h = require_histogram(r);
  const WeightedValues v = weighted_values(h);
  // Plain variables, not a structured binding: lambdas below capture them (clang 14 refuses bindings there).
  const auto observed = observed_range(*r.stats);
  const double obs_lo = observed.first, obs_hi = observed.second;
  auto err = [&](double lo, double hi) {
    return weighted_mse(v, window_of_range(lo, hi), r.bits, r.onnx_grid);
  };
  const auto pos = edges(h.positive, std::max(obs_hi, 0.0), std::max(obs_lo, 0.0));
  const auto neg = edges(h.negative, std::max(-obs_lo, 0.0), std::max(-obs_hi, 0.0));
  if (neg.empty()) {  // no negative values: only the upper end moves
    if (pos.empty()) return choose_minmax(r);
    const auto i = search(pos.size(), [&](std::size_t k) { return err(obs_lo, pos[k]); });
    return with_method(window_of_range(obs_lo, pos[i]), r);
  }
  if (pos.empty()) {  // no positive values: only the lower end moves
    const auto i = search(neg.size(), [&](std::size_t k) { return err(-neg[k], obs_hi); });
    return with_method(window_of_range(-neg[i], obs_hi), r);
  }
  // Both signs: a common magnitude threshold first, then each end in turn with the other fixed.
  const auto mag = edges(h.magnitudes(), std::max(obs_hi, -obs_lo));
  const auto t = mag[search(
      mag.size(), [&](std::size_t k) { return err(std::max(obs_lo, -mag[k]), std::min(obs_hi, mag[k])); })];
  double lo = std::max(obs_lo, -t), hi = std::min(obs_hi, t);
  for (int round = 0; round < 2; ++round) {
    hi = pos[search(pos.size(), [&](std::size_t k) { return err(lo, pos[k]); })];
    lo = -neg[search(neg.size(), [&](std::size_t k) { return err(-neg[k], hi); })];
  }
  return with_method(window_of_range(lo, hi), r);
}

}  // namespace aciq::calib::methods
