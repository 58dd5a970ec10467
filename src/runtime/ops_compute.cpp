// Arithmetic operators (Conv, pooling, Gemm, MatMul, elementwise, Softmax): reference and fast variants.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "kernels/fast/dnnl_kernels.hpp"
#include "kernels/reference/quantize.hpp"
#include "kernels/reference/reference.hpp"
#include "runtime/ops_common.hpp"

namespace aciq::runtime {

namespace {

namespace ref = kernels::ref;
namespace fast = kernels::fast;

// Spatial geometry of a Conv/Pool node on a 1-D (N,C,W) or 2-D (N,C,H,W) input.
struct Geometry {
  ref::Window2d win;
  std::int64_t n = 0, c = 0, h = 1, w = 1, oh = 1, ow = 1;
  bool ceil_overhang = false;  // ceil_mode produced windows that start inside but end past the padding
};

Geometry window_geometry(const Op& op, const Shape& in, std::vector<std::int64_t> kernel, bool ceil_mode) {
  const auto& node = op.node();
  if (in.size() != 3 && in.size() != 4) {
    op_error(op, "only 1-D and 2-D spatial inputs are supported, got shape " + shape_str(in));
  }
  const std::size_t sd = in.size() - 2;
  if (kernel.size() != sd)
    op_error(op, "kernel_shape has " + std::to_string(kernel.size()) + " dims for input " + shape_str(in));
  auto strides = node.get_ints("strides", std::vector<std::int64_t>(sd, 1));
  auto dil = node.get_ints("dilations", std::vector<std::int64_t>(sd, 1));
  auto pads = node.get_ints("pads", std::vector<std::int64_t>(2 * sd, 0));
  if (strides.size() != sd || dil.size() != sd || pads.size() != 2 * sd)
    op_error(op, "strides/dilations/pads do not match the input rank");
  const std::string auto_pad = node.get_string("auto_pad", "NOTSET");
  std::vector<std::int64_t> spatial(in.begin() + 2, in.end()), out(sd);
  bool overhang = false;
  for (std::size_t i = 0; i < sd; ++i) {
    if (kernel[i] <= 0 || strides[i] <= 0 || dil[i] <= 0)
      op_error(op, "kernel, strides and dilations must be positive");
    const std::int64_t ext = (kernel[i] - 1) * dil[i] + 1;
    if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
      out[i] = (spatial[i] + strides[i] - 1) / strides[i];
      const std::int64_t total = std::max<std::int64_t>(0, (out[i] - 1) * strides[i] + ext - spatial[i]);
      const std::int64_t small = total / 2;
      pads[i] = auto_pad == "SAME_UPPER" ? small : total - small;
      pads[i + sd] = total - pads[i];
    } else if (auto_pad == "VALID") {
      pads[i] = pads[i + sd] = 0;
      out[i] = (spatial[i] - ext) / strides[i] + 1;
    } else if (auto_pad == "NOTSET") {
      const std::int64_t span = spatial[i] + pads[i] + pads[i + sd] - ext;
      if (span < 0) op_error(op, "kernel is larger than the padded input " + shape_str(in));
      out[i] = (ceil_mode ? (span + strides[i] - 1) / strides[i] : span / strides[i]) + 1;
      // A window must start inside the input or its left padding (PyTorch/ONNX ceil rule).
      if (ceil_mode && (out[i] - 1) * strides[i] >= spatial[i] + pads[i]) --out[i];
      if ((out[i] - 1) * strides[i] + ext > spatial[i] + pads[i] + pads[i + sd]) overhang = true;
    } else {
      op_error(op, "unknown auto_pad '" + auto_pad + "'");
    }
    if (out[i] <= 0) op_error(op, "output would be empty for input " + shape_str(in));
  }
  Geometry g;
  g.n = in[0];
  g.c = in[1];
  g.ceil_overhang = overhang;
  if (sd == 2) {
    g.h = spatial[0], g.w = spatial[1], g.oh = out[0], g.ow = out[1];
    g.win = {kernel[0], kernel[1], strides[0], strides[1], dil[0],
             dil[1],    pads[0],   pads[1],    pads[2],    pads[3]};
  } else {
    g.h = 1, g.w = spatial[0], g.oh = 1, g.ow = out[0];
    g.win = {1, kernel[0], 1, strides[0], 1, dil[0], 0, pads[0], 0, pads[1]};
  }
  return g;
}

Shape out_shape_of(const Geometry& g, std::int64_t channels, std::size_t rank) {
  return rank == 4 ? Shape{g.n, channels, g.oh, g.ow} : Shape{g.n, channels, g.ow};
}

void require_f32(const Op& op, const std::vector<ValueMeta>& in, std::size_t count) {
  for (std::size_t i = 0; i < std::min(count, in.size()); ++i) {
    if (in[i].dtype != DType::kFloat32) op_error(op, "input " + std::to_string(i) + " must be float32");
  }
}

class ConvOp : public Op {
 public:
  ConvOp(const graph::Node& n, std::int64_t opset, Backend b) : Op(n, opset), backend_(b) {}

