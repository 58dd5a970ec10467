// oneDNN primitives for convolution, deconvolution, pooling and GEMM, with fused activations as post-ops.
#include "kernels/fast/dnnl_kernels.hpp"

#include <algorithm>
#include <cstring>
#include <oneapi/dnnl/dnnl.hpp>
#include <unordered_map>
#include <vector>

#include "aciq/core.hpp"

namespace aciq::kernels::fast {

using dnnl::memory;
using tag = memory::format_tag;
using dt = memory::data_type;

struct DnnlEngine::Impl {
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream{engine};
};

DnnlEngine::DnnlEngine() : impl_(std::make_unique<Impl>()) {}

int DnnlEngine::channel_block() const {
  // cpu_isa values are feature bit masks (avx2_vnni > avx512_core numerically), so test the bits.
  const auto isa = static_cast<unsigned>(dnnl::get_effective_cpu_isa());
  const auto avx512 = static_cast<unsigned>(dnnl::cpu_isa::avx512_core);
  return (isa & avx512) == avx512 ? 16 : 8;
}

namespace {
memory::format_tag act_tag(int block) {
  switch (block) {
    case 0: return tag::nchw;
    case 8: return tag::nChw8c;
    case 16: return tag::nChw16c;
    case kChannelsLast: return tag::nhwc;
    default: fail("unsupported channel block " + std::to_string(block));
  }
}
}  // namespace
DnnlEngine::~DnnlEngine() = default;

namespace {

dnnl::primitive_attr attr_for(const Activation& act, bool accumulate = false) {
  dnnl::primitive_attr attr;
  dnnl::post_ops ops;
  // The sum comes first: act(conv + y), as the graph's Add -> Relu computes it.
  if (accumulate) ops.append_sum(1.0f);
  switch (act.kind) {
    case Activation::Kind::kNone: break;
    case Activation::Kind::kRelu: ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_relu, 0.0f, 0.0f); break;
    case Activation::Kind::kLeakyRelu:
      ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_relu, act.alpha, 0.0f);
      break;
    case Activation::Kind::kClip:
      ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_clip, act.lo, act.hi);
      break;
    case Activation::Kind::kSwish:  // x * sigmoid(alpha x), alpha = 1
      ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_swish, 1.0f, 0.0f);
      break;
    case Activation::Kind::kHardSwish:  // oneDNN 2.6's has alpha 1/6, beta 1/2 built in (the executor checks)
      ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_hardswish, 0.0f, 0.0f);
      break;
  }
  attr.set_post_ops(ops);
  return attr;
}

template <typename F>
auto wrap(const char* what, F&& f) {
  try {
    return f();
  } catch (const dnnl::error& e) {
    fail(std::string("oneDNN ") + what + ": " + e.what());
  }
}

// A float convolution's constants, once per plan: the weights (user layout `user_w`) reordered into the
// layout the primitive chose, the bias (when given) copied into its own memory.
void load_constants(DnnlEngine::Impl& env, const memory::desc& user_w, const float* w,
                    const memory::desc& chosen, const float* b, const memory::desc& b_md, memory& weights,
                    memory& bias) {
  memory user(user_w, env.engine, const_cast<float*>(w));
  weights = memory(chosen, env.engine);
  dnnl::reorder(user, weights).execute(env.stream, user, weights);
  if (b) {
    bias = memory(b_md, env.engine);
    std::memcpy(bias.get_data_handle(), b, b_md.get_size());
  }
  env.stream.wait();
}

}  // namespace

struct Conv2d::Impl {
  DnnlEngine::Impl* env = nullptr;
  dnnl::convolution_forward prim;
  std::string impl_name;
  memory::desc src_md, dst_md;
  memory weights, bias;
  bool has_bias = false;
  // oneDNN has no optimized kernel from a blocked source to a plain destination (it falls back to
  // ref:any, ~500x slower), so such convs write blocked into `staging` and reorder to plain.
  memory::desc conv_dst_md;
  memory staging;
  dnnl::reorder to_plain;
  dnnl::reorder to_staging;  // accumulating staged convs: the plain summand into the staging buffer
  // Sources the primitive wants in another layout than the graph's (see the constructor).
  memory src_staging;
  dnnl::reorder to_src;
};

