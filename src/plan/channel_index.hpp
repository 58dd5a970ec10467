// The channel of a tensor element along one axis: shared by plan building and plan execution.
#pragma once

#include <algorithm>
#include <cstdint>

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

}  // namespace aciq::plan
