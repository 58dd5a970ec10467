// Shape-manipulating and data-movement operators (Reshape, Concat, Gather, Shape, ...): same on every
// backend.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "kernels/fast/layout.hpp"
#include "kernels/reference/reference.hpp"
#include "runtime/ops/common.hpp"
#include "runtime/ops/registry.hpp"

namespace aciq::runtime {

namespace {

class ConstantOp : public ValueOp {
 public:
  using ValueOp::ValueOp;
  DType out_dtype(const std::vector<ValueMeta>&) override { return value().dtype(); }
  Shape out_shape(const std::vector<ValueMeta>&) override { return value().shape(); }
  Tensor compute(const std::vector<const Tensor*>&) override { return value(); }

 private:
  const Tensor& value() {
    if (!cached_.empty()) return cached_;
    const auto& n = node_;
    if (n.has("value")) {
      cached_ = n.attrs.at("value").t;
    } else if (n.has("value_float")) {
      cached_ = Tensor::scalar_f32(n.get_float("value_float", 0));
    } else if (n.has("value_floats")) {
      auto v = n.get_floats("value_floats");
      cached_ = Tensor::from_f32({static_cast<std::int64_t>(v.size())}, v);
    } else if (n.has("value_int")) {
      std::int64_t v = n.get_int("value_int", 0);
      cached_ = Tensor::from_i64({}, std::span<const std::int64_t>(&v, 1));
    } else if (n.has("value_ints")) {
      auto v = n.get_ints("value_ints");
      cached_ = Tensor::from_i64({static_cast<std::int64_t>(v.size())}, v);
    } else {
      error("Constant has no supported value attribute");
    }
    if (cached_.empty()) error("Constant has an empty value");
    return cached_;
  }
  Tensor cached_;
};

class ShapeOp : public ValueOp {
 public:
  using ValueOp::ValueOp;
  // The shape is known while planning even when the data is not, so downstream shape arithmetic
  // (Gather/Concat/Reshape in older exports) folds to constants.
  std::vector<ValueMeta> infer(const std::vector<ValueMeta>& in) override {
    const Shape& s = in[0].shape;
    auto [b, e] = range(static_cast<std::int64_t>(s.size()));
    value_ = Tensor::from_i64({e - b},
                              std::span<const std::int64_t>(s.data() + b, static_cast<std::size_t>(e - b)));
    return {ValueMeta{DType::kInt64, value_.shape(), &value_}};
  }
  DType out_dtype(const std::vector<ValueMeta>&) override { return DType::kInt64; }
  Shape out_shape(const std::vector<ValueMeta>& in) override {
    auto [b, e] = range(static_cast<std::int64_t>(in.at(0).shape.size()));
    return {e - b};
  }
  Tensor value_;
  Tensor compute(const std::vector<const Tensor*>& in) override {
    const Shape& s = in[0]->shape();
    auto [b, e] = range(static_cast<std::int64_t>(s.size()));
    return Tensor::from_i64({e - b},
                            std::span<const std::int64_t>(s.data() + b, static_cast<std::size_t>(e - b)));
  }

 private:
  std::pair<std::int64_t, std::int64_t> range(std::int64_t r) const {
    auto clampi = [r](std::int64_t v) { return std::clamp(v < 0 ? v + r : v, std::int64_t{0}, r); };
    const std::int64_t b = clampi(node_.get_int("start", 0));
    const std::int64_t e = clampi(node_.get_int("end", r));
    return {b, std::max(b, e)};
  }
};

class ReshapeOp : public ValueOp {
 public:
  using ValueOp::ValueOp;
  Shape out_shape(const std::vector<ValueMeta>& in) override {
    if (in.size() < 2 || !in[1].value) error("Reshape needs a constant (or shape-computed) target shape");
    return target(in[0].shape, in[1].value->to_i64_vector());
  }
  Tensor compute(const std::vector<const Tensor*>& in) override {
    return in[0]->reshaped(target(in[0]->shape(), in[1]->to_i64_vector()));
  }

