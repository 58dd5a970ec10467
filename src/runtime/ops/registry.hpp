// The operator registry: one table from ONNX op type to the class that plans and runs it.
//
// Every family file under src/runtime/ops/ lists its operators in `<family>_ops()`; registry.cpp joins
// the lists. The supported-op list, the importer's refusal message, `aciq ops` and the README's table
// are all derived from this table, so an operator exists exactly when it has an entry.
#pragma once

#include <memory>
#include <string_view>
#include <type_traits>
#include <vector>

#include "aciq/runtime.hpp"
#include "runtime/ops/op.hpp"

namespace aciq::runtime {

using OpFactory = std::unique_ptr<Op> (*)(const graph::Node& node, std::int64_t opset, Backend backend);

struct OpEntry {
  OperatorInfo info;
  OpFactory make = nullptr;
};

// An entry whose factory constructs T from (node, opset[, backend]). `dtypes` names the element types
// of the main input the op accepts; `fast` describes the kernel the fast backend runs ("" when both
// backends run the reference kernel).
template <class T>
OpEntry op_entry(std::string_view type, std::string_view dtypes, std::string_view fast,
                 std::int64_t since_opset = graph::kMinOpset) {
  OpEntry e;
  e.info.type = type;
  e.info.dtypes = dtypes;
  e.info.fast_kernel = fast;
  e.info.since_opset = since_opset;
  e.make = [](const graph::Node& n, std::int64_t opset, Backend b) -> std::unique_ptr<Op> {
    if constexpr (std::is_constructible_v<T, const graph::Node&, std::int64_t, Backend>) {
      return std::make_unique<T>(n, opset, b);
    } else {
      (void)b;
      return std::make_unique<T>(n, opset);
    }
  };
  return e;
}

// The families; each is defined in src/runtime/ops/<family>.cpp.
std::vector<OpEntry> shape_ops();
std::vector<OpEntry> conv_ops();
std::vector<OpEntry> conv_transpose_ops();
std::vector<OpEntry> resize_ops();
std::vector<OpEntry> elementwise_ops();
std::vector<OpEntry> gemm_ops();
std::vector<OpEntry> math_ops();
std::vector<OpEntry> movement_ops();
std::vector<OpEntry> reduce_ops();
std::vector<OpEntry> normalization_ops();
std::vector<OpEntry> quant_ops();

// The joined table, sorted by op type; nullptr for an op type without an entry.
const std::vector<OpEntry>& op_registry();
const OpEntry* find_op(std::string_view type);

}  // namespace aciq::runtime
