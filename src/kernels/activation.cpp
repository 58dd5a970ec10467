// Activation passes: the scalar reference and the threaded, vectorizable version.
#include "kernels/activation.hpp"

#include <algorithm>
#include <cmath>

#include "kernels/fast/simd_math.hpp"

namespace aciq::kernels {

void apply_activation_ref(const Activation& act, float* data, std::int64_t n) {
  switch (act.kind) {
    case Activation::Kind::kNone: return;
    case Activation::Kind::kRelu:
      for (std::int64_t i = 0; i < n; ++i)
        data[i] = data[i] > 0.0f ? data[i] : (std::isnan(data[i]) ? data[i] : 0.0f);
      return;
    case Activation::Kind::kLeakyRelu:
      for (std::int64_t i = 0; i < n; ++i) data[i] = data[i] >= 0.0f ? data[i] : act.alpha * data[i];
      return;
    case Activation::Kind::kClip:
      for (std::int64_t i = 0; i < n; ++i) {
        if (!std::isnan(data[i])) data[i] = std::min(act.hi, std::max(act.lo, data[i]));
      }
      return;
    case Activation::Kind::kHardSwish:
      // As the graph computes it: HardSigmoid in float, times x.
      for (std::int64_t i = 0; i < n; ++i)
        data[i] *= std::max(0.0f, std::min(1.0f, act.alpha * data[i] + act.beta));
      return;
    case Activation::Kind::kSwish:
      // As the graph computes it: Sigmoid's reference (double) rounded to float, times x in float.
      for (std::int64_t i = 0; i < n; ++i) {
        const double x = data[i];
        data[i] *= static_cast<float>(1.0 / (1.0 + std::exp(-x)));
      }
      return;
  }
}

namespace {

// Branch-free forms of the reference formulas that GCC turns into compare+blend vectors. `v != v`
// is the NaN test (std::isnan blocks vectorization); -0 maps to +0 under Relu exactly as in the
// reference (-0 > 0 is false).
void activation_chunk(const Activation& act, const float* src, float* data, std::int64_t n) {
  switch (act.kind) {
    case Activation::Kind::kNone:
      if (src != data) std::copy(src, src + n, data);
      return;
    case Activation::Kind::kRelu:
      for (std::int64_t i = 0; i < n; ++i) {
        const float v = src[i];
        data[i] = (v > 0.0f || v != v) ? v : 0.0f;
      }
      return;
    case Activation::Kind::kLeakyRelu: {
      const float a = act.alpha;
      for (std::int64_t i = 0; i < n; ++i) {
        const float v = src[i];
        data[i] = v >= 0.0f ? v : a * v;
      }
      return;
    }
    case Activation::Kind::kClip: {
      const float lo = act.lo, hi = act.hi;
      for (std::int64_t i = 0; i < n; ++i) {
        const float v = src[i];
        float c = lo < v ? v : lo;  // std::max(lo, v)
        c = c < hi ? c : hi;        // std::min(hi, c)
        data[i] = v != v ? v : c;
      }
      return;
    }
    case Activation::Kind::kHardSwish: {
      const float a = act.alpha, b = act.beta;
      for (std::int64_t i = 0; i < n; ++i) {
        const float v = src[i];
        const float t = a * v + b;
        const float m = t < 1.0f ? t : 1.0f;  // std::min(1, t): NaN gives 1, as in the reference
        data[i] = v * (m > 0.0f ? m : 0.0f);  // std::max(0, m)
      }
      return;
    }
    case Activation::Kind::kSwish: {
      // The fast Sigmoid on blocks (src and data may alias), then the product with x.
      constexpr std::int64_t kBlock = 256;
      float s[kBlock];
      for (std::int64_t b = 0; b < n; b += kBlock) {
        const std::int64_t m = std::min(kBlock, n - b);
        fast::sigmoid_simd(src + b, s, m);
        for (std::int64_t i = 0; i < m; ++i) data[b + i] = src[b + i] * s[i];
      }
      return;
    }
  }
}

}  // namespace

void apply_activation(const Activation& act, const float* src, float* dst, std::int64_t n, Context& ctx) {
  if (n <= 0 || (act.kind == Activation::Kind::kNone && src == dst)) return;
  // Below ~64K elements a thread hand-off costs more than the pass itself.
  constexpr std::int64_t kChunk = 1 << 16;
  const std::int64_t chunks = (n + kChunk - 1) / kChunk;
  ctx.pool->parallel_for(chunks, [&](std::int64_t b, std::int64_t e) {
    const std::int64_t lo = b * kChunk, hi = std::min(n, e * kChunk);
    activation_chunk(act, src + lo, dst + lo, hi - lo);
  });
}

void apply_activation_serial(const Activation& act, float* data, std::int64_t n) {
  activation_chunk(act, data, data, n);
}

void apply_activation(const Activation& act, float* data, std::int64_t n, Context& ctx) {
  apply_activation(act, data, data, n, ctx);
}

}  // namespace aciq::kernels
