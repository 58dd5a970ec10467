// Accumulator: per-sample activation statistics reduced in parallel and summarized in sample order.
#include <cmath>
#include <mutex>

#include "aciq/calib.hpp"
#include "aciq/quant.hpp"

namespace aciq::calib {

Accumulator::Accumulator(std::vector<std::string> point_names, bool histograms) : histograms_(histograms) {
  for (auto& n : point_names) {
    PointStats p;
    p.name = std::move(n);
    if (histograms) p.histogram.emplace();
    points_.push_back(std::move(p));
  }
}

void Accumulator::merge_histogram(std::size_t point, const Histogram& h) {
  auto& target = points_.at(point).histogram;
  if (target) target->merge(h);
}

void Accumulator::add_batch(std::size_t point, const Tensor& batch, Context& ctx) {
  if (batch.rank() < 1 || batch.dim(0) == 0) return;
  const std::int64_t n = batch.dim(0);
  const std::int64_t row = batch.numel() / n;
  std::vector<quant::SampleStats> rows(static_cast<std::size_t>(n));
  const float* data = batch.data<float>();
  auto sample = [&](std::int64_t i) {
    return std::span<const float>(data + i * row, static_cast<std::size_t>(row));
  };
  if (n < ctx.threads()) {
    // Fewer samples than threads (batch 1, a last partial batch): split each sample instead.
    for (std::int64_t i = 0; i < n; ++i) quant::sample_stats(sample(i), rows[i], ctx.pool.get());
  } else {
    ctx.pool->parallel_for(n, [&](std::int64_t b, std::int64_t e) {
      for (std::int64_t i = b; i < e; ++i) quant::sample_stats(sample(i), rows[i]);
    });
  }
  if (histograms_) {
    // Chunk-local histograms merged under a lock: merging is exact and commutative, so the order the
    // chunks finish in cannot change the result.
    std::mutex m;
    ctx.pool->parallel_for(n, [&](std::int64_t b, std::int64_t e) {
      Histogram local;
      for (std::int64_t i = b; i < e; ++i) {
        local.add(sample(i), static_cast<float>(rows[i].min), static_cast<float>(rows[i].max));
      }
      const std::lock_guard<std::mutex> lock(m);
      merge_histogram(point, local);
    });
  }
  add_samples(point, row, rows);
}

void Accumulator::add_samples(std::size_t point, std::int64_t row, std::span<const quant::SampleStats> rows) {
  PointStats& p = points_.at(point);
  if (p.sample_numel == 0) p.sample_numel = row;
  if (p.sample_numel != row) {
    fail("statistics point '" + p.name + "': sample size changed from " + std::to_string(p.sample_numel) +
         " to " + std::to_string(row));
  }
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const auto& s = rows[i];
    if (!std::isfinite(s.min) || !std::isfinite(s.max)) {
      fail("statistics point '" + p.name + "': sample " + std::to_string(i) +
           " of the batch contains NaN or Inf activations (check the model weights and the input data)");
    }
    // Documented fallbacks (README, Guarantees): a one-element sample has std 0, and a constant
    // sample (std = 0) has kurtosis 0, instead of torch's NaN, so files stay finite and mergeable.
    const double std = std::isfinite(s.std) ? s.std : 0.0;
    const double kurtosis = std > 0 && std::isfinite(s.kurtosis) ? s.kurtosis : 0.0;
    p[Stat::kMax].add(s.max);
    p[Stat::kMin].add(s.min);
    p[Stat::kMean].add(s.mean);
    p[Stat::kStd].add(std);
    p[Stat::kRange].add(s.max - s.min);
    p[Stat::kKurtosis].add(kurtosis);
    p[Stat::kMeanAbs].add(s.mean_abs);
    p[Stat::kB].add(s.b);
  }
}

}  // namespace aciq::calib