 private:
  Shape target(const Shape& src, std::vector<std::int64_t> dims) const {
    const bool allowzero = node_.get_int("allowzero", 0) != 0;
    std::int64_t infer_at = -1, known = 1;
    for (std::size_t i = 0; i < dims.size(); ++i) {
      if (dims[i] == 0 && !allowzero) {
        if (i >= src.size()) error("Reshape copies dimension " + std::to_string(i) + " that the input lacks");
        dims[i] = src[i];
      }
      if (dims[i] == -1) {
        if (infer_at >= 0) error("Reshape has more than one -1");
        infer_at = static_cast<std::int64_t>(i);
      } else if (dims[i] < 0) {
        error("Reshape has invalid dimension " + std::to_string(dims[i]));
      } else {
        known *= dims[i];
      }
    }
    const std::int64_t total = shape_numel(src);
    if (infer_at >= 0) {
      if (known == 0 || total % known != 0) error("Reshape cannot infer -1 for " + shape_str(src));
      dims[infer_at] = total / known;
    }
    if (shape_numel(dims) != total)
      error("Reshape cannot turn " + shape_str(src) + " into " + shape_str(dims));
    return dims;
  }
};

class FlattenOp : public ValueOp {
 public:
  using ValueOp::ValueOp;
  Shape out_shape(const std::vector<ValueMeta>& in) override { return target(in[0].shape); }
  Tensor compute(const std::vector<const Tensor*>& in) override {
    return in[0]->reshaped(target(in[0]->shape()));
  }

 private:
  Shape target(const Shape& s) const {
    const auto r = static_cast<std::int64_t>(s.size());
    std::int64_t axis = node_.get_int("axis", 1);
    if (axis < 0) axis += r;
    if (axis < 0 || axis > r) error("Flatten axis out of range for " + shape_str(s));
    std::int64_t outer = 1, inner = 1;
    for (std::int64_t d = 0; d < r; ++d) (d < axis ? outer : inner) *= s[d];
    return {outer, inner};
  }
};

// Squeeze/Unsqueeze read their axes from an attribute before opset 13 and from input 1 after.
std::vector<std::int64_t> axes_of(const Op& op, std::int64_t opset, const std::vector<ValueMeta>& in,
                                  bool& given) {
  given = false;
  if (opset >= 13) {
    if (op.node().has_input(1)) {
      if (in.size() < 2 || !in[1].value) op_error(op, "axes must be constant");
      given = true;
      return in[1].value->to_i64_vector();
    }
    return {};
  }
  given = op.node().has("axes");
  return op.node().get_ints("axes");
}

class SqueezeOp : public ValueOp {
 public:
  using ValueOp::ValueOp;
  Shape out_shape(const std::vector<ValueMeta>& in) override {
    bool given = false;
    auto axes = axes_of(*this, opset_, in, given);
    const Shape& s = in[0].shape;
    const auto r = static_cast<std::int64_t>(s.size());
    std::vector<bool> drop(s.size(), false);
    if (!given) {
      for (std::size_t i = 0; i < s.size(); ++i) drop[i] = s[i] == 1;
    }
    for (auto a : axes) {
      a = normalize_axis(a, r, *this, "Squeeze");
      if (s[a] != 1) error("Squeeze of axis " + std::to_string(a) + " with size " + std::to_string(s[a]));
      drop[a] = true;
    }
    Shape out;
    for (std::size_t i = 0; i < s.size(); ++i) {
      if (!drop[i]) out.push_back(s[i]);
    }
    return out;
  }
  Tensor compute(const std::vector<const Tensor*>& in) override { return reshape_like(in); }

 protected:
  Tensor reshape_like(const std::vector<const Tensor*>& in) {
    std::vector<ValueMeta> metas;
    for (const Tensor* t : in) metas.push_back({t->dtype(), t->shape(), t});
    return in[0]->reshaped(out_shape(metas));
  }
};

class UnsqueezeOp : public SqueezeOp {
 public:
  using SqueezeOp::SqueezeOp;
  Shape out_shape(const std::vector<ValueMeta>& in) override {
    bool given = false;
    auto axes = axes_of(*this, opset_, in, given);
    const Shape& s = in[0].shape;
    const auto r = static_cast<std::int64_t>(s.size() + axes.size());
    std::vector<bool> insert(static_cast<std::size_t>(r), false);
    for (auto a : axes) {
      a = normalize_axis(a, r, *this, "Unsqueeze");
      if (insert[a]) error("Unsqueeze has a repeated axis");
      insert[a] = true;
    }
    Shape out;
    std::size_t j = 0;
    for (std::int64_t i = 0; i < r; ++i) out.push_back(insert[i] ? 1 : s.at(j++));
    return out;
  }
};

class TransposeOp : public ValueOp {
 public:
  TransposeOp(const graph::Node& n, std::int64_t opset, Backend b) : ValueOp(n, opset), backend_(b) {}
  std::string kernel() const override {
    return backend_ == Backend::kFast ? "threaded strided copy" : "reference";
  }
  void run(Context& ctx, const std::vector<const Tensor*>& in, const std::vector<Tensor*>& out) override {
    if (backend_ != Backend::kFast) {
      ValueOp::run(ctx, in, out);
      return;
    }
    kernels::fast::transpose_into(*in[0], perm(in[0]->rank()), *out[0], *ctx.pool);
  }
  Shape out_shape(const std::vector<ValueMeta>& in) override {
    auto p = perm(in[0].shape.size());
    Shape out;
    for (auto d : p) {
      if (d < 0 || d >= static_cast<std::int64_t>(in[0].shape.size())) error("Transpose perm out of range");
      out.push_back(in[0].shape[d]);
    }
    return out;
  }
  Tensor compute(const std::vector<const Tensor*>& in) override {
    return kernels::ref::transpose(*in[0], perm(in[0]->rank()));
  }