  std::vector<ValueMeta> infer(const std::vector<ValueMeta>& in) override {
    if (in.size() < 2) error("Conv needs X and W");
    require_f32(*this, in, 3);
    const Shape& x = in[0].shape;
    const Shape& w = in[1].shape;
    if (x.size() != 3 && x.size() != 4)
      error("only 1-D and 2-D convolutions are supported, input " + shape_str(x));
    if (w.size() != x.size()) error("weight shape " + shape_str(w) + " does not match input " + shape_str(x));
    const std::int64_t group = node_.get_int("group", 1);
    if (group <= 0 || x[1] % group != 0 || w[0] % group != 0 || w[1] * group != x[1]) {
      error("input " + shape_str(x) + " does not fit weight " + shape_str(w) + " with group " +
            std::to_string(group));
    }
    if (in.size() > 2 && node_.has_input(2) && (in[2].shape.size() != 1 || in[2].shape[0] != w[0])) {
      error("bias shape " + shape_str(in[2].shape) + " does not match " + std::to_string(w[0]) +
            " output channels");
    }
    const std::vector<std::int64_t> kernel = node_.get_ints("kernel_shape", Shape(w.begin() + 2, w.end()));
    if (kernel != Shape(w.begin() + 2, w.end())) {
      error("kernel_shape " + shape_str(kernel) + " does not match weight " + shape_str(w));
    }
    geo_ = window_geometry(*this, x, kernel, false);
    shape_ = {geo_.n, geo_.c, geo_.h, geo_.w, w[0], geo_.oh, geo_.ow, group};
    dnnl_ready_ = can_use_dnnl(in);
    return {ValueMeta{DType::kFloat32, out_shape_of(geo_, w[0], x.size()), nullptr}};
  }

  LayoutRule layout_rule(const std::vector<ValueMeta>& in, const std::vector<ValueMeta>&) const override {
    return can_use_dnnl(in) ? LayoutRule::kFree : LayoutRule::kPlainOnly;
  }

  void prepare(const std::vector<ValueMeta>& in, const std::vector<ValueMeta>&, DnnlEnv* env) override {
    if (!env || !can_use_dnnl(in)) return;
    conv_ = std::make_unique<fast::Conv2d>(*env, shape_, geo_.win, in[1].value->data<float>(),
                                           node_.has_input(2) ? in[2].value->data<float>() : nullptr, act_,
                                           in_blocked(0) ? block_ : 0, out_blocked(0) ? block_ : 0, sum_);
  }

  bool fuse_activation(const Activation& act) override {
    if (act_.kind != Activation::Kind::kNone) return false;
    act_ = act;
    return true;
  }

  // Only with a oneDNN primitive (constant weights), and only before an activation is fused:
  // act(conv) + s is not act(conv + s).
  bool fuse_sum() override {
    if (!dnnl_ready_ || sum_ || act_.kind != Activation::Kind::kNone) return false;
    sum_ = true;
    return true;
  }

  void run(Context&, const std::vector<const Tensor*>& in, const std::vector<Tensor*>& out) override {
    if (conv_) {
      conv_->run(in[0]->data<float>(), out[0]->data<float>());
      return;
    }
    const float* bias = node_.has_input(2) ? in[2]->data<float>() : nullptr;
    ref::conv2d(shape_, geo_.win, in[0]->data<float>(), in[1]->data<float>(), bias, out[0]->data<float>());
    kernels::apply_activation_ref(act_, out[0]->data<float>(), out[0]->numel());
  }

