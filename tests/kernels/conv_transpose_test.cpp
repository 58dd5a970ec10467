// ConvTranspose kernels: the reference against the adjoint identity with Conv, oneDNN against the reference.
#include "kernels/reference/conv_transpose.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "aciq/core.hpp"
#include "kernels/activation.hpp"
#include "kernels/fast/dnnl_kernels.hpp"
#include "kernels/reference/reference.hpp"

namespace aciq::testing {
namespace {

namespace ref = kernels::ref;
namespace fast = kernels::fast;
using Dims = std::vector<std::int64_t>;

// ONNX-style parameters of one case; pads are [begin..., end...] like the attribute.
struct Case {
  std::int64_t n, c, oc, group;
  Dims in, kernel, stride, dilation, pads, output_padding;
};

ref::ConvTransposeShape shape_of(const Case& k) {
  ref::ConvTransposeShape s;
  s.n = k.n, s.c = k.c, s.oc = k.oc, s.group = k.group;
  s.spatial = static_cast<int>(k.in.size());
  for (std::size_t d = 0; d < k.in.size(); ++d) {
    const std::int64_t ext = (k.kernel[d] - 1) * k.dilation[d] + 1;
    const std::int64_t pb = k.pads[d], pe = k.pads[d + k.in.size()], op = k.output_padding[d];
    s.in[d] = k.in[d], s.kernel[d] = k.kernel[d], s.stride[d] = k.stride[d], s.dilation[d] = k.dilation[d];
    s.out[d] = (k.in[d] - 1) * k.stride[d] + ext + op - pb - pe;
    s.pad_begin[d] = pb;
    s.pad_end[d] = pe - op;
  }
  return s;
}

std::int64_t spatial_numel(const ref::ConvTransposeShape::Dims& d, int spatial) {
  std::int64_t n = 1;
  for (int i = 0; i < spatial; ++i) n *= d[i];
  return n;
}

std::vector<float> uniform(std::size_t n, std::mt19937& rng) {
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = u(rng);
  return v;
}

// Small integers: every product and partial sum below is exact in float, so identities hold exactly.
std::vector<float> small_ints(std::size_t n, std::mt19937& rng) {
  std::uniform_int_distribution<int> u(-3, 3);
  std::vector<float> v(n);
  for (auto& x : v) x = static_cast<float>(u(rng));
  return v;
}

std::string describe(const ref::ConvTransposeShape& s) {
  std::string out = "n" + std::to_string(s.n) + " c" + std::to_string(s.c) + " oc" + std::to_string(s.oc) +
                    " g" + std::to_string(s.group);
  for (int d = 0; d < s.spatial; ++d) {
    out += " [in " + std::to_string(s.in[d]) + " out " + std::to_string(s.out[d]) + " k " +
           std::to_string(s.kernel[d]) + " s " + std::to_string(s.stride[d]) + " d " +
           std::to_string(s.dilation[d]) + " pb " + std::to_string(s.pad_begin[d]) + " pe " +
           std::to_string(s.pad_end[d]) + "]";
  }
  return out;
}

// Odd sizes on purpose: channel counts that are not multiples of oneDNN's 8/16 blocks, strides 1-3,
// asymmetric pads, groups (depthwise included), dilation, output_padding, 1-D and 3-D.
std::vector<Case> cases() {
  return {
      {1, 1, 1, 1, {7}, {3}, {1}, {1}, {0, 0}, {0}},
      {2, 3, 5, 1, {9}, {4}, {3}, {1}, {1, 2}, {2}},
      {1, 13, 7, 1, {5, 6}, {3, 3}, {2, 2}, {1, 1}, {1, 1, 1, 1}, {1, 0}},
      {1, 12, 9, 3, {4, 7}, {2, 3}, {3, 1}, {2, 1}, {0, 1, 2, 0}, {2, 0}},
      {1, 127, 3, 1, {3, 5}, {3, 3}, {2, 2}, {1, 1}, {1, 0, 0, 1}, {1, 1}},
      {2, 2, 127, 1, {2, 3}, {3, 2}, {1, 2}, {1, 1}, {0, 0, 0, 0}, {0, 1}},
      {1, 13, 13, 13, {5, 5}, {3, 3}, {2, 2}, {1, 1}, {1, 1, 1, 1}, {1, 1}},
      {1, 5, 4, 1, {4, 3}, {3, 2}, {3, 3}, {3, 2}, {2, 1, 0, 3}, {2, 1}},
      {1, 1, 1, 1, {1, 1}, {1, 1}, {1, 1}, {1, 1}, {0, 0, 0, 0}, {0, 0}},
      {1, 2, 3, 1, {3, 3}, {3, 3}, {3, 2}, {1, 1}, {-1, 0, 0, -1}, {0, 0}},  // output_shape > full
      {1, 3, 4, 1, {3, 4, 5}, {3, 2, 3}, {2, 1, 2}, {1, 2, 1}, {1, 0, 1, 0, 1, 1}, {1, 0, 0}},
  };
}

// <conv(x), y> == <x, convT(y)> with the same weights: ConvTranspose is the adjoint of Conv. The
// ConvTranspose's input is the Conv's output, so its [C, OC/group, k] weights are the Conv's
// [OC, C/group, k] ones, and its pads are the Conv's, the end pad adjusted so that it reproduces the
// Conv's input size (negative where Conv's floor division skipped trailing inputs).
TEST(ConvTranspose, ReferenceIsTheAdjointOfConv) {
  std::mt19937 rng(7);
  for (const Case& k : cases()) {
    if (k.in.size() > 2) continue;  // the reference Conv is 1-D/2-D
    const ref::ConvTransposeShape t = shape_of(k);
    SCOPED_TRACE(describe(t));
    const bool two_d = t.spatial == 2;
    // Conv direction: input t.out (channels t.oc) -> output t.in (channels t.c).
    ref::Window2d win;
    ref::ConvShape cs{t.n, t.oc, 1, t.out[0], t.c, 1, t.in[0], t.group};
    win.kw = t.kernel[0], win.stride_w = t.stride[0], win.dil_w = t.dilation[0];
    win.pad_left = t.pad_begin[0];
    if (two_d) {
      cs = {t.n, t.oc, t.out[0], t.out[1], t.c, t.in[0], t.in[1], t.group};
      win = {t.kernel[0],   t.kernel[1],    t.stride[0],    t.stride[1], t.dilation[0],
             t.dilation[1], t.pad_begin[0], t.pad_begin[1], 0,           0};
    }
    // ref::conv2d reads only the leading pads; the output size t.in stands for the end pad.
    const std::size_t xs = static_cast<std::size_t>(t.n * t.oc * spatial_numel(t.out, t.spatial));
    const std::size_t ys = static_cast<std::size_t>(t.n * t.c * spatial_numel(t.in, t.spatial));
    const std::size_t ws =
        static_cast<std::size_t>(t.c * (t.oc / t.group) * spatial_numel(t.kernel, t.spatial));
    const auto x = small_ints(xs, rng), y = small_ints(ys, rng), w = small_ints(ws, rng);
    std::vector<float> conv_x(ys), convt_y(xs);
    ref::conv2d(cs, win, x.data(), w.data(), nullptr, conv_x.data());
    ref::conv_transpose(t, y.data(), w.data(), nullptr, convt_y.data());
    double lhs = 0.0, rhs = 0.0;
    for (std::size_t i = 0; i < ys; ++i) lhs += static_cast<double>(conv_x[i]) * y[i];
    for (std::size_t i = 0; i < xs; ++i) rhs += static_cast<double>(x[i]) * convt_y[i];
    EXPECT_EQ(lhs, rhs);
    EXPECT_NE(lhs, 0.0);  // a vacuous identity would not test anything
  }
}

// A hand-computed case: 1-D, one channel, stride 2, x = [1, 2], w = [1, 10, 100], bias 0.5.
// The full output is [1, 10, 100+2, 20, 200]; pads (1, 0) with output_padding 1 crop the first
// position and append one bias-only position.
TEST(ConvTranspose, ReferenceMatchesHandComputedStride2) {
  const Case k{1, 1, 1, 1, {2}, {3}, {2}, {1}, {1, 0}, {1}};
  const ref::ConvTransposeShape s = shape_of(k);
  ASSERT_EQ(s.out[0], 5);
  const float x[] = {1, 2}, w[] = {1, 10, 100}, b[] = {0.5f};
  float y[5];
  ref::conv_transpose(s, x, w, b, y);
  const float want[] = {10.5f, 102.5f, 20.5f, 200.5f, 0.5f};
  for (int i = 0; i < 5; ++i) EXPECT_EQ(y[i], want[i]) << i;
}

// oneDNN's deconvolution against the reference, with and without bias and a fused Relu. Tolerance:
// |fast - ref| <= 1e-5 * sum of |terms| of that output (+1e-7). Float accumulation of K terms errs
// by at most K * 2^-24 of that sum and typically by sqrt(K) * 2^-24 (~2e-6 for the largest K here,
// ~1100 terms), while one wrong or missing tap shifts an output by about sum/K >= 1e-3 of it.
TEST(ConvTranspose, OneDnnMatchesReference) {
  fast::DnnlEngine engine;
  std::mt19937 rng(11);
  for (const Case& k : cases()) {
    const ref::ConvTransposeShape s = shape_of(k);
    for (const bool with_bias : {false, true}) {
      for (const bool relu : {false, true}) {
        SCOPED_TRACE(describe(s) + (with_bias ? " bias" : "") + (relu ? " relu" : ""));
        const auto xs = static_cast<std::size_t>(s.n * s.c * spatial_numel(s.in, s.spatial));
        const auto ys = static_cast<std::size_t>(s.n * s.oc * spatial_numel(s.out, s.spatial));
        const auto ws = static_cast<std::size_t>(s.c * (s.oc / s.group) * spatial_numel(s.kernel, s.spatial));
        const auto x = uniform(xs, rng), w = uniform(ws, rng),
                   b = uniform(static_cast<std::size_t>(s.oc), rng);
        const float* bias = with_bias ? b.data() : nullptr;
        kernels::Activation act;
        if (relu) act.kind = kernels::Activation::Kind::kRelu;
        std::vector<float> want(ys), got(ys, 1e30f), mag(ys);
        ref::conv_transpose(s, x.data(), w.data(), bias, want.data());
        kernels::apply_activation_ref(act, want.data(), static_cast<std::int64_t>(ys));
        std::vector<float> ax(x), aw(w), ab(b);
        for (auto* v : {&ax, &aw, &ab}) {
          for (float& e : *v) e = std::fabs(e);
        }
        ref::conv_transpose(s, ax.data(), aw.data(), with_bias ? ab.data() : nullptr, mag.data());
        if (std::any_of(s.pad_begin.begin(), s.pad_begin.begin() + s.spatial, [](auto p) { return p < 0; })) {
          // oneDNN has no negative leading pad; the op runs the reference there, the wrapper refuses.
          EXPECT_THROW(fast::Deconv(engine, s, w.data(), bias, act), Error);
          continue;
        }
        fast::Deconv deconv(engine, s, w.data(), bias, act);
        deconv.run(x.data(), got.data());
        for (std::size_t i = 0; i < ys; ++i) {
          ASSERT_NEAR(got[i], want[i], 1e-5 * mag[i] + 1e-7) << "output " << i;
        }
      }
    }
  }
}

}  // namespace
}  // namespace aciq::testing
