// `aciq calibrate` (statistics + options -> quantization plan) and `aciq export` (plan -> other runtimes).
#include <fmt/format.h>

#include <iostream>

#include "aciq/calib.hpp"
#include "aciq/export.hpp"
#include "aciq/onnx.hpp"
#include "aciq/plan.hpp"
#include "cli_common.hpp"
#include "commands.hpp"

namespace aciq::cli {

namespace {

struct CalibrateCmd {
  ModelOptions model;
  QuantArgs quant;
  std::string plan;
};

struct ExportCmd {
  std::string model;
  std::string plan;
  std::string format = "qdq";
  std::string out;
};

int run_calibrate(const CalibrateCmd& cmd) {
  CalibrateCmd c = cmd;
  c.model.resolve();
  if (!c.quant.quantized())
    throw Error("--qtype: required, the activation bit width of the plan, e.g. --qtype int8");
  if (!c.quant.stats_mode.empty()) throw Error("-sm: calibrate reads --stats; drop -sm");
  if (c.quant.stats.empty()) throw Error("--stats: required (run `aciq collect` first)");
  calib::check_writable(c.plan, "--plan");
  const auto options = c.quant.plan_options(!c.model.no_fold_bn);
  const auto g = c.model.load();
  const auto stats = calib::StatsFile::load(c.quant.stats);
  const auto p = plan::build_plan(g, stats, options, c.quant.stats);
  p.save(c.plan);
  std::size_t acts = 0, weights = 0, biases = 0;
  for (const auto& t : p.tensors) {
    acts += t.kind == plan::TensorKind::kActivation;
    weights += t.kind == plan::TensorKind::kWeight;
    biases += t.kind == plan::TensorKind::kBias;
  }
  std::cout << fmt::format("wrote {} ({} semantics: {} activations, {} weights, {} biases)\n", c.plan,
                           plan::semantics_name(p.semantics()), acts, weights, biases);
  return 0;
}

int run_export(const ExportCmd& c) {
  const auto& format = exporter::find_format(c.format);
  calib::check_writable(c.out, "--out");
  const auto p = plan::QuantPlan::load(c.plan);
  const auto g = onnx_import::load_model(c.model, {.fold_batchnorm = p.options.fold_batchnorm});
  p.require_graph(g, c.plan);
  const std::string bytes = format.write(g, p);
  calib::write_file_atomically(c.out, bytes);
  std::cout << fmt::format("wrote {} ({}, {} bytes)\n", c.out, format.name, bytes.size());
  return 0;
}

}  // namespace

void add_plan_commands(CLI::App& app, SetAction set_action) {
  auto c = std::make_shared<CalibrateCmd>();
  auto* cal = app.add_subcommand("calibrate",
                                 "build a quantization plan from statistics and the quantization options");
  c->model.add(*cal);
  c->quant.add(*cal);
  cal->add_option("--plan", c->plan, "plan file to write (JSON, atomically; required)")->required();
  cal->footer(
      "Example:\n  aciq calibrate --model models/resnet20.onnx --stats r20.json --qtype int8 --semantics "
      "onnx --wgran "
      "channel --placement deploy --plan r20.plan.json");
  cal->callback([c, set_action] { set_action([c](const Invocation&) { return run_calibrate(*c); }); });

  auto e = std::make_shared<ExportCmd>();
  std::string names, help;
  for (const auto& f : exporter::formats()) {
    names += (names.empty() ? "" : "|") + std::string(f.name);
    help += fmt::format("\n  {}: {}", f.name, f.description);
  }
  auto* ex = app.add_subcommand("export", "write a plan for another runtime: " + names + help);
  ex->add_option("--model", e->model, "the ONNX model the plan was made for")->required();
  ex->add_option("--plan", e->plan, "plan file from `aciq calibrate`")->required();
  std::vector<std::string> choices;
  for (const auto& f : exporter::formats()) choices.emplace_back(f.name);
  ex->add_option("--format", e->format, names)->check(CLI::IsMember(choices))->capture_default_str();
  ex->add_option("--out", e->out, "output file (written atomically)")->required();
  ex->footer(
      "Example:\n  aciq export --model models/resnet20.onnx --plan r20.plan.json --format qdq --out "
      "r20.qdq.onnx");
  ex->callback([e, set_action] { set_action([e](const Invocation&) { return run_export(*e); }); });
}

}  // namespace aciq::cli
