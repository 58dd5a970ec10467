// Tensor storage, shape arithmetic and dtype helpers.
#include <algorithm>
#include <cstring>
#include <limits>
#include <new>

#include "aciq/core.hpp"

namespace aciq {

void fail(const std::string& message) { throw Error(message); }

std::size_t dtype_size(DType dtype) {
  switch (dtype) {
    case DType::kFloat32: return 4;
    case DType::kInt64: return 8;
    case DType::kInt32: return 4;
    case DType::kUInt8:
    case DType::kInt8:
    case DType::kBool: return 1;
  }
  return 1;
}

std::string_view dtype_name(DType dtype) {
  switch (dtype) {
    case DType::kFloat32: return "float32";
    case DType::kInt64: return "int64";
    case DType::kInt32: return "int32";
    case DType::kUInt8: return "uint8";
    case DType::kInt8: return "int8";
    case DType::kBool: return "bool";
  }
  return "?";
}

std::int64_t shape_numel(std::span<const std::int64_t> shape) {
  std::int64_t n = 1;
  for (std::int64_t d : shape) {
    if (d < 0) fail("negative dimension in shape " + shape_str(shape));
    if (d != 0 && n > kMaxTensorElements / d) {
      fail("shape " + shape_str(shape) + " exceeds the limit of " + std::to_string(kMaxTensorElements) +
           " elements");
    }
    n *= d;
  }
  return n;
}

std::string shape_str(std::span<const std::int64_t> shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ",";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

namespace {
struct AlignedDelete {
  void operator()(std::byte* p) const { ::operator delete[](p, std::align_val_t{64}); }
};
std::shared_ptr<std::byte[]> allocate(std::size_t bytes) {
  // Never allocate zero bytes: an empty tensor still has a valid (unique) pointer.
  const std::size_t n = std::max<std::size_t>(bytes, 64);
  auto* p = static_cast<std::byte*>(::operator new[](n, std::align_val_t{64}));
  std::memset(p, 0, n);
  return {p, AlignedDelete{}};
}
}  // namespace

Tensor::Tensor(DType dtype, Shape shape) : dtype_(dtype), shape_(std::move(shape)) {
  numel_ = shape_numel(shape_);
  capacity_ = static_cast<std::size_t>(numel_) * dtype_size(dtype_);
  storage_ = allocate(capacity_);
}

Tensor Tensor::view(DType dtype, Shape shape) const {
  const std::int64_t n = shape_numel(shape);
  if (static_cast<std::size_t>(n) * dtype_size(dtype) > capacity_) {
    fail("view " + shape_str(shape) + " does not fit a buffer of " + std::to_string(capacity_) + " bytes");
  }
  Tensor t = *this;
  t.dtype_ = dtype;
  t.shape_ = std::move(shape);
  t.numel_ = n;
  return t;
}

Tensor Tensor::scalar_f32(float v) {
  Tensor t(DType::kFloat32, {});
  t.data<float>()[0] = v;
  return t;
}

Tensor Tensor::from_f32(Shape shape, std::span<const float> values) {
  Tensor t(DType::kFloat32, std::move(shape));
  if (static_cast<std::int64_t>(values.size()) != t.numel()) fail("from_f32: value count does not match shape");
  std::copy(values.begin(), values.end(), t.data<float>());
  return t;
}

Tensor Tensor::from_i64(Shape shape, std::span<const std::int64_t> values) {
  Tensor t(DType::kInt64, std::move(shape));
  if (static_cast<std::int64_t>(values.size()) != t.numel()) fail("from_i64: value count does not match shape");
  std::copy(values.begin(), values.end(), t.data<std::int64_t>());
  return t;
}

std::span<float> Tensor::f32() {
  if (dtype_ != DType::kFloat32) fail("expected a float32 tensor, got " + std::string(dtype_name(dtype_)));
  return {data<float>(), static_cast<std::size_t>(numel_)};
}
std::span<const float> Tensor::f32() const {
  if (dtype_ != DType::kFloat32) fail("expected a float32 tensor, got " + std::string(dtype_name(dtype_)));
  return {data<float>(), static_cast<std::size_t>(numel_)};
}
std::span<std::int64_t> Tensor::i64() {
  if (dtype_ != DType::kInt64) fail("expected an int64 tensor, got " + std::string(dtype_name(dtype_)));
  return {data<std::int64_t>(), static_cast<std::size_t>(numel_)};
}
std::span<const std::int64_t> Tensor::i64() const {
  if (dtype_ != DType::kInt64) fail("expected an int64 tensor, got " + std::string(dtype_name(dtype_)));
  return {data<std::int64_t>(), static_cast<std::size_t>(numel_)};
}

Tensor Tensor::reshaped(Shape shape) const {
  if (shape_numel(shape) != numel_) {
    fail("cannot reshape " + shape_str(shape_) + " to " + shape_str(shape));
  }
  Tensor t = *this;
  t.shape_ = std::move(shape);
  return t;
}

Tensor Tensor::clone() const {
  Tensor t(dtype_, shape_);
  if (numel_ > 0) std::memcpy(t.raw(), raw(), nbytes());
  return t;
}

std::vector<std::int64_t> Tensor::to_i64_vector() const {
  std::vector<std::int64_t> out(static_cast<std::size_t>(numel_));
  for (std::int64_t i = 0; i < numel_; ++i) {
    switch (dtype_) {
      case DType::kInt64: out[i] = data<std::int64_t>()[i]; break;
      case DType::kInt32: out[i] = data<std::int32_t>()[i]; break;
      case DType::kUInt8:
      case DType::kBool: out[i] = data<std::uint8_t>()[i]; break;
      case DType::kInt8: out[i] = data<std::int8_t>()[i]; break;
      case DType::kFloat32: fail("expected an integer tensor, got float32");
    }
  }
  return out;
}

Tensor Tensor::to_f32() const {
  if (dtype_ == DType::kFloat32) return *this;
  Tensor t(DType::kFloat32, shape_);
  float* out = t.data<float>();
  for (std::int64_t i = 0; i < numel_; ++i) {
    switch (dtype_) {
      case DType::kInt64: out[i] = static_cast<float>(data<std::int64_t>()[i]); break;
      case DType::kInt32: out[i] = static_cast<float>(data<std::int32_t>()[i]); break;
      case DType::kUInt8:
      case DType::kBool: out[i] = data<std::uint8_t>()[i]; break;
      case DType::kInt8: out[i] = data<std::int8_t>()[i]; break;
      case DType::kFloat32: break;
    }
  }
  return t;
}

}  // namespace aciq
