// The cost of combining statistics across MPI ranks, per rank's file: rank 0 receives each rank's
// statistics as JSON text, parses it and merges it (exact sums). Measured against the number of
// points (a model's collection points: ResNet-20 42, MobileNetV2 ~150, ResNet-50 ~160) so that
// docs/scaling.md can model the final reduction of an N-rank job.
#include <benchmark/benchmark.h>

#include <random>
#include <string>

#include "aciq/calib.hpp"

namespace {

aciq::calib::StatsFile synthetic(int points, std::int64_t samples, unsigned seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(0.1, 2.0);
  aciq::calib::StatsFile f;
  f.model_hash = "0123456789abcdef";
  f.samples = samples;
  f.ranges.push_back({"bench", 0, samples});
  for (int p = 0; p < points; ++p) {
    aciq::calib::PointStats s;
    s.name = "/features/features." + std::to_string(p) + "/conv/Conv_output_0";
    s.sample_numel = 64 * 56 * 56;
    // 64 samples' worth of plausible per-sample values: enough for realistic exact-sum digits.
    for (int i = 0; i < 64; ++i) {
      const double v = u(rng);
      using aciq::calib::Stat;
      s[Stat::kMax].add(v + 3);
      s[Stat::kMin].add(-v);
      s[Stat::kMean].add(v / 2);
      s[Stat::kStd].add(v);
      s[Stat::kRange].add(2 * v + 3);
      s[Stat::kKurtosis].add(v - 1);
      s[Stat::kMeanAbs].add(v);
      s[Stat::kB].add(v / 3);
    }
    f.points.push_back(std::move(s));
  }
  return f;
}

// One rank's contribution at rank 0: serialize (on the sender), parse, merge.
void BM_ReduceOneRank(benchmark::State& state) {
  const int points = static_cast<int>(state.range(0));
  const auto mine = synthetic(points, 1000, 1);
  auto other = synthetic(points, 1000, 2);
  other.ranges = {{"bench", 1000, 2000}};
  std::size_t bytes = 0;
  for (auto _ : state) {
    const std::string text = other.to_json();
    bytes = text.size();
    auto total = mine;
    total.merge(aciq::calib::StatsFile::from_json(text, "rank"));
    benchmark::DoNotOptimize(total.samples);
  }
  state.counters["json_bytes"] = static_cast<double>(bytes);
}
BENCHMARK(BM_ReduceOneRank)->Arg(42)->Arg(160)->Arg(640)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
