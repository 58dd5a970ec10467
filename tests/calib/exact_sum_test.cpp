// ExactSum: the exact sum, independent of the order of adds and merges, with a canonical text form.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "aciq/calib.hpp"

namespace aciq::calib {
namespace {

std::vector<double> wide_values(unsigned seed, std::size_t n) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> mant(-1.0, 1.0);
  std::uniform_int_distribution<int> exp(-1070, 1000);
  std::vector<double> v(n);
  for (auto& x : v) x = std::ldexp(mant(rng), exp(rng));
  return v;
}

TEST(ExactSum, OrderAndMergesDoNotChangeTheSum) {
  auto values = wide_values(1, 5000);
  ExactSum forward;
  for (double v : values) forward.add(v);
  std::mt19937 rng(7);
  for (int trial = 0; trial < 3; ++trial) {
    std::shuffle(values.begin(), values.end(), rng);
    // Three chunks summed apart, merged in another order.
    ExactSum parts[3];
    for (std::size_t i = 0; i < values.size(); ++i) parts[i * 3 / values.size()].add(values[i]);
    ExactSum merged = parts[2];
    merged.merge(parts[0]);
    merged.merge(parts[1]);
    EXPECT_EQ(merged.to_string(), forward.to_string());
    EXPECT_EQ(merged.value(), forward.value());
  }
}

TEST(ExactSum, CancellationIsExact) {
  ExactSum s;
  s.add(1e300);
  s.add(1.0);
  s.add(-1e300);
  EXPECT_EQ(s.value(), 1.0);  // a double sum in this order gives 0
  ExactSum t;
  t.add(std::ldexp(1.0, -1074));  // the smallest subnormal
  t.add(std::ldexp(1.0, -1074));
  EXPECT_EQ(t.value(), std::ldexp(1.0, -1073));
  ExactSum u;
  u.add(-2.5);
  u.add(0.25);
  EXPECT_EQ(u.value(), -2.25);
  EXPECT_EQ(u.to_string()[0], '-');
  u.add(2.25);
  EXPECT_EQ(u.to_string(), "0");
  EXPECT_EQ(u.value(), 0.0);
}

// One rounding of the exact value: 1 + 2^-53 + 2^-80 is just above the midpoint of 1 and 1 + 2^-52.
TEST(ExactSum, RoundsTheExactValueOnce) {
  ExactSum s;
  s.add(1.0);
  s.add(std::ldexp(1.0, -53));
  s.add(std::ldexp(1.0, -80));
  EXPECT_EQ(s.value(), 1.0 + std::ldexp(1.0, -52));
  ExactSum t;  // exactly the midpoint: ties to even
  t.add(1.0);
  t.add(std::ldexp(1.0, -53));
  EXPECT_EQ(t.value(), 1.0);
  ExactSum u;  // negative, same magnitude
  u.add(-1.0);
  u.add(-std::ldexp(1.0, -53));
  u.add(-std::ldexp(1.0, -80));
  EXPECT_EQ(u.value(), -(1.0 + std::ldexp(1.0, -52)));
}

// Where a long double sum is exact (multiples of 2^-20 below 2^30, 5000 of them), they agree.
TEST(ExactSum, AgreesWithAnExactReference) {
  std::mt19937_64 rng(3);
  std::uniform_int_distribution<std::int64_t> d(-(std::int64_t{1} << 50), std::int64_t{1} << 50);
  ExactSum s;
  long double ref = 0;
  for (int i = 0; i < 5000; ++i) {
    const double v = std::ldexp(static_cast<double>(d(rng)), -20);
    s.add(v);
    ref += v;
  }
  EXPECT_EQ(s.value(), static_cast<double>(ref));
}

TEST(ExactSum, TextRoundTripsAndIsCanonical) {
  ExactSum s;
  for (double v : wide_values(2, 300)) s.add(v);
  const std::string text = s.to_string();
  const ExactSum back = ExactSum::from_string(text);
  EXPECT_EQ(back.to_string(), text);
  EXPECT_EQ(back.value(), s.value());
  EXPECT_EQ(ExactSum::from_string("0").value(), 0.0);
  for (const char* bad : {"", "+", "+1:", "x1:ff", "+1:fg", "+99999:1", "+1:0001", "-0:0", "+2:1:2"}) {
    EXPECT_THROW(ExactSum::from_string(bad), Error) << bad;
  }
}

TEST(ExactSum, RefusesNonFinite) {
  ExactSum s;
  EXPECT_THROW(s.add(std::nan("")), Error);
  EXPECT_THROW(s.add(INFINITY), Error);
}

}  // namespace
}  // namespace aciq::calib
