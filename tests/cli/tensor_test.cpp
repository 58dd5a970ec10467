// `aciq run` and `aciq compare`: .npy in and out for any model, errors before the work, closed-form metrics.
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <random>

#include "aciq/data.hpp"
#include "cli_util.hpp"

namespace aciq::testing {
namespace {

fs::path random_images(const std::string& name, Shape shape, unsigned seed) {
  Tensor x(DType::kFloat32, shape);
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  for (std::int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = dist(rng);
  const fs::path p = scratch() / name;
  data::write_npy(p.string(), x);
  return p;
}

// Batches are stacked in order: 37 samples in batches of 5 give the bytes of one batch of 37 (the
// fast Gemm is batch-invariant), and the reference backend agrees within float rounding.
TEST(CliRun, StacksBatchesAndAgreesAcrossBackends) {
  const auto model = tiny_model_file().string();
  const auto x = random_images("run_x.npy", {37, 1, 28, 28}, 7).string();
  const auto y5 = (scratch() / "run_y5.npy").string(), y37 = (scratch() / "run_y37.npy").string();
  const auto yr = (scratch() / "run_yr.npy").string();
  auto r = aciq("run -q --model " + model + " --input " + x + " --output " + y5 + " -b 5");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("37 samples"), std::string::npos) << r.out;
  ASSERT_EQ(aciq("run -q --model " + model + " --input " + x + " --output " + y37 + " -b 37").code, 0);
  ASSERT_EQ(aciq("run -q --backend reference --model " + model + " --input " + x + " --output " + yr).code,
            0);
  EXPECT_EQ(slurp(y5), slurp(y37));
  const auto out = data::NpyArray::open(y5);
  EXPECT_EQ(out.shape(), (Shape{37, 10}));
  const auto same = aciq("compare --json " + y5 + " " + y37);
  ASSERT_EQ(same.code, 0) << same.err;
  const auto j = nlohmann::json::parse(same.out);
  EXPECT_EQ(j["sqnr_db"], "inf");
  EXPECT_EQ(j["max_abs_diff"].get<double>(), 0.0);
  EXPECT_EQ(j["argmax_agree"].get<int>(), 37);
  const auto ref = nlohmann::json::parse(aciq("compare --json " + yr + " " + y5).out);
  EXPECT_LT(ref["max_rel_diff"].get<double>(), 1e-5);
  EXPECT_EQ(ref["argmax_agree"].get<int>(), 37);
}

// Wrong per-sample shape, wrong dtype, no output, an unwritable output: one line, exit 1, before any
// batch runs and with no file left behind.
TEST(CliRun, BadInputsAreOneLineErrorsBeforeTheWork) {
  const auto model = tiny_model_file().string();
  const auto wrong = random_images("run_wrong.npy", {4, 3, 28, 28}, 1).string();
  const auto y = (scratch() / "run_never.npy").string();
  expect_one_line_error(
      aciq("run -q --model " + model + " --input " + wrong + " --output " + y),
      "expects shape [-1,1,28,28] (float32), data has [4,3,28,28] (float32) (from " + wrong + ")");
  EXPECT_FALSE(fs::exists(y));
  const auto ints = (scratch() / "run_ints.npy").string();
  data::write_npy(ints, Tensor(DType::kInt64, {2, 1, 28, 28}));
  expect_one_line_error(aciq("run -q --model " + model + " --input " + ints + " --output " + y),
                        "--input must be float32, the file holds int64");
  const auto x = random_images("run_ok.npy", {2, 1, 28, 28}, 2).string();
  expect_one_line_error(aciq("run -q --model " + model + " --input " + x), "exactly one of --output");
  expect_one_line_error(
      aciq("run -q --model " + model + " --input " + x + " --output /nonexistent/dir/y.npy"),
      "/nonexistent/dir");
  EXPECT_FALSE(fs::exists(y));
}

TEST(CliRun, OutputDirWritesEveryGraphOutput) {
  const auto model = tiny_model_file().string();
  const auto x = random_images("run_dir_x.npy", {3, 1, 28, 28}, 3).string();
  const auto dir = scratch() / "run_outs";
  const auto r = aciq("run -q --model " + model + " --input " + x + " --output-dir " + dir.string());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(data::NpyArray::open((dir / "logits.npy").string()).shape(), (Shape{3, 10}));
}

// ref [[1, 0], [0, 2]] vs out [[1, 1], [0, 2]]: max |d| 1, mean 0.25, SQNR 10 log10(5 / 1) dB,
// cosine 5 / sqrt(5 * 6), and both rows keep their argmax (a tie resolves to the first index).
TEST(CliCompare, MetricsMatchClosedForms) {
  const auto a = (scratch() / "cmp_a.npy").string(), b = (scratch() / "cmp_b.npy").string();
  data::write_npy(a, Tensor::from_f32({2, 2}, std::vector<float>{1, 0, 0, 2}));
  data::write_npy(b, Tensor::from_f32({2, 2}, std::vector<float>{1, 1, 0, 2}));
  const auto r = aciq("compare --json " + a + " " + b);
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["identical"].get<int>(), 3);
  EXPECT_DOUBLE_EQ(j["max_abs_diff"].get<double>(), 1.0);
  EXPECT_DOUBLE_EQ(j["mean_abs_diff"].get<double>(), 0.25);
  EXPECT_NEAR(j["sqnr_db"].get<double>(), 10.0 * std::log10(5.0), 1e-12);
  EXPECT_NEAR(j["cosine"].get<double>(), 5.0 / std::sqrt(30.0), 1e-12);
  EXPECT_EQ(j["argmax_agree"].get<int>(), 2);
  EXPECT_EQ(j["argmax_total"].get<int>(), 2);
  const auto col = nlohmann::json::parse(aciq("compare --json --axis 0 " + a + " " + b).out);
  EXPECT_EQ(col["argmax_agree"].get<int>(), 2);  // columns: ref rows (0, 1), out rows (0, 1)
  const auto d = (scratch() / "cmp_d.npy").string();
  data::write_npy(d, Tensor::from_f32({2, 2}, std::vector<float>{0, 1, 1, 2}));
  const auto rows = nlohmann::json::parse(aciq("compare --json " + a + " " + d).out);
  EXPECT_EQ(rows["argmax_agree"].get<int>(), 1);  // row 0 moves from class 0 to class 1
  const auto c = (scratch() / "cmp_c.npy").string();
  data::write_npy(c, Tensor::from_f32({4}, std::vector<float>{1, 0, 0, 2}));
  expect_one_line_error(aciq("compare " + a + " " + c), "differs from");
}

}  // namespace
}  // namespace aciq::testing

