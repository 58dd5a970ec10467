// Importer tests: valid models, and one clear error per kind of broken or hostile model.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "aciq/onnx.hpp"
#include "aciq/runtime.hpp"
#include "model_builder.hpp"

namespace aciq::testing {
namespace {

namespace fs = std::filesystem;

std::string bytes_of(const onnx::ModelProto& m) {
  std::string s;
  m.SerializeToString(&s);
  return s;
}

// Expects loading (and planning for batch 2) to fail with a message containing `needle`.
void expect_error(const std::string& bytes, const std::string& needle) {
  try {
    auto g = onnx_import::load_model_from_bytes(bytes, "bad.onnx");
    Context ctx(1);
    runtime::Executor exec(std::move(g), ctx, {});
    Shape s = exec.graph().inputs.at(0).shape;
    for (auto& d : s) d = d < 0 ? 2 : d;
    (void)exec.infer_shapes({s});
    FAIL() << "expected an error containing '" << needle << "'";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("bad.onnx"), std::string::npos) << e.what();
    EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos) << "message must be one line";
  }
}

TEST(Import, ValidModelRunsAndFoldsBatchNorm) {
  const auto bytes = bytes_of(conv_bn_model());
  auto folded = onnx_import::load_model_from_bytes(bytes, "m.onnx");
  auto unfolded = onnx_import::load_model_from_bytes(bytes, "m.onnx", {.fold_batchnorm = false});
  EXPECT_EQ(folded.nodes.size() + 1, unfolded.nodes.size());
  for (const auto& n : folded.nodes) EXPECT_NE(n.op_type, "BatchNormalization");
  EXPECT_EQ(folded.model_hash, unfolded.model_hash);
  Context ctx(1);
  Tensor x = Tensor::from_f32({2, 3, 8, 8}, random_values(2 * 3 * 64, 9));
  for (auto backend : {runtime::Backend::kReference, runtime::Backend::kFast}) {
    runtime::Executor a(folded, ctx, {.backend = backend});
    runtime::Executor b(unfolded, ctx, {.backend = runtime::Backend::kReference});
    const auto ya = a.run({x}).at(0);
    const auto yb = b.run({x}).at(0);
    ASSERT_EQ(ya.shape(), (Shape{2, 5}));
    for (std::int64_t i = 0; i < ya.numel(); ++i) EXPECT_NEAR(ya.f32()[i], yb.f32()[i], 1e-5);
  }
}

TEST(Import, EmptyAndGarbageFiles) {
  expect_error("", "empty");
  expect_error(std::string("\xff\xff\xff\xff garbage that is not protobuf", 34), "not a valid ONNX model");
}

TEST(Import, TruncatedModel) {
  const auto bytes = bytes_of(conv_bn_model());
  expect_error(bytes.substr(0, bytes.size() / 2), "bad.onnx");
}

TEST(Import, MissingFile) {
  try {
    onnx_import::load_model("/nonexistent/model.onnx");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/model.onnx: cannot open"), std::string::npos);
  }
}

TEST(Import, UnsupportedOperatorNamesOpNodeAndFile) {
  auto m = conv_bn_model();
  add_node(m, "NonMaxSuppression", {"logits"}, {"nms"}, "my_nms");
  expect_error(bytes_of(m), "unsupported operator NonMaxSuppression in node 'my_nms'");
}

TEST(Import, CycleIsRefused) {
  auto m = make_model();
  add_input(m, "x", {1, 4});
  add_node(m, "Add", {"x", "b"}, {"a"}, "add1");
  add_node(m, "Relu", {"a"}, {"b"}, "relu1");
  add_output(m, "b");
  expect_error(bytes_of(m), "cycle");
}

TEST(Import, MissingInputIsRefused) {
  auto m = make_model();
  add_input(m, "x", {1, 4});
  add_node(m, "Add", {"x", "nowhere"}, {"y"}, "add");
  add_output(m, "y");
  expect_error(bytes_of(m), "'nowhere'");
}

TEST(Import, HugeInitializerRefusedBeforeAllocation) {
  auto m = conv_bn_model();
  onnx::TensorProto t;
  t.set_name("huge");
  t.set_data_type(onnx::TensorProto::FLOAT);
  t.add_dims(std::int64_t{1} << 20);
  t.add_dims(std::int64_t{1} << 20);  // 2^40 elements
  *m.mutable_graph()->add_initializer() = t;
  expect_error(bytes_of(m), "exceeds the limit");
}

TEST(Import, NegativeDimRefused) {
  auto m = conv_bn_model();
  onnx::TensorProto t;
  t.set_name("neg");
  t.set_data_type(onnx::TensorProto::FLOAT);
  t.add_dims(-3);
  *m.mutable_graph()->add_initializer() = t;
  expect_error(bytes_of(m), "negative dimension");
}

TEST(Import, InitializerShorterThanShape) {
  auto m = conv_bn_model();
  *m.mutable_graph()->add_initializer() = make_tensor("short", {10, 10}, random_values(7, 1));
  expect_error(bytes_of(m), "initializer 'short'");
}

TEST(Import, InputShapeMismatchNamesBothShapes) {
  const auto bytes = bytes_of(conv_bn_model());
  auto g = onnx_import::load_model_from_bytes(bytes, "m.onnx");
  Context ctx(1);
  runtime::Executor exec(std::move(g), ctx, {});
  try {
    exec.run({Tensor(DType::kFloat32, {2, 1, 28, 28})});
    FAIL();
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("m.onnx: input 'x' expects shape [-1,3,8,8]"), std::string::npos) << msg;
    EXPECT_NE(msg.find("[2,1,28,28]"), std::string::npos) << msg;
  }
}

TEST(Import, ShapeFormulaErrorsNameTheNode) {
  // Conv weight that does not fit the input channels.
  auto m = conv_bn_model();
  auto* w = m.mutable_graph()->mutable_initializer(0);
  *w = make_tensor("w", {4, 2, 3, 3}, random_values(72, 1));
  expect_error(bytes_of(m), "node 'conv' (Conv)");
}

}  // namespace
}  // namespace aciq::testing
