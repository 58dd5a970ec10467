// Fast elementwise kernels (broadcasting arithmetic, unary math): merged dimensions, vectorizable inner
// loops, rows split across the thread pool.
#include "kernels/fast/elementwise.hpp"

#include <algorithm>
#include <cmath>

#include "kernels/fast/simd_math.hpp"

namespace aciq::kernels::fast {

namespace {

// Below this many elements one thread does the work (waking the pool costs more).
constexpr std::int64_t kParallelMin = 1 << 15;

template <ref::BinaryOp kOp>
inline float apply(float a, float b) {
  if constexpr (kOp == ref::BinaryOp::kAdd) return a + b;
  if constexpr (kOp == ref::BinaryOp::kSub) return a - b;
  if constexpr (kOp == ref::BinaryOp::kMul) return a * b;
  return a / b;
}

// The innermost run: sa/sb are 1 (contiguous) or 0 (broadcast scalar).
template <ref::BinaryOp kOp>
void run_row(const float* __restrict a, std::int64_t sa, const float* __restrict b, std::int64_t sb,
             float* __restrict y, std::int64_t n) {
  if (sa && sb) {
    for (std::int64_t i = 0; i < n; ++i) y[i] = apply<kOp>(a[i], b[i]);
  } else if (sa) {
    const float s = b[0];
    for (std::int64_t i = 0; i < n; ++i) y[i] = apply<kOp>(a[i], s);
  } else if (sb) {
    const float s = a[0];
    for (std::int64_t i = 0; i < n; ++i) y[i] = apply<kOp>(s, b[i]);
  } else {
    const float v = apply<kOp>(a[0], b[0]);
    for (std::int64_t i = 0; i < n; ++i) y[i] = v;
  }
}

struct Walk {
  std::vector<std::int64_t> dims, sa, sb;  // collapsed, outermost first; the last entry is the inner run
};

Walk collapse(const Shape& ys, const Shape& as, const Shape& bs) {
  const std::size_t r = ys.size();
  const auto sa = ref::broadcast_strides(as, r), sb = ref::broadcast_strides(bs, r);
  Walk w;
  for (std::size_t d = 0; d < r; ++d) {
    if (ys[d] == 1) continue;  // size-1 dims contribute nothing
    if (!w.dims.empty()) {
      // Merge into the previous dim when both operands continue it the same way: contiguous
      // (stride_prev == stride * size) or broadcast in both (0 and 0).
      const std::size_t k = w.dims.size() - 1;
      auto continues = [&](std::int64_t prev, std::int64_t cur) {
        return (prev == 0 && cur == 0) || (cur != 0 && prev == cur * ys[d]);
      };
      if (continues(w.sa[k], sa[d]) && continues(w.sb[k], sb[d])) {
        w.dims[k] *= ys[d];
        w.sa[k] = sa[d];
        w.sb[k] = sb[d];
        continue;
      }
    }
    w.dims.push_back(ys[d]);
    w.sa.push_back(sa[d]);
    w.sb.push_back(sb[d]);
  }
  if (w.dims.empty()) {
    w.dims = {1};
    w.sa = {0};
    w.sb = {0};
  }
  return w;
}

template <ref::BinaryOp kOp>
void broadcast_typed(const Walk& w, const float* a, const float* b, float* y, ThreadPool& pool) {
  const std::size_t k = w.dims.size() - 1;
  const std::int64_t inner = w.dims[k];
  std::int64_t rows = 1;
  for (std::size_t d = 0; d < k; ++d) rows *= w.dims[d];
  auto do_rows = [&](std::int64_t r0, std::int64_t r1) {
    for (std::int64_t r = r0; r < r1; ++r) {
      std::int64_t rest = r, oa = 0, ob = 0;
      for (std::size_t d = k; d-- > 0;) {
        const std::int64_t i = rest % w.dims[d];
        rest /= w.dims[d];
        oa += i * w.sa[d];
        ob += i * w.sb[d];
      }
      run_row<kOp>(a + oa, w.sa[k], b + ob, w.sb[k], y + r * inner, inner);
    }
  };
  if (rows * inner < kParallelMin || rows == 1) {
    do_rows(0, rows);
  } else {
    pool.parallel_for(rows, do_rows);
  }
}

// Splits [0, n) across the pool in cache-sized chunks.
template <typename F>
void parallel_elements(std::int64_t n, ThreadPool& pool, F&& f) {
  if (n < kParallelMin) {
    f(0, n);
    return;
  }
  constexpr std::int64_t kChunk = 1 << 14;
  pool.parallel_for((n + kChunk - 1) / kChunk,
                    [&](std::int64_t c0, std::int64_t c1) { f(c0 * kChunk, std::min(n, c1 * kChunk)); });
}

float softplus(float x) { return x > 0 ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x)); }

}  // namespace

