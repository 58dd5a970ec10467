// Policy, observers and metrics: the seed's routing, alpha/window computation, numerical hostility.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <map>

#include "../onnx/model_builder.hpp"
#include "aciq/eval.hpp"
#include "aciq/onnx.hpp"

namespace aciq::testing {
namespace {

graph::Graph two_fc_model() {
  // conv_bn_model plus a second Gemm, so there is a hidden FC and a classifier.
  auto m = conv_bn_model();
  auto* g = m.mutable_graph();
  g->mutable_output(0)->set_name("logits2");
  *g->add_initializer() = make_tensor("fc2_w", {3, 5}, random_values(15, 30));
  set_int(add_node(m, "Gemm", {"logits", "fc2_w"}, {"logits2"}, "fc2"), "transB", 1);
  std::string s;
  m.SerializeToString(&s);
  return onnx_import::load_model_from_bytes(s, "two_fc.onnx");
}

// A fully convolutional net: x -> conv1 -> relu -> convT (upsampling) -> conv_head -> Resize -> y, and a
// side branch x -> conv_side -> (Q x K^T-style MatMul of two activations) feeding the head's input.
graph::Graph segmentation_like_model() {
  auto m = make_model();
  add_input(m, "x", {1, 2, 8, 8});
  auto* g = m.mutable_graph();
  *g->add_initializer() = make_tensor("w1", {4, 2, 3, 3}, random_values(72, 1));
  *g->add_initializer() = make_tensor("wt", {4, 4, 2, 2}, random_values(64, 2));
  *g->add_initializer() = make_tensor("wh", {3, 4, 1, 1}, random_values(12, 3));
  *g->add_initializer() = make_tensor("ws", {4, 2, 1, 1}, random_values(8, 4));
  *g->add_initializer() = make_tensor("scales", {4}, {1.0f, 1.0f, 2.0f, 2.0f});
  set_ints(add_node(m, "Conv", {"x", "w1"}, {"c1"}, "conv1"), "pads", {1, 1, 1, 1});
  add_node(m, "Relu", {"c1"}, {"r1"}, "relu1");
  set_ints(add_node(m, "ConvTranspose", {"r1", "wt"}, {"up"}, "convT"), "strides", {2, 2});
  add_node(m, "Conv", {"x", "ws"}, {"side"}, "conv_side");
  add_node(m, "MatMul", {"side", "side"}, {"att"}, "att");  // [1,4,8,8] x [1,4,8,8]: activations only
  add_node(m, "Conv", {"up", "wh"}, {"head"}, "conv_head");
  add_node(m, "Resize", {"head", "", "scales"}, {"y"}, "resize");
  add_output(m, "y");
  add_output(m, "att");
  std::string s;
  m.SerializeToString(&s);
  return onnx_import::load_model_from_bytes(s, "seg.onnx");
}

// Roles come from graph position: the layers a graph input reaches directly are "first", those that
// reach a graph output directly are "classifier" (unclipped), ConvTranspose is a conv, and both
// operands of an activation x activation MatMul are quantized where inputs are.
TEST(Policy, RolesFollowGraphPositionInAnyNetwork) {
  const auto g = segmentation_like_model();
  const auto pos = policy::layer_positions(g);
  std::vector<std::string> first, last;
  for (const auto* n : pos.first) first.push_back(n->name);
  for (const auto* n : pos.last) last.push_back(n->name);
  EXPECT_EQ(first, (std::vector<std::string>{"conv1", "conv_side"}));
  EXPECT_EQ(last, (std::vector<std::string>{"att", "conv_head"}));
  policy::PolicyOptions o;
  o.activation_bits = 4;
  o.clip = quant::ClipMethod::kLaplace;
  std::map<std::string, policy::QuantPoint> by_value;
  for (const auto& p : policy::quant_points(g, o)) by_value[p.value] = p;
  ASSERT_TRUE(by_value.count("up"));
  EXPECT_EQ(by_value["up"].role, policy::Role::kConv);  // ConvTranspose output, clipped at 4 bits
  EXPECT_EQ(by_value["up"].bits, 4);
  EXPECT_EQ(by_value["head"].role, policy::Role::kClassifier);
  EXPECT_EQ(by_value["head"].clip, quant::ClipMethod::kNone);
  o.placement = policy::Placement::kInputs;
  std::vector<std::string> inputs;
  for (const auto& p : policy::quant_points(g, o)) inputs.push_back(p.value);
  EXPECT_EQ(inputs, (std::vector<std::string>{"x", "r1", "side", "up"}));
  const auto collected = policy::collection_points(g);
  EXPECT_NE(std::find(collected.begin(), collected.end(), "up"), collected.end());
}

// A class-token-style Expand sized by Shape(x) feeds the residual stream after the first conv: the
// metadata edge must not make the second conv a "first" layer.
TEST(Policy, ShapeEdgesDoNotCarryPositions) {
  auto m = make_model();
  add_input(m, "x", {1, 2, 4, 4});
  auto* g = m.mutable_graph();
  *g->add_initializer() = make_tensor("w1", {2, 2, 1, 1}, random_values(4, 1));
  *g->add_initializer() = make_tensor("w2", {2, 2, 1, 1}, random_values(4, 2));
  *g->add_initializer() = make_tensor("token", {1, 2, 4, 4}, random_values(32, 3));
  add_node(m, "Conv", {"x", "w1"}, {"c1"}, "conv1");
  add_node(m, "Shape", {"x"}, {"s"}, "shape");
  add_node(m, "Expand", {"token", "s"}, {"t"}, "expand");
  add_node(m, "Add", {"c1", "t"}, {"a"}, "add");
  add_node(m, "Conv", {"a", "w2"}, {"c2"}, "conv2");
  add_node(m, "Relu", {"c2"}, {"y"}, "relu");
  add_output(m, "y");
  std::string bytes;
  m.SerializeToString(&bytes);
  const auto graph = onnx_import::load_model_from_bytes(bytes, "token.onnx");
  const auto pos = policy::layer_positions(graph);
  ASSERT_EQ(pos.first.size(), 1u);
  EXPECT_EQ(pos.first[0]->name, "conv1");
  ASSERT_EQ(pos.last.size(), 1u);
  EXPECT_EQ(pos.last[0]->name, "conv2");
}

calib::PointStats stats_with(double mean_min, double mean_max, double mean_b, double mean_std,
                             double mean_mean, std::int64_t numel) {
  calib::PointStats p;
  p.name = "v";
  p.sample_numel = numel;
  auto set = [&](calib::Stat s, double v) { p[s].add(v); };
  set(calib::Stat::kMin, mean_min);
  set(calib::Stat::kMax, mean_max);
  set(calib::Stat::kB, mean_b);
  set(calib::Stat::kStd, mean_std);
  set(calib::Stat::kMean, mean_mean);
  return p;
}

TEST(Policy, SeedRoutingOfLayers) {
  const auto g = two_fc_model();
  policy::PolicyOptions o;
  o.activation_bits = 4;
  o.clip = quant::ClipMethod::kLaplace;
  const auto pts = policy::quant_points(g, o);
  ASSERT_EQ(pts.size(), 3u);
  EXPECT_EQ(pts[0].role, policy::Role::kFirstConv);
  EXPECT_EQ(pts[0].bits, 8);
  EXPECT_EQ(pts[0].clip, quant::ClipMethod::kLaplace);  // 8 bits, same clipping method
  EXPECT_EQ(pts[0].value, "bn");                        // BN folded: the conv now produces BN's output
  EXPECT_EQ(pts[1].role, policy::Role::kLinear);
  EXPECT_EQ(pts[1].clip, quant::ClipMethod::kNone);
  EXPECT_EQ(pts[2].role, policy::Role::kClassifier);
  EXPECT_EQ(pts[2].bits, 8);
  o.keep_8bit = {"conv"};
  o.placement = policy::Placement::kInputs;
  const auto in_pts = policy::quant_points(g, o);
  EXPECT_EQ(in_pts[0].value, "x");
  EXPECT_EQ(in_pts[1].value, "f");
}

TEST(Policy, LaplaceGaussAndMixAlphas) {
  policy::PolicyOptions o;
  policy::QuantPoint p;
  p.role = policy::Role::kConv;
  p.bits = 4;
  const auto s = stats_with(-2.0, 10.0, 0.5, 1.5, 0.25, 4096);
  p.clip = quant::ClipMethod::kLaplace;
  auto r = policy::point_range(p, s, o);
  EXPECT_NEAR(r.alpha, 5.02864014 * 0.5, 1e-7);
  EXPECT_NEAR(r.window.offset, -2.0, 1e-12);  // max(min, mean - alpha) = max(-2, -2.264)
  EXPECT_NEAR(r.window.delta, 2 * r.alpha, 1e-12);
  p.clip = quant::ClipMethod::kGauss;
  r = policy::point_range(p, s, o);
  const double sigma =
      12.0 * 0.5 * 0.35 * (1 + std::sqrt(M_PI * std::log(4.0))) / std::sqrt(2 * std::log(4096.0));
  EXPECT_NEAR(r.alpha, 2.55913646 * sigma, 1e-6);
  p.clip = quant::ClipMethod::kMix;
  r = policy::point_range(p, s, o);
  const double mse_l = quant::laplace_clip_mse(5.02864014 * 0.5, 0.5, 4);
  const double mse_g = quant::gauss_clip_mse(2.55913646 * sigma, 1.5, 4);
  EXPECT_EQ(r.method, mse_l < mse_g ? quant::ClipMethod::kLaplace : quant::ClipMethod::kGauss);
  o.seed_coefficients = true;
  p.clip = quant::ClipMethod::kLaplace;
  EXPECT_NEAR(policy::point_range(p, s, o).alpha, 5.03 * 0.5, 1e-12);
}

TEST(Policy, GridMethodsUseTheGridCoefficient) {
  // Same statistics and window rule as laplace/gaus; only the coefficient changes, to the optimum for
  // the 2^M-level grid (at 2 bits Laplace: 2.3067 b instead of W0(48) = 2.8307 b; at 1 bit exactly b).
  policy::PolicyOptions o;
  policy::QuantPoint p;
  p.role = policy::Role::kConv;
  const auto s = stats_with(-2.0, 10.0, 0.5, 1.5, 0.25, 4096);
  p.clip = quant::ClipMethod::kLaplaceGrid;
  p.bits = 1;
  EXPECT_NEAR(policy::point_range(p, s, o).alpha, 1.0 * 0.5, 1e-8);
  p.bits = 2;
  auto r = policy::point_range(p, s, o);
  EXPECT_NEAR(r.alpha, 2.30670824 * 0.5, 1e-7);
  EXPECT_EQ(r.method, quant::ClipMethod::kLaplaceGrid);
  EXPECT_NEAR(r.window.offset, 0.25 - r.alpha, 1e-12);
  p.clip = quant::ClipMethod::kGaussGrid;
  p.bits = 1;
  const double sigma =
      12.0 * 0.5 * 0.35 * (1 + std::sqrt(M_PI * std::log(4.0))) / std::sqrt(2 * std::log(4096.0));
  EXPECT_NEAR(policy::point_range(p, s, o).alpha, std::sqrt(2.0 / M_PI) * sigma, 1e-7);
  EXPECT_EQ(calib::parse_clip("gaus-grid"), quant::ClipMethod::kGaussGrid);
  EXPECT_EQ(calib::parse_clip(calib::clip_name(quant::ClipMethod::kLaplaceGrid)),
            quant::ClipMethod::kLaplaceGrid);
}

// --clip-override sets one point's method by node or value name (even an unclipped role), the others keep
// --clip, and a name that matches nothing is refused with a suggestion.
TEST(Policy, ClipOverrideSetsOnePoint) {
  const auto g = segmentation_like_model();
  policy::PolicyOptions o;
  o.activation_bits = 4;
  o.clip = quant::ClipMethod::kLaplace;
  o.clip_overrides = {{"convT", quant::ClipMethod::kMse}, {"head", {quant::ClipMethod::kPercentile, 99.9}}};
  std::map<std::string, policy::QuantPoint> by_value;
  for (const auto& p : policy::quant_points(g, o)) by_value[p.value] = p;
  EXPECT_EQ(by_value["up"].clip, quant::ClipMethod::kMse);
  EXPECT_EQ(by_value["head"].clip, quant::ClipSpec(quant::ClipMethod::kPercentile, 99.9));
  EXPECT_EQ(by_value["c1"].clip, quant::ClipMethod::kLaplace);
  o.clip_overrides = {{"convX", quant::ClipMethod::kMse}};
  try {
    (void)policy::quant_points(g, o);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--clip-override 'convX'"), std::string::npos) << e.what();
  }
}

// --half: a point consumed only by a Relu takes its window from the activated value's statistics, with
// lo = 0; without --half, or without activated statistics, the raw statistics decide.
TEST(Policy, HalfUsesTheActivatedStatistics) {
  const auto g = segmentation_like_model();
  policy::PolicyOptions o;
  o.activation_bits = 4;
  o.clip = quant::ClipMethod::kNone;
  std::map<std::string, policy::QuantPoint> by_value;
  for (const auto& p : policy::quant_points(g, o)) by_value[p.value] = p;
  EXPECT_EQ(by_value["c1"].activated, "r1");  // conv1 -> relu1
  EXPECT_EQ(by_value["up"].activated, "");    // convT feeds a Conv
  const auto raw = stats_with(-2.0, 10.0, 0.5, 1.5, 0.25, 4096);
  const auto act = stats_with(0.5, 8.0, 0.4, 1.0, 1.0, 4096);
  auto p = by_value["c1"];
  p.role = policy::Role::kConv;
  EXPECT_EQ(policy::point_range(p, raw, o, &act).lo, -2.0);  // no --half
  o.half = true;
  const auto r = policy::point_range(p, raw, o, &act);
  EXPECT_TRUE(r.half);
  EXPECT_EQ(r.lo, 0.0);  // activated mean-min 0.5, lowered to 0
  EXPECT_EQ(r.hi, 8.0);
  EXPECT_FALSE(policy::point_range(p, raw, o, nullptr).half);
  // Lowering lo to 0 keeps the method's record: laplace's window [mean - alpha, ...] starts above 0 here.
  p.clip = quant::ClipMethod::kLaplace;
  const auto act_high = stats_with(0.5, 8.0, 0.4, 1.0, 3.0, 4096);
  const auto l = policy::point_range(p, raw, o, &act_high);
  EXPECT_EQ(l.lo, 0.0);
  EXPECT_EQ(l.method, quant::ClipMethod::kLaplace);
  EXPECT_GT(l.alpha, 0.0);
  EXPECT_GT(l.coefficient, 0.0);
}

TEST(Policy, ClassifierAndLinearRanges) {
  calib::PointStats s = stats_with(-1.0, 3.0, 0.1, 0.1, 0.0, 10);
  s[calib::Stat::kMin].add(-5.0);  // mean of mins -3, min of mins -5
  s[calib::Stat::kMax].add(7.0);   // mean of maxes 5, max of maxes 7
  policy::QuantPoint p;
  p.role = policy::Role::kClassifier;
  auto r = policy::point_range(p, s, {});
  EXPECT_EQ(r.lo, -5.0);
  EXPECT_EQ(r.hi, 7.0);
  p.role = policy::Role::kLinear;
  r = policy::point_range(p, s, {});
  EXPECT_EQ(r.lo, -3.0);
  EXPECT_EQ(r.hi, 5.0);
}

TEST(Policy, ConstantActivationFallsBackToIdentity) {
  // b = 0, std = 0, min = max: alpha = 0 keeps the [min, max] window, whose zero width makes the
  // quantizer leave values untouched (no division by zero, no NaN).
  policy::QuantPoint p;
  p.role = policy::Role::kConv;
  p.bits = 4;
  for (auto clip : {quant::ClipMethod::kLaplace, quant::ClipMethod::kGauss, quant::ClipMethod::kMix}) {
    p.clip = clip;
    const auto r = policy::point_range(p, stats_with(1.5, 1.5, 0.0, 0.0, 1.5, 100), {});
    EXPECT_EQ(r.window.delta, 0.0);
    const auto params = quant::affine_params(r.window, 4);
    std::vector<float> x{1.5f, 1.5f};
    quant::fake_quant(x, params);
    EXPECT_EQ(x[0], 1.5f);
  }
}

TEST(Policy, NanWeightsAreRefused) {
  auto g = two_fc_model();
  g.initializers.begin()->second.f32()[0] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_THROW(policy::quantize_weights(g, 8), Error);
}

TEST(Policy, WeightQuantizationUsesEightBitGrid) {
  auto g = two_fc_model();
  policy::quantize_weights(g, 8);
  for (const auto& [name, t] : g.initializers) {
    if (t.dtype() != DType::kFloat32 || t.numel() < 2) continue;
    std::vector<float> v(t.f32().begin(), t.f32().end());
    std::sort(v.begin(), v.end());
    v.erase(std::unique(v.begin(), v.end()), v.end());
    EXPECT_LE(v.size(), 256u) << name;
  }
}

TEST(Accumulator, NanActivationIsAnErrorNamingThePoint) {
  calib::Accumulator acc({"conv7"});
  Context ctx(2);
  Tensor t(DType::kFloat32, {2, 4});
  t.f32()[5] = std::numeric_limits<float>::quiet_NaN();
  try {
    acc.add_batch(0, t, ctx);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("conv7"), std::string::npos);
  }
}

TEST(Accumulator, ConstantSampleHasFiniteStatistics) {
  calib::Accumulator acc({"p"});
  Context ctx(1);
  Tensor t(DType::kFloat32, {3, 5});
  for (auto& v : t.f32()) v = 2.0f;
  acc.add_batch(0, t, ctx);
  const auto& p = acc.points()[0];
  EXPECT_EQ(p.column("mean", calib::Stat::kStd), 0.0);
  EXPECT_EQ(p.column("mean", calib::Stat::kKurtosis), 0.0);
  EXPECT_EQ(p.column("mean", calib::Stat::kB), 0.0);
  EXPECT_EQ(p[calib::Stat::kMax].count, 3);
}

TEST(TopK, CountsTiesAndRefusesNan) {
  eval::TopK k;
  Tensor logits = Tensor::from_f32({2, 6}, std::vector<float>{0, 5, 1, 1, 1, 1, /**/ 3, 3, 0, 0, 0, 0});
  k.add(logits, {1, 1});  // sample 0: correct; sample 1: tie with a lower index -> rank 1 (top-5 only)
  EXPECT_EQ(k.top1_correct, 1);
  EXPECT_EQ(k.top5_correct, 2);
  Tensor bad = Tensor::from_f32({1, 2}, std::vector<float>{std::nanf(""), 1});
  EXPECT_THROW(k.add(bad, {0}), Error);
  EXPECT_THROW(k.add(logits, {0, 9}), Error);
}

}  // namespace
}  // namespace aciq::testing
