// Placeholder for the math reference kernels.
#include "kernels/reference/math.hpp"
