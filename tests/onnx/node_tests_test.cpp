// Runs the ONNX project's backend node tests (Debian libonnx-testdata) on the reference and fast paths.
#include <gtest/gtest.h>

#include <set>

#include "node_test_runner.hpp"

namespace aciq::testing {
namespace {

namespace fs = std::filesystem;

const fs::path kLists = fs::path(ACIQ_SOURCE_DIR) / "tests/onnx";

std::vector<std::string> passing() { return read_list(kLists / "node_tests_pass.txt"); }

class NodeTest : public ::testing::TestWithParam<std::string> {};

TEST_P(NodeTest, Reference) {
  EXPECT_EQ(run_node_test(fs::path(kNodeTestRoot) / GetParam(), runtime::Backend::kReference), "");
}
TEST_P(NodeTest, Fast) {
  EXPECT_EQ(run_node_test(fs::path(kNodeTestRoot) / GetParam(), runtime::Backend::kFast), "");
}

INSTANTIATE_TEST_SUITE_P(Onnx, NodeTest, ::testing::ValuesIn(passing()),
                         [](const auto& info) { return info.param; });

// Every node test whose operators aciq supports is either expected to pass or listed, with a
// reason, as a known gap; a new supported op cannot silently skip its conformance tests.
TEST(NodeTestInventory, EverySupportedTestIsClassified) {
  std::set<std::string> known;
  for (const auto& n : passing()) known.insert(n);
  for (const auto& n : read_list(kLists / "node_tests_known_gaps.txt")) known.insert(n);
  ASSERT_TRUE(fs::is_directory(kNodeTestRoot)) << "install libonnx-testdata (scripts/install-deps)";
  std::vector<std::string> unclassified;
  for (const auto& e : fs::directory_iterator(kNodeTestRoot)) {
    const std::string name = e.path().filename().string();
    if (!known.count(name) && node_test_ops_supported(e.path())) unclassified.push_back(name);
  }
  std::sort(unclassified.begin(), unclassified.end());
  std::string all;
  for (const auto& n : unclassified) all += n + "\n";
  EXPECT_TRUE(unclassified.empty()) << "unclassified node tests:\n" << all;
}

}  // namespace
}  // namespace aciq::testing
