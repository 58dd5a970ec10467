// Reference ConvTranspose: a gather over the taps that reach each output position, in double.
#include "kernels/reference/conv_transpose.hpp"

#include <vector>

#include "aciq/core.hpp"

namespace aciq::kernels::ref {

namespace {

// Input index and kernel tap pairs that reach output position `o` along one spatial dim.
struct Tap {
  std::int64_t i, k;
};

std::vector<std::vector<Tap>> taps_per_output(const ConvTransposeShape& s, int d) {
  std::vector<std::vector<Tap>> taps(static_cast<std::size_t>(s.out[d]));
  for (std::int64_t o = 0; o < s.out[d]; ++o) {
    const std::int64_t full = o + s.pad_begin[d];
    for (std::int64_t k = 0; k < s.kernel[d]; ++k) {
      const std::int64_t rem = full - k * s.dilation[d];
      if (rem < 0 || rem % s.stride[d] != 0) continue;
      const std::int64_t i = rem / s.stride[d];
      if (i < s.in[d]) taps[o].push_back({i, k});
    }
  }
  return taps;
}

}  // namespace

void conv_transpose(const ConvTransposeShape& s, const float* x, const float* w, const float* bias,
                    float* y) {
  if (s.spatial < 1 || s.spatial > ConvTransposeShape::kMaxSpatial || s.group <= 0 || s.c % s.group != 0 ||
      s.oc % s.group != 0) {
    fail("ConvTranspose reference: invalid geometry (spatial " + std::to_string(s.spatial) + ", group " +
         std::to_string(s.group) + ")");
  }
  // Unused dims behave as size-1 dims with a single tap, so one 3-D loop nest serves every rank.
  ConvTransposeShape g;
  const int lead = ConvTransposeShape::kMaxSpatial - s.spatial;
  for (int d = 0; d < s.spatial; ++d) {
    g.in[lead + d] = s.in[d];
    g.out[lead + d] = s.out[d];
    g.kernel[lead + d] = s.kernel[d];
    g.stride[lead + d] = s.stride[d];
    g.dilation[lead + d] = s.dilation[d];
    g.pad_begin[lead + d] = s.pad_begin[d];
  }
  const auto td = taps_per_output(g, 0), th = taps_per_output(g, 1), tw = taps_per_output(g, 2);
  const std::int64_t cg = s.c / s.group, og = s.oc / s.group;
  const std::int64_t in_sp = g.in[0] * g.in[1] * g.in[2], out_sp = g.out[0] * g.out[1] * g.out[2];
  const std::int64_t k_sp = g.kernel[0] * g.kernel[1] * g.kernel[2];
  for (std::int64_t n = 0; n < s.n; ++n) {
    for (std::int64_t o = 0; o < s.oc; ++o) {
      const std::int64_t grp = o / og, ol = o % og;
      float* yp = y + (n * s.oc + o) * out_sp;
      for (std::int64_t od = 0; od < g.out[0]; ++od) {
        for (std::int64_t oh = 0; oh < g.out[1]; ++oh) {
          for (std::int64_t ow = 0; ow < g.out[2]; ++ow) {
            double acc = bias ? bias[o] : 0.0;
            for (std::int64_t ci = grp * cg; ci < (grp + 1) * cg; ++ci) {
              const float* xp = x + (n * s.c + ci) * in_sp;
              const float* wp = w + (ci * og + ol) * k_sp;
              for (const Tap& a : td[od]) {
                for (const Tap& b : th[oh]) {
                  for (const Tap& c : tw[ow]) {
                    acc += static_cast<double>(xp[(a.i * g.in[1] + b.i) * g.in[2] + c.i]) *
                           wp[(a.k * g.kernel[1] + b.k) * g.kernel[2] + c.k];
                  }
                }
              }
            }
            yp[(od * g.out[1] + oh) * g.out[2] + ow] = static_cast<float>(acc);
          }
        }
      }
    }
  }
}

}  // namespace aciq::kernels::ref
