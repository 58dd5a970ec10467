// Data-movement and generator operators: Slice, Split, Expand, Tile, DepthToSpace, SpaceToDepth,
// ConstantOfShape, Range. Output shapes that depend on input values need those values at plan time.
#include "kernels/reference/movement.hpp"

#include <cmath>

#include "kernels/fast/layout.hpp"
#include "runtime/ops/common.hpp"
#include "runtime/ops/registry.hpp"

namespace aciq::runtime {

namespace {

namespace ref = kernels::ref;

// The integer values of input i, which must be known when the plan is built (a constant, an
// initializer or computed from shapes) because the output shape depends on them.
std::vector<std::int64_t> plan_time_ints(const Op& op, const std::vector<ValueMeta>& in, std::size_t i,
                                         const char* what) {
  if (i >= in.size() || !op.node().has_input(i)) op_error(op, std::string(what) + " is required");
  if (!in[i].value) {
    op_error(op, std::string(what) +
                     " must be known when the model is planned (a constant or computed from shapes)");
  }
  if (in[i].dtype != DType::kInt64 && in[i].dtype != DType::kInt32) {
    op_error(op, std::string(what) + " must be int64 or int32, got " + std::string(dtype_name(in[i].dtype)));
  }
  return in[i].value->to_i64_vector();
}

class SliceOp : public ValueOp {
 public:
  SliceOp(const graph::Node& n, std::int64_t opset, Backend b) : ValueOp(n, opset), backend_(b) {}
  std::string kernel() const override {
    return backend_ == Backend::kFast ? "threaded strided copy" : "reference";
  }
  void run(Context& ctx, const std::vector<const Tensor*>& in, const std::vector<Tensor*>& out) override {
    if (backend_ != Backend::kFast) {
      ValueOp::run(ctx, in, out);
      return;
    }
    kernels::fast::slice_into(*in[0], axes_, *out[0], *ctx.pool);
  }
  Shape out_shape(const std::vector<ValueMeta>& in) override {
    axes_ = plan_axes(in);
    Shape s;
    for (const auto& a : axes_) s.push_back(a.count);
    return s;
  }
  Tensor compute(const std::vector<const Tensor*>& in) override { return ref::slice(*in[0], axes_); }

