// Runs one ONNX backend node test (model.onnx + test_data_set_*) through the executor.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "aciq/runtime.hpp"

namespace aciq::testing {

inline const char* kNodeTestRoot = "/usr/share/libonnx-testdata/data/node";

// True when every op in the test's model is one aciq supports.
bool node_test_ops_supported(const std::filesystem::path& dir);

// Empty on success; otherwise a description of the first mismatch or error.
std::string run_node_test(const std::filesystem::path& dir, runtime::Backend backend);

// Test names listed one per line (text after '#' ignored).
std::vector<std::string> read_list(const std::filesystem::path& file);

}  // namespace aciq::testing
