// Executor: per-shape plans (shape inference, constant evaluation, fusion, arena) and the run loop.
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <set>

#include "aciq/runtime.hpp"
#include "kernels/activation.hpp"
#include "runtime/ops/common.hpp"
#include "runtime/ops/registry.hpp"

namespace aciq::runtime {

void Op::error(const std::string& what) const { op_error(*this, what); }

void require_input_fits(const graph::ValueInfo& in, DType dtype, const Shape& shape,
                        const std::string& source) {
  bool fits = dtype == in.dtype && (in.shape.empty() || in.shape.size() == shape.size());
  for (std::size_t d = 0; fits && d < in.shape.size(); ++d) fits = in.shape[d] < 0 || in.shape[d] == shape[d];
  if (!fits) {
    fail(source + ": input '" + in.name + "' expects shape " + shape_str(in.shape) + " (" +
         std::string(dtype_name(in.dtype)) + "), data has " + shape_str(shape) + " (" +
         std::string(dtype_name(dtype)) + ")");
  }
}

struct Executor::Plan {
  std::unique_ptr<DnnlEnv> env;
  std::vector<std::unique_ptr<Op>> ops;
  struct Step {
    Op* op = nullptr;
    std::vector<int> in, out;                          // slot indices; -1 for omitted optional inputs/outputs
    std::vector<std::pair<int, std::size_t>> observe;  // (slot, observed index)
    // An activation fused behind the observers: observe_activation(observed output, post) replaces a
    // separate activation step. Only set when exactly one observed output feeds it.
    Activation post;
    std::size_t post_index = 0;
    int post_slot = -1;
    std::size_t post_observed_index = Observer::kNotObserved;  // the activated value, when observed
    double seconds = 0;                                        // profiling (set_profiling)
    std::int64_t calls = 0;
    bool folded = false;  // absorbed by a later step while planning (removed before the plan runs)
  };
  std::vector<Step> steps;
  std::vector<Tensor> slots;
  std::vector<ValueMeta> metas;
  std::map<std::string, int> slot_of;
  std::vector<int> input_slots, output_slots;
  std::vector<std::pair<std::size_t, std::size_t>> observed_inputs;  // (graph input index, observed index)
  std::vector<Tensor> buffers;
};

Executor::Executor(graph::Graph g, Context& ctx, ExecutorOptions options)
    : graph_(std::move(g)), ctx_(ctx), options_(options) {
  // Every node is checked before any planning, so a model is refused at load, naming all it lacks.
  std::set<std::string> missing;
  const graph::Node* first = nullptr;
  for (const auto& n : graph_.nodes) {
    const OpEntry* e = find_op(n.op_type);
    if (!e) {
      if (missing.insert(n.op_type).second && !first) first = &n;
    } else if (graph_.opset < e->info.since_opset) {
      fail(graph_.source + ": " + n.describe() + " needs opset " + std::to_string(e->info.since_opset) +
           " or later, the model imports opset " + std::to_string(graph_.opset));
    }
  }
  if (first) {
    std::string names;
    for (const auto& m : missing) names += (names.empty() ? "" : ", ") + m;
    std::string hint;
    if (missing.size() == 1) {
      const auto close = closest_matches(first->op_type, supported_ops(), 1);
      if (!close.empty()) hint = "; did you mean " + close[0] + "?";
    }
    fail(graph_.source + ": unsupported operator" + (missing.size() > 1 ? "s " : " ") + names + " in " +
         first->describe() + (missing.size() > 1 ? " and others" : "") + hint + " (`aciq ops` lists the " +
         std::to_string(supported_ops().size()) + " supported)");
  }
  // oneDNN's OpenMP runtime sizes its team from this; aciq's own pool is sized by the Context.
  omp_set_num_threads(ctx.threads());
}

Executor::~Executor() = default;

void Executor::set_observed(std::vector<std::string> values) {
  observed_ = std::move(values);
  plans_.clear();
}

namespace {

std::string signature(const std::vector<Shape>& shapes) {
  std::string s;
  for (const auto& sh : shapes) s += shape_str(sh) + ";";
  return s;
}

bool is_activation(const std::string& op) { return op == "Relu" || op == "Clip" || op == "LeakyRelu"; }

}  // namespace

// Chooses which activations live in oneDNN's channel-blocked layout (docs/layouts.md): a 4-D
// float value is blocked when its channels fill whole blocks, it is not a graph output, and every
// op touching it accepts the layout; elementwise ops force their operands to agree. Blocked values
// hold no padding channels, so observers (statistics, fake quantization) see only real data.
void Executor::assign_layouts(Plan& p, const std::vector<std::vector<ValueMeta>>& in_metas,
                              const std::vector<std::vector<ValueMeta>>& out_metas,
                              const std::map<std::string, std::size_t>& observed,
                              const std::set<std::string>& graph_outputs) {
  // Channels-last when an op's kernel wants it and nothing is observed (per-channel statistics read
  // NCHW order; every other plan keeps the blocked layout, which observers may read directly).
  // Float graphs too when some 4-D float value's channels leave a partial block (ShuffleNet's 58/116,
  // MnasNet's 24/40 under AVX-512's 16): those stay plain in the blocked scheme, and oneDNN's convolutions
  // on plain data fall back to im2col gemm, while NHWC needs no channel multiple (docs/layouts.md).
  const int channel_block = p.env->channel_block();
  std::set<int> graph_output_slots;
  for (const auto& name : graph_outputs) graph_output_slots.insert(p.slot_of.at(name));
  bool channels_last = options_.layout == LayoutChoice::kChannelsLast;
  if (observed.empty() && options_.layout == LayoutChoice::kAuto) {
    for (const auto& step : p.steps) {
      channels_last = channels_last || step.op->prefers_channels_last();
      for (int o : step.out) {
        if (o < 0 || graph_output_slots.count(o)) continue;
        const ValueMeta& m = p.metas[o];
        // Fewer channels than one block (an RGB image, a Q/DQ'd input) is the plain first layer oneDNN
        // handles well; more that leave a partial block are what falls off the fast path.
        if (m.dtype == DType::kFloat32 && m.shape.size() == 4 && m.shape[1] > channel_block &&
            m.shape[1] % channel_block != 0)
          channels_last = true;
      }
    }
  }
  channels_last = channels_last && observed.empty();
  const int block = channels_last ? kernels::fast::kChannelsLast : channel_block;
  std::vector<bool> blocked(p.slots.size(), false);
  for (const auto& step : p.steps) {
    for (int o : step.out) {
      if (o < 0) continue;
      const ValueMeta& m = p.metas[o];
      const bool eight_bit = m.dtype == DType::kUInt8 || m.dtype == DType::kInt8;
      blocked[o] =
          m.shape.size() == 4 && (channels_last ? m.dtype == DType::kFloat32 || eight_bit
                                                : m.dtype == DType::kFloat32 && m.shape[1] % block == 0);
    }
  }
  for (const auto& name : graph_outputs) blocked[p.slot_of.at(name)] = false;
  std::vector<Op::LayoutRule> rules;
  for (std::size_t s = 0; s < p.steps.size(); ++s) {
    Op::LayoutRule rule = p.steps[s].op->layout_rule(in_metas[s], out_metas[s]);
    if (channels_last && !p.steps[s].op->handles_channels_last()) rule = Op::LayoutRule::kPlainOnly;
    rules.push_back(rule);
  }
  for (bool changed = true; changed;) {
    changed = false;
    auto clear = [&](int slot) {
      if (slot >= 0 && blocked[slot]) {
        blocked[slot] = false;
        changed = true;
      }
    };
    for (std::size_t s = 0; s < p.steps.size(); ++s) {
      const auto& step = p.steps[s];
      if (rules[s] == Op::LayoutRule::kPlainOnly) {
        for (int i : step.in) clear(i);
        for (int o : step.out) clear(o);
      } else if (rules[s] == Op::LayoutRule::kSame) {
        bool all = true;
        std::vector<int> group;
        for (const auto* list : {&step.in, &step.out}) {
          for (int slot : *list) {
            if (slot < 0 || p.metas[slot].shape.size() != 4) continue;
            group.push_back(slot);
            all = all && blocked[slot];
          }
        }
        if (!all) {
          for (int slot : group) clear(slot);
        }
      }
    }
  }
  for (auto& step : p.steps) {
    std::vector<bool> ins, outs;
    for (int i : step.in) ins.push_back(i >= 0 && blocked[i]);
    for (int o : step.out) outs.push_back(o >= 0 && blocked[o]);
    step.op->set_layouts(std::move(ins), std::move(outs), block);
  }
}

Executor::Plan& Executor::plan_for(const std::vector<Tensor>& inputs) {
  std::vector<Shape> shapes;
  for (const auto& t : inputs) shapes.push_back(t.shape());
  // Integer graph inputs are shape-like (Reshape targets, axes, pads): their values are part of
  // the plan, so they join the cache key and are treated as known while planning.
  std::string key = signature(shapes);
  for (const auto& t : inputs) {
    if (t.dtype() == DType::kFloat32) continue;
    for (auto v : t.to_i64_vector()) key += std::to_string(v) + ",";
    key += ";";
  }
  if (auto it = plans_.find(key); it != plans_.end()) return *it->second;

  const graph::Graph& g = graph_;
  auto plan = std::make_unique<Plan>();
  Plan& p = *plan;
  if (inputs.size() != g.inputs.size()) {
    fail(g.source + ": model has " + std::to_string(g.inputs.size()) + " inputs, got " +
         std::to_string(inputs.size()));
  }
  auto new_slot = [&](const std::string& name, ValueMeta meta, Tensor value) {
    const int s = static_cast<int>(p.slots.size());
    p.slots.push_back(std::move(value));
    p.metas.push_back(std::move(meta));
    if (!name.empty()) p.slot_of[name] = s;
    return s;
  };
  for (const auto& [name, t] : g.initializers) new_slot(name, {t.dtype(), t.shape(), nullptr}, t);
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    const auto& vi = g.inputs[i];
    const Shape& s = inputs[i].shape();
    require_input_fits(vi, inputs[i].dtype(), s, g.source);
    const bool shape_like = inputs[i].dtype() != DType::kFloat32;
    p.input_slots.push_back(
        new_slot(vi.name, {inputs[i].dtype(), s, nullptr}, shape_like ? inputs[i].clone() : Tensor()));
  }
  std::map<std::string, std::size_t> observed_index;
  for (std::size_t i = 0; i < observed_.size(); ++i) observed_index[observed_[i]] = i;
  const std::set<std::string> graph_outputs(g.outputs.begin(), g.outputs.end());

