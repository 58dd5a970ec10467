// AVX2 integer convolution: im2col of zero-point-shifted taps into int16 pair panels, a 6x16 vpmaddwd
// micro-kernel over cache blocks of tap pairs, and a direct path for depthwise-like convolutions.
// The AVX2 functions carry target attributes (the rest of the file is built for the baseline ISA) and
// run only when has_int16_madd() says the CPU has AVX2.
#include "kernels/fast/integer_conv.hpp"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <type_traits>

#include "kernels/reference/integer.hpp"

namespace aciq::kernels::fast {
namespace {

constexpr std::int64_t kRows = 4;                // output channels per micro-tile
constexpr std::int64_t kCols = 16;               // output pixels per micro-tile: two registers of 8 int32
constexpr std::int64_t kPairBlock = 128;         // tap pairs per cache block: an 8 KB slice of X panel (L1)
constexpr std::int64_t kDirectBelow = 4;         // fewer output channels per group than this: direct path
constexpr std::int64_t kPanelWords = kCols * 2;  // int16 per tap pair of one X panel

// Two int16 in one 32-bit word, `lo` in the low half: the operand layout of one vpmaddwd lane.
std::int32_t pair_word(std::int32_t lo, std::int32_t hi) {
  const auto l = static_cast<std::uint32_t>(static_cast<std::uint16_t>(static_cast<std::int16_t>(lo)));
  const auto h = static_cast<std::uint32_t>(static_cast<std::uint16_t>(static_cast<std::int16_t>(hi)));
  return static_cast<std::int32_t>(l | (h << 16));
}

// row[oy * ow + ox] = x[c, iy, ix] - x_zero for one kernel tap (ky, kx) of channel plane `plane`,
// 0 where the tap falls into the padding (ONNX pads with x_zero, which the shift turns into 0).
template <class T>
__attribute__((target("avx2"))) void tap_row(const T* plane, const ref::ConvShape& s,
                                             const ref::Window2d& win, std::int64_t ky, std::int64_t kx,
                                             std::int32_t x_zero, std::int16_t* row) {
  const std::int64_t off = kx * win.dil_w - win.pad_left;
  std::int64_t lo = 0, hi = s.ow;
  while (lo < s.ow && lo * win.stride_w + off < 0) ++lo;
  while (hi > lo && (hi - 1) * win.stride_w + off >= s.w) --hi;
  const auto zero = static_cast<std::int16_t>(x_zero);
  const std::int64_t pixels = s.oh * s.ow, off_y = ky * win.dil_h - win.pad_top;
  std::int64_t oy_lo = 0, oy_hi = s.oh;
  while (oy_lo < s.oh && oy_lo * win.stride_h + off_y < 0) ++oy_lo;
  while (oy_hi > oy_lo && (oy_hi - 1) * win.stride_h + off_y >= s.h) --oy_hi;
  if (oy_lo >= oy_hi || lo >= hi) {
    std::fill_n(row, pixels, std::int16_t{0});
    return;
  }
  std::fill_n(row, oy_lo * s.ow, std::int16_t{0});
  std::fill(row + oy_hi * s.ow, row + pixels, std::int16_t{0});
  if (win.stride_h == 1 && win.stride_w == 1 && s.ow == s.w) {
    // Output rows as wide as input rows, stride 1 (every "same" 3x3 and 1x1 convolution): the tap is the
    // input plane shifted by one offset, so one long contiguous loop converts all valid rows at once.
    // It also reads the wrapped-around neighbours of edge columns; those are zeroed afterwards.
    const std::int64_t p0 = oy_lo * s.ow + lo, p1 = (oy_hi - 1) * s.ow + hi;
    const T* src = plane + (p0 + off_y * s.w + off);  // = x[iy(oy_lo), ix(lo)], inside the plane
    std::int16_t* r = row + p0;
    for (std::int64_t i = 0; i < p1 - p0; ++i) r[i] = static_cast<std::int16_t>(src[i] - zero);
    if (lo > 0 || hi < s.ow) {
      for (std::int64_t oy = oy_lo; oy < oy_hi; ++oy) {
        std::fill_n(row + oy * s.ow, lo, std::int16_t{0});
        std::fill(row + oy * s.ow + hi, row + (oy + 1) * s.ow, std::int16_t{0});
      }
    }
    return;
  }
  for (std::int64_t oy = oy_lo; oy < oy_hi; ++oy) {
    std::int16_t* r = row + oy * s.ow;
    const std::int64_t iy = oy * win.stride_h + off_y;
    std::fill_n(r, lo, std::int16_t{0});
    const T* src = plane + iy * s.w;
    if (win.stride_w == 1) {
      for (std::int64_t ox = lo; ox < hi; ++ox) r[ox] = static_cast<std::int16_t>(src[ox + off] - zero);
    } else {
      for (std::int64_t ox = lo; ox < hi; ++ox) {
        r[ox] = static_cast<std::int16_t>(src[ox * win.stride_w + off] - zero);
      }
    }
    std::fill(r + hi, r + s.ow, std::int16_t{0});
  }
}

// Interleaves two tap rows (padded with zeros to whole panels) into the pair layout of the X panels:
// dst[panel * stride + 2 * j + {0, 1}] = {r0, r1}[panel * 16 + j].
__attribute__((target("avx2"))) void interleave_rows(const std::int16_t* r0, const std::int16_t* r1,
                                                     std::int64_t panels, std::int64_t stride,
                                                     std::int16_t* dst) {
  for (std::int64_t p = 0; p < panels; ++p) {
    const __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(r0 + p * kCols));
    const __m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(r1 + p * kCols));
    // unpack works within 128-bit halves: lo holds pixels 0-3 and 8-11, hi 4-7 and 12-15.
    const __m256i lo = _mm256_unpacklo_epi16(a, b);
    const __m256i hi = _mm256_unpackhi_epi16(a, b);
    auto* d = reinterpret_cast<__m256i*>(dst + p * stride);
    _mm256_storeu_si256(d, _mm256_permute2x128_si256(lo, hi, 0x20));
    _mm256_storeu_si256(d + 1, _mm256_permute2x128_si256(lo, hi, 0x31));
  }
}

