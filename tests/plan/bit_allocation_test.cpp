// --bits-budget's allocator against brute force on small random instances, and its guarantees.
#include <gtest/gtest.h>

#include <cmath>
#include <numeric>
#include <random>

#include "aciq/plan.hpp"

namespace aciq::plan {
namespace {

struct Instance {
  std::vector<std::vector<double>> error;
  std::vector<double> size;
};

// Errors that fall with the width like quantization noise (4^-w), scaled per item.
Instance random_instance(std::size_t n, const std::vector<int>& widths, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> u(0.2, 5.0);
  std::uniform_int_distribution<int> sz(1, 64);
  Instance in;
  for (std::size_t i = 0; i < n; ++i) {
    const double scale = u(rng), size = sz(rng) * 16.0;
    std::vector<double> e;
    for (const int w : widths) e.push_back(size * scale * std::pow(4.0, -w) * u(rng) / 2.5 + 1e-9 * w);
    std::sort(e.rbegin(), e.rend());
    in.error.push_back(e);
    in.size.push_back(size);
  }
  return in;
}

double total(const Instance& in, const std::vector<std::size_t>& k) {
  double t = 0.0;
  for (std::size_t i = 0; i < k.size(); ++i) t += in.error[i][k[i]];
  return t;
}
double cost(const Instance& in, const std::vector<int>& widths, const std::vector<std::size_t>& k) {
  double t = 0.0;
  for (std::size_t i = 0; i < k.size(); ++i) t += in.size[i] * widths[k[i]];
  return t;
}

TEST(BitAllocation, BudgetHoldsAndMatchesBruteForce) {
  const std::vector<int> widths{2, 3, 4, 8};
  int optimal = 0, cases = 0;
  for (unsigned seed = 1; seed <= 60; ++seed) {
    const auto in = random_instance(6, widths, seed);
    double total_size = 0.0;
    for (double s : in.size) total_size += s;
    for (const double budget : {2.0, 2.5, 3.0, 3.7, 5.0}) {
      const auto k = allocate_widths(in.error, in.size, widths, budget);
      ASSERT_EQ(k.size(), in.size.size());
      EXPECT_LE(cost(in, widths, k), budget * total_size + 1e-9);
      // Brute force over all 4^6 choices.
      double best = INFINITY;
      std::vector<std::size_t> c(6, 0);
      for (int code = 0; code < 4096; ++code) {
        for (std::size_t i = 0, x = code; i < 6; ++i, x /= 4) c[i] = x % 4;
        if (cost(in, widths, c) <= budget * total_size + 1e-9) best = std::min(best, total(in, c));
      }
      const double got = total(in, k);
      EXPECT_LE(got, best * (1 + 1e-9)) << "seed " << seed << " budget " << budget;
      optimal += got <= best * (1 + 1e-9);
      ++cases;
      // No single upgrade that fits lowers the error any more (what the greedy fill guarantees).
      for (std::size_t i = 0; i < k.size(); ++i) {
        for (std::size_t j = k[i] + 1; j < widths.size(); ++j) {
          const double extra = in.size[i] * (widths[j] - widths[k[i]]);
          if (cost(in, widths, k) + extra <= budget * total_size + 1e-9) {
            EXPECT_GE(in.error[i][j], in.error[i][k[i]]);
          }
        }
      }
    }
  }
  // The Lagrangian choice is optimal on most instances (it is exact whenever the budget lands on a hull
  // point).
  EXPECT_GE(optimal, cases * 95 / 100) << optimal << " of " << cases;
}

TEST(BitAllocation, UniformBudgetsAndErrors) {
  const std::vector<int> widths{2, 3, 4, 8};
  const auto in = random_instance(5, widths, 99);
  // At the widest width everything gets it; at the narrowest, everything the narrowest.
  for (auto k : allocate_widths(in.error, in.size, widths, 8.0)) EXPECT_EQ(k, 3u);
  for (auto k : allocate_widths(in.error, in.size, widths, 2.0)) EXPECT_EQ(k, 0u);
  EXPECT_THROW(allocate_widths(in.error, in.size, widths, 1.5), Error);
}

// --bit-alloc channel: 2^M_c proportional to alpha_c^(2/3). With alpha = 1, 8, 64 (alpha^(2/3) = 1, 4, 16)
// and 4 bits on average, M = log2 k + {0, 2, 4} sums to 12 at log2 k = 2: widths 2, 4, 6 exactly.
TEST(ChannelBitAllocation, ClosedFormAndBudget) {
  EXPECT_EQ(allocate_channel_bits({1.0, 8.0, 64.0}, 4.0, 2, 8), (std::vector<int>{2, 4, 6}));
  // The clamp: a huge spread saturates at the ends and the leftover goes to the channel furthest below its
  // unrounded width.
  const auto wide = allocate_channel_bits({1e-6, 1.0, 1e6}, 4.0, 2, 8);
  EXPECT_EQ(wide.front(), 2);
  EXPECT_EQ(wide.back(), 8);
  EXPECT_LE(wide[0] + wide[1] + wide[2], 12);
  // A zero channel gets the narrowest width; all-equal channels get the average.
  EXPECT_EQ(allocate_channel_bits({0.0, 1.0, 1.0}, 3.0, 2, 8)[0], 2);
  EXPECT_EQ(allocate_channel_bits(std::vector<double>(5, 0.3), 3.0, 2, 8), std::vector<int>(5, 3));
  EXPECT_THROW(allocate_channel_bits({1.0, 2.0}, 1.5, 2, 8), Error);
  std::mt19937 rng(11);
  std::lognormal_distribution<double> a(0.0, 1.5);
  for (int trial = 0; trial < 200; ++trial) {
    const std::size_t n = 1 + trial % 40;
    std::vector<double> alpha(n);
    for (auto& x : alpha) x = a(rng);
    const double avg = 2.0 + (trial % 13) * 0.5;
    const auto m = allocate_channel_bits(alpha, avg, 2, 8);
    const auto sum = std::accumulate(m.begin(), m.end(), 0);
    EXPECT_LE(sum, static_cast<int>(std::floor(avg * static_cast<double>(n) + 1e-9)));
    // Nothing left unspent that a channel below the maximum could take.
    if (*std::min_element(m.begin(), m.end()) < 8)
      EXPECT_EQ(sum, std::min(8 * static_cast<int>(n),
                              static_cast<int>(std::floor(avg * static_cast<double>(n) + 1e-9))));
    // A larger alpha never gets fewer bits than a smaller one... up to the one-bit top-ups.
    for (std::size_t i = 0; i < n; ++i)
      for (std::size_t j = 0; j < n; ++j)
        if (alpha[i] > alpha[j]) EXPECT_GE(m[i] + 1, m[j]);
  }
}

}  // namespace
}  // namespace aciq::plan
