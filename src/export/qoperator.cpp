// The QOperator lowering: a QDQ graph (insert_qdq's layout) rewritten so that convolutions and matrix
// products run on integers. docs/int8.md has the arithmetic; this file only matches patterns.
//
//   DQ(x) DQ(w) [DQ(b)] -> Conv -> [Relu | Clip] -> Q      =>  QLinearConv -> (Q's output)
//   DQ(x) DQ(w) [DQ(b)] -> Conv -> (anything else)         =>  ConvInteger -> Cast -> Mul(s_x s_w) [->
//   Add(b)] DQ(a) DQ(w) -> MatMul -> Q                             =>  QLinearMatMul DQ(a) DQ(w) [C] -> Gemm
//   | MatMul -> (anything else)    =>  MatMulInteger -> Cast -> Mul [-> Add(C)]
//
// A Relu or Clip between the convolution and its Q is dropped only when the Q's saturation already
// performs it (checked exactly below); everything that matches no pattern stays as it was, so the
// result always computes what the QDQ graph computes, up to the float rounding docs/int8.md describes.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <optional>
#include <set>

#include "aciq/export.hpp"

namespace aciq::exporter {

namespace {

using graph::Graph;
using graph::Node;

// A DequantizeLinear whose scale and zero point are initializers.
struct Dequantized {
  const Node* node = nullptr;
  std::string q, scale, zero_point;  // zero_point "" when omitted
  const Tensor* scale_t = nullptr;
  const Tensor* zero_t = nullptr;
};

std::optional<Dequantized> dequantized(const Graph& g, const std::string& value) {
  const Node* p = g.producer(value);
  if (!p || p->op_type != "DequantizeLinear" || !p->has_input(1)) return std::nullopt;
  Dequantized d;
  d.node = p;
  d.q = p->inputs[0];
  d.scale = p->inputs[1];
  d.scale_t = g.initializer(d.scale);
  if (!d.scale_t || d.scale_t->dtype() != DType::kFloat32) return std::nullopt;
  if (p->has_input(2)) {
    d.zero_point = p->inputs[2];
    d.zero_t = g.initializer(d.zero_point);
    if (!d.zero_t) return std::nullopt;
  }
  return d;
}

bool is_8bit_type(DType t) { return t == DType::kUInt8 || t == DType::kInt8; }

// An activation DQ: per-tensor, 8-bit, its integer input computed at run time.
bool is_activation_dq(const Graph& g, const Dequantized& d) {
  return d.scale_t->numel() == 1 && d.zero_t && d.zero_t->numel() == 1 && is_8bit_type(d.zero_t->dtype()) &&
         !g.initializer(d.q);
}

// A weight DQ: a constant 8-bit tensor, scale and zero point scalar or per channel along `axis`.
bool is_weight_dq(const Graph& g, const Dequantized& d, std::int64_t axis) {
  const Tensor* q = g.initializer(d.q);
  if (!q || !is_8bit_type(q->dtype()) || (d.zero_t && d.zero_t->dtype() != q->dtype())) return false;
  if (d.scale_t->numel() == 1) return !d.zero_t || d.zero_t->numel() == 1;
  const std::int64_t dq_axis = d.node->get_int("axis", 1);
  const auto rank = static_cast<std::int64_t>(q->rank());
  return (dq_axis < 0 ? dq_axis + rank : dq_axis) == axis && d.scale_t->numel() == q->dim(axis) &&
         (!d.zero_t || d.zero_t->numel() == d.scale_t->numel());
}

float scalar_f32(const Tensor& t) { return t.data<float>()[0]; }
std::int64_t scalar_int(const Tensor& t) { return t.to_i64_vector().at(0); }

std::vector<float> per_channel(const Tensor& t, std::int64_t count) {
  std::vector<float> v(static_cast<std::size_t>(count));
  for (std::int64_t i = 0; i < count; ++i) v[i] = t.data<float>()[t.numel() == 1 ? 0 : i];
  return v;
}

graph::Attribute int_attr(std::int64_t v) {
  graph::Attribute a;
  a.kind = graph::Attribute::Kind::kInt;
  a.i = v;
  return a;
}

class Lowering {
 public:
  explicit Lowering(const Graph& src) : g_(src) {
    for (const auto& n : g_.nodes) {
      used_.insert(n.name);
      used_.insert(n.outputs.begin(), n.outputs.end());
    }
    for (const auto& in : g_.inputs) used_.insert(in.name);
  }

