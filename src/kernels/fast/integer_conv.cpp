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
// VNNI path: 8 output channels x 32 pixels (16 zmm accumulators), taps in quads of four bytes.
constexpr std::int64_t kRows8 = 8;
constexpr std::int64_t kCols32 = 32;
constexpr std::int64_t kQuadBlock = 64;           // tap quads per cache block: 8 KB of X panel
constexpr std::int64_t kQuadBytes = kCols32 * 4;  // bytes per tap quad of one X panel

// Two int16 in one 32-bit word, `lo` in the low half: the operand layout of one vpmaddwd lane.
std::int32_t pair_word(std::int32_t lo, std::int32_t hi) {
  const auto l = static_cast<std::uint32_t>(static_cast<std::uint16_t>(static_cast<std::int16_t>(lo)));
  const auto h = static_cast<std::uint32_t>(static_cast<std::uint16_t>(static_cast<std::int16_t>(hi)));
  return static_cast<std::int32_t>(l | (h << 16));
}

// row[oy * ow + ox] = convert(x[c, iy, ix]) for one kernel tap (ky, kx) of channel plane `plane`, `pad`
// where the tap falls into the padding. ONNX pads with x_zero: the int16 path converts to x - x_zero
// and pads 0, the VNNI path keeps raw bytes and pads x_zero itself.
template <class T, class Out, class Convert>
__attribute__((target("avx2"))) void tap_row(const T* plane, const ref::ConvShape& s,
                                             const ref::Window2d& win, std::int64_t ky, std::int64_t kx,
                                             Out pad, Convert convert, Out* row) {
  const std::int64_t off = kx * win.dil_w - win.pad_left;
  std::int64_t lo = 0, hi = s.ow;
  while (lo < s.ow && lo * win.stride_w + off < 0) ++lo;
  while (hi > lo && (hi - 1) * win.stride_w + off >= s.w) --hi;
  const std::int64_t pixels = s.oh * s.ow, off_y = ky * win.dil_h - win.pad_top;
  std::int64_t oy_lo = 0, oy_hi = s.oh;
  while (oy_lo < s.oh && oy_lo * win.stride_h + off_y < 0) ++oy_lo;
  while (oy_hi > oy_lo && (oy_hi - 1) * win.stride_h + off_y >= s.h) --oy_hi;
  if (oy_lo >= oy_hi || lo >= hi) {
    std::fill_n(row, pixels, pad);
    return;
  }
  std::fill_n(row, oy_lo * s.ow, pad);
  std::fill(row + oy_hi * s.ow, row + pixels, pad);
  if (win.stride_h == 1 && win.stride_w == 1 && s.ow == s.w) {
    // Output rows as wide as input rows, stride 1 (every "same" 3x3 and 1x1 convolution): the tap is the
    // input plane shifted by one offset, so one long contiguous loop converts all valid rows at once.
    // It also reads the wrapped-around neighbours of edge columns; those are overwritten with the padding
    // afterwards.
    const std::int64_t p0 = oy_lo * s.ow + lo, p1 = (oy_hi - 1) * s.ow + hi;
    const T* src = plane + (p0 + off_y * s.w + off);  // = x[iy(oy_lo), ix(lo)], inside the plane
    Out* r = row + p0;
    for (std::int64_t i = 0; i < p1 - p0; ++i) r[i] = convert(src[i]);
    if (lo > 0 || hi < s.ow) {
      for (std::int64_t oy = oy_lo; oy < oy_hi; ++oy) {
        std::fill_n(row + oy * s.ow, lo, pad);
        std::fill(row + oy * s.ow + hi, row + (oy + 1) * s.ow, pad);
      }
    }
    return;
  }
  for (std::int64_t oy = oy_lo; oy < oy_hi; ++oy) {
    Out* r = row + oy * s.ow;
    const std::int64_t iy = oy * win.stride_h + off_y;
    std::fill_n(r, lo, pad);
    const T* src = plane + iy * s.w;
    if (win.stride_w == 1) {
      for (std::int64_t ox = lo; ox < hi; ++ox) r[ox] = convert(src[ox + off]);
    } else {
      for (std::int64_t ox = lo; ox < hi; ++ox) {
        r[ox] = convert(src[ox * win.stride_w + off]);
      }
    }
    std::fill(r + hi, r + s.ow, pad);
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

// Four tap rows of bytes (padded to whole panels) into the quad layout of the VNNI X panels:
// dst[panel * stride + 4 * j + t] = r[t][panel * 32 + j].
__attribute__((target("avx2"))) void interleave_quads(const std::uint8_t* const r[4], std::int64_t panels,
                                                      std::int64_t stride, std::uint8_t* dst) {
  for (std::int64_t p = 0; p < panels; ++p) {
    // (No lambda for the loads: a lambda does not inherit the target attribute.)
    const __m256i a0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(r[0] + p * kCols32));
    const __m256i a1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(r[1] + p * kCols32));
    const __m256i a2 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(r[2] + p * kCols32));
    const __m256i a3 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(r[3] + p * kCols32));
    // Within each 128-bit half: bytes of taps 0/1 and 2/3 paired, then the pairs paired into quads.
    const __m256i t01lo = _mm256_unpacklo_epi8(a0, a1), t01hi = _mm256_unpackhi_epi8(a0, a1);
    const __m256i t23lo = _mm256_unpacklo_epi8(a2, a3), t23hi = _mm256_unpackhi_epi8(a2, a3);
    const __m256i q0 = _mm256_unpacklo_epi16(t01lo, t23lo);  // pixels 0-3 | 16-19
    const __m256i q1 = _mm256_unpackhi_epi16(t01lo, t23lo);  // pixels 4-7 | 20-23
    const __m256i q2 = _mm256_unpacklo_epi16(t01hi, t23hi);  // pixels 8-11 | 24-27
    const __m256i q3 = _mm256_unpackhi_epi16(t01hi, t23hi);  // pixels 12-15 | 28-31
    auto* d = reinterpret_cast<__m256i*>(dst + p * stride);
    _mm256_storeu_si256(d, _mm256_permute2x128_si256(q0, q1, 0x20));
    _mm256_storeu_si256(d + 1, _mm256_permute2x128_si256(q2, q3, 0x20));
    _mm256_storeu_si256(d + 2, _mm256_permute2x128_si256(q0, q1, 0x31));
    _mm256_storeu_si256(d + 3, _mm256_permute2x128_si256(q2, q3, 0x31));
  }
}

