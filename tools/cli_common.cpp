// Shared plumbing of the aciq subcommands.
#include "cli_common.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <limits>

#include "aciq/calib.hpp"
#include "aciq/onnx.hpp"
#include "aciq_version.hpp"

namespace aciq::cli {

namespace fs = std::filesystem;

std::string Invocation::command_line() const {
  std::string out;
  for (const auto& a : argv) {
    const bool plain = !a.empty() && a.find_first_not_of(
                                         "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                                         "-_./:,=@+%") == std::string::npos;
    std::string q = a;
    if (!plain) {
      q = "'";
      for (const char c : a) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
      q += "'";
    }
    out += (out.empty() ? "" : " ") + q;
  }
  return out;
}

namespace {
CLI::Validator int_validator(std::int64_t lo, std::int64_t hi, const std::string& description) {
  return CLI::Validator(
      [lo, hi, description](const std::string& s) -> std::string {
        std::int64_t v = 0;
        std::size_t used = 0;
        try {
          v = std::stoll(s, &used);
        } catch (const std::exception&) {
          used = 0;
        }
        if (used == 0 || used != s.size()) return "'" + s + "' is not an integer";
        if (v < lo || v > hi) return "'" + s + "' must be " + description;
        return "";
      },
      description);
}
}  // namespace

CLI::Validator int_at_least(std::int64_t lo) {
  return int_validator(lo, std::numeric_limits<std::int64_t>::max(), ">= " + std::to_string(lo));
}

CLI::Validator int_in(std::int64_t lo, std::int64_t hi) {
  return int_validator(lo, hi, "in " + std::to_string(lo) + ".." + std::to_string(hi));
}

void ModelOptions::add(CLI::App& app) {
  app.add_option("--model", model, "ONNX model file (required, or -a NAME)");
  app.add_option("-a,--arch", arch,
                 "the seed's -a: a model name resolved to NAME.onnx under $ACIQ_MODELS or models/");
  app.add_flag("--no-fold-bn", no_fold_bn,
               "keep BatchNormalization nodes instead of folding them into Conv/Gemm");
  app.add_option("--backend", backend, "kernels: fast (oneDNN) or reference (scalar oracle)")
      ->check(CLI::IsMember({"fast", "reference"}))
      ->capture_default_str();
  app.add_option("--layout", layout,
                 "fast backend's activation layout: auto, blocked (nChw8c/16c) or nhwc (docs/layouts.md)")
      ->check(CLI::IsMember({"auto", "blocked", "nhwc"}))
      ->capture_default_str();
  app.add_option("--threads", threads, "compute threads")->check(int_in(1, 256))->capture_default_str();
}

void ModelOptions::resolve() {
  if (!model.empty() && !arch.empty())
    throw Error("-a " + arch + ": give either --model FILE or -a NAME, not both");
  if (model.empty() && arch.empty()) throw Error("--model: required (an ONNX file; or -a NAME)");
  if (model.empty()) model = resolve_model_name(arch);
  arch.clear();  // resolved: a second resolve() (eval -sm collect runs collect) sees --model only
}

runtime::Backend ModelOptions::backend_enum() const {
  return backend == "reference" ? runtime::Backend::kReference : runtime::Backend::kFast;
}

runtime::ExecutorOptions ModelOptions::executor_options() const {
  runtime::ExecutorOptions o;
  o.backend = backend_enum();
  o.layout = layout == "blocked" ? runtime::LayoutChoice::kBlocked
             : layout == "nhwc"  ? runtime::LayoutChoice::kChannelsLast
                                 : runtime::LayoutChoice::kAuto;
  return o;
}

graph::Graph ModelOptions::load() const {
  return onnx_import::load_model(model, {.fold_batchnorm = !no_fold_bn});
}

std::string resolve_model_name(const std::string& name) {
  std::error_code ec;
  if (fs::is_regular_file(name, ec)) return name;
  std::vector<fs::path> dirs;
  if (const char* env = std::getenv("ACIQ_MODELS")) {
    std::string list = env;
    for (std::size_t start = 0; start <= list.size();) {
      const std::size_t colon = std::min(list.find(':', start), list.size());
      if (colon > start) dirs.emplace_back(list.substr(start, colon - start));
      start = colon + 1;
    }
  }
  dirs.emplace_back("models");
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    dirs.push_back(exe.parent_path().parent_path() / "models");
    dirs.push_back(exe.parent_path().parent_path() / "share" / "aciq" / "models");
  }
  std::vector<std::string> found, looked;
  for (const auto& d : dirs) {
    for (const auto& candidate : {d / name, d / (name + ".onnx")}) {
      if (fs::is_regular_file(candidate, ec)) return candidate.string();
    }
    if (!fs::is_directory(d, ec)) continue;
    looked.push_back(d.string());
    for (const auto& e : fs::directory_iterator(d, ec)) {
      if (e.path().extension() == ".onnx") found.push_back(e.path().stem().string());
    }
  }
  std::sort(found.begin(), found.end());
  found.erase(std::unique(found.begin(), found.end()), found.end());
  std::string where, have;
  for (const auto& l : looked) where += (where.empty() ? "" : ", ") + l;
  for (const auto& f : found) have += (have.empty() ? "" : ", ") + f;
  const auto close = closest_matches(name, found, 1);
  throw Error(
      "-a " + name + ": no model " + name + "[.onnx] in " + (where.empty() ? "models/ (missing)" : where) +
      (have.empty() ? "" : " (available: " + have + ")") +
      (close.empty() ? "" : "; did you mean " + close[0] + "?") + "; set ACIQ_MODELS or give --model FILE");
}

void DataArgs::add(CLI::App& app, const std::string& default_split_help) {
  app.add_option("--data", data,
                 "fashion-mnist[:DIR] | imagenet:DIR | idx:IMAGES,LABELS | DIR (the seed's --data root)")
      ->capture_default_str();
  app.add_option("--split", split, "dataset split (" + default_split_help + ")");
  app.add_option("--offset", offset, "skip the first N samples (disjoint chunks for `collect --merge`)")
      ->check(int_at_least(0))
      ->capture_default_str();
  app.add_option("--limit", limit, "use only N samples from --offset on (0 = all)")
      ->check(int_at_least(0))
      ->capture_default_str();
  app.add_option("-b,--batch-size", batch, "batch size")->check(int_in(1, 65536))->capture_default_str();
  app.add_option("--workers", workers, "data loader threads")->check(int_in(1, 64))->capture_default_str();
  app.add_option("--mean", mean, "per-channel normalization mean (default: the dataset's)")->delimiter(',');
  app.add_option("--std", std, "per-channel normalization std (default: the dataset's)")->delimiter(',');
  app.add_option("--resize", resize, "ImageFolder: resize the shorter side to this")
      ->check(int_in(1, 65536))
      ->capture_default_str();
  app.add_option("--crop", crop, "ImageFolder: center crop size")
      ->check(int_in(1, 65536))
      ->capture_default_str();
}

std::string DataArgs::default_split() const {
  return data::resolve_data_spec(data).rfind("imagenet", 0) == 0 ? "val" : "test";
}

std::shared_ptr<const data::Dataset> DataArgs::open(const std::string& default_split) const {
  return open_split(split.empty() ? default_split : split);
}

std::shared_ptr<const data::Dataset> DataArgs::open_split(const std::string& which) const {
  data::DataOptions o;
  if (!mean.empty()) o.mean = mean;
  if (!std.empty()) o.std = std;
  o.resize = resize;
  o.crop = crop;
  return data::open_dataset(data, which, o);
}

data::LoaderOptions DataArgs::loader() const {
  data::LoaderOptions o;
  o.batch_size = batch;
  o.offset = offset;
  o.limit = limit;
  o.workers = workers;
  o.prefetch_batches = 2;
  return o;
}

std::pair<std::int64_t, std::int64_t> DataArgs::range(const data::Dataset& ds) const {
  const std::int64_t size = ds.size();
  if (size == 0) throw Error("--data " + ds.describe() + ": the dataset is empty");
  if (offset >= size) {
    throw Error(fmt::format("--offset {}: past the end of {} ({} samples)", offset, ds.describe(), size));
  }
  const std::int64_t end = limit > 0 && limit < size - offset ? offset + limit : size;  // no overflow
  return {offset, end};
}

std::string clip_help() {
  std::string s = "clipping (the seed's -th):";
  for (const auto& c : calib::calibrators()) {
    s += " ";
    s += c.name;
    if (c.default_param > 0) s += fmt::format("[:P, default {}]", c.default_param);
  }
  return s + " (docs/calibrators.md)";
}

CLI::Validator clip_validator() {
  return CLI::Validator(
      [](std::string& v) {
        try {
          (void)calib::parse_clip(v);
          return std::string();
        } catch (const Error& e) {
          return std::string(e.what());
        }
      },
      "METHOD");
}

void QuantArgs::add(CLI::App& app, bool with_activation_options) {
  auto track = [this](const std::string& name, CLI::Option* o) {
    needs_qtype_.emplace_back(name, o);
    return o;
  };
  if (with_activation_options) {
    app.add_option("--qtype", qtype, "simulate intM activations, e.g. int4 (default: fp32)");
    track("--clip", app.add_option("--clip,-t,--threshold", clip, clip_help())
                        ->check(clip_validator())
                        ->capture_default_str());
    track("--clip-override",
          app.add_option("--clip-override", clip_overrides,
                         "POINT=METHOD: the clipping method for one node or value (repeatable)"));
    track("--stats", app.add_option("--stats", stats, "statistics file from `aciq collect`"));
    app.add_option("--stats-mode", stats_mode,
                   "the seed's -sm: collect (run `collect`), use (--stats, default "
                   "$HOME/asiq_data/statistics/MODEL.stats.json), no (ranges from each batch itself)")
        ->check(CLI::IsMember({"collect", "use", "no"}));
  }
  track("--wbits",
        app.add_option("--wbits", wbits, "weight/bias bits, per-tensor min/max (0 = float weights)")
            ->check(int_in(0, 16))
            ->capture_default_str());
  track("--fc-bits", app.add_option("--fc-bits", fc_bits, "bits of fully-connected outputs")
                         ->check(int_in(1, 16))
                         ->capture_default_str());
  track("--placement", app.add_option("--placement", placement,
                                      "quantize Conv/Gemm outputs (outputs, alias seed), their inputs, or "
                                      "both as integer runtimes do (deploy)")
                           ->check(CLI::IsMember({"outputs", "seed", "inputs", "deploy"}))
                           ->capture_default_str());
  track("--semantics",
        app.add_option(
               "--semantics", semantics,
               "arithmetic: seed (GEMMLOWP, float zero point) or onnx (QuantizeLinear/DequantizeLinear)")
            ->check(CLI::IsMember({"seed", "onnx"}))
            ->capture_default_str());
  track(
      "--wgran",
      app.add_option("--wgran", wgran,
                     "weight grids: tensor (asymmetric, the seed) or channel (symmetric per output channel)")
          ->check(CLI::IsMember({"tensor", "channel"}))
          ->capture_default_str());
  track("--wclip",
        app.add_option("--wclip", wclip,
                       "per-channel weight thresholds: minmax (max |w|), laplace, gauss (ACIQ on each "
                       "channel's b / std) or mse (least quantization error); needs --wgran channel")
            ->check(CLI::IsMember({"minmax", "laplace", "gauss", "gaus", "mse"}))
            ->capture_default_str());
  track("--bias-correction",
        app.add_option(
               "--bias-correction", bias_correction,
               "paper: restore each output channel's weight mean and std after quantization (Banner et al. "
               "2019; simulation only, exports refuse it); deploy: the same folded into the weight scales "
               "and int32 biases (needs --semantics onnx and --placement deploy; exports carry it)")
            ->check(CLI::IsMember({"none", "paper", "deploy"}))
            ->capture_default_str());
  track("--bit-alloc",
        app.add_option("--bit-alloc", bit_alloc,
                       "channel: per-channel weight widths with 2^M proportional to threshold^(2/3) under an "
                       "average of --wbits (Banner et al. 2019); needs --wgran channel")
            ->check(CLI::IsMember({"none", "channel"}))
            ->capture_default_str());
  track("--bits-budget",
        app.add_option(
            "--bits-budget", bits_budget,
            "mixed precision: the conv points' widths from --bit-widths minimizing their summed measured "
            "error under this average width, weighted by tensor size (needs histograms)"));
  track("--bit-widths", app.add_option("--bit-widths", bit_widths, "the widths --bits-budget chooses from")
                            ->delimiter(',')
                            ->capture_default_str());
  track("--keep-8bit",
        app.add_option("--keep-8bit", keep_8bit, "node or value names kept at 8 bits")->delimiter(','));
  track("--half", app.add_flag("--half", half,
                               "outputs consumed only by a Relu/Clip: choose the window on the activated "
                               "values, lo = 0 (docs/calibrators.md)"));
  track("--seed-coefficients",
        app.add_flag("--seed-coefficients", seed_coefficients,
                     "use the seed's 2-decimal alpha tables (int_quantizer.py, bits 2..8)"));
}

std::string QuantArgs::given_without_qtype() const {
  if (quantized()) return "";
  for (const auto& [name, opt] : needs_qtype_) {
    if (opt->count() > 0) return name;
  }
  return "";
}

void QuantArgs::require_effective(const std::string& command) const {
  const auto name = given_without_qtype();
  if (!name.empty()) {
    throw Error(name + ": has no effect without --qtype (" + command +
                " would run fp32); add --qtype intM or drop " + name);
  }
}

int parse_qtype(const std::string& qtype) {
  if (qtype.rfind("int", 0) != 0) throw Error("--qtype '" + qtype + "': expected intM, e.g. int4");
  int bits = 0;
  try {
    std::size_t used = 0;
    bits = std::stoi(qtype.substr(3), &used);
    if (used != qtype.size() - 3) bits = 0;
  } catch (const std::exception&) {
    bits = 0;
  }
  if (bits < 1 || bits > 16) throw Error("--qtype '" + qtype + "': bit width must be 1..16");
  return bits;
}

policy::PolicyOptions QuantArgs::options() const {
  policy::PolicyOptions o;
  o.activation_bits = parse_qtype(qtype);
  try {
    o.clip = calib::parse_clip(clip);
  } catch (const Error& e) {
    throw Error(std::string("--clip: ") + e.what());
  }
  for (const auto& ov : clip_overrides) {
    const auto eq = ov.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == ov.size())
      throw Error("--clip-override '" + ov + "': expected POINT=METHOD, e.g. conv1_out=kl");
    try {
      o.clip_overrides.emplace_back(ov.substr(0, eq), calib::parse_clip(ov.substr(eq + 1)));
    } catch (const Error& e) {
      throw Error("--clip-override '" + ov + "': " + e.what());
    }
  }
  o.weight_bits = wbits;
  o.fc_bits = fc_bits;
  o.placement = policy::parse_placement(placement);
  o.keep_8bit = keep_8bit;
  o.seed_coefficients = seed_coefficients;
  o.half = half;
  if (seed_coefficients) {
    // The seed's tables cover 2..8 bits; say so now rather than at the first point of another width.
    if (o.activation_bits < 2 || o.activation_bits > 8) {
      throw Error(
          fmt::format("--seed-coefficients: the seed's tables cover 2..8 bits, not {}", o.activation_bits));
    }
  }
  return o;
}

