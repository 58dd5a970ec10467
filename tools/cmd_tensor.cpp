// The tensor-file commands: `aciq run` (a model over .npy inputs, outputs to .npy) and `aciq compare`.
#include <fmt/format.h>

#include <filesystem>
#include <iostream>
#include <limits>
#include <nlohmann/json.hpp>

#include "aciq/calib.hpp"
#include "aciq/onnx.hpp"
#include "aciq/plan.hpp"
#include "cli_common.hpp"
#include "commands.hpp"

namespace aciq::cli {

namespace {

namespace fs = std::filesystem;

struct RunCmd {
  CLI::App* app = nullptr;
  ModelOptions model;
  QuantArgs quant;
  std::string plan, input, output, output_dir, json;
  std::string engine = "simulate";
  std::int64_t batch = 16;
  bool quiet = false;
};

// A file name for a graph output: characters outside [A-Za-z0-9._-] become '_'.
std::string file_name_for(const std::string& value) {
  std::string s = value.empty() ? std::string("output") : value;
  for (char& ch : s) {
    if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '.' && ch != '_' && ch != '-') ch = '_';
  }
  return s + ".npy";
}

int run_run(const RunCmd& c, const Invocation& inv) {
  RunCmd cmd = c;
  cmd.model.resolve();
  auto& q = cmd.quant;
  if (cmd.output.empty() == cmd.output_dir.empty())
    throw Error("run: give exactly one of --output FILE and --output-dir DIR");
  if (!q.stats_mode.empty()) throw Error("-sm: not available for run; give --stats FILE with --qtype");
  if (!cmd.json.empty()) calib::check_writable(cmd.json, "--json");
  const eval::Engine engine = eval::parse_engine(cmd.engine);
  check_engine_options(engine, cmd.plan, q, "");
  const auto input = data::NpyArray::open(cmd.input);  // header errors before the model is read
  Context ctx(cmd.model.threads);
  std::optional<plan::QuantPlan> quant_plan;
  graph::Graph g;
  if (!cmd.plan.empty()) {
    if (q.quantized() || !q.given_without_qtype().empty())
      throw Error(
          "--plan: the plan already fixes every quantization option; drop the other quantization options");
    quant_plan = plan::QuantPlan::load(cmd.plan);
    g = onnx_import::load_model(cmd.model.model, {.fold_batchnorm = quant_plan->options.fold_batchnorm});
    quant_plan->require_graph(g, cmd.plan);
    check_engine_plan(engine, *quant_plan, cmd.plan);
  } else {
    q.require_effective("run");
    g = cmd.model.load();
    if (q.quantized()) {
      const auto options = q.plan_options(!cmd.model.no_fold_bn);
      if (q.stats.empty()) throw Error("--qtype: needs --stats FILE (run `aciq collect` first)");
      quant_plan = plan::build_plan(g, calib::StatsFile::load(q.stats), options, q.stats);
    }
  }
  std::vector<std::string> outputs(g.outputs.size());
  if (!cmd.output.empty()) {
    outputs[0] = cmd.output;  // --output: the first graph output
  } else {
    std::error_code ec;
    fs::create_directories(cmd.output_dir, ec);
    if (!fs::is_directory(cmd.output_dir))
      throw Error(cmd.output_dir + ": --output-dir: cannot create the directory");
    for (std::size_t k = 0; k < g.outputs.size(); ++k)
      outputs[k] = (fs::path(cmd.output_dir) / file_name_for(g.outputs[k])).string();
  }
  const std::string model_hash = g.model_hash;
  eval::LoopOptions loop;
  loop.progress = !cmd.quiet;
  loop.label = !quant_plan ? "run (fp32)" : engine == eval::Engine::kInt8 ? "run (int8)" : "run (quantized)";
  const auto r =
      eval::run_tensors(std::move(g), cmd.model.executor_options(), ctx, input, cmd.batch,
                        {.plan = quant_plan ? &*quant_plan : nullptr, .engine = engine}, outputs, loop);
  std::cout << fmt::format("{} samples, {:.1f} img/s", r.samples, r.samples / std::max(r.seconds, 1e-9));
  for (const auto& w : r.written) std::cout << "\n  wrote " << w;
  std::cout << std::endl;
  if (!cmd.json.empty()) {
    auto j = run_record(*cmd.app, inv);
    j["model"] = {{"path", cmd.model.model}, {"hash", model_hash}};
    j["input"] = file_record(cmd.input);
    if (!cmd.plan.empty()) j["plan"] = file_record(cmd.plan);
    j["outputs"] = r.written;
    j["samples"] = r.samples;
    j["seconds"] = r.seconds;
    calib::write_file_atomically(cmd.json, j.dump(1) + "\n");
  }
  return 0;
}

struct CompareCmd {
  std::string ref, out;
  std::int64_t axis = -1;
  bool json = false;
};

int run_compare(const CompareCmd& cmd) {
  const auto a = data::NpyArray::open(cmd.ref);
  const auto b = data::NpyArray::open(cmd.out);
  if (a.shape() != b.shape()) {
    throw Error(cmd.out + ": shape " + shape_str(b.shape()) + " differs from " + cmd.ref + "'s " +
                shape_str(a.shape()));
  }
  const std::int64_t n = a.shape().empty() ? 0 : a.shape()[0];
  const auto c = eval::compare_tensors(a.rows(0, n), b.rows(0, n), cmd.axis);
  const bool exact = std::isinf(c.sqnr_db);
  if (cmd.json) {
    nlohmann::ordered_json j;
    j["reference"] = cmd.ref;
    j["output"] = cmd.out;
    j["shape"] = a.shape();
    j["elements"] = c.elements;
    j["identical"] = c.identical;
    j["max_abs_diff"] = c.max_abs;
    j["mean_abs_diff"] = c.mean_abs;
    j["max_abs_reference"] = c.max_abs_ref;
    j["max_rel_diff"] = c.max_abs_ref > 0 ? c.max_abs / c.max_abs_ref : 0.0;
    j["sqnr_db"] = exact ? nlohmann::ordered_json("inf") : nlohmann::ordered_json(c.sqnr_db);
    j["cosine"] = c.cosine;
    j["axis"] = cmd.axis;
    j["argmax_agree"] = c.argmax_agree;
    j["argmax_total"] = c.argmax_total;
    std::cout << j.dump(1) << "\n";
    return 0;
  }
  std::cout << fmt::format(
                   "elements {}  identical {} ({:.2f}%)  max abs diff {:.6g}  mean abs diff {:.6g}  "
                   "(max |ref| {:.6g})\n",
                   c.elements, c.identical, c.elements ? 100.0 * c.identical / c.elements : 100.0, c.max_abs,
                   c.mean_abs, c.max_abs_ref)
            << fmt::format("SQNR {} dB  cosine {:.6f}  argmax agreement {}/{} ({:.2f}%) along axis {}\n",
                           exact ? std::string("inf") : fmt::format("{:.2f}", c.sqnr_db), c.cosine,
                           c.argmax_agree, c.argmax_total,
                           c.argmax_total ? 100.0 * c.argmax_agree / c.argmax_total : 100.0, cmd.axis);
  return 0;
}

}  // namespace

