// Scalar in-place activation pass for producers that cannot fuse their activation.
#include "kernels/activation.hpp"

#include <algorithm>
#include <cmath>

namespace aciq::kernels {

void apply_activation(const Activation& act, float* data, std::int64_t n) {
  switch (act.kind) {
    case Activation::Kind::kNone: return;
    case Activation::Kind::kRelu:
      for (std::int64_t i = 0; i < n; ++i) data[i] = data[i] > 0.0f ? data[i] : (std::isnan(data[i]) ? data[i] : 0.0f);
      return;
    case Activation::Kind::kLeakyRelu:
      for (std::int64_t i = 0; i < n; ++i) data[i] = data[i] >= 0.0f ? data[i] : act.alpha * data[i];
      return;
    case Activation::Kind::kClip:
      for (std::int64_t i = 0; i < n; ++i) {
        if (!std::isnan(data[i])) data[i] = std::min(act.hi, std::max(act.lo, data[i]));
      }
      return;
  }
}

}  // namespace aciq::kernels
