// Reference kernels for data movement: Slice, Expand, Tile, DepthToSpace/SpaceToDepth (any dtype).
#pragma once

#include <cstdint>
#include <vector>

#include "aciq/core.hpp"

namespace aciq::kernels::ref {

// One axis of a strided slice: output element j of the axis reads input index start + j * step.
struct SliceAxis {
  std::int64_t start = 0, step = 1, count = 0;
};
// Normalizes ONNX Slice bounds for an axis of length `dim` (negative bounds count from the end,
// out-of-range bounds clamp, as the spec's reference does) into start/step/count.
SliceAxis slice_axis(std::int64_t dim, std::int64_t start, std::int64_t end, std::int64_t step);
// y[j...] = x[start + j * step ...] per axis; `axes` has one entry per dimension of x.
Tensor slice(const Tensor& x, const std::vector<SliceAxis>& axes);

// Broadcasts x to `shape` (numpy rules; the output rank is the larger one), like ONNX Expand.
Tensor expand(const Tensor& x, const Shape& shape);
// Repeats x `repeats[d]` times along every axis d.
Tensor tile(const Tensor& x, const std::vector<std::int64_t>& repeats);

// data with the slices addressed by the last axis of `indices` (int64, [..., k], negative counted from
// the end) replaced by `updates`, or combined with them ("add", "mul", "max", "min").
Tensor scatter_nd(const Tensor& data, const Tensor& indices, const Tensor& updates, const std::string& reduction);

// [N, C, H, W] -> [N, C / b^2, H * b, W * b]; DCR reads channels depth-column-row, CRD column-row-depth.
Tensor depth_to_space(const Tensor& x, std::int64_t block, bool crd);
// [N, C, H, W] -> [N, C * b^2, H / b, W / b] (the inverse of DCR DepthToSpace).
Tensor space_to_depth(const Tensor& x, std::int64_t block);

}  // namespace aciq::kernels::ref
