// Graph IR helpers and the structural passes (topological order, identity removal).
#include "aciq/graph.hpp"

#include <algorithm>
#include <set>
#include <unordered_map>

namespace aciq::graph {

std::string Node::describe() const { return "node '" + name + "' (" + op_type + ")"; }

namespace {
const Attribute* find_attr(const Node& n, const std::string& key, Attribute::Kind kind) {
  auto it = n.attrs.find(key);
  if (it == n.attrs.end()) return nullptr;
  if (it->second.kind != kind) fail(n.describe() + ": attribute '" + key + "' has the wrong type");
  return &it->second;
}
}  // namespace

std::int64_t Node::get_int(const std::string& key, std::int64_t fallback) const {
  const Attribute* a = find_attr(*this, key, Attribute::Kind::kInt);
  return a ? a->i : fallback;
}
float Node::get_float(const std::string& key, float fallback) const {
  const Attribute* a = find_attr(*this, key, Attribute::Kind::kFloat);
  return a ? a->f : fallback;
}
std::string Node::get_string(const std::string& key, const std::string& fallback) const {
  const Attribute* a = find_attr(*this, key, Attribute::Kind::kString);
  return a ? a->s : fallback;
}
std::vector<std::int64_t> Node::get_ints(const std::string& key, std::vector<std::int64_t> fallback) const {
  const Attribute* a = find_attr(*this, key, Attribute::Kind::kInts);
  return a ? a->ints : fallback;
}
std::vector<float> Node::get_floats(const std::string& key) const {
  const Attribute* a = find_attr(*this, key, Attribute::Kind::kFloats);
  return a ? a->floats : std::vector<float>{};
}

const Node* Graph::producer(const std::string& value) const {
  for (const Node& n : nodes) {
    if (std::find(n.outputs.begin(), n.outputs.end(), value) != n.outputs.end()) return &n;
  }
  return nullptr;
}

std::vector<const Node*> Graph::consumers(const std::string& value) const {
  std::vector<const Node*> out;
  for (const Node& n : nodes) {
    if (std::find(n.inputs.begin(), n.inputs.end(), value) != n.inputs.end()) out.push_back(&n);
  }
  return out;
}

const Tensor* Graph::initializer(const std::string& name) const {
  auto it = initializers.find(name);
  return it == initializers.end() ? nullptr : &it->second;
}

void topological_sort(Graph& g) {
  std::unordered_map<std::string, std::size_t> producer_of;
  for (std::size_t i = 0; i < g.nodes.size(); ++i) {
    for (const auto& out : g.nodes[i].outputs) {
      if (out.empty()) continue;
      if (!producer_of.emplace(out, i).second) {
        fail(g.source + ": value '" + out + "' is produced by more than one node");
      }
    }
  }
  std::set<std::string> available;
  for (const auto& [name, t] : g.initializers) available.insert(name);
  for (const auto& in : g.inputs) available.insert(in.name);

  // Kahn's algorithm keeping the original order among ready nodes (stable, deterministic).
  std::vector<int> missing(g.nodes.size(), 0);
  std::unordered_map<std::string, std::vector<std::size_t>> waiting;
  for (std::size_t i = 0; i < g.nodes.size(); ++i) {
    std::set<std::string> seen;
    for (const auto& in : g.nodes[i].inputs) {
      if (in.empty() || available.count(in) || !seen.insert(in).second) continue;
      if (!producer_of.count(in)) {
        fail(g.source + ": " + g.nodes[i].describe() + " reads '" + in +
             "', which no node, initializer or graph input provides");
      }
      ++missing[i];
      waiting[in].push_back(i);
    }
  }
  std::vector<std::size_t> ready;
  for (std::size_t i = 0; i < g.nodes.size(); ++i) {
    if (missing[i] == 0) ready.push_back(i);
  }
  std::vector<Node> sorted;
  sorted.reserve(g.nodes.size());
  std::vector<bool> done(g.nodes.size(), false);
  while (!ready.empty()) {
    std::sort(ready.begin(), ready.end(), std::greater<>());
    const std::size_t i = ready.back();
    ready.pop_back();
    done[i] = true;
    sorted.push_back(g.nodes[i]);
    for (const auto& out : g.nodes[i].outputs) {
      auto it = waiting.find(out);
      if (it == waiting.end()) continue;
      for (std::size_t j : it->second) {
        if (--missing[j] == 0) ready.push_back(j);
      }
      waiting.erase(it);
    }
  }
  if (sorted.size() != g.nodes.size()) {
    for (std::size_t i = 0; i < g.nodes.size(); ++i) {
      if (!done[i]) fail(g.source + ": the graph has a cycle through " + g.nodes[i].describe());
    }
  }
  for (const auto& out : g.outputs) {
    if (!available.count(out) && !producer_of.count(out)) {
      fail(g.source + ": graph output '" + out + "' is never produced");
    }
  }
  g.nodes = std::move(sorted);
}

int constants_to_initializers(Graph& g) {
  const std::set<std::string> outputs(g.outputs.begin(), g.outputs.end());
  std::vector<Node> kept;
  int converted = 0;
  for (Node& n : g.nodes) {
    auto it = n.attrs.find("value");
    if (n.op_type == "Constant" && n.outputs.size() == 1 && it != n.attrs.end() &&
        it->second.kind == Attribute::Kind::kTensor && it->second.t.dtype() == DType::kFloat32 &&
        !outputs.count(n.outputs[0]) && !g.initializers.count(n.outputs[0])) {
      g.initializers[n.outputs[0]] = it->second.t;
      ++converted;
      continue;
    }
    kept.push_back(std::move(n));
  }
  g.nodes = std::move(kept);
  return converted;
}

void remove_identities(Graph& g) {
  std::map<std::string, std::string> rename;
  std::vector<Node> kept;
  for (Node& n : g.nodes) {
    for (auto& in : n.inputs) {
      auto it = rename.find(in);
      if (it != rename.end()) in = it->second;
    }
    const bool pass_through = n.op_type == "Identity" || n.op_type == "Dropout";
    const bool is_graph_output =
        !n.outputs.empty() && std::find(g.outputs.begin(), g.outputs.end(), n.outputs[0]) != g.outputs.end();
    // Dropout's optional mask output has no inference meaning; only drop nodes whose mask is unused.
    if (pass_through && !is_graph_output && !n.inputs.empty() &&
        (n.outputs.size() < 2 || n.outputs[1].empty())) {
      rename[n.outputs[0]] = n.inputs[0];
      continue;
    }
    kept.push_back(std::move(n));
  }
  g.nodes = std::move(kept);
}

}  // namespace aciq::graph