void binary_broadcast(ref::BinaryOp op, const Tensor& a, const Tensor& b, Tensor& y, ThreadPool& pool) {
  if (a.dtype() != DType::kFloat32 || b.dtype() != DType::kFloat32 || y.dtype() != DType::kFloat32)
    fail("fast broadcast: float32 operands expected");
  const Walk w = collapse(y.shape(), a.shape(), b.shape());
  const float* pa = a.data<float>();
  const float* pb = b.data<float>();
  float* py = y.data<float>();
  switch (op) {
    case ref::BinaryOp::kAdd: broadcast_typed<ref::BinaryOp::kAdd>(w, pa, pb, py, pool); break;
    case ref::BinaryOp::kSub: broadcast_typed<ref::BinaryOp::kSub>(w, pa, pb, py, pool); break;
    case ref::BinaryOp::kMul: broadcast_typed<ref::BinaryOp::kMul>(w, pa, pb, py, pool); break;
    case ref::BinaryOp::kDiv: broadcast_typed<ref::BinaryOp::kDiv>(w, pa, pb, py, pool); break;
  }
}

void math(ref::MathOp op, const ref::MathParams& p, const float* x, float* y, std::int64_t n,
          ThreadPool& pool) {
  using M = ref::MathOp;
  parallel_elements(n, pool, [&](std::int64_t lo, std::int64_t hi) {
    switch (op) {
      case M::kErf:
        for (std::int64_t i = lo; i < hi; ++i) y[i] = std::erf(x[i]);
        break;
      case M::kExp:
        for (std::int64_t i = lo; i < hi; ++i) y[i] = std::exp(x[i]);
        break;
      case M::kTanh:
        for (std::int64_t i = lo; i < hi; ++i) y[i] = std::tanh(x[i]);
        break;
      case M::kLog:
        for (std::int64_t i = lo; i < hi; ++i) y[i] = std::log(x[i]);
        break;
      case M::kSqrt:
        for (std::int64_t i = lo; i < hi; ++i) y[i] = std::sqrt(x[i]);
        break;
      case M::kSoftplus:
        for (std::int64_t i = lo; i < hi; ++i) y[i] = softplus(x[i]);
        break;
      case M::kMish:
        for (std::int64_t i = lo; i < hi; ++i) y[i] = x[i] * std::tanh(softplus(x[i]));
        break;
      default:  // the rest: the reference (exact ones are bit-identical either way), per chunk
        ref::math(op, p, x + lo, y + lo, hi - lo);
        break;
    }
  });
}

void unary(ref::UnaryOp op, const ref::UnaryParams& p, const float* x, float* y, std::int64_t n,
           ThreadPool& pool) {
  parallel_elements(n, pool, [&](std::int64_t lo, std::int64_t hi) {
    if (op == ref::UnaryOp::kSigmoid) {
      sigmoid_simd(x + lo, y + lo, hi - lo);
    } else {
      ref::unary(op, p, x + lo, y + lo, hi - lo);
    }
  });
}

void pow_scalar(const float* x, double e, float* y, std::int64_t n, ThreadPool& pool) {
  parallel_elements(n, pool, [&](std::int64_t lo, std::int64_t hi) {
    if (e == 2.0) {
      for (std::int64_t i = lo; i < hi; ++i) y[i] = x[i] * x[i];
    } else {
      for (std::int64_t i = lo; i < hi; ++i)
        y[i] = static_cast<float>(std::pow(static_cast<double>(x[i]), e));
    }
  });
}

}  // namespace aciq::kernels::fast
