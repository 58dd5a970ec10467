// Reference kernels for elementwise math: unary functions, n-ary broadcasting, comparisons, Where.
#pragma once

#include <cstdint>
#include <vector>

#include "aciq/core.hpp"

namespace aciq::kernels::ref {

enum class MathOp : std::uint8_t {
  kAbs,
  kNeg,
  kExp,
  kLog,
  kSqrt,
  kReciprocal,
  kFloor,
  kCeil,
  kRound,
  kSign,
  kTanh,
  kErf,
  kSin,
  kCos,
  kSoftplus,
  kSoftsign,
  kElu,
  kSelu,
  kCelu,
  kMish,
  kThresholdedRelu,
  kGelu,      // opset 20: x/2 (1 + erf(x / sqrt 2))
  kGeluTanh,  // opset 20, approximate = "tanh": x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
};
struct MathParams {
  float alpha = 0.0f;  // Elu/Selu/Celu alpha, ThresholdedRelu threshold
  float gamma = 0.0f;  // Selu gamma
};
// y = op(x) on float32, elementwise (x and y may alias).
void math(MathOp op, const MathParams& p, const float* x, float* y, std::int64_t n);
// Abs, Neg and Sign on integer tensors (shape arithmetic); other ops throw.
Tensor math_int(MathOp op, const Tensor& x);

// Strides of `shape` aligned right against an output of rank `rank`, with 0 on broadcast dims.
std::vector<std::int64_t> broadcast_strides(const Shape& shape, std::size_t rank);
// Numpy broadcast of any number of shapes; throws when incompatible.
Shape broadcast_all(const std::vector<Shape>& shapes);

// Calls f(i, offsets) for every output element i of `out` in row-major order, with offsets[k] the
// element of operand k (given by its broadcast strides) that output element reads.
template <class F>
void for_each_broadcast(const Shape& out, const std::vector<std::vector<std::int64_t>>& strides, F&& f) {
  const std::size_t r = out.size(), k = strides.size();
  std::vector<std::int64_t> idx(r, 0), off(k, 0);
  const std::int64_t n = shape_numel(out);
  for (std::int64_t i = 0; i < n; ++i) {
    f(i, off.data());
    for (std::size_t d = r; d-- > 0;) {
      if (++idx[d] < out[d]) {
        for (std::size_t j = 0; j < k; ++j) off[j] += strides[j][d];
        break;
      }
      for (std::size_t j = 0; j < k; ++j) off[j] -= (out[d] - 1) * strides[j][d];
      idx[d] = 0;
    }
  }
}

// Min, Max, Sum, Mean of one or more broadcast operands of one dtype (Mean: float32 only).
enum class VariadicOp : std::uint8_t { kMin, kMax, kSum, kMean };
Tensor variadic(VariadicOp op, const std::vector<const Tensor*>& xs);

// Comparisons of two broadcast operands of one dtype; bool result.
enum class CompareOp : std::uint8_t { kEqual, kLess, kLessOrEqual, kGreater, kGreaterOrEqual };
Tensor compare(CompareOp op, const Tensor& a, const Tensor& b);

// And, Or, Xor of two broadcast bool operands; Not of one.
enum class LogicalOp : std::uint8_t { kAnd, kOr, kXor };
Tensor logical(LogicalOp op, const Tensor& a, const Tensor& b);
Tensor logical_not(const Tensor& x);

// cond ? x : y with three-way broadcasting; x and y of one dtype, cond bool.
Tensor where(const Tensor& cond, const Tensor& x, const Tensor& y);

// a ** b: float32 base with a float32 or integer exponent, or integer base and exponent
// (result of the base's dtype, as ONNX Pow-12+).
Tensor pow(const Tensor& a, const Tensor& b);

// a mod b with broadcasting: fmod (the dividend's sign, C fmod) or, for integers, Python's
// modulo (the divisor's sign); integer division by zero throws.
Tensor mod(const Tensor& a, const Tensor& b, bool fmod);

// max(0, x) + slope * min(0, x), slope broadcast to x's shape (unidirectionally).
Tensor prelu(const Tensor& x, const Tensor& slope);

}  // namespace aciq::kernels::ref
