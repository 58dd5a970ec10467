// Normalizations: BatchNormalization, LayerNormalization, InstanceNormalization, GroupNormalization, LRN,
// Softmax, LogSoftmax.
#include "kernels/reference/normalization.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "kernels/fast/dnnl_kernels.hpp"
#include "kernels/reference/reference.hpp"
#include "runtime/ops/common.hpp"
#include "runtime/ops/registry.hpp"

namespace aciq::runtime {

namespace {

namespace ref = kernels::ref;
namespace fast = kernels::fast;

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

// Softmax and LogSoftmax share the axis handling.
class SoftmaxOp : public Op {
 public:
  SoftmaxOp(const graph::Node& n, std::int64_t opset, Backend b)
      : Op(n, opset), log_(n.op_type == "LogSoftmax"), backend_(b) {}
  std::string kernel() const override {
    return backend_ == Backend::kFast ? "threaded reference rows" : "reference";
  }
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
  void run(Context& ctx, const std::vector<const Tensor*>& in, const std::vector<Tensor*>& out) override {
    if (backend_ == Backend::kFast && outer_ > 1 && in[0]->numel() >= (1 << 15)) {
      // Rows are independent: the reference kernel on disjoint row ranges gives the same bits.
      const float* x = in[0]->data<float>();
      float* y = out[0]->data<float>();
      const std::int64_t row = len_ * inner_;
      ctx.pool->parallel_for(outer_, [&](std::int64_t o0, std::int64_t o1) {
        if (log_) {
          ref::log_softmax(o1 - o0, len_, inner_, x + o0 * row, y + o0 * row);
        } else {
          ref::softmax(o1 - o0, len_, inner_, x + o0 * row, y + o0 * row);
        }
      });
      return;
    }
    if (log_) {
      ref::log_softmax(outer_, len_, inner_, in[0]->data<float>(), out[0]->data<float>());
    } else {
      ref::softmax(outer_, len_, inner_, in[0]->data<float>(), out[0]->data<float>());
    }
  }

