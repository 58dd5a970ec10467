// Convolution and pooling operators (Conv, MaxPool, AveragePool, global pools): oneDNN and reference.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>

#include "kernels/fast/dnnl_kernels.hpp"
#include "kernels/fast/integer_conv.hpp"
#include "kernels/fast/quantize_simd.hpp"
#include "kernels/reference/integer.hpp"
#include "kernels/reference/reference.hpp"
#include "kernels/reference/window.hpp"
#include "runtime/ops/common.hpp"
#include "runtime/ops/registry.hpp"

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

// The node's strides, dilations and pads for each spatial axis of `in`, checked, and each axis's window
// (ref::axis_window): what the 1-D/2-D and the 3-D geometries below are assembled from.
struct SpatialWindows {
  std::vector<std::int64_t> stride, dilation;
  std::vector<ref::AxisWindow> axes;
  bool ceil_overhang = false;
};

SpatialWindows spatial_windows(const Op& op, const Shape& in, const std::vector<std::int64_t>& kernel,
                               bool ceil_mode) {
  const auto& node = op.node();
  const std::size_t sd = in.size() - 2;
  if (kernel.size() != sd)
    op_error(op, "kernel_shape has " + std::to_string(kernel.size()) + " dims for input " + shape_str(in));
  SpatialWindows sw;
  sw.stride = node.get_ints("strides", std::vector<std::int64_t>(sd, 1));
  sw.dilation = node.get_ints("dilations", std::vector<std::int64_t>(sd, 1));
  const auto pads = node.get_ints("pads", std::vector<std::int64_t>(2 * sd, 0));
  if (sw.stride.size() != sd || sw.dilation.size() != sd || pads.size() != 2 * sd)
    op_error(op, "strides/dilations/pads do not match the input rank");
  const std::string auto_pad = node.get_string("auto_pad", "NOTSET");
  for (std::size_t i = 0; i < sd; ++i) {
    if (kernel[i] <= 0 || sw.stride[i] <= 0 || sw.dilation[i] <= 0)
      op_error(op, "kernel, strides and dilations must be positive");
    try {
      sw.axes.push_back(ref::axis_window(in[2 + i], kernel[i], sw.stride[i], sw.dilation[i], pads[i],
                                         pads[i + sd], auto_pad, ceil_mode));
    } catch (const Error& e) {
      op_error(op, std::string(e.what()) + " (input " + shape_str(in) + ")");
    }
    sw.ceil_overhang = sw.ceil_overhang || sw.axes.back().ceil_overhang;
  }
  return sw;
}

Geometry window_geometry(const Op& op, const Shape& in, const std::vector<std::int64_t>& kernel,
                         bool ceil_mode) {
  if (in.size() != 3 && in.size() != 4) {
    op_error(op, "only 1-D and 2-D spatial inputs are supported, got shape " + shape_str(in));
  }
  const SpatialWindows sw = spatial_windows(op, in, kernel, ceil_mode);
  Geometry g;
  g.n = in[0];
  g.c = in[1];
  g.ceil_overhang = sw.ceil_overhang;
  if (in.size() == 4) {
    const ref::AxisWindow &ah = sw.axes[0], &aw = sw.axes[1];
    g.h = in[2], g.w = in[3], g.oh = ah.out, g.ow = aw.out;
    g.win = {kernel[0],      kernel[1],    sw.stride[0], sw.stride[1], sw.dilation[0],
             sw.dilation[1], ah.pad_begin, aw.pad_begin, ah.pad_end,   aw.pad_end};
  } else {
    const ref::AxisWindow& aw = sw.axes[0];
    g.h = 1, g.w = in[2], g.oh = 1, g.ow = aw.out;
    g.win = {1, kernel[0], 1, sw.stride[0], 1, sw.dilation[0], 0, aw.pad_begin, 0, aw.pad_end};
  }
  return g;
}

Shape out_shape_of(const Geometry& g, std::int64_t channels, std::size_t rank) {
  return rank == 4 ? Shape{g.n, channels, g.oh, g.ow} : Shape{g.n, channels, g.ow};
}

// The window of a 3-D (N, C, D, H, W) Conv/Pool node, each axis by axis_window; only the reference
// kernels run it.
struct Geometry3d {
  ref::Window3d win;
  std::array<std::int64_t, 3> in{}, out{};
  bool ceil_overhang = false;
};

Geometry3d window_geometry3d(const Op& op, const Shape& in, const std::vector<std::int64_t>& kernel,
                             bool ceil_mode) {
  const SpatialWindows sw = spatial_windows(op, in, kernel, ceil_mode);
  Geometry3d g;
  g.ceil_overhang = sw.ceil_overhang;
  for (std::size_t i = 0; i < 3; ++i) {
    g.in[i] = in[2 + i];
    g.out[i] = sw.axes[i].out;
    g.win.kernel[i] = kernel[i];
    g.win.stride[i] = sw.stride[i];
    g.win.dilation[i] = sw.dilation[i];
    g.win.pad_begin[i] = sw.axes[i].pad_begin;
    g.win.pad_end[i] = sw.axes[i].pad_end;
  }
  return g;
}

