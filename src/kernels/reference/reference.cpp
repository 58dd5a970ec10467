// Plain scalar reference kernels: written for obviousness, not speed; the fast path is tested against them.
#include "kernels/reference/reference.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "kernels/reference/math.hpp"

namespace aciq::kernels::ref {

void conv2d(const ConvShape& s, const Window2d& win, const float* x, const float* w, const float* bias,
            float* y) {
  const std::int64_t cg = s.c / s.group;   // input channels per group
  const std::int64_t og = s.oc / s.group;  // output channels per group
  for (std::int64_t n = 0; n < s.n; ++n) {
    for (std::int64_t o = 0; o < s.oc; ++o) {
      const std::int64_t g = o / og;
      for (std::int64_t oy = 0; oy < s.oh; ++oy) {
        for (std::int64_t ox = 0; ox < s.ow; ++ox) {
          double acc = bias ? bias[o] : 0.0;
          for (std::int64_t ci = 0; ci < cg; ++ci) {
            const std::int64_t c = g * cg + ci;
            for (std::int64_t ky = 0; ky < win.kh; ++ky) {
              const std::int64_t iy = oy * win.stride_h - win.pad_top + ky * win.dil_h;
              if (iy < 0 || iy >= s.h) continue;
              for (std::int64_t kx = 0; kx < win.kw; ++kx) {
                const std::int64_t ix = ox * win.stride_w - win.pad_left + kx * win.dil_w;
                if (ix < 0 || ix >= s.w) continue;
                acc += static_cast<double>(x[((n * s.c + c) * s.h + iy) * s.w + ix]) *
                       w[((o * cg + ci) * win.kh + ky) * win.kw + kx];
              }
            }
          }
          y[((n * s.oc + o) * s.oh + oy) * s.ow + ox] = static_cast<float>(acc);
        }
      }
    }
  }
}

namespace {

// `lowest` starts every window: a window of padding only (legal in ONNX, e.g. a dilation that steps over a
// small input) outputs it, -inf for float, the type's minimum for 8-bit; the int8 engine's MaxPool fold
// refuses such geometries, where the two would differ after dequantization.
template <typename T>
void max_pool2d_impl(const PoolShape& s, const Window2d& win, const T* x, T* y, T lowest) {
  for (std::int64_t nc = 0; nc < s.n * s.c; ++nc) {
    for (std::int64_t oy = 0; oy < s.oh; ++oy) {
      for (std::int64_t ox = 0; ox < s.ow; ++ox) {
        T m = lowest;
        for (std::int64_t ky = 0; ky < win.kh; ++ky) {
          const std::int64_t iy = oy * win.stride_h - win.pad_top + ky * win.dil_h;
          if (iy < 0 || iy >= s.h) continue;
          for (std::int64_t kx = 0; kx < win.kw; ++kx) {
            const std::int64_t ix = ox * win.stride_w - win.pad_left + kx * win.dil_w;
            if (ix < 0 || ix >= s.w) continue;
            m = std::max(m, x[(nc * s.h + iy) * s.w + ix]);
          }
        }
        y[(nc * s.oh + oy) * s.ow + ox] = m;
      }
    }
  }
}

}  // namespace

void max_pool2d(const PoolShape& s, const Window2d& win, const float* x, float* y) {
  max_pool2d_impl(s, win, x, y, -std::numeric_limits<float>::infinity());
}

void max_pool2d(const PoolShape& s, const Window2d& win, const std::uint8_t* x, std::uint8_t* y) {
  max_pool2d_impl<std::uint8_t>(s, win, x, y, 0);
}

void max_pool2d(const PoolShape& s, const Window2d& win, const std::int8_t* x, std::int8_t* y) {
  max_pool2d_impl<std::int8_t>(s, win, x, y, -128);
}

void avg_pool2d(const PoolShape& s, const Window2d& win, bool count_include_pad, const float* x, float* y) {
  for (std::int64_t nc = 0; nc < s.n * s.c; ++nc) {
    for (std::int64_t oy = 0; oy < s.oh; ++oy) {
      for (std::int64_t ox = 0; ox < s.ow; ++ox) {
        double sum = 0.0;
        std::int64_t count = 0;
        for (std::int64_t ky = 0; ky < win.kh; ++ky) {
          const std::int64_t iy = oy * win.stride_h - win.pad_top + ky * win.dil_h;
          for (std::int64_t kx = 0; kx < win.kw; ++kx) {
            const std::int64_t ix = ox * win.stride_w - win.pad_left + kx * win.dil_w;
            const bool inside = iy >= 0 && iy < s.h && ix >= 0 && ix < s.w;
            // count_include_pad counts explicit padding but never the extra ceil_mode overhang.
            const bool in_padded = iy < s.h + win.pad_bottom && ix < s.w + win.pad_right;
            if (inside) {
              sum += x[(nc * s.h + iy) * s.w + ix];
              ++count;
            } else if (count_include_pad && in_padded) {
              ++count;
            }
          }
        }
        y[(nc * s.oh + oy) * s.ow + ox] = count ? static_cast<float>(sum / static_cast<double>(count)) : 0.0f;
      }
    }
  }
}

namespace {

// Calls f(input offset) for every tap of the 3-D window at output position `o` that reads the input
// (padding skipped), and returns how many taps lie inside the explicitly padded extent.
template <class F>
std::int64_t for_each_tap3d(const std::array<std::int64_t, 3>& in, const Window3d& win,
                            const std::array<std::int64_t, 3>& o, F&& f) {
  std::int64_t padded = 0;
  for (std::int64_t kd = 0; kd < win.kernel[0]; ++kd) {
    const std::int64_t id = o[0] * win.stride[0] - win.pad_begin[0] + kd * win.dilation[0];
    for (std::int64_t kh = 0; kh < win.kernel[1]; ++kh) {
      const std::int64_t ih = o[1] * win.stride[1] - win.pad_begin[1] + kh * win.dilation[1];
      for (std::int64_t kw = 0; kw < win.kernel[2]; ++kw) {
        const std::int64_t iw = o[2] * win.stride[2] - win.pad_begin[2] + kw * win.dilation[2];
        const bool inside = id >= 0 && id < in[0] && ih >= 0 && ih < in[1] && iw >= 0 && iw < in[2];
        if (inside) f((id * in[1] + ih) * in[2] + iw, (kd * win.kernel[1] + kh) * win.kernel[2] + kw);
        padded += id < in[0] + win.pad_end[0] && ih < in[1] + win.pad_end[1] && iw < in[2] + win.pad_end[2];
      }
    }
  }
  return padded;
}

// Calls f(o, at) for every output position o = {od, oh, ow} of a 3-D window in row-major order; `at` is
// its offset in the output plane.
template <class F>
void for_each_output3d(const std::array<std::int64_t, 3>& out, F&& f) {
  std::int64_t at = 0;
  for (std::int64_t od = 0; od < out[0]; ++od) {
    for (std::int64_t oh = 0; oh < out[1]; ++oh) {
      for (std::int64_t ow = 0; ow < out[2]; ++ow) f(std::array<std::int64_t, 3>{od, oh, ow}, at++);
    }
  }
}

}  // namespace

void conv3d(const Conv3dShape& s, const Window3d& win, const float* x, const float* w, const float* bias,
            float* y) {
  const std::int64_t cg = s.c / s.group, og = s.oc / s.group;
  const std::int64_t in_plane = s.in[0] * s.in[1] * s.in[2], out_plane = s.out[0] * s.out[1] * s.out[2];
  const std::int64_t taps = win.kernel[0] * win.kernel[1] * win.kernel[2];
  for (std::int64_t n = 0; n < s.n; ++n) {
    for (std::int64_t o = 0; o < s.oc; ++o) {
      const std::int64_t g = o / og;
      for_each_output3d(s.out, [&](const std::array<std::int64_t, 3>& pos, std::int64_t at) {
        double acc = bias ? bias[o] : 0.0;
        for (std::int64_t ci = 0; ci < cg; ++ci) {
          const float* xc = x + (n * s.c + g * cg + ci) * in_plane;
          const float* wc = w + (o * cg + ci) * taps;
          for_each_tap3d(s.in, win, pos, [&](std::int64_t xi, std::int64_t wi) {
            acc += static_cast<double>(xc[xi]) * wc[wi];
          });
        }
        y[(n * s.oc + o) * out_plane + at] = static_cast<float>(acc);
      });
    }
  }
}

void max_pool3d(const Pool3dShape& s, const Window3d& win, const float* x, float* y) {
  const std::int64_t in_plane = s.in[0] * s.in[1] * s.in[2], out_plane = s.out[0] * s.out[1] * s.out[2];
  for (std::int64_t nc = 0; nc < s.n * s.c; ++nc) {
    for_each_output3d(s.out, [&](const std::array<std::int64_t, 3>& pos, std::int64_t at) {
      float m = -std::numeric_limits<float>::infinity();
      for_each_tap3d(s.in, win, pos,
                     [&](std::int64_t xi, std::int64_t) { m = std::max(m, x[nc * in_plane + xi]); });
      y[nc * out_plane + at] = m;
    });
  }
}

void avg_pool3d(const Pool3dShape& s, const Window3d& win, bool count_include_pad, const float* x, float* y) {
  const std::int64_t in_plane = s.in[0] * s.in[1] * s.in[2], out_plane = s.out[0] * s.out[1] * s.out[2];
  for (std::int64_t nc = 0; nc < s.n * s.c; ++nc) {
    for_each_output3d(s.out, [&](const std::array<std::int64_t, 3>& pos, std::int64_t at) {
      double sum = 0.0;
      std::int64_t inside = 0;
      const std::int64_t padded = for_each_tap3d(s.in, win, pos, [&](std::int64_t xi, std::int64_t) {
        sum += x[nc * in_plane + xi];
        ++inside;
      });
      const std::int64_t count = count_include_pad ? padded : inside;
      y[nc * out_plane + at] = count ? static_cast<float>(sum / static_cast<double>(count)) : 0.0f;
    });
  }
}

void global_avg_pool(std::int64_t nc, std::int64_t hw, const float* x, float* y) {
  for (std::int64_t i = 0; i < nc; ++i) {
    double sum = 0.0;
    for (std::int64_t j = 0; j < hw; ++j) sum += x[i * hw + j];
    y[i] = static_cast<float>(sum / static_cast<double>(hw));
  }
}

void global_max_pool(std::int64_t nc, std::int64_t hw, const float* x, float* y) {
  for (std::int64_t i = 0; i < nc; ++i) {
    float m = -std::numeric_limits<float>::infinity();
    for (std::int64_t j = 0; j < hw; ++j) m = std::max(m, x[i * hw + j]);
    y[i] = m;
  }
}

void gemm(std::int64_t m, std::int64_t n, std::int64_t k, bool trans_a, bool trans_b, float alpha, float beta,
          const float* a, const float* b, const Tensor* c, float* y) {
  // C is unidirectionally broadcast to [M, N]: scalar, [N], [1, N], [M, 1] or [M, N].
  std::int64_t c_rows = 1, c_cols = 1;
  if (c) {
    const Shape& cs = c->shape();
    if (cs.size() == 1) c_cols = cs[0];
    if (cs.size() == 2) {
      c_rows = cs[0];
      c_cols = cs[1];
    }
    if ((c_rows != 1 && c_rows != m) || (c_cols != 1 && c_cols != n)) {
      fail("Gemm: C of shape " + shape_str(cs) + " does not broadcast to [" + std::to_string(m) + "," +
           std::to_string(n) + "]");
    }
  }
  for (std::int64_t i = 0; i < m; ++i) {
    for (std::int64_t j = 0; j < n; ++j) {
      double acc = 0.0;
      for (std::int64_t p = 0; p < k; ++p) {
        const float av = trans_a ? a[p * m + i] : a[i * k + p];
        const float bv = trans_b ? b[j * k + p] : b[p * n + j];
        acc += static_cast<double>(av) * bv;
      }
      double out = alpha * acc;
      if (c) {
        out += static_cast<double>(beta) *
               c->data<float>()[(c_rows == 1 ? 0 : i) * c_cols + (c_cols == 1 ? 0 : j)];
      }
      y[i * n + j] = static_cast<float>(out);
    }
  }
}

Shape broadcast_shapes(const Shape& a, const Shape& b) {
  const std::size_t r = std::max(a.size(), b.size());
  Shape out(r);
  for (std::size_t i = 0; i < r; ++i) {
    const std::int64_t da = i < r - a.size() ? 1 : a[i - (r - a.size())];
    const std::int64_t db = i < r - b.size() ? 1 : b[i - (r - b.size())];
    if (da != db && da != 1 && db != 1) {
      fail("shapes " + shape_str(a) + " and " + shape_str(b) + " do not broadcast");
    }
    out[i] = da == 1 ? db : da;
  }
  return out;
}

namespace {

template <typename T>
T apply(BinaryOp op, T a, T b) {
  switch (op) {
    case BinaryOp::kAdd: return static_cast<T>(a + b);
    case BinaryOp::kSub: return static_cast<T>(a - b);
    case BinaryOp::kMul: return static_cast<T>(a * b);
    case BinaryOp::kDiv:
      if constexpr (std::is_integral_v<T>) {
        if (b == 0) fail("Div: integer division by zero");
      }
      return static_cast<T>(a / b);
  }
  return a;
}

template <typename T>
void binary_typed(BinaryOp op, const Tensor& a, const Tensor& b, Tensor& y) {
  const Shape& os = y.shape();
  const auto sa = broadcast_strides(a.shape(), os.size());
  const auto sb = broadcast_strides(b.shape(), os.size());
  const T* pa = a.data<T>();
  const T* pb = b.data<T>();
  T* py = y.data<T>();
  std::vector<std::int64_t> idx(os.size(), 0);
  for (std::int64_t i = 0; i < y.numel(); ++i) {
    std::int64_t oa = 0, ob = 0;
    for (std::size_t d = 0; d < os.size(); ++d) {
      oa += idx[d] * sa[d];
      ob += idx[d] * sb[d];
    }
    py[i] = apply(op, pa[oa], pb[ob]);
    for (std::size_t d = os.size(); d-- > 0;) {
      if (++idx[d] < os[d]) break;
      idx[d] = 0;
    }
  }
}

}  // namespace

Tensor binary(BinaryOp op, const Tensor& a, const Tensor& b) {
  if (a.dtype() != b.dtype()) {
    fail("elementwise op on mismatched dtypes " + std::string(dtype_name(a.dtype())) + " and " +
         std::string(dtype_name(b.dtype())));
  }
  Tensor y(a.dtype(), broadcast_shapes(a.shape(), b.shape()));
  switch (a.dtype()) {
    case DType::kFloat32: binary_typed<float>(op, a, b, y); break;
    case DType::kInt64: binary_typed<std::int64_t>(op, a, b, y); break;
    case DType::kInt32: binary_typed<std::int32_t>(op, a, b, y); break;
    case DType::kUInt8: binary_typed<std::uint8_t>(op, a, b, y); break;
    case DType::kInt8: binary_typed<std::int8_t>(op, a, b, y); break;
    default: fail("elementwise op on unsupported dtype " + std::string(dtype_name(a.dtype())));
  }
  return y;
}

Tensor matmul(const Tensor& a, const Tensor& b) {
  Shape as = a.shape(), bs = b.shape();
  if (as.empty() || bs.empty()) fail("MatMul: scalar operands are not allowed");
  const bool a_vec = as.size() == 1, b_vec = bs.size() == 1;
  if (a_vec) as.insert(as.begin(), 1);
  if (b_vec) bs.push_back(1);
  const std::int64_t m = as[as.size() - 2], k = as.back(), n = bs.back();
  if (bs[bs.size() - 2] != k)
    fail("MatMul: inner dimensions of " + shape_str(a.shape()) + " and " + shape_str(b.shape()) + " differ");
  const Shape batch_a(as.begin(), as.end() - 2), batch_b(bs.begin(), bs.end() - 2);
  const Shape batch = broadcast_shapes(batch_a, batch_b);
  Shape out_shape = batch;
  if (!a_vec) out_shape.push_back(m);
  if (!b_vec) out_shape.push_back(n);
  Tensor y(DType::kFloat32, out_shape);
  const auto sa = broadcast_strides(batch_a, batch.size());
  const auto sb = broadcast_strides(batch_b, batch.size());
  const std::int64_t nb = shape_numel(batch);
  std::vector<std::int64_t> idx(batch.size(), 0);
  for (std::int64_t bi = 0; bi < nb; ++bi) {
    std::int64_t oa = 0, ob = 0;
    for (std::size_t d = 0; d < batch.size(); ++d) {
      oa += idx[d] * sa[d];
      ob += idx[d] * sb[d];
    }
    gemm(m, n, k, false, false, 1.0f, 0.0f, a.data<float>() + oa * m * k, b.data<float>() + ob * k * n,
         nullptr, y.data<float>() + bi * m * n);
    for (std::size_t d = batch.size(); d-- > 0;) {
      if (++idx[d] < batch[d]) break;
      idx[d] = 0;
    }
  }
  return y;
}

void unary(UnaryOp op, const UnaryParams& p, const float* x, float* y, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) {
    const float v = x[i];
    switch (op) {
      case UnaryOp::kRelu: y[i] = v > 0.0f ? v : 0.0f; break;
      case UnaryOp::kSigmoid:
        y[i] = static_cast<float>(1.0 / (1.0 + std::exp(-static_cast<double>(v))));
        break;
      case UnaryOp::kHardSigmoid: y[i] = std::max(0.0f, std::min(1.0f, p.alpha * v + p.beta)); break;
      case UnaryOp::kHardSwish: y[i] = v * std::max(0.0f, std::min(1.0f, v / 6.0f + 0.5f)); break;
      case UnaryOp::kLeakyRelu: y[i] = v >= 0.0f ? v : p.alpha * v; break;
      case UnaryOp::kClip: y[i] = std::isnan(v) ? v : std::min(p.hi, std::max(p.lo, v)); break;
    }
  }
}

