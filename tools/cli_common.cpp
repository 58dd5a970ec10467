// Shared plumbing of the aciq subcommands.
#include "cli_common.hpp"

#include <fmt/format.h>

#include "aciq/onnx.hpp"

namespace aciq::cli {

void ModelOptions::add(CLI::App& app) {
  app.add_option("--model", model, "ONNX model file")->required();
  app.add_flag("--no-fold-bn", no_fold_bn, "keep BatchNormalization nodes instead of folding them into Conv/Gemm");
  app.add_option("--backend", backend, "kernels: fast (oneDNN) or reference (scalar oracle)")
      ->check(CLI::IsMember({"fast", "reference"}));
  app.add_option("--threads", threads, "compute threads")->check(CLI::Range(1, 256));
}

runtime::Backend ModelOptions::backend_enum() const {
  return backend == "reference" ? runtime::Backend::kReference : runtime::Backend::kFast;
}

graph::Graph ModelOptions::load() const { return onnx_import::load_model(model, {.fold_batchnorm = !no_fold_bn}); }

void DataArgs::add(CLI::App& app, const std::string& default_split_help) {
  app.add_option("--data", data, "fashion-mnist[:DIR] | imagenet:DIR | idx:IMAGES,LABELS")->capture_default_str();
  app.add_option("--split", split, "dataset split (" + default_split_help + ")");
  app.add_option("--limit", limit, "use only the first N samples (0 = all)")->check(CLI::NonNegativeNumber);
  app.add_option("-b,--batch-size", batch, "batch size")->check(CLI::Range(1, 65536))->capture_default_str();
  app.add_option("--workers", workers, "data loader threads")->check(CLI::Range(1, 64))->capture_default_str();
  app.add_option("--mean", mean, "per-channel normalization mean (default: the dataset's)");
  app.add_option("--std", std, "per-channel normalization std (default: the dataset's)");
  app.add_option("--resize", resize, "ImageFolder: resize the shorter side to this")->capture_default_str();
  app.add_option("--crop", crop, "ImageFolder: center crop size")->capture_default_str();
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
  o.limit = limit;
  o.workers = workers;
  o.prefetch_batches = 2;
  return o;
}

void QuantArgs::add(CLI::App& app) {
  app.add_option("--qtype", qtype, "simulate intM activations, e.g. int4 (default: fp32)");
  app.add_option("--clip,-t,--threshold", clip, "clipping: no | laplace | gaus | mix")
      ->check(CLI::IsMember({"no", "none", "laplace", "gaus", "gauss", "mix"}))
      ->capture_default_str();
  app.add_option("--stats", stats, "statistics file from `aciq collect`");
  app.add_option("--wbits", wbits, "weight/bias bits, per-tensor min/max (0 = float weights)")
      ->check(CLI::Range(0, 16))
      ->capture_default_str();
  app.add_option("--fc-bits", fc_bits, "bits of fully-connected outputs")->check(CLI::Range(1, 16))->capture_default_str();
  app.add_option("--placement", placement,
                 "quantize Conv/Gemm outputs (outputs, alias seed), their inputs, or both as integer runtimes do (deploy)")
      ->check(CLI::IsMember({"outputs", "seed", "inputs", "deploy"}))
      ->capture_default_str();
  app.add_option("--semantics", semantics,
                 "arithmetic: seed (GEMMLOWP, float zero point) or onnx (QuantizeLinear/DequantizeLinear)")
      ->check(CLI::IsMember({"seed", "onnx"}))
      ->capture_default_str();
  app.add_option("--wgran", wgran, "weight grids: tensor (asymmetric, the seed) or channel (symmetric per output channel)")
      ->check(CLI::IsMember({"tensor", "channel"}))
      ->capture_default_str();
  app.add_option("--keep-8bit", keep_8bit, "node or value names kept at 8 bits")->delimiter(',');
  app.add_flag("--seed-coefficients", seed_coefficients, "use the seed's 2-decimal alpha tables (int_quantizer.py, bits 2..8)");
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
  o.clip = quant::parse_clip_method(clip);
  o.weight_bits = wbits;
  o.fc_bits = fc_bits;
  o.placement = policy::parse_placement(placement);
  o.keep_8bit = keep_8bit;
  o.seed_coefficients = seed_coefficients;
  return o;
}

plan::PlanOptions QuantArgs::plan_options(bool fold_batchnorm) const {
  plan::PlanOptions o;
  o.policy = options();
  o.semantics = plan::parse_semantics(semantics);
  o.weights = plan::parse_weight_granularity(wgran);
  o.fold_batchnorm = fold_batchnorm;
  return o;
}

std::string prec_line(const eval::TopK& r) { return fmt::format(" * Prec@1 {:.3f} Prec@5 {:.3f}", r.top1(), r.top5()); }

}  // namespace aciq::cli
