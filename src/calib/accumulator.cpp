// Accumulator: per-sample activation statistics reduced in parallel and summarized in sample order.
#include <algorithm>
#include <cmath>
#include <mutex>

#include "aciq/calib.hpp"
#include "aciq/quant.hpp"

namespace aciq::calib {

// Channel blocks are small (often 4x4 to 56x56 values), so a plain two-pass loop in double beats the
// vectorized sample_stats, whose per-call setup dominates there; it fills the five fields the summaries
// keep (min, max, mean, unbiased std, b). The callers checked the whole sample is finite.
void channel_sample_stats(std::span<const float> x, std::int64_t channels,
                          std::span<quant::SampleStats> out) {
  const auto inner = static_cast<std::size_t>(static_cast<std::int64_t>(x.size()) / channels);
  for (std::int64_t c = 0; c < channels; ++c) {
    const float* v = x.data() + static_cast<std::size_t>(c) * inner;
    double sum = 0.0;
    float lo = v[0], hi = v[0];
    for (std::size_t i = 0; i < inner; ++i) {
      sum += v[i];
      lo = std::min(lo, v[i]);
      hi = std::max(hi, v[i]);
    }
    const double mean = sum / static_cast<double>(inner);
    double abs_dev = 0.0, sq_dev = 0.0;
    for (std::size_t i = 0; i < inner; ++i) {
      const double d = static_cast<double>(v[i]) - mean;
      abs_dev += std::fabs(d);
      sq_dev += d * d;
    }
    auto& o = out[static_cast<std::size_t>(c)];
    o.min = lo;
    o.max = hi;
    o.mean = mean;
    o.b = abs_dev / static_cast<double>(inner);
    // One-element channels (a Gemm's [N, F] output) have std 0, as the per-sample fallback.
    o.std = inner > 1 ? std::sqrt(sq_dev / static_cast<double>(inner - 1)) : 0.0;
  }
}

Accumulator::Accumulator(std::vector<std::string> point_names, bool histograms, bool channels)
    : histograms_(histograms), channels_(channels) {
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
  // Channels along axis 1 (none for [N]).
  const std::int64_t channels = channels_ && batch.rank() >= 2 ? batch.dim(1) : 0;
  std::vector<quant::SampleStats> channel_rows(static_cast<std::size_t>(n * channels));
  auto channel_stats = [&](std::int64_t i) {
    if (channels > 0)
      channel_sample_stats(
          sample(i), channels,
          std::span(channel_rows)
              .subspan(static_cast<std::size_t>(i * channels), static_cast<std::size_t>(channels)));
  };
  // Histograms: chunk-local ones merged under a lock; merging is exact and commutative, so the order the
  // chunks finish in cannot change the result.
  std::mutex merge_lock;
  const auto merge_local = [&](const Histogram& local) {
    const std::lock_guard<std::mutex> lock(merge_lock);
    merge_histogram(point, local);
  };
  if (n < ctx.threads()) {
    // Fewer samples than threads (batch 1, a last partial batch): split each sample instead.
    for (std::int64_t i = 0; i < n; ++i) {
      quant::sample_stats(sample(i), rows[i], ctx.pool.get());
      channel_stats(i);
    }
    if (histograms_) {
      // Each sample in chunks: every chunk is binned on the sample's range, so the chunk histograms
      // share one exponent per half and add up exactly.
      constexpr std::int64_t kChunk = 1 << 16;
      for (std::int64_t i = 0; i < n; ++i) {
        const auto x = sample(i);
        const auto len = static_cast<std::int64_t>(x.size());
        ctx.pool->parallel_for((len + kChunk - 1) / kChunk, [&](std::int64_t b, std::int64_t e) {
          Histogram local;
          const std::int64_t lo = b * kChunk, hi = std::min(len, e * kChunk);
          local.add(x.subspan(static_cast<std::size_t>(lo), static_cast<std::size_t>(hi - lo)),
                    static_cast<float>(rows[i].min), static_cast<float>(rows[i].max));
          merge_local(local);
        });
      }
    }
  } else {
    ctx.pool->parallel_for(n, [&](std::int64_t b, std::int64_t e) {
      Histogram local;
      for (std::int64_t i = b; i < e; ++i) {
        quant::sample_stats(sample(i), rows[i]);
        channel_stats(i);
        // Right after the statistics, which give its range, while the sample is still in cache.
        if (histograms_)
          local.add(sample(i), static_cast<float>(rows[i].min), static_cast<float>(rows[i].max));
      }
      if (histograms_) merge_local(local);
    });
  }
  add_samples(point, row, rows);
  if (channels > 0) add_channel_samples(point, channels, channel_rows, ctx.pool.get());
}

void Accumulator::add_channel_samples(std::size_t point, std::int64_t channels,
                                      std::span<const quant::SampleStats> rows, ThreadPool* pool) {
  PointStats& p = points_.at(point);
  if (!channels_ || channels <= 0) return;
  if (p.channels.empty()) p.channels.resize(static_cast<std::size_t>(channels));
  if (static_cast<std::int64_t>(p.channels.size()) != channels)
    fail("statistics point '" + p.name + "': channel count changed from " +
         std::to_string(p.channels.size()) + " to " + std::to_string(channels));
  // Channels are independent and each takes its samples in order: any split over threads gives the same
  // sums. Finiteness was checked on the whole sample (add_samples): its channels are finite too.
  const auto samples = static_cast<std::int64_t>(rows.size()) / channels;
  auto some = [&](std::int64_t b, std::int64_t e) {
    for (std::int64_t c = b; c < e; ++c) {
      auto& ch = p.channels[static_cast<std::size_t>(c)];
      for (std::int64_t i = 0; i < samples; ++i) {
        const auto& s = rows[static_cast<std::size_t>(i * channels + c)];
        ch[ChannelStat::kMax].add(s.max);
        ch[ChannelStat::kMin].add(s.min);
        ch[ChannelStat::kMean].add(s.mean);
        ch[ChannelStat::kStd].add(s.std);
        ch[ChannelStat::kB].add(s.b);
      }
    }
  };
  if (pool) {
    pool->parallel_for(channels, some);
  } else {
    some(0, channels);
  }
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