// What Conv and ConvInteger check alike: X and W of one spatial rank, groups that divide both channel
// counts, kernel_shape equal to W's spatial dims; the window geometry and kernel shape follow.
struct ConvGeometry {
  Geometry geo;
  ref::ConvShape shape{};
};

// X and W of one rank, groups that divide both channel counts, kernel_shape (when given) equal to W's
// spatial dims; returns the group count. Conv (any rank) and ConvInteger/QLinearConv check alike.
std::int64_t check_conv_weights(const Op& op, const Shape& x, const Shape& w) {
  const auto& node = op.node();
  if (w.size() != x.size())
    op_error(op, "weight shape " + shape_str(w) + " does not match input " + shape_str(x));
  const std::int64_t group = node.get_int("group", 1);
  if (group <= 0 || x[1] % group != 0 || w[0] % group != 0 || w[1] * group != x[1]) {
    op_error(op, "input " + shape_str(x) + " does not fit weight " + shape_str(w) + " with group " +
                     std::to_string(group));
  }
  const Shape kernel(w.begin() + 2, w.end());
  if (node.get_ints("kernel_shape", kernel) != kernel) {
    op_error(op, "kernel_shape " + shape_str(node.get_ints("kernel_shape")) + " does not match weight " +
                     shape_str(w));
  }
  return group;
}

ConvGeometry conv_geometry(const Op& op, const Shape& x, const Shape& w) {
  if (x.size() != 3 && x.size() != 4)
    op_error(op, "only 1-D and 2-D convolutions are supported, input " + shape_str(x));
  const std::int64_t group = check_conv_weights(op, x, w);
  ConvGeometry g;
  g.geo = window_geometry(op, x, Shape(w.begin() + 2, w.end()), false);
  g.shape = {g.geo.n, g.geo.c, g.geo.h, g.geo.w, w[0], g.geo.oh, g.geo.ow, group};
  return g;
}

class ConvOp : public Op {
 public:
  ConvOp(const graph::Node& n, std::int64_t opset, Backend b) : Op(n, opset), backend_(b) {}

  std::vector<ValueMeta> infer(const std::vector<ValueMeta>& in) override {
    if (in.size() < 2) error("Conv needs X and W");
    require_f32(*this, in, 3);
    const Shape& x = in[0].shape;
    const Shape& w = in[1].shape;
    if (x.size() == 5) return infer3d(in);
    const ConvGeometry g = conv_geometry(*this, x, w);
    check_bias(in, w[0]);
    geo_ = g.geo;
    shape_ = g.shape;
    dnnl_ready_ = can_use_dnnl(in);
    return {ValueMeta{DType::kFloat32, out_shape_of(geo_, w[0], x.size()), nullptr}};
  }

  LayoutRule layout_rule(const std::vector<ValueMeta>& in, const std::vector<ValueMeta>&) const override {
    return can_use_dnnl(in) ? LayoutRule::kFree : LayoutRule::kPlainOnly;
  }
  bool handles_channels_last() const override { return true; }  // oneDNN's nhwc