Conv2d::Conv2d(DnnlEngine& engine, const ref::ConvShape& s, const ref::Window2d& win, const float* w,
               const float* b, const Activation& act, int src_block, int dst_block, bool accumulate)
    : impl_(std::make_unique<Impl>()) {
  wrap("convolution", [&] {
    auto& env = engine.impl();
    impl_->env = &env;
    const memory::dims src_dims{s.n, s.c, s.h, s.w};
    const memory::dims dst_dims{s.n, s.oc, s.oh, s.ow};
    const bool grouped = s.group > 1;
    const memory::dims w_dims = grouped ? memory::dims{s.group, s.oc / s.group, s.c / s.group, win.kh, win.kw}
                                        : memory::dims{s.oc, s.c, win.kh, win.kw};
    impl_->src_md = memory::desc(src_dims, dt::f32, act_tag(src_block));
    impl_->dst_md = memory::desc(dst_dims, dt::f32, act_tag(dst_block));
    bool stage = src_block != 0 && dst_block == 0;
    impl_->conv_dst_md = stage ? memory::desc(dst_dims, dt::f32, act_tag(src_block)) : impl_->dst_md;
    const memory::desc w_any(w_dims, dt::f32, tag::any);
    const memory::desc b_md({s.oc}, dt::f32, tag::x);
    impl_->has_bias = b != nullptr;
    // oneDNN counts dilation from 0 (ONNX's 1 means dense).
    auto make_pd = [&](const memory::desc& src, const memory::desc& dst) {
      dnnl::convolution_forward::desc desc =
          impl_->has_bias
              ? dnnl::convolution_forward::desc(dnnl::prop_kind::forward_inference,
                                                dnnl::algorithm::convolution_direct, src, w_any, b_md, dst,
                                                {win.stride_h, win.stride_w}, {win.dil_h - 1, win.dil_w - 1},
                                                {win.pad_top, win.pad_left}, {win.pad_bottom, win.pad_right})
              : dnnl::convolution_forward::desc(dnnl::prop_kind::forward_inference,
                                                dnnl::algorithm::convolution_direct, src, w_any, dst,
                                                {win.stride_h, win.stride_w}, {win.dil_h - 1, win.dil_w - 1},
                                                {win.pad_top, win.pad_left}, {win.pad_bottom, win.pad_right});
      return dnnl::convolution_forward::primitive_desc(desc, attr_for(act, accumulate), env.engine);
    };
    auto pd = make_pd(impl_->src_md, impl_->conv_dst_md);
    // A plain source feeding a blocked destination (a value whose channels do not fill whole blocks,
    // e.g. MobileNetV2's 24 channels with AVX-512's 16-channel blocks) has no optimized kernel either:
    // oneDNN falls back to ref:any, hundreds of times slower. Then let the primitive pick its layouts
    // and reorder around it (a reorder costs about one pass over the tensor).
    // Grouped convolutions on plain layouts get the im2col gemm kernel, which is slow for depthwise
    // (ConvNeXt's 7x7 between two Transposes): the same remedy applies.
    auto slow = [grouped](const std::string& impl) {
      return impl.rfind("ref", 0) == 0 || (grouped && impl.find("gemm") != std::string::npos);
    };
    if (slow(pd.impl_info_str())) {
      const memory::desc src_any(src_dims, dt::f32, tag::any), dst_any(dst_dims, dt::f32, tag::any);
      auto alt = make_pd(src_any, dst_any);
      if (!slow(alt.impl_info_str())) {
        pd = alt;
        if (pd.src_desc() != impl_->src_md) {
          impl_->src_staging = memory(pd.src_desc(), env.engine);
          impl_->to_src = dnnl::reorder(memory(impl_->src_md, env.engine), impl_->src_staging);
        }
        impl_->conv_dst_md = pd.dst_desc();
        stage = pd.dst_desc() != impl_->dst_md;
      }
    }
    impl_->prim = dnnl::convolution_forward(pd);
    impl_->impl_name = pd.impl_info_str();
    if (stage) {
      impl_->staging = memory(impl_->conv_dst_md, env.engine);
      impl_->to_plain = dnnl::reorder(impl_->staging, memory(impl_->dst_md, env.engine));
      if (accumulate) impl_->to_staging = dnnl::reorder(memory(impl_->dst_md, env.engine), impl_->staging);
    }
    load_constants(env, {w_dims, dt::f32, grouped ? tag::goihw : tag::oihw}, w, pd.weights_desc(), b, b_md,
                   impl_->weights, impl_->bias);
    return 0;
  });
}