 private:
  std::vector<ref::SliceAxis> plan_axes(const std::vector<ValueMeta>& in) const {
    const Shape& x = in.at(0).shape;
    const auto r = static_cast<std::int64_t>(x.size());
    std::vector<std::int64_t> starts, ends, axes, steps;
    if (opset_ < 10) {  // Slice-1: starts/ends/axes are attributes
      starts = node_.get_ints("starts");
      ends = node_.get_ints("ends");
      axes = node_.get_ints("axes");
    } else {
      starts = plan_time_ints(*this, in, 1, "starts");
      ends = plan_time_ints(*this, in, 2, "ends");
      if (node_.has_input(3)) axes = plan_time_ints(*this, in, 3, "axes");
      if (node_.has_input(4)) steps = plan_time_ints(*this, in, 4, "steps");
    }
    if (ends.size() != starts.size()) error("starts and ends have different lengths");
    if (axes.empty()) {
      for (std::size_t i = 0; i < starts.size(); ++i) axes.push_back(static_cast<std::int64_t>(i));
    }
    if (steps.empty()) steps.assign(starts.size(), 1);
    if (axes.size() != starts.size() || steps.size() != starts.size())
      error("starts, ends, axes and steps differ in length");
    std::vector<ref::SliceAxis> out;
    for (std::int64_t d = 0; d < r; ++d) out.push_back({0, 1, x[d]});
    std::vector<bool> seen(static_cast<std::size_t>(r), false);
    for (std::size_t i = 0; i < starts.size(); ++i) {
      const std::int64_t a = normalize_axis(axes[i], r, *this, "Slice");
      if (seen[a]) error("axis " + std::to_string(axes[i]) + " is repeated");
      seen[a] = true;
      try {
        out[a] = ref::slice_axis(x[a], starts[i], ends[i], steps[i]);
      } catch (const Error& e) {
        error(e.what());
      }
    }
    return out;
  }
  Backend backend_;
  std::vector<ref::SliceAxis> axes_;
};

class SplitOp : public Op {
 public:
  using Op::Op;
  std::vector<ValueMeta> infer(const std::vector<ValueMeta>& in) override {
    const Shape& x = in.at(0).shape;
    const auto r = static_cast<std::int64_t>(x.size());
    axis_ = normalize_axis(node_.get_int("axis", 0), r, *this, "Split");
    std::vector<std::int64_t> sizes;
    if (opset_ >= 13 && node_.has_input(1)) {
      sizes = plan_time_ints(*this, in, 1, "split");
    } else if (opset_ < 13 && node_.has("split")) {
      sizes = node_.get_ints("split");
    } else if (opset_ < 13 && node_.has_input(1)) {  // Split-2 forms never take it as an input, Split-1 may
      sizes = plan_time_ints(*this, in, 1, "split");
    }
    const std::int64_t parts = static_cast<std::int64_t>(node_.outputs.size());
    const std::int64_t len = x[axis_];
    if (sizes.empty()) {
      // Equal parts; from opset 18 num_outputs may leave a smaller last part (ceil division).
      const std::int64_t n = node_.has("num_outputs") ? node_.get_int("num_outputs", parts) : parts;
      if (n <= 0) error("num_outputs must be positive");
      if (opset_ >= 18 && node_.has("num_outputs")) {
        const std::int64_t each = (len + n - 1) / n;
        for (std::int64_t i = 0; i < n; ++i)
          sizes.push_back(std::max<std::int64_t>(0, std::min(each, len - i * each)));
      } else {
        if (len % n != 0)
          error("axis of length " + std::to_string(len) + " does not split into " + std::to_string(n) +
                " equal parts");
        sizes.assign(static_cast<std::size_t>(n), len / n);
      }
    }
    if (static_cast<std::int64_t>(sizes.size()) != parts)
      error(std::to_string(sizes.size()) + " split sizes for " + std::to_string(parts) + " outputs");
    std::int64_t total = 0;
    for (auto s : sizes) {
      if (s < 0) error("negative split size");
      total += s;
    }
    if (total != len)
      error("split sizes sum to " + std::to_string(total) + ", axis has " + std::to_string(len));
    std::vector<ValueMeta> out;
    starts_.clear();
    std::int64_t at = 0;
    for (auto s : sizes) {
      Shape o = x;
      o[axis_] = s;
      out.push_back({in[0].dtype, o, nullptr});
      starts_.push_back(at);
      at += s;
    }
    sizes_ = sizes;
    return out;
  }
  void run(Context&, const std::vector<const Tensor*>& in, const std::vector<Tensor*>& out) override {
    for (std::size_t k = 0; k < out.size(); ++k) {
      if (!out[k]) continue;
      std::vector<ref::SliceAxis> axes;
      for (std::size_t d = 0; d < in[0]->rank(); ++d) axes.push_back({0, 1, in[0]->shape()[d]});
      axes[axis_] = {starts_[k], 1, sizes_[k]};
      copy_into(*out[k], ref::slice(*in[0], axes), *this);
    }
  }