plan::PlanOptions QuantArgs::plan_options(bool fold_batchnorm) const {
  plan::PlanOptions o;
  o.policy = options();
  o.semantics = plan::parse_semantics(semantics);
  o.weights = plan::parse_weight_granularity(wgran);
  o.weight_clip = plan::parse_weight_clip(wclip);
  o.bias_correction = plan::parse_bias_correction(bias_correction);
  o.bit_alloc = plan::parse_bit_alloc(bit_alloc);
  o.bits_budget = bits_budget;
  o.bit_widths = bit_widths;
  if (bits_budget > 0) {
    if (!std::is_sorted(bit_widths.begin(), bit_widths.end()) ||
        std::adjacent_find(bit_widths.begin(), bit_widths.end()) != bit_widths.end() ||
        bit_widths.front() < 1 || bit_widths.back() > 16)
      throw Error("--bit-widths: give increasing widths in 1..16, e.g. 2,3,4,8");
    if (bits_budget < bit_widths.front() || bits_budget > bit_widths.back())
      throw Error(
          fmt::format("--bits-budget {}: must lie between the narrowest and widest of --bit-widths ({}..{})",
                      bits_budget, bit_widths.front(), bit_widths.back()));
  }
  if (o.weight_clip != plan::WeightClip::kMinMax && o.weights != plan::WeightGranularity::kChannel)
    throw Error("--wclip " + wclip + ": weight clipping needs --wgran channel");
  o.fold_batchnorm = fold_batchnorm;
  plan::check_plan_options(o);
  return o;
}