Conv2d::~Conv2d() = default;

std::string Conv2d::implementation() const { return impl_->impl_name; }

void Conv2d::run(const float* x, float* y) {
  auto& env = *impl_->env;
  memory src(impl_->src_md, env.engine, const_cast<float*>(x));
  memory dst(impl_->dst_md, env.engine, y);
  const bool staged = static_cast<bool>(impl_->staging);
  const bool src_staged = static_cast<bool>(impl_->src_staging);
  std::unordered_map<int, memory> args{{DNNL_ARG_SRC, src_staged ? impl_->src_staging : src},
                                       {DNNL_ARG_WEIGHTS, impl_->weights},
                                       {DNNL_ARG_DST, staged ? impl_->staging : dst}};
  if (impl_->has_bias) args.emplace(DNNL_ARG_BIAS, impl_->bias);
  wrap("convolution", [&] {
    if (src_staged) impl_->to_src.execute(env.stream, src, impl_->src_staging);
    if (staged && impl_->to_staging) impl_->to_staging.execute(env.stream, dst, impl_->staging);
    impl_->prim.execute(env.stream, args);
    if (staged) impl_->to_plain.execute(env.stream, impl_->staging, dst);
    env.stream.wait();
    return 0;
  });
}

namespace {

// The int8 convolution's descriptor, channels-last in and out; `with_bias` adds an int32 bias.
dnnl::convolution_forward::primitive_desc int8_conv_pd(const dnnl::engine& engine, const ref::ConvShape& s,
                                                       const ref::Window2d& win, Int8Conv2d::Types types,
                                                       bool with_bias, const std::vector<float>& scales,
                                                       std::int32_t y_zero) {
  const memory::dims src_dims{s.n, s.c, s.h, s.w};
  const memory::dims dst_dims{s.n, s.oc, s.oh, s.ow};
  const bool grouped = s.group > 1;
  const memory::dims w_dims = grouped ? memory::dims{s.group, s.oc / s.group, s.c / s.group, win.kh, win.kw}
                                      : memory::dims{s.oc, s.c, win.kh, win.kw};
  const memory::desc src(src_dims, types.src_signed ? dt::s8 : dt::u8, tag::nhwc);
  const memory::desc dst(dst_dims, types.dst_signed ? dt::s8 : dt::u8, tag::nhwc);
  const memory::desc w_any(w_dims, dt::s8, tag::any);
  const memory::desc b_md({s.oc}, dt::s32, tag::x);
  dnnl::primitive_attr attr;
  attr.set_zero_points(DNNL_ARG_SRC, 0, {DNNL_RUNTIME_S32_VAL});
  // Not oneDNN's dst zero point: it is added in float before the rounding, and v + z rounds in float32
  // (at 84.5000005 it is 84.5, a tie), where ONNX Runtime adds z to the rounded integer. Rounding as a
  // post-op first (half to even, like cvtps2dq) and then adding z keeps every value an exact integer.
  dnnl::post_ops ops;
  ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_round, 0.0f, 0.0f);
  if (y_zero != 0)
    ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_linear, 1.0f, static_cast<float>(y_zero));
  attr.set_post_ops(ops);
  // One scale per output channel (mask bit 1: the channel dimension of dst).
  attr.set_output_scales(1 << 1,
                         scales.empty() ? std::vector<float>(static_cast<std::size_t>(s.oc), 1.0f) : scales);
  const auto desc = with_bias
                        ? dnnl::convolution_forward::desc(
                              dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct, src,
                              w_any, b_md, dst, {win.stride_h, win.stride_w}, {win.dil_h - 1, win.dil_w - 1},
                              {win.pad_top, win.pad_left}, {win.pad_bottom, win.pad_right})
                        : dnnl::convolution_forward::desc(
                              dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct, src,
                              w_any, dst, {win.stride_h, win.stride_w}, {win.dil_h - 1, win.dil_w - 1},
                              {win.pad_top, win.pad_left}, {win.pad_bottom, win.pad_right});
  return {desc, attr, engine};
}

