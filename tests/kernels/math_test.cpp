// Reference elementwise math against closed forms: the functions the ONNX test data does not cover.
#include "kernels/reference/math.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "kernels/reference/movement.hpp"
#include "kernels/reference/reduce.hpp"

namespace aciq::kernels::ref {
namespace {

// Mish (opset 18) has no node test in Debian's libonnx-testdata. Values of x * tanh(ln(1 + e^x)) at
// x = -20, -1, 0, 1, 3, 20, evaluated in double with Python's math module (log1p, tanh).
TEST(MathKernels, MishMatchesClosedForm) {
  const float x[] = {-20.0f, -1.0f, 0.0f, 1.0f, 3.0f, 20.0f};
  const double want[] = {-4.122307240628762e-08, -0.30340146137410895, 0.0,
                         0.8650983882673103,     2.9865350049679575,   20.0};
  float y[6];
  math(MathOp::kMish, {}, x, y, 6);
  for (int i = 0; i < 6; ++i) EXPECT_NEAR(y[i], want[i], 2e-7 * std::max(1e-6, std::fabs(want[i]))) << x[i];
}

// The broadcast walker visits operands in numpy's order: [2,1,3] x [4,1] -> [2,4,3].
TEST(MathKernels, BroadcastOffsetsFollowNumpy) {
  const Shape out = broadcast_all({{2, 1, 3}, {4, 1}});
  ASSERT_EQ(out, (Shape{2, 4, 3}));
  std::vector<std::int64_t> a, b;
  for_each_broadcast(out, {broadcast_strides({2, 1, 3}, 3), broadcast_strides({4, 1}, 3)},
                     [&](std::int64_t, const std::int64_t* off) {
                       a.push_back(off[0]);
                       b.push_back(off[1]);
                     });
  ASSERT_EQ(a.size(), 24u);
  for (std::int64_t i = 0; i < 2; ++i) {
    for (std::int64_t j = 0; j < 4; ++j) {
      for (std::int64_t k = 0; k < 3; ++k) {
        EXPECT_EQ(a[(i * 4 + j) * 3 + k], i * 3 + k);
        EXPECT_EQ(b[(i * 4 + j) * 3 + k], j);
      }
    }
  }
}

// Edge values found in review: INT_MIN % -1 (traps on x86 if computed), LogSumExp of large inputs
// (overflows exp unless shifted by the maximum), slices with extreme steps (overflowing count formulas).
TEST(MathKernels, EdgeValuesDoNotOverflowOrTrap) {
  const auto a =
      Tensor::from_i64({2}, std::vector<std::int64_t>{std::numeric_limits<std::int64_t>::min(), -7});
  const auto b = Tensor::from_i64({2}, std::vector<std::int64_t>{-1, 3});
  EXPECT_EQ(mod(a, b, false).to_i64_vector(), (std::vector<std::int64_t>{0, 2}));  // Python: -7 % 3 == 2
  EXPECT_EQ(mod(a, b, true).to_i64_vector(), (std::vector<std::int64_t>{0, -1}));  // C fmod sign
  const auto big = Tensor::from_f32({2}, std::vector<float>{1000.0f, 1000.0f});
  const Tensor lse = reduce(ReduceOp::kLogSumExp, big, {true}, false);
  EXPECT_NEAR(lse.data<float>()[0], 1000.0 + std::log(2.0), 1e-3);
  const SliceAxis up =
      slice_axis(10, 0, std::numeric_limits<std::int64_t>::max(), std::numeric_limits<std::int64_t>::max());
  EXPECT_EQ(up.count, 1);
  const SliceAxis down =
      slice_axis(10, 9, std::numeric_limits<std::int64_t>::min(), std::numeric_limits<std::int64_t>::min());
  EXPECT_EQ(down.count, 1);
  EXPECT_EQ(down.start, 9);
  EXPECT_EQ(slice_axis(10, -1, -11, -3).count, 4);  // 9, 6, 3, 0
}

}  // namespace
}  // namespace aciq::kernels::ref