// c[r, j] (+)= sum over `quads` tap quads of u8 X bytes times s8 weight bytes: vpdpbusd adds the four
// products of each 32-bit lane into int32 exactly (their sum fits) and wraps the accumulation.
__attribute__((target("avx512f,avx512bw,avx512vnni"))) void tile_8x32(std::int64_t quads,
                                                                      const std::uint8_t* xp,
                                                                      const std::int32_t* wp, std::int32_t* c,
                                                                      std::int64_t ldc, bool accumulate) {
  __m512i acc[kRows8][2];
  for (int r = 0; r < kRows8; ++r) {
    for (int h = 0; h < 2; ++h)
      acc[r][h] = accumulate ? _mm512_loadu_si512(c + r * ldc + h * 16) : _mm512_setzero_si512();
  }
  for (std::int64_t q = 0; q < quads; ++q) {
    const __m512i x0 = _mm512_loadu_si512(xp + q * kQuadBytes);
    const __m512i x1 = _mm512_loadu_si512(xp + q * kQuadBytes + 64);
    for (int r = 0; r < kRows8; ++r) {
      const __m512i w = _mm512_set1_epi32(wp[q * kRows8 + r]);
      acc[r][0] = _mm512_dpbusd_epi32(acc[r][0], x0, w);
      acc[r][1] = _mm512_dpbusd_epi32(acc[r][1], x1, w);
    }
  }
  for (int r = 0; r < kRows8; ++r) {
    for (int h = 0; h < 2; ++h) _mm512_storeu_si512(c + r * ldc + h * 16, acc[r][h]);
  }
}

