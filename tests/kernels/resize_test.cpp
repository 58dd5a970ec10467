// Resize/Upsample tests: the reference kernel against hand-computed values, and the op's attribute forms.
#include "kernels/reference/resize.hpp"

#include <gtest/gtest.h>

#include <numeric>
#include <random>

#include "aciq/graph.hpp"
#include "aciq/runtime.hpp"

namespace aciq::kernels::ref {
namespace {

// Tables for every axis of `in` resized to `out` with scale out/in (roi [0, 1]).
std::vector<ResizeAxis> tables(const ResizeParams& p, const std::vector<std::int64_t>& in,
                               const std::vector<std::int64_t>& out) {
  std::vector<ResizeAxis> t;
  for (std::size_t d = 0; d < in.size(); ++d) {
    t.push_back(resize_axis(p, in[d], out[d], static_cast<double>(out[d]) / static_cast<double>(in[d])));
  }
  return t;
}

std::vector<float> run(const std::vector<ResizeAxis>& t, const std::vector<float>& x, float ev = 0.0f) {
  std::int64_t n = 1;
  for (const auto& a : t) n *= a.out;
  std::vector<float> y(static_cast<std::size_t>(n), -1.0f);
  resize(t, ev, x.data(), y.data());
  return y;
}

std::vector<float> random(std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

TEST(ResizeKernel, BilinearHalfPixelMatchesHandValues) {
  // PyTorch's interpolate(mode="bilinear", align_corners=False) of [[1, 2], [3, 4]] to 4x4.
  ResizeParams p{.mode = ResizeMode::kLinear, .coord = ResizeCoord::kHalfPixel};
  const auto y = run(tables(p, {1, 1, 2, 2}, {1, 1, 4, 4}), {1, 2, 3, 4});
  const std::vector<float> want = {1.0f, 1.25f, 1.75f, 2.0f, 1.5f, 1.75f, 2.25f, 2.5f,
                                   2.5f, 2.75f, 3.25f, 3.5f, 3.0f, 3.25f, 3.75f, 4.0f};
  ASSERT_EQ(y.size(), want.size());
  for (std::size_t i = 0; i < y.size(); ++i) EXPECT_FLOAT_EQ(y[i], want[i]) << i;
}

TEST(ResizeKernel, NearestIntegerUpscaleRepeatsPixels) {
  const std::vector<std::int64_t> in = {2, 3, 4, 5}, out = {2, 3, 12, 10};
  const auto x = random(2 * 3 * 4 * 5, 1);
  // The modes under which integer upscaling is pixel repetition (half_pixel + floor is not).
  const std::vector<std::pair<ResizeCoord, ResizeNearest>> modes = {
      {ResizeCoord::kHalfPixel, ResizeNearest::kRoundPreferFloor},
      {ResizeCoord::kHalfPixel, ResizeNearest::kRoundPreferCeil},
      {ResizeCoord::kAsymmetric, ResizeNearest::kFloor}};
  for (const auto& [coord, nearest] : modes) {
    ResizeParams p{.mode = ResizeMode::kNearest, .coord = coord, .nearest = nearest};
    const auto y = run(tables(p, in, out), x);
    for (std::int64_t nc = 0; nc < 6; ++nc) {
      for (std::int64_t h = 0; h < 12; ++h) {
        for (std::int64_t w = 0; w < 10; ++w) {
          ASSERT_EQ(y[static_cast<std::size_t>((nc * 12 + h) * 10 + w)],
                    x[static_cast<std::size_t>((nc * 4 + h / 3) * 5 + w / 2)]);
        }
      }
    }
  }
}

TEST(ResizeKernel, AlignCornersHitsBothEnds) {
  // Data equal to its index: the output is the source coordinate, o * 3 / 6.
  ResizeParams p{.mode = ResizeMode::kLinear, .coord = ResizeCoord::kAlignCorners};
  const auto y = run(tables(p, {4}, {7}), {0, 1, 2, 3});
  for (std::size_t o = 0; o < 7; ++o) EXPECT_FLOAT_EQ(y[o], 0.5f * static_cast<float>(o));
}

TEST(ResizeKernel, HalfPixelSymmetricCentresTheRoundedOutput) {
  // in 4, scale 0.6: output floor(2.4) = 2; offset 2 * (1 - 2 / 2.4) = 1/3.
  ResizeParams p{.mode = ResizeMode::kLinear, .coord = ResizeCoord::kHalfPixelSymmetric};
  std::vector<ResizeAxis> t{resize_axis(p, 4, 2, 0.6)};
  const auto y = run(t, {0, 1, 2, 3});
  EXPECT_NEAR(y[0], 1.0 / 3 + 0.5 / 0.6 - 0.5, 1e-6);
  EXPECT_NEAR(y[1], 1.0 / 3 + 1.5 / 0.6 - 0.5, 1e-6);
}

TEST(ResizeKernel, TfCropAndResizeExtrapolatesOffTheInput) {
  // roi [0.5, 1.5] of a 5-sample axis at 5 outputs: sources 2, 3, 4, then 5 and 6 fall off the input.
  ResizeParams p{.mode = ResizeMode::kLinear, .coord = ResizeCoord::kTfCropAndResize};
  std::vector<ResizeAxis> t{resize_axis(p, 5, 5, 1.0, 0.5, 1.5)};
  const auto y = run(t, {0, 1, 2, 3, 4}, 7.0f);
  const std::vector<float> want = {2, 3, 4, 7, 7};
  for (std::size_t o = 0; o < 5; ++o) EXPECT_FLOAT_EQ(y[o], want[o]) << o;
}

TEST(ResizeKernel, GenericPathMatchesAxisByAxisPasses) {
  // Resizing all three axes at once (the odometer path) equals three one-axis resizes (the plane
  // path), for the separable linear and cubic kernels.
  const std::vector<std::int64_t> in = {2, 3, 4}, out = {3, 5, 7};
  const auto x = random(24, 2);
  for (auto mode : {ResizeMode::kLinear, ResizeMode::kCubic}) {
    ResizeParams p{
        .mode = mode, .coord = ResizeCoord::kHalfPixel, .exclude_outside = mode == ResizeMode::kCubic};
    const auto all = run(tables(p, in, out), x);
    std::vector<std::int64_t> cur = in;
    std::vector<float> v = x;
    for (std::size_t d = 3; d-- > 0;) {
      std::vector<std::int64_t> next = cur;
      next[d] = out[d];
      v = run(tables(p, cur, next), v);
      cur = next;
    }
    ASSERT_EQ(all.size(), v.size());
    for (std::size_t i = 0; i < v.size(); ++i) EXPECT_NEAR(all[i], v[i], 1e-5) << i;
  }
}

TEST(ResizeKernel, UnchangedAxesAreIdentity) {
  ResizeParams p{.mode = ResizeMode::kCubic, .coord = ResizeCoord::kAlignCorners};
  EXPECT_TRUE(resize_axis(p, 6, 6, 1.0).identity);
  EXPECT_FALSE(resize_axis(p, 6, 12, 2.0).identity);
  const auto t = tables(p, {2, 3, 4, 4}, {2, 3, 8, 8});
  EXPECT_EQ(resize_blocks(t), 6);
}

}  // namespace
}  // namespace aciq::kernels::ref

namespace aciq::runtime {
namespace {

graph::Attribute str_attr(const std::string& s) {
  graph::Attribute a;
  a.kind = graph::Attribute::Kind::kString;
  a.s = s;
  return a;
}

// x[1,1,h,w] -> op -> y, with the given extra inputs as initializers.
graph::Graph one_node(const std::string& op, std::int64_t opset, Shape x_shape,
                      std::vector<std::pair<std::string, Tensor>> extra,
                      std::map<std::string, graph::Attribute> attrs) {
  graph::Graph g;
  g.source = "resize_test";
  g.opset = opset;
  g.inputs.push_back({"x", x_shape, DType::kFloat32});
  graph::Node n;
  n.name = "n";
  n.op_type = op;
  n.inputs.push_back("x");
  for (auto& [name, t] : extra) {
    n.inputs.push_back(name);
    if (!name.empty()) g.initializers[name] = t;
  }
  n.outputs = {"y"};
  n.attrs = std::move(attrs);
  g.nodes.push_back(n);
  g.outputs = {"y"};
  return g;
}

Tensor iota(Shape s) {
  std::vector<float> v(static_cast<std::size_t>(shape_numel(s)));
  std::iota(v.begin(), v.end(), 0.0f);
  return Tensor::from_f32(s, v);
}

TEST(ResizeOp, Upsample7ReadsScalesAttribute) {
  graph::Attribute scales;
  scales.kind = graph::Attribute::Kind::kFloats;
  scales.floats = {1, 1, 2, 3};
  Context ctx(1);
  Executor exec(
      one_node("Upsample", 7, {1, 1, 2, 2}, {}, {{"mode", str_attr("nearest")}, {"scales", scales}}), ctx,
      {.backend = Backend::kReference});
  const auto y = exec.run({iota({1, 1, 2, 2})});
  ASSERT_EQ(y[0].shape(), (Shape{1, 1, 4, 6}));
  const std::vector<float> want = {0, 0, 0, 1, 1, 1, 0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3, 2, 2, 2, 3, 3, 3};
  for (std::size_t i = 0; i < want.size(); ++i) EXPECT_EQ(y[0].f32()[i], want[i]) << i;
}

TEST(ResizeOp, Opset18AxesWithAspectRatioPolicy) {
  graph::Attribute axes;
  axes.kind = graph::Attribute::Kind::kInts;
  axes.ints = {-1, 2};
  const std::vector<std::int64_t> sizes = {6, 1};  // W, H
  Context ctx(1);
  Executor exec(one_node("Resize", 18, {1, 1, 4, 8},
                         {{"", Tensor()}, {"", Tensor()}, {"sizes", Tensor::from_i64({2}, sizes)}},
                         {{"axes", axes}, {"keep_aspect_ratio_policy", str_attr("not_larger")}}),
                ctx, {.backend = Backend::kReference});
  // Scales W 0.75, H 0.25: not_larger uses 0.25 on both, so W becomes round(8 * 0.25) = 2.
  const auto y = exec.run({iota({1, 1, 4, 8})});
  EXPECT_EQ(y[0].shape(), (Shape{1, 1, 1, 2}));
}

TEST(ResizeOp, ThreadedRunMatchesOneThread) {
  // Large enough to split the (n, c) planes across the pool.
  const std::vector<std::int64_t> sizes = {1, 4, 256, 200};
  auto g = one_node("Resize", 13, {1, 4, 128, 100},
                    {{"", Tensor()}, {"", Tensor()}, {"sizes", Tensor::from_i64({4}, sizes)}},
                    {{"mode", str_attr("cubic")}});
  const Tensor x = iota({1, 4, 128, 100});
  Context one(1), four(4);
  Executor a(g, one, {.backend = Backend::kReference});
  Executor b(g, four, {.backend = Backend::kFast});
  const auto ya = a.run({x});
  const auto yb = b.run({x});
  ASSERT_EQ(ya[0].shape(), (Shape{1, 4, 256, 200}));
  for (std::int64_t i = 0; i < ya[0].numel(); ++i) ASSERT_EQ(ya[0].f32()[i], yb[0].f32()[i]) << i;
}

TEST(ResizeOp, RefusesAntialiasAndUnplannableScales) {
  graph::Attribute one;
  one.kind = graph::Attribute::Kind::kInt;
  one.i = 1;
  const std::vector<float> scales = {1, 1, 0.5f, 0.5f};
  Context ctx(1);
  {
    Executor exec(one_node("Resize", 18, {1, 1, 4, 4}, {{"", Tensor()}, {"s", Tensor::from_f32({4}, scales)}},
                           {{"antialias", one}, {"mode", str_attr("linear")}}),
                  ctx, {.backend = Backend::kReference});
    try {
      (void)exec.run({iota({1, 1, 4, 4})});
      FAIL() << "antialias accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("antialias"), std::string::npos) << e.what();
    }
  }
  {
    // Scales computed from a graph input at run time: the output shape cannot be planned.
    auto g = one_node("Resize", 13, {1, 1, 4, 4}, {{"", Tensor()}}, {});
    g.nodes[0].inputs.push_back("s");
    graph::Node relu;
    relu.name = "relu";
    relu.op_type = "Relu";
    relu.inputs = {"t"};
    relu.outputs = {"s"};
    g.nodes.insert(g.nodes.begin(), relu);
    g.inputs.push_back({"t", {4}, DType::kFloat32});
    Executor exec(std::move(g), ctx, {.backend = Backend::kReference});
    try {
      (void)exec.run({iota({1, 1, 4, 4}), Tensor::from_f32({4}, scales)});
      FAIL() << "scales unknown at plan time accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("not known when planning"), std::string::npos) << e.what();
    }
  }
}

}  // namespace
}  // namespace aciq::runtime
