// Executor tests: fast path (oneDNN, blocked layouts, fusion) against the reference path; observers; arena
// reuse.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>

#include "../onnx/model_builder.hpp"
#include "aciq/eval.hpp"
#include "aciq/onnx.hpp"
#include "aciq/runtime.hpp"

namespace aciq::testing {
namespace {

// A small CNN whose channel counts (16, 32) fill oneDNN's channel blocks, exercising blocked
// layouts, depthwise conv, fused ReLU/ReLU6, residual Add, pooling, concat and the classifier.
std::string blocked_cnn_bytes() {
  auto m = make_model();
  add_input(m, "x", {-1, 3, 12, 12});
  auto* g = m.mutable_graph();
  *g->add_initializer() = make_tensor("w1", {16, 3, 3, 3}, random_values(16 * 27, 11));
  *g->add_initializer() = make_tensor("b1", {16}, random_values(16, 12));
  *g->add_initializer() = make_tensor("wd", {16, 1, 3, 3}, random_values(16 * 9, 13));
  *g->add_initializer() = make_tensor("w2", {16, 16, 1, 1}, random_values(256, 14));
  *g->add_initializer() = make_tensor("w3", {32, 16, 3, 3}, random_values(32 * 144, 15));
  *g->add_initializer() = make_tensor("b3", {32}, random_values(32, 16));
  *g->add_initializer() = make_tensor("fc", {10, 48}, random_values(480, 17));
  *g->add_initializer() = make_tensor("lo", {}, {0.0f});
  *g->add_initializer() = make_tensor("hi", {}, {6.0f});
  auto* c1 = add_node(m, "Conv", {"x", "w1", "b1"}, {"c1"}, "conv1");
  set_ints(c1, "pads", {1, 1, 1, 1});
  add_node(m, "Relu", {"c1"}, {"r1"}, "relu1");
  auto* dw = add_node(m, "Conv", {"r1", "wd"}, {"d"}, "dw");
  set_ints(dw, "pads", {1, 1, 1, 1});
  set_int(dw, "group", 16);
  add_node(m, "Clip", {"d", "lo", "hi"}, {"d6"}, "relu6");
  add_node(m, "Conv", {"d6", "w2"}, {"pw"}, "pw");
  add_node(m, "Add", {"pw", "r1"}, {"res"}, "add");
  add_node(m, "Relu", {"res"}, {"res_r"}, "relu2");
  auto* mp = add_node(m, "MaxPool", {"res_r"}, {"mp"}, "pool");
  set_ints(mp, "kernel_shape", {2, 2});
  set_ints(mp, "strides", {2, 2});
  auto* c3 = add_node(m, "Conv", {"mp", "w3", "b3"}, {"c3"}, "conv3");
  set_ints(c3, "pads", {1, 1, 1, 1});
  add_node(m, "Relu", {"c3"}, {"r3"}, "relu3");
  set_int(add_node(m, "Concat", {"r3", "mp"}, {"cat"}, "concat"), "axis", 1);
  add_node(m, "GlobalAveragePool", {"cat"}, {"gap"}, "gap");
  add_node(m, "Flatten", {"gap"}, {"flat"}, "flatten");
  auto* fc = add_node(m, "Gemm", {"flat", "fc"}, {"logits"}, "fc");
  set_int(fc, "transB", 1);
  add_output(m, "logits");
  std::string s;
  m.SerializeToString(&s);
  return s;
}

TEST(Executor, FastMatchesReferenceWithBlockedLayouts) {
  const auto g = onnx_import::load_model_from_bytes(blocked_cnn_bytes(), "blocked.onnx");
  Context ctx(2);
  runtime::Executor fast(g, ctx, {.backend = runtime::Backend::kFast});
  runtime::Executor ref(g, ctx, {.backend = runtime::Backend::kReference});
  for (std::int64_t n : {1, 3}) {
    Tensor x = Tensor::from_f32({n, 3, 12, 12}, random_values(static_cast<std::size_t>(n) * 432, 21));
    const auto yf = fast.run({x}).at(0);
    const auto yr = ref.run({x}).at(0);
    ASSERT_EQ(yf.shape(), (Shape{n, 10}));
    for (std::int64_t i = 0; i < yf.numel(); ++i)
      EXPECT_NEAR(yf.f32()[i], yr.f32()[i], 1e-4 + 1e-4 * std::fabs(yr.f32()[i]));
  }
}

// Records per-sample sums of observed values and can overwrite them (like fake quantization).
class SumObserver : public runtime::Observer {
 public:
  void observe(std::size_t index, Tensor& value) override {
    double s = 0;
    for (float v : value.f32()) s += v;
    sums.resize(std::max(sums.size(), index + 1));
    sums[index] = s;
    if (zero) std::fill(value.f32().begin(), value.f32().end(), 0.0f);
  }
  std::vector<double> sums;
  bool zero = false;
};

TEST(Executor, ObserversSeeTheSameValuesOnBothPaths) {
  const auto g = onnx_import::load_model_from_bytes(blocked_cnn_bytes(), "blocked.onnx");
  Context ctx(1);
  Tensor x = Tensor::from_f32({2, 3, 12, 12}, random_values(864, 5));
  std::vector<std::vector<double>> sums;
  for (auto backend : {runtime::Backend::kFast, runtime::Backend::kReference}) {
    runtime::Executor e(g, ctx, {.backend = backend});
    // Observing c1 and pw disables fusing their activations, so the raw conv output is seen.
    e.set_observed({"c1", "pw", "c3"});
    SumObserver obs;
    e.run({x}, &obs);
    ASSERT_EQ(obs.sums.size(), 3u);
    sums.push_back(obs.sums);
  }
  for (std::size_t i = 0; i < 3; ++i) EXPECT_NEAR(sums[0][i], sums[1][i], 1e-3 * (1 + std::fabs(sums[1][i])));
}

// Observing the output of an activation that was fused into its producer (conv+relu, add+relu).
TEST(Executor, ObservesFusedActivationOutputs) {
  const auto g = onnx_import::load_model_from_bytes(blocked_cnn_bytes(), "blocked.onnx");
  Context ctx(1);
  Tensor x = Tensor::from_f32({2, 3, 12, 12}, random_values(864, 6));
  std::vector<std::vector<double>> sums;
  for (auto backend : {runtime::Backend::kFast, runtime::Backend::kReference}) {
    runtime::Executor e(g, ctx, {.backend = backend});
    e.set_observed({"r3", "res_r"});
    SumObserver obs;
    e.run({x}, &obs);
    ASSERT_EQ(obs.sums.size(), 2u);
    sums.push_back(obs.sums);
  }
  for (std::size_t i = 0; i < 2; ++i) EXPECT_NEAR(sums[0][i], sums[1][i], 1e-3 * (1 + std::fabs(sums[1][i])));
}

TEST(Executor, ObserverModificationsPropagate) {
  const auto g = onnx_import::load_model_from_bytes(blocked_cnn_bytes(), "blocked.onnx");
  Context ctx(1);
  runtime::Executor e(g, ctx, {});
  e.set_observed({"c3"});
  SumObserver obs;
  obs.zero = true;
  Tensor x = Tensor::from_f32({1, 3, 12, 12}, random_values(432, 5));
  const auto y = e.run({x}, &obs).at(0);
  // With c3 zeroed the logits come only from the max-pooled branch; compare against a rerun
  // where the reference path zeroes the same value.
  runtime::Executor r(g, ctx, {.backend = runtime::Backend::kReference});
  r.set_observed({"c3"});
  SumObserver obs2;
  obs2.zero = true;
  const auto yr = r.run({x}, &obs2).at(0);
  for (std::int64_t i = 0; i < y.numel(); ++i) EXPECT_NEAR(y.f32()[i], yr.f32()[i], 1e-4);
}

// Fake quantization through observe() only: the executor then applies the fused activation in a
// separate pass (Observer's default observe_activation).
class UnfusedFakeQuant : public runtime::Observer {
 public:
  explicit UnfusedFakeQuant(std::vector<quant::AffineQuantParams> p) : params(std::move(p)) {}
  void observe(std::size_t index, Tensor& value) override {
    quant::fake_quant_ref(value.f32(), params.at(index));
  }
  std::vector<quant::AffineQuantParams> params;
};

// An observed conv output followed by Relu/ReLU6 is quantized and activated in one pass
// (FakeQuantObserver::observe_activation); the logits must equal quantizing and then activating, bit for bit,
// also when the activated value is observed as well (r1).
TEST(Executor, FusedQuantActivationEqualsSeparatePasses) {
  const auto g = onnx_import::load_model_from_bytes(blocked_cnn_bytes(), "blocked.onnx");
  Context ctx(2);
  const std::vector<std::string> points{"c1", "d", "c3", "r1"};
  std::vector<quant::AffineQuantParams> params;
  for (float hi : {0.5f, 0.8f, 1.2f, 0.9f}) params.push_back(quant::affine_params(-hi, hi, 3));
  Tensor x = Tensor::from_f32({3, 3, 12, 12}, random_values(3 * 432, 9));
  runtime::Executor fused(g, ctx, {});
  fused.set_observed(points);
  eval::FakeQuantObserver fq(params, ctx);
  const auto a = fused.run({x}, &fq).at(0);
  runtime::Executor plain(g, ctx, {});
  plain.set_observed(points);
  UnfusedFakeQuant unfused(params);
  const auto b = plain.run({x}, &unfused).at(0);
  ASSERT_EQ(a.numel(), b.numel());
  for (std::int64_t i = 0; i < a.numel(); ++i) EXPECT_EQ(a.f32()[i], b.f32()[i]) << i;
  // And the quantization changed something (the test would be vacuous otherwise).
  const auto c = plain.run({x}).at(0);
  double diff = 0;
  for (std::int64_t i = 0; i < a.numel(); ++i) diff += std::fabs(a.f32()[i] - c.f32()[i]);
  EXPECT_GT(diff, 1e-3);
}

// Statistics through observe() only, with the executor's default activation pass in between.
class UnfusedCollect : public eval::CollectObserver {
 public:
  using eval::CollectObserver::CollectObserver;
  void observe_activation(std::size_t index, Tensor& value, const Activation& act,
                          std::size_t activated_index, Context& ctx) override {
    runtime::Observer::observe_activation(index, value, act, activated_index, ctx);
  }
};

// CollectObserver reduces raw value, activation and activated value per sample in one trip through
// memory; the statistics files must be byte-identical to the three-pass default, and so must the logits.
TEST(Executor, FusedCollectEqualsSeparatePasses) {
  const auto g = onnx_import::load_model_from_bytes(blocked_cnn_bytes(), "blocked.onnx");
  Context ctx(2);
  const std::vector<std::string> points{"c1", "r1", "d", "d6", "c3", "pw"};
  calib::StatsFile fa, fb;
  // Batch 1 splits each sample over the threads; batch 3 runs samples in parallel.
  for (const std::int64_t batch : {1, 3}) {
    Tensor x = Tensor::from_f32({batch, 3, 12, 12}, random_values(static_cast<std::size_t>(batch) * 432, 10));
    runtime::Executor e(g, ctx, {});
    e.set_observed(points);
    eval::CollectObserver fused(points, ctx);
    UnfusedCollect unfused(points, ctx);
    const auto a = e.run({x}, &fused).at(0);
    const auto b = e.run({x}, &unfused).at(0);
    for (std::int64_t i = 0; i < a.numel(); ++i) EXPECT_EQ(a.f32()[i], b.f32()[i]) << i;
    fa.points = fused.accumulator().points();
    fb.points = unfused.accumulator().points();
    ASSERT_EQ(fa.points.size(), points.size());
    EXPECT_EQ(fa.to_json(), fb.to_json());
  }
  // The raw conv output has negative values, its ReLU does not: the two points differ.
  EXPECT_LT(fa.points[0][calib::Stat::kMin].min, 0.0);
  EXPECT_GE(fa.points[1][calib::Stat::kMin].min, 0.0);
}

// Conv -> Relu -> Clip(lo, hi): a chain of two activations behind an observed conv output.
std::string activation_chain_bytes(float lo, float hi) {
  auto m = make_model();
  add_input(m, "x", {-1, 3, 8, 8});
  auto* g = m.mutable_graph();
  *g->add_initializer() = make_tensor("w", {16, 3, 3, 3}, random_values(16 * 27, 31));
  *g->add_initializer() = make_tensor("lo", {}, {lo});
  *g->add_initializer() = make_tensor("hi", {}, {hi});
  set_ints(add_node(m, "Conv", {"x", "w"}, {"c"}, "conv"), "pads", {1, 1, 1, 1});
  add_node(m, "Relu", {"c"}, {"r"}, "relu");
  add_node(m, "Clip", {"r", "lo", "hi"}, {"q"}, "clip");
  add_output(m, "q");
  std::string s;
  m.SerializeToString(&s);
  return s;
}

// The Relu goes to the observer of c; the Clip after it must not be fused into the convolution as
// well (the observer would then see clipped values), and an observer of q must still run.
TEST(Executor, ActivationChainBehindObservedValue) {
  const auto g = onnx_import::load_model_from_bytes(activation_chain_bytes(0.2f, 0.6f), "chain.onnx");
  Context ctx(2);
  Tensor x = Tensor::from_f32({2, 3, 8, 8}, random_values(384, 32));
  std::vector<std::vector<double>> sums;
  std::vector<Tensor> outs;
  for (auto backend : {runtime::Backend::kFast, runtime::Backend::kReference}) {
    runtime::Executor e(g, ctx, {.backend = backend});
    e.set_observed({"c", "q"});
    SumObserver obs;
    outs.push_back(e.run({x}, &obs).at(0));
    ASSERT_EQ(obs.sums.size(), 2u);
    sums.push_back(obs.sums);
  }
  for (std::size_t i = 0; i < 2; ++i) EXPECT_NEAR(sums[0][i], sums[1][i], 1e-3 * (1 + std::fabs(sums[1][i])));
  EXPECT_LT(sums[0][0], 0.2 * 2 * 16 * 64);  // raw conv output: not clipped to [0.2, 0.6]
  for (std::int64_t i = 0; i < outs[0].numel(); ++i) EXPECT_NEAR(outs[0].f32()[i], outs[1].f32()[i], 1e-4);
}

// Clip with min > max is legal ONNX (every element becomes max); fused collect must accept it and
// agree with the three-step default.
TEST(Executor, FusedCollectWithEmptyClipRange) {
  const auto g = onnx_import::load_model_from_bytes(activation_chain_bytes(0.6f, 0.2f), "chain.onnx");
  Context ctx(2);
  const std::vector<std::string> points{"r", "q"};
  Tensor x = Tensor::from_f32({3, 3, 8, 8}, random_values(576, 33));
  runtime::Executor e(g, ctx, {});
  e.set_observed(points);
  eval::CollectObserver fused(points, ctx);
  UnfusedCollect unfused(points, ctx);
  const auto a = e.run({x}, &fused).at(0);
  const auto b = e.run({x}, &unfused).at(0);
  for (std::int64_t i = 0; i < a.numel(); ++i) {
    EXPECT_EQ(a.f32()[i], b.f32()[i]) << i;
    EXPECT_EQ(a.f32()[i], 0.2f) << i;
  }
  calib::StatsFile fa, fb;
  fa.points = fused.accumulator().points();
  fb.points = unfused.accumulator().points();
  EXPECT_EQ(fa.to_json(), fb.to_json());
}

// Residual-block variants for the conv+sum fusion. A chain x -> conv "a" (+Relu) -> conv "b" (+Relu)
// -> conv "c" gives values a_r, b_r, c (16 channels, one oneDNN block); `tail` adds the Add and what
// follows it. Weights are small so sums stay in a range where fast and reference agree to 1e-4.
std::string residual_bytes(const std::function<void(onnx::ModelProto&)>& tail) {
  auto m = make_model();
  add_input(m, "x", {-1, 16, 6, 6});
  auto* g = m.mutable_graph();
  int seed = 40;
  for (const char* w : {"wa", "wb", "wc"}) {
    std::vector<float> v = random_values(16 * 16 * 9, seed++);
    for (float& f : v) f *= 0.2f;
    *g->add_initializer() = make_tensor(w, {16, 16, 3, 3}, v);
  }
  *g->add_initializer() = make_tensor("bc", {16}, random_values(16, seed++));
  set_ints(add_node(m, "Conv", {"x", "wa"}, {"a"}, "conv_a"), "pads", {1, 1, 1, 1});
  add_node(m, "Relu", {"a"}, {"a_r"}, "relu_a");
  set_ints(add_node(m, "Conv", {"a_r", "wb"}, {"b"}, "conv_b"), "pads", {1, 1, 1, 1});
  add_node(m, "Relu", {"b"}, {"b_r"}, "relu_b");
  set_ints(add_node(m, "Conv", {"b_r", "wc", "bc"}, {"c"}, "conv_c"), "pads", {1, 1, 1, 1});
  tail(m);
  std::string bytes;
  m.SerializeToString(&bytes);
  return bytes;
}

// Runs fast and reference on the same input; returns the fast plan's steps.
std::vector<std::string> expect_fast_matches_reference(const std::string& bytes,
                                                       const std::vector<std::string>& observed = {}) {
  const auto g = onnx_import::load_model_from_bytes(bytes, "residual.onnx");
  Context ctx(2);
  runtime::Executor fast(g, ctx, {.backend = runtime::Backend::kFast});
  runtime::Executor ref(g, ctx, {.backend = runtime::Backend::kReference});
  fast.set_observed(observed);
  ref.set_observed(observed);
  Tensor x = Tensor::from_f32({2, 16, 6, 6}, random_values(2 * 16 * 36, 31));
  SumObserver fo, ro;
  for (int rep = 0; rep < 2; ++rep) {  // the second run reuses the plan and its buffers
    const auto yf = fast.run({x}, &fo);
    const auto yr = ref.run({x}, &ro);
    EXPECT_EQ(yf.size(), yr.size());
    for (std::size_t o = 0; o < yf.size() && o < yr.size(); ++o) {
      EXPECT_EQ(yf[o].shape(), yr[o].shape());
      if (yf[o].shape() != yr[o].shape()) continue;
      std::int64_t bad = 0;  // count, so a wrong fusion reports once rather than per element
      for (std::int64_t i = 0; i < yf[o].numel(); ++i)
        bad += std::fabs(yf[o].f32()[i] - yr[o].f32()[i]) > 1e-4 + 1e-4 * std::fabs(yr[o].f32()[i]);
      EXPECT_EQ(bad, 0) << "output " << o << " run " << rep;
    }
  }
  EXPECT_EQ(fo.sums.size(), ro.sums.size());
  for (std::size_t i = 0; i < fo.sums.size() && i < ro.sums.size(); ++i)
    EXPECT_NEAR(fo.sums[i], ro.sums[i], 1e-3 * (1 + std::fabs(ro.sums[i])));
  return fast.planned_steps({{2, 16, 6, 6}});
}

// A residual_bytes tail: the graph output y = Add(c, summand).
std::function<void(onnx::ModelProto&)> output_c_plus(const std::string& summand) {
  return [summand](onnx::ModelProto& m) {
    add_node(m, "Add", {"c", summand}, {"y"}, "add");
    add_output(m, "y");
  };
}

bool has_step(const std::vector<std::string>& steps, const std::string& name) {
  return std::find(steps.begin(), steps.end(), name) != steps.end();
}

// SiLU as exporters write it, Conv -> Sigmoid -> Mul(y, s) (and Mul(s, y)), becomes one convolution with a
// swish post-op on the fast path; the output matches the reference backend. Observing the Conv output (or
// a second reader of it) keeps the three steps.
onnx::ModelProto silu_model(bool swapped, bool second_reader, const std::string& gate = "Sigmoid",
                            float alpha = 1.0f / 6.0f) {
  auto m = make_model(13);
  add_input(m, "x", {-1, 3, 9, 11});
  *m.mutable_graph()->add_initializer() =
      make_tensor("w", {8, 3, 3, 3}, random_values(8 * 27, 31, -0.5f, 0.5f));
  *m.mutable_graph()->add_initializer() = make_tensor("b", {8}, random_values(8, 32));
  auto* c = add_node(m, "Conv", {"x", "w", "b"}, {"y"}, "conv");
  set_ints(c, "pads", {1, 1, 1, 1});
  auto* gate_node = add_node(m, gate, {"y"}, {"s"}, "sigmoid");
  if (gate == "HardSigmoid") {
    auto* a = gate_node->add_attribute();
    a->set_name("alpha");
    a->set_type(onnx::AttributeProto::FLOAT);
    a->set_f(alpha);
  }
  add_node(m, "Mul", swapped ? std::vector<std::string>{"s", "y"} : std::vector<std::string>{"y", "s"}, {"z"},
           "mul");
  if (second_reader) {
    add_node(m, "Relu", {"y"}, {"r"}, "relu");
    add_node(m, "Add", {"z", "r"}, {"out"}, "add");
    add_output(m, "out");
  } else {
    add_output(m, "z");
  }
  return m;
}

TEST(Executor, SigmoidMulFusesIntoTheConvAsSwish) {
  Context ctx(2);
  const Tensor x = Tensor::from_f32({2, 3, 9, 11}, random_values(2 * 3 * 9 * 11, 33, -3.0f, 3.0f));
  for (const std::string gate : {"Sigmoid", "HardSigmoid"})
    for (const bool swapped : {false, true}) {
      for (const bool second_reader : {false, true}) {
        SCOPED_TRACE(gate);
        std::string bytes;
        silu_model(swapped, second_reader, gate).SerializeToString(&bytes);
        const auto g = onnx_import::load_model_from_bytes(bytes, "silu.onnx");
        runtime::Executor fast(g, ctx, {.backend = runtime::Backend::kFast});
        runtime::Executor ref(g, ctx, {.backend = runtime::Backend::kReference});
        const auto steps = fast.planned_steps({{2, 3, 9, 11}});
        EXPECT_EQ(has_step(steps, "sigmoid"), second_reader) << swapped;
        EXPECT_EQ(has_step(steps, "mul"), second_reader) << swapped;
        const Tensor yf = fast.run({x}).at(0), yr = ref.run({x}).at(0);
        ASSERT_EQ(yf.shape(), yr.shape());
        for (std::int64_t i = 0; i < yf.numel(); ++i)
          ASSERT_NEAR(yf.f32()[i], yr.f32()[i], 1e-5 + 1e-5 * std::fabs(yr.f32()[i])) << i;
      }
    }
  // An observer of y needs the raw Conv output: no fusion, and it sees the same values on both backends.
  std::string bytes;
  silu_model(false, false).SerializeToString(&bytes);
  const auto g = onnx_import::load_model_from_bytes(bytes, "silu.onnx");
  runtime::Executor fast(g, ctx, {.backend = runtime::Backend::kFast});
  fast.set_observed({"y"});
  EXPECT_TRUE(has_step(fast.planned_steps({{2, 3, 9, 11}}), "sigmoid"));
  // A HardSigmoid other than hardswish's (alpha 0.2) has no oneDNN form: unfused.
  silu_model(false, false, "HardSigmoid", 0.2f).SerializeToString(&bytes);
  runtime::Executor other(onnx_import::load_model_from_bytes(bytes, "hs.onnx"), ctx,
                          {.backend = runtime::Backend::kFast});
  EXPECT_TRUE(has_step(other.planned_steps({{2, 3, 9, 11}}), "sigmoid"));
}

TEST(Executor, ResidualAddFusesIntoTheConv) {
  const auto g = onnx_import::load_model_from_bytes(blocked_cnn_bytes(), "blocked.onnx");
  Context ctx(1);
  runtime::Executor fast(g, ctx, {.backend = runtime::Backend::kFast});
  runtime::Executor ref(g, ctx, {.backend = runtime::Backend::kReference});
  // pw + r1 -> Relu becomes one convolution with sum and ReLU post-ops.
  const auto steps = fast.planned_steps({{2, 3, 12, 12}});
  EXPECT_FALSE(has_step(steps, "add"));
  EXPECT_FALSE(has_step(steps, "relu2"));
  EXPECT_TRUE(has_step(steps, "pw"));
  EXPECT_TRUE(has_step(ref.planned_steps({{2, 3, 12, 12}}), "add"));
}

TEST(Executor, ResidualSumIntoEarlierValue) {
  // c + a_r -> Relu -> output: conv_c writes into a_r's buffer (a graph output, hence plain, while
  // conv_c reads blocked b_r: the staged path with the summand reordered in).
  const auto steps = expect_fast_matches_reference(residual_bytes([](onnx::ModelProto& m) {
    add_node(m, "Add", {"c", "a_r"}, {"res"}, "add");
    add_node(m, "Relu", {"res"}, {"y"}, "relu_out");
    add_output(m, "y");
  }));
  EXPECT_FALSE(has_step(steps, "add"));
  EXPECT_FALSE(has_step(steps, "relu_out"));
}

TEST(Executor, ResidualSumIntoLaterConvOfTwo) {
  // Add(c, d) where d's conv runs after c's: the sum goes into the later conv, written over c.
  const auto steps = expect_fast_matches_reference(residual_bytes([](onnx::ModelProto& m) {
    set_ints(add_node(m, "Conv", {"a_r", "wb"}, {"d"}, "conv_d"), "pads", {1, 1, 1, 1});
    add_node(m, "Add", {"c", "d"}, {"res"}, "add");
    set_ints(add_node(m, "MaxPool", {"res"}, {"y"}, "pool"), "kernel_shape", {2, 2});
    add_output(m, "y");
  }));
  EXPECT_FALSE(has_step(steps, "add"));
}

TEST(Executor, ResidualSumObservedBeforeAndAfterItsActivation) {
  const auto steps = expect_fast_matches_reference(
      residual_bytes([](onnx::ModelProto& m) {
        add_node(m, "Add", {"a_r", "c"}, {"res"}, "add");
        add_node(m, "Relu", {"res"}, {"res_r"}, "relu_res");
        set_ints(add_node(m, "Conv", {"res_r", "wa"}, {"y"}, "conv_y"), "pads", {1, 1, 1, 1});
        add_output(m, "y");
      }),
      {"res", "res_r", "a_r"});
  EXPECT_FALSE(has_step(steps, "add"));
}

TEST(Executor, ResidualSumNotFusedWhenTheSummandIsStillNeeded) {
  // a_r is read after the Add: overwriting it would corrupt the Mul.
  auto steps = expect_fast_matches_reference(residual_bytes([](onnx::ModelProto& m) {
    add_node(m, "Add", {"c", "a_r"}, {"res"}, "add");
    add_node(m, "Mul", {"res", "a_r"}, {"y"}, "mul");
    add_output(m, "y");
  }));
  EXPECT_TRUE(has_step(steps, "add"));
  // The summand is the conv's own input: conv_c would overwrite what it reads.
  steps = expect_fast_matches_reference(residual_bytes(output_c_plus("b_r")));
  EXPECT_TRUE(has_step(steps, "add"));
  // The summand is the graph input (the caller's tensor) or a graph output.
  steps = expect_fast_matches_reference(residual_bytes(output_c_plus("x")));
  EXPECT_TRUE(has_step(steps, "add"));
  steps = expect_fast_matches_reference(residual_bytes([](onnx::ModelProto& m) {
    output_c_plus("a_r")(m);
    add_output(m, "a_r");
  }));
  EXPECT_TRUE(has_step(steps, "add"));
  // The conv output is observed (its raw value must be seen before the sum).
  steps = expect_fast_matches_reference(residual_bytes(output_c_plus("a_r")), {"c"});
  EXPECT_TRUE(has_step(steps, "add"));
}

TEST(Executor, RepeatedRunsAreIdentical) {
  const auto g = onnx_import::load_model_from_bytes(blocked_cnn_bytes(), "blocked.onnx");
  Context ctx(2);
  runtime::Executor e(g, ctx, {});
  Tensor x = Tensor::from_f32({4, 3, 12, 12}, random_values(4 * 432, 8));
  const auto a = e.run({x}).at(0);
  const auto b = e.run({x}).at(0);
  for (std::int64_t i = 0; i < a.numel(); ++i) EXPECT_EQ(a.f32()[i], b.f32()[i]);
}

}  // namespace
}  // namespace aciq::testing

