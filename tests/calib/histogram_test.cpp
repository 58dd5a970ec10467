// Histogram tests: bins against a direct formula, exact merging in any order, text round trip, and the
// version-2 statistics file that carries histograms (version 1 still loads).
#include <gtest/gtest.h>
#include <hwy/targets.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>

#include "aciq/calib.hpp"

namespace aciq::calib {
namespace {

std::vector<float> random_values(std::size_t n, unsigned seed, float scale) {
  std::mt19937 rng(seed);
  std::student_t_distribution<float> heavy(3.0f);  // heavy tails: a few values set the exponent
  std::vector<float> v(n);
  for (auto& x : v) x = scale * heavy(rng);
  v[n / 2] = 0.0f;
  return v;
}

void add_all(Histogram& h, std::span<const float> x) {
  const auto [lo, hi] = std::minmax_element(x.begin(), x.end());
  h.add(x, *lo, *hi);
}

// The bins written out independently: the exponent from frexp of the largest magnitude, the bin as
// floor(|v| / width) in long double.
std::vector<std::int64_t> direct_bins(std::span<const float> x, bool positive, int& exponent) {
  float m = 0.0f;
  for (float v : x) {
    if (positive ? v > 0 : v < 0) m = std::max(m, std::fabs(v));
  }
  int e = 0;
  const float mant = std::frexp(m, &e);  // m = mant * 2^e, mant in [0.5, 1): m < 2^e
  (void)mant;
  exponent = e;
  std::vector<std::int64_t> bins(Histogram::kBins, 0);
  const long double width = std::ldexp(1.0L, e) / Histogram::kBins;
  for (float v : x) {
    if (positive ? v > 0 : v < 0) ++bins[static_cast<std::size_t>(std::floor(std::fabs(v) / width))];
  }
  return bins;
}

TEST(Histogram, BinsMatchTheDirectFormula) {
  for (const float scale : {1e-6f, 0.37f, 1.0f, 4096.0f}) {
    const auto x = random_values(20001, 7, scale);
    Histogram h;
    add_all(h, x);
    int ep = 0, en = 0;
    EXPECT_EQ(h.positive.counts, direct_bins(x, true, ep)) << scale;
    EXPECT_EQ(h.negative.counts, direct_bins(x, false, en)) << scale;
    EXPECT_EQ(h.positive.exponent, ep);
    EXPECT_EQ(h.negative.exponent, en);
    EXPECT_EQ(h.zeros, static_cast<std::int64_t>(std::count(x.begin(), x.end(), 0.0f)));
    EXPECT_EQ(h.total(), static_cast<std::int64_t>(x.size()));
  }
}

// add() (SIMD slots, interleaved tables) against add_reference (the scalar loop) bin for bin: sizes on
// both sides of the small-input cutoff and of the block and vector widths; a third zeros (a ReLU's output);
// values exactly on bin edges; magnitudes whose bin scale is no normal float (the scalar path) and ones
// near the float range's ends; a NaN (counted as zero by both); on every SIMD target.
TEST(Histogram, FastAddEqualsTheReferenceOnEveryTarget) {
  const std::vector<std::int64_t> targets = hwy::SupportedAndGeneratedTargets();
  ASSERT_FALSE(targets.empty());
  std::string tested;
  for (const std::int64_t target : targets) {
    hwy::SetSupportedTargetsForTest(target);
    tested += std::string(hwy::TargetName(target)) + " ";
    for (const float scale : {1e-37f, 1e-30f, 0.37f, 1.0f, 3e36f}) {
      for (const std::size_t n :
           {std::size_t{1023}, std::size_t{1024}, std::size_t{4097}, std::size_t{100003}}) {
        std::vector<float> x = random_values(n, 31, scale);
        for (std::size_t i = 0; i < n; i += 3) x[i] = 0.0f;
        x[1] = -0.0f;
        const float edge = std::ldexp(1.0f, std::ilogb(scale) - 8);  // a multiple of the bin width
        for (std::size_t i = 5; i < n; i += 97) x[i] = edge * static_cast<float>(i % 13) - edge * 6.0f;
        const auto [lo, hi] = std::minmax_element(x.begin(), x.end());
        x[7] = std::numeric_limits<float>::quiet_NaN();
        Histogram fast, ref;
        fast.add(x, *lo, *hi);
        ref.add_reference(x, *lo, *hi);
        const std::string where = std::string(hwy::TargetName(target)) + " scale " + std::to_string(scale) +
                                  " n " + std::to_string(n);
        EXPECT_EQ(fast, ref) << where;
        EXPECT_EQ(fast.total(), static_cast<std::int64_t>(n)) << where;
        // A second add into the same histogram (the accumulator adds sample after sample).
        fast.add(x, *lo, *hi);
        ref.add_reference(x, *lo, *hi);
        EXPECT_EQ(fast, ref) << where;
      }
    }
  }
  hwy::SetSupportedTargetsForTest(0);
  std::printf("checked SIMD targets: %s\n", tested.c_str());
}

// Powers of two sit on bin edges: 2^k goes to the next exponent, not into the last bin.
TEST(Histogram, PowerOfTwoMaximumOpensTheNextRange) {
  Histogram h;
  const std::vector<float> x{1.0f, 0.5f, 0.25f};
  add_all(h, x);
  EXPECT_EQ(h.positive.exponent, 1);  // [0, 2)
  EXPECT_EQ(h.positive.counts[1024], 1);
  EXPECT_EQ(h.positive.counts[512], 1);
  EXPECT_EQ(h.positive.counts[256], 1);
  EXPECT_TRUE(h.negative.empty());
}

// Any split into chunks, added or merged in any order, gives the histogram of all the values at once:
// the growing exponent re-bins exactly.
TEST(Histogram, MergingInAnyOrderEqualsAddingAll) {
  auto x = random_values(30000, 11, 0.5f);
  // Small values first, then larger ones: the exponent grows several times.
  std::sort(x.begin(), x.end(), [](float a, float b) { return std::fabs(a) < std::fabs(b); });
  Histogram all;
  add_all(all, x);
  std::mt19937 rng(3);
  for (int trial = 0; trial < 5; ++trial) {
    std::vector<std::size_t> cuts{0, x.size()};
    for (int k = 0; k < 7; ++k)
      cuts.push_back(std::uniform_int_distribution<std::size_t>(1, x.size() - 1)(rng));
    std::sort(cuts.begin(), cuts.end());
    std::vector<Histogram> parts;
    for (std::size_t k = 0; k + 1 < cuts.size(); ++k) {
      if (cuts[k] == cuts[k + 1]) continue;
      Histogram p;
      add_all(p, std::span<const float>(x).subspan(cuts[k], cuts[k + 1] - cuts[k]));
      parts.push_back(std::move(p));
    }
    std::shuffle(parts.begin(), parts.end(), rng);
    Histogram merged, added;
    for (const auto& p : parts) merged.merge(p);
    EXPECT_EQ(merged, all) << "trial " << trial;
    // Adding the chunks in increasing order into one histogram (growth during adds) agrees too.
    for (std::size_t k = 0; k + 1 < cuts.size(); ++k) {
      if (cuts[k] != cuts[k + 1])
        add_all(added, std::span<const float>(x).subspan(cuts[k], cuts[k + 1] - cuts[k]));
    }
    EXPECT_EQ(added, all);
  }
}

TEST(Histogram, MagnitudesFoldBothHalvesOntoOneRange) {
  const std::vector<float> x{-3.0f, -0.5f, 0.0f, 0.75f, 1.5f};
  Histogram h;
  add_all(h, x);
  const auto m = h.magnitudes();
  EXPECT_EQ(m.exponent, 2);  // [0, 4): 3 < 4
  EXPECT_EQ(m.total(), 5);
  EXPECT_EQ(m.counts[0], 1);     // the zero
  EXPECT_EQ(m.counts[1536], 1);  // 3.0 / (4 / 2048)
  EXPECT_EQ(m.counts[256], 1);   // 0.5
  EXPECT_EQ(m.counts[384], 1);   // 0.75
  EXPECT_EQ(m.counts[768], 1);   // 1.5
}

TEST(Histogram, NonFiniteRangeAddsNothing) {
  Histogram h;
  const std::vector<float> x{1.0f, std::numeric_limits<float>::infinity()};
  h.add(x, 1.0f, std::numeric_limits<float>::infinity());
  EXPECT_EQ(h.total(), 0);
}

TEST(Histogram, TextRoundTripAndMalformedText) {
  Histogram h;
  add_all(h, random_values(5000, 5, 2.0f));
  for (const auto* half : {&h.positive, &h.negative}) {
    const auto text = Histogram::half_to_string(*half);
    EXPECT_EQ(Histogram::half_from_string(text), *half);
  }
  EXPECT_TRUE(Histogram::half_from_string("").empty());
  for (const char* bad : {"x:1", "e:1 5", "e:1 3:1 2:1", "e:1 2048:1", "e:1 3:0", "e:abc", "e:1 3:1x",
                          "e:129 1:1", "e:-149 1:1", "e:1 3:1125899906842624"}) {
    EXPECT_THROW(Histogram::half_from_string(bad), Error) << bad;
  }
}

StatsFile file_with_histogram(const std::vector<float>& values) {
  StatsFile f;
  f.model_hash = "00112233aabbccdd";
  f.samples = 1;
  PointStats p;
  p.name = "v";
  p.sample_numel = static_cast<std::int64_t>(values.size());
  quant::SampleStats s;
  quant::sample_stats_ref(values, s);
  Accumulator acc({"v"}, true);
  acc.add_samples(0, p.sample_numel, std::span<const quant::SampleStats>(&s, 1));
  Histogram h;
  add_all(h, values);
  acc.merge_histogram(0, h);
  f.points = acc.points();
  return f;
}

TEST(StatsFile, HistogramsRoundTripMergeAndVersionOne) {
  const auto a = file_with_histogram(random_values(999, 1, 1.0f));
  const auto text = a.to_json();
  EXPECT_NE(text.find("\"version\": 2"), std::string::npos);
  const auto back = StatsFile::from_json(text, "a.json");
  ASSERT_TRUE(back.points[0].histogram);
  EXPECT_EQ(*back.points[0].histogram, *a.points[0].histogram);
  EXPECT_EQ(back.to_json(), text);

  // Merging two files merges their histograms exactly.
  auto b = file_with_histogram(random_values(999, 2, 3.0f));
  auto m = a;
  m.merge(b);
  Histogram both = *a.points[0].histogram;
  both.merge(*b.points[0].histogram);
  EXPECT_EQ(*m.points[0].histogram, both);
  EXPECT_EQ(m.points[0].histogram->total(), 2 * 999);

  // A version-1 file (no histograms) loads; merging with it drops the histogram.
  auto v1 = file_with_histogram(random_values(999, 3, 1.0f));
  v1.points[0].histogram.reset();
  std::string v1_text = v1.to_json();
  v1_text.replace(v1_text.find("\"version\": 2"), 12, "\"version\": 1");
  const auto old = StatsFile::from_json(v1_text, "old.json");
  EXPECT_FALSE(old.points[0].histogram);
  auto dropped = a;
  dropped.merge(old);
  EXPECT_FALSE(dropped.points[0].histogram);

  // A histogram that does not count samples x sample size values is refused.
  auto wrong = a;
  wrong.points[0].histogram->zeros += 1;
  EXPECT_THROW(StatsFile::from_json(wrong.to_json(), "w.json"), Error);
  std::string v4 = text;
  v4.replace(v4.find("\"version\": 2"), 12, "\"version\": 4");
  EXPECT_THROW(StatsFile::from_json(v4, "v4.json"), Error);  // newer than this aciq reads
}

}  // namespace
}  // namespace aciq::calib