void softmax(std::int64_t outer, std::int64_t axis_len, std::int64_t inner, const float* x, float* y) {
  for (std::int64_t o = 0; o < outer; ++o) {
    for (std::int64_t in = 0; in < inner; ++in) {
      const float* xp = x + o * axis_len * inner + in;
      float* yp = y + o * axis_len * inner + in;
      float m = -std::numeric_limits<float>::infinity();
      for (std::int64_t a = 0; a < axis_len; ++a) m = std::max(m, xp[a * inner]);
      double sum = 0.0;
      for (std::int64_t a = 0; a < axis_len; ++a) sum += std::exp(static_cast<double>(xp[a * inner]) - m);
      for (std::int64_t a = 0; a < axis_len; ++a) {
        yp[a * inner] = static_cast<float>(std::exp(static_cast<double>(xp[a * inner]) - m) / sum);
      }
    }
  }
}

Tensor transpose(const Tensor& x, const std::vector<std::int64_t>& perm) {
  const std::size_t r = x.rank();
  if (perm.size() != r)
    fail("Transpose: perm has " + std::to_string(perm.size()) + " entries for rank " + std::to_string(r));
  std::vector<bool> seen(r, false);
  Shape out_shape(r);
  for (std::size_t i = 0; i < r; ++i) {
    if (perm[i] < 0 || perm[i] >= static_cast<std::int64_t>(r) || seen[perm[i]])
      fail("Transpose: invalid perm");
    seen[perm[i]] = true;
    out_shape[i] = x.shape()[perm[i]];
  }
  Tensor y(x.dtype(), out_shape);
  std::vector<std::int64_t> in_strides(r, 1);
  for (std::size_t i = r; i-- > 1;) in_strides[i - 1] = in_strides[i] * x.shape()[i];
  const std::size_t es = dtype_size(x.dtype());
  const auto* src = static_cast<const std::byte*>(x.raw());
  auto* dst = static_cast<std::byte*>(y.raw());
  std::vector<std::int64_t> idx(r, 0);
  for (std::int64_t i = 0; i < y.numel(); ++i) {
    std::int64_t off = 0;
    for (std::size_t d = 0; d < r; ++d) off += idx[d] * in_strides[perm[d]];
    std::memcpy(dst + i * es, src + off * es, es);
    for (std::size_t d = r; d-- > 0;) {
      if (++idx[d] < out_shape[d]) break;
      idx[d] = 0;
    }
  }
  return y;
}

