// Matrix products (Gemm, MatMul): oneDNN sgemm and reference.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "kernels/fast/dnnl_kernels.hpp"
#include "kernels/fast/integer_conv.hpp"
#include "kernels/reference/integer.hpp"
#include "kernels/reference/math.hpp"
#include "kernels/reference/reference.hpp"
#include "runtime/ops/common.hpp"
#include "runtime/ops/registry.hpp"

namespace aciq::runtime {

namespace {

namespace ref = kernels::ref;
namespace fast = kernels::fast;

class GemmOp : public Op {
 public:
  GemmOp(const graph::Node& n, std::int64_t opset, Backend b) : Op(n, opset), backend_(b) {}
  std::vector<ValueMeta> infer(const std::vector<ValueMeta>& in) override {
    if (in.size() < 2) error("Gemm needs A and B");
    require_f32(*this, in, 3);
    const Shape& a = in[0].shape;
    const Shape& b = in[1].shape;
    if (a.size() != 2 || b.size() != 2)
      error("A " + shape_str(a) + " and B " + shape_str(b) + " must be 2-D");
    ta_ = node_.get_int("transA", 0) != 0;
    tb_ = node_.get_int("transB", 0) != 0;
    m_ = ta_ ? a[1] : a[0];
    k_ = ta_ ? a[0] : a[1];
    n_ = tb_ ? b[0] : b[1];
    if ((tb_ ? b[1] : b[0]) != k_)
      error("A " + shape_str(a) + " does not fit B " + shape_str(b) + " (inner dims differ)");
    if (node_.has_input(2)) ref::broadcast_shapes(in.at(2).shape, {m_, n_});
    return {ValueMeta{DType::kFloat32, {m_, n_}, nullptr}};
  }
  bool fuse_activation(const Activation& act) override {
    if (act_.kind != Activation::Kind::kNone) return false;
    act_ = act;
    return true;
  }
  std::string kernel() const override { return backend_ == Backend::kFast ? "oneDNN sgemm" : "reference"; }
  // A constant transposed B (every fully-connected layer exported from PyTorch) is stored transposed
  // once: sgemm then keeps its rows independent of the row count from 2 rows on instead of 16
  // (fast::sgemm pads shorter batches to that), so batch 1 costs 2 rows of work, not 16.
  void prepare(const std::vector<ValueMeta>& in, const std::vector<ValueMeta>&, DnnlEnv* env) override {
    // Only with an engine: plans evaluated at plan time (constant folding) pass none, and their
    // metas may not outlive the call.
    if (!env || backend_ != Backend::kFast || !tb_ || !in[1].value) return;
    b_t_ = Tensor(DType::kFloat32, {k_, n_});
    const float* b = in[1].value->data<float>();
    float* bt = b_t_.data<float>();
    for (std::int64_t j = 0; j < n_; ++j) {
      for (std::int64_t p = 0; p < k_; ++p) bt[p * n_ + j] = b[j * k_ + p];
    }
  }
  void run(Context& ctx, const std::vector<const Tensor*>& in, const std::vector<Tensor*>& out) override {
    const float alpha = node_.get_float("alpha", 1.0f), beta = node_.get_float("beta", 1.0f);
    const Tensor* c = node_.has_input(2) ? in[2] : nullptr;
    float* y = out[0]->data<float>();
    if (backend_ == Backend::kFast) {
      // Broadcast beta*C into Y first, then accumulate alpha*A*B on top of it.
      float acc_beta = 0.0f;
      if (c && beta != 0.0f) {
        ref::gemm(m_, n_, 0, false, false, 0.0f, beta, nullptr, nullptr, c, y);
        acc_beta = 1.0f;
      }
      if (!b_t_.empty()) {
        fast::sgemm(ta_, false, m_, n_, k_, alpha, in[0]->data<float>(), b_t_.data<float>(), acc_beta, y);
      } else {
        fast::sgemm(ta_, tb_, m_, n_, k_, alpha, in[0]->data<float>(), in[1]->data<float>(), acc_beta, y);
      }
    } else {
      ref::gemm(m_, n_, k_, ta_, tb_, alpha, beta, in[0]->data<float>(), in[1]->data<float>(), c, y);
    }
    if (backend_ == Backend::kFast) {
      kernels::apply_activation(act_, y, out[0]->numel(), ctx);
    } else {
      kernels::apply_activation_ref(act_, y, out[0]->numel());
    }
  }

