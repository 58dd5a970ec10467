// Reference kernels for elementwise math (unary functions, n-ary broadcasting, comparisons, Where).
#include "kernels/reference/math.hpp"

#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>

namespace aciq::kernels::ref {

namespace {

// Evaluated in double, so the reference is as exact as the float result can be.
double math_one(MathOp op, const MathParams& p, double x) {
  switch (op) {
    case MathOp::kAbs: return std::fabs(x);
    case MathOp::kNeg: return -x;
    case MathOp::kExp: return std::exp(x);
    case MathOp::kLog: return std::log(x);
    case MathOp::kSqrt: return std::sqrt(x);
    case MathOp::kReciprocal: return 1.0 / x;
    case MathOp::kFloor: return std::floor(x);
    case MathOp::kCeil: return std::ceil(x);
    case MathOp::kRound: return std::nearbyint(x);  // ties to even in the default rounding mode
    case MathOp::kSign: return std::isnan(x) ? x : static_cast<double>((x > 0) - (x < 0));
    case MathOp::kTanh: return std::tanh(x);
    case MathOp::kErf: return std::erf(x);
    case MathOp::kSin: return std::sin(x);
    case MathOp::kCos: return std::cos(x);
    // log(1 + e^x) without overflow for large x.
    case MathOp::kSoftplus: return x > 0 ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x));
    case MathOp::kSoftsign: return x / (1.0 + std::fabs(x));
    case MathOp::kElu: return x < 0 ? p.alpha * std::expm1(x) : x;
    case MathOp::kSelu: return x <= 0 ? p.gamma * p.alpha * std::expm1(x) : p.gamma * x;
    case MathOp::kCelu: return std::max(0.0, x) + std::min(0.0, p.alpha * std::expm1(x / p.alpha));
    case MathOp::kMish: {
      const double sp = x > 0 ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x));
      return x * std::tanh(sp);
    }
    case MathOp::kThresholdedRelu: return x > p.alpha ? x : 0.0;
    case MathOp::kGelu: return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0)));
    case MathOp::kGeluTanh: {
      const double k = std::sqrt(2.0 / 3.14159265358979323846);
      return 0.5 * x * (1.0 + std::tanh(k * (x + 0.044715 * x * x * x)));
    }
  }
  return x;
}

template <typename T>
void math_int_typed(MathOp op, const T* x, T* y, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) {
    switch (op) {
      case MathOp::kAbs:
        if constexpr (std::is_signed_v<T>) {
          y[i] = x[i] < 0 ? static_cast<T>(-x[i]) : x[i];
        } else {
          y[i] = x[i];
        }
        break;
      case MathOp::kNeg: y[i] = static_cast<T>(-x[i]); break;
      case MathOp::kSign: y[i] = static_cast<T>((x[i] > 0) - (x[i] < 0)); break;
      default: fail("this elementwise function needs float32 input");
    }
  }
}

template <typename T, typename F>
Tensor broadcast2(const Tensor& a, const Tensor& b, DType out_dtype, F&& f) {
  const Shape os = broadcast_all({a.shape(), b.shape()});
  Tensor y(out_dtype, os);
  const T* pa = a.data<T>();
  const T* pb = b.data<T>();
  auto* py = static_cast<std::byte*>(y.raw());
  const std::size_t es = dtype_size(out_dtype);
  for_each_broadcast(
      os, {broadcast_strides(a.shape(), os.size()), broadcast_strides(b.shape(), os.size())},
      [&](std::int64_t i, const std::int64_t* off) { f(py + i * es, pa[off[0]], pb[off[1]]); });
  return y;
}

void require_same_dtype(const Tensor& a, const Tensor& b, const char* what) {
  if (a.dtype() != b.dtype()) {
    fail(std::string(what) + ": operands are " + std::string(dtype_name(a.dtype())) + " and " +
         std::string(dtype_name(b.dtype())));
  }
}

