// Runs the ONNX project's backend node tests (Debian libonnx-testdata) on the reference and fast paths.
#include <gtest/gtest.h>

#include <cctype>
#include <map>
#include <set>

#include "node_test_runner.hpp"

namespace aciq::testing {
namespace {

namespace fs = std::filesystem;

const fs::path kLists = fs::path(ACIQ_SOURCE_DIR) / "tests/onnx";

std::vector<std::string> passing() { return read_list(kLists / "node_tests_pass.txt"); }
// Tests whose models declare an opset below 7 for an operator whose semantics did not change up to
// opset 7: run with the import raised to 7 (NodeTestOldOpset).
// Tests whose extra inputs the operator needs at plan time (float Resize scales: the output shape
// depends on them), run with those inputs as initializers, as exported models carry them.
std::vector<std::string> constant_inputs() { return read_list(kLists / "node_tests_constant_inputs.txt"); }
std::vector<std::string> old_opset() { return read_list(kLists / "node_tests_old_opset.txt"); }

class NodeTest : public ::testing::TestWithParam<std::string> {};

TEST_P(NodeTest, Reference) {
  EXPECT_EQ(run_node_test(fs::path(kNodeTestRoot) / GetParam(), runtime::Backend::kReference), "");
}
TEST_P(NodeTest, Fast) {
  EXPECT_EQ(run_node_test(fs::path(kNodeTestRoot) / GetParam(), runtime::Backend::kFast), "");
}

INSTANTIATE_TEST_SUITE_P(Onnx, NodeTest, ::testing::ValuesIn(passing()),
                         [](const auto& info) { return info.param; });

class NodeTestConstantInputs : public ::testing::TestWithParam<std::string> {};

TEST_P(NodeTestConstantInputs, Reference) {
  EXPECT_EQ(run_node_test(fs::path(kNodeTestRoot) / GetParam(), runtime::Backend::kReference, 0, true), "");
}
TEST_P(NodeTestConstantInputs, Fast) {
  EXPECT_EQ(run_node_test(fs::path(kNodeTestRoot) / GetParam(), runtime::Backend::kFast, 0, true), "");
}

INSTANTIATE_TEST_SUITE_P(Onnx, NodeTestConstantInputs, ::testing::ValuesIn(constant_inputs()),
                         [](const auto& info) { return info.param; });

class NodeTestOldOpset : public ::testing::TestWithParam<std::string> {};

TEST_P(NodeTestOldOpset, Reference) {
  EXPECT_EQ(run_node_test(fs::path(kNodeTestRoot) / GetParam(), runtime::Backend::kReference, 7), "");
}
TEST_P(NodeTestOldOpset, Fast) {
  EXPECT_EQ(run_node_test(fs::path(kNodeTestRoot) / GetParam(), runtime::Backend::kFast, 7), "");
}

INSTANTIATE_TEST_SUITE_P(Onnx, NodeTestOldOpset, ::testing::ValuesIn(old_opset()),
                         [](const auto& info) { return info.param; });

// The pytorch-converted and pytorch-operator sets of the same package (module- and operator-level exports
// of PyTorch, opset 6 mostly): run with the opset raised to 7, on both backends.
const fs::path kTestDataRoot = fs::path(kNodeTestRoot).parent_path();
std::vector<std::string> pytorch_passing() { return read_list(kLists / "pytorch_tests_pass.txt"); }

class PytorchTest : public ::testing::TestWithParam<std::string> {};

TEST_P(PytorchTest, Reference) {
  EXPECT_EQ(run_node_test(kTestDataRoot / GetParam(), runtime::Backend::kReference, 7), "");
}
TEST_P(PytorchTest, Fast) {
  EXPECT_EQ(run_node_test(kTestDataRoot / GetParam(), runtime::Backend::kFast, 7), "");
}

INSTANTIATE_TEST_SUITE_P(Onnx, PytorchTest, ::testing::ValuesIn(pytorch_passing()), [](const auto& info) {
  std::string name = info.param;
  for (char& c : name)
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  return name;
});

// Every test of the two sets passes or is a listed gap with its reason.
TEST(PytorchTestInventory, EveryTestIsClassified) {
  std::set<std::string> known;
  for (const auto& n : pytorch_passing()) known.insert(n);
  for (const auto& n : read_list(kLists / "pytorch_tests_known_gaps.txt")) known.insert(n);
  std::vector<std::string> unclassified;
  std::size_t total = 0;
  for (const char* set : {"pytorch-converted", "pytorch-operator"}) {
    ASSERT_TRUE(fs::is_directory(kTestDataRoot / set)) << "install libonnx-testdata (scripts/install-deps)";
    for (const auto& e : fs::directory_iterator(kTestDataRoot / set)) {
      const std::string name = std::string(set) + "/" + e.path().filename().string();
      ++total;
      if (!known.count(name)) unclassified.push_back(name);
    }
  }
  EXPECT_EQ(total, 117u);  // 82 converted modules + 35 operators in Debian 12's package
  std::sort(unclassified.begin(), unclassified.end());
  std::string all;
  for (const auto& n : unclassified) all += n + "\n";
  EXPECT_TRUE(unclassified.empty()) << "unclassified pytorch tests:\n" << all;
}

// Every node test whose operators aciq supports is either expected to pass or listed, with a
// reason, as a known gap; a new supported op cannot silently skip its conformance tests.
TEST(NodeTestInventory, EverySupportedTestIsClassified) {
  std::set<std::string> known;
  for (const auto& n : passing()) known.insert(n);
  for (const auto& n : read_list(kLists / "node_tests_known_gaps.txt")) known.insert(n);
  for (const auto& n : constant_inputs()) known.insert(n);
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

// Every registered operator runs in at least one passing conformance test, on the reference kernel and
// the fast path: an operator cannot be registered without a reference implementation that the ONNX
// test data confirms.
TEST(OperatorRegistry, EveryOperatorHasAPassingNodeTest) {
  std::set<std::string> covered;
  for (const auto& name : passing()) {
    for (const auto& t : node_test_op_types(fs::path(kNodeTestRoot) / name)) covered.insert(t);
  }
  for (const auto& name : constant_inputs()) {
    for (const auto& t : node_test_op_types(fs::path(kNodeTestRoot) / name)) covered.insert(t);
  }
  for (const auto& name : old_opset()) {
    for (const auto& t : node_test_op_types(fs::path(kNodeTestRoot) / name, 7)) covered.insert(t);
  }
  // Operators the test data has no model for, with the unit test that checks them instead.
  const std::map<std::string, std::string> unit_tested = {
      {"Mish", "MathKernels.MishMatchesClosedForm"},
      {"Gelu", "Opset21.Gelu"},
      {"GroupNormalization", "Opset21.GroupNormalization"}};
  std::string missing;
  for (const auto& op : runtime::supported_ops()) {
    if (!covered.count(op) && !unit_tested.count(op)) missing += op + " ";
  }
  EXPECT_EQ(missing, "") << "operators without a passing node test";
}

}  // namespace
}  // namespace aciq::testing
