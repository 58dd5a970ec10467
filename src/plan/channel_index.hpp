// The channel of a tensor element along one axis, and per-channel weight moments: shared by plan building
// and plan execution.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <span>
#include <vector>

#include "aciq/core.hpp"

namespace aciq::plan {

// Channel of element i of a tensor of `shape` along `axis`, row-major; every element is channel 0 when
// axis < 0 (per-tensor entries).
struct ChannelIndex {
  std::int64_t inner = 1, channels = 1;
  ChannelIndex(const Shape& shape, int axis) {
    if (axis < 0) return;
    // A zero-length axis has no elements to index; 1 keeps the modulo defined.
    channels = std::max<std::int64_t>(1, shape.at(static_cast<std::size_t>(axis)));
    for (std::size_t d = static_cast<std::size_t>(axis) + 1; d < shape.size(); ++d) inner *= shape[d];
  }
  [[nodiscard]] std::size_t operator()(std::size_t i) const {
    return static_cast<std::size_t>((static_cast<std::int64_t>(i) / inner) % channels);
  }
};

// Banner et al.'s per-channel moments: the means of the float weights w and of their dequantized values q,
// and r = std(w) / std(q) (1 where q is constant), for the correction q <- r (q - mean_q) + mean_w.
struct NormCorrection {
  std::vector<double> ratio, mean_w, mean_q;
};
inline NormCorrection norm_correction(std::span<const float> w, std::span<const float> q,
                                      const ChannelIndex& channel) {
  const auto channels = static_cast<std::size_t>(channel.channels);
  std::vector<double> n(channels, 0.0), vw(channels, 0.0), vq(channels, 0.0);
  NormCorrection c{std::vector<double>(channels, 1.0), std::vector<double>(channels, 0.0),
                   std::vector<double>(channels, 0.0)};
  for (std::size_t i = 0; i < q.size(); ++i) {
    const std::size_t k = channel(i);
    n[k] += 1.0;
    c.mean_w[k] += w[i];
    c.mean_q[k] += q[i];
  }
  for (std::size_t k = 0; k < channels; ++k) {
    if (n[k] == 0.0) continue;
    c.mean_w[k] /= n[k];
    c.mean_q[k] /= n[k];
  }
  for (std::size_t i = 0; i < q.size(); ++i) {
    const std::size_t k = channel(i);
    vw[k] += (w[i] - c.mean_w[k]) * (w[i] - c.mean_w[k]);
    vq[k] += (q[i] - c.mean_q[k]) * (q[i] - c.mean_q[k]);
  }
  for (std::size_t k = 0; k < channels; ++k)
    if (vq[k] > 0.0) c.ratio[k] = std::sqrt(vw[k] / vq[k]);
  return c;
}

}  // namespace aciq::plan
