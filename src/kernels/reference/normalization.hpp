// Reference kernels for LayerNormalization, InstanceNormalization, GroupNormalization, LRN and LogSoftmax on
// float data.
#pragma once

#include <cstdint>

namespace aciq::kernels::ref {

// Normalizes each of `outer` contiguous rows of `inner` elements: y = (x - mean) * inv_std * scale + bias,
// inv_std = 1 / sqrt(var + epsilon), with scale/bias of `inner` elements (bias may be null). Writes the
// row statistics to mean/inv_std when they are non-null. Statistics are computed in double, two-pass.
void layer_norm(std::int64_t outer, std::int64_t inner, double epsilon, const float* x, const float* scale,
                const float* bias, float* y, float* mean, float* inv_std);

// Normalizes each (n, c) plane of `inner` elements of [n, c, inner] data with per-channel scale/bias.
void instance_norm(std::int64_t n, std::int64_t c, std::int64_t inner, double epsilon, const float* x,
                   const float* scale, const float* bias, float* y);

// GroupNormalization of [n, c, inner] data: the channels of each sample in `groups` consecutive groups of
// c / groups, each group normalized over its c / groups * inner elements; then scale and bias per channel
// (`per_channel`, opset 21) or per group (opset 18's form).
void group_norm(std::int64_t n, std::int64_t c, std::int64_t groups, std::int64_t inner, double epsilon,
                const float* x, const float* scale, const float* bias, bool per_channel, float* y);

// Cross-channel local response normalization of [n, c, inner] data (ONNX LRN): the window over channels
// spans floor((size - 1) / 2) before and ceil((size - 1) / 2) after each channel, clipped at the edges;
// y = x / (bias + alpha / size * sum of squares)^beta.
void lrn(std::int64_t n, std::int64_t c, std::int64_t inner, std::int64_t size, double alpha, double beta,
         double bias, const float* x, float* y);

// log(softmax) along the middle axis of data viewed as [outer, axis_len, inner]: x - max - log(sum exp(x -
// max)).
void log_softmax(std::int64_t outer, std::int64_t axis_len, std::int64_t inner, const float* x, float* y);

}  // namespace aciq::kernels::ref
