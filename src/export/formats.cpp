// The export format registry: one row per format; `aciq export` and its help are derived from it.
#include "aciq/export.hpp"

namespace aciq::exporter {

const std::vector<Format>& formats() {
  static const std::vector<Format> table{
      {"qdq",
       "ONNX model with QuantizeLinear/DequantizeLinear (onnx semantics; ONNX Runtime, TensorRT explicit)",
       [](const graph::Graph& g, const plan::QuantPlan& p) {
         return write_onnx(insert_qdq(g, p),
                           {{"aciq.plan_model_hash", p.model_hash},
                            {"aciq.bn_folded", p.options.fold_batchnorm ? "true" : "false"},
                            {"aciq.semantics", std::string(plan::semantics_name(p.semantics()))}});
       }},
      {"qoperator",
       "ONNX model with QLinearConv/QLinearMatMul and ConvInteger/MatMulInteger (the QDQ model lowered; "
       "what --engine int8 runs)",
       [](const graph::Graph& g, const plan::QuantPlan& p) {
         return write_onnx(lower_to_qoperator(insert_qdq(g, p)),
                           {{"aciq.plan_model_hash", p.model_hash},
                            {"aciq.bn_folded", p.options.fold_batchnorm ? "true" : "false"},
                            {"aciq.semantics", std::string(plan::semantics_name(p.semantics()))}});
       }},
      {"tensorrt", "TensorRT INT8 calibration cache (amax/127 per activation, int8 plans)", tensorrt_cache},
      {"ncnn", "ncnn int8 .table (127/absmax per weight channel and per layer input, int8 plans)",
       ncnn_table},
      {"json", "the plan itself",
       [](const graph::Graph& g, const plan::QuantPlan& p) {
         p.require_graph(g, p.model_path);
         return p.to_json();
       }},
  };
  return table;
}

const Format& find_format(std::string_view name) {
  std::string names;
  for (const auto& f : formats()) {
    if (f.name == name) return f;
    names += (names.empty() ? "" : ", ") + std::string(f.name);
  }
  fail("--format '" + std::string(name) + "': expected one of " + names);
}

}  // namespace aciq::exporter
