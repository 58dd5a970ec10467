// Elementwise math operators: unary functions (Exp, Erf, Elu, ...), Pow, PRelu, Min/Max/Sum/Mean,
// comparisons, logical ops and Where.
#include "kernels/reference/math.hpp"

#include <array>

#include "kernels/fast/elementwise.hpp"
#include "runtime/ops/common.hpp"
#include "runtime/ops/registry.hpp"

namespace aciq::runtime {

namespace {

namespace ref = kernels::ref;

struct MathFunction {
  std::string_view type;
  ref::MathOp op;
  float alpha, gamma;  // attribute defaults
  bool integer;        // also defined on integer tensors
  std::int64_t since = graph::kMinOpset;
};

// The unary functions and their ONNX attribute defaults (Selu's are the spec's float constants).
constexpr std::array kMathFunctions = {
    MathFunction{"Abs", ref::MathOp::kAbs, 0, 0, true},
    MathFunction{"Neg", ref::MathOp::kNeg, 0, 0, true},
    MathFunction{"Sign", ref::MathOp::kSign, 0, 0, true},
    MathFunction{"Exp", ref::MathOp::kExp, 0, 0, false},
    MathFunction{"Log", ref::MathOp::kLog, 0, 0, false},
    MathFunction{"Sqrt", ref::MathOp::kSqrt, 0, 0, false},
    MathFunction{"Reciprocal", ref::MathOp::kReciprocal, 0, 0, false},
    MathFunction{"Floor", ref::MathOp::kFloor, 0, 0, false},
    MathFunction{"Ceil", ref::MathOp::kCeil, 0, 0, false},
    MathFunction{"Round", ref::MathOp::kRound, 0, 0, false, 11},
    MathFunction{"Tanh", ref::MathOp::kTanh, 0, 0, false},
    MathFunction{"Erf", ref::MathOp::kErf, 0, 0, false},
    MathFunction{"Sin", ref::MathOp::kSin, 0, 0, false},
    MathFunction{"Cos", ref::MathOp::kCos, 0, 0, false},
    MathFunction{"Softplus", ref::MathOp::kSoftplus, 0, 0, false},
    MathFunction{"Softsign", ref::MathOp::kSoftsign, 0, 0, false},
    MathFunction{"Elu", ref::MathOp::kElu, 1.0f, 0, false},
    MathFunction{"Selu", ref::MathOp::kSelu, 1.67326319217681884765625f, 1.05070102214813232421875f, false},
    MathFunction{"Celu", ref::MathOp::kCelu, 1.0f, 0, false, 12},
    MathFunction{"Mish", ref::MathOp::kMish, 0, 0, false, 18},
    MathFunction{"ThresholdedRelu", ref::MathOp::kThresholdedRelu, 1.0f, 0, false, 10},
    MathFunction{"Gelu", ref::MathOp::kGelu, 0, 0, false, 20},
};

const MathFunction& math_function(std::string_view type) {
  for (const auto& f : kMathFunctions) {
    if (f.type == type) return f;
  }
  fail("internal: no math function " + std::string(type));
}

class MathUnaryOp : public Op {
 public:
  MathUnaryOp(const graph::Node& n, std::int64_t opset, Backend b)
      : Op(n, opset), fn_(math_function(n.op_type)), op_(fn_.op), backend_(b) {
    params_.alpha = node_.get_float("alpha", fn_.alpha);
    params_.gamma = node_.get_float("gamma", fn_.gamma);
    if (fn_.op == ref::MathOp::kGelu) {
      const std::string approximate = node_.get_string("approximate", "none");
      if (approximate == "tanh") {
        op_ = ref::MathOp::kGeluTanh;
      } else if (approximate != "none") {
        error("approximate '" + approximate + "' is not one of none, tanh");
      }
    }
  }
  LayoutRule layout_rule(const std::vector<ValueMeta>& in, const std::vector<ValueMeta>&) const override {
    return in.at(0).dtype == DType::kFloat32 ? LayoutRule::kSame : LayoutRule::kPlainOnly;
  }
  bool handles_channels_last() const override { return true; }
  std::vector<ValueMeta> infer(const std::vector<ValueMeta>& in) override {
    if (in.empty()) error("needs an input");
    const DType d = in[0].dtype;
    if (d != DType::kFloat32 && !(fn_.integer && d != DType::kBool)) {
      error("input is " + std::string(dtype_name(d)) + "; " + std::string(fn_.type) + " needs float32");
    }
    return {ValueMeta{d, in[0].shape, nullptr}};
  }
  std::string kernel() const override { return backend_ == Backend::kFast ? "threaded float" : "reference"; }
  void run(Context& ctx, const std::vector<const Tensor*>& in, const std::vector<Tensor*>& out) override {
    if (in[0]->dtype() == DType::kFloat32 && backend_ == Backend::kFast) {
      kernels::fast::math(op_, params_, in[0]->data<float>(), out[0]->data<float>(), in[0]->numel(),
                          *ctx.pool);
    } else if (in[0]->dtype() == DType::kFloat32) {
      ref::math(op_, params_, in[0]->data<float>(), out[0]->data<float>(), in[0]->numel());
    } else {
      copy_into(*out[0], ref::math_int(op_, *in[0]), *this);
    }
  }