  void prepare(const std::vector<ValueMeta>& in, const std::vector<ValueMeta>&, DnnlEnv* env) override {
    if (env && three_d_ && backend_ == Backend::kFast && in[1].value &&
        (!node_.has_input(2) || in[2].value)) {
      conv3d_ =
          std::make_unique<fast::Conv3d>(*env, shape3d_, geo3d_.win, in[1].value->data<float>(),
                                         node_.has_input(2) ? in[2].value->data<float>() : nullptr, act_);
      return;
    }
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

  std::string kernel() const override {
    if (conv3d_) return "oneDNN " + conv3d_->implementation() + " (3-D)";
    return conv_ ? "oneDNN " + conv_->implementation() : "reference";
  }

  void run(Context&, const std::vector<const Tensor*>& in, const std::vector<Tensor*>& out) override {
    if (conv_) {
      conv_->run(in[0]->data<float>(), out[0]->data<float>());
      return;
    }
    if (conv3d_) {
      conv3d_->run(in[0]->data<float>(), out[0]->data<float>());
      return;
    }
    const float* bias = node_.has_input(2) ? in[2]->data<float>() : nullptr;
    if (three_d_) {
      ref::conv3d(shape3d_, geo3d_.win, in[0]->data<float>(), in[1]->data<float>(), bias,
                  out[0]->data<float>());
    } else {
      ref::conv2d(shape_, geo_.win, in[0]->data<float>(), in[1]->data<float>(), bias, out[0]->data<float>());
    }
    kernels::apply_activation_ref(act_, out[0]->data<float>(), out[0]->numel());
  }

 private:
  // 3-D convolutions (video and volumetric CNNs): oneDNN on plain NCDHW (fast::Conv3d) with constant
  // weights on the fast backend, else the reference kernel; no layout planning, no residual sum fusion.
  void check_bias(const std::vector<ValueMeta>& in, std::int64_t out_channels) const {
    if (in.size() > 2 && node_.has_input(2) && (in[2].shape.size() != 1 || in[2].shape[0] != out_channels)) {
      error("bias shape " + shape_str(in[2].shape) + " does not match " + std::to_string(out_channels) +
            " output channels");
    }
  }
  std::vector<ValueMeta> infer3d(const std::vector<ValueMeta>& in) {
    const Shape& x = in[0].shape;
    const Shape& w = in[1].shape;
    const std::int64_t group = check_conv_weights(*this, x, w);
    const Shape kernel(w.begin() + 2, w.end());
    check_bias(in, w[0]);
    three_d_ = true;
    geo3d_ = window_geometry3d(*this, x, kernel, false);
    shape3d_.n = x[0];
    shape3d_.c = x[1];
    shape3d_.oc = w[0];
    shape3d_.group = group;
    shape3d_.in = geo3d_.in;
    shape3d_.out = geo3d_.out;
    dnnl_ready_ = false;
    return {ValueMeta{DType::kFloat32, {x[0], w[0], geo3d_.out[0], geo3d_.out[1], geo3d_.out[2]}, nullptr}};
  }
  // oneDNN primitives are built once per plan for constant weights (the case of every real model).
  bool can_use_dnnl(const std::vector<ValueMeta>& in) const {
    return backend_ == Backend::kFast && !three_d_ && in[1].value && (!node_.has_input(2) || in[2].value);
  }
  bool three_d_ = false;
  Geometry3d geo3d_;
  ref::Conv3dShape shape3d_;
  std::unique_ptr<fast::Conv3d> conv3d_;
  Backend backend_;
  Geometry geo_;
  ref::ConvShape shape_{};
  Activation act_;
  bool dnnl_ready_ = false;  // infer() saw constant weights on the fast backend: prepare() builds conv_
  bool sum_ = false;         // the output buffer holds a summand to add (fuse_sum); implies dnnl_ready_
  std::unique_ptr<fast::Conv2d> conv_;
};

// True when every output window of `g` covers at least one input element (never only padding), so a
// max over the window never returns the pooling's starting value.
bool every_window_reads_input(const Geometry& g) {
  const auto axis_ok = [](std::int64_t in, std::int64_t out, std::int64_t k, std::int64_t stride,
                          std::int64_t dil, std::int64_t pad) {
    ref::AxisWindow w;
    w.out = out;
    w.pad_begin = pad;
    return ref::valid_taps(in, k, stride, dil, w).fewest > 0;
  };
  return axis_ok(g.h, g.oh, g.win.kh, g.win.stride_h, g.win.dil_h, g.win.pad_top) &&
         axis_ok(g.w, g.ow, g.win.kw, g.win.stride_w, g.win.dil_w, g.win.pad_left);
}

bool is_8bit(DType t) { return t == DType::kUInt8 || t == DType::kInt8; }

// MaxPool, AveragePool. MaxPool also runs on 8-bit tensors: natively (opset 12+), and in the int8 engine
// where the executor folds DequantizeLinear -> MaxPool -> QuantizeLinear into it. The fold is exact:
// DQ and Q are nondecreasing maps of one element, max commutes with every nondecreasing map, so
// Q(max(DQ(x))) = max(Q(DQ(x))) = the pooled bytes sent through the 256-entry table Q(DQ(v)), the
// table computed with the unfused steps' own kernels (docs/int8.md, "Integer max pooling").
class PoolOp : public Op {
 public:
  PoolOp(const graph::Node& n, std::int64_t opset, Backend b) : Op(n, opset), backend_(b) {}

  std::vector<ValueMeta> infer(const std::vector<ValueMeta>& in) override {
    if (in.empty()) error("expects an input");
    const DType type = in[0].dtype;
    if (is_8bit(type)) {
      if (is_avg() || opset_ < 12) error("input must be float32 (8-bit MaxPool needs opset 12)");
    } else {
      require_f32(*this, in, 1);
    }
    if (node_.outputs.size() > 1 && !node_.outputs[1].empty())
      error("the Indices output of MaxPool is not supported");
    if (!node_.has("kernel_shape")) error("kernel_shape is required");
    const Shape& x = in[0].shape;
    if (x.size() == 5) {  // 3-D pooling: the reference kernels, float only
      if (type != DType::kFloat32) error("3-D pooling runs on float32 only");
      geo3d_ =
          window_geometry3d(*this, x, node_.get_ints("kernel_shape"), node_.get_int("ceil_mode", 0) != 0);
      three_d_ = true;
      return {ValueMeta{type, {x[0], x[1], geo3d_.out[0], geo3d_.out[1], geo3d_.out[2]}, nullptr}};
    }
    geo_ = window_geometry(*this, x, node_.get_ints("kernel_shape"), node_.get_int("ceil_mode", 0) != 0);
    return {ValueMeta{type, out_shape_of(geo_, geo_.c, x.size()), nullptr}};
  }