  Graph run() {
    std::vector<Node> out;
    for (const auto& n : g_.nodes) {
      if (dropped_.count(n.name)) continue;
      std::vector<Node> replacement;
      if (n.op_type == "Conv") {
        replacement = lower_conv(n);
      } else if (n.op_type == "Gemm" || n.op_type == "MatMul") {
        replacement = lower_matmul(n);
      }
      if (replacement.empty()) {
        out.push_back(n);
      } else {
        out.insert(out.end(), replacement.begin(), replacement.end());
      }
    }
    // A node dropped after it was copied (its Q was fused by a later producer) cannot happen: the
    // producer always precedes its Q in topological order, so `dropped_` is complete when Q is reached.
    Graph g = g_;
    g.nodes = std::move(out);
    g.initializers.insert(added_.begin(), added_.end());
    remove_dead(g);
    graph::topological_sort(g);
    return g;
  }

 private:
  std::string fresh(const std::string& want) {
    std::string name = want;
    for (int i = 1; used_.count(name) || g_.initializers.count(name) || added_.count(name); ++i)
      name = want + "_" + std::to_string(i);
    used_.insert(name);
    return name;
  }
  std::string add_initializer(const std::string& want, Tensor t) {
    std::string name = fresh(want);
    added_[name] = std::move(t);
    return name;
  }
  bool is_graph_output(const std::string& v) const {
    return std::find(g_.outputs.begin(), g_.outputs.end(), v) != g_.outputs.end();
  }

  // The Q that `y` reaches, directly or through a Relu/Clip the Q makes redundant; records what to drop.
  struct OutputQ {
    const Node* q = nullptr;
    const Node* activation = nullptr;
  };
  std::optional<OutputQ> output_q(const std::string& y) const {
    if (is_graph_output(y)) return std::nullopt;
    const auto cons = g_.consumers(y);
    if (cons.size() != 1) return std::nullopt;
    OutputQ r;
    const Node* next = cons[0];
    if (next->op_type == "Relu" || next->op_type == "Clip") {
      if (is_graph_output(next->outputs[0])) return std::nullopt;
      const auto after = g_.consumers(next->outputs[0]);
      if (after.size() != 1) return std::nullopt;
      r.activation = next;
      next = after[0];
    }
    if (next->op_type != "QuantizeLinear" || !next->has_input(2)) return std::nullopt;
    const Tensor* s = g_.initializer(next->inputs[1]);
    const Tensor* z = g_.initializer(next->inputs[2]);
    if (!s || !z || s->numel() != 1 || z->numel() != 1 || !is_8bit_type(z->dtype())) return std::nullopt;
    if (r.activation &&
        !activation_is_redundant(*r.activation, *next, scalar_f32(*s), scalar_int(*z), z->dtype()))
      return std::nullopt;
    r.q = next;
    return r;
  }

