// QuantPlan: names of its enums, the versioned JSON file (write, parse, validate) and the checks against a
// graph.
#include "aciq/plan.hpp"

#include <fmt/format.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <tuple>

namespace aciq::plan {

using json = nlohmann::ordered_json;

Semantics parse_semantics(std::string_view text) {
  if (text == "seed") return Semantics::kSeed;
  if (text == "onnx") return Semantics::kOnnx;
  fail("--semantics '" + std::string(text) + "': expected seed or onnx");
}
std::string_view semantics_name(Semantics s) { return s == Semantics::kSeed ? "seed" : "onnx"; }

WeightGranularity parse_weight_granularity(std::string_view text) {
  if (text == "tensor") return WeightGranularity::kTensor;
  if (text == "channel") return WeightGranularity::kChannel;
  fail("--wgran '" + std::string(text) + "': expected tensor or channel");
}
std::string_view weight_granularity_name(WeightGranularity g) {
  return g == WeightGranularity::kTensor ? "tensor" : "channel";
}

WeightClip parse_weight_clip(std::string_view text) {
  if (text == "minmax") return WeightClip::kMinMax;
  if (text == "laplace") return WeightClip::kLaplace;
  if (text == "gauss" || text == "gaus") return WeightClip::kGauss;
  if (text == "mse") return WeightClip::kMse;
  fail("--wclip '" + std::string(text) + "': expected minmax, laplace, gauss or mse");
}
std::string_view weight_clip_name(WeightClip c) {
  switch (c) {
    case WeightClip::kMinMax: return "minmax";
    case WeightClip::kLaplace: return "laplace";
    case WeightClip::kGauss: return "gauss";
    case WeightClip::kMse: return "mse";
  }
  return "?";
}

BiasCorrection parse_bias_correction(std::string_view text) {
  if (text == "none") return BiasCorrection::kNone;
  if (text == "paper") return BiasCorrection::kPaper;
  if (text == "deploy") return BiasCorrection::kDeploy;
  fail("--bias-correction '" + std::string(text) + "': expected none, paper or deploy");
}
std::string_view bias_correction_name(BiasCorrection b) {
  switch (b) {
    case BiasCorrection::kNone: return "none";
    case BiasCorrection::kPaper: return "paper";
    case BiasCorrection::kDeploy: return "deploy";
  }
  return "?";
}

BitAlloc parse_bit_alloc(std::string_view text) {
  if (text == "none") return BitAlloc::kNone;
  if (text == "channel") return BitAlloc::kChannel;
  fail("--bit-alloc '" + std::string(text) + "': expected none or channel");
}
std::string_view bit_alloc_name(BitAlloc b) { return b == BitAlloc::kChannel ? "channel" : "none"; }

std::string_view tensor_kind_name(TensorKind k) {
  switch (k) {
    case TensorKind::kActivation: return "activation";
    case TensorKind::kWeight: return "weight";
    case TensorKind::kBias: return "bias";
  }
  return "?";
}

namespace {

TensorKind parse_kind(const std::string& s, const std::string& where) {
  if (s == "activation") return TensorKind::kActivation;
  if (s == "weight") return TensorKind::kWeight;
  if (s == "bias") return TensorKind::kBias;
  fail(where + ": unknown kind '" + s + "' (expected activation, weight or bias)");
}

std::string_view form_name(quant::GridForm f) {
  switch (f) {
    case quant::GridForm::kIdentity: return "identity";
    case quant::GridForm::kZeroPoint: return "zero-point";
    case quant::GridForm::kOffset: return "offset";
  }
  return "?";
}

quant::GridForm parse_form(const std::string& s, const std::string& where) {
  if (s == "identity") return quant::GridForm::kIdentity;
  if (s == "zero-point") return quant::GridForm::kZeroPoint;
  if (s == "offset") return quant::GridForm::kOffset;
  fail(where + ": unknown seed grid '" + s + "' (expected zero-point, offset or identity)");
}

// One value for per-tensor entries (readable), an array for per-channel ones.
template <typename T>
json scalar_or_array(const std::vector<T>& v, bool per_channel) {
  if (!per_channel && v.size() == 1) return json(v[0]);
  return json(v);
}

template <typename T>
std::vector<T> read_vector(const json& j, const std::string& where, const char* key) {
  if (!j.contains(key)) fail(where + ": missing '" + key + "'");
  const json& v = j.at(key);
  std::vector<T> out;
  auto one = [&](const json& e) {
    if (!e.is_number()) fail(where + ": '" + key + "' must be a number or an array of numbers");
    if constexpr (std::is_integral_v<T>) {
      if (!e.is_number_integer()) fail(where + ": '" + key + "' must hold integers");
      if (e.is_number_unsigned() &&
          e.get<std::uint64_t>() > static_cast<std::uint64_t>(std::numeric_limits<T>::max()))
        fail(where + ": '" + key + "' value is out of range");
      const auto i = e.get<std::int64_t>();
      if (i < std::numeric_limits<T>::min() || i > std::numeric_limits<T>::max())
        fail(where + ": '" + key + "' value " + std::to_string(i) + " is out of range");
      out.push_back(static_cast<T>(i));
    } else {
      out.push_back(static_cast<T>(e.get<double>()));
    }
  };
  if (v.is_array()) {
    for (const auto& e : v) one(e);
  } else {
    one(v);
  }
  return out;
}

template <typename T>
T read_value(const json& j, const std::string& where, const char* key) {
  if (!j.is_object() || !j.contains(key)) fail(where + ": missing '" + key + "'");
  const json& v = j.at(key);
  if constexpr (std::is_same_v<T, bool>) {
    if (!v.is_boolean()) fail(where + ": '" + key + "' must be true or false");
    return v.get<bool>();
  } else if constexpr (std::is_integral_v<T>) {
    // Integers only, in range: a float cast to int would be undefined or silently truncated.
    if (!v.is_number_integer()) fail(where + ": '" + key + "' must be an integer");
    if (v.is_number_unsigned() &&
        v.get<std::uint64_t>() > static_cast<std::uint64_t>(std::numeric_limits<T>::max()))
      fail(where + ": '" + key + "' is out of range");
    const auto i = v.get<std::int64_t>();
    if (i < static_cast<std::int64_t>(std::numeric_limits<T>::min()) ||
        i > static_cast<std::int64_t>(std::numeric_limits<T>::max()))
      fail(where + ": '" + key + "' value " + std::to_string(i) + " is out of range");
    return static_cast<T>(i);
  } else {
    try {
      return v.get<T>();
    } catch (const json::exception&) {
      fail(where + ": '" + key + "' has the wrong type");
    }
  }
}

json options_json(const PlanOptions& o) {
  json j;
  j["qtype"] = "int" + std::to_string(o.policy.activation_bits);
  j["clip"] = calib::clip_name(o.policy.clip);
  if (!o.policy.clip_overrides.empty()) {
    json ov = json::array();
    for (const auto& [point, spec] : o.policy.clip_overrides)
      ov.push_back({{"point", point}, {"clip", calib::clip_name(spec)}});
    j["clip_overrides"] = ov;
  }
  j["wbits"] = o.policy.weight_bits;
  j["fc_bits"] = o.policy.fc_bits;
  j["first_conv_bits"] = o.policy.first_conv_bits;
  j["placement"] = std::string(policy::placement_name(o.policy.placement));
  j["keep_8bit"] = o.policy.keep_8bit;
  j["seed_coefficients"] = o.policy.seed_coefficients;
  if (o.policy.half) j["half"] = true;
  j["semantics"] = std::string(semantics_name(o.semantics));
  j["wgran"] = std::string(weight_granularity_name(o.weights));
  if (o.weight_clip != WeightClip::kMinMax) j["wclip"] = std::string(weight_clip_name(o.weight_clip));
  if (o.bias_correction != BiasCorrection::kNone)
    j["bias_correction"] = std::string(bias_correction_name(o.bias_correction));
  if (o.bit_alloc != BitAlloc::kNone) j["bit_alloc"] = std::string(bit_alloc_name(o.bit_alloc));
  if (o.bits_budget > 0) {
    j["bits_budget"] = o.bits_budget;
    j["bit_widths"] = o.bit_widths;
  }
  j["fold_bn"] = o.fold_batchnorm;
  return j;
}

PlanOptions parse_options(const json& j, const std::string& where) {
  PlanOptions o;
  const auto qtype = read_value<std::string>(j, where, "qtype");
  const std::string digits = qtype.rfind("int", 0) == 0 ? qtype.substr(3) : "";
  if (digits.empty() || digits.size() > 2 || digits.find_first_not_of("0123456789") != std::string::npos)
    fail(where + ": qtype '" + qtype + "' is not intM");
  o.policy.activation_bits = std::stoi(digits);
  if (o.policy.activation_bits < quant::kMinBits || o.policy.activation_bits > quant::kMaxBits)
    fail(where + ": qtype '" + qtype + "' is outside int1..int16");
  try {
    o.policy.clip = calib::parse_clip(read_value<std::string>(j, where, "clip"));
    if (j.contains("clip_overrides")) {
      if (!j.at("clip_overrides").is_array()) fail("'clip_overrides' must be an array");
      for (const auto& ov : j.at("clip_overrides")) {
        o.policy.clip_overrides.emplace_back(read_value<std::string>(ov, where, "point"),
                                             calib::parse_clip(read_value<std::string>(ov, where, "clip")));
      }
    }
    o.policy.placement = policy::parse_placement(read_value<std::string>(j, where, "placement"));
    o.semantics = parse_semantics(read_value<std::string>(j, where, "semantics"));
    o.weights = parse_weight_granularity(read_value<std::string>(j, where, "wgran"));
    if (j.contains("wclip")) o.weight_clip = parse_weight_clip(read_value<std::string>(j, where, "wclip"));
    if (j.contains("bias_correction"))
      o.bias_correction = parse_bias_correction(read_value<std::string>(j, where, "bias_correction"));
    if (j.contains("bit_alloc"))
      o.bit_alloc = parse_bit_alloc(read_value<std::string>(j, where, "bit_alloc"));
    if (j.contains("bits_budget")) {
      o.bits_budget = read_value<double>(j, where, "bits_budget");
      o.bit_widths = read_value<std::vector<int>>(j, where, "bit_widths");
    }
  } catch (const Error& e) {
    fail(where + ": " + e.what());
  }
  o.policy.weight_bits = read_value<int>(j, where, "wbits");
  o.policy.fc_bits = read_value<int>(j, where, "fc_bits");
  o.policy.first_conv_bits = read_value<int>(j, where, "first_conv_bits");
  o.policy.keep_8bit = read_value<std::vector<std::string>>(j, where, "keep_8bit");
  o.policy.seed_coefficients = read_value<bool>(j, where, "seed_coefficients");
  if (j.contains("half")) o.policy.half = read_value<bool>(j, where, "half");
  o.fold_batchnorm = read_value<bool>(j, where, "fold_bn");
  for (int b : {o.policy.fc_bits, o.policy.first_conv_bits})
    if (b < quant::kMinBits || b > quant::kMaxBits) fail(where + ": fc_bits/first_conv_bits must be 1..16");
  if (o.policy.weight_bits < 0 || o.policy.weight_bits > quant::kMaxBits)
    fail(where + ": wbits must be 0..16");
  return o;
}

bool close(double a, double b) { return std::abs(a - b) <= 1e-6 * std::max({1.0, std::abs(a), std::abs(b)}); }

// Every check a loaded entry must pass; `where` names the file and the tensor.
void validate(const TensorQuant& t, Semantics semantics, const std::string& where) {
  const bool bias32 = t.kind == TensorKind::kBias && semantics == Semantics::kOnnx;
  if (bias32 ? t.bits != 32 : (t.bits < quant::kMinBits || t.bits > quant::kMaxBits))
    fail(fmt::format("{}: bits {} is invalid", where, t.bits));
  if (t.qmin >= t.qmax) fail(fmt::format("{}: qmin {} is not below qmax {}", where, t.qmin, t.qmax));
  if (!t.is_signed && t.qmin < 0)
    fail(fmt::format("{}: an unsigned grid cannot have qmin {}", where, t.qmin));
  if (bias32 && (t.qmin != std::numeric_limits<std::int32_t>::min() ||
                 t.qmax != std::numeric_limits<std::int32_t>::max()))
    fail(where + ": an int32 bias must use the full int32 range");
  if (semantics == Semantics::kSeed && (t.qmin != 0 || t.qmax != (1 << t.bits) - 1))
    fail(fmt::format("{}: the seed grid of {} bits is [0, {}], not [{}, {}]", where, t.bits,
                     (1 << t.bits) - 1, t.qmin, t.qmax));
  if (!bias32 && static_cast<std::int64_t>(t.qmax) - t.qmin > (std::int64_t{1} << t.bits) - 1)
    fail(fmt::format("{}: [qmin, qmax] = [{}, {}] does not fit in {} bits", where, t.qmin, t.qmax, t.bits));
  const std::size_t n = t.scale.size();
  if (n == 0) fail(where + ": has no scale");
  if (t.zero_point.size() != n || t.lo.size() != n || t.hi.size() != n)
    fail(fmt::format("{}: scale, zero_point, lo and hi have different lengths ({}, {}, {}, {})", where, n,
                     t.zero_point.size(), t.lo.size(), t.hi.size()));
  if (!t.per_channel() && n != 1) fail(fmt::format("{}: {} scales but no per-channel axis", where, n));
  if (t.per_channel() && t.kind == TensorKind::kActivation)
    fail(where + ": per-channel activations are not supported");
  if (!std::isfinite(t.requested_lo) || !std::isfinite(t.requested_hi) || t.requested_lo > t.requested_hi)
    fail(fmt::format("{}: requested window [{}, {}] is invalid", where, t.requested_lo, t.requested_hi));
  for (std::size_t c = 0; c < n; ++c) {
    const std::string at = t.per_channel() ? fmt::format("{} channel {}", where, c) : where;
    if (!std::isfinite(t.scale[c]) || !(t.scale[c] > 0.0f))
      fail(fmt::format("{}: scale {} must be finite and positive", at, t.scale[c]));
    if (bias32 && t.zero_point[c] != 0)
      fail(fmt::format("{}: an int32 bias has zero point 0, not {}", at, t.zero_point[c]));
    if (t.zero_point[c] < t.qmin || t.zero_point[c] > t.qmax)
      fail(fmt::format("{}: zero point {} is outside [{}, {}]", at, t.zero_point[c], t.qmin, t.qmax));
    if (!std::isfinite(t.lo[c]) || !std::isfinite(t.hi[c]) || t.lo[c] > t.hi[c])
      fail(fmt::format("{}: window [{}, {}] is invalid", at, t.lo[c], t.hi[c]));
    if (semantics == Semantics::kOnnx) {
      const auto g = t.grid(c);
      if (!close(t.lo[c], g.lo()) || !close(t.hi[c], g.hi()))
        fail(fmt::format("{}: window [{}, {}] is not the grid's [{}, {}]", at, t.lo[c], t.hi[c], g.lo(),
                         g.hi()));
    }
  }
  if (!t.rounding_scale.empty()) {
    if (t.kind != TensorKind::kWeight || semantics != Semantics::kOnnx)
      fail(where + ": 'rounding_scale' belongs to weights of onnx-semantics plans only");
    if (t.rounding_scale.size() != n)
      fail(fmt::format("{}: {} rounding scales for {} scales", where, t.rounding_scale.size(), n));
    for (float s : t.rounding_scale)
      if (!std::isfinite(s) || !(s > 0.0f))
        fail(fmt::format("{}: rounding scale {} must be finite and positive", where, s));
  }
  if (!t.channel_bits.empty()) {
    if (t.kind != TensorKind::kWeight || !t.per_channel())
      fail(where + ": 'channel_bits' belongs to per-channel weights only");
    if (t.channel_bits.size() != n)
      fail(fmt::format("{}: {} channel widths for {} scales", where, t.channel_bits.size(), n));
    for (int b : t.channel_bits)
      if (b < 2 || b > t.bits) fail(fmt::format("{}: channel width {} is outside 2..{}", where, b, t.bits));
  }
  if (!t.shift.empty()) {
    if (!bias32) fail(where + ": 'shift' belongs to int32 biases only");
    for (double s : t.shift)
      if (!std::isfinite(s)) fail(fmt::format("{}: shift {} is not finite", where, s));
  }
  if (semantics == Semantics::kSeed && t.seed_form != quant::GridForm::kIdentity &&
      !std::isfinite(t.seed_offset))
    fail(where + ": seed offset is not finite");
}

}  // namespace

quant::IntGrid TensorQuant::grid(std::size_t c) const {
  quant::IntGrid g;
  g.scale = scale.at(c);
  g.zero_point = zero_point.at(c);
  g.qmin = qmin;
  g.qmax = qmax;
  if (!channel_bits.empty()) {
    // The channel's own symmetric grid (onnx), or the seed's [0, 2^M - 1] of its width.
    const int b = channel_bits.at(c);
    if (is_signed) {
      std::tie(g.qmin, g.qmax) = quant::int_range(b, true, true);
    } else {
      g.qmin = 0;
      g.qmax = (1 << b) - 1;
    }
  }
  return g;
}

quant::PointQuantizer TensorQuant::quantizer(Semantics semantics) const {
  quant::PointQuantizer q;
  if (semantics == Semantics::kOnnx) {
    q.onnx = true;
    q.grid = grid(0);
    return q;
  }
  quant::AffineQuantParams& p = q.seed;
  p.bits = bits;
  p.qmax = static_cast<float>(qmax);
  p.form = seed_form;
  if (seed_form == quant::GridForm::kIdentity) return q;
  p.scale = scale.at(0);
  if (seed_form == quant::GridForm::kZeroPoint) p.zero_point = static_cast<float>(zero_point.at(0));
  if (seed_form == quant::GridForm::kOffset) p.offset = seed_offset;
  return q;
}

const TensorQuant* QuantPlan::find(const std::string& tensor, TensorKind kind) const {
  for (const auto& t : tensors) {
    if (t.tensor == tensor && t.kind == kind) return &t;
  }
  return nullptr;
}

std::vector<const TensorQuant*> QuantPlan::activations() const {
  std::vector<const TensorQuant*> out;
  for (const auto& t : tensors) {
    if (t.kind == TensorKind::kActivation) out.push_back(&t);
  }
  return out;
}

std::string QuantPlan::to_json() const {
  json j;
  j["format"] = "aciq-quant-plan";
  j["version"] = kVersion;
  j["model"] = {{"path", model_path}, {"hash", model_hash}};
  j["stats"] = {{"path", stats_path}, {"data", stats_data}, {"samples", stats_samples}};
  j["options"] = options_json(options);
  json arr = json::array();
  for (const auto& t : tensors) {
    json e;
    e["tensor"] = t.tensor;
    e["node"] = t.node;
    e["kind"] = std::string(tensor_kind_name(t.kind));
    e["role"] = t.role;
    e["bits"] = t.bits;
    e["signed"] = t.is_signed;
    e["qmin"] = t.qmin;
    e["qmax"] = t.qmax;
    if (t.per_channel()) e["axis"] = t.axis;
    std::vector<double> scale(t.scale.begin(), t.scale.end());
    e["scale"] = scalar_or_array(scale, t.per_channel());
    e["zero_point"] = scalar_or_array(t.zero_point, t.per_channel());
    e["lo"] = scalar_or_array(t.lo, t.per_channel());
    e["hi"] = scalar_or_array(t.hi, t.per_channel());
    e["requested"] = {t.requested_lo, t.requested_hi};
    if (!t.rounding_scale.empty()) {
      std::vector<double> rs(t.rounding_scale.begin(), t.rounding_scale.end());
      e["rounding_scale"] = scalar_or_array(rs, t.per_channel());
    }
    if (!t.shift.empty()) e["shift"] = t.shift;
    if (!t.channel_bits.empty()) e["channel_bits"] = t.channel_bits;
    if (options.semantics == Semantics::kSeed) {
      e["seed_grid"] = std::string(form_name(t.seed_form));
      if (t.seed_form == quant::GridForm::kOffset) e["seed_offset"] = static_cast<double>(t.seed_offset);
    }
    e["method"] = t.method;
    if (t.alpha != 0.0) {
      e["alpha"] = t.alpha;
      e["coefficient"] = t.coefficient;
    }
    e["statistic"] = t.statistic;
    arr.push_back(std::move(e));
  }
  j["tensors"] = std::move(arr);
  return j.dump(1) + "\n";
}

QuantPlan QuantPlan::from_json(const std::string& text, const std::string& source) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    fail(source + ": not a valid plan file (JSON parse error: " + std::string(e.what()) + "; truncated?)");
  }
  if (!j.is_object() || !j.contains("format") || j["format"] != "aciq-quant-plan")
    fail(source + ": not an aciq quantization plan (no \"format\": \"aciq-quant-plan\")");
  const int version = read_value<int>(j, source, "version");
  if (version != kVersion)
    fail(fmt::format("{}: plan version {} is not supported (this aciq reads version {})", source, version,
                     kVersion));
  QuantPlan p;
  if (!j.contains("model")) fail(source + ": missing 'model'");
  const json& model = j.at("model");
  p.model_path = read_value<std::string>(model, source + ": model", "path");
  p.model_hash = read_value<std::string>(model, source + ": model", "hash");
  if (j.contains("stats") && j.at("stats").is_object()) {
    const json& st = j.at("stats");
    p.stats_path = read_value<std::string>(st, source + ": stats", "path");
    p.stats_data = read_value<std::string>(st, source + ": stats", "data");
    p.stats_samples = read_value<std::int64_t>(st, source + ": stats", "samples");
  }
  if (!j.contains("options")) fail(source + ": missing 'options'");
  p.options = parse_options(j.at("options"), source + ": options");
  if (!j.contains("tensors") || !j.at("tensors").is_array()) fail(source + ": missing the 'tensors' array");
  std::set<std::pair<std::string, int>> seen;
  std::size_t index = 0;
  for (const auto& e : j.at("tensors")) {
    const std::string where0 = fmt::format("{}: tensors[{}]", source, index++);
    if (!e.is_object()) fail(where0 + ": not an object");
    TensorQuant t;
    t.tensor = read_value<std::string>(e, where0, "tensor");
    const std::string where = fmt::format("{}: tensor '{}'", source, t.tensor);
    t.node = read_value<std::string>(e, where, "node");
    t.kind = parse_kind(read_value<std::string>(e, where, "kind"), where);
    t.role = read_value<std::string>(e, where, "role");
    t.bits = read_value<int>(e, where, "bits");
    t.is_signed = read_value<bool>(e, where, "signed");
    t.qmin = read_value<std::int32_t>(e, where, "qmin");
    t.qmax = read_value<std::int32_t>(e, where, "qmax");
    t.axis = e.contains("axis") ? read_value<int>(e, where, "axis") : -1;
    if (e.contains("axis") && t.axis < 0) fail(where + ": axis must be >= 0");
    t.scale = read_vector<float>(e, where, "scale");
    t.zero_point = read_vector<std::int32_t>(e, where, "zero_point");
    t.lo = read_vector<double>(e, where, "lo");
    t.hi = read_vector<double>(e, where, "hi");
    const auto req = read_vector<double>(e, where, "requested");
    if (req.size() != 2) fail(where + ": 'requested' must be [lo, hi]");
    t.requested_lo = req[0];
    t.requested_hi = req[1];
    if (e.contains("rounding_scale")) t.rounding_scale = read_vector<float>(e, where, "rounding_scale");
    if (e.contains("shift")) t.shift = read_vector<double>(e, where, "shift");
    if (e.contains("channel_bits")) t.channel_bits = read_vector<int>(e, where, "channel_bits");
    if (p.options.semantics == Semantics::kSeed) {
      t.seed_form = parse_form(read_value<std::string>(e, where, "seed_grid"), where);
      if (t.seed_form == quant::GridForm::kOffset)
        t.seed_offset = static_cast<float>(read_value<double>(e, where, "seed_offset"));
    }
    t.method = read_value<std::string>(e, where, "method");
    if (e.contains("alpha")) t.alpha = read_value<double>(e, where, "alpha");
    if (e.contains("coefficient")) t.coefficient = read_value<double>(e, where, "coefficient");
    t.statistic = read_value<std::string>(e, where, "statistic");
    validate(t, p.options.semantics, where);
    if (!seen.insert({t.tensor, static_cast<int>(t.kind)}).second)
      fail(where + ": appears twice as " + std::string(tensor_kind_name(t.kind)));
    p.tensors.push_back(std::move(t));
  }
  return p;
}

