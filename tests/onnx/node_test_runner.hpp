// Runs one ONNX backend node test (model.onnx + test_data_set_*) through the executor.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "aciq/runtime.hpp"

namespace aciq::testing {

inline const char* kNodeTestRoot = "/usr/share/libonnx-testdata/data/node";

// True when every op in the test's model is one aciq supports.
// With `opset_at_least`, the model's opset import is raised first, as run_node_test does.
bool node_test_ops_supported(const std::filesystem::path& dir, std::int64_t opset_at_least = 0);

// The op types the test's model uses (empty when it cannot be imported).
std::vector<std::string> node_test_op_types(const std::filesystem::path& dir,
                                            std::int64_t opset_at_least = 0);

// Runs with the model's ai.onnx opset import raised to `opset_at_least` when it is lower (the ONNX test
// data's oldest models declare opset 1-6, below the importer's range, for operators unchanged since).
// Empty on success; otherwise a description of the first mismatch or error.
// With constant_inputs, every input after the first becomes an initializer on both backends (the fast
// backend always does this): for operators that need those inputs at plan time, as Resize's scales.
std::string run_node_test(const std::filesystem::path& dir, runtime::Backend backend,
                          std::int64_t opset_at_least = 0, bool constant_inputs = false);

// Test names listed one per line (text after '#' ignored).
std::vector<std::string> read_list(const std::filesystem::path& file);

}  // namespace aciq::testing
