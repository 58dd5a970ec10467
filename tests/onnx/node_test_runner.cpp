// ONNX backend node-test runner: loads inputs/outputs .pb files and compares with rtol 1e-3, atol 1e-7.
#include "node_test_runner.hpp"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>

#include "aciq/onnx.hpp"
#include "onnx/onnx_pb.h"

namespace aciq::testing {

namespace fs = std::filesystem;

namespace {
graph::Graph load_restamped(const fs::path& file, std::int64_t opset_at_least);
}  // namespace

bool node_test_ops_supported(const fs::path& dir, std::int64_t opset_at_least) {
  try {
    auto g = load_restamped(dir / "model.onnx", opset_at_least);
    const auto& ops = runtime::supported_ops();
    for (const auto& n : g.nodes) {
      if (std::find(ops.begin(), ops.end(), n.op_type) == ops.end()) return false;
    }
    return true;
  } catch (const Error& e) {
    const std::string msg = e.what();
    // Models we cannot even import (unsupported dtypes, opset) count as unsupported.
    return false;
  }
}

namespace {
std::vector<fs::path> sorted_files(const fs::path& dir, const std::string& prefix) {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().filename().string().rfind(prefix, 0) == 0) out.push_back(e.path());
  }
  // input_10 after input_9: sort by the numeric suffix.
  std::sort(out.begin(), out.end(), [&](const fs::path& a, const fs::path& b) {
    auto num = [&](const fs::path& p) { return std::stoi(p.stem().string().substr(prefix.size())); };
    return num(a) < num(b);
  });
  return out;
}
}  // namespace

namespace {
graph::Graph load_restamped(const fs::path& file, std::int64_t opset_at_least) {
  if (opset_at_least <= 0) return onnx_import::load_model(file.string(), {.fold_batchnorm = false});
  onnx::ModelProto m;
  std::ifstream in(file, std::ios::binary);
  if (!m.ParseFromIstream(&in)) fail(file.string() + ": not a ModelProto");
  for (auto& op : *m.mutable_opset_import()) {
    if ((op.domain().empty() || op.domain() == "ai.onnx") && op.version() < opset_at_least)
      op.set_version(opset_at_least);
  }
  return onnx_import::load_model_from_bytes(m.SerializeAsString(), file.string(), {.fold_batchnorm = false});
}
}  // namespace

std::vector<std::string> node_test_op_types(const fs::path& dir, std::int64_t opset_at_least) {
  std::vector<std::string> types;
  try {
    for (const auto& n : load_restamped(dir / "model.onnx", opset_at_least).nodes) types.push_back(n.op_type);
  } catch (const Error&) {
    return {};
  }
  return types;
}

std::string run_node_test(const fs::path& dir, runtime::Backend backend, std::int64_t opset_at_least,
                          bool constant_inputs) {
  try {
    const auto model = load_restamped(dir / "model.onnx", opset_at_least);
    Context ctx(1);
    std::vector<fs::path> sets;
    for (const auto& e : fs::directory_iterator(dir)) {
      if (e.is_directory() && e.path().filename().string().rfind("test_data_set_", 0) == 0)
        sets.push_back(e.path());
    }
    std::sort(sets.begin(), sets.end());
    if (sets.empty()) return "no test_data_set directories";
    for (const auto& set : sets) {
      std::vector<Tensor> inputs;
      for (const auto& f : sorted_files(set, "input_"))
        inputs.push_back(onnx_import::load_tensor_file(f.string()));
      auto g = model;
      if (backend == runtime::Backend::kFast || constant_inputs) {
        // Real models carry weights as initializers; the fast path only builds oneDNN primitives
        // for constant weights, so turn every input after the first into an initializer.
        for (std::size_t i = inputs.size(); i-- > 1;) {
          if (i >= g.inputs.size()) continue;
          g.initializers[g.inputs[i].name] = inputs[i];
          g.inputs.erase(g.inputs.begin() + static_cast<std::ptrdiff_t>(i));
          inputs.erase(inputs.begin() + static_cast<std::ptrdiff_t>(i));
        }
      }
      runtime::Executor exec(std::move(g), ctx, {.backend = backend});
      const auto outputs = exec.run(inputs);
      const auto expected_files = sorted_files(set, "output_");
      if (expected_files.size() > outputs.size()) return "fewer outputs than expected";
      for (std::size_t i = 0; i < expected_files.size(); ++i) {
        Tensor want = onnx_import::load_tensor_file(expected_files[i].string());
        const Tensor& got = outputs[i];
        if (want.shape() != got.shape()) {
          return set.filename().string() + " output " + std::to_string(i) + ": shape " +
                 shape_str(got.shape()) + " expected " + shape_str(want.shape());
        }
        if (want.dtype() != got.dtype()) return "output dtype mismatch";
        if (want.dtype() != DType::kFloat32) {
          if (want.to_i64_vector() != got.to_i64_vector()) return "integer output mismatch";
          continue;
        }
        for (std::int64_t k = 0; k < want.numel(); ++k) {
          const float w = want.f32()[k], v = got.f32()[k];
          if (std::isnan(w) && std::isnan(v)) continue;
          if (std::isinf(w) && w == v) continue;
          if (!(std::fabs(w - v) <= 1e-7 + 1e-3 * std::fabs(w))) {
            std::ostringstream os;
            os << set.filename().string() << " output " << i << " element " << k << ": got " << v
               << " expected " << w;
            return os.str();
          }
        }
      }
    }
    return "";
  } catch (const std::exception& e) {
    return std::string("error: ") + e.what();
  }
}

std::vector<std::string> read_list(const fs::path& file) {
  std::ifstream in(file);
  std::vector<std::string> out;
  std::string line;
  while (std::getline(in, line)) {
    line = line.substr(0, line.find('#'));
    line.erase(std::remove_if(line.begin(), line.end(), ::isspace), line.end());
    if (!line.empty()) out.push_back(line);
  }
  return out;
}

}  // namespace aciq::testing
