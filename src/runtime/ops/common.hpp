// Helpers shared by the operator implementation files.
#pragma once

#include <algorithm>
#include <cstring>
#include <initializer_list>
#include <memory>
#include <optional>

#include "runtime/ops/op.hpp"

namespace aciq::runtime {

[[noreturn]] inline void op_error(const Op& op, const std::string& what) {
  fail(op.node().describe() + ": " + what);
}

inline void copy_into(Tensor& dst, const Tensor& src, const Op& op) {
  if (dst.numel() != src.numel() || dst.dtype() != src.dtype()) {
    op_error(op, "internal: planned output " + shape_str(dst.shape()) + " does not match computed " +
                     shape_str(src.shape()));
  }
  if (dst.raw() != src.raw() && src.nbytes() > 0) std::memcpy(dst.raw(), src.raw(), src.nbytes());
}

inline void require_f32(const Op& op, const std::vector<ValueMeta>& in, std::size_t count) {
  for (std::size_t i = 0; i < std::min(count, in.size()); ++i) {
    if (in[i].dtype != DType::kFloat32) op_error(op, "input " + std::to_string(i) + " must be float32");
  }
}

inline std::int64_t normalize_axis(std::int64_t axis, std::int64_t rank, const Op& op,
                                   const std::string& what) {
  const std::int64_t a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank) {
    op_error(op,
             what + " axis " + std::to_string(axis) + " is out of range for rank " + std::to_string(rank));
  }
  return a;
}

// A per-tensor (de)quantization an op folds into itself (fuse_dequantize_input, fuse_quantize_output);
// dtype kFloat32 means none (the operand stays float).
struct PerTensorQuant {
  DType dtype = DType::kFloat32;  // the quantized type
  float scale = 1.0f;
  std::int32_t zero = 0;
};

// The parameters of a DequantizeLinear/QuantizeLinear from its input metas (x, scale, zero point), when the
// scale and zero point are scalars known at plan time; nullopt otherwise.
inline std::optional<PerTensorQuant> per_tensor_quant(const std::vector<ValueMeta>& qdq_in) {
  if (qdq_in.size() < 2 || !qdq_in[1].value || shape_numel(qdq_in[1].shape) != 1) return std::nullopt;
  PerTensorQuant q;
  q.dtype = qdq_in[0].dtype;
  q.scale = qdq_in[1].value->to_f32().data<float>()[0];
  if (qdq_in.size() > 2 && qdq_in[2].value) {
    if (shape_numel(qdq_in[2].shape) != 1) return std::nullopt;
    q.zero = static_cast<std::int32_t>(qdq_in[2].value->to_i64_vector().at(0));
  } else if (qdq_in.size() > 2 && qdq_in[2].dtype != DType::kFloat32) {
    return std::nullopt;  // a zero point computed at run time (omitted inputs have no type)
  }
  return q;
}

// An 8-bit integer tensor (uint8/int8) widened to int32 into `dst` (resized), for the integer reference
// kernels; read straight from the storage, since this runs on every activation.
inline void widen_to_i32(const Tensor& t, std::vector<std::int32_t>& dst) {
  dst.resize(static_cast<std::size_t>(t.numel()));
  if (t.dtype() == DType::kUInt8) {
    std::copy_n(t.data<std::uint8_t>(), t.numel(), dst.begin());
  } else if (t.dtype() == DType::kInt8) {
    std::copy_n(t.data<std::int8_t>(), t.numel(), dst.begin());
  } else {
    fail("internal: widen_to_i32 expects uint8 or int8, got " + std::string(dtype_name(t.dtype())));
  }
}

// A zero point of an integer op: absent (0), a scalar repeated `count` times, or `count` values.
inline std::vector<std::int32_t> zero_points(const Op& op, const Tensor* zp, std::int64_t count,
                                             const std::string& what) {
  std::vector<std::int32_t> z(static_cast<std::size_t>(count), 0);
  if (!zp) return z;
  const std::vector<std::int64_t> v = zp->to_i64_vector();
  if (v.size() == 1) {
    std::fill(z.begin(), z.end(), static_cast<std::int32_t>(v[0]));
  } else if (static_cast<std::int64_t>(v.size()) == count) {
    std::copy(v.begin(), v.end(), z.begin());
  } else {
    op_error(op, what + " has " + std::to_string(v.size()) + " values, expected " +
                     (count == 1 ? std::string("a scalar") : "1 or " + std::to_string(count)));
  }
  return z;
}

// A float scale of an integer op: a scalar repeated `count` times, or `count` values.
inline std::vector<float> scales_of(const Op& op, const Tensor& t, std::int64_t count,
                                    const std::string& what) {
  if (t.dtype() != DType::kFloat32) op_error(op, what + " must be float32");
  std::vector<float> s(static_cast<std::size_t>(count));
  if (t.numel() == 1) {
    std::fill(s.begin(), s.end(), t.data<float>()[0]);
  } else if (t.numel() == count) {
    std::copy_n(t.data<float>(), count, s.begin());
  } else {
    op_error(op, what + " has " + std::to_string(t.numel()) + " values, expected " +
                     (count == 1 ? std::string("a scalar") : "1 or " + std::to_string(count)));
  }
  return s;
}

// The saturation bounds of an 8-bit type, and int32 values narrowed into a tensor of that type (values
// already in range, as requantize() leaves them).
inline std::pair<std::int32_t, std::int32_t> range_of_8bit(DType t) {
  return t == DType::kUInt8 ? std::pair<std::int32_t, std::int32_t>{0, 255}
                            : std::pair<std::int32_t, std::int32_t>{-128, 127};
}
inline void narrow_to_8bit(const std::vector<std::int32_t>& v, Tensor& out) {
  if (out.dtype() == DType::kUInt8) {
    std::transform(v.begin(), v.end(), out.data<std::uint8_t>(),
                   [](std::int32_t x) { return static_cast<std::uint8_t>(x); });
  } else {
    std::transform(v.begin(), v.end(), out.data<std::int8_t>(),
                   [](std::int32_t x) { return static_cast<std::int8_t>(x); });
  }
}

inline bool is_8bit(DType t) { return t == DType::kUInt8 || t == DType::kInt8; }

// The leading inputs of an integer op, named for the message, must be uint8 or int8.
inline void require_8bit(const Op& op, const std::vector<ValueMeta>& in,
                         std::initializer_list<const char*> names) {
  std::size_t i = 0;
  for (const char* name : names) {
    if (i < in.size() && !is_8bit(in[i].dtype)) {
      op_error(op, std::string(name) + " must be uint8 or int8, got " + std::string(dtype_name(in[i].dtype)));
    }
    ++i;
  }
}

// Ops whose output is a pure function of input values; the result tensor is copied into the
// planned output buffer. Shape inference evaluates the op on known values or uses infer_shape.
class ValueOp : public Op {
 public:
  using Op::Op;
  std::vector<ValueMeta> infer(const std::vector<ValueMeta>& in) override {
    return {ValueMeta{out_dtype(in), out_shape(in), nullptr}};
  }
  void run(Context&, const std::vector<const Tensor*>& in, const std::vector<Tensor*>& out) override {
    Tensor r = compute(in);
    copy_into(*out[0], r, *this);
  }

 protected:
  virtual DType out_dtype(const std::vector<ValueMeta>& in) { return in.at(0).dtype; }
  virtual Shape out_shape(const std::vector<ValueMeta>& in) = 0;
  virtual Tensor compute(const std::vector<const Tensor*>& in) = 0;
};

}  // namespace aciq::runtime