// Kernels built for VNNI or AMX multiply bytes exactly; oneDNN names them after the ISA they use.
bool exact_int8_impl(const std::string& impl) {
  return impl.rfind("ref", 0) != 0 && impl.find("gemm") == std::string::npos &&
         (impl.find("vnni") != std::string::npos || impl.find("amx") != std::string::npos);
}

}  // namespace

struct Int8Conv2d::Impl {
  DnnlEngine::Impl* env = nullptr;
  dnnl::convolution_forward prim;
  std::string impl_name;
  memory::desc src_md, dst_md;  // the graph's layouts
  memory weights, bias, x_zero;
  std::int32_t x_zero_value = 0;
  bool has_bias = false;
  // Channels-last copies of a plain source / destination.
  memory src_staging, dst_staging;
  dnnl::reorder to_src, from_dst;
};

bool Int8Conv2d::exact_kernel_available(const ref::ConvShape& s, const ref::Window2d& win, Types types) {
  const auto isa = static_cast<unsigned>(dnnl::get_effective_cpu_isa());
  const auto avx512_vnni = static_cast<unsigned>(dnnl::cpu_isa::avx512_core_vnni);
  const auto avx2_vnni = static_cast<unsigned>(dnnl::cpu_isa::avx2_vnni);
  if ((isa & avx512_vnni) != avx512_vnni && (isa & avx2_vnni) != avx2_vnni) return false;
  try {
    const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
    return exact_int8_impl(int8_conv_pd(engine, s, win, types, true, {}, 1).impl_info_str());
  } catch (const dnnl::error&) {
    return false;
  }
}

Int8Conv2d::Int8Conv2d(DnnlEngine& engine, const ref::ConvShape& s, const ref::Window2d& win,
                       const std::int8_t* w, const std::int32_t* b, const float* scale, std::int32_t y_zero,
                       Types types, int src_layout, int dst_layout)
    : impl_(std::make_unique<Impl>()) {
  wrap("int8 convolution", [&] {
    auto& env = engine.impl();
    impl_->env = &env;
    impl_->has_bias = b != nullptr;
    const std::vector<float> scales(scale, scale + s.oc);
    const auto pd = int8_conv_pd(env.engine, s, win, types, impl_->has_bias, scales, y_zero);
    impl_->impl_name = pd.impl_info_str();
    if (!exact_int8_impl(impl_->impl_name)) fail("oneDNN offers no exact int8 kernel: " + impl_->impl_name);
    impl_->prim = dnnl::convolution_forward(pd);
    impl_->src_md = memory::desc(pd.src_desc().dims(), pd.src_desc().data_type(), act_tag(src_layout));
    impl_->dst_md = memory::desc(pd.dst_desc().dims(), pd.dst_desc().data_type(), act_tag(dst_layout));
    if (impl_->src_md != pd.src_desc()) {
      impl_->src_staging = memory(pd.src_desc(), env.engine);
      impl_->to_src = dnnl::reorder(memory(impl_->src_md, env.engine), impl_->src_staging);
    }
    if (impl_->dst_md != pd.dst_desc()) {
      impl_->dst_staging = memory(pd.dst_desc(), env.engine);
      impl_->from_dst = dnnl::reorder(impl_->dst_staging, memory(impl_->dst_md, env.engine));
    }
    const bool grouped = s.group > 1;
    const memory::dims w_dims = grouped ? memory::dims{s.group, s.oc / s.group, s.c / s.group, win.kh, win.kw}
                                        : memory::dims{s.oc, s.c, win.kh, win.kw};
    memory user_w({w_dims, dt::s8, grouped ? tag::goihw : tag::oihw}, env.engine,
                  const_cast<std::int8_t*>(w));
    impl_->weights = memory(pd.weights_desc(), env.engine);
    dnnl::reorder(user_w, impl_->weights).execute(env.stream, user_w, impl_->weights);
    if (impl_->has_bias) {
      impl_->bias = memory({{s.oc}, dt::s32, tag::x}, env.engine);
      std::memcpy(impl_->bias.get_data_handle(), b, static_cast<std::size_t>(s.oc) * sizeof(std::int32_t));
    }
    impl_->x_zero = memory({{1}, dt::s32, tag::x}, env.engine, &impl_->x_zero_value);
    env.stream.wait();
    return 0;
  });
}

Int8Conv2d::~Int8Conv2d() = default;

