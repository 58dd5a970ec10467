// The geometry of one spatial axis of a Conv/ConvInteger/pooling window under ONNX's rules (explicit
// pads, auto_pad SAME_UPPER/SAME_LOWER/VALID, ceil_mode), shared by the operators that run the window
// and by the planner that counts its taps (bias correction).
#pragma once

#include <cstdint>
#include <string_view>

namespace aciq::kernels::ref {

struct AxisWindow {
  std::int64_t pad_begin = 0, pad_end = 0;  // after auto_pad
  std::int64_t out = 0;                     // output positions
  bool ceil_overhang = false;               // ceil_mode made the last window end past the end padding
};

// The window of an axis of `size` inputs: kernel, stride and dilation positive. pad_begin/pad_end are the
// node's explicit pads (ignored under SAME and VALID). Throws aciq::Error ("unknown auto_pad 'X'", "kernel
// is larger than the padded input", "output would be empty") for the caller to put in context.
AxisWindow axis_window(std::int64_t size, std::int64_t kernel, std::int64_t stride, std::int64_t dilation,
                       std::int64_t pad_begin, std::int64_t pad_end, std::string_view auto_pad,
                       bool ceil_mode);

// Over the output positions of an axis window: the fewest and the total taps that read the input rather
// than padding.
struct AxisTaps {
  std::int64_t fewest = 0, total = 0;
};
AxisTaps valid_taps(std::int64_t size, std::int64_t kernel, std::int64_t stride, std::int64_t dilation,
                    const AxisWindow& w);

}  // namespace aciq::kernels::ref
