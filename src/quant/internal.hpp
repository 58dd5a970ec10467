// Helpers shared by the quant translation units (not part of the public header).
#pragma once

#include "aciq/quant.hpp"

namespace aciq::quant {

// Throws aciq::Error naming `fn` when bits is outside [kMinBits, kMaxBits].
void check_bits(int bits, const char* fn);

// Both clipped tails of Laplace(0, b) / N(0, sigma^2) beyond +-alpha (scale = b or sigma): the integral of
// (|x| - alpha)^2 p(x) over |x| > alpha, in closed form. The clipping term of the seed's MSE model and of
// grid_clip_mse alike; arguments are not checked.
double clipping_error(Distribution d, double alpha, double scale);

// Throws when `p` could not have come from the *_params constructors (bad form, non-positive or
// non-finite scale, qmax not 2^bits - 1), so a hand-built struct cannot silently produce garbage.
void check_params(const AffineQuantParams& p, const char* fn);

// Turns the sums of sample_stats' two passes into the fields, so SIMD and reference share the formulas.
// sum_abs = sum |x|; mean0 = first-pass mean; s1, s_abs, s2, s4 = sums of d, |d|, d^2, d^4 with d = x -
// mean0.
void finish_stats(double n, float lo, float hi, double sum_abs, double mean0, double s1, double s_abs,
                  double s2, double s4, SampleStats& out);

// The sample_stats result for samples holding NaN or Inf (shared so SIMD and reference agree exactly).
void non_finite_stats(std::span<const float> x, SampleStats& out);

// The post-op on one dequantized value; also the whole kernel for the identity grid, where NaN input
// stays NaN (the unfused Relu/Clip operators keep NaN too).
inline float apply_post_op(float v, const PostOp& post) {
  switch (post.kind) {
    case PostOp::Kind::kNone: return v;
    case PostOp::Kind::kRelu: return v < 0.0f ? 0.0f : v;
    case PostOp::Kind::kClamp:
      if (v != v) return v;
      v = post.lo < v ? v : post.lo;
      return v < post.hi ? v : post.hi;
  }
  return v;
}

}  // namespace aciq::quant
