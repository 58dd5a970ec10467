// Placeholder: filled in by the resize family.
#include "runtime/ops/registry.hpp"

namespace aciq::runtime {

std::vector<OpEntry> resize_ops() { return {}; }

}  // namespace aciq::runtime
