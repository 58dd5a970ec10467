// Elementwise activations (Relu, Clip, Sigmoid, ...) and arithmetic (Add, Sub, Mul, Div) with broadcasting.
#include "kernels/fast/elementwise.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <optional>

#include "kernels/fast/dnnl_kernels.hpp"
#include "kernels/fast/quantize_simd.hpp"
#include "kernels/reference/quantize.hpp"
#include "kernels/reference/reference.hpp"
#include "runtime/ops/common.hpp"
#include "runtime/ops/registry.hpp"

namespace aciq::runtime {

namespace {

namespace ref = kernels::ref;
namespace fast = kernels::fast;

class UnaryOp : public Op {
 public:
  UnaryOp(const graph::Node& n, std::int64_t opset, Backend b) : Op(n, opset), backend_(b) {}
  LayoutRule layout_rule(const std::vector<ValueMeta>&, const std::vector<ValueMeta>&) const override {
    return LayoutRule::kSame;  // elementwise: any memory order works
  }
  bool handles_channels_last() const override { return true; }
  std::vector<ValueMeta> infer(const std::vector<ValueMeta>& in) override {
    if (node_.op_type == "Clip" && !in.empty() && is_clip_int(in[0].dtype)) return infer_int_clip(in);
    require_f32(*this, in, 1);
    const std::string& t = node_.op_type;
    threaded_ = backend_ == Backend::kFast && (t == "Relu" || t == "Clip" || t == "LeakyRelu");
    return {ValueMeta{DType::kFloat32, in.at(0).shape, nullptr}};
  }
  std::string kernel() const override {
    return threaded_ ? "threaded activation" : backend_ == Backend::kFast ? "threaded float" : "reference";
  }
  void run(Context& ctx, const std::vector<const Tensor*>& in, const std::vector<Tensor*>& out) override {
    const std::string& t = node_.op_type;
    if (in[0]->dtype() != DType::kFloat32) {
      run_int_clip(in, out);
      return;
    }
    if (backend_ == Backend::kFast && (t == "Relu" || t == "Clip" || t == "LeakyRelu")) {
      // Activations the producer could not absorb: one threaded pass (same bits as ref::unary).
      Activation act;
      if (t == "Relu") {
        act.kind = Activation::Kind::kRelu;
      } else if (t == "LeakyRelu") {
        act.kind = Activation::Kind::kLeakyRelu;
        act.alpha = node_.get_float("alpha", 0.01f);
      } else {
        act.kind = Activation::Kind::kClip;
        std::tie(act.lo, act.hi) =
            clip_bounds(node_, opset_, in.size() > 1 ? in[1] : nullptr, in.size() > 2 ? in[2] : nullptr);
      }
      kernels::apply_activation(act, in[0]->data<float>(), out[0]->data<float>(), in[0]->numel(), ctx);
      return;
    }
    ref::UnaryParams p;
    ref::UnaryOp op = ref::UnaryOp::kRelu;
    if (t == "Relu") {
      op = ref::UnaryOp::kRelu;
    } else if (t == "Sigmoid") {
      op = ref::UnaryOp::kSigmoid;
    } else if (t == "HardSigmoid") {
      op = ref::UnaryOp::kHardSigmoid;
      p.alpha = node_.get_float("alpha", 0.2f);
      p.beta = node_.get_float("beta", 0.5f);
    } else if (t == "HardSwish") {
      op = ref::UnaryOp::kHardSwish;
    } else if (t == "LeakyRelu") {
      op = ref::UnaryOp::kLeakyRelu;
      p.alpha = node_.get_float("alpha", 0.01f);
    } else {  // Clip
      op = ref::UnaryOp::kClip;
      auto bounds =
          clip_bounds(node_, opset_, in.size() > 1 ? in[1] : nullptr, in.size() > 2 ? in[2] : nullptr);
      p.lo = bounds.first;
      p.hi = bounds.second;
    }
    if (backend_ == Backend::kFast) {
      fast::unary(op, p, in[0]->data<float>(), out[0]->data<float>(), in[0]->numel(), *ctx.pool);
      return;
    }
    ref::unary(op, p, in[0]->data<float>(), out[0]->data<float>(), in[0]->numel());
  }

