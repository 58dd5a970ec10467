// Dataset passes as the commands run them: evaluation (fp32, plan simulation, dynamic ranges) and
// statistics collection.
#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>

#include "aciq/eval.hpp"
#include "aciq/export.hpp"
#include "eval/progress.hpp"

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

Engine parse_engine(const std::string& name) {
  if (name == "simulate") return Engine::kSimulate;
  if (name == "int8") return Engine::kInt8;
  fail("--engine '" + name + "': expected simulate or int8");
}

namespace {

// A plan's fake quantization: the plan applied to g (weights quantized in place), the observer and the
// values it observes; no observer for fp32 (or dynamic ranges, which the caller builds).
std::pair<std::unique_ptr<runtime::Observer>, std::vector<std::string>> simulation_of(graph::Graph& g,
                                                                                      const Simulation& sim,
                                                                                      Context& ctx) {
  if (!sim.plan) return {};
  if (sim.engine == Engine::kInt8) {
    if (sim.plan->semantics() != plan::Semantics::kOnnx) {
      fail(
          "--engine int8: the plan uses the seed semantics (float zero points), which no integer kernel "
          "runs; calibrate with --semantics onnx");
    }
    g = exporter::lower_to_qoperator(exporter::insert_qdq(g, *sim.plan));
    return {};
  }
  auto applied = plan::apply_plan(g, *sim.plan);
  return {std::make_unique<FakeQuantObserver>(std::move(applied.quantizers), ctx), std::move(applied.points)};
}

}  // namespace

