// Evaluation: the dataset loop, observers for statistics and fake quantization, top-k metrics, reports.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "aciq/calib.hpp"
#include "aciq/data.hpp"
#include "aciq/dist.hpp"
#include "aciq/plan.hpp"
#include "aciq/policy.hpp"
#include "aciq/runtime.hpp"

namespace aciq::eval {

struct TopK {
  std::int64_t samples = 0;
  std::int64_t top1_correct = 0;
  std::int64_t top5_correct = 0;
  std::int64_t unlabeled = 0;  // samples without a label (counted in `samples`, never scored)
  [[nodiscard]] double top1() const {
    return samples ? 100.0 * static_cast<double>(top1_correct) / static_cast<double>(samples) : 0.0;
  }
  [[nodiscard]] double top5() const {
    return samples ? 100.0 * static_cast<double>(top5_correct) / static_cast<double>(samples) : 0.0;
  }
  // Adds one batch of logits [N, classes] (a batch whose labels are all -1 is only counted); ties break
  // toward the lower class index (like torch.topk on CPU for distinct values). NaN logits are an error, never
  // a silent accuracy.
  void add(const Tensor& logits, const std::vector<std::int64_t>& labels);
};

// Collects per-sample statistics (and, unless turned off, per-tensor histograms) of the observed values.
class CollectObserver : public runtime::Observer {
 public:
  CollectObserver(std::vector<std::string> points, Context& ctx, bool histograms = true,
                  bool channels = false)
      : acc_(std::move(points), histograms, channels), ctx_(ctx) {}
  void observe(std::size_t index, Tensor& value) override { acc_.add_batch(index, value, ctx_); }
  // Raw statistics, activation and activated statistics per sample while it is in cache.
  void observe_activation(std::size_t index, Tensor& value, const Activation& act,
                          std::size_t activated_index, Context& ctx) override;
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
  void observe_activation(std::size_t index, Tensor& value, const Activation& act,
                          std::size_t activated_index, Context& ctx) override;

 private:
  void quantize(std::size_t index, Tensor& value, const quant::PostOp& post);
  std::vector<quant::PointQuantizer> params_;
  Context& ctx_;
};

// The seed's `-sm no`: every point is quantized with the range its policy would compute from
// statistics, but from the current batch's own statistics (summarized over the batch's samples as a
// statistics file summarizes a dataset), so no statistics file is needed and results depend on the
// batch size, as in the seed.
class DynamicRangeObserver : public runtime::Observer {
 public:
  DynamicRangeObserver(std::vector<policy::QuantPoint> points, policy::PolicyOptions options, Context& ctx)
      : points_(std::move(points)), options_(std::move(options)), ctx_(ctx) {}
  void observe(std::size_t index, Tensor& value) override;

