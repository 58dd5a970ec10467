// oneDNN's int8 convolution (fast::Int8Conv2d, QLinearConv on VNNI/AMX machines) against the reference
// integer convolution and requantization: bit for bit while |acc| and |acc + bias| stay below 2^24, within
// one level beyond (docs/int8.md, "oneDNN's int8 convolution"); odd sizes, groups, depthwise, strides,
// pads, dilation, both 8-bit types in and out, plain and channels-last layouts on either side.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include "kernels/fast/dnnl_kernels.hpp"
#include "kernels/reference/integer.hpp"

namespace aciq::testing {
namespace {

namespace ref = kernels::ref;
namespace fast = kernels::fast;

struct Case {
  ref::ConvShape s;
  ref::Window2d win;
};

Case make(std::int64_t n, std::int64_t c, std::int64_t oc, std::int64_t group, std::int64_t h, std::int64_t w,
          std::int64_t k, std::int64_t stride, std::int64_t pad, std::int64_t dil) {
  Case cc;
  // One more row of padding at the bottom than at the top: asymmetric pads as ONNX allows them.
  cc.win = {k, k, stride, stride, dil, dil, pad, pad, pad + 1, pad};
  const auto out = [&](std::int64_t in, std::int64_t pb, std::int64_t pe) {
    return (in + pb + pe - ((k - 1) * dil + 1)) / stride + 1;
  };
  cc.s = {n, c, h, w, oc, out(h, pad, pad + 1), out(w, pad, pad), group};
  return cc;
}

std::vector<Case> cases() {
  return {
      make(1, 1, 1, 1, 1, 1, 1, 1, 0, 1),        // one tap, one channel, one pixel
      make(1, 13, 13, 1, 7, 9, 3, 1, 1, 1),      // odd channels and pixels
      make(3, 13, 127, 1, 5, 5, 3, 2, 1, 1),     // batch, stride 2, 127 outputs
      make(1, 127, 13, 1, 6, 7, 1, 1, 0, 1),     // 1x1 over 127 inputs
      make(2, 3, 16, 1, 15, 15, 7, 2, 3, 1),     // a stem: 3 input channels, 7x7 stride 2
      make(1, 12, 20, 4, 9, 8, 3, 1, 2, 2),      // groups of 5 outputs, dilation 2
      make(2, 13, 13, 13, 9, 11, 3, 1, 1, 1),    // depthwise
      make(1, 127, 127, 127, 6, 5, 3, 2, 1, 1),  // depthwise, stride 2
      make(1, 64, 64, 1, 8, 8, 3, 1, 1, 1),      // full vector widths
  };
}

// NCHW <-> NHWC for the channels-last side of a case.
template <class T>
std::vector<T> to_nhwc(const std::vector<T>& x, std::int64_t n, std::int64_t c, std::int64_t hw) {
  std::vector<T> y(x.size());
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t ch = 0; ch < c; ++ch)
      for (std::int64_t p = 0; p < hw; ++p) y[(i * hw + p) * c + ch] = x[(i * c + ch) * hw + p];
  return y;
}
template <class T>
std::vector<T> from_nhwc(const std::vector<T>& y, std::int64_t n, std::int64_t c, std::int64_t hw) {
  std::vector<T> x(y.size());
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t ch = 0; ch < c; ++ch)
      for (std::int64_t p = 0; p < hw; ++p) x[(i * c + ch) * hw + p] = y[(i * hw + p) * c + ch];
  return x;
}

struct Outcome {
  std::int64_t differing = 0, beyond_one_level = 0, large_sums = 0;
};

// Runs one case; `large`: operands at the ends of their ranges, so that sums pass 2^24 on big windows.
template <class X, class Y>
Outcome run_case(const Case& cc, std::mt19937& rng, bool src_cl, bool dst_cl, bool large) {
  const auto& s = cc.s;
  const std::int64_t taps = s.c / s.group * cc.win.kh * cc.win.kw;
  constexpr int xlo = std::is_same_v<X, std::uint8_t> ? 0 : -128, xhi = xlo + 255;
  constexpr int ylo = std::is_same_v<Y, std::uint8_t> ? 0 : -128, yhi = ylo + 255;
  std::uniform_int_distribution<int> xd(xlo, xhi), wd(-127, 127), bd(-20000, 20000);
  std::vector<X> x(static_cast<std::size_t>(s.n * s.c * s.h * s.w));
  std::vector<std::int8_t> w(static_cast<std::size_t>(s.oc * taps));
  std::vector<std::int32_t> bias(static_cast<std::size_t>(s.oc));
  for (auto& v : x) v = static_cast<X>(large ? xhi - xd(rng) % 3 : xd(rng));
  for (auto& v : w) v = static_cast<std::int8_t>(large ? 127 - wd(rng) % 3 : wd(rng));
  for (auto& b : bias) b = bd(rng);
  const std::int32_t x_zero = large ? xlo : xlo + 101, y_zero = ylo + 77;
  // Scales whose products sit at varied float32 fractions, as trained scales do; the output lands
  // mid-range (the large case's sums are ~2^24 times bigger, so is its y scale).
  std::vector<float> scale(static_cast<std::size_t>(s.oc));
  const float y_scale = large ? 3000.0f : 0.37f;
  for (std::int64_t c = 0; c < s.oc; ++c)
    scale[c] = 0.0173f * (0.00113f * static_cast<float>(1 + c % 7)) / y_scale;

  // Reference: exact sums, bias, float32 requantization.
  std::vector<std::int32_t> xw(x.begin(), x.end()), ww(w.begin(), w.end()), zero(s.oc, 0);
  const std::int64_t pixels = s.oh * s.ow;
  std::vector<std::int32_t> acc(static_cast<std::size_t>(s.n * s.oc * pixels)), want(acc.size());
  ref::conv2d_integer(s, cc.win, xw.data(), x_zero, ww.data(), zero.data(), acc.data());
  Outcome out;
  for (std::size_t i = 0; i < acc.size(); ++i) {
    const std::int64_t sum = acc[i];
    acc[i] += bias[i / pixels % s.oc];
    out.large_sums += std::llabs(sum) >= (1 << 24) || std::llabs(acc[i]) >= (1 << 24);
  }
  ref::requantize(s.n, s.oc, pixels, acc.data(), scale.data(), y_zero, ylo, yhi, want.data());

  fast::DnnlEngine engine;
  fast::Int8Conv2d conv(engine, s, cc.win, w.data(), bias.data(), scale.data(), y_zero,
                        {std::is_same_v<X, std::int8_t>, std::is_same_v<Y, std::int8_t>},
                        src_cl ? fast::kChannelsLast : 0, dst_cl ? fast::kChannelsLast : 0);
  const std::vector<X> src = src_cl ? to_nhwc(x, s.n, s.c, s.h * s.w) : x;
  std::vector<Y> got(want.size());
  conv.run(src.data(), x_zero, got.data());
  if (dst_cl) got = from_nhwc(got, s.n, s.oc, pixels);
  for (std::size_t i = 0; i < got.size(); ++i) {
    const int d = std::abs(static_cast<int>(got[i]) - want[i]);
    out.differing += d != 0;
    out.beyond_one_level += d > 1;
  }
  return out;
}

