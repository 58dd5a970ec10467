// Exporters: a QuantPlan handed to other runtimes (ONNX QDQ, TensorRT calibration cache, ncnn table, JSON).
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "aciq/graph.hpp"
#include "aciq/plan.hpp"

namespace aciq::exporter {

// Serializes a graph IR as an ONNX ModelProto (opset g.opset, the default domain). Knows nothing of
// quantization: QDQ models come from insert_qdq below. Throws for attributes it cannot represent.
std::string write_onnx(const graph::Graph& g,
                       const std::vector<std::pair<std::string, std::string>>& metadata = {});

// The QDQ graph pass: a QuantizeLinear -> DequantizeLinear pair on every activation of the plan
// (consumers read the DequantizeLinear output; sub-8-bit grids add an integer Clip between them),
// weights as int8 initializers feeding DequantizeLinear (axis for per-channel), biases as int32.
// Needs a plan in onnx semantics made for `g` (docs/plan.md explains the layout).
graph::Graph insert_qdq(const graph::Graph& g, const plan::QuantPlan& plan);

// The QOperator lowering of a QDQ graph (insert_qdq's output): DQ -> Conv -> [Relu|Clip] -> Q becomes
// QLinearConv, DQ -> MatMul -> Q QLinearMatMul, and a Conv/Gemm/MatMul on dequantized inputs with a
// float consumer ConvInteger/MatMulInteger followed by a float rescale (and bias). Anything else is kept,
// so the graph computes what the QDQ graph does up to float rounding (docs/int8.md).
graph::Graph lower_to_qoperator(const graph::Graph& qdq);

// TensorRT INT8 calibration cache text and the ncnn int8 table text (docs/plan.md has both formats).
std::string tensorrt_cache(const graph::Graph& g, const plan::QuantPlan& plan);
std::string ncnn_table(const graph::Graph& g, const plan::QuantPlan& plan);

// Parsers of those two formats (tests read exports back; also useful to diff against other tools).
struct NamedScales {
  std::string name;
  std::vector<float> scales;
};
std::vector<NamedScales> parse_tensorrt_cache(const std::string& text, const std::string& source);
std::vector<NamedScales> parse_ncnn_table(const std::string& text, const std::string& source);

// The registry of export formats: `aciq export --format NAME`, its help text and docs come from here.
struct Format {
  std::string_view name;
  std::string_view description;
  std::function<std::string(const graph::Graph&, const plan::QuantPlan&)> write;
};
const std::vector<Format>& formats();
const Format& find_format(std::string_view name);  // throws listing the names

}  // namespace aciq::exporter