// c[r, j] (+)= sum over `pairs` tap pairs of the X panel (pair-major, 16 pixels) times the weight words
// (pair-major, kRows channels). Eight accumulators, two X registers, a broadcast and a product: 12 of 16 ymm
// (with six rows GCC spilled accumulators to the stack, measured: madd needs a temporary, so 6x16 wants 16
// registers).
__attribute__((target("avx2"))) void tile_4x16(std::int64_t pairs, const std::int16_t* xp,
                                               const std::int32_t* wp, std::int32_t* c, std::int64_t ldc,
                                               bool accumulate) {
  __m256i acc[kRows][2];
  for (int r = 0; r < kRows; ++r) {
    for (int h = 0; h < 2; ++h) {
      acc[r][h] = accumulate ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(c + r * ldc + h * 8))
                             : _mm256_setzero_si256();
    }
  }
  for (std::int64_t k = 0; k < pairs; ++k) {
    const __m256i x0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xp + k * kPanelWords));
    const __m256i x1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xp + k * kPanelWords + 8 * 2));
    for (int r = 0; r < kRows; ++r) {
      const __m256i w = _mm256_set1_epi32(wp[k * kRows + r]);
      acc[r][0] = _mm256_add_epi32(acc[r][0], _mm256_madd_epi16(x0, w));
      acc[r][1] = _mm256_add_epi32(acc[r][1], _mm256_madd_epi16(x1, w));
    }
  }
  for (int r = 0; r < kRows; ++r) {
    for (int h = 0; h < 2; ++h)
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(c + r * ldc + h * 8), acc[r][h]);
  }
}

// acc[i] += w * row[i]; wraps as int32 registers do (the reference's sums never come near 2^31).
__attribute__((target("avx2"))) void accumulate_tap(std::int32_t* acc, const std::int16_t* row,
                                                    std::int32_t w, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) {
    acc[i] = static_cast<std::int32_t>(static_cast<std::uint32_t>(acc[i]) +
                                       static_cast<std::uint32_t>(w * static_cast<std::int32_t>(row[i])));
  }
}