 private:
  bool log_;
  Backend backend_;
  std::int64_t outer_ = 1, len_ = 1, inner_ = 1;
};

// True when `from` broadcasts unidirectionally (numpy rules, aligned at the right) to `to`.
bool broadcasts_to(const Shape& from, const Shape& to) {
  if (from.size() > to.size()) return false;
  for (std::size_t i = 0; i < from.size(); ++i) {
    const std::int64_t f = from[from.size() - 1 - i];
    if (f != 1 && f != to[to.size() - 1 - i]) return false;
  }
  return true;
}

// `t` broadcast to `to` (checked by broadcasts_to), materialized row-major.
std::vector<float> broadcast_values(const Tensor& t, const Shape& to) {
  const Shape& from = t.shape();
  const std::size_t r = to.size(), lead = r - from.size();
  std::vector<std::int64_t> strides(r, 0);  // stride 0 repeats a broadcast dim
  std::int64_t step = 1;
  for (std::size_t i = r; i-- > lead;) {
    if (from[i - lead] != 1) strides[i] = step;
    step *= from[i - lead];
  }
  std::vector<float> out(static_cast<std::size_t>(shape_numel(to)));
  std::vector<std::int64_t> idx(r, 0);
  const float* src = t.data<float>();
  for (float& v : out) {
    std::int64_t off = 0;
    for (std::size_t d = 0; d < r; ++d) off += idx[d] * strides[d];
    v = src[off];
    for (std::size_t d = r; d-- > 0;) {
      if (++idx[d] < to[d]) break;
      idx[d] = 0;
    }
  }
  return out;
}

// LayerNormalization (opset 17): normalizes over the dims from `axis` on, with optional Mean and
// InvStdDev outputs of shape X[:axis] + [1, ...].
class LayerNormOp : public Op {
 public:
  using Op::Op;
  std::vector<ValueMeta> infer(const std::vector<ValueMeta>& in) override {
    if (in.size() < 2 || !node_.has_input(1)) error("LayerNormalization needs X and Scale");
    require_f32(*this, in, 3);
    const Shape& x = in[0].shape;
    const auto r = static_cast<std::int64_t>(x.size());
    std::int64_t axis = node_.get_int("axis", -1);
    if (axis < 0) axis += r;
    if (axis < 0 || axis >= r) error("axis out of range for " + shape_str(x));
    // stash_type is the dtype of the Mean/InvStdDev outputs; only float32 tensors are supported.
    if (node_.get_int("stash_type", 1) != 1) error("only stash_type 1 (float32) is supported");
    norm_shape_.assign(x.begin() + axis, x.end());
    outer_ = shape_numel(Shape(x.begin(), x.begin() + axis));
    inner_ = shape_numel(norm_shape_);
    for (std::size_t i = 1; i < 3 && i < in.size(); ++i) {
      if (node_.has_input(i) && !broadcasts_to(in[i].shape, norm_shape_)) {
        error(std::string(i == 1 ? "Scale " : "B ") + shape_str(in[i].shape) +
              " does not broadcast to the normalized shape " + shape_str(norm_shape_));
      }
    }
    Shape stat(x.begin(), x.begin() + axis);
    stat.resize(x.size(), 1);
    std::vector<ValueMeta> out{ValueMeta{DType::kFloat32, x, nullptr}};
    for (std::size_t i = 1; i < node_.outputs.size() && i < 3; ++i)
      out.push_back({DType::kFloat32, stat, nullptr});
    return out;
  }
  void run(Context&, const std::vector<const Tensor*>& in, const std::vector<Tensor*>& out) override {
    // Scale and B usually have exactly the normalized shape; others are expanded per run.
    std::vector<float> scale_buf, bias_buf;
    const float* scale = operand(*in[1], scale_buf);
    const float* bias = node_.has_input(2) ? operand(*in[2], bias_buf) : nullptr;
    float* mean = out.size() > 1 && out[1] ? out[1]->data<float>() : nullptr;
    float* inv_std = out.size() > 2 && out[2] ? out[2]->data<float>() : nullptr;
    ref::layer_norm(outer_, inner_, node_.get_float("epsilon", 1e-5f), in[0]->data<float>(), scale, bias,
                    out[0]->data<float>(), mean, inv_std);
  }