  LayoutRule layout_rule(const std::vector<ValueMeta>&, const std::vector<ValueMeta>&) const override {
    return dnnl_ok() ? LayoutRule::kSame : LayoutRule::kPlainOnly;
  }
  bool handles_channels_last() const override { return true; }  // oneDNN's nhwc

  // DQ -> MaxPool: pool the 8-bit values, dequantize the (fewer) pooled ones. Needs a nondecreasing DQ.
  bool fuse_dequantize_input(std::size_t i, const std::vector<ValueMeta>& dq_in) override {
    if (backend_ != Backend::kFast || is_avg() || three_d_ || i != 0 || dq_.dtype != DType::kFloat32 ||
        !every_window_reads_input(geo_))
      return false;
    const auto q = per_tensor_quant(dq_in);
    // A positive finite scale makes DQ nondecreasing without NaN (std::is_sorted alone would accept a
    // NaN table, and a zero scale turns v < z into -0, which the float pooling keeps apart from +0).
    if (!q || !is_8bit(q->dtype) || !std::isfinite(q->scale) || q->scale <= 0.0f) return false;
    const std::vector<float> values = dequantized_table(*q);
    if (!std::is_sorted(values.begin(), values.end())) return false;
    dq_ = *q;
    return true;
  }
  // ... -> QuantizeLinear: the pooled bytes go through the table Q(DQ(v)) in place.
  bool fuse_quantize_output(const std::vector<ValueMeta>& q_in, DType type) override {
    if (dq_.dtype == DType::kFloat32 || q_.dtype != DType::kFloat32 || !is_8bit(type)) return false;
    auto q = per_tensor_quant(q_in);
    if (!q || (q->dtype != DType::kFloat32 && q->dtype != type) || !std::isfinite(q->scale) ||
        q->scale <= 0.0f)
      return false;
    q->dtype = type;
    const std::vector<float> values = dequantized_table(dq_);
    std::vector<std::int32_t> table(values.size());
    if (type == DType::kUInt8) {
      std::vector<std::uint8_t> bytes(values.size());
      fast::quantize_linear_simd(values.data(), q->scale, static_cast<std::uint8_t>(q->zero), bytes.data(),
                                 static_cast<std::int64_t>(values.size()));
      std::copy(bytes.begin(), bytes.end(), table.begin());
    } else {
      std::vector<std::int8_t> bytes(values.size());
      fast::quantize_linear_simd(values.data(), q->scale, static_cast<std::int8_t>(q->zero), bytes.data(),
                                 static_cast<std::int64_t>(values.size()));
      std::copy(bytes.begin(), bytes.end(), table.begin());
    }
    if (!std::is_sorted(table.begin(), table.end())) return false;
    q_ = *q;
    requant_.resize(table.size());
    bool identity = dq_.dtype == type;
    for (std::size_t v = 0; v < table.size(); ++v) {
      requant_[v] = static_cast<std::uint8_t>(table[v]);  // the byte of the int8 or uint8 value
      identity = identity && table[v] == value_of(dq_.dtype, v);
    }
    if (identity) requant_.clear();  // same scale and zero point: the pooled bytes are the answer
    return true;
  }

  void prepare(const std::vector<ValueMeta>& in, const std::vector<ValueMeta>&, DnnlEnv* env) override {
    pooled_type_ = dq_.dtype != DType::kFloat32 ? dq_.dtype : in.at(0).dtype;
    if (dq_.dtype != DType::kFloat32 && q_.dtype == DType::kFloat32)
      scratch_.resize(static_cast<std::size_t>(geo_.n * geo_.c * geo_.oh * geo_.ow));
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
    const fast::Pool2d::Data data = pooled_type_ == DType::kUInt8  ? fast::Pool2d::Data::kUInt8
                                    : pooled_type_ == DType::kInt8 ? fast::Pool2d::Data::kInt8
                                                                   : fast::Pool2d::Data::kFloat32;
    pool_ =
        std::make_unique<fast::Pool2d>(*env, ref::PoolShape{geo_.n, geo_.c, geo_.h, geo_.w, geo_.oh, geo_.ow},
                                       win, kind, in_blocked(0) ? block_ : 0, data);
  }

