// percentile[:P]: clip |x| at the P-th percentile of the histogram (ONNX Runtime's Percentile calibrator,
// default P = 99.99 as NVIDIA's pytorch-quantization), intersected with the observed range.
#include "aciq/calib.hpp"
#include "calib/methods/methods.hpp"

namespace aciq::calib::methods {

WindowChoice choose_percentile(const WindowRequest& r) {
  const auto m = require_histogram(r).magnitudes();
  if (m.empty()) return choose_minmax(r);
  const double total = static_cast<double>(m.total());
  const double target = r.clip.param / 100.0 * total;
  double cum = 0.0;
  int bin = Histogram::kBins - 1;
  for (int j = 0; j < Histogram::kBins; ++j) {
    cum += static_cast<double>(m.counts[j]);
    if (cum >= target) {
      bin = j;
      break;
    }
  }
  // The upper edge of the bin where the cumulative share reaches P: at least P% of |x| lies below it.
  WindowChoice c = magnitude_window(*r.stats, (bin + 1) * m.bin_width());
  c.method = r.clip;
  return c;
}

}  // namespace aciq::calib::methods
