// The calibrator table: names, parsing, the statistic each reads, and dispatch (docs/calibrators.md).
#include <fmt/format.h>

#include <array>
#include <cmath>
#include <sstream>

#include "aciq/calib.hpp"
#include "calib/methods/methods.hpp"

namespace aciq::calib {

namespace {
using quant::ClipMethod;
constexpr std::array<Calibrator, 11> kTable{{
    {ClipMethod::kNone, "none", "no", "mean of per-sample min and max", false, 0.0, true,
     methods::choose_none},
    {ClipMethod::kMinMax, "minmax", "", "min of per-sample min, max of per-sample max", false, 0.0, true,
     methods::choose_minmax},
    {ClipMethod::kLaplace, "laplace", "", "mean of per-sample b = mean|x - mean|, centred on the mean", false,
     0.0, true, methods::choose_analytical},
    {ClipMethod::kGauss, "gauss", "gaus", "the seed's range-based sigma from the mean per-sample min/max",
     false, 0.0, true, methods::choose_analytical},
    {ClipMethod::kMix, "mix", "", "mix", false, 0.0, false, methods::choose_analytical},
    {ClipMethod::kLaplaceGrid, "laplace-grid", "",
     "mean of per-sample b = mean|x - mean|, centred on the mean; coefficient for the 2^M-level grid", false,
     0.0, true, methods::choose_analytical},
    {ClipMethod::kGaussGrid, "gauss-grid", "gaus-grid",
     "the seed's range-based sigma from the mean per-sample min/max; coefficient for the 2^M-level grid",
     false, 0.0, true, methods::choose_analytical},
    {ClipMethod::kPercentile, "percentile", "",
     "histogram of |x|: the smallest bin edge with P% of the values below it, on the observed range", true,
     99.99, true, methods::choose_percentile},
    {ClipMethod::kKl, "kl", "entropy",
     "histogram of |x|: TensorRT's minimum-KL threshold (2^(M-1) levels signed, 2^M unsigned)", true, 0.0,
     true, methods::choose_kl},
    {ClipMethod::kMse, "mse", "",
     "histogram: the window with the least measured MSE on the grid that runs (search over bin edges)", true,
     0.0, true, methods::choose_mse},
    {ClipMethod::kAuto, "auto", "", "histogram: the candidate method with the least measured MSE", true, 0.0,
     false, methods::choose_auto},
}};

std::string all_names() {
  std::string s;
  for (const auto& c : kTable) {
    if (!s.empty()) s += ", ";
    s += c.name;
    if (c.default_param > 0) s += "[:P]";
  }
  return s;
}
}  // namespace

std::span<const Calibrator> calibrators() { return kTable; }

const Calibrator& calibrator(quant::ClipMethod m) {
  for (const auto& c : kTable) {
    if (c.method == m) return c;
  }
  fail("unknown calibration method");
}

quant::ClipSpec parse_clip(std::string_view text) {
  const auto colon = text.find(':');
  const std::string_view word = text.substr(0, colon);
  for (const auto& c : kTable) {
    bool match = word == c.name;
    std::istringstream aliases{std::string(c.aliases)};
    for (std::string a; !match && aliases >> a;) match = word == a;
    if (!match) continue;
    if (colon == std::string_view::npos) return {c.method, c.default_param};
    const std::string arg(text.substr(colon + 1));
    if (c.default_param <= 0)
      fail("clipping method '" + std::string(text) + "': " + std::string(c.name) + " takes no parameter");
    double p = 0.0;
    try {
      std::size_t used = 0;
      p = std::stod(arg, &used);
      if (used != arg.size()) p = -1.0;
    } catch (const std::exception&) {
      p = -1.0;
    }
    if (!(p > 0.0 && p < 100.0))
      fail("clipping method '" + std::string(text) +
           "': P must be a number in (0, 100), e.g. percentile:99.99");
    return {c.method, p};
  }
  fail("unknown clipping method '" + std::string(text) + "' (expected one of " + all_names() + ")");
}

std::string clip_name(const quant::ClipSpec& s) {
  const Calibrator& c = calibrator(s.method);
  std::string n(c.name);
  if (c.default_param > 0) {
    n += fmt::format(":{}", s.param);  // shortest text that reads back as the same double
  }
  return n;
}

WindowChoice choose_window(const WindowRequest& r) {
  const Calibrator& c = calibrator(r.clip.method);
  if (c.needs_histogram) (void)methods::require_histogram(r);
  return c.choose(r);
}

quant::PointQuantizer activation_quantizer(const WindowChoice& c, int bits, bool onnx_grid) {
  quant::PointQuantizer q;
  q.onnx = onnx_grid;
  if (onnx_grid) {
    const auto [qmin, qmax] = quant::int_range(bits, false, false);
    q.grid = quant::onnx_asymmetric_grid(c.lo, c.hi, qmin, qmax);
  } else {
    q.seed = quant::affine_params(c.window, bits);
  }
  return q;
}

WindowChoice window_of_range(double lo, double hi) {
  WindowChoice c;
  c.window = {lo, hi - lo};
  c.lo = lo;
  c.hi = hi;
  return c;
}

WindowChoice window_of(const quant::QuantWindow& w) {
  WindowChoice c;
  c.window = w;
  c.lo = w.offset;
  c.hi = w.offset + w.delta;
  return c;
}

}  // namespace aciq::calib