 private:
  // oneDNN primitives are built once per plan for constant weights (the case of every real model).
  bool can_use_dnnl(const std::vector<ValueMeta>& in) const {
    return backend_ == Backend::kFast && in[1].value && (!node_.has_input(2) || in[2].value);
  }
  Backend backend_;
  Geometry geo_;
  ref::ConvShape shape_{};
  Activation act_;
  bool dnnl_ready_ = false;  // infer() saw constant weights on the fast backend: prepare() builds conv_
  bool sum_ = false;         // the output buffer holds a summand to add (fuse_sum); implies dnnl_ready_
  std::unique_ptr<fast::Conv2d> conv_;
};

class PoolOp : public Op {
 public:
  PoolOp(const graph::Node& n, std::int64_t opset, Backend b) : Op(n, opset), backend_(b) {}

  std::vector<ValueMeta> infer(const std::vector<ValueMeta>& in) override {
    require_f32(*this, in, 1);
    if (node_.outputs.size() > 1 && !node_.outputs[1].empty())
      error("the Indices output of MaxPool is not supported");
    if (!node_.has("kernel_shape")) error("kernel_shape is required");
    geo_ = window_geometry(*this, in.at(0).shape, node_.get_ints("kernel_shape"),
                           node_.get_int("ceil_mode", 0) != 0);
    return {ValueMeta{DType::kFloat32, out_shape_of(geo_, geo_.c, in[0].shape.size()), nullptr}};
  }

  LayoutRule layout_rule(const std::vector<ValueMeta>&, const std::vector<ValueMeta>&) const override {
    return dnnl_ok() ? LayoutRule::kSame : LayoutRule::kPlainOnly;
  }

  void prepare(const std::vector<ValueMeta>&, const std::vector<ValueMeta>&, DnnlEnv* env) override {
    if (!env || !dnnl_ok()) return;
    ref::Window2d win = geo_.win;
    fast::Pool2d::Kind kind = fast::Pool2d::Kind::kMax;
    if (is_avg())
      kind = include_pad() ? fast::Pool2d::Kind::kAvgIncludePad : fast::Pool2d::Kind::kAvgExcludePad;
    // oneDNN derives the output size by floor division, so widen the trailing padding for ceil_mode.
    win.pad_bottom = std::max(
        win.pad_bottom, (geo_.oh - 1) * win.stride_h + (win.kh - 1) * win.dil_h + 1 - geo_.h - win.pad_top);
    win.pad_right = std::max(
        win.pad_right, (geo_.ow - 1) * win.stride_w + (win.kw - 1) * win.dil_w + 1 - geo_.w - win.pad_left);
    pool_ =
        std::make_unique<fast::Pool2d>(*env, ref::PoolShape{geo_.n, geo_.c, geo_.h, geo_.w, geo_.oh, geo_.ow},
                                       win, kind, in_blocked(0) ? block_ : 0);
  }

  void run(Context&, const std::vector<const Tensor*>& in, const std::vector<Tensor*>& out) override {
    if (pool_) {
      pool_->run(in[0]->data<float>(), out[0]->data<float>());
      return;
    }
    const ref::PoolShape s{geo_.n, geo_.c, geo_.h, geo_.w, geo_.oh, geo_.ow};
    if (is_avg()) {
      ref::avg_pool2d(s, geo_.win, include_pad(), in[0]->data<float>(), out[0]->data<float>());
    } else {
      ref::max_pool2d(s, geo_.win, in[0]->data<float>(), out[0]->data<float>());
    }
  }

