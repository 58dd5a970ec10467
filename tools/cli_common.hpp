// Shared plumbing of the aciq subcommands: the option groups every command uses (one definition, one
// set of defaults and limits), input/output checks made before any long work, and result records.
#pragma once

#include <CLI/CLI.hpp>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "aciq/data.hpp"
#include "aciq/dist.hpp"
#include "aciq/eval.hpp"
#include "aciq/graph.hpp"
#include "aciq/plan.hpp"
#include "aciq/policy.hpp"
#include "aciq/runtime.hpp"

namespace aciq::cli {

// What main() hands every command: the command line as typed (for result records) and the process
// group it runs in.
struct Invocation {
  std::vector<std::string> argv;                   // argv[0] is the program
  dist::Group* group = nullptr;                    // one process, or the ranks of an MPI job
  [[nodiscard]] std::string command_line() const;  // shell-quoted
};

// Integer option limits with a one-line message naming the value ("--limit: -5 is not an integer in
// 0..9223372036854775807" would be the CLI11 default; this says ">= 0").
CLI::Validator int_at_least(std::int64_t lo);
CLI::Validator int_in(std::int64_t lo, std::int64_t hi);

struct ModelOptions {
  std::string model;
  std::string arch;  // the seed's -a NAME, resolved to a model file (resolve_model_name)
  bool no_fold_bn = false;
  std::string backend = "fast";
  int threads = 2;
  void add(CLI::App& app);
  // Resolves -a to --model and checks that exactly one was given. Every command calls it first.
  void resolve();
  [[nodiscard]] runtime::Backend backend_enum() const;
  std::string layout = "auto";
  // --backend and --layout as the executor takes them.
  [[nodiscard]] runtime::ExecutorOptions executor_options() const;
  [[nodiscard]] graph::Graph load() const;
};

// -a NAME: NAME itself if it is a file, else NAME or NAME.onnx in $ACIQ_MODELS (colon-separated),
// ./models, and the models/ folder next to the binary's parent (the source tree's, for a build tree)
// or share/aciq/models of an install. The error lists where it looked and what models it found.
std::string resolve_model_name(const std::string& name);

struct DataArgs {
  std::string data = "fashion-mnist";
  std::string split;
  std::int64_t offset = 0;
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
  // The samples [begin, end) this selection covers in `ds`; throws when --offset is past its end or
  // the selection is empty.
  [[nodiscard]] std::pair<std::int64_t, std::int64_t> range(const data::Dataset& ds) const;
  // "test" or "val" (ImageNet-style folders) when --split is not given.
  [[nodiscard]] std::string default_split() const;
};

// --clip's help and check, from the calibrator table.
std::string clip_help();
CLI::Validator clip_validator();

// The quantization options of eval, analyze, calibrate, layers, bench and sweep (sweep takes its bit
// widths and clipping methods as lists and adds only the rest).
struct QuantArgs {
  std::string qtype;  // "" = fp32
  std::string clip = "no";
  std::vector<std::string> clip_overrides;  // POINT=METHOD
  std::string stats;
  std::string stats_mode;  // the seed's -sm: "" | collect | use | no
  int wbits = 8;
  int fc_bits = 8;
  std::string placement = "outputs";
  std::vector<std::string> keep_8bit;
  bool seed_coefficients = false;
  bool half = false;
  std::string semantics = "seed";
  std::string wgran = "tensor";
  std::string wclip = "minmax";
  std::string bias_correction = "none";
  std::string bit_alloc = "none";
  double bits_budget = 0.0;
  std::vector<int> bit_widths{2, 3, 4, 8};
  // with_activation_options = false leaves out --qtype/--clip/--stats/-sm (sweep has its own lists).
  void add(CLI::App& app, bool with_activation_options = true);
  [[nodiscard]] bool quantized() const { return !qtype.empty(); }
  [[nodiscard]] policy::PolicyOptions options() const;
  [[nodiscard]] plan::PlanOptions plan_options(bool fold_batchnorm) const;
  // Options that only act on a quantized run, given without --qtype: the first one's name, else "".
  [[nodiscard]] std::string given_without_qtype() const;
  // Throws when an option was given that has no effect without --qtype (no silent no-ops).
  void require_effective(const std::string& command) const;

 private:
  std::vector<std::pair<std::string, CLI::Option*>> needs_qtype_;
};

// "int4" -> 4; throws on anything else or bits outside 1..16.
int parse_qtype(const std::string& qtype);

// " * Prec@1 X Prec@5 Y" (the seed's format, 3 decimals).
std::string prec_line(const eval::TopK& r);

// --engine simulate|int8 (eval, run), and its checks before any file is read: int8 executes a plan
// (--plan or --qtype/--stats) in onnx semantics; dynamic ranges (-sm no) have no plan to lower.
void add_engine_option(CLI::App& app, std::string& engine);
void check_engine_options(eval::Engine engine, const std::string& plan_path, const QuantArgs& q,
                          const std::string& stats_mode);
void check_engine_plan(eval::Engine engine, const plan::QuantPlan& plan, const std::string& plan_path);

// The seed's statistics location when -sm use/collect is given without --stats:
// $HOME/asiq_data/statistics/<model file stem>.stats.json (the seed's folder name, typo included).
std::string seed_stats_path(const std::string& model_path);

// The common head of every --json result: aciq version and commit, the command line, and every
// option of `cmd` with its resolved value (defaults included), so the file is enough to rerun it.
nlohmann::ordered_json run_record(const CLI::App& cmd, const Invocation& inv);
// {"path", "hash"} of a file.
nlohmann::ordered_json file_record(const std::string& path);

// Writes the JSON result after the human-readable result is already on stdout.
void write_json(const std::string& path, const nlohmann::ordered_json& j);

}  // namespace aciq::cli
