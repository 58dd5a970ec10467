// Reference ConvTranspose (transposed convolution) kernel on NC[D]HW float data, 1 to 3 spatial dims.
#pragma once

#include <array>
#include <cstdint>

namespace aciq::kernels::ref {

// Geometry of a ConvTranspose. Spatial dims occupy the first `spatial` entries of each array, outermost
// first; the remaining entries are ignored.
struct ConvTransposeShape {
  static constexpr int kMaxSpatial = 3;
  using Dims = std::array<std::int64_t, kMaxSpatial>;
  std::int64_t n = 1, c = 1, oc = 1, group = 1;  // c: input channels, oc: output channels
  int spatial = 2;
  Dims in{1, 1, 1}, out{1, 1, 1}, kernel{1, 1, 1}, stride{1, 1, 1}, dilation{1, 1, 1};
  // Output position o reads the uncropped ("full") position o + pad_begin. pad_end is what the full
  // output loses at the end: ONNX's end pad minus output_padding; negative values append zeros.
  Dims pad_begin{0, 0, 0}, pad_end{0, 0, 0};
};

// y[n, o, p] = bias[o] + sum over the group's input channels ci and kernel taps k with
//   p + pad_begin = i * stride + k * dilation   of   x[n, ci, i] * w[ci, o % (oc/group), k].
// Weights use the ONNX layout [C, OC/group, k...]; bias may be null. Accumulates in double.
void conv_transpose(const ConvTransposeShape& s, const float* x, const float* w, const float* bias, float* y);

}  // namespace aciq::kernels::ref