  static std::pair<float, float> clip_bounds(const graph::Node& n, std::int64_t opset, const Tensor* lo,
                                             const Tensor* hi) {
    const float inf = std::numeric_limits<float>::infinity();
    if (opset < 11) return {n.get_float("min", -inf), n.get_float("max", inf)};
    auto scalar = [](const Tensor* t, float fallback) {
      return t && t->numel() > 0 ? t->to_f32().data<float>()[0] : fallback;
    };
    return {scalar(n.has_input(1) ? lo : nullptr, -inf), scalar(n.has_input(2) ? hi : nullptr, inf)};
  }

  static bool is_clip_int(DType d) {
    return d == DType::kUInt8 || d == DType::kInt8 || d == DType::kInt32 || d == DType::kInt64;
  }

 private:
  // Integer Clip (opset 12+): min/max are optional scalar inputs of the input's type; the same kernel
  // on both backends (integer values are never blocked, never fused into a float producer).
  std::vector<ValueMeta> infer_int_clip(const std::vector<ValueMeta>& in) {
    const DType d = in[0].dtype;
    if (opset_ < 12) {
      error("Clip on " + std::string(dtype_name(d)) + " needs opset 12 or later, model has " +
            std::to_string(opset_));
    }
    for (std::size_t i = 1; i < std::min<std::size_t>(in.size(), 3); ++i) {
      if (!node_.has_input(i)) continue;
      if (in[i].dtype != d) {
        error(std::string(i == 1 ? "min" : "max") + " is " + std::string(dtype_name(in[i].dtype)) +
              ", input is " + std::string(dtype_name(d)));
      }
      if (shape_numel(in[i].shape) != 1) error(std::string(i == 1 ? "min" : "max") + " must be a scalar");
    }
    return {ValueMeta{d, in[0].shape, nullptr}};
  }

  template <typename T>
  void clip_as(const std::vector<const Tensor*>& in, Tensor& out) {
    auto bound = [&](std::size_t i, T fallback) {
      return node_.has_input(i) && in.size() > i && in[i] ? in[i]->data<T>()[0] : fallback;
    };
    ref::clip(in[0]->data<T>(), bound(1, std::numeric_limits<T>::lowest()),
              bound(2, std::numeric_limits<T>::max()), out.data<T>(), in[0]->numel());
  }

  void run_int_clip(const std::vector<const Tensor*>& in, const std::vector<Tensor*>& out) {
    switch (in[0]->dtype()) {
      case DType::kUInt8: clip_as<std::uint8_t>(in, *out[0]); break;
      case DType::kInt8: clip_as<std::int8_t>(in, *out[0]); break;
      case DType::kInt32: clip_as<std::int32_t>(in, *out[0]); break;
      case DType::kInt64: clip_as<std::int64_t>(in, *out[0]); break;
      default: error("Clip does not support " + std::string(dtype_name(in[0]->dtype())));
    }
  }