 private:
  Backend backend_;
  bool ta_ = false, tb_ = false;
  std::int64_t m_ = 0, n_ = 0, k_ = 0;
  Activation act_;
  Tensor b_t_;  // B transposed to [K, N] when it is constant and transB is set
};

class MatMulOp : public Op {
 public:
  MatMulOp(const graph::Node& n, std::int64_t opset, Backend b) : Op(n, opset), backend_(b) {}
  std::vector<ValueMeta> infer(const std::vector<ValueMeta>& in) override {
    if (in.size() != 2) error("MatMul needs 2 inputs");
    require_f32(*this, in, 2);
    Shape a = in[0].shape, b = in[1].shape;
    if (a.empty() || b.empty()) error("MatMul operands must not be scalars");
    const bool av = a.size() == 1, bv = b.size() == 1;
    if (av) a.insert(a.begin(), 1);
    if (bv) b.push_back(1);
    if (a.back() != b[b.size() - 2])
      error("inner dimensions of " + shape_str(in[0].shape) + " and " + shape_str(in[1].shape) + " differ");
    Shape out = ref::broadcast_shapes(Shape(a.begin(), a.end() - 2), Shape(b.begin(), b.end() - 2));
    if (!av) out.push_back(a[a.size() - 2]);
    if (!bv) out.push_back(b.back());
    // Fast path: B is a plain matrix, so A's leading dims collapse into one GEMM.
    flat_ = backend_ == Backend::kFast && in[1].shape.size() == 2 && in[0].shape.size() >= 2;
    if (flat_) {
      k_ = a.back();
      n_ = b.back();
      m_ = shape_numel(Shape(a.begin(), a.end() - 1));
    }
    // Batched fast path (attention's Q x K^T, scores x V): one sgemm per broadcast batch entry.
    batched_ = backend_ == Backend::kFast && !flat_ && !av && !bv;
    if (batched_) {
      m_ = a[a.size() - 2];
      k_ = a.back();
      n_ = b.back();
      batch_ = Shape(out.begin(), out.end() - 2);
      const Shape ab(a.begin(), a.end() - 2), bb(b.begin(), b.end() - 2);
      a_strides_ = kernels::ref::broadcast_strides(ab, batch_.size());
      b_strides_ = kernels::ref::broadcast_strides(bb, batch_.size());
    }
    return {ValueMeta{DType::kFloat32, out, nullptr}};
  }
  std::string kernel() const override { return flat_ || batched_ ? "oneDNN sgemm" : "reference"; }
  void run(Context&, const std::vector<const Tensor*>& in, const std::vector<Tensor*>& out) override {
    if ((flat_ || batched_) && k_ == 0) {  // an empty inner dimension: every product is 0
      std::memset(out[0]->raw(), 0, out[0]->nbytes());
      return;
    }
    if (flat_) {
      fast::sgemm(false, false, m_, n_, k_, 1.0f, in[0]->data<float>(), in[1]->data<float>(), 0.0f,
                  out[0]->data<float>());
    } else if (batched_) {
      const float* a = in[0]->data<float>();
      const float* b = in[1]->data<float>();
      float* y = out[0]->data<float>();
      kernels::ref::for_each_broadcast(batch_, {a_strides_, b_strides_},
                                       [&](std::int64_t i, const std::int64_t* off) {
                                         fast::sgemm(false, false, m_, n_, k_, 1.0f, a + off[0] * m_ * k_,
                                                     b + off[1] * k_ * n_, 0.0f, y + i * m_ * n_);
                                       });
    } else {
      copy_into(*out[0], ref::matmul(*in[0], *in[1]), *this);
    }
  }

 private:
  Backend backend_;
  bool flat_ = false;
  bool batched_ = false;
  Shape batch_;
  std::vector<std::int64_t> a_strides_, b_strides_;  // per batch dim, in matrices (0 = broadcast)
  std::int64_t m_ = 0, n_ = 0, k_ = 0;
};

// The integer matrix product shared by MatMulInteger and QLinearMatMul: 8-bit A [..., M, K] and B [K, N]
// or [..., K, N] with the same batch dims, zero points per row of A / column of B or scalar, exact int32
// accumulation. `b_input` is B's input index (1 or 3), `a_zp`/`b_zp` those of the zero points.
//
// On the fast backend, a constant 2-D B with a scalar A zero point runs as a 1x1 integer convolution
// (fast::PackedIntegerConv, exact int32 like the reference): the rows of A are the pixels of one image
// with K channels, the columns of B the output channels, so A is transposed in and Y out (both small:
// a classifier's [batch, features]).
class IntegerMatMul : public Op {
 public:
  IntegerMatMul(const graph::Node& n, std::int64_t opset, Backend backend, std::size_t b_input,
                std::size_t a_zp, std::size_t b_zp)
      : Op(n, opset), backend_(backend), b_input_(b_input), a_zp_(a_zp), b_zp_(b_zp) {}

