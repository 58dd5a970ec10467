// Resize and Upsample: output-shape inference from scales/sizes and the reference interpolation kernel.
#include "kernels/reference/resize.hpp"

#include <cmath>
#include <set>

#include "runtime/ops/common.hpp"
#include "runtime/ops/registry.hpp"

namespace aciq::runtime {

namespace {

namespace ref = kernels::ref;

// Outputs below this many elements run on one thread: the pool's hand-off costs more than the work.
constexpr std::int64_t kParallelMin = std::int64_t{1} << 15;

// One class for Resize (opset 10, 11-18) and Upsample (opset 7-9, and the deprecated 10): they differ
// only in where the scales come from and which attributes exist.
class ResizeOp : public Op {
 public:
  using Op::Op;

  std::vector<ValueMeta> infer(const std::vector<ValueMeta>& in) override {
    require_f32(*this, in, 1);
    parse_attributes();
    const Shape& xs = in[0].shape;
    const auto rank = static_cast<std::int64_t>(xs.size());
    resized_axes(rank);

    // Per-axis scale and output size; axes that are not resized keep scale 1 and their size.
    scale_.assign(xs.size(), 1.0);
    Shape out = xs;
    const std::size_t n = axes_.size();
    if (const ValueMeta* s = scales_input(in)) {
      std::vector<double> scales = scales_value(*s);
      if (scales.size() != n) {
        error("scales has " + std::to_string(scales.size()) + " values for " + std::to_string(n) +
              " resized axes of input " + shape_str(xs));
      }
      for (std::size_t i = 0; i < n; ++i) {
        const auto d = static_cast<std::size_t>(axes_[i]);
        if (!(scales[i] > 0) || !std::isfinite(scales[i])) {
          error("scale " + std::to_string(scales[i]) + " for axis " + std::to_string(d) +
                " must be positive");
        }
        scale_[d] = scales[i];
        // floor(in * scale), as the ONNX reference truncates the product.
        out[d] = static_cast<std::int64_t>(std::floor(static_cast<double>(xs[d]) * scales[i]));
      }
    } else {
      const ValueMeta& sz = in[3];
      if (!sz.value) {
        error("the output shape depends on input 'sizes' ('" + node_.inputs[3] +
              "'), which is not known when planning; make it an initializer or a Constant");
      }
      const std::vector<std::int64_t> sizes = sz.value->to_i64_vector();
      if (sizes.size() != n) {
        error("sizes has " + std::to_string(sizes.size()) + " values for " + std::to_string(n) +
              " resized axes of input " + shape_str(xs));
      }
      for (std::size_t i = 0; i < n; ++i) {
        const auto d = static_cast<std::size_t>(axes_[i]);
        if (sizes[i] < 0) error("sizes has negative value " + std::to_string(sizes[i]));
        if (xs[d] == 0) error("cannot resize axis " + std::to_string(d) + " of size 0 to a given size");
        out[d] = sizes[i];
        scale_[d] = static_cast<double>(sizes[i]) / static_cast<double>(xs[d]);
      }
      if (aspect_policy_ != "stretch") {
        // One scale for every resized axis: the smallest (not_larger) or largest (not_smaller).
        double scale = scale_[static_cast<std::size_t>(axes_[0])];
        for (auto a : axes_) {
          const double s = scale_[static_cast<std::size_t>(a)];
          scale = aspect_policy_ == "not_larger" ? std::min(scale, s) : std::max(scale, s);
        }
        for (auto a : axes_) {
          const auto d = static_cast<std::size_t>(a);
          scale_[d] = scale;
          out[d] = static_cast<std::int64_t>(scale * static_cast<double>(xs[d]) + 0.5);  // round half up
        }
      }
    }
    for (std::size_t d = 0; d < xs.size(); ++d) {
      if (xs[d] == 0 && out[d] != 0) error("cannot resize axis " + std::to_string(d) + " of size 0");
    }
    try {
      shape_numel(out);  // refuses outputs past the element limit before anything is allocated
    } catch (const Error& e) {
      error(std::string("output: ") + e.what());
    }

    tables_.clear();
    tables_ready_ = false;
    if (params_.coord != ref::ResizeCoord::kTfCropAndResize) {
      tables_ = build_tables(xs, out, {});
      tables_ready_ = true;
    } else {
      const ValueMeta* r = roi_input(in);
      if (!r) error("coordinate_transformation_mode tf_crop_and_resize needs the roi input");
      // A roi known now is baked into the tables; otherwise run() reads it from its input.
      if (r->value) {
        tables_ = build_tables(xs, out, roi_value(*r->value));
        tables_ready_ = true;
      }
    }
    return {ValueMeta{DType::kFloat32, out, nullptr}};
  }