void add_tensor_commands(CLI::App& app, SetAction set_action) {
  auto r = std::make_shared<RunCmd>();
  auto* run = app.add_subcommand("run", "run a model over a .npy input tensor and write its outputs as .npy");
  r->app = run;
  r->model.add(*run);
  r->quant.add(*run);
  run->add_option("--plan", r->plan, "simulate this quantization plan (instead of --qtype ...)");
  run->add_option("--input", r->input,
                  "float32 .npy of the model's input shape, samples along the first axis")
      ->required();
  run->add_option("--output", r->output, "write the first graph output here (.npy, stacked along N)");
  run->add_option("--output-dir", r->output_dir, "write every graph output as DIR/<output name>.npy");
  run->add_option("-b,--batch", r->batch, "samples per batch")->capture_default_str()->check(int_at_least(1));
  add_engine_option(*run, r->engine);
  run->add_option("--json", r->json, "also write a JSON record of the run");
  run->add_flag("-q,--quiet", r->quiet, "no progress output");
  run->footer(
      "Example:\n  aciq run --model models/resnet20.onnx --input x.npy --output y.npy\n"
      "  aciq run --model models/resnet20.onnx --qtype int4 --clip laplace --stats s.json --input x.npy "
      "--output y4.npy");
  run->callback([r, set_action] { set_action([r](const Invocation& inv) { return run_run(*r, inv); }); });

  auto c = std::make_shared<CompareCmd>();
  auto* cmp = app.add_subcommand("compare", "error metrics of an output .npy against a reference .npy");
  cmp->add_option("REF", c->ref, "reference tensor (.npy), e.g. the fp32 output")->required();
  cmp->add_option("OUT", c->out, "tensor to judge (.npy) of the same shape")->required();
  cmp->add_option("--axis", c->axis, "axis of the argmax agreement (classes)")->capture_default_str();
  cmp->add_flag("--json", c->json, "print JSON instead of text");
  cmp->footer("Example:\n  aciq compare y.npy y4.npy --axis -1");
  cmp->callback([c, set_action] { set_action([c](const Invocation&) { return run_compare(*c); }); });
}

}  // namespace aciq::cli