  std::string kernel() const override {
    return packed_ ? std::string("aciq ") + packed_->implementation() + " (as 1x1)" : "reference";
  }

 protected:
  Shape infer_product(const std::vector<ValueMeta>& in) {
    require_8bit(*this, {in[0], in[b_input_]}, {"A", "B"});
    const Shape& a = in[0].shape;
    const Shape& b = in[b_input_].shape;
    if (a.size() < 2 || b.size() < 2)
      error("A and B must be at least 2-D, got " + shape_str(a) + " and " + shape_str(b));
    m_ = a[a.size() - 2], k_ = a.back(), n_ = b.back();
    if (b[b.size() - 2] != k_) error("A " + shape_str(a) + " does not multiply B " + shape_str(b));
    const Shape a_batch(a.begin(), a.end() - 2), b_batch(b.begin(), b.end() - 2);
    b_batched_ = !b_batch.empty();
    if (b_batched_ && a_batch != b_batch)
      error("batch dims of A " + shape_str(a) + " and B " + shape_str(b) + " must be equal (or B 2-D)");
    batches_ = shape_numel(a_batch);
    Shape y = a;
    y.back() = n_;
    return y;
  }
  // Constant B (a weight) is widened once here, not on every run.
  void prepare(const std::vector<ValueMeta>& in, const std::vector<ValueMeta>&, DnnlEnv*) override {
    b_const_ = in[b_input_].value != nullptr;
    if (b_const_) widen_to_i32(*in[b_input_].value, b_);
    const auto given = [&](std::size_t i) { return in.size() > i && node_.has_input(i); };
    const bool a_zero_scalar = !given(a_zp_) || shape_numel(in[a_zp_].shape) == 1;
    const bool b_zero_known = !given(b_zp_) || in[b_zp_].value != nullptr;
    if (backend_ != Backend::kFast || !b_const_ || b_batched_ || !a_zero_scalar || !b_zero_known) return;
    const std::int64_t rows = batches_ * m_;
    std::vector<std::int32_t> w(static_cast<std::size_t>(n_ * k_));  // [N][K]: B transposed
    for (std::int64_t kk = 0; kk < k_; ++kk) {
      for (std::int64_t j = 0; j < n_; ++j) w[j * k_ + kk] = b_[kk * n_ + j];
    }
    const std::vector<std::int32_t> b_zero =
        zero_points(*this, given(b_zp_) ? in[b_zp_].value : nullptr, n_, "b_zero_point");
    packed_ = std::make_unique<fast::PackedIntegerConv>(ref::ConvShape{1, k_, rows, 1, n_, rows, 1, 1},
                                                        ref::Window2d{}, w.data(), b_zero.data());
  }
  const Tensor* optional(const std::vector<const Tensor*>& in, std::size_t i) const {
    return in.size() > i && node_.has_input(i) ? in[i] : nullptr;
  }
  void accumulate(Context& ctx, const std::vector<const Tensor*>& in, const Tensor* a_zp, const Tensor* b_zp,
                  std::int32_t* acc) {
    if (packed_) {
      const std::int64_t rows = batches_ * m_;
      std::vector<std::uint8_t> at(static_cast<std::size_t>(rows * k_));  // A^T: [K][rows], 8-bit either type
      const auto* a = static_cast<const std::uint8_t*>(in[0]->raw());
      for (std::int64_t r = 0; r < rows; ++r) {
        for (std::int64_t kk = 0; kk < k_; ++kk) at[kk * rows + r] = a[r * k_ + kk];
      }
      std::vector<std::int32_t> yt(static_cast<std::size_t>(n_ * rows));  // Y^T: [N][rows]
      const std::int32_t a_zero = zero_points(*this, a_zp, 1, "a_zero_point")[0];
      packed_->run(at.data(), in[0]->dtype() == DType::kUInt8, a_zero, yt.data(), *ctx.pool);
      for (std::int64_t j = 0; j < n_; ++j) {
        for (std::int64_t r = 0; r < rows; ++r) acc[r * n_ + j] = yt[j * rows + r];
      }
      return;
    }
    std::vector<std::int32_t> a;
    widen_to_i32(*in[0], a);
    if (!b_const_) widen_to_i32(*in[b_input_], b_);
    const std::vector<std::int32_t> a_zero = zero_points(*this, a_zp, m_, "a_zero_point");
    const std::vector<std::int32_t> b_zero = zero_points(*this, b_zp, n_, "b_zero_point");
    kernels::ref::matmul_integer(batches_, m_, n_, k_, a.data(), a_zero.data(), b_.data(), b_batched_,
                                 b_zero.data(), acc);
  }

