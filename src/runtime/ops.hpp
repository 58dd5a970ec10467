// Operator objects: shape inference and execution of one graph node on concrete shapes.
#pragma once

#include <memory>
#include <optional>
#include <vector>

#include "aciq/core.hpp"
#include "aciq/graph.hpp"
#include "aciq/runtime.hpp"
#include "kernels/activation.hpp"
#include "kernels/fast/dnnl_kernels.hpp"

namespace aciq::runtime {

struct ValueMeta {
  DType dtype = DType::kFloat32;
  Shape shape;
  const Tensor* value = nullptr;  // known at plan time (initializer or folded constant)
};

using kernels::Activation;
using DnnlEnv = kernels::fast::DnnlEngine;

class Op {
 public:
  Op(const graph::Node& node, std::int64_t opset) : node_(node), opset_(opset) {}
  virtual ~Op() = default;
  Op(const Op&) = delete;
  Op& operator=(const Op&) = delete;

  // Output dtypes and shapes from the inputs' (values are available where known).
  virtual std::vector<ValueMeta> infer(const std::vector<ValueMeta>& in) = 0;
  // Called once per plan after infer with concrete shapes: build primitives, pack weights.
  virtual void prepare(const std::vector<ValueMeta>& in, const std::vector<ValueMeta>& out, DnnlEnv* env) {}
  // Writes outputs into preallocated tensors of the inferred shapes.
  virtual void run(Context& ctx, const std::vector<const Tensor*>& in, const std::vector<Tensor*>& out) = 0;
  // Asks the op to apply `act` to its output; false if it cannot (then the executor runs it separately).
  virtual bool fuse_activation(const Activation& act) { return false; }

  [[nodiscard]] const graph::Node& node() const { return node_; }

 protected:
  [[noreturn]] void error(const std::string& what) const;
  const graph::Node& node_;
  std::int64_t opset_;
};

std::unique_ptr<Op> make_op(const graph::Node& node, std::int64_t opset, Backend backend);
// The activation a Relu/Clip/LeakyRelu node computes, if its parameters are constant.
std::optional<Activation> activation_of(const graph::Node& node, const std::vector<ValueMeta>& in);

}  // namespace aciq::runtime
