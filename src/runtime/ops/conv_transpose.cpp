// ConvTranspose (1-D to 3-D): a oneDNN deconvolution for constant weights, else the reference kernel.
#include "kernels/reference/conv_transpose.hpp"

#include <string>
#include <vector>

#include "kernels/fast/dnnl_kernels.hpp"
#include "runtime/ops/common.hpp"
#include "runtime/ops/registry.hpp"

namespace aciq::runtime {

namespace {

namespace ref = kernels::ref;
namespace fast = kernels::fast;

// Python-style floor division: the ONNX spec's pad split is written with it, and total padding is
// negative when output_shape asks for more than the full output.
std::int64_t floor_div2(std::int64_t v) { return v >= 0 ? v / 2 : -((-v + 1) / 2); }

class ConvTransposeOp : public Op {
 public:
  ConvTransposeOp(const graph::Node& n, std::int64_t opset, Backend b) : Op(n, opset), backend_(b) {}

  std::vector<ValueMeta> infer(const std::vector<ValueMeta>& in) override {
    if (in.size() < 2 || !node_.has_input(1)) error("ConvTranspose needs X and W");
    require_f32(*this, in, 3);
    const Shape& x = in[0].shape;
    const Shape& w = in[1].shape;
    if (x.size() < 3 || x.size() > 2 + ref::ConvTransposeShape::kMaxSpatial)
      error("only 1-D to 3-D transposed convolutions are supported, input " + shape_str(x));
    if (w.size() != x.size()) error("weight shape " + shape_str(w) + " does not match input " + shape_str(x));
    const std::int64_t group = node_.get_int("group", 1);
    if (group <= 0 || w[0] != x[1] || x[1] % group != 0) {
      error("input " + shape_str(x) + " does not fit weight " + shape_str(w) +
            " [C, OC/group, k...] with group " + std::to_string(group));
    }
    const std::int64_t oc = w[1] * group;
    if (node_.has_input(2) && (in.size() < 3 || in[2].shape.size() != 1 || in[2].shape[0] != oc)) {
      error("bias shape " + shape_str(in.size() > 2 ? in[2].shape : Shape{}) + " does not match " +
            std::to_string(oc) + " output channels");
    }
    const std::size_t sd = x.size() - 2;
    const Shape wk(w.begin() + 2, w.end());
    if (node_.get_ints("kernel_shape", wk) != wk)
      error("kernel_shape " + shape_str(node_.get_ints("kernel_shape", wk)) + " does not match weight " +
            shape_str(w));
    const auto strides = node_.get_ints("strides", std::vector<std::int64_t>(sd, 1));
    const auto dil = node_.get_ints("dilations", std::vector<std::int64_t>(sd, 1));
    const auto out_pad = node_.get_ints("output_padding", std::vector<std::int64_t>(sd, 0));
    auto pads = node_.get_ints("pads", std::vector<std::int64_t>(2 * sd, 0));
    auto out_shape = node_.get_ints("output_shape", {});
    if (strides.size() != sd || dil.size() != sd || out_pad.size() != sd || pads.size() != 2 * sd)
      error("strides/dilations/output_padding/pads do not match the input rank " + shape_str(x));
    // output_shape may name every dim or only the spatial ones.
    if (out_shape.size() == sd + 2) out_shape.erase(out_shape.begin(), out_shape.begin() + 2);
    if (!out_shape.empty() && out_shape.size() != sd)
      error("output_shape " + shape_str(out_shape) + " does not match the input rank " + shape_str(x));
    const std::string auto_pad = node_.get_string("auto_pad", "NOTSET");
    const bool same = auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER";
    if (!same && auto_pad != "VALID" && auto_pad != "NOTSET") error("unknown auto_pad '" + auto_pad + "'");

    ref::ConvTransposeShape s;
    s.n = x[0], s.c = x[1], s.oc = oc, s.group = group, s.spatial = static_cast<int>(sd);
    for (std::size_t i = 0; i < sd; ++i) {
      if (wk[i] <= 0 || strides[i] <= 0 || dil[i] <= 0 || out_pad[i] < 0)
        error("kernel, strides and dilations must be positive and output_padding non-negative");
      const std::int64_t ext = (wk[i] - 1) * dil[i] + 1;
      const std::int64_t full = strides[i] * (x[2 + i] - 1) + out_pad[i] + ext;
      std::int64_t begin = pads[i], end = pads[i + sd], out = 0;
      if (!out_shape.empty() || same) {
        // The spec derives the pads from the requested size; SAME without output_shape asks for in * stride.
        out = out_shape.empty() ? x[2 + i] * strides[i] : out_shape[i];
        const std::int64_t total = full - out;
        begin = auto_pad == "SAME_UPPER" ? floor_div2(total) : total - floor_div2(total);
        end = total - begin;
      } else {
        if (auto_pad == "VALID") begin = end = 0;
        out = full - begin - end;
      }
      if (out <= 0) error("output would be empty for input " + shape_str(x));
      s.in[i] = x[2 + i], s.out[i] = out, s.kernel[i] = wk[i], s.stride[i] = strides[i],
      s.dilation[i] = dil[i];
      s.pad_begin[i] = begin;
      s.pad_end[i] = end - out_pad[i];
    }
    shape_ = s;
    Shape y{s.n, s.oc};
    for (std::size_t i = 0; i < sd; ++i) y.push_back(s.out[i]);
    return {ValueMeta{DType::kFloat32, y, nullptr}};
  }

  void prepare(const std::vector<ValueMeta>& in, const std::vector<ValueMeta>&, DnnlEnv* env) override {
    if (!env || !can_use_dnnl(in)) return;
    deconv_ = std::make_unique<fast::Deconv>(*env, shape_, in[1].value->data<float>(),
                                             node_.has_input(2) ? in[2].value->data<float>() : nullptr, act_);
  }

  // Both paths can apply it: oneDNN as a post-op, the reference path as a pass over the output.
  bool fuse_activation(const Activation& act) override {
    if (act_.kind != Activation::Kind::kNone) return false;
    act_ = act;
    return true;
  }

  std::string kernel() const override {
    return deconv_ ? "oneDNN " + deconv_->implementation() : "reference";
  }

  void run(Context&, const std::vector<const Tensor*>& in, const std::vector<Tensor*>& out) override {
    if (deconv_) {
      deconv_->run(in[0]->data<float>(), out[0]->data<float>());
      return;
    }
    const float* bias = node_.has_input(2) ? in[2]->data<float>() : nullptr;
    ref::conv_transpose(shape_, in[0]->data<float>(), in[1]->data<float>(), bias, out[0]->data<float>());
    kernels::apply_activation_ref(act_, out[0]->data<float>(), out[0]->numel());
  }

 private:
  // The primitive is built once per plan, so only for constant weights (the case of real models).
  // oneDNN rejects a negative leading pad, which only an output_shape beyond the full output gives.
  bool can_use_dnnl(const std::vector<ValueMeta>& in) const {
    if (backend_ != Backend::kFast || !in[1].value || (node_.has_input(2) && !in[2].value)) return false;
    for (int d = 0; d < shape_.spatial; ++d) {
      if (shape_.pad_begin[d] < 0) return false;
    }
    return true;
  }
  Backend backend_;
  ref::ConvTransposeShape shape_;
  Activation act_;
  std::unique_ptr<fast::Deconv> deconv_;
};

}  // namespace

std::vector<OpEntry> conv_transpose_ops() {
  return {op_entry<ConvTransposeOp>("ConvTranspose", "float32", "oneDNN deconvolution (constant weights)")};
}

}  // namespace aciq::runtime
