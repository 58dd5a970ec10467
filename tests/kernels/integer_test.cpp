// Integer reference kernels: conv2d_integer and matmul_integer against the float reference kernels on
// values small enough that float arithmetic is exact, and requantize against worked-out roundings.
#include "kernels/reference/integer.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <vector>

#include "kernels/reference/reference.hpp"

namespace aciq::testing {
namespace {

namespace ref = kernels::ref;

struct ConvCase {
  ref::ConvShape s;
  ref::Window2d win;
};

// Output size of a window along one axis (the ONNX NOTSET rule).
std::int64_t out_size(std::int64_t in, std::int64_t k, std::int64_t stride, std::int64_t dil, std::int64_t pb,
                      std::int64_t pe) {
  return (in + pb + pe - ((k - 1) * dil + 1)) / stride + 1;
}

ConvCase make_case(std::int64_t n, std::int64_t c, std::int64_t oc, std::int64_t group, std::int64_t h,
                   std::int64_t w, std::int64_t k, std::int64_t stride, std::int64_t pad, std::int64_t dil) {
  ConvCase cc;
  cc.win = {k, k, stride, stride, dil, dil, pad, pad, pad + 1, pad};
  cc.s = {n,    c, h, w, oc, out_size(h, k, stride, dil, pad, pad + 1), out_size(w, k, stride, dil, pad, pad),
          group};
  return cc;
}

// Sums of at most a few thousand products of |x| <= 255 and |w| <= 128 stay far below 2^24, so the float
// reference convolution of the zero-point-shifted values is exact and must equal the int32 kernel.
TEST(IntegerKernels, ConvMatchesFloatReferenceOnShiftedValues) {
  std::mt19937 rng(7);
  const std::vector<ConvCase> cases = {
      make_case(1, 1, 1, 1, 1, 1, 1, 1, 0, 1),     make_case(2, 3, 13, 1, 7, 5, 3, 1, 1, 1),
      make_case(1, 13, 13, 13, 9, 11, 3, 2, 1, 1),  // depthwise, stride 2
      make_case(1, 6, 4, 2, 8, 8, 3, 1, 2, 2),      // groups, dilation
      make_case(1, 127, 5, 1, 3, 4, 1, 1, 0, 1),
  };
  for (const auto& cc : cases) {
    const auto& s = cc.s;
    const std::int64_t icg = s.c / s.group;
    std::vector<std::int32_t> x(static_cast<std::size_t>(s.n * s.c * s.h * s.w));
    std::vector<std::int32_t> w(static_cast<std::size_t>(s.oc * icg * cc.win.kh * cc.win.kw));
    std::uniform_int_distribution<int> u8(0, 255), s8(-128, 127), zw(-3, 3);
    for (auto& v : x) v = u8(rng);
    for (auto& v : w) v = s8(rng);
    const std::int32_t x_zero = 37;
    std::vector<std::int32_t> w_zero(static_cast<std::size_t>(s.oc));
    for (auto& z : w_zero) z = zw(rng);

    // Padding holds x_zero in ONNX, i.e. zero after the shift: the float kernel's zero padding.
    std::vector<float> xf(x.size()), wf(w.size());
    for (std::size_t i = 0; i < x.size(); ++i) xf[i] = static_cast<float>(x[i] - x_zero);
    const std::int64_t per_oc = icg * cc.win.kh * cc.win.kw;
    for (std::size_t i = 0; i < w.size(); ++i) wf[i] = static_cast<float>(w[i] - w_zero[i / per_oc]);
    std::vector<float> yf(static_cast<std::size_t>(s.n * s.oc * s.oh * s.ow));
    ref::conv2d(s, cc.win, xf.data(), wf.data(), nullptr, yf.data());

    std::vector<std::int32_t> y(yf.size());
    ref::conv2d_integer(s, cc.win, x.data(), x_zero, w.data(), w_zero.data(), y.data());
    for (std::size_t i = 0; i < y.size(); ++i) ASSERT_EQ(static_cast<float>(y[i]), yf[i]) << "element " << i;
  }
}

TEST(IntegerKernels, MatMulMatchesDirectSums) {
  std::mt19937 rng(11);
  const std::int64_t batches = 2, m = 3, n = 5, k = 7;
  std::uniform_int_distribution<int> u8(0, 255), s8(-128, 127);
  std::vector<std::int32_t> a(batches * m * k), b(k * n), a_zero = {1, 2, 3}, b_zero = {0, -1, 4, 2, 9};
  for (auto& v : a) v = u8(rng);
  for (auto& v : b) v = s8(rng);
  std::vector<std::int32_t> y(batches * m * n);
  ref::matmul_integer(batches, m, n, k, a.data(), a_zero.data(), b.data(), false, b_zero.data(), y.data());
  for (std::int64_t bi = 0; bi < batches; ++bi) {
    for (std::int64_t i = 0; i < m; ++i) {
      for (std::int64_t j = 0; j < n; ++j) {
        std::int64_t want = 0;
        for (std::int64_t p = 0; p < k; ++p)
          want += std::int64_t{a[(bi * m + i) * k + p] - a_zero[i]} * (b[p * n + j] - b_zero[j]);
        EXPECT_EQ(y[(bi * m + i) * n + j], want);
      }
    }
  }
}

// Products that land exactly on .5 round to the even neighbour (rint, as ONNX Runtime's MLAS does);
// the zero point is added after rounding; results saturate to [lo, hi].
TEST(IntegerKernels, RequantizeRoundsHalfToEvenThenSaturates) {
  const std::vector<std::int32_t> acc = {5, 7, -5, -7, 3, 1000, -1000, 0};
  const std::vector<float> scale = {0.5f};
  std::vector<std::int32_t> y(acc.size());
  ref::requantize(1, 1, static_cast<std::int64_t>(acc.size()), acc.data(), scale.data(), 10, 0, 255,
                  y.data());
  // 2.5->2, 3.5->4, -2.5->-2, -3.5->-4, 1.5->2, 500 saturates, -500 saturates, 0 -> zero point.
  EXPECT_EQ(y, (std::vector<std::int32_t>{12, 14, 8, 6, 12, 255, 0, 10}));
}

TEST(IntegerKernels, RequantizeUsesTheChannelScale) {
  // outer 2, channels 2, inner 2: channel 0 scale 1, channel 1 scale 0.25.
  const std::vector<std::int32_t> acc = {1, 2, 4, 6, -1, -2, -4, -6};
  const std::vector<float> scale = {1.0f, 0.25f};
  std::vector<std::int32_t> y(acc.size());
  ref::requantize(2, 2, 2, acc.data(), scale.data(), 0, -128, 127, y.data());
  // 6 * 0.25 = 1.5 -> 2; -6 * 0.25 = -1.5 -> -2.
  EXPECT_EQ(y, (std::vector<std::int32_t>{1, 2, 1, 2, -1, -2, -1, -2}));
}

}  // namespace
}  // namespace aciq::testing
