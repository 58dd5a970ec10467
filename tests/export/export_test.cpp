// Exporters: the QDQ model re-imported equals the plan's simulation bit for bit; TensorRT and ncnn
// files parse back to the plan's scales; plans that a format cannot hold are refused.
#include "aciq/export.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <map>

#include "../plan/plan_fixture.hpp"

namespace aciq::testing {
namespace {

using plan::Semantics;
using plan::WeightGranularity;
using policy::Placement;

void expect_bit_equal(const Tensor& a, const Tensor& b) {
  ASSERT_EQ(a.shape(), b.shape());
  const auto x = a.f32(), y = b.f32();
  for (std::size_t i = 0; i < x.size(); ++i) ASSERT_EQ(x[i], y[i]) << "element " << i;
}

TEST_F(Resnet20, QdqExportReimportedEqualsTheSimulation) {
  const Tensor batch = synthetic_batch(3, 11);
  for (int bits : {8, 4}) {
    for (auto wg : {WeightGranularity::kTensor, WeightGranularity::kChannel}) {
      SCOPED_TRACE(::testing::Message() << bits << " bits, " << plan::weight_granularity_name(wg));
      const auto p = make(bits, wg);
      const std::string bytes = exporter::find_format("qdq").write(g, p);
      // The QDQ model must not be BN-folded again or changed on import: compare on the reference kernels,
      // whose float order is the same whatever the layout.
      const auto qdq = onnx_import::load_model_from_bytes(bytes, "export.onnx");
      runtime::Executor exec(qdq, ctx, {.backend = runtime::Backend::kReference});
      const Tensor exported = exec.run({batch}).at(0);
      const Tensor simulated = simulate(g, p, batch, ctx, runtime::Backend::kReference);
      expect_bit_equal(exported, simulated);
    }
  }
}

TEST_F(Resnet20, QdqLayout) {
  const auto p = make(4, WeightGranularity::kChannel);
  const auto q = exporter::insert_qdq(g, p);
  std::map<std::string, int> ops;
  for (const auto& n : q.nodes) ++ops[n.op_type];
  int acts = 0, weights = 0, biases = 0;
  for (const auto& t : p.tensors) {
    acts += t.kind == plan::TensorKind::kActivation;
    weights += t.kind == plan::TensorKind::kWeight;
    biases += t.kind == plan::TensorKind::kBias;
  }
  EXPECT_EQ(ops["QuantizeLinear"], acts);
  EXPECT_EQ(ops["DequantizeLinear"], acts + weights + biases);
  // 4-bit activations (every conv point; the first conv and the classifier stay at 8) get an integer Clip.
  int four_bit = 0;
  for (const auto& t : p.tensors) four_bit += t.kind == plan::TensorKind::kActivation && t.bits == 4;
  EXPECT_EQ(
      ops["Clip"] - static_cast<int>(std::count_if(g.nodes.begin(), g.nodes.end(),
                                                   [](const graph::Node& n) { return n.op_type == "Clip"; })),
      four_bit);
  for (const auto& t : p.tensors) {
    if (t.kind == plan::TensorKind::kActivation) continue;
    EXPECT_EQ(q.initializer(t.tensor), nullptr) << t.tensor << ": the float initializer must be gone";
    const Tensor* qt = q.initializer(t.tensor + "_quantized");
    ASSERT_NE(qt, nullptr) << t.tensor;
    EXPECT_EQ(qt->dtype(), t.kind == plan::TensorKind::kBias ? DType::kInt32 : DType::kInt8);
    // The stored integers dequantize to the simulation's weights.
    graph::Graph sim = g;
    plan::apply_plan(sim, p);
    const auto want = sim.initializer(t.tensor)->f32();
    const auto& dq = *std::find_if(q.nodes.begin(), q.nodes.end(), [&](const graph::Node& n) {
      return n.op_type == "DequantizeLinear" && n.outputs[0] == t.tensor;
    });
    EXPECT_EQ(dq.get_int("axis", -1), t.per_channel() ? t.axis : -1);
    std::int64_t inner = 1;
    for (std::size_t d = 1; d < qt->rank(); ++d) inner *= qt->dim(d);
    for (std::int64_t i = 0; i < qt->numel(); ++i) {
      const std::int64_t c = t.per_channel() ? i / inner : 0;
      const std::int32_t v =
          t.kind == plan::TensorKind::kBias ? qt->data<std::int32_t>()[i] : qt->data<std::int8_t>()[i];
      ASSERT_EQ(static_cast<float>(v - t.zero_point[c]) * t.scale[c], want[i]) << t.tensor << " " << i;
      ASSERT_GE(v, t.qmin);
      ASSERT_LE(v, t.qmax);
    }
  }
}

TEST_F(Resnet20, TensorRtCacheParsesBackToThePlansScales) {
  const auto p = make(8, WeightGranularity::kChannel);
  const std::string text = exporter::tensorrt_cache(g, p);
  EXPECT_EQ(text.rfind("TRT-8601-EntropyCalibration2\n", 0), 0u);
  const auto entries = exporter::parse_tensorrt_cache(text, "cache");
  const auto acts = p.activations();
  ASSERT_EQ(entries.size(), acts.size());
  for (std::size_t i = 0; i < acts.size(); ++i) {
    EXPECT_EQ(entries[i].name, acts[i]->tensor);
    const double amax = std::max(std::abs(acts[i]->lo[0]), std::abs(acts[i]->hi[0]));
    EXPECT_EQ(entries[i].scales.at(0), static_cast<float>(amax / 127.0)) << acts[i]->tensor;
  }
  // The documented example: 1/127 is 3c010204.
  const auto one = exporter::parse_tensorrt_cache("TRT-8601-EntropyCalibration2\nx: 3c010204\n", "ex");
  EXPECT_EQ(one.at(0).scales.at(0), 1.0f / 127.0f);
  EXPECT_THROW(exporter::parse_tensorrt_cache("x: 3c010204\n", "nohdr"), Error);
}

TEST_F(Resnet20, NcnnTableParsesBackToIndependentScales) {
  const auto p = make(8, WeightGranularity::kChannel);
  const auto entries = exporter::parse_ncnn_table(exporter::ncnn_table(g, p), "table");
  std::map<std::string, std::vector<float>> by_name;
  for (const auto& e : entries) by_name[e.name] = e.scales;
  int layers = 0;
  for (const auto& n : g.nodes) {
    if (n.op_type != "Conv" && n.op_type != "Gemm") continue;
    ++layers;
    // Weight scales from the weight tensor itself: 127 / max |w| per output channel (axis 0 for
    // Conv and transB Gemm).
    const Tensor& w = *g.initializer(n.inputs[1]);
    const std::int64_t channels = w.dim(0), inner = w.numel() / channels;
    const auto& ws = by_name.at(n.name + "_param_0");
    ASSERT_EQ(static_cast<std::int64_t>(ws.size()), channels) << n.name;
    for (std::int64_t c = 0; c < channels; ++c) {
      float amax = 0;
      for (std::int64_t i = 0; i < inner; ++i) amax = std::max(amax, std::abs(w.f32()[c * inner + i]));
      EXPECT_NEAR(ws[c], 127.0 / amax, 1e-6 + 1e-6 * 127.0 / amax) << n.name << " channel " << c;
    }
    const auto* x = p.find(n.inputs[0], plan::TensorKind::kActivation);
    ASSERT_NE(x, nullptr);
    const double amax = std::max(std::abs(x->lo[0]), std::abs(x->hi[0]));
    EXPECT_NEAR(by_name.at(n.name).at(0), 127.0 / amax, 1e-6 + 1e-6 * 127.0 / amax) << n.name;
  }
  EXPECT_EQ(entries.size(), 2u * layers);
}

TEST_F(Resnet20, FormatsRefuseWhatTheyCannotHold) {
  EXPECT_THROW(
      exporter::insert_qdq(g, make(8, WeightGranularity::kTensor, Placement::kOutputs, Semantics::kSeed)),
      Error);
  EXPECT_THROW(exporter::tensorrt_cache(g, make(4, WeightGranularity::kChannel)), Error);
  EXPECT_THROW(exporter::ncnn_table(g, make(8, WeightGranularity::kChannel, Placement::kOutputs)), Error);
  EXPECT_THROW(exporter::find_format("tflite"), Error);
  auto other = make(8, WeightGranularity::kChannel);
  other.model_hash = "0000000000000000";
  EXPECT_THROW(exporter::find_format("qdq").write(g, other), Error);
}

// The QOperator lowering puts every convolution of the deploy layout on QLinearConv (the residual Adds
// stay float between DQ and Q) and the classifier on MatMulInteger; its logits agree with the simulation
// up to the float rounding docs/int8.md describes.
TEST_F(Resnet20, QoperatorLoweringRunsEveryConvOnIntegersAndAgreesWithTheSimulation) {
  const Tensor batch = synthetic_batch(4, 13);
  for (auto wg : {WeightGranularity::kTensor, WeightGranularity::kChannel}) {
    SCOPED_TRACE(plan::weight_granularity_name(wg));
    const auto p = make(8, wg);
    const auto low = exporter::lower_to_qoperator(exporter::insert_qdq(g, p));
    std::map<std::string, int> ops;
    for (const auto& n : low.nodes) ++ops[n.op_type];
    const auto convs = std::count_if(g.nodes.begin(), g.nodes.end(),
                                     [](const graph::Node& n) { return n.op_type == "Conv"; });
    EXPECT_EQ(ops["QLinearConv"], convs);
    EXPECT_EQ(ops["Conv"], 0);
    EXPECT_EQ(ops["Gemm"], 0);
    EXPECT_EQ(ops["MatMulInteger"], 1);
    // The Relu behind each conv is done by its Q's saturation (zero point 0 of a uint8 grid): gone.
    for (const auto& n : low.nodes) {
      if (n.op_type != "Relu") continue;
      const graph::Node* prod = low.producer(n.inputs[0]);
      ASSERT_NE(prod, nullptr);
      EXPECT_NE(prod->op_type, "QLinearConv") << n.name;
    }
    runtime::Executor exec(low, ctx, {.backend = runtime::Backend::kReference});
    const Tensor integer = exec.run({batch}).at(0);
    const Tensor simulated = simulate(g, p, batch, ctx, runtime::Backend::kReference);
    ASSERT_EQ(integer.shape(), simulated.shape());
    const auto a = integer.f32(), b = simulated.f32();
    float range = 0.0f, worst = 0.0f;
    for (std::size_t i = 0; i < a.size(); ++i) {
      range = std::max(range, std::fabs(b[i]));
      worst = std::max(worst, std::fabs(a[i] - b[i]));
    }
    // One requantization step of difference somewhere upstream moves a logit by far less than 2% of the
    // logit range; a wrong scale, zero point or dropped activation moves it by much more.
    EXPECT_LE(worst, 0.02f * range);
    const std::int64_t classes = integer.dim(1);
    for (std::int64_t r = 0; r < integer.dim(0); ++r) {
      const auto row_a = a.subspan(r * classes, classes), row_b = b.subspan(r * classes, classes);
      EXPECT_EQ(std::max_element(row_a.begin(), row_a.end()) - row_a.begin(),
                std::max_element(row_b.begin(), row_b.end()) - row_b.begin())
          << "sample " << r;
    }
  }
}

// A hand-made QDQ chain x -> Q/DQ -> Conv(1x1) -> Clip(0, hi) -> Q/DQ: the Clip is fused away only when the
// Q's range [0, 255 s] ends inside it; either way the lowered graph equals the QDQ graph's output exactly.
graph::Graph clip_chain(float hi) {
  graph::Graph g;
  g.source = "clip_chain";
  g.opset = 13;
  g.inputs.push_back({"x", {1, 1, 2, 3}, DType::kFloat32});
  g.outputs = {"y"};
  const auto f32 = [](Shape s, std::vector<float> v) { return Tensor::from_f32(std::move(s), v); };
  const auto u8 = [](std::uint8_t v) {
    Tensor t(DType::kUInt8, {});
    t.data<std::uint8_t>()[0] = v;
    return t;
  };
  Tensor w(DType::kInt8, {1, 1, 1, 1});
  w.data<std::int8_t>()[0] = 3;
  Tensor wz(DType::kInt8, {});
  wz.data<std::int8_t>()[0] = 0;
  g.initializers["xs"] = f32({}, {0.05f});
  g.initializers["xz"] = u8(128);
  g.initializers["w"] = std::move(w);
  g.initializers["ws"] = f32({}, {0.5f});
  g.initializers["wz"] = std::move(wz);
  g.initializers["lo"] = f32({}, {0.0f});
  g.initializers["hi"] = f32({}, {hi});
  g.initializers["ys"] = f32({}, {0.01f});
  g.initializers["yz"] = u8(0);
  const auto node = [&](std::string op, std::vector<std::string> in, std::string out) {
    graph::Node n;
    n.name = op + "_" + out;
    n.op_type = std::move(op);
    n.inputs = std::move(in);
    n.outputs = {std::move(out)};
    g.nodes.push_back(std::move(n));
  };
  node("QuantizeLinear", {"x", "xs", "xz"}, "xq");
  node("DequantizeLinear", {"xq", "xs", "xz"}, "xd");
  node("DequantizeLinear", {"w", "ws", "wz"}, "wd");
  node("Conv", {"xd", "wd"}, "c");
  node("Clip", {"c", "lo", "hi"}, "r");
  node("QuantizeLinear", {"r", "ys", "yz"}, "yq");
  node("DequantizeLinear", {"yq", "ys", "yz"}, "y");
  return g;
}

TEST(QoperatorLowering, DropsAClipOnlyWhenTheQuantizerSaturationPerformsIt) {
  Context ctx{1};
  const Tensor x = Tensor::from_f32({1, 1, 2, 3}, std::vector<float>{-3.0f, -0.2f, 0.0f, 0.1f, 0.4f, 3.0f});
  // hi = 1.0 lies inside the Q range [0, 2.55]: the Clip must stay, so no QLinearConv forms; hi = 5 lies
  // beyond it: QLinearConv, no Clip.
  for (float hi : {1.0f, 5.0f}) {
    SCOPED_TRACE(hi);
    const graph::Graph qdq = clip_chain(hi);
    const graph::Graph low = exporter::lower_to_qoperator(qdq);
    std::map<std::string, int> ops;
    for (const auto& n : low.nodes) ++ops[n.op_type];
    EXPECT_EQ(ops["Clip"], hi < 2.55f ? 1 : 0);
    EXPECT_EQ(ops["QLinearConv"], hi < 2.55f ? 0 : 1);
    EXPECT_EQ(ops["ConvInteger"], hi < 2.55f ? 1 : 0);
    runtime::Executor a(qdq, ctx, {.backend = runtime::Backend::kReference});
    runtime::Executor b(low, ctx, {.backend = runtime::Backend::kReference});
    expect_bit_equal(b.run({x}).at(0), a.run({x}).at(0));
  }
}

}  // namespace
}  // namespace aciq::testing
