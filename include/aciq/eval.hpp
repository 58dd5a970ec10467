// Evaluation: the dataset loop, observers for statistics and fake quantization, top-k metrics, reports.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "aciq/calib.hpp"
#include "aciq/data.hpp"
#include "aciq/policy.hpp"
#include "aciq/runtime.hpp"

namespace aciq::eval {

struct TopK {
  std::int64_t samples = 0;
  std::int64_t top1_correct = 0;
  std::int64_t top5_correct = 0;
  [[nodiscard]] double top1() const { return samples ? 100.0 * static_cast<double>(top1_correct) / static_cast<double>(samples) : 0.0; }
  [[nodiscard]] double top5() const { return samples ? 100.0 * static_cast<double>(top5_correct) / static_cast<double>(samples) : 0.0; }
  // Adds one batch of logits [N, classes]; ties break toward the lower class index (like torch.topk
  // on CPU for distinct values). NaN logits are an error, never a silent accuracy.
  void add(const Tensor& logits, const std::vector<std::int64_t>& labels);
};

// Collects per-sample statistics of the observed values into an Accumulator.
class CollectObserver : public runtime::Observer {
 public:
  CollectObserver(std::vector<std::string> points, Context& ctx) : acc_(std::move(points)), ctx_(ctx) {}
  void observe(std::size_t index, Tensor& value) override { acc_.add_batch(index, value, ctx_); }
  // Raw statistics, activation and activated statistics per sample while it is in cache.
  void observe_activation(std::size_t index, Tensor& value, const Activation& act, std::size_t activated_index,
                          Context& ctx) override;
  [[nodiscard]] const calib::Accumulator& accumulator() const { return acc_; }

 private:
  calib::Accumulator acc_;
  Context& ctx_;
};

// Quantize-dequantizes each observed value in place with fixed per-point parameters.
class FakeQuantObserver : public runtime::Observer {
 public:
  FakeQuantObserver(std::vector<quant::PointQuantizer> quantizers, Context& ctx)
      : params_(std::move(quantizers)), ctx_(ctx) {}
  // The seed's GEMMLOWP parameters for every point.
  FakeQuantObserver(const std::vector<quant::AffineQuantParams>& params, Context& ctx);
  void observe(std::size_t index, Tensor& value) override;
  // Relu and Clip fold into the quantizer's pass (quant::PostOp clamp), bit-identical to running them after.
  void observe_activation(std::size_t index, Tensor& value, const Activation& act, std::size_t activated_index,
                          Context& ctx) override;

 private:
  void quantize(std::size_t index, Tensor& value, const quant::PostOp& post);
  std::vector<quant::PointQuantizer> params_;
  Context& ctx_;
};

struct LoopOptions {
  bool progress = true;  // a progress bar on stderr
  std::string label;     // shown before the bar
};

// Runs every batch of the loader through the executor, calling `observer`, and scores top-1/top-5.
TopK run_dataset(runtime::Executor& exec, data::BatchLoader& loader, runtime::Observer* observer,
                 const LoopOptions& options);

}  // namespace aciq::eval
