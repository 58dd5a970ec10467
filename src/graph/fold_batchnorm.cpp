// Graph pass: fold inference-mode BatchNormalization into the preceding Conv or Gemm.
#include <algorithm>
#include <cmath>
#include <set>

#include "aciq/graph.hpp"

namespace aciq::graph {

namespace {

// Per-channel BN as y = x * scale + shift, from the BN node's constant inputs; nullopt when
// any parameter is not a constant of the expected length.
struct BnAffine {
  std::vector<double> scale, shift;
};

std::optional<BnAffine> bn_affine(const Graph& g, const Node& bn, std::int64_t channels) {
  if (bn.inputs.size() < 5 || bn.outputs.size() != 1) return std::nullopt;  // training-mode outputs
  const Tensor* gamma = g.initializer(bn.inputs[1]);
  const Tensor* beta = g.initializer(bn.inputs[2]);
  const Tensor* mean = g.initializer(bn.inputs[3]);
  const Tensor* var = g.initializer(bn.inputs[4]);
  for (const Tensor* t : {gamma, beta, mean, var}) {
    if (!t || t->dtype() != DType::kFloat32 || t->numel() != channels) return std::nullopt;
  }
  const double eps = bn.get_float("epsilon", 1e-5f);
  BnAffine a;
  for (std::int64_t c = 0; c < channels; ++c) {
    const double s = gamma->f32()[c] / std::sqrt(static_cast<double>(var->f32()[c]) + eps);
    a.scale.push_back(s);
    a.shift.push_back(beta->f32()[c] - mean->f32()[c] * s);
  }
  return a;
}

bool single_consumer(const Graph& g, const std::string& value) {
  return g.consumers(value).size() == 1 && std::find(g.outputs.begin(), g.outputs.end(), value) == g.outputs.end();
}

std::string fresh_name(const Graph& g, const std::string& base) {
  std::string name = base;
  for (int i = 1; g.initializers.count(name); ++i) name = base + "_" + std::to_string(i);
  return name;
}

// Rewrites producer's weight (scaled along out_axis_stride layout) and bias with the BN affine.
bool fold_into(Graph& g, Node& producer, const Node& bn) {
  const Tensor* w = producer.inputs.size() > 1 ? g.initializer(producer.inputs[1]) : nullptr;
  if (!w || w->dtype() != DType::kFloat32) return false;
  std::int64_t out_channels = 0;
  std::int64_t inner = 0;     // contiguous elements per output channel (Conv, Gemm transB=1)
  bool column_major = false;  // Gemm transB=0: W is [K, N], output channel is the column
  if (producer.op_type == "Conv") {
    if (w->rank() < 3) return false;
    out_channels = w->dim(0);
    inner = w->numel() / out_channels;
  } else {  // Gemm
    if (w->rank() != 2 || producer.get_float("alpha", 1.0f) != 1.0f || producer.get_float("beta", 1.0f) != 1.0f ||
        producer.get_int("transA", 0) != 0) {
      return false;
    }
    column_major = producer.get_int("transB", 0) == 0;
    out_channels = column_major ? w->dim(1) : w->dim(0);
    inner = column_major ? w->dim(0) : w->dim(1);
  }
  auto affine = bn_affine(g, bn, out_channels);
  if (!affine) return false;
  const Tensor* b = producer.has_input(2) ? g.initializer(producer.inputs[2]) : nullptr;
  if (producer.has_input(2) && (!b || b->numel() != out_channels || b->dtype() != DType::kFloat32)) return false;

  Tensor w2 = w->clone();
  auto wd = w2.f32();
  for (std::int64_t c = 0; c < out_channels; ++c) {
    for (std::int64_t k = 0; k < inner; ++k) {
      const std::int64_t idx = column_major ? k * out_channels + c : c * inner + k;
      wd[idx] = static_cast<float>(wd[idx] * affine->scale[c]);
    }
  }
  Tensor b2(DType::kFloat32, {out_channels});
  for (std::int64_t c = 0; c < out_channels; ++c) {
    const double bias = b ? b->f32()[c] : 0.0;
    b2.f32()[c] = static_cast<float>(bias * affine->scale[c] + affine->shift[c]);
  }
  const std::string wname = fresh_name(g, producer.inputs[1] + "_bnfolded");
  g.initializers[wname] = std::move(w2);
  const std::string bname = fresh_name(g, producer.name + "_bias_bnfolded");
  g.initializers[bname] = std::move(b2);
  producer.inputs[1] = wname;
  if (producer.inputs.size() < 3) producer.inputs.resize(3);
  producer.inputs[2] = bname;
  producer.outputs[0] = bn.outputs[0];
  return true;
}

}  // namespace

int fold_batchnorm(Graph& g) {
  int folded = 0;
  for (std::size_t i = 0; i < g.nodes.size(); ++i) {
    Node& bn = g.nodes[i];
    if (bn.op_type != "BatchNormalization" || bn.inputs.empty()) continue;
    Node* producer = nullptr;
    for (Node& n : g.nodes) {
      if (!n.outputs.empty() && n.outputs[0] == bn.inputs[0]) producer = &n;
    }
    if (!producer || (producer->op_type != "Conv" && producer->op_type != "Gemm")) continue;
    if (!single_consumer(g, bn.inputs[0])) continue;
    if (fold_into(g, *producer, bn)) {
      g.nodes.erase(g.nodes.begin() + static_cast<std::ptrdiff_t>(i));
      --i;
      ++folded;
    }
  }
  // Drop initializers no node reads any more (the unfolded weights and BN parameters).
  std::set<std::string> used;
  for (const Node& n : g.nodes) used.insert(n.inputs.begin(), n.inputs.end());
  for (auto it = g.initializers.begin(); it != g.initializers.end();) {
    it = used.count(it->first) ? std::next(it) : g.initializers.erase(it);
  }
  return folded;
}

}  // namespace aciq::graph
