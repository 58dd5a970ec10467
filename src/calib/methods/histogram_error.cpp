// The measured quantization error of a histogram under the grid that runs, shared by mse and auto.
#include "aciq/calib.hpp"
#include "calib/methods/methods.hpp"

namespace aciq::calib::methods {

const Histogram& require_histogram(const WindowRequest& r) {
  if (!r.stats->histogram) {
    fail("statistics point '" + r.stats->name + "': clipping method '" + clip_name(r.clip) +
         "' needs histograms, which these statistics do not hold (a version-1 file, or merged with one); "
         "collect them again with this aciq");
  }
  return *r.stats->histogram;
}

WeightedValues weighted_values(const Histogram& h) {
  WeightedValues v;
  auto push = [&v](double x, std::int64_t n) {
    v.value.push_back(static_cast<float>(x));
    v.count.push_back(static_cast<double>(n));
    v.total += static_cast<double>(n);
  };
  if (!h.negative.empty()) {
    const double w = h.negative.bin_width();
    for (int j = Histogram::kBins - 1; j >= 0; --j) {
      if (h.negative.counts[j] != 0) push(-(j + 0.5) * w, h.negative.counts[j]);
    }
  }
  if (h.zeros != 0) push(0.0, h.zeros);
  if (!h.positive.empty()) {
    const double w = h.positive.bin_width();
    for (int j = 0; j < Histogram::kBins; ++j) {
      if (h.positive.counts[j] != 0) push((j + 0.5) * w, h.positive.counts[j]);
    }
  }
  return v;
}

double weighted_mse(const WeightedValues& v, const WindowChoice& window, int bits, bool onnx_grid) {
  if (v.total <= 0) return 0.0;
  std::vector<float> q = v.value;
  quant::fake_quant(q, activation_quantizer(window, bits, onnx_grid));
  double s = 0.0;
  for (std::size_t i = 0; i < q.size(); ++i) {
    const double d = static_cast<double>(q[i]) - v.value[i];
    s += v.count[i] * d * d;
  }
  return s / v.total;
}

}  // namespace aciq::calib::methods

namespace aciq::calib {
double histogram_mse(const Histogram& h, const WindowChoice& window, int bits, bool onnx_grid) {
  return methods::weighted_mse(methods::weighted_values(h), window, bits, onnx_grid);
}
}  // namespace aciq::calib