  p.env = options_.backend == Backend::kFast ? std::make_unique<DnnlEnv>() : nullptr;
  std::map<std::string, int> producer_step;  // value -> step index that writes it
  std::map<int, int> last_reader;            // slot -> last step so far that reads it
  // The operand (0 or 1) of a same-shape Add whose producing Conv can absorb the Add as a sum
  // post-op writing into the other operand's buffer, or -1. The Conv must produce the raw operand
  // for this Add alone; the other operand must be an intermediate value computed before that Conv,
  // read by no step from the Conv on (the Conv's own input included), and neither it nor any
  // value sharing its buffer may be read after the Add or be a graph output.
  auto fusable_sum_operand = [&](const graph::Node& add, std::size_t add_index) {
    int best = -1, best_step = -1;
    for (int k = 0; k < 2; ++k) {
      const std::string& y = add.inputs[k];
      const std::string& s = add.inputs[1 - k];
      const auto py = producer_step.find(y);
      const auto ps = producer_step.find(s);
      if (y == s || py == producer_step.end() || ps == producer_step.end() || ps->second >= py->second)
        continue;
      const Plan::Step& conv = p.steps[py->second];
      const graph::Node& conv_node = conv.op->node();
      if (conv_node.op_type != "Conv" || conv_node.outputs[0] != y ||
          conv.post.kind != Activation::Kind::kNone || !conv.observe.empty() || g.consumers(y).size() != 1 ||
          graph_outputs.count(y) || observed_index.count(y)) {
        continue;
      }
      const int s_slot = p.slot_of.at(s);
      if (auto r = last_reader.find(s_slot); r != last_reader.end() && r->second >= py->second) continue;
      bool free_after = true;
      for (const auto& [name, slot] : p.slot_of) {
        if (slot != s_slot) continue;
        if (graph_outputs.count(name)) free_after = false;
        for (const graph::Node* c : g.consumers(name)) {
          if (static_cast<std::size_t>(c - g.nodes.data()) > add_index) free_after = false;
        }
      }
      if (free_after && py->second > best_step) {
        best = k;
        best_step = py->second;
      }
    }
    return best;
  };
  std::vector<std::vector<ValueMeta>> step_in_metas;
  // Mul nodes already computed by a Conv with a fused swish (the Sigmoid + Mul pair below).
  std::set<const graph::Node*> fused_away;
  for (const graph::Node& node : g.nodes) {
    if (fused_away.count(&node)) continue;
    const auto node_index = static_cast<std::size_t>(&node - g.nodes.data());
    auto op = make_op(node, g.opset, options_.backend);
    if (!op) fail(g.source + ": unsupported operator " + node.op_type + " in " + node.describe());
    if ((node.inputs.empty() || node.inputs[0].empty()) && node.op_type != "Constant") {
      fail(g.source + ": " + node.describe() + " has no data input");
    }
    if (node.outputs.empty() || node.outputs[0].empty())
      fail(g.source + ": " + node.describe() + " has no output");
    std::vector<int> in_slots;
    std::vector<ValueMeta> in_metas;
    bool all_known = true;
    for (const auto& name : node.inputs) {
      if (name.empty()) {
        in_slots.push_back(-1);
        in_metas.push_back({});
        continue;
      }
      auto it = p.slot_of.find(name);
      if (it == p.slot_of.end())
        fail(g.source + ": " + node.describe() + " reads unknown value '" + name + "'");
      in_slots.push_back(it->second);
      ValueMeta m = p.metas[it->second];
      const bool known = !p.slots[it->second].empty();
      m.value = known ? &p.slots[it->second] : nullptr;
      all_known = all_known && known;
      in_metas.push_back(m);
    }
    std::vector<ValueMeta> out_metas;
    try {
      out_metas = op->infer(in_metas);
    } catch (const Error& e) {
      fail(g.source + ": " + e.what());
    } catch (const std::exception& e) {  // e.g. std::out_of_range from a malformed node
      fail(g.source + ": " + node.describe() + ": " + e.what());
    }
    // Fuse Relu/Clip/LeakyRelu into the single producer when nobody else needs the raw value.
    if (options_.backend == Backend::kFast && is_activation(node.op_type) && in_slots[0] >= 0) {
      const std::string& src = node.inputs[0];
      auto ps = producer_step.find(src);
      const bool sole_consumer =
          ps != producer_step.end() && g.consumers(src).size() == 1 && !graph_outputs.count(src);
      auto src_observed = observed_index.find(src);
      if (sole_consumer && src_observed != observed_index.end()) {
        // The raw value is observed (fake quantization, statistics): the producer cannot apply the
        // activation, but the observer can, in the same pass (Observer::observe_activation).
        Plan::Step& producer = p.steps[ps->second];
        auto act = activation_of(node, in_metas);
        const bool single_observed = producer.observe.size() == 1 &&
                                     producer.observe[0] == std::pair{in_slots[0], src_observed->second};
        if (act && single_observed && producer.post.kind == Activation::Kind::kNone) {
          producer.post = *act;
          producer.post_index = src_observed->second;
          producer.post_slot = in_slots[0];
          producer.observe.clear();
          p.slot_of[node.outputs[0]] = in_slots[0];
          producer_step[node.outputs[0]] = ps->second;
          if (auto ob = observed_index.find(node.outputs[0]); ob != observed_index.end()) {
            producer.post_observed_index = ob->second;
          }
          continue;
        }
      }
      // Not when the producer already carries an observer's post-activation: the op would apply this
      // activation before the observer sees the raw value, and the observer's own would run after it.
      if (sole_consumer && src_observed == observed_index.end() &&
          p.steps[ps->second].post.kind == Activation::Kind::kNone) {
        auto act = activation_of(node, in_metas);
        if (act && p.steps[ps->second].op->fuse_activation(*act)) {
          p.slot_of[node.outputs[0]] = in_slots[0];
          producer_step[node.outputs[0]] = ps->second;
          // The producer now writes the activated value; an observer of it runs after that step.
          if (auto ob = observed_index.find(node.outputs[0]); ob != observed_index.end()) {
            p.steps[ps->second].observe.emplace_back(in_slots[0], ob->second);
          }
          continue;
        }
      }
    }
    // Fuse SiLU, exported as y = Conv(...); s = Sigmoid(y); Mul(y, s), into the Conv as a swish (oneDNN's
    // eltwise_swish post-op): one pass instead of three when y and s feed nothing else and nobody observes
    // them. The Mul's output then lives in the Conv's buffer and the Mul node is skipped.
    // HardSigmoid(1/6, 1/2) + Mul, hardswish as opset-13 exporters write it, likewise (oneDNN's hardswish has
    // those constants built in, so other HardSigmoid parameters stay unfused).
    const bool standard_hard_sigmoid = node.op_type == "HardSigmoid" &&
                                       std::fabs(node.get_float("alpha", 0.2f) - 1.0f / 6.0f) < 1e-7f &&
                                       node.get_float("beta", 0.5f) == 0.5f;
    if (options_.backend == Backend::kFast && (node.op_type == "Sigmoid" || standard_hard_sigmoid) &&
        in_slots[0] >= 0) {
      const std::string& y = node.inputs[0];
      const std::string& s = node.outputs[0];
      const auto ps = producer_step.find(y);
      const auto y_users = g.consumers(y);
      const auto s_users = g.consumers(s);
      const graph::Node* mul = s_users.size() == 1 ? s_users[0] : nullptr;
      const bool pattern =
          ps != producer_step.end() && mul && mul->op_type == "Mul" && mul->inputs.size() == 2 &&
          ((mul->inputs[0] == y && mul->inputs[1] == s) || (mul->inputs[0] == s && mul->inputs[1] == y)) &&
          y_users.size() == 2 && (y_users[0] == mul || y_users[1] == mul) && !graph_outputs.count(y) &&
          !graph_outputs.count(s) && !observed_index.count(y) && !observed_index.count(s) &&
          !mul->outputs.empty() && !mul->outputs[0].empty();
      if (pattern) {
        Plan::Step& conv = p.steps[ps->second];
        const graph::Node& conv_node = conv.op->node();
        Activation swish;
        swish.kind = node.op_type == "Sigmoid" ? Activation::Kind::kSwish : Activation::Kind::kHardSwish;
        swish.alpha = node.get_float("alpha", 0.2f);
        swish.beta = node.get_float("beta", 0.5f);
        if (conv_node.op_type == "Conv" && conv_node.outputs[0] == y &&
            conv.post.kind == Activation::Kind::kNone && conv.observe.empty() &&
            conv.op->fuse_activation(swish)) {
          p.slot_of[mul->outputs[0]] = in_slots[0];
          producer_step[mul->outputs[0]] = ps->second;
          if (auto ob = observed_index.find(mul->outputs[0]); ob != observed_index.end())
            conv.observe.emplace_back(in_slots[0], ob->second);
          fused_away.insert(mul);
          continue;
        }
      }
    }
    // Fold per-tensor DequantizeLinear producers into the op reading them, and a per-tensor QuantizeLinear
    // into the op producing its input, where the op accepts (fuse_dequantize_input/fuse_quantize_output):
    // the int8 engine's residual DQ(a) + DQ(b) -> [Relu] -> Q becomes one pass over 8-bit tensors with the
    // unfused steps' arithmetic, DQ -> MaxPool -> Q an 8-bit pooling (docs/int8.md). Only values that
    // nothing else reads, nobody observes and that are no graph output disappear.
    const auto private_value = [&](const std::string& v) {
      return g.consumers(v).size() == 1 && !graph_outputs.count(v) && !observed_index.count(v);
    };
    if (options_.backend == Backend::kFast) {
      for (std::size_t k = 0; k < in_slots.size(); ++k) {
        if (std::count(node.inputs.begin(), node.inputs.end(), node.inputs[k]) != 1) continue;
        const auto pd = producer_step.find(node.inputs[k]);
        if (pd == producer_step.end() || in_slots[k] < 0) continue;
        Plan::Step& dq = p.steps[pd->second];
        if (dq.folded || dq.op->node().op_type != "DequantizeLinear" || dq.out.empty() ||
            dq.out[0] != in_slots[k] || !dq.observe.empty() || dq.post.kind != Activation::Kind::kNone ||
            !private_value(node.inputs[k])) {
          continue;
        }
        // Known values point into p.slots, which new_slot() may have moved since that step was planned.
        std::vector<ValueMeta> dq_in = step_in_metas[pd->second];
        for (std::size_t i = 0; i < dq_in.size(); ++i) {
          if (dq_in[i].value) dq_in[i].value = &p.slots[dq.in[i]];
        }
        if (!op->fuse_dequantize_input(k, dq_in)) continue;
        dq.folded = true;
        in_slots[k] = dq.in[0];
        in_metas[k] = step_in_metas[pd->second][0];
      }
    }
    if (options_.backend == Backend::kFast && node.op_type == "QuantizeLinear" && in_slots[0] >= 0 &&
        out_metas.size() == 1) {
      const auto ps = producer_step.find(node.inputs[0]);
      if (ps != producer_step.end() && private_value(node.inputs[0])) {
        Plan::Step& producer = p.steps[ps->second];
        if (!producer.folded && producer.out.size() == 1 && producer.out[0] == in_slots[0] &&
            producer.observe.empty() && producer.post.kind == Activation::Kind::kNone &&
            producer.op->fuse_quantize_output(in_metas, out_metas[0].dtype)) {
          producer.out[0] = new_slot(node.outputs[0], out_metas[0], Tensor());
          producer_step[node.outputs[0]] = ps->second;
          if (auto ob = observed_index.find(node.outputs[0]); ob != observed_index.end())
            producer.observe.emplace_back(producer.out[0], ob->second);
          p.ops.push_back(std::move(op));
          continue;
        }
      }
    }
    // Fuse a residual Add into the Conv producing one operand (oneDNN's sum post-op): the conv writes
    // conv + s into the other operand s's buffer, which saves a pass reading two tensors and writing
    // a third. Safe only when nothing reads s after the conv step and s is an intermediate buffer.
    if (options_.backend == Backend::kFast && node.op_type == "Add" && in_slots.size() == 2 &&
        in_slots[0] >= 0 && in_slots[1] >= 0 && !all_known && out_metas.size() == 1 &&
        out_metas[0].dtype == DType::kFloat32 && in_metas[0].shape == in_metas[1].shape &&
        out_metas[0].shape == in_metas[0].shape && in_metas[1].dtype == DType::kFloat32) {
      const int chosen = fusable_sum_operand(node, node_index);
      if (chosen >= 0) {
        const int s_slot = in_slots[1 - chosen];
        const int conv_index = producer_step.at(node.inputs[chosen]);
        Plan::Step& conv = p.steps[conv_index];
        if (conv.op->fuse_sum()) {
          conv.out[0] = s_slot;
          conv.in.push_back(s_slot);  // read by the sum: keeps the buffer alive up to this step
          step_in_metas[conv_index].push_back(in_metas[1 - chosen]);
          last_reader[s_slot] = conv_index;
          p.slot_of[node.outputs[0]] = s_slot;
          producer_step[node.outputs[0]] = conv_index;
          if (auto ob = observed_index.find(node.outputs[0]); ob != observed_index.end()) {
            conv.observe.emplace_back(s_slot, ob->second);
          }
          continue;
        }
      }
    }
    const bool outputs_known =
        !out_metas.empty() && std::all_of(out_metas.begin(), out_metas.end(),
                                          [](const ValueMeta& m) { return m.value != nullptr; });
    if (outputs_known) {
      // infer() already computed the values (e.g. Shape of a runtime tensor): no step needed.
      for (std::size_t i = 0; i < node.outputs.size() && i < out_metas.size(); ++i) {
        if (!node.outputs[i].empty()) {
          Tensor v = out_metas[i].value->clone();
          new_slot(node.outputs[i], {v.dtype(), v.shape(), nullptr}, v);
        }
      }
      p.ops.push_back(std::move(op));
      continue;
    }
    std::vector<int> out_slots;
    for (std::size_t i = 0; i < node.outputs.size(); ++i) {
      if (node.outputs[i].empty() || i >= out_metas.size()) {
        out_slots.push_back(-1);
        continue;
      }
      out_slots.push_back(new_slot(node.outputs[i], out_metas[i], Tensor()));
    }
    if (all_known) {
      // Every input is known at plan time: evaluate now (constant folding, shape arithmetic).
      std::vector<const Tensor*> ins;
      for (int s : in_slots) ins.push_back(s >= 0 ? &p.slots[s] : nullptr);
      std::vector<Tensor*> outs;
      for (std::size_t i = 0; i < out_slots.size(); ++i) {
        if (out_slots[i] >= 0) p.slots[out_slots[i]] = Tensor(out_metas[i].dtype, out_metas[i].shape);
        outs.push_back(out_slots[i] >= 0 ? &p.slots[out_slots[i]] : nullptr);
      }
      // new_slot() may have moved the slots since in_metas took their addresses.
      for (std::size_t i = 0; i < in_slots.size(); ++i) {
        if (in_slots[i] >= 0 && in_metas[i].value) in_metas[i].value = &p.slots[in_slots[i]];
      }
      try {
        op->prepare(in_metas, out_metas, nullptr);
        op->run(ctx_, ins, outs);
      } catch (const Error& e) {
        fail(g.source + ": " + e.what());
      } catch (const std::exception& e) {
        fail(g.source + ": " + node.describe() + ": " + e.what());
      }
      p.ops.push_back(std::move(op));
      continue;
    }
    Plan::Step step;
    step.op = op.get();
    step.in = in_slots;
    step.out = out_slots;
    for (std::size_t i = 0; i < node.outputs.size(); ++i) {
      auto it = observed_index.find(node.outputs[i]);
      if (it != observed_index.end() && out_slots[i] >= 0)
        step.observe.emplace_back(out_slots[i], it->second);
    }
    for (const auto& o : node.outputs) producer_step[o] = static_cast<int>(p.steps.size());
    for (int s : step.in) {
      if (s >= 0) last_reader[s] = static_cast<int>(p.steps.size());
    }
    p.ops.push_back(std::move(op));
    p.steps.push_back(std::move(step));
    step_in_metas.push_back(std::move(in_metas));
  }
  // Steps folded into a later one leave the plan (their op objects stay owned by p.ops).
  for (std::size_t s = p.steps.size(); s-- > 0;) {
    if (!p.steps[s].folded) continue;
    p.steps.erase(p.steps.begin() + static_cast<std::ptrdiff_t>(s));
    step_in_metas.erase(step_in_metas.begin() + static_cast<std::ptrdiff_t>(s));
  }
  for (const auto& name : observed_) {
    if (!p.slot_of.count(name)) fail(g.source + ": observed value '" + name + "' is not in the graph");
  }
  for (std::size_t i = 0; i < g.inputs.size(); ++i) {
    auto it = observed_index.find(g.inputs[i].name);
    if (it != observed_index.end()) p.observed_inputs.emplace_back(i, it->second);
  }
  for (const auto& out : g.outputs) {
    auto it = p.slot_of.find(out);
    if (it == p.slot_of.end())
      fail(g.source + ": graph output '" + out + "' is not computed by any supported output");
    p.output_slots.push_back(it->second);
  }

