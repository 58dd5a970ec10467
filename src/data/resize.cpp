// PIL-exact bilinear (antialiased) resampling of 8-bit RGB images, optionally restricted to a window.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "aciq/data.hpp"
#include "data/detail.hpp"

namespace aciq::data {

namespace {

// PIL's fixed point for 8-bit images: 32 - 8 (value) - 2 (sign and overflow headroom) fraction bits.
constexpr int kPrecisionBits = 32 - 8 - 2;

// PIL's triangle filter, support 1.
inline double bilinear_filter(double x) {
  if (x < 0.0) x = -x;
  if (x < 1.0) return 1.0 - x;
  return 0.0;
}

// Filter taps for the outputs [begin, end) of one axis resized from in_size to out_size. Output i
// (relative to begin) reads count[i] inputs from first[i] with coeffs[i * ksize ...]. The arithmetic
// (double precision, operation order, rounding to 22-bit integers) follows PIL's precompute_coeffs and
// normalize_coeffs_8bpc so every coefficient is the same integer.
struct AxisTaps {
  int ksize = 0;
  std::vector<int> first, count;
  std::vector<std::int32_t> coeffs;
};

AxisTaps axis_taps(int in_size, int out_size, int begin, int end) {
  const float in0 = 0.0f, in1 = static_cast<float>(in_size);  // PIL's box, as floats
  const double scale = static_cast<double>(in1 - in0) / out_size;
  const double filterscale = scale < 1.0 ? 1.0 : scale;
  const double support = 1.0 * filterscale;
  AxisTaps t;
  t.ksize = static_cast<int>(std::ceil(support)) * 2 + 1;
  const int n = end - begin;
  t.first.resize(static_cast<std::size_t>(n));
  t.count.resize(static_cast<std::size_t>(n));
  t.coeffs.assign(static_cast<std::size_t>(n) * static_cast<std::size_t>(t.ksize), 0);
  std::vector<double> k(static_cast<std::size_t>(t.ksize));
  for (int xx = begin; xx < end; ++xx) {
    const double center = in0 + (xx + 0.5) * scale;
    const double ss = 1.0 / filterscale;
    // (int) truncates toward zero, as in C: that is PIL's "round".
    int xmin = static_cast<int>(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    int xmax = static_cast<int>(center + support + 0.5);
    if (xmax > in_size) xmax = in_size;
    xmax -= xmin;
    double ww = 0.0;
    for (int x = 0; x < xmax; ++x) {
      const double w = bilinear_filter((x + xmin - center + 0.5) * ss);
      k[x] = w;
      ww += w;
    }
    for (int x = 0; x < xmax; ++x) {
      if (ww != 0.0) k[x] /= ww;
    }
    const std::size_t i = static_cast<std::size_t>(xx - begin);
    t.first[i] = xmin;
    t.count[i] = xmax;
    std::int32_t* c = &t.coeffs[i * static_cast<std::size_t>(t.ksize)];
    for (int x = 0; x < xmax; ++x) {
      c[x] = k[x] < 0 ? static_cast<std::int32_t>(-0.5 + k[x] * (1 << kPrecisionBits))
                      : static_cast<std::int32_t>(0.5 + k[x] * (1 << kPrecisionBits));
    }
  }
  return t;
}

// PIL's clip8: drop the fraction bits, clamp to [0, 255].
inline std::uint8_t clip8(std::int32_t acc) {
  const std::int32_t v = acc >> kPrecisionBits;
  return static_cast<std::uint8_t>(v < 0 ? 0 : v > 255 ? 255 : v);
}

}  // namespace

namespace detail {

RgbImage resize_window(const RgbImage& image, int out_w, int out_h, int x0, int x1, int y0, int y1) {
  if (image.width < 1 || image.height < 1 ||
      image.pixels.size() !=
          static_cast<std::size_t>(image.width) * static_cast<std::size_t>(image.height) * 3) {
    fail("resize: invalid RGB image " + std::to_string(image.width) + "x" + std::to_string(image.height));
  }
  if (out_w < 1 || out_h < 1 || x0 < 0 || x0 >= x1 || x1 > out_w || y0 < 0 || y0 >= y1 || y1 > out_h) {
    fail("resize: invalid output " + std::to_string(out_w) + "x" + std::to_string(out_h) + " window [" +
         std::to_string(x0) + "," + std::to_string(x1) + ")x[" + std::to_string(y0) + "," +
         std::to_string(y1) + ")");
  }
  // As PIL: a pass runs only when that axis changes size (a same-size pass would be an exact copy).
  const bool need_h = out_w != image.width;
  const bool need_v = out_h != image.height;
  const int win_w = x1 - x0, win_h = y1 - y0;

  // Source rows the vertical pass reads (tap ranges grow monotonically with the output index).
  AxisTaps vt;
  int row0 = y0, row1 = y1;
  if (need_v) {
    vt = axis_taps(image.height, out_h, y0, y1);
    row0 = vt.first.front();
    row1 = vt.first.back() + vt.count.back();
  }

  // Horizontal pass over rows [row0, row1) into `mid` (win_w wide).
  const int mid_h = row1 - row0;
  std::vector<std::uint8_t> mid(static_cast<std::size_t>(win_w) * static_cast<std::size_t>(mid_h) * 3);
  const std::size_t in_stride = static_cast<std::size_t>(image.width) * 3;
  const std::size_t mid_stride = static_cast<std::size_t>(win_w) * 3;
  if (need_h) {
    const AxisTaps ht = axis_taps(image.width, out_w, x0, x1);
    for (int y = 0; y < mid_h; ++y) {
      const std::uint8_t* src = image.pixels.data() + static_cast<std::size_t>(row0 + y) * in_stride;
      std::uint8_t* dst = mid.data() + static_cast<std::size_t>(y) * mid_stride;
      for (int x = 0; x < win_w; ++x) {
        const std::int32_t* k = &ht.coeffs[static_cast<std::size_t>(x) * static_cast<std::size_t>(ht.ksize)];
        const std::uint8_t* p = src + static_cast<std::size_t>(ht.first[x]) * 3;
        std::int32_t s0 = 1 << (kPrecisionBits - 1), s1 = s0, s2 = s0;
        for (int i = 0; i < ht.count[x]; ++i) {
          s0 += p[3 * i] * k[i];
          s1 += p[3 * i + 1] * k[i];
          s2 += p[3 * i + 2] * k[i];
        }
        dst[3 * x] = clip8(s0);
        dst[3 * x + 1] = clip8(s1);
        dst[3 * x + 2] = clip8(s2);
      }
    }
  } else {
    for (int y = 0; y < mid_h; ++y) {
      std::memcpy(mid.data() + static_cast<std::size_t>(y) * mid_stride,
                  image.pixels.data() + static_cast<std::size_t>(row0 + y) * in_stride +
                      static_cast<std::size_t>(x0) * 3,
                  mid_stride);
    }
  }

  RgbImage out;
  out.width = win_w;
  out.height = win_h;
  if (!need_v) {
    out.pixels = std::move(mid);
    return out;
  }
  // Vertical pass: output row y reads `mid` rows from vt.first[y] - row0.
  out.pixels.resize(mid_stride * static_cast<std::size_t>(win_h));
  for (int y = 0; y < win_h; ++y) {
    const std::int32_t* k = &vt.coeffs[static_cast<std::size_t>(y) * static_cast<std::size_t>(vt.ksize)];
    const std::uint8_t* src = mid.data() + static_cast<std::size_t>(vt.first[y] - row0) * mid_stride;
    std::uint8_t* dst = out.pixels.data() + static_cast<std::size_t>(y) * mid_stride;
    for (std::size_t x = 0; x < mid_stride; ++x) {
      std::int32_t s = 1 << (kPrecisionBits - 1);
      for (int i = 0; i < vt.count[y]; ++i) s += src[static_cast<std::size_t>(i) * mid_stride + x] * k[i];
      dst[x] = clip8(s);
    }
  }
  return out;
}

}  // namespace detail

RgbImage resize_bilinear(const RgbImage& image, int width, int height) {
  return detail::resize_window(image, width, height, 0, width, 0, height);
}

}  // namespace aciq::data