  std::string kernel() const override {
    const std::string type = is_8bit(pooled_type_) ? " on " + std::string(dtype_name(pooled_type_)) : "";
    return (pool_ ? "oneDNN " + pool_->implementation() : "reference") + type;
  }
  void run(Context& ctx, const std::vector<const Tensor*>& in, const std::vector<Tensor*>& out) override {
    if (three_d_) {
      const Shape& x = in[0]->shape();
      const ref::Pool3dShape s{x[0], x[1], geo3d_.in, geo3d_.out};
      if (is_avg()) {
        ref::avg_pool3d(s, geo3d_.win, include_pad(), in[0]->data<float>(), out[0]->data<float>());
      } else {
        ref::max_pool3d(s, geo3d_.win, in[0]->data<float>(), out[0]->data<float>());
      }
      return;
    }
    if (!is_8bit(pooled_type_)) {
      if (pool_) {
        pool_->run(in[0]->raw(), out[0]->raw());
        return;
      }
      const ref::PoolShape s = pool_shape();
      if (is_avg()) {
        ref::avg_pool2d(s, geo_.win, include_pad(), in[0]->data<float>(), out[0]->data<float>());
      } else {
        ref::max_pool2d(s, geo_.win, in[0]->data<float>(), out[0]->data<float>());
      }
      return;
    }
    const bool dequantize = dq_.dtype != DType::kFloat32 && q_.dtype == DType::kFloat32;
    void* pooled = dequantize ? static_cast<void*>(scratch_.data()) : out[0]->raw();
    if (pool_) {
      pool_->run(in[0]->raw(), pooled);
    } else if (pooled_type_ == DType::kUInt8) {
      ref::max_pool2d(pool_shape(), geo_.win, in[0]->data<std::uint8_t>(),
                      static_cast<std::uint8_t*>(pooled));
    } else {
      ref::max_pool2d(pool_shape(), geo_.win, in[0]->data<std::int8_t>(), static_cast<std::int8_t*>(pooled));
    }
    const auto n = static_cast<std::int64_t>(geo_.n * geo_.c * geo_.oh * geo_.ow);
    if (dequantize) {
      float* y = out[0]->data<float>();
      ctx.pool->parallel_for(n, [&](std::int64_t b, std::int64_t e) {
        if (pooled_type_ == DType::kUInt8) {
          fast::dequantize_linear_simd(scratch_.data() + b, dq_.scale, static_cast<std::uint8_t>(dq_.zero),
                                       y + b, e - b);
        } else {
          fast::dequantize_linear_simd(reinterpret_cast<const std::int8_t*>(scratch_.data()) + b, dq_.scale,
                                       static_cast<std::int8_t>(dq_.zero), y + b, e - b);
        }
      });
    } else if (!requant_.empty()) {
      auto* bytes = static_cast<std::uint8_t*>(pooled);
      ctx.pool->parallel_for(n, [&](std::int64_t b, std::int64_t e) {
        for (std::int64_t i = b; i < e; ++i) bytes[i] = requant_[table_index(bytes[i])];
      });
    }
  }