Tensor concat(const std::vector<const Tensor*>& xs, std::int64_t axis) {
  if (xs.empty()) fail("Concat: no inputs");
  const Shape& first = xs[0]->shape();
  const auto r = static_cast<std::int64_t>(first.size());
  if (axis < 0) axis += r;
  if (axis < 0 || axis >= r) fail("Concat: axis out of range for rank " + std::to_string(r));
  Shape out_shape = first;
  out_shape[axis] = 0;
  for (const Tensor* t : xs) {
    if (t->rank() != first.size() || t->dtype() != xs[0]->dtype())
      fail("Concat: inputs differ in rank or dtype");
    for (std::int64_t d = 0; d < r; ++d) {
      if (d != axis && t->shape()[d] != first[d]) {
        fail("Concat: input shapes " + shape_str(first) + " and " + shape_str(t->shape()) +
             " differ off the axis");
      }
    }
    out_shape[axis] += t->shape()[axis];
  }
  Tensor y(xs[0]->dtype(), out_shape);
  const std::size_t es = dtype_size(y.dtype());
  std::int64_t outer = 1, inner = 1;
  for (std::int64_t d = 0; d < axis; ++d) outer *= first[d];
  for (std::int64_t d = axis + 1; d < r; ++d) inner *= first[d];
  auto* dst = static_cast<std::byte*>(y.raw());
  const std::int64_t out_row = out_shape[axis] * inner;
  std::int64_t offset = 0;
  for (const Tensor* t : xs) {
    const std::int64_t row = t->shape()[axis] * inner;
    const auto* src = static_cast<const std::byte*>(t->raw());
    for (std::int64_t o = 0; o < outer; ++o) {
      std::memcpy(dst + (o * out_row + offset) * es, src + o * row * es, static_cast<std::size_t>(row) * es);
    }
    offset += row;
  }
  return y;
}

