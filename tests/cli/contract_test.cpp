// The CLI contract (issue 13): every input and output checked before the first image is read, one
// error line and exit code 1 for every failure, no silent no-ops, the seed's spellings, the same flags
// everywhere, machine-readable results, terminal-aware progress, reproducible bytes, disjoint chunks.
#include <nlohmann/json.hpp>
#include <regex>

#include "cli_util.hpp"

namespace aciq::testing {
namespace {

// An ImageFolder dataset (train/ and val/) whose every image is corrupt, and an RGB model its 8x8
// crops fit: a command that reads a single image fails naming that image. A command that fails with
// its own error instead has checked everything before reading.
struct PoisonedData {
  fs::path model = scratch() / "rgb8.onnx";
  fs::path root = scratch() / "poison";
  std::string spec;
  PoisonedData() {
    std::string s;
    conv_bn_model().SerializeToString(&s);
    write_bytes(model, s);
    for (const char* split : {"train", "val"}) {
      fs::create_directories(root / split / "a");
      write_bytes(root / split / "a" / "poison.JPEG", "\xff\xd8\xff\xe0 not a jpeg");
    }
    spec = " --resize 8 --crop 8 --data imagenet:" + root.string();
  }
};

// A failure that must come before any image is read: one error line naming `needle`, within a second.
void expect_early_error(const CliRun& r, const std::string& needle) {
  expect_one_line_error(r, needle);
  EXPECT_EQ(r.err.find("poison.JPEG"), std::string::npos) << "an image was read before the error:\n" << r.err;
  EXPECT_LT(r.seconds, 1.0) << r.err;
}

TEST(CliContract, OutputProblemsAreFoundBeforeTheWork) {
  const PoisonedData d;
  const std::string m = " -q --model " + d.model.string() + d.spec;
  expect_early_error(aciq("eval" + m + " --json nodir/x.json"),
                     "--json nodir/x.json: directory nodir does not exist");
  expect_early_error(aciq("collect" + m + " --stats nodir/x.json"),
                     "--stats nodir/x.json: directory nodir does not exist");
  expect_early_error(aciq("collect" + m + " --stats " + scratch().string()), "is a directory");
  expect_early_error(aciq("sweep -q --model " + d.model.string() + d.spec + " --markdown nodir/x.md"),
                     "--markdown nodir/x.md");
  expect_early_error(aciq("sweep -q --model " + d.model.string() + d.spec + " --qtypes int17"), "int17");
  expect_early_error(aciq("sweep -q --model " + d.model.string() + d.spec + " --clips foo"), "--clips 'foo'");
  const fs::path corrupt = scratch() / "corrupt2.onnx";
  write_bytes(corrupt, "not a model");
  expect_early_error(aciq("sweep -q --model " + d.model.string() + " --model " + corrupt.string() + d.spec),
                     corrupt.string() + ": not a valid ONNX model");

  // --merge into another model's statistics is refused before the pass.
  const fs::path other = scratch() / "other.stats.json";
  const CliRun c =
      aciq("collect -q --model " + tiny_model_file().string() + " --limit 20 --stats " + other.string());
  ASSERT_EQ(c.code, 0) << c.err;
  expect_early_error(aciq("collect" + m + " --merge --stats " + other.string()),
                     "collected for a different model");

  // analyze --csv into /proc.
  const CliRun s = aciq("collect -q --model " + tiny_model_file().string() + " --limit 20 --stats " +
                        (scratch() / "tiny.stats.json").string());
  ASSERT_EQ(s.code, 0) << s.err;
  expect_one_line_error(
      aciq("analyze -q --model " + tiny_model_file().string() + " --limit 20 --qtype int4 --stats " +
           (scratch() / "tiny.stats.json").string() + " --csv /proc/x.csv"),
      "--csv /proc/x.csv: cannot create files in /proc");
}

// If writing still fails at the end, the result is on stdout first and the write error after it: the
// output directory is removed while a collect runs.
TEST(CliContract, ResultPrintedBeforeALateWriteError) {
  const fs::path dir = scratch() / "vanishing";
  fs::create_directories(dir);
  const fs::path out = scratch() / "late.out", err = scratch() / "late.err";
  const std::string cmd = "(" + std::string(ACIQ_CLI) + " collect -q --model " + tiny_model_file().string() +
                          " --split train --stats " + (dir / "s.json").string() + " >" + out.string() +
                          " 2>" + err.string() + "; echo $? >" + (scratch() / "late.rc").string() +
                          ") & sleep 0.5; rm -rf " + dir.string() + "; wait";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  EXPECT_EQ(slurp(scratch() / "late.rc"), "1\n") << slurp(err);
  EXPECT_NE(slurp(out).find(" * Prec@1 "), std::string::npos) << slurp(out);
  const CliRun r{1, slurp(out), slurp(err), 0};
  expect_one_line_error(r, (dir / "s.json").string());
}

TEST(CliContract, OptionErrorsAreOneLineAndExitOne) {
  const std::string m = tiny_model_file().string();
  expect_one_line_error(aciq("eval -q --model " + m + " --clip foo"),
                        "--clip: unknown clipping method 'foo' (expected one of none, minmax", false);
  expect_one_line_error(aciq("eval -q --model " + m + " --limt 5"),
                        "--limt: unknown option for `aciq eval`; did you mean --limit?", false);
  expect_one_line_error(aciq("eval -q"), "--model: required", false);
  expect_one_line_error(aciq("foo"), "foo: unknown command", false);
  expect_one_line_error(aciq("evl --model x"), "did you mean eval?", false);
  expect_one_line_error(aciq(""), "no command given", false);
  const CliRun neg = aciq("eval -q --model " + m + " --limit -5");
  expect_one_line_error(neg, "--limit: '-5' must be >= 0", false);
  EXPECT_LT(neg.err.size(), 80u) << neg.err;
  expect_one_line_error(aciq("collect -q --model " + m), "--stats: required", false);
  // Option combinations no plan can be built from, found before the statistics are even opened.
  const std::string missing = (scratch() / "absent.stats.json").string();
  expect_one_line_error(
      aciq("eval -q --model " + m + " --qtype int4 --wbits 4 --bias-correction deploy --stats " + missing),
      "--bias-correction deploy: folds the correction into integer weight scales", false);
  expect_one_line_error(
      aciq("eval -q --model " + m +
           " --qtype int4 --wbits 4 --semantics onnx --bias-correction deploy --stats " + missing),
      "--bias-correction deploy: needs --placement deploy", false);
  EXPECT_EQ(aciq("eval --help").code, 0);
}

TEST(CliContract, NoSilentNoOps) {
  const std::string m = tiny_model_file().string();
  expect_one_line_error(aciq("eval -q --model " + m + " --clip laplace --limit 10"),
                        "--clip: has no effect without --qtype");
  expect_one_line_error(aciq("eval -q --model " + m + " --wbits 4 --limit 10"),
                        "--wbits: has no effect without --qtype");
  const fs::path stats = scratch() / "noop.stats.json";
  ASSERT_EQ(aciq("collect -q --model " + m + " --limit 20 --stats " + stats.string()).code, 0);
  expect_one_line_error(aciq("eval -q --model " + m + " --limit 10 --qtype int4 --stats " + stats.string() +
                             " --keep-8bit bogus_name"),
                        "--keep-8bit 'bogus_name': no quantized node or value has this name");
  // A near miss is named.
  expect_one_line_error(aciq("eval -q --model " + m + " --limit 10 --qtype int4 --stats " + stats.string() +
                             " --keep-8bit conv"),
                        "did you mean conv1");
  // A real name keeps its point at 8 bits.
  EXPECT_EQ(aciq("eval -q --model " + m + " --limit 10 --qtype int4 --stats " + stats.string() +
                 " --keep-8bit conv2")
                .code,
            0);
  // The calibrators and their options: overrides name real points, --half and --bits-budget need statistics.
  expect_one_line_error(aciq("eval -q --model " + m + " --limit 10 --qtype int4 --stats " + stats.string() +
                             " --clip-override conv9=kl"),
                        "--clip-override 'conv9': no quantized node or value has this name");
  expect_one_line_error(aciq("eval -q --model " + m + " --limit 10 --qtype int4 --clip mse -sm no --half"),
                        "--half: needs the activated values' statistics");
  expect_one_line_error(aciq("eval -q --model " + m + " --limit 10 --qtype int4 --stats " + stats.string() +
                             " --bits-budget 1"),
                        "--bits-budget 1: must lie between");
  EXPECT_EQ(
      aciq("eval -q --model " + m + " --limit 10 --qtype int3 --clip kl --half --bits-budget 3 --stats " +
           stats.string() + " --clip-override conv2=percentile:99.9")
          .code,
      0);
}

// --engine int8 runs a plan's QOperator lowering: it needs a plan in onnx semantics, said before any work;
// on the tiny model its top-1 equals the simulation's.
TEST(CliContract, Int8EngineNeedsAnOnnxPlanAndMatchesTheSimulation) {
  const std::string m = tiny_model_file().string();
  expect_one_line_error(aciq("eval -q --model " + m + " --engine int8 --limit 10"),
                        "--engine int8: needs a quantization plan", false);
  const fs::path stats = scratch() / "engine.stats.json";
  ASSERT_EQ(aciq("collect -q --model " + m + " --limit 40 --stats " + stats.string()).code, 0);
  const std::string q = " --limit 40 --qtype int8 --clip laplace --stats " + stats.string();
  expect_one_line_error(aciq("eval -q --model " + m + q + " --engine int8"),
                        "--engine int8: integer kernels run the onnx semantics; add --semantics onnx", false);
  expect_one_line_error(aciq("eval -q --model " + m + " --engine int4"), "--engine: int4 not in", false);
  const CliRun sim = aciq("eval -q --model " + m + q + " --semantics onnx --placement deploy");
  const CliRun integer =
      aciq("eval -q --model " + m + q + " --semantics onnx --placement deploy --engine int8");
  ASSERT_EQ(sim.code, 0) << sim.err;
  ASSERT_EQ(integer.code, 0) << integer.err;
  const auto prec = [](const std::string& out) { return out.substr(out.find("Prec@1")); };
  EXPECT_EQ(prec(integer.out), prec(sim.out));
  // bench: the same checks, and the integer graph's convolutions off the reference kernels.
  expect_one_line_error(aciq("bench --model " + m + " --engine int8 --iters 1"),
                        "--engine int8: needs a quantization plan", false);
  const CliRun bench = aciq("bench --model " + m +
                            " --iters 1 -b 4 --qtype int8 --clip laplace --semantics onnx --engine int8");
  ASSERT_EQ(bench.code, 0) << bench.err;
  EXPECT_NE(bench.out.find("(int8 engine)"), std::string::npos) << bench.out;
  const std::string refs = bench.out.substr(bench.out.find("reference kernels:"));
  const std::string line = refs.substr(0, refs.find('\n'));
  EXPECT_EQ(line.find("QLinearConv"), std::string::npos) << bench.out;
  EXPECT_EQ(line.find("ConvInteger"), std::string::npos) << bench.out;
}

TEST(CliContract, SeedSpellings) {
  const fs::path models = scratch() / "zoo";
  fs::create_directories(models);
  fs::copy_file(tiny_model_file(), models / "tiny.onnx", fs::copy_options::overwrite_existing);
  const fs::path home = scratch() / "home";
  fs::create_directories(home);
  const std::string env = "ACIQ_MODELS=" + models.string() + " HOME=" + home.string();
  // The seed's README commands: collect, then -sm use with -th laplace, and -th no.
  const CliRun col = aciq_env(env, "inference-sim -a tiny -b 512 --qtype int8 -sm collect --limit 300 -q");
  ASSERT_EQ(col.code, 0) << col.err;
  const fs::path stats = home / "asiq_data" / "statistics" / "tiny.stats.json";
  ASSERT_TRUE(fs::exists(stats));
  const std::string data = " --split test --limit 200 -q";
  const CliRun lap = aciq_env(env, "inference-sim -a tiny -b 512 --qtype int4 -sm use -th laplace" + data);
  ASSERT_EQ(lap.code, 0) << lap.err;
  const CliRun no = aciq_env(env, "eval -a tiny -b 512 --qtype int4 -sm use -th no" + data);
  ASSERT_EQ(no.code, 0) << no.err;
  // They are exactly the long spellings.
  const std::string longform =
      "eval --model " + tiny_model_file().string() + " -b 512 --qtype int4 --stats " + stats.string() + data;
  EXPECT_EQ(lap.out.substr(lap.out.find(" * Prec")), [&] {
    const auto r = aciq(longform + " --clip laplace");
    return r.out.substr(r.out.find(" * Prec"));
  }());
  EXPECT_EQ(no.out.substr(no.out.find(" * Prec")), [&] {
    const auto r = aciq(longform + " --clip no");
    return r.out.substr(r.out.find(" * Prec"));
  }());
  // -sm no: ranges from each batch, no statistics file.
  const CliRun dyn = aciq_env(env, "eval -a tiny --qtype int4 -sm no -th laplace" + data);
  ASSERT_EQ(dyn.code, 0) << dyn.err;
  EXPECT_NE(dyn.out.find(" * Prec@1 "), std::string::npos);
  expect_one_line_error(aciq_env(env, "eval -a tiny --qtype int4 -sm no --stats " + stats.string() + data),
                        "-sm no");
  // A bare --data root and an unknown -a name.
  EXPECT_EQ(aciq_env(env, "eval -a tiny --data /usr/share/datasets/fashion-mnist" + data).code, 0);
  expect_one_line_error(aciq_env(env, "eval -a tinny" + data), "did you mean tiny?");
  // -sm use without statistics at the default place says how to make them.
  const std::string env2 = "ACIQ_MODELS=" + models.string() + " HOME=" + (scratch() / "empty-home").string();
  expect_one_line_error(aciq_env(env2, "eval -a tiny --qtype int4 -sm use" + data),
                        "collect them first with -sm collect");
}

TEST(CliContract, SameFlagsEverywhere) {
  const std::string m = tiny_model_file().string();
  for (const char* clip : {"gaus", "none", "mix"}) {
    const CliRun b =
        aciq("bench -q --model " + m + " --qtype int4 --clip " + std::string(clip) + " --iters 1 --warmup 0");
    EXPECT_EQ(b.code, 0) << clip << ": " << b.err;
  }
  const fs::path stats = scratch() / "flags.stats.json";
  ASSERT_EQ(aciq("collect -q --model " + m + " --limit 20 --stats " + stats.string()).code, 0);
  EXPECT_EQ(aciq("analyze -q --model " + m + " --limit 20 --qtype int4 --stats " + stats.string()).code, 0);
  expect_one_line_error(aciq("sweep -q --model " + m + " --threads 0"), "--threads: '0' must be in 1..256");
  expect_one_line_error(aciq("eval -q --model " + m + " --threads 0"), "--threads: '0' must be in 1..256");
  const CliRun sw = aciq("sweep -q --model " + m +
                         " --calib-limit 50 --limit 50 --qtypes int4 --clips laplace --wbits 4 "
                         "--placement deploy --keep-8bit conv2 --fc-bits 6 --backend reference --stats-dir " +
                         (scratch() / "sweep-flags").string());
  EXPECT_EQ(sw.code, 0) << sw.err;
  const CliRun alpha = aciq("alpha --seed-coefficients");
  EXPECT_EQ(alpha.code, 0) << alpha.err;
  EXPECT_NE(alpha.out.find("2.83"), std::string::npos) << alpha.out;  // the seed's Laplace alpha/b at 2 bits
}

// A statistics file that is well-formed JSON but impossible.
std::string damaged_stats(const std::string& text, const std::string& stat, const std::string& field,
                          const std::string& value) {
  auto j = nlohmann::ordered_json::parse(text);
  j["points"][1]["stats"][stat][field] = nlohmann::ordered_json::parse(value);
  return j.dump(1);
}

TEST(CliContract, ImplausibleStatisticsAreRefusedTheSameWayEverywhere) {
  const std::string m = tiny_model_file().string();
  const fs::path stats = scratch() / "good.stats.json";
  ASSERT_EQ(aciq("collect -q --model " + m + " --limit 20 --stats " + stats.string()).code, 0);
  const std::string text = slurp(stats);
  struct Case {
    std::string stat, field, value, needle;
  };
  const Case cases[] = {{"b", "count", "0", "has no samples"},
                        {"b", "min", "-500", "statistic 'b' is"},
                        {"min", "min", "1e30", "statistic 'min' is inconsistent"}};
  for (const auto& c : cases) {
    const fs::path bad = scratch() / ("bad-" + c.stat + c.field + ".json");
    write_bytes(bad, damaged_stats(text, c.stat, c.field, c.value));
    for (const std::string& cmd : std::vector<std::string>{
             "eval -q", "analyze -q", "calibrate --plan " + (scratch() / "p.json").string()}) {
      const std::string limit = cmd.rfind("calibrate", 0) == 0 ? "" : " --limit 10";
      const CliRun r = aciq(cmd + " --model " + m + limit + " --qtype int4 --stats " + bad.string());
      expect_one_line_error(r, bad.string() + ": point ");
      EXPECT_NE(r.err.find(c.needle), std::string::npos) << r.err;
      EXPECT_EQ(r.err.find("laplace_clip_mse"), std::string::npos) << r.err;
      EXPECT_EQ(r.err.find("affine_params"), std::string::npos) << r.err;
    }
  }
  // All counts zero.
  auto j = nlohmann::ordered_json::parse(text);
  j["samples"] = 0;
  for (auto& p : j["points"]) {
    for (auto& [k, v] : p["stats"].items()) v["count"] = 0;
  }
  const fs::path zero = scratch() / "zero.json";
  write_bytes(zero, j.dump(1));
  expect_one_line_error(aciq("eval -q --model " + m + " --limit 10 --qtype int4 --stats " + zero.string()),
                        "no samples");
  // A directory as --model or --stats.
  expect_one_line_error(aciq("eval -q --model " + scratch().string()),
                        "is a directory, not an ONNX model file");
  expect_one_line_error(aciq("eval -q --model " + m + " --qtype int4 --stats " + scratch().string()),
                        "is a directory, not a statistics file");
}

TEST(CliContract, JsonResultsCarryTheWholeConfiguration) {
  const std::string m = tiny_model_file().string();
  const fs::path stats = scratch() / "json.stats.json";
  ASSERT_EQ(aciq("collect -q --model " + m + " --limit 40 --stats " + stats.string()).code, 0);
  const fs::path out = scratch() / "eval.json";
  const CliRun r = aciq("eval -q --model " + m +
                        " --limit 30 --qtype int4 --clip laplace --wbits 6 --placement deploy "
                        "--seed-coefficients --stats " +
                        stats.string() + " --json " + out.string());
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(slurp(out));
  EXPECT_EQ(j["options"]["wbits"], "6");
  EXPECT_EQ(j["options"]["placement"], "deploy");
  EXPECT_EQ(j["options"]["seed-coefficients"], true);
  EXPECT_EQ(j["options"]["batch-size"], "256");  // a default, resolved
  EXPECT_EQ(j["quantization"]["wbits"], 6);
  EXPECT_EQ(j["stats"]["path"], stats.string());
  EXPECT_EQ(j["stats"]["hash"].get<std::string>().size(), 16u);
  EXPECT_EQ(j["model"]["hash"].get<std::string>().size(), 16u);
  EXPECT_FALSE(j["aciq"]["version"].get<std::string>().empty());
  EXPECT_FALSE(j["aciq"]["commit"].get<std::string>().empty());
  EXPECT_EQ(j["data"]["count"], 30);
  EXPECT_NE(j["command"].get<std::string>().find("--wbits 6"), std::string::npos);
  // The recorded command reruns to the same result.
  const CliRun again =
      aciq(j["command"].get<std::string>().substr(j["command"].get<std::string>().find(' ') + 1));
  EXPECT_EQ(again.out.substr(again.out.find(" * Prec")), r.out.substr(r.out.find(" * Prec")));

  // layers and bench write JSON too; layers shows bits and clipping.
  const fs::path lj = scratch() / "layers.json";
  const CliRun l = aciq("layers --model " + m + " --qtype int4 --clip laplace --json " + lj.string());
  ASSERT_EQ(l.code, 0) << l.err;
  EXPECT_TRUE(
      std::regex_search(l.out, std::regex(R"(c2\s+conv2\s+Conv\s+conv\s+\[1,16,13,13\]\s+4\s+laplace)")))
      << l.out;
  EXPECT_EQ(nlohmann::json::parse(slurp(lj))["points"][1]["bits"], 4);
  const fs::path bj = scratch() / "bench.json";
  ASSERT_EQ(aciq("bench --model " + m + " --iters 3 --warmup 0 --json " + bj.string()).code, 0);
  EXPECT_EQ(nlohmann::json::parse(slurp(bj))["samples_ms"].size(), 3u);
}

TEST(CliContract, AnalyzeUsesEverySampleAndFullNames) {
  // A point name longer than 24 characters.
  auto model = make_model();
  add_input(model, "input", {-1, 1, 28, 28});
  auto* g = model.mutable_graph();
  *g->add_initializer() = make_tensor("w1", {4, 1, 3, 3}, random_values(36, 3));
  *g->add_initializer() = make_tensor("fc", {10, 4}, random_values(40, 4));
  const std::string long_name = "/features/features.0/block/Conv_output_0";
  add_node(model, "Conv", {"input", "w1"}, {long_name}, "conv_with_a_long_name");
  add_node(model, "Relu", {long_name}, {"r"}, "relu");
  add_node(model, "GlobalAveragePool", {"r"}, {"gap"}, "gap");
  add_node(model, "Flatten", {"gap"}, {"flat"}, "flatten");
  set_int(add_node(model, "Gemm", {"flat", "fc"}, {"logits"}, "fc"), "transB", 1);
  add_output(model, "logits");
  std::string bytes;
  model.SerializeToString(&bytes);
  const fs::path m = scratch() / "longnames.onnx";
  write_bytes(m, bytes);
  const fs::path stats = scratch() / "long.stats.json";
  ASSERT_EQ(aciq("collect -q --model " + m.string() + " --limit 50 --stats " + stats.string()).code, 0);
  const fs::path out = scratch() / "analyze.json";
  const CliRun r = aciq("analyze -q --model " + m.string() + " --limit 600 -b 128 --qtype int4 --stats " +
                        stats.string() + " --json " + out.string());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find(long_name), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("measured over 600 samples"), std::string::npos) << r.out;
  const auto j = nlohmann::json::parse(slurp(out));
  ASSERT_EQ(j["points"].size(), 2u);
  EXPECT_EQ(j["points"][1]["role"], "classifier");
  EXPECT_TRUE(j["points"][1]["mse"]["laplace"].is_null()) << "the classifier is never clipped";
  EXPECT_TRUE(j["points"][1]["mse"]["none"].is_number());
  EXPECT_TRUE(j["points"][0]["mse"]["laplace"].is_number());
}

TEST(CliContract, ProgressOnlyOnATerminal) {
  const CliRun r = aciq("collect --model " + tiny_model_file().string() + " --limit 600 -b 32 --stats " +
                        (scratch() / "progress.json").string());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.err.find('\r'), std::string::npos) << "a progress bar went to a file";
  EXPECT_LT(r.err.size(), 200u) << r.err;
}

