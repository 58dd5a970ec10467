// The calibrators' entry points and the histogram helpers they share (internal to src/calib).
#pragma once

#include <vector>

#include "aciq/calib.hpp"

namespace aciq::calib::methods {

WindowChoice choose_none(const WindowRequest& r);
WindowChoice choose_minmax(const WindowRequest& r);
WindowChoice choose_analytical(const WindowRequest& r);  // laplace, gauss, mix, laplace-grid, gauss-grid
WindowChoice choose_percentile(const WindowRequest& r);
WindowChoice choose_kl(const WindowRequest& r);
WindowChoice choose_mse(const WindowRequest& r);
WindowChoice choose_auto(const WindowRequest& r);

// The observed range of a tensor: min of per-sample minima, max of per-sample maxima.
std::pair<double, double> observed_range(const PointStats& s);
// [max(lo, -t), min(hi, t)]: a magnitude threshold applied to the observed range.
WindowChoice magnitude_window(const PointStats& s, double t);
// The request's histogram; throws naming the point and the method when there is none.
const Histogram& require_histogram(const WindowRequest& r);

// A histogram as weighted points: the centre of every non-empty bin (zeros at 0), ascending.
struct WeightedValues {
  std::vector<float> value;
  std::vector<double> count;
  double total = 0.0;
};
WeightedValues weighted_values(const Histogram& h);
// Mean squared quantization error of the weighted values under the window's grid.
double weighted_mse(const WeightedValues& v, const WindowChoice& window, int bits, bool onnx_grid);

}  // namespace aciq::calib::methods
