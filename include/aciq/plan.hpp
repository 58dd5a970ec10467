// QuantPlan: the product of calibration — every quantized tensor's integer parameters, window and provenance.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "aciq/calib.hpp"
#include "aciq/graph.hpp"
#include "aciq/policy.hpp"
#include "aciq/quant.hpp"

// Simulation, export and (later) integer execution all start from a QuantPlan, so what the simulator
// reports is what a deployment gets. File format and both arithmetic semantics: docs/plan.md.
namespace aciq::plan {

// How quantize-dequantize is computed.
enum class Semantics : std::uint8_t {
  kSeed,  // the seed's GEMMLOWP simulation: float zero point, offset form, round half away from zero
  kOnnx,  // ONNX QuantizeLinear/DequantizeLinear: integer zero point, round half to even, saturation
};
Semantics parse_semantics(std::string_view text);  // "seed" | "onnx"
std::string_view semantics_name(Semantics s);

enum class WeightGranularity : std::uint8_t {
  kTensor,   // one asymmetric grid per weight tensor (the seed)
  kChannel,  // one symmetric grid per output channel (what deployment runtimes use)
};
WeightGranularity parse_weight_granularity(std::string_view text);  // "tensor" | "channel"
std::string_view weight_granularity_name(WeightGranularity g);

// How each per-channel weight grid's threshold t (levels k * t / (2^(M-1) - 1)) is chosen (docs/plan.md):
// max |w| of the channel, the ACIQ coefficient times the channel's b = mean|w - mean| or std, or the t
// with the least quantization MSE of the channel's weights on the grid that runs.
enum class WeightClip : std::uint8_t { kMinMax, kLaplace, kGauss, kMse };
WeightClip parse_weight_clip(std::string_view text);  // "minmax" | "laplace" | "gauss" (or "gaus") | "mse"
std::string_view weight_clip_name(WeightClip c);

// Banner et al. 2019's bias correction of quantized weights (eq. 12-13), per output channel c:
// w_q <- (w_q - mean(w_q,c)) * std(w_c) / std(w_q,c) + mean(w_c), restoring each channel's mean and spread.
// kPaper applies it in the simulation only: the corrected weights leave the integer grid, so exporters
// refuse such plans. kDeploy is the same correction in a form integer runtimes run (docs/plan.md,
// "Deployable bias correction"): w_q = r q + d with r = std(w_c) / std(w_q,c), d = mean(w_c) - r mean(w_q,c);
// r goes into the channel's weight scale (same integers, a longer step) and d times the expected sum of the
// layer's inputs under one output's kernel into its int32 bias. Needs the onnx semantics and the deploy
// placement (an integer bias exists only where the layer's input is quantized).
enum class BiasCorrection : std::uint8_t { kNone, kPaper, kDeploy };
BiasCorrection parse_bias_correction(std::string_view text);  // "none" | "paper" | "deploy"
std::string_view bias_correction_name(BiasCorrection b);

// --bit-alloc channel: Banner et al. 2019's per-channel bit allocation of per-channel weight grids
// (docs/plan.md, "Per-channel bit allocation"): widths M_c with 2^M_c proportional to alpha_c^(2/3), alpha_c
// the channel's threshold, under an average of --wbits bits per channel. Every channel's integers still
// fit int8, so exports and the int8 engine run it; no runtime stores the narrower channels in fewer bits.
enum class BitAlloc : std::uint8_t { kNone, kChannel };
BitAlloc parse_bit_alloc(std::string_view text);  // "none" | "channel"
std::string_view bit_alloc_name(BitAlloc b);

enum class TensorKind : std::uint8_t { kActivation, kWeight, kBias };
std::string_view tensor_kind_name(TensorKind k);  // "activation" | "weight" | "bias"

// The options a plan is built from (recorded in the file, so a plan says how it was made).
struct PlanOptions {
  policy::PolicyOptions policy;
  Semantics semantics = Semantics::kSeed;
  WeightGranularity weights = WeightGranularity::kTensor;
  WeightClip weight_clip = WeightClip::kMinMax;  // per-channel weights only
  BiasCorrection bias_correction = BiasCorrection::kNone;
  BitAlloc bit_alloc = BitAlloc::kNone;  // per-channel weights only
  // --bits-budget B (0: off): the conv points' widths chosen from bit_widths to minimize their summed
  // measured histogram error under an average of B bits weighted by tensor size (docs/plan.md).
  double bits_budget = 0.0;
  std::vector<int> bit_widths{2, 3, 4, 8};
  bool fold_batchnorm = true;
};

// One quantized tensor. Per-tensor entries have one scale/zero point/window; per-channel weights one
// per slice along `axis`.
struct TensorQuant {
  std::string tensor;  // ONNX value (activation) or initializer (weight, bias) name
  std::string node;    // the Conv/Gemm/MatMul it belongs to
  TensorKind kind = TensorKind::kActivation;
  std::string role;  // activations: policy::role_name; weights/biases: the node's op type
  int bits = 8;
  bool is_signed = false;  // grid of signed integers (int8 weights, int32 biases) or unsigned (uint8)
  std::int32_t qmin = 0, qmax = 255;
  int axis = -1;  // per-channel axis of the tensor, -1 for per-tensor
  std::vector<float> scale;
  std::vector<std::int32_t> zero_point;
  // --bias-correction deploy only. Weights: the step each channel's integers were rounded on, before the
  // correction lengthened `scale` (quantize_values rounds on it; everything else dequantizes with `scale`).
  // Biases: the float added to each bias element before it is rounded to int32 (the folded mean shift).
  std::vector<float> rounding_scale;
  std::vector<double> shift;
  // --bit-alloc channel, weights only: each channel's width; its grid is the symmetric one of that width
  // (`bits`, `qmin` and `qmax` are the widest channel's).
  std::vector<int> channel_bits;
  // The real window each grid represents: [scale * (qmin - zp), scale * (qmax - zp)] for the onnx
  // semantics; the seed's [offset, offset + delta] for the seed semantics.
  std::vector<double> lo, hi;
  // The window calibration asked for, before the onnx semantics widened it to contain 0.
  double requested_lo = 0.0, requested_hi = 0.0;
  // Seed semantics only: the GEMMLOWP kernel's form ("zero-point", "offset" or "identity") and offset.
  quant::GridForm seed_form = quant::GridForm::kZeroPoint;
  float seed_offset = 0.0f;
  // Provenance.
  std::string method;        // e.g. "laplace", "gauss", "minmax", "minmax-symmetric", "bias-int32"
  double alpha = 0.0;        // clipping value (0 when not clipped)
  double coefficient = 0.0;  // alpha / b or alpha / sigma
  std::string statistic;     // which statistics chose the window, e.g. "mean of per-sample min/max"

