// `aciq bench`: throughput of fp32, simulated-quantized or statistics-collecting inference on synthetic
// input.
#include <fmt/format.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <iostream>
#include <optional>
#include <random>

#include "aciq/calib.hpp"
#include "aciq/eval.hpp"
#include "aciq/export.hpp"
#include "aciq/onnx.hpp"
#include "aciq/plan.hpp"
#include "cli_common.hpp"
#include "commands.hpp"

namespace aciq::cli {

namespace {

struct BenchCmd {
  ModelOptions model;
  QuantArgs quant;
  std::int64_t batch = 16;
  int iters = 20;
  int warmup = 2;
  bool collect = false;
  bool quiet = false;
  bool profile = false;
  std::string json;
  std::string plan;
  std::string engine = "simulate";
  CLI::App* app = nullptr;
};

// "Conv x12, LayerNormalization x3" for the steps on the reference kernels (the fast backend's
// fallbacks), in order of first appearance.
std::string reference_summary(const std::vector<runtime::Executor::StepReport>& steps, std::int64_t& count) {
  std::vector<std::pair<std::string, int>> by_op;
  count = 0;
  for (const auto& s : steps) {
    if (s.kernel != "reference") continue;
    ++count;
    auto it = std::find_if(by_op.begin(), by_op.end(), [&](const auto& e) { return e.first == s.op_type; });
    if (it == by_op.end()) {
      by_op.emplace_back(s.op_type, 1);
    } else {
      ++it->second;
    }
  }
  std::string text;
  for (const auto& [op, n] : by_op) text += (text.empty() ? "" : ", ") + op + " x" + std::to_string(n);
  return text;
}

Tensor synthetic_input(const graph::ValueInfo& in, std::int64_t batch, const std::string& model) {
  Shape s = in.shape;
  if (s.empty()) throw Error(model + ": input '" + in.name + "' has no declared shape; bench needs one");
  s[0] = batch;
  for (std::size_t i = 1; i < s.size(); ++i) {
    if (s[i] < 0)
      throw Error(model + ": input '" + in.name + "' has a dynamic dimension " + std::to_string(i));
  }
  Tensor t(DType::kFloat32, s);
  std::mt19937 rng(1234);  // fixed: runs are comparable
  std::normal_distribution<float> dist(0.0f, 1.0f);
  for (float& v : t.f32()) v = dist(rng);
  return t;
}

int run_bench(const BenchCmd& c, const Invocation& inv) {
  BenchCmd cmd = c;
  cmd.model.resolve();
  const auto& q = cmd.quant;
  if (!cmd.json.empty()) calib::check_writable(cmd.json, "--json");
  if (cmd.collect && q.quantized())
    throw Error("--collect: measures statistics collection in fp32; drop --qtype");
  if (!q.stats_mode.empty()) throw Error("-sm: bench takes --stats or synthetic statistics; drop -sm");
  const eval::Engine engine = eval::parse_engine(cmd.engine);
  check_engine_options(engine, cmd.plan, q, "");
  if (cmd.collect && (engine == eval::Engine::kInt8 || !cmd.plan.empty()))
    throw Error("--collect: measures statistics collection in fp32; drop --plan and --engine");
  std::optional<plan::QuantPlan> quant_plan;
  if (!cmd.plan.empty()) {
    if (q.quantized()) throw Error("--plan: the plan already fixes every quantization option; drop --qtype");
    if (const auto name = q.given_without_qtype(); !name.empty()) {
      throw Error("--plan: the plan already fixes every quantization option; drop " + name);
    }
    quant_plan = plan::QuantPlan::load(cmd.plan);
    if (cmd.model.no_fold_bn && quant_plan->options.fold_batchnorm)
      throw Error("--no-fold-bn: " + cmd.plan + " was made for the BN-folded graph");
    check_engine_plan(engine, *quant_plan, cmd.plan);
  } else {
    q.require_effective("bench");
  }
  std::optional<plan::PlanOptions> plan_options;
  if (q.quantized()) plan_options = q.plan_options(!cmd.model.no_fold_bn);
  Context ctx(cmd.model.threads);
  auto g = quant_plan ? onnx_import::load_model(cmd.model.model,
                                                {.fold_batchnorm = quant_plan->options.fold_batchnorm})
                      : cmd.model.load();
  if (quant_plan) quant_plan->require_graph(g, cmd.plan);
  if (g.inputs.size() != 1) throw Error(cmd.model.model + ": bench supports single-input models");
  const Tensor input = synthetic_input(g.inputs[0], cmd.batch, cmd.model.model);
  const runtime::ExecutorOptions xo = cmd.model.executor_options();
  std::unique_ptr<runtime::Observer> observer;
  std::vector<std::string> observed;
  std::string mode = "fp32";
  const std::string model_hash = g.model_hash;
  if (cmd.collect) {
    mode = "collect";
    observed = policy::collection_points(g);
    observer = std::make_unique<eval::CollectObserver>(observed, ctx);
  } else if (plan_options) {
    mode = q.qtype + "/" + q.clip;
    calib::StatsFile stats;
    if (!q.stats.empty()) {
      stats = calib::StatsFile::load(q.stats);
    } else {
      // Statistics from the synthetic input itself: the bench measures cost, not accuracy.
      const auto points = policy::collection_points(g);
      runtime::Executor probe(g, ctx, xo);
      probe.set_observed(points);
      eval::CollectObserver col(points, ctx);
      probe.run({input}, &col);
      stats.model_hash = g.model_hash;
      stats.samples = cmd.batch;
      stats.points = col.accumulator().points();
    }
    quant_plan =
        plan::build_plan(g, stats, *plan_options, q.stats.empty() ? "(synthetic statistics)" : q.stats);
  } else if (quant_plan) {
    mode = "plan " + cmd.plan;
  }
  if (quant_plan && engine == eval::Engine::kInt8) {
    // What eval --engine int8 runs: the plan's QDQ export lowered to the integer operators.
    mode += " (int8 engine)";
    g = exporter::lower_to_qoperator(exporter::insert_qdq(g, *quant_plan));
  } else if (quant_plan) {
    auto sim = plan::apply_plan(g, *quant_plan);
    observed = sim.points;
    observer = std::make_unique<eval::FakeQuantObserver>(std::move(sim.quantizers), ctx);
  }
  runtime::Executor exec(std::move(g), ctx, xo);
  exec.set_observed(observed);
  for (int i = 0; i < cmd.warmup; ++i) exec.run({input}, observer.get());
  std::vector<double> times;
  for (int i = 0; i < cmd.iters; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    exec.run({input}, observer.get());
    times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(times.begin(), times.end());
  const double median = times[times.size() / 2];
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  const double rss_mib = static_cast<double>(ru.ru_maxrss) / 1024.0;
  std::cout << fmt::format("model: {}\nmode: {}  batch: {}  threads: {}  iters: {}\n", cmd.model.model, mode,
                           cmd.batch, cmd.model.threads, cmd.iters);
  std::cout << fmt::format("latency: median {:.3f} ms  min {:.3f} ms  max {:.3f} ms\n", median * 1e3,
                           times.front() * 1e3, times.back() * 1e3);
  std::cout << fmt::format("peak RSS: {:.1f} MiB\n", rss_mib);
  std::cout << fmt::format("throughput: {:.2f} img/s\n", static_cast<double>(cmd.batch) / median);
  // Effective rate of the convolutions and matrix products: 2 operations per multiply-add.
  const auto macs =
      static_cast<double>(runtime::multiply_adds(exec.graph(), exec.infer_shapes({input.shape()})));
  std::cout << fmt::format("work: {:.3f} GMAC per image; effective {:.1f} G{}/s\n",
                           macs / static_cast<double>(cmd.batch) / 1e9, 2.0 * macs / median / 1e9,
                           engine == eval::Engine::kInt8 ? "OP" : "FLOP");
  auto steps = exec.step_report({input.shape()});
  std::int64_t reference_steps = 0;
  const std::string fallbacks = reference_summary(steps, reference_steps);
  std::cout << fmt::format("reference kernels: {} of {} steps{}\n", reference_steps, steps.size(),
                           reference_steps ? " (" + fallbacks + ")" : "");
  // Per-op-type time, from profiled runs after the timed ones (a clock read around every step).
  nlohmann::ordered_json profile = nlohmann::ordered_json::array();
  if (cmd.profile) {
    exec.set_profiling(true);
    for (int i = 0; i < cmd.iters; ++i) exec.run({input}, observer.get());
    exec.set_profiling(false);
    steps = exec.step_report({input.shape()});
    struct Row {
      std::string op, kernel;
      double seconds = 0;
      int steps = 0;
    };
    std::vector<Row> rows;
    double total = 0;
    for (const auto& st : steps) {
      total += st.seconds;
      auto it = std::find_if(rows.begin(), rows.end(),
                             [&](const Row& r) { return r.op == st.op_type && r.kernel == st.kernel; });
      if (it == rows.end()) {
        rows.push_back({st.op_type, st.kernel, st.seconds, 1});
      } else {
        it->seconds += st.seconds;
        ++it->steps;
      }
    }
    std::sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) { return a.seconds > b.seconds; });
    std::cout << fmt::format("profile ({} runs; ms per run):\n", cmd.iters);
    for (const auto& r : rows) {
      const double ms = r.seconds * 1e3 / cmd.iters;
      std::cout << fmt::format("  {:>9.3f} ms {:>5.1f}%  {:<22} x{:<4} {}\n", ms,
                               total > 0 ? 100.0 * r.seconds / total : 0.0, r.op, r.steps, r.kernel);
      profile.push_back({{"op", r.op}, {"kernel", r.kernel}, {"steps", r.steps}, {"ms_per_run", ms}});
    }
  }
  std::cout << std::flush;
  if (!cmd.json.empty()) {
    auto j = run_record(*cmd.app, inv);
    j["model"] = {{"path", cmd.model.model}, {"hash", model_hash}};
    if (!q.stats.empty()) j["stats"] = file_record(q.stats);
    j["mode"] = mode;
    j["latency_ms"] = {{"median", median * 1e3}, {"min", times.front() * 1e3}, {"max", times.back() * 1e3}};
    j["samples_ms"] = [&] {
      std::vector<double> ms;
      for (const double t : times) ms.push_back(t * 1e3);
      return ms;
    }();
    j["throughput_img_s"] = static_cast<double>(cmd.batch) / median;
    j["peak_rss_mib"] = rss_mib;
    j["reference_steps"] = nlohmann::ordered_json::array();
    for (const auto& st : steps) {
      if (st.kernel == "reference") j["reference_steps"].push_back({{"node", st.node}, {"op", st.op_type}});
    }
    j["steps"] = steps.size();
    if (cmd.profile) j["profile"] = profile;
    write_json(cmd.json, j);
  }
  return 0;
}

}  // namespace

