// Graph IR: nodes, attributes and initializers imported from ONNX, plus the graph-level passes.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "aciq/core.hpp"

namespace aciq::graph {

// The ai.onnx opsets the importer accepts; operators implement the forms of every opset in this range.
inline constexpr std::int64_t kMinOpset = 7;
inline constexpr std::int64_t kMaxOpset = 21;

struct Attribute {
  enum class Kind : std::uint8_t { kInt, kFloat, kString, kInts, kFloats, kTensor, kOther };
  Kind kind = Kind::kOther;
  std::int64_t i = 0;
  float f = 0.0f;
  std::string s;
  std::vector<std::int64_t> ints;
  std::vector<float> floats;
  Tensor t;
};

struct Node {
  std::string name;                 // unique; generated as "<op_type>_<index>" when the model has none
  std::string op_type;              // ONNX op type, e.g. "Conv"
  std::vector<std::string> inputs;  // "" marks an omitted optional input
  std::vector<std::string> outputs;
  std::map<std::string, Attribute> attrs;

  [[nodiscard]] bool has(const std::string& key) const { return attrs.count(key) != 0; }
  [[nodiscard]] std::int64_t get_int(const std::string& key, std::int64_t fallback) const;
  [[nodiscard]] float get_float(const std::string& key, float fallback) const;
  [[nodiscard]] std::string get_string(const std::string& key, const std::string& fallback) const;
  [[nodiscard]] std::vector<std::int64_t> get_ints(const std::string& key,
                                                   std::vector<std::int64_t> fallback = {}) const;
  [[nodiscard]] std::vector<float> get_floats(const std::string& key) const;
  // Input i if present and non-empty.
  [[nodiscard]] bool has_input(std::size_t i) const { return i < inputs.size() && !inputs[i].empty(); }
  // "node 'name' (Op)" for error messages.
  [[nodiscard]] std::string describe() const;
};

struct ValueInfo {
  std::string name;
  Shape shape;  // -1 marks a dynamic dimension (e.g. the batch)
  DType dtype = DType::kFloat32;
};

struct Graph {
  std::string source;      // file the graph was read from, for error messages
  std::string model_hash;  // FNV-1a 64 of the model bytes, hex; identifies the model in stats files
  std::int64_t opset = 13;
  std::vector<Node> nodes;  // topologically sorted after import
  std::map<std::string, Tensor> initializers;
  std::vector<ValueInfo> inputs;  // graph inputs that are not initializers
  std::vector<std::string> outputs;

  [[nodiscard]] const Node* producer(const std::string& value) const;
  [[nodiscard]] std::vector<const Node*> consumers(const std::string& value) const;
  [[nodiscard]] const Tensor* initializer(const std::string& name) const;
};

// Orders nodes so every input is produced before use; throws on a cycle or on a value that no
// node, initializer or graph input produces.
void topological_sort(Graph& g);

// Turns Constant nodes holding a float tensor (`value` attribute) into initializers, so weights that an
// exporter emitted as Constant nodes are folded, quantized and exported exactly like initializers.
// Constants that are graph outputs stay nodes. Returns the number converted.
int constants_to_initializers(Graph& g);

// Removes Identity and Dropout (inference mode) nodes, rewiring their consumers.
void remove_identities(Graph& g);

// Folds BatchNormalization into the Conv or Gemm that feeds it when that producer has no other
// consumer: w' = w * gamma / sqrt(var + eps) per output channel, b' = (b - mean) * that + beta.
// Returns the number of BN nodes folded.
int fold_batchnorm(Graph& g);

}  // namespace aciq::graph
