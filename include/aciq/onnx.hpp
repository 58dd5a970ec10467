// ONNX import: ModelProto files and TensorProto files into aciq's graph IR and tensors.
#pragma once

#include <string>

#include "aciq/core.hpp"
#include "aciq/graph.hpp"

namespace aciq::onnx_import {

struct ImportOptions {
  bool fold_batchnorm = true;
};

// Reads and validates an ONNX model file; the error names the file and what is wrong.
graph::Graph load_model(const std::string& path, const ImportOptions& options = {});
// Same, from bytes in memory (the fuzzer's entry point); `source` is used in messages.
graph::Graph load_model_from_bytes(const std::string& bytes, const std::string& source,
                                   const ImportOptions& options = {});
// Reads a serialized TensorProto (.pb), as the ONNX backend test data stores inputs/outputs.
Tensor load_tensor_file(const std::string& path);

}  // namespace aciq::onnx_import
