// The calibration report: every calibrator's window on each point's histogram, their errors, accuracy
// against bit width, the plan's choices; one HTML file with inline SVG and CSS (docs/report.md).
#include "aciq/report.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "aciq/policy.hpp"
#include "aciq/quant.hpp"

namespace aciq::report {

std::string html_escape(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (const char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::vector<SweepRow> load_sweep(const std::string& path, const std::string& model_hash) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path + ": cannot open sweep results");
  std::ostringstream ss;
  ss << in.rdbuf();
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(ss.str());
  } catch (const nlohmann::json::exception&) {
    fail(path + ": not a JSON file (expected the output of `aciq sweep --json`)");
  }
  if (!j.is_object() || !j.contains("rows") || !j.at("rows").is_array())
    fail(path + ": has no 'rows' array (expected the output of `aciq sweep --json`)");
  std::vector<SweepRow> rows;
  for (const auto& r : j.at("rows")) {
    if (!r.is_object() || !r.contains("model_hash") || !r.contains("activations") || !r.contains("clip") ||
        !r.contains("top1") || !r.at("top1").is_number())
      fail(path + ": a row lacks model_hash, activations, clip or a numeric top1");
    if (r.at("model_hash") != model_hash) continue;
    rows.push_back({r.at("activations").get<std::string>(), r.at("clip").get<std::string>(),
                    r.at("top1").get<double>()});
  }
  return rows;
}

namespace {

// The analytical error model of the Laplace/Gauss methods at the window they chose; -1 for the others.
double analytical_mse(const policy::PointRange& r, int bits) {
  if (r.alpha <= 0.0 || r.coefficient <= 0.0) return -1.0;
  const double scale = r.alpha / r.coefficient;
  switch (r.method.method) {
    case quant::ClipMethod::kLaplace:
      return quant::clip_mse(quant::Distribution::kLaplace, r.alpha, scale, bits);
    case quant::ClipMethod::kGauss: return quant::clip_mse(quant::Distribution::kGauss, r.alpha, scale, bits);
    case quant::ClipMethod::kLaplaceGrid:
    case quant::ClipMethod::kGaussGrid:
      return quant::grid_clip_mse(
          r.method.method == quant::ClipMethod::kLaplaceGrid ? quant::Distribution::kLaplace
                                                             : quant::Distribution::kGauss,
          r.half ? quant::ClipGrid::kHalf : quant::ClipGrid::kSymmetric, r.alpha, scale, bits);
    default: return -1.0;
  }
}

}  // namespace

std::vector<PointReport> point_reports(const ReportInput& in) {
  const auto& stats = *in.stats;
  for (const auto& p : stats.points)
    if (!p.histogram)
      fail(in.stats_path + ": point '" + p.name +
           "' has no histogram; the report draws them (collect the statistics again with this aciq)");
  auto options = in.options.policy;
  options.onnx_grid = in.options.semantics == plan::Semantics::kOnnx;
  std::vector<PointReport> out;
  for (auto p : policy::quant_points(*in.graph, options)) {
    const calib::PointStats* s = stats.find(p.value);
    if (!s) fail(in.stats_path + ": has no statistics for quantization point '" + p.value + "'");
    const calib::PointStats* activated = p.activated.empty() ? nullptr : stats.find(p.activated);
    const bool half = options.half && activated;
    const calib::PointStats& measured = half ? *activated : *s;
    PointReport r;
    r.value = p.value;
    r.node = p.node;
    r.role = std::string(policy::role_name(p.role));
    r.bits = p.bits;
    r.half = half;
    r.histogram = &*measured.histogram;
    r.min = measured[calib::Stat::kMin].min;
    r.max = measured[calib::Stat::kMax].max;
    for (const auto& c : calib::calibrators()) {
      p.clip = quant::ClipSpec(c.method, c.default_param);
      const auto range = policy::point_range(p, *s, options, activated);
      MethodWindow m;
      m.method = calib::clip_name(p.clip);
      if (c.method == quant::ClipMethod::kMix || c.method == quant::ClipMethod::kAuto)
        m.method += ":" + calib::clip_name(range.method);
      m.lo = range.lo;
      m.hi = range.hi;
      calib::WindowChoice w;
      w.window = range.window;
      w.lo = range.lo;
      w.hi = range.hi;
      m.measured_mse = calib::histogram_mse(*measured.histogram, w, p.bits, options.onnx_grid);
      m.analytical_mse = analytical_mse(range, p.bits);
      r.methods.push_back(std::move(m));
    }
    if (in.plan)
      if (const auto* t = in.plan->find(p.value, plan::TensorKind::kActivation)) r.chosen = t->method;
    out.push_back(std::move(r));
  }
  return out;
}