template <typename T>
Tensor variadic_typed(VariadicOp op, const std::vector<const Tensor*>& xs, const Shape& os) {
  Tensor y(xs[0]->dtype(), os);
  T* py = y.data<T>();
  for (std::size_t k = 0; k < xs.size(); ++k) {
    const T* px = xs[k]->data<T>();
    for_each_broadcast(os, {broadcast_strides(xs[k]->shape(), os.size())},
                       [&](std::int64_t i, const std::int64_t* off) {
                         const T v = px[off[0]];
                         if (k == 0) {
                           py[i] = v;
                         } else if (op == VariadicOp::kMin) {
                           // NaN propagates (std::min would drop it depending on the operand order).
                           if constexpr (std::is_floating_point_v<T>) {
                             py[i] = std::isnan(v) || std::isnan(py[i]) ? std::numeric_limits<T>::quiet_NaN()
                                                                        : std::min(py[i], v);
                           } else {
                             py[i] = std::min(py[i], v);
                           }
                         } else if (op == VariadicOp::kMax) {
                           if constexpr (std::is_floating_point_v<T>) {
                             py[i] = std::isnan(v) || std::isnan(py[i]) ? std::numeric_limits<T>::quiet_NaN()
                                                                        : std::max(py[i], v);
                           } else {
                             py[i] = std::max(py[i], v);
                           }
                         } else {
                           py[i] = static_cast<T>(py[i] + v);
                         }
                       });
  }
  if (op == VariadicOp::kMean) {
    if constexpr (std::is_floating_point_v<T>) {
      for (std::int64_t i = 0; i < y.numel(); ++i) py[i] /= static_cast<T>(xs.size());
    }
  }
  return y;
}

template <typename T>
bool compare_one(CompareOp op, T a, T b) {
  switch (op) {
    case CompareOp::kEqual: return a == b;
    case CompareOp::kLess: return a < b;
    case CompareOp::kLessOrEqual: return a <= b;
    case CompareOp::kGreater: return a > b;
    case CompareOp::kGreaterOrEqual: return a >= b;
  }
  return false;
}

template <typename T>
Tensor compare_typed(CompareOp op, const Tensor& a, const Tensor& b) {
  return broadcast2<T>(a, b, DType::kBool, [op](std::byte* y, T x, T z) {
    *reinterpret_cast<std::uint8_t*>(y) = compare_one(op, x, z) ? 1 : 0;
  });
}

}  // namespace

void math(MathOp op, const MathParams& p, const float* x, float* y, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) y[i] = static_cast<float>(math_one(op, p, x[i]));
}

Tensor math_int(MathOp op, const Tensor& x) {
  Tensor y(x.dtype(), x.shape());
  switch (x.dtype()) {
    case DType::kInt64: math_int_typed(op, x.data<std::int64_t>(), y.data<std::int64_t>(), x.numel()); break;
    case DType::kInt32: math_int_typed(op, x.data<std::int32_t>(), y.data<std::int32_t>(), x.numel()); break;
    case DType::kInt8: math_int_typed(op, x.data<std::int8_t>(), y.data<std::int8_t>(), x.numel()); break;
    case DType::kUInt8: math_int_typed(op, x.data<std::uint8_t>(), y.data<std::uint8_t>(), x.numel()); break;
    default: fail("elementwise function on unsupported dtype " + std::string(dtype_name(x.dtype())));
  }
  return y;
}

std::vector<std::int64_t> broadcast_strides(const Shape& shape, std::size_t rank) {
  std::vector<std::int64_t> strides(rank, 0);
  std::int64_t s = 1;
  for (std::size_t i = shape.size(); i-- > 0;) {
    const std::size_t oi = i + (rank - shape.size());
    strides[oi] = shape[i] == 1 ? 0 : s;
    s *= shape[i];
  }
  return strides;
}

Shape broadcast_all(const std::vector<Shape>& shapes) {
  std::size_t r = 0;
  for (const auto& s : shapes) r = std::max(r, s.size());
  Shape out(r, 1);
  for (const auto& s : shapes) {
    for (std::size_t i = 0; i < s.size(); ++i) {
      std::int64_t& o = out[i + (r - s.size())];
      if (s[i] == o || s[i] == 1) continue;
      if (o != 1) {
        std::string all;
        for (const auto& t : shapes) all += (all.empty() ? "" : " and ") + shape_str(t);
        fail("shapes " + all + " do not broadcast");
      }
      o = s[i];
    }
  }
  return out;
}

Tensor variadic(VariadicOp op, const std::vector<const Tensor*>& xs) {
  if (xs.empty()) fail("needs at least one input");
  std::vector<Shape> shapes;
  for (const auto* x : xs) {
    require_same_dtype(*xs[0], *x, "variadic op");
    shapes.push_back(x->shape());
  }
  const Shape os = broadcast_all(shapes);
  switch (xs[0]->dtype()) {
    case DType::kFloat32: return variadic_typed<float>(op, xs, os);
    case DType::kInt64:
      if (op != VariadicOp::kMean) return variadic_typed<std::int64_t>(op, xs, os);
      break;
    case DType::kInt32:
      if (op != VariadicOp::kMean) return variadic_typed<std::int32_t>(op, xs, os);
      break;
    case DType::kInt8:
      if (op != VariadicOp::kMean) return variadic_typed<std::int8_t>(op, xs, os);
      break;
    case DType::kUInt8:
      if (op != VariadicOp::kMean) return variadic_typed<std::uint8_t>(op, xs, os);
      break;
    default: break;
  }
  fail("variadic op on unsupported dtype " + std::string(dtype_name(xs[0]->dtype())));
}

