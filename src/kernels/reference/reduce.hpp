// Reference kernels for reductions (ReduceMean/Sum/Max/Min/Prod/L1/L2/SumSquare/LogSum/LogSumExp) and
// ArgMax/ArgMin.
#pragma once

#include <cstdint>
#include <vector>

#include "aciq/core.hpp"

namespace aciq::kernels::ref {

enum class ReduceOp : std::uint8_t {
  kMean,
  kSum,
  kMax,
  kMin,
  kProd,
  kL1,
  kL2,
  kSumSquare,
  kLogSum,
  kLogSumExp
};

// Reduces x over `reduced[d]` axes; the output keeps reduced axes as 1 when keepdims, else drops
// them. Float32 accumulates in double; int64/int32 support Sum, Max, Min and Prod. An empty
// reduction yields the op's identity (0, 1, -inf/+inf as ONNX's reference does).
Tensor reduce(ReduceOp op, const Tensor& x, const std::vector<bool>& reduced, bool keepdims);

// Index of the largest (smallest) element along `axis`, int64; ties resolve to the first index, or
// the last with select_last.
Tensor arg_reduce(bool max, const Tensor& x, std::int64_t axis, bool keepdims, bool select_last);

}  // namespace aciq::kernels::ref
