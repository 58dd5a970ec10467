// Placeholder for the conv_transpose reference kernels.
#include "kernels/reference/conv_transpose.hpp"
