// Fast elementwise, transpose and reduction kernels against their references on odd sizes (1, 13, 127
// hit every remainder), and the convolution layouts that used to fall back to oneDNN's ref:any.
#include <gtest/gtest.h>

#include <array>
#include <cstring>
#include <random>

#include "kernels/fast/dnnl_kernels.hpp"
#include "kernels/fast/elementwise.hpp"
#include "kernels/fast/layout.hpp"
#include "kernels/reference/math.hpp"
#include "kernels/reference/reduce.hpp"
#include "kernels/reference/reference.hpp"

namespace aciq::kernels {
namespace {

Tensor random_tensor(const Shape& s, unsigned seed, DType d = DType::kFloat32) {
  Tensor t(d, s);
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, 2.0f);
  for (std::int64_t i = 0; i < t.numel(); ++i) {
    const float v = dist(rng);
    switch (d) {
      case DType::kFloat32: t.data<float>()[i] = v; break;
      case DType::kInt64: t.data<std::int64_t>()[i] = static_cast<std::int64_t>(v * 1000); break;
      default: t.data<std::uint8_t>()[i] = static_cast<std::uint8_t>(rng()); break;
    }
  }
  return t;
}

bool same_bits(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && a.dtype() == b.dtype() && std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0;
}

TEST(FastElementwise, BroadcastBinaryIsBitIdenticalToReference) {
  ThreadPool pool(2);
  const std::vector<std::pair<Shape, Shape>> cases = {{{13}, {13}},
                                                      {{127, 13}, {13}},
                                                      {{127, 13}, {127, 1}},
                                                      {{1, 56, 56, 96}, {96}},
                                                      {{1, 56, 56, 96}, {1, 56, 56, 1}},
                                                      {{2, 13, 7, 7}, {1, 13, 1, 1}},
                                                      {{1}, {3, 127}},
                                                      {{3, 1, 5}, {1, 4, 1}},
                                                      {{}, {13, 13}},
                                                      {{2, 3, 127, 129}, {2, 1, 127, 1}}};
  unsigned seed = 1;
  for (const auto& [sa, sb] : cases) {
    const Tensor a = random_tensor(sa, seed++), b = random_tensor(sb, seed++);
    for (auto op : {ref::BinaryOp::kAdd, ref::BinaryOp::kSub, ref::BinaryOp::kMul, ref::BinaryOp::kDiv}) {
      const Tensor want = ref::binary(op, a, b);
      Tensor got(DType::kFloat32, want.shape());
      fast::binary_broadcast(op, a, b, got, pool);
      EXPECT_TRUE(same_bits(got, want))
          << shape_str(sa) << " op " << static_cast<int>(op) << " " << shape_str(sb);
      Tensor swapped(DType::kFloat32, want.shape());
      fast::binary_broadcast(op, b, a, swapped, pool);
      EXPECT_TRUE(same_bits(swapped, ref::binary(op, b, a))) << shape_str(sb) << " with " << shape_str(sa);
    }
  }
}

// Float std:: functions against the double reference: within 4 float ulps of the reference's value
// (the libm float functions are faithfully rounded or better); exact ops bit-identical.
TEST(FastElementwise, MathAgreesWithReference) {
  ThreadPool pool(2);
  for (std::int64_t n : {1, 13, 127, 40000}) {
    Tensor x = random_tensor({n}, static_cast<unsigned>(n));
    Tensor pos(DType::kFloat32, {n});
    for (std::int64_t i = 0; i < n; ++i) pos.data<float>()[i] = std::fabs(x.data<float>()[i]) + 1e-3f;
    for (auto op : {ref::MathOp::kErf, ref::MathOp::kExp, ref::MathOp::kTanh, ref::MathOp::kLog,
                    ref::MathOp::kSqrt, ref::MathOp::kSoftplus, ref::MathOp::kMish, ref::MathOp::kAbs,
                    ref::MathOp::kFloor, ref::MathOp::kRound, ref::MathOp::kElu}) {
      const Tensor& in = op == ref::MathOp::kLog || op == ref::MathOp::kSqrt ? pos : x;
      std::vector<float> want(n), got(n);
      ref::MathParams p;
      p.alpha = 1.0f;
      ref::math(op, p, in.data<float>(), want.data(), n);
      fast::math(op, p, in.data<float>(), got.data(), n, pool);
      const bool exact = op == ref::MathOp::kAbs || op == ref::MathOp::kFloor || op == ref::MathOp::kRound ||
                         op == ref::MathOp::kSqrt || op == ref::MathOp::kElu;
      for (std::int64_t i = 0; i < n; ++i) {
        if (exact) {
          ASSERT_EQ(got[i], want[i]) << static_cast<int>(op) << " at " << in.data<float>()[i];
        } else {
          const float ulp = std::nextafter(std::fabs(want[i]), INFINITY) - std::fabs(want[i]);
          ASSERT_LE(std::fabs(got[i] - want[i]), 4 * ulp + 1e-30f)
              << static_cast<int>(op) << " at " << in.data<float>()[i];
        }
      }
    }
  }
}

TEST(FastElementwise, UnaryAgreesWithReference) {
  ThreadPool pool(2);
  for (std::int64_t n : {1, 13, 127, 40000}) {
    const Tensor x = random_tensor({n}, static_cast<unsigned>(n) + 7);
    ref::UnaryParams p;
    p.alpha = 0.2f;
    p.beta = 0.5f;
    for (auto op : {ref::UnaryOp::kSigmoid, ref::UnaryOp::kHardSigmoid, ref::UnaryOp::kHardSwish}) {
      std::vector<float> want(n), got(n);
      ref::unary(op, p, x.data<float>(), want.data(), n);
      fast::unary(op, p, x.data<float>(), got.data(), n, pool);
      for (std::int64_t i = 0; i < n; ++i) {
        if (op != ref::UnaryOp::kSigmoid) {
          ASSERT_EQ(got[i], want[i]);
        } else {
          const float ulp = std::nextafter(std::fabs(want[i]), INFINITY) - std::fabs(want[i]);
          ASSERT_LE(std::fabs(got[i] - want[i]), 4 * ulp) << x.data<float>()[i];
        }
      }
    }
  }
}

// The SIMD sigmoid on every remainder length, at the extremes (saturation to 1, outputs below 1e-38
// flushed to 0, NaN passed through), against the double reference.
TEST(FastElementwise, SimdSigmoidEdges) {
  ThreadPool pool(1);
  const std::vector<float> x = {-1000.0f, -100.0f, -88.5f, -87.0f, -20.0f, -1e-8f, 0.0f, 1e-8f, 3.0f,
                                17.0f,    20.0f,   100.0f, 1e30f,  NAN,    -0.0f,  0.5f, -0.5f};
  std::vector<float> want(x.size()), got(x.size());
  ref::unary(ref::UnaryOp::kSigmoid, {}, x.data(), want.data(), static_cast<std::int64_t>(x.size()));
  for (std::size_t len = 1; len <= x.size(); ++len) {
    fast::unary(ref::UnaryOp::kSigmoid, {}, x.data(), got.data(), static_cast<std::int64_t>(len), pool);
    for (std::size_t i = 0; i < len; ++i) {
      if (std::isnan(want[i])) {
        EXPECT_TRUE(std::isnan(got[i])) << x[i];
        continue;
      }
      const float ulp = std::nextafter(std::fabs(want[i]), INFINITY) - std::fabs(want[i]);
      EXPECT_LE(std::fabs(got[i] - want[i]), std::max(4 * ulp, 1e-38f)) << x[i];
    }
  }
}

TEST(FastElementwise, PowScalarIsBitIdenticalToReference) {
  ThreadPool pool(2);
  const Tensor x = random_tensor({127, 13}, 5);
  for (float e : {2.0f, 3.0f, 0.5f, -1.0f}) {
    const Tensor want = ref::pow(x, Tensor::from_f32({}, std::vector<float>{e}));
    Tensor got(DType::kFloat32, x.shape());
    fast::pow_scalar(x.data<float>(), e, got.data<float>(), x.numel(), pool);
    EXPECT_TRUE(same_bits(got, want)) << "exponent " << e;
  }
}

TEST(FastLayout, TransposeIsBitIdenticalToReference) {
  ThreadPool pool(2);
  const std::vector<std::pair<Shape, std::vector<std::int64_t>>> cases = {
      {{13, 127}, {1, 0}},           {{1, 96, 56, 56}, {0, 2, 3, 1}}, {{1, 56, 56, 96}, {0, 3, 1, 2}},
      {{2, 3, 5, 7}, {3, 1, 0, 2}},  {{1, 13, 1}, {2, 0, 1}},         {{127}, {0}},
      {{4, 1, 13, 3}, {1, 0, 2, 3}}, {{3, 4, 5}, {0, 1, 2}}};
  for (DType d : {DType::kFloat32, DType::kInt64, DType::kUInt8}) {
    unsigned seed = 1;
    for (const auto& [s, perm] : cases) {
      const Tensor x = random_tensor(s, seed++, d);
      EXPECT_TRUE(same_bits(fast::transpose(x, perm, pool), ref::transpose(x, perm)))
          << shape_str(s) << " " << dtype_name(d);
    }
  }
}

TEST(FastLayout, SliceIsBitIdenticalToReference) {
  ThreadPool pool(2);
  const Shape s{3, 13, 127, 5};
  const std::vector<std::vector<std::array<std::int64_t, 3>>> cases = {
      {{0, 3, 1}, {0, 13, 1}, {0, 127, 1}, {0, 5, 1}},
      {{1, 2, 1}, {2, 11, 3}, {0, 127, 2}, {4, -6, -1}},
      {{0, 3, 1}, {12, -14, -2}, {126, -128, -5}, {1, 4, 1}},
      {{0, 3, 1}, {5, 5, 1}, {0, 127, 1}, {0, 5, 1}},
      {{2, 3, 1}, {0, 13, 1}, {64, 65, 1}, {0, 5, 1}}};
  for (DType d : {DType::kFloat32, DType::kInt64, DType::kUInt8}) {
    const Tensor x = random_tensor(s, 11, d);
    for (const auto& c : cases) {
      std::vector<ref::SliceAxis> axes;
      for (std::size_t k = 0; k < 4; ++k) axes.push_back(ref::slice_axis(s[k], c[k][0], c[k][1], c[k][2]));
      const Tensor want = ref::slice(x, axes);
      Tensor got(d, want.shape());
      fast::slice_into(x, axes, got, pool);
      EXPECT_TRUE(same_bits(got, want)) << shape_str(want.shape()) << " " << dtype_name(d);
    }
  }
}

TEST(FastLayout, ContiguousReductionsAreBitIdenticalToReference) {
  ThreadPool pool(2);
  const Shape s{3, 13, 127, 5};
  const Tensor x = random_tensor(s, 9);
  const std::vector<std::vector<bool>> contiguous = {{false, false, false, true},
                                                     {false, true, false, false},
                                                     {false, true, true, false},
                                                     {true, true, true, true},
                                                     {true, false, false, false}};
  for (const auto& red : contiguous) {
    for (auto op : {ref::ReduceOp::kMean, ref::ReduceOp::kSum, ref::ReduceOp::kSumSquare}) {
      for (bool keep : {true, false}) {
        const auto got = fast::reduce_contiguous(op, x, red, keep, pool);
        ASSERT_TRUE(got.has_value());
        EXPECT_TRUE(same_bits(*got, ref::reduce(op, x, red, keep)));
      }
    }
  }
  // Axes 1 and 3 with axis 2 kept in between: not one run, left to the reference.
  EXPECT_FALSE(
      fast::reduce_contiguous(ref::ReduceOp::kMean, x, {false, true, false, true}, true, pool).has_value());
  EXPECT_FALSE(
      fast::reduce_contiguous(ref::ReduceOp::kMax, x, {false, false, false, true}, true, pool).has_value());
}

// A plain source into a blocked destination whose input channels do not fill whole blocks (MobileNetV2's
// 24 channels under AVX-512's 16-channel blocks) and a plain depthwise convolution: oneDNN's first choice
// for both is slow (ref:any, im2col gemm); Conv2d must pick an optimized kernel and still compute the
// reference's result.
TEST(FastConv, SlowLayoutsGetAnOptimizedKernel) {
  fast::DnnlEngine env;
  const int block = env.channel_block();
  struct Case {
    std::int64_t c, oc, group;
    int dst_block;
  };
  for (const Case cs : {Case{block + block / 2, 2 * block, 1, block}, Case{13, 13, 13, 0},
                        Case{2 * block, 2 * block, 2 * block, 0}}) {
    ref::ConvShape s{1, cs.c, 13, 13, cs.oc, 13, 13, cs.group};
    ref::Window2d win{3, 3, 1, 1, 1, 1, 1, 1, 1, 1};
    const Tensor x = random_tensor({1, cs.c, 13, 13}, 3);
    const Tensor w = random_tensor({cs.oc, cs.c / cs.group, 3, 3}, 4);
    const Tensor b = random_tensor({cs.oc}, 5);
    fast::Conv2d conv(env, s, win, w.data<float>(), b.data<float>(), {}, 0, cs.dst_block);
    EXPECT_EQ(conv.implementation().rfind("ref", 0), std::string::npos) << conv.implementation();
    if (cs.group > 1)
      EXPECT_EQ(conv.implementation().find("gemm"), std::string::npos) << conv.implementation();
    std::vector<float> want(static_cast<std::size_t>(cs.oc * 169)), got(want.size());
    ref::conv2d(s, win, x.data<float>(), w.data<float>(), b.data<float>(), want.data());
    conv.run(x.data<float>(), got.data());
    for (std::int64_t c = 0; c < cs.oc; ++c) {
      for (std::int64_t i = 0; i < 169; ++i) {
        // Blocked output: [C / block][H][W][block].
        const std::int64_t at = cs.dst_block ? ((c / block) * 169 + i) * block + c % block : c * 169 + i;
        ASSERT_NEAR(got[at], want[c * 169 + i], 1e-4f * (1.0f + std::fabs(want[c * 169 + i])))
            << c << "," << i;
      }
    }
  }
}

}  // namespace
}  // namespace aciq::kernels