  bool threaded_ = false;
  Backend backend_;
};

void binary_same_shape(ref::BinaryOp op, const float* __restrict a, const float* __restrict b, float* y,
                       std::int64_t lo, std::int64_t hi) {
  switch (op) {
    case ref::BinaryOp::kAdd:
      for (std::int64_t i = lo; i < hi; ++i) y[i] = a[i] + b[i];
      break;
    case ref::BinaryOp::kSub:
      for (std::int64_t i = lo; i < hi; ++i) y[i] = a[i] - b[i];
      break;
    case ref::BinaryOp::kMul:
      for (std::int64_t i = lo; i < hi; ++i) y[i] = a[i] * b[i];
      break;
    case ref::BinaryOp::kDiv:
      for (std::int64_t i = lo; i < hi; ++i) y[i] = a[i] / b[i];
      break;
  }
}

class BinaryOp : public Op {
 public:
  BinaryOp(const graph::Node& n, std::int64_t opset, Backend b) : Op(n, opset), backend_(b) {}
  std::vector<ValueMeta> infer(const std::vector<ValueMeta>& in) override {
    if (in.size() != 2) error("expects 2 inputs");
    if (in[0].dtype != in[1].dtype) error("operands have different dtypes");
    same_shape_ = backend_ == Backend::kFast && in[0].dtype == DType::kFloat32 && in[0].shape == in[1].shape;
    float_fast_ = backend_ == Backend::kFast && in[0].dtype == DType::kFloat32;
    return {ValueMeta{in[0].dtype, ref::broadcast_shapes(in[0].shape, in[1].shape), nullptr}};
  }
  std::string kernel() const override {
    return same_shape_ ? "threaded same-shape" : float_fast_ ? "threaded broadcast" : "reference";
  }
  LayoutRule float_layout_rule(const std::vector<ValueMeta>& in, const std::vector<ValueMeta>&) const {
    const bool same =
        backend_ == Backend::kFast && in[0].dtype == DType::kFloat32 && in[0].shape == in[1].shape;
    return same ? LayoutRule::kSame : LayoutRule::kPlainOnly;
  }
  bool handles_channels_last() const override { return true; }  // same-shape only (the rule above)
  bool fuse_activation(const Activation& act) override {
    if (backend_ != Backend::kFast || act_.kind != Activation::Kind::kNone) return false;
    act_ = act;
    return true;
  }
  // The int8 engine's residual DQ(a) + DQ(b) -> [Relu] -> Q (docs/int8.md, "Fused residual additions"):
  // only same-shape float Add, per-tensor parameters known at plan time.
  bool fuse_dequantize_input(std::size_t i, const std::vector<ValueMeta>& dq_in) override {
    if (!same_shape_ || node_.op_type != "Add" || i > 1) return false;
    const auto q = per_tensor_quant(dq_in);
    if (!q || (q->dtype != DType::kUInt8 && q->dtype != DType::kInt8)) return false;  // not int32 (biases)
    dq_[i] = *q;
    return true;
  }
  bool fuse_quantize_output(const std::vector<ValueMeta>& q_in, DType type) override {
    if (!same_shape_ || node_.op_type != "Add" || q_.dtype != DType::kFloat32) return false;
    const auto q = per_tensor_quant(q_in);
    if (!q || (type != DType::kUInt8 && type != DType::kInt8) ||
        (q->dtype != DType::kFloat32 && q->dtype != type))
      return false;
    q_ = *q;
    q_.dtype = type;
    return true;
  }
  void run(Context& ctx, const std::vector<const Tensor*>& in, const std::vector<Tensor*>& out) override {
    const auto op = kind();
    if (dq_[0].dtype != DType::kFloat32 || dq_[1].dtype != DType::kFloat32 || q_.dtype != DType::kFloat32) {
      run_quantized(ctx, in, out);
      return;
    }
    if (backend_ == Backend::kFast && in[0]->dtype() == DType::kFloat32 && in[0]->shape() == in[1]->shape()) {
      // Same-shape float operands (residual adds): one threaded pass with the fused activation, in
      // chunks small enough that the activation reads what the arithmetic just wrote from cache.
      const float* a = in[0]->data<float>();
      const float* b = in[1]->data<float>();
      float* y = out[0]->data<float>();
      const std::int64_t n = out[0]->numel();
      constexpr std::int64_t kChunk = 1 << 14;
      ctx.pool->parallel_for((n + kChunk - 1) / kChunk, [&](std::int64_t cb, std::int64_t ce) {
        for (std::int64_t lo = cb * kChunk; lo < std::min(n, ce * kChunk); lo += kChunk) {
          const std::int64_t hi = std::min(n, lo + kChunk);
          binary_same_shape(op, a, b, y, lo, hi);
          kernels::apply_activation_ref(act_, y + lo, hi - lo);
        }
      });
      return;
    }
    if (backend_ == Backend::kFast && in[0]->dtype() == DType::kFloat32) {
      // Broadcasting float operands (normalizations written out as Sub/Div/Mul, channel scales):
      // merged dims, vectorized rows, the same bits as the reference.
      fast::binary_broadcast(op, *in[0], *in[1], *out[0], *ctx.pool);
      kernels::apply_activation(act_, out[0]->data<float>(), out[0]->numel(), ctx);
      return;
    }
    copy_into(*out[0], ref::binary(op, *in[0], *in[1]), *this);
    kernels::apply_activation_ref(act_, out[0]->data<float>(), out[0]->numel());
  }
  LayoutRule layout_rule(const std::vector<ValueMeta>& in, const std::vector<ValueMeta>& out) const override {
    if (dq_[0].dtype != DType::kFloat32 || dq_[1].dtype != DType::kFloat32 || q_.dtype != DType::kFloat32)
      return LayoutRule::kSame;  // fused: same shapes, elementwise
    return float_layout_rule(in, out);
  }

