// Placeholder for the normalization reference kernels.
#include "kernels/reference/normalization.hpp"