 private:
  // The 256 values of the 8-bit type `q.dtype` in ascending order, dequantized with DequantizeLinear's
  // kernel: entry v holds DQ(value_of(type, v)).
  static std::vector<float> dequantized_table(const PerTensorQuant& q) {
    std::vector<float> out(256);
    if (q.dtype == DType::kUInt8) {
      std::vector<std::uint8_t> v(256);
      for (int i = 0; i < 256; ++i) v[i] = static_cast<std::uint8_t>(i);
      fast::dequantize_linear_simd(v.data(), q.scale, static_cast<std::uint8_t>(q.zero), out.data(), 256);
    } else {
      std::vector<std::int8_t> v(256);
      for (int i = 0; i < 256; ++i) v[i] = static_cast<std::int8_t>(i - 128);
      fast::dequantize_linear_simd(v.data(), q.scale, static_cast<std::int8_t>(q.zero), out.data(), 256);
    }
    return out;
  }
  // Entry v of the tables above holds the value v (uint8) or v - 128 (int8).
  static std::int32_t value_of(DType type, std::size_t v) {
    return type == DType::kUInt8 ? static_cast<std::int32_t>(v) : static_cast<std::int32_t>(v) - 128;
  }
  std::size_t table_index(std::uint8_t byte) const {
    return pooled_type_ == DType::kUInt8 ? byte : static_cast<std::uint8_t>(byte ^ 0x80u);  // int8: v + 128
  }
  ref::PoolShape pool_shape() const { return {geo_.n, geo_.c, geo_.h, geo_.w, geo_.oh, geo_.ow}; }
  // oneDNN would count the ceil_mode overhang as padding for count_include_pad; the reference
  // kernel handles that case.
  bool dnnl_ok() const {
    return backend_ == Backend::kFast && !three_d_ && !(is_avg() && include_pad() && geo_.ceil_overhang);
  }
  bool is_avg() const { return node_.op_type == "AveragePool"; }
  bool include_pad() const { return node_.get_int("count_include_pad", 0) != 0; }
  Backend backend_;
  Geometry geo_;
  bool three_d_ = false;
  Geometry3d geo3d_;
  std::unique_ptr<fast::Pool2d> pool_;
  PerTensorQuant dq_, q_;                // folded DequantizeLinear / QuantizeLinear (kFloat32: none)
  DType pooled_type_ = DType::kFloat32;  // what the pooling itself reads and writes
  std::vector<std::uint8_t> requant_;    // Q(DQ(v)) by table_index; empty when it is the identity
  std::vector<std::uint8_t> scratch_;    // the pooled bytes when only the DequantizeLinear is folded
};

class GlobalPoolOp : public Op {
 public:
  GlobalPoolOp(const graph::Node& n, std::int64_t opset, Backend b) : Op(n, opset), backend_(b) {}
  LayoutRule layout_rule(const std::vector<ValueMeta>& in, const std::vector<ValueMeta>&) const override {
    return backend_ == Backend::kFast && node_.op_type == "GlobalAveragePool" && in[0].shape.size() == 4
               ? LayoutRule::kFree
               : LayoutRule::kPlainOnly;
  }
  // NHWC is nChw{C}c: one block holding every channel.
  bool handles_channels_last() const override { return true; }
  std::vector<ValueMeta> infer(const std::vector<ValueMeta>& in) override {
    require_f32(*this, in, 1);
    const Shape& x = in.at(0).shape;
    if (x.size() < 3) error("input must have spatial dims, got " + shape_str(x));
    Shape out = x;
    for (std::size_t i = 2; i < out.size(); ++i) out[i] = 1;
    return {ValueMeta{DType::kFloat32, out, nullptr}};
  }
  std::string kernel() const override {
    if (in_blocked(0)) return "blocked average";
    return backend_ == Backend::kFast && node_.op_type == "GlobalAveragePool" ? "threaded average"
                                                                              : "reference";
  }
  void run(Context& ctx, const std::vector<const Tensor*>& in, const std::vector<Tensor*>& out) override {
    const Shape& x = in[0]->shape();
    const std::int64_t nc = x[0] * x[1];
    const std::int64_t hw = in[0]->numel() / std::max<std::int64_t>(nc, 1);
    if (in_blocked(0)) {
      const int block = block_ == fast::kChannelsLast ? static_cast<int>(x[1]) : block_;
      fast::global_avg_pool_blocked(x[0], x[1], hw, block, in[0]->data<float>(), out[0]->data<float>(),
                                    out_blocked(0));
    } else if (node_.op_type == "GlobalAveragePool" && backend_ == Backend::kFast) {
      fast::global_avg_pool_plain(nc, hw, in[0]->data<float>(), out[0]->data<float>(), *ctx.pool);
    } else if (node_.op_type == "GlobalAveragePool") {
      ref::global_avg_pool(nc, hw, in[0]->data<float>(), out[0]->data<float>());
    } else {
      ref::global_max_pool(nc, hw, in[0]->data<float>(), out[0]->data<float>());
    }
  }

 private:
  Backend backend_;
};

// What ConvInteger and QLinearConv share: the integer accumulation, on the packed AVX2 kernels when the
// weights and their zero points are constant on the fast backend, else on the reference kernel.
class IntegerConvOp : public Op {
 public:
  IntegerConvOp(const graph::Node& n, std::int64_t opset, Backend b) : Op(n, opset), backend_(b) {}

  std::string kernel() const override {
    return packed_ ? std::string("aciq ") + packed_->implementation() : "reference";
  }

 protected:
  // `w` and `w_zero` index the node's inputs (they differ between the two ops).
  void prepare_weights(const std::vector<ValueMeta>& in, std::size_t w, std::size_t w_zero) {
    w_const_ = in[w].value != nullptr;
    if (w_const_) widen_to_i32(*in[w].value, w_);
    const bool zero_const = !(in.size() > w_zero && node_.has_input(w_zero)) || in[w_zero].value != nullptr;
    if (backend_ != Backend::kFast || !w_const_ || !zero_const) return;
    const Tensor* wz = in.size() > w_zero && node_.has_input(w_zero) ? in[w_zero].value : nullptr;
    const std::vector<std::int32_t> zero = zero_points(*this, wz, shape_.oc, "w_zero_point");
    packed_ = std::make_unique<fast::PackedIntegerConv>(shape_, geo_.win, w_.data(), zero.data());
  }

  // acc = sum (x - x_zero) * (w - w_zero), int32 [N, OC, OH, OW].
  // With `channel_offset`, a per-channel constant may be left for the caller to add (see
  // PackedIntegerConv::run); it is all zeros otherwise.
  void accumulate(Context& ctx, const Tensor& x, std::int32_t x_zero, const Tensor& w, const Tensor* wz,
                  std::int32_t* acc, std::int32_t* channel_offset = nullptr) {
    if (channel_offset) std::fill_n(channel_offset, shape_.oc, 0);
    if (packed_) {
      packed_->run(x.raw(), x.dtype() == DType::kUInt8, x_zero, acc, *ctx.pool, channel_offset);
      return;
    }
    std::vector<std::int32_t> xw;
    widen_to_i32(x, xw);
    if (!w_const_) widen_to_i32(w, w_);
    const std::vector<std::int32_t> w_zero = zero_points(*this, wz, shape_.oc, "w_zero_point");
    ref::conv2d_integer(shape_, geo_.win, xw.data(), x_zero, w_.data(), w_zero.data(), acc);
  }