void QuantPlan::save(const std::string& path) const { calib::write_file_atomically(path, to_json()); }

QuantPlan QuantPlan::load(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) fail(path + ": is a directory, not a plan file");
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path + ": cannot open plan file");
  std::ostringstream ss;
  ss << in.rdbuf();
  if (!in.good() && !in.eof()) fail(path + ": read error");
  return from_json(ss.str(), path);
}

void QuantPlan::require_graph(const graph::Graph& g, const std::string& source) const {
  if (model_hash != g.model_hash)
    fail(fmt::format("{}: plan was made for another model (hash {}, from {}); {} has hash {}", source,
                     model_hash, model_path, g.source, g.model_hash));
  std::set<std::string> values;
  for (const auto& in : g.inputs) values.insert(in.name);
  for (const auto& n : g.nodes) values.insert(n.outputs.begin(), n.outputs.end());
  for (const auto& t : tensors) {
    const std::string where = fmt::format("{}: tensor '{}'", source, t.tensor);
    if (t.kind == TensorKind::kActivation) {
      if (!values.count(t.tensor)) fail(where + ": no such value in " + g.source);
      continue;
    }
    const Tensor* w = g.initializer(t.tensor);
    if (!w) fail(where + ": no such initializer in " + g.source);
    if (w->dtype() != DType::kFloat32) fail(where + ": initializer is not float32");
    if (t.per_channel()) {
      if (static_cast<std::size_t>(t.axis) >= w->rank())
        fail(fmt::format("{}: axis {} is outside the initializer's shape {}", where, t.axis,
                         shape_str(w->shape())));
      if (w->dim(static_cast<std::size_t>(t.axis)) != static_cast<std::int64_t>(t.channels()))
        fail(fmt::format("{}: {} channel scales for shape {} along axis {}", where, t.channels(),
                         shape_str(w->shape()), t.axis));
    }
    if (!t.shift.empty() && static_cast<std::int64_t>(t.shift.size()) != w->numel())
      fail(fmt::format("{}: {} shifts for a bias of shape {}", where, t.shift.size(), shape_str(w->shape())));
  }
}

}  // namespace aciq::plan