 private:
  // oneDNN would count the ceil_mode overhang as padding for count_include_pad; the reference
  // kernel handles that case.
  bool dnnl_ok() const {
    return backend_ == Backend::kFast && !(is_avg() && include_pad() && geo_.ceil_overhang);
  }
  bool is_avg() const { return node_.op_type == "AveragePool"; }
  bool include_pad() const { return node_.get_int("count_include_pad", 0) != 0; }
  Backend backend_;
  Geometry geo_;
  std::unique_ptr<fast::Pool2d> pool_;
};

class GlobalPoolOp : public Op {
 public:
  GlobalPoolOp(const graph::Node& n, std::int64_t opset, Backend b) : Op(n, opset), backend_(b) {}
  LayoutRule layout_rule(const std::vector<ValueMeta>& in, const std::vector<ValueMeta>&) const override {
    return backend_ == Backend::kFast && node_.op_type == "GlobalAveragePool" && in[0].shape.size() == 4
               ? LayoutRule::kFree
               : LayoutRule::kPlainOnly;
  }
  std::vector<ValueMeta> infer(const std::vector<ValueMeta>& in) override {
    require_f32(*this, in, 1);
    const Shape& x = in.at(0).shape;
    if (x.size() < 3) error("input must have spatial dims, got " + shape_str(x));
    Shape out = x;
    for (std::size_t i = 2; i < out.size(); ++i) out[i] = 1;
    return {ValueMeta{DType::kFloat32, out, nullptr}};
  }
  void run(Context&, const std::vector<const Tensor*>& in, const std::vector<Tensor*>& out) override {
    const Shape& x = in[0]->shape();
    const std::int64_t nc = x[0] * x[1];
    const std::int64_t hw = in[0]->numel() / std::max<std::int64_t>(nc, 1);
    if (in_blocked(0)) {
      fast::global_avg_pool_blocked(x[0], x[1], hw, block_, in[0]->data<float>(), out[0]->data<float>(),
                                    out_blocked(0));
    } else if (node_.op_type == "GlobalAveragePool") {
      ref::global_avg_pool(nc, hw, in[0]->data<float>(), out[0]->data<float>());
    } else {
      ref::global_max_pool(nc, hw, in[0]->data<float>(), out[0]->data<float>());
    }
  }

 private:
  Backend backend_;
};

class BatchNormOp : public Op {
 public:
  using Op::Op;
  std::vector<ValueMeta> infer(const std::vector<ValueMeta>& in) override {
    if (in.size() < 5) error("BatchNormalization needs 5 inputs");
    require_f32(*this, in, 5);
    if (node_.outputs.size() > 1) error("training-mode BatchNormalization outputs are not supported");
    const Shape& x = in[0].shape;
    if (x.size() < 2) error("input must be at least 2-D, got " + shape_str(x));
    for (std::size_t i = 1; i < 5; ++i) {
      if (shape_numel(in[i].shape) != x[1])
        error("parameter " + std::to_string(i) + " does not have " + std::to_string(x[1]) + " channels");
    }
    return {ValueMeta{DType::kFloat32, x, nullptr}};
  }
  void run(Context&, const std::vector<const Tensor*>& in, const std::vector<Tensor*>& out) override {
    const Shape& x = in[0]->shape();
    const std::int64_t c = x[1];
    const std::int64_t inner = in[0]->numel() / std::max<std::int64_t>(x[0] * c, 1);
    const double eps = node_.get_float("epsilon", 1e-5f);
    const float* xs = in[0]->data<float>();
    float* ys = out[0]->data<float>();
    for (std::int64_t n = 0; n < x[0]; ++n) {
      for (std::int64_t ch = 0; ch < c; ++ch) {
        const double s =
            in[1]->data<float>()[ch] / std::sqrt(static_cast<double>(in[4]->data<float>()[ch]) + eps);
        const double mean = in[3]->data<float>()[ch], beta = in[2]->data<float>()[ch];
        const std::int64_t base = (n * c + ch) * inner;
        for (std::int64_t i = 0; i < inner; ++i)
          ys[base + i] = static_cast<float>((xs[base + i] - mean) * s + beta);
      }
    }
  }
};

class UnaryOp : public Op {
 public:
  UnaryOp(const graph::Node& n, std::int64_t opset, Backend b) : Op(n, opset), backend_(b) {}
  LayoutRule layout_rule(const std::vector<ValueMeta>&, const std::vector<ValueMeta>&) const override {
    return LayoutRule::kSame;  // elementwise: any memory order works
  }
  std::vector<ValueMeta> infer(const std::vector<ValueMeta>& in) override {
    if (node_.op_type == "Clip" && !in.empty() && is_clip_int(in[0].dtype)) return infer_int_clip(in);
    require_f32(*this, in, 1);
    return {ValueMeta{DType::kFloat32, in.at(0).shape, nullptr}};
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
    return {ValueMeta{in[0].dtype, ref::broadcast_shapes(in[0].shape, in[1].shape), nullptr}};
  }
  LayoutRule layout_rule(const std::vector<ValueMeta>& in, const std::vector<ValueMeta>&) const override {
    const bool same =
        backend_ == Backend::kFast && in[0].dtype == DType::kFloat32 && in[0].shape == in[1].shape;
    return same ? LayoutRule::kSame : LayoutRule::kPlainOnly;
  }
  bool fuse_activation(const Activation& act) override {
    if (backend_ != Backend::kFast || act_.kind != Activation::Kind::kNone) return false;
    act_ = act;
    return true;
  }
  void run(Context& ctx, const std::vector<const Tensor*>& in, const std::vector<Tensor*>& out) override {
    const auto op = kind();
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
    copy_into(*out[0], ref::binary(op, *in[0], *in[1]), *this);
    kernels::apply_activation_ref(act_, out[0]->data<float>(), out[0]->numel());
  }

