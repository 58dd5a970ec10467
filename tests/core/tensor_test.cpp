// Tests for Tensor storage and shape arithmetic limits.
#include <gtest/gtest.h>

#include "aciq/core.hpp"

namespace aciq {
namespace {

TEST(Tensor, ZeroInitializedAndShared) {
  Tensor t(DType::kFloat32, {2, 3});
  EXPECT_EQ(t.numel(), 6);
  for (float v : t.f32()) EXPECT_EQ(v, 0.0f);
  Tensor alias = t;
  alias.f32()[4] = 2.5f;
  EXPECT_EQ(t.f32()[4], 2.5f);
  Tensor copy = t.clone();
  copy.f32()[4] = 1.0f;
  EXPECT_EQ(t.f32()[4], 2.5f);
}

TEST(Tensor, RefusesNegativeAndHugeShapes) {
  EXPECT_THROW(Tensor(DType::kFloat32, {-1, 4}), Error);
  EXPECT_THROW(Tensor(DType::kFloat32, {std::int64_t{1} << 20, std::int64_t{1} << 20}), Error);
  EXPECT_THROW(shape_numel(Shape{std::int64_t{1} << 40}), Error);
}

TEST(Tensor, ReshapeChecksCount) {
  Tensor t(DType::kInt64, {4});
  EXPECT_EQ(t.reshaped({2, 2}).shape(), (Shape{2, 2}));
  EXPECT_THROW((void)t.reshaped({3}), Error);
}

}  // namespace
}  // namespace aciq