std::string Int8Conv2d::implementation() const { return impl_->impl_name; }

void Int8Conv2d::run(const void* x, std::int32_t x_zero, void* y) {
  auto& env = *impl_->env;
  impl_->x_zero_value = x_zero;
  memory src(impl_->src_md, env.engine, const_cast<void*>(x));
  memory dst(impl_->dst_md, env.engine, y);
  const bool src_staged = static_cast<bool>(impl_->src_staging);
  const bool dst_staged = static_cast<bool>(impl_->dst_staging);
  std::unordered_map<int, memory> args{{DNNL_ARG_SRC, src_staged ? impl_->src_staging : src},
                                       {DNNL_ARG_WEIGHTS, impl_->weights},
                                       {DNNL_ARG_DST, dst_staged ? impl_->dst_staging : dst},
                                       {DNNL_ARG_ATTR_ZERO_POINTS | DNNL_ARG_SRC, impl_->x_zero}};
  if (impl_->has_bias) args.emplace(DNNL_ARG_BIAS, impl_->bias);
  wrap("int8 convolution", [&] {
    if (src_staged) impl_->to_src.execute(env.stream, src, impl_->src_staging);
    impl_->prim.execute(env.stream, args);
    if (dst_staged) impl_->from_dst.execute(env.stream, impl_->dst_staging, dst);
    env.stream.wait();
    return 0;
  });
}

struct Deconv::Impl {
  DnnlEngine::Impl* env = nullptr;
  dnnl::deconvolution_forward prim;
  std::string impl_name;
  memory::desc src_md, dst_md;
  memory weights, bias;
  bool has_bias = false;
};

Deconv::Deconv(DnnlEngine& engine, const ref::ConvTransposeShape& s, const float* w, const float* b,
               const Activation& act)
    : impl_(std::make_unique<Impl>()) {
  if (s.spatial < 1 || s.spatial > ref::ConvTransposeShape::kMaxSpatial) {
    fail("oneDNN deconvolution: " + std::to_string(s.spatial) + " spatial dims are not supported");
  }
  for (int d = 0; d < s.spatial; ++d) {
    if (s.pad_begin[d] < 0)
      fail("oneDNN deconvolution: negative leading pad " + std::to_string(s.pad_begin[d]));
  }
  wrap("deconvolution", [&] {
    auto& env = engine.impl();
    impl_->env = &env;
    const auto sp = static_cast<std::size_t>(s.spatial);
    memory::dims src_dims{s.n, s.c}, dst_dims{s.n, s.oc};
    memory::dims w_dims =
        s.group > 1 ? memory::dims{s.group, s.oc / s.group, s.c / s.group} : memory::dims{s.oc, s.c};
    memory::dims strides, dilates, pad_l, pad_r;
    for (std::size_t d = 0; d < sp; ++d) {
      src_dims.push_back(s.in[d]);
      dst_dims.push_back(s.out[d]);
      w_dims.push_back(s.kernel[d]);
      strides.push_back(s.stride[d]);
      dilates.push_back(s.dilation[d] - 1);  // oneDNN counts dilation from 0 (ONNX's 1 means dense)
      pad_l.push_back(s.pad_begin[d]);
      // oneDNN's output size formula has no output_padding: it is folded into the trailing pad.
      pad_r.push_back(s.pad_end[d]);
    }
    // Plain activations by rank; the ONNX weights [C, OC/g, k...] are (i, o, k...) in memory, which the
    // generic tags spell as the logical (o, i, k...) order with the first two letters swapped.
    static constexpr tag kAct[] = {tag::abc, tag::abcd, tag::abcde};
    static constexpr tag kW[] = {tag::bac, tag::bacd, tag::bacde};
    static constexpr tag kGroupedW[] = {tag::acbd, tag::acbde, tag::acbdef};
    impl_->src_md = memory::desc(src_dims, dt::f32, kAct[sp - 1]);
    impl_->dst_md = memory::desc(dst_dims, dt::f32, kAct[sp - 1]);
    const memory::desc w_any(w_dims, dt::f32, tag::any);
    const memory::desc b_md({s.oc}, dt::f32, tag::x);
    impl_->has_bias = b != nullptr;
    const auto desc = impl_->has_bias
                          ? dnnl::deconvolution_forward::desc(
                                dnnl::prop_kind::forward_inference, dnnl::algorithm::deconvolution_direct,
                                impl_->src_md, w_any, b_md, impl_->dst_md, strides, dilates, pad_l, pad_r)
                          : dnnl::deconvolution_forward::desc(
                                dnnl::prop_kind::forward_inference, dnnl::algorithm::deconvolution_direct,
                                impl_->src_md, w_any, impl_->dst_md, strides, dilates, pad_l, pad_r);
    dnnl::deconvolution_forward::primitive_desc pd(desc, attr_for(act), env.engine);
    impl_->prim = dnnl::deconvolution_forward(pd);
    impl_->impl_name = pd.impl_info_str();
    memory user_w({w_dims, dt::f32, s.group > 1 ? kGroupedW[sp - 1] : kW[sp - 1]}, env.engine,
                  const_cast<float*>(w));
    impl_->weights = memory(pd.weights_desc(), env.engine);
    dnnl::reorder(user_w, impl_->weights).execute(env.stream, user_w, impl_->weights);
    if (impl_->has_bias) {
      impl_->bias = memory(b_md, env.engine);
      std::memcpy(impl_->bias.get_data_handle(), b, static_cast<std::size_t>(s.oc) * sizeof(float));
    }
    env.stream.wait();
    return 0;
  });
}