  // Clamping y to [lo, hi] before q = sat(rint(y / s) + z) changes nothing when both bounds quantize to or
  // beyond the levels the chain can hold: rint(lo / s) + z <= L and rint(hi / s) + z >= H, where [L, H] is
  // the type range narrowed by an integer Clip right after the Q (the sub-8-bit grids of insert_qdq).
  bool activation_is_redundant(const Node& act, const Node& q, float s, std::int64_t z, DType type) const {
    float lo = 0.0f, hi = std::numeric_limits<float>::infinity();
    if (act.op_type == "Clip") {
      if (act.has("min") || act.has("max")) {
        lo = act.get_float("min", -std::numeric_limits<float>::infinity());
        hi = act.get_float("max", std::numeric_limits<float>::infinity());
      } else {
        const Tensor* tl = act.has_input(1) ? g_.initializer(act.inputs[1]) : nullptr;
        const Tensor* th = act.has_input(2) ? g_.initializer(act.inputs[2]) : nullptr;
        if ((act.has_input(1) && !tl) || (act.has_input(2) && !th)) return false;
        lo = tl ? scalar_f32(*tl) : -std::numeric_limits<float>::infinity();
        hi = th ? scalar_f32(*th) : std::numeric_limits<float>::infinity();
      }
    }
    std::int64_t level_lo = type == DType::kUInt8 ? 0 : -128, level_hi = type == DType::kUInt8 ? 255 : 127;
    const auto after = g_.consumers(q.outputs[0]);
    if (after.size() == 1 && after[0]->op_type == "Clip") {
      const Tensor* cl = after[0]->has_input(1) ? g_.initializer(after[0]->inputs[1]) : nullptr;
      const Tensor* ch = after[0]->has_input(2) ? g_.initializer(after[0]->inputs[2]) : nullptr;
      if (cl) level_lo = std::max(level_lo, scalar_int(*cl));
      if (ch) level_hi = std::min(level_hi, scalar_int(*ch));
    }
    const auto level = [&](float v) {
      return std::isinf(v) ? v : std::nearbyint(v / s) + static_cast<float>(z);
    };
    return level(lo) <= static_cast<float>(level_lo) && level(hi) >= static_cast<float>(level_hi);
  }

  void drop(const OutputQ& oq) {
    dropped_.insert(oq.q->name);
    if (oq.activation) dropped_.insert(oq.activation->name);
  }

  // Cast(int32 -> float) and Mul by the per-channel scale, then Add of the float bias when there is one.
  void rescale(std::vector<Node>& nodes, const std::string& base, const std::string& acc, Tensor scale,
               const std::string& bias, const std::string& y) {
    const std::string f = fresh(base + "_float"), s = add_initializer(base + "_rescale", std::move(scale));
    Node cast = make(base + "_Cast", "Cast", {acc}, {f});
    cast.attrs["to"] = int_attr(1);  // FLOAT
    nodes.push_back(std::move(cast));
    if (bias.empty()) {
      nodes.push_back(make(base + "_Rescale", "Mul", {f, s}, {y}));
    } else {
      const std::string scaled = fresh(base + "_scaled");
      nodes.push_back(make(base + "_Rescale", "Mul", {f, s}, {scaled}));
      nodes.push_back(make(base + "_Bias", "Add", {scaled, bias}, {y}));
    }
  }

  Node make(const std::string& name, std::string op, std::vector<std::string> in,
            std::vector<std::string> out) {
    Node n;
    n.name = fresh(name);
    n.op_type = std::move(op);
    n.inputs = std::move(in);
    n.outputs = std::move(out);
    return n;
  }

  // The zero point input for an integer op: the DQ's own when it is a scalar (or `allow_vector`), a fresh
  // scalar of the weight's type when all channels share one value (ONNX Runtime's integer kernels want
  // that), a zero scalar when the DQ has none.
  std::string weight_zero(const Dequantized& w, const Tensor& q, bool allow_vector) {
    const auto v = w.zero_t ? w.zero_t->to_i64_vector() : std::vector<std::int64_t>{0};
    if (w.zero_t && (v.size() == 1 || allow_vector)) return w.zero_point;
    if (w.zero_t && !std::all_of(v.begin(), v.end(), [&](std::int64_t x) { return x == v[0]; }))
      return w.zero_point;
    Tensor t(q.dtype(), {});
    if (q.dtype() == DType::kInt8) {
      t.data<std::int8_t>()[0] = static_cast<std::int8_t>(v[0]);
    } else {
      t.data<std::uint8_t>()[0] = static_cast<std::uint8_t>(v[0]);
    }
    return add_initializer(w.q + "_zero_point_scalar", std::move(t));
  }

