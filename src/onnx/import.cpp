// ONNX ModelProto / TensorProto import into aciq's graph IR, validating sizes before allocating.
#include <onnx/onnx_pb.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "aciq/onnx.hpp"

namespace aciq::onnx_import {

namespace {

// Anything larger than this is not a CNN we can evaluate; refusing early keeps hostile files cheap.
constexpr std::size_t kMaxModelBytes = std::size_t{1} << 31;

std::string read_file(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) fail(path + ": is a directory, not an ONNX model file");
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path + ": cannot open file");
  in.seekg(0, std::ios::end);
  const auto size = static_cast<std::streamoff>(in.tellg());
  if (size < 0) fail(path + ": cannot read file");
  if (static_cast<std::size_t>(size) > kMaxModelBytes) fail(path + ": file is larger than 2 GiB");
  in.seekg(0);
  std::string bytes(static_cast<std::size_t>(size), '\0');
  in.read(bytes.data(), size);
  if (!in) fail(path + ": read error");
  return bytes;
}

DType map_dtype(int onnx_type, const std::string& what) {
  switch (onnx_type) {
    case onnx::TensorProto::FLOAT:
    case onnx::TensorProto::DOUBLE: return DType::kFloat32;  // doubles are narrowed on import
    case onnx::TensorProto::INT64: return DType::kInt64;
    case onnx::TensorProto::INT32: return DType::kInt32;
    case onnx::TensorProto::UINT8: return DType::kUInt8;
    case onnx::TensorProto::INT8: return DType::kInt8;
    case onnx::TensorProto::BOOL: return DType::kBool;
    default: fail(what + ": unsupported tensor data type " + std::to_string(onnx_type));
  }
}

template <typename Src, typename Dst, typename Field>
void copy_field(const Field& field, Dst* out, std::int64_t n, const std::string& what) {
  if (field.size() != n) {
    fail(what + ": has " + std::to_string(field.size()) + " values but its shape needs " + std::to_string(n));
  }
  for (std::int64_t i = 0; i < n; ++i)
    out[i] = static_cast<Dst>(static_cast<Src>(field.Get(static_cast<int>(i))));
}

Tensor convert_tensor(const onnx::TensorProto& tp, const std::string& what) {
  if (tp.data_location() == onnx::TensorProto::EXTERNAL)
    fail(what + ": external tensor data is not supported");
  Shape shape(tp.dims().begin(), tp.dims().end());
  const DType dtype = map_dtype(tp.data_type(), what);
  const std::int64_t n = [&] {
    try {
      return shape_numel(shape);
    } catch (const Error& e) {
      fail(what + ": " + e.what());
    }
  }();
  const bool is_double = tp.data_type() == onnx::TensorProto::DOUBLE;
  if (tp.has_raw_data()) {
    const std::size_t elem = is_double ? 8 : dtype_size(dtype);
    const std::string& raw = tp.raw_data();
    if (raw.size() != static_cast<std::size_t>(n) * elem) {
      fail(what + ": raw data has " + std::to_string(raw.size()) + " bytes but shape " + shape_str(shape) +
           " needs " + std::to_string(static_cast<std::size_t>(n) * elem));
    }
    Tensor t(dtype, shape);
    if (is_double) {
      for (std::int64_t i = 0; i < n; ++i) {
        double v;
        std::memcpy(&v, raw.data() + i * 8, 8);
        t.data<float>()[i] = static_cast<float>(v);
      }
    } else if (n > 0) {
      std::memcpy(t.raw(), raw.data(), raw.size());
    }
    return t;
  }
  // Typed fields: validate the count before allocating the tensor.
  std::int64_t available = 0;
  switch (tp.data_type()) {
    case onnx::TensorProto::FLOAT: available = tp.float_data_size(); break;
    case onnx::TensorProto::DOUBLE: available = tp.double_data_size(); break;
    case onnx::TensorProto::INT64: available = tp.int64_data_size(); break;
    default: available = tp.int32_data_size(); break;  // int32, uint8, int8, bool live in int32_data
  }
  if (available != n) {
    fail(what + ": has " + std::to_string(available) + " values but shape " + shape_str(shape) + " needs " +
         std::to_string(n));
  }
  Tensor t(dtype, shape);
  switch (tp.data_type()) {
    case onnx::TensorProto::FLOAT: copy_field<float>(tp.float_data(), t.data<float>(), n, what); break;
    case onnx::TensorProto::DOUBLE: copy_field<double>(tp.double_data(), t.data<float>(), n, what); break;
    case onnx::TensorProto::INT64:
      copy_field<std::int64_t>(tp.int64_data(), t.data<std::int64_t>(), n, what);
      break;
    case onnx::TensorProto::INT32:
      copy_field<std::int32_t>(tp.int32_data(), t.data<std::int32_t>(), n, what);
      break;
    case onnx::TensorProto::INT8:
      copy_field<std::int32_t>(tp.int32_data(), t.data<std::int8_t>(), n, what);
      break;
    default: copy_field<std::int32_t>(tp.int32_data(), t.data<std::uint8_t>(), n, what); break;
  }
  return t;
}