  [[nodiscard]] bool per_channel() const { return axis >= 0; }
  [[nodiscard]] std::size_t channels() const { return scale.size(); }
  // The grid of channel c (0 for per-tensor).
  [[nodiscard]] quant::IntGrid grid(std::size_t c = 0) const;
  // What the simulation runs for an activation of this plan.
  [[nodiscard]] quant::PointQuantizer quantizer(Semantics semantics) const;
};

struct QuantPlan {
  static constexpr int kVersion = 1;
  std::string model_hash;  // graph::Graph::model_hash of the model the plan was made for
  std::string model_path;
  std::string stats_path;
  std::string stats_data;  // the statistics' data source
  std::int64_t stats_samples = 0;
  PlanOptions options;
  std::vector<TensorQuant> tensors;  // activations in graph order, then weights and biases

  [[nodiscard]] Semantics semantics() const { return options.semantics; }
  [[nodiscard]] const TensorQuant* find(const std::string& tensor, TensorKind kind) const;
  [[nodiscard]] std::vector<const TensorQuant*> activations() const;

  // Versioned, human-readable JSON; byte-identical for identical plans; floats round-trip exactly.
  [[nodiscard]] std::string to_json() const;
  // Parses and checks every value (finite positive scales, zero points inside [qmin, qmax], window
  // consistent with the grid, lengths); errors name `source` and the tensor.
  static QuantPlan from_json(const std::string& text, const std::string& source);
  void save(const std::string& path) const;  // atomically (temp file + fsync + rename)
  static QuantPlan load(const std::string& path);
  // Throws unless the plan was made for this (imported, possibly BN-folded) graph and every tensor it
  // names exists there with a matching channel count.
  void require_graph(const graph::Graph& g, const std::string& source) const;
};

// Builds the plan for `options` from collected statistics: the policy chooses the points, bits and
// clipping; the semantics turns each window into a grid; weights and biases get theirs from their values.
// The multiple-choice knapsack behind --bits-budget: item i takes width widths[k] at cost size[i] * widths[k]
// and error error[i][k]; returns k per item with sum size * width <= budget * sum size and the least total
// error, by dynamic programming over the budget: exact when the budget holds at most 2^16 multiples of the
// costs' common divisor (tensor sizes share C x H x W factors), otherwise in 2^16 steps with costs rounded
// up (the result always fits); then single upgrades that still fit. Throws when even the narrowest widths
// exceed the budget. Memory: n x (steps + 1) bytes.
// Banner et al.'s per-channel allocation: M_c = clamp(round(log2(k alpha_c^(2/3))), min_bits, max_bits)
// with k the largest (bisection) for which sum M_c <= floor(average_bits x channels), then single bits added
// (to the channel furthest below its unrounded width, lowest index first) while the sum stays within it.
// alpha_c = 0 gets min_bits. Throws when min_bits x channels exceeds the budget.
std::vector<int> allocate_channel_bits(const std::vector<double>& alpha, double average_bits, int min_bits,
                                       int max_bits);

std::vector<std::size_t> allocate_widths(const std::vector<std::vector<double>>& error,
                                         const std::vector<double>& size, const std::vector<int>& widths,
                                         double budget);

// Throws on option combinations no plan can be built from (build_plan calls it; commands call it before
// any long work), e.g. --bias-correction deploy without the onnx semantics.
void check_plan_options(const PlanOptions& options);

QuantPlan build_plan(const graph::Graph& g, const calib::StatsFile& stats, const PlanOptions& options,
                     const std::string& stats_path);

// Executing a plan in the float simulation: the graph's weights and biases are replaced in place by
// their quantize-dequantized values, and the returned points/quantizers go to the FakeQuantObserver.
struct Simulation {
  std::vector<std::string> points;
  std::vector<quant::PointQuantizer> quantizers;
};
Simulation apply_plan(graph::Graph& g, const QuantPlan& plan);

// The integers a weight (int8 grid) or bias (int32) entry stores for the values of `w`, in w's order:
// exactly what the simulation dequantizes and what exporters write.
std::vector<std::int32_t> quantize_values(const Tensor& w, const TensorQuant& t);

// The per-tensor summary table of `aciq layers --plan`.
std::string plan_table(const QuantPlan& plan);

}  // namespace aciq::plan
