// auto: per tensor, the candidate calibrator whose window has the least measured MSE on the histogram,
// under the grid that runs (ties go to the earlier method in the table).
#include <cmath>

#include "aciq/calib.hpp"
#include "calib/methods/methods.hpp"

namespace aciq::calib::methods {

WindowChoice choose_auto(const WindowRequest& r) {
  const Histogram& h = require_histogram(r);
  const WeightedValues v = weighted_values(h);
  WindowChoice best;
  double best_err = INFINITY;
  for (const auto& cal : calibrators()) {
    if (!cal.auto_candidate) continue;
    WindowRequest q = r;
    q.clip = quant::ClipSpec(cal.method, cal.default_param);
    WindowChoice c = cal.choose(q);
    c.method = q.clip;
    const double e = weighted_mse(v, c, r.bits, r.onnx_grid);
    if (e < best_err) {  // strict: ties go to the earlier method in the table
      best_err = e;
      best = c;
    }
  }
  return best;
}

}  // namespace aciq::calib::methods
