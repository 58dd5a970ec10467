// Joins the operator families into one sorted table and derives the supported-op list from it.
#include "runtime/ops/registry.hpp"

#include <algorithm>

namespace aciq::runtime {

namespace {

struct Family {
  std::string_view name;
  std::vector<OpEntry> (*entries)();
};

// Adding a family: one file under src/runtime/ops/ and one line here.
constexpr Family kFamilies[] = {
    {"conv", conv_ops},
    {"conv_transpose", conv_transpose_ops},
    {"elementwise", elementwise_ops},
    {"gemm", gemm_ops},
    {"math", math_ops},
    {"movement", movement_ops},
    {"normalization", normalization_ops},
    {"quant", quant_ops},
    {"reduce", reduce_ops},
    {"resize", resize_ops},
    {"shape", shape_ops},
};

std::vector<OpEntry> build_registry() {
  std::vector<OpEntry> all;
  for (const auto& f : kFamilies) {
    for (auto e : f.entries()) {
      e.info.family = f.name;
      all.push_back(e);
    }
  }
  std::sort(all.begin(), all.end(),
            [](const OpEntry& a, const OpEntry& b) { return a.info.type < b.info.type; });
  for (std::size_t i = 1; i < all.size(); ++i) {
    if (all[i].info.type == all[i - 1].info.type) {
      fail("internal: operator " + std::string(all[i].info.type) + " is registered by two families");
    }
  }
  return all;
}

}  // namespace

const std::vector<OpEntry>& op_registry() {
  static const std::vector<OpEntry> table = build_registry();
  return table;
}

const OpEntry* find_op(std::string_view type) {
  const auto& t = op_registry();
  auto it = std::lower_bound(t.begin(), t.end(), type,
                             [](const OpEntry& e, std::string_view v) { return e.info.type < v; });
  return it != t.end() && it->info.type == type ? &*it : nullptr;
}

std::unique_ptr<Op> make_op(const graph::Node& node, std::int64_t opset, Backend backend) {
  const OpEntry* e = find_op(node.op_type);
  return e ? e->make(node, opset, backend) : nullptr;
}

const std::vector<OperatorInfo>& operator_table() {
  static const std::vector<OperatorInfo> infos = [] {
    std::vector<OperatorInfo> v;
    for (const auto& e : op_registry()) v.push_back(e.info);
    return v;
  }();
  return infos;
}

const std::vector<std::string>& supported_ops() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> v;
    for (const auto& e : op_registry()) v.emplace_back(e.info.type);
    return v;
  }();
  return names;
}

}  // namespace aciq::runtime