std::string prec_line(const eval::TopK& r) {
  if (r.unlabeled == r.samples && r.samples > 0) return " * Prec@1 n/a Prec@5 n/a (unlabeled data)";
  return fmt::format(" * Prec@1 {:.3f} Prec@5 {:.3f}", r.top1(), r.top5());
}

std::string seed_stats_path(const std::string& model_path) {
  const char* home = std::getenv("HOME");
  const fs::path base = fs::path(home && *home ? home : ".") / "asiq_data" / "statistics";
  return (base / (fs::path(model_path).stem().string() + ".stats.json")).string();
}

nlohmann::ordered_json run_record(const CLI::App& cmd, const Invocation& inv) {
  nlohmann::ordered_json j;
  j["aciq"] = {{"version", ACIQ_VERSION}, {"commit", ACIQ_COMMIT}};
  j["command"] = inv.command_line();
  nlohmann::ordered_json options = nlohmann::ordered_json::object();
  for (const CLI::Option* o : cmd.get_options()) {
    if (o->get_lnames().empty()) continue;  // --help
    const std::string name = o->get_lnames().front();
    if (name == "help") continue;
    std::vector<std::string> values = o->results();
    if (values.empty() && !o->get_default_str().empty()) values = {o->get_default_str()};
    if (o->get_items_expected_max() == 0) {
      options[name] = o->count() > 0;  // a flag
    } else if (o->get_items_expected_max() > 1 || values.size() > 1) {
      options[name] = values;
    } else {
      options[name] = values.empty() ? "" : values.front();
    }
  }
  j["options"] = std::move(options);
  return j;
}

