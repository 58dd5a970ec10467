// Fast elementwise kernels: broadcasting float arithmetic and unary math, threaded, with the reference
// kernels of src/kernels/reference/ as their oracle.
#pragma once

#include <cstdint>

#include "aciq/core.hpp"
#include "kernels/reference/math.hpp"
#include "kernels/reference/reference.hpp"

namespace aciq::kernels::fast {

// y = a op b with numpy broadcasting (y has the broadcast shape). Bit-identical to ref::binary: the
// same float operation per element; only the walk differs (dimensions that broadcast alike are
// merged, the innermost run is a unit-stride or scalar loop the compiler vectorizes, rows are threaded).
void binary_broadcast(ref::BinaryOp op, const Tensor& a, const Tensor& b, Tensor& y, ThreadPool& pool);

// y = op(x) in float arithmetic (std:: float functions), threaded. Agrees with ref::math (double)
// within a few float ulps; Abs, Neg, Floor, Ceil, Round, Sign, Reciprocal and Sqrt are exact
// (correctly rounded) and therefore bit-identical.
void math(ref::MathOp op, const ref::MathParams& p, const float* x, float* y, std::int64_t n,
          ThreadPool& pool);

// ref::unary on the fast path: Sigmoid as 1 / (1 + expf(-x)) in float (within 4 ulps of the double
// reference), the other functions as the reference (bit-identical), threaded.
void unary(ref::UnaryOp op, const ref::UnaryParams& p, const float* x, float* y, std::int64_t n,
           ThreadPool& pool);

// x ** e for a scalar exponent: e = 2 is x * x (the float product is the correctly rounded square, as
// the reference's pow in double rounded to float), else std::pow in double per element; threaded.
void pow_scalar(const float* x, double e, float* y, std::int64_t n, ThreadPool& pool);

}  // namespace aciq::kernels::fast
