// The AVX2 integer convolution and requantization against the reference kernels, bit for bit, on odd
// sizes (1, 13, 127 channels; strides, pads, dilation, groups, depthwise; batches), both 8-bit input
// types, operands at the ends of their ranges, and 1 and 2 threads.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "kernels/fast/integer_conv.hpp"
#include "kernels/reference/integer.hpp"

namespace aciq::testing {
namespace {

namespace ref = kernels::ref;
namespace fast = kernels::fast;

std::int64_t out_size(std::int64_t in, std::int64_t k, std::int64_t stride, std::int64_t dil, std::int64_t pb,
                      std::int64_t pe) {
  return (in + pb + pe - ((k - 1) * dil + 1)) / stride + 1;
}

struct Case {
  ref::ConvShape s;
  ref::Window2d win;
  std::string expect;  // implementation the packed kernel must choose
};

Case make(std::int64_t n, std::int64_t c, std::int64_t oc, std::int64_t group, std::int64_t h, std::int64_t w,
          std::int64_t kh, std::int64_t kw, std::int64_t stride, std::int64_t pad, std::int64_t dil,
          std::string expect) {
  Case cc;
  cc.win = {kh, kw, stride, stride, dil, dil, pad, pad, pad + 1, pad};
  cc.s = {
      n,    c, h, w, oc, out_size(h, kh, stride, dil, pad, pad + 1), out_size(w, kw, stride, dil, pad, pad),
      group};
  cc.expect = std::move(expect);
  return cc;
}

std::vector<Case> cases() {
  const std::string gemm = "int16 GEMM (AVX2)", direct = "direct (AVX2)";
  return {
      make(1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, gemm),        // one tap, one channel, one pixel
      make(1, 13, 13, 1, 7, 9, 3, 3, 1, 1, 1, gemm),      // odd channels and pixels, odd tap count
      make(3, 13, 127, 1, 5, 5, 3, 3, 2, 1, 1, gemm),     // batch, stride 2, 127 output channels
      make(1, 127, 13, 1, 6, 7, 1, 1, 1, 0, 1, gemm),     // 1x1 over 127 inputs
      make(2, 300, 7, 1, 4, 3, 3, 3, 1, 1, 1, gemm),      // 2700 taps: several cache blocks of pairs
      make(1, 12, 20, 4, 9, 8, 3, 3, 1, 2, 2, gemm),      // groups of 5 outputs, dilation
      make(1, 8, 24, 2, 11, 10, 5, 3, 2, 2, 1, gemm),     // rectangular kernel
      make(2, 13, 13, 13, 9, 11, 3, 3, 1, 1, 1, direct),  // depthwise
      make(1, 127, 127, 127, 6, 5, 3, 3, 2, 1, 1, direct),
      make(1, 10, 10, 10, 9, 9, 3, 3, 1, 2, 2, direct),  // depthwise, dilation 2
      make(2, 6, 6, 6, 11, 10, 5, 3, 2, 2, 1, direct),   // depthwise 5x3, stride 2
      make(1, 5, 5, 5, 9, 37, 3, 3, 2, 1, 1, direct),    // stride 2, 19 outputs a row: vectors + tail
      make(1, 4, 4, 4, 10, 20, 3, 3, 3, 1, 1, direct),   // stride 3: the scalar loop
      make(1, 14, 21, 7, 7, 7, 3, 3, 1, 1, 1, direct),   // 3 outputs per group
  };
}

// `byte_weights`: w_zero = 0, so w - w_zero fits int8 and the VNNI path may take the case.
template <class T>
void check_case(const Case& cc, fast::IntegerIsa isa, int threads, std::mt19937& rng, bool extremes,
                bool byte_weights) {
  const auto& s = cc.s;
  const std::int64_t icg = s.c / s.group, taps = icg * cc.win.kh * cc.win.kw;
  std::vector<T> x(static_cast<std::size_t>(s.n * s.c * s.h * s.w));
  std::vector<std::int32_t> w(static_cast<std::size_t>(s.oc * taps)), w_zero(static_cast<std::size_t>(s.oc));
  constexpr int lo = std::is_same_v<T, std::uint8_t> ? 0 : -128,
                hi = std::is_same_v<T, std::uint8_t> ? 255 : 127;
  std::uniform_int_distribution<int> xd(lo, hi), wd(-128, 127), zd(-5, 5);
  // Extremes: every shifted operand at +-255, the largest pair sums vpmaddwd can meet.
  for (auto& v : x) v = static_cast<T>(extremes ? (xd(rng) % 2 ? hi : lo) : xd(rng));
  for (auto& v : w) v = extremes ? (wd(rng) % 2 ? 127 : -128) : wd(rng);
  for (auto& z : w_zero) z = byte_weights ? 0 : extremes ? (zd(rng) % 2 ? 127 : -128) : zd(rng);
  const std::int32_t x_zero = extremes ? (lo == 0 ? 255 : -128) : (lo + hi) / 3;

  std::vector<std::int32_t> xw(x.begin(), x.end());
  std::vector<std::int32_t> want(static_cast<std::size_t>(s.n * s.oc * s.oh * s.ow));
  ref::conv2d_integer(s, cc.win, xw.data(), x_zero, w.data(), w_zero.data(), want.data());

  const fast::PackedIntegerConv packed(s, cc.win, w.data(), w_zero.data(), isa);
  bool fits = true;  // every w - w_zero in int8: the VNNI path's condition
  for (std::int64_t oc = 0; oc < s.oc; ++oc) {
    for (std::int64_t k = 0; k < taps; ++k)
      fits = fits && std::abs(w[oc * taps + k] - w_zero[oc] + 0.5) < 128;
  }
  const bool vnni = isa == fast::IntegerIsa::kAvx512Vnni && fits && cc.expect != "direct (AVX2)";
  EXPECT_EQ(packed.implementation(), vnni ? std::string("u8s8 GEMM (AVX-512 VNNI)") : cc.expect);
  std::vector<std::int32_t> got(want.size(), -1);
  ThreadPool pool(threads);
  packed.run(x.data(), std::is_same_v<T, std::uint8_t>, x_zero, got.data(), pool);
  ASSERT_EQ(got, want) << "n" << s.n << " c" << s.c << " oc" << s.oc << " g" << s.group << " " << s.h << "x"
                       << s.w << " k" << cc.win.kh << "x" << cc.win.kw << " threads " << threads << " "
                       << packed.implementation();
  // A per-channel constant left to the caller (the VNNI correction) gives the same sums once added.
  std::vector<std::int32_t> offset(static_cast<std::size_t>(s.oc), 7);
  std::vector<std::int32_t> deferred(want.size(), -1);
  packed.run(x.data(), std::is_same_v<T, std::uint8_t>, x_zero, deferred.data(), pool, offset.data());
  const std::int64_t pixels = s.oh * s.ow;
  for (std::size_t i = 0; i < deferred.size(); ++i) {
    const auto oc = static_cast<std::int64_t>(i) / pixels % s.oc;
    deferred[i] = static_cast<std::int32_t>(static_cast<std::uint32_t>(deferred[i]) +
                                            static_cast<std::uint32_t>(offset[oc]));
  }
  ASSERT_EQ(deferred, want) << "with the deferred offset, " << packed.implementation();
  if (!vnni) EXPECT_EQ(offset, std::vector<std::int32_t>(offset.size(), 0));
}

TEST(FastIntegerConv, EqualsTheReferenceBitForBit) {
  if (!fast::has_int16_madd()) GTEST_SKIP() << "no AVX2 on this CPU: the reference kernel runs instead";
  std::vector<fast::IntegerIsa> isas = {fast::IntegerIsa::kAvx2};
  if (fast::best_integer_isa() == fast::IntegerIsa::kAvx512Vnni)
    isas.push_back(fast::IntegerIsa::kAvx512Vnni);
  std::mt19937 rng(11);
  for (const Case& cc : cases()) {
    for (const auto isa : isas) {
      for (int threads : {1, 2}) {
        for (bool extremes : {false, true}) {
          for (bool byte_weights : {false, true}) {
            check_case<std::uint8_t>(cc, isa, threads, rng, extremes, byte_weights);
            check_case<std::int8_t>(cc, isa, threads, rng, extremes, byte_weights);
          }
        }
      }
    }
  }
  if (isas.size() == 1) GTEST_SKIP() << "no AVX-512 VNNI on this CPU: only the AVX2 paths were compared";
}

template <class T>
void check_requantize(std::mt19937& rng, bool with_bias) {
  const std::int64_t outer = 3, channels = 5, inner = 37;  // 37: four vectors of 8 and a scalar tail
  std::vector<std::int32_t> acc(static_cast<std::size_t>(outer * channels * inner));
  std::uniform_int_distribution<std::int32_t> ad(-200000, 200000);
  for (auto& a : acc) a = ad(rng);
  acc[0] = 2147483647;  // with a positive bias the sum wraps, as a register does
  acc[1] = -2147483647 - 1;
  std::vector<std::int32_t> bias = {1000, -7, 0, 123456, -99999};
  const std::vector<float> scale = {1.0f / 1024, 0.5f, 3e-4f, 1.0f / 3, 2e-3f};
  const bool u = std::is_same_v<T, std::uint8_t>;
  const std::int32_t y_zero = u ? 128 : -3, lo = u ? 0 : -128, hi = u ? 255 : 127;

  std::vector<std::int32_t> sums = acc;
  if (with_bias) {
    for (std::size_t i = 0; i < sums.size(); ++i) {
      const auto c = static_cast<std::int64_t>(i) / inner % channels;
      sums[i] = static_cast<std::int32_t>(static_cast<std::uint32_t>(sums[i]) +
                                          static_cast<std::uint32_t>(bias[c]));
    }
  }
  ref::requantize(outer, channels, inner, sums.data(), scale.data(), y_zero, lo, hi, sums.data());
  std::vector<T> got(acc.size());
  fast::requantize_to_8bit(outer, channels, inner, acc.data(), with_bias ? bias.data() : nullptr,
                           scale.data(), y_zero, lo, hi, got.data(), u);
  for (std::size_t i = 0; i < got.size(); ++i)
    ASSERT_EQ(static_cast<std::int32_t>(got[i]), sums[i]) << "at " << i;
}

TEST(FastIntegerConv, RequantizationEqualsTheReference) {
  std::mt19937 rng(5);
  for (bool with_bias : {false, true}) {
    check_requantize<std::uint8_t>(rng, with_bias);
    check_requantize<std::int8_t>(rng, with_bias);
  }
}

// Ties: 0.5-step products must round to even in the vector body as in the scalar tail.
TEST(FastIntegerConv, RequantizationRoundsTiesToEven) {
  const std::vector<std::int32_t> acc = {1, 3, 5, 7, -1, -3, -5, -7, 1};
  const std::vector<float> scale = {0.5f};
  std::vector<std::int8_t> got(acc.size());
  fast::requantize_to_8bit(1, 1, 9, acc.data(), nullptr, scale.data(), 0, -128, 127, got.data(), false);
  const std::vector<std::int8_t> want = {0, 2, 2, 4, 0, -2, -2, -4, 0};
  EXPECT_EQ(got, want);
}

}  // namespace
}  // namespace aciq::testing