  Backend backend_;
  Geometry geo_;
  ref::ConvShape shape_{};
  bool w_const_ = false;
  std::vector<std::int32_t> w_;  // W widened to int32 (in prepare() when constant)
  std::unique_ptr<fast::PackedIntegerConv> packed_;
};

// ConvInteger (opset 10): 8-bit X and W with optional zero points (W's per output channel), int32 Y.
class ConvIntegerOp : public IntegerConvOp {
 public:
  using IntegerConvOp::IntegerConvOp;
  std::vector<ValueMeta> infer(const std::vector<ValueMeta>& in) override {
    if (in.size() < 2) error("ConvInteger needs X and W");
    require_8bit(*this, in, {"X", "W"});
    const Shape& x = in[0].shape;
    const Shape& w = in[1].shape;
    const ConvGeometry g = conv_geometry(*this, x, w);
    geo_ = g.geo;
    shape_ = g.shape;
    return {ValueMeta{DType::kInt32, out_shape_of(geo_, w[0], x.size()), nullptr}};
  }
  // Constant weights (the case of every exported model) are widened and packed once here.
  void prepare(const std::vector<ValueMeta>& in, const std::vector<ValueMeta>&, DnnlEnv*) override {
    prepare_weights(in, 1, 3);
  }
  void run(Context& ctx, const std::vector<const Tensor*>& in, const std::vector<Tensor*>& out) override {
    const Tensor* xz = in.size() > 2 && node_.has_input(2) ? in[2] : nullptr;
    const Tensor* wz = in.size() > 3 && node_.has_input(3) ? in[3] : nullptr;
    const std::vector<std::int32_t> x_zero = zero_points(*this, xz, 1, "x_zero_point");
    accumulate(ctx, *in[0], x_zero[0], *in[1], wz, out[0]->data<std::int32_t>());
  }
};

// QLinearConv (opset 10): the ConvInteger accumulation of 8-bit X and W (W's scale and zero point per
// output channel or scalar), plus the int32 bias, requantized to Y's scale and zero point; Y takes
// y_zero_point's type. Inputs: x, x_scale, x_zero_point, w, w_scale, w_zero_point, y_scale,
// y_zero_point, [B].
class QLinearConvOp : public IntegerConvOp {
 public:
  using IntegerConvOp::IntegerConvOp;
  std::vector<ValueMeta> infer(const std::vector<ValueMeta>& in) override {
    if (in.size() < 8)
      error("QLinearConv needs x, x_scale, x_zero_point, w, w_scale, w_zero_point, y_scale, y_zero_point");
    require_8bit(*this, {in[0], in[3]}, {"x", "w"});
    const Shape& x = in[0].shape;
    const Shape& w = in[3].shape;
    const ConvGeometry g = conv_geometry(*this, x, w);
    if (in.size() > 8 && node_.has_input(8)) {
      if (in[8].dtype != DType::kInt32) error("B must be int32");
      if (in[8].shape.size() != 1 || in[8].shape[0] != w[0]) {
        error("bias shape " + shape_str(in[8].shape) + " does not match " + std::to_string(w[0]) +
              " output channels");
      }
    }
    const DType y_type = node_.has_input(7) ? in[7].dtype : DType::kUInt8;
    if (!is_8bit(y_type)) error("y_zero_point must be uint8 or int8");
    geo_ = g.geo;
    shape_ = g.shape;
    onednn_ = onednn_eligible(in, y_type);
    return {ValueMeta{y_type, out_shape_of(geo_, w[0], x.size()), nullptr}};
  }
  LayoutRule layout_rule(const std::vector<ValueMeta>&, const std::vector<ValueMeta>&) const override {
    return onednn_ ? LayoutRule::kFree : LayoutRule::kPlainOnly;
  }
  bool prefers_channels_last() const override { return onednn_; }
  bool handles_channels_last() const override { return onednn_; }
  void prepare(const std::vector<ValueMeta>& in, const std::vector<ValueMeta>&, DnnlEnv* env) override {
    if (onednn_ && env) {
      const auto scale = requantization_scales(*in[1].value, *in[4].value, *in[6].value);
      const Tensor* bias = in.size() > 8 && node_.has_input(8) ? in[8].value : nullptr;
      const Tensor* y_zero = in.size() > 7 && node_.has_input(7) ? in[7].value : nullptr;
      int8_conv_ =
          std::make_unique<fast::Int8Conv2d>(*env, shape_, geo_.win, in[3].value->data<std::int8_t>(),
                                             bias ? bias->data<std::int32_t>() : nullptr, scale.data(),
                                             zero_points(*this, y_zero, 1, "y_zero_point")[0], types_,
                                             in_blocked(0) ? block_ : 0, out_blocked(0) ? block_ : 0);
      return;
    }
    prepare_weights(in, 3, 5);
  }
  std::string kernel() const override {
    return int8_conv_ ? "oneDNN " + int8_conv_->implementation() : IntegerConvOp::kernel();
  }
  void run(Context& ctx, const std::vector<const Tensor*>& in, const std::vector<Tensor*>& out) override {
    const auto optional = [&](std::size_t i) {
      return in.size() > i && node_.has_input(i) ? in[i] : nullptr;
    };
    const std::int32_t x_zero = zero_points(*this, optional(2), 1, "x_zero_point")[0];
    if (int8_conv_) {
      int8_conv_->run(in[0]->raw(), x_zero, out[0]->raw());
      return;
    }
    const std::int32_t y_zero = zero_points(*this, optional(7), 1, "y_zero_point")[0];
    const std::vector<float> scale = requantization_scales(*in[1], *in[4], *in[6]);
    const std::unique_ptr<std::int32_t[]> acc(new std::int32_t[static_cast<std::size_t>(out[0]->numel())]);
    // The kernel's leftover per-channel constant joins the bias, saving a pass over the output.
    std::vector<std::int32_t> bias(static_cast<std::size_t>(shape_.oc));
    accumulate(ctx, *in[0], x_zero, *in[3], optional(5), acc.get(), bias.data());
    if (const Tensor* b = optional(8)) {
      const std::int32_t* bv = b->data<std::int32_t>();
      for (std::size_t c = 0; c < bias.size(); ++c) {
        bias[c] = static_cast<std::int32_t>(static_cast<std::uint32_t>(bias[c]) +
                                            static_cast<std::uint32_t>(bv[c]));
      }
    }
    const auto [lo, hi] = range_of_8bit(out[0]->dtype());
    fast::requantize_to_8bit(shape_.n, shape_.oc, geo_.oh * geo_.ow, acc.get(), bias.data(), scale.data(),
                             y_zero, lo, hi, out[0]->raw(), out[0]->dtype() == DType::kUInt8);
  }