 private:
  std::int64_t axis_ = 0;
  std::vector<std::int64_t> starts_, sizes_;
};

class ExpandOp : public ValueOp {
 public:
  using ValueOp::ValueOp;
  Shape out_shape(const std::vector<ValueMeta>& in) override {
    const Shape target = plan_time_ints(*this, in, 1, "shape");
    std::vector<Shape> both{in[0].shape, target};
    Shape out(std::max(in[0].shape.size(), target.size()), 1);
    for (const auto& s : both) {
      for (std::size_t i = 0; i < s.size(); ++i) {
        std::int64_t& o = out[i + out.size() - s.size()];
        if (s[i] == o || s[i] == 1) continue;
        if (o != 1) error("input " + shape_str(in[0].shape) + " does not expand to " + shape_str(target));
        o = s[i];
      }
    }
    return out;
  }
  Tensor compute(const std::vector<const Tensor*>& in) override {
    return ref::expand(*in[0], Shape(in[1]->to_i64_vector()));
  }
};

class TileOp : public ValueOp {
 public:
  using ValueOp::ValueOp;
  Shape out_shape(const std::vector<ValueMeta>& in) override {
    const auto reps = plan_time_ints(*this, in, 1, "repeats");
    if (reps.size() != in[0].shape.size())
      error("repeats has " + std::to_string(reps.size()) + " entries for input " + shape_str(in[0].shape));
    Shape s = in[0].shape;
    for (std::size_t d = 0; d < s.size(); ++d) {
      if (reps[d] < 0) error("negative repeat");
      s[d] *= reps[d];
    }
    shape_numel(s);
    return s;
  }
  Tensor compute(const std::vector<const Tensor*>& in) override {
    return ref::tile(*in[0], in[1]->to_i64_vector());
  }
};

class DepthSpaceOp : public ValueOp {
 public:
  using ValueOp::ValueOp;
  Shape out_shape(const std::vector<ValueMeta>& in) override {
    const Shape& x = in.at(0).shape;
    const std::int64_t b = node_.get_int("blocksize", 0);
    if (x.size() != 4) error("input must be 4-D, got " + shape_str(x));
    if (b <= 0) error("blocksize must be positive");
    if (to_space()) {
      if (x[1] % (b * b) != 0)
        error("channels " + std::to_string(x[1]) + " are not a multiple of blocksize^2");
      return {x[0], x[1] / (b * b), x[2] * b, x[3] * b};
    }
    if (x[2] % b != 0 || x[3] % b != 0)
      error("spatial size " + shape_str(x) + " is not a multiple of blocksize");
    return {x[0], x[1] * b * b, x[2] / b, x[3] / b};
  }
  Tensor compute(const std::vector<const Tensor*>& in) override {
    const std::int64_t b = node_.get_int("blocksize", 0);
    if (to_space()) return ref::depth_to_space(*in[0], b, node_.get_string("mode", "DCR") == "CRD");
    return ref::space_to_depth(*in[0], b);
  }

 private:
  bool to_space() const { return node_.op_type == "DepthToSpace"; }
};

class ScatterNDOp : public ValueOp {
 public:
  using ValueOp::ValueOp;
  Shape out_shape(const std::vector<ValueMeta>& in) override {
    if (in.size() != 3) error("needs data, indices and updates");
    if (in[1].dtype != DType::kInt64) error("indices must be int64");
    const std::string r = node_.get_string("reduction", "none");
    if (r != "none" && r != "add" && r != "mul" && r != "max" && r != "min")
      error("unknown reduction '" + r + "'");
    return in[0].shape;
  }
  Tensor compute(const std::vector<const Tensor*>& in) override {
    try {
      return ref::scatter_nd(*in[0], *in[1], *in[2], node_.get_string("reduction", "none"));
    } catch (const Error& e) {
      error(e.what());
    }
  }
};

class ConstantOfShapeOp : public ValueOp {
 public:
  using ValueOp::ValueOp;
  DType out_dtype(const std::vector<ValueMeta>&) override { return fill().dtype(); }
  Shape out_shape(const std::vector<ValueMeta>& in) override {
    Shape s = plan_time_ints(*this, in, 0, "shape");
    for (auto d : s) {
      if (d < 0) error("negative dimension in " + shape_str(s));
    }
    return s;
  }
  Tensor compute(const std::vector<const Tensor*>& in) override {
    const Tensor& v = fill();
    Tensor y(v.dtype(), Shape(in[0]->to_i64_vector()));
    const std::size_t es = dtype_size(v.dtype());
    auto* dst = static_cast<std::byte*>(y.raw());
    for (std::int64_t i = 0; i < y.numel(); ++i) std::memcpy(dst + i * es, v.raw(), es);
    return y;
  }

