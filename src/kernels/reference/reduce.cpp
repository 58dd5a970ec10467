// Placeholder for the reduce reference kernels.
#include "kernels/reference/reduce.hpp"
