// --bias-correction deploy: the norm ratio in the weight scales, the mean shift in the int32 biases, the
// integers untouched; every number recomputed here from the weights and the statistics. And --bit-alloc
// channel's per-channel weight widths in a plan.
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <numeric>
#include <set>

#include "aciq/export.hpp"
#include "plan_fixture.hpp"

namespace aciq::testing {
namespace {

using plan::BiasCorrection;
using plan::Semantics;
using plan::WeightGranularity;
using policy::Placement;

struct DeployCorrection : Resnet20 {
  // Per-channel summaries, and no histograms: E[x] is then the float mean (the histogram's quantized mean
  // is a separate, documented refinement).
  calib::StatsFile channel_stats = [this] {
    auto f = collect_stats(g, synthetic_batch(8, 7), ctx, true);
    for (auto& p : f.points) p.histogram.reset();
    return f;
  }();
  plan::QuantPlan build(BiasCorrection bc, WeightGranularity wg, const calib::StatsFile& s) const {
    auto o = plan_options(8, quant::ClipMethod::kNone, Semantics::kOnnx, wg, Placement::kDeploy);
    o.policy.weight_bits = 4;
    o.bias_correction = bc;
    return plan::build_plan(g, s, o, "s.json");
  }
};

const graph::Node& node_named(const graph::Graph& g, const std::string& name) {
  for (const auto& n : g.nodes)
    if (n.name == name) return n;
  throw Error("no node " + name);
}

// Per channel of a [O, ...] weight: r = std(w) / std(dequantized q) and d = mean(w) - r mean(dequantized q).
struct Moments {
  std::vector<double> r, d;
};
Moments moments(const Tensor& w, const plan::TensorQuant& plain) {
  const auto q = plan::quantize_values(w, plain);
  const auto v = w.f32();
  const std::size_t channels = plain.channels(), inner = v.size() / channels;
  Moments m;
  for (std::size_t c = 0; c < channels; ++c) {
    double mw = 0, mq = 0, vw = 0, vq = 0;
    const auto grid = plain.grid(c);
    for (std::size_t i = c * inner; i < (c + 1) * inner; ++i) {
      mw += v[i];
      mq += quant::dequantize_linear(q[i], grid);
    }
    mw /= static_cast<double>(inner);
    mq /= static_cast<double>(inner);
    for (std::size_t i = c * inner; i < (c + 1) * inner; ++i) {
      const double dq = quant::dequantize_linear(q[i], grid);
      vw += (v[i] - mw) * (v[i] - mw);
      vq += (dq - mq) * (dq - mq);
    }
    const double r = vq > 0 ? std::sqrt(vw / vq) : 1.0;
    m.r.push_back(r);
    m.d.push_back(mw - r * mq);
  }
  return m;
}

TEST_F(DeployCorrection, ScalesCarryTheRatioBiasesTheShiftIntegersStay) {
  const auto plain = build(BiasCorrection::kNone, WeightGranularity::kChannel, channel_stats);
  const auto deploy = build(BiasCorrection::kDeploy, WeightGranularity::kChannel, channel_stats);
  runtime::Executor exec(g, ctx, {});
  const auto shapes = exec.infer_shapes({{1, 1, 28, 28}});
  int weights = 0, biases = 0;
  for (const auto& t : deploy.tensors) {
    if (t.kind == plan::TensorKind::kActivation) continue;
    const auto* p = plain.find(t.tensor, t.kind);
    ASSERT_NE(p, nullptr) << t.tensor;
    const Tensor& w = g.initializers.at(t.tensor);
    // The integers an exporter writes are the uncorrected plan's.
    if (t.kind == plan::TensorKind::kWeight) {
      EXPECT_EQ(plan::quantize_values(w, t), plan::quantize_values(w, *p)) << t.tensor;
      const auto m = moments(w, *p);
      ASSERT_EQ(t.rounding_scale.size(), t.channels()) << t.tensor;
      for (std::size_t c = 0; c < t.channels(); ++c) {
        EXPECT_EQ(t.rounding_scale[c], p->scale[c]) << t.tensor << " channel " << c;
        EXPECT_NEAR(t.scale[c], p->scale[c] * m.r[c], 1e-6 * t.scale[c]) << t.tensor << " channel " << c;
      }
      ++weights;
      continue;
    }
    // Bias: shift_c = d_c x (sum over the input channels of the output's group of their mean) x taps, with
    // taps in closed form: a 3x3 pad-1 kernel on H x W reads (3 - 2/H)(3 - 2/W) input values on average
    // (stride 1 or 2 on even sizes), a 1x1 unpadded kernel one.
    const auto& n = node_named(g, t.node);
    const Tensor& wt = g.initializers.at(n.inputs[1]);
    const auto* wq = plain.find(n.inputs[1], plan::TensorKind::kWeight);
    const auto m = moments(wt, *wq);
    const auto* in = channel_stats.find(n.inputs[0]);
    ASSERT_NE(in, nullptr);
    double taps = 1.0;
    std::size_t inner = 0;
    if (n.op_type == "Conv") {
      const auto& x = shapes.at(n.inputs[0]);
      const auto k = wt.dim(2);
      ASSERT_TRUE(k == 1 || k == 3) << t.node;
      if (k == 3) taps = (3.0 - 2.0 / static_cast<double>(x[2])) * (3.0 - 2.0 / static_cast<double>(x[3]));
      inner = static_cast<std::size_t>(wt.dim(1));
      ASSERT_EQ(n.get_int("group", 1), 1);
    } else {
      inner = static_cast<std::size_t>(wt.dim(n.get_int("transB", 0) != 0 ? 1 : 0));
    }
    ASSERT_EQ(in->channels.size(), inner) << t.node;
    double sum = 0.0;
    for (const auto& ch : in->channels) sum += ch[calib::ChannelStat::kMean].mean();
    ASSERT_EQ(t.shift.size(), static_cast<std::size_t>(w.numel()));
    for (std::size_t c = 0; c < t.shift.size(); ++c) {
      const double want = m.d[c] * sum * taps;
      EXPECT_NEAR(t.shift[c], want, 1e-9 * (std::fabs(want) + 1e-6)) << t.tensor << " output " << c;
    }
    // The int32 bias holds b + shift on the corrected scale s_in x s_w x r.
    const auto q = plan::quantize_values(w, t);
    const auto* wd = deploy.find(n.inputs[1], plan::TensorKind::kWeight);
    const float s_in = deploy.find(n.inputs[0], plan::TensorKind::kActivation)->scale[0];
    for (std::size_t c = 0; c < q.size(); ++c) {
      EXPECT_EQ(t.scale[c], s_in * wd->scale[c]);
      EXPECT_EQ(q[c], static_cast<std::int32_t>(std::nearbyint((w.f32()[c] + t.shift[c]) / t.scale[c])));
    }
    ++biases;
  }
  EXPECT_EQ(weights, 22);  // 21 Conv and the Gemm of ResNet-20
  EXPECT_EQ(biases, 22);
  // The correction has work to do at 4 bits: some channel's ratio and shift are far from 1 and 0.
  double max_ratio = 0, max_shift = 0;
  for (const auto& t : deploy.tensors) {
    const auto* p = plain.find(t.tensor, t.kind);
    for (std::size_t c = 0; c < t.scale.size() && t.kind == plan::TensorKind::kWeight; ++c)
      max_ratio = std::max(max_ratio, std::fabs(t.scale[c] / p->scale[c] - 1.0));
    for (double s : t.shift) max_shift = std::max(max_shift, std::fabs(s));
  }
  EXPECT_GT(max_ratio, 0.01);
  EXPECT_GT(max_shift, 1e-4);
}

// Without per-channel summaries the tensor mean stands in for every channel's; per tensor weights get one
// ratio and one shift per tensor.
TEST_F(DeployCorrection, TensorMeanAndPerTensorWeights) {
  auto no_channels = channel_stats;
  for (auto& p : no_channels.points) p.channels.clear();
  const auto plain = build(BiasCorrection::kNone, WeightGranularity::kTensor, no_channels);
  const auto deploy = build(BiasCorrection::kDeploy, WeightGranularity::kTensor, no_channels);
  int checked = 0;
  for (const auto& t : deploy.tensors) {
    if (t.kind != plan::TensorKind::kBias) continue;
    const auto& n = node_named(g, t.node);
    const Tensor& wt = g.initializers.at(n.inputs[1]);
    const auto* wq = plain.find(n.inputs[1], plan::TensorKind::kWeight);
    // One "channel": the whole tensor.
    const auto m = moments(wt, *wq);
    ASSERT_EQ(m.d.size(), 1u);
    const double mean = no_channels.find(n.inputs[0])->operator[](calib::Stat::kMean).mean();
    // All outputs get the same shift: d x E[x] x (inputs per output).
    for (double s : t.shift) EXPECT_EQ(s, t.shift[0]);
    if (n.op_type == "Gemm") {
      const double want = m.d[0] * mean * static_cast<double>(wt.dim(1));
      EXPECT_NEAR(t.shift[0], want, 1e-9 * std::fabs(want) + 1e-12);
    }
    ++checked;
  }
  EXPECT_EQ(checked, 22);
}

// The simulation dequantizes the same integers with the corrected scale and adds the shifted bias: the
// planned weights are r times the uncorrected plan's, channel by channel. The plan survives JSON exactly,
// and the QDQ export holds the corrected scales.
TEST_F(DeployCorrection, SimulationJsonAndExport) {
  const auto plain = build(BiasCorrection::kNone, WeightGranularity::kChannel, channel_stats);
  const auto deploy = build(BiasCorrection::kDeploy, WeightGranularity::kChannel, channel_stats);
  const std::string text = deploy.to_json();
  EXPECT_EQ(plan::QuantPlan::from_json(text, "p.json").to_json(), text);
  graph::Graph a = g, b = g;
  (void)plan::apply_plan(a, plain);
  (void)plan::apply_plan(b, deploy);
  for (const auto& t : deploy.tensors) {
    if (t.kind != plan::TensorKind::kWeight) continue;
    const auto x = std::as_const(a.initializers.at(t.tensor)).f32();
    const auto y = std::as_const(b.initializers.at(t.tensor)).f32();
    const std::size_t inner = x.size() / t.channels();
    for (std::size_t i = 0; i < x.size(); ++i) {
      const std::size_t c = i / inner;
      const double r = static_cast<double>(t.scale[c]) / plain.find(t.tensor, t.kind)->scale[c];
      EXPECT_NEAR(y[i], x[i] * r, 1e-6 * std::fabs(x[i] * r) + 1e-12) << t.tensor;
    }
  }
  const auto q = exporter::insert_qdq(g, deploy);
  const auto& t = *std::find_if(deploy.tensors.begin(), deploy.tensors.end(), [](const plan::TensorQuant& e) {
    return e.kind == plan::TensorKind::kWeight;
  });
  const Tensor& scale = q.initializers.at(t.tensor + "_scale");
  for (std::size_t c = 0; c < t.channels(); ++c) EXPECT_EQ(scale.data<float>()[c], t.scale[c]);
  // Runtimes that quantize the original weights themselves cannot carry it.
  EXPECT_THROW((void)exporter::tensorrt_cache(g, deploy), Error);
}

TEST_F(DeployCorrection, RefusedWhereNoIntegerBiasExists) {
  auto o = plan_options(8, quant::ClipMethod::kNone, Semantics::kSeed, WeightGranularity::kChannel,
                        Placement::kDeploy);
  o.policy.weight_bits = 4;
  o.bias_correction = BiasCorrection::kDeploy;
  EXPECT_THROW(plan::check_plan_options(o), Error);  // seed semantics: float zero points, no int32 bias
  o.semantics = Semantics::kOnnx;
  o.policy.placement = Placement::kOutputs;
  EXPECT_THROW(plan::check_plan_options(o), Error);  // conv inputs not quantized
  o.policy.placement = Placement::kDeploy;
  EXPECT_NO_THROW(plan::check_plan_options(o));
  o.policy.weight_bits = 0;
  EXPECT_THROW(plan::check_plan_options(o), Error);
  // Hostile plans: a shift on a weight, rounding scales of the wrong length.
  auto p = build(BiasCorrection::kDeploy, WeightGranularity::kChannel, channel_stats);
  auto j = nlohmann::json::parse(p.to_json());
  for (auto& e : j["tensors"]) {
    if (e["kind"] == "weight") {
      auto bad = j;
      for (auto& f : bad["tensors"])
        if (f["tensor"] == e["tensor"]) f["shift"] = {1.0};
      EXPECT_THROW(plan::QuantPlan::from_json(bad.dump(), "p.json"), Error);
      bad = j;
      for (auto& f : bad["tensors"])
        if (f["tensor"] == e["tensor"]) f["rounding_scale"] = {1.0f};
      EXPECT_THROW(plan::QuantPlan::from_json(bad.dump(), "p.json"), Error);
      break;
    }
  }
}

// --bit-alloc channel in a plan: every channel's integers lie on its own width's symmetric grid, the widths
// average --wbits, the plan survives JSON, both semantics simulate it and the QDQ export holds it.
struct ChannelBitAllocationPlan : DeployCorrection {};

TEST_F(ChannelBitAllocationPlan, WidthsGridsJsonSimulationAndExport) {
  for (const auto sem : {Semantics::kSeed, Semantics::kOnnx}) {
    auto o = plan_options(8, quant::ClipMethod::kNone, sem, WeightGranularity::kChannel, Placement::kDeploy);
    o.policy.weight_bits = 4;
    o.bit_alloc = plan::BitAlloc::kChannel;
    const auto p = plan::build_plan(g, stats, o, "s.json");
    EXPECT_EQ(plan::QuantPlan::from_json(p.to_json(), "p.json").to_json(), p.to_json());
    int spread = 0;
    for (const auto& t : p.tensors) {
      if (t.kind != plan::TensorKind::kWeight) continue;
      ASSERT_EQ(t.channel_bits.size(), t.channels()) << t.tensor;
      const double avg = std::accumulate(t.channel_bits.begin(), t.channel_bits.end(), 0.0) /
                         static_cast<double>(t.channels());
      EXPECT_LE(avg, 4.0 + 1e-12) << t.tensor;
      EXPECT_GT(avg, 4.0 - 1.0 / static_cast<double>(t.channels()) - 1e-12) << t.tensor;
      spread += *std::max_element(t.channel_bits.begin(), t.channel_bits.end()) !=
                *std::min_element(t.channel_bits.begin(), t.channel_bits.end());
      if (sem == Semantics::kOnnx) {
        const Tensor& w = g.initializers.at(t.tensor);
        const auto q = plan::quantize_values(w, t);
        const std::size_t inner = q.size() / t.channels();
        for (std::size_t i = 0; i < q.size(); ++i) {
          const int limit = (1 << (t.channel_bits[i / inner] - 1)) - 1;
          ASSERT_LE(std::abs(q[i]), limit) << t.tensor << " element " << i;
        }
      } else {
        // The seed's symmetric grid of M bits has at most 2^M - 1 levels per channel.
        graph::Graph planned = g;
        (void)plan::apply_plan(planned, p);
        const auto v = std::as_const(planned.initializers.at(t.tensor)).f32();
        const std::size_t inner = v.size() / t.channels();
        for (std::size_t c = 0; c < t.channels(); ++c) {
          std::set<float> levels(v.begin() + c * inner, v.begin() + (c + 1) * inner);
          EXPECT_LE(levels.size(), static_cast<std::size_t>((1 << t.channel_bits[c]) - 1)) << t.tensor;
        }
      }
    }
    EXPECT_GE(spread, 3);  // the widths do differ between channels
    if (sem == Semantics::kOnnx) {
      EXPECT_NO_THROW((void)exporter::insert_qdq(g, p));
    }
  }
  auto o = plan_options(8, quant::ClipMethod::kNone, Semantics::kOnnx, WeightGranularity::kTensor,
                        Placement::kDeploy);
  o.bit_alloc = plan::BitAlloc::kChannel;
  EXPECT_THROW(plan::check_plan_options(o), Error);  // per-tensor weights have no channels to allocate
}

}  // namespace
}  // namespace aciq::testing
