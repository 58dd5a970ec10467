// Placeholder for the resize reference kernels.
#include "kernels/reference/resize.hpp"
