// Placeholder for the conv_transpose reference kernels.
#pragma once
