// Activation statistics: per-sample summaries accumulated over a dataset, and the StatsFile that stores them.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "aciq/core.hpp"
#include "aciq/quant.hpp"

namespace aciq::calib {

// The per-sample statistics the seed collects (statistic_manager.py), plus range = max - min.
enum class Stat : std::uint8_t { kMax, kMin, kMean, kStd, kRange, kKurtosis, kMeanAbs, kB };
inline constexpr std::size_t kStatCount = 8;
std::string_view stat_name(Stat s);  // "max", "min", "mean", "std", "range", "kurtosis", "mean_abs", "b"

// The exact sum of finite doubles: a fixed-point accumulator wide enough for every double (2^-1074 to
// 2^1024), so adding in any order, or merging partial sums, gives the same value bit for bit. This is
// what makes statistics identical whatever the thread count, the chunking of a dataset into merged
// collections or the number of MPI ranks (docs/determinism.md).
class ExactSum {
 public:
  void add(double v);  // v must be finite
  void merge(const ExactSum& other);
  // The sum rounded to double, a function of the exact value alone.
  [[nodiscard]] double value() const;
  // Canonical text: "0", or "+" / "-", the index of the lowest non-zero 32-bit digit, ':' and the
  // digits in hex from the highest down. Equal sums give equal text.
  [[nodiscard]] std::string to_string() const;
  // Throws aciq::Error on malformed text.
  static ExactSum from_string(const std::string& text);
  friend bool operator==(const ExactSum& a, const ExactSum& b) { return a.to_string() == b.to_string(); }

  static constexpr int kDigits = 70;  // 32-bit digits; digit i weighs 2^(32 i - kBias)
  static constexpr int kBias = 1152;  // below 2^-1074, the smallest subnormal's bit

 private:
  void normalize() const;  // carries so that every digit but the top is in [0, 2^32)
  mutable std::array<std::int64_t, kDigits> digit_{};
  mutable int pending_ = 0;  // adds since the last normalize (each adds < 2^32 to a digit)
};

// min / mean / max over samples of one per-sample statistic, stored as count/exact sum/min/max so
// partial collections merge exactly.
struct Summary {
  std::int64_t count = 0;
  ExactSum total;
  double min = 0.0;
  double max = 0.0;

  void add(double v);
  void merge(const Summary& other);
  [[nodiscard]] double sum() const { return total.value(); }
  [[nodiscard]] double mean() const { return count ? sum() / static_cast<double>(count) : 0.0; }
};

// Histogram of one tensor's values over every calibration sample, exactly mergeable (docs/histograms.md).
// Two one-sided halves, positive values and magnitudes of negative ones, plus a count of exact zeros. A
// half with exponent e holds kBins bins of width 2^e / kBins covering [0, 2^e); value v lands in bin
// floor(v * 2^(kBinBits - e)), exact in double because the scale is a power of two. When a value >= 2^e
// arrives, e grows to the smallest exponent that holds it and bin j moves to j >> d: floor(floor(x) / 2^d)
// = floor(x / 2^d), so the result equals binning every value directly at the final exponent. The final
// exponent depends only on the largest value, and counts are integers: any order of adds and merges,
// any thread count, batch size or number of workers gives the same histogram. Memory: 2 x kBins counts.
class Histogram {
 public:
  static constexpr int kBinBits = 11;
  static constexpr int kBins = 1 << kBinBits;  // 2048, TensorRT's and PyTorch's bin count
  struct Half {
    int exponent = 0;                  // bins cover [0, 2^exponent)
    std::vector<std::int64_t> counts;  // kBins entries, or none while the half is empty
    [[nodiscard]] bool empty() const { return counts.empty(); }
    [[nodiscard]] double bin_width() const;  // 2^exponent / kBins
    [[nodiscard]] std::int64_t total() const;
    friend bool operator==(const Half&, const Half&) = default;
  };

  // Adds values whose minimum and maximum are `lo` and `hi` (a sample's statistics give them). Nothing
  // is added when lo or hi is not finite (the statistics of such a sample are refused anyway).
  void add(std::span<const float> x, float lo, float hi);
  // The plain scalar loop add() must equal bin for bin (its SIMD path is tested against this).
  void add_reference(std::span<const float> x, float lo, float hi);
  void merge(const Histogram& other);
  [[nodiscard]] std::int64_t total() const { return zeros + positive.total() + negative.total(); }
  // The histogram of |x| on one exponent (the larger half's), zeros in bin 0.
  [[nodiscard]] Half magnitudes() const;

  // Canonical text of a half: "e:EXP" then " BIN:COUNT" for each non-empty bin; "" for an empty half.
  static std::string half_to_string(const Half& h);
  static Half half_from_string(const std::string& text);  // throws aciq::Error on malformed text

