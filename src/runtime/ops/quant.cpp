// QuantizeLinear/DequantizeLinear (opsets 10-21: per-tensor and per-axis, 8-bit types; not the float8, 4-bit,
// 16-bit or blocked forms of 19 and 21) on the reference kernels.
#include <algorithm>

#include "kernels/fast/quantize_simd.hpp"
#include "kernels/reference/quantize.hpp"
#include "runtime/ops/common.hpp"
#include "runtime/ops/registry.hpp"

namespace aciq::runtime {

namespace {

namespace ref = kernels::ref;

// Shared by both directions: input 0 is the data, 1 the float32 scale, 2 the optional zero point.
// Per-tensor parameters make the op elementwise, so any memory order works (8-bit values are only
// laid out other than plain in channels-last plans); per-axis ones index channels and need plain.
class QdqOp : public Op {
 public:
  QdqOp(const graph::Node& n, std::int64_t opset, Backend b) : Op(n, opset), backend_(b) {}
  LayoutRule layout_rule(const std::vector<ValueMeta>&, const std::vector<ValueMeta>&) const override {
    return backend_ == Backend::kFast && axis_.channels == 1 ? LayoutRule::kSame : LayoutRule::kPlainOnly;
  }
  bool handles_channels_last() const override { return true; }

  std::vector<ValueMeta> infer(const std::vector<ValueMeta>& in) override {
    if (opset_ < 10) error(node_.op_type + " needs opset 10 or later, model has " + std::to_string(opset_));
    if (in.size() < 2 || !node_.has_input(1)) error(node_.op_type + " needs x and a scale");
    if (in.size() > 3) error(node_.op_type + " takes at most 3 inputs");
    const Shape& x = in[0].shape;
    const ValueMeta& scale = in[1];
    if (scale.dtype != DType::kFloat32)
      error("scale must be float32, got " + std::string(dtype_name(scale.dtype)));
    if (scale.shape.size() > 1) error("scale must be a scalar or 1-D, got shape " + shape_str(scale.shape));
    // Opset 21's blocked quantization: one scale per block of `block_size` elements along the axis.
    if (node_.get_int("block_size", 0) != 0)
      error("blocked quantization (block_size " + std::to_string(node_.get_int("block_size", 0)) +
            ") is not supported");
    has_zp_ = node_.has_input(2);
    if (has_zp_ && in[2].shape != scale.shape &&
        !(shape_numel(in[2].shape) == 1 && shape_numel(scale.shape) == 1)) {
      error("zero point shape " + shape_str(in[2].shape) + " differs from scale shape " +
            shape_str(scale.shape));
    }
    zp_dtype_ = has_zp_ ? in[2].dtype : DType::kUInt8;
    // Opset 21's QuantizeLinear output_dtype (TensorProto type: 2 uint8, 3 int8) names the output type
    // when there is no zero point, and must agree with it when there is one.
    if (node_.op_type == "QuantizeLinear" && node_.has("output_dtype") &&
        node_.get_int("output_dtype", 0) != 0) {
      const std::int64_t t = node_.get_int("output_dtype", 0);
      if (t != 2 && t != 3)
        error("output_dtype " + std::to_string(t) + " is not supported (uint8 = 2 and int8 = 3 are)");
      const DType want = t == 2 ? DType::kUInt8 : DType::kInt8;
      if (has_zp_ && want != zp_dtype_)
        error("output_dtype " + std::string(dtype_name(want)) + " differs from the zero point's type " +
              std::string(dtype_name(zp_dtype_)));
      zp_dtype_ = want;
    }
    const std::int64_t n = shape_numel(scale.shape);
    if (n == 1) {
      axis_ = {1, 1, shape_numel(x)};
    } else {
      if (opset_ < 13) error("per-axis scales need opset 13 or later, model has " + std::to_string(opset_));
      const auto r = static_cast<std::int64_t>(x.size());
      std::int64_t axis = node_.get_int("axis", 1);
      if (axis < -r || axis >= r)
        error("axis " + std::to_string(axis) + " is out of range for " + shape_str(x));
      if (axis < 0) axis += r;
      if (x[axis] != n) {
        error("scale has " + std::to_string(n) + " elements, input " + shape_str(x) + " has " +
              std::to_string(x[axis]) + " along axis " + std::to_string(axis));
      }
      axis_ = {1, n, 1};
      for (std::int64_t d = 0; d < r; ++d) {
        if (d < axis) axis_.outer *= x[d];
        if (d > axis) axis_.inner *= x[d];
      }
    }
    return {ValueMeta{out_dtype(in[0].dtype), x, nullptr}};
  }

  void run(Context& ctx, const std::vector<const Tensor*>& in, const std::vector<Tensor*>& out) override {
    const float* scale = in[1]->data<float>();
    const void* zp = has_zp_ ? in[2]->raw() : nullptr;
    if (backend_ == Backend::kReference) {
      kernel(axis_, 0, in[0]->raw(), scale, zp, out[0]->raw());
      return;
    }
    // Fast path: the same kernel on independent slices (bit-identical to the reference by construction):
    // rows of one channel for per-axis parameters, chunks of the flat tensor for per-tensor ones.
    constexpr std::int64_t kChunk = 1 << 14;
    const bool per_tensor = axis_.channels == 1;
    const std::int64_t len = per_tensor ? kChunk : axis_.inner;
    const std::int64_t total = axis_.outer * axis_.channels * axis_.inner;
    const std::int64_t rows = per_tensor ? (total + kChunk - 1) / kChunk : axis_.outer * axis_.channels;
    ctx.pool->parallel_for(rows, [&](std::int64_t b, std::int64_t e) {
      for (std::int64_t r = b; r < e; ++r) {
        const std::int64_t begin = r * len;
        const std::int64_t c = per_tensor ? 0 : r % axis_.channels;
        kernel({1, 1, std::min(len, total - begin)}, begin, in[0]->raw(), scale + c, zp, out[0]->raw(), c);
      }
    });
  }

