// Reference kernel for ONNX Resize/Upsample: coordinate transforms, tap tables and the N-D sampling loops.
//
// Semantics follow the ONNX reference implementation (onnx/reference/ops/op_resize.py): every
// output coordinate is mapped back to a real source coordinate, whose neighbours are taken from an
// edge-padded copy of the axis, and the N-D result is the tensor product of the per-axis weights.
#include "kernels/reference/resize.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>

namespace aciq::kernels::ref {

namespace {

// The real-valued source coordinate of output index `o`. The ONNX reference measures the resized
// length as scale * in (not the integer output size), which matters for align_corners,
// pytorch_half_pixel and tf_crop_and_resize when floor(scale * in) != scale * in.
double source_coord(const ResizeParams& p, std::int64_t o, std::int64_t in, std::int64_t out, double scale,
                    double roi_start, double roi_end) {
  const auto x = static_cast<double>(o);
  const auto len_in = static_cast<double>(in);
  const double len_out = scale * len_in;
  switch (p.coord) {
    case ResizeCoord::kHalfPixel: return (x + 0.5) / scale - 0.5;
    case ResizeCoord::kHalfPixelSymmetric: {
      // Centres the implicit ROI on the output canvas; differs from half_pixel only when the
      // output size was rounded.
      const double adjustment = static_cast<double>(out) / len_out;
      const double offset = len_in / 2 * (1 - adjustment);
      return offset + (x + 0.5) / scale - 0.5;
    }
    case ResizeCoord::kPytorchHalfPixel: return len_out == 1.0 ? -0.5 : (x + 0.5) / scale - 0.5;
    case ResizeCoord::kAlignCorners: return len_out == 1.0 ? 0.0 : x * (len_in - 1) / (len_out - 1);
    case ResizeCoord::kAsymmetric: return x / scale;
    case ResizeCoord::kTfHalfPixelForNn: return (x + 0.5) / scale;
    case ResizeCoord::kTfCropAndResize: {
      const double span = roi_end - roi_start;
      const double base = roi_start * (len_in - 1);
      if (len_out == 1.0) return base + span * (len_in - 1) / 2;
      return base + x * span * (len_in - 1) / (len_out - 1);
    }
  }
  return 0.0;
}

// The nearest-mode pick for x; an exact integer always selects itself.
std::int64_t nearest_index(ResizeNearest mode, double x) {
  const double fl = std::floor(x);
  const double frac = x - fl;
  if (frac == 0.0) return static_cast<std::int64_t>(fl);
  bool up = false;
  switch (mode) {
    case ResizeNearest::kRoundPreferFloor: up = frac > 0.5; break;
    case ResizeNearest::kRoundPreferCeil: up = frac >= 0.5; break;
    case ResizeNearest::kFloor: up = false; break;
    case ResizeNearest::kCeil: up = true; break;
  }
  return static_cast<std::int64_t>(fl) + (up ? 1 : 0);
}

// Keys cubic convolution weights for the taps at distances 1 + r, r, 1 - r, 2 - r from x.
std::array<double, 4> cubic_coeffs(double r, double a) {
  auto near = [a](double d) { return ((a + 2) * d - (a + 3)) * d * d + 1; };       // |d| <= 1
  auto far = [a](double d) { return ((a * d - 5 * a) * d + 8 * a) * d - 4 * a; };  // 1 < |d| < 2
  return {far(r + 1), near(r), near(1 - r), far(2 - r)};
}

}  // namespace

ResizeAxis resize_axis(const ResizeParams& p, std::int64_t in, std::int64_t out, double scale,
                       double roi_start, double roi_end) {
  ResizeAxis a;
  a.in = in;
  a.out = out;
  a.taps = p.mode == ResizeMode::kNearest ? 1 : p.mode == ResizeMode::kLinear ? 2 : 4;
  const auto taps = static_cast<std::size_t>(a.taps);
  a.index.assign(static_cast<std::size_t>(out) * taps, 0);
  a.weight.assign(static_cast<std::size_t>(out) * taps, 0.0f);
  std::vector<std::uint8_t> outside(static_cast<std::size_t>(out), 0);
  bool any_outside = false;
  const double last = static_cast<double>(in - 1);
  for (std::int64_t o = 0; o < out; ++o) {
    const double x = source_coord(p, o, in, out, scale, roi_start, roi_end);
    std::int64_t* idx = a.index.data() + static_cast<std::size_t>(o) * taps;
    float* w = a.weight.data() + static_cast<std::size_t>(o) * taps;
    // TF CropAndResize writes the extrapolation value for source points off the input.
    if (p.coord == ResizeCoord::kTfCropAndResize && (x < 0 || x > last)) {
      outside[static_cast<std::size_t>(o)] = 1;
      any_outside = true;
      continue;
    }
    if (p.mode == ResizeMode::kNearest) {
      // Bound x before converting: the pick is clamped into the axis anyway.
      idx[0] = std::clamp(nearest_index(p.nearest, std::clamp(x, -1.0, last + 1)), std::int64_t{0}, in - 1);
      w[0] = 1.0f;
      continue;
    }
    // The ratio lies in (0, 1]: an integer coordinate is treated as the right end of the interval
    // to its left, as the reference does, so that its own sample gets weight 1.
    double fl = std::floor(x);
    double ratio = x - fl;
    if (ratio == 0.0) {
      ratio = 1.0;
      fl -= 1;
    }
    std::array<double, 4> c{};
    if (p.mode == ResizeMode::kLinear) {
      c = {1 - ratio, ratio, 0, 0};
    } else {
      c = cubic_coeffs(ratio, p.cubic_coeff_a);
    }
    // The reference picks the taps from a copy of the axis padded by taps/2 edge samples on each
    // side, so a window far off the axis stops at that padding.
    const std::int64_t half = a.taps / 2;
    const auto fl_int = static_cast<std::int64_t>(std::clamp(fl, -2.0 - last, 2 * last + 4));
    const std::int64_t start = std::clamp(fl_int - half + 1, -half, in + half - a.taps);
    if (p.exclude_outside) {
      double sum = 0;
      for (std::size_t k = 0; k < taps; ++k) {
        const std::int64_t i = start + static_cast<std::int64_t>(k);
        if (i < 0 || i >= in) c[k] = 0;
        sum += c[k];
      }
      if (sum != 0.0) {
        for (std::size_t k = 0; k < taps; ++k) c[k] /= sum;
      }
    }
    for (std::size_t k = 0; k < taps; ++k) {
      idx[k] = std::clamp(start + static_cast<std::int64_t>(k), std::int64_t{0}, in - 1);
      w[k] = static_cast<float>(c[k]);
    }
  }
  if (any_outside) a.outside = std::move(outside);

  // An axis that maps every output onto the same input sample (the usual N and C axes) is marked so
  // the sampling loops can treat it as a plain outer loop.
  bool identity = out == in && !any_outside;
  for (std::int64_t o = 0; identity && o < out; ++o) {
    // Several taps may be clamped onto o itself; together they must carry weight 1, the rest 0.
    float on_self = 0.0f;
    for (std::size_t k = 0; k < taps; ++k) {
      const std::size_t j = static_cast<std::size_t>(o) * taps + k;
      if (a.index[j] == o) {
        on_self += a.weight[j];
      } else if (a.weight[j] != 0.0f) {
        identity = false;
      }
    }
    identity = identity && on_self == 1.0f;
  }
  if (identity) {
    a.identity = true;
    a.taps = 1;
    a.index.resize(static_cast<std::size_t>(out));
    a.weight.assign(static_cast<std::size_t>(out), 1.0f);
    for (std::int64_t o = 0; o < out; ++o) a.index[static_cast<std::size_t>(o)] = o;
  }
  return a;
}

namespace {

bool is_outside(const ResizeAxis& a, std::int64_t o) {
  return !a.outside.empty() && a.outside[static_cast<std::size_t>(o)] != 0;
}

// One 2-D plane: rows from axis h, columns from axis w (the NCHW case, and 1-D with h of size 1).
void resize_plane(const ResizeAxis& h, const ResizeAxis& w, float ev, const float* x, float* y) {
  const std::int64_t in_w = w.in;
  const int th = h.taps, tw = w.taps;
  for (std::int64_t oh = 0; oh < h.out; ++oh) {
    float* yrow = y + oh * w.out;
    if (is_outside(h, oh)) {
      std::fill(yrow, yrow + w.out, ev);
      continue;
    }
    const std::int64_t* hi = h.index.data() + oh * th;
    const float* hw = h.weight.data() + oh * th;
    if (th == 1 && tw == 1) {
      // Nearest: a gather from one source row.
      const float* xrow = x + hi[0] * in_w;
      for (std::int64_t ow = 0; ow < w.out; ++ow) {
        yrow[ow] = is_outside(w, ow) ? ev : xrow[w.index[static_cast<std::size_t>(ow)]];
      }
      continue;
    }
    for (std::int64_t ow = 0; ow < w.out; ++ow) {
      if (is_outside(w, ow)) {
        yrow[ow] = ev;
        continue;
      }
      const std::int64_t* wi = w.index.data() + ow * tw;
      const float* ww = w.weight.data() + ow * tw;
      float acc = 0.0f;
      for (int i = 0; i < th; ++i) {
        const float* xrow = x + hi[i] * in_w;
        float row = 0.0f;
        for (int j = 0; j < tw; ++j) row += ww[j] * xrow[wi[j]];
        acc += hw[i] * row;
      }
      yrow[ow] = acc;
    }
  }
}

// Any number of axes: walks the output with an odometer and, per output, the product of the taps.
void resize_generic(const ResizeAxis* ax, std::size_t n, float ev, const float* x, float* y) {
  std::vector<std::int64_t> stride(n, 1), o(n, 0);
  std::vector<int> t(n, 0);
  std::int64_t total = 1;
  for (std::size_t d = n; d-- > 0;) {
    if (d + 1 < n) stride[d] = stride[d + 1] * ax[d + 1].in;
    total *= ax[d].out;
  }
  for (std::int64_t e = 0; e < total; ++e) {
    bool off_input = false;
    for (std::size_t d = 0; d < n; ++d) off_input = off_input || is_outside(ax[d], o[d]);
    if (off_input) {
      y[e] = ev;
    } else {
      float acc = 0.0f;
      std::fill(t.begin(), t.end(), 0);
      for (;;) {
        std::int64_t offset = 0;
        float weight = 1.0f;
        for (std::size_t d = 0; d < n; ++d) {
          const std::size_t k = static_cast<std::size_t>(o[d] * ax[d].taps + t[d]);
          offset += ax[d].index[k] * stride[d];
          weight *= ax[d].weight[k];
        }
        acc += weight * x[offset];
        std::size_t d = n;
        while (d > 0 && ++t[d - 1] == ax[d - 1].taps) t[--d] = 0;
        if (d == 0) break;
      }
      y[e] = acc;
    }
    for (std::size_t d = n; d-- > 0;) {
      if (++o[d] < ax[d].out) break;
      o[d] = 0;
    }
  }
}

}  // namespace

std::int64_t resize_blocks(const std::vector<ResizeAxis>& axes) {
  std::int64_t blocks = 1;
  for (const auto& a : axes) {
    if (!a.identity) break;
    blocks *= a.in;
  }
  return blocks;
}

void resize(const std::vector<ResizeAxis>& axes, float extrapolation_value, const float* x, float* y,
            std::int64_t block_begin, std::int64_t block_end) {
  std::size_t lead = 0;
  while (lead < axes.size() && axes[lead].identity) ++lead;
  if (block_end < 0) block_end = resize_blocks(axes);
  if (block_end <= block_begin) return;
  std::int64_t in_block = 1, out_block = 1;
  for (std::size_t d = lead; d < axes.size(); ++d) {
    in_block *= axes[d].in;
    out_block *= axes[d].out;
  }
  const float* xb = x + block_begin * in_block;
  float* yb = y + block_begin * out_block;
  const std::int64_t count = block_end - block_begin;
  const std::size_t rest = axes.size() - lead;
  if (rest == 0) {
    std::memcpy(yb, xb, static_cast<std::size_t>(count) * sizeof(float));
    return;
  }
  if (rest <= 2) {
    ResizeAxis unit;
    unit.in = unit.out = 1;
    unit.index = {0};
    unit.weight = {1.0f};
    unit.identity = true;
    const ResizeAxis& h = rest == 2 ? axes[lead] : unit;
    const ResizeAxis& w = axes.back();
    for (std::int64_t b = 0; b < count; ++b) {
      resize_plane(h, w, extrapolation_value, xb + b * in_block, yb + b * out_block);
    }
    return;
  }
  for (std::int64_t b = 0; b < count; ++b) {
    resize_generic(axes.data() + lead, rest, extrapolation_value, xb + b * in_block, yb + b * out_block);
  }
}

}  // namespace aciq::kernels::ref