// padded[(iy + pad_top) * wp + ix + pad_left] = x[iy, ix] - x_zero, 0 in the border: one conversion per
// plane, after which every tap of a direct convolution reads contiguous rows.
template <class T>
__attribute__((target("avx2"))) void pad_plane(const T* plane, std::int64_t h, std::int64_t w,
                                               std::int64_t top, std::int64_t left, std::int64_t wp,
                                               std::int64_t hp, std::int32_t x_zero, std::int16_t* padded) {
  std::fill_n(padded, top * wp, std::int16_t{0});
  for (std::int64_t iy = 0; iy < h; ++iy) {
    std::int16_t* r = padded + (iy + top) * wp;
    std::fill_n(r, left, std::int16_t{0});
    const T* src = plane + iy * w;
    for (std::int64_t ix = 0; ix < w; ++ix) r[left + ix] = static_cast<std::int16_t>(src[ix] - x_zero);
    std::fill(r + left + w, r + wp, std::int16_t{0});
  }
  std::fill(padded + (top + h) * wp, padded + hp * wp, std::int16_t{0});
}

// acc[oy, ox] (+)= sum over taps t of w[t] * padded[oy * stride_h + ky * dil_h, ox * stride_w + kx * dil_w]:
// all taps of one output row summed in a register, one store per 8 outputs. Wraps as int32 registers do
// (the reference's sums never come near 2^31).
constexpr std::int64_t kMaxDirectTaps = 64;
constexpr std::int64_t kDirectSlack = 32;  // int16 past a padded plane that a last vector step may read
__attribute__((target("avx2"))) void direct_rows(const std::int16_t* padded, std::int64_t wp,
                                                 const ref::ConvShape& s, const ref::Window2d& win,
                                                 const std::int32_t* w, bool accumulate, std::int32_t* acc) {
  const std::int64_t taps = win.kh * win.kw;
  std::int64_t off[kMaxDirectTaps];
  __m256i wv[kMaxDirectTaps];
  for (std::int64_t t = 0; t < taps; ++t) {
    off[t] = t / win.kw * win.dil_h * wp + t % win.kw * win.dil_w;
    wv[t] = _mm256_set1_epi32(w[t]);
  }
  for (std::int64_t oy = 0; oy < s.oh; ++oy) {
    const std::int16_t* base = padded + oy * win.stride_h * wp;
    std::int32_t* a = acc + oy * s.ow;
    std::int64_t ox = 0;
    if (win.stride_w <= 2) {
      // Eight outputs per step, the last step too: it reads up to kDirectSlack elements past the plane
      // (the buffer has them) and stores only the valid outputs.
      for (; ox < s.ow; ox += 8) {
        const std::int64_t valid = std::min<std::int64_t>(8, s.ow - ox);
        alignas(32) std::int32_t tail[8] = {};
        if (valid < 8 && accumulate) std::copy_n(a + ox, valid, tail);
        __m256i sum = valid < 8    ? _mm256_load_si256(reinterpret_cast<const __m256i*>(tail))
                      : accumulate ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + ox))
                                   : _mm256_setzero_si256();
        for (std::int64_t t = 0; t < taps; ++t) {
          const std::int16_t* src = base + off[t] + ox * win.stride_w;
          __m256i v;
          if (win.stride_w == 1) {
            v = _mm256_cvtepi16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src)));
          } else {
            // Stride 2: sixteen int16 read as eight int32 lanes; the even element is each lane's low
            // half, sign-extended by a shift pair.
            v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src));
            v = _mm256_srai_epi32(_mm256_slli_epi32(v, 16), 16);
          }
          sum = _mm256_add_epi32(sum, _mm256_mullo_epi32(v, wv[t]));
        }
        if (valid == 8) {
          _mm256_storeu_si256(reinterpret_cast<__m256i*>(a + ox), sum);
        } else {
          _mm256_store_si256(reinterpret_cast<__m256i*>(tail), sum);
          std::copy_n(tail, valid, a + ox);
        }
      }
    }
    for (; ox < s.ow; ++ox) {
      std::uint32_t sum = accumulate ? static_cast<std::uint32_t>(a[ox]) : 0U;
      for (std::int64_t t = 0; t < taps; ++t) {
        sum += static_cast<std::uint32_t>(w[t] * static_cast<std::int32_t>(base[off[t] + ox * win.stride_w]));
      }
      a[ox] = static_cast<std::int32_t>(sum);
    }
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

