// ONNX integer grids against hand-worked ONNX Runtime compute_scale_zp results and QuantizeLinear ties.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "aciq/core.hpp"
#include "aciq/quant.hpp"

namespace aciq::testing {
namespace {

TEST(IntGrid, WindowExcludingZeroIsWidenedToZero) {
  // [2, 5] -> [0, 5]: scale 5/255, zero point 0.
  const auto g = quant::onnx_asymmetric_grid(2.0, 5.0, 0, 255);
  EXPECT_EQ(g.scale, static_cast<float>(5.0 / 255.0));
  EXPECT_EQ(g.zero_point, 0);
  // [-3, -1] -> [-3, 0]: the zero point lands on qmax.
  const auto n = quant::onnx_asymmetric_grid(-3.0, -1.0, 0, 255);
  EXPECT_EQ(n.scale, static_cast<float>(3.0 / 255.0));
  EXPECT_EQ(n.zero_point, 255);
}

TEST(IntGrid, ZeroPointRoundsHalfToEven) {
  // [-1, 3] over 255 steps: -lo/scale = 255/4 = 63.75 -> 64.
  EXPECT_EQ(quant::onnx_asymmetric_grid(-1.0, 3.0, 0, 255).zero_point, 64);
  // [-2.5, 252.5]: scale exactly 1, -lo/scale = 2.5 -> 2 (half to even), not 3.
  const auto g = quant::onnx_asymmetric_grid(-2.5, 252.5, 0, 255);
  EXPECT_EQ(g.scale, 1.0f);
  EXPECT_EQ(g.zero_point, 2);
  // [-3.5, 251.5] -> 3.5 -> 4.
  EXPECT_EQ(quant::onnx_asymmetric_grid(-3.5, 251.5, 0, 255).zero_point, 4);
  // A 4-bit grid: [-1, 14] over 15 steps: scale 1, zero point 1.
  const auto four = quant::onnx_asymmetric_grid(-1.0, 14.0, 0, 15);
  EXPECT_EQ(four.scale, 1.0f);
  EXPECT_EQ(four.zero_point, 1);
  EXPECT_DOUBLE_EQ(four.lo(), -1.0);
  EXPECT_DOUBLE_EQ(four.hi(), 14.0);
}

TEST(IntGrid, DegenerateWindowGetsUnitScale) {
  const auto g = quant::onnx_asymmetric_grid(0.0, 0.0, 0, 255);
  EXPECT_EQ(g.scale, 1.0f);
  EXPECT_EQ(g.zero_point, 0);
  EXPECT_THROW(quant::onnx_asymmetric_grid(1.0, 0.0, 0, 255), Error);
  EXPECT_THROW(quant::onnx_asymmetric_grid(0.0, std::numeric_limits<double>::infinity(), 0, 255), Error);
}

TEST(IntGrid, IntegerRanges) {
  EXPECT_EQ(quant::int_range(8, false, false), (std::pair<std::int32_t, std::int32_t>{0, 255}));
  EXPECT_EQ(quant::int_range(8, true, false), (std::pair<std::int32_t, std::int32_t>{-128, 127}));
  EXPECT_EQ(quant::int_range(8, true, true), (std::pair<std::int32_t, std::int32_t>{-127, 127}));
  EXPECT_EQ(quant::int_range(4, false, false), (std::pair<std::int32_t, std::int32_t>{0, 15}));
  EXPECT_EQ(quant::int_range(4, true, true), (std::pair<std::int32_t, std::int32_t>{-7, 7}));
}

TEST(IntGrid, QuantizeLinearTiesSaturationAndNaN) {
  quant::IntGrid g;  // scale 1, zero point 0, [0, 255]
  g.zero_point = 10;
  // x / scale = 0.5, 1.5, 2.5, -0.5 round to even: 0, 2, 2, -0 -> +10.
  EXPECT_EQ(quant::quantize_linear(0.5f, g), 10);
  EXPECT_EQ(quant::quantize_linear(1.5f, g), 12);
  EXPECT_EQ(quant::quantize_linear(2.5f, g), 12);
  EXPECT_EQ(quant::quantize_linear(-0.5f, g), 10);
  EXPECT_EQ(quant::quantize_linear(-20.0f, g), 0);  // saturates at qmin
  EXPECT_EQ(quant::quantize_linear(1e9f, g), 255);  // and at qmax
  EXPECT_EQ(quant::quantize_linear(std::nanf(""), g), 0);
  EXPECT_EQ(quant::dequantize_linear(12, g), 2.0f);
  const auto s = quant::onnx_symmetric_grid(1.27, 127);
  EXPECT_EQ(s.scale, static_cast<float>(0.01));
  EXPECT_EQ(s.zero_point, 0);
  EXPECT_EQ(quant::quantize_linear(-5.0f, s), -127);
}

TEST(IntGrid, FakeQuantIsQuantizeThenDequantizeWithPostOp) {
  const auto g = quant::onnx_asymmetric_grid(-1.0, 3.0, 0, 15);
  std::vector<float> x{-2.0f, -0.3f, 0.0f, 0.26f, 1.0f, 2.9f, 7.0f};
  std::vector<float> want;
  for (float v : x) want.push_back(std::max(0.0f, quant::dequantize_linear(quant::quantize_linear(v, g), g)));
  quant::fake_quant_onnx(x, g, quant::PostOp::kRelu);
  EXPECT_EQ(x, want);
  EXPECT_EQ(quant::dequantize_linear(quant::quantize_linear(0.0f, g), g), 0.0f);  // zero is exact
}

}  // namespace
}  // namespace aciq::testing