  // Metas of known inputs point into slots (stable now that no slot is added).
  std::vector<std::vector<ValueMeta>> step_out_metas(p.steps.size());
  for (std::size_t s = 0; s < p.steps.size(); ++s) {
    auto& step = p.steps[s];
    for (int o : step.out) step_out_metas[s].push_back(o >= 0 ? p.metas[o] : ValueMeta{});
    for (std::size_t i = 0; i < step.in.size(); ++i) {
      if (step.in[i] >= 0 && step_in_metas[s][i].value) step_in_metas[s][i].value = &p.slots[step.in[i]];
    }
  }
  if (p.env) assign_layouts(p, step_in_metas, step_out_metas, observed_index, graph_outputs);

  // Prepare primitives after fusion and layout decisions.
  for (std::size_t s = 0; s < p.steps.size(); ++s) {
    auto& step = p.steps[s];
    const auto& outs = step_out_metas[s];
    try {
      step.op->prepare(step_in_metas[s], outs, p.env.get());
    } catch (const Error& e) {
      fail(g.source + ": " + e.what());
    } catch (const std::exception& e) {
      fail(g.source + ": " + step.op->node().describe() + ": " + e.what());
    }
  }

  // Arena: a value's buffer returns to the free list after its last reader; best-fit reuse.
  std::vector<int> last_use(p.slots.size(), -1);
  for (std::size_t s = 0; s < p.steps.size(); ++s) {
    for (int i : p.steps[s].in) {
      if (i >= 0) last_use[i] = static_cast<int>(s);
    }
  }
  for (int o : p.output_slots) last_use[o] = std::numeric_limits<int>::max();
  std::vector<std::size_t> free_list;  // indices into buffers
  std::map<int, std::size_t> buffer_of;
  for (std::size_t s = 0; s < p.steps.size(); ++s) {
    for (int o : p.steps[s].out) {
      if (o < 0 || !p.slots[o].empty()) continue;
      const ValueMeta& m = p.metas[o];
      const std::size_t bytes = static_cast<std::size_t>(shape_numel(m.shape)) * dtype_size(m.dtype);
      auto best = free_list.end();
      for (auto it = free_list.begin(); it != free_list.end(); ++it) {
        const std::size_t cap = p.buffers[*it].capacity();
        if (cap >= bytes && (best == free_list.end() || cap < p.buffers[*best].capacity())) best = it;
      }
      std::size_t b;
      if (best != free_list.end()) {
        b = *best;
        free_list.erase(best);
      } else {
        b = p.buffers.size();
        p.buffers.emplace_back(DType::kUInt8,
                               Shape{static_cast<std::int64_t>(std::max<std::size_t>(bytes, 1))});
      }
      p.slots[o] = p.buffers[b].view(m.dtype, m.shape);
      buffer_of[o] = b;
      if (last_use[o] < 0) free_list.push_back(b);  // written but never read (e.g. an unused mask)
    }
    for (int i : p.steps[s].in) {
      if (i >= 0 && last_use[i] == static_cast<int>(s) && buffer_of.count(i)) {
        free_list.push_back(buffer_of[i]);
        buffer_of.erase(i);
      }
    }
  }
  auto [it, inserted] = plans_.emplace(key, std::move(plan));
  return *it->second;
}