Tensor compare(CompareOp op, const Tensor& a, const Tensor& b) {
  require_same_dtype(a, b, "comparison");
  switch (a.dtype()) {
    case DType::kFloat32: return compare_typed<float>(op, a, b);
    case DType::kInt64: return compare_typed<std::int64_t>(op, a, b);
    case DType::kInt32: return compare_typed<std::int32_t>(op, a, b);
    case DType::kUInt8:
    case DType::kBool: return compare_typed<std::uint8_t>(op, a, b);
    case DType::kInt8: return compare_typed<std::int8_t>(op, a, b);
  }
  fail("comparison on unsupported dtype");
}

Tensor logical(LogicalOp op, const Tensor& a, const Tensor& b) {
  if (a.dtype() != DType::kBool || b.dtype() != DType::kBool) fail("logical op needs bool operands");
  return broadcast2<std::uint8_t>(a, b, DType::kBool, [op](std::byte* y, std::uint8_t x, std::uint8_t z) {
    const bool p = x != 0, q = z != 0;
    const bool r = op == LogicalOp::kAnd ? (p && q) : op == LogicalOp::kOr ? (p || q) : (p != q);
    *reinterpret_cast<std::uint8_t*>(y) = r ? 1 : 0;
  });
}

Tensor logical_not(const Tensor& x) {
  if (x.dtype() != DType::kBool) fail("Not needs a bool operand");
  Tensor y(DType::kBool, x.shape());
  for (std::int64_t i = 0; i < x.numel(); ++i) y.data<std::uint8_t>()[i] = x.data<std::uint8_t>()[i] ? 0 : 1;
  return y;
}

Tensor where(const Tensor& cond, const Tensor& x, const Tensor& y) {
  if (cond.dtype() != DType::kBool)
    fail("Where: condition must be bool, got " + std::string(dtype_name(cond.dtype())));
  require_same_dtype(x, y, "Where");
  const Shape os = broadcast_all({cond.shape(), x.shape(), y.shape()});
  Tensor out(x.dtype(), os);
  const std::size_t es = dtype_size(x.dtype());
  const auto* pc = cond.data<std::uint8_t>();
  const auto* px = static_cast<const std::byte*>(x.raw());
  const auto* py = static_cast<const std::byte*>(y.raw());
  auto* po = static_cast<std::byte*>(out.raw());
  for_each_broadcast(os,
                     {broadcast_strides(cond.shape(), os.size()), broadcast_strides(x.shape(), os.size()),
                      broadcast_strides(y.shape(), os.size())},
                     [&](std::int64_t i, const std::int64_t* off) {
                       std::memcpy(po + i * es, pc[off[0]] ? px + off[1] * es : py + off[2] * es, es);
                     });
  return out;
}

