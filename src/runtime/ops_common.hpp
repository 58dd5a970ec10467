// Helpers shared by the operator implementation files.
#pragma once

#include <cstring>
#include <memory>

#include "runtime/ops.hpp"

namespace aciq::runtime {

[[noreturn]] inline void op_error(const Op& op, const std::string& what) { fail(op.node().describe() + ": " + what); }

inline void copy_into(Tensor& dst, const Tensor& src, const Op& op) {
  if (dst.numel() != src.numel() || dst.dtype() != src.dtype()) {
    op_error(op, "internal: planned output " + shape_str(dst.shape()) + " does not match computed " + shape_str(src.shape()));
  }
  if (dst.raw() != src.raw() && src.nbytes() > 0) std::memcpy(dst.raw(), src.raw(), src.nbytes());
}

std::unique_ptr<Op> make_shape_op(const graph::Node& n, std::int64_t opset);
std::unique_ptr<Op> make_compute_op(const graph::Node& n, std::int64_t opset, Backend backend);
std::unique_ptr<Op> make_quant_op(const graph::Node& n, std::int64_t opset, Backend backend);

}  // namespace aciq::runtime