 private:
  const MathFunction& fn_;
  ref::MathOp op_;  // fn_.op, or its variant chosen by an attribute (Gelu's approximate)
  Backend backend_;
  ref::MathParams params_;
};

// Ops computed by one reference call on whole tensors; broadcasting makes the shape a function of
// the input shapes, found by running the kernel's own shape rule.
class BroadcastValueOp : public ValueOp {
 public:
  using ValueOp::ValueOp;

 protected:
  Shape out_shape(const std::vector<ValueMeta>& in) override {
    std::vector<Shape> shapes;
    for (std::size_t i = 0; i < in.size(); ++i) {
      if (!node_.has_input(i)) error("input " + std::to_string(i) + " is required");
      shapes.push_back(in[i].shape);
    }
    if (shapes.empty()) error("needs at least one input");
    try {
      return ref::broadcast_all(shapes);
    } catch (const Error& e) {
      error(e.what());
    }
  }
  void require_same_dtypes(const std::vector<ValueMeta>& in, std::size_t from) const {
    for (std::size_t i = from + 1; i < in.size(); ++i) {
      if (in[i].dtype != in[from].dtype) {
        error("input " + std::to_string(i) + " is " + std::string(dtype_name(in[i].dtype)) + ", input " +
              std::to_string(from) + " is " + std::string(dtype_name(in[from].dtype)));
      }
    }
  }
};

class VariadicOp : public BroadcastValueOp {
 public:
  using BroadcastValueOp::BroadcastValueOp;
  DType out_dtype(const std::vector<ValueMeta>& in) override {
    require_same_dtypes(in, 0);
    if (kind() == ref::VariadicOp::kMean && in.at(0).dtype != DType::kFloat32) error("Mean needs float32");
    return in.at(0).dtype;
  }
  Tensor compute(const std::vector<const Tensor*>& in) override { return ref::variadic(kind(), in); }

 private:
  ref::VariadicOp kind() const {
    const std::string& t = node_.op_type;
    return t == "Min"   ? ref::VariadicOp::kMin
           : t == "Max" ? ref::VariadicOp::kMax
           : t == "Sum" ? ref::VariadicOp::kSum
                        : ref::VariadicOp::kMean;
  }
};

class CompareOp : public BroadcastValueOp {
 public:
  using BroadcastValueOp::BroadcastValueOp;
  DType out_dtype(const std::vector<ValueMeta>& in) override {
    if (in.size() != 2) error("needs 2 inputs");
    require_same_dtypes(in, 0);
    return DType::kBool;
  }
  Tensor compute(const std::vector<const Tensor*>& in) override {
    const std::string& t = node_.op_type;
    const auto op = t == "Equal"         ? ref::CompareOp::kEqual
                    : t == "Less"        ? ref::CompareOp::kLess
                    : t == "LessOrEqual" ? ref::CompareOp::kLessOrEqual
                    : t == "Greater"     ? ref::CompareOp::kGreater
                                         : ref::CompareOp::kGreaterOrEqual;
    return ref::compare(op, *in[0], *in[1]);
  }
};

class LogicalOp : public BroadcastValueOp {
 public:
  using BroadcastValueOp::BroadcastValueOp;
  DType out_dtype(const std::vector<ValueMeta>& in) override {
    const std::size_t want = node_.op_type == "Not" ? 1 : 2;
    if (in.size() != want) error("needs " + std::to_string(want) + " inputs");
    for (const auto& m : in) {
      if (m.dtype != DType::kBool) error("inputs must be bool, got " + std::string(dtype_name(m.dtype)));
    }
    return DType::kBool;
  }
  Tensor compute(const std::vector<const Tensor*>& in) override {
    const std::string& t = node_.op_type;
    if (t == "Not") return ref::logical_not(*in[0]);
    const auto op = t == "And"  ? ref::LogicalOp::kAnd
                    : t == "Or" ? ref::LogicalOp::kOr
                                : ref::LogicalOp::kXor;
    return ref::logical(op, *in[0], *in[1]);
  }
};

class WhereOp : public BroadcastValueOp {
 public:
  using BroadcastValueOp::BroadcastValueOp;
  DType out_dtype(const std::vector<ValueMeta>& in) override {
    if (in.size() != 3) error("needs condition, X and Y");
    if (in[0].dtype != DType::kBool)
      error("condition must be bool, got " + std::string(dtype_name(in[0].dtype)));
    require_same_dtypes(in, 1);
    return in[1].dtype;
  }
  Tensor compute(const std::vector<const Tensor*>& in) override { return ref::where(*in[0], *in[1], *in[2]); }
};

class PowOp : public BroadcastValueOp {
 public:
  PowOp(const graph::Node& n, std::int64_t opset, Backend b) : BroadcastValueOp(n, opset), backend_(b) {}
  std::string kernel() const override {
    return backend_ == Backend::kFast ? "threaded (scalar exponent)" : "reference";
  }
  void run(Context& ctx, const std::vector<const Tensor*>& in, const std::vector<Tensor*>& out) override {
    // The common case (x ** 2 of a decomposed LayerNorm/variance): a scalar float exponent.
    if (backend_ == Backend::kFast && in[0]->dtype() == DType::kFloat32 && in[1]->numel() == 1 &&
        out[0]->numel() == in[0]->numel()) {
      kernels::fast::pow_scalar(in[0]->data<float>(), in[1]->to_f32().data<float>()[0], out[0]->data<float>(),
                                in[0]->numel(), *ctx.pool);
      return;
    }
    BroadcastValueOp::run(ctx, in, out);
  }
  DType out_dtype(const std::vector<ValueMeta>& in) override {
    if (in.size() != 2) error("needs 2 inputs");
    return in[0].dtype;
  }
  Tensor compute(const std::vector<const Tensor*>& in) override { return ref::pow(*in[0], *in[1]); }

