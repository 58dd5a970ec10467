// QuantizeLinear/DequantizeLinear and integer Clip: hand-computed values, QDQ graphs on both backends.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>

#include "../onnx/model_builder.hpp"
#include "aciq/onnx.hpp"
#include "aciq/runtime.hpp"

namespace aciq::testing {
namespace {

using runtime::Backend;
constexpr Backend kBackends[] = {Backend::kReference, Backend::kFast};

const char* name_of(Backend b) { return b == Backend::kFast ? "fast" : "reference"; }

template <typename T>
onnx::TensorProto typed_tensor(const std::string& name, const std::vector<std::int64_t>& dims,
                               const std::vector<T>& values) {
  onnx::TensorProto t;
  t.set_name(name);
  if constexpr (std::is_same_v<T, std::uint8_t>) {
    t.set_data_type(onnx::TensorProto::UINT8);
  } else if constexpr (std::is_same_v<T, std::int8_t>) {
    t.set_data_type(onnx::TensorProto::INT8);
  } else if constexpr (std::is_same_v<T, std::int32_t>) {
    t.set_data_type(onnx::TensorProto::INT32);
  } else {
    t.set_data_type(onnx::TensorProto::FLOAT);
  }
  for (auto d : dims) t.add_dims(d);
  t.set_raw_data(std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(T)));
  return t;
}

template <typename T>
void add_init(onnx::ModelProto& m, const std::string& name, const std::vector<std::int64_t>& dims,
              const std::vector<T>& values) {
  *m.mutable_graph()->add_initializer() = typed_tensor(name, dims, values);
}

graph::Graph load(const onnx::ModelProto& m, const std::string& name) {
  std::string s;
  m.SerializeToString(&s);
  return onnx_import::load_model_from_bytes(s, name);
}

std::vector<Tensor> run(const graph::Graph& g, Backend b, const std::vector<Tensor>& inputs,
                        runtime::LayoutChoice layout = runtime::LayoutChoice::kAuto) {
  Context ctx(2);
  runtime::Executor exec(g, ctx, {.backend = b, .layout = layout});
  return exec.run(inputs);
}

template <typename T>
std::vector<T> values_of(const Tensor& t) {
  const T* p = t.data<T>();
  return std::vector<T>(p, p + t.numel());
}

std::vector<std::uint32_t> bits_of(const Tensor& t) {
  std::vector<std::uint32_t> b(static_cast<std::size_t>(t.numel()));
  std::memcpy(b.data(), t.raw(), b.size() * sizeof(float));
  return b;
}

// x[n] -> QuantizeLinear(scale, zero point of type T) -> y.
template <typename T>
graph::Graph quantize_model(std::int64_t n, float scale, T zp) {
  auto m = make_model();
  add_input(m, "x", {n});
  add_init<float>(m, "s", {}, {scale});
  add_init<T>(m, "zp", {}, {zp});
  add_node(m, "QuantizeLinear", {"x", "s", "zp"}, {"y"}, "q");
  add_output(m, "y");
  return load(m, "q.onnx");
}

TEST(Qdq, QuantizeRoundsHalfToEvenAndSaturatesUint8) {
  const float inf = std::numeric_limits<float>::infinity();
  // x / 0.5 is exact: 0.5, 1.5, 2.5, -0.5 round to 0, 2, 2, -0 (not away from zero).
  const std::vector<float> x = {0.25f,   0.75f,    1.25f,  -0.25f, 63.75f, 127.25f,      127.75f,
                                1000.0f, -1000.0f, -0.75f, inf,    -inf,   std::nanf("")};
  const std::vector<std::uint8_t> want = {0, 2, 2, 0, 128, 254, 255, 255, 0, 0, 255, 0, 0};
  const auto g = quantize_model<std::uint8_t>(static_cast<std::int64_t>(x.size()), 0.5f, 0);
  for (Backend b : kBackends) {
    const auto y = run(g, b, {Tensor::from_f32({static_cast<std::int64_t>(x.size())}, x)}).at(0);
    ASSERT_EQ(y.dtype(), DType::kUInt8);
    EXPECT_EQ(values_of<std::uint8_t>(y), want) << name_of(b);
  }
}

TEST(Qdq, QuantizeInt8WithZeroPoint) {
  // x / 0.5 = -2.5, 0.5, 1.5, 3.5, 129.5, -125.5, -300: round half to even, then + (-3), then saturate.
  // NaN gives 0, not the zero point (ONNX leaves it undefined; ONNX Runtime's scalar path gives 0).
  const std::vector<float> x = {-1.25f, 0.25f, 0.75f, 1.75f, 64.75f, -62.75f, -150.0f, std::nanf("")};
  const std::vector<std::int8_t> want = {-5, -3, -1, 1, 127, -128, -128, 0};
  const auto g = quantize_model<std::int8_t>(static_cast<std::int64_t>(x.size()), 0.5f, -3);
  for (Backend b : kBackends) {
    const auto y = run(g, b, {Tensor::from_f32({static_cast<std::int64_t>(x.size())}, x)}).at(0);
    ASSERT_EQ(y.dtype(), DType::kInt8);
    EXPECT_EQ(values_of<std::int8_t>(y), want) << name_of(b);
  }
}

// Large and odd-sized per-tensor and per-axis quantize-dequantize: the fast path's slices (chunks
// of 2^14 elements, rows of one channel) give the reference path's bits.
TEST(Qdq, FastSlicesMatchReferenceOnOddSizes) {
  for (const Shape& shape : {Shape{3 * (1 << 14) + 13}, Shape{2, 13, 1, 127}, Shape{1, 1}}) {
    auto m = make_model();
    add_input(m, "x", shape);
    const bool per_axis = shape.size() > 1 && shape[1] > 1;
    const std::int64_t c = per_axis ? shape[1] : 1;
    std::vector<float> scales = random_values(static_cast<std::size_t>(c), 3, 0.01f, 0.1f);
    std::vector<std::uint8_t> zps(static_cast<std::size_t>(c));
    for (std::size_t i = 0; i < zps.size(); ++i) zps[i] = static_cast<std::uint8_t>(100 + 7 * i);
    const Shape pdims = per_axis ? Shape{c} : Shape{};
    add_init<float>(m, "s", pdims, scales);
    add_init<std::uint8_t>(m, "zp", pdims, zps);
    add_node(m, "QuantizeLinear", {"x", "s", "zp"}, {"q"}, "q");
    add_node(m, "DequantizeLinear", {"q", "s", "zp"}, {"y"}, "dq");
    add_output(m, "q");
    add_output(m, "y");
    const auto g = load(m, "qdq.onnx");
    const Tensor x =
        Tensor::from_f32(shape, random_values(static_cast<std::size_t>(shape_numel(shape)), 5, -8, 8));
    const auto ref = run(g, Backend::kReference, {x});
    const auto fast = run(g, Backend::kFast, {x});
    EXPECT_EQ(values_of<std::uint8_t>(fast[0]), values_of<std::uint8_t>(ref[0])) << shape_str(shape);
    EXPECT_EQ(bits_of(fast[1]), bits_of(ref[1])) << shape_str(shape);
    // The dequantized value is (q - zp) * scale of the element's channel.
    const std::int64_t inner = per_axis ? shape[2] * shape[3] : 1;
    for (std::int64_t i = 0; i < x.numel(); ++i) {
      const std::size_t ch = per_axis ? static_cast<std::size_t>((i / inner) % c) : 0;
      const float want = static_cast<float>(ref[0].data<std::uint8_t>()[i] - zps[ch]) * scales[ch];
      ASSERT_EQ(ref[1].f32()[i], want) << shape_str(shape) << " element " << i;
    }
  }
}

// The int8 engine's residual: x -> Q -> DQ and y -> Neg x 64 -> Q -> DQ, Add, Relu, Q, DQ. On the fast
// backend the two inner DequantizeLinear steps and the QuantizeLinear after the Add fold into the Add, which
// then reads and writes 8-bit tensors; the bytes must be the reference's (the unfused arithmetic), on sizes
// that leave partial chunks, uint8 and int8, with and without the Relu.
TEST(Qdq, ResidualAddFoldsItsQuantizationAndKeepsTheReferenceBytes) {
  for (const Shape& shape : {Shape{2, 13, 17, 19}, Shape{1, 3, 1, 1}}) {
    for (const bool int8 : {false, true}) {
      for (const bool relu : {false, true}) {
        auto m = make_model();
        add_input(m, "x", shape);
        add_input(m, "y", shape);
        add_init<float>(m, "sx", {}, {0.031f});
        add_init<float>(m, "sy", {}, {0.047f});
        add_init<float>(m, "so", {}, {0.059f});
        if (int8) {
          add_init<std::int8_t>(m, "zx", {}, {-3});
          add_init<std::int8_t>(m, "zy", {}, {7});
          add_init<std::int8_t>(m, "zo", {}, {-20});
        } else {
          add_init<std::uint8_t>(m, "zx", {}, {120});
          add_init<std::uint8_t>(m, "zy", {}, {131});
          add_init<std::uint8_t>(m, "zo", {}, {static_cast<std::uint8_t>(relu ? 0 : 128)});
        }
        add_node(m, "QuantizeLinear", {"x", "sx", "zx"}, {"qx"}, "qx");
        add_node(m, "DequantizeLinear", {"qx", "sx", "zx"}, {"dx"}, "dx");
        // 64 Neg steps between the two DequantizeLinear steps: the plan's value table grows (and moves)
        // after dx was planned, as in a real network (this once left a dangling pointer, caught by ASan).
        std::string yv = "y";
        for (int i = 0; i < 64; ++i) {
          add_node(m, "Neg", {yv}, {"neg" + std::to_string(i)}, "neg" + std::to_string(i));
          yv = "neg" + std::to_string(i);
        }
        add_node(m, "QuantizeLinear", {yv, "sy", "zy"}, {"qy"}, "qy");
        add_node(m, "DequantizeLinear", {"qy", "sy", "zy"}, {"dy"}, "dy");
        add_node(m, "Add", {"dx", "dy"}, {"s"}, "add");
        if (relu) add_node(m, "Relu", {"s"}, {"r"}, "relu");
        add_node(m, "QuantizeLinear", {relu ? "r" : "s", "so", "zo"}, {"qo"}, "qo");
        add_node(m, "DequantizeLinear", {"qo", "so", "zo"}, {"out"}, "dq_out");
        add_output(m, "qo");
        add_output(m, "out");
        const auto g = load(m, "residual.onnx");
        const auto n = static_cast<std::size_t>(shape_numel(shape));
        const Tensor x = Tensor::from_f32(shape, random_values(n, 11, -4, 4));
        const Tensor y = Tensor::from_f32(shape, random_values(n, 12, -6, 6));
        const auto ref = run(g, Backend::kReference, {x, y});
        const auto fast = run(g, Backend::kFast, {x, y});
        const std::string where = shape_str(shape) + (int8 ? " int8" : " uint8") + (relu ? " relu" : "");
        if (int8) {
          EXPECT_EQ(values_of<std::int8_t>(fast[0]), values_of<std::int8_t>(ref[0])) << where;
        } else {
          EXPECT_EQ(values_of<std::uint8_t>(fast[0]), values_of<std::uint8_t>(ref[0])) << where;
        }
        EXPECT_EQ(bits_of(fast[1]), bits_of(ref[1])) << where;
        // Folded: Q, Q, the Add (with its DQs, Relu and Q) and the last DQ remain.
        Context ctx(2);
        runtime::Executor exec(g, ctx, {.backend = Backend::kFast});
        std::vector<std::string> want = {"qx"};
        for (int i = 0; i < 64; ++i) want.push_back("neg" + std::to_string(i));
        for (const char* s : {"qy", "add", "dq_out"}) want.emplace_back(s);
        EXPECT_EQ(exec.planned_steps({shape, shape}), want) << where;
      }
    }
  }
}

// DequantizeLinear -> MaxPool -> QuantizeLinear in the int8 engine: the two folds leave one MaxPool step on
// 8-bit tensors (the pooled bytes mapped through Q(DQ(v))), which must give the reference's bytes on odd
// sizes, both 8-bit types, windows with padding, dilation and ceil_mode, the same or another output scale,
// and every layout the fast backend plans. Without the Q (a float graph output) only the DQ folds.
struct PoolCase {
  const char* name;
  std::vector<std::int64_t> kernel, strides, pads, dilations;
  bool ceil_mode;
};

onnx::ModelProto pooled_qdq_model(const Shape& shape, const PoolCase& pc, bool int8, bool same_scale,
                                  bool quantize_output, float dq_scale = 0.031f) {
  auto m = make_model();
  add_input(m, "x", shape);
  add_init<float>(m, "sx", {}, {0.031f});
  add_init<float>(m, "sd", {}, {dq_scale});
  add_init<float>(m, "so", {}, {same_scale ? 0.031f : 0.0437f});
  if (int8) {
    add_init<std::int8_t>(m, "zx", {}, {-3});
    add_init<std::int8_t>(m, "zo", {}, {static_cast<std::int8_t>(same_scale ? -3 : 11)});
  } else {
    add_init<std::uint8_t>(m, "zx", {}, {120});
    add_init<std::uint8_t>(m, "zo", {}, {static_cast<std::uint8_t>(same_scale ? 120 : 97)});
  }
  add_node(m, "QuantizeLinear", {"x", "sx", "zx"}, {"qx"}, "qx");
  add_node(m, "DequantizeLinear", {"qx", "sd", "zx"}, {"dx"}, "dx");
  auto* pool = add_node(m, "MaxPool", {"dx"}, {"p"}, "pool");
  set_ints(pool, "kernel_shape", pc.kernel);
  set_ints(pool, "strides", pc.strides);
  set_ints(pool, "pads", pc.pads);
  set_ints(pool, "dilations", pc.dilations);
  set_int(pool, "ceil_mode", pc.ceil_mode ? 1 : 0);
  if (quantize_output) {
    add_node(m, "QuantizeLinear", {"p", "so", "zo"}, {"qo"}, "qo");
    add_node(m, "DequantizeLinear", {"qo", "so", "zo"}, {"out"}, "dq_out");
    add_output(m, "qo");
    add_output(m, "out");
  } else {
    add_output(m, "p");
  }
  return m;
}

TEST(Qdq, MaxPoolBetweenDequantizeAndQuantizePoolsBytesWithTheReferenceBytes) {
  const PoolCase cases[] = {
      {"3x3 s2 p1", {3, 3}, {2, 2}, {1, 1, 1, 1}, {1, 1}, false},
      {"2x3 s2x1 ceil", {2, 3}, {2, 1}, {0, 1, 0, 0}, {1, 1}, true},
      {"3x3 dil2", {3, 3}, {1, 1}, {2, 2, 2, 2}, {2, 2}, false},
  };
  const runtime::LayoutChoice layouts[] = {runtime::LayoutChoice::kAuto, runtime::LayoutChoice::kBlocked,
                                           runtime::LayoutChoice::kChannelsLast};
  for (const Shape& shape : {Shape{2, 13, 17, 19}, Shape{1, 3, 5, 5}}) {
    const auto n = static_cast<std::size_t>(shape_numel(shape));
    const Tensor x = Tensor::from_f32(shape, random_values(n, 21, -4, 4));
    for (const PoolCase& pc : cases) {
      for (const bool int8 : {false, true}) {
        for (const bool same_scale : {false, true}) {
          for (const bool quantize_output : {true, false}) {
            const auto g = load(pooled_qdq_model(shape, pc, int8, same_scale, quantize_output), "pool.onnx");
            const std::string where = shape_str(shape) + " " + pc.name + (int8 ? " int8" : " uint8") +
                                      (same_scale ? " same scale" : " rescaled") +
                                      (quantize_output ? "" : " float output");
            const auto ref = run(g, Backend::kReference, {x});
            for (const auto layout : layouts) {
              const auto fast = run(g, Backend::kFast, {x}, layout);
              if (!quantize_output) {
                EXPECT_EQ(bits_of(fast[0]), bits_of(ref[0])) << where;
              } else if (int8) {
                EXPECT_EQ(values_of<std::int8_t>(fast[0]), values_of<std::int8_t>(ref[0])) << where;
              } else {
                EXPECT_EQ(values_of<std::uint8_t>(fast[0]), values_of<std::uint8_t>(ref[0])) << where;
              }
              if (quantize_output) EXPECT_EQ(bits_of(fast[1]), bits_of(ref[1])) << where;
            }
            Context ctx(2);
            runtime::Executor exec(g, ctx, {.backend = Backend::kFast});
            const std::vector<std::string> want = quantize_output
                                                      ? std::vector<std::string>{"qx", "pool", "dq_out"}
                                                      : std::vector<std::string>{"qx", "pool"};
            EXPECT_EQ(exec.planned_steps({shape}), want) << where;
          }
        }
      }
    }
  }
}

// A decreasing DequantizeLinear (negative scale) does not commute with max, and a zero or NaN scale gives
// values (-0 and +0, NaN) the float pooling treats otherwise than the byte pooling would: the DQ stays a
// step of its own, and the result is still the reference's.
TEST(Qdq, MaxPoolAfterADecreasingDequantizeIsNotFolded) {
  const Shape shape{1, 4, 9, 7};
  const PoolCase pc{"3x3 s2 p1", {3, 3}, {2, 2}, {1, 1, 1, 1}, {1, 1}, false};
  for (const float scale : {-0.031f, 0.0f, std::numeric_limits<float>::quiet_NaN()}) {
    const auto g = load(pooled_qdq_model(shape, pc, false, false, true, scale), "pool_neg.onnx");
    const Tensor x =
        Tensor::from_f32(shape, random_values(static_cast<std::size_t>(shape_numel(shape)), 23, -4, 4));
    const auto ref = run(g, Backend::kReference, {x});
    const auto fast = run(g, Backend::kFast, {x});
    EXPECT_EQ(values_of<std::uint8_t>(fast[0]), values_of<std::uint8_t>(ref[0])) << scale;
    Context ctx(2);
    runtime::Executor exec(g, ctx, {.backend = Backend::kFast});
    EXPECT_EQ(exec.planned_steps({shape}), (std::vector<std::string>{"qx", "dx", "pool", "qo", "dq_out"}))
        << scale;
  }
}

// MaxPool on uint8/int8 tensors, as ONNX Runtime's QOperator exports contain it (opset 12+): the window
// maxima computed here by hand; opset 11 refuses the 8-bit input.
TEST(Qdq, MaxPoolRunsOnEightBitTensorsFromOpset12) {
  const Shape shape{1, 2, 5, 4};
  std::vector<float> xs(40);
  for (std::size_t i = 0; i < xs.size(); ++i) xs[i] = static_cast<float>((i * 37) % 23) - 11.0f;
  for (const bool int8 : {false, true}) {
    for (const int opset : {11, 13}) {
      auto m = make_model(opset);
      add_input(m, "x", shape);
      add_init<float>(m, "s", {}, {0.5f});
      if (int8) {
        add_init<std::int8_t>(m, "z", {}, {-100});
      } else {
        add_init<std::uint8_t>(m, "z", {}, {30});
      }
      add_node(m, "QuantizeLinear", {"x", "s", "z"}, {"q"}, "q");
      auto* pool = add_node(m, "MaxPool", {"q"}, {"p"}, "pool");
      set_ints(pool, "kernel_shape", {2, 2});
      set_ints(pool, "strides", {2, 2});
      set_ints(pool, "pads", {1, 0, 0, 0});
      add_output(m, "p");
      const auto g = load(m, "pool8.onnx");
      // q = round(x / 0.5) + z = 2x + z exactly; a 2x2 window over rows {2o-1, 2o} (row -1 is padding).
      std::vector<std::int32_t> want;
      const std::int32_t z = int8 ? -100 : 30;
      for (int c = 0; c < 2; ++c) {
        for (int oy = 0; oy < 3; ++oy) {
          for (int ox = 0; ox < 2; ++ox) {
            float mx = -1e9f;
            for (int y = 2 * oy - 1; y <= 2 * oy; ++y) {
              for (int xx = 2 * ox; xx <= 2 * ox + 1; ++xx) {
                if (y >= 0) mx = std::max(mx, xs[static_cast<std::size_t>((c * 5 + y) * 4 + xx)]);
              }
            }
            want.push_back(static_cast<std::int32_t>(2.0f * mx) + z);
          }
        }
      }
      for (Backend b : kBackends) {
        const std::string where =
            std::string(name_of(b)) + (int8 ? " int8" : " uint8") + " opset " + std::to_string(opset);
        if (opset < 12) {
          EXPECT_THROW(run(g, b, {Tensor::from_f32(shape, xs)}), Error) << where;
          continue;
        }
        const auto y = run(g, b, {Tensor::from_f32(shape, xs)});
        ASSERT_EQ(y[0].shape(), (Shape{1, 2, 3, 2})) << where;
        std::vector<std::int32_t> got;
        if (int8) {
          for (auto v : values_of<std::int8_t>(y[0])) got.push_back(v);
        } else {
          for (auto v : values_of<std::uint8_t>(y[0])) got.push_back(v);
        }
        EXPECT_EQ(got, want) << where;
      }
    }
  }
}

// int32 DequantizeLinear (a bias) stays a step of its own: the fused Add reads 8-bit operands only.
TEST(Qdq, Int32DequantizeIsNotFoldedIntoAnAdd) {
  auto m = make_model();
  add_input(m, "x", {1, 5});
  add_init<std::int32_t>(m, "b", {1, 5}, {-7, 0, 3, 100000, -2});
  add_init<float>(m, "s", {}, {0.5f});
  add_init<std::int32_t>(m, "z", {}, {1});
  add_node(m, "DequantizeLinear", {"x32", "s", "z"}, {"d"}, "dq");
  add_node(m, "Cast", {"x"}, {"x32"}, "cast");
  add_node(m, "Add", {"d", "d2"}, {"y"}, "add");
  add_node(m, "DequantizeLinear", {"b", "s", "z"}, {"d2"}, "dq2");
  add_output(m, "y");
  // Nodes in dependency order: Cast, DQ, DQ(constant, folded), Add.
  auto* nodes = m.mutable_graph()->mutable_node();
  nodes->SwapElements(0, 1);
  set_int(&(*nodes)[0], "to", onnx::TensorProto::INT32);
  nodes->SwapElements(2, 3);
  const auto g = load(m, "int32_dq.onnx");
  const Tensor x = Tensor::from_f32({1, 5}, std::vector<float>{1, 2, -3, 4, 5});
  for (Backend b : kBackends) {
    const auto y = run(g, b, {x});
    EXPECT_EQ(values_of<float>(y[0]), (std::vector<float>{-4.0f, 0.0f, -1.0f, 50001.0f, 0.5f})) << name_of(b);
  }
}

TEST(Qdq, DequantizePerAxisInt8AndInt32) {
  // Per-channel int8 weights (axis 0, given as -2) and an int32 bias, as QDQ exports store them.
  auto m = make_model();
  add_input(m, "unused", {1});
  add_init<std::int8_t>(m, "w", {3, 2}, {-128, 127, 5, -5, 0, 9});
  add_init<float>(m, "ws", {3}, {0.5f, 0.25f, 2.0f});
  add_init<std::int8_t>(m, "wzp", {3}, {0, 1, -3});
  add_init<std::int32_t>(m, "b", {3}, {-100000, 7, 3});
  add_init<float>(m, "bs", {3}, {0.001f, 0.25f, 1.5f});
  set_int(add_node(m, "DequantizeLinear", {"w", "ws", "wzp"}, {"wf"}, "dq_w"), "axis", -2);
  set_int(add_node(m, "DequantizeLinear", {"b", "bs"}, {"bf"}, "dq_b"), "axis", 0);
  add_output(m, "wf");
  add_output(m, "bf");
  const auto g = load(m, "dq.onnx");
  for (Backend b : kBackends) {
    const auto y = run(g, b, {Tensor::from_f32({1}, std::vector<float>{0.0f})});
    EXPECT_EQ(y[0].shape(), (Shape{3, 2}));
    EXPECT_EQ(values_of<float>(y[0]), (std::vector<float>{-64.0f, 63.5f, 1.0f, -1.5f, 6.0f, 24.0f}))
        << name_of(b);
    EXPECT_EQ(values_of<float>(y[1]), (std::vector<float>{-100000 * 0.001f, 1.75f, 4.5f})) << name_of(b);
  }
}

// Hand-computed per-tensor uint8 quantize-dequantize (the formulas ONNX Runtime uses).
Tensor qdq_by_hand(const Tensor& x, float scale, int zp) {
  Tensor y = x.clone();
  for (float& v : y.f32()) {
    float r = std::nearbyint(v / scale) + static_cast<float>(zp);
    r = std::min(255.0f, std::max(0.0f, r));
    v = static_cast<float>(static_cast<int>(r) - zp) * scale;
  }
  return y;
}

constexpr float kXs = 0.02f, kAs = 0.05f;  // activation scales of x and of the first conv's output
constexpr int kXzp = 128, kAzp = 3;

// x[N,3,8,8] -> Q/DQ -> conv1 (16 out) -> Relu -> Q/DQ (uint8) -> conv2 with per-channel int8 weights
// and an int32 bias dequantized from initializers -> y[N,16,8,8].
struct QdqNet {
  std::vector<float> w1 = random_values(16 * 27, 41), b1 = random_values(16, 42);
  std::vector<std::int8_t> w2q;
  std::vector<float> w2s, b2s;
  std::vector<std::int32_t> b2q;
  QdqNet() {
    for (int i = 0; i < 16 * 16 * 9; ++i) w2q.push_back(static_cast<std::int8_t>((i * 37) % 255 - 127));
    for (int o = 0; o < 16; ++o) {
      w2s.push_back(0.001f * static_cast<float>(o + 1));
      b2s.push_back(kAs * w2s.back());
      b2q.push_back((o - 8) * 1000 + 17);
    }
  }
  // The conv2 weights and bias as DequantizeLinear computes them, by hand.
  std::vector<float> w2() const {
    std::vector<float> w;
    for (std::size_t i = 0; i < w2q.size(); ++i) w.push_back(static_cast<float>(w2q[i]) * w2s[i / (16 * 9)]);
    return w;
  }
  std::vector<float> b2() const {
    std::vector<float> b;
    for (std::size_t i = 0; i < b2q.size(); ++i) b.push_back(static_cast<float>(b2q[i]) * b2s[i]);
    return b;
  }
  static void conv(onnx::ModelProto& m, const std::vector<std::string>& in, const std::string& out,
                   const std::string& name) {
    set_ints(add_node(m, "Conv", in, {out}, name), "pads", {1, 1, 1, 1});
  }
  static void qdq(onnx::ModelProto& m, const std::string& x, const std::string& y, const std::string& s,
                  float scale, int zp) {
    add_init<float>(m, s + "_s", {}, {scale});
    add_init<std::uint8_t>(m, s + "_zp", {}, {static_cast<std::uint8_t>(zp)});
    add_node(m, "QuantizeLinear", {x, s + "_s", s + "_zp"}, {s + "_q"}, s + "_quant");
    add_node(m, "DequantizeLinear", {s + "_q", s + "_s", s + "_zp"}, {y}, s + "_dequant");
  }
  graph::Graph full() const {
    auto m = make_model();
    add_input(m, "x", {-1, 3, 8, 8});
    *m.mutable_graph()->add_initializer() = make_tensor("w1", {16, 3, 3, 3}, w1);
    *m.mutable_graph()->add_initializer() = make_tensor("b1", {16}, b1);
    add_init<std::int8_t>(m, "w2q", {16, 16, 3, 3}, w2q);
    add_init<float>(m, "w2s", {16}, w2s);
    add_init<std::int8_t>(m, "w2zp", {16}, std::vector<std::int8_t>(16, 0));
    add_init<std::int32_t>(m, "b2q", {16}, b2q);
    add_init<float>(m, "b2s", {16}, b2s);
    qdq(m, "x", "xd", "x", kXs, kXzp);
    conv(m, {"xd", "w1", "b1"}, "c1", "conv1");
    add_node(m, "Relu", {"c1"}, {"r1"}, "relu1");
    qdq(m, "r1", "r1d", "a", kAs, kAzp);
    set_int(add_node(m, "DequantizeLinear", {"w2q", "w2s", "w2zp"}, {"w2"}, "dq_w2"), "axis", 0);
    set_int(add_node(m, "DequantizeLinear", {"b2q", "b2s"}, {"b2"}, "dq_b2"), "axis", 0);
    conv(m, {"r1d", "w2", "b2"}, "y", "conv2");
    add_output(m, "y");
    return load(m, "qdq_net.onnx");
  }
  // The float pieces between the hand-computed quantize-dequantize steps.
  graph::Graph first() const {
    auto m = make_model();
    add_input(m, "xd", {-1, 3, 8, 8});
    *m.mutable_graph()->add_initializer() = make_tensor("w1", {16, 3, 3, 3}, w1);
    *m.mutable_graph()->add_initializer() = make_tensor("b1", {16}, b1);
    conv(m, {"xd", "w1", "b1"}, "c1", "conv1");
    add_node(m, "Relu", {"c1"}, {"r1"}, "relu1");
    add_output(m, "r1");
    return load(m, "first.onnx");
  }
  graph::Graph second() const {
    auto m = make_model();
    add_input(m, "r1d", {-1, 16, 8, 8});
    *m.mutable_graph()->add_initializer() = make_tensor("w2", {16, 16, 3, 3}, w2());
    *m.mutable_graph()->add_initializer() = make_tensor("b2", {16}, b2());
    conv(m, {"r1d", "w2", "b2"}, "y", "conv2");
    add_output(m, "y");
    return load(m, "second.onnx");
  }
};

TEST(Qdq, ConvQdqConvEqualsHandQuantizedOnBothBackends) {
  const QdqNet net;
  const Tensor x = Tensor::from_f32({2, 3, 8, 8}, random_values(2 * 3 * 64, 43, -2, 2));
  std::vector<Tensor> outs;
  // One layout for the whole graph and its halves: under kAuto a plan's layout depends on all of its
  // values, and conv2 could sum in another order in the full graph than in the second half alone.
  const auto blocked = runtime::LayoutChoice::kBlocked;
  for (Backend b : kBackends) {
    const Tensor y = run(net.full(), b, {x}, blocked).at(0);
    const Tensor r1 = run(net.first(), b, {qdq_by_hand(x, kXs, kXzp)}, blocked).at(0);
    const Tensor want = run(net.second(), b, {qdq_by_hand(r1, kAs, kAzp)}, blocked).at(0);
    ASSERT_EQ(y.shape(), (Shape{2, 16, 8, 8}));
    EXPECT_EQ(bits_of(y), bits_of(want)) << name_of(b);
    outs.push_back(y);
  }
  for (std::int64_t i = 0; i < outs[0].numel(); ++i)
    ASSERT_NEAR(outs[1].f32()[i], outs[0].f32()[i], 1e-4 + 1e-4 * std::fabs(outs[0].f32()[i])) << i;
  // The weight and bias DequantizeLinear nodes fold at plan time, so conv2 sees constant weights
  // (on the fast path: a oneDNN primitive built once per plan); the activation Q/DQ pairs run.
  Context ctx(1);
  runtime::Executor fast(net.full(), ctx, {.backend = Backend::kFast});
  EXPECT_EQ(fast.planned_steps({{2, 3, 8, 8}}),
            (std::vector<std::string>{"x_quant", "x_dequant", "conv1", "a_quant", "a_dequant", "conv2"}));
}

TEST(Qdq, ClipUint8AndInt8) {
  // x -> Q(uint8, scale 1) -> Clip[10, 200] -> y8; x -> Q(int8, scale 1) -> Clip[-, 5] -> z8 and
  // Clip[7, 3] (min > max gives max) -> w8. The Clips run on the activations as steps.
  auto m = make_model();
  add_input(m, "x", {6});
  add_init<float>(m, "one", {}, {1.0f});
  add_init<std::uint8_t>(m, "uzp", {}, {0});
  add_init<std::int8_t>(m, "izp", {}, {0});
  add_init<std::uint8_t>(m, "lo", {}, {10});
  add_init<std::uint8_t>(m, "hi", {}, {200});
  add_init<std::int8_t>(m, "ihi", {}, {5});
  add_init<std::int8_t>(m, "i7", {}, {7});
  add_init<std::int8_t>(m, "i3", {}, {3});
  add_node(m, "QuantizeLinear", {"x", "one", "uzp"}, {"u"}, "qu");
  add_node(m, "Clip", {"u", "lo", "hi"}, {"y8"}, "clip_u8");
  add_node(m, "QuantizeLinear", {"x", "one", "izp"}, {"i"}, "qi");
  add_node(m, "Clip", {"i", "", "ihi"}, {"z8"}, "clip_i8");
  add_node(m, "Clip", {"i", "i7", "i3"}, {"w8"}, "clip_crossed");
  // An integer Add's sole consumer: a float Clip would fuse into it on the fast path; this one must not.
  add_node(m, "Add", {"u", "u"}, {"uu"}, "add_u8");
  add_node(m, "Clip", {"uu", "lo", "hi"}, {"v8"}, "clip_after_add");
  add_output(m, "y8");
  add_output(m, "z8");
  add_output(m, "w8");
  add_output(m, "v8");
  const auto g = load(m, "clip.onnx");
  const Tensor x = Tensor::from_f32({6}, std::vector<float>{-3.0f, 4.0f, 9.5f, 10.5f, 150.0f, 250.0f});
  for (Backend b : kBackends) {
    const auto y = run(g, b, {x});
    ASSERT_EQ(y[0].dtype(), DType::kUInt8);
    ASSERT_EQ(y[1].dtype(), DType::kInt8);
    EXPECT_EQ(values_of<std::uint8_t>(y[0]), (std::vector<std::uint8_t>{10, 10, 10, 10, 150, 200}))
        << name_of(b);
    EXPECT_EQ(values_of<std::int8_t>(y[1]), (std::vector<std::int8_t>{-3, 4, 5, 5, 5, 5})) << name_of(b);
    EXPECT_EQ(values_of<std::int8_t>(y[2]), (std::vector<std::int8_t>{3, 3, 3, 3, 3, 3})) << name_of(b);
    // u + u wraps modulo 256 (0, 8, 20, 20, 44, 244) before the Clip.
    EXPECT_EQ(values_of<std::uint8_t>(y[3]), (std::vector<std::uint8_t>{10, 10, 20, 20, 44, 200}))
        << name_of(b);
  }
}

TEST(Qdq, RefusesMismatchedParametersNamingTheNode) {
  auto m = make_model(13);
  add_input(m, "x", {2, 3});
  add_init<float>(m, "s", {2}, {1.0f, 2.0f});
  add_node(m, "QuantizeLinear", {"x", "s"}, {"y"}, "q_bad");
  add_output(m, "y");
  Context ctx(1);
  runtime::Executor exec(load(m, "bad.onnx"), ctx, {.backend = Backend::kReference});
  try {
    (void)exec.run({Tensor(DType::kFloat32, {2, 3})});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("q_bad"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("along axis 1"), std::string::npos) << e.what();
  }
  auto m10 = make_model(10);
  add_input(m10, "x", {2, 3});
  add_init<float>(m10, "s", {3}, {1.0f, 2.0f, 3.0f});
  add_node(m10, "QuantizeLinear", {"x", "s"}, {"y"}, "q_old");
  add_output(m10, "y");
  runtime::Executor old(load(m10, "old.onnx"), ctx, {.backend = Backend::kReference});
  EXPECT_THROW((void)old.run({Tensor(DType::kFloat32, {2, 3})}), Error);
}

}  // namespace
}  // namespace aciq::testing
