// Reference kernels for data movement (Slice, Expand, Tile, DepthToSpace, SpaceToDepth), any dtype.
#include "kernels/reference/movement.hpp"

#include <algorithm>
#include <cstring>

#include "kernels/reference/math.hpp"
#include "kernels/reference/reference.hpp"

namespace aciq::kernels::ref {

namespace {

// Copies y[i] = x[off(i)] element by element, the offset of output index i given per axis by
// base + idx * stride: every op here is such a gather with its own strides.
Tensor strided_gather(const Tensor& x, const Shape& out_shape, std::int64_t base,
                      const std::vector<std::int64_t>& strides) {
  Tensor y(x.dtype(), out_shape);
  const std::size_t es = dtype_size(x.dtype());
  const auto* src = static_cast<const std::byte*>(x.raw());
  auto* dst = static_cast<std::byte*>(y.raw());
  for_each_broadcast(out_shape, {strides}, [&](std::int64_t i, const std::int64_t* off) {
    std::memcpy(dst + i * es, src + (base + off[0]) * es, es);
  });
  return y;
}

std::vector<std::int64_t> row_major_strides(const Shape& s) {
  std::vector<std::int64_t> st(s.size(), 1);
  for (std::size_t i = s.size(); i-- > 1;) st[i - 1] = st[i] * s[i];
  return st;
}

}  // namespace

SliceAxis slice_axis(std::int64_t dim, std::int64_t start, std::int64_t end, std::int64_t step) {
  if (step == 0) fail("Slice: step must not be 0");
  if (start < 0) start += dim;
  if (end < 0) end += dim;
  SliceAxis a;
  a.step = step;
  if (step > 0) {
    start = std::clamp<std::int64_t>(start, 0, dim);
    end = std::clamp<std::int64_t>(end, 0, dim);
    a.count = end > start ? (end - start - 1) / step + 1 : 0;  // no overflow for steps near INT64_MAX
  } else {
    start = std::clamp<std::int64_t>(start, 0, dim - 1);
    end = std::clamp<std::int64_t>(end, -1, dim - 1);
    const auto down = -static_cast<__int128>(step);  // INT64_MIN has no int64 negation
    a.count = start > end ? static_cast<std::int64_t>((start - end - 1) / down + 1) : 0;
  }
  a.start = start;
  return a;
}

Tensor slice(const Tensor& x, const std::vector<SliceAxis>& axes) {
  if (axes.size() != x.rank()) fail("Slice: internal: one SliceAxis per dimension expected");
  const auto in_strides = row_major_strides(x.shape());
  Shape out(x.rank());
  std::vector<std::int64_t> strides(x.rank());
  std::int64_t base = 0;
  for (std::size_t d = 0; d < x.rank(); ++d) {
    out[d] = axes[d].count;
    base += axes[d].count > 0 ? axes[d].start * in_strides[d] : 0;
    strides[d] = axes[d].step * in_strides[d];
  }
  return strided_gather(x, out, base, strides);
}

Tensor expand(const Tensor& x, const Shape& shape) {
  const Shape out = broadcast_all({x.shape(), shape});
  return strided_gather(x, out, 0, broadcast_strides(x.shape(), out.size()));
}

Tensor tile(const Tensor& x, const std::vector<std::int64_t>& repeats) {
  if (repeats.size() != x.rank()) {
    fail("Tile: repeats has " + std::to_string(repeats.size()) + " entries for input " +
         shape_str(x.shape()));
  }
  // View the output as [r0, d0, r1, d1, ...]: the repeat index has stride 0, the data index the input's.
  const auto in_strides = row_major_strides(x.shape());
  Shape view, out;
  std::vector<std::int64_t> strides;
  for (std::size_t d = 0; d < x.rank(); ++d) {
    if (repeats[d] < 0) fail("Tile: negative repeat " + std::to_string(repeats[d]));
    view.push_back(repeats[d]);
    view.push_back(x.shape()[d]);
    strides.push_back(0);
    strides.push_back(in_strides[d]);
    out.push_back(repeats[d] * x.shape()[d]);
  }
  return strided_gather(x, view, 0, strides).reshaped(out);
}

Tensor scatter_nd(const Tensor& data, const Tensor& indices, const Tensor& updates,
                  const std::string& reduction) {
  const Shape& ds = data.shape();
  const Shape& is = indices.shape();
  if (is.empty()) fail("ScatterND: indices must have at least one dimension");
  const auto k = static_cast<std::size_t>(is.back());
  if (k > ds.size())
    fail("ScatterND: index depth " + std::to_string(k) + " exceeds data rank " + std::to_string(ds.size()));
  Shape want(is.begin(), is.end() - 1);
  want.insert(want.end(), ds.begin() + static_cast<std::ptrdiff_t>(k), ds.end());
  if (updates.shape() != want) {
    fail("ScatterND: updates of shape " + shape_str(updates.shape()) + ", expected " + shape_str(want));
  }
  if (updates.dtype() != data.dtype()) fail("ScatterND: updates and data differ in dtype");
  if (reduction != "none" && data.dtype() != DType::kFloat32) fail("ScatterND: reductions need float32 data");
  Tensor y = data.clone();
  std::int64_t slice = 1;
  for (std::size_t d = k; d < ds.size(); ++d) slice *= ds[d];
  const auto idx = indices.to_i64_vector();
  const std::int64_t count =
      k ? static_cast<std::int64_t>(idx.size() / k) : shape_numel(want) / std::max<std::int64_t>(slice, 1);
  const std::size_t es = dtype_size(data.dtype());
  auto* dst = static_cast<std::byte*>(y.raw());
  const auto* src = static_cast<const std::byte*>(updates.raw());
  for (std::int64_t u = 0; u < count; ++u) {
    std::int64_t off = 0;
    for (std::size_t j = 0; j < k; ++j) {
      std::int64_t i = idx[static_cast<std::size_t>(u) * k + j];
      if (i < 0) i += ds[j];
      if (i < 0 || i >= ds[j])
        fail("ScatterND: index " + std::to_string(idx[u * k + j]) + " out of range for dim " +
             std::to_string(ds[j]));
      off = off * ds[j] + i;
    }
    off *= slice;
    if (reduction == "none") {
      std::memcpy(dst + off * es, src + u * slice * es, static_cast<std::size_t>(slice) * es);
      continue;
    }
    float* yf = y.data<float>() + off;
    const float* uf = updates.data<float>() + u * slice;
    for (std::int64_t i = 0; i < slice; ++i) {
      if (reduction == "add") {
        yf[i] += uf[i];
      } else if (reduction == "mul") {
        yf[i] *= uf[i];
      } else if (reduction == "max") {
        yf[i] = std::max(yf[i], uf[i]);
      } else if (reduction == "min") {
        yf[i] = std::min(yf[i], uf[i]);
      } else {
        fail("ScatterND: unknown reduction '" + reduction + "'");
      }
    }
  }
  return y;
}

Tensor depth_to_space(const Tensor& x, std::int64_t b, bool crd) {
  const Shape& s = x.shape();
  if (s.size() != 4 || b <= 0 || s[1] % (b * b) != 0) {
    fail("DepthToSpace: input " + shape_str(s) + " does not split into blocks of " + std::to_string(b));
  }
  const std::int64_t n = s[0], c = s[1] / (b * b), h = s[2], w = s[3];
  // Output [n, c, h, b1, w, b2] as a gather from the input viewed as DCR [n, b1, b2, c, h, w] or
  // CRD [n, c, b1, b2, h, w].
  const std::int64_t hw = h * w;
  std::vector<std::int64_t> st;  // strides of (n, c, h, b1, w, b2) in the input
  if (crd) {
    st = {s[1] * hw, b * b * hw, w, b * hw, 1, hw};
  } else {
    st = {s[1] * hw, hw, w, b * c * hw, 1, c * hw};
  }
  return strided_gather(x, {n, c, h, b, w, b}, 0, st).reshaped({n, c, h * b, w * b});
}

Tensor space_to_depth(const Tensor& x, std::int64_t b) {
  const Shape& s = x.shape();
  if (s.size() != 4 || b <= 0 || s[2] % b != 0 || s[3] % b != 0) {
    fail("SpaceToDepth: input " + shape_str(s) + " does not split into blocks of " + std::to_string(b));
  }
  const std::int64_t n = s[0], c = s[1], oh = s[2] / b, ow = s[3] / b;
  // Output [n, b1, b2, c, oh, ow] reads input (n, c, oh * b + b1, ow * b + b2).
  const std::int64_t w = s[3];
  const std::vector<std::int64_t> st = {c * s[2] * w, w, 1, s[2] * w, b * w, b};
  return strided_gather(x, {n, b, b, c, oh, ow}, 0, st).reshaped({n, c * b * b, oh, ow});
}

}  // namespace aciq::kernels::ref
