// Fast integer convolution for ConvInteger / QLinearConv: exact int32 results, bit for bit those of
// kernels::ref::conv2d_integer and ref::requantize (tests/kernels/integer_test.cpp holds them equal).
//
// Why int16 and vpmaddwd (docs/int8.md, "Fast path"): this machine class (AVX2, no VNNI) has no exact
// 8-bit dot product. vpmaddubsw multiplies u8 x s8 but saturates its int16 pair sums (255*127*2 > 32767),
// which is why oneDNN's non-VNNI int8 kernels and ONNX Runtime's MLAS either rescale weights or accept
// saturation. Zero-point-shifted operands (x - x_zero, w - w_zero) lie in [-255, 255] and fit int16;
// vpmaddwd multiplies int16 pairs and adds the two products into int32 exactly (|sum| <= 2*255^2), so
// the accumulation is the reference's, only reordered - and integer addition is associative.
#pragma once

#include <cstdint>
#include <vector>

#include "aciq/core.hpp"
#include "kernels/reference/reference.hpp"

namespace aciq::kernels::fast {

// True when the CPU running us has AVX2 (checked once); otherwise every function here falls back to the
// reference kernels, so results never depend on the machine.
bool has_int16_madd();

// Weights of one integer convolution, zero-point shifted and packed once (the weights of an exported
// model are constant): pairs of taps interleaved as int16 for vpmaddwd, in panels of kRows output
// channels per group, plus the shifted int32 weights for the direct (depthwise) path.
class PackedIntegerConv {
 public:
  PackedIntegerConv(const ref::ConvShape& s, const ref::Window2d& win, const std::int32_t* w,
                    const std::int32_t* w_zero);

  // y[n, oc, oh, ow] (int32) from 8-bit x; `x_unsigned` says whether x holds uint8 or int8 values.
  void run(const void* x, bool x_unsigned, std::int32_t x_zero, std::int32_t* y, ThreadPool& pool) const;

  // "int16 GEMM" or "direct" (grouped convolutions with few output channels per group, e.g. depthwise,
  // where a GEMM panel would be mostly padding); "reference" without AVX2.
  [[nodiscard]] const char* implementation() const;

 private:
  template <class T>
  void run_typed(const T* x, std::int32_t x_zero, std::int32_t* y, ThreadPool& pool) const;
  template <class T>
  void gemm_image(const T* x, std::int32_t x_zero, std::int32_t* y, ThreadPool& pool) const;
  template <class T>
  void direct_image(const T* x, std::int32_t x_zero, std::int32_t* y, ThreadPool& pool) const;

  ref::ConvShape s_;
  ref::Window2d win_;
  std::int64_t k_ = 0;       // taps per output channel: icg * kh * kw
  std::int64_t pairs_ = 0;   // ceil(k_ / 2)
  std::int64_t blocks_ = 0;  // panels of kRows output channels per group
  bool direct_ = false;
  std::vector<std::int32_t> panels_;   // [group][block][pair][kRows] two int16 per word (GEMM path)
  std::vector<std::int32_t> shifted_;  // [oc][k] w - w_zero (direct and reference paths)
  std::vector<std::int32_t> w_zero_;
};

// Bias add (two's-complement, as an int32 register wraps), requantization and narrowing in one pass:
//   y[o, c, i] = clamp(rint(float(acc[o, c, i] + bias[c]) * scale[c]) + y_zero, lo, hi)
// the same arithmetic as ref::requantize (float32 product, round half to even), written to uint8 or
// int8 storage (`y_unsigned`). `bias` may be null.
void requantize_to_8bit(std::int64_t outer, std::int64_t channels, std::int64_t inner,
                        const std::int32_t* acc, const std::int32_t* bias, const float* scale,
                        std::int32_t y_zero, std::int32_t lo, std::int32_t hi, void* y, bool y_unsigned);

}  // namespace aciq::kernels::fast