template <class T>
__attribute__((target("avx2"))) void requantize_avx2(std::int64_t outer, std::int64_t channels,
                                                     std::int64_t inner, const std::int32_t* acc,
                                                     const std::int32_t* bias, const float* scale,
                                                     std::int32_t y_zero, std::int32_t lo, std::int32_t hi,
                                                     T* y) {
  const auto lo_f = static_cast<float>(lo - y_zero), hi_f = static_cast<float>(hi - y_zero);
  const __m256 vlo = _mm256_set1_ps(lo_f), vhi = _mm256_set1_ps(hi_f);
  const __m256i vzero = _mm256_set1_epi32(y_zero);
  for (std::int64_t o = 0; o < outer; ++o) {
    for (std::int64_t c = 0; c < channels; ++c) {
      const std::int64_t base = (o * channels + c) * inner;
      const std::int32_t b = bias ? bias[c] : 0;
      const __m256 vs = _mm256_set1_ps(scale[c]);
      const __m256i vb = _mm256_set1_epi32(b);
      std::int64_t i = 0;
      for (; i + 8 <= inner; i += 8) {
        const __m256i a =
            _mm256_add_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(acc + base + i)), vb);
        __m256 f = _mm256_mul_ps(_mm256_cvtepi32_ps(a), vs);
        f = _mm256_min_ps(_mm256_max_ps(f, vlo), vhi);
        // cvtps rounds in the current (default: nearest-even) mode, as std::nearbyint does.
        const __m256i q = _mm256_add_epi32(_mm256_cvtps_epi32(f), vzero);
        const __m128i q16 = _mm_packs_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
        // Values are already within [lo, hi], so the saturating packs below are exact.
        const __m128i q8 =
            std::is_same_v<T, std::uint8_t> ? _mm_packus_epi16(q16, q16) : _mm_packs_epi16(q16, q16);
        _mm_storel_epi64(reinterpret_cast<__m128i*>(y + base + i), q8);
      }
      for (; i < inner; ++i) {
        const auto a = static_cast<std::int32_t>(static_cast<std::uint32_t>(acc[base + i]) +
                                                 static_cast<std::uint32_t>(b));
        const float v = std::clamp(static_cast<float>(a) * scale[c], lo_f, hi_f);
        y[base + i] = static_cast<T>(static_cast<std::int32_t>(std::nearbyint(v)) + y_zero);
      }
    }
  }
}

template <class T>
void requantize_plain(std::int64_t outer, std::int64_t channels, std::int64_t inner, const std::int32_t* acc,
                      const std::int32_t* bias, const float* scale, std::int32_t y_zero, std::int32_t lo,
                      std::int32_t hi, T* y) {
  std::vector<std::int32_t> sums(acc, acc + outer * channels * inner);
  if (bias) {
    for (std::int64_t i = 0; i < outer * channels * inner; ++i) {
      const std::int64_t c = i / inner % channels;
      sums[i] = static_cast<std::int32_t>(static_cast<std::uint32_t>(sums[i]) +
                                          static_cast<std::uint32_t>(bias[c]));
    }
  }
  ref::requantize(outer, channels, inner, sums.data(), scale, y_zero, lo, hi, sums.data());
  std::transform(sums.begin(), sums.end(), y, [](std::int32_t v) { return static_cast<T>(v); });
}

}  // namespace

bool has_int16_madd() {
  static const bool avx2 = __builtin_cpu_supports("avx2") != 0;  // a CPU fact, set once, never mutated
  return avx2;
}

PackedIntegerConv::PackedIntegerConv(const ref::ConvShape& s, const ref::Window2d& win, const std::int32_t* w,
                                     const std::int32_t* w_zero)
    : s_(s), win_(win), w_zero_(w_zero, w_zero + s.oc) {
  const std::int64_t icg = s.c / s.group, ocg = s.oc / s.group;
  k_ = icg * win.kh * win.kw;
  pairs_ = (k_ + 1) / 2;
  blocks_ = (ocg + kRows - 1) / kRows;
  direct_ = ocg < kDirectBelow && s.group > 1;
  shifted_.resize(static_cast<std::size_t>(s.oc * k_));
  for (std::int64_t oc = 0; oc < s.oc; ++oc) {
    for (std::int64_t k = 0; k < k_; ++k) shifted_[oc * k_ + k] = w[oc * k_ + k] - w_zero[oc];
  }
  if (direct_ || !has_int16_madd()) return;
  // Panels: [group][block][pair][row]; rows past ocg and the odd tap past k_ are 0, so they add nothing.
  panels_.assign(static_cast<std::size_t>(s.group * blocks_ * pairs_ * kRows), 0);
  for (std::int64_t g = 0; g < s.group; ++g) {
    for (std::int64_t b = 0; b < blocks_; ++b) {
      for (std::int64_t p = 0; p < pairs_; ++p) {
        for (std::int64_t r = 0; r < kRows; ++r) {
          const std::int64_t o = b * kRows + r;
          if (o >= ocg) continue;
          const std::int32_t* wr = shifted_.data() + (g * ocg + o) * k_;
          const std::int32_t lo = wr[2 * p], hi = 2 * p + 1 < k_ ? wr[2 * p + 1] : 0;
          panels_[((g * blocks_ + b) * pairs_ + p) * kRows + r] = pair_word(lo, hi);
        }
      }
    }
  }
}

