// Reference kernels for reductions and ArgMax/ArgMin: one pass in row-major order, double accumulators.
#include "kernels/reference/reduce.hpp"

#include <cmath>
#include <limits>

#include "kernels/reference/math.hpp"

namespace aciq::kernels::ref {

namespace {

Shape reduced_shape(const Shape& s, const std::vector<bool>& reduced, bool keepdims) {
  Shape out;
  for (std::size_t d = 0; d < s.size(); ++d) {
    if (!reduced[d]) {
      out.push_back(s[d]);
    } else if (keepdims) {
      out.push_back(1);
    }
  }
  return out;
}

double identity(ReduceOp op) {
  switch (op) {
    case ReduceOp::kMax: return -std::numeric_limits<double>::infinity();
    case ReduceOp::kMin: return std::numeric_limits<double>::infinity();
    case ReduceOp::kProd: return 1.0;
    default: return 0.0;
  }
}

double accumulate(ReduceOp op, double acc, double v) {
  switch (op) {
    case ReduceOp::kMax: return std::isnan(v) || v > acc ? v : acc;
    case ReduceOp::kMin: return std::isnan(v) || v < acc ? v : acc;
    case ReduceOp::kProd: return acc * v;
    case ReduceOp::kL1: return acc + std::fabs(v);
    case ReduceOp::kL2:
    case ReduceOp::kSumSquare: return acc + v * v;
    case ReduceOp::kLogSumExp: return acc + std::exp(v);
    default: return acc + v;
  }
}

double finish(ReduceOp op, double acc, std::int64_t count) {
  switch (op) {
    case ReduceOp::kMean: return acc / static_cast<double>(count);
    case ReduceOp::kL2: return std::sqrt(acc);
    case ReduceOp::kLogSum:
    case ReduceOp::kLogSumExp: return std::log(acc);
    default: return acc;
  }
}

// The output element each input element reduces into: the input's strides with reduced axes zeroed,
// applied to the (keepdims) output.
std::vector<std::int64_t> output_strides(const Shape& s, const std::vector<bool>& reduced) {
  Shape kept = reduced_shape(s, reduced, true);
  std::vector<std::int64_t> st(s.size(), 0);
  std::int64_t m = 1;
  for (std::size_t d = s.size(); d-- > 0;) {
    st[d] = reduced[d] ? 0 : m;
    m *= kept[d];
  }
  return st;
}

template <typename T>
Tensor reduce_typed(ReduceOp op, const Tensor& x, const std::vector<bool>& reduced, bool keepdims) {
  const Shape out_shape = reduced_shape(x.shape(), reduced, keepdims);
  const std::int64_t out_n = shape_numel(out_shape);
  std::vector<double> acc(static_cast<std::size_t>(out_n), identity(op));
  std::vector<std::int64_t> iacc;
  const bool integral = !std::is_floating_point_v<T>;
  if (integral) {
    if (op != ReduceOp::kSum && op != ReduceOp::kMax && op != ReduceOp::kMin && op != ReduceOp::kProd)
      fail("this reduction needs float32 input");
    const std::int64_t init = op == ReduceOp::kMax    ? std::numeric_limits<std::int64_t>::min()
                              : op == ReduceOp::kMin  ? std::numeric_limits<std::int64_t>::max()
                              : op == ReduceOp::kProd ? 1
                                                      : 0;
    iacc.assign(static_cast<std::size_t>(out_n), init);
  }
  std::int64_t count = 1;
  for (std::size_t d = 0; d < x.rank(); ++d) count *= reduced[d] ? x.shape()[d] : 1;
  const T* px = x.data<T>();
  // LogSumExp = m + log(sum exp(x - m)) with m the maximum, so large inputs do not overflow exp.
  std::vector<double> shift(static_cast<std::size_t>(out_n), 0.0);
  if (op == ReduceOp::kLogSumExp) {
    const Tensor m = reduce_typed<T>(ReduceOp::kMax, x, reduced, true);
    for (std::int64_t i = 0; i < out_n; ++i) {
      const double v = static_cast<double>(m.data<T>()[i]);
      shift[static_cast<std::size_t>(i)] = std::isfinite(v) ? v : 0.0;
    }
  }
  for_each_broadcast(
      x.shape(), {output_strides(x.shape(), reduced)}, [&](std::int64_t i, const std::int64_t* off) {
        if constexpr (std::is_floating_point_v<T>) {
          const double v = static_cast<double>(px[i]);
          acc[off[0]] = accumulate(op, acc[off[0]], op == ReduceOp::kLogSumExp ? v - shift[off[0]] : v);
        } else {
          std::int64_t& a = iacc[off[0]];
          const auto v = static_cast<std::int64_t>(px[i]);
          a = op == ReduceOp::kMax    ? std::max(a, v)
              : op == ReduceOp::kMin  ? std::min(a, v)
              : op == ReduceOp::kProd ? a * v
                                      : a + v;
        }
      });
  Tensor y(x.dtype(), out_shape);
  for (std::int64_t i = 0; i < out_n; ++i) {
    if constexpr (std::is_floating_point_v<T>) {
      const double r = finish(op, acc[i], count);
      y.data<T>()[i] =
          static_cast<T>(op == ReduceOp::kLogSumExp ? r + shift[static_cast<std::size_t>(i)] : r);
    } else {
      y.data<T>()[i] = static_cast<T>(iacc[i]);
    }
  }
  return y;
}

template <typename T>
Tensor arg_typed(bool max, const Tensor& x, std::int64_t axis, bool keepdims, bool select_last) {
  const Shape& s = x.shape();
  std::int64_t outer = 1, inner = 1;
  for (std::int64_t d = 0; d < axis; ++d) outer *= s[d];
  for (std::size_t d = axis + 1; d < s.size(); ++d) inner *= s[d];
  const std::int64_t len = s[axis];
  if (len == 0) fail("ArgMax/ArgMin over an empty axis");
  Shape out = s;
  if (keepdims) {
    out[axis] = 1;
  } else {
    out.erase(out.begin() + axis);
  }
  Tensor y(DType::kInt64, out);
  const T* px = x.data<T>();
  for (std::int64_t o = 0; o < outer; ++o) {
    for (std::int64_t in = 0; in < inner; ++in) {
      std::int64_t best = 0;
      T bv = px[o * len * inner + in];
      for (std::int64_t k = 1; k < len; ++k) {
        const T v = px[(o * len + k) * inner + in];
        const bool better = max ? (select_last ? v >= bv : v > bv) : (select_last ? v <= bv : v < bv);
        if (better) {
          best = k;
          bv = v;
        }
      }
      y.data<std::int64_t>()[o * inner + in] = best;
    }
  }
  return y;
}

}  // namespace

Tensor reduce(ReduceOp op, const Tensor& x, const std::vector<bool>& reduced, bool keepdims) {
  if (reduced.size() != x.rank()) fail("reduce: internal: one flag per dimension expected");
  switch (x.dtype()) {
    case DType::kFloat32: return reduce_typed<float>(op, x, reduced, keepdims);
    case DType::kInt64: return reduce_typed<std::int64_t>(op, x, reduced, keepdims);
    case DType::kInt32: return reduce_typed<std::int32_t>(op, x, reduced, keepdims);
    default: fail("reduction on unsupported dtype " + std::string(dtype_name(x.dtype())));
  }
}

Tensor arg_reduce(bool max, const Tensor& x, std::int64_t axis, bool keepdims, bool select_last) {
  switch (x.dtype()) {
    case DType::kFloat32: return arg_typed<float>(max, x, axis, keepdims, select_last);
    case DType::kInt64: return arg_typed<std::int64_t>(max, x, axis, keepdims, select_last);
    case DType::kInt32: return arg_typed<std::int32_t>(max, x, axis, keepdims, select_last);
    default: fail("ArgMax/ArgMin on unsupported dtype " + std::string(dtype_name(x.dtype())));
  }
}

}  // namespace aciq::kernels::ref
