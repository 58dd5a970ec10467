// Reductions (ReduceMean, ReduceSum, ReduceMax, ... in their attribute and input forms) and ArgMax/ArgMin.
#include "kernels/reference/reduce.hpp"

#include <array>

#include "kernels/fast/layout.hpp"
#include "runtime/ops/common.hpp"
#include "runtime/ops/registry.hpp"

namespace aciq::runtime {

namespace {

namespace ref = kernels::ref;

struct Reduction {
  std::string_view type;
  ref::ReduceOp op;
  std::int64_t axes_input_since;  // the opset from which axes is an input instead of an attribute
  bool integer;                   // also defined on int64/int32
};

constexpr std::array kReductions = {
    Reduction{"ReduceMean", ref::ReduceOp::kMean, 18, false},
    Reduction{"ReduceSum", ref::ReduceOp::kSum, 13, true},
    Reduction{"ReduceMax", ref::ReduceOp::kMax, 18, true},
    Reduction{"ReduceMin", ref::ReduceOp::kMin, 18, true},
    Reduction{"ReduceProd", ref::ReduceOp::kProd, 18, true},
    Reduction{"ReduceL1", ref::ReduceOp::kL1, 18, false},
    Reduction{"ReduceL2", ref::ReduceOp::kL2, 18, false},
    Reduction{"ReduceSumSquare", ref::ReduceOp::kSumSquare, 18, false},
    Reduction{"ReduceLogSum", ref::ReduceOp::kLogSum, 18, false},
    Reduction{"ReduceLogSumExp", ref::ReduceOp::kLogSumExp, 18, false},
};

const Reduction& reduction(std::string_view type) {
  for (const auto& r : kReductions) {
    if (r.type == type) return r;
  }
  fail("internal: no reduction " + std::string(type));
}

class ReduceOp : public ValueOp {
 public:
  ReduceOp(const graph::Node& n, std::int64_t opset, Backend b)
      : ValueOp(n, opset), r_(reduction(n.op_type)), backend_(b) {}
  std::string kernel() const override { return fast_ ? "threaded contiguous" : "reference"; }
  void run(Context& ctx, const std::vector<const Tensor*>& in, const std::vector<Tensor*>& out) override {
    if (backend_ == Backend::kFast) {
      if (auto y = kernels::fast::reduce_contiguous(r_.op, *in[0], reduced_, keepdims_, *ctx.pool)) {
        copy_into(*out[0], *y, *this);
        return;
      }
    }
    ValueOp::run(ctx, in, out);
  }
  DType out_dtype(const std::vector<ValueMeta>& in) override {
    const DType d = in.at(0).dtype;
    if (d != DType::kFloat32 && !(r_.integer && (d == DType::kInt64 || d == DType::kInt32)))
      error("input is " + std::string(dtype_name(d)) + "; " + std::string(r_.type) + " needs float32");
    return d;
  }
  Shape out_shape(const std::vector<ValueMeta>& in) override {
    const Shape& x = in.at(0).shape;
    const auto r = static_cast<std::int64_t>(x.size());
    std::vector<std::int64_t> axes;
    bool given = false;
    if (opset_ >= r_.axes_input_since) {
      if (node_.has_input(1)) {
        if (!in[1].value) error("axes must be known when the model is planned");
        axes = in[1].value->to_i64_vector();
        given = true;
      }
    } else if (node_.has("axes")) {
      axes = node_.get_ints("axes");
      given = true;
    }
    reduced_.assign(x.size(), false);
    if (axes.empty()) {
      // No axes: every axis, unless noop_with_empty_axes asks for the identity.
      const bool noop = node_.get_int("noop_with_empty_axes", 0) != 0;
      if (!noop) reduced_.assign(x.size(), true);
      (void)given;
    }
    for (auto a : axes) reduced_[normalize_axis(a, r, *this, std::string(r_.type))] = true;
    keepdims_ = node_.get_int("keepdims", 1) != 0;
    fast_ =
        backend_ == Backend::kFast && in[0].dtype == DType::kFloat32 &&
        (r_.op == ref::ReduceOp::kMean || r_.op == ref::ReduceOp::kSum || r_.op == ref::ReduceOp::kSumSquare);
    Shape out;
    for (std::size_t d = 0; d < x.size(); ++d) {
      if (!reduced_[d]) {
        out.push_back(x[d]);
      } else if (keepdims_) {
        out.push_back(1);
      }
    }
    return out;
  }
  Tensor compute(const std::vector<const Tensor*>& in) override {
    return ref::reduce(r_.op, *in[0], reduced_, keepdims_);
  }

 private:
  const Reduction& r_;
  Backend backend_;
  bool fast_ = false;
  std::vector<bool> reduced_;
  bool keepdims_ = true;
};

class ArgReduceOp : public ValueOp {
 public:
  using ValueOp::ValueOp;
  DType out_dtype(const std::vector<ValueMeta>&) override { return DType::kInt64; }
  Shape out_shape(const std::vector<ValueMeta>& in) override {
    Shape s = in.at(0).shape;
    axis_ =
        normalize_axis(node_.get_int("axis", 0), static_cast<std::int64_t>(s.size()), *this, node_.op_type);
    keepdims_ = node_.get_int("keepdims", 1) != 0;
    if (keepdims_) {
      s[axis_] = 1;
    } else {
      s.erase(s.begin() + axis_);
    }
    return s;
  }
  Tensor compute(const std::vector<const Tensor*>& in) override {
    return ref::arg_reduce(node_.op_type == "ArgMax", *in[0], axis_, keepdims_,
                           node_.get_int("select_last_index", 0) != 0);
  }

 private:
  std::int64_t axis_ = 0;
  bool keepdims_ = true;
};

}  // namespace

std::vector<OpEntry> reduce_ops() {
  std::vector<OpEntry> ops;
  for (const auto& r : kReductions)
    ops.push_back(op_entry<ReduceOp>(r.type, r.integer ? "float32,int64,int32" : "float32", ""));
  ops.push_back(op_entry<ArgReduceOp>("ArgMax", "float32,int64,int32", ""));
  ops.push_back(op_entry<ArgReduceOp>("ArgMin", "float32,int64,int32", ""));
  return ops;
}

}  // namespace aciq::runtime
