// `aciq report`: flag parsing for the HTML calibration report (the page is built by aciq::report).
#include <fmt/format.h>

#include <iostream>
#include <optional>

#include "aciq/report.hpp"
#include "commands.hpp"

namespace aciq::cli {

namespace {

struct ReportCmd {
  ModelOptions model;
  QuantArgs quant;
  std::string plan;
  std::vector<std::string> sweeps;
  std::string out;
};

int run_report(const ReportCmd& c) {
  ReportCmd cmd = c;
  cmd.model.resolve();
  if (cmd.quant.stats.empty()) throw Error("--stats: required, the statistics the windows are computed from");
  if (!cmd.quant.stats_mode.empty()) throw Error("-sm: report reads --stats; drop -sm");
  if (!cmd.plan.empty() && cmd.quant.quantized())
    throw Error("--qtype: the plan carries the bit width and every other option; drop --qtype with --plan");
  if (cmd.plan.empty() && !cmd.quant.quantized())
    throw Error("--qtype: required without --plan, the activation bit width the windows are drawn for");
  calib::check_writable(cmd.out, "--out");
  const auto g = cmd.model.load();
  const auto stats = calib::StatsFile::load(cmd.quant.stats);
  stats.require_model(g.model_hash, cmd.quant.stats);
  std::vector<report::SweepRow> sweep;
  for (const auto& s : cmd.sweeps) {
    auto rows = report::load_sweep(s, g.model_hash);
    if (rows.empty())
      std::cerr << "note: --sweep " << s << " holds no rows of " << cmd.model.model
                << " (another model's hash)\n";
    sweep.insert(sweep.end(), rows.begin(), rows.end());
  }
  std::optional<plan::QuantPlan> p;
  if (!cmd.plan.empty()) {
    p = plan::QuantPlan::load(cmd.plan);
    p->require_graph(g, cmd.plan);
  } else {
    p = plan::build_plan(g, stats, cmd.quant.plan_options(!cmd.model.no_fold_bn), cmd.quant.stats);
  }
  report::ReportInput in;
  in.title = cmd.model.model;
  in.stats_path = cmd.quant.stats;
  in.graph = &g;
  in.stats = &stats;
  in.options = p->options;
  in.plan = &*p;
  in.sweep = std::move(sweep);
  const auto points = report::point_reports(in);
  calib::write_file_atomically(cmd.out, report::render_html(in, points));
  std::cout << fmt::format("wrote {} ({} points, {} methods each{})\n", cmd.out, points.size(),
                           points.empty() ? 0 : points[0].methods.size(),
                           in.sweep.empty() ? "" : fmt::format(", {} sweep rows", in.sweep.size()));
  return 0;
}

}  // namespace

void add_report_command(CLI::App& app, SetAction set_action) {
  auto r = std::make_shared<ReportCmd>();
  auto* cmd = app.add_subcommand(
      "report",
      "a self-contained HTML page: every calibrator's window on each point's histogram, measured "
      "and analytical MSE, accuracy against bits (from sweep results), the plan's choices");
  r->model.add(*cmd);
  r->quant.add(*cmd);
  cmd->add_option("--plan", r->plan,
                  "the plan whose choices the page lists (its options replace the quantization flags)");
  cmd->add_option("--sweep", r->sweeps,
                  "`aciq sweep --json` results to chart (repeatable; rows of other models skipped)");
  cmd->add_option("--out", r->out, "the HTML file to write (atomically)")->required();
  cmd->footer(
      "Example:\n  aciq report --model models/resnet20.onnx --stats r20.json --qtype int4 --clip laplace "
      "--sweep sweep.json --out r20.html");
  cmd->callback([r, set_action] { set_action([r](const Invocation&) { return run_report(*r); }); });
}

}  // namespace aciq::cli
