// The threaded activation pass against its scalar reference, bit for bit (NaN, +-0, +-Inf included).
#include "kernels/activation.hpp"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

namespace aciq::testing {
namespace {

std::vector<float> inputs(std::size_t n, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-8.0f, 8.0f);
  std::vector<float> x(n);
  for (auto& v : x) v = u(rng);
  const float specials[] = {0.0f,
                            -0.0f,
                            std::numeric_limits<float>::quiet_NaN(),
                            std::numeric_limits<float>::infinity(),
                            -std::numeric_limits<float>::infinity(),
                            6.0f,
                            -6.0f,
                            1e-40f,
                            -1e-40f};
  for (std::size_t i = 0; i < n; i += 7) x[i] = specials[(i / 7) % std::size(specials)];
  return x;
}

// Swish (x * sigmoid(x)): the threaded pass uses the SIMD Sigmoid, the reference the double one; within
// 4 float ulps of each other and of x / (1 + e^-x) in double, in place and out of place, on odd sizes.
TEST(Activation, SwishPassAgreesWithReference) {
  Context ctx(2);
  const Activation swish{Activation::Kind::kSwish};
  for (const std::size_t n : {std::size_t{1}, std::size_t{17}, std::size_t{257}, std::size_t{65537}}) {
    std::vector<float> x = inputs(n, static_cast<std::uint32_t>(n) + 7);
    for (std::size_t i = 0; i < n; ++i) x[i] *= 8.0f;  // reach the saturated ends too
    std::vector<float> want = x, in_place = x, out(n, 123.0f);
    kernels::apply_activation_ref(swish, want.data(), static_cast<std::int64_t>(n));
    kernels::apply_activation(swish, in_place.data(), static_cast<std::int64_t>(n), ctx);
    kernels::apply_activation(swish, x.data(), out.data(), static_cast<std::int64_t>(n), ctx);
    for (std::size_t i = 0; i < n; ++i) {
      if (!std::isfinite(x[i])) {  // NaN stays NaN; -inf * sigmoid(-inf) = -inf * 0 is NaN as in the graph
        ASSERT_EQ(std::isnan(in_place[i]), std::isnan(want[i])) << "x=" << x[i];
        if (!std::isnan(want[i])) ASSERT_EQ(in_place[i], want[i]);
        ASSERT_EQ(std::isnan(out[i]), std::isnan(want[i]));
        continue;
      }
      const double exact = static_cast<double>(x[i]) / (1.0 + std::exp(-static_cast<double>(x[i])));
      const float ulp = std::nextafter(std::fabs(static_cast<float>(exact)), INFINITY) -
                        std::fabs(static_cast<float>(exact));
      ASSERT_LE(std::fabs(want[i] - exact), 4 * ulp + 1e-37) << "x=" << x[i];
      ASSERT_LE(std::fabs(in_place[i] - want[i]), 4 * ulp + 1e-37f) << "x=" << x[i];
      ASSERT_EQ(out[i], in_place[i]) << "x=" << x[i];
    }
  }
}

TEST(Activation, ThreadedPassEqualsReferenceBitForBit) {
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<Activation> acts;
  acts.push_back({Activation::Kind::kRelu});
  acts.push_back({Activation::Kind::kClip, 0.0f, 6.0f});
  acts.push_back({Activation::Kind::kClip, -1.0f, 0.0f});
  acts.push_back({Activation::Kind::kClip, -inf, 0.5f});
  acts.push_back({Activation::Kind::kLeakyRelu, 0, 0, 0.01f});
  acts.push_back({Activation::Kind::kHardSwish, 0, 0, 1.0f / 6.0f, 0.5f});  // the graph's float formula
  Context ctx(2);
  // Sizes around the 64K chunk so the split and the remainder are both exercised.
  for (const std::size_t n : {std::size_t{1}, std::size_t{17}, std::size_t{65536}, std::size_t{200003}}) {
    const std::vector<float> x = inputs(n, static_cast<std::uint32_t>(n));
    for (const auto& act : acts) {
      SCOPED_TRACE("kind " + std::to_string(static_cast<int>(act.kind)) + " n=" + std::to_string(n));
      std::vector<float> want = x, in_place = x, out(n, 123.0f);
      kernels::apply_activation_ref(act, want.data(), static_cast<std::int64_t>(n));
      kernels::apply_activation(act, in_place.data(), static_cast<std::int64_t>(n), ctx);
      kernels::apply_activation(act, x.data(), out.data(), static_cast<std::int64_t>(n), ctx);
      for (std::size_t i = 0; i < n; ++i) {
        ASSERT_EQ(std::bit_cast<std::uint32_t>(in_place[i]), std::bit_cast<std::uint32_t>(want[i]))
            << "x=" << x[i];
        ASSERT_EQ(std::bit_cast<std::uint32_t>(out[i]), std::bit_cast<std::uint32_t>(want[i]))
            << "x=" << x[i];
      }
    }
  }
}

}  // namespace
}  // namespace aciq::testing
