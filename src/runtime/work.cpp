// Multiply-accumulates of a planned graph, from the shapes the executor infers (for GFLOP/s figures).
#include <string>

#include "aciq/runtime.hpp"

namespace aciq::runtime {

namespace {

std::int64_t numel_of(const std::map<std::string, Shape>& shapes, const std::string& name) {
  const auto it = shapes.find(name);
  return it == shapes.end() ? 0 : shape_numel(it->second);
}

const Shape* shape_of(const std::map<std::string, Shape>& shapes, const graph::Node& n, std::size_t input) {
  if (!n.has_input(input)) return nullptr;
  const auto it = shapes.find(n.inputs[input]);
  return it == shapes.end() ? nullptr : &it->second;
}

}  // namespace

std::int64_t multiply_adds(const graph::Graph& g, const std::map<std::string, Shape>& shapes) {
  std::int64_t total = 0;
  for (const graph::Node& n : g.nodes) {
    const std::string& t = n.op_type;
    if (n.outputs.empty()) continue;
    const std::int64_t out = numel_of(shapes, n.outputs[0]);
    if (t == "Conv" || t == "ConvInteger" || t == "QLinearConv") {
      // Every output element sums C/group x kernel taps: W is [OC, C/group, k...].
      const Shape* w = shape_of(shapes, n, t == "QLinearConv" ? 3 : 1);
      if (!w || w->size() < 2) continue;
      std::int64_t taps = 1;
      for (std::size_t d = 1; d < w->size(); ++d) taps *= (*w)[d];
      total += out * taps;
    } else if (t == "ConvTranspose") {
      // Every input element scatters into OC/group x kernel taps: W is [C, OC/group, k...].
      const Shape* w = shape_of(shapes, n, 1);
      if (!w || w->size() < 2) continue;
      std::int64_t taps = 1;
      for (std::size_t d = 1; d < w->size(); ++d) taps *= (*w)[d];
      total += numel_of(shapes, n.inputs[0]) * taps;
    } else if (t == "Gemm" || t == "MatMul" || t == "MatMulInteger" || t == "QLinearMatMul") {
      const Shape* a = shape_of(shapes, n, 0);
      if (!a || a->empty()) continue;
      const bool trans_a = t == "Gemm" && n.get_int("transA", 0) != 0;
      const std::int64_t k = trans_a && a->size() == 2 ? (*a)[0] : a->back();
      total += out * k;
    }
  }
  return total;
}

}  // namespace aciq::runtime