Deconv::~Deconv() = default;

std::string Deconv::implementation() const { return impl_->impl_name; }

void Deconv::run(const float* x, float* y) {
  auto& env = *impl_->env;
  memory src(impl_->src_md, env.engine, const_cast<float*>(x));
  memory dst(impl_->dst_md, env.engine, y);
  std::unordered_map<int, memory> args{
      {DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, impl_->weights}, {DNNL_ARG_DST, dst}};
  if (impl_->has_bias) args.emplace(DNNL_ARG_BIAS, impl_->bias);
  wrap("deconvolution", [&] {
    impl_->prim.execute(env.stream, args);
    env.stream.wait();
    return 0;
  });
}

struct Conv3d::Impl {
  DnnlEngine::Impl* env = nullptr;
  dnnl::convolution_forward prim;
  std::string impl_name;
  memory::desc src_md, dst_md;     // the graph's plain ncdhw
  memory src, dst, weights, bias;  // in the primitive's layouts
  dnnl::reorder to_src, to_plain;
  bool has_bias = false, reorder_src = false, reorder_dst = false;
};

Conv3d::Conv3d(DnnlEngine& engine, const ref::Conv3dShape& s, const ref::Window3d& win, const float* w,
               const float* b, const Activation& act)
    : impl_(std::make_unique<Impl>()) {
  wrap("3-D convolution", [&] {
    auto& env = engine.impl();
    impl_->env = &env;
    const memory::dims src_dims{s.n, s.c, s.in[0], s.in[1], s.in[2]};
    const memory::dims dst_dims{s.n, s.oc, s.out[0], s.out[1], s.out[2]};
    const bool grouped = s.group > 1;
    const memory::dims w_dims = grouped
                                    ? memory::dims{s.group,       s.oc / s.group, s.c / s.group,
                                                   win.kernel[0], win.kernel[1],  win.kernel[2]}
                                    : memory::dims{s.oc, s.c, win.kernel[0], win.kernel[1], win.kernel[2]};
    impl_->src_md = memory::desc(src_dims, dt::f32, tag::ncdhw);
    impl_->dst_md = memory::desc(dst_dims, dt::f32, tag::ncdhw);
    const memory::desc src_any(src_dims, dt::f32, tag::any), dst_any(dst_dims, dt::f32, tag::any);
    const memory::desc w_any(w_dims, dt::f32, tag::any), b_md({s.oc}, dt::f32, tag::x);
    impl_->has_bias = b != nullptr;
    const memory::dims strides{win.stride[0], win.stride[1], win.stride[2]};
    // oneDNN counts dilation from 0 (ONNX's 1 means dense).
    const memory::dims dil{win.dilation[0] - 1, win.dilation[1] - 1, win.dilation[2] - 1};
    const memory::dims pad_l{win.pad_begin[0], win.pad_begin[1], win.pad_begin[2]};
    const memory::dims pad_r{win.pad_end[0], win.pad_end[1], win.pad_end[2]};
    const auto desc = impl_->has_bias
                          ? dnnl::convolution_forward::desc(dnnl::prop_kind::forward_inference,
                                                            dnnl::algorithm::convolution_direct, src_any,
                                                            w_any, b_md, dst_any, strides, dil, pad_l, pad_r)
                          : dnnl::convolution_forward::desc(dnnl::prop_kind::forward_inference,
                                                            dnnl::algorithm::convolution_direct, src_any,
                                                            w_any, dst_any, strides, dil, pad_l, pad_r);
    const dnnl::convolution_forward::primitive_desc pd(desc, attr_for(act), env.engine);
    impl_->prim = dnnl::convolution_forward(pd);
    impl_->impl_name = pd.impl_info_str();
    impl_->reorder_src = pd.src_desc() != impl_->src_md;
    impl_->reorder_dst = pd.dst_desc() != impl_->dst_md;
    if (impl_->reorder_src) {
      impl_->src = memory(pd.src_desc(), env.engine);
      impl_->to_src = dnnl::reorder(memory(impl_->src_md, env.engine), impl_->src);
    }
    if (impl_->reorder_dst) {
      impl_->dst = memory(pd.dst_desc(), env.engine);
      impl_->to_plain = dnnl::reorder(impl_->dst, memory(impl_->dst_md, env.engine));
    }
    load_constants(env, {w_dims, dt::f32, grouped ? tag::goidhw : tag::oidhw}, w, pd.weights_desc(), b, b_md,
                   impl_->weights, impl_->bias);
    return 0;
  });
}