Tensor pow(const Tensor& a, const Tensor& b) {
  // The exponent is widened to double whatever its type; the base keeps its own.
  const Tensor e = b.to_f32();
  const Shape os = broadcast_all({a.shape(), b.shape()});
  const auto sa = broadcast_strides(a.shape(), os.size());
  const auto sb = broadcast_strides(b.shape(), os.size());
  Tensor y(a.dtype(), os);
  const float* pe = e.data<float>();
  if (b.dtype() == DType::kInt64 || b.dtype() == DType::kInt32) {
    // Integer exponents exactly (a float copy of a large int64 would round).
    const auto ev = b.to_i64_vector();
    if (a.dtype() == DType::kFloat32) {
      for_each_broadcast(os, {sa, sb}, [&](std::int64_t i, const std::int64_t* off) {
        y.data<float>()[i] = static_cast<float>(
            std::pow(static_cast<double>(a.data<float>()[off[0]]), static_cast<double>(ev[off[1]])));
      });
      return y;
    }
    const auto av = a.to_i64_vector();
    for_each_broadcast(os, {sa, sb}, [&](std::int64_t i, const std::int64_t* off) {
      const auto v = static_cast<std::int64_t>(
          std::pow(static_cast<double>(av[off[0]]), static_cast<double>(ev[off[1]])));
      if (a.dtype() == DType::kInt64) {
        y.data<std::int64_t>()[i] = v;
      } else if (a.dtype() == DType::kInt32) {
        y.data<std::int32_t>()[i] = static_cast<std::int32_t>(v);
      } else {
        fail("Pow on unsupported base dtype " + std::string(dtype_name(a.dtype())));
      }
    });
    return y;
  }
  if (a.dtype() != DType::kFloat32 && b.dtype() == DType::kFloat32 &&
      (a.dtype() == DType::kInt64 || a.dtype() == DType::kInt32)) {
    // Integer base, float exponent: the power in double, truncated back to the base's type.
    const auto av = a.to_i64_vector();
    for_each_broadcast(os, {sa, sb}, [&](std::int64_t i, const std::int64_t* off) {
      const double v = std::pow(static_cast<double>(av[off[0]]), static_cast<double>(pe[off[1]]));
      if (!(std::fabs(v) < 9.2e18)) fail("Pow: integer result " + std::to_string(v) + " is out of range");
      if (a.dtype() == DType::kInt64) {
        y.data<std::int64_t>()[i] = static_cast<std::int64_t>(v);
      } else {
        y.data<std::int32_t>()[i] = static_cast<std::int32_t>(v);
      }
    });
    return y;
  }
  if (a.dtype() != DType::kFloat32 || b.dtype() != DType::kFloat32) {
    fail("Pow on unsupported dtypes " + std::string(dtype_name(a.dtype())) + " ** " +
         std::string(dtype_name(b.dtype())));
  }
  for_each_broadcast(os, {sa, sb}, [&](std::int64_t i, const std::int64_t* off) {
    y.data<float>()[i] = static_cast<float>(
        std::pow(static_cast<double>(a.data<float>()[off[0]]), static_cast<double>(pe[off[1]])));
  });
  return y;
}

namespace {
template <typename T>
Tensor mod_typed(const Tensor& a, const Tensor& b, bool fmod) {
  return broadcast2<T>(a, b, a.dtype(), [fmod](std::byte* y, T x, T z) {
    T r;
    if constexpr (std::is_floating_point_v<T>) {
      r = std::fmod(x, z);
      if (!fmod && r != 0 && ((r < 0) != (z < 0))) r += z;
    } else {
      if (z == 0) fail("Mod: integer division by zero");
      // INT_MIN % -1 traps on x86; its value is 0.
      r = (std::is_signed_v<T> && z == static_cast<T>(-1)) ? T{0} : static_cast<T>(x % z);
      if (!fmod && r != 0 && ((r < 0) != (z < 0))) r = static_cast<T>(r + z);
    }
    std::memcpy(y, &r, sizeof(T));
  });
}
}  // namespace

Tensor mod(const Tensor& a, const Tensor& b, bool fmod) {
  require_same_dtype(a, b, "Mod");
  switch (a.dtype()) {
    case DType::kFloat32: return mod_typed<float>(a, b, fmod);
    case DType::kInt64: return mod_typed<std::int64_t>(a, b, fmod);
    case DType::kInt32: return mod_typed<std::int32_t>(a, b, fmod);
    case DType::kInt8: return mod_typed<std::int8_t>(a, b, fmod);
    case DType::kUInt8: return mod_typed<std::uint8_t>(a, b, fmod);
    default: fail("Mod on unsupported dtype " + std::string(dtype_name(a.dtype())));
  }
}

Tensor prelu(const Tensor& x, const Tensor& slope) {
  if (x.dtype() != DType::kFloat32 || slope.dtype() != DType::kFloat32) fail("PRelu needs float32 operands");
  const Shape os = broadcast_all({x.shape(), slope.shape()});
  if (os != x.shape())
    fail("PRelu: slope " + shape_str(slope.shape()) + " does not broadcast to " + shape_str(x.shape()));
  Tensor y(DType::kFloat32, os);
  const float* px = x.data<float>();
  const float* ps = slope.data<float>();
  float* py = y.data<float>();
  for_each_broadcast(os,
                     {broadcast_strides(x.shape(), os.size()), broadcast_strides(slope.shape(), os.size())},
                     [&](std::int64_t i, const std::int64_t* off) {
                       const float v = px[off[0]];
                       py[i] = v < 0 ? ps[off[1]] * v : v;
                     });
  return y;
}

}  // namespace aciq::kernels::ref