PassResult evaluate(graph::Graph g, const runtime::ExecutorOptions& xo, Context& ctx,
                    const std::shared_ptr<const data::Dataset>& ds, const data::LoaderOptions& lo,
                    const Simulation& sim, const LoopOptions& loop) {
  auto [observer, observed] = simulation_of(g, sim, ctx);
  if (!observer && sim.dynamic) {
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
                                    const data::LoaderOptions& lo, const LoopOptions& loop, TopK* fp32,
                                    bool channel_stats) {
  const auto points = policy::collection_points(g);
  calib::StatsFile f;
  f.model_hash = g.model_hash;
  f.model_path = model_path;
  runtime::Executor exec(std::move(g), ctx, xo);
  exec.set_observed(points);
  CollectObserver observer(points, ctx, true, channel_stats);
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

TensorRunResult run_tensors(graph::Graph g, const runtime::ExecutorOptions& xo, Context& ctx,
                            const data::NpyArray& input, std::int64_t batch, const Simulation& sim,
                            const std::vector<std::string>& outputs, const LoopOptions& loop) {
  if (g.inputs.size() != 1) {
    fail(g.source + ": has " + std::to_string(g.inputs.size()) + " inputs; --input feeds models with one");
  }
  if (input.shape().empty()) fail(input.path() + ": a 0-d array has no samples along N");
  // Integer inputs are shape-like to the executor (their values key the plan cache): one plan per batch.
  if (input.dtype() != DType::kFloat32) {
    fail(input.path() + ": --input must be float32, the file holds " +
         std::string(dtype_name(input.dtype())));
  }
  if (outputs.size() != g.outputs.size()) fail("internal: one output path per graph output expected");
  if (batch <= 0) fail("batch size must be positive");
  const std::int64_t n = input.shape()[0];
  Shape first = input.shape();
  first[0] = std::min(batch, std::max<std::int64_t>(n, 1));
  try {
    runtime::require_input_fits(g.inputs[0], input.dtype(), first, g.source);
  } catch (const Error& e) {
    fail(std::string(e.what()) + " (from " + input.path() + ")");
  }
  for (const auto& o : outputs) {
    if (!o.empty()) calib::check_writable(o, "--output");
  }
  if (sim.dynamic) fail("dynamic ranges (-sm no) are not available for tensor files");
  auto [observer, observed] = simulation_of(g, sim, ctx);
  const std::vector<std::string> names = g.outputs;
  runtime::Executor exec(std::move(g), ctx, xo);
  exec.set_observed(observed);
  std::vector<std::unique_ptr<data::NpyWriter>> writers(outputs.size());
  Progress progress(loop, n);
  const auto t0 = std::chrono::steady_clock::now();
  for (std::int64_t begin = 0; begin < n; begin += batch) {
    const std::int64_t count = std::min(batch, n - begin);
    auto out = exec.run({input.rows(begin, count)}, observer.get());
    for (std::size_t k = 0; k < outputs.size(); ++k) {
      if (outputs[k].empty()) continue;
      const Tensor& t = out.at(k);
      if (t.rank() == 0 || t.shape()[0] != count) {
        fail("output '" + names[k] + "' has shape " + shape_str(t.shape()) + ", not " +
             std::to_string(count) + " rows for a batch of " + std::to_string(count) +
             ": it cannot be stacked along N");
      }
      if (!writers[k]) {
        Shape full = t.shape();
        full[0] = n;
        writers[k] = std::make_unique<data::NpyWriter>(outputs[k], t.dtype(), full);
      }
      writers[k]->append(t);
    }
    progress.update(begin + count);
    if (loop.between_batches) loop.between_batches();
  }
  TensorRunResult r;
  for (std::size_t k = 0; k < outputs.size(); ++k) {
    if (!writers[k]) continue;
    writers[k]->finish();
    r.written.push_back(outputs[k]);
  }
  r.samples = n;
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

TensorComparison compare_tensors(const Tensor& ref_in, const Tensor& out_in, std::int64_t axis) {
  if (ref_in.shape() != out_in.shape()) {
    fail("shapes differ: " + shape_str(ref_in.shape()) + " vs " + shape_str(out_in.shape()));
  }
  const Tensor ref = ref_in.to_f32(), out = out_in.to_f32();
  const float* a = ref.data<float>();
  const float* b = out.data<float>();
  TensorComparison c;
  c.elements = ref.numel();
  double sum_abs = 0, sig = 0, noise = 0, dot = 0, na = 0, nb = 0;
  for (std::int64_t i = 0; i < c.elements; ++i) {
    const double x = a[i], y = b[i], d = std::fabs(x - y);
    if (std::isnan(x) || std::isnan(y)) fail("NaN at element " + std::to_string(i));
    c.max_abs = std::max(c.max_abs, d);
    c.identical += a[i] == b[i];
    c.max_abs_ref = std::max(c.max_abs_ref, std::fabs(x));
    sum_abs += d;
    sig += x * x;
    noise += (x - y) * (x - y);
    dot += x * y;
    na += x * x;
    nb += y * y;
  }
  c.mean_abs = c.elements ? sum_abs / static_cast<double>(c.elements) : 0.0;
  c.sqnr_db = noise == 0 ? std::numeric_limits<double>::infinity() : 10.0 * std::log10(sig / noise);
  c.cosine = na > 0 && nb > 0 ? dot / std::sqrt(na * nb) : (na == nb ? 1.0 : 0.0);
  const auto r = static_cast<std::int64_t>(ref.rank());
  if (r == 0) return c;
  const std::int64_t ax = axis < 0 ? axis + r : axis;
  if (ax < 0 || ax >= r)
    fail("--axis " + std::to_string(axis) + " is out of range for shape " + shape_str(ref.shape()));
  std::int64_t outer = 1, inner = 1;
  for (std::int64_t d = 0; d < ax; ++d) outer *= ref.shape()[d];
  for (std::int64_t d = ax + 1; d < r; ++d) inner *= ref.shape()[d];
  const std::int64_t len = ref.shape()[ax];
  if (len == 0) return c;
  for (std::int64_t o = 0; o < outer; ++o) {
    for (std::int64_t in = 0; in < inner; ++in) {
      std::int64_t ia = 0, ib = 0;  // the first maximum, like torch.argmax and numpy on ties
      for (std::int64_t k = 1; k < len; ++k) {
        const std::int64_t at = (o * len + k) * inner + in;
        if (a[at] > a[(o * len + ia) * inner + in]) ia = k;
        if (b[at] > b[(o * len + ib) * inner + in]) ib = k;
      }
      c.argmax_agree += ia == ib;
      ++c.argmax_total;
    }
  }
  return c;
}

}  // namespace aciq::eval
