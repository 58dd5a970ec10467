// Fast Transpose and contiguous-axis reductions: merged dimensions, unit-stride inner loops, threads.
#include "kernels/fast/layout.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels/reference/reference.hpp"

namespace aciq::kernels::fast {

namespace {

template <typename T>
void copy_strided(const T* __restrict src, std::int64_t stride, T* __restrict dst, std::int64_t n) {
  if (stride == 1) {
    std::memcpy(dst, src, static_cast<std::size_t>(n) * sizeof(T));
    return;
  }
  for (std::int64_t i = 0; i < n; ++i) dst[i] = src[i * stride];
}

// y[j...] = x[base + sum_d j_d * strides[d]] for the output dims `dims` (row-major in y): size-1 dims
// dropped, runs that stay contiguous in x merged, the innermost run copied by element size; threaded
// over output rows. Transpose and Slice are both such a copy.
void strided_copy(const Tensor& x, std::int64_t base, const std::vector<std::int64_t>& out_dims,
                  const std::vector<std::int64_t>& out_strides, Tensor& y, ThreadPool& pool) {
  std::vector<std::int64_t> dims, strides;
  for (std::size_t i = 0; i < out_dims.size(); ++i) {
    if (out_dims[i] == 1) continue;
    const std::int64_t st = out_strides[i];
    if (!dims.empty() && strides.back() == st * out_dims[i]) {
      dims.back() *= out_dims[i];
      strides.back() = st;
    } else {
      dims.push_back(out_dims[i]);
      strides.push_back(st);
    }
  }
  if (y.numel() == 0) return;
  const auto es = static_cast<std::int64_t>(dtype_size(x.dtype()));
  const auto* src = static_cast<const std::byte*>(x.raw()) + base * es;
  auto* dst = static_cast<std::byte*>(y.raw());
  if (dims.empty()) {
    std::memcpy(dst, src, static_cast<std::size_t>(es));
    return;
  }
  const std::size_t k = dims.size() - 1;
  const std::int64_t inner = dims[k], istride = strides[k];
  std::int64_t rows = 1;
  for (std::size_t d = 0; d < k; ++d) rows *= dims[d];
  auto do_rows = [&](std::int64_t r0, std::int64_t r1) {
    for (std::int64_t row = r0; row < r1; ++row) {
      std::int64_t rest = row, off = 0;
      for (std::size_t d = k; d-- > 0;) {
        off += (rest % dims[d]) * strides[d];
        rest /= dims[d];
      }
      std::byte* out = dst + row * inner * es;
      const std::byte* in = src + off * es;
      if (es == 4) {
        copy_strided(reinterpret_cast<const std::uint32_t*>(in), istride,
                     reinterpret_cast<std::uint32_t*>(out), inner);
      } else if (es == 8) {
        copy_strided(reinterpret_cast<const std::uint64_t*>(in), istride,
                     reinterpret_cast<std::uint64_t*>(out), inner);
      } else {
        for (std::int64_t i = 0; i < inner; ++i)
          std::memcpy(out + i * es, in + i * istride * es, static_cast<std::size_t>(es));
      }
    }
  };
  if (y.numel() < (1 << 15) || rows == 1) {
    do_rows(0, rows);
  } else {
    pool.parallel_for(rows, do_rows);
  }
}

}  // namespace

Tensor transpose(const Tensor& x, const std::vector<std::int64_t>& perm, ThreadPool& pool) {
  const std::size_t r = x.rank();
  if (perm.size() != r) return ref::transpose(x, perm);  // the reference reports the error
  std::vector<bool> seen(r, false);
  Shape out_shape;
  for (auto p : perm) {
    if (p < 0 || p >= static_cast<std::int64_t>(r) || seen[p]) return ref::transpose(x, perm);
    seen[p] = true;
    out_shape.push_back(x.shape()[p]);
  }
  Tensor y(x.dtype(), out_shape);
  transpose_into(x, perm, y, pool);
  return y;
}

void transpose_into(const Tensor& x, const std::vector<std::int64_t>& perm, Tensor& y, ThreadPool& pool) {
  const std::size_t r = x.rank();
  std::vector<bool> used(r, false);
  for (auto p : perm) {
    if (perm.size() != r || p < 0 || p >= static_cast<std::int64_t>(r) || used[p])
      fail("Transpose: invalid perm");
    used[p] = true;
  }
  const Shape& s = x.shape();
  std::vector<std::int64_t> in_strides(r, 1);
  for (std::size_t i = r; i-- > 1;) in_strides[i - 1] = in_strides[i] * s[i];
  std::vector<std::int64_t> dims, strides;
  for (std::size_t i = 0; i < r; ++i) {
    dims.push_back(s[perm[i]]);
    strides.push_back(in_strides[perm[i]]);
  }
  if (y.dtype() != x.dtype() || y.shape() != Shape(dims)) fail("fast transpose: output of the wrong shape");
  strided_copy(x, 0, dims, strides, y, pool);
}

void slice_into(const Tensor& x, const std::vector<ref::SliceAxis>& axes, Tensor& y, ThreadPool& pool) {
  const Shape& s = x.shape();
  if (axes.size() != s.size()) fail("fast slice: one axis per dimension expected");
  std::vector<std::int64_t> in_strides(s.size(), 1);
  for (std::size_t i = s.size(); i-- > 1;) in_strides[i - 1] = in_strides[i] * s[i];
  std::vector<std::int64_t> dims, strides;
  std::int64_t base = 0;
  for (std::size_t d = 0; d < s.size(); ++d) {
    dims.push_back(axes[d].count);
    strides.push_back(axes[d].step * in_strides[d]);
    if (axes[d].count > 0) base += axes[d].start * in_strides[d];
  }
  if (y.dtype() != x.dtype() || y.shape() != Shape(dims)) fail("fast slice: output of the wrong shape");
  strided_copy(x, base, dims, strides, y, pool);
}

std::optional<Tensor> reduce_contiguous(ref::ReduceOp op, const Tensor& x, const std::vector<bool>& reduced,
                                        bool keepdims, ThreadPool& pool) {
  if (x.dtype() != DType::kFloat32 || reduced.size() != x.rank()) return std::nullopt;
  if (op != ref::ReduceOp::kMean && op != ref::ReduceOp::kSum && op != ref::ReduceOp::kSumSquare)
    return std::nullopt;
  const Shape& s = x.shape();
  std::size_t first = s.size(), last = 0;
  for (std::size_t d = 0; d < s.size(); ++d) {
    if (reduced[d] && s[d] != 1) {
      first = std::min(first, d);
      last = d;
    }
  }
  if (first == s.size()) return std::nullopt;  // nothing of size > 1 reduced: leave it to the reference
  for (std::size_t d = first; d <= last; ++d) {
    if (!reduced[d] && s[d] != 1) return std::nullopt;  // a kept axis inside the run
  }
  std::int64_t outer = 1, len = 1, inner = 1;
  for (std::size_t d = 0; d < s.size(); ++d) {
    if (d < first) {
      outer *= s[d];
    } else if (d <= last) {
      len *= reduced[d] ? s[d] : 1;
    } else {
      inner *= s[d];
    }
  }
  Shape out;
  std::int64_t count = 1;
  for (std::size_t d = 0; d < s.size(); ++d) {
    if (!reduced[d]) {
      out.push_back(s[d]);
    } else {
      count *= s[d];
      if (keepdims) out.push_back(1);
    }
  }
  // Reduced axes of size 1 outside the run must not hide kept axes: outer/inner above counted them
  // as kept, which is what they are for the data layout.
  Tensor y(DType::kFloat32, out);
  const float* px = x.data<float>();
  float* py = y.data<float>();
  const bool square = op == ref::ReduceOp::kSumSquare;
  // The reference adds the elements of each output in input order (k ascending) into a double.
  auto do_outer = [&](std::int64_t o0, std::int64_t o1) {
    std::vector<double> acc(static_cast<std::size_t>(inner));
    for (std::int64_t o = o0; o < o1; ++o) {
      std::fill(acc.begin(), acc.end(), 0.0);
      const float* base = px + o * len * inner;
      for (std::int64_t kk = 0; kk < len; ++kk) {
        const float* row = base + kk * inner;
        for (std::int64_t i = 0; i < inner; ++i) {
          const double v = row[i];
          acc[i] += square ? v * v : v;
        }
      }
      for (std::int64_t i = 0; i < inner; ++i) {
        py[o * inner + i] =
            static_cast<float>(op == ref::ReduceOp::kMean ? acc[i] / static_cast<double>(count) : acc[i]);
      }
    }
  };
  if (x.numel() < (1 << 15) || outer == 1) {
    do_outer(0, outer);
  } else {
    pool.parallel_for(outer, do_outer);
  }
  return y;
}

}  // namespace aciq::kernels::fast