 private:
  ref::BinaryOp kind() const {
    const std::string& t = node_.op_type;
    if (t == "Add") return ref::BinaryOp::kAdd;
    if (t == "Sub") return ref::BinaryOp::kSub;
    if (t == "Mul") return ref::BinaryOp::kMul;
    return ref::BinaryOp::kDiv;
  }
  Backend backend_;
  Activation act_;
};

class GemmOp : public Op {
 public:
  GemmOp(const graph::Node& n, std::int64_t opset, Backend b) : Op(n, opset), backend_(b) {}
  std::vector<ValueMeta> infer(const std::vector<ValueMeta>& in) override {
    if (in.size() < 2) error("Gemm needs A and B");
    require_f32(*this, in, 3);
    const Shape& a = in[0].shape;
    const Shape& b = in[1].shape;
    if (a.size() != 2 || b.size() != 2)
      error("A " + shape_str(a) + " and B " + shape_str(b) + " must be 2-D");
    ta_ = node_.get_int("transA", 0) != 0;
    tb_ = node_.get_int("transB", 0) != 0;
    m_ = ta_ ? a[1] : a[0];
    k_ = ta_ ? a[0] : a[1];
    n_ = tb_ ? b[0] : b[1];
    if ((tb_ ? b[1] : b[0]) != k_)
      error("A " + shape_str(a) + " does not fit B " + shape_str(b) + " (inner dims differ)");
    if (node_.has_input(2)) ref::broadcast_shapes(in.at(2).shape, {m_, n_});
    return {ValueMeta{DType::kFloat32, {m_, n_}, nullptr}};
  }
  bool fuse_activation(const Activation& act) override {
    if (act_.kind != Activation::Kind::kNone) return false;
    act_ = act;
    return true;
  }
  void run(Context& ctx, const std::vector<const Tensor*>& in, const std::vector<Tensor*>& out) override {
    const float alpha = node_.get_float("alpha", 1.0f), beta = node_.get_float("beta", 1.0f);
    const Tensor* c = node_.has_input(2) ? in[2] : nullptr;
    float* y = out[0]->data<float>();
    if (backend_ == Backend::kFast) {
      // Broadcast beta*C into Y first, then accumulate alpha*A*B on top of it.
      float acc_beta = 0.0f;
      if (c && beta != 0.0f) {
        ref::gemm(m_, n_, 0, false, false, 0.0f, beta, nullptr, nullptr, c, y);
        acc_beta = 1.0f;
      }
      fast::sgemm(ta_, tb_, m_, n_, k_, alpha, in[0]->data<float>(), in[1]->data<float>(), acc_beta, y);
    } else {
      ref::gemm(m_, n_, k_, ta_, tb_, alpha, beta, in[0]->data<float>(), in[1]->data<float>(), c, y);
    }
    if (backend_ == Backend::kFast) {
      kernels::apply_activation(act_, y, out[0]->numel(), ctx);
    } else {
      kernels::apply_activation_ref(act_, y, out[0]->numel());
    }
  }

