// Bit allocation: --bits-budget (per-tensor activation widths under an average-bits budget, a multiple-choice
// knapsack) and --bit-alloc channel (per-channel weight widths, Banner et al. 2019).
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>

#include "aciq/plan.hpp"

namespace aciq::plan {

std::vector<int> allocate_channel_bits(const std::vector<double>& alpha, double average_bits, int min_bits,
                                       int max_bits) {
  const auto n = static_cast<std::int64_t>(alpha.size());
  const auto budget = static_cast<std::int64_t>(std::floor(average_bits * static_cast<double>(n) + 1e-9));
  if (n == 0) return {};
  if (static_cast<std::int64_t>(min_bits) * n > budget)
    fail(fmt::format("--bit-alloc channel: {} channels at {} bits exceed the budget of {} bits on average", n,
                     min_bits, average_bits));
  // log2(alpha^(2/3)); channels with alpha 0 stay at min_bits.
  std::vector<double> level(alpha.size());
  for (std::size_t i = 0; i < alpha.size(); ++i)
    level[i] = alpha[i] > 0 ? 2.0 / 3.0 * std::log2(alpha[i]) : -INFINITY;
  auto widths = [&](double log_k) {
    std::vector<int> m(alpha.size());
    for (std::size_t i = 0; i < alpha.size(); ++i) {
      const double w = std::round(log_k + level[i]);
      m[i] =
          std::isfinite(w)
              ? static_cast<int>(std::clamp(w, static_cast<double>(min_bits), static_cast<double>(max_bits)))
              : min_bits;
    }
    return m;
  };
  auto total = [](const std::vector<int>& m) { return std::accumulate(m.begin(), m.end(), std::int64_t{0}); };
  // The sum is non-decreasing in log k: bisect for the largest log k within the budget.
  double lo = -2000.0, hi = 2000.0;
  for (int it = 0; it < 200; ++it) {
    const double mid = 0.5 * (lo + hi);
    (total(widths(mid)) <= budget ? lo : hi) = mid;
  }
  auto m = widths(lo);
  // Rounding can leave bits unspent: give them one at a time to the channel whose width is furthest below
  // its unrounded value log k + level (ties: the lower index).
  for (std::int64_t spent = total(m); spent < budget; ++spent) {
    std::size_t best = alpha.size();
    double gap = -INFINITY;
    for (std::size_t i = 0; i < alpha.size(); ++i) {
      if (m[i] >= max_bits || !std::isfinite(level[i])) continue;
      const double g = lo + level[i] - m[i];
      if (g > gap) {
        gap = g;
        best = i;
      }
    }
    if (best == alpha.size()) break;
    ++m[best];
  }
  return m;
}

std::vector<std::size_t> allocate_widths(const std::vector<std::vector<double>>& error,
                                         const std::vector<double>& size, const std::vector<int>& widths,
                                         double budget) {
  const std::size_t n = error.size(), m = widths.size();
  if (m == 0 || !std::is_sorted(widths.begin(), widths.end()))
    fail("--bit-widths: give increasing widths, e.g. 2,3,4,8");
  const double total_size = std::accumulate(size.begin(), size.end(), 0.0);
  const double limit = budget * total_size;
  if (static_cast<double>(widths[0]) * total_size > limit * (1 + 1e-12)) {
    fail(fmt::format(
        "--bits-budget {}: below the narrowest width {} (every tensor at {} bits already costs more)", budget,
        widths[0], widths[0]));
  }
  auto cost = [&](const std::vector<std::size_t>& k) {
    double c = 0.0;
    for (std::size_t i = 0; i < n; ++i) c += size[i] * widths[k[i]];
    return c;
  };
  std::vector<std::size_t> k(n, 0);
  // Dynamic programming over the budget above the narrowest widths. Costs are element counts times bits,
  // integers with a common divisor g (a tensor's C x H x W): with at most kMaxSteps multiples of g in the
  // budget the program is exact. Larger budgets use kMaxSteps equal steps with each cost rounded up, so
  // every solution still fits and the fill below spends what rounding left.
  constexpr std::int64_t kMaxSteps = 1 << 16;
  const double spare = limit - static_cast<double>(widths[0]) * total_size;
  if (spare > 0 && n > 0) {
    std::int64_t g = 0;
    bool integral = true;
    for (std::size_t i = 0; i < n; ++i) {
      integral = integral && size[i] == std::floor(size[i]) && size[i] < 1e15;
      for (std::size_t j = 1; j < m && integral; ++j)
        g = std::gcd(g, static_cast<std::int64_t>(size[i]) * (widths[j] - widths[0]));
    }
    double unit = integral && g > 0 ? static_cast<double>(g) : spare;
    std::int64_t steps_total = static_cast<std::int64_t>(std::floor(spare / unit + 1e-9));
    if (!integral || g <= 0 || steps_total > kMaxSteps) {
      unit = spare / static_cast<double>(kMaxSteps);
      steps_total = kMaxSteps;
    }
    const auto states = static_cast<std::size_t>(steps_total) + 1;
    std::vector<std::vector<std::size_t>> steps(n, std::vector<std::size_t>(m));
    for (std::size_t i = 0; i < n; ++i) {
      for (std::size_t j = 0; j < m; ++j) {
        const double c = std::ceil(size[i] * (widths[j] - widths[0]) / unit - 1e-9);
        steps[i][j] = c >= static_cast<double>(states) ? states : static_cast<std::size_t>(c);
      }
    }
    std::vector<double> best(states, 0.0), next(states);
    // choice[i][b]: the width index of item i in the best solution of items 0..i within b steps.
    std::vector<std::vector<std::uint8_t>> choice(n, std::vector<std::uint8_t>(states, 0));
    for (std::size_t i = 0; i < n; ++i) {
      for (std::size_t b = 0; b < states; ++b) {
        double v = INFINITY;
        std::uint8_t pick = 0;
        for (std::size_t j = 0; j < m; ++j) {
          if (steps[i][j] > b) continue;
          const double e = best[b - steps[i][j]] + error[i][j];
          if (e < v) {  // strict: ties keep the narrower width
            v = e;
            pick = static_cast<std::uint8_t>(j);
          }
        }
        next[b] = v;
        choice[i][b] = pick;
      }
      std::swap(best, next);
    }
    std::size_t b = states - 1;
    for (std::size_t i = n; i-- > 0;) {
      k[i] = choice[i][b];
      b -= steps[i][k[i]];
    }
  }
  // Spend what is left: the single upgrade with the largest error drop per added cost, while one fits.
  for (;;) {
    const double left = limit - cost(k);
    double best_gain = 0.0;
    std::size_t bi = n, bj = 0;
    for (std::size_t i = 0; i < n; ++i) {
      for (std::size_t j = k[i] + 1; j < m; ++j) {
        const double extra = size[i] * (widths[j] - widths[k[i]]);
        const double drop = error[i][k[i]] - error[i][j];
        if (extra <= left && drop > 0 && drop / extra > best_gain) {
          best_gain = drop / extra;
          bi = i;
          bj = j;
        }
      }
    }
    if (bi == n) break;
    k[bi] = bj;
  }
  return k;
}

}  // namespace aciq::plan
