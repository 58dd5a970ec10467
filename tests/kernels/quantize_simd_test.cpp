// The Highway QuantizeLinear against the reference kernel, byte for byte: ties, saturation, NaN and
// infinities, and lengths that leave a scalar tail.
#include "kernels/fast/quantize_simd.hpp"

#include <gtest/gtest.h>
#include <hwy/targets.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "kernels/reference/quantize.hpp"

namespace aciq::testing {
namespace {

std::vector<float> tricky_values(std::size_t n) {
  std::mt19937 rng(3);
  std::normal_distribution<float> nd(0.0f, 40.0f);
  std::vector<float> x(n);
  for (auto& v : x) v = nd(rng);
  const float inf = std::numeric_limits<float>::infinity();
  const std::vector<float> special = {0.5f,   1.5f,  2.5f,   -0.5f, -1.5f, -2.5f,         127.5f, -128.5f,
                                      255.5f, 1e30f, -1e30f, inf,   -inf,  std::nanf(""), -0.0f,  1e-40f};
  for (std::size_t i = 0; i < special.size() && i < n; ++i) x[i * 3 % n] = special[i];
  return x;
}

template <class T>
void check(float scale, T zero_point, std::size_t n) {
  const std::vector<float> x = tricky_values(n);
  std::vector<T> want(n), got(n);
  kernels::ref::quantize_linear({1, 1, static_cast<std::int64_t>(n)}, x.data(), &scale, &zero_point,
                                want.data());
  kernels::fast::quantize_linear_simd(x.data(), scale, zero_point, got.data(), static_cast<std::int64_t>(n));
  for (std::size_t i = 0; i < n; ++i) {
    ASSERT_EQ(static_cast<int>(got[i]), static_cast<int>(want[i])) << "x = " << x[i] << " at " << i;
  }
}

TEST(QuantizeSimd, EqualsTheReferenceByteForByte) {
  for (const std::size_t n : {1, 7, 16, 61, 1000}) {
    check<std::uint8_t>(1.0f, 0, n);  // integral x / scale + 0.5 ties hit round-half-to-even directly
    check<std::uint8_t>(0.37f, 128, n);
    check<std::int8_t>(0.5f, -3, n);
    check<std::int8_t>(3.0f, 0, n);
  }
}

template <class T>
void check_dequantize(float scale, T zero_point, std::size_t n) {
  std::vector<T> x(n);
  for (std::size_t i = 0; i < n; ++i) x[i] = static_cast<T>(i * 37 + 11);  // every byte value, any order
  std::vector<float> want(n), got(n);
  kernels::ref::dequantize_linear({1, 1, static_cast<std::int64_t>(n)}, x.data(), &scale, &zero_point,
                                  want.data());
  kernels::fast::dequantize_linear_simd(x.data(), scale, zero_point, got.data(),
                                        static_cast<std::int64_t>(n));
  for (std::size_t i = 0; i < n; ++i) {
    ASSERT_EQ(std::memcmp(&got[i], &want[i], sizeof(float)), 0)
        << "x = " << static_cast<int>(x[i]) << ": " << got[i] << " vs " << want[i];
  }
}

TEST(DequantizeSimd, EqualsTheReferenceBitForBit) {
  for (const std::size_t n : {1, 7, 16, 61, 1000}) {
    check_dequantize<std::uint8_t>(0.0173f, 0, n);
    check_dequantize<std::uint8_t>(3.1e-5f, 255, n);
    check_dequantize<std::int8_t>(0.37f, -128, n);
    check_dequantize<std::int8_t>(1e30f, 5, n);  // products overflow to infinity alike
  }
}

// The fused residual kernel against the unfused reference steps: ref::dequantize_linear on both operands, a
// float add, the Relu written out (v > 0 or NaN keeps v, else 0), ref::quantize_linear. Every byte value in
// both operands, odd sizes, a scale large enough that inf - inf makes NaN (quantized to 0), every target.
template <class T>
void check_add(float sa, T za, float sb, T zb, float sy, T zy, bool relu, std::size_t n) {
  std::vector<T> a(n), b(n);
  for (std::size_t i = 0; i < n; ++i) {
    a[i] = static_cast<T>(i * 37 + 11);
    b[i] = static_cast<T>(i * 101 + 3);
  }
  const kernels::ref::QuantAxis flat{1, 1, static_cast<std::int64_t>(n)};
  std::vector<float> fa(n), fb(n);
  kernels::ref::dequantize_linear(flat, a.data(), &sa, &za, fa.data());
  kernels::ref::dequantize_linear(flat, b.data(), &sb, &zb, fb.data());
  for (std::size_t i = 0; i < n; ++i) {
    fa[i] += fb[i];
    if (relu && !(fa[i] > 0.0f || std::isnan(fa[i]))) fa[i] = 0.0f;
  }
  std::vector<T> want(n), got(n);
  kernels::ref::quantize_linear(flat, fa.data(), &sy, &zy, want.data());
  kernels::fast::add_quantized_simd(a.data(), sa, za, b.data(), sb, zb, relu, sy, zy, got.data(),
                                    static_cast<std::int64_t>(n));
  for (std::size_t i = 0; i < n; ++i) {
    ASSERT_EQ(static_cast<int>(got[i]), static_cast<int>(want[i]))
        << "a = " << static_cast<int>(a[i]) << ", b = " << static_cast<int>(b[i]) << " at " << i;
  }
}

TEST(AddQuantizedSimd, EqualsTheUnfusedReferenceSteps) {
  std::string tested;
  for (const std::int64_t target : hwy::SupportedAndGeneratedTargets()) {
    hwy::SetSupportedTargetsForTest(target);
    tested += std::string(hwy::TargetName(target)) + " ";
    SCOPED_TRACE(hwy::TargetName(target));
    for (const std::size_t n : {1, 7, 16, 61, 1000, 4099}) {
      for (const bool relu : {false, true}) {
        check_add<std::uint8_t>(0.031f, 120, 0.047f, 131, 0.059f, relu ? 0 : 128, relu, n);
        check_add<std::uint8_t>(0.5f, 0, 0.5f, 255, 1.0f, 7, relu, n);  // x.5 ties: half to even
        check_add<std::int8_t>(0.031f, -3, 0.047f, 7, 0.059f, -20, relu, n);
        check_add<std::int8_t>(1e30f, 0, -1e30f, 0, 1.0f, 5, relu, n);  // inf + -inf = NaN -> 0
      }
    }
  }
  hwy::SetSupportedTargetsForTest(0);
  std::printf("checked SIMD targets: %s\n", tested.c_str());
}

}  // namespace
}  // namespace aciq::testing