Tensor gather(const Tensor& data, const Tensor& indices, std::int64_t axis) {
  const auto r = static_cast<std::int64_t>(data.rank());
  if (axis < 0) axis += r;
  if (axis < 0 || axis >= r) fail("Gather: axis out of range for data of shape " + shape_str(data.shape()));
  const std::vector<std::int64_t> idx = indices.to_i64_vector();
  const std::int64_t axis_len = data.shape()[axis];
  Shape out_shape(data.shape().begin(), data.shape().begin() + axis);
  out_shape.insert(out_shape.end(), indices.shape().begin(), indices.shape().end());
  out_shape.insert(out_shape.end(), data.shape().begin() + axis + 1, data.shape().end());
  Tensor y(data.dtype(), out_shape);
  std::int64_t outer = 1, inner = 1;
  for (std::int64_t d = 0; d < axis; ++d) outer *= data.shape()[d];
  for (std::int64_t d = axis + 1; d < r; ++d) inner *= data.shape()[d];
  const std::size_t es = dtype_size(data.dtype());
  const auto* src = static_cast<const std::byte*>(data.raw());
  auto* dst = static_cast<std::byte*>(y.raw());
  const auto ni = static_cast<std::int64_t>(idx.size());
  for (std::int64_t o = 0; o < outer; ++o) {
    for (std::int64_t j = 0; j < ni; ++j) {
      std::int64_t k = idx[j] < 0 ? idx[j] + axis_len : idx[j];
      if (k < 0 || k >= axis_len) fail("Gather: index " + std::to_string(idx[j]) + " out of range");
      std::memcpy(dst + ((o * ni + j) * inner) * es, src + ((o * axis_len + k) * inner) * es,
                  static_cast<std::size_t>(inner) * es);
    }
  }
  return y;
}