namespace aciq::testing {
namespace {

// The first 300 Fashion-MNIST test images, preprocessed by aciq's own IDX reader and saved as .npy with
// their labels: eval on npy: gives exactly the Prec@1 line of the IDX dataset, collect accepts
// unlabeled npy, and label files that do not fit are one-line errors.
TEST(CliNpyData, EvalOnNpyEqualsTheIdxDataset) {
  auto ds = data::open_dataset("fashion-mnist", "test", {});
  const std::int64_t n = 300;
  Tensor x(DType::kFloat32, {n, 1, 28, 28});
  std::vector<std::int64_t> labels(n);
  auto reader = ds->open_reader(0);
  for (std::int64_t i = 0; i < n; ++i) {
    labels[i] = reader->read(std::span<float>(x.data<float>() + i * 784, 784));
  }
  const auto xs = (scratch() / "fm_x.npy").string(), ls = (scratch() / "fm_y.npy").string();
  data::write_npy(xs, x);
  data::write_npy(ls, Tensor::from_i64({n}, labels));
  const auto model = tiny_model_file().string();
  const auto idx = aciq("eval -q --model " + model + " --limit 300");
  const auto npy = aciq("eval -q --model " + model + " --data npy:" + xs + "," + ls);
  ASSERT_EQ(npy.code, 0) << npy.err;
  const auto prec = [](const std::string& out) { return out.substr(out.find(" * Prec@1")); };
  EXPECT_EQ(prec(npy.out), prec(idx.out));
  const auto stats = (scratch() / "fm.stats.json").string();
  const auto col = aciq("collect -q --model " + model + " --data npy:" + xs + " --stats " + stats);
  ASSERT_EQ(col.code, 0) << col.err;
  EXPECT_NE(col.out.find("300 samples"), std::string::npos) << col.out;
  const auto short_labels = (scratch() / "fm_short.npy").string();
  data::write_npy(short_labels, Tensor::from_i64({3}, std::vector<std::int64_t>{1, 2, 3}));
  expect_one_line_error(aciq("eval -q --model " + model + " --data npy:" + xs + "," + short_labels),
                        "labels of shape [3] do not match 300 samples of " + xs);
}

}  // namespace
}  // namespace aciq::testing
