#include "kernels/reference/integer.hpp"

#include <algorithm>
#include <cmath>

namespace aciq::kernels::ref {

void conv2d_integer(const ConvShape& s, const Window2d& win, const std::int32_t* x, std::int32_t x_zero,
                    const std::int32_t* w, const std::int32_t* w_zero, std::int32_t* y) {
  const std::int64_t icg = s.c / s.group, ocg = s.oc / s.group;
  for (std::int64_t n = 0; n < s.n; ++n) {
    for (std::int64_t oc = 0; oc < s.oc; ++oc) {
      const std::int64_t g = oc / ocg;
      for (std::int64_t oy = 0; oy < s.oh; ++oy) {
        for (std::int64_t ox = 0; ox < s.ow; ++ox) {
          std::int32_t acc = 0;
          for (std::int64_t ic = 0; ic < icg; ++ic) {
            const std::int64_t c = g * icg + ic;
            for (std::int64_t ky = 0; ky < win.kh; ++ky) {
              const std::int64_t iy = oy * win.stride_h - win.pad_top + ky * win.dil_h;
              if (iy < 0 || iy >= s.h) continue;  // padding: x_zero - x_zero = 0
              for (std::int64_t kx = 0; kx < win.kw; ++kx) {
                const std::int64_t ix = ox * win.stride_w - win.pad_left + kx * win.dil_w;
                if (ix < 0 || ix >= s.w) continue;
                const std::int32_t xv = x[((n * s.c + c) * s.h + iy) * s.w + ix] - x_zero;
                const std::int32_t wv = w[((oc * icg + ic) * win.kh + ky) * win.kw + kx] - w_zero[oc];
                acc += xv * wv;
              }
            }
          }
          y[((n * s.oc + oc) * s.oh + oy) * s.ow + ox] = acc;
        }
      }
    }
  }
}

void matmul_integer(std::int64_t batches, std::int64_t m, std::int64_t n, std::int64_t k,
                    const std::int32_t* a, const std::int32_t* a_zero, const std::int32_t* b, bool b_batched,
                    const std::int32_t* b_zero, std::int32_t* y) {
  for (std::int64_t bi = 0; bi < batches; ++bi) {
    const std::int32_t* ab = a + bi * m * k;
    const std::int32_t* bb = b + (b_batched ? bi * k * n : 0);
    std::int32_t* yb = y + bi * m * n;
    for (std::int64_t i = 0; i < m; ++i) {
      for (std::int64_t j = 0; j < n; ++j) {
        std::int32_t acc = 0;
        for (std::int64_t p = 0; p < k; ++p) acc += (ab[i * k + p] - a_zero[i]) * (bb[p * n + j] - b_zero[j]);
        yb[i * n + j] = acc;
      }
    }
  }
}

void requantize(std::int64_t outer, std::int64_t channels, std::int64_t inner, const std::int32_t* acc,
                const float* scale, std::int32_t y_zero, std::int32_t lo, std::int32_t hi, std::int32_t* y) {
  // Clamping the float to [lo - zero, hi - zero] first keeps the conversion defined; the bounds are
  // integers, so clamping before or after rounding gives the same result.
  const auto lo_f = static_cast<float>(lo - y_zero), hi_f = static_cast<float>(hi - y_zero);
  for (std::int64_t o = 0; o < outer; ++o) {
    for (std::int64_t c = 0; c < channels; ++c) {
      const std::int64_t base = (o * channels + c) * inner;
      for (std::int64_t i = 0; i < inner; ++i) {
        const float v = std::clamp(static_cast<float>(acc[base + i]) * scale[c], lo_f, hi_f);
        y[base + i] = static_cast<std::int32_t>(std::nearbyint(v)) + y_zero;
      }
    }
  }
}

}  // namespace aciq::kernels::ref
