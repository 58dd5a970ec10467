// Developer tool: classifies every ONNX backend test of a directory (default: the node tests) as
// PASS/FAIL on both backends, and, with --all, the tests using an unsupported operator as UNSUPPORTED.
//   onnx_node_survey [DIR] [--all]
#include <algorithm>
#include <iostream>
#include <string>

#include "node_test_runner.hpp"

int main(int argc, char** argv) {
  namespace fs = std::filesystem;
  fs::path root = aciq::testing::kNodeTestRoot;
  bool all = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--all") {
      all = true;
    } else {
      root = a;
    }
  }
  std::vector<fs::path> dirs;
  for (const auto& e : fs::directory_iterator(root)) dirs.push_back(e.path());
  std::sort(dirs.begin(), dirs.end());
  for (const auto& d : dirs) {
    if (!aciq::testing::node_test_ops_supported(d, 7)) {
      if (all) {
        std::cout << "UNSUPPORTED " << d.filename().string() << " ops:";
        for (const auto& t : aciq::testing::node_test_op_types(d, 7)) std::cout << ' ' << t;
        std::cout << "\n";
      }
      continue;
    }
    const auto r = aciq::testing::run_node_test(d, aciq::runtime::Backend::kReference, 7);
    const auto f = aciq::testing::run_node_test(d, aciq::runtime::Backend::kFast, 7);
    std::cout << (r.empty() && f.empty() ? "PASS " : "FAIL ") << d.filename().string();
    if (!r.empty()) std::cout << "  ref: " << r;
    if (!f.empty()) std::cout << "  fast: " << f;
    std::cout << "\n";
  }
}
