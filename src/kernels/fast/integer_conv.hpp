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

// The instruction sets the packed convolution can use, best last. kAvx512Vnni multiplies raw uint8
// activations by int8 weights with vpdpbusd (exact: four products summed into int32, no saturation)
// and applies the zero point as one correction per output channel; it needs every w - w_zero in
// [-128, 127], as symmetric int8 weights are, else the int16 path runs.
enum class IntegerIsa { kReference, kAvx2, kAvx512Vnni };
IntegerIsa best_integer_isa();  // what this CPU offers (checked once)

// Weights of one integer convolution, zero-point shifted and packed once (the weights of an exported
// model are constant): pairs of taps interleaved as int16 for vpmaddwd, in panels of kRows output
// channels per group, plus the shifted int32 weights for the direct (depthwise) path.
class PackedIntegerConv {
 public:
  // `isa` caps the instruction set (tests run every path on one machine); the CPU may lower it.
  PackedIntegerConv(const ref::ConvShape& s, const ref::Window2d& win, const std::int32_t* w,
                    const std::int32_t* w_zero, IntegerIsa isa = best_integer_isa());

  // y[n, oc, oh, ow] (int32) from 8-bit x; `x_unsigned` says whether x holds uint8 or int8 values.
  // With `channel_offset` (one int32 per output channel) a per-channel constant the sums still need may
  // be returned there instead of added to every output (the VNNI path's zero-point correction): the
  // caller adds it with its bias, y + channel_offset[oc] being the exact sums. Zeros on other paths.
  void run(const void* x, bool x_unsigned, std::int32_t x_zero, std::int32_t* y, ThreadPool& pool,
           std::int32_t* channel_offset = nullptr) const;

  // "u8s8 GEMM (AVX-512 VNNI)", "int16 GEMM (AVX2)" or "direct (AVX2)" (grouped convolutions with few
  // output channels per group, e.g. depthwise, where a GEMM panel would be mostly padding);
  // "reference" without AVX2.
  [[nodiscard]] const char* implementation() const;

 private:
  template <class T>
  void run_typed(const T* x, std::int32_t x_zero, std::int32_t* y, ThreadPool& pool,
                 std::int32_t* channel_offset) const;
  template <class T>
  void gemm_image(const T* x, std::int32_t x_zero, std::int32_t* y, ThreadPool& pool) const;
  template <class T>
  void vnni_image(const T* x, std::int32_t x_zero, std::int32_t* y, ThreadPool& pool, bool correct) const;
  template <class T>
  void direct_image(const T* x, std::int32_t x_zero, std::int32_t* y, ThreadPool& pool) const;

  ref::ConvShape s_;
  ref::Window2d win_;
  std::int64_t k_ = 0;       // taps per output channel: icg * kh * kw
  std::int64_t pairs_ = 0;   // ceil(k_ / 2)
  std::int64_t blocks_ = 0;  // panels of kRows output channels per group
  bool direct_ = false;
  IntegerIsa isa_ = IntegerIsa::kReference;
  std::int64_t quads_ = 0;              // ceil(k_ / 4) (VNNI path)
  std::vector<std::int32_t> quads8_;    // [group][block of 8][quad][8] four int8 per word (VNNI path)
  std::vector<std::int32_t> row_sums_;  // [oc] sum_k (w - w_zero): the zero-point correction (VNNI path)
  std::vector<std::int32_t> panels_;    // [group][block][pair][kRows] two int16 per word (GEMM path)
  std::vector<std::int32_t> shifted_;   // [oc][k] w - w_zero (direct and reference paths)
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
