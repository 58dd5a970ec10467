// Core types shared by every aciq component: errors, shapes, tensors and the execution context.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace aciq {

// Every library error is an aciq::Error whose message already carries its context
// (file, node, shape); the CLI prints what() on one line and exits non-zero.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Builds an Error message "ctx: what" so call sites can prepend context when rethrowing.
[[noreturn]] void fail(const std::string& message);

// 64-bit FNV-1a of `bytes` as 16 hex digits: the model hash statistics and plans are tied to, and
// the file hashes result files record.
std::string content_hash(std::string_view bytes);
// content_hash of a whole file's bytes; throws naming the file when it cannot be read.
std::string file_hash(const std::string& path);

// Up to `count` of `candidates` closest to `name` by edit distance (ties in candidate order), only
// those within half of name's length: the "did you mean" of error messages.
std::vector<std::string> closest_matches(std::string_view name, const std::vector<std::string>& candidates,
                                         std::size_t count = 3);

enum class DType : std::uint8_t { kFloat32, kInt64, kInt32, kUInt8, kInt8, kBool };

std::size_t dtype_size(DType dtype);
std::string_view dtype_name(DType dtype);

using Shape = std::vector<std::int64_t>;

// Upper bound on the elements of any tensor aciq will allocate; models or datasets that
// declare more are refused before allocation instead of exhausting memory.
inline constexpr std::int64_t kMaxTensorElements = std::int64_t{1} << 32;

// Number of elements of a shape; throws on negative dims or overflow past kMaxTensorElements.
std::int64_t shape_numel(std::span<const std::int64_t> shape);
std::string shape_str(std::span<const std::int64_t> shape);

// A dense, row-major tensor with shared, 64-byte aligned storage. Copies share the buffer;
// clone() makes a deep copy.
class Tensor {
 public:
  Tensor() = default;
  Tensor(DType dtype, Shape shape);  // zero-initialized

  static Tensor scalar_f32(float v);
  static Tensor from_f32(Shape shape, std::span<const float> values);
  static Tensor from_i64(Shape shape, std::span<const std::int64_t> values);

  [[nodiscard]] DType dtype() const { return dtype_; }
  [[nodiscard]] const Shape& shape() const { return shape_; }
  [[nodiscard]] std::int64_t numel() const { return numel_; }
  [[nodiscard]] std::int64_t dim(std::size_t i) const { return shape_.at(i); }
  [[nodiscard]] std::size_t rank() const { return shape_.size(); }
  [[nodiscard]] std::size_t nbytes() const { return static_cast<std::size_t>(numel_) * dtype_size(dtype_); }
  [[nodiscard]] bool empty() const { return !storage_; }

  [[nodiscard]] void* raw() { return storage_.get(); }
  [[nodiscard]] const void* raw() const { return storage_.get(); }

  template <typename T>
  [[nodiscard]] T* data() {
    return static_cast<T*>(raw());
  }
  template <typename T>
  [[nodiscard]] const T* data() const {
    return static_cast<const T*>(raw());
  }
  [[nodiscard]] std::span<float> f32();
  [[nodiscard]] std::span<const float> f32() const;
  [[nodiscard]] std::span<std::int64_t> i64();
  [[nodiscard]] std::span<const std::int64_t> i64() const;

  // A tensor of another dtype/shape over this tensor's storage (arena reuse); throws when it
  // does not fit in the allocated capacity.
  [[nodiscard]] Tensor view(DType dtype, Shape shape) const;
  [[nodiscard]] std::size_t capacity() const { return capacity_; }

  // Same storage, new shape of equal element count.
  [[nodiscard]] Tensor reshaped(Shape shape) const;
  [[nodiscard]] Tensor clone() const;
  // Values of an integer tensor (int64/int32/uint8/int8/bool) widened to int64.
  [[nodiscard]] std::vector<std::int64_t> to_i64_vector() const;
  // Values converted to float (any dtype).
  [[nodiscard]] Tensor to_f32() const;

 private:
  DType dtype_ = DType::kFloat32;
  Shape shape_;
  std::int64_t numel_ = 0;
  std::size_t capacity_ = 0;
  std::shared_ptr<std::byte[]> storage_;
};

// An elementwise activation as kernels fuse it behind a producer (oneDNN post-op, the quantizer's
// pass, or a separate SIMD pass). NaN passes through every kind, like the ONNX operators.
struct Activation {
  // kSwish: x * sigmoid(x), the SiLU that exporters write as Sigmoid + Mul; kHardSwish: x * max(0, min(1,
  // alpha x + beta)), written as HardSigmoid + Mul (both fused into a Conv by the fast backend).
  enum class Kind : std::uint8_t { kNone, kRelu, kClip, kLeakyRelu, kSwish, kHardSwish };
  Kind kind = Kind::kNone;
  float lo = 0.0f, hi = 0.0f, alpha = 0.0f;  // kClip bounds; kLeakyRelu slope; kHardSwish alpha
  float beta = 0.0f;                         // kHardSwish
};

// A fixed number of worker threads (the OpenMP team oneDNN uses, docs/threading.md); parallel_for
// splits [0, n) into contiguous chunks.
class ThreadPool {
 public:
  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  [[nodiscard]] int size() const { return threads_; }
  // Calls fn(begin, end) on disjoint chunks covering [0, n); returns when all are done.
  // Exceptions thrown by fn are rethrown here (the first one).
  void parallel_for(std::int64_t n, const std::function<void(std::int64_t, std::int64_t)>& fn);

 private:
  struct Impl;
  int threads_;
  std::unique_ptr<Impl> impl_;
};

// Everything a kernel or the executor may need from its environment, passed explicitly.
struct Context {
  explicit Context(int threads = 1);
  [[nodiscard]] int threads() const { return pool->size(); }
  std::shared_ptr<ThreadPool> pool;
};

}  // namespace aciq