nlohmann::ordered_json file_record(const std::string& path) {
  return {{"path", path}, {"hash", file_hash(path)}};
}

void write_json(const std::string& path, const nlohmann::ordered_json& j) {
  calib::write_file_atomically(path, j.dump(1) + "\n");
}

void add_engine_option(CLI::App& app, std::string& engine) {
  app.add_option("--engine", engine,
                 "how a plan runs: simulate (fake quantization in float) or int8 (its QDQ export lowered to "
                 "QLinearConv/ConvInteger/... on the integer kernels; needs --semantics onnx; docs/int8.md)")
      ->capture_default_str()
      ->check(CLI::IsMember({"simulate", "int8"}));
}

void check_engine_options(eval::Engine engine, const std::string& plan_path, const QuantArgs& q,
                          const std::string& stats_mode) {
  if (engine != eval::Engine::kInt8) return;
  if (stats_mode == "no") throw Error("--engine int8: -sm no has no plan to execute; give --stats FILE");
  if (plan_path.empty() && !q.quantized())
    throw Error("--engine int8: needs a quantization plan (--plan FILE, or --qtype with --stats)");
  if (plan_path.empty() && q.semantics != "onnx")
    throw Error("--engine int8: integer kernels run the onnx semantics; add --semantics onnx");
}

void check_engine_plan(eval::Engine engine, const plan::QuantPlan& plan, const std::string& plan_path) {
  if (engine == eval::Engine::kInt8 && plan.semantics() != plan::Semantics::kOnnx)
    throw Error("--engine int8: " + plan_path + " uses the seed semantics; calibrate with --semantics onnx");
}

}  // namespace aciq::cli
