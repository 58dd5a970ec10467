// The seed's quantization policy (docs/seed_policy.md) plus aciq's placement/bit-width options.
#include "aciq/policy.hpp"

#include <algorithm>
#include <cmath>
#include <set>

namespace aciq::policy {

std::string_view role_name(Role r) {
  switch (r) {
    case Role::kFirstConv: return "first-conv";
    case Role::kConv: return "conv";
    case Role::kLinear: return "linear";
    case Role::kClassifier: return "classifier";
  }
  return "?";
}

namespace {

bool is_linear(const graph::Node& n) { return n.op_type == "Gemm" || n.op_type == "MatMul"; }
bool is_conv(const graph::Node& n) { return n.op_type == "Conv" || n.op_type == "ConvTranspose"; }

// The activation inputs of a quantized layer: input 0, and a MatMul's right operand when it is not a
// weight (attention's Q x K^T and scores x V multiply two activations).
std::vector<std::string> activation_inputs(const graph::Graph& g, const graph::Node& n) {
  std::vector<std::string> v{n.inputs.at(0)};
  if (n.op_type == "MatMul" && n.has_input(1) && !g.initializer(n.inputs[1])) v.push_back(n.inputs[1]);
  return v;
}

// The value an integer kernel would write for n: its output, or the output of the Relu/Clip that is
// its only consumer (ONNX Runtime fuses that activation into the kernel's requantization).
std::string deploy_output(const graph::Graph& g, const graph::Node& n) {
  const std::string& out = n.outputs.at(0);
  const auto consumers = g.consumers(out);
  const bool is_output = std::find(g.outputs.begin(), g.outputs.end(), out) != g.outputs.end();
  if (consumers.size() == 1 && !is_output &&
      (consumers[0]->op_type == "Relu" || consumers[0]->op_type == "Clip") &&
      !consumers[0]->outputs.empty()) {
    return consumers[0]->outputs[0];
  }
  return out;
}

}  // namespace

bool is_quantized_layer(const graph::Node& n) { return is_conv(n) || is_linear(n); }

LayerPositions layer_positions(const graph::Graph& g) {
  LayerPositions pos;
  std::set<const graph::Node*> first, last;
  // Forward from the graph inputs, stopping at quantized layers.
  std::set<std::string> reached;
  std::vector<std::string> todo;
  for (const auto& in : g.inputs) todo.push_back(in.name);
  while (!todo.empty()) {
    const std::string v = todo.back();
    todo.pop_back();
    if (!reached.insert(v).second) continue;
    for (const graph::Node* c : g.consumers(v)) {
      if (is_quantized_layer(*c)) {
        first.insert(c);
        continue;
      }
      // A Shape/Size output is metadata: through it (e.g. ViT's class token expanded to x's batch size)
      // "reached from the input" would leak into every later layer.
      if (c->op_type == "Shape" || c->op_type == "Size") continue;
      for (const auto& o : c->outputs) {
        if (!o.empty()) todo.push_back(o);
      }
    }
  }
  // Backward from the graph outputs, stopping at quantized layers.
  std::set<std::string> seen;
  todo.assign(g.outputs.begin(), g.outputs.end());
  while (!todo.empty()) {
    const std::string v = todo.back();
    todo.pop_back();
    if (!seen.insert(v).second) continue;
    const graph::Node* p = g.producer(v);
    if (!p) continue;
    if (is_quantized_layer(*p)) {
      last.insert(p);
      continue;
    }
    if (p->op_type == "Shape" || p->op_type == "Size") continue;  // metadata, not the data path
    for (const auto& i : p->inputs) {
      if (!i.empty() && !g.initializer(i)) todo.push_back(i);
    }
  }
  for (const auto& n : g.nodes) {  // node order, for stable reports
    if (first.count(&n)) pos.first.push_back(&n);
    if (last.count(&n)) pos.last.push_back(&n);
  }
  return pos;
}

Placement parse_placement(std::string_view text) {
  if (text == "outputs" || text == "seed") return Placement::kOutputs;
  if (text == "inputs") return Placement::kInputs;
  if (text == "deploy") return Placement::kDeploy;
  fail("--placement '" + std::string(text) + "': expected outputs (alias seed), inputs or deploy");
}

std::string_view placement_name(Placement p) {
  switch (p) {
    case Placement::kOutputs: return "outputs";
    case Placement::kInputs: return "inputs";
    case Placement::kDeploy: return "deploy";
  }
  return "?";
}

std::vector<std::string> collection_points(const graph::Graph& g) {
  std::vector<std::string> out;
  std::set<std::string> seen;
  auto add = [&](const std::string& v) {
    if (!v.empty() && !g.initializer(v) && seen.insert(v).second) out.push_back(v);
  };
  for (const auto& n : g.nodes) {
    if (!is_quantized_layer(n)) continue;
    for (const auto& v : activation_inputs(g, n)) add(v);
    add(n.outputs.at(0));
  }
  // Activated outputs after the others, so the order of the seed's points is unchanged.
  for (const auto& n : g.nodes) {
    if (is_quantized_layer(n)) add(deploy_output(g, n));
  }
  return out;
}

void require_known_names(const std::vector<std::string>& given, const std::vector<std::string>& names,
                         const std::string& option, const std::string& problem) {
  for (const auto& k : given) {
    if (std::find(names.begin(), names.end(), k) != names.end()) continue;
    auto close = closest_matches(k, names);
    for (const auto& n : names) {  // exported names are paths: a part of one is a likely typo too
      if (close.size() < 3 && n.find(k) != std::string::npos &&
          std::find(close.begin(), close.end(), n) == close.end()) {
        close.push_back(n);
      }
    }
    std::string hint;
    for (const auto& c : close) hint += (hint.empty() ? "" : ", ") + c;
    fail(option + " '" + k + "': " + problem +
         (hint.empty() ? std::string(" (`aciq layers` lists them)") : "; did you mean " + hint + "?"));
  }
}

std::vector<QuantPoint> quant_points(const graph::Graph& g, const PolicyOptions& o) {
  const LayerPositions pos = layer_positions(g);
  const std::set<const graph::Node*> first(pos.first.begin(), pos.first.end());
  const std::set<const graph::Node*> last(pos.last.begin(), pos.last.end());
  std::vector<QuantPoint> points;
  std::set<std::string> seen;
  const std::set<std::string> keep(o.keep_8bit.begin(), o.keep_8bit.end());
  for (const auto& n : g.nodes) {
    if (!is_quantized_layer(n)) continue;
    std::vector<std::string> values;
    if (o.placement == Placement::kOutputs) values = {n.outputs.at(0)};
    if (o.placement == Placement::kInputs) values = activation_inputs(g, n);
    if (o.placement == Placement::kDeploy) {
      values = activation_inputs(g, n);
      values.push_back(deploy_output(g, n));
    }
    for (const auto& value : values) {
      QuantPoint p;
      p.value = value;
      p.node = n.name;
      if (value == n.outputs.at(0) && deploy_output(g, n) != value) p.activated = deploy_output(g, n);
      if (g.initializer(p.value) || !seen.insert(p.value).second) continue;
      if (first.count(&n)) {
        p.role = Role::kFirstConv;
        p.bits = o.first_conv_bits;
        p.clip = o.clip;
      } else if (last.count(&n)) {
        // What the network answers with (logits, a segmentation map) is never clipped.
        p.role = Role::kClassifier;
        p.bits = o.fc_bits;
        p.clip = quant::ClipMethod::kNone;
      } else if (is_conv(n)) {
        p.role = Role::kConv;
        p.bits = o.activation_bits;
        p.clip = o.clip;
      } else {
        // The seed never clips fully-connected outputs (its clipping applies to tag 'activation' only).
        p.role = Role::kLinear;
        p.bits = o.fc_bits;
        p.clip = quant::ClipMethod::kNone;
      }
      if (keep.count(n.name) || keep.count(p.value)) p.bits = 8;
      points.push_back(std::move(p));
    }
  }
  for (const auto& [name, spec] : o.clip_overrides) {
    for (auto& p : points) {
      if (p.node == name || p.value == name) p.clip = spec;
    }
  }
  // A --keep-8bit name that matches nothing would silently change nothing.
  std::vector<std::string> names;
  for (const auto& p : points) {
    names.push_back(p.node);
    names.push_back(p.value);
  }
  require_known_names(o.keep_8bit, names, "--keep-8bit", "no quantized node or value has this name");
  std::vector<std::string> overridden;
  for (const auto& ov : o.clip_overrides) overridden.push_back(ov.first);
  require_known_names(overridden, names, "--clip-override", "no quantized node or value has this name");
  return points;
}

PointRange point_range(const QuantPoint& p, const calib::PointStats& raw, const PolicyOptions& o,
                       const calib::PointStats* activated) {
  using calib::Stat;
  PointRange r;
  // Half: the activation after this output clamps negatives to 0 (Relu, Clip), so only what it passes
  // matters; quantizing on [0, hi] and then clamping equals clamping and then quantizing.
  const bool half = o.half && activated && p.role != Role::kClassifier;
  const calib::PointStats& s = half ? *activated : raw;
  calib::WindowChoice c;
  if (p.clip == quant::ClipMethod::kNone) {
    // Unclipped: what the network answers with spans every sample (min of minima, max of maxima); the
    // other points take the seed's mean of per-sample min/max.
    const auto& cal = calib::calibrator(p.role == Role::kClassifier ? quant::ClipMethod::kMinMax
                                                                    : quant::ClipMethod::kNone);
    c = cal.choose({.stats = &s, .bits = p.bits, .clip = cal.method});
    c.method = quant::ClipMethod::kNone;
  } else {
    c = calib::choose_window({.stats = &s,
                              .bits = p.bits,
                              .clip = p.clip,
                              .seed_coefficients = o.seed_coefficients,
                              .onnx_grid = o.onnx_grid});
  }
  if (half && c.lo > 0.0) {  // only the lower end moves: method, alpha and coefficient stay
    c.lo = 0.0;
    c.window = {0.0, c.hi};
  }
  r.window = c.window;
  r.lo = c.lo;
  r.hi = c.hi;
  r.half = half;
  r.alpha = c.alpha;
  r.coefficient = c.coefficient;
  r.method = c.method;
  return r;
}

void quantize_weights(graph::Graph& g, int bits) {
  if (bits <= 0) return;
  std::set<std::string> done;
  for (const auto& n : g.nodes) {
    if (!is_quantized_layer(n)) continue;
    for (std::size_t i = 1; i < std::min<std::size_t>(n.inputs.size(), 3); ++i) {
      const std::string& name = n.inputs[i];
      auto it = g.initializers.find(name);
      if (it == g.initializers.end() || it->second.dtype() != DType::kFloat32 || !done.insert(name).second)
        continue;
      Tensor w = it->second.clone();
      auto span = w.f32();
      if (span.empty()) continue;
      const auto [lo, hi] = std::minmax_element(span.begin(), span.end());
      if (!std::all_of(span.begin(), span.end(), [](float v) { return std::isfinite(v); })) {
        fail(g.source + ": initializer '" + name + "' of " + n.describe() + " contains NaN or Inf");
      }
      quant::fake_quant(span, quant::affine_params(*lo, *hi, bits));
      it->second = std::move(w);
    }
  }
}

}  // namespace aciq::policy
