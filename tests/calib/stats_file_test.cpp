// StatsFile tests: JSON round trip, exact merging, validation of foreign or damaged files, atomic writes.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <csignal>
#include <filesystem>
#include <fstream>

#include "aciq/calib.hpp"

namespace aciq::calib {
namespace {

namespace fs = std::filesystem;

StatsFile sample_file(double shift) {
  StatsFile f;
  f.model_hash = "00112233aabbccdd";
  f.model_path = "m.onnx";
  f.data_source = "unit";
  f.samples = 3;
  PointStats p;
  p.name = "conv1_out";
  p.sample_numel = 64;
  // Three plausible samples (validate() refuses min > max or a negative std/b/range/mean_abs).
  for (double v : {1.0 + shift, 2.5 + shift, -0.5 + shift}) {
    p[Stat::kMax].add(v);
    p[Stat::kMin].add(v - 1.0);
    p[Stat::kMean].add(v - 0.5);
    p[Stat::kStd].add(1.0 + std::abs(v));
    p[Stat::kRange].add(1.0);
    p[Stat::kKurtosis].add(v);
    p[Stat::kMeanAbs].add(std::abs(v - 0.5));
    p[Stat::kB].add(0.5 + 0.1 * std::abs(v));
  }
  f.points.push_back(p);
  return f;
}

// A fresh directory removed at scope exit, also when an assertion ends the test early.
struct ScratchDir {
  fs::path path = fs::temp_directory_path() / ("aciq_stats_test_" + std::to_string(::getpid()));
  ScratchDir() { fs::create_directories(path); }
  ~ScratchDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
};

TEST(Summary, MergeEqualsAddingAll) {
  Summary a, b, all;
  for (double v : {3.0, -1.0, 7.5}) {
    a.add(v);
    all.add(v);
  }
  for (double v : {0.25, 9.0}) {
    b.add(v);
    all.add(v);
  }
  a.merge(b);
  EXPECT_EQ(a.count, all.count);
  EXPECT_EQ(a.sum(), all.sum());
  EXPECT_EQ(a.total, all.total);
  EXPECT_EQ(a.min, -1.0);
  EXPECT_EQ(a.max, 9.0);
  EXPECT_DOUBLE_EQ(a.mean(), (3.0 - 1.0 + 7.5 + 0.25 + 9.0) / 5.0);
}

TEST(StatsFile, JsonRoundTripIsByteIdentical) {
  const StatsFile f = sample_file(0.125);
  const std::string text = f.to_json();
  const StatsFile g = StatsFile::from_json(text, "x.json");
  EXPECT_EQ(g.to_json(), text);
  EXPECT_DOUBLE_EQ(g.points[0].column("mean", Stat::kB), f.points[0].column("mean", Stat::kB));
  EXPECT_DOUBLE_EQ(g.points[0].column("max", Stat::kMax), 2.625);
  // The seed's summary names are readable in the file.
  EXPECT_NE(text.find("\"b\""), std::string::npos);
  EXPECT_NE(text.find("\"mean_abs\""), std::string::npos);
}

TEST(StatsFile, MergeCombinesSamples) {
  StatsFile a = sample_file(0.0);
  const StatsFile b = sample_file(10.0);
  a.merge(b);
  EXPECT_EQ(a.samples, 6);
  EXPECT_EQ(a.points[0][Stat::kMax].count, 6);
  EXPECT_DOUBLE_EQ(a.points[0].column("max", Stat::kMax), 12.5);
  EXPECT_DOUBLE_EQ(a.points[0].column("min", Stat::kMax), -0.5);
  StatsFile other = sample_file(0.0);
  other.model_hash = "ffff";
  EXPECT_THROW(a.merge(other), Error);
}

// Ranges survive merges only while they account for every sample; a file without them makes the
// merged ranges unknown (so a later overlapping chunk cannot pass as new).
TEST(StatsFile, RangesStayOnlyWhileComplete) {
  StatsFile a = sample_file(0.0), b = sample_file(1.0), c = sample_file(2.0);
  a.ranges = {{"d", 0, 3}};
  b.ranges = {{"d", 3, 6}};
  a.merge(b);
  ASSERT_EQ(a.ranges.size(), 1u);
  EXPECT_EQ(a.ranges[0], (SampleRange{"d", 0, 6}));
  EXPECT_THROW(a.merge(b), Error);  // [3, 6) again
  a.merge(c);                       // c records no ranges
  EXPECT_TRUE(a.ranges.empty());
  EXPECT_FALSE(a.ranges_complete());
  StatsFile d = sample_file(0.0);
  d.points.push_back(d.points[0]);
  d.points.back().name = "another";
  EXPECT_THROW(a.merge(d), Error);  // different point sets
  // On load: overlapping or incomplete ranges are refused.
  StatsFile e = sample_file(0.0);
  e.ranges = {{"d", 0, 2}};
  EXPECT_THROW(StatsFile::from_json(e.to_json(), "e.json"), Error);
}

TEST(StatsFile, RefusesAnotherModel) {
  const StatsFile f = sample_file(0.0);
  EXPECT_NO_THROW(f.require_model("00112233aabbccdd", "s.json"));
  try {
    f.require_model("deadbeef", "s.json");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("s.json: statistics were collected for a different model"),
              std::string::npos);
  }
}

TEST(StatsFile, RefusesTruncatedAndForeignFiles) {
  const std::string text = sample_file(0.0).to_json();
  for (std::size_t cut : {std::size_t{0}, text.size() / 3, text.size() - 5}) {
    try {
      StatsFile::from_json(text.substr(0, cut), "cut.json");
      FAIL() << "cut at " << cut;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("cut.json:"), std::string::npos) << e.what();
    }
  }
  EXPECT_THROW(StatsFile::from_json("{\"format\": \"something-else\"}", "f.json"), Error);
  EXPECT_THROW(StatsFile::from_json("[1,2,3]", "f.json"), Error);
  std::string bad_count = text;
  bad_count.replace(bad_count.find("\"count\": 3"), 10, "\"count\": 99");
  EXPECT_THROW(StatsFile::from_json(bad_count, "f.json"), Error);
}

