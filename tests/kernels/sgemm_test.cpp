// fast::sgemm: each output row is the same bits whatever the row count (the determinism a short last
// batch or batch 1 relies on), and agrees with the reference GEMM.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "kernels/fast/dnnl_kernels.hpp"
#include "kernels/reference/reference.hpp"

namespace aciq::kernels {
namespace {

std::vector<float> random_matrix(std::int64_t rows, std::int64_t cols, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(-1.0f, 1.0f);
  std::vector<float> v(static_cast<std::size_t>(rows * cols));
  for (auto& x : v) x = d(rng);
  return v;
}

TEST(Sgemm, RowsDoNotDependOnTheRowCount) {
  // Shapes of small and ImageNet classifiers, and an odd one.
  for (const auto& [k, n] :
       {std::pair<std::int64_t, std::int64_t>{517, 13}, {2048, 1000}, {64, 10}, {1280, 1000}}) {
    const std::int64_t full = 250;
    const auto a = random_matrix(full, k, 1);
    for (const bool tb : {false, true}) {
      const auto b = random_matrix(tb ? n : k, tb ? k : n, 2);
      const auto bias = random_matrix(full, n, 3);
      std::vector<float> c_full = bias;
      fast::sgemm(false, tb, full, n, k, 1.0f, a.data(), b.data(), 1.0f, c_full.data());
      for (const std::int64_t m : {1, 2, 7, 13, 31, 32, 33, 64, 127}) {
        // The last m rows of the full problem, as a short batch of their own.
        const std::int64_t first = full - m;
        std::vector<float> c(bias.begin() + first * n, bias.end());
        fast::sgemm(false, tb, m, n, k, 1.0f, a.data() + first * k, b.data(), 1.0f, c.data());
        for (std::int64_t i = 0; i < m * n; ++i) {
          ASSERT_EQ(c[i], c_full[first * n + i])
              << "m " << m << " transB " << tb << " k " << k << " n " << n << " element " << i;
        }
      }
    }
  }
}

TEST(Sgemm, TransposedAAgreesWithPlainAAndReference) {
  for (const std::int64_t m : {1, 5, 40}) {
    const std::int64_t k = 33, n = 9;
    const auto a = random_matrix(m, k, 4);
    std::vector<float> at(a.size());
    for (std::int64_t i = 0; i < m; ++i) {
      for (std::int64_t j = 0; j < k; ++j) at[j * m + i] = a[i * k + j];
    }
    const auto b = random_matrix(k, n, 5);
    std::vector<float> c1(static_cast<std::size_t>(m * n)), c2(c1.size()), r(c1.size());
    fast::sgemm(false, false, m, n, k, 0.5f, a.data(), b.data(), 0.0f, c1.data());
    fast::sgemm(true, false, m, n, k, 0.5f, at.data(), b.data(), 0.0f, c2.data());
    ref::gemm(m, n, k, false, false, 0.5f, 0.0f, a.data(), b.data(), nullptr, r.data());
    for (std::size_t i = 0; i < c1.size(); ++i) {
      EXPECT_EQ(c1[i], c2[i]) << i;
      EXPECT_NEAR(c1[i], r[i], 1e-5f * (1 + std::abs(r[i]))) << i;
    }
  }
}

}  // namespace
// The fast plain GlobalAveragePool (threaded rows, eight partial sums) against the reference's single
// running double sum, on odd row counts and plane sizes: within one float ulp.
TEST(GlobalAvgPool, PlainFastMatchesReference) {
  ThreadPool pool(2);
  for (const std::int64_t rows : {1, 13, 127}) {
    for (const std::int64_t hw : {1, 7, 49, 12545}) {
      std::vector<float> x(static_cast<std::size_t>(rows * hw));
      std::mt19937 rng(static_cast<unsigned>(rows * 100000 + hw));
      std::normal_distribution<float> d(0.5f, 2.0f);
      for (auto& v : x) v = d(rng);
      std::vector<float> want(static_cast<std::size_t>(rows)), got(static_cast<std::size_t>(rows), -1.0f);
      ref::global_avg_pool(rows, hw, x.data(), want.data());
      fast::global_avg_pool_plain(rows, hw, x.data(), got.data(), pool);
      for (std::int64_t r = 0; r < rows; ++r) {
        const float ulp = std::nextafter(std::fabs(want[r]), INFINITY) - std::fabs(want[r]);
        ASSERT_LE(std::fabs(got[r] - want[r]), ulp) << rows << "x" << hw << " row " << r;
      }
    }
  }
}

}  // namespace aciq::kernels