  Backend backend_;
  std::size_t b_input_, a_zp_, b_zp_;
  std::unique_ptr<fast::PackedIntegerConv> packed_;
  bool b_const_ = false;
  std::vector<std::int32_t> b_;  // B widened to int32 (in prepare() when constant)
  std::int64_t m_ = 0, n_ = 0, k_ = 0, batches_ = 1;
  bool b_batched_ = false;
};

// MatMulInteger (opset 10): inputs A, B, [a_zero_point], [b_zero_point]; int32 Y.
class MatMulIntegerOp : public IntegerMatMul {
 public:
  MatMulIntegerOp(const graph::Node& n, std::int64_t opset, Backend b)
      : IntegerMatMul(n, opset, b, 1, 2, 3) {}
  std::vector<ValueMeta> infer(const std::vector<ValueMeta>& in) override {
    if (in.size() < 2) error("MatMulInteger needs A and B");
    return {ValueMeta{DType::kInt32, infer_product(in), nullptr}};
  }
  void run(Context& ctx, const std::vector<const Tensor*>& in, const std::vector<Tensor*>& out) override {
    accumulate(ctx, in, optional(in, 2), optional(in, 3), out[0]->data<std::int32_t>());
  }
};

// QLinearMatMul (opset 10): inputs a, a_scale, a_zero_point, b, b_scale, b_zero_point, y_scale,
// y_zero_point; the MatMulInteger accumulation requantized with scale a_scale[m] * b_scale[n] / y_scale
// (a per row, b per column, or scalars); Y takes y_zero_point's type.
class QLinearMatMulOp : public IntegerMatMul {
 public:
  QLinearMatMulOp(const graph::Node& n, std::int64_t opset, Backend b)
      : IntegerMatMul(n, opset, b, 3, 2, 5) {}
  std::vector<ValueMeta> infer(const std::vector<ValueMeta>& in) override {
    if (in.size() < 8)
      error("QLinearMatMul needs a, a_scale, a_zero_point, b, b_scale, b_zero_point, y_scale, y_zero_point");
    const Shape y = infer_product(in);
    const DType y_type = node_.has_input(7) ? in[7].dtype : DType::kUInt8;
    if (!is_8bit(y_type)) error("y_zero_point must be uint8 or int8");
    return {ValueMeta{y_type, y, nullptr}};
  }
  void run(Context& ctx, const std::vector<const Tensor*>& in, const std::vector<Tensor*>& out) override {
    std::vector<std::int32_t> acc(static_cast<std::size_t>(out[0]->numel()));
    accumulate(ctx, in, optional(in, 2), optional(in, 5), acc.data());
    const std::vector<float> a_scale = scales_of(*this, *in[1], m_, "a_scale");
    const std::vector<float> b_scale = scales_of(*this, *in[4], n_, "b_scale");
    const float y_scale = scales_of(*this, *in[6], 1, "y_scale")[0];
    const std::int32_t y_zero = zero_points(*this, optional(in, 7), 1, "y_zero_point")[0];
    std::vector<float> scale(static_cast<std::size_t>(m_ * n_));
    for (std::int64_t i = 0; i < m_; ++i) {
      for (std::int64_t j = 0; j < n_; ++j) scale[i * n_ + j] = a_scale[i] * b_scale[j] / y_scale;
    }
    const auto [lo, hi] = range_of_8bit(out[0]->dtype());
    kernels::ref::requantize(batches_, m_ * n_, 1, acc.data(), scale.data(), y_zero, lo, hi, acc.data());
    narrow_to_8bit(acc, *out[0]);
  }
};

}  // namespace

std::vector<OpEntry> gemm_ops() {
  return {
      op_entry<GemmOp>("Gemm", "float32", "oneDNN sgemm"),
      op_entry<MatMulOp>("MatMul", "float32", "oneDNN sgemm when B is a matrix"),
      op_entry<MatMulIntegerOp>("MatMulInteger", "uint8,int8", "", 10),
      op_entry<QLinearMatMulOp>("QLinearMatMul", "uint8,int8", "", 10),
  };
}

}  // namespace aciq::runtime
