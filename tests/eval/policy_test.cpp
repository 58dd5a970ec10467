// Policy, observers and metrics: the seed's routing, alpha/window computation, numerical hostility.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

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

calib::PointStats stats_with(double mean_min, double mean_max, double mean_b, double mean_std, double mean_mean,
                             std::int64_t numel) {
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
  EXPECT_EQ(pts[0].value, "bn");                         // BN folded: the conv now produces BN's output
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
  const double sigma = 12.0 * 0.5 * 0.35 * (1 + std::sqrt(M_PI * std::log(4.0))) / std::sqrt(2 * std::log(4096.0));
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
