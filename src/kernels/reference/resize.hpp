// Reference kernel for ONNX Resize/Upsample: per-axis sampling tables and separable N-D interpolation.
#pragma once

#include <cstdint>
#include <vector>

namespace aciq::kernels::ref {

enum class ResizeMode : std::uint8_t { kNearest, kLinear, kCubic };

// How an output coordinate maps back to the input axis (ONNX coordinate_transformation_mode).
enum class ResizeCoord : std::uint8_t {
  kHalfPixel,
  kHalfPixelSymmetric,
  kPytorchHalfPixel,
  kAlignCorners,
  kAsymmetric,
  kTfHalfPixelForNn,  // Resize-11 only
  kTfCropAndResize,
};

// Which neighbour nearest mode picks for a non-integer source coordinate.
enum class ResizeNearest : std::uint8_t { kRoundPreferFloor, kRoundPreferCeil, kFloor, kCeil };

struct ResizeParams {
  ResizeMode mode = ResizeMode::kNearest;
  ResizeCoord coord = ResizeCoord::kHalfPixel;
  ResizeNearest nearest = ResizeNearest::kRoundPreferFloor;
  double cubic_coeff_a = -0.75;
  bool exclude_outside = false;
};

// The sampling table of one axis: output index o reads input indices index[o * taps + k] (already
// clamped into the axis) with weights weight[o * taps + k]; outside[o] marks tf_crop_and_resize
// coordinates that fall off the input, where the output is the extrapolation value.
struct ResizeAxis {
  std::int64_t in = 0, out = 0;
  int taps = 1;
  std::vector<std::int64_t> index;
  std::vector<float> weight;
  std::vector<std::uint8_t> outside;  // empty when no coordinate falls outside
  bool identity = false;              // out == in and output o is exactly input o
};

// Builds one axis' table. `scale` is the axis' scale factor (given, or out / in when sizes were
// given); roi_start/roi_end are the axis' normalized crop window (tf_crop_and_resize only).
ResizeAxis resize_axis(const ResizeParams& p, std::int64_t in, std::int64_t out, double scale,
                       double roi_start = 0.0, double roi_end = 1.0);

// Independent blocks a resize splits into: the product of the leading identity axes (N and C in the
// usual NCHW case), so callers may run disjoint block ranges in parallel.
std::int64_t resize_blocks(const std::vector<ResizeAxis>& axes);

// Resizes row-major float data `x` (dims axes[d].in) into `y` (dims axes[d].out), for the blocks
// [block_begin, block_end) of resize_blocks(axes); block_end < 0 means all of them.
void resize(const std::vector<ResizeAxis>& axes, float extrapolation_value, const float* x, float* y,
            std::int64_t block_begin = 0, std::int64_t block_end = -1);

}  // namespace aciq::kernels::ref