Tensor pad(const Tensor& x, const std::vector<std::int64_t>& pads, PadMode mode, float value) {
  const std::size_t r = x.rank();
  if (pads.size() != 2 * r)
    fail("Pad: expected " + std::to_string(2 * r) + " pad values, got " + std::to_string(pads.size()));
  Shape out_shape(r);
  for (std::size_t d = 0; d < r; ++d) {
    out_shape[d] = x.shape()[d] + pads[d] + pads[d + r];
    if (out_shape[d] < 0) fail("Pad: pads make a negative dimension");
    if (mode != PadMode::kConstant && x.shape()[d] == 0 && out_shape[d] > 0)
      fail("Pad: cannot reflect/edge-pad an empty axis");
  }
  // Work on raw elements so every dtype pads the same way; the fill value is converted once.
  Tensor fill(x.dtype(), {1});
  switch (x.dtype()) {
    case DType::kFloat32: fill.data<float>()[0] = value; break;
    case DType::kInt64: fill.data<std::int64_t>()[0] = static_cast<std::int64_t>(value); break;
    case DType::kInt32: fill.data<std::int32_t>()[0] = static_cast<std::int32_t>(value); break;
    case DType::kInt8: fill.data<std::int8_t>()[0] = static_cast<std::int8_t>(value); break;
    default: fill.data<std::uint8_t>()[0] = static_cast<std::uint8_t>(value); break;
  }
  Tensor y(x.dtype(), out_shape);
  const std::size_t es = dtype_size(x.dtype());
  std::vector<std::int64_t> in_strides(r, 1);
  for (std::size_t i = r; i-- > 1;) in_strides[i - 1] = in_strides[i] * x.shape()[i];
  std::vector<std::int64_t> idx(r, 0);
  const auto* src = static_cast<const std::byte*>(x.raw());
  auto* dst = static_cast<std::byte*>(y.raw());
  for (std::int64_t i = 0; i < y.numel(); ++i) {
    std::int64_t off = 0;
    bool outside = false;
    for (std::size_t d = 0; d < r; ++d) {
      std::int64_t s = idx[d] - pads[d];
      const std::int64_t len = x.shape()[d];
      if (s < 0 || s >= len) {
        if (mode == PadMode::kConstant) {
          outside = true;
          break;
        }
        if (mode == PadMode::kEdge) {
          s = s < 0 ? 0 : len - 1;
        } else if (mode == PadMode::kWrap) {  // the input repeated: period len
          s = ((s % len) + len) % len;
        } else {  // reflect without repeating the edge
          if (len == 1) {
            s = 0;
          } else {
            const std::int64_t period = 2 * (len - 1);
            s = ((s % period) + period) % period;
            if (s >= len) s = period - s;
          }
        }
      }
      off += s * in_strides[d];
    }
    std::memcpy(dst + i * es, outside ? static_cast<const std::byte*>(fill.raw()) : src + off * es, es);
    for (std::size_t d = r; d-- > 0;) {
      if (++idx[d] < out_shape[d]) break;
      idx[d] = 0;
    }
  }
  return y;
}

}  // namespace aciq::kernels::ref