IntegerIsa best_integer_isa() {
  // A CPU fact, computed once and never mutated.
  static const IntegerIsa best = [] {
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vnni"))
      return IntegerIsa::kAvx512Vnni;
    return has_int16_madd() ? IntegerIsa::kAvx2 : IntegerIsa::kReference;
  }();
  return best;
}

PackedIntegerConv::PackedIntegerConv(const ref::ConvShape& s, const ref::Window2d& win, const std::int32_t* w,
                                     const std::int32_t* w_zero, IntegerIsa isa)
    : s_(s), win_(win), w_zero_(w_zero, w_zero + s.oc) {
  const std::int64_t icg = s.c / s.group, ocg = s.oc / s.group;
  k_ = icg * win.kh * win.kw;
  pairs_ = (k_ + 1) / 2;
  quads_ = (k_ + 3) / 4;
  blocks_ = (ocg + kRows - 1) / kRows;
  direct_ = ocg < kDirectBelow && s.group > 1 && win.kh * win.kw <= kMaxDirectTaps;
  isa_ = std::min(isa, best_integer_isa());
  shifted_.resize(static_cast<std::size_t>(s.oc * k_));
  for (std::int64_t oc = 0; oc < s.oc; ++oc) {
    for (std::int64_t k = 0; k < k_; ++k) shifted_[oc * k_ + k] = w[oc * k_ + k] - w_zero[oc];
  }
  if (isa_ == IntegerIsa::kReference) return;
  if (direct_) {
    isa_ = IntegerIsa::kAvx2;
    return;
  }
  const bool bytes =
      std::all_of(shifted_.begin(), shifted_.end(), [](std::int32_t v) { return v >= -128 && v <= 127; });
  if (isa_ == IntegerIsa::kAvx512Vnni && !bytes) isa_ = IntegerIsa::kAvx2;
  if (isa_ == IntegerIsa::kAvx512Vnni) {
    // Quads: [group][block of 8][quad][row], four int8 taps per word (tap 4q + t in byte t); rows past
    // ocg and taps past k_ are 0. Row sums feed the zero-point correction.
    const std::int64_t blocks8 = (ocg + kRows8 - 1) / kRows8;
    quads8_.assign(static_cast<std::size_t>(s.group * blocks8 * quads_ * kRows8), 0);
    row_sums_.assign(static_cast<std::size_t>(s.oc), 0);
    for (std::int64_t oc = 0; oc < s.oc; ++oc) {
      std::uint32_t sum = 0;
      for (std::int64_t k = 0; k < k_; ++k) sum += static_cast<std::uint32_t>(shifted_[oc * k_ + k]);
      row_sums_[oc] = static_cast<std::int32_t>(sum);
    }
    for (std::int64_t g = 0; g < s.group; ++g) {
      for (std::int64_t o = 0; o < ocg; ++o) {
        const std::int32_t* wr = shifted_.data() + (g * ocg + o) * k_;
        for (std::int64_t q = 0; q < quads_; ++q) {
          std::uint32_t word = 0;
          for (std::int64_t t = 0; t < 4 && 4 * q + t < k_; ++t) {
            word |=
                static_cast<std::uint32_t>(static_cast<std::uint8_t>(static_cast<std::int8_t>(wr[4 * q + t])))
                << (8 * t);
          }
          quads8_[((g * blocks8 + o / kRows8) * quads_ + q) * kRows8 + o % kRows8] =
              static_cast<std::int32_t>(word);
        }
      }
    }
    return;
  }
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
  switch (isa_) {
    case IntegerIsa::kReference: return "reference";
    case IntegerIsa::kAvx512Vnni: return "u8s8 GEMM (AVX-512 VNNI)";
    case IntegerIsa::kAvx2: break;
  }
  return direct_ ? "direct (AVX2)" : "int16 GEMM (AVX2)";
}

void PackedIntegerConv::run(const void* x, bool x_unsigned, std::int32_t x_zero, std::int32_t* y,
                            ThreadPool& pool, std::int32_t* channel_offset) const {
  if (x_unsigned) {
    run_typed(static_cast<const std::uint8_t*>(x), x_zero, y, pool, channel_offset);
  } else {
    run_typed(static_cast<const std::int8_t*>(x), x_zero, y, pool, channel_offset);
  }
}

