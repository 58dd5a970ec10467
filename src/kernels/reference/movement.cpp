// Placeholder for the movement reference kernels.
#include "kernels/reference/movement.hpp"