bool available(const Case& cc, bool x_signed, bool y_signed) {
  return fast::Int8Conv2d::exact_kernel_available(cc.s, cc.win, {x_signed, y_signed});
}

TEST(DnnlInt8Conv, EqualsTheReferenceBitForBitBelow2To24) {
  std::mt19937 rng(5);
  int ran = 0;
  for (const Case& cc : cases()) {
    if (!available(cc, false, false)) continue;
    for (int layouts = 0; layouts < 4; ++layouts) {
      const bool src_cl = (layouts & 1) != 0, dst_cl = (layouts & 2) != 0;
      const std::string where = "n" + std::to_string(cc.s.n) + " c" + std::to_string(cc.s.c) + " oc" +
                                std::to_string(cc.s.oc) + " g" + std::to_string(cc.s.group) + " k" +
                                std::to_string(cc.win.kh) + " stride " + std::to_string(cc.win.stride_h) +
                                " layouts " + std::to_string(layouts);
      Outcome o = run_case<std::uint8_t, std::uint8_t>(cc, rng, src_cl, dst_cl, false);
      ASSERT_EQ(o.large_sums, 0) << where;  // the premise of exactness
      EXPECT_EQ(o.differing, 0) << "u8 -> u8, " << where;
      o = run_case<std::int8_t, std::uint8_t>(cc, rng, src_cl, dst_cl, false);
      EXPECT_EQ(o.differing, 0) << "s8 -> u8, " << where;
      o = run_case<std::uint8_t, std::int8_t>(cc, rng, src_cl, dst_cl, false);
      EXPECT_EQ(o.differing, 0) << "u8 -> s8, " << where;
      ++ran;
    }
  }
  if (ran == 0)
    GTEST_SKIP() << "oneDNN has no VNNI/AMX int8 kernel on this CPU: aciq's own kernels run instead";
}

TEST(DnnlInt8Conv, StaysWithinOneLevelBeyond2To24) {
  // 3x3 over 2100 channels at the ends of the ranges: every sum is near 255 * 127 * 18900 > 2^29.
  const Case cc = make(1, 2100, 16, 1, 5, 5, 3, 1, 1, 1);
  if (!available(cc, false, false)) GTEST_SKIP() << "oneDNN has no VNNI/AMX int8 kernel on this CPU";
  std::mt19937 rng(9);
  const Outcome o = run_case<std::uint8_t, std::uint8_t>(cc, rng, true, true, true);
  EXPECT_GT(o.large_sums, 0);
  EXPECT_EQ(o.beyond_one_level, 0);
}

TEST(DnnlInt8Conv, RefusesWithoutAnExactKernel) {
  // Whatever the CPU, availability and construction agree: a kernel is used only where it is exact.
  const Case cc = make(1, 13, 13, 1, 7, 9, 3, 1, 1, 1);
  fast::DnnlEngine engine;
  std::vector<std::int8_t> w(13 * 13 * 9, 1);
  std::vector<float> scale(13, 0.01f);
  if (available(cc, false, false)) {
    const fast::Int8Conv2d conv(engine, cc.s, cc.win, w.data(), nullptr, scale.data(), 0, {}, 0, 0);
    const std::string impl = conv.implementation();
    EXPECT_TRUE(impl.find("vnni") != std::string::npos || impl.find("amx") != std::string::npos) << impl;
  } else {
    EXPECT_THROW(fast::Int8Conv2d(engine, cc.s, cc.win, w.data(), nullptr, scale.data(), 0, {}, 0, 0), Error);
  }
}

}  // namespace
}  // namespace aciq::testing