 private:
  std::vector<std::int64_t> perm(std::size_t r) const {
    std::vector<std::int64_t> def(r);
    for (std::size_t i = 0; i < r; ++i) def[i] = static_cast<std::int64_t>(r - 1 - i);
    return node_.get_ints("perm", def);
  }
  Backend backend_;
};

class ConcatOp : public ValueOp {
 public:
  using ValueOp::ValueOp;
  // Along channels, per-sample chunks are contiguous in NCHW and in nChw{8,16}c alike (C % block == 0).
  LayoutRule layout_rule(const std::vector<ValueMeta>& in, const std::vector<ValueMeta>& out) const override {
    const auto r = static_cast<std::int64_t>(out.at(0).shape.size());
    const std::int64_t axis = node_.get_int("axis", 0);
    return r == 4 && (axis == 1 || axis == -3) ? LayoutRule::kSame : LayoutRule::kPlainOnly;
  }
  Shape out_shape(const std::vector<ValueMeta>& in) override {
    if (in.empty()) error("Concat has no inputs");
    Shape out = in[0].shape;
    const std::int64_t axis =
        normalize_axis(node_.get_int("axis", 0), static_cast<std::int64_t>(out.size()), *this, "Concat");
    out[axis] = 0;
    for (const auto& m : in) {
      if (m.shape.size() != out.size()) error("Concat inputs differ in rank");
      out[axis] += m.shape[axis];
    }
    return out;
  }
  Tensor compute(const std::vector<const Tensor*>& in) override {
    return kernels::ref::concat(in, node_.get_int("axis", 0));
  }
  // Channels-last: the channels of one pixel are the contiguous run, so the same copy works with
  // (N*H*W) rows of C_i channels.
  bool handles_channels_last() const override { return true; }
  [[nodiscard]] std::string kernel() const override { return "threaded copy"; }
  // Straight into the output: `outer` rows, each the inputs' contiguous runs one after the other (the
  // dims from the axis on in NCHW and in nChw{8,16}c alike; a pixel's channels in NHWC).
  void run(Context& ctx, const std::vector<const Tensor*>& in, const std::vector<Tensor*>& out) override {
    const Shape& y = out[0]->shape();
    const auto rank = static_cast<std::int64_t>(y.size());
    const std::int64_t axis = normalize_axis(node_.get_int("axis", 0), rank, *this, "Concat");
    const bool channels_last = out_blocked(0) && block_ == kernels::fast::kChannelsLast;
    const std::size_t elem = dtype_size(out[0]->dtype());
    std::int64_t outer = 1;
    for (std::int64_t d = 0; d < axis; ++d) outer *= y[d];
    std::vector<std::int64_t> run(in.size());  // elements per row of each input
    for (std::size_t i = 0; i < in.size(); ++i) {
      const Shape& x = in[i]->shape();
      run[i] = 1;
      for (std::int64_t d = axis; d < rank; ++d) run[i] *= x[d];
    }
    if (channels_last) {  // rank 4, axis 1
      outer = y[0] * y[2] * y[3];
      for (std::size_t i = 0; i < in.size(); ++i) run[i] = in[i]->shape()[1];
    }
    std::int64_t row = 0;
    for (const std::int64_t r : run) row += r;
    auto* dst = static_cast<std::uint8_t*>(out[0]->raw());
    ctx.pool->parallel_for(outer, [&](std::int64_t b, std::int64_t e) {
      for (std::int64_t o = b; o < e; ++o) {
        std::uint8_t* d = dst + static_cast<std::size_t>(o * row) * elem;
        for (std::size_t i = 0; i < in.size(); ++i) {
          const std::size_t bytes = static_cast<std::size_t>(run[i]) * elem;
          if (bytes == 0) continue;
          std::memcpy(d, static_cast<const std::uint8_t*>(in[i]->raw()) + static_cast<std::size_t>(o) * bytes,
                      bytes);
          d += bytes;
        }
      }
    });
  }
};

class GatherOp : public ValueOp {
 public:
  using ValueOp::ValueOp;
  Shape out_shape(const std::vector<ValueMeta>& in) override {
    const Shape& d = in.at(0).shape;
    const std::int64_t axis =
        normalize_axis(node_.get_int("axis", 0), static_cast<std::int64_t>(d.size()), *this, "Gather");
    Shape out(d.begin(), d.begin() + axis);
    out.insert(out.end(), in.at(1).shape.begin(), in.at(1).shape.end());
    out.insert(out.end(), d.begin() + axis + 1, d.end());
    return out;
  }
  Tensor compute(const std::vector<const Tensor*>& in) override {
    return kernels::ref::gather(*in[0], *in[1], node_.get_int("axis", 0));
  }
};

class CastOp : public ValueOp {
 public:
  using ValueOp::ValueOp;
  DType out_dtype(const std::vector<ValueMeta>&) override {
    switch (node_.get_int("to", 1)) {
      case 1: return DType::kFloat32;
      case 2: return DType::kUInt8;
      case 3: return DType::kInt8;
      case 6: return DType::kInt32;
      case 7: return DType::kInt64;
      case 9: return DType::kBool;
      default: error("Cast to ONNX type " + std::to_string(node_.get_int("to", 1)) + " is not supported");
    }
  }
  Shape out_shape(const std::vector<ValueMeta>& in) override { return in[0].shape; }
  Tensor compute(const std::vector<const Tensor*>& in) override {
    const DType to = out_dtype({});
    if (to == in[0]->dtype()) return *in[0];
    Tensor out(to, in[0]->shape());
    const std::int64_t n = out.numel();
    if (to == DType::kFloat32) {
      const Tensor f = in[0]->to_f32();
      std::memcpy(out.raw(), f.raw(), f.nbytes());
      return out;
    }
    std::vector<std::int64_t> v;
    if (in[0]->dtype() == DType::kFloat32) {
      // Float to integer truncates toward zero; values beyond int64 saturate and NaN becomes 0, then
      // narrower types wrap modulo 2^bits (the spec leaves out-of-range casts undefined; numpy differs
      // by target, e.g. INT32_MIN for float32 -> int32 on x86).
      const float* src = in[0]->data<float>();
      v.resize(static_cast<std::size_t>(n));
      for (std::int64_t i = 0; i < n; ++i) {
        const float x = src[i];
        if (to == DType::kBool) {
          v[i] = x != 0.0f ? 1 : 0;
        } else if (std::isnan(x)) {
          v[i] = 0;
        } else if (x >= 9.2233720368547758e18f) {
          v[i] = std::numeric_limits<std::int64_t>::max();
        } else if (x <= -9.2233720368547758e18f) {
          v[i] = std::numeric_limits<std::int64_t>::min();
        } else {
          v[i] = static_cast<std::int64_t>(x);
        }
      }
    } else {
      v = in[0]->to_i64_vector();
    }
    for (std::int64_t i = 0; i < n; ++i) {
      switch (to) {
        case DType::kInt64: out.data<std::int64_t>()[i] = v[i]; break;
        case DType::kInt32: out.data<std::int32_t>()[i] = static_cast<std::int32_t>(v[i]); break;
        case DType::kInt8: out.data<std::int8_t>()[i] = static_cast<std::int8_t>(v[i]); break;
        case DType::kUInt8: out.data<std::uint8_t>()[i] = static_cast<std::uint8_t>(v[i]); break;
        case DType::kBool: out.data<std::uint8_t>()[i] = v[i] != 0 ? 1 : 0; break;
        case DType::kFloat32: break;
      }
    }
    return out;
  }
};

class PadOp : public ValueOp {
 public:
  using ValueOp::ValueOp;
  Shape out_shape(const std::vector<ValueMeta>& in) override {
    const auto p = pads(in);
    const Shape& s = in[0].shape;
    if (p.size() != 2 * s.size()) error("Pad needs " + std::to_string(2 * s.size()) + " pad values");
    Shape out(s.size());
    for (std::size_t d = 0; d < s.size(); ++d) out[d] = s[d] + p[d] + p[d + s.size()];
    return out;
  }
  Tensor compute(const std::vector<const Tensor*>& in) override {
    std::vector<ValueMeta> metas;
    for (const Tensor* t : in)
      metas.push_back({t ? t->dtype() : DType::kFloat32, t ? t->shape() : Shape{}, t});
    const std::string mode = node_.get_string("mode", "constant");
    kernels::ref::PadMode m = kernels::ref::PadMode::kConstant;
    if (mode == "reflect")
      m = kernels::ref::PadMode::kReflect;
    else if (mode == "edge")
      m = kernels::ref::PadMode::kEdge;
    else if (mode == "wrap" && opset_ >= 19)
      m = kernels::ref::PadMode::kWrap;
    else if (mode != "constant")
      error("Pad mode '" + mode + "' is not supported");
    float value = node_.get_float("value", 0.0f);
    if (opset_ >= 11 && in.size() > 2 && in[2] && in[2]->numel() > 0)
      value = in[2]->to_f32().data<float>()[0];
    return kernels::ref::pad(*in[0], pads(metas), m, value);
  }