  std::int64_t zeros = 0;
  Half positive, negative;
  friend bool operator==(const Histogram&, const Histogram&) = default;
};

// Per-channel summaries of an activation (axis 1 of [N, C, ...]; a rank-2 [N, F] value has F channels
// of one element): per channel, min / mean / max over samples of that channel's per-sample statistics.
enum class ChannelStat : std::uint8_t { kMax, kMin, kMean, kStd, kB };
inline constexpr std::size_t kChannelStatCount = 5;
std::string_view channel_stat_name(ChannelStat s);  // "max", "min", "mean", "std", "b"
struct ChannelStats {
  std::array<Summary, kChannelStatCount> summaries{};
  [[nodiscard]] const Summary& operator[](ChannelStat s) const {
    return summaries[static_cast<std::size_t>(s)];
  }
  Summary& operator[](ChannelStat s) { return summaries[static_cast<std::size_t>(s)]; }
};
// The statistics of each channel of one sample (`channels` contiguous blocks of x), into out[0..channels).
// A one-element block has std 0 (as Accumulator's fallback).
void channel_sample_stats(std::span<const float> x, std::int64_t channels, std::span<quant::SampleStats> out);

struct PointStats {
  std::string name;               // the quantization point's stable name (ONNX value name)
  std::int64_t sample_numel = 0;  // elements per sample (C*H*W), the N of the Gaussian estimate
  std::array<Summary, kStatCount> summaries{};
  // Per-tensor histogram over all samples (statistics files of version 2 collected with histograms;
  // absent in version 1 files and after merging with a file that has none).
  std::optional<Histogram> histogram;
  // Per-channel summaries (statistics files of version 3 collected with --channel-stats; empty otherwise
  // and after merging with a file that has none). Memory: about 3 KB per channel.
  std::vector<ChannelStats> channels;

  [[nodiscard]] const Summary& operator[](Stat s) const { return summaries[static_cast<std::size_t>(s)]; }
  Summary& operator[](Stat s) { return summaries[static_cast<std::size_t>(s)]; }
  // The seed's summary column, e.g. column("mean", Stat::kB) is mean_b; which is "min"|"mean"|"max".
  [[nodiscard]] double column(std::string_view which, Stat s) const;
};

// A contiguous run of dataset samples [begin, end) that went into a statistics file; `data` names the
// dataset and split (Dataset::describe), so chunks of one split can be told apart from other splits.
struct SampleRange {
  std::string data;
  std::int64_t begin = 0, end = 0;
  friend bool operator==(const SampleRange&, const SampleRange&) = default;
};

struct StatsFile {
  static constexpr int kVersion =
      3;                   // 2 adds histograms, 3 per-channel summaries; versions 1 and 2 still load
  std::string model_hash;  // graph::Graph::model_hash of the model the statistics were collected on
  std::string model_path;
  std::string data_source;  // human-readable dataset description
  std::int64_t samples = 0;
  // Which samples were collected, sorted by (data, begin) with adjacent runs joined. Files written
  // before ranges were recorded have none; merging them cannot be checked for overlap.
  std::vector<SampleRange> ranges;
  std::vector<PointStats> points;

  [[nodiscard]] const PointStats* find(const std::string& name) const;
  // Adds another collection over different samples of the same model (counts, sums, extremes).
  // Throws if a sample range of `other` overlaps one already here (the same samples counted twice),
  // or if the files hold different points.
  void merge(const StatsFile& other);
  // Whether `ranges` accounts for every sample (false for files from before ranges were recorded).
  [[nodiscard]] bool ranges_complete() const;
  // The first range of `other` that overlaps one here, if any ("" when none), as "DATA [a, b)".
  [[nodiscard]] std::string overlap(const StatsFile& other) const;
  // Plausibility of the contents (throws naming `source` and the point): at least one sample, every
  // summary counted for every sample, min <= mean <= max, non-negative std/b/range/mean_abs,
  // mean of per-sample minima <= mean of per-sample maxima.
  void validate(const std::string& source) const;

  // JSON text; byte-identical for identical contents.
  [[nodiscard]] std::string to_json() const;
  static StatsFile from_json(const std::string& text, const std::string& source);