TEST(CliContract, StatisticsBytesDoNotDependOnThreadsOrWorkers) {
  const std::string base = "collect -q --model " + tiny_model_file().string() + " --limit 500 -b 50 --stats ";
  const fs::path a = scratch() / "t1.json", b = scratch() / "t2.json";
  ASSERT_EQ(aciq(base + a.string() + " --threads 1 --workers 1").code, 0);
  ASSERT_EQ(aciq(base + b.string() + " --threads 2 --workers 3").code, 0);
  EXPECT_EQ(slurp(a), slurp(b));
  // Per-channel summaries too.
  ASSERT_EQ(aciq(base + a.string() + " --threads 1 --workers 1 --channel-stats").code, 0);
  ASSERT_EQ(aciq(base + b.string() + " --threads 2 --workers 3 --channel-stats").code, 0);
  EXPECT_EQ(slurp(a), slurp(b));
  EXPECT_NE(slurp(a).find("\"channels\""), std::string::npos);
}

TEST(CliContract, DisjointChunksMergeAndOverlapsAreRefused) {
  const std::string m = tiny_model_file().string();
  const fs::path merged = scratch() / "chunks.json", whole = scratch() / "whole.json";
  const std::string base = "collect -q --model " + m + " -b 64 ";
  ASSERT_EQ(aciq(base + "--limit 200 --stats " + merged.string()).code, 0);
  expect_early_error(aciq(base + "--offset 150 --limit 100 --merge --stats " + merged.string()),
                     "samples [150, 200) are already in it");
  expect_early_error(aciq(base + "--limit 10 --merge --stats " + merged.string()),
                     "samples [0, 10) are already in it");
  ASSERT_EQ(aciq(base + "--offset 200 --limit 100 --merge --stats " + merged.string()).code, 0);
  ASSERT_EQ(aciq(base + "--limit 300 --stats " + whole.string()).code, 0);
  const auto jm = nlohmann::json::parse(slurp(merged)), jw = nlohmann::json::parse(slurp(whole));
  EXPECT_EQ(jm["samples"], 300);
  EXPECT_EQ(jm["ranges"], jw["ranges"]);
  EXPECT_EQ(jm["ranges"][0]["begin"], 0);
  EXPECT_EQ(jm["ranges"][0]["end"], 300);
  // Exact sums, batch-invariant kernels: the merged chunks are the single pass, bit for bit.
  EXPECT_EQ(jm["points"], jw["points"]);
  expect_one_line_error(aciq(base + "--offset 60000 --stats " + (scratch() / "past.json").string()),
                        "--offset 60000: past the end");
}

}  // namespace
}  // namespace aciq::testing
