// `aciq eval`, `aciq collect` and `aciq sweep`: dataset passes in fp32, with statistics, or fake-quantized.
#include <fmt/format.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "aciq/calib.hpp"
#include "aciq/onnx.hpp"
#include "aciq/plan.hpp"
#include "cli_common.hpp"
#include "commands.hpp"

namespace aciq::cli {

namespace {

struct EvalCmd {
  ModelOptions model;
  DataArgs data;
  QuantArgs quant;
  std::string plan;
  std::string json;
  bool quiet = false;
};

struct CollectCmd {
  ModelOptions model;
  DataArgs data;
  std::string stats;
  bool merge = false;
  bool quiet = false;
};

struct SweepCmd {
  std::vector<std::string> models;
  DataArgs data;
  std::string calib_split = "train";
  std::int64_t calib_limit = 2000;
  std::vector<std::string> qtypes{"int8", "int4", "int3", "int2"};
  std::vector<std::string> clips{"no", "laplace", "gaus", "mix"};
  std::string stats_dir = "out/stats";
  std::string markdown;
  int threads = 2;
  bool seed_coefficients = false;
  bool quiet = false;
};

struct EvalOutcome {
  eval::TopK topk;
  double seconds = 0;
};

// One dataset pass: fp32 when `quant_plan` is null, otherwise the plan's simulation.
EvalOutcome evaluate(graph::Graph g, const runtime::ExecutorOptions& xo, Context& ctx, const std::shared_ptr<const data::Dataset>& ds,
                     const data::LoaderOptions& lo, const plan::QuantPlan* quant_plan, const std::string& label, bool progress) {
  std::unique_ptr<eval::FakeQuantObserver> observer;
  std::vector<std::string> observed;
  if (quant_plan) {
    auto sim = plan::apply_plan(g, *quant_plan);
    observed = std::move(sim.points);
    observer = std::make_unique<eval::FakeQuantObserver>(std::move(sim.quantizers), ctx);
  }
  runtime::Executor exec(std::move(g), ctx, xo);
  exec.set_observed(observed);
  data::BatchLoader loader(ds, lo);
  const auto t0 = std::chrono::steady_clock::now();
  EvalOutcome out;
  out.topk = eval::run_dataset(exec, loader, observer.get(), {.progress = progress, .label = label});
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return out;
}

calib::StatsFile collect(graph::Graph g, const std::string& model_path, const runtime::ExecutorOptions& xo, Context& ctx,
                         const std::shared_ptr<const data::Dataset>& ds, const data::LoaderOptions& lo, bool progress, eval::TopK* fp32) {
  const auto points = policy::collection_points(g);
  calib::StatsFile f;
  f.model_hash = g.model_hash;
  f.model_path = model_path;
  runtime::Executor exec(std::move(g), ctx, xo);
  exec.set_observed(points);
  eval::CollectObserver observer(points, ctx);
  data::BatchLoader loader(ds, lo);
  const auto topk = eval::run_dataset(exec, loader, &observer, {.progress = progress, .label = "collect"});
  if (fp32) *fp32 = topk;
  f.data_source = ds->describe() + (lo.limit ? fmt::format(" (first {})", lo.limit) : "");
  f.samples = topk.samples;
  f.points = observer.accumulator().points();
  return f;
}

int run_eval(const EvalCmd& c) {
  Context ctx(c.model.threads);
  std::optional<plan::QuantPlan> quant_plan;
  std::string label = "fp32";
  graph::Graph g;
  if (!c.plan.empty()) {
    if (c.quant.quantized() || !c.quant.stats.empty())
      throw Error("--plan: the plan already fixes every quantization option; drop --qtype/--stats");
    quant_plan = plan::QuantPlan::load(c.plan);
    if (c.model.no_fold_bn && quant_plan->options.fold_batchnorm)
      throw Error("--no-fold-bn: " + c.plan + " was made for the BN-folded graph");
    g = onnx_import::load_model(c.model.model, {.fold_batchnorm = quant_plan->options.fold_batchnorm});
    quant_plan->require_graph(g, c.plan);
    label = "plan";
  } else {
    g = c.model.load();
    if (c.quant.quantized()) {
      const auto options = c.quant.plan_options(!c.model.no_fold_bn);  // option errors before any file is read
      if (c.quant.stats.empty()) throw Error("--qtype needs --stats FILE (run `aciq collect` first)");
      const auto stats = calib::StatsFile::load(c.quant.stats);
      quant_plan = plan::build_plan(g, stats, options, c.quant.stats);
      label = c.quant.qtype + "/" + c.quant.clip;
    } else if (!c.quant.stats.empty()) {
      throw Error("--stats given without --qtype: nothing would use it");
    }
  }
  auto ds = c.data.open(default_split(c.data.data));
  const auto r = evaluate(std::move(g), {.backend = c.model.backend_enum()}, ctx, ds, c.data.loader(),
                          quant_plan ? &*quant_plan : nullptr, label, !c.quiet);
  std::cout << fmt::format("{} samples, {:.1f} img/s\n", r.topk.samples, r.topk.samples / std::max(r.seconds, 1e-9));
  std::cout << prec_line(r.topk) << std::endl;
  if (!c.json.empty()) {
    nlohmann::ordered_json j;
    j["model"] = c.model.model;
    j["data"] = ds->describe();
    j["samples"] = r.topk.samples;
    if (quant_plan) {
      const auto& o = quant_plan->options;
      j["qtype"] = "int" + std::to_string(o.policy.activation_bits);
      j["clip"] = std::string(quant::clip_method_name(o.policy.clip));
      j["plan"] = c.plan;
      j["stats"] = quant_plan->stats_path;
      j["semantics"] = std::string(plan::semantics_name(o.semantics));
      j["wgran"] = std::string(plan::weight_granularity_name(o.weights));
      j["wbits"] = o.policy.weight_bits;
      j["fc_bits"] = o.policy.fc_bits;
      j["placement"] = std::string(policy::placement_name(o.policy.placement));
      j["keep_8bit"] = o.policy.keep_8bit;
      j["seed_coefficients"] = o.policy.seed_coefficients;
    } else {
      j["qtype"] = "fp32";
      j["clip"] = "no";
    }
    j["top1"] = r.topk.top1();
    j["top5"] = r.topk.top5();
    j["top1_correct"] = r.topk.top1_correct;
    j["top5_correct"] = r.topk.top5_correct;
    j["seconds"] = r.seconds;
    calib::write_file_atomically(c.json, j.dump(1) + "\n");
  }
  return 0;
}

int run_collect(const CollectCmd& c) {
  Context ctx(c.model.threads);
  auto g = c.model.load();
  if (c.model.no_fold_bn) std::cerr << "note: statistics of an unfolded graph only fit evals with --no-fold-bn\n";
  auto ds = c.data.open("train");
  eval::TopK fp32;
  auto f = collect(std::move(g), c.model.model, {.backend = c.model.backend_enum()}, ctx, ds, c.data.loader(), !c.quiet, &fp32);
  if (c.merge && std::filesystem::exists(c.stats)) {
    auto old = calib::StatsFile::load(c.stats);
    old.require_model(f.model_hash, c.stats);
    old.merge(f);
    f = std::move(old);
  }
  f.save(c.stats);
  std::cout << fmt::format("wrote {} ({} points, {} samples)\n", c.stats, f.points.size(), f.samples);
  std::cout << prec_line(fp32) << std::endl;
  return 0;
}

int run_sweep(const SweepCmd& c) {
  Context ctx(c.threads);
  std::filesystem::create_directories(c.stats_dir);
  std::string md = "| model | activations | clipping | Prec@1 | Prec@5 |\n|---|---|---|---|---|\n";
  for (const auto& model_path : c.models) {
    const std::string name = std::filesystem::path(model_path).stem().string();
    auto g = onnx_import::load_model(model_path);
    auto calib_ds = c.data.open_split(c.calib_split);
    auto lo = c.data.loader();
    auto calib_lo = lo;
    calib_lo.limit = c.calib_limit;
    const std::string stats_path = (std::filesystem::path(c.stats_dir) / (name + ".stats.json")).string();
    auto stats = collect(g, model_path, {}, ctx, calib_ds, calib_lo, !c.quiet, nullptr);
    stats.save(stats_path);
    auto eval_ds = c.data.open(c.data.split.empty() ? "test" : c.data.split);
    auto row = [&](const std::string& act, const std::string& clip, const eval::TopK& r) {
      const std::string line = fmt::format("| {} | {} | {} | {:.3f} | {:.3f} |\n", name, act, clip, r.top1(), r.top5());
      md += line;
      std::cout << line << std::flush;
    };
    row("fp32", "-", evaluate(g, {}, ctx, eval_ds, lo, nullptr, "fp32", !c.quiet).topk);
    for (const auto& q : c.qtypes) {
      for (const auto& clip : c.clips) {
        QuantArgs qa;
        qa.qtype = q;
        qa.clip = clip;
        qa.seed_coefficients = c.seed_coefficients;
        const auto quant_plan = plan::build_plan(g, stats, qa.plan_options(true), stats_path);
        row(q, clip, evaluate(g, {}, ctx, eval_ds, lo, &quant_plan, q + "/" + clip, !c.quiet).topk);
      }
    }
  }
  if (!c.markdown.empty()) calib::write_file_atomically(c.markdown, md);
  return 0;
}

}  // namespace

std::string default_split(const std::string& data_spec) {
  return data_spec.rfind("imagenet", 0) == 0 ? "val" : "test";
}

void add_eval_commands(CLI::App& app, SetAction set_action) {
  auto e = std::make_shared<EvalCmd>();
  auto* eval_cmd = app.add_subcommand("eval", "evaluate top-1/top-5, in fp32 or with simulated intM activations");
  e->model.add(*eval_cmd);
  e->data.add(*eval_cmd, "default: test, or val for imagenet");
  e->quant.add(*eval_cmd);
  eval_cmd->add_option("--plan", e->plan, "run this quantization plan (from `aciq calibrate`) instead of --qtype/--stats");
  eval_cmd->add_option("--json", e->json, "also write the result as JSON");
  eval_cmd->add_flag("-q,--quiet", e->quiet, "no progress bar");
  eval_cmd->callback([e, set_action] { set_action([e] { return run_eval(*e); }); });

  auto c = std::make_shared<CollectCmd>();
  auto* col = app.add_subcommand("collect", "collect per-sample activation statistics into a stats file");
  c->model.add(*col);
  c->data.add(*col, "default: train");
  col->add_option("--stats", c->stats, "statistics file to write (atomically)")->required();
  col->add_flag("--merge", c->merge, "add to an existing statistics file of the same model");
  col->add_flag("-q,--quiet", c->quiet, "no progress bar");
  col->callback([c, set_action] { set_action([c] { return run_collect(*c); }); });

  auto s = std::make_shared<SweepCmd>();
  auto* sw = app.add_subcommand("sweep", "collect statistics, then evaluate fp32 and every bits x clipping configuration");
  sw->add_option("--model", s->models, "ONNX models")->required();
  s->data.add(*sw, "evaluation split, default: test");
  sw->add_option("--calib-split", s->calib_split, "split statistics are collected on")->capture_default_str();
  sw->add_option("--calib-limit", s->calib_limit, "samples statistics are collected on")->capture_default_str();
  sw->add_option("--qtypes", s->qtypes, "activation bit widths")->delimiter(',')->capture_default_str();
  sw->add_option("--clips", s->clips, "clipping methods")->delimiter(',')->capture_default_str();
  sw->add_option("--stats-dir", s->stats_dir, "where statistics files go")->capture_default_str();
  sw->add_option("--markdown", s->markdown, "also write the table as Markdown");
  sw->add_option("--threads", s->threads, "compute threads")->capture_default_str();
  sw->add_flag("--seed-coefficients", s->seed_coefficients, "use the seed's 2-decimal alpha tables");
  sw->add_flag("-q,--quiet", s->quiet, "no progress bars");
  sw->callback([s, set_action] { set_action([s] { return run_sweep(*s); }); });
}

}  // namespace aciq::cli
