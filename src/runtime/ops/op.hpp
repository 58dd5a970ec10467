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
  // Asks the op to add the value already held by its output buffer to its result, before any fused
  // activation (oneDNN's sum post-op). On true the executor gives the op the summand's buffer as
  // its output and runs no separate Add; false if the op cannot.
  virtual bool fuse_sum() { return false; }
  // Asks the op to read input `i` as the 8-bit values a per-tensor DequantizeLinear (inputs `dq_in`:
  // x, scale, zero point, scale and zero point known) turns into that input, dequantizing them itself
  // with the same arithmetic. On true the executor feeds it the 8-bit tensor and drops the
  // DequantizeLinear step.
  virtual bool fuse_dequantize_input(std::size_t i, const std::vector<ValueMeta>& dq_in) { return false; }
  // Asks the op to quantize its float output as a per-tensor QuantizeLinear (inputs `q_in`, output type
  // `type`) would, in the same pass; on true the op writes the 8-bit tensor and the step is dropped.
  virtual bool fuse_quantize_output(const std::vector<ValueMeta>& q_in, DType type) { return false; }

  // How the op handles oneDNN's channel-blocked layout (nChw8c / nChw16c) on the fast path.
  enum class LayoutRule : std::uint8_t {
    kPlainOnly,  // every input and output is plain row-major
    kSame,       // layout-agnostic elementwise work: its 4-D inputs and outputs share one layout
    kFree,       // reads and writes either layout independently (Conv, GlobalAveragePool)
  };
  // Called after infer(); `in`/`out` are the inferred metas.
  virtual LayoutRule layout_rule(const std::vector<ValueMeta>& in, const std::vector<ValueMeta>& out) const {
    return LayoutRule::kPlainOnly;
  }
  // Channels-last plans (docs/layouts.md): where an op's fast kernel wants NHWC activations (oneDNN's int8
  // convolution), the whole plan uses channels-last instead of channel blocks, and then only ops that
  // declare they handle it keep a kSame/kFree rule; the others are treated as kPlainOnly.
  [[nodiscard]] virtual bool prefers_channels_last() const { return false; }
  [[nodiscard]] virtual bool handles_channels_last() const { return false; }
  // Tells the op which of its inputs/outputs are blocked (before prepare()); block = channels per block,
  // or kernels::fast::kChannelsLast for NHWC.
  void set_layouts(std::vector<bool> in_blocked, std::vector<bool> out_blocked, int block) {
    in_blocked_ = std::move(in_blocked);
    out_blocked_ = std::move(out_blocked);
    block_ = block;
  }

  [[nodiscard]] const graph::Node& node() const { return node_; }
  // What run() executes after prepare(): "reference" for the plain kernel, else the fast kernel's name
  // (`aciq bench` lists the reference steps so a slow fallback cannot hide).
  [[nodiscard]] virtual std::string kernel() const { return "reference"; }

 protected:
  [[noreturn]] void error(const std::string& what) const;
  [[nodiscard]] bool in_blocked(std::size_t i) const { return i < in_blocked_.size() && in_blocked_[i]; }
  [[nodiscard]] bool out_blocked(std::size_t i) const { return i < out_blocked_.size() && out_blocked_[i]; }

  const graph::Node& node_;
  std::int64_t opset_;
  std::vector<bool> in_blocked_, out_blocked_;
  int block_ = 8;
};

std::unique_ptr<Op> make_op(const graph::Node& node, std::int64_t opset, Backend backend);
// The activation a Relu/Clip/LeakyRelu node computes, if its parameters are constant.
std::optional<Activation> activation_of(const graph::Node& node, const std::vector<ValueMeta>& in);

}  // namespace aciq::runtime
