// Normalizations (BatchNormalization, Softmax).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "kernels/fast/dnnl_kernels.hpp"
#include "kernels/reference/reference.hpp"
#include "runtime/ops/common.hpp"
#include "runtime/ops/registry.hpp"

namespace aciq::runtime {

namespace {

namespace ref = kernels::ref;
namespace fast = kernels::fast;

class BatchNormOp : public Op {
 public:
  using Op::Op;
  std::vector<ValueMeta> infer(const std::vector<ValueMeta>& in) override {
    if (in.size() < 5) error("BatchNormalization needs 5 inputs");
    require_f32(*this, in, 5);
    if (node_.outputs.size() > 1) error("training-mode BatchNormalization outputs are not supported");
    const Shape& x = in[0].shape;
    if (x.size() < 2) error("input must be at least 2-D, got " + shape_str(x));
    for (std::size_t i = 1; i < 5; ++i) {
      if (shape_numel(in[i].shape) != x[1])
        error("parameter " + std::to_string(i) + " does not have " + std::to_string(x[1]) + " channels");
    }
    return {ValueMeta{DType::kFloat32, x, nullptr}};
  }
  void run(Context&, const std::vector<const Tensor*>& in, const std::vector<Tensor*>& out) override {
    const Shape& x = in[0]->shape();
    const std::int64_t c = x[1];
    const std::int64_t inner = in[0]->numel() / std::max<std::int64_t>(x[0] * c, 1);
    const double eps = node_.get_float("epsilon", 1e-5f);
    const float* xs = in[0]->data<float>();
    float* ys = out[0]->data<float>();
    for (std::int64_t n = 0; n < x[0]; ++n) {
      for (std::int64_t ch = 0; ch < c; ++ch) {
        const double s =
            in[1]->data<float>()[ch] / std::sqrt(static_cast<double>(in[4]->data<float>()[ch]) + eps);
        const double mean = in[3]->data<float>()[ch], beta = in[2]->data<float>()[ch];
        const std::int64_t base = (n * c + ch) * inner;
        for (std::int64_t i = 0; i < inner; ++i)
          ys[base + i] = static_cast<float>((xs[base + i] - mean) * s + beta);
      }
    }
  }
};

class SoftmaxOp : public Op {
 public:
  using Op::Op;
  std::vector<ValueMeta> infer(const std::vector<ValueMeta>& in) override {
    require_f32(*this, in, 1);
    const Shape& x = in.at(0).shape;
    const auto r = static_cast<std::int64_t>(x.size());
    std::int64_t axis = node_.get_int("axis", opset_ >= 13 ? -1 : 1);
    if (axis < 0) axis += r;
    if (axis < 0 || axis >= std::max<std::int64_t>(r, 1)) error("axis out of range for " + shape_str(x));
    outer_ = 1, len_ = 1, inner_ = 1;
    for (std::int64_t d = 0; d < r; ++d) {
      if (d < axis)
        outer_ *= x[d];
      else if (d == axis || opset_ < 13)
        len_ *= x[d];  // before opset 13 the op flattens to 2-D at axis
      else
        inner_ *= x[d];
    }
    return {ValueMeta{DType::kFloat32, x, nullptr}};
  }
  void run(Context&, const std::vector<const Tensor*>& in, const std::vector<Tensor*>& out) override {
    ref::softmax(outer_, len_, inner_, in[0]->data<float>(), out[0]->data<float>());
  }

 private:
  std::int64_t outer_ = 1, len_ = 1, inner_ = 1;
};

}  // namespace

std::vector<OpEntry> normalization_ops() {
  return {
      op_entry<BatchNormOp>("BatchNormalization", "float32", ""),
      op_entry<SoftmaxOp>("Softmax", "float32", ""),
  };
}

}  // namespace aciq::runtime