 private:
  const float* operand(const Tensor& t, std::vector<float>& buf) const {
    if (t.numel() == inner_) return t.data<float>();
    buf = broadcast_values(t, norm_shape_);
    return buf.data();
  }
  Shape norm_shape_;
  std::int64_t outer_ = 1, inner_ = 1;
};

class InstanceNormOp : public Op {
 public:
  using Op::Op;
  std::vector<ValueMeta> infer(const std::vector<ValueMeta>& in) override {
    if (in.size() < 3 || !node_.has_input(1) || !node_.has_input(2))
      error("InstanceNormalization needs input, scale and B");
    require_f32(*this, in, 3);
    const Shape& x = in[0].shape;
    if (x.size() < 3) error("input must have spatial dims, got " + shape_str(x));
    for (std::size_t i = 1; i < 3; ++i) {
      if (in[i].shape.size() != 1 || in[i].shape[0] != x[1])
        error("parameter " + std::to_string(i) + " " + shape_str(in[i].shape) + " does not have " +
              std::to_string(x[1]) + " channels");
    }
    return {ValueMeta{DType::kFloat32, x, nullptr}};
  }
  void run(Context&, const std::vector<const Tensor*>& in, const std::vector<Tensor*>& out) override {
    const Shape& x = in[0]->shape();
    const std::int64_t inner = shape_numel(Shape(x.begin() + 2, x.end()));
    ref::instance_norm(x[0], x[1], inner, node_.get_float("epsilon", 1e-5f), in[0]->data<float>(),
                       in[1]->data<float>(), in[2]->data<float>(), out[0]->data<float>());
  }
};

// GroupNormalization (opset 18; opset 21 made scale and bias per channel instead of per group).
class GroupNormOp : public Op {
 public:
  using Op::Op;
  std::vector<ValueMeta> infer(const std::vector<ValueMeta>& in) override {
    if (in.size() < 3 || !node_.has_input(1) || !node_.has_input(2))
      error("GroupNormalization needs input, scale and bias");
    require_f32(*this, in, 3);
    const Shape& x = in[0].shape;
    if (x.size() < 3) error("input must have spatial dims, got " + shape_str(x));
    if (!node_.has("num_groups")) error("num_groups is required");
    const std::int64_t groups = node_.get_int("num_groups", 0);
    if (groups <= 0 || x[1] % groups != 0)
      error("num_groups " + std::to_string(groups) + " does not divide the " + std::to_string(x[1]) +
            " channels");
    if (node_.get_int("stash_type", 1) != 1) error("stash_type other than 1 (float32) is not supported");
    const std::int64_t want = per_channel() ? x[1] : groups;
    for (std::size_t i = 1; i < 3; ++i) {
      if (in[i].shape.size() != 1 || in[i].shape[0] != want)
        error("parameter " + std::to_string(i) + " " + shape_str(in[i].shape) + " must have " +
              std::to_string(want) +
              (per_channel() ? " values (one per channel, opset 21)" : " values (one per group, opset 18)"));
    }
    return {ValueMeta{DType::kFloat32, x, nullptr}};
  }
  void run(Context&, const std::vector<const Tensor*>& in, const std::vector<Tensor*>& out) override {
    const Shape& x = in[0]->shape();
    const std::int64_t inner = shape_numel(Shape(x.begin() + 2, x.end()));
    ref::group_norm(x[0], x[1], node_.get_int("num_groups", 1), inner, node_.get_float("epsilon", 1e-5f),
                    in[0]->data<float>(), in[1]->data<float>(), in[2]->data<float>(), per_channel(),
                    out[0]->data<float>());
  }

 private:
  bool per_channel() const { return opset_ >= 21; }
};

class LrnOp : public Op {
 public:
  using Op::Op;
  std::vector<ValueMeta> infer(const std::vector<ValueMeta>& in) override {
    require_f32(*this, in, 1);
    const Shape& x = in.at(0).shape;
    if (x.size() < 3) error("input must be [N, C, D1, ...], got " + shape_str(x));
    if (!node_.has("size") || node_.get_int("size", 0) <= 0) error("size must be a positive integer");
    return {ValueMeta{DType::kFloat32, x, nullptr}};
  }
  void run(Context&, const std::vector<const Tensor*>& in, const std::vector<Tensor*>& out) override {
    const Shape& x = in[0]->shape();
    const std::int64_t inner = shape_numel(Shape(x.begin() + 2, x.end()));
    ref::lrn(x[0], x[1], inner, node_.get_int("size", 1), node_.get_float("alpha", 1e-4f),
             node_.get_float("beta", 0.75f), node_.get_float("bias", 1.0f), in[0]->data<float>(),
             out[0]->data<float>());
  }
};

}  // namespace

std::vector<OpEntry> normalization_ops() {
  return {
      op_entry<BatchNormOp>("BatchNormalization", "float32", ""),
      op_entry<SoftmaxOp>("Softmax", "float32", ""),
      op_entry<SoftmaxOp>("LogSoftmax", "float32", ""),
      op_entry<LayerNormOp>("LayerNormalization", "float32", "", 17),
      op_entry<InstanceNormOp>("InstanceNormalization", "float32", ""),
      op_entry<GroupNormOp>("GroupNormalization", "float32", "", 18),
      op_entry<LrnOp>("LRN", "float32", ""),
  };
}

}  // namespace aciq::runtime
