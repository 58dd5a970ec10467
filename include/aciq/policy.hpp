// Quantization policy: which tensors are quantized, at how many bits, clipped how, and with which range.
#pragma once

#include <string>
#include <vector>

#include "aciq/calib.hpp"
#include "aciq/graph.hpp"
#include "aciq/quant.hpp"

namespace aciq::policy {

enum class Placement : std::uint8_t {
  kOutputs,  // the seed: quantize what Conv/Gemm produce (after BN folding, before the activation)
  kInputs,   // quantize what feeds each Conv/Gemm, as deployed integer kernels see it
  kDeploy,   // both: what feeds each Conv/Gemm and what it produces after a fused Relu/Clip, the
             // layout ONNX Runtime needs to turn a Conv group into an integer kernel (docs/plan.md)
};
// "outputs" (alias "seed"), "inputs", "deploy"; throws listing the choices otherwise.
Placement parse_placement(std::string_view text);
std::string_view placement_name(Placement p);

enum class Role : std::uint8_t {
  kFirstConv,   // a first weighted layer (fed by a graph input through no other one): the seed's conv0,
                // kept at 8 bits (its ignore list holds conv0_activation)
  kConv,        // Conv/ConvTranspose: --qtype bits with the chosen clipping
  kLinear,      // fully-connected (Gemm/MatMul): 8 bits, no clipping, mean of per-sample min/max
  kClassifier,  // a last weighted layer (reaches a graph output through no other one): 8 bits,
                // min of mins / max of maxes
};
std::string_view role_name(Role r);

struct QuantPoint {
  std::string value;  // the ONNX value quantized (stable name)
  std::string node;   // the Conv/Gemm node it belongs to
  Role role = Role::kConv;
  int bits = 8;
  quant::ClipSpec clip;
  // Placement outputs: the value of the Relu/Clip that is this output's only consumer ("" otherwise). With
  // --half the window is chosen on its statistics (docs/calibrators.md, "half").
  std::string activated;
};

struct PolicyOptions {
  int activation_bits = 8;  // --qtype intM
  quant::ClipSpec clip;     // --clip
  // --clip-override POINT=METHOD: the method for one point (node or value name), whatever its role.
  std::vector<std::pair<std::string, quant::ClipSpec>> clip_overrides;
  bool half = false;        // --half: windows of ReLU-consumed outputs from the activated values, lo = 0
  bool onnx_grid = false;   // the grid the windows run on (set from the plan's semantics): for mse/auto
  int weight_bits = 8;      // --wbits (0 = keep float weights)
  int fc_bits = 8;          // --fc-bits
  int first_conv_bits = 8;  // the seed's conv0 exception
  Placement placement = Placement::kOutputs;
  std::vector<std::string> keep_8bit;  // node or value names forced to 8 bits
  bool seed_coefficients = false;      // use the seed's 2-decimal alpha tables
};

// The layers with quantization points: Conv, ConvTranspose, Gemm and MatMul.
bool is_quantized_layer(const graph::Node& n);

// The roles that come from graph position rather than op type: `first` holds the quantized layers a
// graph input reaches without passing another quantized layer, `last` those that reach a graph output
// that way (for a classifier, the final fully-connected layer; for a segmentation net, its last conv).
struct LayerPositions {
  std::vector<const graph::Node*> first, last;
};
LayerPositions layer_positions(const graph::Graph& g);

// Every value statistics are collected for: Conv/ConvTranspose/Gemm/MatMul outputs, the float inputs
// that feed them (both operands of an activation x activation MatMul) and the output of a Relu/Clip that is a
// Conv/Gemm output's only consumer, so one statistics file serves every placement.
std::vector<std::string> collection_points(const graph::Graph& g);

// Throws "<option> '<name>': <problem>; did you mean ...?" for the first of `given` not in `names`
// (close matches by edit distance, then names containing it). --keep-8bit uses it: a name that
// matches nothing would silently change nothing.
void require_known_names(const std::vector<std::string>& given, const std::vector<std::string>& names,
                         const std::string& option, const std::string& problem);

// The quantization points of a (BN-folded) graph under `options`; throws when a keep_8bit name
// matches no quantized node or value.
std::vector<QuantPoint> quant_points(const graph::Graph& g, const PolicyOptions& options);

// The range [lo, hi] a point is quantized to, computed from collected statistics, and how it was chosen.
struct PointRange {
  quant::QuantWindow window;  // what the quantizer is given: [offset, offset + delta]
  double lo = 0.0, hi = 0.0;  // the same window as a range, for reports
  double alpha = 0.0;         // clipping value (0 when not clipped)
  double coefficient = 0.0;   // alpha / b or alpha / sigma (0 when not clipped)
  quant::ClipSpec method;     // for mix and auto: the method actually chosen
  bool half = false;          // chosen on the activated values (--half)
};
// `activated`: the statistics of point.activated, used instead of `stats` when options.half is set.
PointRange point_range(const QuantPoint& point, const calib::PointStats& stats, const PolicyOptions& options,
                       const calib::PointStats* activated = nullptr);

// Fake-quantizes Conv/Gemm/MatMul weights and biases in place (the seed: int8, per-tensor min/max).
void quantize_weights(graph::Graph& g, int bits);

}  // namespace aciq::policy