 private:
  std::vector<std::int64_t> pads(const std::vector<ValueMeta>& in) const {
    if (opset_ < 11) return node_.get_ints(opset_ < 2 ? "paddings" : "pads");
    if (in.size() < 2 || !in[1].value) error("Pad needs constant pads");
    if (node_.has_input(3)) error("Pad with an axes input is not supported");
    return in[1].value->to_i64_vector();
  }
};

class IdentityOp : public Op {
 public:
  using Op::Op;
  LayoutRule layout_rule(const std::vector<ValueMeta>&, const std::vector<ValueMeta>& out) const override {
    return out.size() == 1 ? LayoutRule::kSame : LayoutRule::kPlainOnly;
  }
  bool handles_channels_last() const override { return true; }
  std::vector<ValueMeta> infer(const std::vector<ValueMeta>& in) override {
    std::vector<ValueMeta> out{{in[0].dtype, in[0].shape, nullptr}};
    if (node_.outputs.size() > 1 && !node_.outputs[1].empty())
      out.push_back({DType::kBool, in[0].shape, nullptr});
    return out;
  }
  void run(Context&, const std::vector<const Tensor*>& in, const std::vector<Tensor*>& out) override {
    if (node_.op_type == "Dropout" && opset_ >= 12 && in.size() > 2 && in[2] &&
        in[2]->to_i64_vector().at(0) != 0) {
      // Training mode drops nothing at ratio 0 (torchvision 0.14's Swin exports F.dropout(p=0) so): the
      // output is the input and the mask all ones. Any other ratio would need random masks.
      const float ratio =
          in.size() > 1 && in[1] && in[1]->numel() > 0 ? in[1]->to_f32().data<float>()[0] : 0.5f;
      if (ratio != 0.0f) error("Dropout in training mode is not supported (aciq runs inference only)");
    }
    copy_into(*out[0], *in[0], *this);
    if (out.size() > 1 && out[1])
      std::memset(out[1]->raw(), 1, out[1]->nbytes());  // mask: every element kept
  }
};

}  // namespace

std::vector<OpEntry> shape_ops() {
  return {
      op_entry<ConstantOp>("Constant", "any", ""),
      op_entry<ShapeOp>("Shape", "any", ""),
      op_entry<ReshapeOp>("Reshape", "any", ""),
      op_entry<FlattenOp>("Flatten", "any", ""),
      op_entry<SqueezeOp>("Squeeze", "any", ""),
      op_entry<UnsqueezeOp>("Unsqueeze", "any", ""),
      op_entry<TransposeOp>("Transpose", "any", ""),
      op_entry<ConcatOp>("Concat", "any", ""),
      op_entry<GatherOp>("Gather", "any", ""),
      op_entry<CastOp>("Cast", "float32,int64,int32,uint8,int8,bool", ""),
      op_entry<PadOp>("Pad", "float32", ""),
      op_entry<IdentityOp>("Identity", "any", ""),
      op_entry<IdentityOp>("Dropout", "float32", ""),
  };
}

}  // namespace aciq::runtime