TEST(StatsFile, SaveLoadAndNoTemporaryLeftBehind) {
  const ScratchDir scratch;
  const fs::path& dir = scratch.path;
  const fs::path path = dir / "s.json";
  sample_file(1.0).save(path.string());
  EXPECT_EQ(StatsFile::load(path.string()).to_json(), sample_file(1.0).to_json());
  int files = 0;
  for (const auto& e : fs::directory_iterator(dir)) files += e.is_regular_file();
  EXPECT_EQ(files, 1);
}

// A writer killed with SIGKILL at any moment leaves the previous file intact and readable.
TEST(StatsFile, KilledWriterLeavesPreviousFileIntact) {
  const ScratchDir scratch;
  const fs::path& dir = scratch.path;
  const fs::path path = dir / "s.json";
  const StatsFile old = sample_file(2.0);
  old.save(path.string());
  // A big file takes long enough to write that the kill lands mid-write on most tries.
  StatsFile big = sample_file(3.0);
  for (int i = 0; i < 20000; ++i) {
    big.points.push_back(big.points[0]);
    big.points.back().name = "p" + std::to_string(i);
  }
  for (int attempt = 0; attempt < 5; ++attempt) {
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      for (;;) big.save(path.string());  // rewrite forever until killed
    }
    ::usleep(20000 + 15000 * attempt);
    ::kill(pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
    const StatsFile now = StatsFile::load(path.string());  // must parse: old or new, never torn
    EXPECT_TRUE(now.to_json() == old.to_json() || now.points.size() == big.points.size());
  }
}

}  // namespace
}  // namespace aciq::calib
