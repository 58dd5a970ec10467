// Shared plumbing of the aciq subcommands: option groups, model/data opening, result printing.
#pragma once

#include <CLI/CLI.hpp>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "aciq/data.hpp"
#include "aciq/eval.hpp"
#include "aciq/graph.hpp"
#include "aciq/plan.hpp"
#include "aciq/policy.hpp"
#include "aciq/runtime.hpp"

namespace aciq::cli {

struct ModelOptions {
  std::string model;
  bool no_fold_bn = false;
  std::string backend = "fast";
  int threads = 2;
  void add(CLI::App& app);
  [[nodiscard]] runtime::Backend backend_enum() const;
  [[nodiscard]] graph::Graph load() const;
};

struct DataArgs {
  std::string data = "fashion-mnist";
  std::string split;
  std::int64_t limit = 0;
  std::int64_t batch = 256;
  int workers = 2;
  std::vector<float> mean, std;
  int resize = 256, crop = 224;
  void add(CLI::App& app, const std::string& default_split_help);
  // The --split given, else default_split.
  [[nodiscard]] std::shared_ptr<const data::Dataset> open(const std::string& default_split) const;
  // Exactly `split`, whatever --split says (sweep's calibration pass).
  [[nodiscard]] std::shared_ptr<const data::Dataset> open_split(const std::string& split) const;
  [[nodiscard]] data::LoaderOptions loader() const;
};

struct QuantArgs {
  std::string qtype;  // "" = fp32
  std::string clip = "no";
  std::string stats;
  int wbits = 8;
  int fc_bits = 8;
  std::string placement = "outputs";
  std::vector<std::string> keep_8bit;
  bool seed_coefficients = false;
  std::string semantics = "seed";
  std::string wgran = "tensor";
  void add(CLI::App& app);
  [[nodiscard]] bool quantized() const { return !qtype.empty(); }
  [[nodiscard]] policy::PolicyOptions options() const;
  [[nodiscard]] plan::PlanOptions plan_options(bool fold_batchnorm) const;
};

// "int4" -> 4; throws on anything else or bits outside 1..16.
int parse_qtype(const std::string& qtype);

// " * Prec@1 X Prec@5 Y" (the seed's format, 3 decimals).
std::string prec_line(const eval::TopK& r);

}  // namespace aciq::cli
