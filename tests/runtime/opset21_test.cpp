// Opsets 19-21: models import up to 21, and the forms those opsets added to supported operators either run
// (AveragePool dilations, Pad "wrap", Gelu, QuantizeLinear output_dtype) against hand-computed values on
// both backends, or are refused by name (blocked quantization).
#include <gtest/gtest.h>

#include <cmath>

#include "../onnx/model_builder.hpp"
#include "aciq/onnx.hpp"
#include "aciq/runtime.hpp"

namespace aciq::testing {
namespace {

using runtime::Backend;

graph::Graph load(const onnx::ModelProto& m) {
  std::string s;
  m.SerializeToString(&s);
  return onnx_import::load_model_from_bytes(s, "opset21.onnx");
}

Tensor run(const graph::Graph& g, Backend b, const Tensor& x) {
  Context ctx(2);
  runtime::Executor exec(g, ctx, {.backend = b});
  return exec.run({x}).at(0);
}

void set_string(onnx::NodeProto* n, const std::string& key, const std::string& v) {
  auto* a = n->add_attribute();
  a->set_name(key);
  a->set_type(onnx::AttributeProto::STRING);
  a->set_s(v);
}

Tensor ramp(const Shape& shape) {
  std::vector<float> v(static_cast<std::size_t>(shape_numel(shape)));
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(i);
  return Tensor::from_f32(shape, v);
}

// AveragePool 19 with dilations 2: over x[i][j] = 5i + j, each output averages x at (i, j), (i, j+2),
// (i+2, j), (i+2, j+2): 5i + j + 6.
TEST(Opset21, AveragePoolDilations) {
  auto m = make_model(21);
  add_input(m, "x", {1, 1, 5, 5});
  auto* n = add_node(m, "AveragePool", {"x"}, {"y"});
  set_ints(n, "kernel_shape", {2, 2});
  set_ints(n, "dilations", {2, 2});
  add_output(m, "y");
  const auto g = load(m);
  for (const Backend b : {Backend::kReference, Backend::kFast}) {
    const Tensor y = run(g, b, ramp({1, 1, 5, 5}));
    ASSERT_EQ(y.shape(), (Shape{1, 1, 3, 3}));
    for (int i = 0; i < 3; ++i)
      for (int j = 0; j < 3; ++j) EXPECT_FLOAT_EQ(y.data<float>()[i * 3 + j], 5.0f * i + j + 6.0f);
  }
}

// Pad 19 mode "wrap": [0 1 2] padded by 2 before and 1 after is [1 2 | 0 1 2 | 0] (numpy.pad mode="wrap").
TEST(Opset21, PadWrap) {
  auto m = make_model(21);
  add_input(m, "x", {1, 3});
  *m.mutable_graph()->add_initializer() = [] {
    onnx::TensorProto t;
    t.set_name("pads");
    t.set_data_type(onnx::TensorProto::INT64);
    t.add_dims(4);
    for (std::int64_t v : {0, 2, 0, 1}) t.add_int64_data(v);
    return t;
  }();
  set_string(add_node(m, "Pad", {"x", "pads"}, {"y"}), "mode", "wrap");
  add_output(m, "y");
  const auto g = load(m);
  for (const Backend b : {Backend::kReference, Backend::kFast}) {
    const Tensor y = run(g, b, ramp({1, 3}));
    ASSERT_EQ(y.shape(), (Shape{1, 6}));
    const float want[] = {1, 2, 0, 1, 2, 0};
    for (int i = 0; i < 6; ++i) EXPECT_EQ(y.data<float>()[i], want[i]) << i;
  }
  // Before opset 19 "wrap" does not exist: refused, not guessed.
  m.mutable_opset_import(0)->set_version(18);
  EXPECT_THROW((void)run(load(m), Backend::kReference, ramp({1, 3})), Error);
}

// Gelu 20, both forms, against values computed here in double from the definitions.
TEST(Opset21, Gelu) {
  const std::vector<float> xs{-6.0f, -1.5f, -0.25f, 0.0f, 0.5f, 2.0f, 7.0f};
  for (const std::string approximate : {"none", "tanh"}) {
    auto m = make_model(20);
    add_input(m, "x", {7});
    set_string(add_node(m, "Gelu", {"x"}, {"y"}), "approximate", approximate);
    add_output(m, "y");
    const auto g = load(m);
    for (const Backend b : {Backend::kReference, Backend::kFast}) {
      const Tensor y = run(g, b, Tensor::from_f32({7}, xs));
      for (std::size_t i = 0; i < xs.size(); ++i) {
        const double x = xs[i];
        const double want = approximate == "none"
                                ? 0.5 * x * (1 + std::erf(x / std::sqrt(2.0)))
                                : 0.5 * x * (1 + std::tanh(std::sqrt(2 / M_PI) * (x + 0.044715 * x * x * x)));
        EXPECT_NEAR(y.data<float>()[i], want, 1e-6 * std::max(1.0, std::fabs(want)))
            << approximate << " " << x;
      }
    }
  }
  auto bad = make_model(20);
  add_input(bad, "x", {7});
  set_string(add_node(bad, "Gelu", {"x"}, {"y"}), "approximate", "sigmoid");
  add_output(bad, "y");
  EXPECT_THROW((void)run(load(bad), Backend::kReference, Tensor::from_f32({7}, xs)), Error);
}

// QuantizeLinear 21: output_dtype int8 without a zero point gives int8 with zero point 0; block_size is
// refused by name.
TEST(Opset21, QuantizeLinearOutputDtypeAndBlocks) {
  auto m = make_model(21);
  add_input(m, "x", {4});
  *m.mutable_graph()->add_initializer() = make_tensor("s", {}, {0.5f});
  auto* q = add_node(m, "QuantizeLinear", {"x", "s"}, {"y"});
  set_int(q, "output_dtype", 3);  // INT8
  add_output(m, "y");
  const std::vector<float> xs{-1.0f, 0.2f, 0.8f, 100.0f};
  for (const Backend b : {Backend::kReference, Backend::kFast}) {
    const Tensor y = run(load(m), b, Tensor::from_f32({4}, xs));
    ASSERT_EQ(y.dtype(), DType::kInt8);
    const std::int8_t want[] = {-2, 0, 2, 127};  // round half to even of x / 0.5, saturated
    for (int i = 0; i < 4; ++i) EXPECT_EQ(y.data<std::int8_t>()[i], want[i]) << i;
  }
  set_int(q, "block_size", 2);
  try {
    (void)run(load(m), Backend::kReference, Tensor::from_f32({4}, xs));
    ADD_FAILURE() << "blocked quantization was not refused";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("block_size"), std::string::npos) << e.what();
  }
}

// Opset 22 is beyond the importer's range: one line naming the range.
TEST(Opset21, OpsetAboveTheRangeIsRefused) {
  auto m = make_model(22);
  add_input(m, "x", {1});
  add_node(m, "Relu", {"x"}, {"y"});
  add_output(m, "y");
  try {
    (void)load(m);
    ADD_FAILURE() << "opset 22 was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("7-21"), std::string::npos) << e.what();
  }
}

// GroupNormalization 18 (scale/bias per group) and 21 (per channel): [2, 6, 3, 2] in 3 groups of 2
// channels, each group's 12 values normalized with their own population mean and variance, worked out
// here in double; a group count that does not divide the channels and parameters of the other opset's
// length are refused.
TEST(Opset21, GroupNormalization) {
  const Shape shape{2, 6, 3, 2};
  std::vector<float> xs(static_cast<std::size_t>(shape_numel(shape)));
  for (std::size_t i = 0; i < xs.size(); ++i)
    xs[i] = std::sin(0.7f * static_cast<float>(i)) * (1.0f + 0.1f * static_cast<float>(i % 7));
  for (const int opset : {18, 21}) {
    const std::int64_t params = opset >= 21 ? 6 : 3;
    std::vector<float> scale, bias;
    for (std::int64_t k = 0; k < params; ++k) {
      scale.push_back(0.5f + 0.25f * static_cast<float>(k));
      bias.push_back(-1.0f + 0.5f * static_cast<float>(k));
    }
    auto m = make_model(opset);
    add_input(m, "x", shape);
    *m.mutable_graph()->add_initializer() = make_tensor("scale", {params}, scale);
    *m.mutable_graph()->add_initializer() = make_tensor("bias", {params}, bias);
    auto* gn = add_node(m, "GroupNormalization", {"x", "scale", "bias"}, {"y"});
    set_int(gn, "num_groups", 3);
    add_float(gn, "epsilon", 1e-3f);
    add_output(m, "y");
    const auto g = load(m);
    std::vector<double> want(xs.size());
    for (int n = 0; n < 2; ++n) {
      for (int grp = 0; grp < 3; ++grp) {
        const std::size_t first = static_cast<std::size_t>((n * 6 + grp * 2) * 6);
        double mean = 0, var = 0;
        for (std::size_t i = first; i < first + 12; ++i) mean += xs[i] / 12.0;
        for (std::size_t i = first; i < first + 12; ++i) var += (xs[i] - mean) * (xs[i] - mean) / 12.0;
        for (std::size_t i = first; i < first + 12; ++i) {
          const std::size_t channel = grp * 2 + (i - first) / 6;
          const std::size_t at = opset >= 21 ? channel : static_cast<std::size_t>(grp);
          want[i] = (xs[i] - mean) / std::sqrt(var + static_cast<double>(1e-3f)) * scale[at] + bias[at];
        }
      }
    }
    for (const Backend b : {Backend::kReference, Backend::kFast}) {
      const Tensor y = run(g, b, Tensor::from_f32(shape, xs));
      for (std::size_t i = 0; i < xs.size(); ++i)
        EXPECT_NEAR(y.data<float>()[i], want[i], 1e-5 * std::max(1.0, std::fabs(want[i])))
            << "opset " << opset << " at " << i;
    }
    // The other opset's parameter length, and 4 groups for 6 channels.
    for (const auto& [groups, length] :
         {std::pair<std::int64_t, std::int64_t>{3, opset >= 21 ? 3 : 6}, {4, params}}) {
      auto bad = make_model(opset);
      add_input(bad, "x", shape);
      *bad.mutable_graph()->add_initializer() =
          make_tensor("scale", {length}, std::vector<float>(static_cast<std::size_t>(length), 1.0f));
      *bad.mutable_graph()->add_initializer() =
          make_tensor("bias", {length}, std::vector<float>(static_cast<std::size_t>(length), 0.0f));
      set_int(add_node(bad, "GroupNormalization", {"x", "scale", "bias"}, {"y"}), "num_groups", groups);
      add_output(bad, "y");
      EXPECT_THROW((void)run(load(bad), Backend::kReference, Tensor::from_f32(shape, xs)), Error)
          << "opset " << opset << " groups " << groups << " length " << length;
    }
  }
}

}  // namespace
}  // namespace aciq::testing
