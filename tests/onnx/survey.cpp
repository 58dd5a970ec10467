// Developer tool: classifies every ONNX node test whose ops are supported as pass/fail on both backends.
#include <iostream>

#include "node_test_runner.hpp"

int main() {
  namespace fs = std::filesystem;
  std::vector<fs::path> dirs;
  for (const auto& e : fs::directory_iterator(aciq::testing::kNodeTestRoot)) dirs.push_back(e.path());
  std::sort(dirs.begin(), dirs.end());
  for (const auto& d : dirs) {
    if (!aciq::testing::node_test_ops_supported(d)) continue;
    const auto r = aciq::testing::run_node_test(d, aciq::runtime::Backend::kReference);
    const auto f = aciq::testing::run_node_test(d, aciq::runtime::Backend::kFast);
    std::cout << (r.empty() && f.empty() ? "PASS " : "FAIL ") << d.filename().string();
    if (!r.empty()) std::cout << "  ref: " << r;
    if (!f.empty()) std::cout << "  fast: " << f;
    std::cout << "\n";
  }
}
