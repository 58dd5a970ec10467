// `aciq alpha`, `aciq layers` and `aciq analyze`: clipping tables, quantization points, per-layer MSE analysis.
#include <fmt/format.h>

#include <iostream>
#include <nlohmann/json.hpp>

#include "aciq/calib.hpp"
#include "aciq/onnx.hpp"
#include "aciq/onnx.hpp"
#include "aciq/plan.hpp"
#include "cli_common.hpp"
#include "commands.hpp"

namespace aciq::cli {

namespace {

struct AlphaCmd {
  std::string dist = "laplace";
  std::string bits = "1-8";
  bool seed = false;
};

struct LayersCmd {
  ModelOptions model;
  std::string plan;
};

struct AnalyzeCmd {
  ModelOptions model;
  DataArgs data;
  QuantArgs quant;
  std::string csv, json;
};

std::pair<int, int> parse_bit_range(const std::string& s) {
  const auto dash = s.find('-');
  try {
    const int lo = std::stoi(s.substr(0, dash));
    const int hi = dash == std::string::npos ? lo : std::stoi(s.substr(dash + 1));
    if (lo < 1 || hi > 16 || lo > hi) throw Error("");
    return {lo, hi};
  } catch (const std::exception&) {
    throw Error("--bits '" + s + "': expected A-B with 1 <= A <= B <= 16");
  }
}

int run_alpha(const AlphaCmd& c) {
  const auto [lo, hi] = parse_bit_range(c.bits);
  const auto d = c.dist == "laplace" ? quant::Distribution::kLaplace : quant::Distribution::kGauss;
  std::cout << quant::alpha_table(d, lo, hi, c.seed);
  return 0;
}

int run_layers(const LayersCmd& c) {
  if (!c.plan.empty()) {
    const auto p = plan::QuantPlan::load(c.plan);
    const auto g = onnx_import::load_model(c.model.model, {.fold_batchnorm = p.options.fold_batchnorm});
    p.require_graph(g, c.plan);
    std::cout << plan::plan_table(p);
    return 0;
  }
  auto g = c.model.load();
  Context ctx(1);
  std::vector<Shape> in_shapes;
  for (const auto& in : g.inputs) {
    Shape s = in.shape;
    for (auto& d : s) d = d < 0 ? 1 : d;
    in_shapes.push_back(s);
  }
  const auto points = policy::quant_points(g, {});
  runtime::Executor exec(g, ctx, {});
  const auto shapes = exec.infer_shapes(in_shapes);
  std::cout << fmt::format("{:<28} {:<28} {:<8} {:<11} {}\n", "point (value)", "node", "op", "role", "shape (batch 1)");
  for (const auto& p : points) {
    const graph::Node* n = nullptr;
    for (const auto& node : g.nodes) {
      if (node.name == p.node) n = &node;
    }
    auto it = shapes.find(p.value);
    std::cout << fmt::format("{:<28} {:<28} {:<8} {:<11} {}\n", p.value, p.node, n ? n->op_type : "?",
                             policy::role_name(p.role), it == shapes.end() ? "?" : shape_str(it->second));
  }
  std::cout << fmt::format("{} quantization points; model hash {}\n", points.size(), g.model_hash);
  return 0;
}

// Captures one batch of every observed value (unmodified) for offline analysis.
class CaptureObserver : public runtime::Observer {
 public:
  explicit CaptureObserver(std::size_t n) : captured_(n) {}
  void observe(std::size_t index, Tensor& value) override {
    if (captured_[index].empty()) captured_[index] = value.clone();
  }
  std::vector<Tensor> captured_;
};

double measured_mse(const Tensor& x, const quant::QuantWindow& window, int bits) {
  Tensor q = x.clone();
  quant::fake_quant(q.f32(), quant::affine_params(window, bits));
  double sum = 0.0;
  for (std::int64_t i = 0; i < x.numel(); ++i) {
    const double d = static_cast<double>(q.f32()[i]) - x.f32()[i];
    sum += d * d;
  }
  return x.numel() ? sum / static_cast<double>(x.numel()) : 0.0;
}

int run_analyze(const AnalyzeCmd& c) {
  if (c.quant.stats.empty()) throw Error("analyze needs --stats FILE");
  if (!c.quant.quantized()) throw Error("analyze needs --qtype intM");
  Context ctx(c.model.threads);
  auto g = c.model.load();
  const auto stats = calib::StatsFile::load(c.quant.stats);
  stats.require_model(g.model_hash, c.quant.stats);
  auto base = c.quant.options();
  const auto points = policy::quant_points(g, base);
  std::vector<std::string> values;
  for (const auto& p : points) values.push_back(p.value);
  runtime::Executor exec(g, ctx, {.backend = c.model.backend_enum()});
  exec.set_observed(values);
  auto ds = c.data.open(default_split(c.data.data));
  auto lo = c.data.loader();
  lo.limit = lo.limit ? std::min(lo.limit, lo.batch_size) : lo.batch_size;
  data::BatchLoader loader(ds, lo);
  CaptureObserver cap(points.size());
  auto batch = loader.next();
  if (!batch) throw Error(ds->describe() + ": dataset is empty");
  exec.run({batch->images}, &cap);

  const quant::ClipMethod methods[] = {quant::ClipMethod::kNone, quant::ClipMethod::kLaplace, quant::ClipMethod::kGauss,
                                       quant::ClipMethod::kMix};
  nlohmann::ordered_json rows = nlohmann::ordered_json::array();
  std::string csv = "point,role,bits,b,std,sigma_est,mean_min,mean_max,alpha_laplace,alpha_gaus,mix_choice,"
                    "mse_no,mse_laplace,mse_gaus,mse_mix,est_laplace,est_gaus\n";
  std::cout << fmt::format("{:<24} {:>4} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>6} | {:>10} {:>10} {:>10} {:>10} | {:>10} {:>10}\n",
                           "point", "bits", "b", "std", "min", "max", "a_lap", "a_gaus", "mix", "mse_no", "mse_lap",
                           "mse_gaus", "mse_mix", "est_lap", "est_gaus");
  for (std::size_t i = 0; i < points.size(); ++i) {
    auto p = points[i];
    const auto* s = stats.find(p.value);
    if (!s) throw Error(c.quant.stats + ": no statistics for point '" + p.value + "'");
    using calib::Stat;
    const double b = s->column("mean", Stat::kB), sd = s->column("mean", Stat::kStd);
    const double mn = s->column("mean", Stat::kMin), mx = s->column("mean", Stat::kMax);
    const double sigma_est = quant::seed_gauss_sigma(mn, mx, s->sample_numel);
    double mse[4];
    policy::PointRange ranges[4];
    for (int m = 0; m < 4; ++m) {
      // "no" is the policy's own range for the point; fully-connected points are never clipped by the
      // policy, so their clipped columns show what clipping them like a conv would do.
      p.clip = methods[m];
      if (m > 0 && (p.role == policy::Role::kLinear || p.role == policy::Role::kClassifier)) p.role = policy::Role::kConv;
      ranges[m] = policy::point_range(p, *s, base);
      mse[m] = measured_mse(cap.captured_[i], ranges[m].window, p.bits);
    }
    const double est_l = quant::laplace_clip_mse(ranges[1].alpha, b, p.bits);
    const double est_g = quant::gauss_clip_mse(ranges[2].alpha, sd, p.bits);
    const std::string mix = ranges[3].method == quant::ClipMethod::kLaplace ? "lap" : "gaus";
    std::cout << fmt::format(
        "{:<24} {:>4} {:>9.4f} {:>9.4f} {:>9.4f} {:>9.4f} {:>9.4f} {:>9.4f} {:>6} | {:>10.3e} {:>10.3e} {:>10.3e} {:>10.3e} | "
        "{:>10.3e} {:>10.3e}\n",
        p.value.substr(0, 24), p.bits, b, sd, mn, mx, ranges[1].alpha, ranges[2].alpha, mix, mse[0], mse[1], mse[2],
        mse[3], est_l, est_g);
    csv += fmt::format("{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}\n", p.value, policy::role_name(points[i].role),
                       p.bits, b, sd, sigma_est, mn, mx, ranges[1].alpha, ranges[2].alpha, mix, mse[0], mse[1], mse[2],
                       mse[3], est_l, est_g);
    rows.push_back({{"point", p.value}, {"role", policy::role_name(points[i].role)}, {"bits", p.bits}, {"b", b},
                    {"std", sd}, {"sigma_est", sigma_est}, {"mean_min", mn}, {"mean_max", mx},
                    {"alpha_laplace", ranges[1].alpha}, {"alpha_gaus", ranges[2].alpha}, {"mix_choice", mix},
                    {"mse", {{"no", mse[0]}, {"laplace", mse[1]}, {"gaus", mse[2]}, {"mix", mse[3]}}},
                    {"estimate", {{"laplace", est_l}, {"gaus", est_g}}}});
  }
  std::cout << fmt::format("measured on one batch of {} samples; estimates use mean b and mean std\n",
                           batch->labels.size());
  if (!c.csv.empty()) calib::write_file_atomically(c.csv, csv);
  if (!c.json.empty()) calib::write_file_atomically(c.json, rows.dump(1) + "\n");
  return 0;
}

}  // namespace

void add_info_commands(CLI::App& app, SetAction set_action) {
  auto a = std::make_shared<AlphaCmd>();
  auto* alpha = app.add_subcommand("alpha", "print the optimal clipping coefficients alpha/b or alpha/sigma");
  alpha->add_option("--dist", a->dist, "laplace | gauss")->check(CLI::IsMember({"laplace", "gauss", "gaus"}))->capture_default_str();
  alpha->add_option("--bits", a->bits, "bit range A-B")->capture_default_str();
  alpha->add_flag("--seed-coefficients", a->seed, "the seed's 2-decimal tables instead of the exact optima");
  alpha->callback([a, set_action] { set_action([a] { return run_alpha(*a); }); });

  auto l = std::make_shared<LayersCmd>();
  auto* layers = app.add_subcommand("layers", "list the quantization points of a model");
  l->model.add(*layers);
  layers->add_option("--plan", l->plan, "show this quantization plan as a table instead");
  layers->callback([l, set_action] { set_action([l] { return run_layers(*l); }); });

  auto z = std::make_shared<AnalyzeCmd>();
  auto* an = app.add_subcommand("analyze", "per-layer statistics, alphas, measured vs analytical MSE");
  z->model.add(*an);
  z->data.add(*an, "default: test");
  z->quant.add(*an);
  an->add_option("--csv", z->csv, "also write CSV");
  an->add_option("--json", z->json, "also write JSON");
  an->callback([z, set_action] { set_action([z] { return run_analyze(*z); }); });
}

}  // namespace aciq::cli