graph::Attribute convert_attribute(const onnx::AttributeProto& ap, const std::string& what) {
  graph::Attribute a;
  using K = graph::Attribute::Kind;
  switch (ap.type()) {
    case onnx::AttributeProto::INT:
      a.kind = K::kInt;
      a.i = ap.i();
      break;
    case onnx::AttributeProto::FLOAT:
      a.kind = K::kFloat;
      a.f = ap.f();
      break;
    case onnx::AttributeProto::STRING:
      a.kind = K::kString;
      a.s = ap.s();
      break;
    case onnx::AttributeProto::INTS:
      a.kind = K::kInts;
      a.ints.assign(ap.ints().begin(), ap.ints().end());
      break;
    case onnx::AttributeProto::FLOATS:
      a.kind = K::kFloats;
      a.floats.assign(ap.floats().begin(), ap.floats().end());
      break;
    case onnx::AttributeProto::TENSOR:
      a.kind = K::kTensor;
      a.t = convert_tensor(ap.t(), what);
      break;
    default: a.kind = K::kOther; break;
  }
  return a;
}

graph::ValueInfo convert_value_info(const onnx::ValueInfoProto& vi, const std::string& source) {
  graph::ValueInfo v;
  v.name = vi.name();
  if (vi.type().has_tensor_type()) {
    const auto& tt = vi.type().tensor_type();
    v.dtype = map_dtype(tt.elem_type() == 0 ? onnx::TensorProto::FLOAT : tt.elem_type(),
                        source + ": graph input '" + v.name + "'");
    if (tt.has_shape()) {
      for (const auto& d : tt.shape().dim()) {
        if (d.has_dim_value() && d.dim_value() < 0) {
          fail(source + ": graph input '" + v.name + "' has a negative dimension");
        }
        v.shape.push_back(d.has_dim_value() ? d.dim_value() : -1);
      }
    }
  }
  return v;
}

}  // namespace

graph::Graph load_model_from_bytes(const std::string& bytes, const std::string& source,
                                   const ImportOptions& options) {
  if (bytes.empty()) fail(source + ": file is empty, not an ONNX model");
  onnx::ModelProto model;
  if (!model.ParseFromString(bytes))
    fail(source + ": not a valid ONNX model (protobuf parse failed; truncated or corrupt?)");
  if (!model.has_graph()) fail(source + ": ONNX model has no graph");
  graph::Graph g;
  g.source = source;
  g.model_hash = content_hash(bytes);
  g.opset = 0;
  for (const auto& op : model.opset_import()) {
    if (op.domain().empty() || op.domain() == "ai.onnx") g.opset = op.version();
  }
  if (g.opset == 0) fail(source + ": model imports no ai.onnx opset");
  if (g.opset < graph::kMinOpset || g.opset > graph::kMaxOpset) {
    fail(source + ": opset " + std::to_string(g.opset) + " is outside the supported range " +
         std::to_string(graph::kMinOpset) + "-" + std::to_string(graph::kMaxOpset));
  }
  const auto& gp = model.graph();
  for (const auto& init : gp.initializer()) {
    if (init.name().empty()) fail(source + ": an initializer has no name");
    g.initializers[init.name()] = convert_tensor(init, source + ": initializer '" + init.name() + "'");
  }
  for (const auto& vi : gp.input()) {
    if (g.initializers.count(vi.name())) continue;  // opset < 9 exports list initializers as inputs
    g.inputs.push_back(convert_value_info(vi, source));
  }
  for (const auto& vi : gp.output()) g.outputs.push_back(vi.name());
  if (g.outputs.empty()) fail(source + ": graph has no outputs");
  std::set<std::string> names;
  for (int i = 0; i < gp.node_size(); ++i) {
    const auto& np = gp.node(i);
    if (!np.domain().empty() && np.domain() != "ai.onnx") {
      fail(source + ": node '" + np.name() + "' uses unsupported operator domain '" + np.domain() + "'");
    }
    graph::Node n;
    n.op_type = np.op_type();
    n.name = np.name().empty() ? n.op_type + "_" + std::to_string(i) : np.name();
    if (!names.insert(n.name).second) n.name += "_" + std::to_string(i);
    n.inputs.assign(np.input().begin(), np.input().end());
    n.outputs.assign(np.output().begin(), np.output().end());
    for (const auto& ap : np.attribute()) {
      n.attrs[ap.name()] =
          convert_attribute(ap, source + ": " + n.describe() + " attribute '" + ap.name() + "'");
    }
    g.nodes.push_back(std::move(n));
  }
  graph::topological_sort(g);
  graph::constants_to_initializers(g);
  graph::remove_identities(g);
  if (options.fold_batchnorm) graph::fold_batchnorm(g);
  return g;
}

graph::Graph load_model(const std::string& path, const ImportOptions& options) {
  return load_model_from_bytes(read_file(path), path, options);
}

Tensor load_tensor_file(const std::string& path) {
  const std::string bytes = read_file(path);
  onnx::TensorProto tp;
  if (!tp.ParseFromString(bytes)) fail(path + ": not a valid ONNX TensorProto");
  return convert_tensor(tp, path);
}

}  // namespace aciq::onnx_import
