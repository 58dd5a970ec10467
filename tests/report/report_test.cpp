// The HTML report: every calibrator's window and errors per point (the analytical ones in closed form),
// one chart per point, bar heights from the counts, escaping, sweep rows of the model only.
#include "aciq/report.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <regex>

#include "../plan/plan_fixture.hpp"

namespace aciq::testing {
namespace {

std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + what.size())) ++n;
  return n;
}

struct ReportTest : Resnet20 {
  report::ReportInput input(const plan::QuantPlan& p) const {
    report::ReportInput in;
    in.title = "models/resnet20.onnx";
    in.stats_path = "s.json";
    in.graph = &g;
    in.stats = &stats;
    in.options = p.options;
    in.plan = &p;
    return in;
  }
};

TEST_F(ReportTest, EveryMethodOnEveryPointWithClosedFormAnalyticalError) {
  const auto p = plan::build_plan(g, stats,
                                  plan_options(4, quant::ClipMethod::kLaplace, plan::Semantics::kSeed,
                                               plan::WeightGranularity::kTensor, policy::Placement::kOutputs),
                                  "s.json");
  const auto in = input(p);
  const auto points = report::point_reports(in);
  ASSERT_EQ(points.size(), p.activations().size());
  int laplace_checked = 0;
  for (const auto& r : points) {
    ASSERT_EQ(r.methods.size(), calib::calibrators().size()) << r.value;
    const auto* t = p.find(r.value, plan::TensorKind::kActivation);
    ASSERT_NE(t, nullptr);
    EXPECT_EQ(r.chosen, t->method);
    for (const auto& m : r.methods) {
      EXPECT_LE(m.lo, m.hi) << r.value << " " << m.method;
      EXPECT_GE(m.measured_mse, 0.0);
      if (m.method != "laplace" || r.role != "conv") continue;
      // The plan's laplace window is the report's, and its analytical error is the seed's closed form
      // 2 b^2 exp(-alpha / b) + alpha^2 / (3 4^M) at the mean per-sample b.
      EXPECT_DOUBLE_EQ(m.lo, t->lo[0]);
      EXPECT_DOUBLE_EQ(m.hi, t->hi[0]);
      const double b = stats.find(r.value)->operator[](calib::Stat::kB).mean();
      const double alpha = t->alpha;
      ASSERT_GT(alpha, 0.0);
      const double want = 2 * b * b * std::exp(-alpha / b) + alpha * alpha / (3.0 * std::pow(4.0, r.bits));
      EXPECT_NEAR(m.analytical_mse, want, 1e-9 * want) << r.value;
      ++laplace_checked;
    }
  }
  EXPECT_GT(laplace_checked, 10);
  // The page: one chart per point, one window bar per method in each, the plan's table, valid escaping.
  const std::string html = report::render_html(in, points);
  EXPECT_EQ(count(html, "<svg class=\"point-chart\""), points.size());
  EXPECT_EQ(count(html, "<rect class=\"window\""), points.size() * calib::calibrators().size());
  EXPECT_EQ(count(html, "<section class=\"point\""), points.size());
  EXPECT_NE(html.find("The plan's choices"), std::string::npos);
  EXPECT_EQ(html.find("<script"), std::string::npos);                        // self-contained, nothing to run
  EXPECT_EQ(html.find("http://"), html.find("http://www.w3.org/2000/svg"));  // no link but the SVG namespace
  EXPECT_EQ(report::render_html(in, points), html);                          // same input, same bytes
}

// Bars: a histogram with 1, 9 and 99 values in three far-apart bins gives three bars of heights
// log10(1 + c) / log10(100) x 150 px.
TEST(Report, BarHeightsFollowTheCountsOnALogScale) {
  calib::Histogram h;
  const std::vector<float> ones(1, 0.25f), nines(9, 1.0f), many(99, 1.75f);
  h.add(ones, 0.25f, 0.25f);
  h.add(nines, 1.0f, 1.0f);
  h.add(many, 1.75f, 1.75f);
  report::PointReport p;
  p.value = "x<&>";
  p.role = "conv";
  p.node = "n";
  p.histogram = &h;
  p.min = 0.0;
  p.max = 2.0;
  p.methods.push_back({"minmax", 0.0, 2.0, 0.1, -1.0});
  calib::StatsFile stats;
  report::ReportInput in;
  in.stats = &stats;
  const std::string html = report::render_html(in, {p});
  const std::regex bin(
      "<rect class=\"bin\" x=\"[0-9.]+\" y=\"[0-9.]+\" width=\"[0-9.]+\" height=\"([0-9.]+)\"/>");
  std::vector<double> heights;
  for (auto it = std::sregex_iterator(html.begin(), html.end(), bin); it != std::sregex_iterator(); ++it)
    heights.push_back(std::stod((*it)[1]));
  ASSERT_EQ(heights.size(), 3u);
  EXPECT_NEAR(heights[0], std::log10(2.0) / 2.0 * 150, 0.01);
  EXPECT_NEAR(heights[1], 1.0 / 2.0 * 150, 0.01);
  EXPECT_NEAR(heights[2], 150, 0.01);
  EXPECT_NE(html.find("x&lt;&amp;&gt;"), std::string::npos);
  EXPECT_EQ(html.find("x<&>"), std::string::npos);
  EXPECT_EQ(report::html_escape("a\"b'c"), "a&quot;b&#39;c");
}

TEST(Report, SweepRowsOfTheModelOnlyAndOneLinePerMethod) {
  const auto path =
      std::filesystem::temp_directory_path() / ("aciq_report_test_" + std::to_string(::getpid()) + ".json");
  {
    std::ofstream f(path);
    f << R"({"rows": [
      {"model_hash": "aa", "activations": "fp32", "clip": "-", "top1": 92.7},
      {"model_hash": "aa", "activations": "int4", "clip": "laplace", "top1": 92.0},
      {"model_hash": "aa", "activations": "int2", "clip": "laplace", "top1": 80.5},
      {"model_hash": "aa", "activations": "int4", "clip": "no", "top1": 90.0},
      {"model_hash": "bb", "activations": "int4", "clip": "no", "top1": 10.0}]})";
  }
  const auto rows = report::load_sweep(path.string(), "aa");
  ASSERT_EQ(rows.size(), 4u);
  calib::StatsFile stats;
  report::ReportInput in;
  in.stats = &stats;
  in.sweep = rows;
  const std::string html = report::render_html(in, {});
  EXPECT_EQ(count(html, "<path class=\"line\""), 2u);  // laplace and no
  EXPECT_EQ(count(html, "<circle"), 3u);
  EXPECT_NE(html.find("fp32 92.70"), std::string::npos);
  {
    std::ofstream f(path);
    f << R"({"points": []})";
  }
  EXPECT_THROW(report::load_sweep(path.string(), "aa"), Error);
  std::filesystem::remove(path);
  EXPECT_THROW(report::load_sweep(path.string(), "aa"), Error);
}

TEST_F(ReportTest, StatisticsWithoutHistogramsAreRefused) {
  auto bare = stats;
  for (auto& p : bare.points) p.histogram.reset();
  const auto p = make(4, plan::WeightGranularity::kTensor);
  auto in = input(p);
  in.stats = &bare;
  EXPECT_THROW((void)report::point_reports(in), Error);
}

}  // namespace
}  // namespace aciq::testing
