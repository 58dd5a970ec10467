// Calibrator table and the histogram methods: names round-trip, percentile against sorted data, mse against
// an exhaustive search, auto against every candidate, the measured error against quantizing the values.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "aciq/calib.hpp"

namespace aciq::calib {
namespace {

// Statistics of one "sample" holding all the values, with their histogram.
PointStats stats_of(const std::vector<float>& x) {
  quant::SampleStats s;
  quant::sample_stats_ref(x, s);
  Accumulator acc({"p"}, true);
  acc.add_samples(0, static_cast<std::int64_t>(x.size()), std::span<const quant::SampleStats>(&s, 1));
  Histogram h;
  h.add(x, static_cast<float>(s.min), static_cast<float>(s.max));
  acc.merge_histogram(0, h);
  return acc.points()[0];
}

std::vector<float> laplace_values(std::size_t n, unsigned seed, bool relu) {
  std::mt19937 rng(seed);
  std::exponential_distribution<float> e(1.0f);
  std::bernoulli_distribution sign(0.5);
  std::vector<float> v(n);
  for (auto& x : v) {
    x = sign(rng) ? e(rng) : -e(rng);
    if (relu) x = std::max(x, 0.0f);
  }
  return v;
}

// The true quantization MSE of the values on the window's grid.
double true_mse(std::vector<float> x, const WindowChoice& w, int bits, bool onnx) {
  const auto orig = x;
  quant::fake_quant(x, activation_quantizer(w, bits, onnx));
  double s = 0.0;
  for (std::size_t i = 0; i < x.size(); ++i) s += (static_cast<double>(x[i]) - orig[i]) * (x[i] - orig[i]);
  return s / static_cast<double>(x.size());
}

TEST(Calibrators, EveryNameParsesBack) {
  for (const auto& c : calibrators()) {
    const quant::ClipSpec spec(c.method, c.default_param);
    EXPECT_EQ(parse_clip(clip_name(spec)), spec) << c.name;
    EXPECT_EQ(&calibrator(c.method), &c);
  }
  EXPECT_EQ(parse_clip("no"), quant::ClipMethod::kNone);
  EXPECT_EQ(parse_clip("gaus"), quant::ClipMethod::kGauss);
  EXPECT_EQ(parse_clip("entropy"), quant::ClipMethod::kKl);
  EXPECT_EQ(parse_clip("percentile"), quant::ClipSpec(quant::ClipMethod::kPercentile, 99.99));
  EXPECT_EQ(parse_clip("percentile:99.9"), quant::ClipSpec(quant::ClipMethod::kPercentile, 99.9));
  EXPECT_EQ(clip_name(parse_clip("percentile:99.9")), "percentile:99.9");
  for (const char* bad :
       {"foo", "", "Laplace", "percentile:0", "percentile:100", "percentile:abc", "kl:5", "percentile:99x"}) {
    EXPECT_THROW(parse_clip(bad), Error) << bad;
  }
}

TEST(Calibrators, PercentileIsTheSortedValueWithinABin) {
  const auto x = laplace_values(100000, 1, false);
  const auto s = stats_of(x);
  std::vector<float> mag(x.size());
  std::transform(x.begin(), x.end(), mag.begin(), [](float v) { return std::fabs(v); });
  std::sort(mag.begin(), mag.end());
  const double width = s.histogram->magnitudes().bin_width();
  for (const double p : {99.0, 99.9, 99.99}) {
    const auto w = choose_window({.stats = &s, .bits = 4, .clip = {quant::ClipMethod::kPercentile, p}});
    const double expect = mag[static_cast<std::size_t>(std::ceil(p / 100.0 * x.size())) - 1];
    EXPECT_GE(w.hi, expect) << p;
    EXPECT_LE(w.hi, expect + width) << p;
    EXPECT_EQ(w.lo, -w.hi) << p;
    EXPECT_EQ(w.method, quant::ClipSpec(quant::ClipMethod::kPercentile, p));
  }
}

TEST(Calibrators, HistogramErrorTracksTheTrueError) {
  for (const bool relu : {false, true}) {
    const auto x = laplace_values(200000, 2, relu);
    const auto s = stats_of(x);
    for (const int bits : {2, 4}) {
      for (const double t : {2.0, 4.0, 8.0}) {
        const WindowChoice w = window_of_range(relu ? 0.0 : -t, t);
        const double h = histogram_mse(*s.histogram, w, bits, true);
        const double e = true_mse(x, w, bits, true);
        EXPECT_NEAR(h, e, 0.05 * e) << "relu " << relu << " bits " << bits << " t " << t;
      }
    }
  }
}

TEST(Calibrators, MseFindsTheBestWindowOfItsSearch) {
  for (const bool relu : {true, false}) {
    const auto x = laplace_values(50000, 3, relu);
    const auto s = stats_of(x);
    for (const int bits : {2, 3, 4, 8}) {
      for (const bool onnx : {false, true}) {
        const WindowRequest req{
            .stats = &s, .bits = bits, .clip = quant::ClipMethod::kMse, .onnx_grid = onnx};
        const auto chosen = choose_window(req);
        const double got = histogram_mse(*s.histogram, chosen, bits, onnx);
        // Exhaustive: every symmetric threshold at a bin edge of |x|.
        const auto m = s.histogram->magnitudes();
        double best = INFINITY;
        for (int j = 1; j <= Histogram::kBins; ++j) {
          const double t = j * m.bin_width();
          const double lo = std::max(static_cast<double>(s.column("min", Stat::kMin)), -t);
          const double hi = std::min(static_cast<double>(s.column("max", Stat::kMax)), t);
          best = std::min(best, histogram_mse(*s.histogram, window_of_range(lo, hi), bits, onnx));
        }
        EXPECT_LE(got, best * (1 + 1e-3)) << "relu " << relu << " bits " << bits << " onnx " << onnx;
        // And no other calibrator's window does better on this error.
        for (const auto& c : calibrators()) {
          if (c.method == quant::ClipMethod::kAuto || c.method == quant::ClipMethod::kMse) continue;
          WindowRequest other = req;
          other.clip = {c.method, c.default_param};
          EXPECT_LE(got, histogram_mse(*s.histogram, choose_window(other), bits, onnx) * (1 + 1e-3))
              << c.name << " bits " << bits;
        }
      }
    }
  }
}

// Tensors that do not cross 0 (a sigmoid gate, a softmax, a constant): every method gives a window inside
// the observed range, mse and auto included (their search must not build windows with lo > hi).
TEST(Calibrators, TensorsThatDoNotCrossZero) {
  std::vector<std::vector<float>> cases;
  std::vector<float> pos(5000), neg(5000), constant(100, 3.5f);
  for (std::size_t i = 0; i < pos.size(); ++i) {
    pos[i] = 1.0f + static_cast<float>(i % 997) / 997.0f;
    neg[i] = -pos[i];
  }
  for (const auto& x : {pos, neg, constant}) {
    const auto s = stats_of(x);
    for (const auto& c : calibrators()) {
      for (const bool onnx : {false, true}) {
        const auto w =
            choose_window({.stats = &s, .bits = 3, .clip = {c.method, c.default_param}, .onnx_grid = onnx});
        EXPECT_LE(w.lo, w.hi) << c.name;
        EXPECT_GE(w.lo, s.column("min", Stat::kMin)) << c.name;
        EXPECT_LE(w.hi, s.column("max", Stat::kMax)) << c.name;
      }
    }
  }
}

TEST(Calibrators, AutoPicksTheLeastErrorCandidate) {
  const auto x = laplace_values(50000, 4, false);
  const auto s = stats_of(x);
  for (const int bits : {2, 4}) {
    const auto a = choose_window({.stats = &s, .bits = bits, .clip = quant::ClipMethod::kAuto});
    const double got = histogram_mse(*s.histogram, a, bits, false);
    bool matched = false;
    for (const auto& c : calibrators()) {
      if (!c.auto_candidate) continue;
      const auto w = choose_window({.stats = &s, .bits = bits, .clip = {c.method, c.default_param}});
      const double e = histogram_mse(*s.histogram, w, bits, false);
      EXPECT_LE(got, e) << c.name;
      matched = matched || (a.method == quant::ClipSpec(c.method, c.default_param) && e == got);
    }
    EXPECT_TRUE(matched);
  }
}

// KL keeps everything when the data has no tail (uniform) and clips a lone far outlier.
TEST(Calibrators, KlClipsTailsNotUniformData) {
  std::vector<float> u(40000);
  for (std::size_t i = 0; i < u.size(); ++i) u[i] = static_cast<float>(i) / static_cast<float>(u.size());
  const auto su = stats_of(u);
  const auto wu = choose_window({.stats = &su, .bits = 8, .clip = quant::ClipMethod::kKl});
  EXPECT_GT(wu.hi, 0.97 * su.column("max", Stat::kMax));
  auto t = laplace_values(40000, 5, true);
  t[17] = 1000.0f;
  const auto st = stats_of(t);
  const auto wt = choose_window({.stats = &st, .bits = 8, .clip = quant::ClipMethod::kKl});
  // 1000 sets bins of width 0.5; KL starts at 2^8 kept bins (t = 128), as TensorRT starts at 128.
  EXPECT_GE(wt.hi, 128.0);
  EXPECT_LT(wt.hi, 200.0);
  EXPECT_EQ(wt.lo, 0.0);
}

TEST(Calibrators, HistogramMethodsRefuseStatisticsWithoutHistograms) {
  auto s = stats_of(laplace_values(1000, 6, false));
  s.histogram.reset();
  for (const auto m : {quant::ClipMethod::kPercentile, quant::ClipMethod::kKl, quant::ClipMethod::kMse,
                       quant::ClipMethod::kAuto}) {
    try {
      (void)choose_window({.stats = &s, .bits = 4, .clip = {m, calibrator(m).default_param}});
      FAIL() << calibrator(m).name;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("needs histograms"), std::string::npos) << e.what();
    }
  }
}

}  // namespace
}  // namespace aciq::calib
