// `aciq eval` (alias `inference-sim`, the seed's script), `aciq collect` and `aciq sweep`: flag
// parsing and the checks made before the first image is read; the passes are eval::evaluate and
// eval::collect_statistics.
#include <fmt/format.h>

#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>

#include "aciq/calib.hpp"
#include "aciq/onnx.hpp"
#include "aciq/plan.hpp"
#include "cli_common.hpp"
#include "commands.hpp"

namespace aciq::cli {

namespace {

namespace fs = std::filesystem;

struct EvalCmd {
  ModelOptions model;
  DataArgs data;
  QuantArgs quant;
  std::string plan;
  std::string json;
  std::string engine = "simulate";
  bool quiet = false;
  CLI::App* app = nullptr;
};

struct CollectCmd {
  ModelOptions model;
  DataArgs data;
  std::string stats;
  bool merge = false;
  bool channel_stats = false;
  std::string json;
  bool quiet = false;
  CLI::App* app = nullptr;
};

struct SweepCmd {
  std::vector<std::string> models;
  DataArgs data;
  QuantArgs quant;  // everything but the activation bits and clipping, which sweep takes as lists
  std::string backend = "fast";
  int threads = 2;
  std::string calib_split = "train";
  std::int64_t calib_limit = 2000;
  std::vector<std::string> qtypes{"int8", "int4", "int3", "int2"};
  std::vector<std::string> clips{"no", "laplace", "gaus", "mix"};
  std::string stats_dir = "out/stats";
  std::string markdown;
  std::string json;
  bool quiet = false;
  CLI::App* app = nullptr;
};

nlohmann::ordered_json data_record(const data::Dataset& ds, std::int64_t offset, std::int64_t count) {
  return {{"source", ds.describe()}, {"offset", offset}, {"count", count}};
}

nlohmann::ordered_json plan_options_record(const plan::PlanOptions& o) {
  return {{"qtype", "int" + std::to_string(o.policy.activation_bits)},
          {"clip", calib::clip_name(o.policy.clip)},
          {"semantics", std::string(plan::semantics_name(o.semantics))},
          {"wgran", std::string(plan::weight_granularity_name(o.weights))},
          {"wclip", std::string(plan::weight_clip_name(o.weight_clip))},
          {"bias_correction", std::string(plan::bias_correction_name(o.bias_correction))},
          {"bit_alloc", std::string(plan::bit_alloc_name(o.bit_alloc))},
          {"bits_budget", o.bits_budget},
          {"bit_widths", o.bit_widths},
          {"wbits", o.policy.weight_bits},
          {"fc_bits", o.policy.fc_bits},
          {"placement", std::string(policy::placement_name(o.policy.placement))},
          {"keep_8bit", o.policy.keep_8bit},
          {"seed_coefficients", o.policy.seed_coefficients},
          {"half", o.policy.half},
          {"fold_batchnorm", o.fold_batchnorm}};
}

// ---- Sharding over the ranks of an MPI job (a single process is one rank) ----------------------

eval::LoopOptions loop_options(dist::Group& group, bool quiet, const std::string& label) {
  eval::LoopOptions o;
  o.progress = !quiet && group.leader();
  o.label =
      group.size() > 1 ? label + fmt::format(" (rank 0 of {}, whole job estimated)", group.size()) : label;
  o.progress_scale = group.size();
  if (group.size() > 1) o.between_batches = [&group] { group.poll(); };
  return o;
}

int run_collect(const CollectCmd& c, const Invocation& inv) {
  CollectCmd cmd = c;
  cmd.model.resolve();
  calib::check_writable(cmd.stats, "--stats");
  if (!cmd.json.empty()) calib::check_writable(cmd.json, "--json");
  Context ctx(cmd.model.threads);
  auto g = cmd.model.load();
  const std::string model_hash = g.model_hash;
  std::optional<calib::StatsFile> old;
  if (cmd.merge && fs::exists(cmd.stats)) {
    old = calib::StatsFile::load(cmd.stats);
    old->require_model(g.model_hash, cmd.stats);
  } else if (cmd.merge) {
    std::cerr << "note: --merge: " << cmd.stats << " does not exist yet; writing it\n";
  }
  auto ds = cmd.data.open("train");
  const auto [begin, end] = cmd.data.range(*ds);
  eval::check_data_fits(g, *ds, std::min(cmd.data.batch, end - begin));
  if (old) {
    calib::StatsFile chunk;
    chunk.ranges.push_back({ds->describe(), begin, end});
    if (const auto o = old->overlap(chunk); !o.empty()) {
      throw Error("--merge " + cmd.stats + ": " + o +
                  " are already in it; collect another chunk (--offset/--limit) or another split");
    }
    if (!old->ranges_complete()) {
      std::cerr << "note: " << cmd.stats
                << " records no sample ranges (an older aciq wrote it): overlap not checked\n";
    }
  }
  if (cmd.model.no_fold_bn)
    std::cerr << "note: statistics of an unfolded graph only fit evals with --no-fold-bn\n";
  auto& group = *inv.group;
  const auto lo = eval::shard_loader(cmd.data.loader(), group, begin, end);
  eval::TopK fp32;
  std::optional<calib::StatsFile> part;
  if (lo.limit > 0) {
    part = eval::collect_statistics(std::move(g), cmd.model.model, cmd.model.executor_options(), ctx, ds, lo,
                                    loop_options(group, cmd.quiet, "collect"), &fp32, cmd.channel_stats);
  }
  fp32 = eval::combine(group, fp32);
  auto f = eval::combine(group, part ? &*part : nullptr, *ds, cmd.data.offset, cmd.data.limit);
  if (!group.leader()) return 0;
  if (old) {
    const bool had_channels = !old->points.empty() && !old->points[0].channels.empty();
    old->merge(f);
    f = std::move(*old);
    if (had_channels != cmd.channel_stats)
      std::cerr
          << "note: --merge: only one of the two collections has per-channel summaries; the merged file "
             "keeps none (collect both with or both without --channel-stats)\n";
  }
  // The result first: if writing fails now, the accuracy is not lost with it.
  std::cout << prec_line(fp32) << std::endl;
  f.save(cmd.stats);
  std::cout << fmt::format("wrote {} ({} points, {} samples)\n", cmd.stats, f.points.size(), f.samples)
            << std::flush;
  if (!cmd.json.empty()) {
    auto j = run_record(*cmd.app, inv);
    j["model"] = {{"path", cmd.model.model}, {"hash", model_hash}};
    j["data"] = data_record(*ds, begin, fp32.samples);
    j["stats"] = file_record(cmd.stats);
    j["stats_samples"] = f.samples;
    j["samples"] = fp32.samples;
    j["top1"] = fp32.top1();
    j["top5"] = fp32.top5();
    j["top1_correct"] = fp32.top1_correct;
    j["top5_correct"] = fp32.top5_correct;
    write_json(cmd.json, j);
  }
  return 0;
}

int run_eval(const EvalCmd& c, const Invocation& inv) {
  EvalCmd cmd = c;
  cmd.model.resolve();
  auto& q = cmd.quant;
  const std::string& sm = q.stats_mode;
  if (sm == "collect") {
    // The seed's `-sm collect`: a statistics pass, nothing evaluated.
    if (!cmd.plan.empty()) throw Error("-sm collect: collects statistics; --plan has no effect");
    if (q.quantized())
      std::cerr << "note: -sm collect: --qtype has no effect (statistics serve every bit width)\n";
    CollectCmd cc;
    cc.model = cmd.model;
    cc.data = cmd.data;
    cc.stats = q.stats.empty() ? seed_stats_path(cmd.model.model) : q.stats;
    if (q.stats.empty()) fs::create_directories(fs::path(cc.stats).parent_path());
    cc.json = cmd.json;
    cc.quiet = cmd.quiet;
    cc.app = cmd.app;
    return run_collect(cc, inv);
  }
  if ((sm == "use" || sm == "no") && !q.quantized())
    throw Error("-sm " + sm + ": needs --qtype intM, e.g. --qtype int4");
  if (sm == "use" && q.stats.empty()) {
    q.stats = seed_stats_path(cmd.model.model);
    if (!fs::exists(q.stats)) {
      throw Error("-sm use: no statistics at the seed's default location " + q.stats +
                  "; collect them first with -sm collect (or give --stats FILE)");
    }
  }
  if (sm == "no") {
    if (!q.stats.empty())
      throw Error("--stats: -sm no takes ranges from each batch; drop --stats or use -sm use");
    if (q.semantics != "seed" || q.wgran != "tensor") {
      throw Error("-sm no: dynamic ranges run the seed's arithmetic only (--semantics seed --wgran tensor)");
    }
    if (q.half)
      throw Error(
          "--half: needs the activated values' statistics (--stats); -sm no has only each batch's own");
    if (q.bits_budget > 0)
      throw Error("--bits-budget: needs --stats with histograms; -sm no has only each batch's own");
  }
  if (!cmd.json.empty()) calib::check_writable(cmd.json, "--json");
  const eval::Engine engine = eval::parse_engine(cmd.engine);
  check_engine_options(engine, cmd.plan, q, sm);

  Context ctx(cmd.model.threads);
  std::optional<plan::QuantPlan> quant_plan;
  std::optional<policy::PolicyOptions> dynamic;
  std::string label = "fp32";
  graph::Graph g;
  if (!cmd.plan.empty()) {
    if (q.quantized()) throw Error("--plan: the plan already fixes every quantization option; drop --qtype");
    if (const auto name = q.given_without_qtype(); !name.empty()) {
      throw Error("--plan: the plan already fixes every quantization option; drop " + name);
    }
    quant_plan = plan::QuantPlan::load(cmd.plan);
    if (cmd.model.no_fold_bn && quant_plan->options.fold_batchnorm)
      throw Error("--no-fold-bn: " + cmd.plan + " was made for the BN-folded graph");
    g = onnx_import::load_model(cmd.model.model, {.fold_batchnorm = quant_plan->options.fold_batchnorm});
    quant_plan->require_graph(g, cmd.plan);
    check_engine_plan(engine, *quant_plan, cmd.plan);
    label = "plan";
  } else {
    q.require_effective("eval");
    g = cmd.model.load();
    if (q.quantized()) {
      const auto options = q.plan_options(!cmd.model.no_fold_bn);  // option errors before any file is read
      label = q.qtype + "/" + q.clip;
      if (sm == "no") {
        dynamic = options.policy;
        (void)policy::quant_points(g, *dynamic);  // --keep-8bit names checked now
        label += "/dynamic";
      } else {
        if (q.stats.empty()) throw Error("--qtype: needs --stats FILE (run `aciq collect` first) or -sm no");
        const auto stats = calib::StatsFile::load(q.stats);
        quant_plan = plan::build_plan(g, stats, options, q.stats);
      }
    }
  }
  auto ds = cmd.data.open(cmd.data.default_split());
  const auto [begin, end] = cmd.data.range(*ds);
  eval::check_data_fits(g, *ds, std::min(cmd.data.batch, end - begin));
  const std::string model_hash = g.model_hash;
  auto& group = *inv.group;
  const auto lo = eval::shard_loader(cmd.data.loader(), group, begin, end);
  auto r = lo.limit == 0
               ? eval::PassResult{}
               : eval::evaluate(
                     std::move(g), cmd.model.executor_options(), ctx, ds, lo,
                     {.plan = quant_plan ? &*quant_plan : nullptr, .engine = engine, .dynamic = dynamic},
                     loop_options(group, cmd.quiet, label));
  r.topk = eval::combine(group, r.topk);
  if (!group.leader()) return 0;
  std::cout << fmt::format("{} samples, {:.1f} img/s\n", r.topk.samples,
                           r.topk.samples / std::max(r.seconds, 1e-9));
  std::cout << prec_line(r.topk) << std::endl;
  if (!cmd.json.empty()) {
    auto j = run_record(*cmd.app, inv);
    j["model"] = {{"path", cmd.model.model}, {"hash", model_hash}};
    j["data"] = data_record(*ds, begin, r.topk.samples);
    if (!cmd.plan.empty()) j["plan"] = file_record(cmd.plan);
    if (quant_plan) j["engine"] = cmd.engine;
    if (quant_plan && !quant_plan->stats_path.empty() && fs::exists(quant_plan->stats_path)) {
      j["stats"] = file_record(quant_plan->stats_path);
    }
    if (quant_plan) {
      j["quantization"] = plan_options_record(quant_plan->options);
      j["qtype"] = j["quantization"]["qtype"];
      j["clip"] = j["quantization"]["clip"];
    } else if (dynamic) {
      j["quantization"] = plan_options_record(q.plan_options(!cmd.model.no_fold_bn));
      j["quantization"]["ranges"] = "dynamic (per batch)";
      j["qtype"] = q.qtype;
      j["clip"] = j["quantization"]["clip"];
    } else {
      j["qtype"] = "fp32";
      j["clip"] = "no";
    }
    j["samples"] = r.topk.samples;
    j["top1"] = r.topk.top1();
    j["top5"] = r.topk.top5();
    j["top1_correct"] = r.topk.top1_correct;
    j["top5_correct"] = r.topk.top5_correct;
    j["seconds"] = r.seconds;
    write_json(cmd.json, j);
  }
  return 0;
}

int run_sweep(const SweepCmd& c, const Invocation& inv) {
  // Everything is checked before the first pass: bit widths, clipping methods, option combinations,
  // every model, the data and every output.
  for (const auto& qt : c.qtypes) (void)parse_qtype(qt);
  for (const auto& cl : c.clips) {
    try {
      (void)calib::parse_clip(cl);
    } catch (const Error& e) {
      throw Error("--clips '" + cl + "': " + e.what());
    }
  }
  auto options_for = [&c](const std::string& qt, const std::string& clip,
                          const std::vector<std::string>& keep) {
    QuantArgs qa = c.quant;
    qa.qtype = qt;
    qa.clip = clip;
    qa.keep_8bit = keep;
    return qa.plan_options(true);
  };
  for (const auto& qt : c.qtypes) {
    for (const auto& cl : c.clips) (void)options_for(qt, cl, {});
  }
  if (!c.markdown.empty()) calib::check_writable(c.markdown, "--markdown");
  if (!c.json.empty()) calib::check_writable(c.json, "--json");
  std::error_code ec;
  fs::create_directories(c.stats_dir, ec);
  if (ec || !fs::is_directory(c.stats_dir))
    throw Error("--stats-dir " + c.stats_dir + ": cannot create directory");

  struct Model {
    std::string path, name, stats_path;
    graph::Graph graph;
    std::vector<std::string> keep;
  };
  std::vector<Model> models;
  auto calib_ds = c.data.open_split(c.calib_split);
  auto eval_ds = c.data.open(c.data.default_split());
  const auto [begin, end] = c.data.range(*eval_ds);
  std::vector<std::string> all_names;
  for (const auto& path : c.models) {
    Model m;
    m.path = path;
    m.name = fs::path(path).stem().string();
    m.graph = onnx_import::load_model(path);
    eval::check_data_fits(m.graph, *calib_ds, c.data.batch);
    eval::check_data_fits(m.graph, *eval_ds, std::min(c.data.batch, end - begin));
    m.stats_path = (fs::path(c.stats_dir) / (m.name + ".stats.json")).string();
    calib::check_writable(m.stats_path, "--stats-dir");
    policy::PolicyOptions none;
    for (const auto& p : policy::quant_points(m.graph, none)) {
      for (const auto& name : {p.node, p.value}) {
        all_names.push_back(name);
        if (std::find(c.quant.keep_8bit.begin(), c.quant.keep_8bit.end(), name) != c.quant.keep_8bit.end() &&
            std::find(m.keep.begin(), m.keep.end(), name) == m.keep.end()) {
          m.keep.push_back(name);
        }
      }
    }
    models.push_back(std::move(m));
  }
  policy::require_known_names(c.quant.keep_8bit, all_names, "--keep-8bit",
                              "no quantized node or value of any --model has this name");

  Context ctx(c.threads);
  const runtime::ExecutorOptions xo{.backend = c.backend == "reference" ? runtime::Backend::kReference
                                                                        : runtime::Backend::kFast};
  std::string md = "| model | activations | clipping | Prec@1 | Prec@5 |\n|---|---|---|---|---|\n";
  auto rows = nlohmann::ordered_json::array();
  auto& group = *inv.group;
  const auto lo = eval::shard_loader(c.data.loader(), group, begin, end);
  auto calib_lo = c.data.loader();
  calib_lo.offset = 0;
  calib_lo.limit = c.calib_limit;
  const std::int64_t calib_end =
      c.calib_limit > 0 ? std::min(c.calib_limit, calib_ds->size()) : calib_ds->size();
  calib_lo = eval::shard_loader(calib_lo, group, 0, calib_end);
  // One dataset pass on this rank's shard, counts summed over the ranks.
  auto evaluate = [&](const graph::Graph& g, const plan::QuantPlan* p, const std::string& label) {
    eval::TopK mine;
    if (lo.limit > 0) {
      mine = eval::evaluate(g, xo, ctx, eval_ds, lo, {.plan = p, .dynamic = std::nullopt},
                            loop_options(group, c.quiet, label))
                 .topk;
    }
    return eval::combine(group, mine);
  };
  for (auto& m : models) {
    std::optional<calib::StatsFile> part;
    if (calib_lo.limit > 0) {
      part = eval::collect_statistics(m.graph, m.path, xo, ctx, calib_ds, calib_lo,
                                      loop_options(group, c.quiet, "collect"), nullptr);
    }
    const auto stats = eval::combine(group, part ? &*part : nullptr, *calib_ds, 0, c.calib_limit);
    if (group.leader()) stats.save(m.stats_path);
    auto row = [&](const std::string& act, const std::string& clip, const eval::TopK& r) {
      const std::string line =
          fmt::format("| {} | {} | {} | {:.3f} | {:.3f} |\n", m.name, act, clip, r.top1(), r.top5());
      md += line;
      if (group.leader()) std::cout << line << std::flush;
      rows.push_back({{"model", m.path},
                      {"model_hash", m.graph.model_hash},
                      {"activations", act},
                      {"clip", clip},
                      {"samples", r.samples},
                      {"top1", r.top1()},
                      {"top5", r.top5()},
                      {"top1_correct", r.top1_correct},
                      {"top5_correct", r.top5_correct}});
    };
    row("fp32", "-", evaluate(m.graph, nullptr, "fp32"));
    for (const auto& qt : c.qtypes) {
      for (const auto& clip : c.clips) {
        const auto quant_plan = plan::build_plan(m.graph, stats, options_for(qt, clip, m.keep), m.stats_path);
        row(qt, clip, evaluate(m.graph, &quant_plan, qt + "/" + clip));
      }
    }
  }
  if (!group.leader()) return 0;
  if (!c.markdown.empty()) calib::write_file_atomically(c.markdown, md);
  if (!c.json.empty()) {
    auto j = run_record(*c.app, inv);
    j["data"] = data_record(*eval_ds, begin, rows.empty() ? 0 : rows[0]["samples"].get<std::int64_t>());
    j["calibration"] = {{"source", calib_ds->describe()}, {"limit", c.calib_limit}};
    j["rows"] = rows;
    write_json(c.json, j);
  }
  return 0;
}

}  // namespace

void add_eval_commands(CLI::App& app, SetAction set_action) {
  auto e = std::make_shared<EvalCmd>();
  auto* eval_cmd =
      app.add_subcommand("eval", "evaluate top-1/top-5, in fp32 or with simulated intM activations");
  eval_cmd->alias("inference-sim");
  e->app = eval_cmd;
  e->model.add(*eval_cmd);
  e->data.add(*eval_cmd, "default: test, or val for imagenet");
  e->quant.add(*eval_cmd);
  eval_cmd->add_option("--plan", e->plan,
                       "run this quantization plan (from `aciq calibrate`) instead of --qtype/--stats");
  add_engine_option(*eval_cmd, e->engine);
  eval_cmd->add_option("--json", e->json, "also write the result and the full configuration as JSON");
  eval_cmd->add_flag("-q,--quiet", e->quiet, "no progress output");
  eval_cmd->footer(
      "Examples:\n  aciq eval --model models/resnet20.onnx --qtype int4 --clip laplace --stats "
      "out/resnet20.stats.json\n"
      "  aciq inference-sim -a resnet20 -b 512 --qtype int4 -sm use -th laplace   (the seed's spelling)");
  eval_cmd->callback(
      [e, set_action] { set_action([e](const Invocation& inv) { return run_eval(*e, inv); }); });

  auto c = std::make_shared<CollectCmd>();
  auto* col = app.add_subcommand("collect", "collect per-sample activation statistics into a stats file");
  c->app = col;
  c->model.add(*col);
  c->data.add(*col, "default: train");
  col->add_option("--stats", c->stats, "statistics file to write (atomically; required)")->required();
  col->add_flag("--merge", c->merge,
                "add to an existing statistics file of the same model (sample ranges must not overlap)");
  col->add_flag("--channel-stats", c->channel_stats,
                "also summarize every activation per channel (min/max/mean/std/b; about 3 KB of memory per "
                "channel): --bias-correction deploy uses the per-channel means");
  col->add_option("--json", c->json, "also write the result and the full configuration as JSON");
  col->add_flag("-q,--quiet", c->quiet, "no progress output");
  col->footer(
      "Example:\n  aciq collect --model models/resnet20.onnx --limit 2000 --stats out/resnet20.stats.json\n"
      "  aciq collect --model models/resnet20.onnx --offset 2000 --limit 2000 --merge --stats "
      "out/resnet20.stats.json");
  col->callback([c, set_action] { set_action([c](const Invocation& inv) { return run_collect(*c, inv); }); });

  auto s = std::make_shared<SweepCmd>();
  auto* sw = app.add_subcommand(
      "sweep", "collect statistics, then evaluate fp32 and every bits x clipping configuration");
  s->app = sw;
  sw->add_option("--model", s->models, "ONNX models (required)")->required();
  sw->add_option("--backend", s->backend, "kernels: fast (oneDNN) or reference (scalar oracle)")
      ->check(CLI::IsMember({"fast", "reference"}))
      ->capture_default_str();
  sw->add_option("--threads", s->threads, "compute threads")->check(int_in(1, 256))->capture_default_str();
  s->data.add(*sw, "evaluation split, default: test");
  s->quant.add(*sw, false);
  sw->add_option("--calib-split", s->calib_split, "split statistics are collected on")->capture_default_str();
  sw->add_option("--calib-limit", s->calib_limit, "samples statistics are collected on (0 = all)")
      ->check(int_at_least(0))
      ->capture_default_str();
  sw->add_option("--qtypes", s->qtypes, "activation bit widths")->delimiter(',')->capture_default_str();
  sw->add_option("--clips", s->clips, "clipping methods")->delimiter(',')->capture_default_str();
  sw->add_option("--stats-dir", s->stats_dir, "where statistics files go (created)")->capture_default_str();
  sw->add_option("--markdown", s->markdown, "also write the table as Markdown");
  sw->add_option("--json", s->json, "also write the table and the full configuration as JSON");
  sw->add_flag("-q,--quiet", s->quiet, "no progress output");
  sw->footer(
      "Example:\n  aciq sweep --model models/resnet20.onnx --model models/vgg_bn.onnx --qtypes int4,int3 "
      "--markdown out/sweep.md");
  sw->callback([s, set_action] { set_action([s](const Invocation& inv) { return run_sweep(*s, inv); }); });
}

}  // namespace aciq::cli