void Observer::observe_activation(std::size_t index, Tensor& value, const Activation& act,
                                  std::size_t activated_index, Context& ctx) {
  observe(index, value);
  kernels::apply_activation(act, value.data<float>(), value.numel(), ctx);
  if (activated_index != kNotObserved) observe(activated_index, value);
}

std::vector<Tensor> Executor::run(const std::vector<Tensor>& inputs, Observer* observer) {
  Plan& p = plan_for(inputs);
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    if (inputs[i].dtype() == DType::kFloat32) p.slots[p.input_slots[i]] = inputs[i];
  }
  for (auto [input, index] : p.observed_inputs) {
    if (!observer) break;
    // The observer may rewrite what it sees; never let that reach the caller's tensor.
    p.slots[p.input_slots[input]] = inputs[input].clone();
    observer->observe(index, p.slots[p.input_slots[input]]);
  }
  std::vector<const Tensor*> ins;
  std::vector<Tensor*> outs;
  for (auto& step : p.steps) {
    const auto t0 = profiling_ ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point{};
    ins.clear();
    outs.clear();
    for (int s : step.in) ins.push_back(s >= 0 ? &p.slots[s] : nullptr);
    for (int s : step.out) outs.push_back(s >= 0 ? &p.slots[s] : nullptr);
    try {
      step.op->run(ctx_, ins, outs);
    } catch (const Error& e) {
      fail(graph_.source + ": " + e.what());
    } catch (const std::exception& e) {
      fail(graph_.source + ": " + step.op->node().describe() + ": " + e.what());
    }
    if (step.post.kind != Activation::Kind::kNone) {
      Tensor& value = p.slots[step.post_slot];
      if (observer) {
        observer->observe_activation(step.post_index, value, step.post, step.post_observed_index, ctx_);
      } else {
        kernels::apply_activation(step.post, value.data<float>(), value.numel(), ctx_);
      }
    } else if (observer) {
      for (auto [slot, index] : step.observe) observer->observe(index, p.slots[slot]);
    }
    if (profiling_) {
      step.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      ++step.calls;
    }
  }
  std::vector<Tensor> result;
  for (int s : p.output_slots) result.push_back(p.slots[s].clone());
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    if (inputs[i].dtype() == DType::kFloat32)
      p.slots[p.input_slots[i]] = Tensor();  // do not keep the batch alive
  }
  return result;
}

