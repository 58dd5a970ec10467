// Plain scalar reference kernels for every supported operator: the test oracle for the fast path.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "aciq/core.hpp"

namespace aciq::kernels::ref {

// 2-D convolution/pooling geometry on NCHW data; 1-D ops use H = 1.
struct Window2d {
  std::int64_t kh = 1, kw = 1;
  std::int64_t stride_h = 1, stride_w = 1;
  std::int64_t dil_h = 1, dil_w = 1;
  std::int64_t pad_top = 0, pad_left = 0, pad_bottom = 0, pad_right = 0;
};

struct ConvShape {
  std::int64_t n, c, h, w;  // input
  std::int64_t oc, oh, ow;  // output
  std::int64_t group = 1;
};

void conv2d(const ConvShape& s, const Window2d& win, const float* x, const float* w, const float* bias,
            float* y);

struct PoolShape {
  std::int64_t n, c, h, w, oh, ow;
};
void max_pool2d(const PoolShape& s, const Window2d& win, const float* x, float* y);
// MaxPool on 8-bit integers (ONNX opset 12+): max commutes with every nondecreasing map, so this is also
// how the int8 engine pools a DequantizeLinear -> MaxPool -> QuantizeLinear chain (docs/int8.md).
void max_pool2d(const PoolShape& s, const Window2d& win, const std::uint8_t* x, std::uint8_t* y);
void max_pool2d(const PoolShape& s, const Window2d& win, const std::int8_t* x, std::int8_t* y);
void avg_pool2d(const PoolShape& s, const Window2d& win, bool count_include_pad, const float* x, float* y);
void global_avg_pool(std::int64_t nc, std::int64_t hw, const float* x, float* y);
void global_max_pool(std::int64_t nc, std::int64_t hw, const float* x, float* y);

// 3-D (N, C, D, H, W) convolution and pooling, axes in D, H, W order; only these plain kernels run it.
struct Window3d {
  std::array<std::int64_t, 3> kernel{1, 1, 1}, stride{1, 1, 1}, dilation{1, 1, 1};
  std::array<std::int64_t, 3> pad_begin{0, 0, 0}, pad_end{0, 0, 0};
};
struct Conv3dShape {
  std::int64_t n = 0, c = 0, oc = 0, group = 1;
  std::array<std::int64_t, 3> in{}, out{};
};
void conv3d(const Conv3dShape& s, const Window3d& win, const float* x, const float* w, const float* bias,
            float* y);
struct Pool3dShape {
  std::int64_t n = 0, c = 0;
  std::array<std::int64_t, 3> in{}, out{};
};
void max_pool3d(const Pool3dShape& s, const Window3d& win, const float* x, float* y);
// count_include_pad counts the explicit padding (pad_begin/pad_end), never a ceil_mode overhang.
void avg_pool3d(const Pool3dShape& s, const Window3d& win, bool count_include_pad, const float* x, float* y);

// Y = alpha * op(A) * op(B) + beta * C, where C broadcasts to [M, N] (c_shape given).
void gemm(std::int64_t m, std::int64_t n, std::int64_t k, bool trans_a, bool trans_b, float alpha, float beta,
          const float* a, const float* b, const Tensor* c, float* y);

// Batched matrix multiply with numpy broadcasting of the batch dims.
Tensor matmul(const Tensor& a, const Tensor& b);

enum class BinaryOp : std::uint8_t { kAdd, kSub, kMul, kDiv };
// Numpy-style multidirectional broadcast of two shapes; throws when incompatible.
Shape broadcast_shapes(const Shape& a, const Shape& b);
// Elementwise arithmetic with broadcasting; float32, int64 and int32 operands of the same dtype.
Tensor binary(BinaryOp op, const Tensor& a, const Tensor& b);

enum class UnaryOp : std::uint8_t { kRelu, kSigmoid, kHardSigmoid, kHardSwish, kLeakyRelu, kClip };
struct UnaryParams {
  float alpha = 0.0f;          // LeakyRelu slope, HardSigmoid alpha
  float beta = 0.0f;           // HardSigmoid beta
  float lo = 0.0f, hi = 0.0f;  // Clip bounds
};
void unary(UnaryOp op, const UnaryParams& p, const float* x, float* y, std::int64_t n);

// Softmax over `inner` contiguous elements, repeated `outer` times... generalized to an axis:
// shape is viewed as [outer, axis_len, inner].
void softmax(std::int64_t outer, std::int64_t axis_len, std::int64_t inner, const float* x, float* y);

Tensor transpose(const Tensor& x, const std::vector<std::int64_t>& perm);
Tensor concat(const std::vector<const Tensor*>& xs, std::int64_t axis);
// indices may be negative (counted from the end of the axis); out of range throws.
Tensor gather(const Tensor& data, const Tensor& indices, std::int64_t axis);

enum class PadMode : std::uint8_t { kConstant, kReflect, kEdge, kWrap };  // kWrap: opset 19
// pads: [begin_0, ..., begin_{r-1}, end_0, ..., end_{r-1}]; negative pads crop.
Tensor pad(const Tensor& x, const std::vector<std::int64_t>& pads, PadMode mode, float value);

}  // namespace aciq::kernels::ref
