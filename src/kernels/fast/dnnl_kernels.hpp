// oneDNN-backed convolution, pooling and GEMM primitives on plain NCHW buffers.
#pragma once

#include <memory>

#include "kernels/activation.hpp"
#include "kernels/reference/conv_transpose.hpp"
#include "kernels/reference/reference.hpp"

namespace aciq::kernels::fast {

// The `block` argument's value for channels-last (NHWC) activations, the layout oneDNN's int8
// convolutions read and write (docs/layouts.md, "Channels-last plans"); 0 is plain NCHW, 8 and 16 the
// channel-blocked nChw8c / nChw16c.
inline constexpr int kChannelsLast = -1;

// One oneDNN CPU engine + stream; create once per executor plan and share among its primitives.
class DnnlEngine {
 public:
  DnnlEngine();
  ~DnnlEngine();
  struct Impl;
  Impl& impl() { return *impl_; }
  // Channels per block of the blocked activation layout oneDNN's kernels prefer on this CPU
  // (16 with AVX-512, else 8).
  [[nodiscard]] int channel_block() const;

 private:
  std::unique_ptr<Impl> impl_;
};

class Conv2d {
 public:
  // Weights (OIHW, grouped as [O, C/group, KH, KW]) are reordered once into oneDNN's preferred layout.
  // src_block/dst_block: 0 for plain NCHW, else the channel block of nChw8c/nChw16c.
  // accumulate: y = act(conv(x) + y), the residual sum read from the destination in the same pass.
  Conv2d(DnnlEngine& engine, const ref::ConvShape& shape, const ref::Window2d& window, const float* weights,
         const float* bias, const Activation& act, int src_block = 0, int dst_block = 0,
         bool accumulate = false);
  ~Conv2d();
  void run(const float* x, float* y);
  // oneDNN's name of the implementation it picked (e.g. "brg:avx512_core"); "ref..." is its slow fallback.
  [[nodiscard]] std::string implementation() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// A 3-D convolution on plain NCDHW buffers (video and volumetric CNNs): oneDNN picks its layouts, the
// source and destination are reordered around the primitive, the weights ([O, C/group, KD, KH, KW]) once.
class Conv3d {
 public:
  Conv3d(DnnlEngine& engine, const ref::Conv3dShape& shape, const ref::Window3d& window, const float* weights,
         const float* bias, const Activation& act);
  ~Conv3d();
  void run(const float* x, float* y);
  [[nodiscard]] std::string implementation() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// ConvTranspose as a oneDNN deconvolution on plain NC[D]HW buffers, 1 to 3 spatial dims.
// QLinearConv as one oneDNN int8 convolution: 8-bit x (runtime zero point), symmetric int8 weights,
// int32 bias, per-output-channel requantization scale and the (constant) output zero point fused:
//   y = saturate(rint((float(acc) + float(bias[c])) * scale[c]) + y_zero),
//   acc = sum (x - x_zero) * w  (exact int32, padding counts as x_zero).
// This is ref::requantize's result whenever |acc| and |acc + bias| stay below 2^24, where the int32 to
// float32 conversions are exact (docs/int8.md, "oneDNN's int8 convolution"); beyond that the two float
// roundings may pick the neighbouring level. The convolution always runs channels-last; a plain source or
// destination is reordered through a staging buffer.
class Int8Conv2d {
 public:
  struct Types {
    bool src_signed = false, dst_signed = false;
  };
  // `w` is [OC, C/group, KH, KW] int8; `scale` has OC entries; `bias` may be null.
  // src_layout / dst_layout: 0 (plain NCHW) or kChannelsLast.
  Int8Conv2d(DnnlEngine& engine, const ref::ConvShape& shape, const ref::Window2d& window,
             const std::int8_t* w, const std::int32_t* bias, const float* scale, std::int32_t y_zero,
             Types types, int src_layout, int dst_layout);
  ~Int8Conv2d();
  void run(const void* x, std::int32_t x_zero, void* y);
  [[nodiscard]] std::string implementation() const;

  // Whether oneDNN runs this convolution on a kernel with exact 8-bit dot products (VNNI's vpdpbusd or
  // AMX's tdpbusd). Without them oneDNN's int8 kernels use vpmaddubsw, whose int16 pair sums saturate,
  // and would not compute the integer sum ONNX defines; then the caller keeps aciq's own kernels.
  static bool exact_kernel_available(const ref::ConvShape& shape, const ref::Window2d& window, Types types);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

class Deconv {
 public:
  // Weights use the ONNX layout [C, OC/group, k...] and are reordered once into oneDNN's preferred one.
  // A negative pad_end (output_padding) is fine; oneDNN rejects a negative pad_begin (an output_shape
  // well beyond the full output), for which this fails.
  Deconv(DnnlEngine& engine, const ref::ConvTransposeShape& shape, const float* weights, const float* bias,
         const Activation& act);
  ~Deconv();
  void run(const float* x, float* y);
  [[nodiscard]] std::string implementation() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

class Pool2d {
 public:
  enum class Kind : std::uint8_t { kMax, kAvgIncludePad, kAvgExcludePad };
  // The element type of source and destination: float32, or uint8/int8 for kMax (the int8 engine's
  // MaxPool on quantized activations).
  enum class Data : std::uint8_t { kFloat32, kUInt8, kInt8 };
  Pool2d(DnnlEngine& engine, const ref::PoolShape& shape, const ref::Window2d& window, Kind kind,
         int block = 0, Data data = Data::kFloat32);
  ~Pool2d();
  void run(const void* x, void* y);
  [[nodiscard]] std::string implementation() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Global average pooling of an [N, C, HW] tensor in nChw{block}c layout into [N, C] (plain or blocked).
// GlobalAveragePool on a plain [N*C][HW] tensor: rows split over the pool, each summed in double with eight
// interleaved partial sums (vectorizable, unlike the reference's single running sum, so the last bits may
// differ from ref::global_avg_pool; within 1e-12 relative of it).
void global_avg_pool_plain(std::int64_t nc, std::int64_t hw, const float* x, float* y, ThreadPool& pool);
void global_avg_pool_blocked(std::int64_t n, std::int64_t c, std::int64_t hw, int block, const float* x,
                             float* y, bool y_blocked);

// Row-major C[m,n] = alpha * op(A) op(B) + beta * C via oneDNN's sgemm. Each row of C is the same
// bits whatever m is: oneDNN picks other kernels (other summation orders) for small m, so fewer rows
// than it needs for its regular kernel (kSgemmMinRows, or kSgemmMinRowsTransB with a transposed B;
// measured, and held by tests/kernels/sgemm_test.cpp) are computed inside a zero-padded block of that
// many (docs/determinism.md). Without this, a last short batch (or batch 1) would score and collect
// differently from the same samples inside a full batch.
inline constexpr std::int64_t kSgemmMinRows = 2;
inline constexpr std::int64_t kSgemmMinRowsTransB = 16;
void sgemm(bool trans_a, bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k, float alpha,
           const float* a, const float* b, float beta, float* c);

}  // namespace aciq::kernels::fast
