// Executor: plans a graph for concrete input shapes, runs kernels and hands observed values to an observer.
#pragma once

#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "aciq/core.hpp"
#include "aciq/graph.hpp"

namespace aciq::runtime {

enum class Backend : std::uint8_t {
  kReference,  // plain scalar kernels only: the oracle
  kFast,       // oneDNN convolution/pooling/GEMM, fused activations, SIMD elementwise
};

// Activation layouts on the fast backend (docs/layouts.md): kAuto plans channels-last (NHWC) when an op
// wants it (oneDNN's int8 convolution) or some 4-D float value's channels do not fill the CPU's channel
// blocks, else the channel-blocked layout; the others force one scheme (observed plans stay blocked).
enum class LayoutChoice : std::uint8_t { kAuto, kBlocked, kChannelsLast };

struct ExecutorOptions {
  Backend backend = Backend::kFast;
  LayoutChoice layout = LayoutChoice::kAuto;
};

// Receives observed float tensors (NCHW or NC) right after the node producing them ran, before
// any consumer reads them; it may modify the tensor in place (fake quantization does).
class Observer {
 public:
  virtual ~Observer() = default;
  // `index` is the position of the value in the list given to Executor::set_observed.
  virtual void observe(std::size_t index, Tensor& value) = 0;
  static constexpr std::size_t kNotObserved = static_cast<std::size_t>(-1);
  // The observed value's only consumer is the activation `act` (Relu/Clip/LeakyRelu), which the
  // executor fused behind the observer so the pair costs one pass over memory (docs/threading.md).
  // The observer must leave act(what observe() would have left) in `value`, and, unless
  // `activated_index` is kNotObserved, also observe that activated value as `activated_index`.
  // The default does exactly that in three steps: observe(index), a threaded activation pass,
  // observe(activated_index). Observers fold the steps into fewer passes where they can.
  virtual void observe_activation(std::size_t index, Tensor& value, const Activation& act,
                                  std::size_t activated_index, Context& ctx);
};

struct ValueMeta;

class Executor {
 public:
  Executor(graph::Graph g, Context& ctx, ExecutorOptions options = {});
  ~Executor();
  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;

  [[nodiscard]] const graph::Graph& graph() const { return graph_; }

  // Declares the values an observer will see; invalidates cached plans (fusion depends on it).
  void set_observed(std::vector<std::string> values);
  [[nodiscard]] const std::vector<std::string>& observed() const { return observed_; }

  // Runs the graph on inputs (in the order of graph().inputs) and returns the graph outputs.
  // Plans (shape inference, memory, primitives) are cached per input-shape signature.
  std::vector<Tensor> run(const std::vector<Tensor>& inputs, Observer* observer = nullptr);

  // One executed step of a plan: its node, the kernel it runs (Op::kernel) and, while profiling is on,
  // the time spent in it over every run since.
  struct StepReport {
    std::string node, op_type, kernel;
    double seconds = 0;
    std::int64_t calls = 0;
  };
  // Turns per-step timing on (a steady_clock read around each step) or off; turning it on clears
  // the times collected so far.
  void set_profiling(bool on);
  // The steps for these input shapes, in execution order.
  [[nodiscard]] std::vector<StepReport> step_report(const std::vector<Shape>& input_shapes);

  // Shapes of every float value for the given input shapes, e.g. to validate data against a model.
  [[nodiscard]] std::map<std::string, Shape> infer_shapes(const std::vector<Shape>& input_shapes);

  // The node names of the kernels a run executes for these input shapes, in order: activations and
  // residual Adds fused into their producer do not appear (tests and diagnostics).
  [[nodiscard]] std::vector<std::string> planned_steps(const std::vector<Shape>& input_shapes);

 private:
  struct Plan;
  Plan& plan_for(const std::vector<Tensor>& inputs);
  [[nodiscard]] std::vector<Tensor> placeholder_inputs(const std::vector<Shape>& input_shapes) const;
  void assign_layouts(Plan& p, const std::vector<std::vector<ValueMeta>>& in_metas,
                      const std::vector<std::vector<ValueMeta>>& out_metas,
                      const std::map<std::string, std::size_t>& observed,
                      const std::set<std::string>& graph_outputs);

  graph::Graph graph_;
  Context& ctx_;
  ExecutorOptions options_;
  std::vector<std::string> observed_;
  bool profiling_ = false;
  std::map<std::string, std::unique_ptr<Plan>> plans_;
};

// Multiply-accumulates one run performs in the graph's convolutions (Conv, ConvInteger, QLinearConv,
// ConvTranspose) and matrix products (Gemm, MatMul, MatMulInteger, QLinearMatMul), from value shapes
// such as Executor::infer_shapes returns; other ops are not counted (their work is not multiply-adds).
std::int64_t multiply_adds(const graph::Graph& g, const std::map<std::string, Shape>& shapes);

// Throws "<source>: input 'x' expects shape [...] (float32), data has [...] (dtype)" unless a tensor of
// `dtype` and `shape` fits graph input `in` (dims < 0 match anything). The executor checks every run's
// inputs with it; dataset passes check the data's batch shape with it before loading anything.
void require_input_fits(const graph::ValueInfo& in, DType dtype, const Shape& shape,
                        const std::string& source);

// One operator of the registry (src/runtime/ops/registry.hpp), as `aciq ops` and the docs show it.
struct OperatorInfo {
  std::string_view type;         // ONNX op type, default domain
  std::string_view family;       // the implementing file, src/runtime/ops/<family>.cpp
  std::string_view dtypes;       // element types of the main input, comma-separated
  std::string_view fast_kernel;  // what the fast backend runs; "" = the reference kernel on both
  std::int64_t since_opset = graph::kMinOpset;
};

// Every registered operator, sorted by type.
const std::vector<OperatorInfo>& operator_table();
// The op types the executor implements (for `aciq layers` and error messages), sorted.
const std::vector<std::string>& supported_ops();

}  // namespace aciq::runtime