namespace {

// Eight distinguishable colours (Okabe-Ito plus two), cycled over the methods.
constexpr std::array<const char*, 8> kColors{"#0072b2", "#d55e00", "#009e73", "#cc79a7",
                                             "#e69f00", "#56b4e9", "#7f7f7f", "#000000"};

std::string num(double v) { return fmt::format("{:.4g}", v); }

// The histogram as display bars over [x0, x1], heights on a log scale, and each method's window as a
// bar in its own row below.
std::string point_chart(const PointReport& p, std::size_t index) {
  constexpr double kWidth = 760, kLeft = 150, kPlot = 590, kHist = 150, kRow = 13;
  double x0 = std::min(0.0, p.min), x1 = std::max(0.0, p.max);
  for (const auto& m : p.methods) {
    x0 = std::min(x0, m.lo);
    x1 = std::max(x1, m.hi);
  }
  if (!(x1 > x0)) x1 = x0 + 1.0;
  const auto x_of = [&](double v) { return kLeft + (v - x0) / (x1 - x0) * kPlot; };
  // Source bins (centres) into kDisplay display bins.
  constexpr int kDisplay = 160;
  std::vector<double> bars(kDisplay, 0.0);
  const auto add = [&](double v, std::int64_t count) {
    const int k = std::clamp(static_cast<int>(std::floor((v - x0) / (x1 - x0) * kDisplay)), 0, kDisplay - 1);
    bars[static_cast<std::size_t>(k)] += static_cast<double>(count);
  };
  const auto& h = *p.histogram;
  for (const auto* half : {&h.positive, &h.negative}) {
    const double sign = half == &h.positive ? 1.0 : -1.0, width = half->bin_width();
    for (std::size_t j = 0; j < half->counts.size(); ++j)
      if (half->counts[j] > 0) add(sign * (static_cast<double>(j) + 0.5) * width, half->counts[j]);
  }
  if (h.zeros > 0) add(0.0, h.zeros);
  const double top = std::log10(1.0 + *std::max_element(bars.begin(), bars.end()));
  const double height = kHist + 30 + kRow * static_cast<double>(p.methods.size()) + 20;
  std::string svg = fmt::format(
      "<svg class=\"point-chart\" data-point=\"{}\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" "
      "height=\"{}\" viewBox=\"0 0 {} {}\" role=\"img\" aria-label=\"histogram of {}\">\n",
      index, kWidth, height, kWidth, height, html_escape(p.value));
  svg += fmt::format("<text x=\"{}\" y=\"12\" class=\"axis\">count (log scale), {} values</text>\n", kLeft,
                     h.total());
  const double bw = kPlot / kDisplay;
  for (int k = 0; k < kDisplay; ++k) {
    if (bars[static_cast<std::size_t>(k)] <= 0) continue;
    const double bh = top > 0 ? std::log10(1.0 + bars[static_cast<std::size_t>(k)]) / top * kHist : kHist;
    svg += fmt::format("<rect class=\"bin\" x=\"{:.2f}\" y=\"{:.2f}\" width=\"{:.2f}\" height=\"{:.2f}\"/>\n",
                       kLeft + k * bw, 16 + kHist - bh, bw, bh);
  }
  // Axis: ends and zero.
  const double axis_y = 16 + kHist;
  svg += fmt::format("<line class=\"axis-line\" x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\"/>\n", kLeft, axis_y,
                     kLeft + kPlot, axis_y);
  for (const double v : {x0, 0.0, x1}) {
    svg += fmt::format("<text class=\"axis\" x=\"{:.2f}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n",
                       x_of(v), axis_y + 14, num(v));
  }
  // One row per method: its window as a bar.
  for (std::size_t m = 0; m < p.methods.size(); ++m) {
    const auto& w = p.methods[m];
    const double y = axis_y + 24 + kRow * static_cast<double>(m);
    const bool chosen = !p.chosen.empty() && p.chosen == w.method;
    svg += fmt::format("<text class=\"method{}\" x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>\n",
                       chosen ? " chosen" : "", kLeft - 6, y + 9, html_escape(w.method));
    svg += fmt::format(
        "<rect class=\"window\" data-method=\"{}\" x=\"{:.2f}\" y=\"{}\" width=\"{:.2f}\" height=\"9\" "
        "fill=\"{}\"/>\n",
        html_escape(w.method), x_of(w.lo), y, std::max(1.0, x_of(w.hi) - x_of(w.lo)),
        kColors[m % kColors.size()]);
  }
  svg += "</svg>\n";
  return svg;
}

std::string point_table(const PointReport& p) {
  double best = INFINITY;
  for (const auto& m : p.methods) best = std::min(best, m.measured_mse);
  std::string t =
      "<table><tr><th>method</th><th>lo</th><th>hi</th><th>measured MSE</th><th>analytical MSE</th>"
      "<th>analytical / measured</th></tr>\n";
  for (const auto& m : p.methods) {
    const bool is_best = m.measured_mse == best;
    const bool chosen = !p.chosen.empty() && p.chosen == m.method;
    t += fmt::format(
        "<tr{}><td>{}{}</td><td>{}</td><td>{}</td><td>{}{:.4e}{}</td><td>{}</td><td>{}</td></tr>\n",
        chosen ? " class=\"chosen\"" : "", html_escape(m.method), chosen ? " (plan)" : "", num(m.lo),
        num(m.hi), is_best ? "<b>" : "", m.measured_mse, is_best ? "</b>" : "",
        m.analytical_mse >= 0 ? fmt::format("{:.4e}", m.analytical_mse) : "&mdash;",
        m.analytical_mse >= 0 && m.measured_mse > 0 ? fmt::format("{:.3f}", m.analytical_mse / m.measured_mse)
                                                    : "&mdash;");
  }
  t += "</table>\n";
  return t;
}

// Accuracy against bit width, one line per clipping method, fp32 as a dashed line.
std::string accuracy_chart(const std::vector<SweepRow>& rows) {
  std::map<std::string, std::map<int, double>> lines;
  std::set<int> widths;
  double fp32 = -1.0, lo = 100.0, hi = 0.0;
  for (const auto& r : rows) {
    lo = std::min(lo, r.top1);
    hi = std::max(hi, r.top1);
    if (r.activations == "fp32") {
      fp32 = r.top1;
      continue;
    }
    if (r.activations.rfind("int", 0) != 0) continue;
    const int bits = std::atoi(r.activations.c_str() + 3);
    widths.insert(bits);
    lines[r.clip][bits] = r.top1;
  }
  if (widths.empty()) return "";
  constexpr double kW = 720, kH = 280, kL = 60, kR = 160, kT = 20, kB = 40;
  lo = std::floor(lo - 1.0);
  hi = std::ceil(hi + 0.5);
  const std::vector<int> xs(widths.begin(), widths.end());
  const auto x_of = [&](int bits) {
    const auto i = static_cast<double>(std::find(xs.begin(), xs.end(), bits) - xs.begin());
    return kL + (xs.size() > 1 ? i / static_cast<double>(xs.size() - 1) : 0.5) * (kW - kL - kR);
  };
  const auto y_of = [&](double v) { return kT + (hi - v) / (hi - lo) * (kH - kT - kB); };
  std::string svg = fmt::format(
      "<svg class=\"accuracy-chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" "
      "viewBox=\"0 0 {} {}\" role=\"img\" aria-label=\"top-1 against activation bits\">\n",
      kW, kH, kW, kH);
  for (const int b : xs)
    svg += fmt::format("<text class=\"axis\" x=\"{:.2f}\" y=\"{}\" text-anchor=\"middle\">int{}</text>\n",
                       x_of(b), kH - kB + 16, b);
  for (const double v : {lo, (lo + hi) / 2, hi})
    svg += fmt::format("<text class=\"axis\" x=\"{}\" y=\"{:.2f}\" text-anchor=\"end\">{:.1f}</text>\n",
                       kL - 6, y_of(v) + 4, v);
  if (fp32 >= 0)
    svg += fmt::format(
        "<line class=\"fp32\" x1=\"{}\" y1=\"{:.2f}\" x2=\"{}\" y2=\"{:.2f}\"/><text class=\"axis\" x=\"{}\" "
        "y=\"{:.2f}\">fp32 {:.2f}</text>\n",
        kL, y_of(fp32), kW - kR, y_of(fp32), kW - kR + 6, y_of(fp32) + 4, fp32);
  std::size_t k = 0;
  for (const auto& [clip, pts] : lines) {
    const char* color = kColors[k % kColors.size()];
    std::string path;
    for (const auto& [bits, top1] : pts)
      path += fmt::format("{}{:.2f},{:.2f} ", path.empty() ? "M" : "L", x_of(bits), y_of(top1));
    svg += fmt::format("<path class=\"line\" data-clip=\"{}\" d=\"{}\" stroke=\"{}\"/>\n", html_escape(clip),
                       path, color);
    for (const auto& [bits, top1] : pts)
      svg += fmt::format(
          "<circle cx=\"{:.2f}\" cy=\"{:.2f}\" r=\"3\" fill=\"{}\"><title>{} int{}: "
          "{:.2f}</title></circle>\n",
          x_of(bits), y_of(top1), color, html_escape(clip), bits, top1);
    // A style, not a fill attribute: the class's CSS fill would win over the attribute.
    svg += fmt::format("<text class=\"legend\" x=\"{}\" y=\"{}\" style=\"fill:{}\">{}</text>\n", kW - kR + 6,
                       kT + 14 * static_cast<double>(k + 2), color, html_escape(clip));
    ++k;
  }
  svg += "</svg>\n";
  return svg;
}

std::string plan_section(const plan::QuantPlan& plan) {
  std::string t =
      fmt::format("<p>{} semantics, {} weights, placement {}; from {} ({} samples).</p>\n",
                  plan::semantics_name(plan.semantics()), plan::weight_granularity_name(plan.options.weights),
                  policy::placement_name(plan.options.policy.placement), html_escape(plan.stats_path),
                  plan.stats_samples);
  t += "<table><tr><th>tensor</th><th>role</th><th>bits</th><th>method</th><th>lo</th><th>hi</th><th>scale</"
       "th>"
       "<th>zero point</th><th>statistic</th></tr>\n";
  for (const auto* a : plan.activations()) {
    t += fmt::format(
        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.6g}</td><td>{}</td>"
        "<td class=\"statistic\">{}</td></tr>\n",
        html_escape(a->tensor), html_escape(a->role), a->bits, html_escape(a->method), num(a->lo[0]),
        num(a->hi[0]), a->scale[0], a->zero_point[0], html_escape(a->statistic));
  }
  t += "</table>\n";
  return t;
}