Conv3d::~Conv3d() = default;

std::string Conv3d::implementation() const { return impl_->impl_name; }

void Conv3d::run(const float* x, float* y) {
  auto& env = *impl_->env;
  memory src(impl_->src_md, env.engine, const_cast<float*>(x));
  memory dst(impl_->dst_md, env.engine, y);
  std::unordered_map<int, memory> args{{DNNL_ARG_SRC, impl_->reorder_src ? impl_->src : src},
                                       {DNNL_ARG_WEIGHTS, impl_->weights},
                                       {DNNL_ARG_DST, impl_->reorder_dst ? impl_->dst : dst}};
  if (impl_->has_bias) args.emplace(DNNL_ARG_BIAS, impl_->bias);
  wrap("3-D convolution", [&] {
    if (impl_->reorder_src) impl_->to_src.execute(env.stream, src, impl_->src);
    impl_->prim.execute(env.stream, args);
    if (impl_->reorder_dst) impl_->to_plain.execute(env.stream, impl_->dst, dst);
    env.stream.wait();
    return 0;
  });
}

struct Pool2d::Impl {
  DnnlEngine::Impl* env = nullptr;
  dnnl::pooling_v2_forward prim;
  std::string impl_name;
  memory::desc src_md, dst_md;
};

Pool2d::Pool2d(DnnlEngine& engine, const ref::PoolShape& s, const ref::Window2d& win, Kind kind, int block,
               Data data)
    : impl_(std::make_unique<Impl>()) {
  if (data != Data::kFloat32 && kind != Kind::kMax) fail("internal: integer pooling is max pooling only");
  const dt type = data == Data::kUInt8 ? dt::u8 : data == Data::kInt8 ? dt::s8 : dt::f32;
  wrap("pooling", [&] {
    auto& env = engine.impl();
    impl_->env = &env;
    impl_->src_md = memory::desc({s.n, s.c, s.h, s.w}, type, act_tag(block));
    impl_->dst_md = memory::desc({s.n, s.c, s.oh, s.ow}, type, act_tag(block));
    const auto alg = kind == Kind::kMax             ? dnnl::algorithm::pooling_max
                     : kind == Kind::kAvgIncludePad ? dnnl::algorithm::pooling_avg_include_padding
                                                    : dnnl::algorithm::pooling_avg_exclude_padding;
    dnnl::pooling_v2_forward::desc desc(dnnl::prop_kind::forward_inference, alg, impl_->src_md, impl_->dst_md,
                                        {win.stride_h, win.stride_w}, {win.kh, win.kw},
                                        {win.dil_h - 1, win.dil_w - 1}, {win.pad_top, win.pad_left},
                                        {win.pad_bottom, win.pad_right});
    const dnnl::pooling_v2_forward::primitive_desc pd(desc, env.engine);
    impl_->prim = dnnl::pooling_v2_forward(pd);
    impl_->impl_name = pd.impl_info_str();
    return 0;
  });
}