void add_bench_command(CLI::App& app, SetAction set_action) {
  auto b = std::make_shared<BenchCmd>();
  auto* cmd = app.add_subcommand("bench", "measure throughput on synthetic input of the model's shape");
  b->app = cmd;
  b->model.add(*cmd);
  b->quant.add(*cmd);
  cmd->add_option("-b,--batch-size", b->batch, "batch size")->check(int_in(1, 65536))->capture_default_str();
  cmd->add_option("--iters", b->iters, "timed iterations")->check(int_in(1, 100000))->capture_default_str();
  cmd->add_option("--warmup", b->warmup, "untimed iterations first")
      ->check(int_in(0, 1000))
      ->capture_default_str();
  cmd->add_flag("--collect", b->collect, "measure statistics collection instead");
  cmd->add_flag("--profile", b->profile,
                "also time every step (more runs) and print time per op type and kernel");
  cmd->add_flag("-q,--quiet", b->quiet, "accepted for uniformity: bench shows no progress");
  cmd->add_option("--json", b->json, "also write the timings and the full configuration as JSON");
  cmd->add_option("--plan", b->plan,
                  "quantization plan from `aciq calibrate` (instead of --qtype and its options)");
  add_engine_option(*cmd, b->engine);
  cmd->footer("Example:\n  aciq bench --model models/resnet20.onnx -b 16 --qtype int4 --clip laplace");
  cmd->callback([b, set_action] { set_action([b](const Invocation& inv) { return run_bench(*b, inv); }); });
}

}  // namespace aciq::cli
