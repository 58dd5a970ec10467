// End-to-end tests of the aciq binary: one-line errors for bad input, collect/eval round trips,
// reproducibility, and fp32 accuracy parity with PyTorch on the bundled reference models.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>

#include "cli_util.hpp"

namespace aciq::testing {
namespace {

TEST(CliErrors, MissingModel) {
  expect_one_line_error(aciq("eval --model /nonexistent/m.onnx -q"), "/nonexistent/m.onnx: cannot open");
}

TEST(CliErrors, CorruptModel) {
  const fs::path p = scratch() / "corrupt.onnx";
  write_bytes(p, "this is not a protobuf \xff\xff\xff");
  expect_one_line_error(aciq("eval -q --model " + p.string()), p.string() + ": not a valid ONNX model");
  const fs::path t = scratch() / "truncated.onnx";
  const std::string good = tiny_mnist_model();
  write_bytes(t, good.substr(0, good.size() / 2));
  expect_one_line_error(aciq("eval -q --limit 10 --model " + t.string()), t.string());
}

TEST(CliErrors, UnsupportedOperator) {
  auto m = make_model();
  add_input(m, "input", {-1, 1, 28, 28});
  add_node(m, "LSTM", {"input"}, {"y"}, "rnn");
  add_output(m, "y");
  std::string s;
  m.SerializeToString(&s);
  const fs::path p = scratch() / "lstm.onnx";
  write_bytes(p, s);
  expect_one_line_error(aciq("eval -q --model " + p.string()),
                        p.string() + ": unsupported operator LSTM in node 'rnn'");
}

TEST(CliErrors, DataDoesNotFitTheModel) {
  const fs::path p = scratch() / "rgb.onnx";
  write_bytes(p, [] {
    std::string s;
    conv_bn_model().SerializeToString(&s);
    return s;
  }());
  expect_one_line_error(aciq("eval -q --limit 8 --model " + p.string()),
                        p.string() + ": input 'x' expects shape [-1,3,8,8] (float32), data has [8,1,28,28]");
}

TEST(CliErrors, CorruptGzipAndIdxHeader) {
  const fs::path model = tiny_model_file();
  const std::string labels = "/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz";
  const std::string images = slurp("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz");
  const fs::path gz = scratch() / "cut-images.gz";
  write_bytes(gz, images.substr(0, images.size() / 3));
  expect_one_line_error(
      aciq("eval -q --model " + model.string() + " --data idx:" + gz.string() + "," + labels), gz.string());
  const fs::path hdr = scratch() / "lying-images.idx";
  std::string header("\x00\x00\x08\x03\x00\x00\x27\x10\x00\x00\x00\x1c\x00\x00\x00\x1c",
                     16);  // 10000x28x28, no data
  write_bytes(hdr, header + std::string(100, '\0'));
  expect_one_line_error(
      aciq("eval -q --model " + model.string() + " --data idx:" + hdr.string() + "," + labels), hdr.string());
}

TEST(CliErrors, ImageFolderProblems) {
  // An RGB model whose input the 8x8 crops fit, so the pass gets as far as reading the images.
  const fs::path model = scratch() / "rgb-imgs.onnx";
  write_bytes(model, [] {
    std::string s;
    conv_bn_model().SerializeToString(&s);
    return s;
  }());
  const fs::path root = scratch() / "imgs";
  fs::create_directories(root / "val" / "a");
  fs::create_directories(root / "val" / "b");
  write_bytes(root / "val" / "a" / "x.JPEG", "\xff\xd8\xff\xe0 truncated jpeg");
  const std::string crop = " --resize 8 --crop 8";
  expect_one_line_error(
      aciq("eval -q --model " + model.string() + crop + " --data imagenet:" + root.string()),
      (root / "val" / "b").string());
  write_bytes(root / "val" / "b" / "y.JPEG", "\xff\xd8\xff\xe0 truncated jpeg");
  expect_one_line_error(
      aciq("eval -q --model " + model.string() + crop + " --data imagenet:" + root.string()), "x.JPEG");
}

TEST(CliErrors, BadOptions) {
  const fs::path model = tiny_model_file();
  expect_one_line_error(aciq("eval -q --model " + model.string() + " --qtype int17 --stats x.json"), "1..16");
  expect_one_line_error(aciq("eval -q --model " + model.string() + " --qtype int4"), "--stats");
  expect_one_line_error(aciq("alpha --bits 0-3"), "--bits");
}

TEST(CliRoundTrip, CollectEvalReproducibleAndRefusesOtherModels) {
  const fs::path model = tiny_model_file();
  const fs::path s1 = scratch() / "s1.json", s2 = scratch() / "s2.json";
  const std::string base = "--model " + model.string() + " --data fashion-mnist --limit 300 -b 64 -q";
  const CliRun c1 = aciq("collect " + base + " --split train --stats " + s1.string());
  ASSERT_EQ(c1.code, 0) << c1.err;
  const CliRun c2 = aciq("collect " + base + " --split train --threads 1 --workers 1 --stats " + s2.string());
  ASSERT_EQ(c2.code, 0) << c2.err;
  EXPECT_EQ(slurp(s1), slurp(s2)) << "statistics must be byte-identical across runs and thread counts";

  const std::string q = " --qtype int4 --clip laplace --stats " + s1.string();
  const CliRun e1 = aciq("eval " + base + q);
  const CliRun e2 = aciq("eval " + base + q + " --threads 1");
  ASSERT_EQ(e1.code, 0) << e1.err;
  const std::regex prec(R"( \* Prec@1 [0-9.]+ Prec@5 [0-9.]+)");
  EXPECT_TRUE(std::regex_search(e1.out, prec)) << e1.out;
  EXPECT_EQ(e1.out.substr(e1.out.find(" * Prec@1")), e2.out.substr(e2.out.find(" * Prec@1")));

  // Statistics of another model are refused.
  const fs::path other = tiny_model_file(7);
  expect_one_line_error(aciq("eval -q --model " + other.string() + " --limit 10" + q),
                        s1.string() + ": statistics were collected for a different model");
  // A truncated statistics file is refused.
  const fs::path cut = scratch() / "cut.json";
  const std::string text = slurp(s1);
  write_bytes(cut, text.substr(0, text.size() / 2));
  expect_one_line_error(
      aciq("eval -q --model " + model.string() + " --limit 10 --qtype int4 --stats " + cut.string()),
      cut.string() + ": not a valid statistics file");

  // --merge adds samples.
  const CliRun m = aciq("collect " + base + " --split test --merge --stats " + s2.string());
  ASSERT_EQ(m.code, 0) << m.err;
  EXPECT_EQ(nlohmann::json::parse(slurp(s2))["samples"].get<int>(), 600);
}

// sweep collects on --calib-split whatever --split says, and its rows equal separate eval runs.
TEST(CliRoundTrip, SweepCalibratesOnItsOwnSplit) {
  const fs::path model = tiny_model_file();
  const fs::path dir = scratch() / "sweep";
  const CliRun r = aciq("sweep -q --model " + model.string() +
                        " --calib-split train --calib-limit 200 --split test --limit 300 "
                        "--qtypes int4 --clips laplace --stats-dir " +
                        dir.string());
  ASSERT_EQ(r.code, 0) << r.err;
  const fs::path stats = dir / "tiny1.stats.json";
  const auto j = nlohmann::json::parse(slurp(stats));
  EXPECT_NE(j["data"].get<std::string>().find("train"), std::string::npos) << j["data"];
  EXPECT_EQ(j["samples"].get<int>(), 200);
  const CliRun e = aciq("eval -q --model " + model.string() +
                        " --split test --limit 300 --qtype int4 --clip laplace --stats " + stats.string());
  ASSERT_EQ(e.code, 0) << e.err;
  const std::regex row(R"(\| tiny1 \| int4 \| laplace \| ([0-9.]+) \| ([0-9.]+) \|)");
  std::smatch m;
  ASSERT_TRUE(std::regex_search(r.out, m, row)) << r.out;
  EXPECT_NE(e.out.find(" * Prec@1 " + m[1].str() + " Prec@5 " + m[2].str()), std::string::npos)
      << e.out << r.out;
}

// fp32 top-1 of each bundled reference model equals PyTorch's count of correct predictions
// (recorded by tools/train_reference_models.py on the same weights and test images).
TEST(ReferenceModels, Fp32AccuracyEqualsPyTorch) {
  const fs::path index = fs::path(ACIQ_SOURCE_DIR) / "models" / "reference_models.json";
  ASSERT_TRUE(fs::exists(index)) << index;
  const auto j = nlohmann::json::parse(slurp(index));
  int checked = 0;
  for (const auto& [name, entry] : j["models"].items()) {
    const fs::path model = fs::path(ACIQ_SOURCE_DIR) / "models" / entry["file"].get<std::string>();
    const fs::path out = scratch() / (name + ".json");
    const CliRun r = aciq("eval -q --model " + model.string() + " --data fashion-mnist --split test --json " +
                          out.string());
    ASSERT_EQ(r.code, 0) << r.err;
    const auto res = nlohmann::json::parse(slurp(out));
    EXPECT_EQ(res["samples"].get<int>(), entry["test_samples"].get<int>()) << name;
    EXPECT_EQ(res["top1_correct"].get<int>(), entry["correct_top1"].get<int>()) << name;
    ++checked;
  }
  EXPECT_GE(checked, 3);
}

// docs/operators.md's table is the registry's: an operator added or removed without regenerating the
// page fails here.
TEST(CliOps, DocsTableMatchesTheRegistry) {
  const auto r = aciq("ops --markdown");
  ASSERT_EQ(r.code, 0) << r.err;
  const std::string doc = slurp(fs::path(ACIQ_SOURCE_DIR) / "docs/operators.md");
  std::string table;
  std::istringstream lines(doc);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("| ", 0) == 0 || line.rfind("|---", 0) == 0) table += line + "\n";
  }
  EXPECT_EQ(table, r.out);
  const auto j = aciq("ops --json");
  ASSERT_EQ(j.code, 0) << j.err;
  const auto ops = nlohmann::json::parse(j.out);
  const auto rows = static_cast<std::size_t>(std::count(table.begin(), table.end(), '\n'));
  EXPECT_EQ(ops.size() + 2, rows);  // the header and the separator row
  for (const auto& o : ops)
    EXPECT_NE(r.out.find("| " + o.at("op").get<std::string>() + " |"), std::string::npos);
}

}  // namespace
}  // namespace aciq::testing