Pool2d::~Pool2d() = default;

std::string Pool2d::implementation() const { return impl_->impl_name; }

void Pool2d::run(const void* x, void* y) {
  auto& env = *impl_->env;
  memory src(impl_->src_md, env.engine, const_cast<void*>(x));
  memory dst(impl_->dst_md, env.engine, y);
  wrap("pooling", [&] {
    impl_->prim.execute(env.stream, {{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, dst}});
    env.stream.wait();
    return 0;
  });
}

void global_avg_pool_plain(std::int64_t nc, std::int64_t hw, const float* x, float* y, ThreadPool& pool) {
  pool.parallel_for(nc, [&](std::int64_t b, std::int64_t e) {
    for (std::int64_t r = b; r < e; ++r) {
      const float* src = x + r * hw;
      double part[8] = {};
      std::int64_t j = 0;
      for (; j + 8 <= hw; j += 8) {
        for (int l = 0; l < 8; ++l) part[l] += src[j + l];
      }
      for (int l = 0; j < hw; ++j, ++l) part[l] += src[j];
      const double sum =
          ((part[0] + part[1]) + (part[2] + part[3])) + ((part[4] + part[5]) + (part[6] + part[7]));
      y[r] = static_cast<float>(sum / static_cast<double>(hw));
    }
  });
}

void global_avg_pool_blocked(std::int64_t n, std::int64_t c, std::int64_t hw, int block, const float* x,
                             float* y, bool y_blocked) {
  // x is [N][C/block][HW][block]; accumulate each block's lanes over HW in double like the reference.
  const std::int64_t cb = c / block;
  std::vector<double> acc(static_cast<std::size_t>(block));
  for (std::int64_t i = 0; i < n; ++i) {
    for (std::int64_t b = 0; b < cb; ++b) {
      std::fill(acc.begin(), acc.end(), 0.0);
      const float* src = x + ((i * cb + b) * hw) * block;
      for (std::int64_t p = 0; p < hw; ++p) {
        for (int l = 0; l < block; ++l) acc[l] += src[p * block + l];
      }
      for (int l = 0; l < block; ++l) {
        // Blocked [N, C, 1, 1] and plain [N, C] coincide in memory order when C % block == 0.
        y[i * c + b * block + l] = static_cast<float>(acc[l] / static_cast<double>(hw));
      }
    }
  }
  (void)y_blocked;
}

void sgemm(bool trans_a, bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k, float alpha,
           const float* a, const float* b, float beta, float* c) {
  if (trans_a && m > 0 && k > 0) {
    // Made row-major once: the small-m path below needs rows, and both paths must agree.
    std::vector<float> at(static_cast<std::size_t>(m * k));
    for (std::int64_t i = 0; i < m; ++i) {
      for (std::int64_t j = 0; j < k; ++j) at[i * k + j] = a[j * m + i];
    }
    return sgemm(false, trans_b, m, n, k, alpha, at.data(), b, beta, c);
  }
  const std::int64_t rows = trans_b ? kSgemmMinRowsTransB : kSgemmMinRows;
  if (m > 0 && m < rows) {
    // Rows of A and C copied into a zero-padded block of `rows`.
    std::vector<float> pa(static_cast<std::size_t>(rows * k), 0.0f),
        pc(static_cast<std::size_t>(rows * n), 0.0f);
    for (std::int64_t i = 0; i < m; ++i) {
      for (std::int64_t j = 0; j < k; ++j) pa[i * k + j] = a[i * k + j];
    }
    if (beta != 0.0f) std::copy(c, c + m * n, pc.begin());
    sgemm(false, trans_b, rows, n, k, alpha, pa.data(), b, beta, pc.data());
    std::copy(pc.begin(), pc.begin() + m * n, c);
    return;
  }
  const dnnl_status_t st = dnnl_sgemm(trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', m, n, k, alpha, a,
                                      trans_a ? m : k, b, trans_b ? k : n, beta, c, n);
  if (st != dnnl_success) fail("oneDNN sgemm failed with status " + std::to_string(static_cast<int>(st)));
}

}  // namespace aciq::kernels::fast
