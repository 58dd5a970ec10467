// `mpirun -np N aciq collect|eval|sweep`: sharded passes give the single process's bytes and lines,
// and a failing rank ends the whole job with one error line naming the problem, in bounded time.
#include <nlohmann/json.hpp>

#include "../cli/cli_util.hpp"

namespace aciq::testing {
namespace {

// mpirun on this machine: loopback only, as root in CI (Open MPI refuses root without the two
// variables), leak checks off for Open MPI's own allocations in the sanitizer build.
std::string mpirun(int ranks) {
  return "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl=self,vader "
         "OMPI_MCA_btl_vader_single_copy_mechanism=none "
         "ASAN_OPTIONS=detect_leaks=0 " MPIEXEC " --quiet -np " +
         std::to_string(ranks) + " --oversubscribe";
}

CliRun run_shell(const std::string& cmd) {
  const fs::path out = scratch() / "mpi.out", err = scratch() / "mpi.err";
  CliRun r;
  const auto t0 = std::chrono::steady_clock::now();
  const int status = std::system((cmd + " >" + out.string() + " 2>" + err.string()).c_str());
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = slurp(out);
  r.err = slurp(err);
  return r;
}

CliRun aciq_mpi(int ranks, const std::string& args) {
  return run_shell(mpirun(ranks) + " " + std::string(ACIQ_CLI) + " " + args + " --threads 1");
}

std::string prec(const CliRun& r) {
  const auto at = r.out.find(" * Prec@1");
  return at == std::string::npos ? r.out : r.out.substr(at, r.out.find('\n', at) - at);
}

TEST(Mpi, CollectIsByteIdenticalForAnyRankCount) {
  const std::string m = tiny_model_file().string();
  const fs::path one = scratch() / "one.json";
  const CliRun single = aciq("collect -q --model " + m + " --limit 701 -b 64 --stats " + one.string());
  ASSERT_EQ(single.code, 0) << single.err;
  for (const int ranks : {2, 3}) {
    const fs::path many = scratch() / ("ranks" + std::to_string(ranks) + ".json");
    const CliRun r =
        aciq_mpi(ranks, "collect -q --model " + m + " --limit 701 -b 64 --stats " + many.string());
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(slurp(many), slurp(one)) << ranks << " ranks";
    EXPECT_EQ(prec(r), prec(single));
  }
}

TEST(Mpi, EvalAndSweepPrintTheSingleProcessResults) {
  const std::string m = tiny_model_file().string();
  const fs::path stats = scratch() / "eval.stats.json";
  ASSERT_EQ(aciq("collect -q --model " + m + " --limit 300 --stats " + stats.string()).code, 0);
  const std::string e =
      "eval -q --model " + m + " --limit 999 -b 100 --qtype int4 --clip laplace --stats " + stats.string();
  const CliRun single = aciq(e);
  const CliRun two = aciq_mpi(2, e);
  ASSERT_EQ(two.code, 0) << two.err;
  EXPECT_EQ(prec(two), prec(single));
  const std::string s = "sweep -q --model " + m +
                        " --calib-limit 333 --limit 500 --qtypes int4,int2 --clips no,laplace --stats-dir ";
  const CliRun sweep1 = aciq(s + (scratch() / "sw1").string());
  const CliRun sweep2 = aciq_mpi(2, s + (scratch() / "sw2").string());
  ASSERT_EQ(sweep2.code, 0) << sweep2.err;
  EXPECT_EQ(sweep2.out, sweep1.out);
  EXPECT_EQ(slurp(scratch() / "sw2" / "tiny1.stats.json"), slurp(scratch() / "sw1" / "tiny1.stats.json"));
}

TEST(Mpi, AFailingRankEndsTheJobWithOneLine) {
  // Ten good images, then a corrupt one: the last shard's rank fails, the other finishes and learns.
  std::string s;
  conv_bn_model().SerializeToString(&s);
  const fs::path model = scratch() / "rgb.onnx";
  write_bytes(model, s);
  const fs::path root = scratch() / "folder";
  fs::create_directories(root / "val" / "a");
  fs::create_directories(root / "val" / "z");
  const fs::path good =
      fs::path(ACIQ_SOURCE_DIR) / "tests/data/golden/imagenet_mini/val/small/flower_161.jpg";
  for (int i = 0; i < 10; ++i) fs::copy_file(good, root / "val" / "a" / (std::to_string(i) + ".jpg"));
  write_bytes(root / "val" / "z" / "bad.jpg", "\xff\xd8\xff\xe0 not a jpeg");
  const CliRun r = aciq_mpi(
      2, "eval -q --model " + model.string() + " -b 2 --resize 8 --crop 8 --data imagenet:" + root.string());
  expect_one_line_error(r, "bad.jpg", false);
  EXPECT_LT(r.seconds, 60.0);
  // Errors every rank finds before the work are printed once.
  const CliRun bad = aciq_mpi(2, "eval -q --model " + model.string() + " --limt 3");
  expect_one_line_error(bad, "--limt: unknown option", false);
  // Commands that are not sharded refuse to run N times.
  expect_one_line_error(aciq_mpi(2, "layers --model " + model.string()), "runs in one process", false);
}

}  // namespace
}  // namespace aciq::testing
