// Helpers shared by the operator implementation files.
#pragma once

#include <algorithm>
#include <cstring>
#include <memory>

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
