// Executing a QuantPlan in the float simulation (weights quantize-dequantized in place, activation
// quantizers for the observer) and its human-readable table.
#include <fmt/format.h>

#include <cmath>
#include <limits>

#include "aciq/plan.hpp"
#include "channel_index.hpp"

namespace aciq::plan {

namespace {

void quantize_tensor(Tensor& w, const TensorQuant& t, Semantics semantics) {
  auto v = w.f32();
  const ChannelIndex channel(w.shape(), t.axis);
  if (semantics == Semantics::kSeed) {
    if (!t.per_channel()) {
      quant::fake_quant(v, t.quantizer(semantics).seed);
      return;
    }
    TensorQuant one = t;
    for (std::size_t i = 0; i < v.size(); ++i) {
      const std::size_t c = channel(i);
      one.scale = {t.scale[c]};
      one.zero_point = {t.zero_point[c]};
      if (!t.channel_bits.empty()) {
        one.bits = t.channel_bits[c];
        one.qmax = (1 << one.bits) - 1;
      }
      auto q = one.quantizer(semantics).seed;
      // Symmetric per-channel grids of zero channels are the identity.
      if (t.lo[c] == 0.0 && t.hi[c] == 0.0) q.form = quant::GridForm::kIdentity;
      quant::fake_quant_ref(v.subspan(i, 1), q);
    }
    return;
  }
  // The onnx semantics dequantize exactly the integers an exporter writes (quantize_values).
  const auto q = quantize_values(w, t);
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = quant::dequantize_linear(q[i], t.grid(channel(i)));
}

// The paper's correction of quantized weights `q` toward the float weights `w`, channel by channel:
// q <- (q - mean_q) * std_w / std_q + mean_w (a channel whose quantized values are constant keeps q's
// spread and only moves its mean).
void correct_bias(std::span<float> q, std::span<const float> w, const ChannelIndex& channel) {
  const auto m = norm_correction(w, q, channel);
  for (std::size_t i = 0; i < q.size(); ++i) {
    const std::size_t c = channel(i);
    q[i] = static_cast<float>((q[i] - m.mean_q[c]) * m.ratio[c] + m.mean_w[c]);
  }
}

}  // namespace

std::vector<std::int32_t> quantize_values(const Tensor& w, const TensorQuant& t) {
  const auto v = w.f32();
  const ChannelIndex channel(w.shape(), t.axis);
  std::vector<std::int32_t> q(v.size());
  if (!t.shift.empty() && t.shift.size() != v.size())
    fail(fmt::format("bias '{}': {} shifts for {} values", t.tensor, t.shift.size(), v.size()));
  for (std::size_t i = 0; i < v.size(); ++i) {
    auto g = t.grid(channel(i));
    if (t.kind == TensorKind::kBias) {
      // A deployable bias correction's shift is added in double before the one rounding.
      const double b = static_cast<double>(v[i]) + (t.shift.empty() ? 0.0 : t.shift[i]);
      q[i] = static_cast<std::int32_t>(std::clamp(std::nearbyint(b / static_cast<double>(g.scale)),
                                                  static_cast<double>(g.qmin), static_cast<double>(g.qmax)));
    } else {
      // A deployable bias correction lengthened the step after the integers were chosen on this one.
      if (!t.rounding_scale.empty()) g.scale = t.rounding_scale.at(channel(i));
      q[i] = quant::quantize_linear(v[i], g);
    }
  }
  return q;
}

Simulation apply_plan(graph::Graph& g, const QuantPlan& plan) {
  plan.require_graph(g, plan.model_path);
  Simulation sim;
  for (const auto& t : plan.tensors) {
    if (t.kind == TensorKind::kActivation) {
      sim.points.push_back(t.tensor);
      sim.quantizers.push_back(t.quantizer(plan.semantics()));
      continue;
    }
    auto it = g.initializers.find(t.tensor);
    Tensor w = it->second.clone();
    quantize_tensor(w, t, plan.semantics());
    if (t.kind == TensorKind::kWeight && plan.options.bias_correction == BiasCorrection::kPaper) {
      // Per output channel for per-channel grids; per tensor (one "channel") otherwise.
      correct_bias(w.f32(), std::as_const(it->second).f32(), ChannelIndex(w.shape(), t.axis));
    }
    it->second = std::move(w);
  }
  return sim;
}

std::string plan_table(const QuantPlan& plan) {
  std::size_t width = 6;
  for (const auto& t : plan.tensors) width = std::max(width, t.tensor.size());
  std::string out =
      fmt::format("plan for {} ({} semantics, {} weights, placement {})\n", plan.model_path,
                  semantics_name(plan.semantics()), weight_granularity_name(plan.options.weights),
                  policy::placement_name(plan.options.policy.placement));
  out += fmt::format("{:<{}}  {:<10}  {:<11}  {:>4}  {:>5}  {:>13}  {:>11}  {:>12}  {:>12}  {}\n", "tensor",
                     width, "kind", "role", "bits", "grid", "scale", "zero point", "lo", "hi", "method");
  for (const auto& t : plan.tensors) {
    const std::string grid = fmt::format("{}{}", t.is_signed ? "s" : "u", t.bits);
    std::string scale, zp, lo, hi;
    if (t.per_channel()) {
      const auto [smin, smax] = std::minmax_element(t.scale.begin(), t.scale.end());
      scale = fmt::format("{} ch", t.channels());
      zp = fmt::format("axis {}", t.axis);
      lo = fmt::format("{:.4g}", *std::min_element(t.lo.begin(), t.lo.end()));
      hi = fmt::format("{:.4g}", *std::max_element(t.hi.begin(), t.hi.end()));
      (void)smin;
      (void)smax;
    } else {
      scale = fmt::format("{:.6g}", t.scale[0]);
      zp = plan.semantics() == Semantics::kSeed && t.seed_form == quant::GridForm::kOffset
               ? "offset"
               : std::to_string(t.zero_point[0]);
      lo = fmt::format("{:.4g}", t.lo[0]);
      hi = fmt::format("{:.4g}", t.hi[0]);
    }
    out += fmt::format("{:<{}}  {:<10}  {:<11}  {:>4}  {:>5}  {:>13}  {:>11}  {:>12}  {:>12}  {}\n", t.tensor,
                       width, tensor_kind_name(t.kind), t.role, t.bits, grid, scale, zp, lo, hi, t.method);
  }
  return out;
}

}  // namespace aciq::plan
