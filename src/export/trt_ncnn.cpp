// TensorRT INT8 calibration cache and ncnn int8 .table writers (and readers, to check exports).
#include <fmt/format.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <sstream>

#include "aciq/export.hpp"

namespace aciq::exporter {

namespace {

// Both formats are symmetric int8: the plan's window is turned into +-amax with amax = max(|lo|, |hi|).
double amax_of(const plan::TensorQuant& t, std::size_t c) {
  return std::max(std::abs(t.lo.at(c)), std::abs(t.hi.at(c)));
}

void require_8bit(const plan::TensorQuant& t, const char* format) {
  if (t.bits != 8)
    fail(fmt::format(
        "export {}: tensor '{}' is quantized to {} bits; {} holds int8 scales only (calibrate with "
        "--qtype int8, --fc-bits 8 and --wbits 8)",
        format, t.tensor, t.bits, format));
}

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t\r") - b + 1);
}

}  // namespace

namespace {
// The runtimes quantize the original weights; a simulation-only correction would not reach them.
void require_deployable(const plan::QuantPlan& plan, const char* what) {
  if (plan.options.bias_correction == plan::BiasCorrection::kPaper)
    fail(std::string(what) +
         ": --bias-correction paper moves the weights off the integer grid (simulation only); calibrate "
         "without it to export");
  if (plan.options.bias_correction == plan::BiasCorrection::kDeploy)
    fail(std::string(what) +
         ": --bias-correction deploy changes the weight scales and biases, and this runtime quantizes the "
         "original weights and biases itself from the table; export qdq or qoperator instead");
}
}  // namespace

std::string tensorrt_cache(const graph::Graph& g, const plan::QuantPlan& plan) {
  require_deployable(plan, "export tensorrt");
  plan.require_graph(g, plan.model_path);
  // TensorRT 8.6.1 writes this header for IInt8EntropyCalibrator2; readers check the algorithm name.
  std::string out = "TRT-8601-EntropyCalibration2\n";
  for (const auto* t : plan.activations()) {
    require_8bit(*t, "tensorrt");
    if (t->tensor.find(':') != std::string::npos)
      fail("export tensorrt: tensor name '" + t->tensor +
           "' contains ':', which calibration cache readers split on");
    const float scale = static_cast<float>(amax_of(*t, 0) / 127.0);
    std::uint32_t bits = 0;
    std::memcpy(&bits, &scale, sizeof bits);
    out += fmt::format("{}: {:08x}\n", t->tensor, bits);
  }
  return out;
}

std::vector<NamedScales> parse_tensorrt_cache(const std::string& text, const std::string& source) {
  std::istringstream in(text);
  std::string line;
  if (!std::getline(in, line) || line.rfind("TRT-", 0) != 0)
    fail(source + ": not a TensorRT calibration cache (no TRT- header)");
  std::vector<NamedScales> out;
  int lineno = 1;
  while (std::getline(in, line)) {
    ++lineno;
    if (trim(line).empty()) continue;
    const auto colon = line.find(':');
    if (colon == std::string::npos) fail(fmt::format("{}:{}: no ':' in '{}'", source, lineno, line));
    const std::string hex = trim(line.substr(colon + 1));
    if (hex.empty() || hex.size() > 8 || hex.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos)
      fail(fmt::format("{}:{}: '{}' is not a hexadecimal float32", source, lineno, hex));
    const auto bits = static_cast<std::uint32_t>(std::stoul(hex, nullptr, 16));
    float scale = 0;
    std::memcpy(&scale, &bits, sizeof scale);
    out.push_back({line.substr(0, colon), {scale}});
  }
  return out;
}

std::string ncnn_table(const graph::Graph& g, const plan::QuantPlan& plan) {
  require_deployable(plan, "export ncnn");
  plan.require_graph(g, plan.model_path);
  std::string weights, blobs;
  for (const auto& n : g.nodes) {
    // ncnn runs Convolution, ConvolutionDepthWise and InnerProduct in int8; MatMul stays float there.
    if (n.op_type != "Conv" && n.op_type != "Gemm") continue;
    const plan::TensorQuant* w = n.has_input(1) ? plan.find(n.inputs[1], plan::TensorKind::kWeight) : nullptr;
    const plan::TensorQuant* x = plan.find(n.inputs.at(0), plan::TensorKind::kActivation);
    if (!w && !x) continue;
    if (!w)
      fail("export ncnn: " + n.describe() +
           " has a quantized input but float weights (calibrate with --wbits 8)");
    if (!x)
      fail("export ncnn: the input '" + n.inputs[0] + "' of " + n.describe() +
           " is not quantized; ncnn needs the input scale of every int8 layer (calibrate with --placement "
           "inputs or deploy)");
    require_8bit(*w, "ncnn");
    require_8bit(*x, "ncnn");
    // One scale per output channel (ncnn's layer weight_data_int8_scales); per-tensor plans repeat theirs.
    const Tensor& wt = *g.initializer(n.inputs[1]);
    const std::int64_t channels =
        w->per_channel()
            ? static_cast<std::int64_t>(w->channels())
            : wt.dim(n.op_type == "Conv" || (n.op_type == "Gemm" && n.get_int("transB", 0)) ? 0
                                                                                            : wt.rank() - 1);
    weights += n.name + "_param_0";
    for (std::int64_t c = 0; c < channels; ++c) {
      const double amax = amax_of(*w, w->per_channel() ? static_cast<std::size_t>(c) : 0);
      weights += fmt::format(" {:f}", amax > 0 ? 127.0 / amax : 0.0);
    }
    weights += " \n";
    const double amax = amax_of(*x, 0);
    blobs += fmt::format("{} {:f} \n", n.name, amax > 0 ? 127.0 / amax : 0.0);
  }
  if (weights.empty()) fail("export ncnn: the plan quantizes no Conv/Gemm layer");
  return weights + blobs;
}

std::vector<NamedScales> parse_ncnn_table(const std::string& text, const std::string& source) {
  std::istringstream in(text);
  std::string line;
  std::vector<NamedScales> out;
  int lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    std::istringstream ls(line);
    NamedScales e;
    if (!(ls >> e.name)) continue;
    std::string tok;
    while (ls >> tok) {
      try {
        std::size_t used = 0;
        e.scales.push_back(std::stof(tok, &used));
        if (used != tok.size()) throw std::invalid_argument(tok);
      } catch (const std::exception&) {
        fail(fmt::format("{}:{}: '{}' is not a number", source, lineno, tok));
      }
    }
    if (e.scales.empty()) fail(fmt::format("{}:{}: '{}' has no scales", source, lineno, e.name));
    out.push_back(std::move(e));
  }
  return out;
}

}  // namespace aciq::exporter
