// Dataset passes as the commands run them: evaluation (fp32, plan simulation, dynamic ranges) and
// statistics collection.
#include <fmt/format.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <optional>

#include "aciq/eval.hpp"

namespace aciq::eval {

void check_data_fits(const graph::Graph& g, const data::Dataset& ds, std::int64_t batch) {
  if (g.inputs.size() != 1) {
    fail(fmt::format("{}: the model has {} inputs; dataset passes feed exactly one", g.source,
                     g.inputs.size()));
  }
  Shape s = ds.sample_shape();
  s.insert(s.begin(), std::min(batch, std::max<std::int64_t>(ds.size(), 1)));
  runtime::require_input_fits(g.inputs[0], DType::kFloat32, s, g.source);
}

std::string describe_selection(const data::Dataset& ds, std::int64_t offset, std::int64_t limit,
                               std::int64_t samples) {
  std::string d = ds.describe();
  if (offset || limit) d += fmt::format(" (samples {}..{})", offset, offset + samples - 1);
  return d;
}

PassResult evaluate(graph::Graph g, const runtime::ExecutorOptions& xo, Context& ctx,
                    const std::shared_ptr<const data::Dataset>& ds, const data::LoaderOptions& lo,
                    const Simulation& sim, const LoopOptions& loop) {
  std::unique_ptr<runtime::Observer> observer;
  std::vector<std::string> observed;
  if (sim.plan) {
    auto applied = plan::apply_plan(g, *sim.plan);
    observed = std::move(applied.points);
    observer = std::make_unique<FakeQuantObserver>(std::move(applied.quantizers), ctx);
  } else if (sim.dynamic) {
    auto points = policy::quant_points(g, *sim.dynamic);
    if (sim.dynamic->weight_bits > 0) policy::quantize_weights(g, sim.dynamic->weight_bits);
    for (const auto& p : points) observed.push_back(p.value);
    observer = std::make_unique<DynamicRangeObserver>(std::move(points), *sim.dynamic, ctx);
  }
  runtime::Executor exec(std::move(g), ctx, xo);
  exec.set_observed(observed);
  data::BatchLoader loader(ds, lo);
  const auto t0 = std::chrono::steady_clock::now();
  PassResult out;
  out.topk = run_dataset(exec, loader, observer.get(), loop);
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return out;
}

calib::StatsFile collect_statistics(graph::Graph g, const std::string& model_path,
                                    const runtime::ExecutorOptions& xo, Context& ctx,
                                    const std::shared_ptr<const data::Dataset>& ds,
                                    const data::LoaderOptions& lo, const LoopOptions& loop, TopK* fp32) {
  const auto points = policy::collection_points(g);
  calib::StatsFile f;
  f.model_hash = g.model_hash;
  f.model_path = model_path;
  runtime::Executor exec(std::move(g), ctx, xo);
  exec.set_observed(points);
  CollectObserver observer(points, ctx);
  data::BatchLoader loader(ds, lo);
  const auto topk = run_dataset(exec, loader, &observer, loop);
  if (fp32) *fp32 = topk;
  f.data_source = describe_selection(*ds, lo.offset, lo.limit, topk.samples);
  f.samples = topk.samples;
  if (topk.samples > 0) f.ranges.push_back({ds->describe(), lo.offset, lo.offset + topk.samples});
  f.points = observer.accumulator().points();
  return f;
}

// ---- Data-parallel passes ----

// This rank's part of the selected samples [begin, end) as loader options.
data::LoaderOptions shard_loader(data::LoaderOptions lo, const dist::Group& group, std::int64_t begin,
                                 std::int64_t end) {
  const auto [b, e] = group.shard(begin, end);
  lo.offset = b;
  lo.limit = e - b;
  return lo;
}

// Sum of every rank's counts.
TopK combine(dist::Group& group, const TopK& mine) {
  if (group.size() == 1) return mine;
  TopK all;
  for (const auto& part :
       group.all_gather(nlohmann::json{mine.samples, mine.top1_correct, mine.top5_correct}.dump())) {
    const auto j = nlohmann::json::parse(part);
    all.samples += j[0].get<std::int64_t>();
    all.top1_correct += j[1].get<std::int64_t>();
    all.top5_correct += j[2].get<std::int64_t>();
  }
  return all;
}

// Every rank's statistics merged in rank order (exact, so the same as one process over all samples),
// with the data description one process would have written.
calib::StatsFile combine(dist::Group& group, const calib::StatsFile* mine, const data::Dataset& ds,
                         std::int64_t offset, std::int64_t limit) {
  std::optional<calib::StatsFile> all;
  if (group.size() == 1) {
    if (mine) all = *mine;
  } else {
    for (const auto& part : group.all_gather(mine ? mine->to_json() : std::string())) {
      if (part.empty()) continue;
      auto f = calib::StatsFile::from_json(part, "statistics of another rank");
      if (all) {
        all->merge(f);
      } else {
        all = std::move(f);
      }
    }
  }
  if (!all) throw Error("--data " + ds.describe() + ": no samples selected");
  all->data_source = describe_selection(ds, offset, limit, all->samples);
  return std::move(*all);
}

}  // namespace aciq::eval