 private:
  Backend backend_;
};

class ModOp : public BroadcastValueOp {
 public:
  using BroadcastValueOp::BroadcastValueOp;
  DType out_dtype(const std::vector<ValueMeta>& in) override {
    if (in.size() != 2) error("needs 2 inputs");
    require_same_dtypes(in, 0);
    if (in[0].dtype == DType::kFloat32 && node_.get_int("fmod", 0) == 0)
      error("float Mod needs fmod = 1 (the spec defines integer modulo only)");
    return in[0].dtype;
  }
  Tensor compute(const std::vector<const Tensor*>& in) override {
    return ref::mod(*in[0], *in[1], node_.get_int("fmod", 0) != 0);
  }
};

class PReluOp : public BroadcastValueOp {
 public:
  using BroadcastValueOp::BroadcastValueOp;
  DType out_dtype(const std::vector<ValueMeta>& in) override {
    if (in.size() != 2) error("needs X and slope");
    require_f32(*this, in, 2);
    return DType::kFloat32;
  }
  Shape out_shape(const std::vector<ValueMeta>& in) override {
    const Shape s = BroadcastValueOp::out_shape(in);
    if (s != in[0].shape)
      error("slope " + shape_str(in[1].shape) + " does not broadcast to X " + shape_str(in[0].shape));
    return s;
  }
  Tensor compute(const std::vector<const Tensor*>& in) override { return ref::prelu(*in[0], *in[1]); }
};

}  // namespace

std::vector<OpEntry> math_ops() {
  std::vector<OpEntry> ops;
  for (const auto& f : kMathFunctions) {
    ops.push_back(
        op_entry<MathUnaryOp>(f.type, f.integer ? "float32,int64,int32,int8,uint8" : "float32", "", f.since));
  }
  for (const char* t : {"Min", "Max"})
    ops.push_back(op_entry<VariadicOp>(t, "float32,int64,int32,int8,uint8", ""));
  ops.push_back(op_entry<VariadicOp>("Sum", "float32,int64,int32,int8,uint8", ""));
  ops.push_back(op_entry<VariadicOp>("Mean", "float32", ""));
  for (const char* t : {"Equal", "Less", "Greater"})
    ops.push_back(op_entry<CompareOp>(t, "float32,int64,int32,int8,uint8,bool", ""));
  for (const char* t : {"LessOrEqual", "GreaterOrEqual"})
    ops.push_back(op_entry<CompareOp>(t, "float32,int64,int32,int8,uint8,bool", "", 12));
  for (const char* t : {"And", "Or", "Xor", "Not"}) ops.push_back(op_entry<LogicalOp>(t, "bool", ""));
  ops.push_back(op_entry<WhereOp>("Where", "any", "", 9));
  ops.push_back(op_entry<PowOp>("Pow", "float32,int64,int32", ""));
  ops.push_back(op_entry<PReluOp>("PRelu", "float32", ""));
  ops.push_back(op_entry<ModOp>("Mod", "float32,int64,int32,int8,uint8", "", 10));
  return ops;
}

}  // namespace aciq::runtime