  std::vector<Node> lower_conv(const Node& n) {
    if (!n.has_input(1)) return {};
    const auto x = dequantized(g_, n.inputs[0]);
    const auto w = dequantized(g_, n.inputs[1]);
    if (!x || !w || !is_activation_dq(g_, *x) || !is_weight_dq(g_, *w, 0)) return {};
    const Tensor& qw = *g_.initializer(w->q);
    const std::int64_t oc = qw.dim(0);
    const float sx = scalar_f32(*x->scale_t);
    const std::vector<float> sw = per_channel(*w->scale_t, oc);
    std::optional<Dequantized> b;
    if (n.has_input(2)) {
      b = dequantized(g_, n.inputs[2]);
      if (!b) return {};  // a float bias: leave the node to the float path
      const Tensor* qb = g_.initializer(b->q);
      if (!qb || qb->dtype() != DType::kInt32 || qb->numel() != oc) return {};
      if (b->zero_t) {
        const auto zeros = b->zero_t->to_i64_vector();
        if (std::any_of(zeros.begin(), zeros.end(), [](std::int64_t v) { return v != 0; })) return {};
      }
      // The int32 bias is added to the accumulator only if its scale is exactly s_x s_w[c].
      const std::vector<float> sb = per_channel(*b->scale_t, oc);
      for (std::int64_t c = 0; c < oc; ++c) {
        if (sb[c] != sx * sw[c]) return {};
      }
    }
    std::vector<Node> nodes;
    if (const auto oq = output_q(n.outputs[0])) {
      drop(*oq);
      Node q = make(n.name + "_quant", "QLinearConv",
                    {x->q, x->scale, x->zero_point, w->q, w->scale, weight_zero(*w, qw, false),
                     oq->q->inputs[1], oq->q->inputs[2]},
                    {oq->q->outputs[0]});
      if (b) q.inputs.push_back(b->q);
      q.attrs = n.attrs;
      nodes.push_back(std::move(q));
      return nodes;
    }
    // Float consumer (a residual Add, a graph output): integer accumulation, then back to float.
    const std::string acc = fresh(n.name + "_acc");
    Node ci = make(n.name + "_integer", "ConvInteger",
                   {x->q, w->q, x->zero_point, weight_zero(*w, qw, false)}, {acc});
    ci.attrs = n.attrs;
    nodes.push_back(std::move(ci));
    Shape channel_shape(qw.rank(), 1);
    channel_shape[1] = oc;
    Tensor scale(DType::kFloat32, channel_shape);
    for (std::int64_t c = 0; c < oc; ++c) scale.data<float>()[c] = sx * sw[c];
    std::string bias;
    if (b) {
      // What DequantizeLinear computes, (q - 0) * scale in float32, laid out to broadcast over channels.
      Tensor fb(DType::kFloat32, channel_shape);
      const std::vector<float> sb = per_channel(*b->scale_t, oc);
      const std::int32_t* qb = g_.initializer(b->q)->data<std::int32_t>();
      for (std::int64_t c = 0; c < oc; ++c) fb.data<float>()[c] = static_cast<float>(qb[c]) * sb[c];
      bias = add_initializer(n.inputs[2] + "_channels", std::move(fb));
    }
    rescale(nodes, n.name, acc, std::move(scale), bias, n.outputs[0]);
    return nodes;
  }

