// Placeholder: filled in by the conv_transpose family.
#include "runtime/ops/registry.hpp"

namespace aciq::runtime {

std::vector<OpEntry> conv_transpose_ops() { return {}; }

}  // namespace aciq::runtime
