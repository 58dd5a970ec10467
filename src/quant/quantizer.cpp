// GEMMLOWP-style fake quantizer: parameter construction, the scalar reference kernels and weight modes.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <span>
#include <type_traits>

#include "aciq/core.hpp"
#include "aciq/quant.hpp"
#include "quant/internal.hpp"

// This file is compiled with -ffp-contract=off (src/quant/CMakeLists.txt): `q * scale + offset` must
// round twice, as in the SIMD kernel on targets without FMA and in the PyTorch parity script.

namespace aciq::quant {

namespace {

float qmax_for(int bits) { return static_cast<float>((std::int64_t{1} << bits) - 1); }

AffineQuantParams identity_params(int bits) {
  AffineQuantParams p;
  p.bits = bits;
  p.qmax = qmax_for(bits);
  p.form = GridForm::kIdentity;
  return p;
}

// float2gemmlowp's parameter setup, given the float range/offset it receives and the true-zero flag
// the Python side computed.
AffineQuantParams gemmlowp_params(float offset, float range, bool true_zero, int bits) {
  AffineQuantParams p = identity_params(bits);
  if (!(range > 0.0f)) return p;  // the kernel's `if (range <= 0) return in;`
  const float scale = range / p.qmax;
  // A range so small that scale underflows to 0 would divide by zero; the seed would emit NaN/Inf,
  // we keep the tensor unchanged (all its values lie within one subnormal step anyway).
  if (scale == 0.0f) return p;
  p.scale = scale;
  if (true_zero) {
    // The seed subtracts shift = roundf(offset / scale); storing its negation as a gemmlowp zero point
    // is bit-identical because a - b == a + (-b) in IEEE arithmetic.
    p.zero_point = -std::round(offset / scale);
    p.form = GridForm::kZeroPoint;
  } else {
    p.offset = offset;
    p.form = GridForm::kOffset;
  }
  return p;
}

// The clamp-then-round step shared by every form: comparisons written so NaN goes to qmax (like CUDA's
// fminf) and -0 becomes +0, exactly as the SIMD kernel's compare+select does.
inline float clamp_round(float q, float qmax) {
  q = q < qmax ? q : qmax;
  q = q > 0.0f ? q : 0.0f;
  return std::round(q);  // half away from zero, as roundf
}

struct NoNoise {
  float operator()(std::size_t) const { return 0.0f; }
};

inline float post_op(float v, const PostOp& post) { return apply_post_op(v, post); }

// SplitMix64 of (seed, index): a stateless counter-based generator so the noise of element i does not
// depend on how the tensor was chunked. Returns u in [-0.5, 0.5) with 24 random bits (exact in float).
inline float uniform_noise(std::uint64_t seed, std::uint64_t index) {
  std::uint64_t z = seed + (index + 1) * 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return static_cast<float>(z >> 40) * 0x1p-24f - 0.5f;
}

// The seed always adds its noise tensor (zeros unless stochastic). Adding +0.0f only maps -0 to +0,
// which the clamp does anyway, so the deterministic path (NoNoise) skips the add.
template <typename Noise>
void fake_quant_scalar(std::span<float> x, const AffineQuantParams& p, PostOp post, Noise noise) {
  constexpr bool kNoisy = !std::is_same_v<Noise, NoNoise>;
  const float scale = p.scale, zp = p.zero_point, qmax = p.qmax, offset = p.offset;
  switch (p.form) {
    case GridForm::kIdentity:
      if (post != PostOp::kNone) {
        for (float& v : x) v = post_op(v, post);
      }
      return;
    case GridForm::kZeroPoint:
      for (std::size_t i = 0; i < x.size(); ++i) {
        float q = x[i] / scale + zp;
        if constexpr (kNoisy) q += noise(i);
        q = clamp_round(q, qmax);
        x[i] = post_op((q - zp) * scale, post);
      }
      return;
    case GridForm::kOffset:
      for (std::size_t i = 0; i < x.size(); ++i) {
        float q = (x[i] - offset) / scale;
        if constexpr (kNoisy) q += noise(i);
        q = clamp_round(q, qmax);
        x[i] = post_op(q * scale + offset, post);
      }
      return;
  }
}

}  // namespace

void check_params(const AffineQuantParams& p, const char* fn) {
  check_bits(p.bits, fn);
  if (p.qmax != qmax_for(p.bits)) fail(fmt::format("{}: qmax {} is not 2^{} - 1", fn, p.qmax, p.bits));
  switch (p.form) {
    case GridForm::kIdentity: return;
    case GridForm::kZeroPoint:
    case GridForm::kOffset:
      if (!(p.scale > 0.0f) || !std::isfinite(p.scale) || !std::isfinite(p.zero_point) ||
          !std::isfinite(p.offset)) {
        fail(fmt::format("{}: invalid quantization parameters (scale {}, zero point {}, offset {})", fn,
                         p.scale, p.zero_point, p.offset));
      }
      return;
  }
  fail(fmt::format("{}: unknown grid form {}", fn, static_cast<int>(p.form)));
}

AffineQuantParams affine_params(float lo, float hi, int bits) {
  check_bits(bits, "affine_params");
  if (!std::isfinite(lo) || !std::isfinite(hi))
    fail(fmt::format("affine_params: range [{}, {}] is not finite", lo, hi));
  if (lo > hi) fail(fmt::format("affine_params: empty range [{}, {}] (lo > hi)", lo, hi));
  const float range = hi - lo;
  if (!std::isfinite(range)) fail(fmt::format("affine_params: width of [{}, {}] overflows float", lo, hi));
  // The seed evaluates `(offset + delta) > 0 and offset < 0` on float32 tensors for weights.
  return gemmlowp_params(lo, range, lo + range > 0.0f && lo < 0.0f, bits);
}

AffineQuantParams affine_params(const QuantWindow& w, int bits) {
  check_bits(bits, "affine_params");
  if (!std::isfinite(w.offset) || !std::isfinite(w.delta) || w.delta < 0.0) {
    fail(fmt::format("affine_params: invalid window offset {} delta {}", w.offset, w.delta));
  }
  const float offset = static_cast<float>(w.offset), range = static_cast<float>(w.delta);
  if (!std::isfinite(offset) || !std::isfinite(range)) {
    fail(fmt::format("affine_params: window offset {} delta {} overflows float", w.offset, w.delta));
  }
  // The true-zero test runs in Python on doubles; only the kernel arguments are rounded to float.
  return gemmlowp_params(offset, range, w.offset + w.delta > 0.0 && w.offset < 0.0, bits);
}

AffineQuantParams symmetric_params(float max_abs, int bits) {
  check_bits(bits, "symmetric_params");
  if (bits < 2) fail("symmetric_params: a symmetric grid with a zero level needs at least 2 bits");
  if (!(max_abs >= 0.0f) || !std::isfinite(max_abs)) {
    fail(fmt::format("symmetric_params: max |x| must be finite and >= 0, got {}", max_abs));
  }
  AffineQuantParams p = identity_params(bits);
  const float half = static_cast<float>(std::int64_t{1} << (bits - 1));
  const float scale = max_abs / (half - 1.0f);
  if (scale == 0.0f) return p;
  p.scale = scale;
  p.zero_point = half;  // levels 1..qmax are -(half-1)..(half-1); level 0 (-half) is never reached
  p.form = GridForm::kZeroPoint;
  return p;
}

AffineQuantParams midrise_params(float alpha, int bits) {
  check_bits(bits, "midrise_params");
  if (!(alpha >= 0.0f) || !std::isfinite(2.0f * alpha)) {
    fail(fmt::format("midrise_params: alpha must be finite and >= 0, got {}", alpha));
  }
  AffineQuantParams p = identity_params(bits);
  const float levels = static_cast<float>(std::int64_t{1} << bits);
  const float scale = 2.0f * alpha / levels;  // exact: scaling by powers of two
  if (scale == 0.0f) return p;
  p.scale = scale;
  // A half-integer zero point puts bin k = [-alpha + k*scale, -alpha + (k+1)*scale) on q in
  // [k - 1/2, k + 1/2), which rounds to k; dequantizing gives the bin midpoint.
  p.zero_point = levels / 2.0f - 0.5f;
  p.form = GridForm::kZeroPoint;
  return p;
}

void fake_quant_ref(std::span<float> x, const AffineQuantParams& p, PostOp post) {
  check_params(p, "fake_quant_ref");
  fake_quant_scalar(x, p, post, NoNoise{});
}

void fake_quant_stochastic_ref(std::span<float> x, const AffineQuantParams& p, std::uint64_t seed,
                               std::uint64_t first_index) {
  check_params(p, "fake_quant_stochastic_ref");
  fake_quant_scalar(x, p, PostOp::kNone, [&](std::size_t i) { return uniform_noise(seed, first_index + i); });
}

WeightMode parse_weight_mode(std::string_view text) {
  if (text == "tensor") return WeightMode::kPerTensorAffine;
  if (text == "tensor-sym") return WeightMode::kPerTensorSymmetric;
  if (text == "channel") return WeightMode::kPerChannelAffine;
  if (text == "channel-sym") return WeightMode::kPerChannelSymmetric;
  fail(fmt::format("unknown weight mode '{}' (expected tensor, tensor-sym, channel or channel-sym)", text));
}

std::string_view weight_mode_name(WeightMode m) {
  switch (m) {
    case WeightMode::kPerTensorAffine: return "tensor";
    case WeightMode::kPerTensorSymmetric: return "tensor-sym";
    case WeightMode::kPerChannelAffine: return "channel";
    case WeightMode::kPerChannelSymmetric: return "channel-sym";
  }
  return "?";
}

void fake_quant_weights(std::span<float> w, std::int64_t out_channels, int bits, WeightMode mode) {
  check_bits(bits, "fake_quant_weights");
  if (out_channels <= 0 || w.size() % static_cast<std::size_t>(out_channels) != 0) {
    fail(fmt::format("fake_quant_weights: {} weights do not split into {} output channels", w.size(),
                     out_channels));
  }
  if (w.empty()) return;
  if (!std::all_of(w.begin(), w.end(), [](float v) { return std::isfinite(v); })) {
    fail("fake_quant_weights: weights contain NaN or Inf");
  }
  const bool per_channel = mode == WeightMode::kPerChannelAffine || mode == WeightMode::kPerChannelSymmetric;
  const bool symmetric = mode == WeightMode::kPerTensorSymmetric || mode == WeightMode::kPerChannelSymmetric;
  const std::size_t groups = per_channel ? static_cast<std::size_t>(out_channels) : 1;
  const std::size_t row = w.size() / groups;
  for (std::size_t g = 0; g < groups; ++g) {
    const std::span<float> part = w.subspan(g * row, row);
    const auto [lo, hi] = std::minmax_element(part.begin(), part.end());
    const AffineQuantParams p =
        symmetric ? symmetric_params(std::max(-*lo, *hi), bits) : affine_params(*lo, *hi, bits);
    fake_quant(part, p);
  }
}

}  // namespace aciq::quant
