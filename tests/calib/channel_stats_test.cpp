// Per-channel activation summaries: values worked out in closed form, the fused collect path equal to the
// generic one, byte-identical across thread counts and merges, damaged files refused.
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "aciq/calib.hpp"
#include "aciq/eval.hpp"
#include "aciq/onnx.hpp"

namespace aciq::calib {
namespace {

// [N=3, C=4, 2, 5]: element j (0..9) of channel c of sample i is 10c + i + j / 10.
Tensor ramp_batch() {
  std::vector<float> v;
  for (int i = 0; i < 3; ++i)
    for (int c = 0; c < 4; ++c)
      for (int j = 0; j < 10; ++j)
        v.push_back(static_cast<float>(10 * c + i) + static_cast<float>(j) / 10.0f);
  return Tensor::from_f32({3, 4, 2, 5}, v);
}

StatsFile file_of(const Accumulator& acc, std::int64_t samples) {
  StatsFile f;
  f.model_hash = "00112233aabbccdd";
  f.samples = samples;
  f.points = acc.points();
  return f;
}

TEST(ChannelStats, ClosedFormValues) {
  Context ctx(2);
  Accumulator acc({"x"}, false, true);
  acc.add_batch(0, ramp_batch(), ctx);
  const auto& p = acc.points()[0];
  ASSERT_EQ(p.channels.size(), 4u);
  // Offsets j / 10 for j = 0..9: mean 0.45, b = mean |j/10 - 0.45| = 0.25, unbiased std sqrt(82.5 / 9) / 10.
  const double std = std::sqrt(82.5 / 9.0) / 10.0;
  for (std::size_t c = 0; c < 4; ++c) {
    const auto& ch = p.channels[c];
    const double base = 10.0 * static_cast<double>(c);
    EXPECT_EQ(ch[ChannelStat::kMin].count, 3);
    EXPECT_NEAR(ch[ChannelStat::kMin].mean(), base + 1.0, 1e-5);  // per-sample minima base + 0, 1, 2
    EXPECT_NEAR(ch[ChannelStat::kMin].min, base, 1e-5);
    EXPECT_NEAR(ch[ChannelStat::kMax].max, base + 2.9, 1e-5);
    EXPECT_NEAR(ch[ChannelStat::kMean].mean(), base + 1.45, 1e-5);
    EXPECT_NEAR(ch[ChannelStat::kMean].min, base + 0.45, 1e-5);
    EXPECT_NEAR(ch[ChannelStat::kStd].mean(), std, 1e-5);
    EXPECT_NEAR(ch[ChannelStat::kB].mean(), 0.25, 1e-5);
  }
  // Without the option there are none; a rank-1 value has no channels.
  Accumulator plain({"x"}, false, false);
  plain.add_batch(0, ramp_batch(), ctx);
  EXPECT_TRUE(plain.points()[0].channels.empty());
  Accumulator flat({"x"}, false, true);
  const std::vector<float> three{1.0f, 2.0f, 3.0f};
  flat.add_batch(0, Tensor::from_f32({3}, three), ctx);
  EXPECT_TRUE(flat.points()[0].channels.empty());
}

TEST(ChannelStats, JsonRoundTripMergeAndThreads) {
  const Tensor batch = ramp_batch();
  Context one(1), two(2);
  Accumulator a({"x"}, false, true), b({"x"}, false, true);
  a.add_batch(0, batch, one);
  b.add_batch(0, batch, two);
  const auto fa = file_of(a, 3);
  const std::string text = fa.to_json();
  EXPECT_EQ(file_of(b, 3).to_json(), text);  // thread count
  EXPECT_EQ(StatsFile::from_json(text, "s.json").to_json(), text);
  EXPECT_NE(text.find("\"version\": 3"), std::string::npos);
  // Samples 0 and 1..2 collected apart and merged: the same bytes as all at once.
  const auto rows = [&](std::int64_t lo, std::int64_t hi) {
    std::vector<float> v(batch.f32().begin() + lo * 40, batch.f32().begin() + hi * 40);
    return Tensor::from_f32({hi - lo, 4, 2, 5}, v);
  };
  Accumulator first({"x"}, false, true), rest({"x"}, false, true);
  first.add_batch(0, rows(0, 1), one);
  rest.add_batch(0, rows(1, 3), one);
  auto merged = file_of(first, 1);
  merged.merge(file_of(rest, 2));
  EXPECT_EQ(merged.to_json(), text);
  // With a file that has none, the merged file keeps none (half the samples would misstate a channel).
  Accumulator bare({"x"}, false, false);
  bare.add_batch(0, rows(1, 3), one);
  auto partial = file_of(first, 1);
  partial.merge(file_of(bare, 2));
  EXPECT_TRUE(partial.points[0].channels.empty());
  EXPECT_NE(partial.to_json().find("\"version\": 2"), std::string::npos);
}

TEST(ChannelStats, DamagedFilesAreRefused) {
  Context ctx(1);
  Accumulator a({"x"}, false, true);
  a.add_batch(0, ramp_batch(), ctx);
  const auto j = nlohmann::json::parse(file_of(a, 3).to_json());
  auto edited = j;
  edited["points"][0]["channels"]["mean"]["mean"][1] = 99.0;  // no longer sum_exact / count
  EXPECT_THROW(StatsFile::from_json(edited.dump(), "s.json"), Error);
  auto short_column = j;
  short_column["points"][0]["channels"]["max"]["min"].erase(0);
  EXPECT_THROW(StatsFile::from_json(short_column.dump(), "s.json"), Error);
  auto bad_count = j;
  bad_count["points"][0]["channels"]["count"] = 3;  // does not divide the 40 values of a sample
  EXPECT_THROW(StatsFile::from_json(bad_count.dump(), "s.json"), Error);
}

// The observer that fuses statistics with the activation gives the same file as the generic three steps
// (statistics, activation pass, statistics), on ResNet-20's Conv -> Relu pairs.
struct GenericCollect : eval::CollectObserver {
  using eval::CollectObserver::CollectObserver;
  void observe_activation(std::size_t index, Tensor& value, const Activation& act,
                          std::size_t activated_index, Context& ctx) override {
    runtime::Observer::observe_activation(index, value, act, activated_index, ctx);
  }
};

TEST(ChannelStats, FusedCollectEqualsGenericSteps) {
  auto g = onnx_import::load_model(std::string(ACIQ_SOURCE_DIR) + "/models/resnet20.onnx");
  const auto points = policy::collection_points(g);
  std::vector<float> v(4 * 28 * 28);
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>((i * 7919) % 351) / 100.0f - 1.0f;
  const Tensor batch = Tensor::from_f32({4, 1, 28, 28}, v);
  Context ctx(2);
  runtime::Executor exec(g, ctx, {});
  exec.set_observed(points);
  eval::CollectObserver fused(points, ctx, true, true);
  GenericCollect generic(points, ctx, true, true);
  exec.run({batch}, &fused);
  exec.run({batch}, &generic);
  const auto a = file_of(fused.accumulator(), 4), b = file_of(generic.accumulator(), 4);
  EXPECT_EQ(a.to_json(), b.to_json());
  int with_channels = 0;
  for (const auto& p : a.points) with_channels += p.channels.empty() ? 0 : 1;
  EXPECT_EQ(with_channels, static_cast<int>(points.size()));
}

}  // namespace
}  // namespace aciq::calib
