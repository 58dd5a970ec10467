// The QDQ graph pass: QuantizeLinear/DequantizeLinear pairs for a plan's activations, integer weights
// and int32 biases behind DequantizeLinear, in the layout ONNX Runtime's quantize_static writes.
#include <fmt/format.h>

#include <algorithm>
#include <set>

#include "aciq/export.hpp"

namespace aciq::exporter {

namespace {

Tensor scalar_or_vector(DType dtype, const std::vector<std::int64_t>& values, bool vector) {
  Tensor t(dtype, vector ? Shape{static_cast<std::int64_t>(values.size())} : Shape{});
  for (std::size_t i = 0; i < values.size(); ++i) {
    switch (dtype) {
      case DType::kUInt8: t.data<std::uint8_t>()[i] = static_cast<std::uint8_t>(values[i]); break;
      case DType::kInt8: t.data<std::int8_t>()[i] = static_cast<std::int8_t>(values[i]); break;
      case DType::kInt32: t.data<std::int32_t>()[i] = static_cast<std::int32_t>(values[i]); break;
      default: fail("export: unexpected zero-point type");
    }
  }
  return t;
}

Tensor float_scales(const std::vector<float>& s, bool vector) {
  Tensor t(DType::kFloat32, vector ? Shape{static_cast<std::int64_t>(s.size())} : Shape{});
  std::copy(s.begin(), s.end(), t.data<float>());
  return t;
}

graph::Node make_node(std::string name, std::string op, std::vector<std::string> in,
                      std::vector<std::string> out) {
  graph::Node n;
  n.name = std::move(name);
  n.op_type = std::move(op);
  n.inputs = std::move(in);
  n.outputs = std::move(out);
  return n;
}

std::string unique_name(const graph::Graph& g, const std::set<std::string>& used, const std::string& want) {
  std::string name = want;
  for (int i = 1; used.count(name) || g.initializers.count(name); ++i) name = want + "_" + std::to_string(i);
  return name;
}

}  // namespace

graph::Graph insert_qdq(const graph::Graph& src, const plan::QuantPlan& plan) {
  if (plan.semantics() != plan::Semantics::kOnnx)
    fail(
        "export qdq: the plan uses the seed semantics (float zero point, offset grids), which QuantizeLinear/"
        "DequantizeLinear cannot express; calibrate with --semantics onnx (docs/plan.md)");
  if (plan.options.bias_correction == plan::BiasCorrection::kPaper)
    fail(
        "export qdq: --bias-correction paper moves the weights off the integer grid (simulation only); "
        "calibrate without it to export");
  plan.require_graph(src, plan.model_path);
  const bool per_channel = std::any_of(plan.tensors.begin(), plan.tensors.end(),
                                       [](const plan::TensorQuant& t) { return t.per_channel(); });
  if (src.opset < 10)
    fail(fmt::format("export qdq: {} has opset {}; QuantizeLinear needs 10 or later", src.source, src.opset));
  if (per_channel && src.opset < 13)
    fail(fmt::format(
        "export qdq: {} has opset {}; per-channel QuantizeLinear needs 13 or later (use --wgran tensor)",
        src.source, src.opset));
  graph::Graph g = src;
  std::set<std::string> used;
  for (const auto& n : g.nodes) {
    used.insert(n.name);
    used.insert(n.outputs.begin(), n.outputs.end());
  }
  for (const auto& in : g.inputs) used.insert(in.name);
  auto fresh = [&](const std::string& want) {
    std::string name = unique_name(g, used, want);
    used.insert(name);
    return name;
  };
  std::vector<graph::Node> added;
  for (const auto& t : plan.tensors) {
    if (t.kind != plan::TensorKind::kActivation) continue;
    const std::string& v = t.tensor;
    const DType zp_type = t.is_signed ? DType::kInt8 : DType::kUInt8;
    if (t.bits > 8)
      fail(fmt::format("export qdq: tensor '{}' is {} bits; 16-bit QDQ needs opset 21", v, t.bits));
    const std::string scale = fresh(v + "_scale"), zp = fresh(v + "_zero_point");
    g.initializers[scale] = float_scales(t.scale, false);
    g.initializers[zp] = scalar_or_vector(zp_type, {t.zero_point[0]}, false);
    const bool is_output = std::find(g.outputs.begin(), g.outputs.end(), v) != g.outputs.end();
    // A graph output keeps its name on the DequantizeLinear output; its producer writes a renamed value.
    std::string q_in = v;
    if (is_output) {
      q_in = fresh(v + "_QuantizeLinear_Input");
      for (auto& n : g.nodes) std::replace(n.outputs.begin(), n.outputs.end(), v, q_in);
    }
    const std::string q_out = fresh(v + "_QuantizeLinear_Output");
    std::string dq_in = q_out;
    added.push_back(make_node(fresh(v + "_QuantizeLinear"), "QuantizeLinear", {q_in, scale, zp}, {q_out}));
    const auto full = quant::int_range(8, t.is_signed, false);
    if (t.qmin != full.first || t.qmax != full.second) {
      // Fewer than 8 bits in an 8-bit container: saturate to the M-bit levels exactly as QuantizeLinear
      // would on an M-bit type (Clip on integers is opset 12+).
      if (g.opset < 12)
        fail(fmt::format("export qdq: {}-bit tensor '{}' needs opset 12 for an integer Clip", t.bits, v));
      const std::string lo = fresh(v + "_qmin"), hi = fresh(v + "_qmax");
      g.initializers[lo] = scalar_or_vector(zp_type, {t.qmin}, false);
      g.initializers[hi] = scalar_or_vector(zp_type, {t.qmax}, false);
      dq_in = fresh(v + "_Clip_Output");
      added.push_back(make_node(fresh(v + "_Clip"), "Clip", {q_out, lo, hi}, {dq_in}));
    }
    const std::string dq_out = is_output ? v : fresh(v + "_DequantizeLinear_Output");
    if (!is_output) {
      for (auto& n : g.nodes) std::replace(n.inputs.begin(), n.inputs.end(), v, dq_out);
    }
    added.push_back(
        make_node(fresh(v + "_DequantizeLinear"), "DequantizeLinear", {dq_in, scale, zp}, {dq_out}));
  }
  for (const auto& t : plan.tensors) {
    if (t.kind == plan::TensorKind::kActivation) continue;
    const std::string& w = t.tensor;
    const Tensor original = g.initializers.at(w);
    const auto q = plan::quantize_values(original, t);
    const bool bias = t.kind == plan::TensorKind::kBias;
    const DType qtype = bias ? DType::kInt32 : DType::kInt8;
    if (!bias && t.bits > 8)
      fail(fmt::format("export qdq: weight '{}' is {} bits; int8 is the widest QDQ weight here", w, t.bits));
    Tensor qt(qtype, original.shape());
    for (std::size_t i = 0; i < q.size(); ++i) {
      if (bias) {
        qt.data<std::int32_t>()[i] = q[i];
      } else {
        qt.data<std::int8_t>()[i] = static_cast<std::int8_t>(q[i]);
      }
    }
    const std::string qname = fresh(w + "_quantized"),
                      sname = fresh(bias ? w + "_quantized_scale" : w + "_scale"),
                      zname = fresh(bias ? w + "_quantized_zero_point" : w + "_zero_point");
    g.initializers.erase(w);
    g.initializers[qname] = std::move(qt);
    g.initializers[sname] = float_scales(t.scale, t.per_channel());
    std::vector<std::int64_t> zps(t.zero_point.begin(), t.zero_point.end());
    g.initializers[zname] = scalar_or_vector(qtype, zps, t.per_channel());
    auto dq = make_node(fresh(w + "_DequantizeLinear"), "DequantizeLinear", {qname, sname, zname}, {w});
    if (t.per_channel()) {
      graph::Attribute axis;
      axis.kind = graph::Attribute::Kind::kInt;
      axis.i = t.axis;
      dq.attrs["axis"] = axis;
    }
    added.push_back(std::move(dq));
  }
  g.nodes.insert(g.nodes.end(), added.begin(), added.end());
  graph::topological_sort(g);
  return g;
}

}  // namespace aciq::exporter