namespace aciq::testing {
namespace {

// Conv 3 -> 4 channels, 3x3, pad 1 on 8x8 (256 outputs x 27 taps) and Gemm [N, 4] x [4, 5] (5 outputs x 4)
// per image; the BatchNormalization, Relu and pooling between them are no multiply-adds.
TEST(Work, MultiplyAddsOfConvolutionsAndMatrixProducts) {
  std::string bytes;
  conv_bn_model().SerializeToString(&bytes);
  const auto g = onnx_import::load_model_from_bytes(bytes, "conv_bn.onnx");
  Context ctx(1);
  runtime::Executor exec(g, ctx, {});
  const std::vector<Shape> input = {{2, 3, 8, 8}};
  EXPECT_EQ(runtime::multiply_adds(exec.graph(), exec.infer_shapes(input)), 2 * (4 * 8 * 8 * 27 + 5 * 4));
}

}  // namespace
}  // namespace aciq::testing

namespace aciq::testing {
namespace {

// 36 and 20 channels leave a partial channel block under AVX2 (8) and AVX-512 (16) alike: the automatic
// layout plans such a float graph channels-last, where oneDNN has direct kernels for any channel count
// (blocked plans keep these values plain and oneDNN falls back to im2col gemm). Values stay the
// reference's within float rounding.
TEST(Layouts, PartialChannelBlocksPlanChannelsLastOnOptimizedKernels) {
  auto m = make_model();
  add_input(m, "x", {2, 3, 12, 12});
  auto* g = m.mutable_graph();
  *g->add_initializer() = make_tensor("w1", {36, 3, 3, 3}, random_values(36 * 27, 71));
  *g->add_initializer() = make_tensor("w2", {20, 36, 3, 3}, random_values(20 * 36 * 9, 72));
  *g->add_initializer() = make_tensor("w3", {36, 20, 1, 1}, random_values(36 * 20, 73));
  set_ints(add_node(m, "Conv", {"x", "w1"}, {"c1"}, "conv1"), "pads", {1, 1, 1, 1});
  add_node(m, "Relu", {"c1"}, {"r1"}, "relu1");
  set_ints(add_node(m, "Conv", {"r1", "w2"}, {"c2"}, "conv2"), "pads", {1, 1, 1, 1});
  add_node(m, "Relu", {"c2"}, {"r2"}, "relu2");
  add_node(m, "Conv", {"r2", "w3"}, {"c3"}, "conv3");
  set_int(add_node(m, "Concat", {"c3", "r1"}, {"cat"}, "concat"), "axis", 1);  // channel concat in NHWC
  set_int(add_node(m, "Concat", {"cat", "cat"}, {"y"}, "concat2"), "axis", 1);
  add_output(m, "y");
  std::string bytes;
  m.SerializeToString(&bytes);
  const auto graph = onnx_import::load_model_from_bytes(bytes, "partial_blocks.onnx");
  const Tensor x = Tensor::from_f32({2, 3, 12, 12}, random_values(2 * 3 * 144, 74));
  Context ctx(2);
  runtime::Executor fast(graph, ctx, {});
  runtime::Executor ref(graph, ctx, {.backend = runtime::Backend::kReference});
  const Tensor y = fast.run({x}).at(0), want = ref.run({x}).at(0);
  ASSERT_EQ(y.shape(), (Shape{2, 144, 12, 12}));
  for (std::int64_t i = 0; i < y.numel(); ++i)
    ASSERT_NEAR(y.f32()[i], want.f32()[i], 1e-4 + 1e-4 * std::fabs(want.f32()[i])) << i;
  // conv1 reads the plain 3-channel graph input: oneDNN's gemm kernel is its choice in either scheme.
  for (const auto& step : fast.step_report({{2, 3, 12, 12}})) {
    if (step.op_type != "Conv" || step.node == "conv1") continue;
    EXPECT_EQ(step.kernel.find("gemm"), std::string::npos) << step.node << ": " << step.kernel;
    EXPECT_EQ(step.kernel.find("ref"), std::string::npos) << step.node << ": " << step.kernel;
  }
}

}  // namespace
}  // namespace aciq::testing
