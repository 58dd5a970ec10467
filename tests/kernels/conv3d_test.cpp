// 3-D convolution and pooling: oneDNN's convolution (fast::Conv3d) against the plain reference kernel on
// odd sizes, strides, dilations, padding, groups (depthwise included) and a fused ReLU; and the reference
// pools against values worked out by hand.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "kernels/activation.hpp"
#include "kernels/fast/dnnl_kernels.hpp"
#include "kernels/reference/reference.hpp"

namespace aciq::kernels {
namespace {

std::vector<float> random_vector(std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

struct Case {
  std::int64_t n, c, oc, group;
  std::array<std::int64_t, 3> in, kernel, stride, dilation, pad_begin, pad_end;
  bool relu;
};

TEST(Conv3d, OneDnnEqualsTheReferenceOnOddShapes) {
  const Case cases[] = {
      {1, 3, 5, 1, {5, 7, 6}, {3, 2, 3}, {1, 2, 1}, {2, 1, 1}, {1, 0, 1}, {1, 1, 0}, false},
      {2, 4, 6, 2, {4, 5, 5}, {1, 3, 3}, {1, 1, 2}, {1, 1, 1}, {0, 1, 1}, {0, 1, 1}, true},
      {1, 7, 7, 7, {3, 9, 8}, {3, 3, 3}, {2, 2, 2}, {1, 1, 1}, {1, 1, 1}, {1, 1, 1}, false},  // depthwise
      {1, 13, 1, 1, {1, 1, 1}, {1, 1, 1}, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}, {0, 0, 0}, true},
  };
  fast::DnnlEngine engine;
  for (const Case& k : cases) {
    ref::Window3d win;
    win.kernel = k.kernel;
    win.stride = k.stride;
    win.dilation = k.dilation;
    win.pad_begin = k.pad_begin;
    win.pad_end = k.pad_end;
    ref::Conv3dShape s;
    s.n = k.n;
    s.c = k.c;
    s.oc = k.oc;
    s.group = k.group;
    s.in = k.in;
    for (int i = 0; i < 3; ++i)
      s.out[i] =
          (k.in[i] + k.pad_begin[i] + k.pad_end[i] - (k.kernel[i] - 1) * k.dilation[i] - 1) / k.stride[i] + 1;
    const auto x = random_vector(static_cast<std::size_t>(k.n * k.c * k.in[0] * k.in[1] * k.in[2]), 1);
    const auto w = random_vector(
        static_cast<std::size_t>(k.oc * (k.c / k.group) * k.kernel[0] * k.kernel[1] * k.kernel[2]), 2);
    const auto b = random_vector(static_cast<std::size_t>(k.oc), 3);
    const std::size_t out_n = static_cast<std::size_t>(k.n * k.oc * s.out[0] * s.out[1] * s.out[2]);
    std::vector<float> want(out_n), got(out_n, 7.0f);
    ref::conv3d(s, win, x.data(), w.data(), b.data(), want.data());
    Activation act;
    if (k.relu) {
      act.kind = Activation::Kind::kRelu;
      for (auto& v : want) v = v > 0.0f ? v : 0.0f;
    }
    fast::Conv3d conv(engine, s, win, w.data(), b.data(), act);
    conv.run(x.data(), got.data());
    const std::string where = "c " + std::to_string(k.c) + " oc " + std::to_string(k.oc) + " group " +
                              std::to_string(k.group) + " (" + conv.implementation() + ")";
    for (std::size_t i = 0; i < out_n; ++i)
      ASSERT_NEAR(got[i], want[i], 1e-5f * (1.0f + std::fabs(want[i]))) << where << " at " << i;
  }
}

// [1, 1, 2, 2, 3] ramp x = 0..11, kernel 2x2x2 stride 1 with pad_end 1 on the last axis: the max of a window
// is its last element; the average excludes the padding, or counts it as zeros with count_include_pad.
TEST(Pool3d, ReferenceMatchesHandValues) {
  std::vector<float> x(12);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i);
  ref::Window3d win;
  win.kernel = {2, 2, 2};
  win.pad_end = {0, 0, 1};
  const ref::Pool3dShape s{1, 1, {2, 2, 3}, {1, 1, 3}};
  std::vector<float> y(3);
  ref::max_pool3d(s, win, x.data(), y.data());
  EXPECT_EQ(y, (std::vector<float>{10, 11, 11}));
  // Windows over w = {0,1}, {1,2}, {2}: (0+1+3+4+6+7+9+10)/8 = 5, 6, (2+5+8+11)/4 = 6.5.
  ref::avg_pool3d(s, win, false, x.data(), y.data());
  EXPECT_EQ(y, (std::vector<float>{5.0f, 6.0f, 6.5f}));
  ref::avg_pool3d(s, win, true, x.data(), y.data());  // the last window counts its 4 padded taps
  EXPECT_EQ(y, (std::vector<float>{5.0f, 6.0f, 3.25f}));
}

}  // namespace
}  // namespace aciq::kernels
