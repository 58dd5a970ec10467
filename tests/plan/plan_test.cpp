// QuantPlan: the seed plan equals the legacy policy path bit for bit, JSON round trips, hostile files.
#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>
#include <utility>

#include "aciq/export.hpp"
#include "plan_fixture.hpp"

namespace aciq::testing {
namespace {

using plan::Semantics;
using plan::WeightGranularity;
using policy::Placement;

TEST_F(Resnet20, SeedPlanEqualsThePolicyPathBitForBit) {
  for (auto clip : {quant::ClipMethod::kNone, quant::ClipMethod::kLaplace, quant::ClipMethod::kMix}) {
    const auto o = plan_options(4, clip, Semantics::kSeed, WeightGranularity::kTensor, Placement::kOutputs);
    const auto p = plan::build_plan(g, stats, o, "s.json");
    graph::Graph planned = g, legacy = g;
    const auto sim = plan::apply_plan(planned, p);
    policy::quantize_weights(legacy, 8);
    for (const auto& [name, t] : legacy.initializers) {
      const std::span<const float> a = t.f32(), b = std::as_const(planned.initializers.at(name)).f32();
      ASSERT_TRUE(std::equal(a.begin(), a.end(), b.begin(), b.end())) << name;
    }
    const auto points = policy::quant_points(g, o.policy);
    ASSERT_EQ(sim.points.size(), points.size());
    for (std::size_t i = 0; i < points.size(); ++i) {
      const auto want = quant::affine_params(
          policy::point_range(points[i], *stats.find(points[i].value), o.policy).window, points[i].bits);
      const auto& got = sim.quantizers[i];
      EXPECT_FALSE(got.onnx);
      EXPECT_EQ(sim.points[i], points[i].value);
      EXPECT_EQ(got.seed.form, want.form) << points[i].value;
      EXPECT_EQ(got.seed.scale, want.scale) << points[i].value;
      EXPECT_EQ(got.seed.zero_point, want.zero_point) << points[i].value;
      EXPECT_EQ(got.seed.offset, want.offset) << points[i].value;
      EXPECT_EQ(got.seed.qmax, want.qmax) << points[i].value;
    }
  }
}

// --wclip: per channel, laplace's threshold is min(max |w|, coefficient x b) computed here from the weights;
// mse's grid gives each channel no more error than max |w| and than laplace's (it searches a superset of
// thresholds near them); both semantics; the option survives the JSON round trip.
TEST_F(Resnet20, WeightClippingThresholds) {
  for (const auto sem : {Semantics::kSeed, Semantics::kOnnx}) {
    auto o = plan_options(4, quant::ClipMethod::kNone, sem, WeightGranularity::kChannel, Placement::kOutputs);
    o.policy.weight_bits = 4;
    std::map<plan::WeightClip, plan::QuantPlan> plans;
    for (const auto wc : {plan::WeightClip::kMinMax, plan::WeightClip::kLaplace, plan::WeightClip::kMse}) {
      o.weight_clip = wc;
      plans[wc] = plan::build_plan(g, stats, o, "s.json");
    }
    EXPECT_EQ(
        plan::QuantPlan::from_json(plans[plan::WeightClip::kMse].to_json(), "p.json").options.weight_clip,
        plan::WeightClip::kMse);
    int checked = 0;
    double total_mse = 0.0, total_minmax = 0.0;
    for (const auto& t : plans[plan::WeightClip::kMinMax].tensors) {
      if (t.kind != plan::TensorKind::kWeight || !t.per_channel() || t.axis != 0) continue;
      const Tensor& w = g.initializers.at(t.tensor);
      const std::size_t inner = static_cast<std::size_t>(w.numel()) / t.channels();
      const auto* lap = plans[plan::WeightClip::kLaplace].find(t.tensor, plan::TensorKind::kWeight);
      const auto* mse = plans[plan::WeightClip::kMse].find(t.tensor, plan::TensorKind::kWeight);
      ASSERT_TRUE(lap && mse);
      EXPECT_EQ(mse->method, "mse-symmetric");
      for (std::size_t c = 0; c < t.channels(); ++c) {
        const std::span<const float> v = w.f32().subspan(c * inner, inner);
        double mean = 0.0, b = 0.0, max_abs = 0.0;
        for (float x : v) mean += x;
        mean /= static_cast<double>(inner);
        for (float x : v) {
          b += std::fabs(x - mean);
          max_abs = std::max(max_abs, static_cast<double>(std::fabs(x)));
        }
        b /= static_cast<double>(inner);
        const double want =
            std::min(max_abs, quant::optimal_alpha_coefficient(quant::Distribution::kLaplace, 4) * b);
        EXPECT_NEAR(lap->scale[c] * 7.0, want, 1e-5 * want) << t.tensor << " channel " << c;
        auto error = [&](const plan::TensorQuant& q) {
          std::vector<float> x(v.begin(), v.end());
          if (sem == Semantics::kSeed) {
            quant::fake_quant(x, quant::symmetric_params(q.scale[c] * 7.0f, 4));
          } else {
            quant::fake_quant_onnx(x, q.grid(c));
          }
          double e = 0.0;
          for (std::size_t i = 0; i < x.size(); ++i) e += (x[i] - v[i]) * static_cast<double>(x[i] - v[i]);
          return e;
        };
        EXPECT_LE(error(*mse), error(t) * (1 + 1e-9)) << t.tensor << " channel " << c;
        total_mse += error(*mse);
        total_minmax += error(t);
        ++checked;
      }
    }
    EXPECT_GT(checked, 100);
    EXPECT_LT(total_mse, 0.9 * total_minmax);  // it does clip: 4-bit weights have outliers worth clipping
  }
  auto o = plan_options(4, quant::ClipMethod::kNone, Semantics::kSeed, WeightGranularity::kTensor,
                        Placement::kOutputs);
  o.weight_clip = plan::WeightClip::kMse;
  EXPECT_THROW(plan::build_plan(g, stats, o, "s.json"), Error);
}

// --bias-correction paper: after the simulation quantizes the weights, every output channel has the float
// weights' mean and standard deviation again (computed here from the weights), which plain quantization
// does not give at 4 bits; exporters refuse such a plan.
TEST_F(Resnet20, PaperBiasCorrectionRestoresChannelMeanAndStd) {
  auto o = plan_options(4, quant::ClipMethod::kNone, Semantics::kOnnx, WeightGranularity::kChannel,
                        Placement::kDeploy);
  o.policy.weight_bits = 4;
  auto moments = [](std::span<const float> v) {
    double m = 0.0, q = 0.0;
    for (float x : v) m += x;
    m /= static_cast<double>(v.size());
    for (float x : v) q += (x - m) * (x - m);
    return std::pair<double, double>{m, std::sqrt(q / static_cast<double>(v.size()))};
  };
  double plain_gap = 0.0;
  for (const auto bc : {plan::BiasCorrection::kNone, plan::BiasCorrection::kPaper}) {
    o.bias_correction = bc;
    const auto p = plan::build_plan(g, stats, o, "s.json");
    EXPECT_EQ(plan::QuantPlan::from_json(p.to_json(), "p.json").options.bias_correction, bc);
    graph::Graph planned = g;
    (void)plan::apply_plan(planned, p);
    int checked = 0;
    for (const auto& t : p.tensors) {
      if (t.kind != plan::TensorKind::kWeight || t.axis != 0) continue;
      const Tensor& w = g.initializers.at(t.tensor);
      const Tensor& q = planned.initializers.at(t.tensor);
      const std::size_t inner = static_cast<std::size_t>(w.numel()) / t.channels();
      for (std::size_t c = 0; c < t.channels(); ++c) {
        const auto [mw, sw] = moments(w.f32().subspan(c * inner, inner));
        const auto [mq, sq] = moments(std::as_const(q).f32().subspan(c * inner, inner));
        if (bc == plan::BiasCorrection::kPaper) {
          EXPECT_NEAR(mq, mw, 1e-6 * (std::fabs(mw) + sw)) << t.tensor << " channel " << c;
          EXPECT_NEAR(sq, sw, 1e-5 * sw) << t.tensor << " channel " << c;
        } else {
          plain_gap = std::max(plain_gap, std::fabs(sq - sw) / sw);
        }
        ++checked;
      }
    }
    EXPECT_GT(checked, 100);
    if (bc == plan::BiasCorrection::kPaper) {
      EXPECT_THROW(exporter::insert_qdq(g, p), Error);
    }
  }
  EXPECT_GT(plain_gap, 0.01);  // 4-bit rounding does change the spread: the correction has work to do
}

// --bits-budget leaves --keep-8bit points at 8 bits and keeps the others' average within the budget.
TEST_F(Resnet20, BitsBudgetRespectsKeep8Bit) {
  auto o = plan_options(3, quant::ClipMethod::kMse, Semantics::kSeed, WeightGranularity::kTensor,
                        Placement::kOutputs);
  o.bits_budget = 2.5;
  o.policy.keep_8bit = {"/layers/layers.0/conv1/Conv"};
  const auto p = plan::build_plan(g, stats, o, "s.json");
  double bits = 0.0, elements = 0.0;
  bool kept = false;
  for (const auto& t : p.tensors) {
    if (t.kind != plan::TensorKind::kActivation || t.role != "conv") continue;
    if (t.node == "/layers/layers.0/conv1/Conv") {
      EXPECT_EQ(t.bits, 8);
      kept = true;
      continue;
    }
    const double n = static_cast<double>(stats.find(t.tensor)->sample_numel);
    bits += n * t.bits;
    elements += n;
  }
  EXPECT_TRUE(kept);
  EXPECT_LE(bits, 2.5 * elements);
  EXPECT_GT(bits, 2.0 * elements);  // the budget is spent, not all at 2 bits
}

TEST_F(Resnet20, JsonRoundTripIsExact) {
  for (auto sem : {Semantics::kSeed, Semantics::kOnnx}) {
    for (auto wg : {WeightGranularity::kTensor, WeightGranularity::kChannel}) {
      const auto p = plan::build_plan(
          g, stats, plan_options(3, quant::ClipMethod::kLaplace, sem, wg, Placement::kDeploy), "s.json");
      const std::string text = p.to_json();
      const auto back = plan::QuantPlan::from_json(text, "p.json");
      EXPECT_EQ(back.to_json(), text);
      graph::Graph a = g, b = g;
      const auto sa = plan::apply_plan(a, p), sb = plan::apply_plan(b, back);
      for (const auto& [name, t] : a.initializers) {
        const std::span<const float> x = t.f32(), y = std::as_const(b.initializers.at(name)).f32();
        ASSERT_TRUE(std::equal(x.begin(), x.end(), y.begin(), y.end())) << name;
      }
      ASSERT_EQ(sa.quantizers.size(), sb.quantizers.size());
      for (std::size_t i = 0; i < sa.quantizers.size(); ++i) {
        EXPECT_EQ(sa.quantizers[i].grid.scale, sb.quantizers[i].grid.scale);
        EXPECT_EQ(sa.quantizers[i].grid.zero_point, sb.quantizers[i].grid.zero_point);
        EXPECT_EQ(sa.quantizers[i].seed.scale, sb.quantizers[i].seed.scale);
        EXPECT_EQ(sa.quantizers[i].seed.offset, sb.quantizers[i].seed.offset);
      }
    }
  }
}

TEST_F(Resnet20, OnnxPlanGridsAndBiases) {
  const auto p = plan::build_plan(g, stats,
                                  plan_options(4, quant::ClipMethod::kLaplace, Semantics::kOnnx,
                                               WeightGranularity::kChannel, Placement::kDeploy),
                                  "s.json");
  int biases = 0;
  for (const auto& t : p.tensors) {
    if (t.kind == plan::TensorKind::kActivation) {
      EXPECT_EQ(t.qmin, 0);
      EXPECT_EQ(t.qmax, t.role == "conv" ? 15 : 255) << t.tensor;
      // The represented window contains 0 and, up to the half step the integer zero point moves it,
      // the requested one.
      EXPECT_LE(t.lo[0], 0.0);
      EXPECT_GE(t.hi[0], 0.0);
      const double half_step = 0.5 * t.scale[0] + 1e-6;
      EXPECT_LE(t.lo[0], std::min(t.requested_lo, 0.0) + half_step) << t.tensor;
      EXPECT_GE(t.hi[0], std::max(t.requested_hi, 0.0) - half_step) << t.tensor;
      EXPECT_NEAR(t.hi[0] - t.lo[0], std::max(t.requested_hi, 0.0) - std::min(t.requested_lo, 0.0), 1e-5)
          << t.tensor;
    } else if (t.kind == plan::TensorKind::kWeight) {
      EXPECT_EQ(t.qmin, -127);
      EXPECT_EQ(t.qmax, 127);
      EXPECT_TRUE(t.per_channel());
      for (auto z : t.zero_point) EXPECT_EQ(z, 0);
    } else {
      ++biases;
      const auto* in = p.find(g.producer(t.tensor) ? "" : [&] {
        for (const auto& n : g.nodes)
          if (n.name == t.node) return n.inputs[0];
        return std::string();
      }(), plan::TensorKind::kActivation);
      const auto* w = [&]() -> const plan::TensorQuant* {
        for (const auto& n : g.nodes)
          if (n.name == t.node) return p.find(n.inputs[1], plan::TensorKind::kWeight);
        return nullptr;
      }();
      ASSERT_TRUE(in && w) << t.tensor;
      ASSERT_EQ(t.scale.size(), w->scale.size());
      for (std::size_t c = 0; c < t.scale.size(); ++c) EXPECT_EQ(t.scale[c], in->scale[0] * w->scale[c]);
    }
  }
  EXPECT_GT(biases, 0);
}

// Edits one field of the first tensor of kind `kind` in a valid plan file and expects a refusal that
// names the tensor.
void expect_refused(const std::string& text, const std::string& kind,
                    const std::function<void(nlohmann::json&)>& edit, const std::string& needle) {
  auto j = nlohmann::json::parse(text);
  std::string name;
  for (auto& t : j["tensors"]) {
    if (t["kind"] == kind) {
      edit(t);
      name = t["tensor"];
      break;
    }
  }
  try {
    plan::QuantPlan::from_json(j.dump(), "bad.json");
    ADD_FAILURE() << "accepted: " << needle;
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("bad.json"), std::string::npos) << msg;
    EXPECT_NE(msg.find(name), std::string::npos) << msg;
    EXPECT_NE(msg.find(needle), std::string::npos) << msg;
  }
}

TEST_F(Resnet20, HostilePlanFilesAreRefusedNamingFileAndTensor) {
  const auto p = plan::build_plan(g, stats,
                                  plan_options(4, quant::ClipMethod::kLaplace, Semantics::kOnnx,
                                               WeightGranularity::kChannel, Placement::kDeploy),
                                  "s.json");
  const std::string text = p.to_json();
  expect_refused(
      text, "activation", [](auto& t) { t["scale"] = 0.0; }, "scale");
  expect_refused(
      text, "activation", [](auto& t) { t["scale"] = -1.0; }, "scale");
  expect_refused(
      text, "activation", [](auto& t) { t["scale"] = nullptr; }, "scale");  // NaN is written as null
  expect_refused(
      text, "activation", [](auto& t) { t["zero_point"] = t["qmax"].template get<int>() + 1; }, "zero point");
  expect_refused(
      text, "activation", [](auto& t) { t["hi"] = 1e30; }, "window");
  expect_refused(
      text, "activation", [](auto& t) { t["qmax"] = 4096; }, "bits");
  expect_refused(
      text, "weight", [](auto& t) { t["zero_point"].erase(0); }, "lengths");
  expect_refused(
      text, "weight", [](auto& t) { t["scale"][0] = 1e-45 / 1e10; }, "scale");
  expect_refused(
      text, "bias", [](auto& t) { t["kind"] = "gamma"; }, "kind");
  EXPECT_THROW(plan::QuantPlan::from_json(text.substr(0, text.size() / 2), "cut.json"), Error);
  auto j = nlohmann::json::parse(text);
  j["version"] = 2;
  EXPECT_THROW(plan::QuantPlan::from_json(j.dump(), "v2.json"), Error);
  // Valid file, wrong graph: another model's hash, an unknown tensor, a wrong channel count.
  auto other = plan::QuantPlan::from_json(text, "p.json");
  other.model_hash = "0000000000000000";
  EXPECT_THROW(other.require_graph(g, "p.json"), Error);
  auto unknown = plan::QuantPlan::from_json(text, "p.json");
  unknown.tensors[0].tensor = "no_such_value";
  EXPECT_THROW(unknown.require_graph(g, "p.json"), Error);
  auto channels = plan::QuantPlan::from_json(text, "p.json");
  for (auto& t : channels.tensors) {
    if (t.kind == plan::TensorKind::kWeight) {
      t.scale.pop_back();
      t.zero_point.pop_back();
      t.lo.pop_back();
      t.hi.pop_back();
      break;
    }
  }
  EXPECT_THROW(channels.require_graph(g, "p.json"), Error);
}

TEST_F(Resnet20, StatisticsOfAnotherModelAreRefused) {
  auto s = stats;
  s.model_hash = "ffffffffffffffff";
  EXPECT_THROW(plan::build_plan(g, s, plan::PlanOptions{}, "other.json"), Error);
}

}  // namespace
}  // namespace aciq::testing