 private:
  // The one-element `value` attribute (float 0 when absent).
  const Tensor& fill() {
    if (fill_.empty()) {
      fill_ = node_.has("value") ? node_.attrs.at("value").t : Tensor::scalar_f32(0.0f);
      if (fill_.numel() != 1) error("value must hold one element");
    }
    return fill_;
  }
  Tensor fill_;
};

class RangeOp : public ValueOp {
 public:
  using ValueOp::ValueOp;
  Shape out_shape(const std::vector<ValueMeta>& in) override {
    if (in.size() != 3) error("needs start, limit and delta");
    std::vector<const Tensor*> v;
    for (const auto& m : in) {
      if (!m.value) error("start, limit and delta must be known when the model is planned");
      if (m.dtype != in[0].dtype) error("start, limit and delta must share one dtype");
      v.push_back(m.value);
    }
    return {length(v)};
  }
  Tensor compute(const std::vector<const Tensor*>& in) override {
    const std::int64_t n = length(in);
    Tensor y(in[0]->dtype(), {n});
    if (in[0]->dtype() == DType::kFloat32) {
      const float s = in[0]->data<float>()[0], d = in[2]->data<float>()[0];
      for (std::int64_t i = 0; i < n; ++i) y.data<float>()[i] = s + static_cast<float>(i) * d;
    } else {
      const std::int64_t s = in[0]->to_i64_vector()[0], d = in[2]->to_i64_vector()[0];
      for (std::int64_t i = 0; i < n; ++i) {
        if (y.dtype() == DType::kInt64) {
          y.data<std::int64_t>()[i] = s + i * d;
        } else {
          y.data<std::int32_t>()[i] = static_cast<std::int32_t>(s + i * d);
        }
      }
    }
    return y;
  }

 private:
  // max(ceil((limit - start) / delta), 0): exactly in integers for integer ranges, bounded for floats.
  std::int64_t length(const std::vector<const Tensor*>& in) const {
    if (in[0]->numel() != 1 || in[1]->numel() != 1 || in[2]->numel() != 1)
      error("start, limit and delta must be scalars");
    if (in[0]->dtype() != DType::kFloat32) {
      const __int128 s = in[0]->to_i64_vector()[0], l = in[1]->to_i64_vector()[0],
                     d = in[2]->to_i64_vector()[0];
      if (d == 0) error("delta must not be 0");
      const __int128 span = l - s;
      const __int128 n = (span > 0) == (d > 0) && span != 0 ? (span + d - (d > 0 ? 1 : -1)) / d : 0;
      if (n > kMaxTensorElements)
        error("the range has more than " + std::to_string(kMaxTensorElements) + " elements");
      return static_cast<std::int64_t>(n);
    }
    const double s = in[0]->data<float>()[0], l = in[1]->data<float>()[0], d = in[2]->data<float>()[0];
    if (d == 0) error("delta must not be 0");
    const double n = std::max(0.0, std::ceil((l - s) / d));
    if (!(n <= static_cast<double>(kMaxTensorElements))) error("the range is not finite or too long");
    return static_cast<std::int64_t>(n);
  }
};

}  // namespace

std::vector<OpEntry> movement_ops() {
  return {
      op_entry<SliceOp>("Slice", "any", ""),
      op_entry<SplitOp>("Split", "any", ""),
      op_entry<ExpandOp>("Expand", "any", "", 8),
      op_entry<TileOp>("Tile", "any", ""),
      op_entry<DepthSpaceOp>("DepthToSpace", "any", ""),
      op_entry<DepthSpaceOp>("SpaceToDepth", "any", ""),
      op_entry<ConstantOfShapeOp>("ConstantOfShape", "int64", "", 9),
      op_entry<ScatterNDOp>("ScatterND", "any", "", 11),
      op_entry<RangeOp>("Range", "float32,int64,int32", "", 11),
  };
}

}  // namespace aciq::runtime