template <class T>
void PackedIntegerConv::run_typed(const T* x, std::int32_t x_zero, std::int32_t* y, ThreadPool& pool,
                                  std::int32_t* channel_offset) const {
  const std::int64_t in_image = s_.c * s_.h * s_.w, out_image = s_.oc * s_.oh * s_.ow;
  const bool defer = channel_offset != nullptr && isa_ == IntegerIsa::kAvx512Vnni && !direct_;
  if (channel_offset) {
    // The VNNI path's correction -x_zero' * sum(w) (x_zero' the zero point in raw-byte terms).
    const auto zero = static_cast<std::uint32_t>(std::is_same_v<T, std::int8_t> ? x_zero + 128 : x_zero);
    for (std::int64_t oc = 0; oc < s_.oc; ++oc) {
      channel_offset[oc] =
          defer ? static_cast<std::int32_t>(0U - zero * static_cast<std::uint32_t>(row_sums_[oc])) : 0;
    }
  }
  if (isa_ == IntegerIsa::kReference) {
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
    for (std::int64_t n = lo; n < hi; ++n) {
      if (isa_ == IntegerIsa::kAvx512Vnni) {
        vnni_image(x + n * in_image, x_zero, y + n * out_image, pool, !defer);
      } else {
        gemm_image(x + n * in_image, x_zero, y + n * out_image, pool);
      }
    }
  });
}