 private:
  using Quant = PerTensorQuant;
  // Chunk by chunk: DequantizeLinear's kernel on each 8-bit operand, the float op, the activation,
  // QuantizeLinear's kernel on the result: the unfused steps' arithmetic on every element, so the same
  // bytes, without the float tensors between them.
  void run_quantized(Context& ctx, const std::vector<const Tensor*>& in, const std::vector<Tensor*>& out) {
    const auto op = kind();
    const std::int64_t n = out[0]->numel();
    constexpr std::int64_t kChunk = 1 << 12;
    // The residual of a quantized ResNet: both operands and the result of one 8-bit type, no activation
    // or a Relu. One register-resident kernel with the same arithmetic (fast::add_quantized_simd).
    const bool one_type = dq_[0].dtype == dq_[1].dtype && dq_[0].dtype == q_.dtype;
    const bool plain_act = act_.kind == Activation::Kind::kNone || act_.kind == Activation::Kind::kRelu;
    if (op == ref::BinaryOp::kAdd && one_type && plain_act) {
      const bool relu = act_.kind == Activation::Kind::kRelu;
      ctx.pool->parallel_for((n + kChunk - 1) / kChunk, [&](std::int64_t cb, std::int64_t ce) {
        const std::int64_t lo = cb * kChunk, len = std::min(n, ce * kChunk) - lo;
        if (q_.dtype == DType::kUInt8) {
          using T = std::uint8_t;
          fast::add_quantized_simd(in[0]->data<T>() + lo, dq_[0].scale, static_cast<T>(dq_[0].zero),
                                   in[1]->data<T>() + lo, dq_[1].scale, static_cast<T>(dq_[1].zero), relu,
                                   q_.scale, static_cast<T>(q_.zero), out[0]->data<T>() + lo, len);
        } else {
          using T = std::int8_t;
          fast::add_quantized_simd(in[0]->data<T>() + lo, dq_[0].scale, static_cast<T>(dq_[0].zero),
                                   in[1]->data<T>() + lo, dq_[1].scale, static_cast<T>(dq_[1].zero), relu,
                                   q_.scale, static_cast<T>(q_.zero), out[0]->data<T>() + lo, len);
        }
      });
      return;
    }
    ctx.pool->parallel_for((n + kChunk - 1) / kChunk, [&](std::int64_t cb, std::int64_t ce) {
      std::vector<float> buf(3 * kChunk);
      float* fa = buf.data();
      float* fb = fa + kChunk;
      float* fy = fb + kChunk;
      for (std::int64_t lo = cb * kChunk; lo < std::min(n, ce * kChunk); lo += kChunk) {
        const std::int64_t len = std::min(n, lo + kChunk) - lo;
        const float* a = operand(*in[0], dq_[0], lo, len, fa);
        const float* b = operand(*in[1], dq_[1], lo, len, fb);
        float* y = q_.dtype == DType::kFloat32 ? out[0]->data<float>() + lo : fy;
        binary_same_shape(op, a, b, y, 0, len);
        kernels::apply_activation_ref(act_, y, len);
        if (q_.dtype == DType::kUInt8) {
          fast::quantize_linear_simd(y, q_.scale, static_cast<std::uint8_t>(q_.zero),
                                     out[0]->data<std::uint8_t>() + lo, len);
        } else if (q_.dtype == DType::kInt8) {
          fast::quantize_linear_simd(y, q_.scale, static_cast<std::int8_t>(q_.zero),
                                     out[0]->data<std::int8_t>() + lo, len);
        }
      }
    });
  }
  static const float* operand(const Tensor& x, const Quant& q, std::int64_t lo, std::int64_t len,
                              float* buf) {
    if (q.dtype == DType::kUInt8) {
      fast::dequantize_linear_simd(x.data<std::uint8_t>() + lo, q.scale, static_cast<std::uint8_t>(q.zero),
                                   buf, len);
      return buf;
    }
    if (q.dtype == DType::kInt8) {
      fast::dequantize_linear_simd(x.data<std::int8_t>() + lo, q.scale, static_cast<std::int8_t>(q.zero), buf,
                                   len);
      return buf;
    }
    return x.data<float>() + lo;
  }