  void run(Context& ctx, const std::vector<const Tensor*>& in, const std::vector<Tensor*>& out) override {
    std::vector<ref::ResizeAxis> late;
    if (!tables_ready_) {
      const Tensor* roi = in.size() > 1 ? in[1] : nullptr;
      if (!roi || roi->numel() == 0)
        error("coordinate_transformation_mode tf_crop_and_resize needs the roi input");
      late = build_tables(in[0]->shape(), out[0]->shape(), roi_value(*roi));
    }
    const std::vector<ref::ResizeAxis>& tables = tables_ready_ ? tables_ : late;
    const float* x = in[0]->data<float>();
    float* y = out[0]->data<float>();
    const std::int64_t blocks = ref::resize_blocks(tables);
    if (blocks > 1 && ctx.threads() > 1 && out[0]->numel() >= kParallelMin) {
      ctx.pool->parallel_for(
          blocks, [&](std::int64_t b, std::int64_t e) { ref::resize(tables, extrapolation_, x, y, b, e); });
    } else {
      ref::resize(tables, extrapolation_, x, y);
    }
  }

 private:
  [[nodiscard]] bool is_upsample() const { return node_.op_type == "Upsample"; }

  void parse_attributes() {
    const std::string mode = node_.get_string("mode", "nearest");
    if (mode == "nearest") {
      params_.mode = ref::ResizeMode::kNearest;
    } else if (mode == "linear" || (is_upsample() && mode == "bilinear")) {
      params_.mode = ref::ResizeMode::kLinear;
    } else if (mode == "cubic" && !is_upsample() && opset_ >= 11) {
      params_.mode = ref::ResizeMode::kCubic;
    } else {
      error("mode '" + mode + "' is not supported at opset " + std::to_string(opset_));
    }
    if (is_upsample() || opset_ < 11) {
      // Upsample and Resize-10 predate the coordinate modes: asymmetric source coordinates, and
      // nearest picks the sample at or left of them (pixel repetition for integer scales).
      params_.coord = ref::ResizeCoord::kAsymmetric;
      params_.nearest = ref::ResizeNearest::kFloor;
      return;
    }
    const std::string coord = node_.get_string("coordinate_transformation_mode", "half_pixel");
    if (coord == "half_pixel") {
      params_.coord = ref::ResizeCoord::kHalfPixel;
    } else if (coord == "half_pixel_symmetric" && opset_ >= 19) {
      params_.coord = ref::ResizeCoord::kHalfPixelSymmetric;
    } else if (coord == "pytorch_half_pixel") {
      params_.coord = ref::ResizeCoord::kPytorchHalfPixel;
    } else if (coord == "align_corners") {
      params_.coord = ref::ResizeCoord::kAlignCorners;
    } else if (coord == "asymmetric") {
      params_.coord = ref::ResizeCoord::kAsymmetric;
    } else if (coord == "tf_half_pixel_for_nn" && opset_ < 13) {
      params_.coord = ref::ResizeCoord::kTfHalfPixelForNn;
    } else if (coord == "tf_crop_and_resize") {
      params_.coord = ref::ResizeCoord::kTfCropAndResize;
    } else {
      error("coordinate_transformation_mode '" + coord + "' is not supported at opset " +
            std::to_string(opset_));
    }
    const std::string nearest = node_.get_string("nearest_mode", "round_prefer_floor");
    if (nearest == "round_prefer_floor") {
      params_.nearest = ref::ResizeNearest::kRoundPreferFloor;
    } else if (nearest == "round_prefer_ceil") {
      params_.nearest = ref::ResizeNearest::kRoundPreferCeil;
    } else if (nearest == "floor") {
      params_.nearest = ref::ResizeNearest::kFloor;
    } else if (nearest == "ceil") {
      params_.nearest = ref::ResizeNearest::kCeil;
    } else {
      error("nearest_mode '" + nearest + "' is not supported");
    }
    params_.cubic_coeff_a = node_.get_float("cubic_coeff_a", -0.75f);
    params_.exclude_outside = node_.get_int("exclude_outside", 0) != 0;
    extrapolation_ = node_.get_float("extrapolation_value", 0.0f);
    if (opset_ >= 18) {
      if (node_.get_int("antialias", 0) != 0) error("antialias=1 is not supported");
      aspect_policy_ = node_.get_string("keep_aspect_ratio_policy", "stretch");
      if (aspect_policy_ != "stretch" && aspect_policy_ != "not_larger" && aspect_policy_ != "not_smaller")
        error("keep_aspect_ratio_policy '" + aspect_policy_ + "' is not supported");
    }
  }

  // The axes that scales/sizes/roi describe: the opset-18 `axes` attribute, or every axis.
  void resized_axes(std::int64_t rank) {
    axes_.clear();
    if (!is_upsample() && opset_ >= 18 && node_.has("axes")) {
      std::set<std::int64_t> seen;
      for (std::int64_t a : node_.get_ints("axes")) {
        const std::int64_t d = a < 0 ? a + rank : a;
        if (d < 0 || d >= rank)
          error("axis " + std::to_string(a) + " is out of range for rank " + std::to_string(rank));
        if (!seen.insert(d).second) error("axes repeats axis " + std::to_string(a));
        axes_.push_back(d);
      }
      if (axes_.empty()) error("axes is empty");
    } else {
      for (std::int64_t d = 0; d < rank; ++d) axes_.push_back(d);
    }
  }

