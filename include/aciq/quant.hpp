// Quantization math: ACIQ clipping, the seed's range rules, the GEMMLOWP fake quantizer, sample stats.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>

// This header depends on core only (Error); it never includes graph or runtime, so calib, policy and
// the CLI can share the math without dragging in the executor.
namespace aciq {
class ThreadPool;  // aciq/core.hpp
}  // namespace aciq

namespace aciq::quant {

// Bit widths accepted everywhere in this component. 16 keeps qmax = 2^M - 1 exact in float.
inline constexpr int kMinBits = 1;
inline constexpr int kMaxBits = 16;

// ---------------------------------------------------------------------------------------------
// Clipping math (docs/clipping.md)
// ---------------------------------------------------------------------------------------------

enum class Distribution : std::uint8_t { kLaplace, kGauss };
// kLaplaceGrid / kGaussGrid: the same window rule as kLaplace / kGauss, with the coefficient that is
// optimal for a grid of 2^M levels (2^M - 1 steps) spanning [-alpha, alpha] (grid_alpha_coefficient) instead
// of the seed's 2^M-bin midrise model. The kernels round the zero point, which shifts that grid by half a
// step; the coefficient ignores the shift (docs/clipping.md, "Caveat").
// How an activation tensor's window is chosen (the calibrators, one file each under src/calib/methods/,
// named and described by one table: calib::calibrators()). kNone: the seed's `no`, the mean of per-sample
// min/max; kMinMax: min of minima and max of maxima; the histogram methods kPercentile, kKl, kMse and kAuto
// read the statistics file's histograms (docs/calibrators.md).
enum class ClipMethod : std::uint8_t {
  kNone,
  kLaplace,
  kGauss,
  kMix,
  kLaplaceGrid,
  kGaussGrid,
  kMinMax,
  kPercentile,
  kKl,
  kMse,
  kAuto,
};

// A method and its parameter (percentile: P in (0, 100); 0 for the methods without one). Converts from a
// bare method, so `spec == ClipMethod::kNone` reads as it should.
struct ClipSpec {
  ClipMethod method = ClipMethod::kNone;
  double param = 0.0;
  constexpr ClipSpec() = default;
  constexpr ClipSpec(ClipMethod m, double p = 0.0) : method(m), param(p) {}  // NOLINT: implicit on purpose
  friend constexpr bool operator==(const ClipSpec&, const ClipSpec&) = default;
};

// CLI spellings: "laplace", "gaus" (the seed's spelling) or "gauss". Throws aciq::Error listing the
// accepted words otherwise.
Distribution parse_distribution(std::string_view text);
// Canonical names "laplace", "gauss"; they parse back.
std::string_view distribution_name(Distribution d);

// Expected squared error of clipping Laplace(0, b) data to [-alpha, alpha] and quantizing the clipped
// range uniformly into 2^bits bins: 2 b^2 exp(-alpha/b) + alpha^2 / (3 * 4^bits).
// Throws for bits outside [kMinBits, kMaxBits] or b <= 0.
double laplace_clip_mse(double alpha, double b, int bits);
// The same for N(0, sigma^2): (sigma^2 + alpha^2) erfc(alpha / (sigma sqrt2))
//   - sqrt(2/pi) alpha sigma exp(-alpha^2 / (2 sigma^2)) + alpha^2 / (3 * 4^bits).
double gauss_clip_mse(double alpha, double sigma, int bits);
// Dispatches on the distribution; `scale` is b (Laplace) or sigma (Gauss).
double clip_mse(Distribution d, double alpha, double scale, int bits);

// The alpha/b (Laplace) or alpha/sigma (Gauss) minimizing the MSE above. Laplace: the closed form
// W0(3 * 4^bits) (Lambert W); Gauss: bracketed root of dMSE/dalpha, relative accuracy < 1e-12.
double optimal_alpha_coefficient(Distribution d, int bits);
// Which grid a clipping optimum is computed for (docs/clipping.md, "The optimum for the grid that runs").
enum class ClipGrid : std::uint8_t {
  kSymmetric,  // window [-alpha, alpha] of zero-mean data, 2^M levels (2^M - 1 steps) including both ends
  kHalf,  // max(X, 0) of zero-mean X (a ReLU output): window [0, alpha], 2^M levels including 0 and alpha
};
// Expected squared error E[(X - Q(X))^2] of that grid (round to the nearest level, clip outside) for
// X ~ Laplace(0, b) or N(0, sigma^2), scale = b or sigma: the in-window cells integrated piece by piece
// (8-point Gauss-Legendre on pieces <= scale/4, ~1e-12 relative) plus the clipped tails in closed form.
// Throws for alpha <= 0, scale <= 0, non-finite values or bits outside [kMinBits, kMaxBits].
double grid_clip_mse(Distribution d, ClipGrid grid, double alpha, double scale, int bits);
// The alpha/scale minimizing grid_clip_mse (scale-free): a scan, then golden section (to ~1e-8: the MSE
// is flat at its minimum).
// Unlike optimal_alpha_coefficient (2^M midrise bins), this counts the 2^M - 1 steps GEMMLOWP and ONNX
// QuantizeLinear have; kSymmetric leaves out their zero-point rounding (a half-step shift), kHalf is exact.
// Computed once per argument triple.
double grid_alpha_coefficient(Distribution d, ClipGrid grid, int bits);
// The seed's hard-coded table values (int_quantizer.py, bits 2..8 only; mostly truncated, not rounded,
// to two decimals). Throws aciq::Error for other widths, where the seed raises KeyError.
double seed_alpha_coefficient(Distribution d, int bits);

// The seed's Gaussian sigma estimate from the range (get_alpha_gaus):
//   (max - min) * 0.5 * 0.35 * (1 + sqrt(pi * ln 4)) / sqrt(2 ln n),
// with n the element count of one sample (C*H*W). The stored std is NOT used for alpha by the seed.
// Throws for n < 2 (ln n <= 0), non-finite inputs or max < min.
double seed_gauss_sigma(double mean_min, double mean_max, std::int64_t n);

// The window the seed quantizes: [offset, offset + delta] (alpha2DeltaOffset). With R = max - min:
// alpha <= 0 or alpha >= R/2 gives {min, R} (no clipping); otherwise {max(min, mean - alpha), 2 alpha}.
// The window is centered on the mean and floored at min, but NOT capped at max: when mean + alpha > max
// its top lies above max. All arithmetic in double, as the seed's Python does on pandas values.
struct QuantWindow {
  double offset = 0.0;
  double delta = 0.0;
};
QuantWindow seed_window(double alpha, double min, double max, double mean);
// The same window as [lo, hi] = [offset, offset + delta]. Prefer affine_params(seed_window(...), bits)
// for bit-exact parity with the seed: offset + delta rounded to float need not equal the seed's range.
std::pair<double, double> clipped_range(double alpha, double min, double max, double mean);

// The `aciq alpha` table: one row per bit width in [bit_lo, bit_hi] with the coefficient (optimal or
// the seed's table) and the analytical MSE at b = 1 (Laplace) / sigma = 1 (Gauss).
std::string alpha_table(Distribution d, int bit_lo, int bit_hi, bool seed_coefficients);

// ---------------------------------------------------------------------------------------------
// Fake quantization (docs/quantizer.md)
// ---------------------------------------------------------------------------------------------

// How the kernel maps x to a grid index q and back; each form is one exact float formula.
enum class GridForm : std::uint8_t {
  kIdentity,   // x unchanged (range of zero width, as the seed's `range <= 0` early return)
  kZeroPoint,  // q = x / scale + zero_point; out = (q - zero_point) * scale
  kOffset,     // q = (x - offset) / scale;   out = q * scale + offset
};

// Both non-identity forms then clamp before rounding, as the seed's kernel does:
//   q = q < qmax ? q : qmax;  q = q > 0 ? q : 0;  q = round_half_away_from_zero(q)
// (NaN inputs therefore land on qmax and Inf on the range ends; documented in docs/quantizer.md.)
struct AffineQuantParams {
  float scale = 1.0f;
  float zero_point = 0.0f;  // gemmlowp sign convention: q = x / scale + zero_point (positive for lo < 0)
  int bits = 8;
  float qmax = 255.0f;  // 2^bits - 1
  GridForm form = GridForm::kIdentity;
  float offset = 0.0f;  // kOffset only
};

// Per-tensor parameters for [lo, hi] computed in float, exactly as the seed quantizes weights
// (gemmlowpQuantize on float32 torch min/max): range = hi - lo; scale = range / qmax; when
// lo < 0 < lo + range (true zero): zero_point = -roundf(lo / scale), form kZeroPoint; otherwise kOffset.
// range == 0 gives kIdentity. Throws for non-finite lo/hi, lo > hi, hi - lo overflowing, bad bits.
AffineQuantParams affine_params(float lo, float hi, int bits);
// The seed's activation path: the window's offset/delta are rounded to float only when handed to the
// kernel, and the true-zero test runs in double on the window. Bit-exact with the seed's formula
// (docs/quantizer.md notes where the seed's CUDA build may fuse a multiply-add).
AffineQuantParams affine_params(const QuantWindow& window, int bits);
// Symmetric, zero-exact grid for weights: levels k * scale for |k| <= 2^(bits-1) - 1 with
// scale = max_abs / (2^(bits-1) - 1). Needs bits >= 2; max_abs == 0 gives kIdentity.
AffineQuantParams symmetric_params(float max_abs, int bits);
// The paper's model grid: [-alpha, alpha] split into 2^bits equal bins, each reconstructed at its
// midpoint (no level at 0). Used to check the MSE model; alpha == 0 gives kIdentity.
AffineQuantParams midrise_params(float alpha, int bits);

// Optional elementwise op fused after dequantization, so a quantized layer output and the activation
// that consumes it cost one pass over memory instead of two (docs/threading.md).
//   kRelu:  v < 0 ? 0 : v
//   kClamp: v = lo < v ? v : lo; v = v < hi ? v : hi   (exactly the unfused Clip/Relu operators on
//           the finite values fake quantization produces; relu is clamp(0, +inf))
struct PostOp {
  enum class Kind : std::uint8_t { kNone, kRelu, kClamp };
  Kind kind = Kind::kNone;
  float lo = 0.0f, hi = 0.0f;  // kClamp only
  static const PostOp kNone;
  static const PostOp kRelu;
  static constexpr PostOp clamp(float lo, float hi) { return PostOp{Kind::kClamp, lo, hi}; }
  friend constexpr bool operator==(const PostOp& a, const PostOp& b) {
    return a.kind == b.kind && (a.kind != Kind::kClamp || (a.lo == b.lo && a.hi == b.hi));
  }
};
inline constexpr PostOp PostOp::kNone{};
inline constexpr PostOp PostOp::kRelu{PostOp::Kind::kRelu};

// Quantize-dequantize in place. fake_quant_ref is the plain scalar definition; fake_quant is the
// Highway-dispatched kernel and is bit-identical to it on every target (tested).
void fake_quant_ref(std::span<float> x, const AffineQuantParams& p, PostOp post = PostOp::kNone);
void fake_quant(std::span<float> x, const AffineQuantParams& p, PostOp post = PostOp::kNone);

// Stochastic rounding as the seed's disabled option: noise u in [-0.5, 0.5) is added to q before the
// clamp. u for element i is a pure function of (seed, first_index + i) (SplitMix64), so chunked or
// threaded calls give the same result as one call. Reference only (no SIMD version).
void fake_quant_stochastic_ref(std::span<float> x, const AffineQuantParams& p, std::uint64_t seed,
                               std::uint64_t first_index = 0);

enum class WeightMode : std::uint8_t {
  kPerTensorAffine,      // min/max of the whole tensor (the seed's default)
  kPerTensorSymmetric,   // symmetric_params(max |w|)
  kPerChannelAffine,     // min/max of each output channel
  kPerChannelSymmetric,  // symmetric_params(max |w|) of each output channel
};
WeightMode parse_weight_mode(std::string_view text);  // "tensor", "tensor-sym", "channel", "channel-sym"
std::string_view weight_mode_name(WeightMode m);

// Fake-quantizes a weight tensor laid out [out_channels, ...] (row-major, as ONNX Conv/Gemm-transB store
// it). Throws when out_channels does not divide the size or a weight is NaN/Inf.
void fake_quant_weights(std::span<float> w, std::int64_t out_channels, int bits, WeightMode mode);

// ---------------------------------------------------------------------------------------------
// ONNX integer grid (QuantizeLinear / DequantizeLinear semantics, docs/plan.md)
// ---------------------------------------------------------------------------------------------

// real = scale * (q - zero_point) with an integer zero point and q saturated to [qmin, qmax]. This is
// what ONNX Runtime computes on an exported QDQ model; the seed's GEMMLOWP form above is the special
// case with a float zero point and an offset form for windows that exclude 0.
struct IntGrid {
  float scale = 1.0f;
  std::int32_t zero_point = 0;
  std::int32_t qmin = 0, qmax = 255;
  [[nodiscard]] double lo() const {
    return static_cast<double>(scale) * (static_cast<double>(qmin) - zero_point);
  }
  [[nodiscard]] double hi() const {
    return static_cast<double>(scale) * (static_cast<double>(qmax) - zero_point);
  }
};

// [qmin, qmax] of an M-bit grid: unsigned [0, 2^M - 1]; signed [-2^(M-1), 2^(M-1) - 1], or
// [-(2^(M-1) - 1), 2^(M-1) - 1] when `symmetric` (the level -2^(M-1) is never used, zero point 0).
std::pair<std::int32_t, std::int32_t> int_range(int bits, bool is_signed, bool symmetric);

// ONNX Runtime's compute_scale_zp for an asymmetric window: [lo, hi] is widened to contain 0, scale =
// (hi - lo) / (qmax - qmin) in double then float, zero_point = round_half_even(qmin - lo / scale)
// clamped to [qmin, qmax]. A window too narrow for a float scale (all zero) gives scale 1, zp qmin
// clamped to contain 0. Throws for non-finite bounds, lo > hi or qmin >= qmax.
IntGrid onnx_asymmetric_grid(double lo, double hi, std::int32_t qmin, std::int32_t qmax);
// Symmetric: scale = max_abs / qmax (qmin = -qmax), zero point 0; max_abs 0 gives scale 1.
IntGrid onnx_symmetric_grid(double max_abs, std::int32_t qmax);

// QuantizeLinear: saturate(round_half_to_even(x / scale) + zero_point) in float32; NaN maps to the
// integer 0 (saturated), as ONNX Runtime's x86 kernel gives. DequantizeLinear: float(q - zero_point) * scale.
std::int32_t quantize_linear(float x, const IntGrid& g);
inline float dequantize_linear(std::int32_t q, const IntGrid& g) {
  return static_cast<float>(q - g.zero_point) * g.scale;
}
// Quantize-dequantize in place on the ONNX grid, then the optional fused activation.
void fake_quant_onnx(std::span<float> x, const IntGrid& g, PostOp post = PostOp::kNone);

// Either grid, as a quantization plan hands it to the simulation.
struct PointQuantizer {
  bool onnx = false;  // false: the seed's GEMMLOWP kernel with `seed`; true: `grid`
  AffineQuantParams seed;
  IntGrid grid;
};
void fake_quant(std::span<float> x, const PointQuantizer& q, PostOp post = PostOp::kNone);

// ---------------------------------------------------------------------------------------------
// Per-sample statistics (the seed's statistic_manager.py columns)
// ---------------------------------------------------------------------------------------------

struct SampleStats {
  double min = 0.0, max = 0.0;
  double mean = 0.0;
  double std = 0.0;       // unbiased (n - 1), like torch.std; NaN for n == 1 as torch gives
  double mean_abs = 0.0;  // mean |x|
  double b = 0.0;         // mean |x - mean|: the Laplace scale estimate
  double kurtosis = 0.0;  // the seed's: mean(((x - mean) / std)^4) - 3 with the UNBIASED std; NaN if std == 0
};

// Two passes over x, accumulated in double (mean first, then centered moments: accurate where one-pass
// power sums cancel). Empty x throws. Non-finite input: when x holds a NaN every field is NaN; when it
// holds +-Inf but no NaN, min/max are the true extremes and every other field is NaN.
void sample_stats_ref(std::span<const float> x, SampleStats& out);
// Highway version. Float SIMD lanes (element i into lane i % 32 whatever the vector width) with
// blocks flushed into double totals in a fixed order, so every target gives bit-identical results;
// data with NaN/Inf, or so large that a float partial overflows, goes through sample_stats_ref.
// Against sample_stats_ref each field agrees within kSampleStatsTolerance * (|ref| + scale), where
// scale is max(|min|, |max|) for min/max/mean/std/mean_abs/b and 1 for kurtosis (docs/quantizer.md).
// With a pool, the sample's fixed 64K-element segments are reduced on its threads (for batches
// smaller than the thread count); the result is the same bits with or without one.
void sample_stats(std::span<const float> x, SampleStats& out, ThreadPool* pool = nullptr);
inline constexpr double kSampleStatsTolerance = 5e-6;
// Statistics of x, then x = clamp(x, lo, hi) in place (kClamp's formula; Relu is clamp(0, +inf)), then
// statistics of the clamped x: bit-identical to sample_stats, the clamp, and sample_stats again, in two
// trips through memory instead of five (tested). Throws for empty x or lo > hi.
void sample_stats_clamped(std::span<float> x, float lo, float hi, SampleStats& raw, SampleStats& activated,
                          ThreadPool* pool = nullptr);

// The Highway target the dispatched kernels run on now (e.g. "AVX2"), for logs and benchmarks.
std::string_view simd_target_name();

}  // namespace aciq::quant
