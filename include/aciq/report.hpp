// `aciq report`: one self-contained HTML page (inline SVG, no scripts, no network) that shows, per
// quantization point, the calibration histogram with every calibrator's window drawn on it and their
// measured and analytical MSE; accuracy against bit width from sweep results; and the plan's choices.
#pragma once

#include <string>
#include <vector>

#include "aciq/calib.hpp"
#include "aciq/graph.hpp"
#include "aciq/plan.hpp"

namespace aciq::report {

// One row of `aciq sweep --json` for the report's model.
struct SweepRow {
  std::string activations;  // "fp32" or "intM"
  std::string clip;         // "-" for fp32
  double top1 = 0.0;
};
// The rows of a sweep JSON file that were measured on the model with this hash (other models' rows are
// skipped); throws naming the file when it is not a sweep result.
std::vector<SweepRow> load_sweep(const std::string& path, const std::string& model_hash);

// One calibrator's window on one point.
struct MethodWindow {
  std::string method;            // canonical name; mix/auto add the chosen method, e.g. "mix:gauss"
  double lo = 0.0, hi = 0.0;     // the window the grid is built from
  double measured_mse = 0.0;     // on the histogram, under the grid that runs (calib::histogram_mse)
  double analytical_mse = -1.0;  // the method's own error model (Laplace/Gauss methods); < 0: none
};
struct PointReport {
  std::string value, node, role;
  int bits = 8;
  bool half = false;  // windows chosen on the activated values (--half)
  const calib::Histogram* histogram = nullptr;
  double min = 0.0, max = 0.0;  // min of per-sample minima, max of per-sample maxima
  std::vector<MethodWindow> methods;
  std::string chosen;  // the plan's method for this point
};

struct ReportInput {
  std::string title;  // model path
  std::string stats_path;
  const graph::Graph* graph = nullptr;
  const calib::StatsFile* stats = nullptr;
  plan::PlanOptions options;  // bit width, semantics, placement and --half the windows are computed for
  const plan::QuantPlan* plan = nullptr;  // the plan whose choices are listed
  std::vector<SweepRow> sweep;
};

// Every calibrator's window and error on every point of the options' policy; throws naming the
// statistics file when they hold no histograms (collect them with this aciq).
std::vector<PointReport> point_reports(const ReportInput& in);
// The page. Byte-identical for identical inputs.
std::string render_html(const ReportInput& in, const std::vector<PointReport>& points);

// Escapes &, <, >, " and ' for HTML text and attributes.
std::string html_escape(const std::string& s);

}  // namespace aciq::report