  // Writes through a temporary file in the same directory, fsync and rename: a crash at any
  // moment leaves either the old file or the new one, never a torn file.
  void save(const std::string& path) const;
  static StatsFile load(const std::string& path);
  // Throws unless the file was made for the model with this hash.
  void require_model(const std::string& model_hash, const std::string& path) const;
};

// Accumulates per-sample statistics of activations, one PointStats per observed value, in sample
// order (so results do not depend on the thread count).
class Accumulator {
 public:
  // With `histograms`, every point also gets a Histogram of all its values.
  // With `channels`, every point also gets per-channel summaries (values of rank >= 2).
  explicit Accumulator(std::vector<std::string> point_names, bool histograms = false, bool channels = false);
  // `batch` is [N, ...]; each of its N rows (C*H*W elements) is one sample. Rows are reduced in
  // parallel on the context's pool, then added in order.
  void add_batch(std::size_t point, const Tensor& batch, Context& ctx);
  [[nodiscard]] bool histograms() const { return histograms_; }
  [[nodiscard]] bool channels() const { return channels_; }
  // Adds per-channel statistics already reduced per (sample, channel), sample-major: rows.size() is a
  // multiple of `channels`.
  void add_channel_samples(std::size_t point, std::int64_t channels, std::span<const quant::SampleStats> rows,
                           ThreadPool* pool = nullptr);
  // Adds a histogram of values of `point` built elsewhere (an observer binning while data is in cache).
  void merge_histogram(std::size_t point, const Histogram& h);
  // Adds statistics already reduced per sample (in sample order), e.g. by an observer that fuses the
  // reduction with other per-sample work; `sample_numel` is the element count of one sample.
  void add_samples(std::size_t point, std::int64_t sample_numel, std::span<const quant::SampleStats> rows);
  [[nodiscard]] const std::vector<PointStats>& points() const { return points_; }

 private:
  std::vector<PointStats> points_;
  bool histograms_ = false;
  bool channels_ = false;
};

// ---- Calibrators: how one activation tensor's window is chosen (docs/calibrators.md) ----

// What a calibrator is asked for one tensor.
struct WindowRequest {
  const PointStats* stats = nullptr;
  int bits = 8;
  quant::ClipSpec clip;
  bool seed_coefficients = false;  // the seed's 2-decimal alpha tables (analytical methods)
  bool onnx_grid = false;          // the grid that runs: ONNX QuantizeLinear (true) or the seed's GEMMLOWP
};

struct WindowChoice {
  quant::QuantWindow window;  // [offset, offset + delta]: what the seed's kernel is given
  double lo = 0.0, hi = 0.0;  // the same window as a range: what the ONNX grid is built from (range-based
                              // methods keep their exact ends; for the seed's rule hi = offset + delta)
  double alpha = 0.0;         // clipping value of the analytical methods (0 otherwise)
  double coefficient = 0.0;   // alpha / b or alpha / sigma (0 when not analytical)
  quant::ClipSpec method;     // the method that chose it (for mix and auto: the one picked)
};

struct Calibrator {
  quant::ClipMethod method;
  std::string_view name;       // canonical CLI name
  std::string_view aliases;    // other accepted spellings, space-separated
  std::string_view statistic;  // what it reads, as the plan records it
  bool needs_histogram = false;
  double default_param = 0.0;   // > 0: takes ":P" (percentile)
  bool auto_candidate = false;  // one of the methods `auto` compares
  WindowChoice (*choose)(const WindowRequest&) = nullptr;
};

// The table, in the order of reports and of `auto`'s tie-break.
std::span<const Calibrator> calibrators();
const Calibrator& calibrator(quant::ClipMethod m);
// "percentile:99.9", "kl", "gaus", ...; throws listing the table's names otherwise (or for a bad P).
quant::ClipSpec parse_clip(std::string_view text);
// Canonical text, parsing back: "laplace", "percentile:99.99".
std::string clip_name(const quant::ClipSpec& c);
// The window of `request` by its method; throws naming the point when the method needs a histogram the
// statistics lack.
WindowChoice choose_window(const WindowRequest& request);
// The grid a window becomes when it runs (the plan's activation grids): the seed's GEMMLOWP parameters or
// the ONNX unsigned grid of `bits`.
quant::PointQuantizer activation_quantizer(const WindowChoice& window, int bits, bool onnx_grid);
// A WindowChoice for [lo, hi], or for a seed-style window (hi = offset + delta).
WindowChoice window_of_range(double lo, double hi);
WindowChoice window_of(const quant::QuantWindow& w);
// Mean squared error of quantizing the histogram's values with `window` under the grid that runs, each
// bin's values taken at its centre (which changes the error by a term the same for every window, except
// in bins a rounding boundary cuts).
double histogram_mse(const Histogram& h, const WindowChoice& window, int bits, bool onnx_grid);

// Atomically writes `contents` to `path` (temp file + fsync + rename).
void write_file_atomically(const std::string& path, const std::string& contents);

// Throws unless write_file_atomically(path, ...) can succeed now: `path` is not a directory, and its
// directory exists and accepts a new file (probed by creating and removing a temporary file there).
// Commands call it for every output before any long work. `what` names the option, e.g. "--json".
void check_writable(const std::string& path, const std::string& what);

}  // namespace aciq::calib
