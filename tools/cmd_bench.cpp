// `aciq bench`: throughput of fp32, simulated-quantized or statistics-collecting inference on synthetic input.
#include <fmt/format.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <iostream>
#include <random>

#include "aciq/calib.hpp"
#include "aciq/plan.hpp"
#include "cli_common.hpp"
#include "commands.hpp"

namespace aciq::cli {

namespace {

struct BenchCmd {
  ModelOptions model;
  std::int64_t batch = 16;
  int iters = 20;
  int warmup = 2;
  std::string qtype;
  std::string clip = "laplace";
  bool collect = false;
};

Tensor synthetic_input(const graph::ValueInfo& in, std::int64_t batch, const std::string& model) {
  Shape s = in.shape;
  if (s.empty()) throw Error(model + ": input '" + in.name + "' has no declared shape; bench needs one");
  s[0] = batch;
  for (std::size_t i = 1; i < s.size(); ++i) {
    if (s[i] < 0) throw Error(model + ": input '" + in.name + "' has a dynamic dimension " + std::to_string(i));
  }
  Tensor t(DType::kFloat32, s);
  std::mt19937 rng(1234);  // fixed: runs are comparable
  std::normal_distribution<float> dist(0.0f, 1.0f);
  for (float& v : t.f32()) v = dist(rng);
  return t;
}

int run_bench(const BenchCmd& c) {
  Context ctx(c.model.threads);
  auto g = c.model.load();
  if (g.inputs.size() != 1) throw Error(c.model.model + ": bench supports single-input models");
  const Tensor input = synthetic_input(g.inputs[0], c.batch, c.model.model);
  const runtime::ExecutorOptions xo{.backend = c.model.backend_enum()};
  std::unique_ptr<runtime::Observer> observer;
  std::vector<std::string> observed;
  std::string mode = "fp32";
  if (c.collect) {
    mode = "collect";
    observed = policy::collection_points(g);
    observer = std::make_unique<eval::CollectObserver>(observed, ctx);
  } else if (!c.qtype.empty()) {
    mode = c.qtype + "/" + c.clip;
    // Statistics from the synthetic input itself: the bench measures cost, not accuracy.
    const auto points = policy::collection_points(g);
    runtime::Executor probe(g, ctx, xo);
    probe.set_observed(points);
    eval::CollectObserver col(points, ctx);
    probe.run({input}, &col);
    calib::StatsFile stats;
    stats.model_hash = g.model_hash;
    stats.samples = c.batch;
    stats.points = col.accumulator().points();
    QuantArgs qa;
    qa.qtype = c.qtype;
    qa.clip = c.clip;
    const auto po = qa.options();
    plan::PlanOptions plan_options;
    plan_options.policy = po;
    const auto quant_plan = plan::build_plan(g, stats, plan_options, "(synthetic statistics)");
    auto sim = plan::apply_plan(g, quant_plan);
    observed = sim.points;
    observer = std::make_unique<eval::FakeQuantObserver>(std::move(sim.quantizers), ctx);
  }
  runtime::Executor exec(std::move(g), ctx, xo);
  exec.set_observed(observed);
  for (int i = 0; i < c.warmup; ++i) exec.run({input}, observer.get());
  std::vector<double> times;
  for (int i = 0; i < c.iters; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    exec.run({input}, observer.get());
    times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(times.begin(), times.end());
  const double median = times[times.size() / 2];
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  std::cout << fmt::format("model: {}\nmode: {}  batch: {}  threads: {}  iters: {}\n", c.model.model, mode, c.batch,
                           c.model.threads, c.iters);
  std::cout << fmt::format("latency: median {:.3f} ms  min {:.3f} ms  max {:.3f} ms\n", median * 1e3, times.front() * 1e3,
                           times.back() * 1e3);
  std::cout << fmt::format("peak RSS: {:.1f} MiB\n", static_cast<double>(ru.ru_maxrss) / 1024.0);
  std::cout << fmt::format("throughput: {:.2f} img/s\n", static_cast<double>(c.batch) / median);
  return 0;
}

}  // namespace

void add_bench_command(CLI::App& app, SetAction set_action) {
  auto b = std::make_shared<BenchCmd>();
  auto* cmd = app.add_subcommand("bench", "measure throughput on synthetic input of the model's shape");
  b->model.add(*cmd);
  cmd->add_option("-b,--batch-size", b->batch, "batch size")->check(CLI::Range(1, 4096))->capture_default_str();
  cmd->add_option("--iters", b->iters, "timed iterations")->check(CLI::Range(1, 100000))->capture_default_str();
  cmd->add_option("--warmup", b->warmup, "untimed iterations first")->check(CLI::Range(0, 1000))->capture_default_str();
  cmd->add_option("--qtype", b->qtype, "simulate intM activations");
  cmd->add_option("--clip", b->clip, "clipping for --qtype")->check(CLI::IsMember({"no", "laplace", "gaus", "mix"}))->capture_default_str();
  cmd->add_flag("--collect", b->collect, "measure statistics collection instead");
  cmd->callback([b, set_action] { set_action([b] { return run_bench(*b); }); });
}

}  // namespace aciq::cli