const char* PackedIntegerConv::implementation() const {
  if (!has_int16_madd()) return "reference";
  return direct_ ? "direct (AVX2)" : "int16 GEMM (AVX2)";
}

void PackedIntegerConv::run(const void* x, bool x_unsigned, std::int32_t x_zero, std::int32_t* y,
                            ThreadPool& pool) const {
  if (x_unsigned) {
    run_typed(static_cast<const std::uint8_t*>(x), x_zero, y, pool);
  } else {
    run_typed(static_cast<const std::int8_t*>(x), x_zero, y, pool);
  }
}

template <class T>
void PackedIntegerConv::run_typed(const T* x, std::int32_t x_zero, std::int32_t* y, ThreadPool& pool) const {
  const std::int64_t in_image = s_.c * s_.h * s_.w, out_image = s_.oc * s_.oh * s_.ow;
  if (!has_int16_madd()) {
    std::vector<std::int32_t> wide(x, x + s_.n * in_image);
    const std::vector<std::int32_t> no_zero(static_cast<std::size_t>(s_.oc), 0);
    ref::conv2d_integer(s_, win_, wide.data(), x_zero, shifted_.data(), no_zero.data(), y);
    return;
  }
  if (direct_) {
    direct_image(x, x_zero, y, pool);
    return;
  }
  // Several images: one per thread (the inner parallel loops then run serially); a single image
  // spreads its pixel panels over the threads instead.
  pool.parallel_for(s_.n, [&](std::int64_t lo, std::int64_t hi) {
    for (std::int64_t n = lo; n < hi; ++n) gemm_image(x + n * in_image, x_zero, y + n * out_image, pool);
  });
}

template <class T>
void PackedIntegerConv::gemm_image(const T* x, std::int32_t x_zero, std::int32_t* y, ThreadPool& pool) const {
  const std::int64_t icg = s_.c / s_.group, ocg = s_.oc / s_.group;
  const std::int64_t pixels = s_.oh * s_.ow, panels = (pixels + kCols - 1) / kCols;
  const std::int64_t taps = win_.kh * win_.kw, plane = s_.h * s_.w;
  const std::int64_t panel_stride = pairs_ * kPanelWords;
  // Every element is written by the packing below: no zero fill.
  const std::unique_ptr<std::int16_t[]> xpack(
      new std::int16_t[static_cast<std::size_t>(panels * panel_stride)]);
  for (std::int64_t g = 0; g < s_.group; ++g) {
    const T* xg = x + g * icg * plane;
    // im2col: each tap pair's two rows, then interleaved into every panel.
    pool.parallel_for(pairs_, [&](std::int64_t lo, std::int64_t hi) {
      std::vector<std::int16_t> r0(static_cast<std::size_t>(panels * kCols), 0), r1(r0.size(), 0);
      for (std::int64_t p = lo; p < hi; ++p) {
        for (int half = 0; half < 2; ++half) {
          const std::int64_t k = 2 * p + half;
          std::vector<std::int16_t>& row = half == 0 ? r0 : r1;
          if (k >= k_) {
            std::fill(row.begin(), row.end(), std::int16_t{0});
            continue;
          }
          const std::int64_t ic = k / taps, ky = k % taps / win_.kw, kx = k % win_.kw;
          tap_row(xg + ic * plane, s_, win_, ky, kx, x_zero, row.data());
        }
        interleave_rows(r0.data(), r1.data(), panels, panel_stride, xpack.get() + p * kPanelWords);
      }
    });
    std::int32_t* yg = y + g * ocg * pixels;
    const std::int32_t* wg = panels_.data() + g * blocks_ * pairs_ * kRows;
    pool.parallel_for(panels, [&](std::int64_t lo, std::int64_t hi) {
      alignas(32) std::int32_t edge[kRows * kCols];
      for (std::int64_t k0 = 0; k0 < pairs_; k0 += kPairBlock) {
        const std::int64_t nk = std::min(kPairBlock, pairs_ - k0);
        const bool accumulate = k0 > 0;
        for (std::int64_t pp = lo; pp < hi; ++pp) {
          const std::int16_t* xp = xpack.get() + pp * panel_stride + k0 * kPanelWords;
          const std::int64_t cols = std::min(kCols, pixels - pp * kCols);
          for (std::int64_t b = 0; b < blocks_; ++b) {
            const std::int32_t* wp = wg + (b * pairs_ + k0) * kRows;
            const std::int64_t rows = std::min(kRows, ocg - b * kRows);
            std::int32_t* c = yg + b * kRows * pixels + pp * kCols;
            if (rows == kRows && cols == kCols) {
              tile_4x16(nk, xp, wp, c, pixels, accumulate);
              continue;
            }
            // Edge tile: through a full-size buffer, only the valid part copied in and out.
            for (std::int64_t r = 0; r < rows && accumulate; ++r)
              std::copy_n(c + r * pixels, cols, edge + r * kCols);
            tile_4x16(nk, xp, wp, edge, kCols, accumulate);
            for (std::int64_t r = 0; r < rows; ++r) std::copy_n(edge + r * kCols, cols, c + r * pixels);
          }
        }
      }
    });
  }
}