template <class T>
void PackedIntegerConv::gemm_image(const T* x, std::int32_t x_zero, std::int32_t* y, ThreadPool& pool) const {
  const std::int64_t icg = s_.c / s_.group, ocg = s_.oc / s_.group;
  const std::int64_t pixels = s_.oh * s_.ow, panels = (pixels + kCols - 1) / kCols;
  const std::int64_t taps = win_.kh * win_.kw, plane = s_.h * s_.w;
  const std::int64_t panel_stride = pairs_ * kPanelWords;
  const auto shift = [x_zero](T v) { return static_cast<std::int16_t>(v - x_zero); };
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
          tap_row(xg + ic * plane, s_, win_, ky, kx, std::int16_t{0}, shift, row.data());
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
void PackedIntegerConv::vnni_image(const T* x, std::int32_t x_zero, std::int32_t* y, ThreadPool& pool,
                                   bool correct) const {
  // Raw bytes: uint8 as they are, int8 moved to uint8 by +128 (x ^ 0x80) with the zero point moved
  // alike, so x - x_zero is unchanged. Padding holds the zero point itself, as ONNX defines, and the
  // correction below removes x_zero * sum(w) from every output:
  //   sum (x - x_zero) * w = sum x * w - x_zero * sum w.
  constexpr bool kSigned = std::is_same_v<T, std::int8_t>;
  const std::int32_t zero = kSigned ? x_zero + 128 : x_zero;
  const auto pad = static_cast<std::uint8_t>(zero);
  const auto raw = [](T v) {
    return kSigned ? static_cast<std::uint8_t>(static_cast<std::uint8_t>(v) ^ 0x80U)
                   : static_cast<std::uint8_t>(v);
  };
  const std::int64_t icg = s_.c / s_.group, ocg = s_.oc / s_.group;
  const std::int64_t pixels = s_.oh * s_.ow, panels = (pixels + kCols32 - 1) / kCols32;
  const std::int64_t taps = win_.kh * win_.kw, plane = s_.h * s_.w;
  const std::int64_t panel_stride = quads_ * kQuadBytes, blocks8 = (ocg + kRows8 - 1) / kRows8;
  // Every element is written by the packing below: no zero fill.
  const std::unique_ptr<std::uint8_t[]> xpack(
      new std::uint8_t[static_cast<std::size_t>(panels * panel_stride)]);
  for (std::int64_t g = 0; g < s_.group; ++g) {
    const T* xg = x + g * icg * plane;
    pool.parallel_for(quads_, [&](std::int64_t lo, std::int64_t hi) {
      // Pixels past the end of the last panel stay 0: they only feed outputs that are never stored.
      std::vector<std::uint8_t> rows(static_cast<std::size_t>(4 * panels * kCols32), 0);
      const std::uint8_t* r[4];
      for (int t = 0; t < 4; ++t) r[t] = rows.data() + t * panels * kCols32;
      for (std::int64_t q = lo; q < hi; ++q) {
        for (int t = 0; t < 4; ++t) {
          std::uint8_t* row = rows.data() + t * panels * kCols32;
          const std::int64_t k = 4 * q + t;
          if (k >= k_) {
            std::fill_n(row, panels * kCols32, std::uint8_t{0});  // weight 0: adds nothing
            continue;
          }
          const std::int64_t ic = k / taps, ky = k % taps / win_.kw, kx = k % win_.kw;
          tap_row(xg + ic * plane, s_, win_, ky, kx, pad, raw, row);
        }
        interleave_quads(r, panels, panel_stride, xpack.get() + q * kQuadBytes);
      }
    });
    std::int32_t* yg = y + g * ocg * pixels;
    const std::int32_t* wg = quads8_.data() + g * blocks8 * quads_ * kRows8;
    pool.parallel_for(panels, [&](std::int64_t lo, std::int64_t hi) {
      alignas(64) std::int32_t edge[kRows8 * kCols32];
      for (std::int64_t k0 = 0; k0 < quads_; k0 += kQuadBlock) {
        const std::int64_t nk = std::min(kQuadBlock, quads_ - k0);
        const bool accumulate = k0 > 0;
        for (std::int64_t pp = lo; pp < hi; ++pp) {
          const std::uint8_t* xp = xpack.get() + pp * panel_stride + k0 * kQuadBytes;
          const std::int64_t cols = std::min(kCols32, pixels - pp * kCols32);
          for (std::int64_t b = 0; b < blocks8; ++b) {
            const std::int32_t* wp = wg + (b * quads_ + k0) * kRows8;
            const std::int64_t rows = std::min(kRows8, ocg - b * kRows8);
            std::int32_t* c = yg + b * kRows8 * pixels + pp * kCols32;
            if (rows == kRows8 && cols == kCols32) {
              tile_8x32(nk, xp, wp, c, pixels, accumulate);
              continue;
            }
            for (std::int64_t r = 0; r < rows && accumulate; ++r)
              std::copy_n(c + r * pixels, cols, edge + r * kCols32);
            tile_8x32(nk, xp, wp, edge, kCols32, accumulate);
            for (std::int64_t r = 0; r < rows; ++r) std::copy_n(edge + r * kCols32, cols, c + r * pixels);
          }
        }
        if (!correct || k0 + kQuadBlock < quads_) continue;
        // Last block: the zero-point correction on this thread's pixels (modular, as the sums are).
        for (std::int64_t o = 0; o < ocg; ++o) {
          const auto corr =
              static_cast<std::uint32_t>(zero) * static_cast<std::uint32_t>(row_sums_[g * ocg + o]);
          std::int32_t* yr = yg + o * pixels;
          for (std::int64_t p = lo * kCols32; p < std::min(pixels, hi * kCols32); ++p) {
            yr[p] = static_cast<std::int32_t>(static_cast<std::uint32_t>(yr[p]) - corr);
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
  // The padded plane covers every input position a window can reach: by the ONNX output-size rule the
  // last window ends at most pad_bottom (pad_right) past the input.
  const std::int64_t hp = s_.h + win_.pad_top + win_.pad_bottom, wp = s_.w + win_.pad_left + win_.pad_right;
  const std::int64_t taps = win_.kh * win_.kw;
  pool.parallel_for(s_.n * s_.oc, [&](std::int64_t lo, std::int64_t hi) {
    std::vector<std::int16_t> padded(static_cast<std::size_t>(hp * wp + kDirectSlack), 0);
    for (std::int64_t item = lo; item < hi; ++item) {
      const std::int64_t n = item / s_.oc, oc = item % s_.oc, g = oc / ocg;
      std::int32_t* acc = y + item * pixels;
      for (std::int64_t ic = 0; ic < icg; ++ic) {
        const T* xc = x + (n * s_.c + g * icg + ic) * plane;
        pad_plane(xc, s_.h, s_.w, win_.pad_top, win_.pad_left, wp, hp, x_zero, padded.data());
        direct_rows(padded.data(), wp, s_, win_, shifted_.data() + oc * k_ + ic * taps, ic > 0, acc);
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
