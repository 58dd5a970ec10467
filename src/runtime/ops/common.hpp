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

}  // namespace aciq::runtime