  std::vector<Node> lower_matmul(const Node& n) {
    const bool gemm = n.op_type == "Gemm";
    if (n.inputs.size() < 2) return {};
    if (gemm && (n.get_int("transA", 0) != 0 || n.get_float("alpha", 1.0f) != 1.0f ||
                 (n.has_input(2) && n.get_float("beta", 1.0f) != 1.0f)))
      return {};
    const auto a = dequantized(g_, n.inputs[0]);
    const auto w = dequantized(g_, n.inputs[1]);
    if (!a || !w || !is_activation_dq(g_, *a)) return {};
    const Tensor* qw0 = g_.initializer(w->q);
    if (!qw0 || qw0->rank() != 2) return {};
    const bool trans_b = gemm && n.get_int("transB", 0) != 0;
    if (!is_weight_dq(g_, *w, trans_b ? 0 : 1)) return {};
    // MatMulInteger wants B as [K, N]: a transposed Gemm weight is transposed once here.
    const std::int64_t k = trans_b ? qw0->dim(1) : qw0->dim(0), cols = trans_b ? qw0->dim(0) : qw0->dim(1);
    std::string b_name = w->q;
    if (trans_b) {
      Tensor t(qw0->dtype(), {k, cols});
      const auto* src = static_cast<const std::uint8_t*>(qw0->raw());
      auto* dst = static_cast<std::uint8_t*>(t.raw());
      for (std::int64_t i = 0; i < cols; ++i) {
        for (std::int64_t j = 0; j < k; ++j) dst[j * cols + i] = src[i * k + j];
      }
      b_name = add_initializer(w->q + "_kn", std::move(t));
    }
    const float sa = scalar_f32(*a->scale_t);
    const std::vector<float> sw = per_channel(*w->scale_t, cols);
    std::vector<Node> nodes;
    if (!gemm) {
      if (const auto oq = output_q(n.outputs[0]); oq && !oq->activation) {
        const std::string zero = weight_zero(*w, *qw0, false);
        drop(*oq);
        nodes.push_back(
            make(n.name + "_quant", "QLinearMatMul",
                 {a->q, a->scale, a->zero_point, b_name, w->scale, zero, oq->q->inputs[1], oq->q->inputs[2]},
                 {oq->q->outputs[0]}));
        return nodes;
      }
    }
    const std::string acc = fresh(n.name + "_acc");
    Node mi = make(n.name + "_integer", "MatMulInteger",
                   {a->q, b_name, a->zero_point, weight_zero(*w, *qw0, false)}, {acc});
    nodes.push_back(std::move(mi));
    Tensor scale(DType::kFloat32, {cols});
    for (std::int64_t c = 0; c < cols; ++c) scale.data<float>()[c] = sa * sw[c];
    rescale(nodes, n.name, acc, std::move(scale), gemm && n.has_input(2) ? n.inputs[2] : "", n.outputs[0]);
    return nodes;
  }

  // Drops nodes none of whose outputs is used (the DequantizeLinear of a weight that now feeds the
  // integer op directly, ...) and initializers nothing reads.
  static void remove_dead(Graph& g) {
    for (bool changed = true; changed;) {
      changed = false;
      std::set<std::string> read(g.outputs.begin(), g.outputs.end());
      for (const auto& n : g.nodes) read.insert(n.inputs.begin(), n.inputs.end());
      const auto dead = [&](const Node& n) {
        return std::none_of(n.outputs.begin(), n.outputs.end(),
                            [&](const std::string& o) { return !o.empty() && read.count(o); });
      };
      const auto before = g.nodes.size();
      g.nodes.erase(std::remove_if(g.nodes.begin(), g.nodes.end(), dead), g.nodes.end());
      changed = g.nodes.size() != before;
    }
    std::set<std::string> read(g.outputs.begin(), g.outputs.end());
    for (const auto& n : g.nodes) read.insert(n.inputs.begin(), n.inputs.end());
    for (auto it = g.initializers.begin(); it != g.initializers.end();) {
      it = read.count(it->first) ? std::next(it) : g.initializers.erase(it);
    }
  }

  const Graph& g_;
  std::set<std::string> used_, dropped_;
  std::map<std::string, Tensor> added_;
};

}  // namespace

Graph lower_to_qoperator(const Graph& qdq) { return Lowering(qdq).run(); }

}  // namespace aciq::exporter
