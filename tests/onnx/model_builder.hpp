// Builds small ONNX ModelProtos in memory for importer and pass tests.
#pragma once

#include <onnx/onnx_pb.h>

#include <random>
#include <string>
#include <vector>

namespace aciq::testing {

inline onnx::TensorProto make_tensor(const std::string& name, const std::vector<std::int64_t>& dims,
                                     const std::vector<float>& values) {
  onnx::TensorProto t;
  t.set_name(name);
  t.set_data_type(onnx::TensorProto::FLOAT);
  for (auto d : dims) t.add_dims(d);
  t.set_raw_data(std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(float)));
  return t;
}

inline std::vector<float> random_values(std::size_t n, unsigned seed, float lo = -1.0f, float hi = 1.0f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

inline onnx::ModelProto make_model(int opset = 13) {
  onnx::ModelProto m;
  m.set_ir_version(7);
  auto* op = m.add_opset_import();
  op->set_domain("");
  op->set_version(opset);
  return m;
}

inline void add_input(onnx::ModelProto& m, const std::string& name, const std::vector<std::int64_t>& dims) {
  auto* in = m.mutable_graph()->add_input();
  in->set_name(name);
  auto* tt = in->mutable_type()->mutable_tensor_type();
  tt->set_elem_type(onnx::TensorProto::FLOAT);
  for (auto d : dims) {
    auto* dim = tt->mutable_shape()->add_dim();
    if (d < 0)
      dim->set_dim_param("N");
    else
      dim->set_dim_value(d);
  }
}

inline void add_output(onnx::ModelProto& m, const std::string& name) {
  m.mutable_graph()->add_output()->set_name(name);
}

inline onnx::NodeProto* add_node(onnx::ModelProto& m, const std::string& op,
                                 const std::vector<std::string>& ins, const std::vector<std::string>& outs,
                                 const std::string& name = "") {
  auto* n = m.mutable_graph()->add_node();
  n->set_op_type(op);
  n->set_name(name.empty() ? op + "_" + std::to_string(m.graph().node_size()) : name);
  for (const auto& i : ins) n->add_input(i);
  for (const auto& o : outs) n->add_output(o);
  return n;
}

inline void set_ints(onnx::NodeProto* n, const std::string& key, const std::vector<std::int64_t>& v) {
  auto* a = n->add_attribute();
  a->set_name(key);
  a->set_type(onnx::AttributeProto::INTS);
  for (auto x : v) a->add_ints(x);
}

inline void add_float(onnx::NodeProto* n, const std::string& key, float v) {
  auto* a = n->add_attribute();
  a->set_name(key);
  a->set_type(onnx::AttributeProto::FLOAT);
  a->set_f(v);
}

inline void set_int(onnx::NodeProto* n, const std::string& key, std::int64_t v) {
  auto* a = n->add_attribute();
  a->set_name(key);
  a->set_type(onnx::AttributeProto::INT);
  a->set_i(v);
}

// x[N,3,8,8] -> Conv(4 out, 3x3, pad 1) -> BatchNormalization -> Relu -> GlobalAveragePool -> Flatten ->
// Gemm(4->5).
inline onnx::ModelProto conv_bn_model() {
  auto m = make_model();
  add_input(m, "x", {-1, 3, 8, 8});
  auto* g = m.mutable_graph();
  *g->add_initializer() = make_tensor("w", {4, 3, 3, 3}, random_values(108, 1));
  *g->add_initializer() = make_tensor("b", {4}, random_values(4, 2));
  *g->add_initializer() = make_tensor("gamma", {4}, random_values(4, 3, 0.5f, 1.5f));
  *g->add_initializer() = make_tensor("beta", {4}, random_values(4, 4));
  *g->add_initializer() = make_tensor("mean", {4}, random_values(4, 5));
  *g->add_initializer() = make_tensor("var", {4}, random_values(4, 6, 0.2f, 2.0f));
  *g->add_initializer() = make_tensor("fc_w", {5, 4}, random_values(20, 7));
  *g->add_initializer() = make_tensor("fc_b", {5}, random_values(5, 8));
  auto* conv = add_node(m, "Conv", {"x", "w", "b"}, {"c"}, "conv");
  set_ints(conv, "pads", {1, 1, 1, 1});
  add_node(m, "BatchNormalization", {"c", "gamma", "beta", "mean", "var"}, {"bn"}, "bn");
  add_node(m, "Relu", {"bn"}, {"r"}, "relu");
  add_node(m, "GlobalAveragePool", {"r"}, {"p"}, "gap");
  add_node(m, "Flatten", {"p"}, {"f"}, "flatten");
  set_int(add_node(m, "Gemm", {"f", "fc_w", "fc_b"}, {"logits"}, "fc"), "transB", 1);
  add_output(m, "logits");
  return m;
}

}  // namespace aciq::testing