// Zero tensors of the given shapes and the graph inputs' dtypes, to plan without data.
std::vector<Tensor> Executor::placeholder_inputs(const std::vector<Shape>& input_shapes) const {
  std::vector<Tensor> dummies;
  for (std::size_t i = 0; i < input_shapes.size(); ++i) {
    dummies.emplace_back(i < graph_.inputs.size() ? graph_.inputs[i].dtype : DType::kFloat32,
                         input_shapes[i]);
  }
  return dummies;
}

std::vector<std::string> Executor::planned_steps(const std::vector<Shape>& input_shapes) {
  const Plan& p = plan_for(placeholder_inputs(input_shapes));
  std::vector<std::string> names;
  for (const auto& step : p.steps) names.push_back(step.op->node().name);
  return names;
}

void Executor::set_profiling(bool on) {
  profiling_ = on;
  if (!on) return;
  for (auto& [key, plan] : plans_) {
    for (auto& step : plan->steps) {
      step.seconds = 0;
      step.calls = 0;
    }
  }
}

std::vector<Executor::StepReport> Executor::step_report(const std::vector<Shape>& input_shapes) {
  const Plan& p = plan_for(placeholder_inputs(input_shapes));
  std::vector<StepReport> out;
  for (const auto& step : p.steps) {
    const auto& n = step.op->node();
    out.push_back({n.name, n.op_type, step.op->kernel(), step.seconds, step.calls});
  }
  return out;
}

std::map<std::string, Shape> Executor::infer_shapes(const std::vector<Shape>& input_shapes) {
  Plan& p = plan_for(placeholder_inputs(input_shapes));
  std::map<std::string, Shape> out;
  for (const auto& [name, slot] : p.slot_of) out[name] = p.metas[slot].shape;
  return out;
}

}  // namespace aciq::runtime
