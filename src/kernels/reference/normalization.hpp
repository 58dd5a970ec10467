// Placeholder for the normalization reference kernels.
#pragma once