 protected:
  virtual DType out_dtype(DType x) = 0;
  // Runs the kernel on `a` starting at element `begin` of x/y, with parameters from channel `c`.
  virtual void kernel(const ref::QuantAxis& a, std::int64_t begin, const void* x, const float* scale,
                      const void* zp, void* y, std::int64_t c = 0) = 0;

  Backend backend_;
  bool has_zp_ = false;
  DType zp_dtype_ = DType::kUInt8;
  ref::QuantAxis axis_;
};

template <typename T>
const T* at(const void* p, std::int64_t i) {
  return p ? static_cast<const T*>(p) + i : nullptr;
}
template <typename T>
T* at(void* p, std::int64_t i) {
  return static_cast<T*>(p) + i;
}

class QuantizeLinearOp : public QdqOp {
 public:
  using QdqOp::QdqOp;

 protected:
  DType out_dtype(DType x) override {
    if (x != DType::kFloat32) error("input must be float32, got " + std::string(dtype_name(x)));
    if (zp_dtype_ != DType::kUInt8 && zp_dtype_ != DType::kInt8) {
      error("zero point (output type) must be uint8 or int8, got " + std::string(dtype_name(zp_dtype_)));
    }
    return zp_dtype_;
  }
  void kernel(const ref::QuantAxis& a, std::int64_t begin, const void* x, const float* scale, const void* zp,
              void* y, std::int64_t c) override {
    const float* xs = at<float>(x, begin);
    if (backend_ == Backend::kFast) {
      // The fast backend calls with one channel's slice (a = {1, 1, len}): one scale, one zero point.
      if (zp_dtype_ == DType::kInt8) {
        const std::int8_t z = zp ? *at<std::int8_t>(zp, c) : std::int8_t{0};
        kernels::fast::quantize_linear_simd(xs, scale[0], z, at<std::int8_t>(y, begin), a.inner);
      } else {
        const std::uint8_t z = zp ? *at<std::uint8_t>(zp, c) : std::uint8_t{0};
        kernels::fast::quantize_linear_simd(xs, scale[0], z, at<std::uint8_t>(y, begin), a.inner);
      }
      return;
    }
    if (zp_dtype_ == DType::kInt8) {
      ref::quantize_linear(a, xs, scale, at<std::int8_t>(zp, c), at<std::int8_t>(y, begin));
    } else {
      ref::quantize_linear(a, xs, scale, at<std::uint8_t>(zp, c), at<std::uint8_t>(y, begin));
    }
  }

 public:
  [[nodiscard]] std::string kernel() const override {
    return backend_ == Backend::kFast ? "Highway" : "reference";
  }
};

class DequantizeLinearOp : public QdqOp {
 public:
  using QdqOp::QdqOp;

 protected:
  DType out_dtype(DType x) override {
    if (x != DType::kUInt8 && x != DType::kInt8 && x != DType::kInt32) {
      error("input must be uint8, int8 or int32, got " + std::string(dtype_name(x)));
    }
    if (has_zp_ && zp_dtype_ != x) {
      error("zero point is " + std::string(dtype_name(zp_dtype_)) + ", input is " +
            std::string(dtype_name(x)));
    }
    x_dtype_ = x;
    return DType::kFloat32;
  }

 public:
  [[nodiscard]] std::string kernel() const override {
    return backend_ == Backend::kFast && x_dtype_ != DType::kInt32 ? "Highway" : "reference";
  }

 protected:
  void kernel(const ref::QuantAxis& a, std::int64_t begin, const void* x, const float* scale, const void* zp,
              void* y, std::int64_t c) override {
    float* ys = at<float>(y, begin);
    if (backend_ == Backend::kFast && x_dtype_ != DType::kInt32) {
      // The fast backend calls with one channel's slice (a = {1, 1, len}): one scale, one zero point.
      if (x_dtype_ == DType::kInt8) {
        const std::int8_t z = zp ? *at<std::int8_t>(zp, c) : std::int8_t{0};
        kernels::fast::dequantize_linear_simd(at<std::int8_t>(x, begin), scale[0], z, ys, a.inner);
      } else {
        const std::uint8_t z = zp ? *at<std::uint8_t>(zp, c) : std::uint8_t{0};
        kernels::fast::dequantize_linear_simd(at<std::uint8_t>(x, begin), scale[0], z, ys, a.inner);
      }
      return;
    }
    switch (x_dtype_) {
      case DType::kInt8:
        ref::dequantize_linear(a, at<std::int8_t>(x, begin), scale, at<std::int8_t>(zp, c), ys);
        break;
      case DType::kInt32:
        ref::dequantize_linear(a, at<std::int32_t>(x, begin), scale, at<std::int32_t>(zp, c), ys);
        break;
      default:
        ref::dequantize_linear(a, at<std::uint8_t>(x, begin), scale, at<std::uint8_t>(zp, c), ys);
        break;
    }
  }

 private:
  DType x_dtype_ = DType::kUInt8;
};

}  // namespace

std::vector<OpEntry> quant_ops() {
  return {
      op_entry<QuantizeLinearOp>("QuantizeLinear", "float32", "", 10),
      op_entry<DequantizeLinearOp>("DequantizeLinear", "uint8,int8,int32", "", 10),
  };
}

}  // namespace aciq::runtime
