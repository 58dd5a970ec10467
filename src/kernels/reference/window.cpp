#include "kernels/reference/window.hpp"

#include <algorithm>
#include <limits>
#include <string>

#include "aciq/core.hpp"

namespace aciq::kernels::ref {

AxisWindow axis_window(std::int64_t size, std::int64_t kernel, std::int64_t stride, std::int64_t dilation,
                       std::int64_t pad_begin, std::int64_t pad_end, std::string_view auto_pad,
                       bool ceil_mode) {
  AxisWindow w;
  const std::int64_t ext = (kernel - 1) * dilation + 1;  // the window's extent on the input
  if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
    // Output ceil(size / stride); the padding it needs split evenly, the odd one at the end (UPPER) or
    // at the beginning (LOWER).
    w.out = (size + stride - 1) / stride;
    const std::int64_t total = std::max<std::int64_t>(0, (w.out - 1) * stride + ext - size);
    w.pad_begin = auto_pad == "SAME_UPPER" ? total / 2 : total - total / 2;
    w.pad_end = total - w.pad_begin;
  } else if (auto_pad == "VALID") {
    if (size < ext) throw Error("kernel is larger than the input");
    w.out = (size - ext) / stride + 1;
  } else if (auto_pad == "NOTSET") {
    w.pad_begin = pad_begin;
    w.pad_end = pad_end;
    const std::int64_t span = size + pad_begin + pad_end - ext;
    if (span < 0) throw Error("kernel is larger than the padded input");
    w.out = (ceil_mode ? (span + stride - 1) / stride : span / stride) + 1;
    // A window must start inside the input or its left padding (PyTorch/ONNX ceil rule).
    if (ceil_mode && (w.out - 1) * stride >= size + pad_begin) --w.out;
    w.ceil_overhang = (w.out - 1) * stride + ext > size + pad_begin + pad_end;
  } else {
    throw Error("unknown auto_pad '" + std::string(auto_pad) + "'");
  }
  if (w.out <= 0) throw Error("output would be empty");
  return w;
}

AxisTaps valid_taps(std::int64_t size, std::int64_t kernel, std::int64_t stride, std::int64_t dilation,
                    const AxisWindow& w) {
  AxisTaps t;
  t.fewest = std::numeric_limits<std::int64_t>::max();
  for (std::int64_t o = 0; o < w.out; ++o) {
    std::int64_t valid = 0;
    for (std::int64_t k = 0; k < kernel; ++k) {
      const std::int64_t at = o * stride - w.pad_begin + k * dilation;
      valid += at >= 0 && at < size ? 1 : 0;
    }
    t.fewest = std::min(t.fewest, valid);
    t.total += valid;
  }
  if (w.out <= 0) t.fewest = 0;
  return t;
}

}  // namespace aciq::kernels::ref
