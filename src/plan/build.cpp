// Building a QuantPlan: the policy's points and windows turned into grids of the chosen semantics, and
// the weight/bias grids from their values.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <tuple>

#include "aciq/plan.hpp"
#include "aciq/runtime.hpp"
#include "channel_index.hpp"
#include "kernels/reference/window.hpp"

namespace aciq::plan {

namespace {

using policy::is_quantized_layer;

// The output-channel axis of a layer's weight: Conv [O, I/g, kh, kw] -> 0; ConvTranspose
// [I, O/g, kh, kw] -> 1; Gemm B is [O, I] with transB = 1 and [I, O] otherwise; MatMul's right
// operand [.., I, O] -> its last axis.
int output_axis(const graph::Node& n, const Tensor& w) {
  if (n.op_type == "Conv") return 0;
  if (n.op_type == "ConvTranspose") return 1;
  if (n.op_type == "Gemm") return n.get_int("transB", 0) != 0 ? 0 : 1;
  return static_cast<int>(w.rank()) - 1;
}

std::string statistic_of(const policy::QuantPoint& p, const quant::ClipSpec& method) {
  if (p.role == policy::Role::kClassifier && p.clip == quant::ClipMethod::kNone)
    return "min of per-sample min, max of per-sample max";
  return std::string(calib::calibrator(method.method).statistic);
}

void set_seed_grid(TensorQuant& t, const quant::AffineQuantParams& ap) {
  t.qmin = 0;
  t.qmax = static_cast<std::int32_t>(ap.qmax);
  t.seed_form = ap.form;
  t.scale.push_back(ap.scale);
  t.zero_point.push_back(ap.form == quant::GridForm::kZeroPoint ? static_cast<std::int32_t>(ap.zero_point)
                                                                : 0);
  t.seed_offset = ap.offset;
}

void set_onnx_grid(TensorQuant& t, const quant::IntGrid& g) {
  t.qmin = g.qmin;
  t.qmax = g.qmax;
  t.scale.push_back(g.scale);
  t.zero_point.push_back(g.zero_point);
  t.lo.push_back(g.lo());
  t.hi.push_back(g.hi());
}

// Per-channel [min, max] and max |w| along `axis`.
struct ChannelRange {
  std::vector<float> lo, hi;
};
ChannelRange channel_ranges(const Tensor& w, int axis) {
  const ChannelIndex channel(w.shape(), axis);
  ChannelRange r;
  r.lo.assign(static_cast<std::size_t>(channel.channels), std::numeric_limits<float>::infinity());
  r.hi.assign(static_cast<std::size_t>(channel.channels), -std::numeric_limits<float>::infinity());
  const auto v = w.f32();
  for (std::size_t i = 0; i < v.size(); ++i) {
    const std::size_t c = channel(i);
    r.lo[c] = std::min(r.lo[c], v[i]);
    r.hi[c] = std::max(r.hi[c], v[i]);
  }
  return r;
}

// The values of channel c along `axis`.
std::vector<float> channel_values(const Tensor& w, int axis, std::size_t c) {
  const ChannelIndex channel(w.shape(), axis);
  const auto v = w.f32();
  std::vector<float> out;
  const std::int64_t step = channel.channels * channel.inner;
  for (auto base = static_cast<std::int64_t>(c) * channel.inner; base < static_cast<std::int64_t>(v.size());
       base += step) {
    out.insert(out.end(), v.begin() + base, v.begin() + base + channel.inner);
  }
  return out;
}

std::string weight_clip_statistic(WeightClip c) {
  switch (c) {
    case WeightClip::kMinMax: return "max |w| of each output channel";
    case WeightClip::kLaplace:
      return "min(max |w|, optimal Laplace coefficient x b = mean|w - mean|) per output channel";
    case WeightClip::kGauss: return "min(max |w|, optimal Gauss coefficient x std) per output channel";
    case WeightClip::kMse:
      return "per output channel, the threshold with the least MSE of its weights on the grid that runs";
  }
  return "";
}

// The symmetric grid's threshold for one channel's weights: levels k * t / (2^(M-1) - 1), |k| <= 2^(M-1) - 1.
float channel_threshold(const std::vector<float>& v, float max_abs, int bits, const PlanOptions& o) {
  if (o.weight_clip == WeightClip::kMinMax || max_abs == 0.0f || v.empty()) return max_abs;
  double mean = 0.0;
  for (float x : v) mean += x;
  mean /= static_cast<double>(v.size());
  if (o.weight_clip == WeightClip::kLaplace || o.weight_clip == WeightClip::kGauss) {
    double b = 0.0, var = 0.0;
    for (float x : v) {
      b += std::fabs(x - mean);
      var += (x - mean) * (x - mean);
    }
    b /= static_cast<double>(v.size());
    const double sd = v.size() > 1 ? std::sqrt(var / static_cast<double>(v.size() - 1)) : 0.0;
    const bool laplace = o.weight_clip == WeightClip::kLaplace;
    const double t = quant::optimal_alpha_coefficient(
                         laplace ? quant::Distribution::kLaplace : quant::Distribution::kGauss, bits) *
                     (laplace ? b : sd);
    return t > 0.0 ? std::min(max_abs, static_cast<float>(t)) : max_abs;
  }
  // mse: t = max_abs * k / 256 for k = 1..256, the least error of the channel's weights quantized on the
  // very grid the plan will hold (ties: the larger t, which clips less).
  const int qmax = (1 << (bits - 1)) - 1;
  float best = max_abs;
  double best_err = INFINITY;
  std::vector<float> q;
  for (int k = 256; k >= 1; --k) {
    const float t = max_abs * static_cast<float>(k) / 256.0f;
    q = v;
    if (o.semantics == Semantics::kSeed) {
      quant::fake_quant(q, quant::symmetric_params(t, bits));
    } else {
      quant::fake_quant_onnx(q, quant::onnx_symmetric_grid(t, qmax));
    }
    double e = 0.0;
    for (std::size_t i = 0; i < q.size(); ++i)
      e += (static_cast<double>(q[i]) - v[i]) * (static_cast<double>(q[i]) - v[i]);
    if (e < best_err) {
      best_err = e;
      best = t;
    }
  }
  return best;
}

TensorQuant weight_entry(const graph::Graph& g, const graph::Node& n, const std::string& name,
                         const Tensor& w, const PlanOptions& o) {
  const auto v = w.f32();
  if (!std::all_of(v.begin(), v.end(), [](float x) { return std::isfinite(x); }))
    fail(g.source + ": initializer '" + name + "' of " + n.describe() + " contains NaN or Inf");
  TensorQuant t;
  t.tensor = name;
  t.node = n.name;
  t.kind = TensorKind::kWeight;
  t.role = n.op_type;
  t.bits = o.policy.weight_bits;
  t.is_signed = o.semantics == Semantics::kOnnx;
  const auto [mn_it, mx_it] = std::minmax_element(v.begin(), v.end());
  const float mn = v.empty() ? 0.0f : *mn_it, mx = v.empty() ? 0.0f : *mx_it;
  t.requested_lo = mn;
  t.requested_hi = mx;
  // A grouped ConvTranspose's axis 1 holds O/g channels, shared by the groups: per-channel scales
  // along it could not give the O per-channel bias scales an integer kernel needs, so it stays per tensor.
  const bool grouped_transpose = n.op_type == "ConvTranspose" && n.get_int("group", 1) > 1;
  if (o.weights == WeightGranularity::kTensor || grouped_transpose) {
    t.method = "minmax";
    t.statistic = grouped_transpose && o.weights != WeightGranularity::kTensor
                      ? "min and max of the tensor (grouped ConvTranspose: per tensor)"
                      : "min and max of the tensor";
    if (o.semantics == Semantics::kSeed) {
      set_seed_grid(t, quant::affine_params(mn, mx, t.bits));
      t.lo.push_back(mn);
      t.hi.push_back(mx);
    } else {
      const auto [qmin, qmax] = quant::int_range(t.bits, true, false);
      set_onnx_grid(t, quant::onnx_asymmetric_grid(mn, mx, qmin, qmax));
    }
    return t;
  }
  t.method = std::string(weight_clip_name(o.weight_clip)) + "-symmetric";
  t.statistic = weight_clip_statistic(o.weight_clip);
  t.axis = output_axis(n, w);
  const auto r = channel_ranges(w, t.axis);
  const std::size_t channels = r.lo.size();
  std::vector<float> max_abs(channels);
  for (std::size_t c = 0; c < channels; ++c) max_abs[c] = std::max(std::abs(r.lo[c]), std::abs(r.hi[c]));
  std::vector<int> widths(channels, t.bits);
  if (o.bit_alloc == BitAlloc::kChannel) {
    // alpha_c: the channel's threshold at the average width (its clipping value under --wclip).
    std::vector<double> alpha(channels);
    for (std::size_t c = 0; c < channels; ++c)
      alpha[c] = channel_threshold(channel_values(w, t.axis, c), max_abs[c], t.bits, o);
    widths = allocate_channel_bits(alpha, t.bits, 2, std::max(8, t.bits));
    t.channel_bits = widths;
    const auto [lo_w, hi_w] = std::minmax_element(widths.begin(), widths.end());
    t.statistic += fmt::format(
        "; widths {}..{} by --bit-alloc channel (2^M proportional to threshold^(2/3), {} bits on average)",
        *lo_w, *hi_w, t.bits);
  }
  for (std::size_t c = 0; c < channels; ++c) {
    const float threshold = channel_threshold(channel_values(w, t.axis, c), max_abs[c], widths[c], o);
    if (o.semantics == Semantics::kSeed) {
      // The seed's kernel on a symmetric grid (quant::symmetric_params): levels k * scale, |k| <= 2^(M-1)
      // - 1.
      const auto ap = quant::symmetric_params(threshold, widths[c]);
      set_seed_grid(t, ap);
      t.lo.push_back(ap.form == quant::GridForm::kIdentity ? 0.0 : -static_cast<double>(threshold));
      t.hi.push_back(ap.form == quant::GridForm::kIdentity ? 0.0 : static_cast<double>(threshold));
    } else {
      set_onnx_grid(t, quant::onnx_symmetric_grid(threshold, quant::int_range(widths[c], true, true).second));
    }
  }
  if (!t.channel_bits.empty()) {
    // The entry's own range is the widest channel's; each channel's grid is its own (TensorQuant::grid).
    t.bits = *std::max_element(widths.begin(), widths.end());
    if (o.semantics == Semantics::kSeed) {
      t.qmin = 0;
      t.qmax = (1 << t.bits) - 1;
    } else {
      std::tie(t.qmin, t.qmax) = quant::int_range(t.bits, true, true);
    }
  }
  return t;
}

// An int32 bias holds b / (input scale x weight scale) only while that product is not tiny. When it is
// (near-zero activations, a dead channel), rounding would clip the bias and the layer would lose it —
// DeepLabV3 with random weights drops to 0 dB that way. So the weight scale of each channel is raised
// just enough that |b| / (s_in * s_w) <= 2^30 (half the int32 range: headroom for the accumulator the
// bias is added to), as ONNX Runtime's quantizer also raises it (since 1.20.1); the weight grid keeps
// its integers, only its step grows.
void raise_weight_scale_for_bias(TensorQuant& wq, std::span<const float> bias, float input_scale) {
  if (!(input_scale > 0.0f) || bias.empty()) return;
  constexpr double kBiasLimit = 1073741824.0;  // 2^30
  const std::size_t channels = wq.scale.size();
  bool raised = false;
  for (std::size_t c = 0; c < channels; ++c) {
    double max_abs = 0.0;
    for (std::size_t i = 0; i < bias.size(); ++i) {
      if (channels == 1 || i == c) max_abs = std::max(max_abs, std::fabs(static_cast<double>(bias[i])));
    }
    const double need = max_abs / (static_cast<double>(input_scale) * kBiasLimit);
    if (need <= wq.scale[c]) continue;
    // Rounded up to the next float so that the bound holds after the float conversion.
    float s = static_cast<float>(need);
    if (static_cast<double>(s) < need) s = std::nextafter(s, std::numeric_limits<float>::infinity());
    wq.scale[c] = s;
    wq.lo[c] = wq.grid(c).lo();
    wq.hi[c] = wq.grid(c).hi();
    raised = true;
  }
  if (raised) wq.statistic += "; scale raised so that the int32 bias fits (|b| / (s_in s_w) <= 2^30)";
}

// --bits-budget: the conv points' widths from their measured histogram errors at every allowed width.
void allocate_point_widths(std::vector<policy::QuantPoint>& points, const calib::StatsFile& stats,
                           const PlanOptions& o, const std::string& stats_path) {
  auto policy_options = o.policy;
  policy_options.onnx_grid = o.semantics == Semantics::kOnnx;
  std::vector<std::size_t> items;
  std::vector<std::vector<double>> error;
  std::vector<double> size;
  const std::set<std::string> keep(o.policy.keep_8bit.begin(), o.policy.keep_8bit.end());
  for (std::size_t i = 0; i < points.size(); ++i) {
    auto p = points[i];
    // --keep-8bit wins: a kept point is outside the budget (neither allocated nor counted).
    if (p.role != policy::Role::kConv || keep.count(p.node) || keep.count(p.value)) continue;
    const calib::PointStats* s = stats.find(p.value);
    if (!s) fail(stats_path + ": has no statistics for quantization point '" + p.value + "'");
    const calib::PointStats* activated = p.activated.empty() ? nullptr : stats.find(p.activated);
    const bool half = o.policy.half && activated;
    const calib::PointStats& measured = half ? *activated : *s;
    if (!measured.histogram)
      fail(stats_path +
           ": --bits-budget measures each width on the histograms, which these statistics do not "
           "hold; collect them again");
    std::vector<double> e;
    for (const int w : o.bit_widths) {
      p.bits = w;
      const auto r = policy::point_range(p, *s, policy_options, activated);
      calib::WindowChoice c;
      c.window = r.window;
      c.lo = r.lo;
      c.hi = r.hi;
      e.push_back(calib::histogram_mse(*measured.histogram, c, w, policy_options.onnx_grid) *
                  static_cast<double>(measured.sample_numel));
    }
    items.push_back(i);
    error.push_back(std::move(e));
    size.push_back(static_cast<double>(s->sample_numel));
  }
  if (items.empty()) return;
  const auto k = allocate_widths(error, size, o.bit_widths, o.bits_budget);
  for (std::size_t j = 0; j < items.size(); ++j) points[items[j]].bits = o.bit_widths[k[j]];
}

// ---- --bias-correction deploy (docs/plan.md, "Deployable bias correction") ----
//
// The paper corrects output channel c's dequantized weights q to r (q - mean_q) + mean_w, r = std_w / std_q,
// which is r q + d with d = mean_w - r mean_q. An output is then y = r (q . x) + d (sum of the inputs under
// the kernel) + b. The first term is the same integers on a step r times longer: the channel's weight scale
// grows by r. The second varies with x; the deployable form replaces it by its expectation, d times E[x]
// times the average number of kernel taps that fall inside the input (padding reads zeros), and adds that
// to the bias before it is rounded to int32. E[x] is the mean of the quantized input (what the layer really
// reads) from its histogram when the statistics hold one, else the float mean.

// The average number of spatial kernel taps of a Conv that read the input, not the padding (all taps when
// the input shape is unknown); 1 for Gemm and MatMul. The window of each axis as the Conv operator
// computes it (kernels/reference/window.hpp).
double spatial_taps(const graph::Node& n, const Tensor& w, const std::map<std::string, Shape>* shapes,
                    std::string& note) {
  if (n.op_type != "Conv") return 1.0;
  const std::size_t sd = w.rank() - 2;
  double taps = 1.0;
  const auto it = shapes ? shapes->find(n.inputs[0]) : decltype(shapes->end()){};
  const auto every_tap = [&] {
    double all = 1.0;
    for (std::size_t i = 0; i < sd; ++i) all *= static_cast<double>(w.dim(2 + i));
    return all;
  };
  if (!shapes || it == shapes->end() || it->second.size() != w.rank()) {
    note = "; input shape unknown: every tap counted";
    return every_tap();
  }
  const Shape& x = it->second;
  const auto strides = n.get_ints("strides", std::vector<std::int64_t>(sd, 1));
  const auto dil = n.get_ints("dilations", std::vector<std::int64_t>(sd, 1));
  const auto pads = n.get_ints("pads", std::vector<std::int64_t>(2 * sd, 0));
  const std::string auto_pad = n.get_string("auto_pad", "NOTSET");
  for (std::size_t i = 0; i < sd; ++i) {
    const std::int64_t size = x[2 + i], k = w.dim(2 + i);
    try {
      const auto axis = kernels::ref::axis_window(size, k, strides.at(i), dil.at(i), pads.at(i),
                                                  pads.at(i + sd), auto_pad, false);
      const auto valid = kernels::ref::valid_taps(size, k, strides.at(i), dil.at(i), axis);
      taps *= static_cast<double>(valid.total) / static_cast<double>(axis.out);
    } catch (const Error&) {  // a window the executor would refuse: no geometry to count
      note = "; window geometry invalid: every tap counted";
      return every_tap();
    }
  }
  return taps;
}

// E[sum of the inputs under one output's kernel] for every output channel of `n`: the means of the input
// channels the output reads (its group's, for a Conv) times the in-bounds taps; the tensor mean times the
// fan-in when the statistics hold no per-channel summaries. `how` says which.
std::vector<double> expected_window_sums(const graph::Node& n, const Tensor& w, int out_axis,
                                         double tensor_mean, const calib::PointStats& in_stats,
                                         const std::map<std::string, Shape>* shapes, std::string& how) {
  std::string note;
  const double taps = spatial_taps(n, w, shapes, note);
  const auto outputs = static_cast<std::size_t>(w.dim(static_cast<std::size_t>(out_axis)));
  // Inputs per output: a Conv's input channels per group, a Gemm's or MatMul's inner dimension.
  const auto inner =
      static_cast<std::size_t>(n.op_type == "Conv"   ? w.dim(1)
                               : n.op_type == "Gemm" ? w.dim(n.get_int("transB", 0) != 0 ? 1 : 0)
                                                     : w.dim(w.rank() - 2));
  const std::size_t groups = n.op_type == "Conv" ? static_cast<std::size_t>(n.get_int("group", 1)) : 1;
  std::vector<double> sums(outputs);
  if (in_stats.channels.size() != inner * groups) {
    std::fill(sums.begin(), sums.end(), tensor_mean * static_cast<double>(inner) * taps);
    how += fmt::format(", {:.6g} inputs per output{}", static_cast<double>(inner) * taps, note);
    return sums;
  }
  // The channels' float means, scaled by what quantization does to the tensor's mean (E[x] from the
  // histogram over the float mean; 1 without a histogram): clipping at 4 bits lowers every channel's mean.
  const double float_mean = in_stats[calib::Stat::kMean].mean();
  const double quantized = in_stats.histogram && float_mean != 0.0 ? tensor_mean / float_mean : 1.0;
  const std::size_t per_group = outputs / groups;
  for (std::size_t c = 0; c < outputs; ++c) {
    const std::size_t first = (c / per_group) * inner;
    double sum = 0.0;
    for (std::size_t i = first; i < first + inner; ++i)
      sum += in_stats.channels[i][calib::ChannelStat::kMean].mean();
    sums[c] = sum * taps * quantized;
  }
  how = fmt::format(
      "per-channel float means of the input x {:.6g} (quantized / float tensor mean) x {:.6g} taps{}",
      quantized, taps, note);
  return sums;
}

// E[x] of a layer input: the mean of its quantize-dequantized values, each histogram bin taken at its
// centre, or the float mean without a histogram.
double expected_input(const calib::PointStats& s, const TensorQuant& in, std::string& how) {
  if (!s.histogram) {
    how = "float mean of the input";
    return s[calib::Stat::kMean].mean();
  }
  const auto g = in.grid(0);
  double sum = 0.0;
  auto half = [&](const calib::Histogram::Half& h, double sign) {
    const double width = h.bin_width();
    for (std::size_t j = 0; j < h.counts.size(); ++j) {
      if (h.counts[j] == 0) continue;
      const auto centre = static_cast<float>(sign * (static_cast<double>(j) + 0.5) * width);
      sum += static_cast<double>(h.counts[j]) *
             static_cast<double>(quant::dequantize_linear(quant::quantize_linear(centre, g), g));
    }
  };
  half(s.histogram->positive, 1.0);
  half(s.histogram->negative, -1.0);
  sum += static_cast<double>(s.histogram->zeros) *
         static_cast<double>(quant::dequantize_linear(quant::quantize_linear(0.0f, g), g));
  const auto total = s.histogram->total();
  how = "mean of the quantized input from its histogram";
  return total > 0 ? sum / static_cast<double>(total) : 0.0;
}

// The correction of one weight entry: its scales grow by r per channel (rounding_scale keeps the step the
// integers were chosen on); returns d per channel of the entry (one for a per-tensor grid).
std::vector<double> fold_norm_ratio(TensorQuant& wq, const Tensor& w) {
  const auto q = quantize_values(w, wq);
  const ChannelIndex channel(w.shape(), wq.axis);
  const auto channels = static_cast<std::size_t>(channel.channels);
  std::vector<float> dq(q.size());
  for (std::size_t i = 0; i < q.size(); ++i) dq[i] = quant::dequantize_linear(q[i], wq.grid(channel(i)));
  const auto m = norm_correction(w.f32(), dq, channel);
  wq.rounding_scale = wq.scale;
  std::vector<double> d(channels);
  for (std::size_t c = 0; c < channels; ++c) {
    // As the paper form: a channel whose quantized values are constant keeps its step, only its mean moves.
    const double r = m.ratio[c];
    d[c] = m.mean_w[c] - r * m.mean_q[c];
    wq.scale[c] = static_cast<float>(static_cast<double>(wq.scale[c]) * r);
    wq.lo[c] = wq.grid(c).lo();
    wq.hi[c] = wq.grid(c).hi();
  }
  wq.statistic += "; deploy bias correction: scale x std(w) / std(w_q) per channel";
  return d;
}

// Input shapes of every value for a batch of one, when the graph's inputs are static apart from the batch.
std::optional<std::map<std::string, Shape>> static_shapes(const graph::Graph& g) {
  std::vector<Shape> in;
  for (const auto& v : g.inputs) {
    Shape s = v.shape;
    if (s.empty()) return std::nullopt;
    if (s[0] < 0) s[0] = 1;
    if (std::any_of(s.begin(), s.end(), [](std::int64_t d) { return d < 0; })) return std::nullopt;
    in.push_back(std::move(s));
  }
  Context ctx(1);
  runtime::Executor exec(g, ctx, {runtime::Backend::kReference});
  return exec.infer_shapes(in);
}

}  // namespace

void check_plan_options(const PlanOptions& o) {
  if (o.bias_correction == BiasCorrection::kDeploy) {
    if (o.semantics != Semantics::kOnnx)
      fail(
          "--bias-correction deploy: folds the correction into integer weight scales and int32 biases, "
          "which only the onnx semantics have; add --semantics onnx");
    if (o.policy.placement == policy::Placement::kOutputs)
      fail(
          "--bias-correction deploy: needs --placement deploy or inputs (the int32 bias it folds into "
          "exists only where the layer's input is quantized)");
  }
  if (o.bit_alloc == BitAlloc::kChannel &&
      (o.weights != WeightGranularity::kChannel || o.policy.weight_bits < 2))
    fail(
        "--bit-alloc channel: allocates the widths of per-channel weight grids; needs --wgran channel and "
        "--wbits >= 2");
  if (o.bias_correction != BiasCorrection::kNone && o.policy.weight_bits <= 0)
    fail("--bias-correction " + std::string(bias_correction_name(o.bias_correction)) +
         ": corrects quantized weights; give --wbits");
}

QuantPlan build_plan(const graph::Graph& g, const calib::StatsFile& stats, const PlanOptions& o,
                     const std::string& stats_path) {
  stats.require_model(g.model_hash, stats_path);
  check_plan_options(o);
  if (o.weights == WeightGranularity::kChannel && o.policy.weight_bits > 0 && o.policy.weight_bits < 2)
    fail("--wgran channel: symmetric weights need --wbits >= 2");
  if (o.weight_clip != WeightClip::kMinMax && o.weights != WeightGranularity::kChannel)
    fail("--wclip " + std::string(weight_clip_name(o.weight_clip)) +
         ": weight clipping needs --wgran channel");
  QuantPlan plan;
  plan.model_hash = g.model_hash;
  plan.model_path = g.source;
  plan.stats_path = stats_path;
  plan.stats_data = stats.data_source;
  plan.stats_samples = stats.samples;
  plan.options = o;

  auto points = policy::quant_points(g, o.policy);
  if (o.bits_budget > 0) allocate_point_widths(points, stats, o, stats_path);
  for (const auto& p : points) {
    const calib::PointStats* s = stats.find(p.value);
    if (!s)
      fail(stats_path + ": has no statistics for quantization point '" + p.value + "' (node " + p.node + ")");
    auto policy_options = o.policy;
    policy_options.onnx_grid = o.semantics == Semantics::kOnnx;
    const calib::PointStats* activated = p.activated.empty() ? nullptr : stats.find(p.activated);
    const auto range = policy::point_range(p, *s, policy_options, activated);
    TensorQuant t;
    t.tensor = p.value;
    t.node = p.node;
    t.kind = TensorKind::kActivation;
    t.role = std::string(policy::role_name(p.role));
    t.bits = p.bits;
    t.is_signed = false;
    t.requested_lo = range.lo;
    t.requested_hi = range.hi;
    t.method =
        p.clip == quant::ClipMethod::kNone
            ? (p.role == policy::Role::kClassifier ? "minmax-global" : "minmax")
            : (range.method == quant::ClipMethod::kMinMax ? "minmax-global" : calib::clip_name(range.method));
    t.statistic = statistic_of(p, p.clip == quant::ClipMethod::kNone ? p.clip : range.method);
    if (p.clip == quant::ClipMethod::kMix || p.clip == quant::ClipMethod::kAuto)
      t.method = calib::clip_name(p.clip) + ":" + t.method;
    if (o.bits_budget > 0 && p.role == policy::Role::kConv)
      t.statistic += fmt::format("; {} bits chosen by --bits-budget {}", p.bits, o.bits_budget);
    if (range.half) {
      t.method += "+half";
      t.statistic += "; on the values after " + p.activated + " (what the Relu/Clip passes), lo = 0";
    }
    t.alpha = range.alpha;
    t.coefficient = range.coefficient;
    if (o.semantics == Semantics::kSeed) {
      set_seed_grid(t, quant::affine_params(range.window, p.bits));
      t.lo.push_back(range.lo);
      t.hi.push_back(range.hi);
    } else {
      const auto [qmin, qmax] = quant::int_range(p.bits, false, false);
      set_onnx_grid(t, quant::onnx_asymmetric_grid(range.lo, range.hi, qmin, qmax));
    }
    plan.tensors.push_back(std::move(t));
  }

  if (o.policy.weight_bits <= 0) return plan;
  const bool deploy_correction = o.bias_correction == BiasCorrection::kDeploy;
  const auto shapes = deploy_correction ? static_shapes(g) : std::nullopt;
  std::set<std::string> done;
  for (const auto& n : g.nodes) {
    if (!is_quantized_layer(n) || !n.has_input(1)) continue;
    const Tensor* w = g.initializer(n.inputs[1]);
    if (!w || w->dtype() != DType::kFloat32 || w->numel() == 0 || !done.insert(n.inputs[1]).second) continue;
    TensorQuant wq = weight_entry(g, n, n.inputs[1], *w, o);
    std::optional<TensorQuant> bias;
    if (n.has_input(2)) {
      const Tensor* b = g.initializer(n.inputs[2]);
      if (b && b->dtype() == DType::kFloat32 && b->numel() > 0 && done.insert(n.inputs[2]).second) {
        const TensorQuant* in = plan.find(n.inputs[0], TensorKind::kActivation);
        if (o.semantics == Semantics::kSeed) {
          // The seed quantizes biases like weights: per-tensor min/max at the weight bits.
          PlanOptions per_tensor = o;
          per_tensor.weights = WeightGranularity::kTensor;
          TensorQuant bq = weight_entry(g, n, n.inputs[2], *b, per_tensor);
          bq.kind = TensorKind::kBias;
          bias = std::move(bq);
        } else if (in) {
          // int32 with scale = input scale x weight scale (per channel when the weights are), zero point 0:
          // what an integer kernel adds to its int32 accumulator.
          TensorQuant bq;
          bq.tensor = n.inputs[2];
          bq.node = n.name;
          bq.kind = TensorKind::kBias;
          bq.role = n.op_type;
          bq.bits = 32;
          bq.is_signed = true;
          bq.qmin = std::numeric_limits<std::int32_t>::min();
          bq.qmax = std::numeric_limits<std::int32_t>::max();
          if (wq.per_channel()) bq.axis = 0;
          bq.method = "bias-int32";
          bq.statistic = "scale = input scale x weight scale";
          const auto bv = b->f32();
          if (!std::all_of(bv.begin(), bv.end(), [](float x) { return std::isfinite(x); }))
            fail(g.source + ": initializer '" + n.inputs[2] + "' of " + n.describe() +
                 " contains NaN or Inf");
          bq.requested_lo = *std::min_element(bv.begin(), bv.end());
          bq.requested_hi = *std::max_element(bv.begin(), bv.end());
          std::vector<float> corrected(bv.begin(), bv.end());
          std::vector<float> ratio;  // r per weight channel, to keep rounding_scale in step with a raise
          if (deploy_correction && n.op_type != "ConvTranspose") {
            const calib::PointStats* s = stats.find(n.inputs[0]);
            if (!s)
              fail(stats_path + ": has no statistics for '" + n.inputs[0] + "', the input of " +
                   n.describe());
            std::string how;
            const double mean_x = expected_input(*s, *in, how);
            how = fmt::format("E[x] = {:.6g} ({})", mean_x, how);
            const auto sums = expected_window_sums(n, *w, wq.per_channel() ? wq.axis : output_axis(n, *w),
                                                   mean_x, *s, shapes ? &*shapes : nullptr, how);
            if (sums.size() != bv.size())
              fail(fmt::format("{}: bias of {} has {} values for {} outputs", g.source, n.describe(),
                               bv.size(), sums.size()));
            const std::vector<float> before = wq.scale;
            const auto d = fold_norm_ratio(wq, *w);
            for (std::size_t c = 0; c < wq.scale.size(); ++c) ratio.push_back(wq.scale[c] / before[c]);
            bq.shift.resize(bv.size());
            for (std::size_t j = 0; j < bv.size(); ++j) {
              bq.shift[j] = d[wq.per_channel() ? j : 0] * sums[j];
              corrected[j] = static_cast<float>(static_cast<double>(bv[j]) + bq.shift[j]);
            }
            bq.statistic +=
                "; deploy bias correction: + (mean(w) - r mean(w_q)) x E[sum of the inputs under "
                "the kernel], from " +
                how;
          }
          const std::vector<float> unraised = wq.scale;
          raise_weight_scale_for_bias(wq, corrected, in->scale.at(0));
          // A raised step changes the integers: they are chosen on the raised step divided by r.
          for (std::size_t c = 0; c < ratio.size(); ++c)
            if (wq.scale[c] != unraised[c]) wq.rounding_scale[c] = wq.scale[c] / ratio[c];
          for (float ws : wq.scale) {
            const float s = in->scale.at(0) * ws;
            bq.scale.push_back(s);
            bq.zero_point.push_back(0);
            bq.lo.push_back(static_cast<double>(s) * bq.qmin);
            bq.hi.push_back(static_cast<double>(s) * bq.qmax);
          }
          bias = std::move(bq);
        }
        // onnx semantics with an unquantized input: the bias stays float (no integer kernel can use it).
      }
    }
    if (deploy_correction && wq.rounding_scale.empty())
      wq.statistic += n.op_type == "ConvTranspose"
                          ? "; not bias-corrected (deploy form: Conv, Gemm and MatMul only)"
                          : "; not bias-corrected (no int32 bias to fold the mean shift into)";
    plan.tensors.push_back(std::move(wq));
    if (bias) plan.tensors.push_back(std::move(*bias));
  }
  // Activations first, then weights and biases in node order (a stable, diffable file).
  std::stable_partition(plan.tensors.begin(), plan.tensors.end(),
                        [](const TensorQuant& t) { return t.kind == TensorKind::kActivation; });
  return plan;
}

}  // namespace aciq::plan