  // An optional input that is present: named and not an empty tensor (exporters pass empty
  // tensors for the unused one of scales/sizes).
  static bool present(const std::vector<ValueMeta>& in, const graph::Node& node, std::size_t i) {
    return node.has_input(i) && i < in.size() && shape_numel(in[i].shape) > 0;
  }

  const ValueMeta* roi_input(const std::vector<ValueMeta>& in) const {
    return present(in, node_, 1) ? &in[1] : nullptr;
  }

  // The scales input in use, or nullptr when sizes is (Resize 11+). Upsample-7 keeps its scales in
  // an attribute: it returns X's meta as a stand-in and scales_value reads the attribute.
  const ValueMeta* scales_input(const std::vector<ValueMeta>& in) {
    if (is_upsample() && opset_ < 9) {
      upsample_attr_ = true;
      return &in[0];
    }
    upsample_attr_ = false;
    const std::size_t si = is_upsample() || opset_ < 11 ? 1 : 2;
    const bool has_scales = present(in, node_, si);
    const bool has_sizes = si == 2 && present(in, node_, 3);
    if (has_scales && has_sizes) error("give only one of scales and sizes");
    if (!has_scales && !has_sizes) error(si == 2 ? "needs scales or sizes" : "needs scales");
    if (!has_scales) return nullptr;
    if (!in[si].value) {
      error("the output shape depends on input 'scales' ('" + node_.inputs[si] +
            "'), which is not known when planning; make it an initializer or a Constant");
    }
    return &in[si];
  }

  std::vector<double> scales_value(const ValueMeta& m) const {
    std::vector<double> v;
    if (upsample_attr_) {
      if (!node_.has("scales")) error("needs the scales attribute");
      for (float s : node_.get_floats("scales")) v.push_back(s);
      return v;
    }
    const Tensor f = m.value->to_f32();
    for (float s : f.f32()) v.push_back(s);
    return v;
  }

  // The roi as [start_0..start_{r-1}, end_0..end_{r-1}] over every axis, from the values given for
  // the resized axes.
  std::vector<double> roi_value(const Tensor& roi) const {
    const std::size_t n = axes_.size();
    const Tensor f = roi.to_f32();
    if (static_cast<std::size_t>(f.numel()) != 2 * n) {
      error("roi has " + std::to_string(f.numel()) + " values, expected " + std::to_string(2 * n));
    }
    const std::size_t r = scale_.size();
    std::vector<double> full(2 * r, 0.0);
    for (std::size_t d = 0; d < r; ++d) full[r + d] = 1.0;
    for (std::size_t i = 0; i < n; ++i) {
      const auto d = static_cast<std::size_t>(axes_[i]);
      full[d] = f.f32()[i];
      full[r + d] = f.f32()[n + i];
    }
    return full;
  }

  std::vector<ref::ResizeAxis> build_tables(const Shape& xs, const Shape& out,
                                            const std::vector<double>& roi) const {
    const std::size_t r = xs.size();
    std::vector<bool> resized(r, false);
    for (auto a : axes_) resized[static_cast<std::size_t>(a)] = true;
    std::vector<ref::ResizeAxis> tables;
    for (std::size_t d = 0; d < r; ++d) {
      if (!resized[d]) {
        // Axes outside `axes` are copied, whatever the coordinate mode would do with scale 1.
        ref::ResizeParams copy;
        copy.mode = ref::ResizeMode::kNearest;
        copy.coord = ref::ResizeCoord::kAsymmetric;
        tables.push_back(ref::resize_axis(copy, xs[d], xs[d], 1.0));
        continue;
      }
      const double start = roi.empty() ? 0.0 : roi[d];
      const double end = roi.empty() ? 1.0 : roi[r + d];
      tables.push_back(ref::resize_axis(params_, xs[d], out[d], scale_[d], start, end));
    }
    return tables;
  }

  ref::ResizeParams params_;
  float extrapolation_ = 0.0f;
  std::string aspect_policy_ = "stretch";
  bool upsample_attr_ = false;
  std::vector<std::int64_t> axes_;
  std::vector<double> scale_;
  std::vector<ref::ResizeAxis> tables_;
  bool tables_ready_ = false;  // false while a tf_crop_and_resize roi is only known at run time
};

}  // namespace

std::vector<OpEntry> resize_ops() {
  return {
      op_entry<ResizeOp>("Resize", "float32", "", 10),
      op_entry<ResizeOp>("Upsample", "float32", ""),
  };
}

}  // namespace aciq::runtime
