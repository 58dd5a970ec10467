// Shared fixture of the plan and export tests: the bundled ResNet-20 and statistics of a synthetic batch.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "../onnx/model_builder.hpp"
#include "aciq/eval.hpp"
#include "aciq/onnx.hpp"
#include "aciq/plan.hpp"

namespace aciq::testing {

inline std::string resnet20_path() { return std::string(ACIQ_SOURCE_DIR) + "/models/resnet20.onnx"; }

// A deterministic batch of n 1x28x28 images with values in [-1, 2.5] (the normalized Fashion-MNIST range).
inline Tensor synthetic_batch(std::int64_t n, unsigned seed) {
  const auto v = random_values(static_cast<std::size_t>(n * 28 * 28), seed, -1.0f, 2.5f);
  return Tensor::from_f32({n, 1, 28, 28}, v);
}

inline calib::StatsFile collect_stats(const graph::Graph& g, const Tensor& batch, Context& ctx,
                                      bool channels = false) {
  const auto points = policy::collection_points(g);
  runtime::Executor exec(g, ctx, {});
  exec.set_observed(points);
  eval::CollectObserver col(points, ctx, true, channels);
  exec.run({batch}, &col);
  calib::StatsFile f;
  f.model_hash = g.model_hash;
  f.model_path = g.source;
  f.data_source = "synthetic";
  f.samples = batch.dim(0);
  f.points = col.accumulator().points();
  return f;
}

inline plan::PlanOptions plan_options(int bits, quant::ClipMethod clip, plan::Semantics semantics,
                                      plan::WeightGranularity weights, policy::Placement placement) {
  plan::PlanOptions o;
  o.policy.activation_bits = bits;
  o.policy.clip = clip;
  o.policy.placement = placement;
  o.semantics = semantics;
  o.weights = weights;
  return o;
}

// Runs the plan's simulation (weights quantized, observers on) and returns the first output.
inline Tensor simulate(graph::Graph g, const plan::QuantPlan& p, const Tensor& batch, Context& ctx,
                       runtime::Backend backend) {
  auto sim = plan::apply_plan(g, p);
  runtime::Executor exec(std::move(g), ctx, {.backend = backend});
  exec.set_observed(sim.points);
  eval::FakeQuantObserver fq(sim.quantizers, ctx);
  return exec.run({batch}, &fq).at(0);
}

// The bundled ResNet-20 with statistics of a synthetic batch, and plans built from them.
struct Resnet20 : ::testing::Test {
  Context ctx{2};
  graph::Graph g = onnx_import::load_model(resnet20_path());
  calib::StatsFile stats = collect_stats(g, synthetic_batch(8, 7), ctx);
  plan::QuantPlan make(int bits, plan::WeightGranularity wg,
                       policy::Placement placement = policy::Placement::kDeploy,
                       plan::Semantics sem = plan::Semantics::kOnnx) const {
    return plan::build_plan(g, stats, plan_options(bits, quant::ClipMethod::kLaplace, sem, wg, placement),
                            "s.json");
  }
};

}  // namespace aciq::testing