constexpr const char* kStyle = R"(body{font:14px/1.4 sans-serif;margin:24px;color:#222;max-width:1100px}
h1{font-size:20px}h2{font-size:17px;margin-top:28px}h3{font-size:15px;margin:22px 0 4px}
table{border-collapse:collapse;margin:6px 0 10px}td,th{border:1px solid #ccc;padding:2px 7px;text-align:right}
td:first-child,th:first-child{text-align:left}tr.chosen td{background:#eef5ff}
.bin{fill:#9aa7b8}.axis{font-size:11px;fill:#444}.axis-line{stroke:#444}.method{font-size:11px;fill:#222}
.method.chosen{font-weight:bold}.line{fill:none;stroke-width:2}.fp32{stroke:#444;stroke-dasharray:5 4}
.note{color:#555}.legend{font-size:12px}td.statistic{text-align:left;font-size:11px;color:#444}
summary{cursor:pointer;margin:4px 0})";

}  // namespace

std::string render_html(const ReportInput& in, const std::vector<PointReport>& points) {
  std::string html = "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n";
  html += fmt::format("<title>aciq report: {}</title>\n<style>{}</style></head><body>\n",
                      html_escape(in.title), kStyle);
  html += fmt::format("<h1>aciq calibration report: {}</h1>\n", html_escape(in.title));
  html += fmt::format(
      "<p class=\"note\">Statistics {} ({}, {} samples). Windows for {}-bit activations, {} semantics{}. "
      "Measured MSE: "
      "the histogram's values (bin centres) quantized with each window on the grid that runs; analytical "
      "MSE: the "
      "method's own Laplace/Gauss model at its alpha (docs/clipping.md). Bold: the least measured "
      "error.</p>\n",
      html_escape(in.stats_path), html_escape(in.stats->data_source), in.stats->samples,
      in.options.policy.activation_bits, plan::semantics_name(in.options.semantics),
      in.options.policy.half ? ", --half" : "");
  if (!in.sweep.empty()) {
    html += "<h2>Accuracy against activation bits</h2>\n" + accuracy_chart(in.sweep);
  }
  html += fmt::format("<h2>Quantization points ({})</h2>\n", points.size());
  for (std::size_t i = 0; i < points.size(); ++i) {
    const auto& p = points[i];
    html += fmt::format(
        "<section class=\"point\" id=\"point-{}\"><h3>{} <span class=\"note\">({}, node {}, {} "
        "bits{})</span></h3>\n",
        i, html_escape(p.value), html_escape(p.role), html_escape(p.node), p.bits,
        p.half ? ", window on the activated values" : "");
    html += point_chart(p, i) + point_table(p) + "</section>\n";
  }
  // Last and folded: the per-point sections already mark each point's chosen method.
  if (in.plan)
    html +=
        fmt::format("<h2>The plan's choices</h2>\n<details><summary>{} activations</summary>\n{}</details>\n",
                    in.plan->activations().size(), plan_section(*in.plan));
  html += "</body></html>\n";
  return html;
}

}  // namespace aciq::report