namespace aciq::testing {
namespace {

// Some exporters emit weights as Constant nodes instead of initializers: they must be planned alike.
TEST(PlanConstants, WeightsFromConstantNodesArePlannedAndExported) {
  auto m = make_model(13);
  add_input(m, "x", {1, 1, 6, 6});
  auto* c = add_node(m, "Constant", {}, {"w"}, "const_w");
  auto* attr = c->add_attribute();
  attr->set_name("value");
  attr->set_type(onnx::AttributeProto::TENSOR);
  *attr->mutable_t() = make_tensor("", {2, 1, 3, 3}, random_values(18, 5));
  add_node(m, "Conv", {"x", "w"}, {"y"}, "conv");
  add_output(m, "y");
  std::string bytes;
  m.SerializeToString(&bytes);
  const auto g = onnx_import::load_model_from_bytes(bytes, "const.onnx");
  ASSERT_NE(g.initializer("w"), nullptr);
  Context ctx(1);
  const auto stats = collect_stats(g, Tensor::from_f32({1, 1, 6, 6}, random_values(36, 9)), ctx);
  const auto p = plan::build_plan(g, stats,
                                  plan_options(8, quant::ClipMethod::kNone, plan::Semantics::kOnnx,
                                               plan::WeightGranularity::kChannel, policy::Placement::kDeploy),
                                  "s.json");
  const auto* w = p.find("w", plan::TensorKind::kWeight);
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->channels(), 2u);
  const auto q = exporter::insert_qdq(g, p);
  ASSERT_NE(q.initializer("w_quantized"), nullptr);
  EXPECT_EQ(q.initializer("w_quantized")->dtype(), DType::kInt8);
}

// A Conv fed by near-zero activations (range 1e-9) with a large bias: input scale x weight scale is
// ~1e-14, so an int32 bias could hold at most ~2e-5 and the bias (5.0) would clip. The plan raises that
// channel's weight scale until |b| / (s_in s_w) <= 2^30; the simulated output then keeps the bias, and
// the channel without a bias keeps its max|w| / 127 scale.
TEST(PlanBias, WeightScaleIsRaisedSoTheInt32BiasFits) {
  auto m = make_model(13);
  add_input(m, "x", {1, 1, 4, 4});
  auto* g = m.mutable_graph();
  *g->add_initializer() = make_tensor("w", {2, 1, 1, 1}, {1e-3f, 1e-3f});
  *g->add_initializer() = make_tensor("b", {2}, {5.0f, 0.0f});
  add_node(m, "Conv", {"x", "w", "b"}, {"y"}, "conv");
  add_output(m, "y");
  std::string bytes;
  m.SerializeToString(&bytes);
  const auto graph = onnx_import::load_model_from_bytes(bytes, "bias.onnx");
  Context ctx(1);
  std::vector<float> tiny(16);
  for (std::size_t i = 0; i < tiny.size(); ++i) tiny[i] = 1e-9f * static_cast<float>(i) / 15.0f;
  const Tensor x = Tensor::from_f32({1, 1, 4, 4}, tiny);
  const auto stats = collect_stats(graph, x, ctx);
  const auto p = plan::build_plan(graph, stats,
                                  plan_options(8, quant::ClipMethod::kNone, plan::Semantics::kOnnx,
                                               plan::WeightGranularity::kChannel, policy::Placement::kDeploy),
                                  "s.json");
  const auto* w = p.find("w", plan::TensorKind::kWeight);
  const auto* b = p.find("b", plan::TensorKind::kBias);
  const auto* in = p.find("x", plan::TensorKind::kActivation);
  ASSERT_TRUE(w && b && in);
  EXPECT_FLOAT_EQ(w->scale[1], 1e-3f / 127.0f);  // unchanged
  EXPECT_GT(w->scale[0], 1e-3f / 127.0f);        // raised
  EXPECT_LE(5.0 / (static_cast<double>(in->scale[0]) * w->scale[0]), 1073741824.0);
  EXPECT_GT(5.0 / (static_cast<double>(in->scale[0]) * w->scale[0]), 1073741824.0 * 0.99);
  const Tensor y = simulate(graph, p, x, ctx, runtime::Backend::kReference);
  EXPECT_NEAR(y.data<float>()[0], 5.0f, 1e-5f);  // channel 0 keeps its bias
}

}  // namespace
}  // namespace aciq::testing
