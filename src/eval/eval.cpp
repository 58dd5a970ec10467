// The evaluation loop, top-k scoring, and the fake-quantization observer.
#include "aciq/eval.hpp"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <limits>
#include <mutex>
#include <numeric>

#include "eval/progress.hpp"
#include "kernels/activation.hpp"

namespace aciq::eval {

void TopK::add(const Tensor& logits, const std::vector<std::int64_t>& labels) {
  // Unlabeled data (npy without labels, label -1): counted, not scored, whatever the output's shape.
  if (!labels.empty() && std::all_of(labels.begin(), labels.end(), [](std::int64_t l) { return l < 0; })) {
    samples += static_cast<std::int64_t>(labels.size());
    unlabeled += static_cast<std::int64_t>(labels.size());
    return;
  }
  if (logits.rank() != 2 || logits.dim(0) != static_cast<std::int64_t>(labels.size())) {
    fail("model output of shape " + shape_str(logits.shape()) + " is not [batch, classes] for " +
         std::to_string(labels.size()) + " labels");
  }
  const std::int64_t classes = logits.dim(1);
  const float* p = logits.data<float>();
  for (std::size_t i = 0; i < labels.size(); ++i) {
    const float* row = p + static_cast<std::int64_t>(i) * classes;
    const std::int64_t label = labels[i];
    if (label < 0 || label >= classes) {
      fail("label " + std::to_string(label) + " is outside the model's " + std::to_string(classes) +
           " classes");
    }
    // Rank of the true class: how many classes score strictly higher, or equal with a lower index.
    std::int64_t rank = 0;
    for (std::int64_t c = 0; c < classes; ++c) {
      if (std::isnan(row[c]))
        fail("the model produced NaN logits (sample " +
             std::to_string(samples + static_cast<std::int64_t>(i)) + ")");
      if (row[c] > row[label] || (row[c] == row[label] && c < label)) ++rank;
    }
    top1_correct += rank < 1;
    top5_correct += rank < 5;
  }
  samples += static_cast<std::int64_t>(labels.size());
}

FakeQuantObserver::FakeQuantObserver(const std::vector<quant::AffineQuantParams>& params, Context& ctx)
    : ctx_(ctx) {
  for (const auto& p : params) params_.push_back({.onnx = false, .seed = p, .grid = {}});
}

void FakeQuantObserver::observe(std::size_t index, Tensor& value) {
  quantize(index, value, quant::PostOp::kNone);
}

void FakeQuantObserver::observe_activation(std::size_t index, Tensor& value, const Activation& act,
                                           std::size_t activated_index, Context& ctx) {
  const float inf = std::numeric_limits<float>::infinity();
  if (act.kind == Activation::Kind::kRelu) {
    quantize(index, value, quant::PostOp::clamp(0.0f, inf));
  } else if (act.kind == Activation::Kind::kClip) {
    quantize(index, value, quant::PostOp::clamp(act.lo, act.hi));
  } else {
    return runtime::Observer::observe_activation(index, value, act, activated_index, ctx);
  }
  if (activated_index != kNotObserved) observe(activated_index, value);
}

void CollectObserver::observe_activation(std::size_t index, Tensor& value, const Activation& act,
                                         std::size_t activated_index, Context& ctx) {
  // Per sample, while it is in cache: statistics of the raw value, the activation in place, then
  // statistics of the activated value. One trip through memory instead of three.
  // No batch dimension: the generic three steps (observe ignores it, the activation still applies).
  if (value.rank() < 1 || value.dim(0) == 0) {
    return runtime::Observer::observe_activation(index, value, act, activated_index, ctx);
  }
  const std::int64_t n = value.dim(0);
  const std::int64_t row = value.numel() / n;
  std::vector<quant::SampleStats> raw(static_cast<std::size_t>(n)),
      activated(activated_index != kNotObserved ? n : 0);
  float* data = value.data<float>();
  // Relu and Clip are clamps: sample_stats_clamped does all three steps in two passes.
  const float lo = act.kind == Activation::Kind::kRelu ? 0.0f : act.lo;
  const float hi = act.kind == Activation::Kind::kRelu ? std::numeric_limits<float>::infinity() : act.hi;
  // A Clip with min > max (or a NaN bound) is legal ONNX; the generic steps apply it as the operator does.
  const bool clamp = (act.kind == Activation::Kind::kRelu || act.kind == Activation::Kind::kClip) && lo <= hi;
  // Samples run in parallel; with fewer samples than threads, each sample's segments do instead.
  const bool split = n < ctx.threads();
  ThreadPool* inner = split ? ctx.pool.get() : nullptr;
  const bool histograms = acc_.histograms();
  // Per-channel statistics (collect --channel-stats) of the raw and the activated value, per sample.
  const std::int64_t channels = acc_.channels() && value.rank() >= 2 ? value.dim(1) : 0;
  std::vector<quant::SampleStats> raw_channels(static_cast<std::size_t>(n * channels)),
      activated_channels(activated.empty() ? 0 : static_cast<std::size_t>(n * channels));
  auto channel_rows = [&](std::vector<quant::SampleStats>& rows, std::int64_t i) {
    return std::span(rows).subspan(static_cast<std::size_t>(i * channels),
                                   static_cast<std::size_t>(channels));
  };
  // The raw histogram needs the raw values, so with histograms the raw statistics come first (their
  // min/max fix the bins), then the binning, the activation and the activated statistics.
  auto one = [&](std::int64_t i, calib::Histogram* hraw, calib::Histogram* hact) {
    const std::span<float> sample(data + i * row, static_cast<std::size_t>(row));
    if (clamp && !activated.empty() && !histograms && channels == 0) {
      quant::sample_stats_clamped(sample, lo, hi, raw[i], activated[i], inner);
      return;
    }
    quant::sample_stats(sample, raw[i], inner);
    if (channels > 0) calib::channel_sample_stats(sample, channels, channel_rows(raw_channels, i));
    if (hraw) hraw->add(sample, static_cast<float>(raw[i].min), static_cast<float>(raw[i].max));
    if (split) {
      kernels::apply_activation(act, sample.data(), static_cast<std::int64_t>(sample.size()), ctx);
    } else {
      kernels::apply_activation_serial(act, sample.data(), static_cast<std::int64_t>(sample.size()));
    }
    if (!activated.empty()) {
      quant::sample_stats(sample, activated[i], inner);
      if (channels > 0) calib::channel_sample_stats(sample, channels, channel_rows(activated_channels, i));
      if (hact) hact->add(sample, static_cast<float>(activated[i].min), static_cast<float>(activated[i].max));
    }
  };
  std::mutex merge_lock;
  auto range = [&](std::int64_t b, std::int64_t e) {
    calib::Histogram hraw, hact;
    for (std::int64_t i = b; i < e; ++i) one(i, histograms ? &hraw : nullptr, histograms ? &hact : nullptr);
    if (!histograms) return;
    // Exact, commutative merges: the order chunks finish in does not matter.
    const std::lock_guard<std::mutex> guard(merge_lock);
    acc_.merge_histogram(index, hraw);
    if (!activated.empty()) acc_.merge_histogram(activated_index, hact);
  };
  if (split) {
    range(0, n);
  } else {
    ctx.pool->parallel_for(n, range);
  }
  acc_.add_samples(index, row, raw);
  if (!activated.empty()) acc_.add_samples(activated_index, row, activated);
  if (channels > 0) {
    acc_.add_channel_samples(index, channels, raw_channels, ctx.pool.get());
    if (!activated.empty())
      acc_.add_channel_samples(activated_index, channels, activated_channels, ctx.pool.get());
  }
}

void FakeQuantObserver::quantize(std::size_t index, Tensor& value, const quant::PostOp& post) {
  const auto& p = params_.at(index);
  auto data = value.f32();
  // Chunks are independent elementwise work; large tensors split across the pool.
  const std::int64_t n = static_cast<std::int64_t>(data.size());
  const std::int64_t chunk = 1 << 16;
  const std::int64_t chunks = (n + chunk - 1) / chunk;
  ctx_.pool->parallel_for(chunks, [&](std::int64_t b, std::int64_t e) {
    const std::int64_t lo = b * chunk, hi = std::min(n, e * chunk);
    quant::fake_quant(data.subspan(static_cast<std::size_t>(lo), static_cast<std::size_t>(hi - lo)), p, post);
  });
}

void DynamicRangeObserver::observe(std::size_t index, Tensor& value) {
  const auto& point = points_.at(index);
  // The histogram methods bin the batch too.
  calib::Accumulator acc({point.value}, calib::calibrator(point.clip.method).needs_histogram);
  acc.add_batch(0, value, ctx_);
  if (acc.points()[0][calib::Stat::kMin].count == 0) return;  // no samples in this tensor
  const auto range = policy::point_range(point, acc.points()[0], options_);
  FakeQuantObserver({quant::affine_params(range.window, point.bits)}, ctx_).observe(0, value);
}

TopK run_dataset(runtime::Executor& exec, data::BatchLoader& loader, runtime::Observer* observer,
                 const LoopOptions& options) {
  TopK topk;
  Progress progress(options, loader.total() * options.progress_scale);
  while (auto batch = loader.next()) {
    auto outputs = exec.run({batch->images}, observer);
    topk.add(outputs.at(0), batch->labels);
    progress.update(topk.samples * options.progress_scale);
    if (options.between_batches) options.between_batches();
  }
  return topk;
}

}  // namespace aciq::eval
