// `aciq alpha`, `aciq layers` and `aciq analyze`: clipping tables, quantization points, per-layer MSE
// analysis.
#include <fmt/format.h>

#include <iomanip>
#include <iostream>
#include <nlohmann/json.hpp>

#include "aciq/calib.hpp"
#include "aciq/onnx.hpp"
#include "aciq/plan.hpp"
#include "aciq/runtime.hpp"
#include "cli_common.hpp"
#include "commands.hpp"

namespace aciq::cli {

namespace {

struct AlphaCmd {
  std::string dist = "laplace";
  std::string bits;  // "" = 1-8, or 2-8 with --seed-coefficients (the seed's tables)
  bool seed = false;
  std::string grid;  // "" = the midrise model; "symmetric" | "half": the optimum for the grid that runs
};

struct LayersCmd {
  ModelOptions model;
  QuantArgs quant;
  std::string plan;
  std::string json;
  CLI::App* app = nullptr;
};

struct AnalyzeCmd {
  ModelOptions model;
  DataArgs data;
  QuantArgs quant;
  std::string csv, json;
  bool quiet = false;
  CLI::App* app = nullptr;
};

std::pair<int, int> parse_bit_range(const std::string& s) {
  const auto dash = s.find('-');
  try {
    std::size_t used = 0;
    const int lo = std::stoi(s.substr(0, dash), &used);
    if (used != (dash == std::string::npos ? s.size() : dash)) throw Error("");
    const int hi = dash == std::string::npos ? lo : std::stoi(s.substr(dash + 1), &used);
    if (dash != std::string::npos && used != s.size() - dash - 1) throw Error("");
    if (lo < 1 || hi > 16 || lo > hi) throw Error("");
    return {lo, hi};
  } catch (const std::exception&) {
    throw Error("--bits '" + s + "': expected A-B with 1 <= A <= B <= 16");
  }
}

int run_alpha(const AlphaCmd& c) {
  const auto [lo, hi] = parse_bit_range(c.bits.empty() ? (c.seed ? "2-8" : "1-8") : c.bits);
  if (c.seed && (lo < 2 || hi > 8)) {
    throw Error("--bits " + c.bits + ": the seed's tables (--seed-coefficients) cover 2..8 bits");
  }
  const auto d = c.dist == "laplace" ? quant::Distribution::kLaplace : quant::Distribution::kGauss;
  if (!c.grid.empty()) {
    if (c.seed) throw Error("--grid: the seed's tables are for the midrise model; drop --seed-coefficients");
    const auto grid = c.grid == "half" ? quant::ClipGrid::kHalf : quant::ClipGrid::kSymmetric;
    const char* unit = d == quant::Distribution::kLaplace ? "b" : "sigma";
    std::cout << fmt::format(
        "# {} clipping for the {} grid of 2^M levels: alpha = c * {}; MSE of that grid at {} = 1\n",
        quant::distribution_name(d), c.grid, unit, unit);
    std::cout << fmt::format("{:>4}  {:>12}  {:>14}  {:>12}  {:>14}\n", "bits", "grid c", "grid mse",
                             "midrise c", "its grid mse");
    for (int bits = lo; bits <= hi; ++bits) {
      const double gc = quant::grid_alpha_coefficient(d, grid, bits);
      const double mc = quant::optimal_alpha_coefficient(d, bits);
      std::cout << fmt::format("{:>4}  {:>12.8f}  {:>14.8e}  {:>12.8f}  {:>14.8e}\n", bits, gc,
                               quant::grid_clip_mse(d, grid, gc, 1.0, bits), mc,
                               quant::grid_clip_mse(d, grid, mc, 1.0, bits));
    }
    return 0;
  }
  std::cout << quant::alpha_table(d, lo, hi, c.seed);
  return 0;
}

std::string pad(const std::string& s, std::size_t width) {
  return s + std::string(width > s.size() ? width - s.size() : 0, ' ');
}

int run_layers(const LayersCmd& c, const Invocation& inv) {
  LayersCmd cmd = c;
  cmd.model.resolve();
  if (!cmd.json.empty()) calib::check_writable(cmd.json, "--json");
  if (!cmd.plan.empty()) {
    if (cmd.quant.quantized() || !cmd.quant.given_without_qtype().empty()) {
      throw Error("--plan: shows the plan as made; drop the quantization options");
    }
    const auto p = plan::QuantPlan::load(cmd.plan);
    const auto g = onnx_import::load_model(cmd.model.model, {.fold_batchnorm = p.options.fold_batchnorm});
    p.require_graph(g, cmd.plan);
    std::cout << plan::plan_table(p);
    if (!cmd.json.empty()) {
      auto j = run_record(*cmd.app, inv);
      j["model"] = {{"path", cmd.model.model}, {"hash", g.model_hash}};
      j["plan"] = file_record(cmd.plan);
      j["tensors"] = nlohmann::ordered_json::parse(p.to_json())["tensors"];
      write_json(cmd.json, j);
    }
    return 0;
  }
  cmd.quant.require_effective("layers");
  const bool quantized = cmd.quant.quantized();
  const policy::PolicyOptions options = quantized ? cmd.quant.options() : policy::PolicyOptions{};
  auto g = cmd.model.load();
  Context ctx(1);
  std::vector<Shape> in_shapes;
  for (const auto& in : g.inputs) {
    Shape s = in.shape;
    for (auto& d : s) d = d < 0 ? 1 : d;
    in_shapes.push_back(s);
  }
  const auto points = policy::quant_points(g, options);
  runtime::Executor exec(g, ctx, {});
  const auto shapes = exec.infer_shapes(in_shapes);
  struct Row {
    std::string value, node, op, role, shape, bits, clip;
  };
  std::vector<Row> rows;
  for (const auto& p : points) {
    const graph::Node* n = nullptr;
    for (const auto& node : g.nodes) {
      if (node.name == p.node) n = &node;
    }
    const auto it = shapes.find(p.value);
    rows.push_back({p.value, p.node, n ? n->op_type : "?", std::string(policy::role_name(p.role)),
                    it == shapes.end() ? "?" : shape_str(it->second), std::to_string(p.bits),
                    calib::clip_name(p.clip)});
  }
  Row head{"point (value)", "node", "op", "role", "shape (batch 1)", "bits", "clip"};
  std::size_t w[5] = {head.value.size(), head.node.size(), head.op.size(), head.role.size(),
                      head.shape.size()};
  for (const auto& r : rows) {
    w[0] = std::max(w[0], r.value.size());
    w[1] = std::max(w[1], r.node.size());
    w[2] = std::max(w[2], r.op.size());
    w[3] = std::max(w[3], r.role.size());
    w[4] = std::max(w[4], r.shape.size());
  }
  auto line = [&](const Row& r) {
    std::string s =
        pad(r.value, w[0]) + "  " + pad(r.node, w[1]) + "  " + pad(r.op, w[2]) + "  " + pad(r.role, w[3]);
    if (quantized)
      s += "  " + pad(r.shape, w[4]) + "  " + pad(r.bits, 4) + "  " + r.clip;
    else
      s += "  " + r.shape;
    while (!s.empty() && s.back() == ' ') s.pop_back();
    return s + "\n";
  };
  std::cout << line(head);
  for (const auto& r : rows) std::cout << line(r);
  std::cout << fmt::format("{} quantization points ({}); model hash {}\n", points.size(),
                           quantized
                               ? cmd.quant.qtype + "/" + cmd.quant.clip + ", placement " + cmd.quant.placement
                               : "placement outputs; --qtype adds bits and clipping",
                           g.model_hash);
  if (!cmd.json.empty()) {
    auto j = run_record(*cmd.app, inv);
    j["model"] = {{"path", cmd.model.model}, {"hash", g.model_hash}};
    auto arr = nlohmann::ordered_json::array();
    for (const auto& r : rows) {
      nlohmann::ordered_json jr = {
          {"value", r.value}, {"node", r.node}, {"op", r.op}, {"role", r.role}, {"shape", r.shape}};
      if (quantized) {
        jr["bits"] = std::stoi(r.bits);
        jr["clip"] = r.clip;
      }
      arr.push_back(std::move(jr));
    }
    j["points"] = std::move(arr);
    write_json(cmd.json, j);
  }
  return 0;
}

std::string cell(const std::optional<double>& v, const char* f = "{:.3e}") {
  return v ? fmt::format(fmt::runtime(f), *v) : std::string();
}

int run_analyze(const AnalyzeCmd& c, const Invocation& inv) {
  AnalyzeCmd cmd = c;
  cmd.model.resolve();
  if (cmd.quant.stats.empty())
    throw Error("--stats: analyze needs a statistics file (run `aciq collect` first)");
  if (!cmd.quant.quantized())
    throw Error("--qtype: analyze needs the activation bit width, e.g. --qtype int4");
  if (cmd.quant.clip != "no" && cmd.quant.clip != "none") {
    throw Error("--clip: analyze measures every clipping method side by side; drop --clip");
  }
  if (!cmd.quant.stats_mode.empty()) throw Error("-sm: analyze reads --stats; drop -sm");
  if (!cmd.csv.empty()) calib::check_writable(cmd.csv, "--csv");
  if (!cmd.json.empty()) calib::check_writable(cmd.json, "--json");
  const auto options = cmd.quant.plan_options(!cmd.model.no_fold_bn);
  Context ctx(cmd.model.threads);
  auto g = cmd.model.load();
  const auto stats = calib::StatsFile::load(cmd.quant.stats);
  stats.require_model(g.model_hash, cmd.quant.stats);
  auto ds = cmd.data.open(cmd.data.default_split());
  const auto [begin, end] = cmd.data.range(*ds);
  eval::check_data_fits(g, *ds, std::min(cmd.data.batch, end - begin));
  const std::string model_hash = g.model_hash;
  eval::LoopOptions loop;
  loop.progress = !cmd.quiet;
  loop.label = "analyze";
  const eval::ClippingAnalysis analysis =
      eval::analyze_clipping(std::move(g), stats, cmd.quant.stats, options, cmd.model.executor_options(), ctx,
                             ds, cmd.data.loader(), loop);
  const auto& methods = analysis.methods;

  std::size_t name_w = 5;
  for (const auto& a : analysis.points) name_w = std::max(name_w, a.point.value.size());
  nlohmann::ordered_json rows = nlohmann::ordered_json::array();
  // Column names from the table: mse_<name> ('-' as '_' in CSV).
  std::string csv = "point,role,bits,b,std,sigma_est,mean_min,mean_max,alpha_laplace,alpha_gaus,mix_choice";
  std::string head = fmt::format("{:<{}} {:<11} {:>4} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>6} |", "point",
                                 name_w, "role", "bits", "b", "std", "min", "max", "a_lap", "a_gaus", "mix");
  for (const auto* m : methods) {
    std::string n(m->name);
    std::replace(n.begin(), n.end(), '-', '_');
    csv += ",mse_" + n;
    head += fmt::format(" {:>12}", m->name);
  }
  csv += ",est_laplace,est_gaus\n";
  std::cout << head << fmt::format(" | {:>10} {:>10}\n", "est_lap", "est_gaus");
  auto json_or_null = [](const std::optional<double>& v) {
    return v ? nlohmann::ordered_json(*v) : nlohmann::ordered_json();
  };
  for (const auto& a : analysis.points) {
    const auto& p = a.point;
    std::string line =
        fmt::format("{:<{}} {:<11} {:>4} {:>9.4f} {:>9.4f} {:>9.4f} {:>9.4f} {:>9} {:>9} {:>6} |", p.value,
                    name_w, policy::role_name(p.role), p.bits, a.b, a.std, a.mean_min, a.mean_max,
                    cell(a.alpha_laplace, "{:.4f}"), cell(a.alpha_gaus, "{:.4f}"), a.mix_choice);
    csv += fmt::format("{},{},{},{},{},{},{},{},{},{},{}", p.value, policy::role_name(p.role), p.bits, a.b,
                       a.std, a.sigma_est, a.mean_min, a.mean_max, cell(a.alpha_laplace, "{}"),
                       cell(a.alpha_gaus, "{}"), a.mix_choice);
    nlohmann::ordered_json jm;
    for (std::size_t k = 0; k < methods.size(); ++k) {
      line += fmt::format(" {:>12}", cell(a.mse[k]));
      csv += "," + cell(a.mse[k], "{}");
      jm[std::string(methods[k]->name)] = json_or_null(a.mse[k]);
    }
    std::cout << line << fmt::format(" | {:>10} {:>10}\n", cell(a.estimate_laplace), cell(a.estimate_gaus));
    csv += fmt::format(",{},{}\n", cell(a.estimate_laplace, "{}"), cell(a.estimate_gaus, "{}"));
    rows.push_back(
        {{"point", p.value},
         {"node", p.node},
         {"role", policy::role_name(p.role)},
         {"bits", p.bits},
         {"b", a.b},
         {"std", a.std},
         {"sigma_est", a.sigma_est},
         {"mean_min", a.mean_min},
         {"mean_max", a.mean_max},
         {"alpha_laplace", json_or_null(a.alpha_laplace)},
         {"alpha_gaus", json_or_null(a.alpha_gaus)},
         {"mix_choice",
          a.mix_choice.empty() ? nlohmann::ordered_json() : nlohmann::ordered_json(a.mix_choice)},
         {"mse", std::move(jm)},
         {"estimate",
          {{"laplace", json_or_null(a.estimate_laplace)}, {"gaus", json_or_null(a.estimate_gaus)}}}});
  }
  std::cout << fmt::format(
      "measured over {} samples of {} (fp32 network, {} semantics); estimates use mean b and mean std; "
      "empty cells: the policy does not clip the point\n",
      analysis.samples, ds->describe(), cmd.quant.semantics);
  if (!cmd.csv.empty()) calib::write_file_atomically(cmd.csv, csv);
  if (!cmd.json.empty()) {
    auto j = run_record(*cmd.app, inv);
    j["model"] = {{"path", cmd.model.model}, {"hash", model_hash}};
    j["stats"] = file_record(cmd.quant.stats);
    j["data"] = {{"source", ds->describe()}, {"offset", begin}, {"count", analysis.samples}};
    j["points"] = std::move(rows);
    write_json(cmd.json, j);
  }
  return 0;
}

struct OpsCmd {
  bool markdown = false, json = false;
};

// The operator registry as a table: what the fast backend runs and since which opset.
int run_ops(const OpsCmd& cmd) {
  const auto& ops = runtime::operator_table();
  if (cmd.json) {
    nlohmann::json j = nlohmann::json::array();
    for (const auto& o : ops) {
      j.push_back({{"op", o.type},
                   {"family", o.family},
                   {"dtypes", o.dtypes},
                   {"since_opset", o.since_opset},
                   {"fast_kernel", o.fast_kernel.empty() ? "reference" : o.fast_kernel}});
    }
    std::cout << j.dump(1) << "\n";
    return 0;
  }
  if (cmd.markdown) {
    std::cout << "| operator | since opset | input dtypes | fast backend | family (src/runtime/ops/) |\n"
              << "|---|---|---|---|---|\n";
    for (const auto& o : ops) {
      std::cout << "| " << o.type << " | " << o.since_opset << " | " << o.dtypes << " | "
                << (o.fast_kernel.empty() ? "reference kernel" : o.fast_kernel) << " | " << o.family
                << " |\n";
    }
    return 0;
  }
  std::size_t w = 8;
  for (const auto& o : ops) w = std::max(w, o.type.size());
  for (const auto& o : ops) {
    std::cout << std::left << std::setw(static_cast<int>(w + 2)) << std::string(o.type) << std::setw(4)
              << o.since_opset << std::setw(14) << std::string(o.family)
              << (o.fast_kernel.empty() ? std::string("reference") : std::string(o.fast_kernel)) << "\n";
  }
  std::cout << ops.size() << " operators, opsets " << graph::kMinOpset << "-" << graph::kMaxOpset << "\n";
  return 0;
}

}  // namespace

void add_info_commands(CLI::App& app, SetAction set_action) {
  auto a = std::make_shared<AlphaCmd>();
  auto* alpha = app.add_subcommand("alpha", "print the optimal clipping coefficients alpha/b or alpha/sigma");
  alpha->add_option("--dist", a->dist, "laplace | gauss")
      ->check(CLI::IsMember({"laplace", "gauss", "gaus"}))
      ->capture_default_str();
  alpha->add_option("--bits", a->bits, "bit range A-B (default 1-8; 2-8 with --seed-coefficients)");
  alpha->add_flag("--seed-coefficients", a->seed, "the seed's 2-decimal tables instead of the exact optima");
  alpha
      ->add_option(
          "--grid", a->grid,
          "symmetric | half: the optimum for the 2^M-level grid that runs (half: [0, alpha] after a ReLU)")
      ->check(CLI::IsMember({"symmetric", "half"}));
  alpha->footer("Example:\n  aciq alpha --dist gauss --bits 2-4\n  aciq alpha --grid symmetric --bits 1-8");
  alpha->callback([a, set_action] { set_action([a](const Invocation&) { return run_alpha(*a); }); });

  auto o = std::make_shared<OpsCmd>();
  auto* ops = app.add_subcommand("ops", "list the supported ONNX operators (the operator registry)");
  auto* md = ops->add_flag("--markdown", o->markdown, "as a Markdown table (docs/operators.md)");
  ops->add_flag("--json", o->json, "as JSON")->excludes(md);
  ops->footer("Example:\n  aciq ops --markdown > docs/operators.md");
  ops->callback([o, set_action] { set_action([o](const Invocation&) { return run_ops(*o); }); });

  auto l = std::make_shared<LayersCmd>();
  auto* layers = app.add_subcommand(
      "layers", "list the quantization points of a model, with bits and clipping under --qtype");
  l->app = layers;
  l->model.add(*layers);
  l->quant.add(*layers);
  layers->add_option("--plan", l->plan, "show this quantization plan as a table instead");
  layers->add_option("--json", l->json, "also write the table and the full configuration as JSON");
  layers->footer(
      "Example:\n  aciq layers --model models/resnet20.onnx --qtype int4 --clip laplace --placement deploy");
  layers->callback(
      [l, set_action] { set_action([l](const Invocation& inv) { return run_layers(*l, inv); }); });

  auto z = std::make_shared<AnalyzeCmd>();
  auto* an = app.add_subcommand(
      "analyze", "per-layer statistics, alphas, measured vs analytical MSE of every clipping method");
  z->app = an;
  z->model.add(*an);
  z->data.add(*an, "default: test");
  z->quant.add(*an);
  an->add_option("--csv", z->csv, "also write CSV");
  an->add_option("--json", z->json, "also write the table and the full configuration as JSON");
  an->add_flag("-q,--quiet", z->quiet, "no progress output");
  an->footer(
      "Example:\n  aciq analyze --model models/resnet20.onnx --stats out/resnet20.stats.json --qtype int4 "
      "--limit 1000");
  an->callback([z, set_action] { set_action([z](const Invocation& inv) { return run_analyze(*z, inv); }); });
}

}  // namespace aciq::cli