  ref::BinaryOp kind() const {
    const std::string& t = node_.op_type;
    if (t == "Add") return ref::BinaryOp::kAdd;
    if (t == "Sub") return ref::BinaryOp::kSub;
    if (t == "Mul") return ref::BinaryOp::kMul;
    return ref::BinaryOp::kDiv;
  }
  bool same_shape_ = false;
  bool float_fast_ = false;
  Backend backend_;
  Activation act_;
  Quant dq_[2], q_;
};

}  // namespace

std::vector<OpEntry> elementwise_ops() {
  return {
      op_entry<UnaryOp>("Relu", "float32", "threaded pass or fused into the producer"),
      op_entry<UnaryOp>("LeakyRelu", "float32", "threaded pass or fused into the producer"),
      op_entry<UnaryOp>("Clip", "float32,int64,int32,uint8,int8", "threaded pass or fused into the producer"),
      op_entry<UnaryOp>("Sigmoid", "float32", ""),
      op_entry<UnaryOp>("HardSigmoid", "float32", ""),
      op_entry<UnaryOp>("HardSwish", "float32", ""),
      op_entry<BinaryOp>("Add", "float32,int64,int32", "threaded same-shape pass; fused into Conv as a sum"),
      op_entry<BinaryOp>("Sub", "float32,int64,int32", "threaded same-shape pass"),
      op_entry<BinaryOp>("Mul", "float32,int64,int32", "threaded same-shape pass"),
      op_entry<BinaryOp>("Div", "float32,int64,int32", "threaded same-shape pass"),
  };
}

std::optional<Activation> activation_of(const graph::Node& node, const std::vector<ValueMeta>& in) {
  Activation a;
  if (node.op_type == "Relu") {
    a.kind = Activation::Kind::kRelu;
    return a;
  }
  if (node.op_type == "LeakyRelu") {
    a.kind = Activation::Kind::kLeakyRelu;
    a.alpha = node.get_float("alpha", 0.01f);
    return a;
  }
  if (node.op_type == "Clip") {
    if (in.empty() || in[0].dtype != DType::kFloat32) return std::nullopt;  // integer Clip: never fused
    for (std::size_t i = 1; i < in.size(); ++i) {
      if (node.has_input(i) && !in[i].value) return std::nullopt;
    }
    // Opset is only needed to pick attributes vs inputs: attributes exist only before opset 11.
    const std::int64_t opset = node.has("min") || node.has("max") ? 6 : 11;
    auto [lo, hi] = UnaryOp::clip_bounds(node, opset, in.size() > 1 ? in[1].value : nullptr,
                                         in.size() > 2 ? in[2].value : nullptr);
    a.kind = Activation::Kind::kClip;
    a.lo = lo;
    a.hi = hi;
    return a;
  }
  return std::nullopt;
}

}  // namespace aciq::runtime
