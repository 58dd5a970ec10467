// `aciq analyze`'s workflow: every calibrator's quantizer measured on the fp32 network's values
// (docs/clipping.md has what the columns mean); the CLI only formats the result.
#include <algorithm>

#include "aciq/eval.hpp"
#include "aciq/quant.hpp"

namespace aciq::eval {

namespace {

// The calibrators analyze compares: the whole table, the histogram ones only when every point has one.
std::vector<const calib::Calibrator*> analyzable_methods(const calib::StatsFile& stats) {
  const bool histograms = std::all_of(stats.points.begin(), stats.points.end(),
                                      [](const calib::PointStats& p) { return p.histogram.has_value(); });
  std::vector<const calib::Calibrator*> m;
  for (const auto& c : calib::calibrators()) {
    if (!c.needs_histogram || histograms) m.push_back(&c);
  }
  return m;
}

// Sums the squared quantization error of every observed value under each method's quantizer, over
// every batch, leaving the values themselves untouched (the fp32 network runs on). Fixed 64K-element
// chunks added in order: the sums do not depend on the thread count.
class MseObserver : public runtime::Observer {
 public:
  MseObserver(std::vector<std::vector<std::optional<quant::PointQuantizer>>> quantizers, Context& ctx)
      : q_(std::move(quantizers)), counts_(q_.size(), 0), ctx_(ctx) {
    for (const auto& q : q_) sums_.emplace_back(q.size(), 0.0);
  }
  void observe(std::size_t index, Tensor& value) override {
    const auto data = value.f32();
    const auto n = static_cast<std::int64_t>(data.size());
    const std::int64_t chunk = 1 << 16, chunks = (n + chunk - 1) / chunk;
    const std::size_t methods = q_[index].size();
    std::vector<std::vector<double>> partial(static_cast<std::size_t>(chunks), std::vector<double>(methods));
    ctx_.pool->parallel_for(chunks, [&](std::int64_t b, std::int64_t e) {
      std::vector<float> tmp;
      for (std::int64_t k = b; k < e; ++k) {
        const std::int64_t lo = k * chunk, hi = std::min(n, lo + chunk);
        const auto src = data.subspan(static_cast<std::size_t>(lo), static_cast<std::size_t>(hi - lo));
        for (std::size_t m = 0; m < methods; ++m) {
          double s = 0.0;
          if (q_[index][m]) {
            tmp.assign(src.begin(), src.end());
            quant::fake_quant(tmp, *q_[index][m]);
            for (std::size_t i = 0; i < tmp.size(); ++i) {
              const double d = static_cast<double>(tmp[i]) - src[i];
              s += d * d;
            }
          }
          partial[static_cast<std::size_t>(k)][m] = s;
        }
      }
    });
    for (const auto& p : partial) {
      for (std::size_t m = 0; m < methods; ++m) sums_[index][m] += p[m];
    }
    counts_[index] += n;
  }
  [[nodiscard]] double mse(std::size_t index, std::size_t m) const {
    return counts_[index] ? sums_[index][m] / static_cast<double>(counts_[index]) : 0.0;
  }

 private:
  std::vector<std::vector<std::optional<quant::PointQuantizer>>> q_;
  std::vector<std::vector<double>> sums_;
  std::vector<std::int64_t> counts_;
  Context& ctx_;
};

}  // namespace

ClippingAnalysis analyze_clipping(graph::Graph g, const calib::StatsFile& stats,
                                  const std::string& stats_path, const plan::PlanOptions& options,
                                  const runtime::ExecutorOptions& xo, Context& ctx,
                                  const std::shared_ptr<const data::Dataset>& ds,
                                  const data::LoaderOptions& lo, const LoopOptions& loop) {
  ClippingAnalysis out;
  out.methods = analyzable_methods(stats);
  const std::size_t methods = out.methods.size();
  const auto column_of = [&](quant::ClipMethod m) {
    for (std::size_t k = 0; k < methods; ++k) {
      if (out.methods[k]->method == m) return k;
    }
    throw Error("analyze: calibrator table lacks a seed method");
  };
  const std::size_t col_laplace = column_of(quant::ClipMethod::kLaplace),
                    col_gauss = column_of(quant::ClipMethod::kGauss),
                    col_mix = column_of(quant::ClipMethod::kMix);
  const auto points = policy::quant_points(g, options.policy);
  // One plan per method: its activation grids are what eval would run (semantics included).
  std::vector<plan::QuantPlan> plans;
  for (const auto* m : out.methods) {
    auto o = options;
    o.policy.clip = quant::ClipSpec(m->method, m->default_param);
    plans.push_back(plan::build_plan(g, stats, o, stats_path));
  }
  std::vector<std::vector<std::optional<quant::PointQuantizer>>> quantizers(
      points.size(), std::vector<std::optional<quant::PointQuantizer>>(methods));
  std::vector<std::vector<const plan::TensorQuant*>> entries(points.size(),
                                                             std::vector<const plan::TensorQuant*>(methods));
  std::vector<std::string> values;
  for (std::size_t i = 0; i < points.size(); ++i) {
    values.push_back(points[i].value);
    for (std::size_t m = 0; m < methods; ++m) {
      const auto* t = plans[m].find(points[i].value, plan::TensorKind::kActivation);
      if (!t) throw Error(stats_path + ": no statistics for point '" + points[i].value + "'");
      entries[i][m] = t;
      // Points the policy never clips (fully-connected) get no clipped cells.
      const bool clipped =
          m == 0 || points[i].role == policy::Role::kConv || points[i].role == policy::Role::kFirstConv;
      if (clipped) quantizers[i][m] = t->quantizer(options.semantics);
    }
  }
  runtime::Executor exec(std::move(g), ctx, xo);
  exec.set_observed(values);
  MseObserver mse(quantizers, ctx);
  data::BatchLoader loader(ds, lo);
  out.samples = run_dataset(exec, loader, &mse, loop).samples;

  for (std::size_t i = 0; i < points.size(); ++i) {
    AnalyzedPoint a;
    a.point = points[i];
    const auto* s = stats.find(a.point.value);
    using calib::Stat;
    a.b = s->column("mean", Stat::kB);
    a.std = s->column("mean", Stat::kStd);
    a.mean_min = s->column("mean", Stat::kMin);
    a.mean_max = s->column("mean", Stat::kMax);
    a.sigma_est = quant::seed_gauss_sigma(a.mean_min, a.mean_max, s->sample_numel);
    a.mse.resize(methods);
    for (std::size_t k = 0; k < methods; ++k) {
      if (quantizers[i][k]) a.mse[k] = mse.mse(i, k);
    }
    if (quantizers[i][col_laplace]) {
      a.alpha_laplace = entries[i][col_laplace]->alpha;
      a.alpha_gaus = entries[i][col_gauss]->alpha;
      a.mix_choice = entries[i][col_mix]->method == "mix:laplace" ? "lap" : "gaus";
      if (a.b > 0) a.estimate_laplace = quant::laplace_clip_mse(*a.alpha_laplace, a.b, a.point.bits);
      if (a.std > 0) a.estimate_gaus = quant::gauss_clip_mse(*a.alpha_gaus, a.std, a.point.bits);
    }
    out.points.push_back(std::move(a));
  }
  return out;
}

}  // namespace aciq::eval