 private:
  Backend backend_;
  bool ta_ = false, tb_ = false;
  std::int64_t m_ = 0, n_ = 0, k_ = 0;
  Activation act_;
};

class MatMulOp : public Op {
 public:
  MatMulOp(const graph::Node& n, std::int64_t opset, Backend b) : Op(n, opset), backend_(b) {}
  std::vector<ValueMeta> infer(const std::vector<ValueMeta>& in) override {
    if (in.size() != 2) error("MatMul needs 2 inputs");
    require_f32(*this, in, 2);
    Shape a = in[0].shape, b = in[1].shape;
    if (a.empty() || b.empty()) error("MatMul operands must not be scalars");
    const bool av = a.size() == 1, bv = b.size() == 1;
    if (av) a.insert(a.begin(), 1);
    if (bv) b.push_back(1);
    if (a.back() != b[b.size() - 2])
      error("inner dimensions of " + shape_str(in[0].shape) + " and " + shape_str(in[1].shape) + " differ");
    Shape out = ref::broadcast_shapes(Shape(a.begin(), a.end() - 2), Shape(b.begin(), b.end() - 2));
    if (!av) out.push_back(a[a.size() - 2]);
    if (!bv) out.push_back(b.back());
    // Fast path: B is a plain matrix, so A's leading dims collapse into one GEMM.
    flat_ = backend_ == Backend::kFast && in[1].shape.size() == 2 && in[0].shape.size() >= 2;
    if (flat_) {
      k_ = a.back();
      n_ = b.back();
      m_ = shape_numel(a) / std::max<std::int64_t>(k_, 1);
    }
    return {ValueMeta{DType::kFloat32, out, nullptr}};
  }
  void run(Context&, const std::vector<const Tensor*>& in, const std::vector<Tensor*>& out) override {
    if (flat_) {
      fast::sgemm(false, false, m_, n_, k_, 1.0f, in[0]->data<float>(), in[1]->data<float>(), 0.0f,
                  out[0]->data<float>());
    } else {
      copy_into(*out[0], ref::matmul(*in[0], *in[1]), *this);
    }
  }

 private:
  Backend backend_;
  bool flat_ = false;
  std::int64_t m_ = 0, n_ = 0, k_ = 0;
};

class SoftmaxOp : public Op {
 public:
  using Op::Op;
  std::vector<ValueMeta> infer(const std::vector<ValueMeta>& in) override {
    require_f32(*this, in, 1);
    const Shape& x = in.at(0).shape;
    const auto r = static_cast<std::int64_t>(x.size());
    std::int64_t axis = node_.get_int("axis", opset_ >= 13 ? -1 : 1);
    if (axis < 0) axis += r;
    if (axis < 0 || axis >= std::max<std::int64_t>(r, 1)) error("axis out of range for " + shape_str(x));
    outer_ = 1, len_ = 1, inner_ = 1;
    for (std::int64_t d = 0; d < r; ++d) {
      if (d < axis)
        outer_ *= x[d];
      else if (d == axis || opset_ < 13)
        len_ *= x[d];  // before opset 13 the op flattens to 2-D at axis
      else
        inner_ *= x[d];
    }
    return {ValueMeta{DType::kFloat32, x, nullptr}};
  }
  void run(Context&, const std::vector<const Tensor*>& in, const std::vector<Tensor*>& out) override {
    ref::softmax(outer_, len_, inner_, in[0]->data<float>(), out[0]->data<float>());
  }

 private:
  std::int64_t outer_ = 1, len_ = 1, inner_ = 1;
};

}  // namespace

std::unique_ptr<Op> make_compute_op(const graph::Node& n, std::int64_t opset, Backend backend) {
  const std::string& t = n.op_type;
  if (t == "Conv") return std::make_unique<ConvOp>(n, opset, backend);
  if (t == "MaxPool" || t == "AveragePool") return std::make_unique<PoolOp>(n, opset, backend);
  if (t == "GlobalAveragePool" || t == "GlobalMaxPool")
    return std::make_unique<GlobalPoolOp>(n, opset, backend);
  if (t == "BatchNormalization") return std::make_unique<BatchNormOp>(n, opset);
  if (t == "Relu" || t == "Sigmoid" || t == "HardSigmoid" || t == "HardSwish" || t == "LeakyRelu" ||
      t == "Clip") {
    return std::make_unique<UnaryOp>(n, opset, backend);
  }
  if (t == "Add" || t == "Sub" || t == "Mul" || t == "Div")
    return std::make_unique<BinaryOp>(n, opset, backend);
  if (t == "Gemm") return std::make_unique<GemmOp>(n, opset, backend);
  if (t == "MatMul") return std::make_unique<MatMulOp>(n, opset, backend);
  if (t == "Softmax") return std::make_unique<SoftmaxOp>(n, opset);
  return nullptr;
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
