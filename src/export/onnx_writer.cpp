// Generic Graph -> ONNX ModelProto writer: nodes, attributes, initializers and graph inputs/outputs.
#include <onnx/onnx_pb.h>

#include <cstring>

#include "aciq/export.hpp"

namespace aciq::exporter {

namespace {

int onnx_type(DType d) {
  switch (d) {
    case DType::kFloat32: return onnx::TensorProto::FLOAT;
    case DType::kInt64: return onnx::TensorProto::INT64;
    case DType::kInt32: return onnx::TensorProto::INT32;
    case DType::kUInt8: return onnx::TensorProto::UINT8;
    case DType::kInt8: return onnx::TensorProto::INT8;
    case DType::kBool: return onnx::TensorProto::BOOL;
  }
  return onnx::TensorProto::UNDEFINED;
}

void fill_tensor(onnx::TensorProto& tp, const std::string& name, const Tensor& t) {
  tp.set_name(name);
  tp.set_data_type(onnx_type(t.dtype()));
  for (auto d : t.shape()) tp.add_dims(d);
  // Raw little-endian bytes, as every exporter writes them (this machine is little-endian).
  if (t.numel() > 0) tp.set_raw_data(std::string(static_cast<const char*>(t.raw()), t.nbytes()));
}

void fill_attribute(onnx::AttributeProto& ap, const std::string& name, const graph::Attribute& a,
                    const graph::Node& n) {
  using K = graph::Attribute::Kind;
  ap.set_name(name);
  switch (a.kind) {
    case K::kInt:
      ap.set_type(onnx::AttributeProto::INT);
      ap.set_i(a.i);
      break;
    case K::kFloat:
      ap.set_type(onnx::AttributeProto::FLOAT);
      ap.set_f(a.f);
      break;
    case K::kString:
      ap.set_type(onnx::AttributeProto::STRING);
      ap.set_s(a.s);
      break;
    case K::kInts:
      ap.set_type(onnx::AttributeProto::INTS);
      for (auto v : a.ints) ap.add_ints(v);
      break;
    case K::kFloats:
      ap.set_type(onnx::AttributeProto::FLOATS);
      for (auto v : a.floats) ap.add_floats(v);
      break;
    case K::kTensor:
      ap.set_type(onnx::AttributeProto::TENSOR);
      fill_tensor(*ap.mutable_t(), "", a.t);
      break;
    case K::kOther:
      fail("export: " + n.describe() + " attribute '" + name + "' has a type aciq cannot write");
  }
}

}  // namespace

std::string write_onnx(const graph::Graph& g,
                       const std::vector<std::pair<std::string, std::string>>& metadata) {
  onnx::ModelProto m;
  // IR version 8 covers opsets up to 18, the importer's range.
  m.set_ir_version(8);
  m.set_producer_name("aciq");
  m.set_producer_version("0.1.0");
  auto* op = m.add_opset_import();
  op->set_domain("");
  op->set_version(g.opset);
  for (const auto& [k, v] : metadata) {
    auto* p = m.add_metadata_props();
    p->set_key(k);
    p->set_value(v);
  }
  auto* gp = m.mutable_graph();
  gp->set_name("aciq_export");
  for (const auto& [name, t] : g.initializers) fill_tensor(*gp->add_initializer(), name, t);
  for (const auto& in : g.inputs) {
    auto* vi = gp->add_input();
    vi->set_name(in.name);
    auto* tt = vi->mutable_type()->mutable_tensor_type();
    tt->set_elem_type(onnx_type(in.dtype));
    auto* shape = tt->mutable_shape();
    for (auto d : in.shape) {
      auto* dim = shape->add_dim();
      if (d >= 0) {
        dim->set_dim_value(d);
      } else {
        dim->set_dim_param("N");
      }
    }
  }
  for (const auto& out : g.outputs) {
    auto* vi = gp->add_output();
    vi->set_name(out);
    vi->mutable_type()->mutable_tensor_type()->set_elem_type(onnx::TensorProto::FLOAT);
  }
  for (const auto& n : g.nodes) {
    auto* np = gp->add_node();
    np->set_name(n.name);
    np->set_op_type(n.op_type);
    for (const auto& i : n.inputs) np->add_input(i);
    for (const auto& o : n.outputs) np->add_output(o);
    for (const auto& [k, a] : n.attrs) fill_attribute(*np->add_attribute(), k, a, n);
  }
  std::string bytes;
  if (!m.SerializeToString(&bytes)) fail("export: protobuf serialization failed (model over 2 GiB?)");
  return bytes;
}

}  // namespace aciq::exporter
