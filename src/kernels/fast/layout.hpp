// Fast data-movement and reduction kernels (Transpose, contiguous-axis reductions), bit-identical to
// their references in src/kernels/reference/.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "aciq/core.hpp"
#include "kernels/reference/movement.hpp"
#include "kernels/reference/reduce.hpp"

namespace aciq::kernels::fast {

// ref::transpose with dimensions that stay adjacent merged and the innermost output run copied
// by element size (4 or 8 bytes typed, else bytes); threaded over output rows.
Tensor transpose(const Tensor& x, const std::vector<std::int64_t>& perm, ThreadPool& pool);
// The same into y, which must already have the permuted shape and x's dtype.
void transpose_into(const Tensor& x, const std::vector<std::int64_t>& perm, Tensor& y, ThreadPool& pool);

// ref::slice into y (already of the sliced shape): the same strided copy as transpose.
void slice_into(const Tensor& x, const std::vector<ref::SliceAxis>& axes, Tensor& y, ThreadPool& pool);

// ref::reduce when the reduced axes form one contiguous run [outer, reduced, inner] of a float32
// tensor (ReduceMean over the channel or last axis): the same double accumulation in the same order,
// so the same bits. nullopt when the axes are not contiguous or the op is not supported here.
std::optional<Tensor> reduce_contiguous(ref::ReduceOp op, const Tensor& x, const std::vector<bool>& reduced,
                                        bool keepdims, ThreadPool& pool);

}  // namespace aciq::kernels::fast