 private:
  // M[c] = x_scale * w_scale[c] / y_scale in float32, in ONNX Runtime's order (docs/int8.md).
  std::vector<float> requantization_scales(const Tensor& x_scale, const Tensor& w_scale,
                                           const Tensor& y_scale) const {
    const float xs = scales_of(*this, x_scale, 1, "x_scale")[0];
    const float ys = scales_of(*this, y_scale, 1, "y_scale")[0];
    std::vector<float> scale = scales_of(*this, w_scale, shape_.oc, "w_scale");
    for (float& s : scale) s = xs * s / ys;
    return scale;
  }

  // oneDNN's int8 convolution computes QLinearConv exactly (up to the 2^24 caveat of Int8Conv2d) when
  // the weights are constant symmetric int8, the scales, y's zero point and the bias constant, and this
  // CPU has a kernel with exact 8-bit dot products (VNNI/AMX); x's zero point may vary at run time.
  bool onednn_eligible(const std::vector<ValueMeta>& in, DType y_type) {
    if (backend_ != Backend::kFast || in[0].shape.size() != 4) return false;
    const auto known = [&](std::size_t i) { return in.size() > i && node_.has_input(i) && in[i].value; };
    if (!known(1) || !known(3) || !known(4) || !known(6) || in[3].dtype != DType::kInt8) return false;
    if (in.size() > 8 && node_.has_input(8) && !in[8].value) return false;
    if (in.size() > 7 && node_.has_input(7) && !in[7].value) return false;
    if (in.size() > 5 && node_.has_input(5)) {
      if (!in[5].value) return false;
      for (std::int64_t z : in[5].value->to_i64_vector()) {
        if (z != 0) return false;
      }
    }
    types_ = {in[0].dtype == DType::kInt8, y_type == DType::kInt8};
    return fast::Int8Conv2d::exact_kernel_available(shape_, geo_.win, types_);
  }

  bool onednn_ = false;
  fast::Int8Conv2d::Types types_;
  std::unique_ptr<fast::Int8Conv2d> int8_conv_;
};

}  // namespace

std::vector<OpEntry> conv_ops() {
  return {
      op_entry<ConvOp>("Conv", "float32", "oneDNN convolution (constant weights)"),
      op_entry<ConvIntegerOp>("ConvInteger", "uint8,int8", "", 10),
      op_entry<QLinearConvOp>("QLinearConv", "uint8,int8", "", 10),
      op_entry<PoolOp>("MaxPool", "float32,uint8,int8", "oneDNN pooling; 8-bit from opset 12"),
      op_entry<PoolOp>("AveragePool", "float32", "oneDNN pooling"),
      op_entry<GlobalPoolOp>("GlobalAveragePool", "float32", "oneDNN pooling"),
      op_entry<GlobalPoolOp>("GlobalMaxPool", "float32", "oneDNN pooling"),
  };
}

}  // namespace aciq::runtime