 private:
  std::vector<policy::QuantPoint> points_;
  policy::PolicyOptions options_;
  Context& ctx_;
};

struct LoopOptions {
  bool progress = true;  // a progress bar on stderr
  std::string label;     // shown before the bar
  // Called after every batch (e.g. dist::Group::poll, which throws when another rank failed).
  std::function<void()> between_batches;
  // Progress counts are multiplied by this: a rank's share shown as the whole job's estimate.
  std::int64_t progress_scale = 1;
};

// Runs every batch of the loader through the executor, calling `observer`, and scores top-1/top-5.
TopK run_dataset(runtime::Executor& exec, data::BatchLoader& loader, runtime::Observer* observer,
                 const LoopOptions& options);

// ---- Workflows: what the commands run, so the CLI only parses flags ------------------------------

// Throws (naming the model, the input and both shapes) unless batches of `ds` fit the model's single
// input; called before the first image is read.
void check_data_fits(const graph::Graph& g, const data::Dataset& ds, std::int64_t batch);

struct PassResult {
  TopK topk;
  double seconds = 0;
};

// How a plan is executed: fake quantization in float (the simulation), or the QOperator graph of its QDQ
// export on the integer kernels (QLinearConv, ConvInteger, ...; docs/int8.md). int8 needs onnx semantics.
enum class Engine : std::uint8_t { kSimulate, kInt8 };
Engine parse_engine(const std::string& name);  // "simulate" | "int8"; throws naming the flag

// What a dataset pass simulates.
struct Simulation {
  const plan::QuantPlan* plan = nullptr;  // fp32 when null (and not dynamic)
  Engine engine = Engine::kSimulate;      // how `plan` runs
  // The seed's -sm no: these points, with ranges from each batch (weights quantized per `dynamic`).
  std::optional<policy::PolicyOptions> dynamic;
};

// One pass over the loader's samples: fp32, a quantization plan's simulation, or dynamic ranges.
PassResult evaluate(graph::Graph g, const runtime::ExecutorOptions& xo, Context& ctx,
                    const std::shared_ptr<const data::Dataset>& ds, const data::LoaderOptions& lo,
                    const Simulation& sim, const LoopOptions& loop);

// "fashion-mnist train (...)" plus " (samples a..b)" when offset or limit select part of it: the
// data description a statistics file records.
std::string describe_selection(const data::Dataset& ds, std::int64_t offset, std::int64_t limit,
                               std::int64_t samples);

// Collects per-sample statistics at every policy::collection_points value over the loader's samples
// (recording the sample range), and scores the fp32 pass into `fp32` when given. With `channel_stats`,
// every point also gets per-channel summaries.
calib::StatsFile collect_statistics(graph::Graph g, const std::string& model_path,
                                    const runtime::ExecutorOptions& xo, Context& ctx,
                                    const std::shared_ptr<const data::Dataset>& ds,
                                    const data::LoaderOptions& lo, const LoopOptions& loop, TopK* fp32,
                                    bool channel_stats = false);

// ---- Clipping analysis (`aciq analyze`) -----------------------------------------------------------

// One quantization point as analyze reports it: the seed's statistics (means over samples), its two
// analytical alphas and MSE estimates, and the measured MSE of every calibrator's quantizer.
struct AnalyzedPoint {
  policy::QuantPoint point;
  double b = 0, std = 0, sigma_est = 0, mean_min = 0, mean_max = 0;
  // Empty where the policy does not clip the point (fully-connected layers).
  std::optional<double> alpha_laplace, alpha_gaus, estimate_laplace, estimate_gaus;
  std::string mix_choice;                  // "lap" | "gaus"; "" where unclipped
  std::vector<std::optional<double>> mse;  // one per ClippingAnalysis::methods entry; nullopt where unclipped
};
struct ClippingAnalysis {
  std::vector<const calib::Calibrator*> methods;  // every calibrator the statistics allow, table order
  std::vector<AnalyzedPoint> points;
  std::int64_t samples = 0;
};

// Runs the fp32 network over the loader's samples and, at every quantization point of `options`, sums
// the squared error each calibrator's quantizer (the grid eval would run, `options.semantics` included)
// would cause, leaving the values untouched. Fixed 64K-element chunks added in order: the result does
// not depend on the thread count. Throws before the first batch when a point has no statistics (the
// caller checks that the data fits the model, check_data_fits).
ClippingAnalysis analyze_clipping(graph::Graph g, const calib::StatsFile& stats,
                                  const std::string& stats_path, const plan::PlanOptions& options,
                                  const runtime::ExecutorOptions& xo, Context& ctx,
                                  const std::shared_ptr<const data::Dataset>& ds,
                                  const data::LoaderOptions& lo, const LoopOptions& loop);

// ---- Tensor files: run a model over .npy inputs, compare two outputs ----------------------------------

struct TensorRunResult {
  std::int64_t samples = 0;
  double seconds = 0;                // the passes through the model, reading and writing included
  std::vector<std::string> written;  // the output files, in graph-output order
};

// Runs the model (fp32 or a plan's simulation) over every row of `input` in batches of `batch`, writing
// graph output k, stacked along N, to outputs[k] ("" skips it). The input's dtype and per-sample shape
// are checked against the model, and every output path for writability, before the first batch runs.
TensorRunResult run_tensors(graph::Graph g, const runtime::ExecutorOptions& xo, Context& ctx,
                            const data::NpyArray& input, std::int64_t batch, const Simulation& sim,
                            const std::vector<std::string>& outputs, const LoopOptions& loop);

// The usual error metrics of a quantized (or other) output against a reference of the same shape.
struct TensorComparison {
  std::int64_t elements = 0;
  std::int64_t identical = 0;  // elements exactly equal (how often an integer path differs at all)
  double max_abs = 0, mean_abs = 0;
  double max_abs_ref = 0;  // the reference's largest magnitude (scale for max_abs)
  double sqnr_db = 0;      // 10 log10(sum ref^2 / sum (ref - out)^2); +inf when identical
  double cosine = 0;       // <ref, out> / (|ref| |out|)
  std::int64_t argmax_agree = 0, argmax_total = 0;  // positions along `axis` with the same argmax
};
// Both tensors are converted to float; shapes must be equal. `axis` may be negative.
TensorComparison compare_tensors(const Tensor& ref, const Tensor& out, std::int64_t axis);

// ---- Data-parallel passes: a dist::Group's rank runs its shard, the results are combined ----------

// This rank's contiguous part of the selected samples [begin, end) as loader options.
data::LoaderOptions shard_loader(data::LoaderOptions lo, const dist::Group& group, std::int64_t begin,
                                 std::int64_t end);
// The sum of every rank's counts (collective).
TopK combine(dist::Group& group, const TopK& mine);
// Every rank's statistics (null: an empty shard) merged in rank order — exact, so the bytes of one
// process over all samples — with the data description one process would have written (collective).
calib::StatsFile combine(dist::Group& group, const calib::StatsFile* mine, const data::Dataset& ds,
                         std::int64_t offset, std::int64_t limit);

}  // namespace aciq::eval
