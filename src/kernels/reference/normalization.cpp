// Reference normalization kernels: statistics in double with a two-pass (mean, then centered) variance.
#include "kernels/reference/normalization.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

namespace aciq::kernels::ref {

namespace {

struct Moments {
  double mean = 0.0, inv_std = 0.0;
};

// Two passes so the variance does not suffer the cancellation of E[x^2] - E[x]^2.
Moments moments(const float* x, std::int64_t len, double epsilon) {
  double sum = 0.0;
  for (std::int64_t i = 0; i < len; ++i) sum += x[i];
  Moments m;
  m.mean = len > 0 ? sum / static_cast<double>(len) : 0.0;
  double sq = 0.0;
  for (std::int64_t i = 0; i < len; ++i) {
    const double d = x[i] - m.mean;
    sq += d * d;
  }
  const double var = len > 0 ? sq / static_cast<double>(len) : 0.0;
  m.inv_std = 1.0 / std::sqrt(var + epsilon);
  return m;
}

}  // namespace

void layer_norm(std::int64_t outer, std::int64_t inner, double epsilon, const float* x, const float* scale,
                const float* bias, float* y, float* mean, float* inv_std) {
  for (std::int64_t o = 0; o < outer; ++o) {
    const float* xp = x + o * inner;
    float* yp = y + o * inner;
    const Moments m = moments(xp, inner, epsilon);
    for (std::int64_t i = 0; i < inner; ++i) {
      const double v = (xp[i] - m.mean) * m.inv_std * scale[i] + (bias ? bias[i] : 0.0f);
      yp[i] = static_cast<float>(v);
    }
    if (mean) mean[o] = static_cast<float>(m.mean);
    if (inv_std) inv_std[o] = static_cast<float>(m.inv_std);
  }
}

void instance_norm(std::int64_t n, std::int64_t c, std::int64_t inner, double epsilon, const float* x,
                   const float* scale, const float* bias, float* y) {
  for (std::int64_t p = 0; p < n * c; ++p) {
    const std::int64_t ch = p % c;
    const float* xp = x + p * inner;
    float* yp = y + p * inner;
    const Moments m = moments(xp, inner, epsilon);
    for (std::int64_t i = 0; i < inner; ++i)
      yp[i] = static_cast<float>((xp[i] - m.mean) * m.inv_std * scale[ch] + bias[ch]);
  }
}

void group_norm(std::int64_t n, std::int64_t c, std::int64_t groups, std::int64_t inner, double epsilon,
                const float* x, const float* scale, const float* bias, bool per_channel, float* y) {
  const std::int64_t per_group = c / groups;
  for (std::int64_t p = 0; p < n * groups; ++p) {
    const std::int64_t g = p % groups;
    const float* xp = x + p * per_group * inner;  // the group's channels are contiguous in NCHW
    float* yp = y + p * per_group * inner;
    const Moments m = moments(xp, per_group * inner, epsilon);
    for (std::int64_t k = 0; k < per_group; ++k) {
      const std::int64_t at = per_channel ? g * per_group + k : g;
      for (std::int64_t i = 0; i < inner; ++i) {
        const std::int64_t e = k * inner + i;
        yp[e] = static_cast<float>((xp[e] - m.mean) * m.inv_std * scale[at] + bias[at]);
      }
    }
  }
}

void lrn(std::int64_t n, std::int64_t c, std::int64_t inner, std::int64_t size, double alpha, double beta,
         double bias, const float* x, float* y) {
  const std::int64_t before = (size - 1) / 2, after = size - 1 - before;
  const double scale = alpha / static_cast<double>(size);
  for (std::int64_t b = 0; b < n; ++b) {
    const float* xb = x + b * c * inner;
    float* yb = y + b * c * inner;
    for (std::int64_t ch = 0; ch < c; ++ch) {
      const std::int64_t lo = std::max<std::int64_t>(0, ch - before), hi = std::min(c - 1, ch + after);
      for (std::int64_t i = 0; i < inner; ++i) {
        double sq = 0.0;
        for (std::int64_t k = lo; k <= hi; ++k) {
          const double v = xb[k * inner + i];
          sq += v * v;
        }
        yb[ch * inner + i] = static_cast<float>(xb[ch * inner + i] / std::pow(bias + scale * sq, beta));
      }
    }
  }
}

void log_softmax(std::int64_t outer, std::int64_t axis_len, std::int64_t inner, const float* x, float* y) {
  for (std::int64_t o = 0; o < outer; ++o) {
    for (std::int64_t in = 0; in < inner; ++in) {
      const float* xp = x + o * axis_len * inner + in;
      float* yp = y + o * axis_len * inner + in;
      // Shifting by the maximum keeps exp() finite for large inputs (test_logsoftmax_large_number).
      double m = -std::numeric_limits<double>::infinity();
      for (std::int64_t a = 0; a < axis_len; ++a) m = std::max(m, static_cast<double>(xp[a * inner]));
      double sum = 0.0;
      for (std::int64_t a = 0; a < axis_len; ++a) sum += std::exp(xp[a * inner] - m);
      const double log_sum = std::log(sum);
      for (std::int64_t a = 0; a < axis_len; ++a)
        yp[a * inner] = static_cast<float>(xp[a * inner] - m - log_sum);
    }
  }
}

}  // namespace aciq::kernels::ref