template <class T>
void PackedIntegerConv::direct_image(const T* x, std::int32_t x_zero, std::int32_t* y,
                                     ThreadPool& pool) const {
  const std::int64_t icg = s_.c / s_.group, ocg = s_.oc / s_.group;
  const std::int64_t pixels = s_.oh * s_.ow, plane = s_.h * s_.w;
  pool.parallel_for(s_.n * s_.oc, [&](std::int64_t lo, std::int64_t hi) {
    std::vector<std::int16_t> row(static_cast<std::size_t>(pixels));
    for (std::int64_t item = lo; item < hi; ++item) {
      const std::int64_t n = item / s_.oc, oc = item % s_.oc, g = oc / ocg;
      std::int32_t* acc = y + item * pixels;
      std::fill_n(acc, pixels, 0);
      for (std::int64_t ic = 0; ic < icg; ++ic) {
        const T* xc = x + (n * s_.c + g * icg + ic) * plane;
        for (std::int64_t ky = 0; ky < win_.kh; ++ky) {
          for (std::int64_t kx = 0; kx < win_.kw; ++kx) {
            const std::int32_t w = shifted_[oc * k_ + (ic * win_.kh + ky) * win_.kw + kx];
            if (w == 0) continue;  // adds nothing; common in quantized depthwise filters
            tap_row(xc, s_, win_, ky, kx, x_zero, row.data());
            accumulate_tap(acc, row.data(), w, pixels);
          }
        }
      }
    }
  });
}

void requantize_to_8bit(std::int64_t outer, std::int64_t channels, std::int64_t inner,
                        const std::int32_t* acc, const std::int32_t* bias, const float* scale,
                        std::int32_t y_zero, std::int32_t lo, std::int32_t hi, void* y, bool y_unsigned) {
  if (has_int16_madd()) {
    if (y_unsigned) {
      requantize_avx2(outer, channels, inner, acc, bias, scale, y_zero, lo, hi,
                      static_cast<std::uint8_t*>(y));
    } else {
      requantize_avx2(outer, channels, inner, acc, bias, scale, y_zero, lo, hi, static_cast<std::int8_t*>(y));
    }
    return;
  }
  if (y_unsigned) {
    requantize_plain(outer, channels, inner, acc, bias, scale, y_zero, lo, hi, static_cast<std::uint8_t*>(y));
  } else {
    requantize_plain(outer, channels, inner, acc, bias, scale, y_zero, lo, hi, static_cast<std::int8_t*>(y));
  }
}

}  // namespace aciq::kernels::fast
