// Matrix products (Gemm, MatMul): oneDNN sgemm and reference.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "kernels/fast/dnnl_kernels.hpp"
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

// MatMulInteger (opset 10): 8-bit A [..., M, K] and B [K, N] or [..., K, N] with the same batch dims;
// zero points per row of A / column of B or scalar; int32 Y.
class MatMulIntegerOp : public Op {
 public:
  using Op::Op;
  std::vector<ValueMeta> infer(const std::vector<ValueMeta>& in) override {
    if (in.size() < 2) error("MatMulInteger needs A and B");
    require_8bit(*this, in, {"A", "B"});
    const Shape& a = in[0].shape;
    const Shape& b = in[1].shape;
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
    return {ValueMeta{DType::kInt32, y, nullptr}};
  }
  // Constant B (a weight) is widened once here, not on every run.
  void prepare(const std::vector<ValueMeta>& in, const std::vector<ValueMeta>&, DnnlEnv*) override {
    b_const_ = in[1].value != nullptr;
    if (b_const_) widen_to_i32(*in[1].value, b_);
  }
  void run(Context&, const std::vector<const Tensor*>& in, const std::vector<Tensor*>& out) override {
    const Tensor* az = in.size() > 2 && node_.has_input(2) ? in[2] : nullptr;
    const Tensor* bz = in.size() > 3 && node_.has_input(3) ? in[3] : nullptr;
    std::vector<std::int32_t> a;
    widen_to_i32(*in[0], a);
    if (!b_const_) widen_to_i32(*in[1], b_);
    const std::vector<std::int32_t> a_zero = zero_points(*this, az, m_, "a_zero_point");
    const std::vector<std::int32_t> b_zero = zero_points(*this, bz, n_, "b_zero_point");
    kernels::ref::matmul_integer(batches_, m_, n_, k_, a.data(), a_zero.data(), b_.data(), b_batched_,
                                 b_zero.data(), out[0]->data<std::int32_t>());
  }

 private:
  bool b_const_ = false;
  std::vector<std::int32_t> b_;  // B widened to int32 (in prepare() when constant)
  std::int64_t m_ = 0, n_ = 0, k_ = 0, batches_ = 1;
  bool b_batched_ = false;
};

}  // namespace

std::vector<OpEntry> gemm_ops() {
  return {
      op_entry<GemmOp>("Gemm", "float32", "oneDNN sgemm"),
      op_entry<MatMulOp>("MatMul", "float32", "oneDNN sgemm when B is a matrix"),
      op_entry<MatMulIntegerOp>("MatMulInteger", "uint8,int8", "", 10),
  };
}

}  // namespace aciq::runtime
